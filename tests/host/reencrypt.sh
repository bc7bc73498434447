#!/usr/bin/env bash
# timeout: 180
# Re-encryption (`backend add … tls`) on a kernel without kTLS: curl through tlsoffd to a real TLS backend
# (tests/bin/http_backend --tls), TLS 1.2 and 1.3 on both legs, 64 MB down and 64 MB up with sha256 equal,
# on the userspace fallback (OpenSSL on both legs) with the reason in the close line and in `conn show`.
# Verification is on by default: a wrong CA and a wrong name each fail that connection only, with a clear
# log line, while the daemon keeps serving; `verify off` must be written; a server that never answers the
# ClientHello is cut at the backend's connect-timeout. The options travel over the control socket
# (backend add/show, config dump reloads to the same dump).
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

B13=$(free_port) B12=$(free_port) SP=$(free_port)
F13=$(free_port) F12=$(free_port) FCA=$(free_port) FNAME=$(free_port) FNOV=$(free_port) FSIL=$(free_port)
make_cert edge localhost
make_cert be localhost          # the backend's certificate, its own CA
make_cert other localhost       # a CA that did not sign it
cat >"$T/tlsoff.conf" <<CONF
backend add tls13 server "127.0.0.1:$B13" tls ca $T/be.crt sni localhost
backend add tls12 server 127.0.0.1:$B12 tls ca $T/be.crt sni localhost
backend add wrongca server "127.0.0.1:$B13" tls ca $T/other.crt sni localhost
backend add wrongname server "127.0.0.1:$B13" tls ca $T/be.crt sni wrong.test
backend add noverify server 127.0.0.1:$B13 tls verify off
backend add silent server 127.0.0.1:$SP connect-timeout 500 tls ca $T/be.crt sni localhost
frontend add e13 listen 127.0.0.1:$F13 cert $T/edge.crt key $T/edge.key backend tls13
frontend add e12 listen 127.0.0.1:$F12 cert $T/edge.crt key $T/edge.key backend tls12
frontend add ca listen 127.0.0.1:$FCA cert $T/edge.crt key $T/edge.key backend wrongca
frontend add name listen 127.0.0.1:$FNAME cert $T/edge.crt key $T/edge.key backend wrongname
frontend add nov listen 127.0.0.1:$FNOV cert $T/edge.crt key $T/edge.key backend noverify
frontend add sil listen 127.0.0.1:$FSIL cert $T/edge.crt key $T/edge.key backend silent
CONF
start_tls_backend "$B13" be 1.3
start_tls_backend "$B12" be 1.2
"$B/tests/bin/bad_backend" silent "127.0.0.1:$SP" >"$T/silent.out" 2>>"$T/backend.log" & PIDS+=($!)
wait_port "$SP"
start_tlsoffd "$T/tlsoff.conf" "$F13" --workers 2
res() { echo --resolve "localhost:$1:127.0.0.1" --cacert "$T/edge.crt"; }

log "64 MB down and 64 MB up, TLS 1.3 client -> TLS 1.3 backend and TLS 1.2 client -> TLS 1.2 backend"
gen_file $((64 << 20)) 9 "$T/up"
t0=$(date +%s.%N)
# shellcheck disable=SC2046
check_download "https://localhost:$F13" $((64 << 20)) 4 $(res "$F13") --tlsv1.3
# shellcheck disable=SC2046
check_upload "https://localhost:$F13" "$T/up" $(res "$F13") --tlsv1.3
# shellcheck disable=SC2046
check_download "https://localhost:$F12" $((64 << 20)) 5 $(res "$F12") --tlsv1.2 --tls-max 1.2
# shellcheck disable=SC2046
check_upload "https://localhost:$F12" "$T/up" $(res "$F12") --tlsv1.2 --tls-max 1.2
log "4 x 64 MB in $(echo "$(date +%s.%N) - $t0" | bc) s"
rm -f "$T/up"
expect_log "close frontend=e12 .*backend_tls=TLSv1.2/" 5
for leg in "e13 .*tls=TLSv1.3 .*backend_tls=TLSv1.3/TLS_AES_[0-9]*_GCM_SHA[0-9]*/userspace" \
           "e12 .*tls=TLSv1.2 .*backend_tls=TLSv1.2/ECDHE-[A-Z]*-AES[0-9]*-GCM-SHA[0-9]*/userspace"; do
  n=$(grep -Ec " close frontend=$leg .*reason=\"done\"" "$T/tlsoffd.log" || true)
  [ "$n" -eq 2 ] || { cat "$T/tlsoffd.log"; fail "want 2 finished connections matching /$leg/, got $n"; }
done
n=$(grep -c ' close .*datapath=userspace (kernel has no TLS ULP) ktls=none .*backend_tls=' "$T/tlsoffd.log" || true)
[ "$n" -eq 4 ] || fail "$n of 4 re-encrypted connections logged the userspace fallback with its reason"

log "conn show: the backend leg's version, cipher and mode, and why it is not offloaded"
mkfifo "$T/hold"
exec 3<>"$T/hold"
"$B/tests/bin/tls_client" --tls 1.3 "127.0.0.1:$F13" hold 1 <"$T/hold" >"$T/hold.out" 3>&- & HOLD=$!; PIDS+=("$HOLD")
for _ in $(seq 100); do grep -q "held 1" "$T/hold.out" && ctl conn show | grep -q "backend-tls=" && break; sleep 0.1; done
ctl conn show >"$T/conns.txt"; ctl -j conn show >"$T/conns.json"
exec 3>&-
wait "$HOLD" || true        # EOF on its stdin: it closes its connection
cat "$T/conns.txt"
grep -q "userspace .*backend-tls=TLSv1.3/TLS_AES_[0-9]*_GCM_SHA[0-9]*/userspace why=\"kernel has no TLS ULP\"" "$T/conns.txt" ||
  fail "conn show does not report the backend leg"
grep -q '"backend_tls":"userspace","backend_version":"TLSv1.3"' "$T/conns.json" || { cat "$T/conns.json"; fail "conn show -j: no backend leg"; }

log "verify on with the wrong CA, and with the wrong name: that connection fails, clearly, nothing else"
for fp in "$FCA" "$FNAME"; do
  # shellcheck disable=SC2046
  if curl -sS --max-time 10 $(res "$fp") "https://localhost:$fp/bytes/10/1" >/dev/null 2>"$T/curl.err"; then
    fail "a request through a backend that fails verification succeeded"
  fi
done
expect_log "frontend=ca client=.*: backend wrongca server 127.0.0.1:$B13: TLS handshake failed: certificate verify failed: " 5
expect_log "frontend=name client=.*: backend wrongname server 127.0.0.1:$B13: TLS handshake failed: certificate verify failed: hostname mismatch" 5
expect_log "close frontend=ca .*reason=\"backend wrongca server 127.0.0.1:$B13: TLS handshake failed: certificate verify failed" 5
grep "TLS handshake failed" "$T/tlsoffd.log"
# shellcheck disable=SC2046
check_download "https://localhost:$F13" 100000 6 $(res "$F13")
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"

log "verify off is explicit and works with any certificate; a silent server is cut at connect-timeout"
# shellcheck disable=SC2046
check_download "https://localhost:$FNOV" 100000 7 $(res "$FNOV")
# shellcheck disable=SC2046
curl -sS --max-time 10 $(res "$FSIL") "https://localhost:$FSIL/" >/dev/null 2>&1 && fail "the silent backend answered"
expect_log "frontend=sil client=.*: backend silent server 127.0.0.1:$SP: TLS handshake timeout after 500 ms" 5

log "control socket: backend add/show with tls options, a bad CA file refused, config dump reloads identically"
ctl backend add rt server "127.0.0.1:$B13" tls ca "$T/be.crt" sni localhost connect-timeout 800
ctl backend show rt | grep -q "^backend rt .* tls ca $T/be.crt verify on sni localhost" || { ctl backend show rt; fail "backend show: no tls"; }
ctl -j backend show rt | grep -q '"tls":true,"ca":"'"$T"'/be.crt","verify":true,"sni":"localhost"' || fail "backend show -j: no tls"
out=$(ctl backend add badca server "127.0.0.1:$B13" tls ca "$T/nonexistent.pem" 2>&1) && fail "a missing ca file was accepted"
echo "$out" | grep -q "backend badca: ca $T/nonexistent.pem: " || fail "bad ca: unclear error: $out"
ctl config dump >"$T/dump1.conf"
grep -q "^backend add noverify server 127.0.0.1:$B13 balance roundrobin connect-timeout 5000 tls verify off$" "$T/dump1.conf" ||
  { cat "$T/dump1.conf"; fail "config dump: noverify"; }
kill -TERM "$TLSOFFD_PID"; wait "$TLSOFFD_PID" || fail "tlsoffd did not stop cleanly"
start_tlsoffd "$T/dump1.conf" "$F13" --workers 1
ctl config dump | diff "$T/dump1.conf" - || fail "config dump does not round-trip"
# shellcheck disable=SC2046
check_download "https://localhost:$F13" 100000 8 $(res "$F13")
log "ok"
