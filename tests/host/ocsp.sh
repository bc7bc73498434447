#!/usr/bin/env bash
# timeout: 180
# OCSP stapling from a file (`cert CHAIN key KEY ocsp RESPONSE.der`): a test CA made here with openssl
# issues a leaf (SAN localhost) and a second certificate; `openssl ocsp -index` answers in file mode
# (-reqout/-respout, no network). tlsoffd staples the good response to clients that ask (openssl s_client
# -status: "OCSP Response Status: successful", "Cert Status: good") with TLS 1.2 and 1.3; a client that does
# not ask still works and downloads (sha256). Replacing the file, without a restart: a revoked response, one
# for another certificate, garbage and a stale one (nextUpdate passed, made by tests/bin/ocsp_resp) are not
# stapled and the log says why, once per change; a response that goes stale while loaded stops being
# stapled and says so once; a good one staples again. `cert show` (text and -j) shows the state; `cert
# replace ... ocsp` over the control socket and `config dump` carry the file; a missing file is refused.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need openssl curl
R="$B/tests/bin/ocsp_resp"

# ---- a CA, a leaf with SAN, another certificate, the CA's index.txt -----------------------------------
cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=tlsoff test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -keyout ca.key -out ca.crt 2>/dev/null || fail "openssl: CA"
issue() {  # issue NAME SERIAL CN
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" -keyout "$1.key" \
    -out "$1.csr" 2>/dev/null || fail "openssl: $1 request"
  printf 'subjectAltName=DNS:%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$2" -days 2 -extfile "$1.ext" \
    -out "$1.crt" 2>/dev/null || fail "openssl: $1 certificate"
  cat "$1.crt" ca.crt >"$1.chain"
}
issue leaf 1001 localhost
issue other 1002 other.test
exp=$(date -u -d "$(openssl x509 -in leaf.crt -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
index() {  # index FILE LEAF-STATUS(V|R)
  { if [ "$2" = R ]; then printf 'R\t%s\t%s\t1001\tunknown\t/CN=localhost\n' "$exp" "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)"
    else printf 'V\t%s\t\t1001\tunknown\t/CN=localhost\n' "$exp"; fi
    printf 'V\t%s\t\t1002\tunknown\t/CN=other.test\n' "$exp"; } >"$1"
}
index index.txt V
index index.rev R
respond() {  # respond INDEX CERT OUT: the CA answers a request for CERT, file mode
  openssl ocsp -index "$1" -rsigner ca.crt -rkey ca.key -CA ca.crt -issuer ca.crt -cert "$2" -no_nonce \
    -reqout "$3.req" -respout "$3" -ndays 1 >/dev/null 2>&1 || fail "openssl ocsp for $2"
  [ -s "$3" ] || fail "openssl ocsp wrote no $3"
}
respond index.txt leaf.crt good.der
respond index.rev leaf.crt revoked.der
respond index.txt other.crt other.der
"$R" ca.crt ca.key leaf.crt good -7200 -60 >stale.der || fail "ocsp_resp"
head -c 700 /dev/urandom >garbage.der
openssl ocsp -respin revoked.der -resp_text -noverify 2>/dev/null | grep -q 'Cert Status: revoked' ||
  fail "the test CA did not make a revoked response"
# put SRC: replace resp.der atomically (a new name renamed over it, as a fetcher should), and remember
# where the log is, so that expect_new sees only what the change logged
MARK=0
put() { cp "$1" resp.der.tmp; mv resp.der.tmp resp.der; MARK=$({ wc -l <"$T/tlsoffd.log"; } 2>/dev/null || echo 0); }
# expect_new REGEX [SECONDS]: a line logged since the last put matches
expect_new() {
  local i
  for i in $(seq $((${2:-5} * 10))); do tail -n +$((MARK + 1)) "$T/tlsoffd.log" | grep -Eq "$1" && return 0; sleep 0.1; done
  echo "--- tlsoffd.log since the change:"; tail -n +$((MARK + 1)) "$T/tlsoffd.log" | tail -n 20
  fail "tlsoffd never logged /$1/ after the change"
}
put good.der

# ---- tlsoffd stapling it ------------------------------------------------------------------------------
BP=$(free_port); FP=$(free_port)
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert leaf.chain key leaf.key ocsp resp.der backend app
CONF
"$B/tlsoffd" -f "$T/tlsoff.conf" --check 2>"$T/check.log" || { cat "$T/check.log"; fail "--check refused it"; }
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP"
expect_log "ocsp $T/resp.der: stapling for /CN=localhost: good"

# stapled VERSION: "good" when the handshake carried a successful response saying good, "none" when the
# server sent none (anything else fails)
stapled() {
  local out
  out=$(echo | timeout 20 openssl s_client -connect "127.0.0.1:$FP" -servername localhost "-tls$1" -status 2>&1) ||
    true
  grep -q 'Verify return code\|Protocol *:' <<<"$out" || { echo "$out"; fail "s_client -tls$1: no handshake"; }
  if grep -q 'OCSP response: no response sent' <<<"$out"; then echo none; return; fi
  grep -q 'OCSP Response Status: successful' <<<"$out" && grep -q 'Cert Status: good' <<<"$out" &&
    grep -q 'Serial Number: 1001' <<<"$out" ||
    { echo "$out"; fail "s_client -tls$1: a stapled response that is not successful/good"; }
  echo good
}
expect_staple() {  # expect_staple good|none WHY
  local v got
  for v in 1_2 1_3; do
    got=$(stapled "$v")
    [ "$got" = "$1" ] || fail "TLS ${v/_/.}: staple $got, want $1 ($2)"
  done
}
show_state() { ctl -j cert show edge | grep -o '"state":"[a-z]*"' | cut -d'"' -f4; }

expect_staple good "a good response"
check_s_client "$FP"                                   # no status_request: no staple, works the same
check_download "https://127.0.0.1:$FP" 300000 7
[ "$(show_state)" = stapling ] || fail "cert show -j: state $(show_state), want stapling"
ctl cert show edge | grep -q "ocsp $T/resp.der: stapling (next update 20" || { ctl cert show edge; fail "cert show: no stapling line"; }
ctl config dump | grep -q "cert $T/leaf.chain key $T/leaf.key ocsp $T/resp.der" || { ctl config dump; fail "config dump has no ocsp"; }

# ---- replaced by bad responses, no restart: not stapled, one log line per change ---------------------
put revoked.der
expect_new "error: ocsp $T/resp.der: NOT stapled for /CN=localhost: the certificate is REVOKED"
expect_staple none "revoked"
check_download "https://127.0.0.1:$FP" 100000 8
[ "$(show_state)" = revoked ] || fail "cert show -j: state $(show_state), want revoked"
[ "$(grep -c 'REVOKED' "$T/tlsoffd.log")" = 1 ] || fail "the revoked response was logged more than once"

put other.der
expect_new "ocsp $T/resp.der: not stapled for /CN=localhost \(mismatch\): it is not about this certificate"
expect_staple none "another certificate's response"
[ "$(show_state)" = mismatch ] || fail "cert show -j: state $(show_state), want mismatch"

put garbage.der
expect_new "ocsp $T/resp.der: not stapled for /CN=localhost \(invalid\): not a DER OCSP response"
expect_staple none "garbage"

put stale.der
expect_new "ocsp $T/resp.der: not stapled for /CN=localhost \(stale\): nextUpdate .* has passed"
expect_staple none "stale"
[ "$(show_state)" = stale ] || fail "cert show -j: state $(show_state), want stale"
ctl cert show edge | grep -q "ocsp $T/resp.der: stale since 20" || { ctl cert show edge; fail "cert show: no stale line"; }

# ---- good for 8 more seconds: stapled, then stale while loaded (said once), then a fresh one ----------
"$R" ca.crt ca.key leaf.crt good -60 8 >short.der || fail "ocsp_resp"
put short.der
expect_new "ocsp $T/resp.der: stapling for /CN=localhost: good, thisUpdate .*, nextUpdate"
expect_staple good "valid for a few seconds"
expect_new "warning: ocsp $T/resp.der: no longer stapled: nextUpdate .* has passed" 15
expect_staple none "gone stale while loaded"
expect_staple none "gone stale while loaded"
[ "$(grep -c 'no longer stapled' "$T/tlsoffd.log")" = 1 ] || fail "the expiry was logged more than once"
put good.der
expect_new "ocsp $T/resp.der: stapling for /CN=localhost: good, thisUpdate .*, nextUpdate .*" 5
expect_staple good "renewed"

# ---- the control socket: cert replace with an ocsp file; a missing file is refused --------------------
cp good.der good2.der
ctl cert replace edge cert "$T/leaf.chain" key "$T/leaf.key" ocsp "$T/good2.der" >/dev/null ||
  fail "cert replace ... ocsp refused"
ctl cert show edge | grep -q "ocsp $T/good2.der: stapling" || { ctl cert show edge; fail "cert replace did not take the ocsp file"; }
expect_staple good "after cert replace"
if out=$(ctl cert add edge cert "$T/other.chain" key "$T/other.key" ocsp "$T/missing.der" 2>&1); then
  fail "cert add with a missing ocsp file was accepted"
fi
grep -q "ocsp $T/missing.der: No such file or directory" <<<"$out" || fail "missing file refused with: $out"
ctl cert add edge cert "$T/other.chain" key "$T/other.key" ocsp "$T/other.der" >/dev/null ||
  fail "cert add with its own response refused"
out=$(echo | timeout 20 openssl s_client -connect "127.0.0.1:$FP" -servername other.test -status 2>&1) || true
grep -q 'Cert Status: good' <<<"$out" && grep -q 'Serial Number: 1002' <<<"$out" ||
  { echo "$out"; fail "other.test: its own response is not stapled"; }
grep -q "subject=CN *= *other.test" <<<"$out" || fail "other.test: not its certificate"
sed -i 's|ocsp resp.der|ocsp missing.der|' "$T/tlsoff.conf"
if "$B/tlsoffd" -f "$T/tlsoff.conf" --check 2>"$T/check.log"; then fail "--check accepted a missing ocsp file"; fi
grep -q "missing.der: No such file or directory" "$T/check.log" || { cat "$T/check.log"; fail "--check: unclear message"; }
# SIGHUP: a file naming a missing response is refused and the running one keeps stapling; one naming
# another file switches to it
kill -HUP "$TLSOFFD_PID"
expect_log "missing.der: No such file or directory"
expect_staple good "after a refused reload"
sed -i 's|ocsp missing.der|ocsp good.der|' "$T/tlsoff.conf"
kill -HUP "$TLSOFFD_PID"
expect_log "ocsp $T/good.der: stapling for /CN=localhost"
ctl cert show edge | grep -q "ocsp $T/good.der: stapling" || { ctl cert show edge; fail "SIGHUP did not switch the ocsp file"; }
expect_staple good "after SIGHUP"
check_download "https://127.0.0.1:$FP" 300000 9
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
