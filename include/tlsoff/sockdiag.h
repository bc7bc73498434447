/* sockdiag.h — a socket's kTLS state as the kernel reports it (NETLINK_SOCK_DIAG, INET_DIAG_ULP_INFO):
 * whether each direction is in software or on the NIC. The same data `ss -tie` prints. Reading ULP info
 * needs CAP_NET_ADMIN. */
#ifndef TLSOFF_SOCKDIAG_H
#define TLSOFF_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <netlink/netlink.h>

struct ktls_diag {
	unsigned version;        /* TLS_1_2_VERSION / TLS_1_3_VERSION */
	unsigned cipher;         /* TLS_CIPHER_* */
	unsigned txconf, rxconf; /* TLS_CONF_BASE / _SW / _HW / _HW_RECORD; 0 = not reported */
	bool rx_no_pad, zc_ro_tx;
};

/* A NETLINK_SOCK_DIAG socket (libnl), or NULL with errno set. */
struct nl_sock *sockdiag_open(void);
void sockdiag_close(struct nl_sock *nl);

/* Look up the TCP socket fd (by its addresses and cookie) and read its TLS ULP info.
 * Returns 0, -ENOENT when the socket has no TLS ULP (or the kernel hid it: no CAP_NET_ADMIN), or -errno. */
int sockdiag_ktls(struct nl_sock *nl, int fd, struct ktls_diag *out);

/* Every TCP socket of this network namespace with a TLS ULP (IPv4 and IPv6, one NLM_F_DUMP each):
 * cb(cookie, state, arg) per socket. Returns 0 or -errno. */
int sockdiag_ktls_dump(struct nl_sock *nl, void (*cb)(uint64_t cookie, const struct ktls_diag *d, void *arg),
		       void *arg);

/* "sw", "hw", "hw-record", "none" */
const char *ktls_conf_name(unsigned conf);

#endif
