/* privdrop.h — least privilege: once tlsoffd has bound its listeners, loaded its BPF programs and opened
 * its control socket, it becomes an unprivileged user that keeps only the capabilities the running daemon
 * still needs (docs/security.md "Least privilege" says which and why). */
#ifndef TLSOFF_PRIVDROP_H
#define TLSOFF_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tlsoff/config.h"

/* The capabilities kept after the switch, as bits (1ULL << CAP_x). */
extern const uint64_t privdrop_kept_caps;

struct privdrop {
	char user[TLSOFF_NAME_MAX], group[TLSOFF_NAME_MAX];
	uid_t uid;
	gid_t gid;
};

/* Look the user (and group: default the user's primary group) up now, while every NSS source is still
 * reachable: a name that does not exist fails the start, not the switch. Returns 0 or -1 with err set. */
int privdrop_resolve(const char *user, const char *group, struct privdrop *pd, char *err, size_t errlen);

/* Become pd's user and group with only privdrop_kept_caps (effective, permitted, inheritable and ambient,
 * so the SIGUSR2 upgrade keeps them across exec); nothing else is left in the bounding set. Already that
 * user (an upgrade's new process, or systemd's User=): only the capabilities are cut. Must run before any
 * other thread exists (capabilities are per thread). Returns 0 or -1 with err set. */
int privdrop_apply(const struct privdrop *pd, char *err, size_t errlen);

/* No core dumps and no ptrace or /proc/PID/mem by the same user: the process holds private keys. */
void privdrop_nodump(void);

/* "cap_net_bind_service,cap_net_admin,cap_bpf" for a capability bit set. */
void privdrop_caps_text(uint64_t caps, char *buf, size_t len);

#endif
