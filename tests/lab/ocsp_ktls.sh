#!/usr/bin/env bash
# timeout: 120
# OCSP stapling on a real kTLS kernel: a handshake that carries a stapled response (openssl s_client -status:
# "Cert Status: good") still ends on kTLS — its close line says `datapath=splice ktls=tx+rx` — and the body
# arrives intact, TLS 1.2 and 1.3 (in 1.3 the staple rides in the Certificate message, in 1.2 in its own
# CertificateStatus message: both before the keys go to the kernel). Validation, reloads and the states are
# tests/host/ocsp.sh; this only proves the handoff after a stapled handshake.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl

"$B/tlsoffd" --probe -j | grep -q '"ulp":true' || skip "no kTLS on kernel $(uname -r): stapling itself is tests/host/ocsp.sh"

cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=tlsoff lab CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,digitalSignature" \
  -keyout ca.key -out ca.crt 2>/dev/null || fail "openssl: CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" -keyout leaf.key \
  -out leaf.csr 2>/dev/null || fail "openssl: request"
printf 'subjectAltName=DNS:localhost\n' >leaf.ext
openssl x509 -req -in leaf.csr -CA ca.crt -CAkey ca.key -set_serial 0x1001 -days 2 -extfile leaf.ext \
  -out leaf.crt 2>/dev/null || fail "openssl: leaf"
cat leaf.crt ca.crt >leaf.chain
"$B/tests/bin/ocsp_resp" ca.crt ca.key leaf.crt good -60 3600 >resp.der || fail "ocsp_resp"

BP=$(free_port); FP=$(free_port)
cat >tlsoff.conf <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert leaf.chain key leaf.key ocsp resp.der backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP"
expect_log "ocsp $T/resp.der: stapling for /CN=localhost"

want=$("$B/tests/bin/http_backend" --gen 200000 5 | sha256sum | cut -d' ' -f1)
for v in 1.2 1.3; do
  lp=$(free_port)
  printf 'GET /bytes/200000/5 HTTP/1.0\r\n\r\n' |
    timeout 60 openssl s_client -connect "127.0.0.1:$FP" -bind "127.0.0.1:$lp" -servername localhost "-tls${v/./_}" \
      -status -ign_eof >"out$v.txt" 2>&1 || true
  grep -aq 'Cert Status: good' "out$v.txt" || { head -c 3000 "out$v.txt"; fail "TLS $v: no good staple"; }
  # the body is followed by s_client's own lines: cut it from a file (head closing a pipe early would kill
  # sed with SIGPIPE, and pipefail would end the test there)
  sed '1,/^\r$/d' "out$v.txt" >"body$v"
  got=$(head -c 200000 "body$v" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "TLS $v: body sha256 $got, want $want"
  expect_log " close .*client=127.0.0.1:$lp " 10
  grep " close .*client=127.0.0.1:$lp " "$T/tlsoffd.log" | grep -q "tls=TLSv$v .*datapath=splice ktls=tx+rx " ||
    { grep " close .*client=127.0.0.1:$lp " "$T/tlsoffd.log"; fail "TLS $v: the stapled connection is not on kTLS TX+RX"; }
  log "TLS $v: stapled, kTLS TX+RX, body intact"
done
