/* sockmap_splice.h — what the BPF program (sockmap_splice.bpf.c) and its loader (sockmap_splice.c) share.
 *
 * Only <linux/types.h> here: this header is compiled both by clang -target bpf and by gcc.
 * The daemon's API is include/tlsoff/sockmap_splice.h; nothing outside bpf/ should include this file.
 */
#ifndef TLSOFF_BPF_SOCKMAP_SPLICE_H
#define TLSOFF_BPF_SOCKMAP_SPLICE_H

#include <linux/types.h>

/* Default capacity: sockets (two per pair). The loader may change it before load. */
#define SPLICE_DEFAULT_MAX_SOCKS 65536

/* Value of the splice_bytes map, keyed by socket cookie (SO_COOKIE / bpf_get_socket_cookie). */
struct splice_bytes {
	__u64 in;      /* bytes received on this socket and redirected to its peer (verdict time) */
	__u64 out;     /* bytes redirected to this socket's egress from its peer (verdict time) */
	__u64 tx_base; /* written by the loader at pair time: tcpi_bytes_acked + SIOCOUTQ of this socket, so
	                  "bytes the kernel has really queued for sending since pairing" can be computed */
	__u32 next_seq;  /* verdict only: TCP sequence number just past the last byte redirected */
	__u32 seq_known; /* verdict only: next_seq is set (the first skb sets it) */
};

/* Indexes of the splice_stats array (per-CPU, summed by the loader). */
enum splice_stat {
	SPLICE_STAT_REDIRECTED = 0, /* skbs redirected */
	SPLICE_STAT_NO_COOKIE,      /* skb without a socket (cookie 0): passed to the socket itself */
	SPLICE_STAT_NO_PEER,        /* socket with no peer entry (mid-unpair): passed to the socket itself */
	SPLICE_STAT_REDIRECT_FAIL,  /* peer not in splice_targets: dropped by the kernel */
	SPLICE_STAT_EMPTY,          /* zero-length skbs (a bare FIN): dropped, never redirected */
	SPLICE_STAT_OVERLAP_TRIMMED, /* skbs whose head repeated bytes already redirected: head cut off */
	SPLICE_STAT_OVERLAP_DROPPED, /* skbs holding only bytes already redirected: dropped */
	SPLICE_STAT_OVERLAP_FAILED,  /* an overlap that could not be cut (bpf_skb_adjust_room failed): dropped */
	SPLICE_STAT__MAX,
};

#endif
