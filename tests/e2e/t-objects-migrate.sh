#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 600
#
# t-objects through a page server (issue 12): every row of t-objects.sh's
# TABLE expected exact, and a sample of the refused ones, migrated with
# `migrate --to` over mutual TLS from one network namespace to a page server
# in another, which restores each one there (OBJ_VIA=pageserver: see
# t-objects.sh). OBJ_ONLY and OBJ_NET_REFUSED work as there.
#
# Part of `make test`; alone:  E2E_ONLY=t-objects-migrate make e2e
OBJ_VIA=pageserver exec bash "$(dirname "$0")/t-objects.sh"
