/* SPDX-License-Identifier: MIT */
/*
 * pvio/blkif_wire.h — the blkif ring protocol on the wire (io/blkif.h).
 *
 * The pvio_blkif_* structs have the x86_64 ABI layout of Xen's structs on
 * every architecture (padding is spelled out, so a zero-initialised struct
 * leaks nothing: XSA-216).  The pvio_blkif_x86_32_* structs have the
 * x86_32 ABI layout (64-bit fields 4-byte aligned) for backends that
 * translate protocol="x86_32-abi" rings.  Freestanding.
 */
#ifndef PVIO_BLKIF_WIRE_H
#define PVIO_BLKIF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <pvio/ring.h>

/* Request operations (BLKIF_OP_*). */
#define PVIO_BLKIF_OP_READ 0
#define PVIO_BLKIF_OP_WRITE 1
#define PVIO_BLKIF_OP_WRITE_BARRIER 2
#define PVIO_BLKIF_OP_FLUSH_DISKCACHE 3
#define PVIO_BLKIF_OP_RESERVED_1 4
#define PVIO_BLKIF_OP_DISCARD 5
#define PVIO_BLKIF_OP_INDIRECT 6

/* Response status (BLKIF_RSP_*). */
#define PVIO_BLKIF_RSP_EOPNOTSUPP (-2)
#define PVIO_BLKIF_RSP_ERROR (-1)
#define PVIO_BLKIF_RSP_OKAY 0

/* pvio_blkif_request_discard.flag */
#define PVIO_BLKIF_DISCARD_SECURE (1 << 0)

/* xenstore "info" bits (VDISK_*). */
#define PVIO_VDISK_CDROM 0x1
#define PVIO_VDISK_REMOVABLE 0x2
#define PVIO_VDISK_READONLY 0x4

/* Limits. */
#define PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST 11
#define PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST 8
/* Protocol sectors are always 512 bytes; a segment covers part of one
 * 4 KiB page, so first_sect <= last_sect <= 7. */
#define PVIO_BLKIF_SECTOR_SIZE 512
#define PVIO_BLKIF_SECTORS_PER_PAGE (PVIO_RING_PAGE_SIZE / PVIO_BLKIF_SECTOR_SIZE)
/* struct pvio_blkif_request_segment entries in one indirect page (512). */
#define PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME \
	(PVIO_RING_PAGE_SIZE / sizeof(struct pvio_blkif_request_segment))

typedef uint32_t pvio_grant_ref_t; /* grant_ref_t */
typedef uint16_t pvio_blkif_vdev_t;  /* blkif_vdev_t */
typedef uint64_t pvio_blkif_sector_t; /* blkif_sector_t */

/* One data segment: sectors first_sect..last_sect of page gref. 8 bytes. */
struct pvio_blkif_request_segment {
	pvio_grant_ref_t gref;
	uint8_t first_sect;
	uint8_t last_sect;
	uint8_t _pad[2];
};

/* READ / WRITE / WRITE_BARRIER / FLUSH_DISKCACHE.  112 bytes. */
struct pvio_blkif_request {
	uint8_t operation;
	uint8_t nr_segments;
	pvio_blkif_vdev_t handle;
	uint32_t _pad1;
	uint64_t id; /* echoed in the response */
	pvio_blkif_sector_t sector_number;
	struct pvio_blkif_request_segment seg[PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST];
};

/* DISCARD.  32 bytes. */
struct pvio_blkif_request_discard {
	uint8_t operation; /* PVIO_BLKIF_OP_DISCARD */
	uint8_t flag;	   /* PVIO_BLKIF_DISCARD_SECURE or 0 */
	pvio_blkif_vdev_t handle;
	uint32_t _pad1;
	uint64_t id;
	pvio_blkif_sector_t sector_number;
	uint64_t nr_sectors;
};

/* INDIRECT: segments live in granted pages of segment arrays.  64 bytes. */
struct pvio_blkif_request_indirect {
	uint8_t operation;   /* PVIO_BLKIF_OP_INDIRECT */
	uint8_t indirect_op; /* READ or WRITE */
	uint16_t nr_segments;
	uint32_t _pad1;
	uint64_t id;
	pvio_blkif_sector_t sector_number;
	pvio_blkif_vdev_t handle;
	uint16_t _pad2;
	pvio_grant_ref_t indirect_grefs[PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	uint32_t _pad3;
};

/* The fields every request shares: enough to answer an unknown op. */
struct pvio_blkif_request_other {
	uint8_t operation;
	uint8_t _pad1;
	pvio_blkif_vdev_t _pad2;
	uint32_t _pad3;
	uint64_t id;
};

/* 16 bytes. */
struct pvio_blkif_response {
	uint64_t id;
	uint8_t operation;
	uint8_t _pad1;
	int16_t status; /* PVIO_BLKIF_RSP_* */
	uint32_t _pad2;
};

_Static_assert(sizeof(struct pvio_blkif_request_segment) == 8, "blkif seg");
_Static_assert(sizeof(struct pvio_blkif_request) == 112, "blkif req");
_Static_assert(offsetof(struct pvio_blkif_request, id) == 8, "blkif req id");
_Static_assert(offsetof(struct pvio_blkif_request, seg) == 24, "blkif seg off");
_Static_assert(sizeof(struct pvio_blkif_request_discard) == 32, "discard");
_Static_assert(sizeof(struct pvio_blkif_request_indirect) == 64, "indirect");
_Static_assert(offsetof(struct pvio_blkif_request_indirect, indirect_grefs) == 28,
	       "indirect grefs");
_Static_assert(sizeof(struct pvio_blkif_request_other) == 16, "other");
_Static_assert(sizeof(struct pvio_blkif_response) == 16, "blkif rsp");

/* ---- x86_32 ABI (protocol "x86_32-abi"): 64-bit fields 4-byte aligned. */

typedef uint64_t pvio_blkif_u64_a4 __attribute__((aligned(4)));

/* 108 bytes. */
struct pvio_blkif_x86_32_request {
	uint8_t operation;
	uint8_t nr_segments;
	pvio_blkif_vdev_t handle;
	pvio_blkif_u64_a4 id;		     /* offset 4 */
	pvio_blkif_u64_a4 sector_number;     /* offset 12 */
	struct pvio_blkif_request_segment seg[PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST];
};

/* 28 bytes. */
struct pvio_blkif_x86_32_request_discard {
	uint8_t operation;
	uint8_t flag;
	pvio_blkif_vdev_t handle;
	pvio_blkif_u64_a4 id;
	pvio_blkif_u64_a4 sector_number;
	pvio_blkif_u64_a4 nr_sectors;
};

/* 64 bytes (Xen pads with a uint64_t under __i386__). */
struct pvio_blkif_x86_32_request_indirect {
	uint8_t operation;
	uint8_t indirect_op;
	uint16_t nr_segments;
	pvio_blkif_u64_a4 id;
	pvio_blkif_u64_a4 sector_number;
	pvio_blkif_vdev_t handle;
	uint16_t _pad1;
	pvio_grant_ref_t indirect_grefs[PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	pvio_blkif_u64_a4 _pad2;
};

/* 12 bytes. */
struct pvio_blkif_x86_32_request_other {
	uint8_t operation;
	uint8_t _pad1;
	pvio_blkif_vdev_t _pad2;
	pvio_blkif_u64_a4 id;
};

/* 12 bytes. */
struct pvio_blkif_x86_32_response {
	pvio_blkif_u64_a4 id;
	uint8_t operation;
	uint8_t _pad1;
	int16_t status;
};

_Static_assert(sizeof(struct pvio_blkif_x86_32_request) == 108, "x86_32 req");
_Static_assert(offsetof(struct pvio_blkif_x86_32_request, id) == 4, "x86_32 id");
_Static_assert(offsetof(struct pvio_blkif_x86_32_request, seg) == 20, "x86_32 seg");
_Static_assert(sizeof(struct pvio_blkif_x86_32_request_discard) == 28, "x86_32 disc");
_Static_assert(sizeof(struct pvio_blkif_x86_32_request_indirect) == 64, "x86_32 ind");
_Static_assert(sizeof(struct pvio_blkif_x86_32_request_other) == 12, "x86_32 other");
_Static_assert(sizeof(struct pvio_blkif_x86_32_response) == 12, "x86_32 rsp");

/* Typed rings: pvio_ring_blkif_* (x86_64 ABI) and pvio_ring_blkif_x86_32_*. */
PVIO_RING_DEFINE(blkif, struct pvio_blkif_request, struct pvio_blkif_response);
PVIO_RING_DEFINE(blkif_x86_32, struct pvio_blkif_x86_32_request,
		 struct pvio_blkif_x86_32_response);

#endif /* PVIO_BLKIF_WIRE_H */
