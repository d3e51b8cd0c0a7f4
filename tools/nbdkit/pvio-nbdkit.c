/* SPDX-License-Identifier: MIT */
/*
 * nbdkit-pvio-plugin: exposes a guest's PV disk over NBD, so real NBD
 * clients (qemu-img, qemu-io, nbdcopy, nbdinfo, fio's nbd engine, nbdfuse)
 * drive I/O through blkfront -> ring -> tapdisk -> image.
 *
 * Run it as a process of the guest:
 *   xensim run DOMID -- nbdkit --foreground --unix SOCK \
 *       /path/to/nbdkit-pvio-plugin.so vdev=xvda
 *
 * blkfront is single-threaded, so nbdkit serialises all requests; the
 * device is opened once, after nbdkit has forked (libxenstore's reader
 * thread would not survive the fork), and shared by every connection.
 * Requests not aligned to the disk's sector size are done by
 * read-modify-write of the edge sectors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "pvio/blkfront.h"
#include "pvio/blkfront_xensim.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static char *vdev;
static struct pvio_blkfront_xensim *dev;
static struct pvio_blkfront *bf;
static struct pvio_blkfront_info info;

static int pvio_config(const char *key, const char *value)
{
	if (strcmp(key, "vdev") == 0) {
		uint32_t devid;
		if (pvio_blkfront_xensim_parse_vdev(value, &devid) < 0) {
			nbdkit_error("vdev=%s: expected xvdX or a device number", value);
			return -1;
		}
		free(vdev);
		vdev = strdup(value);
		return vdev ? 0 : -1;
	}
	nbdkit_error("unknown parameter '%s' (this plugin takes vdev=xvdX)", key);
	return -1;
}

static int pvio_after_fork(void)
{
	/* indirect requests: a 1 MiB NBD read is one ring request */
	struct pvio_blkfront_config cfg = { .max_indirect_segments = 256 };
	int err = pvio_blkfront_xensim_open(vdev, &cfg, &dev);

	if (err < 0) {
		nbdkit_error("cannot open PV disk %s: %s (run me with 'xensim run DOMID --')",
			     vdev ? vdev : "(first)", strerror(-err));
		return -1;
	}
	bf = pvio_blkfront_xensim_dev(dev);
	pvio_blkfront_get_info(bf, &info);
	nbdkit_debug("pvio: %s: %llu sectors, sector size %u%s", pvio_blkfront_xensim_dir(dev),
		     (unsigned long long)info.sectors, info.sector_size,
		     info.readonly ? ", read-only" : "");
	return 0;
}

static void pvio_unload(void)
{
	if (dev)
		pvio_blkfront_xensim_close(dev);
	free(vdev);
}

static void *pvio_open(int readonly)
{
	(void)readonly;
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t pvio_get_size(void *h)
{
	(void)h;
	return (int64_t)(info.sectors * 512);
}

static int pvio_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	(void)h;
	*minimum = 1;  /* we do read-modify-write for smaller pieces */
	*preferred = info.sector_size > 4096 ? info.sector_size : 4096;
	*maximum = 0xffffffff;
	return 0;
}

static int pvio_can_write(void *h) { (void)h; return !info.readonly; }
static int pvio_can_flush(void *h) { (void)h; return 1; }
static int pvio_can_fua(void *h) { (void)h; return NBDKIT_FUA_EMULATE; }

static int fail(const char *what, int err)
{
	nbdkit_error("pvio: %s: %s", what, strerror(-err));
	errno = -err;
	return -1;
}

/* Read or write whole sectors. */
static int io(int write, void *buf, uint64_t off, size_t len)
{
	int err = write ? pvio_blkfront_write(bf, off / 512, buf, len)
			: pvio_blkfront_read(bf, off / 512, buf, len);
	return err < 0 ? fail(write ? "write" : "read", err) : 0;
}

static int pvio_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size, start = offset / ss * ss;
	uint64_t end = (offset + count + ss - 1) / ss * ss;
	uint8_t *bounce;
	int r;

	(void)h;
	(void)flags;
	if (start == offset && end == offset + count)
		return io(0, buf, offset, count);
	bounce = malloc(end - start);
	if (!bounce)
		return fail("read", -ENOMEM);
	r = io(0, bounce, start, end - start);
	if (r == 0)
		memcpy(buf, bounce + (offset - start), count);
	free(bounce);
	return r;
}

static int pvio_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size, start = offset / ss * ss;
	uint64_t end = (offset + count + ss - 1) / ss * ss;
	uint8_t *bounce;
	int r = 0;

	(void)h;
	if (start == offset && end == offset + count) {
		r = io(1, (void *)buf, offset, count);
	} else {
		/* read-modify-write of the partial edge sectors */
		bounce = malloc(end - start);
		if (!bounce)
			return fail("write", -ENOMEM);
		if (offset != start)
			r = io(0, bounce, start, ss);
		if (r == 0 && (offset + count) % ss && (end - ss != start || offset == start))
			r = io(0, bounce + (end - ss - start), end - ss, ss);
		if (r == 0) {
			memcpy(bounce + (offset - start), buf, count);
			r = io(1, bounce, start, end - start);
		}
		free(bounce);
	}
	if (r == 0 && (flags & NBDKIT_FLAG_FUA)) {
		int err = pvio_blkfront_flush(bf);
		if (err < 0)
			return fail("flush", err);
	}
	return r;
}

static int pvio_can_trim(void *h) { (void)h; return info.discard && !info.readonly; }

/* Trim is advisory: only the whole sectors inside the range are discarded. */
static int pvio_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size;
	uint64_t start = (offset + ss - 1) / ss * ss, end = (offset + count) / ss * ss;
	int err;

	(void)h;
	if (end > start) {
		err = pvio_blkfront_discard(bf, start / 512, (size_t)(end - start));
		if (err < 0)
			return fail("trim", err);
	}
	if (flags & NBDKIT_FLAG_FUA) {
		err = pvio_blkfront_flush(bf);
		if (err < 0)
			return fail("flush", err);
	}
	return 0;
}

static int pvio_flush(void *h, uint32_t flags)
{
	int err;

	(void)h;
	(void)flags;
	err = pvio_blkfront_flush(bf);
	return err < 0 ? fail("flush", err) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "pvio",
	.longname = "pvio Xen PV block device (blkfront on xensim)",
	.version = "0.1",
	.description = "Expose a guest's PV disk (device/vbd/N) over NBD",
	.config = pvio_config,
	.config_help = "vdev=<xvdX|N>   the guest's PV disk (default: the first one)",
	.after_fork = pvio_after_fork,
	.unload = pvio_unload,
	.open = pvio_open,
	.get_size = pvio_get_size,
	.block_size = pvio_block_size,
	.can_write = pvio_can_write,
	.can_flush = pvio_can_flush,
	.can_fua = pvio_can_fua,
	.pread = pvio_pread,
	.pwrite = pvio_pwrite,
	.flush = pvio_flush,
	.can_trim = pvio_can_trim,
	.trim = pvio_trim,
};

NBDKIT_REGISTER_PLUGIN(plugin)
