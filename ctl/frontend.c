/* frontend.c — tlsoffctl frontend add|del|show. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int print_frontend(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct frontend_conf f;
	struct nlattr *ft[TLSOFF_FE_MAX + 1];
	char alpn[TLSOFF_ALPN_MAX * 2];
	int rc;
	if (!tb[TLSOFF_A_FRONTEND])
		return -EPROTO;
	if ((rc = ctl_get_frontend(tb[TLSOFF_A_FRONTEND], &f, err, errlen)) < 0 ||
	    (rc = ctl_parse_nested(ft, TLSOFF_FE_MAX, tb[TLSOFF_A_FRONTEND], ctl_fe_policy, "frontend", err, errlen)) < 0)
		return rc;
	unsigned conns = attr_u32(ft, TLSOFF_FE_CONNS);
	tlsoff_alpn_format(f.alpn, f.alpn_len, alpn, sizeof(alpn));
	if (s->c->json) {
		struct json *j = &s->j;
		json_begin_object(j);
		json_kv_string(j, "name", f.name);
		json_kv_string(j, "listen", f.listen.text);
		json_kv_string(j, "mode", tlsoff_mode_name(f.mode));
		json_kv_string(j, "backend", f.backend);
		json_key(j, "routes");
		json_begin_array(j);
		for (unsigned i = 0; i < f.nroutes; i++) {
			json_begin_object(j);
			json_kv_string(j, "sni", f.routes[i].pattern);
			json_kv_string(j, "backend", f.routes[i].backend);
			json_end_object(j);
		}
		json_end_array(j);
		json_key(j, "certs");
		json_begin_array(j);
		for (unsigned i = 0; i < f.ncerts; i++) {
			json_begin_object(j);
			json_kv_string(j, "chain", f.certs[i].chain);
			json_kv_string(j, "key", f.certs[i].key);
			json_end_object(j);
		}
		json_end_array(j);
		json_kv_string(j, "alpn", alpn);
		json_kv_string(j, "tls_min", tlsoff_tls_min_name(f.tls_min));
		json_kv_string(j, "datapath", tlsoff_datapath_name(f.datapath));
		json_kv_u64(j, "handshake_timeout_ms", f.handshake_timeout_ms);
		json_kv_u64(j, "idle_timeout_ms", f.idle_timeout_ms);
		json_kv_u64(j, "max_conns", f.max_conns);
		json_kv_string(j, "nic_offload", f.mode == MODE_TLS ? tlsoff_nic_offload_name(f.nic_offload) : "");
		json_kv_u64(j, "conns", conns);
		json_kv_string(j, "client_ca", f.client_ca);
		json_kv_string(j, "client_verify", tlsoff_client_verify_name(f.client_verify));
		json_end_object(j);
		return 0;
	}
	if (f.mode != MODE_TLS) {
		printf("frontend %s listen %s %s%s%s conns %u", f.name, f.listen.text, tlsoff_mode_name(f.mode),
		       f.backend[0] ? (f.mode == MODE_PLAIN ? " backend " : " default ") : "", f.backend, conns);
		for (unsigned i = 0; i < f.nroutes; i++)
			printf(" sni %s=%s", f.routes[i].pattern, f.routes[i].backend);
	} else {
		printf("frontend %s listen %s backend %s datapath %s tls-min %s%s%s conns %u", f.name, f.listen.text,
		       f.backend, tlsoff_datapath_name(f.datapath), tlsoff_tls_min_name(f.tls_min), alpn[0] ? " alpn " : "",
		       alpn, conns);
	}
	if (f.max_conns)
		printf(" max-conns %u", f.max_conns);
	if (f.mode == MODE_TLS && f.nic_offload != NIC_OFFLOAD_OFF)
		printf(" nic-offload %s", tlsoff_nic_offload_name(f.nic_offload));
	printf("\n  handshake-timeout %u idle-timeout %u\n", f.handshake_timeout_ms, f.idle_timeout_ms);
	for (unsigned i = 0; i < f.ncerts; i++)
		printf("  cert %s key %s\n", f.certs[i].chain, f.certs[i].key);
	if (f.client_ca[0])
		printf("  client-ca %s client-verify %s\n", f.client_ca, tlsoff_client_verify_name(f.client_verify));
	return 0;
}

int cmd_frontend(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("frontend") : ctl_usage(c, "frontend", "frontend: missing verb (add, del, show)");
	if (!strcmp(argv[0], "add") || !strcmp(argv[0], "del"))
		return ctl_change(c, "frontend", argc, argv);
	if (strcmp(argv[0], "show") && strcmp(argv[0], "list"))
		return ctl_usage(c, "frontend", "frontend: unknown verb '%s' (add, del, show)", argv[0]);
	if (argc > 2)
		return ctl_usage(c, "frontend", "frontend show: unexpected '%s'", argv[2]);
	return ctl_show(c, ctl_get_request(c, TLSOFF_CMD_FRONTEND_GET, argc == 2 ? argv[1] : NULL), print_frontend, true, NULL);
}
