#!/usr/bin/env bash
# timeout: 180
# Client certificates (mTLS): `client-ca FILE [client-verify required|optional]` on a TLS frontend, and what
# reaches a `proxy-protocol v2` backend in the PP2_TYPE_SSL TLV (tests/bin/http_backend answers GET
# /whoami/ssl with the TLV it parsed: client flags, verify, version, CN, cipher).
# A test CA signs "client-one"; another CA signs "intruder". required: no certificate and intruder's are
# refused in the handshake with the reason logged, client-one gets through (CN and verify 0 at the backend,
# a transfer's sha256 intact, TLS 1.2 and 1.3). optional: no certificate and intruder's get through and the
# backend sees it in the flags and verify. A resumed session (TLS 1.2 and 1.3) still carries the verified
# CN, flagged CERT_SESS without CERT_CONN. A frontend without client-ca sends the SSL TLV too (no cert).
# Configuration: a missing or empty CA file is refused when applied, with the file named; config dump and
# frontend show carry the options. Other connections keep working throughout.
# On this kernel there is no kTLS: tests/lab/mtls_ktls.sh checks the kTLS splice path after client auth.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl curl

BP=$(free_port); PR=$(free_port); PO=$(free_port); PN=$(free_port)
make_cert edge localhost
# ca NAME: a self-signed CA; client NAME CA CN: a client certificate (clientAuth) signed by CA
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1 test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null || fail "openssl req (CA $1) failed"
}
client() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=tlsoff tests/CN=$3" \
    -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null || fail "openssl req (client $1) failed"
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$T/$1.ext"
  openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.crt" -CAkey "$T/$2.key" -CAcreateserial -days 2 \
    -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null || fail "openssl x509 (client $1) failed"
}
ca ca; ca otherca
client one ca client-one
client intruder otherca intruder

cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP proxy-protocol v2
frontend add req listen 127.0.0.1:$PR cert edge.crt key edge.key backend app alpn http/1.1 client-ca ca.crt
frontend add opt listen 127.0.0.1:$PO cert edge.crt key edge.key backend app client-ca ca.crt client-verify optional
frontend add none listen 127.0.0.1:$PN cert edge.crt key edge.key backend app
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$PR"
wait_port "$PO"; wait_port "$PN"

# get PORT PATH [CURL ARGS...]: GET https://localhost:PORT/PATH, the body on stdout; fails like curl
get() { local port=$1 path=$2; shift 2; curl -sS --fail --max-time 20 --resolve "localhost:$port:127.0.0.1" --cacert "$T/edge.crt" "$@" "https://localhost:$port$path"; }
ONE=(--cert "$T/one.crt" --key "$T/one.key")
INTRUDER=(--cert "$T/intruder.crt" --key "$T/intruder.key")
# expect_ssl PORT WANT [CURL ARGS...]: /whoami/ssl through PORT says WANT (the cipher is checked apart)
expect_ssl() {
  local port=$1 want=$2 got; shift 2
  got=$(get "$port" /whoami/ssl "$@") || fail "GET /whoami/ssl on port $port ($*) failed"
  [ "${got% cipher=*}" = "$want" ] || fail "port $port ($*): the backend's SSL TLV said '$got', want '$want cipher=...'"
  case ${got##* cipher=} in TLS_AES_*|TLS_CHACHA20_*|ECDHE-*) ;; *) fail "port $port: no cipher in the SSL TLV: $got" ;; esac
}
# refused PORT REASON [CURL ARGS...]: the handshake fails for the client, and tlsoffd logs why
refused() {
  local port=$1 why=$2 lp; shift 2
  lp=$(free_port)
  if get "$port" /whoami/ssl --local-port "$lp" "$@" >/dev/null 2>"$T/curl.err"; then
    fail "port $port ($*): the connection was accepted"
  fi
  expect_log "close frontend=req client=127.0.0.1:$lp .*reason=\"handshake: $why\""
  log "  refused: $(grep -o "client=127.0.0.1:$lp .*" "$T/tlsoffd.log" | grep -o 'reason=.*'); curl: $(head -c 200 "$T/curl.err")"
}

log "required: no client certificate, and one from another CA, are refused in the handshake"
refused "$PR" "no client certificate"
refused "$PR" "no client certificate" --tls-max 1.2
refused "$PR" "client certificate: unable to get local issuer certificate" "${INTRUDER[@]}"
refused "$PR" "client certificate: unable to get local issuer certificate" "${INTRUDER[@]}" --tls-max 1.2

log "required: client-one gets through; the backend sees its CN and verify 0, TLS 1.3 and 1.2"
expect_ssl "$PR" "client=0x07 verify=0 version=TLSv1.3 cn=client-one" "${ONE[@]}"
expect_ssl "$PR" "client=0x07 verify=0 version=TLSv1.2 cn=client-one" "${ONE[@]}" --tls-max 1.2
expect_log "frontend=req client=127.0.0.1:[0-9]+: client certificate cn=client-one verified"
check_download "https://localhost:$PR" 3000000 7 --resolve "localhost:$PR:127.0.0.1" "${ONE[@]}"
head -c 2000000 /dev/urandom >"$T/up.bin"
check_upload "https://localhost:$PR" "$T/up.bin" --resolve "localhost:$PR:127.0.0.1" "${ONE[@]}"
who=$(get "$PR" /whoami "${ONE[@]}")
case $who in "src=127.0.0.1:"*" dst=127.0.0.1:$PR alpn=http/1.1 authority=localhost") ;; *) fail "PROXY v2 addresses/ALPN/SNI: $who" ;; esac

log "optional: no certificate and a failing one get through, reported in the flags and verify"
expect_ssl "$PO" "client=0x01 verify=1 version=TLSv1.3 cn=-"
expect_log "frontend=opt client=127.0.0.1:[0-9]+: no client certificate \(client-verify optional\)"
expect_ssl "$PO" "client=0x07 verify=21 version=TLSv1.3 cn=intruder" "${INTRUDER[@]}"
expect_log "frontend=opt client=127.0.0.1:[0-9]+: client certificate cn=intruder not verified: unable to verify the first certificate"
expect_ssl "$PO" "client=0x07 verify=0 version=TLSv1.2 cn=client-one" "${ONE[@]}" --tls-max 1.2
check_download "https://localhost:$PO" 1000000 8 --resolve "localhost:$PO:127.0.0.1"

log "no client-ca: the SSL TLV still says TLS, version and cipher (no certificate)"
expect_ssl "$PN" "client=0x01 verify=1 version=TLSv1.3 cn=-"

log "resumption keeps the verified certificate: CERT_SESS without CERT_CONN, verify 0, the CN (TLS 1.2, 1.3)"
# sclient PORT VERSION OUT [ARGS...]: GET /whoami/ssl with openssl s_client; prints New or Reused, then the body
sclient() {
  local port=$1 v=$2 out=$3; shift 3
  printf 'GET /whoami/ssl HTTP/1.0\r\n\r\n' |
    timeout 30 openssl s_client -connect "127.0.0.1:$port" -servername localhost "-tls$v" -ign_eof "$@" >"$out" 2>&1 || true
  grep -m1 -aEo '^(New|Reused),' "$out" | tr -d ,
  sed '1,/^\r$/d' "$out" | grep -a '^client=' || true
}
for v in 1_2 1_3; do
  rm -f "$T/sess$v.pem"
  first=$(sclient "$PR" "$v" "$T/full$v.txt" -cert "$T/one.crt" -key "$T/one.key" -sess_out "$T/sess$v.pem")
  case $first in "New"$'\n'"client=0x07 verify=0 version=TLSv${v/_/.} cn=client-one cipher="*) ;;
    *) cat "$T/full$v.txt" | head -c 2000; fail "TLS $v: full handshake with client-one: '$first'" ;; esac
  [ -s "$T/sess$v.pem" ] || fail "TLS $v: s_client saved no session"
  again=$(sclient "$PR" "$v" "$T/res$v.txt" -sess_in "$T/sess$v.pem")
  case $again in "Reused"$'\n'"client=0x05 verify=0 version=TLSv${v/_/.} cn=client-one cipher="*) ;;
    *) head -c 2000 "$T/res$v.txt"; fail "TLS $v: resumed without sending a certificate: '$again'" ;; esac
  # A session from the optional frontend (another verify mode) must not resume on the required one.
  rm -f "$T/osess$v.pem"
  sclient "$PO" "$v" "$T/ofull$v.txt" -sess_out "$T/osess$v.pem" >/dev/null
  [ -s "$T/osess$v.pem" ] || fail "TLS $v: no session saved from the optional frontend"
  cross=$(sclient "$PR" "$v" "$T/cross$v.txt" -sess_in "$T/osess$v.pem")
  case $cross in Reused*) fail "TLS $v: a session without a certificate from 'opt' resumed on 'req': $cross" ;; esac
done
expect_log "client certificate cn=client-one verified \(resumed session\)"

log "configuration: a missing or empty CA file is refused when applied, naming the file"
out=$(ctl frontend add bad listen 127.0.0.1:$(free_port) cert "$T/edge.crt" key "$T/edge.key" backend app client-ca "$T/nope.pem" 2>&1) &&
  fail "frontend add with a missing client-ca was accepted"
grep -q "client-ca $T/nope.pem: No such file or directory" <<<"$out" || fail "missing client-ca: '$out'"
: >"$T/empty.pem"
out=$(ctl frontend add bad listen 127.0.0.1:$(free_port) cert "$T/edge.crt" key "$T/edge.key" backend app client-ca "$T/empty.pem" 2>&1) &&
  fail "frontend add with an empty client-ca was accepted"
grep -q "client-ca $T/empty.pem: " <<<"$out" || fail "empty client-ca: '$out'"
out=$(ctl frontend add bad listen 127.0.0.1:$(free_port) cert "$T/edge.crt" key "$T/edge.key" backend app client-verify optional 2>&1) &&
  fail "client-verify without client-ca was accepted"
grep -q "client-verify' needs 'client-ca" <<<"$out" || fail "client-verify alone: '$out'"
printf 'backend add app server 127.0.0.1:1\nfrontend add x listen 127.0.0.1:1 cert %s key %s backend app client-ca %s\n' \
  "$T/edge.crt" "$T/edge.key" "$T/empty.pem" >"$T/bad.conf"
if "$B/tlsoffd" -f "$T/bad.conf" --check 2>"$T/check.err"; then fail "tlsoffd --check accepted an empty client-ca"; fi
grep -q "frontend x: client-ca $T/empty.pem: " "$T/check.err" || fail "tlsoffd --check: $(cat "$T/check.err")"

log "runtime add, show and dump: the options travel over the control socket and reload to the same dump"
PA=$(free_port)
ctl frontend add added listen 127.0.0.1:$PA cert "$T/edge.crt" key "$T/edge.key" backend app client-ca "$T/ca.crt" client-verify optional
wait_port "$PA"
ctl frontend show added | grep -q "client-ca $T/ca.crt client-verify optional" || { ctl frontend show added; fail "frontend show: no client-ca"; }
ctl -j frontend show req | grep -q "\"client_verify\":\"required\"" || { ctl -j frontend show req; fail "frontend show -j: client_verify"; }
expect_ssl "$PA" "client=0x07 verify=0 version=TLSv1.3 cn=client-one" "${ONE[@]}"
PL=$(free_port)   # a relative client-ca path is sent absolute, from tlsoffctl's directory
(cd "$T" && ctl frontend add rel listen 127.0.0.1:$PL cert edge.crt key edge.key backend app client-ca ./ca.crt) ||
  fail "frontend add with a relative client-ca path"
ctl frontend show rel | grep -q "client-ca $T/ca.crt client-verify required" || { ctl frontend show rel; fail "relative client-ca path"; }
wait_port "$PL"
expect_ssl "$PL" "client=0x07 verify=0 version=TLSv1.3 cn=client-one" "${ONE[@]}"
ctl config dump >"$T/dump1.conf"
grep -q "frontend add req .* client-ca $T/ca.crt client-verify required" "$T/dump1.conf" || { cat "$T/dump1.conf"; fail "config dump: req's client-ca"; }
"$B/tlsoffd" -f "$T/dump1.conf" --check 2>"$T/check.err" || fail "the dump does not load: $(cat "$T/check.err")"

log "the other connections kept working"
check_download "https://localhost:$PN" 500000 9 --resolve "localhost:$PN:127.0.0.1"
check_download "https://localhost:$PR" 500000 10 --resolve "localhost:$PR:127.0.0.1" "${ONE[@]}"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
