/* SPDX-License-Identifier: MIT */
/*
 * pvio/blkfront.h — the guest side of the Xen block protocol (blkif),
 * freestanding.
 *
 * The core is plain C with no libc: it includes only <stdint.h>,
 * <stddef.h> and <stdbool.h> and reaches every OS service (memory, grants,
 * event channels, xenstore, waiting, time) through a struct
 * pvio_blkfront_ops that the platform fills.  pvio ships one platform,
 * xensim (pvio/blkfront_xensim.h); a guest kernel or unikernel writes its
 * own.
 *
 * Data path: every ring request carries up to 11 segments of granted 4 KiB
 * bounce pages owned by blkfront, or, with indirect descriptors (the
 * backend's feature-max-indirect-segments, up to cfg.max_indirect_segments),
 * up to that many segments listed in an indirect page, so a 1 MiB I/O is
 * one request.  The bounce pages form a pool granted once to the backend
 * (read-write, for the device's life, so a persistent-grant backend maps
 * each once); a request borrows pages from it.  User data is copied in
 * (writes) and out (reads), so callers' buffers need no alignment and no
 * guest page is ever shared that does not belong to blkfront (XSA-403).
 *
 * Zero-copy: a caller may instead allocate its I/O buffers from blkfront
 * (pvio_blkfront_buf_alloc): whole pages granted once to the backend.
 * An I/O whose buffer starts on a page of such a buffer names those pages
 * in its ring requests directly, with no copy; a persistent-grant backend
 * maps each once.  The caller chose to share exactly these pages, so no
 * other data of the guest is exposed.
 *
 * Multi-queue (io/blkif.h multi-queue-max-queues / -num-queues): with
 * cfg.max_queues > 1 and a backend that offers more than one queue,
 * min(the two) rings are set up, each with its own event channel, keyed
 * exactly as Linux blkfront does (multi-queue-num-queues, then
 * queue-N/ring-ref[K] and queue-N/event-channel; ring-page-order at the
 * top).  With one queue the flat keys are written as before.  Request
 * slots and bounce pages are shared; each user I/O goes to one queue:
 * round-robin with pvio_blkfront_submit(), or the one the caller names
 * with pvio_blkfront_submit_on() (e.g. one queue per guest CPU).
 *
 * Sector sizes: `sectors` and every sector number here are 512-byte units
 * (as Linux); the backend's `sector-size` (a power of two, 512..32768)
 * is the logical block every I/O must be a whole number of, and
 * `physical-sector-size` (a power of two, at least that) is reported.
 *
 * The backend is hostile: each response is copied out of the ring once and
 * validated (id in range and in flight, operation matches, status known,
 * producer index not ahead of the ring); each xenstore value is parsed and
 * range-checked.  A backend that breaks the protocol disconnects the device:
 * every pending request completes with -EIO (PVIO_BLKFRONT_EIO) and later
 * submissions fail the same way; the guest never crashes.
 *
 * Threading: a struct pvio_blkfront is used by one thread at a time
 * (no locks inside).  Completion callbacks run inside
 * pvio_blkfront_poll() / pvio_blkfront_process() and the sync calls; they
 * may submit new I/O but must not close the device.
 *
 * Errors: functions return 0 (or a count) or a negative errno (Linux
 * numbers, spelled PVIO_BLKFRONT_E* here because errno.h is not
 * freestanding).
 */
#ifndef PVIO_BLKFRONT_H
#define PVIO_BLKFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PVIO_BLKFRONT_ENOENT 2
#define PVIO_BLKFRONT_EIO 5
#define PVIO_BLKFRONT_EAGAIN 11
#define PVIO_BLKFRONT_ENOMEM 12
#define PVIO_BLKFRONT_EBUSY 16
#define PVIO_BLKFRONT_ENODEV 19
#define PVIO_BLKFRONT_EINVAL 22
#define PVIO_BLKFRONT_ENOSPC 28
#define PVIO_BLKFRONT_EROFS 30
#define PVIO_BLKFRONT_ERANGE 34
#define PVIO_BLKFRONT_EPROTO 71
#define PVIO_BLKFRONT_EOPNOTSUPP 95
#define PVIO_BLKFRONT_ETIMEDOUT 110

/* Bits returned by ops->wait and accepted by pvio_blkfront_process(). */
#define PVIO_BLKFRONT_EV_EVTCHN 1u /* one of our event channels (one per queue) fired */
#define PVIO_BLKFRONT_EV_XS 2u	   /* a xenstore watch fired */

/*
 * Platform services.  Every member is required unless marked optional.
 * ctx is passed back unchanged.  All return 0 or a negative errno unless
 * said otherwise.
 */
struct pvio_blkfront_ops {
	void *ctx;
	/* Private memory for blkfront's own bookkeeping (never shared);
	 * zeroed.  NULL on failure. */
	void *(*zalloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	/* @n physically contiguous, zeroed 4 KiB guest pages: *va their
	 * address, *gfn the first frame. */
	int (*page_alloc)(void *ctx, unsigned n, void **va, uint64_t *gfn);
	/* Free pages from page_alloc; every grant of them has been ended. */
	void (*page_free)(void *ctx, void *va, unsigned n);
	/* Allocate a grant ref and grant domain @to access to frame @gfn. */
	int (*grant)(void *ctx, uint16_t to, uint64_t gfn, bool readonly, uint32_t *ref);
	/* End access through @ref and release the ref.  -EBUSY while the
	 * peer still has it mapped: the entry and ref stay as they were and
	 * the page must not be reused (blkfront then leaks it). */
	int (*end_grant)(void *ctx, uint32_t ref);
	/* Allocate an unbound event-channel port that domain @remote may bind. */
	int (*evtchn_alloc)(void *ctx, uint16_t remote, uint32_t *port);
	int (*evtchn_notify)(void *ctx, uint32_t port);
	void (*evtchn_close)(void *ctx, uint32_t port);
	/* Read @path into @buf (NUL-terminated, at most @size - 1 bytes).
	 * -ENOENT if absent, -ENOSPC if longer than @size - 1. */
	int (*xs_read)(void *ctx, const char *path, char *buf, size_t size);
	/* Write @n keys atomically (one transaction, retried on conflict). */
	int (*xs_write_many)(void *ctx, unsigned n, const char *const *paths,
			     const char *const *vals);
	/* Watch @path; firings are reported by wait() as PVIO_BLKFRONT_EV_XS. */
	int (*xs_watch)(void *ctx, const char *path);
	void (*xs_unwatch)(void *ctx, const char *path);
	/* Block up to @timeout_ms (-1: forever, 0: just look) for an event on
	 * our port or a watch.  Returns a mask of PVIO_BLKFRONT_EV_* (0 on
	 * timeout) or a negative errno.  Spurious wake-ups are fine. */
	int (*wait)(void *ctx, int timeout_ms);
	/* Optional: a monotonic clock in ms, for handshake timeouts.  NULL:
	 * handshakes wait without a deadline. */
	uint64_t (*now_ms)(void *ctx);
	/* Optional: copy @n bytes (a fast memcpy). Used only for I/O data
	 * between the caller's buffers and the granted bounce pages, never
	 * for ring entries; NULL: a word-at-a-time loop. */
	void (*copy)(void *ctx, void *dst, const void *src, size_t n);
	/* Optional: remove @path and everything under it (absent is fine).
	 * Used to drop queue-N keys of an earlier multi-queue connection
	 * before publishing a single ring, which a backend would otherwise
	 * refuse as ambiguous.  NULL: not done. */
	int (*xs_rm)(void *ctx, const char *path);
	/* Optional: a monotonic clock in µs, for cfg.poll_us.  NULL: no
	 * polling. */
	uint64_t (*now_us)(void *ctx);
};

/* Tunables; zero means the default. */
struct pvio_blkfront_config {
	/* Frontend directory, e.g. "device/vbd/51712" or an absolute
	 * "/local/domain/3/device/vbd/51712". Required. */
	const char *frontend_dir;
	unsigned max_ring_order;   /* 0..4, capped by the backend; default 4 */
	unsigned max_slots;	   /* requests in flight, default 32, max 256 */
	int handshake_timeout_ms;  /* default 30000; needs ops->now_ms */
	bool ring_order_zero;	   /* force a 1-page ring (tests) */
	bool no_persistent;	   /* do not offer feature-persistent */
	/* Most segments per indirect request: 0 (the default) = never send
	 * BLKIF_OP_INDIRECT; up to 4096 (8 indirect pages).  Used as
	 * min(this, the backend's feature-max-indirect-segments) when that is
	 * more than 11.  256 makes a 1 MiB I/O one request.  The bounce pool
	 * holds max(max_slots * 11, 4 * the negotiated limit) pages (4 MiB
	 * with 256), plus one indirect page per slot. */
	unsigned max_indirect_segments;
	/* Most queues (rings) to use: 0 or 1 = one ring (the flat keys, as
	 * before multi-queue); up to PVIO_BLKFRONT_MAX_QUEUES.  Used as
	 * min(this, the backend's multi-queue-max-queues). */
	unsigned max_queues;
	/* Hybrid polling: pvio_blkfront_poll() with I/O in flight first
	 * watches the rings for up to this many µs, with their response
	 * events left unarmed (so the backend sends no notification), and
	 * blocks only if nothing came: a reply that comes in time costs no
	 * wake-up on either side, at the price of a spinning CPU.  0 (the
	 * default): block at once.  Needs ops->now_us; at most 1000000. */
	unsigned poll_us;
};

#define PVIO_BLKFRONT_MAX_QUEUES 16

/* What the backend published, validated. */
struct pvio_blkfront_info {
	uint64_t sectors;	/* disk size in 512-byte units */
	uint32_t sector_size;	/* logical block: a power of two, 512..32768 */
	uint32_t physical_sector_size; /* a power of two >= sector_size */
	uint32_t info;		/* VDISK_* bits (4 = read-only) */
	bool readonly;
	bool flush;		/* feature-flush-cache */
	bool barrier;		/* feature-barrier */
	bool persistent;	/* both ends use persistent grants */
	bool discard;		/* feature-discard */
	uint32_t discard_granularity;	/* bytes; 0 if not given */
	unsigned ring_order;	/* negotiated */
	unsigned ring_slots;	/* entries in the shared ring */
	unsigned max_inflight;	/* request slots (one ring request each) */
	unsigned max_indirect_segments; /* negotiated segments per indirect request;
					 * 0: indirect not used (11 per request) */
	unsigned nr_queues;	/* rings in use (1 unless multi-queue was negotiated) */
	unsigned max_queues_offered; /* the backend's multi-queue-max-queues (0: absent) */
	uint16_t backend_id;
	uint32_t devid;
};

/* Statistics since open. */
struct pvio_blkfront_stats {
	uint64_t ios_submitted, ios_completed, ios_failed;
	uint64_t ring_requests, ring_responses, notifies;
	uint64_t indirect_requests; /* ring requests sent as BLKIF_OP_INDIRECT */
	uint64_t reconnects, resubmitted;
	uint64_t leaked_pages; /* grants the backend never released */
	uint64_t zero_copy_requests; /* ring requests naming a caller's buffer (no bounce) */
	uint64_t polls, poll_hits;   /* cfg.poll_us: polls begun / ended by a completion */
};

/*
 * Statistics of one queue (ring) since open, by queue index: a reconnect
 * with fewer queues leaves the higher indexes as they were.  Summed over
 * every index they give the ring_requests, ring_responses and notifies of
 * struct pvio_blkfront_stats.
 */
struct pvio_blkfront_queue_stats {
	uint64_t ring_requests;	 /* requests produced on this ring */
	uint64_t ring_responses; /* valid responses consumed from it */
	uint64_t notifies;	 /* notifications sent on its event channel */
	/* Event-driven passes (pvio_blkfront_process with
	 * PVIO_BLKFRONT_EV_EVTCHN) that found responses on this ring.  The
	 * platform's wait() says only that one of our channels fired, not
	 * which, so this counts the events this queue's responses were
	 * handled on (never more than the events taken). */
	uint64_t event_rounds;
};

enum pvio_blkfront_op {
	PVIO_BLKFRONT_READ = 0,
	PVIO_BLKFRONT_WRITE = 1,
	PVIO_BLKFRONT_FLUSH = 2,
	PVIO_BLKFRONT_DISCARD = 3,	/* drop [sector, sector + len/512): buf unused;
					 * -EOPNOTSUPP without feature-discard */
};

struct pvio_blkfront;
struct pvio_blkfront_io;

/* Completion: @status is 0, or a negative errno (-EIO: the device failed
 * or disconnected; -EOPNOTSUPP: the backend refused the operation). */
typedef void pvio_blkfront_cb(struct pvio_blkfront_io *io, int status, void *arg);

/*
 * One asynchronous I/O.  Owned by the caller, who fills the public
 * fields and keeps it (and @buf) alive until the callback runs; blkfront
 * uses the private fields meanwhile and splits it into ring requests of
 * at most 11 pages, or of the negotiated indirect segment count.
 */
struct pvio_blkfront_io {
	/* public */
	enum pvio_blkfront_op op;
	uint64_t sector;       /* 512-byte units */
	void *buf;	       /* any alignment; ignored for FLUSH */
	size_t len;	       /* bytes, a multiple of the sector size; 0 for FLUSH */
	pvio_blkfront_cb *cb;
	void *arg;
	/* private to blkfront */
	struct pvio_blkfront_io *next_;
	size_t issued_;	    /* bytes handed to ring requests */
	size_t done_;	    /* bytes completed */
	unsigned chunks_;   /* ring requests in flight */
	int status_;
	bool inq_;	    /* still has chunks to split off */
	unsigned queue_;    /* the queue its requests go on */
};

/*
 * pvio_blkfront_open - connect to the backend of cfg->frontend_dir:
 * read and validate the backend's features, grant a ring of
 * min(backend max, cfg max, 4) order, publish ring refs, event channel
 * and protocol in one transaction (Initialised), wait for Connected, read
 * and validate the disk geometry, and go Connected.  The ops struct is
 * copied.  On success *out owns everything; on failure nothing is left
 * allocated except pages whose grants the backend would not release.
 * -ENOENT no such device, -EPROTO garbage from the backend,
 * -ETIMEDOUT it did not answer, -ENODEV it closed.
 */
int pvio_blkfront_open(const struct pvio_blkfront_ops *ops,
		       const struct pvio_blkfront_config *cfg,
		       struct pvio_blkfront **out);

/*
 * pvio_blkfront_close - wait for in-flight I/O (failing it with -EIO if
 * the device is dead), go Closing, wait for the backend to close, go
 * Closed, end every grant (pages still mapped by the backend are leaked,
 * never reused) and free.  Returns 0, or -EBUSY if some page had to be
 * leaked, or -ETIMEDOUT if the backend did not close (resources freed
 * all the same where their grants could be ended).
 */
int pvio_blkfront_close(struct pvio_blkfront *bf);

/* pvio_blkfront_get_info - the validated geometry and features. */
void pvio_blkfront_get_info(const struct pvio_blkfront *bf, struct pvio_blkfront_info *info);
/* pvio_blkfront_get_stats - counters since open. */
void pvio_blkfront_get_stats(const struct pvio_blkfront *bf, struct pvio_blkfront_stats *st);
/* pvio_blkfront_get_queue_stats - counters of queue @queue since open
 * (see struct pvio_blkfront_queue_stats).  0, or -EINVAL if @queue is not
 * below PVIO_BLKFRONT_MAX_QUEUES. */
int pvio_blkfront_get_queue_stats(const struct pvio_blkfront *bf, unsigned queue,
				  struct pvio_blkfront_queue_stats *st);
/* pvio_blkfront_is_dead - true once the device has disconnected for good. */
bool pvio_blkfront_is_dead(const struct pvio_blkfront *bf);
/* pvio_blkfront_inflight - user I/Os submitted and not yet completed. */
unsigned pvio_blkfront_inflight(const struct pvio_blkfront *bf);

/*
 * pvio_blkfront_submit - queue @io.  Returns 0 (the callback will run
 * exactly once, from a later poll/process call, never from inside
 * submit) or a negative errno without calling the callback: -EINVAL
 * (length/alignment/op), -ERANGE (beyond the disk), -EROFS (write to a
 * read-only disk), -EIO (device dead).  A FLUSH on a backend without
 * flush or barrier support completes with 0 (the disk has no volatile
 * cache to flush).
 */
int pvio_blkfront_submit(struct pvio_blkfront *bf, struct pvio_blkfront_io *io);
/*
 * pvio_blkfront_submit_on - as pvio_blkfront_submit, on queue @queue
 * (taken modulo the queues in use, so a caller may pass its CPU number;
 * the count can change across a backend restart).  Requests of one queue
 * are produced in submission order; there is no order between queues.
 */
int pvio_blkfront_submit_on(struct pvio_blkfront *bf, struct pvio_blkfront_io *io,
			    unsigned queue);

/*
 * pvio_blkfront_process - handle @events (PVIO_BLKFRONT_EV_* bits, from
 * the platform's own event loop): consume and validate responses, run
 * callbacks, follow backend state changes (reconnect, close), push queued
 * requests.  Returns the number of I/Os completed, or a negative errno
 * for a fatal platform error.
 */
int pvio_blkfront_process(struct pvio_blkfront *bf, unsigned events);

/*
 * pvio_blkfront_poll - ops->wait(@timeout_ms) then process.  Returns the
 * number of I/Os completed (0 on timeout) or a negative errno.
 */
int pvio_blkfront_poll(struct pvio_blkfront *bf, int timeout_ms);

/*
 * Synchronous I/O: submit and drive the event loop until it completes.
 * @sector in 512-byte units; @len a multiple of the sector size.
 * Return 0 or the I/O's negative errno.
 */
int pvio_blkfront_read(struct pvio_blkfront *bf, uint64_t sector, void *buf, size_t len);
int pvio_blkfront_write(struct pvio_blkfront *bf, uint64_t sector, const void *buf, size_t len);
int pvio_blkfront_flush(struct pvio_blkfront *bf);
/* Discard (trim) @len bytes at @sector: the backend may drop the data and
 * later reads return zeros. -EOPNOTSUPP without feature-discard. */
int pvio_blkfront_discard(struct pvio_blkfront *bf, uint64_t sector, size_t len);

/*
 * pvio_blkfront_buf_alloc - @len bytes (rounded up to whole 4 KiB pages,
 * zeroed, page-aligned) of guest memory granted read-write to the
 * backend until close.  An I/O whose buf starts on a page boundary inside
 * such a buffer (and ends inside it) moves its data through these pages:
 * no bounce copy.  Any other I/O is bounced as usual.  The backend can
 * read and write these pages at any time, so keep only I/O data in them.
 * At most 64 buffers at once.  -EINVAL (len 0), -ENOSPC (no entry free),
 * -EIO (device dead), or the platform's allocation/grant error.
 */
int pvio_blkfront_buf_alloc(struct pvio_blkfront *bf, size_t len, void **buf);
/*
 * pvio_blkfront_buf_free - give back a buffer from pvio_blkfront_buf_alloc.
 * -EBUSY while an I/O on it is still in flight (nothing changes), -EINVAL
 * if @buf is not one.  A persistent-grant backend keeps its mappings
 * until it disconnects, so pages it still holds are released at close.
 */
int pvio_blkfront_buf_free(struct pvio_blkfront *bf, void *buf);

/* pvio_blkfront_state_name - a xenbus state number as text. */
const char *pvio_blkfront_state_name(int state);

#endif /* PVIO_BLKFRONT_H */
