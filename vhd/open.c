/* SPDX-License-Identifier: MIT */
/* Opening one image: footer (or its backup), dynamic header, layout checks. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"

static int add_range(struct pvio_vhd *v, uint64_t start, uint64_t len, const char *what,
		     struct pvio_vhd_err *err)
{
	uint64_t end = start + len;
	for (unsigned i = 0; i < v->nranges; i++) {
		const struct vhd_range *r = &v->ranges[i];
		if (start < r->end && r->start < end)
			return vhd_err(err, -EINVAL,
				       "%s: %s [%llu, %llu) overlaps %s [%llu, %llu)", v->path, what,
				       (unsigned long long)start, (unsigned long long)end, r->what,
				       (unsigned long long)r->start, (unsigned long long)r->end);
	}
	if (v->nranges == MAX_RANGES)
		return vhd_err(err, -EINVAL, "%s: too many metadata regions", v->path);
	v->ranges[v->nranges++] = (struct vhd_range){ start, end, what };
	if (end > v->next_free)
		v->next_free = end;
	return 0;
}

static int read_footer(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	uint8_t tail[FOOTER_SIZE], head[FOOTER_SIZE];
	int r = vhd_pread(v->fd, tail, FOOTER_SIZE, v->file_size - FOOTER_SIZE);
	if (r < 0)
		return vhd_err(err, r, "%s: reading footer: %s", v->path, strerror(-r));
	const char *why = vhd_footer_problem(tail);
	if (!why) {
		memcpy(v->footer_raw, tail, FOOTER_SIZE);
		return 0;
	}
	/* An allocation interrupted before the footer moved leaves data at the
	 * end: dynamic disks keep a copy at offset 0 for exactly that. */
	r = vhd_pread(v->fd, head, FOOTER_SIZE, 0);
	const char *why0 = r < 0 ? "unreadable" : vhd_footer_problem(head);
	if (!why0) {
		uint32_t t = get_be32(head + F_TYPE);
		if (t == PVIO_VHD_DYNAMIC || t == PVIO_VHD_DIFF) {
			memcpy(v->footer_raw, head, FOOTER_SIZE);
			v->backup_used = true;
			return 0;
		}
		why0 = "not a dynamic disk's copy";
	}
	return vhd_err(err, -EINVAL, "%s: no valid footer: trailing footer: %s; copy at offset 0: %s",
		       v->path, why, why0);
}

static int check_footer(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	struct vhd_footer *f = &v->footer;
	vhd_footer_parse(v->footer_raw, f);
	if (f->version >> 16 != 1)
		return vhd_err(err, -ENOTSUP, "%s: unsupported format version 0x%08x", v->path,
			       f->version);
	if (f->type != PVIO_VHD_FIXED && f->type != PVIO_VHD_DYNAMIC && f->type != PVIO_VHD_DIFF)
		return vhd_err(err, -ENOTSUP, "%s: unsupported disk type %u", v->path, f->type);
	if (f->cur_size > PVIO_VHD_MAX_SIZE)
		return vhd_err(err, -EFBIG, "%s: absurd virtual size %llu bytes (limit 2 TiB)",
			       v->path, (unsigned long long)f->cur_size);
	uint64_t sectors = f->cur_size / PVIO_VHD_SECTOR;
	if (vhd_creator_uses_chs(f) && vhd_chs_sectors(f) <= sectors) {
		v->size_from_chs = vhd_chs_sectors(f) != sectors;
		sectors = vhd_chs_sectors(f);
	}
	v->sectors = sectors;
	if (f->type == PVIO_VHD_FIXED) {
		if (f->cur_size + FOOTER_SIZE > v->file_size)
			return vhd_err(err, -EINVAL,
				       "%s: truncated: fixed disk of %llu bytes in a %llu-byte file",
				       v->path, (unsigned long long)f->cur_size,
				       (unsigned long long)v->file_size);
	}
	return 0;
}

static int check_header(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	struct vhd_header *h = &v->header;
	uint64_t off = v->footer.data_offset;
	uint64_t limit = v->backup_used ? v->file_size : v->file_size - FOOTER_SIZE;
	int r;

	if (off < FOOTER_SIZE || off > limit || limit - off < HEADER_SIZE)
		return vhd_err(err, -EINVAL, "%s: dynamic header offset %llu outside the file",
			       v->path, (unsigned long long)off);
	r = vhd_pread(v->fd, v->header_raw, HEADER_SIZE, off);
	if (r < 0)
		return vhd_err(err, r, "%s: reading header: %s", v->path, strerror(-r));
	if (memcmp(v->header_raw, "cxsparse", 8) != 0)
		return vhd_err(err, -EINVAL, "%s: dynamic header has no \"cxsparse\" cookie", v->path);
	vhd_header_parse(v->header_raw, h);
	uint32_t calc = vhd_checksum(v->header_raw, HEADER_SIZE, H_CHECKSUM);
	if (calc != h->checksum)
		return vhd_err(err, -EINVAL,
			       "%s: dynamic header checksum mismatch (stored 0x%08x, computed 0x%08x)",
			       v->path, h->checksum, calc);
	if (h->version >> 16 != 1)
		return vhd_err(err, -ENOTSUP, "%s: unsupported header version 0x%08x", v->path,
			       h->version);
	uint32_t bs = h->block_size;
	if (bs < VHD_MIN_BLOCK || bs > VHD_MAX_BLOCK || (bs & (bs - 1)))
		return vhd_err(err, -EINVAL, "%s: unsupported block size %u", v->path, bs);
	v->spb = bs / PVIO_VHD_SECTOR;
	v->bm_bytes = ((v->spb / 8 + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR) * PVIO_VHD_SECTOR;
	uint64_t need = (v->sectors + v->spb - 1) / v->spb;
	if (h->max_entries < need)
		return vhd_err(err, -EINVAL, "%s: BAT has %u entries, the disk size needs %llu",
			       v->path, h->max_entries, (unsigned long long)need);
	if ((uint64_t)h->max_entries > PVIO_VHD_MAX_SIZE / bs + 1)
		return vhd_err(err, -EFBIG, "%s: absurd BAT size (%u entries)", v->path,
			       h->max_entries);
	v->bat_entries = h->max_entries;
	v->bat_bytes = ((uint64_t)h->max_entries * 4 + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR *
		       PVIO_VHD_SECTOR;
	if (h->table_offset > limit || limit - h->table_offset < v->bat_bytes)
		return vhd_err(err, -EINVAL, "%s: truncated: BAT [%llu, +%llu) ends past the file",
			       v->path, (unsigned long long)h->table_offset,
			       (unsigned long long)v->bat_bytes);

	if ((r = add_range(v, 0, FOOTER_SIZE, "backup footer", err)) < 0 ||
	    (r = add_range(v, off, HEADER_SIZE, "dynamic header", err)) < 0 ||
	    (r = add_range(v, h->table_offset, v->bat_bytes, "BAT", err)) < 0)
		return r;

	/* blktap's batmap: a "tdbatmap" header right after the BAT.  We keep
	 * it untouched (we only ever set bitmap bits, which it tolerates). */
	uint64_t bm_hdr = h->table_offset + v->bat_bytes;
	uint8_t bmh[PVIO_VHD_SECTOR];
	if (bm_hdr + PVIO_VHD_SECTOR <= limit &&
	    vhd_pread(v->fd, bmh, sizeof(bmh), bm_hdr) == 0 && memcmp(bmh, "tdbatmap", 8) == 0) {
		uint64_t mo = get_be64(bmh + 8);
		uint64_t ms = (uint64_t)get_be32(bmh + 16) * PVIO_VHD_SECTOR;
		v->has_batmap = true;
		if ((r = add_range(v, bm_hdr, PVIO_VHD_SECTOR, "batmap header", err)) < 0)
			return r;
		if (ms && mo <= limit && limit - mo >= ms &&
		    (r = add_range(v, mo, ms, "batmap", err)) < 0)
			return r;
	}

	if (v->footer.type == PVIO_VHD_DIFF) {
		if (vhd_uuid_zero(h->parent_uuid))
			return vhd_err(err, -EINVAL, "%s: differencing disk without a parent UUID",
				       v->path);
		if (vhd_utf16_to_utf8(v->header_raw + H_PARENT_NAME, H_PARENT_NAME_LEN, true,
				      v->parent_name, sizeof(v->parent_name)) < 0)
			v->parent_name[0] = 0;	/* garbled: locators may still work */
		for (unsigned i = 0; i < NLOCATORS; i++) {
			struct vhd_locator *l = &h->loc[i];
			if (l->code != PLAT_W2RU && l->code != PLAT_W2KU && l->code != PLAT_MACX) {
				l->len = 0;	/* unknown platform: ignore */
				continue;
			}
			if (l->len == 0)
				continue;
			if (l->len > VHD_MAX_LOCATOR || l->offset > limit || limit - l->offset < l->len)
				return vhd_err(err, -EINVAL,
					       "%s: parent locator %u [%llu, +%u) outside the file",
					       v->path, i, (unsigned long long)l->offset, l->len);
			uint64_t span = ((uint64_t)l->len + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR *
					PVIO_VHD_SECTOR;
			if ((r = add_range(v, l->offset, span < limit - l->offset ? span : limit - l->offset,
					   "parent locator", err)) < 0)
				return r;
		}
	}
	if (!v->backup_used &&
	    (r = add_range(v, v->file_size - FOOTER_SIZE, FOOTER_SIZE, "footer", err)) < 0)
		return r;
	return vhd_load_bat(v, err);
}

int pvio_vhd_open(const char *path, unsigned flags, struct pvio_vhd **out,
		  struct pvio_vhd_err *err)
{
	struct pvio_vhd *v = calloc(1, sizeof(*v));
	struct stat st;
	char real[PATH_MAX];
	int r;

	if (!v)
		return vhd_err(err, -ENOMEM, "out of memory");
	v->flags = flags;
	v->fd = open(path, ((flags & PVIO_VHD_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (v->fd < 0) {
		r = vhd_err(err, -errno, "%s: %s", path, strerror(errno));
		free(v);
		return r;
	}
	v->path = strdup(path);
	if (!v->path || !realpath(path, real) || !(v->dir = strdup(dirname(real)))) {
		r = vhd_err(err, -ENOMEM, "%s: cannot resolve path", path);
		goto fail;
	}
	if (fstat(v->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = vhd_err(err, -EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	v->file_size = (uint64_t)st.st_size;
	if (v->file_size < FOOTER_SIZE) {
		r = vhd_err(err, -EINVAL, "%s: truncated: %llu bytes, smaller than a VHD footer",
			    path, (unsigned long long)v->file_size);
		goto fail;
	}
	if ((r = read_footer(v, err)) < 0 || (r = check_footer(v, err)) < 0)
		goto fail;
	if (v->footer.type != PVIO_VHD_FIXED) {
		if ((r = check_header(v, err)) < 0)
			goto fail;
		if (!v->backup_used)
			v->next_free = v->file_size - FOOTER_SIZE;
		if (v->backup_used && (flags & PVIO_VHD_RDWR) && (r = vhd_repair_footer(v, err)) < 0)
			goto fail;
		if (v->footer.type == PVIO_VHD_DIFF)
			(void)vhd_resolve_parent(v, NULL);	/* chain_open reports failure */
	}
	*out = v;
	return 0;
fail:
	pvio_vhd_close(v);
	return r;
}

void pvio_vhd_close(struct pvio_vhd *v)
{
	if (!v)
		return;
	if (v->fd >= 0)
		close(v->fd);
	if (v->bm) {
		for (uint32_t i = 0; i < v->bat_entries; i++)
			free(v->bm[i]);
		free(v->bm);
	}
	free(v->bat);
	free(v->path);
	free(v->dir);
	free(v);
}

void pvio_vhd_get_info(const struct pvio_vhd *v, struct pvio_vhd_info *in)
{
	memset(in, 0, sizeof(*in));
	in->type = (enum pvio_vhd_type)v->footer.type;
	in->virtual_size = v->sectors * PVIO_VHD_SECTOR;
	in->current_size = v->footer.cur_size;
	in->physical_size = v->file_size;
	memcpy(in->uuid, v->footer.uuid, 16);
	in->timestamp = v->footer.timestamp;
	memcpy(in->creator, v->footer.creator, 5);
	for (int i = 0; i < 4; i++)
		if (in->creator[i] == 0)
			in->creator[i] = ' ';	/* "tap\0" prints as "tap " */
	in->cylinders = v->footer.cyl;
	in->heads = v->footer.heads;
	in->spt = v->footer.spt;
	in->size_from_chs = v->size_from_chs;
	in->backup_footer_used = v->backup_used;
	in->footer_repaired = v->footer_repaired;
	in->has_batmap = v->has_batmap;
	if (v->footer.type != PVIO_VHD_FIXED) {
		in->block_size = v->header.block_size;
		in->max_bat = v->bat_entries;
		for (uint32_t i = 0; i < v->bat_entries; i++)
			in->allocated_blocks += v->bat[i] != BAT_UNUSED;
	}
	if (v->footer.type == PVIO_VHD_DIFF) {
		memcpy(in->parent_uuid, v->header.parent_uuid, 16);
		in->parent_timestamp = v->header.parent_ts;
		snprintf(in->parent_name, sizeof(in->parent_name), "%s", v->parent_name);
		snprintf(in->parent_path, sizeof(in->parent_path), "%s", v->parent_path);
	}
}

const char *pvio_vhd_path(const struct pvio_vhd *v) { return v->path; }
int pvio_vhd_fd(const struct pvio_vhd *v) { return v->fd; }
uint64_t pvio_vhd_sectors(const struct pvio_vhd *v) { return v->sectors; }
