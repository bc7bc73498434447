// SPDX-License-Identifier: GPL-2.0
/* reuseport_steer.bpf.c — hand each new connection to the worker on the CPU that received it.
 *
 * tlsoffd runs one worker per CPU, each with its own SO_REUSEPORT listener for a frontend. Without a
 * program, the kernel picks the listener of a SYN by a hash of the 4-tuple, so a connection whose packets
 * are processed (softirq) on CPU 3 is accepted and served by a worker on some other CPU. This SK_REUSEPORT
 * program runs for every SYN that reaches the group, in the softirq that processes it, and selects the
 * listener in slot (this CPU % nsocks) of steer_socks — the listener of the worker on this CPU.
 *
 * Fallbacks, counted in steer_stats:
 *  - the CPU's slot is empty (listener closed: the kernel empties its slot itself; or never set) or holds
 *    a socket of another group -> slot (reuse_md->hash % nsocks), still one fixed listener per flow;
 *  - that one is unusable too -> SK_PASS without a selection: the kernel's own hash over the group.
 * SK_DROP is never returned: it would refuse the connection (the kernel answers ECONNREFUSED).
 *
 * Only UAPI headers: no vmlinux.h, so the object does not depend on the build machine's kernel.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "reuseport_steer.h"

char LICENSE[] SEC("license") = "GPL";

/* Listeners in slot order (slot i = worker i). Value is an fd on update; 8 bytes so that a lookup from
 * user space (bpftool map dump) returns the socket cookie; a 4-byte value can only be written. */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, STEER_MAX_SOCKS); /* the loader sets it to nsocks before load */
	__type(key, __u32);
	__type(value, __u64);
} steer_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_stats SEC(".maps");

/* Number of listeners in the group (= slots used). Set by the loader before load (.rodata): the verifier
 * then knows it as a constant. */
const volatile __u32 nsocks = 1;

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&steer_stats, &idx);

	if (v)
		*v += 1; /* per-CPU slot, and the program runs in softirq with preemption off: no atomic needed */
}

SEC("sk_reuseport")
int steer(struct sk_reuseport_md *md)
{
	__u32 n = nsocks;
	__u32 key;

	if (n == 0) { /* cannot happen (the loader refuses 0), but the modulo below must never see it */
		stat_inc(STEER_STAT_KERNEL);
		return SK_PASS;
	}
	key = bpf_get_smp_processor_id() % n;
	if (bpf_sk_select_reuseport(md, &steer_socks, &key, 0) == 0) {
		stat_inc(STEER_STAT_BY_CPU);
		return SK_PASS;
	}
	/* -ENOENT: empty slot; -EBADFD/-EPROTOTYPE/-EAFNOSUPPORT: a socket of another group in the slot. */
	key = md->hash % n;
	if (bpf_sk_select_reuseport(md, &steer_socks, &key, 0) == 0) {
		stat_inc(STEER_STAT_BY_HASH);
		return SK_PASS;
	}
	/* SK_PASS with nothing selected: the kernel falls back to its own hash (reuseport_select_sock). */
	stat_inc(STEER_STAT_KERNEL);
	return SK_PASS;
}
