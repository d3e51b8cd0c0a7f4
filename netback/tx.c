/* SPDX-License-Identifier: MIT */
/*
 * Guest transmit: tx ring -> grant copy -> TAP.
 *
 * Each ring slot is copied out once (pvio_ring_netif_tx_copy_request) into
 * q->cur and only that copy is validated; a chain that is not complete yet
 * stays in q->cur until the frontend produces the rest. A complete packet
 * is either doomed (dropped and counted, every slot answered with
 * RSP_DROPPED/ERROR) or queued in a batch: up to NB_TX_BATCH packets are
 * copied out of the guest with one xengnttab_grant_copy call, then written
 * to the TAP with a virtio_net_hdr carrying checksum and GSO requests.
 *
 * The hostile-frontend checklist (PROTOCOL-NOTES §4 netback TX) maps to
 * the reasons below; a ring producer past the ring size, 20 or more slots
 * in one packet, or an invalid extra-info type disable the vif.
 *
 * Each queue has its own ring and chain state (struct nb_queue); the batch
 * buffers are shared, as one loop runs every queue. The rate limit (the
 * backend's "rate" key) is a credit scheduler for the whole vif, like
 * Linux netback's per queue: a complete packet goes only if its size fits
 * the credit left in the current interval; otherwise it is held, copied
 * out of the ring but not yet of the guest, until the next interval
 * refills the credit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

#define NB_TXBUF_SZ (sizeof(struct virtio_net_hdr) + NB_MAX_PKT + 1)

enum tx_reason {
	TX_OK = 0,
	TX_SLOTS,
	TX_FRAG_SIZE,
	TX_ZERO_FRAG,
	TX_HDR_SPLIT,
	TX_PAGE_CROSS,
	TX_RUNT,
	TX_EXTRA,
	TX_OFFLOAD,
};

/* A packet taken off the ring, waiting for the batch's grant copy. */
struct txpkt {
	struct pvio_netif_tx_request slots[NB_SLOTS_FATAL];
	unsigned n, extras;
	struct pvio_netif_extra_info gso;
	bool has_gso;
	unsigned seg0, nseg;
	uint32_t len;
};

static struct txpkt batch[NB_TX_BATCH];

void nb_tx_reset(struct nb_queue *q)
{
	q->cur_n = 0;
	q->cur_extras = 0;
	q->cur_more_extra = false;
	q->cur_want_extra = false;
	q->cur_has_gso = false;
	q->cur_err = TX_OK;
	q->cur_held = false;
}

static void respond(struct nb_queue *q, const struct pvio_netif_tx_request *slots, unsigned n,
		    unsigned extras, int16_t status)
{
	struct pvio_netif_tx_response r;

	/* ring order: first slot, its extra-info slots, the fragments */
	memset(&r, 0, sizeof(r));
	r.id = slots[0].id;
	r.status = status;
	pvio_ring_netif_tx_put_response(&q->tx, &r);
	for (unsigned i = 0; i < extras; i++) {
		memset(&r, 0, sizeof(r));
		r.status = PVIO_NETIF_RSP_NULL;
		pvio_ring_netif_tx_put_response(&q->tx, &r);
	}
	for (unsigned i = 1; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.id = slots[i].id;
		r.status = status;
		pvio_ring_netif_tx_put_response(&q->tx, &r);
	}
}

static void count_drop(struct nb_vif *v, int reason, const struct pvio_netif_tx_request *first,
		       unsigned n)
{
	static const char *const names[] = {
		[TX_SLOTS] = "more than 18 slots",
		[TX_FRAG_SIZE] = "fragment past the packet size",
		[TX_ZERO_FRAG] = "zero-length fragment",
		[TX_HDR_SPLIT] = "Ethernet header split across slots",
		[TX_PAGE_CROSS] = "offset+size past the page",
		[TX_RUNT] = "packet shorter than an Ethernet header",
		[TX_EXTRA] = "bad extra-info slot",
		[TX_OFFLOAD] = "checksum/GSO request not possible",
	};
	uint64_t *c[] = {
		[TX_SLOTS] = &v->st.tx_drop_slots,
		[TX_FRAG_SIZE] = &v->st.tx_drop_frag_size,
		[TX_ZERO_FRAG] = &v->st.tx_drop_zero_frag,
		[TX_HDR_SPLIT] = &v->st.tx_drop_hdr_split,
		[TX_PAGE_CROSS] = &v->st.tx_drop_page_cross,
		[TX_RUNT] = &v->st.tx_drop_runt,
		[TX_EXTRA] = &v->st.tx_drop_extra,
		[TX_OFFLOAD] = &v->st.tx_drop_offload,
	};

	(*c[reason])++;
	v->stats_dirty = true;
	nb_log(v, "tx drop: %s (id %u, size %u, %u slots; %llu such drops)", names[reason], first->id,
	       first->size, n, (unsigned long long)*c[reason]);
}

/*
 * Take slots off the ring until the chain in q->cur completes.
 * Returns 1 with a complete packet in q->cur (q->cur_err says if it is
 * doomed), 0 if the ring ran dry first (progress is kept), -1 if the
 * frontend broke the protocol (the vif has been disabled).
 */
static int take_packet(struct nb_queue *q)
{
	struct nb_vif *v = q->v;

	for (;;) {
		struct pvio_netif_tx_request rq;
		int got = pvio_ring_netif_tx_copy_request(&q->tx, &rq);

		if (got < 0) {
			nb_xenbus_fatal(v, "tx ring broken");
			return -1;
		}
		if (got == 0)
			return 0;
		v->st.tx_slots++;
		q->tx_slots++;
		if (q->cur_want_extra) {
			/* this slot is an extra-info; its bytes were copied once */
			struct pvio_netif_extra_info ex;
			memcpy(&ex, &rq, sizeof(ex));
			q->cur_extras++;
			if (ex.type == PVIO_XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= PVIO_XEN_NETIF_EXTRA_TYPE_MAX ||
			    q->cur_extras >= PVIO_XEN_NETIF_EXTRA_TYPE_MAX) {
				nb_xenbus_fatal(v, "invalid extra-info slot");
				return -1;
			}
			if (ex.type == PVIO_XEN_NETIF_EXTRA_TYPE_GSO) {
				if (q->cur_has_gso || ex.u.gso.size == 0 ||
				    (ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV4 &&
				     ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV6))
					q->cur_err = q->cur_err ? q->cur_err : TX_EXTRA;
				q->cur_gso = ex;
				q->cur_has_gso = true;
			}
			/* multicast add/del: no multicast control offered, ignored */
			q->cur_want_extra = (ex.flags & PVIO_XEN_NETIF_EXTRA_FLAG_MORE) != 0;
			if (q->cur_want_extra)
				continue;
			if (!(q->cur[0].flags & PVIO_NETTXF_more_data))
				return 1;
			continue;
		}
		if (q->cur_n == 0) {
			q->cur[0] = rq;
			q->cur_n = 1;
			if (rq.size < NB_ETH_HLEN)
				q->cur_err = TX_RUNT;
			q->cur_want_extra = (rq.flags & PVIO_NETTXF_extra_info) != 0;
			if (q->cur_want_extra)
				continue;
			if (!(rq.flags & PVIO_NETTXF_more_data))
				break;
			continue;
		}
		/* a fragment */
		q->cur[q->cur_n++] = rq;
		if (q->cur_n >= NB_SLOTS_FATAL) {
			nb_xenbus_fatal(v, "a packet of 20 or more slots");
			return -1;
		}
		if (!(rq.flags & PVIO_NETTXF_more_data))
			break;
	}
	return 1;
}

/* Final checks of a complete chain; the reason it must be dropped or 0. */
static int check_packet(struct nb_queue *q)
{
	const struct pvio_netif_tx_request *s = q->cur;
	uint32_t left = s[0].size;

	if (q->cur_err)
		return q->cur_err;
	if (q->cur_n > NB_SLOTS_DROP)
		return TX_SLOTS;
	for (unsigned i = 1; i < q->cur_n; i++) {
		if (s[i].size == 0)
			return TX_ZERO_FRAG;
		if (s[i].size > left)
			return TX_FRAG_SIZE;
		if ((uint32_t)s[i].offset + s[i].size > NB_PAGE)
			return TX_PAGE_CROSS;
		left -= s[i].size;
	}
	/* what remains is the first slot's own data */
	if ((uint32_t)s[0].offset + left > NB_PAGE)
		return TX_PAGE_CROSS;
	if (left < NB_ETH_HLEN)
		return TX_HDR_SPLIT;
	return 0;
}

/* Fill the virtio_net_hdr of a copied packet; a TX_* reason if impossible. */
static int set_vnet(struct nb_vif *v, struct txpkt *p, struct virtio_net_hdr *vh, uint8_t *f)
{
	uint16_t start, off, hend;
	uint8_t proto;
	bool v6;

	(void)v;
	memset(vh, 0, sizeof(*vh));
	if (p->slots[0].flags & PVIO_NETTXF_csum_blank || p->has_gso) {
		if (pvio_net_l4_locate(f, p->len, &start, &off, &proto, &hend, &v6))
			return TX_OFFLOAD;
		vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh->csum_start = start;
		vh->csum_offset = off;
		if (p->has_gso) {
			bool want6 = p->gso.u.gso.type == PVIO_XEN_NETIF_GSO_TYPE_TCPV6;
			if (proto != 6 || want6 != v6)
				return TX_OFFLOAD;
			vh->gso_type = want6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
			vh->gso_size = p->gso.u.gso.size;
			vh->hdr_len = hend;
		}
	} else if (p->slots[0].flags & PVIO_NETTXF_data_validated) {
		vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	return 0;
}

int nb_rate_parse(const char *s, uint64_t *bytes, uint64_t *usec)
{
	unsigned long long b, us;
	char *end;

	/* "BYTES,USECS" (libxl writes it), digits only: no sign, no spaces */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	b = strtoull(s, &end, 10);
	if (errno || *end != ',' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	us = strtoull(end + 1, &end, 10);
	/* a zero credit or interval would stop tx for good; more than 2^40
	 * bytes or 10 s per interval is not a rate anyone means */
	if (errno || *end || b == 0 || us == 0 || b > (1ull << 40) || us > 10000000)
		return -EINVAL;
	*bytes = b;
	*usec = us;
	return 0;
}

static void rate_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nb_vif *v = w->data;

	(void)loop;
	(void)revents;
	for (unsigned i = 0; i < v->nq; i++)
		nb_tx_kick(&v->q[i]);
}

void nb_rate_stop(struct nb_vif *v)
{
	ev_timer_stop(v->loop, &v->rate_w);
}

/* A new limit (0/0: none) takes effect now, with a full interval's credit. */
void nb_rate_set(struct nb_vif *v, uint64_t bytes, uint64_t usec)
{
	nb_rate_stop(v);
	v->rate_bytes = bytes;
	v->rate_usec = usec;
	v->credit = bytes;
	v->rate_window = ev_now(v->loop);
	for (unsigned i = 0; i < v->nq && v->connected; i++)
		nb_tx_kick(&v->q[i]);
}

/*
 * May a packet of @bytes go now? Takes it from the credit if so. If not,
 * arms the timer for the next interval (whose callback kicks every queue)
 * and returns false. The credit is refilled once per interval by
 * rate_bytes, capped at max(rate_bytes, NB_MAX_PKT) so that any packet can
 * go eventually and nothing saved up while idle can burst: over any T
 * seconds at most rate_bytes * (T / interval + 1) bytes go out.
 */
static bool rate_allows(struct nb_vif *v, uint32_t bytes)
{
	double now, win;
	uint64_t cap;

	if (!v->rate_bytes)
		return true;
	now = ev_now(v->loop);
	win = (double)v->rate_usec / 1e6;
	if (now >= v->rate_window + win) {
		cap = v->rate_bytes > NB_MAX_PKT ? v->rate_bytes : NB_MAX_PKT;
		v->credit = v->credit + v->rate_bytes > cap ? cap : v->credit + v->rate_bytes;
		/* keep intervals back to back while busy, so the limit is the
		 * rate; after an idle spell start afresh */
		v->rate_window = now < v->rate_window + 2 * win ? v->rate_window + win : now;
	}
	if (bytes <= v->credit) {
		v->credit -= bytes;
		return true;
	}
	v->st.rate_waits++;
	v->stats_dirty = true;
	if (!ev_is_active(&v->rate_w)) {
		double left = v->rate_window + win - now;
		ev_timer_init(&v->rate_w, rate_cb, left > 0 ? left : 0., 0.);
		v->rate_w.data = v;
		ev_timer_start(v->loop, &v->rate_w);
	}
	return false;
}

/*
 * Gather up to NB_TX_BATCH complete packets of @q into v->copy (each slot
 * one segment, into the packet's txbuf slot) while the copy has room for
 * a largest packet. A bad packet is answered DROPPED here; a packet over
 * the rate credit is held and sets *paused. Returns the packets gathered,
 * or -1 if the frontend broke the protocol (the vif is disabled; what was
 * gathered is forgotten). Nothing is pushed or copied yet.
 */
int nb_tx_gather(struct nb_queue *q, bool *paused)
{
	struct nb_vif *v = q->v;
	struct nb_copy *c = &v->copy;
	unsigned np = 0, ns0 = c->n;

	while (np < NB_TX_BATCH && !*paused && c->n + NB_SLOTS_DROP <= NB_COPY_SEGS) {
		/* a held packet is complete: do not take more slots for it */
		int r = q->cur_held ? 1 : take_packet(q);
		if (r < 0) {
			c->n = ns0;
			return -1;
		}
		if (r == 0)
			break;
		int why = check_packet(q);
		if (why) {
			count_drop(v, why, &q->cur[0], q->cur_n);
			respond(q, q->cur, q->cur_n, q->cur_extras, PVIO_NETIF_RSP_DROPPED);
			nb_tx_reset(q);
			continue;
		}
		if (!rate_allows(v, q->cur[0].size)) {
			q->cur_held = true;
			*paused = true;
			break;
		}
		struct txpkt *p = &batch[np];
		uint8_t *dst = v->txbuf + (size_t)np * NB_TXBUF_SZ + sizeof(struct virtio_net_hdr);
		uint32_t first = q->cur[0].size, pos = 0;

		memcpy(p->slots, q->cur, q->cur_n * sizeof(q->cur[0]));
		p->n = q->cur_n;
		p->extras = q->cur_extras;
		p->gso = q->cur_gso;
		p->has_gso = q->cur_has_gso;
		p->len = first;
		p->seg0 = c->n;
		for (unsigned i = 1; i < p->n; i++)
			first -= p->slots[i].size;
		for (unsigned i = 0; i < p->n; i++) {
			xengnttab_grant_copy_segment_t *g = &c->seg[c->n++];
			uint16_t len = i == 0 ? (uint16_t)first : p->slots[i].size;
			memset(g, 0, sizeof(*g));
			g->source.foreign.ref = p->slots[i].gref;
			g->source.foreign.domid = (domid_t)v->domid;
			g->source.foreign.offset = p->slots[i].offset;
			g->dest.virt = dst + pos;
			g->len = len;
			g->flags = GNTCOPY_source_gref;
			pos += len;
		}
		p->nseg = c->n - p->seg0;
		nb_tx_reset(q);
		np++;
	}
	return (int)np;
}

/* The grant copy of what was gathered: @np tx packets and @nw rx packets
 * of one queue, in one call (one hypercall; on xensim one round trip to
 * xensimd). A failed call fails every segment. */
void nb_copy_run(struct nb_vif *v, unsigned np, unsigned nw)
{
	struct nb_copy *c = &v->copy;

	if (!c->n)
		return;
	v->st.copy_calls++;
	v->st.tx_copy_calls += np != 0;
	v->st.rx_copy_calls += nw != 0;
	if (xengnttab_grant_copy(v->xgt, c->n, c->seg) < 0) {
		for (unsigned i = 0; i < c->n; i++)
			c->seg[i].status = GNTST_general_error;
	}
}

/* After the copy: each of the @np gathered packets to the TAP (or
 * answered ERROR if a segment's copy was refused), every answer pushed,
 * the frontend notified if it asked. */
void nb_tx_finish(struct nb_queue *q, unsigned np)
{
	struct nb_vif *v = q->v;
	const struct nb_copy *c = &v->copy;

	for (unsigned i = 0; i < np; i++) {
		struct txpkt *p = &batch[i];
		uint8_t *buf = v->txbuf + (size_t)i * NB_TXBUF_SZ;
		int16_t status = PVIO_NETIF_RSP_OKAY;
		bool ok = true;

		for (unsigned s = 0; s < p->nseg; s++)
			ok &= c->seg[p->seg0 + s].status == GNTST_okay;
		if (!ok) {
			v->st.tx_drop_copy++;
			nb_log(v, "tx drop: grant copy refused (gref %u; %llu such drops)", p->slots[0].gref,
			       (unsigned long long)v->st.tx_drop_copy);
			status = PVIO_NETIF_RSP_ERROR;
		} else {
			int why = set_vnet(v, p, (struct virtio_net_hdr *)buf, buf + sizeof(struct virtio_net_hdr));
			if (why) {
				count_drop(v, why, &p->slots[0], p->n);
				status = PVIO_NETIF_RSP_DROPPED;
			} else if (write(q->tapfd, buf, sizeof(struct virtio_net_hdr) + p->len) < 0) {
				v->st.tx_drop_tap++;
				if (v->st.tx_drop_tap < 10 || !(v->st.tx_drop_tap & 1023))
					nb_log(v, "tx drop: TAP refused a %u-byte packet: %s (%llu such drops)", p->len,
					       strerror(errno), (unsigned long long)v->st.tx_drop_tap);
				status = PVIO_NETIF_RSP_DROPPED;
			} else {
				v->st.tx_packets++;
				v->st.tx_bytes += p->len;
				q->tx_packets++;
			}
		}
		v->stats_dirty = true;
		respond(q, p->slots, p->n, p->extras, status);
	}
	if (v->connected && !v->disabled && pvio_ring_back_push_responses(&q->tx)) {
		pvio_evtchn_notify(v->ev, q->port_tx);
		v->st.notifies_tx++;
	}
}

void nb_tx_kick(struct nb_queue *q)
{
	struct nb_vif *v = q->v;
	bool paused = false;
	unsigned batches = 0;

	while (v->connected && !v->disabled && !paused && !ev_is_active(&v->rate_w)) {
		int np, nw = 0;
		int n = pvio_ring_back_poll_requests(&q->tx);

		if (n == 0)
			n = pvio_ring_back_final_check(&q->tx);
		if (n < 0) {
			nb_xenbus_fatal(v, "tx request producer ran past the ring");
			return;
		}
		if (n == 0 && q->cur_n == 0)
			break;
		if (batches++ == NB_TX_ROUND_BATCHES) {
			/* bounded work per round: the rest on the next loop pass */
			nb_event_more(q);
			break;
		}
		v->copy.n = 0;
		np = nb_tx_gather(q, &paused);
		if (np < 0)
			return;
		/* frames already queued for the guest ride on the same copy
		 * call: one hypercall for both directions of this pass */
		if (np)
			nw = nb_rx_gather(q, true);
		nb_copy_run(v, (unsigned)np, (unsigned)nw);
		if (nw)
			nb_rx_finish(q, (unsigned)nw);
		nb_tx_finish(q, (unsigned)np);
		if (np == 0 && n == 0)
			break;
		if (np == 0 && pvio_ring_back_free_responses(&q->tx) == 0 && q->cur_n)
			break; /* a partial chain waits for more slots */
	}
	/* answers for dropped packets may still be unpushed */
	if (v->connected && !v->disabled && pvio_ring_back_push_responses(&q->tx)) {
		pvio_evtchn_notify(v->ev, q->port_tx);
		v->st.notifies_tx++;
	}
}
