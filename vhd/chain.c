/* SPDX-License-Identifier: MIT */
/* Chains: open leaf..base, resolve virtual sectors through the layers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "private.h"

struct pvio_vhd_chain {
	unsigned depth;
	struct pvio_vhd *layer[PVIO_VHD_MAX_DEPTH];
	dev_t dev[PVIO_VHD_MAX_DEPTH];
	ino_t ino[PVIO_VHD_MAX_DEPTH];
};

int pvio_vhd_chain_open(const char *leaf, unsigned flags, struct pvio_vhd_chain **out,
			struct pvio_vhd_err *err)
{
	struct pvio_vhd_chain *c = calloc(1, sizeof(*c));
	const char *path = leaf;
	int r;

	if (!c)
		return vhd_err(err, -ENOMEM, "out of memory");
	for (;;) {
		struct pvio_vhd *v;
		struct stat st;
		unsigned f = c->depth == 0 ? flags : (flags & ~PVIO_VHD_RDWR);
		if (c->depth == PVIO_VHD_MAX_DEPTH) {
			r = vhd_err(err, -ELOOP, "%s: chain deeper than %u", leaf, PVIO_VHD_MAX_DEPTH);
			goto fail;
		}
		if (stat(path, &st) == 0) {
			for (unsigned i = 0; i < c->depth; i++) {
				if (c->dev[i] == st.st_dev && c->ino[i] == st.st_ino) {
					r = vhd_err(err, -ELOOP, "%s: chain loops: %s is also layer %u",
						    leaf, path, i);
					goto fail;
				}
			}
		}
		r = pvio_vhd_open(path, f, &v, err);
		if (r < 0)
			goto fail;
		if (c->depth > 0) {
			struct pvio_vhd *child = c->layer[c->depth - 1];
			if (memcmp(child->header.parent_uuid, v->footer.uuid, 16) != 0) {
				char a[37], b[37];
				pvio_vhd_uuid_str(child->header.parent_uuid, a);
				pvio_vhd_uuid_str(v->footer.uuid, b);
				r = vhd_err(err, -EINVAL,
					    "%s: parent UUID mismatch: it expects %s, %s is %s",
					    child->path, a, path, b);
				pvio_vhd_close(v);
				goto fail;
			}
		}
		c->dev[c->depth] = st.st_dev;
		c->ino[c->depth] = st.st_ino;
		c->layer[c->depth++] = v;
		if (v->footer.type != PVIO_VHD_DIFF)
			break;
		if (!v->parent_path[0]) {
			r = vhd_resolve_parent(v, err);
			goto fail;
		}
		path = v->parent_path;
	}
	*out = c;
	return 0;
fail:
	pvio_vhd_chain_close(c);
	return r < 0 ? r : -EINVAL;
}

void pvio_vhd_chain_close(struct pvio_vhd_chain *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->depth; i++)
		pvio_vhd_close(c->layer[i]);
	free(c);
}

unsigned pvio_vhd_chain_depth(const struct pvio_vhd_chain *c) { return c->depth; }
struct pvio_vhd *pvio_vhd_chain_layer(const struct pvio_vhd_chain *c, unsigned i)
{
	return i < c->depth ? c->layer[i] : NULL;
}
uint64_t pvio_vhd_chain_sectors(const struct pvio_vhd_chain *c) { return c->layer[0]->sectors; }

/*
 * Resolve the run starting at @s (at most @lim sectors): which layer holds
 * it and where.  Each layer narrows the run to what it can answer alike
 * (its block boundary, a bitmap run), then either answers or defers to its
 * parent.  Returns the run length; *layer = -1 for zeros.
 */
static int64_t resolve(struct pvio_vhd_chain *c, uint64_t s, uint32_t lim, int *layer,
		       uint64_t *off, struct pvio_vhd_err *err)
{
	for (unsigned i = 0; i < c->depth; i++) {
		struct pvio_vhd *v = c->layer[i];
		bool diff = v->footer.type == PVIO_VHD_DIFF;
		if (s >= v->sectors) {
			/* a parent smaller than its child: the rest reads as zeros */
			if (!diff)
				break;
			continue;
		}
		if (v->sectors - s < lim)
			lim = (uint32_t)(v->sectors - s);
		if (v->footer.type == PVIO_VHD_FIXED) {
			*layer = (int)i;
			*off = s * PVIO_VHD_SECTOR;
			return lim;
		}
		uint32_t b = (uint32_t)(s / v->spb), in = (uint32_t)(s % v->spb);
		if (v->spb - in < lim)
			lim = v->spb - in;
		if (v->bat[b] == BAT_UNUSED) {
			if (!diff)
				break;
			continue;
		}
		uint64_t data = (uint64_t)v->bat[b] * PVIO_VHD_SECTOR + v->bm_bytes +
				(uint64_t)in * PVIO_VHD_SECTOR;
		if (!diff) {
			/* Dynamic disks: the block's data is authoritative (as qemu
			 * reads it); our writer keeps unmarked sectors zero. */
			*layer = (int)i;
			*off = data;
			return lim;
		}
		const uint8_t *bm;
		int r = vhd_bitmap(v, b, &bm, err);
		if (r < 0)
			return r;
		bool set = bm_test(bm, in);
		uint32_t n = 1;
		while (n < lim && bm_test(bm, in + n) == set)
			n++;
		lim = n;
		if (set) {
			*layer = (int)i;
			*off = data;
			return lim;
		}
	}
	*layer = -1;
	*off = 0;
	return lim;
}

int64_t pvio_vhd_chain_map(struct pvio_vhd_chain *c, uint64_t sector, uint32_t count,
			   struct pvio_vhd_extent *ext, unsigned max, unsigned *n,
			   struct pvio_vhd_err *err)
{
	uint64_t total = c->layer[0]->sectors;
	uint32_t done = 0;
	*n = 0;
	if (sector > total || total - sector < count)
		return vhd_err(err, -ERANGE, "%s: sectors [%llu, +%u) past the end (%llu)",
			       c->layer[0]->path, (unsigned long long)sector, count,
			       (unsigned long long)total);
	while (done < count) {
		int layer;
		uint64_t off;
		int64_t got = resolve(c, sector + done, count - done, &layer, &off, err);
		if (got < 0)
			return got;
		struct pvio_vhd_extent *prev = *n ? &ext[*n - 1] : NULL;
		if (prev && prev->layer == layer &&
		    (layer < 0 || prev->offset + (uint64_t)prev->count * PVIO_VHD_SECTOR == off)) {
			prev->count += (uint32_t)got;
		} else {
			if (*n == max)
				break;
			ext[*n] = (struct pvio_vhd_extent){
				.sector = sector + done, .offset = off, .count = (uint32_t)got,
				.layer = layer, .fd = layer >= 0 ? c->layer[layer]->fd : -1,
			};
			(*n)++;
		}
		done += (uint32_t)got;
	}
	return done;
}

int pvio_vhd_chain_read(struct pvio_vhd_chain *c, void *buf, uint64_t sector, uint32_t count,
			struct pvio_vhd_err *err)
{
	struct pvio_vhd_extent ext[32];
	uint8_t *p = buf;
	while (count) {
		unsigned n;
		int64_t got = pvio_vhd_chain_map(c, sector, count, ext, 32, &n, err);
		if (got < 0)
			return (int)got;
		for (unsigned i = 0; i < n; i++) {
			size_t len = (size_t)ext[i].count * PVIO_VHD_SECTOR;
			if (ext[i].layer < 0) {
				memset(p, 0, len);
			} else {
				int r = vhd_pread(ext[i].fd, p, len, ext[i].offset);
				if (r < 0)
					return vhd_err(err, r == -ENODATA ? -EIO : r, "%s: read at %llu: %s",
						       c->layer[ext[i].layer]->path,
						       (unsigned long long)ext[i].offset,
						       r == -ENODATA ? "file shorter than its metadata says" : strerror(-r));
			}
			p += len;
		}
		sector += (uint64_t)got;
		count -= (uint32_t)got;
	}
	return 0;
}

int pvio_vhd_chain_write(struct pvio_vhd_chain *c, const void *buf, uint64_t sector,
			 uint32_t count, struct pvio_vhd_err *err)
{
	return pvio_vhd_write(c->layer[0], buf, sector, count, err);
}

int64_t pvio_vhd_own_run(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			 uint64_t *data_off, struct pvio_vhd_err *err)
{
	struct pvio_vhd_chain one = { .depth = 1 };
	int layer;
	if (sector >= v->sectors || count == 0)
		return vhd_err(err, -ERANGE, "%s: sector %llu past the end", v->path,
			       (unsigned long long)sector);
	if (v->sectors - sector < count)
		count = (uint32_t)(v->sectors - sector);
	one.layer[0] = v;
	/* a differencing disk alone: "defer to the parent" means "not here" */
	int64_t r = resolve(&one, sector, count, &layer, data_off, err);
	if (r > 0 && layer < 0)
		*data_off = UINT64_MAX;
	return r;
}
