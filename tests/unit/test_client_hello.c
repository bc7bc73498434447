/* Unit tests for the ClientHello parser (datapath/client_hello.c), on real hellos written by OpenSSL's
 * client into a memory BIO, re-framed and mutated here. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>

#include "tlsoff/client_hello.h"
#include "run_suite.h"

/* Room for a synthetic hello a little over the parser's limit. */
struct hello {
	uint8_t b[CLIENT_HELLO_MAX + 4096];
	size_t n;
};

struct spec {
	const char *sni;              /* NULL: no server_name */
	const char *alpn;             /* wire format; NULL: "h2,http/1.1" */
	size_t alpn_len;
	int max_version;              /* 0: OpenSSL's default (TLS 1.3) */
};

static const char h2_http11[] = "\x02h2\x08http/1.1";

/* Run OpenSSL's client until it waits for the server: what it wrote is its ClientHello. */
static void gen(struct hello *h, struct spec s)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(ctx);
	if (s.max_version)
		ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, s.max_version), 1);
	SSL *ssl = SSL_new(ctx);
	BIO *wbio = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, BIO_new(BIO_s_mem()), wbio);
	if (s.sni)
		ck_assert_int_eq(SSL_set_tlsext_host_name(ssl, s.sni), 1);
	if (!s.alpn) {
		s.alpn = h2_http11;
		s.alpn_len = sizeof(h2_http11) - 1;
	}
	ck_assert_int_eq(SSL_set_alpn_protos(ssl, (const uint8_t *)s.alpn, (unsigned)s.alpn_len), 0);
	ck_assert_int_eq(SSL_connect(ssl), -1);
	ck_assert_int_eq(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
	int n = BIO_read(wbio, h->b, (int)sizeof(h->b));
	ck_assert_int_gt(n, 0);
	h->n = (size_t)n;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void gen_default(struct hello *h)
{
	gen(h, (struct spec){ .sni = "Example.COM" });
}

static enum ch_result parse(const struct hello *h, struct client_hello *ch)
{
	return client_hello_parse(h->b, h->n, ch);
}

/* --- editing a one-record hello: offsets found by walking it, lengths fixed up after a splice --------- */

static size_t get16(const struct hello *h, size_t at) { return (size_t)h->b[at] << 8 | h->b[at + 1]; }
static void put16(struct hello *h, size_t at, size_t v)
{
	h->b[at] = (uint8_t)(v >> 8);
	h->b[at + 1] = (uint8_t)v;
}

enum field { SESSION_ID, CIPHER_SUITES, COMPRESSION, EXTENSIONS };

/* Offset of a field's length prefix. */
static size_t field(const struct hello *h, enum field f)
{
	size_t at = 5 + 4 + 2 + 32;
	if (f > SESSION_ID)
		at += 1 + h->b[at];
	if (f > CIPHER_SUITES)
		at += 2 + get16(h, at);
	if (f > COMPRESSION)
		at += 1 + h->b[at];
	return at;
}

/* Offset of the first extension of that type, or 0. */
static size_t find_ext(const struct hello *h, size_t type)
{
	for (size_t at = field(h, EXTENSIONS) + 2; at + 4 <= h->n; at += 4 + get16(h, at + 2))
		if (get16(h, at) == type)
			return at;
	return 0;
}

static void fix_lengths(struct hello *h)
{
	put16(h, 3, h->n - 5);
	h->b[6] = (uint8_t)((h->n - 9) >> 16);
	put16(h, 7, h->n - 9);
	put16(h, field(h, EXTENSIONS), h->n - field(h, EXTENSIONS) - 2);
}

/* Replace del bytes at `at` by ins[0..n), then make the record, handshake and extensions lengths match. */
static void splice(struct hello *h, size_t at, size_t del, const void *ins, size_t n)
{
	ck_assert_uint_le(h->n - del + n, sizeof(h->b));
	memmove(h->b + at + n, h->b + at + del, h->n - at - del);
	if (n)
		memcpy(h->b + at, ins, n);
	h->n = h->n - del + n;
	fix_lengths(h);
}

/* Append an unknown extension of `size` zero bytes (the record length is then meaningless above 16 KB:
 * reframe() next). */
static void add_big_ext(struct hello *h, size_t size)
{
	static const uint8_t zeros[CLIENT_HELLO_MAX];
	const uint8_t hdr[4] = { 0xff, 0x01, (uint8_t)(size >> 8), (uint8_t)size };
	splice(h, h->n, 0, hdr, 4);
	splice(h, h->n, 0, zeros, size);
}

/* Re-frame the handshake message of a one-record hello into records of at most frag bytes. */
static void reframe(struct hello *dst, const struct hello *src, size_t frag)
{
	size_t n = 0;
	for (size_t at = 5; at < src->n; at += frag) {
		size_t k = src->n - at < frag ? src->n - at : frag;
		ck_assert_uint_le(n + 5 + k, sizeof(dst->b));
		memcpy(dst->b + n, src->b, 3);   /* type and version of the original record */
		dst->b[n + 3] = (uint8_t)(k >> 8);
		dst->b[n + 4] = (uint8_t)k;
		memcpy(dst->b + n + 5, src->b + at, k);
		n += 5 + k;
	}
	dst->n = n;
}

/* Replace the server_name extension by one carrying this host_name (OpenSSL's client checks its names). */
static void set_sni(struct hello *h, const char *name, size_t n)
{
	uint8_t ext[4 + 5 + 300] = { 0, 0, (uint8_t)((n + 5) >> 8), (uint8_t)(n + 5), (uint8_t)((n + 3) >> 8),
				     (uint8_t)(n + 3), 0, (uint8_t)(n >> 8), (uint8_t)n };
	size_t at = find_ext(h, 0);
	ck_assert_uint_ne(at, 0);
	memcpy(ext + 9, name, n);
	splice(h, at, 4 + get16(h, at + 2), ext, 9 + n);
}

static struct hello h, h2;   /* big: not on the stack */
static struct client_hello ch;

/* --- real hellos ---------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int max_version;
	uint16_t want_max;
} versions[] = {
	{ "TLS 1.2 only", TLS1_2_VERSION, 0x0303 },
	{ "TLS 1.3", 0, 0x0304 },
};

START_TEST(fields_of_real_hellos)
{
	gen(&h, (struct spec){ .sni = "Example.COM", .max_version = versions[_i].max_version });
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.sni, "example.com");
	ck_assert_str_eq(ch.alpn, "h2,http/1.1");
	ck_assert_uint_eq(ch.legacy_version, 0x0303);
	ck_assert_msg(ch.max_version == versions[_i].want_max, "%s: max_version %#x", versions[_i].name,
		      ch.max_version);
	ck_assert_uint_eq(ch.bytes, h.n);
	ck_assert_ptr_null(ch.why);
}
END_TEST

START_TEST(no_sni)
{
	gen(&h, (struct spec){ 0 });
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.sni, "");
	ck_assert_str_eq(ch.alpn, "h2,http/1.1");
}
END_TEST

/* Six names of 20 bytes and their commas take 125 characters of the 127: then `last` (kept only if it fits
 * whole), then "z", which must not be listed after a dropped name (the order is the client's preference). */
static const struct {
	const char *last;
	bool kept;
} alpn_lasts[] = {
	{ "x", true },    /* 127 characters: the most */
	{ "xy", false },  /* 128 */
};

START_TEST(alpn_whole_names_only)
{
	char wire[200], want[128] = "";
	size_t n = 0;
	for (int i = 0; i < 6; i++) {
		char name[32];
		snprintf(name, sizeof(name), "protocol-number-%04d", i);
		wire[n++] = 20;
		memcpy(wire + n, name, 20);
		n += 20;
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? "," : "", name);
	}
	const char *last = alpn_lasts[_i].last;
	n += (size_t)snprintf(wire + n, sizeof(wire) - n, "%c%s\001z", (int)strlen(last), last);
	if (alpn_lasts[_i].kept)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), ",%s", last);
	gen(&h, (struct spec){ .sni = "a.example", .alpn = wire, .alpn_len = n });
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.alpn, want);
}
END_TEST

START_TEST(alpn_opaque_bytes)
{
	/* Opaque bytes stay printable, and a comma inside a name can not fake a second one. */
	static const char odd[] = "\x03" "a,b" "\x02" "\x01\x7f";
	gen(&h, (struct spec){ .alpn = odd, .alpn_len = sizeof(odd) - 1 });
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.alpn, "a?b,??");
}
END_TEST

START_TEST(sni_longest)
{
	char name[255], want[256];
	for (size_t i = 0; i < sizeof(name); i++) {
		name[i] = "Ab-9._"[i % 6];
		want[i] = "ab-9._"[i % 6];
	}
	want[255] = '\0';
	gen_default(&h);
	set_sni(&h, name, sizeof(name));
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.sni, want);
}
END_TEST

START_TEST(grease_versions_ignored)
{
	gen_default(&h);
	size_t at = find_ext(&h, 43);
	ck_assert_uint_ne(at, 0);
	static const uint8_t grease_only_higher[] = { 0x00, 0x2b, 0x00, 0x07, 0x06, 0xfa, 0xfa, 0x03, 0x03, 0x1a, 0x1a };
	splice(&h, at, 4 + get16(&h, at + 2), grease_only_higher, sizeof(grease_only_higher));
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_uint_eq(ch.max_version, 0x0303);
}
END_TEST

/* --- framing ---------------------------------------------------------------------------------------- */

static const size_t frags[] = { 0 /* as OpenSSL wrote it */, 1, 7, 100, 16384 };

static void framed(struct hello *dst, size_t frag)
{
	gen_default(&h2);
	if (frag)
		reframe(dst, &h2, frag);
	else
		*dst = h2;
}

START_TEST(nothing_yet)
{
	ck_assert_int_eq(client_hello_parse(NULL, 0, &ch), CH_NEED_MORE);
	ck_assert_uint_eq(ch.need, 5);
}
END_TEST

START_TEST(every_prefix_needs_more)
{
	framed(&h, frags[_i]);
	for (size_t len = 0; len < h.n; len++) {
		enum ch_result r = client_hello_parse(h.b, len, &ch);
		ck_assert_msg(r == CH_NEED_MORE, "frag %zu, prefix %zu of %zu: result %d (%s)", frags[_i], len, h.n, r,
			      ch.why ? ch.why : "");
		ck_assert_msg(ch.need > len && ch.need <= h.n, "frag %zu, prefix %zu of %zu: need %zu", frags[_i], len,
			      h.n, ch.need);
	}
}
END_TEST

START_TEST(reframed_hello_parses)
{
	framed(&h, frags[_i]);
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_str_eq(ch.sni, "example.com");
	ck_assert_str_eq(ch.alpn, "h2,http/1.1");
	ck_assert_uint_eq(ch.max_version, 0x0304);
	ck_assert_uint_eq(ch.bytes, h.n);
}
END_TEST

START_TEST(partial_next_record_ignored)
{
	gen_default(&h);
	size_t n = h.n;
	memcpy(h.b + h.n, "\x16\x03\x03", 3);   /* not what a client sends, but not ours to judge */
	h.n += 3;
	ck_assert_int_eq(parse(&h, &ch), CH_COMPLETE);
	ck_assert_uint_eq(ch.bytes, n);
}
END_TEST

/* Synthetic hellos bigger than a record: {extension size, record size, expected result}. */
static const struct {
	size_t ext, frag;
	enum ch_result want;
} bigs[] = {
	{ 20000, 16384, CH_COMPLETE },   /* two records */
	{ 60000, 1000, CH_COMPLETE },    /* 61 records, 305 bytes of headers: fits in 64 KB */
	{ 60000, 50, CH_INVALID },       /* 1200+ records: their headers do not */
};

START_TEST(big_hello)
{
	gen_default(&h2);
	add_big_ext(&h2, bigs[_i].ext);
	reframe(&h, &h2, bigs[_i].frag);
	ck_assert_int_eq(parse(&h, &ch), bigs[_i].want);
	if (bigs[_i].want == CH_COMPLETE) {
		ck_assert_str_eq(ch.sni, "example.com");
		ck_assert_uint_eq(ch.bytes, h.n);
	} else {
		ck_assert_str_eq(ch.why, "ClientHello too large");
	}
}
END_TEST

/* --- malformed input: each case edits a real TLS 1.3 hello (SNI "Example.COM") ------------------------ */

static void raw(struct hello *x, const char *bytes, size_t n)
{
	memcpy(x->b, bytes, n);
	x->n = n;
}
static void http_request(struct hello *x) { raw(x, "GET / HTTP/1.1\r\n", 16); }
static void sslv2(struct hello *x) { raw(x, "\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10", 11); }
static void app_data(struct hello *x) { x->b[0] = 23; }
static void record_v2(struct hello *x) { x->b[1] = 2; }
static void record_empty(struct hello *x) { raw(x, "\x16\x03\x01\x00\x00", 5); }
static void record_too_long(struct hello *x) { put16(x, 3, 16385); }
static void server_hello(struct hello *x) { x->b[5] = 2; }
static void hello_over_limit(struct hello *x)   /* a handshake length of 65536: one record header says it */
{
	raw(x, "\x16\x03\x01\x00\x04" "\x01\x01\x00\x00", 9);
}
/* The largest hello allowed (65532 bytes) in four records whose headers leave no room for the fifth. */
static void records_past_limit(struct hello *x)
{
	static const size_t payload[] = { 16384, 16384, 16384, 16361 };
	memset(x->b, 0, CLIENT_HELLO_MAX);
	x->n = 0;
	for (size_t i = 0; i < sizeof(payload) / sizeof(payload[0]); i++) {
		memcpy(x->b + x->n, "\x16\x03\x01", 3);
		put16(x, x->n + 3, payload[i]);
		x->n += 5 + payload[i];
	}
	memcpy(x->b + 5, "\x01\x00\xff\xf8", 4);
}
static void session_id_33(struct hello *x)
{
	x->b[field(x, SESSION_ID)] = 33;
	splice(x, field(x, CIPHER_SUITES) - 1, 0, "x", 1);
}
static void cipher_suites_odd(struct hello *x)
{
	size_t at = field(x, CIPHER_SUITES);
	put16(x, at, get16(x, at) - 1);
	splice(x, at + 2, 1, NULL, 0);
}
static void no_compression(struct hello *x) { splice(x, field(x, COMPRESSION), 2, "\0", 1); }
static void extensions_longer(struct hello *x) { put16(x, field(x, EXTENSIONS), x->n - field(x, EXTENSIONS) - 1); }
static void extensions_shorter(struct hello *x) { put16(x, field(x, EXTENSIONS), x->n - field(x, EXTENSIONS) - 3); }
static void sni_space(struct hello *x) { set_sni(x, "exa mple.com", 12); }
static void sni_nul(struct hello *x) { set_sni(x, "example\0com", 11); }
static void sni_empty(struct hello *x) { set_sni(x, "", 0); }
static void sni_256(struct hello *x)
{
	char name[256];
	memset(name, 'a', sizeof(name));
	set_sni(x, name, sizeof(name));
}
static void sni_not_host_name(struct hello *x) { x->b[find_ext(x, 0) + 6] = 1; }
static void sni_twice(struct hello *x)
{
	size_t at = find_ext(x, 0), n = 4 + get16(x, at + 2);
	uint8_t copy[300];
	memcpy(copy, x->b + at, n);
	splice(x, at, 0, copy, n);
}
static void last_extension_cut(struct hello *x) { splice(x, x->n - 1, 1, NULL, 0); }
static void data_after_hello(struct hello *x)
{
	x->b[x->n++] = 0;
	put16(x, 3, x->n - 5);
}
static void second_record_not_handshake(struct hello *x)
{
	reframe(&h2, x, 100);
	*x = h2;
	x->b[105] = 23;
}

static const struct {
	const char *name;
	void (*edit)(struct hello *x);
	const char *why;
} bad[] = {
	{ "HTTP request", http_request, "not a TLS handshake" },
	{ "SSLv2 hello", sslv2, "SSLv2-style hello not supported" },
	{ "application data record", app_data, "not a TLS handshake" },
	{ "record version 2.x", record_v2, "bad record version" },
	{ "empty record", record_empty, "bad record length" },
	{ "record over 16 KB", record_too_long, "bad record length" },
	{ "ServerHello", server_hello, "not a ClientHello" },
	{ "hello over CLIENT_HELLO_MAX", hello_over_limit, "ClientHello too large" },
	{ "records past CLIENT_HELLO_MAX", records_past_limit, "ClientHello too large" },
	{ "session_id of 33", session_id_33, "bad session_id" },
	{ "odd cipher_suites", cipher_suites_odd, "bad cipher_suites" },
	{ "no compression method", no_compression, "bad compression_methods" },
	{ "extensions length too long", extensions_longer, "bad extensions length" },
	{ "extensions length too short", extensions_shorter, "bad extensions length" },
	{ "SNI with a space", sni_space, "bad SNI" },
	{ "SNI with a NUL", sni_nul, "bad SNI" },
	{ "SNI empty", sni_empty, "bad SNI" },
	{ "SNI of 256 bytes", sni_256, "bad SNI" },
	{ "SNI of name_type 1", sni_not_host_name, "bad server_name extension" },
	{ "server_name twice", sni_twice, "duplicate extension" },
	{ "last extension cut", last_extension_cut, "truncated extension" },
	{ "data after the hello", data_after_hello, "data after the ClientHello in its record" },
	{ "second record not handshake", second_record_not_handshake, "not a TLS handshake" },
};

START_TEST(malformed)
{
	gen_default(&h);
	bad[_i].edit(&h);
	enum ch_result r = parse(&h, &ch);
	ck_assert_msg(r == CH_INVALID, "%s: result %d", bad[_i].name, r);
	ck_assert_msg(ch.why && !strcmp(ch.why, bad[_i].why), "%s: why \"%s\"", bad[_i].name, ch.why);
	ck_assert_str_eq(ch.sni, "");   /* nothing half-parsed leaks out */
}
END_TEST

/* --- hostile input: random edits of real hellos, parsed from a buffer of exactly their size so that
 * valgrind or ASan would see any read past the end ------------------------------------------------------- */

static size_t pick_length(void)
{
	static const size_t lens[] = { 0, 1, 2, 3, 4, 5, 31, 32, 33, 255, 256, 16384, 16385, 0xffff };
	return rand() % 2 ? lens[rand() % (sizeof(lens) / sizeof(lens[0]))] : (size_t)rand() & 0xffff;
}

static void mutate(struct hello *x)
{
	size_t at = x->n ? (size_t)rand() % x->n : 0;
	switch (rand() % 5) {
	case 0:
		if (x->n)
			x->b[at] ^= (uint8_t)(1 << rand() % 8);
		break;
	case 1:
		if (x->n < sizeof(x->b)) {
			memmove(x->b + at + 1, x->b + at, x->n - at);
			x->b[at] = (uint8_t)rand();
			x->n++;
		}
		break;
	case 2:
		if (x->n) {
			memmove(x->b + at, x->b + at + 1, x->n - at - 1);
			x->n--;
		}
		break;
	case 3:   /* a length field, wherever it may be */
		if (at + 1 < x->n)
			put16(x, at, pick_length());
		break;
	case 4:
		x->n = at;
		break;
	}
}

START_TEST(random_mutations)
{
	static struct hello bases[3];
	gen_default(&bases[0]);
	gen(&bases[1], (struct spec){ .sni = "x", .max_version = TLS1_2_VERSION });
	reframe(&bases[2], &bases[0], 7);
	srand(20240601);
	unsigned counts[3] = { 0 };
	for (int iter = 0; iter < 20000; iter++) {
		h.n = bases[iter % 3].n;
		memcpy(h.b, bases[iter % 3].b, h.n);
		for (int k = 1 + rand() % 4; k > 0; k--)
			mutate(&h);
		uint8_t *exact = malloc(h.n ? h.n : 1);
		memcpy(exact, h.b, h.n);
		enum ch_result r = client_hello_parse(exact, h.n, &ch);
		free(exact);
		ck_assert_msg(r == CH_COMPLETE || r == CH_NEED_MORE || r == CH_INVALID, "iteration %d: %d", iter, r);
		counts[r]++;
		if (r == CH_COMPLETE)
			ck_assert_uint_le(ch.bytes, h.n);
		if (r == CH_NEED_MORE)
			ck_assert(ch.need > h.n && ch.need <= CLIENT_HELLO_MAX);
		if (r == CH_INVALID)
			ck_assert_ptr_nonnull(ch.why);
	}
	fprintf(stderr, "random_mutations: %u complete, %u need more, %u invalid\n", counts[CH_COMPLETE],
		counts[CH_NEED_MORE], counts[CH_INVALID]);
	ck_assert(counts[CH_COMPLETE] && counts[CH_NEED_MORE] && counts[CH_INVALID]);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *s = suite_create("client_hello");
	TCase *tc = tcase_create("parser");
	tcase_set_timeout(tc, 60);   /* random_mutations under valgrind */
	tcase_add_loop_test(tc, fields_of_real_hellos, 0, N(versions));
	tcase_add_test(tc, no_sni);
	tcase_add_test(tc, sni_longest);
	tcase_add_loop_test(tc, alpn_whole_names_only, 0, N(alpn_lasts));
	tcase_add_test(tc, alpn_opaque_bytes);
	tcase_add_test(tc, grease_versions_ignored);
	tcase_add_test(tc, nothing_yet);
	tcase_add_loop_test(tc, every_prefix_needs_more, 0, N(frags));
	tcase_add_loop_test(tc, reframed_hello_parses, 0, N(frags));
	tcase_add_test(tc, partial_next_record_ignored);
	tcase_add_loop_test(tc, big_hello, 0, N(bigs));
	tcase_add_loop_test(tc, malformed, 0, N(bad));
	tcase_add_test(tc, random_mutations);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
