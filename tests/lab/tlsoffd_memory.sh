#!/usr/bin/env bash
# timeout: 240
# Userspace memory per established connection, measured: 200 idle TLS 1.3 connections held open through
# tlsoffd, heap bytes in use (mallinfo2, one arena) before and after, divided by 200. On the splice datapath
# the SSL object is gone once kTLS has the keys, so the goal is < 2 KB per connection; the userspace
# datapath (5.10, no kTLS) keeps OpenSSL's state and is reported for comparison.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"

N=200
MALLOC_ARENA_MAX=1 edge_tlsoffd auto --workers 1
"$B/tests/bin/tls_client" "127.0.0.1:$FP" get 100000 1 >/dev/null || fail "warm-up transfer"

stats() {   # stats -> "connections heap_in_use" from tlsoffd's SIGUSR1 line
  local before
  before=$(grep -c 'stats: connections=' "$T/tlsoffd.log" || true)
  kill -USR1 "$TLSOFFD_PID"
  for _ in $(seq 50); do
    [ "$(grep -c 'stats: connections=' "$T/tlsoffd.log" || true)" -gt "$before" ] && break
    sleep 0.1
  done
  grep 'stats: connections=' "$T/tlsoffd.log" | tail -n1 | sed 's/.*connections=\([0-9]*\) heap_in_use=\([0-9]*\).*/\1 \2/'
}
read -r c0 h0 <<<"$(stats)"
[ "$c0" -eq 0 ] || fail "expected no open connections before, tlsoffd says $c0"

mkfifo "$T/hold"
"$B/tests/bin/tls_client" --tls 1.3 "127.0.0.1:$FP" hold "$N" <"$T/hold" >"$T/hold.out" &
PIDS+=($!)
exec 3>"$T/hold"                 # keeps the holder's stdin open until we close it
for _ in $(seq 600); do grep -q "held $N" "$T/hold.out" && break; sleep 0.2; done
grep -q "held $N" "$T/hold.out" || fail "could not open $N connections"
sleep 1                          # the last handshakes' datapath choice is done
read -r c1 h1 <<<"$(stats)"
exec 3>&-
[ "$c1" -eq "$N" ] || fail "tlsoffd reports $c1 open connections, want $N"
per=$(( (h1 - h0) / N ))
if [ "${TLSOFF_LAB_KERNEL:-}" = 5.10 ]; then
  log "userspace datapath (no kTLS): $per bytes of heap per idle connection ($N connections)"
else
  log "kTLS + splice: $per bytes of heap per idle connection ($N connections, heap $h0 -> $h1)"
  [ "$per" -lt 2048 ] || fail "$per bytes per offloaded connection, goal < 2048"
fi
