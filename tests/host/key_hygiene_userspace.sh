#!/usr/bin/env bash
# sanitize: skip (mem_scan reads every writable mapping: ASan's terabytes of reserved shadow make that a timeout; what it checks is the wiping, not memory safety)
# timeout: 60
# Key hygiene where OpenSSL keeps the connection (the userspace datapath: this machine has no kTLS). While
# open, the SSL object legitimately holds the TLS 1.3 application traffic and exporter secrets and the TLS
# 1.2 master secret (docs/security.md); the handshake traffic secrets are gone already. After the
# connections closed, tests/bin/mem_scan finds none of the secrets the s_client peers logged anywhere in
# tlsoffd's writable memory (OpenSSL's SSL_free alone leaves them in the freed heap: cleanse_alloc.c), and
# the log has neither the private key nor a secret.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
source "$ROOT/tests/keylog_lib.sh"
need openssl
[ "$(id -u)" = 0 ] || skip "mem_scan reads a non-dumpable process's memory: needs root"

edge_tlsoffd userspace --workers 1 -l debug
sc_open 1 -tls1_3 "$FP" 500000 41
sc_open 2 -tls1_2 "$FP" 500000 42
sc_wait 1 500000
sc_wait 2 500000

log "while open: what the userspace datapath keeps, and no handshake secret"
"$B/tests/bin/mem_scan" "$TLSOFFD_PID" "$T/keys.log" >"$T/scan.open"
cat "$T/scan.open"
grep -q '^CLIENT_TRAFFIC_SECRET_0 ' "$T/scan.open" || fail "mem_scan did not find the secret OpenSSL holds for an open TLS 1.3 connection"
! grep -E '^(CLIENT|SERVER)_HANDSHAKE_TRAFFIC_SECRET ' "$T/scan.open" || fail "handshake secrets outlive the handshake"

log "after close: none"
sc_close 1 2
sc_check 1 500000 41
sc_check 2 500000 42
for _ in $(seq 50); do [ "$(grep -c ' close ' "$T/tlsoffd.log" || true)" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c 'close .*datapath=userspace' "$T/tlsoffd.log" || true)" = 2 ] || fail "want 2 closed userspace connections"
"$B/tests/bin/mem_scan" "$TLSOFFD_PID" "$T/keys.log" >"$T/scan.closed"
tail -n1 "$T/scan.closed"
! grep -v '^scanned ' "$T/scan.closed" || fail "secrets left in tlsoffd's memory after the connections closed"
no_secret_in_log "$T/edge.key" "$T/tlsoffd.log"
log ok
