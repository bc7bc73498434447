/* metrics.h — what tlsoffd counts for Prometheus (`metrics listen ADDR:PORT`), and the text it serves.
 *
 * Counting: the workers call the metrics_* hooks below at the few points where something happens (a
 * handshake ends, kTLS is installed, bytes move, a connection closes with an error). Every counter is a
 * relaxed atomic in one fixed-size table: label values come from closed sets (a cipher name outside the
 * table is "other"), so the number of series is bounded whatever clients send.
 * Serving: metrics_http.c, on the main thread's epoll, renders with metrics_render().
 */
#ifndef TLSOFF_METRICS_H
#define TLSOFF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsoff/config.h"
#include "tlsoff/sockmap_splice.h"

struct conn;

enum metrics_result { MR_FULL, MR_RESUMED, MR_FAILED, MR__N };
enum metrics_path { MP_SPLICE, MP_USERSPACE, MP_SOCKMAP, MP__N };
enum metrics_dir { MD_IN, MD_OUT };   /* in: client -> backend; out: backend -> client */

/* hooks, called by the workers */
void metrics_handshake(const char *version, const char *cipher, enum metrics_result r);
void metrics_bytes(enum metrics_path p, enum metrics_dir d, uint64_t n);
void metrics_ktls_installed(unsigned txconf, unsigned rxconf);   /* sock_diag's TLS_CONF_*, 0 = unknown */
void metrics_conn_error(const char *reason);

/* The label an error reason (a connection's close reason) is counted under. */
const char *metrics_error_class(const char *reason);

/* What the renderer needs from the engine besides the counters above. */
struct metrics_frontend {
	const char *name, *mode;                    /* mode: "tls", "plain", "passthrough" */
	int open;                                    /* open connections, all generations */
};
struct metrics_view {
	const struct metrics_frontend *fe;
	unsigned nfe;
	unsigned long accepted, refused_max_conns, rekeys;
	unsigned long nic_preferred, nic_not_applicable;   /* nic-offload prefer decisions */
	unsigned workers, generation;
	uint64_t uptime_s;
	const char *tls_stat_path;                   /* /proc/net/tls_stat (tests may point elsewhere) */
	uint64_t sockmap_skbs[SOCKMAP_SPLICE_NSTATS];  /* the sockmap verdict's outcomes, all workers */
};

/* A growing text buffer. */
struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

/* Prometheus text exposition format 0.0.4: HELP and TYPE for every family, then its samples. */
void metrics_render(struct mbuf *out, const struct metrics_view *v);

/* metrics_http.c: the HTTP listener, on the main thread's epoll (tags start with enum main_kind, engine.h).
 * GET /metrics answers the rendered text; anything else gets 404 or 400; a client has 5 s to send its
 * request, 64 may be connected at once. */
struct metrics_http;
struct metrics_http *metrics_http_new(int epfd, void (*view)(struct metrics_view *v, void *arg), void *arg);
/* Make addr (text "" = none) the address served, in two steps like a configuration change: prepare binds
 * a new address (the one served stays until commit; the same address keeps its socket), -1 with err set
 * if it cannot; commit switches to it, abort forgets it. */
int metrics_http_prepare(struct metrics_http *mh, const struct tlsoff_addr *addr, char *err, size_t errlen);
void metrics_http_commit(struct metrics_http *mh);
void metrics_http_abort(struct metrics_http *mh);
void metrics_http_event(struct metrics_http *mh, void *tag, uint32_t events);
void metrics_http_tick(struct metrics_http *mh);
void metrics_http_free(struct metrics_http *mh);

#endif
