/* proxy_v2.h — build a PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2) that tells the
 * backend the client's address, and optionally the negotiated ALPN, the SNI host name and what TLS said
 * about the client (PP2_TYPE_SSL: version, cipher, client certificate CN and verify result) as TLVs. */
#ifndef TLSOFF_PROXY_V2_H
#define TLSOFF_PROXY_V2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP2_TYPE_ALPN           0x01
#define PP2_TYPE_AUTHORITY      0x02
#define PP2_TYPE_SSL            0x20   /* value: client (u8), verify (u32, network order), then sub-TLVs */
#define PP2_SUBTYPE_SSL_VERSION 0x21   /* "TLSv1.3" */
#define PP2_SUBTYPE_SSL_CN      0x22   /* the client certificate's subject CN, UTF-8 */
#define PP2_SUBTYPE_SSL_CIPHER  0x23   /* OpenSSL's name, "TLS_AES_128_GCM_SHA256" */

#define PP2_CLIENT_SSL          0x01   /* the client connected over TLS */
#define PP2_CLIENT_CERT_CONN    0x02   /* it sent a certificate in this connection's handshake */
#define PP2_CLIENT_CERT_SESS    0x04   /* its TLS session has one (sent now, or in the handshake resumed) */

/* Longest values a TLV takes here: the SNI and ALPN as OpenSSL bounds them, and the SSL sub-TLVs. */
#define PROXY_V2_TLV_MAX        255
#define PROXY_V2_SSL_VERSION_MAX 32
#define PROXY_V2_SSL_CIPHER_MAX 64
#define PROXY_V2_SSL_MAX        (3 + 1 + 4 + 3 + PROXY_V2_SSL_VERSION_MAX + 3 + PROXY_V2_TLV_MAX + \
				 3 + PROXY_V2_SSL_CIPHER_MAX)
#define PROXY_V2_MAX            (16 + 36 + 3 + PROXY_V2_TLV_MAX + 3 + PROXY_V2_TLV_MAX + PROXY_V2_SSL_MAX)

/* The PP2_TYPE_SSL TLV. verify is 0 only when a client certificate was presented (now or in the resumed
 * session) and verified; otherwise the X509_V_ERR_* code, or 1 when there is no certificate (the
 * specification: non-zero unless presented and verified). NULL or "" leaves a sub-TLV out. */
struct proxy_v2_ssl {
	uint8_t client;               /* PP2_CLIENT_* */
	uint32_t verify;
	const char *version, *cn, *cipher;
};

/* src = the client, dst = the address it connected to (our listener). Both AF_INET or both AF_INET6
 * (an IPv4 peer on an IPv6 socket arrives as v4-mapped and stays AF_INET6). alpn/sni/ssl may be NULL/0.
 * Returns the header length, or -1 if the families differ, outlen < PROXY_V2_MAX or a value is longer than
 * its limit above (never truncated: a cut CN could name someone else). */
int proxy_v2_build_ssl(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		       const uint8_t *alpn, size_t alpn_len, const char *sni, const struct proxy_v2_ssl *ssl);

/* The same without PP2_TYPE_SSL (plain and passthrough frontends: no TLS ends here). */
int proxy_v2_build(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		   const uint8_t *alpn, size_t alpn_len, const char *sni);

#endif
