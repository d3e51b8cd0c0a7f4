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
 * producer where it was — is spurious; the late EOI and the backoff a run
 * of them starts (1 ms doubling up to 256 ms after 8 in a row) are the
 * evtchn library's, shared with blkback (pvio/evtchn_eoi.h). A frontend
 * notifying in a tight loop thus costs a bounded number of wake-ups per
 * second. Counted in the stats: events, events_spurious, event_backoffs.
 */
#include "private.h"

/* End the event, unless a round is pending (it ends it) or a backoff runs
 * (its end comes back here). */
static void eoi(struct nb_port *pt)
{
	if (pt->round_pending)
		return;
	pvio_evtchn_eoi_end(&pt->eoi);
}

static void backoff_end(void *arg)
{
	eoi(arg);
}

static void storm(void *arg, unsigned run, unsigned ms, unsigned max_ms)
{
	struct nb_port *pt = arg;

	nb_log(pt->q->v, "queue %u: %u events in a row on port %u brought nothing (an event storm?): not "
	       "listening to it for %u ms, doubling up to %u ms while it lasts",
	       pt->q->id, run, pt->port, ms, max_ms);
}

static const struct pvio_evtchn_eoi_ops eoi_ops = {
	.backoff_end = backoff_end,
	.storm = storm,
};

static void spurious(struct nb_port *pt)
{
	pt->q->v->stats_dirty = true;
	pvio_evtchn_eoi_spurious(&pt->eoi);
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
		pvio_evtchn_eoi_found(&pt->eoi);
	eoi(pt);
}

static void on_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	struct nb_port *pt = arg;
	bool found;

	(void)e;
	(void)p;
	pvio_evtchn_eoi_delivered(&pt->eoi); /* masked until eoi() */
	if (pt->round_pending)
		return; /* that round looks at the ring, then ends the event */
	found = round_work(pt);
	if (found)
		pvio_evtchn_eoi_found(&pt->eoi);
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
	struct pvio_evtchn_eoi_counters c = {
		.events = &v->st.events,
		.spurious = &v->st.events_spurious,
		.backoffs = &v->st.event_backoffs,
	};
	int lp;

	pt->q = q;
	pt->rx_only = rx_only;
	pt->round_pending = false;
	pt->rx_prod_seen = 0;
	pt->tx_slots_seen = q->tx_slots;
	pvio_evtchn_eoi_init(&pt->eoi, v->loop, &eoi_ops, pt, &c);
	ev_timer_init(&pt->round_w, round_cb, 0., 0.);
	pt->round_w.data = pt;
	lp = pvio_evtchn_bind_interdomain(v->ev, v->domid, remote, on_event, pt);
	if (lp < 0)
		return lp;
	pt->port = (evtchn_port_t)lp;
	pt->bound = true;
	return pvio_evtchn_eoi_bind(&pt->eoi, v->ev, pt->port);
}

void nb_event_stop(struct nb_queue *q)
{
	struct nb_port *pts[2] = { &q->ptx, &q->prx };

	for (unsigned i = 0; i < 2; i++) {
		struct nb_port *pt = pts[i];
		if (!pt->bound)
			continue;
		pvio_evtchn_eoi_reset(&pt->eoi);
		ev_timer_stop(q->v->loop, &pt->round_w);
		pt->round_pending = false;
		pt->bound = false;
	}
}
