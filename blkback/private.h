/* SPDX-License-Identifier: MIT */
/* blkback internals: shared by xenbus.c, ring.c, map.c and blkback.c. */
#ifndef PVIO_BLKBACK_PRIVATE_H
#define PVIO_BLKBACK_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "pvio/blkback.h"
#include "pvio/blkif_wire.h"
#include "pvio/evtchn.h"
#include "pvio/evtchn_eoi.h"
#include "pvio/ring.h"

#define BB_PATH_MAX 256

enum bb_proto { BB_PROTO_NATIVE = 0, BB_PROTO_X86_32 = 1 };

struct bb_queue;

/*
 * One request slot.  Lifecycle: free list -> (copy off the ring into .wire,
 * validate, map) -> submitted to the daemon (in flight) -> complete():
 * unmap, response into the ring -> free list.  There are exactly as many
 * slots as ring entries, allocated at connect, so a frontend can never make
 * the core allocate on the fast path; a correct frontend cannot have more
 * requests outstanding than the ring holds, and the ring layer refuses a
 * producer index that claims more.
 */
struct pvio_blkback_req {
	struct pvio_blkback *bb;
	struct bb_queue *q;		/* the queue (ring) it came from and answers on */
	struct pvio_blkback_req *next_free;
	/* Private copy of the ring slot, in the native layout: the only thing
	 * validated and used.  For BLKIF_OP_INDIRECT its first 64 bytes are a
	 * struct pvio_blkif_request_indirect (id and sector_number sit at the
	 * same offsets in both). */
	struct pvio_blkif_request wire;
	enum pvio_blkback_op op;
	uint8_t rsp_op;			/* operation the response echoes */
	bool indirect;
	bool flush_after;		/* FLUSH_DISKCACHE with data: write, then flush */
	bool barrier;			/* WRITE_BARRIER: the queue's intake waits for it */
	bool in_flight;
	uint16_t nseg;			/* data segments mapped (0 until mapped) */
	uint16_t niov;			/* iov entries: segments adjacent in memory merged */
	/* The validated segments: wire.seg, or for an indirect request the
	 * descriptors copied once out of its indirect pages into iseg. */
	const struct pvio_blkif_request_segment *seg;
	struct pvio_blkif_request_segment *iseg; /* bb->max_indirect entries, or NULL */
	void *map;			/* batched mapping of all segment pages, or NULL */
	bool pmapped;			/* segments come from the persistent-grant cache */
	uint16_t *pg;			/* their cache slots: bb->segs_max entries */
	uint64_t bytes;
	struct timespec t0;		/* taken off the ring */
	struct iovec *iov;		/* bb->segs_max entries */
};

/*
 * A persistent grant (feature-persistent): a guest page mapped once and kept
 * for the life of the connection, so steady-state I/O maps nothing.
 */
#define BB_PGNT_MAX 1056		/* as Linux blkback's max_persistent_grants */
#define BB_PGNT_HASH 4096		/* open addressing, power of two > 2 * MAX */
struct bb_pgnt {
	uint32_t gref;
	void *va;			/* its mapped page (NULL while being mapped) */
	uint32_t users;			/* requests in flight using it: 0 or 1 */
	uint16_t batch;			/* the map call it came from (pg_batch index) */
	uint64_t last_use;		/* LRU tick */
};
/* One map call's pages (a request's new grants, side by side, so its
 * segments make one iovec).  Unmapped as a whole once none of its entries
 * is cached any more; until then an evicted entry's page stays mapped and
 * counts against the bound (pg_mapped <= BB_PGNT_MAX). */
struct bb_pgnt_batch {
	void *va;
	uint16_t count;			/* pages (0: slot free) */
	uint16_t live;			/* of them still cache entries */
};

/*
 * One queue (multi-queue-num-queues, io/blkif.h): a ring, its event
 * channel port, a request-slot set and a persistent-grant cache (as Linux
 * keeps them per ring).  All queues of a VBD run on the daemon's one loop
 * thread, so nothing here is locked.
 */
struct bb_queue {
	struct pvio_blkback *bb;
	unsigned idx;
	int lport;			/* our port on bb->ev (-1: not bound) */
	void *ring_va;
	struct pvio_ring_back br;
	/* persistent grants, when both ends offer them */
	struct bb_pgnt *pg;		/* BB_PGNT_MAX entries, pg_n in use */
	uint32_t pg_n;
	int16_t *pg_hash;		/* gref -> index in pg, -1 empty */
	struct bb_pgnt_batch *pg_batch;	/* BB_PGNT_MAX slots */
	uint32_t pg_mapped;		/* pages mapped by live batches */
	uint64_t pg_tick;
	struct pvio_blkback_req *reqs;	/* ring-size slots */
	struct pvio_blkback_req *free_reqs;
	uint32_t nr_reqs;
	void *seg_mem;			/* every slot's segment arrays, one allocation */
	uint32_t in_flight;
	bool need_push;
	bool in_work;
	bool starved;			/* requests pending but no free slot: re-run on completion */
	/* WRITE_BARRIER (feature-barrier): the barrier taken off this ring and
	 * not yet answered.  While set nothing more is taken from the ring;
	 * it is issued once it is the queue's only request in flight. */
	struct pvio_blkback_req *barrier;
	bool barrier_issued;
	ev_idle kick_idle;		/* re-run the ring when work was deferred */
	/* event intake (event.c): late EOI and storm backoff (evtchn_eoi),
	 * round budget */
	struct pvio_evtchn_eoi eoi;
	bool round_pending;		/* the round budget ran out: more on the next loop pass */
	/* adaptive polling (cfg.poll_us): the port stays masked and poll_idle
	 * looks at the ring until poll_until passes with nothing new */
	bool polling;
	double poll_until;		/* CLOCK_MONOTONIC seconds */
	ev_idle poll_idle;
	struct pvio_blkback_queue_stats *st; /* bb->qst[idx] */
};

struct pvio_blkback {
	struct ev_loop *loop;
	struct pvio_blkback_config cfg;
	char backend[BB_PATH_MAX];
	char frontend[BB_PATH_MAX];
	uint32_t domid;

	/* xenstore */
	struct xs_handle *xs;
	ev_io xs_io;
	ev_timer close_timer;		/* detach: bounded wait for the frontend */
	char watch_be[40], watch_fe[40];

	/* handshake state */
	enum pvio_blkback_state state;	/* what we last wrote to B/state */
	bool stale_frontend;		/* frontend was Connected at start: ignore its ring */
	bool refused;			/* keys refused; retry only after the frontend moves */
	bool detaching;			/* toolstack detach or destroy under way */
	bool force_close;		/* destroy: do not wait for the frontend */
	bool detached;			/* EV_DETACHED reported */
	bool gone;			/* backend dir removed: never write into it again */
	bool pending_disconnect;	/* disconnect once in-flight requests finish */
	int pending_next;		/* state to write after that disconnect */

	/* connection */
	bool connected;
	xengnttab_handle *xgt;
	struct pvio_evtchn *ev;		/* one handle, one port per queue */
	unsigned ring_order;		/* the same for every queue, as in Linux */
	enum bb_proto proto;
	bool discard;			/* feature-discard offered */
	bool persistent;		/* persistent grants, when both ends offer them */
	struct bb_queue *q;		/* nr_queues entries while connected */
	unsigned nr_queues;
	/* Segment limits of this connection: max_indirect as offered (0:
	 * none); segs_max = max(11, max_indirect), what each slot's arrays
	 * hold. */
	unsigned max_indirect;
	unsigned segs_max;

	/* request processing */
	bool paused;
	bool drained_reported;
	unsigned logged_bad;		/* invalid requests logged this connection (rate limit) */
	ev_prepare prepare;		/* push responses once per loop iteration */
	ev_idle broken_idle;		/* disconnect a broken ring outside the event-channel dispatch */

	struct pvio_blkback_stats st;
	/* per-queue counters of the current (or last) connection: they
	 * outlive the queues, so stats read after a disconnect still show
	 * how the guest spread its I/O */
	struct pvio_blkback_queue_stats qst[PVIO_BLKBACK_MAX_QUEUES];
	unsigned stat_queues;
};

/* blkback.c */
void bb_log(struct pvio_blkback *bb, enum pvio_blkback_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void bb_event(struct pvio_blkback *bb, enum pvio_blkback_event ev);
/* Unmap, answer @rsp_status (PVIO_BLKIF_RSP_*) on r->q, free the slot. */
void bb_finish(struct pvio_blkback *bb, struct pvio_blkback_req *r, int rsp_status);
/* Init/stop a queue's loop watchers (kick idle, EOI timer). */
void bb_queue_watchers_init(struct bb_queue *q);
void bb_queue_watchers_stop(struct bb_queue *q);

/* xenbus.c */
int bb_xenbus_start(struct pvio_blkback *bb);
void bb_xenbus_stop(struct pvio_blkback *bb);
void bb_xenbus_eval(struct pvio_blkback *bb);
/* The ring went bad (producer overrun): disconnect, backend Closing. */
void bb_xenbus_ring_broken(struct pvio_blkback *bb);
/* In-flight requests reached zero: finish a deferred disconnect. */
void bb_xenbus_idle(struct pvio_blkback *bb);

/* ring.c */
/* Map @nq rings of 1 << @order pages (refs[i * 16 + k]) and bind their
 * ports[i]; all or nothing. */
int bb_ring_connect(struct pvio_blkback *bb, unsigned order, unsigned nq, const uint32_t *refs,
		    const uint32_t *ports, enum bb_proto proto);
void bb_ring_disconnect(struct pvio_blkback *bb);
/* One round on queue @q: take up to BB_ROUND_BUDGET requests off its ring
 * (more: sets round_pending and schedules the next round).  Returns how
 * many were taken, or -1 if the ring was not looked at (not connected,
 * paused, closing, behind a barrier, or already in a round). */
int bb_ring_work(struct bb_queue *q);
/* Schedule a round on every queue from the loop (unpause, resume). */
void bb_ring_kick_all(struct pvio_blkback *bb);
void bb_ring_push(struct bb_queue *q);
/* Write one fully initialised response (native or x86_32 layout). */
void bb_ring_respond(struct bb_queue *q, uint64_t id, uint8_t op, int status);
/* A request of @q finished: issue a barrier waiting for it to be alone. */
void bb_ring_barrier_check(struct bb_queue *q);

/* event.c: the event-channel handler and what bounds it (XSA-332) */
void bb_event_init(struct bb_queue *q);
void bb_event_reset(struct bb_queue *q);
/* q->lport was just bound on bb->ev: late EOI from now on.  0 or -errno. */
int bb_event_bind(struct bb_queue *q);
void bb_event_notified(struct bb_queue *q);
/* Run a round the budget deferred (from the prepare and idle watchers). */
void bb_event_round(struct bb_queue *q);

/* map.c */
/* Map the @nind indirect pages of @r (refs @grefs), copy @nseg segment
 * descriptors out of them into r->iseg (once), and release the pages
 * again.  0, -EBUSY (a page is a persistent grant in use) or -errno. */
int bb_map_indirect(struct bb_queue *q, struct pvio_blkback_req *r, const uint32_t *grefs,
		    unsigned nind, unsigned nseg);
int bb_map_segments(struct bb_queue *q, struct pvio_blkback_req *r);
void bb_unmap_segments(struct bb_queue *q, struct pvio_blkback_req *r);
/* The persistent-grant cache's arrays (at connect, when negotiated). */
int bb_pgnt_alloc(struct bb_queue *q);
/* Drop every persistent mapping (disconnect). */
void bb_pgnt_flush(struct bb_queue *q);

#endif
