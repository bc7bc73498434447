#!/usr/bin/env bash
# timeout: 120
# tlsoffd against clients and backends that misbehave: plaintext HTTP and random bytes instead of a
# ClientHello, a ClientHello cut in half, a client idling in the handshake (handshake-timeout), a client
# that resets mid-download, backends that refuse (every server tried; next server on connect failure),
# reset mid-stream, never answer (idle-timeout) or never complete the TCP connect (connect-timeout).
# Each bad connection must close with its own logged reason (found by its client port) while a 64 MB
# download keeps flowing and arrives with its sha256 intact — through the frontend the bad clients use;
# the bad backends sit behind other frontends of the same daemon, on the same workers. tlsoffd must not
# crash and must end with as many file descriptors as it started with.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl

BP=$(free_port)      # the real HTTP backend
RP=$(free_port)      # accepts, answers 100 bytes, then RST
SP=$(free_port)      # accepts and stays silent
KP=$(free_port)      # full accept queue: connects never complete
D1=$(free_port) D2=$(free_port)   # nothing listens here (checked below)
FP=$(free_port) F2=$(free_port) F3=$(free_port) F4=$(free_port) F5=$(free_port) F6=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
backend add dead server 127.0.0.1:$D1 server 127.0.0.1:$D2
backend add second server 127.0.0.1:$D1 server 127.0.0.1:$BP balance roundrobin
backend add resets server 127.0.0.1:$RP
backend add silent server 127.0.0.1:$SP
backend add stuck server 127.0.0.1:$KP connect-timeout 1000
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app handshake-timeout 1000
frontend add dead listen 127.0.0.1:$F2 cert $T/edge.crt key $T/edge.key backend dead
frontend add second listen 127.0.0.1:$F3 cert $T/edge.crt key $T/edge.key backend second
frontend add resets listen 127.0.0.1:$F4 cert $T/edge.crt key $T/edge.key backend resets
frontend add silent listen 127.0.0.1:$F5 cert $T/edge.crt key $T/edge.key backend silent idle-timeout 1000
frontend add stuck listen 127.0.0.1:$F6 cert $T/edge.crt key $T/edge.key backend stuck
CONF
start_backend "$BP"
for m in reset:$RP silent:$SP backlog:$KP; do
  "$B/tests/bin/bad_backend" "${m%%:*}" "127.0.0.1:${m#*:}" >"$T/bad_backend.${m%%:*}" 2>>"$T/backend.log" &
  PIDS+=($!)
done
for m in reset silent backlog; do
  for _ in $(seq 50); do grep -q ready "$T/bad_backend.$m" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$T/bad_backend.$m" || fail "bad_backend $m never got ready"
done
for p in $D1 $D2; do ss -Htln "sport = :$p" | grep . >/dev/null && fail "port $p was meant to be unused"; done
start_tlsoffd "$T/tlsoff.conf" "$F6" --workers 2
PEER="$B/tests/bin/bad_peer"
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# close_line PORT: tlsoffd's close line for the client connection from local port PORT
close_line() {
  local i
  for i in $(seq 150); do
    grep -E "close frontend=[^ ]+ client=127\\.0\\.0\\.1:$1 " "$T/tlsoffd.log" && return 0
    sleep 0.1
  done
  fail "no close line for client port $1"
}
# expect_reason PORT REGEX: that connection was closed, with a reason matching REGEX
expect_reason() {
  local line; line=$(close_line "$1")
  grep -Eq "reason=\"$2" <<<"$line" || fail "client port $1: reason does not match /$2/: $line"
  log "  $(grep -o 'reason=.*' <<<"$line")"
}

log "baseline: one good request, then tlsoffd's descriptors"
check_download "https://127.0.0.1:$FP" 1000 1
expect_log 'close frontend=edge '
sleep 0.2      # the close line is written just before the connection's descriptors are closed
fds0=$(fd_count "$TLSOFFD_PID")

log "a 64 MB download through frontend edge, kept in flight until every bad case is done"
rm -f "$T/go"
"$PEER" download "127.0.0.1:$FP" 67108864 42 "$T/go" >"$T/download.out" 2>"$T/download.err" &
DL=$!; PIDS+=("$DL")      # killed on exit, should the test fail while it waits for its go file
for _ in $(seq 50); do grep -q '^port=' "$T/download.out" && break; sleep 0.1; done
dl_port=$(field port "$(head -n1 "$T/download.out")")
[ -n "$dl_port" ] || fail "the download never started: $(cat "$T/download.err")"
sleep 0.5

# Every case below: the connection ends by itself (bad_peer waits for tlsoffd to close it), with the
# reason logged for that connection; the download, checked after each case, is still running.
still_running() {
  kill -0 "$DL" 2>/dev/null || fail "the concurrent download ended during: $1 ($(cat "$T/download.out"))"
  grep -Eq "client=127\\.0\\.0\\.1:$dl_port " "$T/tlsoffd.log" && fail "the download's connection was closed during: $1"
  kill -0 "$TLSOFFD_PID" || fail "tlsoffd died during: $1"
}

log "plaintext HTTP instead of a ClientHello"
out=$("$PEER" http "127.0.0.1:$FP")
[ "$(field closed_ms "$out")" != never ] && [ "$(field closed_ms "$out")" -lt 1000 ] || fail "not closed at once: $out"
expect_reason "$(field port "$out")" 'handshake: .*http request'
still_running "plaintext HTTP"

log "random bytes instead of a ClientHello"
for seed in 1 2 3; do
  out=$("$PEER" random "127.0.0.1:$FP" 600 "$seed")
  [ "$(field closed_ms "$out")" != never ] && [ "$(field closed_ms "$out")" -lt 1000 ] || fail "not closed at once: $out"
  expect_reason "$(field port "$out")" 'handshake: '
done
still_running "random bytes"

log "half a ClientHello, then the client closes"
out=$("$PEER" hello-cut "127.0.0.1:$FP")
[ "$(field closed_ms "$out")" != never ] && [ "$(field closed_ms "$out")" -lt 1000 ] || fail "not closed at once: $out"
expect_reason "$(field port "$out")" 'handshake: .*(unexpected eof|closed the connection)'
still_running "truncated handshake"

log "a client that connects and says nothing: handshake-timeout 1000"
out=$("$PEER" idle "127.0.0.1:$FP")
ms=$(field closed_ms "$out")
# at the earliest after the timeout; the upper bound only has to tell it from the 10 s default on a busy box
[ "$ms" != never ] && [ "$ms" -ge 950 ] && [ "$ms" -le 5000 ] || fail "idle client closed after $ms ms, want ~1000: $out"
expect_reason "$(field port "$out")" 'handshake timeout"'
still_running "handshake timeout"

log "a client that resets (SO_LINGER 0) in the middle of a 100 MB download"
out=$("$PEER" rst-download "127.0.0.1:$FP" 100000000 2000000)
expect_reason "$(field port "$out")" 'client: connection reset"'
still_running "client reset"

log "a backend whose servers both refuse: every server tried, then closed with the reason"
out=$(curl -sS -k -w 'port=%{local_port}' -o /dev/null "https://127.0.0.1:$F2/bytes/1000/1" 2>/dev/null) &&
  fail "curl succeeded through a backend with no server"
port=$(field port "$out")
expect_reason "$port" 'backend: no server reachable \(2 tried; last 127\.0\.0\.1:[0-9]+: connect: Connection refused\)'
n=$(grep -c "client=127.0.0.1:$port: backend dead server 127.0.0.1:\\($D1\\|$D2\\): connect: Connection refused" "$T/tlsoffd.log" || true)
[ "$n" -eq 2 ] || fail "expected one refused connect per server (2), got $n"
still_running "no server reachable"

log "a backend whose first server refuses and second works: next server on connect failure"
# roundrobin starts at a different server each time: two requests make sure one starts at the dead one
for i in 1 2; do check_download "https://127.0.0.1:$F3" 300000 "$i"; done
grep -Eq "backend second server 127\\.0\\.0\\.1:$D1: connect: Connection refused, trying the next server" \
  "$T/tlsoffd.log" || fail "no 'trying the next server' for backend second"
n=$(grep -Ec "close frontend=second .*server=127\\.0\\.0\\.1:$BP .*reason=\"done\"" "$T/tlsoffd.log" || true)
[ "$n" -eq 2 ] || fail "expected both requests served by the second server, got $n"
still_running "next server"

log "a backend that sends 100 bytes of a close-delimited body, then resets"
all=$("$PEER" download "127.0.0.1:$F4" 1000000 1 /)   # GO=/ exists: read at full speed
port=$(field port "$(head -n1 <<<"$all")") out=$(tail -n1 <<<"$all")
# The body stops at what the backend sent, and the client must not get a close_notify: that would tell it
# the truncated body was complete.
[ "$(field body "$out")" = 100 ] || fail "body: $out"
[ "$(field end "$out")" != close_notify ] || fail "a backend reset reached the client as a clean close_notify"
expect_reason "$port" 'backend: connection reset"'
still_running "backend reset"

# timed_failure PORT WHAT REASON_REGEX: a request through frontend PORT must fail after ~1 s (the
# frontend's timeout), and its connection must be logged with that reason.
timed_failure() {
  local t0 out ms
  t0=$(date +%s%N)
  out=$(curl -sS -k --max-time 10 -w 'port=%{local_port}' -o /dev/null "https://127.0.0.1:$1/bytes/1000/1" 2>/dev/null) &&
    fail "curl succeeded through $2"
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$ms" -ge 950 ] && [ "$ms" -le 5000 ] || fail "$2: closed after $ms ms, want ~1000"
  expect_reason "$(field port "$out")" "$3"
  still_running "$2"
}

log "a backend that accepts and never answers: idle-timeout 1000"
timed_failure "$F5" "a silent backend" 'idle timeout"'

log "a backend whose accept queue is full (SYNs dropped): connect-timeout 1000"
timed_failure "$F6" "a backend that never accepts" \
  'backend: no server reachable \(1 tried; last 127\.0\.0\.1:[0-9]+: connect timeout after 1000 ms\)'

log "releasing the download: all 64 MB, sha256 equal"
touch "$T/go"
wait "$DL" || fail "download failed: $(cat "$T/download.err")"
res=$(tail -n1 "$T/download.out")
want=$("$B/tests/bin/http_backend" --gen 67108864 42 | sha256sum | cut -d' ' -f1)
[ "$(field body "$res")" = 67108864 ] && [ "$(field sha256 "$res")" = "$want" ] && [ "$(field end "$res")" = close_notify ] ||
  fail "concurrent download: $res, want 67108864 bytes with sha256 $want ending in close_notify"

log "no crash, no descriptor leak"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
check_download "https://127.0.0.1:$FP" 100000 9
for _ in $(seq 30); do [ "$(fd_count "$TLSOFFD_PID")" -eq "$fds0" ] && break; sleep 0.1; done
fds1=$(fd_count "$TLSOFFD_PID")
[ "$fds1" -eq "$fds0" ] || { ls -l "/proc/$TLSOFFD_PID/fd"; fail "tlsoffd had $fds0 descriptors before, $fds1 after"; }
log "ok: $fds0 descriptors before and after; $(grep -c ' close ' "$T/tlsoffd.log") connections logged"
