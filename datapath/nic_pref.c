/* nic_pref.c — the `nic-offload prefer` decision, a pure function (see nic_pref.h for the kernel facts it
 * rests on). The caller gathers the inputs: the ClientHello's versions and suites (tls_ctx.c), the egress
 * device from a route lookup and its features from the link monitor (nic_route.c). */
#include "tlsoff/nic_pref.h"

#include <stdio.h>

#define TLS12 0x0303

static struct nic_pref_out na(enum nic_pref_reason r)
{
	return (struct nic_pref_out){ NIC_PREF_NOT_APPLICABLE, r };
}

struct nic_pref_out nic_pref_decide(const struct nic_pref_in *in)
{
	if (in->mode != NIC_OFFLOAD_PREFER)
		return (struct nic_pref_out){ NIC_PREF_NONE, NIC_WHY_NONE };
	if (!in->ktls)
		return na(NIC_WHY_NO_KTLS);
	if (!in->route_ok)
		return na(NIC_WHY_NO_ROUTE);
	if (!in->dev_known)
		return na(NIC_WHY_DEV_UNKNOWN);
	/* "fixed" includes "not in hw" (netdev.h): a device without the offload at all. */
	if (!in->tx.hw)
		return na(NIC_WHY_DEV_NO_HW);
	if (!in->tx.active)
		return na(NIC_WHY_DEV_HW_OFF);
	if (!in->dev_up)
		return na(NIC_WHY_DEV_DOWN);
	if (in->tls_min > TLS12)
		return na(NIC_WHY_TLS_MIN_13);
	if (!in->client_tls12)
		return na(NIC_WHY_CLIENT_13_ONLY);
	if (!in->client_gcm12)
		return na(NIC_WHY_CLIENT_NO_GCM);
	return (struct nic_pref_out){ NIC_PREF_APPLIED, NIC_WHY_PREFERRED };
}

const char *nic_pref_text(enum nic_pref_verdict v, enum nic_pref_reason r, const char *dev, char *out, size_t len)
{
	const char *d = dev && *dev ? dev : "?";
	if (v == NIC_PREF_NONE) {
		snprintf(out, len, "%s", "");
		return out;
	}
	switch (r) {
	case NIC_WHY_PREFERRED:
		snprintf(out, len, "preferred TLS 1.2 AES-GCM for %s", d);
		break;
	case NIC_WHY_NO_KTLS:
		snprintf(out, len, "not applicable: no kTLS for this connection");
		break;
	case NIC_WHY_NO_ROUTE:
		snprintf(out, len, "not applicable: no route to the client found");
		break;
	case NIC_WHY_DEV_UNKNOWN:
		snprintf(out, len, "not applicable: egress %s: its TLS features are unknown (no link monitor)", d);
		break;
	case NIC_WHY_DEV_NO_HW:
		snprintf(out, len, "not applicable: egress %s has no tls-hw-tx-offload", d);
		break;
	case NIC_WHY_DEV_HW_OFF:
		snprintf(out, len, "not applicable: egress %s has tls-hw-tx-offload off", d);
		break;
	case NIC_WHY_DEV_DOWN:
		snprintf(out, len, "not applicable: egress %s is down", d);
		break;
	case NIC_WHY_TLS_MIN_13:
		snprintf(out, len, "not applicable: tls-min 1.3 (NIC offload takes TLS 1.2 only)");
		break;
	case NIC_WHY_CLIENT_13_ONLY:
		snprintf(out, len, "not applicable: client offers TLS 1.3 only");
		break;
	case NIC_WHY_CLIENT_NO_GCM:
		snprintf(out, len, "not applicable: client offers no TLS 1.2 AES-GCM suite for our certificate");
		break;
	default:
		snprintf(out, len, "not applicable");
	}
	return out;
}
