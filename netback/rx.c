/* SPDX-License-Identifier: MIT */
/*
 * Guest receive: TAP -> bounded queue -> grant copy into the buffers the
 * guest posted on the rx ring, per queue.
 *
 * The queue holds at most rxq_cap packets: a guest that posts no buffers
 * makes dom0 drop (and count) what arrives, never grow (XSA-392). Packet
 * buffers come from a per-queue pool: rxq_cap + 1 slots, each big enough
 * for a 64 KiB GSO frame, in one anonymous mapping made at start (its pages
 * cost memory only once a frame has been read into them; not malloc, whose
 * debugging modes fill whole blocks), reused from a free list, and a frame
 * is read from the TAP straight into one: no per-packet malloc and no
 * second copy (a malloc/free of 64 KiB per packet cost a page fault per
 * page and was most of netback's time on this path).
 *
 * A TAP wake-up reads frames in rounds of RX_READ_BATCH and copies each
 * round into the guest before reading the next, so the guest sees data
 * early and the queue stays short; all copies of a round are one
 * xengnttab_grant_copy call. Each rx request is copied out of the ring
 * once; responses go in request order (frontends match them by ring
 * position): first data slot, the GSO extra-info slot if any, then the
 * remaining data slots, pushed once per round with one notification if the
 * frontend asked for it (rsp_event).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "private.h"

#define RX_BATCH 64u	    /* packets per grant-copy call */
#define RX_READ_BATCH 32u   /* frames read before they are copied */
#define RX_READ_ROUNDS 8u   /* rounds per wake-up, so tx is served too */
#define RX_MAX_SLOTS 17u    /* 16 data pages of a 64 KiB packet + extra */
/* one pool slot: header, the largest frame and one byte to see a bigger
 * one, rounded to pages */
#define RX_BUF_SZ ((sizeof(struct nb_rxpkt) + NB_MAX_PKT + 1 + NB_PAGE - 1) / NB_PAGE * NB_PAGE)

struct rxwork {
	struct nb_rxpkt *pkt;
	struct pvio_netif_rx_request reqs[RX_MAX_SLOTS];
	unsigned nreq, seg0, nseg;
	bool gso;
	uint16_t flags;
};

static struct rxwork work[RX_BATCH];
/* where frames we drop unread are read to */
static uint8_t scratch[sizeof(struct virtio_net_hdr) + NB_MAX_PKT + 1];

/* The pool's first RX_HUGE_HOT bytes in transparent huge pages where the
 * kernel offers them: the hypervisor's grant copy out of it
 * (process_vm_readv on xensim) walks and pins every source page, which
 * with 4 KiB pages cost about half as much as the copy itself. Only the
 * start: buffers are taken lowest first and reused last-freed first, so a
 * busy queue keeps to its first few dozen, while a huge page is resident
 * whole once touched — a flood of small frames over the whole pool would
 * otherwise make all of it resident, not just the pages the frames fill.
 * Mapped one huge page larger and trimmed to a 2 MiB boundary, so the
 * pool's own size is what nb_rx_fini unmaps. */
#define RX_HUGE ((size_t)2 << 20)
#define RX_HUGE_HOT (2 * RX_HUGE) /* ~60 buffers */
static void *pool_map(size_t size)
{
	uint8_t *p = mmap(NULL, size + RX_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	a = ((uintptr_t)p + RX_HUGE - 1) & ~(uintptr_t)(RX_HUGE - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((uint8_t *)a + size, (uintptr_t)p + RX_HUGE - a);
	madvise((void *)a, size < RX_HUGE_HOT ? size : RX_HUGE_HOT, MADV_HUGEPAGE); /* a hint: fine if refused */
	return (void *)a;
}

int nb_rx_init(struct nb_queue *q, unsigned cap)
{
	void *pool = pool_map((size_t)(cap + 1) * RX_BUF_SZ);

	q->rxq = calloc(cap, sizeof(*q->rxq));
	q->rxfree = calloc(cap + 1, sizeof(*q->rxfree));
	if (pool == MAP_FAILED || !q->rxq || !q->rxfree) {
		if (pool != MAP_FAILED)
			munmap(pool, (size_t)(cap + 1) * RX_BUF_SZ);
		free(q->rxq);
		free(q->rxfree);
		q->rxq = NULL;
		q->rxfree = NULL;
		return -ENOMEM;
	}
	q->rxpool = pool;
	return 0;
}

static void buf_put(struct nb_queue *q, struct nb_rxpkt *p)
{
	/* rx_nbufs <= rxq_cap + 1 buffers exist, so the free list has room */
	q->rxfree[q->rxfree_n++] = p;
}

/* A free buffer: a used one back from the free list, or the next slot
 * never used yet; NULL if all rxq_cap + 1 are taken. */
static struct nb_rxpkt *buf_get(struct nb_queue *q)
{
	if (q->rxfree_n)
		return q->rxfree[--q->rxfree_n];
	if (q->rx_nbufs > q->v->rxq_cap)
		return NULL;
	return (struct nb_rxpkt *)(void *)(q->rxpool + (size_t)q->rx_nbufs++ * RX_BUF_SZ);
}

void nb_rx_flush(struct nb_queue *q)
{
	while (q->rxq_len) {
		buf_put(q, q->rxq[q->rxq_head]);
		q->rxq_head = (q->rxq_head + 1) % q->v->rxq_cap;
		q->rxq_len--;
	}
}

void nb_rx_fini(struct nb_queue *q)
{
	if (q->rxpool)
		munmap(q->rxpool, (size_t)(q->v->rxq_cap + 1) * RX_BUF_SZ);
	free(q->rxq);
	free(q->rxfree);
	q->rxpool = NULL;
	q->rxq = NULL;
	q->rxfree = NULL;
	q->rx_nbufs = q->rxfree_n = q->rxq_len = 0;
}

/* Read one frame off the TAP into the queue (or drop it, counted).
 * Returns false once the TAP is drained. */
static bool read_one(struct nb_queue *q)
{
	struct nb_vif *v = q->v;
	bool keep = v->connected && !v->disabled && q->rxq_len < v->rxq_cap;
	struct nb_rxpkt *p = keep ? buf_get(q) : NULL;
	struct iovec iov[2];
	ssize_t n;

	if (p) {
		iov[0] = (struct iovec){ &p->vh, sizeof(p->vh) };
		iov[1] = (struct iovec){ p->data, NB_MAX_PKT + 1 };
		n = readv(q->tapfd, iov, 2);
	} else {
		n = read(q->tapfd, scratch, sizeof(scratch));
	}
	if (n < 0) {
		if (p)
			buf_put(q, p);
		return false; /* EAGAIN: drained (or the queue was detached) */
	}
	if ((size_t)n <= sizeof(struct virtio_net_hdr)) {
		if (p)
			buf_put(q, p);
		return true;
	}
	if (!v->connected || v->disabled) {
		v->st.rx_drop_down++;
		return true;
	}
	if (!p) {
		v->st.rx_drop_queue_full++;
		v->stats_dirty = true;
		if (v->st.rx_drop_queue_full == 1 || !(v->st.rx_drop_queue_full & 1023))
			nb_log(v, "rx drop: guest posts no buffers, queue %u at its bound of %u packets "
			       "(%llu such drops)", q->id, v->rxq_cap, (unsigned long long)v->st.rx_drop_queue_full);
		return true;
	}
	p->len = (uint32_t)((size_t)n - sizeof(struct virtio_net_hdr));
	q->rxq[(q->rxq_head + q->rxq_len) % v->rxq_cap] = p;
	q->rxq_len++;
	if (q->rxq_len > v->st.rx_queue_peak)
		v->st.rx_queue_peak = q->rxq_len;
	return true;
}

void nb_rx_tap_readable(struct nb_queue *q)
{
	/* bounded work per wake-up so tx and the other queues are served too;
	 * the watcher is level-triggered, so what is left wakes us again */
	for (unsigned round = 0; round < RX_READ_ROUNDS; round++) {
		bool more = true;

		for (unsigned i = 0; i < RX_READ_BATCH && more; i++)
			more = read_one(q);
		nb_rx_kick(q);
		if (!more)
			break;
	}
}

static void drop_head(struct nb_queue *q, uint64_t *counter)
{
	(*counter)++;
	q->v->stats_dirty = true;
	buf_put(q, q->rxq[q->rxq_head]);
	q->rxq_head = (q->rxq_head + 1) % q->v->rxq_cap;
	q->rxq_len--;
}

/* Slots the head packet needs (0: drop it). Fixes up its offload header. */
static unsigned prepare(struct nb_vif *v, struct nb_rxpkt *p, bool *gso, uint16_t *flags)
{
	unsigned slots = (p->len + NB_PAGE - 1) / NB_PAGE;

	*gso = false;
	*flags = 0;
	if (p->len == 0 || (!v->f_sg && slots > 1) || slots > RX_MAX_SLOTS - 1)
		return 0;
	if (p->vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		uint8_t t = p->vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
		if (!((t == VIRTIO_NET_HDR_GSO_TCPV4 && v->f_gso4) || (t == VIRTIO_NET_HDR_GSO_TCPV6 && v->f_gso6)) ||
		    !p->vh.gso_size)
			return 0;
		*gso = true;
	}
	if (p->vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint16_t start, off, hend;
		uint8_t proto;
		bool v6;
		bool can = v->f_csum && (!(pvio_net_l4_locate(p->data, p->len, &start, &off, &proto, &hend, &v6) == 0 &&
					    v6) || v->f_ipv6_csum);
		if (can) {
			*flags = PVIO_NETRXF_csum_blank | PVIO_NETRXF_data_validated;
		} else {
			if (*gso)
				return 0;
			/* the guest cannot take a blank checksum: finish it here */
			pvio_net_csum_finish(p->data, p->len, p->vh.csum_start, p->vh.csum_offset);
			/* done once: a packet that waits for buffers is prepared
			 * again, and a second sum would add the first */
			p->vh.flags = (uint8_t)((p->vh.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) |
						VIRTIO_NET_HDR_F_DATA_VALID);
			*flags = PVIO_NETRXF_data_validated;
		}
	} else if (p->vh.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		*flags = PVIO_NETRXF_data_validated;
	}
	return slots + (*gso ? 1 : 0);
}

/* Answer the requests of a copied packet, in ring order. */
static void respond(struct nb_queue *q, const struct rxwork *w, bool ok)
{
	unsigned s = 0;

	for (unsigned k = 0; k < w->nreq; k++) {
		struct pvio_netif_rx_response r;

		if (w->gso && k == 1) {
			struct pvio_netif_extra_info ex;
			memset(&ex, 0, sizeof(ex));
			ex.type = PVIO_XEN_NETIF_EXTRA_TYPE_GSO;
			ex.u.gso.size = w->pkt->vh.gso_size;
			ex.u.gso.type = (w->pkt->vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV6
						? PVIO_XEN_NETIF_GSO_TYPE_TCPV6
						: PVIO_XEN_NETIF_GSO_TYPE_TCPV4;
			memcpy(&r, &ex, sizeof(r));
			pvio_ring_netif_rx_put_response(&q->rx, &r);
			continue;
		}
		const xengnttab_grant_copy_segment_t *g = &q->v->copy.seg[w->seg0 + s++];
		memset(&r, 0, sizeof(r));
		r.id = w->reqs[k].id;
		r.offset = 0;
		r.status = ok ? (int16_t)g->len : PVIO_NETIF_RSP_ERROR;
		/* more_data: a later data slot follows (the extra is not data) */
		if (k == 0 ? w->nreq > (w->gso ? 2u : 1u) : k + 1 < w->nreq)
			r.flags |= PVIO_NETRXF_more_data;
		if (k == 0) {
			r.flags |= w->flags;
			if (w->gso)
				r.flags |= PVIO_NETRXF_extra_info;
		}
		pvio_ring_netif_rx_put_response(&q->rx, &r);
	}
}

/*
 * Gather head packets of @q's rx queue (after reading what the TAP has, if
 * @read_tap) into v->copy while posted requests
 * (and room in the copy) last, at most RX_BATCH: each data page one
 * segment into a posted buffer. Drops what the guest's features cannot
 * carry. Returns the packets gathered (the vif may have been disabled
 * meanwhile: they are still answered).
 */
int nb_rx_gather(struct nb_queue *q, bool read_tap)
{
	struct nb_vif *v = q->v;
	struct nb_copy *c = &v->copy;
	unsigned nw = 0;

	/* a tx pass looks at the TAP too: what its last frames made the
	 * stack answer (TCP ACKs) is usually there already */
	for (unsigned i = 0; read_tap && i < RX_READ_BATCH && q->rxq_len < v->rxq_cap; i++)
		if (!read_one(q))
			break;

	while (v->connected && !v->disabled && nw < RX_BATCH && q->rxq_len) {
		struct nb_rxpkt *p = q->rxq[q->rxq_head];
		struct rxwork *w = &work[nw];
		unsigned need;
		int avail;

		if (c->n + (p->len + NB_PAGE - 1) / NB_PAGE > NB_COPY_SEGS)
			break; /* its data segments do not fit: the next call */
		need = prepare(v, p, &w->gso, &w->flags);
		if (!need) {
			drop_head(q, &v->st.rx_drop_too_big);
			continue;
		}
		avail = pvio_ring_back_poll_requests(&q->rx);
		if (avail >= 0 && (unsigned)avail < need) {
			/* ask for an event once enough buffers are posted,
			 * not at each one (the frontend posts in bulk) */
			__atomic_store_n(&q->rx.sring->req_event, q->rx.req_cons + need, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			avail = pvio_ring_back_poll_requests(&q->rx);
		}
		if (avail < 0) {
			nb_xenbus_fatal(v, "rx request producer ran past the ring");
			break;
		}
		if ((unsigned)avail < need)
			break;
		w->pkt = p;
		w->nreq = need;
		w->seg0 = c->n;
		for (unsigned i = 0; i < need; i++)
			pvio_ring_netif_rx_copy_request(&q->rx, &w->reqs[i]);
		/* data goes to slot 0 and, after the extra, slots 2.. */
		for (unsigned i = 0, off = 0; i < need; i++) {
			xengnttab_grant_copy_segment_t *g;
			uint32_t len;
			if (w->gso && i == 1)
				continue;
			len = p->len - off > NB_PAGE ? NB_PAGE : p->len - off;
			g = &c->seg[c->n++];
			memset(g, 0, sizeof(*g));
			g->source.virt = p->data + off;
			g->dest.foreign.ref = w->reqs[i].gref;
			g->dest.foreign.domid = (domid_t)v->domid;
			g->dest.foreign.offset = 0;
			g->len = (uint16_t)len;
			g->flags = GNTCOPY_dest_gref;
			off += len;
		}
		w->nseg = c->n - w->seg0;
		q->rxq_head = (q->rxq_head + 1) % v->rxq_cap;
		q->rxq_len--;
		nw++;
	}
	return (int)nw;
}

/* After the copy: the @nw gathered packets answered in ring order, their
 * buffers back to the pool, pushed once, the guest notified if it asked. */
void nb_rx_finish(struct nb_queue *q, unsigned nw)
{
	struct nb_vif *v = q->v;
	const struct nb_copy *c = &v->copy;

	for (unsigned i = 0; i < nw; i++) {
		struct rxwork *w = &work[i];
		bool ok = true;

		for (unsigned k = 0; k < w->nseg; k++)
			ok &= c->seg[w->seg0 + k].status == GNTST_okay;
		if (!ok) {
			v->st.rx_drop_copy++;
		} else {
			v->st.rx_packets++;
			v->st.rx_bytes += w->pkt->len;
			q->rx_packets++;
		}
		respond(q, w, ok);
		buf_put(q, w->pkt);
	}
	v->stats_dirty = true;
	if (pvio_ring_back_push_responses(&q->rx)) {
		pvio_evtchn_notify(v->ev, q->port_rx);
		v->st.notifies_rx++;
	}
}

void nb_rx_kick(struct nb_queue *q)
{
	struct nb_vif *v = q->v;
	bool took_tx = false;

	while (v->connected && !v->disabled && q->rxq_len) {
		bool paused = false;
		int nw, np = 0;

		v->copy.n = 0;
		nw = nb_rx_gather(q, false);
		if (nw == 0)
			break;
		/* guest frames waiting on the tx ring ride on the same copy
		 * call: one hypercall for both directions of this pass */
		if (v->connected && !v->disabled && !ev_is_active(&v->rate_w) &&
		    pvio_ring_back_poll_requests(&q->tx) > 0) {
			np = nb_tx_gather(q, &paused);
			if (np < 0)
				np = 0; /* the vif is disabled: answer the rx part */
			took_tx = true;
		}
		nb_copy_run(v, (unsigned)np, (unsigned)nw);
		nb_rx_finish(q, (unsigned)nw);
		if (took_tx)
			nb_tx_finish(q, (unsigned)np);
	}
	/* the tx ring as usual: what is left, the final check that arms the
	 * frontend's next event, answers for dropped packets */
	if (took_tx)
		nb_tx_kick(q);
}
