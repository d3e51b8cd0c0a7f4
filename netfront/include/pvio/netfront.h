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
 * Data path: one tx ring and one rx ring of one page each (256 slots).
 * Every tx slot id owns a 4 KiB page granted read-only to the backend once;
 * frames are copied into them (so no other guest page is ever shared). 256
 * rx pages are granted writable once and posted as receive buffers; the
 * backend grant-copies into them and frames are copied out before a
 * buffer is posted again.
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
};

struct pvio_netfront_config {
	const char *frontend_dir; /* absolute, e.g. /local/domain/3/device/vif/0 */
	bool no_sg;		  /* do not offer/use feature-sg */
	bool no_csum;		  /* write feature-no-csum-offload=1, never send csum_blank */
	bool no_gso;		  /* do not offer/use GSO */
	bool no_split;		  /* one event channel even if the backend offers two */
	int handshake_timeout_ms; /* default 30000 (needs ops->now_ms) */
};

/* Negotiated; "tx_*" is what the guest may send, "rx_*" what it may get. */
struct pvio_netfront_info {
	uint8_t mac[6];
	uint16_t backend_id;
	bool sg, tx_csum, tx_gso4, tx_gso6, rx_csum, rx_gso4, rx_gso6, split;
	unsigned tx_slots, rx_slots;
};

struct pvio_netfront_stats {
	uint64_t tx_packets, tx_bytes, tx_errors, tx_busy;
	uint64_t rx_packets, rx_bytes, rx_errors; /* rx_errors: bad responses dropped */
	uint64_t notifies, leaked_pages;
};

/* Per-frame offload metadata (maps to/from the virtio_net_hdr of a TAP). */
#define PVIO_NETFRONT_F_CSUM_BLANK 1u	  /* L4 checksum not filled in */
#define PVIO_NETFRONT_F_DATA_VALIDATED 2u /* checksum known good */
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
 * channel(s) and our features in one transaction with state Connected,
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

/*
 * pvio_netfront_send - copy one Ethernet frame (14..65535 bytes; at most
 * 4096 without sg) into tx pages and put it on the ring, with @meta's
 * offloads (may be NULL). 0, -EAGAIN (no room: process completions and
 * retry), -EMSGSIZE, -EINVAL (offload not negotiated), -EIO (dead).
 */
int pvio_netfront_send(struct pvio_netfront *nf, const void *frame, size_t len,
		       const struct pvio_netfront_meta *meta);
/* pvio_netfront_can_send - whether a frame of @len bytes fits now. */
bool pvio_netfront_can_send(const struct pvio_netfront *nf, size_t len);
/*
 * pvio_netfront_recv - the next received frame into @buf (@cap bytes,
 * PVIO_NETFRONT_MAX_FRAME is always enough), its offloads into @meta.
 * Returns its length, -EAGAIN if none is complete, -EIO if dead. Bad
 * packets are dropped (counted in rx_errors) and skipped.
 */
int pvio_netfront_recv(struct pvio_netfront *nf, void *buf, size_t cap,
		       struct pvio_netfront_meta *meta);
/*
 * pvio_netfront_process - handle @events: reap tx completions, repost rx
 * buffers, follow the backend's state (Closing -> dead). Returns 0 or a
 * negative errno (-EIO once dead).
 */
int pvio_netfront_process(struct pvio_netfront *nf, unsigned events);
/* pvio_netfront_wait - ops->wait(@timeout_ms); the event mask. */
int pvio_netfront_wait(struct pvio_netfront *nf, int timeout_ms);

#endif /* PVIO_NETFRONT_H */
