/* reuseport_check — does the SK_REUSEPORT steering program (bpf/reuseport_steer.bpf.c) put each connection
 * on the listener of the CPU that received it, and is that worth anything here?
 *
 *   reuseport_check [--no-bpf|--incoming-cpu] [--conns M] [--listeners N] [--empty-slot K] [--hold]
 *   reuseport_check --bench SECONDS [--clients C] [--first bpf|hash] [--only bpf|hash|incoming_cpu]
 *   reuseport_check --api
 *
 * Check mode: N listeners (default: the number of online CPUs) on 127.0.0.1:PORT with SO_REUSEPORT, the
 * steering program attached (unless --no-bpf) with listener i in slot i (except slot K with --empty-slot K:
 * its connections must take the fallbacks). An acceptor thread per listener, pinned to CPU i % ncpus,
 * accepts and records, by the client's source port, which listener got each connection. Then, for each CPU
 * k this process may run on, a client thread pinned to CPU k makes M connections (default 200) and keeps
 * them open until all have been accepted, so no source port is used twice.
 * On loopback the SYN is sent and processed (softirq) on the client's CPU, so with the program every
 * connection from CPU k must land on listener k % N. --incoming-cpu: no program, but SO_INCOMING_CPU = i
 * on listener i, which the kernel's own selection honours since mainline 6.2 (the same result without BPF).
 * Prints (stdout):
 *   MODE bpf|hash|incoming_cpu listeners=N cpus=C conns_per_cpu=M port=P [empty_slot=K]
 *   LISTENER idx=i cookie=C cpu=c slot=filled|empty|-      (cookie: SO_COOKIE, what bpftool shows in the map)
 *   CPU cpu=k conns=M accepted=A on_own=O listeners=n0,n1,...   (where the connections from CPU k went)
 *   PROGCPU cpu=c by_cpu=.. by_hash=.. kernel=..   (bpf: the program's runs on each CPU = where SYNs ran)
 *   STATS by_cpu=.. by_hash=.. kernel=..
 *   RESULT ok|FAIL ...
 *   HOLD prog_id=.. socks_id=.. stats_id=..   (--hold: listeners and program stay until stdin closes)
 * Exit 0 if every connection was accepted and, with the program (or --incoming-cpu), every connection from
 * a CPU whose slot is filled landed on that CPU's listener and the counters add up; 1 if not; 2 on a setup
 * error; 77 if the program cannot be loaded here (no BPF, no privilege).
 *
 * API mode (--api): the API's refusals with their messages, and the kernel rules behind them
 * (API ... / KERNEL ... lines, RESULT ok|FAIL).
 *
 * Bench mode: for each of "hash" (no program) and "bpf" (program attached), in the order --first says (or
 * only one with --only, which also takes "incoming_cpu": SO_INCOMING_CPU, no program), a fresh group and, per listener, a server worker pinned to its CPU (epoll: accept,
 * read a 1 KB request, write a 1 KB response, close); C client threads per CPU (default 2), pinned, loop
 * connect / send 1 KB / receive 1 KB / close for SECONDS (after a short warm-up). Prints per phase:
 *   BENCH mode=.. secs=.. clients=.. conns=.. conns_per_s=.. same_cpu=.. p50_us=.. p99_us=.. cpu_busy=..
 *         self_cpu=.. cpu_us_per_conn=.. errors=..
 * (same_cpu: fraction of connections whose server worker ran on the client's CPU; cpu_busy: CPUs' worth
 * of busy time, whole machine, from /proc/stat; self_cpu: the same for this process alone (getrusage,
 * which includes the softirq work done in its threads); cpu_us_per_conn: self CPU time per connection,
 * clients and servers together: the cost, less sensitive than conns_per_s to other load on the machine)
 * and, with both phases, RATIO bpf_over_hash=..
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tlsoff/reuseport_steer.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

#define REQ_SIZE 1024
#define MAX_CPUS 1024
#define LAT_BUCKETS 100000 /* 1 us each; slower ones go in the last */

static int ncpus;                 /* online CPUs (sysconf) */
static int cpus[MAX_CPUS], nallowed; /* CPUs this process may run on (affinity mask) */
static int nlisteners;

/* How the group picks a listener for a new connection. */
enum mode { MODE_HASH, MODE_BPF, MODE_INCOMING };
static const char *const mode_name[] = { "hash", "bpf", "incoming_cpu" };

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "reuseport_check: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cpu_allowed(int cpu)
{
	for (int i = 0; i < nallowed; i++)
		if (cpus[i] == cpu)
			return 1;
	return 0;
}

/* Pin the calling thread to one CPU; 0 or an errno. */
static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* ---- the listening group --------------------------------------------------------------------------- */

struct group {
	int n, port, empty_slot;
	int fd[MAX_CPUS];
	struct reuseport_steer *steer; /* NULL: no program */
};

/* N listeners on 127.0.0.1:(ephemeral port), each nonblocking. MODE_BPF: program attached, slots filled
 * except empty_slot (-1: none); exits 77 if the program cannot be loaded. MODE_INCOMING: no program,
 * SO_INCOMING_CPU = i % ncpus on listener i (the kernel prefers, since mainline 6.2, the listener whose
 * incoming CPU is the CPU processing the SYN). */
static void group_open(struct group *g, int n, enum mode mode, int empty_slot)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	char err[512];
	int one = 1;

	memset(g, 0, sizeof *g);
	g->n = n;
	g->empty_slot = empty_slot;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
			die("socket/SO_REUSEPORT: %s", strerror(errno));
		/* the first listener picks the port, the others join it */
		if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
			die("bind 127.0.0.1:%d: %s", ntohs(a.sin_port), strerror(errno));
		if (i == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
			die("getsockname: %s", strerror(errno));
		if (listen(fd, 4096) < 0)
			die("listen: %s", strerror(errno));
		if (mode == MODE_INCOMING) {
			int cpu = i % ncpus;

			if (setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu) < 0)
				die("SO_INCOMING_CPU: %s", strerror(errno));
		}
		g->fd[i] = fd;
	}
	g->port = ntohs(a.sin_port);
	if (mode != MODE_BPF)
		return;
	g->steer = reuseport_steer_open(n, err, sizeof err);
	if (!g->steer) {
		fprintf(stderr, "reuseport_check: %s\n", err);
		exit(77);
	}
	for (int i = 0; i < n; i++)
		if (i != empty_slot && reuseport_steer_set(g->steer, i, g->fd[i]))
			die("%s", reuseport_steer_error(g->steer));
	/* attach through the last listener: any member will do, the program belongs to the group */
	if (reuseport_steer_attach(g->steer, g->fd[n - 1]))
		die("%s", reuseport_steer_error(g->steer));
}

static void group_close(struct group *g)
{
	for (int i = 0; i < g->n; i++)
		close(g->fd[i]);
	reuseport_steer_close(g->steer);
	g->steer = NULL;
}

/* Per-CPU values of stat idx (the program's runs on each CPU); returns the number of CPUs. */
static int percpu_stat(struct group *g, uint32_t idx, uint64_t *v)
{
	struct reuseport_steer_ids ids;
	int n = libbpf_num_possible_cpus(), fd;

	memset(v, 0, sizeof *v * MAX_CPUS);
	if (n <= 0 || n > MAX_CPUS || reuseport_steer_ids(g->steer, &ids))
		return 0;
	fd = bpf_map_get_fd_by_id(ids.stats);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &idx, v))
		n = 0;
	close(fd);
	return n;
}

/* ---- check mode ------------------------------------------------------------------------------------ */

static _Atomic int16_t port_listener[65536]; /* client source port -> listener index + 1 (0: not accepted) */
static atomic_int accepted_total, stop_acceptors;
static int check_port;

struct acceptor {
	pthread_t th;
	struct group *g;
	int idx;
	int *fds, nfds, cap;
};

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	int lfd = a->g->fd[a->idx], cpu = a->idx % ncpus;

	if (cpu_allowed(cpu))
		pin(cpu);
	while (!atomic_load(&stop_acceptors)) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		struct sockaddr_in peer;
		socklen_t plen;
		int fd;

		if (poll(&p, 1, 20) <= 0)
			continue;
		for (;;) {
			plen = sizeof peer;
			fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
			if (fd < 0)
				break;
			if (a->nfds == a->cap) {
				a->cap = a->cap ? 2 * a->cap : 256;
				a->fds = realloc(a->fds, a->cap * sizeof *a->fds);
				if (!a->fds)
					die("out of memory");
			}
			a->fds[a->nfds++] = fd; /* kept open: the port stays unique until the end */
			atomic_store(&port_listener[ntohs(peer.sin_port)], (int16_t)(a->idx + 1));
			atomic_fetch_add(&accepted_total, 1);
		}
	}
	return NULL;
}

struct client {
	pthread_t th;
	int cpu, m, pin_err, connect_err, first_errno;
	int *fds;
	uint16_t *ports;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	a.sin_port = htons(check_port);
	if ((c->pin_err = pin(c->cpu)))
		return NULL;
	sched_yield(); /* make sure we run on c->cpu from here on */
	for (int i = 0; i < c->m; i++) {
		struct sockaddr_in l;
		socklen_t ll = sizeof l;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		c->fds[i] = -1;
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
		    getsockname(fd, (struct sockaddr *)&l, &ll) < 0) {
			if (!c->connect_err++)
				c->first_errno = errno;
			if (fd >= 0)
				close(fd);
			continue;
		}
		c->fds[i] = fd;
		c->ports[i] = ntohs(l.sin_port);
	}
	return NULL;
}

static int run_check(enum mode mode, int m, int empty_slot, int hold)
{
	struct group g;
	struct acceptor *acc;
	struct client *cl;
	int connected = 0, accepted_all = 1, bad = 0, nl = nlisteners;
	uint64_t by_cpu = 0, by_hash = 0, kernel = 0, want_by_cpu = 0, want_fallback = 0;
	double deadline;

	int with_bpf = mode == MODE_BPF;

	group_open(&g, nl, mode, empty_slot);
	check_port = g.port;
	printf("MODE %s listeners=%d cpus=%d conns_per_cpu=%d port=%d", mode_name[mode], nl, ncpus, m,
	       g.port);
	if (with_bpf && empty_slot >= 0)
		printf(" empty_slot=%d", empty_slot);
	printf("\n");
	for (int i = 0; i < nl; i++) {
		uint64_t cookie = 0;
		socklen_t cl_len = sizeof cookie;

		getsockopt(g.fd[i], SOL_SOCKET, SO_COOKIE, &cookie, &cl_len);
		printf("LISTENER idx=%d cookie=%llu cpu=%d slot=%s\n", i, (unsigned long long)cookie, i % ncpus,
		       !with_bpf ? "-" : i == empty_slot ? "empty" : "filled");
	}
	if (nallowed == 1 && nl == 1)
		printf("NOTE one CPU and one listener: every connection necessarily lands on listener 0, so the "
		       "per-CPU check below is trivially true on this machine\n");
	fflush(stdout);

	acc = calloc(nl, sizeof *acc);
	cl = calloc(nallowed, sizeof *cl);
	if (!acc || !cl)
		die("out of memory");
	for (int i = 0; i < nl; i++) {
		acc[i].g = &g;
		acc[i].idx = i;
		if (pthread_create(&acc[i].th, NULL, acceptor_main, &acc[i]))
			die("pthread_create");
	}
	for (int k = 0; k < nallowed; k++) {
		cl[k].cpu = cpus[k];
		cl[k].m = m;
		cl[k].fds = calloc(m, sizeof *cl[k].fds);
		cl[k].ports = calloc(m, sizeof *cl[k].ports);
		if (!cl[k].fds || !cl[k].ports)
			die("out of memory");
		if (pthread_create(&cl[k].th, NULL, client_main, &cl[k]))
			die("pthread_create");
	}
	for (int k = 0; k < nallowed; k++) {
		pthread_join(cl[k].th, NULL);
		if (cl[k].pin_err)
			die("cannot pin a client thread to CPU %d: %s", cl[k].cpu, strerror(cl[k].pin_err));
		if (cl[k].connect_err) {
			printf("# CPU %d: %d connects failed (first: %s)\n", cl[k].cpu, cl[k].connect_err,
			       strerror(cl[k].first_errno));
			bad = 1;
		}
		connected += m - cl[k].connect_err;
	}
	/* Every connect() returned: the connections are in some accept queue. Wait for the acceptors. */
	deadline = now_s() + 10;
	while (atomic_load(&accepted_total) < connected && now_s() < deadline)
		usleep(5000);
	atomic_store(&stop_acceptors, 1);
	for (int i = 0; i < nl; i++)
		pthread_join(acc[i].th, NULL);

	for (int k = 0; k < nallowed; k++) {
		int own = cl[k].cpu % nl, n_acc = 0, on_own = 0, *per = calloc(nl, sizeof *per);
		/* where every connection must land: the CPU's slot is filled, or the listener says SO_INCOMING_CPU */
		int filled = (with_bpf && own != empty_slot) || (mode == MODE_INCOMING && cl[k].cpu < nl);

		if (!per)
			die("out of memory");
		for (int i = 0; i < m; i++) {
			int l;

			if (cl[k].fds[i] < 0)
				continue;
			l = atomic_load(&port_listener[cl[k].ports[i]]) - 1;
			if (l < 0)
				continue;
			n_acc++;
			per[l]++;
			on_own += l == own;
		}
		printf("CPU cpu=%d conns=%d accepted=%d on_own=%d listeners=", cl[k].cpu, m - cl[k].connect_err,
		       n_acc, on_own);
		for (int i = 0; i < nl; i++)
			printf("%s%d", i ? "," : "", per[i]);
		printf("\n");
		if (n_acc != m - cl[k].connect_err) {
			printf("# CPU %d: %d connections were never accepted (lost)\n", cl[k].cpu,
			       m - cl[k].connect_err - n_acc);
			accepted_all = 0;
		}
		if (filled && on_own != n_acc) {
			printf("# CPU %d: %d of %d connections did not land on listener %d although its slot is filled\n",
			       cl[k].cpu, n_acc - on_own, n_acc, own);
			bad = 1;
		}
		if (filled)
			want_by_cpu += m - cl[k].connect_err;
		else
			want_fallback += m - cl[k].connect_err;
		free(per);
	}
	if (with_bpf) {
		uint64_t pc[3][MAX_CPUS];
		int np = 0;

		for (uint32_t s = 0; s < 3; s++)
			np = percpu_stat(&g, s, pc[s]);
		for (int c = 0; c < np; c++)
			if (pc[0][c] || pc[1][c] || pc[2][c])
				printf("PROGCPU cpu=%d by_cpu=%llu by_hash=%llu kernel=%llu\n", c,
				       (unsigned long long)pc[0][c], (unsigned long long)pc[1][c],
				       (unsigned long long)pc[2][c]);
		if (reuseport_steer_stats(g.steer, &by_cpu, &by_hash) || reuseport_steer_unsteered(g.steer, &kernel))
			die("%s", reuseport_steer_error(g.steer));
		printf("STATS by_cpu=%llu by_hash=%llu kernel=%llu\n", (unsigned long long)by_cpu,
		       (unsigned long long)by_hash, (unsigned long long)kernel);
		if (by_cpu != want_by_cpu || by_hash + kernel != want_fallback) {
			printf("# counters: expected by_cpu=%llu and by_hash+kernel=%llu (one program run per SYN)\n",
			       (unsigned long long)want_by_cpu, (unsigned long long)want_fallback);
			bad = 1;
		}
	}
	bad |= !accepted_all;
	printf("RESULT %s accepted=%d/%d\n", bad ? "FAIL" : "ok", atomic_load(&accepted_total), connected);
	fflush(stdout);

	for (int k = 0; k < nallowed; k++) {
		for (int i = 0; i < m; i++)
			if (cl[k].fds[i] >= 0)
				close(cl[k].fds[i]);
		free(cl[k].fds);
		free(cl[k].ports);
	}
	for (int i = 0; i < nl; i++) {
		for (int j = 0; j < acc[i].nfds; j++)
			close(acc[i].fds[j]);
		free(acc[i].fds);
	}
	if (hold) {
		struct reuseport_steer_ids ids = { 0 };
		char buf[256];

		if (g.steer && reuseport_steer_ids(g.steer, &ids))
			die("%s", reuseport_steer_error(g.steer));
		printf("HOLD prog_id=%u socks_id=%u stats_id=%u (listening until stdin closes)\n", ids.prog, ids.socks,
		       ids.stats);
		fflush(stdout);
		while (read(0, buf, sizeof buf) > 0)
			;
	}
	group_close(&g);
	free(acc);
	free(cl);
	return bad ? 1 : 0;
}

/* ---- bench mode ------------------------------------------------------------------------------------ */

static atomic_int bench_stop, bench_measuring, server_stop;

struct server {
	pthread_t th;
	int fd, cpu;
	long served, same_cpu, errors;
};

struct conn {
	int fd, got;
	char buf[REQ_SIZE];
};

/* Read what the request has; 1 when the connection is finished (served or failed), 0 to wait for more. */
static int serve(struct server *s, struct conn *c)
{
	static const char resp[REQ_SIZE];

	for (;;) {
		ssize_t r = read(c->fd, c->buf + c->got, REQ_SIZE - c->got);

		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			s->errors++;
			return 1;
		}
		c->got += r;
		if (c->got == REQ_SIZE)
			break;
	}
	if (write(c->fd, resp, sizeof resp) != (ssize_t)sizeof resp)
		s->errors++;
	s->served++;
	{
		int32_t cpu;

		memcpy(&cpu, c->buf, sizeof cpu);
		s->same_cpu += cpu == s->cpu;
	}
	return 1;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (cpu_allowed(s->cpu))
		pin(s->cpu);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		die("epoll: %s", strerror(errno));
	while (!atomic_load(&server_stop)) {
		int n = epoll_wait(ep, evs, 64, 20);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) { /* the listener */
				int fd;

				while ((fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = malloc(sizeof *c);
					if (!c)
						die("out of memory");
					c->fd = fd;
					c->got = 0;
					if (serve(s, c)) {
						close(fd);
						free(c);
						continue;
					}
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
						die("epoll_ctl: %s", strerror(errno));
				}
				continue;
			}
			if (serve(s, c)) {
				close(c->fd); /* also removes it from the epoll set */
				free(c);
			}
		}
	}
	close(ep);
	return NULL;
}

struct bclient {
	pthread_t th;
	int cpu, port, pin_err;
	long conns, errors;
	int first_errno;
	uint32_t *lat; /* LAT_BUCKETS */
};

static void *bclient_main(void *arg)
{
	struct bclient *c = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[REQ_SIZE] = { 0 }, resp[REQ_SIZE];

	a.sin_port = htons(c->port);
	{
		int32_t cpu = c->cpu;

		memcpy(req, &cpu, sizeof cpu);
	}
	if ((c->pin_err = pin(c->cpu)))
		return NULL;
	while (!atomic_load(&bench_stop)) {
		struct timespec t0, t1;
		int fd, got = 0, ok = 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		    write(fd, req, sizeof req) == (ssize_t)sizeof req) {
			ssize_t r;

			while (got < REQ_SIZE && (r = read(fd, resp + got, REQ_SIZE - got)) > 0)
				got += r;
			ok = got == REQ_SIZE;
		}
		if (!ok && !c->errors++)
			c->first_errno = errno;
		if (fd >= 0)
			close(fd);
		if (!ok) {
			usleep(1000); /* e.g. no free local port: don't spin */
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (atomic_load(&bench_measuring)) {
			long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;

			c->conns++;
			c->lat[us < LAT_BUCKETS ? us : LAT_BUCKETS - 1]++;
		}
	}
	return NULL;
}

/* CPU time (user + system, all threads) of this process, in seconds. With tick accounting the softirq
 * work done in our threads' context (most of loopback's packet processing) is charged to us as well. */
static double self_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Busy and total jiffies of the whole machine (first line of /proc/stat). */
static void cpu_times(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	*busy = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		for (int i = 0; i < 8; i++) /* user nice system idle iowait irq softirq steal */
			*total += v[i];
		*busy = *total - v[3] - v[4];
	}
	fclose(f);
}

static double bench_phase(enum mode mode, double secs, int per_cpu)
{
	struct group g;
	struct server *srv;
	struct bclient *cl;
	int ncl = nallowed * per_cpu, nl = nlisteners;
	long conns = 0, errors = 0, served = 0, same = 0, srv_err = 0;
	uint64_t *lat = calloc(LAT_BUCKETS, sizeof *lat), by_cpu = 0, by_hash = 0, kernel = 0;
	unsigned long long b0, t0, b1, t1;
	double warm = secs / 5 < 1 ? secs / 5 : 1, start, end, rate, busy, self0, self1;
	long p50 = -1, p99 = -1, seen = 0;
	int first_errno = 0;

	group_open(&g, nl, mode, -1);
	atomic_store(&bench_stop, 0);
	atomic_store(&bench_measuring, 0);
	atomic_store(&server_stop, 0);
	srv = calloc(nl, sizeof *srv);
	cl = calloc(ncl, sizeof *cl);
	if (!srv || !cl || !lat)
		die("out of memory");
	for (int i = 0; i < nl; i++) {
		srv[i].fd = g.fd[i];
		srv[i].cpu = i % ncpus;
		if (pthread_create(&srv[i].th, NULL, server_main, &srv[i]))
			die("pthread_create");
	}
	for (int i = 0; i < ncl; i++) {
		cl[i].cpu = cpus[i % nallowed];
		cl[i].port = g.port;
		cl[i].lat = calloc(LAT_BUCKETS, sizeof *cl[i].lat);
		if (!cl[i].lat)
			die("out of memory");
		if (pthread_create(&cl[i].th, NULL, bclient_main, &cl[i]))
			die("pthread_create");
	}
	usleep(warm * 1e6);
	cpu_times(&b0, &t0);
	self0 = self_cpu_s();
	start = now_s();
	atomic_store(&bench_measuring, 1);
	usleep(secs * 1e6);
	atomic_store(&bench_measuring, 0);
	end = now_s();
	self1 = self_cpu_s();
	cpu_times(&b1, &t1);
	atomic_store(&bench_stop, 1);
	for (int i = 0; i < ncl; i++) {
		pthread_join(cl[i].th, NULL);
		if (cl[i].pin_err)
			die("cannot pin a client thread to CPU %d: %s", cl[i].cpu, strerror(cl[i].pin_err));
		conns += cl[i].conns;
		if (cl[i].errors && !errors)
			first_errno = cl[i].first_errno;
		errors += cl[i].errors;
		for (int b = 0; b < LAT_BUCKETS; b++)
			lat[b] += cl[i].lat[b];
		free(cl[i].lat);
	}
	atomic_store(&server_stop, 1);
	for (int i = 0; i < nl; i++) {
		pthread_join(srv[i].th, NULL);
		served += srv[i].served;
		same += srv[i].same_cpu;
		srv_err += srv[i].errors;
	}
	if (g.steer && (reuseport_steer_stats(g.steer, &by_cpu, &by_hash) || reuseport_steer_unsteered(g.steer, &kernel)))
		die("%s", reuseport_steer_error(g.steer));
	group_close(&g);
	for (int b = 0; b < LAT_BUCKETS; b++) {
		seen += lat[b];
		if (p50 < 0 && seen * 2 >= conns)
			p50 = b;
		if (p99 < 0 && seen * 100 >= conns * 99)
			p99 = b;
	}
	rate = conns / (end - start);
	busy = t1 > t0 ? (double)(b1 - b0) / (t1 - t0) * ncpus : 0;
	printf("BENCH mode=%s secs=%.1f clients=%d conns=%ld conns_per_s=%.0f same_cpu=%.3f p50_us=%ld p99_us=%ld "
	       "cpu_busy=%.2f self_cpu=%.2f cpu_us_per_conn=%.1f errors=%ld", mode_name[mode], end - start,
	       ncl, conns, rate, served ? (double)same / served : 0, p50, p99, busy, (self1 - self0) / (end - start),
	       conns ? (self1 - self0) * 1e6 / conns : 0, errors + srv_err);
	if (mode == MODE_BPF)
		printf(" by_cpu=%llu by_hash=%llu kernel=%llu", (unsigned long long)by_cpu, (unsigned long long)by_hash,
		       (unsigned long long)kernel);
	printf("\n");
	if (errors)
		printf("# %ld client errors (first: %s)\n", errors, strerror(first_errno));
	fflush(stdout);
	free(lat);
	free(srv);
	free(cl);
	return rate;
}

/* ---- api mode: the API's refusals, and the kernel rules behind them ------------------------------------ */

static int api_bad;

static void expect(const char *what, int rc, int want, const char *msg)
{
	printf("API %s: %s", what, rc ? strerrorname_np(-rc) : "0");
	if (rc != want)
		printf(" -> WRONG, expected %s", want ? strerrorname_np(-want) : "0");
	printf("\n");
	if (msg && rc)
		printf("    message: %s\n", msg);
	api_bad |= rc != want;
}

static void kernel_fact(const char *what, int got, int want)
{
	printf("KERNEL %s: %s%s\n", what, got ? strerrorname_np(got) : "success",
	       got == want ? "" : " (UNEXPECTED on this kernel)");
	api_bad |= got != want;
}

/* A TCP socket on 127.0.0.1:*port (0: pick one, written back), SO_REUSEPORT if reuse, listening if lis. */
static int mksock(int *port, int reuse, int lis)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(*port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuse, sizeof reuse) < 0) ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &alen) < 0 ||
	    (lis && listen(fd, 16) < 0))
		die("socket/bind/listen on 127.0.0.1:%d: %s", *port, strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

static int run_api(void)
{
	struct reuseport_steer *s;
	struct reuseport_steer_ids ids;
	char err[512];
	int p1 = 0, p2, p3 = 0, a, b, c, d, e, map_fd, prog_fd, rc;
	uint32_t key;
	uint64_t val, cookie;

	s = reuseport_steer_open(0, err, sizeof err);
	expect("open(0 listeners)", s ? 0 : -EINVAL, -EINVAL, err);
	s = reuseport_steer_open(2, err, sizeof err);
	if (!s) {
		fprintf(stderr, "reuseport_check: %s\n", err);
		exit(77);
	}
	if (reuseport_steer_ids(s, &ids))
		die("%s", reuseport_steer_error(s));
	map_fd = bpf_map_get_fd_by_id(ids.socks);
	prog_fd = bpf_prog_get_fd_by_id(ids.prog);
	if (map_fd < 0 || prog_fd < 0)
		die("cannot reopen the map/program by id: %s", strerror(errno));

	/* bound with SO_REUSEPORT, not listening */
	a = mksock(&p1, 1, 0);
	expect("set(bound, not listening)", reuseport_steer_set(s, 0, a), -EINVAL, reuseport_steer_error(s));
	expect("attach(bound, not listening)", reuseport_steer_attach(s, a), -EINVAL, reuseport_steer_error(s));
	key = 0;
	val = a;
	kernel_fact("REUSEPORT_SOCKARRAY update with a bound, not listening TCP socket",
		    bpf_map_update_elem(map_fd, &key, &val, BPF_ANY) ? errno : 0, EINVAL);
	/* the raw attach before listen(), with a second socket bound to the same address */
	p2 = p1;
	b = mksock(&p2, 1, 0);
	rc = setsockopt(a, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog_fd, sizeof prog_fd) ? errno : 0;
	kernel_fact("SO_ATTACH_REUSEPORT_EBPF on a bound, not listening socket", rc, 0);
	kernel_fact("listen() of that socket when another socket is bound to the address",
		    listen(a, 16) ? errno : 0, EADDRINUSE);
	kernel_fact("listen() of the other socket (no program of its own)", listen(b, 16) ? errno : 0, 0);
	close(a);
	close(b);

	c = mksock(&p3, 1, 1);
	d = mksock(&p3, 1, 1);
	expect("set(slot 2 of 2)", reuseport_steer_set(s, 2, c), -EINVAL, reuseport_steer_error(s));
	expect("set(slot 0, listening)", reuseport_steer_set(s, 0, c), 0, NULL);
	expect("set(slot 1, same socket again)", reuseport_steer_set(s, 1, c), -EBUSY, reuseport_steer_error(s));
	expect("set(slot 1, listening)", reuseport_steer_set(s, 1, d), 0, NULL);
	p2 = 0;
	e = mksock(&p2, 0, 1);
	expect("set(listening, no SO_REUSEPORT)", reuseport_steer_set(s, 1, e), -EINVAL, reuseport_steer_error(s));
	expect("attach(listening, no SO_REUSEPORT)", reuseport_steer_attach(s, e), -EINVAL, reuseport_steer_error(s));
	close(e);
	expect("attach(listening member)", reuseport_steer_attach(s, d), 0, NULL);
	expect("set(slot 1, -1) empties it", reuseport_steer_set(s, 1, -1), 0, NULL);
	key = 1;
	kernel_fact("lookup of the emptied slot", bpf_map_lookup_elem(map_fd, &key, &cookie) ? errno : 0, ENOENT);
	expect("set(slot 1, -1) again", reuseport_steer_set(s, 1, -1), 0, NULL);
	expect("detach", reuseport_steer_detach(s, c), 0, NULL);
	rc = 0;
	kernel_fact("SO_DETACH_REUSEPORT_BPF after detach (the group has no program left)",
		    setsockopt(c, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &rc, sizeof rc) ? errno : 0, ENOENT);
	expect("detach again (no program: not an error)", reuseport_steer_detach(s, c), 0, NULL);
	key = 0;
	kernel_fact("lookup of slot 0 (listening socket: its cookie)", bpf_map_lookup_elem(map_fd, &key, &cookie) ? errno : 0, 0);
	close(c);
	kernel_fact("lookup of slot 0 after close() of its listener (the kernel empties it)",
		    bpf_map_lookup_elem(map_fd, &key, &cookie) ? errno : 0, ENOENT);
	close(d);
	close(map_fd);
	close(prog_fd);
	reuseport_steer_close(s);
	printf("RESULT %s\n", api_bad ? "FAIL" : "ok");
	return api_bad ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------------------ */

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr, "usage: reuseport_check [--no-bpf|--incoming-cpu] [--conns M] [--listeners N] [--empty-slot K] "
			"[--hold]\n"
			"       reuseport_check --bench SECONDS [--clients C] [--first bpf|hash] "
			"[--only bpf|hash|incoming_cpu] [--listeners N]\n"
			"       reuseport_check --api\n");
	exit(2);
}

static enum mode parse_mode(const char *s)
{
	for (int m = MODE_HASH; m <= MODE_INCOMING; m++)
		if (!strcmp(s, mode_name[m]))
			return m;
	usage();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-bpf", no_argument, NULL, 'n' },     { "incoming-cpu", no_argument, NULL, 'i' },
		{ "conns", required_argument, NULL, 'm' }, { "listeners", required_argument, NULL, 'l' },
		{ "empty-slot", required_argument, NULL, 'e' }, { "hold", no_argument, NULL, 'H' },
		{ "bench", required_argument, NULL, 'b' }, { "clients", required_argument, NULL, 'c' },
		{ "first", required_argument, NULL, 'f' }, { "only", required_argument, NULL, 'o' },
		{ "api", no_argument, NULL, 'A' },        { NULL, 0, NULL, 0 },
	};
	enum mode mode = MODE_BPF, first = MODE_HASH;
	int m = 200, empty_slot = -1, hold = 0, per_cpu = 2, only = -1, api = 0, opt;
	double bench = 0;
	cpu_set_t set;
	struct rlimit rl;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': mode = MODE_HASH; break;
		case 'i': mode = MODE_INCOMING; break;
		case 'm': m = atoi(optarg); break;
		case 'l': nlisteners = atoi(optarg); break;
		case 'e': empty_slot = atoi(optarg); break;
		case 'H': hold = 1; break;
		case 'A': api = 1; break;
		case 'b': bench = atof(optarg); break;
		case 'c': per_cpu = atoi(optarg); break;
		case 'f':
			first = parse_mode(optarg);
			if (first == MODE_INCOMING)
				usage();
			break;
		case 'o': only = parse_mode(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || m <= 0 || per_cpu <= 0 || bench < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus <= 0 || ncpus > MAX_CPUS)
		die("cannot count the online CPUs (or more than %d)", MAX_CPUS);
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		die("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE && nallowed < MAX_CPUS; c++)
		if (CPU_ISSET(c, &set))
			cpus[nallowed++] = c;
	if (!nlisteners)
		nlisteners = ncpus;
	if (nlisteners < 1 || nlisteners > MAX_CPUS || empty_slot >= nlisteners)
		usage();
	/* check mode keeps 2 fds per connection open at once */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (api)
		return run_api();
	if (!bench)
		return run_check(mode, m, empty_slot, hold);

	if (mode != MODE_BPF && only < 0)
		only = mode; /* --no-bpf / --incoming-cpu with --bench: that phase alone */
	printf("# bench: %d listeners, %d CPUs, %d clients per CPU, %.1f s per phase, 1 KB request + 1 KB response "
	       "per connection\n", nlisteners, ncpus, per_cpu, bench);
	if (only >= 0) {
		bench_phase(only, bench, per_cpu);
	} else {
		enum mode second = first == MODE_BPF ? MODE_HASH : MODE_BPF;
		double r1 = bench_phase(first, bench, per_cpu), r2 = bench_phase(second, bench, per_cpu);
		double r_bpf = first == MODE_BPF ? r1 : r2, r_hash = first == MODE_BPF ? r2 : r1;

		printf("RATIO bpf_over_hash=%.3f\n", r_hash > 0 ? r_bpf / r_hash : 0);
	}
	return 0;
}
