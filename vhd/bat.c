/* SPDX-License-Identifier: MIT */
/* The block allocation table and per-block sector bitmaps (cached). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Load the BAT and prove every entry points at a whole block inside the
 * file that overlaps no metadata and no other block. */
int vhd_load_bat(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	uint64_t limit = v->backup_used ? v->file_size : v->file_size - FOOTER_SIZE;
	uint64_t blk = (uint64_t)v->bm_bytes + v->header.block_size;
	size_t bytes = (size_t)v->bat_entries * 4;
	uint8_t *raw = malloc(bytes ? bytes : 1);
	uint32_t *sorted = NULL;
	uint32_t n = 0;
	int r;

	v->bat = calloc(v->bat_entries ? v->bat_entries : 1, sizeof(uint32_t));
	v->bm = calloc(v->bat_entries ? v->bat_entries : 1, sizeof(uint8_t *));
	if (!raw || !v->bat || !v->bm) {
		r = vhd_err(err, -ENOMEM, "%s: out of memory for the BAT", v->path);
		goto out;
	}
	r = vhd_pread(v->fd, raw, bytes, v->header.table_offset);
	if (r < 0) {
		r = vhd_err(err, r, "%s: reading BAT: %s", v->path, strerror(-r));
		goto out;
	}
	sorted = malloc((v->bat_entries ? v->bat_entries : 1) * sizeof(uint32_t));
	if (!sorted) {
		r = vhd_err(err, -ENOMEM, "%s: out of memory", v->path);
		goto out;
	}
	for (uint32_t i = 0; i < v->bat_entries; i++) {
		uint32_t e = get_be32(raw + 4 * (size_t)i);
		v->bat[i] = e;
		if (e == BAT_UNUSED)
			continue;
		uint64_t off = (uint64_t)e * PVIO_VHD_SECTOR;
		if (off > limit || limit - off < blk) {
			r = vhd_err(err, -EINVAL,
				    "%s: BAT entry %u points at sector %u, past the end of the file",
				    v->path, i, e);
			goto out;
		}
		for (unsigned k = 0; k < v->nranges; k++) {
			const struct vhd_range *m = &v->ranges[k];
			if (off < m->end && m->start < off + blk) {
				r = vhd_err(err, -EINVAL, "%s: BAT entry %u (block at byte %llu) overlaps %s",
					    v->path, i, (unsigned long long)off, m->what);
				goto out;
			}
		}
		if (off + blk > v->next_free)
			v->next_free = off + blk;
		sorted[n++] = e;
	}
	qsort(sorted, n, sizeof(uint32_t), cmp_u32);
	for (uint32_t i = 1; i < n; i++) {
		if ((uint64_t)(sorted[i] - sorted[i - 1]) * PVIO_VHD_SECTOR < blk) {
			r = vhd_err(err, -EINVAL, "%s: blocks at sectors %u and %u overlap", v->path,
				    sorted[i - 1], sorted[i]);
			goto out;
		}
	}
	r = 0;
out:
	free(sorted);
	free(raw);
	return r;
}

int vhd_bitmap(struct pvio_vhd *v, uint32_t block, const uint8_t **out, struct pvio_vhd_err *err)
{
	if (block >= v->bat_entries || v->bat[block] == BAT_UNUSED)
		return vhd_err(err, -EINVAL, "%s: block %u is not allocated", v->path, block);
	if (!v->bm[block]) {
		uint8_t *bm = malloc(v->bm_bytes);
		if (!bm)
			return vhd_err(err, -ENOMEM, "out of memory");
		int r = vhd_pread(v->fd, bm, v->bm_bytes, (uint64_t)v->bat[block] * PVIO_VHD_SECTOR);
		if (r < 0) {
			free(bm);
			return vhd_err(err, r, "%s: reading bitmap of block %u: %s", v->path, block,
				       strerror(-r));
		}
		v->bm[block] = bm;
	}
	*out = v->bm[block];
	return 0;
}

uint32_t pvio_vhd_block_sectors(const struct pvio_vhd *v)
{
	return v->footer.type == PVIO_VHD_FIXED ? PVIO_VHD_DEFAULT_BLOCK / PVIO_VHD_SECTOR : v->spb;
}

uint32_t pvio_vhd_nblocks(const struct pvio_vhd *v)
{
	uint32_t spb = pvio_vhd_block_sectors(v);
	uint64_t n = (v->sectors + spb - 1) / spb;
	if (v->footer.type != PVIO_VHD_FIXED && n > v->bat_entries)
		n = v->bat_entries;
	return (uint32_t)n;
}

int pvio_vhd_block(struct pvio_vhd *v, uint32_t block, uint64_t *data_off, uint32_t *nsect_set,
		   struct pvio_vhd_err *err)
{
	uint32_t spb = pvio_vhd_block_sectors(v);
	if (block >= pvio_vhd_nblocks(v))
		return vhd_err(err, -EINVAL, "%s: block %u past the end", v->path, block);
	uint64_t first = (uint64_t)block * spb;
	uint32_t in_disk = v->sectors - first < spb ? (uint32_t)(v->sectors - first) : spb;
	if (v->footer.type == PVIO_VHD_FIXED) {
		*data_off = first * PVIO_VHD_SECTOR;
		if (nsect_set)
			*nsect_set = in_disk;
		return 1;
	}
	if (v->bat[block] == BAT_UNUSED)
		return 0;
	*data_off = (uint64_t)v->bat[block] * PVIO_VHD_SECTOR + v->bm_bytes;
	if (nsect_set) {
		if (v->footer.type == PVIO_VHD_DYNAMIC) {
			*nsect_set = in_disk;
		} else {
			const uint8_t *bm;
			int r = vhd_bitmap(v, block, &bm, err);
			if (r < 0)
				return r;
			uint32_t c = 0;
			for (uint32_t i = 0; i < in_disk; i++)
				c += bm_test(bm, i);
			*nsect_set = c;
		}
	}
	return 1;
}
