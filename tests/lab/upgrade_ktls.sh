#!/usr/bin/env bash
# timeout: 120
# Seamless upgrade on the kTLS splice path (the newest lab kernel only: the handover itself is the same on
# every kernel, tests/host/upgrade.sh covers it): downloads and uploads offloaded to kTLS (TX+RX, spliced;
# 32 MB each at a limited rate, ~5 s: more than socket buffers hold) are open when a second tlsoffd takes
# the listeners over with --takeover. Their kTLS sockets stay with the old daemon, which serves them to
# their end (byte-exact, logged datapath=splice ktls=tx+rx) and then exits 0; the new daemon offloads the
# new connections to kTLS itself.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl
[ "${TLSOFF_LAB_KERNEL:-}" = latest ] || skip "runs on the lab's newest kernel only (here: ${TLSOFF_LAB_KERNEL:-not in the lab})"
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || fail "this lab kernel has no TLS ULP"

BP=$(free_port) FP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
OLD=$TLSOFFD_PID
URL="https://localhost:$FP"
RESOLVE=(--resolve "localhost:$FP:127.0.0.1" --cacert "$T/edge.crt")

gen_file 32000000 31 "$T/up"
want_up="$(sha256 "$T/up") 32000000"
pids=()
for i in 1 2; do
  curl -sS --fail "${RESOLVE[@]}" --limit-rate 6M -o "$T/dl.$i" "$URL/bytes/32000000/$i" 2>"$T/dl.$i.err" & pids+=($!)
done
curl -sS --fail "${RESOLVE[@]}" --limit-rate 6M -T "$T/up" -o "$T/up.out" "$URL/sha256" 2>"$T/up.err" & pids+=($!)
spliced() { ctl conn show datapath splice | grep -c ' splice  *sw  *sw ' || true; }   # kTLS TX and RX in software
for _ in $(seq 100); do [ "$(spliced)" -ge 3 ] && break; sleep 0.1; done
[ "$(spliced)" -eq 3 ] || { ctl conn show; fail "the three transfers are not on the splice datapath"; }

log "takeover while 3 kTLS transfers run in the old daemon"
"$B/tlsoffd" -f "$T/tlsoff.conf" --control "$CTL" --workers 2 --takeover 2>"$T/new.log" & NEW=$!; PIDS+=("$NEW")
for _ in $(seq 100); do grep -q 'takeover: done' "$T/new.log" && break; sleep 0.1; done
grep -q 'takeover: done' "$T/new.log" || { cat "$T/new.log"; fail "the takeover never completed"; }
ctl -j status | grep -q "\"pid\":$NEW" || fail "the control socket does not answer with the new daemon's pid"
kill -0 "$OLD" || fail "the old daemon did not wait for its kTLS connections"

log "a new connection is offloaded by the new daemon"
check_download "$URL" 1000000 33 "${RESOLVE[@]}"
for _ in $(seq 50); do grep -q 'close .*datapath=splice ktls=tx+rx' "$T/new.log" && break; sleep 0.1; done
grep -q 'close .*datapath=splice ktls=tx+rx' "$T/new.log" || { cat "$T/new.log"; fail "the new daemon did not offload"; }

for p in "${pids[@]}"; do wait "$p" || fail "a transfer across the upgrade failed: $(cat "$T"/*.err)"; done
for i in 1 2; do
  [ "$(sha256 "$T/dl.$i")" = "$("$B/tests/bin/http_backend" --gen 32000000 "$i" | sha256sum | cut -d' ' -f1)" ] ||
    fail "download $i across the upgrade: wrong bytes"
done
[ "$(cat "$T/up.out")" = "$want_up" ] || fail "upload across the upgrade: the backend saw '$(cat "$T/up.out")'"
rc=0
for _ in $(seq 100); do kill -0 "$OLD" 2>/dev/null || break; sleep 0.1; done
wait "$OLD" || rc=$?
[ "$rc" -eq 0 ] || fail "the old daemon exited $rc"
n=$(sed -n '/takeover: tlsoffd pid/,$p' "$T/tlsoffd.log" | grep -c 'close .*datapath=splice ktls=tx+rx.*reason="done"' || true)
[ "$n" -ge 3 ] || { cat "$T/tlsoffd.log"; fail "the old daemon finished $n kTLS transfers after the handover, want 3"; }
log "ok: 3 kTLS transfers finished in the old daemon after the handover; the new one offloads"
