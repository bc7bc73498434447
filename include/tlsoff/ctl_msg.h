/* ctl_msg.h — building, framing and strictly parsing control-protocol messages (control.h), shared by
 * tlsoffd and tlsoffctl. Objects travel as attributes but are validated by the one command parser
 * (config.c): a decoded frontend or backend is turned back into the words of its command and run through
 * cmd_parse, so the socket accepts exactly what a configuration file accepts. */
#ifndef TLSOFF_CTL_MSG_H
#define TLSOFF_CTL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "tlsoff/config.h"
#include "tlsoff/control.h"

/* A message of `type` with our header (TLSOFF_CTL_VERSION) appended; NULL when out of memory. */
struct nl_msg *ctl_msg_new(int type, int flags, uint32_t seq);

/* Write a whole message to a blocking stream socket. Returns 0 or -errno. */
int ctl_msg_send(int fd, struct nl_msg *m);

/* Read one whole message from a blocking stream socket into a malloc'ed buffer (*out). Returns 0, -EPIPE at
 * end of stream, -EPROTO for a frame that cannot be a message (err set), or -errno. */
int ctl_msg_recv(int fd, struct nlmsghdr **out, char *err, size_t errlen);

/* Framing of a received message: its length fits, and for our types the tlsoff_ctlhdr is there with our
 * version. Returns 0, -EPROTO or -EPROTONOSUPPORT with err set. */
int ctl_msg_check(const struct nlmsghdr *h, char *err, size_t errlen);

/* Strict attribute parsing: every attribute in [head, head+len) must have an entry in policy (types 1..max),
 * the right length for its type, strings NUL-terminated. tb[type] = the last one of each type (repeated
 * attributes: walk them with nla_for_each_attr). `what` names the container in messages.
 * Returns 0 or -EINVAL with err set. */
extern bool ctl_parse_lenient;   /* clients reading replies: skip unknown attributes instead of refusing */
int ctl_parse(struct nlattr **tb, int max, struct nlattr *head, int len, const struct nla_policy *policy,
	      const char *what, char *err, size_t errlen);
int ctl_parse_msg(const struct nlmsghdr *h, struct nlattr **tb, char *err, size_t errlen);   /* top level */
int ctl_parse_nested(struct nlattr **tb, int max, const struct nlattr *nest, const struct nla_policy *policy,
		     const char *what, char *err, size_t errlen);

extern const struct nla_policy ctl_policy[TLSOFF_A_MAX + 1];
extern const struct nla_policy ctl_fe_policy[TLSOFF_FE_MAX + 1];
extern const struct nla_policy ctl_route_policy[TLSOFF_ROUTE_MAX + 1];
extern const struct nla_policy ctl_be_policy[TLSOFF_BE_MAX + 1];
extern const struct nla_policy ctl_srv_policy[TLSOFF_SRV_MAX + 1];
extern const struct nla_policy ctl_cert_policy[TLSOFF_CERT_MAX + 1];
extern const struct nla_policy ctl_conn_policy[TLSOFF_CONN_MAX + 1];
extern const struct nla_policy ctl_filter_policy[TLSOFF_FILTER_MAX + 1];
extern const struct nla_policy ctl_counter_policy[TLSOFF_COUNTER_MAX + 1];
extern const struct nla_policy ctl_status_policy[TLSOFF_STATUS_MAX + 1];
extern const struct nla_policy ctl_cipher_policy[TLSOFF_CIPHER_MAX + 1];
extern const struct nla_policy ctl_link_policy[TLSOFF_LINK_MAX + 1];
extern const struct nla_policy ctl_feat_policy[TLSOFF_FEAT_MAX + 1];
extern const struct nla_policy ctl_lsn_policy[TLSOFF_LSN_MAX + 1];

/* A configuration command (config.h) as a request: type and attributes. NULL when out of memory. */
struct nl_msg *ctl_cmd_encode(const struct cmd *c, uint32_t seq);

/* The request h (parsed into tb by ctl_parse_msg) as a command, validated by cmd_parse.
 * Returns 0 or -EINVAL with err set. */
int ctl_cmd_decode(const struct nlmsghdr *h, struct nlattr **tb, struct cmd *c, char *err, size_t errlen);

/* Objects as nested attributes (TLSOFF_A_FRONTEND / TLSOFF_A_BACKEND), both ways. Put returns 0 or -1
 * (message full); get validates through cmd_parse and returns 0 or -EINVAL with err set. In dumps the daemon
 * adds open connections: conns >= 0 (TLSOFF_FE_CONNS), active != NULL (TLSOFF_SRV_ACTIVE per server). */
int ctl_put_frontend(struct nl_msg *m, const struct frontend_conf *f, int conns);
int ctl_get_frontend(const struct nlattr *nest, struct frontend_conf *f, char *err, size_t errlen);
int ctl_put_backend(struct nl_msg *m, const struct backend_conf *b, const unsigned *active);
int ctl_get_backend(const struct nlattr *nest, struct backend_conf *b, char *err, size_t errlen);

/* NLMSG_ERROR for request h: error 0 or -errno, and msg (may be NULL) as the extended ack. */
struct nl_msg *ctl_ack_new(const struct nlmsghdr *req, int error, const char *msg);

/* The object a parsed request (tb from ctl_parse_msg) names, for the daemon's log line: " NAME", " NAME
 * HOST:PORT", " ID" or "". Printable ASCII only; a thread-local buffer. */
const char *ctl_msg_subject(struct nlattr **tb);

/* The request name of a message type ("frontend add"), for logs; "?" when unknown. */
const char *ctl_cmd_name(int type);

#endif
