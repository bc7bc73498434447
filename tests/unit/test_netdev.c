/* Unit tests for datapath/netdev.c against this machine's kernel: TLS offload features through ethtool
 * netlink, and the rtnetlink link monitor (in a network namespace of its own, with a veth pair). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "tlsoff/log.h"
#include "tlsoff/netdev.h"
#include "run_suite.h"

static char err[256];

static const struct netdev_info *by_name(const struct netdev_info *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

/* No device here has TLS offload: each TLS feature is reported, off, and fixed because hw is off. */
static void assert_no_tls_offload(const struct netdev_info *d)
{
	for (int i = 0; i < NETDEV_TLS_FEATURES; i++) {
		ck_assert_msg(!d->tls[i].hw, "%s: %s hw", d->name, netdev_tls_feature_names[i]);
		ck_assert_msg(!d->tls[i].active, "%s: %s active", d->name, netdev_tls_feature_names[i]);
		ck_assert_msg(!d->tls[i].wanted, "%s: %s wanted", d->name, netdev_tls_feature_names[i]);
		ck_assert_msg(d->tls[i].fixed, "%s: %s not fixed", d->name, netdev_tls_feature_names[i]);
	}
}

START_TEST(list_all_has_lo)
{
	struct netdev_info *v;
	size_t n;
	ck_assert_msg(netdev_list(NULL, &v, &n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_ge(n, 1);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_lt(v[i - 1].ifindex, v[i].ifindex);
	const struct netdev_info *lo = by_name(v, n, "lo");
	ck_assert_ptr_nonnull(lo);
	ck_assert_uint_eq(lo->ifindex, if_nametoindex("lo"));
	ck_assert_str_eq(netdev_tls_feature_names[0], "tls-hw-tx-offload");
	ck_assert_str_eq(netdev_tls_feature_names[1], "tls-hw-rx-offload");
	ck_assert_str_eq(netdev_tls_feature_names[2], "tls-hw-record");
	assert_no_tls_offload(lo);
	free(v);
}
END_TEST

START_TEST(list_one)
{
	struct netdev_info *v;
	size_t n;
	ck_assert_msg(netdev_list("lo", &v, &n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].name, "lo");
	ck_assert_uint_eq(v[0].ifindex, if_nametoindex("lo"));
	assert_no_tls_offload(&v[0]);
	free(v);
}
END_TEST

START_TEST(list_missing_device)
{
	struct netdev_info *v = (void *)1;
	size_t n = 7;
	ck_assert_int_eq(netdev_list("nonexistent0", &v, &n, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no such device: nonexistent0");
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(set_fixed_feature)
{
	ck_assert_int_eq(netdev_feature_set("lo", "tls-hw-tx", true, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "lo cannot change tls-hw-tx-offload (fixed: the device has no TLS offload)");
	ck_assert_int_eq(netdev_feature_set("lo", "tls-hw-rx-offload", true, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "lo cannot change tls-hw-rx-offload (fixed: the device has no TLS offload)");
	/* Off is where it already is: that is success, not an error. */
	ck_assert_msg(netdev_feature_set("lo", "tls-hw-record", false, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(set_unknown_feature_or_device)
{
	static const char *const bad[] = { "tls-hw-foo", "tls-hw", "tls-hw-record-offload", "tx-checksum-ip-generic", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(netdev_feature_set("lo", bad[i], true, err, sizeof(err)), -1);
		ck_assert_msg(!strncmp(err, "unknown feature: ", 17) && strstr(err, bad[i]), "%s: %s", bad[i], err);
	}
	ck_assert_int_eq(netdev_feature_set("nonexistent0", "tls-hw-tx", true, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no such device: nonexistent0");
}
END_TEST

/* In a child without CAP_NET_ADMIN (effective), so the runner keeps its privileges whatever CK_FORK says. */
START_TEST(set_needs_cap_net_admin)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct d[2];
		struct netdev_info *v;
		size_t n;
		char out[300];
		if (syscall(SYS_capget, &h, d) < 0)
			_exit(2);
		d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
		if (syscall(SYS_capset, &h, d) < 0)
			_exit(2);
		int listed = netdev_list("lo", &v, &n, err, sizeof(err));   /* reading needs no privilege */
		int rc = netdev_feature_set("lo", "tls-hw-tx", true, err, sizeof(err));
		int len = snprintf(out, sizeof(out), "%d %d %s", listed, rc, err);
		_exit(write(p[1], out, (size_t)len) == len ? 0 : 2);
	}
	close(p[1]);
	char got[300] = "";
	ssize_t len = read(p[0], got, sizeof(got) - 1);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed to drop CAP_NET_ADMIN");
	ck_assert_int_gt(len, 0);
	ck_assert_str_eq(got, "0 -1 changing the features of lo needs CAP_NET_ADMIN");
}
END_TEST

/* --- the monitor, in a network namespace of its own -------------------------------------------------- */

static int home_netns = -1, saved_stderr = -1;
static char log_path[] = "/tmp/tlsoff-netdev-test.XXXXXX";

static void restore(void)
{
	if (home_netns >= 0) {
		ck_assert_int_eq(setns(home_netns, CLONE_NEWNET), 0);
		close(home_netns);
		home_netns = -1;
	}
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
		unlink(log_path);
	}
}

/* Process events until done(m) holds, for at most 5 s. */
static bool settle(struct netdev_monitor *m, bool (*done)(const struct netdev_monitor *m))
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!done(m)) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 5000)
			return false;
		struct pollfd p = { .fd = netdev_monitor_fd(m), .events = POLLIN };
		poll(&p, 1, 100);
		netdev_monitor_process(m);
	}
	return true;
}

static const struct netdev_info *in_view(const struct netdev_monitor *m, const char *name)
{
	size_t n;
	const struct netdev_info *v = netdev_monitor_view(m, &n);
	return by_name(v, n, name);
}

static bool pair_present(const struct netdev_monitor *m) { return in_view(m, "ndt0") && in_view(m, "ndt1"); }
static bool ndt0_up(const struct netdev_monitor *m) { return in_view(m, "ndt0") && in_view(m, "ndt0")->up; }
static bool pair_gone(const struct netdev_monitor *m) { return !in_view(m, "ndt0") && !in_view(m, "ndt1"); }
static unsigned events_before;
static bool new_event(const struct netdev_monitor *m) { return netdev_monitor_events(m) > events_before; }

static struct rtnl_link *link_named(struct nl_sock *sk, const char *name)
{
	struct rtnl_link *l = NULL;
	ck_assert_int_eq(rtnl_link_get_kernel(sk, 0, name, &l), 0);
	return l;
}

START_TEST(monitor_follows_veth)
{
	home_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(home_netns, 0);
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "monitor_follows_veth: SKIPPED: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return;
	}
	/* The log lines are part of what is tested: stderr goes to a file for the rest of the test. */
	int fd = mkstemp(log_path);
	ck_assert_int_ge(fd, 0);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);

	struct netdev_monitor *m = netdev_monitor_open(err, sizeof(err));
	ck_assert_msg(m != NULL, "%s", err);
	size_t n;
	const struct netdev_info *v = netdev_monitor_view(m, &n);
	ck_assert_uint_eq(n, 1);   /* a new namespace has lo, down */
	ck_assert_str_eq(v[0].name, "lo");
	ck_assert(!v[0].up);

	struct nl_sock *sk = nl_socket_alloc();
	ck_assert_ptr_nonnull(sk);
	ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
	ck_assert_int_eq(rtnl_link_veth_add(sk, "ndt0", "ndt1", getpid()), 0);
	ck_assert_msg(settle(m, pair_present), "the veth pair did not appear in the view");
	for (int i = 0; i < 2; i++) {
		const struct netdev_info *d = in_view(m, i ? "ndt1" : "ndt0");
		ck_assert(!d->up);
		ck_assert_uint_eq(d->ifindex, if_nametoindex(d->name));
		assert_no_tls_offload(d);   /* veth has no TLS offload */
	}

	struct rtnl_link *l = link_named(sk, "ndt0"), *change = rtnl_link_alloc();
	rtnl_link_set_flags(change, IFF_UP);
	ck_assert_int_eq(rtnl_link_change(sk, l, change, 0), 0);
	ck_assert_msg(settle(m, ndt0_up), "ndt0 did not go up in the view");
	ck_assert(!in_view(m, "ndt1")->up);

	/* `ethtool -K` changes features through the same ethtool netlink; the kernel announces it with an
	 * RTM_NEWLINK (NETDEV_FEAT_CHANGE), which the monitor must see. */
	if (system("command -v ethtool >/dev/null 2>&1") == 0) {
		events_before = netdev_monitor_events(m);
		ck_assert_int_ne(system("ethtool -K ndt0 tx off >/dev/null 2>&1"), -1);
		ck_assert_msg(settle(m, new_event), "no link event after ethtool -K");
		assert_no_tls_offload(in_view(m, "ndt0"));
	} else {
		fprintf(stderr, "monitor_follows_veth: ethtool not installed, feature-change event not checked\n");
	}

	ck_assert_int_eq(rtnl_link_delete(sk, l), 0);   /* takes the peer with it */
	ck_assert_msg(settle(m, pair_gone), "the veth pair did not leave the view");
	ck_assert_uint_ge(netdev_monitor_events(m), 4);
	rtnl_link_put(change);
	rtnl_link_put(l);
	nl_socket_free(sk);
	netdev_monitor_close(m);

	char logged[8192] = "";
	FILE *f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	size_t len = fread(logged, 1, sizeof(logged) - 1, f);
	logged[len] = '\0';
	fclose(f);
	static const char *const want[] = {
		"notice: link ndt0: added (ifindex ", ", down, TLS offload: none)", "notice: link ndt1: added",
		"notice: link ndt0: up\n", "notice: link ndt0: removed\n", "notice: link ndt1: removed\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(logged, want[i]), "log lacks '%s':\n%s", want[i], logged);
	ck_assert_msg(!strstr(logged, "warning"), "unexpected warning:\n%s", logged);
}
END_TEST

int main(void)
{
	log_init("test_netdev", LOG_NOTICE, false);
	Suite *s = suite_create("netdev");
	TCase *tc = tcase_create("ethtool");
	tcase_add_test(tc, list_all_has_lo);
	tcase_add_test(tc, list_one);
	tcase_add_test(tc, list_missing_device);
	tcase_add_test(tc, set_fixed_feature);
	tcase_add_test(tc, set_unknown_feature_or_device);
	tcase_add_test(tc, set_needs_cap_net_admin);
	suite_add_tcase(s, tc);
	TCase *mon = tcase_create("monitor");
	tcase_add_checked_fixture(mon, NULL, restore);
	tcase_set_timeout(mon, 30);
	tcase_add_test(mon, monitor_follows_veth);
	suite_add_tcase(s, mon);
	return run_suite(s);
}
