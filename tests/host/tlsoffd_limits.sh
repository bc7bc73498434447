#!/usr/bin/env bash
# timeout: 150
# tlsoffd at its limits, each while a 64 MB download through the same frontend must arrive intact:
#  - max-conns 20: 60 clients that each complete a request and hold on; exactly 20 connections at once
#    (the download plus 19), the other 41 refused at once and logged "max-conns"; afterwards new ones work.
#  - out of descriptors (ulimit -n 64): more connections than that; accepts pause (EMFILE, logged), the
#    daemon stays up, tlsoffctl still answers, and serves normally once they are gone, with its descriptor
#    count back where it was.
#  - protocol versions: tls-min 1.3 refuses a TLS 1.2-only client and takes 1.3; a default frontend
#    refuses TLS 1.1 (openssl s_client) and SSLv3 (a hand-made ClientHello) with protocol alerts.
#  - configuration: a broken file says FILE:LINE: message and exits non-zero listening on nothing; a key
#    that does not match its certificate is reported by --check; a second tlsoffd on a port in use exits.
#  - SIGTERM drains (the open transfer completes, exit 0); a second SIGTERM, or --drain-timeout, closes
#    what is left.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl prlimit

BP=$(free_port) FP=$(free_port) F13=$(free_port) FD=$(free_port)
make_cert edge localhost
make_cert other localhost
start_backend "$BP"
PEER="$B/tests/bin/bad_peer"
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
want64=$("$B/tests/bin/http_backend" --gen 67108864 64 | sha256sum | cut -d' ' -f1)

# start_download PORT NAME: a 64 MB download held in flight until $T/go.NAME exists; sets DL
start_download() {
  rm -f "$T/go.$2"
  "$PEER" download "127.0.0.1:$1" 67108864 64 "$T/go.$2" >"$T/dl.$2" 2>&1 &
  DL=$!; PIDS+=("$DL")      # killed on exit, should the test fail while it waits for its go file
  for _ in $(seq 50); do grep -q '^port=' "$T/dl.$2" && break; sleep 0.1; done
  grep -q '^port=' "$T/dl.$2" || fail "download $2 never started: $(cat "$T/dl.$2")"
  sleep 0.3
}
# finish_download NAME PID: release it; it must be complete, sha256 equal, ended by close_notify
finish_download() {
  kill -0 "$2" 2>/dev/null || fail "download $1 ended before it was released: $(cat "$T/dl.$1")"
  touch "$T/go.$1"
  wait "$2" || fail "download $1 failed: $(cat "$T/dl.$1")"
  local r; r=$(tail -n1 "$T/dl.$1")
  [ "$(field body "$r")" = 67108864 ] && [ "$(field sha256 "$r")" = "$want64" ] && [ "$(field end "$r")" = close_notify ] ||
    fail "download $1: $r; want 67108864 bytes, sha256 $want64, close_notify"
}
# settle_fds PID COUNT: wait for a process's descriptor count to come back to COUNT
settle_fds() {
  for _ in $(seq 50); do [ "$(fd_count "$1")" -eq "$2" ] && return 0; sleep 0.1; done
  ls -l "/proc/$1/fd"; fail "pid $1 has $(fd_count "$1") descriptors, had $2"
}

cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add capped listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app max-conns 20
frontend add modern listen 127.0.0.1:$F13 cert $T/edge.crt key $T/edge.key backend app tls-min 1.3
frontend add default listen 127.0.0.1:$FD cert $T/edge.crt key $T/edge.key backend app
CONF
start_tlsoffd "$T/tlsoff.conf" "$FD" --workers 2
check_download "https://127.0.0.1:$FP" 1000 1
expect_log 'close frontend=capped '   # its slot is free again before the count below starts
sleep 0.2                             # (the line is written just before its descriptors are closed)
fds0=$(fd_count "$TLSOFFD_PID")

log "max-conns 20: 60 holders while a download holds one slot"
start_download "$FP" capped; DLC=$DL
rm -f "$T/go.hold"
"$PEER" hold "127.0.0.1:$FP" 60 "$T/go.hold" >"$T/hold.out" 2>&1 &
HOLD=$!; PIDS+=("$HOLD")
for _ in $(seq 100); do grep -q '^served=' "$T/hold.out" && break; sleep 0.1; done
r=$(cat "$T/hold.out")
[ "$(field served "$r")" = 19 ] && [ "$(field refused "$r")" = 41 ] || fail "holders: $r; want served=19 refused=41"
# at once: far from any timeout (the handshake timeout is 10 s), whatever the load of the machine
[ "$(field max_refuse_ms "$r")" -lt 3000 ] || fail "refusals were not immediate: $r"
n=$(grep -c "frontend capped: refused a connection: max-conns 20 reached" "$T/tlsoffd.log" || true)
[ "$n" -eq 41 ] || fail "expected 41 max-conns refusals logged, got $n"
# while the 20 are open, one more is refused too
curl -sS -k --max-time 5 "https://127.0.0.1:$FP/bytes/10/1" -o /dev/null 2>/dev/null && fail "a 21st connection was served"
[ "$(grep -c "max-conns 20 reached" "$T/tlsoffd.log")" -eq 42 ] || fail "the 21st connection was not logged as refused"
closed=$(grep -c 'close frontend=capped ' "$T/tlsoffd.log")
touch "$T/go.hold"; wait "$HOLD" || fail "holder: $(cat "$T/hold.out")"
for _ in $(seq 100); do   # every holder's slot is free again
  [ "$(grep -c 'close frontend=capped ' "$T/tlsoffd.log")" -ge $((closed + 19)) ] && break; sleep 0.1
done
[ "$(grep -c 'close frontend=capped ' "$T/tlsoffd.log")" -eq $((closed + 19)) ] || fail "the 19 holders' closes were not logged"
log "the holders are gone: 19 more connections at once work again"
pids=()
for i in $(seq 19); do check_download "https://127.0.0.1:$FP" 100000 "$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a connection after the holders left failed"; done
finish_download capped "$DLC"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"

log "tls-min 1.3: TLS 1.2-only refused, 1.3 served"
curl -sS -k --tls-max 1.2 -o /dev/null "https://127.0.0.1:$F13/" 2>"$T/curl.err" && fail "tls-min 1.3 served TLS 1.2"
grep -q 'protocol version' "$T/curl.err" || fail "TLS 1.2 client: not a protocol-version refusal: $(cat "$T/curl.err")"
expect_log 'close frontend=modern .*reason="handshake: .*unsupported protocol"'
check_download "https://127.0.0.1:$F13" 100000 5 --tlsv1.3
grep -Eq 'close frontend=modern .*tls=TLSv1\.3 .*reason="done"' "$T/tlsoffd.log" || fail "TLS 1.3 on frontend modern not logged"

log "a default frontend refuses TLS 1.1 and SSLv3, and still serves 1.2"
start_download "$FD" default; DLD=$DL
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$FD" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1) &&
  fail "s_client -tls1_1 connected"
grep -q 'alert protocol version' <<<"$out" || fail "TLS 1.1: no protocol_version alert: $out"
out=$("$PEER" hello-version "127.0.0.1:$FD" 0302)
[ "$(field alert "$out")" = protocol_version ] || fail "TLS 1.1 ClientHello: $out"
grep -Eq "client=127\\.0\\.0\\.1:$(field port "$out") .*reason=\"handshake: .*unsupported protocol\"" "$T/tlsoffd.log" ||
  fail "TLS 1.1 refusal not logged"
out=$("$PEER" hello-version "127.0.0.1:$FD" 0300)
# OpenSSL refuses an SSLv3 hello with handshake_failure (it no longer speaks the SSLv3 alert dialect)
case $(field alert "$out") in protocol_version|handshake_failure) ;; *) fail "SSLv3 ClientHello: $out" ;; esac
sleep 0.2
grep -Eq "client=127\\.0\\.0\\.1:$(field port "$out") .*reason=\"handshake: .*(version too low|unsupported protocol)\"" \
  "$T/tlsoffd.log" || fail "SSLv3 refusal not logged"
check_download "https://127.0.0.1:$FD" 100000 6 --tlsv1.2 --tls-max 1.2
finish_download default "$DLD"
settle_fds "$TLSOFFD_PID" "$fds0"
log "  $fds0 descriptors before and after"

log "out of descriptors: tlsoffd under ulimit -n 64, 80 idle connections"
P2=$(free_port)
cat >"$T/small.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add small listen 127.0.0.1:$P2 cert $T/edge.crt key $T/edge.key backend app
CONF
(ulimit -n 64; exec "$B/tlsoffd" -f "$T/small.conf" --control "$T/ctl.small" --workers 2 2>"$T/small.log") &
SMALL=$!; PIDS+=("$SMALL")
for _ in $(seq 100); do ss -Htln "sport = :$P2" | grep . >/dev/null && break; sleep 0.1; done
ss -Htln "sport = :$P2" | grep . >/dev/null || fail "tlsoffd under ulimit -n 64 does not listen: $(tail -n 5 "$T/small.log")"
check_download "https://127.0.0.1:$P2" 1000 1
for _ in $(seq 100); do grep -q 'close frontend=small ' "$T/small.log" && break; sleep 0.1; done
sleep 0.2
sfd0=$(fd_count "$SMALL")
start_download "$P2" small; DLS=$DL
rm -f "$T/go.tcp"
"$PEER" tcp-hold "127.0.0.1:$P2" 80 "$T/go.tcp" >"$T/tcp.out" 2>&1 &
TCP=$!; PIDS+=("$TCP")
for _ in $(seq 50); do grep -q 'pausing accepts' "$T/small.log" && break; sleep 0.1; done
grep -q 'frontend small: accept: Too many open files; pausing accepts' "$T/small.log" || fail "no EMFILE pause logged"
# every descriptor number below the limit in use (inherited ones above it, if any, do not count)
low=$(ls "/proc/$SMALL/fd" | awk '$1 < 64' | wc -l)
[ "$low" -eq 64 ] || fail "expected tlsoffd at its 64 descriptors, has $low below 64"
kill -0 "$SMALL" || fail "tlsoffd died out of descriptors"
# the operator still gets in: the control socket keeps a spare descriptor for exactly this
timeout 5 "$B/tlsoffctl" -s "$T/ctl.small" stats >"$T/small.stats" 2>&1 || fail "tlsoffctl stats out of descriptors: $(cat "$T/small.stats")"
touch "$T/go.tcp"; wait "$TCP" || fail "tcp-hold: $(cat "$T/tcp.out")"
# every one of the 80 is accepted in the end (the paused ones from the queue) and closes as an empty handshake
for _ in $(seq 100); do [ "$(grep -c 'close frontend=small .*reason="handshake' "$T/small.log")" -ge 80 ] && break; sleep 0.1; done
[ "$(grep -c 'close frontend=small .*reason="handshake' "$T/small.log")" -eq 80 ] || fail "not all 80 idle connections were closed"
check_download "https://127.0.0.1:$P2" 1000000 7
finish_download small "$DLS"
settle_fds "$SMALL" "$sfd0"
log "  EMFILE logged $(grep -c 'pausing accepts' "$T/small.log") times; $sfd0 descriptors before and after"
kill "$SMALL"; wait "$SMALL" || fail "tlsoffd (ulimit) did not exit 0 on SIGTERM"

log "configuration errors"
BX=$(free_port) BY=$(free_port)
printf '%s\n' "backend add app server 127.0.0.1:$BP" \
  "frontend add ok listen 127.0.0.1:$BX cert $T/edge.crt key $T/edge.key backend app" \
  "frontend add broken listen 127.0.0.1:$BY cert $T/edge.crt key $T/edge.key backend app idle-timeout soon" \
  >"$T/broken.conf"
rc=0; timeout 5 "$B/tlsoffd" -f "$T/broken.conf" --control "$T/ctl.broken" >"$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "broken config: exit $rc"
grep -q "^tlsoffd: $T/broken.conf:3: frontend broken: idle-timeout: 'soon'" "$T/out" || fail "no FILE:LINE: message: $(cat "$T/out")"
printf '%s\n' "backend add app server 127.0.0.1:$BP" "frontend add x listen 127.0.0.1:$BX cert $T/edge.crt" \
  >"$T/broken2.conf"
rc=0; timeout 5 "$B/tlsoffd" -f "$T/broken2.conf" --control "$T/ctl.broken2" >"$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "broken2.conf:2: " "$T/out" || fail "missing key: exit $rc, $(cat "$T/out")"
# cert/key mismatch: --check names it; served anyway, nothing listens and the exit is non-zero
printf '%s\n' "backend add app server 127.0.0.1:$BP" \
  "frontend add ok listen 127.0.0.1:$BX cert $T/edge.crt key $T/edge.key backend app" \
  "frontend add mism listen 127.0.0.1:$BY cert $T/edge.crt key $T/other.key backend app" >"$T/mismatch.conf"
rc=0; "$B/tlsoffd" -f "$T/mismatch.conf" --check >"$T/out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "mismatch.conf:3: frontend mism: key $T/other.key: .*key values mismatch" "$T/out" ||
  fail "--check with a mismatched key: exit $rc, $(cat "$T/out")"
rc=0; timeout 5 "$B/tlsoffd" -f "$T/mismatch.conf" --control "$T/ctl.mismatch" >"$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "frontend mism (line 3): .*mismatch" "$T/out" || fail "mismatch served: exit $rc, $(cat "$T/out")"
rc=0; "$B/tlsoffd" -f "$T/tlsoff.conf" --check >"$T/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "ok (3 frontends, 1 backends)" "$T/out" || fail "--check on a good file: exit $rc, $(cat "$T/out")"
# a port in use (here: the running tlsoffd's): a second daemon must not share it through SO_REUSEPORT
printf '%s\n' "backend add app server 127.0.0.1:$BP" \
  "frontend add ok listen 127.0.0.1:$BX cert $T/edge.crt key $T/edge.key backend app" \
  "frontend add dup listen 127.0.0.1:$FD cert $T/edge.crt key $T/edge.key backend app" >"$T/busy.conf"
rc=0; timeout 5 "$B/tlsoffd" -f "$T/busy.conf" --control "$T/ctl.busy" >"$T/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "listen 127.0.0.1:$FD: Address already in use" "$T/out" ||
  fail "a second tlsoffd on port $FD: exit $rc, $(cat "$T/out")"
[ "$(ss -Htln "sport = :$FD" | wc -l)" -eq 2 ] || fail "port $FD: expected only the first tlsoffd's 2 listeners"
for p in $BX $BY; do ss -Htln "sport = :$p" | grep . >/dev/null && fail "port $p listens after a failed start"; done
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"

# drain_daemon NAME [ARGS]: a separate tlsoffd with its log in $T/NAME.log; sets DPID, DPORT
drain_daemon() {
  local name=$1; shift
  DPORT=$(free_port)
  printf '%s\n' "backend add app server 127.0.0.1:$BP" \
    "frontend add $name listen 127.0.0.1:$DPORT cert $T/edge.crt key $T/edge.key backend app" >"$T/$name.conf"
  "$B/tlsoffd" -f "$T/$name.conf" --control "$T/ctl.$name" --workers 2 "$@" 2>"$T/$name.log" &
  DPID=$!; PIDS+=("$DPID")
  wait_port "$DPORT"
}
dlog() { for _ in $(seq 50); do grep -Eq "$2" "$T/$1.log" && return 0; sleep 0.1; done; cat "$T/$1.log"; fail "$1: never logged /$2/"; }

log "SIGTERM with a transfer open: no new connections, the transfer completes, exit 0"
drain_daemon drain
start_download "$DPORT" drain; D1=$DL
kill -TERM "$DPID"
dlog drain 'signal 15: draining'
for _ in $(seq 30); do ss -Htln "sport = :$DPORT" | grep . >/dev/null || break; sleep 0.1; done
curl -sS -k --max-time 3 -o /dev/null "https://127.0.0.1:$DPORT/" 2>/dev/null && fail "a new connection was served while draining"
sleep 0.5
kill -0 "$DPID" || fail "tlsoffd exited before its open transfer finished"
finish_download drain "$D1"
rc=0; wait "$DPID" || rc=$?
[ "$rc" -eq 0 ] || fail "drained tlsoffd exited $rc"
grep -q 'reason="done"\|reason="client closed' "$T/drain.log" && grep -q 'tlsoffd stopped' "$T/drain.log" || fail "drain not logged"

log "a second SIGTERM closes what is left, at once"
drain_daemon second
start_download "$DPORT" s1; S1=$DL
start_download "$DPORT" s2; S2=$DL
kill -TERM "$DPID"; dlog second 'draining'
sleep 0.3
kill -0 "$DPID" || fail "tlsoffd exited with two transfers open"
kill -TERM "$DPID"
rc=0; timeout 5 tail --pid="$DPID" -f /dev/null || fail "tlsoffd still runs 5 s after the second SIGTERM"
wait "$DPID" || rc=$?
[ "$rc" -eq 0 ] || fail "tlsoffd exited $rc after the second SIGTERM"
[ "$(grep -c 'reason="daemon stopping"' "$T/second.log")" -eq 2 ] || fail "the two transfers were not closed as 'daemon stopping'"
touch "$T/go.s1" "$T/go.s2"
wait "$S1" "$S2" || fail "a cut download failed to report: $(cat "$T/dl.s1" "$T/dl.s2")"
for s in s1 s2; do     # cut short, and the client can tell: no close_notify
  r=$(tail -n1 "$T/dl.$s")
  [ "$(field end "$r")" != close_notify ] && [ "$(field body "$r")" -lt 67108864 ] || fail "cut transfer $s looks complete: $r"
done

log "--drain-timeout 1: the deadline closes what is left"
drain_daemon deadline --drain-timeout 1
start_download "$DPORT" dd; DD=$DL
t0=$(date +%s%N)
kill -TERM "$DPID"
rc=0; timeout 10 tail --pid="$DPID" -f /dev/null || fail "tlsoffd still runs 10 s after SIGTERM with --drain-timeout 1"
wait "$DPID" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" -eq 0 ] && [ "$ms" -ge 900 ] && [ "$ms" -le 6000 ] || fail "--drain-timeout 1: exit $rc after $ms ms"
grep -q 'drain deadline reached' "$T/deadline.log" && grep -q 'reason="daemon stopping"' "$T/deadline.log" ||
  fail "deadline not logged: $(tail -n 3 "$T/deadline.log")"
touch "$T/go.dd"; wait "$DD" || true

kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
settle_fds "$TLSOFFD_PID" "$fds0"
log "ok"
