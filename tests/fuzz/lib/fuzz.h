/* fuzz.h — what the harnesses share: a contract check that stops the run with the line that failed (libFuzzer
 * then writes the input as a reproducer), and the resolver they all get (no_dns.c). */
#ifndef TLSOFF_FUZZ_H
#define TLSOFF_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

#endif
