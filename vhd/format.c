/* SPDX-License-Identifier: MIT */
/* Footer and dynamic-header encoding, checksums, geometry, small helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

int vhd_err(struct pvio_vhd_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }
void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

/* The format's checksum: one's complement of the byte sum, with the
 * checksum field itself counted as zero. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += buf[i];
	return ~sum;
}

void vhd_footer_parse(const uint8_t *raw, struct vhd_footer *f)
{
	f->features = get_be32(raw + F_FEATURES);
	f->version = get_be32(raw + F_VERSION);
	f->data_offset = get_be64(raw + F_DATA_OFFSET);
	f->timestamp = get_be32(raw + F_TIMESTAMP);
	memcpy(f->creator, raw + F_CREATOR, 4);
	f->creator[4] = 0;
	f->creator_ver = get_be32(raw + F_CREATOR_VER);
	f->creator_os = get_be32(raw + F_CREATOR_OS);
	f->orig_size = get_be64(raw + F_ORIG_SIZE);
	f->cur_size = get_be64(raw + F_CUR_SIZE);
	f->cyl = get_be16(raw + F_GEOM);
	f->heads = raw[F_GEOM + 2];
	f->spt = raw[F_GEOM + 3];
	f->type = get_be32(raw + F_TYPE);
	f->checksum = get_be32(raw + F_CHECKSUM);
	memcpy(f->uuid, raw + F_UUID, 16);
	f->saved_state = raw[F_SAVED];
}

void vhd_header_parse(const uint8_t *raw, struct vhd_header *h)
{
	h->table_offset = get_be64(raw + H_TABLE_OFFSET);
	h->version = get_be32(raw + H_VERSION);
	h->max_entries = get_be32(raw + H_MAX_ENTRIES);
	h->block_size = get_be32(raw + H_BLOCK_SIZE);
	h->checksum = get_be32(raw + H_CHECKSUM);
	memcpy(h->parent_uuid, raw + H_PARENT_UUID, 16);
	h->parent_ts = get_be32(raw + H_PARENT_TS);
	for (unsigned i = 0; i < NLOCATORS; i++) {
		const uint8_t *p = raw + H_LOCATORS + i * LOCATOR_SIZE;
		h->loc[i].code = get_be32(p);
		h->loc[i].space = get_be32(p + 4);
		h->loc[i].len = get_be32(p + 8);
		h->loc[i].offset = get_be64(p + 16);
	}
}

const char *vhd_footer_problem(const uint8_t *raw)
{
	static __thread char why[96];
	if (memcmp(raw, "conectix", 8) != 0)
		return "no \"conectix\" cookie";
	uint32_t stored = get_be32(raw + F_CHECKSUM);
	uint32_t calc = vhd_checksum(raw, FOOTER_SIZE, F_CHECKSUM);
	if (stored != calc) {
		snprintf(why, sizeof(why), "checksum mismatch (stored 0x%08x, computed 0x%08x)",
			 stored, calc);
		return why;
	}
	return NULL;
}

void vhd_footer_seal(uint8_t *raw)
{
	put_be32(raw + F_CHECKSUM, vhd_checksum(raw, FOOTER_SIZE, F_CHECKSUM));
}

void vhd_header_seal(uint8_t *raw)
{
	put_be32(raw + H_CHECKSUM, vhd_checksum(raw, HEADER_SIZE, H_CHECKSUM));
}

/* CHS geometry as the VHD specification's appendix computes it. */
void vhd_chs(uint64_t sectors, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t ts = sectors, cth;
	unsigned h, s;
	if (ts > 65535ull * 16 * 255)
		ts = 65535ull * 16 * 255;
	if (ts >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = ts / s;
	} else {
		s = 17;
		cth = ts / s;
		h = (unsigned)((cth + 1023) / 1024);
		if (h < 4)
			h = 4;
		if (cth >= h * 1024ull || h > 16) {
			s = 31;
			h = 16;
			cth = ts / s;
		}
		if (cth >= h * 1024ull) {
			s = 63;
			h = 16;
			cth = ts / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

uint64_t vhd_chs_sectors(const struct vhd_footer *f)
{
	return (uint64_t)f->cyl * f->heads * f->spt;
}

/*
 * Virtual PC (and qemu before it learnt better: creator "qemu") size a disk
 * by its CHS geometry; Hyper-V, Disk2vhd, XenServer ("tap\0", "CTXS") and
 * qemu with force_size ("qem2") by current_size.  We follow qemu's reading
 * so images agree with qemu-img; a maxed-out geometry means "too big for
 * CHS", so current_size then wins too.
 */
bool vhd_creator_uses_chs(const struct vhd_footer *f)
{
	static const char *const exact[] = { "win ", "qem2", "d2v ", "CTXS" };
	for (unsigned i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (memcmp(f->creator, exact[i], 4) == 0)
			return false;
	if (memcmp(f->creator, "tap", 4) == 0)	/* includes the NUL */
		return false;
	if (f->cyl == 65535 && f->heads == 16 && f->spt == 255)
		return false;
	return true;
}

uint32_t vhd_now(void)
{
	time_t t = time(NULL);
	return t > VHD_EPOCH ? (uint32_t)(t - VHD_EPOCH) : 0;
}

int vhd_random_uuid(uint8_t uuid[16])
{
	if (getrandom(uuid, 16, 0) != 16)
		return -EIO;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);	/* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	return 0;
}

bool vhd_uuid_zero(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

int vhd_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;	/* short file: caller words it */
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int vhd_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t r = pwrite(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void pvio_vhd_uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}

const char *pvio_vhd_type_name(enum pvio_vhd_type t)
{
	switch (t) {
	case PVIO_VHD_FIXED: return "fixed";
	case PVIO_VHD_DYNAMIC: return "dynamic";
	case PVIO_VHD_DIFF: return "differencing";
	}
	return "unknown";
}
