/* backend_tls.c — re-encryption: tlsoffd as a TLS client to a backend's servers (`backend add … tls`).
 *
 * One SSL_CTX per backend and configuration generation, built with the generation so a bad `ca` or client
 * certificate fails the reload, not a connection. Safe by default: TLS >= 1.2, no compression or
 * renegotiation, the server's chain verified (against `ca`, else the system's default store) and its name
 * checked (against `sni`, else the host part of the server's address) unless `verify off` was written.
 * The record callbacks of ktls.c are on the context, so a finished handshake can go to kTLS exactly like
 * the client leg (ktls_install with a client-side SSL: the same cipher rows, the same zeroisation).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "engine.h"

struct backend_tls {
	SSL_CTX *ctx;
	bool verify;
	char sni[TLSOFF_SNI_MAX];            /* "" = per server, from its address */
};

struct backend_tls *backend_tls_new(const struct backend_conf *b, char *err, size_t errlen)
{
	char ebuf[160];
	struct backend_tls *bt = calloc(1, sizeof(*bt));
	if (!bt || !(bt->ctx = SSL_CTX_new(TLS_client_method()))) {
		snprintf(err, errlen, "TLS client setup: out of memory");
		free(bt);
		return NULL;
	}
	bt->verify = b->tls_verify;
	snprintf(bt->sni, sizeof(bt->sni), "%s", b->tls_sni);
	SSL_CTX *ctx = bt->ctx;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* The client leg's AEAD-only lists (tls_ctx.h): every suite offered is one the kernel may take. */
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, GROUPS) != 1 || ktls_ctx_setup(ctx) != 0) {
		snprintf(err, errlen, "TLS client setup: %s", tls_error_string(ebuf, sizeof(ebuf)));
		goto fail;
	}
	if (b->tls_verify) {
		int ok = b->tls_ca[0] ? SSL_CTX_load_verify_locations(ctx, b->tls_ca, NULL)
				      : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			snprintf(err, errlen, "ca %s: %s", b->tls_ca[0] ? b->tls_ca : "(system default store)",
				 tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (b->tls_cert[0]) {
		if (SSL_CTX_use_certificate_chain_file(ctx, b->tls_cert) != 1) {
			snprintf(err, errlen, "cert %s: %s", b->tls_cert, tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, b->tls_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(err, errlen, "key %s: %s", b->tls_key, tls_error_string(ebuf, sizeof(ebuf)));
			goto fail;
		}
	}
	return bt;
fail:
	backend_tls_free(bt);
	return NULL;
}

void backend_tls_free(struct backend_tls *bt)
{
	if (!bt)
		return;
	SSL_CTX_free(bt->ctx);
	free(bt);
}

/* "host:port", "[v6]:port" -> host */
static void host_of(const char *text, char *out, size_t len)
{
	const char *colon = strrchr(text, ':');
	size_t n = colon ? (size_t)(colon - text) : strlen(text);
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']')
		text++, n -= 2;
	snprintf(out, len, "%.*s", (int)n, text);
}

static bool is_ip(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *backend_tls_ssl(struct backend_tls *bt, int fd, const char *server_text)
{
	char host[TLSOFF_SNI_MAX];
	SSL *ssl = SSL_new(bt->ctx);
	if (!ssl)
		return NULL;
	if (bt->sni[0])
		snprintf(host, sizeof(host), "%s", bt->sni);
	else
		host_of(server_text, host, sizeof(host));
	bool ip = is_ip(host);
	int ok = SSL_set_fd(ssl, fd);
	if (ok && !ip)
		ok = SSL_set_tlsext_host_name(ssl, host);      /* RFC 6066: no IP addresses in SNI */
	if (ok && bt->verify)
		ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host);
	if (!ok) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

const char *backend_tls_error(SSL *ssl, int r, char *buf, size_t len)
{
	char ebuf[160];
	int e = SSL_get_error(ssl, r);
	long vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
		ERR_clear_error();
	} else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
		snprintf(buf, len, "%s", errno ? strerror(errno) : "server closed the connection");
	} else {
		snprintf(buf, len, "%s", tls_error_string(ebuf, sizeof(ebuf)));
	}
	return buf;
}
