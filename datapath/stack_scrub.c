/* stack_scrub.c — see stack_scrub.h. */
#include <string.h>

#include "tlsoff/stack_scrub.h"

/* noinline and an escaping pointer: the compiler may neither merge this frame into the caller's nor drop
 * a memset of memory that is about to go out of scope. */
__attribute__((noinline)) void stack_scrub(void)
{
	unsigned char buf[STACK_SCRUB_BYTES];
	explicit_bzero(buf, sizeof(buf));
	__asm__ __volatile__("" : : "r"(buf) : "memory");
}
