#!/usr/bin/env bash
# timeout: 600
# Re-encryption (`backend add … tls`) on a real kernel: curl -> tlsoffd -> a TLS backend
# (tests/bin/http_backend --tls: OpenSSL in userspace, never kTLS, so every kTLS session counted is
# tlsoffd's). On the latest kernel, 64 MB down and 64 MB up with TLS 1.3 on both legs and again with TLS 1.2;
# on 6.1 and 6.12, TLS 1.3 legs: 64 MB down and 4 MB up, TLS 1.2 legs: 4 MB down and 64 MB up (64 MB each
# way, each version both ways, in half the TCG time of 4 x 64 MB); sha256 equal every time;
# one TLS 1.2 client to a TLS 1.3 backend. Without kTLS (5.10) the big transfers are 8 MB: the userspace
# fallback moves 64 MB each way in tests/host/reencrypt.sh already, and TCG crypto is slow. On a kTLS kernel every connection runs with kTLS TX+RX on both
# sockets and plaintext spliced from one kTLS socket through a pipe into the other: the close lines say so,
# /proc/net/tls_stat's TlsTxSw and TlsRxSw each rise by exactly 2 per connection (client leg + backend
# leg), and a held connection shows the TLS ULP on both of its sockets (ss) and `backend-tls=…/ktls` in
# conn show. `datapath userspace` keeps OpenSSL on both legs, on any kernel. On 5.10 (no kTLS) the same transfers pass on the userspace fallback, with the reason logged.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl ss

ktls=yes
"$B/tlsoffd" --probe -j | grep -q '"ulp":true' || ktls=no
B13=$(free_port) B12=$(free_port) F13=$(free_port) F12=$(free_port) FU=$(free_port)
make_cert edge localhost
make_cert be localhost
cat >"$T/tlsoff.conf" <<CONF
backend add tls13 server 127.0.0.1:$B13 tls ca $T/be.crt sni localhost
backend add tls12 server 127.0.0.1:$B12 tls ca $T/be.crt sni localhost
frontend add e13 listen 127.0.0.1:$F13 cert $T/edge.crt key $T/edge.key backend tls13
frontend add e12 listen 127.0.0.1:$F12 cert $T/edge.crt key $T/edge.key backend tls12
frontend add eu listen 127.0.0.1:$FU cert $T/edge.crt key $T/edge.key backend tls13 datapath userspace
CONF
start_tls_backend "$B13" be 1.3
start_tls_backend "$B12" be 1.2
start_tlsoffd "$T/tlsoff.conf" "$F13" --workers 2
res() { echo --resolve "localhost:$1:127.0.0.1" --cacert "$T/edge.crt"; }
tx0=$(tls_stat TlsTxSw); rx0=$(tls_stat TlsRxSw)

big=64 small=4; [ $ktls = yes ] || big=8
[ $ktls = yes ] && [ "${TLSOFF_LAB_KERNEL:-}" = latest ] && small=64
log "TLS 1.3 legs: $big MB down, $small MB up; TLS 1.2 legs: $small MB down, $big MB up ($([ $ktls = yes ] && echo kTLS splice || echo userspace))"
gen_file $((big << 20)) 9 "$T/big"
gen_file $((small << 20)) 10 "$T/small"
t0=$(date +%s)
# shellcheck disable=SC2046
check_download "https://localhost:$F13" $((big << 20)) 4 $(res "$F13") --tlsv1.3
# shellcheck disable=SC2046
check_upload "https://localhost:$F13" "$T/small" $(res "$F13") --tlsv1.3
# shellcheck disable=SC2046
check_download "https://localhost:$F12" $((small << 20)) 5 $(res "$F12") --tlsv1.2 --tls-max 1.2
# shellcheck disable=SC2046
check_upload "https://localhost:$F12" "$T/big" $(res "$F12") --tlsv1.2 --tls-max 1.2
log "2 x $big MB + 2 x $small MB in $(( $(date +%s) - t0 )) s"
rm -f "$T/big" "$T/small"
log "a TLS 1.2 client to a TLS 1.3 backend"
# shellcheck disable=SC2046
check_download "https://localhost:$F13" 1000000 6 $(res "$F13") --tlsv1.2 --tls-max 1.2
conns=5

expect_log "close frontend=e13 .*tls=TLSv1.2 " 5
closed=$(grep -c ' close ' "$T/tlsoffd.log")
[ "$closed" -eq $conns ] || { cat "$T/tlsoffd.log"; fail "expected $conns connections logged, got $closed"; }
if [ $ktls = yes ]; then
  n=$(grep -c ' close .*datapath=splice ktls=tx+rx kmode=tx:sw,rx:sw .*backend_tls=TLSv1\.[23]/[A-Z0-9_-]*/ktls=tx+rx .*reason="done"' "$T/tlsoffd.log" || true)
  [ "$n" -eq $conns ] || { grep ' close ' "$T/tlsoffd.log"; fail "$n of $conns connections had kTLS TX+RX on both legs"; }
  grep -q ' close frontend=e13 .*tls=TLSv1.3 .*backend_tls=TLSv1.3/' "$T/tlsoffd.log" || fail "no TLS 1.3 leg pair"
  grep -q ' close frontend=e12 .*tls=TLSv1.2 .*backend_tls=TLSv1.2/' "$T/tlsoffd.log" || fail "no TLS 1.2 leg pair"
  dtx=$(( $(tls_stat TlsTxSw) - tx0 )); drx=$(( $(tls_stat TlsRxSw) - rx0 ))
  log "tls_stat: TlsTxSw +$dtx, TlsRxSw +$drx for $conns connections"
  if [ "$dtx" -ne $((2 * conns)) ] || [ "$drx" -ne $((2 * conns)) ]; then
    fail "tls_stat: TlsTxSw +$dtx, TlsRxSw +$drx; want +$((2 * conns)) each (client leg + backend leg)"
  fi

  log "datapath userspace: OpenSSL on both legs, no kTLS session"
  # shellcheck disable=SC2046
  check_download "https://localhost:$FU" 1000000 7 $(res "$FU")
  expect_log ' close frontend=eu .*datapath=userspace \(configured\) ktls=none .*backend_tls=TLSv1.3/[A-Z0-9_]*/userspace reason="done"' 5
  if [ "$(tls_stat TlsTxSw)" -ne $((tx0 + 2 * conns)) ] || [ "$(tls_stat TlsRxSw)" -ne $((rx0 + 2 * conns)) ]; then
    fail "tls_stat moved for a userspace connection"
  fi

  log "a held connection: the TLS ULP on both of its sockets, conn show reports the backend leg"
  mkfifo "$T/hold"
  exec 3<>"$T/hold"
  "$B/tests/bin/tls_client" --tls 1.3 "127.0.0.1:$F13" hold 1 <"$T/hold" >"$T/hold.out" 3>&- & HOLD=$!; PIDS+=("$HOLD")
  for _ in $(seq 200); do grep -q "held 1" "$T/hold.out" && ctl conn show | grep -q "backend-tls=.*/ktls" && break; sleep 0.1; done
  ctl conn show | tee "$T/conns.txt"
  ss -tieHn state established "( sport = :$F13 or dport = :$B13 )" >"$T/ss.out" || true
  exec 3>&-
  wait "$HOLD" || true
  cat "$T/ss.out"
  grep -q "splice .*backend-tls=TLSv1.3/TLS_AES_[0-9]*_GCM_SHA[0-9]*/ktls" "$T/conns.txt" || fail "conn show: no kTLS backend leg"
  n=$(grep -c "tcp-ulp-tls version: 1.3 .*rxconf: sw txconf: sw" "$T/ss.out" || true)
  [ "$n" -eq 2 ] || fail "ss shows $n TLS 1.3 sockets with sw kTLS both ways, want 2 (the client's and the backend's)"
else
  n=$(grep -c ' close .*datapath=userspace (kernel has no TLS ULP) ktls=none .*backend_tls=TLSv1\.[23]/[A-Z0-9_-]*/userspace .*reason="done"' "$T/tlsoffd.log" || true)
  [ "$n" -eq $conns ] || { grep ' close ' "$T/tlsoffd.log"; fail "$n of $conns connections logged the userspace fallback with its reason"; }
fi
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
