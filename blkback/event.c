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
 *    requests); after PVIO_EVTCHN_EOI_GRACE in a row we stop listening
 *    for a while, 1 ms doubling with each further spurious event up to
 *    256 ms, as Linux does with its late EOI for XSA-332 (the mechanism
 *    is shared with netback: evtchn/eoi.c, pvio/evtchn_eoi.h).
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
#include <time.h>

#include "private.h"

/* End of interrupt: listen to the event channel again, unless polling
 * holds it masked (polling's end EOIs) or a backoff runs (its end comes
 * back here). */
static void eoi(struct bb_queue *q)
{
	if (q->polling)
		return;
	pvio_evtchn_eoi_end(&q->eoi);
}

static void backoff_end(void *arg)
{
	eoi(arg);
}

static void storm(void *arg, unsigned run, unsigned ms, unsigned max_ms)
{
	struct bb_queue *q = arg;

	bb_log(q->bb, PVIO_BLKBACK_LOG_WARN,
	       "frontend %u: %u events in a row brought no request (an event storm?): not listening "
	       "to its event channel for %u ms, doubling up to %u ms while it lasts",
	       q->bb->domid, run, ms, max_ms);
}

static const struct pvio_evtchn_eoi_ops eoi_ops = {
	.backoff_end = backoff_end,
	.storm = storm,
};

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
	struct pvio_evtchn_eoi_counters c = {
		.events = &q->st->events,
		.spurious = &q->bb->st.events_spurious,
		.backoffs = &q->bb->st.event_backoffs,
	};

	pvio_evtchn_eoi_init(&q->eoi, q->bb->loop, &eoi_ops, q, &c);
	ev_idle_init(&q->poll_idle, poll_cb);
	q->poll_idle.data = q;
}

void bb_event_reset(struct bb_queue *q)
{
	pvio_evtchn_eoi_reset(&q->eoi);
	ev_idle_stop(q->bb->loop, &q->poll_idle);
	q->round_pending = false;
	q->polling = false;
}

int bb_event_bind(struct bb_queue *q)
{
	bb_event_reset(q);
	return pvio_evtchn_eoi_bind(&q->eoi, q->bb->ev, (evtchn_port_t)q->lport);
}

void bb_event_notified(struct bb_queue *q)
{
	int taken;

	pvio_evtchn_eoi_delivered(&q->eoi); /* masked until eoi() */
	if (q->barrier)
		return;	      /* behind a barrier: stays masked, its end runs a round and EOIs */
	if (q->round_pending)
		return;	      /* that round looks at the ring, then EOIs */
	if (q->polling)
		return;	      /* (the port was unmasked when polling began: unpause) */
	taken = bb_ring_work(q);
	if (taken > 0) {
		pvio_evtchn_eoi_found(&q->eoi);
		if (q->bb->cfg.poll_us)
			poll_start(q); /* stays masked; polling's end EOIs */
	}
	if (q->round_pending || q->polling)
		return;	      /* the budget ran out: the next round EOIs */
	if (taken <= 0)
		pvio_evtchn_eoi_spurious(&q->eoi); /* nothing new (or not looked at: paused, closing) */
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
