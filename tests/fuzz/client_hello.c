/* libFuzzer harness for client_hello_parse (datapath/client_hello.c): beyond "no crash, no read out of
 * bounds", it checks the contract the daemon relies on when it peeks a few bytes at a time.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/client_hello.c \
 *         datapath/client_hello.c -o /tmp/ch-fuzz && /tmp/ch-fuzz tests/fuzz/corpus/client_hello
 */
#include <stdlib.h>
#include <string.h>

#include "tlsoff/client_hello.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			abort(); \
	} while (0)

/* The routing key must be what the parser promised: lower-case host characters, terminated. */
static void check_sni(const char *sni)
{
	size_t n = strnlen(sni, 256);
	CHECK(n < 256);
	for (size_t i = 0; i < n; i++)
		CHECK((sni[i] >= 'a' && sni[i] <= 'z') || (sni[i] >= '0' && sni[i] <= '9') || strchr("-._", sni[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_hello ch, again;
	switch (client_hello_parse(data, size, &ch)) {
	case CH_COMPLETE:
		CHECK(ch.bytes >= 5 && ch.bytes <= size && ch.why == NULL);
		check_sni(ch.sni);
		CHECK(strnlen(ch.alpn, sizeof(ch.alpn)) < sizeof(ch.alpn));
		/* The verdict depends on the hello's records only, and needs all of them: the daemon must not
		 * route on a hello whose last byte has not arrived. */
		CHECK(client_hello_parse(data, ch.bytes, &again) == CH_COMPLETE && again.bytes == ch.bytes &&
		      !strcmp(again.sni, ch.sni) && !strcmp(again.alpn, ch.alpn) &&
		      again.legacy_version == ch.legacy_version && again.max_version == ch.max_version);
		CHECK(client_hello_parse(data, ch.bytes - 1, &again) == CH_NEED_MORE);
		break;
	case CH_NEED_MORE:
		/* need > size, or the daemon would wait forever; <= the limit, or its buffer could not hold it. */
		CHECK(ch.need > size && ch.need <= CLIENT_HELLO_MAX && ch.why == NULL);
		break;
	case CH_INVALID:
		CHECK(ch.why != NULL && ch.why[0] != '\0');
		break;
	default:
		CHECK(0);
	}
	return 0;
}
