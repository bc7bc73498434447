#!/usr/bin/env bash
# timeout: 300
# Client certificates on a real kTLS kernel: the handshake (with the client's Certificate and
# CertificateVerify) is OpenSSL's, the keys go to the kernel after it. A frontend with `client-ca` and
# `datapath splice`, its backend with `proxy-protocol v2`: a client-one connection (TLS 1.2 and 1.3) ends on
# kTLS TX+RX (close line, /proc/net/tls_stat), a download and an upload keep their sha256, and the backend
# reads CN client-one with verify 0 from the PP2_TYPE_SSL TLV; a resumed TLS 1.3 session also lands on
# kTLS with the CN. Only 6.1 and latest (TCG is slow; the path does not differ between kTLS kernels);
# tests/host/mtls.sh covers the rest on any kernel.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

case "${TLSOFF_LAB_KERNEL:-}" in
  6.1 | latest) ;;
  *) skip "runs on lab kernels 6.1 and latest only (this is '${TLSOFF_LAB_KERNEL:-not the lab}')" ;;
esac
"$B/tlsoffd" --probe -j | grep -q '"ulp":true' || fail "kernel $(uname -r) has no kTLS, but $TLSOFF_LAB_KERNEL should"

BP=$(free_port); FP=$(free_port)
make_cert edge localhost
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=lab test CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$T/ca.key" -out "$T/ca.crt" 2>/dev/null || fail "openssl req (CA) failed"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=client-one" \
  -keyout "$T/one.key" -out "$T/one.csr" 2>/dev/null || fail "openssl req (client) failed"
printf 'extendedKeyUsage=clientAuth\n' >"$T/one.ext"
openssl x509 -req -in "$T/one.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 -extfile "$T/one.ext" \
  -out "$T/one.crt" 2>/dev/null || fail "openssl x509 (client) failed"
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP proxy-protocol v2
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app datapath splice client-ca $T/ca.crt
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP"
ARGS=(--resolve "localhost:$FP:127.0.0.1" --cacert "$T/edge.crt" --cert "$T/one.crt" --key "$T/one.key")
# on_ktls LPORT: the connection from LPORT closed on splice with kTLS TX+RX
on_ktls() {
  expect_log " close .*client=127.0.0.1:$1 " 10
  grep " close .*client=127.0.0.1:$1 " "$T/tlsoffd.log" | grep -q "datapath=splice ktls=tx+rx " ||
    { grep " close .*client=127.0.0.1:$1 " "$T/tlsoffd.log"; fail "the connection from port $1 was not on kTLS splice"; }
}
tx0=$(tls_stat TlsTxSw); rx0=$(tls_stat TlsRxSw)

gen_file 1000000 3 "$T/up"
for v in 1.2 1.3; do
  log "TLS $v with client-one: kTLS splice, the CN at the backend, bytes intact"
  lp=$(free_port)
  who=$(curl -sS --fail --max-time 60 --local-port "$lp" --tlsv$v --tls-max $v "${ARGS[@]}" "https://localhost:$FP/whoami/ssl") ||
    fail "TLS $v: GET /whoami/ssl with client-one failed"
  case $who in "client=0x07 verify=0 version=TLSv$v cn=client-one cipher="*) ;; *) fail "TLS $v: the backend's SSL TLV said '$who'" ;; esac
  on_ktls "$lp"
  lp=$(free_port)
  check_download "https://localhost:$FP" 2000000 $RANDOM "${ARGS[@]}" --local-port "$lp" --tlsv$v --tls-max $v
  on_ktls "$lp"
  check_upload "https://localhost:$FP" "$T/up" "${ARGS[@]}" --tlsv$v --tls-max $v
done

log "a resumed TLS 1.3 session: no certificate sent, the CN still arrives, still kTLS"
printf 'GET /whoami/ssl HTTP/1.0\r\n\r\n' | timeout 60 openssl s_client -connect "127.0.0.1:$FP" -servername localhost \
  -tls1_3 -ign_eof -cert "$T/one.crt" -key "$T/one.key" -sess_out "$T/sess.pem" >"$T/full.txt" 2>&1 || true
[ -s "$T/sess.pem" ] || { head -c 2000 "$T/full.txt"; fail "s_client saved no session"; }
lp=$(free_port)
printf 'GET /whoami/ssl HTTP/1.0\r\n\r\n' | timeout 60 openssl s_client -connect "127.0.0.1:$FP" -bind "127.0.0.1:$lp" \
  -servername localhost -tls1_3 -ign_eof -sess_in "$T/sess.pem" >"$T/res.txt" 2>&1 || true
grep -aq '^Reused,' "$T/res.txt" || { head -c 2000 "$T/res.txt"; fail "the session did not resume"; }
grep -aq '^client=0x05 verify=0 version=TLSv1.3 cn=client-one cipher=' "$T/res.txt" ||
  { head -c 3000 "$T/res.txt"; fail "resumed: the backend did not see client-one (CERT_SESS, verify 0)"; }
on_ktls "$lp"

tx=$(( $(tls_stat TlsTxSw) - tx0 )); rx=$(( $(tls_stat TlsRxSw) - rx0 ))
[ "$tx" -ge 8 ] && [ "$rx" -ge 8 ] || fail "/proc/net/tls_stat counted $tx TX and $rx RX sessions, want >= 8 each"
log "ok ($tx kTLS TX / $rx RX sessions)"
