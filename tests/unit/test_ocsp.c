/* Unit tests for OCSP stapling (datapath/ocsp.c): ocsp_validate on real DER responses built here with the
 * OpenSSL OCSP API (tests/bin/ocsp_make.h) by a CA made here — good, revoked, another certificate's, stale,
 * thisUpdate in the future (and within the skew), unknown status, unsuccessful, signed by another key, no
 * issuer in the chain, garbage, truncated, trailing bytes — and the staple itself: a file attached to a real
 * SSL_CTX is sent to a TLS 1.2 / 1.3 client that asks (in-process handshake over a BIO pair), not to one that
 * does not, and no longer once the file is replaced by a revoked response (ocsp_tick). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsoff/log.h"
#include "tlsoff/ocsp.h"
#include "run_suite.h"
#include "../bin/ocsp_make.h"

static EVP_PKEY *ca_key, *rogue_key, *leaf_key, *other_key;
static X509 *ca, *rogue, *leaf, *other;
static STACK_OF(X509) *chain;      /* what follows the leaf in its chain file: the CA */
static char why[256];

static X509 *make_x509(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool is_ca)
{
	X509 *x = X509_new();
	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
	ck_assert_ptr_nonnull(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (is_ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	} else {
		char san[300];
		snprintf(san, sizeof(san), "DNS:%s", cn);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, issuer ? ikey : key, EVP_sha256()), 0);
	return x;
}

static void setup(void)
{
	log_init("test_ocsp", LOG_CRIT, false);   /* the revoked response is logged as an error */
	if (ca)
		return;
	ca_key = EVP_EC_gen("P-256");
	rogue_key = EVP_EC_gen("P-256");
	leaf_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	ca = make_x509("tlsoff unit CA", 1, ca_key, NULL, NULL, true);
	rogue = make_x509("tlsoff unit CA", 1, rogue_key, NULL, NULL, true);   /* the same name, another key */
	leaf = make_x509("localhost", 0x1001, leaf_key, ca, ca_key, false);
	other = make_x509("other.test", 0x1002, other_key, ca, ca_key, false);
	chain = sk_X509_new_null();
	sk_X509_push(chain, ca);
}

/* ---- ocsp_validate -------------------------------------------------------------------------------- */

static enum ocsp_verdict check(const unsigned char *der, size_t len, STACK_OF(X509) *ch, time_t now, time_t *nu)
{
	time_t dummy;
	return ocsp_validate(der, len, leaf, ch, now, nu ? nu : &dummy, why, sizeof(why));
}

START_TEST(good)
{
	size_t len;
	time_t nu, now = time(NULL);
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, &len);
	ck_assert_ptr_nonnull(der);
	ck_assert_int_eq(check(der, len, chain, now, &nu), OCSP_GOOD);
	ck_assert_msg(nu >= now + 3590 && nu <= now + 3610, "nextUpdate %lld, now %lld", (long long)nu, (long long)now);
	ck_assert_ptr_nonnull(strstr(why, "good"));
	/* no nextUpdate: good, nothing to expire */
	OPENSSL_free(der);
	der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, -60, 0, false, &len);
	ck_assert_int_eq(check(der, len, chain, now, &nu), OCSP_GOOD);
	ck_assert_int_eq(nu, 0);
	OPENSSL_free(der);
	/* thisUpdate a little in the future: within the allowed skew */
	der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, 60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, chain, now, NULL), OCSP_GOOD);
	OPENSSL_free(der);
}
END_TEST

START_TEST(revoked)
{
	size_t len;
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_REVOKED, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, chain, time(NULL), NULL), OCSP_REVOKED);
	ck_assert_msg(strstr(why, "REVOKED") && strstr(why, "keyCompromise"), "why: %s", why);
	OPENSSL_free(der);
}
END_TEST

START_TEST(wrong_cert)
{
	size_t len;
	unsigned char *der = ocsp_make(ca, ca, ca_key, other, V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, chain, time(NULL), NULL), OCSP_MISMATCH);
	ck_assert_msg(strstr(why, "not about this certificate") && strstr(why, "1001"), "why: %s", why);
	OPENSSL_free(der);
	/* status unknown: the responder does not know it */
	der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_UNKNOWN, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, chain, time(NULL), NULL), OCSP_MISMATCH);
	OPENSSL_free(der);
}
END_TEST

START_TEST(no_issuer_in_chain)
{
	size_t len;
	STACK_OF(X509) *empty = sk_X509_new_null();
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, NULL, time(NULL), NULL), OCSP_MISMATCH);
	ck_assert_msg(strstr(why, "no issuer certificate"), "why: %s", why);
	ck_assert_int_eq(check(der, len, empty, time(NULL), NULL), OCSP_MISMATCH);
	/* the second certificate is not the leaf's issuer */
	STACK_OF(X509) *wrong = sk_X509_new_null();
	sk_X509_push(wrong, other);
	ck_assert_int_eq(check(der, len, wrong, time(NULL), NULL), OCSP_MISMATCH);
	ck_assert_msg(strstr(why, "did not issue"), "why: %s", why);
	sk_X509_free(wrong);
	sk_X509_free(empty);
	OPENSSL_free(der);
}
END_TEST

START_TEST(stale)
{
	size_t len;
	time_t nu, now = time(NULL);
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, -7200, -60, true, &len);
	ck_assert_int_eq(check(der, len, chain, now, &nu), OCSP_STALE);
	ck_assert_msg(strstr(why, "nextUpdate") && strstr(why, "has passed"), "why: %s", why);
	ck_assert_msg(nu <= now - 50 && nu >= now - 70, "nextUpdate %lld", (long long)nu);
	/* the same bytes two minutes earlier were good: the verdict is about `now` */
	ck_assert_int_eq(check(der, len, chain, now - 120, NULL), OCSP_GOOD);
	/* exactly at nextUpdate: stale */
	ck_assert_int_eq(check(der, len, chain, nu, NULL), OCSP_STALE);
	OPENSSL_free(der);
}
END_TEST

START_TEST(future_this_update)
{
	size_t len;
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, 3600, 7200, true, &len);
	ck_assert_int_eq(check(der, len, chain, time(NULL), NULL), OCSP_INVALID);
	ck_assert_msg(strstr(why, "in the future"), "why: %s", why);
	OPENSSL_free(der);
}
END_TEST

START_TEST(bad_signature)
{
	size_t len;
	/* CertID right (the CA's name and key hash), signed by another key under the same name */
	unsigned char *der = ocsp_make(ca, rogue, rogue_key, leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len, chain, time(NULL), NULL), OCSP_INVALID);
	ck_assert_msg(strstr(why, "signature"), "why: %s", why);
	OPENSSL_free(der);
}
END_TEST

START_TEST(garbage)
{
	unsigned char junk[700];
	size_t len;
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	ck_assert_int_eq(check(junk, sizeof(junk), chain, time(NULL), NULL), OCSP_INVALID);
	ck_assert_msg(strstr(why, "not a DER OCSP response"), "why: %s", why);
	ck_assert_int_eq(check(junk, 0, chain, time(NULL), NULL), OCSP_INVALID);
	/* a good response cut short, or followed by bytes */
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, &len);
	ck_assert_int_eq(check(der, len - 10, chain, time(NULL), NULL), OCSP_INVALID);
	unsigned char *longer = malloc(len + 4);
	memcpy(longer, der, len);
	memcpy(longer + len, "\0\0\0\0", 4);
	ck_assert_int_eq(check(longer, len + 4, chain, time(NULL), NULL), OCSP_INVALID);
	ck_assert_msg(strstr(why, "bytes after its end"), "why: %s", why);
	free(longer);
	OPENSSL_free(der);
	/* a real response saying "try later" */
	OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
	unsigned char *p = NULL;
	int n = i2d_OCSP_RESPONSE(r, &p);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(check(p, (size_t)n, chain, time(NULL), NULL), OCSP_INVALID);
	ck_assert_msg(strstr(why, "trylater"), "why: %s", why);
	OPENSSL_free(p);
	OCSP_RESPONSE_free(r);
}
END_TEST

/* ---- the staple on a real handshake ---------------------------------------------------------------- */

static char dir[64];

static void write_file(const char *path, const unsigned char *data, size_t len)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	ck_assert_int_eq(rename(tmp, path), 0);
}

static void write_response(const char *path, int status)
{
	size_t len;
	unsigned char *der = ocsp_make(ca, ca, ca_key, leaf, status, -60, 3600, true, &len);
	ck_assert_ptr_nonnull(der);
	write_file(path, der, len);
	OPENSSL_free(der);
}

static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, leaf), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, leaf_key), 1);
	X509_up_ref(ca);
	ck_assert_int_eq(SSL_CTX_add0_chain_cert(ctx, ca), 1);
	return ctx;
}

/* A handshake at version v; returns the length of the OCSP response the client got (0: none). */
static long handshake(SSL_CTX *sctx, int v, bool ask)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(cctx, v);
	SSL_CTX_set_max_proto_version(cctx, v);
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *bc, *bs;
	ck_assert_int_eq(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (ask)
		SSL_set_tlsext_status_type(c, TLSEXT_STATUSTYPE_ocsp);
	int rc = 0, rs = 0;
	for (int i = 0; i < 50 && (rc != 1 || rs != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(c);
		if (rs != 1)
			rs = SSL_do_handshake(s);
	}
	ck_assert_msg(rc == 1 && rs == 1, "handshake failed: %s", ERR_error_string(ERR_get_error(), NULL));
	const unsigned char *resp = NULL;
	long len = SSL_get_tlsext_status_ocsp_resp(c, &resp);
	if (len > 0) {   /* what was stapled is the good response for this leaf */
		time_t nu;
		ck_assert_int_eq(ocsp_validate(resp, (size_t)len, leaf, chain, time(NULL), &nu, why, sizeof(why)), OCSP_GOOD);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	return len > 0 ? len : 0;
}

START_TEST(staple_handshake)
{
	char path[128], err[512];
	struct ocsp_status st;
	snprintf(dir, sizeof(dir), "/tmp/test_ocsp.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/resp.der", dir);

	SSL_CTX *ctx = server_ctx();
	ck_assert_ptr_null(ocsp_staple_attach(ctx, path, err, sizeof(err)));   /* missing: refused */
	ck_assert_msg(strstr(err, "No such file"), "err: %s", err);

	write_response(path, V_OCSP_CERTSTATUS_GOOD);
	struct ocsp_staple *os = ocsp_staple_attach(ctx, path, err, sizeof(err));
	ck_assert_msg(os != NULL, "attach: %s", err);
	ocsp_staple_status(os, &st);
	ck_assert_int_eq(st.verdict, OCSP_GOOD);
	ck_assert_int_gt(handshake(ctx, TLS1_2_VERSION, true), 0);
	ck_assert_int_gt(handshake(ctx, TLS1_3_VERSION, true), 0);
	ck_assert_int_eq(handshake(ctx, TLS1_3_VERSION, false), 0);   /* did not ask */

	/* a second SSL_CTX for the same certificate and file shares the staple */
	SSL_CTX *ctx2 = server_ctx();
	struct ocsp_staple *os2 = ocsp_staple_attach(ctx2, path, err, sizeof(err));
	ck_assert_ptr_eq(os2, os);

	/* replaced by a revoked response: picked up by the tick once the change held for one more check */
	write_response(path, V_OCSP_CERTSTATUS_REVOKED);
	for (int i = 0; i < 40; i++) {
		ocsp_tick();
		ocsp_staple_status(os, &st);
		if (st.verdict != OCSP_GOOD)
			break;
		usleep(50 * 1000);
	}
	ck_assert_int_eq(st.verdict, OCSP_REVOKED);
	ck_assert_int_eq(handshake(ctx, TLS1_2_VERSION, true), 0);
	ck_assert_int_eq(handshake(ctx2, TLS1_3_VERSION, true), 0);

	ocsp_staple_put(os2);
	SSL_CTX_free(ctx2);
	SSL_CTX_free(ctx);
	ocsp_staple_put(os);
	unlink(path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ocsp");
	TCase *tc = tcase_create("ocsp");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, good);
	tcase_add_test(tc, revoked);
	tcase_add_test(tc, wrong_cert);
	tcase_add_test(tc, no_issuer_in_chain);
	tcase_add_test(tc, stale);
	tcase_add_test(tc, future_this_update);
	tcase_add_test(tc, bad_signature);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, staple_handshake);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
