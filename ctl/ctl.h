/* ctl.h — what tlsoffctl's subcommands share: options, the connection, usage and error reporting. One file
 * per object (frontend.c, backend.c, server.c, cert.c, conn.c, stats.c, offload.c, config_dump.c). */
#ifndef TLSOFFCTL_CTL_H
#define TLSOFFCTL_CTL_H

#include <errno.h>
#include <stdbool.h>

#include "ipc.h"
#include "json.h"

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

struct ctl {
	const char *sock;
	bool json, pretty;
	struct ipc *ipc;                 /* connected on first use, kept for a whole -batch */
	const char *where;               /* "FILE:LINE" while running -batch, for messages */
	const char *base_dir;            /* relative certificate paths resolve here (NULL: the working dir) */
};

struct object {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);   /* argv[0] is the verb (may be absent) */
	const char *usage;
};

/* The objects, for dispatch and help (tlsoffctl.c). */
extern const struct object ctl_objects[];

/* Print "tlsoffctl: [FILE:LINE: ]message" on stderr and return EXIT_USAGE / EXIT_REFUSED. */
int ctl_usage(struct ctl *c, const char *object, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ctl_refused(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "help" / "--help" / "-h" as the verb: print the object's usage on stdout. */
bool ctl_wants_help(int argc, char **argv);
int ctl_help(const char *object);

/* The connection, opened on first use; NULL after printing why. */
struct ipc *ctl_ipc(struct ctl *c);

/* A configuration command (OBJECT VERB ...: the grammar of tlsoff.conf) sent as a request: exit code. */
int ctl_change(struct ctl *c, const char *object, int argc, char **argv);

/* Send m (a request built with ipc_msg, NULL = out of memory) and wait for its ack: exit code. */
int ctl_request(struct ctl *c, struct nl_msg *m);

/* Send m (a dump request) and call cb per answer: exit code. */
int ctl_dump(struct ctl *c, struct nl_msg *m, ipc_cb cb, void *arg);

/* What a show's callback gets: the options and the JSON writer. */
struct show {
	struct ctl *c;
	struct json j;
	void *arg;
};

/* A dump request of `type`, with TLSOFF_A_NAME = name when name is not NULL; NULL after printing why. */
struct nl_msg *ctl_get_request(struct ctl *c, int type, const char *name);

/* Run a show: dump m, cb per answer; with -j the answers form one JSON array (array) or the callback
 * writes one object (!array). Exit code. */
int ctl_show(struct ctl *c, struct nl_msg *m, ipc_cb cb, bool array, void *arg);

/* Attribute helpers for printing: "" / 0 when absent. */
const char *attr_str(struct nlattr **tb, int type);
uint64_t attr_u64(struct nlattr **tb, int type);
unsigned attr_u32(struct nlattr **tb, int type);
unsigned attr_u8(struct nlattr **tb, int type);

#endif
