/* tls_ctx.c — server-side TLS for a frontend: certificates chosen by SNI, ALPN, safe defaults. */
#include "tlsoff/tls_ctx.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tlsoff/ktls.h"
#include "tlsoff/ocsp.h"
#include "tlsoff/log.h"
#include "tlsoff/nic_pref.h"
#include "tlsoff/nic_route.h"
#include "tlsoff/tickets.h"

/* Only AEAD suites the kernel can take, ECDHE only, strongest first (server preference). */

struct cert_entry {
	SSL_CTX *ctx;
	char **names;          /* DNS SANs (or the CN when there are none), lower case */
	unsigned nnames;
	struct ocsp_staple *ocsp;   /* NULL: no `ocsp FILE` */
};

struct tls_frontend {
	struct cert_entry *certs;
	unsigned ncerts;
	uint8_t alpn[TLSOFF_ALPN_MAX];
	unsigned alpn_len;
	int nic_offload, tls_min;          /* nic-offload prefer: the ClientHello callback's inputs */
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

/* Optional client certificates: a failed verification is recorded (SSL_get_verify_result) and reported,
 * not fatal. */
static int verify_optional(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

/* A session resumes only where its client certificate would be checked the same way: the session id
 * context is a digest of the CA file's contents and the verify mode, so a ticket from an `optional` or
 * another CA's frontend does not skip this one's verification (and a fleet sharing ticket keys and the CA
 * file resumes across nodes). OpenSSL also refuses to resume at all under SSL_VERIFY_PEER without one. */
static int client_ca_sid(const struct frontend_conf *fc, unsigned char sid[32], char *err, size_t errlen)
{
	FILE *f = fopen(fc->client_ca, "r");
	if (!f) {
		snprintf(err, errlen, "client-ca %s: %s", fc->client_ca, strerror(errno));
		return -1;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[4096];
	unsigned len = 0;
	size_t n;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(md, "tlsoff client-ca", 16) == 1 &&
		 EVP_DigestUpdate(md, &fc->client_verify, sizeof(fc->client_verify)) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(md, buf, n) == 1;
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, sid, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	fclose(f);
	if (!ok)
		snprintf(err, errlen, "client-ca %s: cannot read it", fc->client_ca);
	return ok ? 0 : -1;
}

static int client_ca_setup(SSL_CTX *ctx, const struct frontend_conf *fc, const unsigned char sid[32], char *err,
			   size_t errlen)
{
	char ebuf[256];
	if (SSL_CTX_load_verify_locations(ctx, fc->client_ca, NULL) != 1) {
		snprintf(err, errlen, "client-ca %s: %s", fc->client_ca, tls_error_string(ebuf, sizeof(ebuf)));
		return -1;
	}
	/* The CA names go into the CertificateRequest, so a client with several certificates picks ours. */
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(fc->client_ca);
	if (!names) {
		snprintf(err, errlen, "client-ca %s: no CA certificate in it", fc->client_ca);
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (fc->client_verify == CLIENT_VERIFY_REQUIRED ?
						   SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   fc->client_verify == CLIENT_VERIFY_OPTIONAL ? verify_optional : NULL);
	if (SSL_CTX_set_session_id_context(ctx, sid, 32) != 1) {
		snprintf(err, errlen, "client-ca %s: %s", fc->client_ca, tls_error_string(ebuf, sizeof(ebuf)));
		return -1;
	}
	return 0;
}

/* ---- nic-offload prefer ----------------------------------------------------------------------------- */

static pthread_once_t nic_once = PTHREAD_ONCE_INIT;
static int nic_index = -1;

static void nic_index_init(void)
{
	nic_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void tls_ssl_nic_choice(SSL *ssl, struct nic_choice *nc)
{
	pthread_once(&nic_once, nic_index_init);
	if (nic_index >= 0)
		SSL_set_ex_data(ssl, nic_index, nc);
}

/* The versions a ClientHello offers: its supported_versions list (every TLS 1.3 client sends one, and a
 * version missing from it is refused by the client), else the legacy version field. */
static void hello_versions(SSL *ssl, bool *v12, bool *v13)
{
	const unsigned char *p;
	size_t len;
	*v12 = *v13 = false;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) == 1) {
		if (len < 1 || (size_t)p[0] + 1 > len)
			return;   /* malformed: OpenSSL refuses it right after this callback */
		for (size_t i = 1; i + 1 <= p[0]; i += 2) {
			unsigned v = (unsigned)p[i] << 8 | p[i + 1];
			*v12 |= v == TLS1_2_VERSION;
			*v13 |= v == TLS1_3_VERSION;
		}
		return;
	}
	*v12 = SSL_client_hello_get0_legacy_version(ssl) >= TLS1_2_VERSION;
}

/* The host name of the server_name extension, "" without one (or a malformed one). */
static void hello_sni(SSL *ssl, char *out, size_t outlen)
{
	const unsigned char *p;
	size_t len;
	out[0] = '\0';
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5)
		return;
	size_t list = (size_t)p[0] << 8 | p[1], n = (size_t)p[3] << 8 | p[4];
	if (list + 2 > len || p[2] != TLSEXT_NAMETYPE_host_name || n + 3 > list || n >= outlen || memchr(p + 5, 0, n))
		return;
	memcpy(out, p + 5, n);
	out[n] = '\0';
}

/* Does the client offer one of our TLS 1.2 AES-GCM suites that the certificate's key can sign for (ECDHE-RSA
 * for an RSA key; ECDHE-ECDSA for EC and EdDSA keys)? */
static bool hello_gcm12(SSL *ssl, const SSL_CTX *ctx)
{
	EVP_PKEY *key = SSL_CTX_get0_privatekey(ctx);
	int type = key ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
	bool rsa = type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS;
	const unsigned char *p;
	size_t len = SSL_client_hello_get0_ciphers(ssl, &p);
	for (size_t i = 0; i + 1 < len; i += 2) {
		unsigned id = (unsigned)p[i] << 8 | p[i + 1];
		if (rsa ? id == 0xC02F || id == 0xC030 : id == 0xC02B || id == 0xC02C)
			return true;
	}
	return false;
}

/* Runs before OpenSSL picks the version, so capping the maximum here decides it. The cipher order needs no
 * change: TLS12_CIPHERS already lists the AES-GCM suites first with server preference, so a client that
 * offers one gets it, and ChaCha20 stays as the fallback that keeps every other handshake working. With
 * the maximum at 1.2, OpenSSL writes no TLS 1.3 downgrade sentinel into the ServerHello random (it only
 * does when 1.3 is enabled), so TLS 1.3 clients accept the TLS 1.2 answer. */
static int hello_cb(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	struct tls_frontend *tf = arg;
	struct nic_choice *nc = nic_index >= 0 ? SSL_get_ex_data(ssl, nic_index) : NULL;
	if (!nc || nc->verdict != NIC_PREF_NONE)   /* decided at the first ClientHello (a second follows an HRR) */
		return SSL_CLIENT_HELLO_SUCCESS;
	struct nic_pref_in in = { .mode = tf->nic_offload, .tls_min = tf->tls_min, .ktls = nc->ktls };
	char sni[256], err[200];
	hello_versions(ssl, &in.client_tls12, &in.client_tls13);
	hello_sni(ssl, sni, sizeof(sni));
	in.client_gcm12 = hello_gcm12(ssl, tf->certs[tls_frontend_pick(tf, sni)].ctx);
	unsigned ifindex;
	if (in.ktls && nic_route_egress(SSL_get_fd(ssl), &ifindex, in.dev, err, sizeof(err)) == 0) {
		struct netdev_info d;
		in.route_ok = true;
		if (nic_device_lookup(ifindex, &d) == 0) {
			in.dev_known = true;
			in.dev_up = d.up;
			in.tx = d.tls[0];          /* tls-hw-tx-offload */
		}
	} else if (in.ktls) {
		log_debug("nic-offload: %s", err);
	}
	struct nic_pref_out o = nic_pref_decide(&in);
	if (o.verdict == NIC_PREF_APPLIED && SSL_set_max_proto_version(ssl, TLS1_2_VERSION) != 1)
		o = (struct nic_pref_out){ NIC_PREF_NOT_APPLICABLE, NIC_WHY_NONE };   /* cannot happen; then leave it */
	nc->verdict = (uint8_t)o.verdict;
	nc->reason = (uint8_t)o.reason;
	snprintf(nc->dev, sizeof(nc->dev), "%s", in.dev);
	return SSL_CLIENT_HELLO_SUCCESS;
}

static SSL_CTX *new_ctx(const struct frontend_conf *fc, bool capture_keys, struct tls_frontend *tf)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, fc->tls_min);
	/* No compression, no renegotiation, our cipher order; kTLS cannot take compressed records. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* RELEASE_BUFFERS: handshake buffers go back to the allocator once idle (the userspace cost of an
	 * offloaded connection). NO_AUTO_CHAIN: send exactly the chain in the cert file. Without it, a file with
	 * no intermediates makes OpenSSL build a chain from the context's store at every handshake (an
	 * X509_STORE_CTX and a verification per connection), and that store is the client-CA store of an mTLS
	 * frontend: certificates the operator never asked to send. nginx and FreeRADIUS set it too. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, GROUPS) != 1 || (capture_keys && ktls_ctx_setup(ctx) != 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);   /* stateless tickets only */
	/* One TLS 1.3 ticket per handshake, not OpenSSL's 2 (Go's crypto/tls sends one too): clients use a
	 * ticket once and every resumption brings a fresh one, so the second is a session encoding, a ticket
	 * encryption, a record and a write() per full handshake that one-shot clients throw away. */
	SSL_CTX_set_num_tickets(ctx, 1);
	/* Test hook: read-ahead makes OpenSSL hold application data at the handoff, which the kTLS path
	 * must forward (tests/lab/tlsoffd_buffered.sh). Off in production: it only adds copies. */
	if (getenv("TLSOFF_TEST_READ_AHEAD"))
		SSL_CTX_set_read_ahead(ctx, 1);
	tickets_attach(ctx);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, tf);
	if (fc->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, tf);
	if (fc->nic_offload == NIC_OFFLOAD_PREFER)   /* frontends without the option pay nothing */
		SSL_CTX_set_client_hello_cb(ctx, hello_cb, tf);
	return ctx;
}

struct tls_frontend *tls_frontend_new(const struct frontend_conf *fc, bool capture_keys, char *err, size_t errlen)
{
	char ebuf[256];
	unsigned char sid[32];
	if (fc->client_ca[0] && client_ca_sid(fc, sid, err, errlen))
		return NULL;
	struct tls_frontend *tf = calloc(1, sizeof(*tf));
	if (!tf || !(tf->certs = calloc(fc->ncerts, sizeof(*tf->certs)))) {
		free(tf);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(tf->alpn, fc->alpn, fc->alpn_len);
	tf->alpn_len = fc->alpn_len;
	tf->nic_offload = fc->nic_offload;
	tf->tls_min = fc->tls_min;
	for (unsigned i = 0; i < fc->ncerts; i++) {
		struct cert_entry *ce = &tf->certs[tf->ncerts];
		const struct cert_conf *cc = &fc->certs[i];
		if (!(ce->ctx = new_ctx(fc, capture_keys, tf))) {
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
		if (cc->ocsp[0] && !(ce->ocsp = ocsp_staple_attach(ce->ctx, cc->ocsp, err, errlen)))
			goto fail;
		if (fc->client_ca[0] && client_ca_setup(ce->ctx, fc, sid, err, errlen))
			goto fail;
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
		ocsp_staple_put(tf->certs[i].ocsp);   /* after the SSL_CTX: no handshake can reach it any more */
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

struct ocsp_staple *tls_frontend_ocsp(const struct tls_frontend *tf, unsigned i)
{
	return tf->certs[i].ocsp;
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

void tls_client_cert_get(SSL *ssl, struct tls_client_cert *out)
{
	memset(out, 0, sizeof(*out));
	X509 *x = SSL_get0_peer_certificate(ssl);
	out->verify = SSL_get_verify_result(ssl);
	if (!x)
		return;
	out->sess = true;
	out->conn = !SSL_session_reused(ssl);
	const X509_NAME *subject = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int len = i < 0 ? -1 : ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
	if (len > 0 && (size_t)len < sizeof(out->cn) && !memchr(utf8, 0, (size_t)len))
		memcpy(out->cn, utf8, (size_t)len);
	else if (i >= 0)
		out->cn_bad = true;
	OPENSSL_free(utf8);
}

const char *tls_client_cert_refusal(SSL *ssl, unsigned long err, char *buf, size_t len)
{
	if (ERR_GET_LIB(err) != ERR_LIB_SSL)
		return NULL;
	if (ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(buf, len, "no client certificate");
		return buf;
	}
	long v = SSL_get_verify_result(ssl);
	if (ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK) {
		snprintf(buf, len, "client certificate: %s", X509_verify_cert_error_string(v));
		return buf;
	}
	return NULL;
}
