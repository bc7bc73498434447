#!/usr/bin/env bash
# metrics listen ADDR:PORT: Prometheus text that promtool accepts, counters that move with real traffic
# (handshakes by version/cipher/result, bytes by datapath, errors by reason, open connections by frontend),
# an HTTP endpoint that a silent client cannot block, and the setting changed at run time with tlsoffctl.
# timeout: 180
source "$(dirname "$0")/../lib.sh"
need curl openssl promtool python3

BP=$(free_port); FP=$(free_port); PP=$(free_port); MP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
metrics listen 127.0.0.1:$MP
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app
frontend add raw listen 127.0.0.1:$PP plain backend app
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP"
wait_port "$MP"

# scrape [PORT]: the metrics text into $T/m.txt, checked by promtool (format and naming lint)
scrape() {
  curl -sS --fail --max-time 5 "http://127.0.0.1:${1:-$MP}/metrics" >"$T/m.txt" || fail "scrape failed"
  promtool check metrics <"$T/m.txt" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out"; fail "promtool check metrics refused the text"; }
}
# metric 'NAME{LABELS}': its value in the last scrape (0 when absent)
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$T/m.txt"; }

scrape
log "first scrape: $(wc -l <"$T/m.txt") lines, promtool ok"
grep -q '^# TYPE tlsoff_handshakes_total counter$' "$T/m.txt" || fail "no handshakes family"
[ "$(metric 'tlsoff_handshakes_total{version="TLSv1.3",cipher="TLS_AES_128_GCM_SHA256",result="full"}')" = 0 ] ||
  fail "handshakes before any traffic"
h13=$(metric 'tlsoff_handshakes_total{version="TLSv1.3",cipher="TLS_AES_256_GCM_SHA384",result="full"}')

# traffic: TLS 1.3 and 1.2 downloads and an upload (byte-exact), a plain (sockmap) download
check_download "https://127.0.0.1:$FP" 4000000 1 --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384
check_download "https://127.0.0.1:$FP" 1000000 2 --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305
head -c 3000000 /dev/urandom >"$T/up.bin"
check_upload "https://127.0.0.1:$FP" "$T/up.bin"
check_download "http://127.0.0.1:$PP" 2000000 3
# a failed handshake (TLS 1.1 is refused) and a resumed one (session saved, then offered again)
openssl s_client -tls1_1 -connect "127.0.0.1:$FP" </dev/null >/dev/null 2>&1 && fail "TLS 1.1 accepted"
openssl s_client -tls1_2 -connect "127.0.0.1:$FP" -sess_out "$T/sess" </dev/null >/dev/null 2>&1 || fail "s_client"
openssl s_client -tls1_2 -connect "127.0.0.1:$FP" -sess_in "$T/sess" </dev/null >"$T/resumed.txt" 2>/dev/null || true
grep -q '^Reused' "$T/resumed.txt" || fail "session not resumed"

# open connections by frontend: one held open (a client that sends nothing after its handshake)
python3 -c 'import socket, ssl, sys, time
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
time.sleep(30)' "$FP" &
HOLD=$!; PIDS+=("$HOLD")
for _ in $(seq 50); do
  scrape
  [ "$(metric 'tlsoff_open_connections{frontend="edge",mode="tls"}')" = 1 ] && break
  sleep 0.1
done
[ "$(metric 'tlsoff_open_connections{frontend="edge",mode="tls"}')" = 1 ] || { cat "$T/m.txt"; fail "open connections of edge not 1"; }
[ "$(metric 'tlsoff_open_connections{frontend="raw",mode="plain"}')" = 0 ] || fail "open connections of raw not 0"
kill "$HOLD" 2>/dev/null || true

# the counters moved as the traffic says
sleep 0.5   # the plain connection's sockmap bytes are counted when it closes
scrape
v=$(metric 'tlsoff_handshakes_total{version="TLSv1.3",cipher="TLS_AES_256_GCM_SHA384",result="full"}')
[ "$v" -ge $((h13 + 1)) ] || fail "TLS 1.3 AES-256 full handshakes: $v, want >= $((h13 + 1))"
v=$(metric 'tlsoff_handshakes_total{version="TLSv1.2",cipher="ECDHE-ECDSA-CHACHA20-POLY1305",result="full"}')
[ "$v" -ge 1 ] || fail "TLS 1.2 ChaCha20 full handshakes: $v"
v=$(metric 'tlsoff_handshakes_total{version="TLSv1.2",cipher="ECDHE-ECDSA-AES128-GCM-SHA256",result="resumed"}')
[ "$v" -ge 1 ] || fail "resumed handshakes: $v"
v=$(metric 'tlsoff_handshakes_total{version="other",cipher="other",result="failed"}')
[ "$v" -ge 1 ] || fail "failed handshakes: $v"
v=$(metric 'tlsoff_connection_errors_total{reason="handshake_failed"}')
[ "$v" -ge 1 ] || fail "errors by reason handshake_failed: $v"
v=$(metric 'tlsoff_bytes_total{datapath="userspace",direction="out"}')
[ "$v" -ge 5000000 ] || fail "userspace bytes out: $v, want >= 5000000"
v=$(metric 'tlsoff_bytes_total{datapath="userspace",direction="in"}')
[ "$v" -ge 3000000 ] || fail "userspace bytes in: $v, want >= 3000000"
v=$(metric 'tlsoff_bytes_total{datapath="sockmap",direction="out"}')
[ "$v" -ge 2000000 ] || fail "sockmap bytes out: $v, want >= 2000000"
v=$(metric 'tlsoff_sockmap_skbs_total{outcome="redirected"}')
[ "$v" -ge 2 ] || fail "sockmap verdict: $v skbs redirected for a 2 MB download"
for o in redirect_fail overlap_failed; do
  v=$(metric "tlsoff_sockmap_skbs_total{outcome=\"$o\"}")
  [ "$v" = 0 ] || fail "sockmap verdict: $o is $v"
done
v=$(metric 'tlsoff_connections_accepted_total')
[ "$v" -ge 8 ] || fail "accepted: $v"
log "counters moved: $(grep -v '^#' "$T/m.txt" | grep -cv ' 0$') non-zero samples"

# the endpoint: 404 elsewhere, 405 for POST, and a silent client blocks neither scrapes nor the daemon
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/nope")" = 404 ] || fail "no 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -d x "http://127.0.0.1:$MP/metrics")" = 405 ] || fail "no 405"
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.send(b"GET /met"); time.sleep(8)' "$MP" &
PIDS+=($!)
sleep 0.3
scrape
check_download "https://127.0.0.1:$FP" 100000 4
ctl status >/dev/null || fail "tlsoffctl status while a metrics client stalls"

# at run time: move it, refuse a busy address (keeping the old one), turn it off; the dump replays
ctl metrics listen "127.0.0.1:$FP" 2>"$T/err" && fail "metrics on a frontend's address accepted"
grep -q "frontend edge listens there" "$T/err" || { cat "$T/err"; fail "unclear refusal"; }
MP2=$(free_port)
ctl metrics listen "127.0.0.1:$MP2"
scrape "$MP2"
curl -s --max-time 2 "http://127.0.0.1:$MP/metrics" >/dev/null && fail "the old metrics address still answers"
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(20)' "$MP" &
PIDS+=($!)
wait_port "$MP"
ctl metrics listen "127.0.0.1:$MP" 2>"$T/err" && fail "metrics on a busy address accepted"
grep -q "address already in use" "$T/err" || { cat "$T/err"; fail "unclear refusal: $(cat "$T/err")"; }
scrape "$MP2"   # still served where it was
ctl config dump >"$T/dump1"
grep -qx "metrics listen 127.0.0.1:$MP2" "$T/dump1" || fail "dump lacks the metrics line"
ctl metrics off
curl -s --max-time 2 "http://127.0.0.1:$MP2/metrics" >/dev/null && fail "metrics off still answers"
ctl config dump | grep -q '^metrics' && fail "metrics off still in the dump"
# a file with it twice is refused with the line
printf 'metrics listen 127.0.0.1:%s\nmetrics off\n' "$MP2" >"$T/twice.conf"
"$B/tlsoffd" --check -f "$T/twice.conf" 2>"$T/err" && fail "metrics given twice accepted"
grep -q "twice.conf:2: metrics given twice" "$T/err" || fail "unclear: $(cat "$T/err")"
log "metrics ok"
