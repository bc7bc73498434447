/* bad_backend — misbehaving backends for tlsoffd's robustness tests (real sockets on loopback).
 *
 *   bad_backend reset ADDR      accept; read the request head; answer with a close-delimited HTTP/1.0
 *                               response of which only 100 body bytes come, then an RST (SO_LINGER 0)
 *   bad_backend silent ADDR     accept; read whatever comes; never answer, never close
 *   bad_backend backlog ADDR    listen with backlog 0 and never accept; the one queue slot is taken by
 *                               bad_backend itself, so any further connect gets no SYN-ACK and never
 *                               completes (the kernel drops SYNs to a full accept queue)
 * Each prints "ready" once the behaviour is set up, then serves until killed. One line per connection
 * it handled on stderr.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsoff/config.h"

static struct tlsoff_addr addr;

static void die(const char *what)
{
	fprintf(stderr, "bad_backend: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int listener(int backlog)
{
	int one = 1, fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr.ss, addr.len) < 0 || listen(fd, backlog) < 0)
		die("listen");
	return fd;
}

/* Read until the end of the request head (or EOF); returns false if it never came. */
static bool read_head(int fd)
{
	char buf[8192];
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return true;
	}
	return false;
}

static void serve_reset(int lfd)
{
	static const char head[] = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
	char body[100];
	memset(body, 'r', sizeof(body));
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (read_head(fd)) {
			/* No Content-Length: the body ends when the connection ends, so only a clean end may look
			 * like a complete response to the client. */
			if (write(fd, head, sizeof(head) - 1) < 0 || write(fd, body, sizeof(body)) < 0)
				fprintf(stderr, "bad_backend: write: %s\n", strerror(errno));
			usleep(50000);       /* let the bytes reach tlsoffd before the reset */
		}
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		fprintf(stderr, "bad_backend: reset a connection\n");
	}
}

static void serve_silent(int lfd)
{
	struct pollfd p[256];
	nfds_t n = 1;
	p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		if (poll(p, n, -1) < 0)
			continue;
		if ((p[0].revents & POLLIN) && n < 256) {
			int fd = accept(lfd, NULL, NULL);
			if (fd >= 0) {
				p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
				fprintf(stderr, "bad_backend: holding a connection, silently\n");
			}
		}
		for (nfds_t i = 1; i < n; i++) {
			char buf[4096];
			if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) && read(p[i].fd, buf, sizeof(buf)) <= 0) {
				close(p[i].fd);                  /* the peer went away: drop it */
				p[i--] = p[--n];
			}
		}
	}
}

static void serve_backlog(int lfd)
{
	/* Fill the accept queue ourselves: connect until a connect does not complete within 500 ms. */
	int filled = 0;
	for (int i = 0; i < 8; i++) {
		int fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
		if (connect(fd, (struct sockaddr *)&addr.ss, addr.len) == 0) {
			filled++;
			continue;
		}
		if (errno != EINPROGRESS)
			die("connect");
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		/* With an empty queue the first connect must complete: a hang then would be something else. */
		if (poll(&p, 1, 500) == 0 && filled > 0) {
			close(fd);                 /* this one hung: the queue is full */
			printf("ready (%d queued)\n", filled);
			fflush(stdout);
			for (;;)
				pause();
		}
		filled++;
	}
	fprintf(stderr, "bad_backend: the accept queue never filled\n");
	(void)lfd;
	exit(1);
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc != 3 || tlsoff_addr_parse(argv[2], false, &addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "usage: bad_backend reset|silent|backlog ADDR:PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "backlog")) {
		serve_backlog(listener(0));
	} else if (!strcmp(argv[1], "reset") || !strcmp(argv[1], "silent")) {
		int lfd = listener(64);
		printf("ready\n");
		if (argv[1][0] == 'r')
			serve_reset(lfd);
		else
			serve_silent(lfd);
	}
	fprintf(stderr, "bad_backend: unknown mode %s\n", argv[1]);
	return 2;
}
