/* SPDX-License-Identifier: MIT */
/* Creating images (fixed, dynamic, differencing) and re-parenting. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

/*
 * Creator "tap\0", XenServer's: it tells qemu and Hyper-V to take the size
 * from current_size rather than the CHS geometry, so any sector-multiple
 * size round-trips exactly.
 */
static void make_footer(uint8_t *raw, enum pvio_vhd_type type, uint64_t size, uint64_t data_off,
			const uint8_t uuid[16])
{
	uint16_t cyl;
	uint8_t heads, spt;
	memset(raw, 0, FOOTER_SIZE);
	memcpy(raw + F_COOKIE, "conectix", 8);
	put_be32(raw + F_FEATURES, VHD_FEATURES_RESERVED);
	put_be32(raw + F_VERSION, VHD_VERSION);
	put_be64(raw + F_DATA_OFFSET, data_off);
	put_be32(raw + F_TIMESTAMP, vhd_now());
	memcpy(raw + F_CREATOR, "tap\0", 4);
	put_be32(raw + F_CREATOR_VER, 0x00010003);
	memcpy(raw + F_CREATOR_OS, "Lnx ", 4);
	put_be64(raw + F_ORIG_SIZE, size);
	put_be64(raw + F_CUR_SIZE, size);
	vhd_chs(size / PVIO_VHD_SECTOR, &cyl, &heads, &spt);
	put_be16(raw + F_GEOM, cyl);
	raw[F_GEOM + 2] = heads;
	raw[F_GEOM + 3] = spt;
	put_be32(raw + F_TYPE, type);
	memcpy(raw + F_UUID, uuid, 16);
	vhd_footer_seal(raw);
}

struct parent_ref {
	uint8_t uuid[16];
	uint32_t ts;
	uint64_t size;
	char abs[PATH_MAX];
};

static int parent_ref(const char *parent, struct parent_ref *p, struct pvio_vhd_err *err)
{
	struct pvio_vhd *pv;
	int r = pvio_vhd_open(parent, 0, &pv, err);
	if (r < 0)
		return r;
	memcpy(p->uuid, pv->footer.uuid, 16);
	p->ts = pv->footer.timestamp;
	p->size = pv->sectors * PVIO_VHD_SECTOR;
	pvio_vhd_close(pv);
	if (!realpath(parent, p->abs))
		return vhd_err(err, -errno, "%s: %s", parent, strerror(errno));
	return 0;
}

/* Fill the header's parent fields and lay the locators out from @at on;
 * returns the locator payload bytes (in @blob, sector-padded) or -errno. */
static int parent_fields(uint8_t *hdr, const char *child_dir, const struct parent_ref *p,
			 uint64_t at, uint8_t *blob, size_t cap)
{
	static const uint32_t codes[3] = { PLAT_W2RU, PLAT_W2KU, PLAT_MACX };
	uint8_t *bufs[3];
	size_t lens[3];
	size_t one = PATH_MAX * 2 + 16;
	int r;
	for (int i = 0; i < 3; i++)
		if (!(bufs[i] = calloc(1, one))) {
			for (int k = 0; k < i; k++)
				free(bufs[k]);
			return -ENOMEM;
		}
	r = vhd_locator_payloads(child_dir, p->abs, bufs[0], &lens[0], bufs[1], &lens[1], bufs[2],
				 &lens[2], one);
	if (r < 0)
		goto out;
	memcpy(hdr + H_PARENT_UUID, p->uuid, 16);
	put_be32(hdr + H_PARENT_TS, p->ts);
	memset(hdr + H_PARENT_NAME, 0, H_PARENT_NAME_LEN);
	const char *base = strrchr(p->abs, '/');
	if (vhd_utf8_to_utf16(base ? base + 1 : p->abs, true, hdr + H_PARENT_NAME,
			      H_PARENT_NAME_LEN - 2) < 0) {
		r = -ENAMETOOLONG;
		goto out;
	}
	memset(hdr + H_LOCATORS, 0, NLOCATORS * LOCATOR_SIZE);
	size_t used = 0;
	for (int i = 0; i < 3; i++) {
		size_t span = (lens[i] + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR * PVIO_VHD_SECTOR;
		if (used + span > cap) {
			r = -ENAMETOOLONG;
			goto out;
		}
		memset(blob + used, 0, span);
		memcpy(blob + used, bufs[i], lens[i]);
		uint8_t *l = hdr + H_LOCATORS + i * LOCATOR_SIZE;
		put_be32(l, codes[i]);
		put_be32(l + 4, (uint32_t)(span / PVIO_VHD_SECTOR));	/* sectors, per the spec */
		put_be32(l + 8, (uint32_t)lens[i]);
		put_be64(l + 16, at + used);
		used += span;
	}
	r = (int)used;
out:
	for (int i = 0; i < 3; i++)
		free(bufs[i]);
	return r;
}

int pvio_vhd_create(const char *path, const struct pvio_vhd_create_opts *o,
		    struct pvio_vhd_err *err)
{
	struct parent_ref pref;
	uint8_t uuid[16], footer[FOOTER_SIZE], *hdr = NULL, *bat = NULL, *blob = NULL;
	uint64_t size = (o->size + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR * PVIO_VHD_SECTOR;
	uint32_t bs = o->block_size ? o->block_size : PVIO_VHD_DEFAULT_BLOCK;
	char dirbuf[PATH_MAX];
	int fd, r;

	if (o->type == PVIO_VHD_DIFF) {
		if (!o->parent)
			return vhd_err(err, -EINVAL, "%s: a differencing disk needs a parent", path);
		if ((r = parent_ref(o->parent, &pref, err)) < 0)
			return r;
		if (!size)
			size = pref.size;
	} else if (o->type != PVIO_VHD_FIXED && o->type != PVIO_VHD_DYNAMIC) {
		return vhd_err(err, -EINVAL, "%s: unknown disk type", path);
	}
	if (size == 0 || size > PVIO_VHD_MAX_SIZE)
		return vhd_err(err, -EINVAL, "%s: size must be between 1 byte and 2 TiB", path);
	if (bs < VHD_MIN_BLOCK || bs > VHD_MAX_BLOCK || (bs & (bs - 1)))
		return vhd_err(err, -EINVAL, "%s: block size must be a power of two, 4 KiB..256 MiB",
			       path);
	if ((r = vhd_random_uuid(uuid)) < 0)
		return vhd_err(err, r, "no randomness for a UUID");

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (o->overwrite ? O_TRUNC : O_EXCL), 0644);
	if (fd < 0)
		return vhd_err(err, -errno, "%s: %s", path, strerror(errno));

	if (o->type == PVIO_VHD_FIXED) {
		make_footer(footer, PVIO_VHD_FIXED, size, VHD_NO_OFFSET, uuid);
		if (ftruncate(fd, (off_t)size) < 0)
			r = -errno;
		else
			r = vhd_pwrite(fd, footer, FOOTER_SIZE, size);
		goto done;
	}

	uint64_t entries = (size + bs - 1) / bs;
	uint64_t bat_bytes = (entries * 4 + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR * PVIO_VHD_SECTOR;
	uint64_t table = FOOTER_SIZE + HEADER_SIZE;
	uint64_t end = table + bat_bytes;
	size_t blob_len = 0, cap = 3 * (PATH_MAX * 2 + PVIO_VHD_SECTOR);
	hdr = calloc(1, HEADER_SIZE);
	bat = malloc(bat_bytes);
	blob = calloc(1, cap);
	if (!hdr || !bat || !blob) {
		r = -ENOMEM;
		goto done;
	}
	memset(bat, 0xff, bat_bytes);
	memcpy(hdr + H_COOKIE, "cxsparse", 8);
	put_be64(hdr + H_DATA_OFFSET, VHD_NO_OFFSET);
	put_be64(hdr + H_TABLE_OFFSET, table);
	put_be32(hdr + H_VERSION, VHD_VERSION);
	put_be32(hdr + H_MAX_ENTRIES, (uint32_t)entries);
	put_be32(hdr + H_BLOCK_SIZE, bs);
	if (o->type == PVIO_VHD_DIFF) {
		if (!realpath(path, dirbuf)) {
			r = -errno;
			goto done;
		}
		r = parent_fields(hdr, dirname(dirbuf), &pref, end, blob, cap);
		if (r < 0)
			goto done;
		blob_len = (size_t)r;
	}
	vhd_header_seal(hdr);
	make_footer(footer, o->type, size, FOOTER_SIZE, uuid);
	if ((r = vhd_pwrite(fd, footer, FOOTER_SIZE, 0)) < 0 ||
	    (r = vhd_pwrite(fd, hdr, HEADER_SIZE, FOOTER_SIZE)) < 0 ||
	    (r = vhd_pwrite(fd, bat, bat_bytes, table)) < 0 ||
	    (blob_len && (r = vhd_pwrite(fd, blob, blob_len, end)) < 0) ||
	    (r = vhd_pwrite(fd, footer, FOOTER_SIZE, end + blob_len)) < 0)
		goto done;
done:
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	free(hdr);
	free(bat);
	free(blob);
	if (r < 0) {
		unlink(path);
		return vhd_err(err, r, "%s: creating: %s", path, strerror(-r));
	}
	return 0;
}

/*
 * New locators go at the end of the file (the old ones become unreferenced
 * space): write them, move the footer past them, then switch the header
 * (and its checksum) in one sector-aligned write.
 */
int pvio_vhd_set_parent(const char *child, const char *parent, bool *uuid_changed,
			struct pvio_vhd_err *err)
{
	struct parent_ref pref;
	struct pvio_vhd *v;
	uint8_t *blob = NULL;
	size_t cap = 3 * (PATH_MAX * 2 + PVIO_VHD_SECTOR);
	int r;

	if ((r = parent_ref(parent, &pref, err)) < 0)
		return r;
	if ((r = pvio_vhd_open(child, PVIO_VHD_RDWR, &v, err)) < 0)
		return r;
	if (v->footer.type != PVIO_VHD_DIFF) {
		r = vhd_err(err, -EINVAL, "%s: not a differencing disk", child);
		goto out;
	}
	if (memcmp(pref.uuid, v->footer.uuid, 16) == 0) {
		r = vhd_err(err, -ELOOP, "%s: cannot be its own parent", child);
		goto out;
	}
	if (uuid_changed)
		*uuid_changed = memcmp(pref.uuid, v->header.parent_uuid, 16) != 0;
	if (!(blob = calloc(1, cap))) {
		r = vhd_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	uint8_t hdr[HEADER_SIZE];
	memcpy(hdr, v->header_raw, HEADER_SIZE);
	uint64_t at = v->next_free;
	r = parent_fields(hdr, v->dir, &pref, at, blob, cap);
	if (r < 0) {
		r = vhd_err(err, r, "%s: parent path: %s", child, strerror(-r));
		goto out;
	}
	size_t len = (size_t)r;
	vhd_header_seal(hdr);
	if ((r = vhd_pwrite(v->fd, blob, len, at)) < 0 ||
	    (r = vhd_pwrite(v->fd, v->footer_raw, FOOTER_SIZE, at + len)) < 0 ||
	    (r = vhd_sync(v)) < 0 ||
	    (r = vhd_pwrite(v->fd, hdr, HEADER_SIZE, v->footer.data_offset)) < 0 ||
	    (r = vhd_sync(v)) < 0)
		r = vhd_err(err, r, "%s: writing: %s", child, strerror(-r));
out:
	free(blob);
	pvio_vhd_close(v);
	return r;
}
