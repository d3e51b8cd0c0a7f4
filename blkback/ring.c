/* SPDX-License-Identifier: MIT */
/*
 * Request intake: map the ring, copy each request off it once, validate the
 * copy, map its segments and hand it to the daemon; write responses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvio/grant.h"
#include "private.h"

/* A hostile frontend can send invalid requests at ring speed: log the
 * first few of each connection, count them all. */
#define BB_LOG_BAD_MAX 32
/* Requests one round takes off the ring before the loop gets a turn
 * (completions, the control socket): a frontend that keeps its ring full
 * cannot hold the loop in one callback. */
#define BB_ROUND_BUDGET 64

static void on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	(void)e;
	(void)port;
	bb_event_notified(arg); /* event.c: late EOI, storm backoff */
}

/* Map queue @q's ring and carve its request slots; its port is bound by
 * the caller. */
static int queue_setup(struct bb_queue *q, unsigned order, const uint32_t *refs)
{
	struct pvio_blkback *bb = q->bb;
	int n, err;

	err = pvio_gnt_map_batch(bb->xgt, bb->domid, 1u << order, refs, 1, &q->ring_va, NULL);
	if (err) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR,
		       "refused: cannot map the %u ring page(s) of queue %u of domain %u: %s",
		       1u << order, q->idx, bb->domid, strerror(-err));
		q->ring_va = NULL;
		return err;
	}
	if (bb->proto == BB_PROTO_X86_32)
		n = pvio_ring_blkif_x86_32_back_init(&q->br, q->ring_va, PVIO_RING_BYTES(order));
	else
		n = pvio_ring_blkif_back_init(&q->br, q->ring_va, PVIO_RING_BYTES(order));
	if (n <= 0)
		return -EINVAL;
	/* Every slot's segment arrays, sized for the largest request offered,
	 * in one allocation now: a frontend can never make the fast path
	 * allocate, and the memory per ring is bounded by ring size times
	 * the indirect limit. */
	size_t per = (size_t)bb->segs_max * (sizeof(struct iovec) + sizeof(uint16_t)) +
		     (size_t)bb->max_indirect * sizeof(struct pvio_blkif_request_segment);
	per = (per + 15) & ~(size_t)15;
	q->reqs = calloc((size_t)n, sizeof(*q->reqs));
	q->seg_mem = calloc((size_t)n, per);
	if (!q->reqs || !q->seg_mem || (bb->persistent && bb_pgnt_alloc(q)))
		return -ENOMEM;
	q->nr_reqs = (uint32_t)n;
	q->free_reqs = NULL;
	for (int i = n - 1; i >= 0; i--) {
		struct pvio_blkback_req *r = &q->reqs[i];
		char *m = (char *)q->seg_mem + (size_t)i * per;

		r->bb = bb;
		r->q = q;
		r->iov = (struct iovec *)m;
		m += (size_t)bb->segs_max * sizeof(struct iovec);
		r->iseg = bb->max_indirect ? (struct pvio_blkif_request_segment *)m : NULL;
		m += (size_t)bb->max_indirect * sizeof(struct pvio_blkif_request_segment);
		r->pg = (uint16_t *)m;
		r->next_free = q->free_reqs;
		q->free_reqs = r;
	}
	return 0;
}

int bb_ring_connect(struct pvio_blkback *bb, unsigned order, unsigned nq, const uint32_t *refs,
		    const uint32_t *ports, enum bb_proto proto)
{
	int err;

	if (order > PVIO_RING_MAX_ORDER || nq == 0 || nq > PVIO_BLKBACK_MAX_QUEUES)
		return -EINVAL;
	bb->ring_order = order;
	bb->proto = proto;
	bb->max_indirect = bb->cfg.max_indirect_segments;
	bb->segs_max = bb->max_indirect > PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST
			       ? bb->max_indirect : PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST;
	bb->q = calloc(nq, sizeof(*bb->q));
	if (!bb->q)
		return -ENOMEM;
	memset(bb->qst, 0, sizeof(bb->qst));
	bb->stat_queues = nq;
	bb->nr_queues = nq;
	for (unsigned i = 0; i < nq; i++) {
		bb->q[i].bb = bb;
		bb->q[i].idx = i;
		bb->q[i].lport = -1;
		bb->q[i].st = &bb->qst[i];
		bb_queue_watchers_init(&bb->q[i]);
	}
	err = pvio_evtchn_open(&bb->ev);
	if (err) {
		bb->ev = NULL;
		goto fail;
	}
	for (unsigned i = 0; i < nq; i++) {
		struct bb_queue *q = &bb->q[i];

		err = queue_setup(q, order, refs + (size_t)i * (1u << PVIO_RING_MAX_ORDER));
		if (err)
			goto fail;
		q->lport = pvio_evtchn_bind_interdomain(bb->ev, bb->domid, ports[i], on_event, q);
		if (q->lport < 0) {
			err = q->lport;
			q->lport = -1;
			bb_log(bb, PVIO_BLKBACK_LOG_ERR,
			       "refused: cannot bind event channel %u (queue %u) of domain %u: %s",
			       ports[i], i, bb->domid, strerror(-err));
			goto fail;
		}
		/* late EOI: the port stays masked from delivery until event.c says */
		err = bb_event_bind(q);
		if (err)
			goto fail;
	}
	err = pvio_evtchn_ev_start(bb->ev, bb->loop);
	if (err)
		goto fail;
	bb->connected = true;
	bb->logged_bad = 0;
	bb->st.in_flight = 0;
	return 0;
fail:
	bb_ring_disconnect(bb);
	return err;
}

void bb_ring_disconnect(struct pvio_blkback *bb)
{
	for (unsigned i = 0; bb->q && i < bb->nr_queues; i++)
		bb_event_reset(&bb->q[i]);
	if (bb->ev) {
		pvio_evtchn_ev_stop(bb->ev);
		pvio_evtchn_close(bb->ev); /* unbinds: the frontend's ports see the close */
		bb->ev = NULL;
	}
	for (unsigned i = 0; bb->q && i < bb->nr_queues; i++) {
		struct bb_queue *q = &bb->q[i];

		q->lport = -1;
		/* Only reached with requests in flight when the daemon abandons
		 * its I/O (destroy): the pages must still be unmapped. */
		for (uint32_t k = 0; q->reqs && k < q->nr_reqs; k++)
			bb_unmap_segments(q, &q->reqs[k]);
		bb_pgnt_flush(q);
		if (q->ring_va)
			xengnttab_unmap(bb->xgt, q->ring_va, 1u << bb->ring_order);
		bb_queue_watchers_stop(q);
		free(q->reqs);
		free(q->seg_mem);
	}
	free(bb->q);
	bb->q = NULL;
	bb->nr_queues = 0;
	bb->connected = false;
}

void bb_ring_kick_all(struct pvio_blkback *bb)
{
	for (unsigned i = 0; bb->q && i < bb->nr_queues; i++)
		ev_idle_start(bb->loop, &bb->q[i].kick_idle);
}

void bb_ring_respond(struct bb_queue *q, uint64_t id, uint8_t op, int status)
{
	struct pvio_blkback *bb = q->bb;
	int err;

	if (!bb->connected)
		return;
	/* Built whole in private memory with every byte set, then copied
	 * into the slot: no uninitialised padding reaches the guest (XSA-216). */
	if (bb->proto == BB_PROTO_X86_32) {
		struct pvio_blkif_x86_32_response rsp;
		memset(&rsp, 0, sizeof(rsp));
		rsp.id = id;
		rsp.operation = op;
		rsp.status = (int16_t)status;
		err = pvio_ring_blkif_x86_32_put_response(&q->br, &rsp);
	} else {
		struct pvio_blkif_response rsp;
		memset(&rsp, 0, sizeof(rsp));
		rsp.id = id;
		rsp.operation = op;
		rsp.status = (int16_t)status;
		err = pvio_ring_blkif_put_response(&q->br, &rsp);
	}
	if (err)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot write the response for id %llu (queue %u): %d",
		       (unsigned long long)id, q->idx, err);
	else
		q->need_push = true;
}

void bb_ring_push(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;

	q->need_push = false;
	if (!bb->connected)
		return;
	if (pvio_ring_back_push_responses(&q->br)) {
		pvio_evtchn_notify(bb->ev, (evtchn_port_t)q->lport);
		bb->st.notifies_sent++;
		q->st->notifies_sent++;
	}
}

/* Copy the next request off the ring into @w (once), translating the
 * x86_32 layout (plain and indirect) into the native one.  Returns 1, 0
 * (none) or a negative PVIO_RING error. */
static int copy_request(struct bb_queue *q, struct pvio_blkif_request *w)
{
	if (q->bb->proto == BB_PROTO_X86_32) {
		struct pvio_blkif_x86_32_request r32;
		int n = pvio_ring_blkif_x86_32_copy_request(&q->br, &r32);
		if (n != 1)
			return n;
		memset(w, 0, sizeof(*w));
		if (r32.operation == PVIO_BLKIF_OP_INDIRECT) {
			struct pvio_blkif_x86_32_request_indirect i32;
			struct pvio_blkif_request_indirect in;

			/* same private bytes, read in the indirect layout */
			_Static_assert(sizeof(i32) <= sizeof(r32), "x86_32 indirect fits a slot");
			memcpy(&i32, &r32, sizeof(i32));
			memset(&in, 0, sizeof(in));
			in.operation = i32.operation;
			in.indirect_op = i32.indirect_op;
			in.nr_segments = i32.nr_segments;
			in.id = i32.id;
			in.sector_number = i32.sector_number;
			in.handle = i32.handle;
			memcpy(in.indirect_grefs, i32.indirect_grefs, sizeof(in.indirect_grefs));
			memcpy(w, &in, sizeof(in));
			return 1;
		}
		w->operation = r32.operation;
		w->nr_segments = r32.nr_segments;
		w->handle = r32.handle;
		w->id = r32.id;
		w->sector_number = r32.sector_number;
		memcpy(w->seg, r32.seg, sizeof(w->seg));
		return 1;
	}
	return pvio_ring_blkif_copy_request(&q->br, w);
}

static void refuse(struct pvio_blkback *bb, struct pvio_blkback_req *r, int rsp, const char *why)
{
	const struct pvio_blkif_request *w = &r->wire;
	unsigned nseg = w->nr_segments;

	if (rsp == PVIO_BLKIF_RSP_EOPNOTSUPP)
		bb->st.unsupported++;
	else
		bb->st.invalid++;
	if (bb->logged_bad < BB_LOG_BAD_MAX) {
		if (w->operation == PVIO_BLKIF_OP_INDIRECT) {
			struct pvio_blkif_request_indirect in;
			memcpy(&in, w, sizeof(in));
			nseg = in.nr_segments;
		}
		bb_log(bb, PVIO_BLKBACK_LOG_WARN,
		       "frontend %u sent a bad request (id %llu op %u nr_segments %u sector %llu): %s",
		       bb->domid, (unsigned long long)w->id, w->operation, nseg,
		       (unsigned long long)w->sector_number, why);
		if (++bb->logged_bad == BB_LOG_BAD_MAX)
			bb_log(bb, PVIO_BLKBACK_LOG_WARN, "further bad requests of this connection are counted, not logged");
	}
	bb_finish(bb, r, rsp);
}

/* The logical block in 512-byte protocol sectors (1, or 8 for 4 KiB). */
static unsigned lblk(const struct pvio_blkback *bb)
{
	return bb->cfg.sector_size / PVIO_BLKIF_SECTOR_SIZE;
}

static void refuse_misaligned(struct pvio_blkback *bb, struct pvio_blkback_req *r, const char *what)
{
	char why[128];

	snprintf(why, sizeof(why), "%s not aligned to the %u-byte logical sector", what,
		 bb->cfg.sector_size);
	bb->st.misaligned++;
	refuse(bb, r, PVIO_BLKIF_RSP_ERROR, why);
}

/*
 * Discard (blkif_request_discard, read from the private copy): same size
 * as a request, with `flag` where nr_segments is and nr_sectors where the
 * first segment is, in both ABIs, so the x86_32 translation carries it.
 */
static void take_discard(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	const struct pvio_blkif_request *w = &r->wire;
	uint8_t flag = w->nr_segments;
	uint64_t n;
	int err;

	memcpy(&n, &w->seg[0], sizeof(n));
	if (!bb->discard || (flag & PVIO_BLKIF_DISCARD_SECURE)) {
		refuse(bb, r, PVIO_BLKIF_RSP_EOPNOTSUPP,
		       bb->discard ? "secure discard not advertised" : "discard not advertised");
		return;
	}
	if (w->sector_number > bb->cfg.sectors || n > bb->cfg.sectors - w->sector_number) {
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "discard range outside the disk");
		return;
	}
	if (w->sector_number % lblk(bb) || n % lblk(bb)) {
		refuse_misaligned(bb, r, "discard range");
		return;
	}
	r->op = PVIO_BLKBACK_DISCARD;
	if (n == 0) {
		pvio_blkback_complete(r, 0);
		return;
	}
	r->iov[0].iov_base = NULL;
	r->iov[0].iov_len = n * PVIO_BLKIF_SECTOR_SIZE;
	r->bytes = r->iov[0].iov_len;
	err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, PVIO_BLKBACK_DISCARD,
				  w->sector_number * PVIO_BLKIF_SECTOR_SIZE, r->iov, 1);
	if (err)
		pvio_blkback_complete(r, err);
}

/*
 * A read or write (direct, flush with data, or indirect) whose @nseg
 * segments are r->seg, a private copy: check every segment, the range and
 * the logical-block alignment, map the data pages in one batch, submit.
 */
static void take_rw(struct pvio_blkback *bb, struct pvio_blkback_req *r, unsigned nseg)
{
	const struct pvio_blkif_request *w = &r->wire;
	unsigned blk = lblk(bb);
	bool aligned = w->sector_number % blk == 0;
	uint64_t total = 0;
	char why[96];
	int err;

	for (unsigned i = 0; i < nseg; i++) {
		const struct pvio_blkif_request_segment *s = &r->seg[i];
		if (s->first_sect > s->last_sect || s->last_sect >= PVIO_BLKIF_SECTORS_PER_PAGE) {
			snprintf(why, sizeof(why), "segment %u sectors %u..%u not first <= last <= 7", i,
				 s->first_sect, s->last_sect);
			refuse(bb, r, PVIO_BLKIF_RSP_ERROR, why);
			return;
		}
		/* a 4 KiB logical block is a whole page: first 0, last 7 */
		if (s->first_sect % blk || (s->last_sect + 1u) % blk)
			aligned = false;
		total += (uint64_t)(s->last_sect - s->first_sect + 1);
	}
	/* total <= 8 * 256, so no overflow; compare without computing start+total. */
	if (w->sector_number > bb->cfg.sectors || total > bb->cfg.sectors - w->sector_number) {
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "sector range outside the disk");
		return;
	}
	if (!aligned) {
		refuse_misaligned(bb, r, "start sector or a segment");
		return;
	}
	if (r->op == PVIO_BLKBACK_FLUSH) {
		/* flush with data: write it, then flush */
		r->op = PVIO_BLKBACK_WRITE;
		r->flush_after = true;
	}
	if (r->op == PVIO_BLKBACK_WRITE && bb->cfg.readonly) {
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "write to a read-only disk");
		return;
	}
	r->nseg = (uint16_t)nseg;
	err = bb_map_segments(r->q, r);
	if (err) {
		bb->st.map_errors++;
		r->nseg = 0;
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR,
		       err == -EBUSY ? "a persistent grant already in use by another request"
				     : "grant map refused (bad, foreign or read-only grant)");
		return;
	}
	r->bytes = total * PVIO_BLKIF_SECTOR_SIZE;
	if (r->barrier) {
		bb_ring_barrier_check(r->q); /* issued once the earlier requests are done */
		return;
	}
	err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, r->op,
				  w->sector_number * PVIO_BLKIF_SECTOR_SIZE, r->iov, r->niov);
	if (err)
		pvio_blkback_complete(r, err);
}

/*
 * BLKIF_OP_INDIRECT: the header comes from the private copy; the segment
 * descriptors live in granted pages, which are mapped, copied out once
 * into r->iseg and released before anything in them is looked at
 * (XSA-155); then the copy is checked like a direct request's segments.
 */
static void take_indirect(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	struct pvio_blkif_request_indirect in;
	unsigned nind;
	char why[96];
	int err;

	memcpy(&in, &r->wire, sizeof(in));
	r->indirect = true;
	/* Responses echo indirect_op, as Linux blkback does and Linux
	 * blkfront checks. */
	r->rsp_op = in.indirect_op;
	if (!bb->max_indirect) {
		refuse(bb, r, PVIO_BLKIF_RSP_EOPNOTSUPP, "indirect descriptors not advertised");
		return;
	}
	if (in.indirect_op == PVIO_BLKIF_OP_READ) {
		r->op = PVIO_BLKBACK_READ;
	} else if (in.indirect_op == PVIO_BLKIF_OP_WRITE) {
		r->op = PVIO_BLKBACK_WRITE;
	} else {
		snprintf(why, sizeof(why), "indirect_op %u is not read (0) or write (1)", in.indirect_op);
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, why);
		return;
	}
	if (in.nr_segments == 0 || in.nr_segments > bb->max_indirect) {
		snprintf(why, sizeof(why), "indirect nr_segments %u not in 1..%u", in.nr_segments,
			 bb->max_indirect);
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, why);
		return;
	}
	/* Exactly the pages nr_segments needs (<= 8 with a limit <= 4096);
	 * grefs in the slots after them are never looked at. */
	nind = (in.nr_segments + PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME - 1) /
	       PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME;
	err = bb_map_indirect(r->q, r, in.indirect_grefs, nind, in.nr_segments);
	if (err) {
		bb->st.map_errors++;
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR,
		       err == -EBUSY ? "indirect page is a persistent grant already in use"
				     : "indirect page: grant map refused (bad, foreign or ungranted)");
		return;
	}
	r->seg = r->iseg;
	take_rw(bb, r, in.nr_segments);
}

/* Validate the private copy; on success submit it. */
static void take(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	const struct pvio_blkif_request *w = &r->wire;
	int err;

	r->in_flight = true;
	r->map = NULL;
	r->pmapped = false;
	r->bytes = 0;
	r->nseg = 0;
	r->seg = w->seg;
	r->indirect = false;
	r->rsp_op = w->operation;
	r->flush_after = false;
	r->barrier = false;
	bb->st.in_flight++;
	r->q->in_flight++;
	r->q->st->requests++;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);

	switch (w->operation) {
	case PVIO_BLKIF_OP_READ: r->op = PVIO_BLKBACK_READ; break;
	case PVIO_BLKIF_OP_WRITE: r->op = PVIO_BLKBACK_WRITE; break;
	case PVIO_BLKIF_OP_FLUSH_DISKCACHE:
		if (bb->cfg.no_flush_cache) {
			refuse(bb, r, PVIO_BLKIF_RSP_EOPNOTSUPP, "flush-cache not advertised");
			return;
		}
		r->op = PVIO_BLKBACK_FLUSH;
		break;
	case PVIO_BLKIF_OP_DISCARD:
		take_discard(bb, r);
		return;
	case PVIO_BLKIF_OP_INDIRECT:
		take_indirect(bb, r);
		return;
	case PVIO_BLKIF_OP_WRITE_BARRIER:
		if (bb->cfg.no_barrier) {
			refuse(bb, r, PVIO_BLKIF_RSP_EOPNOTSUPP, "barrier not advertised");
			return;
		}
		/* From here on the queue takes nothing more until the barrier
		 * is answered (bb_finish clears it, also when it is refused). */
		r->barrier = true;
		r->q->barrier = r;
		r->q->barrier_issued = false;
		r->q->st->barriers++;
		if (w->nr_segments == 0) {
			r->op = PVIO_BLKBACK_FLUSH; /* a barrier without data: drain, flush */
			bb_ring_barrier_check(r->q);
			return;
		}
		r->op = PVIO_BLKBACK_WRITE;
		break;
	default:
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "unknown operation");
		return;
	}
	if (r->op == PVIO_BLKBACK_FLUSH && w->nr_segments == 0) {
		err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, PVIO_BLKBACK_FLUSH, 0, NULL, 0);
		if (err)
			pvio_blkback_complete(r, err);
		return;
	}
	if (w->nr_segments == 0 || w->nr_segments > PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST) {
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "segment count not in 1..11");
		return;
	}
	take_rw(bb, r, w->nr_segments);
}

/*
 * WRITE_BARRIER, as Linux blkback implemented it (drain, then a write with
 * preflush and FUA): issued only when it is the last request of its queue
 * in flight, so everything taken before it has completed; its data is
 * written and then flushed (pvio_blkback_complete's flush_after), which
 * makes it and all earlier completed writes durable; it is answered after
 * that flush, and the queue's intake, stopped since it was taken, resumes
 * in bb_finish.  A barrier without data is the drain and the flush.
 */
void bb_ring_barrier_check(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;
	struct pvio_blkback_req *r = q->barrier;
	int err;

	if (!r || q->barrier_issued || q->in_flight != 1)
		return;
	q->barrier_issued = true;
	if (r->op == PVIO_BLKBACK_WRITE) {
		r->flush_after = true;
		err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, PVIO_BLKBACK_WRITE,
					  r->wire.sector_number * PVIO_BLKIF_SECTOR_SIZE, r->iov, r->niov);
	} else {
		err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, PVIO_BLKBACK_FLUSH, 0, NULL, 0);
	}
	if (err)
		pvio_blkback_complete(r, err);
	else if (bb->cfg.ops->kick)
		bb->cfg.ops->kick(bb->cfg.ops_ctx);
}

int bb_ring_work(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;
	bool broken = false, more = false;
	unsigned taken = 0;

	if (!bb->connected || bb->paused || bb->pending_disconnect || bb->detaching || q->in_work ||
	    q->barrier || ev_is_active(&bb->broken_idle))
		return -1;
	q->in_work = true;
	for (;;) {
		int n = pvio_ring_back_poll_requests(&q->br);
		/* arms req_event, unless polling: then the frontend need not
		 * notify, we look again anyway (event.c) */
		if (n == 0 && !q->polling)
			n = pvio_ring_back_final_check(&q->br);
		if (n < 0) {
			broken = true;
			break;
		}
		if (n == 0)
			break;
		while (q->free_reqs) {
			struct pvio_blkback_req *r = q->free_reqs;
			int c = copy_request(q, &r->wire);
			if (c < 0) {
				broken = true;
				break;
			}
			if (c == 0)
				break;
			q->free_reqs = r->next_free;
			take(bb, r);
			if (++taken == BB_ROUND_BUDGET || q->barrier) {
				more = !q->barrier;
				break;
			}
		}
		if (broken || more || q->barrier)
			break;
		if (!q->free_reqs) {
			/* Cannot happen with a correct ring (slots == ring size);
			 * a completion re-runs us. */
			q->starved = true;
			break;
		}
	}
	q->in_work = false;
	if (taken && bb->cfg.ops->kick)
		bb->cfg.ops->kick(bb->cfg.ops_ctx);
	if (broken) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR,
		       "frontend %u broke the ring (queue %u: request producer ran ahead of the ring): disconnecting",
		       bb->domid, q->idx);
		/* We may be inside the event channel's dispatch, which must not
		 * see its handle closed under it: disconnect from the loop. */
		ev_idle_start(bb->loop, &bb->broken_idle);
	} else if (more) {
		/* the rest on the next loop pass (prepare_cb); the idle
		 * watcher keeps the loop from blocking until then */
		q->round_pending = true;
		ev_idle_start(bb->loop, &q->kick_idle);
	}
	return (int)taken;
}
