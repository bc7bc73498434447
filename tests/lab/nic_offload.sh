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
need ip curl

"$B/tlsoffd" --probe -j | grep -q '"ulp":true' ||
  skip "no kTLS on kernel $(uname -r): no key ever reaches a NIC (tests/host/tlsoffctl.sh covers the reason then)"

# No python here: under TCG one interpreter start costs seconds. JSON is compact: "key":value.
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat; }
counter() { grep -o "\"$2\":[0-9]*" "$1" | head -n1 | cut -d: -f2; }
# conn_has FILE PATTERN...: exactly one connection object of conn show -j matches every pattern
conn_has() {
  local f=$1 objs; shift
  objs=$(grep -o '{[^{}]*}' "$f")
  for p in "$@"; do objs=$(grep -F -- "$p" <<<"$objs" || true); done
  [ "$(grep -c . <<<"$objs")" = 1 ]
}

NS=tlsoff-nic-$$; DEV=tn0-$$
cleanup_ns() { ip netns del "$NS" 2>/dev/null || true; ip link del "$DEV" 2>/dev/null || true; }
trap 'exec 7>&- 2>/dev/null; cleanup_pids; cleanup_ns' EXIT
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

# 1. three idle connections held open for conn show: loopback TLS 1.3 (the client's default), loopback
#    TLS 1.2, and TLS 1.3 from the other namespace through the veth
mkfifo "$T/hold"
"$B/tests/bin/tls_client" "127.0.0.1:$LP" hold 1 <"$T/hold" >"$T/h13.out" 2>&1 & PIDS+=($!)
"$B/tests/bin/tls_client" --tls 1.2 "127.0.0.1:$LP" hold 1 <"$T/hold" >"$T/h12.out" 2>&1 & PIDS+=($!)
ip netns exec "$NS" "$B/tests/bin/tls_client" "10.78.0.1:$VP" hold 1 <"$T/hold" >"$T/hv.out" 2>&1 & PIDS+=($!)
exec 7>"$T/hold"
for f in h13 h12 hv; do
  for _ in $(seq 300); do grep -q '^held 1' "$T/$f.out" && break; sleep 0.1; done
  grep -q '^held 1' "$T/$f.out" || { cat "$T/$f.out"; fail "tls_client ($f) could not hold its connection"; }
done
sleep 0.5   # the last handshake's handoff and sock_diag
ctl -j conn show >"$T/conns.json" || fail "conn show"
ctl conn show >"$T/conns.txt"
lo_na='"nic_offload":"not applicable: egress lo has no tls-hw-tx-offload"'
conn_has "$T/conns.json" '"frontend":"lonic"' '"version":"TLSv1.3"' '"datapath":"splice"' '"ktls_tx":"sw"' '"ktls_rx":"sw"' "$lo_na" ||
  { cat "$T/conns.txt"; fail "conn show: loopback TLS 1.3 connection (sw/sw, the reason names lo)"; }
conn_has "$T/conns.json" '"frontend":"lonic"' '"version":"TLSv1.2"' '"ktls_tx":"sw"' '"ktls_rx":"sw"' "$lo_na" ||
  { cat "$T/conns.txt"; fail "conn show: loopback TLS 1.2 connection"; }
conn_has "$T/conns.json" '"frontend":"vnic"' '"client":"10.78.0.2:' '"version":"TLSv1.3"' '"ktls_tx":"sw"' '"ktls_rx":"sw"' \
  "\"nic_offload\":\"not applicable: egress $DEV has no tls-hw-tx-offload\"" ||
  { cat "$T/conns.txt"; fail "conn show: the veth client's connection (the reason names $DEV)"; }
grep -q ' sw   sw .* nic="not applicable: egress lo has no tls-hw-tx-offload"' "$T/conns.txt" ||
  { cat "$T/conns.txt"; fail "conn show text: sw sw and the decision"; }
exec 7>&-

# 2. bytes through a prefer frontend and through one without the option (which reports no decision)
check_download "https://127.0.0.1:$LP" 300000 1
check_download "https://127.0.0.1:$OP" 300000 2
expect_log "close frontend=lonic client=127\.0\.0\.1:[0-9]+ .*tls=TLSv1\.2 .*kmode=tx:sw,rx:sw .* nic=\"not applicable: egress lo has no tls-hw-tx-offload\"" 30
expect_log "close frontend=vnic client=10\.78\.0\.2:[0-9]+ .*tls=TLSv1\.3 .*kmode=tx:sw,rx:sw .* nic=\"not applicable: egress $DEV has no tls-hw-tx-offload\"" 30
expect_log "close frontend=plainfe .*kmode=tx:sw,rx:sw .*reason=\"[^\"]*\"$" 30
grep 'close frontend=plainfe' "$T/tlsoffd.log" | grep -q ' nic=' && fail "a frontend without nic-offload reported a decision"

# 3. counters: 5 connections on software kTLS both ways, 4 "not applicable" decisions, nothing on a NIC
ctl -j stats >"$T/stats1.json"
for c in ktls_tx_sw:5 ktls_rx_sw:5 ktls_tx_hw:0 ktls_rx_hw:0 nic_not_applicable:4 nic_preferred:0; do
  name=${c%%:*} want=${c##*:}
  got=$(( $(counter "$T/stats1.json" "$name") - $(counter "$T/stats0.json" "$name") ))
  [ "$got" = "$want" ] || { ctl stats; fail "stats: $name moved by $got, want $want"; }
done
dev1=$(( $(tls_stat TlsTxDevice) + $(tls_stat TlsRxDevice) ))
[ "$dev1" -eq "$dev0" ] || fail "TlsTxDevice+TlsRxDevice moved ($dev0 -> $dev1) without a NIC"
log "route lookup: lo and $DEV; 5 connections on software kTLS, 4 decisions 'not applicable', TLS versions unchanged"
