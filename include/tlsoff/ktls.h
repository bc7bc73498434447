/* ktls.h — hand a finished OpenSSL session's record keys to the kernel (kTLS).
 *
 * Shared by tlsoffd and the tests. One table row per cipher (struct ktls_cipher), not one function each.
 * OpenSSL does the handshake; we derive the record keys ourselves for every version and direction —
 * OpenSSL 3.0 never offloads TLS 1.3 RX, and doing all of it here gives one code path whose secrets we
 * control (zeroised after install, see ktls_state_wipe).
 *
 * Usage (server or client):
 *   ktls_ctx_setup(ctx);                  before SSL_new: keylog + record-counting callbacks
 *   ... SSL_do_handshake() until done, SSL_pending(ssl) == 0 ...
 *   ktls_install(ssl, fd, KTLS_TX | KTLS_RX, &res);   TCP_ULP "tls" + TLS_TX / TLS_RX
 *   ktls_state_wipe(ssl);                 zeroise what is no longer needed
 */
#ifndef TLSOFF_KTLS_H
#define TLSOFF_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/tls.h>
#include <openssl/ssl.h>

/* Not in every libc's headers (glibc's netinet/tcp.h has TCP_ULP only from 2.26 on). */
#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

enum ktls_dir { KTLS_TX = 1u << 0, KTLS_RX = 1u << 1 };

/* The largest key material any row needs (AES-256 / ChaCha20 key, 12-byte nonce, SHA-384 secret). */
#define KTLS_MAX_KEY    32
#define KTLS_MAX_IV     12
#define KTLS_MAX_SECRET 48
/* Rows in ktls_ciphers[] can never exceed this (sizes the probe's per-row arrays). */
#define KTLS_MAX_CIPHERS 4

/* One row per AEAD cipher the kernel can take. Offsets are into the row's tls12_crypto_info_* struct. */
struct ktls_cipher {
	const char *name;        /* "AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305" */
	uint16_t kernel_type;    /* TLS_CIPHER_* */
	uint8_t key_len;         /* TLS_CIPHER_*_KEY_SIZE */
	uint8_t fixed_iv_len;    /* implicit IV from the key schedule: 4 (GCM, TLS 1.2) or 12 */
	uint8_t salt_len;        /* TLS_CIPHER_*_SALT_SIZE */
	uint8_t iv_len;          /* TLS_CIPHER_*_IV_SIZE */
	uint8_t rec_seq_len;     /* TLS_CIPHER_*_REC_SEQ_SIZE */
	size_t info_size;        /* sizeof(struct tls12_crypto_info_*) */
	size_t off_iv, off_key, off_salt, off_rec_seq;
	const char *min_kernel;  /* first kernel that accepts it, for messages ("4.13", "5.11") */
};

/* The kernel's crypto_info for one direction, whichever cipher. */
struct ktls_crypto_info {
	union {
		struct tls_crypto_info info;
		struct tls12_crypto_info_aes_gcm_128 gcm128;
		struct tls12_crypto_info_aes_gcm_256 gcm256;
		struct tls12_crypto_info_chacha20_poly1305 chacha;
	} u;
	size_t len;              /* bytes to pass to setsockopt */
};

extern const struct ktls_cipher ktls_ciphers[];
extern const size_t ktls_cipher_count;

/* Row for a negotiated cipher (by IANA id, e.g. 0x1301, 0xC02B), or NULL if the kernel can't take it. */
const struct ktls_cipher *ktls_cipher_by_iana(uint16_t iana_id);
const struct ktls_cipher *ktls_cipher_by_ssl(const SSL_CIPHER *c);

/* RFC 8446 §7.1 HKDF-Expand-Label(secret, label, context, length); label without the "tls13 " prefix.
 * Returns 0 or -1. */
int ktls_hkdf_expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
			   const char *label, const uint8_t *context, size_t context_len,
			   uint8_t *out, size_t out_len);

/* TLS 1.3: traffic secret -> key and iv (RFC 8446 §7.3). */
int ktls_tls13_key_iv(const EVP_MD *md, const struct ktls_cipher *c, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, uint8_t *iv);

/* Fill the kernel struct from key + full implicit IV (fixed_iv_len bytes) + record sequence number.
 * TLS 1.2 GCM: salt = 4-byte implicit IV, explicit nonce = sequence number. TLS 1.3 GCM: salt = iv[0..3],
 * iv = iv[4..11]. ChaCha20: iv = all 12 bytes. */
int ktls_crypto_info_fill(const struct ktls_cipher *c, uint16_t tls_version, const uint8_t *key,
			  const uint8_t *fixed_iv, uint64_t rec_seq, struct ktls_crypto_info *out);

/* Register the callbacks that capture secrets and count records. Call once per SSL_CTX. */
int ktls_ctx_setup(SSL_CTX *ctx);

struct ktls_result {
	unsigned installed;      /* KTLS_TX | KTLS_RX actually in the kernel */
	int err;                 /* errno of the first failure, 0 if none */
	char why[160];           /* human-readable reason when something was not installed */
};

/* Install the requested directions on fd (an ESTABLISHED TCP socket whose handshake is complete and whose
 * SSL object holds no unread application data). Returns 0 if everything requested was installed,
 * -1 otherwise (res says what and why; directions not installed stay with userspace OpenSSL). */
int ktls_install(SSL *ssl, int fd, unsigned dirs, struct ktls_result *res);

/* Zeroise the captured secrets. The TLS 1.3 application traffic secrets are kept unless
 * keep_traffic_secrets is false (KeyUpdate needs them). */
void ktls_state_wipe(SSL *ssl, bool keep_traffic_secrets);

/* What the running kernel can do, found by trying it on a loopback connection. */
struct ktls_caps {
	bool ulp;                /* setsockopt(TCP_ULP, "tls") works */
	int ulp_err;             /* errno when it does not (ENOENT: no CONFIG_TLS / module) */
	unsigned tx[2], rx[2];   /* [0] TLS 1.2, [1] TLS 1.3: bit i set = ktls_ciphers[i] accepted */
	bool rekey;              /* TLS 1.3 key update (setting TLS_TX again works, 6.14+) */
	char release[65];        /* uname -r */
	char why[160];           /* human-readable summary when ulp is false */
	/* Added: the errno of each refused combination ([version][cipher row], 0 = accepted or not tried)
	 * and of the rekey attempt, so reports can say why. */
	int tx_err[2][KTLS_MAX_CIPHERS], rx_err[2][KTLS_MAX_CIPHERS];
	int rekey_err;
};
int ktls_probe(struct ktls_caps *caps);

/* ---- additions (not used by the original contract; safe to ignore) ---------------------------- */

/* Print a probe report: a human table, or one JSON object (json = true). Returns 0 or -1 (I/O error).
 * JSON: {"kernel":"6.1.0-..","ulp":true,"ulp_errno":0,"why":"",
 *        "tls1.2":{"AES-128-GCM":{"tx":true,"rx":true,"tx_errno":0,"rx_errno":0},...},
 *        "tls1.3":{...},"rekey":false,"rekey_errno":16} */
int ktls_caps_print(const struct ktls_caps *caps, bool json, FILE *out);

/* Which setsockopt failed, for ktls_explain(). */
enum ktls_op { KTLS_OP_ULP, KTLS_OP_TX, KTLS_OP_RX };

/* The human reason for errno err from op with cipher c (may be NULL) and tls_version (0 = unknown),
 * taking the running kernel's release into account; NULL when the table has no entry. */
const char *ktls_explain(enum ktls_op op, int err, const struct ktls_cipher *c, uint16_t tls_version);

/* Derive one direction's kernel struct from a finished handshake without installing it (what
 * ktls_install passes to setsockopt). dir is KTLS_TX or KTLS_RX. Returns 0, or -1 with res->why set.
 * The caller must OPENSSL_cleanse(out) when done. */
int ktls_derive(SSL *ssl, unsigned dir, struct ktls_crypto_info *out, struct ktls_result *res);

/* After the handoff a TLS 1.3 connection needs only its two current application traffic secrets (for
 * KeyUpdate), not the SSL object: ktls_session_detach moves them out (into the secure heap when there is
 * one) and wipes them from the SSL's state, so the SSL can be freed. NULL when not TLS 1.3. */
struct ktls_session;
struct ktls_session *ktls_session_detach(SSL *ssl);
void ktls_session_free(struct ktls_session *ks);       /* zeroises */

/* TLS 1.3 KeyUpdate after the keys are in the kernel: advance direction dir's traffic secret
 * ("traffic upd"), sequence 0, and set TLS_TX / TLS_RX again (kernel 6.14+; EBUSY before). For RX call it
 * after the kernel passed up the peer's KeyUpdate; for TX after sending ours under the old key. */
int ktls_session_key_update(struct ktls_session *ks, int fd, unsigned dir, struct ktls_result *res);

/* Record sequence number of the next record in direction dir (KTLS_TX / KTLS_RX), as counted by the
 * callbacks of ktls_ctx_setup; -1 if the SSL was not created from a set-up SSL_CTX. */
int64_t ktls_record_seq(const SSL *ssl, unsigned dir);

/* TLS 1.2 PRF (RFC 5246 §5): P_<md>(secret, label || seed), out_len bytes. Returns 0 or -1. */
int ktls_tls12_prf(const EVP_MD *md, const uint8_t *secret, size_t secret_len, const char *label,
		   const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len);

/* Kernel release as a comparable number: "6.1.0-13-amd64" -> 6001000 (major*1e6 + minor*1e3 + patch);
 * 0 if it cannot be parsed. */
unsigned long ktls_kernel_version(const char *release);

#endif
