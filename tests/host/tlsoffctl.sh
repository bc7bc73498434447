#!/usr/bin/env bash
# tlsoffctl end to end against a running tlsoffd with live traffic (userspace datapath: the host has no
# kTLS): every object and verb, -j output parsed as JSON, exit codes, -batch, config dump round trip, the
# control socket's permissions and its answers to garbage, and SIGHUP versus the control socket.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
need curl openssl python3 ss

# json EXPR: evaluate a python expression over the JSON document on stdin (d), print the result
json() { python3 -c "import json,sys; d=json.load(sys.stdin); r=($1); print(r if not isinstance(r,bool) else str(r).lower())"; }
# expect_exit N CMD...: run CMD (stderr kept in $T/err), require exit status N
expect_exit() {
  local want=$1 rc=0; shift
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err"; fail "$* exited $rc, want $want"; }
}

edge_tlsoffd userspace --workers 2
URL="https://localhost:$FP"
CURL=(--resolve "localhost:$FP:127.0.0.1" --cacert "$T/edge.crt")

# ---- the socket: mode 0660, peer credentials in the log ---------------------------------------------
[ "$(stat -c %a "$CTL")" = 660 ] || fail "control socket mode $(stat -c %a "$CTL"), want 660"
ctl status >"$T/status.txt" || fail "status failed"
grep -q "^tlsoffd .* pid $TLSOFFD_PID " "$T/status.txt" || { cat "$T/status.txt"; fail "status does not name the daemon"; }
[ "$(ctl -j status | json 'd["pid"]')" = "$TLSOFFD_PID" ] || fail "status -j pid"
[ "$(ctl -j status | json 'd["tls_ulp"]')" = false ] || fail "status -j: the host has no TLS ULP"
ctl -j status | json 'd["tls_ulp_why"]' | grep -q . || fail "status -j: no reason for the missing TLS ULP"
expect_log "control: uid=$(id -u) gid=$(id -g) pid=[0-9]+: status: ok"

# ---- live connections: conn show, filters, kill ---------------------------------------------------
mkfifo "$T/hold.in"
"$B/tests/bin/tls_client" "127.0.0.1:$FP" hold 3 <"$T/hold.in" >"$T/hold.out" 2>&1 &
PIDS+=($!); HOLD=$!
exec 7>"$T/hold.in"
for _ in $(seq 50); do grep -q '^held 3' "$T/hold.out" && break; sleep 0.1; done
grep -q '^held 3' "$T/hold.out" || fail "tls_client could not hold 3 connections"
# a transfer in flight too: 20 MB at 2 MB/s (it must outlive the conn show checks, on a loaded machine too)
curl -sS --fail "${CURL[@]}" --limit-rate 2M "$URL/bytes/20000000/5" -o "$T/slow.bin" & SLOW=$!
sleep 1
ctl -j conn show >"$T/conns.json" || fail "conn show -j failed"
n=$(json 'len(d)' <"$T/conns.json"); [ "$n" -ge 4 ] || { cat "$T/conns.json"; fail "conn show: $n connections, want >= 4"; }
json 'all(c["datapath"] == "userspace" and c["ktls_tx"] == "none" and c["ktls_rx"] == "none" and c["frontend"] == "edge" for c in d if c["state"] == "relay")' <"$T/conns.json" | grep -qx true ||
  { cat "$T/conns.json"; fail "conn show: userspace connections must report ktls none"; }
json 'max(c["bytes_out"] for c in d) > 0 and all(c["version"] in ("TLSv1.2", "TLSv1.3") and c["cipher"] for c in d if c["state"] == "relay")' <"$T/conns.json" |
  grep -qx true || { cat "$T/conns.json"; fail "conn show: bytes, version or cipher missing"; }
ctl conn show >"$T/conns.txt"
grep -q '^ID ' "$T/conns.txt" && grep -q ' userspace none none ' "$T/conns.txt" || { cat "$T/conns.txt"; fail "conn show text"; }
[ "$(ctl -j conn show frontend nope | json 'len(d)')" = 0 ] || fail "conn show frontend nope: not empty"
[ "$(ctl -j conn show datapath splice | json 'len(d)')" = 0 ] || fail "conn show datapath splice: not empty on the host"
[ "$(ctl -j conn show backend app datapath userspace | json 'len(d)')" -ge 4 ] || fail "conn show with filters"
victim=$(json '[c["id"] for c in d if c["bytes_out"] == 0][0]' <"$T/conns.json")
ctl conn kill "$victim" || fail "conn kill $victim"
expect_log "close frontend=edge .*reason=\"killed by tlsoffctl conn kill\""
ctl -j conn show | json "all(c['id'] != $victim for c in d)" | grep -qx true || fail "killed connection still listed"
expect_exit 1 ctl conn kill "$victim"
grep -q "no connection $victim" "$T/err" || fail "conn kill of a closed id: $(cat "$T/err")"
expect_exit 2 ctl conn kill abc

# ---- runtime frontends: accepting as soon as acked; deleting drains ---------------------------------
FP2=$(free_port)
ctl frontend add edge2 listen "127.0.0.1:$FP2" cert "$T/edge.crt" key "$T/edge.key" backend app alpn http/1.1 ||
  fail "frontend add"
# no wait: the listener is bound and listening before the ack
curl -sS --fail --connect-timeout 1 --resolve "localhost:$FP2:127.0.0.1" --cacert "$T/edge.crt" \
  "https://localhost:$FP2/bytes/1000/1" -o /dev/null || fail "frontend added at runtime did not accept right after its ack"
[ "$(ctl -j frontend show edge2 | json 'd[0]["alpn"]')" = http/1.1 ] || fail "frontend show edge2"
expect_exit 1 ctl frontend add edge3 listen "127.0.0.1:$FP2" cert "$T/edge.crt" key "$T/edge.key" backend app
grep -q "already the listen address of 'edge2'" "$T/err" || fail "duplicate listen address: $(cat "$T/err")"
expect_exit 1 ctl frontend add edge3 listen "127.0.0.1:$(free_port)" cert "$T/nope.crt" key "$T/edge.key" backend app
grep -q "nope.crt" "$T/err" || fail "missing certificate: $(cat "$T/err")"
expect_exit 2 ctl frontend add edge3 listen 127.0.0.1 cert a key b backend app
grep -q "expected HOST:PORT" "$T/err" || fail "usage error message: $(cat "$T/err")"
# an open download on edge2 finishes after edge2 is deleted; new connections are refused
curl -sS --fail --resolve "localhost:$FP2:127.0.0.1" --cacert "$T/edge.crt" --limit-rate 2M \
  "https://localhost:$FP2/bytes/4000000/9" -o "$T/drain.bin" & DRAIN=$!
sleep 0.5
ctl frontend del edge2 || fail "frontend del"
if curl -sS --connect-timeout 1 --resolve "localhost:$FP2:127.0.0.1" --cacert "$T/edge.crt" "https://localhost:$FP2/" -o /dev/null 2>/dev/null; then
  fail "a deleted frontend still accepts"
fi
wait $DRAIN || fail "the download on the deleted frontend was cut"
gen_file 4000000 9 "$T/want9.bin"
cmp -s "$T/drain.bin" "$T/want9.bin" || fail "the download on the deleted frontend is corrupt"
wait $SLOW || fail "the slow download failed"
gen_file 20000000 5 "$T/want5.bin"
cmp -s "$T/slow.bin" "$T/want5.bin" || fail "slow download corrupt"

# ---- nic-offload prefer: shown, carried, and on a kernel without kTLS "not applicable" per connection --
FP4=$(free_port)
ctl frontend add nicfe listen "127.0.0.1:$FP4" cert "$T/edge.crt" key "$T/edge.key" backend app nic-offload prefer ||
  fail "frontend add with nic-offload prefer"
[ "$(ctl -j frontend show nicfe | json 'd[0]["nic_offload"]')" = prefer ] || fail "frontend show -j: nic_offload"
[ "$(ctl -j frontend show edge | json 'd[0]["nic_offload"]')" = off ] || fail "frontend show -j: nic_offload default"
ctl frontend show nicfe | grep -q ' nic-offload prefer$' || { ctl frontend show nicfe; fail "frontend show: nic-offload"; }
expect_exit 2 ctl frontend add nicx listen "127.0.0.1:$(free_port)" cert "$T/edge.crt" key "$T/edge.key" backend app nic-offload require
grep -q "'require' is not one of off|prefer" "$T/err" || fail "nic-offload require: $(cat "$T/err")"
curl -sS --fail --resolve "localhost:$FP4:127.0.0.1" --cacert "$T/edge.crt" --limit-rate 300K \
  "https://localhost:$FP4/bytes/3000000/4" -o "$T/nic.bin" & NICDL=$!
sleep 1
ctl -j conn show frontend nicfe >"$T/nic.json"
ctl conn show frontend nicfe >"$T/nic.txt"
json 'len(d) == 1 and d[0]["nic_offload"] == "not applicable: no kTLS for this connection" and d[0]["version"] == "TLSv1.3"' <"$T/nic.json" |
  grep -qx true || { cat "$T/nic.json"; fail "conn show: the nic-offload decision"; }
grep -q ' nic="not applicable: no kTLS for this connection"$' "$T/nic.txt" || { cat "$T/nic.txt"; fail "conn show text: nic"; }
[ "$(ctl -j conn show frontend edge | json 'all(c["nic_offload"] == "" for c in d)')" = true ] || fail "nic-offload off reports nothing"
wait $NICDL || fail "download through the nic-offload frontend failed"
gen_file 3000000 4 "$T/want4.bin"
cmp -s "$T/nic.bin" "$T/want4.bin" || fail "download through the nic-offload frontend corrupt"
expect_log "close frontend=nicfe .* nic=\"not applicable: no kTLS for this connection\""
ctl -j stats | json 'd["daemon"]["nic_not_applicable"] >= 1 and d["daemon"]["nic_preferred"] == 0 and d["daemon"]["ktls_tx_sw"] == 0 and d["daemon"]["ktls_tx_hw"] == 0' |
  grep -qx true || { ctl stats; fail "stats: nic and ktls counters"; }

# ---- backends and servers: add, drain, enable, del ------------------------------------------------
BP2=$(free_port); start_backend "$BP2"
expect_exit 1 ctl server add nope "127.0.0.1:$BP2"
grep -q "no backend 'nope'" "$T/err" || fail "server add to a missing backend: $(cat "$T/err")"
ctl server add app "127.0.0.1:$BP2" || fail "server add"
ctl server drain app "127.0.0.1:$BP" || fail "server drain"
[ "$(ctl -j backend show app | json '[s["drained"] for s in d[0]["servers"]]')" = "[True, False]" ] || fail "backend show: drained flags"
: >"$T/tlsoffd.log.mark"; before=$(wc -l <"$T/tlsoffd.log")
for i in 1 2 3 4; do check_download "$URL" 1000 $i "${CURL[@]}"; done
sleep 0.3
n=$(tail -n +$((before + 1)) "$T/tlsoffd.log" | grep -c " close .*server=127.0.0.1:$BP2 " || true)
m=$(tail -n +$((before + 1)) "$T/tlsoffd.log" | grep -c " close .*server=127.0.0.1:$BP " || true)
[ "$n" -eq 4 ] && [ "$m" -eq 0 ] || fail "drained server: $m new connections (want 0), the other $n (want 4)"
ctl server drain app "127.0.0.1:$BP2"
curl -sS -o /dev/null "${CURL[@]}" "$URL/" 2>/dev/null && fail "a request succeeded with every server drained"
expect_log "backend app: every server is drained"
ctl server enable app "127.0.0.1:$BP" || fail "server enable"
ctl server enable app "127.0.0.1:$BP2"
check_download "$URL" 1000 7 "${CURL[@]}"
ctl server del app "127.0.0.1:$BP2" || fail "server del"
expect_exit 1 ctl server del app "127.0.0.1:$BP"
grep -q "last server of backend 'app'" "$T/err" || fail "deleting the last server: $(cat "$T/err")"
# max-conns counts across configuration generations: a control change must not let a full frontend take more
MP=$(free_port)
ctl frontend add capped listen "127.0.0.1:$MP" cert "$T/edge.crt" key "$T/edge.key" backend app max-conns 2
mkfifo "$T/cap.in"
"$B/tests/bin/tls_client" "127.0.0.1:$MP" hold 2 <"$T/cap.in" >"$T/cap.out" 2>&1 & PIDS+=($!); CAP=$!
exec 8>"$T/cap.in"
for _ in $(seq 50); do grep -q '^held 2' "$T/cap.out" && break; sleep 0.1; done
grep -q '^held 2' "$T/cap.out" || fail "could not hold 2 connections on the capped frontend"
ctl server add app "127.0.0.1:$BP2" && ctl server del app "127.0.0.1:$BP2" || fail "server add/del"   # two new generations
curl -sS --max-time 5 --resolve "localhost:$MP:127.0.0.1" --cacert "$T/edge.crt" "https://localhost:$MP/" -o /dev/null 2>/dev/null &&
  fail "max-conns 2 let a third connection in after a configuration change"
expect_log "frontend capped: refused a connection: max-conns 2 reached"
kill $CAP; exec 8>&-
ctl frontend del capped

ctl backend add spare server "127.0.0.1:$BP2" balance leastconn proxy-protocol v2 connect-timeout 700 || fail "backend add"
[ "$(ctl -j backend show spare | json 'd[0]["balance"] + " " + d[0]["proxy_protocol"] + " " + str(d[0]["connect_timeout_ms"])')" = "leastconn v2 700" ] ||
  fail "backend show spare"
expect_exit 1 ctl backend del app
grep -q "is used by frontend 'edge'" "$T/err" || fail "deleting a used backend: $(cat "$T/err")"
ctl backend del spare || fail "backend del"
expect_exit 1 ctl backend show spare

# ---- certificates: add for a second name, show, rotate with established connections untouched ----------
make_cert other other.test
ctl cert add edge cert "$T/other.crt" key "$T/other.key" || fail "cert add"
ctl -j cert show edge >"$T/certs.json"
[ "$(json '[c["names"] for c in d]' <"$T/certs.json")" = "[['localhost'], ['other.test']]" ] || { cat "$T/certs.json"; fail "cert show names"; }
json 'd[0]["default"] and not d[1]["default"] and d[1]["not_after_epoch"] > 0' <"$T/certs.json" | grep -qx true || fail "cert show default/expiry"
subject() { echo | timeout 10 openssl s_client -connect "127.0.0.1:$FP" -servername "$1" 2>/dev/null | openssl x509 -noout -subject -serial; }
subject other.test | grep -q "CN *= *other.test" || fail "SNI other.test did not get the added certificate"
# rotation: a new certificate for the same name, while a download runs on the old one
old_serial=$(subject other.test | grep serial)
curl -sS --fail --resolve "other.test:$FP:127.0.0.1" -k --limit-rate 2M "https://other.test:$FP/bytes/4000000/11" -o "$T/rot.bin" & ROT=$!
sleep 0.5
cp "$T/other.crt" "$T/other-old.crt"
make_cert other2 other.test
ctl cert replace edge cert "$T/other2.crt" key "$T/other2.key" || fail "cert replace (matched by name)"
new_serial=$(subject other.test | grep serial)
[ "$new_serial" != "$old_serial" ] || fail "new handshakes still get the old certificate"
[ "$new_serial" = "$(openssl x509 -in "$T/other2.crt" -noout -serial)" ] || fail "new handshakes do not get the replacement"
wait $ROT || fail "a download on the old certificate was cut by the rotation"
gen_file 4000000 11 "$T/want11.bin"; cmp -s "$T/rot.bin" "$T/want11.bin" || fail "download across the rotation corrupt"
make_cert stranger nobody.test
expect_exit 1 ctl cert replace edge cert "$T/stranger.crt" key "$T/stranger.key"
grep -q "no certificate of 'edge' serves nobody.test" "$T/err" || fail "replace without a match: $(cat "$T/err")"
expect_exit 1 ctl cert del edge "$T/edge.crt.nope"
ctl cert del edge "$T/other2.crt" || fail "cert del"
expect_exit 1 ctl cert del edge "$T/edge.crt"
grep -q "last certificate" "$T/err" || fail "deleting the last certificate: $(cat "$T/err")"

# ---- stats, offload ------------------------------------------------------------------------------------
ctl -j stats | json 'd["daemon"]["accepted"] > 5 and d["daemon"]["userspace"] > 5' | grep -qx true || fail "stats -j"
ctl stats | grep -q '^  accepted ' || fail "stats text"
ctl -j offload show >"$T/offload.json" || fail "offload show"
json '[l for l in d if l["dev"] == "lo"][0]["features"]["tls-hw-tx-offload"]["hw"]' <"$T/offload.json" | grep -qx false ||
  { cat "$T/offload.json"; fail "offload show: lo"; }
ctl offload show dev lo | grep -q 'tls-hw-rx-offload' || fail "offload show dev lo"
expect_exit 1 ctl offload show dev nosuchdev0
expect_exit 1 ctl offload set dev lo tls-hw-tx on
grep -qi "lo" "$T/err" || fail "offload set on lo: $(cat "$T/err")"
expect_exit 2 ctl offload set dev lo tls-hw-tx maybe

# ---- usage and help ----------------------------------------------------------------------------------
expect_exit 0 ctl --help
expect_exit 0 ctl frontend help
grep -q "frontend add NAME listen" "$T/out" || fail "frontend help"
expect_exit 2 ctl bogus
expect_exit 2 ctl frontend frobnicate
expect_exit 1 "$B/tlsoffctl" -s "$T/nothing-here" status
grep -q "cannot reach tlsoffd" "$T/err" || fail "unreachable daemon message: $(cat "$T/err")"

# ---- -batch: stops at the first refused line with FILE:LINE, -force goes on ------------------------------
cat >"$T/batch.txt" <<EOF
# comment
backend add b1 server 127.0.0.1:$BP
backend add b1 server 127.0.0.1:$BP
backend add b2 server 127.0.0.1:$BP
EOF
expect_exit 1 ctl -batch "$T/batch.txt"
grep -q "batch.txt:3: backend 'b1' already exists" "$T/err" || fail "batch error: $(cat "$T/err")"
ctl -j backend show | json '[b["name"] for b in d]' | grep -q "'b2'" && fail "batch went on after a refused line"
expect_exit 1 ctl -force -batch "$T/batch.txt"
ctl -j backend show | json '[b["name"] for b in d]' | grep -q "'b2'" || fail "-force did not go on"

# back to back: 40 changes in one batch, each a new configuration generation, none refused
for i in $(seq 20); do echo "server add b2 127.0.0.1:$((40000 + i))"; echo "server del b2 127.0.0.1:$((40000 + i))"; done >"$T/many.txt"
ctl -batch "$T/many.txt" || fail "40 back-to-back changes: $(tail -n 3 "$T/tlsoffd.log")"

# ---- config dump: restart with it, dump again: identical ---------------------------------------------
ctl server drain b2 "127.0.0.1:$BP"
ctl cert add edge cert "$T/other.crt" key "$T/other.key"
ctl config dump >"$T/dump1.conf" || fail "config dump"
grep -q "^server drain b2 127.0.0.1:$BP$" "$T/dump1.conf" || { cat "$T/dump1.conf"; fail "dump lacks the drained server"; }
ctl -j config dump | json 'len(d) >= 3' | grep -qx true || fail "config dump -j"
kill $HOLD 2>/dev/null || true; exec 7>&-
kill -TERM "$TLSOFFD_PID"; wait "$TLSOFFD_PID" || fail "tlsoffd did not stop cleanly"
[ ! -e "$CTL" ] || fail "control socket left behind after exit"
start_tlsoffd "$T/dump1.conf" "$FP"
ctl config dump >"$T/dump2.conf"
diff "$T/dump1.conf" "$T/dump2.conf" || fail "config dump does not round-trip"
check_download "$URL" 1000 1 "${CURL[@]}"

# ---- SIGHUP and the control socket: the file wins, the log says what was discarded -------------------
FP3=$(free_port)
ctl frontend add edge3 listen "127.0.0.1:$FP3" cert "$T/edge.crt" key "$T/edge.key" backend app
kill -HUP "$TLSOFFD_PID"
expect_log "change\(s\) made over the control socket since the last load were discarded"
ctl -j frontend show | json '[f["name"] for f in d]' | grep -q edge3 && fail "SIGHUP kept a frontend that is not in the file"
ctl config dump | diff - "$T/dump2.conf" || fail "after SIGHUP the running configuration is not the file's"

# ---- garbage on the control socket: only that client suffers -------------------------------------------
python3 - "$CTL" <<'PY' || fail "control socket garbage test"
import socket, struct, sys
path = sys.argv[1]
def talk(payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); s.sendall(payload)
    s.settimeout(5); data = b""
    try:
        while len(data) < 20 or len(data) < struct.unpack("=I", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
    except socket.timeout:
        pass
    s.close(); return data
def err_of(reply):
    ln, typ, flags, seq, pid, err = struct.unpack("=IHHIIi", reply[:20])
    assert typ == 2, "expected NLMSG_ERROR, got type %d" % typ
    return err, reply
def attr(t, data):
    l = 4 + len(data); return struct.pack("=HH", l, t) + data + b"\0" * ((4 - l % 4) % 4)
def msg(typ, attrs, version=1, flags=0x5):
    body = struct.pack("=B3x", version) + attrs
    return struct.pack("=IHHII", 16 + len(body), typ, flags, 7, 0) + body
STATUS_GET = 0x10 + 18
err, r = err_of(talk(b"\xff" * 64))                       # a length no message can have
assert err == -71 and b"bad message length" in r, (err, r)  # EPROTO
err, r = err_of(talk(msg(STATUS_GET, b"", version=9)))
assert err == -93 and b"version 9" in r, (err, r)          # EPROTONOSUPPORT
err, r = err_of(talk(msg(STATUS_GET, attr(99, b"x\0"))))
assert err == -22 and b"unknown attribute 99" in r, (err, r)
err, r = err_of(talk(msg(0x10 + 1, attr(2, attr(1, b"noterminator")))))   # FRONTEND_ADD, FE_NAME unterminated
assert err == -22 and b"bad string" in r, (err, r)
err, r = err_of(talk(msg(0x7fff, b"")))
assert err == -95 and b"unknown request type" in r, (err, r)
talk(b"\x10\x00")                                          # half a header, then hang up
PY
ctl status >/dev/null || fail "the daemon stopped answering after garbage"
check_download "$URL" 100000 3 "${CURL[@]}"
log "tlsoffctl: every command end to end, JSON, exit codes, batch, dump round trip, SIGHUP, bad input"
