/* SPDX-License-Identifier: MIT */
/*
 * pvio-netback internals: one process serves one vif. Files by role:
 * main.c (options, log, event loop), xenbus.c (the io/netif.h handshake),
 * tx.c (guest transmit -> TAP, and the rate limit), rx.c (TAP -> guest
 * receive), tap.c (the dom0 TAP device); offload.c (checksum/GSO header
 * work) is the pvio-net-offload library that pvnet links too
 * (pvio/net_offload.h).
 *
 * A vif has 1..NB_MAX_QUEUES queues (multi-queue-num-queues): each is a tx
 * and an rx ring, one or two event channels and one queue of a
 * multi-queue TAP, all served by this process's one libev loop. What the
 * frontend negotiated (features, the rate limit, counters) is per vif.
 */
#ifndef PVIO_NETBACK_PRIVATE_H
#define PVIO_NETBACK_PRIVATE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_net.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "pvio/evtchn.h"
#include "pvio/evtchn_eoi.h"
#include "pvio/net_offload.h"
#include "pvio/netif_wire.h"

#define NB_PAGE 4096u
#define NB_ETH_HLEN 14u
/* Largest packet a tx chain can describe (the first slot's u16 size). */
#define NB_MAX_PKT 65535u
/* Data slots of one packet: more than NB_SLOTS_DROP is dropped, NB_SLOTS_FATAL
 * or more disables the vif (Linux netback's max_skb_slots / fatal_skb_slots). */
#define NB_SLOTS_DROP PVIO_XEN_NETIF_NR_SLOTS_MIN
#define NB_SLOTS_FATAL 20u
/* Packets gathered before one batched grant copy. */
#define NB_TX_BATCH 32u
/* Batches one round of tx work takes before it lets the loop run. */
#define NB_TX_ROUND_BATCHES 4u
/* grant-copy segments in one call (one hypercall: one xensimd round trip
 * on xensim), shared by a queue's tx and rx work of one loop pass */
#define NB_COPY_SEGS 1024u
/* Default bound of the dom0 -> guest queue (packets, per queue). */
#define NB_RXQ_DEFAULT 256u
/* Queues a vif may have (--max-queues; Linux netback: min(8, CPUs)). */
#define NB_MAX_QUEUES 8u

/* What was done and refused; every drop has its own counter. */
struct nb_stats {
	uint64_t tx_packets, tx_bytes, tx_slots;
	uint64_t tx_drop_slots;	     /* > 18 slots */
	uint64_t tx_drop_frag_size;  /* fragment past the packet's size */
	uint64_t tx_drop_zero_frag;  /* zero-length fragment */
	uint64_t tx_drop_hdr_split;  /* Ethernet header not in the first slot */
	uint64_t tx_drop_page_cross; /* offset + size past the page */
	uint64_t tx_drop_runt;	     /* packet < ETH_HLEN */
	uint64_t tx_drop_extra;	     /* bad extra-info slot */
	uint64_t tx_drop_offload;    /* checksum/GSO request we cannot honour */
	uint64_t tx_drop_copy;	     /* grant copy refused (bad gref) */
	uint64_t tx_drop_tap;	     /* the TAP refused the packet */
	uint64_t tx_fatal;	     /* protocol errors that disabled the vif */
	uint64_t rx_packets, rx_bytes;
	uint64_t rx_drop_queue_full; /* guest posts no buffers: queue bound hit */
	uint64_t rx_drop_too_big;    /* does not fit the guest's features */
	uint64_t rx_drop_copy;	     /* grant copy into the guest failed */
	uint64_t rx_drop_down;	     /* arrived while the vif was not connected */
	uint64_t rx_queue_peak;
	uint64_t rate_waits;	     /* tx paused for credit */
	uint64_t notifies_tx, notifies_rx;
	uint64_t copy_calls;	     /* grant-copy calls (hypercalls) */
	uint64_t tx_copy_calls, rx_copy_calls; /* ... carrying tx / rx work (one
						* call may carry both) */
	uint64_t events;	     /* event-channel notifications taken */
	uint64_t events_spurious;    /* ... that brought no work */
	uint64_t event_backoffs;     /* times a port was left masked (storm) */
};

/* A packet in the dom0 -> guest queue: virtio_net_hdr then the frame. */
struct nb_rxpkt {
	uint32_t len; /* frame bytes after the header */
	struct virtio_net_hdr vh;
	uint8_t data[];
};

struct nb_vif;
struct nb_queue;

/* A bound event channel in late-EOI mode (event.c). */
struct nb_port {
	struct nb_queue *q;
	evtchn_port_t port;	/* local */
	bool bound;
	bool rx_only;		/* a split queue's rx port */
	bool round_pending;	/* tx work left over: round_w runs it */
	uint32_t rx_prod_seen;	/* rx req_prod at the last look */
	uint64_t tx_slots_seen;	/* q->tx_slots at the last event */
	struct pvio_evtchn_eoi eoi; /* late EOI, storm backoff */
	ev_timer round_w;	/* the rest of a round, on the next loop pass */
};

/* One queue: a tx/rx ring pair, its event channel(s), its TAP queue. */
struct nb_queue {
	struct nb_vif *v;
	unsigned id;
	int tapfd;	 /* this queue's file on the TAP (-1: none) */
	ev_io tap_w;
	bool tap_detached; /* TUNSETQUEUE: the kernel sends it nothing */
	/* rings */
	void *tx_sring, *rx_sring;
	struct pvio_ring_back tx, rx;
	evtchn_port_t port_tx, port_rx; /* local; equal unless split */
	bool split;
	struct nb_port ptx, prx;	 /* prx used only when split */
	/* tx in progress: a chain copied out of the ring, slot by slot */
	struct pvio_netif_tx_request cur[NB_SLOTS_FATAL];
	unsigned cur_n;	       /* data slots copied */
	unsigned cur_extras;   /* extra-info slots copied */
	bool cur_more_extra;   /* an extra with FLAG_MORE is pending */
	bool cur_want_extra;   /* first slot asked for extras */
	struct pvio_netif_extra_info cur_gso;
	bool cur_has_gso;
	int cur_err;	       /* reason code once the packet is doomed */
	bool cur_held;	       /* complete and valid, waiting for rate credit */
	/* rx queue (bounded: v->rxq_cap packets) and its buffer pool:
	 * rxq_cap + 1 slots in one mapping, slots below rx_nbufs used at
	 * least once, the free ones listed in rxfree */
	struct nb_rxpkt **rxq;
	unsigned rxq_head, rxq_len;
	uint8_t *rxpool;
	struct nb_rxpkt **rxfree;
	unsigned rxfree_n, rx_nbufs;
	uint64_t tx_packets, rx_packets; /* this queue's share of st */
	uint64_t tx_slots;		 /* tx slots taken off this ring */
};

/* The segments of one grant-copy call: what a loop pass gathered for a
 * queue, tx first or rx first, then copied with one call. */
struct nb_copy {
	xengnttab_grant_copy_segment_t seg[NB_COPY_SEGS];
	unsigned n;
};

struct nb_vif {
	/* identity */
	uint32_t domid, devid;
	char backend[128];  /* our dir */
	char frontend[128]; /* validated frontend dir */
	char tapname[16];
	char statsfile[256];
	/* services */
	struct ev_loop *loop;
	struct xs_handle *xs;
	xengnttab_handle *xgt;
	struct pvio_evtchn *ev;
	ev_io xs_w;
	ev_timer rate_w;
	ev_signal sigterm_w, sigint_w, sigusr1_w;
	/* xenbus */
	int state;    /* our XenbusState */
	bool online;
	bool connected;
	bool disabled; /* fatal peer error: ring ignored until reconnect */
	bool quit;
	/* negotiated with the frontend */
	bool f_sg, f_gso4, f_gso6, f_csum, f_ipv6_csum, f_rx_notify;
	/* queues: max_queues TAP files exist; nq are connected */
	unsigned max_queues, nq;
	struct nb_queue q[NB_MAX_QUEUES];
	/* tx batch (one loop, so one buffer serves every queue) */
	uint8_t *txbuf;	       /* NB_TX_BATCH x (hdr + NB_MAX_PKT) */
	struct nb_copy copy;   /* the grant copy being gathered */
	/* rate limit (the backend's "rate" key, bytes per interval, for the
	 * whole vif): credit refilled at each interval's start, never above
	 * max(rate_bytes, NB_MAX_PKT) */
	uint64_t rate_bytes, rate_usec, credit;
	double rate_window;    /* ev_now at the start of the current interval */
	char rate_str[64];     /* the key as last read */
	bool rate_absent;      /* ... or it was absent */
	/* rx queue bound, per queue */
	unsigned rxq_cap;
	struct nb_stats st;
	bool stats_dirty;
};

/* main.c */
void nb_log(struct nb_vif *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nb_stats_write(struct nb_vif *v);

/* xenbus.c */
int nb_xenbus_start(struct nb_vif *v);
void nb_xenbus_changed(struct nb_vif *v);
void nb_xenbus_fatal(struct nb_vif *v, const char *why);
void nb_xenbus_stop(struct nb_vif *v);

/* event.c */
int nb_event_bind(struct nb_queue *q, struct nb_port *pt, evtchn_port_t remote, bool rx_only);
void nb_event_stop(struct nb_queue *q);
/* tx work is left after a round's budget: run it on the next loop pass. */
void nb_event_more(struct nb_queue *q);

/* tap.c */
int nb_tap_open(const char *name, char *actual, size_t n, unsigned nfds, int *fds);
int nb_tap_set_offload(int fd, bool csum, bool tso4, bool tso6);
int nb_tap_queue_attach(int fd, bool attach);

/* tx.c */
void nb_tx_kick(struct nb_queue *q);
int nb_tx_gather(struct nb_queue *q, bool *paused);
void nb_tx_finish(struct nb_queue *q, unsigned np);
void nb_copy_run(struct nb_vif *v, unsigned np, unsigned nw);
void nb_tx_reset(struct nb_queue *q);
/* The rate key's value: 0 and the limit in *bytes per *usec, or
 * -EINVAL if it is not "BYTES,USECS" with both in range. */
int nb_rate_parse(const char *s, uint64_t *bytes, uint64_t *usec);
void nb_rate_set(struct nb_vif *v, uint64_t bytes, uint64_t usec);
void nb_rate_stop(struct nb_vif *v);

/* rx.c */
int nb_rx_init(struct nb_queue *q, unsigned cap);
void nb_rx_tap_readable(struct nb_queue *q);
void nb_rx_kick(struct nb_queue *q);
int nb_rx_gather(struct nb_queue *q, bool read_tap);
void nb_rx_finish(struct nb_queue *q, unsigned nw);
void nb_rx_flush(struct nb_queue *q);
void nb_rx_fini(struct nb_queue *q);

#endif
