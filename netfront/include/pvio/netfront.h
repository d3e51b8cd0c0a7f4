/* SPDX-License-Identifier: MIT */
/*
 * pvio/netfront.h — the guest side of the Xen network protocol (netif),
 * freestanding.
 *
 * Like pvio/blkfront.h: the core includes only <stdint.h>, <stddef.h> and
 * <stdbool.h> and reaches every OS service through struct
 * pvio_netfront_ops, which the platform fills (pvio ships xensim's,
 * pvio/netfront_xensim.h).
 *
 * Data path: 1..PVIO_NETFRONT_MAX_QUEUES queues (multi-queue, if the
 * backend offers it and the config asks), each one tx ring and one rx ring
 * of one page (256 slots) with its own event channel(s). Every tx slot id
 * owns a 4 KiB page granted read-only to the backend once; frames are
 * copied into them (so no other guest page is ever shared). 256 rx pages
 * per queue are granted writable once and posted as receive buffers; the
 * backend grant-copies into them and frames are copied out before a buffer
 * is posted again. Buffers go back to the ring in bulk, and tx completions
 * are asked for (rsp_event) only when a queue is short of room, and then
 * when half of what is in flight is done (Linux netfront's rule), to save
 * notifications.
 *
 * The backend is hostile: each response is copied out of the ring once
 * and validated (tx: id in range and in flight; rx: id matches its ring
 * position, offset+size within the page, chain length and total size
 * bounded, extra-info type known). A bad rx packet is dropped and
 * counted; a ring protocol violation (producer ahead of the ring, tx id
 * not in flight) kills the device: later calls fail with -EIO.
 *
 * Threading: one thread at a time per struct pvio_netfront.
 * Errors: 0 (or a count) or a negative errno (Linux numbers, spelled
 * PVIO_NETFRONT_E* because errno.h is not freestanding).
 */
#ifndef PVIO_NETFRONT_H
#define PVIO_NETFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PVIO_NETFRONT_ENOENT 2
#define PVIO_NETFRONT_EIO 5
#define PVIO_NETFRONT_EAGAIN 11
#define PVIO_NETFRONT_ENOMEM 12
#define PVIO_NETFRONT_ENODEV 19
#define PVIO_NETFRONT_EINVAL 22
#define PVIO_NETFRONT_ENOSPC 28
#define PVIO_NETFRONT_EMSGSIZE 90
#define PVIO_NETFRONT_EPROTO 71
#define PVIO_NETFRONT_EOPNOTSUPP 95
#define PVIO_NETFRONT_ETIMEDOUT 110

/* Bits returned by ops->wait and taken by pvio_netfront_process(). */
#define PVIO_NETFRONT_EV_EVTCHN 1u /* one of our event channels fired */
#define PVIO_NETFRONT_EV_XS 2u	   /* a xenstore watch fired */
#define PVIO_NETFRONT_EV_USER 4u   /* platform-defined (e.g. a TAP fd) */

/* Largest frame pvio_netfront_recv can return. */
#define PVIO_NETFRONT_MAX_FRAME 65535u
/* Most queues a device can have (config max_queues). */
#define PVIO_NETFRONT_MAX_QUEUES 8u

/*
 * Platform services; all required unless marked optional. Same contracts
 * as struct pvio_blkfront_ops (see pvio/blkfront.h).
 */
struct pvio_netfront_ops {
	void *ctx;
	void *(*zalloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	int (*page_alloc)(void *ctx, unsigned n, void **va, uint64_t *gfn);
	void (*page_free)(void *ctx, void *va, unsigned n);
	int (*grant)(void *ctx, uint16_t to, uint64_t gfn, bool readonly, uint32_t *ref);
	/* -EBUSY while mapped/in use: the page is then leaked, never reused. */
	int (*end_grant)(void *ctx, uint32_t ref);
	int (*evtchn_alloc)(void *ctx, uint16_t remote, uint32_t *port);
	int (*evtchn_notify)(void *ctx, uint32_t port);
	void (*evtchn_close)(void *ctx, uint32_t port);
	int (*xs_read)(void *ctx, const char *path, char *buf, size_t size);
	int (*xs_write_many)(void *ctx, unsigned n, const char *const *paths, const char *const *vals);
	int (*xs_watch)(void *ctx, const char *path);
	void (*xs_unwatch)(void *ctx, const char *path);
	/* Block up to @timeout_ms (-1 forever, 0 just look); a mask of
	 * PVIO_NETFRONT_EV_* or a negative errno. */
	int (*wait)(void *ctx, int timeout_ms);
	/* Optional monotonic ms clock for handshake timeouts. */
	uint64_t (*now_ms)(void *ctx);
	/* Optional: copy @n bytes of frame data (a fast memcpy). Used only
	 * for packet payload between the caller's buffers and the tx/rx
	 * pages, never for ring entries; NULL: a word-at-a-time loop. */
	void (*copy)(void *ctx, void *dst, const void *src, size_t n);
};

struct pvio_netfront_config {
	const char *frontend_dir; /* absolute, e.g. /local/domain/3/device/vif/0 */
	bool no_sg;		  /* do not offer/use feature-sg */
	bool no_csum;		  /* write feature-no-csum-offload=1, never send csum_blank */
	bool no_gso;		  /* do not offer/use GSO */
	bool no_split;		  /* one event channel even if the backend offers two */
	int handshake_timeout_ms; /* default 30000 (needs ops->now_ms) */
	/* queues to ask for (0 or 1: one); the device gets the least of this,
	 * the backend's multi-queue-max-queues and PVIO_NETFRONT_MAX_QUEUES */
	unsigned max_queues;
};

/* Negotiated; "tx_*" is what the guest may send, "rx_*" what it may get. */
struct pvio_netfront_info {
	uint8_t mac[6];
	uint16_t backend_id;
	bool sg, tx_csum, tx_gso4, tx_gso6, rx_csum, rx_gso4, rx_gso6, split;
	unsigned tx_slots, rx_slots; /* per queue */
	unsigned num_queues;
};

struct pvio_netfront_stats {
	uint64_t tx_packets, tx_bytes, tx_errors, tx_busy;
	uint64_t rx_packets, rx_bytes, rx_errors; /* rx_errors: bad responses dropped */
	uint64_t notifies, leaked_pages;
};

/* Per-frame offload metadata (maps to/from the virtio_net_hdr of a TAP). */
#define PVIO_NETFRONT_F_CSUM_BLANK 1u	  /* L4 checksum not filled in */
#define PVIO_NETFRONT_F_DATA_VALIDATED 2u /* checksum known good */
/* send only: more frames follow at once on this queue, so do not publish
 * (and notify) yet; pvio_netfront_push_queue() publishes them. One push
 * and at most one notification for a burst instead of one per frame. */
#define PVIO_NETFRONT_F_MORE 4u
#define PVIO_NETFRONT_GSO_NONE 0
#define PVIO_NETFRONT_GSO_TCPV4 1
#define PVIO_NETFRONT_GSO_TCPV6 2
struct pvio_netfront_meta {
	uint16_t flags;
	uint8_t gso_type;
	uint16_t gso_size; /* MSS */
};

struct pvio_netfront;

/*
 * pvio_netfront_open - read the backend's features (feature-rx-copy is
 * required), grant rings and buffers, publish ring refs, event
 * channel(s) (under queue-N/ with multi-queue-num-queues when there is
 * more than one queue) and our features in one transaction with state Connected,
 * post every rx buffer and wait for the backend to be Connected. The ops
 * struct is copied. -ENOENT no device, -EOPNOTSUPP backend lacks rx-copy,
 * -ETIMEDOUT backend silent, -ENODEV backend closed, -EPROTO garbage.
 */
int pvio_netfront_open(const struct pvio_netfront_ops *ops, const struct pvio_netfront_config *cfg,
		       struct pvio_netfront **out);
/*
 * pvio_netfront_close - Closing, wait (bounded) for the backend to close,
 * Closed, end every grant (pages still in use are leaked) and free.
 * 0, or -EBUSY if pages were leaked, -ETIMEDOUT if the backend did not close.
 */
int pvio_netfront_close(struct pvio_netfront *nf);

void pvio_netfront_get_info(const struct pvio_netfront *nf, struct pvio_netfront_info *info);
void pvio_netfront_get_stats(const struct pvio_netfront *nf, struct pvio_netfront_stats *st);
bool pvio_netfront_is_dead(const struct pvio_netfront *nf);
/* Dead because the backend closed the device in order (its state went
 * Closing/Closed, or its directory went), not because it broke the
 * protocol: a driver may say so calmly. */
bool pvio_netfront_backend_closed(const struct pvio_netfront *nf);

/*
 * pvio_netfront_send_queue - copy one Ethernet frame (14..65535 bytes; at
 * most 4096 without sg) into tx pages of queue @queue and put it on its
 * ring, with @meta's offloads (may be NULL). 0, -EAGAIN (no room: process
 * completions and retry), -EMSGSIZE, -EINVAL (offload not negotiated, or
 * no such queue), -EIO (dead). Frames of one flow should stay on one
 * queue (the order across queues is not kept).
 */
int pvio_netfront_send_queue(struct pvio_netfront *nf, unsigned queue, const void *frame, size_t len,
			     const struct pvio_netfront_meta *meta);
/*
 * pvio_netfront_push_queue - publish the frames sent on @queue with
 * PVIO_NETFRONT_F_MORE and notify the backend if it asked to be. Must
 * follow every burst sent with F_MORE (the backend sees nothing before).
 * 0, -EINVAL (no such queue) or -EIO (dead).
 */
int pvio_netfront_push_queue(struct pvio_netfront *nf, unsigned queue);
/* pvio_netfront_send - pvio_netfront_send_queue() on queue 0. */
int pvio_netfront_send(struct pvio_netfront *nf, const void *frame, size_t len,
		       const struct pvio_netfront_meta *meta);
/* pvio_netfront_can_send_queue - whether a frame of @len bytes fits now
 * on @queue (false for no such queue). When it does not, call
 * pvio_netfront_process() before waiting: it reaps what the backend has
 * done and, if that leaves the queue short, asks for the event that says
 * more is done (tx completions raise events only then). */
bool pvio_netfront_can_send_queue(const struct pvio_netfront *nf, unsigned queue, size_t len);
/* pvio_netfront_can_send - pvio_netfront_can_send_queue() on queue 0. */
bool pvio_netfront_can_send(const struct pvio_netfront *nf, size_t len);
/*
 * pvio_netfront_recv_queue - the next frame received on @queue into @buf
 * (@cap bytes, PVIO_NETFRONT_MAX_FRAME is always enough), its offloads
 * into @meta. Returns its length, -EAGAIN if none is complete, -EINVAL (no
 * such queue), -EIO if dead. Bad packets are dropped (counted in
 * rx_errors) and skipped.
 */
int pvio_netfront_recv_queue(struct pvio_netfront *nf, unsigned queue, void *buf, size_t cap,
			     struct pvio_netfront_meta *meta);
/* pvio_netfront_recv - pvio_netfront_recv_queue() on queue 0 (a
 * multi-queue device's other queues need recv_queue). */
int pvio_netfront_recv(struct pvio_netfront *nf, void *buf, size_t cap,
		       struct pvio_netfront_meta *meta);
/*
 * Zero copy: the caller moves frame bytes between its device and the
 * buffer pages itself (readv/writev on a TAP), saving the copy that
 * send/recv make. One reservation or held frame per queue at a time; no
 * send/recv on that queue meanwhile.
 */
#define PVIO_NETFRONT_MAX_SEGS 18u /* pieces of one frame */
struct pvio_netfront_seg {
	void *base;
	size_t len;
};
/*
 * pvio_netfront_tx_reserve - room on @queue for one frame of any size
 * (up to PVIO_NETFRONT_MAX_FRAME; with sg, else one page): its buffer
 * pages into @segs (4 KiB each), to fill in order. Returns the number of
 * segments, -EAGAIN (no room now), -EBUSY (already reserved), -EINVAL,
 * -EIO. The pages are granted to the backend read-only: write them only
 * before the commit.
 */
int pvio_netfront_tx_reserve(struct pvio_netfront *nf, unsigned queue, struct pvio_netfront_seg *segs);
/*
 * pvio_netfront_tx_commit - the first @len bytes of the reserved pages are
 * a frame: put it on the ring as pvio_netfront_send_queue() would (same
 * checks, @meta and F_MORE), and end the reservation (@len 0: cancel). 0,
 * or -EMSGSIZE / -EINVAL (the frame is dropped, the reservation ended),
 * -EIO.
 */
int pvio_netfront_tx_commit(struct pvio_netfront *nf, unsigned queue, size_t len,
			    const struct pvio_netfront_meta *meta);
/*
 * pvio_netfront_recv_segs - the next frame received on @queue, in place:
 * its pieces (pointers into the rx buffer pages, validated like recv's)
 * into @segs (PVIO_NETFRONT_MAX_SEGS entries), offloads into @meta.
 * Returns the number of pieces, -EAGAIN (none complete), -EBUSY (a frame
 * is still held), -EINVAL, -EIO. The frame is held until
 * pvio_netfront_recv_release(); its buffers go back to the ring then.
 * The backend keeps write access to these pages (they stay granted): a
 * hostile one can change the bytes while you read them, so copy out what
 * you parse and pass on only what you would forward blindly.
 */
int pvio_netfront_recv_segs(struct pvio_netfront *nf, unsigned queue, struct pvio_netfront_seg *segs,
			    struct pvio_netfront_meta *meta);
/* pvio_netfront_recv_release - done with the frame recv_segs returned. */
int pvio_netfront_recv_release(struct pvio_netfront *nf, unsigned queue);

/*
 * pvio_netfront_process - handle @events: reap tx completions, repost rx
 * buffers (of every queue), follow the backend's state (Closing -> dead).
 * Returns 0 or a negative errno (-EIO once dead).
 */
int pvio_netfront_process(struct pvio_netfront *nf, unsigned events);
/* pvio_netfront_wait - ops->wait(@timeout_ms); the event mask. */
int pvio_netfront_wait(struct pvio_netfront *nf, int timeout_ms);

#endif /* PVIO_NETFRONT_H */
