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

int bf_slots_init(struct pvio_blkfront *bf)
{
	unsigned i, k;
	uint64_t gfn;
	int err;

	bf->slots = bf->ops.zalloc(bf->ops.ctx, sizeof(*bf->slots) * bf->nslots);
	if (!bf->slots)
		return -PVIO_BLKFRONT_ENOMEM;
	for (i = 0; i < bf->nslots; i++) {
		struct bf_slot *s = &bf->slots[i];
		void *va;

		err = bf->ops.page_alloc(bf->ops.ctx, BF_SEGS, &va, &gfn);
		if (err)
			return err;
		s->bounce = va;
		/* Granted once, for the device's life: data moves through
		 * these pages only, never through the caller's memory. */
		for (k = 0; k < BF_SEGS; k++) {
			err = bf->ops.grant(bf->ops.ctx, bf->backend_id, gfn + k, false, &s->gref[k]);
			if (err)
				return err;
			s->ngrants++;
		}
		s->state = SLOT_FREE;
		s->next = bf->free_head;
		bf->free_head = s;
	}
	return 0;
}

void bf_slots_fini(struct pvio_blkfront *bf)
{
	unsigned i, k;

	if (!bf->slots)
		return;
	for (i = 0; i < bf->nslots; i++) {
		struct bf_slot *s = &bf->slots[i];
		bool leak = false;

		for (k = 0; k < s->ngrants; k++)
			if (bf->ops.end_grant(bf->ops.ctx, s->gref[k]) != 0)
				leak = true;
		if (!s->bounce)
			continue;
		if (leak)
			bf->st.leaked_pages += BF_SEGS;
		else
			bf->ops.page_free(bf->ops.ctx, s->bounce, BF_SEGS);
	}
	bf->ops.free(bf->ops.ctx, bf->slots);
	bf->slots = (void *)0;
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

/* Take the next chunk of the head I/O into a free slot (QUEUED). */
static void split_one(struct pvio_blkfront *bf)
{
	struct pvio_blkfront_io *io = bf->q_head;
	struct bf_slot *s = bf->free_head;
	size_t left;
	uint32_t bytes;

	bf->free_head = s->next;
	s->io = io;
	if (io->op == PVIO_BLKFRONT_FLUSH) {
		s->op = bf->flush_op;
		s->nsegs = 0;
		s->bytes = 0;
		s->sector = 0;
		s->io_off = 0;
	} else if (io->op == PVIO_BLKFRONT_DISCARD) {
		/* one request for the whole range: no data, no segments */
		s->op = PVIO_BLKIF_OP_DISCARD;
		s->nsegs = 0;
		s->bytes = 0;
		s->sector = io->sector;
		s->discard_sectors = io->len / 512;
		s->io_off = 0;
		io->issued_ = io->len;
	} else {
		left = io->len - io->issued_;
		bytes = left > BF_CHUNK_MAX ? BF_CHUNK_MAX : (uint32_t)left;
		s->op = io->op == PVIO_BLKFRONT_WRITE ? PVIO_BLKIF_OP_WRITE : PVIO_BLKIF_OP_READ;
		s->bytes = bytes;
		s->nsegs = (uint8_t)((bytes + BF_PAGE - 1) / BF_PAGE);
		s->sector = io->sector + io->issued_ / 512;
		s->io_off = io->issued_;
		if (io->op == PVIO_BLKFRONT_WRITE)
			bf_memcpy(s->bounce, (const uint8_t *)io->buf + s->io_off, bytes);
		io->issued_ += bytes;
	}
	io->chunks_++;
	if (io->op == PVIO_BLKFRONT_FLUSH || io->issued_ == io->len)
		q_pop(bf);
	s->state = SLOT_QUEUED;
	bf->nqueued++;
	fl_append(bf, s);
}

/* Produce one QUEUED slot onto the ring.  false if the ring is full. */
static bool produce(struct pvio_blkfront *bf, struct bf_slot *s)
{
	struct pvio_blkif_request rq;
	uint32_t left = s->bytes;
	unsigned k;

	if (pvio_ring_front_full(&bf->fr))
		return false;
	/* Every field, padding included, is set: nothing of ours leaks. */
	rq.operation = s->op;
	rq.nr_segments = s->nsegs;
	rq.handle = (pvio_blkif_vdev_t)bf->devid;
	rq._pad1 = 0;
	rq.id = (uint64_t)(s - bf->slots);
	rq.sector_number = s->sector;
	for (k = 0; k < BF_SEGS; k++) {
		uint32_t seg = left > BF_PAGE ? BF_PAGE : left;

		rq.seg[k].gref = k < s->nsegs ? s->gref[k] : 0;
		rq.seg[k].first_sect = 0;
		rq.seg[k].last_sect = k < s->nsegs ? (uint8_t)(seg / 512 - 1) : 0;
		rq.seg[k]._pad[0] = 0;
		rq.seg[k]._pad[1] = 0;
		left -= k < s->nsegs ? seg : 0;
	}
	if (s->op == PVIO_BLKIF_OP_DISCARD) {
		/* blkif_request_discard: flag (0: not secure) where nr_segments
		 * is, nr_sectors where the first segment is */
		rq.nr_segments = 0;
		bf_memcpy(&rq.seg[0], &s->discard_sectors, sizeof(s->discard_sectors));
	}
	if (pvio_ring_blkif_put_request(&bf->fr, &rq) != 0)
		return false;
	s->state = SLOT_RING;
	bf->nqueued--;
	bf->st.ring_requests++;
	return true;
}

void bf_kick(struct pvio_blkfront *bf)
{
	struct bf_slot *s;

	if (bf->phase != BF_CONNECTED)
		return;
	while (bf->q_head && bf->free_head)
		split_one(bf);
	/* Slots are produced in in-flight-list order, so requests requeued
	 * by a reconnect go out before newer ones, in their original order. */
	for (s = bf->fl_head; s && bf->nqueued; s = s->next)
		if (s->state == SLOT_QUEUED && !produce(bf, s))
			break;
	if (pvio_ring_front_push_requests(&bf->fr)) {
		bf->ops.evtchn_notify(bf->ops.ctx, bf->port);
		bf->st.notifies++;
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
	if (bf->port_live) {
		/* no more events from a backend we no longer trust */
		bf->ops.evtchn_close(bf->ops.ctx, bf->port);
		bf->port_live = false;
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
	 * the operation it was given, a known status. */
	if (rsp->id >= bf->nslots)
		return false;
	s = &bf->slots[rsp->id];
	if (s->state != SLOT_RING || rsp->operation != s->op)
		return false;
	status = rsp_status(rsp->status);
	if (status > 0)
		return false;
	bf->st.ring_responses++;
	io = s->io;
	if (status == 0 && s->op == PVIO_BLKIF_OP_READ)
		bf_memcpy((uint8_t *)io->buf + s->io_off, s->bounce, s->bytes);
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

int bf_consume(struct pvio_blkfront *bf)
{
	struct pvio_blkif_response rsp;
	int n, got = 0;

	if (bf->phase != BF_CONNECTED)
		return 0;
	for (;;) {
		n = pvio_ring_front_poll_responses(&bf->fr);
		if (n == 0)
			n = pvio_ring_front_final_check(&bf->fr);
		if (n < 0) {
			/* rsp_prod ran ahead of what we produced */
			bf_disconnect(bf);
			bf_write_state(bf, XB_CLOSING);
			return got;
		}
		if (n == 0)
			break;
		while (pvio_ring_blkif_copy_response(&bf->fr, &rsp) == 1) {
			if (!complete(bf, &rsp)) {
				bf_disconnect(bf);
				bf_write_state(bf, XB_CLOSING);
				return got;
			}
			got++;
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
