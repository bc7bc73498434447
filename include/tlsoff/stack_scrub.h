/* stack_scrub.h — wipe the stack below the caller, and the vector registers.
 *
 * OpenSSL leaves copies of secrets in stack frames it has returned from: in a 7.2 guest, tests/lab/
 * key_hygiene.sh found the server's TLS 1.3 application traffic secret twice, ~15 KB below the top of the
 * worker thread's stack, after the SSL object was long freed. Nothing in the public API reaches those
 * frames, so the worker wipes the region they were in once a batch of events that ran TLS key material
 * (handshakes, KeyUpdates) is done, from its loop: the shallowest frame, below which the handshake's
 * frames were.
 *
 * Registers too: a secret a memcpy or a KDF just moved stays in the SSE/AVX registers until something
 * overwrites them, and whatever later saves all of them to the stack — a signal frame, the lazy PLT
 * resolver — writes it back into memory after the wipe (key_hygiene.sh found it so, ~1 run in 8, 2.6 KB
 * below the idle worker's stack pointer). So the scrub clears them as well. */
#ifndef TLSOFF_STACK_SCRUB_H
#define TLSOFF_STACK_SCRUB_H

/* How far below the caller's frame: OpenSSL's handshake goes ~16 KB deep; four times that for margin.
 * Costs a 64 KB memset (a few microseconds) per batch that needs it. */
#define STACK_SCRUB_BYTES (64 * 1024)

void stack_scrub(void);

#endif
