#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# t-tcp-migrate.sh over IPv6: the service address is an IPv6 /128, the
# client reaches it over IPv6 links (tcp-lib.sh, tcp_topology 6).
export TCP_FAM=6
exec bash "$(dirname "$0")/t-tcp-migrate.sh"
