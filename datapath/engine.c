/* engine.c — runtime objects from the configuration, listeners, worker threads (epoll loops), accept,
 * timeouts, and signals: SIGTERM/SIGINT drain with a deadline. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "tlsoff/privdrop.h"
#include "tlsoff/stack_scrub.h"
#include "tlsoff/control.h"
#include "tlsoff/log.h"
#include "tlsoff/netdev.h"
#include "tlsoff/nic_route.h"
#include "tlsoff/notify.h"
#include "tlsoff/sockmap_splice.h"
#include "tlsoff/tickets.h"
#include "tlsoff/ocsp.h"
#include "metrics.h"

#define TICK_MS          250
#define ACCEPT_PAUSE_MS  100
#define MAX_EVENTS       256

struct counters counters;

enum run_state { RUNNING, DRAINING, STOPPING };
static _Atomic int run_state = RUNNING;

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- listeners ------------------------------------------------------------------------------------- */

static int open_listener(const struct frontend_conf *fc, char *err, size_t errlen)
{
	int fd = socket(fc->listen.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	int one = 1;
	if (fd < 0) {
		snprintf(err, errlen, "frontend %s: socket: %s", fc->name, strerror(errno));
		return -1;
	}
	/* Every worker binds its own socket to the address; the kernel spreads new connections over them. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (fc->listen.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&fc->listen.ss, fc->listen.len) < 0 || listen(fd, 4096) < 0) {
		snprintf(err, errlen, "frontend %s: listen %s: %s", fc->name, fc->listen.text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* SO_REUSEPORT lets every worker bind the same address, but it equally lets a second tlsoffd (or anything
 * else of the same user with SO_REUSEPORT) bind it: both would then silently share the traffic. So first
 * bind the address once without SO_REUSEPORT: that fails if anyone listens there already. */
static int address_free(const struct frontend_conf *fc, char *err, size_t errlen)
{
	int fd = socket(fc->listen.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	int one = 1, rc = 0;
	if (fd < 0) {
		snprintf(err, errlen, "frontend %s: socket: %s", fc->name, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));   /* TIME_WAIT leftovers are fine */
	if (fc->listen.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&fc->listen.ss, fc->listen.len) < 0) {
		snprintf(err, errlen, "frontend %s: listen %s: %s", fc->name, fc->listen.text, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

static void listener_arm(struct worker *w, struct listener *l, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
	epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev);
}

static void accept_ready(struct worker *w, struct listener *l)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment instead of spinning on the event. */
				if (w->now_ms - l->last_pause_log_ms >= 10000) {   /* once per 10 s, not per pause */
					log_warn("frontend %s: accept: %s; pausing accepts for %d ms at a time",
						 l->fe->conf.name, strerror(errno), ACCEPT_PAUSE_MS);
					l->last_pause_log_ms = w->now_ms;
				}
				listener_arm(w, l, false);
				l->paused_until_ms = w->now_ms + ACCEPT_PAUSE_MS;
			}
			return;
		}
		struct frontend_rt *fe = l->fe;
		int open = atomic_fetch_add(fe->conns, 1);
		if (fe->conf.max_conns && (unsigned)open >= fe->conf.max_conns) {
			atomic_fetch_sub(fe->conns, 1);
			COUNT(refused_max_conns);
			log_notice("frontend %s: refused a connection: max-conns %u reached", fe->conf.name,
				   fe->conf.max_conns);
			close(fd);
			continue;
		}
		COUNT(accepted);
		if (!conn_new(w, fe, fd, (struct sockaddr *)&peer)) {
			atomic_fetch_sub(fe->conns, 1);
			log_warn("frontend %s: cannot set up a connection: %s", fe->conf.name, strerror(errno));
			close(fd);
		}
	}
}

/* ---- workers ---------------------------------------------------------------------------------------- */

static void timers(struct worker *w)
{
	for (unsigned i = 0; i < w->nls; i++)
		if (w->ls[i].paused_until_ms && w->now_ms >= w->ls[i].paused_until_ms && w->ls[i].fd >= 0) {
			w->ls[i].paused_until_ms = 0;
			listener_arm(w, &w->ls[i], true);
		}
	struct conn *c = w->conns, *next;
	for (; c; c = next) {
		next = c->next;                 /* conn_timeout may free c (never another connection) */
		if (w->now_ms >= c->deadline_ms)
			conn_timeout(c);
	}
}

static void close_listeners(struct worker *w)
{
	for (unsigned i = 0; i < w->nls; i++)
		if (w->ls[i].fd >= 0) {
			/* Out of the epoll set first: after a takeover the socket lives on in the new daemon, and an
			 * epoll registration lasts as long as the socket, not as long as our descriptor. */
			listener_arm(w, &w->ls[i], false);
			close(w->ls[i].fd);
			w->ls[i].fd = -1;
		}
}

static void apply_pending(struct worker *w);

/* A control request (conn show / conn kill), answered on this thread: connections are only ever touched
 * by their own worker. */
static void serve_request(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	struct worker_req *r = w->req;
	w->req = NULL;
	pthread_mutex_unlock(&w->mu);
	if (!r)
		return;
	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (r->kill_id) {
			if (c->id != r->kill_id)
				continue;
			r->found = true;
			c->close_reason = "killed by tlsoffctl conn kill";
			c->error = true;
			conn_free(c);
			conn_reap(w);
			break;
		}
		if (c->state == CS_DONE)
			continue;
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			struct conn_info *v = realloc(r->v, cap * sizeof(*v));
			if (!v) {
				r->failed = true;
				break;
			}
			r->v = v;
			r->cap = cap;
		}
		conn_describe(c, &r->v[r->n++]);
	}
	pthread_mutex_lock(&w->mu);
	r->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[MAX_EVENTS];
	uint64_t last_tick = now_ms();
	bool draining = false;

	/* The sock_diag socket that reads each handoff's kTLS mode (conn.c), opened now rather than at the first
	 * kTLS connection: a descriptor that appears in the middle of traffic looks like a leak to whoever
	 * counts them (the fault suite does), and this way it can't fail later for want of descriptors. */
	if (w->caps && w->caps->ulp && !w->diag) {
		w->diag = sockdiag_open();
		w->diag_failed = !w->diag;
	}
	for (;;) {
		int n = epoll_wait(w->epfd, ev, MAX_EVENTS, TICK_MS);
		bool woken = false;
		w->now_ms = now_ms();
		for (int i = 0; i < n; i++) {
			enum ep_kind kind = *(enum ep_kind *)ev[i].data.ptr;
			if (kind == EP_LISTENER) {
				accept_ready(w, ev[i].data.ptr);
			} else if (kind == EP_WAKE) {
				uint64_t v;
				if (read(w->wakefd, &v, sizeof(v)) < 0)
					continue;
				woken = true;   /* listener switch after the batch: its events point at the old set */
			} else {
				struct conn_ep *e = ev[i].data.ptr;
				if (e->c->state == CS_DONE)      /* closed earlier in this batch */
					continue;
				conn_event(e->c, kind == EP_CONN_CLIENT ? CLIENT : BACKEND, ev[i].events);
			}
		}
		conn_reap(w);
		if (w->scrub_stack) {   /* secrets OpenSSL left in the frames it returned from */
			w->scrub_stack = false;
			stack_scrub();
		}
		if (woken && atomic_load(&run_state) == RUNNING)
			apply_pending(w);
		if (woken)
			serve_request(w);
		int st = atomic_load(&run_state);
		if (st != RUNNING && !draining) {
			draining = true;
			close_listeners(w);
		}
		if (st == STOPPING) {
			while (w->conns) {
				w->conns->close_reason = "daemon stopping";
				w->conns->error = true;
				conn_free(w->conns);
			}
			conn_reap(w);
		}
		if (draining && !w->conns) {
			serve_request(w);    /* an empty answer rather than a control thread waiting for nobody */
			break;
		}
		if (w->now_ms - last_tick >= TICK_MS) {
			last_tick = w->now_ms;
			timers(w);
			conn_reap(w);
		}
	}
	relay_buf_pool_free();   /* this thread's pooled relay buffers die with it */
	return NULL;
}

/* ---- configuration generations --------------------------------------------------------------------- */

/* The frontends and backends of one configuration. A reload builds a new generation; the old one is kept
 * until no worker listens for it and no connection points into it (frontend_rt.refs), then freed. */
struct generation {
	unsigned id;
	struct backend_rt *backends;
	unsigned nbackends;
	struct frontend_rt *frontends;
	unsigned nfrontends;
	struct generation *next;              /* retired list */
};

struct runtime {
	struct generation *cur, *retired;
	struct worker *workers;
	unsigned nworkers;
	bool *exited;                         /* worker threads joined */
	const char *config_path;
	struct config running;                /* what cur was built from: control commands edit a copy */
	unsigned control_changes;             /* since the file was last loaded (SIGHUP discards them) */
	uint64_t start_ms;
	const struct ktls_caps *caps;
	bool sockmap;
	char sockmap_why[512];
	enum steer_mode steer;
	char steering[96];                    /* what the last group got, for tlsoffctl status */
	struct metrics_http *metrics;         /* `metrics listen`: on the main thread's epoll */
	bool metrics_retire;                  /* handed over: close it after this batch of events */
	struct takeover *tk;                  /* while starting with --takeover: the sockets received */
	unsigned drain_seconds;
	uint64_t drain_deadline;              /* 0: not draining */
	pid_t successor;                      /* the daemon that took our sockets over (0: none) */
};

/* Listening groups opened for generation g in the prepared sets (sets[w][f] = worker w's listener for
 * frontend f): steer those that are new (a kept socket's group is steered already). */
static void steer_new(struct runtime *rt, struct listener **sets, const struct generation *g,
		      const struct listener *const *old, const unsigned *nold)
{
	int *fds = calloc(rt->nworkers, sizeof(*fds));
	for (unsigned f = 0; fds && f < g->nfrontends; f++) {
		bool kept = false;
		for (unsigned o = 0; old && o < nold[0]; o++)
			kept |= old[0][o].fd == sets[0][f].fd;
		if (kept)
			continue;
		bool inherited = false;
		for (unsigned i = 0; i < rt->nworkers; i++) {
			fds[i] = sets[i][f].fd;
			for (size_t k = 0; rt->tk && k < rt->tk->n; k++)
				inherited |= rt->tk->v[k].fd == fds[i];
		}
		const char *mode = steer_group(g->frontends[f].conf.name, fds, rt->nworkers, rt->steer, inherited);
		if (strncmp(rt->steering, mode, strlen(mode)))
			log_notice("new connections go to the worker on the CPU that received them: %s", mode);
		snprintf(rt->steering, sizeof(rt->steering), "%s", mode);
	}
	free(fds);
}

/* max-conns counts a frontend's connections across configuration generations: a reload or a control
 * command (a new generation) must not let a full frontend take max-conns more. The counter is shared by
 * every generation with a frontend of that name and freed with the last of them. */
struct conn_count {
	atomic_int conns;                     /* first: its address is the struct's */
	unsigned refs;
};
#define container_of_count(p) ((struct conn_count *)(p))

static void share_count(struct frontend_rt *fe, const struct generation *prev)
{
	for (unsigned i = 0; prev && i < prev->nfrontends; i++)
		if (!strcmp(prev->frontends[i].conf.name, fe->conf.name)) {
			fe->conns = prev->frontends[i].conns;
			fe->conns_refs = prev->frontends[i].conns_refs;
			++*fe->conns_refs;
			return;
		}
	struct conn_count *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return;
	cc->refs = 1;
	fe->conns = &cc->conns;
	fe->conns_refs = &cc->refs;
}

static void gen_free(struct generation *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < g->nfrontends; i++)
		if (g->frontends[i].conns_refs && --*g->frontends[i].conns_refs == 0)
			free(container_of_count(g->frontends[i].conns));
	for (unsigned i = 0; i < g->nfrontends; i++)
		tls_frontend_free(g->frontends[i].tls);
	free(g->frontends);
	for (unsigned i = 0; i < g->nbackends; i++)
		backend_tls_free(g->backends[i].tls);
	free(g->backends);
	free(g);
}

/* Certificates load here: a bad one fails the whole generation and nothing changes. */
static struct generation *gen_build(const struct config *cfg, const struct ktls_caps *caps, unsigned id,
				     const struct generation *prev, char *err, size_t errlen)
{
	struct generation *g = calloc(1, sizeof(*g));
	if (!g || !(g->backends = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*g->backends))) ||
	    !(g->frontends = calloc(cfg->nfrontends ? cfg->nfrontends : 1, sizeof(*g->frontends)))) {
		snprintf(err, errlen, "out of memory");
		gen_free(g);
		return NULL;
	}
	g->id = id;
	for (unsigned i = 0; i < cfg->nbackends; i++) {
		struct backend_rt *be = &g->backends[g->nbackends++];
		char msg[TLSOFF_ERR_MAX];
		be->conf = cfg->backends[i];
		if (be->conf.tls && !(be->tls = backend_tls_new(&be->conf, msg, sizeof(msg)))) {
			char line[24] = "";
			if (be->conf.line)
				snprintf(line, sizeof(line), " (line %u)", be->conf.line);
			snprintf(err, errlen, "backend %s%s: %s", be->conf.name, line, msg);
			gen_free(g);
			return NULL;
		}
	}
	for (unsigned i = 0; i < cfg->nfrontends; i++) {
		struct frontend_rt *fe = &g->frontends[g->nfrontends];
		char msg[TLSOFF_ERR_MAX];
		fe->conf = cfg->frontends[i];
		share_count(fe, prev);
		g->nfrontends++;                  /* from here gen_free releases what it holds */
		if (!fe->conns) {
			snprintf(err, errlen, "out of memory");
			gen_free(g);
			return NULL;
		}
		fe->backends = g->backends;
		fe->nbackends = g->nbackends;
		bool capture = caps->ulp && fe->conf.datapath != DATAPATH_USERSPACE;   /* cf. conn.c leg_why */
		if (fe->conf.mode == MODE_TLS && !(fe->tls = tls_frontend_new(&fe->conf, capture, msg, sizeof(msg)))) {
			char line[24] = "";
			if (fe->conf.line)
				snprintf(line, sizeof(line), " (line %u)", fe->conf.line);
			snprintf(err, errlen, "frontend %s%s: %s", fe->conf.name, line, msg);
			gen_free(g);
			return NULL;
		}
		for (unsigned b = 0; b < g->nbackends; b++)
			if (!strcmp(g->backends[b].conf.name, fe->conf.backend))
				fe->backend = &g->backends[b];
	}
	return g;
}

static bool gen_idle(const struct generation *g)
{
	for (unsigned i = 0; i < g->nfrontends; i++)
		if (atomic_load(&g->frontends[i].refs))
			return false;
	return true;
}

static bool same_listen(const struct frontend_conf *a, const struct frontend_conf *b)
{
	return a->listen.len == b->listen.len && !memcmp(&a->listen.ss, &b->listen.ss, a->listen.len);
}

/* A worker's listeners for generation g: sockets of `old` whose address is still wanted are kept (their
 * accept queues carry over: a reload drops no connection), the others are opened. On failure the new
 * sockets are closed and NULL returned. */
static struct listener *listeners_for(struct generation *g, const struct listener *old, unsigned nold,
				      unsigned *nout, char *err, size_t errlen)
{
	struct listener *ls = calloc(g->nfrontends + nold + 1, sizeof(*ls));
	if (!ls) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (unsigned f = 0; f < g->nfrontends; f++) {
		ls[f].kind = EP_LISTENER;
		ls[f].fe = &g->frontends[f];
		ls[f].fd = -1;
		for (unsigned o = 0; o < nold && ls[f].fd < 0; o++)   /* the first: a primary before extras */
			if (old[o].fd >= 0 && same_listen(&old[o].fe->conf, &g->frontends[f].conf))
				ls[f].fd = old[o].fd;
		if (ls[f].fd < 0 && (ls[f].fd = open_listener(&g->frontends[f].conf, err, errlen)) < 0) {
			for (unsigned k = 0; k < f; k++) {
				bool reused = false;
				for (unsigned o = 0; o < nold; o++)
					reused |= old[o].fd == ls[k].fd;
				if (!reused)
					close(ls[k].fd);
			}
			free(ls);
			return NULL;
		}
	}
	/* Extras: more sockets of one address than this worker has frontends there. They come from a takeover
	 * of a daemon with more workers than we have: each still holds an accept queue (closing it would reset
	 * the connections waiting there), so its worker accepts from it too, for as long as the address is
	 * wanted. They follow the primaries, which are indexed by frontend. */
	unsigned n = g->nfrontends;
	for (unsigned o = 0; o < nold; o++) {
		bool primary = false;
		for (unsigned f = 0; f < g->nfrontends; f++)
			primary |= ls[f].fd == old[o].fd;
		for (unsigned f = 0; !primary && old[o].fd >= 0 && f < g->nfrontends; f++)
			if (same_listen(&old[o].fe->conf, &g->frontends[f].conf)) {
				ls[n++] = (struct listener){ .kind = EP_LISTENER, .fd = old[o].fd, .fe = &g->frontends[f] };
				break;
			}
	}
	*nout = n;
	return ls;
}

/* In the worker: switch to the listeners the main thread prepared (reload). */
static void apply_pending(struct worker *w)
{
	/* The whole swap under the lock: reload() reads w->ls/w->nls of a worker under the same lock. */
	pthread_mutex_lock(&w->mu);
	struct listener *ls = w->pending_ls, *old = w->ls;
	unsigned n = w->pending_nls, nold = w->nls, gen = w->pending_gen;
	if (!ls) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	w->pending_ls = NULL;
	for (unsigned o = 0; o < nold; o++) {           /* sockets no frontend wants any more */
		bool kept = false;
		for (unsigned k = 0; k < n; k++)
			kept |= ls[k].fd == old[o].fd;
		if (!kept && old[o].fd >= 0) {
			listener_arm(w, &old[o], false);
			close(old[o].fd);
		}
	}
	for (unsigned k = 0; k < n; k++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ls[k] };
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, ls[k].fd, &ev) < 0)   /* kept: now points at its new entry */
			epoll_ctl(w->epfd, EPOLL_CTL_ADD, ls[k].fd, &ev);  /* new, or paused by an EMFILE backoff */
	}
	w->ls = ls;
	w->nls = n;
	atomic_store(&w->gen_seen, gen);
	pthread_cond_broadcast(&w->cv);   /* apply_config may be waiting to post the next change */
	pthread_mutex_unlock(&w->mu);
	free(old);
}

/* Sockets of a prepared set that the worker never took over (stopping before its next wake-up). */
static void close_pending(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	for (unsigned k = 0; w->pending_ls && k < w->pending_nls; k++) {
		bool live = false;
		for (unsigned o = 0; o < w->nls; o++)
			live |= w->ls[o].fd == w->pending_ls[k].fd;
		if (!live)
			close(w->pending_ls[k].fd);
	}
	free(w->pending_ls);
	w->pending_ls = NULL;
	pthread_mutex_unlock(&w->mu);
}

static void wake_all(struct runtime *rt)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (write(rt->workers[i].wakefd, &one, sizeof(one)) < 0)
			log_warn("cannot wake worker %u: %s", i, strerror(errno));
}

static void log_frontends(const struct generation *g)
{
	for (unsigned i = 0; i < g->nfrontends; i++) {
		const struct frontend_conf *f = &g->frontends[i].conf;
		if (f->mode == MODE_TLS)
			log_notice("frontend %s listening on %s -> backend %s (datapath %s)", f->name, f->listen.text,
				   f->backend, tlsoff_datapath_name(f->datapath));
		else
			log_notice("frontend %s listening on %s (%s, sockmap) -> %s%s%s%u sni route(s)", f->name,
				   f->listen.text, tlsoff_mode_name(f->mode), f->backend[0] ? "backend " : "",
				   f->backend, f->backend[0] ? ", " : "", f->nroutes);
	}
}

/* Make cfg the running configuration: a new generation (certificates loaded, new listeners bound and
 * listening before this returns, so a frontend accepts as soon as its command is acked), handed to the
 * workers. New frontends, certificates and backends apply to new connections; open connections keep the
 * generation they started with. On error (err set) nothing changes; on success cfg is consumed. */
/* Wait until every worker has taken the pending listener sets (it does so right after its current batch
 * of events), up to 2 s each. Returns 0, or -1 with err set ("the WHICH change"). */
static int workers_took_change(struct runtime *rt, const char *which, char *err, size_t errlen)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2;
		pthread_mutex_lock(&w->mu);
		while (w->pending_ls && !rt->exited[i])
			if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
				break;
		bool busy = w->pending_ls != NULL;
		pthread_mutex_unlock(&w->mu);
		if (busy)
			return errf(err, errlen, "worker %u has not taken over the %s change within 2 s; try again", i,
				    which);
	}
	return 0;
}

static int apply_generation(struct runtime *rt, struct config *cfg, const char *origin, char *err, size_t errlen)
{
	if (tickets_prepare(cfg->ticket_keys, err, errlen) < 0)
		return -1;
	struct generation *g = gen_build(cfg, rt->caps, rt->cur->id + 1, rt->cur, err, errlen);
	if (!g)
		return -1;
	/* Addresses nobody listened on before must be free (see address_free). */
	for (unsigned f = 0; f < g->nfrontends; f++) {
		bool known = false;
		for (unsigned o = 0; o < rt->cur->nfrontends; o++)
			known |= same_listen(&rt->cur->frontends[o].conf, &g->frontends[f].conf);
		if (!known && address_free(&g->frontends[f].conf, err, errlen) < 0) {
			gen_free(g);
			return -1;
		}
	}
	/* Changes come back to back (tlsoffctl -batch, orchestration): the workers must have taken the
	 * previous one. */
	if (workers_took_change(rt, "previous", err, errlen) < 0) {
		gen_free(g);
		return -1;
	}
	struct listener **sets = calloc(rt->nworkers, sizeof(*sets));
	unsigned *counts = calloc(rt->nworkers, sizeof(*counts));
	if (!counts) {
		free(sets);
		sets = NULL;
	}
	for (unsigned i = 0; sets && i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		pthread_mutex_lock(&w->mu);
		sets[i] = listeners_for(g, w->ls, w->nls, &counts[i], err, errlen);
		pthread_mutex_unlock(&w->mu);
		if (!sets[i]) {
			for (unsigned k = 0; k < i; k++)   /* new sockets only: reused ones belong to the workers */
				for (unsigned f = 0; f < g->nfrontends; f++) {
					bool reused = false;
					for (unsigned o = 0; o < rt->workers[k].nls; o++)
						reused |= rt->workers[k].ls[o].fd == sets[k][f].fd;
					if (!reused)
						close(sets[k][f].fd);
				}
			for (unsigned k = 0; k < i; k++)
				free(sets[k]);
			free(sets);
			free(counts);
			gen_free(g);
			return -1;
		}
	}
	if (!sets) {
		snprintf(err, errlen, "out of memory");
		gen_free(g);
		return -1;
	}
	{
		/* the workers' current sets tell which sockets are kept (worker 0's is enough: all keep alike) */
		pthread_mutex_lock(&rt->workers[0].mu);
		const struct listener *old0 = rt->workers[0].ls;
		unsigned nold0 = rt->workers[0].nls;
		steer_new(rt, sets, g, &old0, &nold0);
		pthread_mutex_unlock(&rt->workers[0].mu);
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		pthread_mutex_lock(&w->mu);
		w->pending_ls = sets[i];
		w->pending_nls = counts[i];
		w->pending_gen = g->id;
		pthread_mutex_unlock(&w->mu);
	}
	free(sets);
	free(counts);
	rt->cur->next = rt->retired;
	rt->retired = rt->cur;
	rt->cur = g;
	config_free(&rt->running);
	rt->running = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	tickets_commit();
	wake_all(rt);
	log_notice("%s: configuration generation %u: %u frontend(s), %u backend(s)", origin, g->id, g->nfrontends,
		   g->nbackends);
	log_frontends(g);
	notify_status("serving %u frontend(s) (configuration generation %u, %s)", g->nfrontends, g->id, origin);
	return 0;
}

/* ... with the metrics endpoint, which binds first and switches only if everything else succeeded. */
static int apply_config(struct runtime *rt, struct config *cfg, const char *origin, char *err, size_t errlen)
{
	if (metrics_http_prepare(rt->metrics, &cfg->metrics, err, errlen) < 0)
		return -1;
	if (apply_generation(rt, cfg, origin, err, errlen) < 0) {
		metrics_http_abort(rt->metrics);
		return -1;
	}
	metrics_http_commit(rt->metrics);
	return 0;
}

/* SIGHUP: the file replaces the running configuration, changes made over the control socket included
 * (docs/control-protocol.md: the last one applied wins). Any error leaves the running configuration as is. */
static void reload(struct runtime *rt)
{
	struct config cfg;
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];

	int rc = config_load(rt->config_path, &cfg, err, sizeof(err));
	if (rc == 0 && (strcmp(cfg.user, rt->running.user) || strcmp(cfg.group, rt->running.group))) {
		/* The switch happened at start and cannot be redone (no CAP_SETUID left, and --user may have
		 * overridden the file): the running user stays, and config dump goes on naming it. */
		if (cfg.user[0])
			log_notice("reload: the file names user %s%s%s; the daemon keeps running as %s (a new user "
				   "takes effect at the next start)", cfg.user, cfg.group[0] ? " group " : "", cfg.group,
				   rt->running.user[0] ? rt->running.user : "the user it started as");
		memcpy(cfg.user, rt->running.user, sizeof(cfg.user));
		memcpy(cfg.group, rt->running.group, sizeof(cfg.group));
	}
	if (rc < 0 || apply_config(rt, &cfg, "reload", err, sizeof(err)) < 0) {
		config_free(&cfg);
		log_err("reload: %s; running configuration unchanged", err);
		notify_status("reload failed: %s; serving %u frontend(s) (configuration generation %u)", err,
			      rt->cur->nfrontends, rt->cur->id);
		return;
	}
	if (rt->control_changes)
		log_notice("reload: %s replaced the running configuration; %u change(s) made over the control socket "
			   "since the last load were discarded unless the file has them", rt->config_path,
			   rt->control_changes);
	rt->control_changes = 0;
}

const struct config *engine_config(const struct runtime *rt)
{
	return &rt->running;
}

int engine_change(struct runtime *rt, const struct cmd *c, char *err, size_t errlen)
{
	struct config cfg;
	if (atomic_load(&run_state) != RUNNING) {
		snprintf(err, errlen, "the daemon is shutting down");
		return -1;
	}
	if (config_copy(&cfg, &rt->running) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (config_apply(&cfg, c, err, errlen) < 0 || config_check(&cfg, err, errlen) < 0 ||
	    apply_config(rt, &cfg, "control", err, errlen) < 0) {
		config_free(&cfg);
		return -1;
	}
	rt->control_changes++;
	return 0;
}

/* Post r to every worker still running and wait for each answer (a worker answers after its current batch
 * of events: milliseconds). */
static int ask_workers(struct runtime *rt, struct worker_req *reqs, char *err, size_t errlen)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		pthread_mutex_lock(&w->mu);
		if (rt->exited[i])
			reqs[i].done = true;
		else
			w->req = &reqs[i];
		pthread_mutex_unlock(&w->mu);
	}
	wake_all(rt);
	int rc = 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		pthread_mutex_lock(&w->mu);
		while (!reqs[i].done)
			if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
				break;
		if (!reqs[i].done) {
			w->req = NULL;   /* the worker takes it under this lock: it will not touch reqs[i] now */
			snprintf(err, errlen, "worker %u did not answer within 5 s", i);
			rc = -1;
		}
		pthread_mutex_unlock(&w->mu);
	}
	return rc;
}

int engine_conns(struct runtime *rt, struct conn_info **out, size_t *n, char *err, size_t errlen)
{
	struct worker_req *reqs = calloc(rt->nworkers, sizeof(*reqs));
	size_t total = 0;
	*out = NULL;
	*n = 0;
	if (!reqs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = ask_workers(rt, reqs, err, errlen);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		if (reqs[i].failed && !rc) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
		total += reqs[i].done ? reqs[i].n : 0;
	}
	struct conn_info *v = rc ? NULL : malloc((total ? total : 1) * sizeof(*v));
	if (!rc && !v) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		if (v && reqs[i].n)
			memcpy(v + *n, reqs[i].v, reqs[i].n * sizeof(*v));
		if (v)
			*n += reqs[i].n;
		if (reqs[i].done)
			free(reqs[i].v);   /* an unanswered request's buffer may still be in use: leak it */
	}
	free(reqs);
	*out = v;
	return rc;
}

int engine_conn_kill(struct runtime *rt, uint64_t id)
{
	struct worker_req *reqs = calloc(rt->nworkers, sizeof(*reqs));
	char err[64];
	bool found = false;
	if (!reqs)
		return -ENOMEM;
	for (unsigned i = 0; i < rt->nworkers; i++)
		reqs[i].kill_id = id;
	ask_workers(rt, reqs, err, sizeof(err));
	for (unsigned i = 0; i < rt->nworkers; i++)
		found |= reqs[i].done && reqs[i].found;
	free(reqs);
	return found ? 0 : -ENOENT;
}

struct tls_frontend *engine_frontend_tls(const struct runtime *rt, const char *name)
{
	for (unsigned i = 0; i < rt->cur->nfrontends; i++)
		if (!strcmp(rt->cur->frontends[i].conf.name, name))
			return rt->cur->frontends[i].tls;
	return NULL;
}

/* Open connections, from each worker's own counter: no snapshot needed. */
static unsigned open_conns(const struct runtime *rt)
{
	unsigned open = 0;
	for (unsigned i = 0; i < rt->nworkers; i++)
		open += atomic_load_explicit(&rt->workers[i].nconns, memory_order_relaxed);
	return open;
}

/* What a scrape shows besides metrics.c's own counters (main thread: rt->cur is stable here). */
static void metrics_view(struct metrics_view *v, void *arg)
{
	const struct runtime *rt = arg;
	const struct generation *g = rt->cur;
	struct metrics_frontend *fe = calloc(g->nfrontends ? g->nfrontends : 1, sizeof(*fe));
	for (unsigned i = 0; fe && i < g->nfrontends; i++) {
		fe[i].name = g->frontends[i].conf.name;
		fe[i].mode = tlsoff_mode_name(g->frontends[i].conf.mode);
		fe[i].open = atomic_load_explicit(g->frontends[i].conns, memory_order_relaxed);
	}
	v->fe = fe;
	v->nfe = fe ? g->nfrontends : 0;
#define C(f) atomic_load_explicit(&counters.f, memory_order_relaxed)
	v->accepted = C(accepted);
	v->refused_max_conns = C(refused_max_conns);
	v->rekeys = C(rekeys);
	v->nic_preferred = C(nic_preferred);
	v->nic_not_applicable = C(nic_not_applicable);
#undef C
	/* The sockmap verdict's counters, summed over the workers that loaded it (a handle, once published,
	 * lives until the daemon exits). */
	for (unsigned i = 0; i < rt->nworkers; i++) {
		const struct sockmap_splice_handle *h = __atomic_load_n(&rt->workers[i].smap, __ATOMIC_ACQUIRE);
		uint64_t s[SOCKMAP_SPLICE_NSTATS];
		if (h && sockmap_splice_stats_read(h, s) == 0)
			for (unsigned k = 0; k < SOCKMAP_SPLICE_NSTATS; k++)
				v->sockmap_skbs[k] += s[k];
	}
	v->workers = rt->nworkers;
	v->generation = g->id;
	v->uptime_s = (now_ms() - rt->start_ms) / 1000;
	v->tls_stat_path = "/proc/net/tls_stat";
}

void engine_status(const struct runtime *rt, struct engine_status *st)
{
	st->conns = open_conns(rt);
	st->workers = rt->nworkers;
	st->generation = rt->cur->id;
	st->uptime_ms = now_ms() - rt->start_ms;
	st->caps = rt->caps;
	st->config_path = rt->config_path;
	st->sockmap = rt->sockmap;
	st->sockmap_cut = sockmap_splice_cut_overlap();
	st->sockmap_why = rt->sockmap_why;
	st->steering = rt->steering[0] ? rt->steering : (rt->steer == STEER_OFF ? "off" : "not used yet");
}


/* Free retired generations once every worker switched away and their last connection closed. */
static void reap_generations(struct runtime *rt)
{
	struct generation **pp = &rt->retired;
	while (*pp) {
		struct generation *g = *pp;
		bool switched = true;
		for (unsigned i = 0; i < rt->nworkers; i++)
			switched &= atomic_load(&rt->workers[i].gen_seen) > g->id;
		if (switched && gen_idle(g)) {
			*pp = g->next;
			gen_free(g);
		} else {
			pp = &g->next;
		}
	}
}

static void runtime_free(struct runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		close_pending(w);
		close_listeners(w);
		free(w->ls);
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wakefd >= 0)
			close(w->wakefd);
		sockdiag_close(w->diag);
		sockmap_splice_close(w->smap);
		free(w->peek);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	free(rt->workers);
	free(rt->exited);
	gen_free(rt->cur);
	while (rt->retired) {
		struct generation *g = rt->retired;
		rt->retired = g->next;
		gen_free(g);
	}
	config_free(&rt->running);
}

/* Can this kernel (and this process) use a BPF sockmap? Reported by `tlsoffctl status`. */
static void probe_sockmap(struct runtime *rt)
{
	struct sockmap_splice_handle *h = sockmap_splice_open(4, rt->sockmap_why, sizeof(rt->sockmap_why));
	rt->sockmap = h != NULL;
	sockmap_splice_close(h);
}

/* Is fd's own address (getsockname) the address a? The configuration's text may name the address
 * differently from the old daemon's; the kernel's socket address decides. */
static bool sock_is(int fd, const struct tlsoff_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != a->ss.ss_family)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&ss, *y = (const void *)&a->ss;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&ss, *y = (const void *)&a->ss;
		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	return false;
}

/* --takeover: which frontend each received socket serves here (-1: none; it is closed after the start).
 * The sockets of one address are a SO_REUSEPORT group, in the old daemon's worker order; socket p of a
 * group goes to worker p % nworkers — a worker gets its own slot's socket first (its primary), and with
 * fewer workers than the old daemon had, the rest as extras (listeners_for). With more, the workers left
 * without one bind a fresh socket into the same group. */
static int *inherit_map(struct runtime *rt, bool *inherited_fe)
{
	struct takeover *tk = rt->tk;
	int *map = calloc(tk->n + 1, sizeof(*map));
	if (!map)
		return NULL;
	for (size_t k = 0; k < tk->n; k++) {
		map[k] = -1;
		for (unsigned f = 0; tk->v[k].kind == TLSOFF_LSN_KIND_FRONTEND && f < rt->cur->nfrontends; f++)
			if (sock_is(tk->v[k].fd, &rt->cur->frontends[f].conf.listen)) {
				map[k] = (int)f;
				inherited_fe[f] = true;
			}
	}
	return map;
}

/* Worker i's share (of nworkers: the final count, rt->nworkers still grows while they are set up) of the
 * received sockets, as an `old` set for listeners_for. */
static struct listener *inherited_for(struct runtime *rt, const int *map, unsigned i, unsigned nworkers,
				      unsigned *n)
{
	struct takeover *tk = rt->tk;
	struct listener *v = calloc(tk->n + 1, sizeof(*v));
	*n = 0;
	for (unsigned f = 0; v && f < rt->cur->nfrontends; f++) {
		unsigned p = 0;                               /* position in the group */
		for (size_t k = 0; k < tk->n; k++) {
			if (map[k] != (int)f)
				continue;
			if (p++ % nworkers != i)
				continue;
			tk->v[k].used = true;
			v[(*n)++] = (struct listener){ .kind = EP_LISTENER, .fd = tk->v[k].fd, .fe = &rt->cur->frontends[f] };
		}
	}
	return v;
}

/* Build everything before starting anything: a bad certificate or a busy port starts nothing. */
static int runtime_build(struct runtime *rt, const struct config *cfg, const struct engine_opts *opts,
			 struct ktls_caps *caps, char *err, size_t errlen)
{
	memset(rt, 0, sizeof(*rt));
	rt->config_path = opts->config_path;
	rt->caps = caps;
	rt->start_ms = now_ms();
	rt->steer = opts->steer;
	/* The program's slot is the CPU number: it takes one worker per CPU, worker i pinned to CPU i, so the
	 * CPUs this process may use must be exactly 0..n-1 (not so under a cpuset like 2-3). */
	cpu_set_t allowed;
	unsigned ncpu = 0;
	bool contiguous = sched_getaffinity(0, sizeof(allowed), &allowed) == 0;
	for (unsigned c = 0; contiguous && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &allowed))
			contiguous = c == ncpu++;
	if (rt->steer != STEER_OFF && (!contiguous || opts->workers != ncpu)) {
		if (!contiguous)
			snprintf(rt->steering, sizeof(rt->steering), "off (the allowed CPUs are not 0..n-1)");
		else
			snprintf(rt->steering, sizeof(rt->steering), "off (%u workers for %u CPUs)", opts->workers, ncpu);
		log_notice("connection steering %s: it needs one worker per CPU, on CPUs 0..n-1", rt->steering);
		rt->steer = STEER_OFF;
	} else if (rt->steer == STEER_OFF) {
		snprintf(rt->steering, sizeof(rt->steering), "off");
	}
	if (config_copy(&rt->running, cfg) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!(rt->cur = gen_build(cfg, rt->caps, 1, NULL, err, errlen)))
		return -1;
	rt->tk = opts->takeover;
	bool *inherited_fe = calloc(rt->cur->nfrontends + 1, sizeof(*inherited_fe));
	int *map = inherited_fe && rt->tk ? inherit_map(rt, inherited_fe) : NULL;
	if (!inherited_fe || (rt->tk && !map)) {
		free(inherited_fe);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned f = 0; f < rt->cur->nfrontends; f++)
		if (!inherited_fe[f] && address_free(&rt->cur->frontends[f].conf, err, errlen) < 0) {
			free(inherited_fe);
			free(map);
			return -1;
		}
	free(inherited_fe);
	if (!(rt->workers = calloc(opts->workers, sizeof(*rt->workers))) ||
	    !(rt->exited = calloc(opts->workers, sizeof(*rt->exited)))) {
		snprintf(err, errlen, "out of memory");
		free(map);
		return -1;
	}
	for (unsigned i = 0; i < opts->workers; i++) {
		struct worker *w = &rt->workers[i];
		w->id = (int)i;
		w->caps = caps;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		atomic_store(&w->gen_seen, rt->cur->id);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		rt->nworkers++;
		if (w->epfd < 0 || w->wakefd < 0) {
			snprintf(err, errlen, "worker setup: %s", strerror(errno));
			free(map);
			return -1;
		}
		static enum ep_kind wake_kind = EP_WAKE;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_kind };
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
		unsigned nold = 0;
		struct listener *old = NULL;
		if (map && !(old = inherited_for(rt, map, i, opts->workers, &nold))) {
			snprintf(err, errlen, "out of memory");
			free(map);
			return -1;
		}
		w->ls = listeners_for(rt->cur, old, nold, &w->nls, err, errlen);
		free(old);
		if (!w->ls) {
			free(map);
			return -1;
		}
		for (unsigned f = 0; f < w->nls; f++)
			listener_arm(w, &w->ls[f], true);
	}
	free(map);
	struct listener **sets = calloc(rt->nworkers, sizeof(*sets));
	for (unsigned i = 0; sets && i < rt->nworkers; i++)
		sets[i] = rt->workers[i].ls;
	if (sets)
		steer_new(rt, sets, rt->cur, NULL, NULL);
	free(sets);
	rt->tk = NULL;
	return 0;
}

/* Stop accepting and give the open connections drain_seconds to finish (SIGTERM, or a successor took our
 * sockets over). The workers close their listeners on their next wake-up. */
static void start_drain(struct runtime *rt)
{
	atomic_store(&run_state, DRAINING);
	rt->drain_deadline = now_ms() + rt->drain_seconds * 1000ull;
	wake_all(rt);
}

bool engine_running(const struct runtime *rt)
{
	(void)rt;
	return atomic_load(&run_state) == RUNNING;
}

int engine_listeners(struct runtime *rt, int (*fn)(int fd, const char *frontend, const char *listen,
						    unsigned worker, void *arg), void *arg, char *err, size_t errlen)
{
	if (atomic_load(&run_state) != RUNNING) {
		snprintf(err, errlen, "the daemon is shutting down");
		return -1;
	}
	/* A change the workers have not taken yet would leave its new sockets out: wait for it, as
	 * apply_config does. The sets cannot change under us afterwards: changes come from this thread. */
	if (workers_took_change(rt, "last", err, errlen) < 0)
		return -1;
	/* The sets, copied under each worker's lock; fn (which may wait for the client) runs without it. They
	 * stay valid meanwhile: a worker changes its set or closes it only on a request from this thread. */
	int rc = 0;
	for (unsigned i = 0; i < rt->nworkers && !rc; i++) {
		struct worker *w = &rt->workers[i];
		pthread_mutex_lock(&w->mu);
		unsigned n = w->nls;
		struct listener *v = malloc((n ? n : 1) * sizeof(*v));
		if (v)
			memcpy(v, w->ls, n * sizeof(*v));
		pthread_mutex_unlock(&w->mu);
		if (!v) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (unsigned k = 0; k < n && !rc; k++)
			if (v[k].fd >= 0 && (rc = fn(v[k].fd, v[k].fe->conf.name, v[k].fe->conf.listen.text, i, arg)) < 0)
				snprintf(err, errlen, "sending the listener of frontend %s (worker %u): %s",
					 v[k].fe->conf.name, i, strerror(-rc));
		free(v);
	}
	return rc ? -1 : 0;
}

void engine_handed_over(struct runtime *rt, pid_t pid)
{
	rt->successor = pid;
	log_notice("takeover: tlsoffd pid %d serves on our sockets now: no new connections here; %u open "
		   "connection(s) get %u s to finish, then this process exits", (int)pid, open_conns(rt),
		   rt->drain_seconds);
	/* systemd: the new daemon is the service's main process from now on (it is in the unit's cgroup:
	 * our child, or started by the operator in it). */
	notify_mainpid(pid, "handed over to the new tlsoffd: draining the open connections");
	rt->metrics_retire = true;   /* the new daemon serves the metrics (it bound the address too) */
	start_drain(rt);
}

/* SIGUSR2: run our own binary (as it is on disk now: a new version when the package was upgraded) with
 * the same arguments and --takeover. It takes the sockets over through the control socket; if it fails
 * (a bad configuration, a binary that does not start) this process simply carries on. */
static pid_t upgrade_exec(const struct engine_opts *opts)
{
	if (!opts->control_path) {
		log_err("upgrade (SIGUSR2): impossible without a control socket (--control none): the new process "
			"takes the sockets over through it");
		return -1;
	}
	if (!opts->exe || !opts->argv) {
		log_err("upgrade (SIGUSR2): the daemon's own binary is unknown");
		return -1;
	}
	size_t n = 0;
	while (opts->argv[n])
		n++;
	char **argv = calloc(n + 2, sizeof(*argv));
	char *take = NULL;
	if (!argv || asprintf(&take, "--takeover=%s", opts->control_path) < 0) {
		free(argv);
		log_err("upgrade (SIGUSR2): out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		argv[i] = opts->argv[i];
	argv[n] = take;   /* the last --takeover wins: this one names our control socket */
	/* The child holds a copy of every descriptor until execv closes them (all are O_CLOEXEC): sockets we
	 * close meanwhile stay in our epoll sets unless removed first (close_watched, engine.h). */
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec: we are a copy of a threaded process. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);   /* signalfd's blocked signals would survive exec */
		signal(SIGPIPE, SIG_DFL);
		execv(opts->exe, argv);
		_exit(127);
	}
	free(argv);
	free(take);
	if (pid < 0) {
		log_err("upgrade (SIGUSR2): fork: %s", strerror(errno));
		return -1;
	}
	log_notice("upgrade (SIGUSR2): started %s --takeover as pid %d; it takes over the listeners, then this "
		   "process drains", opts->exe, (int)pid);
	return pid;
}

static int drop_privileges(const struct privdrop *pd, const char *control_path, char *err, size_t errlen)
{
	char why[TLSOFF_ERR_MAX], caps[160];
	/* The SIGUSR2 upgrade's new process runs as the user from its start and takes the sockets over
	 * through the control socket: the user must be able to connect to it (its group stays). */
	if (control_path && geteuid() == 0 && pd->uid != 0 && chown(control_path, pd->uid, (gid_t)-1) < 0)
		log_warn("control socket %s: cannot give it to user %s (%s): an upgrade (SIGUSR2) will fail",
			 control_path, pd->user, strerror(errno));
	if (privdrop_apply(pd, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot run as user %s: %s", pd->user, why);
		return -1;
	}
	privdrop_caps_text(privdrop_kept_caps, caps, sizeof(caps));
	log_notice("privileges: running as user %s (uid %u) group %s (gid %u) with %s only; a reload reads "
		   "certificates, keys, ticket keys and OCSP responses as this user", pd->user, (unsigned)getuid(),
		   pd->group[0] ? pd->group : "?", (unsigned)getgid(), caps);
	return 0;
}

static void log_stats(const struct runtime *rt)
{
	/* Heap bytes in use (main arena: run with MALLOC_ARENA_MAX=1 to count every thread's allocations) next
	 * to the open connections: what an offloaded connection costs. */
	unsigned open = open_conns(rt);
	struct mallinfo2 mi = mallinfo2();
#define C(f) atomic_load_explicit(&counters.f, memory_order_relaxed)
	log_notice("stats: connections=%u heap_in_use=%zu accepted=%lu refused_max_conns=%lu "
		   "handshake_failed=%lu splice=%lu userspace=%lu sockmap=%lu rekeys=%lu rekey_unsupported=%lu",
		   open, mi.uordblks, C(accepted), C(refused_max_conns), C(handshake_failed), C(splice),
		   C(userspace), C(sockmap), C(rekeys), C(rekey_unsupported));
#undef C
}

/* The main thread: signals (signalfd), the control socket and link events, one at a time, so a reload
 * and a control command never interleave. */
struct main_loop {
	int epfd, sigfd;
	struct control *ctl;
	struct netdev_monitor *mon;
};

/* nic-offload prefer: the workers read each egress device's TLS features from this copy (nic_route.c). */
static void publish_links(const struct netdev_monitor *mon)
{
	size_t n;
	const struct netdev_info *v = netdev_monitor_view(mon, &n);
	nic_devices_publish(v, n);
}

static int main_loop_open(struct main_loop *ml, struct runtime *rt, const struct engine_opts *opts,
			  const sigset_t *set, char *err, size_t errlen)
{
	static enum main_kind sig_kind = MK_SIGNAL, mon_kind = MK_NETDEV;
	memset(ml, 0, sizeof(*ml));
	ml->sigfd = -1;
	if ((ml->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (ml->sigfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "main loop: %s", strerror(errno));
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &sig_kind };
	epoll_ctl(ml->epfd, EPOLL_CTL_ADD, ml->sigfd, &ev);
	if (opts->control_path &&
	    !(ml->ctl = control_open(opts->control_path, opts->control_group, ml->epfd, rt,
				     takeover_control_fd(opts->takeover), err, errlen)))
		return -1;
	if (!(rt->metrics = metrics_http_new(ml->epfd, metrics_view, rt)) ||
	    metrics_http_prepare(rt->metrics, &rt->running.metrics, err, errlen) < 0) {
		if (!rt->metrics)
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	metrics_http_commit(rt->metrics);
	char msg[256];
	if (!(ml->mon = netdev_monitor_open(msg, sizeof(msg)))) {
		log_warn("link events: %s; offload changes will not be logged", msg);
	} else {
		ev.data.ptr = &mon_kind;
		epoll_ctl(ml->epfd, EPOLL_CTL_ADD, netdev_monitor_fd(ml->mon), &ev);
		publish_links(ml->mon);
	}
	return 0;
}

static void main_loop_close(struct main_loop *ml)
{
	control_close(ml->ctl);
	netdev_monitor_close(ml->mon);
	nic_devices_publish(NULL, 0);
	if (ml->sigfd >= 0)
		close(ml->sigfd);
	if (ml->epfd >= 0)
		close(ml->epfd);
}

int engine_run(struct config *cfg, const struct engine_opts *opts, const struct ktls_caps *caps_in)
{
	struct runtime rt;
	struct main_loop ml = { .epfd = -1, .sigfd = -1 };
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	static struct ktls_caps caps;
	caps = *caps_in;

	if (tickets_init() < 0) {
		log_err("cannot create session ticket keys");
		return 1;
	}
	if (tickets_configure(cfg->ticket_keys, err, sizeof(err)) < 0) {
		log_err("ticket keys: %s", err);
		tickets_cleanup();
		return 1;
	}
	/* Signals go to this thread only (signalfd below); the workers never see them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);   /* SSL_write uses write(2): a reset client must not kill the daemon */

	if (runtime_build(&rt, cfg, opts, &caps, err, sizeof(err)) < 0 ||
	    main_loop_open(&ml, &rt, opts, &set, err, sizeof(err)) < 0) {
		log_err("%s", err);
		main_loop_close(&ml);
		metrics_http_free(rt.metrics);
		runtime_free(&rt);
		return 1;
	}
	probe_sockmap(&rt);
	rt.drain_seconds = opts->drain_seconds;
	if (opts->takeover)
		takeover_release(opts->takeover, false);   /* sockets of frontends we do not have */

	/* Listeners bound, BPF loaded, control socket and metrics listener open, keys read: from here on the
	 * daemon needs no more than privdrop_kept_caps. Before the workers start: capabilities are per thread. */
	if (opts->drop && drop_privileges(opts->drop, opts->control_path, err, sizeof(err)) < 0) {
		log_err("%s", err);
		atomic_store(&run_state, STOPPING);
		main_loop_close(&ml);
		metrics_http_free(rt.metrics);
		runtime_free(&rt);
		return 1;
	}
	pthread_t *th = calloc(rt.nworkers, sizeof(*th));
	for (unsigned i = 0; i < rt.nworkers; i++)
		if (pthread_create(&th[i], NULL, worker_main, &rt.workers[i]) != 0) {
			log_err("cannot start worker %u", i);
			atomic_store(&run_state, STOPPING);
			wake_all(&rt);
			for (unsigned j = 0; j < i; j++)
				pthread_join(th[j], NULL);
			free(th);
			main_loop_close(&ml);
			metrics_http_free(rt.metrics);
			runtime_free(&rt);
			return 1;
		}
	if (rt.steer != STEER_OFF)   /* steering hands a SYN on CPU i to worker i: worker i must run there */
		for (unsigned i = 0; i < rt.nworkers; i++) {
			cpu_set_t set1;
			CPU_ZERO(&set1);
			CPU_SET(i, &set1);
			int e = pthread_setaffinity_np(th[i], sizeof(set1), &set1);
			if (e)
				log_warn("worker %u: cannot pin it to CPU %u (%s): its connections may run elsewhere", i, i,
					 strerror(e));
		}
	log_frontends(rt.cur);
	log_notice("tlsoffd ready: %u worker(s), pid %d%s%s", rt.nworkers, (int)getpid(),
		   opts->control_path ? ", control socket " : "", opts->control_path ? opts->control_path : "");
	if (opts->takeover) {
		/* Our workers accept on the sockets now: the old daemon may stop. If it cannot say so (it died
		 * meanwhile) the sockets are ours all the same. */
		if (takeover_confirm(opts->takeover, err, sizeof(err)) < 0)
			log_warn("%s", err);
		else
			log_notice("takeover: done; tlsoffd pid %d stops accepting and drains its connections",
				   (int)opts->takeover->old_pid);
		takeover_release(opts->takeover, true);
	}
	{
		char status[64];
		snprintf(status, sizeof(status), "serving %u frontend(s)", rt.cur->nfrontends);
		notify_ready(status);
	}

	pid_t upgrade_child = 0;
	uint64_t next_rotate = now_ms() + TICKET_ROTATE_SECONDS * 1000ull;
	unsigned running = rt.nworkers;
	while (running) {
		struct epoll_event ev[16];
		int n = epoll_wait(ml.epfd, ev, 16, 200);
		for (int i = 0; i < n; i++) {
			enum main_kind kind = *(enum main_kind *)ev[i].data.ptr;
			if (kind == MK_NETDEV) {
				netdev_monitor_process(ml.mon);
				publish_links(ml.mon);
				continue;
			}
			if (kind == MK_METRICS_LISTEN || kind == MK_METRICS_CLIENT) {
				metrics_http_event(rt.metrics, ev[i].data.ptr, ev[i].events);
				continue;
			}
			if (kind != MK_SIGNAL) {
				control_event(ml.ctl, ev[i].data.ptr, ev[i].events);
				continue;
			}
			struct signalfd_siginfo si;
			while (read(ml.sigfd, &si, sizeof(si)) == sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGTERM || sig == SIGINT) {
					if (atomic_load(&run_state) == RUNNING) {
						log_notice("signal %d: draining (no new connections; %u s for open ones to "
							   "finish)", sig, opts->drain_seconds);
						notify_stopping();
						start_drain(&rt);
					} else {
						log_notice("second signal: stopping now");
						notify_status("stopping now: closing the open connections");
						atomic_store(&run_state, STOPPING);
					}
					wake_all(&rt);
				} else if (sig == SIGUSR1) {
					log_stats(&rt);
				} else if (sig == SIGUSR2) {
					if (atomic_load(&run_state) != RUNNING)
						log_notice("SIGUSR2 while draining: ignored");
					else if (upgrade_child > 0)
						log_notice("SIGUSR2: the upgrade started as pid %d is still going on",
							   (int)upgrade_child);
					else
						upgrade_child = upgrade_exec(opts);
				} else if (sig == SIGHUP) {
					if (atomic_load(&run_state) == RUNNING) {
						notify_reloading();
						reload(&rt);
						notify_ready(NULL);
					} else {
						log_notice("SIGHUP while draining: ignored");
					}
				}
			}
		}
		if (upgrade_child > 0) {
			int status;
			if (waitpid(upgrade_child, &status, WNOHANG) == upgrade_child) {
				if (!rt.successor)
					log_err("upgrade (SIGUSR2): the new tlsoffd pid %d %s %d before taking over; this "
						"process carries on serving", (int)upgrade_child,
						WIFEXITED(status) ? "exited with status" : "was killed by signal",
						WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
				upgrade_child = 0;
			}
		}
		if (rt.drain_deadline && now_ms() >= rt.drain_deadline && atomic_load(&run_state) == DRAINING) {
			log_notice("drain deadline reached: closing the remaining connections");
			notify_status("drain deadline reached: closing the remaining connections");
			atomic_store(&run_state, STOPPING);
			wake_all(&rt);
		}
		if (now_ms() >= next_rotate) {
			tickets_rotate();
			next_rotate = now_ms() + TICKET_ROTATE_SECONDS * 1000ull;
		}
		tickets_tick();
		ocsp_tick();
		reap_generations(&rt);
		control_tick(ml.ctl);
		metrics_http_tick(rt.metrics);
		if (rt.metrics_retire) {   /* after the batch: none of its events points at it any more */
			metrics_http_free(rt.metrics);
			rt.metrics = NULL;
			rt.metrics_retire = false;
		}
		running = 0;
		for (unsigned i = 0; i < rt.nworkers; i++) {
			if (rt.exited[i])
				continue;
			if (pthread_tryjoin_np(th[i], NULL) == EBUSY) {
				running++;
			} else {
				pthread_mutex_lock(&rt.workers[i].mu);
				rt.exited[i] = true;
				pthread_mutex_unlock(&rt.workers[i].mu);
			}
		}
	}
	free(th);
	main_loop_close(&ml);
	metrics_http_free(rt.metrics);
	runtime_free(&rt);
	tickets_cleanup();
	log_notice("tlsoffd stopped");
	return 0;
}
