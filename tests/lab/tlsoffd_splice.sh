#!/usr/bin/env bash
# timeout: 600
# tlsoffd with `datapath splice` on a real kTLS kernel: curl and openssl s_client through tlsoffd to a real
# HTTP backend, TLS 1.2 and 1.3 with each cipher, downloads and uploads with sha256 equal end to end; every
# connection is logged with kTLS TX+RX (TLS 1.3 RX included: our own key schedule), /proc/net/tls_stat
# counts them, and sock_diag (ss) shows the TLS ULP on the open socket. On a kernel without kTLS (5.10)
# the same transfers pass on the userspace datapath with the reason logged.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl ss

ktls=yes
[ "${TLSOFF_LAB_KERNEL:-}" = 5.10 ] && ktls=no
BP=$(free_port); FP=$(free_port); PP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
backend add app-pp server 127.0.0.1:$BP proxy-protocol v2
frontend add pp listen 127.0.0.1:$PP cert $T/edge.crt key $T/edge.key backend app-pp alpn http/1.1 datapath splice
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
URL="https://localhost:$FP"
RESOLVE=(--resolve "localhost:$FP:127.0.0.1" --cacert "$T/edge.crt")
tx0=$(tls_stat TlsTxSw); rx0=$(tls_stat TlsRxSw)

log "every version x cipher, download and upload ($([ $ktls = yes ] && echo kTLS splice || echo userspace))"
gen_file 300000 1 "$T/up"
conns=0
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
  check_download "$URL" 1000000 7 "${RESOLVE[@]}" --tlsv1.2 --tls-max 1.2 --ciphers "$c"
  check_upload "$URL" "$T/up" "${RESOLVE[@]}" --tlsv1.2 --tls-max 1.2 --ciphers "$c"
  conns=$((conns + 2))
done
for c in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
  check_download "$URL" 1000000 8 "${RESOLVE[@]}" --tlsv1.3 --tls13-ciphers "$c"
  check_upload "$URL" "$T/up" "${RESOLVE[@]}" --tlsv1.3 --tls13-ciphers "$c"
  conns=$((conns + 2))
done

log "1 KB to 256 MB both ways"
for n in 1024 16777216 268435456; do
  check_download "$URL" "$n" 5 "${RESOLVE[@]}"
  gen_file "$n" 6 "$T/up"
  check_upload "$URL" "$T/up" "${RESOLVE[@]}"
  conns=$((conns + 2))
done
rm -f "$T/up"

log "PROXY v2 header: the backend sees the client's address, ALPN and SNI"
check_proxy_v2 "$PP"
conns=$((conns + 1))

log "openssl s_client, TLS 1.2 and 1.3"
check_s_client "$FP"
conns=$((conns + 2))

expect_log "close .*reason" 5
closed=$(grep -c ' close ' "$T/tlsoffd.log")
[ "$closed" -ge "$conns" ] || fail "expected $conns connections logged, got $closed"
if [ $ktls = yes ]; then
  # Every connection: both directions in the kernel, in software as sock_diag reported it at the handoff.
  spliced=$(grep -c ' close .*datapath=splice ktls=tx+rx kmode=tx:sw,rx:sw ' "$T/tlsoffd.log" || true)
  [ "$spliced" -eq "$closed" ] || { grep ' close ' "$T/tlsoffd.log" | grep -v 'datapath=splice ktls=tx+rx kmode=tx:sw,rx:sw' | head -5;
    fail "$spliced of $closed connections had software kTLS TX+RX (sock_diag) on the splice datapath"; }
  for v in 1.2 1.3; do
    grep -q " close .*tls=TLSv$v .*datapath=splice ktls=tx+rx " "$T/tlsoffd.log" || fail "no TLSv$v connection with kTLS TX+RX"
  done
  dtx=$(( $(tls_stat TlsTxSw) - tx0 )); drx=$(( $(tls_stat TlsRxSw) - rx0 ))
  [ "$dtx" -ge "$conns" ] && [ "$drx" -ge "$conns" ] ||
    fail "tls_stat: TlsTxSw +$dtx, TlsRxSw +$drx for $conns connections"
  log "tls_stat: TlsTxSw +$dtx, TlsRxSw +$drx for $conns connections"

  log "sock_diag: open TLS 1.2 and 1.3 connections show the TLS ULP, sw in both directions"
  mkfifo "$T/hold"
  exec 3<>"$T/hold"                 # the holders' stdin: the connections stay open until it closes
  "$B/tests/bin/tls_client" --tls 1.2 "127.0.0.1:$FP" hold 2 <"$T/hold" >"$T/hold12.out" & PIDS+=($!)
  "$B/tests/bin/tls_client" --tls 1.3 "127.0.0.1:$FP" hold 2 <"$T/hold" >"$T/hold13.out" & PIDS+=($!)
  for _ in $(seq 200); do grep -q "held 2" "$T/hold12.out" && grep -q "held 2" "$T/hold13.out" && break; sleep 0.1; done
  sleep 0.5                         # tlsoffd installs kTLS right after each handshake
  ss -tieHn state established "sport = :$FP" >"$T/ss.out" || true
  exec 3>&-
  cat "$T/ss.out"
  for v in 1.2 1.3; do
    n=$(grep -c "tcp-ulp-tls version: $v .*rxconf: sw txconf: sw" "$T/ss.out" || true)
    [ "$n" -eq 2 ] || fail "ss shows $n TLS $v sockets with sw kTLS both ways, want 2"
  done
else
  n=$(grep -c ' close .*datapath=userspace (kernel has no TLS ULP)' "$T/tlsoffd.log" || true)
  [ "$n" -eq "$closed" ] || fail "$n of $closed connections logged userspace with the reason"
fi
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
