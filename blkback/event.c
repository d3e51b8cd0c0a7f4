/* SPDX-License-Identifier: MIT */
/*
 * Event intake: what a frontend's notifications can cost us, bounded
 * (XSA-332, XSA-391: event storms).
 *
 * The event channel only schedules work.  The handler runs one round of the
 * ring (bb_ring_work takes at most BB_ROUND_BUDGET requests; when the
 * budget runs out the rest waits for the next loop pass, run from the
 * prepare and idle watchers, so completions and the control socket get
 * their turn in between).  The port is in late-EOI mode: once delivered it
 * stays masked until eoi() here, so
 *  - while a round is pending, further notifications are not delivered at
 *    all (they would add nothing: the pending round looks at the ring);
 *  - an event that brings no new request is spurious.  A few in a row are
 *    normal (an event that raced with a round which already took its
 *    requests); after BB_SPURIOUS_GRACE in a row we stop listening for a
 *    while, BB_BACKOFF_MIN_MS doubling with each further spurious event up
 *    to BB_BACKOFF_MAX_MS, as Linux does with its late EOI for XSA-332.
 *    Nothing is lost: events latch while the port is masked and arrive once
 *    on unmask, and the first event that finds a request ends the backoff.
 * A frontend flooding its event channel thus costs a bounded number of
 * wake-ups per second whatever its rate; one that never consumes its
 * responses costs nothing once its ring is answered.
 *
 * Adaptive polling (cfg.poll_us, off by default): a round that took
 * requests does not EOI.  The port stays masked and req_event is left
 * alone (so the frontend, seeing no new req_event, does not notify at
 * all), and an idle watcher looks at the ring whenever the loop has
 * nothing else to do, until poll_us pass without a new request.  Then the
 * ring is checked once more with req_event armed and the port is EOI'd:
 * back to events.  A busy ring thus costs no notifications and no
 * wake-ups, at the price of a spinning loop while it is busy and up to
 * poll_us after (blktap's adaptive ring polling; the masked-event model of
 * the seeds).  A storm cannot use this to pin us: polling only starts
 * after a round that found requests.
 */
#include <limits.h>
#include <time.h>

#include "private.h"

#define BB_SPURIOUS_GRACE 8
#define BB_BACKOFF_MIN_MS 1.0
#define BB_BACKOFF_STEPS 8 /* 1 ms << 8 = 256 ms */
#define BB_BACKOFF_MAX_MS (BB_BACKOFF_MIN_MS * (1u << BB_BACKOFF_STEPS))

/* End of interrupt: listen to the event channel again, unless a backoff
 * is running (its timer does this when it ends). */
static void eoi(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;

	if (!q->ev_masked || !bb->ev || ev_is_active(&q->eoi_timer) || q->polling)
		return;
	q->ev_masked = false;
	pvio_evtchn_unmask(bb->ev, (evtchn_port_t)q->lport);
}

static void eoi_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bb_queue *q = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	eoi(q);
}

static void spurious(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;
	unsigned k;
	double ms;

	bb->st.events_spurious++;
	if (q->spurious_run < UINT_MAX)
		q->spurious_run++;
	if (q->spurious_run < BB_SPURIOUS_GRACE)
		return;
	k = q->spurious_run - BB_SPURIOUS_GRACE;
	ms = BB_BACKOFF_MIN_MS * (double)(1u << (k < BB_BACKOFF_STEPS ? k : BB_BACKOFF_STEPS));
	if (k == 0)
		bb_log(bb, PVIO_BLKBACK_LOG_WARN,
		       "frontend %u: %u events in a row brought no request (an event storm?): not listening "
		       "to its event channel for %.0f ms, doubling up to %.0f ms while it lasts",
		       bb->domid, q->spurious_run, ms, BB_BACKOFF_MAX_MS);
	bb->st.event_backoffs++;
	ev_timer_set(&q->eoi_timer, ms / 1000., 0.);
	ev_timer_start(bb->loop, &q->eoi_timer);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A round took requests: poll instead of going back to events. */
static void poll_start(struct bb_queue *q)
{
	struct pvio_blkback *bb = q->bb;

	q->poll_until = now_s() + bb->cfg.poll_us / 1e6;
	if (q->polling)
		return;
	q->polling = true;
	bb->st.polls++;
	ev_idle_start(bb->loop, &q->poll_idle);
}

static void poll_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct bb_queue *q = w->data;
	struct pvio_blkback *bb = q->bb;
	int taken;

	(void)revents;
	if (q->round_pending)
		return; /* the budget's next round runs first */
	taken = bb_ring_work(q);
	if (taken > 0) {
		bb->st.poll_requests += (uint64_t)taken;
		q->poll_until = now_s() + bb->cfg.poll_us / 1e6;
		return;
	}
	if (now_s() < q->poll_until)
		return;
	/* quiet for poll_us: back to events.  Look once more with req_event
	 * armed, so a request that came meanwhile is not left unnotified. */
	ev_idle_stop(loop, w);
	q->polling = false;
	if (q->barrier)
		return; /* stays masked: the barrier's end runs a round and EOIs */
	taken = bb_ring_work(q);
	if (taken > 0) {
		bb->st.poll_requests += (uint64_t)taken;
		if (!q->round_pending)
			poll_start(q);
		return;
	}
	if (!q->round_pending)
		eoi(q);
}

void bb_event_init(struct bb_queue *q)
{
	ev_timer_init(&q->eoi_timer, eoi_timer_cb, 0., 0.);
	q->eoi_timer.data = q;
	ev_idle_init(&q->poll_idle, poll_cb);
	q->poll_idle.data = q;
}

void bb_event_reset(struct bb_queue *q)
{
	ev_timer_stop(q->bb->loop, &q->eoi_timer);
	ev_idle_stop(q->bb->loop, &q->poll_idle);
	q->spurious_run = 0;
	q->round_pending = false;
	q->ev_masked = false;
	q->polling = false;
}

void bb_event_notified(struct bb_queue *q)
{
	int taken;

	q->ev_masked = true; /* late EOI: delivered, masked until eoi() */
	q->st->events++;
	if (q->barrier)
		return;	      /* behind a barrier: stays masked, its end runs a round and EOIs */
	if (q->round_pending)
		return;	      /* that round looks at the ring, then EOIs */
	if (q->polling)
		return;	      /* (the port was unmasked when polling began: unpause) */
	taken = bb_ring_work(q);
	if (taken > 0) {
		q->spurious_run = 0;
		if (q->bb->cfg.poll_us)
			poll_start(q); /* stays masked; polling's end EOIs */
	}
	if (q->round_pending || q->polling)
		return;	      /* the budget ran out: the next round EOIs */
	if (taken <= 0)
		spurious(q); /* nothing new (or not looked at: paused, closing) */
	eoi(q);
}

void bb_event_round(struct bb_queue *q)
{
	int taken;

	q->round_pending = false;
	taken = bb_ring_work(q);
	if (taken > 0 && q->bb->cfg.poll_us)
		poll_start(q);
	if (!q->round_pending)
		eoi(q); /* (a no-op while polling) */
}
