#!/usr/bin/env bash
# timeout: 180
# Plaintext OpenSSL already holds at the kTLS handoff is forwarded, not lost: with read-ahead on (a test
# hook), OpenSSL reads the client's first application records together with its Finished; tlsoffd must
# read them out, send them to the backend first, and install RX at the right sequence number. Uploads
# that start right after the handshake arrive byte-exact, on kTLS, for TLS 1.2 and 1.3.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
[ "${TLSOFF_LAB_KERNEL:-}" = 5.10 ] && skip "no kTLS on 5.10: nothing is handed off"

TLSOFF_TEST_READ_AHEAD=1 edge_tlsoffd splice --workers 1 --log-level debug
for v in 1.2 1.3; do
  for i in 1 2 3; do
    "$B/tests/bin/tls_client" --cork --tls "$v" "127.0.0.1:$FP" put 300000 "$i" || fail "TLS $v upload $i failed"
  done
done
n=$(grep -c 'forwarded [1-9][0-9]* bytes OpenSSL had buffered' "$T/tlsoffd.log" || true)
[ "$n" -ge 1 ] || fail "read-ahead never left data in OpenSSL: the forwarding path was not exercised"
spliced=$(grep -c ' close .*datapath=splice ktls=tx+rx ' "$T/tlsoffd.log" || true)
log "$n of 6 connections had buffered plaintext forwarded; $spliced on kTLS"
[ "$spliced" -ge "$n" ] || fail "connections with forwarded data did not stay on kTLS"
