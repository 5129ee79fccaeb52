// SPDX-License-Identifier: GPL-2.0
/*
 * hpio.ko test suite, run by /init inside the test VM.  Loads and unloads
 * the module itself.  Prints one line per check and, last,
 * "N passed, M failed".
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	uint64_t t0 = mono_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* One CPU for the test process (threads that need another say so):
	 * a frame sent here is received on this CPU, hence this ring. */
	pin_cpu(0);
	printf("hpio tests on %d CPU(s)\n", ncpus());
	/* No IPv6 chatter (router solicitations...) on test links. */
	write_str("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_str("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");

	test_lifecycle_load();
	if (!mod_loaded()) {
		printf("module did not load, stopping\n");
	} else {
		test_nodes();
		test_roundtrip();
		test_frames();
		test_sizes();
		test_stack();
		test_errors();
		test_perm();
		test_blocking();
		test_readers();
		test_queues();
		test_overflow();
		test_removal();
		test_busy();
		test_leaks();
		test_example();
		test_unload();
	}
	printf("tests took %llu ms\n", (unsigned long long)(mono_ms() - t0));
	printf("%d passed, %d failed\n", g_passed, g_failed);
	return g_failed ? 1 : 0;
}
