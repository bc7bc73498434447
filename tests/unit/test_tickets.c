/* Unit tests for session ticket keys (datapath/tickets.c): the key file's format and errors, which key
 * encrypts and which decrypt (real TLS 1.2 and 1.3 handshakes in-process over memory BIOs, resumed across
 * two server SSL_CTX standing for two nodes of a fleet), reloads that keep the old keys on a bad file,
 * and the callback racing reloads on several threads. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsoff/log.h"
#include "tlsoff/tickets.h"
#include "run_suite.h"
#include "test_cert.h"

static char err[8192];
static char dir[64];

static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

/* ---- key files --------------------------------------------------------------------------------------- */

/* Key number `seed`: 80 known bytes; its name is the first 16. */
static void key_bytes(int seed, unsigned char out[TICKETS_KEY_BYTES])
{
	for (int i = 0; i < TICKETS_KEY_BYTES; i++)
		out[i] = (unsigned char)(seed * 31 + i * 7);
	out[0] = (unsigned char)seed;   /* names differ for seeds 0-255 */
	out[1] = 0xa5;
}

static const char *key_line(int seed)
{
	static char line[4][160];
	static int next;
	unsigned char raw[TICKETS_KEY_BYTES];
	char *out = line[next++ % 4];
	key_bytes(seed, raw);
	EVP_EncodeBlock((unsigned char *)out, raw, TICKETS_KEY_BYTES);
	return out;
}

static const char *name_hex(int seed)
{
	static char hex[33];
	unsigned char raw[TICKETS_KEY_BYTES];
	key_bytes(seed, raw);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return hex;
}

static void setup(void)
{
	umask(077);   /* key files readable by their owner only, as they should be */
	snprintf(dir, sizeof(dir), "/tmp/tlsoff-tickets.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(tickets_init(), 0);
}

static void teardown(void)
{
	char cmd[128];
	tickets_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write text to DIR/name (through a temporary file renamed over it when `rename_over`). */
static const char *write_as(const char *name, const char *text, int rename_over)
{
	static char path[4][128];
	static int next;
	char *p = path[next++ % 4], tmp[160];
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	FILE *f = fopen(rename_over ? tmp : p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	if (rename_over)
		ck_assert_int_eq(rename(tmp, p), 0);
	return p;
}

static const char *write_keys(const char *name, const char *text)
{
	return write_as(name, text, 0);
}

/* A file with keys seeds[0..n-1], first first. */
static const char *keyfile(const char *name, int n, const int *seeds)
{
	char text[2048] = "";
	for (int i = 0; i < n; i++) {
		strcat(text, key_line(seeds[i]));
		strcat(text, "\n");
	}
	return write_keys(name, text);
}

static void use(const char *path)
{
	ck_assert_msg(tickets_configure(path, err, sizeof(err)) == 0, "%s", err);
}

static void expect_first(int seed, unsigned nkeys)
{
	struct tickets_status st;
	tickets_status(&st);
	ck_assert_str_eq(st.first_name, name_hex(seed));
	ck_assert_uint_eq(st.nkeys, nkeys);
}

/* ---- 1. the file ------------------------------------------------------------------------------------- */

START_TEST(good_file_comments_blanks_crlf)
{
	char text[2048];
	snprintf(text, sizeof(text),
		 "# fleet ticket keys: the first encrypts, all decrypt\n"
		 "\n"
		 "%s\r\n"
		 "   \t\n"
		 "  %s  \n"
		 "    # an indented comment\n"
		 "%s",   /* no newline at the end */
		 key_line(1), key_line(2), key_line(3));
	const char *path = write_keys("good.keys", text);
	ck_assert_msg(tickets_check_file(path, err, sizeof(err)) == 0, "%s", err);
	use(path);
	expect_first(1, 3);
	struct tickets_status st;
	tickets_status(&st);
	ck_assert_str_eq(st.path, path);

	/* unpadded base64 is the same key */
	char unpadded[160];
	snprintf(unpadded, sizeof(unpadded), "%s", key_line(4));
	char *eq = strchr(unpadded, '=');
	ck_assert_ptr_nonnull(eq);
	*eq = '\0';
	ck_assert_int_eq(tickets_check_file(write_keys("unpadded.keys", unpadded), err, sizeof(err)), 0);
}
END_TEST

START_TEST(generated_keys)
{
	char a[128], b[128], text[300];
	ck_assert_int_eq(tickets_gen_key(a, sizeof(a)), 0);
	ck_assert_int_eq(tickets_gen_key(b, sizeof(b)), 0);
	ck_assert_uint_eq(strlen(a), 108);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(tickets_gen_key(a, 108), -1);   /* no room for the NUL */
	ck_assert_int_eq(tickets_gen_key(a, sizeof(a)), 0);
	snprintf(text, sizeof(text), "%s\n%s\n", a, b);
	use(write_keys("gen.keys", text));
	struct tickets_status st;
	tickets_status(&st);
	ck_assert_uint_eq(st.nkeys, 2);
}
END_TEST

/* Every error names the file, the line when there is one, and what is wrong. */
static const struct { const char *text, *msg; } bad_files[] = {
	{ "", ": no keys (one base64 line of 80 bytes per key" },
	{ "# only a comment\n\n", ": no keys" },
	{ "#\nKEY1\nnot base64 at all!\n", ":3: not a base64 key (one key per line: the base64 of 80 bytes)" },
	{ "KEY1\nAAAA=AAA\n", ":2: not a base64 key" },
	{ "KEY1\nQUJD\n", ":2: the key is 3 bytes, expected 80 (16-byte name, 32-byte HMAC secret, 32-byte AES key)" },
	/* what `openssl rand -base64 80` prints: 64 characters, then the rest on a second line */
	{ "WRAPPED\n", ":1: the key is 48 bytes, expected 80" },
	{ "KEY1\nKEY2\nKEY1\n", ":3: the same key name as line 1" },
	{ "KEY1 KEY2\n", ":1: not a base64 key" },
};

START_TEST(bad_file)
{
	char text[1024] = "", *o = text;
	for (const char *p = bad_files[_i].text; *p;) {
		if (!strncmp(p, "KEY", 3)) {
			o += sprintf(o, "%s", key_line(p[3] - '0'));
			p += 4;
		} else if (!strncmp(p, "WRAPPED", 7)) {
			const char *k = key_line(5);
			o += sprintf(o, "%.64s\n%s", k, k + 64);
			p += 7;
		} else {
			*o++ = *p++;
			*o = '\0';
		}
	}
	const char *path = write_keys("bad.keys", text);
	ck_assert_int_eq(tickets_check_file(path, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error does not start with the file name: %s", err);
	ck_assert_msg(strstr(err, bad_files[_i].msg), "got '%s', want '%s'", err, bad_files[_i].msg);
	/* and it is not taken into use */
	struct tickets_status before, after;
	tickets_status(&before);
	ck_assert_int_eq(tickets_configure(path, err, sizeof(err)), -1);
	tickets_status(&after);
	ck_assert_str_eq(after.path, "");
	ck_assert_str_eq(after.first_name, before.first_name);
}
END_TEST

START_TEST(missing_and_odd_files)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/nope.keys", dir);
	ck_assert_int_eq(tickets_check_file(path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "nope.keys: cannot open: No such file or directory"), "%s", err);
	ck_assert_int_eq(tickets_check_file(dir, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ": not a regular file"), "%s", err);
	char *big = malloc(TICKETS_FILE_MAX + 2);
	memset(big, '#', TICKETS_FILE_MAX + 1);
	big[TICKETS_FILE_MAX + 1] = '\0';
	ck_assert_int_eq(tickets_check_file(write_keys("big.keys", big), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "too large for a ticket key file"), "%s", err);
	free(big);
	char many[TICKETS_MAX_KEYS * 120 + 200] = "";
	for (int i = 0; i <= TICKETS_MAX_KEYS; i++) {
		strcat(many, key_line(i + 10));
		strcat(many, "\n");
	}
	ck_assert_int_eq(tickets_check_file(write_keys("many.keys", many), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":65: more than 64 keys"), "%s", err);
}
END_TEST

/* ---- 2. handshakes ----------------------------------------------------------------------------------- */


/* A server SSL_CTX set up as tls_ctx.c does it for tickets: one per "node". */
static SSL_CTX *server_ctx(int version)
{
	make_cert();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, test_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, test_key), 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);   /* stateless tickets only */
	tickets_attach(ctx);
	return ctx;
}

static SSL *new_end(SSL_CTX *ctx)
{
	SSL *ssl = SSL_new(ctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(r, -1);
	BIO_set_mem_eof_return(w, -1);
	SSL_set_bio(ssl, r, w);
	return ssl;
}

static int pump(SSL *from, SSL *to)
{
	char buf[16384];
	int n, moved = 0;
	while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0) {
		if (BIO_write(SSL_get_rbio(to), buf, n) != n)
			return -1;
		moved = 1;
	}
	return moved;
}

struct outcome {
	int ok, reused;
	SSL_SESSION *sess;       /* the client's session afterwards (newest ticket), to resume with */
};

/* One connection from a fresh client to sctx, resuming `resume` when given. Thread-safe: no ck_assert. */
static struct outcome connect_once(SSL_CTX *sctx, int version, SSL_SESSION *resume)
{
	struct outcome o = { 0, 0, NULL };
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(cctx, version);
	SSL_CTX_set_max_proto_version(cctx, version);
	SSL *s = new_end(sctx), *c = new_end(cctx);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (resume)
		SSL_set_session(c, resume);
	int rs = 0, rc = 0;
	for (int round = 0; round < 20 && (rs != 1 || rc != 1); round++) {
		if (rc != 1)
			rc = SSL_do_handshake(c);
		pump(c, s);
		if (rs != 1)
			rs = SSL_do_handshake(s);
		pump(s, c);
	}
	if (rs == 1 && rc == 1) {
		char b;
		SSL_read(c, &b, 1);   /* TLS 1.3: the NewSessionTickets come after the handshake */
		o.ok = 1;
		o.reused = SSL_session_reused(s) && SSL_session_reused(c);
		o.sess = SSL_get1_session(c);
	}
	/* as after a close_notify both ways: SSL_free would otherwise mark the session not resumable */
	SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(cctx);
	return o;
}

static struct outcome connect_ok(SSL_CTX *sctx, int version, SSL_SESSION *resume)
{
	struct outcome o = connect_once(sctx, version, resume);
	ck_assert_msg(o.ok, "handshake failed: %s", ERR_error_string(ERR_get_error(), NULL));
	ck_assert_ptr_nonnull(o.sess);
	return o;
}

/* The name of the key that encrypted the session's ticket: the ticket's first 16 bytes. */
static const char *ticket_key_name(const SSL_SESSION *sess)
{
	static char hex[33];
	const unsigned char *t;
	size_t len;
	SSL_SESSION_get0_ticket(sess, &t, &len);
	ck_assert_uint_ge(len, 16 + 16 + 32);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", t[i]);
	return hex;
}

/* Node A issues with [k1]; node B with [k2, k1] resumes it and renews under k2; B with [k1, k2] resumes
 * without renewing (TLS 1.2: no new ticket); B with [k2] alone does a full handshake. */
START_TEST(first_encrypts_all_decrypt)
{
	int v = versions[_i];
	SSL_CTX *a = server_ctx(v), *b = server_ctx(v);
	const int k1[] = { 1 }, k21[] = { 2, 1 }, k12[] = { 1, 2 }, k2[] = { 2 };

	use(keyfile("a.keys", 1, k1));
	struct outcome full = connect_ok(a, v, NULL);
	ck_assert(!full.reused);
	ck_assert_str_eq(ticket_key_name(full.sess), name_hex(1));

	use(keyfile("b.keys", 2, k21));
	struct outcome r = connect_ok(b, v, full.sess);
	ck_assert_msg(r.reused, "TLS %x: a ticket of the second key did not resume", v);
	ck_assert_str_eq(ticket_key_name(r.sess), name_hex(2));   /* renewed under the first key */
	SSL_SESSION_free(r.sess);

	struct outcome fresh = connect_ok(b, v, NULL);   /* new tickets: the first key */
	ck_assert(!fresh.reused);
	ck_assert_str_eq(ticket_key_name(fresh.sess), name_hex(2));
	SSL_SESSION_free(fresh.sess);

	use(keyfile("b.keys", 2, k12));
	r = connect_ok(b, v, full.sess);
	ck_assert(r.reused);
	ck_assert_str_eq(ticket_key_name(r.sess), name_hex(1));
	if (v == TLS1_2_VERSION) {   /* decrypted by the first key: no renewal, the same ticket */
		const unsigned char *t1, *t2;
		size_t l1, l2;
		SSL_SESSION_get0_ticket(full.sess, &t1, &l1);
		SSL_SESSION_get0_ticket(r.sess, &t2, &l2);
		ck_assert(l1 == l2 && !memcmp(t1, t2, l1));
	}
	SSL_SESSION_free(r.sess);

	use(keyfile("b.keys", 1, k2));
	r = connect_ok(b, v, full.sess);
	ck_assert_msg(!r.reused, "TLS %x: resumed without the key", v);
	ck_assert_str_eq(ticket_key_name(r.sess), name_hex(2));
	SSL_SESSION_free(r.sess);

	SSL_SESSION_free(full.sess);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
}
END_TEST

/* Random keys (no file) as before: they resume on the same process, rotate hourly, and a rotation keeps
 * the previous key for decryption; with a file, rotation does nothing. */
START_TEST(random_keys_rotate)
{
	int v = versions[_i];
	SSL_CTX *ctx = server_ctx(v);
	struct tickets_status st0, st1;
	tickets_status(&st0);
	ck_assert_str_eq(st0.path, "");
	ck_assert_uint_eq(st0.nkeys, 1);
	struct outcome full = connect_ok(ctx, v, NULL);
	ck_assert_str_eq(ticket_key_name(full.sess), st0.first_name);
	ck_assert_int_eq(tickets_rotate(), 0);
	tickets_status(&st1);
	ck_assert_uint_eq(st1.nkeys, 2);
	ck_assert_str_ne(st1.first_name, st0.first_name);
	struct outcome r = connect_ok(ctx, v, full.sess);
	ck_assert(r.reused);
	ck_assert_str_eq(ticket_key_name(r.sess), st1.first_name);
	SSL_SESSION_free(r.sess);
	ck_assert_int_eq(tickets_rotate(), 0);   /* two rotations later the first ticket is gone */
	r = connect_ok(ctx, v, full.sess);
	ck_assert(!r.reused);
	SSL_SESSION_free(r.sess);

	const int k1[] = { 1 };
	use(keyfile("f.keys", 1, k1));
	ck_assert_int_eq(tickets_rotate(), 0);
	expect_first(1, 1);
	/* back to random keys: "" */
	use("");
	tickets_status(&st1);
	ck_assert_str_eq(st1.path, "");
	ck_assert_uint_eq(st1.nkeys, 1);
	ck_assert_str_ne(st1.first_name, name_hex(1));
	SSL_SESSION_free(full.sess);
	SSL_CTX_free(ctx);
}
END_TEST

/* ---- 3. reloads -------------------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* tickets_tick the way the main loop calls it, for about `ms` */
static void ticks(int ms)
{
	for (int t = 0; t < ms; t += 50) {
		tickets_tick();
		sleep_ms(50);
	}
}

START_TEST(reload_keeps_old_keys_on_bad_file)
{
	int v = TLS1_3_VERSION;
	SSL_CTX *ctx = server_ctx(v);
	const int k1[] = { 1 }, k21[] = { 2, 1 }, k3[] = { 3 };
	const char *path = keyfile("fleet.keys", 1, k1);
	use(path);
	struct outcome full = connect_ok(ctx, v, NULL);

	/* a bad file: every way of re-reading it refuses and keeps [k1] */
	write_keys("fleet.keys", "this is not a key\n");
	ck_assert_int_eq(tickets_reload(err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "fleet.keys:1: not a base64 key"), "%s", err);
	ck_assert_int_eq(tickets_configure(path, err, sizeof(err)), -1);
	ck_assert_int_eq(tickets_prepare(path, err, sizeof(err)), -1);
	tickets_commit();   /* nothing prepared: nothing happens */
	ticks(600);
	expect_first(1, 1);
	struct outcome r = connect_ok(ctx, v, full.sess);
	ck_assert(r.reused);
	SSL_SESSION_free(r.sess);

	/* fixed, by rename: the tick reloads it */
	keyfile("fleet.keys.new", 2, k21);
	char from[160];
	snprintf(from, sizeof(from), "%s.new", path);
	ck_assert_int_eq(rename(from, path), 0);
	ticks(600);
	expect_first(2, 2);
	r = connect_ok(ctx, v, full.sess);
	ck_assert(r.reused);
	ck_assert_str_eq(ticket_key_name(r.sess), name_hex(2));
	SSL_SESSION_free(r.sess);

	/* removed: still [k2, k1] */
	ck_assert_int_eq(unlink(path), 0);
	ticks(400);
	expect_first(2, 2);

	/* back, rewritten in place */
	keyfile("fleet.keys", 1, k3);
	ticks(600);
	expect_first(3, 1);
	r = connect_ok(ctx, v, full.sess);
	ck_assert(!r.reused);
	SSL_SESSION_free(r.sess);
	SSL_SESSION_free(full.sess);
	SSL_CTX_free(ctx);
}
END_TEST

/* A file is read only once it has stopped changing for one check: an unchanged file is not re-read, and a
 * change becomes effective within two checks. */
START_TEST(tick_waits_for_a_stable_file)
{
	const int k1[] = { 1 }, k2[] = { 2 };
	const char *path = keyfile("t.keys", 1, k1);
	use(path);
	ticks(400);
	expect_first(1, 1);
	keyfile("t.keys", 1, k2);
	sleep_ms(TICKETS_CHECK_MS + 20);
	tickets_tick();   /* sees the change, waits */
	expect_first(1, 1);
	sleep_ms(TICKETS_CHECK_MS + 20);
	tickets_tick();   /* unchanged since: reads it */
	expect_first(2, 1);
}
END_TEST

/* prepare reads and checks without changing anything; commit puts it in use. */
START_TEST(prepare_then_commit)
{
	const int k1[] = { 1 }, k2[] = { 2 };
	use(keyfile("p1.keys", 1, k1));
	const char *p2 = keyfile("p2.keys", 1, k2);
	ck_assert_msg(tickets_prepare(p2, err, sizeof(err)) == 0, "%s", err);
	expect_first(1, 1);
	tickets_commit();
	expect_first(2, 1);
	struct tickets_status st;
	tickets_status(&st);
	ck_assert_str_eq(st.path, p2);
	tickets_commit();   /* twice: nothing more */
	expect_first(2, 1);
	/* a prepared change that is never committed is dropped by the next prepare */
	ck_assert_int_eq(tickets_prepare(keyfile("p3.keys", 1, k1), err, sizeof(err)), 0);
	ck_assert_int_eq(tickets_prepare(p2, err, sizeof(err)), 0);
	tickets_commit();
	expect_first(2, 1);
}
END_TEST

/* ---- 4. workers racing reloads ------------------------------------------------------------------------ */

struct racer {
	SSL_CTX *ctx;
	int version, rounds, failures, not_reused;
	atomic_int *running;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		struct outcome full = connect_once(r->ctx, r->version, NULL);
		if (!full.ok || !full.sess) {
			r->failures++;
			continue;
		}
		struct outcome again = connect_once(r->ctx, r->version, full.sess);
		if (!again.ok)
			r->failures++;
		else if (!again.reused)
			r->not_reused++;
		SSL_SESSION_free(full.sess);
		SSL_SESSION_free(again.sess);
	}
	atomic_fetch_sub(r->running, 1);
	return NULL;
}

/* Handshakes on three threads while the main thread swaps between [k1, k2] and [k2, k1]: every ticket
 * stays decryptable, so every resumption must succeed (and ASan/valgrind would see a freed key set). */
START_TEST(callback_races_reloads)
{
	int v = versions[_i];
	SSL_CTX *ctx = server_ctx(v);
	const int k12[] = { 1, 2 }, k21[] = { 2, 1 };
	const char *pa = keyfile("ra.keys", 2, k12), *pb = keyfile("rb.keys", 2, k21);
	use(pa);
	log_init("test_tickets", LOG_WARNING, false);   /* not a line per swap */
	struct racer rs[3];
	pthread_t th[3];
	atomic_int running = 3;
	for (int i = 0; i < 3; i++) {
		rs[i] = (struct racer){ ctx, v, 40, 0, 0, &running };
		ck_assert_int_eq(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	int swaps = 0;
	while (atomic_load(&running) > 0) {
		use(swaps++ % 2 ? pa : pb);
		sleep_ms(1);
	}
	ck_assert_int_gt(swaps, 20);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(rs[i].failures, 0);
		ck_assert_int_eq(rs[i].not_reused, 0);
	}
	SSL_CTX_free(ctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tickets");
	TCase *tc = tcase_create("tickets");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, good_file_comments_blanks_crlf);
	tcase_add_test(tc, generated_keys);
	tcase_add_loop_test(tc, bad_file, 0, sizeof(bad_files) / sizeof(bad_files[0]));
	tcase_add_test(tc, missing_and_odd_files);
	tcase_add_loop_test(tc, first_encrypts_all_decrypt, 0, 2);
	tcase_add_loop_test(tc, random_keys_rotate, 0, 2);
	tcase_add_test(tc, reload_keeps_old_keys_on_bad_file);
	tcase_add_test(tc, tick_waits_for_a_stable_file);
	tcase_add_test(tc, prepare_then_commit);
	tcase_add_loop_test(tc, callback_races_reloads, 0, 2);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
