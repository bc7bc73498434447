/* no_dns.c — getaddrinfo for the harnesses (linked with -Wl,--wrap=getaddrinfo): `backend add` and
 * `server add` resolve names, and a fuzzer must neither send DNS queries nor depend on the machine's
 * resolver. "localhost" and names under ".test" (RFC 2606's reserved TLD) resolve to 127.0.0.1, every other
 * name fails as an unknown one does, so both paths of the parsers stay reachable. */
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void __wrap_freeaddrinfo(struct addrinfo *ai);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	(void)service;
	size_t n = node ? strlen(node) : 0;
	if (!node || !(strcasecmp(node, "localhost") == 0 || (n > 5 && strcasecmp(node + n - 5, ".test") == 0)))
		return EAI_NONAME;
	struct { struct addrinfo ai; struct sockaddr_in sin; } *r = calloc(1, sizeof(*r));
	if (!r)
		return EAI_MEMORY;
	r->sin.sin_family = AF_INET;
	r->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->ai.ai_family = AF_INET;
	r->ai.ai_socktype = hints ? hints->ai_socktype : SOCK_STREAM;
	r->ai.ai_addr = (struct sockaddr *)&r->sin;
	r->ai.ai_addrlen = sizeof(r->sin);
	*res = &r->ai;
	return 0;
}

void __wrap_freeaddrinfo(struct addrinfo *ai)
{
	free(ai);   /* the addrinfo is the first member of the one allocation */
}
