/* SPDX-License-Identifier: MIT */
/*
 * pvio/evtchn_eoi.h — late EOI with an event-storm backoff, for backends
 * on a libev loop (XSA-332, XSA-391).
 *
 * A struct pvio_evtchn_eoi drives one port that its owner bound on a
 * struct pvio_evtchn: the port is put in late-EOI mode, so once delivered
 * it stays masked until the owner ends the event (pvio_evtchn_eoi_end).
 * The owner's handler tells what each event brought:
 *  - pvio_evtchn_eoi_found(): work — any spurious run is over;
 *  - pvio_evtchn_eoi_spurious(): nothing.  A few in a row are normal (an
 *    event latched while a round already took the work); after
 *    PVIO_EVTCHN_EOI_GRACE in a row the port is left masked for
 *    PVIO_EVTCHN_EOI_BACKOFF_MIN_MS, doubling with each further spurious
 *    event up to PVIO_EVTCHN_EOI_BACKOFF_MAX_MS, as Linux does with its
 *    late EOI.  Nothing is lost: events latch while the port is masked and
 *    are delivered once on unmask, and the first event that finds work
 *    ends the backoff.
 * A peer notifying in a tight loop thus costs a bounded number of wake-ups
 * per second whatever its rate.
 *
 * The owner may hold the port masked for reasons of its own (a round the
 * work budget deferred, adaptive polling): it then simply does not call
 * pvio_evtchn_eoi_end() until they pass.  When a backoff ends, the ops'
 * backoff_end() is called so the owner can end the event if it no longer
 * holds the port.
 *
 * Everything runs on the loop's thread; nothing here allocates.  The
 * struct is embedded in the owner's and its members are private.
 */
#ifndef PVIO_EVTCHN_EOI_H
#define PVIO_EVTCHN_EOI_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

#include "pvio/evtchn.h"

#define PVIO_EVTCHN_EOI_GRACE 8u	     /* spurious events in a row before a backoff */
#define PVIO_EVTCHN_EOI_BACKOFF_MIN_MS 1u
#define PVIO_EVTCHN_EOI_BACKOFF_STEPS 8u /* 1 ms << 8 = 256 ms */
#define PVIO_EVTCHN_EOI_BACKOFF_MAX_MS \
	(PVIO_EVTCHN_EOI_BACKOFF_MIN_MS << PVIO_EVTCHN_EOI_BACKOFF_STEPS)

struct pvio_evtchn_eoi_ops {
	/* Required.  A backoff ended: call pvio_evtchn_eoi_end() unless the
	 * owner still holds the port masked. */
	void (*backoff_end)(void *arg);
	/* Optional (may be NULL).  A run of spurious events reached the grace
	 * limit and the first backoff of the run begins, @ms long: log it.
	 * @run is the number of spurious events in a row. */
	void (*storm)(void *arg, unsigned run, unsigned ms, unsigned max_ms);
};

/* Where the counters go; any member may be NULL (not counted).  Several
 * ports may share counters. */
struct pvio_evtchn_eoi_counters {
	uint64_t *events;   /* events delivered */
	uint64_t *spurious; /* ... that brought nothing */
	uint64_t *backoffs; /* backoffs started (the port left masked: a storm) */
};

struct pvio_evtchn_eoi {
	/* private: use the functions below */
	struct pvio_evtchn *e; /* NULL: not bound */
	evtchn_port_t port;
	struct ev_loop *loop;
	bool masked;	       /* delivered and not yet EOI'd */
	unsigned spurious_run; /* events in a row that brought nothing */
	ev_timer backoff;      /* running: a storm backoff, the port stays masked */
	const struct pvio_evtchn_eoi_ops *ops;
	void *arg;
	struct pvio_evtchn_eoi_counters c;
};

/* Once, before any other call: @ops (kept, not copied) and @arg for the
 * callbacks, @c (copied) for the counters. */
void pvio_evtchn_eoi_init(struct pvio_evtchn_eoi *l, struct ev_loop *loop,
			  const struct pvio_evtchn_eoi_ops *ops, void *arg,
			  const struct pvio_evtchn_eoi_counters *c);
/* Drive @port, bound on @e by the caller: put it in late-EOI mode and start
 * from a clean state (unmasked, no spurious run, no backoff).  0 or -errno
 * (-EINVAL: @port is not bound on @e). */
int pvio_evtchn_eoi_bind(struct pvio_evtchn_eoi *l, struct pvio_evtchn *e, evtchn_port_t port);
/* Forget the port and stop a backoff (before @e is closed or the port
 * unbound).  Safe on a struct that was only initialised. */
void pvio_evtchn_eoi_reset(struct pvio_evtchn_eoi *l);
/* The port's handler was called: the port is masked until the event ends.
 * Counts the event. */
void pvio_evtchn_eoi_delivered(struct pvio_evtchn_eoi *l);
/* The event (or a round it started) found work: a spurious run ends. */
void pvio_evtchn_eoi_found(struct pvio_evtchn_eoi *l);
/* The event brought nothing: count it; past the grace, start a backoff. */
void pvio_evtchn_eoi_spurious(struct pvio_evtchn_eoi *l);
/* End the event: unmask the port, unless it was not delivered, a backoff
 * is running (backoff_end comes later) or it is not bound.  0 or -errno
 * (the unmask failed). */
int pvio_evtchn_eoi_end(struct pvio_evtchn_eoi *l);

#endif
