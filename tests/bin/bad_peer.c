/* bad_peer — misbehaving (and one well-behaved but slow) TLS clients for tlsoffd's robustness tests.
 * Every mode talks to a real tlsoffd over real sockets; the TLS parts are real OpenSSL.
 *
 *   bad_peer http ADDR                 plaintext "GET / HTTP/1.1" instead of a ClientHello
 *   bad_peer random ADDR N SEED        N pseudo-random bytes instead of a ClientHello
 *   bad_peer hello-cut ADDR            the first half of a real ClientHello, then SHUT_WR
 *   bad_peer idle ADDR                 connect and send nothing
 *   bad_peer hello-version ADDR HEX    a hand-made ClientHello offering only version HEX (0300 = SSLv3)
 *     each of the above then waits (up to 10 s) for tlsoffd to close and prints
 *       port=P closed_ms=MS|never recv=BYTES alert=DESC|-   (P: our local port, as tlsoffd logs it;
 *                                                            DESC: the first TLS alert tlsoffd sent)
 *   bad_peer rst-download ADDR N K     GET /bytes/N/1 over TLS, read K body bytes, then close with
 *                                      SO_LINGER 0 (an RST in the middle of the transfer); prints port=P got=BYTES
 *   bad_peer download ADDR N SEED GO   GET /bytes/N/SEED over TLS, reading all the time but at a pace, and
 *                                      never past N - 1 MB until the file GO exists (so it is certainly in
 *                                      flight while a test misbehaves elsewhere); prints port=P at once, then
 *                                      status=S content_length=L body=BYTES end=close_notify|eof|reset sha256=HEX
 *   bad_peer hold ADDR N GO            N connections one after the other, each a TLS handshake plus one
 *                                      keep-alive GET /bytes/1000/I; prints served=S refused=R max_refuse_ms=MS
 *                                      then keeps the served ones open until the file GO exists
 *   bad_peer tcp-hold ADDR N GO        N plain TCP connections (no TLS), kept open until GO exists;
 *                                      prints open=N
 *   bad_peer tcp-flood ADDR N SETTLE GO N plain TCP connections at once (no TLS); then watches them until none
 *                                      has been closed by tlsoffd for SETTLE ms and prints
 *                                      open=N closed=C still_open=S (C: closed by the server, EOF or RST)
 *                                      connect_ms=MS settle_ms=MS; keeps the rest open until GO exists
 * Exit status: 0 when the mode ran to its end (what happened is in the output, the test judges it), 1 on
 * a setup error or when a wait ran out of time.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tlsoff/config.h"

#define WAIT_CLOSE_MS 10000

static struct tlsoff_addr addr;

static void die(const char *what)
{
	fprintf(stderr, "bad_peer: %s: %s\n", what, errno ? strerror(errno) : "failed");
	ERR_print_errors_fp(stderr);
	exit(1);
}

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A blocking TCP connection with 10 s send/receive timeouts, so no mode can hang a test forever. */
static int tcp_connect(void)
{
	int fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 10 };
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr.ss, addr.len) < 0)
		die("connect");
	return fd;
}

/* The client port tlsoffd logs as client=127.0.0.1:PORT: how a test finds this connection's close line. */
static unsigned local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
					  ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			die("send");
		p += n;
		len -= (size_t)n;
	}
}

/* Read until tlsoffd closes (EOF or reset); report how long it took and the first alert it sent. */
static int wait_close(int fd, uint64_t t0)
{
	uint8_t buf[4096], head[7];
	size_t total = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(t0 + WAIT_CLOSE_MS - ms_now());
		if (left <= 0 || poll(&p, 1, left) == 0) {
			printf("port=%u closed_ms=never recv=%zu alert=-\n", local_port(fd), total);
			return 1;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && total + (size_t)i < sizeof(head); i++)
			head[total + (size_t)i] = buf[i];
		total += (size_t)n;
	}
	/* A plaintext alert record: type 21, version, length 2, level, description. Printed as one word
	 * ("protocol_version") so the tests can match fields with grep. */
	char alert[64] = "-";
	if (total >= 7 && head[0] == 21) {
		snprintf(alert, sizeof(alert), "%s", SSL_alert_desc_string_long(head[6]));
		for (char *p = alert; *p; p++)
			if (*p == ' ')
				*p = '_';
	}
	printf("port=%u closed_ms=%llu recv=%zu alert=%s\n", local_port(fd), (unsigned long long)(ms_now() - t0),
	       total, alert);
	return 0;
}

/* A real ClientHello, as OpenSSL would send it, taken from a memory BIO. */
static size_t client_hello(uint8_t *out, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	if (!ssl || !rb || !wb)
		die("OpenSSL setup");
	SSL_set_bio(ssl, rb, wb);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_connect(ssl);                        /* WANT_READ: the ClientHello is in wb */
	int n = BIO_read(wb, out, (int)cap);
	if (n <= 0)
		die("no ClientHello");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return (size_t)n;
}

/* A minimal ClientHello offering only `version` (and the record layer says the same version): what an
 * SSLv3 or TLS 1.1-only client sends. Suites: ECDHE-ECDSA-AES128-SHA, AES128-SHA. */
static size_t old_hello(uint8_t *out, unsigned version)
{
	static const uint8_t suites[] = { 0xc0, 0x09, 0x00, 0x2f };
	uint8_t body[128];
	size_t n = 0;
	body[n++] = (uint8_t)(version >> 8);
	body[n++] = (uint8_t)version;
	for (int i = 0; i < 32; i++)
		body[n++] = (uint8_t)(i * 7 + 1);     /* client random */
	body[n++] = 0;                                /* no session id */
	body[n++] = 0;
	body[n++] = sizeof(suites);
	memcpy(body + n, suites, sizeof(suites));
	n += sizeof(suites);
	body[n++] = 1;                                /* compression: null only */
	body[n++] = 0;
	size_t hs = n + 4, len = 0;
	out[len++] = 22;                              /* record: handshake */
	out[len++] = (uint8_t)(version >> 8);
	out[len++] = (uint8_t)version;
	out[len++] = (uint8_t)(hs >> 8);
	out[len++] = (uint8_t)hs;
	out[len++] = 1;                               /* ClientHello */
	out[len++] = 0;
	out[len++] = (uint8_t)(n >> 8);
	out[len++] = (uint8_t)n;
	memcpy(out + len, body, n);
	return len + n;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);   /* the tests check certificates with s_client */
	return ctx;
}

static SSL *tls_connect(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		die("SSL_new");
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

static void ssl_write_all(SSL *ssl, const char *s)
{
	if (SSL_write(ssl, s, (int)strlen(s)) != (int)strlen(s))
		die("SSL_write");
}

/* Read the response headers; returns the Content-Length (or -1 without one; -2 when the connection ended
 * first) and leaves `extra` body bytes in buf. */
static long long read_headers(SSL *ssl, char *buf, size_t cap, size_t *extra, int *status)
{
	size_t len = 0;
	char *end;
	*extra = 0;
	*status = 0;
	for (;;) {
		int n = SSL_read(ssl, buf + len, (int)(cap - len - 1));
		if (n <= 0) {
			ERR_clear_error();
			return -2;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
		if (len == cap - 1)
			die("response headers too long");
	}
	*status = atoi(buf + 9);
	const char *clh = strcasestr(buf, "\r\nContent-Length:");
	long long cl = clh && clh < end ? atoll(clh + 17) : -1;   /* before the body overwrites the head */
	size_t hl = (size_t)(end + 4 - buf);
	*extra = len - hl;
	memmove(buf, end + 4, *extra);
	return cl;
}

static int mode_download(unsigned long long n, unsigned long long seed, const char *go)
{
	SSL_CTX *ctx = client_ctx();
	int fd = tcp_connect();
	SSL *ssl = tls_connect(ctx, fd);
	char req[128], buf[16384];
	size_t extra;
	int status;
	if (!ssl)
		die("TLS handshake");
	snprintf(req, sizeof(req), "GET /bytes/%llu/%llu HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		 n, seed);
	ssl_write_all(ssl, req);
	long long cl = read_headers(ssl, buf, sizeof(buf), &extra, &status);
	if (cl == -2)
		die("the connection ended before the response headers");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, buf, extra);
	unsigned long long got = extra, hold = n > (1 << 20) ? n - (1 << 20) : 0;
	bool released = false;
	uint64_t t0 = ms_now();
	const char *end = "close_notify";
	printf("port=%u\n", local_port(fd));   /* first, so a test can find the connection while it runs */
	for (;;) {
		/* Until GO exists: a record per 2 ms at most (~8 MB/s), and stop short of the end. */
		if (!released && !(released = exists(go))) {
			if (got >= hold) {
				if (ms_now() - t0 > 120000)
					die("GO file never appeared");
				usleep(10000);
				continue;
			}
			usleep(2000);
		}
		errno = 0;
		int r = SSL_read(ssl, buf, sizeof(buf));
		if (r <= 0) {
			/* How it ended matters: only a close_notify says the body is complete. */
			int e = SSL_get_error(ssl, r);
			if (e == SSL_ERROR_SYSCALL && errno == ECONNRESET)
				end = "reset";
			else if (e != SSL_ERROR_ZERO_RETURN)
				end = "eof";
			ERR_clear_error();
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)r);
		got += (size_t)r;
	}
	unsigned char h[32];
	EVP_DigestFinal_ex(md, h, NULL);
	printf("status=%d content_length=%lld body=%llu end=%s sha256=", status, cl, got, end);
	for (int i = 0; i < 32; i++)
		printf("%02x", h[i]);
	printf("\n");
	return 0;
}

static int mode_rst_download(unsigned long long n, unsigned long long k)
{
	SSL_CTX *ctx = client_ctx();
	int fd = tcp_connect();
	SSL *ssl = tls_connect(ctx, fd);
	char req[128], buf[16384];
	size_t extra;
	int status;
	if (!ssl)
		die("TLS handshake");
	snprintf(req, sizeof(req), "GET /bytes/%llu/1 HTTP/1.1\r\nHost: localhost\r\n\r\n", n);
	ssl_write_all(ssl, req);
	if (read_headers(ssl, buf, sizeof(buf), &extra, &status) == -2)
		die("the connection ended before the response headers");
	unsigned long long got = extra;
	while (got < k) {
		int r = SSL_read(ssl, buf, sizeof(buf));
		if (r <= 0)
			die("download ended early");
		got += (size_t)r;
	}
	/* Linger 0: close sends an RST instead of a FIN, like a crashed or killed client. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	unsigned port = local_port(fd);
	close(fd);
	printf("port=%u got=%llu\n", port, got);
	return 0;
}

/* Read one response with a Content-Length body; true when it was a complete 200. */
static bool one_request(SSL *ssl, unsigned i)
{
	char req[128], buf[8192];
	size_t extra;
	int status;
	snprintf(req, sizeof(req), "GET /bytes/1000/%u HTTP/1.1\r\nHost: localhost\r\n\r\n", i);
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0)
		return false;
	long long cl = read_headers(ssl, buf, sizeof(buf), &extra, &status);
	long long got = (long long)extra;
	if (cl < 0)
		return false;
	while (got < cl) {
		int r = SSL_read(ssl, buf, sizeof(buf));
		if (r <= 0)
			return false;
		got += r;
	}
	return status == 200 && got == cl;
}

static int mode_hold(unsigned n, const char *go, bool tls)
{
	SSL_CTX *ctx = client_ctx();
	unsigned served = 0, refused = 0;
	uint64_t max_refuse = 0;
	int *fds = calloc(n, sizeof(*fds));
	for (unsigned i = 0; i < n; i++) {
		fds[i] = tcp_connect();
		if (!tls) {
			served++;
			continue;
		}
		uint64_t t0 = ms_now();
		SSL *ssl = tls_connect(ctx, fds[i]);
		if (ssl && one_request(ssl, i)) {
			served++;               /* the SSL object stays with the connection until exit */
			continue;
		}
		/* tlsoffd closed it: how fast tells "refused at once" from "timed out later" */
		if (ms_now() - t0 > max_refuse)
			max_refuse = ms_now() - t0;
		refused++;
		close(fds[i]);
		fds[i] = -1;
	}
	if (tls)
		printf("served=%u refused=%u max_refuse_ms=%llu\n", served, refused, (unsigned long long)max_refuse);
	else
		printf("open=%u\n", served);
	fflush(stdout);
	uint64_t t0 = ms_now();
	while (!exists(go)) {
		if (ms_now() - t0 > 120000)
			die("GO file never appeared");
		usleep(20000);
	}
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}

/* Has the server closed this connection (EOF or RST)? Nothing is ever sent to us otherwise. */
static bool closed_by_peer(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static int mode_flood(unsigned n, unsigned settle_ms, const char *go)
{
	int *fds = calloc(n, sizeof(*fds));
	bool *gone = calloc(n, sizeof(*gone));
	struct pollfd *pf = calloc(n, sizeof(*pf));
	if (!fds || !gone || !pf)
		die("out of memory");
	uint64_t t0 = ms_now();
	for (unsigned i = 0; i < n; i++)
		fds[i] = tcp_connect();
	uint64_t connected = ms_now(), last_change = connected;
	unsigned closed = 0;
	while (ms_now() - last_change < settle_ms) {
		for (unsigned i = 0; i < n; i++)
			pf[i] = (struct pollfd){ .fd = gone[i] ? -1 : fds[i], .events = POLLIN };
		if (poll(pf, n, 50) < 0 && errno != EINTR)
			die("poll");
		for (unsigned i = 0; i < n; i++)
			if (!gone[i] && pf[i].revents && closed_by_peer(fds[i])) {
				gone[i] = true;
				closed++;
				last_change = ms_now();
			}
	}
	printf("open=%u closed=%u still_open=%u connect_ms=%llu settle_ms=%llu\n", n, closed, n - closed,
	       (unsigned long long)(connected - t0), (unsigned long long)(last_change - connected));
	fflush(stdout);
	uint64_t w0 = ms_now();
	while (!exists(go)) {
		if (ms_now() - w0 > 120000)
			die("GO file never appeared");
		usleep(20000);
	}
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

int main(int argc, char **argv)
{
	char err[256];
	uint8_t buf[4096];
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of tests/bin/bad_peer.c\n");
		return 2;
	}
	if (tlsoff_addr_parse(argv[2], false, &addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "bad_peer: %s\n", err);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);   /* tlsoffd closing on us is what several modes expect, not a crash */
	const char *m = argv[1];
	if (!strcmp(m, "download") && argc == 6)
		return mode_download(strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10), argv[5]);
	if (!strcmp(m, "rst-download") && argc == 5)
		return mode_rst_download(strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
	if (!strcmp(m, "hold") && argc == 5)
		return mode_hold((unsigned)atoi(argv[3]), argv[4], true);
	if (!strcmp(m, "tcp-flood") && argc == 6)
		return mode_flood((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), argv[5]);
	if (!strcmp(m, "tcp-hold") && argc == 5)
		return mode_hold((unsigned)atoi(argv[3]), argv[4], false);

	size_t len = 0;
	if (!strcmp(m, "http") && argc == 3) {
		len = (size_t)snprintf((char *)buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
	} else if (!strcmp(m, "random") && argc == 5) {
		uint64_t s = strtoull(argv[4], NULL, 10) * 0x9E3779B97F4A7C15ULL | 1;
		len = (size_t)atoi(argv[3]);
		if (len > sizeof(buf))
			len = sizeof(buf);
		for (size_t i = 0; i < len; i++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			buf[i] = (uint8_t)(s >> 24);
		}
	} else if (!strcmp(m, "hello-cut") && argc == 3) {
		len = client_hello(buf, sizeof(buf)) / 2;
	} else if (!strcmp(m, "hello-version") && argc == 4) {
		len = old_hello(buf, (unsigned)strtoul(argv[3], NULL, 16));
	} else if (strcmp(m, "idle") || argc != 3) {
		fprintf(stderr, "bad_peer: unknown mode or wrong arguments: %s\n", m);
		return 2;
	}
	int fd = tcp_connect();
	uint64_t t0 = ms_now();
	if (len)
		send_all(fd, buf, len);
	if (!strcmp(m, "hello-cut"))
		shutdown(fd, SHUT_WR);          /* the client gives up half way through its hello */
	return wait_close(fd, t0);
}
