/* ipc.c — see ipc.h. Blocking I/O: tlsoffctl does one thing at a time. */
#include "ipc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define IPC_TIMEOUT_S 30

struct ipc {
	int fd;
	uint32_t seq;
};

struct ipc *ipc_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return NULL;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	struct ipc *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->seq = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot reach tlsoffd at %s: %s%s", path, strerror(e),
			 e == ENOENT || e == ECONNREFUSED ? " (is tlsoffd running? -s PATH or $TLSOFF_CONTROL names "
							    "another socket)" :
			 e == EACCES ? " (the socket is mode 0660: run as its owner or group, see tlsoffd --control-group)" : "");
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	/* A daemon that stopped answering (stuck, or stopped with SIGSTOP) must not hang scripts for ever. */
	struct timeval tv = { .tv_sec = IPC_TIMEOUT_S };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return c;
}

void ipc_close(struct ipc *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

struct nl_msg *ipc_msg(struct ipc *c, int type, bool dump)
{
	return ctl_msg_new(type, NLM_F_REQUEST | NLM_F_ACK | (dump ? NLM_F_DUMP : 0), c->seq++);
}

/* The daemon's extended ack string, if it sent one. */
static void ack_text(const struct nlmsghdr *h, int error, char *err, size_t errlen)
{
	const struct nlmsgerr *e = nlmsg_data(h);
	size_t skip = sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		skip += e->msg.nlmsg_len - sizeof(e->msg);
	snprintf(err, errlen, "%s", strerror(-error));
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS) || h->nlmsg_len < NLMSG_HDRLEN + skip)
		return;
	struct nlattr *a = nla_find((struct nlattr *)((char *)nlmsg_data(h) + NLMSG_ALIGN(skip)),
				    (int)(h->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(skip)), NLMSGERR_ATTR_MSG);
	if (a && nla_len(a) > 0)
		snprintf(err, errlen, "%.*s", nla_len(a), (const char *)nla_data(a));
}

int ipc_call(struct ipc *c, struct nl_msg *m, ipc_cb cb, void *arg, char *err, size_t errlen)
{
	uint32_t seq = nlmsg_hdr(m)->nlmsg_seq;
	int type = nlmsg_hdr(m)->nlmsg_type, rc = ctl_msg_send(c->fd, m), result = 0;
	nlmsg_free(m);
	if (rc < 0) {
		snprintf(err, errlen, "sending to tlsoffd: %s", strerror(-rc));
		return rc;
	}
	for (;;) {
		struct nlmsghdr *h;
		char msg[256];
		if ((rc = ctl_msg_recv(c->fd, &h, msg, sizeof(msg))) < 0) {
			snprintf(err, errlen, "reading from tlsoffd: %s", rc == -EPIPE ? "the daemon closed the connection" :
				 rc == -EPROTO ? msg : rc == -EAGAIN ? "no answer within 30 s" : strerror(-rc));
			return rc;
		}
		if (h->nlmsg_seq != seq) {   /* not ours: an answer to an earlier request we gave up on */
			free(h);
			continue;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = nlmsg_data(h);
			rc = h->nlmsg_len >= NLMSG_HDRLEN + sizeof(*e) ? e->error : -EPROTO;
			if (rc)
				ack_text(h, rc, err, errlen);
			free(h);
			return rc ? rc : result;
		}
		if (h->nlmsg_type == NLMSG_DONE) {
			free(h);
			return result;
		}
		struct nlattr *tb[TLSOFF_A_MAX + 1];
		if (h->nlmsg_type != type || (rc = ctl_msg_check(h, msg, sizeof(msg))) < 0 ||
		    (rc = ctl_parse_msg(h, tb, msg, sizeof(msg))) < 0) {
			if (!result) {
				snprintf(err, errlen, "unexpected answer from tlsoffd: %s", h->nlmsg_type != type ?
					 "wrong message type" : msg);
				result = h->nlmsg_type != type ? -EPROTO : rc;
			}
		} else if (cb && !result) {
			result = cb(h, tb, arg, err, errlen);
		}
		free(h);
	}
}

uint32_t ipc_next_seq(struct ipc *c)
{
	return c->seq++;
}
