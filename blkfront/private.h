/* SPDX-License-Identifier: MIT */
/* blkfront internals: not installed, no exported prefix beyond bf_. */
#ifndef PVIO_BLKFRONT_PRIVATE_H
#define PVIO_BLKFRONT_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pvio/blkfront.h>
#include <pvio/blkif_wire.h>
#include <pvio/ring.h>

#define BF_SEGS PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST /* segments of a direct request */
#define BF_PAGE 4096u
#define BF_MAX_SLOTS 256u
/* Indirect: at most 8 descriptor pages of 512 segments each. */
#define BF_MAX_INDIRECT_SEGS \
	(PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME)
#define BF_IND_PER_PAGE PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME
/* Largest logical block accepted: one that a direct request (11 pages)
 * can still carry whole. */
#define BF_MAX_SECTOR_SIZE 32768u
/* Bounce pages are allocated and granted in blocks of this many. */
#define BF_POOL_BLOCK 64u
/* Caller's zero-copy buffers (pvio_blkfront_buf_alloc) at most. */
#define BF_MAX_BUFS 64u
/* A buffer's grant ref that has been ended (refs are < 2^31 on Xen). */
#define BF_REF_ENDED 0xffffffffu
#define BF_PATH 128

/* xenbus states */
enum {
	XB_UNKNOWN = 0,
	XB_INITIALISING = 1,
	XB_INITWAIT = 2,
	XB_INITIALISED = 3,
	XB_CONNECTED = 4,
	XB_CLOSING = 5,
	XB_CLOSED = 6,
	XB_GONE = 7, /* pseudo-state: the state key is absent */
};

/* Device life cycle as blkfront sees it. */
enum bf_phase {
	BF_CONNECTED,	 /* ring live, I/O flows */
	BF_RECONNECTING, /* ring torn down, waiting for the backend's InitWait */
	BF_DEAD,	 /* disconnected for good: everything fails with -EIO */
};

/*
 * A request slot: one chunk of a user I/O, on the ring as one request at
 * a time; its id is the slot index.  Life cycle: FREE -> QUEUED (prepared,
 * waiting for ring space) -> RING (produced on the ring) -> FREE on a
 * valid response.  On reconnect every RING slot goes back to QUEUED and is
 * re-produced in submission order.
 *
 * A chunk's data lives in pages of the bounce pool (granted once, for the
 * device's life).  A chunk is at most what one ring request could carry
 * when it was split; if a reconnect brings a backend that takes fewer
 * segments, the chunk goes out as several requests one after the other
 * (sub/sub_n), each re-produced from QUEUED when the previous one is
 * answered, so a slot never has two requests on the ring.
 */
enum bf_slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_RING };

struct bf_slot {
	enum bf_slot_state state;
	uint8_t op;		      /* PVIO_BLKIF_OP_* (READ/WRITE also when sent indirect) */
	uint8_t q;		      /* queue its requests go on (< bf->nq) */
	bool indirect;		      /* the request on the ring is BLKIF_OP_INDIRECT */
	uint64_t sector;	      /* 512-byte units */
	uint64_t discard_sectors;     /* BLKIF_OP_DISCARD: how many */
	uint32_t bytes;		      /* payload bytes of this chunk */
	size_t io_off;		      /* where in io->buf the chunk starts */
	struct pvio_blkfront_io *io;  /* owner */
	struct bf_slot *prev, *next;  /* in-flight list, submission order */
	uint32_t npages;	      /* pages holding the chunk */
	uint32_t *page;		      /* their pool indices (bf->slot_pages entries) */
	struct bf_buf *zbuf;	      /* or: the caller's zero-copy buffer holding it */
	uint32_t zpage;		      /* ... from this page of it on (page[] unused) */
	uint32_t sub, sub_n;	      /* pages answered so far / in the request on the ring */
	uint8_t *ind;		      /* indirect descriptor pages (bf->ind_pages), or NULL */
	uint32_t ind_gref[PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	unsigned ind_ngrants;	      /* ind_gref[0..ind_ngrants) are live */
};

/* One ring (queue): its pages, grants and event channel. */
struct bf_queue {
	void *ring_va;
	uint32_t ring_ref[1u << PVIO_RING_MAX_ORDER];
	unsigned ring_nrefs; /* refs granted so far */
	bool ring_live;	     /* ring pages allocated (maybe still granted) */
	uint32_t port;
	bool port_live;
	bool full;	     /* bf_kick: no room left on this ring this time */
	struct pvio_ring_front fr;
};

/* A block of BF_POOL_BLOCK bounce pages, each granted to the backend. */
struct bf_block {
	uint8_t *va;
	uint32_t gref[BF_POOL_BLOCK];
	unsigned ngrants;	      /* gref[0..ngrants) are live */
};

/* A caller's zero-copy buffer: pages granted once to the backend, which
 * ring requests name directly (no bounce copy). */
struct bf_buf {
	uint8_t *va;		/* NULL: entry unused */
	unsigned npages;
	uint32_t *gref;		/* npages refs; BF_REF_ENDED once ended */
	bool retired;		/* freed by the caller; some grant still held */
};

struct pvio_blkfront {
	struct pvio_blkfront_ops ops;
	char fdir[BF_PATH]; /* frontend directory (absolute or relative) */
	char bdir[BF_PATH]; /* backend directory, absolute */
	char bstate_path[BF_PATH];
	uint16_t backend_id;
	uint32_t devid;
	enum bf_phase phase;
	int handshake_timeout_ms;
	unsigned own_max_order;
	bool no_persistent;		/* cfg: do not offer feature-persistent */
	unsigned own_max_indirect;	/* cfg: 0 = never send indirect requests */
	unsigned seg_limit;		/* segments per ring request now: 11 or the indirect count */
	bool geometry_known;		/* connected once: the sector size must not change */

	/* rings: one per queue (multi-queue), all of ring_order */
	unsigned ring_order; /* pages = 1 << ring_order */
	unsigned own_max_queues;	/* cfg.max_queues, at least 1 */
	unsigned poll_us;		/* cfg.poll_us (0 without ops.now_us) */
	bool spinning;			/* polling: leave rsp_event unarmed */
	unsigned nq;			/* queues of this connection */
	unsigned max_queues_offered;	/* backend's multi-queue-max-queues (0: absent) */
	unsigned next_q;		/* round-robin for pvio_blkfront_submit */
	struct bf_queue q[PVIO_BLKFRONT_MAX_QUEUES];

	/* geometry */
	struct pvio_blkfront_info info;
	bool flush_ok; /* backend supports flush or barrier */
	uint8_t flush_op;

	/* slots */
	unsigned nslots;
	unsigned slot_pages;		/* pages one chunk may hold: max(11, own_max_indirect) */
	unsigned ind_pages;		/* indirect pages per slot (0: indirect never used) */
	bool ind_live;			/* the slots' indirect pages are allocated and granted */
	uint32_t *slot_page_mem;	/* nslots * slot_pages pool indices */
	struct bf_slot *slots;
	/* bounce pool: pages granted once, lent to slots chunk by chunk */
	struct bf_block *blocks;	/* max_blocks entries, nblocks allocated */
	unsigned nblocks, max_blocks;
	uint32_t *pool_free;		/* stack of free page indices */
	uint32_t pool_nfree;
	struct bf_slot *free_head;    /* singly linked through next */
	struct bf_slot *fl_head, *fl_tail; /* in-flight list */
	unsigned nqueued;	      /* slots in SLOT_QUEUED */
	struct bf_buf bufs[BF_MAX_BUFS];

	/* user I/Os not yet fully split into slots (FIFO) */
	struct pvio_blkfront_io *q_head, *q_tail;
	/* I/Os finished and waiting for their callback (FIFO) */
	struct pvio_blkfront_io *done_head, *done_tail;
	unsigned inflight_ios;

	struct pvio_blkfront_stats st;
	struct pvio_blkfront_queue_stats qst[PVIO_BLKFRONT_MAX_QUEUES]; /* by queue index */
};

/* util.c */
void bf_memcpy(void *dst, const void *src, size_t n);
size_t bf_strlen(const char *s);
/* Build "a/b" into out; -ENOSPC if it does not fit. */
int bf_path(char *out, size_t size, const char *a, const char *b);
int bf_fmt_u64(char *out, size_t size, uint64_t v);
/* Parse a whole decimal string: digits only, no sign or junk, <= max. */
int bf_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* Read @dir/@key as a number <= max; -ENOENT if absent, -EPROTO if garbage. */
int bf_read_u64(struct pvio_blkfront *bf, const char *dir, const char *key, uint64_t max,
		uint64_t *out);
int bf_read_bool(struct pvio_blkfront *bf, const char *dir, const char *key, bool *out);
/* The backend's state: XB_* or -ENOENT / -EPROTO. */
int bf_backend_state(struct pvio_blkfront *bf);
int bf_write_state(struct pvio_blkfront *bf, int state);
uint64_t bf_now(struct pvio_blkfront *bf);

/* xenbus.c */
int bf_connect(struct pvio_blkfront *bf, bool initial);
void bf_ring_teardown(struct pvio_blkfront *bf);
int bf_handle_backend_change(struct pvio_blkfront *bf);
/* Wait until the backend state is one of the bits in @mask (1u << XB_*). */
int bf_wait_backend(struct pvio_blkfront *bf, unsigned mask, int *state);

/* io.c */
int bf_slots_init(struct pvio_blkfront *bf);
/* Grow the bounce pool (and grant the slots' indirect pages) for the
 * segment limit just negotiated. */
int bf_pool_prepare(struct pvio_blkfront *bf);
void bf_slots_fini(struct pvio_blkfront *bf);
void bf_kick(struct pvio_blkfront *bf);
int bf_consume(struct pvio_blkfront *bf);
/* Fail everything with -EIO and mark the device dead; says why. */
void bf_disconnect(struct pvio_blkfront *bf);
/* After reconnect: every RING slot goes back to QUEUED (same order). */
void bf_requeue_inflight(struct pvio_blkfront *bf);
int bf_run_callbacks(struct pvio_blkfront *bf);

#endif
