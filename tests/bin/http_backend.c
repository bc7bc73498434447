/* http_backend — a small real HTTP/1.1 server used as tlsoff's backend in tests and by `make run`.
 *
 *   http_backend [-q] ADDR:PORT          serve (one thread per connection, keep-alive)
 *   http_backend [-q] --tls CERT KEY [--tls-max 1.2|1.3] ADDR:PORT
 *                                        the same over TLS (OpenSSL in userspace, never kTLS): a re-encryption
 *                                        target for tlsoffd (`backend add … tls`)
 *   http_backend --gen BYTES SEED        print the body GET /bytes/BYTES/SEED returns (for the tests' sha256)
 *
 * Routes:
 *   GET /                  a greeting (for the demo)
 *   GET /bytes/N/SEED      N pseudo-random bytes (xorshift64*, from SEED)
 *   PUT|POST /sha256       reads the body (Content-Length or chunked) and answers "SHA256HEX LENGTH\n"
 *   POST /echo             answers with the request body (Content-Length bodies up to 64 MB)
 *   GET /whoami            what a PROXY protocol v2 header at the start of the connection said
 *                          ("src=ADDR:PORT dst=ADDR:PORT alpn=X authority=Y"), or "no proxy header"
 *   GET /whoami/ssl        its PP2_TYPE_SSL TLV: "client=0xFLAGS verify=N version=V cn=CN cipher=C" (a
 *                          missing sub-TLV is "-"), or "no ssl tlv"; a malformed one is "bad ssl tlv ..."
 *   anything else          404
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tlsoff/config.h"

static int quiet;
static SSL_CTX *tls_ctx;             /* --tls */
static __thread SSL *tls;            /* this connection's, in its thread */

struct gen { uint64_t s; };

static void gen_fill(struct gen *g, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		g->s ^= g->s >> 12;
		g->s ^= g->s << 25;
		g->s ^= g->s >> 27;
		uint64_t v = g->s * 0x2545F4914F6CDD1DULL;
		memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
	}
}

static void gen_init(struct gen *g, uint64_t seed)
{
	g->s = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
	if (!g->s)
		g->s = 1;
}

/* Buffered reader over a socket. */
struct rd {
	int fd;
	char buf[16384];
	size_t off, len;
};

static ssize_t rd_fill(struct rd *r)
{
	if (r->off == r->len)
		r->off = r->len = 0;
	ssize_t n;
	if (tls) {
		int got = SSL_read(tls, r->buf + r->len, (int)(sizeof(r->buf) - r->len));
		n = got > 0 ? got : SSL_get_error(tls, got) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	} else {
		do
			n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		while (n < 0 && errno == EINTR);
	}
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

/* One line without CRLF into out; -1 on EOF/error/too long. */
static int rd_line(struct rd *r, char *out, size_t cap)
{
	size_t n = 0;
	for (;;) {
		while (r->off < r->len) {
			char ch = r->buf[r->off++];
			if (ch == '\n') {
				if (n && out[n - 1] == '\r')
					n--;
				out[n] = '\0';
				return 0;
			}
			if (n + 1 >= cap)
				return -1;
			out[n++] = ch;
		}
		if (rd_fill(r) <= 0)
			return -1;
	}
}

/* Read exactly n body bytes into the hash. */
static int rd_body(struct rd *r, EVP_MD_CTX *md, uint64_t n)
{
	while (n) {
		if (r->off == r->len && rd_fill(r) <= 0)
			return -1;
		size_t take = r->len - r->off < n ? r->len - r->off : (size_t)n;
		EVP_DigestUpdate(md, r->buf + r->off, take);
		r->off += take;
		n -= take;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = tls ? SSL_write(tls, p, (int)n) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int respond(int fd, int code, const char *text, const char *body, int keep)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
			 code, text, strlen(body), keep ? "keep-alive" : "close");
	return write_all(fd, head, (size_t)n) || write_all(fd, body, strlen(body));
}

static int send_bytes(int fd, uint64_t n, uint64_t seed, int keep)
{
	char head[256];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %llu\r\n"
			  "Connection: %s\r\n\r\n", (unsigned long long)n, keep ? "keep-alive" : "close");
	if (write_all(fd, head, (size_t)hl))
		return -1;
	struct gen g;
	uint8_t buf[65536];
	gen_init(&g, seed);
	while (n) {
		size_t chunk = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		gen_fill(&g, buf, sizeof(buf));   /* whole blocks, so the stream does not depend on chunking */
		if (write_all(fd, buf, chunk))
			return -1;
		n -= chunk;
	}
	return 0;
}

/* A PROXY v2 header, if the connection starts with one: parse it into text for GET /whoami. */
/* PP2_TYPE_SSL's value: client (1 byte), verify (4, network order), then sub-TLVs that must fill it exactly. */
static void parse_ssl_tlv(const uint8_t *v, size_t l, char *out, size_t len)
{
	char version[64] = "-", cn[300] = "-", cipher[80] = "-";
	if (l < 5) {
		snprintf(out, len, "bad ssl tlv: %zu bytes\n", l);
		return;
	}
	unsigned verify = (unsigned)v[1] << 24 | v[2] << 16 | v[3] << 8 | v[4];
	size_t p = 5;
	while (p < l) {
		if (p + 3 > l || p + 3 + (size_t)(v[p + 1] << 8 | v[p + 2]) > l) {
			snprintf(out, len, "bad ssl tlv: sub-TLV at %zu overruns the TLV (%zu bytes)\n", p, l);
			return;
		}
		size_t sl = (size_t)(v[p + 1] << 8 | v[p + 2]);
		char *dst = v[p] == 0x21 ? version : v[p] == 0x22 ? cn : v[p] == 0x23 ? cipher : NULL;
		size_t dl = v[p] == 0x21 ? sizeof(version) : v[p] == 0x22 ? sizeof(cn) : sizeof(cipher);
		if (dst)
			snprintf(dst, dl, "%.*s", (int)sl, v + p + 3);
		p += 3 + sl;
	}
	snprintf(out, len, "client=0x%02x verify=%u version=%s cn=%s cipher=%s\n", v[0], verify, version, cn, cipher);
}

static void read_proxy_header(struct rd *r, char *who, size_t len, char *ssl, size_t ssl_len)
{
	snprintf(ssl, ssl_len, "no ssl tlv\n");
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	snprintf(who, len, "no proxy header");
	while (r->len - r->off < 16)
		if (rd_fill(r) <= 0)
			return;
	const uint8_t *h = (const uint8_t *)r->buf + r->off;
	if (memcmp(h, sig, 12))
		return;
	size_t n = (size_t)(h[14] << 8 | h[15]);
	while (r->len - r->off < 16 + n)
		if (rd_fill(r) <= 0)
			return;
	h = (const uint8_t *)r->buf + r->off;
	char src[64] = "?", dst[64] = "?", alpn[64] = "-", auth[256] = "-", a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	size_t alen = h[13] == 0x11 ? 12 : h[13] == 0x21 ? 36 : 0;
	if (alen == 12) {
		inet_ntop(AF_INET, h + 16, a, sizeof(a));
		inet_ntop(AF_INET, h + 20, b, sizeof(b));
		snprintf(src, sizeof(src), "%s:%u", a, h[24] << 8 | h[25]);
		snprintf(dst, sizeof(dst), "%s:%u", b, h[26] << 8 | h[27]);
	} else if (alen == 36) {
		inet_ntop(AF_INET6, h + 16, a, sizeof(a));
		inet_ntop(AF_INET6, h + 32, b, sizeof(b));
		snprintf(src, sizeof(src), "[%s]:%u", a, h[48] << 8 | h[49]);
		snprintf(dst, sizeof(dst), "[%s]:%u", b, h[50] << 8 | h[51]);
	}
	for (size_t p = 16 + alen; p + 3 <= 16 + n;) {   /* TLVs */
		size_t l = (size_t)(h[p + 1] << 8 | h[p + 2]);
		if (p + 3 + l > 16 + n)
			break;
		if (h[p] == 0x01)
			snprintf(alpn, sizeof(alpn), "%.*s", (int)l, h + p + 3);
		else if (h[p] == 0x02)
			snprintf(auth, sizeof(auth), "%.*s", (int)l, h + p + 3);
		else if (h[p] == 0x20)
			parse_ssl_tlv(h + p + 3, l, ssl, ssl_len);
		p += 3 + l;
	}
	snprintf(who, len, "src=%s dst=%s alpn=%s authority=%s\n", src, dst, alpn, auth);
	r->off += 16 + n;
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct rd *r = calloc(1, sizeof(*r));
	char line[8192], method[16], path[4096], who[512], ssl[600];
	r->fd = fd;
	snprintf(who, sizeof(who), "no proxy header");
	snprintf(ssl, sizeof(ssl), "no ssl tlv\n");
	if (tls_ctx) {
		if (!(tls = SSL_new(tls_ctx)) || SSL_set_fd(tls, fd) != 1 || SSL_accept(tls) != 1) {
			if (!quiet)
				fprintf(stderr, "http_backend: TLS handshake failed\n");
			goto out;
		}
	} else {
		read_proxy_header(r, who, sizeof(who), ssl, sizeof(ssl));
	}
	for (;;) {
		if (rd_line(r, line, sizeof(line)) < 0 || sscanf(line, "%15s %4095s", method, path) != 2)
			break;
		long long clen = -1;
		int chunked = 0, keep = !strstr(line, "HTTP/1.0");   /* 1.0 closes unless asked to keep */
		for (;;) {   /* headers */
			if (rd_line(r, line, sizeof(line)) < 0)
				goto out;
			if (!line[0])
				break;
			if (!strncasecmp(line, "Content-Length:", 15))
				clen = atoll(line + 15);
			else if (!strncasecmp(line, "Transfer-Encoding:", 18) && strcasestr(line, "chunked"))
				chunked = 1;
			else if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "close"))
				keep = 0;
			else if (!strncasecmp(line, "Connection:", 11) && strcasestr(line, "keep-alive"))
				keep = 1;
			else if (!strncasecmp(line, "Expect:", 7) && strcasestr(line, "100-continue"))
				write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		}
		if (!quiet)
			fprintf(stderr, "http_backend: %s %s\n", method, path);
		unsigned long long n, seed;
		int rc;
		if ((!strcmp(method, "PUT") || !strcmp(method, "POST")) && !strcmp(path, "/sha256")) {
			EVP_MD_CTX *md = EVP_MD_CTX_new();
			uint64_t total = 0;
			EVP_DigestInit_ex(md, EVP_sha256(), NULL);
			if (chunked) {
				for (;;) {
					if (rd_line(r, line, sizeof(line)) < 0) {
						EVP_MD_CTX_free(md);
						goto out;
					}
					unsigned long long sz = strtoull(line, NULL, 16);
					if (sz == 0) {
						while (rd_line(r, line, sizeof(line)) == 0 && line[0])
							;   /* trailers */
						break;
					}
					if (rd_body(r, md, sz) || rd_line(r, line, sizeof(line)) < 0) {
						EVP_MD_CTX_free(md);
						goto out;
					}
					total += sz;
				}
			} else if (clen > 0) {
				if (rd_body(r, md, (uint64_t)clen)) {
					EVP_MD_CTX_free(md);
					goto out;
				}
				total = (uint64_t)clen;
			}
			unsigned char dig[32];
			char body[100];
			EVP_DigestFinal_ex(md, dig, NULL);
			EVP_MD_CTX_free(md);
			for (int i = 0; i < 32; i++)
				sprintf(body + 2 * i, "%02x", dig[i]);
			sprintf(body + 64, " %llu\n", (unsigned long long)total);
			rc = respond(fd, 200, "OK", body, keep);
		} else if (!strcmp(method, "POST") && !strcmp(path, "/echo") && clen >= 0 && clen <= (64 << 20)) {
			char *body = malloc((size_t)clen + 1), head[160];
			size_t got = 0;
			while (body && got < (size_t)clen) {
				if (r->off == r->len && rd_fill(r) <= 0)
					break;
				size_t take = r->len - r->off < (size_t)clen - got ? r->len - r->off : (size_t)clen - got;
				memcpy(body + got, r->buf + r->off, take);
				r->off += take;
				got += take;
			}
			if (!body || got < (size_t)clen) {
				free(body);
				goto out;
			}
			int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
					  "Content-Length: %lld\r\nConnection: %s\r\n\r\n", clen, keep ? "keep-alive" : "close");
			rc = write_all(fd, head, (size_t)hl) || write_all(fd, body, (size_t)clen);
			free(body);
		} else if (!strcmp(method, "GET") && sscanf(path, "/bytes/%llu/%llu", &n, &seed) == 2) {
			rc = send_bytes(fd, n, seed, keep);
		} else if (!strcmp(method, "GET") && !strcmp(path, "/whoami")) {
			rc = respond(fd, 200, "OK", who, keep);
		} else if (!strcmp(method, "GET") && !strcmp(path, "/whoami/ssl")) {
			rc = respond(fd, 200, "OK", ssl, keep);
		} else if (!strcmp(method, "GET") && !strcmp(path, "/")) {
			rc = respond(fd, 200, "OK", "hello from the tlsoff demo backend\n", keep);
		} else {
			rc = respond(fd, 404, "Not Found", "not found\n", keep);
		}
		if (rc || !keep)
			break;
	}
out:
	if (tls) {
		SSL_shutdown(tls);
		SSL_free(tls);
		tls = NULL;
	}
	free(r);
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--gen")) {
		unsigned long long n = strtoull(argv[2], NULL, 10);
		struct gen g;
		uint8_t buf[65536];
		gen_init(&g, strtoull(argv[3], NULL, 10));
		while (n) {
			size_t chunk = n < sizeof(buf) ? (size_t)n : sizeof(buf);
			gen_fill(&g, buf, sizeof(buf));
			if (write_all(1, buf, chunk))
				return 1;
			n -= chunk;
		}
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "-q")) {
		quiet = 1;
		argv++, argc--;
	}
	if (argc >= 4 && !strcmp(argv[1], "--tls")) {
		int max = TLS1_3_VERSION;
		if (argc >= 6 && !strcmp(argv[4], "--tls-max")) {
			max = !strcmp(argv[5], "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
			argv[4] = argv[2], argv[5] = argv[3];
			argv += 2, argc -= 2;
		}
		/* SSL_OP_ENABLE_KTLS stays off: the tests count kTLS sessions, and only tlsoffd's may count. */
		if (!(tls_ctx = SSL_CTX_new(TLS_server_method())) ||
		    SSL_CTX_set_max_proto_version(tls_ctx, max) != 1 ||
		    SSL_CTX_use_certificate_chain_file(tls_ctx, argv[2]) != 1 ||
		    SSL_CTX_use_PrivateKey_file(tls_ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
			fprintf(stderr, "http_backend: --tls %s %s: cannot load\n", argv[2], argv[3]);
			return 1;
		}
		argv += 3, argc -= 3;
		argv[0] = "http_backend";
	}
	if (argc != 2) {
		fprintf(stderr, "usage: http_backend [-q] [--tls CERT KEY [--tls-max 1.2|1.3]] ADDR:PORT | --gen BYTES SEED\n");
		return 2;
	}
	struct tlsoff_addr a;
	char err[256];
	if (tlsoff_addr_parse(argv[1], false, &a, err, sizeof(err))) {
		fprintf(stderr, "http_backend: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int one = 1, l = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a.ss, a.len) < 0 || listen(l, 1024) < 0) {
		fprintf(stderr, "http_backend: listen %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC), one = 1;
		if (fd < 0)
			continue;
		/* headers and body are separate writes: without this, Nagle holds the body until the peer's
		 * delayed ACK (40 ms per keep-alive request) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t t;
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}
