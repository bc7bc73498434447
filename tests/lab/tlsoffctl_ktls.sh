#!/usr/bin/env bash
# timeout: 600
# tlsoffctl on a real kernel: `conn show` reports kTLS TX/RX "sw" (read from sock_diag INET_ULP_INFO_TLS) for
# connections on the splice datapath and "none" for userspace ones; `stats` carries the kernel's
# /proc/net/tls_stat; `status` lists what the kernel accepted; `offload show` lists lo and a veth pair with
# their TLS features (ethtool netlink), and the daemon logs the veth's link events (rtnetlink). On a kernel
# without kTLS (5.10) the same commands must report "none" everywhere, with the reason.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need python3 ip

ktls=no
"$B/tlsoffd" --probe -j | grep -q '"ulp":true' && ktls=yes

edge_tlsoffd splice --workers 2
UP=$(free_port)
ctl frontend add user listen "127.0.0.1:$UP" cert "$T/edge.crt" key "$T/edge.key" backend app datapath userspace ||
  fail "frontend add user"

# two idle connections on each frontend, held open while we look
mkfifo "$T/hold.in"
exec 7<>"$T/hold.in"
"$B/tests/bin/tls_client" "127.0.0.1:$FP" hold 2 <"$T/hold.in" >"$T/hold1.out" 2>&1 & PIDS+=($!)
"$B/tests/bin/tls_client" --tls 1.2 "127.0.0.1:$UP" hold 2 <"$T/hold.in" >"$T/hold2.out" 2>&1 & PIDS+=($!)
for _ in $(seq 600); do grep -q '^held 2' "$T/hold1.out" && grep -q '^held 2' "$T/hold2.out" && break; sleep 0.1; done
grep -q '^held 2' "$T/hold1.out" && grep -q '^held 2' "$T/hold2.out" || fail "could not hold the connections"
# the handoff happens after the handshake: wait until all four have a datapath (text output: no python, which
# is slow to start under TCG)
for _ in $(seq 300); do
  [ "$(ctl conn show | grep -cE ' (splice|userspace) ')" = 4 ] && break; sleep 0.2
done
ctl conn show
ctl -j conn show >"$T/conns.json"
ctl -j stats >"$T/stats.json"
ctl -j status >"$T/status.json"
[ "$(ctl -j conn show datapath splice | grep -o '"id"' | wc -l)" = $([ $ktls = yes ] && echo 2 || echo 0) ] ||
  fail "conn show datapath splice: wrong count"
# every assertion about them in one python run
python3 - "$T" "$ktls" <<'PY' || fail "conn show / stats / status (see above)"
import json, sys
t, ktls = sys.argv[1], sys.argv[2] == "yes"
conns = json.load(open(t + "/conns.json"))
stats = json.load(open(t + "/stats.json"))
status = json.load(open(t + "/status.json"))
modes = sorted((c["frontend"], c["datapath"], c["ktls_tx"], c["ktls_rx"]) for c in conns)
if ktls:
    want = [("edge", "splice", "sw", "sw")] * 2 + [("user", "userspace", "none", "none")] * 2
    assert modes == want, modes
    k = stats.get("kernel", {})
    assert k.get("TlsCurrTxSw", 0) >= 2 and k.get("TlsCurrRxSw", 0) >= 2, k
    assert status["tls_ulp"] and any(c["tx"] and c["rx"] for c in status["ciphers"]), status
else:
    assert all(m[1:] == ("userspace", "none", "none") for m in modes), modes
    assert all(c["why"] for c in conns if c["frontend"] == "edge"), conns
    assert not status["tls_ulp"] and status["tls_ulp_why"], status
PY

# metrics (turned on at run time): promtool accepts them; kTLS directions counted as sw, the kernel's view,
# splice bytes of a download, open connections by frontend
MP=$(free_port)
ctl metrics listen "127.0.0.1:$MP" || fail "metrics listen"
check_download "https://127.0.0.1:$FP" 1000000 7
curl -sS --fail "http://127.0.0.1:$MP/metrics" >"$T/m.txt" || fail "scrape"
promtool check metrics <"$T/m.txt" || fail "promtool check metrics"
metric() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$T/m.txt"; }
[ "$(metric 'tlsoff_open_connections{frontend="edge",mode="tls"}')" -ge 2 ] || fail "open connections of edge"
if [ $ktls = yes ]; then
  [ "$(metric 'tlsoff_ktls_sessions_total{direction="tx",mode="sw"}')" -ge 3 ] &&
    [ "$(metric 'tlsoff_ktls_sessions_total{direction="rx",mode="sw"}')" -ge 3 ] || fail "kTLS sessions (sw) not counted"
  [ "$(metric 'tlsoff_kernel_tls_sessions{direction="tx",mode="sw"}')" -ge 2 ] || fail "the kernel's TlsCurrTxSw"
  [ "$(metric 'tlsoff_bytes_total{datapath="splice",direction="out"}')" -ge 1000000 ] || fail "splice bytes"
else
  [ "$(metric 'tlsoff_ktls_sessions_total{direction="tx",mode="sw"}')" = 0 ] || fail "kTLS counted without kTLS"
  grep -q tlsoff_kernel_tls_sessions "$T/m.txt" && fail "kernel kTLS counters without /proc/net/tls_stat"
  [ "$(metric 'tlsoff_bytes_total{datapath="userspace",direction="out"}')" -ge 1000000 ] || fail "userspace bytes"
fi
[ "$(metric 'tlsoff_ktls_sessions_total{direction="tx",mode="hw"}')" = 0 ] || fail "hw sessions without a NIC"
exec 7>&-

# offload: lo and a veth pair made now; their appearance and state changes are logged from rtnetlink events
ip link add tlsoffv0 type veth peer name tlsoffv1 || fail "cannot create a veth pair"
ip link set tlsoffv0 up
expect_log "link tlsoffv0" 5
ctl -j offload show >"$T/offload.json" || fail "offload show"
ctl -j offload show dev tlsoffv0 >"$T/veth.json" || fail "offload show dev tlsoffv0"
ctl offload show
python3 - "$T" <<'PY' || fail "offload show: lo and the veth pair with their TLS features"
import json, sys
links = {l["dev"]: l for l in json.load(open(sys.argv[1] + "/offload.json"))}
for dev in ("lo", "tlsoffv0", "tlsoffv1"):
    assert sorted(links[dev]["features"]) == ["tls-hw-record", "tls-hw-rx-offload", "tls-hw-tx-offload"], links.get(dev)
veth = json.load(open(sys.argv[1] + "/veth.json"))
assert len(veth) == 1 and veth[0]["features"]["tls-hw-tx-offload"]["hw"] is False, veth
PY
ctl offload set dev tlsoffv0 tls-hw-tx on 2>"$T/err" && fail "offload set on a veth succeeded"
grep -q tlsoffv0 "$T/err" || fail "offload set message: $(cat "$T/err")"
ip link del tlsoffv0
log "conn show / stats / status / offload show on kernel $(uname -r) (kTLS: $ktls)"
