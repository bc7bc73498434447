#!/usr/bin/env bash
# sockmap_splice in a real Debian kernel: the host test (tests/host/sockmap_splice.sh: concurrent relayed
# connections hashed end to end, BPF counters, bpftool, half-close propagation, bytes queued before
# pairing, reset) with 4 MiB per connection and no CPU-time assertion (QEMU TCG emulates the CPU).
# Proves the verdict program loads and behaves the same on 5.10, 6.1, 6.12 and latest.
# timeout: 300
source "${TLSOFF_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
[ -n "${TLSOFF_LAB_KERNEL:-}" ] || skip "TLSOFF_LAB_KERNEL unset: run inside the lab (scripts/run-tests --only lab)"
log "kernel $TLSOFF_LAB_KERNEL ($(uname -r))"
SOCKMAP_SPLICE_MIB=4 SOCKMAP_SPLICE_CPU_LIMIT_US=0 exec "$ROOT/tests/host/sockmap_splice.sh"
