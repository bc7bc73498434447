/* tlsoffctl — the operator's tool for tlsoffd: `tlsoffctl [-j] [-p] [-s SOCKET] OBJECT VERB ARGS`, iproute2
 * style, or `-batch FILE` for many commands over one connection. See tlsoffctl(8). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "tlsoff/version.h"

int cmd_frontend(struct ctl *c, int argc, char **argv);
int cmd_backend(struct ctl *c, int argc, char **argv);
int cmd_server(struct ctl *c, int argc, char **argv);
int cmd_cert(struct ctl *c, int argc, char **argv);
int cmd_conn(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_offload(struct ctl *c, int argc, char **argv);
int cmd_config(struct ctl *c, int argc, char **argv);
int cmd_tickets(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);
int cmd_user(struct ctl *c, int argc, char **argv);

const struct object ctl_objects[] = {
	{ "frontend", cmd_frontend,
	  "frontend add NAME listen ADDR:PORT cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der]\n"
	  "             [cert ... key ... [ocsp ...]] backend NAME\n"
	  "             [alpn h2,http/1.1] [tls-min 1.2|1.3] [datapath auto|splice|userspace]\n"
	  "             [handshake-timeout MS] [idle-timeout MS] [max-conns N] [nic-offload off|prefer]\n"
	  "             [client-ca CA.pem [client-verify required|optional]]\n"
	  "frontend add NAME listen ADDR:PORT plain backend NAME [idle-timeout MS] [max-conns N]\n"
	  "frontend add NAME listen ADDR:PORT passthrough [sni PATTERN=BACKEND ...] [default BACKEND]\n"
	  "             [handshake-timeout MS] [idle-timeout MS] [max-conns N]\n"
	  "frontend del NAME\n"
	  "frontend show [NAME]\n" },
	{ "backend", cmd_backend,
	  "backend add NAME server HOST:PORT [server HOST:PORT ...] [balance roundrobin|leastconn]\n"
	  "            [proxy-protocol v2] [connect-timeout MS]\n"
	  "backend del NAME\n"
	  "backend show [NAME]\n" },
	{ "server", cmd_server,
	  "server add|del|drain|enable BACKEND HOST:PORT\n" },
	{ "cert", cmd_cert,
	  "cert add FRONTEND cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der]\n"
	  "cert replace FRONTEND cert CHAIN.pem key KEY.pem [ocsp RESPONSE.der] [old OLDCHAIN.pem]\n"
	  "cert del FRONTEND CHAIN.pem\n"
	  "cert show [FRONTEND]\n" },
	{ "conn", cmd_conn,
	  "conn show [frontend NAME] [backend NAME] [datapath splice|userspace|sockmap]\n"
	  "conn kill ID\n" },
	{ "stats", cmd_stats, "stats\n" },
	{ "status", cmd_status, "status\n" },
	{ "offload", cmd_offload,
	  "offload show [dev DEV]\n"
	  "offload set dev DEV tls-hw-tx|tls-hw-rx|tls-hw-record on|off\n" },
	{ "config", cmd_config, "config dump\n" },
	{ "tickets", cmd_tickets, "tickets keys FILE      session ticket keys shared by a fleet (re-read now)\n" },
	{ "metrics", cmd_metrics,
	  "metrics listen ADDR:PORT   serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	  "metrics off\n" },
	{ "user", cmd_user,
	  "user NAME [group GROUP]    (config dump's line; tlsoffd switches user only at start: a no-op here)\n" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fputs("usage: tlsoffctl [-j] [-p] [-s SOCKET] OBJECT VERB [ARGS]\n"
	      "       tlsoffctl [-j] [-p] [-s SOCKET] [-force] -batch FILE\n"
	      "  -j          JSON output\n"
	      "  -p          pretty JSON (implies -j)\n"
	      "  -s SOCKET   control socket (default $TLSOFF_CONTROL or " TLSOFF_CONTROL_PATH ")\n"
	      "  -batch FILE one command per line ('-': stdin); stops at the first refused one unless -force\n"
	      "objects:\n", out);
	for (const struct object *o = ctl_objects; o->name; o++) {
		const char *p = o->usage;
		while (*p) {
			const char *nl = strchr(p, '\n');
			fprintf(out, "  %.*s\n", (int)(nl - p), p);
			p = nl + 1;
		}
	}
	fputs("exit status: 0 ok, 1 refused by tlsoffd (or unreachable), 2 usage error\n", out);
}

int ctl_help(const char *object)
{
	for (const struct object *o = ctl_objects; o->name; o++)
		if (!strcmp(o->name, object)) {
			fputs("usage: tlsoffctl [-j] [-p] [-s SOCKET] ", stdout);
			const char *p = o->usage;
			bool first = true;
			while (*p) {
				const char *nl = strchr(p, '\n');
				printf("%s%.*s\n", first ? "" : "       tlsoffctl [-j] [-p] [-s SOCKET] ", (int)(nl - p), p);
				first = false;
				p = nl + 1;
			}
			return EXIT_OK;
		}
	return EXIT_USAGE;
}

static int run(struct ctl *c, int argc, char **argv)
{
	for (const struct object *o = ctl_objects; o->name; o++)
		if (!strcmp(o->name, argv[0]))
			return o->run(c, argc - 1, argv + 1);
	if (!strcmp(argv[0], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	return ctl_usage(c, NULL, "unknown object '%s' (see tlsoffctl --help)", argv[0]);
}

/* -batch: each line is a command; relative certificate paths are relative to the file, as in tlsoff.conf. */
static int batch(struct ctl *c, const char *path, bool force)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL, *argv[256], where[PATH_MAX + 32], dir[PATH_MAX], msg[256];
	size_t cap = 0;
	unsigned lineno = 0;
	int worst = EXIT_OK;
	if (!f) {
		fprintf(stderr, "tlsoffctl: -batch %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	/* the daemon has another working directory: the base must be absolute */
	char rel[PATH_MAX];
	const char *slash = strrchr(path, '/');
	snprintf(rel, sizeof(rel), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (strcmp(path, "-") && realpath(rel[0] ? rel : "/", dir))
		c->base_dir = dir;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		c->where = where;
		int argc = cmd_split(line, argv, 256, msg, sizeof(msg)), rc;
		if (argc == 0)
			continue;
		rc = argc < 0 ? ctl_usage(c, NULL, "%s", msg) : run(c, argc, argv);
		if (rc > worst)
			worst = rc;
		if (rc && !force)
			break;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	c->where = NULL;
	return worst;
}

int main(int argc, char **argv)
{
	struct ctl c = { .sock = getenv("TLSOFF_CONTROL") ? getenv("TLSOFF_CONTROL") : TLSOFF_CONTROL_PATH };
	ctl_parse_lenient = true;   /* a newer daemon may report more than this tlsoffctl knows: skip it */
	const char *batch_file = NULL;
	bool force = false;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i] + (argv[i][1] == '-' && argv[i][2]);   /* --json == -json */
		if (!strcmp(o, "-j") || !strcmp(o, "-json")) {
			c.json = true;
		} else if (!strcmp(o, "-p") || !strcmp(o, "-pretty")) {
			c.json = c.pretty = true;
		} else if ((!strcmp(o, "-s") || !strcmp(o, "-socket")) && i + 1 < argc) {
			c.sock = argv[++i];
		} else if (!strcmp(o, "-batch") && i + 1 < argc) {
			batch_file = argv[++i];
		} else if (!strcmp(o, "-force")) {
			force = true;
		} else if (!strcmp(o, "-h") || !strcmp(o, "-help")) {
			usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(o, "-V") || !strcmp(o, "-version")) {
			printf("tlsoffctl %s (control protocol %d)\n", TLSOFF_VERSION, TLSOFF_CTL_VERSION);
			return EXIT_OK;
		} else {
			fprintf(stderr, "tlsoffctl: unknown option '%s' or missing value\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int rc;
	if (batch_file) {
		if (i < argc) {
			fprintf(stderr, "tlsoffctl: -batch takes no command on the command line\n");
			return EXIT_USAGE;
		}
		rc = batch(&c, batch_file, force);
	} else if (i == argc) {
		usage(stderr);
		rc = EXIT_USAGE;
	} else {
		rc = run(&c, argc - i, argv + i);
	}
	ipc_close(c.ipc);
	return rc;
}
