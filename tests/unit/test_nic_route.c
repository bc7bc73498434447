/* Unit tests for datapath/nic_route.c on this machine's kernel: the egress device of a real loopback
 * connection (IPv4 and IPv6), what a lookup costs (measured and printed: the reason there is no cache),
 * and the published device view. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlsoff/nic_route.h"
#include "run_suite.h"

/* A connected pair over loopback: *srv is the accepted side (the one tlsoffd would look up). */
static bool loopback_pair(int family, int *cli, int *srv)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)&ss;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (void *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		len = sizeof(*s);
	}
	int l = socket(family, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) < 0) {
		if (l >= 0)
			close(l);
		return false;
	}
	*cli = socket(family, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(*cli, (struct sockaddr *)&ss, len), 0);
	*srv = accept(l, NULL, NULL);
	ck_assert_int_ge(*srv, 0);
	close(l);
	return true;
}

START_TEST(loopback_v4_is_lo)
{
	int cli, srv;
	unsigned ifindex = 0;
	char name[IFNAMSIZ] = "", err[200] = "";
	ck_assert(loopback_pair(AF_INET, &cli, &srv));
	ck_assert_msg(nic_route_egress(srv, &ifindex, name, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(name, "lo");
	ck_assert_uint_eq(ifindex, if_nametoindex("lo"));

	/* What it costs: the reason the workers do not cache it. Printed for the record, bounded loosely. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(nic_route_egress(srv, &ifindex, name, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 2000 / 1000;
	fprintf(stderr, "nic_route_egress: %.1f us per lookup (2000 lookups)\n", us);
	ck_assert_msg(us < 2000, "a route lookup took %.1f us", us);
	close(cli);
	close(srv);
}
END_TEST

START_TEST(loopback_v6_is_lo)
{
	int cli, srv;
	unsigned ifindex = 0;
	char name[IFNAMSIZ] = "", err[200] = "";
	if (!loopback_pair(AF_INET6, &cli, &srv)) {
		fprintf(stderr, "loopback_v6_is_lo: SKIPPED: no IPv6 loopback here\n");
		return;
	}
	ck_assert_msg(nic_route_egress(srv, &ifindex, name, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(name, "lo");
	close(cli);
	close(srv);
}
END_TEST

START_TEST(not_a_connection)
{
	char name[IFNAMSIZ], err[200] = "";
	unsigned ifindex;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(nic_route_egress(fd, &ifindex, name, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "route lookup: "), "%s", err);
	close(fd);
}
END_TEST

START_TEST(published_view)
{
	struct netdev_info v[2] = { { .name = "lo", .ifindex = 1, .up = true },
				    { .name = "eth7", .ifindex = 7, .up = true } }, d;
	v[1].tls[0] = (struct netdev_feature){ .hw = true, .wanted = true, .active = true };
	ck_assert_int_eq(nic_device_lookup(7, &d), -1);   /* nothing published yet */
	nic_devices_publish(v, 2);
	ck_assert_int_eq(nic_device_lookup(7, &d), 0);
	ck_assert_str_eq(d.name, "eth7");
	ck_assert(d.tls[0].active);
	ck_assert_int_eq(nic_device_lookup(3, &d), -1);
	nic_devices_publish(NULL, 0);
	ck_assert_int_eq(nic_device_lookup(7, &d), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nic_route");
	TCase *tc = tcase_create("route");
	tcase_add_test(tc, loopback_v4_is_lo);
	tcase_add_test(tc, loopback_v6_is_lo);
	tcase_add_test(tc, not_a_connection);
	tcase_add_test(tc, published_view);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
