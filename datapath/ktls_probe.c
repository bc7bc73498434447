/* ktls_probe.c — find out what the running kernel's kTLS can do by trying it, and report it.
 *
 * Version numbers lie (distributions backport, configs differ: Debian's 5.10 has no CONFIG_TLS at all),
 * so we ask the kernel itself: open loopback TCP connections and set TCP_ULP "tls", then TLS_TX and TLS_RX
 * with dummy keys for each (TLS version, cipher). A socket takes TX once and RX once, so each combination
 * gets its own socket; both ends of a connection are ESTABLISHED, so one connection serves two
 * combinations. Rekey is tested by setting TLS_TX a second time on a TLS 1.3 socket (6.14+; EBUSY before).
 * Nothing is ever sent, so the dummy keys never encrypt anything. Every socket is closed before return.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "tlsoff/ktls.h"


#define NCOMBO (2 * KTLS_MAX_CIPHERS)

static const uint16_t versions[2] = { TLS_1_2_VERSION, TLS_1_3_VERSION };

/* Connect a fresh loopback pair through listener lfd; 0 or -1 (errno set). */
static int loopback_pair(int lfd, const struct sockaddr_in *addr, int *a, int *b)
{
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0)
		return -1;
	if (connect(*a, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    (*b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		int e = errno;
		close(*a);
		*a = -1;
		errno = e;
		return -1;
	}
	return 0;
}

/* Dummy but well-formed crypto_info for one combination. */
static int dummy_info(const struct ktls_cipher *c, uint16_t ver, struct ktls_crypto_info *ci)
{
	static const uint8_t key[KTLS_MAX_KEY] = { 0x42 }, iv[KTLS_MAX_IV] = { 0x24 };
	return ktls_crypto_info_fill(c, ver, key, iv, 0, ci);
}

static int try_conf(int fd, int optname, const struct ktls_crypto_info *ci)
{
	return setsockopt(fd, SOL_TLS, optname, &ci->u, (socklen_t)ci->len) == 0 ? 0 : errno;
}

int ktls_probe(struct ktls_caps *caps)
{
	struct utsname u;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	int fds[NCOMBO + 1], nfd = 0, lfd, rc = -1;
	size_t ncombo = 2 * ktls_cipher_count;

	memset(caps, 0, sizeof(*caps));
	if (uname(&u) == 0)
		snprintf(caps->release, sizeof(caps->release), "%s", u.release);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, NCOMBO) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		snprintf(caps->why, sizeof(caps->why), "cannot open a loopback TCP listener: %s", strerror(errno));
		goto out;
	}
	/* Enough ESTABLISHED sockets for every combination (+1 spare so the count is always even). */
	while ((size_t)nfd < ncombo) {
		if (loopback_pair(lfd, &addr, &fds[nfd], &fds[nfd + 1]) < 0) {
			snprintf(caps->why, sizeof(caps->why), "cannot connect over loopback: %s", strerror(errno));
			goto out;
		}
		nfd += 2;
	}

	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		const char *why = ktls_explain(KTLS_OP_ULP, errno, NULL, 0);
		caps->ulp_err = errno;
		snprintf(caps->why, sizeof(caps->why), "%s", why ? why : strerror(errno));
		rc = 0; /* the probe worked: the answer is "no kTLS" */
		goto out;
	}
	caps->ulp = true;

	for (size_t v = 0; v < 2; v++) {
		for (size_t i = 0; i < ktls_cipher_count; i++) {
			int fd = fds[v * ktls_cipher_count + i];
			struct ktls_crypto_info ci;
			if (fd != fds[0] && setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
				caps->tx_err[v][i] = caps->rx_err[v][i] = errno;
				continue;
			}
			if (dummy_info(&ktls_ciphers[i], versions[v], &ci) < 0)
				continue;
			if (!(caps->tx_err[v][i] = try_conf(fd, TLS_TX, &ci)))
				caps->tx[v] |= 1u << i;
			if (!(caps->rx_err[v][i] = try_conf(fd, TLS_RX, &ci)))
				caps->rx[v] |= 1u << i;
			/* Rekey: TLS 1.3, AES-128-GCM (row 0), TX already set -> set it again. */
			if (v == 1 && i == 0) {
				if (!(caps->tx[1] & 1u))
					caps->rekey_err = caps->tx_err[1][0];
				else if (!(caps->rekey_err = try_conf(fd, TLS_TX, &ci)))
					caps->rekey = true;
			}
		}
	}
	rc = 0;
out:
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* ---- report -------------------------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static const char *short_reason(int err)
{
	return err ? strerror(err) : "not tried";
}

int ktls_caps_print(const struct ktls_caps *caps, bool json, FILE *out)
{
	static const char *vname[2] = { "tls1.2", "tls1.3" };

	if (json) {
		fputs("{\"kernel\":", out);
		json_str(out, caps->release);
		fprintf(out, ",\"ulp\":%s,\"ulp_errno\":%d,\"why\":", caps->ulp ? "true" : "false", caps->ulp_err);
		json_str(out, caps->why);
		for (size_t v = 0; v < 2; v++) {
			fprintf(out, ",\"%s\":{", vname[v]);
			for (size_t i = 0; i < ktls_cipher_count; i++)
				fprintf(out, "%s\"%s\":{\"tx\":%s,\"rx\":%s,\"tx_errno\":%d,\"rx_errno\":%d}",
					i ? "," : "", ktls_ciphers[i].name, caps->tx[v] >> i & 1 ? "true" : "false",
					caps->rx[v] >> i & 1 ? "true" : "false", caps->tx_err[v][i], caps->rx_err[v][i]);
			fputc('}', out);
		}
		fprintf(out, ",\"rekey\":%s,\"rekey_errno\":%d}\n", caps->rekey ? "true" : "false", caps->rekey_err);
		return ferror(out) ? -1 : 0;
	}

	if (!caps->ulp) {
		fprintf(out, "kernel %s: kTLS unavailable: %s\n", caps->release, caps->why);
		return ferror(out) ? -1 : 0;
	}
	fprintf(out, "kernel %s: kTLS available (TCP_ULP \"tls\")\n", caps->release);
	fprintf(out, "  %-18s %-7s %-7s %-7s %-7s\n", "cipher", "1.2 tx", "1.2 rx", "1.3 tx", "1.3 rx");
	for (size_t i = 0; i < ktls_cipher_count; i++) {
		fprintf(out, "  %-18s", ktls_ciphers[i].name);
		for (size_t v = 0; v < 2; v++)
			fprintf(out, " %-7s %-7s", caps->tx[v] >> i & 1 ? "yes" : "no", caps->rx[v] >> i & 1 ? "yes" : "no");
		fputc('\n', out);
	}
	/* Say why for every refusal, in the words of the errno table. */
	for (size_t v = 0; v < 2; v++)
		for (size_t i = 0; i < ktls_cipher_count; i++)
			for (int d = 0; d < 2; d++) {
				int err = d ? caps->rx_err[v][i] : caps->tx_err[v][i];
				if (!err)
					continue;
				const char *why = ktls_explain(d ? KTLS_OP_RX : KTLS_OP_TX, err, &ktls_ciphers[i],
							       v ? TLS_1_3_VERSION : TLS_1_2_VERSION);
				fprintf(out, "  TLS %s %s %s: %s\n", v ? "1.3" : "1.2", ktls_ciphers[i].name,
					d ? "RX" : "TX", why ? why : short_reason(err));
			}
	fprintf(out, "  rekey (TLS 1.3 key update, 6.14+): %s", caps->rekey ? "yes" : "no");
	if (!caps->rekey)
		fprintf(out, " (%s)", short_reason(caps->rekey_err));
	fputc('\n', out);
	return ferror(out) ? -1 : 0;
}
