/* client_hello.c — ClientHello parser for SNI routing (RFC 8446 4.1.2, RFC 6066 3, RFC 7301 3.1).
 *
 * The input is hostile and arrives a few bytes at a time, so there are two steps:
 *  1. walk the record layer over whatever is there, checking each header and the handshake header as
 *     soon as their bytes arrive (a port scanner or an HTTP client is refused on its first byte), until
 *     the records hold the whole handshake message;
 *  2. parse the message with a bounds-checked cursor, in place when it sits in one record (the usual
 *     case), else from a reassembled copy.
 */
#include "tlsoff/client_hello.h"
#include "tlsoff/ktls_record.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_HEADER    5
#define RECORD_MAX       16384   /* TLSPlaintext.length limit */
#define HS_HEADER        4
#define HS_CLIENT_HELLO  1

static enum ch_result invalid(struct client_hello *out, const char *why)
{
	memset(out, 0, sizeof(*out));   /* no half-parsed SNI for a caller that ignores the result */
	out->why = why;
	return CH_INVALID;
}

static enum ch_result need_more(struct client_hello *out, size_t need)
{
	memset(out, 0, sizeof(*out));
	out->need = need;
	return CH_NEED_MORE;
}

static size_t rd16(const uint8_t *p) { return (size_t)p[0] << 8 | p[1]; }
static size_t rd24(const uint8_t *p) { return (size_t)p[0] << 16 | rd16(p + 1); }

/* --- step 2: a cursor over the message; every read checks what is left ------------------------------ */

struct cur {
	const uint8_t *p;
	size_t n;
};

static bool take(struct cur *c, size_t k, struct cur *sub)
{
	if (c->n < k)
		return false;
	*sub = (struct cur){ c->p, k };
	c->p += k;
	c->n -= k;
	return true;
}

static bool get_uint(struct cur *c, size_t width, size_t *v)
{
	struct cur b;
	if (!take(c, width, &b))
		return false;
	*v = width == 1 ? b.p[0] : rd16(b.p);
	return true;
}

/* A TLS vector: a 1- or 2-byte length, then that many bytes. */
static bool vec(struct cur *c, size_t width, struct cur *sub)
{
	size_t k;
	return get_uint(c, width, &k) && take(c, k, sub);
}

/* The only host name characters we route on; anything else (space, NUL, '/', UTF-8 ...) is refused
 * rather than passed to backend selection and logs. Returns the lower-cased character, or 0. */
static char host_char(uint8_t ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return (char)(ch - 'A' + 'a');
	if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_')
		return (char)ch;
	return 0;
}

/* Extension handlers: return NULL when fine, else the reason. d is exactly the extension_data. */

static const char *server_name(struct cur d, struct client_hello *out)
{
	struct cur list, name;
	size_t type;
	/* Like OpenSSL's server, accept exactly one host_name: RFC 6066 forbids two of one type and no other
	 * type was ever defined. */
	if (!vec(&d, 2, &list) || d.n || !get_uint(&list, 1, &type) || type != 0 || !vec(&list, 2, &name) ||
	    list.n)
		return "bad server_name extension";
	if (name.n < 1 || name.n > sizeof(out->sni) - 1)
		return "bad SNI";
	for (size_t i = 0; i < name.n; i++)
		if (!(out->sni[i] = host_char(name.p[i])))
			return "bad SNI";
	out->sni[name.n] = '\0';
	return NULL;
}

static const char *alpn(struct cur d, struct client_hello *out)
{
	struct cur list, proto;
	size_t n = 0;
	bool full = false;
	if (!vec(&d, 2, &list) || d.n || !list.n)
		return "bad ALPN extension";
	while (list.n) {
		if (!vec(&list, 1, &proto) || !proto.n)
			return "bad ALPN extension";
		/* A protocol cut in the middle could match another one: keep whole names, stop at the first that
		 * does not fit, but still check the rest of the list. */
		size_t sep = n ? 1 : 0;
		if (full || n + sep + proto.n >= sizeof(out->alpn)) {
			full = true;
			continue;
		}
		if (sep)
			out->alpn[n++] = ',';
		/* Names are opaque bytes: keep the text printable and the commas ours. */
		for (size_t i = 0; i < proto.n; i++) {
			uint8_t ch = proto.p[i];
			out->alpn[n++] = ch > ' ' && ch < 0x7f && ch != ',' ? (char)ch : '?';
		}
	}
	out->alpn[n] = '\0';
	return NULL;
}

/* GREASE (RFC 8701) values are 0x0a0a, 0x1a1a ... 0xfafa: clients send them to keep servers tolerant. */
static bool grease(size_t v)
{
	return (v & 0x0f0f) == 0x0a0a && v >> 8 == (v & 0xff);
}

static const char *supported_versions(struct cur d, struct client_hello *out)
{
	struct cur list;
	size_t v, max = 0;
	if (!vec(&d, 1, &list) || d.n || list.n < 2 || list.n % 2)
		return "bad supported_versions extension";
	while (get_uint(&list, 2, &v))
		if (!grease(v) && v > max)
			max = v;
	if (max)
		out->max_version = (uint16_t)max;
	return NULL;
}

static const struct {
	uint16_t type;
	const char *(*parse)(struct cur d, struct client_hello *out);
} handlers[] = {
	{ 0, server_name },
	{ 16, alpn },
	{ 43, supported_versions },
};

static const char *parse_extensions(struct cur exts, struct client_hello *out)
{
	/* One bit per extension type: duplicates are forbidden (RFC 8446 4.2) and, for server_name, would
	 * let a client show us one name and the backend another. 8 KB of stack, no quadratic scan. */
	uint64_t seen[65536 / 64] = { 0 };
	while (exts.n) {
		size_t type;
		struct cur data;
		if (!get_uint(&exts, 2, &type) || !vec(&exts, 2, &data))
			return "truncated extension";
		if (seen[type / 64] >> (type % 64) & 1)
			return "duplicate extension";
		seen[type / 64] |= (uint64_t)1 << (type % 64);
		for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
			const char *why = handlers[i].type == type ? handlers[i].parse(data, out) : NULL;
			if (why)
				return why;
		}
	}
	return NULL;
}

static const char *parse_body(struct cur c, struct client_hello *out)
{
	struct cur v, exts;
	size_t version;
	if (!get_uint(&c, 2, &version) || !take(&c, 32, &v))   /* legacy_version, random */
		return "truncated ClientHello";
	if (!vec(&c, 1, &v) || v.n > 32)
		return "bad session_id";
	if (!vec(&c, 2, &v) || v.n < 2 || v.n % 2)
		return "bad cipher_suites";
	if (!vec(&c, 1, &v) || v.n < 1)
		return "bad compression_methods";
	out->legacy_version = out->max_version = (uint16_t)version;
	if (!c.n)   /* no extensions: allowed before TLS 1.3 */
		return NULL;
	if (!vec(&c, 2, &exts) || c.n)
		return "bad extensions length";
	return parse_extensions(exts, out);
}

/* --- step 1: the record layer ------------------------------------------------------------------------ */

enum ch_result client_hello_parse(const uint8_t *buf, size_t len, struct client_hello *out)
{
	uint8_t hs[HS_HEADER] = { 0 };   /* the handshake header, which may itself be split over records */
	size_t off = 0;            /* start of the current record */
	size_t got = 0;            /* handshake bytes in the complete records before it */
	size_t total = 0;          /* header + body of the handshake message, once its header is known */
	size_t records = 0;

	while (!total || got < total) {
		size_t have = len - off < RECORD_HEADER ? len - off : RECORD_HEADER;
		if (have >= 1 && buf[off] != TLS_RECORD_HANDSHAKE)
			return invalid(out, off == 0 && buf[0] & 0x80 ? "SSLv2-style hello not supported"
								 : "not a TLS handshake");
		if (have >= 2 && buf[off + 1] != 3)
			return invalid(out, "bad record version");
		if (have < RECORD_HEADER)   /* a record carries at least one byte, so it must fit too */
			return off + RECORD_HEADER + 1 > CLIENT_HELLO_MAX ? invalid(out, "ClientHello too large")
									  : need_more(out, off + RECORD_HEADER);
		size_t rlen = rd16(buf + off + 3);
		if (rlen < 1 || rlen > RECORD_MAX)
			return invalid(out, "bad record length");
		size_t end = off + RECORD_HEADER + rlen;
		if (end > CLIENT_HELLO_MAX)
			return invalid(out, "ClientHello too large");

		size_t avail = len - off - RECORD_HEADER < rlen ? len - off - RECORD_HEADER : rlen;
		for (size_t i = 0; i < avail && got + i < HS_HEADER; i++)
			hs[got + i] = buf[off + RECORD_HEADER + i];
		if (got + avail >= 1 && hs[0] != HS_CLIENT_HELLO)
			return invalid(out, "not a ClientHello");
		if (!total && got + avail >= HS_HEADER) {
			total = HS_HEADER + rd24(hs + 1);
			if (total > CLIENT_HELLO_MAX)
				return invalid(out, "ClientHello too large");
		}
		/* Nothing may follow the hello in its record: the client must wait for the server's reply. */
		if (total && got + rlen > total)
			return invalid(out, "data after the ClientHello in its record");
		if (avail < rlen)
			return need_more(out, end);
		got += rlen;
		off = end;
		records++;
	}

	uint8_t *copy = NULL;
	const uint8_t *msg = buf + RECORD_HEADER;
	if (records > 1) {
		if (!(copy = malloc(total)))
			return invalid(out, "out of memory");
		for (size_t o = 0, n = 0; n < total; ) {   /* the records were checked above */
			size_t rlen = rd16(buf + o + 3);
			memcpy(copy + n, buf + o + RECORD_HEADER, rlen);
			n += rlen;
			o += RECORD_HEADER + rlen;
		}
		msg = copy;
	}
	memset(out, 0, sizeof(*out));
	const char *why = parse_body((struct cur){ msg + HS_HEADER, total - HS_HEADER }, out);
	free(copy);
	if (why)
		return invalid(out, why);
	out->bytes = off;
	return CH_COMPLETE;
}
