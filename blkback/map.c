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

#define PG_NO_BATCH 0xffffu

/* Forget entry @x (not in use, or being rolled back): out of the hash, and
 * the array kept dense.  Its page is not touched. */
static void pg_forget(struct bb_queue *q, uint32_t x)
{
	uint32_t last = q->pg_n - 1;

	hash_del(q, slot_of(q, q->pg[x].gref));
	if (x != last) {
		/* the last entry takes x's place */
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

/* Drop cached entry @x: forgotten, and its batch unmapped once it was the
 * batch's last entry. */
static void pg_drop(struct bb_queue *q, uint32_t x)
{
	struct pvio_blkback *bb = q->bb;
	struct bb_pgnt_batch *b = &q->pg_batch[q->pg[x].batch];

	pg_forget(q, x);
	if (--b->live)
		return;
	if (xengnttab_unmap(bb->xgt, b->va, b->count) != 0)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "unmapping %u persistent grant pages failed: %m", b->count);
	q->pg_mapped -= b->count;
	b->va = NULL;
	b->count = 0;
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

/* Room for @n more entries and pages (entries being mapped count:
 * @pending of them): the least recently used go until both fit. */
static int pg_make_room(struct bb_queue *q, unsigned n, unsigned pending)
{
	while (q->pg_n + n > BB_PGNT_MAX || q->pg_mapped + pending + n > BB_PGNT_MAX) {
		int err = pg_evict_lru(q);
		if (err)
			return err;
	}
	return 0;
}

/* Record @count pages mapped at @va as one batch; its slot. */
static uint16_t pg_batch_new(struct bb_queue *q, void *va, unsigned count)
{
	uint16_t b = 0;

	/* live batches <= entries < BB_PGNT_MAX: a free slot exists */
	while (q->pg_batch[b].count)
		b++;
	q->pg_batch[b] = (struct bb_pgnt_batch){ .va = va, .count = (uint16_t)count,
						  .live = (uint16_t)count };
	q->pg_mapped += count;
	return b;
}

/* Take (and if new, map) the page of @gref for one request. */
static int pg_get(struct bb_queue *q, uint32_t gref, uint16_t *idx)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t s = slot_of(q, gref);
	struct bb_pgnt *e;
	void *va;
	int err;

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
	err = pg_make_room(q, 1, 0);
	if (err)
		return err;
	s = slot_of(q, gref);
	va = xengnttab_map_grant_ref(bb->xgt, bb->domid, gref, PROT_READ | PROT_WRITE);
	if (!va)
		return -EINVAL;
	e = &q->pg[q->pg_n];
	*e = (struct bb_pgnt){ .gref = gref, .va = va, .users = 1, .last_use = ++q->pg_tick,
			       .batch = pg_batch_new(q, va, 1) };
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
	q->pg_batch = calloc(BB_PGNT_MAX, sizeof(*q->pg_batch));
	if (!q->pg || !q->pg_hash || !q->pg_batch) {
		free(q->pg);
		free(q->pg_hash);
		free(q->pg_batch);
		q->pg = NULL;
		q->pg_hash = NULL;
		q->pg_batch = NULL;
		return -ENOMEM;
	}
	memset(q->pg_hash, 0xff, BB_PGNT_HASH * sizeof(*q->pg_hash));
	q->pg_n = 0;
	q->pg_mapped = 0;
	return 0;
}

/* Give back what a request took of the cache so far (segments [0, n)):
 * the hits are released, the entries still being mapped forgotten. */
static void pg_rollback(struct bb_queue *q, struct pvio_blkback_req *r, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		struct bb_pgnt *e = &q->pg[r->pg[k]];
		if (e->va)
			e->users = 0;
		else
			pg_forget(q, r->pg[k]); /* fixes r->pg[] of the later ones */
	}
}

/*
 * The request's pages through the cache.  Hits are taken as they come; the
 * misses become entries at once (users 1, so a ref twice in one request is
 * refused like a ref in use), and are then mapped together, with one map
 * call, side by side: a request of new pages makes one iovec, and the
 * kernel pins its pages with one call, not one per page.
 */
static int map_persistent(struct bb_queue *q, struct pvio_blkback_req *r)
{
	struct pvio_blkback *bb = q->bb;
	uint32_t refs[PVIO_BLKBACK_MAX_SEGMENTS];
	unsigned i, nmiss = 0;
	void *va = NULL;
	int err = bb_pgnt_alloc(q);

	if (err)
		return err;
	for (i = 0; i < r->nseg && !err; i++) {
		uint32_t gref = r->seg[i].gref, s = slot_of(q, gref);
		if (q->pg_hash[s] >= 0) {
			struct bb_pgnt *e = &q->pg[q->pg_hash[s]];
			if (e->users) {
				err = -EBUSY; /* in use by a request in flight, or twice here */
				break;
			}
			e->users = 1;
			e->last_use = ++q->pg_tick;
			r->pg[i] = (uint16_t)q->pg_hash[s];
			bb->st.pgnt_hits++;
			continue;
		}
		err = pg_make_room(q, 1, nmiss);
		if (err)
			break;
		s = slot_of(q, gref);
		q->pg[q->pg_n] = (struct bb_pgnt){ .gref = gref, .users = 1, .last_use = ++q->pg_tick,
						   .batch = PG_NO_BATCH };
		q->pg_hash[s] = (int16_t)q->pg_n;
		r->pg[i] = (uint16_t)q->pg_n++;
		nmiss++;
	}
	if (err) {
		pg_rollback(q, r, i);
		return err;
	}
	if (nmiss) {
		unsigned k = 0;
		for (i = 0; i < r->nseg; i++)
			if (!q->pg[r->pg[i]].va)
				refs[k++] = r->seg[i].gref;
		/* read-write: the cache serves reads and writes alike */
		err = pvio_gnt_map_batch(bb->xgt, bb->domid, nmiss, refs, 1, &va, NULL);
		if (err) {
			pg_rollback(q, r, r->nseg);
			return err;
		}
		uint16_t b = pg_batch_new(q, va, nmiss);
		k = 0;
		for (i = 0; i < r->nseg; i++) {
			struct bb_pgnt *e = &q->pg[r->pg[i]];
			if (e->va)
				continue;
			e->va = (char *)va + (size_t)k++ * PVIO_RING_PAGE_SIZE;
			e->batch = b;
		}
		bb->st.pgnt_maps += nmiss;
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

/* Merge iov entries that continue each other in memory (a batch map's
 * pages lie side by side): the kernel pins the pages of each entry with
 * one call, so a 1 MiB request in one entry costs one call, not 256. */
static void merge_iov(struct pvio_blkback_req *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->nseg; i++) {
		if (n && (char *)r->iov[n - 1].iov_base + r->iov[n - 1].iov_len == r->iov[i].iov_base)
			r->iov[n - 1].iov_len += r->iov[i].iov_len;
		else
			r->iov[n++] = r->iov[i];
	}
	r->niov = (uint16_t)n;
	r->q->bb->st.segments += r->nseg;
	r->q->bb->st.iovecs += n;
}

static int map_segments(struct bb_queue *q, struct pvio_blkback_req *r)
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

int bb_map_segments(struct bb_queue *q, struct pvio_blkback_req *r)
{
	int err = map_segments(q, r);

	if (!err)
		merge_iov(r);
	return err;
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
	free(q->pg_batch);
	q->pg = NULL;
	q->pg_hash = NULL;
	q->pg_batch = NULL;
	q->pg_n = 0;
	q->pg_mapped = 0;
}
