/* metrics.c — the counters behind `metrics listen` and their Prometheus text (exposition format 0.0.4).
 *
 * Label values come from closed tables, never from what a client sent, so a hostile client cannot grow
 * the number of series: versions and ciphers outside the tables are "other", error reasons are classed
 * by prefix (error_classes). Counters are relaxed atomics: a scrape may see one counter a few increments
 * ahead of another, which Prometheus tolerates; nothing on the data path takes a lock.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/tls.h>

#include "metrics.h"
#include "tlsoff/version.h"

/* What tlsoffd negotiates (tls_ctx.c's lists), then "other" for anything a later change might add. */
static const char *const versions[] = { "TLSv1.2", "TLSv1.3", "other" };
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))
static const char *const ciphers[] = {
	"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "other",
};
#define NCIPHERS (sizeof(ciphers) / sizeof(ciphers[0]))
static const char *const results[MR__N] = { "full", "resumed", "failed" };
static const char *const paths[MP__N] = { "splice", "userspace", "sockmap" };
static const char *const dirs[2] = { "in", "out" };
/* How the kernel runs a kTLS direction (sock_diag TLS_INFO_TXCONF/RXCONF). */
static const char *const modes[] = { "sw", "hw", "hw_record", "unknown" };
#define NMODES (sizeof(modes) / sizeof(modes[0]))

/* A close reason's class: the first row whose prefix the reason starts with (so the more specific rows
 * come first). The reasons are the daemon's own strings (conn.c, relay.c, sockmap_conn.c). */
static const struct { const char *prefix, *label; } error_classes[] = {
	{ "handshake timeout", "handshake_timeout" },
	{ "ClientHello timeout", "handshake_timeout" },
	{ "handshake:", "handshake_failed" },
	{ "idle timeout", "idle_timeout" },
	{ "backend: no server reachable", "backend_unreachable" },
	{ "backend ", "backend_unreachable" },             /* "backend NAME: every server is drained" */
	{ "backend: PROXY header", "backend_timeout" },
	{ "backend", "backend_error" },
	{ "client sent KeyUpdate", "rekey" },
	{ "client", "client_error" },
	{ "not a usable ClientHello", "bad_client_hello" },
	{ "no route for SNI", "no_route" },
	{ "kTLS", "ktls" },
	{ "out of memory", "resources" },
	{ "sockmap", "resources" },
	{ "PROXY v2", "proxy_protocol" },
};
#define NCLASSES (sizeof(error_classes) / sizeof(error_classes[0]))

static struct {
	atomic_ulong handshakes[NVERSIONS][NCIPHERS][MR__N];
	atomic_ulong bytes[MP__N][2];
	atomic_ulong ktls[2][NMODES];                     /* [0] tx, [1] rx */
	atomic_ulong errors[NCLASSES + 1];                /* the last: "other" */
} m;

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

static unsigned lookup(const char *const *table, unsigned n, const char *name)
{
	for (unsigned i = 0; name && i + 1 < n; i++)
		if (!strcmp(table[i], name))
			return i;
	return n - 1;
}

void metrics_handshake(const char *version, const char *cipher, enum metrics_result r)
{
	ADD(m.handshakes[lookup(versions, NVERSIONS, version)][lookup(ciphers, NCIPHERS, cipher)][r], 1);
}

void metrics_bytes(enum metrics_path p, enum metrics_dir d, uint64_t n)
{
	if (n)
		ADD(m.bytes[p][d], n);
}

static unsigned mode_index(unsigned conf)
{
	switch (conf) {
	case TLS_CONF_SW: return 0;
	case TLS_CONF_HW: return 1;
	case TLS_CONF_HW_RECORD: return 2;
	default: return 3;
	}
}

void metrics_ktls_installed(unsigned txconf, unsigned rxconf)
{
	ADD(m.ktls[0][mode_index(txconf)], 1);
	ADD(m.ktls[1][mode_index(rxconf)], 1);
}

static unsigned error_index(const char *reason)
{
	for (unsigned i = 0; reason && i < NCLASSES; i++)
		if (!strncmp(reason, error_classes[i].prefix, strlen(error_classes[i].prefix)))
			return i;
	return NCLASSES;
}

const char *metrics_error_class(const char *reason)
{
	unsigned i = error_index(reason);
	return i < NCLASSES ? error_classes[i].label : "other";
}

void metrics_conn_error(const char *reason)
{
	ADD(m.errors[error_index(reason)], 1);
}

/* ---- text ------------------------------------------------------------------------------------------ */

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	for (int pass = 0; pass < 2 && !b->oom; pass++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Frontend names are [A-Za-z0-9_.-] (config.c), but escape as the format says anyway. */
static void label_value(struct mbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			mbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			mbuf_printf(b, "\\n");
		else
			mbuf_printf(b, "%c", *s);
	}
}

/* The kernel's kTLS counters (per network namespace: every kTLS socket in it, not only ours). */
static void kernel_tls_stat(struct mbuf *b, const char *path)
{
	static const struct { const char *name, *dir, *mode; bool current; } rows[] = {
		{ "TlsCurrTxSw", "tx", "sw", true },      { "TlsCurrRxSw", "rx", "sw", true },
		{ "TlsCurrTxDevice", "tx", "hw", true },  { "TlsCurrRxDevice", "rx", "hw", true },
		{ "TlsTxSw", "tx", "sw", false },         { "TlsRxSw", "rx", "sw", false },
		{ "TlsTxDevice", "tx", "hw", false },     { "TlsRxDevice", "rx", "hw", false },
	};
	unsigned long long v[sizeof(rows) / sizeof(rows[0])] = { 0 };
	char name[64];
	unsigned long long value;
	FILE *f = fopen(path, "r");
	if (!f)
		return;   /* no kTLS in this kernel: the families are left out rather than reported as 0 */
	struct mbuf errs = { 0 };
	while (fscanf(f, "%63s %llu", name, &value) == 2) {
		bool known = false;
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			if (!strcmp(rows[i].name, name)) {
				v[i] = value;
				known = true;
			}
		if (!known)   /* TlsDecryptError, TlsRxDeviceResync, TlsDecryptRetry, TlsRxNoPadViolation, ... */
			mbuf_printf(&errs, "tlsoff_kernel_tls_events_total{counter=\"%s\"} %llu\n", name, value);
	}
	fclose(f);
	for (int current = 1; current >= 0; current--) {
		if (current)
			family(b, "tlsoff_kernel_tls_sessions", "gauge",
			       "kTLS sessions open in this network namespace (/proc/net/tls_stat), by direction and mode");
		else
			family(b, "tlsoff_kernel_tls_sessions_total", "counter",
			       "kTLS sessions opened in this network namespace (/proc/net/tls_stat)");
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			if (rows[i].current == (bool)current)
				mbuf_printf(b, "tlsoff_kernel_tls_sessions%s{direction=\"%s\",mode=\"%s\"} %llu\n",
					    current ? "" : "_total", rows[i].dir, rows[i].mode, v[i]);
	}
	family(b, "tlsoff_kernel_tls_events_total", "counter",
	       "the kernel's other kTLS counters (/proc/net/tls_stat): decrypt errors, resyncs, ...");
	if (errs.p)
		mbuf_printf(b, "%s", errs.p);
	mbuf_free(&errs);
}

void metrics_render(struct mbuf *b, const struct metrics_view *v)
{
	family(b, "tlsoff_build_info", "gauge", "tlsoffd's version");
	mbuf_printf(b, "tlsoff_build_info{version=\"%s\"} 1\n", TLSOFF_VERSION);
	family(b, "tlsoff_uptime_seconds", "gauge", "seconds since tlsoffd started");
	mbuf_printf(b, "tlsoff_uptime_seconds %llu\n", (unsigned long long)v->uptime_s);
	family(b, "tlsoff_workers", "gauge", "worker threads");
	mbuf_printf(b, "tlsoff_workers %u\n", v->workers);
	family(b, "tlsoff_config_generation", "gauge", "configuration generation in use (each change adds one)");
	mbuf_printf(b, "tlsoff_config_generation %u\n", v->generation);

	family(b, "tlsoff_connections_accepted_total", "counter", "connections accepted");
	mbuf_printf(b, "tlsoff_connections_accepted_total %lu\n", v->accepted);
	family(b, "tlsoff_connections_refused_total", "counter", "connections refused at accept, by reason");
	mbuf_printf(b, "tlsoff_connections_refused_total{reason=\"max_conns\"} %lu\n", v->refused_max_conns);
	family(b, "tlsoff_open_connections", "gauge", "open connections by frontend");
	for (unsigned i = 0; i < v->nfe; i++) {
		mbuf_printf(b, "tlsoff_open_connections{frontend=\"");
		label_value(b, v->fe[i].name);
		mbuf_printf(b, "\",mode=\"%s\"} %d\n", v->fe[i].mode, v->fe[i].open);
	}

	family(b, "tlsoff_handshakes_total", "counter",
	       "TLS handshakes by version, cipher and result (full, resumed, failed)");
	for (unsigned ver = 0; ver < NVERSIONS; ver++)
		for (unsigned c = 0; c < NCIPHERS; c++)
			for (unsigned r = 0; r < MR__N; r++) {
				unsigned long n = GET(m.handshakes[ver][c][r]);
				/* every successful combination tlsoffd can negotiate, zeros included, so rates
				 * start at 0; failures only once seen (their version/cipher is "other") */
				bool tls13 = !strncmp(ciphers[c], "TLS_", 4);
				bool possible = ver + 1 < NVERSIONS && c + 1 < NCIPHERS && tls13 == (ver == 1) &&
						r != MR_FAILED;
				if (n || possible)
					mbuf_printf(b, "tlsoff_handshakes_total{version=\"%s\",cipher=\"%s\",result=\"%s\"} %lu\n",
						    versions[ver], ciphers[c], results[r], n);
			}
	if (!GET(m.handshakes[NVERSIONS - 1][NCIPHERS - 1][MR_FAILED]))
		mbuf_printf(b, "tlsoff_handshakes_total{version=\"other\",cipher=\"other\",result=\"failed\"} 0\n");

	family(b, "tlsoff_bytes_total", "counter",
	       "bytes relayed, by datapath and direction (in: client to backend); splice and userspace count as "
	       "they move, sockmap when the connection closes");
	for (unsigned p = 0; p < MP__N; p++)
		for (unsigned d = 0; d < 2; d++)
			mbuf_printf(b, "tlsoff_bytes_total{datapath=\"%s\",direction=\"%s\"} %lu\n", paths[p], dirs[d],
				    GET(m.bytes[p][d]));

	family(b, "tlsoff_ktls_sessions_total", "counter",
	       "kTLS directions tlsoffd installed, by direction and how the kernel runs them (sw, hw: NIC offload)");
	for (unsigned d = 0; d < 2; d++)
		for (unsigned k = 0; k < NMODES; k++)
			mbuf_printf(b, "tlsoff_ktls_sessions_total{direction=\"%s\",mode=\"%s\"} %lu\n", d ? "rx" : "tx",
				    modes[k], GET(m.ktls[d][k]));

	family(b, "tlsoff_nic_offload_decisions_total", "counter",
	       "nic-offload prefer: TLS 1.2 AES-GCM preferred for a NIC with TLS offload, or not applicable");
	mbuf_printf(b, "tlsoff_nic_offload_decisions_total{verdict=\"preferred\"} %lu\n", v->nic_preferred);
	mbuf_printf(b, "tlsoff_nic_offload_decisions_total{verdict=\"not_applicable\"} %lu\n", v->nic_not_applicable);

	family(b, "tlsoff_rekeys_total", "counter", "TLS 1.3 KeyUpdates followed on kTLS sockets");
	mbuf_printf(b, "tlsoff_rekeys_total %lu\n", v->rekeys);

	family(b, "tlsoff_sockmap_skbs_total", "counter",
	       "socket buffers the sockmap stream verdict judged (plain and passthrough frontends), by outcome; "
	       "overlap_*: retransmitted bytes the kernel handed it twice, cut off or dropped (docs/ebpf.md)");
	for (unsigned i = 0; i < SOCKMAP_SPLICE_NSTATS; i++)
		mbuf_printf(b, "tlsoff_sockmap_skbs_total{outcome=\"%s\"} %llu\n", sockmap_splice_stat_name(i),
			    (unsigned long long)v->sockmap_skbs[i]);

	family(b, "tlsoff_connection_errors_total", "counter", "connections that ended in an error, by reason");
	for (unsigned i = 0; i <= NCLASSES; i++) {
		const char *label = i < NCLASSES ? error_classes[i].label : "other";
		bool first = true;   /* several prefixes share a label: one sample per label */
		unsigned long n = 0;
		for (unsigned k = 0; k <= NCLASSES; k++) {
			const char *lk = k < NCLASSES ? error_classes[k].label : "other";
			if (strcmp(lk, label))
				continue;
			if (k < i)
				first = false;
			n += GET(m.errors[k]);
		}
		if (first)
			mbuf_printf(b, "tlsoff_connection_errors_total{reason=\"%s\"} %lu\n", label, n);
	}
	if (v->tls_stat_path)
		kernel_tls_stat(b, v->tls_stat_path);
}
