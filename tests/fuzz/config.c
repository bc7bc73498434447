/* libFuzzer harness for the command grammar (datapath/config.c): the text of a configuration file, which is
 * also what `tlsoffctl -batch` reads and, one line at a time, what tlsoffctl's arguments are. Beyond "no
 * crash", the contracts the daemon and tlsoffctl rely on:
 *   - a refused file leaves the configuration empty and says where: "PATH:LINE: message";
 *   - an accepted one passes config_check, and `config dump` (config_format) is a file that loads again
 *     into a configuration whose dump is the same text (what `tlsoffctl config dump > file` promises);
 *   - every line of a dump is one line (no newline inside a word) that cmd_split/cmd_parse accept alone.
 * The resolver is tests/fuzz/lib/no_dns.c (names resolve only under .test). */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tlsoff/config.h"

#define PATH "/etc/tlsoff/fuzz.conf"

struct text {
	char *buf;
	size_t len, cap;
	unsigned lines;
};

static void add_line(const char *line, void *arg)
{
	struct text *t = arg;
	size_t n = strlen(line);
	CHECK(!memchr(line, '\n', n) && !memchr(line, '\r', n));
	if (t->len + n + 2 > t->cap) {
		t->cap = (t->len + n + 2) * 2;
		CHECK((t->buf = realloc(t->buf, t->cap)) != NULL);
	}
	memcpy(t->buf + t->len, line, n);
	t->len += n;
	t->buf[t->len++] = '\n';
	t->buf[t->len] = '\0';
	t->lines++;

	/* each line stands alone as a command, as tlsoffctl -batch and the control socket take it */
	char copy[n + 1], *argv[256], err[TLSOFF_ERR_MAX];
	static struct cmd c;
	memcpy(copy, line, n + 1);
	int argc = cmd_split(copy, argv, 256, err, sizeof(err));
	CHECK(argc > 0);
	if (cmd_parse(argc, argv, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "dump line refused: %s\n  %s\n", err, line);
		CHECK(0);
	}
}

static int load(const char *text, size_t len, struct config *cfg, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, len, "r");
	CHECK(f != NULL);
	int rc = config_load_stream(f, PATH, cfg, err, errlen);
	fclose(f);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again;
	char err[TLSOFF_ERR_MAX];
	if (size == 0 || size > 64 * 1024)   /* fmemopen wants a size; the daemon reads files of any size */
		return 0;
	if (load((const char *)data, size, &cfg, err, sizeof(err)) != 0) {
		CHECK(!strncmp(err, PATH ":", strlen(PATH ":")) && strlen(err) > strlen(PATH ":"));
		CHECK(cfg.nbackends == 0 && cfg.nfrontends == 0 && !cfg.backends && !cfg.frontends);
		return 0;
	}
	CHECK(config_check(&cfg, err, sizeof(err)) == 0);
	for (unsigned i = 0; i < cfg.nfrontends; i++) {
		const struct frontend_conf *f = &cfg.frontends[i];
		CHECK(f->mode != MODE_TLS || (f->ncerts >= 1 && f->ncerts <= TLSOFF_MAX_CERTS));
		CHECK(f->nroutes <= TLSOFF_MAX_ROUTES && f->alpn_len <= TLSOFF_ALPN_MAX);
		CHECK((f->client_verify == CLIENT_VERIFY_NONE) == (f->client_ca[0] == '\0'));
	}
	for (unsigned i = 0; i < cfg.nbackends; i++)
		CHECK(cfg.backends[i].nservers >= 1 && cfg.backends[i].nservers <= TLSOFF_MAX_SERVERS);

	struct text dump = { 0 }, dump2 = { 0 };
	config_format(&cfg, add_line, &dump);
	if (load(dump.buf ? dump.buf : "", dump.len, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "the dump does not load: %s\n--- dump\n%s---\n", err, dump.buf);
		CHECK(0);
	}
	config_format(&again, add_line, &dump2);
	if (dump.len != dump2.len || (dump.len && memcmp(dump.buf, dump2.buf, dump.len))) {
		fprintf(stderr, "dump of the reloaded dump differs\n--- first\n%s--- second\n%s---\n", dump.buf, dump2.buf);
		CHECK(0);
	}
	CHECK(again.nbackends == cfg.nbackends && again.nfrontends == cfg.nfrontends);

	/* the copy the daemon keeps per worker dumps the same */
	struct config copy;
	struct text dump3 = { 0 };
	CHECK(config_copy(&copy, &cfg) == 0);
	config_format(&copy, add_line, &dump3);
	CHECK(dump3.len == dump.len && (!dump.len || !memcmp(dump3.buf, dump.buf, dump.len)));

	free(dump.buf);
	free(dump2.buf);
	free(dump3.buf);
	config_free(&copy);
	config_free(&again);
	config_free(&cfg);
	return 0;
}
