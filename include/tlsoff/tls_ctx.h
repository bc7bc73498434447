/* tls_ctx.h — a frontend's server-side TLS configuration: one SSL_CTX per certificate, chosen by SNI
 * (exact names first, then "*." wildcards, else the first certificate), ALPN, safe defaults, and session
 * ticket keys that rotate (tickets.c). */
#ifndef TLSOFF_TLS_CTX_H
#define TLSOFF_TLS_CTX_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "tlsoff/config.h"

/* AEAD suites only (each one a kTLS row), in our order of preference; the same lists for the client leg
 * (tls_ctx.c) and for the re-encrypted backend leg (backend_tls.c). */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define GROUPS "X25519:P-256:P-384"

struct tls_frontend;

/* Load every cert/key of the frontend. Returns NULL with err = "cert FILE: reason" on failure. */
struct tls_frontend *tls_frontend_new(const struct frontend_conf *fc, char *err, size_t errlen);
void tls_frontend_free(struct tls_frontend *tf);

/* A new server-side SSL for an accepted socket (non-blocking handshake via SSL_do_handshake). */
SSL *tls_frontend_ssl(struct tls_frontend *tf, int fd);

/* Index of the certificate SNI name would select (0 = default); exposed for tests and logging. */
unsigned tls_frontend_pick(const struct tls_frontend *tf, const char *sni);

/* The loaded certificates, for `cert show`: count, and certificate i's leaf (owned by tf) and DNS names
 * (its SANs, or the CN when it has none). */
unsigned tls_frontend_ncerts(const struct tls_frontend *tf);
X509 *tls_frontend_cert(const struct tls_frontend *tf, unsigned i, char *const **names, unsigned *nnames);

/* The primary name (first DNS SAN, else the CN) of the first certificate in a PEM file, for
 * `cert replace` without `old`. Returns 0 or -1 with err set. */
int tls_cert_file_name(const char *path, char *name, size_t len, char *err, size_t errlen);

/* Match one certificate name pattern ("example.com", "*.example.com") against an SNI host name. */
int tls_name_matches(const char *pattern, const char *host);

/* The first error in OpenSSL's queue as text (and clear the queue), for messages. */
const char *tls_error_string(char *buf, size_t len);

#endif
