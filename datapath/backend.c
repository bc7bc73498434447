/* backend.c — choose a backend server and start a non-blocking connect to it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

/* attempt 0 picks by the balance policy; attempt k > 0 takes the next server after `previous`, so a failed
 * connect moves on until every server was tried once. Returns the server index. */
int backend_pick(struct backend_rt *be, unsigned attempt, int previous)
{
	unsigned n = be->conf.nservers;
	if (attempt > 0)
		return (int)(((unsigned)previous + 1) % n);
	unsigned start = atomic_fetch_add_explicit(&be->rr, 1, memory_order_relaxed) % n;
	if (be->conf.balance == BALANCE_ROUNDROBIN)
		return (int)start;
	int best = (int)start;
	for (unsigned k = 1; k < n; k++) {   /* least connections; ties broken by the round-robin start */
		unsigned i = (start + k) % n;
		if (atomic_load_explicit(&be->active[i], memory_order_relaxed) <
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
