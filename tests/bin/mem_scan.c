/* mem_scan — look for TLS secrets in a running process's memory (tests/lab/key_hygiene.sh).
 *
 *   mem_scan PID KEYLOG      one line per secret found:
 *                            LABEL CLIENT_RANDOM[0..16] FORM ADDRESS locked|unlocked MAPPING
 *                            then "scanned N bytes in M mappings, K secrets, F found"
 *
 * KEYLOG is an NSS key log (SSLKEYLOGFILE, openssl s_client -keylogfile): "LABEL CLIENT_RANDOM SECRET" in
 * hex. Every secret is looked for in binary form and as hex text (lower and upper case: OpenSSL builds the
 * key log line in memory), in every writable mapping of /proc/PID/maps (heap, stacks, anonymous maps, the
 * secure heap, data sections: where a secret computed at run time can be), read through /proc/PID/mem (needs
 * root, or CAP_SYS_PTRACE, for a non-dumpable process). "locked" means the mapping is mlock()ed (smaps
 * VmFlags "lo"): OpenSSL's secure heap, where tlsoffd keeps what KeyUpdate needs. Exit 0 unless the scan
 * itself failed (no process, unreadable memory, bad key log).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SECRETS 4096
#define MAX_SECRET  64
#define CHUNK       (1 << 20)

struct secret {
	char label[64], cr[17];
	uint8_t bin[MAX_SECRET];
	char lower[2 * MAX_SECRET + 1], upper[2 * MAX_SECRET + 1];
	size_t len;
};

struct mapping {
	uint64_t start, end;
	bool writable, locked;
	char desc[256];
};

static int load_keylog(const char *path, struct secret *v, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[1024], label[64], cr[256], hex[256];
	if (!f) {
		fprintf(stderr, "mem_scan: %s: %s\n", path, strerror(errno));
		return -1;
	}
	*n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || sscanf(line, "%63s %255s %255s", label, cr, hex) != 3)
			continue;
		size_t hl = strlen(hex);
		if (hl % 2 || hl / 2 > MAX_SECRET || hl < 32 || *n == MAX_SECRETS) {
			fprintf(stderr, "mem_scan: %s: bad line: %s", path, line);
			fclose(f);
			return -1;
		}
		struct secret *s = &v[(*n)++];
		snprintf(s->label, sizeof(s->label), "%s", label);
		snprintf(s->cr, sizeof(s->cr), "%.16s", cr);
		s->len = hl / 2;
		for (size_t i = 0; i < s->len; i++) {
			unsigned b;
			if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
				fclose(f);
				return -1;
			}
			s->bin[i] = (uint8_t)b;
		}
		for (size_t i = 0; i < hl; i++) {
			s->lower[i] = (char)tolower((unsigned char)hex[i]);
			s->upper[i] = (char)toupper((unsigned char)hex[i]);
		}
		s->lower[hl] = s->upper[hl] = '\0';
	}
	fclose(f);
	return 0;
}

/* /proc/PID/smaps: each mapping's header line, then "VmFlags: ..." (lo = locked). */
static struct mapping *load_maps(int pid, size_t *n)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "mem_scan: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 256;
	struct mapping *v = calloc(cap, sizeof(*v));
	*n = 0;
	while (v && fgets(line, sizeof(line), f)) {
		uint64_t a, b;
		char perms[8];
		int off = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s%n", &a, &b, perms, &off) == 3) {
			if (*n == cap && !(v = realloc(v, (cap *= 2) * sizeof(*v))))
				break;
			struct mapping *m = &v[(*n)++];
			memset(m, 0, sizeof(*m));
			m->start = a;
			m->end = b;
			m->writable = perms[0] == 'r' && perms[1] == 'w';
			const char *name = line + off;
			while (*name == ' ')
				name++;
			snprintf(m->desc, sizeof(m->desc), "%" PRIx64 "-%" PRIx64 " %s %s", a, b, perms,
				 *name && *name != '\n' ? name : "[anon]\n");
			m->desc[strcspn(m->desc, "\n")] = '\0';
		} else if (*n && !strncmp(line, "VmFlags:", 8)) {
			v[*n - 1].locked = strstr(line, " lo") != NULL;
		}
	}
	fclose(f);
	return v;
}

static void report(const struct secret *s, const char *form, uint64_t addr, const struct mapping *m)
{
	printf("%s %s %s %" PRIx64 " %s %s\n", s->label, s->cr, form, addr, m->locked ? "locked" : "unlocked", m->desc);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mem_scan PID KEYLOG\n");
		return 2;
	}
	int pid = atoi(argv[1]);
	static struct secret secrets[MAX_SECRETS];
	size_t nsec, nmap, found = 0, nscanned = 0;
	uint64_t bytes = 0;
	if (load_keylog(argv[2], secrets, &nsec) < 0)
		return 1;
	struct mapping *maps = load_maps(pid, &nmap);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY);
	if (!maps || fd < 0) {
		fprintf(stderr, "mem_scan: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* Chunks overlap by the longest pattern, so a secret across a chunk border is found once. */
	const size_t overlap = 2 * MAX_SECRET;
	uint8_t *buf = malloc(CHUNK + overlap);
	for (size_t i = 0; buf && i < nmap; i++) {
		const struct mapping *m = &maps[i];
		if (!m->writable || strstr(m->desc, "[vvar") || strstr(m->desc, "[vsyscall]"))
			continue;
		nscanned++;
		for (uint64_t at = m->start; at < m->end; at += CHUNK) {
			size_t want = (size_t)((m->end - at) < CHUNK + overlap ? (m->end - at) : CHUNK + overlap);
			ssize_t got = pread(fd, buf, want, (off_t)at);
			if (got <= 0)
				break;   /* an unreadable page (guard pages): skip the rest of this mapping */
			bytes += (uint64_t)(got < CHUNK ? got : CHUNK);
			size_t limit = (size_t)got;
			for (size_t k = 0; k < nsec; k++) {
				const struct secret *s = &secrets[k];
				const struct { const void *p; size_t len; const char *form; } pats[] = {
					{ s->bin, s->len, "binary" },
					{ s->lower, 2 * s->len, "hex" },
					{ s->upper, 2 * s->len, "HEX" },
				};
				for (size_t p = 0; p < 3; p++) {
					const uint8_t *h = buf;
					size_t left = limit;
					const uint8_t *hit;
					while ((hit = memmem(h, left, pats[p].p, pats[p].len))) {
						size_t pos = (size_t)(hit - buf);
						if (pos < CHUNK || at + CHUNK >= m->end) {   /* else: the next chunk has it */
							report(s, pats[p].form, at + pos, m);
							found++;
						}
						left -= (size_t)(hit + 1 - h);
						h = hit + 1;
					}
				}
			}
		}
	}
	printf("scanned %" PRIu64 " bytes in %zu mappings, %zu secrets, %zu found\n", bytes, nscanned, nsec, found);
	free(buf);
	free(maps);
	close(fd);
	return 0;
}
