/* SPDX-License-Identifier: MIT */
/*
 * test-blkfront-back: the blkfront tests' RAM-disk backend as a dom0
 * program, for end-to-end runs of pvblk while tapdisk is not in use.
 * Creates the vbd in xenstore, prints "ready", then serves CONNECTIONS
 * frontends one after the other.
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenstore.h>

#include "testback.h"

/* Wait for a new frontend (state Initialising) on the device. */
static int wait_frontend_init(uint32_t domid, uint32_t devid)
{
	struct xs_handle *xs = xs_open(0);
	char path[128];
	int ret = -1;

	if (!xs)
		return -1;
	snprintf(path, sizeof(path), "/local/domain/%u/device/vbd/%u/state", domid, devid);
	xs_watch(xs, path, "w");
	for (;;) {
		unsigned len, num;
		char *v = xs_read(xs, XBT_NULL, path, &len);
		int one = v && !strcmp(v, "1");

		free(v);
		if (one) {
			ret = 0;
			break;
		}
		struct pollfd p = { .fd = xs_fileno(xs), .events = POLLIN };
		if (poll(&p, 1, 60000) <= 0)
			break;
		free(xs_read_watch(xs, &num));
	}
	xs_close(xs);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option o[] = {
		{ "domain", 1, 0, 'd' }, { "devid", 1, 0, 'v' }, { "sectors", 1, 0, 's' },
		{ "order", 1, 0, 'o' },	 { "flush", 0, 0, 'f' }, { "connections", 1, 0, 'n' },
		{ "help", 0, 0, 'h' },	 { 0 },
	};
	struct tb_cfg c = { .devid = 51712, .sectors = 32768, .max_order = 4 };
	unsigned n = 1;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "d:v:s:o:fn:h", o, NULL)) != -1) {
		switch (opt) {
		case 'd': c.domid = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'v': c.devid = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 's': c.sectors = strtoull(optarg, NULL, 10); break;
		case 'o': c.max_order = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'f': c.flush = 1; break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h':
			printf("Usage: test-blkfront-back --domain D [--devid N] [--sectors S] [--order O]\n"
			       "                          [--flush] [--connections K]\n");
			return 0;
		default: return 2;
		}
	}
	if (!c.domid || !c.sectors) {
		fprintf(stderr, "test-blkfront-back: --domain and --sectors > 0 needed\n");
		return 2;
	}
	c.disk = calloc(c.sectors, 512);
	if (!c.disk || tb_create_vbd(c.domid, c.devid)) {
		fprintf(stderr, "test-blkfront-back: setup failed\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (unsigned i = 0; i < n && !rc; i++) {
		if (wait_frontend_init(c.domid, c.devid)) {
			fprintf(stderr, "test-blkfront-back: no frontend came\n");
			return 1;
		}
		rc = tb_run(&c);
	}
	free(c.disk);
	return rc;
}
