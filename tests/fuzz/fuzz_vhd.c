/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the VHD parser: the input is an image file.  It is opened (footer,
 * backup footer, header, BAT, locators), checked, resolved as a chain (its
 * locators may name any file: opening one read-only is harmless), read,
 * and written (allocation against hostile layouts).  Any crash, leak or
 * sanitizer report is a finding; errors are the expected outcome.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvio/vhd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void ignore(void *opaque, enum pvio_vhd_severity s, const char *msg)
{
	(void)opaque;
	(void)s;
	(void)msg;
}

static int put_input(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/fuzz-vhd-%d.vhd", (int)getpid());
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ssize_t w = size ? write(fd, data, size) : 0;
	close(fd);
	return w == (ssize_t)size ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pvio_vhd_err e;
	struct pvio_vhd_chain *c;
	static uint8_t buf[64 * 512];

	if (put_input(data, size) < 0)
		return 0;
	(void)pvio_vhd_check(path, true, ignore, NULL);
	if (pvio_vhd_chain_open(path, 0, &c, &e) == 0) {
		uint64_t n = pvio_vhd_chain_sectors(c);
		uint64_t at[3] = { 0, n / 2, n > 64 ? n - 64 : 0 };
		for (int i = 0; i < 3; i++) {
			uint32_t cnt = n - at[i] < 64 ? (uint32_t)(n - at[i]) : 64;
			if (cnt)
				(void)pvio_vhd_chain_read(c, buf, at[i], cnt, &e);
		}
		struct pvio_vhd *leaf = pvio_vhd_chain_layer(c, 0);
		for (uint32_t b = 0; b < pvio_vhd_nblocks(leaf) && b < 64; b++) {
			uint64_t off;
			uint32_t set;
			(void)pvio_vhd_block(leaf, b, &off, &set, &e);
		}
		pvio_vhd_chain_close(c);
	}
	struct pvio_vhd *v;
	if (pvio_vhd_open(path, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &v, &e) == 0) {
		uint64_t n = pvio_vhd_sectors(v);
		memset(buf, 0xa5, 512);
		if (n) {
			(void)pvio_vhd_write(v, buf, 0, 1, &e);
			(void)pvio_vhd_write(v, buf, n - 1, 1, &e);
		}
		pvio_vhd_close(v);
	}
	unlink(path);
	return 0;
}
