/* SPDX-License-Identifier: MIT */
/*
 * Event intake: what a frontend's notifications can cost netback, bounded
 * (XSA-332, XSA-391: event storms), as blkback/event.c does for a VBD.
 *
 * Each bound port (a queue's one event channel, or its tx and rx ones when
 * split) is in late-EOI mode: once delivered it stays masked until eoi()
 * here. An event runs one round: the tx ring (at most NB_TX_ROUND_BATCHES
 * batches; what is left is run by a zero-delay timer, i.e. on the next
 * loop pass, after the TAP, xenstore and the other queues had their turn)
 * and, for an rx (or shared) port, the rx queue. While a round is pending
 * the port stays masked: further notifications add nothing, the round
 * looks at the ring anyway.
 *
 * An event that brings nothing new — no tx slot taken, the rx request
 * producer where it was — is spurious. A few in a row are normal (an event
 * latched while a round already took its requests); after NB_SPURIOUS_GRACE
 * in a row netback stops listening to that port for 1 ms, doubling with
 * each further spurious event up to 256 ms. Nothing is lost: events latch
 * while masked and are delivered once on unmask, and the first event that
 * finds work ends the backoff. A frontend notifying in a tight loop thus
 * costs a bounded number of wake-ups per second. Counted in the stats:
 * events, events_spurious, event_backoffs.
 */
#include <limits.h>

#include "private.h"

#define NB_SPURIOUS_GRACE 8u
#define NB_BACKOFF_MIN_MS 1.0
#define NB_BACKOFF_STEPS 8u /* 1 ms << 8 = 256 ms */
#define NB_BACKOFF_MAX_MS (NB_BACKOFF_MIN_MS * (1u << NB_BACKOFF_STEPS))

static void eoi(struct nb_port *pt)
{
	struct nb_vif *v = pt->q->v;

	if (!pt->masked || !v->ev || ev_is_active(&pt->eoi_timer) || pt->round_pending)
		return;
	pt->masked = false;
	pvio_evtchn_unmask(v->ev, pt->port);
}

static void eoi_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(loop, w);
	eoi(w->data);
}

static void spurious(struct nb_port *pt)
{
	struct nb_vif *v = pt->q->v;
	unsigned k;
	double ms;

	v->st.events_spurious++;
	v->stats_dirty = true;
	if (pt->spurious_run < UINT_MAX)
		pt->spurious_run++;
	if (pt->spurious_run < NB_SPURIOUS_GRACE)
		return;
	k = pt->spurious_run - NB_SPURIOUS_GRACE;
	ms = NB_BACKOFF_MIN_MS * (double)(1u << (k < NB_BACKOFF_STEPS ? k : NB_BACKOFF_STEPS));
	if (k == 0)
		nb_log(v, "queue %u: %u events in a row on port %u brought nothing (an event storm?): not "
		       "listening to it for %.0f ms, doubling up to %.0f ms while it lasts",
		       pt->q->id, pt->spurious_run, pt->port, ms, NB_BACKOFF_MAX_MS);
	v->st.event_backoffs++;
	ev_timer_set(&pt->eoi_timer, ms / 1000., 0.);
	ev_timer_start(v->loop, &pt->eoi_timer);
}

/* One round of this port's work; true if it found any. */
static bool round_work(struct nb_port *pt)
{
	struct nb_queue *q = pt->q;
	struct nb_vif *v = q->v;
	bool rx_moved = false, tx_moved;

	if (!pt->rx_only)
		nb_tx_kick(q);
	if ((pt->rx_only || !q->split) && v->connected && !v->disabled && q->rx_sring) {
		/* new rx buffers: the request producer moved since the last look */
		uint32_t prod = __atomic_load_n(&q->rx.sring->req_prod, __ATOMIC_ACQUIRE);
		rx_moved = prod != pt->rx_prod_seen;
		pt->rx_prod_seen = prod;
		nb_rx_kick(q);
	}
	/* slots taken since this port's last event, by this round or by an
	 * rx pass that took them along (nb_rx_kick): only an event after
	 * which nothing at all was produced is spurious */
	tx_moved = !pt->rx_only && q->tx_slots != pt->tx_slots_seen;
	pt->tx_slots_seen = q->tx_slots;
	return tx_moved || rx_moved;
}

static void round_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nb_port *pt = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	pt->round_pending = false;
	if (round_work(pt))
		pt->spurious_run = 0;
	eoi(pt);
}

static void on_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	struct nb_port *pt = arg;
	struct nb_vif *v = pt->q->v;
	bool found;

	(void)e;
	(void)p;
	pt->masked = true; /* late EOI: delivered, masked until eoi() */
	v->st.events++;
	if (pt->round_pending)
		return; /* that round looks at the ring, then ends the event */
	found = round_work(pt);
	if (found)
		pt->spurious_run = 0;
	else if (!pt->round_pending)
		spurious(pt);
	eoi(pt);
}

void nb_event_more(struct nb_queue *q)
{
	struct nb_port *pt = &q->ptx;

	if (pt->round_pending || !pt->bound || !q->v->ev)
		return;
	pt->round_pending = true;
	ev_timer_set(&pt->round_w, 0., 0.);
	ev_timer_start(q->v->loop, &pt->round_w);
}

int nb_event_bind(struct nb_queue *q, struct nb_port *pt, evtchn_port_t remote, bool rx_only)
{
	struct nb_vif *v = q->v;
	int lp;

	pt->q = q;
	pt->rx_only = rx_only;
	pt->masked = false;
	pt->round_pending = false;
	pt->spurious_run = 0;
	pt->rx_prod_seen = 0;
	pt->tx_slots_seen = q->tx_slots;
	ev_timer_init(&pt->eoi_timer, eoi_timer_cb, 0., 0.);
	pt->eoi_timer.data = pt;
	ev_timer_init(&pt->round_w, round_cb, 0., 0.);
	pt->round_w.data = pt;
	lp = pvio_evtchn_bind_interdomain(v->ev, v->domid, remote, on_event, pt);
	if (lp < 0)
		return lp;
	pt->port = (evtchn_port_t)lp;
	pt->bound = true;
	return pvio_evtchn_set_late_eoi(v->ev, pt->port, 1);
}

void nb_event_stop(struct nb_queue *q)
{
	struct nb_port *pts[2] = { &q->ptx, &q->prx };

	for (unsigned i = 0; i < 2; i++) {
		struct nb_port *pt = pts[i];
		if (!pt->bound)
			continue;
		ev_timer_stop(q->v->loop, &pt->eoi_timer);
		ev_timer_stop(q->v->loop, &pt->round_w);
		pt->round_pending = false;
		pt->masked = false;
		pt->spurious_run = 0;
		pt->bound = false;
	}
}
