/* nic_pref.h — `nic-offload prefer`: should this connection be steered to what NIC TLS offload can take?
 *
 * Mainline NIC TLS offload (net/tls/tls_device.c, tls_set_device_offload and _rx) accepts TLS 1.2 only,
 * with AES-128-GCM or AES-256-GCM (6.1 through the newest tree read; docs/kernel.md), and only when the
 * socket's route leaves through a netdev whose tls-hw-tx-offload (tls-hw-rx-offload) feature is active.
 * Everything else silently gets software kTLS. So on a frontend with `nic-offload prefer`, a client whose
 * route leaves through such a device, that offers TLS 1.2 and a TLS 1.2 AES-GCM suite our certificate can
 * sign for, is served TLS 1.2 with AES-GCM first; every other client is left alone, with the reason.
 *
 * The decision is a pure function of its inputs (no sockets, no OpenSSL objects), so it is unit-tested
 * against synthetic feature sets: tests/unit/test_nic_pref.c. */
#ifndef TLSOFF_NIC_PREF_H
#define TLSOFF_NIC_PREF_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>

#include "tlsoff/config.h"
#include "tlsoff/netdev.h"

/* What the decision says, compactly, so a connection keeps two bytes and a device name rather than a
 * string; nic_pref_text() turns it into words. */
enum nic_pref_verdict {
	NIC_PREF_NONE,            /* nic-offload off: nothing decided, nothing reported */
	NIC_PREF_APPLIED,         /* capped at TLS 1.2, AES-GCM first */
	NIC_PREF_NOT_APPLICABLE,  /* left alone; the reason says why */
};

enum nic_pref_reason {
	NIC_WHY_NONE,
	NIC_WHY_PREFERRED,        /* "preferred TLS 1.2 AES-GCM for eth0" */
	NIC_WHY_NO_KTLS,          /* datapath userspace, or the kernel cannot take TLS 1.2 AES-GCM at all */
	NIC_WHY_NO_ROUTE,         /* the route lookup failed */
	NIC_WHY_DEV_UNKNOWN,      /* the device is not in the link monitor's view */
	NIC_WHY_DEV_NO_HW,        /* the device has no tls-hw-tx-offload (fixed off) */
	NIC_WHY_DEV_HW_OFF,       /* it has one, but it is not active (ethtool -K DEV tls-hw-tx-offload off) */
	NIC_WHY_DEV_DOWN,         /* administratively down: tls_set_device_offload refuses it */
	NIC_WHY_TLS_MIN_13,       /* the frontend's tls-min 1.3 forbids TLS 1.2 */
	NIC_WHY_CLIENT_13_ONLY,   /* the client does not offer TLS 1.2 */
	NIC_WHY_CLIENT_NO_GCM,    /* the client offers no TLS 1.2 AES-GCM suite usable with our certificate */
};

struct nic_pref_in {
	enum tlsoff_nic_offload mode;       /* the frontend's nic-offload */
	int tls_min;                        /* TLS1_2_VERSION or TLS1_3_VERSION (0x0303 / 0x0304) */
	bool ktls;                          /* this connection could get kTLS at all: datapath not userspace, and
					     * the kernel takes TLS 1.2 AES-GCM both ways */
	bool client_tls12, client_tls13;    /* versions the ClientHello offers */
	bool client_gcm12;                  /* it offers a TLS 1.2 AES-GCM suite our certificate's key can sign */
	bool route_ok;                      /* the egress device is known (dev names it) */
	bool dev_known;                     /* ... and is in the link monitor's view (feature below is valid) */
	bool dev_up;
	struct netdev_feature tx;           /* the egress device's tls-hw-tx-offload */
	char dev[IFNAMSIZ];
};

struct nic_pref_out {
	enum nic_pref_verdict verdict;
	enum nic_pref_reason reason;
};

/* The decision. Never refuses a client: at worst it is NOT_APPLICABLE and the handshake goes on as without
 * the option. Rules, first match wins: off -> NONE; no kTLS possible; the route; the device (unknown, no
 * hardware, feature off, down); tls-min 1.3; client without TLS 1.2; client without a usable AES-GCM
 * suite; else APPLIED. The device comes before the client so that the reason an operator reads about a
 * device without offload ("egress lo has no tls-hw-tx-offload") does not depend on each client. */
struct nic_pref_out nic_pref_decide(const struct nic_pref_in *in);

/* Words for a verdict: "preferred TLS 1.2 AES-GCM for eth0", "not applicable: egress lo has no
 * tls-hw-tx-offload", "" for NONE. Returns out. */
const char *nic_pref_text(enum nic_pref_verdict v, enum nic_pref_reason r, const char *dev, char *out, size_t len);

#endif
