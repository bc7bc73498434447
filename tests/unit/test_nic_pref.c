/* Unit tests for datapath/nic_pref.c: the `nic-offload prefer` decision against synthetic feature sets
 * (no hardware anywhere has to exist), and its words. */
#include <check.h>
#include <string.h>

#include "tlsoff/nic_pref.h"
#include "run_suite.h"

/* A client that offers TLS 1.2 and 1.3 with AES-GCM, routed through eth0 whose tls-hw-tx-offload is on. */
static struct nic_pref_in good(void)
{
	struct nic_pref_in in = {
		.mode = NIC_OFFLOAD_PREFER, .tls_min = 0x0303, .ktls = true,
		.client_tls12 = true, .client_tls13 = true, .client_gcm12 = true,
		.route_ok = true, .dev_known = true, .dev_up = true,
		.tx = { .hw = true, .wanted = true, .active = true, .fixed = false },
		.dev = "eth0",
	};
	return in;
}

static void expect(const struct nic_pref_in *in, enum nic_pref_verdict v, enum nic_pref_reason r, const char *text)
{
	char buf[128];
	struct nic_pref_out o = nic_pref_decide(in);
	ck_assert_int_eq(o.verdict, v);
	ck_assert_int_eq(o.reason, r);
	ck_assert_str_eq(nic_pref_text(o.verdict, o.reason, in->dev, buf, sizeof(buf)), text);
}

START_TEST(hw_tx_on_prefers)
{
	struct nic_pref_in in = good();
	expect(&in, NIC_PREF_APPLIED, NIC_WHY_PREFERRED, "preferred TLS 1.2 AES-GCM for eth0");
	/* a TLS 1.2-only client is steered the same way (it gets what it would have got anyway) */
	in.client_tls13 = false;
	expect(&in, NIC_PREF_APPLIED, NIC_WHY_PREFERRED, "preferred TLS 1.2 AES-GCM for eth0");
}
END_TEST

START_TEST(hw_tx_off)
{
	/* the device can, but `ethtool -K eth0 tls-hw-tx-offload off` */
	struct nic_pref_in in = good();
	in.tx = (struct netdev_feature){ .hw = true, .wanted = false, .active = false, .fixed = false };
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_HW_OFF,
	       "not applicable: egress eth0 has tls-hw-tx-offload off");
	/* wanted but not (yet) active is still off for the kernel: tls_set_device_offload reads features */
	in.tx.wanted = true;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_HW_OFF,
	       "not applicable: egress eth0 has tls-hw-tx-offload off");
}
END_TEST

START_TEST(hw_tx_fixed_off)
{
	/* lo, veth, virtio: no such offload at all — what `ethtool -k` shows as "off [fixed]" */
	struct nic_pref_in in = good();
	strcpy(in.dev, "lo");
	in.tx = (struct netdev_feature){ .hw = false, .wanted = false, .active = false, .fixed = true };
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_NO_HW, "not applicable: egress lo has no tls-hw-tx-offload");
	/* the device's verdict does not depend on the client: a TLS 1.3-only client reads the same reason */
	in.client_tls12 = false;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_NO_HW, "not applicable: egress lo has no tls-hw-tx-offload");
}
END_TEST

START_TEST(dev_down_or_unknown)
{
	struct nic_pref_in in = good();
	in.dev_up = false;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_DOWN, "not applicable: egress eth0 is down");
	in = good();
	in.dev_known = false;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_DEV_UNKNOWN,
	       "not applicable: egress eth0: its TLS features are unknown (no link monitor)");
	in = good();
	in.route_ok = false;
	in.dev[0] = '\0';
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_NO_ROUTE, "not applicable: no route to the client found");
}
END_TEST

START_TEST(tls_min_13)
{
	struct nic_pref_in in = good();
	in.tls_min = 0x0304;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_TLS_MIN_13,
	       "not applicable: tls-min 1.3 (NIC offload takes TLS 1.2 only)");
}
END_TEST

START_TEST(client_without_gcm)
{
	struct nic_pref_in in = good();
	in.client_gcm12 = false;        /* e.g. ChaCha20-Poly1305 only, or GCM only for another key type */
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_CLIENT_NO_GCM,
	       "not applicable: client offers no TLS 1.2 AES-GCM suite for our certificate");
}
END_TEST

START_TEST(client_tls13_only)
{
	struct nic_pref_in in = good();
	in.client_tls12 = false;
	in.client_gcm12 = false;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_CLIENT_13_ONLY, "not applicable: client offers TLS 1.3 only");
}
END_TEST

START_TEST(prefer_off)
{
	/* off decides nothing and says nothing, whatever the device can do */
	struct nic_pref_in in = good();
	in.mode = NIC_OFFLOAD_OFF;
	expect(&in, NIC_PREF_NONE, NIC_WHY_NONE, "");
	in.tx.hw = in.tx.active = false;
	expect(&in, NIC_PREF_NONE, NIC_WHY_NONE, "");
}
END_TEST

START_TEST(no_ktls)
{
	/* datapath userspace, or a kernel without TLS 1.2 AES-GCM: the NIC never sees the keys */
	struct nic_pref_in in = good();
	in.ktls = false;
	expect(&in, NIC_PREF_NOT_APPLICABLE, NIC_WHY_NO_KTLS, "not applicable: no kTLS for this connection");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nic_pref");
	TCase *tc = tcase_create("decide");
	tcase_add_test(tc, hw_tx_on_prefers);
	tcase_add_test(tc, hw_tx_off);
	tcase_add_test(tc, hw_tx_fixed_off);
	tcase_add_test(tc, dev_down_or_unknown);
	tcase_add_test(tc, tls_min_13);
	tcase_add_test(tc, client_without_gcm);
	tcase_add_test(tc, client_tls13_only);
	tcase_add_test(tc, prefer_off);
	tcase_add_test(tc, no_ktls);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
