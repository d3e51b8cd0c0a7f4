/* SPDX-License-Identifier: MIT */
/*
 * netfront data path: frames into tx pages and onto the tx ring; rx
 * responses copied out once, validated, frames copied out of the rx pages
 * before those are posted again.
 */
#include "private.h"

#define MASK (NF_RING_SLOTS - 1)

static void die(struct pvio_netfront *nf)
{
	nf->dead = true;
}

static void notify(struct pvio_netfront *nf, uint32_t port)
{
	nf->ops.evtchn_notify(nf->ops.ctx, port);
	nf->st.notifies++;
}

void nf_rx_refill(struct pvio_netfront *nf)
{
	bool any = false;

	/* only buffers whose data has been copied out may go back */
	while ((uint32_t)(nf->rx.req_prod_pvt - nf->rx_done) < NF_RING_SLOTS &&
	       pvio_ring_front_free_requests(&nf->rx)) {
		uint32_t pos = nf->rx.req_prod_pvt;
		struct pvio_netif_rx_request rq = {
			.id = (uint16_t)(pos & MASK),
			.gref = nf->rx_refs[pos & MASK],
		};
		pvio_ring_netif_rx_put_request(&nf->rx, &rq);
		any = true;
	}
	if (any && pvio_ring_front_push_requests(&nf->rx))
		notify(nf, nf->port_rx);
}

static void reap_tx(struct pvio_netfront *nf)
{
	for (;;) {
		struct pvio_netif_tx_response r;
		int n = pvio_ring_front_poll_responses(&nf->tx);

		if (n == 0)
			n = pvio_ring_front_final_check(&nf->tx);
		if (n < 0) {
			die(nf);
			return;
		}
		if (n == 0)
			return;
		while (pvio_ring_netif_tx_copy_response(&nf->tx, &r) == 1) {
			if (r.status == PVIO_NETIF_RSP_NULL)
				continue; /* answer to an extra-info slot */
			if (r.id >= NF_RING_SLOTS || !nf->tx_inflight[r.id]) {
				die(nf); /* an id we never sent: the backend is broken */
				return;
			}
			nf->tx_inflight[r.id] = false;
			nf->tx_free[nf->tx_nfree++] = r.id;
			if (r.status != PVIO_NETIF_RSP_OKAY)
				nf->st.tx_errors++;
		}
	}
}

int pvio_netfront_process(struct pvio_netfront *nf, unsigned events)
{
	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (events & PVIO_NETFRONT_EV_XS) {
		uint32_t st;
		int err = nf_read_uint(nf, nf->backend, "state", 7, &st);
		if (err == -PVIO_NETFRONT_ENOENT || (err == 0 && st >= NF_XB_CLOSING) || err == -PVIO_NETFRONT_EPROTO)
			die(nf);
	}
	reap_tx(nf);
	nf_rx_refill(nf);
	return nf->dead ? -PVIO_NETFRONT_EIO : 0;
}

static unsigned data_slots(size_t len)
{
	return (unsigned)((len + NF_PAGE - 1) / NF_PAGE);
}

bool pvio_netfront_can_send(const struct pvio_netfront *nf, size_t len)
{
	unsigned d = data_slots(len);

	return !nf->dead && nf->tx_nfree >= d && pvio_ring_front_free_requests(&nf->tx) >= d + 1;
}

int pvio_netfront_send(struct pvio_netfront *nf, const void *frame, size_t len,
		       const struct pvio_netfront_meta *meta)
{
	const uint8_t *src = frame;
	unsigned d = data_slots(len);
	uint16_t flags = 0;
	bool gso = false;

	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (len < 14 || len > PVIO_NETFRONT_MAX_FRAME || (d > 1 && !nf->info.sg))
		return -PVIO_NETFRONT_EMSGSIZE;
	if (meta) {
		if (meta->flags & PVIO_NETFRONT_F_CSUM_BLANK) {
			if (!nf->info.tx_csum)
				return -PVIO_NETFRONT_EINVAL;
			flags |= PVIO_NETTXF_csum_blank | PVIO_NETTXF_data_validated;
		} else if (meta->flags & PVIO_NETFRONT_F_DATA_VALIDATED) {
			flags |= PVIO_NETTXF_data_validated;
		}
		if (meta->gso_type != PVIO_NETFRONT_GSO_NONE) {
			if ((meta->gso_type == PVIO_NETFRONT_GSO_TCPV4 && !nf->info.tx_gso4) ||
			    (meta->gso_type == PVIO_NETFRONT_GSO_TCPV6 && !nf->info.tx_gso6) ||
			    meta->gso_type > PVIO_NETFRONT_GSO_TCPV6 || !meta->gso_size)
				return -PVIO_NETFRONT_EINVAL;
			gso = true;
		}
	}
	if (nf->tx_nfree < d || pvio_ring_front_free_requests(&nf->tx) < d + (gso ? 1u : 0u)) {
		nf->st.tx_busy++;
		return -PVIO_NETFRONT_EAGAIN;
	}
	for (unsigned i = 0; i < d; i++) {
		uint16_t id = nf->tx_free[--nf->tx_nfree];
		size_t off = (size_t)i * NF_PAGE;
		size_t chunk = len - off > NF_PAGE ? NF_PAGE : len - off;
		struct pvio_netif_tx_request rq;

		nf_memcpy(nf->tx_pages + (size_t)id * NF_PAGE, src + off, chunk);
		nf->tx_inflight[id] = true;
		nf_memset(&rq, 0, sizeof(rq));
		rq.gref = nf->tx_refs[id];
		rq.offset = 0;
		rq.id = id;
		/* the first slot carries the whole packet's size */
		rq.size = (uint16_t)(i == 0 ? len : chunk);
		if (i + 1 < d)
			rq.flags |= PVIO_NETTXF_more_data;
		if (i == 0) {
			rq.flags |= flags;
			if (gso)
				rq.flags |= PVIO_NETTXF_extra_info;
		}
		pvio_ring_netif_tx_put_request(&nf->tx, &rq);
		if (i == 0 && gso) {
			struct pvio_netif_extra_info ex;
			struct pvio_netif_tx_request slot;
			nf_memset(&ex, 0, sizeof(ex));
			nf_memset(&slot, 0, sizeof(slot));
			ex.type = PVIO_XEN_NETIF_EXTRA_TYPE_GSO;
			ex.u.gso.size = meta->gso_size;
			ex.u.gso.type = meta->gso_type == PVIO_NETFRONT_GSO_TCPV6 ? PVIO_XEN_NETIF_GSO_TYPE_TCPV6
										 : PVIO_XEN_NETIF_GSO_TYPE_TCPV4;
			nf_memcpy(&slot, &ex, sizeof(ex));
			pvio_ring_netif_tx_put_request(&nf->tx, &slot);
		}
	}
	nf->st.tx_packets++;
	nf->st.tx_bytes += len;
	if (pvio_ring_front_push_requests(&nf->tx))
		notify(nf, nf->port_tx);
	return 0;
}

static void chain_reset(struct pvio_netfront *nf)
{
	nf->cur_n = 0;
	nf->cur_bad = false;
	nf->cur_want_extra = false;
	nf->cur_more = false;
	nf->cur_has_gso = false;
}

/*
 * Copy responses until a chain completes: 1 complete (nf->cur), 0 need
 * more, <0 ring broken.
 */
static int take_chain(struct pvio_netfront *nf)
{
	for (;;) {
		struct pvio_netif_rx_response r;
		uint32_t pos = nf->rx.rsp_cons;
		int got = pvio_ring_netif_rx_copy_response(&nf->rx, &r);

		if (got < 0)
			return got;
		if (got == 0) {
			int n = pvio_ring_front_poll_responses(&nf->rx);
			if (n == 0)
				n = pvio_ring_front_final_check(&nf->rx);
			if (n < 0)
				return n;
			if (n == 0)
				return 0;
			continue;
		}
		if (nf->cur_want_extra) {
			struct pvio_netif_extra_info ex;
			nf_memcpy(&ex, &r, sizeof(ex));
			if (ex.type != PVIO_XEN_NETIF_EXTRA_TYPE_GSO || nf->cur_has_gso || !ex.u.gso.size ||
			    (ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV4 &&
			     ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV6))
				nf->cur_bad = true;
			nf->cur_gso = ex;
			nf->cur_has_gso = true;
			nf->cur_want_extra = (ex.flags & PVIO_XEN_NETIF_EXTRA_FLAG_MORE) != 0;
			/* extras after the first response are still rx positions */
			if (!nf->cur_want_extra && !nf->cur_more)
				return 1;
			continue;
		}
		if (nf->cur_n <= NF_MAX_RX_SLOTS) {
			nf->cur[nf->cur_n] = r;
			nf->cur_pos[nf->cur_n] = pos;
			nf->cur_n++;
		} else {
			nf->cur_bad = true; /* too many slots: keep consuming, drop */
		}
		if (r.id != (pos & MASK) || r.status < 0 || (uint32_t)r.offset + (uint16_t)r.status > NF_PAGE)
			nf->cur_bad = true;
		nf->cur_more = (r.flags & PVIO_NETRXF_more_data) != 0;
		if (nf->cur_n == 1 && (r.flags & PVIO_NETRXF_extra_info)) {
			nf->cur_want_extra = true;
			continue;
		}
		if (!nf->cur_more)
			return 1;
	}
}

int pvio_netfront_recv(struct pvio_netfront *nf, void *buf, size_t cap, struct pvio_netfront_meta *meta)
{
	for (;;) {
		uint8_t *dst = buf;
		size_t total = 0;
		int r;

		if (nf->dead)
			return -PVIO_NETFRONT_EIO;
		r = take_chain(nf);
		if (r < 0) {
			die(nf);
			return -PVIO_NETFRONT_EIO;
		}
		if (r == 0) {
			nf_rx_refill(nf);
			return -PVIO_NETFRONT_EAGAIN;
		}
		for (unsigned i = 0; i < nf->cur_n && !nf->cur_bad; i++) {
			uint16_t n = (uint16_t)nf->cur[i].status;
			if (total + n > cap || total + n > PVIO_NETFRONT_MAX_FRAME) {
				nf->cur_bad = true;
				break;
			}
			nf_memcpy(dst + total, nf->rx_pages + (size_t)(nf->cur_pos[i] & MASK) * NF_PAGE + nf->cur[i].offset, n);
			total += n;
		}
		if (total < 14)
			nf->cur_bad = true;
		/* every position of the chain is done: its buffers may return */
		nf->rx_done = nf->rx.rsp_cons;
		if (nf->cur_bad) {
			nf->st.rx_errors++;
			chain_reset(nf);
			nf_rx_refill(nf);
			continue;
		}
		if (meta) {
			uint16_t f = nf->cur[0].flags;
			nf_memset(meta, 0, sizeof(*meta));
			if (f & PVIO_NETRXF_csum_blank)
				meta->flags |= PVIO_NETFRONT_F_CSUM_BLANK;
			if (f & PVIO_NETRXF_data_validated)
				meta->flags |= PVIO_NETFRONT_F_DATA_VALIDATED;
			if (nf->cur_has_gso) {
				meta->gso_type = nf->cur_gso.u.gso.type == PVIO_XEN_NETIF_GSO_TYPE_TCPV6 ? PVIO_NETFRONT_GSO_TCPV6
													: PVIO_NETFRONT_GSO_TCPV4;
				meta->gso_size = nf->cur_gso.u.gso.size;
			}
		}
		nf->st.rx_packets++;
		nf->st.rx_bytes += total;
		chain_reset(nf);
		nf_rx_refill(nf);
		return (int)total;
	}
}
