/* stack_scrub.c — see stack_scrub.h. */
#include <string.h>

#include "tlsoff/stack_scrub.h"

#if defined(__x86_64__)
/* xmm0-15 (SSE2, every x86-64); with AVX their upper halves (vzeroall); with AVX-512 also zmm16-31, which
 * glibc's EVEX memcpy uses. Written as plain asm so the build needs no -mavx: the CPU check picks what runs.
 * The compiler keeps nothing in zmm16-31 (it is not allowed to use them here), so only xmm0-15 are
 * declared clobbered. */
static void clear_vector_registers(void)
{
	if (__builtin_cpu_supports("avx512f")) {
		__asm__ __volatile__(
			"vpxord %%zmm16, %%zmm16, %%zmm16\n\tvpxord %%zmm17, %%zmm17, %%zmm17\n\t"
			"vpxord %%zmm18, %%zmm18, %%zmm18\n\tvpxord %%zmm19, %%zmm19, %%zmm19\n\t"
			"vpxord %%zmm20, %%zmm20, %%zmm20\n\tvpxord %%zmm21, %%zmm21, %%zmm21\n\t"
			"vpxord %%zmm22, %%zmm22, %%zmm22\n\tvpxord %%zmm23, %%zmm23, %%zmm23\n\t"
			"vpxord %%zmm24, %%zmm24, %%zmm24\n\tvpxord %%zmm25, %%zmm25, %%zmm25\n\t"
			"vpxord %%zmm26, %%zmm26, %%zmm26\n\tvpxord %%zmm27, %%zmm27, %%zmm27\n\t"
			"vpxord %%zmm28, %%zmm28, %%zmm28\n\tvpxord %%zmm29, %%zmm29, %%zmm29\n\t"
			"vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t" ::: "memory");
	}
	if (__builtin_cpu_supports("avx")) {
		__asm__ __volatile__("vzeroall" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
				     "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
		return;
	}
	__asm__ __volatile__(
		"xorps %%xmm0, %%xmm0\n\txorps %%xmm1, %%xmm1\n\txorps %%xmm2, %%xmm2\n\txorps %%xmm3, %%xmm3\n\t"
		"xorps %%xmm4, %%xmm4\n\txorps %%xmm5, %%xmm5\n\txorps %%xmm6, %%xmm6\n\txorps %%xmm7, %%xmm7\n\t"
		"xorps %%xmm8, %%xmm8\n\txorps %%xmm9, %%xmm9\n\txorps %%xmm10, %%xmm10\n\t"
		"xorps %%xmm11, %%xmm11\n\txorps %%xmm12, %%xmm12\n\txorps %%xmm13, %%xmm13\n\t"
		"xorps %%xmm14, %%xmm14\n\txorps %%xmm15, %%xmm15" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		"xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}
#else
static void clear_vector_registers(void)
{
}
#endif

/* noinline and an escaping pointer: the compiler may neither merge this frame into the caller's nor drop
 * a memset of memory that is about to go out of scope. */
__attribute__((noinline)) void stack_scrub(void)
{
	unsigned char buf[STACK_SCRUB_BYTES];
	explicit_bzero(buf, sizeof(buf));
	__asm__ __volatile__("" : : "r"(buf) : "memory");
	clear_vector_registers();
}
