/* privdrop.c — switch to the configured user, keeping only the capabilities the daemon needs afterwards.
 *
 * No libcap: capget/capset and prctl are three system calls. The order matters:
 *   1. PR_SET_KEEPCAPS, so setuid() away from 0 leaves the permitted set in place (it still clears the
 *      effective set);
 *   2. the bounding set loses every capability not kept (needs CAP_SETPCAP: only before the switch);
 *   3. supplementary groups, then gid, then uid (setgroups and setgid need CAP_SETGID);
 *   4. capset: permitted = effective = inheritable = kept; then each kept one raised as ambient, which is
 *      what carries them across the SIGUSR2 upgrade's execve() for a non-root user;
 *   5. PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0 (setuid resets dumpable to fs.suid_dumpable).
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "tlsoff/privdrop.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* Why each one: docs/security.md "Least privilege" (and tlsoffd(8)). */
const uint64_t privdrop_kept_caps = 1ULL << CAP_NET_BIND_SERVICE | 1ULL << CAP_NET_ADMIN | 1ULL << CAP_BPF;

static const struct {
	int cap;
	const char *name;
} cap_names[] = {
	{ CAP_NET_BIND_SERVICE, "cap_net_bind_service" },
	{ CAP_NET_ADMIN, "cap_net_admin" },
	{ CAP_BPF, "cap_bpf" },
	{ CAP_SETUID, "cap_setuid" },
	{ CAP_SETGID, "cap_setgid" },
	{ CAP_SETPCAP, "cap_setpcap" },
	{ CAP_SYS_ADMIN, "cap_sys_admin" },
	{ CAP_DAC_OVERRIDE, "cap_dac_override" },
};

void privdrop_caps_text(uint64_t caps, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int c = 0; c < 64 && n < len; c++) {
		if (!(caps & (1ULL << c)))
			continue;
		const char *name = NULL;
		for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
			if (cap_names[i].cap == c)
				name = cap_names[i].name;
		n += name ? (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", name)
			  : (size_t)snprintf(buf + n, len - n, "%scap_%d", n ? "," : "", c);
	}
	if (!n)
		snprintf(buf, len, "none");
}

static int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int privdrop_resolve(const char *user, const char *group, struct privdrop *pd, char *err, size_t errlen)
{
	memset(pd, 0, sizeof(*pd));
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return errf(err, errlen, "user %s: %s", user, errno ? strerror(errno) : "no such user");
	snprintf(pd->user, sizeof(pd->user), "%s", user);
	pd->uid = pw->pw_uid;
	pd->gid = pw->pw_gid;
	if (group && group[0]) {
		errno = 0;
		struct group *gr = getgrnam(group);
		if (!gr)
			return errf(err, errlen, "group %s: %s", group, errno ? strerror(errno) : "no such group");
		pd->gid = gr->gr_gid;
		snprintf(pd->group, sizeof(pd->group), "%s", group);
	} else {
		struct group *gr = getgrgid(pd->gid);
		snprintf(pd->group, sizeof(pd->group), "%s", gr ? gr->gr_name : "");
	}
	return 0;
}

static int cap_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	return (int)syscall(SYS_capget, &h, d);
}

static int cap_set(uint64_t perm, uint64_t eff, uint64_t inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32),
		  .inheritable = (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

static uint64_t permitted_now(void)
{
	struct __user_cap_data_struct d[2];
	if (cap_get(d) < 0)
		return 0;
	return (uint64_t)d[1].permitted << 32 | d[0].permitted;
}

void privdrop_nodump(void)
{
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int privdrop_apply(const struct privdrop *pd, char *err, size_t errlen)
{
	bool switch_ids = getuid() != pd->uid || geteuid() != pd->uid || getgid() != pd->gid || getegid() != pd->gid;
	if (switch_ids && pd->uid == 0)
		return errf(err, errlen, "user %s is root: nothing to drop to", pd->user);
	if (switch_ids) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return errf(err, errlen, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
		/* The bounding set caps what any later execve() (the SIGUSR2 upgrade) can ever get back. */
		for (int c = 0; c <= 63; c++) {
			if (privdrop_kept_caps & (1ULL << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
				break;   /* past the kernel's last capability */
		}
		if (initgroups(pd->user, pd->gid) < 0)
			return errf(err, errlen, "cannot set the supplementary groups of %s: %s (tlsoffd must start as root "
				    "to switch user)", pd->user, strerror(errno));
		if (setresgid(pd->gid, pd->gid, pd->gid) < 0)
			return errf(err, errlen, "setresgid(%u): %s", (unsigned)pd->gid, strerror(errno));
		if (setresuid(pd->uid, pd->uid, pd->uid) < 0)
			return errf(err, errlen, "setresuid(%u): %s", (unsigned)pd->uid, strerror(errno));
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		/* Belt and braces: with uid 0 gone for good, this must fail. */
		if (setuid(0) == 0)
			return errf(err, errlen, "setuid(0) succeeded after the switch to %s: refusing to run", pd->user);
	}
	/* Kernels before 5.8 know no CAP_BPF: keep what exists of the list. */
	uint64_t keep = privdrop_kept_caps & permitted_now();
	if (cap_set(keep, keep, keep) < 0)
		return errf(err, errlen, "capset: %s", strerror(errno));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int c = 0; c < 64; c++)
		if ((keep & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			return errf(err, errlen, "raising ambient capability %d: %s", c, strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
	privdrop_nodump();
	return 0;
}
