#!/usr/bin/env bash
# timeout: 120
# Seamless upgrade on the kTLS splice path (the newest lab kernel only: the handover itself is the same on
# every kernel, tests/host/upgrade.sh covers it): three downloads offloaded to kTLS (TX+RX, spliced) are
# held in flight (bad_peer download: it reads at a pace and stops 1 MB short until told to go) when a
# second tlsoffd takes the listeners over with --takeover. Their kTLS sockets stay with the old daemon,
# which serves them to their end (byte-exact, ended by close_notify, logged datapath=splice ktls=tx+rx
# after the handover) and then exits 0; the new daemon offloads new connections to kTLS itself.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl
[ "${TLSOFF_LAB_KERNEL:-}" = latest ] || skip "runs on the lab's newest kernel only (here: ${TLSOFF_LAB_KERNEL:-not in the lab})"
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || fail "this lab kernel has no TLS ULP"

BP=$(free_port) FP=$(free_port)
N=2000000
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
OLD=$TLSOFFD_PID
want=$("$B/tests/bin/http_backend" --gen "$N" 64 | sha256sum | cut -d' ' -f1)
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

pids=()
for i in 1 2 3; do
  "$B/tests/bin/bad_peer" download "127.0.0.1:$FP" "$N" 64 "$T/go" >"$T/dl.$i" 2>&1 & pids+=($!); PIDS+=($!)
done
spliced() { ctl stats | awk '$1 == "splice" { print $2 }'; }
for _ in $(seq 300); do [ "$(spliced)" -ge 3 ] && break; sleep 0.1; done
[ "$(spliced)" -ge 3 ] || { cat "$T/tlsoffd.log"; fail "the three downloads did not reach the splice datapath"; }

log "takeover while 3 kTLS downloads are in flight in the old daemon"
"$B/tlsoffd" -f "$T/tlsoff.conf" --control "$CTL" --workers 2 --takeover 2>"$T/new.log" & NEW=$!; PIDS+=("$NEW")
for _ in $(seq 300); do grep -q 'takeover: done' "$T/new.log" && break; sleep 0.1; done
grep -q 'takeover: done' "$T/new.log" || { cat "$T/new.log"; fail "the takeover never completed"; }
ctl -j status | grep -q "\"pid\":$NEW," || fail "the control socket does not answer with the new daemon's pid"
kill -0 "$OLD" || fail "the old daemon did not wait for its kTLS connections"

log "a new connection is offloaded by the new daemon"
check_download "https://127.0.0.1:$FP" 100000 33
for _ in $(seq 50); do grep -q 'close .*datapath=splice ktls=tx+rx' "$T/new.log" && break; sleep 0.1; done
grep -q 'close .*datapath=splice ktls=tx+rx' "$T/new.log" || { cat "$T/new.log"; fail "the new daemon did not offload"; }

log "the held downloads finish in the old daemon"
touch "$T/go"
for i in 1 2 3; do
  wait "${pids[$((i - 1))]}" || fail "download $i: $(cat "$T/dl.$i")"
  r=$(tail -n1 "$T/dl.$i")
  [ "$(field body "$r")" = "$N" ] && [ "$(field sha256 "$r")" = "$want" ] && [ "$(field end "$r")" = close_notify ] ||
    fail "download $i across the upgrade: $r"
done
rc=0
for _ in $(seq 300); do kill -0 "$OLD" 2>/dev/null || break; sleep 0.1; done
wait "$OLD" || rc=$?
[ "$rc" -eq 0 ] || fail "the old daemon exited $rc"
n=$(sed -n '/takeover: tlsoffd pid/,$p' "$T/tlsoffd.log" | grep -c 'close .*datapath=splice ktls=tx+rx.*reason="done"' || true)
[ "$n" -eq 3 ] || { cat "$T/tlsoffd.log"; fail "the old daemon finished $n kTLS downloads after the handover, want 3"; }
log "ok: 3 kTLS downloads finished in the old daemon after the handover; the new one offloads"
