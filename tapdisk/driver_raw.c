/* SPDX-License-Identifier: MIT */
/*
 * Raw image driver: the image file (or block device) is the disk, byte for
 * byte.  Opened O_DIRECT so the guest's pages go to the device without the
 * host page cache; a filesystem that refuses O_DIRECT (tmpfs) or needs a
 * larger direct-I/O alignment than 512 bytes gets buffered I/O, logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#include "tapdisk.h"

/* Direct-I/O alignment the file needs, or 0 if the kernel cannot say. */
unsigned td_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align)
		return sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
								      : sx.stx_dio_mem_align;
#else
	(void)fd;
#endif
	return 0;
}

static int raw_open(const char *path, int readonly, struct td_image *img)
{
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	unsigned align;
	int fd, err;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	snprintf(img->path, sizeof(img->path), "%s", path);
	fd = open(path, flags | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		td_log(TD_INFO, "%s: the filesystem refuses O_DIRECT: using buffered I/O", path);
		fd = open(path, flags);
	} else if (fd >= 0) {
		align = td_dio_align(fd);
		if (align > 512) {
			td_log(TD_INFO, "%s: direct I/O needs %u-byte alignment, blkif sectors are 512: "
			       "using buffered I/O", path, align);
			close(fd);
			fd = open(path, flags);
		} else {
			img->direct = 1;
		}
	}
	if (fd < 0) {
		err = -errno;
		td_log(TD_ERR, "cannot open image %s%s: %s", path, readonly ? " read-only" : "",
		       strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			err = -errno;
			close(fd);
			return err;
		}
		img->size = sz;
	} else if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
	} else {
		td_log(TD_ERR, "image %s is neither a regular file nor a block device", path);
		close(fd);
		return -EINVAL;
	}
	if (img->size % 512)
		td_log(TD_WARN, "image %s: size %llu is not a multiple of 512: the last %llu bytes are not served",
		       path, (unsigned long long)img->size, (unsigned long long)(img->size % 512));
	img->fd = fd;
	img->readonly = readonly;
	img->phys_sector = 512;
	/* Discard = punch a hole. Probe at the end of the file, where a
	 * KEEP_SIZE punch changes nothing but tells whether the filesystem
	 * can do it at all. */
	img->can_discard = !readonly && S_ISREG(st.st_mode) &&
			   fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     (off_t)img->size, 4096) == 0;
	td_log(TD_INFO, "raw image %s: %llu bytes, %s, %s I/O, discard %s", path,
	       (unsigned long long)img->size, readonly ? "read-only" : "read-write",
	       img->direct ? "direct" : "buffered", img->can_discard ? "by punching holes" : "off");
	return 0;
}

static void raw_close(struct td_image *img)
{
	if (img->fd >= 0)
		close(img->fd);
	img->fd = -1;
}

/* Allocation for NBD block status: the file's own holes (SEEK_DATA /
 * SEEK_HOLE; a filesystem without them, or a block device, is all data). */
static int raw_extent(struct td_image *img, uint64_t off, uint64_t len, uint64_t *run, int *hole)
{
	uint64_t end = off + len;
	off_t d = lseek(img->fd, (off_t)off, SEEK_DATA);

	if (d < 0 && errno == ENXIO) { /* no data from here to the end of the file */
		*hole = 1;
		*run = len;
		return 0;
	}
	if (d < 0) {
		*hole = 0;
		*run = len;
		return 0;
	}
	if ((uint64_t)d > off) {
		*hole = 1;
		*run = ((uint64_t)d < end ? (uint64_t)d : end) - off;
	} else {
		off_t h = lseek(img->fd, (off_t)off, SEEK_HOLE);
		*hole = 0;
		*run = h < 0 || (uint64_t)h >= end ? len : (uint64_t)h - off;
	}
	/* Whole sectors (filesystem blocks are, but never trust it): a data
	 * run may grow over a hole, a hole run must never cover data. */
	uint64_t tail = (off + *run) % 512;
	if (*run < len && tail) {
		if (!*hole) {
			*run += 512 - tail < len - *run ? 512 - tail : len - *run;
		} else if (*run > tail) {
			*run -= tail;
		} else {
			*hole = 0;
			*run = 512 - off % 512 < len ? 512 - off % 512 : len;
		}
	}
	return 0;
}

const struct td_driver_ops td_driver_raw = {
	.name = "raw",
	.open = raw_open,
	.close = raw_close,
	.extent = raw_extent,
};

const struct td_driver_ops *td_driver_for(const char *params, const char **path)
{
	const char *colon = strchr(params, ':');

	if (params[0] == '/') {
		*path = params;
		return &td_driver_raw;
	}
	if (colon && colon[1] == '/') {
		size_t n = (size_t)(colon - params);
		if ((n == 3 && !strncmp(params, "aio", 3)) || (n == 3 && !strncmp(params, "raw", 3))) {
			*path = colon + 1;
			return &td_driver_raw;
		}
		if (n == 3 && !strncmp(params, "vhd", 3)) {
			*path = colon + 1;
			return &td_driver_vhd;
		}
	}
	td_log(TD_ERR, "params '%.200s': not aio:/path, raw:/path, vhd:/path or an absolute path: refusing", params);
	return NULL;
}
