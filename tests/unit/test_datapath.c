/* Unit tests for the engine's pure parts: PROXY v2 headers, SNI name matching, backend choice. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../../datapath/engine.h"
#include "tlsoff/proxy_v2.h"
#include "tlsoff/tls_ctx.h"
#include "run_suite.h"

START_TEST(proxy_v2_ipv4_with_tlvs)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(443) };
	inet_pton(AF_INET, "192.0.2.7", &src.sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &dst.sin_addr);
	uint8_t h[PROXY_V2_MAX];
	int n = proxy_v2_build(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst,
			       (const uint8_t *)"h2", 2, "example.com");
	/* 16 fixed + 12 addresses + (3 + 2) ALPN + (3 + 11) authority */
	ck_assert_int_eq(n, 16 + 12 + 5 + 14);
	ck_assert_mem_eq(h, "\r\n\r\n\0\r\nQUIT\n", 12);
	ck_assert_uint_eq(h[12], 0x21);               /* v2, PROXY */
	ck_assert_uint_eq(h[13], 0x11);               /* TCP over IPv4 */
	ck_assert_uint_eq((h[14] << 8) | h[15], n - 16);
	ck_assert_mem_eq(h + 16, &src.sin_addr, 4);
	ck_assert_mem_eq(h + 20, &dst.sin_addr, 4);
	ck_assert_uint_eq((h[24] << 8) | h[25], 40000);
	ck_assert_uint_eq((h[26] << 8) | h[27], 443);
	ck_assert_uint_eq(h[28], PP2_TYPE_ALPN);
	ck_assert_uint_eq((h[29] << 8) | h[30], 2);
	ck_assert_mem_eq(h + 31, "h2", 2);
	ck_assert_uint_eq(h[33], PP2_TYPE_AUTHORITY);
	ck_assert_uint_eq((h[34] << 8) | h[35], 11);
	ck_assert_mem_eq(h + 36, "example.com", 11);
}
END_TEST

START_TEST(proxy_v2_ipv6_and_errors)
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_port = htons(1) };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(2) };
	inet_pton(AF_INET6, "2001:db8::1", &src.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::2", &dst.sin6_addr);
	uint8_t h[PROXY_V2_MAX];
	int n = proxy_v2_build(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0, NULL);
	ck_assert_int_eq(n, 16 + 36);
	ck_assert_uint_eq(h[13], 0x21);               /* TCP over IPv6 */
	ck_assert_mem_eq(h + 16, &src.sin6_addr, 16);
	ck_assert_mem_eq(h + 32, &dst.sin6_addr, 16);
	ck_assert_uint_eq((h[48] << 8) | h[49], 1);
	ck_assert_uint_eq((h[50] << 8) | h[51], 2);

	struct sockaddr_in v4 = { .sin_family = AF_INET };
	ck_assert_int_eq(proxy_v2_build(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&v4, NULL, 0, NULL), -1);
	ck_assert_int_eq(proxy_v2_build(h, 20, (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0, NULL), -1);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	ck_assert_int_eq(proxy_v2_build(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0, longname), -1);
}
END_TEST

/* A PROXY v2 reader written from the specification, independent of proxy_v2.c: every TLV (and every SSL
 * sub-TLV) must fit exactly in its parent, or the header is refused. */
struct pp2_parsed {
	size_t addr_len;
	char alpn[256], authority[256];
	bool ssl;
	uint8_t client;
	uint32_t verify;
	char version[256], cn[256], cipher[256];
	unsigned nsub;
};

static void copy_value(char *dst, const uint8_t *v, size_t l)
{
	memcpy(dst, v, l);
	dst[l] = '\0';
}

static int pp2_parse(const uint8_t *h, size_t n, struct pp2_parsed *out)
{
	memset(out, 0, sizeof(*out));
	if (n < 16 || memcmp(h, "\r\n\r\n\0\r\nQUIT\n", 12) || h[12] != 0x21)
		return -1;
	size_t len = (size_t)(h[14] << 8 | h[15]);
	if (16 + len != n)
		return -1;
	out->addr_len = h[13] == 0x11 ? 12 : h[13] == 0x21 ? 36 : 0;
	for (size_t p = 16 + out->addr_len; p < n;) {
		if (p + 3 > n)
			return -1;
		size_t l = (size_t)(h[p + 1] << 8 | h[p + 2]);
		const uint8_t *v = h + p + 3;
		if (p + 3 + l > n)
			return -1;
		if (h[p] == PP2_TYPE_ALPN) {
			copy_value(out->alpn, v, l);
		} else if (h[p] == PP2_TYPE_AUTHORITY) {
			copy_value(out->authority, v, l);
		} else if (h[p] == PP2_TYPE_SSL) {
			if (l < 5)
				return -1;
			out->ssl = true;
			out->client = v[0];
			out->verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
			for (size_t q = 5; q < l;) {
				if (q + 3 > l)
					return -1;
				size_t sl = (size_t)(v[q + 1] << 8 | v[q + 2]);
				if (q + 3 + sl > l)
					return -1;
				char *dst = v[q] == PP2_SUBTYPE_SSL_VERSION ? out->version : v[q] == PP2_SUBTYPE_SSL_CN ? out->cn :
					    v[q] == PP2_SUBTYPE_SSL_CIPHER ? out->cipher : NULL;
				if (!dst)
					return -1;   /* we send nothing else */
				copy_value(dst, v + q + 3, sl);
				out->nsub++;
				q += 3 + sl;
			}
		}
		p += 3 + l;
	}
	return 0;
}

START_TEST(proxy_v2_ssl_round_trip)
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_port = htons(5555) };
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	inet_pton(AF_INET6, "2001:db8::7", &src.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::1", &dst.sin6_addr);
	uint8_t h[PROXY_V2_MAX];
	struct pp2_parsed p;
	struct proxy_v2_ssl ssl = { .client = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS,
				    .verify = 0, .version = "TLSv1.3", .cn = "client-one",
				    .cipher = "TLS_AES_128_GCM_SHA256" };
	int n = proxy_v2_build_ssl(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst,
				   (const uint8_t *)"http/1.1", 8, "www.example.com", &ssl);
	/* 16 + 36 addresses + (3 + 8) ALPN + (3 + 15) authority + SSL: 3 + 5 + (3 + 7) + (3 + 10) + (3 + 22) */
	ck_assert_int_eq(n, 16 + 36 + 11 + 18 + 3 + 5 + 10 + 13 + 25);
	ck_assert_int_eq(pp2_parse(h, (size_t)n, &p), 0);
	ck_assert_uint_eq(p.addr_len, 36);
	ck_assert_str_eq(p.alpn, "http/1.1");
	ck_assert_str_eq(p.authority, "www.example.com");
	ck_assert(p.ssl);
	ck_assert_uint_eq(p.client, 0x07);
	ck_assert_uint_eq(p.verify, 0);
	ck_assert_str_eq(p.version, "TLSv1.3");
	ck_assert_str_eq(p.cn, "client-one");
	ck_assert_str_eq(p.cipher, "TLS_AES_128_GCM_SHA256");
	ck_assert_uint_eq(p.nsub, 3);
	/* the SSL TLV is last: its own length covers client, verify and the three sub-TLVs */
	size_t at = 16 + 36 + 11 + 18;
	ck_assert_uint_eq(h[at], PP2_TYPE_SSL);
	ck_assert_uint_eq((h[at + 1] << 8) | h[at + 2], 5 + 10 + 13 + 25);
	ck_assert_uint_eq(h[at + 8], PP2_SUBTYPE_SSL_VERSION);

	/* no certificate: verify non-zero in network order, no CN sub-TLV; IPv4 and no ALPN/SNI */
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(1) }, d4 = { .sin_family = AF_INET };
	struct proxy_v2_ssl nocert = { .client = PP2_CLIENT_SSL, .verify = 0x01020304, .version = "TLSv1.2",
				       .cn = "", .cipher = "ECDHE-ECDSA-AES128-GCM-SHA256" };
	n = proxy_v2_build_ssl(h, sizeof(h), (struct sockaddr *)&s4, (struct sockaddr *)&d4, NULL, 0, NULL, &nocert);
	ck_assert_int_eq(n, 16 + 12 + 3 + 5 + (3 + 7) + (3 + 29));
	ck_assert_int_eq(pp2_parse(h, (size_t)n, &p), 0);
	ck_assert_uint_eq(p.client, PP2_CLIENT_SSL);
	ck_assert_uint_eq(p.verify, 0x01020304);
	ck_assert_mem_eq(h + 16 + 12 + 4, "\x01\x02\x03\x04", 4);
	ck_assert_str_eq(p.cn, "");
	ck_assert_uint_eq(p.nsub, 2);
	ck_assert_str_eq(p.alpn, "");

	/* the longest values fit in PROXY_V2_MAX; one byte more of CN is refused, never cut */
	char cn[PROXY_V2_TLV_MAX + 2], host[PROXY_V2_TLV_MAX + 1], cipher[PROXY_V2_SSL_CIPHER_MAX + 1];
	char version[PROXY_V2_SSL_VERSION_MAX + 1];
	uint8_t alpn[PROXY_V2_TLV_MAX];
	memset(cn, 'c', sizeof(cn) - 2);
	cn[sizeof(cn) - 2] = '\0';
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	memset(cipher, 'x', sizeof(cipher) - 1);
	cipher[sizeof(cipher) - 1] = '\0';
	memset(version, 'v', sizeof(version) - 1);
	version[sizeof(version) - 1] = '\0';
	memset(alpn, 'a', sizeof(alpn));
	struct proxy_v2_ssl big = { .client = 7, .version = version, .cn = cn, .cipher = cipher };
	n = proxy_v2_build_ssl(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst, alpn, sizeof(alpn),
			       host, &big);
	ck_assert_int_eq(n, PROXY_V2_MAX);
	ck_assert_int_eq(pp2_parse(h, (size_t)n, &p), 0);
	ck_assert_str_eq(p.cn, cn);
	ck_assert_str_eq(p.authority, host);
	cn[sizeof(cn) - 2] = 'c';
	cn[sizeof(cn) - 1] = '\0';
	ck_assert_int_eq(proxy_v2_build_ssl(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0,
					    NULL, &big), -1);
	/* and a header built without SSL has no SSL TLV */
	n = proxy_v2_build(h, sizeof(h), (struct sockaddr *)&src, (struct sockaddr *)&dst, NULL, 0, "a.test");
	ck_assert_int_eq(pp2_parse(h, (size_t)n, &p), 0);
	ck_assert(!p.ssl);
}
END_TEST

static const struct { const char *pattern, *host; int match; } names[] = {
	{ "example.com", "example.com", 1 },
	{ "example.com", "EXAMPLE.com", 1 },
	{ "example.com", "www.example.com", 0 },
	{ "*.example.com", "www.example.com", 1 },
	{ "*.example.com", "WWW.Example.COM", 1 },
	{ "*.example.com", "example.com", 0 },          /* a wildcard needs one more label */
	{ "*.example.com", "a.b.example.com", 0 },      /* ... and covers exactly one */
	{ "*.example.com", ".example.com", 0 },
	{ "*.example.com", "wwwexample.com", 0 },
	{ "www.*.com", "www.example.com", 0 },          /* only a leading wildcard is one */
};

START_TEST(sni_name_matching)
{
	ck_assert_msg(tls_name_matches(names[_i].pattern, names[_i].host) == names[_i].match, "%s vs %s",
		      names[_i].pattern, names[_i].host);
}
END_TEST

START_TEST(backend_roundrobin_and_next_server)
{
	struct backend_rt be;
	memset(&be, 0, sizeof(be));
	be.conf.nservers = 3;
	be.conf.balance = BALANCE_ROUNDROBIN;
	int seen[3] = { 0 };
	for (int i = 0; i < 30; i++)
		seen[backend_pick(&be, 0, -1)]++;
	ck_assert_int_eq(seen[0], 10);
	ck_assert_int_eq(seen[1], 10);
	ck_assert_int_eq(seen[2], 10);
	/* After a failed connect every other server is tried once, in order. */
	ck_assert_int_eq(backend_pick(&be, 1, 2), 0);
	ck_assert_int_eq(backend_pick(&be, 2, 0), 1);
}
END_TEST

START_TEST(backend_leastconn)
{
	struct backend_rt be;
	memset(&be, 0, sizeof(be));
	be.conf.nservers = 3;
	be.conf.balance = BALANCE_LEASTCONN;
	atomic_store(&be.active[0], 5);
	atomic_store(&be.active[1], 2);
	atomic_store(&be.active[2], 7);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(backend_pick(&be, 0, -1), 1);
	atomic_store(&be.active[1], 9);
	ck_assert_int_eq(backend_pick(&be, 0, -1), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("datapath");
	TCase *tc = tcase_create("parts");
	tcase_add_test(tc, proxy_v2_ipv4_with_tlvs);
	tcase_add_test(tc, proxy_v2_ipv6_and_errors);
	tcase_add_test(tc, proxy_v2_ssl_round_trip);
	tcase_add_loop_test(tc, sni_name_matching, 0, sizeof(names) / sizeof(names[0]));
	tcase_add_test(tc, backend_roundrobin_and_next_server);
	tcase_add_test(tc, backend_leastconn);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
