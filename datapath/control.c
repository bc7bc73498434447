/* control.c — the daemon's end of the control socket (include/tlsoff/control.h, docs/control-protocol.md).
 *
 * Served on the main thread, next to signals and link events, so a SIGHUP reload and a control command are
 * applied one after the other, never interleaved. Clients are non-blocking: a request is handled when its
 * whole message has arrived, replies are queued and written as the client reads them, and a client that
 * sends garbage loses only its own connection. One table row per request type. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <openssl/x509.h>

#include "engine.h"
#include "tlsoff/ctl_msg.h"
#include "tlsoff/log.h"
#include "tlsoff/netdev.h"
#include "tlsoff/ocsp.h"
#include "tlsoff/sockdiag.h"
#include "tlsoff/version.h"

#define MAX_CLIENTS   64
#define IDLE_MS       60000           /* a client that neither sends nor reads for this long is closed */
#define OUT_MAX       (64u << 20)     /* replies queued for one client that does not read */

struct client {
	enum main_kind kind;              /* MK_CTL_CLIENT: first, epoll data points here */
	int fd;
	struct ucred cred;
	uint8_t *in;
	size_t inlen, incap;
	uint8_t *out;
	size_t outlen, outoff, outcap;
	bool closing;                     /* a framing error: close once the error reply is written */
	uint64_t last_ms;                 /* last time it sent or took anything */
	struct client *next;
};

struct control {
	enum main_kind kind;              /* MK_CTL_LISTEN */
	int fd, epfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct runtime *rt;
	struct client *clients;
	unsigned nclients;
	struct nl_sock *diag;             /* sock_diag, for the kTLS mode of each connection */
	struct client *taker;             /* the new daemon that received our sockets (TAKEOVER), until DONE */
	bool handed_over;                 /* the socket belongs to the new daemon: never unlink its path */
	int spare;                        /* /dev/null, held so the operator gets in when descriptors run out */
	bool accept_paused;               /* out of descriptors: the listener is disarmed until the next tick */
};

/* Out of descriptors (EMFILE/ENFILE: connections took them all) the operator must still get an answer:
 * the spare is given up for one control client and taken again when a control client leaves. */
static void spare_take(struct control *ctl)
{
	if (ctl->spare < 0)
		ctl->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* ---- replies ------------------------------------------------------------------------------------------ */

static void queue(struct client *cl, const void *data, size_t len)
{
	if (cl->outlen + len > OUT_MAX) {
		cl->closing = true;
		return;
	}
	if (cl->outlen + len > cl->outcap) {
		size_t cap = cl->outcap ? cl->outcap : 4096;
		while (cap < cl->outlen + len)
			cap *= 2;
		uint8_t *p = realloc(cl->out, cap);
		if (!p) {
			cl->closing = true;
			return;
		}
		cl->out = p;
		cl->outcap = cap;
	}
	memcpy(cl->out + cl->outlen, data, len);
	cl->outlen += len;
}

/* Queue and free m; NULL (out of memory while building it) closes the client rather than lying. */
static void reply(struct client *cl, struct nl_msg *m)
{
	if (!m) {
		cl->closing = true;
		return;
	}
	struct nlmsghdr *h = nlmsg_hdr(m);
	queue(cl, h, NLMSG_ALIGN(h->nlmsg_len));
	nlmsg_free(m);
}

/* A dump part that put (its return value rc) filled, or failed to: never send half an object. */
static void send_part(struct client *cl, struct nl_msg *m, int rc)
{
	if (m && rc < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	reply(cl, m);
}

static void ack(struct client *cl, const struct nlmsghdr *req, int error, const char *msg)
{
	reply(cl, ctl_ack_new(req, error, msg));
}

static void done(struct client *cl, const struct nlmsghdr *req)
{
	struct nl_msg *m = nlmsg_alloc_simple(NLMSG_DONE, NLM_F_MULTI);
	int zero = 0;
	if (m) {
		nlmsg_hdr(m)->nlmsg_seq = req->nlmsg_seq;
		if (nlmsg_append(m, &zero, sizeof(zero), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(m);
			m = NULL;
		}
	}
	reply(cl, m);
}

static struct nl_msg *part(const struct nlmsghdr *req)
{
	return ctl_msg_new(req->nlmsg_type, NLM_F_MULTI, req->nlmsg_seq);
}

/* ---- handlers ---------------------------------------------------------------------------------------------- */

struct request {
	struct control *ctl;
	struct client *cl;
	const struct nlmsghdr *h;
	struct nlattr **tb;
	char *err;                       /* TLSOFF_ERR_MAX + TLSOFF_PATH_MAX: the extended ack */
	size_t errlen;
};

/* A configuration message's errno: the message says what happened, the number lets a program branch. */
static int change_errno(const char *msg)
{
	if (strstr(msg, "Address already in use"))
		return -EADDRINUSE;
	if (!strncmp(msg, "no ", 3) || strstr(msg, ": no ") || strstr(msg, " has no "))
		return -ENOENT;
	if (strstr(msg, "already"))
		return -EEXIST;
	if (strstr(msg, " is used by ") || strstr(msg, "in use") || strstr(msg, "last "))
		return -EBUSY;
	if (strstr(msg, "shutting down"))
		return -ESHUTDOWN;
	return -EINVAL;
}

/* cert replace without `old`: the certificate serving the same primary name is the one replaced. */
static int cert_replace_target(struct request *r, struct cmd *c)
{
	char name[256];
	if (c->u.cert.old[0])
		return 0;
	const struct config *cfg = engine_config(r->ctl->rt);
	for (unsigned f = 0; f < cfg->nfrontends; f++)
		if (!strcmp(cfg->frontends[f].name, c->u.cert.frontend))
			for (unsigned i = 0; i < cfg->frontends[f].ncerts; i++)
				if (!strcmp(cfg->frontends[f].certs[i].chain, c->u.cert.cert.chain))
					return 0;   /* the same path: re-read it */
	struct tls_frontend *tf = engine_frontend_tls(r->ctl->rt, c->u.cert.frontend);
	if (!tf)
		return 0;                   /* config_apply says "no frontend" */
	if (tls_cert_file_name(c->u.cert.cert.chain, name, sizeof(name), r->err, r->errlen) < 0)
		return -EINVAL;
	int match = -1;
	for (unsigned i = 0; i < tls_frontend_ncerts(tf); i++) {
		char *const *names;
		unsigned n;
		tls_frontend_cert(tf, i, &names, &n);
		for (unsigned k = 0; k < n; k++)
			if (!strcmp(names[k], name)) {
				if (match >= 0 && match != (int)i) {
					snprintf(r->err, r->errlen, "cert replace: several certificates of '%s' serve %s; "
						 "say which with old CHAIN.pem", c->u.cert.frontend, name);
					return -EINVAL;
				}
				match = (int)i;
			}
	}
	if (match < 0) {
		snprintf(r->err, r->errlen, "cert replace: no certificate of '%s' serves %s (use cert add, or old "
			 "CHAIN.pem)", c->u.cert.frontend, name);
		return -ENOENT;
	}
	for (unsigned f = 0; f < cfg->nfrontends; f++)
		if (!strcmp(cfg->frontends[f].name, c->u.cert.frontend) && (unsigned)match < cfg->frontends[f].ncerts)
			snprintf(c->u.cert.old, sizeof(c->u.cert.old), "%s", cfg->frontends[f].certs[match].chain);
	return 0;
}

static int do_change(struct request *r)
{
	struct cmd *c = malloc(sizeof(*c));
	int rc;
	if (!c) {
		snprintf(r->err, r->errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = ctl_cmd_decode(r->h, r->tb, c, r->err, r->errlen)) == 0 &&
	    (c->object != CMD_CERT || c->verb != CMD_REPLACE || (rc = cert_replace_target(r, c)) == 0) &&
	    engine_change(r->ctl->rt, c, r->err, r->errlen) < 0)
		rc = change_errno(r->err);
	free(c);
	return rc;
}

static const char *name_filter(struct request *r)
{
	return r->tb[TLSOFF_A_NAME] ? nla_get_string(r->tb[TLSOFF_A_NAME]) : NULL;
}

static int do_frontend_get(struct request *r)
{
	const struct config *cfg = engine_config(r->ctl->rt);
	const char *only = name_filter(r);
	struct conn_info *v;
	size_t n;
	if (engine_conns(r->ctl->rt, &v, &n, r->err, r->errlen) < 0)
		return -EIO;
	for (unsigned i = 0; i < cfg->nfrontends; i++) {
		if (only && strcmp(only, cfg->frontends[i].name))
			continue;
		int conns = 0;
		for (size_t k = 0; k < n; k++)
			conns += !strcmp(v[k].frontend, cfg->frontends[i].name);
		struct nl_msg *m = part(r->h);
		send_part(r->cl, m, m ? ctl_put_frontend(m, &cfg->frontends[i], conns) : -1);
	}
	free(v);
	bool found = !only;
	for (unsigned i = 0; i < cfg->nfrontends && !found; i++)
		found = !strcmp(only, cfg->frontends[i].name);
	if (!found) {
		snprintf(r->err, r->errlen, "no frontend '%s'", only);
		return -ENOENT;
	}
	return 0;
}

static int do_backend_get(struct request *r)
{
	const struct config *cfg = engine_config(r->ctl->rt);
	const char *only = name_filter(r);
	struct conn_info *v;
	size_t n;
	bool found = false;
	if (engine_conns(r->ctl->rt, &v, &n, r->err, r->errlen) < 0)
		return -EIO;
	for (unsigned i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];
		unsigned active[TLSOFF_MAX_SERVERS] = { 0 };
		if (only && strcmp(only, b->name))
			continue;
		found = true;
		for (size_t k = 0; k < n; k++)        /* every generation's connections, not only the newest */
			for (unsigned s = 0; s < b->nservers; s++)
				active[s] += !strcmp(v[k].backend, b->name) && !strcmp(v[k].server, b->servers[s].text) &&
					     strcmp(v[k].state, "connect");
		struct nl_msg *m = part(r->h);
		send_part(r->cl, m, m ? ctl_put_backend(m, b, active) : -1);
	}
	free(v);
	if (only && !found) {
		snprintf(r->err, r->errlen, "no backend '%s'", only);
		return -ENOENT;
	}
	return 0;
}

/* The OCSP file of a certificate and what is done with it. */
static int put_ocsp(struct nl_msg *m, const struct cert_conf *cc, struct ocsp_staple *st)
{
	struct ocsp_status os;
	if (!cc->ocsp[0])
		return 0;
	if (nla_put_string(m, TLSOFF_CERT_OCSP, cc->ocsp) < 0)
		return -1;
	if (!st)
		return 0;
	ocsp_staple_status(st, &os);
	return nla_put_string(m, TLSOFF_CERT_OCSP_STATE, ocsp_verdict_name(os.verdict)) < 0 ||
	       nla_put_string(m, TLSOFF_CERT_OCSP_WHY, os.why) < 0 ||
	       (os.next_update && nla_put_u64(m, TLSOFF_CERT_OCSP_NEXT_UPDATE, (uint64_t)os.next_update) < 0) ? -1 : 0;
}

static int put_cert(struct nl_msg *m, const char *frontend, const struct cert_conf *cc, X509 *x,
		    char *const *names, unsigned nnames, bool is_default, struct ocsp_staple *st)
{
	char subject[1024];
	struct tm tm;
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_CERT);
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	if (!n || nla_put_string(m, TLSOFF_CERT_FRONTEND, frontend) < 0 ||
	    nla_put_string(m, TLSOFF_CERT_CHAIN, cc->chain) < 0 || nla_put_string(m, TLSOFF_CERT_KEY, cc->key) < 0 ||
	    nla_put_string(m, TLSOFF_CERT_SUBJECT, subject) < 0)
		return -1;
	for (unsigned i = 0; i < nnames; i++)
		if (nla_put_string(m, TLSOFF_CERT_NAME, names[i]) < 0)
			return -1;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 &&
	    nla_put_u64(m, TLSOFF_CERT_NOT_AFTER, (uint64_t)timegm(&tm)) < 0)
		return -1;
	if ((is_default && nla_put_flag(m, TLSOFF_CERT_DEFAULT) < 0) || put_ocsp(m, cc, st) < 0)
		return -1;
	nla_nest_end(m, n);
	return 0;
}

static int do_cert_get(struct request *r)
{
	const struct config *cfg = engine_config(r->ctl->rt);
	const char *only = name_filter(r);
	bool found = false;
	for (unsigned f = 0; f < cfg->nfrontends; f++) {
		const struct frontend_conf *fc = &cfg->frontends[f];
		struct tls_frontend *tf = engine_frontend_tls(r->ctl->rt, fc->name);
		if ((only && strcmp(only, fc->name)) || !tf)
			continue;
		found = true;
		for (unsigned i = 0; i < tls_frontend_ncerts(tf) && i < fc->ncerts; i++) {
			char *const *names;
			unsigned n;
			X509 *x = tls_frontend_cert(tf, i, &names, &n);
			struct nl_msg *m = part(r->h);
			send_part(r->cl, m, m ? put_cert(m, fc->name, &fc->certs[i], x, names, n, i == 0,
									 tls_frontend_ocsp(tf, i)) : -1);
		}
	}
	if (only && !found) {
		snprintf(r->err, r->errlen, "no frontend '%s'", only);
		return -ENOENT;
	}
	return 0;
}

struct kmodes {
	struct conn_info *v;
	size_t n;
};

static void on_ktls_socket(uint64_t cookie, const struct ktls_diag *d, void *arg)
{
	struct kmodes *k = arg;
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].cookie == cookie) {
			k->v[i].txconf = d->txconf;
			k->v[i].rxconf = d->rxconf;
		}
}

static const char *kmode(unsigned conf)
{
	return conf ? ktls_conf_name(conf) : "none";
}

static int put_conn(struct nl_msg *m, const struct conn_info *c)
{
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_CONN);
	if (!n || nla_put_u64(m, TLSOFF_CONN_ID, c->id) < 0 || nla_put_string(m, TLSOFF_CONN_FRONTEND, c->frontend) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_BACKEND, c->backend) < 0 || nla_put_string(m, TLSOFF_CONN_CLIENT, c->client) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_SERVER, c->server) < 0 || nla_put_string(m, TLSOFF_CONN_STATE, c->state) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_VERSION, c->version) < 0 || nla_put_string(m, TLSOFF_CONN_CIPHER, c->cipher) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_ALPN, c->alpn) < 0 || nla_put_string(m, TLSOFF_CONN_SNI, c->sni) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_DATAPATH, c->datapath) < 0 || nla_put_string(m, TLSOFF_CONN_WHY, c->why) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_KTLS_TX, kmode(c->txconf)) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_KTLS_RX, kmode(c->rxconf)) < 0 ||
	    nla_put_u64(m, TLSOFF_CONN_BYTES_IN, c->in) < 0 || nla_put_u64(m, TLSOFF_CONN_BYTES_OUT, c->out) < 0 ||
	    nla_put_u64(m, TLSOFF_CONN_AGE_MS, c->age_ms) < 0 || nla_put_u32(m, TLSOFF_CONN_REKEYS, c->rekeys) < 0 ||
	    nla_put_u32(m, TLSOFF_CONN_WORKER, c->worker) < 0 ||
	    nla_put_string(m, TLSOFF_CONN_NIC_OFFLOAD, c->nic) < 0)
		return -1;
	if (c->be_tls && (nla_put_string(m, TLSOFF_CONN_BACKEND_TLS, c->be_tls) < 0 ||
			  nla_put_string(m, TLSOFF_CONN_BACKEND_VERSION, c->be_version) < 0 ||
			  nla_put_string(m, TLSOFF_CONN_BACKEND_CIPHER, c->be_cipher) < 0))
		return -1;
	nla_nest_end(m, n);
	return 0;
}

static int do_conn_get(struct request *r)
{
	struct nlattr *ft[TLSOFF_FILTER_MAX + 1] = { NULL };
	struct conn_info *v;
	size_t n;
	int rc;
	if (r->tb[TLSOFF_A_FILTER] &&
	    (rc = ctl_parse_nested(ft, TLSOFF_FILTER_MAX, r->tb[TLSOFF_A_FILTER], ctl_filter_policy, "conn show filter",
				   r->err, r->errlen)) < 0)
		return rc;
	if (engine_conns(r->ctl->rt, &v, &n, r->err, r->errlen) < 0)
		return -EIO;
	/* The kTLS mode as the kernel reports it now: one dump, matched by socket cookie. Without
	 * CAP_NET_ADMIN the kernel leaves ULP info out and every mode reads "none"; say so in the log once. */
	bool any_ktls = false;
	for (size_t i = 0; i < n; i++)
		any_ktls |= v[i].ktls != 0;
	if (any_ktls) {
		struct kmodes k = { v, n };
		if (!r->ctl->diag)
			r->ctl->diag = sockdiag_open();
		if (!r->ctl->diag || sockdiag_ktls_dump(r->ctl->diag, on_ktls_socket, &k) < 0)
			log_warn("control: conn show: sock_diag dump failed; kTLS modes shown as none");
	}
	const char *fe = ft[TLSOFF_FILTER_FRONTEND] ? nla_get_string(ft[TLSOFF_FILTER_FRONTEND]) : NULL;
	const char *be = ft[TLSOFF_FILTER_BACKEND] ? nla_get_string(ft[TLSOFF_FILTER_BACKEND]) : NULL;
	const char *dp = ft[TLSOFF_FILTER_DATAPATH] ? nla_get_string(ft[TLSOFF_FILTER_DATAPATH]) : NULL;
	for (size_t i = 0; i < n; i++) {
		if ((fe && strcmp(fe, v[i].frontend)) || (be && strcmp(be, v[i].backend)) || (dp && strcmp(dp, v[i].datapath)))
			continue;
		struct nl_msg *m = part(r->h);
		send_part(r->cl, m, m ? put_conn(m, &v[i]) : -1);
	}
	free(v);
	return 0;
}

static int do_conn_kill(struct request *r)
{
	if (!r->tb[TLSOFF_A_ID]) {
		snprintf(r->err, r->errlen, "conn kill: missing the connection id");
		return -EINVAL;
	}
	uint64_t id = nla_get_u64(r->tb[TLSOFF_A_ID]);
	if (engine_conn_kill(r->ctl->rt, id) < 0) {
		snprintf(r->err, r->errlen, "no connection %llu", (unsigned long long)id);
		return -ENOENT;
	}
	return 0;
}

static int put_counter(struct nl_msg *m, const char *name, uint64_t value, bool kernel)
{
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_COUNTER);
	if (!n || nla_put_string(m, TLSOFF_COUNTER_NAME, name) < 0 || nla_put_u64(m, TLSOFF_COUNTER_VALUE, value) < 0 ||
	    (kernel && nla_put_flag(m, TLSOFF_COUNTER_KERNEL) < 0))
		return -1;
	nla_nest_end(m, n);
	return 0;
}

static int do_stats(struct request *r)
{
	struct nl_msg *m = part(r->h);
	int rc = m ? 0 : -1;
#define C(f) rc |= put_counter(m, #f, atomic_load_explicit(&counters.f, memory_order_relaxed), false)
	if (m) {
		C(accepted); C(refused_max_conns); C(handshake_failed); C(splice); C(userspace); C(sockmap); C(rekeys);
		C(rekey_unsupported);
		C(ktls_tx_sw); C(ktls_tx_hw); C(ktls_rx_sw); C(ktls_rx_hw); C(nic_preferred); C(nic_not_applicable);
	}
#undef C
	/* The kernel's own kTLS counters (TlsCurrTxSw, TlsDecryptError, ...), absent without the TLS module. */
	FILE *f = fopen("/proc/net/tls_stat", "r");
	char name[64];
	unsigned long long value;
	while (m && f && fscanf(f, "%63s %llu", name, &value) == 2)
		rc |= put_counter(m, name, value, true);
	if (f)
		fclose(f);
	send_part(r->cl, m, rc ? -1 : 0);
	return 0;
}

static int do_status(struct request *r)
{
	struct engine_status st;
	engine_status(r->ctl->rt, &st);
	struct nl_msg *m = part(r->h);
	struct nlattr *n = m ? nla_nest_start(m, TLSOFF_A_STATUS) : NULL;
	int rc = n ? 0 : -1;
	if (n) {
		rc |= nla_put_string(m, TLSOFF_STATUS_VERSION, TLSOFF_VERSION);
		rc |= nla_put_u32(m, TLSOFF_STATUS_PID, (uint32_t)getpid());
		rc |= nla_put_u64(m, TLSOFF_STATUS_UPTIME_S, st.uptime_ms / 1000);
		rc |= nla_put_u32(m, TLSOFF_STATUS_WORKERS, st.workers);
		rc |= nla_put_u32(m, TLSOFF_STATUS_GENERATION, st.generation);
		rc |= nla_put_u32(m, TLSOFF_STATUS_CONNS, st.conns);
		rc |= nla_put_string(m, TLSOFF_STATUS_KERNEL, st.caps->release);
		rc |= nla_put_u8(m, TLSOFF_STATUS_TLS_ULP, st.caps->ulp);
		rc |= nla_put_string(m, TLSOFF_STATUS_TLS_ULP_WHY, st.caps->ulp ? "" : st.caps->why);
		for (int ver = 0; ver < 2 && st.caps->ulp; ver++)
			for (size_t i = 0; i < ktls_cipher_count; i++) {
				struct nlattr *c = nla_nest_start(m, TLSOFF_STATUS_CIPHER);
				if (!c) {
					rc = -1;
					break;
				}
				rc |= nla_put_string(m, TLSOFF_CIPHER_NAME, ktls_ciphers[i].name);
				rc |= nla_put_string(m, TLSOFF_CIPHER_TLS, ver ? "1.3" : "1.2");
				rc |= nla_put_u8(m, TLSOFF_CIPHER_TX, !!(st.caps->tx[ver] & (1u << i)));
				rc |= nla_put_u8(m, TLSOFF_CIPHER_RX, !!(st.caps->rx[ver] & (1u << i)));
				nla_nest_end(m, c);
			}
		rc |= nla_put_u8(m, TLSOFF_STATUS_REKEY, st.caps->rekey);
		rc |= nla_put_u8(m, TLSOFF_STATUS_SOCKMAP, st.sockmap);
		rc |= nla_put_string(m, TLSOFF_STATUS_CONFIG_PATH, st.config_path ? st.config_path : "");
		rc |= nla_put_string(m, TLSOFF_STATUS_STEERING, st.steering);
		rc |= nla_put_string(m, TLSOFF_STATUS_SOCKMAP_WHY, st.sockmap ? "" : st.sockmap_why);
		rc |= nla_put_u8(m, TLSOFF_STATUS_SOCKMAP_CUT, st.sockmap && st.sockmap_cut);
		nla_nest_end(m, n);
	}
	send_part(r->cl, m, rc ? -1 : 0);
	return 0;
}

static int put_link(struct nl_msg *m, const struct netdev_info *d)
{
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_LINK);
	if (!n || nla_put_string(m, TLSOFF_LINK_NAME, d->name) < 0 || nla_put_u32(m, TLSOFF_LINK_IFINDEX, d->ifindex) < 0 ||
	    nla_put_u8(m, TLSOFF_LINK_UP, d->up) < 0)
		return -1;
	for (int i = 0; i < NETDEV_TLS_FEATURES; i++) {
		struct nlattr *f = nla_nest_start(m, TLSOFF_LINK_FEATURE);
		if (!f || nla_put_string(m, TLSOFF_FEAT_NAME, netdev_tls_feature_names[i]) < 0 ||
		    nla_put_u8(m, TLSOFF_FEAT_HW, d->tls[i].hw) < 0 || nla_put_u8(m, TLSOFF_FEAT_WANTED, d->tls[i].wanted) < 0 ||
		    nla_put_u8(m, TLSOFF_FEAT_ACTIVE, d->tls[i].active) < 0 || nla_put_u8(m, TLSOFF_FEAT_FIXED, d->tls[i].fixed) < 0)
			return -1;
		nla_nest_end(m, f);
	}
	nla_nest_end(m, n);
	return 0;
}

static int do_offload_get(struct request *r)
{
	struct netdev_info *v;
	size_t n;
	if (netdev_list(name_filter(r), &v, &n, r->err, r->errlen) < 0)
		return -ENODEV;
	for (size_t i = 0; i < n; i++) {
		struct nl_msg *m = part(r->h);
		send_part(r->cl, m, m ? put_link(m, &v[i]) : -1);
	}
	free(v);
	return 0;
}

static int do_offload_set(struct request *r)
{
	struct nlattr *ft[TLSOFF_FEAT_MAX + 1];
	int rc;
	if (!r->tb[TLSOFF_A_NAME] || !r->tb[TLSOFF_A_FEATURE]) {
		snprintf(r->err, r->errlen, "offload set: needs a device and a feature");
		return -EINVAL;
	}
	if ((rc = ctl_parse_nested(ft, TLSOFF_FEAT_MAX, r->tb[TLSOFF_A_FEATURE], ctl_feat_policy, "offload set",
				   r->err, r->errlen)) < 0)
		return rc;
	if (!ft[TLSOFF_FEAT_NAME] || !ft[TLSOFF_FEAT_WANTED]) {
		snprintf(r->err, r->errlen, "offload set: the feature needs a name and a wanted state");
		return -EINVAL;
	}
	if (netdev_feature_set(nla_get_string(r->tb[TLSOFF_A_NAME]), nla_get_string(ft[TLSOFF_FEAT_NAME]),
			       nla_get_u8(ft[TLSOFF_FEAT_WANTED]), r->err, r->errlen) < 0)
		return strstr(r->err, "CAP_NET_ADMIN") ? -EPERM : strstr(r->err, "no such device") ? -ENODEV : -EOPNOTSUPP;
	return 0;
}

static void config_line(const char *text, void *arg)
{
	struct request *r = arg;
	struct nl_msg *m = part(r->h);
	send_part(r->cl, m, m ? nla_put_string(m, TLSOFF_A_CONFIG_LINE, text) : -1);
}

static int do_config_get(struct request *r)
{
	config_format(engine_config(r->ctl->rt), config_line, r);
	return 0;
}

/* ---- takeover (the old daemon's side; the new one's is takeover.c) ------------------------------------ */

/* Write everything queued for the client, waiting for it to read (a takeover answer goes out in order:
 * what was queued before it first). */
static int flush_blocking(struct client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };
			if (poll(&p, 1, 5000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return -errno;
		cl->outoff += (size_t)n;
	}
	cl->outoff = cl->outlen = 0;
	return 0;
}

/* One message with one descriptor attached (SCM_RIGHTS rides with the message's bytes). */
static int send_with_fd(struct client *cl, struct nl_msg *m, int fd)
{
	struct nlmsghdr *h = nlmsg_hdr(m);
	size_t len = NLMSG_ALIGN(h->nlmsg_len), off = 0;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof(cm));
	while (off < len) {
		struct iovec iov = { .iov_base = (char *)h + off, .iov_len = len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (off == 0) {   /* the descriptor goes with the first byte, once */
			mh.msg_control = &cm;
			mh.msg_controllen = sizeof(cm);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		ssize_t n = sendmsg(cl->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };
			if (poll(&p, 1, 5000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static int put_listener(struct nl_msg *m, int kind, const char *frontend, const char *listen, unsigned worker)
{
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_LISTENER);
	if (!n || nla_put_u32(m, TLSOFF_LSN_KIND, (uint32_t)kind) < 0 ||
	    (frontend && nla_put_string(m, TLSOFF_LSN_FRONTEND, frontend) < 0) ||
	    nla_put_string(m, TLSOFF_LSN_LISTEN, listen) < 0 || nla_put_u32(m, TLSOFF_LSN_WORKER, worker) < 0 ||
	    nla_put_u32(m, TLSOFF_LSN_PID, (uint32_t)getpid()) < 0)
		return -1;
	nla_nest_end(m, n);
	return 0;
}

struct send_ctx {
	struct request *r;
	unsigned sent;
};

static int send_listener(int fd, const char *frontend, const char *listen, unsigned worker, void *arg)
{
	struct send_ctx *sc = arg;
	struct nl_msg *m = part(sc->r->h);
	int rc = m && put_listener(m, TLSOFF_LSN_KIND_FRONTEND, frontend, listen, worker) == 0 ? 0 : -ENOMEM;
	if (!rc)
		rc = send_with_fd(sc->r->cl, m, fd);
	nlmsg_free(m);
	sc->sent += rc == 0;
	return rc;
}

/* TAKEOVER: every listening socket, then the control socket, each with its descriptor. We keep accepting
 * on all of them until the new daemon says DONE; if it never does (it failed, or died), nothing changed. */
static int do_takeover(struct request *r)
{
	struct control *ctl = r->ctl;
	int rc;
	if (!engine_running(ctl->rt)) {
		snprintf(r->err, r->errlen, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	/* The sockets are the service itself: only the daemon's own user (or root) may take them, not every
	 * member of --control-group. */
	if (r->cl->cred.uid != geteuid() && r->cl->cred.uid != 0) {
		snprintf(r->err, r->errlen, "uid %u may not take the sockets over: only the daemon's user (%u) or root",
			 (unsigned)r->cl->cred.uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (ctl->taker && ctl->taker != r->cl) {
		snprintf(r->err, r->errlen, "a takeover by pid %d is in progress already", (int)ctl->taker->cred.pid);
		return -EBUSY;
	}
	if ((rc = flush_blocking(r->cl)) < 0) {
		snprintf(r->err, r->errlen, "cannot write to the client: %s", strerror(-rc));
		r->cl->closing = true;
		return rc;
	}
	struct send_ctx sc = { r, 0 };
	if (engine_listeners(ctl->rt, send_listener, &sc, r->err, r->errlen) < 0) {
		r->cl->closing = true;   /* part of a dump may be out: the stream ends here */
		return -EIO;
	}
	struct nl_msg *m = part(r->h);
	rc = m && put_listener(m, TLSOFF_LSN_KIND_CONTROL, NULL, ctl->path, 0) == 0 ? 0 : -ENOMEM;
	if (!rc)
		rc = send_with_fd(r->cl, m, ctl->fd);
	nlmsg_free(m);
	if (rc < 0) {
		snprintf(r->err, r->errlen, "sending the control socket: %s", strerror(-rc));
		r->cl->closing = true;
		return -EIO;
	}
	ctl->taker = r->cl;
	log_notice("takeover: sent %u listening socket(s) and the control socket to pid %d; accepting on them "
		   "until it confirms", sc.sent, (int)r->cl->cred.pid);
	return 0;
}

/* TAKEOVER_DONE: the new daemon accepts on our sockets. Stop accepting control clients (the socket is its
 * own now: the path stays), drain, exit. */
static int do_takeover_done(struct request *r)
{
	struct control *ctl = r->ctl;
	if (ctl->taker != r->cl) {
		snprintf(r->err, r->errlen, "no takeover in progress on this connection (send TAKEOVER first)");
		return -EINVAL;
	}
	ctl->taker = NULL;
	ctl->handed_over = true;
	epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, ctl->fd, NULL);   /* before close: the socket lives on elsewhere */
	close(ctl->fd);
	ctl->fd = -1;
	engine_handed_over(ctl->rt, r->cl->cred.pid);
	return 0;
}

/* One row per request type: how it is answered, and whether it changes anything (logged at notice). */
static const struct handler {
	int type;
	int (*fn)(struct request *r);
	bool dump, changes;
} handlers[] = {
	{ TLSOFF_CMD_FRONTEND_ADD, do_change, false, true },
	{ TLSOFF_CMD_FRONTEND_DEL, do_change, false, true },
	{ TLSOFF_CMD_FRONTEND_GET, do_frontend_get, true, false },
	{ TLSOFF_CMD_BACKEND_ADD, do_change, false, true },
	{ TLSOFF_CMD_BACKEND_DEL, do_change, false, true },
	{ TLSOFF_CMD_BACKEND_GET, do_backend_get, true, false },
	{ TLSOFF_CMD_SERVER_ADD, do_change, false, true },
	{ TLSOFF_CMD_SERVER_DEL, do_change, false, true },
	{ TLSOFF_CMD_SERVER_DRAIN, do_change, false, true },
	{ TLSOFF_CMD_SERVER_ENABLE, do_change, false, true },
	{ TLSOFF_CMD_CERT_ADD, do_change, false, true },
	{ TLSOFF_CMD_CERT_REPLACE, do_change, false, true },
	{ TLSOFF_CMD_CERT_DEL, do_change, false, true },
	{ TLSOFF_CMD_CERT_GET, do_cert_get, true, false },
	{ TLSOFF_CMD_CONN_GET, do_conn_get, true, false },
	{ TLSOFF_CMD_CONN_KILL, do_conn_kill, false, true },
	{ TLSOFF_CMD_STATS_GET, do_stats, true, false },
	{ TLSOFF_CMD_STATUS_GET, do_status, true, false },
	{ TLSOFF_CMD_OFFLOAD_GET, do_offload_get, true, false },
	{ TLSOFF_CMD_OFFLOAD_SET, do_offload_set, false, true },
	{ TLSOFF_CMD_CONFIG_GET, do_config_get, true, false },
	{ TLSOFF_CMD_TICKETS_SET, do_change, false, true },
	{ TLSOFF_CMD_METRICS_SET, do_change, false, true },
	{ TLSOFF_CMD_TAKEOVER, do_takeover, true, true },
	{ TLSOFF_CMD_TAKEOVER_DONE, do_takeover_done, false, true },
};


static void handle(struct control *ctl, struct client *cl, const struct nlmsghdr *h)
{
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX] = "";
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	const struct handler *hd = NULL;
	int rc = ctl_msg_check(h, err, sizeof(err));

	if (rc == -EPROTO) {   /* the stream cannot be trusted any more */
		ack(cl, h, rc, err);
		cl->closing = true;
		return;
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (handlers[i].type == h->nlmsg_type)
			hd = &handlers[i];
	if (rc == 0 && !hd) {
		snprintf(err, sizeof(err), "unknown request type %u (control protocol version %d)", h->nlmsg_type,
			 TLSOFF_CTL_VERSION);
		rc = -EOPNOTSUPP;
	}
	if (rc == 0 && !(h->nlmsg_flags & NLM_F_REQUEST)) {
		snprintf(err, sizeof(err), "not a request (NLM_F_REQUEST is not set)");
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = ctl_parse_msg(h, tb, err, sizeof(err));
	if (rc == 0) {
		struct request r = { ctl, cl, h, tb, err, sizeof(err) };
		rc = hd->fn(&r);
	}
	const char *what = hd ? ctl_cmd_name(h->nlmsg_type) : "?";
	log_msg(hd && hd->changes ? LOG_NOTICE : LOG_INFO, "control: uid=%u gid=%u pid=%d: %s%s: %s%s",
		(unsigned)cl->cred.uid, (unsigned)cl->cred.gid, (int)cl->cred.pid, what, rc == 0 ? ctl_msg_subject(tb) : "",
		rc ? "refused: " : "ok", rc ? err : "");
	if (rc == 0 && hd->dump)
		done(cl, h);
	else if (rc != 0 || (h->nlmsg_flags & NLM_F_ACK))
		ack(cl, h, rc, rc ? err : NULL);
}

/* ---- clients --------------------------------------------------------------------------------------------- */

static void client_close(struct control *ctl, struct client *cl)
{
	if (ctl->taker == cl) {
		ctl->taker = NULL;
		log_notice("takeover: pid %d went away before confirming; this daemon carries on serving",
			   (int)cl->cred.pid);
	}
	for (struct client **pp = &ctl->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	close_watched(ctl->epfd, cl->fd);
	free(cl->in);
	free(cl->out);
	free(cl);
	spare_take(ctl);
	ctl->nclients--;
}

static void client_arm(struct control *ctl, struct client *cl)
{
	struct epoll_event ev = { .events = EPOLLIN | (cl->outlen > cl->outoff ? EPOLLOUT : 0), .data.ptr = cl };
	epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, cl->fd, &ev);
}

/* Write what is queued. Returns -1 when the client is gone. */
static int client_flush(struct client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		cl->outoff += (size_t)n;
	}
	cl->outoff = cl->outlen = 0;
	return 0;
}

static void client_read(struct control *ctl, struct client *cl)
{
	for (;;) {
		if (cl->incap - cl->inlen < 4096) {
			size_t cap = cl->incap ? cl->incap * 2 : 8192;
			uint8_t *p = cap <= 2 * TLSOFF_CTL_MSG_MAX ? realloc(cl->in, cap) : NULL;
			if (!p) {
				cl->closing = true;
				return;
			}
			cl->in = p;
			cl->incap = cap;
		}
		ssize_t n = read(cl->fd, cl->in + cl->inlen, cl->incap - cl->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			cl->closing = true;   /* end of stream: answer what arrived, then close */
			break;
		}
		cl->inlen += (size_t)n;
	}
	size_t off = 0;
	while (cl->inlen - off >= NLMSG_HDRLEN) {
		struct nlmsghdr *h = (struct nlmsghdr *)(cl->in + off);
		if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > TLSOFF_CTL_MSG_MAX) {
			handle(ctl, cl, h);   /* answers with the framing error and marks the client closing */
			cl->inlen = off = 0;
			break;
		}
		if (cl->inlen - off < h->nlmsg_len)
			break;
		/* handle() reads the message in place: align a copy when the stream put it off alignment */
		if (off % NLMSG_ALIGNTO) {
			struct nlmsghdr *copy = malloc(h->nlmsg_len);
			if (copy) {
				memcpy(copy, h, h->nlmsg_len);
				handle(ctl, cl, copy);
				free(copy);
			}
		} else {
			handle(ctl, cl, h);
		}
		off += NLMSG_ALIGN(h->nlmsg_len) <= cl->inlen - off ? NLMSG_ALIGN(h->nlmsg_len) : h->nlmsg_len;
		if (cl->closing)
			break;
	}
	memmove(cl->in, cl->in + off, cl->inlen - off);
	cl->inlen -= off;
}

static void accept_clients(struct control *ctl)
{
	for (;;) {
		int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && ctl->spare >= 0) {
			close(ctl->spare);
			ctl->spare = -1;
			fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0)
				log_warn("control: out of descriptors; this client uses the reserved one");
		}
		if (fd < 0) {
			/* Still out (a worker took the freed slot first): the client waits in the backlog;
			 * the level-triggered listener wakes us again, at most once per tick, see control_tick. */
			if (errno == EMFILE || errno == ENFILE) {
				struct epoll_event ev = { .events = 0, .data.ptr = ctl };
				epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, ctl->fd, &ev);
				ctl->accept_paused = true;
			}
			spare_take(ctl);
			return;
		}
		struct client *cl = ctl->nclients < MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
		if (!cl) {
			log_warn("control: refusing a client: %u clients connected already", ctl->nclients);
			close(fd);
			continue;
		}
		socklen_t len = sizeof(cl->cred);
		getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cl->cred, &len);
		cl->kind = MK_CTL_CLIENT;
		cl->fd = fd;
		cl->last_ms = now_ms();
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cl };
		if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(cl);
			continue;
		}
		cl->next = ctl->clients;
		ctl->clients = cl;
		ctl->nclients++;
	}
}

void control_event(struct control *ctl, void *tag, uint32_t events)
{
	if (!ctl)
		return;
	if (tag == ctl) {
		accept_clients(ctl);
		return;
	}
	struct client *cl = tag;
	cl->last_ms = now_ms();
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(ctl, cl);
	if (client_flush(cl) < 0 || (cl->closing && cl->outlen == 0)) {
		client_close(ctl, cl);
		return;
	}
	client_arm(ctl, cl);
}

/* Clients are few (MAX_CLIENTS): one that connects and goes silent must not hold a slot for ever. */
void control_tick(struct control *ctl)
{
	uint64_t now = now_ms();
	if (ctl && ctl->accept_paused) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ctl };
		epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, ctl->fd, &ev);
		ctl->accept_paused = false;
	}
	for (struct client *cl = ctl ? ctl->clients : NULL, *next; cl; cl = next) {
		next = cl->next;
		if (now - cl->last_ms >= IDLE_MS) {
			log_info("control: closing a client idle for %d s (uid=%u pid=%d)", IDLE_MS / 1000,
				 (unsigned)cl->cred.uid, (int)cl->cred.pid);
			client_close(ctl, cl);
		}
	}
}

/* ---- the socket ------------------------------------------------------------------------------------------ */

struct control *control_open(const char *path, const char *group, int epfd, struct runtime *rt, int inherited_fd,
			     char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *ctl = calloc(1, sizeof(*ctl));
	gid_t gid = (gid_t)-1;

	if (!ctl) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long (at most %zu bytes): %s", sizeof(sa.sun_path) - 1, path);
		goto fail;
	}
	if (group) {
		struct group *g = getgrnam(group);
		if (!g) {
			snprintf(err, errlen, "control group '%s': no such group", group);
			goto fail;
		}
		gid = g->gr_gid;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	if (inherited_fd >= 0) {   /* taken over: bound and listening at path already, mode and group as set */
		ctl->fd = inherited_fd;
		goto serve;
	}
	/* The directory (/run/tlsoff) is created if missing; its parent must exist. */
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "control socket directory %s: %s", dir, strerror(errno));
			goto fail;
		}
	}
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		goto fail;
	}
	/* A socket file left by a daemon that died is removed; one that answers belongs to a live daemon. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		snprintf(err, errlen, "control socket %s is in use by another tlsoffd", path);
		goto fail;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	mode_t old = umask(0117);   /* no window where the socket is wider than 0660 */
	int rc = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0660) < 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    listen(ctl->fd, 64) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
serve:
	ctl->spare = -1;
	spare_take(ctl);
	ctl->kind = MK_CTL_LISTEN;
	ctl->epfd = epfd;
	ctl->rt = rt;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ctl };
	epoll_ctl(epfd, EPOLL_CTL_ADD, ctl->fd, &ev);
	return ctl;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl);
	return NULL;
}

void control_close(struct control *ctl)
{
	if (!ctl)
		return;
	while (ctl->clients)
		client_close(ctl, ctl->clients);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (!ctl->handed_over)   /* else the path is the new daemon's socket */
		unlink(ctl->path);
	sockdiag_close(ctl->diag);
	if (ctl->spare >= 0)
		close(ctl->spare);
	free(ctl);
}
