/* sockmap_splice.c — loader and pairing API for bpf/sockmap_splice.bpf.c (include/tlsoff/sockmap_splice.h).
 *
 * Maps are keyed by socket cookie (SO_COOKIE in user space, bpf_get_socket_cookie in the program): stable
 * for the socket's life, unlike fds, and unique across network namespaces.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "sockmap_splice.h"
#include "sockmap_splice.skel.h"
#include "tlsoff/sockmap_splice.h"

/* <linux/tcp.h> (for the full struct tcp_info) does not define the TCP states; 1 is ESTABLISHED. */
#define TCP_STATE_ESTABLISHED 1

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

struct sockmap_splice_handle {
	struct sockmap_splice *skel;
	int prog_fd, sources_fd, targets_fd, peers_fd, bytes_fd, stats_fd;
	char err[512];
};

static int fail(struct sockmap_splice_handle *h, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct sockmap_splice_handle *h, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->err, sizeof h->err, fmt, ap);
	va_end(ap);
	return err > 0 ? -err : err;
}

/* What an errno from bpf() or a sockmap update means here, and what to do about it. */
static const char *explain(int err)
{
	switch (err < 0 ? -err : err) {
	case EPERM:
	case EACCES:
		return "permission denied: BPF programs and sockmaps need CAP_BPF and CAP_NET_ADMIN (or root); "
		       "also check sysctl kernel.unprivileged_bpf_disabled and any LSM policy";
	case ENOMEM:
		return "out of memory for BPF maps (kernels before 5.11 charge them to RLIMIT_MEMLOCK: raise it)";
	case EINVAL:
		return "the kernel refused it: sockmap takes only TCP sockets without a ULP (a kTLS socket can never "
		       "join one, CVE-2026-93824), or the kernel lacks CONFIG_BPF_STREAM_PARSER / sockhash";
	case EOPNOTSUPP:
		return "socket type or state not accepted by sockmap (needs an ESTABLISHED TCP socket)";
	case EBUSY:
		return "the socket already has a stream verdict program (it is in another program's sockmap)";
	case EEXIST:
		return "the socket is already paired";
	case ENOENT:
		return "not found (socket not paired, or closed and dropped from the map by the kernel)";
	case E2BIG:
	case ENOSPC:
		return "sockmap full: open the handle with a larger max_socks";
	case EBADF:
	case ENOTSOCK:
		return "not an open socket";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

int sockmap_splice_cookie(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof *cookie;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) < 0)
		return -errno;
	return 0;
}

/* Bytes this socket has put into its send stream so far, as one consistent snapshot:
 * tcpi_bytes_acked + SIOCOUTQ (write_seq - snd_una). Two syscalls, so retry until no ACK moved
 * bytes_acked in between (it only grows): then snd_una did not move either and the sum is exact. */
static int tx_written(int fd, uint64_t *written)
{
	for (int i = 0; i < 100; i++) {
		struct tcp_info t1, t2;
		socklen_t l1 = sizeof t1, l2 = sizeof t2;
		int outq;

		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &t1, &l1) < 0)
			return -errno;
		if (l1 < offsetof(struct tcp_info, tcpi_bytes_received))
			return -EOPNOTSUPP; /* kernel older than 4.1: no tcpi_bytes_acked */
		if (ioctl(fd, SIOCOUTQ, &outq) < 0)
			return -errno;
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &t2, &l2) < 0)
			return -errno;
		if (t1.tcpi_bytes_acked == t2.tcpi_bytes_acked) {
			*written = t1.tcpi_bytes_acked + (uint64_t)outq;
			return 0;
		}
	}
	return -EAGAIN;
}

/* An ESTABLISHED TCP socket without ULP, or a message saying why not. */
static int check_socket(struct sockmap_splice_handle *h, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	char ulp[32] = "";

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return fail(h, errno, "fd %d: not a TCP socket: %s", fd, explain(errno));
	if (ti.tcpi_state != TCP_STATE_ESTABLISHED)
		return fail(h, ENOTCONN, "fd %d: TCP state %u, sockmap splicing needs an ESTABLISHED connection",
			    fd, ti.tcpi_state);
	len = sizeof ulp - 1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) == 0 && ulp[0])
		return fail(h, EINVAL, "fd %d has the \"%s\" ULP: the kernel forbids sockmap on such sockets "
			    "(kTLS + sockmap, CVE-2026-93824); use splice(2) for kTLS sockets", fd, ulp);
	return 0;
}

/* Does this kernel need the verdict's overlap cut, and can it take it (see verdict() in the .bpf.c)?
 * Asked of the kernel's own BTF: tcp_read_skb() exists (the verdict gets whole skbs), struct sk_skb_cb
 * exists (the verdict's cb[] is the start of skb->cb, where tcp_skb_cb lives) and tcp_skb_cb has seq,
 * end_seq and tcp_flags at bytes 0, 4 and 12. Without BTF: no cut (and the kernel's duplicate stays). */
static bool member_at(const struct btf *btf, const struct btf_type *t, const char *name, uint32_t bit_off)
{
	const struct btf_member *m = btf_members(t);

	for (int i = 0; i < btf_vlen(t); i++, m++)
		if (!strcmp(btf__name_by_offset(btf, m->name_off), name))
			return btf_member_bit_offset(t, i) == bit_off;
	return false;
}

static bool cut_overlap;
static pthread_once_t cut_overlap_once = PTHREAD_ONCE_INIT;

static void probe_cut_overlap(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok = false;
	int id;

	if (!btf)
		return;
	if (btf__find_by_name_kind(btf, "tcp_read_skb", BTF_KIND_FUNC) > 0 &&
	    btf__find_by_name_kind(btf, "sk_skb_cb", BTF_KIND_STRUCT) > 0 &&
	    (id = btf__find_by_name_kind(btf, "tcp_skb_cb", BTF_KIND_STRUCT)) > 0) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		ok = member_at(btf, t, "seq", 0) && member_at(btf, t, "end_seq", 32) &&
		     member_at(btf, t, "tcp_flags", 96);
	}
	btf__free(btf);
	cut_overlap = ok;
}

bool sockmap_splice_cut_overlap(void)
{
	pthread_once(&cut_overlap_once, probe_cut_overlap); /* parsing vmlinux BTF costs ~20 ms: once */
	return cut_overlap;
}

struct bpf_program *sockmap_splice_pick_verdict(struct sockmap_splice *skel)
{
	bool cut = sockmap_splice_cut_overlap();
	bpf_program__set_autoload(cut ? skel->progs.splice_verdict_plain : skel->progs.splice_verdict, false);
	return cut ? skel->progs.splice_verdict : skel->progs.splice_verdict_plain;
}

struct sockmap_splice_handle *sockmap_splice_open(uint32_t max_socks, char *err, size_t errlen)
{
	struct bpf_program *prog;
	struct sockmap_splice_handle *h = calloc(1, sizeof *h);
	const char *step;
	int rc;

	if (!h) {
		snprintf(err, errlen, "sockmap_splice: out of memory");
		return NULL;
	}
	h->skel = sockmap_splice__open();
	if (!h->skel) {
		rc = -errno;
		step = "open the embedded BPF object";
		goto out;
	}
	if (max_socks) {
		struct bpf_map *maps[] = { h->skel->maps.splice_sources, h->skel->maps.splice_targets,
					   h->skel->maps.splice_peers, h->skel->maps.splice_bytes };
		for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
			bpf_map__set_max_entries(maps[i], max_socks);
	}
	prog = sockmap_splice_pick_verdict(h->skel);
	rc = sockmap_splice__load(h->skel);
	if (rc) {
		step = "load the BPF maps and stream verdict program (libbpf printed the verifier's reason above)";
		goto out;
	}
	h->prog_fd = bpf_program__fd(prog);
	h->sources_fd = bpf_map__fd(h->skel->maps.splice_sources);
	h->targets_fd = bpf_map__fd(h->skel->maps.splice_targets);
	h->peers_fd = bpf_map__fd(h->skel->maps.splice_peers);
	h->bytes_fd = bpf_map__fd(h->skel->maps.splice_bytes);
	h->stats_fd = bpf_map__fd(h->skel->maps.splice_stats);
	/* libbpf 1.1 has no bpf_link for sockmap programs: the legacy attach ties the verdict to the map,
	 * and it goes away with the map when the handle is closed. */
	rc = bpf_prog_attach(h->prog_fd, h->sources_fd, BPF_SK_SKB_STREAM_VERDICT, 0);
	if (rc) {
		rc = -errno;
		step = "attach the stream verdict to the sockhash";
		goto out;
	}
	return h;
out:
	snprintf(err, errlen, "sockmap_splice: cannot %s: %s", step, explain(rc));
	sockmap_splice_close(h);
	return NULL;
}

void sockmap_splice_close(struct sockmap_splice_handle *h)
{
	if (!h)
		return;
	sockmap_splice__destroy(h->skel); /* closing the maps releases every psock: sockets become plain TCP */
	free(h);
}

const char *sockmap_splice_error(const struct sockmap_splice_handle *h)
{
	return h->err;
}

/* Run the verdict once over what is already queued. The verdict normally runs from sk_data_ready when
 * new data arrives; bytes that arrived before the socket joined splice_sources sit in the receive queue
 * until then — forever if the sender now waits for an answer (client speaks first) or its window is
 * full. Setting SO_RCVLOWAT calls tcp_data_ready() (since 4.18), which calls sk_data_ready, which is now
 * the psock's verdict hook: the queued skbs are judged and redirected in order, ahead of any new ones.
 * We set the value it already has, so nothing else changes. */
static int kick(int fd)
{
	int lowat;
	socklen_t len = sizeof lowat;

	if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &len) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) < 0)
		return -errno;
	return 0;
}

static void forget(struct sockmap_splice_handle *h, uint64_t ca, uint64_t cb)
{
	/* Order matters: verdict off first (sources), then what it looks up. ENOENT is fine everywhere:
	 * the kernel drops a socket from a sockhash by itself when the connection closes. */
	bpf_map_delete_elem(h->sources_fd, &ca);
	bpf_map_delete_elem(h->sources_fd, &cb);
	bpf_map_delete_elem(h->peers_fd, &ca);
	bpf_map_delete_elem(h->peers_fd, &cb);
	bpf_map_delete_elem(h->targets_fd, &ca);
	bpf_map_delete_elem(h->targets_fd, &cb);
	bpf_map_delete_elem(h->bytes_fd, &ca);
	bpf_map_delete_elem(h->bytes_fd, &cb);
}

int sockmap_splice_pair(struct sockmap_splice_handle *h, int fd_a, int fd_b)
{
	uint64_t ca, cb, wa, wb;
	struct splice_bytes ba = { 0 }, bb = { 0 };
	uint32_t va = fd_a, vb = fd_b;
	int rc;

	if ((rc = check_socket(h, fd_a)) || (rc = check_socket(h, fd_b)))
		return rc;
	if ((rc = sockmap_splice_cookie(fd_a, &ca)) || (rc = sockmap_splice_cookie(fd_b, &cb)))
		return fail(h, rc, "SO_COOKIE: %s", explain(rc));
	if (ca == cb)
		return fail(h, EINVAL, "fd %d and fd %d are the same socket", fd_a, fd_b);
	if ((rc = tx_written(fd_a, &wa)) || (rc = tx_written(fd_b, &wb)))
		return fail(h, rc, "TCP_INFO/SIOCOUTQ: %s", explain(rc));
	ba.tx_base = wa;
	bb.tx_base = wb;

	if (bpf_map_update_elem(h->bytes_fd, &ca, &ba, BPF_NOEXIST) ||
	    bpf_map_update_elem(h->bytes_fd, &cb, &bb, BPF_NOEXIST)) {
		rc = -errno;
		if (rc != -EEXIST)
			forget(h, ca, cb);
		return fail(h, rc, "counters for fds %d/%d: %s", fd_a, fd_b, explain(rc));
	}
	if (bpf_map_update_elem(h->peers_fd, &ca, &cb, BPF_NOEXIST) ||
	    bpf_map_update_elem(h->peers_fd, &cb, &ca, BPF_NOEXIST)) {
		rc = -errno;
		goto undo;
	}
	/* Targets first (psock, no program), then sources (verdict live): see the .bpf.c for why. */
	if (bpf_map_update_elem(h->targets_fd, &ca, &va, BPF_NOEXIST) ||
	    bpf_map_update_elem(h->targets_fd, &cb, &vb, BPF_NOEXIST) ||
	    bpf_map_update_elem(h->sources_fd, &ca, &va, BPF_NOEXIST) ||
	    bpf_map_update_elem(h->sources_fd, &cb, &vb, BPF_NOEXIST)) {
		rc = -errno;
		goto undo;
	}
	if ((rc = kick(fd_a)) || (rc = kick(fd_b))) {
		/* Leave them paired: only bytes queued before pairing are stuck, and only until more arrive. */
		return fail(h, rc, "paired, but SO_RCVLOWAT to flush bytes queued before pairing failed: %s",
			    explain(rc));
	}
	return 0;
undo:
	forget(h, ca, cb);
	return fail(h, rc, "cannot join fds %d and %d: %s", fd_a, fd_b, explain(rc));
}

int sockmap_splice_unpair(struct sockmap_splice_handle *h, int fd_a, int fd_b)
{
	uint64_t ca, cb;
	int rc;

	if ((rc = sockmap_splice_cookie(fd_a, &ca)) || (rc = sockmap_splice_cookie(fd_b, &cb)))
		return fail(h, rc, "SO_COOKIE: %s", explain(rc));
	forget(h, ca, cb);
	return 0;
}

static int lookup_bytes(struct sockmap_splice_handle *h, int fd, struct splice_bytes *b)
{
	uint64_t c;
	int rc = sockmap_splice_cookie(fd, &c);

	if (rc)
		return fail(h, rc, "fd %d: SO_COOKIE: %s", fd, explain(rc));
	if (bpf_map_lookup_elem(h->bytes_fd, &c, b))
		return fail(h, errno, "fd %d: counters: %s", fd, explain(errno));
	return 0;
}

int sockmap_splice_bytes(struct sockmap_splice_handle *h, int fd, uint64_t *in, uint64_t *out)
{
	struct splice_bytes b;
	int rc = lookup_bytes(h, fd, &b);

	if (rc)
		return rc;
	*in = b.in;
	*out = b.out;
	return 0;
}

int sockmap_splice_unsent(struct sockmap_splice_handle *h, int fd, uint64_t *unsent)
{
	struct splice_bytes b;
	uint64_t written;
	int rc = lookup_bytes(h, fd, &b);

	if (rc)
		return rc;
	if ((rc = tx_written(fd, &written)))
		return fail(h, rc, "fd %d: TCP_INFO/SIOCOUTQ: %s", fd, explain(rc));
	/* Redirected-to-us counts at verdict time; what has reached our send queue since pairing trails it. */
	*unsent = b.tx_base + b.out > written ? b.tx_base + b.out - written : 0;
	return 0;
}

int sockmap_splice_shutdown_wr(struct sockmap_splice_handle *h, int fd, int timeout_ms)
{
	struct timespec start, now, ms = { 0, 1000000 };
	uint64_t unsent;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((rc = sockmap_splice_unsent(h, fd, &unsent)))
			return rc;
		if (unsent == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= timeout_ms)
			return fail(h, timeout_ms ? ETIMEDOUT : EAGAIN,
				    "fd %d: %llu redirected bytes not yet queued for sending; shutting down now would "
				    "lose them", fd, (unsigned long long)unsent);
		nanosleep(&ms, NULL);
	}
	if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return fail(h, errno, "fd %d: shutdown(SHUT_WR): %s", fd, strerror(errno));
	return 0;
}

static int obj_id(int fd, uint32_t *id)
{
	/* bpf_prog_info and bpf_map_info both start with type, id: a map_info buffer is big enough to
	 * read either, but use the right struct for each to stay within what the kernel expects. */
	struct bpf_map_info mi = { 0 };
	uint32_t len = sizeof mi;

	if (bpf_obj_get_info_by_fd(fd, &mi, &len))
		return -errno;
	*id = mi.id;
	return 0;
}

int sockmap_splice_ids(struct sockmap_splice_handle *h, struct sockmap_splice_ids *ids)
{
	struct bpf_prog_info pi = { 0 };
	uint32_t pl = sizeof pi;
	int rc;

	if (bpf_obj_get_info_by_fd(h->prog_fd, &pi, &pl))
		return fail(h, errno, "BPF_OBJ_GET_INFO_BY_FD on the program: %s", explain(errno));
	ids->prog = pi.id;
	if ((rc = obj_id(h->sources_fd, &ids->sources)) || (rc = obj_id(h->targets_fd, &ids->targets)) ||
	    (rc = obj_id(h->peers_fd, &ids->peers)) || (rc = obj_id(h->bytes_fd, &ids->bytes)) ||
	    (rc = obj_id(h->stats_fd, &ids->stats)))
		return fail(h, rc, "BPF_OBJ_GET_INFO_BY_FD on a map: %s", explain(rc));
	return 0;
}

static const char *const stat_names[] = {
	[SPLICE_STAT_REDIRECTED] = "redirected",           [SPLICE_STAT_NO_COOKIE] = "no_cookie",
	[SPLICE_STAT_NO_PEER] = "no_peer",                 [SPLICE_STAT_REDIRECT_FAIL] = "redirect_fail",
	[SPLICE_STAT_EMPTY] = "empty",                     [SPLICE_STAT_OVERLAP_TRIMMED] = "overlap_trimmed",
	[SPLICE_STAT_OVERLAP_DROPPED] = "overlap_dropped", [SPLICE_STAT_OVERLAP_FAILED] = "overlap_failed",
};
_Static_assert(sizeof stat_names / sizeof stat_names[0] == SPLICE_STAT__MAX &&
	       SPLICE_STAT__MAX == SOCKMAP_SPLICE_NSTATS, "a name for every splice_stats slot");

const char *sockmap_splice_stat_name(unsigned idx)
{
	return idx < SPLICE_STAT__MAX ? stat_names[idx] : NULL;
}

int sockmap_splice_stats_read(const struct sockmap_splice_handle *h, uint64_t sum[SOCKMAP_SPLICE_NSTATS])
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	uint64_t *v = calloc(ncpu, sizeof *v);
	if (!v)
		return -ENOMEM;
	int rc = 0;
	for (unsigned idx = 0; idx < SPLICE_STAT__MAX && !rc; idx++) {
		sum[idx] = 0;
		if (bpf_map_lookup_elem(h->stats_fd, &idx, v))
			rc = -errno;
		for (int i = 0; i < ncpu && !rc; i++)
			sum[idx] += v[i];
	}
	free(v);
	return rc;
}
