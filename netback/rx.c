/* SPDX-License-Identifier: MIT */
/*
 * Guest receive: TAP -> bounded queue -> grant copy into the buffers the
 * guest posted on the rx ring.
 *
 * The queue holds at most rxq_cap packets: a guest that posts no buffers
 * makes dom0 drop (and count) what arrives, never grow (XSA-392). Each rx
 * request is copied out of the ring once; responses go in request order
 * (frontends match them by ring position): first data slot, the GSO
 * extra-info slot if any, then the remaining data slots.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

#define RX_BATCH 64u
#define RX_MAX_SLOTS 17u /* 16 data pages of a 64 KiB packet + extra */

static uint8_t rdbuf[sizeof(struct virtio_net_hdr) + NB_MAX_PKT + 1];

struct rxwork {
	struct nb_rxpkt *pkt;
	struct pvio_netif_rx_request reqs[RX_MAX_SLOTS];
	unsigned nreq, seg0, nseg;
	bool gso;
	uint16_t flags;
};

static struct rxwork work[RX_BATCH];
static xengnttab_grant_copy_segment_t segs[RX_BATCH * RX_MAX_SLOTS];

int nb_rx_init(struct nb_vif *v, unsigned cap)
{
	v->rxq = calloc(cap, sizeof(*v->rxq));
	if (!v->rxq)
		return -ENOMEM;
	v->rxq_cap = cap;
	return 0;
}

void nb_rx_flush(struct nb_vif *v)
{
	while (v->rxq_len) {
		free(v->rxq[v->rxq_head]);
		v->rxq_head = (v->rxq_head + 1) % v->rxq_cap;
		v->rxq_len--;
	}
}

void nb_rx_fini(struct nb_vif *v)
{
	nb_rx_flush(v);
	free(v->rxq);
	v->rxq = NULL;
}

void nb_rx_tap_readable(struct nb_vif *v)
{
	/* bounded work per wake-up so tx is served too */
	for (int i = 0; i < 256; i++) {
		ssize_t n = read(v->tapfd, rdbuf, sizeof(rdbuf));
		struct nb_rxpkt *p;
		size_t len;

		if (n < 0)
			break; /* EAGAIN: drained */
		if ((size_t)n <= sizeof(struct virtio_net_hdr))
			continue;
		len = (size_t)n - sizeof(struct virtio_net_hdr);
		if (!v->connected || v->disabled) {
			v->st.rx_drop_down++;
			continue;
		}
		if (v->rxq_len == v->rxq_cap) {
			v->st.rx_drop_queue_full++;
			v->stats_dirty = true;
			if (v->st.rx_drop_queue_full == 1 || !(v->st.rx_drop_queue_full & 1023))
				nb_log(v, "rx drop: guest posts no buffers, queue at its bound of %u packets "
				       "(%llu such drops)", v->rxq_cap,
				       (unsigned long long)v->st.rx_drop_queue_full);
			continue;
		}
		p = malloc(sizeof(*p) + len);
		if (!p) {
			v->st.rx_drop_queue_full++;
			continue;
		}
		p->len = (uint32_t)len;
		memcpy(&p->vh, rdbuf, sizeof(p->vh));
		memcpy(p->data, rdbuf + sizeof(p->vh), len);
		v->rxq[(v->rxq_head + v->rxq_len) % v->rxq_cap] = p;
		v->rxq_len++;
		if (v->rxq_len > v->st.rx_queue_peak)
			v->st.rx_queue_peak = v->rxq_len;
	}
	nb_rx_kick(v);
}

static void drop_head(struct nb_vif *v, uint64_t *counter)
{
	(*counter)++;
	v->stats_dirty = true;
	free(v->rxq[v->rxq_head]);
	v->rxq_head = (v->rxq_head + 1) % v->rxq_cap;
	v->rxq_len--;
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
			*flags = PVIO_NETRXF_data_validated;
		}
	} else if (p->vh.flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		*flags = PVIO_NETRXF_data_validated;
	}
	return slots + (*gso ? 1 : 0);
}

void nb_rx_kick(struct nb_vif *v)
{
	while (v->connected && !v->disabled && v->rxq_len) {
		unsigned nw = 0, ns = 0;

		while (nw < RX_BATCH && v->rxq_len) {
			struct nb_rxpkt *p = v->rxq[v->rxq_head];
			struct rxwork *w = &work[nw];
			unsigned need = prepare(v, p, &w->gso, &w->flags);
			int avail;

			if (!need) {
				drop_head(v, &v->st.rx_drop_too_big);
				continue;
			}
			avail = pvio_ring_back_poll_requests(&v->rx);
			if (avail >= 0 && (unsigned)avail < need) {
				/* ask for an event once enough buffers are posted */
				__atomic_store_n(&v->rx.sring->req_event, v->rx.req_cons + need, __ATOMIC_RELAXED);
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				avail = pvio_ring_back_poll_requests(&v->rx);
			}
			if (avail < 0) {
				nb_xenbus_fatal(v, "rx request producer ran past the ring");
				return;
			}
			if ((unsigned)avail < need)
				break;
			w->pkt = p;
			w->nreq = need;
			w->seg0 = ns;
			for (unsigned i = 0; i < need; i++)
				pvio_ring_netif_rx_copy_request(&v->rx, &w->reqs[i]);
			/* data goes to slot 0 and, after the extra, slots 2.. */
			for (unsigned i = 0, off = 0; i < need; i++) {
				xengnttab_grant_copy_segment_t *g;
				uint32_t len;
				if (w->gso && i == 1)
					continue;
				len = p->len - off > NB_PAGE ? NB_PAGE : p->len - off;
				g = &segs[ns++];
				memset(g, 0, sizeof(*g));
				g->source.virt = p->data + off;
				g->dest.foreign.ref = w->reqs[i].gref;
				g->dest.foreign.domid = (domid_t)v->domid;
				g->dest.foreign.offset = 0;
				g->len = (uint16_t)len;
				g->flags = GNTCOPY_dest_gref;
				off += len;
			}
			w->nseg = ns - w->seg0;
			v->rxq_head = (v->rxq_head + 1) % v->rxq_cap;
			v->rxq_len--;
			nw++;
		}
		if (nw == 0)
			break;
		if (xengnttab_grant_copy(v->xgt, ns, segs) < 0)
			for (unsigned i = 0; i < ns; i++)
				segs[i].status = GNTST_general_error;
		for (unsigned i = 0; i < nw; i++) {
			struct rxwork *w = &work[i];
			bool ok = true;
			unsigned s = 0;

			for (unsigned k = 0; k < w->nseg; k++)
				ok &= segs[w->seg0 + k].status == GNTST_okay;
			if (!ok)
				v->st.rx_drop_copy++;
			else {
				v->st.rx_packets++;
				v->st.rx_bytes += w->pkt->len;
			}
			for (unsigned k = 0; k < w->nreq; k++) {
				if (w->gso && k == 1) {
					struct pvio_netif_extra_info ex;
					struct pvio_netif_rx_response r;
					memset(&ex, 0, sizeof(ex));
					ex.type = PVIO_XEN_NETIF_EXTRA_TYPE_GSO;
					ex.u.gso.size = w->pkt->vh.gso_size;
					ex.u.gso.type = (w->pkt->vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) ==
								VIRTIO_NET_HDR_GSO_TCPV6
							? PVIO_XEN_NETIF_GSO_TYPE_TCPV6
							: PVIO_XEN_NETIF_GSO_TYPE_TCPV4;
					memcpy(&r, &ex, sizeof(r));
					pvio_ring_netif_rx_put_response(&v->rx, &r);
					continue;
				}
				struct pvio_netif_rx_response r;
				xengnttab_grant_copy_segment_t *g = &segs[w->seg0 + s++];
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
				pvio_ring_netif_rx_put_response(&v->rx, &r);
			}
			free(w->pkt);
		}
		v->stats_dirty = true;
		if (pvio_ring_back_push_responses(&v->rx)) {
			pvio_evtchn_notify(v->ev, v->port_rx);
			v->st.notifies_rx++;
		}
	}
}
