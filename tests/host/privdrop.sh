#!/usr/bin/env bash
# timeout: 90
# The privilege drop (`user nobody group nogroup` in the file): once set up, tlsoffd runs as nobody with
# CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_BPF only (uid, gid and every capability set checked in
# /proc/PID/status), non-dumpable, and still does all it did as root: TLS and plain (sockmap) traffic
# (sha256), a SIGHUP reload that replaces the certificate (read as nobody), tlsoffctl (status, conn show,
# config dump, frontend add on a port below 1024 and on a high one, metrics listen). A key nobody cannot
# read fails the reload with the reason, and the running configuration stays. A SIGUSR2 upgrade starts the
# new process as nobody (ambient capabilities) and it takes the sockets over.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
need curl openssl setpriv
[ "$(id -u)" = 0 ] || skip "needs root (to start as root and drop to nobody)"
{ id nobody && getent group nogroup; } >/dev/null 2>&1 || skip "no user nobody / group nogroup"

# What the daemon reads after the drop must be readable by nobody: the directory, and the key by its group.
chmod 711 "$T"
make_cert one localhost
make_cert two localhost
for c in one two; do chmod 644 "$T/$c.crt"; chgrp nogroup "$T/$c.key"; chmod 640 "$T/$c.key"; done
BP=$(free_port); FP=$(free_port); PP=$(free_port); HP=$(free_port); MP=$(free_port)
LOW=$(for p in $(seq 900 1000); do ss -Htln "sport = :$p" | grep -q . || { echo "$p"; break; }; done)
[ -n "$LOW" ] || fail "no free port below 1024"
conf() {
  cat >"$T/tlsoff.conf" <<CONF
user nobody group nogroup
backend add app server 127.0.0.1:$BP
frontend add edge listen 127.0.0.1:$FP cert $T/$1.crt key $T/$1.key backend app
frontend add pl listen 127.0.0.1:$PP plain backend app
CONF
}
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
served() {
  openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null >"$T/served.pem" || true
  openssl x509 -noout -fingerprint -sha256 -in "$T/served.pem" | cut -d= -f2
}
conf one
start_backend "$BP"
start_tlsoffd "$T/tlsoff.conf" "$FP" --workers 2
PID=$TLSOFFD_PID
expect_log 'privileges: running as user nobody \(uid 65534\) group nogroup \(gid 65534\) with cap_net_bind_service,cap_net_admin,cap_bpf only'

log "nobody, three capabilities, non-dumpable"
caps=$(awk '/^(Uid|Gid):/ { print $1, $2, $3, $4, $5 } /^(Groups|Cap(Inh|Prm|Eff|Bnd|Amb)):/ { print $1, $2 }' "/proc/$PID/status" | tr '\n' ' ')
want="Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: 65534 CapInh: 0000008000001400 CapPrm: 0000008000001400 CapEff: 0000008000001400 CapBnd: 0000008000001400 CapAmb: 0000008000001400 "
[ "$caps" = "$want" ] || fail "tlsoffd's ids and capabilities: '$caps', want '$want'"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$PID/status" || fail "no_new_privs is not set"
[ "$(stat -c %u "/proc/$PID/environ")" = 0 ] || fail "tlsoffd is dumpable: its /proc files are not root's"
if setpriv --reuid=65534 --regid=65534 --clear-groups cat "/proc/$PID/environ" >/dev/null 2>&1; then
  fail "user nobody can read tlsoffd's /proc/$PID/environ (PR_SET_DUMPABLE 0 missing)"
fi

log "traffic as nobody: TLS both ways, and a plain frontend through the sockmap"
check_download "https://127.0.0.1:$FP" 2000000 31
head -c 1500000 /dev/urandom >"$T/up"
check_upload "https://127.0.0.1:$FP" "$T/up"
got=$(curl -sS --fail "http://127.0.0.1:$PP/bytes/1000000/32" | sha256sum | cut -d' ' -f1)
[ "$got" = "$("$B/tests/bin/http_backend" --gen 1000000 32 | sha256sum | cut -d' ' -f1)" ] || fail "plain frontend: sha256 differs"
expect_log 'close frontend=pl .*datapath=sockmap'

log "tlsoffctl against the daemon as nobody"
ctl status >"$T/status" || fail "tlsoffctl status"
grep -q 'bpf sockmap: yes' "$T/status" || { cat "$T/status"; fail "status: sockmap not usable as nobody"; }
ctl config dump >"$T/dump" || fail "config dump"
grep -qx 'user nobody group nogroup' "$T/dump" || { cat "$T/dump"; fail "config dump lacks the user line"; }
ctl conn show >/dev/null || fail "conn show"
ctl frontend add low listen "127.0.0.1:$LOW" cert "$T/one.crt" key "$T/one.key" backend app ||
  fail "frontend add on port $LOW (CAP_NET_BIND_SERVICE)"
ctl frontend add high listen "127.0.0.1:$HP" cert "$T/one.crt" key "$T/one.key" backend app || fail "frontend add"
wait_port "$LOW"; wait_port "$HP"
check_download "https://127.0.0.1:$LOW" 300000 33
check_download "https://127.0.0.1:$HP" 300000 34
ctl metrics listen "127.0.0.1:$MP" || fail "metrics listen"
curl -sS --fail "http://127.0.0.1:$MP/metrics" >"$T/metrics" || fail "GET /metrics"
grep -q '^tlsoff_' "$T/metrics" || fail "no tlsoff_ metrics"
# -batch replays a dump: its user line is accepted and changes nothing
grep '^user ' "$T/dump" >"$T/user.batch"
ctl -batch "$T/user.batch" 2>"$T/batch.err" || { cat "$T/batch.err"; fail "-batch of the dump's user line"; }
grep -q 'user nobody: not changed' "$T/batch.err" || fail "-batch did not say that the user is not changed"

log "reload as nobody: the new certificate is read and served"
conf two
kill -HUP "$PID"; reloaded 1
expect_log 'reload: configuration generation'
[ "$(served "$FP")" = "$(fp "$T/two.crt")" ] || fail "the reload did not serve the new certificate"
check_download "https://127.0.0.1:$FP" 300000 35

log "a key nobody cannot read: the reload fails with the reason, the daemon serves on"
conf one
chmod 600 "$T/one.key"
kill -HUP "$PID"; reloaded 2
expect_log "reload: .*one.key.*running configuration unchanged"
grep "reload: .*one.key" "$T/tlsoffd.log" | tail -n1
[ "$(served "$FP")" = "$(fp "$T/two.crt")" ] || fail "a failed reload changed the certificate"
check_download "https://127.0.0.1:$FP" 300000 36
kill -0 "$PID" || fail "tlsoffd died"

log "upgrade (SIGUSR2): the new process starts as nobody and takes the sockets over"
chmod 640 "$T/one.key"   # the new process loads the file as nobody
kill -USR2 "$PID"
for _ in $(seq 100); do grep -q 'takeover: tlsoffd pid [0-9]* serves on our sockets now' "$T/tlsoffd.log" && break; sleep 0.1; done
NEW=$(sed -n 's/.*takeover: tlsoffd pid \([0-9]*\) serves on our sockets now.*/\1/p' "$T/tlsoffd.log")
[ -n "$NEW" ] || { tail -n 20 "$T/tlsoffd.log"; fail "no takeover after SIGUSR2"; }
PIDS+=("$NEW")
caps=$(awk '/^(Uid|Gid):/ { print $1, $2, $3, $4, $5 } /^(Groups|Cap(Inh|Prm|Eff|Bnd|Amb)):/ { print $1, $2 }' "/proc/$NEW/status" | tr '\n' ' ')
[ "$caps" = "$want" ] || fail "the upgraded tlsoffd's ids and capabilities: '$caps', want '$want'"
[ "$(stat -c %u "/proc/$NEW/environ")" = 0 ] || fail "the upgraded tlsoffd is dumpable"
check_download "https://127.0.0.1:$FP" 300000 37
ctl status >/dev/null || fail "tlsoffctl against the upgraded daemon"

log "a user that does not exist fails the start, and --check says so"
printf 'user no-such-user-tlsoff\nbackend add app server 127.0.0.1:%s\n' "$BP" >"$T/bad.conf"
if "$B/tlsoffd" -f "$T/bad.conf" --check >"$T/bad.out" 2>&1; then fail "--check accepted a missing user"; fi
grep -q 'user no-such-user-tlsoff: no such user' "$T/bad.out" || { cat "$T/bad.out"; fail "no reason for the missing user"; }
log ok
