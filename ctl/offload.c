/* offload.c — tlsoffctl offload show|set: each netdev's TLS offload features as the ethtool netlink family
 * reports them (hw: the device can, wanted: requested, active: in effect), read and set by the daemon. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int print_link(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct nlattr *lt[TLSOFF_LINK_MAX + 1], *a;
	int rc, rem;
	if (!tb[TLSOFF_A_LINK])
		return -EPROTO;
	if ((rc = ctl_parse_nested(lt, TLSOFF_LINK_MAX, tb[TLSOFF_A_LINK], ctl_link_policy, "link", err, errlen)) < 0)
		return rc;
	if (s->c->json) {
		json_begin_object(&s->j);
		json_kv_string(&s->j, "dev", attr_str(lt, TLSOFF_LINK_NAME));
		json_kv_u64(&s->j, "ifindex", attr_u32(lt, TLSOFF_LINK_IFINDEX));
		json_kv_bool(&s->j, "up", attr_u8(lt, TLSOFF_LINK_UP));
		json_key(&s->j, "features");
		json_begin_object(&s->j);
	} else {
		printf("%u: %s%s\n", attr_u32(lt, TLSOFF_LINK_IFINDEX), attr_str(lt, TLSOFF_LINK_NAME),
		       attr_u8(lt, TLSOFF_LINK_UP) ? " up" : " down");
	}
	nla_for_each_nested(a, tb[TLSOFF_A_LINK], rem) {
		struct nlattr *ft[TLSOFF_FEAT_MAX + 1];
		if (nla_type(a) != TLSOFF_LINK_FEATURE)
			continue;
		if ((rc = ctl_parse_nested(ft, TLSOFF_FEAT_MAX, a, ctl_feat_policy, "feature", err, errlen)) < 0)
			return rc;
		bool hw = attr_u8(ft, TLSOFF_FEAT_HW), wanted = attr_u8(ft, TLSOFF_FEAT_WANTED),
		     active = attr_u8(ft, TLSOFF_FEAT_ACTIVE), fixed = attr_u8(ft, TLSOFF_FEAT_FIXED);
		if (s->c->json) {
			json_key(&s->j, attr_str(ft, TLSOFF_FEAT_NAME));
			json_begin_object(&s->j);
			json_kv_bool(&s->j, "hw", hw);
			json_kv_bool(&s->j, "wanted", wanted);
			json_kv_bool(&s->j, "active", active);
			json_kv_bool(&s->j, "fixed", fixed);
			json_end_object(&s->j);
		} else {
			printf("    %-18s hw %-3s wanted %-3s active %-3s%s\n", attr_str(ft, TLSOFF_FEAT_NAME), hw ? "on" : "off",
			       wanted ? "on" : "off", active ? "on" : "off", fixed ? " [fixed]" : "");
		}
	}
	if (s->c->json) {
		json_end_object(&s->j);
		json_end_object(&s->j);
	}
	return 0;
}

static int set(struct ctl *c, int argc, char **argv)
{
	/* offload set dev DEV FEATURE on|off */
	if (argc != 5 || strcmp(argv[1], "dev") || (strcmp(argv[4], "on") && strcmp(argv[4], "off")))
		return ctl_usage(c, "offload", "usage: offload set dev DEV tls-hw-tx|tls-hw-rx|tls-hw-record on|off");
	if (!ctl_ipc(c))
		return EXIT_REFUSED;
	struct nl_msg *m = ipc_msg(c->ipc, TLSOFF_CMD_OFFLOAD_SET, false);
	struct nlattr *f = m && nla_put_string(m, TLSOFF_A_NAME, argv[2]) == 0 ? nla_nest_start(m, TLSOFF_A_FEATURE) : NULL;
	if (!f || nla_put_string(m, TLSOFF_FEAT_NAME, argv[3]) < 0 ||
	    nla_put_u8(m, TLSOFF_FEAT_WANTED, !strcmp(argv[4], "on")) < 0) {
		if (m)
			nlmsg_free(m);
		return ctl_refused(c, "device or feature name too long");
	}
	nla_nest_end(m, f);
	return ctl_request(c, m);
}

int cmd_offload(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("offload") : ctl_usage(c, "offload", "offload: missing verb (show, set)");
	if (!strcmp(argv[0], "set"))
		return set(c, argc, argv);
	if (strcmp(argv[0], "show") && strcmp(argv[0], "list"))
		return ctl_usage(c, "offload", "offload: unknown verb '%s' (show, set)", argv[0]);
	if (argc != 1 && (argc != 3 || strcmp(argv[1], "dev")))
		return ctl_usage(c, "offload", "usage: offload show [dev DEV]");
	return ctl_show(c, ctl_get_request(c, TLSOFF_CMD_OFFLOAD_GET, argc == 3 ? argv[2] : NULL), print_link, true, NULL);
}
