/* ocsp.c — OCSP stapling from a file per certificate: validation, the status callback, file watching.
 * The contract is in include/tlsoff/ocsp.h. */
#include "tlsoff/ocsp.h"
#include "tlsoff/file_id.h"
#include "tlsoff/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

const char *ocsp_verdict_name(enum ocsp_verdict v)
{
	static const char *const names[] = {
		[OCSP_GOOD] = "stapling", [OCSP_STALE] = "stale", [OCSP_REVOKED] = "revoked",
		[OCSP_MISMATCH] = "mismatch", [OCSP_INVALID] = "invalid", [OCSP_UNREADABLE] = "unreadable",
	};
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

/* ---- validation ----------------------------------------------------------------------------------- */

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;
	return t && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

static const char *utc(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

static const char *openssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

/* The SingleResponse about leaf (issued by issuer), whatever hash its CertID uses; NULL if none. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer)
{
	for (int i = 0; i < OCSP_resp_count(bs); i++) {
		OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
		const OCSP_CERTID *cid = OCSP_SINGLERESP_get0_id(single);
		ASN1_OBJECT *md_oid = NULL;
		if (!cid || OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, (OCSP_CERTID *)cid) != 1)
			continue;
		const EVP_MD *md = EVP_get_digestbyobj(md_oid);
		OCSP_CERTID *mine = md ? OCSP_cert_to_id(md, leaf, issuer) : NULL;
		bool match = mine && OCSP_id_cmp(mine, cid) == 0;
		OCSP_CERTID_free(mine);
		if (match)
			return single;
	}
	return NULL;
}

/* The signature: by the issuer itself, or by a responder certificate the issuer signed for OCSP signing.
 * The issuer is the trust anchor (PARTIAL_CHAIN: it is usually an intermediate). */
static int verify_signature(OCSP_BASICRESP *bs, X509 *issuer, STACK_OF(X509) *chain, char *why, size_t whylen)
{
	char ebuf[256];
	X509_STORE *store = X509_STORE_new();
	int ok = store && X509_STORE_add_cert(store, issuer) == 1 &&
		 X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
		 OCSP_basic_verify(bs, chain, store, 0) == 1;
	if (!ok)
		snprintf(why, whylen, "its signature does not verify with the issuer: %s", openssl_reason(ebuf, sizeof(ebuf)));
	X509_STORE_free(store);
	return ok ? 0 : -1;
}

enum ocsp_verdict ocsp_validate(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) *chain,
				time_t now, time_t *next_update, char *why, size_t whylen)
{
	char t1[32], t2[32];
	enum ocsp_verdict v = OCSP_INVALID;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	*next_update = 0;

	const unsigned char *p = der;
	if (!len || len > LONG_MAX || !(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) || p != der + len) {
		snprintf(why, whylen, "not a DER OCSP response%s", resp ? " (bytes after its end)" : "");
		goto out;
	}
	int status = OCSP_response_status(resp);
	if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(why, whylen, "response status %s, not successful", OCSP_response_status_str(status));
		goto out;
	}
	if (!(bs = OCSP_response_get1_basic(resp))) {
		snprintf(why, whylen, "not a basic OCSP response");
		goto out;
	}
	X509 *issuer = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
	if (!issuer) {
		v = OCSP_MISMATCH;
		snprintf(why, whylen, "the chain file has no issuer certificate after the leaf, so the response "
			 "cannot be matched to it (append the issuer to the chain)");
		goto out;
	}
	if (X509_check_issued(issuer, leaf) != X509_V_OK) {
		v = OCSP_MISMATCH;
		snprintf(why, whylen, "the chain's second certificate did not issue the leaf, so the response cannot "
			 "be matched to it (put the issuer right after the leaf)");
		goto out;
	}
	OCSP_SINGLERESP *single = find_single(bs, leaf, issuer);
	if (!single) {
		char *serial = NULL;
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
		if (bn)
			serial = BN_bn2hex(bn);
		v = OCSP_MISMATCH;
		snprintf(why, whylen, "it is not about this certificate (no SingleResponse for serial %s from its "
			 "issuer)", serial ? serial : "?");
		OPENSSL_free(serial);
		BN_free(bn);
		goto out;
	}
	if (verify_signature(bs, issuer, chain, why, whylen) < 0)
		goto out;
	int reason = -1;
	ASN1_GENERALIZEDTIME *revtime = NULL, *thisupd = NULL, *nextupd = NULL;
	int cs = OCSP_single_get0_status(single, &reason, &revtime, &thisupd, &nextupd);
	*next_update = asn1_time(nextupd);
	if (cs == V_OCSP_CERTSTATUS_REVOKED) {
		v = OCSP_REVOKED;
		snprintf(why, whylen, "the certificate is REVOKED (since %s, reason: %s)",
			 revtime ? utc(asn1_time(revtime), t1, sizeof(t1)) : "?",
			 reason >= 0 ? OCSP_crl_reason_str(reason) : "unspecified");
		goto out;
	}
	if (cs != V_OCSP_CERTSTATUS_GOOD) {
		v = OCSP_MISMATCH;
		snprintf(why, whylen, "cert status %s: the responder does not know this certificate",
			 OCSP_cert_status_str(cs));
		goto out;
	}
	time_t this_t = asn1_time(thisupd);
	if (!thisupd || !this_t) {
		snprintf(why, whylen, "no usable thisUpdate");
		goto out;
	}
	if (this_t > now + OCSP_SKEW_SECONDS) {
		snprintf(why, whylen, "thisUpdate %s is in the future (clock skew?)", utc(this_t, t1, sizeof(t1)));
		goto out;
	}
	if (nextupd && *next_update <= now) {
		v = OCSP_STALE;
		snprintf(why, whylen, "nextUpdate %s has passed", utc(*next_update, t1, sizeof(t1)));
		goto out;
	}
	v = OCSP_GOOD;
	if (nextupd)
		snprintf(why, whylen, "good, thisUpdate %s, nextUpdate %s", utc(this_t, t1, sizeof(t1)),
			 utc(*next_update, t2, sizeof(t2)));
	else
		snprintf(why, whylen, "good, thisUpdate %s, no nextUpdate", utc(this_t, t1, sizeof(t1)));
out:
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return v;
}

/* ---- staples -------------------------------------------------------------------------------------- */

struct ocsp_staple {
	struct ocsp_staple *next;      /* the registry; registry_mu */
	unsigned refs;                 /* registry_mu */
	char *path;
	X509 *leaf;                    /* owned references */
	STACK_OF(X509) *chain;
	/* main thread only (registry_mu) */
	struct file_id seen, changed;
	bool have_changed;
	/* what handshakes read: mu */
	pthread_mutex_t mu;
	enum ocsp_verdict verdict;
	char why[256];
	time_t next_update;
	unsigned char *der;            /* the file's bytes as last read (stapled only when verdict is GOOD) */
	size_t len;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ocsp_staple *registry;
static uint64_t next_check_ms;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The whole file; NULL with err set. */
static unsigned char *read_file(const char *path, size_t *len, struct file_id *id, char *err, size_t errlen)
{
	struct stat st;
	memset(id, 0, sizeof(*id));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errf(err, errlen, "ocsp %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		errf(err, errlen, "ocsp %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, errlen, "ocsp %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	file_id_of(&st, id);
	if (st.st_size > OCSP_FILE_MAX) {
		errf(err, errlen, "ocsp %s: larger than %d bytes: not an OCSP response", path, OCSP_FILE_MAX);
		close(fd);
		return NULL;
	}
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	ssize_t r = 0;
	while (buf && n <= (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size + 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (!buf || r < 0) {
		errf(err, errlen, "ocsp %s: %s", path, buf ? strerror(errno) : "out of memory");
		free(buf);
		return NULL;
	}
	*len = n;   /* a file that grew while read is seen as garbage now and re-read at the next change */
	return buf;
}

/* Read and check the file; publish the result to the handshakes and log it when it differs from what was
 * there. registry_mu held (main thread). Returns -1 (err set) when the file cannot be read. */
static int staple_load(struct ocsp_staple *st, char *err, size_t errlen)
{
	char why[256], subject[256];
	size_t len = 0;
	time_t next_update = 0;
	enum ocsp_verdict v;
	unsigned char *der = read_file(st->path, &len, &st->seen, err, errlen);
	st->have_changed = false;
	if (der)
		v = ocsp_validate(der, len, st->leaf, st->chain, time(NULL), &next_update, why, sizeof(why));
	else {
		v = OCSP_UNREADABLE;
		snprintf(why, sizeof(why), "%s", err);
	}
	pthread_mutex_lock(&st->mu);
	bool same = st->verdict == v && ((!der && !st->der) ||
					 (der && st->der && st->len == len && !memcmp(st->der, der, len)));
	free(st->der);
	st->der = der;
	st->len = len;
	st->verdict = v;
	st->next_update = next_update;
	snprintf(st->why, sizeof(st->why), "%s", why);
	pthread_mutex_unlock(&st->mu);

	X509_NAME_oneline(X509_get_subject_name(st->leaf), subject, sizeof(subject));
	if (same)
		log_debug("ocsp %s re-read: unchanged (%s)", st->path, ocsp_verdict_name(v));
	else if (v == OCSP_GOOD)
		log_notice("ocsp %s: stapling for %s: %s", st->path, subject, why);
	else if (v == OCSP_REVOKED)
		log_err("ocsp %s: NOT stapled for %s: %s", st->path, subject, why);
	else if (v == OCSP_UNREADABLE)
		log_warn("%s: not stapling for %s", why, subject);
	else
		log_warn("ocsp %s: not stapled for %s (%s): %s", st->path, subject, ocsp_verdict_name(v), why);
	return der ? 0 : -1;
}

/* A good response whose nextUpdate has passed: stale from now on, said once. st->mu held. */
static void expire_locked(struct ocsp_staple *st, time_t now)
{
	char t[32];
	if (st->verdict != OCSP_GOOD || !st->next_update || now < st->next_update)
		return;
	st->verdict = OCSP_STALE;
	snprintf(st->why, sizeof(st->why), "nextUpdate %s has passed", utc(st->next_update, t, sizeof(t)));
	log_warn("ocsp %s: no longer stapled: %s (the file has not been renewed)", st->path, st->why);
}

static int status_cb(SSL *ssl, void *arg)
{
	struct ocsp_staple *st = arg;
	unsigned char *copy = NULL;
	size_t len = 0;
	if (!st)
		return SSL_TLSEXT_ERR_NOACK;
	pthread_mutex_lock(&st->mu);
	expire_locked(st, time(NULL));
	if (st->verdict == OCSP_GOOD && (copy = OPENSSL_memdup(st->der, st->len)))
		len = st->len;
	pthread_mutex_unlock(&st->mu);
	/* OpenSSL owns (and OPENSSL_free()s) the buffer once it is set: hence a copy per handshake. */
	if (!copy)
		return SSL_TLSEXT_ERR_NOACK;
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)len) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

static bool same_chain(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
	X509 *ia = a && sk_X509_num(a) ? sk_X509_value(a, 0) : NULL, *ib = b && sk_X509_num(b) ? sk_X509_value(b, 0) : NULL;
	return ia && ib ? X509_cmp(ia, ib) == 0 : ia == ib;
}

struct ocsp_staple *ocsp_staple_attach(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	STACK_OF(X509) *chain = NULL;
	if (!leaf) {
		errf(err, errlen, "ocsp %s: no certificate loaded", path);
		return NULL;
	}
	SSL_CTX_get0_chain_certs(ctx, &chain);
	pthread_mutex_lock(&registry_mu);
	struct ocsp_staple *st = registry;
	while (st && (strcmp(st->path, path) || X509_cmp(st->leaf, leaf) || !same_chain(st->chain, chain)))
		st = st->next;
	if (st) {                         /* watched already: a configuration change re-reads it */
		if (staple_load(st, err, errlen) < 0) {
			pthread_mutex_unlock(&registry_mu);
			return NULL;
		}
		st->refs++;
	} else {
		if (!(st = calloc(1, sizeof(*st))) || !(st->path = strdup(path)) ||
		    !(st->chain = chain ? X509_chain_up_ref(chain) : sk_X509_new_null())) {
			if (st)
				free(st->path);
			free(st);
			pthread_mutex_unlock(&registry_mu);
			errf(err, errlen, "out of memory");
			return NULL;
		}
		X509_up_ref(leaf);
		st->leaf = leaf;
		pthread_mutex_init(&st->mu, NULL);
		st->verdict = OCSP_UNREADABLE;
		if (staple_load(st, err, errlen) < 0) {
			pthread_mutex_unlock(&registry_mu);
			st->refs = 1;
			ocsp_staple_put(st);
			return NULL;
		}
		st->refs = 1;
		st->next = registry;
		registry = st;
	}
	pthread_mutex_unlock(&registry_mu);
	SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
	SSL_CTX_set_tlsext_status_arg(ctx, st);
	return st;
}

void ocsp_staple_put(struct ocsp_staple *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&registry_mu);
	if (--st->refs) {
		pthread_mutex_unlock(&registry_mu);
		return;
	}
	for (struct ocsp_staple **pp = &registry; *pp; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	pthread_mutex_unlock(&registry_mu);
	X509_free(st->leaf);
	sk_X509_pop_free(st->chain, X509_free);
	pthread_mutex_destroy(&st->mu);
	free(st->der);
	free(st->path);
	free(st);
}

void ocsp_tick(void)
{
	char err[512];
	pthread_mutex_lock(&registry_mu);
	uint64_t now = mono_ms();
	if (!registry || now < next_check_ms) {
		pthread_mutex_unlock(&registry_mu);
		return;
	}
	next_check_ms = now + OCSP_CHECK_MS;
	time_t wall = time(NULL);
	for (struct ocsp_staple *st = registry; st; st = st->next) {
		pthread_mutex_lock(&st->mu);
		expire_locked(st, wall);          /* said when it happens, not at the next handshake */
		pthread_mutex_unlock(&st->mu);
		struct file_id id;
		file_id_stat(st->path, &id);
		if (file_id_same(&id, &st->seen)) {
			st->have_changed = false;
		} else if (!st->have_changed || !file_id_same(&id, &st->changed)) {
			st->changed = id;         /* changed: read it once it has stayed so for one more check */
			st->have_changed = true;
		} else {
			staple_load(st, err, sizeof(err));
		}
	}
	pthread_mutex_unlock(&registry_mu);
}

void ocsp_staple_status(struct ocsp_staple *st, struct ocsp_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->mu);
	expire_locked(st, time(NULL));
	out->verdict = st->verdict;
	snprintf(out->why, sizeof(out->why), "%s", st->why);
	out->next_update = st->next_update;
	pthread_mutex_unlock(&st->mu);
}
