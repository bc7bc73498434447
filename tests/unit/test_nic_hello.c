/* The `nic-offload prefer` ClientHello callback (datapath/tls_ctx.c) in real handshakes over loopback TCP:
 * a tlsoff frontend against an OpenSSL client, with the link view published synthetically — loopback
 * "having" an active tls-hw-tx-offload — since no device here has one. The route lookup, the ClientHello
 * parsing and the version cap are the real ones; the kernel's half (HW or SW kTLS) is the lab's
 * (tests/lab/nic_offload.sh). A TLS 1.3-capable client that is capped to TLS 1.2 completes its handshake,
 * which also proves the server sent no TLS 1.3 downgrade sentinel (the client would abort). */
#include <check.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "tlsoff/config.h"
#include "tlsoff/nic_pref.h"
#include "tlsoff/nic_route.h"
#include "tlsoff/tls_ctx.h"
#include "test_cert.h"
#include "run_suite.h"

static char certpath[] = "/tmp/tlsoff-nic-cert.XXXXXX", keypath[] = "/tmp/tlsoff-nic-key.XXXXXX";
static struct tls_frontend *tf;

static void setup(void)
{
	char err[256];
	make_cert();
	int cf = mkstemp(certpath), kf = mkstemp(keypath);
	ck_assert(cf >= 0 && kf >= 0);
	FILE *c = fdopen(cf, "w"), *k = fdopen(kf, "w");
	ck_assert_int_eq(PEM_write_X509(c, test_cert), 1);
	ck_assert_int_eq(PEM_write_PrivateKey(k, test_key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(c);
	fclose(k);
	struct frontend_conf fc = { .ncerts = 1, .tls_min = TLS1_2_VERSION, .nic_offload = NIC_OFFLOAD_PREFER };
	snprintf(fc.certs[0].chain, sizeof(fc.certs[0].chain), "%s", certpath);
	snprintf(fc.certs[0].key, sizeof(fc.certs[0].key), "%s", keypath);
	tf = tls_frontend_new(&fc, true, err, sizeof(err));
	ck_assert_msg(tf != NULL, "%s", err);
}

static void teardown(void)
{
	tls_frontend_free(tf);
	nic_devices_publish(NULL, 0);
	unlink(certpath);
	unlink(keypath);
}

/* Loopback as a device with (hw_tx) or without TLS TX offload, as the link monitor would publish it. */
static void publish_lo(bool hw_tx)
{
	struct netdev_info lo = { .name = "lo", .ifindex = if_nametoindex("lo"), .up = true };
	lo.tls[0] = (struct netdev_feature){ .hw = hw_tx, .wanted = hw_tx, .active = hw_tx, .fixed = !hw_tx };
	nic_devices_publish(&lo, 1);
}

struct result {
	int version;
	char cipher[64];
	struct nic_choice nc;
};

/* One handshake over 127.0.0.1: tlsoff's frontend against a client limited to [min, max] and the given TLS
 * 1.2 cipher list (NULL: OpenSSL's default). Both ends non-blocking, driven in turn. */
static struct result handshake(int min, int max, const char *tls12_ciphers)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, len), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, len), 0);
	int s = accept(l, NULL, NULL);
	ck_assert_int_ge(s, 0);
	close(l);
	fcntl(s, F_SETFL, O_NONBLOCK);
	fcntl(c, F_SETFL, O_NONBLOCK);

	struct result r = { .nc = { .ktls = true } };
	SSL *srv = tls_frontend_ssl(tf, s);
	ck_assert_ptr_nonnull(srv);
	tls_ssl_nic_choice(srv, &r.nc);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(cctx, min), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, max), 1);
	if (tls12_ciphers)
		ck_assert_int_eq(SSL_CTX_set_cipher_list(cctx, tls12_ciphers), 1);
	SSL *cli = SSL_new(cctx);
	SSL_set_fd(cli, c);
	SSL_set_connect_state(cli);
	SSL_set_tlsext_host_name(cli, "localhost");
	int rs = 0, rc = 0;
	for (int i = 0; i < 2000 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(cli);
		if (rs != 1)
			rs = SSL_do_handshake(srv);
		if (rc != 1 && SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ)
			break;
		if (rs != 1 && SSL_get_error(srv, rs) != SSL_ERROR_WANT_READ)
			break;
		usleep(200);
	}
	ck_assert_msg(rs == 1 && rc == 1, "handshake failed (server %d, client %d): %s", rs, rc,
		      ERR_error_string(ERR_get_error(), NULL));
	r.version = SSL_version(srv);
	ck_assert_int_eq(SSL_version(cli), r.version);
	snprintf(r.cipher, sizeof(r.cipher), "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(srv)));
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	close(s);
	close(c);
	return r;
}

START_TEST(offload_device_caps_tls13_client_at_12)
{
	publish_lo(true);
	struct result r = handshake(TLS1_2_VERSION, TLS1_3_VERSION, NULL);
	ck_assert_int_eq(r.nc.verdict, NIC_PREF_APPLIED);
	ck_assert_str_eq(r.nc.dev, "lo");
	ck_assert_int_eq(r.version, TLS1_2_VERSION);
	ck_assert_str_eq(r.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");   /* AES-GCM, which the NIC can take */
}
END_TEST

START_TEST(no_offload_keeps_tls13)
{
	publish_lo(false);
	struct result r = handshake(TLS1_2_VERSION, TLS1_3_VERSION, NULL);
	ck_assert_int_eq(r.nc.verdict, NIC_PREF_NOT_APPLICABLE);
	ck_assert_int_eq(r.nc.reason, NIC_WHY_DEV_NO_HW);
	ck_assert_int_eq(r.version, TLS1_3_VERSION);
}
END_TEST

START_TEST(tls13_only_client_still_served)
{
	publish_lo(true);
	struct result r = handshake(TLS1_3_VERSION, TLS1_3_VERSION, NULL);
	ck_assert_int_eq(r.nc.reason, NIC_WHY_CLIENT_13_ONLY);
	ck_assert_int_eq(r.version, TLS1_3_VERSION);
}
END_TEST

START_TEST(client_without_usable_gcm_keeps_its_handshake)
{
	publish_lo(true);
	/* AES-GCM only for RSA keys (ours is P-256), ChaCha20 for ECDSA: not capped, TLS 1.3 as usual */
	struct result r = handshake(TLS1_2_VERSION, TLS1_3_VERSION, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
	ck_assert_int_eq(r.nc.reason, NIC_WHY_CLIENT_NO_GCM);
	ck_assert_int_eq(r.version, TLS1_3_VERSION);
	/* and a TLS 1.2-only client of the same kind gets its ChaCha20 suite */
	r = handshake(TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
	ck_assert_int_eq(r.nc.reason, NIC_WHY_CLIENT_NO_GCM);
	ck_assert_int_eq(r.version, TLS1_2_VERSION);
	ck_assert_str_eq(r.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nic_hello");
	TCase *tc = tcase_create("hello");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, offload_device_caps_tls13_client_at_12);
	tcase_add_test(tc, no_offload_keeps_tls13);
	tcase_add_test(tc, tls13_only_client_still_served);
	tcase_add_test(tc, client_without_usable_gcm_keeps_its_handshake);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
