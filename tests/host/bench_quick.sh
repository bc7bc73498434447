#!/usr/bin/env bash
# sanitize: skip (a benchmark driver run for the peers; tlsoffd under ASan is covered by the other tests)
# timeout: 420
# scripts/bench --quick (what `make bench` runs, with small sizes) so the driver never rots: every terminator
# (tlsoffd, haproxy, nginx, stunnel, hitch) starts from its generated configuration, serves every workload,
# and the report has a value per terminator and workload plus the tlsoff ÷ best peer row. The numbers of a
# quick run on a shared machine mean nothing and are not asserted; that a load tool did full handshakes is
# (tls_load fails on a resumed session), and so is the byte count the backend saw for each upload. Two
# rounds, so the interleaving, the medians and the spread table are exercised too. `--workloads` and
# `--tcp` each get a run of their own.
source "$(dirname "$0")/../lib.sh"
need haproxy nginx stunnel hitch bc
TLSOFF_BUILD=$B "$ROOT/scripts/bench" --quick --rounds 2 --out "$T/bench" >"$T/bench.out" 2>&1 || { tail -20 "$T/bench.out"; fail "scripts/bench --quick failed"; }
tsv=$T/bench/results.tsv
for t in tlsoff haproxy nginx stunnel hitch; do
  for wm in "down1 cpu_s_per_gib" "down1 mb_per_s" "down8 mb_per_s" "up1 mb_per_s" "up8 mb_per_s" \
            "hs cpu_s_per_1000" "hs per_s" "rr per_s" "rr p50_us" "rr p99_us" "idle kb_per_conn"; do
    set -- $wm
    v=$(awk -F'\t' -v t="$t" -v w="$1" -v m="$2" '$1 == t && $2 == w && $3 == m { print $4 }' "$tsv")
    [ -n "$v" ] || fail "no $1 $2 for $t"
    # rates and latencies must be positive; CPU and memory may round to 0 in a quick run
    case $2 in mb_per_s|per_s|p50_us|p99_us) awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "$t $1 $2 = $v" ;; esac
  done
done
grep -q '^| \*\*tlsoff ÷ best peer\*\* |' "$T/bench/results.md" || fail "no ratio row in results.md"
for png in cpu_per_gib handshakes; do
  [ "$(head -c 4 "$T/bench/plots/$png.png" 2>/dev/null | tail -c 3)" = PNG ] || fail "no plot $png.png"
done
grep -q $'^tlsoff\tdown1\tmachine_cpu_s_per_gib\t' "$tsv" || fail "no whole-machine CPU figure"
# results.tsv holds the median of the rounds' figures (results-rounds.tsv): check one against its rounds
raw=$T/bench/results-rounds.tsv
[ "$(awk -F'\t' '$1 == "tlsoff" && $2 == "hs" && $3 == "per_s"' "$raw" | wc -l)" = 2 ] || fail "not 2 rounds of hs"
want=$(awk -F'\t' '$1 == "tlsoff" && $2 == "hs" && $3 == "per_s" { s += $4 } END { print s / 2 }' "$raw")
got=$(awk -F'\t' '$1 == "tlsoff" && $2 == "hs" && $3 == "per_s" { print $4 }' "$tsv")
awk -v a="$want" -v b="$got" 'BEGIN { exit !(a - b < 0.01 && b - a < 0.01) }' || fail "hs per_s $got is not the median $want"
grep -q '^\*\*Run-to-run spread over 2 rounds' "$T/bench/results.md" || fail "no spread table"
log "$(grep -c . "$tsv") results from 5 terminators"

# --tcp: the sockmap frontends against the peers' TCP modes, in front of a backend that ends TLS itself
TLSOFF_BUILD=$B "$ROOT/scripts/bench" --quick --tcp --out "$T/tcp" >"$T/tcp.out" 2>&1 || { tail -20 "$T/tcp.out"; fail "scripts/bench --quick --tcp failed"; }
tsv=$T/tcp/results.tsv
for t in tlsoff-plain tlsoff-passthrough haproxy-tcp nginx-tcp; do
  for wm in "down1 mb_per_s" "up8 mb_per_s" "down8 machine_cpu_s_per_gib" "hs per_s" "rr per_s" "idle kb_per_conn"; do
    set -- $wm
    v=$(awk -F'\t' -v t="$t" -v w="$1" -v m="$2" '$1 == t && $2 == w && $3 == m { print $4 }' "$tsv")
    [ -n "$v" ] || fail "--tcp: no $1 $2 for $t"
    case $2 in mb_per_s|per_s|machine_cpu_s_per_gib) awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "--tcp: $t $1 $2 = $v" ;; esac
  done
done
grep -q '^crypto' "$tsv" && fail "--tcp: relays do no crypto, yet a crypto floor was reported"
for o in tlsoff-plain tlsoff-passthrough; do
  grep -q "^| \*\*$o ÷ best peer\*\* |" "$T/tcp/results.md" || fail "--tcp: no ratio row for $o"
done
log "--tcp: $(grep -c . "$tsv") results from 4 relays"

# --workloads: only the named ones run (and the report copes with the others missing); a bad name is refused
TLSOFF_BUILD=$B "$ROOT/scripts/bench" --quick --only "tlsoff nginx" --workloads "up1 hs" --out "$T/wl" >"$T/wl.out" 2>&1 || { tail -20 "$T/wl.out"; fail "scripts/bench --workloads failed"; }
got=$(awk -F'\t' '$1 != "crypto" { print $2 }' "$T/wl/results.tsv" | sort -u | tr '\n' ' ')
[ "$got" = "hs up1 " ] || fail "--workloads \"up1 hs\" ran: $got"
grep -q '^| \*\*tlsoff ÷ best peer\*\* |' "$T/wl/results.md" || fail "--workloads: no ratio row"
if "$ROOT/scripts/bench" --workloads "up1 nosuch" >"$T/bad.out" 2>&1; then fail "an unknown workload was accepted"; fi
grep -q 'unknown workload nosuch' "$T/bad.out" || fail "no clear error for an unknown workload: $(cat "$T/bad.out")"
log "--workloads: $got"
