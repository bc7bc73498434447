/* Unit tests for the command grammar shared by tlsoffd -f, tlsoffctl and -batch (datapath/config.c). */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>

#include "tlsoff/config.h"
#include "run_suite.h"

static char err[TLSOFF_ERR_MAX];

/* Parse a command given as one string. */
static int parse(const char *text, struct cmd *c)
{
	static char buf[4096];
	char *argv[64];
	snprintf(buf, sizeof(buf), "%s", text);
	int argc = cmd_split(buf, argv, 64, err, sizeof(err));
	ck_assert_int_ge(argc, 0);
	return cmd_parse(argc, argv, c, err, sizeof(err));
}

static char *write_file(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/tlsoff-config-test.XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(split_words_quotes_comments)
{
	char line[] = "frontend  add \"my \\\"fe\\\"\"\tlisten 1.2.3.4:5 # a comment";
	char *argv[8];
	int argc = cmd_split(line, argv, 8, err, sizeof(err));
	ck_assert_int_eq(argc, 5);
	ck_assert_str_eq(argv[2], "my \"fe\"");
	ck_assert_str_eq(argv[4], "1.2.3.4:5");

	char blank[] = "   # only a comment\n";
	ck_assert_int_eq(cmd_split(blank, argv, 8, err, sizeof(err)), 0);

	char bad[] = "backend add \"oops";
	ck_assert_int_eq(cmd_split(bad, argv, 8, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unterminated quote");

	char many[] = "a b c d";
	ck_assert_int_eq(cmd_split(many, argv, 3, err, sizeof(err)), -1);
}
END_TEST

START_TEST(backend_add_full)
{
	struct cmd c;
	ck_assert_int_eq(parse("backend add web server 127.0.0.1:8080 server [::1]:9090 balance leastconn "
			       "proxy-protocol v2 connect-timeout 250", &c), 0);
	ck_assert_int_eq(c.object, CMD_BACKEND);
	ck_assert_int_eq(c.verb, CMD_ADD);
	ck_assert_str_eq(c.u.backend.name, "web");
	ck_assert_uint_eq(c.u.backend.nservers, 2);
	const struct sockaddr_in *a = (const void *)&c.u.backend.servers[0].ss;
	ck_assert_int_eq(a->sin_family, AF_INET);
	ck_assert_int_eq(ntohs(a->sin_port), 8080);
	ck_assert_uint_eq(ntohl(a->sin_addr.s_addr), 0x7f000001);
	const struct sockaddr_in6 *b = (const void *)&c.u.backend.servers[1].ss;
	ck_assert_int_eq(b->sin6_family, AF_INET6);
	ck_assert_int_eq(ntohs(b->sin6_port), 9090);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&b->sin6_addr));
	ck_assert_str_eq(c.u.backend.servers[1].text, "[::1]:9090");
	ck_assert_int_eq(c.u.backend.balance, BALANCE_LEASTCONN);
	ck_assert_uint_eq(c.u.backend.proxy_protocol, 2);
	ck_assert_uint_eq(c.u.backend.connect_timeout_ms, 250);
}
END_TEST

START_TEST(backend_defaults)
{
	struct cmd c;
	ck_assert_int_eq(parse("backend add b server localhost:80", &c), 0);
	ck_assert_int_eq(c.u.backend.balance, BALANCE_ROUNDROBIN);
	ck_assert_uint_eq(c.u.backend.proxy_protocol, 0);
	ck_assert_uint_eq(c.u.backend.connect_timeout_ms, TLSOFF_DEFAULT_CONNECT_TIMEOUT_MS);
	ck_assert_uint_eq(c.u.backend.nservers, 1);   /* localhost resolved */
}
END_TEST

/* Re-encryption: `tls` and its options, with safe defaults (verify on, system store, the server's name). */
START_TEST(backend_tls_options)
{
	struct cmd c;
	ck_assert_int_eq(parse("backend add b server 127.0.0.1:443", &c), 0);
	ck_assert_int_eq(c.u.backend.tls, 0);
	ck_assert_int_eq(parse("backend add b server 127.0.0.1:443 tls", &c), 0);
	ck_assert_int_eq(c.u.backend.tls, 1);
	ck_assert_int_eq(c.u.backend.tls_verify, 1);
	ck_assert_str_eq(c.u.backend.tls_ca, "");
	ck_assert_str_eq(c.u.backend.tls_sni, "");
	ck_assert_msg(parse("backend add b server 127.0.0.1:443 tls ca /etc/ca.pem sni app.internal cert /c.pem "
			    "key /k.pem connect-timeout 700", &c) == 0, "%s", err);
	ck_assert_str_eq(c.u.backend.tls_ca, "/etc/ca.pem");
	ck_assert_str_eq(c.u.backend.tls_sni, "app.internal");
	ck_assert_str_eq(c.u.backend.tls_cert, "/c.pem");
	ck_assert_str_eq(c.u.backend.tls_key, "/k.pem");
	ck_assert_uint_eq(c.u.backend.connect_timeout_ms, 700);
	ck_assert_int_eq(parse("backend add b server 127.0.0.1:443 tls verify off", &c), 0);
	ck_assert_int_eq(c.u.backend.tls_verify, 0);
}
END_TEST

START_TEST(frontend_add_full)
{
	struct cmd c;
	ck_assert_int_eq(parse("frontend add edge listen [::]:8443 cert a.pem key a.key cert b.pem key b.key "
			       "backend web alpn h2,http/1.1 tls-min 1.3 datapath splice handshake-timeout 3000 "
			       "idle-timeout 60000 max-conns 1000", &c), 0);
	const struct frontend_conf *f = &c.u.frontend;
	ck_assert_str_eq(f->name, "edge");
	ck_assert_int_eq(f->listen.ss.ss_family, AF_INET6);
	ck_assert_uint_eq(f->ncerts, 2);
	ck_assert_str_eq(f->certs[0].chain, "a.pem");
	ck_assert_str_eq(f->certs[0].key, "a.key");
	ck_assert_str_eq(f->certs[1].chain, "b.pem");
	ck_assert_str_eq(f->certs[1].key, "b.key");
	ck_assert_str_eq(f->backend, "web");
	ck_assert_uint_eq(f->alpn_len, 12);
	ck_assert_mem_eq(f->alpn, "\x02h2\x08http/1.1", 12);
	ck_assert_int_eq(f->tls_min, TLS1_3_VERSION);
	ck_assert_int_eq(f->datapath, DATAPATH_SPLICE);
	ck_assert_uint_eq(f->handshake_timeout_ms, 3000);
	ck_assert_uint_eq(f->idle_timeout_ms, 60000);
	ck_assert_uint_eq(f->max_conns, 1000);
}
END_TEST

START_TEST(frontend_defaults)
{
	struct cmd c;
	ck_assert_int_eq(parse("frontend add f listen 127.0.0.1:443 cert c.pem key k.pem backend b", &c), 0);
	ck_assert_int_eq(c.u.frontend.tls_min, TLS1_2_VERSION);
	ck_assert_int_eq(c.u.frontend.datapath, DATAPATH_AUTO);
	ck_assert_uint_eq(c.u.frontend.handshake_timeout_ms, TLSOFF_DEFAULT_HANDSHAKE_TIMEOUT_MS);
	ck_assert_uint_eq(c.u.frontend.idle_timeout_ms, TLSOFF_DEFAULT_IDLE_TIMEOUT_MS);
	ck_assert_uint_eq(c.u.frontend.max_conns, 0);
	ck_assert_uint_eq(c.u.frontend.alpn_len, 0);
	ck_assert_int_eq(c.u.frontend.nic_offload, NIC_OFFLOAD_OFF);
	ck_assert_int_eq(parse("frontend add f listen 127.0.0.1:443 cert c.pem key k.pem backend b nic-offload prefer", &c), 0);
	ck_assert_int_eq(c.u.frontend.nic_offload, NIC_OFFLOAD_PREFER);
}
END_TEST

/* Every error names what is wrong in words an operator understands. */
static const struct { const char *cmd, *msg; } bad_cmds[] = {
	{ "", "empty command" },
	{ "listener add x", "unknown object 'listener' (expected backend, frontend, server, cert, tickets, metrics or user)" },
	{ "backend make x", "backend: unknown verb 'make' (expected add or del)" },
	{ "backend add", "backend add: missing NAME" },
	{ "backend add b@d server 1.2.3.4:5", "backend add: bad name 'b@d'" },
	{ "backend add b", "backend b: missing 'server'" },
	{ "backend add b server 1.2.3.4", "backend b: server: bad address '1.2.3.4': expected HOST:PORT" },
	{ "backend add b server 1.2.3.4:0", "backend b: server: bad port in '1.2.3.4:0'" },
	{ "backend add b server 1.2.3.4:70000", "backend b: server: bad port" },
	{ "backend add b server ::1:80", "IPv6 addresses need brackets" },
	{ "backend add b server 1.2.3.4:5 balance random", "'random' is not one of roundrobin|leastconn" },
	{ "backend add b server 1.2.3.4:5 proxy-protocol v1", "'v1' is not one of v2" },
	{ "backend add b server 1.2.3.4:5 connect-timeout 0", "connect-timeout: '0' is not a time in milliseconds" },
	{ "backend add b server 1.2.3.4:5 connect-timeout -5", "is not a time in milliseconds" },
	{ "backend add b server 1.2.3.4:5 connect-timeout", "option 'connect-timeout' needs a value" },
	{ "backend add b server 1.2.3.4:5 balance leastconn balance leastconn", "option 'balance' given twice" },
	{ "backend add b server 1.2.3.4:5 weight 3", "unknown option 'weight' (expected one of: server, balance" },
	{ "frontend add f cert c key k backend b", "frontend f: missing 'listen'" },
	{ "frontend add f listen 127.0.0.1:1 backend b", "frontend f: missing 'cert'" },
	{ "frontend add f listen 127.0.0.1:1 cert c backend b", "frontend f: cert 'c' has no key" },
	{ "frontend add f listen 127.0.0.1:1 plain cert c key k backend b", "'cert' does not apply to a plain frontend" },
	{ "frontend add f listen 127.0.0.1:1 plain", "frontend f: missing 'backend'" },
	{ "frontend add f listen 127.0.0.1:1 passthrough", "passthrough needs sni PATTERN=BACKEND routes or a default" },
	{ "frontend add f listen 127.0.0.1:1 passthrough sni a.com backend b", "sni: expected PATTERN=BACKEND" },
	{ "frontend add f listen 127.0.0.1:1 passthrough sni a.com=b sni A.com=c", "sni: 'a.com' routed twice" },
	{ "frontend add f listen 127.0.0.1:1 passthrough sni *x.com=b", "a wildcard is '*.' then a domain" },
	{ "frontend add f listen 127.0.0.1:1 passthrough sni a.com=b alpn h2", "'alpn' does not apply to a passthrough" },
	{ "frontend add f listen 127.0.0.1:1 plain passthrough backend b", "plain or passthrough, not both" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b sni a.com=b", "sni routes need passthrough" },
	{ "frontend add f listen 127.0.0.1:1 passthrough default a backend b", "'default' and 'backend' name the same" },
	{ "frontend add f listen 127.0.0.1:1 key k cert c backend b", "key 'k' must follow its cert" },
	{ "frontend add f listen 127.0.0.1:1 ocsp o cert c key k backend b", "ocsp 'o' must follow its cert's key" },
	{ "frontend add f listen 127.0.0.1:1 cert c ocsp o key k backend b", "ocsp 'o' must follow its cert's key" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k ocsp o ocsp p backend b", "ocsp 'p' must follow its cert's key" },
	{ "frontend add f listen 127.0.0.1:1 plain backend b ocsp o", "ocsp 'o' must follow" },
	{ "cert add f cert c key k ocsp", "option 'ocsp' needs a value" },
	{ "cert del f c ocsp o", "usage: cert del FRONTEND CHAIN.pem" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k cert d backend b", "cert 'd' has no key" },
	{ "frontend add f listen 127.0.0.1:1 cert c cert d key k backend b", "cert 'c' has no key" },
	{ "frontend add f listen localhost:1 cert c key k backend b", "expected a numeric IPv4 or [IPv6] address" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b tls-min 1.1", "'1.1' is not one of 1.2|1.3" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b alpn h2,", "alpn: trailing comma" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b alpn ,h2", "alpn: empty" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b max-conns many", "'many' is not a positive count" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k", "frontend f: missing 'backend'" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b nic-offload require", "'require' is not one of off|prefer" },
	{ "frontend add f listen 127.0.0.1:1 plain backend b nic-offload prefer", "'nic-offload' does not apply to a plain" },
	{ "frontend del f extra", "frontend del: unexpected 'extra' after the name" },
	{ "backend add b server 1.2.3.4:5 ca /ca.pem", "backend b: 'ca' needs 'tls'" },
	{ "backend add b server 1.2.3.4:5 verify off", "'verify' needs 'tls'" },
	{ "backend add b server 1.2.3.4:5 sni a.test", "'sni' needs 'tls'" },
	{ "backend add b server 1.2.3.4:5 tls verify maybe", "verify: 'maybe' is not one of on|off" },
	{ "backend add b server 1.2.3.4:5 tls sni \"a b\"", "sni: bad host name 'a b'" },
	{ "backend add b server 1.2.3.4:5 tls cert /c.pem", "needs both 'cert CHAIN.pem' and 'key KEY.pem'" },
	{ "backend add b server 1.2.3.4:5 tls key /k.pem", "needs both 'cert CHAIN.pem' and 'key KEY.pem'" },
	{ "backend add b server 1.2.3.4:5 tls ca /ca.pem verify off", "'ca' with 'verify off' would not be used" },
	{ "backend add b server 1.2.3.4:5 tls tls", "option 'tls' given twice" },
	{ "backend add b server 1.2.3.4:5 tls ca", "option 'ca' needs a value" },
	{ "tickets", "tickets: expected 'keys FILE'" },
	{ "tickets key /k", "tickets: expected 'keys FILE'" },
	{ "tickets keys", "usage: tickets keys FILE" },
	{ "tickets keys /a /b", "usage: tickets keys FILE" },
	{ "tickets keys \"\"", "tickets keys: bad path ''" },
	{ "metrics", "metrics: expected 'listen ADDR:PORT' or 'off'" },
	{ "metrics listen", "usage: metrics listen ADDR:PORT | metrics off" },
	{ "user", "usage: user NAME [group GROUP]" },
	{ "user a b", "usage: user NAME [group GROUP]" },
	{ "user a gruop b", "usage: user NAME [group GROUP]" },
	{ "metrics listen 127.0.0.1", "metrics listen: " },
	{ "metrics off now", "metrics: expected 'listen ADDR:PORT' or 'off'" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b client-verify optional",
	  "frontend f: 'client-verify' needs 'client-ca CA.pem'" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b client-ca ca.pem client-verify none",
	  "client-verify: 'none' is not one of required|optional" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b client-ca", "option 'client-ca' needs a value" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b client-ca \"\"", "client-ca: bad path ''" },
	{ "frontend add f listen 127.0.0.1:1 cert c key k backend b client-ca a client-ca b",
	  "option 'client-ca' given twice" },
	{ "frontend add f listen 127.0.0.1:1 plain backend b client-ca ca.pem",
	  "'client-ca' does not apply to a plain frontend" },
	{ "frontend add f listen 127.0.0.1:1 passthrough default b client-ca ca.pem client-verify optional",
	  "'client-ca' does not apply to a passthrough frontend" },
	/* found by tests/fuzz/config.c: a dump would write these unquoted, or over two lines */
	{ "frontend add f listen 127.0.0.1:1 cert \"a\rb.pem\" key k.pem backend b", "control character 0x0d" },
	{ "cert add f cert \"a\nb.pem\" key k.pem", "control character 0x0a" },
	{ "tickets keys \"k\x7f\"", "control character 0x7f" },
};

START_TEST(bad_commands)
{
	struct cmd c;
	ck_assert_msg(parse(bad_cmds[_i].cmd, &c) == -1, "accepted: %s", bad_cmds[_i].cmd);
	ck_assert_msg(strstr(err, bad_cmds[_i].msg), "'%s': got '%s', want '%s'", bad_cmds[_i].cmd, err,
		      bad_cmds[_i].msg);
}
END_TEST

START_TEST(load_good_file)
{
	struct config cfg;
	const char *path = write_file("# tlsoff\n\n"
				      "frontend add edge listen 127.0.0.1:8443 cert c.pem key /abs/k.pem backend app\n"
				      "backend add app server 127.0.0.1:8080   # defined after its user: fine\n"
				      "backend add spare server 127.0.0.1:8081\n"
				      "backend del spare\n");
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.nfrontends, 1);
	ck_assert_uint_eq(cfg.nbackends, 1);
	ck_assert_uint_eq(cfg.frontends[0].line, 3);
	char want[128];   /* relative certificate paths resolve against the file's directory */
	snprintf(want, sizeof(want), "%.*s/c.pem", (int)(strrchr(path, '/') - path), path);
	ck_assert_str_eq(cfg.frontends[0].certs[0].chain, want);
	ck_assert_uint_eq(cfg.backends[0].line, 4);
	ck_assert_str_eq(cfg.frontends[0].certs[0].key, "/abs/k.pem");   /* absolute paths stay */
	config_free(&cfg);
	unlink(path);
}
END_TEST

static const struct { const char *text, *msg; } bad_files[] = {
	{ "backend add a server 127.0.0.1:1\nbackend add a server 127.0.0.1:2\n", ":2: backend 'a' already exists" },
	{ "backend add a server 127.0.0.1:1\n\nfrontend add f listen 127.0.0.1:9 cert c key k backend zzz\n",
	  ":3: frontend 'f': no backend 'zzz'" },
	{ "backend add a server 127.0.0.1:1\n"
	  "frontend add f listen 127.0.0.1:9 cert c key k backend a\n"
	  "frontend add g listen 127.0.0.1:9 cert c key k backend a\n",
	  ":3: frontend 'g': 127.0.0.1:9 is already the listen address of 'f'" },
	{ "backend add a server 127.0.0.1:1\nfrontend add f listen 127.0.0.1:9 cert c key k backend a\n"
	  "backend del a\n", ":3: backend 'a' is used by frontend 'f'" },
	{ "frontend del nope\n", ":1: no frontend 'nope'" },
	{ "backend add a server 127.0.0.1:1 \"unterminated\n", ":1: unterminated quote" },
	{ "tickets keys /a.keys\n# rotated\ntickets keys /b.keys\n", ":3: tickets keys given twice (first on line 1)" },
	{ "metrics listen 127.0.0.1:9100\nmetrics off\n", ":2: metrics given twice (first on line 1)" },
	{ "user nobody\nuser daemon\n", ":2: user given twice (first on line 1)" },
	{ "backend add a server 127.0.0.1:1\nfrontend add f listen 127.0.0.1:9 cert c key k backend a\n"
	  "metrics listen 127.0.0.1:9\n", ":3: metrics listen 127.0.0.1:9: frontend f listens there" },
	{ "metrics listen 127.0.0.1:9\nbackend add a server 127.0.0.1:1\n"
	  "frontend add f listen 127.0.0.1:9 cert c key k backend a\n", ":3: frontend 'f': 127.0.0.1:9 is the metrics address" },
};

START_TEST(load_bad_file)
{
	struct config cfg;
	const char *path = write_file(bad_files[_i].text);
	ck_assert_int_eq(config_load(path, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error does not start with the file name: %s", err);
	ck_assert_msg(strstr(err, bad_files[_i].msg), "got '%s', want '%s'", err, bad_files[_i].msg);
	ck_assert_uint_eq(cfg.nbackends + cfg.nfrontends, 0);   /* nothing half-loaded */
	unlink(path);
}
END_TEST

/* Runtime commands (server, cert) on a loaded configuration, then config_format: the dump reloads into
 * the same configuration and dumps identically (what `tlsoffctl config dump` promises). */
static void collect(const char *text, void *arg)
{
	char *out = arg;
	strcat(out, text);
	strcat(out, "\n");
}

static void apply(struct config *cfg, const char *text, const char *want_err)
{
	struct cmd c;
	int rc = parse(text, &c);
	if (rc == 0)
		rc = config_apply(cfg, &c, err, sizeof(err));
	if (want_err) {
		ck_assert_msg(rc < 0 && strstr(err, want_err), "%s: got '%s', want '%s'", text, rc ? err : "ok",
			      want_err);
	} else {
		ck_assert_msg(rc == 0, "%s: %s", text, err);
	}
}

START_TEST(runtime_commands_and_dump_round_trip)
{
	struct config cfg, again;
	static char dump1[8192], dump2[8192];
	char *path = strdup(write_file("backend add app server 127.0.0.1:8080 server 127.0.0.1:8081 balance leastconn "
				      "proxy-protocol v2\n"
				      "backend add up-tls server 127.0.0.1:8443 tls ca ca.pem sni app.test cert cl.pem key cl.key\n"
				      "backend add up-noverify server 127.0.0.1:8444 connect-timeout 900 tls verify off\n"
				      "frontend add edge listen 127.0.0.1:8443 cert /c/a.pem key /c/a.key backend app "
				      "alpn h2,http/1.1 tls-min 1.3 max-conns 7 nic-offload prefer\n"
				      "frontend add raw listen 127.0.0.1:8080 plain backend app idle-timeout 900\n"
				      "frontend add pt listen 127.0.0.1:9443 passthrough sni *.a.test=app sni b.test=app\n"));
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	apply(&cfg, "server add app 127.0.0.1:8082", NULL);
	apply(&cfg, "server add app 127.0.0.1:8082", "already has server 127.0.0.1:8082");
	apply(&cfg, "server drain app 127.0.0.1:8082", NULL);
	apply(&cfg, "server drain app 127.0.0.1:8081", NULL);
	apply(&cfg, "server del app 127.0.0.1:8081", NULL);   /* the drained bit of 8082 moves down with it */
	ck_assert_uint_eq(cfg.backends[0].nservers, 2);
	ck_assert_uint_eq(cfg.backends[0].drained, 2);
	apply(&cfg, "server enable app 127.0.0.1:9999", "has no server 127.0.0.1:9999");
	apply(&cfg, "server drain nope 127.0.0.1:1", "no backend 'nope'");
	apply(&cfg, "cert add edge cert \"/c/with space.pem\" key /c/b.key ocsp \"/c/b ocsp.der\"", NULL);
	apply(&cfg, "cert add edge cert /c/a.pem key /c/a.key", "already has cert /c/a.pem");
	apply(&cfg, "cert replace edge cert /c/a2.pem key /c/a2.key old /c/a.pem", NULL);
	ck_assert_str_eq(cfg.frontends[0].certs[0].chain, "/c/a2.pem");   /* still the default */
	apply(&cfg, "cert replace edge cert /c/x.pem key /c/x.key", "has no cert /c/x.pem to replace");
	apply(&cfg, "cert del edge /c/nope.pem", "has no cert /c/nope.pem");
	apply(&cfg, "cert del edge /c/a2.pem", NULL);
	apply(&cfg, "cert del edge \"/c/with space.pem\"", "last certificate");
	apply(&cfg, "server del app 127.0.0.1:8080", NULL);
	apply(&cfg, "server del app 127.0.0.1:8082", "last server");

	dump1[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump1);
	ck_assert_msg(strstr(dump1, "server drain app 127.0.0.1:8082\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "cert \"/c/with space.pem\" key /c/b.key ocsp \"/c/b ocsp.der\""), "%s", dump1);
	/* relative paths are the file's directory's, and every TLS option is written, verify included */
	ck_assert_msg(strstr(dump1, "backend add up-tls server 127.0.0.1:8443 balance roundrobin connect-timeout 5000 "
				    "tls ca /tmp/ca.pem verify on sni app.test cert /tmp/cl.pem key /tmp/cl.key\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "backend add up-noverify server 127.0.0.1:8444 balance roundrobin connect-timeout 900 "
				    "tls verify off\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "cert \"/c/with space.pem\" key /c/b.key"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "alpn h2,http/1.1 tls-min 1.3"), "%s", dump1);
	ck_assert_msg(strstr(dump1, " max-conns 7 nic-offload prefer\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "frontend add raw listen 127.0.0.1:8080 plain backend app idle-timeout 900\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "frontend add pt listen 127.0.0.1:9443 passthrough sni *.a.test=app sni b.test=app "
				    "handshake-timeout 10000 idle-timeout 300000\n"), "%s", dump1);
	const char *path2 = write_file(dump1);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump1);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump1, dump2);
	config_free(&cfg);
	config_free(&again);
	unlink(path);
	unlink(path2);
	free(path);
}
END_TEST

/* client-ca alone means required; the file path is relative to the configuration's directory; the dump
 * writes both words and reloads to the same dump. */
/* Found by tests/fuzz/config.c: a server added by name and drained was dumped as "server drain B NAME:PORT",
 * which the grammar refused (only numeric addresses), so the dump of that configuration did not load. */
START_TEST(drained_server_added_by_name_round_trip)
{
	struct config cfg, again;
	static char dump1[4096], dump2[4096];
	char *path = strdup(write_file("backend add app server localhost:8080 server 127.0.0.1:8081\n"));
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	apply(&cfg, "server drain app localhost:8080", NULL);   /* by the name, as written (not resolved again) */
	ck_assert_uint_eq(cfg.backends[0].drained, 1);
	apply(&cfg, "server enable app localhost:8080", NULL);
	ck_assert_uint_eq(cfg.backends[0].drained, 0);
	apply(&cfg, "server drain app localhost:8080", NULL);
	apply(&cfg, "server drain app nowhere.invalid:8080", "has no server nowhere.invalid:8080");
	dump1[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump1);
	ck_assert_msg(strstr(dump1, "server drain app localhost:8080\n"), "%s", dump1);
	const char *path2 = write_file(dump1);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump1);
	ck_assert_uint_eq(again.backends[0].drained, 1);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump1, dump2);
	config_free(&cfg);
	config_free(&again);
	unlink(path);
	unlink(path2);
	free(path);
}
END_TEST

START_TEST(client_certificates)
{
	struct cmd c;
	struct config cfg, again;
	static char dump1[4096], dump2[4096];
	ck_assert_int_eq(parse("frontend add f listen 127.0.0.1:1 cert c key k backend b", &c), 0);
	ck_assert_int_eq(c.u.frontend.client_verify, CLIENT_VERIFY_NONE);
	ck_assert_str_eq(c.u.frontend.client_ca, "");
	ck_assert_int_eq(parse("frontend add f listen 127.0.0.1:1 cert c key k backend b client-ca /ca.pem", &c), 0);
	ck_assert_int_eq(c.u.frontend.client_verify, CLIENT_VERIFY_REQUIRED);
	ck_assert_str_eq(c.u.frontend.client_ca, "/ca.pem");
	ck_assert_int_eq(parse("frontend add f listen 127.0.0.1:1 client-verify optional cert c key k backend b "
			       "client-ca \"/with space/ca.pem\"", &c), 0);
	ck_assert_int_eq(c.u.frontend.client_verify, CLIENT_VERIFY_OPTIONAL);
	ck_assert_str_eq(tlsoff_client_verify_name(CLIENT_VERIFY_OPTIONAL), "optional");
	ck_assert_str_eq(tlsoff_client_verify_name(CLIENT_VERIFY_REQUIRED), "required");

	char *path = strdup(write_file("backend add app server 127.0.0.1:8080 proxy-protocol v2\n"
				      "frontend add a listen 127.0.0.1:8443 cert /c/a.pem key /c/a.key backend app "
				      "client-ca cas/clients.pem\n"
				      "frontend add o listen 127.0.0.1:8444 cert /c/a.pem key /c/a.key backend app "
				      "client-ca \"/c/with space.pem\" client-verify optional\n"
				      "frontend add n listen 127.0.0.1:8445 cert /c/a.pem key /c/a.key backend app\n"));
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.frontends[0].client_ca, "/tmp/cas/clients.pem");   /* next to the file */
	dump1[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump1);
	ck_assert_msg(strstr(dump1, "idle-timeout 300000 client-ca /tmp/cas/clients.pem client-verify required\n"),
		      "%s", dump1);
	ck_assert_msg(strstr(dump1, "client-ca \"/c/with space.pem\" client-verify optional\n"), "%s", dump1);
	ck_assert_msg(strstr(dump1, "frontend add n listen 127.0.0.1:8445 cert /c/a.pem key /c/a.key backend app "
				    "tls-min 1.2 datapath auto handshake-timeout 10000 idle-timeout 300000\n"), "%s", dump1);
	const char *path2 = write_file(dump1);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump1);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump1, dump2);
	config_free(&cfg);
	config_free(&again);
	unlink(path);
	unlink(path2);
	free(path);
}
END_TEST

START_TEST(passthrough_routes)
{
	struct cmd c;
	ck_assert_msg(parse("frontend add pt listen 127.0.0.1:443 passthrough sni A.example.com=a sni *.example.com=w "
			    "sni b.example.com=b default d handshake-timeout 500", &c) == 0, "%s", err);
	const struct frontend_conf *f = &c.u.frontend;
	ck_assert_int_eq(f->mode, MODE_PASSTHROUGH);
	ck_assert_uint_eq(f->nroutes, 3);
	ck_assert_str_eq(tlsoff_route(f, "a.example.com"), "a");     /* patterns are lower-cased */
	ck_assert_str_eq(tlsoff_route(f, "B.EXAMPLE.COM"), "b");     /* exact beats the earlier wildcard */
	ck_assert_str_eq(tlsoff_route(f, "x.example.com"), "w");
	ck_assert_str_eq(tlsoff_route(f, "x.y.example.com"), "d");   /* a wildcard covers one label */
	ck_assert_str_eq(tlsoff_route(f, "example.com"), "d");
	ck_assert_str_eq(tlsoff_route(f, ""), "d");                  /* no SNI: the default */
	ck_assert_msg(parse("frontend add pt listen 127.0.0.1:443 passthrough sni a.com=a", &c) == 0, "%s", err);
	ck_assert_ptr_null(tlsoff_route(&c.u.frontend, "b.com"));   /* no default: refused */
	ck_assert_msg(parse("frontend add p listen 127.0.0.1:80 plain backend app", &c) == 0, "%s", err);
	ck_assert_int_eq(c.u.frontend.mode, MODE_PLAIN);
}
END_TEST

/* tickets keys FILE: a global directive; relative to the file's directory like certificates, written back
 * first by config_format, copied by config_copy, replaced by a runtime command. */
/* metrics listen ADDR:PORT | off: global like tickets keys; written back, copied, replaced at run time. */
START_TEST(metrics_listen)
{
	struct cmd c;
	struct config cfg, copy, again;
	static char dump[4096], dump2[4096];
	ck_assert_msg(parse("metrics listen [::1]:9100", &c) == 0, "%s", err);
	ck_assert_int_eq(c.object, CMD_METRICS);
	ck_assert_int_eq(c.verb, CMD_SET);
	ck_assert_str_eq(c.u.metrics.text, "[::1]:9100");
	ck_assert_msg(parse("metrics off", &c) == 0, "%s", err);
	ck_assert_str_eq(c.u.metrics.text, "");

	const char *path = write_file("backend add app server 127.0.0.1:8080\n"
				      "frontend add edge listen 127.0.0.1:8443 cert /c/a.pem key /c/a.key backend app\n"
				      "metrics listen 127.0.0.1:9100\n");
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.metrics.text, "127.0.0.1:9100");
	ck_assert_int_eq(config_copy(&copy, &cfg), 0);
	ck_assert_str_eq(copy.metrics.text, "127.0.0.1:9100");
	apply(&copy, "metrics listen 127.0.0.1:9200", NULL);
	ck_assert_str_eq(copy.metrics.text, "127.0.0.1:9200");
	apply(&copy, "metrics listen 127.0.0.1:8443", "frontend edge listens there");
	apply(&copy, "metrics off", NULL);
	ck_assert_str_eq(copy.metrics.text, "");
	ck_assert_str_eq(cfg.metrics.text, "127.0.0.1:9100");

	dump[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump);
	ck_assert_msg(strncmp(dump, "metrics listen 127.0.0.1:9100\n", 30) == 0, "%s", dump);
	const char *path2 = write_file(dump);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump, dump2);
	dump[0] = '\0';
	config_format(&copy, collect, dump);
	ck_assert_ptr_null(strstr(dump, "metrics"));
	unlink(path2);
	config_free(&cfg);
	config_free(&copy);
	config_free(&again);
}
END_TEST

/* user NAME [group GROUP]: parsed, copied, and written back by config dump so a dump starts the same daemon. */
START_TEST(user_directive)
{
	struct cmd c;
	struct config cfg, copy, again;
	static char dump[4096], dump2[4096];
	ck_assert_msg(parse("user tlsoff group ssl-cert", &c) == 0, "%s", err);
	ck_assert_int_eq(c.object, CMD_USER);
	ck_assert_str_eq(c.u.user.name, "tlsoff");
	ck_assert_str_eq(c.u.user.group, "ssl-cert");
	ck_assert_msg(parse("user nobody", &c) == 0, "%s", err);
	ck_assert_str_eq(c.u.user.group, "");

	const char *path = write_file("user nobody group nogroup\nbackend add app server 127.0.0.1:8080\n");
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.user, "nobody");
	ck_assert_str_eq(cfg.group, "nogroup");
	ck_assert_int_eq(config_copy(&copy, &cfg), 0);
	ck_assert_str_eq(copy.user, "nobody");
	ck_assert_str_eq(copy.group, "nogroup");
	dump[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump);
	ck_assert_msg(strstr(dump, "user nobody group nogroup\n") != NULL, "%s", dump);
	const char *path2 = write_file(dump);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump, dump2);
	unlink(path2);
	config_free(&cfg);
	config_free(&copy);
	config_free(&again);
}
END_TEST

START_TEST(tickets_keys)
{
	struct cmd c;
	struct config cfg, copy, again;
	static char dump[4096], dump2[4096];
	ck_assert_msg(parse("tickets keys \"/etc/tlsoff/ticket keys\"", &c) == 0, "%s", err);
	ck_assert_int_eq(c.object, CMD_TICKETS);
	ck_assert_int_eq(c.verb, CMD_SET);
	ck_assert_str_eq(c.u.tickets.keys, "/etc/tlsoff/ticket keys");

	char *path = strdup(write_file("backend add app server 127.0.0.1:8080\n"
				       "frontend add edge listen 127.0.0.1:8443 cert /c/a.pem key /c/a.key backend app\n"
				       "tickets keys fleet.keys   # shared by every node\n"));
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
	char want[128];
	snprintf(want, sizeof(want), "%.*s/fleet.keys", (int)(strrchr(path, '/') - path), path);
	ck_assert_str_eq(cfg.ticket_keys, want);

	ck_assert_int_eq(config_copy(&copy, &cfg), 0);
	ck_assert_str_eq(copy.ticket_keys, want);
	apply(&copy, "tickets keys /other.keys", NULL);   /* at run time: replaces */
	ck_assert_str_eq(copy.ticket_keys, "/other.keys");
	ck_assert_str_eq(cfg.ticket_keys, want);

	dump[0] = dump2[0] = '\0';
	config_format(&cfg, collect, dump);
	char line[200];
	snprintf(line, sizeof(line), "tickets keys %s\n", want);
	ck_assert_msg(strncmp(dump, line, strlen(line)) == 0, "%s", dump);   /* first: before any frontend */
	const char *path2 = write_file(dump);
	ck_assert_msg(config_load(path2, &again, err, sizeof(err)) == 0, "%s\n%s", err, dump);
	config_format(&again, collect, dump2);
	ck_assert_str_eq(dump, dump2);
	unlink(path2);

	config_free(&copy);   /* without the directive: no path, no line */
	config_free(&again);
	const char *path3 = write_file("backend add app server 127.0.0.1:8080\n"
				       "frontend add edge listen 127.0.0.1:8443 cert /c/a.pem key /c/a.key backend app\n");
	ck_assert_msg(config_load(path3, &again, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(config_copy(&copy, &again), 0);
	ck_assert_str_eq(copy.ticket_keys, "");
	dump[0] = '\0';
	config_format(&copy, collect, dump);
	ck_assert_ptr_null(strstr(dump, "tickets"));
	unlink(path3);

	config_free(&cfg);
	config_free(&copy);
	config_free(&again);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(load_missing_file)
{
	struct config cfg;
	ck_assert_int_eq(config_load("/nonexistent/tlsoff.conf", &cfg, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/tlsoff.conf: cannot open: No such file or directory");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("grammar");
	tcase_add_test(tc, split_words_quotes_comments);
	tcase_add_test(tc, backend_add_full);
	tcase_add_test(tc, backend_defaults);
	tcase_add_test(tc, backend_tls_options);
	tcase_add_test(tc, frontend_add_full);
	tcase_add_test(tc, frontend_defaults);
	tcase_add_loop_test(tc, bad_commands, 0, sizeof(bad_cmds) / sizeof(bad_cmds[0]));
	tcase_add_test(tc, load_good_file);
	tcase_add_loop_test(tc, load_bad_file, 0, sizeof(bad_files) / sizeof(bad_files[0]));
	tcase_add_test(tc, load_missing_file);
	tcase_add_test(tc, passthrough_routes);
	tcase_add_test(tc, runtime_commands_and_dump_round_trip);
	tcase_add_test(tc, drained_server_added_by_name_round_trip);
	tcase_add_test(tc, tickets_keys);
	tcase_add_test(tc, metrics_listen);
	tcase_add_test(tc, user_directive);
	tcase_add_test(tc, client_certificates);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
