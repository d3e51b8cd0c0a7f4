/* SPDX-License-Identifier: MIT */
/* Writes: crash-safe block allocation, bitmap updates, footer repair. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

enum { STEP_DATA = 1, STEP_BITMAP, STEP_BAT, STEP_FOOTER };

/* Test-only fault injection; process-wide on purpose (a "crash"). */
static unsigned fault_nth, fault_step, alloc_count;
static bool fault_env_read;

void pvio_vhd_fault_inject(unsigned nth, unsigned step)
{
	fault_env_read = true;
	fault_nth = nth;
	fault_step = step;
	alloc_count = 0;
}

static void fault_env(void)
{
	if (fault_env_read)
		return;
	fault_env_read = true;
	const char *e = getenv("PVIO_VHD_FAULT");
	unsigned n, s;
	if (e && sscanf(e, "%u:%u", &n, &s) == 2)
		pvio_vhd_fault_inject(n, s);
}

static int step(struct pvio_vhd *v, unsigned s, struct pvio_vhd_err *err)
{
	if (fault_nth && alloc_count == fault_nth && s == fault_step) {
		v->dead = true;
		return vhd_err(err, -EIO, "%s: fault injected at allocation %u step %u", v->path,
			       fault_nth, s);
	}
	return 0;
}

int vhd_sync(struct pvio_vhd *v)
{
	if (v->flags & PVIO_VHD_NOSYNC)
		return 0;
	return fdatasync(v->fd) < 0 ? -errno : 0;
}

int pvio_vhd_flush(struct pvio_vhd *v)
{
	return fdatasync(v->fd) < 0 ? -errno : 0;
}

/* Put the footer back at the end after an interrupted allocation: it goes
 * right after the last live block, and whatever half-written block lay
 * beyond (never referenced by the BAT) is cut off. */
int vhd_repair_footer(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	int r = vhd_pwrite(v->fd, v->footer_raw, FOOTER_SIZE, v->next_free);
	if (r == 0 && ftruncate(v->fd, (off_t)(v->next_free + FOOTER_SIZE)) < 0)
		r = -errno;
	if (r == 0)
		r = vhd_sync(v);
	if (r < 0)
		return vhd_err(err, r, "%s: rewriting the footer: %s", v->path, strerror(-r));
	v->file_size = v->next_free + FOOTER_SIZE;
	v->backup_used = false;
	v->footer_repaired = true;
	return 0;
}

static int io_fail(struct pvio_vhd *v, int r, const char *what, struct pvio_vhd_err *err)
{
	v->dead = true;
	return vhd_err(err, r, "%s: %s: %s", v->path, what, strerror(-r));
}

/*
 * Allocate block @b at the end of the file.  The order keeps the image valid
 * if we stop after any step:
 *   1 data    the file grows to hold the whole block; the payload (if any)
 *             lands in it.  Unreferenced: invisible.
 *   2 bitmap  marks the payload's sectors.  Still unreferenced.  (This
 *             overwrites the old trailing footer; from here until step 4
 *             readers use the backup footer at offset 0.)
 *   3 BAT     the block becomes live, with its data and bitmap in place.
 *   4 footer  a fresh copy at the new end.
 * fdatasync between steps so the disk cannot reorder them either.
 */
static int allocate(struct pvio_vhd *v, uint32_t b, const void *buf, uint32_t in, uint32_t n,
		    struct pvio_vhd_err *err)
{
	uint64_t at = v->next_free;
	uint64_t blk = (uint64_t)v->bm_bytes + v->header.block_size;
	int r;

	fault_env();
	alloc_count++;
	if (at / PVIO_VHD_SECTOR >= BAT_UNUSED || at + blk + FOOTER_SIZE > (1ull << 41) + (1ull << 30))
		return vhd_err(err, -ENOSPC, "%s: file would outgrow the format's 32-bit sector offsets",
			       v->path);
	uint8_t *bm = calloc(1, v->bm_bytes);
	if (!bm)
		return vhd_err(err, -ENOMEM, "out of memory");

	if ((r = step(v, STEP_DATA, err)) < 0)
		goto out;
	if (ftruncate(v->fd, (off_t)(at + blk)) < 0) {
		r = io_fail(v, -errno, "growing the file", err);
		goto out;
	}
	if (buf && (r = vhd_pwrite(v->fd, buf, (size_t)n * PVIO_VHD_SECTOR,
				   at + v->bm_bytes + (uint64_t)in * PVIO_VHD_SECTOR)) < 0) {
		r = io_fail(v, r, "writing data", err);
		goto out;
	}
	if ((r = vhd_sync(v)) < 0) {
		r = io_fail(v, r, "syncing data", err);
		goto out;
	}

	if ((r = step(v, STEP_BITMAP, err)) < 0)
		goto out;
	if (buf)
		for (uint32_t i = 0; i < n; i++)
			bm_set(bm, in + i);
	if ((r = vhd_pwrite(v->fd, bm, v->bm_bytes, at)) < 0 || (r = vhd_sync(v)) < 0) {
		r = io_fail(v, r, "writing bitmap", err);
		goto out;
	}

	if ((r = step(v, STEP_BAT, err)) < 0)
		goto out;
	uint8_t ent[4];
	put_be32(ent, (uint32_t)(at / PVIO_VHD_SECTOR));
	if ((r = vhd_pwrite(v->fd, ent, 4, v->header.table_offset + 4ull * b)) < 0 ||
	    (r = vhd_sync(v)) < 0) {
		r = io_fail(v, r, "writing BAT entry", err);
		goto out;
	}
	v->bat[b] = (uint32_t)(at / PVIO_VHD_SECTOR);
	free(v->bm[b]);
	v->bm[b] = bm;
	bm = NULL;
	v->next_free = at + blk;
	v->file_size = at + blk;
	v->backup_used = true;	/* until the footer lands */

	if ((r = step(v, STEP_FOOTER, err)) < 0)
		goto out;
	if ((r = vhd_pwrite(v->fd, v->footer_raw, FOOTER_SIZE, v->next_free)) < 0 ||
	    (r = vhd_sync(v)) < 0) {
		r = io_fail(v, r, "moving the footer", err);
		goto out;
	}
	v->file_size = v->next_free + FOOTER_SIZE;
	v->backup_used = false;
	r = 0;
out:
	free(bm);
	return r;
}

/* Mark sectors [in, in+n) of allocated block @b present, writing only the
 * bitmap sectors that change. */
static int mark(struct pvio_vhd *v, uint32_t b, uint32_t in, uint32_t n, struct pvio_vhd_err *err)
{
	const uint8_t *cbm;
	int r = vhd_bitmap(v, b, &cbm, err);
	if (r < 0)
		return r;
	uint8_t *bm = v->bm[b];
	uint32_t lo = UINT32_MAX, hi = 0;
	for (uint32_t i = in; i < in + n; i++) {
		if (!bm_test(bm, i)) {
			bm_set(bm, i);
			uint32_t sec = (i / 8) / PVIO_VHD_SECTOR;
			lo = sec < lo ? sec : lo;
			hi = sec > hi ? sec : hi;
		}
	}
	if (lo == UINT32_MAX)
		return 0;
	r = vhd_pwrite(v->fd, bm + (size_t)lo * PVIO_VHD_SECTOR,
		       (size_t)(hi - lo + 1) * PVIO_VHD_SECTOR,
		       (uint64_t)v->bat[b] * PVIO_VHD_SECTOR + (uint64_t)lo * PVIO_VHD_SECTOR);
	if (r < 0) {
		free(v->bm[b]);	/* cache no longer matches the disk */
		v->bm[b] = NULL;
		return io_fail(v, r, "writing bitmap", err);
	}
	return 0;
}

static int writable(struct pvio_vhd *v, uint64_t sector, uint32_t count, struct pvio_vhd_err *err)
{
	if (!(v->flags & PVIO_VHD_RDWR))
		return vhd_err(err, -EROFS, "%s: opened read-only", v->path);
	if (v->dead)
		return vhd_err(err, -EIO, "%s: an earlier write failed; reopen the image", v->path);
	if (sector > v->sectors || v->sectors - sector < count)
		return vhd_err(err, -ERANGE, "%s: sectors [%llu, +%u) past the end (%llu)", v->path,
			       (unsigned long long)sector, count, (unsigned long long)v->sectors);
	return 0;
}

int pvio_vhd_write(struct pvio_vhd *v, const void *buf, uint64_t sector, uint32_t count,
		   struct pvio_vhd_err *err)
{
	const uint8_t *p = buf;
	int r = writable(v, sector, count, err);
	if (r < 0)
		return r;
	if (v->footer.type == PVIO_VHD_FIXED) {
		r = vhd_pwrite(v->fd, buf, (size_t)count * PVIO_VHD_SECTOR, sector * PVIO_VHD_SECTOR);
		return r < 0 ? io_fail(v, r, "writing data", err) : 0;
	}
	while (count) {
		uint32_t b = (uint32_t)(sector / v->spb), in = (uint32_t)(sector % v->spb);
		uint32_t n = v->spb - in < count ? v->spb - in : count;
		if (v->bat[b] == BAT_UNUSED) {
			r = allocate(v, b, p, in, n, err);
		} else {
			r = vhd_pwrite(v->fd, p, (size_t)n * PVIO_VHD_SECTOR,
				       (uint64_t)v->bat[b] * PVIO_VHD_SECTOR + v->bm_bytes +
					       (uint64_t)in * PVIO_VHD_SECTOR);
			if (r < 0)
				r = io_fail(v, r, "writing data", err);
			/* data before bitmap: a crash between shows the old data */
			else
				r = mark(v, b, in, n, err);
		}
		if (r < 0)
			return r;
		p += (size_t)n * PVIO_VHD_SECTOR;
		sector += n;
		count -= n;
	}
	return 0;
}

int64_t pvio_vhd_write_prepare(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			       struct pvio_vhd_extent *ext, unsigned max, unsigned *n,
			       struct pvio_vhd_err *err)
{
	uint32_t done = 0;
	int r = writable(v, sector, count, err);
	*n = 0;
	if (r < 0)
		return r;
	while (done < count) {
		uint64_t s = sector + done, off;
		uint32_t len;
		if (v->footer.type == PVIO_VHD_FIXED) {
			off = s * PVIO_VHD_SECTOR;
			len = count - done;
		} else {
			uint32_t b = (uint32_t)(s / v->spb), in = (uint32_t)(s % v->spb);
			len = v->spb - in < count - done ? v->spb - in : count - done;
			if (v->bat[b] == BAT_UNUSED && (r = allocate(v, b, NULL, 0, 0, err)) < 0)
				return r;
			off = (uint64_t)v->bat[b] * PVIO_VHD_SECTOR + v->bm_bytes +
			      (uint64_t)in * PVIO_VHD_SECTOR;
		}
		struct pvio_vhd_extent *prev = *n ? &ext[*n - 1] : NULL;
		if (prev && prev->offset + (uint64_t)prev->count * PVIO_VHD_SECTOR == off) {
			prev->count += len;
		} else {
			if (*n == max)
				break;
			ext[(*n)++] = (struct pvio_vhd_extent){ .sector = s, .offset = off, .count = len,
								.layer = 0, .fd = v->fd };
		}
		done += len;
	}
	return done;
}

int pvio_vhd_write_commit(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			  struct pvio_vhd_err *err)
{
	int r = writable(v, sector, count, err);
	if (r < 0 || v->footer.type == PVIO_VHD_FIXED)
		return r;
	while (count) {
		uint32_t b = (uint32_t)(sector / v->spb), in = (uint32_t)(sector % v->spb);
		uint32_t n = v->spb - in < count ? v->spb - in : count;
		if (v->bat[b] == BAT_UNUSED)
			return vhd_err(err, -EINVAL, "%s: commit of an unprepared block %u", v->path, b);
		if ((r = mark(v, b, in, n, err)) < 0)
			return r;
		sector += n;
		count -= n;
	}
	return 0;
}
