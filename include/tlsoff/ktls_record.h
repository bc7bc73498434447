/* ktls_record.h — non-data records on a kTLS socket: the kernel passes them up, and we send alerts
 * through it (the kernel encrypts them with the current TX key). */
#ifndef TLSOFF_KTLS_RECORD_H
#define TLSOFF_KTLS_RECORD_H

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

#endif
