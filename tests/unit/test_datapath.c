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
	tcase_add_loop_test(tc, sni_name_matching, 0, sizeof(names) / sizeof(names[0]));
	tcase_add_test(tc, backend_roundrobin_and_next_server);
	tcase_add_test(tc, backend_leastconn);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
