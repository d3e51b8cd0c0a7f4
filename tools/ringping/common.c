/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "ringping.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvio-ringping front [--backend DOMID] [--count N] [--order 0..4] [--json]\n"
		"       pvio-ringping back --domain DOMID [--json]\n"
		"Exchange verified requests over a Xen shared ring of 2^order pages.\n"
		"front runs in a domU (xensim run DOMID -- pvio-ringping front ...): it grants\n"
		"the ring, offers an event channel, publishes both in xenstore and sends N\n"
		"requests, checking every response. back runs in dom0: it waits for the\n"
		"frontend in xenstore, maps the ring, binds the channel and answers, checking\n"
		"every payload. Both exit 0 only if every request and response was right.\n");
}

#if !PVIO_XEN_SIM
/* A real domU's frontend lives in its kernel; this build has no guest side. */
int rp_front(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "pvio-ringping: 'front' needs a xensim build (-Dxen=sim)\n");
	return 2;
}
#endif

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "front"))
		return rp_front(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "back"))
		return rp_back(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
