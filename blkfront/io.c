/* SPDX-License-Identifier: MIT */
/*
 * blkfront I/O: request slots with their granted bounce pages, splitting
 * user I/Os into ring requests of at most 11 pages, producing them in
 * submission order, and consuming (copy once, validate) the responses.
 *
 * Request lifecycle: a user I/O (struct pvio_blkfront_io) waits on the
 * submit queue (q_head) until a free slot takes its next chunk; the slot
 * goes QUEUED onto the in-flight list, then RING once produced; a valid
 * response frees it and adds its bytes to the I/O, which completes when
 * every chunk has been issued and answered (its callback runs from
 * bf_run_callbacks, never from inside submit).
 */
#include "private.h"

/* Pool pages wanted for a segment limit: every slot a direct request's
 * worth, or four requests of the limit, whichever is more.  With the
 * defaults (32 slots, 256 segments) 1024 pages, 4 MiB; the backend's
 * persistent-grant cache (1056 pages) holds them and the 32 indirect
 * pages. */
static unsigned pool_target(const struct pvio_blkfront *bf, unsigned segs)
{
	unsigned a = bf->nslots * BF_SEGS, b = (bf->nslots < 4 ? bf->nslots : 4) * segs;
	unsigned n = a > b ? a : b;

	return (n + BF_POOL_BLOCK - 1) / BF_POOL_BLOCK;
}

static uint8_t *pool_va(const struct pvio_blkfront *bf, uint32_t idx)
{
	return bf->blocks[idx / BF_POOL_BLOCK].va + (size_t)(idx % BF_POOL_BLOCK) * BF_PAGE;
}

static uint32_t pool_gref(const struct pvio_blkfront *bf, uint32_t idx)
{
	return bf->blocks[idx / BF_POOL_BLOCK].gref[idx % BF_POOL_BLOCK];
}

static bool buf_release(struct pvio_blkfront *bf, struct bf_buf *b);

int bf_slots_init(struct pvio_blkfront *bf)
{
	unsigned i;

	bf->slot_pages = bf->own_max_indirect > BF_SEGS ? bf->own_max_indirect : BF_SEGS;
	bf->ind_pages = bf->own_max_indirect > BF_SEGS
				? (bf->own_max_indirect + BF_IND_PER_PAGE - 1) / BF_IND_PER_PAGE : 0;
	bf->max_blocks = pool_target(bf, bf->slot_pages);
	/* Bookkeeping only here; pages are granted at connect, once the
	 * backend's segment limit says how many are worth having. */
	bf->slots = bf->ops.zalloc(bf->ops.ctx, sizeof(*bf->slots) * bf->nslots);
	bf->slot_page_mem = bf->ops.zalloc(bf->ops.ctx,
					   sizeof(uint32_t) * bf->nslots * bf->slot_pages);
	bf->blocks = bf->ops.zalloc(bf->ops.ctx, sizeof(*bf->blocks) * bf->max_blocks);
	bf->pool_free = bf->ops.zalloc(bf->ops.ctx,
				       sizeof(uint32_t) * bf->max_blocks * BF_POOL_BLOCK);
	if (!bf->slots || !bf->slot_page_mem || !bf->blocks || !bf->pool_free)
		return -PVIO_BLKFRONT_ENOMEM;
	for (i = bf->nslots; i-- > 0;) {
		struct bf_slot *s = &bf->slots[i];

		s->page = bf->slot_page_mem + (size_t)i * bf->slot_pages;
		s->state = SLOT_FREE;
		s->next = bf->free_head;
		bf->free_head = s;
	}
	return 0;
}

int bf_pool_prepare(struct pvio_blkfront *bf)
{
	unsigned want = pool_target(bf, bf->seg_limit), i, k;
	uint64_t gfn;
	void *va;
	int err;

	if (want > bf->max_blocks)
		want = bf->max_blocks;
	while (bf->nblocks < want) {
		struct bf_block *b = &bf->blocks[bf->nblocks];

		err = bf->ops.page_alloc(bf->ops.ctx, BF_POOL_BLOCK, &va, &gfn);
		if (err)
			return err;
		b->va = va;
		bf->nblocks++;
		/* Granted once, read-write, for the device's life: data moves
		 * through these pages only, never through the caller's memory
		 * (XSA-403), and a persistent-grant backend keeps them mapped. */
		for (k = 0; k < BF_POOL_BLOCK; k++) {
			err = bf->ops.grant(bf->ops.ctx, bf->backend_id, gfn + k, false, &b->gref[k]);
			if (err)
				return err;
			b->ngrants++;
			bf->pool_free[bf->pool_nfree++] = (uint32_t)((bf->nblocks - 1) * BF_POOL_BLOCK + k);
		}
	}
	if (bf->seg_limit <= BF_SEGS || bf->ind_live || !bf->ind_pages)
		return 0;
	/* Indirect descriptor pages, one set per slot.  Granted read-write
	 * although the backend only reads them: Linux blkback maps them
	 * through its persistent-grant cache, which maps read-write. */
	for (i = 0; i < bf->nslots; i++) {
		struct bf_slot *s = &bf->slots[i];

		if (s->ind)
			continue;
		err = bf->ops.page_alloc(bf->ops.ctx, bf->ind_pages, &va, &gfn);
		if (err)
			return err;
		s->ind = va;
		for (k = 0; k < bf->ind_pages; k++) {
			err = bf->ops.grant(bf->ops.ctx, bf->backend_id, gfn + k, false, &s->ind_gref[k]);
			if (err)
				return err;
			s->ind_ngrants++;
		}
	}
	bf->ind_live = true;
	return 0;
}

/* End @n grants; false if the backend still holds any (pages leaked). */
static bool end_grants(struct pvio_blkfront *bf, const uint32_t *refs, unsigned n)
{
	bool ok = true;

	for (unsigned k = 0; k < n; k++)
		if (bf->ops.end_grant(bf->ops.ctx, refs[k]) != 0)
			ok = false;
	return ok;
}

void bf_slots_fini(struct pvio_blkfront *bf)
{
	unsigned i;

	for (i = 0; bf->slots && i < bf->nslots; i++) {
		struct bf_slot *s = &bf->slots[i];

		if (!s->ind)
			continue;
		if (!end_grants(bf, s->ind_gref, s->ind_ngrants))
			bf->st.leaked_pages += bf->ind_pages;
		else
			bf->ops.page_free(bf->ops.ctx, s->ind, bf->ind_pages);
		s->ind = (void *)0;
	}
	for (i = 0; bf->blocks && i < bf->nblocks; i++) {
		struct bf_block *b = &bf->blocks[i];

		if (!end_grants(bf, b->gref, b->ngrants))
			bf->st.leaked_pages += BF_POOL_BLOCK;
		else
			bf->ops.page_free(bf->ops.ctx, b->va, BF_POOL_BLOCK);
	}
	for (i = 0; i < BF_MAX_BUFS; i++) {
		struct bf_buf *b = &bf->bufs[i];
		unsigned held = 0;

		if (!b->va)
			continue;
		if (buf_release(bf, b))
			continue;
		for (unsigned k = 0; k < b->npages; k++)
			held += b->gref[k] != BF_REF_ENDED;
		bf->st.leaked_pages += held;
		bf->ops.free(bf->ops.ctx, b->gref);
		b->va = (void *)0;
		b->gref = (void *)0;
	}
	if (bf->slots)
		bf->ops.free(bf->ops.ctx, bf->slots);
	if (bf->slot_page_mem)
		bf->ops.free(bf->ops.ctx, bf->slot_page_mem);
	if (bf->blocks)
		bf->ops.free(bf->ops.ctx, bf->blocks);
	if (bf->pool_free)
		bf->ops.free(bf->ops.ctx, bf->pool_free);
	bf->slots = (void *)0;
	bf->slot_page_mem = (void *)0;
	bf->blocks = (void *)0;
	bf->pool_free = (void *)0;
	bf->nblocks = 0;
	bf->pool_nfree = 0;
}

static void fl_append(struct pvio_blkfront *bf, struct bf_slot *s)
{
	s->next = (void *)0;
	s->prev = bf->fl_tail;
	if (bf->fl_tail)
		bf->fl_tail->next = s;
	else
		bf->fl_head = s;
	bf->fl_tail = s;
}

static void fl_remove(struct pvio_blkfront *bf, struct bf_slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		bf->fl_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		bf->fl_tail = s->prev;
}

static void slot_free(struct pvio_blkfront *bf, struct bf_slot *s)
{
	fl_remove(bf, s);
	/* the chunk's pages go back to the pool (a caller's buffer stays theirs) */
	for (uint32_t k = 0; !s->zbuf && k < s->npages; k++)
		bf->pool_free[bf->pool_nfree++] = s->page[k];
	s->npages = 0;
	s->zbuf = (void *)0;
	s->state = SLOT_FREE;
	s->io = (void *)0;
	s->prev = (void *)0;
	s->next = bf->free_head;
	bf->free_head = s;
}

static void io_done(struct pvio_blkfront *bf, struct pvio_blkfront_io *io)
{
	io->next_ = (void *)0;
	if (bf->done_tail)
		bf->done_tail->next_ = io;
	else
		bf->done_head = io;
	bf->done_tail = io;
}

static void q_pop(struct pvio_blkfront *bf)
{
	struct pvio_blkfront_io *io = bf->q_head;

	bf->q_head = io->next_;
	if (!bf->q_head)
		bf->q_tail = (void *)0;
	io->next_ = (void *)0;
	io->inq_ = false;
}

/* The caller's zero-copy buffer holding the rest of @io (from issued_ on),
 * if that starts on one of its pages; *page: which.  NULL: bounce it. */
static struct bf_buf *buf_find(struct pvio_blkfront *bf, const struct pvio_blkfront_io *io,
			       uint32_t *page)
{
	const uint8_t *p = (const uint8_t *)io->buf + io->issued_;
	size_t left = io->len - io->issued_;

	for (unsigned i = 0; i < BF_MAX_BUFS; i++) {
		struct bf_buf *b = &bf->bufs[i];
		size_t size = (size_t)b->npages * BF_PAGE;

		if (!b->va || b->retired || p < b->va || p >= b->va + size)
			continue;
		size_t off = (size_t)(p - b->va);
		if (off % BF_PAGE || left > size - off)
			return (void *)0;
		*page = (uint32_t)(off / BF_PAGE);
		return b;
	}
	return (void *)0;
}

/* End what is left of @b's grants; true once none is held any more. */
static bool buf_release(struct pvio_blkfront *bf, struct bf_buf *b)
{
	bool all = true;

	for (unsigned k = 0; k < b->npages; k++) {
		if (b->gref[k] == BF_REF_ENDED)
			continue;
		if (bf->ops.end_grant(bf->ops.ctx, b->gref[k]) == 0)
			b->gref[k] = BF_REF_ENDED;
		else
			all = false;
	}
	if (!all)
		return false;
	bf->ops.page_free(bf->ops.ctx, b->va, b->npages);
	bf->ops.free(bf->ops.ctx, b->gref);
	b->va = (void *)0;
	b->gref = (void *)0;
	b->npages = 0;
	b->retired = false;
	return true;
}

int pvio_blkfront_buf_alloc(struct pvio_blkfront *bf, size_t len, void **buf)
{
	struct bf_buf *b = (void *)0;
	uint64_t gfn;
	void *va;
	int err;

	*buf = (void *)0;
	if (len == 0 || len > (size_t)1 << 30)
		return -PVIO_BLKFRONT_EINVAL;
	if (bf->phase == BF_DEAD)
		return -PVIO_BLKFRONT_EIO;
	for (unsigned i = 0; i < BF_MAX_BUFS && !b; i++)
		if (!bf->bufs[i].va)
			b = &bf->bufs[i];
	if (!b)
		return -PVIO_BLKFRONT_ENOSPC;
	unsigned n = (unsigned)((len + BF_PAGE - 1) / BF_PAGE);
	uint32_t *gref = bf->ops.zalloc(bf->ops.ctx, sizeof(*gref) * n);
	if (!gref)
		return -PVIO_BLKFRONT_ENOMEM;
	err = bf->ops.page_alloc(bf->ops.ctx, n, &va, &gfn);
	if (err) {
		bf->ops.free(bf->ops.ctx, gref);
		return err;
	}
	for (unsigned k = 0; k < n; k++)
		gref[k] = BF_REF_ENDED;
	b->va = va;
	b->npages = n;
	b->gref = gref;
	for (unsigned k = 0; k < n; k++) {
		err = bf->ops.grant(bf->ops.ctx, bf->backend_id, gfn + k, false, &gref[k]);
		if (err) {
			gref[k] = BF_REF_ENDED;
			/* nothing was sent on these yet: the ends succeed */
			if (!buf_release(bf, b))
				b->retired = true;
			return err;
		}
	}
	*buf = va;
	return 0;
}

static bool buf_overlaps(const struct bf_buf *b, const struct pvio_blkfront_io *io)
{
	const uint8_t *p = io->buf;

	return io->op <= PVIO_BLKFRONT_WRITE && p &&
	       p < b->va + (size_t)b->npages * BF_PAGE && b->va < p + io->len;
}

int pvio_blkfront_buf_free(struct pvio_blkfront *bf, void *buf)
{
	struct bf_buf *b = (void *)0;
	struct bf_slot *s;
	struct pvio_blkfront_io *io;

	for (unsigned i = 0; i < BF_MAX_BUFS && !b; i++)
		if (bf->bufs[i].va && !bf->bufs[i].retired && bf->bufs[i].va == buf)
			b = &bf->bufs[i];
	if (!b)
		return -PVIO_BLKFRONT_EINVAL;
	/* nothing in flight or waiting may still point into it, zero-copy
	 * or bounced (a bounced read's data is copied there at completion) */
	for (s = bf->fl_head; s; s = s->next)
		if (s->zbuf == b || buf_overlaps(b, s->io))
			return -PVIO_BLKFRONT_EBUSY;
	for (io = bf->q_head; io; io = io->next_)
		if (buf_overlaps(b, io))
			return -PVIO_BLKFRONT_EBUSY;
	b->retired = true;
	/* A persistent-grant backend still maps pages it has seen: those
	 * grants end at close, once it has disconnected. */
	buf_release(bf, b);
	return 0;
}

/* Copy between the user's buffer and the pool pages of @s. */
static void copy_chunk(struct pvio_blkfront *bf, struct bf_slot *s, bool to_pages)
{
	uint8_t *user = (uint8_t *)s->io->buf + s->io_off;

	for (uint32_t k = 0; k < s->npages; k++) {
		uint32_t n = s->bytes - k * BF_PAGE < BF_PAGE ? s->bytes - k * BF_PAGE : BF_PAGE;

		uint8_t *page = pool_va(bf, s->page[k]), *u = user + (size_t)k * BF_PAGE;

		/* the platform's memcpy when it has one: the volatile word
		 * loop is a tenth of the guest's time on a 4 KiB transport */
		if (bf->ops.copy)
			bf->ops.copy(bf->ops.ctx, to_pages ? page : u, to_pages ? u : page, n);
		else if (to_pages)
			bf_memcpy(page, u, n);
		else
			bf_memcpy(u, page, n);
	}
}

/* Take the next chunk of the head I/O into a free slot (QUEUED).  false
 * if the pool has no pages for a chunk just now (a completion frees some). */
static bool split_one(struct pvio_blkfront *bf)
{
	struct pvio_blkfront_io *io = bf->q_head;
	struct bf_slot *s = bf->free_head;
	size_t left, max;
	uint32_t bytes = 0;

	s->zbuf = (void *)0;
	if (io->op == PVIO_BLKFRONT_READ || io->op == PVIO_BLKFRONT_WRITE) {
		/* What one ring request carries now, in whole logical sectors,
		 * and (bounced) no more than the pool can lend at the moment. */
		uint32_t zpage;
		struct bf_buf *zb = buf_find(bf, io, &zpage);

		max = (size_t)bf->seg_limit * BF_PAGE;
		if (!zb && max > (size_t)bf->pool_nfree * BF_PAGE)
			max = (size_t)bf->pool_nfree * BF_PAGE;
		max -= max % bf->info.sector_size;
		if (max == 0)
			return false;
		left = io->len - io->issued_;
		bytes = left > max ? (uint32_t)max : (uint32_t)left;
		s->npages = (bytes + BF_PAGE - 1) / BF_PAGE;
		if (zb) {
			s->zbuf = zb;
			s->zpage = zpage;
		} else {
			for (uint32_t k = 0; k < s->npages; k++)
				s->page[k] = bf->pool_free[--bf->pool_nfree];
		}
	}
	bf->free_head = s->next;
	s->io = io;
	s->sub = 0;
	s->sub_n = 0;
	s->indirect = false;
	s->q = (uint8_t)(io->queue_ % bf->nq);
	if (io->op == PVIO_BLKFRONT_FLUSH) {
		s->op = bf->flush_op;
		s->bytes = 0;
		s->sector = 0;
		s->io_off = 0;
	} else if (io->op == PVIO_BLKFRONT_DISCARD) {
		/* one request for the whole range: no data, no segments */
		s->op = PVIO_BLKIF_OP_DISCARD;
		s->bytes = 0;
		s->sector = io->sector;
		s->discard_sectors = io->len / 512;
		s->io_off = 0;
		io->issued_ = io->len;
	} else {
		s->op = io->op == PVIO_BLKFRONT_WRITE ? PVIO_BLKIF_OP_WRITE : PVIO_BLKIF_OP_READ;
		s->bytes = bytes;
		s->sector = io->sector + io->issued_ / 512;
		s->io_off = io->issued_;
		if (io->op == PVIO_BLKFRONT_WRITE && !s->zbuf)
			copy_chunk(bf, s, true);
		io->issued_ += bytes;
	}
	io->chunks_++;
	if (io->op == PVIO_BLKFRONT_FLUSH || io->issued_ == io->len)
		q_pop(bf);
	s->state = SLOT_QUEUED;
	bf->nqueued++;
	fl_append(bf, s);
	return true;
}

/* The segment for page @k of @s: the whole page, or the chunk's tail. */
static void fill_seg(const struct pvio_blkfront *bf, const struct bf_slot *s, uint32_t k,
		     struct pvio_blkif_request_segment *seg)
{
	uint32_t n = s->bytes - k * BF_PAGE < BF_PAGE ? s->bytes - k * BF_PAGE : BF_PAGE;

	seg->gref = s->zbuf ? s->zbuf->gref[s->zpage + k] : pool_gref(bf, s->page[k]);
	seg->first_sect = 0;
	seg->last_sect = (uint8_t)(n / 512 - 1);
	seg->_pad[0] = 0;
	seg->_pad[1] = 0;
}

/* Produce one QUEUED slot onto the ring.  false if the ring is full. */
static bool produce(struct pvio_blkfront *bf, struct bf_slot *s)
{
	union {
		struct pvio_blkif_request rw;
		struct pvio_blkif_request_indirect ind;
	} rq;
	struct bf_queue *q;
	uint32_t n = 0, k;

	/* a reconnect may have brought fewer queues than the slot was given */
	if (s->q >= bf->nq)
		s->q = (uint8_t)(s->q % bf->nq);
	q = &bf->q[s->q];
	if (pvio_ring_front_full(&q->fr))
		return false;
	/* Every byte is set: nothing of ours leaks through the ring (in
	 * words: the request is a whole number of them and 8-aligned). */
	_Static_assert(sizeof(rq) % 8 == 0, "request in whole words");
	for (k = 0; k < sizeof(rq) / 8; k++)
		((volatile pvio_ring__u64 *)&rq)[k] = 0;
	if (s->op == PVIO_BLKIF_OP_READ || s->op == PVIO_BLKIF_OP_WRITE) {
		/* The next piece of the chunk that one request can carry now
		 * (all of it unless a reconnect lowered the limit), in whole
		 * logical sectors. */
		uint32_t per_blk = bf->info.sector_size > BF_PAGE ? bf->info.sector_size / BF_PAGE : 1;
		n = s->npages - s->sub;
		if (n > bf->seg_limit)
			n = bf->seg_limit - bf->seg_limit % per_blk;
	}
	s->sub_n = n;
	s->indirect = n > BF_SEGS;
	if (s->indirect) {
		/* descriptors into our own granted pages, then the header */
		struct pvio_blkif_request_segment *d = (void *)s->ind;
		for (k = 0; k < n; k++)
			fill_seg(bf, s, s->sub + k, &d[k]);
		rq.ind.operation = PVIO_BLKIF_OP_INDIRECT;
		rq.ind.indirect_op = s->op;
		rq.ind.nr_segments = (uint16_t)n;
		rq.ind.id = (uint64_t)(s - bf->slots);
		rq.ind.sector_number = s->sector + (uint64_t)s->sub * (BF_PAGE / 512);
		rq.ind.handle = (pvio_blkif_vdev_t)bf->devid;
		if (s->zbuf)
			bf->st.zero_copy_requests++;
		for (k = 0; k < (n + BF_IND_PER_PAGE - 1) / BF_IND_PER_PAGE; k++)
			rq.ind.indirect_grefs[k] = s->ind_gref[k];
		bf->st.indirect_requests++;
	} else {
		rq.rw.operation = s->op;
		rq.rw.nr_segments = (uint8_t)n;
		rq.rw.handle = (pvio_blkif_vdev_t)bf->devid;
		rq.rw.id = (uint64_t)(s - bf->slots);
		rq.rw.sector_number = s->sector + (uint64_t)s->sub * (BF_PAGE / 512);
		if (s->zbuf)
			bf->st.zero_copy_requests++;
		for (k = 0; k < n; k++)
			fill_seg(bf, s, s->sub + k, &rq.rw.seg[k]);
		if (s->op == PVIO_BLKIF_OP_DISCARD) {
			/* blkif_request_discard: flag (0: not secure) where
			 * nr_segments is, nr_sectors where the first segment is */
			bf_memcpy(&rq.rw.seg[0], &s->discard_sectors, sizeof(s->discard_sectors));
		}
	}
	if (pvio_ring_blkif_put_request(&q->fr, &rq.rw) != 0)
		return false;
	s->state = SLOT_RING;
	bf->nqueued--;
	bf->st.ring_requests++;
	bf->qst[q - bf->q].ring_requests++;
	return true;
}

void bf_kick(struct pvio_blkfront *bf)
{
	struct bf_slot *s;

	if (bf->phase != BF_CONNECTED)
		return;
	while (bf->q_head && bf->free_head && split_one(bf))
		;
	/* Slots are produced in in-flight-list order, so requests requeued
	 * by a reconnect go out before newer ones, in their original order;
	 * once a queue's ring is full, nothing more goes on that queue (its
	 * order holds), the other queues go on filling. */
	unsigned nfull = 0;
	for (unsigned i = 0; i < bf->nq; i++)
		bf->q[i].full = false;
	for (s = bf->fl_head; s && bf->nqueued && nfull < bf->nq; s = s->next) {
		if (s->state != SLOT_QUEUED || (s->q < bf->nq && bf->q[s->q].full))
			continue;
		if (!produce(bf, s)) {
			bf->q[s->q].full = true;
			nfull++;
		}
	}
	for (unsigned i = 0; i < bf->nq; i++) {
		if (pvio_ring_front_push_requests(&bf->q[i].fr)) {
			bf->ops.evtchn_notify(bf->ops.ctx, bf->q[i].port);
			bf->st.notifies++;
			bf->qst[i].notifies++;
		}
	}
}

void bf_requeue_inflight(struct pvio_blkfront *bf)
{
	struct bf_slot *s;

	for (s = bf->fl_head; s; s = s->next)
		if (s->state == SLOT_RING) {
			s->state = SLOT_QUEUED;
			bf->nqueued++;
			bf->st.resubmitted++;
			/* A write's bounce pages still hold its data; a read
			 * will be read again. */
		}
}

void bf_disconnect(struct pvio_blkfront *bf)
{
	struct bf_slot *s;

	if (bf->phase == BF_DEAD)
		return;
	bf->phase = BF_DEAD;
	for (unsigned i = 0; i < PVIO_BLKFRONT_MAX_QUEUES; i++) {
		if (bf->q[i].port_live) {
			/* no more events from a backend we no longer trust */
			bf->ops.evtchn_close(bf->ops.ctx, bf->q[i].port);
			bf->q[i].port_live = false;
		}
	}
	/* Every chunk in flight fails; an I/O completes once it has no chunk
	 * left in flight and nothing left to split. */
	while ((s = bf->fl_head)) {
		struct pvio_blkfront_io *io = s->io;

		if (s->state == SLOT_QUEUED)
			bf->nqueued--;
		slot_free(bf, s);
		io->status_ = -PVIO_BLKFRONT_EIO;
		if (--io->chunks_ == 0 && !io->inq_)
			io_done(bf, io);
	}
	while (bf->q_head) {
		struct pvio_blkfront_io *io = bf->q_head;

		q_pop(bf);
		io->status_ = -PVIO_BLKFRONT_EIO;
		if (io->chunks_ == 0)
			io_done(bf, io);
	}
}

static int rsp_status(int16_t status)
{
	switch (status) {
	case PVIO_BLKIF_RSP_OKAY:
		return 0;
	case PVIO_BLKIF_RSP_ERROR:
		return -PVIO_BLKFRONT_EIO;
	case PVIO_BLKIF_RSP_EOPNOTSUPP:
		return -PVIO_BLKFRONT_EOPNOTSUPP;
	default:
		return 1; /* not a status the protocol knows */
	}
}

/* One validated response. false: the backend broke the protocol. */
static bool complete(struct pvio_blkfront *bf, const struct pvio_blkif_response *rsp)
{
	struct pvio_blkfront_io *io;
	struct bf_slot *s;
	int status;

	/* Validate the private copy: id in range, that slot on the ring,
	 * the operation it was given (for an indirect request its
	 * indirect_op, as Linux blkback echoes, or BLKIF_OP_INDIRECT itself),
	 * a known status. */
	if (rsp->id >= bf->nslots)
		return false;
	s = &bf->slots[rsp->id];
	if (s->state != SLOT_RING ||
	    (rsp->operation != s->op && !(s->indirect && rsp->operation == PVIO_BLKIF_OP_INDIRECT)))
		return false;
	status = rsp_status(rsp->status);
	if (status > 0)
		return false;
	bf->st.ring_responses++;
	io = s->io;
	if (status == 0 && s->sub + s->sub_n < s->npages) {
		/* more of the chunk to send (a reconnect lowered the limit) */
		s->sub += s->sub_n;
		s->sub_n = 0;
		s->state = SLOT_QUEUED;
		bf->nqueued++;
		return true;
	}
	if (status == 0 && s->op == PVIO_BLKIF_OP_READ && !s->zbuf)
		copy_chunk(bf, s, false);
	if (status == -PVIO_BLKFRONT_EOPNOTSUPP && io->op == PVIO_BLKFRONT_FLUSH)
		bf->flush_ok = false; /* as Linux: stop asking */
	if (status && io->status_ == 0)
		io->status_ = status;
	io->done_ += s->bytes;
	slot_free(bf, s);
	if (--io->chunks_ == 0 && !io->inq_)
		io_done(bf, io);
	return true;
}

/* Consume queue @q's responses.  false: the backend broke the protocol
 * (the device is then disconnected). */
static bool consume_queue(struct pvio_blkfront *bf, struct bf_queue *q, int *got)
{
	struct pvio_blkif_response rsp;
	int n;

	for (;;) {
		n = pvio_ring_front_poll_responses(&q->fr);
		if (n == 0 && !bf->spinning)
			n = pvio_ring_front_final_check(&q->fr);
		if (n < 0)
			return false; /* rsp_prod ran ahead of what we produced */
		if (n == 0)
			return true;
		while (pvio_ring_blkif_copy_response(&q->fr, &rsp) == 1) {
			/* complete() also checks the slot is on the ring; a
			 * response on another queue's ring than its request's
			 * is as wrong as an unknown id */
			if (rsp.id < bf->nslots && &bf->q[bf->slots[rsp.id].q] != q)
				return false;
			if (!complete(bf, &rsp))
				return false;
			bf->qst[q - bf->q].ring_responses++;
			(*got)++;
		}
	}
}

int bf_consume(struct pvio_blkfront *bf)
{
	int got = 0;

	if (bf->phase != BF_CONNECTED)
		return 0;
	for (unsigned i = 0; i < bf->nq; i++) {
		if (!consume_queue(bf, &bf->q[i], &got)) {
			bf_disconnect(bf);
			bf_write_state(bf, XB_CLOSING);
			return got;
		}
	}
	bf_kick(bf);
	return got;
}

int bf_run_callbacks(struct pvio_blkfront *bf)
{
	int n = 0;

	while (bf->done_head) {
		struct pvio_blkfront_io *io = bf->done_head;

		bf->done_head = io->next_;
		if (!bf->done_head)
			bf->done_tail = (void *)0;
		io->next_ = (void *)0;
		bf->inflight_ios--;
		if (io->status_)
			bf->st.ios_failed++;
		else
			bf->st.ios_completed++;
		n++;
		if (io->cb)
			io->cb(io, io->status_, io->arg);
	}
	return n;
}
