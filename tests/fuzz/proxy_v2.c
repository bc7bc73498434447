/* libFuzzer harness for PROXY v2 header construction (datapath/proxy_v2.c), as a round trip: the input
 * chooses the addresses, ALPN, SNI and the SSL TLV (lengths up to past every limit); the header built is
 * read back by the small, independent parser below (haproxy's proxy-protocol.txt, section 2.2) and every
 * field must be what went in. Also: the header fits the buffer the daemon gives it (PROXY_V2_MAX, here an
 * exact-size heap block so ASan sees one byte past it), its length field matches, and the builder refuses
 * (-1) exactly what the header documents: different families, a family other than IPv4/IPv6, a value over
 * its limit, a buffer under PROXY_V2_MAX. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include "fuzz.h"
#include "tlsoff/proxy_v2.h"

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t byte(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static void bytes(struct input *in, void *out, size_t n)
{
	memset(out, 0, n);
	size_t take = n < in->left ? n : in->left;
	memcpy(out, in->p, take);
	in->p += take;
	in->left -= take;
}

/* A string of up to 300 bytes (a length byte plus a 0-44 extra, so the limits 32/64/255 get crossed); NUL
 * bytes inside end it, as they would for a C string. NULL when the selector byte says so. */
static char *string(struct input *in, char *buf)
{
	uint8_t sel = byte(in);
	if (sel == 0)
		return NULL;
	size_t n = byte(in) + (sel & 0x3f);
	bytes(in, buf, n);
	buf[n] = '\0';
	return buf;
}

static int family(uint8_t sel)
{
	return sel % 8 == 7 ? AF_UNIX : sel % 2 ? AF_INET6 : AF_INET;
}

static void address(struct input *in, int fam, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)fam;
	if (fam == AF_INET)
		bytes(in, &((struct sockaddr_in *)ss)->sin_addr, 4), bytes(in, &((struct sockaddr_in *)ss)->sin_port, 2);
	else if (fam == AF_INET6)
		bytes(in, &((struct sockaddr_in6 *)ss)->sin6_addr, 16),
			bytes(in, &((struct sockaddr_in6 *)ss)->sin6_port, 2);
	else
		snprintf(((struct sockaddr_un *)ss)->sun_path, sizeof(((struct sockaddr_un *)ss)->sun_path), "/x");
}

/* ---- the independent parser ---- */
struct tlv {
	const uint8_t *v;
	size_t len;
	int seen;
};

struct parsed {
	int fam;
	uint8_t src[16], dst[16];
	uint8_t sport[2], dport[2];
	struct tlv alpn, authority, ssl, version, cn, cipher;
	uint8_t client;
	uint32_t verify;
};

static void take(struct tlv *t, const uint8_t *v, size_t len)
{
	CHECK(!t->seen);   /* each TLV at most once */
	t->v = v, t->len = len, t->seen = 1;
}

static void parse(const uint8_t *h, size_t n, struct parsed *out)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	memset(out, 0, sizeof(*out));
	CHECK(n >= 16 && !memcmp(h, sig, 12));
	CHECK(h[12] == 0x21);                              /* version 2, PROXY */
	CHECK((size_t)((h[14] << 8) | h[15]) == n - 16);   /* the length field covers exactly the rest */
	size_t alen = h[13] == 0x11 ? 12 : h[13] == 0x21 ? 36 : 0;
	CHECK(alen && n - 16 >= alen);
	out->fam = h[13] == 0x11 ? AF_INET : AF_INET6;
	size_t al = alen == 12 ? 4 : 16;
	memcpy(out->src, h + 16, al);
	memcpy(out->dst, h + 16 + al, al);
	memcpy(out->sport, h + 16 + 2 * al, 2);
	memcpy(out->dport, h + 16 + 2 * al + 2, 2);
	for (size_t o = 16 + alen; o < n;) {
		CHECK(n - o >= 3);
		size_t l = (size_t)(h[o + 1] << 8 | h[o + 2]);
		CHECK(l <= n - o - 3);
		const uint8_t *v = h + o + 3;
		switch (h[o]) {
		case PP2_TYPE_ALPN: take(&out->alpn, v, l); break;
		case PP2_TYPE_AUTHORITY: take(&out->authority, v, l); break;
		case PP2_TYPE_SSL:
			take(&out->ssl, v, l);
			CHECK(l >= 5);
			out->client = v[0];
			out->verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4];
			for (size_t s = 5; s < l;) {
				CHECK(l - s >= 3);
				size_t sl = (size_t)(v[s + 1] << 8 | v[s + 2]);
				CHECK(sl <= l - s - 3);
				switch (v[s]) {
				case PP2_SUBTYPE_SSL_VERSION: take(&out->version, v + s + 3, sl); break;
				case PP2_SUBTYPE_SSL_CN: take(&out->cn, v + s + 3, sl); break;
				case PP2_SUBTYPE_SSL_CIPHER: take(&out->cipher, v + s + 3, sl); break;
				default: CHECK(0);
				}
				s += 3 + sl;
			}
			break;
		default:
			CHECK(0);   /* we send no other TLV */
		}
		o += 3 + l;
	}
}

/* A value that went in (NULL/"" = absent) is the TLV that came out. */
static void same(const struct tlv *t, const void *v, size_t len)
{
	if (!v || !len) {
		CHECK(!t->seen);
		return;
	}
	CHECK(t->seen && t->len == len && !memcmp(t->v, v, len));
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct sockaddr_storage src, dst;
	char sni_buf[320], ver_buf[320], cn_buf[320], cipher_buf[320];
	uint8_t alpn[320];

	uint8_t fam = byte(&in);
	int sfam = family(fam), dfam = family(fam >> 3);
	address(&in, sfam, &src);
	address(&in, dfam, &dst);
	uint8_t asel = byte(&in);
	size_t alpn_len = asel ? byte(&in) + (asel & 0x3f) : 0;
	bytes(&in, alpn, alpn_len);
	char *sni = string(&in, sni_buf);
	struct proxy_v2_ssl ssl = { 0 }, *sslp = NULL;
	if (byte(&in) & 1) {
		sslp = &ssl;
		ssl.client = byte(&in);
		uint8_t v[4];
		bytes(&in, v, 4);
		ssl.verify = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
		ssl.version = string(&in, ver_buf);
		ssl.cn = string(&in, cn_buf);
		ssl.cipher = string(&in, cipher_buf);
	}
	size_t short_by = byte(&in) & 1;   /* a buffer one byte under the documented minimum */

	size_t cap = PROXY_V2_MAX - short_by;
	uint8_t *out = malloc(cap);
	CHECK(out != NULL);
	int n = proxy_v2_build_ssl(out, cap, (struct sockaddr *)&src, (struct sockaddr *)&dst, alpn, alpn_len, sni,
				   sslp);
	bool refuse = sfam != dfam || sfam == AF_UNIX || alpn_len > PROXY_V2_TLV_MAX || slen(sni) > PROXY_V2_TLV_MAX ||
		      short_by || (sslp && (slen(ssl.version) > PROXY_V2_SSL_VERSION_MAX ||
					    slen(ssl.cn) > PROXY_V2_TLV_MAX || slen(ssl.cipher) > PROXY_V2_SSL_CIPHER_MAX));
	if (refuse) {
		CHECK(n == -1);
		free(out);
		return 0;
	}
	CHECK(n >= 16 && (size_t)n <= PROXY_V2_MAX && n <= 16 + 65535);

	struct parsed p;
	parse(out, (size_t)n, &p);
	CHECK(p.fam == sfam);
	if (sfam == AF_INET) {
		const struct sockaddr_in *s = (const void *)&src, *d = (const void *)&dst;
		CHECK(!memcmp(p.src, &s->sin_addr, 4) && !memcmp(p.dst, &d->sin_addr, 4));
		CHECK(!memcmp(p.sport, &s->sin_port, 2) && !memcmp(p.dport, &d->sin_port, 2));
	} else {
		const struct sockaddr_in6 *s = (const void *)&src, *d = (const void *)&dst;
		CHECK(!memcmp(p.src, &s->sin6_addr, 16) && !memcmp(p.dst, &d->sin6_addr, 16));
		CHECK(!memcmp(p.sport, &s->sin6_port, 2) && !memcmp(p.dport, &d->sin6_port, 2));
	}
	same(&p.alpn, alpn, alpn_len);
	same(&p.authority, sni, slen(sni));
	CHECK(p.ssl.seen == (sslp != NULL));
	if (sslp) {
		CHECK(p.client == ssl.client && p.verify == ssl.verify);
		same(&p.version, ssl.version, slen(ssl.version));
		same(&p.cn, ssl.cn, slen(ssl.cn));
		same(&p.cipher, ssl.cipher, slen(ssl.cipher));
	}
	/* without the SSL TLV the plain builder makes the same header minus that TLV */
	if (!sslp) {
		uint8_t *again = malloc(PROXY_V2_MAX);
		CHECK(again != NULL);
		CHECK(proxy_v2_build(again, PROXY_V2_MAX, (struct sockaddr *)&src, (struct sockaddr *)&dst, alpn,
				     alpn_len, sni) == n && !memcmp(again, out, (size_t)n));
		free(again);
	}
	free(out);
	return 0;
}
