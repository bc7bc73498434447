/* ktls_record.c — send and receive records of a given content type on a kTLS socket (TLS_SET_RECORD_TYPE,
 * TLS_GET_RECORD_TYPE control messages; Documentation/networking/tls.rst). */
#include "tlsoff/ktls.h"
#include "tlsoff/ktls_record.h"

#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>


ssize_t ktls_send_record(int fd, uint8_t type, const void *buf, size_t len)
{
	char control[CMSG_SPACE(sizeof(type))];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	memset(control, 0, sizeof(control));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(type));
	memcpy(CMSG_DATA(cm), &type, sizeof(type));
	return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

ssize_t ktls_send_close_notify(int fd)
{
	static const uint8_t alert[2] = { 1 /* warning */, 0 /* close_notify */ };
	return ktls_send_record(fd, TLS_RECORD_ALERT, alert, sizeof(alert));
}

ssize_t ktls_recv_record(int fd, void *buf, size_t len, uint8_t *type)
{
	char control[CMSG_SPACE(sizeof(*type))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return n;
	*type = TLS_RECORD_DATA;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
			memcpy(type, CMSG_DATA(cm), sizeof(*type));
	return n;
}

enum ktls_record_verdict ktls_record_classify(uint8_t type, const uint8_t *buf, size_t len, bool from_server)
{
	switch (type) {
	case TLS_RECORD_DATA:
		return KREC_DATA;
	case TLS_RECORD_ALERT:
		return len >= 2 && buf[1] == 0 ? KREC_CLOSE_NOTIFY : KREC_ALERT;
	case TLS_RECORD_HANDSHAKE:
		break;
	default:
		return KREC_UNKNOWN_TYPE;
	}
	/* Walk the messages: {type, 24-bit length, body}, each whole inside this record. */
	size_t off = 0;
	while (off < len) {
		if (len - off < 4)
			return KREC_UNEXPECTED_HANDSHAKE;
		size_t body = (size_t)buf[off + 1] << 16 | (size_t)buf[off + 2] << 8 | buf[off + 3];
		if (body > len - off - 4)
			return KREC_UNEXPECTED_HANDSHAKE;
		const uint8_t *m = buf + off;
		off += 4 + body;
		if (m[0] == TLS_HS_KEY_UPDATE)   /* the last message of its record, one byte: 0 or 1 */
			return off == len && body == 1 && m[4] <= 1 ?
			       (m[4] ? KREC_KEY_UPDATE_REQUESTED : KREC_KEY_UPDATE) : KREC_UNEXPECTED_HANDSHAKE;
		if (m[0] != TLS_HS_NEW_SESSION_TICKET || !from_server)
			return KREC_UNEXPECTED_HANDSHAKE;
	}
	return len ? KREC_TICKETS : KREC_UNEXPECTED_HANDSHAKE;
}
