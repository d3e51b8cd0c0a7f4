/* SPDX-License-Identifier: MIT */
/* vhd/ internals: on-disk layout, the open-file handle, shared helpers. */
#ifndef PVIO_VHD_PRIVATE_H
#define PVIO_VHD_PRIVATE_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pvio/vhd.h"

#define FOOTER_SIZE 512u
#define HEADER_SIZE 1024u
#define BAT_UNUSED 0xffffffffu
#define VHD_VERSION 0x00010000u
#define VHD_NO_OFFSET 0xffffffffffffffffull
#define VHD_FEATURES_RESERVED 0x2u
#define VHD_EPOCH 946684800	/* 2000-01-01T00:00:00Z in Unix time */
#define VHD_MAX_LOCATOR 65536u	/* bytes; far beyond any real path */
#define VHD_MIN_BLOCK 4096u
#define VHD_MAX_BLOCK (256u << 20)

#define PLAT_W2RU 0x57327275u	/* "W2ru": UTF-16LE relative path */
#define PLAT_W2KU 0x57326b75u	/* "W2ku": UTF-16LE absolute path */
#define PLAT_MACX 0x4d616358u	/* "MacX": UTF-8 file:// URL */

/* Footer field offsets (all big-endian). */
enum {
	F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16, F_TIMESTAMP = 24,
	F_CREATOR = 28, F_CREATOR_VER = 32, F_CREATOR_OS = 36, F_ORIG_SIZE = 40,
	F_CUR_SIZE = 48, F_GEOM = 56, F_TYPE = 60, F_CHECKSUM = 64, F_UUID = 68,
	F_SAVED = 84,
};
/* Dynamic header field offsets. */
enum {
	H_COOKIE = 0, H_DATA_OFFSET = 8, H_TABLE_OFFSET = 16, H_VERSION = 24,
	H_MAX_ENTRIES = 28, H_BLOCK_SIZE = 32, H_CHECKSUM = 36, H_PARENT_UUID = 40,
	H_PARENT_TS = 56, H_PARENT_NAME = 64, H_LOCATORS = 576,
};
#define H_PARENT_NAME_LEN 512u
#define LOCATOR_SIZE 24u
#define NLOCATORS 8u

struct vhd_footer {
	uint32_t features, version, timestamp, creator_ver, creator_os, type, checksum;
	uint64_t data_offset, orig_size, cur_size;
	char creator[5];
	uint16_t cyl;
	uint8_t heads, spt, saved_state;
	uint8_t uuid[16];
};

struct vhd_locator {
	uint32_t code, space, len;
	uint64_t offset;
};

struct vhd_header {
	uint64_t table_offset;
	uint32_t version, max_entries, block_size, checksum, parent_ts;
	uint8_t parent_uuid[16];
	struct vhd_locator loc[NLOCATORS];
};

/* A byte range of metadata, for overlap checks. */
struct vhd_range {
	uint64_t start, end;
	const char *what;
};
#define MAX_RANGES (4 + NLOCATORS + 2)

struct pvio_vhd {
	int fd;
	unsigned flags;
	char *path;
	char *dir;		/* directory of @path: relative locators start here */
	uint64_t file_size;
	uint8_t footer_raw[FOOTER_SIZE];
	struct vhd_footer footer;
	uint8_t header_raw[HEADER_SIZE];
	struct vhd_header header;
	uint64_t sectors;	/* virtual size in sectors */
	bool size_from_chs;
	bool backup_used, footer_repaired, has_batmap, dead;

	/* dynamic/differencing layout */
	uint32_t *bat;		/* host-endian copy of the BAT */
	uint32_t bat_entries;
	uint64_t bat_bytes;	/* on disk, rounded up to a sector */
	uint32_t spb;		/* sectors per block */
	uint32_t bm_bytes;	/* bitmap bytes on disk (sector multiple) */
	uint8_t **bm;		/* cached bitmaps, loaded on demand */
	uint64_t next_free;	/* where the next block goes; the footer sits here */
	struct vhd_range ranges[MAX_RANGES];
	unsigned nranges;

	char parent_name[1024];
	char parent_path[PATH_MAX];	/* "" until resolved */
	char parent_tried[1024];	/* the candidates tried, for messages */
};

/* errors */
int vhd_err(struct pvio_vhd_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* format.c */
uint16_t get_be16(const uint8_t *p);
uint32_t get_be32(const uint8_t *p);
uint64_t get_be64(const uint8_t *p);
void put_be16(uint8_t *p, uint16_t v);
void put_be32(uint8_t *p, uint32_t v);
void put_be64(uint8_t *p, uint64_t v);
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);
void vhd_footer_parse(const uint8_t *raw, struct vhd_footer *f);
void vhd_header_parse(const uint8_t *raw, struct vhd_header *h);
/* Why @raw is not a usable footer, or NULL. */
const char *vhd_footer_problem(const uint8_t *raw);
void vhd_footer_seal(uint8_t *raw);	/* recompute the checksum */
void vhd_header_seal(uint8_t *raw);
void vhd_chs(uint64_t sectors, uint16_t *cyl, uint8_t *heads, uint8_t *spt);
uint64_t vhd_chs_sectors(const struct vhd_footer *f);
bool vhd_creator_uses_chs(const struct vhd_footer *f);
uint32_t vhd_now(void);
int vhd_random_uuid(uint8_t uuid[16]);
int vhd_pread(int fd, void *buf, size_t len, uint64_t off);
int vhd_pwrite(int fd, const void *buf, size_t len, uint64_t off);
bool vhd_uuid_zero(const uint8_t u[16]);

/* locator.c */
/* Decode locator @l (bytes @data) into a UTF-8 path; -EINVAL if garbled. */
int vhd_locator_decode(uint32_t code, const uint8_t *data, size_t len, char *out, size_t outlen);
/* UTF-16 (@big_endian or LE) <-> UTF-8; return bytes written or -EINVAL. */
int vhd_utf16_to_utf8(const uint8_t *in, size_t len, bool big_endian, char *out, size_t outlen);
int vhd_utf8_to_utf16(const char *in, bool big_endian, uint8_t *out, size_t outlen);
int vhd_resolve_parent(struct pvio_vhd *v, struct pvio_vhd_err *err);
/* Relative path from directory @from_dir to @to (both absolute). */
int vhd_relpath(const char *from_dir, const char *to, char *out, size_t outlen);
/* Build the W2ru/W2ku/MacX locator payloads for @parent_abs seen from @child_dir. */
int vhd_locator_payloads(const char *child_dir, const char *parent_abs, uint8_t *w2ru,
			 size_t *w2ru_len, uint8_t *w2ku, size_t *w2ku_len, uint8_t *macx,
			 size_t *macx_len, size_t cap);

/* bat.c */
int vhd_load_bat(struct pvio_vhd *v, struct pvio_vhd_err *err);
int vhd_bitmap(struct pvio_vhd *v, uint32_t block, const uint8_t **out, struct pvio_vhd_err *err);
static inline bool bm_test(const uint8_t *bm, uint32_t i)
{
	return bm[i >> 3] & (0x80u >> (i & 7));	/* VHD bitmaps are MSB first */
}
static inline void bm_set(uint8_t *bm, uint32_t i)
{
	bm[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
}

/* write.c */
int vhd_repair_footer(struct pvio_vhd *v, struct pvio_vhd_err *err);
int vhd_sync(struct pvio_vhd *v);

#endif
