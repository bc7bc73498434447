/* takeover.c — the new daemon's side of a seamless upgrade: `tlsoffd -f FILE --takeover`.
 *
 * The new process connects to the running daemon's control socket and sends TLSOFF_CMD_TAKEOVER. The
 * answer is a dump: one message per listening socket (every worker's SO_REUSEPORT listener of every
 * frontend, and the control socket itself), each carrying that socket's descriptor as SCM_RIGHTS. They are
 * the very same kernel sockets, so nothing waiting in an accept queue is lost and no SYN meets a closed
 * port. The engine builds its workers on them (engine.c, runtime_build), and only once they accept does
 * takeover_confirm send TLSOFF_CMD_TAKEOVER_DONE: the old daemon then stops accepting, drains its open
 * connections and exits. Until then both accept from the same queues, which is harmless: each connection is
 * accepted by exactly one of them and served to its end by that one. docs/architecture.md has the protocol. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "tlsoff/control.h"
#include "tlsoff/ctl_msg.h"
#include "tlsoff/log.h"

#define TAKEOVER_TIMEOUT_MS 10000   /* the old daemon answers from its main loop: milliseconds normally */
#define MAX_FDS_PER_MSG     4       /* the old daemon sends one; anything more is closed */

/* Read exactly len bytes, collecting descriptors that arrive with them (the kernel hands a message's
 * SCM_RIGHTS to the first read that takes any of that message's bytes). */
static int recv_full(int fd, void *buf, size_t len, int *fds, unsigned *nfds, char *err, size_t errlen)
{
	char *p = buf;
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, TAKEOVER_TIMEOUT_MS);
		if (pr == 0) {
			snprintf(err, errlen, "no answer within %d s", TAKEOVER_TIMEOUT_MS / 1000);
			return -1;
		}
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
		} cm;
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof(cm) };
		ssize_t n = pr < 0 ? -1 : recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "recvmsg: %s", strerror(errno));
			return -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (unsigned i = 0; i < k; i++) {
				int got;
				memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*nfds < MAX_FDS_PER_MSG)
					fds[(*nfds)++] = got;
				else
					close(got);
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			log_warn("takeover: descriptors were cut off (MSG_CTRUNC); their sockets stay with the old daemon");
		if (n == 0) {
			snprintf(err, errlen, "the daemon closed the connection");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One message and the descriptors that came with it. */
static int recv_msg(int fd, struct nlmsghdr **out, int *fds, unsigned *nfds, char *err, size_t errlen)
{
	struct nlmsghdr h;
	*nfds = 0;
	if (recv_full(fd, &h, sizeof(h), fds, nfds, err, errlen) < 0)
		return -1;
	if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > TLSOFF_CTL_MSG_MAX) {
		snprintf(err, errlen, "bad message length %u", h.nlmsg_len);
		return -1;
	}
	struct nlmsghdr *m = malloc(NLMSG_ALIGN(h.nlmsg_len));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(m, &h, sizeof(h));
	if (recv_full(fd, (char *)m + sizeof(h), NLMSG_ALIGN(h.nlmsg_len) - sizeof(h), fds, nfds, err, errlen) < 0) {
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

/* An NLMSG_ERROR: its error, and the daemon's message in err. */
static int ack_error(const struct nlmsghdr *h, char *err, size_t errlen)
{
	if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nlmsgerr)) {
		snprintf(err, errlen, "short acknowledgement");
		return -EPROTO;
	}
	const struct nlmsgerr *e = NLMSG_DATA(h);
	snprintf(err, errlen, "%s", e->error ? strerror(-e->error) : "");
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*e));
		while (off + NLA_HDRLEN <= h->nlmsg_len) {
			const struct nlattr *a = (const struct nlattr *)((const char *)h + off);
			if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
				break;
			if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > NLA_HDRLEN)
				snprintf(err, errlen, "%.*s", (int)(a->nla_len - NLA_HDRLEN),
					 (const char *)a + NLA_HDRLEN);
			off += NLA_ALIGN(a->nla_len);
		}
	}
	return e->error;
}

static int request(struct takeover *tk, int type, uint32_t seq, char *err, size_t errlen)
{
	struct nl_msg *m = ctl_msg_new(type, NLM_F_REQUEST | NLM_F_ACK | (type == TLSOFF_CMD_TAKEOVER ? NLM_F_DUMP : 0),
				       seq);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = ctl_msg_send(tk->fd, m);
	nlmsg_free(m);
	if (rc < 0) {
		snprintf(err, errlen, "send: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* One A_LISTENER and its descriptor into tk->v. */
static int keep_listener(struct takeover *tk, const struct nlmsghdr *h, int fd, char *err, size_t errlen)
{
	struct nlattr *tb[TLSOFF_A_MAX + 1], *lt[TLSOFF_LSN_MAX + 1];
	if (ctl_parse_msg(h, tb, err, errlen) < 0 || !tb[TLSOFF_A_LISTENER] ||
	    ctl_parse_nested(lt, TLSOFF_LSN_MAX, tb[TLSOFF_A_LISTENER], ctl_lsn_policy, "takeover listener", err,
			     errlen) < 0 || !lt[TLSOFF_LSN_KIND]) {
		if (!err[0])
			snprintf(err, errlen, "a takeover message without a listener");
		return -1;
	}
	struct inherited *v = realloc(tk->v, (tk->n + 1) * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	tk->v = v;
	struct inherited *in = &v[tk->n++];
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->kind = (int)nla_get_u32(lt[TLSOFF_LSN_KIND]);
	in->worker = lt[TLSOFF_LSN_WORKER] ? nla_get_u32(lt[TLSOFF_LSN_WORKER]) : 0;
	if (lt[TLSOFF_LSN_PID])
		tk->old_pid = (pid_t)nla_get_u32(lt[TLSOFF_LSN_PID]);
	if (lt[TLSOFF_LSN_FRONTEND])
		snprintf(in->frontend, sizeof(in->frontend), "%s", nla_get_string(lt[TLSOFF_LSN_FRONTEND]));
	if (lt[TLSOFF_LSN_LISTEN])
		snprintf(in->listen, sizeof(in->listen), "%s", nla_get_string(lt[TLSOFF_LSN_LISTEN]));
	return 0;
}

int takeover_fetch(const char *path, struct takeover *tk, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memset(tk, 0, sizeof(*tk));
	tk->fd = -1;
	snprintf(tk->path, sizeof(tk->path), "%s", path);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "takeover: control socket path too long: %s", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((tk->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(tk->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, errlen, "takeover: no tlsoffd answers on %s (%s): is one running with --control %s? "
			 "Start without --takeover to bind the frontends afresh", path, strerror(e), path);
		takeover_release(tk, true);
		return -1;
	}
	char msg[TLSOFF_ERR_MAX] = "";
	if (request(tk, TLSOFF_CMD_TAKEOVER, 1, msg, sizeof(msg)) < 0)
		goto fail;
	for (;;) {
		struct nlmsghdr *h;
		int fds[MAX_FDS_PER_MSG];
		unsigned nfds;
		if (recv_msg(tk->fd, &h, fds, &nfds, msg, sizeof(msg)) < 0)
			goto fail;
		int rc = 0;
		if (h->nlmsg_type == NLMSG_DONE) {
			free(h);
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			break;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			ack_error(h, msg, sizeof(msg));
			rc = -1;
		} else if (h->nlmsg_type != TLSOFF_CMD_TAKEOVER || nfds != 1) {
			snprintf(msg, sizeof(msg), "unexpected message (type %u, %u descriptor(s))", h->nlmsg_type, nfds);
			rc = -1;
		} else {
			msg[0] = '\0';
			rc = keep_listener(tk, h, fds[0], msg, sizeof(msg));
			nfds = rc < 0 ? nfds : 0;   /* kept */
		}
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		free(h);
		if (rc < 0)
			goto fail;
	}
	unsigned frontends = 0;
	for (size_t i = 0; i < tk->n; i++)
		frontends += tk->v[i].kind == TLSOFF_LSN_KIND_FRONTEND;
	log_notice("takeover: received %u listening socket(s)%s from tlsoffd pid %d on %s", frontends,
		   frontends < tk->n ? " and the control socket" : "", (int)tk->old_pid, path);
	return 0;
fail:
	snprintf(err, errlen, "takeover from the tlsoffd on %s: %s", path, msg);
	takeover_release(tk, true);
	return -1;
}

int takeover_confirm(struct takeover *tk, char *err, size_t errlen)
{
	char msg[TLSOFF_ERR_MAX] = "";
	struct nlmsghdr *h = NULL;
	int fds[MAX_FDS_PER_MSG];
	unsigned nfds = 0;
	int rc = -1;
	if (request(tk, TLSOFF_CMD_TAKEOVER_DONE, 2, msg, sizeof(msg)) == 0 &&
	    recv_msg(tk->fd, &h, fds, &nfds, msg, sizeof(msg)) == 0) {
		if (h->nlmsg_type != NLMSG_ERROR)
			snprintf(msg, sizeof(msg), "unexpected answer (type %u)", h->nlmsg_type);
		else if (ack_error(h, msg, sizeof(msg)) == 0)
			rc = 0;
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	free(h);
	if (rc < 0)
		snprintf(err, errlen, "takeover: the old tlsoffd (pid %d) did not confirm: %s", (int)tk->old_pid, msg);
	return rc;
}

int takeover_control_fd(struct takeover *tk)
{
	for (size_t i = 0; tk && i < tk->n; i++)
		if (tk->v[i].kind == TLSOFF_LSN_KIND_CONTROL && tk->v[i].fd >= 0 && !tk->v[i].used) {
			tk->v[i].used = true;
			return tk->v[i].fd;
		}
	return -1;
}

void takeover_release(struct takeover *tk, bool all)
{
	for (size_t i = 0; i < tk->n; i++)
		if (tk->v[i].fd >= 0 && !tk->v[i].used) {
			if (!all && tk->v[i].kind == TLSOFF_LSN_KIND_FRONTEND && tk->v[i].worker == 0)
				log_notice("takeover: frontend %s (%s) is not in this configuration: the old daemon closes "
					   "it", tk->v[i].frontend, tk->v[i].listen);
			close(tk->v[i].fd);
			tk->v[i].fd = -1;
		}
	if (!all)
		return;
	if (tk->fd >= 0)
		close(tk->fd);
	tk->fd = -1;
	free(tk->v);
	tk->v = NULL;
	tk->n = 0;
}
