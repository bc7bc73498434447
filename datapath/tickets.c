/* tickets.c — session ticket keys (RFC 5077 format as OpenSSL's callback expects: 16-byte key name,
 * AES-256-CBC for the ticket, HMAC-SHA256 over it), random and rotated in-process or read from a file
 * shared by a fleet (`tickets keys FILE`; the format is in include/tlsoff/tickets.h).
 *
 * A key set is one block in OpenSSL's secure heap (the normal heap when there is none), zeroised when
 * dropped. The workers' ticket callback reads the set in use under a read lock; the main thread swaps in a
 * new set under the write lock (writer-preferring, so a busy fleet of handshakes never starves a reload)
 * and frees the old one afterwards: no worker can still hold it. */
#include "tlsoff/tickets.h"
#include "tlsoff/file_id.h"
#include "tlsoff/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

struct keyset {
	size_t size;                 /* bytes allocated, for the zeroising free */
	unsigned n;                  /* k[0] encrypts, all decrypt */
	struct ticket_key k[];
};

/* The set in use: written under the write lock by the main thread (holding state_mu too), read under the
 * read lock by the workers' callback. */
static struct keyset *cur;
static pthread_rwlock_t lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Everything else belongs to the main thread; state_mu makes the API safe from any thread anyway. */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char path[PATH_MAX];         /* the file in use, "" = random keys */
	struct file_id seen;         /* that file as last read */
	struct file_id changed;      /* a change seen by the last check: read once it holds for one more */
	bool have_changed;
	uint64_t next_check_ms;
	bool prepared;               /* tickets_prepare ran and tickets_commit has not */
	char prep_path[PATH_MAX];
	struct keyset *prep;         /* NULL with prep_path "" (random keys) */
	struct file_id prep_id;
} S;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- key sets ------------------------------------------------------------------------------------- */

/* The secure heap (mlocked, never in a core dump) when the daemon set one up and it has room; plain memory
 * otherwise. OPENSSL_secure_clear_free zeroises and frees either. */
static void *secret_zalloc(size_t size)
{
	void *p = OPENSSL_secure_zalloc(size);
	return p ? p : OPENSSL_zalloc(size);
}

static struct keyset *keyset_new(unsigned n)
{
	size_t size = sizeof(struct keyset) + n * sizeof(struct ticket_key);
	struct keyset *ks = secret_zalloc(size);
	if (ks)
		ks->size = size;
	return ks;
}

static void keyset_free(struct keyset *ks)
{
	if (ks)
		OPENSSL_secure_clear_free(ks, ks->size);
}

static bool keyset_equal(const struct keyset *a, const struct keyset *b)
{
	return a && b && a->n == b->n && CRYPTO_memcmp(a->k, b->k, a->n * sizeof(a->k[0])) == 0;
}

static int random_key(struct ticket_key *k)
{
	return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1 &&
	       RAND_priv_bytes(k->aes, sizeof(k->aes)) == 1 ? 0 : -1;
}

/* A fresh random key first, then the current first key of prev (if any) to decrypt what it issued. */
static struct keyset *random_set(const struct keyset *prev)
{
	struct keyset *ks = keyset_new(2);
	if (!ks || random_key(&ks->k[0])) {
		keyset_free(ks);
		return NULL;
	}
	ks->n = 1;
	if (prev && prev->n)
		ks->k[ks->n++] = prev->k[0];
	return ks;
}

/* Put ks in use (NULL: none) and zeroise the previous set. state_mu held. */
static void install(struct keyset *ks)
{
	pthread_rwlock_wrlock(&lock);
	struct keyset *old = cur;
	cur = ks;
	pthread_rwlock_unlock(&lock);
	keyset_free(old);
}

/* ---- the file ------------------------------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (standard alphabet, '=' padding optional but only at the end). Stores at most cap bytes
 * and returns the decoded length (which may exceed cap), or -1. */
static long b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0, pad = 0;
	while (len && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (len % 4 == 1 || (pad && (len + pad) % 4))
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n < cap)
				out[n] = (unsigned char)(acc >> bits);
			n++;
		}
	}
	if (acc & ((1u << bits) - 1))   /* non-zero bits left over: not what an encoder writes */
		return -1;
	return (long)n;
}

/* Read and check a key file. On success the set (first line first) and the file as read; on error NULL,
 * err set, and *id what the file looked like (so a broken file is not re-read until it changes). */
static struct keyset *load_file(const char *path, struct file_id *id, char *err, size_t errlen)
{
	struct keyset *ks = NULL;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	unsigned lines[TICKETS_MAX_KEYS];
	struct stat st;

	memset(id, 0, sizeof(*id));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		file_id_stat(path, id);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	file_id_of(&st, id);
	if (!S_ISREG(st.st_mode)) {
		errf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > TICKETS_FILE_MAX) {
		errf(err, errlen, "%s: %lld bytes: too large for a ticket key file (at most %d keys)", path,
		     (long long)st.st_size, TICKETS_MAX_KEYS);
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	if (!(buf = secret_zalloc(cap)) || !(ks = keyset_new(TICKETS_MAX_KEYS))) {
		errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (len < cap - 1) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			errf(err, errlen, "%s: read error: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';

	unsigned lineno = 0;
	for (char *line = buf, *next; line && line < buf + len; line = next) {
		char *nl = memchr(line, '\n', (size_t)(buf + len - line));
		next = nl ? nl + 1 : NULL;
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		lineno++;
		while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			l--;
		while (l && (*line == ' ' || *line == '\t')) {
			line++;
			l--;
		}
		if (!l || *line == '#')
			continue;
		unsigned char raw[TICKETS_KEY_BYTES];
		long got = b64_decode(line, l, raw, sizeof(raw));
		if (got != TICKETS_KEY_BYTES) {
			OPENSSL_cleanse(raw, sizeof(raw));
			if (got < 0)
				errf(err, errlen, "%s:%u: not a base64 key (one key per line: the base64 of %d bytes)", path,
				     lineno, TICKETS_KEY_BYTES);
			else
				errf(err, errlen, "%s:%u: the key is %ld bytes, expected %d (16-byte name, 32-byte "
				     "HMAC secret, 32-byte AES key) in one base64 line", path, lineno, got,
				     TICKETS_KEY_BYTES);
			goto fail;
		}
		if (ks->n == TICKETS_MAX_KEYS) {
			OPENSSL_cleanse(raw, sizeof(raw));
			errf(err, errlen, "%s:%u: more than %d keys", path, lineno, TICKETS_MAX_KEYS);
			goto fail;
		}
		struct ticket_key *k = &ks->k[ks->n];
		memcpy(k->name, raw, 16);
		memcpy(k->hmac, raw + 16, 32);
		memcpy(k->aes, raw + 48, 32);
		OPENSSL_cleanse(raw, sizeof(raw));
		for (unsigned i = 0; i < ks->n; i++)
			if (!memcmp(ks->k[i].name, k->name, 16)) {
				errf(err, errlen, "%s:%u: the same key name as line %u (each key needs its own name)",
				     path, lineno, lines[i]);
				goto fail;
			}
		lines[ks->n++] = lineno;
	}
	if (!ks->n) {
		errf(err, errlen, "%s: no keys (one base64 line of %d bytes per key; '#' comments)", path,
		     TICKETS_KEY_BYTES);
		goto fail;
	}
	goto out;
fail:
	keyset_free(ks);
	ks = NULL;
out:
	if (buf)
		OPENSSL_secure_clear_free(buf, cap);
	close(fd);
	return ks;
}

int tickets_check_file(const char *path, char *err, size_t errlen)
{
	struct file_id id;
	struct keyset *ks = load_file(path, &id, err, errlen);
	keyset_free(ks);
	return ks ? 0 : -1;
}

/* ---- using a file --------------------------------------------------------------------------------- */

static void warn_mode(const char *path, const struct file_id *id)
{
	if (id->mode & S_IROTH)
		log_warn("ticket keys: %s is readable by every user: whoever reads it can decrypt the sessions its "
			 "keys protect (chmod o-r)", path);
}

static void drop_prepared(void)
{
	keyset_free(S.prep);
	S.prep = NULL;
	S.prepared = false;
}

int tickets_prepare(const char *path, char *err, size_t errlen)
{
	struct file_id id;
	pthread_mutex_lock(&state_mu);
	drop_prepared();
	if (path && *path) {
		struct keyset *ks = strlen(path) < sizeof(S.prep_path) ? load_file(path, &id, err, errlen) : NULL;
		if (!ks) {
			if (strlen(path) >= sizeof(S.prep_path))
				errf(err, errlen, "ticket key file name too long");
			pthread_mutex_unlock(&state_mu);
			return -1;
		}
		S.prep = ks;
		S.prep_id = id;
	}
	snprintf(S.prep_path, sizeof(S.prep_path), "%s", path ? path : "");
	S.prepared = true;
	pthread_mutex_unlock(&state_mu);
	return 0;
}

void tickets_commit(void)
{
	pthread_mutex_lock(&state_mu);
	if (!S.prepared) {
		pthread_mutex_unlock(&state_mu);
		return;
	}
	S.prepared = false;
	if (!S.prep_path[0]) {
		if (S.path[0]) {   /* from a file back to random keys */
			struct keyset *ks = random_set(NULL);
			if (ks) {
				install(ks);
				log_notice("ticket keys: random in-process keys from now on (rotated every %d s); "
					   "tickets issued with the keys of %s no longer resume", TICKET_ROTATE_SECONDS,
					   S.path);
				S.path[0] = '\0';
			} else {
				log_err("ticket keys: cannot make random keys: keeping the keys of %s", S.path);
			}
		}
		pthread_mutex_unlock(&state_mu);
		return;
	}
	bool same_path = !strcmp(S.path, S.prep_path), same_keys = same_path && keyset_equal(cur, S.prep);
	if (same_keys)
		log_debug("ticket keys: %s re-read: the same %u key%s", S.prep_path, S.prep->n, S.prep->n == 1 ? "" : "s");
	else
		log_notice("ticket keys: %s %u key%s from %s (the first encrypts)", same_path ? "reloaded" : "loaded",
			   S.prep->n, S.prep->n == 1 ? "" : "s", S.prep_path);
	if (!same_path)
		warn_mode(S.prep_path, &S.prep_id);
	memcpy(S.path, S.prep_path, sizeof(S.path));
	S.seen = S.prep_id;
	S.have_changed = false;
	install(S.prep);
	S.prep = NULL;
	pthread_mutex_unlock(&state_mu);
}

int tickets_configure(const char *path, char *err, size_t errlen)
{
	if (tickets_prepare(path, err, errlen) < 0)
		return -1;
	tickets_commit();
	return 0;
}

/* Re-read S.path. state_mu held. */
static int reload_locked(char *err, size_t errlen)
{
	struct file_id id;
	struct keyset *ks = load_file(S.path, &id, err, errlen);
	S.seen = id;
	S.have_changed = false;
	if (!ks)
		return -1;
	if (keyset_equal(cur, ks)) {
		log_debug("ticket keys: %s re-read: the same %u key%s", S.path, ks->n, ks->n == 1 ? "" : "s");
		keyset_free(ks);
		return 0;
	}
	log_notice("ticket keys: reloaded %u key%s from %s", ks->n, ks->n == 1 ? "" : "s", S.path);
	warn_mode(S.path, &id);
	install(ks);
	return 0;
}

int tickets_reload(char *err, size_t errlen)
{
	pthread_mutex_lock(&state_mu);
	int rc = S.path[0] ? reload_locked(err, errlen) : 0;
	pthread_mutex_unlock(&state_mu);
	return rc;
}

void tickets_tick(void)
{
	char err[PATH_MAX + 256];
	pthread_mutex_lock(&state_mu);
	uint64_t now = mono_ms();
	if (!S.path[0] || now < S.next_check_ms) {
		pthread_mutex_unlock(&state_mu);
		return;
	}
	S.next_check_ms = now + TICKETS_CHECK_MS;
	struct file_id id;
	file_id_stat(S.path, &id);
	if (file_id_same(&id, &S.seen)) {
		S.have_changed = false;
	} else if (!S.have_changed || !file_id_same(&id, &S.changed)) {
		S.changed = id;          /* changed: read it once it has stayed so for one more check */
		S.have_changed = true;
	} else if (reload_locked(err, sizeof(err)) < 0) {
		unsigned n = cur ? cur->n : 0;
		log_err("ticket keys: %s; keeping the %u key%s in use", err, n, n == 1 ? "" : "s");
	}
	pthread_mutex_unlock(&state_mu);
}

void tickets_status(struct tickets_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&state_mu);
	snprintf(st->path, sizeof(st->path), "%s", S.path);
	if (cur) {
		st->nkeys = cur->n;
		for (int i = 0; i < 16 && cur->n; i++)
			snprintf(st->first_name + 2 * i, 3, "%02x", cur->k[0].name[i]);
	}
	pthread_mutex_unlock(&state_mu);
}

int tickets_gen_key(char *out, size_t outlen)
{
	struct ticket_key k;
	unsigned char raw[TICKETS_KEY_BYTES];
	int rc = -1;
	if (outlen >= 4 * ((TICKETS_KEY_BYTES + 2) / 3) + 1 && random_key(&k) == 0) {
		memcpy(raw, k.name, 16);
		memcpy(raw + 16, k.hmac, 32);
		memcpy(raw + 48, k.aes, 32);
		EVP_EncodeBlock((unsigned char *)out, raw, TICKETS_KEY_BYTES);
		rc = 0;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

/* ---- random keys ---------------------------------------------------------------------------------- */

int tickets_rotate(void)
{
	int rc = 0;
	pthread_mutex_lock(&state_mu);
	if (!S.path[0]) {   /* a file's keys rotate when the file does */
		struct keyset *ks = random_set(cur);
		if (ks)
			install(ks);
		else
			rc = -1;
	}
	pthread_mutex_unlock(&state_mu);
	return rc;
}

int tickets_init(void)
{
	return tickets_rotate();
}

void tickets_cleanup(void)
{
	pthread_mutex_lock(&state_mu);
	drop_prepared();
	install(NULL);
	memset(&S, 0, sizeof(S));
	pthread_mutex_unlock(&state_mu);
}

/* ---- the OpenSSL callback ------------------------------------------------------------------------- */

static int set_hmac(EVP_MAC_CTX *hctx, const unsigned char *key)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_init(hctx, key, 32, params);
}

/* OpenSSL's contract: enc=1 -> fill name/iv, init ctx/hctx, return 1 (or 0: no ticket);
 * enc=0 -> find the key by name: -1 error, 0 not found (full handshake), 1 ok, 2 ok but renew. */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	(void)s;
	int rc = 0;
	pthread_rwlock_rdlock(&lock);
	const struct keyset *ks = cur;
	if (enc) {
		const struct ticket_key *k = ks && ks->n ? &ks->k[0] : NULL;
		if (!k)
			rc = 0;
		else if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
			 EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 && set_hmac(hctx, k->hmac) == 1) {
			memcpy(key_name, k->name, 16);
			rc = 1;
		} else {
			rc = -1;
		}
	} else {
		for (unsigned i = 0; ks && i < ks->n; i++) {
			const struct ticket_key *k = &ks->k[i];
			if (memcmp(key_name, k->name, 16))
				continue;
			if (set_hmac(hctx, k->hmac) != 1 || EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
				rc = -1;
			else
				rc = i == 0 ? 1 : 2;   /* another key than the first: the client gets a ticket under it */
			break;
		}
	}
	pthread_rwlock_unlock(&lock);
	return rc;
}

void tickets_attach(SSL_CTX *ctx)
{
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
}
