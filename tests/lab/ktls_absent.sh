#!/usr/bin/env bash
# kTLS present or absent, the engine must tell — from the kernel itself, not from version numbers.
#   5.10 (Debian bullseye, built without CONFIG_TLS): the probe reports kTLS unavailable with the ENOENT
#        reason, and ktls_install after a real handshake fails with that same reason.
#   6.1, 6.12, latest: the probe reports the ULP, TX and RX for TLS 1.2 and 1.3 with AES-128-GCM,
#        AES-256-GCM and ChaCha20-Poly1305; TLS 1.3 rekey only on latest (7.x: 6.14+); and
#        ktls_install then installs TX+RX for every version, cipher and side, with real bytes crossing
#        the kernel both ways (sha256 on both ends).
# timeout: 420
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
need python3
K=${TLSOFF_LAB_KERNEL:?runs inside the lab (scripts/run-tests --only lab)}
reason="kernel has no TLS ULP (CONFIG_TLS not built / tls module missing)"
[ -x "$B/tlsoffd" ] && [ -x "$B/tests/bin/ktls_install_check" ] || fail "build first (make all)"

log "kernel $(uname -r) (lab $K)"
"$B/tlsoffd" --probe >"$T/probe.txt" || fail "tlsoffd --probe exited $?"
cat "$T/probe.txt"
"$B/tlsoffd" --probe -j >"$T/probe.json" || fail "tlsoffd --probe -j exited $?"
cat "$T/probe.json"

if [ "$K" = 5.10 ]; then
  grep -qxF "kernel $(uname -r): kTLS unavailable: $reason" "$T/probe.txt" || fail "5.10: absence not reported"
  python3 - "$T/probe.json" "$reason" <<'PY' || fail "5.10: probe JSON wrong"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ulp"] is False and j["ulp_errno"] == 2 and j["why"] == sys.argv[2], j
PY
  for args in "--tls 1.2" "--tls 1.3" "--tls 1.3 --side client"; do
    rc=0; "$B/tests/bin/ktls_install_check" $args >"$T/i.out" 2>"$T/i.err" || rc=$?
    cat "$T/i.out"
    [ "$rc" -eq 3 ] || { cat "$T/i.err"; fail "5.10: ktls_install_check $args exited $rc, want 3"; }
    grep -qxF "install: FAILED errno=2: $reason" "$T/i.out" || fail "5.10: install reason differs from the probe's"
  done
  log "pass: absence detected and reported the same way by probe and install"
  exit 0
fi

case "$K" in
  latest) want_rekey=True ;;
  6.1|6.12) want_rekey=False ;;
  *) skip "no expectation written for lab kernel $K" ;;
esac
python3 - "$T/probe.json" "$want_rekey" <<'PY' || fail "probe does not report the kTLS this kernel has"
import json, sys
j = json.load(open(sys.argv[1]))
bad = []
if j["ulp"] is not True: bad.append("ulp")
for v in ("tls1.2", "tls1.3"):
    for c in ("AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"):
        for d in ("tx", "rx"):
            if j[v][c][d] is not True:
                bad.append(f"{v} {c} {d} (errno {j[v][c][d + '_errno']})")
if j["rekey"] is not (sys.argv[2] == "True"):
    bad.append(f"rekey={j['rekey']} (errno {j['rekey_errno']}), want {sys.argv[2]}")
assert not bad, bad
PY

n=0
for side in server client; do
  for c in "1.2 ECDHE-ECDSA-AES128-GCM-SHA256" "1.2 ECDHE-ECDSA-AES256-GCM-SHA384" \
           "1.2 ECDHE-ECDSA-CHACHA20-POLY1305" "1.3 TLS_AES_128_GCM_SHA256" \
           "1.3 TLS_AES_256_GCM_SHA384" "1.3 TLS_CHACHA20_POLY1305_SHA256"; do
    set -- $c
    rc=0
    "$B/tests/bin/ktls_install_check" --tls "$1" --cipher "$2" --side "$side" --bytes 65536 \
      >"$T/i.out" 2>"$T/i.err" || rc=$?
    cat "$T/i.out"
    [ "$rc" -eq 0 ] || { cat "$T/i.err"; fail "TLS $1 $2 kTLS on the $side: ktls_install_check exited $rc"; }
    grep -q '^install: ok TX+RX$' "$T/i.out" || fail "TLS $1 $2 $side: not TX+RX"
    [ "$(grep -c ': match (65536 bytes via kernel' "$T/i.out")" -eq 2 ] || fail "TLS $1 $2 $side: bytes did not cross the kernel intact"
    n=$((n + 1))
  done
done
log "pass: probe matches the kernel; $n installs carried verified bytes both ways"
