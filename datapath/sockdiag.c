/* sockdiag.c — read one socket's kTLS configuration through NETLINK_SOCK_DIAG (libnl): an inet_diag_req_v2
 * for exactly that socket (addresses + SO_COOKIE), INET_DIAG_INFO requested, and the nested
 * INET_DIAG_ULP_INFO -> INET_ULP_INFO_TLS attributes of the answer parsed with a strict policy. */
#include "tlsoff/sockdiag.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/tls.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

const char *ktls_conf_name(unsigned conf)
{
	switch (conf) {
	case TLS_CONF_SW: return "sw";
	case TLS_CONF_HW: return "hw";
	case TLS_CONF_HW_RECORD: return "hw-record";
	default: return "none";
	}
}

struct nl_sock *sockdiag_open(void)
{
	struct nl_sock *nl = nl_socket_alloc();
	if (!nl) {
		errno = ENOMEM;
		return NULL;
	}
	/* libnl asks for an ACK by default; sock_diag would send one after each answer, and the next query
	 * would read that stale ACK instead of its own answer. */
	nl_socket_disable_auto_ack(nl);
	if (nl_connect(nl, NETLINK_SOCK_DIAG) < 0) {
		nl_socket_free(nl);
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	return nl;
}

void sockdiag_close(struct nl_sock *nl)
{
	if (nl)
		nl_socket_free(nl);
}

struct answer {
	struct ktls_diag *out;
	int found;            /* 1: a TLS ULP was reported */
	void (*cb)(uint64_t cookie, const struct ktls_diag *d, void *arg);   /* dump: called per socket */
	void *arg;
};

static struct nla_policy ulp_policy[INET_ULP_INFO_MAX + 1] = {
	[INET_ULP_INFO_NAME] = { .type = NLA_STRING },
	[INET_ULP_INFO_TLS] = { .type = NLA_NESTED },
};
static struct nla_policy tls_policy[TLS_INFO_MAX + 1] = {
	[TLS_INFO_VERSION] = { .type = NLA_U16 },
	[TLS_INFO_CIPHER] = { .type = NLA_U16 },
	[TLS_INFO_TXCONF] = { .type = NLA_U16 },
	[TLS_INFO_RXCONF] = { .type = NLA_U16 },
	[TLS_INFO_ZC_RO_TX] = { .type = NLA_FLAG },
	[TLS_INFO_RX_NO_PAD] = { .type = NLA_FLAG },
};

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct answer *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *attrs[INET_DIAG_MAX + 1], *ulp[INET_ULP_INFO_MAX + 1], *tls[TLS_INFO_MAX + 1];

	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    nlmsg_parse(h, sizeof(struct inet_diag_msg), attrs, INET_DIAG_MAX, NULL) < 0 ||
	    !attrs[INET_DIAG_ULP_INFO] ||
	    nla_parse_nested(ulp, INET_ULP_INFO_MAX, attrs[INET_DIAG_ULP_INFO], ulp_policy) < 0 ||
	    !ulp[INET_ULP_INFO_TLS] ||
	    nla_parse_nested(tls, TLS_INFO_MAX, ulp[INET_ULP_INFO_TLS], tls_policy) < 0)
		return NL_OK;
	memset(a->out, 0, sizeof(*a->out));
	if (tls[TLS_INFO_VERSION])
		a->out->version = nla_get_u16(tls[TLS_INFO_VERSION]);
	if (tls[TLS_INFO_CIPHER])
		a->out->cipher = nla_get_u16(tls[TLS_INFO_CIPHER]);
	if (tls[TLS_INFO_TXCONF])
		a->out->txconf = nla_get_u16(tls[TLS_INFO_TXCONF]);
	if (tls[TLS_INFO_RXCONF])
		a->out->rxconf = nla_get_u16(tls[TLS_INFO_RXCONF]);
	a->out->zc_ro_tx = tls[TLS_INFO_ZC_RO_TX] != NULL;
	a->out->rx_no_pad = tls[TLS_INFO_RX_NO_PAD] != NULL;
	a->found = 1;
	if (a->cb) {
		const struct inet_diag_msg *m = nlmsg_data(h);
		a->cb((uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32, a->out, a->arg);
	}
	return NL_OK;
}

int sockdiag_ktls_dump(struct nl_sock *nl, void (*cb)(uint64_t cookie, const struct ktls_diag *d, void *arg),
		       void *arg)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	struct ktls_diag d;
	for (size_t i = 0; i < sizeof(families); i++) {
		struct inet_diag_req_v2 req = { .sdiag_family = families[i], .sdiag_protocol = IPPROTO_TCP,
						.idiag_states = ~0u, .idiag_ext = 1 << (INET_DIAG_INFO - 1) };
		struct answer a = { .out = &d, .cb = cb, .arg = arg };
		if (nl_send_simple(nl, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &req, sizeof(req)) < 0)
			return -EIO;
		nl_socket_modify_cb(nl, NL_CB_VALID, NL_CB_CUSTOM, on_msg, &a);
		if (nl_recvmsgs_default(nl) < 0)
			return -EIO;
	}
	return 0;
}

int sockdiag_ktls(struct nl_sock *nl, int fd, struct ktls_diag *out)
{
	struct sockaddr_storage local, peer;
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	uint64_t cookie;
	socklen_t cl = sizeof(cookie);
	struct inet_diag_req_v2 req = { .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u,
					.idiag_ext = 1 << (INET_DIAG_INFO - 1) };

	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 || getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) < 0)
		return -errno;
	req.sdiag_family = (uint8_t)local.ss_family;
	if (local.ss_family == AF_INET) {
		const struct sockaddr_in *l = (const void *)&local, *p = (const void *)&peer;
		req.id.idiag_sport = l->sin_port;
		req.id.idiag_dport = p->sin_port;
		memcpy(req.id.idiag_src, &l->sin_addr, 4);
		memcpy(req.id.idiag_dst, &p->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const void *)&local, *p = (const void *)&peer;
		req.id.idiag_sport = l->sin6_port;
		req.id.idiag_dport = p->sin6_port;
		memcpy(req.id.idiag_src, &l->sin6_addr, 16);
		memcpy(req.id.idiag_dst, &p->sin6_addr, 16);
	}
	req.id.idiag_if = 0;
	req.id.idiag_cookie[0] = (uint32_t)cookie;
	req.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);

	struct answer a = { .out = out };
	int rc = nl_send_simple(nl, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &req, sizeof(req));
	if (rc < 0)
		return -EIO;
	nl_socket_modify_cb(nl, NL_CB_VALID, NL_CB_CUSTOM, on_msg, &a);
	rc = nl_recvmsgs_default(nl);
	if (rc < 0 && !a.found)
		return rc == -NLE_OBJ_NOTFOUND ? -ENOENT : -EIO;
	return a.found ? 0 : -ENOENT;
}
