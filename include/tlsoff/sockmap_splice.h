/* sockmap_splice.h — join two established plain-TCP sockets inside the kernel (eBPF sockmap redirect).
 *
 * Each socket's incoming bytes leave through the other socket without reaching user space: an SK_SKB
 * stream verdict program redirects every skb to the peer's egress. For TCP passthrough and SNI-routed
 * TLS passthrough legs only — never a kTLS socket: the kernel refuses kTLS + sockmap in both orders
 * (CVE-2026-93824; tests/lab/sockmap_ktls_exclusion.sh records what each kernel does).
 *
 * Usage (one handle per process; the BPF maps and program live as long as the handle):
 *   h = sockmap_splice_open(0, err, sizeof err);        load + attach, or NULL and a message
 *   sockmap_splice_pair(h, client_fd, backend_fd);       both ESTABLISHED, no ULP
 *   ... poll both fds for POLLRDHUP only (never read or write them; see below) ...
 *   sockmap_splice_bytes(h, fd, &in, &out);              counters at any time
 *   sockmap_splice_unpair(h, client_fd, backend_fd);     before close()
 *   sockmap_splice_close(h);
 *
 * What the kernel does and does not do for a spliced pair (verified on 6.18, see tests/host/sockmap_splice.sh):
 * - A FIN is NOT forwarded. The socket that received it reports POLLRDHUP (POLLIN too: do not poll for
 *   POLLIN, it stays set); the peer keeps its write side open until the daemon calls
 *   sockmap_splice_shutdown_wr(h, peer_fd), which waits until every byte redirected to the peer has been
 *   queued on it (redirected bytes pass through a kernel work queue; shutting down earlier loses them).
 * - A reset or error is reported as POLLERR / POLLHUP on that socket; close both sockets.
 * - Data that arrived before pairing is forwarded too: pair() kicks the verdict once (see the .c).
 * - After unpair the sockets are plain TCP again; bytes the kernel was still redirecting may be lost, so
 *   unpair only when both directions are finished or one side is dead.
 * - The daemon must not write to a paired socket itself (the unsent-bytes accounting would be wrong and the
 *   bytes would interleave with redirected ones).
 *
 * All functions return 0 or a negative errno; sockmap_splice_error(h) then says in words what happened
 * and what to do about it.
 */
#ifndef TLSOFF_SOCKMAP_SPLICE_H
#define TLSOFF_SOCKMAP_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockmap_splice_handle;

/* Load the BPF object and attach the stream verdict. max_socks = capacity (two per pair), 0 = default. */
struct sockmap_splice_handle *sockmap_splice_open(uint32_t max_socks, char *err, size_t errlen);
void sockmap_splice_close(struct sockmap_splice_handle *h);

/* Join two ESTABLISHED TCP sockets with no ULP. */
int sockmap_splice_pair(struct sockmap_splice_handle *h, int fd_a, int fd_b);
/* Separate them again (and forget their counters). Works on half-dead sockets too. */
int sockmap_splice_unpair(struct sockmap_splice_handle *h, int fd_a, int fd_b);

/* in = bytes received on fd and redirected to its peer; out = bytes redirected from the peer to fd. */
int sockmap_splice_bytes(struct sockmap_splice_handle *h, int fd, uint64_t *in, uint64_t *out);
/* Bytes redirected to fd that the kernel has not yet put into fd's send queue (0 = all queued). */
int sockmap_splice_unsent(struct sockmap_splice_handle *h, int fd, uint64_t *unsent);
/* Propagate a half-close: wait (up to timeout_ms) until unsent is 0, then shutdown(fd, SHUT_WR).
 * -ETIMEDOUT if the peer's bytes could not be queued in time (fd's receiver not reading). */
int sockmap_splice_shutdown_wr(struct sockmap_splice_handle *h, int fd, int timeout_ms);

/* Kernel ids of the program and maps, for diagnostics (bpftool prog show id N, bpftool map dump id N). */
struct sockmap_splice_ids {
	uint32_t prog, sources, targets, peers, bytes, stats;
};
int sockmap_splice_ids(struct sockmap_splice_handle *h, struct sockmap_splice_ids *ids);
/* The per-CPU splice_stats slots (enum splice_stat in bpf/sockmap_splice.h), each summed over the CPUs, into
 * sum[], without touching the handle's error text: safe from another thread than the handle's user (the
 * metrics endpoint reads the workers' handles). 0 or a negative errno. */
#define SOCKMAP_SPLICE_NSTATS 8
int sockmap_splice_stats_read(const struct sockmap_splice_handle *h, uint64_t sum[SOCKMAP_SPLICE_NSTATS]);
/* The slot's name ("redirected", "overlap_trimmed", ...; NULL past the last): metric labels, test output. */
const char *sockmap_splice_stat_name(unsigned idx);

/* Whether this kernel gets the verdict that cuts off retransmitted bytes the kernel would hand it twice
 * (tcp_read_skb, 6.0 on; checked in the kernel's BTF). docs/KERNEL-NOTES.md, "sockmap and overlapping
 * retransmissions". */
bool sockmap_splice_cut_overlap(void);
/* In a skeleton opened but not loaded yet: turn off the verdict this kernel does not get, return the one
 * it gets. sockmap_splice_open() does it; so does a tool that loads its own copy of the object. */
struct sockmap_splice;
struct bpf_program;
struct bpf_program *sockmap_splice_pick_verdict(struct sockmap_splice *skel);

/* Socket cookie (SO_COOKIE), the key of every map. */
int sockmap_splice_cookie(int fd, uint64_t *cookie);

const char *sockmap_splice_error(const struct sockmap_splice_handle *h);

#endif
