#!/usr/bin/env bash
# timeout: 300
# tlsoffctl on a real kernel: `conn show` reports kTLS TX/RX "sw" (read from sock_diag INET_ULP_INFO_TLS) for
# connections on the splice datapath and "none" for userspace ones; `stats` carries the kernel's
# /proc/net/tls_stat; `status` lists what the kernel accepted; `offload show` lists lo and a veth pair with
# their TLS features (ethtool netlink), and the daemon logs the veth's link events (rtnetlink). On a kernel
# without kTLS (5.10) the same commands must report "none" everywhere, with the reason.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need python3 ip

json() { python3 -c "import json,sys; d=json.load(sys.stdin); r=($1); print(r if not isinstance(r,bool) else str(r).lower())"; }
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
for _ in $(seq 100); do grep -q '^held 2' "$T/hold1.out" && grep -q '^held 2' "$T/hold2.out" && break; sleep 0.1; done
grep -q '^held 2' "$T/hold1.out" && grep -q '^held 2' "$T/hold2.out" || fail "could not hold the connections"
# the handoff happens after the handshake: wait until all four are relaying
for _ in $(seq 100); do
  [ "$(ctl -j conn show | json 'sum(c["state"] == "relay" for c in d)')" = 4 ] && break; sleep 0.1
done
ctl -j conn show >"$T/conns.json"
ctl conn show
if [ $ktls = yes ]; then
  json 'sorted((c["frontend"], c["datapath"], c["ktls_tx"], c["ktls_rx"]) for c in d)' <"$T/conns.json" >"$T/modes"
  [ "$(cat "$T/modes")" = "[('edge', 'splice', 'sw', 'sw'), ('edge', 'splice', 'sw', 'sw'), ('user', 'userspace', 'none', 'none'), ('user', 'userspace', 'none', 'none')]" ] ||
    { cat "$T/conns.json"; fail "conn show modes: $(cat "$T/modes")"; }
  [ "$(ctl -j conn show datapath splice | json 'len(d)')" = 2 ] || fail "conn show datapath splice"
  ctl -j stats | json 'd["kernel"]["TlsCurrTxSw"] >= 2 and d["kernel"]["TlsCurrRxSw"] >= 2' | grep -qx true ||
    { ctl stats; fail "stats: the kernel's TlsCurrTxSw/TlsCurrRxSw do not count the offloaded connections"; }
  ctl -j status | json 'd["tls_ulp"] and any(c["tx"] and c["rx"] for c in d["ciphers"])' | grep -qx true ||
    { ctl status; fail "status: kTLS capabilities"; }
else
  json 'all(c["ktls_tx"] == "none" and c["ktls_rx"] == "none" and c["datapath"] == "userspace" for c in d)' <"$T/conns.json" |
    grep -qx true || { cat "$T/conns.json"; fail "conn show without kTLS"; }
  json 'all(c["why"] for c in d if c["frontend"] == "edge")' <"$T/conns.json" | grep -qx true || fail "no reason given"
  ctl -j status | json 'not d["tls_ulp"] and d["tls_ulp_why"] != ""' | grep -qx true || fail "status without kTLS"
fi
exec 7>&-

# offload: lo and a veth pair made now; their appearance and state changes are logged from rtnetlink events
ip link add tlsoffv0 type veth peer name tlsoffv1 || fail "cannot create a veth pair"
ip link set tlsoffv0 up
expect_log "link tlsoffv0" 5
ctl -j offload show >"$T/offload.json" || fail "offload show"
ctl offload show
for dev in lo tlsoffv0 tlsoffv1; do
  json "sorted([l for l in d if l['dev'] == '$dev'][0]['features'])" <"$T/offload.json" | grep -qx \
    "\['tls-hw-record', 'tls-hw-rx-offload', 'tls-hw-tx-offload'\]" || { cat "$T/offload.json"; fail "offload show: $dev"; }
done
[ "$(ctl -j offload show dev tlsoffv0 | json 'd[0]["features"]["tls-hw-tx-offload"]["hw"]')" = false ] ||
  fail "a veth has no TLS hardware"
ctl offload set dev tlsoffv0 tls-hw-tx on 2>"$T/err" && fail "offload set on a veth succeeded"
grep -q tlsoffv0 "$T/err" || fail "offload set message: $(cat "$T/err")"
ip link del tlsoffv0
log "conn show / stats / status / offload show on kernel $(uname -r) (kTLS: $ktls)"
