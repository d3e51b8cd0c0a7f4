/* SPDX-License-Identifier: MIT */
/*
 * Segment mapping.
 *
 * Without persistent grants: all grant refs of one request in one batched
 * map call, unmapped when the request completes. Why map rather than grant
 * copy: the engines do direct I/O from and into the guest pages, so a mapped
 * request costs one map and one unmap round trip whatever its size, and no
 * data copy in dom0.
 *
 * With persistent grants (feature-persistent on both ends): each gref is
 * mapped read-write the first time it is seen and kept in a bounded cache
 * (BB_PGNT_MAX pages, least recently used evicted when full), so a frontend
 * that reuses a fixed pool of granted pages — as blkfront does — costs no
 * map at all once warm. A gref already in use by a request in flight is
 * refused (two requests must never share a page), as Linux blkback does.
 *
 * Indirect pages (BLKIF_OP_INDIRECT) are mapped the same two ways: all of
 * a request's in one read-only batch, or through the persistent cache when
 * it is on (as Linux does, so blkfront's reused indirect pages cost no map
 * either).  Either way the descriptors are copied out once and the pages
 * released before the data pages are mapped: nothing keeps a pointer into
 * them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pvio/grant.h"
#include "private.h"

static void set_iov(struct pvio_blkback_req *r, unsigned i, void *page)
{
	const struct pvio_blkif_request_segment *s = &r->seg[i];

	/* first_sect/last_sect were validated (<= 7, first <= last). */
	r->iov[i].iov_base = (char *)page + (size_t)s->first_sect * PVIO_BLKIF_SECTOR_SIZE;
	r->iov[i].iov_len = (size_t)(s->last_sect - s->first_sect + 1) * PVIO_BLKIF_SECTOR_SIZE;
}

static int map_batch(struct bb_queue *q, struct pvio_blkback_req *r)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t refs[PVIO_BLKBACK_MAX_SEGMENTS];
	void *va = NULL;
	int err;

	for (unsigned i = 0; i < r->nseg; i++)
		refs[i] = r->seg[i].gref;
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
	for (unsigned i = 0; i < r->nseg; i++)
		set_iov(r, i, (char *)va + (size_t)i * PVIO_RING_PAGE_SIZE);
	return 0;
}

/* ---- the persistent-grant cache: entries + a linear-probing hash ---- */

static uint32_t home(uint32_t gref)
{
	return (gref * 2654435761u) >> 20 & (BB_PGNT_HASH - 1);
}

/* Hash slot holding @gref, or the empty slot where it would go. */
static uint32_t slot_of(struct bb_queue *q, uint32_t gref)
{
	uint32_t i = home(gref);

	while (q->pg_hash[i] >= 0 && q->pg[q->pg_hash[i]].gref != gref)
		i = (i + 1) & (BB_PGNT_HASH - 1);
	return i;
}

/* Remove the entry in hash slot @i (backward-shift deletion). */
static void hash_del(struct bb_queue *q, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		j = (j + 1) & (BB_PGNT_HASH - 1);
		if (q->pg_hash[j] < 0)
			break;
		uint32_t k = home(q->pg[q->pg_hash[j]].gref);
		/* move j back to i unless its home lies cyclically in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			q->pg_hash[i] = q->pg_hash[j];
			i = j;
		}
	}
	q->pg_hash[i] = -1;
}

/* Unmap and forget entry @x (not in use). */
static void pg_drop(struct bb_queue *q, uint32_t x)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t last = q->pg_n - 1;

	if (xengnttab_unmap(bb->xgt, q->pg[x].va, 1) != 0)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "unmapping persistent grant %u failed: %m", q->pg[x].gref);
	hash_del(q, slot_of(q, q->pg[x].gref));
	if (x != last) {
		/* keep the array dense: the last entry takes x's place */
		q->pg[x] = q->pg[last];
		q->pg_hash[slot_of(q, q->pg[x].gref)] = (int16_t)x;
		/* The moved entry may be in use, by a request in flight or by
		 * the one being mapped now (eviction happens mid-request):
		 * their slot indices must follow it, or a segment would use
		 * whatever page later lands at @last (found by fuzz_blkback). */
		for (uint32_t i = 0; q->reqs && i < q->nr_reqs; i++) {
			struct pvio_blkback_req *r = &q->reqs[i];
			for (unsigned k = 0; r->in_flight && k < r->nseg; k++)
				if (r->pg[k] == last)
					r->pg[k] = (uint16_t)x;
		}
	}
	q->pg_n--;
}

static int pg_evict_lru(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t best = UINT32_MAX;

	for (uint32_t i = 0; i < q->pg_n; i++)
		if (!q->pg[i].users && (best == UINT32_MAX || q->pg[i].last_use < q->pg[best].last_use))
			best = i;
	if (best == UINT32_MAX)
		return -ENOSPC;
	pg_drop(q, best);
	bb->st.pgnt_evictions++;
	return 0;
}

/* Take (and if new, map) the page of @gref for one request. */
static int pg_get(struct bb_queue *q, uint32_t gref, uint16_t *idx)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t s = slot_of(q, gref);
	struct bb_pgnt *e;
	void *va;

	if (q->pg_hash[s] >= 0) {
		e = &q->pg[q->pg_hash[s]];
		if (e->users)
			return -EBUSY;  /* a ref already in use by a request in flight */
		e->users = 1;
		e->last_use = ++q->pg_tick;
		*idx = (uint16_t)q->pg_hash[s];
		bb->st.pgnt_hits++;
		return 0;
	}
	if (q->pg_n == BB_PGNT_MAX) {
		int err = pg_evict_lru(q);
		if (err)
			return err;
		s = slot_of(q, gref);
	}
	va = xengnttab_map_grant_ref(bb->xgt, bb->domid, gref, PROT_READ | PROT_WRITE);
	if (!va)
		return -EINVAL;
	e = &q->pg[q->pg_n];
	*e = (struct bb_pgnt){ .gref = gref, .va = va, .users = 1, .last_use = ++q->pg_tick };
	q->pg_hash[s] = (int16_t)q->pg_n;
	*idx = (uint16_t)q->pg_n++;
	bb->st.pgnt_maps++;
	return 0;
}

int bb_pgnt_alloc(struct bb_queue *q)
{
	if (q->pg)
		return 0;
	q->pg = calloc(BB_PGNT_MAX, sizeof(*q->pg));
	q->pg_hash = malloc(BB_PGNT_HASH * sizeof(*q->pg_hash));
	if (!q->pg || !q->pg_hash) {
		free(q->pg);
		free(q->pg_hash);
		q->pg = NULL;
		q->pg_hash = NULL;
		return -ENOMEM;
	}
	memset(q->pg_hash, 0xff, BB_PGNT_HASH * sizeof(*q->pg_hash));
	q->pg_n = 0;
	return 0;
}

static int map_persistent(struct bb_queue *q, struct pvio_blkback_req *r)
{
	unsigned i;
	int err = bb_pgnt_alloc(q);

	if (err)
		return err;
	for (i = 0; i < r->nseg && !err; i++)
		err = pg_get(q, r->seg[i].gref, &r->pg[i]);
	if (err) {
		/* give back what this request took */
		for (unsigned k = 0; k + 1 < i; k++)
			q->pg[r->pg[k]].users = 0;
		return err;
	}
	for (i = 0; i < r->nseg; i++)
		set_iov(r, i, q->pg[r->pg[i]].va);
	r->pmapped = true;
	return 0;
}

/* Copy @n descriptors from an indirect page: the one read of that memory. */
static void copy_descs(struct pvio_blkif_request_segment *dst, const void *page, unsigned n)
{
	memcpy(dst, page, (size_t)n * sizeof(*dst));
}

int bb_map_indirect(struct bb_queue *q, struct pvio_blkback_req *r, const uint32_t *grefs,
		    unsigned nind, unsigned nseg)
{
	struct pvio_blkback *bb = q->bb;
	const unsigned per = PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME;
	void *va = NULL;
	int err;

	if (nind == 0 || nind > PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST ||
	    nseg > bb->max_indirect || nseg > nind * per || !r->iseg)
		return -EINVAL; /* the caller computed nind from nseg: cannot happen */
	if (bb->persistent && bb_pgnt_alloc(q) == 0) {
		/* One page at a time: taken, copied, given back before the next
		 * pg_get can evict anything, so no slot index is held across an
		 * eviction. */
		unsigned i;
		for (i = 0; i < nind; i++) {
			uint16_t idx;
			unsigned n = nseg - i * per < per ? nseg - i * per : per;
			err = pg_get(q, grefs[i], &idx);
			if (err == -EBUSY) {
				bb_log(bb, PVIO_BLKBACK_LOG_WARN,
				       "request id %llu: indirect page gref %u is a persistent grant in use: refused",
				       (unsigned long long)r->wire.id, grefs[i]);
				return err;
			}
			if (err)
				break; /* read-only grant or a full cache: map the batch below */
			copy_descs(r->iseg + (size_t)i * per, q->pg[idx].va, n);
			q->pg[idx].users = 0;
		}
		if (i == nind)
			return 0;
	}
	/* The backend only reads indirect pages: a read-only mapping will do,
	 * and a frontend may grant them read-only. */
	err = pvio_gnt_map_batch(bb->xgt, bb->domid, nind, grefs, 0, &va, NULL);
	if (err)
		return err;
	for (unsigned i = 0; i < nind; i++) {
		unsigned n = nseg - i * per < per ? nseg - i * per : per;
		copy_descs(r->iseg + (size_t)i * per, (const char *)va + (size_t)i * PVIO_RING_PAGE_SIZE, n);
	}
	if (xengnttab_unmap(bb->xgt, va, nind) != 0)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "unmapping %u indirect pages of request id %llu failed: %m",
		       nind, (unsigned long long)r->wire.id);
	return 0;
}

int bb_map_segments(struct bb_queue *q, struct pvio_blkback_req *r)
{
	struct pvio_blkback *bb = q->bb;
	int err;

	r->map = NULL;
	r->pmapped = false;
	if (!bb->persistent)
		return map_batch(q, r);
	err = map_persistent(q, r);
	if (err == -EBUSY) {
		bb_log(bb, PVIO_BLKBACK_LOG_WARN,
		       "request id %llu uses a persistent grant already in use: refused",
		       (unsigned long long)r->wire.id);
		return err;
	}
	/* A read-only grant (fine for a write) cannot be kept read-write, and
	 * a full cache of busy pages cannot take more: map this one request
	 * the ordinary way. */
	return err ? map_batch(q, r) : 0;
}

void bb_unmap_segments(struct bb_queue *q, struct pvio_blkback_req *r)
{
	struct pvio_blkback *bb = q->bb;
	if (r->pmapped) {
		for (unsigned i = 0; i < r->nseg; i++)
			q->pg[r->pg[i]].users = 0;
		r->pmapped = false;
		return;
	}
	if (!r->map)
		return;
	if (xengnttab_unmap(bb->xgt, r->map, r->nseg) != 0)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "unmapping %u segment pages of request id %llu failed: %m",
		       r->nseg, (unsigned long long)r->wire.id);
	r->map = NULL;
}

void bb_pgnt_flush(struct bb_queue *q)
{
	while (q->pg && q->pg_n)
		pg_drop(q, q->pg_n - 1);
	free(q->pg);
	free(q->pg_hash);
	q->pg = NULL;
	q->pg_hash = NULL;
	q->pg_n = 0;
}
