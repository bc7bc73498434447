/* engine.h — the daemon's runtime objects, private to datapath/.
 *
 * One worker thread per core, each with its own epoll and its own SO_REUSEPORT listener per frontend, so a
 * connection lives on one thread from accept to close and nothing on the data path takes a lock.
 * Sockets are registered once, edge-triggered, for IN|OUT|RDHUP; readiness is remembered per side
 * (conn->rd/wr) and cleared when a syscall says EAGAIN, so the relay never calls epoll_ctl per event.
 */
#ifndef TLSOFF_ENGINE_H
#define TLSOFF_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "tlsoff/config.h"
#include "tlsoff/ktls.h"
#include "tlsoff/proxy_v2.h"
#include "tlsoff/sockdiag.h"
#include "tlsoff/tls_ctx.h"

/* Close a descriptor that is in the epoll set epfd. close() alone removes the registration only when the
 * socket's last descriptor goes: while a copy lives on — in the child between fork and exec of a SIGUSR2
 * upgrade, say — epoll goes on reporting events that point at memory we freed. */
static inline void close_watched(int epfd, int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

#define RELAY_BUF   (64 * 1024)      /* userspace datapath: up to four full TLS records of plaintext per
				      * direction, so the plain side moves 64 KB per read()/send() */
#define PIPE_BYTES  (256 * 1024)     /* splice datapath: pipe size per direction */

enum ep_kind { EP_LISTENER, EP_CONN_CLIENT, EP_CONN_BACKEND, EP_WAKE };

struct backend_tls;
struct privdrop;

struct backend_rt {
	struct backend_conf conf;
	struct backend_tls *tls;                     /* re-encryption (`tls`): the client-side SSL_CTX; NULL = plain */
	atomic_uint rr;                              /* round robin position */
	atomic_int active[TLSOFF_MAX_SERVERS];       /* open connections per server (leastconn) */
};

struct frontend_rt {
	struct frontend_conf conf;
	struct tls_frontend *tls;                    /* NULL for plain and passthrough frontends */
	struct backend_rt *backend;                  /* NULL: a passthrough frontend without default */
	struct backend_rt *backends;                 /* the generation's, for passthrough routes by name */
	unsigned nbackends;
	atomic_int *conns;                           /* open connections, all workers and all configuration
						      * generations of this frontend name (max-conns) */
	unsigned *conns_refs;                        /* generations sharing *conns (main thread only) */
	atomic_int refs;
};

struct listener {
	enum ep_kind kind;                           /* EP_LISTENER: first, epoll data points here */
	int fd;
	struct frontend_rt *fe;
	uint64_t paused_until_ms;                    /* accept backoff after EMFILE/ENFILE */
	uint64_t last_pause_log_ms;
};

/* CS_ROUTE, CS_JOIN and CS_SOCKMAP belong to plain and passthrough frontends (sockmap_conn.c): choose the
 * backend (passthrough: by the ClientHello), write the PROXY header, then the kernel carries the bytes. */
enum conn_state { CS_HANDSHAKE, CS_CONNECT, CS_RELAY, CS_LINGER, CS_DONE, CS_ROUTE, CS_JOIN, CS_SOCKMAP,
		  CS_BACKEND_TLS /* re-encryption: our TLS handshake with the server (backend_tls.c) */ };
enum side { CLIENT = 0, BACKEND = 1 };

/* One direction of the relay: bytes read from side `from` and written to side `to`. */
struct flow {
	enum side from, to;
	/* userspace datapath */
	uint8_t *buf;
	size_t off, len;
	/* splice datapath */
	int pipe[2];
	size_t inpipe, cap;                          /* bytes in the pipe, its size */
	bool pipe_full;                              /* splice into the pipe said EAGAIN with bytes queued */
	bool eof;                                    /* the source has finished (FIN / close_notify) */
	bool shut;                                   /* ... and that end was passed on to the destination */
	int ssl_want;                                /* userspace: this flow's SSL op waits for WANT_READ/WRITE */
	int ssl_want_w;                              /* ... its SSL_write to a re-encrypted backend */
	uint64_t bytes;
};

struct conn_ep {
	enum ep_kind kind;                           /* EP_CONN_CLIENT / EP_CONN_BACKEND */
	struct conn *c;
};

struct worker;

struct conn {
	struct conn_ep ep[2];
	uint64_t id;                                 /* daemon-wide, for tlsoffctl conn show / kill */
	struct worker *w;
	struct conn *prev, *next;                    /* the worker's list, for timeouts and shutdown */
	struct frontend_rt *fe;
	struct backend_rt *be;                       /* fe->backend, or the passthrough route's */
	enum conn_state state;
	int fd[2];
	bool rd[2], wr[2];                           /* edge-triggered readiness, per side */
	SSL *ssl;                                    /* freed once the keys are in the kernel (splice) */
	struct ktls_session *ks;                     /* TLS 1.3 secrets for KeyUpdate, kernels that rekey */
	enum tlsoff_datapath datapath;               /* chosen: DATAPATH_SPLICE or DATAPATH_USERSPACE */
	char *datapath_why;                          /* why not kTLS (heap), NULL when offloaded */
	unsigned ktls;                               /* KTLS_TX | KTLS_RX installed */
	uint8_t txconf, rxconf;                      /* as sock_diag reports them: TLS_CONF_SW / _HW ... */
	struct flow up, down;                        /* up: client -> backend, down: backend -> client */
	int server;                                  /* index into backend servers, -1 before connecting */
	unsigned attempts;
	uint8_t *pre;                                /* PROXY v2 header to send before relaying (heap) */
	size_t pre_len, pre_off;
	bool key_update_pending;                     /* splice: our KeyUpdate answer is due before more TX */
	bool linger_ok;                              /* the failure was the client talking after our close */
	bool paired, fin_retry;                      /* sockmap: joined; a FIN waits for bytes in flight */
	uint64_t fin_since_ms, outq;                 /* sockmap: since when; send queues at the last look */
	unsigned rekeys;                             /* TLS 1.3 KeyUpdates followed (each direction counts) */
	uint64_t start_ms, deadline_ms;
	char client[48], sni[64], alpn[32];
	const char *server_text;                     /* the backend's own text: outlives the connection */
	const char *version, *cipher;                /* OpenSSL's static names: valid after SSL_free */
	const char *close_reason;
	bool error;
	struct nic_choice nic;                       /* nic-offload prefer: the ClientHello's decision */
	/* re-encryption: the backend leg. bssl is freed once its keys are in the kernel (splice datapath). */
	SSL *bssl;
	struct ktls_session *bks;                    /* its TLS 1.3 secrets for KeyUpdate */
	unsigned bktls;                              /* KTLS_TX | KTLS_RX installed on fd[BACKEND] */
	bool be_key_update_pending;                  /* our KeyUpdate answer to the server is due */
	const char *be_version, *be_cipher;          /* OpenSSL's static names */
};

struct worker {
	int id;
	int epfd;
	int wakefd;                                  /* eventfd: stop / drain requests from the main thread */
	struct listener *ls;
	unsigned nls;
	struct conn *conns;                          /* list head */
	struct conn *dead;                           /* closed during this batch of events, freed after it */
	atomic_uint nconns;                          /* written by the worker, read by SIGUSR1 stats */
	uint64_t now_ms;
	struct ktls_caps *caps;
	struct nl_sock *diag;                        /* NETLINK_SOCK_DIAG, opened on first use */
	struct sockmap_splice_handle *smap;          /* plain/passthrough: loaded on first use (atomic store:
						      * the main thread reads its counters; kept until exit) */
	bool smap_failed;
	uint64_t smap_retry_ms;
	char smap_why[512];
	uint8_t *peek;                               /* passthrough: CLIENT_HELLO_MAX bytes for MSG_PEEK */
	bool diag_failed;                            /* ... and not retried per connection if that failed */
	bool scrub_stack;                            /* this batch ran TLS key material: stack_scrub() after it */
	/* reload: listeners prepared by the main thread, taken by the worker on its next wake-up */
	pthread_mutex_t mu;
	struct listener *pending_ls;
	unsigned pending_nls, pending_gen;
	atomic_uint gen_seen;                        /* the configuration generation it listens for */
	/* control: a request from the main thread, served after the worker's next batch of events */
	pthread_cond_t cv;
	struct worker_req *req;
};

/* What `tlsoffctl conn show` reports of one connection: copied by its worker, so the data path takes no
 * lock; the kTLS modes are filled in by the control thread from one sock_diag dump (by socket cookie). */
struct conn_info {
	uint64_t id, cookie, in, out, age_ms;
	char frontend[TLSOFF_NAME_MAX], backend[TLSOFF_NAME_MAX], client[48], server[80], sni[64], alpn[32];
	char why[200];
	const char *state, *version, *cipher, *datapath;
	unsigned ktls, rekeys, worker;
	unsigned txconf, rxconf;                     /* TLS_CONF_*; 0 = no TLS ULP on the socket */
	char nic[128];                               /* the nic-offload decision in words, "" when off */
	const char *be_tls, *be_version, *be_cipher; /* re-encrypted backend leg: "ktls"/"userspace"; NULL = plain */
};

struct worker_req {
	uint64_t kill_id;                            /* nonzero: close this connection; else take a snapshot */
	bool found;
	struct conn_info *v;
	size_t n, cap;
	bool failed, done;
};

/* How new connections are spread over the workers (steer.c). inherited: the group was taken over from
 * another tlsoffd (its steering program is replaced, its sockets may still sit in that program's map). */
enum steer_mode { STEER_BPF, STEER_INCOMING_CPU, STEER_OFF };
const char *steer_group(const char *frontend, const int *fds, unsigned n, enum steer_mode mode, bool inherited);

/* takeover.c: the new daemon's side of a seamless upgrade (docs/architecture.md "Upgrading"). */
struct inherited {
	int fd;                                      /* -1 once closed */
	int kind;                                    /* enum tlsoff_lsn_kind */
	unsigned worker;                             /* the old daemon's worker (slot) */
	char frontend[TLSOFF_NAME_MAX], listen[80];  /* as the old daemon called it (for the log) */
	bool used;                                   /* taken by a worker (or as the control socket) */
};
struct takeover {
	int fd;                                      /* our connection to the old daemon's control socket */
	char path[TLSOFF_PATH_MAX];
	struct inherited *v;
	size_t n;
	pid_t old_pid;                               /* the old daemon's (TLSOFF_LSN_PID) */
};
/* Connect to the daemon on path, ask for its sockets and receive them. Returns 0 or -1 with err set. */
int takeover_fetch(const char *path, struct takeover *tk, char *err, size_t errlen);
/* We serve on them now: tell the old daemon (it stops accepting and drains). Returns 0 or -1 with err. */
int takeover_confirm(struct takeover *tk, char *err, size_t errlen);
/* Close what no worker took (frontends the new configuration lacks) and, with all, the connection. */
void takeover_release(struct takeover *tk, bool all);
/* The inherited control socket, or -1. Marks it used. */
int takeover_control_fd(struct takeover *tk);

struct engine_opts {
	const char *config_path;                     /* re-read on SIGHUP */
	const char *control_path;                    /* NULL: no control socket */
	const char *control_group;                   /* NULL: the daemon's group */
	unsigned workers;
	unsigned drain_seconds;
	enum steer_mode steer;                       /* STEER_BPF by default; off unless one worker per CPU */
	struct takeover *takeover;                   /* non-NULL: serve on the sockets taken from the old daemon */
	const char *exe;                             /* our binary (absolute), re-executed by SIGUSR2 */
	char *const *argv;                           /* ... with these arguments and --takeover */
	const struct privdrop *drop;                 /* become this user once set up; NULL: stay */
};

/* Daemon-wide counters (relaxed atomics; SIGUSR1 logs them, tlsoffctl stats will show them). */
struct counters {
	atomic_ulong accepted, refused_max_conns, handshake_failed;
	atomic_ulong splice, userspace;              /* datapath chosen after a handshake */
	atomic_ulong rekeys, rekey_unsupported;      /* KeyUpdates followed / connections closed: no rekey */
	atomic_ulong sockmap;                        /* plain/passthrough connections joined in the kernel */
	/* kTLS directions installed, as sock_diag reported them right after (hw includes hw-record), and the
	 * nic-offload decisions of handshakes that completed */
	atomic_ulong ktls_tx_sw, ktls_tx_hw, ktls_rx_sw, ktls_rx_hw;
	atomic_ulong nic_preferred, nic_not_applicable;
};
extern struct counters counters;
#define COUNT(field) atomic_fetch_add_explicit(&counters.field, 1, memory_order_relaxed)

/* engine.c */
uint64_t now_ms(void);
int engine_run(struct config *cfg, const struct engine_opts *opts, const struct ktls_caps *caps);

/* engine.c, for the control socket: all called on the main thread, one request at a time. */
struct runtime;
const struct config *engine_config(const struct runtime *rt);
/* Apply one configuration command to the running configuration (a new generation, as a reload does). */
int engine_change(struct runtime *rt, const struct cmd *c, char *err, size_t errlen);
/* Every open connection (malloc'ed array). Returns 0 or -1 with err set. */
int engine_conns(struct runtime *rt, struct conn_info **out, size_t *n, char *err, size_t errlen);
/* Close connection id. Returns 0, or -ENOENT. */
int engine_conn_kill(struct runtime *rt, uint64_t id);
/* The TLS state of the running frontend `name` (certificates as loaded), or NULL. */
struct tls_frontend *engine_frontend_tls(const struct runtime *rt, const char *name);
struct engine_status {
	unsigned workers, generation, conns;         /* conns: open, all workers (their own counters) */
	uint64_t uptime_ms;
	const struct ktls_caps *caps;
	const char *config_path;
	bool sockmap;
	bool sockmap_cut;                            /* the verdict that cuts repeated retransmitted bytes */
	const char *sockmap_why;
	const char *steering;                        /* "bpf", "incoming-cpu", "off (why)" */
};
void engine_status(const struct runtime *rt, struct engine_status *st);
/* Takeover, the old daemon's side: fn is called for every listening socket of every worker (after any
 * pending change was taken over). Returns 0, or -1 with err set. */
int engine_listeners(struct runtime *rt, int (*fn)(int fd, const char *frontend, const char *listen,
						    unsigned worker, void *arg), void *arg, char *err, size_t errlen);
/* The new daemon (pid) serves on our sockets: stop accepting, drain, exit. */
void engine_handed_over(struct runtime *rt, pid_t pid);
bool engine_running(const struct runtime *rt);

/* control.c: the control socket, served on the main thread (epoll tags below). */
enum main_kind { MK_SIGNAL, MK_NETDEV, MK_CTL_LISTEN, MK_CTL_CLIENT, MK_METRICS_LISTEN, MK_METRICS_CLIENT };
struct control;
/* inherited_fd >= 0: that listening socket (taken over, bound to path already) instead of a new one. */
struct control *control_open(const char *path, const char *group, int epfd, struct runtime *rt, int inherited_fd,
			     char *err, size_t errlen);
void control_event(struct control *ctl, void *tag, uint32_t events);
void control_tick(struct control *ctl);         /* closes idle clients; call now and then */
void control_close(struct control *ctl);

/* conn.c: the per-connection state machine */
struct conn *conn_new(struct worker *w, struct frontend_rt *fe, int fd, const struct sockaddr *peer);
void conn_event(struct conn *c, enum side s, uint32_t events);
void conn_timeout(struct conn *c);
void conn_free(struct conn *c);                /* log, close, unlink; memory freed by conn_reap */
void conn_describe(const struct conn *c, struct conn_info *out);
/* for sockmap_conn.c */
void conn_fail(struct conn *c, const char *why);          /* why must outlive the connection */
void conn_connect(struct conn *c);                        /* to c->be: next server on failure */
void conn_proxy_header(struct conn *c, const uint8_t *alpn, size_t alpn_len, const char *sni);
void log_safe_copy(char *out, size_t len, const char *in);
struct backend_rt *frontend_backend(const struct frontend_rt *fe, const char *name);

/* sockmap_conn.c: plain and passthrough frontends */
void sm_route(struct conn *c);                            /* CS_ROUTE: choose c->be, connect */
void sm_join(struct conn *c);                             /* pair the sockets: CS_SOCKMAP */
void sm_step(struct conn *c);                             /* CS_SOCKMAP: an end or an error */
bool sm_timeout(struct conn *c);                          /* true: the connection is finished */
void sm_describe(const struct conn *c, uint64_t *in, uint64_t *out);
void sm_unpair(struct conn *c);
void conn_reap(struct worker *w);

/* relay.c: move bytes; returns true if anything moved. Sets c->error/close_reason on failure. */
bool relay_pump(struct conn *c, struct flow *f);
int relay_setup(struct conn *c);
void relay_flow_buf_release(struct flow *f);   /* userspace datapath: a flow's buffer back to the pool */
void relay_buf_pool_free(void);                /* the calling thread's pool, at its exit */

/* backend_tls.c: re-encryption, tlsoffd as a TLS client to the backend's servers */
struct backend_tls *backend_tls_new(const struct backend_conf *b, char *err, size_t errlen);
void backend_tls_free(struct backend_tls *bt);
SSL *backend_tls_ssl(struct backend_tls *bt, int fd, const char *server_text);   /* NULL: out of memory */
const char *backend_tls_error(SSL *ssl, int r, char *buf, size_t len);           /* a failed handshake, why */

/* backend.c */
int backend_pick(struct backend_rt *be, unsigned attempt, int previous);
unsigned backend_usable(const struct backend_rt *be);
int backend_connect(const struct tlsoff_addr *a, int *fd);

#endif
