/* ipc.h — tlsoffctl's only way to the daemon: the control socket (include/tlsoff/control.h). Everything
 * about sockets, framing and acks is behind this header; the subcommands build attributes and read them. */
#ifndef TLSOFFCTL_IPC_H
#define TLSOFFCTL_IPC_H

#include <stddef.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "tlsoff/ctl_msg.h"

struct ipc;

struct ipc *ipc_connect(const char *path, char *err, size_t errlen);
void ipc_close(struct ipc *c);

/* Called once per message of a dump with its top-level attributes (strictly parsed). Return 0 to go on,
 * or -errno (with err set) to fail the call; the rest of the dump is still read. */
typedef int (*ipc_cb)(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen);

/* Send request m (freed) and wait for its answer: the ack, or for a dump (NLM_F_DUMP) every part and
 * NLMSG_DONE. Returns 0, or -errno with err set to the daemon's message (its extended ack) or the transport
 * failure. */
int ipc_call(struct ipc *c, struct nl_msg *m, ipc_cb cb, void *arg, char *err, size_t errlen);

/* A new request of `type` (NLM_F_REQUEST|NLM_F_ACK, plus NLM_F_DUMP when dump) with the next sequence
 * number; NULL when out of memory. */
struct nl_msg *ipc_msg(struct ipc *c, int type, bool dump);

/* The sequence number for a request built elsewhere (ctl_cmd_encode). */
uint32_t ipc_next_seq(struct ipc *c);

#endif
