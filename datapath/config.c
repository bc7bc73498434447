/* config.c — the command grammar (see include/tlsoff/config.h): one table row per option keyword. */
#include "tlsoff/config.h"
#include "tlsoff/log.h"
#include "tlsoff/tls_ctx.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>

/* ---- words ------------------------------------------------------------------------------------- */

int cmd_split(char *line, char **argv, int max, char *err, size_t errlen)
{
	int argc = 0;
	char *r = line, *w = line;

	for (;;) {
		while (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n')
			r++;
		if (*r == '\0' || *r == '#')
			break;
		if (argc == max)
			return errf(err, errlen, "too many words (at most %d)", max);
		argv[argc++] = w;
		bool quoted = false;
		while (*r && (quoted || !(*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n'))) {
			if (*r == '"') {
				quoted = !quoted;
				r++;
			} else if (*r == '\\' && quoted && (r[1] == '"' || r[1] == '\\')) {
				*w++ = r[1];
				r += 2;
			} else {
				*w++ = *r++;
			}
		}
		if (quoted)
			return errf(err, errlen, "unterminated quote");
		if (*r)
			r++;
		*w++ = '\0';
	}
	return argc;
}

/* ---- values ------------------------------------------------------------------------------------ */

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 65535 || !isdigit((unsigned char)*s))
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* NUMERIC: IP addresses only; RESOLVE: names through getaddrinfo; AS_WRITTEN: a name is kept as text only
 * (len 0), to find a server by what `backend add` / `server add` were given. */
enum addr_mode { ADDR_NUMERIC, ADDR_RESOLVE, ADDR_AS_WRITTEN };
static int addr_parse(const char *text, enum addr_mode mode, struct tlsoff_addr *out, char *err, size_t errlen);

int tlsoff_addr_parse(const char *text, bool resolve, struct tlsoff_addr *out, char *err, size_t errlen)
{
	return addr_parse(text, resolve ? ADDR_RESOLVE : ADDR_NUMERIC, out, err, errlen);
}

static int addr_parse(const char *text, enum addr_mode mode, struct tlsoff_addr *out, char *err, size_t errlen)
{
	char host[256];
	const char *port_s;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(out->text))
		return errf(err, errlen, "address too long: '%.40s...'", text);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return errf(err, errlen, "bad address '%s': expected [IPV6]:PORT", text);
		snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1), text + 1);
		port_s = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (!colon)
			return errf(err, errlen, "bad address '%s': expected HOST:PORT", text);
		if (memchr(text, ':', (size_t)(colon - text)))
			return errf(err, errlen, "bad address '%s': IPv6 addresses need brackets, e.g. [::1]:443",
				    text);
		if ((size_t)(colon - text) >= sizeof(host))
			return errf(err, errlen, "bad address '%s': host name too long", text);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
		port_s = colon + 1;
	}
	if (parse_port(port_s, &port))
		return errf(err, errlen, "bad port in '%s': expected 1-65535", text);
	if (!host[0])
		return errf(err, errlen, "bad address '%s': empty host", text);

	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		out->len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		out->len = sizeof(*sin6);
	} else if (mode == ADDR_NUMERIC) {
		return errf(err, errlen, "bad address '%s': expected a numeric IPv4 or [IPv6] address", text);
	} else if (mode == ADDR_AS_WRITTEN) {
		memset(&out->ss, 0, sizeof(out->ss));   /* matches no resolved address: only the text */
		out->len = 0;
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
		int rc = getaddrinfo(host, NULL, &hints, &res);
		if (rc)
			return errf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
		out->len = res->ai_addrlen;
		if (res->ai_family == AF_INET6)
			sin6->sin6_port = htons(port);
		else
			sin->sin_port = htons(port);
		freeaddrinfo(res);
	}
	snprintf(out->text, sizeof(out->text), "%s", text);
	return 0;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || !isdigit((unsigned char)*s) || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= TLSOFF_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1" */
int tlsoff_alpn_parse(const char *s, uint8_t *out, unsigned *len, char *err, size_t errlen)
{
	unsigned n = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t l = comma ? (size_t)(comma - s) : strlen(s);
		if (l == 0 || l > 255)
			return errf(err, errlen, "alpn: empty or over-long protocol name");
		if (n + 1 + l > TLSOFF_ALPN_MAX)
			return errf(err, errlen, "alpn: list longer than %d bytes", TLSOFF_ALPN_MAX);
		for (size_t i = 0; i < l; i++)
			if (!isgraph((unsigned char)s[i]))
				return errf(err, errlen, "alpn: protocol names are printable ASCII");
		out[n++] = (uint8_t)l;
		memcpy(out + n, s, l);
		n += (unsigned)l;
		s += l + (comma ? 1 : 0);
		if (comma && !*s)
			return errf(err, errlen, "alpn: trailing comma");
	}
	*len = n;
	return 0;
}

/* ---- the option tables ---------------------------------------------------------------------------- */

enum opt_kind {
	O_NAME,       /* a reference to another object's name */
	O_ADDR,       /* numeric ADDR:PORT */
	O_SERVER,     /* HOST:PORT, repeatable, appended to servers[] */
	O_CERT,       /* starts a new cert/key pair */
	O_KEY,        /* completes the last cert/key pair */
	O_OCSP,       /* the last cert's OCSP response file (after its key) */
	O_ENUM,
	O_MS,         /* milliseconds, 1 .. 1 day */
	O_COUNT,      /* a positive count */
	O_ALPN,
	O_FLAG,       /* a word alone: sets the int field to vals[0].value */
	O_ROUTE,      /* PATTERN=BACKEND, repeatable */
	O_PATH,       /* a file name into a char[TLSOFF_PATH_MAX] */
	O_HOST,       /* a DNS host name into a char[TLSOFF_SNI_MAX] */
};

struct enum_val { const char *word; int value; };

struct cmd_opt {
	const char *kw;
	enum opt_kind kind;
	size_t off;                   /* field in the object's struct */
	const struct enum_val *vals;  /* O_ENUM: NULL-terminated */
	bool required;
};

static const struct enum_val balance_vals[] = {
	{ "roundrobin", BALANCE_ROUNDROBIN }, { "leastconn", BALANCE_LEASTCONN }, { NULL, 0 } };
static const struct enum_val proxy_vals[] = { { "v2", 2 }, { NULL, 0 } };
static const struct enum_val tls_vals[] = { { "1.2", TLS1_2_VERSION }, { "1.3", TLS1_3_VERSION }, { NULL, 0 } };
static const struct enum_val datapath_vals[] = {
	{ "auto", DATAPATH_AUTO }, { "splice", DATAPATH_SPLICE }, { "userspace", DATAPATH_USERSPACE },
	{ NULL, 0 } };

static const struct enum_val verify_vals[] = {
	{ "required", CLIENT_VERIFY_REQUIRED }, { "optional", CLIENT_VERIFY_OPTIONAL }, { NULL, 0 } };
static const struct enum_val verify_names[] = {   /* for output: "none" is not a word of the grammar */
	{ "none", CLIENT_VERIFY_NONE }, { "required", CLIENT_VERIFY_REQUIRED }, { "optional", CLIENT_VERIFY_OPTIONAL },
	{ NULL, 0 } };
static const struct enum_val nic_offload_vals[] = {
	{ "off", NIC_OFFLOAD_OFF }, { "prefer", NIC_OFFLOAD_PREFER }, { NULL, 0 } };

static const struct enum_val tls_on[] = { { "tls", 1 }, { NULL, 0 } };
static const struct enum_val onoff_vals[] = { { "on", 1 }, { "off", 0 }, { NULL, 0 } };
static const struct enum_val mode_plain[] = { { "plain", MODE_PLAIN }, { NULL, 0 } };
static const struct enum_val mode_passthrough[] = { { "passthrough", MODE_PASSTHROUGH }, { NULL, 0 } };
static const struct enum_val mode_vals[] = {
	{ "tls", MODE_TLS }, { "plain", MODE_PLAIN }, { "passthrough", MODE_PASSTHROUGH }, { NULL, 0 } };

#define BE(f) offsetof(struct backend_conf, f)
#define FE(f) offsetof(struct frontend_conf, f)

static const struct cmd_opt backend_opts[] = {
	{ "server", O_SERVER, BE(servers), NULL, true },
	{ "balance", O_ENUM, BE(balance), balance_vals, false },
	{ "proxy-protocol", O_ENUM, BE(proxy_protocol), proxy_vals, false },
	{ "connect-timeout", O_MS, BE(connect_timeout_ms), NULL, false },
	{ "tls", O_FLAG, BE(tls), tls_on, false },
	{ "ca", O_PATH, BE(tls_ca), NULL, false },
	{ "verify", O_ENUM, BE(tls_verify), onoff_vals, false },
	{ "sni", O_HOST, BE(tls_sni), NULL, false },
	{ "cert", O_PATH, BE(tls_cert), NULL, false },
	{ "key", O_PATH, BE(tls_key), NULL, false },
	{ NULL, 0, 0, NULL, false },
};

/* cert/key/backend are required by mode: checked after parsing (frontend_check). */
static const struct cmd_opt frontend_opts[] = {
	{ "listen", O_ADDR, FE(listen), NULL, true },
	{ "cert", O_CERT, FE(certs), NULL, false },
	{ "key", O_KEY, FE(certs), NULL, false },
	{ "backend", O_NAME, FE(backend), NULL, false },
	{ "plain", O_FLAG, FE(mode), mode_plain, false },
	{ "passthrough", O_FLAG, FE(mode), mode_passthrough, false },
	{ "sni", O_ROUTE, FE(routes), NULL, false },
	{ "default", O_NAME, FE(backend), NULL, false },
	{ "alpn", O_ALPN, FE(alpn), NULL, false },
	{ "tls-min", O_ENUM, FE(tls_min), tls_vals, false },
	{ "datapath", O_ENUM, FE(datapath), datapath_vals, false },
	{ "handshake-timeout", O_MS, FE(handshake_timeout_ms), NULL, false },
	{ "idle-timeout", O_MS, FE(idle_timeout_ms), NULL, false },
	{ "max-conns", O_COUNT, FE(max_conns), NULL, false },
	{ "ocsp", O_OCSP, FE(certs), NULL, false },
	{ "client-ca", O_PATH, FE(client_ca), NULL, false },
	{ "client-verify", O_ENUM, FE(client_verify), verify_vals, false },
	{ "nic-offload", O_ENUM, FE(nic_offload), nic_offload_vals, false },
	{ NULL, 0, 0, NULL, false },
};

struct object_def {
	const char *word;
	enum cmd_object object;
	const struct cmd_opt *opts;
};

static const struct object_def objects[] = {
	{ "backend", CMD_BACKEND, backend_opts },
	{ "frontend", CMD_FRONTEND, frontend_opts },
};

static void keyword_list(const struct cmd_opt *opts, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (const struct cmd_opt *o = opts; o->kw && n < len; o++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", o->kw);
}

static void enum_list(const struct enum_val *v, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (; v->word && n < len; v++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "", v->word);
}

/* Apply one "keyword value" to the object at base. */
static int apply_opt(const struct cmd_opt *o, const char *val, void *base, const char *what, char *err,
		     size_t errlen)
{
	char *field = (char *)base + o->off;
	char list[128];

	switch (o->kind) {
	case O_NAME:
		if (!valid_name(val))
			return errf(err, errlen, "%s: %s: bad name '%s' (letters, digits, '-', '_', '.'; at most %d)",
				    what, o->kw, val, TLSOFF_NAME_MAX - 1);
		snprintf(field, TLSOFF_NAME_MAX, "%s", val);
		return 0;
	case O_ADDR:
		if (tlsoff_addr_parse(val, false, (struct tlsoff_addr *)field, list, sizeof(list)))
			return errf(err, errlen, "%s: %s: %s", what, o->kw, list);
		return 0;
	case O_SERVER: {
		struct backend_conf *b = base;
		if (b->nservers == TLSOFF_MAX_SERVERS)
			return errf(err, errlen, "%s: at most %d servers", what, TLSOFF_MAX_SERVERS);
		if (tlsoff_addr_parse(val, true, &b->servers[b->nservers], list, sizeof(list)))
			return errf(err, errlen, "%s: server: %s", what, list);
		b->nservers++;
		return 0;
	}
	case O_CERT: {
		struct frontend_conf *f = base;
		if (f->ncerts && !f->certs[f->ncerts - 1].key[0])
			return errf(err, errlen, "%s: cert '%s' has no key (write: cert CHAIN.pem key KEY.pem)",
				    what, f->certs[f->ncerts - 1].chain);
		if (f->ncerts == TLSOFF_MAX_CERTS)
			return errf(err, errlen, "%s: at most %d certificates", what, TLSOFF_MAX_CERTS);
		if (!*val || strlen(val) >= TLSOFF_PATH_MAX)
			return errf(err, errlen, "%s: cert: bad path", what);
		snprintf(f->certs[f->ncerts++].chain, TLSOFF_PATH_MAX, "%s", val);
		return 0;
	}
	case O_KEY: {
		struct frontend_conf *f = base;
		if (!f->ncerts || f->certs[f->ncerts - 1].key[0])
			return errf(err, errlen, "%s: key '%s' must follow its cert (cert CHAIN.pem key KEY.pem)",
				    what, val);
		if (!*val || strlen(val) >= TLSOFF_PATH_MAX)
			return errf(err, errlen, "%s: key: bad path", what);
		snprintf(f->certs[f->ncerts - 1].key, TLSOFF_PATH_MAX, "%s", val);
		return 0;
	}
	case O_OCSP: {
		struct frontend_conf *f = base;
		if (!f->ncerts || !f->certs[f->ncerts - 1].key[0] || f->certs[f->ncerts - 1].ocsp[0])
			return errf(err, errlen, "%s: ocsp '%s' must follow its cert's key (cert CHAIN.pem key KEY.pem "
				    "ocsp RESPONSE.der)", what, val);
		if (!*val || strlen(val) >= TLSOFF_PATH_MAX)
			return errf(err, errlen, "%s: ocsp: bad path", what);
		snprintf(f->certs[f->ncerts - 1].ocsp, TLSOFF_PATH_MAX, "%s", val);
		return 0;
	}
	case O_ENUM:
		for (const struct enum_val *v = o->vals; v->word; v++)
			if (!strcmp(v->word, val)) {
				*(int *)field = v->value;   /* enum fields are int-sized */
				return 0;
			}
		enum_list(o->vals, list, sizeof(list));
		return errf(err, errlen, "%s: %s: '%s' is not one of %s", what, o->kw, val, list);
	case O_MS:
		if (parse_uint(val, 1, 86400000, (unsigned *)field))
			return errf(err, errlen, "%s: %s: '%s' is not a time in milliseconds (1-86400000)", what,
				    o->kw, val);
		return 0;
	case O_COUNT:
		if (parse_uint(val, 1, 100000000, (unsigned *)field))
			return errf(err, errlen, "%s: %s: '%s' is not a positive count", what, o->kw, val);
		return 0;
	case O_FLAG:
		*(int *)field = o->vals[0].value;
		return 0;
	case O_ROUTE: {
		struct frontend_conf *f = base;
		const char *eq = strchr(val, '=');
		char pattern[TLSOFF_SNI_MAX];
		if (!eq || eq == val || (size_t)(eq - val) >= sizeof(pattern))
			return errf(err, errlen, "%s: sni: expected PATTERN=BACKEND, got '%s'", what, val);
		if (f->nroutes == TLSOFF_MAX_ROUTES)
			return errf(err, errlen, "%s: at most %d sni routes", what, TLSOFF_MAX_ROUTES);
		snprintf(pattern, sizeof(pattern), "%.*s", (int)(eq - val), val);
		for (char *p = pattern; *p; p++) {
			*p = (char)tolower((unsigned char)*p);
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_' && !(*p == '*' && p == pattern))
				return errf(err, errlen, "%s: sni: bad host name pattern '%s'", what, pattern);
		}
		if (pattern[0] == '*' && pattern[1] != '.')
			return errf(err, errlen, "%s: sni: a wildcard is '*.' then a domain, not '%s'", what, pattern);
		if (!valid_name(eq + 1))
			return errf(err, errlen, "%s: sni: bad backend name '%s'", what, eq + 1);
		for (unsigned i = 0; i < f->nroutes; i++)
			if (!strcmp(f->routes[i].pattern, pattern))
				return errf(err, errlen, "%s: sni: '%s' routed twice", what, pattern);
		snprintf(f->routes[f->nroutes].pattern, TLSOFF_SNI_MAX, "%s", pattern);
		snprintf(f->routes[f->nroutes++].backend, TLSOFF_NAME_MAX, "%s", eq + 1);
		return 0;
	}
	case O_PATH:
		if (!*val || strlen(val) >= TLSOFF_PATH_MAX)
			return errf(err, errlen, "%s: %s: bad path '%.40s'", what, o->kw, val);
		snprintf(field, TLSOFF_PATH_MAX, "%s", val);
		return 0;
	case O_HOST:
		for (const char *p = val; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
				return errf(err, errlen, "%s: %s: bad host name '%.40s'", what, o->kw, val);
		if (!*val || strlen(val) >= TLSOFF_SNI_MAX)
			return errf(err, errlen, "%s: %s: bad host name '%.40s'", what, o->kw, val);
		snprintf(field, TLSOFF_SNI_MAX, "%s", val);
		return 0;
	case O_ALPN: {
		struct frontend_conf *f = base;
		if (tlsoff_alpn_parse(val, f->alpn, &f->alpn_len, list, sizeof(list)))
			return errf(err, errlen, "%s: %s", what, list);
		return 0;
	}
	}
	return errf(err, errlen, "%s: internal error: option kind %d", what, o->kind);
}

static void defaults(struct cmd *c)
{
	if (c->object == CMD_BACKEND) {
		c->u.backend.connect_timeout_ms = TLSOFF_DEFAULT_CONNECT_TIMEOUT_MS;
		c->u.backend.tls_verify = 1;
	} else {
		c->u.frontend.tls_min = TLS1_2_VERSION;
		c->u.frontend.handshake_timeout_ms = TLSOFF_DEFAULT_HANDSHAKE_TIMEOUT_MS;
		c->u.frontend.idle_timeout_ms = TLSOFF_DEFAULT_IDLE_TIMEOUT_MS;
	}
}

static int verb_of(const char *word, const char *const *allowed, enum cmd_verb *out)
{
	static const struct { const char *word; enum cmd_verb verb; } verbs[] = {
		{ "add", CMD_ADD }, { "del", CMD_DEL }, { "drain", CMD_DRAIN }, { "enable", CMD_ENABLE },
		{ "replace", CMD_REPLACE } };
	for (; *allowed; allowed++)
		if (!strcmp(word, *allowed))
			for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
				if (!strcmp(word, verbs[i].word)) {
					*out = verbs[i].verb;
					return 0;
				}
	return -1;
}

/* server add|del|drain|enable BACKEND HOST:PORT */
static int parse_server(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	static const char *const verbs[] = { "add", "del", "drain", "enable", NULL };
	char msg[128];
	out->object = CMD_SERVER;
	if (argc < 2 || verb_of(argv[1], verbs, &out->verb))
		return errf(err, errlen, "server: expected a verb: add, del, drain or enable");
	if (argc != 4)
		return errf(err, errlen, "usage: server %s BACKEND HOST:PORT", argv[1]);
	if (!valid_name(argv[2]))
		return errf(err, errlen, "server %s: bad backend name '%s'", argv[1], argv[2]);
	snprintf(out->u.server.backend, TLSOFF_NAME_MAX, "%s", argv[2]);
	/* add resolves a name as backend add does; the others look up what was written, a name included (it
	 * is how `config dump` writes a server added by name, and it may not resolve now) */
	if (addr_parse(argv[3], out->verb == CMD_ADD ? ADDR_RESOLVE : ADDR_AS_WRITTEN, &out->u.server.addr, msg,
		       sizeof(msg)))
		return errf(err, errlen, "server %s %s: %s", argv[1], argv[2], msg);
	return 0;
}

static int path_arg(const char *what, const char *val, char *field, char *err, size_t errlen)
{
	if (!*val || strlen(val) >= TLSOFF_PATH_MAX)
		return errf(err, errlen, "%s: bad path '%.40s'", what, val);
	snprintf(field, TLSOFF_PATH_MAX, "%s", val);
	return 0;
}

/* cert add|replace FRONTEND cert CHAIN key KEY [old CHAIN] | cert del FRONTEND CHAIN */
static int parse_cert(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	static const char *const verbs[] = { "add", "replace", "del", NULL };
	out->object = CMD_CERT;
	if (argc < 2 || verb_of(argv[1], verbs, &out->verb))
		return errf(err, errlen, "cert: expected a verb: add, replace or del");
	if (argc < 3 || !valid_name(argv[2]))
		return errf(err, errlen, "cert %s: missing or bad FRONTEND name", argv[1]);
	snprintf(out->u.cert.frontend, TLSOFF_NAME_MAX, "%s", argv[2]);
	if (out->verb == CMD_DEL) {
		if (argc != 4)
			return errf(err, errlen, "usage: cert del FRONTEND CHAIN.pem");
		return path_arg("cert del", argv[3], out->u.cert.cert.chain, err, errlen);
	}
	for (int i = 3; i < argc; i += 2) {
		char *field = !strcmp(argv[i], "cert") ? out->u.cert.cert.chain :
			      !strcmp(argv[i], "key") ? out->u.cert.cert.key :
			      !strcmp(argv[i], "ocsp") ? out->u.cert.cert.ocsp :
			      !strcmp(argv[i], "old") && out->verb == CMD_REPLACE ? out->u.cert.old : NULL;
		if (!field)
			return errf(err, errlen, "cert %s: unknown option '%s' (expected cert, key, ocsp%s)", argv[1],
				    argv[i], out->verb == CMD_REPLACE ? ", old" : "");
		if (*field)
			return errf(err, errlen, "cert %s: option '%s' given twice", argv[1], argv[i]);
		if (i + 1 >= argc)
			return errf(err, errlen, "cert %s: option '%s' needs a value", argv[1], argv[i]);
		if (path_arg(argv[i], argv[i + 1], field, err, errlen))
			return -1;
	}
	if (!out->u.cert.cert.chain[0] || !out->u.cert.cert.key[0])
		return errf(err, errlen, "usage: cert %s FRONTEND cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der]%s", argv[1],
			    out->verb == CMD_REPLACE ? " [old OLDCHAIN.pem]" : "");
	return 0;
}

/* tickets keys FILE */
static int parse_tickets(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	out->object = CMD_TICKETS;
	out->verb = CMD_SET;
	if (argc < 2 || strcmp(argv[1], "keys"))
		return errf(err, errlen, "tickets: expected 'keys FILE'");
	if (argc != 3)
		return errf(err, errlen, "usage: tickets keys FILE");
	return path_arg("tickets keys", argv[2], out->u.tickets.keys, err, errlen);
}

/* user NAME [group GROUP] */
static int parse_user(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	out->object = CMD_USER;
	out->verb = CMD_SET;
	if ((argc != 2 && argc != 4) || (argc == 4 && strcmp(argv[2], "group")))
		return errf(err, errlen, "usage: user NAME [group GROUP]");
	for (int i = 1; i < argc; i += 2)
		if (!argv[i][0] || strlen(argv[i]) >= TLSOFF_NAME_MAX)
			return errf(err, errlen, "user: '%s': a name of 1-%d characters expected", argv[i],
				    TLSOFF_NAME_MAX - 1);
	snprintf(out->u.user.name, sizeof(out->u.user.name), "%s", argv[1]);
	if (argc == 4)
		snprintf(out->u.user.group, sizeof(out->u.user.group), "%s", argv[3]);
	return 0;
}

/* metrics listen ADDR:PORT | metrics off */
static int parse_metrics(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	out->object = CMD_METRICS;
	out->verb = CMD_SET;
	if (argc == 2 && !strcmp(argv[1], "off"))
		return 0;
	if (argc < 2 || strcmp(argv[1], "listen"))
		return errf(err, errlen, "metrics: expected 'listen ADDR:PORT' or 'off'");
	if (argc != 3)
		return errf(err, errlen, "usage: metrics listen ADDR:PORT | metrics off");
	char msg[TLSOFF_ERR_MAX];
	if (tlsoff_addr_parse(argv[2], true, &out->u.metrics, msg, sizeof(msg)) < 0)
		return errf(err, errlen, "metrics listen: %s", msg);
	return 0;
}

static bool opt_seen(const struct cmd_opt *opts, unsigned seen, const char *kw)
{
	for (const struct cmd_opt *o = opts; o->kw; o++)
		if (!strcmp(o->kw, kw))
			return seen & (1u << (o - opts));
	return false;
}

static bool option_seen(unsigned seen, const char *kw)
{
	return opt_seen(frontend_opts, seen, kw);
}

/* The TLS options of a backend need `tls`, and a client certificate needs both halves. */
static int backend_check(const struct backend_conf *b, unsigned seen, const char *what, char *err, size_t errlen)
{
	static const char *const tls_only[] = { "ca", "verify", "sni", "cert", "key" };
	if (!b->tls)
		for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++)
			if (opt_seen(backend_opts, seen, tls_only[i]))
				return errf(err, errlen, "%s: '%s' needs 'tls' (re-encryption to the servers)", what,
					    tls_only[i]);
	if (!b->tls_cert[0] != !b->tls_key[0])
		return errf(err, errlen, "%s: a client certificate needs both 'cert CHAIN.pem' and 'key KEY.pem'", what);
	if (b->tls_ca[0] && !b->tls_verify)
		return errf(err, errlen, "%s: 'ca' with 'verify off' would not be used: give one", what);
	return 0;
}

/* What each mode needs and refuses: a plain or passthrough frontend has no certificate and no TLS options
 * (the TLS is the backend's, or there is none). */
static int frontend_check(struct frontend_conf *f, unsigned seen, const char *what, char *err, size_t errlen)
{
	static const char *const tls_only[] = { "cert", "key", "alpn", "tls-min", "datapath", "ocsp", "client-ca",
						"client-verify", "nic-offload" };
	if (option_seen(seen, "plain") && option_seen(seen, "passthrough"))
		return errf(err, errlen, "%s: plain or passthrough, not both", what);
	if (option_seen(seen, "backend") && option_seen(seen, "default"))
		return errf(err, errlen, "%s: 'default' and 'backend' name the same thing: give one", what);
	if (f->mode != MODE_PASSTHROUGH && option_seen(seen, "sni"))
		return errf(err, errlen, "%s: sni routes need passthrough", what);
	if (f->mode != MODE_TLS) {
		for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++)
			if (option_seen(seen, tls_only[i]))
				return errf(err, errlen, "%s: '%s' does not apply to a %s frontend", what, tls_only[i],
					    tlsoff_mode_name(f->mode));
		if (f->mode == MODE_PLAIN && !f->backend[0])
			return errf(err, errlen, "%s: missing 'backend'", what);
		if (f->mode == MODE_PLAIN && option_seen(seen, "handshake-timeout"))
			return errf(err, errlen, "%s: 'handshake-timeout' does not apply to a plain frontend (no handshake)", what);
		if (f->mode == MODE_PASSTHROUGH && !f->backend[0] && !f->nroutes)
			return errf(err, errlen, "%s: passthrough needs sni PATTERN=BACKEND routes or a default backend",
				    what);
		return 0;
	}
	if (!f->ncerts)
		return errf(err, errlen, "%s: missing 'cert'", what);
	if (!f->certs[f->ncerts - 1].key[0])
		return errf(err, errlen, "%s: cert '%s' has no key", what, f->certs[f->ncerts - 1].chain);
	if (!f->backend[0])
		return errf(err, errlen, "%s: missing 'backend'", what);
	if (f->client_verify && !f->client_ca[0])
		return errf(err, errlen, "%s: 'client-verify' needs 'client-ca CA.pem' (the CA client certificates "
			    "are verified against)", what);
	if (f->client_ca[0] && !f->client_verify)
		f->client_verify = CLIENT_VERIFY_REQUIRED;   /* a CA alone means: only its clients get in */
	return 0;
}

int cmd_parse(int argc, char **argv, struct cmd *out, char *err, size_t errlen)
{
	const struct object_def *def = NULL;
	char what[96], list[256];

	memset(out, 0, sizeof(*out));
	if (argc < 1)
		return errf(err, errlen, "empty command");
	/* A control character (a quoted CR, a newline in an attribute from the control socket) would make
	 * `config dump` write a line that reads back differently, or two lines: no word may hold one. */
	for (int i = 0; i < argc; i++)
		for (const char *p = argv[i]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return errf(err, errlen, "word %d ('%.*s...'): control character 0x%02x is not allowed",
					    i + 1, (int)(p - argv[i] < 40 ? p - argv[i] : 40), argv[i], (unsigned char)*p);
	if (!strcmp(argv[0], "server"))
		return parse_server(argc, argv, out, err, errlen);
	if (!strcmp(argv[0], "cert"))
		return parse_cert(argc, argv, out, err, errlen);
	if (!strcmp(argv[0], "tickets"))
		return parse_tickets(argc, argv, out, err, errlen);
	if (!strcmp(argv[0], "metrics"))
		return parse_metrics(argc, argv, out, err, errlen);
	if (!strcmp(argv[0], "user"))
		return parse_user(argc, argv, out, err, errlen);
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (!strcmp(argv[0], objects[i].word))
			def = &objects[i];
	if (!def)
		return errf(err, errlen, "unknown object '%s' (expected backend, frontend, server, cert, tickets, metrics or user)",
			    argv[0]);
	out->object = def->object;
	if (argc < 2)
		return errf(err, errlen, "%s: missing verb (add or del)", argv[0]);
	if (!strcmp(argv[1], "add"))
		out->verb = CMD_ADD;
	else if (!strcmp(argv[1], "del"))
		out->verb = CMD_DEL;
	else
		return errf(err, errlen, "%s: unknown verb '%s' (expected add or del)", argv[0], argv[1]);
	if (argc < 3)
		return errf(err, errlen, "%s %s: missing NAME", argv[0], argv[1]);
	if (!valid_name(argv[2]))
		return errf(err, errlen, "%s %s: bad name '%s' (letters, digits, '-', '_', '.'; at most %d)",
			    argv[0], argv[1], argv[2], TLSOFF_NAME_MAX - 1);
	snprintf(what, sizeof(what), "%s %s", argv[0], argv[2]);

	if (out->verb == CMD_DEL) {
		if (argc > 3)
			return errf(err, errlen, "%s del: unexpected '%s' after the name", argv[0], argv[3]);
		snprintf(out->u.name, sizeof(out->u.name), "%s", argv[2]);
		return 0;
	}

	defaults(out);
	void *base = &out->u;
	snprintf((char *)base, TLSOFF_NAME_MAX, "%s", argv[2]);   /* name is the first field of both */
	unsigned seen = 0;
	for (int i = 3; i < argc;) {
		const struct cmd_opt *o = def->opts;
		while (o->kw && strcmp(o->kw, argv[i]))
			o++;
		if (!o->kw) {
			keyword_list(def->opts, list, sizeof(list));
			return errf(err, errlen, "%s: unknown option '%s' (expected one of: %s)", what, argv[i],
				    list);
		}
		unsigned bit = 1u << (o - def->opts);
		bool repeatable = o->kind == O_SERVER || o->kind == O_CERT || o->kind == O_KEY || o->kind == O_ROUTE ||
				  o->kind == O_OCSP;
		if ((seen & bit) && !repeatable)
			return errf(err, errlen, "%s: option '%s' given twice", what, o->kw);
		seen |= bit;
		if (o->kind == O_FLAG) {
			if (apply_opt(o, NULL, base, what, err, errlen))
				return -1;
			i++;
			continue;
		}
		if (i + 1 >= argc)
			return errf(err, errlen, "%s: option '%s' needs a value", what, o->kw);
		if (apply_opt(o, argv[i + 1], base, what, err, errlen))
			return -1;
		i += 2;
	}
	for (const struct cmd_opt *o = def->opts; o->kw; o++)
		if (o->required && !(seen & (1u << (o - def->opts))))
			return errf(err, errlen, "%s: missing '%s'", what, o->kw);
	if (out->object == CMD_FRONTEND)
		return frontend_check(&out->u.frontend, seen, what, err, errlen);
	return backend_check(&out->u.backend, seen, what, err, errlen);
}

/* ---- the configuration ---------------------------------------------------------------------------- */

static int find_backend(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nbackends; i++)
		if (!strcmp(cfg->backends[i].name, name))
			return (int)i;
	return -1;
}

static int find_frontend(const struct config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nfrontends; i++)
		if (!strcmp(cfg->frontends[i].name, name))
			return (int)i;
	return -1;
}

static bool same_addr(const struct tlsoff_addr *a, const struct tlsoff_addr *b)
{
	return a->len == b->len && !memcmp(&a->ss, &b->ss, a->len);
}

/* The frontend that uses backend `name` (as its backend, default or an sni route), or -1. */
static int backend_user(const struct config *cfg, const char *name)
{
	for (unsigned f = 0; f < cfg->nfrontends; f++) {
		if (!strcmp(cfg->frontends[f].backend, name))
			return (int)f;
		for (unsigned r = 0; r < cfg->frontends[f].nroutes; r++)
			if (!strcmp(cfg->frontends[f].routes[r].backend, name))
				return (int)f;
	}
	return -1;
}

static int find_server(const struct backend_conf *b, const struct tlsoff_addr *a)
{
	for (unsigned i = 0; i < b->nservers; i++)
		if (same_addr(&b->servers[i], a) || !strcmp(b->servers[i].text, a->text))
			return (int)i;
	return -1;
}

static int apply_server(struct config *cfg, const struct cmd *c, char *err, size_t errlen)
{
	int bi = find_backend(cfg, c->u.server.backend);
	if (bi < 0)
		return errf(err, errlen, "no backend '%s'", c->u.server.backend);
	struct backend_conf *b = &cfg->backends[bi];
	int si = find_server(b, &c->u.server.addr);
	const char *text = c->u.server.addr.text;
	if (c->verb == CMD_ADD) {
		if (si >= 0)
			return errf(err, errlen, "backend '%s' already has server %s", b->name, text);
		if (b->nservers == TLSOFF_MAX_SERVERS)
			return errf(err, errlen, "backend '%s': at most %d servers", b->name, TLSOFF_MAX_SERVERS);
		b->servers[b->nservers++] = c->u.server.addr;
		return 0;
	}
	if (si < 0)
		return errf(err, errlen, "backend '%s' has no server %s", b->name, text);
	uint64_t bit = 1ull << si;
	if (c->verb == CMD_DRAIN) {
		b->drained |= bit;
	} else if (c->verb == CMD_ENABLE) {
		b->drained &= ~bit;
	} else {
		if (b->nservers == 1)
			return errf(err, errlen, "%s is the last server of backend '%s' (delete the backend instead)",
				    text, b->name);
		memmove(&b->servers[si], &b->servers[si + 1], (--b->nservers - (unsigned)si) * sizeof(b->servers[0]));
		uint64_t low = b->drained & (bit - 1), high = si < 63 ? b->drained >> (si + 1) << si : 0;
		b->drained = low | high;
	}
	return 0;
}

static int find_cert(const struct frontend_conf *f, const char *chain)
{
	for (unsigned i = 0; i < f->ncerts; i++)
		if (!strcmp(f->certs[i].chain, chain))
			return (int)i;
	return -1;
}

static int apply_cert(struct config *cfg, const struct cmd *c, char *err, size_t errlen)
{
	int fi = find_frontend(cfg, c->u.cert.frontend);
	if (fi < 0)
		return errf(err, errlen, "no frontend '%s'", c->u.cert.frontend);
	struct frontend_conf *f = &cfg->frontends[fi];
	const char *chain = c->u.cert.cert.chain;
	if (f->mode != MODE_TLS)
		return errf(err, errlen, "frontend '%s' is %s: it has no certificates", f->name, tlsoff_mode_name(f->mode));
	int ci = find_cert(f, chain);
	if (c->verb == CMD_ADD) {
		if (ci >= 0)
			return errf(err, errlen, "frontend '%s' already has cert %s (use cert replace)", f->name, chain);
		if (f->ncerts == TLSOFF_MAX_CERTS)
			return errf(err, errlen, "frontend '%s': at most %d certificates", f->name, TLSOFF_MAX_CERTS);
		f->certs[f->ncerts++] = c->u.cert.cert;
		return 0;
	}
	if (c->verb == CMD_REPLACE) {
		int oi = c->u.cert.old[0] ? find_cert(f, c->u.cert.old) : ci;
		if (oi < 0)
			return errf(err, errlen, "frontend '%s' has no cert %s to replace", f->name,
				    c->u.cert.old[0] ? c->u.cert.old : chain);
		if (ci >= 0 && ci != oi)
			return errf(err, errlen, "frontend '%s' already has cert %s", f->name, chain);
		f->certs[oi] = c->u.cert.cert;   /* same position: the default stays the default */
		return 0;
	}
	if (ci < 0)
		return errf(err, errlen, "frontend '%s' has no cert %s", f->name, chain);
	if (f->ncerts == 1)
		return errf(err, errlen, "%s is the last certificate of frontend '%s'", chain, f->name);
	memmove(&f->certs[ci], &f->certs[ci + 1], (--f->ncerts - (unsigned)ci) * sizeof(f->certs[0]));
	return 0;
}

int config_apply(struct config *cfg, const struct cmd *c, char *err, size_t errlen)
{
	if (c->object == CMD_BACKEND && c->verb == CMD_ADD) {
		if (find_backend(cfg, c->u.backend.name) >= 0)
			return errf(err, errlen, "backend '%s' already exists", c->u.backend.name);
		struct backend_conf *n = realloc(cfg->backends, (cfg->nbackends + 1) * sizeof(*n));
		if (!n)
			return errf(err, errlen, "out of memory");
		cfg->backends = n;
		cfg->backends[cfg->nbackends++] = c->u.backend;
		return 0;
	}
	if (c->object == CMD_FRONTEND && c->verb == CMD_ADD) {
		if (find_frontend(cfg, c->u.frontend.name) >= 0)
			return errf(err, errlen, "frontend '%s' already exists", c->u.frontend.name);
		for (unsigned i = 0; i < cfg->nfrontends; i++)
			if (same_addr(&cfg->frontends[i].listen, &c->u.frontend.listen))
				return errf(err, errlen, "frontend '%s': %s is already the listen address of '%s'",
					    c->u.frontend.name, c->u.frontend.listen.text, cfg->frontends[i].name);
		if (cfg->metrics.text[0] && same_addr(&cfg->metrics, &c->u.frontend.listen))
			return errf(err, errlen, "frontend '%s': %s is the metrics address", c->u.frontend.name,
				    c->u.frontend.listen.text);
		struct frontend_conf *n = realloc(cfg->frontends, (cfg->nfrontends + 1) * sizeof(*n));
		if (!n)
			return errf(err, errlen, "out of memory");
		cfg->frontends = n;
		cfg->frontends[cfg->nfrontends++] = c->u.frontend;
		return 0;
	}
	if (c->object == CMD_BACKEND) {
		int i = find_backend(cfg, c->u.name);
		if (i < 0)
			return errf(err, errlen, "no backend '%s'", c->u.name);
		int user = backend_user(cfg, c->u.name);
		if (user >= 0)
			return errf(err, errlen, "backend '%s' is used by frontend '%s'", c->u.name,
				    cfg->frontends[user].name);
		/* keep the order: config dump writes objects in the order they run */
		memmove(&cfg->backends[i], &cfg->backends[i + 1], (--cfg->nbackends - (unsigned)i) * sizeof(*cfg->backends));
		return 0;
	}
	if (c->object == CMD_SERVER)
		return apply_server(cfg, c, err, errlen);
	if (c->object == CMD_CERT)
		return apply_cert(cfg, c, err, errlen);
	if (c->object == CMD_TICKETS) {   /* a file refuses a second one (config_load); at run time it replaces */
		snprintf(cfg->ticket_keys, sizeof(cfg->ticket_keys), "%s", c->u.tickets.keys);
		return 0;
	}
	if (c->object == CMD_METRICS) {   /* likewise */
		for (unsigned i = 0; c->u.metrics.text[0] && i < cfg->nfrontends; i++)
			if (same_addr(&cfg->frontends[i].listen, &c->u.metrics))
				return errf(err, errlen, "metrics listen %s: frontend %s listens there", c->u.metrics.text,
					    cfg->frontends[i].name);
		cfg->metrics = c->u.metrics;
		return 0;
	}
	if (c->object == CMD_USER) {      /* the daemon switches once, at start (privdrop.c) */
		snprintf(cfg->user, sizeof(cfg->user), "%s", c->u.user.name);
		snprintf(cfg->group, sizeof(cfg->group), "%s", c->u.user.group);
		return 0;
	}
	int i = find_frontend(cfg, c->u.name);
	if (i < 0)
		return errf(err, errlen, "no frontend '%s'", c->u.name);
	memmove(&cfg->frontends[i], &cfg->frontends[i + 1], (--cfg->nfrontends - (unsigned)i) * sizeof(*cfg->frontends));
	return 0;
}

int config_check(const struct config *cfg, char *err, size_t errlen)
{
	for (unsigned i = 0; i < cfg->nfrontends; i++) {
		const struct frontend_conf *f = &cfg->frontends[i];
		if (f->backend[0] && find_backend(cfg, f->backend) < 0)
			return errf(err, errlen, "frontend '%s': no backend '%s'", f->name, f->backend);
		for (unsigned r = 0; r < f->nroutes; r++)
			if (find_backend(cfg, f->routes[r].backend) < 0)
				return errf(err, errlen, "frontend '%s': sni %s: no backend '%s'", f->name,
					    f->routes[r].pattern, f->routes[r].backend);
	}
	return 0;
}

const char *tlsoff_route(const struct frontend_conf *f, const char *sni)
{
	for (int wild = 0; sni && *sni && wild < 2; wild++)   /* exact names first, as for certificates */
		for (unsigned r = 0; r < f->nroutes; r++)
			if ((f->routes[r].pattern[0] == '*') == wild && tls_name_matches(f->routes[r].pattern, sni))
				return f->routes[r].backend;
	return f->backend[0] ? f->backend : NULL;
}

int config_copy(struct config *dst, const struct config *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->backends = malloc((src->nbackends ? src->nbackends : 1) * sizeof(*dst->backends));
	dst->frontends = malloc((src->nfrontends ? src->nfrontends : 1) * sizeof(*dst->frontends));
	if (!dst->backends || !dst->frontends) {
		config_free(dst);
		return -1;
	}
	if (src->nbackends)   /* an empty configuration has NULL arrays: memcpy from NULL is undefined */
		memcpy(dst->backends, src->backends, src->nbackends * sizeof(*dst->backends));
	if (src->nfrontends)
		memcpy(dst->frontends, src->frontends, src->nfrontends * sizeof(*dst->frontends));
	dst->nbackends = src->nbackends;
	dst->nfrontends = src->nfrontends;
	memcpy(dst->ticket_keys, src->ticket_keys, sizeof(dst->ticket_keys));
	dst->metrics = src->metrics;
	memcpy(dst->user, src->user, sizeof(dst->user));
	memcpy(dst->group, src->group, sizeof(dst->group));
	return 0;
}

static const char *word_of(const struct enum_val *v, int value)
{
	for (; v->word; v++)
		if (v->value == value)
			return v->word;
	return "?";
}

const char *tlsoff_balance_name(int balance) { return word_of(balance_vals, balance); }
const char *tlsoff_datapath_name(int datapath) { return word_of(datapath_vals, datapath); }
const char *tlsoff_tls_min_name(int tls_min) { return word_of(tls_vals, tls_min); }
const char *tlsoff_nic_offload_name(int mode) { return word_of(nic_offload_vals, mode); }
const char *tlsoff_mode_name(int mode) { return word_of(mode_vals, mode); }
const char *tlsoff_client_verify_name(int v) { return word_of(verify_names, v); }

void tlsoff_alpn_format(const uint8_t *wire, unsigned len, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < len && n < outlen; i += 1u + wire[i])
		n += (size_t)snprintf(out + n, outlen - n, "%s%.*s", n ? "," : "", (int)wire[i], (const char *)wire + i + 1);
}

/* Append one word, quoted when cmd_split would otherwise cut or drop it. */
static void put_word(char *buf, size_t len, size_t *n, const char *w)
{
	bool plain = *w != '\0';
	for (const char *p = w; *p; p++)
		plain &= !(*p == ' ' || *p == '\t' || *p == '"' || *p == '#' || *p == '\\');
	if (*n)
		*n += (size_t)snprintf(buf + *n, *n < len ? len - *n : 0, " ");
	if (plain) {
		*n += (size_t)snprintf(buf + *n, *n < len ? len - *n : 0, "%s", w);
		return;
	}
	*n += (size_t)snprintf(buf + *n, *n < len ? len - *n : 0, "\"");
	for (; *w; w++)
		*n += (size_t)snprintf(buf + *n, *n < len ? len - *n : 0, "%s%c",
				       *w == '"' || *w == '\\' ? "\\" : "", *w);
	*n += (size_t)snprintf(buf + *n, *n < len ? len - *n : 0, "\"");
}

void config_format(const struct config *cfg, void (*line)(const char *text, void *arg), void *arg)
{
	size_t len = 64 * 1024, n;
	char *buf = malloc(len), num[32];
	if (!buf)
		return;
#define W(s) put_word(buf, len, &n, (s))
#define U(v) (snprintf(num, sizeof(num), "%u", (unsigned)(v)), W(num))
	if (cfg->ticket_keys[0]) {
		n = 0;
		W("tickets"); W("keys"); W(cfg->ticket_keys);
		line(buf, arg);
	}
	if (cfg->metrics.text[0]) {
		n = 0;
		W("metrics"); W("listen"); W(cfg->metrics.text);
		line(buf, arg);
	}
	if (cfg->user[0]) {
		n = 0;
		W("user"); W(cfg->user);
		if (cfg->group[0]) {
			W("group"); W(cfg->group);
		}
		line(buf, arg);
	}
	for (unsigned i = 0; i < cfg->nbackends; i++) {
		const struct backend_conf *b = &cfg->backends[i];
		n = 0;
		W("backend"); W("add"); W(b->name);
		for (unsigned s = 0; s < b->nservers; s++) {
			W("server"); W(b->servers[s].text);
		}
		W("balance"); W(tlsoff_balance_name(b->balance));
		if (b->proxy_protocol) {
			W("proxy-protocol"); W("v2");
		}
		W("connect-timeout"); U(b->connect_timeout_ms);
		if (b->tls) {
			W("tls");
			if (b->tls_ca[0]) {
				W("ca"); W(b->tls_ca);
			}
			W("verify"); W(b->tls_verify ? "on" : "off");
			if (b->tls_sni[0]) {
				W("sni"); W(b->tls_sni);
			}
			if (b->tls_cert[0]) {
				W("cert"); W(b->tls_cert); W("key"); W(b->tls_key);
			}
		}
		line(buf, arg);
		for (unsigned s = 0; s < b->nservers; s++)
			if (b->drained & (1ull << s)) {
				n = 0;
				W("server"); W("drain"); W(b->name); W(b->servers[s].text);
				line(buf, arg);
			}
	}
	for (unsigned i = 0; i < cfg->nfrontends; i++) {
		const struct frontend_conf *f = &cfg->frontends[i];
		char alpn[TLSOFF_ALPN_MAX * 2];
		n = 0;
		W("frontend"); W("add"); W(f->name); W("listen"); W(f->listen.text);
		if (f->mode != MODE_TLS)
			W(tlsoff_mode_name(f->mode));
		for (unsigned r = 0; r < f->nroutes; r++) {
			char route[TLSOFF_SNI_MAX + TLSOFF_NAME_MAX + 2];
			snprintf(route, sizeof(route), "%s=%s", f->routes[r].pattern, f->routes[r].backend);
			W("sni"); W(route);
		}
		for (unsigned c = 0; c < f->ncerts; c++) {
			W("cert"); W(f->certs[c].chain); W("key"); W(f->certs[c].key);
			if (f->certs[c].ocsp[0]) {
				W("ocsp"); W(f->certs[c].ocsp);
			}
		}
		if (f->backend[0]) {
			W(f->mode == MODE_PASSTHROUGH ? "default" : "backend"); W(f->backend);
		}
		if (f->mode == MODE_TLS && f->alpn_len) {
			tlsoff_alpn_format(f->alpn, f->alpn_len, alpn, sizeof(alpn));
			W("alpn"); W(alpn);
		}
		if (f->mode == MODE_TLS) {
			W("tls-min"); W(tlsoff_tls_min_name(f->tls_min));
			W("datapath"); W(tlsoff_datapath_name(f->datapath));
		}
		if (f->mode != MODE_PLAIN) {
			W("handshake-timeout"); U(f->handshake_timeout_ms);
		}
		W("idle-timeout"); U(f->idle_timeout_ms);
		if (f->max_conns) {
			W("max-conns"); U(f->max_conns);
		}
		if (f->mode == MODE_TLS && f->client_ca[0]) {
			W("client-ca"); W(f->client_ca);
			W("client-verify"); W(tlsoff_client_verify_name(f->client_verify));
		}
		if (f->mode == MODE_TLS && f->nic_offload != NIC_OFFLOAD_OFF) {   /* like max-conns: only when set */
			W("nic-offload"); W(tlsoff_nic_offload_name(f->nic_offload));
		}
		line(buf, arg);
	}
#undef W
#undef U
	free(buf);
}

void config_free(struct config *cfg)
{
	free(cfg->backends);
	free(cfg->frontends);
	memset(cfg, 0, sizeof(*cfg));
}

/* Relative certificate (and ticket key) paths in a file are relative to the file's directory, so a
 * configuration and its certificates can move together. */
static int resolve_path(const char *cfgpath, char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(cfgpath, '/');
	char joined[TLSOFF_PATH_MAX];
	if (!slash || !path[0] || path[0] == '/')
		return 0;
	if (snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - cfgpath), cfgpath, path) >= (int)sizeof(joined))
		return errf(err, errlen, "path too long: %s", path);
	memcpy(path, joined, sizeof(joined));
	return 0;
}

static int resolve_paths(const char *cfgpath, struct cmd *c, char *err, size_t errlen)
{
	if (c->object == CMD_TICKETS)
		return resolve_path(cfgpath, c->u.tickets.keys, err, errlen);
	if (c->object == CMD_CERT)
		return resolve_path(cfgpath, c->u.cert.cert.chain, err, errlen) ||
		       resolve_path(cfgpath, c->u.cert.cert.key, err, errlen) ||
		       resolve_path(cfgpath, c->u.cert.cert.ocsp, err, errlen) ||
		       resolve_path(cfgpath, c->u.cert.old, err, errlen) ? -1 : 0;
	if (c->object == CMD_BACKEND && c->verb == CMD_ADD)
		return resolve_path(cfgpath, c->u.backend.tls_ca, err, errlen) ||
		       resolve_path(cfgpath, c->u.backend.tls_cert, err, errlen) ||
		       resolve_path(cfgpath, c->u.backend.tls_key, err, errlen) ? -1 : 0;
	if (c->object != CMD_FRONTEND || c->verb != CMD_ADD)
		return 0;
	for (unsigned i = 0; i < c->u.frontend.ncerts; i++)
		if (resolve_path(cfgpath, c->u.frontend.certs[i].chain, err, errlen) ||
		    resolve_path(cfgpath, c->u.frontend.certs[i].key, err, errlen) ||
		    resolve_path(cfgpath, c->u.frontend.certs[i].ocsp, err, errlen))
			return -1;
	return resolve_path(cfgpath, c->u.frontend.client_ca, err, errlen);
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	FILE *f = fopen(path, "r");
	if (!f)
		return errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	int rc = config_load_stream(f, path, cfg, err, errlen);
	fclose(f);
	return rc;
}

int config_load_stream(FILE *f, const char *path, struct config *cfg, char *err, size_t errlen)
{
	char msg[TLSOFF_ERR_MAX], *line = NULL, *argv[256];
	size_t cap = 0;
	unsigned lineno = 0, tickets_line = 0, metrics_line = 0, user_line = 0;
	int rc = 0;
	struct cmd *c = malloc(sizeof(*c));

	memset(cfg, 0, sizeof(*cfg));
	if (!c)
		return errf(err, errlen, "%s: out of memory", path);
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		int argc = cmd_split(line, argv, 256, msg, sizeof(msg));
		if (argc == 0)
			continue;
		if (argc < 0 || cmd_parse(argc, argv, c, msg, sizeof(msg)) ||
		    resolve_paths(path, c, msg, sizeof(msg)) ||
		    config_apply(cfg, c, msg, sizeof(msg))) {
			rc = errf(err, errlen, "%s:%u: %s", path, lineno, msg);
			break;
		}
		if (c->object == CMD_TICKETS) {
			if (tickets_line) {
				rc = errf(err, errlen, "%s:%u: tickets keys given twice (first on line %u)", path, lineno,
					  tickets_line);
				break;
			}
			tickets_line = lineno;
		}
		if (c->object == CMD_METRICS) {
			if (metrics_line) {
				rc = errf(err, errlen, "%s:%u: metrics given twice (first on line %u)", path, lineno,
					  metrics_line);
				break;
			}
			metrics_line = lineno;
		}
		if (c->object == CMD_USER) {
			if (user_line) {
				rc = errf(err, errlen, "%s:%u: user given twice (first on line %u)", path, lineno, user_line);
				break;
			}
			user_line = lineno;
		}
		if (c->object == CMD_BACKEND && c->verb == CMD_ADD)
			cfg->backends[cfg->nbackends - 1].line = lineno;
		else if (c->object == CMD_FRONTEND && c->verb == CMD_ADD)
			cfg->frontends[cfg->nfrontends - 1].line = lineno;
	}
	if (!rc && ferror(f))
		rc = errf(err, errlen, "%s: read error: %s", path, strerror(errno));
	if (!rc && config_check(cfg, msg, sizeof(msg))) {
		unsigned at = 0;
		for (unsigned i = 0; i < cfg->nfrontends; i++)
			if (find_backend(cfg, cfg->frontends[i].backend) < 0) {
				at = cfg->frontends[i].line;
				break;
			}
		rc = errf(err, errlen, "%s:%u: %s", path, at, msg);
	}
	free(line);
	free(c);
	if (rc)
		config_free(cfg);
	return rc;
}
