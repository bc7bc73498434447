#!/usr/bin/env bash
# timeout: 240
# tlsoffd on a kernel without kTLS: curl and openssl s_client through tlsoffd to a real HTTP backend,
# TLS 1.2 and 1.3 with each cipher, downloads and uploads from 1 KB to 256 MB with sha256 equal end to
# end, 200 concurrent connections, and the datapath reported as userspace with its reason.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

BP=$(free_port); FP=$(free_port); PP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
backend add app-pp server 127.0.0.1:$BP proxy-protocol v2
frontend add pp listen 127.0.0.1:$PP cert $T/edge.crt key $T/edge.key backend app-pp alpn http/1.1
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app alpn http/1.1
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
URL="https://localhost:$FP"
RESOLVE=(--resolve "localhost:$FP:127.0.0.1" --cacert "$T/edge.crt")

log "every version x cipher, download and upload"
gen_file 1024 1 "$T/1k"
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
  check_download "$URL" 100000 7 "${RESOLVE[@]}" --tlsv1.2 --tls-max 1.2 --ciphers "$c"
  check_upload "$URL" "$T/1k" "${RESOLVE[@]}" --tlsv1.2 --tls-max 1.2 --ciphers "$c"
done
for c in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
  check_download "$URL" 100000 8 "${RESOLVE[@]}" --tlsv1.3 --tls13-ciphers "$c"
  check_upload "$URL" "$T/1k" "${RESOLVE[@]}" --tlsv1.3 --tls13-ciphers "$c"
done
for v in 1.2 1.3; do
  n=$(grep -c "tls=TLSv$v .*datapath=userspace (kernel has no TLS ULP)" "$T/tlsoffd.log" || true)
  [ "$n" -ge 6 ] || fail "expected 6 TLSv$v connections logged as userspace with the reason, got $n"
done

log "sizes from 1 KB to 256 MB, both ways"
for n in 1024 65536 1048576 16777216 268435456; do
  check_download "$URL" "$n" "$n" "${RESOLVE[@]}"
done
for n in 1024 1048577 268435456; do
  gen_file "$n" 9 "$T/up"
  check_upload "$URL" "$T/up" "${RESOLVE[@]}"
done
rm -f "$T/up"

log "PROXY v2 header: the backend sees the client's address, ALPN and SNI"
check_proxy_v2 "$PP"

log "openssl s_client, TLS 1.2 and 1.3"
check_s_client "$FP"

log "200 concurrent connections"
pids=()
for i in $(seq 200); do
  ( got=$(curl -sS --fail -k "${RESOLVE[@]}" "$URL/bytes/200000/$i" | sha256sum | cut -d' ' -f1)
    want=$("$B/tests/bin/http_backend" --gen 200000 "$i" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "connection $i: sha256 mismatch" >&2; exit 1; } ) &
  pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] || fail "$bad of 200 concurrent transfers failed"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok: $(grep -c ' close ' "$T/tlsoffd.log") connections logged"
