/* reuseport_steer.h — what the BPF program (reuseport_steer.bpf.c) and its loader (reuseport_steer.c) share.
 *
 * Only <linux/types.h> here: this header is compiled both by clang -target bpf and by gcc.
 * The daemon's API is include/tlsoff/reuseport_steer.h; nothing outside bpf/ should include this file.
 */
#ifndef TLSOFF_BPF_REUSEPORT_STEER_H
#define TLSOFF_BPF_REUSEPORT_STEER_H

#include <linux/types.h>

/* Largest group the loader accepts (listeners = workers, one per CPU: far above any real machine).
 * The map is sized to the real count at open time; this is only a sanity bound. */
#define STEER_MAX_SOCKS 4096

/* Indexes of the steer_stats array (per-CPU, summed by the loader). Each SYN that reaches the group
 * (one program run per new connection request) counts exactly once. */
enum steer_stat {
	STEER_STAT_BY_CPU = 0, /* slot (CPU % nsocks) held a listener of this group: selected it */
	STEER_STAT_BY_HASH,    /* CPU's slot empty or unusable; slot (hash % nsocks) was usable: selected it */
	STEER_STAT_KERNEL,     /* both slots unusable: SK_PASS without a selection, the kernel's own hash */
	STEER_STAT__MAX,
};

#endif
