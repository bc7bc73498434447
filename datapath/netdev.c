/* netdev.c — NIC TLS offload features and link events, read from the kernel's own netlink interfaces.
 *
 * Features come from the ethtool generic netlink family (FEATURES_GET / FEATURES_SET), in the verbose
 * bitset format, so bits are matched by name ("tls-hw-tx-offload") rather than by a bit number that
 * depends on the kernel version. Links (ifindex, name, IFF_UP) and link events come from rtnetlink.
 *
 * The bitsets of a FEATURES_GET reply, as checked on 6.18 (net/ethtool/features.c agrees): HW carries a
 * mask (all features), so it lists every feature and flags the set ones with BIT_VALUE; WANTED, ACTIVE
 * and NOCHANGE carry NOMASK and list only the set bits, without BIT_VALUE. A listed bit is therefore set
 * when its bitset has NOMASK or the bit has VALUE. NOCHANGE is the constant NETIF_F_NEVER_CHANGE (only
 * vlan-challenged there), which is why "fixed" also takes in "not in HW", as `ethtool -k` does. */
#include "tlsoff/netdev.h"

#include <errno.h>
#include <sys/time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/ethtool_netlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/route/link.h>

#include "tlsoff/log.h"

/* ethtool also accepts a device's alternative names, which may be up to ALTIFNAMSIZ - 1 bytes. */
#define DEV_NAME_MAX 127

const char *const netdev_tls_feature_names[NETDEV_TLS_FEATURES] = {
	"tls-hw-tx-offload", "tls-hw-rx-offload", "tls-hw-record",
};

/* The four bitsets of a features reply and the flag each one sets; the labels name the flags in logs. */
static const struct {
	int attr;
	size_t offset;
	const char *label;
} bitsets[] = {
	{ ETHTOOL_A_FEATURES_HW, offsetof(struct netdev_feature, hw), "hw" },
	{ ETHTOOL_A_FEATURES_WANTED, offsetof(struct netdev_feature, wanted), "wanted" },
	{ ETHTOOL_A_FEATURES_ACTIVE, offsetof(struct netdev_feature, active), "active" },
	{ ETHTOOL_A_FEATURES_NOCHANGE, offsetof(struct netdev_feature, fixed), "fixed" },
};
#define NBITSETS (sizeof(bitsets) / sizeof(bitsets[0]))

static bool *flag(struct netdev_feature *f, size_t k)
{
	return (bool *)((char *)f + bitsets[k].offset);
}

static bool flag_of(const struct netdev_feature *f, size_t k)
{
	return *(const bool *)((const char *)f + bitsets[k].offset);
}

/* A full feature name, or (short_ok) the full name without its "-offload" suffix. */
static int feature_index(const char *name, bool short_ok)
{
	size_t len = strlen(name);
	for (int i = 0; i < NETDEV_TLS_FEATURES; i++) {
		const char *full = netdev_tls_feature_names[i];
		if (!strcmp(name, full) || (short_ok && !strncmp(full, name, len) && !strcmp(full + len, "-offload")))
			return i;
	}
	return -1;
}

static bool bad_name(const char *dev, char *err, size_t errlen)
{
	if (!dev || !*dev)
		snprintf(err, errlen, "no device name given");
	else if (strlen(dev) > DEV_NAME_MAX)
		snprintf(err, errlen, "no such device: %.32s... (name too long)", dev);
	else
		return false;
	return true;
}

/* --- ethtool generic netlink ---------------------------------------------------------------------- */

static const struct nla_policy features_policy[ETHTOOL_A_FEATURES_MAX + 1] = {
	[ETHTOOL_A_FEATURES_HEADER] = { .type = NLA_NESTED },
	[ETHTOOL_A_FEATURES_HW] = { .type = NLA_NESTED },
	[ETHTOOL_A_FEATURES_WANTED] = { .type = NLA_NESTED },
	[ETHTOOL_A_FEATURES_ACTIVE] = { .type = NLA_NESTED },
	[ETHTOOL_A_FEATURES_NOCHANGE] = { .type = NLA_NESTED },
};
static const struct nla_policy header_policy[ETHTOOL_A_HEADER_MAX + 1] = {
	[ETHTOOL_A_HEADER_DEV_INDEX] = { .type = NLA_U32 },
	[ETHTOOL_A_HEADER_DEV_NAME] = { .type = NLA_STRING, .maxlen = IFNAMSIZ },
	[ETHTOOL_A_HEADER_FLAGS] = { .type = NLA_U32 },
};
static const struct nla_policy bitset_policy[ETHTOOL_A_BITSET_MAX + 1] = {
	[ETHTOOL_A_BITSET_NOMASK] = { .type = NLA_FLAG },
	[ETHTOOL_A_BITSET_SIZE] = { .type = NLA_U32 },
	[ETHTOOL_A_BITSET_BITS] = { .type = NLA_NESTED },
};
static const struct nla_policy bits_policy[ETHTOOL_A_BITSET_BITS_MAX + 1] = {
	[ETHTOOL_A_BITSET_BITS_BIT] = { .type = NLA_NESTED },
};
static const struct nla_policy bit_policy[ETHTOOL_A_BITSET_BIT_MAX + 1] = {
	[ETHTOOL_A_BITSET_BIT_INDEX] = { .type = NLA_U32 },
	[ETHTOOL_A_BITSET_BIT_NAME] = { .type = NLA_STRING },
	[ETHTOOL_A_BITSET_BIT_VALUE] = { .type = NLA_FLAG },
};
static const struct nla_policy extack_policy[NLMSGERR_ATTR_MAX + 1] = {
	[NLMSGERR_ATTR_MSG] = { .type = NLA_STRING },
};

/* One verbose bitset: set flag k of every TLS feature it reports as set. */
static int parse_bitset(struct nlattr *set, size_t k, struct netdev_info *info)
{
	struct nlattr *tb[ETHTOOL_A_BITSET_MAX + 1], *bit;
	int rem;

	/* No BITS would be a compact bitset, which is only sent when asked for (ETHTOOL_FLAG_COMPACT_BITSETS). */
	if (nla_parse_nested(tb, ETHTOOL_A_BITSET_MAX, set, bitset_policy) < 0 || !tb[ETHTOOL_A_BITSET_BITS] ||
	    nla_validate(nla_data(tb[ETHTOOL_A_BITSET_BITS]), nla_len(tb[ETHTOOL_A_BITSET_BITS]),
			 ETHTOOL_A_BITSET_BITS_MAX, bits_policy) < 0)
		return -1;
	bool nomask = tb[ETHTOOL_A_BITSET_NOMASK] != NULL;
	nla_for_each_nested(bit, tb[ETHTOOL_A_BITSET_BITS], rem) {
		struct nlattr *b[ETHTOOL_A_BITSET_BIT_MAX + 1];
		if (nla_type(bit) != ETHTOOL_A_BITSET_BITS_BIT)
			continue;
		if (nla_parse_nested(b, ETHTOOL_A_BITSET_BIT_MAX, bit, bit_policy) < 0)
			return -1;
		int i = b[ETHTOOL_A_BITSET_BIT_NAME] ? feature_index(nla_get_string(b[ETHTOOL_A_BITSET_BIT_NAME]), false) : -1;
		if (i >= 0)
			*flag(&info->tls[i], k) = nomask || b[ETHTOOL_A_BITSET_BIT_VALUE];
	}
	return 0;
}

static int parse_features(struct nl_msg *msg, struct netdev_info *info)
{
	struct nlattr *tb[ETHTOOL_A_FEATURES_MAX + 1], *hdr[ETHTOOL_A_HEADER_MAX + 1];

	memset(info, 0, sizeof(*info));
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, ETHTOOL_A_FEATURES_MAX, features_policy) < 0 ||
	    !tb[ETHTOOL_A_FEATURES_HEADER] ||
	    nla_parse_nested(hdr, ETHTOOL_A_HEADER_MAX, tb[ETHTOOL_A_FEATURES_HEADER], header_policy) < 0 ||
	    !hdr[ETHTOOL_A_HEADER_DEV_INDEX] || !hdr[ETHTOOL_A_HEADER_DEV_NAME])
		return -1;
	info->ifindex = nla_get_u32(hdr[ETHTOOL_A_HEADER_DEV_INDEX]);
	nla_strlcpy(info->name, hdr[ETHTOOL_A_HEADER_DEV_NAME], sizeof(info->name));
	for (size_t k = 0; k < NBITSETS; k++)
		if (!tb[bitsets[k].attr] || parse_bitset(tb[bitsets[k].attr], k, info) < 0)
			return -1;
	for (int i = 0; i < NETDEV_TLS_FEATURES; i++)
		info->tls[i].fixed |= !info->tls[i].hw;
	return 0;
}

/* What one request got back: the features replies, and the kernel's error or our own. */
struct reply {
	struct netdev_info *v;
	size_t n, cap;
	bool done;             /* ACK, end of dump or error seen */
	bool bad;              /* a malformed reply, or no memory to keep it */
	int error;             /* errno the kernel answered, 0 if none */
	int nlerr;             /* libnl error (send/receive failed), 0 if none */
	char extack[160];      /* the kernel's own explanation of error, if it gave one */
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);

	/* Only GET replies matter: the outcome of a SET is read back with a GET. */
	if (!genlmsg_valid_hdr(h, 0) || genlmsg_hdr(h)->cmd != ETHTOOL_MSG_FEATURES_GET_REPLY)
		return NL_OK;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct netdev_info *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->bad = true;
			return NL_OK;
		}
		r->v = v;
		r->cap = cap;
	}
	if (parse_features(msg, &r->v[r->n]) < 0)
		r->bad = true;
	else
		r->n++;
	return NL_OK;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	(void)msg;
	((struct reply *)arg)->done = true;
	return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);

	/* A dump that fails part way says so in NLMSG_DONE's payload rather than in an NLMSG_ERROR. */
	if (nlmsg_datalen(h) >= (int)sizeof(int) && *(const int *)nlmsg_data(h) < 0)
		r->error = -*(const int *)nlmsg_data(h);
	r->done = true;
	return NL_STOP;
}

static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct reply *r = arg;
	struct nlmsghdr *h = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	(void)who;

	r->error = -e->error;
	r->done = true;
	/* Extended ACK attributes follow the echoed request (only its header, with NETLINK_CAP_ACK). */
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = NLMSG_ALIGN(sizeof(*e) + ((h->nlmsg_flags & NLM_F_CAPPED) ? 0 : e->msg.nlmsg_len - NLMSG_HDRLEN));
		struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
		if (NLMSG_HDRLEN + off < h->nlmsg_len &&
		    nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off),
			      (int)(h->nlmsg_len - NLMSG_HDRLEN - off), extack_policy) == 0 && tb[NLMSGERR_ATTR_MSG])
			nla_strlcpy(r->extack, tb[NLMSGERR_ATTR_MSG], sizeof(r->extack));
	}
	return NL_STOP;
}

/* Send one request and read until its ACK, the end of its dump or an error. */
static int ethtool_call(struct nl_sock *sk, struct nl_msg *msg, struct reply *r)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int rc;

	if (!cb) {
		r->nlerr = -NLE_NOMEM;
		return -1;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, r);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, r);
	rc = nl_send_auto(sk, msg);
	while (rc >= 0 && !r->done)
		rc = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (!r->done)
		r->nlerr = rc < 0 ? rc : -NLE_FAILURE;
	return r->error || r->nlerr || r->bad ? -1 : 0;
}

static struct nl_sock *ethtool_connect(int *family, char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1, rc;

	if (!sk) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Requests ask for their ACK themselves: a dump must not get one, it ends with NLMSG_DONE. */
	nl_socket_disable_auto_ack(sk);
	if ((rc = genl_connect(sk)) < 0) {
		snprintf(err, errlen, "cannot open a generic netlink socket: %s", nl_geterror(rc));
		goto fail;
	}
	/* The ethtool family explains its refusals in extended ACKs; a capped ACK does not echo the request. */
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* The daemon's main thread asks: a kernel that never answers must not stop it for good. */
	struct timeval tv = { .tv_sec = 5 };
	(void)setsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*family = genl_ctrl_resolve(sk, ETHTOOL_GENL_NAME);
	if (*family == -NLE_OBJ_NOTFOUND) {
		snprintf(err, errlen, "ethtool netlink is not available in this kernel (CONFIG_ETHTOOL_NETLINK)");
		goto fail;
	} else if (*family < 0) {
		snprintf(err, errlen, "cannot look up the ethtool netlink family: %s", nl_geterror(*family));
		goto fail;
	}
	return sk;
fail:
	nl_socket_free(sk);
	return NULL;
}

/* A features request for dev (by name) or ifindex; with neither, a dump of every device. */
static struct nl_msg *ethtool_msg(int family, uint8_t cmd, const char *dev, unsigned ifindex, uint32_t hdr_flags)
{
	struct nl_msg *msg = nlmsg_alloc();
	bool dump = !dev && !ifindex;
	struct nlattr *hdr;

	/* The kernel validates ethtool requests strictly: a nest without NLA_F_NESTED is refused (EINVAL).
	 * libnl 3.7 sets the flag by itself, older versions do not. */
	if (!msg ||
	    !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, dump ? NLM_F_DUMP : NLM_F_ACK, cmd,
			 ETHTOOL_GENL_VERSION) ||
	    !(hdr = nla_nest_start(msg, ETHTOOL_A_FEATURES_HEADER | NLA_F_NESTED)) ||
	    (dev && nla_put_string(msg, ETHTOOL_A_HEADER_DEV_NAME, dev) < 0) ||
	    (ifindex && nla_put_u32(msg, ETHTOOL_A_HEADER_DEV_INDEX, ifindex) < 0) ||
	    ((hdr_flags || dump) && nla_put_u32(msg, ETHTOOL_A_HEADER_FLAGS, hdr_flags) < 0)) {
		nlmsg_free(msg);
		return NULL;
	}
	/* Never an empty header: libnl would drop it, and kernels before 5.12 refuse a request without one
	 * ("request header missing", EINVAL) even for a dump. Flags 0 keeps a dump's header non-empty. */
	nla_nest_end(msg, hdr);
	return msg;
}

static int ethtool_get(struct nl_sock *sk, int family, const char *dev, unsigned ifindex, struct reply *r)
{
	struct nl_msg *msg = ethtool_msg(family, ETHTOOL_MSG_FEATURES_GET, dev, ifindex, 0);
	if (!msg) {
		r->nlerr = -NLE_NOMEM;
		return -1;
	}
	int rc = ethtool_call(sk, msg, r);
	nlmsg_free(msg);
	return rc;
}

/* A failed request about dev, in words. */
static void describe(const struct reply *r, const char *dev, bool set, char *err, size_t errlen)
{
	const char *sep = r->extack[0] ? ": " : "";

	switch (r->error) {
	case 0:
		if (r->nlerr)
			snprintf(err, errlen, "%s: netlink: %s", dev, nl_geterror(r->nlerr));
		else
			snprintf(err, errlen, "%s: malformed reply from ethtool netlink (or out of memory)", dev);
		break;
	case ENODEV:
		snprintf(err, errlen, "no such device: %s", dev);
		break;
	case EPERM:
	case EACCES:
		snprintf(err, errlen, "%s the features of %s needs CAP_NET_ADMIN", set ? "changing" : "reading", dev);
		break;
	case EOPNOTSUPP:
		snprintf(err, errlen, "%s: not supported by the device or kernel%s%s", dev, sep, r->extack);
		break;
	default:
		snprintf(err, errlen, "%s: cannot %s its features: %s%s%s", dev, set ? "change" : "read", strerror(r->error),
			 sep, r->extack);
	}
}

/* --- rtnetlink --------------------------------------------------------------------------------------- */

/* IFF_UP comes from rtnetlink. A device missing there vanished after its features were read: dropped. */
static int fill_link_state(struct netdev_info *v, size_t *n, char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *links = NULL;
	int rc = -NLE_NOMEM;

	if (!sk || (rc = nl_connect(sk, NETLINK_ROUTE)) < 0 || (rc = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links)) < 0) {
		snprintf(err, errlen, "cannot list links (rtnetlink): %s", nl_geterror(rc));
		if (sk)
			nl_socket_free(sk);
		return -1;
	}
	size_t kept = 0;
	for (size_t i = 0; i < *n; i++) {
		struct rtnl_link *link = rtnl_link_get(links, (int)v[i].ifindex);
		if (!link)
			continue;
		v[i].up = rtnl_link_get_flags(link) & IFF_UP;
		rtnl_link_put(link);
		v[kept++] = v[i];
	}
	*n = kept;
	nl_cache_free(links);
	nl_socket_free(sk);
	return 0;
}

static int by_ifindex(const void *a, const void *b)
{
	unsigned x = ((const struct netdev_info *)a)->ifindex, y = ((const struct netdev_info *)b)->ifindex;
	return (x > y) - (x < y);
}

int netdev_list(const char *dev, struct netdev_info **out, size_t *n, char *err, size_t errlen)
{
	struct reply r = { 0 };
	int family;

	*out = NULL;
	*n = 0;
	if (dev && bad_name(dev, err, errlen))
		return -1;
	struct nl_sock *sk = ethtool_connect(&family, err, errlen);
	if (!sk)
		return -1;
	int rc = ethtool_get(sk, family, dev, 0, &r);
	nl_socket_free(sk);
	if (rc < 0)
		describe(&r, dev ? dev : "listing devices", false, err, errlen);
	else if (fill_link_state(r.v, &r.n, err, errlen) < 0)
		rc = -1;
	else if (dev && r.n != 1) {
		snprintf(err, errlen, "no such device: %s", dev);
		rc = -1;
	}
	if (rc < 0) {
		free(r.v);
		return -1;
	}
	qsort(r.v, r.n, sizeof(*r.v), by_ifindex);
	*out = r.v;
	*n = r.n;
	return 0;
}

int netdev_feature_set(const char *dev, const char *feature, bool on, char *err, size_t errlen)
{
	int i = feature ? feature_index(feature, true) : -1, family, rc = -1;
	struct reply set = { 0 }, get = { 0 };
	struct nlattr *wanted, *bits, *bit;

	if (i < 0) {
		snprintf(err, errlen, "unknown feature: %s (expected tls-hw-tx[-offload], tls-hw-rx[-offload] or tls-hw-record)",
			 feature ? feature : "");
		return -1;
	}
	if (bad_name(dev, err, errlen))
		return -1;
	const char *name = netdev_tls_feature_names[i];
	struct nl_sock *sk = ethtool_connect(&family, err, errlen);
	if (!sk)
		return -1;
	/* The kernel's reply to a SET lists what differs from the request; we read the state back instead,
	 * one way of deciding for every case, so the reply is omitted. Without NOMASK the listed bits are the
	 * mask: only this feature is touched, and VALUE present means on. */
	struct nl_msg *msg = ethtool_msg(family, ETHTOOL_MSG_FEATURES_SET, dev, 0, ETHTOOL_FLAG_OMIT_REPLY);
	if (!msg || !(wanted = nla_nest_start(msg, ETHTOOL_A_FEATURES_WANTED | NLA_F_NESTED)) ||
	    !(bits = nla_nest_start(msg, ETHTOOL_A_BITSET_BITS | NLA_F_NESTED)) ||
	    !(bit = nla_nest_start(msg, ETHTOOL_A_BITSET_BITS_BIT | NLA_F_NESTED)) ||
	    nla_put_string(msg, ETHTOOL_A_BITSET_BIT_NAME, name) < 0 ||
	    (on && nla_put_flag(msg, ETHTOOL_A_BITSET_BIT_VALUE) < 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	nla_nest_end(msg, bit);
	nla_nest_end(msg, bits);
	nla_nest_end(msg, wanted);
	if (ethtool_call(sk, msg, &set) < 0) {
		describe(&set, dev, true, err, errlen);
		goto out;
	}
	if (ethtool_get(sk, family, dev, 0, &get) < 0 || get.n != 1) {
		describe(&get, dev, false, err, errlen);
		goto out;
	}
	/* A fixed feature is not an error to the kernel: it masks the request with the device's hw set. */
	const struct netdev_feature *f = &get.v[0].tls[i];
	if (f->active == on)
		rc = 0;
	else if (f->fixed)
		snprintf(err, errlen, "%s cannot change %s (fixed: %s)", dev, name,
			 f->hw ? "the kernel does not allow it" : "the device has no TLS offload");
	else if (f->wanted == on && on)
		snprintf(err, errlen, "wanted on, but %s did not activate it", dev);
	else if (f->wanted == on)
		snprintf(err, errlen, "wanted off, but %s kept it active", dev);
	else
		snprintf(err, errlen, "%s did not take the request: %s is still wanted %s", dev, name, on ? "off" : "on");
out:
	nlmsg_free(msg);
	free(get.v);
	free(set.v);
	nl_socket_free(sk);
	return rc;
}

/* --- the link monitor -------------------------------------------------------------------------------- */

struct netdev_monitor {
	struct nl_sock *events;       /* rtnetlink, RTNLGRP_LINK, non-blocking */
	struct nl_cb *cb;
	struct nl_sock *ethtool;      /* blocking requests: re-read one device's features */
	int family;
	struct netdev_info *view;     /* sorted by ifindex */
	size_t n;
	unsigned nevents;
};

/* The entry for ifindex, or NULL with *at where it would go. */
static struct netdev_info *find(const struct netdev_monitor *m, unsigned ifindex, size_t *at)
{
	size_t i = 0;
	while (i < m->n && m->view[i].ifindex < ifindex)
		i++;
	*at = i;
	return i < m->n && m->view[i].ifindex == ifindex ? &m->view[i] : NULL;
}

static void log_added(const struct netdev_info *d)
{
	char tls[128] = "";
	size_t len = 0;

	for (int i = 0; i < NETDEV_TLS_FEATURES; i++)
		if (d->tls[i].hw && len < sizeof(tls))
			len += (size_t)snprintf(tls + len, sizeof(tls) - len, "%s%s %s", len ? ", " : "",
						netdev_tls_feature_names[i], d->tls[i].active ? "on" : "off");
	log_notice("link %s: added (ifindex %u, %s, TLS offload: %s)", d->name, d->ifindex, d->up ? "up" : "down",
		   len ? tls : "none");
}

static void log_changes(const struct netdev_info *old, const struct netdev_info *now)
{
	if (strcmp(old->name, now->name))
		log_notice("link %s: renamed to %s", old->name, now->name);
	if (old->up != now->up)
		log_notice("link %s: %s", now->name, now->up ? "up" : "down");
	for (int i = 0; i < NETDEV_TLS_FEATURES; i++)
		for (size_t k = 0; k < NBITSETS; k++)
			if (flag_of(&old->tls[i], k) != flag_of(&now->tls[i], k))
				log_notice("link %s: %s %s %s -> %s", now->name, netdev_tls_feature_names[i], bitsets[k].label,
					   flag_of(&old->tls[i], k) ? "on" : "off", flag_of(&now->tls[i], k) ? "on" : "off");
}

/* Bring the view's entry for now->ifindex in line with now, logging what differs. */
static void apply(struct netdev_monitor *m, const struct netdev_info *now)
{
	size_t at;
	struct netdev_info *old = find(m, now->ifindex, &at);

	if (old) {
		log_changes(old, now);
		*old = *now;
		return;
	}
	struct netdev_info *v = realloc(m->view, (m->n + 1) * sizeof(*v));
	if (!v) {
		log_warn("link %s: out of memory, not tracked", now->name);
		return;
	}
	m->view = v;
	memmove(&v[at + 1], &v[at], (m->n - at) * sizeof(*v));
	v[at] = *now;
	m->n++;
	log_added(now);
}

static void forget(struct netdev_monitor *m, unsigned ifindex)
{
	size_t at;
	if (!find(m, ifindex, &at))
		return;
	log_notice("link %s: removed", m->view[at].name);
	memmove(&m->view[at], &m->view[at + 1], (m->n - at - 1) * sizeof(*m->view));
	m->n--;
}

/* An RTM_NEWLINK: the link's name and IFF_UP are in the event, its features are read again. */
static void link_changed(struct netdev_monitor *m, unsigned ifindex, const char *name, bool up)
{
	struct reply r = { 0 };
	struct netdev_info now = { .ifindex = ifindex };
	size_t at;
	const struct netdev_info *old = find(m, ifindex, &at);

	if (ethtool_get(m->ethtool, m->family, NULL, ifindex, &r) == 0 && r.n == 1) {
		now = r.v[0];
	} else if (r.error == ENODEV) {
		free(r.v);   /* gone again already: its RTM_DELLINK follows */
		return;
	} else {
		char err[256];
		describe(&r, name, false, err, sizeof(err));
		log_warn("link %s: cannot read its TLS features: %s", name, err);
		if (old)
			now = *old;   /* keep what we knew */
	}
	free(r.v);
	snprintf(now.name, sizeof(now.name), "%s", name);
	now.up = up;
	apply(m, &now);
}

static void on_link(struct nl_object *obj, void *arg)
{
	struct netdev_monitor *m = arg;
	struct rtnl_link *link = (struct rtnl_link *)obj;

	/* Bridge port events (AF_BRIDGE) share the group; their RTM_DELLINK means "left the bridge". */
	if (rtnl_link_get_family(link) != AF_UNSPEC || rtnl_link_get_ifindex(link) <= 0)
		return;
	m->nevents++;
	unsigned ifindex = (unsigned)rtnl_link_get_ifindex(link);
	const char *name = rtnl_link_get_name(link);
	if (nl_object_get_msgtype(obj) == RTM_DELLINK)
		forget(m, ifindex);
	else
		link_changed(m, ifindex, name ? name : "?", rtnl_link_get_flags(link) & IFF_UP);
}

static int on_link_msg(struct nl_msg *msg, void *arg)
{
	int type = nlmsg_hdr(msg)->nlmsg_type;
	if (type == RTM_NEWLINK || type == RTM_DELLINK)
		nl_msg_parse(msg, on_link, arg);
	return NL_OK;
}

/* Notifications are not answers to a request of ours: they carry sequence number 0. */
static int any_seq(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

/* Events were dropped (socket overflow): compare a fresh list with the view instead. */
static void resync(struct netdev_monitor *m)
{
	struct netdev_info *now;
	size_t n;
	char err[256];

	if (netdev_list(NULL, &now, &n, err, sizeof(err)) < 0) {
		log_warn("link monitor: cannot re-read the links: %s", err);
		return;
	}
	for (size_t i = 0; i < m->n;) {
		unsigned ifindex = m->view[i].ifindex;
		bool still = false;
		for (size_t j = 0; j < n && !still; j++)
			still = now[j].ifindex == ifindex;
		if (still)
			i++;
		else
			forget(m, ifindex);
	}
	for (size_t j = 0; j < n; j++)
		apply(m, &now[j]);
	free(now);
}

struct netdev_monitor *netdev_monitor_open(char *err, size_t errlen)
{
	struct netdev_monitor *m = calloc(1, sizeof(*m));
	int rc;

	if (!m || !(m->events = nl_socket_alloc()) || !(m->cb = nl_cb_alloc(NL_CB_DEFAULT))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	nl_cb_set(m->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, any_seq, NULL);
	nl_cb_set(m->cb, NL_CB_VALID, NL_CB_CUSTOM, on_link_msg, m);
	if ((rc = nl_connect(m->events, NETLINK_ROUTE)) < 0 || (rc = nl_socket_add_membership(m->events, RTNLGRP_LINK)) < 0 ||
	    (rc = nl_socket_set_nonblocking(m->events)) < 0) {
		snprintf(err, errlen, "cannot open the rtnetlink link monitor: %s", nl_geterror(rc));
		goto fail;
	}
	/* Room for a burst (a driver reload, many veths at once) before the kernel starts dropping events. */
	(void)nl_socket_set_buffer_size(m->events, 1 << 20, 0);
	if (!(m->ethtool = ethtool_connect(&m->family, err, errlen)))
		goto fail;
	/* The group is joined before the first view is taken, so a change made in between is seen as an
	 * event (and re-read) rather than lost. */
	if (netdev_list(NULL, &m->view, &m->n, err, errlen) < 0)
		goto fail;
	return m;
fail:
	netdev_monitor_close(m);
	return NULL;
}

int netdev_monitor_fd(const struct netdev_monitor *m)
{
	return nl_socket_get_fd(m->events);
}

void netdev_monitor_process(struct netdev_monitor *m)
{
	bool resynced = false;

	for (;;) {
		int rc = nl_recvmsgs(m->events, m->cb);
		if (rc >= 0)
			continue;
		if (rc == -NLE_AGAIN)
			return;
		/* ENOBUFS (libnl says NLE_NOMEM): the kernel dropped events. Once per call, in case it is a real
		 * out-of-memory instead. */
		if (rc == -NLE_NOMEM && !resynced) {
			log_warn("link monitor: link events were lost, re-reading every link");
			resync(m);
			resynced = true;
			continue;
		}
		log_warn("link monitor: %s", nl_geterror(rc));
		return;
	}
}

const struct netdev_info *netdev_monitor_view(const struct netdev_monitor *m, size_t *n)
{
	*n = m->n;
	return m->view;
}

unsigned netdev_monitor_events(const struct netdev_monitor *m)
{
	return m->nevents;
}

void netdev_monitor_close(struct netdev_monitor *m)
{
	if (!m)
		return;
	if (m->events)
		nl_socket_free(m->events);
	if (m->cb)
		nl_cb_put(m->cb);
	if (m->ethtool)
		nl_socket_free(m->ethtool);
	free(m->view);
	free(m);
}
