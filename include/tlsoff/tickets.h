/* tickets.h — session ticket keys shared by every frontend of the process, rotated on a timer:
 * the newest key encrypts, the previous one still decrypts (and asks the client to renew). */
#ifndef TLSOFF_TICKETS_H
#define TLSOFF_TICKETS_H

#include <openssl/ssl.h>

#define TICKET_ROTATE_SECONDS 3600

int tickets_init(void);                 /* first key; 0 or -1 */
int tickets_rotate(void);               /* new current key, current becomes previous */
void tickets_cleanup(void);             /* zeroise */
void tickets_attach(SSL_CTX *ctx);      /* install the key callback on ctx */

#endif
