/* ktls.c — derive a finished OpenSSL session's record keys and hand them to the kernel (kTLS).
 *
 * Why we derive the keys ourselves: OpenSSL 3.0 never offloads TLS 1.3 RX, and doing every version and
 * direction here gives one code path whose secrets we control. What we need from OpenSSL:
 *   - TLS 1.3: the application traffic secrets, captured from the keylog callback;
 *   - TLS 1.2: master secret and randoms (public API), key block via the TLS 1.2 PRF;
 *   - both: the record sequence number per direction, counted with the message callback.
 *
 * Record counting (checked against OpenSSL 3.0 ssl/record/rec_layer_s3.c and ssl/statem):
 *   - do_ssl3_write() reports SSL3_RT_HEADER once per record it builds, ssl3_get_record() once per record
 *     it reads: that is our "one more record in this direction".
 *   - Handshake messages are reported after their record (written: ssl3_do_write() after the write
 *     completed; read: tls_get_message_body() after the record was read).
 *   - The keys of a direction change right after its Finished (TLS 1.3) or right after its
 *     ChangeCipherSpec (TLS 1.2, where the Finished is then the only message in record 0 under the new
 *     keys). We anchor on the Finished message in both versions — TLS 1.3: next record is 0; TLS 1.2: next
 *     record is 1 — so it does not matter whether OpenSSL reports a received CCS as a message.
 *   - ChangeCipherSpec records never count: in TLS 1.3 the middlebox-compatibility CCS is unprotected
 *     and has no sequence number; in TLS 1.2 the CCS is the last record under the old keys.
 *   - TLS 1.3 KeyUpdate: after it in a direction, that direction's secret becomes
 *     HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) and its counter restarts at 0.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "tlsoff/ktls.h"


/* ---- cipher table -------------------------------------------------------------------------------- */

#define ROW(nm, T, S, fixed, mink)                                                                     \
	{                                                                                              \
		.name = nm, .kernel_type = TLS_CIPHER_##T, .key_len = TLS_CIPHER_##T##_KEY_SIZE,        \
		.fixed_iv_len = fixed, .salt_len = TLS_CIPHER_##T##_SALT_SIZE,                         \
		.iv_len = TLS_CIPHER_##T##_IV_SIZE, .rec_seq_len = TLS_CIPHER_##T##_REC_SEQ_SIZE,      \
		.info_size = sizeof(struct S), .off_iv = offsetof(struct S, iv),                       \
		.off_key = offsetof(struct S, key), .off_salt = offsetof(struct S, salt),              \
		.off_rec_seq = offsetof(struct S, rec_seq), .min_kernel = mink,                        \
	}

/* fixed_iv_len is the TLS 1.2 implicit IV (RFC 5288: 4-byte salt for GCM; RFC 7905: 12 bytes for
 * ChaCha20). TLS 1.3 always uses a 12-byte IV = salt_len + iv_len. */
const struct ktls_cipher ktls_ciphers[] = {
	ROW("AES-128-GCM", AES_GCM_128, tls12_crypto_info_aes_gcm_128, 4, "4.13"),
	ROW("AES-256-GCM", AES_GCM_256, tls12_crypto_info_aes_gcm_256, 4, "5.1"),
	ROW("CHACHA20-POLY1305", CHACHA20_POLY1305, tls12_crypto_info_chacha20_poly1305, 12, "5.11"),
};
const size_t ktls_cipher_count = sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]);
_Static_assert(sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]) <= KTLS_MAX_CIPHERS, "raise KTLS_MAX_CIPHERS");

enum { ROW_AES128, ROW_AES256, ROW_CHACHA };

/* IANA cipher suite id -> row. Only AEAD suites the kernel can run; CBC, CCM and PSK suites are absent
 * on purpose (ktls_cipher_by_iana returns NULL and the connection stays in userspace). */
static const struct {
	uint16_t iana;
	uint8_t row;
} iana_map[] = {
	{ 0x1301, ROW_AES128 }, /* TLS_AES_128_GCM_SHA256 */
	{ 0x1302, ROW_AES256 }, /* TLS_AES_256_GCM_SHA384 */
	{ 0x1303, ROW_CHACHA }, /* TLS_CHACHA20_POLY1305_SHA256 */
	{ 0x009C, ROW_AES128 }, /* TLS_RSA_WITH_AES_128_GCM_SHA256 */
	{ 0x009D, ROW_AES256 }, /* TLS_RSA_WITH_AES_256_GCM_SHA384 */
	{ 0x009E, ROW_AES128 }, /* TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 */
	{ 0x009F, ROW_AES256 }, /* TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 */
	{ 0xC02B, ROW_AES128 }, /* TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 */
	{ 0xC02C, ROW_AES256 }, /* TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 */
	{ 0xC02F, ROW_AES128 }, /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
	{ 0xC030, ROW_AES256 }, /* TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 */
	{ 0xCCA8, ROW_CHACHA }, /* TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 */
	{ 0xCCA9, ROW_CHACHA }, /* TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 */
	{ 0xCCAA, ROW_CHACHA }, /* TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 */
};

const struct ktls_cipher *ktls_cipher_by_iana(uint16_t iana_id)
{
	for (size_t i = 0; i < sizeof(iana_map) / sizeof(iana_map[0]); i++)
		if (iana_map[i].iana == iana_id)
			return &ktls_ciphers[iana_map[i].row];
	return NULL;
}

const struct ktls_cipher *ktls_cipher_by_ssl(const SSL_CIPHER *c)
{
	return c ? ktls_cipher_by_iana(SSL_CIPHER_get_protocol_id(c)) : NULL;
}

/* ---- key derivation ------------------------------------------------------------------------------ */

/* Run one EVP_KDF with the given params; 0 or -1. */
static int kdf_run(const char *alg, OSSL_PARAM *params, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, alg, NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int rc = (kctx && EVP_KDF_derive(kctx, out, out_len, params) > 0) ? 0 : -1;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

int ktls_hkdf_expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
			   const char *label, const uint8_t *context, size_t context_len,
			   uint8_t *out, size_t out_len)
{
	/* struct HkdfLabel { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; } */
	static const char prefix[] = "tls13 ";
	size_t label_len = strlen(label), plen = sizeof(prefix) - 1;
	uint8_t info[2 + 1 + 255 + 1 + 255];
	size_t n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;

	if (!md || !secret || out_len > 0xffff || plen + label_len > 255 || context_len > 255 ||
	    (context_len && !context))
		return -1;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(plen + label_len);
	memcpy(info + n, prefix, plen), n += plen;
	memcpy(info + n, label, label_len), n += label_len;
	info[n++] = (uint8_t)context_len;
	if (context_len)
		memcpy(info + n, context, context_len), n += context_len;

	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
		OSSL_PARAM_construct_end(),
	};
	return kdf_run("HKDF", params, out, out_len);
}

int ktls_tls13_key_iv(const EVP_MD *md, const struct ktls_cipher *c, const uint8_t *secret,
		      size_t secret_len, uint8_t *key, uint8_t *iv)
{
	if (!c)
		return -1;
	if (ktls_hkdf_expand_label(md, secret, secret_len, "key", NULL, 0, key, c->key_len) < 0)
		return -1;
	if (ktls_hkdf_expand_label(md, secret, secret_len, "iv", NULL, 0, iv, c->salt_len + c->iv_len) < 0) {
		OPENSSL_cleanse(key, c->key_len);
		return -1;
	}
	return 0;
}

int ktls_tls12_prf(const EVP_MD *md, const uint8_t *secret, size_t secret_len, const char *label,
		   const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len)
{
	size_t label_len = strlen(label);
	uint8_t buf[256];

	if (!md || label_len + seed_len > sizeof(buf))
		return -1;
	memcpy(buf, label, label_len);
	memcpy(buf + label_len, seed, seed_len);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, buf, label_len + seed_len),
		OSSL_PARAM_construct_end(),
	};
	return kdf_run("TLS1-PRF", params, out, out_len);
}

static void put_be64(uint8_t *p, size_t len, uint64_t v)
{
	for (size_t i = len; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

int ktls_crypto_info_fill(const struct ktls_cipher *c, uint16_t tls_version, const uint8_t *key,
			  const uint8_t *fixed_iv, uint64_t rec_seq, struct ktls_crypto_info *out)
{
	if (!c || !out || (tls_version != TLS_1_2_VERSION && tls_version != TLS_1_3_VERSION))
		return -1;
	memset(out, 0, sizeof(*out));
	uint8_t *base = (uint8_t *)&out->u;
	out->u.info.version = tls_version;
	out->u.info.cipher_type = c->kernel_type;
	out->len = c->info_size;

	memcpy(base + c->off_key, key, c->key_len);
	memcpy(base + c->off_salt, fixed_iv, c->salt_len);
	if (tls_version == TLS_1_2_VERSION && c->salt_len) {
		/* GCM in TLS 1.2: explicit 8-byte nonce on the wire. The kernel sends iv and increments it
		 * per record; starting it at the sequence number gives nonce == seq, unique per record from
		 * here on. (OpenSSL 3.0 started its own explicit nonces for the Finished at a random 64-bit
		 * value, so the few it used collide with ours only with probability ~2^-60.) */
		put_be64(base + c->off_iv, c->iv_len, rec_seq);
	} else {
		/* TLS 1.3 (and ChaCha20 in TLS 1.2): static IV, XORed with the sequence number per record. */
		memcpy(base + c->off_iv, fixed_iv + c->salt_len, c->iv_len);
	}
	put_be64(base + c->off_rec_seq, c->rec_seq_len, rec_seq);
	return 0;
}

/* ---- per-SSL state: captured secrets and record counters ----------------------------------------- */

enum { SEC_CLIENT, SEC_SERVER };
enum { D_TX, D_RX };

struct ktls_state {
	uint64_t seq[2];                        /* next record's sequence number, [D_TX] / [D_RX] */
	uint8_t secret[2][KTLS_MAX_SECRET];     /* TLS 1.3 current application traffic secrets */
	size_t secret_len[2];                   /* 0 = not captured (or wiped) */
	bool key_update_failed;                 /* a KeyUpdate happened and we could not follow it */
};

static int ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	OPENSSL_clear_free(ptr, sizeof(struct ktls_state));
}

/* SSL_dup would otherwise share (and double-free) our pointer: the copy starts without state. */
static int state_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx, long argl,
		     void *argp)
{
	(void)to, (void)from, (void)idx, (void)argl, (void)argp;
	*from_d = NULL;
	return 1;
}

static void ex_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, state_dup, state_free);
}

static struct ktls_state *state_get(const SSL *ssl, bool create)
{
	if (ex_index < 0)
		return NULL;
	struct ktls_state *st = SSL_get_ex_data(ssl, ex_index);
	if (!st && create) {
		st = OPENSSL_zalloc(sizeof(*st));
		if (st && !SSL_set_ex_data((SSL *)ssl, ex_index, st)) {
			OPENSSL_free(st);
			st = NULL;
		}
	}
	return st;
}

/* Which traffic secret protects direction d on this side. */
static int secret_of(const SSL *ssl, int d)
{
	bool server = SSL_is_server((SSL *)ssl);
	return (d == D_TX) == server ? SEC_SERVER : SEC_CLIENT;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* NSS key log line: "LABEL <client_random hex> <secret hex>". We keep only the two application
 * traffic secrets; the line itself is owned (and cleansed) by OpenSSL. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	static const struct {
		const char *label;
		int which;
	} wanted[] = { { "CLIENT_TRAFFIC_SECRET_0 ", SEC_CLIENT }, { "SERVER_TRAFFIC_SECRET_0 ", SEC_SERVER } };

	for (size_t i = 0; i < 2; i++) {
		size_t ll = strlen(wanted[i].label);
		if (strncmp(line, wanted[i].label, ll) != 0)
			continue;
		const char *sp = strchr(line + ll, ' ');
		struct ktls_state *st = state_get(ssl, true);
		if (!sp || !st)
			return;
		uint8_t *dst = st->secret[wanted[i].which];
		size_t n = 0;
		for (const char *h = sp + 1; h[0] && h[1] && n < KTLS_MAX_SECRET; h += 2) {
			int hi = hexval(h[0]), lo = hexval(h[1]);
			if (hi < 0 || lo < 0)
				break;
			dst[n++] = (uint8_t)(hi << 4 | lo);
		}
		st->secret_len[wanted[i].which] = n;
		return;
	}
}

/* Follow a TLS 1.3 KeyUpdate in direction d: next-generation secret, counter back to 0. */
static void key_update(SSL *ssl, struct ktls_state *st, int d)
{
	int w = secret_of(ssl, d);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const EVP_MD *md = cipher ? SSL_CIPHER_get_handshake_digest(cipher) : NULL;
	uint8_t next[KTLS_MAX_SECRET];
	size_t len = st->secret_len[w];

	st->seq[d] = 0;
	if (!len || !md || ktls_hkdf_expand_label(md, st->secret[w], len, "traffic upd", NULL, 0, next, len) < 0) {
		st->key_update_failed = true;
		OPENSSL_cleanse(st->secret[w], sizeof(st->secret[w]));
		st->secret_len[w] = 0;
		return;
	}
	memcpy(st->secret[w], next, len);
	OPENSSL_cleanse(next, sizeof(next));
}

/* The ChangeCipherSpec exclusion below is belt and braces: every CCS record precedes the Finished of
 * its direction, so the Finished anchor already overrides it (test_ktls cannot tell them apart). */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
		   void *arg)
{
	(void)version, (void)arg;
	const uint8_t *p = buf;
	struct ktls_state *st = state_get(ssl, true);
	int d = write_p ? D_TX : D_RX;

	if (!st || len < 1)
		return;
	switch (content_type) {
	case SSL3_RT_HEADER: /* one record built or read; p[0] is its (outer) content type */
		if (p[0] != SSL3_RT_CHANGE_CIPHER_SPEC)
			st->seq[d]++;
		break;
	case SSL3_RT_HANDSHAKE:
		if (p[0] == SSL3_MT_FINISHED)
			st->seq[d] = SSL_version(ssl) == TLS1_3_VERSION ? 0 : 1;
		else if (p[0] == SSL3_MT_KEY_UPDATE && SSL_version(ssl) == TLS1_3_VERSION)
			key_update(ssl, st, d);
		break;
	default:
		break;
	}
}

int ktls_ctx_setup(SSL_CTX *ctx)
{
	if (!ctx || pthread_once(&ex_once, ex_init) != 0 || ex_index < 0)
		return -1;
	/* Both replace any callback set before; tlsoff owns them on its contexts. */
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	SSL_CTX_set_msg_callback(ctx, msg_cb);
	return 0;
}

int64_t ktls_record_seq(const SSL *ssl, unsigned dir)
{
	struct ktls_state *st = state_get(ssl, false);
	if (!st || (dir != KTLS_TX && dir != KTLS_RX))
		return -1;
	return (int64_t)st->seq[dir == KTLS_TX ? D_TX : D_RX];
}

void ktls_state_wipe(SSL *ssl, bool keep_traffic_secrets)
{
	struct ktls_state *st = state_get(ssl, false);
	if (!st || keep_traffic_secrets)
		return;
	OPENSSL_cleanse(st->secret, sizeof(st->secret));
	st->secret_len[SEC_CLIENT] = st->secret_len[SEC_SERVER] = 0;
}

/* ---- errno -> human reason ----------------------------------------------------------------------- */

unsigned long ktls_kernel_version(const char *release)
{
	unsigned long a = 0, b = 0, c = 0;
	if (!release || sscanf(release, "%lu.%lu.%lu", &a, &b, &c) < 2)
		return 0;
	return a * 1000000 + b * 1000 + c;
}

static unsigned long running_kernel(void)
{
	struct utsname u;
	return uname(&u) == 0 ? ktls_kernel_version(u.release) : 0;
}

#define OP_CONF (-1) /* either TLS_TX or TLS_RX */
#define ANY_CIPHER 0xffff

/* First matching row wins: specific rows before general ones. `below` limits a row to kernels older
 * than that version (0 = any kernel): EINVAL means "cipher unknown" on an old kernel, but on a kernel
 * that knows the cipher the one remaining cause for a well-formed struct is the sockmap rule. */
static const struct {
	int op;
	int err;
	uint16_t kernel_type;
	uint16_t tls_version;
	unsigned long below;
	const char *msg;
} reasons[] = {
	{ KTLS_OP_ULP, ENOENT, ANY_CIPHER, 0, 0,
	  "kernel has no TLS ULP (CONFIG_TLS not built / tls module missing)" },
	{ KTLS_OP_ULP, ENOTCONN, ANY_CIPHER, 0, 0,
	  "socket is not connected: TCP_ULP \"tls\" needs an ESTABLISHED TCP socket" },
	{ KTLS_OP_ULP, EEXIST, ANY_CIPHER, 0, 0, "socket already carries another ULP (not \"tls\")" },
	{ KTLS_OP_ULP, ENOPROTOOPT, ANY_CIPHER, 0, 0, "kernel has no TCP_ULP socket option (kTLS needs 4.13+)" },
	{ KTLS_OP_ULP, EOPNOTSUPP, ANY_CIPHER, 0, 0, "socket cannot take a ULP (not a TCP socket?)" },
	{ KTLS_OP_ULP, EPERM, ANY_CIPHER, 0, 0,
	  "loading the tls module needs CAP_NET_ADMIN (or modprobe tls beforehand)" },
	{ OP_CONF, ENOENT, TLS_CIPHER_AES_GCM_128, 0, 0, "kernel crypto lacks gcm(aes) (load gcm/aesni modules)" },
	{ OP_CONF, ENOENT, TLS_CIPHER_AES_GCM_256, 0, 0, "kernel crypto lacks gcm(aes) (load gcm/aesni modules)" },
	{ OP_CONF, ENOENT, TLS_CIPHER_CHACHA20_POLY1305, 0, 0,
	  "kernel crypto lacks rfc7539(chacha20,poly1305) (load the chacha20poly1305 module)" },
	{ OP_CONF, EINVAL, TLS_CIPHER_CHACHA20_POLY1305, 0, 5011000,
	  "kernel does not support CHACHA20-POLY1305 for kTLS (needs 5.11+)" },
	{ OP_CONF, EINVAL, ANY_CIPHER, TLS_1_3_VERSION, 5001000, "TLS 1.3 kTLS needs kernel 5.1+" },
	{ OP_CONF, EINVAL, TLS_CIPHER_AES_GCM_256, 0, 5001000,
	  "kernel does not support AES-256-GCM for kTLS (needs 5.1+)" },
	{ OP_CONF, EINVAL, ANY_CIPHER, 0, 0,
	  "socket is in a sockmap: kernel forbids kTLS with sockmap (CVE-2026-93824)" },
	{ KTLS_OP_RX, ENOPROTOOPT, ANY_CIPHER, 0, 4017000, "kTLS RX needs kernel 4.17+" },
	{ OP_CONF, ENOPROTOOPT, ANY_CIPHER, 0, 0, "kernel does not know this kTLS socket option" },
	{ OP_CONF, EBUSY, ANY_CIPHER, 0, 0,
	  "keys already installed for this direction (replacing them, TLS 1.3 rekey, needs kernel 6.14+)" },
	{ OP_CONF, ENOMEM, ANY_CIPHER, 0, 0, "kernel ran out of memory setting up kTLS" },
	{ -2, EBADF, ANY_CIPHER, 0, 0, "not an open file descriptor" },
	{ -2, ENOTSOCK, ANY_CIPHER, 0, 0, "file descriptor is not a socket" },
};

const char *ktls_explain(enum ktls_op op, int err, const struct ktls_cipher *c, uint16_t tls_version)
{
	unsigned long kv = 0;
	bool kv_known = false;

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].err != err)
			continue;
		if (reasons[i].op >= 0 ? reasons[i].op != (int)op
				       : reasons[i].op == OP_CONF && op == KTLS_OP_ULP)
			continue;
		if (reasons[i].kernel_type != ANY_CIPHER && (!c || c->kernel_type != reasons[i].kernel_type))
			continue;
		if (reasons[i].tls_version && reasons[i].tls_version != tls_version)
			continue;
		if (reasons[i].below) {
			if (!kv_known)
				kv = running_kernel(), kv_known = true;
			if (kv && kv >= reasons[i].below)
				continue;
		}
		return reasons[i].msg;
	}
	return NULL;
}

/* ---- derive + install ---------------------------------------------------------------------------- */

static int fail(struct ktls_result *res, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ktls_result *res, int err, const char *fmt, ...)
{
	if (res->why[0] == '\0') { /* keep the first reason */
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(res->why, sizeof(res->why), fmt, ap);
		va_end(ap);
		res->err = err;
	}
	return -1;
}

static uint16_t kernel_version_of(const SSL *ssl)
{
	switch (SSL_version(ssl)) {
	case TLS1_2_VERSION:
		return TLS_1_2_VERSION;
	case TLS1_3_VERSION:
		return TLS_1_3_VERSION;
	default:
		return 0;
	}
}

int ktls_derive(SSL *ssl, unsigned dir, struct ktls_crypto_info *out, struct ktls_result *res)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const struct ktls_cipher *c = ktls_cipher_by_ssl(cipher);
	const EVP_MD *md = cipher ? SSL_CIPHER_get_handshake_digest(cipher) : NULL;
	struct ktls_state *st = state_get(ssl, false);
	uint16_t ver = kernel_version_of(ssl);
	int d = dir == KTLS_TX ? D_TX : D_RX;
	uint8_t key[KTLS_MAX_KEY], iv[KTLS_MAX_IV];
	int rc = -1;

	if (dir != KTLS_TX && dir != KTLS_RX)
		return fail(res, EINVAL, "ktls_derive: dir must be KTLS_TX or KTLS_RX");
	if (!st)
		return fail(res, EINVAL, "no record counters for this connection: call ktls_ctx_setup() on "
					 "the SSL_CTX before SSL_new()");
	if (!SSL_is_init_finished(ssl))
		return fail(res, EINVAL, "the TLS handshake is not complete");
	if (!ver)
		return fail(res, EPROTONOSUPPORT, "kTLS supports TLS 1.2 and 1.3 only (negotiated %s)",
			    SSL_get_version(ssl));
	if (!c || !md)
		return fail(res, EOPNOTSUPP, "cipher %s has no kernel kTLS equivalent",
			    cipher ? SSL_CIPHER_get_name(cipher) : "(none)");

	if (ver == TLS_1_3_VERSION) {
		int w = secret_of(ssl, d);
		if (st->key_update_failed)
			return fail(res, EKEYEXPIRED, "a TLS 1.3 KeyUpdate changed the keys and the next "
						      "secret could not be derived");
		if (!st->secret_len[w])
			return fail(res, ENOKEY, "the TLS 1.3 %s traffic secret was not captured (keylog "
						 "callback replaced, or secrets already wiped)",
				    w == SEC_SERVER ? "server" : "client");
		if (ktls_tls13_key_iv(md, c, st->secret[w], st->secret_len[w], key, iv) == 0 &&
		    ktls_crypto_info_fill(c, ver, key, iv, st->seq[d], out) == 0)
			rc = 0;
	} else {
		/* key_block = client_key | server_key | client_iv | server_iv (AEAD: no MAC keys) */
		SSL_SESSION *sess = SSL_get_session(ssl);
		uint8_t master[SSL_MAX_MASTER_KEY_LENGTH], seed[2 * SSL3_RANDOM_SIZE];
		uint8_t block[2 * KTLS_MAX_KEY + 2 * KTLS_MAX_IV];
		size_t mlen = sess ? SSL_SESSION_get_master_key(sess, master, sizeof(master)) : 0;
		size_t klen = c->key_len, ivlen = c->fixed_iv_len;
		bool server_keys = secret_of(ssl, d) == SEC_SERVER;

		if (mlen && SSL_get_server_random(ssl, seed, SSL3_RANDOM_SIZE) == SSL3_RANDOM_SIZE &&
		    SSL_get_client_random(ssl, seed + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) == SSL3_RANDOM_SIZE &&
		    ktls_tls12_prf(md, master, mlen, "key expansion", seed, sizeof(seed), block,
				   2 * klen + 2 * ivlen) == 0) {
			memcpy(key, block + (server_keys ? klen : 0), klen);
			memcpy(iv, block + 2 * klen + (server_keys ? ivlen : 0), ivlen);
			if (ktls_crypto_info_fill(c, ver, key, iv, st->seq[d], out) == 0)
				rc = 0;
		}
		OPENSSL_cleanse(master, sizeof(master));
		OPENSSL_cleanse(block, sizeof(block));
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	if (rc < 0) {
		OPENSSL_cleanse(out, sizeof(*out));
		return fail(res, EIO, "deriving the %s record keys failed (OpenSSL KDF error)",
			    d == D_TX ? "TX" : "RX");
	}
	return 0;
}

/* TCP_ULP "tls"; EEXIST is fine when the ULP already there is tls (e.g. our own earlier call). */
static int set_ulp(int fd, struct ktls_result *res)
{
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0)
		return 0;
	int err = errno;
	if (err == EEXIST) {
		char name[16] = "";
		socklen_t len = sizeof(name);
		if (getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) == 0 && strcmp(name, "tls") == 0)
			return 0;
	}
	const char *why = ktls_explain(KTLS_OP_ULP, err, NULL, 0);
	return why ? fail(res, err, "%s", why)
		   : fail(res, err, "setsockopt(TCP_ULP, \"tls\") failed: %s", strerror(err));
}

int ktls_install(SSL *ssl, int fd, unsigned dirs, struct ktls_result *res)
{
	static const struct {
		unsigned dir;
		int optname;
		enum ktls_op op;
		const char *name;
	} steps[] = { { KTLS_TX, TLS_TX, KTLS_OP_TX, "TX" }, { KTLS_RX, TLS_RX, KTLS_OP_RX, "RX" } };
	struct ktls_result dummy;
	SSL_SESSION *sess;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (!ssl || !dirs || (dirs & ~(unsigned)(KTLS_TX | KTLS_RX)))
		return fail(res, EINVAL, "ktls_install: bad arguments");
	if (SSL_get_options(ssl) & SSL_OP_ENABLE_KTLS)
		return fail(res, EBUSY, "SSL_OP_ENABLE_KTLS is set: OpenSSL would install kTLS itself; "
					"tlsoff installs the keys, so leave that option off");
	if (SSL_get_current_compression(ssl))
		return fail(res, EOPNOTSUPP, "TLS compression is on: kTLS cannot do it");
	sess = SSL_get_session(ssl);
	if (sess && SSL_SESSION_get_max_fragment_length(sess) != TLSEXT_max_fragment_length_DISABLED)
		return fail(res, EOPNOTSUPP, "max_fragment_length was negotiated: kTLS cannot honour it");
	/* Bytes OpenSSL already pulled off the socket (a decrypted record not yet read, or read-ahead data)
	 * would be skipped by the kernel, and the RX sequence number would be wrong.
	 * TX is unaffected and still goes ahead if it was asked for. */
	unsigned wanted = dirs;
	if ((dirs & KTLS_RX) && SSL_has_pending(ssl)) {
		fail(res, EAGAIN, "RX: OpenSSL holds %d byte(s) of unread data%s: RX cannot go to the kernel "
				  "until they are drained with SSL_read",
		     SSL_pending(ssl), SSL_get_read_ahead(ssl) ? " (read-ahead is on)" : "");
		wanted &= ~(unsigned)KTLS_RX;
		if (!wanted)
			return -1;
	}

	/* A record OpenSSL built but could not fully write yet (non-blocking socket) is already counted:
	 * the kernel's records would overtake it. Flush first (repeat the SSL call until it completes). */
	if ((wanted & KTLS_TX) && SSL_want_write(ssl)) {
		fail(res, EAGAIN, "TX: OpenSSL still holds an unsent record (SSL_ERROR_WANT_WRITE): finish "
				  "the pending SSL call before handing TX to the kernel");
		wanted &= ~(unsigned)KTLS_TX;
		if (!wanted)
			return -1;
	}

	/* Derive everything first: a refusal here must leave the socket untouched. */
	struct ktls_crypto_info info[2];
	for (size_t i = 0; i < 2; i++)
		if ((wanted & steps[i].dir) && ktls_derive(ssl, steps[i].dir, &info[i], res) < 0) {
			OPENSSL_cleanse(info, sizeof(info));
			return -1;
		}

	if (set_ulp(fd, res) < 0) {
		OPENSSL_cleanse(info, sizeof(info));
		return -1;
	}
	uint16_t ver = kernel_version_of(ssl);
	const struct ktls_cipher *c = ktls_cipher_by_ssl(SSL_get_current_cipher(ssl));
	for (size_t i = 0; i < 2; i++) {
		if (!(wanted & steps[i].dir))
			continue;
		int rc = setsockopt(fd, SOL_TLS, steps[i].optname, &info[i].u, (socklen_t)info[i].len);
		int err = errno;
		OPENSSL_cleanse(&info[i], sizeof(info[i]));
		if (rc == 0) {
			res->installed |= steps[i].dir;
			continue;
		}
		const char *why = ktls_explain(steps[i].op, err, c, ver);
		if (why)
			fail(res, err, "%s: %s", steps[i].name, why);
		else
			fail(res, err, "%s: setsockopt(SOL_TLS, TLS_%s) with %s %s failed: %s", steps[i].name,
			     steps[i].name, ver == TLS_1_3_VERSION ? "TLS 1.3" : "TLS 1.2", c->name, strerror(err));
	}
	return res->installed == dirs ? 0 : -1;
}

/* ---- after the handoff: what a TLS 1.3 connection keeps for KeyUpdate ------------------------------ */

struct ktls_session {
	const struct ktls_cipher *row;
	const EVP_MD *md;
	bool server;
	size_t secret_len;
	uint8_t secret[2][KTLS_MAX_SECRET];   /* [SEC_CLIENT], [SEC_SERVER] current traffic secrets */
};

struct ktls_session *ktls_session_detach(SSL *ssl)
{
	struct ktls_state *st = state_get(ssl, false);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	struct ktls_session *ks;

	if (!st || SSL_version(ssl) != TLS1_3_VERSION || !cipher || !st->secret_len[SEC_CLIENT] ||
	    st->secret_len[SEC_CLIENT] != st->secret_len[SEC_SERVER])
		return NULL;
	/* The secure heap (mlocked, never in a core dump) when the daemon set one up and it has room; plain
	 * memory otherwise (OPENSSL_secure_clear_free handles both). */
	if (!(ks = OPENSSL_secure_zalloc(sizeof(*ks))) && !(ks = OPENSSL_zalloc(sizeof(*ks))))
		return NULL;
	ks->row = ktls_cipher_by_ssl(cipher);
	ks->md = SSL_CIPHER_get_handshake_digest(cipher);
	ks->server = SSL_is_server(ssl);
	ks->secret_len = st->secret_len[SEC_CLIENT];
	memcpy(ks->secret, st->secret, sizeof(ks->secret));
	OPENSSL_cleanse(st->secret, sizeof(st->secret));
	st->secret_len[SEC_CLIENT] = st->secret_len[SEC_SERVER] = 0;
	return ks;
}

void ktls_session_free(struct ktls_session *ks)
{
	if (ks)
		OPENSSL_secure_clear_free(ks, sizeof(*ks));
}

int ktls_session_key_update(struct ktls_session *ks, int fd, unsigned dir, struct ktls_result *res)
{
	struct ktls_crypto_info info;
	uint8_t next[KTLS_MAX_SECRET], key[KTLS_MAX_KEY], iv[KTLS_MAX_IV];
	int w = (dir == KTLS_TX) == ks->server ? SEC_SERVER : SEC_CLIENT;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (!ks->row || !ks->md || (dir != KTLS_TX && dir != KTLS_RX))
		return fail(res, EINVAL, "KeyUpdate: no TLS 1.3 session to update");
	/* RFC 8446 7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length) */
	if (ktls_hkdf_expand_label(ks->md, ks->secret[w], ks->secret_len, "traffic upd", NULL, 0, next,
				   ks->secret_len) == 0 &&
	    ktls_tls13_key_iv(ks->md, ks->row, next, ks->secret_len, key, iv) == 0 &&
	    ktls_crypto_info_fill(ks->row, TLS_1_3_VERSION, key, iv, 0, &info) == 0) {
		memcpy(ks->secret[w], next, ks->secret_len);
		rc = setsockopt(fd, SOL_TLS, dir == KTLS_TX ? TLS_TX : TLS_RX, &info.u, (socklen_t)info.len);
		int err = errno;
		OPENSSL_cleanse(&info, sizeof(info));
		errno = err;
	} else {
		OPENSSL_cleanse(next, sizeof(next));
		return fail(res, EIO, "KeyUpdate: deriving the next traffic keys failed");
	}
	OPENSSL_cleanse(next, sizeof(next));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	if (rc == 0) {
		res->installed = dir;
		return 0;
	}
	if (errno == EBUSY)
		return fail(res, errno, "KeyUpdate: this kernel cannot replace kTLS keys (rekey needs 6.14+)");
	return fail(res, errno, "KeyUpdate: setsockopt(SOL_TLS, TLS_%s) failed: %s", dir == KTLS_TX ? "TX" : "RX",
		    strerror(errno));
}
