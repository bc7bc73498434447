/* cleanse_alloc.c — OpenSSL's allocations through malloc, wiped on free (see cleanse_alloc.h).
 * malloc_usable_size() gives the size of the block, so nothing has to be remembered per allocation. The
 * cost is a memset of what is freed: per handshake some tens of KB; the userspace datapath's record
 * buffers (SSL_MODE_RELEASE_BUFFERS) ~17 KB each time one is released. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tlsoff/cleanse_alloc.h"

static void wipe(void *p)
{
	if (p)
		explicit_bzero(p, malloc_usable_size(p));
}

static void *cl_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return malloc(n);
}

static void cl_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	wipe(p);
	free(p);
}

/* Never realloc() in place of a move: a moved block would be released unwiped. */
static void *cl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	if (!p)
		return malloc(n);
	if (!n) {
		cl_free(p, file, line);
		return NULL;
	}
	size_t old = malloc_usable_size(p);
	if (n <= old)
		return p;
	void *q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	wipe(p);
	free(p);
	return q;
}

int cleanse_alloc_install(void)
{
	return CRYPTO_set_mem_functions(cl_malloc, cl_realloc, cl_free) == 1 ? 0 : -1;
}
