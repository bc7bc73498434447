/* tcp_sink_source — a real TCP peer for relay tests: sends N random bytes while it receives and hashes
 * everything the other side sends, until EOF. Both directions run at once (a sender thread), and it
 * half-closes (shutdown SHUT_WR) after sending, so a relay that does not propagate FIN makes it hang.
 *
 *   tcp_sink_source server PORT NBYTES CONNS   listen on 127.0.0.1:PORT, serve CONNS connections at once
 *   tcp_sink_source client PORT NBYTES [GO_FILE]  connect to 127.0.0.1:PORT; with GO_FILE, stop sending
 *                       after exactly NBYTES/2 until GO_FILE exists (tests look inside meanwhile; a file,
 *                       not a delay, because emulated lab kernels under load are arbitrarily slow)
 *
 * One line per connection, on stdout:
 *   SERVER|CLIENT local_port=P peer_port=Q sent=N sent_sha=HEX recv=M recv_sha=HEX
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

struct conn {
	int fd;
	const char *role;
	unsigned long long nbytes, sent, recvd;
	const char *go_file; /* hold at NBYTES/2 until this file exists */
	char sent_hex[65], recv_hex[65];
	const char *err; /* first error, or NULL */
};

static void die(const char *what)
{
	fprintf(stderr, "tcp_sink_source: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void *sender(void *arg)
{
	struct conn *c = arg;
	unsigned char *buf = malloc(CHUNK), md[32];
	EVP_MD_CTX *h = EVP_MD_CTX_new();

	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	while (buf && c->sent < c->nbytes) {
		size_t n = c->nbytes - c->sent < CHUNK ? c->nbytes - c->sent : CHUNK;
		unsigned long long half = c->nbytes / 2;
		if (c->go_file && c->sent < half && c->sent + n > half)
			n = half - c->sent; /* end this chunk exactly at the hold point */
		if (c->go_file && c->sent == half && half) {
			fprintf(stderr, "tcp_sink_source: holding at %llu bytes until %s exists\n", half, c->go_file);
			for (int i = 0; i < 120 * 100 && access(c->go_file, F_OK) != 0; i++)
				usleep(10000); /* at most 120 s */
			c->go_file = NULL;
		}
		if (RAND_bytes(buf, n) != 1) {
			c->err = "RAND_bytes failed";
			break;
		}
		EVP_DigestUpdate(h, buf, n);
		for (size_t off = 0; off < n;) {
			ssize_t w = send(c->fd, buf + off, n - off, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				c->err = strerror(errno);
				goto out;
			}
			off += w;
			c->sent += w;
		}
	}
	/* Half-close: tells the other side "that was all" while we keep reading its bytes. */
	if (shutdown(c->fd, SHUT_WR) < 0 && !c->err)
		c->err = strerror(errno);
out:
	EVP_DigestFinal_ex(h, md, NULL);
	hex(md, c->sent_hex);
	EVP_MD_CTX_free(h);
	free(buf);
	return NULL;
}

static void *run_conn(void *arg)
{
	struct conn *c = arg;
	unsigned char *buf = malloc(CHUNK), md[32];
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	struct sockaddr_in me, peer;
	socklen_t l1 = sizeof me, l2 = sizeof peer;
	pthread_t t;

	/* Addresses now: once both sides have closed, getpeername fails (TIME_WAIT). */
	getsockname(c->fd, (struct sockaddr *)&me, &l1);
	getpeername(c->fd, (struct sockaddr *)&peer, &l2);
	pthread_create(&t, NULL, sender, c);
	EVP_DigestInit_ex(h, EVP_sha256(), NULL);
	for (;;) {
		ssize_t r = recv(c->fd, buf, CHUNK, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			c->err = strerror(errno);
			break;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(h, buf, r);
		c->recvd += r;
	}
	EVP_DigestFinal_ex(h, md, NULL);
	hex(md, c->recv_hex);
	pthread_join(t, NULL);
	printf("%s local_port=%u peer_port=%u sent=%llu sent_sha=%s recv=%llu recv_sha=%s%s%s\n", c->role,
	       ntohs(me.sin_port), ntohs(peer.sin_port), c->sent, c->sent_hex, c->recvd, c->recv_hex,
	       c->err ? " error=" : "", c->err ? c->err : "");
	fflush(stdout);
	close(c->fd);
	EVP_MD_CTX_free(h);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, failed = 0;

	if (argc < 4 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")) ||
	    (!strcmp(argv[1], "server") && argc < 5)) {
		fprintf(stderr, "usage: %s server PORT NBYTES CONNS | client PORT NBYTES [GO_FILE]\n", argv[0]);
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	unsigned long long nbytes = strtoull(argv[3], NULL, 0);

	if (!strcmp(argv[1], "client")) {
		struct conn c = { .role = "CLIENT", .nbytes = nbytes, .go_file = argc > 4 ? argv[4] : NULL };
		if ((c.fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			die("socket");
		if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0)
			die("connect to 127.0.0.1");
		run_conn(&c);
		return c.err ? 1 : 0;
	}

	int conns = atoi(argv[4]), lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct conn *cs = calloc(conns, sizeof *cs);
	pthread_t *ts = calloc(conns, sizeof *ts);

	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind 127.0.0.1");
	if (listen(lfd, 128) < 0)
		die("listen");
	for (int i = 0; i < conns; i++) {
		cs[i] = (struct conn){ .role = "SERVER", .nbytes = nbytes };
		if ((cs[i].fd = accept(lfd, NULL, NULL)) < 0)
			die("accept");
		pthread_create(&ts[i], NULL, run_conn, &cs[i]);
	}
	for (int i = 0; i < conns; i++) {
		pthread_join(ts[i], NULL);
		failed |= cs[i].err != NULL;
	}
	return failed;
}
