#!/usr/bin/env bash
# timeout: 240
# Fault suite, host part: a connection flood against max-conns. N plain TCP connections at once (no TLS:
# a refusal happens before any handshake, so it is datapath-independent and needs no kTLS kernel) against a
# frontend with max-conns M, while a 64 MB download holds one slot and must arrive sha256-exact:
#   - exactly M-1 flood connections stay open, every other one is closed by tlsoffd (the client sees EOF/RST)
#     and counted in refused_max_conns and logged; tlsoffctl stats and conn show answer during the flood;
#   - tlsoffd's descriptors stay bounded by M (refused ones are not kept), and come back to the baseline;
#   - once the flood is gone, the frontend serves again.
# make test: N=2000, M=200; make faults (TLSOFF_FAULTS_FULL=1): N=10000, M=1000.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl prlimit

if [ "${TLSOFF_FAULTS_FULL:-0}" = 1 ]; then N=10000 M=1000; else N=2000 M=200; fi
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge $((N + 200)) ] || skip "hard ulimit -n $hard: $N connections need $((N + 200))"
ulimit -n $((N + 200))      # the flood client's connections (tlsoffd needs M + its own)
PEER="$B/tests/bin/bad_peer"
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
stat_of() { timeout 5 "$B/tlsoffctl" -s "$CTL" -j stats | sed -n "s/.*\"$1\": *\\([0-9]*\\).*/\\1/p"; }

BP=$(free_port) FP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add capped listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app max-conns $M handshake-timeout 60000
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
check_download "https://127.0.0.1:$FP" 1000 1
expect_log 'close frontend=capped '
sleep 0.3
fds0=$(fd_count "$TLSOFFD_PID")
r0=$(stat_of refused_max_conns)
want64=$("$B/tests/bin/http_backend" --gen 67108864 64 | sha256sum | cut -d' ' -f1)

log "a 64 MB download holds one of the $M slots"
"$PEER" download "127.0.0.1:$FP" 67108864 64 "$T/go.dl" >"$T/dl" 2>&1 & DL=$!; PIDS+=($DL)
for _ in $(seq 50); do grep -q '^port=' "$T/dl" && break; sleep 0.1; done
grep -q '^port=' "$T/dl" || fail "download never started: $(cat "$T/dl")"

log "$N connections at once against max-conns $M"
t0=$(date +%s%N)
"$PEER" tcp-flood "127.0.0.1:$FP" "$N" 1500 "$T/go.flood" >"$T/flood" 2>&1 & FL=$!; PIDS+=($FL)
for _ in $(seq 1200); do grep -q '^open=' "$T/flood" && break; kill -0 $FL 2>/dev/null || break; sleep 0.1; done
r=$(cat "$T/flood")
grep -q '^open=' <<<"$r" || fail "flood client: $r"
log "  $r ($((($(date +%s%N) - t0) / 1000000)) ms)"
[ "$(field still_open "$r")" -eq $((M - 1)) ] && [ "$(field closed "$r")" -eq $((N - M + 1)) ] ||
  fail "flood: $r; want still_open=$((M - 1)) closed=$((N - M + 1))"

log "during the flood: tlsoffctl answers, the counters and the log agree"
timeout 5 "$B/tlsoffctl" -s "$CTL" stats >"$T/stats" || fail "tlsoffctl stats during the flood"
timeout 10 "$B/tlsoffctl" -s "$CTL" conn show >"$T/conns" || fail "tlsoffctl conn show during the flood"
n=$(grep -c 'capped' "$T/conns" || true)
[ "$n" -eq "$M" ] || fail "conn show lists $n connections of frontend capped, want $M"
refused=$(($(stat_of refused_max_conns) - r0))
[ "$refused" -eq $((N - M + 1)) ] || fail "refused_max_conns +$refused, want $((N - M + 1))"
logged=$(grep -c "frontend capped: refused a connection: max-conns $M reached" "$T/tlsoffd.log" || true)
[ "$logged" -eq "$refused" ] || fail "$logged refusals logged, $refused counted"
fds=$(fd_count "$TLSOFFD_PID")
[ "$fds" -le $((fds0 + 2 * M + 16)) ] || fail "tlsoffd holds $fds descriptors for $M connections (baseline $fds0)"
log "  refused $refused (counted and logged), $n in conn show, tlsoffd at $fds descriptors (baseline $fds0)"
curl -sS -k --max-time 5 "https://127.0.0.1:$FP/bytes/10/1" -o /dev/null 2>/dev/null && fail "a connection over max-conns was served"

log "the flood leaves: the download completes, the frontend serves, descriptors back to the baseline"
touch "$T/go.flood"; wait $FL || fail "flood client: $(cat "$T/flood")"
touch "$T/go.dl"; wait $DL || fail "download: $(cat "$T/dl")"
r=$(tail -n1 "$T/dl")
[ "$(field body "$r")" = 67108864 ] && [ "$(field sha256 "$r")" = "$want64" ] && [ "$(field end "$r")" = close_notify ] ||
  fail "download during the flood: $r"
for _ in $(seq 100); do check_download "https://127.0.0.1:$FP" 1000 2 2>/dev/null && break; sleep 0.1; done
pids=()
for i in $(seq 8); do check_download "https://127.0.0.1:$FP" 1000000 "$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a download after the flood failed"; done
for _ in $(seq 100); do [ "$(fd_count "$TLSOFFD_PID")" -le "$fds0" ] && break; sleep 0.1; done
[ "$(fd_count "$TLSOFFD_PID")" -le "$fds0" ] || fail "tlsoffd has $(fd_count "$TLSOFFD_PID") descriptors after the flood, had $fds0"
kill -0 "$TLSOFFD_PID" || fail "tlsoffd died"
log "ok"
