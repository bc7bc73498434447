/* ktls_sockmap_probe — what this kernel does when a kTLS socket meets a sockmap, in both orders, plus a
 * functional check that tlsoff's sockmap splice moves bytes on this kernel.
 *
 * Every step prints one line, the errno the kernel returned (OK = success):
 *   PROBE <case> <step> <OK|ERRNAME> <errno> <message>
 * Cases (each on a fresh loopback TCP connection; "c" = client end):
 *   splice            two connections joined by sockmap_splice_pair; 1 MiB each way must arrive intact
 *   baseline          TCP_ULP "tls" + TLS_TX + TLS_RX on a plain socket: does this kernel have kTLS?
 *   a_ulp_only        TCP_ULP "tls" (no keys), then add to a SOCKMAP
 *   a_sockmap         TCP_ULP + TLS_TX, then add to a SOCKMAP with no program
 *   a_sockhash        TCP_ULP + TLS_TX, then add to a SOCKHASH with no program
 *   a_verdict         TCP_ULP + TLS_TX, then add to a SOCKHASH with tlsoff's stream verdict attached
 *   a_library         TCP_ULP + TLS_TX, then sockmap_splice_pair() (the library checks in user space)
 *   b_sockmap         add to a SOCKMAP with no program, then TCP_ULP, TLS_TX, TLS_RX
 *   b_verdict         sockmap_splice_pair() (verdict live), then TCP_ULP, TLS_TX, TLS_RX. Only with
 *                     --verdict-then-ktls: on Debian's 7.2.13 the close() that follows (after unpair)
 *                     never returns and the whole guest locks up (found by this probe; 6.1 is fine)
 *   b_removed         add to a SOCKMAP, delete it again, then TCP_ULP, TLS_TX (is the refusal sticky?)
 * Dummy AES-128-GCM TLS 1.2 keys: the kernel only checks their shape. Exit 0 when every step ran (the
 * verdict on the results is the test script's), 1 when the probe itself could not run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>
#include <bpf/bpf.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sockmap_splice.skel.h"
#include "tlsoff/sockmap_splice.h"


struct conn {
	int c, s;
};

static void die(const char *what)
{
	fprintf(stderr, "ktls_sockmap_probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* One established loopback connection. */
static struct conn tcp_conn(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	struct conn k;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		die("listen on 127.0.0.1");
	if ((k.c = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(k.c, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect to 127.0.0.1");
	if ((k.s = accept(l, NULL, NULL)) < 0)
		die("accept");
	close(l);
	return k;
}

static void conn_close(struct conn k)
{
	close(k.c);
	close(k.s);
}

/* Print one step's outcome; returns the errno (0 = OK). */
static int report(const char *cas, const char *step, int rc, int err)
{
	if (rc == 0)
		printf("PROBE %s %s OK 0 -\n", cas, step);
	else
		printf("PROBE %s %s %s %d %s\n", cas, step, strerrorname_np(err) ? strerrorname_np(err) : "E?", err,
		       strerror(err));
	fflush(stdout);
	return rc == 0 ? 0 : err;
}

static int ulp(const char *cas, int fd)
{
	int rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls");
	return report(cas, "tcp_ulp_tls", rc, errno);
}

static int tls_key(const char *cas, int fd, int dir)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_2_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128 },
	};
	int rc;

	memset(ci.key, 0x42, sizeof ci.key);
	memset(ci.salt, 0x17, sizeof ci.salt);
	rc = setsockopt(fd, SOL_TLS, dir, &ci, sizeof ci);
	return report(cas, dir == TLS_TX ? "tls_tx" : "tls_rx", rc, errno);
}

static int map_add(const char *cas, const char *step, int map_fd, uint32_t key_or_0, int fd)
{
	uint64_t cookie;
	uint32_t v = fd;
	int rc;

	if (key_or_0 == UINT32_MAX) { /* sockhash: key = cookie */
		sockmap_splice_cookie(fd, &cookie);
		rc = bpf_map_update_elem(map_fd, &cookie, &v, BPF_ANY);
	} else {
		rc = bpf_map_update_elem(map_fd, &key_or_0, &v, BPF_ANY);
	}
	return report(cas, step, rc ? -1 : 0, errno);
}

static int new_map(enum bpf_map_type type)
{
	int fd = bpf_map_create(type, NULL, type == BPF_MAP_TYPE_SOCKHASH ? 8 : 4, 4, 16, NULL);
	if (fd < 0)
		die(type == BPF_MAP_TYPE_SOCKHASH ? "create a SOCKHASH (needs CAP_BPF + CAP_NET_ADMIN)"
						  : "create a SOCKMAP (needs CAP_BPF + CAP_NET_ADMIN)");
	return fd;
}

static int xfer(int from, int to, size_t n)
{
	unsigned char *src = malloc(n), *dst = malloc(n), h1[32], h2[32];
	size_t got = 0, sent = 0;
	int ok;

	time_t deadline = time(NULL) + 30; /* a kernel that does not forward must fail, not hang */

	RAND_bytes(src, n);
	/* Send and drain in turns, non-blocking, so neither end waits on the other. */
	while (sent < n && time(NULL) < deadline) {
		ssize_t w = send(from, src + sent, n - sent, MSG_DONTWAIT);
		if (w > 0)
			sent += w;
		else if (w < 0 && errno != EAGAIN)
			break;
		else
			usleep(1000);
		while (got < n) {
			ssize_t r = recv(to, dst + got, n - got, MSG_DONTWAIT);
			if (r <= 0)
				break;
			got += r;
		}
	}
	while (got < n && sent == n) {
		struct timeval tv = { 10, 0 };
		setsockopt(to, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		ssize_t r = recv(to, dst + got, n - got, 0);
		if (r <= 0)
			break;
		got += r;
	}
	EVP_Digest(src, n, h1, NULL, EVP_sha256(), NULL);
	EVP_Digest(dst, got, h2, NULL, EVP_sha256(), NULL);
	ok = got == n && !memcmp(h1, h2, 32);
	printf("XFER %zu bytes sent, %zu received, sha256 %s\n", n, got, ok ? "equal" : "DIFFERENT");
	free(src);
	free(dst);
	return ok ? 0 : -1;
}

/* c1 -> s1 =redirect=> c2 -> s2, and back: what tlsoff's relay legs do. */
static void case_splice(struct sockmap_splice_handle *h)
{
	struct conn k1 = tcp_conn(), k2 = tcp_conn();
	int rc = sockmap_splice_pair(h, k1.s, k2.c);
	uint64_t in = 0, out = 0;

	if (report("splice", "pair", rc, -rc) == 0) {
		report("splice", "data_a_to_b", xfer(k1.c, k2.s, 1 << 20), EIO);
		report("splice", "data_b_to_a", xfer(k2.s, k1.c, 1 << 20), EIO);
		if (sockmap_splice_bytes(h, k1.s, &in, &out) == 0)
			printf("COUNTERS in=%llu out=%llu\n", (unsigned long long)in, (unsigned long long)out);
		report("splice", "counters", in == 1 << 20 && out == 1 << 20 ? 0 : -1, EIO);
		sockmap_splice_unpair(h, k1.s, k2.c);
	} else {
		printf("# %s\n", sockmap_splice_error(h));
	}
	conn_close(k1);
	conn_close(k2);
}

int main(int argc, char **argv)
{
	int verdict_then_ktls = argc > 1 && !strcmp(argv[1], "--verdict-then-ktls");
	char err[512];
	struct sockmap_splice_handle *h = sockmap_splice_open(0, err, sizeof err);
	struct sockmap_splice *skel;
	struct conn k;
	int m, rc;

	if (!h) {
		fprintf(stderr, "ktls_sockmap_probe: %s\n", err);
		return 1;
	}
	/* A second copy of the object, to reach its verdict-attached sockhash directly (the library
	 * would refuse a kTLS socket in user space before the kernel is asked). */
	struct bpf_program *verdict = NULL;
	skel = sockmap_splice__open();
	if (skel)
		verdict = sockmap_splice_pick_verdict(skel);   /* the loader's choice between the two verdicts */
	if (!skel || sockmap_splice__load(skel) ||
	    bpf_prog_attach(bpf_program__fd(verdict), bpf_map__fd(skel->maps.splice_sources),
			    BPF_SK_SKB_STREAM_VERDICT, 0))
		die("load and attach a second copy of the sockmap_splice verdict");

	case_splice(h);

	k = tcp_conn();
	rc = ulp("baseline", k.c);
	if (rc == 0) {
		tls_key("baseline", k.c, TLS_TX);
		tls_key("baseline", k.c, TLS_RX);
	}
	conn_close(k);
	if (rc) {
		printf("NO_KTLS TCP_ULP \"tls\" fails with %s: this kernel has no kTLS\n", strerrorname_np(rc));
		return 0;
	}

	/* (a) kTLS first, then the sockmap. */
	k = tcp_conn();
	ulp("a_ulp_only", k.c);
	map_add("a_ulp_only", "sockmap_add", m = new_map(BPF_MAP_TYPE_SOCKMAP), 0, k.c);
	close(m);
	conn_close(k);

	k = tcp_conn();
	ulp("a_sockmap", k.c);
	tls_key("a_sockmap", k.c, TLS_TX);
	map_add("a_sockmap", "sockmap_add", m = new_map(BPF_MAP_TYPE_SOCKMAP), 0, k.c);
	close(m);
	conn_close(k);

	k = tcp_conn();
	ulp("a_sockhash", k.c);
	tls_key("a_sockhash", k.c, TLS_TX);
	map_add("a_sockhash", "sockhash_add", m = new_map(BPF_MAP_TYPE_SOCKHASH), UINT32_MAX, k.c);
	close(m);
	conn_close(k);

	k = tcp_conn();
	ulp("a_verdict", k.c);
	tls_key("a_verdict", k.c, TLS_TX);
	map_add("a_verdict", "sockhash_add", bpf_map__fd(skel->maps.splice_sources), UINT32_MAX, k.c);
	conn_close(k);

	k = tcp_conn();
	ulp("a_library", k.c);
	tls_key("a_library", k.c, TLS_TX);
	rc = sockmap_splice_pair(h, k.c, k.s);
	report("a_library", "splice_pair", rc, -rc);
	if (rc)
		printf("# %s\n", sockmap_splice_error(h));
	else
		sockmap_splice_unpair(h, k.c, k.s);
	conn_close(k);

	/* (b) sockmap first, then kTLS. */
	k = tcp_conn();
	m = new_map(BPF_MAP_TYPE_SOCKMAP);
	if (map_add("b_sockmap", "sockmap_add", m, 0, k.c) == 0) {
		ulp("b_sockmap", k.c);
		tls_key("b_sockmap", k.c, TLS_TX);
		tls_key("b_sockmap", k.c, TLS_RX);
	}
	close(m);
	conn_close(k);

	k = tcp_conn();
	m = new_map(BPF_MAP_TYPE_SOCKMAP);
	if (map_add("b_removed", "sockmap_add", m, 0, k.c) == 0) {
		uint32_t zero = 0;
		report("b_removed", "sockmap_delete", bpf_map_delete_elem(m, &zero) ? -1 : 0, errno);
		ulp("b_removed", k.c);
		tls_key("b_removed", k.c, TLS_TX);
	}
	close(m);
	conn_close(k);

	/* Last: on 7.2.13 this case locks the kernel up when the socket is closed. */
	if (!verdict_then_ktls) {
		printf("PROBE b_verdict splice_pair NOT_RUN 0 needs --verdict-then-ktls\n");
		goto out;
	}
	k = tcp_conn();
	rc = sockmap_splice_pair(h, k.c, k.s);
	if (report("b_verdict", "splice_pair", rc, -rc) == 0) {
		ulp("b_verdict", k.c);
		tls_key("b_verdict", k.c, TLS_TX);
		tls_key("b_verdict", k.c, TLS_RX);
		sockmap_splice_unpair(h, k.c, k.s);
	} else {
		printf("# %s\n", sockmap_splice_error(h));
	}
	conn_close(k);

out:
	sockmap_splice__destroy(skel);
	sockmap_splice_close(h);
	return 0;
}
