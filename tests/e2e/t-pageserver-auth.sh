#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# Mutual TLS at the page server: a client whose certificate the CA did not
# sign, a client with no certificate, a plain-TCP client, and a client
# talking to a server with a rogue certificate are all refused at the
# handshake (logged), get no application data through (no migration is
# created), and the daemon serves the next good client. --insecure warns loudly.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
port=$(e2e_port)
MODEL=(--seed 3 --pids 1 --pages 256)

e2e_start_pageserver ps "$port" "$IMG" -v
ps_pid=$E2E_LAST_PID

no_migration()
{
	[ -z "$(ls -A "$IMG")" ] || e2e_fail "$1 created a migration: $(ls -A "$IMG")"
	kill -0 "$ps_pid" 2>/dev/null || e2e_fail "pageserver died after $1"
}

# 1. Client certificate from a rogue CA.
if "$PSC" send --to "127.0.0.1:$port" "${ROGUE_TLS[@]}" "${MODEL[@]}" >"$TMP/rogue.out" 2>&1; then
	e2e_fail "rogue client got through: $(cat "$TMP/rogue.out")"
fi
e2e_wait_for_line "$TMP/ps.log" 'session 1 .*dropped: TLS handshake failed: certificate verify failed' 10 ||
	e2e_fail "rogue client not refused for its certificate"
no_migration "rogue client"

# 2. No client certificate at all.
timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$C/ca.pem" -tls1_3 \
	</dev/null >"$TMP/nocert.out" 2>&1
e2e_wait_for_line "$TMP/ps.log" 'session 2 .*dropped: TLS handshake failed: peer did not return a certificate' 10 ||
	e2e_fail "certificate-less client not refused"
no_migration "certificate-less client"

# 3. Plain TCP against a TLS server.
if "$PSC" send --to "127.0.0.1:$port" --insecure "${MODEL[@]}" >"$TMP/plain.out" 2>&1; then
	e2e_fail "plain client got through"
fi
e2e_wait_for_line "$TMP/ps.log" 'session 3 .*dropped: TLS' 10 || e2e_fail "plain client not refused"
no_migration "plain client"

# 4. TLS 1.2 is not spoken.
timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$C/ca.pem" -tls1_2 \
	-cert "$C/client.pem" -key "$C/client.key" </dev/null >"$TMP/tls12.out" 2>&1
e2e_wait_for_line "$TMP/ps.log" 'session 4 .*dropped: TLS handshake failed' 10 ||
	e2e_fail "TLS 1.2 client not refused"
no_migration "TLS 1.2 client"

# 5. The daemon still serves a good client.
"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" --id-file "$TMP/id" \
	>"$TMP/good.out" || e2e_fail "good client refused after the bad ones: $(cat "$TMP/good.out")"
"$PSC" verify --stack "$IMG/$(cat "$TMP/id")" "${MODEL[@]}" || e2e_fail "good client's round differs"

# 6. The client refuses a server whose certificate our CA did not sign.
port2=$(e2e_port)
e2e_start_pageserver rogue-ps "$port2" "$IMG" \
	--tls-ca "$C/ca.pem" --tls-cert "$C/rogue.pem" --tls-key "$C/rogue.key"
if "$PSC" send --to "127.0.0.1:$port2" "${CLI_TLS[@]}" "${MODEL[@]}" >"$TMP/rs.out" 2>&1; then
	e2e_fail "client accepted a rogue server"
fi
grep -q 'certificate verify failed' "$TMP/rs.out" || e2e_fail "no reason given: $(cat "$TMP/rs.out")"

# 7. --insecure says so, loudly, on both sides; TLS options are needed otherwise.
port3=$(e2e_port)
e2e_start_pageserver plain-ps "$port3" "$IMG" --insecure
grep -q 'warning: INSECURE' "$TMP/plain-ps.log" || e2e_fail "--insecure not warned about"
"$PSC" send --to "127.0.0.1:$port3" --insecure "${MODEL[@]}" >"$TMP/ins.out" 2>"$TMP/ins.err" ||
	e2e_fail "insecure session failed"
grep -q 'warning: INSECURE' "$TMP/ins.err" || e2e_fail "client did not warn about --insecure"
if "$PAGESERVER" --listen "127.0.0.1:$port3" --images-dir "$IMG" 2>"$TMP/notls.err"; then
	e2e_fail "pageserver started without TLS options"
fi
grep -q 'TLS needs' "$TMP/notls.err" || e2e_fail "no reason for missing TLS options"
echo "PASS"
