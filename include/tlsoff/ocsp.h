/* ocsp.h — OCSP stapling from a file per certificate (`cert CHAIN key KEY ocsp RESPONSE.der`).
 *
 * The file is a DER OCSP response, as `openssl ocsp -respout` (or any fetcher) writes it. It is stapled only
 * while it is valid for the certificate: it parses, its status is successful, it has a SingleResponse whose
 * CertID is the leaf's (the issuer is the next certificate of the chain file), its signature verifies (by
 * the issuer, or by a responder the issuer delegated to), the certificate is good, thisUpdate is not in the
 * future (OCSP_SKEW_SECONDS allowed) and nextUpdate has not passed. Anything else is not stapled, with the
 * reason logged once per file change or per expiry (never per handshake) and shown by `tlsoffctl cert show`.
 *
 * The file is re-read when it changes (ocsp_tick on the main loop: inode, size, mtime, ctime, read once a
 * change has held for one more check) and on every configuration change (SIGHUP, tlsoffctl). A response
 * that goes stale while loaded stops being stapled at once (nextUpdate is checked at each handshake).
 * A file that cannot be read when a configuration is applied refuses it, like a missing certificate; once
 * running, a file that disappears stops stapling (logged) and is picked up again when it comes back.
 *
 * Staples are shared by every configuration generation that uses the same file for the same certificate,
 * so a file is watched once. The status callback runs on the workers; loading happens on the main thread.
 */
#ifndef TLSOFF_OCSP_H
#define TLSOFF_OCSP_H

#include <stddef.h>
#include <time.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define OCSP_SKEW_SECONDS 300          /* a thisUpdate this far in the future is still accepted */
#define OCSP_FILE_MAX     (64 * 1024)  /* bytes; real responses are 0.5-4 KiB */
#define OCSP_CHECK_MS     150          /* ocsp_tick looks at the files at most this often */

enum ocsp_verdict {
	OCSP_GOOD,        /* stapled */
	OCSP_STALE,       /* nextUpdate passed */
	OCSP_REVOKED,     /* the responder says the certificate is revoked */
	OCSP_MISMATCH,    /* not about this certificate (or the chain has no issuer to tell) */
	OCSP_INVALID,     /* not a usable OCSP response: garbage, unsuccessful, bad signature, future thisUpdate */
	OCSP_UNREADABLE,  /* the file cannot be read */
};

/* "stapling", "stale", "revoked", "mismatch", "invalid", "unreadable" */
const char *ocsp_verdict_name(enum ocsp_verdict v);

/* Check a DER response for leaf, whose chain (the certificates after it, issuer first; may be NULL) is
 * given, at time now. Returns the verdict; the reason in why (always set); *next_update = its nextUpdate
 * (0 when absent or unknown). Pure: no logging, no global state. */
enum ocsp_verdict ocsp_validate(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) *chain,
				time_t now, time_t *next_update, char *why, size_t whylen);

struct ocsp_staple;

/* Staple path's response on ctx (its certificate chain already loaded): reads and checks the file, installs
 * the status callback. NULL with err set when the file cannot be read (a bad response is not an error: it
 * is logged and not stapled). Shares a staple already watching the same file for the same certificate (and
 * re-reads it). */
struct ocsp_staple *ocsp_staple_attach(SSL_CTX *ctx, const char *path, char *err, size_t errlen);
void ocsp_staple_put(struct ocsp_staple *st);   /* NULL ok */

/* On the main loop, every ~200 ms: re-reads changed files; logs responses that went stale. */
void ocsp_tick(void);

/* For `cert show`. */
struct ocsp_status {
	enum ocsp_verdict verdict;
	char why[256];
	time_t next_update;               /* 0 = none */
};
void ocsp_staple_status(struct ocsp_staple *st, struct ocsp_status *out);

#endif
