/* SPDX-License-Identifier: MIT */
/*
 * Request intake: map the ring, copy each request off it once, validate the
 * copy, map its segments and hand it to the daemon; write responses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvio/grant.h"
#include "private.h"

/* A hostile frontend can send invalid requests at ring speed: log the
 * first few of each connection, count them all. */
#define BB_LOG_BAD_MAX 32

static void on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	(void)e;
	(void)port;
	bb_ring_work(arg);
}

int bb_ring_connect(struct pvio_blkback *bb, unsigned order, const uint32_t *refs,
		    uint32_t port, enum bb_proto proto)
{
	int n, err;

	if (order > PVIO_RING_MAX_ORDER)
		return -EINVAL;
	err = pvio_gnt_map_batch(bb->xgt, bb->domid, 1u << order, refs, 1, &bb->ring_va, NULL);
	if (err) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "refused: cannot map the %u ring page(s) of domain %u: %s",
		       1u << order, bb->domid, strerror(-err));
		bb->ring_va = NULL;
		return err;
	}
	bb->ring_order = order;
	if (proto == BB_PROTO_X86_32)
		n = pvio_ring_blkif_x86_32_back_init(&bb->br, bb->ring_va, PVIO_RING_BYTES(order));
	else
		n = pvio_ring_blkif_back_init(&bb->br, bb->ring_va, PVIO_RING_BYTES(order));
	if (n <= 0) {
		err = -EINVAL;
		goto fail;
	}
	bb->proto = proto;
	bb->reqs = calloc((size_t)n, sizeof(*bb->reqs));
	if (!bb->reqs) {
		err = -ENOMEM;
		goto fail;
	}
	bb->nr_reqs = (uint32_t)n;
	bb->free_reqs = NULL;
	for (int i = n - 1; i >= 0; i--) {
		bb->reqs[i].bb = bb;
		bb->reqs[i].next_free = bb->free_reqs;
		bb->free_reqs = &bb->reqs[i];
	}
	err = pvio_evtchn_open(&bb->ev);
	if (err) {
		bb->ev = NULL;
		goto fail;
	}
	bb->lport = pvio_evtchn_bind_interdomain(bb->ev, bb->domid, port, on_event, bb);
	if (bb->lport < 0) {
		err = bb->lport;
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "refused: cannot bind event channel %u of domain %u: %s",
		       port, bb->domid, strerror(-err));
		goto fail;
	}
	err = pvio_evtchn_ev_start(bb->ev, bb->loop);
	if (err)
		goto fail;
	bb->connected = true;
	bb->starved = false;
	bb->need_push = false;
	bb->logged_bad = 0;
	bb->st.in_flight = 0;
	return 0;
fail:
	bb_ring_disconnect(bb);
	return err;
}

void bb_ring_disconnect(struct pvio_blkback *bb)
{
	if (bb->ev) {
		pvio_evtchn_ev_stop(bb->ev);
		pvio_evtchn_close(bb->ev); /* unbinds: the frontend's port sees the close */
		bb->ev = NULL;
	}
	bb->lport = -1;
	/* Only reached with requests in flight when the daemon abandons its
	 * I/O (destroy): the pages must still be unmapped. */
	for (uint32_t i = 0; bb->reqs && i < bb->nr_reqs; i++)
		bb_unmap_segments(bb, &bb->reqs[i]);
	bb_pgnt_flush(bb);
	if (bb->ring_va) {
		xengnttab_unmap(bb->xgt, bb->ring_va, 1u << bb->ring_order);
		bb->ring_va = NULL;
	}
	free(bb->reqs);
	bb->reqs = NULL;
	bb->free_reqs = NULL;
	bb->nr_reqs = 0;
	bb->connected = false;
	bb->need_push = false;
}

void bb_ring_respond(struct pvio_blkback *bb, uint64_t id, uint8_t op, int status)
{
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
		err = pvio_ring_blkif_x86_32_put_response(&bb->br, &rsp);
	} else {
		struct pvio_blkif_response rsp;
		memset(&rsp, 0, sizeof(rsp));
		rsp.id = id;
		rsp.operation = op;
		rsp.status = (int16_t)status;
		err = pvio_ring_blkif_put_response(&bb->br, &rsp);
	}
	if (err)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot write the response for id %llu: %d",
		       (unsigned long long)id, err);
	else
		bb->need_push = true;
}

void bb_ring_push(struct pvio_blkback *bb)
{
	bb->need_push = false;
	if (!bb->connected)
		return;
	if (pvio_ring_back_push_responses(&bb->br)) {
		pvio_evtchn_notify(bb->ev, (evtchn_port_t)bb->lport);
		bb->st.notifies_sent++;
	}
}

/* Copy the next request off the ring into @w (once), translating the
 * x86_32 layout.  Returns 1, 0 (none) or a negative PVIO_RING error. */
static int copy_request(struct pvio_blkback *bb, struct pvio_blkif_request *w)
{
	if (bb->proto == BB_PROTO_X86_32) {
		struct pvio_blkif_x86_32_request r32;
		int n = pvio_ring_blkif_x86_32_copy_request(&bb->br, &r32);
		if (n != 1)
			return n;
		memset(w, 0, sizeof(*w));
		w->operation = r32.operation;
		w->nr_segments = r32.nr_segments;
		w->handle = r32.handle;
		w->id = r32.id;
		w->sector_number = r32.sector_number;
		memcpy(w->seg, r32.seg, sizeof(w->seg));
		return 1;
	}
	return pvio_ring_blkif_copy_request(&bb->br, w);
}

static void refuse(struct pvio_blkback *bb, struct pvio_blkback_req *r, int rsp, const char *why)
{
	const struct pvio_blkif_request *w = &r->wire;

	if (rsp == PVIO_BLKIF_RSP_EOPNOTSUPP)
		bb->st.unsupported++;
	else
		bb->st.invalid++;
	if (bb->logged_bad < BB_LOG_BAD_MAX) {
		bb_log(bb, PVIO_BLKBACK_LOG_WARN,
		       "frontend %u sent a bad request (id %llu op %u nr_segments %u sector %llu): %s",
		       bb->domid, (unsigned long long)w->id, w->operation, w->nr_segments,
		       (unsigned long long)w->sector_number, why);
		if (++bb->logged_bad == BB_LOG_BAD_MAX)
			bb_log(bb, PVIO_BLKBACK_LOG_WARN, "further bad requests of this connection are counted, not logged");
	}
	bb_finish(bb, r, rsp);
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

/* Validate the private copy; on success submit it. */
static void take(struct pvio_blkback *bb, struct pvio_blkback_req *r)
{
	const struct pvio_blkif_request *w = &r->wire;
	uint64_t total = 0;
	int err;

	r->in_flight = true;
	r->map = NULL;
	r->bytes = 0;
	r->nseg = 0;
	r->flush_after = false;
	bb->st.in_flight++;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);

	switch (w->operation) {
	case PVIO_BLKIF_OP_READ: r->op = PVIO_BLKBACK_READ; break;
	case PVIO_BLKIF_OP_WRITE: r->op = PVIO_BLKBACK_WRITE; break;
	case PVIO_BLKIF_OP_FLUSH_DISKCACHE: r->op = PVIO_BLKBACK_FLUSH; break;
	case PVIO_BLKIF_OP_DISCARD:
		take_discard(bb, r);
		return;
	case PVIO_BLKIF_OP_WRITE_BARRIER:
	case PVIO_BLKIF_OP_INDIRECT:
		/* Known but not advertised (feature-barrier 0, no indirect
		 * segments). */
		refuse(bb, r, PVIO_BLKIF_RSP_EOPNOTSUPP, "operation not advertised");
		return;
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
	for (unsigned i = 0; i < w->nr_segments; i++) {
		const struct pvio_blkif_request_segment *s = &w->seg[i];
		if (s->first_sect > s->last_sect || s->last_sect >= PVIO_BLKIF_SECTORS_PER_PAGE) {
			refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "segment sectors not first <= last <= 7");
			return;
		}
		total += (uint64_t)(s->last_sect - s->first_sect + 1);
	}
	/* total <= 88, so no overflow; compare without computing start+total. */
	if (w->sector_number > bb->cfg.sectors || total > bb->cfg.sectors - w->sector_number) {
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "sector range outside the disk");
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
	r->nseg = w->nr_segments;
	err = bb_map_segments(bb, r);
	if (err) {
		bb->st.map_errors++;
		r->nseg = 0;
		refuse(bb, r, PVIO_BLKIF_RSP_ERROR, "grant map refused (bad, foreign or read-only grant)");
		return;
	}
	r->bytes = total * PVIO_BLKIF_SECTOR_SIZE;
	err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, r->op,
				  w->sector_number * PVIO_BLKIF_SECTOR_SIZE, r->iov, r->nseg);
	if (err)
		pvio_blkback_complete(r, err);
}

void bb_ring_work(struct pvio_blkback *bb)
{
	bool broken = false;
	unsigned taken = 0;

	if (!bb->connected || bb->paused || bb->pending_disconnect || bb->detaching || bb->in_work ||
	    ev_is_active(&bb->broken_idle))
		return;
	bb->in_work = true;
	for (;;) {
		int n = pvio_ring_back_poll_requests(&bb->br);
		if (n == 0)
			n = pvio_ring_back_final_check(&bb->br); /* arms req_event */
		if (n < 0) {
			broken = true;
			break;
		}
		if (n == 0)
			break;
		while (bb->free_reqs) {
			struct pvio_blkback_req *r = bb->free_reqs;
			int c = copy_request(bb, &r->wire);
			if (c < 0) {
				broken = true;
				break;
			}
			if (c == 0)
				break;
			bb->free_reqs = r->next_free;
			take(bb, r);
			taken++;
		}
		if (broken)
			break;
		if (!bb->free_reqs) {
			/* Cannot happen with a correct ring (slots == ring size);
			 * a completion re-runs us. */
			bb->starved = true;
			break;
		}
	}
	bb->in_work = false;
	if (taken && bb->cfg.ops->kick)
		bb->cfg.ops->kick(bb->cfg.ops_ctx);
	if (broken) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR,
		       "frontend %u broke the ring (request producer ran ahead of the ring): disconnecting",
		       bb->domid);
		/* We may be inside the event channel's dispatch, which must not
		 * see its handle closed under it: disconnect from the loop. */
		ev_idle_start(bb->loop, &bb->broken_idle);
	}
}
