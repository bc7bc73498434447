/* proxy_v2.c — PROXY protocol v2 header construction. */
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

int proxy_v2_build(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		   const uint8_t *alpn, size_t alpn_len, const char *sni)
{
	size_t sni_len = sni ? strlen(sni) : 0;
	if (src->sa_family != dst->sa_family || alpn_len > 255 || sni_len > 255 || outlen < PROXY_V2_MAX)
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
	out[14] = (uint8_t)((n - 16) >> 8);
	out[15] = (uint8_t)(n - 16);
	return (int)n;
}
