/* netdev.h — the NIC side of TLS offload as the kernel reports it: each netdev's TLS offload features
 * (ethtool generic netlink, the data `ethtool -k DEV | grep tls` prints), switching one on or off
 * (`ethtool -K`), and a link monitor (rtnetlink) that logs links coming and going, going up or down and
 * any change of their TLS features. */
#ifndef TLSOFF_NETDEV_H
#define TLSOFF_NETDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>

#define NETDEV_TLS_FEATURES 3
/* "tls-hw-tx-offload", "tls-hw-rx-offload", "tls-hw-record": ethtool's netdev feature names */
extern const char *const netdev_tls_feature_names[NETDEV_TLS_FEATURES];

/* hw = the device can do it (ETHTOOL_A_FEATURES_HW); wanted = asked for (WANTED); active = in use (ACTIVE);
 * fixed = cannot be changed: in ETHTOOL_A_FEATURES_NOCHANGE, or not in hw. The kernel's NOCHANGE set is a
 * constant (NETIF_F_NEVER_CHANGE) that never holds a TLS bit, so for TLS "fixed" in practice means "the
 * device has no such offload" — the same rule that makes `ethtool -k` print "[fixed]". */
struct netdev_feature { bool hw, wanted, active, fixed; };
/* up = administratively up (IFF_UP), as `ip link set DEV up` sets it, not carrier. */
struct netdev_info { char name[IFNAMSIZ]; unsigned ifindex; bool up; struct netdev_feature tls[NETDEV_TLS_FEATURES]; };

/* Every netdev of this network namespace (dev == NULL, sorted by ifindex) or just dev. Returns 0 with *out
 * malloc'ed (caller frees) and *n set, or -1 with err set to a human-readable message ("no such device:
 * eth9", "ethtool netlink is not available in this kernel (CONFIG_ETHTOOL_NETLINK)", ...). */
int netdev_list(const char *dev, struct netdev_info **out, size_t *n, char *err, size_t errlen);

/* Turn one TLS feature on or off (ETHTOOL_MSG_FEATURES_SET on the wanted set). feature is a full name above
 * or the short forms "tls-hw-tx", "tls-hw-rx", "tls-hw-record". Returns 0 when the feature is now in the
 * wanted state as active, or -1 with err set: unknown feature, no such device, needs CAP_NET_ADMIN (EPERM),
 * "DEV cannot change tls-hw-tx-offload (fixed: the device has no TLS offload)", or "wanted on, but DEV did
 * not activate it". The kernel accepts a request for a fixed feature without an error and simply leaves it
 * alone, so the outcome is decided by reading the features back (FEATURES_GET) afterwards. */
int netdev_feature_set(const char *dev, const char *feature, bool on, char *err, size_t errlen);

/* Link events: an rtnetlink socket (libnl-route, NETLINK_ROUTE, member of RTNLGRP_LINK), non-blocking.
 * netdev_monitor_process reads every pending message and, by comparing with a cached view (initial view
 * from netdev_list at open), logs with log_notice(): a link appearing or disappearing, going up or down,
 * and any change of its TLS features ("link eth0: tls-hw-tx-offload active off -> on"). A change of active
 * features (`ethtool -K`) arrives as RTM_NEWLINK (NETDEV_FEAT_CHANGE, IFLA_EVENT_FEATURES); on every
 * RTM_NEWLINK the device's TLS features are re-read with the ethtool family and diffed. A change of the
 * wanted set alone (a request the device did not act on) sends no RTM_NEWLINK, so the view's wanted flags
 * catch up with the next event of that link. */
struct netdev_monitor;
struct netdev_monitor *netdev_monitor_open(char *err, size_t errlen);
int netdev_monitor_fd(const struct netdev_monitor *m);      /* for epoll */
void netdev_monitor_process(struct netdev_monitor *m);
/* The cached view (refreshed by events, sorted by ifindex): for callers that want it without a netlink
 * round trip. Valid until the next netdev_monitor_process or netdev_monitor_close. */
const struct netdev_info *netdev_monitor_view(const struct netdev_monitor *m, size_t *n);
unsigned netdev_monitor_events(const struct netdev_monitor *m);   /* link messages processed so far (for tests) */
void netdev_monitor_close(struct netdev_monitor *m);

#endif
