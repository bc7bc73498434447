/* cert.c — tlsoffctl cert add|replace|del|show: certificates of a frontend, rotated without a restart. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* "ocsp FILE: stapling (next update T)", "stale since T", or the state and why. */
static void print_ocsp(struct nlattr **ct, const char *next_update)
{
	const char *state = attr_str(ct, TLSOFF_CERT_OCSP_STATE);
	if (!ct[TLSOFF_CERT_OCSP]) {
		printf("  ocsp none\n");
		return;
	}
	printf("  ocsp %s: ", attr_str(ct, TLSOFF_CERT_OCSP));
	if (!strcmp(state, "stapling"))
		printf("stapling (next update %s)\n", *next_update ? next_update : "none");
	else if (!strcmp(state, "stale"))
		printf("stale since %s, not stapled\n", next_update);
	else if (*state)
		printf("%s, not stapled: %s\n", state, attr_str(ct, TLSOFF_CERT_OCSP_WHY));
	else
		printf("?\n");
}

static int print_cert(const struct nlmsghdr *h, struct nlattr **tb, void *arg, char *err, size_t errlen)
{
	(void)h;
	struct show *s = arg;
	struct nlattr *ct[TLSOFF_CERT_MAX + 1], *a;
	int rc, rem;
	if (!tb[TLSOFF_A_CERT])
		return -EPROTO;
	if ((rc = ctl_parse_nested(ct, TLSOFF_CERT_MAX, tb[TLSOFF_A_CERT], ctl_cert_policy, "cert", err, errlen)) < 0)
		return rc;
	time_t not_after = (time_t)attr_u64(ct, TLSOFF_CERT_NOT_AFTER);
	char when[32] = "?";
	struct tm tm;
	if (ct[TLSOFF_CERT_NOT_AFTER] && gmtime_r(&not_after, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	long days = (long)((not_after - time(NULL)) / 86400);
	char next_update[32] = "";
	time_t nu = (time_t)attr_u64(ct, TLSOFF_CERT_OCSP_NEXT_UPDATE);
	if (ct[TLSOFF_CERT_OCSP_NEXT_UPDATE] && gmtime_r(&nu, &tm))
		strftime(next_update, sizeof(next_update), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (s->c->json) {
		struct json *j = &s->j;
		json_begin_object(j);
		json_kv_string(j, "frontend", attr_str(ct, TLSOFF_CERT_FRONTEND));
		json_kv_string(j, "chain", attr_str(ct, TLSOFF_CERT_CHAIN));
		json_kv_string(j, "key", attr_str(ct, TLSOFF_CERT_KEY));
		json_kv_string(j, "subject", attr_str(ct, TLSOFF_CERT_SUBJECT));
		json_key(j, "names");
		json_begin_array(j);
		nla_for_each_nested(a, tb[TLSOFF_A_CERT], rem)
			if (nla_type(a) == TLSOFF_CERT_NAME)
				json_string(j, nla_get_string(a));
		json_end_array(j);
		json_kv_string(j, "not_after", when);
		json_kv_u64(j, "not_after_epoch", (uint64_t)not_after);
		json_kv_bool(j, "default", ct[TLSOFF_CERT_DEFAULT] != NULL);
		if (ct[TLSOFF_CERT_OCSP]) {
			json_key(j, "ocsp");
			json_begin_object(j);
			json_kv_string(j, "file", attr_str(ct, TLSOFF_CERT_OCSP));
			json_kv_string(j, "state", attr_str(ct, TLSOFF_CERT_OCSP_STATE));
			json_kv_string(j, "reason", attr_str(ct, TLSOFF_CERT_OCSP_WHY));
			if (ct[TLSOFF_CERT_OCSP_NEXT_UPDATE]) {
				json_kv_string(j, "next_update", next_update);
				json_kv_u64(j, "next_update_epoch", attr_u64(ct, TLSOFF_CERT_OCSP_NEXT_UPDATE));
			}
			json_end_object(j);
		}
		json_end_object(j);
		return 0;
	}
	printf("frontend %s cert %s%s\n  key %s\n  subject %s\n  names", attr_str(ct, TLSOFF_CERT_FRONTEND),
	       attr_str(ct, TLSOFF_CERT_CHAIN), ct[TLSOFF_CERT_DEFAULT] ? " (default)" : "", attr_str(ct, TLSOFF_CERT_KEY),
	       attr_str(ct, TLSOFF_CERT_SUBJECT));
	nla_for_each_nested(a, tb[TLSOFF_A_CERT], rem)
		if (nla_type(a) == TLSOFF_CERT_NAME)
			printf(" %s", nla_get_string(a));
	printf("\n  expires %s (%s%ld days)\n", when, days < 0 ? "EXPIRED " : "in ", days < 0 ? -days : days);
	print_ocsp(ct, next_update);
	return 0;
}

int cmd_cert(struct ctl *c, int argc, char **argv)
{
	if (argc == 0 || ctl_wants_help(argc, argv))
		return argc ? ctl_help("cert") : ctl_usage(c, "cert", "cert: missing verb (add, replace, del, show)");
	if (strcmp(argv[0], "show") && strcmp(argv[0], "list"))
		return ctl_change(c, "cert", argc, argv);
	if (argc > 2)
		return ctl_usage(c, "cert", "cert show: unexpected '%s'", argv[2]);
	return ctl_show(c, ctl_get_request(c, TLSOFF_CMD_CERT_GET, argc == 2 ? argv[1] : NULL), print_cert, true, NULL);
}
