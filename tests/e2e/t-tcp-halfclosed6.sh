#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# t-tcp-halfclosed.sh over IPv6 (the FIN and ACK the restore gives the
# connections are IPv6 segments: their own checksum, IPV6_HDRINCL).
export TCP_FAM=6
exec bash "$(dirname "$0")/t-tcp-halfclosed.sh"
