/* stats.c — tlsoffctl stats (daemon counters and the kernel's /proc/net/tls_stat) and status (version,
 * uptime, what the kernel can offload). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int print_stats(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)tb;
	struct show *s = arg;
	struct nlattr *a;
	int rem, rc, pass;
	if (s->c->json)
		json_begin_object(&s->j);
	/* two passes over the counters: the daemon's, then the kernel's */
	for (pass = 0; pass < 2; pass++) {
		bool any = false;
		nlmsg_for_each_attr(a, h, sizeof(struct tlsoff_ctlhdr), rem) {
			struct nlattr *ct[TLSOFF_COUNTER_MAX + 1];
			if (nla_type(a) != TLSOFF_A_COUNTER)
				continue;
			if ((rc = ctl_parse_nested(ct, TLSOFF_COUNTER_MAX, a, ctl_counter_policy, "counter", err, errlen)) < 0)
				return rc;
			if ((ct[TLSOFF_COUNTER_KERNEL] != NULL) != pass)
				continue;
			if (!any && s->c->json) {
				json_key(&s->j, pass ? "kernel" : "daemon");
				json_begin_object(&s->j);
			} else if (!any) {
				printf("%s\n", pass ? "kernel (/proc/net/tls_stat):" : "daemon:");
			}
			any = true;
			if (s->c->json)
				json_kv_u64(&s->j, attr_str(ct, TLSOFF_COUNTER_NAME), attr_u64(ct, TLSOFF_COUNTER_VALUE));
			else
				printf("  %-28s %llu\n", attr_str(ct, TLSOFF_COUNTER_NAME),
				       (unsigned long long)attr_u64(ct, TLSOFF_COUNTER_VALUE));
		}
		if (any && s->c->json)
			json_end_object(&s->j);
		if (!any && pass && !s->c->json)
			printf("kernel: no /proc/net/tls_stat (no kTLS in this kernel)\n");
	}
	if (s->c->json)
		json_end_object(&s->j);
	return 0;
}

/* stats and status: no arguments (or "show"), one object. */
static int one_object(struct ctl *c, const char *object, int argc, char **argv, int type, ipc_cb cb)
{
	if (ctl_wants_help(argc, argv))
		return ctl_help(object);
	if (argc > 1 || (argc == 1 && strcmp(argv[0], "show")))
		return ctl_usage(c, object, "%s: unexpected '%s'", object, argv[argc > 1 && !strcmp(argv[0], "show")]);
	return ctl_show(c, ctl_get_request(c, type, NULL), cb, false, NULL);
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
	return one_object(c, "stats", argc, argv, TLSOFF_CMD_STATS_GET, print_stats);
}

static int print_status(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct nlattr *st[TLSOFF_STATUS_MAX + 1], *a;
	int rc, rem;
	if (!tb[TLSOFF_A_STATUS])
		return -EPROTO;
	if ((rc = ctl_parse_nested(st, TLSOFF_STATUS_MAX, tb[TLSOFF_A_STATUS], ctl_status_policy, "status", err, errlen)) < 0)
		return rc;
	struct json *j = &s->j;
	bool js = s->c->json, ulp = attr_u8(st, TLSOFF_STATUS_TLS_ULP);
	if (js) {
		json_begin_object(j);
		json_kv_string(j, "version", attr_str(st, TLSOFF_STATUS_VERSION));
		json_kv_u64(j, "pid", attr_u32(st, TLSOFF_STATUS_PID));
		json_kv_u64(j, "uptime_s", attr_u64(st, TLSOFF_STATUS_UPTIME_S));
		json_kv_u64(j, "workers", attr_u32(st, TLSOFF_STATUS_WORKERS));
		json_kv_u64(j, "generation", attr_u32(st, TLSOFF_STATUS_GENERATION));
		json_kv_u64(j, "conns", attr_u32(st, TLSOFF_STATUS_CONNS));
		json_kv_string(j, "config", attr_str(st, TLSOFF_STATUS_CONFIG_PATH));
		json_kv_string(j, "kernel", attr_str(st, TLSOFF_STATUS_KERNEL));
		json_kv_bool(j, "tls_ulp", ulp);
		json_kv_string(j, "tls_ulp_why", attr_str(st, TLSOFF_STATUS_TLS_ULP_WHY));
		json_kv_bool(j, "rekey", attr_u8(st, TLSOFF_STATUS_REKEY));
		json_kv_bool(j, "sockmap", attr_u8(st, TLSOFF_STATUS_SOCKMAP));
		json_kv_string(j, "steering", attr_str(st, TLSOFF_STATUS_STEERING));
		json_kv_string(j, "sockmap_why", attr_str(st, TLSOFF_STATUS_SOCKMAP_WHY));
		json_kv_bool(j, "sockmap_overlap_cut", attr_u8(st, TLSOFF_STATUS_SOCKMAP_CUT));
		json_key(j, "ciphers");
		json_begin_array(j);
	} else {
		printf("tlsoffd %s pid %u up %llus, %u worker(s), configuration generation %u, %u connection(s)\n",
		       attr_str(st, TLSOFF_STATUS_VERSION), attr_u32(st, TLSOFF_STATUS_PID),
		       (unsigned long long)attr_u64(st, TLSOFF_STATUS_UPTIME_S), attr_u32(st, TLSOFF_STATUS_WORKERS),
		       attr_u32(st, TLSOFF_STATUS_GENERATION), attr_u32(st, TLSOFF_STATUS_CONNS));
		printf("config %s\nkernel %s\n  tls ulp: %s%s%s\n", attr_str(st, TLSOFF_STATUS_CONFIG_PATH),
		       attr_str(st, TLSOFF_STATUS_KERNEL), ulp ? "yes" : "no", ulp ? "" : " — ",
		       ulp ? "" : attr_str(st, TLSOFF_STATUS_TLS_ULP_WHY));
	}
	nla_for_each_nested(a, tb[TLSOFF_A_STATUS], rem) {
		struct nlattr *ct[TLSOFF_CIPHER_MAX + 1];
		if (nla_type(a) != TLSOFF_STATUS_CIPHER)
			continue;
		if ((rc = ctl_parse_nested(ct, TLSOFF_CIPHER_MAX, a, ctl_cipher_policy, "cipher", err, errlen)) < 0)
			return rc;
		if (js) {
			json_begin_object(j);
			json_kv_string(j, "tls", attr_str(ct, TLSOFF_CIPHER_TLS));
			json_kv_string(j, "cipher", attr_str(ct, TLSOFF_CIPHER_NAME));
			json_kv_bool(j, "tx", attr_u8(ct, TLSOFF_CIPHER_TX));
			json_kv_bool(j, "rx", attr_u8(ct, TLSOFF_CIPHER_RX));
			json_end_object(j);
		} else {
			printf("  TLS %s %-18s tx %-3s rx %s\n", attr_str(ct, TLSOFF_CIPHER_TLS), attr_str(ct, TLSOFF_CIPHER_NAME),
			       attr_u8(ct, TLSOFF_CIPHER_TX) ? "yes" : "no", attr_u8(ct, TLSOFF_CIPHER_RX) ? "yes" : "no");
		}
	}
	if (js) {
		json_end_array(j);
		json_end_object(j);
	} else {
		bool smap = attr_u8(st, TLSOFF_STATUS_SOCKMAP);
		const char *note = !smap ? attr_str(st, TLSOFF_STATUS_SOCKMAP_WHY)
				   : attr_u8(st, TLSOFF_STATUS_SOCKMAP_CUT) ? "the verdict cuts retransmitted bytes this "
									     "kernel hands it twice"
									   : "";
		printf("  tls 1.3 rekey: %s\n  bpf sockmap: %s%s%s\nconnection steering: %s\n",
		       attr_u8(st, TLSOFF_STATUS_REKEY) ? "yes" : "no", smap ? "yes" : "no", *note ? " — " : "", note,
		       attr_str(st, TLSOFF_STATUS_STEERING));
	}
	return 0;
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	return one_object(c, "status", argc, argv, TLSOFF_CMD_STATUS_GET, print_status);
}
