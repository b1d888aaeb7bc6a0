#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# t-svc-asyncio.sh over IPv6: the service address is E2E_SVC_IP6/64 on the
# source's eth0, moved with --move-address (an unsolicited NA at the
# destination).
export SVC_FAM=6
exec bash "$(dirname "$0")/t-svc-asyncio.sh"
