/* ocsp_resp — write a DER OCSP response to stdout, with times `openssl ocsp` cannot set (tests/host/ocsp.sh):
 *   ocsp_resp ISSUER.crt ISSUER.key LEAF.crt good|revoked|unknown THIS_OFFSET_S NEXT_OFFSET_S|none
 * Offsets are seconds from now (negative: in the past). Signed by the issuer itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/pem.h>

#include "ocsp_make.h"

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!x)
		fprintf(stderr, "ocsp_resp: cannot read a PEM certificate from %s\n", path);
	return x;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: ocsp_resp ISSUER.crt ISSUER.key LEAF.crt good|revoked|unknown THIS_OFFSET_S "
				"NEXT_OFFSET_S|none\n");
		return 2;
	}
	X509 *issuer = read_cert(argv[1]), *leaf = read_cert(argv[3]);
	FILE *f = fopen(argv[2], "r");
	EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	int status = !strcmp(argv[4], "good") ? V_OCSP_CERTSTATUS_GOOD :
		     !strcmp(argv[4], "revoked") ? V_OCSP_CERTSTATUS_REVOKED :
		     !strcmp(argv[4], "unknown") ? V_OCSP_CERTSTATUS_UNKNOWN : -1;
	if (!issuer || !leaf || !key || status < 0) {
		fprintf(stderr, "ocsp_resp: bad arguments (key %s, status %s)\n", argv[2], argv[4]);
		return 2;
	}
	bool has_next = strcmp(argv[6], "none") != 0;
	size_t len = 0;
	unsigned char *der = ocsp_make(issuer, issuer, key, leaf, status, atol(argv[5]), has_next ? atol(argv[6]) : 0,
				       has_next, &len);
	if (!der || fwrite(der, 1, len, stdout) != len || fflush(stdout)) {
		fprintf(stderr, "ocsp_resp: cannot make the response\n");
		return 1;
	}
	OPENSSL_free(der);
	X509_free(issuer);
	X509_free(leaf);
	EVP_PKEY_free(key);
	return 0;
}
