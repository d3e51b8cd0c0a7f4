/* SPDX-License-Identifier: MIT */
/*
 * mkchain DIR DEPTH SEED [MIB]: build a VHD chain of DEPTH files in DIR
 * (l0.vhd a dynamic base, l1..l<DEPTH-1> differencing children, each made
 * with the vhd/ library) with random writes of random data at every level,
 * and write DIR/model.raw: what the leaf's view must read as (an overlay
 * of every level's writes over zeros).  Prints the leaf's path.  A test
 * helper for tests/block/vhd-deep.sh, which reads the chain through
 * tapdisk and compares.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvio/vhd.h"

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: reproducible from the seed the test prints */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static int die(const char *what, const struct pvio_vhd_err *e)
{
	fprintf(stderr, "mkchain: %s: %s\n", what, e->msg);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: mkchain DIR DEPTH SEED [MIB]\n");
		return 2;
	}
	const char *dir = argv[1];
	unsigned depth = (unsigned)strtoul(argv[2], NULL, 0);
	uint64_t seed = strtoull(argv[3], NULL, 0) | 1;
	uint64_t disk = (argc == 5 ? strtoull(argv[4], NULL, 0) : 8) << 20;
	uint64_t sectors = disk / 512;
	if (depth < 1 || depth > 200 || disk == 0) {
		fprintf(stderr, "mkchain: bad depth or size\n");
		return 2;
	}
	uint8_t *model = calloc(1, disk), *buf = malloc(128 * 512);
	char path[4096], parent[4096] = "";
	struct pvio_vhd_err e = { 0, "" };
	/* fewer writes per level in deep chains: every level still differs */
	unsigned writes = depth > 10 ? 6 : 24;

	if (!model || !buf)
		return 1;
	for (unsigned i = 0; i < depth; i++) {
		snprintf(path, sizeof(path), "%s/l%u.vhd", dir, i);
		/* 64 KiB blocks in the base so small writes leave holes around them */
		struct pvio_vhd_create_opts o = {
			.type = i ? PVIO_VHD_DIFF : PVIO_VHD_DYNAMIC,
			.size = i ? 0 : disk,
			.block_size = i ? 0 : 64u << 10,
			.parent = i ? parent : NULL,
		};
		if (pvio_vhd_create(path, &o, &e))
			die("create", &e);
		struct pvio_vhd *v;
		if (pvio_vhd_open(path, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &v, &e))
			die("open", &e);
		for (unsigned w = 0; w < writes; w++) {
			uint32_t n = 1 + (uint32_t)(rnd(&seed) % 128);
			uint64_t s = rnd(&seed) % (sectors - n);
			for (uint32_t k = 0; k < n * 512; k++)
				buf[k] = (uint8_t)rnd(&seed);
			if (pvio_vhd_write(v, buf, s, n, &e))
				die("write", &e);
			memcpy(model + s * 512, buf, (size_t)n * 512);
		}
		pvio_vhd_close(v);
		snprintf(parent, sizeof(parent), "%s", path);
	}
	char mpath[4096];
	snprintf(mpath, sizeof(mpath), "%s/model.raw", dir);
	int fd = open(mpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, model, disk) != (ssize_t)disk || close(fd)) {
		fprintf(stderr, "mkchain: writing %s: %s\n", mpath, strerror(errno));
		return 1;
	}
	printf("%s\n", path);
	free(model);
	free(buf);
	return 0;
}
