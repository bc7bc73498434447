/* conn.c — tlsoffctl conn show|kill: every connection, its TLS parameters, its datapath and what the kernel
 * says about its kTLS state (sw, hw, none). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const int conn_strings[] = { TLSOFF_CONN_FRONTEND, TLSOFF_CONN_BACKEND, TLSOFF_CONN_CLIENT,
				    TLSOFF_CONN_SERVER, TLSOFF_CONN_STATE, TLSOFF_CONN_VERSION, TLSOFF_CONN_CIPHER,
				    TLSOFF_CONN_ALPN, TLSOFF_CONN_SNI, TLSOFF_CONN_DATAPATH, TLSOFF_CONN_WHY,
				    TLSOFF_CONN_KTLS_TX, TLSOFF_CONN_KTLS_RX, TLSOFF_CONN_NIC_OFFLOAD,
				    TLSOFF_CONN_BACKEND_TLS, TLSOFF_CONN_BACKEND_VERSION, TLSOFF_CONN_BACKEND_CIPHER };
static const char *const conn_keys[] = { "frontend", "backend", "client", "server", "state", "version", "cipher",
					 "alpn", "sni", "datapath", "why", "ktls_tx", "ktls_rx", "nic_offload",
					 "backend_tls", "backend_version", "backend_cipher" };

static const char *or_dash(const char *s)
{
	return *s ? s : "-";
}

static int print_conn(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct nlattr *ct[TLSOFF_CONN_MAX + 1];
	int rc;
	if (!tb[TLSOFF_A_CONN])
		return -EPROTO;
	if ((rc = ctl_parse_nested(ct, TLSOFF_CONN_MAX, tb[TLSOFF_A_CONN], ctl_conn_policy, "conn", err, errlen)) < 0)
		return rc;
	if (s->c->json) {
		struct json *j = &s->j;
		json_begin_object(j);
		json_kv_u64(j, "id", attr_u64(ct, TLSOFF_CONN_ID));
		for (size_t i = 0; i < sizeof(conn_strings) / sizeof(conn_strings[0]); i++)
			json_kv_string(j, conn_keys[i], attr_str(ct, conn_strings[i]));
		json_kv_u64(j, "bytes_in", attr_u64(ct, TLSOFF_CONN_BYTES_IN));
		json_kv_u64(j, "bytes_out", attr_u64(ct, TLSOFF_CONN_BYTES_OUT));
		json_kv_u64(j, "age_ms", attr_u64(ct, TLSOFF_CONN_AGE_MS));
		json_kv_u64(j, "rekeys", attr_u32(ct, TLSOFF_CONN_REKEYS));
		json_kv_u64(j, "worker", attr_u32(ct, TLSOFF_CONN_WORKER));
		json_end_object(j);
		return 0;
	}
	unsigned *n = s->arg;
	if ((*n)++ == 0)
		printf("%-6s %-10s %-21s %-21s %-4s %-29s %-9s %-4s %-4s %12s %12s %8s\n", "ID", "FRONTEND", "CLIENT",
		       "SERVER", "TLS", "CIPHER", "DATAPATH", "TX", "RX", "IN", "OUT", "AGE");
	const char *ver = attr_str(ct, TLSOFF_CONN_VERSION);
	printf("%-6llu %-10s %-21s %-21s %-4s %-29s %-9s %-4s %-4s %12llu %12llu %7.1fs",
	       (unsigned long long)attr_u64(ct, TLSOFF_CONN_ID), attr_str(ct, TLSOFF_CONN_FRONTEND),
	       attr_str(ct, TLSOFF_CONN_CLIENT), or_dash(attr_str(ct, TLSOFF_CONN_SERVER)),
	       or_dash(!strncmp(ver, "TLSv", 4) ? ver + 4 : ver), or_dash(attr_str(ct, TLSOFF_CONN_CIPHER)),
	       or_dash(attr_str(ct, TLSOFF_CONN_DATAPATH)), attr_str(ct, TLSOFF_CONN_KTLS_TX),
	       attr_str(ct, TLSOFF_CONN_KTLS_RX), (unsigned long long)attr_u64(ct, TLSOFF_CONN_BYTES_IN),
	       (unsigned long long)attr_u64(ct, TLSOFF_CONN_BYTES_OUT), attr_u64(ct, TLSOFF_CONN_AGE_MS) / 1000.0);
	const char *alpn = attr_str(ct, TLSOFF_CONN_ALPN), *sni = attr_str(ct, TLSOFF_CONN_SNI),
		   *why = attr_str(ct, TLSOFF_CONN_WHY), *state = attr_str(ct, TLSOFF_CONN_STATE);
	if (strcmp(state, "relay"))
		printf(" state=%s", state);
	if (*sni)
		printf(" sni=%s", sni);
	if (*alpn)
		printf(" alpn=%s", alpn);
	if (attr_u32(ct, TLSOFF_CONN_REKEYS))
		printf(" rekeys=%u", attr_u32(ct, TLSOFF_CONN_REKEYS));
	if (*attr_str(ct, TLSOFF_CONN_BACKEND_TLS))   /* the re-encrypted leg: version, cipher, ktls|userspace */
		printf(" backend-tls=%s/%s/%s", attr_str(ct, TLSOFF_CONN_BACKEND_VERSION),
		       attr_str(ct, TLSOFF_CONN_BACKEND_CIPHER), attr_str(ct, TLSOFF_CONN_BACKEND_TLS));
	if (*why)
		printf(" why=\"%s\"", why);
	const char *nic = attr_str(ct, TLSOFF_CONN_NIC_OFFLOAD);
	if (*nic)
		printf(" nic=\"%s\"", nic);
	putchar('\n');
	return 0;
}

static int show(struct ctl *c, int argc, char **argv)
{
	static const struct { const char *kw; int attr; } filters[] = {
		{ "frontend", TLSOFF_FILTER_FRONTEND }, { "backend", TLSOFF_FILTER_BACKEND },
		{ "datapath", TLSOFF_FILTER_DATAPATH } };
	const char *val[3] = { NULL, NULL, NULL };
	for (int i = 1; i < argc; i += 2) {
		size_t f = 0;
		while (f < 3 && strcmp(filters[f].kw, argv[i]))
			f++;
		if (f == 3)
			return ctl_usage(c, "conn", "conn show: unknown filter '%s' (frontend, backend, datapath)", argv[i]);
		if (i + 1 >= argc)
			return ctl_usage(c, "conn", "conn show: '%s' needs a value", argv[i]);
		val[f] = argv[i + 1];
	}
	if (val[2] && strcmp(val[2], "splice") && strcmp(val[2], "userspace") && strcmp(val[2], "sockmap"))
		return ctl_usage(c, "conn", "conn show: datapath is splice, userspace or sockmap, not '%s'", val[2]);
	struct nl_msg *m = ctl_get_request(c, TLSOFF_CMD_CONN_GET, NULL);
	if (!m)
		return EXIT_REFUSED;
	if (val[0] || val[1] || val[2]) {
		struct nlattr *n = nla_nest_start(m, TLSOFF_A_FILTER);
		for (size_t f = 0; n && f < 3; f++)
			if (val[f] && nla_put_string(m, filters[f].attr, val[f]) < 0)
				n = NULL;
		if (!n) {
			nlmsg_free(m);
			return ctl_refused(c, "conn show: filter too long");
		}
		nla_nest_end(m, n);
	}
	unsigned count = 0;
	return ctl_show(c, m, print_conn, true, &count);
}

static int kill_conn(struct ctl *c, int argc, char **argv)
{
	char *end;
	if (argc != 2)
		return ctl_usage(c, "conn", "usage: conn kill ID");
	errno = 0;
	unsigned long long id = strtoull(argv[1], &end, 10);
	if (errno || *end || end == argv[1] || id == 0)
		return ctl_usage(c, "conn", "conn kill: '%s' is not a connection id (see conn show)", argv[1]);
	if (!ctl_ipc(c))
		return EXIT_REFUSED;
	struct nl_msg *m = ipc_msg(c->ipc, TLSOFF_CMD_CONN_KILL, false);
	if (m && nla_put_u64(m, TLSOFF_A_ID, id) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return ctl_request(c, m);
}

int cmd_conn(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("conn") : ctl_usage(c, "conn", "conn: missing verb (show, kill)");
	if (!strcmp(argv[0], "show") || !strcmp(argv[0], "list"))
		return show(c, argc, argv);
	if (!strcmp(argv[0], "kill"))
		return kill_conn(c, argc, argv);
	return ctl_usage(c, "conn", "conn: unknown verb '%s' (show, kill)", argv[0]);
}
