/* kcrypto_speed — what the running kernel's own AES-GCM costs per GiB, for the bench's lab "crypto floor".
 *
 *   kcrypto_speed [--key-bits 128|256] [--record BYTES] [--mib N]
 *
 * kTLS encrypts and decrypts with the kernel's crypto API ("gcm(aes)": aesni_intel on x86), not OpenSSL's
 * code, and under emulation the two cost very different amounts per byte — so `openssl speed` is the wrong
 * floor for a terminator whose records the kernel seals. This seals N MiB in records of BYTES (16 KB, a full
 * TLS record) through AF_ALG, the same kernel AEAD kTLS allocates, and reports CPU-seconds (user + sys of this
 * process, where the kernel does the work) per GiB. AF_ALG adds a copy of each record into the kernel, so the
 * same loop is run through the kernel's null cipher ("ecb(cipher_null)": the copy and the socket calls, no
 * crypto) and subtracted. Each is run three times, alternated, and the least of each is taken. Output, one line, for the bench driver to parse:
 *
 *   kcrypto gcm(aes) key 128 record 16384 driver generic-gcm-aesni gcm_cpu_s_per_gib 61.2 null_cpu_s_per_gib 3.1 floor_cpu_s_per_gib 58.1
 */
#include <errno.h>
#include <linux/if_alg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define AAD_LEN 13  /* a TLS 1.2 record's additional data; TLS 1.3's is 5 — either way a few bytes */
#define TAG_LEN 16
#define IV_LEN  12

static void die(const char *what)
{
	fprintf(stderr, "kcrypto_speed: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* An AF_ALG operation socket for TYPE/NAME with KEY; the AEAD's tag size set when it is one. */
static int alg_open(const char *type, const char *name, const unsigned char *key, size_t keylen)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	snprintf((char *)sa.salg_type, sizeof(sa.salg_type), "%s", type);
	snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", name);
	int tfm = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (tfm < 0)
		die("socket(AF_ALG) (a kernel without CONFIG_CRYPTO_USER_API_AEAD?)");
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "kcrypto_speed: the kernel has no %s \"%s\": %s\n", type, name, strerror(errno));
		exit(1);
	}
	if (keylen && setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, (socklen_t)keylen) < 0)
		die("ALG_SET_KEY");
	if (!strcmp(type, "aead") && setsockopt(tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, TAG_LEN) < 0)
		die("ALG_SET_AEAD_AUTHSIZE");
	int op = accept(tfm, NULL, NULL);
	if (op < 0)
		die("accept(AF_ALG)");
	close(tfm);
	return op;
}

/* Push RECORDS records of LEN bytes through OP (aead when AEAD); returns the CPU-seconds it took. */
static double run(int op, int aead, size_t len, long records)
{
	size_t in_len = (aead ? AAD_LEN : 0) + len, out_len = in_len + (aead ? TAG_LEN : 0);
	unsigned char *in = calloc(1, in_len), *out = malloc(out_len);
	if (!in || !out)
		die("malloc");
	union {                                       /* aligned for struct cmsghdr */
		char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct af_alg_iv) + IV_LEN) +
			 CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} cmsg = { { 0 } };
	char *cbuf = cmsg.buf;
	double t0 = cpu_seconds();
	for (long i = 0; i < records; i++) {
		struct iovec iov = { in, in_len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = aead ? sizeof(cmsg.buf) : CMSG_SPACE(sizeof(uint32_t)) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_ALG, c->cmsg_type = ALG_SET_OP, c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
		*(uint32_t *)CMSG_DATA(c) = ALG_OP_ENCRYPT;
		if (aead) {
			c = CMSG_NXTHDR(&msg, c);
			c->cmsg_level = SOL_ALG, c->cmsg_type = ALG_SET_IV;
			c->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + IV_LEN);
			struct af_alg_iv *iv = (struct af_alg_iv *)CMSG_DATA(c);
			iv->ivlen = IV_LEN;
			memcpy(iv->iv, &i, sizeof(i));        /* a fresh nonce per record, as TLS does */
			c = CMSG_NXTHDR(&msg, c);
			c->cmsg_level = SOL_ALG, c->cmsg_type = ALG_SET_AEAD_ASSOCLEN, c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
			*(uint32_t *)CMSG_DATA(c) = AAD_LEN;
		}
		if (sendmsg(op, &msg, 0) != (ssize_t)in_len)
			die("sendmsg(AF_ALG)");
		if (read(op, out, out_len) != (ssize_t)out_len)
			die("read(AF_ALG)");
	}
	double t = cpu_seconds() - t0;
	free(in);
	free(out);
	return t;
}

/* The driver the kernel picked for "gcm(aes)" (the highest priority in /proc/crypto), for the report. */
static void driver_of(const char *name, char *drv, size_t size)
{
	FILE *f = fopen("/proc/crypto", "r");
	char line[256], cur_name[128] = "", cur_drv[128] = "";
	int best = -1;
	snprintf(drv, size, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		int prio;
		if (sscanf(line, "name : %127s", cur_name) == 1)
			continue;
		if (sscanf(line, "driver : %127s", cur_drv) == 1)
			continue;
		if (sscanf(line, "priority : %d", &prio) == 1 && !strcmp(cur_name, name) && prio > best) {
			best = prio;
			snprintf(drv, size, "%s", cur_drv);
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	int key_bits = 128;
	size_t record = 16384;
	long mib = 256;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--key-bits") && i + 1 < argc)
			key_bits = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--record") && i + 1 < argc)
			record = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: kcrypto_speed [--key-bits 128|256] [--record BYTES] [--mib N]\n");
			return 2;
		}
	}
	if ((key_bits != 128 && key_bits != 256) || record < 1 || record > 65536 || mib < 1) {
		fprintf(stderr, "kcrypto_speed: --key-bits 128|256, --record 1..65536, --mib >= 1\n");
		return 2;
	}
	unsigned char key[32] = { 1, 2, 3 };
	long records = (long)(((uint64_t)mib << 20) / record);
	double gib = (double)records * (double)record / (double)(1u << 30);

	/* Three passes of each, alternated, and the least of each: a pass that something else interrupted (this
	 * is for a shared, emulated machine) only ever takes longer. */
	int gcm_op = alg_open("aead", "gcm(aes)", key, (size_t)key_bits / 8);
	int null_op = alg_open("skcipher", "ecb(cipher_null)", NULL, 0);
	run(gcm_op, 1, record, records / 16 + 1);     /* warm up: the first records pay for page faults */
	run(null_op, 0, record, records / 16 + 1);
	double gcm = 1e300, null = 1e300;
	for (int pass = 0; pass < 3; pass++) {
		double t = run(gcm_op, 1, record, records);
		gcm = t < gcm ? t : gcm;
		t = run(null_op, 0, record, records);
		null = t < null ? t : null;
	}
	close(gcm_op);
	close(null_op);

	char drv[128];
	driver_of("gcm(aes)", drv, sizeof(drv));
	double floor = gcm - null > 0 ? gcm - null : 0;
	printf("kcrypto gcm(aes) key %d record %zu driver %s gcm_cpu_s_per_gib %.3f null_cpu_s_per_gib %.3f "
	       "floor_cpu_s_per_gib %.3f\n", key_bits, record, drv, gcm / gib, null / gib, floor / gib);
	return 0;
}
