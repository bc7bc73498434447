/* backend.c — tlsoffctl backend add|del|show, and server add|del|drain|enable. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int print_backend(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct backend_conf b;
	unsigned active[TLSOFF_MAX_SERVERS] = { 0 }, n = 0;
	struct nlattr *a;
	int rc, rem;
	if (!tb[TLSOFF_A_BACKEND])
		return -EPROTO;
	if ((rc = ctl_get_backend(tb[TLSOFF_A_BACKEND], &b, err, errlen)) < 0)
		return rc;
	nla_for_each_nested(a, tb[TLSOFF_A_BACKEND], rem) {
		struct nlattr *st[TLSOFF_SRV_MAX + 1];
		if (nla_type(a) != TLSOFF_BE_SERVER || n == TLSOFF_MAX_SERVERS)
			continue;
		if ((rc = ctl_parse_nested(st, TLSOFF_SRV_MAX, a, ctl_srv_policy, "server", err, errlen)) < 0)
			return rc;
		active[n++] = attr_u32(st, TLSOFF_SRV_ACTIVE);
	}
	if (s->c->json) {
		struct json *j = &s->j;
		json_begin_object(j);
		json_kv_string(j, "name", b.name);
		json_kv_string(j, "balance", tlsoff_balance_name(b.balance));
		json_kv_string(j, "proxy_protocol", b.proxy_protocol ? "v2" : "off");
		json_kv_u64(j, "connect_timeout_ms", b.connect_timeout_ms);
		json_kv_bool(j, "tls", b.tls);
		if (b.tls) {
			json_kv_string(j, "ca", b.tls_ca);
			json_kv_bool(j, "verify", b.tls_verify);
			json_kv_string(j, "sni", b.tls_sni);
			json_kv_string(j, "cert", b.tls_cert);
			json_kv_string(j, "key", b.tls_key);
		}
		json_key(j, "servers");
		json_begin_array(j);
		for (unsigned i = 0; i < b.nservers; i++) {
			json_begin_object(j);
			json_kv_string(j, "addr", b.servers[i].text);
			json_kv_bool(j, "drained", b.drained & (1ull << i));
			json_kv_u64(j, "conns", active[i]);
			json_end_object(j);
		}
		json_end_array(j);
		json_end_object(j);
		return 0;
	}
	printf("backend %s balance %s proxy-protocol %s connect-timeout %u", b.name, tlsoff_balance_name(b.balance),
	       b.proxy_protocol ? "v2" : "off", b.connect_timeout_ms);
	if (b.tls)
		printf(" tls ca %s verify %s sni %s%s%s%s%s", b.tls_ca[0] ? b.tls_ca : "(system)", b.tls_verify ? "on" : "off",
		       b.tls_sni[0] ? b.tls_sni : "(server name)", b.tls_cert[0] ? " cert " : "", b.tls_cert,
		       b.tls_key[0] ? " key " : "", b.tls_key);
	printf("\n");
	for (unsigned i = 0; i < b.nservers; i++)
		printf("  server %s conns %u%s\n", b.servers[i].text, active[i], b.drained & (1ull << i) ? " drained" : "");
	return 0;
}

int cmd_backend(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("backend") : ctl_usage(c, "backend", "backend: missing verb (add, del, show)");
	if (!strcmp(argv[0], "add") || !strcmp(argv[0], "del"))
		return ctl_change(c, "backend", argc, argv);
	if (strcmp(argv[0], "show") && strcmp(argv[0], "list"))
		return ctl_usage(c, "backend", "backend: unknown verb '%s' (add, del, show)", argv[0]);
	if (argc > 2)
		return ctl_usage(c, "backend", "backend show: unexpected '%s'", argv[2]);
	return ctl_show(c, ctl_get_request(c, TLSOFF_CMD_BACKEND_GET, argc == 2 ? argv[1] : NULL), print_backend, true, NULL);
}

int cmd_server(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("server") : ctl_usage(c, "server", "server: missing verb (add, del, drain, enable)");
	return ctl_change(c, "server", argc, argv);
}
