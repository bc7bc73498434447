#!/usr/bin/env bash
# timeout: 240
# No plaintext on the wire. The client lives in its own network namespace, joined to tlsoffd's by a veth
# pair; tcpdump captures the client leg while a random 64-byte canary repeats throughout both directions'
# payloads (upload to the backend, echoed back), on the splice (kTLS) and userspace datapaths. The canary
# must never appear in the capture, and the backend must receive exactly the client's bytes. A plain-HTTP
# control transfer over the same veth proves the capture would have seen it.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need ip tcpdump curl

NS=tlsoff-wire-$$
cleanup_ns() { ip netns del "$NS" 2>/dev/null || true; ip link del tw0-$$ 2>/dev/null || true; }
trap 'cleanup_pids; cleanup_ns' EXIT
ip netns add "$NS"
ip link add "tw0-$$" type veth peer name tw1
ip link set tw1 netns "$NS"
ip addr add 10.77.0.1/24 dev "tw0-$$"; ip link set "tw0-$$" up
ip -n "$NS" addr add 10.77.0.2/24 dev tw1; ip -n "$NS" link set tw1 up; ip -n "$NS" link set lo up

BP=$(free_port); SP=$(free_port); UP=$(free_port); HP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add spliced listen 10.77.0.1:$SP cert $T/edge.crt key $T/edge.key backend app datapath splice
frontend add user listen 10.77.0.1:$UP cert $T/edge.crt key $T/edge.key backend app datapath userspace
CONF
start_backend "$BP"
"$B/tlsoffd" -f "$T/tlsoff.conf" --workers 1 --control "$T/ctl.wire" 2>>"$T/tlsoffd.log" & TLSOFFD_PID=$!; PIDS+=($!)
"$B/tests/bin/http_backend" -q "10.77.0.1:$HP" & PIDS+=($!)
for p in "$SP" "$UP" "$HP"; do wait_port "$p"; done

canary=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')      # 64 characters
[ ${#canary} -eq 64 ] || fail "canary generation"
for i in $(seq 16384); do printf '%s' "$canary"; done >"$T/payload"  # 1 MiB, the canary throughout
want="$(sha256 "$T/payload") $(stat -c %s "$T/payload")"

tcpdump -i "tw0-$$" -U -s 0 -w "$T/wire.pcap" "tcp port $SP or tcp port $UP or tcp port $HP" 2>"$T/tcpdump.log" &
dump=$!; PIDS+=($dump)
sleep 1

cl() { ip netns exec "$NS" curl -sS --fail -k "$@"; }
for port in "$SP" "$UP"; do
  got=$(cl -T "$T/payload" "https://10.77.0.1:$port/sha256") || fail "upload through port $port"
  [ "$got" = "$want" ] || fail "backend saw '$got', client sent '$want' (port $port)"
  cl --data-binary @"$T/payload" -o "$T/echo" "https://10.77.0.1:$port/echo" || fail "echo through port $port"
  cmp -s "$T/echo" "$T/payload" || fail "echoed bytes differ (port $port)"
done
# Control: the same payload in plaintext HTTP over the same veth must show up in the capture.
ip netns exec "$NS" curl -sS --fail -T "$T/payload" "http://10.77.0.1:$HP/sha256" >/dev/null || fail "control upload"
sleep 1
kill -INT "$dump"; wait "$dump" 2>/dev/null || true

size=$(stat -c %s "$T/wire.pcap")
[ "$size" -gt $((5 * 1024 * 1024)) ] || fail "capture too small ($size bytes): tcpdump missed the transfers"
ctl=$( { grep -a -o -F "$canary" "$T/wire.pcap" || true; } | wc -l)
[ "$ctl" -gt 100 ] || fail "the plaintext control transfer was not seen in the capture ($ctl canaries)"
# Everything but the control flow: the TLS legs alone.
tcpdump -r "$T/wire.pcap" -w "$T/tls.pcap" "tcp port $SP or tcp port $UP" 2>/dev/null
leaks=$( { grep -a -o -F "$canary" "$T/tls.pcap" || true; } | wc -l)
[ "$leaks" -eq 0 ] || fail "the canary appears $leaks times on the TLS client leg"
[ "$(stat -c %s "$T/tls.pcap")" -gt $((4 * 1024 * 1024)) ] || fail "TLS legs missing from the capture"
if [ "${TLSOFF_LAB_KERNEL:-}" != 5.10 ]; then
  grep -q 'frontend=spliced .*datapath=splice ktls=tx+rx' "$T/tlsoffd.log" || fail "splice frontend did not use kTLS"
fi
grep -q 'frontend=user .*datapath=userspace (configured)' "$T/tlsoffd.log" || fail "userspace frontend not logged"
log "control flow: $ctl canaries seen; TLS legs: 0 in $(stat -c %s "$T/tls.pcap") bytes"
