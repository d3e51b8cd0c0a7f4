/* SPDX-License-Identifier: MIT */
/* blkback lifecycle, completion, pause/drain, statistics and logging. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

const uint32_t pvio_blkback_lat_bounds_us[PVIO_BLKBACK_LAT_BUCKETS - 1] = {
	10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000,
};

void bb_log(struct pvio_blkback *bb, enum pvio_blkback_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!bb->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bb->cfg.log(bb->cfg.arg, lvl, msg);
}

void bb_event(struct pvio_blkback *bb, enum pvio_blkback_event ev)
{
	if (bb->cfg.on_event)
		bb->cfg.on_event(bb->cfg.arg, ev);
}

/* Responses are pushed once per loop iteration, just before the loop
 * blocks: every completion of the iteration shares one push and at most
 * one notification per queue (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY). */
static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct pvio_blkback *bb = w->data;

	(void)loop;
	(void)revents;
	for (unsigned i = 0; bb->q && i < bb->nr_queues; i++) {
		struct bb_queue *q = &bb->q[i];

		if (q->round_pending)
			bb_event_round(q); /* the rest of a round the budget cut */
		if (q->need_push)
			bb_ring_push(q);
	}
}

static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct bb_queue *q = w->data;

	(void)revents;
	ev_idle_stop(loop, w);
	bb_event_round(q);
}

void bb_queue_watchers_init(struct bb_queue *q)
{
	ev_idle_init(&q->kick_idle, idle_cb);
	q->kick_idle.data = q;
	bb_event_init(q);
}

void bb_queue_watchers_stop(struct bb_queue *q)
{
	ev_idle_stop(q->bb->loop, &q->kick_idle);
	bb_event_reset(q);
}

static void broken_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct pvio_blkback *bb = w->data;

	(void)revents;
	ev_idle_stop(loop, w);
	if (bb->connected && !bb->pending_disconnect)
		bb_xenbus_ring_broken(bb);
}

int pvio_blkback_create(struct ev_loop *loop, const struct pvio_blkback_config *cfg,
			struct pvio_blkback **out)
{
	struct pvio_blkback *bb;
	int err;

	*out = NULL;
	if (!loop || !cfg || !cfg->backend || !cfg->ops || !cfg->ops->submit)
		return -EINVAL;
	if (strlen(cfg->backend) >= BB_PATH_MAX - 64 || cfg->backend[0] != '/')
		return -EINVAL;
	bb = calloc(1, sizeof(*bb));
	if (!bb)
		return -ENOMEM;
	bb->loop = loop;
	bb->cfg = *cfg;
	snprintf(bb->backend, sizeof(bb->backend), "%s", cfg->backend);
	bb->cfg.backend = bb->backend;
	if (bb->cfg.max_ring_page_order > PVIO_RING_MAX_ORDER)
		bb->cfg.max_ring_page_order = PVIO_RING_MAX_ORDER;
	if (bb->cfg.max_queues > PVIO_BLKBACK_MAX_QUEUES)
		bb->cfg.max_queues = PVIO_BLKBACK_MAX_QUEUES;
	if (bb->cfg.poll_us > PVIO_BLKBACK_MAX_POLL_US)
		bb->cfg.poll_us = PVIO_BLKBACK_MAX_POLL_US;
	if (bb->cfg.max_indirect_segments > PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS)
		bb->cfg.max_indirect_segments = PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS;
	if (!bb->cfg.sector_size)
		bb->cfg.sector_size = PVIO_BLKIF_SECTOR_SIZE;
	/* Logical blocks of 512 or 4096 bytes (what Linux and blkif users
	 * know); the disk must be whole blocks, or its last one could not be
	 * addressed by an aligned request. */
	if ((bb->cfg.sector_size != 512 && bb->cfg.sector_size != 4096) ||
	    bb->cfg.sectors % (bb->cfg.sector_size / PVIO_BLKIF_SECTOR_SIZE)) {
		free(bb);
		return -EINVAL;
	}
	if (bb->cfg.physical_sector_size < bb->cfg.sector_size ||
	    (bb->cfg.physical_sector_size & (bb->cfg.physical_sector_size - 1)))
		bb->cfg.physical_sector_size = bb->cfg.sector_size;
	ev_prepare_init(&bb->prepare, prepare_cb);
	bb->prepare.data = bb;
	ev_prepare_start(loop, &bb->prepare);
	ev_idle_init(&bb->broken_idle, broken_cb);
	bb->broken_idle.data = bb;
	err = bb_xenbus_start(bb);
	if (err) {
		pvio_blkback_destroy(bb);
		return err;
	}
	*out = bb;
	return 0;
}

void pvio_blkback_destroy(struct pvio_blkback *bb)
{
	if (!bb)
		return;
	bb_ring_disconnect(bb);
	bb_xenbus_stop(bb);
	ev_prepare_stop(bb->loop, &bb->prepare);
	ev_idle_stop(bb->loop, &bb->broken_idle);
	free(bb);
}

static void account(struct pvio_blkback *bb, struct pvio_blkback_req *r, int status)
{
	struct timespec now;
	uint64_t us;
	unsigned b;

	if (status) {
		bb->st.io_errors++;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (uint64_t)(now.tv_sec - r->t0.tv_sec) * 1000000u +
	     (uint64_t)((now.tv_nsec - r->t0.tv_nsec) / 1000);
	for (b = 0; b < PVIO_BLKBACK_LAT_BUCKETS - 1; b++)
		if (us <= pvio_blkback_lat_bounds_us[b])
			break;
	bb->st.lat_hist[b]++;
	if (r->wire.operation == PVIO_BLKIF_OP_FLUSH_DISKCACHE) {
		bb->st.reqs[PVIO_BLKBACK_FLUSH]++;
		bb->st.bytes[PVIO_BLKBACK_WRITE] += r->bytes;
	} else {
		bb->st.reqs[r->op]++;
		bb->st.bytes[r->op] += r->bytes;
	}
	if (r->indirect)
		bb->st.indirect++;
	if (r->barrier)
		bb->st.barriers++;
}

void pvio_blkback_complete(struct pvio_blkback_req *r, int status)
{
	struct pvio_blkback *bb = r->bb;
	int err;

	if (!r->in_flight) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "daemon completed request id %llu twice: ignored",
		       (unsigned long long)r->wire.id);
		return;
	}
	if (status == 0 && r->flush_after) {
		/* FLUSH_DISKCACHE carrying data (Linux blkfront sends these for
		 * REQ_PREFLUSH|REQ_FUA writes): the data is written, now make it
		 * and everything before it durable before answering. */
		r->flush_after = false;
		err = bb->cfg.ops->submit(bb->cfg.ops_ctx, r, PVIO_BLKBACK_FLUSH, 0, NULL, 0);
		if (err == 0) {
			if (bb->cfg.ops->kick)
				bb->cfg.ops->kick(bb->cfg.ops_ctx);
			return;
		}
		status = err;
	}
	if (status)
		bb_log(bb, PVIO_BLKBACK_LOG_WARN, "request id %llu (op %u, sector %llu) failed: %s",
		       (unsigned long long)r->wire.id, r->wire.operation,
		       (unsigned long long)r->wire.sector_number, strerror(-status));
	account(bb, r, status);
	bb_finish(bb, r, status ? PVIO_BLKIF_RSP_ERROR : PVIO_BLKIF_RSP_OKAY);
}

void bb_finish(struct pvio_blkback *bb, struct pvio_blkback_req *r, int rsp_status)
{
	struct bb_queue *q = r->q;

	/* Unmap before the response is visible: the frontend ends its grants
	 * as soon as it sees the response, which fails while still mapped. */
	bb_unmap_segments(q, r);
	bb_ring_respond(q, r->wire.id, r->rsp_op, rsp_status);
	r->in_flight = false;
	r->next_free = q->free_reqs;
	q->free_reqs = r;
	bb->st.in_flight--;
	q->in_flight--;
	if (q->barrier == r) {
		/* answered (after its flush, or refused): the queue takes
		 * requests again, and a round EOIs what came meanwhile */
		q->barrier = NULL;
		q->barrier_issued = false;
		ev_idle_start(bb->loop, &q->kick_idle);
	}
	if (q->starved) {
		q->starved = false;
		ev_idle_start(bb->loop, &q->kick_idle);
	}
	if (bb->st.in_flight == 0) {
		if (bb->paused && !bb->drained_reported) {
			bb->drained_reported = true;
			bb_event(bb, PVIO_BLKBACK_EV_DRAINED);
		}
		if (bb->pending_disconnect)
			bb_xenbus_idle(bb);
		return;
	}
	/* Last: a barrier left alone is issued now (it may complete inside,
	 * so nothing of @q is touched after this). */
	if (q->barrier)
		bb_ring_barrier_check(q);
}

void pvio_blkback_pause(struct pvio_blkback *bb)
{
	if (bb->paused)
		return;
	bb->paused = true;
	bb->drained_reported = false;
	bb_log(bb, PVIO_BLKBACK_LOG_INFO, "paused (%u requests in flight)", bb->st.in_flight);
	if (bb->st.in_flight == 0) {
		bb->drained_reported = true;
		bb_event(bb, PVIO_BLKBACK_EV_DRAINED);
	}
}

void pvio_blkback_unpause(struct pvio_blkback *bb)
{
	if (!bb->paused)
		return;
	bb->paused = false;
	bb_log(bb, PVIO_BLKBACK_LOG_INFO, "unpaused");
	/* Requests may have queued while paused: look at the rings from the
	 * loop, not from inside the caller's callback. */
	bb_ring_kick_all(bb);
}

int pvio_blkback_paused(const struct pvio_blkback *bb)
{
	return bb->paused;
}

void pvio_blkback_get_stats(const struct pvio_blkback *bb, struct pvio_blkback_stats *st)
{
	*st = bb->st;
	st->max_indirect_segments = bb->cfg.max_indirect_segments;
	st->sector_size = bb->cfg.sector_size;
	st->ring_slots = bb->connected && bb->q ? bb->q[0].nr_reqs : 0;
	st->ring_order = bb->connected ? bb->ring_order : 0;
	st->nr_queues = bb->stat_queues;
	st->max_queues = bb->cfg.max_queues;
	st->poll_us = bb->cfg.poll_us;
	st->pgnt_mapped = 0;
	for (unsigned i = 0; bb->connected && bb->q && i < bb->nr_queues; i++)
		st->pgnt_mapped += bb->q[i].pg_mapped;
}

int pvio_blkback_get_queue_stats(const struct pvio_blkback *bb, unsigned qi,
				 struct pvio_blkback_queue_stats *st)
{
	if (qi >= bb->stat_queues)
		return -ENOENT;
	*st = bb->qst[qi];
	st->in_flight = bb->connected && bb->q && qi < bb->nr_queues ? bb->q[qi].in_flight : 0;
	return 0;
}

enum pvio_blkback_state pvio_blkback_state(const struct pvio_blkback *bb)
{
	return bb->state;
}

uint32_t pvio_blkback_frontend_id(const struct pvio_blkback *bb)
{
	return bb->domid;
}

const char *pvio_blkback_state_name(enum pvio_blkback_state s)
{
	switch (s) {
	case PVIO_BLKBACK_INITWAIT: return "initwait";
	case PVIO_BLKBACK_CONNECTED: return "connected";
	case PVIO_BLKBACK_CLOSING: return "closing";
	case PVIO_BLKBACK_CLOSED: return "closed";
	}
	return "unknown";
}
