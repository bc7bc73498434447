/* tls_load — the load generator of the benchmarks (scripts/bench): TLS clients in threads, blocking I/O.
 *
 *   tls_load [OPTIONS] handshakes ADDR:PORT SECONDS   full handshakes, back to back, one per connection;
 *                                                     prints "handshakes N seconds S resumed 0"
 *   tls_load [OPTIONS] rr ADDR:PORT SECONDS           keep-alive GET /bytes/SIZE/1 requests (HTTP/1.1);
 *                                                     prints "requests N seconds S p50_us X p99_us Y"
 *   tls_load [OPTIONS] idle ADDR:PORT N               open N connections (handshake done), print "held N",
 *                                                     hold them until stdin closes
 *   OPTIONS: --conc N (threads, default 1)  --tls 1.2|1.3  --size BYTES (rr, default 1024)
 *            --suites LIST (TLS 1.3, default TLS_AES_128_GCM_SHA256: every terminator measured with the same
 *            cipher, whatever its own preference)
 *
 * Full handshakes are what a load tool must prove it does: no session cache, no tickets, and every
 * connection checked with SSL_session_reused() — a resumed one is counted and makes the exit status 1.
 * Certificates are not verified: the client's cost is not what is measured (the terminator's CPU is).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tlsoff/config.h"

static struct tlsoff_addr addr;
static SSL_CTX *ctx;
static double seconds;
static size_t size = 1024;
static atomic_ulong done, resumed, failed;
static double start;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL *tls_connect(void)
{
	int fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr.ss, addr.len) < 0) {
		close(fd);
		return NULL;
	}
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void tls_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
}

static void *handshakes(void *arg)
{
	(void)arg;
	while (now() - start < seconds) {
		SSL *ssl = tls_connect();
		if (!ssl) {
			atomic_fetch_add(&failed, 1);
			continue;
		}
		if (SSL_session_reused(ssl))
			atomic_fetch_add(&resumed, 1);
		atomic_fetch_add(&done, 1);
		tls_close(ssl);
	}
	return NULL;
}

/* rr: one thread's latencies, microseconds */
struct lat {
	unsigned *v;
	size_t n, cap;
};

static int read_response(SSL *ssl, char *buf, size_t cap)
{
	size_t have = 0, body = 0, hdr = 0;
	for (;;) {
		int r = SSL_read(ssl, buf + have, (int)(cap - have));
		if (r <= 0)
			return -1;
		have += (size_t)r;
		if (!hdr) {
			char *end = memmem(buf, have, "\r\n\r\n", 4);
			if (!end)
				continue;
			hdr = (size_t)(end - buf) + 4;
			char *cl = memmem(buf, hdr, "Content-Length: ", 16);
			if (!cl)
				return -1;
			body = strtoul(cl + 16, NULL, 10);
		}
		if (have >= hdr + body)
			return have == hdr + body ? 0 : -1;
		if (have == cap) {   /* the body does not fit: drop what we have of it */
			body -= have - hdr;
			have = hdr = 0;
			while (body) {
				r = SSL_read(ssl, buf, (int)(body < cap ? body : cap));
				if (r <= 0)
					return -1;
				body -= (size_t)r;
			}
			return 0;
		}
	}
}

static void *rr(void *arg)
{
	struct lat *l = arg;
	char req[128], buf[65536];
	int n = snprintf(req, sizeof(req), "GET /bytes/%zu/1 HTTP/1.1\r\nHost: localhost\r\n\r\n", size);
	SSL *ssl = tls_connect();
	if (!ssl) {
		atomic_fetch_add(&failed, 1);
		return NULL;
	}
	while (now() - start < seconds) {
		double t0 = now();
		if (SSL_write(ssl, req, n) != n || read_response(ssl, buf, sizeof(buf)) < 0) {
			atomic_fetch_add(&failed, 1);
			break;
		}
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 4096;
			l->v = realloc(l->v, l->cap * sizeof(*l->v));
			if (!l->v)
				abort();
		}
		l->v[l->n++] = (unsigned)((now() - t0) * 1e6);
		atomic_fetch_add(&done, 1);
	}
	tls_close(ssl);
	return NULL;
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

static int usage(void)
{
	fprintf(stderr, "usage: tls_load [--conc N] [--tls 1.2|1.3] [--size BYTES] handshakes|rr ADDR:PORT SECONDS\n"
			"       tls_load [--tls 1.2|1.3] idle ADDR:PORT N\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned conc = 1;
	int tls = 0;
	const char *suites = "TLS_AES_128_GCM_SHA256";
	int i = 1;
	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--conc"))
			conc = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--tls"))
			tls = !strcmp(argv[i + 1], "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
		else if (!strcmp(argv[i], "--size"))
			size = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--suites"))
			suites = argv[i + 1];
		else
			return usage();
	}
	if (argc - i != 3 || !conc || conc > 4096)
		return usage();
	const char *mode = argv[i];
	char err[256];
	if (tlsoff_addr_parse(argv[i + 1], true, &addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "tls_load: %s\n", err);
		return 2;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		fprintf(stderr, "tls_load: bad --suites %s\n", suites);
		return 2;
	}
	SSL_CTX_set_min_proto_version(ctx, tls ? tls : TLS1_2_VERSION);
	if (tls)
		SSL_CTX_set_max_proto_version(ctx, tls);
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(mode, "idle")) {
		unsigned long n = strtoul(argv[i + 2], NULL, 10);
		struct rlimit rl = { n + 64, n + 64 };
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "tls_load: cannot raise the open file limit to %lu: %s\n", n + 64, strerror(errno));
		SSL **held = calloc(n, sizeof(*held));
		for (unsigned long k = 0; k < n; k++)
			if (!(held[k] = tls_connect())) {
				fprintf(stderr, "tls_load: connection %lu failed\n", k + 1);
				return 1;
			}
		printf("held %lu\n", n);
		fflush(stdout);
		char c;
		while (read(0, &c, 1) > 0)
			;
		for (unsigned long k = 0; k < n; k++)
			tls_close(held[k]);
		return 0;
	}
	seconds = atof(argv[i + 2]);
	bool hs = !strcmp(mode, "handshakes");
	if (!hs && strcmp(mode, "rr"))
		return usage();
	pthread_t *th = calloc(conc, sizeof(*th));
	struct lat *lats = calloc(conc, sizeof(*lats));
	start = now();
	for (unsigned k = 0; k < conc; k++)
		pthread_create(&th[k], NULL, hs ? handshakes : rr, &lats[k]);
	for (unsigned k = 0; k < conc; k++)
		pthread_join(th[k], NULL);
	double took = now() - start;
	if (hs) {
		printf("handshakes %lu seconds %.3f resumed %lu failed %lu\n", atomic_load(&done), took,
		       atomic_load(&resumed), atomic_load(&failed));
		return atomic_load(&resumed) || !atomic_load(&done) ? 1 : 0;
	}
	size_t total = 0;
	for (unsigned k = 0; k < conc; k++)
		total += lats[k].n;
	unsigned *all = malloc((total ? total : 1) * sizeof(*all));
	size_t at = 0;
	for (unsigned k = 0; k < conc; k++) {
		if (lats[k].n)
			memcpy(all + at, lats[k].v, lats[k].n * sizeof(*all));
		at += lats[k].n;
	}
	qsort(all, total, sizeof(*all), cmp_unsigned);
	printf("requests %zu seconds %.3f p50_us %u p99_us %u failed %lu\n", total, took,
	       total ? all[total / 2] : 0, total ? all[total * 99 / 100] : 0, atomic_load(&failed));
	return total && !atomic_load(&failed) ? 0 : 1;
}
