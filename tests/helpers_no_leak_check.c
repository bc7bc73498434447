/* Linked into the test helpers in tests/bin/ of a sanitized build only (Makefile: TBIN_EXTRA).
 *
 * The helpers — load generators, misbehaving peers, probes — end by returning from main() or calling
 * die() in the middle of a run, with their connections, SSL objects and buffers still allocated: that is
 * how a test tool stops, not a leak anybody pays for, and LeakSanitizer cannot tell the two apart (the
 * allocations come from libcrypto, which has no frame pointers, so a suppression by source file cannot
 * match them). AddressSanitizer and UBSan stay on in the helpers; leak checking stays on in tlsoffd,
 * tlsoffctl and the unit runners, where a leak is a bug. */
int __lsan_is_turned_off(void);

int __lsan_is_turned_off(void)
{
	return 1;
}
