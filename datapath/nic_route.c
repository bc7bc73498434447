/* nic_route.c — the egress device of a connection (rtnetlink RTM_GETROUTE) and the published TLS feature
 * view of every device, for the `nic-offload prefer` decision (nic_pref.c) on worker threads.
 *
 * Why a route lookup: tls_set_device_offload takes the device from the socket's cached dst
 * (get_netdev_for_sock: __sk_dst_get(sk)->dev, then its lowest device for a bond), and no socket option
 * reads that dst back. IP_PKTINFO names the device a packet came in on, which with asymmetric routing is
 * not the one replies leave through; SO_BINDTODEVICE only names a device the socket was bound to. The
 * same FIB lookup the kernel made — destination = client, source = our address, the socket's mark,
 * protocol and ports — gives the device (`ip route get CLIENT from LOCAL mark M ipproto tcp sport S dport
 * D`). The kernel answers an RTM_GETROUTE within the sendmsg, so a lookup is one syscall pair on an idle
 * socket: measured in tests/unit/test_nic_route.c, a few microseconds against a handshake's milliseconds,
 * so there is no cache to go stale when routes change. */
#include "tlsoff/nic_route.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

static __thread int rtnl = -1;
static __thread uint32_t rtnl_seq;

static int rtnl_socket(void)
{
	if (rtnl >= 0)
		return rtnl;
	rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (rtnl >= 0) {
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
		if (bind(rtnl, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(rtnl);
			rtnl = -1;
		}
	}
	return rtnl;
}

static void put_attr(struct nlmsghdr *h, size_t cap, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > cap)
		return;   /* cannot happen with the buffer below; dropping an attribute only widens the lookup */
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len);
}

int nic_route_egress(int fd, unsigned *ifindex, char *name, char *err, size_t errlen)
{
	struct sockaddr_storage local, peer;
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	char peer_text[INET6_ADDRSTRLEN] = "?";

	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 || getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
		snprintf(err, errlen, "route lookup: %s", strerror(errno));
		return -1;
	}
	if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) {
		snprintf(err, errlen, "route lookup: not an IP socket");
		return -1;
	}
	bool v4 = peer.ss_family == AF_INET;
	const struct sockaddr_in *l4 = (const void *)&local, *p4 = (const void *)&peer;
	const struct sockaddr_in6 *l6 = (const void *)&local, *p6 = (const void *)&peer;
	inet_ntop(peer.ss_family, v4 ? (const void *)&p4->sin_addr : (const void *)&p6->sin6_addr, peer_text,
		  sizeof(peer_text));

	union {
		struct nlmsghdr h;
		char buf[512];
	} req = { 0 }, ans;
	struct rtmsg *rt = NLMSG_DATA(&req.h);
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(*rt));
	req.h.nlmsg_type = RTM_GETROUTE;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = ++rtnl_seq;
	rt->rtm_family = (unsigned char)peer.ss_family;
	rt->rtm_dst_len = rt->rtm_src_len = v4 ? 32 : 128;
	if (v4) {
		put_attr(&req.h, sizeof(req), RTA_DST, &p4->sin_addr, 4);
		put_attr(&req.h, sizeof(req), RTA_SRC, &l4->sin_addr, 4);
	} else {
		put_attr(&req.h, sizeof(req), RTA_DST, &p6->sin6_addr, 16);
		put_attr(&req.h, sizeof(req), RTA_SRC, &l6->sin6_addr, 16);
		if (p6->sin6_scope_id) {   /* a link-local client: the interface is part of its address */
			uint32_t oif = p6->sin6_scope_id;
			put_attr(&req.h, sizeof(req), RTA_OIF, &oif, sizeof(oif));
		}
	}
	uint32_t mark = 0;
	socklen_t ml = sizeof(mark);
	if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &ml) == 0 && mark)
		put_attr(&req.h, sizeof(req), RTA_MARK, &mark, sizeof(mark));
	/* Policy routing may match on protocol and ports (ip rule ipproto/sport/dport, 4.17+); older kernels
	 * ignore these attributes. Seen from the route's side the client is the destination. */
	uint8_t proto = IPPROTO_TCP;
	uint16_t sport = v4 ? l4->sin_port : l6->sin6_port, dport = v4 ? p4->sin_port : p6->sin6_port;
	put_attr(&req.h, sizeof(req), RTA_IP_PROTO, &proto, sizeof(proto));
	put_attr(&req.h, sizeof(req), RTA_SPORT, &sport, sizeof(sport));
	put_attr(&req.h, sizeof(req), RTA_DPORT, &dport, sizeof(dport));

	int s = rtnl_socket();
	if (s < 0) {
		snprintf(err, errlen, "route lookup: cannot open rtnetlink: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(s, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		snprintf(err, errlen, "route lookup: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		/* The answer is queued before sendto returns; MSG_DONTWAIT so a kernel that did otherwise can
		 * only cost this connection its preference, never stall the worker. */
		int n = (int)recv(s, &ans, sizeof(ans), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "route lookup: %s", strerror(errno));
			return -1;
		}
		for (struct nlmsghdr *h = &ans.h; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != req.h.nlmsg_seq)
				continue;   /* a late answer to an earlier request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				snprintf(err, errlen, "no route to %s: %s", peer_text, strerror(-e->error));
				return -1;
			}
			if (h->nlmsg_type != RTM_NEWROUTE)
				continue;
			const struct rtmsg *r = NLMSG_DATA(h);
			int len = (int)RTM_PAYLOAD(h);
			for (const struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len))
				if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4) {
					memcpy(ifindex, RTA_DATA(a), 4);
					struct netdev_info d;
					if (nic_device_lookup(*ifindex, &d) == 0)
						snprintf(name, IFNAMSIZ, "%s", d.name);
					else if (!if_indextoname(*ifindex, name))
						snprintf(name, IFNAMSIZ, "if%u", *ifindex);
					return 0;
				}
			snprintf(err, errlen, "route to %s has no output device", peer_text);
			return -1;
		}
	}
}

/* ---- the published device view ---------------------------------------------------------------------- */

static pthread_mutex_t view_mu = PTHREAD_MUTEX_INITIALIZER;
static struct netdev_info *view;
static size_t nview;

void nic_devices_publish(const struct netdev_info *v, size_t n)
{
	struct netdev_info *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (n && !copy)
		return;   /* out of memory: keep the previous view */
	if (n)
		memcpy(copy, v, n * sizeof(*copy));
	pthread_mutex_lock(&view_mu);
	struct netdev_info *old = view;
	view = copy;
	nview = n;
	pthread_mutex_unlock(&view_mu);
	free(old);
}

int nic_device_lookup(unsigned ifindex, struct netdev_info *out)
{
	int rc = -1;
	pthread_mutex_lock(&view_mu);
	for (size_t i = 0; i < nview; i++)
		if (view[i].ifindex == ifindex) {
			*out = view[i];
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&view_mu);
	return rc;
}
