/* SPDX-License-Identifier: MIT */
/*
 * Late EOI with an event-storm backoff (pvio/evtchn_eoi.h): the one copy
 * of what bounds a backend's cost of a peer's notifications, used by
 * blkback and netback.
 */
#include <errno.h>
#include <limits.h>

#include "pvio/evtchn_eoi.h"

static void backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pvio_evtchn_eoi *l = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	l->ops->backoff_end(l->arg);
}

static void count(uint64_t *c)
{
	if (c)
		(*c)++;
}

void pvio_evtchn_eoi_init(struct pvio_evtchn_eoi *l, struct ev_loop *loop,
			  const struct pvio_evtchn_eoi_ops *ops, void *arg,
			  const struct pvio_evtchn_eoi_counters *c)
{
	l->e = NULL;
	l->port = 0;
	l->loop = loop;
	l->masked = false;
	l->spurious_run = 0;
	ev_timer_init(&l->backoff, backoff_cb, 0., 0.);
	l->backoff.data = l;
	l->ops = ops;
	l->arg = arg;
	l->c = *c;
}

void pvio_evtchn_eoi_reset(struct pvio_evtchn_eoi *l)
{
	ev_timer_stop(l->loop, &l->backoff);
	l->e = NULL;
	l->masked = false;
	l->spurious_run = 0;
}

int pvio_evtchn_eoi_bind(struct pvio_evtchn_eoi *l, struct pvio_evtchn *e, evtchn_port_t port)
{
	int err;

	pvio_evtchn_eoi_reset(l);
	/* from now on dispatch leaves the port masked when it delivers it */
	err = pvio_evtchn_set_late_eoi(e, port, 1);
	if (err)
		return err;
	l->e = e;
	l->port = port;
	return 0;
}

void pvio_evtchn_eoi_delivered(struct pvio_evtchn_eoi *l)
{
	l->masked = true; /* late EOI: delivered, masked until the event ends */
	count(l->c.events);
}

void pvio_evtchn_eoi_found(struct pvio_evtchn_eoi *l)
{
	l->spurious_run = 0;
}

void pvio_evtchn_eoi_spurious(struct pvio_evtchn_eoi *l)
{
	unsigned k, ms;

	count(l->c.spurious);
	if (l->spurious_run < UINT_MAX)
		l->spurious_run++;
	if (l->spurious_run < PVIO_EVTCHN_EOI_GRACE)
		return;
	k = l->spurious_run - PVIO_EVTCHN_EOI_GRACE;
	ms = PVIO_EVTCHN_EOI_BACKOFF_MIN_MS
	     << (k < PVIO_EVTCHN_EOI_BACKOFF_STEPS ? k : PVIO_EVTCHN_EOI_BACKOFF_STEPS);
	if (k == 0 && l->ops->storm)
		l->ops->storm(l->arg, l->spurious_run, ms, PVIO_EVTCHN_EOI_BACKOFF_MAX_MS);
	count(l->c.backoffs);
	/* (re)started: a spurious event can only come from a delivery, i.e.
	 * with no backoff running, but restarting is right either way */
	ev_timer_stop(l->loop, &l->backoff);
	ev_timer_set(&l->backoff, ms / 1000., 0.);
	ev_timer_start(l->loop, &l->backoff);
}

int pvio_evtchn_eoi_end(struct pvio_evtchn_eoi *l)
{
	if (!l->masked || !l->e || ev_is_active(&l->backoff))
		return 0;
	l->masked = false;
	return pvio_evtchn_unmask(l->e, l->port);
}
