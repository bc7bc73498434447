/* conn.c — one client connection: TLS handshake, datapath choice and kTLS handoff, backend connect
 * (next server on failure), relay, timeouts, and the one log line at close. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/tls.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "engine.h"
#include "metrics.h"
#include "tlsoff/nic_pref.h"
#include "tlsoff/ktls_record.h"
#include "tlsoff/log.h"

static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

/* The SNI is whatever the client sent (OpenSSL only rejects NUL bytes): copy it for the log with anything
 * but host name characters escaped as \xHH, so a name with a space, a quote or a newline cannot forge a
 * field or a whole log line. */
void log_safe_copy(char *out, size_t len, const char *in)
{
	size_t n = 0;
	for (; *in && n + 1 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if (isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == '*') {
			out[n++] = (char)ch;
		} else if (n + 5 < len) {
			n += (size_t)snprintf(out + n, len - n, "\\x%02x", ch);
		} else {
			break;
		}
	}
	out[n] = '\0';
}

static void set_reason(struct conn *c, const char *why)
{
	c->error = true;
	if (!c->close_reason)
		c->close_reason = why;
}

void conn_fail(struct conn *c, const char *why)
{
	set_reason(c, why);
}

struct backend_rt *frontend_backend(const struct frontend_rt *fe, const char *name)
{
	for (unsigned i = 0; i < fe->nbackends; i++)
		if (!strcmp(fe->backends[i].conf.name, name))
			return &fe->backends[i];
	return NULL;
}

static int watch(struct conn *c, enum side s)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->ep[s] };
	return epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->fd[s], &ev);
}

struct conn *conn_new(struct worker *w, struct frontend_rt *fe, int fd, const struct sockaddr *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	static atomic_ulong next_id;
	c->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
	c->w = w;
	c->fe = fe;
	c->fd[CLIENT] = fd;
	c->fd[BACKEND] = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->server = -1;
	c->ep[CLIENT] = (struct conn_ep){ EP_CONN_CLIENT, c };
	c->ep[BACKEND] = (struct conn_ep){ EP_CONN_BACKEND, c };
	c->start_ms = w->now_ms;
	c->deadline_ms = w->now_ms + fe->conf.handshake_timeout_ms;
	c->be = fe->backend;
	c->state = fe->conf.mode == MODE_TLS ? CS_HANDSHAKE : CS_ROUTE;   /* CS_ROUTE: on the first event */
	addr_text(peer, c->client, sizeof(c->client));
	if ((fe->conf.mode == MODE_TLS && !(c->ssl = tls_frontend_ssl(fe->tls, fd))) || watch(c, CLIENT) < 0) {
		SSL_free(c->ssl);
		free(c);
		return NULL;
	}
	if (c->ssl && fe->conf.nic_offload == NIC_OFFLOAD_PREFER) {
		/* The NIC can only get keys the kernel takes: kTLS at all, and TLS 1.2 AES-GCM both ways. */
		const struct ktls_caps *caps = w->caps;
		const struct ktls_cipher *gcm = ktls_cipher_by_iana(0xC02F);   /* ECDHE-RSA-AES128-GCM-SHA256 */
		unsigned bit = gcm ? 1u << (gcm - ktls_ciphers) : 0;
		c->nic.ktls = fe->conf.datapath != DATAPATH_USERSPACE && caps->ulp && (caps->tx[0] & caps->rx[0] & bit);
		tls_ssl_nic_choice(c->ssl, &c->nic);
	}
	atomic_fetch_add(&fe->refs, 1);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return c;
}

static const char *datapath_name(enum tlsoff_datapath d)
{
	return d == DATAPATH_SPLICE ? "splice" : d == DATAPATH_USERSPACE ? "userspace" :
	       d == DATAPATH_SOCKMAP ? "sockmap" : "auto";
}

void conn_describe(const struct conn *c, struct conn_info *out)
{
	static const char *const states[] = { [CS_HANDSHAKE] = "handshake", [CS_CONNECT] = "connect",
					      [CS_RELAY] = "relay", [CS_LINGER] = "linger", [CS_DONE] = "done",
					      [CS_ROUTE] = "hello", [CS_JOIN] = "connect", [CS_SOCKMAP] = "relay",
					      [CS_BACKEND_TLS] = "tls-connect" };
	socklen_t len = sizeof(out->cookie);
	memset(out, 0, sizeof(*out));
	out->id = c->id;
	if (getsockopt(c->fd[CLIENT], SOL_SOCKET, SO_COOKIE, &out->cookie, &len) < 0)
		out->cookie = 0;
	out->in = c->up.bytes;
	out->out = c->down.bytes;
	if (c->state == CS_SOCKMAP)
		sm_describe(c, &out->in, &out->out);
	out->age_ms = c->w->now_ms - c->start_ms;
	snprintf(out->frontend, sizeof(out->frontend), "%s", c->fe->conf.name);
	snprintf(out->backend, sizeof(out->backend), "%s", c->be ? c->be->conf.name : "");
	snprintf(out->client, sizeof(out->client), "%s", c->client);
	snprintf(out->server, sizeof(out->server), "%s", c->server_text ? c->server_text : "");
	snprintf(out->sni, sizeof(out->sni), "%s", c->sni);
	snprintf(out->alpn, sizeof(out->alpn), "%s", c->alpn);
	snprintf(out->why, sizeof(out->why), "%s", c->datapath_why ? c->datapath_why : "");
	out->state = states[c->state];
	out->version = c->version ? c->version : "";
	out->cipher = c->cipher ? c->cipher : "";
	out->datapath = c->state == CS_HANDSHAKE || c->state == CS_ROUTE ? "" : datapath_name(c->datapath);
	out->ktls = c->ktls;
	nic_pref_text(c->nic.verdict, c->nic.reason, c->nic.dev, out->nic, sizeof(out->nic));
	out->rekeys = c->rekeys;
	out->worker = (unsigned)c->w->id;
	if (c->be && c->be->tls) {
		out->be_tls = c->state == CS_RELAY || c->state == CS_LINGER ?
			      (c->datapath == DATAPATH_SPLICE ? "ktls" : "userspace") : "";
		out->be_version = c->be_version ? c->be_version : "";
		out->be_cipher = c->be_cipher ? c->be_cipher : "";
	}
}

void conn_free(struct conn *c)
{
	struct worker *w = c->w;
	struct frontend_rt *fe = c->fe;

	sm_unpair(c);                         /* counters first: the log line below reports them */
	if (c->datapath == DATAPATH_SOCKMAP) {
		metrics_bytes(MP_SOCKMAP, MD_IN, c->up.bytes);
		metrics_bytes(MP_SOCKMAP, MD_OUT, c->down.bytes);
	}
	if (c->error)
		metrics_conn_error(c->close_reason);
	if (c->state != CS_HANDSHAKE || c->error) {
		char ktls[16], nic[128] = "";
		if (c->nic.verdict != NIC_PREF_NONE) {
			char words[112];
			snprintf(nic, sizeof(nic), " nic=\"%s\"",
				 nic_pref_text(c->nic.verdict, c->nic.reason, c->nic.dev, words, sizeof(words)));
		}
		snprintf(ktls, sizeof(ktls), "%s%s%s", c->ktls & KTLS_TX ? "tx" : "", c->ktls == (KTLS_TX | KTLS_RX) ? "+" : "",
			 c->ktls & KTLS_RX ? "rx" : c->ktls ? "" : "none");
		char btls[96] = "-";          /* the re-encrypted leg: version/cipher/ktls=tx+rx|userspace */
		if (c->be_version)
			snprintf(btls, sizeof(btls), "%s/%s/%s", c->be_version, c->be_cipher,
				 c->bktls == (KTLS_TX | KTLS_RX) ? "ktls=tx+rx" : "userspace");
		log_msg(c->error ? LOG_NOTICE : LOG_INFO,
			"close frontend=%s client=%s server=%s tls=%s cipher=%s alpn=%s sni=%s datapath=%s%s%s%s "
			"ktls=%s kmode=tx:%s,rx:%s rekeys=%u in=%llu out=%llu ms=%llu backend_tls=%s reason=\"%s\"%s",
			fe->conf.name, c->client, c->server_text ? c->server_text : "-",
			c->version ? c->version : "-", c->cipher ? c->cipher : "-", c->alpn[0] ? c->alpn : "-",
			c->sni[0] ? c->sni : "-", c->state == CS_ROUTE ? "-" : datapath_name(c->datapath), c->datapath_why ? " (" : "",
			c->datapath_why ? c->datapath_why : "", c->datapath_why ? ")" : "", ktls,
			c->txconf ? ktls_conf_name(c->txconf) : "-", c->rxconf ? ktls_conf_name(c->rxconf) : "-", c->rekeys, (unsigned long long)c->up.bytes,
			(unsigned long long)c->down.bytes, (unsigned long long)(w->now_ms - c->start_ms), btls,
			c->close_reason ? c->close_reason : "done", nic);
	}
	for (int s = 0; s < 2; s++)
		if (c->fd[s] >= 0)
			close_watched(w->epfd, c->fd[s]);
	struct flow *fl[2] = { &c->up, &c->down };
	for (int i = 0; i < 2; i++) {
		relay_flow_buf_release(fl[i]);
		for (int p = 0; p < 2; p++)
			if (fl[i]->pipe[p] >= 0)
				close(fl[i]->pipe[p]);
	}
	if (c->server >= 0)
		atomic_fetch_sub(&c->be->active[c->server], 1);
	SSL_free(c->ssl);
	c->ssl = NULL;
	SSL_free(c->bssl);
	c->bssl = NULL;
	free(c->pre);
	free(c->datapath_why);
	ktls_session_free(c->ks);
	c->ks = NULL;
	ktls_session_free(c->bks);
	c->bks = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(fe->conns, 1);
	atomic_fetch_sub(&fe->refs, 1);
	/* The memory goes only after the current batch of epoll events: another event of this batch may
	 * still point at it (conn_reap). */
	c->state = CS_DONE;
	c->next = w->dead;
	w->dead = c;
}

void conn_reap(struct worker *w)
{
	while (w->dead) {
		struct conn *c = w->dead;
		w->dead = c->next;
		free(c);
	}
}

/* ---- backend ---------------------------------------------------------------------------------------- */

/* Every server was tried: the close reason says so and names the last failure, which is otherwise only in
 * a warning line that an operator reading the close line would have to find. */
static void no_server(struct conn *c, const char *last_server, const char *last_error)
{
	static __thread char why[200];
	snprintf(why, sizeof(why), "backend: no server reachable (%u tried; last %s: %s)", c->attempts,
		 last_server, last_error);
	c->server = -1;
	set_reason(c, why);
}

void conn_connect(struct conn *c)
{
	struct backend_rt *be = c->be;
	if (!backend_usable(be)) {
		static __thread char why[120];
		snprintf(why, sizeof(why), "backend %s: every server is drained", be->conf.name);
		log_warn("frontend=%s client=%s: %s", c->fe->conf.name, c->client, why);
		set_reason(c, why);
		return;
	}
	while (c->attempts < backend_usable(be)) {
		c->server = backend_pick(be, c->attempts++, c->server);
		const struct tlsoff_addr *a = &be->conf.servers[c->server];
		c->server_text = a->text;
		int rc = backend_connect(a, &c->fd[BACKEND]);
		if (rc == 0 && watch(c, BACKEND) == 0) {
			atomic_fetch_add(&be->active[c->server], 1);
			c->state = CS_CONNECT;
			c->deadline_ms = c->w->now_ms + be->conf.connect_timeout_ms;
			return;
		}
		if (rc == 0) {
			rc = -errno;
			close(c->fd[BACKEND]);
			c->fd[BACKEND] = -1;
		}
		log_warn("frontend=%s client=%s: backend %s server %s: %s%s", c->fe->conf.name, c->client,
			 be->conf.name, a->text, strerror(-rc),
			 c->attempts < backend_usable(be) ? ", trying the next server" : "");
		if (c->attempts == backend_usable(be))
			no_server(c, a->text, strerror(-rc));
	}
}

/* The current connect attempt failed (err), or timed out (timed_out: our connect-timeout, not the kernel's
 * ETIMEDOUT, so the log says which one): drop it and try the next server. */
static void connect_failed(struct conn *c, int err, bool timed_out)
{
	struct backend_rt *be = c->be;
	char what[64];
	if (timed_out)
		snprintf(what, sizeof(what), "connect timeout after %u ms", be->conf.connect_timeout_ms);
	else
		snprintf(what, sizeof(what), "connect: %s", strerror(err));
	log_warn("frontend=%s client=%s: backend %s server %s: %s%s", c->fe->conf.name, c->client,
		 be->conf.name, c->server_text, what, c->attempts < backend_usable(be) ? ", trying the next server" : "");
	close_watched(c->w->epfd, c->fd[BACKEND]);
	c->fd[BACKEND] = -1;
	c->rd[BACKEND] = c->wr[BACKEND] = false;
	atomic_fetch_sub(&be->active[c->server], 1);
	if (c->attempts == backend_usable(be))
		no_server(c, c->server_text, what);
	else
		conn_connect(c);
}

static void connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd[BACKEND], SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		connect_failed(c, err, false);
		return;
	}
	if (c->fe->conf.mode != MODE_TLS) {    /* PROXY header (if any), then the kernel takes over */
		c->state = CS_JOIN;
		return;
	}
	if (c->be->tls) {                      /* re-encryption: our handshake with the server first */
		c->state = CS_BACKEND_TLS;
		c->deadline_ms = c->w->now_ms + c->be->conf.connect_timeout_ms;
		return;
	}
	int rc = relay_setup(c);
	if (rc < 0) {
		set_reason(c, "out of memory or pipes");
		return;
	}
	c->state = CS_RELAY;
	c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
}

/* ---- handshake and datapath choice ------------------------------------------------------------------- */

static int drain_buffered(struct conn *c);

/* Why one leg (ssl: the client's, or a re-encrypted backend's) can't go to the kernel, as a heap string
 * (leg prefixes it: "" for the client, "backend leg: "); NULL when it can. */
static char *leg_why(struct conn *c, SSL *ssl, const char *leg)
{
	const struct ktls_caps *caps = c->w->caps;
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const struct ktls_cipher *row = ktls_cipher_by_ssl(cipher);
	int v = SSL_version(ssl) == TLS1_3_VERSION;
	char *why = NULL;

	if (c->fe->conf.datapath == DATAPATH_USERSPACE)
		why = strdup("configured");
	else if (!caps->ulp)
		why = strdup("kernel has no TLS ULP");
	else if (!row || !(caps->tx[v] & caps->rx[v] & (1u << (row - ktls_ciphers)))) {
		if (asprintf(&why, "%skernel can't offload %s for %s", leg, SSL_CIPHER_get_name(cipher),
			     SSL_get_version(ssl)) < 0)
			why = strdup("kernel can't offload the cipher");
	} else if (SSL_SESSION_get_max_fragment_length(SSL_get_session(ssl)) != TLSEXT_max_fragment_length_DISABLED) {
		if (asprintf(&why, "%s%s negotiated max_fragment_length", leg, *leg ? "" : "client ") < 0)
			why = strdup("max_fragment_length negotiated");
	} else {
		return NULL;
	}
	return why ? why : strdup("?");
}

/* Both directions of the client leg are in the kernel: note what sock_diag says (software or NIC), keep
 * only what KeyUpdate needs (TLS 1.3 on kernels that can rekey) and free the SSL object with every other
 * secret in it. */
/* Software or NIC? Only the kernel knows (it falls back to software silently): ask it once per socket, and
 * count what it chose per direction (tlsoffctl stats, metrics). */
static void ktls_mode(struct conn *c, int fd, uint8_t *tx, uint8_t *rx)
{
	struct ktls_diag d;
	if (!c->w->diag && !c->w->diag_failed) {
		c->w->diag = sockdiag_open();
		c->w->diag_failed = !c->w->diag;
	}
	if (c->w->diag && sockdiag_ktls(c->w->diag, fd, &d) == 0) {
		*tx = (uint8_t)d.txconf;
		*rx = (uint8_t)d.rxconf;
		if (*tx == TLS_CONF_SW)
			COUNT(ktls_tx_sw);
		else if (*tx == TLS_CONF_HW || *tx == TLS_CONF_HW_RECORD)
			COUNT(ktls_tx_hw);
		if (*rx == TLS_CONF_SW)
			COUNT(ktls_rx_sw);
		else if (*rx == TLS_CONF_HW || *rx == TLS_CONF_HW_RECORD)
			COUNT(ktls_rx_hw);
	}
	metrics_ktls_installed(*tx, *rx);
}

static void client_handed_over(struct conn *c)
{
	ktls_mode(c, c->fd[CLIENT], &c->txconf, &c->rxconf);
	if (SSL_version(c->ssl) == TLS1_3_VERSION && c->w->caps->rekey)
		c->ks = ktls_session_detach(c->ssl);
	SSL_free(c->ssl);                  /* our captured state goes with it, cleansed (ktls.c state_free) */
	c->ssl = NULL;
}

static void choose_datapath(struct conn *c)
{
	struct ktls_result res;

	c->datapath = DATAPATH_USERSPACE;
	if ((c->datapath_why = leg_why(c, c->ssl, "")))
		return;
	if (drain_buffered(c) < 0) {
		set_reason(c, "out of memory");
		return;
	}
	/* RX first: if it fails nothing is in the kernel yet and OpenSSL keeps the whole connection. */
	if (ktls_install(c->ssl, c->fd[CLIENT], KTLS_RX, &res) < 0) {
		c->datapath_why = strdup(res.why);
		return;
	}
	c->ktls = KTLS_RX;
	if (ktls_install(c->ssl, c->fd[CLIENT], KTLS_TX, &res) < 0) {
		static __thread char why[200];
		snprintf(why, sizeof(why), "kTLS TX failed after RX: %s", res.why);
		set_reason(c, why);
		return;
	}
	c->ktls |= KTLS_TX;
	c->datapath = DATAPATH_SPLICE;
	client_handed_over(c);
}

/* Re-encryption, after both handshakes: splice only when the kernel takes all four directions (plaintext
 * then never enters userspace); otherwise OpenSSL keeps both legs — a kTLS leg next to an OpenSSL one would
 * still copy every byte through userspace. c->datapath_why already says why the client leg can't go.
 * Order: the client's RX first (its refusal — a partial record OpenSSL holds — is the one that happens,
 * and leaves nothing in the kernel), then the backend's RX, then both TX. */
static void choose_reencrypt(struct conn *c)
{
	struct ktls_result res;
	static __thread char why[240];
	char *bwhy = c->datapath_why ? NULL : leg_why(c, c->bssl, "backend leg: ");

	c->datapath = DATAPATH_USERSPACE;
	if (bwhy)
		c->datapath_why = bwhy;
	if (c->datapath_why)
		return;
	if (SSL_has_pending(c->bssl)) {
		c->datapath_why = strdup("backend leg: OpenSSL already read the server's first data");
		return;
	}
	if (drain_buffered(c) < 0) {
		set_reason(c, "out of memory");
		return;
	}
	if (ktls_install(c->ssl, c->fd[CLIENT], KTLS_RX, &res) < 0) {
		c->datapath_why = strdup(res.why);
		return;
	}
	c->ktls = KTLS_RX;
	const char *leg = "backend leg";
	if (ktls_install(c->bssl, c->fd[BACKEND], KTLS_RX, &res) == 0) {
		c->bktls = KTLS_RX;
		leg = "client leg";
		if (ktls_install(c->ssl, c->fd[CLIENT], KTLS_TX, &res) == 0) {
			c->ktls |= KTLS_TX;
			leg = "backend leg";
			if (ktls_install(c->bssl, c->fd[BACKEND], KTLS_TX, &res) == 0)
				c->bktls |= KTLS_TX;
		}
	}
	if (c->bktls != (KTLS_TX | KTLS_RX)) {
		snprintf(why, sizeof(why), "%s: kTLS failed after the client's RX: %s", leg, res.why);
		set_reason(c, why);
		return;
	}
	c->datapath = DATAPATH_SPLICE;
	client_handed_over(c);
	uint8_t btx = 0, brx = 0;
	ktls_mode(c, c->fd[BACKEND], &btx, &brx);
	if (SSL_version(c->bssl) == TLS1_3_VERSION && c->w->caps->rekey)
		c->bks = ktls_session_detach(c->bssl);
	SSL_free(c->bssl);
	c->bssl = NULL;
}

/* The PROXY v2 header is built as soon as the handshake is done: it needs the SSL object (ALPN, and the
 * SNI as the client sent it, not c->sni, which is escaped and shortened for the log), and on the splice
 * datapath choose_datapath frees that object before the backend connect even starts. */
/* Bytes for the backend before the relay starts: the PROXY header, then any plaintext OpenSSL had already
 * decrypted when the keys moved to the kernel. */
static int pre_append(struct conn *c, const void *data, size_t len)
{
	uint8_t *p = realloc(c->pre, c->pre_len + len);
	if (!p)
		return -1;
	memcpy(p + c->pre_len, data, len);
	c->pre = p;
	c->pre_len += len;
	return 0;
}

/* OpenSSL may hold whole records it already read (read-ahead, or a record that came with the client's
 * Finished): the kernel would never see them, and the RX sequence number would be off. Read them out now
 * (the record counter advances with them) and send them to the backend first. A partial record can't be
 * handed over: then OpenSSL keeps the connection. */
static int drain_buffered(struct conn *c)
{
	uint8_t buf[16384];
	size_t total = 0;
	while (SSL_has_pending(c->ssl)) {
		int n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (pre_append(c, buf, (size_t)n) < 0) {
			OPENSSL_cleanse(buf, sizeof(buf));
			return -1;
		}
		total += (size_t)n;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	ERR_clear_error();
	if (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN)
		c->up.eof = true;          /* OpenSSL consumed the client's close_notify: the kernel won't see it */
	if (total)
		log_debug("frontend=%s client=%s: forwarded %zu bytes OpenSSL had buffered before the kTLS handoff",
			  c->fe->conf.name, c->client, total);
	return 0;
}

static void proxy_header(struct conn *c, const uint8_t *alpn, size_t alpn_len, const char *sni,
			 const struct proxy_v2_ssl *ssl)
{
	struct sockaddr_storage peer, local;
	socklen_t pl = sizeof(peer), ll = sizeof(local);
	getpeername(c->fd[CLIENT], (struct sockaddr *)&peer, &pl);
	getsockname(c->fd[CLIENT], (struct sockaddr *)&local, &ll);
	uint8_t hdr[PROXY_V2_MAX];
	int n = proxy_v2_build_ssl(hdr, sizeof(hdr), (struct sockaddr *)&peer, (struct sockaddr *)&local, alpn,
				   alpn_len, sni, ssl);
	if (n < 0) {
		set_reason(c, ssl && ssl->cn && strlen(ssl->cn) > PROXY_V2_TLV_MAX ?
			      "PROXY v2 header: the client certificate's CN is longer than 255 bytes" :
			      "PROXY v2 header: address families differ");
		return;
	}
	if (pre_append(c, hdr, (size_t)n) < 0)
		set_reason(c, "out of memory");
}

void conn_proxy_header(struct conn *c, const uint8_t *alpn, size_t alpn_len, const char *sni)
{
	proxy_header(c, alpn, alpn_len, sni, NULL);
}

/* A client-ca frontend: what the client's certificate said, once per connection in the log (optional mode
 * lets a missing or failing one through, so this is where an operator sees it). */
static void log_client_cert(const struct conn *c, const struct tls_client_cert *cc)
{
	char cn[sizeof(cc->cn) * 4];
	log_safe_copy(cn, sizeof(cn), cc->cn);
	if (!cc->sess)
		log_info("frontend=%s client=%s: no client certificate (client-verify optional)", c->fe->conf.name,
			 c->client);
	else
		log_info("frontend=%s client=%s: client certificate cn=%s %s%s%s", c->fe->conf.name, c->client,
			 cn[0] ? cn : "-", cc->verify == X509_V_OK ? "verified" : "not verified: ",
			 cc->verify == X509_V_OK ? "" : X509_verify_cert_error_string(cc->verify),
			 cc->conn ? "" : " (resumed session)");
}

static bool flush_pre(struct conn *c);

/* Count the choice, drop our copies of OpenSSL's secrets on the userspace datapath, say it (debug). */
static void datapath_chosen(struct conn *c)
{
	if (c->datapath == DATAPATH_SPLICE) {
		COUNT(splice);
	} else {
		COUNT(userspace);
		ktls_state_wipe(c->ssl, false);   /* OpenSSL keeps its own keys; ours are not needed */
		/* Read-ahead from now on: without it OpenSSL reads each record with two read() calls (header,
		 * then body) — 3 syscalls per 16 KB relayed upward instead of 2 (strace, BENCHMARKS.md). Only
		 * now: before the datapath is chosen, bytes OpenSSL read ahead would have to follow a kTLS
		 * handoff. The relay reads while SSL_has_pending(), so buffered records never wait for epoll. */
		SSL_set_read_ahead(c->ssl, 1);
		if (c->bssl)
			SSL_set_read_ahead(c->bssl, 1);
		/* ... and a read buffer of several records, so one read() takes what a RELAY_BUF send() carries
		 * on (it is allocated at the next read, and released when empty: idle connections keep none). */
		SSL_set_default_read_buffer_len(c->ssl, RELAY_BUF + 1024);
		if (c->bssl)
			SSL_set_default_read_buffer_len(c->bssl, RELAY_BUF + 1024);
	}
	log_debug("frontend=%s client=%s: %s %s, datapath %s%s%s%s", c->fe->conf.name, c->client, c->version,
		  c->cipher, datapath_name(c->datapath), c->datapath_why ? " (" : "",
		  c->datapath_why ? c->datapath_why : "", c->datapath_why ? ")" : "");
}

static void handshake(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			c->rd[CLIENT] = false;
		else if (e == SSL_ERROR_WANT_WRITE)
			c->wr[CLIENT] = false;
		else {
			static __thread char why[200];
			char ebuf[160];
			const char *cert_why = NULL;
			if (c->fe->conf.client_verify)
				cert_why = tls_client_cert_refusal(c->ssl, ERR_peek_error(), ebuf, sizeof(ebuf));
			if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
				snprintf(why, sizeof(why), "handshake: client %s",
					 errno ? strerror(errno) : "closed the connection");
			else if (cert_why)
				snprintf(why, sizeof(why), "handshake: %s", cert_why);
			else
				snprintf(why, sizeof(why), "handshake: %s", tls_error_string(ebuf, sizeof(ebuf)));
			ERR_clear_error();
			set_reason(c, why);
			COUNT(handshake_failed);
			metrics_handshake(NULL, NULL, MR_FAILED);
		}
		return;
	}
	const unsigned char *alpn;
	unsigned alpn_len;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	snprintf(c->alpn, sizeof(c->alpn), "%.*s", (int)alpn_len, alpn ? (const char *)alpn : "");
	const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	log_safe_copy(c->sni, sizeof(c->sni), sni ? sni : "");
	c->version = SSL_get_version(c->ssl);
	c->cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl));
	metrics_handshake(c->version, c->cipher, SSL_session_reused(c->ssl) ? MR_RESUMED : MR_FULL);
	struct tls_client_cert cc = { .sess = false };
	if (c->fe->conf.client_verify) {
		tls_client_cert_get(c->ssl, &cc);
		log_client_cert(c, &cc);
	}
	if (c->nic.verdict == NIC_PREF_APPLIED)
		COUNT(nic_preferred);
	else if (c->nic.verdict == NIC_PREF_NOT_APPLICABLE)
		COUNT(nic_not_applicable);
	if (c->be->conf.proxy_protocol == 2) {
		const unsigned char *alpn = NULL;
		unsigned alpn_len = 0;
		/* What haproxy's send-proxy-v2-ssl-cn sends: TLS, version, cipher, and the client certificate. */
		struct proxy_v2_ssl ssl = { .client = PP2_CLIENT_SSL, .verify = 1, .version = c->version,
					    .cipher = c->cipher };
		if (cc.sess) {
			ssl.client |= PP2_CLIENT_CERT_SESS | (cc.conn ? PP2_CLIENT_CERT_CONN : 0);
			ssl.verify = (uint32_t)cc.verify;
			ssl.cn = cc.cn;
		}
		if (cc.cn_bad) {   /* never pass on a cut or NUL-split name: the backend would take it as one */
			set_reason(c, "PROXY v2 header: the client certificate's CN has a NUL byte or is too long");
			return;
		}
		SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
		proxy_header(c, alpn, alpn_len, SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name), &ssl);
		if (c->error)
			return;
	}
	if (c->be->tls) {                  /* re-encryption: the datapath is chosen after our own handshake */
		c->datapath = DATAPATH_USERSPACE;
		c->datapath_why = leg_why(c, c->ssl, "");
		conn_connect(c);
		return;
	}
	choose_datapath(c);
	if (c->error)
		return;
	datapath_chosen(c);
	conn_connect(c);
}

/* Re-encryption: the PROXY header (if any) goes first, outside the TLS; then our handshake with the server,
 * bounded by the backend's connect-timeout. A failure closes this connection only, with the reason logged
 * (a wrong CA, a name mismatch, a server that does not speak TLS). */
static void backend_handshake(struct conn *c)
{
	static __thread char why[320];
	char ebuf[200];
	if (c->pre_off < c->pre_len) {
		flush_pre(c);
		if (c->error || c->pre_off < c->pre_len)
			return;
	}
	free(c->pre);
	c->pre = NULL;
	c->pre_len = c->pre_off = 0;
	if (!c->bssl && !(c->bssl = backend_tls_ssl(c->be->tls, c->fd[BACKEND], c->server_text))) {
		set_reason(c, "backend: TLS setup failed (out of memory)");
		return;
	}
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(c->bssl);
	if (r != 1) {
		int e = SSL_get_error(c->bssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			c->rd[BACKEND] = false;
			return;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			c->wr[BACKEND] = false;
			return;
		}
		snprintf(why, sizeof(why), "backend %s server %s: TLS handshake failed: %s", c->be->conf.name,
			 c->server_text, backend_tls_error(c->bssl, r, ebuf, sizeof(ebuf)));
		log_warn("frontend=%s client=%s: %s", c->fe->conf.name, c->client, why);
		set_reason(c, why);
		return;
	}
	c->be_version = SSL_get_version(c->bssl);
	c->be_cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(c->bssl));
	choose_reencrypt(c);
	if (c->error)
		return;
	if (c->bssl)
		ktls_state_wipe(c->bssl, false);   /* OpenSSL keeps the backend leg: our copies are not needed */
	datapath_chosen(c);
	if (relay_setup(c) < 0) {
		set_reason(c, "out of memory or pipes");
		return;
	}
	c->state = CS_RELAY;
	c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
}

/* ---- relay ------------------------------------------------------------------------------------------- */

static bool flush_pre(struct conn *c)
{
	if (c->pre_off == c->pre_len || !c->wr[BACKEND])
		return false;
	if (c->bssl && c->state == CS_RELAY) {
		/* Re-encrypted, userspace: what OpenSSL had buffered from the client goes inside the TLS. */
		int r = SSL_write(c->bssl, c->pre + c->pre_off, (int)(c->pre_len - c->pre_off));
		if (r > 0) {
			c->pre_off += (size_t)r;
			return true;
		}
		int e = SSL_get_error(c->bssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			c->wr[BACKEND] = false;
		else if (e == SSL_ERROR_WANT_READ)
			c->rd[BACKEND] = false;
		else
			set_reason(c, "backend: connection reset");
		return false;
	}
	ssize_t n = send(c->fd[BACKEND], c->pre + c->pre_off, c->pre_len - c->pre_off, MSG_NOSIGNAL);
	if (n > 0) {
		c->pre_off += (size_t)n;
		if (c->pre_off == c->pre_len) {   /* sent: the buffer is not needed any more */
			free(c->pre);
			c->pre = NULL;
		}
		return true;
	}
	if (errno == EAGAIN)
		c->wr[BACKEND] = false;
	else
		set_reason(c, "backend: connection reset");
	return false;
}

static void relay(struct conn *c)
{
	bool any = false, moved;
	do {
		moved = flush_pre(c);
		if (c->pre_off == c->pre_len) {
			moved |= relay_pump(c, &c->up);
			if (!c->error)
				moved |= relay_pump(c, &c->down);
		}
		any |= moved;
	} while (moved && !c->error);
	if (any)
		c->deadline_ms = c->w->now_ms + c->fe->conf.idle_timeout_ms;
	if (c->up.shut && c->down.shut)
		c->state = CS_DONE;
}

#define LINGER_MS 2000

/* Everything went to the client (close_notify + FIN) but it may still be sending: a KeyUpdate, pipelined
 * bytes. close() with unread input sends a RST, and a RST makes the client's kernel drop what it has not
 * read yet — the end of our response. So read and discard until the client closes too, for at most
 * LINGER_MS, then close (what nginx calls a lingering close). */
static void linger_start(struct conn *c)
{
	c->error = false;
	if (!c->close_reason)
		c->close_reason = "done (the client kept talking after our close_notify)";
	if (c->fd[BACKEND] >= 0) {
		close_watched(c->w->epfd, c->fd[BACKEND]);
		c->fd[BACKEND] = -1;
	}
	c->state = CS_LINGER;
	c->deadline_ms = c->w->now_ms + LINGER_MS;
}

static void linger(struct conn *c)
{
	uint8_t buf[16640], type;
	while (c->rd[CLIENT]) {
		/* A kTLS socket needs a cmsg buffer for non-data records; a plain one just discards. */
		ssize_t n = c->ktls & KTLS_RX ? ktls_recv_record(c->fd[CLIENT], buf, sizeof(buf), &type)
					      : recv(c->fd[CLIENT], buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			c->rd[CLIENT] = false;
			return;
		}
		if (n <= 0) {                   /* the client closed (or reset, or sent what we can't read) */
			c->state = CS_DONE;
			return;
		}
	}
}

static void step(struct conn *c)
{
	enum conn_state before;
	do {
		before = c->state;
		switch (c->state) {
		case CS_HANDSHAKE:
			handshake(c);
			break;
		case CS_CONNECT:
			if (c->wr[BACKEND])
				connected(c);
			break;
		case CS_RELAY:
			relay(c);
			/* Only the client talking after our close ends in a linger; real errors close at once. */
			if (c->error && c->linger_ok && c->down.shut && !c->up.len && !c->up.inpipe)
				linger_start(c);
			break;
		case CS_LINGER:
			linger(c);
			break;
		case CS_ROUTE:
			sm_route(c);
			break;
		case CS_JOIN:
			flush_pre(c);
			if (!c->error && c->pre_off == c->pre_len)
				sm_join(c);
			break;
		case CS_SOCKMAP:
			sm_step(c);
			break;
		case CS_BACKEND_TLS:
			backend_handshake(c);
			break;
		case CS_DONE:
			break;
		}
	} while (!c->error && c->state != before && c->state != CS_DONE);
	if (c->error || c->state == CS_DONE)
		conn_free(c);
}

void conn_event(struct conn *c, enum side s, uint32_t events)
{
	if (c->state == CS_HANDSHAKE || c->state == CS_BACKEND_TLS)
		c->w->scrub_stack = true;   /* handshake secrets pass through OpenSSL's stack frames */
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rd[s] = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->wr[s] = true;
	step(c);
}

void conn_timeout(struct conn *c)
{
	switch (c->state) {
	case CS_HANDSHAKE:
		set_reason(c, "handshake timeout");
		break;
	case CS_CONNECT:
		connect_failed(c, ETIMEDOUT, true);
		if (!c->error)
			return;
		break;
	case CS_LINGER:
		break;
	case CS_ROUTE:
		set_reason(c, "ClientHello timeout");
		break;
	case CS_JOIN:
		set_reason(c, "backend: PROXY header not accepted in time");
		break;
	case CS_SOCKMAP:
		if (!sm_timeout(c))
			return;
		break;
	case CS_BACKEND_TLS: {
		static __thread char why[200];
		snprintf(why, sizeof(why), "backend %s server %s: TLS handshake timeout after %u ms", c->be->conf.name,
			 c->server_text, c->be->conf.connect_timeout_ms);
		log_warn("frontend=%s client=%s: %s", c->fe->conf.name, c->client, why);
		set_reason(c, why);
		break;
	}
	default:
		set_reason(c, "idle timeout");
		break;
	}
	conn_free(c);
}
