/* SPDX-License-Identifier: MIT */
/*
 * Guest transmit: tx ring -> grant copy -> TAP.
 *
 * Each ring slot is copied out once (pvio_ring_netif_tx_copy_request) into
 * v->cur and only that copy is validated; a chain that is not complete yet
 * stays in v->cur until the frontend produces the rest. A complete packet
 * is either doomed (dropped and counted, every slot answered with
 * RSP_DROPPED/ERROR) or queued in a batch: up to NB_TX_BATCH packets are
 * copied out of the guest with one xengnttab_grant_copy call, then written
 * to the TAP with a virtio_net_hdr carrying checksum and GSO requests.
 *
 * The hostile-frontend checklist (PROTOCOL-NOTES §4 netback TX) maps to
 * the reasons below; a ring producer past the ring size, 20 or more slots
 * in one packet, or an invalid extra-info type disable the vif.
 */
#include <errno.h>
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
static xengnttab_grant_copy_segment_t segs[NB_TX_BATCH * NB_SLOTS_DROP];

void nb_tx_reset(struct nb_vif *v)
{
	v->cur_n = 0;
	v->cur_extras = 0;
	v->cur_more_extra = false;
	v->cur_want_extra = false;
	v->cur_has_gso = false;
	v->cur_err = TX_OK;
}

static void respond(struct nb_vif *v, const struct pvio_netif_tx_request *slots, unsigned n,
		    unsigned extras, int16_t status)
{
	struct pvio_netif_tx_response r;

	/* ring order: first slot, its extra-info slots, the fragments */
	memset(&r, 0, sizeof(r));
	r.id = slots[0].id;
	r.status = status;
	pvio_ring_netif_tx_put_response(&v->tx, &r);
	for (unsigned i = 0; i < extras; i++) {
		memset(&r, 0, sizeof(r));
		r.status = PVIO_NETIF_RSP_NULL;
		pvio_ring_netif_tx_put_response(&v->tx, &r);
	}
	for (unsigned i = 1; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.id = slots[i].id;
		r.status = status;
		pvio_ring_netif_tx_put_response(&v->tx, &r);
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
 * Take slots off the ring until the chain in v->cur completes.
 * Returns 1 with a complete packet in v->cur (v->cur_err says if it is
 * doomed), 0 if the ring ran dry first (progress is kept), -1 if the
 * frontend broke the protocol (the vif has been disabled).
 */
static int take_packet(struct nb_vif *v)
{
	for (;;) {
		struct pvio_netif_tx_request rq;
		int got = pvio_ring_netif_tx_copy_request(&v->tx, &rq);

		if (got < 0) {
			nb_xenbus_fatal(v, "tx ring broken");
			return -1;
		}
		if (got == 0)
			return 0;
		v->st.tx_slots++;
		if (v->cur_want_extra) {
			/* this slot is an extra-info; its bytes were copied once */
			struct pvio_netif_extra_info ex;
			memcpy(&ex, &rq, sizeof(ex));
			v->cur_extras++;
			if (ex.type == PVIO_XEN_NETIF_EXTRA_TYPE_NONE || ex.type >= PVIO_XEN_NETIF_EXTRA_TYPE_MAX ||
			    v->cur_extras >= PVIO_XEN_NETIF_EXTRA_TYPE_MAX) {
				nb_xenbus_fatal(v, "invalid extra-info slot");
				return -1;
			}
			if (ex.type == PVIO_XEN_NETIF_EXTRA_TYPE_GSO) {
				if (v->cur_has_gso || ex.u.gso.size == 0 ||
				    (ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV4 &&
				     ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV6))
					v->cur_err = v->cur_err ? v->cur_err : TX_EXTRA;
				v->cur_gso = ex;
				v->cur_has_gso = true;
			}
			/* multicast add/del: no multicast control offered, ignored */
			v->cur_want_extra = (ex.flags & PVIO_XEN_NETIF_EXTRA_FLAG_MORE) != 0;
			if (v->cur_want_extra)
				continue;
			if (!(v->cur[0].flags & PVIO_NETTXF_more_data))
				return 1;
			continue;
		}
		if (v->cur_n == 0) {
			v->cur[0] = rq;
			v->cur_n = 1;
			if (rq.size < NB_ETH_HLEN)
				v->cur_err = TX_RUNT;
			v->cur_want_extra = (rq.flags & PVIO_NETTXF_extra_info) != 0;
			if (v->cur_want_extra)
				continue;
			if (!(rq.flags & PVIO_NETTXF_more_data))
				break;
			continue;
		}
		/* a fragment */
		v->cur[v->cur_n++] = rq;
		if (v->cur_n >= NB_SLOTS_FATAL) {
			nb_xenbus_fatal(v, "a packet of 20 or more slots");
			return -1;
		}
		if (!(rq.flags & PVIO_NETTXF_more_data))
			break;
	}
	return 1;
}

/* Final checks of a complete chain; the reason it must be dropped or 0. */
static int check_packet(struct nb_vif *v)
{
	const struct pvio_netif_tx_request *s = v->cur;
	uint32_t left = s[0].size;

	if (v->cur_err)
		return v->cur_err;
	if (v->cur_n > NB_SLOTS_DROP)
		return TX_SLOTS;
	for (unsigned i = 1; i < v->cur_n; i++) {
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

static void rate_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nb_vif *v = w->data;

	(void)loop;
	(void)revents;
	v->credit = v->rate_bytes;
	nb_tx_kick(v);
}

/* Charge a packet against the credit; false when tx must pause. */
static bool rate_charge(struct nb_vif *v, uint32_t bytes)
{
	if (!v->rate_bytes)
		return true;
	v->credit = bytes >= v->credit ? 0 : v->credit - bytes;
	if (v->credit > 0)
		return true;
	v->st.rate_waits++;
	ev_timer_stop(v->loop, &v->rate_w);
	ev_timer_init(&v->rate_w, rate_cb, (double)v->rate_usec / 1e6, 0.);
	v->rate_w.data = v;
	ev_timer_start(v->loop, &v->rate_w);
	return false;
}

void nb_tx_kick(struct nb_vif *v)
{
	bool paused = false;

	if (v->rate_bytes && !v->credit && !ev_is_active(&v->rate_w))
		v->credit = v->rate_bytes;
	while (v->connected && !v->disabled && !paused && !ev_is_active(&v->rate_w)) {
		unsigned np = 0, ns = 0;
		int n = pvio_ring_back_poll_requests(&v->tx);

		if (n == 0)
			n = pvio_ring_back_final_check(&v->tx);
		if (n < 0) {
			nb_xenbus_fatal(v, "tx request producer ran past the ring");
			return;
		}
		if (n == 0 && v->cur_n == 0)
			break;
		/* gather a batch of complete packets */
		while (np < NB_TX_BATCH && !paused) {
			int r = take_packet(v);
			if (r < 0)
				return;
			if (r == 0)
				break;
			int why = check_packet(v);
			if (why) {
				count_drop(v, why, &v->cur[0], v->cur_n);
				respond(v, v->cur, v->cur_n, v->cur_extras, PVIO_NETIF_RSP_DROPPED);
				nb_tx_reset(v);
				continue;
			}
			struct txpkt *p = &batch[np];
			uint8_t *dst = v->txbuf + (size_t)np * NB_TXBUF_SZ + sizeof(struct virtio_net_hdr);
			uint32_t first = v->cur[0].size, pos = 0;

			memcpy(p->slots, v->cur, v->cur_n * sizeof(v->cur[0]));
			p->n = v->cur_n;
			p->extras = v->cur_extras;
			p->gso = v->cur_gso;
			p->has_gso = v->cur_has_gso;
			p->len = first;
			p->seg0 = ns;
			for (unsigned i = 1; i < p->n; i++)
				first -= p->slots[i].size;
			for (unsigned i = 0; i < p->n; i++) {
				xengnttab_grant_copy_segment_t *g = &segs[ns++];
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
			p->nseg = ns - p->seg0;
			nb_tx_reset(v);
			np++;
			if (!rate_charge(v, p->len))
				paused = true;
		}
		if (np && xengnttab_grant_copy(v->xgt, ns, segs) < 0) {
			/* the call itself failed: every segment counts as failed */
			for (unsigned i = 0; i < ns; i++)
				segs[i].status = GNTST_general_error;
		}
		for (unsigned i = 0; i < np; i++) {
			struct txpkt *p = &batch[i];
			uint8_t *buf = v->txbuf + (size_t)i * NB_TXBUF_SZ;
			int16_t status = PVIO_NETIF_RSP_OKAY;
			bool ok = true;

			for (unsigned s = 0; s < p->nseg; s++)
				ok &= segs[p->seg0 + s].status == GNTST_okay;
			if (!ok) {
				v->st.tx_drop_copy++;
				nb_log(v, "tx drop: grant copy refused (gref %u; %llu such drops)", p->slots[0].gref,
				       (unsigned long long)v->st.tx_drop_copy);
				status = PVIO_NETIF_RSP_ERROR;
			} else {
				int why = set_vnet(v, p, (struct virtio_net_hdr *)buf,
						   buf + sizeof(struct virtio_net_hdr));
				if (why) {
					count_drop(v, why, &p->slots[0], p->n);
					status = PVIO_NETIF_RSP_DROPPED;
				} else if (write(v->tapfd, buf, sizeof(struct virtio_net_hdr) + p->len) < 0) {
					v->st.tx_drop_tap++;
					if (v->st.tx_drop_tap < 10 || !(v->st.tx_drop_tap & 1023))
						nb_log(v, "tx drop: TAP refused a %u-byte packet: %s (%llu such drops)",
						       p->len, strerror(errno), (unsigned long long)v->st.tx_drop_tap);
					status = PVIO_NETIF_RSP_DROPPED;
				} else {
					v->st.tx_packets++;
					v->st.tx_bytes += p->len;
				}
			}
			v->stats_dirty = true;
			respond(v, p->slots, p->n, p->extras, status);
		}
		if (pvio_ring_back_push_responses(&v->tx)) {
			pvio_evtchn_notify(v->ev, v->port_tx);
			v->st.notifies_tx++;
		}
		if (np == 0 && n == 0)
			break;
		if (np == 0 && pvio_ring_back_free_responses(&v->tx) == 0 && v->cur_n)
			break; /* a partial chain waits for more slots */
	}
	/* answers for dropped packets may still be unpushed */
	if (v->connected && !v->disabled && pvio_ring_back_push_responses(&v->tx)) {
		pvio_evtchn_notify(v->ev, v->port_tx);
		v->st.notifies_tx++;
	}
}
