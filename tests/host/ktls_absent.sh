#!/usr/bin/env bash
# This machine's kernel has no kTLS (TCP_ULP "tls" -> ENOENT). The engine must say so, the same way, in
# the probe (text and JSON) and when it actually tries to install keys after a real handshake.
# timeout: 60
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
need python3

reason="kernel has no TLS ULP (CONFIG_TLS not built / tls module missing)"
[ -x "$B/tlsoffd" ] && [ -x "$B/tests/bin/ktls_install_check" ] || fail "build first (make all)"

# Guard: this test is about a kernel without kTLS. If this machine gained one, say so instead of lying.
"$B/tlsoffd" --probe -j >"$T/probe.json" || fail "tlsoffd --probe -j exited $?"
if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ulp"] else 1)' "$T/probe.json"; then
  skip "this kernel has kTLS; tests/lab/ktls_absent.sh covers both cases"
fi

log "text probe"
"$B/tlsoffd" --probe >"$T/probe.txt" || fail "tlsoffd --probe exited $? (must be 0: the probe itself worked)"
cat "$T/probe.txt"
grep -qxF "kernel $(uname -r): kTLS unavailable: $reason" "$T/probe.txt" || fail "probe text does not report the ENOENT reason"

log "JSON probe"
cat "$T/probe.json"
python3 - "$T/probe.json" "$reason" "$(uname -r)" <<'PY' || fail "probe JSON is wrong"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ulp"] is False, j
assert j["ulp_errno"] == 2, j          # ENOENT
assert j["why"] == sys.argv[2], j["why"]
assert j["kernel"] == sys.argv[3], j["kernel"]
for v in ("tls1.2", "tls1.3"):
    for c in ("AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"):
        assert j[v][c]["tx"] is False and j[v][c]["rx"] is False, (v, c)
assert j["rekey"] is False
PY

log "install after a real handshake, every version/side: same reason, exit 3"
for args in "--tls 1.3" "--tls 1.2" "--tls 1.3 --side client" "--tls 1.2 --side client --dirs rx" \
            "--tls 1.3 --cipher TLS_CHACHA20_POLY1305_SHA256 --dirs tx"; do
  rc=0; "$B/tests/bin/ktls_install_check" $args >"$T/install.out" 2>"$T/install.err" || rc=$?
  cat "$T/install.out"
  [ "$rc" -eq 3 ] || { cat "$T/install.err"; fail "ktls_install_check $args exited $rc, want 3 (install refused)"; }
  grep -q '^handshake: TLSv1' "$T/install.out" || fail "no real handshake happened ($args)"
  grep -qxF "install: FAILED errno=2: $reason" "$T/install.out" || fail "install reason differs from the probe's ($args)"
done

# Not a benchmark: a bound far above its ~10 ms (also under ASan, also on a loaded CI machine) that only a
# probe waiting on something (a module load, a timeout) would cross.
log "the probe does not wait on anything (fd leaks: test_ktls probe_leaves_no_fd)"
python3 - "$B/tlsoffd" <<'PY' || fail "probe too slow"
import subprocess, sys, time
t = time.monotonic()
for _ in range(10):
    subprocess.run([sys.argv[1], "--probe"], check=True, stdout=subprocess.DEVNULL)
per = (time.monotonic() - t) / 10
print(f"# {per * 1000:.1f} ms per probe")
assert per < 1.0, per
PY
log "pass"
