/* nic_route.h — the inputs of the `nic-offload prefer` decision that come from the kernel: which netdev a
 * connection's packets to the client leave through (a route lookup), and that device's TLS offload
 * features (the link monitor's view, published here by the main thread for the workers). */
#ifndef TLSOFF_NIC_ROUTE_H
#define TLSOFF_NIC_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsoff/netdev.h"

/* The egress device of connected socket fd: an RTM_GETROUTE for the peer's address from the socket's own
 * address (plus its SO_MARK, protocol and ports, which policy routing may use), the lookup the kernel made
 * for the socket's dst — the dst tls_set_device_offload reads. One rtnetlink socket per calling thread,
 * opened on first use; the kernel answers within the send, so nothing waits. Returns 0 with *ifindex and
 * name (IFNAMSIZ) set, or -1 with err set ("no route to 10.0.0.9: Network is unreachable"). */
int nic_route_egress(int fd, unsigned *ifindex, char *name, char *err, size_t errlen);

/* The link monitor's view, copied for any thread (a mutex: the main thread writes after each link event,
 * workers read one entry per handshake of a `nic-offload prefer` frontend). n == 0 with v == NULL says
 * the view is unknown (no monitor). */
void nic_devices_publish(const struct netdev_info *v, size_t n);
/* Device ifindex as last published: 0 and *out filled, or -1 (not known). */
int nic_device_lookup(unsigned ifindex, struct netdev_info *out);

#endif
