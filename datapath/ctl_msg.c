/* ctl_msg.c — control-protocol messages (see include/tlsoff/ctl_msg.h and include/tlsoff/control.h). */
#include "tlsoff/ctl_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>

#define STR(max) { .type = NLA_STRING, .maxlen = (max) }
#define NEST     { .type = NLA_NESTED }
#define U8       { .type = NLA_U8 }
#define U32      { .type = NLA_U32 }
#define U64      { .type = NLA_U64 }
#define FLAG     { .type = NLA_FLAG }

const struct nla_policy ctl_policy[TLSOFF_A_MAX + 1] = {
	[TLSOFF_A_NAME] = STR(TLSOFF_NAME_MAX), [TLSOFF_A_FRONTEND] = NEST, [TLSOFF_A_BACKEND] = NEST,
	[TLSOFF_A_SERVER] = STR(80), [TLSOFF_A_CERT] = NEST, [TLSOFF_A_CONN] = NEST, [TLSOFF_A_FILTER] = NEST,
	[TLSOFF_A_ID] = U64, [TLSOFF_A_COUNTER] = NEST, [TLSOFF_A_STATUS] = NEST, [TLSOFF_A_LINK] = NEST,
	[TLSOFF_A_FEATURE] = NEST, [TLSOFF_A_CONFIG_LINE] = STR(65535), [TLSOFF_A_LISTENER] = NEST,
};
const struct nla_policy ctl_lsn_policy[TLSOFF_LSN_MAX + 1] = {
	[TLSOFF_LSN_KIND] = U32, [TLSOFF_LSN_FRONTEND] = STR(TLSOFF_NAME_MAX), [TLSOFF_LSN_LISTEN] = STR(80),
	[TLSOFF_LSN_WORKER] = U32, [TLSOFF_LSN_PID] = U32,
};
const struct nla_policy ctl_fe_policy[TLSOFF_FE_MAX + 1] = {
	[TLSOFF_FE_NAME] = STR(TLSOFF_NAME_MAX), [TLSOFF_FE_LISTEN] = STR(80), [TLSOFF_FE_CERT] = NEST,
	[TLSOFF_FE_BACKEND] = STR(TLSOFF_NAME_MAX), [TLSOFF_FE_ALPN] = STR(2 * TLSOFF_ALPN_MAX),
	[TLSOFF_FE_TLS_MIN] = STR(8), [TLSOFF_FE_DATAPATH] = U32, [TLSOFF_FE_HANDSHAKE_TIMEOUT] = U32,
	[TLSOFF_FE_IDLE_TIMEOUT] = U32, [TLSOFF_FE_MAX_CONNS] = U32, [TLSOFF_FE_CONNS] = U32,
	[TLSOFF_FE_MODE] = U32, [TLSOFF_FE_ROUTE] = NEST,
	[TLSOFF_FE_CLIENT_CA] = STR(TLSOFF_PATH_MAX), [TLSOFF_FE_CLIENT_VERIFY] = U32,
	[TLSOFF_FE_NIC_OFFLOAD] = U32,
};
const struct nla_policy ctl_route_policy[TLSOFF_ROUTE_MAX + 1] = {
	[TLSOFF_ROUTE_SNI] = STR(TLSOFF_SNI_MAX), [TLSOFF_ROUTE_BACKEND] = STR(TLSOFF_NAME_MAX),
};
const struct nla_policy ctl_be_policy[TLSOFF_BE_MAX + 1] = {
	[TLSOFF_BE_NAME] = STR(TLSOFF_NAME_MAX), [TLSOFF_BE_SERVER] = NEST, [TLSOFF_BE_BALANCE] = U32,
	[TLSOFF_BE_PROXY_PROTOCOL] = U32, [TLSOFF_BE_CONNECT_TIMEOUT] = U32,
	[TLSOFF_BE_TLS] = FLAG, [TLSOFF_BE_TLS_CA] = STR(TLSOFF_PATH_MAX), [TLSOFF_BE_TLS_VERIFY] = U32,
	[TLSOFF_BE_TLS_SNI] = STR(TLSOFF_SNI_MAX), [TLSOFF_BE_TLS_CERT] = STR(TLSOFF_PATH_MAX),
	[TLSOFF_BE_TLS_KEY] = STR(TLSOFF_PATH_MAX),
};
const struct nla_policy ctl_srv_policy[TLSOFF_SRV_MAX + 1] = {
	[TLSOFF_SRV_ADDR] = STR(80), [TLSOFF_SRV_DRAINED] = FLAG, [TLSOFF_SRV_ACTIVE] = U32,
};
const struct nla_policy ctl_cert_policy[TLSOFF_CERT_MAX + 1] = {
	[TLSOFF_CERT_CHAIN] = STR(TLSOFF_PATH_MAX), [TLSOFF_CERT_KEY] = STR(TLSOFF_PATH_MAX),
	[TLSOFF_CERT_OLD] = STR(TLSOFF_PATH_MAX), [TLSOFF_CERT_FRONTEND] = STR(TLSOFF_NAME_MAX),
	[TLSOFF_CERT_NAME] = STR(256), [TLSOFF_CERT_NOT_AFTER] = U64, [TLSOFF_CERT_SUBJECT] = STR(1024),
	[TLSOFF_CERT_DEFAULT] = FLAG,
	[TLSOFF_CERT_OCSP] = STR(TLSOFF_PATH_MAX), [TLSOFF_CERT_OCSP_STATE] = STR(32),
	[TLSOFF_CERT_OCSP_WHY] = STR(TLSOFF_ERR_MAX), [TLSOFF_CERT_OCSP_NEXT_UPDATE] = U64,
};
const struct nla_policy ctl_conn_policy[TLSOFF_CONN_MAX + 1] = {
	[TLSOFF_CONN_ID] = U64, [TLSOFF_CONN_FRONTEND] = STR(TLSOFF_NAME_MAX),
	[TLSOFF_CONN_BACKEND] = STR(TLSOFF_NAME_MAX), [TLSOFF_CONN_CLIENT] = STR(80), [TLSOFF_CONN_SERVER] = STR(80),
	[TLSOFF_CONN_STATE] = STR(16), [TLSOFF_CONN_VERSION] = STR(16), [TLSOFF_CONN_CIPHER] = STR(64),
	[TLSOFF_CONN_ALPN] = STR(64), [TLSOFF_CONN_SNI] = STR(256), [TLSOFF_CONN_DATAPATH] = STR(16),
	[TLSOFF_CONN_WHY] = STR(512), [TLSOFF_CONN_KTLS_TX] = STR(16), [TLSOFF_CONN_KTLS_RX] = STR(16),
	[TLSOFF_CONN_BYTES_IN] = U64, [TLSOFF_CONN_BYTES_OUT] = U64, [TLSOFF_CONN_AGE_MS] = U64,
	[TLSOFF_CONN_REKEYS] = U32, [TLSOFF_CONN_WORKER] = U32,
	[TLSOFF_CONN_NIC_OFFLOAD] = STR(128),
	[TLSOFF_CONN_BACKEND_TLS] = STR(16), [TLSOFF_CONN_BACKEND_VERSION] = STR(16),
	[TLSOFF_CONN_BACKEND_CIPHER] = STR(64),
};
const struct nla_policy ctl_filter_policy[TLSOFF_FILTER_MAX + 1] = {
	[TLSOFF_FILTER_FRONTEND] = STR(TLSOFF_NAME_MAX), [TLSOFF_FILTER_BACKEND] = STR(TLSOFF_NAME_MAX),
	[TLSOFF_FILTER_DATAPATH] = STR(16),
};
const struct nla_policy ctl_counter_policy[TLSOFF_COUNTER_MAX + 1] = {
	[TLSOFF_COUNTER_NAME] = STR(64), [TLSOFF_COUNTER_VALUE] = U64, [TLSOFF_COUNTER_KERNEL] = FLAG,
};
const struct nla_policy ctl_status_policy[TLSOFF_STATUS_MAX + 1] = {
	[TLSOFF_STATUS_VERSION] = STR(32), [TLSOFF_STATUS_PID] = U32, [TLSOFF_STATUS_UPTIME_S] = U64,
	[TLSOFF_STATUS_WORKERS] = U32, [TLSOFF_STATUS_GENERATION] = U32, [TLSOFF_STATUS_CONNS] = U32,
	[TLSOFF_STATUS_KERNEL] = STR(65), [TLSOFF_STATUS_TLS_ULP] = U8, [TLSOFF_STATUS_TLS_ULP_WHY] = STR(256),
	[TLSOFF_STATUS_CIPHER] = NEST, [TLSOFF_STATUS_REKEY] = U8, [TLSOFF_STATUS_SOCKMAP] = U8,
	[TLSOFF_STATUS_CONFIG_PATH] = STR(TLSOFF_PATH_MAX), [TLSOFF_STATUS_STEERING] = STR(96),
	[TLSOFF_STATUS_SOCKMAP_WHY] = STR(512), [TLSOFF_STATUS_SOCKMAP_CUT] = U8,
};
const struct nla_policy ctl_cipher_policy[TLSOFF_CIPHER_MAX + 1] = {
	[TLSOFF_CIPHER_NAME] = STR(32), [TLSOFF_CIPHER_TLS] = STR(8), [TLSOFF_CIPHER_TX] = U8,
	[TLSOFF_CIPHER_RX] = U8,
};
const struct nla_policy ctl_link_policy[TLSOFF_LINK_MAX + 1] = {
	[TLSOFF_LINK_NAME] = STR(16), [TLSOFF_LINK_IFINDEX] = U32, [TLSOFF_LINK_UP] = U8, [TLSOFF_LINK_FEATURE] = NEST,
};
const struct nla_policy ctl_feat_policy[TLSOFF_FEAT_MAX + 1] = {
	[TLSOFF_FEAT_NAME] = STR(32), [TLSOFF_FEAT_HW] = U8, [TLSOFF_FEAT_WANTED] = U8, [TLSOFF_FEAT_ACTIVE] = U8,
	[TLSOFF_FEAT_FIXED] = U8,
};

static const char *const cmd_names[] = {
	[TLSOFF_CMD_FRONTEND_ADD - NLMSG_MIN_TYPE] = "frontend add",
	[TLSOFF_CMD_FRONTEND_DEL - NLMSG_MIN_TYPE] = "frontend del",
	[TLSOFF_CMD_FRONTEND_GET - NLMSG_MIN_TYPE] = "frontend show",
	[TLSOFF_CMD_BACKEND_ADD - NLMSG_MIN_TYPE] = "backend add",
	[TLSOFF_CMD_BACKEND_DEL - NLMSG_MIN_TYPE] = "backend del",
	[TLSOFF_CMD_BACKEND_GET - NLMSG_MIN_TYPE] = "backend show",
	[TLSOFF_CMD_SERVER_ADD - NLMSG_MIN_TYPE] = "server add",
	[TLSOFF_CMD_SERVER_DEL - NLMSG_MIN_TYPE] = "server del",
	[TLSOFF_CMD_SERVER_DRAIN - NLMSG_MIN_TYPE] = "server drain",
	[TLSOFF_CMD_SERVER_ENABLE - NLMSG_MIN_TYPE] = "server enable",
	[TLSOFF_CMD_CERT_ADD - NLMSG_MIN_TYPE] = "cert add",
	[TLSOFF_CMD_CERT_REPLACE - NLMSG_MIN_TYPE] = "cert replace",
	[TLSOFF_CMD_CERT_DEL - NLMSG_MIN_TYPE] = "cert del",
	[TLSOFF_CMD_CERT_GET - NLMSG_MIN_TYPE] = "cert show",
	[TLSOFF_CMD_CONN_GET - NLMSG_MIN_TYPE] = "conn show",
	[TLSOFF_CMD_CONN_KILL - NLMSG_MIN_TYPE] = "conn kill",
	[TLSOFF_CMD_STATS_GET - NLMSG_MIN_TYPE] = "stats",
	[TLSOFF_CMD_STATUS_GET - NLMSG_MIN_TYPE] = "status",
	[TLSOFF_CMD_OFFLOAD_GET - NLMSG_MIN_TYPE] = "offload show",
	[TLSOFF_CMD_OFFLOAD_SET - NLMSG_MIN_TYPE] = "offload set",
	[TLSOFF_CMD_CONFIG_GET - NLMSG_MIN_TYPE] = "config dump",
	[TLSOFF_CMD_TICKETS_SET - NLMSG_MIN_TYPE] = "tickets keys",
	[TLSOFF_CMD_METRICS_SET - NLMSG_MIN_TYPE] = "metrics",
	[TLSOFF_CMD_TAKEOVER - NLMSG_MIN_TYPE] = "takeover",
	[TLSOFF_CMD_TAKEOVER_DONE - NLMSG_MIN_TYPE] = "takeover done",
};

const char *ctl_cmd_name(int type)
{
	if (type <= TLSOFF_CMD_UNSPEC || type >= __TLSOFF_CMD_MAX || !cmd_names[type - NLMSG_MIN_TYPE])
		return "?";
	return cmd_names[type - NLMSG_MIN_TYPE];
}

/* ---- framing ---------------------------------------------------------------------------------------- */

struct nl_msg *ctl_msg_new(int type, int flags, uint32_t seq)
{
	struct nl_msg *m = nlmsg_alloc_size(64 * 1024);
	struct tlsoff_ctlhdr hdr = { .version = TLSOFF_CTL_VERSION };
	if (!m)
		return NULL;
	if (!nlmsg_put(m, NL_AUTO_PORT, seq, type, 0, flags) || nlmsg_append(m, &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

int ctl_msg_send(int fd, struct nl_msg *m)
{
	const char *p = (const char *)nlmsg_hdr(m);
	size_t left = nlmsg_hdr(m)->nlmsg_len;
	while (left) {
		ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_msg_recv(int fd, struct nlmsghdr **out, char *err, size_t errlen)
{
	struct nlmsghdr h;
	int rc = read_full(fd, &h, sizeof(h));
	if (rc < 0)
		return rc;
	if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > TLSOFF_CTL_MSG_MAX) {
		snprintf(err, errlen, "bad message length %u", h.nlmsg_len);
		return -EPROTO;
	}
	struct nlmsghdr *m = malloc(NLMSG_ALIGN(h.nlmsg_len));
	if (!m)
		return -ENOMEM;
	memcpy(m, &h, sizeof(h));
	/* the stream carries aligned messages: consume the padding too */
	if ((rc = read_full(fd, (char *)m + sizeof(h), NLMSG_ALIGN(h.nlmsg_len) - sizeof(h))) < 0) {
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int ctl_msg_check(const struct nlmsghdr *h, char *err, size_t errlen)
{
	if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > TLSOFF_CTL_MSG_MAX) {
		snprintf(err, errlen, "bad message length %u", h->nlmsg_len);
		return -EPROTO;
	}
	if (h->nlmsg_type < NLMSG_MIN_TYPE)   /* NLMSG_ERROR / NLMSG_DONE: no header of ours */
		return 0;
	if (h->nlmsg_len < NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct tlsoff_ctlhdr))) {
		snprintf(err, errlen, "message type %u too short for the tlsoff header", h->nlmsg_type);
		return -EPROTO;
	}
	const struct tlsoff_ctlhdr *th = nlmsg_data(h);
	if (th->version != TLSOFF_CTL_VERSION) {
		snprintf(err, errlen, "control protocol version %u is not supported (this side speaks %u)",
			 th->version, TLSOFF_CTL_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

/* ---- strict attributes --------------------------------------------------------------------------- */

static const char *type_text(int t)
{
	switch (t) {
	case NLA_U8: return "u8";
	case NLA_U16: return "u16";
	case NLA_U32: return "u32";
	case NLA_U64: return "u64";
	case NLA_FLAG: return "flag";
	case NLA_STRING: return "string";
	case NLA_NESTED: return "nest";
	default: return "?";
	}
}

bool ctl_parse_lenient;

int ctl_parse(struct nlattr **tb, int max, struct nlattr *head, int len, const struct nla_policy *policy,
	      const char *what, char *err, size_t errlen)
{
	struct nlattr *a;
	int rem;
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	nla_for_each_attr(a, head, len, rem) {
		int t = nla_type(a), l = nla_len(a);
		const struct nla_policy *p = t >= 1 && t <= max ? &policy[t] : NULL;
		if ((!p || p->type == NLA_UNSPEC) && ctl_parse_lenient)
			continue;
		if (!p || p->type == NLA_UNSPEC) {
			snprintf(err, errlen, "%s: unknown attribute %d (control protocol version %d)", what, t,
				 TLSOFF_CTL_VERSION);
			return -EINVAL;
		}
		bool ok;
		switch (p->type) {
		case NLA_U8: ok = l == 1; break;
		case NLA_U16: ok = l == 2; break;
		case NLA_U32: ok = l == 4; break;
		case NLA_U64: ok = l == 8; break;
		case NLA_FLAG: ok = l == 0; break;
		case NLA_STRING: {
			const char *s = nla_data(a);
			ok = l >= 1 && s[l - 1] == '\0' && strlen(s) == (size_t)l - 1 && (!p->maxlen || l <= p->maxlen);
			break;
		}
		case NLA_NESTED: ok = l == 0 || l >= NLA_HDRLEN; break;
		default: ok = false;
		}
		if (!ok) {
			snprintf(err, errlen, "%s: attribute %d: bad %s (payload of %d bytes)", what, t, type_text(p->type), l);
			return -EINVAL;
		}
		tb[t] = a;
	}
	if (rem) {
		snprintf(err, errlen, "%s: %d trailing bytes are not an attribute", what, rem);
		return -EINVAL;
	}
	return 0;
}

int ctl_parse_msg(const struct nlmsghdr *h, struct nlattr **tb, char *err, size_t errlen)
{
	return ctl_parse(tb, TLSOFF_A_MAX, nlmsg_attrdata(h, sizeof(struct tlsoff_ctlhdr)),
			 nlmsg_attrlen(h, sizeof(struct tlsoff_ctlhdr)), ctl_policy, ctl_cmd_name(h->nlmsg_type), err,
			 errlen);
}

int ctl_parse_nested(struct nlattr **tb, int max, const struct nlattr *nest, const struct nla_policy *policy,
		     const char *what, char *err, size_t errlen)
{
	return ctl_parse(tb, max, nla_data(nest), nla_len(nest), policy, what, err, errlen);
}

/* ---- objects ------------------------------------------------------------------------------------------ */

int ctl_put_frontend(struct nl_msg *m, const struct frontend_conf *f, int conns)
{
	char alpn[TLSOFF_ALPN_MAX * 2];
	struct nlattr *fe = nla_nest_start(m, TLSOFF_A_FRONTEND);
	if (!fe || nla_put_string(m, TLSOFF_FE_NAME, f->name) < 0 || nla_put_string(m, TLSOFF_FE_LISTEN, f->listen.text) < 0 ||
	    (f->backend[0] && nla_put_string(m, TLSOFF_FE_BACKEND, f->backend) < 0) ||
	    nla_put_u32(m, TLSOFF_FE_MODE, f->mode) < 0)
		return -1;
	for (unsigned i = 0; i < f->nroutes; i++) {
		struct nlattr *r = nla_nest_start(m, TLSOFF_FE_ROUTE);
		if (!r || nla_put_string(m, TLSOFF_ROUTE_SNI, f->routes[i].pattern) < 0 ||
		    nla_put_string(m, TLSOFF_ROUTE_BACKEND, f->routes[i].backend) < 0)
			return -1;
		nla_nest_end(m, r);
	}
	for (unsigned i = 0; i < f->ncerts; i++) {
		struct nlattr *c = nla_nest_start(m, TLSOFF_FE_CERT);
		if (!c || nla_put_string(m, TLSOFF_CERT_CHAIN, f->certs[i].chain) < 0 ||
		    nla_put_string(m, TLSOFF_CERT_KEY, f->certs[i].key) < 0 ||
		    (f->certs[i].ocsp[0] && nla_put_string(m, TLSOFF_CERT_OCSP, f->certs[i].ocsp) < 0))
			return -1;
		nla_nest_end(m, c);
	}
	tlsoff_alpn_format(f->alpn, f->alpn_len, alpn, sizeof(alpn));
	bool tls = f->mode == MODE_TLS;   /* TLS options exist only where TLS ends here */
	if ((tls && f->alpn_len && nla_put_string(m, TLSOFF_FE_ALPN, alpn) < 0) ||
	    (tls && nla_put_string(m, TLSOFF_FE_TLS_MIN, tlsoff_tls_min_name(f->tls_min)) < 0) ||
	    (tls && nla_put_u32(m, TLSOFF_FE_DATAPATH, f->datapath) < 0) ||
	    (tls && nla_put_u32(m, TLSOFF_FE_NIC_OFFLOAD, (uint32_t)f->nic_offload) < 0) ||
	    (f->mode != MODE_PLAIN && nla_put_u32(m, TLSOFF_FE_HANDSHAKE_TIMEOUT, f->handshake_timeout_ms) < 0) ||
	    nla_put_u32(m, TLSOFF_FE_IDLE_TIMEOUT, f->idle_timeout_ms) < 0 ||
	    nla_put_u32(m, TLSOFF_FE_MAX_CONNS, f->max_conns) < 0 ||
	    (conns >= 0 && nla_put_u32(m, TLSOFF_FE_CONNS, (uint32_t)conns) < 0))
		return -1;
	if (tls && f->client_ca[0] && (nla_put_string(m, TLSOFF_FE_CLIENT_CA, f->client_ca) < 0 ||
				       nla_put_u32(m, TLSOFF_FE_CLIENT_VERIFY, (uint32_t)f->client_verify) < 0))
		return -1;
	nla_nest_end(m, fe);
	return 0;
}

int ctl_put_backend(struct nl_msg *m, const struct backend_conf *b, const unsigned *active)
{
	struct nlattr *be = nla_nest_start(m, TLSOFF_A_BACKEND);
	if (!be || nla_put_string(m, TLSOFF_BE_NAME, b->name) < 0)
		return -1;
	for (unsigned i = 0; i < b->nservers; i++) {
		struct nlattr *s = nla_nest_start(m, TLSOFF_BE_SERVER);
		if (!s || nla_put_string(m, TLSOFF_SRV_ADDR, b->servers[i].text) < 0 ||
		    ((b->drained & (1ull << i)) && nla_put_flag(m, TLSOFF_SRV_DRAINED) < 0) ||
		    (active && nla_put_u32(m, TLSOFF_SRV_ACTIVE, active[i]) < 0))
			return -1;
		nla_nest_end(m, s);
	}
	if (nla_put_u32(m, TLSOFF_BE_BALANCE, b->balance) < 0 ||
	    nla_put_u32(m, TLSOFF_BE_PROXY_PROTOCOL, b->proxy_protocol) < 0 ||
	    nla_put_u32(m, TLSOFF_BE_CONNECT_TIMEOUT, b->connect_timeout_ms) < 0)
		return -1;
	if (b->tls && (nla_put_flag(m, TLSOFF_BE_TLS) < 0 || nla_put_u32(m, TLSOFF_BE_TLS_VERIFY, (uint32_t)b->tls_verify) < 0 ||
		       (b->tls_ca[0] && nla_put_string(m, TLSOFF_BE_TLS_CA, b->tls_ca) < 0) ||
		       (b->tls_sni[0] && nla_put_string(m, TLSOFF_BE_TLS_SNI, b->tls_sni) < 0) ||
		       (b->tls_cert[0] && nla_put_string(m, TLSOFF_BE_TLS_CERT, b->tls_cert) < 0) ||
		       (b->tls_key[0] && nla_put_string(m, TLSOFF_BE_TLS_KEY, b->tls_key) < 0)))
		return -1;
	nla_nest_end(m, be);
	return 0;
}

/* Words of a command being rebuilt from attributes; numbers are printed into `store`. */
struct words {
	char *v[8 + 4 * TLSOFF_MAX_SERVERS + 6 * TLSOFF_MAX_CERTS + 2 * TLSOFF_MAX_ROUTES + 32];
	int n;
	char store[16][24];
	int nstore;
	char routes[TLSOFF_MAX_ROUTES][TLSOFF_SNI_MAX + TLSOFF_NAME_MAX + 2];
	int nroutes;
};

static void word(struct words *w, const char *s)
{
	if (w->n < (int)(sizeof(w->v) / sizeof(w->v[0])))
		w->v[w->n++] = (char *)s;
}

/* "kw value" when the string attribute a is there */
static void word_str(struct words *w, const char *kw, const struct nlattr *a)
{
	if (!a)
		return;
	word(w, kw);
	word(w, nla_get_string((struct nlattr *)a));
}

static void word_u32(struct words *w, const char *kw, const struct nlattr *a, bool zero_means_absent)
{
	if (!a || w->nstore == 16 || (zero_means_absent && !nla_get_u32(a)))
		return;
	snprintf(w->store[w->nstore], sizeof(w->store[0]), "%u", nla_get_u32(a));
	word(w, kw);
	word(w, w->store[w->nstore++]);
}

static int parse_words(struct words *w, struct cmd *c, char *err, size_t errlen)
{
	if (w->n == (int)(sizeof(w->v) / sizeof(w->v[0]))) {
		snprintf(err, errlen, "too many attributes");
		return -EINVAL;
	}
	return cmd_parse(w->n, w->v, c, err, errlen) < 0 ? -EINVAL : 0;
}

static int frontend_cmd(const struct nlattr *nest, struct cmd *c, char *err, size_t errlen)
{
	struct nlattr *tb[TLSOFF_FE_MAX + 1], *a;
	struct words w = { .n = 0 };
	int rem, rc;
	if ((rc = ctl_parse_nested(tb, TLSOFF_FE_MAX, nest, ctl_fe_policy, "frontend", err, errlen)) < 0)
		return rc;
	if (!tb[TLSOFF_FE_NAME]) {
		snprintf(err, errlen, "frontend: no name");
		return -EINVAL;
	}
	word(&w, "frontend");
	word(&w, "add");
	word(&w, nla_get_string(tb[TLSOFF_FE_NAME]));
	word_str(&w, "listen", tb[TLSOFF_FE_LISTEN]);
	unsigned mode = tb[TLSOFF_FE_MODE] ? nla_get_u32(tb[TLSOFF_FE_MODE]) : MODE_TLS;
	if (mode != MODE_TLS)
		word(&w, tlsoff_mode_name((int)mode));   /* "?" for an unknown mode: cmd_parse names it */
	nla_for_each_nested(a, nest, rem) {
		struct nlattr *rt[TLSOFF_ROUTE_MAX + 1];
		if (nla_type(a) != TLSOFF_FE_ROUTE || w.nroutes == TLSOFF_MAX_ROUTES)
			continue;
		if ((rc = ctl_parse_nested(rt, TLSOFF_ROUTE_MAX, a, ctl_route_policy, "frontend route", err, errlen)) < 0)
			return rc;
		if (!rt[TLSOFF_ROUTE_SNI] || !rt[TLSOFF_ROUTE_BACKEND]) {
			snprintf(err, errlen, "frontend route: needs both the SNI pattern and the backend");
			return -EINVAL;
		}
		snprintf(w.routes[w.nroutes], sizeof(w.routes[0]), "%s=%s", nla_get_string(rt[TLSOFF_ROUTE_SNI]),
			 nla_get_string(rt[TLSOFF_ROUTE_BACKEND]));
		word(&w, "sni");
		word(&w, w.routes[w.nroutes++]);
	}
	nla_for_each_nested(a, nest, rem) {
		struct nlattr *ct[TLSOFF_CERT_MAX + 1];
		if (nla_type(a) != TLSOFF_FE_CERT)
			continue;
		if ((rc = ctl_parse_nested(ct, TLSOFF_CERT_MAX, a, ctl_cert_policy, "frontend cert", err, errlen)) < 0)
			return rc;
		word_str(&w, "cert", ct[TLSOFF_CERT_CHAIN]);
		word_str(&w, "key", ct[TLSOFF_CERT_KEY]);
		word_str(&w, "ocsp", ct[TLSOFF_CERT_OCSP]);
	}
	word_str(&w, mode == MODE_PASSTHROUGH ? "default" : "backend", tb[TLSOFF_FE_BACKEND]);
	word_str(&w, "alpn", tb[TLSOFF_FE_ALPN]);
	word_str(&w, "tls-min", tb[TLSOFF_FE_TLS_MIN]);
	if (tb[TLSOFF_FE_DATAPATH]) {
		word(&w, "datapath");
		word(&w, tlsoff_datapath_name((int)nla_get_u32(tb[TLSOFF_FE_DATAPATH])));
	}
	word_u32(&w, "handshake-timeout", tb[TLSOFF_FE_HANDSHAKE_TIMEOUT], false);
	word_u32(&w, "idle-timeout", tb[TLSOFF_FE_IDLE_TIMEOUT], false);
	word_u32(&w, "max-conns", tb[TLSOFF_FE_MAX_CONNS], true);
	word_str(&w, "client-ca", tb[TLSOFF_FE_CLIENT_CA]);
	if (tb[TLSOFF_FE_CLIENT_VERIFY]) {   /* "?" for a value the grammar does not have: cmd_parse names it */
		word(&w, "client-verify");
		word(&w, tlsoff_client_verify_name((int)nla_get_u32(tb[TLSOFF_FE_CLIENT_VERIFY])));
	}
	if (tb[TLSOFF_FE_NIC_OFFLOAD]) {
		word(&w, "nic-offload");
		word(&w, tlsoff_nic_offload_name((int)nla_get_u32(tb[TLSOFF_FE_NIC_OFFLOAD])));   /* "?" is refused */
	}
	return parse_words(&w, c, err, errlen);
}

static int backend_cmd(const struct nlattr *nest, struct cmd *c, uint64_t *drained, char *err, size_t errlen)
{
	struct nlattr *tb[TLSOFF_BE_MAX + 1], *a;
	struct words w = { .n = 0 };
	int rem, rc;
	unsigned idx = 0;
	if ((rc = ctl_parse_nested(tb, TLSOFF_BE_MAX, nest, ctl_be_policy, "backend", err, errlen)) < 0)
		return rc;
	if (!tb[TLSOFF_BE_NAME]) {
		snprintf(err, errlen, "backend: no name");
		return -EINVAL;
	}
	word(&w, "backend");
	word(&w, "add");
	word(&w, nla_get_string(tb[TLSOFF_BE_NAME]));
	*drained = 0;
	nla_for_each_nested(a, nest, rem) {
		struct nlattr *st[TLSOFF_SRV_MAX + 1];
		if (nla_type(a) != TLSOFF_BE_SERVER)
			continue;
		if ((rc = ctl_parse_nested(st, TLSOFF_SRV_MAX, a, ctl_srv_policy, "backend server", err, errlen)) < 0)
			return rc;
		if (!st[TLSOFF_SRV_ADDR]) {
			snprintf(err, errlen, "backend server: no address");
			return -EINVAL;
		}
		if (st[TLSOFF_SRV_DRAINED] && idx < 64)
			*drained |= 1ull << idx;
		idx++;
		word(&w, "server");
		word(&w, nla_get_string(st[TLSOFF_SRV_ADDR]));
	}
	if (tb[TLSOFF_BE_BALANCE]) {
		word(&w, "balance");
		word(&w, tlsoff_balance_name((int)nla_get_u32(tb[TLSOFF_BE_BALANCE])));
	}
	if (tb[TLSOFF_BE_PROXY_PROTOCOL] && nla_get_u32(tb[TLSOFF_BE_PROXY_PROTOCOL])) {
		word(&w, "proxy-protocol");
		word(&w, nla_get_u32(tb[TLSOFF_BE_PROXY_PROTOCOL]) == 2 ? "v2" : "?");
	}
	word_u32(&w, "connect-timeout", tb[TLSOFF_BE_CONNECT_TIMEOUT], false);
	if (tb[TLSOFF_BE_TLS]) {
		word(&w, "tls");
		word_str(&w, "ca", tb[TLSOFF_BE_TLS_CA]);
		if (tb[TLSOFF_BE_TLS_VERIFY]) {
			word(&w, "verify");
			word(&w, nla_get_u32(tb[TLSOFF_BE_TLS_VERIFY]) ? "on" : "off");
		}
		word_str(&w, "sni", tb[TLSOFF_BE_TLS_SNI]);
		word_str(&w, "cert", tb[TLSOFF_BE_TLS_CERT]);
		word_str(&w, "key", tb[TLSOFF_BE_TLS_KEY]);
	}
	return parse_words(&w, c, err, errlen);
}

int ctl_get_frontend(const struct nlattr *nest, struct frontend_conf *f, char *err, size_t errlen)
{
	struct cmd *c = malloc(sizeof(*c));
	int rc = c ? frontend_cmd(nest, c, err, errlen) : -ENOMEM;
	if (rc == 0)
		*f = c->u.frontend;
	free(c);
	return rc;
}

int ctl_get_backend(const struct nlattr *nest, struct backend_conf *b, char *err, size_t errlen)
{
	struct cmd *c = malloc(sizeof(*c));
	uint64_t drained = 0;
	int rc = c ? backend_cmd(nest, c, &drained, err, errlen) : -ENOMEM;
	if (rc == 0) {
		*b = c->u.backend;
		b->drained = drained;
	}
	free(c);
	return rc;
}

/* ---- commands ---------------------------------------------------------------------------------------- */

static const struct { enum cmd_object object; enum cmd_verb verb; int type; } cmd_types[] = {
	{ CMD_FRONTEND, CMD_ADD, TLSOFF_CMD_FRONTEND_ADD }, { CMD_FRONTEND, CMD_DEL, TLSOFF_CMD_FRONTEND_DEL },
	{ CMD_BACKEND, CMD_ADD, TLSOFF_CMD_BACKEND_ADD },   { CMD_BACKEND, CMD_DEL, TLSOFF_CMD_BACKEND_DEL },
	{ CMD_SERVER, CMD_ADD, TLSOFF_CMD_SERVER_ADD },     { CMD_SERVER, CMD_DEL, TLSOFF_CMD_SERVER_DEL },
	{ CMD_SERVER, CMD_DRAIN, TLSOFF_CMD_SERVER_DRAIN }, { CMD_SERVER, CMD_ENABLE, TLSOFF_CMD_SERVER_ENABLE },
	{ CMD_CERT, CMD_ADD, TLSOFF_CMD_CERT_ADD },         { CMD_CERT, CMD_REPLACE, TLSOFF_CMD_CERT_REPLACE },
	{ CMD_CERT, CMD_DEL, TLSOFF_CMD_CERT_DEL },         { CMD_TICKETS, CMD_SET, TLSOFF_CMD_TICKETS_SET },
	{ CMD_METRICS, CMD_SET, TLSOFF_CMD_METRICS_SET },
};

struct nl_msg *ctl_cmd_encode(const struct cmd *c, uint32_t seq)
{
	int type = 0;
	for (size_t i = 0; i < sizeof(cmd_types) / sizeof(cmd_types[0]); i++)
		if (cmd_types[i].object == c->object && cmd_types[i].verb == c->verb)
			type = cmd_types[i].type;
	struct nl_msg *m = type ? ctl_msg_new(type, NLM_F_REQUEST | NLM_F_ACK, seq) : NULL;
	if (!m)
		return NULL;
	int rc = 0;
	switch (type) {
	case TLSOFF_CMD_FRONTEND_ADD: rc = ctl_put_frontend(m, &c->u.frontend, -1); break;
	case TLSOFF_CMD_BACKEND_ADD: rc = ctl_put_backend(m, &c->u.backend, NULL); break;
	case TLSOFF_CMD_FRONTEND_DEL:
	case TLSOFF_CMD_BACKEND_DEL: rc = nla_put_string(m, TLSOFF_A_NAME, c->u.name); break;
	case TLSOFF_CMD_TICKETS_SET: rc = nla_put_string(m, TLSOFF_A_NAME, c->u.tickets.keys); break;
	case TLSOFF_CMD_METRICS_SET: rc = nla_put_string(m, TLSOFF_A_NAME, c->u.metrics.text); break;
	case TLSOFF_CMD_SERVER_ADD:
	case TLSOFF_CMD_SERVER_DEL:
	case TLSOFF_CMD_SERVER_DRAIN:
	case TLSOFF_CMD_SERVER_ENABLE:
		rc = nla_put_string(m, TLSOFF_A_NAME, c->u.server.backend) |
		     nla_put_string(m, TLSOFF_A_SERVER, c->u.server.addr.text);
		break;
	default: {   /* cert */
		struct nlattr *n;
		rc = nla_put_string(m, TLSOFF_A_NAME, c->u.cert.frontend);
		if (rc < 0 || !(n = nla_nest_start(m, TLSOFF_A_CERT))) {
			rc = -1;
			break;
		}
		rc = nla_put_string(m, TLSOFF_CERT_CHAIN, c->u.cert.cert.chain) |
		     (c->u.cert.cert.key[0] ? nla_put_string(m, TLSOFF_CERT_KEY, c->u.cert.cert.key) : 0) |
		     (c->u.cert.old[0] ? nla_put_string(m, TLSOFF_CERT_OLD, c->u.cert.old) : 0) |
		     (c->u.cert.cert.ocsp[0] ? nla_put_string(m, TLSOFF_CERT_OCSP, c->u.cert.cert.ocsp) : 0);
		nla_nest_end(m, n);
	}
	}
	if (rc < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

static int need(struct nlattr **tb, int attr, const char *what, const char *cmd, char *err, size_t errlen)
{
	if (tb[attr])
		return 0;
	snprintf(err, errlen, "%s: missing %s", cmd, what);
	return -EINVAL;
}

int ctl_cmd_decode(const struct nlmsghdr *h, struct nlattr **tb, struct cmd *c, char *err, size_t errlen)
{
	const char *name = ctl_cmd_name(h->nlmsg_type);
	struct words w = { .n = 0 };
	uint64_t drained;
	int rc;
	switch (h->nlmsg_type) {
	case TLSOFF_CMD_FRONTEND_ADD:
		return need(tb, TLSOFF_A_FRONTEND, "the frontend", name, err, errlen) ?:
		       frontend_cmd(tb[TLSOFF_A_FRONTEND], c, err, errlen);
	case TLSOFF_CMD_BACKEND_ADD:
		if ((rc = need(tb, TLSOFF_A_BACKEND, "the backend", name, err, errlen)) ||
		    (rc = backend_cmd(tb[TLSOFF_A_BACKEND], c, &drained, err, errlen)))
			return rc;
		c->u.backend.drained = drained;
		return 0;
	case TLSOFF_CMD_FRONTEND_DEL:
	case TLSOFF_CMD_BACKEND_DEL:
		if ((rc = need(tb, TLSOFF_A_NAME, "the name", name, err, errlen)))
			return rc;
		word(&w, h->nlmsg_type == TLSOFF_CMD_FRONTEND_DEL ? "frontend" : "backend");
		word(&w, "del");
		word(&w, nla_get_string(tb[TLSOFF_A_NAME]));
		return parse_words(&w, c, err, errlen);
	case TLSOFF_CMD_SERVER_ADD:
	case TLSOFF_CMD_SERVER_DEL:
	case TLSOFF_CMD_SERVER_DRAIN:
	case TLSOFF_CMD_SERVER_ENABLE:
		if ((rc = need(tb, TLSOFF_A_NAME, "the backend name", name, err, errlen)) ||
		    (rc = need(tb, TLSOFF_A_SERVER, "the server address", name, err, errlen)))
			return rc;
		word(&w, "server");
		word(&w, strchr(name, ' ') + 1);
		word(&w, nla_get_string(tb[TLSOFF_A_NAME]));
		word(&w, nla_get_string(tb[TLSOFF_A_SERVER]));
		return parse_words(&w, c, err, errlen);
	case TLSOFF_CMD_CERT_ADD:
	case TLSOFF_CMD_CERT_REPLACE:
	case TLSOFF_CMD_CERT_DEL: {
		struct nlattr *ct[TLSOFF_CERT_MAX + 1];
		if ((rc = need(tb, TLSOFF_A_NAME, "the frontend name", name, err, errlen)) ||
		    (rc = need(tb, TLSOFF_A_CERT, "the certificate", name, err, errlen)) ||
		    (rc = ctl_parse_nested(ct, TLSOFF_CERT_MAX, tb[TLSOFF_A_CERT], ctl_cert_policy, name, err, errlen)) ||
		    (rc = need(ct, TLSOFF_CERT_CHAIN, "the chain path", name, err, errlen)))
			return rc;
		word(&w, "cert");
		word(&w, strchr(name, ' ') + 1);
		word(&w, nla_get_string(tb[TLSOFF_A_NAME]));
		if (h->nlmsg_type == TLSOFF_CMD_CERT_DEL) {
			word(&w, nla_get_string(ct[TLSOFF_CERT_CHAIN]));
			return parse_words(&w, c, err, errlen);
		}
		word(&w, "cert");
		word(&w, nla_get_string(ct[TLSOFF_CERT_CHAIN]));
		word_str(&w, "key", ct[TLSOFF_CERT_KEY]);
		word_str(&w, "old", ct[TLSOFF_CERT_OLD]);
		word_str(&w, "ocsp", ct[TLSOFF_CERT_OCSP]);
		return parse_words(&w, c, err, errlen);
	}
	}
	if (h->nlmsg_type == TLSOFF_CMD_TICKETS_SET) {
		if ((rc = need(tb, TLSOFF_A_NAME, "the key file", name, err, errlen)))
			return rc;
		word(&w, "tickets");
		word(&w, "keys");
		word(&w, nla_get_string(tb[TLSOFF_A_NAME]));
		return parse_words(&w, c, err, errlen);
	}
	if (h->nlmsg_type == TLSOFF_CMD_METRICS_SET) {
		if ((rc = need(tb, TLSOFF_A_NAME, "the address", name, err, errlen)))
			return rc;
		const char *addr = nla_get_string(tb[TLSOFF_A_NAME]);
		word(&w, "metrics");
		word(&w, addr[0] ? "listen" : "off");
		if (addr[0])
			word(&w, addr);
		return parse_words(&w, c, err, errlen);
	}
	snprintf(err, errlen, "message type %u is not a configuration command", h->nlmsg_type);
	return -EINVAL;
}

/* Bytes from a peer go to the log: anything but printable ASCII shows as '?', so a request cannot forge
 * log lines (the nest of a request whose handler ignores it was never checked against a policy). */
static void put_printable(char *buf, size_t size, const char *s, size_t n)
{
	size_t at = strlen(buf);
	for (size_t i = 0; i < n && s[i] && at + 1 < size; i++)
		buf[at++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[at] = '\0';
}

const char *ctl_msg_subject(struct nlattr **tb)
{
	static __thread char buf[TLSOFF_NAME_MAX + 96];
	struct nlattr *nest = tb[TLSOFF_A_FRONTEND] ? tb[TLSOFF_A_FRONTEND] : tb[TLSOFF_A_BACKEND];
	buf[0] = '\0';
	if (nest) {
		struct nlattr *name = nla_find(nla_data(nest), nla_len(nest), 1);   /* FE_NAME == BE_NAME == 1 */
		if (name && nla_len(name) > 0) {
			put_printable(buf, sizeof(buf), " ", 1);
			put_printable(buf, TLSOFF_NAME_MAX + 1, nla_data(name), (size_t)nla_len(name));
		}
	} else if (tb[TLSOFF_A_NAME]) {
		put_printable(buf, sizeof(buf), " ", 1);
		put_printable(buf, TLSOFF_NAME_MAX + 1, nla_get_string(tb[TLSOFF_A_NAME]), TLSOFF_NAME_MAX);
	}
	if (tb[TLSOFF_A_SERVER]) {
		put_printable(buf, sizeof(buf), " ", 1);
		put_printable(buf, sizeof(buf), nla_get_string(tb[TLSOFF_A_SERVER]), 80);
	}
	if (tb[TLSOFF_A_ID])
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %llu",
			 (unsigned long long)nla_get_u64(tb[TLSOFF_A_ID]));
	return buf;
}

struct nl_msg *ctl_ack_new(const struct nlmsghdr *req, int error, const char *msg)
{
	struct nl_msg *m = nlmsg_alloc_size(NLMSG_HDRLEN + sizeof(struct nlmsgerr) + 1024);
	struct nlmsgerr e = { .error = error, .msg = *req };
	int flags = NLM_F_CAPPED | (msg && *msg ? NLM_F_ACK_TLVS : 0);
	if (!m)
		return NULL;
	e.msg.nlmsg_len = NLMSG_HDRLEN;   /* capped: the request's header only */
	if (!nlmsg_put(m, NL_AUTO_PORT, req->nlmsg_seq, NLMSG_ERROR, 0, flags) ||
	    nlmsg_append(m, &e, sizeof(e), NLMSG_ALIGNTO) < 0 ||
	    (msg && *msg && nla_put_string(m, NLMSGERR_ATTR_MSG, msg) < 0)) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}
