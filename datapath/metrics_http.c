/* metrics_http.c — `metrics listen ADDR:PORT`: the smallest HTTP/1.x server Prometheus needs.
 *
 * It runs on the main thread (with signals and the control socket), never on a worker, so a scrape costs
 * the data path nothing but the relaxed counter reads. One request per connection (Connection: close):
 * read up to the end of the headers (4 KB at most, 5 s at most), answer, close. Non-blocking throughout:
 * a client that stops reading is dropped at its deadline instead of stalling the main thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "tlsoff/log.h"
#include "metrics.h"

#define REQ_MAX      4096
#define CLIENT_MS    5000
#define MAX_CLIENTS  64

struct mclient {
	enum main_kind kind;                /* MK_METRICS_CLIENT: first, epoll data points here */
	struct metrics_http *mh;
	struct mclient *next;
	int fd;
	char req[REQ_MAX];
	size_t rlen;
	struct mbuf out;
	size_t off;
	bool answering;
	uint64_t deadline_ms;
};

struct mlistener {
	enum main_kind kind;                /* MK_METRICS_LISTEN */
	struct metrics_http *mh;
	int fd;
	char text[80];
};

struct metrics_http {
	int epfd;
	void (*view)(struct metrics_view *v, void *arg);
	void *arg;
	struct mlistener *cur, *next;       /* next: prepared, not committed (may equal cur) */
	bool prepared;
	struct mclient *clients;
	unsigned nclients;
};

struct metrics_http *metrics_http_new(int epfd, void (*view)(struct metrics_view *v, void *arg), void *arg)
{
	struct metrics_http *mh = calloc(1, sizeof(*mh));
	if (mh) {
		mh->epfd = epfd;
		mh->view = view;
		mh->arg = arg;
	}
	return mh;
}

static void listener_free(struct metrics_http *mh, struct mlistener *l)
{
	if (!l)
		return;
	epoll_ctl(mh->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	free(l);
}

int metrics_http_prepare(struct metrics_http *mh, const struct tlsoff_addr *addr, char *err, size_t errlen)
{
	if (!mh)   /* handed over to a new daemon: it serves the metrics */
		return 0;
	metrics_http_abort(mh);
	mh->prepared = true;
	if (!addr->text[0])
		return 0;
	if (mh->cur && !strcmp(mh->cur->text, addr->text)) {
		mh->next = mh->cur;
		return 0;
	}
	struct mlistener *l = calloc(1, sizeof(*l));
	int one = 1;
	if (!l)
		return errf(err, errlen, "metrics listen %s: out of memory", addr->text);
	l->kind = MK_METRICS_LISTEN;
	l->mh = mh;
	snprintf(l->text, sizeof(l->text), "%s", addr->text);
	l->fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* SO_REUSEPORT: during a seamless upgrade the new daemon binds the address while the old one still
	 * serves it (the old one closes its listener once it hands over; engine_handed_over). */
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(l->fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(l->fd, 64) < 0) {
		int e = errno;
		if (l->fd >= 0)
			close(l->fd);
		free(l);
		mh->prepared = false;
		return errf(err, errlen, "metrics listen %s: %s", addr->text,
			    e == EADDRINUSE ? "address already in use" : strerror(e));
	}
	mh->next = l;
	return 0;
}

void metrics_http_abort(struct metrics_http *mh)
{
	if (!mh)
		return;
	if (mh->next && mh->next != mh->cur)
		listener_free(mh, mh->next);
	mh->next = NULL;
	mh->prepared = false;
}

void metrics_http_commit(struct metrics_http *mh)
{
	if (!mh || !mh->prepared)
		return;
	if (mh->next != mh->cur) {
		if (mh->cur)
			log_notice("metrics: no longer listening on %s", mh->cur->text);
		listener_free(mh, mh->cur);
		mh->cur = mh->next;
		if (mh->cur) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = mh->cur };
			epoll_ctl(mh->epfd, EPOLL_CTL_ADD, mh->cur->fd, &ev);
			log_notice("metrics: serving http://%s/metrics", mh->cur->text);
		}
	}
	mh->next = NULL;
	mh->prepared = false;
}

static void client_close(struct metrics_http *mh, struct mclient *cl)
{
	for (struct mclient **p = &mh->clients; *p; p = &(*p)->next)
		if (*p == cl) {
			*p = cl->next;
			break;
		}
	close_watched(mh->epfd, cl->fd);
	mbuf_free(&cl->out);
	free(cl);
	mh->nclients--;
}

static void respond(struct metrics_http *mh, struct mclient *cl, int status, const char *reason, const char *type,
		    const struct mbuf *body)
{
	mbuf_printf(&cl->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		    status, reason, type, body ? body->len : strlen(reason) + 1);
	if (body)
		mbuf_printf(&cl->out, "%.*s", (int)body->len, body->p ? body->p : "");
	else
		mbuf_printf(&cl->out, "%s\n", reason);
	cl->answering = true;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = cl };
	epoll_ctl(mh->epfd, EPOLL_CTL_MOD, cl->fd, &ev);
}

/* The request line decides; headers are read (to the blank line) and ignored. */
static void answer(struct metrics_http *mh, struct mclient *cl)
{
	char method[8], target[256];
	if (sscanf(cl->req, "%7s %255s HTTP/1.", method, target) != 2) {
		respond(mh, cl, 400, "Bad Request", "text/plain", NULL);
		return;
	}
	char *q = strchr(target, '?');
	if (q)
		*q = '\0';
	if (strcmp(target, "/metrics") && strcmp(target, "/")) {
		respond(mh, cl, 404, "Not Found", "text/plain", NULL);
		return;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		respond(mh, cl, 405, "Method Not Allowed", "text/plain", NULL);
		return;
	}
	struct metrics_view v = { 0 };
	struct mbuf body = { 0 };
	mh->view(&v, mh->arg);
	metrics_render(&body, &v);
	free((void *)v.fe);
	if (body.oom) {
		respond(mh, cl, 500, "Internal Server Error", "text/plain", NULL);
	} else {
		respond(mh, cl, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body);
		if (!strcmp(method, "HEAD"))   /* the length of what GET would send, no body */
			cl->out.len -= body.len;
	}
	mbuf_free(&body);
}

static void client_event(struct metrics_http *mh, struct mclient *cl)
{
	if (!cl->answering) {
		ssize_t n = read(cl->fd, cl->req + cl->rlen, sizeof(cl->req) - 1 - cl->rlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(mh, cl);
			return;
		}
		if (n < 0)
			return;
		cl->rlen += (size_t)n;
		cl->req[cl->rlen] = '\0';
		if (strstr(cl->req, "\r\n\r\n") || strstr(cl->req, "\n\n"))
			answer(mh, cl);
		else if (cl->rlen == sizeof(cl->req) - 1)
			respond(mh, cl, 431, "Request Header Fields Too Large", "text/plain", NULL);
		if (!cl->answering)
			return;
	}
	while (cl->off < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.p + cl->off, cl->out.len - cl->off, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			client_close(mh, cl);
			return;
		}
		cl->off += (size_t)n;
	}
	client_close(mh, cl);
}

void metrics_http_event(struct metrics_http *mh, void *tag, uint32_t events)
{
	(void)events;
	if (*(enum main_kind *)tag == MK_METRICS_CLIENT) {
		client_event(mh, tag);
		return;
	}
	struct mlistener *l = tag;
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (mh->nclients >= MAX_CLIENTS) {   /* a scraper needs one; many are an attack or a bug */
			close(fd);
			continue;
		}
		struct mclient *cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		cl->kind = MK_METRICS_CLIENT;
		cl->mh = mh;
		cl->fd = fd;
		cl->deadline_ms = now_ms() + CLIENT_MS;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
		if (epoll_ctl(mh->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = mh->clients;
		mh->clients = cl;
		mh->nclients++;
	}
}

void metrics_http_tick(struct metrics_http *mh)
{
	uint64_t now = now_ms();
	for (struct mclient *cl = mh ? mh->clients : NULL, *next; cl; cl = next) {
		next = cl->next;
		if (now >= cl->deadline_ms)
			client_close(mh, cl);
	}
}

void metrics_http_free(struct metrics_http *mh)
{
	if (!mh)
		return;
	metrics_http_abort(mh);
	while (mh->clients)
		client_close(mh, mh->clients);
	listener_free(mh, mh->cur);
	free(mh);
}
