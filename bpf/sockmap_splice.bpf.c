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

/* The overlap cut (why: see verdict() below) in steps of at most 0xfff bytes, the most one
 * bpf_skb_adjust_room call may remove on an sk_skb; 48 steps cover a 196 KB overlap, more than one GRO skb. */
#define TRIM_STEP 0xfff
#define TRIM_STEPS 48

/* tcp_skb_cb.tcp_flags is byte 12 of skb->cb, i.e. the low byte of cb[3] on a little-endian machine. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CB_FIN(skb) ((skb)->cb[3] & 0x01)
#else
#define CB_FIN(skb) (((skb)->cb[3] >> 24) & 0x01)
#endif

/* One bpf_skb_adjust_room step of the cut, run by bpf_loop(): a plain loop of helper calls is too many
 * branches for the verifier of a loader without CAP_PERFMON (tlsoffd after dropping privileges), which
 * also walks every speculative path ("the sequence of 8193 jumps is too complex"); bpf_loop's callback
 * is verified once. bpf_loop is 5.17+, older than any kernel that gets this verdict (tcp_read_skb, 6.0). */
struct cut {
	struct __sk_buff *skb;
	__u32 over;
};

static long cut_step(__u32 i, void *data)
{
	struct cut *c = data;
	__u32 step = c->over > TRIM_STEP ? TRIM_STEP : c->over;

	if (!step || bpf_skb_adjust_room(c->skb, -(__s32)step, 0, 0))
		return 1; /* done, or failed: c->over says which */
	c->over -= step;
	return 0;
}

/* Returns SK_PASS to go on with the (possibly shortened) skb, SK_DROP to drop it. */
static __always_inline int cut_overlap(struct __sk_buff *skb, struct splice_bytes *mine)
{
	/* The skb's bytes end at end_seq (cb[1]; one more if it carries a FIN) and start len bytes before:
	 * counting back from the end gives the first byte the verdict is shown, on every kernel. */
	__u32 end = skb->cb[1] - CB_FIN(skb), start = end - skb->len, over;

	if (!mine->seq_known || (__s32)(mine->next_seq - start) <= 0)
		goto done;
	over = mine->next_seq - start;
	if (over >= skb->len) {
		stat_inc(SPLICE_STAT_OVERLAP_DROPPED);
		return SK_DROP; /* nothing new in it: next_seq stays */
	}
	struct cut c = { .skb = skb, .over = over };

	bpf_loop(TRIM_STEPS, cut_step, &c, 0);
	/* Overwrite the spilled ctx pointer whole: the compiler reuses this stack slot for 4-byte values,
	 * and without CAP_PERFMON the verifier refuses a partial write over a spilled pointer. */
	*(volatile __u64 *)&c.skb = 0;
	if (c.over) {
		stat_inc(SPLICE_STAT_OVERLAP_FAILED);
		return SK_DROP;
	}
	stat_inc(SPLICE_STAT_OVERLAP_TRIMMED);
done:
	if (!mine->seq_known || (__s32)(end - mine->next_seq) > 0)
		mine->next_seq = end;
	mine->seq_known = 1;
	return SK_PASS;
}

/* With cut set: the kernel's tcp_read_skb() (6.0 on; 6.1, 6.12, 6.18, 7.x here) hands the verdict whole
 * skbs from the receive queue and assumes each starts at copied_seq. It need not: a retransmission that
 * starts before rcv_nxt and ends after it is queued whole (tcp_data_queue, "partial packet"; recvmsg skips
 * the head by sequence number), so its head would be redirected a second time: duplicated bytes in the
 * peer's stream. Seen on 6.18 as 2 x 47616 extra bytes after a stalled window (tests/host/sockmap_splice.sh).
 * The verdict keeps the next expected sequence number per socket and cuts such a head off. The loader
 * turns the cut on only where it checked (vmlinux BTF) that tcp_read_skb exists and skb->cb[] shows the
 * verdict tcp_skb_cb's seq/end_seq/tcp_flags; older kernels (5.10: tcp_read_sock, which honours the
 * offset) get the program without it, which also keeps bpf_skb_adjust_room (5.11+ for sk_skb) out of it. */
static __always_inline int verdict(struct __sk_buff *skb, int cut)
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
	mine = bpf_map_lookup_elem(&splice_bytes, &cookie);
	if (cut && mine && cut_overlap(skb, mine) == SK_DROP)
		return SK_DROP;
	len = skb->len;
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
	if (mine)
		__sync_fetch_and_add(&mine->in, len);
	theirs = bpf_map_lookup_elem(&splice_bytes, peer);
	if (theirs)
		__sync_fetch_and_add(&theirs->out, len);
	stat_inc(SPLICE_STAT_REDIRECTED);
	return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int splice_verdict(struct __sk_buff *skb)
{
	return verdict(skb, 1);
}

/* For kernels before tcp_read_skb (see verdict()): the loader loads one of the two. */
SEC("sk_skb/stream_verdict")
int splice_verdict_plain(struct __sk_buff *skb)
{
	return verdict(skb, 0);
}
