/* backend.c — choose a backend server and start a non-blocking connect to it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

static bool drained(const struct backend_rt *be, unsigned i)
{
	return be->conf.drained & (1ull << i);
}

/* Servers that take new connections (not drained). */
unsigned backend_usable(const struct backend_rt *be)
{
	return be->conf.nservers - (unsigned)__builtin_popcountll(be->conf.drained);
}

/* The first server at or after i (cyclically) that is not drained; callers checked backend_usable(). */
static unsigned next_usable(const struct backend_rt *be, unsigned i)
{
	while (drained(be, i % be->conf.nservers))
		i++;
	return i % be->conf.nservers;
}

/* attempt 0 picks by the balance policy; attempt k > 0 takes the next usable server after `previous`, so a
 * failed connect moves on until every usable server was tried once. Drained servers are skipped. Returns the
 * server index; the caller checked backend_usable() > 0. */
int backend_pick(struct backend_rt *be, unsigned attempt, int previous)
{
	unsigned n = be->conf.nservers;
	if (attempt > 0)
		return (int)next_usable(be, (unsigned)previous + 1);
	unsigned start = next_usable(be, atomic_fetch_add_explicit(&be->rr, 1, memory_order_relaxed) % n);
	if (be->conf.balance == BALANCE_ROUNDROBIN)
		return (int)start;
	int best = (int)start;
	for (unsigned k = 1; k < n; k++) {   /* least connections; ties broken by the round-robin start */
		unsigned i = (start + k) % n;
		if (!drained(be, i) && atomic_load_explicit(&be->active[i], memory_order_relaxed) <
		    atomic_load_explicit(&be->active[best], memory_order_relaxed))
			best = (int)i;
	}
	return best;
}

/* Returns 0 (connected or in progress: wait for writability) or -errno. */
int backend_connect(const struct tlsoff_addr *a, int *fd)
{
	int s = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		return -errno;
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(s);
		return -e;
	}
	*fd = s;
	return 0;
}
