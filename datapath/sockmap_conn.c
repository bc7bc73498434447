/* sockmap_conn.c — plain and passthrough frontends: the bytes move inside the kernel.
 *
 * plain: accept, connect a backend server, join the two sockets with the BPF sockmap (bpf/sockmap_splice):
 * each side's incoming bytes leave through the other side, counted per socket in a BPF map. passthrough:
 * the same, after the backend was chosen by the SNI of the client's ClientHello, read with MSG_PEEK so the
 * hello itself is forwarded untouched (pairing forwards what already waits on the socket). tlsoffd never
 * holds keys for these connections, and never puts a kTLS socket in a sockmap (CVE-2026-93824).
 *
 * Once paired, the daemon only watches both sockets for EPOLLRDHUP/ERR/HUP (edge-triggered): a FIN is not
 * forwarded by the kernel, so the daemon passes it on with shutdown(SHUT_WR) once every byte redirected
 * towards that socket has been queued on it (sockmap_splice_shutdown_wr; retried on the timer tick while
 * bytes are still in flight). Idle timeouts read the byte counters: traffic the daemon never sees still
 * counts as activity. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "engine.h"
#include "tlsoff/client_hello.h"
#include "tlsoff/log.h"
#include "tlsoff/sockmap_splice.h"

#define RETRY_MS 20   /* FIN waiting for redirected bytes: look again at the next timer tick (250 ms) */

#define LOAD_RETRY_MS 10000

/* The worker's sockmap handle, loaded on first use; a failure is logged and tried again after
 * LOAD_RETRY_MS (capabilities or memlock limits can change), not per connection. */
static struct sockmap_splice_handle *handle(struct worker *w, char *why, size_t len)
{
	if (!w->smap && (!w->smap_failed || w->now_ms >= w->smap_retry_ms)) {
		/* published for the metrics endpoint (main thread), which reads its counters */
		__atomic_store_n(&w->smap, sockmap_splice_open(0, why, len), __ATOMIC_RELEASE);
		w->smap_failed = !w->smap;
		w->smap_retry_ms = w->now_ms + LOAD_RETRY_MS;
		if (!w->smap) {
			log_err("worker %d: cannot load the sockmap program: %s; plain and passthrough connections "
				"are refused (trying again in %d s)", w->id, why, LOAD_RETRY_MS / 1000);
			snprintf(w->smap_why, sizeof(w->smap_why), "%.*s", (int)sizeof(w->smap_why) - 1, why);
		} else {
			/* Whether this kernel needs and gets the verdict's overlap cut (docs/ebpf.md). */
			log_info("worker %d: sockmap program loaded; %s", w->id, sockmap_splice_cut_overlap()
				 ? "it cuts off retransmitted bytes tcp_read_skb() would hand it twice"
				 : "kernel without tcp_read_skb(), no overlap cut needed");
		}
	}
	if (!w->smap)
		snprintf(why, len, "sockmap unavailable: %.*s", (int)(len > 22 ? len - 22 : 0), w->smap_why);
	return w->smap;
}

/* passthrough: the backend named by the ClientHello's SNI. Returns true once routed (or failed). */
static bool route_by_hello(struct conn *c, struct client_hello *chp)
{
	struct worker *w = c->w;
	struct client_hello ch;
	if (!w->peek && !(w->peek = malloc(CLIENT_HELLO_MAX))) {
		conn_fail(c, "out of memory");
		return true;
	}
	ssize_t n = recv(c->fd[CLIENT], w->peek, CLIENT_HELLO_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN) {
		c->rd[CLIENT] = false;
		return false;
	}
	if (n <= 0) {
		conn_fail(c, n == 0 ? "client closed before its ClientHello was complete" : "client: connection reset");
		return true;
	}
	switch (client_hello_parse(w->peek, (size_t)n, &ch)) {
	case CH_NEED_MORE: {
		/* MSG_PEEK leaves the bytes queued: the next segment raises a new edge, and we parse again from
		 * the start (a hello is at most CLIENT_HELLO_MAX, and usually one segment). Unless the client
		 * already sent its FIN: then nothing more will come. */
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		if (getsockopt(c->fd[CLIENT], IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_CLOSE_WAIT) {
			conn_fail(c, "client closed before its ClientHello was complete");
			return true;
		}
		c->rd[CLIENT] = false;
		return false;
	}
	case CH_INVALID: {
		static __thread char why[160];
		snprintf(why, sizeof(why), "not a usable ClientHello: %s", ch.why);
		conn_fail(c, why);
		return true;
	}
	case CH_COMPLETE:
		break;
	}
	log_safe_copy(c->sni, sizeof(c->sni), ch.sni);
	snprintf(c->alpn, sizeof(c->alpn), "%.*s", (int)sizeof(c->alpn) - 1, ch.alpn);   /* offered, for logs */
	/* The version the backend will choose is not ours to know: the bytes pass through untouched. */
	const char *name = tlsoff_route(&c->fe->conf, ch.sni);
	c->be = name ? frontend_backend(c->fe, name) : NULL;
	if (!c->be) {
		static __thread char why[TLSOFF_SNI_MAX + 64];
		snprintf(why, sizeof(why), "no route for SNI '%s' and no default backend", c->sni[0] ? c->sni : "(none)");
		conn_fail(c, why);
	}
	*chp = ch;
	return true;
}

void sm_route(struct conn *c)
{
	struct client_hello ch = { .sni = "" };
	static __thread char why[600];   /* the close reason: outlives the connection */
	/* No BPF, no connection: say so before a backend connection is opened for nothing. */
	if (!handle(c->w, why, sizeof(why))) {
		conn_fail(c, why);
		return;
	}
	if (c->fe->conf.mode == MODE_PASSTHROUGH) {
		if (!route_by_hello(c, &ch) || c->error)
			return;
	} else {
		c->be = c->fe->backend;
	}
	c->datapath = DATAPATH_SOCKMAP;
	if (c->be->conf.proxy_protocol == 2) {
		conn_proxy_header(c, NULL, 0, ch.sni[0] ? ch.sni : NULL);   /* the full name, not the log's copy */
		if (c->error)
			return;
	}
	conn_connect(c);
}

/* Backend connected and the PROXY header (if any) written: join the two sockets. */
void sm_join(struct conn *c)
{
	static __thread char why[600];
	struct sockmap_splice_handle *h = handle(c->w, why, sizeof(why));
	int rc;
	if (!h) {
		conn_fail(c, why);
		return;
	}
	if ((rc = sockmap_splice_pair(h, c->fd[CLIENT], c->fd[BACKEND])) < 0) {
		static __thread char msg[300];
		snprintf(msg, sizeof(msg), "sockmap: %s", sockmap_splice_error(h));
		conn_fail(c, msg);
		return;
	}
	c->paired = true;
	c->up.from = c->down.to = CLIENT;
	c->up.to = c->down.from = BACKEND;
	/* From now on only the ends matter: readable would fire on every redirected segment otherwise. */
	for (int s = 0; s < 2; s++) {
		struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET, .data.ptr = &c->ep[s] };
		epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd[s], &ev);
		c->rd[s] = false;
	}
	c->state = CS_SOCKMAP;
	c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
	COUNT(sockmap);
}

static void refresh_bytes(struct conn *c)
{
	uint64_t in, out;
	if (c->paired && sockmap_splice_bytes(c->w->smap, c->fd[CLIENT], &in, &out) == 0) {
		c->up.bytes = in;        /* received from the client, sent to the backend */
		c->down.bytes = out;
	}
}

/* Pass a FIN from side `from` on to the other side once the bytes before it are queued there. */
static void pass_fin(struct conn *c, struct flow *f)
{
	if (!f->eof || f->shut)
		return;
	int rc = sockmap_splice_shutdown_wr(c->w->smap, c->fd[f->to], 0);
	if (rc == 0) {
		f->shut = true;
	} else if (rc == -EAGAIN) {
		c->deadline_ms = c->w->now_ms + RETRY_MS;   /* conn_timeout calls sm_step again */
		c->fin_retry = true;
		return;
	} else {
		conn_fail(c, "sockmap: could not pass the end of stream on");
	}
}

void sm_step(struct conn *c)
{
	for (int s = 0; s < 2; s++) {
		if (!c->rd[s])
			continue;
		c->rd[s] = false;
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd[s], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_fail(c, s == CLIENT ? "client: connection reset" : "backend: connection reset");
			return;
		}
		(s == CLIENT ? &c->up : &c->down)->eof = true;   /* EPOLLRDHUP: that side sent its FIN */
	}
	c->fin_retry = false;
	pass_fin(c, &c->up);
	if (!c->error)
		pass_fin(c, &c->down);
	if (c->up.shut && c->down.shut)
		c->state = CS_DONE;
	else if (!c->fin_retry)
		c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
	refresh_bytes(c);
}

/* Bytes queued on the two sockets (sent by us, not yet acknowledged by the peer): the counters count a
 * byte when the kernel redirects it, which for a slow reader is long before it is delivered. */
static uint64_t queued(const struct conn *c)
{
	uint64_t total = 0;
	for (int s = 0; s < 2; s++) {
		int n = 0;
		if (ioctl(c->fd[s], SIOCOUTQ, &n) == 0 && n > 0)
			total += (uint64_t)n;
	}
	return total;
}

/* The deadline passed: a FIN waiting for bytes in flight (retried each tick, but not for longer than the
 * idle timeout), or the idle timeout unless the counters or the send queues moved since the last look. */
bool sm_timeout(struct conn *c)
{
	uint64_t before = c->up.bytes + c->down.bytes, outq_before = c->outq;
	if (c->fin_retry) {
		if (!c->fin_since_ms)
			c->fin_since_ms = c->w->now_ms;
		if (c->w->now_ms - c->fin_since_ms >= c->fe->conf.idle_timeout_ms) {
			conn_fail(c, "idle timeout (the end of stream waited for a peer that does not read)");
			return true;
		}
		sm_step(c);
		return c->error || c->state == CS_DONE;
	}
	refresh_bytes(c);
	c->outq = queued(c);
	if (c->up.bytes + c->down.bytes != before || c->outq != outq_before) {
		c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
		return false;
	}
	conn_fail(c, "idle timeout");
	return true;
}

void sm_describe(const struct conn *c, uint64_t *in, uint64_t *out)
{
	uint64_t i, o;
	if (c->paired && sockmap_splice_bytes(c->w->smap, c->fd[CLIENT], &i, &o) == 0) {
		*in = i;
		*out = o;
	}
}

/* Before close: counters for the log line, then out of the maps (the kernel forgets closed sockets by
 * itself, but the peer and counter entries are ours). */
void sm_unpair(struct conn *c)
{
	if (!c->paired)
		return;
	refresh_bytes(c);
	sockmap_splice_unpair(c->w->smap, c->fd[CLIENT], c->fd[BACKEND]);
	c->paired = false;
}
