/* tls_ctx.c — server-side TLS for a frontend: certificates chosen by SNI, ALPN, safe defaults. */
#include "tlsoff/tls_ctx.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tlsoff/ktls.h"
#include "tlsoff/tickets.h"

/* Only AEAD suites the kernel can take, ECDHE only, strongest first (server preference). */

struct cert_entry {
	SSL_CTX *ctx;
	char **names;          /* DNS SANs (or the CN when there are none), lower case */
	unsigned nnames;
};

struct tls_frontend {
	struct cert_entry *certs;
	unsigned ncerts;
	uint8_t alpn[TLSOFF_ALPN_MAX];
	unsigned alpn_len;
};

const char *tls_error_string(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (!e)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

int tls_name_matches(const char *pattern, const char *host)
{
	if (!strcasecmp(pattern, host))
		return 1;
	if (pattern[0] != '*' || pattern[1] != '.')
		return 0;
	/* "*.example.com" covers exactly one more label: "a.example.com", not "example.com" or "a.b.example.com" */
	const char *dot = strchr(host, '.');
	return dot && dot != host && !strcasecmp(pattern + 1, dot);
}

unsigned tls_frontend_pick(const struct tls_frontend *tf, const char *sni)
{
	if (!sni || !*sni)
		return 0;
	for (unsigned i = 0; i < tf->ncerts; i++)        /* exact names win over wildcards */
		for (unsigned n = 0; n < tf->certs[i].nnames; n++)
			if (tf->certs[i].names[n][0] != '*' && !strcasecmp(tf->certs[i].names[n], sni))
				return i;
	for (unsigned i = 0; i < tf->ncerts; i++)
		for (unsigned n = 0; n < tf->certs[i].nnames; n++)
			if (tf->certs[i].names[n][0] == '*' && tls_name_matches(tf->certs[i].names[n], sni))
				return i;
	return 0;
}

static int add_name(struct cert_entry *ce, const char *name, size_t len)
{
	char **n = realloc(ce->names, (ce->nnames + 1) * sizeof(*n));
	if (!n)
		return -1;
	ce->names = n;
	if (!(n[ce->nnames] = strndup(name, len)))
		return -1;
	for (char *p = n[ce->nnames]; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	ce->nnames++;
	return 0;
}

static int collect_names(struct cert_entry *ce, X509 *x)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type == GEN_DNS &&
		    add_name(ce, (const char *)ASN1_STRING_get0_data(g->d.dNSName), (size_t)ASN1_STRING_length(g->d.dNSName))) {
			GENERAL_NAMES_free(sans);
			return -1;
		}
	}
	GENERAL_NAMES_free(sans);
	if (ce->nnames == 0) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
		if (n > 0 && add_name(ce, cn, (size_t)n))
			return -1;
	}
	return 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	struct tls_frontend *tf = arg;
	unsigned i = tls_frontend_pick(tf, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	if (i != 0)
		SSL_set_SSL_CTX(ssl, tf->certs[i].ctx);
	return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		   unsigned int inlen, void *arg)
{
	(void)ssl;
	struct tls_frontend *tf = arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, tf->alpn, tf->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;   /* no common protocol: carry on without ALPN, like nginx */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_ctx(const struct frontend_conf *fc, struct tls_frontend *tf)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, fc->tls_min);
	/* No compression, no renegotiation, our cipher order; kTLS cannot take compressed records. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Handshake buffers go back to the allocator once idle: the userspace cost of an offloaded connection. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, GROUPS) != 1 || ktls_ctx_setup(ctx) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);   /* stateless tickets only */
	/* Test hook: read-ahead makes OpenSSL hold application data at the handoff, which the kTLS path
	 * must forward (tests/lab/tlsoffd_buffered.sh). Off in production: it only adds copies. */
	if (getenv("TLSOFF_TEST_READ_AHEAD"))
		SSL_CTX_set_read_ahead(ctx, 1);
	tickets_attach(ctx);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, tf);
	if (fc->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, tf);
	return ctx;
}

struct tls_frontend *tls_frontend_new(const struct frontend_conf *fc, char *err, size_t errlen)
{
	char ebuf[256];
	struct tls_frontend *tf = calloc(1, sizeof(*tf));
	if (!tf || !(tf->certs = calloc(fc->ncerts, sizeof(*tf->certs)))) {
		free(tf);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(tf->alpn, fc->alpn, fc->alpn_len);
	tf->alpn_len = fc->alpn_len;
	for (unsigned i = 0; i < fc->ncerts; i++) {
		struct cert_entry *ce = &tf->certs[tf->ncerts];
		const struct cert_conf *cc = &fc->certs[i];
		if (!(ce->ctx = new_ctx(fc, tf))) {
			snprintf(err, errlen, "TLS setup: %s", tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
		tf->ncerts++;
		if (SSL_CTX_use_certificate_chain_file(ce->ctx, cc->chain) != 1) {
			snprintf(err, errlen, "cert %s: %s", cc->chain, tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ce->ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
			snprintf(err, errlen, "key %s: %s", cc->key, tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
		if (SSL_CTX_check_private_key(ce->ctx) != 1) {
			snprintf(err, errlen, "key %s does not match cert %s", cc->key, cc->chain);
			ERR_clear_error();
			goto fail;
		}
		if (collect_names(ce, SSL_CTX_get0_certificate(ce->ctx))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return tf;
fail:
	tls_frontend_free(tf);
	return NULL;
}

void tls_frontend_free(struct tls_frontend *tf)
{
	if (!tf)
		return;
	for (unsigned i = 0; i < tf->ncerts; i++) {
		SSL_CTX_free(tf->certs[i].ctx);
		for (unsigned n = 0; n < tf->certs[i].nnames; n++)
			free(tf->certs[i].names[n]);
		free(tf->certs[i].names);
	}
	free(tf->certs);
	free(tf);
}

SSL *tls_frontend_ssl(struct tls_frontend *tf, int fd)
{
	SSL *ssl = SSL_new(tf->certs[0].ctx);
	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

unsigned tls_frontend_ncerts(const struct tls_frontend *tf)
{
	return tf->ncerts;
}

X509 *tls_frontend_cert(const struct tls_frontend *tf, unsigned i, char *const **names, unsigned *nnames)
{
	*names = tf->certs[i].names;
	*nnames = tf->certs[i].nnames;
	return SSL_CTX_get0_certificate(tf->certs[i].ctx);
}

int tls_cert_file_name(const char *path, char *name, size_t len, char *err, size_t errlen)
{
	char ebuf[256];
	struct cert_entry ce = { 0 };
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cert %s: %s", path, strerror(errno));
		return -1;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		snprintf(err, errlen, "cert %s: %s", path, tls_error_string(ebuf, sizeof(ebuf)));
		return -1;
	}
	int rc = collect_names(&ce, x) || !ce.nnames ? -1 : 0;
	if (rc)
		snprintf(err, errlen, "cert %s: no DNS name or CN to match", path);
	else
		snprintf(name, len, "%s", ce.names[0]);
	for (unsigned n = 0; n < ce.nnames; n++)
		free(ce.names[n]);
	free(ce.names);
	X509_free(x);
	return rc;
}
