/* relay.c — move plaintext between the client and the backend, one direction (struct flow) at a time.
 *
 * splice datapath: the client socket has kTLS TX+RX. socket -> pipe -> socket with splice(2): the kernel
 *   decrypts on the way into the pipe and encrypts on the way out; userspace never sees a byte. A non-data
 *   record (alert, KeyUpdate) makes splice fail with EINVAL: fetch it with recvmsg + cmsg and go on.
 * userspace datapath: SSL_read/SSL_write through a RELAY_BUF (64 KB) buffer (kernels without kTLS, or
 *   sessions the kernel can't take): every record already read ahead goes into one send(). With a
 *   re-encrypted backend both sides are OpenSSL objects (ssl_of).
 * Re-encryption on the splice datapath: both sockets have kTLS TX+RX, so the same splice moves plaintext
 *   from one kernel TLS context to the other; non-data records come from either side (control_record).
 * Backpressure: a direction reads only while its buffer/pipe has room, so a slow side stops its peer.
 * Half-close: an EOF is passed on (SHUT_WR to the backend; close_notify + SHUT_WR to the client) only
 *   after every byte before it was delivered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#include "engine.h"
#include "metrics.h"
#include "tlsoff/ktls_record.h"
#include "tlsoff/log.h"

/* Every byte that crossed, for conn show and the close line (f->bytes) and for the metrics. */
static void count_bytes(const struct conn *c, struct flow *f, uint64_t n)
{
	f->bytes += n;
	metrics_bytes(c->datapath == DATAPATH_SPLICE ? MP_SPLICE : MP_USERSPACE, f == &c->up ? MD_IN : MD_OUT, n);
}

static bool fail(struct conn *c, const char *reason)
{
	c->error = true;
	if (!c->close_reason)
		c->close_reason = reason;
	return false;
}

static bool fail_errno(struct conn *c, enum side s, int e)
{
	static __thread char why[96];
	snprintf(why, sizeof(why), "%s: %s", s == CLIENT ? "client" : "backend",
		 e == EPIPE || e == ECONNRESET ? "connection reset" : strerror(e));
	return fail(c, why);
}

static const char *side_name(enum side s)
{
	return s == CLIENT ? "client" : "backend";
}

/* The OpenSSL object of side s on the userspace datapath: the client's, and a re-encrypted backend's
 * (NULL: plain TCP, or the keys are in the kernel). */
static SSL *ssl_of(const struct conn *c, enum side s)
{
	return c->datapath != DATAPATH_USERSPACE ? NULL : s == CLIENT ? c->ssl : c->bssl;
}

static unsigned ktls_of(const struct conn *c, enum side s)
{
	return s == CLIENT ? c->ktls : c->bktls;
}

/* The end of a direction goes on to its destination once everything before it was delivered. */
static bool pass_eof(struct conn *c, struct flow *f)
{
	if (!f->eof || f->shut || f->len || f->inpipe)
		return false;
	SSL *ssl = ssl_of(c, f->to);
	if (ssl) {
		int r = SSL_shutdown(ssl);                      /* sends close_notify */
		if (r < 0) {
			int e = SSL_get_error(ssl, r);
			if (e == SSL_ERROR_WANT_WRITE) {
				c->wr[f->to] = false;
				return false;
			}
			ERR_clear_error();                      /* the peer is gone: nothing to tell it */
		}
	} else if (ktls_of(c, f->to) & KTLS_TX) {
		if (ktls_send_close_notify(c->fd[f->to]) < 0) {
			if (errno == EAGAIN) {
				c->wr[f->to] = false;
				return false;
			}
		}
	}
	shutdown(c->fd[f->to], SHUT_WR);
	f->shut = true;
	return true;
}

/* ---- userspace datapath ------------------------------------------------------------------------- */

static const char *ssl_reason(enum side s)
{
	static __thread char why[160];
	char ebuf[120];
	snprintf(why, sizeof(why), "%s: TLS error: %s", side_name(s), tls_error_string(ebuf, sizeof(ebuf)));
	return why;
}

/* Returns true if an SSL op on side s may be retried now, given what it last waited for (want). */
static bool ssl_ready(struct conn *c, enum side s, int want, bool reading)
{
	SSL *ssl = ssl_of(c, s);
	if (want == SSL_ERROR_WANT_WRITE)
		return c->wr[s];
	if (want == SSL_ERROR_WANT_READ)
		return c->rd[s] || (reading && SSL_has_pending(ssl));
	return reading ? (c->rd[s] || SSL_has_pending(ssl)) : c->wr[s];
}

/* Classify a failed SSL_read (reading: on side f->from) or SSL_write (on side f->to). Returns true if the
 * connection may go on. */
static bool ssl_blocked(struct conn *c, struct flow *f, int r, bool reading)
{
	enum side s = reading ? f->from : f->to;
	int *want = reading ? &f->ssl_want : &f->ssl_want_w;
	int e = SSL_get_error(ssl_of(c, s), r);
	static __thread char why[96];
	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->rd[s] = false;
		*want = e;
		return true;
	case SSL_ERROR_WANT_WRITE:
		c->wr[s] = false;
		*want = e;
		return true;
	case SSL_ERROR_ZERO_RETURN:                     /* close_notify */
		if (!reading) {                         /* a write can't end the peer's direction */
			snprintf(why, sizeof(why), "%s: connection closed", side_name(s));
			return fail(c, why);
		}
		f->eof = true;
		return true;
	case SSL_ERROR_SYSCALL:
		if (errno == EPIPE && reading && s == CLIENT && c->down.shut)
			c->linger_ok = true;            /* OpenSSL answering a KeyUpdate after our close_notify */
		if (errno == 0 || errno == EAGAIN) {    /* EOF without close_notify */
			if (!reading) {
				snprintf(why, sizeof(why), "%s: connection reset", side_name(s));
				return fail(c, why);
			}
			f->eof = true;
			return true;
		}
		ERR_clear_error();
		return fail_errno(c, s, errno);
	default:
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();               /* FIN without close_notify: an end, logged as such */
			if (!c->close_reason)
				c->close_reason = s == CLIENT ? "client closed without close_notify"
							      : "backend closed without close_notify";
			f->eof = true;
			return true;
		}
		return fail(c, ssl_reason(s));
	}
}

/* The userspace datapath's buffers: a flow holds one only while bytes wait in it (from a read that got some
 * to the write that empties it), so an idle connection holds none — with two 16 KB buffers fixed per
 * connection, 10 000 idle connections cost 320 MB. Emptied buffers go back to a small per-thread pool
 * (each worker is one thread and frees its own connections) so a busy flow takes back the buffer it just
 * returned, warm in cache, without a malloc per record. */
#define RELAY_POOL_MAX 64
struct pooled_buf { struct pooled_buf *next; };
static __thread struct pooled_buf *relay_pool;
static __thread unsigned relay_pool_len;

static bool flow_buf_take(struct flow *f)
{
	if (f->buf)
		return true;
	if (relay_pool) {
		f->buf = (uint8_t *)relay_pool;
		relay_pool = relay_pool->next;
		relay_pool_len--;
		return true;
	}
	return (f->buf = malloc(RELAY_BUF)) != NULL;
}

void relay_flow_buf_release(struct flow *f)
{
	if (!f->buf)
		return;
	if (relay_pool_len < RELAY_POOL_MAX) {
		struct pooled_buf *p = (struct pooled_buf *)f->buf;
		p->next = relay_pool;
		relay_pool = p;
		relay_pool_len++;
	} else {
		free(f->buf);
	}
	f->buf = NULL;
}

void relay_buf_pool_free(void)
{
	while (relay_pool) {
		struct pooled_buf *p = relay_pool;
		relay_pool = p->next;
		free(p);
	}
	relay_pool_len = 0;
}

static bool pump_user(struct conn *c, struct flow *f)
{
	bool moved = false;
	SSL *in = ssl_of(c, f->from), *out = ssl_of(c, f->to);
	struct flow *other = f == &c->up ? &c->down : &c->up;   /* the flow that writes to f->from */

	if (!f->eof && f->len == 0) {                   /* fill */
		if (!flow_buf_take(f))
			return fail(c, "out of memory for a relay buffer");
		if (in) {
			/* Never SSL_read while an SSL_write on the same SSL is unfinished: a KeyUpdate read now would
			 * make OpenSSL write its answer into the pending write's buffer and fail ("bad length",
			 * OpenSSL issues 8677, 12411, 13729). The read waits until the write is out. */
			if (other->ssl_want_w != SSL_ERROR_WANT_WRITE && ssl_ready(c, f->from, f->ssl_want, true)) {
				int r = SSL_read(in, f->buf, RELAY_BUF);
				if (r > 0) {
					f->ssl_want = 0;
					f->off = 0;
					f->len = (size_t)r;
					moved = true;
					/* More records in OpenSSL's read-ahead buffer: into the same send(). An error
					 * here is the next read's: it is classified, and the bytes read so far go on. */
					while (f->len < RELAY_BUF && !f->eof && SSL_has_pending(in)) {
						r = SSL_read(in, f->buf + f->len, (int)(RELAY_BUF - f->len));
						if (r <= 0) {
							if (!ssl_blocked(c, f, r, true))
								return false;
							break;
						}
						f->len += (size_t)r;
					}
				} else if (!ssl_blocked(c, f, r, true)) {
					return false;
				} else if (f->eof) {
					moved = true;
				}
			}
		} else if (c->rd[f->from]) {
			ssize_t n = read(c->fd[f->from], f->buf, RELAY_BUF);
			if (n > 0) {
				f->off = 0;
				f->len = (size_t)n;
				moved = true;
			} else if (n == 0) {
				f->eof = moved = true;
			} else if (errno == EAGAIN) {
				c->rd[f->from] = false;
			} else {
				return fail_errno(c, f->from, errno);
			}
		}
	}
	if (f->len) {                                   /* drain */
		if (!out) {
			if (c->wr[f->to]) {
				ssize_t n = send(c->fd[f->to], f->buf + f->off, f->len, MSG_NOSIGNAL);
				if (n > 0) {
					f->off += (size_t)n;
					f->len -= (size_t)n;
					count_bytes(c, f, (uint64_t)n);
					moved = true;
				} else if (errno == EAGAIN) {
					c->wr[f->to] = false;
				} else {
					return fail_errno(c, f->to, errno);
				}
			}
		} else if (ssl_ready(c, f->to, f->ssl_want_w, false)) {
			int r = SSL_write(out, f->buf + f->off, (int)f->len);
			if (r > 0) {
				f->ssl_want_w = 0;
				f->off += (size_t)r;
				f->len -= (size_t)r;
				count_bytes(c, f, (uint64_t)r);
				moved = true;
			} else if (!ssl_blocked(c, f, r, false)) {
				return false;
			}
		}
	}
	if (f->len == 0)
		relay_flow_buf_release(f);              /* nothing waits: the buffer goes back to the pool */
	return pass_eof(c, f) || moved;
}

/* ---- splice datapath ---------------------------------------------------------------------------- */

static bool *key_update_pending(struct conn *c, enum side s)
{
	return s == CLIENT ? &c->key_update_pending : &c->be_key_update_pending;
}

static struct ktls_session *session_of(struct conn *c, enum side s)
{
	return s == CLIENT ? c->ks : c->bks;
}

/* Our answer to a KeyUpdate with update_requested goes out to side s under the old TX key, then TX moves on. */
static bool flush_key_update(struct conn *c, enum side s)
{
	static const uint8_t key_update[5] = { 24, 0, 0, 1, 0 };   /* KeyUpdate, update_not_requested */
	struct ktls_result res;
	bool *pending = key_update_pending(c, s);

	if ((s == CLIENT ? c->down : c->up).shut)   /* after our close_notify nothing more may be sent */
		*pending = false;
	if (!*pending || !c->wr[s])
		return *pending;
	if (ktls_send_record(c->fd[s], TLS_RECORD_HANDSHAKE, key_update, sizeof(key_update)) < 0) {
		if (errno == EAGAIN) {
			c->wr[s] = false;
			return true;
		}
		return !fail_errno(c, s, errno);
	}
	c->w->scrub_stack = true;
	if (ktls_session_key_update(session_of(c, s), c->fd[s], KTLS_TX, &res) < 0) {
		static __thread char why[200];
		snprintf(why, sizeof(why), "%s", res.why);
		return !fail(c, why);
	}
	*pending = false;
	c->rekeys++;
	return false;
}

/* TLS 1.3 KeyUpdate from side s (RFC 8446 4.6.3): new RX key; if asked, ours too. */
static bool key_update(struct conn *c, enum side s, bool update_requested)
{
	struct ktls_result res;
	static __thread char why[200];

	if (!c->w->caps->rekey) {
		COUNT(rekey_unsupported);
		/* Everything went to the client already: end gracefully, so it still reads all of it. */
		c->linger_ok = s == CLIENT && c->down.shut;
		snprintf(why, sizeof(why), "%s sent KeyUpdate: this kernel cannot rekey kTLS (needs 6.14+)", side_name(s));
		return fail(c, why);
	}
	if (!session_of(c, s)) {
		snprintf(why, sizeof(why), "%s sent KeyUpdate: no traffic secrets were kept for this connection",
			 side_name(s));
		return fail(c, why);
	}
	c->w->scrub_stack = true;
	if (ktls_session_key_update(session_of(c, s), c->fd[s], KTLS_RX, &res) < 0) {
		snprintf(why, sizeof(why), "%s", res.why);
		return fail(c, why);
	}
	c->rekeys++;
	COUNT(rekeys);
	if (update_requested && !(s == CLIENT ? c->down : c->up).shut)
		*key_update_pending(c, s) = true;
	return true;
}

/* The kernel stopped at a record from side f->from that is not application data. */
static bool control_record(struct conn *c, struct flow *f)
{
	uint8_t buf[16640], type;
	enum side s = f->from;
	static __thread char why[128];
	ssize_t n = ktls_recv_record(c->fd[s], buf, sizeof(buf), &type);
	if (n < 0) {
		if (errno == EAGAIN) {
			c->rd[s] = false;
			return false;
		}
		if (errno == EBADMSG) {
			snprintf(why, sizeof(why), "%s: record failed authentication (bad MAC)", side_name(s));
			return fail(c, why);
		}
		return fail_errno(c, s, errno);
	}
	if (n == 0) {
		f->eof = true;
		return true;
	}
	switch (ktls_record_classify(type, buf, (size_t)n, s == BACKEND)) {
	case KREC_DATA:
		/* Not expected (the record that stopped splice stays first in the queue), but if the kernel hands
		 * one over, pass it on when the pipe has room for all of it; never drop a byte silently. */
		if ((size_t)n > f->cap - f->inpipe || write(f->pipe[1], buf, (size_t)n) != n) {
			snprintf(why, sizeof(why), "%s: a data record could not be passed on", side_name(s));
			return fail(c, why);
		}
		f->inpipe += (size_t)n;
		return true;
	case KREC_CLOSE_NOTIFY:
		f->eof = true;
		return true;
	case KREC_ALERT:
		snprintf(why, sizeof(why), "%s sent alert: %s", side_name(s),
			 n >= 2 ? SSL_alert_desc_string_long(buf[1]) : "(truncated)");
		return fail(c, why);
	case KREC_KEY_UPDATE:
	case KREC_KEY_UPDATE_REQUESTED:
		/* any NewSessionTickets before it in the record are dropped, as below */
		return key_update(c, s, buf[n - 1] == 1);
	case KREC_TICKETS:
		/* A re-encrypted server's TLS 1.3 NewSessionTickets arrive after the handoff: we keep no
		 * sessions, so they are read and dropped. */
		return true;
	case KREC_UNEXPECTED_HANDSHAKE:
		snprintf(why, sizeof(why), "%s sent an unexpected post-handshake message", side_name(s));
		return fail(c, why);
	case KREC_UNKNOWN_TYPE:
	default:
		snprintf(why, sizeof(why), "%s sent a record of unknown type", side_name(s));
		return fail(c, why);
	}
}

static bool pump_splice(struct conn *c, struct flow *f)
{
	bool moved = false;

	if (!f->eof && !f->pipe_full && f->inpipe < f->cap && c->rd[f->from]) {
		ssize_t n = splice(c->fd[f->from], NULL, f->pipe[1], NULL, f->cap - f->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			f->inpipe += (size_t)n;
			moved = true;
		} else if (n == 0) {
			f->eof = moved = true;
		} else if (errno == EAGAIN) {
			/* Either the socket is empty or the pipe ran out of slots (partial pages): only an empty
			 * pipe tells them apart. */
			if (f->inpipe)
				f->pipe_full = true;
			else
				c->rd[f->from] = false;
		} else if ((errno == EINVAL || errno == 524 /* ENOTSUPP, kernels before 5.5 */) &&
			   (ktls_of(c, f->from) & KTLS_RX)) {
			moved = control_record(c, f);
			if (c->error)
				return false;
		} else {
			return fail_errno(c, f->from, errno);
		}
	}
	if (flush_key_update(c, f->to))
		return moved;                           /* nothing more to that side until our KeyUpdate is out */
	if (f->inpipe && c->wr[f->to]) {
		/* No SPLICE_F_MORE: on a kTLS socket it would hold back a partial record until more data came. */
		ssize_t n = splice(f->pipe[0], NULL, c->fd[f->to], NULL, f->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			f->inpipe -= (size_t)n;
			count_bytes(c, f, (uint64_t)n);
			f->pipe_full = false;
			moved = true;
		} else if (n < 0 && errno == EAGAIN) {
			c->wr[f->to] = false;
		} else {
			return fail_errno(c, f->to, n < 0 ? errno : EPIPE);
		}
	}
	return pass_eof(c, f) || moved;
}

bool relay_pump(struct conn *c, struct flow *f)
{
	return c->datapath == DATAPATH_SPLICE ? pump_splice(c, f) : pump_user(c, f);
}

int relay_setup(struct conn *c)
{
	struct flow *fl[2] = { &c->up, &c->down };
	c->up.from = CLIENT, c->up.to = BACKEND;
	c->down.from = BACKEND, c->down.to = CLIENT;
	for (int i = 0; i < 2; i++) {
		struct flow *f = fl[i];
		f->pipe[0] = f->pipe[1] = -1;
		if (c->datapath == DATAPATH_USERSPACE) {
			f->buf = NULL;                       /* taken from the pool while bytes wait (pump_user) */
		} else {
			if (pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
				return -errno;
			int sz = fcntl(f->pipe[0], F_SETPIPE_SZ, PIPE_BYTES);  /* pipe-max-size may refuse */
			f->cap = sz > 0 ? (size_t)sz : (size_t)fcntl(f->pipe[0], F_GETPIPE_SZ);
		}
	}
	return 0;
}
