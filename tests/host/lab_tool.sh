#!/usr/bin/env bash
# sanitize: skip (QEMU guests: the lab tool itself, no daemon of ours to sanitize)
# The lab tool itself (scripts/ktls-lab): kernels boot, kTLS is there where it should be, and COMMAND's
# stdout/stderr/exit status, cwd, environment and --share behave. Seven guest boots (TCG, ~8-20 s each on
# an idle 2-core machine); the first run also fetches the four kernels (~50-110 MB each, see docs/lab.md).
# timeout: 1500
. "$(dirname "$0")/../lib.sh"
need qemu-system-x86_64 busybox cpio depmod modprobe apt-get
LAB="$ROOT/scripts/ktls-lab"

# lab KERNEL [ktls-lab options] -- COMMAND...: run it, stdout -> $T/out, stderr -> $T/err, status -> $rc
lab() {
  local k=$1 t0; shift
  t0=$(date +%s.%N)
  rc=0; "$LAB" --kernel "$k" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
  log "kernel $k: exit $rc in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s: ${*: -1}"
}
show() { echo "--- stdout"; head -c 2000 "$T/out"; echo "--- stderr"; tail -n 40 "$T/err"; }
expect_rc() { [ "$rc" -eq "$1" ] || { show; fail "$2: exit $rc, want $1"; }; }

# Fetch first, so the download time is not counted as boot time (and --fetch-only prints nothing on stdout).
for k in 6.1 latest 6.12 5.10; do
  out=$("$LAB" --kernel "$k" --fetch-only 2>"$T/fetch.err") || { cat "$T/fetch.err"; fail "fetch $k"; }
  [ -z "$out" ] || fail "--fetch-only printed on stdout: $out"
done

# --- one 6.1 guest for most of the plumbing ---------------------------------------------------------
mkdir -p "$T/work" "$T/share"
head -c 200000 /dev/urandom >"$T/work/blob"
echo host-made >"$T/work/host-file"
weird=$'spaces  and\ttab, "quotes" \'single\' $dollar `tick` \\ back\nnew line; é'
cat >"$T/work/check.sh" <<'EOF'
# runs in the guest: $1 = what LAB_TOOL_VAR must be, $2 = the share dir
set -u
bad() { echo "CHECK FAILED: $*" >&2; exit 1; }
[ "$(pwd)" = "$EXPECT_CWD" ] || bad "cwd $(pwd), want $EXPECT_CWD"
[ "$(cat host-file)" = host-made ] || bad "cwd is not the host's directory"
[ "${LAB_TOOL_VAR-unset}" = "$1" ] || bad "LAB_TOOL_VAR=[${LAB_TOOL_VAR-unset}]"
[ "$(id -u)" = 0 ] || bad "not root"
case "$(uname -r)" in 6.1.*) ;; *) bad "kernel $(uname -r)" ;; esac
echo probe >/tmp/lab-probe && [ "$(cat /tmp/lab-probe)" = probe ] || bad "/tmp not writable"
touch /usr/lab-probe 2>/dev/null && bad "the root is writable"
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp || bad "no tls ULP"
[ -e /proc/net/tls_stat ] || bad "no /proc/net/tls_stat"
grep -q '^tls ' /proc/modules || bad "tls module not loaded"
grep -q '^aesni_intel ' /proc/modules || bad "aesni-intel not loaded"
ip link show lo | grep 'UP' >/dev/null || bad "lo is down"
mountpoint -q /sys/fs/bpf || bad "no bpffs"
echo "from the guest $(uname -r)" >"$2/from-guest"
echo lab-stderr-marker >&2
cat blob
/usr/bin/printf 'tail\0\r\n'
exit 7
EOF
export LAB_TOOL_VAR="$weird" EXPECT_CWD="$T/work"
cd "$T/work"
lab 6.1 --share "$T" -- /bin/bash "$T/work/check.sh" "$weird" "$T/share"
cd "$T"
expect_rc 7 "6.1 plumbing guest"
{ cat "$T/work/blob"; printf 'tail\0\r\n'; } >"$T/want"
cmp -s "$T/want" "$T/out" || { show | tail -n 40; fail "stdout is not byte-exact ($(wc -c <"$T/out") bytes, want $(wc -c <"$T/want"))"; }
grep -qx lab-stderr-marker "$T/err" || { show; fail "stderr did not come back"; }
grep -q 'CHECK FAILED' "$T/err" && { show; fail "guest check failed"; }
grep -q '^from the guest 6\.1\.' "$T/share/from-guest" || fail "write to --share not visible on the host"
log "6.1 plumbing ok: exit 7, $(wc -c <"$T/out") bytes byte-exact, stderr separate, cwd/env/share/tmp ok"

# --- kTLS per kernel: 6.1, 6.12, latest have it; 5.10 (no CONFIG_TLS) boots but has none -------------
# latest: a real TLS_TX setsockopt after `rmmod aesni_intel gcm` (aesni-intel provides gcm(aes) itself), so
# gcm(aes) has to come back through request_module() and the lab's modprobe helper; then the same for
# sch_netem through tc.
cat >"$T/work/tls_tx.py" <<'EOF'
import socket, struct
SOL_TLS, TLS_TX, TCP_ULP = 282, 1, 31
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
cli = socket.create_connection(srv.getsockname()); peer, _ = srv.accept()
cli.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
# struct tls12_crypto_info_aes_gcm_128: TLS 1.2, cipher 51, iv[8], key[16], salt[4], rec_seq[8]
cli.setsockopt(SOL_TLS, TLS_TX, struct.pack("=HH8s16s4s8s", 0x0303, 51, b"\1" * 8, b"\2" * 16, b"\3" * 4, bytes(8)))
cli.sendall(b"hello kTLS")
rec = peer.recv(100)
assert rec[:3] == b"\x17\x03\x03" and len(rec) == 5 + 8 + 10 + 16, rec   # one TLS 1.2 AES-GCM record
print("ktls-tx-ok")
EOF
cat >"$T/work/latest.sh" <<'EOF'
set -eu
uname -r
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp
test -e /proc/net/tls_stat
grep -q '^tls ' /proc/modules
rmmod aesni_intel gcm
/usr/bin/python3 tls_tx.py
grep -q '^gcm ' /proc/modules
awk '$1 == "TlsTxSw" { v = $2 } END { exit v != 1 }' /proc/net/tls_stat
rmmod sch_netem
tc qdisc add dev lo root netem delay 1ms
grep -q '^sch_netem ' /proc/modules
echo autoload-ok
EOF
cd "$T/work"
lab latest --share "$T" -- sh "$T/work/latest.sh"
cd "$T"
expect_rc 0 "latest: tls ULP, tls_stat, TLS_TX after rmmod aesni_intel gcm, netem autoload"
grep -q '^ktls-tx-ok$' "$T/out" && grep -q '^autoload-ok$' "$T/out" || { show; fail "latest: kTLS TX / module autoload"; }
log "latest ($(head -n1 "$T/out")): tls ULP, /proc/net/tls_stat, TLS_TX with gcm(aes) autoloaded, netem autoloaded"

lab 6.12 -- grep -w tls /proc/sys/net/ipv4/tcp_available_ulp
expect_rc 0 "6.12: tls ULP"

lab 5.10 -- sh -c 'uname -r; grep -w tls /proc/sys/net/ipv4/tcp_available_ulp'
expect_rc 1 "5.10 must boot, run the command and have no tls ULP"
grep -q '^5\.10\.' "$T/out" || { show; fail "5.10 did not run the command"; }

# --- exit status, timeout, crash ---------------------------------------------------------------------
lab 6.1 -- false
expect_rc 1 "6.1: false"

lab 6.1 --timeout 20 -- sleep 600
expect_rc 124 "6.1: a hanging guest and --timeout 20"
grep -q 'timeout' "$T/err" && grep -q 'guest console' "$T/err" || { show; fail "no timeout message and console tail"; }
[ ! -s "$T/out" ] || { show; fail "stdout not empty after a timeout"; }

lab 6.1 -- sh -c 'echo before-crash; echo c >/proc/sysrq-trigger; sleep 5; echo survived'
expect_rc 125 "6.1: a guest that panics"
[ "$(cat "$T/out")" = before-crash ] || { show; fail "stdout around a crash"; }
grep -q 'guest console' "$T/err" && grep -q 'sysrq' "$T/err" || { show; fail "no console tail after a crash"; }
log "exit status, timeout (124) and crash (125) ok"
