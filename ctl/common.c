/* common.c — see ctl.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static void report(struct ctl *c, const char *fmt, va_list ap)
{
	fprintf(stderr, "tlsoffctl: %s%s", c->where ? c->where : "", c->where ? ": " : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int ctl_usage(struct ctl *c, const char *object, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(c, fmt, ap);
	va_end(ap);
	if (object)
		fprintf(stderr, "see: tlsoffctl %s help\n", object);
	return EXIT_USAGE;
}

int ctl_refused(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(c, fmt, ap);
	va_end(ap);
	return EXIT_REFUSED;
}

bool ctl_wants_help(int argc, char **argv)
{
	return argc > 0 && (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
}

struct ipc *ctl_ipc(struct ctl *c)
{
	char err[512];
	if (!c->ipc && !(c->ipc = ipc_connect(c->sock, err, sizeof(err))))
		ctl_refused(c, "%s", err);
	return c->ipc;
}

/* Certificate paths travel as the daemon will open them: absolute. */
static int absolute(struct ctl *c, char *path)
{
	char joined[TLSOFF_PATH_MAX], cwd[PATH_MAX];
	const char *base = c->base_dir;
	if (!path[0] || path[0] == '/')
		return 0;
	if (!base && !(base = getcwd(cwd, sizeof(cwd))))
		return -1;
	const char *rel = path;
	while (!strncmp(rel, "./", 2))
		rel += 2;
	if (snprintf(joined, sizeof(joined), "%s/%s", base, rel) >= (int)sizeof(joined))
		return -1;
	memcpy(path, joined, sizeof(joined));
	return 0;
}

int ctl_change(struct ctl *c, const char *object, int argc, char **argv)
{
	char *words[260], err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	struct cmd *cmd = malloc(sizeof(*cmd));
	int rc = EXIT_OK;
	if (!cmd || argc + 1 > 260)
		return ctl_refused(c, "out of memory");
	words[0] = (char *)object;
	memcpy(words + 1, argv, (size_t)argc * sizeof(*argv));
	if (cmd_parse(argc + 1, words, cmd, err, sizeof(err)) < 0) {
		free(cmd);
		return ctl_usage(c, object, "%s", err);
	}
	bool paths_ok = true;
	if (cmd->object == CMD_FRONTEND && cmd->verb == CMD_ADD)
		for (unsigned i = 0; i < cmd->u.frontend.ncerts; i++)
			paths_ok &= !absolute(c, cmd->u.frontend.certs[i].chain) && !absolute(c, cmd->u.frontend.certs[i].key);
	if (cmd->object == CMD_FRONTEND && cmd->verb == CMD_ADD && cmd->u.frontend.client_ca[0])
		paths_ok &= !absolute(c, cmd->u.frontend.client_ca);
	if (cmd->object == CMD_CERT)
		paths_ok = !absolute(c, cmd->u.cert.cert.chain) && !absolute(c, cmd->u.cert.cert.key) &&
			   !absolute(c, cmd->u.cert.old);
	if (cmd->object == CMD_TICKETS)
		paths_ok = !absolute(c, cmd->u.tickets.keys);
	if (!paths_ok) {
		free(cmd);
		return ctl_usage(c, object, "certificate path too long");
	}
	struct nl_msg *req = ctl_ipc(c) ? ctl_cmd_encode(cmd, ipc_next_seq(c->ipc)) : NULL;
	free(cmd);
	if (!c->ipc)
		return EXIT_REFUSED;
	if (!req)
		return ctl_refused(c, "out of memory");
	if (ipc_call(c->ipc, req, NULL, NULL, err, sizeof(err)) < 0)
		rc = ctl_refused(c, "%s", err);
	return rc;
}

int ctl_request(struct ctl *c, struct nl_msg *m)
{
	return ctl_dump(c, m, NULL, NULL);
}

int ctl_dump(struct ctl *c, struct nl_msg *m, ipc_cb cb, void *arg)
{
	char err[TLSOFF_ERR_MAX + TLSOFF_PATH_MAX];
	if (!m)
		return ctl_refused(c, "out of memory");
	if (ipc_call(c->ipc, m, cb, arg, err, sizeof(err)) < 0)
		return ctl_refused(c, "%s", err);
	return EXIT_OK;
}

struct nl_msg *ctl_get_request(struct ctl *c, int type, const char *name)
{
	if (!ctl_ipc(c))
		return NULL;
	struct nl_msg *m = ipc_msg(c->ipc, type, true);
	if (m && name && nla_put_string(m, TLSOFF_A_NAME, name) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	if (!m)
		ctl_refused(c, "out of memory");
	return m;
}

int ctl_show(struct ctl *c, struct nl_msg *m, ipc_cb cb, bool array, void *arg)
{
	struct show s = { .c = c, .arg = arg };
	if (!m)
		return EXIT_REFUSED;
	json_init(&s.j, stdout, c->pretty);
	if (c->json && array)
		json_begin_array(&s.j);
	int rc = ctl_dump(c, m, cb, &s);
	if (c->json && (array || rc == EXIT_OK)) {
		if (array)
			json_end_array(&s.j);
		json_finish(&s.j);
	}
	return rc;
}

const char *attr_str(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_string(tb[type]) : "";
}

uint64_t attr_u64(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u64(tb[type]) : 0;
}

unsigned attr_u32(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u32(tb[type]) : 0;
}

unsigned attr_u8(struct nlattr **tb, int type)
{
	return tb[type] ? nla_get_u8(tb[type]) : 0;
}
