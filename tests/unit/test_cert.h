/* test_cert.h — one self-signed P-256 certificate for "localhost", made in memory once per runner, for the
 * unit tests that run real OpenSSL handshakes (test_ktls.c, test_tickets.c). */
#ifndef TLSOFF_TEST_CERT_H
#define TLSOFF_TEST_CERT_H

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

static EVP_PKEY *test_key;
static X509 *test_cert;

static void make_cert(void)
{
	if (test_cert)
		return;
	test_key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(test_key);
	test_cert = X509_new();
	X509_set_version(test_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(test_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(test_cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(test_cert), 3600);
	X509_set_pubkey(test_cert, test_key);
	X509_NAME *n = X509_get_subject_name(test_cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(test_cert, n);
	ck_assert_int_gt(X509_sign(test_cert, test_key, EVP_sha256()), 0);
}

#endif
