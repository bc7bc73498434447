/* tls_ctx.h — a frontend's server-side TLS configuration: one SSL_CTX per certificate, chosen by SNI
 * (exact names first, then "*." wildcards, else the first certificate), ALPN, safe defaults, and session
 * ticket keys that rotate (tickets.c). */
#ifndef TLSOFF_TLS_CTX_H
#define TLSOFF_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
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

/* Load every cert/key of the frontend. Returns NULL with err = "cert FILE: reason" on failure.
 * capture_keys: the kernel may take this frontend's connections (kTLS ULP present, datapath not userspace),
 * so follow record numbers and capture the TLS 1.3 traffic secrets (ktls_ctx_setup). Without it OpenSSL
 * formats no keylog line (~200 sprintf("%02x") per handshake) and no per-connection state is allocated. */
struct tls_frontend *tls_frontend_new(const struct frontend_conf *fc, bool capture_keys, char *err, size_t errlen);
void tls_frontend_free(struct tls_frontend *tf);

/* A new server-side SSL for an accepted socket (non-blocking handshake via SSL_do_handshake). */
SSL *tls_frontend_ssl(struct tls_frontend *tf, int fd);

/* `nic-offload prefer` (nic_pref.h): one connection's decision, made by the ClientHello callback of a
 * frontend with the option. The caller sets ktls (could this connection get kTLS at all) and attaches it
 * with tls_ssl_nic_choice before the handshake; the callback fills in the rest (enum nic_pref_verdict and
 * nic_pref_reason, and the egress device). Small on purpose: it lives as long as the connection. */
struct nic_choice {
	bool ktls;
	uint8_t verdict, reason;
	char dev[IFNAMSIZ];
};
void tls_ssl_nic_choice(SSL *ssl, struct nic_choice *nc);

/* Index of the certificate SNI name would select (0 = default); exposed for tests and logging. */
unsigned tls_frontend_pick(const struct tls_frontend *tf, const char *sni);

/* The loaded certificates, for `cert show`: count, and certificate i's leaf (owned by tf) and DNS names
 * (its SANs, or the CN when it has none). */
unsigned tls_frontend_ncerts(const struct tls_frontend *tf);
X509 *tls_frontend_cert(const struct tls_frontend *tf, unsigned i, char *const **names, unsigned *nnames);

/* Certificate i's OCSP staple (ocsp.h), NULL when it has no `ocsp FILE`. */
struct ocsp_staple;
struct ocsp_staple *tls_frontend_ocsp(const struct tls_frontend *tf, unsigned i);

/* The primary name (first DNS SAN, else the CN) of the first certificate in a PEM file, for
 * `cert replace` without `old`. Returns 0 or -1 with err set. */
int tls_cert_file_name(const char *path, char *name, size_t len, char *err, size_t errlen);

/* Match one certificate name pattern ("example.com", "*.example.com") against an SNI host name. */
int tls_name_matches(const char *pattern, const char *host);

/* The first error in OpenSSL's queue as text (and clear the queue), for messages. */
const char *tls_error_string(char *buf, size_t len);

/* What the handshake established about the client's certificate (client-ca frontends), for the PROXY v2
 * SSL TLV and the log. On a resumed session the certificate and its verify result come from the session. */
struct tls_client_cert {
	bool sess;            /* the session has a client certificate */
	bool conn;            /* ... sent in this handshake (not resumed) */
	long verify;          /* X509_V_OK (0): verified; else the X509_V_ERR_* code (optional mode) */
	char cn[1024];        /* its subject CN as UTF-8; "" when there is none */
	bool cn_bad;          /* it has one, but with a NUL byte or longer than cn: not usable as an identity */
};
void tls_client_cert_get(SSL *ssl, struct tls_client_cert *out);

/* A failed handshake on a client-ca frontend: "no client certificate" or "client certificate: <the X509
 * verify error>" when the client's certificate is why (err: the first error of OpenSSL's queue), else
 * NULL. */
const char *tls_client_cert_refusal(SSL *ssl, unsigned long err, char *buf, size_t len);

#endif
