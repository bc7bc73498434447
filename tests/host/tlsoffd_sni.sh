#!/usr/bin/env bash
# timeout: 90
# tlsoffd's certificate choice by SNI and its ALPN negotiation, seen from real clients.
# A frontend with two certificates, a.test (the first, so the default) and *.b.test: openssl s_client gets
# the certificate with the right fingerprint and subject for each name — b only for names one label below
# b.test, a for unknown names and for no SNI at all — in TLS 1.3 and 1.2; curl, verifying against only the
# expected certificate, completes a request through each; the log's sni= field has the name. A second
# frontend listing the same certificates the other way round proves the default is "the first", not "a".
# ALPN: with `alpn h2,http/1.1`, curl --http1.1 gets http/1.1, s_client offering both gets h2 (the
# server's order), an unknown protocol gets no ALPN and still a working connection; the log's alpn= says so.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

BP=$(free_port) FP=$(free_port) RP=$(free_port) AP=$(free_port)
make_cert a a.test
make_cert b '*.b.test'
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add sni listen 127.0.0.1:$FP cert $T/a.crt key $T/a.key cert $T/b.crt key $T/b.key backend app
frontend add rev listen 127.0.0.1:$RP cert $T/b.crt key $T/b.key cert $T/a.crt key $T/a.key backend app
frontend add alpn listen 127.0.0.1:$AP cert $T/edge.crt key $T/edge.key backend app alpn h2,http/1.1
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$AP" --workers 2

fp_of() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
FA=$(fp_of "$T/a.crt") FB=$(fp_of "$T/b.crt")
[ "$FA" != "$FB" ] || fail "the two test certificates have the same fingerprint"
nclose() { grep -c ' close ' "$T/tlsoffd.log" || true; }
# wait_close N: tlsoffd's Nth close line (connections here are one after the other)
wait_close() {
  for _ in $(seq 150); do [ "$(nclose)" -ge "$1" ] && break; sleep 0.1; done   # generous: a loaded CI box
  [ "$(nclose)" -ge "$1" ] || fail "tlsoffd logged $(nclose) closes, expected $1"
  grep ' close ' "$T/tlsoffd.log" | sed -n "$1p"
}

# served PORT NAME|- [S_CLIENT ARGS]: the served certificate's "FINGERPRINT|SUBJECT" ("-": no SNI at all)
served() {
  local port=$1 name=$2 sni; shift 2
  if [ "$name" = - ]; then sni=(-noservername); else sni=(-servername "$name"); fi
  timeout 10 openssl s_client -connect "127.0.0.1:$port" "${sni[@]}" "$@" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 -subject -nameopt RFC2253 | sed 's/.*Fingerprint=//; s/^subject=//' |
    paste -sd'|'
}

n=$(nclose)
# name         expected cert  why
cases="a.test       a  exact name
       x.b.test     b  the wildcard's one label
       X.B.Test     b  names are case-insensitive
       b.test       a  a wildcard does not cover its own base name
       y.x.b.test   a  a wildcard covers exactly one label
       unknown.test a  no match: the default, the first certificate
       -            a  no SNI: the default"
while read -r name want why; do
  for v in -tls1_3 -tls1_2; do
    got=$(served "$FP" "$name" "$v")
    if [ "$want" = a ]; then exp="$FA|CN=a.test"; else exp="$FB|CN=*.b.test"; fi
    [ "$got" = "$exp" ] || fail "SNI '$name' ($v, $why): served '$got', want cert $want '$exp'"
    n=$((n + 1)); line=$(wait_close "$n")
    sni=$([ "$name" = - ] && echo - || echo "$name")
    grep -q " sni=$sni " <<<"$line" || fail "SNI '$name' ($v): the log's sni= is not '$sni': $line"
  done
  log "SNI '$name' -> cert $want ($why)"
done <<<"$cases"

log "the default is the first certificate listed, whichever it is"
[ "$(served "$RP" unknown.test)" = "$FB|CN=*.b.test" ] || fail "frontend rev: unknown name did not get its first cert (b)"
[ "$(served "$RP" -)" = "$FB|CN=*.b.test" ] || fail "frontend rev: no SNI did not get its first cert (b)"
[ "$(served "$RP" a.test)" = "$FA|CN=a.test" ] || fail "frontend rev: a.test did not get cert a"
n=$((n + 3))

log "an SNI with a space, a quote and a newline cannot forge log fields or lines"
evil=$'x y" reason="forged\n2000-01-01T00:00:00.000Z notice: close frontend=forged'
[ "$(served "$FP" "$evil")" = "$FA|CN=a.test" ] || fail "a garbage SNI did not get the default certificate"
n=$((n + 1)); line=$(wait_close "$n")
grep -q 'forged' <<<"$line" || fail "the SNI is missing from the close line: $line"
grep -q 'frontend=forged\|reason="forged' "$T/tlsoffd.log" && fail "the SNI forged a log field or line: $(grep -n forged "$T/tlsoffd.log")"
grep -q ' sni=x\\x20y\\x22\\x20reason\\x3d\\x22forged\\x0a2000-01-01' <<<"$line" || fail "SNI not escaped as expected: $line"

log "curl verifying against only the expected certificate: a request through each"
check_download "https://a.test:$FP" 200000 1 --resolve "a.test:$FP:127.0.0.1" --cacert "$T/a.crt"
check_download "https://x.b.test:$FP" 200000 2 --resolve "x.b.test:$FP:127.0.0.1" --cacert "$T/b.crt"
check_download "https://x.b.test:$FP" 200000 3 --resolve "x.b.test:$FP:127.0.0.1" --cacert "$T/b.crt" --tls-max 1.2
# The same trust, names b must not get: the handshake has to fail certificate verification.
for name in b.test y.x.b.test; do
  if curl -sS -o /dev/null --resolve "$name:$FP:127.0.0.1" --cacert "$T/b.crt" "https://$name:$FP/" 2>"$T/curl.err"; then
    fail "curl trusting only b accepted $name"
  fi
  grep -qi 'certificate' "$T/curl.err" || fail "curl to $name failed, but not on the certificate: $(cat "$T/curl.err")"
done
n=$((n + 5))

log "ALPN h2,http/1.1: curl --http1.1 negotiates http/1.1"
curl -sS -k --http1.1 -v -o "$T/body" "https://127.0.0.1:$AP/bytes/100000/4" 2>"$T/curl.err" || fail "curl --http1.1"
grep -q 'ALPN.*server accepted.*http/1.1' "$T/curl.err" || fail "curl did not see http/1.1 accepted: $(grep ALPN "$T/curl.err")"
[ "$(sha256 "$T/body")" = "$("$B/tests/bin/http_backend" --gen 100000 4 | sha256sum | cut -d' ' -f1)" ] ||
  fail "body through the ALPN frontend differs"
n=$((n + 1)); line=$(wait_close "$n")
grep -q ' alpn=http/1.1 ' <<<"$line" || fail "log's alpn= is not http/1.1: $line"

# alpn_of ARGS: the protocol s_client reports, or "none"
alpn_of() {
  timeout 10 openssl s_client -connect "127.0.0.1:$AP" -servername localhost "$@" </dev/null 2>/dev/null |
    sed -n 's/^ALPN protocol: //p; s/^No ALPN negotiated$/none/p' | head -n1
}
log "s_client offering http/1.1 only, both (server order wins: h2), and an unknown protocol"
for c in "http/1.1:http/1.1:http/1.1" "h2,http/1.1:h2:h2" "http/1.1,h2:h2:h2" "spdy/3:none:-"; do
  offer=${c%%:*} rest=${c#*:}; want=${rest%%:*} logged=${rest#*:}
  got=$(alpn_of -alpn "$offer")
  [ "$got" = "$want" ] || fail "s_client -alpn $offer: negotiated '$got', want '$want'"
  n=$((n + 1)); line=$(wait_close "$n")
  grep -q " alpn=$logged " <<<"$line" || fail "s_client -alpn $offer: log's alpn= is not '$logged': $line"
  log "  offer $offer -> $got"
done
got=$(alpn_of)
[ "$got" = none ] || fail "s_client without ALPN: negotiated '$got'"

kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
