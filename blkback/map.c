/* SPDX-License-Identifier: MIT */
/*
 * Segment mapping: all grant refs of one request in one batched map call.
 *
 * Why map rather than grant copy: the engines do direct I/O from and into
 * the guest pages, so a mapped request costs one map and one unmap round
 * trip whatever its size, and no data copy in dom0; grant copy would need a
 * bounce buffer per request and a copy of up to 44 KiB in each direction.
 */
#include <errno.h>

#include "pvio/grant.h"
#include "private.h"

int bb_map_segments(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	uint32_t refs[PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST];
	const struct pvio_blkif_request *w = &r->wire;
	void *va = NULL;
	int err;

	for (unsigned i = 0; i < r->nseg; i++)
		refs[i] = w->seg[i].gref;
	/* A read makes the device write into guest memory: the grant must
	 * allow writing, or the map is refused (a read-only grant for a read
	 * is the frontend's error, answered with BLKIF_RSP_ERROR). */
	err = pvio_gnt_map_batch(bb->xgt, bb->domid, r->nseg, refs, r->op == PVIO_BLKBACK_READ,
				 &va, NULL);
	if (err) {
		r->map = NULL;
		return err;
	}
	r->map = va;
	for (unsigned i = 0; i < r->nseg; i++) {
		const struct pvio_blkif_request_segment *s = &w->seg[i];
		/* first_sect/last_sect were validated (<= 7, first <= last). */
		r->iov[i].iov_base = (char *)va + (size_t)i * PVIO_RING_PAGE_SIZE +
				     (size_t)s->first_sect * PVIO_BLKIF_SECTOR_SIZE;
		r->iov[i].iov_len = (size_t)(s->last_sect - s->first_sect + 1) * PVIO_BLKIF_SECTOR_SIZE;
	}
	return 0;
}

void bb_unmap_segments(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	if (!r->map)
		return;
	if (xengnttab_unmap(bb->xgt, r->map, r->nseg) != 0)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "unmapping %u segment pages of request id %llu failed: %m",
		       r->nseg, (unsigned long long)r->wire.id);
	r->map = NULL;
}
