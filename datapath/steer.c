/* steer.c — hand each new connection to the worker on the CPU that processed its SYN.
 *
 * tlsoffd runs one worker per CPU (worker i pinned to CPU i) with one SO_REUSEPORT listener per frontend
 * each. For every new listening group (a frontend address opened at start, on reload or by tlsoffctl), the
 * SK_REUSEPORT program of bpf/reuseport_steer is loaded with the workers' sockets in slots 0..n-1 and
 * attached: the connection, its TLS handshake and its relay then stay on the CPU where the NIC (or
 * loopback) delivered its packets. Where BPF cannot be loaded, SO_INCOMING_CPU on each listener asks the
 * kernel (6.2+) for the same choice. The program belongs to the group: the handle is closed at once and the
 * program lives as long as the group's listeners do. docs/ebpf.md has the measurements. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "tlsoff/log.h"
#include "tlsoff/reuseport_steer.h"

/* fds[i] = worker i's listening socket of one new group. Returns the mode used ("bpf", "incoming-cpu").
 *
 * inherited: the group was taken over (--takeover), and the old daemon's program may be attached to it,
 * steering into its own slots. That program is detached first (until ours is attached the kernel's hash
 * spreads SYNs over the group, every socket of which is ours now: nothing is refused). Its socket array
 * is freed by the kernel a moment later (after an RCU grace period, from a workqueue); until then our
 * sockets are still in it and the kernel refuses them a place in ours (EBUSY): retried for up to 2 s. */
const char *steer_group(const char *frontend, const int *fds, unsigned n, enum steer_mode mode, bool inherited)
{
	char err[256];
	if (inherited)
		reuseport_steer_detach(NULL, fds[0]);   /* ENOENT (none attached) is fine; pre-5.3: attach replaces */
	if (mode == STEER_OFF || n < 2)
		return "off";
	if (mode == STEER_BPF) {
		struct reuseport_steer *s = reuseport_steer_open(n, err, sizeof(err));
		int rc = s ? 0 : -1;
		uint64_t t0 = now_ms(), until = t0 + 2000;
		unsigned busy = 0;
		for (unsigned i = 0; s && !rc && i < n; i++) {
			while ((rc = reuseport_steer_set(s, i, fds[i])) == -EBUSY && inherited && now_ms() < until) {
				busy++;
				usleep(5000);
			}
		}
		if (busy)
			log_info("frontend %s: the old daemon's socket array let go of the listeners after %llu ms", frontend,
				 (unsigned long long)(now_ms() - t0));
		if (s && !rc)
			rc = reuseport_steer_attach(s, fds[0]);
		if (s && rc)
			snprintf(err, sizeof(err), "%s", reuseport_steer_error(s));
		reuseport_steer_close(s);   /* the program stays with the group */
		if (!rc)
			return "bpf";
		log_warn("frontend %s: reuseport steering program: %s; using SO_INCOMING_CPU instead", frontend, err);
	}
	for (unsigned i = 0; i < n; i++) {
		int cpu = (int)i;
		if (setsockopt(fds[i], SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof(cpu)) < 0) {
			log_warn("frontend %s: SO_INCOMING_CPU: %s; connections spread by hash", frontend, strerror(errno));
			return "off";
		}
	}
	return "incoming-cpu (kernel 6.2+ honours it; older kernels hash)";
}
