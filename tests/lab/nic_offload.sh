#!/usr/bin/env bash
# timeout: 240
# nic-offload prefer on a real kTLS kernel. The lab has no NIC with TLS offload (no emulation exists:
# netdevsim has none), so what is proven is everything up to the hardware: the ClientHello callback's route
# lookup names the device the client's packets leave through — lo for a loopback client, the veth end in
# tlsoffd's namespace for a client in a test-made namespace — and, that device having no tls-hw-tx-offload,
# the decision is "not applicable" with that reason and the handshake is untouched (a TLS 1.3 client still
# gets TLS 1.3, a TLS 1.2 one TLS 1.2). The kernel then installs software kTLS: conn show says sw for TX and
# RX, the daemon's ktls_{tx,rx}_sw counters move by exactly the connections, the hw ones and the kernel's
# TlsTxDevice/TlsRxDevice stay 0. A frontend without the option reports no decision. The unit tests cover
# the decision for devices that have the offload (tests/unit/test_nic_pref.c).
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need ip curl python3

"$B/tlsoffd" --probe -j | grep -q '"ulp":true' ||
  skip "no kTLS on kernel $(uname -r): no key ever reaches a NIC (tests/host/tlsoffctl.sh covers the reason then)"

json() { python3 -c "import json,sys; d=json.load(sys.stdin); r=($1); print(r if not isinstance(r,bool) else str(r).lower())"; }
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }

NS=tlsoff-nic-$$; DEV=tn0-$$
cleanup_ns() { ip netns del "$NS" 2>/dev/null || true; ip link del "$DEV" 2>/dev/null || true; }
trap 'cleanup_pids; cleanup_ns' EXIT
ip link set lo up
ip netns add "$NS"
ip link add "$DEV" type veth peer name tn1
ip link set tn1 netns "$NS"
ip addr add 10.78.0.1/24 dev "$DEV"; ip link set "$DEV" up
ip -n "$NS" addr add 10.78.0.2/24 dev tn1; ip -n "$NS" link set tn1 up; ip -n "$NS" link set lo up

BP=$(free_port); LP=$(free_port); VP=$(free_port); OP=$(free_port)
make_cert edge localhost
cat >"$T/tlsoff.conf" <<CONF
backend add app server 127.0.0.1:$BP
frontend add lonic listen 127.0.0.1:$LP cert $T/edge.crt key $T/edge.key backend app datapath splice nic-offload prefer
frontend add vnic listen 10.78.0.1:$VP cert $T/edge.crt key $T/edge.key backend app datapath splice nic-offload prefer
frontend add plainfe listen 127.0.0.1:$OP cert $T/edge.crt key $T/edge.key backend app datapath splice
CONF
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$LP" --workers 1
wait_port "$VP"; wait_port "$OP"
ctl -j stats >"$T/stats0.json" || fail "stats"
dev0=$(( $(tls_stat TlsTxDevice) + $(tls_stat TlsRxDevice) ))

# 1. loopback, TLS 1.3, held open by a rate-limited download while conn show looks at it
curl -sS --fail -k --limit-rate 256K "https://127.0.0.1:$LP/bytes/1500000/1" -o "$T/lo.bin" & DL=$!; PIDS+=($DL)
for _ in $(seq 100); do
  ctl -j conn show frontend lonic >"$T/conns.json"
  [ "$(json 'len([c for c in d if c["state"] == "relay"])' <"$T/conns.json")" = 1 ] && break
  sleep 0.1
done
json 'len(d) == 1 and d[0]["version"] == "TLSv1.3" and d[0]["datapath"] == "splice" and d[0]["ktls_tx"] == "sw" and d[0]["ktls_rx"] == "sw" and d[0]["nic_offload"] == "not applicable: egress lo has no tls-hw-tx-offload"' <"$T/conns.json" |
  grep -qx true || { cat "$T/conns.json"; fail "conn show: loopback connection"; }
ctl conn show frontend lonic | grep -q ' sw   sw .* nic="not applicable: egress lo has no tls-hw-tx-offload"' ||
  { ctl conn show frontend lonic; fail "conn show text: sw sw and the nic decision"; }
wait $DL || fail "loopback download failed"
gen_file 1500000 1 "$T/want1.bin"
cmp -s "$T/lo.bin" "$T/want1.bin" || fail "loopback download corrupt"

# 2. TLS 1.2 client on loopback: still TLS 1.2, same reason
check_download "https://127.0.0.1:$LP" 100000 2 --tls-max 1.2

# 3. a client in another namespace: the route leaves through the veth, which has no offload either
ip netns exec "$NS" curl -sS --fail -k "https://10.78.0.1:$VP/bytes/100000/3" -o "$T/veth.bin" || fail "veth download failed"
gen_file 100000 3 "$T/want3.bin"
cmp -s "$T/veth.bin" "$T/want3.bin" || fail "veth download corrupt"

# 4. a frontend without the option: no decision, no route lookup
check_download "https://127.0.0.1:$OP" 100000 4

expect_log "close frontend=lonic client=127\.0\.0\.1:[0-9]+ .*tls=TLSv1\.3 .*datapath=splice ktls=tx\+rx kmode=tx:sw,rx:sw .* nic=\"not applicable: egress lo has no tls-hw-tx-offload\""
expect_log "close frontend=lonic .*tls=TLSv1\.2 .*kmode=tx:sw,rx:sw .* nic=\"not applicable: egress lo has no tls-hw-tx-offload\""
expect_log "close frontend=vnic client=10\.78\.0\.2:[0-9]+ .*tls=TLSv1\.3 .*kmode=tx:sw,rx:sw .* nic=\"not applicable: egress $DEV has no tls-hw-tx-offload\""
expect_log "close frontend=plainfe .*kmode=tx:sw,rx:sw .*reason=\"[^\"]*\"$"
grep 'close frontend=plainfe' "$T/tlsoffd.log" | grep -q ' nic=' && fail "a frontend without nic-offload reported a decision"

ctl -j stats >"$T/stats1.json"
python3 - "$T/stats0.json" "$T/stats1.json" <<'PY' || fail "stats deltas (see above)"
import json, sys
a, b = (json.load(open(p))["daemon"] for p in sys.argv[1:3])
d = {k: b[k] - a.get(k, 0) for k in b}
want = {"ktls_tx_sw": 4, "ktls_rx_sw": 4, "ktls_tx_hw": 0, "ktls_rx_hw": 0, "nic_not_applicable": 3, "nic_preferred": 0}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
print("# stats deltas:", {k: d.get(k) for k in want})
if bad:
    print("unexpected (got, want):", bad); sys.exit(1)
PY
dev1=$(( $(tls_stat TlsTxDevice) + $(tls_stat TlsRxDevice) ))
[ "$dev1" -eq "$dev0" ] || fail "TlsTxDevice+TlsRxDevice moved ($dev0 -> $dev1) without a NIC"
log "route lookup: lo and $DEV; 4 connections on software kTLS, none preferred, TLS versions unchanged"
