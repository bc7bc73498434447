/* ktls_selftest — prove that ktls_install() hands the kernel working record keys.
 *
 * Matrix mode (default): for each (TLS version, cipher) a loopback TCP connection joins a kTLS side (this
 * thread: OpenSSL handshake, then ktls_install TX|RX, then plain read()/write() — the kernel does the
 * crypto) and a plain userspace OpenSSL peer (a thread, no kTLS anywhere). The peer sends random data, the
 * kTLS side echoes the same amount of its own random data back; both sides hash what they sent and what
 * they got, and the hashes must match pairwise. Three cases per combo:
 *   server  kTLS side is the TLS server; the peer waits until install, then sends.
 *   early   kTLS side is the server; the peer sends right after its Finished, before install. Either the
 *           kernel decrypts the queued records (RX installed) or ktls_install refuses RX with a reason and
 *           OpenSSL keeps reading — both are correct; garbage is not.
 *   client  kTLS side is the TLS client. In TLS 1.3 the server's NewSessionTickets then reach the kernel
 *           RX path as handshake records (type 22), which we must read with a cmsg buffer and skip.
 * Every case ends with a close_notify sent by the kTLS side as a kernel alert record (the peer's SSL_read
 * must see SSL_ERROR_ZERO_RETURN) and the peer's close_notify read back through kTLS RX as record type 21.
 * /proc/net/tls_stat must rise by exactly the number of installs, and TlsCurr* while a socket is open.
 *
 * Serve/connect mode: the same kTLS side against an external peer (openssl s_client / s_server), see
 * usage(). Exit: 0 all passed (or kTLS unavailable, reported, unless --require-ktls), 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <tlsoff/ktls.h>


enum { REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23 };
#define IO_TIMEOUT_S 60      /* per blocking call: a stuck peer fails the case instead of hanging the lab */
#define CHUNK (256 * 1024)   /* write granularity: several records per write() */

/* The OpenSSL names for each kernel cipher row we test, per version (ECDSA certificate for TLS 1.2). */
struct suite {
	const char *name;     /* as in ktls_ciphers[].name */
	const char *tls13;    /* SSL_CTX_set_ciphersuites */
	const char *tls12;    /* SSL_CTX_set_cipher_list */
};
static const struct suite suites[] = {
	{ "AES-128-GCM", "TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ "AES-256-GCM", "TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ "CHACHA20-POLY1305", "TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305" },
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

enum mode { MODE_SERVER, MODE_EARLY, MODE_CLIENT };
static const char *const mode_names[] = { "server", "early", "client" };

static EVP_PKEY *g_key;
static X509 *g_cert;

/* ---------------------------------------------------------------------------------------------------- */
/* small helpers */

static void seterr(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *buf, size_t len, const char *fmt, ...)
{
	if (buf[0])
		return; /* keep the first reason: later ones are usually consequences */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* The OpenSSL error queue as one line (or the errno, for SSL_ERROR_SYSCALL). */
static const char *ssl_errstr(SSL *ssl, int ret)
{
	static __thread char buf[200];
	int e = SSL_get_error(ssl, ret);
	unsigned long code = ERR_get_error();
	if (code)
		ERR_error_string_n(code, buf, sizeof(buf));
	else if (e == SSL_ERROR_SYSCALL)
		snprintf(buf, sizeof(buf), "SSL_ERROR_SYSCALL: %s", ret == 0 ? "peer closed" : strerror(errno));
	else
		snprintf(buf, sizeof(buf), "SSL error %d", e);
	ERR_clear_error();
	return buf;
}

static const char *dirs_str(unsigned d)
{
	return d == (KTLS_TX | KTLS_RX) ? "TX+RX" : d == KTLS_TX ? "TX" : d == KTLS_RX ? "RX" : "none";
}

static const char *vname(int v) { return v == TLS1_3_VERSION ? "tls1.3" : "tls1.2"; }

/* Index of the kernel row for a suite in ktls_ciphers (the bit in ktls_caps.tx/rx), -1 if absent. */
static int cipher_index(const char *name)
{
	for (size_t i = 0; i < ktls_cipher_count; i++)
		if (strcmp(ktls_ciphers[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	       setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void hex32(const uint8_t h[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

/* ---------------------------------------------------------------------------------------------------- */
/* /proc/net/tls_stat */

struct tls_stat {
	bool present;
	long long tx_sw, rx_sw, curr_tx_sw, curr_rx_sw, decrypt_err;
};

static void tls_stat_read(struct tls_stat *s)
{
	memset(s, 0, sizeof(*s));
	FILE *f = fopen("/proc/net/tls_stat", "r");
	if (!f)
		return;
	s->present = true;
	char name[64];
	long long v;
	while (fscanf(f, "%63s %lld", name, &v) == 2) {
		if (!strcmp(name, "TlsTxSw")) s->tx_sw = v;
		else if (!strcmp(name, "TlsRxSw")) s->rx_sw = v;
		else if (!strcmp(name, "TlsCurrTxSw")) s->curr_tx_sw = v;
		else if (!strcmp(name, "TlsCurrRxSw")) s->curr_rx_sw = v;
		else if (!strcmp(name, "TlsDecryptError")) s->decrypt_err = v;
	}
	fclose(f);
}

/* ---------------------------------------------------------------------------------------------------- */
/* certificate and contexts */

/* A throwaway ECDSA P-256 self-signed certificate: nobody verifies it, the test is about the record layer. */
static int make_cert(void)
{
	g_key = EVP_EC_gen("P-256");
	g_cert = X509_new();
	if (!g_key || !g_cert)
		return -1;
	X509_NAME *n = X509_get_subject_name(g_cert);
	if (!X509_set_version(g_cert, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(g_cert), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(g_cert), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(g_cert), 86400) || !X509_set_pubkey(g_cert, g_key) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(g_cert, n) || !X509_sign(g_cert, g_key, EVP_sha256()))
		return -1;
	return 0;
}

static int load_cert(const char *cert, const char *key)
{
	FILE *f = fopen(cert, "r");
	if (!f || !(g_cert = PEM_read_X509(f, NULL, NULL, NULL)))
		return f ? fclose(f), -1 : -1;
	fclose(f);
	if (!(f = fopen(key, "r")) || !(g_key = PEM_read_PrivateKey(f, NULL, NULL, NULL)))
		return f ? fclose(f), -1 : -1;
	fclose(f);
	return 0;
}

/* One context per side and case. version 0 / su NULL: accept whatever the peer offers (serve mode). */
static SSL_CTX *make_ctx(bool server, bool ktls_side, int version, const struct suite *su)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return NULL;
	/* Neither side lets OpenSSL touch kTLS: the kTLS side is tlsoff's job, the peer is pure userspace. */
	SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
	bool ok = SSL_CTX_set_min_proto_version(ctx, version ? version : TLS1_2_VERSION) &&
		  SSL_CTX_set_max_proto_version(ctx, version ? version : TLS1_3_VERSION);
	if (ok && su && version == TLS1_3_VERSION)
		ok = SSL_CTX_set_ciphersuites(ctx, su->tls13);
	if (ok && su && version == TLS1_2_VERSION)
		ok = SSL_CTX_set_cipher_list(ctx, su->tls12);
	if (ok && server)
		ok = SSL_CTX_use_certificate(ctx, g_cert) && SSL_CTX_use_PrivateKey(ctx, g_key);
	if (ok && ktls_side)
		ok = ktls_ctx_setup(ctx) == 0;
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---------------------------------------------------------------------------------------------------- */
/* kTLS-side I/O: plain syscalls, the kernel does the record layer */

static int write_all(int fd, const uint8_t *p, size_t len, char *why, size_t wl)
{
	while (len) {
		ssize_t n = write(fd, p, len < CHUNK ? len : CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			seterr(why, wl, "write() on the kTLS socket: %s", n ? strerror(errno) : "wrote 0");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* recvmsg with a cmsg buffer: the kernel reports each record's type and hands non-data records up one
 * at a time instead of failing with EIO. Returns bytes, 0 at EOF, -1 on error; *type = record type. */
static ssize_t recv_record(int fd, void *buf, size_t len, int *type)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	do
		n = recvmsg(fd, &msg, 0);
	while (n < 0 && errno == EINTR);
	*type = REC_APPDATA;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n > 0 && c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *CMSG_DATA(c);
	return n;
}

/* The post-handshake messages that came up through kTLS RX, concatenated. A small read buffer gets a
 * handshake record in pieces (the kernel hands out the rest on the next call), so count messages by
 * parsing the stream, not by counting reads. */
struct hs_log {
	uint8_t buf[8192];
	size_t len;
	bool overflow;
};

static void hs_append(struct hs_log *hs, const uint8_t *p, size_t n)
{
	size_t room = sizeof(hs->buf) - hs->len;
	hs->overflow |= n > room;
	memcpy(hs->buf + hs->len, p, n < room ? n : room);
	hs->len += n < room ? n : room;
}

/* Complete handshake messages of the given type (4 = NewSessionTicket, RFC 8446 section 4). */
static int hs_count(const struct hs_log *hs, uint8_t msg_type)
{
	int count = 0;
	for (size_t i = 0; i + 4 <= hs->len;) {
		size_t l = (size_t)hs->buf[i + 1] << 16 | (size_t)hs->buf[i + 2] << 8 | hs->buf[i + 3];
		if (i + 4 + l > hs->len)
			break;
		count += hs->buf[i] == msg_type;
		i += 4 + l;
	}
	return count;
}

/* Read exactly len plaintext bytes through kTLS RX. plain: use read(), as a naive application would
 * (fine when no non-data record can come); otherwise recvmsg + cmsg, setting handshake records
 * (TLS 1.3 NewSessionTicket) aside in *hs. */
static int read_exact(int fd, uint8_t *p, size_t len, bool plain, struct hs_log *hs, char *why, size_t wl)
{
	static __thread uint8_t scratch[16384 + 256];
	while (len) {
		int type = REC_APPDATA;
		ssize_t n;
		if (plain) {
			do
				n = read(fd, p, len);
			while (n < 0 && errno == EINTR);
		} else {
			/* A non-data record must not land in the caller's data buffer: read those into scratch. */
			n = recv_record(fd, p, len, &type);
			if (n > 0 && type != REC_APPDATA)
				memmove(scratch, p, (size_t)n < sizeof(scratch) ? (size_t)n : sizeof(scratch));
		}
		if (n == 0) {
			seterr(why, wl, "kTLS read: peer closed with %zu bytes still expected", len);
			return -1;
		}
		if (n < 0) {
			seterr(why, wl, "kTLS read: %s%s", strerror(errno),
			       errno == EBADMSG ? " (record failed authentication: wrong key, iv or sequence)"
			       : errno == EIO && plain ? " (a non-data record arrived; read() cannot return it)" : "");
			return -1;
		}
		if (type == REC_HANDSHAKE) {
			hs_append(hs, scratch, (size_t)n);
			continue;
		}
		if (type != REC_APPDATA) {
			seterr(why, wl, "kTLS read: unexpected record type %d (%zd bytes: %02x %02x) with %zu data "
			       "bytes still expected", type, n, scratch[0], n > 1 ? scratch[1] : 0, len);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* close_notify as the kernel's own alert record: TLS_SET_RECORD_TYPE 21, payload {warning, close_notify}. */
static int send_close_notify(int fd, char *why, size_t wl)
{
	uint8_t alert[2] = { 1, 0 };
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(c) = REC_ALERT;
	if (sendmsg(fd, &msg, 0) != (ssize_t)sizeof(alert)) {
		seterr(why, wl, "sendmsg(close_notify alert record): %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The peer's close_notify through kTLS RX: one record of type 21 carrying {1, 0}. */
static int expect_close_notify(int fd, char *why, size_t wl)
{
	uint8_t buf[64];
	int type;
	for (;;) {
		ssize_t n = recv_record(fd, buf, sizeof(buf), &type);
		if (n > 0 && type == REC_HANDSHAKE)
			continue;
		if (n == 2 && type == REC_ALERT && buf[0] == 1 && buf[1] == 0)
			return 0;
		if (n < 0)
			seterr(why, wl, "waiting for the peer's close_notify: %s", strerror(errno));
		else if (n == 0)
			seterr(why, wl, "peer closed TCP without a close_notify record");
		else
			seterr(why, wl, "expected close_notify alert, got record type %d, %zd bytes (%02x %02x)",
			       type, n, buf[0], n > 1 ? buf[1] : 0);
		return -1;
	}
}

/* ---------------------------------------------------------------------------------------------------- */
/* userspace OpenSSL I/O (the peer, and the kTLS side for a direction ktls_install refused) */

static int ssl_write_all(SSL *ssl, const uint8_t *p, size_t len, char *why, size_t wl)
{
	while (len) {
		size_t w = 0;
		int r = SSL_write_ex(ssl, p, len < CHUNK ? len : CHUNK, &w);
		if (r <= 0) {
			seterr(why, wl, "SSL_write: %s", ssl_errstr(ssl, r));
			return -1;
		}
		p += w;
		len -= w;
	}
	return 0;
}

static int ssl_read_exact(SSL *ssl, uint8_t *p, size_t len, char *why, size_t wl)
{
	while (len) {
		size_t got = 0;
		int r = SSL_read_ex(ssl, p, len, &got);
		if (r <= 0) {
			seterr(why, wl, "SSL_read with %zu bytes still expected: %s", len, ssl_errstr(ssl, r));
			return -1;
		}
		p += got;
		len -= got;
	}
	return 0;
}

/* After the other side's close_notify: SSL_read returns 0 with SSL_ERROR_ZERO_RETURN, nothing else. */
static int ssl_expect_close(SSL *ssl, char *why, size_t wl)
{
	uint8_t b;
	size_t got = 0;
	int r = SSL_read_ex(ssl, &b, 1, &got);
	int e = SSL_get_error(ssl, r);
	if (r == 0 && e == SSL_ERROR_ZERO_RETURN)
		return 0;
	seterr(why, wl, "expected close_notify (SSL_ERROR_ZERO_RETURN), got %s",
	       r > 0 ? "more application data" : ssl_errstr(ssl, r));
	return -1;
}

/* Random bytes into *buf (grown as needed), fed to the running hash of what this side sent. */
static int fill_random(uint8_t **buf, size_t *cap, size_t len)
{
	if (len > *cap) {
		uint8_t *n = realloc(*buf, len);
		if (!n)
			return -1;
		*buf = n;
		*cap = len;
	}
	return RAND_bytes(*buf, (int)len) == 1 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* the userspace peer (a thread) */

struct side {               /* what one side saw: byte counts and sha256 of each direction */
	EVP_MD_CTX *sent_md, *recv_md;
	uint64_t sent, recvd;
	uint8_t sent_hash[32], recv_hash[32];
	char err[256];
};

struct peer {
	int fd, ctl;
	bool server, early;
	SSL_CTX *ctx;
	const size_t *sizes;
	size_t nsizes;
	struct side s;
};

static int side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->sent_md = EVP_MD_CTX_new();
	s->recv_md = EVP_MD_CTX_new();
	return s->sent_md && s->recv_md && EVP_DigestInit_ex(s->sent_md, EVP_sha256(), NULL) &&
	       EVP_DigestInit_ex(s->recv_md, EVP_sha256(), NULL) ? 0 : -1;
}

static void side_finish(struct side *s)
{
	if (!s->sent_md || !s->recv_md)
		return;
	EVP_DigestFinal_ex(s->sent_md, s->sent_hash, NULL);
	EVP_DigestFinal_ex(s->recv_md, s->recv_hash, NULL);
	EVP_MD_CTX_free(s->sent_md);
	EVP_MD_CTX_free(s->recv_md);
	s->sent_md = s->recv_md = NULL;
}

/* Wait for one byte on the control socket (the other side's "go"); 0 when it came. */
static int ctl_wait(int ctl, char expect)
{
	struct pollfd p = { .fd = ctl, .events = POLLIN };
	char c;
	if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1 || read(ctl, &c, 1) != 1)
		return -1;
	return c == expect ? 0 : -1;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct side *s = &p->s;
	uint8_t *buf = NULL, *rbuf = NULL;
	size_t cap = 0, rcap = 0;
	SSL *ssl = SSL_new(p->ctx);
	if (!ssl || !SSL_set_fd(ssl, p->fd)) {
		seterr(s->err, sizeof(s->err), "peer: SSL_new failed");
		goto out;
	}
	int r = p->server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (r != 1) {
		seterr(s->err, sizeof(s->err), "peer handshake: %s", ssl_errstr(ssl, r));
		goto out;
	}
	if (!p->early && ctl_wait(p->ctl, 'I')) {
		seterr(s->err, sizeof(s->err), "peer: the kTLS side never said it had installed");
		goto out;
	}
	for (size_t i = 0; i < p->nsizes; i++) {
		size_t n = p->sizes[i];
		if (fill_random(&buf, &cap, n) || ssl_write_all(ssl, buf, n, s->err, sizeof(s->err)))
			goto out;
		EVP_DigestUpdate(s->sent_md, buf, n);
		s->sent += n;
		if (p->early && i == 0 && write(p->ctl, "S", 1) != 1)
			goto out;
		if (n > rcap && !(rbuf = realloc(rbuf, rcap = n)))
			goto out;
		if (ssl_read_exact(ssl, rbuf, n, s->err, sizeof(s->err)))
			goto out;
		EVP_DigestUpdate(s->recv_md, rbuf, n);
		s->recvd += n;
	}
	/* The kTLS side's alert record must read as a clean close_notify; then answer with ours. */
	if (ssl_expect_close(ssl, s->err, sizeof(s->err)))
		goto out;
	if ((r = SSL_shutdown(ssl)) != 1)
		seterr(s->err, sizeof(s->err), "peer SSL_shutdown returned %d: %s", r, ssl_errstr(ssl, r));
out:
	if (s->err[0])
		shutdown(p->fd, SHUT_RDWR); /* unblock the kTLS side */
	SSL_free(ssl);
	free(buf);
	free(rbuf);
	return NULL;
}

/* ---------------------------------------------------------------------------------------------------- */
/* one case of the matrix */

struct counts { unsigned tx, rx; };  /* installs this run made, to check tls_stat against */

struct case_result {
	enum { R_PASS, R_FAIL } status;
	char why[256];
	char note[200];
	unsigned installed;
	struct hs_log hs;
	double secs;
};

/* A connected loopback pair: *a is the connecting end, *b the accepted one. */
static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*a = *b = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		goto fail;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*b < 0)
		goto fail;
	close(l);
	set_timeouts(*a);
	set_timeouts(*b);
	return 0;
fail:
	if (l >= 0)
		close(l);
	if (*a >= 0)
		close(*a);
	*a = -1;
	return -1;
}

static void run_case(int version, const struct suite *su, enum mode mode, const size_t *sizes, size_t nsizes,
		     struct counts *cnt, struct case_result *r)
{
	static const size_t early_sizes[] = { 16385, 5, 65536 }; /* round 0 must fit in the socket buffers */
	char *why = r->why;
	size_t wl = sizeof(r->why);
	bool ktls_server = mode != MODE_CLIENT;
	int cfd = -1, sfd = -1, kfd = -1, ctl[2] = { -1, -1 };
	pthread_t th;
	struct peer p = { .server = !ktls_server, .early = mode == MODE_EARLY };
	struct side k;
	SSL_CTX *kctx = NULL;
	SSL *ssl = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0;
	bool started = false, rx_kernel = false, tx_kernel = false;
	double t0 = now_s();

	memset(r, 0, sizeof(*r));
	if (mode == MODE_EARLY) {
		sizes = early_sizes;
		nsizes = sizeof(early_sizes) / sizeof(early_sizes[0]);
	}
	p.sizes = sizes;
	p.nsizes = nsizes;
	if (side_init(&k) || side_init(&p.s)) {
		seterr(why, wl, "out of memory");
		goto out;
	}
	if (tcp_pair(&cfd, &sfd)) {
		seterr(why, wl, "loopback TCP connection: %s", strerror(errno));
		goto out;
	}
	kfd = ktls_server ? sfd : cfd;
	p.fd = ktls_server ? cfd : sfd;
	kctx = make_ctx(ktls_server, true, version, su);
	p.ctx = make_ctx(!ktls_server, false, version, su);
	if (!kctx || !p.ctx || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl)) {
		seterr(why, wl, "SSL_CTX setup failed: %s", ERR_error_string(ERR_get_error(), NULL));
		goto out;
	}
	p.ctl = ctl[1];
	if (pthread_create(&th, NULL, peer_main, &p)) {
		seterr(why, wl, "pthread_create failed");
		goto out;
	}
	started = true;

	ssl = SSL_new(kctx);
	if (!ssl || !SSL_set_fd(ssl, kfd)) {
		seterr(why, wl, "SSL_new failed");
		goto out;
	}
	int ret = ktls_server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (ret != 1) {
		seterr(why, wl, "handshake: %s", ssl_errstr(ssl, ret));
		goto out;
	}
	const struct ktls_cipher *kc = ktls_cipher_by_ssl(SSL_get_current_cipher(ssl));
	if (SSL_version(ssl) != version || !kc || strcmp(kc->name, su->name)) {
		seterr(why, wl, "negotiated %s %s, not the %s %s this case is for", SSL_get_version(ssl),
		       SSL_get_cipher_name(ssl), vname(version), su->name);
		goto out;
	}
	if (mode == MODE_EARLY) {
		/* The peer has sent its first round; make sure it sits in our socket queue before install. */
		int queued = 0;
		struct pollfd pf = { .fd = kfd, .events = POLLIN };
		if (ctl_wait(ctl[0], 'S') || poll(&pf, 1, 5000) != 1 || ioctl(kfd, FIONREAD, &queued) || !queued) {
			seterr(why, wl, "the peer's early data never reached the socket queue");
			goto out;
		}
		snprintf(r->note, sizeof(r->note), "queued-before-install=%d", queued);
	}

	struct tls_stat before, after;
	struct ktls_result res;
	tls_stat_read(&before);
	int irc = ktls_install(ssl, kfd, KTLS_TX | KTLS_RX, &res);
	ktls_state_wipe(ssl, false);
	tls_stat_read(&after);
	r->installed = res.installed;
	tx_kernel = res.installed & KTLS_TX;
	rx_kernel = res.installed & KTLS_RX;
	cnt->tx += tx_kernel;
	cnt->rx += rx_kernel;
	if (irc == 0 && res.installed != (KTLS_TX | KTLS_RX)) {
		seterr(why, wl, "ktls_install returned 0 but installed only %s", dirs_str(res.installed));
		goto out;
	}
	if (irc != 0 && !res.why[0]) {
		seterr(why, wl, "ktls_install failed (installed %s) without saying why", dirs_str(res.installed));
		goto out;
	}
	if (irc != 0 && !(mode == MODE_EARLY && res.installed == KTLS_TX)) {
		seterr(why, wl, "ktls_install: installed %s: %s (errno %d)", dirs_str(res.installed), res.why,
		       res.err);
		goto out;
	}
	if (irc != 0) { /* early data that OpenSSL already consumed: RX refused with a reason is correct */
		size_t l = strlen(r->note);
		snprintf(r->note + l, sizeof(r->note) - l, " rx-refused=\"%s\"", res.why);
	}
	if (!after.present || after.curr_tx_sw != before.curr_tx_sw + tx_kernel ||
	    after.curr_rx_sw != before.curr_rx_sw + rx_kernel) {
		seterr(why, wl, "tls_stat TlsCurrTxSw %lld->%lld TlsCurrRxSw %lld->%lld after installing %s",
		       before.curr_tx_sw, after.curr_tx_sw, before.curr_rx_sw, after.curr_rx_sw,
		       dirs_str(res.installed));
		goto out;
	}
	if (mode != MODE_EARLY && write(ctl[0], "I", 1) != 1) {
		seterr(why, wl, "control socket: %s", strerror(errno));
		goto out;
	}

	/* The rounds: the peer sends first, we read it all, then answer with as many bytes of our own. */
	for (size_t i = 0; i < nsizes; i++) {
		size_t n = sizes[i];
		if (fill_random(&buf, &cap, n)) {
			seterr(why, wl, "out of memory / RAND_bytes");
			goto out;
		}
		if (rx_kernel ? read_exact(kfd, buf, n, ktls_server, &r->hs, why, wl)
			      : ssl_read_exact(ssl, buf, n, why, wl))
			goto out;
		EVP_DigestUpdate(k.recv_md, buf, n);
		k.recvd += n;
		if (fill_random(&buf, &cap, n) || write_all(kfd, buf, n, why, wl))
			goto out;
		EVP_DigestUpdate(k.sent_md, buf, n);
		k.sent += n;
	}
	if (send_close_notify(kfd, why, wl))
		goto out;
	if (rx_kernel ? expect_close_notify(kfd, why, wl) : ssl_expect_close(ssl, why, wl))
		goto out;
	/* OpenSSL's server (our peer) sends 2 tickets by default right after the handshake: in TLS 1.3 they
	 * arrive after the client's install and must come up whole, as handshake records, through kTLS RX. */
	int want_tickets = version == TLS1_3_VERSION && mode == MODE_CLIENT ? 2 : 0;
	if (hs_count(&r->hs, 4) != want_tickets || r->hs.overflow)
		seterr(why, wl, "%d NewSessionTicket message(s) (%zu bytes) came up through kTLS RX, expected %d",
		       hs_count(&r->hs, 4), r->hs.len, want_tickets);
out:
	if (why[0] && kfd >= 0)
		shutdown(kfd, SHUT_RDWR); /* unblock the peer */
	if (ctl[0] >= 0)
		close(ctl[0]); /* a peer still waiting for "go" gives up */
	if (started)
		pthread_join(th, NULL);
	side_finish(&k);
	side_finish(&p.s);
	if (!why[0] && p.s.err[0])
		seterr(why, wl, "%s", p.s.err);
	if (!why[0] && (k.recvd != p.s.sent || p.s.recvd != k.sent))
		seterr(why, wl, "byte counts differ: peer sent %llu, kTLS got %llu; kTLS sent %llu, peer got %llu",
		       (unsigned long long)p.s.sent, (unsigned long long)k.recvd, (unsigned long long)k.sent,
		       (unsigned long long)p.s.recvd);
	if (!why[0] && memcmp(k.recv_hash, p.s.sent_hash, 32))
		seterr(why, wl, "sha256 of what the kTLS side read differs from what the peer sent");
	if (!why[0] && memcmp(p.s.recv_hash, k.sent_hash, 32))
		seterr(why, wl, "sha256 of what the peer read differs from what the kTLS side wrote");
	r->status = why[0] ? R_FAIL : R_PASS;
	r->secs = now_s() - t0;
	snprintf(r->note + strlen(r->note), sizeof(r->note) - strlen(r->note), "%sin=%llu out=%llu",
		 r->note[0] ? " " : "", (unsigned long long)k.recvd, (unsigned long long)k.sent);
	SSL_free(ssl);
	SSL_CTX_free(kctx);
	SSL_CTX_free(p.ctx);
	if (ctl[1] >= 0)
		close(ctl[1]);
	if (cfd >= 0)
		close(cfd);
	if (sfd >= 0)
		close(sfd);
	free(buf);
}

/* ---------------------------------------------------------------------------------------------------- */
/* serve / connect: the kTLS side against an external peer (openssl s_client / s_server) */

struct opts {
	int versions[2];
	size_t nversions;
	const char *cipher;      /* NULL = all */
	size_t sizes[16];
	size_t nsizes;
	bool cases[3];
	bool require;
	int serve_port, connect_port;
	long long expect_bytes;
	const char *send_file, *recv_out, *cert, *key;
};

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf = NULL;
	if (fd < 0 || fstat(fd, &st))
		goto out;
	*len = (size_t)st.st_size;
	if (!(buf = malloc(*len ? *len : 1)))
		goto out;
	for (size_t off = 0; off < *len;) {
		ssize_t n = read(fd, buf + off, *len - off);
		if (n <= 0) {
			free(buf);
			buf = NULL;
			goto out;
		}
		off += (size_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

static int external(const struct opts *o)
{
	bool server = o->serve_port > 0;
	int port = server ? o->serve_port : o->connect_port;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)port) };
	char why[256] = "";
	size_t wl = sizeof(why), out_len = 0;
	uint8_t *out = NULL, *in = NULL, hash[32];
	char hex[65];
	int fd = -1, rc = 1;
	struct hs_log *hs = NULL;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	const struct suite *su = NULL;
	int version = o->nversions == 1 ? o->versions[0] : 0;

	for (size_t i = 0; o->cipher && i < NSUITES; i++)
		if (!strcmp(suites[i].name, o->cipher))
			su = &suites[i];
	if (su && !version) {
		fprintf(stderr, "ktls_selftest: --cipher in serve/connect mode needs one --tls version\n");
		return 2;
	}
	if (!o->send_file || !(out = slurp(o->send_file, &out_len))) {
		fprintf(stderr, "ktls_selftest: cannot read --send-file %s: %s\n", o->send_file ? o->send_file : "(none)",
			strerror(errno));
		return 1;
	}
	if (!(ctx = make_ctx(server, true, version, su))) {
		seterr(why, wl, "SSL_CTX setup failed: %s", ERR_error_string(ERR_get_error(), NULL));
		goto out;
	}
	if (server) {
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
		if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1)) {
			seterr(why, wl, "listen on 127.0.0.1:%d: %s", port, strerror(errno));
			goto out;
		}
		printf("LISTENING 127.0.0.1:%d\n", port);
		fflush(stdout);
		fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		close(l);
	} else {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 || set_timeouts(fd)) {
		seterr(why, wl, "%s 127.0.0.1:%d: %s", server ? "accept on" : "connect to", port, strerror(errno));
		goto out;
	}
	ssl = SSL_new(ctx);
	int r = ssl && SSL_set_fd(ssl, fd) ? (server ? SSL_accept(ssl) : SSL_connect(ssl)) : -1;
	if (r != 1) {
		seterr(why, wl, "handshake: %s", ssl ? ssl_errstr(ssl, r) : "SSL_new failed");
		goto out;
	}
	const struct ktls_cipher *kc = ktls_cipher_by_ssl(SSL_get_current_cipher(ssl));
	printf("NEGOTIATED %s %s (%s)\n", vname(SSL_version(ssl)), kc ? kc->name : "none",
	       SSL_get_cipher_name(ssl));
	struct ktls_result res;
	struct tls_stat st0, st1, st2;
	tls_stat_read(&st0);
	int irc = ktls_install(ssl, fd, KTLS_TX | KTLS_RX, &res);
	ktls_state_wipe(ssl, false);
	tls_stat_read(&st1);
	printf("INSTALLED %s%s%s\n", dirs_str(res.installed), irc ? ": " : "", irc ? res.why : "");
	if (irc) {
		seterr(why, wl, "ktls_install: %s", res.why);
		goto out;
	}
	fflush(stdout);

	/* The peer speaks first: read exactly what it sends, then answer with the file, then close_notify. */
	size_t want = (size_t)o->expect_bytes;
	if (!(in = malloc(want ? want : 1)) || !(hs = calloc(1, sizeof(*hs))) ||
	    read_exact(fd, in, want, false, hs, why, wl))
		goto out;
	SHA256(in, want, hash);
	hex32(hash, hex);
	printf("RECEIVED bytes=%zu sha256=%s new-session-tickets=%d\n", want, hex, hs_count(hs, 4));
	if (o->recv_out) {
		FILE *f = fopen(o->recv_out, "w");
		if (!f || fwrite(in, 1, want, f) != want || fclose(f)) {
			seterr(why, wl, "writing %s: %s", o->recv_out, strerror(errno));
			goto out;
		}
	}
	if (write_all(fd, out, out_len, why, wl) || send_close_notify(fd, why, wl))
		goto out;
	SHA256(out, out_len, hash);
	hex32(hash, hex);
	printf("SENT bytes=%zu sha256=%s\n", out_len, hex);
	/* Whether the tool answers with its own close_notify is the tool's business: report, don't judge. */
	char cwhy[256] = "";
	printf("PEER_CLOSE_NOTIFY %s\n", expect_close_notify(fd, cwhy, sizeof(cwhy)) ? cwhy : "yes");
	/* This connection's footprint in the kernel's counters: +1 install each way, TlsCurr* +1 while
	 * open and back after close (the probe's own installs happened before st0, so they don't count). */
	close(fd);
	fd = -1;
	tls_stat_read(&st2);
	bool ok = st2.tx_sw - st0.tx_sw == 1 && st2.rx_sw - st0.rx_sw == 1 && st1.curr_tx_sw == st0.curr_tx_sw + 1 &&
		  st1.curr_rx_sw == st0.curr_rx_sw + 1 && st2.curr_tx_sw == st0.curr_tx_sw &&
		  st2.curr_rx_sw == st0.curr_rx_sw && st2.decrypt_err == st0.decrypt_err;
	printf("TLS_STAT %s TlsTxSw +%lld TlsRxSw +%lld TlsCurrTxSw %lld->%lld->%lld TlsCurrRxSw %lld->%lld->%lld "
	       "TlsDecryptError +%lld\n", ok ? "OK" : "FAIL", st2.tx_sw - st0.tx_sw, st2.rx_sw - st0.rx_sw,
	       st0.curr_tx_sw, st1.curr_tx_sw, st2.curr_tx_sw, st0.curr_rx_sw, st1.curr_rx_sw, st2.curr_rx_sw,
	       st2.decrypt_err - st0.decrypt_err);
	if (!ok)
		seterr(why, wl, "tls_stat did not count this connection as expected");
	else
		rc = 0;
out:
	if (why[0])
		printf("FAIL %s\n", why);
	else
		printf("PASS\n");
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	free(hs);
	return rc;
}

/* ---------------------------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: ktls_selftest [--tls 1.2|1.3|all] [--cipher NAME|all] [--bytes N[,N...]]\n"
		"                     [--cases server,early,client] [--require-ktls]\n"
		"       ktls_selftest --serve PORT   --expect-bytes N --send-file F [--recv-out F] [--tls V] [--cipher C]\n"
		"       ktls_selftest --connect PORT --expect-bytes N --send-file F [--recv-out F] [--tls V] [--cipher C]\n"
		"  [--cert F --key F] (default: a fresh ECDSA P-256 self-signed certificate)\n"
		"ciphers: AES-128-GCM AES-256-GCM CHACHA20-POLY1305. Without kTLS in the kernel the matrix mode\n"
		"prints UNAVAILABLE and exits 0, or 1 with --require-ktls.\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "tls", 1, 0, 't' }, { "cipher", 1, 0, 'c' }, { "bytes", 1, 0, 'b' }, { "cases", 1, 0, 'C' },
		{ "require-ktls", 0, 0, 'R' }, { "serve", 1, 0, 's' }, { "connect", 1, 0, 'k' },
		{ "expect-bytes", 1, 0, 'e' }, { "send-file", 1, 0, 'f' }, { "recv-out", 1, 0, 'o' },
		{ "cert", 1, 0, 'x' }, { "key", 1, 0, 'y' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
	};
	int c;
	char *s, *tok, *save;
	*o = (struct opts){ .versions = { TLS1_2_VERSION, TLS1_3_VERSION }, .nversions = 2,
			    .sizes = { 5, 16385, 3000017 }, .nsizes = 3, .cases = { true, true, true } };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!strcmp(optarg, "1.2")) o->versions[0] = TLS1_2_VERSION, o->nversions = 1;
			else if (!strcmp(optarg, "1.3")) o->versions[0] = TLS1_3_VERSION, o->nversions = 1;
			else if (strcmp(optarg, "all")) usage();
			break;
		case 'c':
			o->cipher = strcmp(optarg, "all") ? optarg : NULL;
			if (o->cipher && !strcasecmp(o->cipher, "chacha20"))
				o->cipher = "CHACHA20-POLY1305";
			if (o->cipher) {
				bool known = false;
				for (size_t i = 0; i < NSUITES; i++)
					known |= !strcasecmp(suites[i].name, o->cipher) && (o->cipher = suites[i].name);
				if (!known)
					usage();
			}
			break;
		case 'b':
			o->nsizes = 0;
			for (s = optarg; (tok = strtok_r(s, ",", &save)); s = NULL) {
				char *end;
				unsigned long long v = strtoull(tok, &end, 10);
				if (*end || !v || v > (1ull << 31) || o->nsizes == 16)
					usage();
				o->sizes[o->nsizes++] = v;
			}
			break;
		case 'C':
			memset(o->cases, 0, sizeof(o->cases));
			for (s = optarg; (tok = strtok_r(s, ",", &save)); s = NULL) {
				int i = !strcmp(tok, "server") ? 0 : !strcmp(tok, "early") ? 1 : !strcmp(tok, "client") ? 2 : -1;
				if (i < 0)
					usage();
				o->cases[i] = true;
			}
			break;
		case 'R': o->require = true; break;
		case 's': o->serve_port = atoi(optarg); break;
		case 'k': o->connect_port = atoi(optarg); break;
		case 'e': o->expect_bytes = atoll(optarg); break;
		case 'f': o->send_file = optarg; break;
		case 'o': o->recv_out = optarg; break;
		case 'x': o->cert = optarg; break;
		case 'y': o->key = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || (o->serve_port && o->connect_port) || o->expect_bytes < 0 ||
	    !!o->cert != !!o->key)
		usage();
}

/* "AES-128-GCM,AES-256-GCM" for the bits set in mask. */
static void cipher_list(unsigned mask, char *out, size_t len)
{
	out[0] = 0;
	for (size_t i = 0; i < ktls_cipher_count; i++)
		if (mask & (1u << i))
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? "," : "", ktls_ciphers[i].name);
	if (!out[0])
		snprintf(out, len, "none");
}

int main(int argc, char **argv)
{
	struct opts o;
	struct ktls_caps caps;
	parse(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (o.cert ? load_cert(o.cert, o.key) : make_cert()) {
		fprintf(stderr, "ktls_selftest: certificate: %s\n", ERR_error_string(ERR_get_error(), NULL));
		return 1;
	}
	if (ktls_probe(&caps) != 0 || !caps.ulp) {
		/* No kTLS at all (no CONFIG_TLS, or the module is missing): say so plainly. */
		printf("UNAVAILABLE kTLS on kernel %s: %s (errno %d: %s)\n", caps.release,
		       caps.why[0] ? caps.why : "TCP_ULP \"tls\" refused", caps.ulp_err, strerror(caps.ulp_err));
		return o.require || o.serve_port || o.connect_port ? 1 : 0;
	}
	char l[4][160];
	cipher_list(caps.tx[0], l[0], sizeof(l[0]));
	cipher_list(caps.rx[0], l[1], sizeof(l[1]));
	cipher_list(caps.tx[1], l[2], sizeof(l[2]));
	cipher_list(caps.rx[1], l[3], sizeof(l[3]));
	printf("KERNEL %s tls1.2 tx=%s rx=%s tls1.3 tx=%s rx=%s\n", caps.release, l[0], l[1], l[2], l[3]);
	if (o.serve_port || o.connect_port)
		return external(&o);

	struct tls_stat base, end;
	struct counts cnt = { 0, 0 };
	int pass = 0, fail = 0, skip = 0;
	tls_stat_read(&base); /* after the probe: its own installs are not ours to count */
	if (!base.present) {
		printf("FAIL /proc/net/tls_stat is missing although TCP_ULP \"tls\" works\n");
		return 1;
	}
	for (size_t v = 0; v < o.nversions; v++) {
		int vi = o.versions[v] == TLS1_3_VERSION;
		for (size_t si = 0; si < NSUITES; si++) {
			const struct suite *su = &suites[si];
			if (o.cipher && strcmp(o.cipher, su->name))
				continue;
			int idx = cipher_index(su->name);
			for (int m = 0; m < 3; m++) {
				if (!o.cases[m])
					continue;
				const char *missing = idx < 0 ? "tlsoff has no kernel row for it"
					: !(caps.tx[vi] & (1u << idx)) ? "the kernel refuses it for TX"
					: !(caps.rx[vi] & (1u << idx)) ? "the kernel refuses it for RX" : NULL;
				if (missing) {
					printf("SKIP %s %-17s %-6s %s (kernel %s; needs %s)\n", vname(o.versions[v]),
					       su->name, mode_names[m], missing, caps.release,
					       idx < 0 ? "?" : ktls_ciphers[idx].min_kernel);
					skip++;
					continue;
				}
				struct case_result r;
				run_case(o.versions[v], su, (enum mode)m, o.sizes, o.nsizes, &cnt, &r);
				printf("%s %s %-17s %-6s installed=%s %s tickets=%d %.2fs%s%s\n",
				       r.status == R_PASS ? "PASS" : "FAIL", vname(o.versions[v]), su->name,
				       mode_names[m], dirs_str(r.installed), r.note, hs_count(&r.hs, 4), r.secs,
				       r.status == R_PASS ? "" : " reason: ", r.status == R_PASS ? "" : r.why);
				r.status == R_PASS ? pass++ : fail++;
			}
		}
	}

	/* Every install this run made must show in the kernel's counters, and nothing may stay open. */
	tls_stat_read(&end);
	bool ok = end.tx_sw - base.tx_sw == cnt.tx && end.rx_sw - base.rx_sw == cnt.rx &&
		  end.decrypt_err == base.decrypt_err && end.curr_tx_sw == base.curr_tx_sw &&
		  end.curr_rx_sw == base.curr_rx_sw;
	printf("TLS_STAT %s TlsTxSw +%lld (installed %u) TlsRxSw +%lld (installed %u) TlsDecryptError +%lld "
	       "TlsCurrTxSw %lld->%lld TlsCurrRxSw %lld->%lld\n", ok ? "OK" : "FAIL", end.tx_sw - base.tx_sw,
	       cnt.tx, end.rx_sw - base.rx_sw, cnt.rx, end.decrypt_err - base.decrypt_err, base.curr_tx_sw,
	       end.curr_tx_sw, base.curr_rx_sw, end.curr_rx_sw);
	if (!ok)
		fail++;
	printf("SUMMARY pass=%d fail=%d skip=%d\n", pass, fail, skip);
	EVP_PKEY_free(g_key);
	X509_free(g_cert);
	return fail ? 1 : 0;
}
