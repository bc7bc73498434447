/* Unit tests for the control-protocol messages (datapath/ctl_msg.c): every configuration command survives
 * encode -> decode unchanged, and the strict parser refuses what it must, naming the problem. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsoff/ctl_msg.h"
#include "run_suite.h"

static char err[512];

static void parse_text(const char *text, struct cmd *c)
{
	static char buf[2048];
	char *argv[64];
	snprintf(buf, sizeof(buf), "%s", text);
	int argc = cmd_split(buf, argv, 64, err, sizeof(err));
	ck_assert_int_gt(argc, 0);
	ck_assert_msg(cmd_parse(argc, argv, c, err, sizeof(err)) == 0, "%s: %s", text, err);
}

static const char *const commands[] = {
	"frontend add web listen 127.0.0.1:8443 cert /a/c.pem key /a/k.pem cert \"/b/with space.pem\" key /b/k.pem "
	"backend app alpn h2,http/1.1 tls-min 1.3 datapath splice handshake-timeout 1234 idle-timeout 99 max-conns 5",
	"frontend add plain listen [::1]:443 cert c key k backend b",
	"frontend add st listen 127.0.0.1:443 cert a key k ocsp /o/a.der cert b key kb cert c key kc ocsp c.der backend b",
	"frontend add mtls listen 127.0.0.1:8443 cert /a/c.pem key /a/k.pem backend app client-ca /ca/clients.pem",
	"frontend add mopt listen 127.0.0.1:8443 cert /a/c.pem key /a/k.pem backend app client-ca \"/c a.pem\" "
	"client-verify optional",
	"frontend add nic listen 127.0.0.1:8444 cert c key k backend b nic-offload prefer",
	"frontend add raw listen 127.0.0.1:80 plain backend app idle-timeout 5000 max-conns 3",
	"frontend add pt listen 127.0.0.1:443 passthrough sni *.a.test=x sni b.test=y default z handshake-timeout 700",
	"frontend del web",
	"backend add app server 127.0.0.1:1 server [::1]:2 balance leastconn proxy-protocol v2 connect-timeout 77",
	"backend add up server 127.0.0.1:443 tls ca /ca.pem sni app.test cert /cl.pem key /cl.key connect-timeout 900",
	"backend add up2 server [::1]:443 tls verify off",
	"backend del app",
	"server add app 127.0.0.1:9",
	"server del app 127.0.0.1:9",
	"server drain app 127.0.0.1:9",
	"server enable app 127.0.0.1:9",
	"cert add web cert /x.pem key /x.key",
	"cert replace web cert /y.pem key /y.key old /x.pem",
	"cert add web cert /z.pem key /z.key ocsp /z.der",
	"cert replace web cert /y.pem key /y.key ocsp \"/y 2.der\" old /x.pem",
	"cert del web /y.pem",
	"tickets keys /etc/tlsoff/fleet.keys",
	"metrics listen [::1]:9100",
	"metrics off",
};

/* struct cmd has padding and unused union space: compare what the command means, via its text form. */
static void collect(const char *text, void *arg)
{
	strcat(arg, text);
}

static void describe(const struct cmd *c, char *out, size_t len)
{
	struct config cfg = { 0 };
	if (c->object == CMD_FRONTEND && c->verb == CMD_ADD) {
		cfg.frontends = (struct frontend_conf *)&c->u.frontend;
		cfg.nfrontends = 1;
	} else if (c->object == CMD_BACKEND && c->verb == CMD_ADD) {
		cfg.backends = (struct backend_conf *)&c->u.backend;
		cfg.nbackends = 1;
	} else if (c->object == CMD_TICKETS) {
		snprintf(cfg.ticket_keys, sizeof(cfg.ticket_keys), "%s", c->u.tickets.keys);
	} else if (c->object == CMD_METRICS) {
		cfg.metrics = c->u.metrics;
	}
	out[0] = '\0';
	config_format(&cfg, collect, out);   /* one line, well below len */
	size_t n = strlen(out);
	bool del = (c->object == CMD_FRONTEND || c->object == CMD_BACKEND) && c->verb == CMD_DEL;
	bool srv = c->object == CMD_SERVER, crt = c->object == CMD_CERT;
	snprintf(out + n, len - n, "|%d %d|%s|%s %s|%s %s %s %s %s", c->object, c->verb, del ? c->u.name : "",
		 srv ? c->u.server.backend : "", srv ? c->u.server.addr.text : "", crt ? c->u.cert.frontend : "",
		 crt ? c->u.cert.cert.chain : "", crt ? c->u.cert.cert.key : "", crt ? c->u.cert.old : "",
		 crt ? c->u.cert.cert.ocsp : "");
}

START_TEST(command_round_trip)
{
	struct cmd *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	static char a[8192], b[8192];
	parse_text(commands[_i], in);
	struct nl_msg *m = ctl_cmd_encode(in, 42);
	ck_assert_ptr_nonnull(m);
	struct nlmsghdr *h = nlmsg_hdr(m);
	ck_assert_uint_eq(h->nlmsg_seq, 42);
	ck_assert_int_eq(ctl_msg_check(h, err, sizeof(err)), 0);
	ck_assert_msg(ctl_parse_msg(h, tb, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(ctl_cmd_decode(h, tb, out, err, sizeof(err)) == 0, "%s: %s", commands[_i], err);
	describe(in, a, sizeof(a));
	describe(out, b, sizeof(b));
	ck_assert_str_eq(a, b);
	nlmsg_free(m);
	free(in);
	free(out);
}
END_TEST

/* A message with raw attribute bytes after our header. */
static struct nlmsghdr *raw(int type, const void *attrs, size_t len, int version)
{
	static char buf[4096];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	memset(buf, 0, sizeof(buf));
	h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + 4 + len);
	h->nlmsg_type = (uint16_t)type;
	h->nlmsg_flags = NLM_F_REQUEST;
	((struct tlsoff_ctlhdr *)NLMSG_DATA(h))->version = (uint8_t)version;
	if (len)
		memcpy(buf + NLMSG_HDRLEN + 4, attrs, len);
	return h;
}

static const struct {
	const char *what;
	unsigned char attrs[16];
	size_t len;
	const char *want;
} bad_attrs[] = {
	{ "unknown type", { 8, 0, 99, 0, 'x', 0, 0, 0 }, 8, "unknown attribute 99" },
	{ "type zero", { 8, 0, 0, 0, 'x', 0, 0, 0 }, 8, "unknown attribute 0" },
	{ "unterminated string", { 7, 0, TLSOFF_A_NAME, 0, 'a', 'b', 'c', 0 }, 8, "bad string" },
	{ "embedded NUL", { 8, 0, TLSOFF_A_NAME, 0, 'a', 0, 'c', 0 }, 8, "bad string" },
	{ "u64 of 4 bytes", { 8, 0, TLSOFF_A_ID, 0, 1, 2, 3, 4 }, 8, "bad u64" },
	{ "truncated", { 12, 0, TLSOFF_A_NAME, 0, 'a', 0, 0, 0 }, 8, "trailing bytes" },
};

START_TEST(strict_parser_refuses)
{
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	struct nlmsghdr *h = raw(TLSOFF_CMD_FRONTEND_DEL, bad_attrs[_i].attrs, bad_attrs[_i].len, TLSOFF_CTL_VERSION);
	ck_assert_int_eq(ctl_msg_check(h, err, sizeof(err)), 0);
	ck_assert_int_eq(ctl_parse_msg(h, tb, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, bad_attrs[_i].want), "%s: got '%s', want '%s'", bad_attrs[_i].what, err,
		      bad_attrs[_i].want);
}
END_TEST

START_TEST(lenient_client_skips_unknown)
{
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	unsigned char attrs[] = { 8, 0, 99, 0, 'x', 0, 0, 0, 8, 0, TLSOFF_A_NAME, 0, 'w', 'e', 'b', 0 };
	struct nlmsghdr *h = raw(TLSOFF_CMD_FRONTEND_DEL, attrs, sizeof(attrs), TLSOFF_CTL_VERSION);
	ctl_parse_lenient = true;
	ck_assert_int_eq(ctl_parse_msg(h, tb, err, sizeof(err)), 0);
	ctl_parse_lenient = false;
	ck_assert_str_eq(nla_get_string(tb[TLSOFF_A_NAME]), "web");
}
END_TEST

START_TEST(version_and_framing)
{
	struct nlmsghdr *h = raw(TLSOFF_CMD_STATUS_GET, NULL, 0, 7);
	ck_assert_int_eq(ctl_msg_check(h, err, sizeof(err)), -EPROTONOSUPPORT);
	ck_assert_msg(strstr(err, "version 7"), "%s", err);
	h->nlmsg_len = 8;
	ck_assert_int_eq(ctl_msg_check(h, err, sizeof(err)), -EPROTO);
	h->nlmsg_len = NLMSG_HDRLEN;   /* our type but no tlsoff header */
	ck_assert_int_eq(ctl_msg_check(h, err, sizeof(err)), -EPROTO);
}
END_TEST

START_TEST(decode_validates_like_the_file)
{
	/* a frontend whose listen address is not numeric: cmd_parse's message comes back */
	struct nl_msg *m = ctl_msg_new(TLSOFF_CMD_FRONTEND_ADD, NLM_F_REQUEST, 1);
	struct nlattr *tb[TLSOFF_A_MAX + 1], *fe = nla_nest_start(m, TLSOFF_A_FRONTEND);
	struct cmd *c = malloc(sizeof(*c));
	nla_put_string(m, TLSOFF_FE_NAME, "web");
	nla_put_string(m, TLSOFF_FE_LISTEN, "example.com:443");
	nla_nest_end(m, fe);
	ck_assert_int_eq(ctl_parse_msg(nlmsg_hdr(m), tb, err, sizeof(err)), 0);
	ck_assert_int_eq(ctl_cmd_decode(nlmsg_hdr(m), tb, c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "expected a numeric IPv4 or [IPv6] address"), "%s", err);
	nlmsg_free(m);
	free(c);
}
END_TEST

START_TEST(ack_carries_the_message)
{
	struct nlmsghdr *req = raw(TLSOFF_CMD_FRONTEND_DEL, NULL, 0, TLSOFF_CTL_VERSION);
	req->nlmsg_seq = 9;
	struct nl_msg *m = ctl_ack_new(req, -ENOENT, "no frontend 'x'");
	struct nlmsghdr *h = nlmsg_hdr(m);
	const struct nlmsgerr *e = nlmsg_data(h);
	ck_assert_uint_eq(h->nlmsg_type, NLMSG_ERROR);
	ck_assert_uint_eq(h->nlmsg_seq, 9);
	ck_assert_int_eq(e->error, -ENOENT);
	ck_assert(h->nlmsg_flags & NLM_F_ACK_TLVS);
	struct nlattr *a = nla_find((struct nlattr *)((char *)e + NLMSG_ALIGN(sizeof(*e))),
				    (int)(h->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(sizeof(*e))), NLMSGERR_ATTR_MSG);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(nla_get_string(a), "no frontend 'x'");
	nlmsg_free(m);
}
END_TEST

/* A takeover message: the listener's attributes pass the strict policies, a wrong type does not. */
START_TEST(takeover_listener_policy)
{
	struct nl_msg *m = ctl_msg_new(TLSOFF_CMD_TAKEOVER, NLM_F_MULTI, 3);
	struct nlattr *n = nla_nest_start(m, TLSOFF_A_LISTENER);
	ck_assert_int_eq(nla_put_u32(m, TLSOFF_LSN_KIND, TLSOFF_LSN_KIND_FRONTEND), 0);
	ck_assert_int_eq(nla_put_string(m, TLSOFF_LSN_FRONTEND, "edge"), 0);
	ck_assert_int_eq(nla_put_string(m, TLSOFF_LSN_LISTEN, "127.0.0.1:8443"), 0);
	ck_assert_int_eq(nla_put_u32(m, TLSOFF_LSN_WORKER, 1), 0);
	nla_nest_end(m, n);
	struct nlattr *tb[TLSOFF_A_MAX + 1], *lt[TLSOFF_LSN_MAX + 1];
	ck_assert_msg(ctl_parse_msg(nlmsg_hdr(m), tb, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(tb[TLSOFF_A_LISTENER]);
	ck_assert_msg(ctl_parse_nested(lt, TLSOFF_LSN_MAX, tb[TLSOFF_A_LISTENER], ctl_lsn_policy, "listener", err,
				       sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(nla_get_string(lt[TLSOFF_LSN_FRONTEND]), "edge");
	ck_assert_uint_eq(nla_get_u32(lt[TLSOFF_LSN_WORKER]), 1);
	ck_assert_str_eq(ctl_cmd_name(TLSOFF_CMD_TAKEOVER), "takeover");
	ck_assert_str_eq(ctl_cmd_name(TLSOFF_CMD_TAKEOVER_DONE), "takeover done");
	nlmsg_free(m);

	m = ctl_msg_new(TLSOFF_CMD_TAKEOVER, NLM_F_MULTI, 4);
	n = nla_nest_start(m, TLSOFF_A_LISTENER);
	nla_put_string(m, TLSOFF_LSN_WORKER, "seven");   /* 6 bytes where a u32 belongs */
	nla_nest_end(m, n);
	ck_assert_int_eq(ctl_parse_msg(nlmsg_hdr(m), tb, err, sizeof(err)), 0);
	ck_assert_int_eq(ctl_parse_nested(lt, TLSOFF_LSN_MAX, tb[TLSOFF_A_LISTENER], ctl_lsn_policy, "listener", err,
					  sizeof(err)), -EINVAL);
	nlmsg_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl_msg");
	TCase *tc = tcase_create("protocol");
	tcase_add_loop_test(tc, command_round_trip, 0, sizeof(commands) / sizeof(commands[0]));
	tcase_add_loop_test(tc, strict_parser_refuses, 0, sizeof(bad_attrs) / sizeof(bad_attrs[0]));
	tcase_add_test(tc, lenient_client_skips_unknown);
	tcase_add_test(tc, version_and_framing);
	tcase_add_test(tc, decode_validates_like_the_file);
	tcase_add_test(tc, ack_carries_the_message);
	tcase_add_test(tc, takeover_listener_policy);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
