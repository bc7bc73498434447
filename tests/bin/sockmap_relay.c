/* sockmap_relay — a TCP relay whose bytes never touch user space (tlsoff's sockmap building block).
 *
 *   sockmap_relay LISTEN_PORT BACKEND_PORT NCONNS [PAIR_DELAY_MS]
 *
 * Listens on 127.0.0.1:LISTEN_PORT; for each client connects to 127.0.0.1:BACKEND_PORT and joins the two
 * sockets with sockmap_splice_pair(). From then on it only polls for POLLRDHUP/POLLERR/POLLHUP:
 *  - POLLRDHUP on one side (its FIN arrived: the kernel does not forward it through the redirect) ->
 *    sockmap_splice_shutdown_wr() on the other side once every redirected byte is queued there;
 *  - POLLERR / unexpected POLLHUP (reset) -> close both.
 * PAIR_DELAY_MS waits between connect and pair, so bytes pile up before pairing (tests the kick).
 * Exits after NCONNS connections have finished. Prints (stdout):
 *   READY prog_id=N sources_id=N targets_id=N bytes_id=N   (kernel ids, for bpftool)
 *   CONN client_port=P backend_port=Q client_in=.. client_out=.. backend_in=.. backend_out=.. end=fin|error
 *   STATS redirected=.. no_cookie=.. no_peer=.. redirect_fail=.. empty=.. overlap_trimmed=.. overlap_dropped=..
 *         overlap_failed=.. cut=0|1 (whether the verdict cuts retransmitted overlaps on this kernel)
 *   CPU user_us=.. sys_us=..           (getrusage of this process: the relay's own cost)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsoff/sockmap_splice.h"

struct pair {
	int fd[2];          /* 0 = client, 1 = backend */
	int rdhup[2];       /* FIN received on fd[i] */
	int shut[2];        /* we shut down fd[i]'s write side */
	int client_port, backend_port; /* client's port; our backend socket's local port */
	int done;
};

static struct sockmap_splice_handle *h;

static void die(const char *what)
{
	fprintf(stderr, "sockmap_relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void finish(struct pair *p, const char *how)
{
	uint64_t cin = 0, cout = 0, bin = 0, bout = 0;

	/* Counters first: unpair forgets them. */
	if (sockmap_splice_bytes(h, p->fd[0], &cin, &cout) || sockmap_splice_bytes(h, p->fd[1], &bin, &bout))
		fprintf(stderr, "sockmap_relay: counters: %s\n", sockmap_splice_error(h));
	printf("CONN client_port=%d backend_port=%d client_in=%llu client_out=%llu backend_in=%llu "
	       "backend_out=%llu end=%s\n", p->client_port, p->backend_port, (unsigned long long)cin, (unsigned long long)cout, (unsigned long long)bin,
	       (unsigned long long)bout, how);
	fflush(stdout);
	if (sockmap_splice_unpair(h, p->fd[0], p->fd[1]))
		fprintf(stderr, "sockmap_relay: unpair: %s\n", sockmap_splice_error(h));
	close(p->fd[0]);
	close(p->fd[1]);
	p->done = 1;
}

int main(int argc, char **argv)
{
	char err[512];
	int one = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: %s LISTEN_PORT BACKEND_PORT NCONNS [PAIR_DELAY_MS]\n", argv[0]);
		return 2;
	}
	int nconns = atoi(argv[3]), delay_ms = argc > 4 ? atoi(argv[4]) : 0, accepted = 0, finished = 0;
	struct sockaddr_in la = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(atoi(argv[1])) };
	struct sockaddr_in ba = la;
	struct pair *ps = calloc(nconns, sizeof *ps);
	struct pollfd *pfd = calloc(2 * nconns + 1, sizeof *pfd);

	ba.sin_port = htons(atoi(argv[2]));
	h = sockmap_splice_open(0, err, sizeof err);
	if (!h) {
		fprintf(stderr, "sockmap_relay: %s\n", err);
		return 1;
	}
	struct sockmap_splice_ids ids;
	if (sockmap_splice_ids(h, &ids)) {
		fprintf(stderr, "sockmap_relay: %s\n", sockmap_splice_error(h));
		return 1;
	}

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0)
		die("bind 127.0.0.1");
	if (listen(lfd, 128) < 0)
		die("listen");
	/* After listen(): a test that sees READY can connect. */
	printf("READY prog_id=%u sources_id=%u targets_id=%u bytes_id=%u\n", ids.prog, ids.sources, ids.targets,
	       ids.bytes);
	fflush(stdout);

	while (finished < nconns) {
		int n = 0, pending = 0;

		pfd[n++] = (struct pollfd){ .fd = accepted < nconns ? lfd : -1, .events = POLLIN };
		for (int i = 0; i < accepted; i++) {
			struct pair *p = &ps[i];
			for (int s = 0; s < 2; s++) {
				/* Only POLLRDHUP: POLLIN stays set after a FIN and would spin. A side we are done
				 * with (FIN in, FIN out) is left out: its POLLHUP is expected and level-triggered. */
				int live = !p->done && !(p->rdhup[s] && p->shut[s]);
				pfd[n++] = (struct pollfd){ .fd = live ? p->fd[s] : -1,
							    .events = p->rdhup[s] ? 0 : POLLRDHUP };
				/* FIN came in on the other side but not yet passed on to this one. */
				pending |= !p->done && p->rdhup[!s] && !p->shut[s];
			}
		}
		if (poll(pfd, n, pending ? 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pfd[0].revents & POLLIN) {
			struct pair *p = &ps[accepted];
			struct sockaddr_in ca;
			socklen_t cl = sizeof ca;
			if ((p->fd[0] = accept(lfd, (struct sockaddr *)&ca, &cl)) < 0)
				die("accept");
			p->client_port = ntohs(ca.sin_port);
			if ((p->fd[1] = socket(AF_INET, SOCK_STREAM, 0)) < 0)
				die("socket");
			if (connect(p->fd[1], (struct sockaddr *)&ba, sizeof ba) < 0)
				die("connect to the backend on 127.0.0.1");
			struct sockaddr_in bl;
			socklen_t bll = sizeof bl;
			getsockname(p->fd[1], (struct sockaddr *)&bl, &bll);
			p->backend_port = ntohs(bl.sin_port);
			if (delay_ms)
				usleep(delay_ms * 1000);
			if (sockmap_splice_pair(h, p->fd[0], p->fd[1])) {
				fprintf(stderr, "sockmap_relay: pair: %s\n", sockmap_splice_error(h));
				return 1;
			}
			accepted++;
			continue; /* the pollfd array no longer matches ps[]: rebuild it */
		}
		for (int i = 0; i < accepted; i++) {
			struct pair *p = &ps[i];
			for (int s = 0; s < 2; s++) {
				int k = 1 + 2 * i + s; /* the pollfd built for this side above */
				short re = pfd[k].revents;
				if (p->done || pfd[k].fd < 0)
					continue;
				if (re & POLLERR || (re & POLLHUP && !p->shut[s])) {
					finish(p, "error"); /* reset: nothing left to deliver */
					finished++;
					break;
				}
				if (re & POLLRDHUP)
					p->rdhup[s] = 1;
			}
			if (p->done)
				continue;
			for (int s = 0; s < 2; s++) {
				if (!p->rdhup[!s] || p->shut[s])
					continue;
				int rc = sockmap_splice_shutdown_wr(h, p->fd[s], 0);
				if (rc == 0)
					p->shut[s] = 1;
				else if (rc != -EAGAIN)
					fprintf(stderr, "sockmap_relay: %s\n", sockmap_splice_error(h));
			}
			if (p->shut[0] && p->shut[1]) {
				finish(p, "fin");
				finished++;
			}
		}
	}

	uint64_t st[SOCKMAP_SPLICE_NSTATS];
	if (sockmap_splice_stats_read(h, st) < 0)
		fprintf(stderr, "sockmap_relay: cannot read the verdict's stats\n");
	printf("STATS");
	for (unsigned i = 0; i < SOCKMAP_SPLICE_NSTATS; i++)
		printf(" %s=%llu", sockmap_splice_stat_name(i), (unsigned long long)st[i]);
	printf(" cut=%d\n", sockmap_splice_cut_overlap());
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("CPU user_us=%lld sys_us=%lld\n", (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
	       (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
	sockmap_splice_close(h);
	return 0;
}
