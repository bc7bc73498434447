// SPDX-License-Identifier: GPL-2.0
/* sockmap_splice.bpf.c — join two plain TCP sockets inside the kernel.
 *
 * An SK_SKB stream verdict program (no stream parser: every skb is judged as it arrives) attached to the
 * splice_sources sockhash. For a socket in splice_sources, each incoming skb is redirected to the EGRESS of
 * its peer (bpf_sk_redirect_hash, flags 0): the bytes go out of the peer socket as if the daemon had
 * written them, without ever reaching user space.
 *
 * Why two sockhashes: a redirect target must itself be in a sockmap (it needs a psock), but a socket whose
 * verdict is live before its peer is reachable would see its bytes dropped (the redirect fails -> SK_DROP).
 * So the loader puts both sockets into splice_targets first (psock, no program: the sockets behave like
 * plain TCP), then into splice_sources (verdict live). By then every possible target exists.
 *
 * Never for kTLS sockets: the kernel refuses any socket with a ULP in a sockmap (EINVAL) and refuses
 * TLS_TX/TLS_RX on a socket in one (CVE-2026-93824, see docs and tests/lab/sockmap_ktls_exclusion.sh).
 *
 * Only UAPI headers: no vmlinux.h, so the object does not depend on the build machine's kernel.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockmap_splice.h"

char LICENSE[] SEC("license") = "GPL"; /* sk_redirect_hash and friends are GPL-only helpers */

/* Sockets whose incoming bytes are redirected (the verdict program is attached to this map). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPLICE_DEFAULT_MAX_SOCKS);
	__type(key, __u64);   /* socket cookie */
	__type(value, __u32); /* fd on update; 4 bytes works on every kernel (8 needs 5.x+) */
} splice_sources SEC(".maps");

/* Sockets bytes may be redirected to (no program attached). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SPLICE_DEFAULT_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u32);
} splice_targets SEC(".maps");

/* cookie -> peer's cookie, both directions. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPLICE_DEFAULT_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} splice_peers SEC(".maps");

/* cookie -> byte counters, read by the daemon (sockmap_splice_bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SPLICE_DEFAULT_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct splice_bytes);
} splice_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SPLICE_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} splice_stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&splice_stats, &idx);

	if (v)
		*v += 1; /* per-CPU slot, and the verdict runs with preemption off: no atomic needed */
}

SEC("sk_skb/stream_verdict")
int splice_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct splice_bytes *mine, *theirs;
	__u64 *peer;
	__u64 len = skb->len;
	long ret;

	if (len == 0) {
		/* A bare FIN reaches the verdict as an empty skb (seen on 6.18). Redirected, it makes the
		 * peer's transmit work call skb_send_sock() for 0 bytes, which the kernel treats as a hard
		 * error: it sets EPIPE on the PEER socket (POLLERR) and stops its transmit. Dropping it loses
		 * nothing; the FIN itself is reported to user space as POLLRDHUP on this socket. */
		stat_inc(SPLICE_STAT_EMPTY);
		return SK_DROP;
	}
	if (!cookie) {
		/* Kernel gave the skb no owning socket: let it reach the socket itself rather than lose it. */
		stat_inc(SPLICE_STAT_NO_COOKIE);
		return SK_PASS;
	}
	peer = bpf_map_lookup_elem(&splice_peers, &cookie);
	if (!peer) {
		/* Should not happen: unpair removes a socket from splice_sources before its peer entry.
		 * Passing keeps the bytes readable on the socket itself instead of losing them. */
		stat_inc(SPLICE_STAT_NO_PEER);
		return SK_PASS;
	}
	ret = bpf_sk_redirect_hash(skb, &splice_targets, peer, 0 /* egress of the peer */);
	if (ret != SK_PASS) {
		stat_inc(SPLICE_STAT_REDIRECT_FAIL);
		return SK_DROP;
	}
	/* Atomic adds: a socket's verdict normally runs in one context at a time, but the peer's "out" is
	 * only ever written from here too, and atomics cost nothing next to the redirect itself. */
	mine = bpf_map_lookup_elem(&splice_bytes, &cookie);
	if (mine)
		__sync_fetch_and_add(&mine->in, len);
	theirs = bpf_map_lookup_elem(&splice_bytes, peer);
	if (theirs)
		__sync_fetch_and_add(&theirs->out, len);
	stat_inc(SPLICE_STAT_REDIRECTED);
	return SK_PASS;
}
