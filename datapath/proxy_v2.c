/* proxy_v2.c — PROXY protocol v2 header construction (TLVs nest one level: the SSL TLV's sub-TLVs). */
#include "tlsoff/proxy_v2.h"

#include <netinet/in.h>
#include <string.h>

static const uint8_t signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static size_t put_tlv(uint8_t *p, uint8_t type, const void *val, size_t len)
{
	p[0] = type;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	memcpy(p + 3, val, len);
	return 3 + len;
}

static size_t opt_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* PP2_TYPE_SSL: client flags, verify, then the sub-TLVs that have a value; the outer length covers them. */
static size_t put_ssl(uint8_t *p, const struct proxy_v2_ssl *ssl)
{
	size_t n = 3;
	p[0] = PP2_TYPE_SSL;
	p[n++] = ssl->client;
	p[n++] = (uint8_t)(ssl->verify >> 24);
	p[n++] = (uint8_t)(ssl->verify >> 16);
	p[n++] = (uint8_t)(ssl->verify >> 8);
	p[n++] = (uint8_t)ssl->verify;
	if (opt_len(ssl->version))
		n += put_tlv(p + n, PP2_SUBTYPE_SSL_VERSION, ssl->version, strlen(ssl->version));
	if (opt_len(ssl->cn))
		n += put_tlv(p + n, PP2_SUBTYPE_SSL_CN, ssl->cn, strlen(ssl->cn));
	if (opt_len(ssl->cipher))
		n += put_tlv(p + n, PP2_SUBTYPE_SSL_CIPHER, ssl->cipher, strlen(ssl->cipher));
	p[1] = (uint8_t)((n - 3) >> 8);
	p[2] = (uint8_t)(n - 3);
	return n;
}

int proxy_v2_build(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		   const uint8_t *alpn, size_t alpn_len, const char *sni)
{
	return proxy_v2_build_ssl(out, outlen, src, dst, alpn, alpn_len, sni, NULL);
}

int proxy_v2_build_ssl(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		       const uint8_t *alpn, size_t alpn_len, const char *sni, const struct proxy_v2_ssl *ssl)
{
	size_t sni_len = opt_len(sni);
	if (src->sa_family != dst->sa_family || alpn_len > PROXY_V2_TLV_MAX || sni_len > PROXY_V2_TLV_MAX ||
	    outlen < PROXY_V2_MAX)
		return -1;
	if (ssl && (opt_len(ssl->version) > PROXY_V2_SSL_VERSION_MAX || opt_len(ssl->cn) > PROXY_V2_TLV_MAX ||
		    opt_len(ssl->cipher) > PROXY_V2_SSL_CIPHER_MAX))
		return -1;

	size_t n = 16;
	memcpy(out, signature, sizeof(signature));
	out[12] = 0x21;                                   /* version 2, command PROXY */
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
		out[13] = 0x11;                           /* TCP over IPv4 */
		memcpy(out + n, &s->sin_addr, 4);
		memcpy(out + n + 4, &d->sin_addr, 4);
		memcpy(out + n + 8, &s->sin_port, 2);
		memcpy(out + n + 10, &d->sin_port, 2);
		n += 12;
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
		out[13] = 0x21;                           /* TCP over IPv6 */
		memcpy(out + n, &s->sin6_addr, 16);
		memcpy(out + n + 16, &d->sin6_addr, 16);
		memcpy(out + n + 32, &s->sin6_port, 2);
		memcpy(out + n + 34, &d->sin6_port, 2);
		n += 36;
	} else {
		return -1;
	}
	if (alpn_len)
		n += put_tlv(out + n, PP2_TYPE_ALPN, alpn, alpn_len);
	if (sni_len)
		n += put_tlv(out + n, PP2_TYPE_AUTHORITY, sni, sni_len);
	if (ssl)
		n += put_ssl(out + n, ssl);
	out[14] = (uint8_t)((n - 16) >> 8);
	out[15] = (uint8_t)(n - 16);
	return (int)n;
}
