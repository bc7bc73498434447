#!/usr/bin/env bash
# sanitize: skip (the harnesses are built with ASan+UBSan already, in build/fuzz)
# The libFuzzer harnesses (tests/fuzz/*.c, `make fuzz`) in short: each replays its checked-in corpus (the
# seeds and the regression inputs of bugs fuzzing found) and then fuzzes for FUZZ_SECS seconds, two at a
# time. Any crash, sanitizer report, leak, broken contract (the harness aborts) or slow input (-timeout)
# fails the test with the reproducer's path. The long runs (>= 10M executions each) are `make fuzz-long`,
# documented in docs/security.md "Fuzzing".
# timeout: 100
source "$(dirname "$0")/../lib.sh"
need clang
FUZZ_SECS=${FUZZ_SECS:-8}

# `make test` / `make test-host` built the harnesses already: this `make fuzz` is a no-op then (a cold
# build alone is ~25 s of CPU, which would eat this test's budget on a loaded machine).
make -C "$ROOT" --no-print-directory -s B="$B" fuzz >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "make fuzz failed"; }

mkdir -p "$B/fuzz/crashes"
names=()
for src in "$ROOT"/tests/fuzz/*.c; do names+=("$(basename "$src" .c)"); done
[ "${#names[@]}" -ge 6 ] || fail "expected at least 6 harnesses in tests/fuzz, found ${#names[@]}"

# run NAME: corpus, then FUZZ_SECS of fuzzing; new inputs go to a scratch dir (the seeds stay as they are)
run() {
  local n=$1 dict=() corpus="$ROOT/tests/fuzz/corpus/$1"
  [ -f "$ROOT/tests/fuzz/$n.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$n.dict")
  [ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { echo "no seeds in $corpus" >"$T/$n.log"; return 1; }
  mkdir -p "$T/work/$n"
  "$B/fuzz/$n" -max_total_time="$FUZZ_SECS" -timeout=10 -rss_limit_mb=1536 -print_final_stats=1 \
    -artifact_prefix="$B/fuzz/crashes/$n-" "${dict[@]}" "$T/work/$n" "$corpus" >"$T/$n.log" 2>&1
}

report() {
  local n=$1 rc=$2
  if [ "$rc" = 0 ] && grep -q '^Done [0-9]* runs' "$T/$n.log"; then
    log "$n: $(grep -E '^#[0-9]+.*DONE' "$T/$n.log" | tail -n1)"
    return 0
  fi
  echo "---- $n (exit $rc): end of its log" >&2
  tail -n 40 "$T/$n.log" >&2
  local unit; unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$T/$n.log" | tail -n1)
  [ -n "$unit" ] && echo "reproduce: $B/fuzz/$n $unit" >&2
  return 1
}

failed=()
for ((i = 0; i < ${#names[@]}; i += 2)); do
  a=${names[i]} b=${names[i + 1]-}
  run "$a" & pa=$!
  [ -n "$b" ] && { run "$b" & pb=$!; }
  rc=0; wait "$pa" || rc=$?
  report "$a" "$rc" || failed+=("$a")
  if [ -n "$b" ]; then
    rc=0; wait "$pb" || rc=$?
    report "$b" "$rc" || failed+=("$b")
  fi
done
[ "${#failed[@]}" = 0 ] || fail "harnesses failed: ${failed[*]}"
log "all ${#names[@]} harnesses clean: corpus + ${FUZZ_SECS}s of fuzzing each"
