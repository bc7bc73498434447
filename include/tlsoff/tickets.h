/* tickets.h — session ticket keys shared by every frontend of the process.
 *
 * Two sources:
 *   - none configured: random keys made in-process and rotated on a timer (tickets_rotate): the newest key
 *     encrypts, the previous one still decrypts (and asks the client to renew);
 *   - `tickets keys FILE`: the keys of FILE, shared by a fleet of tlsoffd behind ECMP or IPVS so that any
 *     node resumes the sessions of any other. The first key encrypts, every key decrypts; a ticket
 *     decrypted by another key than the first is renewed under the first. The file is re-read when it
 *     changes (tickets_tick) and on every configuration change (SIGHUP, tlsoffctl).
 *
 * The file: one key per line, each the base64 of 80 bytes — a 16-byte key name, a 32-byte HMAC-SHA256
 * secret, a 32-byte AES-256-CBC key, in that order (nginx's 80-byte ssl_session_ticket_key layout).
 * Blank lines and lines starting with '#' are ignored. Make a key with `tlsoffd --gen-ticket-key` or
 * `openssl rand 80 | openssl base64 -A; echo`. Rotate by writing a new key first and keeping the old ones
 * after it for as long as their tickets should still resume (the ticket lifetime, 2 hours by default),
 * then dropping them; write the file to a temporary name and rename it over the old one.
 *
 * Keys are kept in OpenSSL's secure heap when it is initialised and zeroised when dropped. The ticket
 * callback runs concurrently on the workers; loading happens on the main thread.
 */
#ifndef TLSOFF_TICKETS_H
#define TLSOFF_TICKETS_H

#include <stddef.h>
#include <openssl/ssl.h>

#define TICKET_ROTATE_SECONDS 3600
#define TICKETS_KEY_BYTES     80     /* name[16] hmac[32] aes[32] */
#define TICKETS_MAX_KEYS      64     /* per file */
#define TICKETS_FILE_MAX      65536  /* bytes */
#define TICKETS_CHECK_MS      150    /* tickets_tick looks at the file at most this often (the main
                                      * loop calls it every 200 ms) */

int tickets_init(void);                 /* first random key; 0 or -1 */
int tickets_rotate(void);               /* random keys: a new current key, the current one becomes previous;
					 * keys from a file: nothing (0) */
void tickets_cleanup(void);             /* drop and zeroise every key */
void tickets_attach(SSL_CTX *ctx);      /* install the key callback on ctx */

/* Parse FILE without using it. Errors are "FILE:LINE: message" (or "FILE: message"). 0 or -1. */
int tickets_check_file(const char *path, char *err, size_t errlen);

/* Use FILE's keys from now on ("" or NULL: random in-process keys, as without a file). The file is always
 * read, even when it is the one in use. On error (err set, -1) the keys in use stay. At start and after
 * each configuration change; the same as tickets_prepare then tickets_commit. */
int tickets_configure(const char *path_or_empty, char *err, size_t errlen);

/* The same in two steps for a configuration change that may still fail after the keys were read:
 * tickets_prepare reads and checks (nothing changes; -1 with err set on error), tickets_commit puts the
 * prepared keys in use (nothing if nothing is prepared). A new prepare drops an uncommitted one. */
int tickets_prepare(const char *path_or_empty, char *err, size_t errlen);
void tickets_commit(void);

/* On the main loop, every ~200 ms: re-reads the file in use once it has changed (inode, size, mtime,
 * ctime) and then stayed the same for one more check, so a file being written is not read half-way (a
 * change takes effect within about half a second). Logs "ticket keys: reloaded N keys from FILE", or
 * the error and keeps the keys in use (a broken file is not read again until it changes). */
void tickets_tick(void);

/* Re-read the file in use now (no-op with random keys). 0, or -1 with err set and the old keys kept. */
int tickets_reload(char *err, size_t errlen);

/* What is in use, for status output. path is "" with random keys. */
struct tickets_status {
	char path[4096];
	unsigned nkeys;
	char first_name[33];                /* the encrypting key's name, hex */
};
void tickets_status(struct tickets_status *st);

/* One new random key as a file line: base64 of 80 bytes, NUL-terminated, no newline (out: >= 109
 * bytes). 0 or -1. */
int tickets_gen_key(char *out, size_t outlen);

#endif
