/* libFuzzer harness for control messages (datapath/ctl_msg.c), as the daemon takes them off the control socket
 * (datapath/control.c: handle) and as tlsoffctl reads replies (ctl/: lenient parsing). The input is the byte
 * stream a client writes: it goes through a real socketpair and ctl_msg_recv, message after message, so the
 * framing is the daemon's own. Contracts beyond "no crash":
 *   - a message ctl_msg_recv returns is at least a header and at most TLSOFF_CTL_MSG_MAX, whole;
 *   - a request ctl_cmd_decode accepts is a command cmd_parse accepts: encoded again (ctl_cmd_encode, what
 *     tlsoffctl sends) it decodes to a command that encodes to the very same bytes;
 *   - strict parsing accepts nothing lenient parsing refuses; the log line's subject is printable ASCII;
 *   - objects in replies (ctl_get_frontend/backend) decode the same strictly and leniently when strict
 *     parsing accepts them.
 * The resolver is tests/fuzz/lib/no_dns.c (names resolve only under .test). */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "tlsoff/ctl_msg.h"

static struct cmd c1, c2;

static struct nlmsghdr *encode(const struct cmd *c, struct nl_msg **keep)
{
	*keep = ctl_cmd_encode(c, 7);
	CHECK(*keep != NULL);
	return nlmsg_hdr(*keep);
}

/* decode -> encode -> decode -> encode: the two encodings are the same bytes */
static void check_roundtrip(void)
{
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	struct nl_msg *m1, *m2;
	struct nlmsghdr *h1 = encode(&c1, &m1);
	CHECK(ctl_msg_check(h1, err, sizeof(err)) == 0);
	if (ctl_parse_msg(h1, tb, err, sizeof(err)) || ctl_cmd_decode(h1, tb, &c2, err, sizeof(err))) {
		fprintf(stderr, "a decoded command, encoded again, is refused: %s\n", err);
		CHECK(0);
	}
	CHECK(c2.object == c1.object && c2.verb == c1.verb);
	struct nlmsghdr *h2 = encode(&c2, &m2);
	CHECK(h1->nlmsg_len == h2->nlmsg_len && h1->nlmsg_type == h2->nlmsg_type);
	CHECK(!memcmp(h1, h2, h1->nlmsg_len));
	nlmsg_free(m1);
	nlmsg_free(m2);
}

static void check_subject(struct nlattr **tb)
{
	const char *s = ctl_msg_subject(tb);
	for (; *s; s++)
		CHECK(*s >= 0x20 && *s < 0x7f);
}

/* A reply object as tlsoffctl decodes it: lenient (a newer daemon may add attributes). */
static void reply_object(const struct nlattr *a, bool frontend)
{
	static struct frontend_conf f1, f2;
	static struct backend_conf b1, b2;
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	int strict, lenient;
	ctl_parse_lenient = false;
	strict = frontend ? ctl_get_frontend(a, &f1, err, sizeof(err)) : ctl_get_backend(a, &b1, err, sizeof(err));
	ctl_parse_lenient = true;
	lenient = frontend ? ctl_get_frontend(a, &f2, err, sizeof(err)) : ctl_get_backend(a, &b2, err, sizeof(err));
	ctl_parse_lenient = false;
	CHECK(strict == 0 || strict == -EINVAL);
	if (strict == 0) {
		CHECK(lenient == 0);
		CHECK(frontend ? !memcmp(&f1, &f2, sizeof(f1)) : !memcmp(&b1, &b2, sizeof(b1)));
	}
}

/* What control.c's handle does with one message, minus the engine. */
static void one_message(const struct nlmsghdr *h)
{
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX] = "";
	struct nlattr *tb[TLSOFF_A_MAX + 1];
	int rc = ctl_msg_check(h, err, sizeof(err));
	CHECK(rc == 0 || rc == -EPROTO || rc == -EPROTONOSUPPORT);
	CHECK(rc == 0 || err[0]);
	if (rc || h->nlmsg_type < NLMSG_MIN_TYPE || h->nlmsg_type >= __TLSOFF_CMD_MAX)
		return;
	ctl_parse_lenient = true;
	int lenient = ctl_parse_msg(h, tb, err, sizeof(err));
	ctl_parse_lenient = false;
	rc = ctl_parse_msg(h, tb, err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc) {
		CHECK(err[0]);
		return;
	}
	CHECK(lenient == 0);
	check_subject(tb);
	rc = ctl_cmd_decode(h, tb, &c1, err, sizeof(err));
	CHECK(rc == 0 || (rc == -EINVAL && err[0]));
	if (rc == 0)
		check_roundtrip();
	/* the nests other requests and the replies carry */
	static const struct { int attr, max; const struct nla_policy *policy; } nests[] = {
		{ TLSOFF_A_CERT, TLSOFF_CERT_MAX, ctl_cert_policy },
		{ TLSOFF_A_CONN, TLSOFF_CONN_MAX, ctl_conn_policy },
		{ TLSOFF_A_FILTER, TLSOFF_FILTER_MAX, ctl_filter_policy },
		{ TLSOFF_A_COUNTER, TLSOFF_COUNTER_MAX, ctl_counter_policy },
		{ TLSOFF_A_STATUS, TLSOFF_STATUS_MAX, ctl_status_policy },
		{ TLSOFF_A_LINK, TLSOFF_LINK_MAX, ctl_link_policy },
		{ TLSOFF_A_FEATURE, TLSOFF_FEAT_MAX, ctl_feat_policy },
		{ TLSOFF_A_LISTENER, TLSOFF_LSN_MAX, ctl_lsn_policy },
	};
	for (size_t i = 0; i < sizeof(nests) / sizeof(nests[0]); i++)
		if (tb[nests[i].attr]) {
			struct nlattr *nt[64];
			CHECK(nests[i].max < 64);
			rc = ctl_parse_nested(nt, nests[i].max, tb[nests[i].attr], nests[i].policy, "nest", err, sizeof(err));
			CHECK(rc == 0 || rc == -EINVAL);
		}
	if (tb[TLSOFF_A_FRONTEND])
		reply_object(tb[TLSOFF_A_FRONTEND], true);
	if (tb[TLSOFF_A_BACKEND])
		reply_object(tb[TLSOFF_A_BACKEND], false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size > 128 * 1024)   /* the socket buffer takes it whole, so one write, no reader thread */
		return 0;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int sndbuf = 512 * 1024;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	CHECK(size == 0 || write(sv[0], data, size) == (ssize_t)size);
	shutdown(sv[0], SHUT_WR);
	for (;;) {
		char err[TLSOFF_ERR_MAX] = "";
		struct nlmsghdr *h;
		int rc = ctl_msg_recv(sv[1], &h, err, sizeof(err));
		if (rc < 0) {
			CHECK(rc == -EPIPE || (rc == -EPROTO && err[0]));
			break;
		}
		CHECK(h->nlmsg_len >= NLMSG_HDRLEN && h->nlmsg_len <= TLSOFF_CTL_MSG_MAX);
		one_message(h);
		free(h);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
