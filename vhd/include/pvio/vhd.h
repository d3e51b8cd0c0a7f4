/* SPDX-License-Identifier: MIT */
/*
 * pvio/vhd.h — Microsoft VHD images (fixed, dynamic, differencing) and
 * chains of differencing disks, as XenServer stores its VDIs.
 *
 * Plain C, no Xen dependency.  Every value read from an image is treated as
 * hostile: a bad file gives a negative errno and a message, never a crash.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; they leave errno alone.  Functions that can fail on a
 * file's content take an optional `struct pvio_vhd_err *` that receives a
 * one-line reason.  Handles are not thread-safe: one thread (or event loop)
 * per handle.  Sectors are 512 bytes.
 */
#ifndef PVIO_VHD_H
#define PVIO_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PVIO_VHD_SECTOR 512u
/* The format addresses blocks by 32-bit sector numbers: 2 TiB. */
#define PVIO_VHD_MAX_SIZE (2ull << 40)
/* Chains deeper than this are refused (a loop, or a hostile file). */
#define PVIO_VHD_MAX_DEPTH 256u
#define PVIO_VHD_DEFAULT_BLOCK (2u << 20)

enum pvio_vhd_type {
	PVIO_VHD_FIXED = 2,
	PVIO_VHD_DYNAMIC = 3,
	PVIO_VHD_DIFF = 4,
};

/* Why the last call failed: @code is the negative errno also returned. */
struct pvio_vhd_err {
	int code;
	char msg[512];
};

/* Open flags. */
#define PVIO_VHD_RDWR 0x1u	/* writable (chains: the leaf only) */
#define PVIO_VHD_NOSYNC 0x2u	/* no fdatasync between allocation steps
				 * (bulk tools whose output is useless if
				 * interrupted anyway) */

struct pvio_vhd;
struct pvio_vhd_chain;

struct pvio_vhd_info {
	enum pvio_vhd_type type;
	uint64_t virtual_size;	/* bytes the guest sees */
	uint64_t current_size;	/* the footer's field (may differ: CHS quirk) */
	uint64_t physical_size;	/* bytes of the file */
	uint32_t block_size;	/* 0 for fixed */
	uint32_t max_bat;	/* BAT entries */
	uint32_t allocated_blocks;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];
	uint32_t timestamp;	/* footer, seconds since 2000-01-01 UTC */
	uint32_t parent_timestamp;
	char creator[5];	/* creator application, NUL-terminated */
	uint16_t cylinders;
	uint8_t heads, spt;
	bool size_from_chs;	/* virtual size taken from the geometry */
	bool backup_footer_used; /* trailing footer missing/bad: copy at 0 used */
	bool footer_repaired;	/* ... and rewritten by a read-write open */
	bool has_batmap;	/* blktap batmap extension present (kept) */
	char parent_name[1024];	/* header's parent name (UTF-8), "" if none */
	char parent_path[4096];	/* resolved parent path, "" if none/unresolved */
};

/*
 * Open one image file and validate its footer, header, BAT and parent
 * locators (the parent itself is not opened).  @flags: PVIO_VHD_RDWR,
 * PVIO_VHD_NOSYNC.  A read-write open of an image whose trailing footer was
 * lost by an interrupted allocation rewrites it from the backup copy.
 * On success *@out owns the file descriptor until pvio_vhd_close().
 */
int pvio_vhd_open(const char *path, unsigned flags, struct pvio_vhd **out,
		  struct pvio_vhd_err *err);
/* Close; NULL is a no-op.  Nothing is written on close. */
void pvio_vhd_close(struct pvio_vhd *v);
void pvio_vhd_get_info(const struct pvio_vhd *v, struct pvio_vhd_info *info);
const char *pvio_vhd_path(const struct pvio_vhd *v);
int pvio_vhd_fd(const struct pvio_vhd *v);
uint64_t pvio_vhd_sectors(const struct pvio_vhd *v);	/* virtual size */

/*
 * Where block @block lives: 1 and *@data_off (file offset of its data, after
 * the bitmap) when allocated, 0 when not, -EINVAL past the BAT.  Fixed disks
 * report every block allocated (at its natural offset) with the default
 * block size.  *@nsect_set (may be NULL) gets how many of the block's
 * sectors are marked present in its bitmap (fixed/dynamic: all).
 */
int pvio_vhd_block(struct pvio_vhd *v, uint32_t block, uint64_t *data_off,
		   uint32_t *nsect_set, struct pvio_vhd_err *err);
/* Blocks and sectors per block in this file's layout (fixed: 2 MiB blocks). */
uint32_t pvio_vhd_nblocks(const struct pvio_vhd *v);
uint32_t pvio_vhd_block_sectors(const struct pvio_vhd *v);

/*
 * This file alone (no parents): how many sectors from @sector (at most
 * @count) share one state, and *@data_off = their file offset when this
 * file holds them or UINT64_MAX when it does not.  Returns the run length
 * (> 0) or -errno.
 */
int64_t pvio_vhd_own_run(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			 uint64_t *data_off, struct pvio_vhd_err *err);

/*
 * Write @count sectors at @sector into this one file (its own blocks; for a
 * differencing disk the bitmap marks them present).  Allocates blocks in
 * crash-safe order: data, bitmap, BAT entry, then the footer moves to the
 * new end (until then the backup footer at offset 0 keeps the image valid).
 * Requires PVIO_VHD_RDWR.  Returns 0 or -errno; after a failed allocation
 * step the handle refuses further writes (-EIO), as after a crash.
 */
int pvio_vhd_write(struct pvio_vhd *v, const void *buf, uint64_t sector, uint32_t count,
		   struct pvio_vhd_err *err);
/* fdatasync the file. */
int pvio_vhd_flush(struct pvio_vhd *v);

/* ---- chains -------------------------------------------------------------- */

/*
 * Open @leaf and every parent it names (parents always read-only), checking
 * each parent's UUID against the child's header.  Parent locators are tried
 * relative to the child's directory first (W2ru, then MacX/W2ku, then the
 * header's parent name).  Loops, depth > PVIO_VHD_MAX_DEPTH, missing
 * parents and UUID mismatches fail with a message.
 */
int pvio_vhd_chain_open(const char *leaf, unsigned flags, struct pvio_vhd_chain **out,
			struct pvio_vhd_err *err);
void pvio_vhd_chain_close(struct pvio_vhd_chain *c);
unsigned pvio_vhd_chain_depth(const struct pvio_vhd_chain *c);	/* files */
/* Layer @i (0 = leaf), NULL past the end.  Owned by the chain. */
struct pvio_vhd *pvio_vhd_chain_layer(const struct pvio_vhd_chain *c, unsigned i);
uint64_t pvio_vhd_chain_sectors(const struct pvio_vhd_chain *c);	/* leaf's */

/* One piece of a resolved virtual range: @count sectors from @sector are at
 * file offset @offset of layer @layer's @fd, or zeros when @layer < 0. */
struct pvio_vhd_extent {
	uint64_t sector;
	uint64_t offset;
	uint32_t count;
	int layer;
	int fd;
};

/*
 * Resolve [@sector, @sector+@count) into at most @max extents (adjacent
 * pieces of one file are merged).  Returns the number of sectors covered
 * (> 0; fewer than @count when @max ran out) and *@n extents, or -errno
 * (-ERANGE past the end).  Bitmaps are loaded and cached as needed.
 */
int64_t pvio_vhd_chain_map(struct pvio_vhd_chain *c, uint64_t sector, uint32_t count,
			   struct pvio_vhd_extent *ext, unsigned max, unsigned *n,
			   struct pvio_vhd_err *err);
/* Read through the chain (zeros where nothing is allocated). */
int pvio_vhd_chain_read(struct pvio_vhd_chain *c, void *buf, uint64_t sector, uint32_t count,
			struct pvio_vhd_err *err);
/* Write to the leaf (pvio_vhd_write on layer 0). */
int pvio_vhd_chain_write(struct pvio_vhd_chain *c, const void *buf, uint64_t sector,
			 uint32_t count, struct pvio_vhd_err *err);

/*
 * Asynchronous writes (tapdisk): prepare allocates any missing blocks of
 * the range in the leaf (crash-safe; new blocks start with an empty bitmap,
 * so an interrupted write leaves the old data visible) and returns where the
 * data goes, like chain_map (layer 0 only, never zero extents).  After the
 * data is durably written, commit marks the sectors present in the bitmaps.
 */
int64_t pvio_vhd_write_prepare(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			       struct pvio_vhd_extent *ext, unsigned max, unsigned *n,
			       struct pvio_vhd_err *err);
int pvio_vhd_write_commit(struct pvio_vhd *v, uint64_t sector, uint32_t count,
			  struct pvio_vhd_err *err);

/* ---- creation and metadata edits ------------------------------------------ */

struct pvio_vhd_create_opts {
	enum pvio_vhd_type type;
	uint64_t size;		/* bytes, rounded up to a sector; DIFF: 0 = parent's */
	uint32_t block_size;	/* 0 = 2 MiB; power of two, 4 KiB..256 MiB */
	const char *parent;	/* DIFF only */
	bool overwrite;		/* replace an existing @path (else -EEXIST) */
};

/* Create an image.  Differencing disks record the parent's UUID and
 * timestamp and W2ru (relative), W2ku and MacX (absolute) locators. */
int pvio_vhd_create(const char *path, const struct pvio_vhd_create_opts *o,
		    struct pvio_vhd_err *err);

/* Re-point differencing disk @child at @parent (new locators, UUID and
 * timestamp).  *@uuid_changed (may be NULL) says whether the parent UUID
 * differs from the one recorded before. */
int pvio_vhd_set_parent(const char *child, const char *parent, bool *uuid_changed,
			struct pvio_vhd_err *err);

/* ---- checking --------------------------------------------------------------- */

enum pvio_vhd_severity { PVIO_VHD_NOTE, PVIO_VHD_WARN, PVIO_VHD_ERROR };
typedef void pvio_vhd_report_fn(void *opaque, enum pvio_vhd_severity sev, const char *msg);

/*
 * Check every structural rule of @path (and, with @chain, of every parent):
 * reports each finding through @fn.  Returns the number of errors (0 = the
 * image is usable), never negative.
 */
int pvio_vhd_check(const char *path, bool chain, pvio_vhd_report_fn *fn, void *opaque);

/* ---- helpers ---------------------------------------------------------------- */
void pvio_vhd_uuid_str(const uint8_t uuid[16], char out[37]);
const char *pvio_vhd_type_name(enum pvio_vhd_type t);

/*
 * Test-only fault injection: make step @step (1 data, 2 bitmap, 3 BAT entry,
 * 4 footer) of the @nth block allocation (counted from now, process-wide)
 * fail with -EIO as if the process died there.  0 disarms.  The environment
 * variable PVIO_VHD_FAULT="NTH:STEP" arms it too (read once).
 */
void pvio_vhd_fault_inject(unsigned nth, unsigned step);

#endif
