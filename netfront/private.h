/* SPDX-License-Identifier: MIT */
/* netfront internals: xenbus.c (handshake, teardown), data.c (tx/rx). */
#ifndef PVIO_NETFRONT_PRIVATE_H
#define PVIO_NETFRONT_PRIVATE_H

#include "pvio/netfront.h"
#include "pvio/netif_wire.h"

#define NF_PAGE 4096u
#define NF_RING_SLOTS 256u  /* entries of a one-page tx or rx ring */
#define NF_MAX_RX_SLOTS 18u /* data slots of one received packet (more: dropped) */
#define NF_PATH 192
/* rx buffers go back to the ring in bulk, once this many are free (or
 * when there is nothing left to receive): one push and at most one
 * notification per batch instead of per packet */
#define NF_RX_REFILL_BATCH 64u

enum { NF_XB_INITWAIT = 2, NF_XB_CONNECTED = 4, NF_XB_CLOSING = 5, NF_XB_CLOSED = 6 };

struct pvio_netfront;

/* One queue: a tx and an rx ring, their buffers, one or two event channels. */
struct nf_queue {
	struct pvio_netfront *nf;
	unsigned id;
	/* rings */
	void *tx_sring, *rx_sring;
	uint32_t tx_ring_ref, rx_ring_ref;
	bool tx_ring_granted, rx_ring_granted;
	struct pvio_ring_front tx, rx;
	uint32_t port_tx, port_rx;
	bool have_port_tx, have_port_rx;
	/* tx buffers: page i belongs to id i */
	uint8_t *tx_pages;
	uint32_t tx_refs[NF_RING_SLOTS];
	unsigned tx_granted;
	uint16_t tx_free[NF_RING_SLOTS];
	unsigned tx_nfree;
	bool tx_inflight[NF_RING_SLOTS];
	uint16_t tx_resv[NF_MAX_RX_SLOTS]; /* ids of a zero-copy reservation */
	unsigned tx_nresv;
	/* rx buffers: page i is posted at ring positions == i mod 256 */
	uint8_t *rx_pages;
	uint32_t rx_refs[NF_RING_SLOTS];
	unsigned rx_granted;
	uint32_t rx_done; /* ring index up to which data was copied out */
	/* rx chain in progress (copied responses) */
	struct pvio_netif_rx_response cur[NF_MAX_RX_SLOTS + 1];
	uint32_t cur_pos[NF_MAX_RX_SLOTS + 1];
	unsigned cur_n;
	bool cur_bad, cur_want_extra, cur_more;
	struct pvio_netif_extra_info cur_gso;
	bool cur_has_gso;
	bool rx_held; /* a frame handed out by recv_segs, not released yet */
};

struct pvio_netfront {
	struct pvio_netfront_ops ops;
	struct pvio_netfront_config cfg;
	char dir[NF_PATH], backend[NF_PATH], bstate_path[NF_PATH];
	struct pvio_netfront_info info;
	struct pvio_netfront_stats st;
	bool dead, watching;
	bool backend_closed; /* dead because the backend closed in order */
	unsigned nq; /* queues set up (info.num_queues once connected) */
	struct nf_queue q[PVIO_NETFRONT_MAX_QUEUES];
};

/* freestanding helpers (xenbus.c) */
void nf_memcpy(void *d, const void *s, size_t n);
void nf_memset(void *d, int c, size_t n);
void nf_path(char *out, const char *dir, const char *key);
int nf_read_uint(struct pvio_netfront *nf, const char *dir, const char *key, uint32_t max, uint32_t *out);
void nf_utoa(char *out, uint32_t v);

/* data.c */
void nf_rx_refill(struct nf_queue *q, bool all);
/* Frame bytes out of (or into) a buffer page: ops->copy if the platform
 * has one, else nf_memcpy. Never used on ring entries. */
void nf_copy_data(struct pvio_netfront *nf, void *d, const void *s, size_t n);

#endif
