/* ktls_install_check — one real loopback TLS connection, ktls_install() on one end, real bytes through it.
 *
 *   ktls_install_check [--tls 1.2|1.3] [--cipher NAME] [--side server|client] [--dirs tx|rx|both]
 *                      [--bytes N]
 *
 * The kTLS side (main thread) does the handshake with libssl, then calls ktls_install on its socket.
 * The peer (a thread) stays in userspace OpenSSL the whole time. On success the kTLS side write()s N
 * random bytes (encrypted by the kernel when TX is installed) and reads N bytes the peer sends (decrypted
 * by the kernel when RX is installed, skipping non-data records such as TLS 1.3 tickets); both ends
 * hash what crossed and the hashes must match.
 *
 * Output: "install: ok TX+RX" or "install: FAILED errno=N: <why>" (the ktls_result reason, verbatim),
 * then "tx sha256 ..." / "rx sha256 ...". Exit 0 = installed and verified, 3 = ktls_install failed,
 * 1 = anything else (handshake, data mismatch), 2 = usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsoff/ktls.h"


static int version = TLS1_3_VERSION;
static const char *cipher;
static bool ktls_is_server = true;
static unsigned dirs = KTLS_TX | KTLS_RX;
static size_t nbytes = 256 * 1024;

static atomic_bool install_failed; /* the peer's errors after that are expected: stay quiet */
static EVP_PKEY *key;
static X509 *cert;

static void die(const char *what)
{
	fprintf(stderr, "ktls_install_check: %s: %s\n", what, ERR_error_string(ERR_get_error(), NULL));
	exit(1);
}

static void make_cert(void)
{
	key = EVP_EC_gen("P-256");
	cert = X509_new();
	if (!key || !cert)
		die("key generation");
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	X509_NAME *n = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(cert, n);
	if (X509_sign(cert, key, EVP_sha256()) <= 0)
		die("self-signing");
}

static SSL_CTX *make_ctx(bool server, bool ktls_side)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, version) || !SSL_CTX_set_max_proto_version(ctx, version))
		die("SSL_CTX_new");
	if (cipher && !(version == TLS1_3_VERSION ? SSL_CTX_set_ciphersuites(ctx, cipher)
						  : SSL_CTX_set_cipher_list(ctx, cipher)))
		die("unknown cipher");
	if (server && (!SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key)))
		die("certificate");
	if (ktls_side && ktls_ctx_setup(ctx) < 0)
		die("ktls_ctx_setup");
	return ctx;
}

static void sha_hex(const uint8_t *p, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned ml = 0;
	EVP_Digest(p, len, md, &ml, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* ---- the userspace peer --------------------------------------------------------------------------- */

struct peer {
	int fd;
	SSL_CTX *ctx;
	const uint8_t *to_send;   /* what the peer sends after reading */
	char got_sha[65];         /* sha256 of what the peer received */
	const char *err;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	SSL *ssl = SSL_new(p->ctx);
	uint8_t *buf = malloc(nbytes);
	size_t got = 0;

	if (!ssl || !buf || !SSL_set_fd(ssl, p->fd)) {
		p->err = "peer setup";
		goto out;
	}
	if ((ktls_is_server ? SSL_connect(ssl) : SSL_accept(ssl)) != 1) {
		p->err = "peer handshake";
		goto out;
	}
	while (got < nbytes) {
		int n = SSL_read(ssl, buf + got, (int)(nbytes - got));
		if (n <= 0) {
			p->err = "peer SSL_read (kTLS TX records did not decrypt?)";
			goto out;
		}
		got += (size_t)n;
	}
	sha_hex(buf, got, p->got_sha);
	for (size_t off = 0; off < nbytes;) {
		int n = SSL_write(ssl, p->to_send + off, (int)(nbytes - off));
		if (n <= 0) {
			p->err = "peer SSL_write";
			goto out;
		}
		off += (size_t)n;
	}
	SSL_shutdown(ssl);
out:
	if (p->err && !atomic_load(&install_failed))
		ERR_print_errors_fp(stderr);
	free(buf);
	SSL_free(ssl);
	return NULL;
}

/* ---- kTLS side I/O ------------------------------------------------------------------------------- */

static int send_all(SSL *ssl, int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = (dirs & KTLS_TX) ? write(fd, p, len) : SSL_write(ssl, p, (int)len);
		if (n <= 0) {
			perror("kTLS side write");
			return -1;
		}
		p += n, len -= (size_t)n;
	}
	return 0;
}

/* Read len data bytes; with RX in the kernel, records of other types arrive one per recvmsg with their
 * type in a TLS_GET_RECORD_TYPE cmsg: count and skip them. */
static int recv_all(SSL *ssl, int fd, uint8_t *p, size_t len, int *skipped)
{
	while (len) {
		ssize_t n;
		if (!(dirs & KTLS_RX)) {
			n = SSL_read(ssl, p, (int)len);
		} else {
			char cbuf[CMSG_SPACE(sizeof(unsigned char))];
			struct iovec iov = { p, len };
			struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
					      .msg_controllen = sizeof(cbuf) };
			n = recvmsg(fd, &msg, 0);
			struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
			if (cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE &&
			    *CMSG_DATA(cm) != 23) {
				(*skipped)++;
				continue;
			}
		}
		if (n <= 0) {
			fprintf(stderr, "kTLS side read: %s\n", n < 0 ? strerror(errno) : "peer closed early");
			return -1;
		}
		p += n, len -= (size_t)n;
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: ktls_install_check [--tls 1.2|1.3] [--cipher NAME] [--side server|client] "
	      "[--dirs tx|rx|both] [--bytes N]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--tls"))
			version = !strcmp(v, "1.2") ? TLS1_2_VERSION : !strcmp(v, "1.3") ? TLS1_3_VERSION : (usage(), 0);
		else if (!strcmp(a, "--cipher"))
			cipher = v;
		else if (!strcmp(a, "--side"))
			ktls_is_server = !strcmp(v, "server") ? true : !strcmp(v, "client") ? false : (usage(), 0);
		else if (!strcmp(a, "--dirs"))
			dirs = !strcmp(v, "tx") ? KTLS_TX : !strcmp(v, "rx") ? KTLS_RX
				 : !strcmp(v, "both") ? KTLS_TX | KTLS_RX : (usage(), 0u);
		else if (!strcmp(a, "--bytes"))
			nbytes = strtoul(v, NULL, 10);
		else
			usage();
		i++;
	}
	if (!nbytes)
		usage();
	if (!cipher)
		cipher = version == TLS1_3_VERSION ? "TLS_AES_128_GCM_SHA256" : "ECDHE-ECDSA-AES128-GCM-SHA256";
	make_cert();
	signal(SIGPIPE, SIG_IGN); /* a peer writing into a closed socket gets EPIPE, not death */
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* loopback connection */
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0), sfd;
	if (lfd < 0 || cfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0 ||
	    connect(cfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || (sfd = accept(lfd, NULL, NULL)) < 0) {
		perror("loopback connection");
		return 1;
	}
	close(lfd);
	struct timeval tmo = { .tv_sec = 20 }; /* a wrong key must fail the run, not hang it */
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	setsockopt(sfd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	int kfd = ktls_is_server ? sfd : cfd;

	uint8_t *out = malloc(nbytes), *in = malloc(nbytes), *peer_out = malloc(nbytes);
	if (!out || !in || !peer_out || RAND_bytes(out, (int)nbytes) != 1 || RAND_bytes(peer_out, (int)nbytes) != 1)
		die("buffers");
	struct peer peer = { .fd = ktls_is_server ? cfd : sfd, .ctx = make_ctx(!ktls_is_server, false),
			     .to_send = peer_out };
	SSL_CTX *kctx = make_ctx(ktls_is_server, true);
	pthread_t th;
	if (pthread_create(&th, NULL, peer_main, &peer) != 0)
		die("pthread_create");

	SSL *ssl = SSL_new(kctx);
	if (!ssl || !SSL_set_fd(ssl, kfd) || (ktls_is_server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1)
		die("kTLS side handshake");
	printf("handshake: %s %s, kTLS on the %s\n", SSL_get_version(ssl),
	       SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), ktls_is_server ? "server" : "client");

	struct ktls_result res;
	int rc = ktls_install(ssl, kfd, dirs, &res);
	ktls_state_wipe(ssl, false);
	if (rc < 0) {
		printf("install: FAILED errno=%d: %s\n", res.err, res.why);
		atomic_store(&install_failed, true);
		shutdown(kfd, SHUT_RDWR); /* lets the peer thread finish */
		pthread_join(th, NULL);
		return 3;
	}
	printf("install: ok %s\n", res.installed == (KTLS_TX | KTLS_RX) ? "TX+RX" : res.installed == KTLS_TX ? "TX" : "RX");
	fflush(stdout);

	int skipped = 0, status = 0;
	char sent_sha[65], got_sha[65];
	sha_hex(out, nbytes, sent_sha);
	sha_hex(peer_out, nbytes, got_sha); /* what the peer sent */
	if (send_all(ssl, kfd, out, nbytes) < 0 || recv_all(ssl, kfd, in, nbytes, &skipped) < 0)
		status = 1;
	pthread_join(th, NULL);
	if (peer.err) {
		fprintf(stderr, "peer: %s\n", peer.err);
		status = 1;
	}
	if (!status) {
		char in_sha[65];
		sha_hex(in, nbytes, in_sha);
		bool tx_ok = strcmp(sent_sha, peer.got_sha) == 0, rx_ok = strcmp(got_sha, in_sha) == 0;
		printf("tx sha256 %s peer got %s: %s (%zu bytes via %s)\n", sent_sha, peer.got_sha,
		       tx_ok ? "match" : "MISMATCH", nbytes, dirs & KTLS_TX ? "kernel" : "OpenSSL");
		printf("rx sha256 %s we got %s: %s (%zu bytes via %s, %d non-data record(s) skipped)\n", got_sha,
		       in_sha, rx_ok ? "match" : "MISMATCH", nbytes, dirs & KTLS_RX ? "kernel" : "OpenSSL", skipped);
		status = tx_ok && rx_ok ? 0 : 1;
	}
	SSL_free(ssl);
	close(cfd);
	close(sfd);
	free(out), free(in), free(peer_out);
	return status;
}
