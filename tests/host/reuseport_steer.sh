#!/usr/bin/env bash
# timeout: 60
# SO_REUSEPORT steering (bpf/reuseport_steer.bpf.c) on this machine's kernel: one listener per CPU on one
# port, the SK_REUSEPORT program attached, a client pinned to each CPU. On loopback a SYN is processed on
# the CPU that sent it, so every connection from CPU k must be accepted on listener k; the program's
# per-CPU counters must say the same, and bpftool must see the program and a REUSEPORT_SOCKARRAY holding
# exactly our listeners (by socket cookie) while they listen. Then: without the program the kernel's hash
# spreads the connections regardless of CPU (all still accepted); with one slot left empty its CPU's
# connections take the fallbacks (flow hash, then the kernel's own choice) and none is lost; and the
# program is gone once its listeners are closed. Then the BPF-free alternative the kernel has had since
# 6.2 (SO_INCOMING_CPU on each listener), and last the API's refusals and the kernel rules behind them
# (a TCP socket enters the map and carries the program only once listening).
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
need bpftool python3
cd "$T"
CHECK=$B/tests/bin/reuseport_check
[ -x "$CHECK" ] || fail "build first: make $CHECK"
NCPU=$(getconf _NPROCESSORS_ONLN)
CONNS=200
log "$NCPU CPUs online, $CONNS connections per CPU"
if [ "$NCPU" -eq 1 ]; then
  log "ONE CPU: a single listener, so 'every connection on its CPU's listener' is trivially true here;"
  log "the test still checks that all are accepted, the counters and what bpftool sees"
fi

holder=""
cleanup() { exec 3>&- 2>/dev/null || true; [ -z "$holder" ] || kill "$holder" 2>/dev/null || true; }
trap cleanup EXIT

# field LINE_PREFIX KEY FILE: value of KEY= on the first line starting with LINE_PREFIX
field() { sed -n "/^$1 /{s/.* $2=\([^ ]*\).*/\1/p;q}" "$3"; }

# --- 1. with the program: every connection on the listener of the client's CPU; look with bpftool --------
mkfifo hold.in
"$CHECK" --hold --conns $CONNS <hold.in >bpf.out 2>bpf.err & holder=$!
exec 3>hold.in   # reuseport_check holds its listeners until this closes
for _ in $(seq 300); do grep -q '^HOLD' bpf.out 2>/dev/null && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.05; done
if ! grep -q '^HOLD' bpf.out; then
  rc=0; wait "$holder" || rc=$?; holder=""
  cat bpf.out; cat bpf.err >&2
  [ "$rc" -ne 77 ] || skip "the SK_REUSEPORT program cannot be loaded here: $(cat bpf.err)"
  fail "reuseport_check --hold exited ($rc) before holding"
fi
grep -v '^HOLD' bpf.out
prog_id=$(field HOLD prog_id bpf.out) socks_id=$(field HOLD socks_id bpf.out) stats_id=$(field HOLD stats_id bpf.out)

bpftool prog show id "$prog_id" >prog.txt || fail "bpftool prog show id $prog_id failed while the program is attached"
head -n1 prog.txt
grep -q "^$prog_id: sk_reuseport  *name steer " prog.txt || fail "bpftool: prog $prog_id is not the sk_reuseport program"
bpftool prog show >progs.txt
grep -qE "^$prog_id: sk_reuseport " progs.txt || fail "bpftool prog show does not list program $prog_id"
bpftool map show id "$socks_id" >map.txt
head -n1 map.txt
grep -q "^$socks_id: reuseport_sockarray  *name steer_socks" map.txt || fail "bpftool: map $socks_id is not the REUSEPORT_SOCKARRAY"
bpftool -j map dump id "$socks_id" >socks.json || fail "bpftool map dump id $socks_id failed"
bpftool -j map dump id "$stats_id" >stats.json || fail "bpftool map dump id $stats_id failed"
python3 - <<'PY' || fail "what bpftool sees differs from what reuseport_check reported"
import json, re, sys
out = open('bpf.out').read().splitlines()
kv = lambda l: dict(re.findall(r'(\w+)=(\S+)', l))
listeners = {int(d['idx']): int(d['cookie']) for d in (kv(l) for l in out if l.startswith('LISTENER '))}
socks = {e['formatted']['key']: e['formatted']['value'] for e in json.load(open('socks.json'))}
print(f'# steer_socks (slot -> socket cookie): {socks}; listeners: {listeners}')
bad = []
if socks != listeners:
    bad.append(f'map holds {socks}, listeners are {listeners}')
stats = {e['formatted']['key']: sum(v['value'] for v in e['formatted']['values']) for e in json.load(open('stats.json'))}
st = kv(next(l for l in out if l.startswith('STATS ')))
want = {0: int(st['by_cpu']), 1: int(st['by_hash']), 2: int(st['kernel'])}
print(f'# steer_stats summed over CPUs: {stats}')
if stats != want:
    bad.append(f'steer_stats {stats}, reuseport_check said {want}')
for b in bad: print('FAIL:', b)
sys.exit(1 if bad else 0)
PY
exec 3>&-
rc=0; wait "$holder" || rc=$?; holder=""
[ "$rc" -eq 0 ] || fail "reuseport_check (with the program) failed: $(grep -E '^(#|RESULT)' bpf.out) $(cat bpf.err)"
grep -q '^RESULT ok' bpf.out || fail "no RESULT ok line"
# the premise, measured: the program ran for each SYN on the CPU of the client that sent it
while read -r line; do
  cpu=$(sed 's/.*cpu=\([0-9]*\) .*/\1/' <<<"$line"); conns=$(sed 's/.* conns=\([0-9]*\).*/\1/' <<<"$line")
  on_own=$(sed 's/.* on_own=\([0-9]*\).*/\1/' <<<"$line")
  ran=$(sed -n "s/^PROGCPU cpu=$cpu by_cpu=\([0-9]*\) .*/\1/p" bpf.out)
  [ "$on_own" -eq "$conns" ] || fail "CPU $cpu: only $on_own of $conns connections on listener $cpu"
  [ "${ran:-0}" -eq "$conns" ] || fail "CPU $cpu: the program ran ${ran:-0} times on CPU $cpu for $conns SYNs sent from it"
done < <(grep '^CPU ' bpf.out)
log "with the program: every connection accepted on the listener of its client's CPU; the program ran on the sending CPU for every SYN"

# The program belongs to the listening group: once the listeners are closed it must go away.
gone=""
for _ in $(seq 100); do bpftool prog show id "$prog_id" >/dev/null 2>&1 || { gone=1; break; }; sleep 0.1; done
[ -n "$gone" ] || fail "program $prog_id still loaded 10 s after its listeners were closed"
log "program $prog_id unloaded once its listeners were closed"

# --- 2. without the program: all accepted, spread by the kernel's hash whatever the client's CPU -----------
"$CHECK" --no-bpf --conns $CONNS >hash.out 2>hash.err || { cat hash.out; fail "reuseport_check --no-bpf: $(cat hash.err)"; }
cat hash.out
total=$(awk '/^CPU /{for(i=1;i<=NF;i++) if($i ~ /^conns=/){sub("conns=","",$i); s+=$i}} END{print s+0}' hash.out)
own=$(awk '/^CPU /{for(i=1;i<=NF;i++) if($i ~ /^on_own=/){sub("on_own=","",$i); s+=$i}} END{print s+0}' hash.out)
log "without the program: $own of $total connections landed on their CPU's listener (hash: ~1/$NCPU expected)"
if [ "$NCPU" -gt 1 ]; then
  # 1/NCPU^total chance of a false failure: none in practice
  [ "$own" -lt "$total" ] || fail "without the program every connection landed on its CPU's listener: is a program still attached?"
fi

# --- 3. an empty slot: its CPU's connections go by the flow hash, then the kernel's choice; none lost ------
# the slot of a CPU this test may run on (a cpuset can exclude some): the last one
empty=$(( $(python3 -c 'import os; print(max(os.sched_getaffinity(0)))') % NCPU ))
"$CHECK" --empty-slot $empty --conns $CONNS >empty.out 2>empty.err || { cat empty.out; fail "reuseport_check --empty-slot $empty: $(cat empty.err)"; }
cat empty.out
by_hash=$(field STATS by_hash empty.out) kernel=$(field STATS kernel empty.out)
[ $((by_hash + kernel)) -gt 0 ] || fail "slot $empty empty but no connection took a fallback"
log "slot $empty empty: $by_hash connections by the flow-hash slot, $kernel by the kernel's own hash, all accepted"

# --- 4. the BPF-free alternative: SO_INCOMING_CPU on each listener (the kernel's own selection, 6.2+) ------
rc=0; "$CHECK" --incoming-cpu --conns $CONNS >incoming.out 2>incoming.err || rc=$?
cat incoming.out
kmaj=$(uname -r | cut -d. -f1) kmin=$(uname -r | cut -d. -f2)
if [ "$rc" -eq 0 ]; then
  log "SO_INCOMING_CPU alone (no program) also put every connection on its CPU's listener on $(uname -r)"
elif [ "$kmaj" -lt 6 ] || { [ "$kmaj" -eq 6 ] && [ "$kmin" -lt 2 ]; }; then
  log "kernel $(uname -r) < 6.2 without the SO_INCOMING_CPU fix (b261eda84ec1): its reuseport selection ignores it; only the program steers here"
else
  fail "SO_INCOMING_CPU on a $(uname -r) kernel did not steer: $(cat incoming.err)"
fi

# --- 5. the API's refusals (in words) and the kernel rules behind them -----------------------------------
"$CHECK" --api >api.out 2>api.err || { cat api.out; fail "reuseport_check --api: $(cat api.err)"; }
cat api.out
log "set()/attach() refuse a socket that is not listening yet, with a reason; the kernel rules hold on $(uname -r)"
log "PASS"
