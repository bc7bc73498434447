#!/usr/bin/env bash
# timeout: 900
# scripts/bench --quick inside a kTLS guest (latest only: the lab setting of `make bench --lab`), so the lab
# side of the driver never rots: tlsoffd (kTLS + splice) and the peers with their kTLS options (nginx with
# ssl_conf_command Options KTLS, stunnel with options = ENABLE_KTLS) serve every workload, and each of them
# really opened kTLS sessions (the kernel's TlsTxSw moved during its run) — a peer option that silently did
# nothing would make the lab comparison meaningless.
source "${TLSOFF_ROOT:-$(dirname "$0")/../..}/tests/lib.sh"
[ "${TLSOFF_LAB_KERNEL:-}" = latest ] || skip "the lab benchmark's quick run is checked on the latest kernel only"
[ -r /proc/net/tls_stat ] || skip "no kTLS in this kernel"
need nginx stunnel bc
TLSOFF_BUILD=$B "$ROOT/scripts/bench" --quick --only "tlsoff nginx-ktls stunnel-ktls" --out "$T/bench" \
  >"$T/bench.out" 2>&1 || { tail -20 "$T/bench.out"; fail "scripts/bench --quick failed in the guest"; }
tsv=$T/bench/results.tsv
for t in tlsoff nginx-ktls stunnel-ktls; do
  v=$(awk -F'\t' -v t="$t" '$1 == t && $2 == "ktls" && $3 == "tx_sessions" { print $4 }' "$tsv")
  [ -n "$v" ] && [ "$v" -gt 0 ] || { cat "$tsv"; fail "$t opened no kTLS session (TlsTxSw delta '$v')"; }
  for m in "down1 mb_per_s" "up8 mb_per_s" "hs per_s" "rr per_s"; do
    set -- $m
    v=$(awk -F'\t' -v t="$t" -v w="$1" -v m="$2" '$1 == t && $2 == w && $3 == m { print $4 }' "$tsv")
    [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "$t $1 $2 = '$v'"
  done
done
# tlsoffd hands both directions to the kernel: its uploads are deciphered by kTLS RX as well
v=$(awk -F'\t' '$1 == "tlsoff" && $2 == "ktls" && $3 == "rx_sessions" { print $4 }' "$tsv")
[ -n "$v" ] && [ "$v" -gt 0 ] || { cat "$tsv"; fail "tlsoff opened no kTLS RX session (TlsRxSw delta '$v')"; }
# both crypto floors: OpenSSL's (openssl speed) and the kernel's own AES-GCM (kcrypto_speed, AF_ALG)
for k in aes128gcm kernel_aes128gcm kernel_aes128gcm@down1 kernel_aes128gcm@up8; do   # @: next to that workload
  v=$(awk -F'\t' -v k="$k" '$1 == "crypto" && $2 == k { print $4 }' "$tsv")
  [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v > 0) }' || { cat "$tsv"; fail "crypto floor $k = '$v'"; }
done
grep -q 'without the crypto floor' "$T/bench/results.md" || fail "no non-crypto table"
grep -q "without each terminator's own cipher (the kernel's AES-128-GCM through AF_ALG, measured before each workload: down1" \
  "$T/bench/results.md" || { grep -i "own cipher" "$T/bench/results.md"; fail "no own-cipher non-crypto table with per-workload floors"; }
log "$(grep -c . "$tsv") results; kTLS used by all three"
