/* proxy_v2.h — build a PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2) that tells the
 * backend the client's address, and optionally the negotiated ALPN and the SNI host name as TLVs. */
#ifndef TLSOFF_PROXY_V2_H
#define TLSOFF_PROXY_V2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP2_TYPE_ALPN      0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PROXY_V2_MAX       (16 + 36 + 3 + 255 + 3 + 255)

/* src = the client, dst = the address it connected to (our listener). Both AF_INET or both AF_INET6
 * (an IPv4 peer on an IPv6 socket arrives as v4-mapped and stays AF_INET6). alpn/sni may be NULL/0.
 * Returns the header length, or -1 if the families differ or a TLV is too long. */
int proxy_v2_build(uint8_t *out, size_t outlen, const struct sockaddr *src, const struct sockaddr *dst,
		   const uint8_t *alpn, size_t alpn_len, const char *sni);

#endif
