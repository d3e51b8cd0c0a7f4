/* SPDX-License-Identifier: MIT */
/*
 * A blkif test backend (dom0 side) with a RAM disk, for the blkfront
 * tests: it does the backend half of the vbd handshake, serves requests
 * (validating each one), and can misbehave in chosen ways.
 */
#ifndef PVIO_TEST_BLKFRONT_TESTBACK_H
#define PVIO_TEST_BLKFRONT_TESTBACK_H

#include <stdint.h>

enum tb_mode {
	TB_GOOD,
	TB_ID_RANGE,	   /* answer with an id far out of range */
	TB_ID_NOT_INFLIGHT, /* answer with the id of a slot not in flight */
	TB_BAD_OP,	   /* answer with another operation */
	TB_BAD_STATUS,	   /* answer with a status the protocol lacks */
	TB_PROD_AHEAD,	   /* push a response producer past the ring */
	TB_DIE,		   /* after `after` answers, die and restart once */
};

struct tb_cfg {
	uint32_t domid, devid;
	uint8_t *disk;	     /* shared with the test (MAP_SHARED) */
	uint64_t sectors;    /* disk size in 512-byte units */
	unsigned max_order;  /* advertised max-ring-page-order */
	int flush;	     /* advertise feature-flush-cache */
	int readonly;	     /* info = VDISK_READONLY */
	enum tb_mode mode;
	unsigned after;	     /* good answers before misbehaving */
	const char *bad_key; /* publish bad_val under this key instead */
	const char *bad_val;
	unsigned max_indirect;	    /* feature-max-indirect-segments (0: none) */
	unsigned max_indirect_restart; /* ... of the instance that takes over (TB_DIE) */
	unsigned sector_size;	    /* logical sector size published (0: 512); requests
				     * not aligned to it are protocol errors */
	unsigned sector_size_restart; /* ... of the instance that takes over (0: the same) */
	int echo_indirect;	    /* answer indirect requests with op 6, not indirect_op */
};

/* Write the toolstack's backend and frontend directories (as dom0). */
int tb_create_vbd(uint32_t domid, uint32_t devid);

/*
 * Run the backend (call in a forked dom0 process).  Returns 0 if every
 * request it saw was valid and the frontend closed properly, else 1.
 * Prints what went wrong.
 */
int tb_run(const struct tb_cfg *cfg);

#endif
