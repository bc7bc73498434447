#!/usr/bin/env bash
# tlsoffd with one worker per CPU attaches the SO_REUSEPORT steering program to each frontend's listening
# group: a client pinned to CPU k (on loopback its SYN is processed on CPU k) is accepted, handshaken and
# relayed by worker k, which runs pinned on CPU k. Checked with tlsoffctl conn show (the worker of each
# connection), bpftool (the sk_reuseport program while the daemon runs) and tlsoffctl status. A frontend
# added at runtime is steered too. --steer off leaves the kernel's hash.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
need taskset bpftool python3
NCPU=$(getconf _NPROCESSORS_ONLN)
[ "$NCPU" -ge 2 ] || skip "one CPU: nothing to steer"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); r=($1); print(r if not isinstance(r,bool) else str(r).lower())"; }

edge_tlsoffd userspace            # default: one worker per CPU
[ "$(ctl -j status | json 'd["steering"]')" = bpf ] || { ctl status; fail "status: steering is not bpf"; }
bpftool prog show >"$T/progs.txt"
grep -q 'sk_reuseport .*name steer' "$T/progs.txt" || { cat "$T/progs.txt"; fail "no sk_reuseport program while tlsoffd runs"; }
FP2=$(free_port)
ctl frontend add late listen "127.0.0.1:$FP2" cert "$T/edge.crt" key "$T/edge.key" backend app datapath userspace

# hold: N connections from a client pinned to CPU k; returns when they are established
hold() {   # hold CPU PORT N TAG
  mkfifo "$T/in.$4"
  taskset -c "$1" "$B/tests/bin/tls_client" "127.0.0.1:$2" hold "$3" <"$T/in.$4" >"$T/out.$4" 2>&1 & PIDS+=($!)
  eval "exec {fd_$4}>\"$T/in.$4\""
  for _ in $(seq 100); do grep -q "^held $3" "$T/out.$4" && return; sleep 0.1; done
  fail "could not hold $3 connections from CPU $1"
}
for port in "$FP" "$FP2"; do
  for k in $(seq 0 $((NCPU - 1))); do
    before=$(ctl -j conn show | json '",".join(str(c["id"]) for c in d)')
    hold "$k" "$port" 4 "c${k}p$port"
    ctl -j conn show >"$T/conns.json"
    workers=$(json "sorted(set(c['worker'] for c in d if str(c['id']) not in '$before'.split(',')))" <"$T/conns.json")
    [ "$workers" = "[$k]" ] || { cat "$T/conns.json"; fail "connections from CPU $k to port $port went to worker(s) $workers"; }
  done
done
log "every connection from CPU k was served by worker k ($NCPU CPUs, two frontends, one added at runtime)"

kill -TERM "$TLSOFFD_PID"; sleep 0.5; kill -KILL "$TLSOFFD_PID" 2>/dev/null || true
wait "$TLSOFFD_PID" 2>/dev/null || true
FP=$(free_port)
sed -i "s/listen 127.0.0.1:[0-9]*/listen 127.0.0.1:$FP/" "$T/tlsoff.conf"
start_tlsoffd "$T/tlsoff.conf" "$FP" --steer off
[ "$(ctl -j status | json 'd["steering"]')" = off ] || fail "--steer off: status says $(ctl -j status | json 'd["steering"]')"
log "--steer off: the kernel's hash"
