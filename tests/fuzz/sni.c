/* libFuzzer harness for SNI matching: tls_name_matches (datapath/tls_ctx.c: a certificate's name against
 * the client's SNI, used by tls_frontend_pick) and tlsoff_route (datapath/config.c: a passthrough
 * frontend's `sni PATTERN=BACKEND` routes). Input: lines; the first is the SNI, the next up to 64 are route
 * patterns (backend i for pattern i), a last line "default" gives the frontend a default backend.
 * The contracts are the documented matching rules, checked from their definition:
 *   - a pattern without "*." matches exactly the same name, ignoring ASCII case;
 *   - "*.rest" matches LABEL.rest for one non-empty label without a dot, not "rest", not "a.b.rest";
 *   - a route is chosen by the first exact pattern that matches, else the first wildcard, else the
 *     default (none: NULL); an empty SNI gets the default. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "tlsoff/config.h"
#include "tlsoff/tls_ctx.h"

static bool same_ci(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

static bool spec_match(const char *pattern, const char *host)
{
	if (same_ci(pattern, host))
		return true;
	if (pattern[0] != '*' || pattern[1] != '.')
		return false;
	size_t label = strcspn(host, ".");
	return label > 0 && host[label] == '.' && same_ci(pattern + 1, host + label);
}

static struct frontend_conf fe;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sni[TLSOFF_SNI_MAX] = "";
	size_t off = 0;
	int field = -1;
	bool has_default = false;

	if (size > 64 * 1024)
		return 0;
	fe.nroutes = 0;
	fe.backend[0] = '\0';
	while (off < size && fe.nroutes < TLSOFF_MAX_ROUTES) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		char *dst = field < 0 ? sni : fe.routes[fe.nroutes].pattern;
		size_t take = n < TLSOFF_SNI_MAX - 1 ? n : TLSOFF_SNI_MAX - 1;
		memcpy(dst, data + off, take);
		dst[take] = '\0';   /* a NUL inside shortens it: strings are what the daemon has */
		if (field >= 0) {
			if (!strcmp(dst, "default")) {
				has_default = true;
				snprintf(fe.backend, sizeof(fe.backend), "default");
			} else {
				snprintf(fe.routes[fe.nroutes].backend, TLSOFF_NAME_MAX, "b%u", fe.nroutes);
				fe.nroutes++;
			}
		}
		field++;
		off += n + 1;
	}

	/* the rules for every (pattern, sni) pair, and case does not matter */
	for (unsigned r = 0; r < fe.nroutes; r++) {
		const char *p = fe.routes[r].pattern;
		int m = tls_name_matches(p, sni);
		CHECK(m == 0 || m == 1);
		CHECK(m == spec_match(p, sni));
		char up[TLSOFF_SNI_MAX];
		size_t i = 0;
		for (; sni[i]; i++)
			up[i] = (char)toupper((unsigned char)sni[i]);
		up[i] = '\0';
		CHECK(tls_name_matches(p, up) == m);
	}

	/* the route chosen */
	const char *want = has_default ? fe.backend : NULL;
	if (sni[0]) {
		int exact = -1, wild = -1;
		for (unsigned r = 0; r < fe.nroutes; r++) {
			bool is_wild = fe.routes[r].pattern[0] == '*';
			if (!spec_match(fe.routes[r].pattern, sni))
				continue;
			if (!is_wild && exact < 0)
				exact = (int)r;
			if (is_wild && wild < 0)
				wild = (int)r;
		}
		if (exact >= 0)
			want = fe.routes[exact].backend;
		else if (wild >= 0)
			want = fe.routes[wild].backend;
	}
	const char *got = tlsoff_route(&fe, sni);
	CHECK(got == want);
	return 0;
}
