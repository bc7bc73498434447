/* ktls_record.h — non-data records on a kTLS socket: the kernel passes them up, and we send alerts
 * through it (the kernel encrypts them with the current TX key). */
#ifndef TLSOFF_KTLS_RECORD_H
#define TLSOFF_KTLS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_RECORD_ALERT     21
#define TLS_RECORD_HANDSHAKE 22
#define TLS_RECORD_DATA      23

/* Send one record of the given type (e.g. an alert {level, description}). Returns bytes or -1/errno. */
ssize_t ktls_send_record(int fd, uint8_t type, const void *buf, size_t len);
/* close_notify: a warning-level alert 0. */
ssize_t ktls_send_close_notify(int fd);
/* Receive the next record whatever its type (recvmsg with a cmsg buffer: without one the kernel fails
 * non-data records with EIO). Returns bytes (0 = EOF) or -1/errno; *type = the record's content type. */
ssize_t ktls_recv_record(int fd, void *buf, size_t len, uint8_t *type);

/* What a record the kernel passed up (ktls_recv_record) asks of the relay. A handshake record may carry
 * several messages (RFC 8446 5.1): NewSessionTickets from a server we re-encrypt to (we keep no sessions:
 * dropped), and a KeyUpdate, which must end its record because the key changes after it. Everything else
 * after the handoff (a ticket from a client, a message cut at the record's end, any other handshake type)
 * is unexpected. Pure: the relay acts on the verdict (relay.c), tests/fuzz/ktls_record.c checks it. */
enum ktls_record_verdict {
	KREC_DATA,                    /* application data (the relay passes it on) */
	KREC_CLOSE_NOTIFY,            /* alert close_notify: end of this direction */
	KREC_ALERT,                   /* any other alert (or a truncated one): the connection fails */
	KREC_TICKETS,                 /* only NewSessionTickets, from the server: read and dropped */
	KREC_KEY_UPDATE,              /* [tickets,] KeyUpdate update_not_requested: new RX key */
	KREC_KEY_UPDATE_REQUESTED,    /* [tickets,] KeyUpdate update_requested: new RX key, and answer it */
	KREC_UNEXPECTED_HANDSHAKE,    /* a handshake record that is none of the above */
	KREC_UNKNOWN_TYPE,            /* a content type other than alert, handshake, data */
};
enum ktls_record_verdict ktls_record_classify(uint8_t type, const uint8_t *buf, size_t len, bool from_server);

#define TLS_HS_NEW_SESSION_TICKET 4
#define TLS_HS_KEY_UPDATE         24

#endif
