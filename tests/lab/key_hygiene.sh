#!/usr/bin/env bash
# timeout: 180
# Least privilege and key hygiene on the splice (kTLS) datapath. tlsoffd --user nobody: after setup it runs
# as nobody with CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_BPF only, non-dumpable. Real openssl s_client
# peers (one TLS 1.3, one TLS 1.2) log their secrets (-keylogfile) and hold their connections open after a
# transfer; tests/bin/mem_scan then reads all of tlsoffd's writable memory through /proc/PID/mem:
#   - while open: no secret at all, except on kernels that can rekey kTLS (6.14+) the current TLS 1.3
#     application traffic secrets (CLIENT_/SERVER_TRAFFIC_SECRET_0), which KeyUpdate needs, and those only
#     in locked memory (the secure heap) — there they must be found, once each;
#   - after they closed: none at all.
# The bodies' sha256 must match; `tlsoffctl stats` and `conn show` and every close line must say splice +
# kTLS both ways in software (/proc/net/tls_stat and sock_diag still work as nobody, non-dumpable); neither
# the private key nor any secret is in the log.
# The scanner is checked against a process that does hold secrets: one of the s_client peers.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
source "$ROOT/tests/keylog_lib.sh"
need openssl setpriv

[ "${TLSOFF_LAB_KERNEL:-}" = 5.10 ] && skip "no kTLS on 5.10: the userspace datapath keeps OpenSSL's secrets (docs/security.md)"
"$B/tlsoffd" --probe -j >"$T/probe.json"
grep -q '"ulp":true' "$T/probe.json" || skip "this kernel has no kTLS"
grep -q '"rekey":true' "$T/probe.json" && rekey=true || rekey=false
id nobody >/dev/null 2>&1 || skip "no user nobody"

edge_tlsoffd splice --workers 1 --user nobody -l debug
PID=$TLSOFFD_PID
expect_log 'privileges: running as user nobody \(uid 65534\)'

log "[${SECONDS}s] privileges: uid, capabilities, dumpable"
caps=$(awk '/^Uid:/ { print $2, $3, $4, $5 } /^Cap(Eff|Prm|Amb|Bnd):/ { print $1, $2 }' "/proc/$PID/status" | tr '\n' ' ')
want_caps="65534 65534 65534 65534 CapPrm: 0000008000001400 CapEff: 0000008000001400 CapBnd: 0000008000001400 CapAmb: 0000008000001400 "
[ "$caps" = "$want_caps" ] || fail "tlsoffd's uids and capabilities: '$caps', want '$want_caps' (net_bind_service, net_admin, bpf)"
# A non-dumpable process's /proc files belong to root, and its own user cannot read them.
[ "$(stat -c %u "/proc/$PID/environ")" = 0 ] || fail "tlsoffd is dumpable: /proc/$PID/environ is not root's"
if setpriv --reuid=65534 --regid=65534 --clear-groups cat "/proc/$PID/environ" >/dev/null 2>&1; then
  fail "user nobody can read tlsoffd's /proc/$PID/environ"
fi

log "[${SECONDS}s] a TLS 1.3 and a TLS 1.2 connection: a transfer each, then held open"
sc_open 1 -tls1_3 "$FP" 300000 7
sc_open 2 -tls1_2 "$FP" 300000 8
sc_wait 1 300000
sc_wait 2 300000
n13=$(grep -c '^CLIENT_TRAFFIC_SECRET_0 ' "$T/keys.log" || true)
n12=$(grep -c '^CLIENT_RANDOM ' "$T/keys.log" || true)
[ "$n13.$n12" = 1.1 ] || fail "key log: $n13 TLS 1.3 and $n12 TLS 1.2 connections, want 1 and 1"

# As nobody and non-dumpable the daemon still reads /proc/net/tls_stat and sock_diag's kTLS info.
ctl stats >"$T/stats" || fail "tlsoffctl stats"
awk '$1 == "TlsCurrTxSw" && $2 >= 2 { ok = 1 } END { exit !ok }' "$T/stats" || { cat "$T/stats"; fail "stats: TlsCurrTxSw below 2"; }
ctl conn show >"$T/conns" || fail "tlsoffctl conn show"
[ "$(grep -cE ' splice +sw +sw ' "$T/conns" || true)" = 2 ] || { cat "$T/conns"; fail "conn show: want 2 spliced connections, kTLS sw both ways"; }

log "[${SECONDS}s] the scanner finds secrets where they are: in an s_client peer"
"$B/tests/bin/mem_scan" "${SC_PIDS[1]}" "$T/keys.log" >"$T/scan.client"
grep -q '^CLIENT_TRAFFIC_SECRET_0 .* binary ' "$T/scan.client" || { cat "$T/scan.client"; fail "mem_scan did not find the secrets s_client holds"; }

log "[${SECONDS}s] tlsoffd's memory while the connections are open"
"$B/tests/bin/mem_scan" "$PID" "$T/keys.log" >"$T/scan.open"
tail -n1 "$T/scan.open"
if $rekey; then
  # KeyUpdate needs the two current traffic secrets of the open TLS 1.3 connection: in locked memory only.
  bad=$(grep -v '^scanned ' "$T/scan.open" | grep -Ev '^(CLIENT|SERVER)_TRAFFIC_SECRET_0 [0-9a-f]+ binary [0-9a-f]+ locked ' || true)
  # On failure, each thread's stack pointer (the 9th field of /proc/TID/syscall): where a stray copy sits
  # relative to it tells a dead frame from a register save area just below an idle thread's SP.
  [ -z "$bad" ] || { echo "$bad"; for t in /proc/$PID/task/*; do echo "thread ${t##*/}: $(cat "$t/syscall")"; done; fail "secrets beyond the KeyUpdate allowance in tlsoffd's memory while open"; }
  kept=$(grep -cE '^(CLIENT|SERVER)_TRAFFIC_SECRET_0 .* locked ' "$T/scan.open" || true)
  [ "$kept" = 2 ] || { cat "$T/scan.open"; fail "want the 2 TLS 1.3 traffic secrets once each in the secure heap, found $kept"; }
  log "open: only the 2 TLS 1.3 traffic secrets KeyUpdate needs, in locked memory"
else
  grep -v '^scanned ' "$T/scan.open" && fail "secrets in tlsoffd's memory while open (this kernel cannot rekey: none may stay)"
  log "open: no secret (no kTLS rekey on this kernel: nothing kept)"
fi

log "[${SECONDS}s] close them: bodies intact, both spliced with kTLS both ways"
sc_close 1 2
sc_check 1 300000 7
sc_check 2 300000 8
for _ in $(seq 50); do [ "$(grep -c ' close ' "$T/tlsoffd.log" || true)" -ge 2 ] && break; sleep 0.1; done
n=$(grep -cE 'close .*datapath=splice ktls=tx\+rx kmode=tx:sw,rx:sw ' "$T/tlsoffd.log" || true)
[ "$n" = 2 ] || { grep ' close ' "$T/tlsoffd.log"; fail "want 2 spliced kTLS connections (sock_diag modes), got $n"; }

log "[${SECONDS}s] tlsoffd's memory after they closed"
"$B/tests/bin/mem_scan" "$PID" "$T/keys.log" >"$T/scan.closed"
tail -n1 "$T/scan.closed"
grep -v '^scanned ' "$T/scan.closed" && fail "secrets left in tlsoffd's memory after the connections closed"

log "[${SECONDS}s] the log has neither the private key nor any secret"
no_secret_in_log "$T/edge.key" "$T/tlsoffd.log"
kill -0 "$PID" || fail "tlsoffd died"
log "[${SECONDS}s] ok: $(wc -l <"$T/keys.log") key log lines; none where they may not be"
