#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# t-tcp-migrate.sh with 8 connections at once: every one is locked at both
# ends (one nft run per side for all of them), moved, and checked byte for
# byte in both directions after the migration.
export TCP_CONNS=8
exec bash "$(dirname "$0")/t-tcp-migrate.sh"
