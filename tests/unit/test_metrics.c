/* test_metrics.c — the metrics text: every family has HELP and TYPE, counters land under the right labels,
 * label values are bounded (unknown ciphers and versions are "other"), close reasons are classed, and the
 * kernel's counters are read from a tls_stat file. promtool itself checks the text in tests/host/metrics.sh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/tls.h>

#include "../../datapath/metrics.h"
#include "run_suite.h"

static struct mbuf render(const struct metrics_view *v)
{
	struct mbuf b = { 0 };
	metrics_render(&b, v);
	ck_assert(!b.oom);
	return b;
}

/* The value of one sample line ("NAME{LABELS} VALUE"), or -1 when absent. */
static long sample(const struct mbuf *b, const char *key)
{
	char pat[512];
	snprintf(pat, sizeof(pat), "\n%s ", key);
	const char *p = strstr(b->p, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

START_TEST(families_have_help_and_type)
{
	struct metrics_frontend fe[] = { { "edge", "tls", 3 }, { "raw", "plain", 0 } };
	struct metrics_view v = { .fe = fe, .nfe = 2, .accepted = 7, .workers = 2, .generation = 4,
				  .sockmap_skbs = { [0] = 40, [5] = 3 } };
	struct mbuf b = render(&v);
	/* every sample's family was announced by a TYPE line before it */
	char *save = NULL, *text = strdup(b.p);
	char typed[64][96];
	int ntyped = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		if (sscanf(line, "# TYPE %95s", name) == 1) {
			ck_assert_int_lt(ntyped, 64);
			strcpy(typed[ntyped++], name);
			continue;
		}
		if (line[0] == '#')
			continue;
		size_t n = strcspn(line, "{ ");
		bool found = false;
		for (int i = 0; i < ntyped; i++)
			found |= strlen(typed[i]) == n && !strncmp(typed[i], line, n);
		ck_assert_msg(found, "sample without TYPE: %s", line);
	}
	free(text);
	ck_assert_int_eq(sample(&b, "tlsoff_open_connections{frontend=\"edge\",mode=\"tls\"}"), 3);
	ck_assert_int_eq(sample(&b, "tlsoff_open_connections{frontend=\"raw\",mode=\"plain\"}"), 0);
	ck_assert_int_eq(sample(&b, "tlsoff_connections_accepted_total"), 7);
	ck_assert_int_eq(sample(&b, "tlsoff_config_generation"), 4);
	/* the sockmap verdict's slots under their names (bpf/sockmap_splice.h's order) */
	ck_assert_int_eq(sample(&b, "tlsoff_sockmap_skbs_total{outcome=\"redirected\"}"), 40);
	ck_assert_int_eq(sample(&b, "tlsoff_sockmap_skbs_total{outcome=\"overlap_trimmed\"}"), 3);
	ck_assert_int_eq(sample(&b, "tlsoff_sockmap_skbs_total{outcome=\"overlap_failed\"}"), 0);
	/* no tls_stat path: the kernel's families are left out, not reported as zero */
	ck_assert_ptr_null(strstr(b.p, "tlsoff_kernel_tls"));
	mbuf_free(&b);
}
END_TEST

START_TEST(counters_and_bounded_labels)
{
	struct metrics_view v = { 0 };
	struct mbuf b = render(&v);
	long full13 = sample(&b, "tlsoff_handshakes_total{version=\"TLSv1.3\",cipher=\"TLS_AES_128_GCM_SHA256\",result=\"full\"}");
	long other = sample(&b, "tlsoff_handshakes_total{version=\"other\",cipher=\"other\",result=\"full\"}");
	long out = sample(&b, "tlsoff_bytes_total{datapath=\"splice\",direction=\"out\"}");
	long sw = sample(&b, "tlsoff_ktls_sessions_total{direction=\"tx\",mode=\"sw\"}");
	long hw = sample(&b, "tlsoff_ktls_sessions_total{direction=\"rx\",mode=\"hw\"}");
	ck_assert_int_ge(full13, 0);
	ck_assert_int_eq(sample(&b, "tlsoff_handshakes_total{version=\"TLSv1.2\",cipher=\"TLS_AES_128_GCM_SHA256\",result=\"full\"}"), -1);
	mbuf_free(&b);

	metrics_handshake("TLSv1.3", "TLS_AES_128_GCM_SHA256", MR_FULL);
	metrics_handshake("TLSv1.3", "TLS_AES_128_GCM_SHA256", MR_FULL);
	metrics_handshake("SSLv3\"evil", "x{y}", MR_FULL);      /* not from the tables: "other", never echoed */
	metrics_bytes(MP_SPLICE, MD_OUT, 1000);
	metrics_bytes(MP_SPLICE, MD_OUT, 24);
	metrics_ktls_installed(TLS_CONF_SW, TLS_CONF_HW);
	b = render(&v);
	ck_assert_int_eq(sample(&b, "tlsoff_handshakes_total{version=\"TLSv1.3\",cipher=\"TLS_AES_128_GCM_SHA256\",result=\"full\"}"), full13 + 2);
	ck_assert_int_eq(sample(&b, "tlsoff_handshakes_total{version=\"other\",cipher=\"other\",result=\"full\"}"), (other < 0 ? 0 : other) + 1);
	ck_assert_ptr_null(strstr(b.p, "evil"));
	ck_assert_int_eq(sample(&b, "tlsoff_bytes_total{datapath=\"splice\",direction=\"out\"}"), out + 1024);
	ck_assert_int_eq(sample(&b, "tlsoff_ktls_sessions_total{direction=\"tx\",mode=\"sw\"}"), sw + 1);
	ck_assert_int_eq(sample(&b, "tlsoff_ktls_sessions_total{direction=\"rx\",mode=\"hw\"}"), hw + 1);
	mbuf_free(&b);
}
END_TEST

static const struct { const char *reason, *label; } reasons[] = {
	{ "handshake timeout", "handshake_timeout" },
	{ "ClientHello timeout", "handshake_timeout" },
	{ "handshake: tlsv1 alert protocol version", "handshake_failed" },
	{ "idle timeout (the end of stream waited for a peer that does not read)", "idle_timeout" },
	{ "backend: no server reachable (2 tried; last 127.0.0.1:1: Connection refused)", "backend_unreachable" },
	{ "backend app: every server is drained", "backend_unreachable" },
	{ "backend: PROXY header not accepted in time", "backend_timeout" },
	{ "backend: connection reset", "backend_error" },
	{ "client sent KeyUpdate: this kernel cannot rekey kTLS (needs 6.14+)", "rekey" },
	{ "client: connection reset", "client_error" },
	{ "client closed before its ClientHello was complete", "client_error" },
	{ "not a usable ClientHello: record too short", "bad_client_hello" },
	{ "no route for SNI 'x' and no default backend", "no_route" },
	{ "kTLS TX failed after RX: ...", "ktls" },
	{ "out of memory", "resources" },
	{ "something new", "other" },
	{ NULL, "other" },
};

START_TEST(error_classes)
{
	ck_assert_str_eq(metrics_error_class(reasons[_i].reason), reasons[_i].label);
	struct metrics_view v = { 0 };
	struct mbuf b = render(&v);
	char key[128];
	snprintf(key, sizeof(key), "tlsoff_connection_errors_total{reason=\"%s\"}", reasons[_i].label);
	long before = sample(&b, key);
	ck_assert_int_ge(before, 0);   /* every class is reported, zeros included */
	mbuf_free(&b);
	metrics_conn_error(reasons[_i].reason);
	b = render(&v);
	ck_assert_int_eq(sample(&b, key), before + 1);
	mbuf_free(&b);
}
END_TEST

START_TEST(kernel_tls_stat)
{
	char path[] = "/tmp/tlsoff-tls_stat.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	dprintf(fd, "TlsCurrTxSw                     \t5\nTlsCurrRxSw 4\nTlsCurrTxDevice 1\nTlsTxSw 50\n"
		    "TlsDecryptError 2\n");
	close(fd);
	struct metrics_view v = { .tls_stat_path = path };
	struct mbuf b = render(&v);
	unlink(path);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_sessions{direction=\"tx\",mode=\"sw\"}"), 5);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_sessions{direction=\"rx\",mode=\"sw\"}"), 4);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_sessions{direction=\"tx\",mode=\"hw\"}"), 1);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_sessions{direction=\"rx\",mode=\"hw\"}"), 0);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_sessions_total{direction=\"tx\",mode=\"sw\"}"), 50);
	ck_assert_int_eq(sample(&b, "tlsoff_kernel_tls_events_total{counter=\"TlsDecryptError\"}"), 2);
	mbuf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	tcase_add_test(tc, families_have_help_and_type);
	tcase_add_test(tc, counters_and_bounded_labels);
	tcase_add_loop_test(tc, error_classes, 0, sizeof(reasons) / sizeof(reasons[0]));
	tcase_add_test(tc, kernel_tls_stat);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
