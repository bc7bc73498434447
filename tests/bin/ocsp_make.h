/* ocsp_make.h — build a DER OCSP response with the OpenSSL OCSP API, with any status and any thisUpdate /
 * nextUpdate: what `openssl ocsp` cannot make (it has no backdating and no nextUpdate under a minute).
 * Shared by tests/bin/ocsp_resp.c (host tests) and tests/unit/test_ocsp.c. */
#ifndef TLSOFF_TEST_OCSP_MAKE_H
#define TLSOFF_TEST_OCSP_MAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

/* A response about leaf (CertID by issuer, SHA-1 as responders use), signed by signer/skey (the issuer, or
 * whatever a test wants), with cert status `status` (V_OCSP_CERTSTATUS_*), thisUpdate = now + this_off s,
 * nextUpdate = now + next_off s (none when !has_next). Returns an OPENSSL_malloc'd buffer, NULL on error. */
static inline unsigned char *ocsp_make(X509 *issuer, X509 *signer, EVP_PKEY *skey, X509 *leaf, int status,
				       long this_off, long next_off, bool has_next, size_t *len)
{
	unsigned char *der = NULL;
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
	ASN1_TIME *thisupd = X509_gmtime_adj(NULL, this_off);
	ASN1_TIME *nextupd = has_next ? X509_gmtime_adj(NULL, next_off) : NULL;
	ASN1_TIME *revtime = status == V_OCSP_CERTSTATUS_REVOKED ? X509_gmtime_adj(NULL, -3600) : NULL;
	OCSP_RESPONSE *resp = NULL;
	if (bs && id && thisupd && (nextupd || !has_next) &&
	    OCSP_basic_add1_status(bs, id, status, revtime ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1, revtime,
				   thisupd, nextupd) &&
	    OCSP_basic_sign(bs, signer, skey, EVP_sha256(), NULL, 0) == 1 &&
	    (resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs))) {
		int n = i2d_OCSP_RESPONSE(resp, &der);
		if (n > 0)
			*len = (size_t)n;
		else
			der = NULL;
	}
	OCSP_RESPONSE_free(resp);
	ASN1_TIME_free(revtime);
	ASN1_TIME_free(nextupd);
	ASN1_TIME_free(thisupd);
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	return der;
}

#endif
