#!/bin/sh
# Debian packages the build and the tests need (run as root on a fresh machine).
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential pkg-config xxd binutils \
	protobuf-c-compiler libprotobuf-c-dev libuv1-dev libssl-dev openssl \
	liblz4-dev libcap-dev libcriterion-dev \
	iproute2 util-linux python3 procps \
	nftables redis-server nginx gnuplot-nox debhelper fakeroot nodejs tmux >/dev/null
