/* SPDX-License-Identifier: MIT */
/*
 * pvio/blkback.h — the blkif backend core a daemon (tapdisk) embeds.
 *
 * One struct pvio_blkback serves one VBD: it runs the backend half of the
 * vbd xenbus handshake (docs/block-path.md, PROTOCOL-NOTES §3), maps the
 * frontend's ring, binds its event channel, copies every request off the
 * ring exactly once (XSA-155), validates the copy, maps its grant refs in one
 * batched call and hands the I/O to the daemon through an ops table.  The
 * daemon completes each request asynchronously with pvio_blkback_complete().
 *
 * Everything runs on the caller's libev loop, on one thread.  Nothing the
 * frontend writes (xenstore keys, ring indices, requests) can make this
 * library abort: bad keys refuse the connection (logged, backend Closing),
 * bad requests get BLKIF_RSP_ERROR / BLKIF_RSP_EOPNOTSUPP responses, a
 * producer index that runs ahead of the ring disconnects the VBD.
 *
 * Units: sectors are 512 bytes everywhere (sector_number, first/last_sect,
 * the `sectors` key), whatever the image's logical or physical sector size.
 *
 * Protocol decisions (see PROTOCOL-NOTES §1):
 *  - `protocol` absent: native x86_64.  Linux blkback defaults to x86_32 for
 *    very old 32-bit PV guests, but every frontend we serve (pvio blkfront,
 *    Mini-OS and Unikraft, which write no key) is 64-bit; guessing x86_32
 *    would misparse all of them.
 *  - `protocol` = "x86_32-abi": translated (requests copied in the x86_32
 *    layout, converted to the native struct; responses written in the
 *    x86_32 layout).  Any other value: refused.
 *  - Data transfer: grant map, one pvio_gnt_map_batch() call per request
 *    (all its segments), unmapped before the response is produced.
 *  - Indirect descriptors (feature-max-indirect-segments, BLKIF_OP_INDIRECT):
 *    offered up to cfg.max_indirect_segments (tapdisk: 256, as Linux).  The
 *    indirect pages are mapped in one batch (or through the persistent-grant
 *    cache), their segment descriptors copied out once, the pages released,
 *    and only the private copy is validated and used (XSA-155).  The
 *    response echoes indirect_op (READ/WRITE), as Linux blkback does and
 *    Linux blkfront checks.
 *  - Multi-queue (multi-queue-max-queues / multi-queue-num-queues): offered
 *    up to cfg.max_queues (0: the key is not published and only the flat
 *    single-ring layout is read, as an old backend).  With num-queues N > 1
 *    the frontend's keys are read from queue-0 .. queue-(N-1) exactly as
 *    Linux blkfront writes them (ring-ref[K] and event-channel per queue,
 *    ring-page-order shared at the top); every queue gets its own ring,
 *    port, request slots and persistent-grant cache (as Linux keeps them
 *    per ring) and all are served on the caller's one loop thread, so there
 *    is no lock anywhere.  Refused with a log: num-queues 0, above the
 *    offer, not a number, a missing or garbage queue-N key, and queue-N
 *    keys next to a num-queues of 1 (which layout would be meant?).
 *  - Barriers (feature-barrier 1, BLKIF_OP_WRITE_BARRIER), per queue, as
 *    Linux blkback did: intake on that queue stops at the barrier; once
 *    every request taken before it has completed, its data (if any) is
 *    written and then flushed (so it and everything before it is durable),
 *    only then is it answered and the queue's intake resumed.
 *  - Sector sizes: `sectors`, sector_number and first/last_sect are always
 *    in 512-byte units (Linux's reading of io/blkif.h); `sector-size` is the
 *    logical block (512 or 4096).  With 4096, requests whose start or any
 *    segment is not a whole 4096-byte block are refused (logged).
 *
 * Memory: every request slot (one per ring entry) gets its segment arrays
 * at connect time, sized for the largest request offered; nothing is
 * allocated per request.  At the largest ring (order 4, 512 slots) and 256
 * indirect segments that is 512 * 256 * 26 bytes = 3.3 MiB per queue (a
 * frontend asking for 16 such queues costs 53 MiB; the offer bounds it).
 *
 * All functions return 0 or a negative errno unless stated, and leave errno
 * alone.
 */
#ifndef PVIO_BLKBACK_H
#define PVIO_BLKBACK_H

#include <stdint.h>
#include <sys/uio.h>

struct ev_loop;
struct pvio_blkback;

/* The most segments one request can carry: what a daemon's per-request
 * arrays must hold (BLKIF_MAX_SEGMENTS_PER_REQUEST without indirect). */
#define PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS 256
#define PVIO_BLKBACK_MAX_SEGMENTS PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS
/* Longest adaptive-polling window (cfg.poll_us). */
#define PVIO_BLKBACK_MAX_POLL_US 10000
/* The most queues (rings) one VBD can have. */
#define PVIO_BLKBACK_MAX_QUEUES 16
struct pvio_blkback_req;

/* What a request asks the daemon to do. */
enum pvio_blkback_op {
	PVIO_BLKBACK_READ = 0,  /* fill the iovecs from the image */
	PVIO_BLKBACK_WRITE = 1, /* write the iovecs to the image */
	PVIO_BLKBACK_FLUSH = 2, /* make completed writes durable (no iovecs) */
	PVIO_BLKBACK_DISCARD = 3, /* drop the data of a range: one iovec, iov_base NULL,
				   * iov_len the byte count; reads then return zeros */
	PVIO_BLKBACK_NR_OPS
};

/*
 * I/O submission, implemented by the daemon (const table, SPDK style).
 *
 * submit (required): start @op on the image at byte @offset (a multiple of
 *   512, and of the logical sector size) over @iov[0..@iovcnt) (guest
 *   memory, mapped for the lifetime of the request; NULL/0 for a flush;
 *   @iovcnt at most max(11, cfg.max_indirect_segments), each iovec inside
 *   one 4 KiB page).  Return 0 when the request was taken: the
 *   daemon must then call pvio_blkback_complete(@req, status) exactly once,
 *   possibly from inside submit.  A negative return means "not taken": the
 *   core completes the request with an error itself.  The iovec array stays
 *   valid until completion.
 * kick (optional — may be NULL): called after a batch of submit calls, so
 *   an engine can hand the whole batch to the kernel in one system call.
 */
struct pvio_blkback_io_ops {
	int (*submit)(void *ctx, struct pvio_blkback_req *req, enum pvio_blkback_op op,
		      uint64_t offset, const struct iovec *iov, int iovcnt);
	void (*kick)(void *ctx);
};

/* Events reported to the daemon through pvio_blkback_config.on_event. */
enum pvio_blkback_event {
	PVIO_BLKBACK_EV_CONNECTED = 1,	 /* ring mapped, backend Connected (4) */
	PVIO_BLKBACK_EV_DISCONNECTED,	 /* ring unmapped (frontend closed, broke the ring, ...) */
	PVIO_BLKBACK_EV_DRAINED,	 /* paused and nothing in flight any more */
	PVIO_BLKBACK_EV_DETACHED,	 /* toolstack detach / destroy done: state Closed (6), stop now */
};

enum pvio_blkback_log_level {
	PVIO_BLKBACK_LOG_ERR = 3,
	PVIO_BLKBACK_LOG_WARN = 4,
	PVIO_BLKBACK_LOG_INFO = 6,
	PVIO_BLKBACK_LOG_DEBUG = 7,
};

struct pvio_blkback_config {
	/* Backend dir, e.g. /local/domain/0/backend/vbd3/1/51712 (copied). */
	const char *backend;
	/* Disk size in 512-byte sectors (a whole number of logical sectors);
	 * logical sector size (`sector-size`: 512 or 4096; 0 means 512);
	 * physical sector size in bytes (a power of two; 0 or less than the
	 * logical size means the logical size). */
	uint64_t sectors;
	uint32_t sector_size;
	uint32_t physical_sector_size;
	/* Nonzero: refuse writes and publish VDISK_READONLY in `info`. */
	int readonly;
	/* Largest ring-page-order offered (0..PVIO_RING_MAX_ORDER); values
	 * above the maximum are clamped. */
	unsigned max_ring_page_order;
	/* Nonzero: the image can drop data (punch holes): offer feature-discard
	 * unless the toolstack set discard-enable to 0. Never on a read-only disk. */
	int discard;
	/* Nonzero: do not offer feature-persistent (map per request). */
	int no_persistent;
	/* feature-max-indirect-segments to offer: 0 = none (BLKIF_OP_INDIRECT
	 * answered EOPNOTSUPP), else indirect requests of 1..this many
	 * segments; values above PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS are clamped. */
	unsigned max_indirect_segments;
	/* multi-queue-max-queues to offer: 0 = do not publish the key (one
	 * ring, flat keys only), else 1..PVIO_BLKBACK_MAX_QUEUES (clamped).
	 * tapdisk's default is the number of online CPUs, as Linux blkback. */
	unsigned max_queues;
	/* Nonzero: do not offer feature-barrier (BLKIF_OP_WRITE_BARRIER is
	 * then answered EOPNOTSUPP). */
	int no_barrier;
	/* Nonzero: publish feature-flush-cache 0 (FLUSH_DISKCACHE answered
	 * EOPNOTSUPP), so a frontend falls back to barriers (tests). */
	int no_flush_cache;
	/* Adaptive polling (blktap's adaptive ring polling): after a round
	 * that took requests, keep the queue's event channel masked and look
	 * at the ring from the loop's idle time for up to this many
	 * microseconds since the last request found; when it stays empty that
	 * long, arm req_event and unmask (events again).  Trades CPU for fewer
	 * notifications and wake-ups on a busy ring.  0: off (default);
	 * clamped to PVIO_BLKBACK_MAX_POLL_US. */
	unsigned poll_us;
	const struct pvio_blkback_io_ops *ops;
	void *ops_ctx;
	/* Optional: state changes (may call pvio_blkback_* except destroy). */
	void (*on_event)(void *arg, enum pvio_blkback_event ev);
	/* Optional: one log line per decision, without a trailing newline;
	 * the core prefixes nothing, the daemon adds the device name. */
	void (*log)(void *arg, enum pvio_blkback_log_level level, const char *msg);
	void *arg;
};

/* Latency histogram buckets (upper bounds in microseconds; the last bucket
 * is open-ended). */
#define PVIO_BLKBACK_LAT_BUCKETS 12
extern const uint32_t pvio_blkback_lat_bounds_us[PVIO_BLKBACK_LAT_BUCKETS - 1];

struct pvio_blkback_stats {
	uint64_t reqs[PVIO_BLKBACK_NR_OPS];  /* completed OK, by kind */
	uint64_t bytes[PVIO_BLKBACK_NR_OPS]; /* bytes moved by OK requests */
	uint64_t io_errors;		     /* the daemon completed with an error */
	uint64_t invalid;		     /* refused by validation (BLKIF_RSP_ERROR) */
	uint64_t unsupported;		     /* BLKIF_RSP_EOPNOTSUPP */
	uint64_t map_errors;		     /* grant map refused (also counted in invalid) */
	uint64_t pgnt_maps;		     /* persistent grants mapped (first use) */
	uint64_t pgnt_hits;		     /* segments served from the persistent cache */
	uint64_t pgnt_evictions;	     /* persistent grants dropped to make room */
	uint64_t pgnt_mapped;		     /* pages the caches hold mapped now (all queues) */
	uint64_t segments, iovecs;	     /* data segments mapped / iovec entries they made */
	uint64_t indirect;		     /* indirect requests completed OK (also in reqs) */
	uint64_t misaligned;		     /* refused: not whole logical sectors (also in invalid) */
	uint64_t notifies_sent;		     /* event-channel notifications to the frontend */
	uint64_t events_spurious;	     /* frontend events that brought no request */
	uint64_t event_backoffs;	     /* times its event channel was ignored for a while (storm) */
	uint32_t in_flight;		     /* taken from the ring, not yet answered */
	uint32_t ring_slots;		     /* ring size (0 while disconnected) */
	uint32_t ring_order;
	uint32_t connects;		     /* successful connections so far */
	uint32_t max_indirect_segments;	     /* offered (0: none) */
	uint32_t sector_size;		     /* logical, as published */
	uint64_t lat_hist[PVIO_BLKBACK_LAT_BUCKETS]; /* completed requests by latency */
	uint64_t barriers;		     /* WRITE_BARRIER requests completed OK (also in reqs) */
	uint32_t nr_queues;		     /* rings of the current (or last) connection */
	uint32_t max_queues;		     /* offered (0: key not published) */
	uint64_t polls;			     /* adaptive polling: busy periods polled */
	uint64_t poll_requests;		     /* requests found by polling, without an event */
	uint32_t poll_us;		     /* polling window (0: off) */
};

/* One queue's share (pvio_blkback_get_queue_stats). */
struct pvio_blkback_queue_stats {
	uint64_t requests;		     /* taken off this ring */
	uint64_t notifies_sent;
	uint64_t events;		     /* event-channel deliveries */
	uint64_t barriers;		     /* barriers taken on this ring */
	uint32_t in_flight;
};

enum pvio_blkback_state {
	PVIO_BLKBACK_INITWAIT = 2,
	PVIO_BLKBACK_CONNECTED = 4,
	PVIO_BLKBACK_CLOSING = 5,
	PVIO_BLKBACK_CLOSED = 6,
};

/*
 * Create the backend for cfg->backend on @loop and start the handshake:
 * read and validate the backend dir (frontend, frontend-id, online),
 * publish features, go InitWait (2), and watch both ends.  If the frontend
 * is already Connected (a predecessor died), its old ring is ignored until
 * it re-initialises.  Opens its own xenstore, grant and event-channel
 * handles.  Returns 0 and *@out, or -ENOENT (no such backend dir),
 * -EINVAL (bad toolstack keys, a sector size other than 512/4096, or a
 * disk that is not a whole number of logical sectors), or an errno from
 * the handles.
 */
int pvio_blkback_create(struct ev_loop *loop, const struct pvio_blkback_config *cfg,
			struct pvio_blkback **out);
/*
 * Stop watching, unmap everything and free.  Requests still in flight are
 * abandoned: call only when the daemon has no I/O outstanding (after
 * EV_DETACHED, or after draining).  Does not write the backend state.
 */
void pvio_blkback_destroy(struct pvio_blkback *bb);

/*
 * Complete a request the daemon accepted in submit: @status 0 for success
 * or a negative errno (answered BLKIF_RSP_ERROR).  Unmaps its segments,
 * writes the response into the ring and schedules the push/notify (batched:
 * one push per loop iteration).  Call exactly once per accepted request, on
 * the loop's thread.
 */
void pvio_blkback_complete(struct pvio_blkback_req *req, int status);

/* Stop taking requests off the ring; in-flight ones finish.  EV_DRAINED is
 * reported once nothing is in flight (at once if already idle). */
void pvio_blkback_pause(struct pvio_blkback *bb);
/* Take requests again (and serve what queued meanwhile). */
void pvio_blkback_unpause(struct pvio_blkback *bb);
int pvio_blkback_paused(const struct pvio_blkback *bb);

/*
 * Close down as for a toolstack detach: stop taking requests, drain,
 * unmap, write state Closed (6), report EV_DETACHED.  Used by the control
 * socket's destroy.
 */
void pvio_blkback_shutdown(struct pvio_blkback *bb, const char *why);

/* Counters and current state (copied out). */
void pvio_blkback_get_stats(const struct pvio_blkback *bb, struct pvio_blkback_stats *st);
/* Queue @qi's counters (0..nr_queues-1 of the current or last
 * connection; reset at each connect); -ENOENT if there is no such queue. */
int pvio_blkback_get_queue_stats(const struct pvio_blkback *bb, unsigned qi,
				 struct pvio_blkback_queue_stats *st);
enum pvio_blkback_state pvio_blkback_state(const struct pvio_blkback *bb);
uint32_t pvio_blkback_frontend_id(const struct pvio_blkback *bb);
/* Name of a state for logs and JSON ("initwait", "connected", ...). */
const char *pvio_blkback_state_name(enum pvio_blkback_state s);

#endif /* PVIO_BLKBACK_H */
