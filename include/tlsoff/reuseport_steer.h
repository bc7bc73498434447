/* reuseport_steer.h — steer each new connection to the worker on the CPU that received it (SK_REUSEPORT eBPF).
 *
 * tlsoffd has one worker per CPU, each with its own SO_REUSEPORT listener per frontend. By default the
 * kernel picks a listener by a hash of the 4-tuple, whatever CPU processed the SYN. With this program
 * attached to the group, the listener in slot (CPU that processed the SYN % nsocks) gets the connection:
 * with worker i running on CPU i % ncpus, a flow whose packets land on CPU c is accepted by the worker on
 * CPU c. If that slot is empty (its listener closed: the kernel empties the slot itself), the listener in
 * slot (flow hash % nsocks) gets it; if that is empty too, the kernel's own hash decides. No connection is
 * ever refused by the program.
 *
 * Usage (one handle per listening group, i.e. per frontend address; needs CAP_BPF + CAP_NET_ADMIN or root):
 *   s = reuseport_steer_open(nworkers, err, sizeof err);   load, or NULL and a message
 *   for each worker i: socket, SO_REUSEPORT, bind, listen(), then
 *       reuseport_steer_set(s, i, fd_i);                  fd_i must be LISTENING (the kernel's rule)
 *   reuseport_steer_attach(s, fd_0);                      any listening member; the whole group is steered
 *   reuseport_steer_stats(s, &by_cpu, &by_hash);          at any time
 *   reuseport_steer_close(s);                             the program stays attached to the group (see below)
 *
 * What the kernel does (6.18, see tests/host/reuseport_steer.sh and tests/bin/reuseport_check.c):
 * - A TCP socket enters a REUSEPORT_SOCKARRAY only once it is in its reuseport group, which for TCP is
 *   at listen(): bind() alone is not enough (EINVAL). reuseport_steer_set() says so in words.
 * - SO_ATTACH_REUSEPORT_EBPF on a bound but not yet listening socket is accepted, but it gives that
 *   socket a reuseport group of its own, and the kernel's bind-conflict check exempts only sockets without
 *   one: its listen() then fails with EADDRINUSE if any other socket is bound to the address. (It works
 *   only for the first socket bound to the address.) reuseport_steer_attach() therefore only accepts a
 *   listening socket: attach after listen(), on any member; connections that arrive before it are hashed.
 * - The program belongs to the group, not to the socket it was attached through, nor to this handle:
 *   closing that socket or the handle leaves it attached while any listener of the group remains.
 *   reuseport_steer_detach() removes it (SO_DETACH_REUSEPORT_BPF, kernel 5.3+).
 * - A closed listener leaves the map by itself (its slot becomes empty -> hash fallback). A socket can be
 *   in only one REUSEPORT_SOCKARRAY slot at a time (EBUSY).
 * - On loopback a SYN is processed (softirq) on the CPU of the process that sent it; with a NIC, on the CPU
 *   RSS/RPS give the flow. bpf_get_smp_processor_id() in the program is that CPU.
 * - Since mainline 6.2 (commit b261eda84ec1, backported to some stable series) the kernel can do the same
 *   without BPF: setsockopt(SO_INCOMING_CPU, cpu) on each listener makes its own selection prefer the
 *   listener whose incoming CPU is the SYN's CPU (a linear scan of the group). From 4.6 until that fix a
 *   reuseport group ignored it. The program works from 5.2 on (SK_REUSEPORT is 4.19; its .rodata
 *   constant needs 5.2) whatever the stable backports, and its counters say what happened. On 6.18 both give the same placement (reuseport_check --incoming-cpu).
 *
 * Functions returning int return 0 or a negative errno; reuseport_steer_error(s) then says in words what
 * happened and what to do about it.
 */
#ifndef TLSOFF_REUSEPORT_STEER_H
#define TLSOFF_REUSEPORT_STEER_H

#include <stddef.h>
#include <stdint.h>

struct reuseport_steer;

/* Load the program for a group of nsocks listeners (one per worker; worker i expected to run on CPU
 * i % ncpus). NULL + message on failure (no BPF, no CAP_BPF...). */
struct reuseport_steer *reuseport_steer_open(unsigned nsocks, char *err, size_t errlen);
/* Put worker i's listening socket (bound, SO_REUSEPORT, listen() done) into slot i, replacing what was
 * there. listen_fd < 0 empties slot i (its connections then go by hash). */
int reuseport_steer_set(struct reuseport_steer *s, unsigned i, int listen_fd);
/* Attach the program to the reuseport group of listen_fd (SO_ATTACH_REUSEPORT_EBPF on any one listening
 * member). Replaces any program the group had. */
int reuseport_steer_attach(struct reuseport_steer *s, int listen_fd);
/* Remove whatever program the group of listen_fd has: the kernel's hash decides again. s may be NULL. */
int reuseport_steer_detach(struct reuseport_steer *s, int listen_fd);
/* Counters: connections steered to the CPU's own slot, and to the hash fallback (slot missing/failed).
 * Either pointer may be NULL. */
int reuseport_steer_stats(struct reuseport_steer *s, uint64_t *by_cpu, uint64_t *by_hash);
/* Connections for which neither slot was usable (the kernel's own hash chose). */
int reuseport_steer_unsteered(struct reuseport_steer *s, uint64_t *kernel);
/* Kernel ids of the program and its two maps, for diagnostics (bpftool prog show id N, map dump id N). */
struct reuseport_steer_ids {
	uint32_t prog, socks, stats;
};
int reuseport_steer_ids(struct reuseport_steer *s, struct reuseport_steer_ids *ids);
const char *reuseport_steer_error(const struct reuseport_steer *s);
void reuseport_steer_close(struct reuseport_steer *s);

#endif
