/* cleanse_alloc.h — every block OpenSSL frees is zeroed first.
 *
 * OpenSSL 3.0's SSL_free() does not wipe all it frees: after it, the TLS 1.3 application traffic and
 * exporter secrets and a copy of the TLS 1.2 master secret were still in the freed heap (Debian's 3.0.22,
 * seen with tests/bin/mem_scan), until something reuses the memory. tlsoffd frees the SSL
 * object as soon as the keys are in the kernel, so the whole point of doing that is lost unless the free
 * itself wipes. Installing our allocator through CRYPTO_set_mem_functions() makes every OpenSSL free
 * (and realloc's release of the old block) wipe the whole block first. */
#ifndef TLSOFF_CLEANSE_ALLOC_H
#define TLSOFF_CLEANSE_ALLOC_H

/* Call first thing in main(), before anything allocates through OpenSSL. 0, or -1 when OpenSSL refused
 * (it had allocated already). */
int cleanse_alloc_install(void);

#endif
