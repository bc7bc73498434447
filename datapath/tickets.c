/* tickets.c — session ticket keys (RFC 5077 format as OpenSSL's callback expects: 16-byte key name,
 * AES-256-CBC for the ticket, HMAC-SHA256 over it). Keys live only in memory and are zeroised on
 * rotation and exit; the ticket-keys file shared across a fleet arrives with the edge-features issue. */
#include "tlsoff/tickets.h"

#include <pthread.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	int valid;
};

/* [0] encrypts and decrypts, [1] (the previous key) only decrypts. */
static struct ticket_key keys[2];
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;

static int new_key(struct ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return -1;
	k->valid = 1;
	return 0;
}

int tickets_rotate(void)
{
	struct ticket_key fresh;
	if (new_key(&fresh))
		return -1;
	pthread_rwlock_wrlock(&lock);
	OPENSSL_cleanse(&keys[1], sizeof(keys[1]));
	keys[1] = keys[0];
	keys[0] = fresh;
	pthread_rwlock_unlock(&lock);
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return 0;
}

int tickets_init(void)
{
	return tickets_rotate();
}

void tickets_cleanup(void)
{
	pthread_rwlock_wrlock(&lock);
	OPENSSL_cleanse(keys, sizeof(keys));
	pthread_rwlock_unlock(&lock);
}

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
	if (enc) {
		const struct ticket_key *k = &keys[0];
		if (k->valid && RAND_bytes(iv, EVP_MAX_IV_LENGTH) == 1 &&
		    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 && set_hmac(hctx, k->hmac) == 1) {
			memcpy(key_name, k->name, 16);
			rc = 1;
		} else {
			rc = -1;
		}
	} else {
		for (int i = 0; i < 2; i++) {
			const struct ticket_key *k = &keys[i];
			if (!k->valid || memcmp(key_name, k->name, 16))
				continue;
			if (set_hmac(hctx, k->hmac) != 1 || EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
				rc = -1;
			else
				rc = i == 0 ? 1 : 2;
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
