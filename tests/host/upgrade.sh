#!/usr/bin/env bash
# timeout: 150
# Seamless upgrade: a second tlsoffd started with --takeover receives the running one's listening sockets
# (and its control socket) over the control socket; the old one stops accepting, drains and exits 0.
#  1. A (2 workers) -> B (2 workers, BPF steering replaced): 50 clients, downloads and uploads of 3 MB each
#     at a limited rate, 30 started before the switch and running across it, 20 started during it; and two
#     loops of short connections from before until after the switch. Every transfer is byte-exact
#     (sha256), no short connection is refused or reset, A exits 0 once its connections ended, and the same
#     control path answers before (A's pid) and after (B's pid); B serves new connections.
#  2. B -> C whose configuration lacks frontend "extra", with 1 worker (fewer than B's 2: C accepts from
#     both sockets of the group, and keeps both across a SIGHUP reload): a transfer on "extra" open at the
#     switch completes (B drains it), "extra" stops listening once B is gone, "edge" never refuses.
#  3. C (1 worker) -> D (3 workers: two sockets bound fresh into the group), then SIGUSR2: D re-executes
#     itself with --takeover (E), and exits 0; E answers on the same control path. With NOTIFY_SOCKET (as
#     under systemd): D sends MAINPID=E, and only then E sends READY=1.
#  4. --takeover with no daemon on the path: a clear error, exit 1, nothing bound; and by a user who may
#     use the control socket (--control-group) but is not the daemon's: refused (EPERM), A unchanged.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl python3 setpriv

BP=$(free_port) FP=$(free_port) XP=$(free_port) MP=$(free_port)
CTL="$T/control"
make_cert edge localhost
start_backend "$BP"
cat >"$T/full.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app
frontend add extra listen 127.0.0.1:$XP cert $T/edge.crt key $T/edge.key backend app
metrics listen 127.0.0.1:$MP
CONF
grep -v '^frontend add extra' "$T/full.conf" >"$T/noextra.conf"

# daemon NAME CONF ARGS...: tlsoffd on the shared control path, log $T/NAME.log; sets DPID
daemon() {
  local name=$1 conf=$2; shift 2
  "$B/tlsoffd" -f "$conf" --control "$CTL" "$@" 2>>"$T/$name.log" &
  DPID=$!; PIDS+=("$DPID")
}
# ready NAME: wait for the "ready" line (a takeover's listeners are the old ones: no port to wait for)
ready() {
  for _ in $(seq 100); do grep -q 'tlsoffd ready' "$T/$1.log" 2>/dev/null && return; sleep 0.1; done
  cat "$T/$1.log"; fail "tlsoffd $1 never got ready"
}
# confirmed NAME: wait until the new daemon NAME logged that the old one confirmed
confirmed() {
  for _ in $(seq 100); do grep -q 'takeover: done' "$T/$1.log" 2>/dev/null && return; sleep 0.1; done
  cat "$T/$1.log"; fail "takeover by $1 never confirmed"
}
ctl_pid() { "$B/tlsoffctl" -s "$CTL" -j status | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }
# exits0 PID NAME [SECONDS]: the old daemon exits by itself, status 0
exits0() {
  local rc=0
  for _ in $(seq $((${3:-30} * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && { tail -n 20 "$T/$2.log"; fail "$2 (pid $1) still runs after its drain"; }
  wait "$1" || rc=$?
  [ "$rc" -eq 0 ] || { tail -n 20 "$T/$2.log"; fail "$2 exited with status $rc"; }
}

# The short connections: each a new TLS connection with a small download checked by sha256. Any failure
# (refused: curl 7, reset: 35/56, a wrong body) is written down with the time.
want1k=$("$B/tests/bin/http_backend" --gen 1000 9 | sha256sum | cut -d' ' -f1)
shorts() {   # shorts PORT NAME: until $T/stop.NAME exists
  local n=0 bad=0 got rc
  while [ ! -e "$T/stop.$2" ]; do
    rc=0; got=$(curl -sS --fail -k --max-time 10 "https://127.0.0.1:$1/bytes/1000/9" 2>>"$T/$2.err" | sha256sum | cut -d' ' -f1) || rc=$?
    n=$((n + 1)); echo "$n" >"$T/$2.n.tmp"; mv "$T/$2.n.tmp" "$T/$2.n"   # replaced at once, never half written
    if [ "$rc" -ne 0 ] || [ "$got" != "$want1k" ]; then bad=$((bad + 1)); echo "$(date +%T.%N) rc=$rc" >>"$T/$2.err"; fi
  done
  echo "$n $bad" >"$T/$2.count"
}
start_shorts() { rm -f "$T/stop.$2" "$T/$2.count" "$T/$2.n"; shorts "$1" "$2" & SHORTS+=($!); PIDS+=($!); }
# more_shorts NAME K: wait until loop NAME made K more connections (from before a switch until after it)
made() { local n; n=$(cat "$T/$1.n" 2>/dev/null) || true; echo "${n:-0}"; }
more_shorts() {
  local from; from=$(made "$1")
  for _ in $(seq 600); do [ "$(made "$1")" -ge $((from + $2)) ] && return; sleep 0.1; done
  fail "short connections $1: fewer than $2 in 60 s"
}
stop_shorts() {   # stop_shorts NAME...: every loop must have made connections and seen no failure
  local s
  for s in "$@"; do touch "$T/stop.$s"; done
  for s in "${SHORTS[@]}"; do wait "$s"; done
  SHORTS=()
  for s in "$@"; do
    read -r n bad <"$T/$s.count"
    [ "$bad" -eq 0 ] || { cat "$T/$s.err"; fail "short connections $s: $bad of $n failed across the switch"; }
    [ "$n" -ge 4 ] || fail "short connections $s: only $n made"
    log "short connections $s: $n, none refused or reset"
  done
}
SHORTS=()
trap 'touch "$T"/stop.s1 "$T"/stop.s2 "$T"/stop.s3 "$T"/stop.s4; cleanup_pids' EXIT

head -c 3000000 /dev/urandom >"$T/up.bin"
want_up="$(sha256 "$T/up.bin") 3000000"
CLIENTS=()
client() {   # client I: even: download 3 MB (seed I), odd: upload up.bin; 1 MB/s
  local i=$1 port=${2:-$FP}
  if [ $((i % 2)) -eq 0 ]; then
    curl -sS --fail -k --limit-rate 1M -o "$T/dl.$i" "https://127.0.0.1:$port/bytes/3000000/$i" 2>"$T/c.$i.err" &
  else
    curl -sS --fail -k --limit-rate 1M -T "$T/up.bin" -o "$T/up.$i" "https://127.0.0.1:$port/sha256" 2>"$T/c.$i.err" &
  fi
  CLIENTS+=("$i:$!")
}
check_clients() {
  local c i p
  for c in "${CLIENTS[@]}"; do
    i=${c%%:*} p=${c#*:}
    wait "$p" || fail "client $i failed: $(cat "$T/c.$i.err")"
    if [ $((i % 2)) -eq 0 ]; then
      [ "$(sha256 "$T/dl.$i")" = "$("$B/tests/bin/http_backend" --gen 3000000 "$i" | sha256sum | cut -d' ' -f1)" ] ||
        fail "download $i: wrong bytes ($(stat -c %s "$T/dl.$i") bytes)"
    else
      [ "$(cat "$T/up.$i")" = "$want_up" ] || fail "upload $i: the backend saw '$(cat "$T/up.$i")', want '$want_up'"
    fi
  done
  log "${#CLIENTS[@]} transfers byte-exact"
  CLIENTS=()
}

log "4. --takeover with no daemon: a clear error"
rc=0; "$B/tlsoffd" -f "$T/full.conf" --control "$T/nobody" --takeover 2>"$T/none.log" || rc=$?
[ "$rc" -eq 1 ] || fail "--takeover with no daemon exited $rc, want 1"
grep -q "takeover: no tlsoffd answers on $T/nobody" "$T/none.log" || { cat "$T/none.log"; fail "no clear error"; }
ss -Htln "sport = :$FP" | grep -q . && fail "a failed takeover left a listener"

log "1. A -> B under load"
chmod 755 "$T"   # for the takeover attempt as nobody below
daemon A "$T/full.conf" --workers 2 --control-group nogroup; DA=$DPID; ready A
rc=0; setpriv --reuid=65534 --regid=65534 --clear-groups "$B/tlsoffd" -f "$T/full.conf" --control "$CTL" --takeover \
  2>"$T/nobody.log" || rc=$?
[ "$rc" -eq 1 ] && grep -q "uid 65534 may not take the sockets over" "$T/nobody.log" ||
  { cat "$T/nobody.log"; fail "a takeover by uid 65534 was not refused (exit $rc)"; }
[ "$(ctl_pid)" = "$DA" ] || fail "the control socket does not answer with A's pid"
steering() { "$B/tlsoffctl" -s "$CTL" -j status | sed -n 's/.*"steering":"\([^"]*\)".*/\1/p'; }
steerA=$(steering)
start_shorts "$FP" s1; start_shorts "$FP" s2
for i in $(seq 0 29); do client "$i"; done
more_shorts s1 2; more_shorts s2 2
sleep 1                                 # the 30 are mid-transfer (each takes ~3 s)
daemon B "$T/full.conf" --workers 2 --takeover; DB=$DPID
for i in $(seq 30 49); do client "$i"; sleep 0.02; done   # opened during the switch
ready B; confirmed B
grep -q 'takeover: received 4 listening socket(s) and the control socket' "$T/B.log" || fail "B did not log what it received"
[ "$(ctl_pid)" = "$DB" ] || fail "the control path does not answer with B's pid after the switch"
[ "$(steering)" = "$steerA" ] || fail "B's steering is '$(steering)', A's was '$steerA' (same workers, same CPUs)"
log "steering before and after: $steerA"
grep -q "takeover: tlsoffd pid $DB serves on our sockets now" "$T/A.log" || fail "A did not log the handover"
exits0 "$DA" A
# the metrics address: B bound it beside A (SO_REUSEPORT) and serves it alone now
curl -sS --fail --max-time 5 -o "$T/metrics.txt" "http://127.0.0.1:$MP/metrics" &&
  grep -q '^tlsoff_build_info' "$T/metrics.txt" || fail "no metrics from B after A left"
grep -q 'close frontend=edge' "$T/A.log" || fail "A served none of the transfers"
log "A served $(grep -c 'close frontend=edge' "$T/A.log") connection(s), $(sed -n '/takeover: tlsoffd pid/,$p' "$T/A.log" | grep -c 'close frontend=edge') of them finished after the handover"
more_shorts s1 2; more_shorts s2 2      # short connections after A is gone: B's alone
stop_shorts s1 s2
check_clients
grep -q 'close frontend=edge' "$T/B.log" || fail "B served no connection"
check_download "https://127.0.0.1:$FP" 200000 77
[ -S "$CTL" ] || fail "the control socket path is gone"

log "2. B -> C without frontend extra, 1 worker for B's 2 sockets per address"
client 100 "$XP"                        # a download on extra, open across the switch
start_shorts "$FP" s3
more_shorts s3 2
daemon C "$T/noextra.conf" --workers 1 --takeover; DC=$DPID
ready C; confirmed C
grep -q "takeover: done; tlsoffd pid $DB stops accepting" "$T/C.log" || fail "C does not name B as the daemon it took over"
grep -q 'frontend extra (127.0.0.1:.*) is not in this configuration: the old daemon closes it' "$T/C.log" ||
  fail "C did not say it leaves frontend extra"
exits0 "$DB" B
more_shorts s3 2
ss -Htln "sport = :$XP" | grep -q . && fail "frontend extra still listens after B exited"
listeners() { ss -Htln "sport = :$FP" | wc -l; }
[ "$(listeners)" -eq 2 ] || fail "edge: $(listeners) listening sockets after B exited, want B's 2 (both C's now)"
kill -HUP "$DC"     # a reload keeps both: the extra one's queue is served as long as the address is wanted
for _ in $(seq 50); do grep -q 'reload: configuration generation 2' "$T/C.log" && break; sleep 0.1; done
grep -q 'reload: configuration generation 2' "$T/C.log" || { cat "$T/C.log"; fail "C did not reload"; }
[ "$(listeners)" -eq 2 ] || fail "edge: $(listeners) listening sockets after C's reload, want 2"
for _ in $(seq 20); do curl -sk -o /dev/null "https://127.0.0.1:$FP/bytes/100/1"; done   # both sockets of edge
stop_shorts s3
check_clients
[ "$(ctl_pid)" = "$DC" ] || fail "the control path does not answer with C's pid"

log "3. C (1 worker) -> D (3 workers), then SIGUSR2: D -> E"
# sd_notify datagrams, one line each: the sender's pid (SCM_CREDENTIALS) and the assignments joined by |
cat >"$T/notify.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next((struct.unpack("iII", d[:12])[0] for l, t, d in anc
                    if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS), 0)
        f.write("%d %s\n" % (pid, msg.decode().strip("\n").replace("\n", "|")))
PY
python3 "$T/notify.py" "$T/notify.sock" "$T/notify.log" 2>"$T/notify.err" & PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
[ -S "$T/notify.sock" ] || fail "the notify listener did not start: $(cat "$T/notify.err")"
start_shorts "$FP" s4
more_shorts s4 2
NOTIFY_SOCKET="$T/notify.sock" daemon D "$T/noextra.conf" --workers 3 --takeover; DD=$DPID
ready D; confirmed D
exits0 "$DC" C
[ "$(listeners)" -eq 3 ] || fail "edge: $(listeners) listening sockets under D, want 3 (2 taken, 1 bound)"
check_download "https://127.0.0.1:$FP" 200000 78
kill -USR2 "$DD"
for _ in $(seq 100); do grep -q 'takeover: tlsoffd pid [0-9]* serves on our sockets now' "$T/D.log" && break; sleep 0.1; done
grep -q 'upgrade (SIGUSR2): started .* as pid' "$T/D.log" || { cat "$T/D.log"; fail "SIGUSR2 did not start the upgrade"; }
DE=$(sed -n 's/.*takeover: tlsoffd pid \([0-9]*\) serves on our sockets now.*/\1/p' "$T/D.log")
[ -n "$DE" ] || { cat "$T/D.log"; fail "D never handed over after SIGUSR2"; }
PIDS+=("$DE")
exits0 "$DD" D
more_shorts s4 2
stop_shorts s4
[ "$(ctl_pid)" = "$DE" ] || fail "the control path does not answer with E's pid"
for _ in $(seq 50); do grep -q "^$DE READY=1" "$T/notify.log" && break; sleep 0.1; done
grep -Eq "^[0-9]+:$DD READY=1\|STATUS=serving.* [0-9]+:$DD MAINPID=$DE\|STATUS=handed over.* [0-9]+:$DE READY=1" \
  <<<"$(grep -n . "$T/notify.log" | grep -E "^[0-9]+:($DD|$DE) (READY|MAINPID)" | tr '\n' ' ')" ||
  { cat "$T/notify.log"; fail "sd_notify: want D's READY=1, then MAINPID=$DE from D, then READY=1 from E"; }
log "sd_notify: D READY=1, D MAINPID=$DE, E READY=1"
check_download "https://127.0.0.1:$FP" 200000 79
"$B/tlsoffctl" -s "$CTL" -j status | grep -q '"workers": *3' || fail "E does not run D's 3 workers"
# Each daemon handed over exactly its own sockets: 2 workers x 2 frontends (A, B), C's 2 for edge (one
# worker, an extra), D's 3 (its 3 workers).
for hop in A:4 B:4 C:2 D:3; do
  grep -q "takeover: sent ${hop#*:} listening socket(s) and the control socket" "$T/${hop%%:*}.log" ||
    fail "${hop%%:*} did not hand over ${hop#*:} sockets: $(grep 'takeover: sent' "$T/${hop%%:*}.log")"
done
log "ok: A -> B -> C -> D -> E (SIGUSR2), no connection refused or cut"
