/* reuseport_steer.c — loader and API for bpf/reuseport_steer.bpf.c (include/tlsoff/reuseport_steer.h).
 *
 * The skeleton generated from reuseport_steer.bpf.c is named "struct reuseport_steer", which is also the
 * name of this API's opaque handle; the skeleton is included under another name (see the #define below).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "reuseport_steer.h"
#define reuseport_steer reuseport_steer_skel /* the skeleton's struct, renamed; its functions keep their names */
#include "reuseport_steer.skel.h"
#undef reuseport_steer
#include "tlsoff/reuseport_steer.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif
/* The kernel's internal ENOTSUPP leaks to user space from bpf() (e.g. a socket type the map refuses). */
#define ENOTSUPP_KERNEL 524

struct reuseport_steer {
	struct reuseport_steer_skel *skel;
	unsigned nsocks;
	int prog_fd, socks_fd, stats_fd;
	char err[512];
};

static int fail(struct reuseport_steer *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct reuseport_steer *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return err > 0 ? -err : err;
}

/* What an errno from loading the program or creating its maps means, and what to do about it. */
static const char *explain_load(int err)
{
	switch (err < 0 ? -err : err) {
	case EPERM:
	case EACCES:
		return "permission denied: an SK_REUSEPORT program and a REUSEPORT_SOCKARRAY need CAP_BPF and "
		       "CAP_NET_ADMIN (or root); also check sysctl kernel.unprivileged_bpf_disabled and any LSM policy";
	case ENOMEM:
		return "out of memory for BPF maps (kernels before 5.11 charge them to RLIMIT_MEMLOCK: raise it)";
	case EINVAL:
	case ENOTSUPP_KERNEL:
		return "the kernel does not know SK_REUSEPORT programs, REUSEPORT_SOCKARRAY maps or read-only global "
		       "data (needs 5.2+ with CONFIG_BPF_SYSCALL; libbpf printed the verifier's reason above if it got "
		       "that far)";
	case ENOSYS:
		return "this kernel has no bpf() system call (CONFIG_BPF_SYSCALL off)";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

static int sockopt_int(int fd, int level, int name, int *v)
{
	socklen_t len = sizeof *v;

	return getsockopt(fd, level, name, v, &len) < 0 ? -errno : 0;
}

/* A listening TCP socket with SO_REUSEPORT, or a message saying which of these it is not. */
static int check_listener(struct reuseport_steer *s, int fd, const char *what)
{
	int type = 0, proto = 0, reuse = 0, listening = 0, rc;

	if ((rc = sockopt_int(fd, SOL_SOCKET, SO_TYPE, &type)))
		return fail(s, rc, "%s: fd %d is not a socket: %s", what, fd, strerror(-rc));
	if ((rc = sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &proto)))
		return fail(s, rc, "%s: fd %d: SO_PROTOCOL: %s", what, fd, strerror(-rc));
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return fail(s, EINVAL, "%s: fd %d is not a TCP socket", what, fd);
	if ((rc = sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, &reuse)))
		return fail(s, rc, "%s: fd %d: SO_REUSEPORT: %s", what, fd, strerror(-rc));
	if (!reuse)
		return fail(s, EINVAL, "%s: fd %d has no SO_REUSEPORT: set it before bind(), on every listener of "
			    "the group", what, fd);
	if ((rc = sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening)))
		return fail(s, rc, "%s: fd %d: SO_ACCEPTCONN: %s", what, fd, strerror(-rc));
	if (!listening)
		return fail(s, EINVAL, "%s: fd %d is not listening yet: a TCP socket joins its reuseport group at "
			    "listen(), and only then can it go into a REUSEPORT_SOCKARRAY or carry the group's program "
			    "(call listen() first)", what, fd);
	return 0;
}

struct reuseport_steer *reuseport_steer_open(unsigned nsocks, char *err, size_t errlen)
{
	struct reuseport_steer *s;
	const char *step;
	int rc;

	if (nsocks == 0 || nsocks > STEER_MAX_SOCKS) {
		snprintf(err, errlen, "reuseport_steer: %u listeners: the group must have 1 to %u", nsocks,
			 STEER_MAX_SOCKS);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "reuseport_steer: out of memory");
		return NULL;
	}
	s->nsocks = nsocks;
	s->skel = reuseport_steer__open();
	if (!s->skel) {
		rc = -errno;
		step = "open the embedded BPF object";
		goto out;
	}
	s->skel->rodata->nsocks = nsocks;
	if ((rc = bpf_map__set_max_entries(s->skel->maps.steer_socks, nsocks))) {
		step = "size the REUSEPORT_SOCKARRAY";
		goto out;
	}
	rc = reuseport_steer__load(s->skel);
	if (rc) {
		step = "load the REUSEPORT_SOCKARRAY and the SK_REUSEPORT program";
		goto out;
	}
	s->prog_fd = bpf_program__fd(s->skel->progs.steer);
	s->socks_fd = bpf_map__fd(s->skel->maps.steer_socks);
	s->stats_fd = bpf_map__fd(s->skel->maps.steer_stats);
	return s;
out:
	snprintf(err, errlen, "reuseport_steer: cannot %s: %s", step, explain_load(rc));
	reuseport_steer_close(s);
	return NULL;
}

void reuseport_steer_close(struct reuseport_steer *s)
{
	if (!s)
		return;
	/* Drops our references only: a group the program is attached to keeps it (and its maps) alive. */
	reuseport_steer__destroy(s->skel);
	free(s);
}

const char *reuseport_steer_error(const struct reuseport_steer *s)
{
	return s->err;
}

int reuseport_steer_set(struct reuseport_steer *s, unsigned i, int listen_fd)
{
	uint32_t key = i;
	uint64_t value = (uint64_t)listen_fd;
	int rc, e;

	if (i >= s->nsocks)
		return fail(s, EINVAL, "slot %u: the group was opened for %u listeners (slots 0-%u)", i, s->nsocks,
			    s->nsocks - 1);
	if (listen_fd < 0) {
		if (bpf_map_delete_elem(s->socks_fd, &key) && errno != ENOENT)
			return fail(s, errno, "slot %u: cannot empty it: %s", i, strerror(errno));
		return 0;
	}
	if ((rc = check_listener(s, listen_fd, "reuseport_steer_set")))
		return rc;
	if (bpf_map_update_elem(s->socks_fd, &key, &value, BPF_ANY) == 0)
		return 0;
	e = errno;
	switch (e) {
	case EBUSY:
		return fail(s, e, "slot %u: fd %d is already in a REUSEPORT_SOCKARRAY (this one, another slot, or "
			    "another program's; a socket can be in one slot only), or it carries other kernel user data",
			    i, listen_fd);
	case EINVAL:
		return fail(s, e, "slot %u: the kernel refused fd %d (it needs a TCP or UDP socket, hashed — i.e. "
			    "listening for TCP — with SO_REUSEPORT)", i, listen_fd);
	case ENOTSUPP_KERNEL:
	case EOPNOTSUPP:
		return fail(s, e, "slot %u: fd %d: only TCP/UDP sockets over IPv4/IPv6 can be steered", i, listen_fd);
	case EPERM:
	case EACCES:
		return fail(s, e, "slot %u: permission denied updating the map (CAP_NET_ADMIN needed)", i);
	default:
		return fail(s, e, "slot %u: cannot put fd %d in the REUSEPORT_SOCKARRAY: %s", i, listen_fd,
			    strerror(e));
	}
}

int reuseport_steer_attach(struct reuseport_steer *s, int listen_fd)
{
	int rc;

	if ((rc = check_listener(s, listen_fd, "reuseport_steer_attach")))
		return rc;
	if (setsockopt(listen_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &s->prog_fd, sizeof s->prog_fd) == 0)
		return 0;
	rc = errno;
	if (rc == EPERM || rc == EACCES)
		return fail(s, rc, "SO_ATTACH_REUSEPORT_EBPF on fd %d: permission denied", listen_fd);
	return fail(s, rc, "SO_ATTACH_REUSEPORT_EBPF on fd %d: %s (the kernel needs a socket bound with "
		    "SO_REUSEPORT, and 4.19+ for an SK_REUSEPORT program)", listen_fd, strerror(rc));
}

int reuseport_steer_detach(struct reuseport_steer *s, int listen_fd)
{
	int dummy = 0, rc;

	if (setsockopt(listen_fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &dummy, sizeof dummy) == 0 || errno == ENOENT)
		return 0; /* ENOENT: the group had no program */
	rc = errno;
	if (!s)
		return -rc;
	if (rc == ENOPROTOOPT)
		return fail(s, rc, "SO_DETACH_REUSEPORT_BPF on fd %d: unknown to this kernel (5.3+); closing every "
			    "listener of the group is the only way to remove the program", listen_fd);
	return fail(s, rc, "SO_DETACH_REUSEPORT_BPF on fd %d: %s (is it a listener with SO_REUSEPORT?)", listen_fd,
		    strerror(rc));
}

static int stat_sum(struct reuseport_steer *s, uint32_t idx, uint64_t *value)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (ncpu <= 0)
		return fail(s, ncpu, "cannot count possible CPUs: %s", strerror(-ncpu));
	v = calloc(ncpu, sizeof *v);
	if (!v)
		return fail(s, ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(s->stats_fd, &idx, v)) {
		int e = errno;

		free(v);
		return fail(s, e, "reading the steer_stats map: %s", strerror(e));
	}
	*value = 0;
	for (int i = 0; i < ncpu; i++)
		*value += v[i];
	free(v);
	return 0;
}

int reuseport_steer_stats(struct reuseport_steer *s, uint64_t *by_cpu, uint64_t *by_hash)
{
	uint64_t c, h;
	int rc;

	if ((rc = stat_sum(s, STEER_STAT_BY_CPU, &c)) || (rc = stat_sum(s, STEER_STAT_BY_HASH, &h)))
		return rc;
	if (by_cpu)
		*by_cpu = c;
	if (by_hash)
		*by_hash = h;
	return 0;
}

int reuseport_steer_unsteered(struct reuseport_steer *s, uint64_t *kernel)
{
	return stat_sum(s, STEER_STAT_KERNEL, kernel);
}

int reuseport_steer_ids(struct reuseport_steer *s, struct reuseport_steer_ids *ids)
{
	struct bpf_prog_info pi = { 0 };
	struct bpf_map_info mi = { 0 };
	uint32_t len;

	len = sizeof pi;
	if (bpf_obj_get_info_by_fd(s->prog_fd, &pi, &len))
		return fail(s, errno, "BPF_OBJ_GET_INFO_BY_FD on the program: %s", strerror(errno));
	ids->prog = pi.id;
	len = sizeof mi;
	if (bpf_obj_get_info_by_fd(s->socks_fd, &mi, &len))
		return fail(s, errno, "BPF_OBJ_GET_INFO_BY_FD on steer_socks: %s", strerror(errno));
	ids->socks = mi.id;
	memset(&mi, 0, sizeof mi);
	len = sizeof mi;
	if (bpf_obj_get_info_by_fd(s->stats_fd, &mi, &len))
		return fail(s, errno, "BPF_OBJ_GET_INFO_BY_FD on steer_stats: %s", strerror(errno));
	ids->stats = mi.id;
	return 0;
}
