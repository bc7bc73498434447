#!/usr/bin/env bash
# sockmap_ktls_exclusion — what a real kernel does when a kTLS socket meets a sockmap, both orders, and
# that tlsoff's sockmap splice (plain TCP) works on it.
#
# tlsoff relies on two facts (docs, CVE-2026-93824): (a) a socket with the "tls" ULP cannot join a
# sockmap/sockhash, (b) a socket in a sockmap cannot get TLS_TX/TLS_RX. If a kernel ALLOWS either, that is
# a finding: kTLS + sockmap is the CVE's unsafe combination, and the daemon's assumptions break. The test
# then fails and says so in capitals. Which errno each kernel returns is printed (FINDINGS line) for docs.
# On 5.10 (no CONFIG_TLS) the splice check runs and the rest is skipped.
# FINDING (this test, Debian 7.2.13): a socket spliced by a stream verdict that then gets TCP_ULP "tls"
# (accepted; TLS_TX/RX refused) locks the whole kernel up when it is closed, even after unpair. So the
# b_verdict case runs only on kernels where it was seen to be safe (6.1); elsewhere it is reported NOT RUN.
# timeout: 240
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

bin="$B/tests/bin/ktls_sockmap_probe"
[ -x "$bin" ] || fail "$bin is not built (make all)"
kernel=${TLSOFF_LAB_KERNEL:-}
[ -n "$kernel" ] || skip "TLSOFF_LAB_KERNEL unset: run inside the lab (scripts/run-tests --only lab)"

verdict_arg=""
case "$kernel" in 6.1) verdict_arg=--verdict-then-ktls ;; esac
"$bin" $verdict_arg >"$T/out" 2>"$T/err" || { cat "$T/out" "$T/err"; fail "ktls_sockmap_probe could not run"; }
cat "$T/out"
res() { awk -v c="$1" -v s="$2" '$1 == "PROBE" && $2 == c && $3 == s { print $4; f = 1 } END { if (!f) print "MISSING" }' "$T/out"; }

# sockmap splice itself: bytes and counters, on every kernel.
for s in pair data_a_to_b data_b_to_a counters; do
  [ "$(res splice $s)" = OK ] || fail "sockmap splice does not work on $kernel: step $s = $(res splice $s)"
done
log "kernel $(uname -r): sockmap splice moved 1 MiB each way, sha256 and counters equal"

if grep -q '^NO_KTLS' "$T/out"; then
  [ "$kernel" = 5.10 ] || fail "kernel $kernel should have kTLS but TCP_ULP tls fails ($(res baseline tcp_ulp_tls)): tls module not loaded?"
  skip "kernel $kernel ($(uname -r)) has no kTLS (TCP_ULP \"tls\": $(res baseline tcp_ulp_tls)): nothing to exclude; sockmap splice verified"
fi
for s in tcp_ulp_tls tls_tx tls_rx; do
  [ "$(res baseline $s)" = OK ] || fail "kTLS itself fails on a plain socket ($s: $(res baseline $s)): the probe's results would mean nothing"
done

errs=0
# finding CASE STEP WHAT: the step must have been refused
refused() {
  local r; r=$(res "$1" "$2")
  if [ "$r" = OK ]; then
    echo "!!! FINDING: KERNEL $kernel ($(uname -r)) ALLOWS $3 ($1/$2 succeeded). kTLS + sockmap is NOT excluded here." >&2
    errs=$((errs + 1))
  elif [ "$r" = MISSING ]; then
    echo "probe did not run $1/$2" >&2; errs=$((errs + 1))
  else
    [ "$r" = EINVAL ] || log "note: $1/$2 refused with $r, not EINVAL"
  fi
}
# the set-up step before the one under test must have succeeded, or the case proves nothing
setup_ok() { [ "$(res "$1" "$2")" = OK ] || { echo "$1: set-up step $2 failed ($(res "$1" "$2"))" >&2; errs=$((errs + 1)); }; }

# (a) kTLS first, then the sockmap
for c in a_sockmap a_sockhash a_verdict a_library; do setup_ok $c tcp_ulp_tls; setup_ok $c tls_tx; done
refused a_sockmap sockmap_add "a kTLS (TLS_TX) socket to join a SOCKMAP"
refused a_sockhash sockhash_add "a kTLS (TLS_TX) socket to join a SOCKHASH"
refused a_verdict sockhash_add "a kTLS (TLS_TX) socket to join a SOCKHASH with a stream verdict attached"
refused a_library splice_pair "sockmap_splice_pair() on a kTLS socket"
# (b) sockmap first, then kTLS
setup_ok b_sockmap sockmap_add
[ -n "$verdict_arg" ] && setup_ok b_verdict splice_pair
refused b_sockmap tls_tx "TLS_TX on a socket in a SOCKMAP (no program)"
refused b_sockmap tls_rx "TLS_RX on a socket in a SOCKMAP (no program)"
if [ -n "$verdict_arg" ]; then
  refused b_verdict tls_tx "TLS_TX on a socket spliced by a stream verdict"
  refused b_verdict tls_rx "TLS_RX on a socket spliced by a stream verdict"
else
  echo "!!! NOT RUN on $kernel: verdict-then-kTLS (b_verdict); it locked up Debian 7.2.13 on close()." >&2
fi

# Recorded, not asserted: the ULP alone, TCP_ULP on a socket in a map, and kTLS after leaving the map.
echo "FINDINGS kernel=$kernel uname=$(uname -r)" \
  "a_ulp_only:sockmap_add=$(res a_ulp_only sockmap_add)" \
  "a_sockmap:sockmap_add=$(res a_sockmap sockmap_add)" \
  "a_sockhash:sockhash_add=$(res a_sockhash sockhash_add)" \
  "a_verdict:sockhash_add=$(res a_verdict sockhash_add)" \
  "b_sockmap:tcp_ulp=$(res b_sockmap tcp_ulp_tls),tls_tx=$(res b_sockmap tls_tx),tls_rx=$(res b_sockmap tls_rx)" \
  "b_verdict:tcp_ulp=$(res b_verdict tcp_ulp_tls),tls_tx=$(res b_verdict tls_tx),tls_rx=$(res b_verdict tls_rx)" \
  "b_removed:tcp_ulp=$(res b_removed tcp_ulp_tls),tls_tx=$(res b_removed tls_tx)"
[ "$errs" -eq 0 ] || fail "$errs check(s) failed on kernel $kernel"
log "kernel $kernel: kTLS and sockmap refuse each other in both orders"
