/* SPDX-License-Identifier: MIT */
/*
 * netfront data path, per queue: frames into tx pages and onto the tx
 * ring; rx responses copied out once, validated, frames copied out of the
 * rx pages before those are posted again.
 *
 * Notifications are the expensive part (each is an event the other side
 * wakes up for), so: rx buffers are reposted in bulk (NF_RX_REFILL_BATCH,
 * or everything once there is nothing more to receive, so the backend can
 * never wait for buffers we hold back), and tx completions are asked for
 * only when a queue is short of room, and then when half of what is in
 * flight is answered, not at each one.
 */
#include "private.h"

#define MASK (NF_RING_SLOTS - 1)

_Static_assert(PVIO_NETFRONT_MAX_SEGS >= NF_MAX_RX_SLOTS, "a frame's pieces fit segs[]");
_Static_assert(NF_MAX_RX_SLOTS * NF_PAGE > PVIO_NETFRONT_MAX_FRAME, "a reservation holds the largest frame");

static void die(struct pvio_netfront *nf)
{
	nf->dead = true;
}

static void notify(struct pvio_netfront *nf, uint32_t port)
{
	nf->ops.evtchn_notify(nf->ops.ctx, port);
	nf->st.notifies++;
}

void nf_copy_data(struct pvio_netfront *nf, void *d, const void *s, size_t n)
{
	if (nf->ops.copy)
		nf->ops.copy(nf->ops.ctx, d, s, n);
	else
		nf_memcpy(d, s, n);
}

void nf_rx_refill(struct nf_queue *q, bool all)
{
	struct pvio_netfront *nf = q->nf;
	/* only buffers whose data has been copied out may go back */
	uint32_t can = NF_RING_SLOTS - (uint32_t)(q->rx.req_prod_pvt - q->rx_done);
	bool any = false;

	if (can > pvio_ring_front_free_requests(&q->rx))
		can = pvio_ring_front_free_requests(&q->rx);
	if (!can || (!all && can < NF_RX_REFILL_BATCH))
		return;
	while (can--) {
		uint32_t pos = q->rx.req_prod_pvt;
		struct pvio_netif_rx_request rq = {
			.id = (uint16_t)(pos & MASK),
			.gref = q->rx_refs[pos & MASK],
		};
		pvio_ring_netif_rx_put_request(&q->rx, &rq);
		any = true;
	}
	if (any && pvio_ring_front_push_requests(&q->rx))
		notify(nf, q->port_rx);
}

/* Room for a largest frame (and its GSO extra) on @q's tx ring? */
static bool tx_room(const struct nf_queue *q)
{
	unsigned d = q->nf->info.sg ? (PVIO_NETFRONT_MAX_FRAME + NF_PAGE - 1) / NF_PAGE : 1;

	return q->tx_nfree >= d && pvio_ring_front_free_requests(&q->tx) >= d + 1;
}

/*
 * Nothing more to reap: ask for a tx-completion event only if the queue is
 * short of room — a sender then waits for one — and then once half of what
 * is in flight is answered (Linux netfront's xennet_tx_buf_gc); with room
 * to spare, completions are reaped whenever we run anyway and need no
 * event of their own. Looks again after arming, so a response pushed
 * meanwhile is not missed. Returns what the poll returns.
 */
static int tx_final_check(struct nf_queue *q)
{
	struct pvio_ring_front *fr = &q->tx;
	int n = pvio_ring_front_poll_responses(fr);
	uint32_t inflight;

	if (n != 0 || tx_room(q))
		return n;
	inflight = fr->req_prod_pvt - fr->rsp_cons;
	__atomic_store_n(&fr->sring->rsp_event, fr->rsp_cons + (inflight >> 1) + 1, __ATOMIC_RELAXED);
	/* rsp_event visible before rsp_prod is read again (Xen's mb) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return pvio_ring_front_poll_responses(fr);
}

static void reap_tx(struct nf_queue *q)
{
	struct pvio_netfront *nf = q->nf;

	for (;;) {
		struct pvio_netif_tx_response r;
		int n = pvio_ring_front_poll_responses(&q->tx);

		if (n == 0)
			n = tx_final_check(q);
		if (n < 0) {
			die(nf);
			return;
		}
		if (n == 0)
			return;
		while (pvio_ring_netif_tx_copy_response(&q->tx, &r) == 1) {
			if (r.status == PVIO_NETIF_RSP_NULL)
				continue; /* answer to an extra-info slot */
			if (r.id >= NF_RING_SLOTS || !q->tx_inflight[r.id]) {
				die(nf); /* an id we never sent: the backend is broken */
				return;
			}
			q->tx_inflight[r.id] = false;
			q->tx_free[q->tx_nfree++] = r.id;
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
		if (err == -PVIO_NETFRONT_ENOENT || (err == 0 && st >= NF_XB_CLOSING) || err == -PVIO_NETFRONT_EPROTO) {
			/* Closing/Closed or its directory gone: an orderly close
			 * (garbage in the state key is not) */
			nf->backend_closed = err != -PVIO_NETFRONT_EPROTO;
			die(nf);
		}
	}
	for (unsigned i = 0; i < nf->nq && !nf->dead; i++) {
		reap_tx(&nf->q[i]);
		nf_rx_refill(&nf->q[i], true);
	}
	return nf->dead ? -PVIO_NETFRONT_EIO : 0;
}

static unsigned data_slots(size_t len)
{
	return (unsigned)((len + NF_PAGE - 1) / NF_PAGE);
}

bool pvio_netfront_can_send_queue(const struct pvio_netfront *nf, unsigned queue, size_t len)
{
	unsigned d = data_slots(len);
	const struct nf_queue *q = &nf->q[queue];

	/* +1: room for a GSO extra-info slot */
	return !nf->dead && queue < nf->nq && q->tx_nfree >= d && pvio_ring_front_free_requests(&q->tx) >= d + 1;
}

bool pvio_netfront_can_send(const struct pvio_netfront *nf, size_t len)
{
	return pvio_netfront_can_send_queue(nf, 0, len);
}

/* The tx flags for @meta's offloads; -EINVAL if they were not negotiated. */
static int tx_flags(struct pvio_netfront *nf, const struct pvio_netfront_meta *meta, uint16_t *flags, bool *gso)
{
	*flags = 0;
	*gso = false;
	if (!meta)
		return 0;
	if (meta->flags & PVIO_NETFRONT_F_CSUM_BLANK) {
		if (!nf->info.tx_csum)
			return -PVIO_NETFRONT_EINVAL;
		*flags |= PVIO_NETTXF_csum_blank | PVIO_NETTXF_data_validated;
	} else if (meta->flags & PVIO_NETFRONT_F_DATA_VALIDATED) {
		*flags |= PVIO_NETTXF_data_validated;
	}
	if (meta->gso_type != PVIO_NETFRONT_GSO_NONE) {
		if ((meta->gso_type == PVIO_NETFRONT_GSO_TCPV4 && !nf->info.tx_gso4) ||
		    (meta->gso_type == PVIO_NETFRONT_GSO_TCPV6 && !nf->info.tx_gso6) ||
		    meta->gso_type > PVIO_NETFRONT_GSO_TCPV6 || !meta->gso_size)
			return -PVIO_NETFRONT_EINVAL;
		*gso = true;
	}
	return 0;
}

/* Put a frame of @len bytes, held by the pages of @ids[0..d), on the ring
 * (the caller checked the room) and push it unless F_MORE. */
static void tx_put(struct nf_queue *q, const uint16_t *ids, unsigned d, size_t len, uint16_t flags, bool gso,
		   const struct pvio_netfront_meta *meta)
{
	struct pvio_netfront *nf = q->nf;

	for (unsigned i = 0; i < d; i++) {
		uint16_t id = ids[i];
		size_t off = (size_t)i * NF_PAGE;
		size_t chunk = len - off > NF_PAGE ? NF_PAGE : len - off;
		struct pvio_netif_tx_request rq;

		q->tx_inflight[id] = true;
		nf_memset(&rq, 0, sizeof(rq));
		rq.gref = q->tx_refs[id];
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
		pvio_ring_netif_tx_put_request(&q->tx, &rq);
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
			pvio_ring_netif_tx_put_request(&q->tx, &slot);
		}
	}
	nf->st.tx_packets++;
	nf->st.tx_bytes += len;
	if (meta && (meta->flags & PVIO_NETFRONT_F_MORE))
		return; /* the caller pushes the burst */
	if (pvio_ring_front_push_requests(&q->tx))
		notify(nf, q->port_tx);
}

int pvio_netfront_send_queue(struct pvio_netfront *nf, unsigned queue, const void *frame, size_t len,
			     const struct pvio_netfront_meta *meta)
{
	const uint8_t *src = frame;
	unsigned d = data_slots(len);
	uint16_t flags, ids[NF_MAX_RX_SLOTS];
	bool gso;
	struct nf_queue *q;
	int err;

	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (queue >= nf->nq || nf->q[queue].tx_nresv)
		return -PVIO_NETFRONT_EINVAL;
	q = &nf->q[queue];
	if (len < 14 || len > PVIO_NETFRONT_MAX_FRAME || (d > 1 && !nf->info.sg))
		return -PVIO_NETFRONT_EMSGSIZE;
	err = tx_flags(nf, meta, &flags, &gso);
	if (err)
		return err;
	if (q->tx_nfree < d || pvio_ring_front_free_requests(&q->tx) < d + (gso ? 1u : 0u)) {
		nf->st.tx_busy++;
		return -PVIO_NETFRONT_EAGAIN;
	}
	for (unsigned i = 0; i < d; i++) {
		size_t off = (size_t)i * NF_PAGE;

		ids[i] = q->tx_free[--q->tx_nfree];
		nf_copy_data(nf, q->tx_pages + (size_t)ids[i] * NF_PAGE, src + off,
			     len - off > NF_PAGE ? NF_PAGE : len - off);
	}
	tx_put(q, ids, d, len, flags, gso, meta);
	return 0;
}

int pvio_netfront_push_queue(struct pvio_netfront *nf, unsigned queue)
{
	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (queue >= nf->nq)
		return -PVIO_NETFRONT_EINVAL;
	if (pvio_ring_front_push_requests(&nf->q[queue].tx))
		notify(nf, nf->q[queue].port_tx);
	return 0;
}

int pvio_netfront_tx_reserve(struct pvio_netfront *nf, unsigned queue, struct pvio_netfront_seg *segs)
{
	struct nf_queue *q;
	unsigned d = nf->info.sg ? data_slots(PVIO_NETFRONT_MAX_FRAME) : 1;

	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (queue >= nf->nq)
		return -PVIO_NETFRONT_EINVAL;
	q = &nf->q[queue];
	if (q->tx_nresv)
		return -16; /* EBUSY */
	/* +1: room for a GSO extra-info slot */
	if (q->tx_nfree < d || pvio_ring_front_free_requests(&q->tx) < d + 1) {
		nf->st.tx_busy++;
		return -PVIO_NETFRONT_EAGAIN;
	}
	for (unsigned i = 0; i < d; i++) {
		q->tx_resv[i] = q->tx_free[--q->tx_nfree];
		segs[i].base = q->tx_pages + (size_t)q->tx_resv[i] * NF_PAGE;
		segs[i].len = NF_PAGE;
	}
	q->tx_nresv = d;
	return (int)d;
}

int pvio_netfront_tx_commit(struct pvio_netfront *nf, unsigned queue, size_t len,
			    const struct pvio_netfront_meta *meta)
{
	struct nf_queue *q;
	unsigned d = data_slots(len), n;
	uint16_t flags;
	bool gso;
	int err = 0;

	if (queue >= nf->nq || !nf->q[queue].tx_nresv)
		return -PVIO_NETFRONT_EINVAL;
	q = &nf->q[queue];
	n = q->tx_nresv;
	q->tx_nresv = 0;
	if (nf->dead)
		err = -PVIO_NETFRONT_EIO;
	else if (len && (len < 14 || len > PVIO_NETFRONT_MAX_FRAME || d > n))
		err = -PVIO_NETFRONT_EMSGSIZE;
	else if (len)
		err = tx_flags(nf, meta, &flags, &gso);
	if (err || !len) {
		d = 0; /* dropped or cancelled: every page goes back */
	} else {
		/* the room was reserved: d + 1 ring slots are still free */
		tx_put(q, q->tx_resv, d, len, flags, gso, meta);
	}
	for (unsigned i = n; i > d; i--)
		q->tx_free[q->tx_nfree++] = q->tx_resv[i - 1];
	return err;
}

int pvio_netfront_send(struct pvio_netfront *nf, const void *frame, size_t len,
		       const struct pvio_netfront_meta *meta)
{
	return pvio_netfront_send_queue(nf, 0, frame, len, meta);
}

static void chain_reset(struct nf_queue *q)
{
	q->cur_n = 0;
	q->cur_bad = false;
	q->cur_want_extra = false;
	q->cur_more = false;
	q->cur_has_gso = false;
}

/*
 * Copy responses until a chain completes: 1 complete (q->cur), 0 need
 * more, <0 ring broken.
 */
static int take_chain(struct nf_queue *q)
{
	for (;;) {
		struct pvio_netif_rx_response r;
		uint32_t pos = q->rx.rsp_cons;
		int got = pvio_ring_netif_rx_copy_response(&q->rx, &r);

		if (got < 0)
			return got;
		if (got == 0) {
			int n = pvio_ring_front_poll_responses(&q->rx);
			if (n == 0)
				n = pvio_ring_front_final_check(&q->rx);
			if (n < 0)
				return n;
			if (n == 0)
				return 0;
			continue;
		}
		if (q->cur_want_extra) {
			struct pvio_netif_extra_info ex;
			nf_memcpy(&ex, &r, sizeof(ex));
			if (ex.type != PVIO_XEN_NETIF_EXTRA_TYPE_GSO || q->cur_has_gso || !ex.u.gso.size ||
			    (ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV4 &&
			     ex.u.gso.type != PVIO_XEN_NETIF_GSO_TYPE_TCPV6))
				q->cur_bad = true;
			q->cur_gso = ex;
			q->cur_has_gso = true;
			q->cur_want_extra = (ex.flags & PVIO_XEN_NETIF_EXTRA_FLAG_MORE) != 0;
			/* extras after the first response are still rx positions */
			if (!q->cur_want_extra && !q->cur_more)
				return 1;
			continue;
		}
		if (q->cur_n < NF_MAX_RX_SLOTS) {
			q->cur[q->cur_n] = r;
			q->cur_pos[q->cur_n] = pos;
			q->cur_n++;
		} else {
			q->cur_bad = true; /* too many slots: keep consuming, drop */
		}
		if (r.id != (pos & MASK) || r.status < 0 || (uint32_t)r.offset + (uint16_t)r.status > NF_PAGE)
			q->cur_bad = true;
		q->cur_more = (r.flags & PVIO_NETRXF_more_data) != 0;
		if (q->cur_n == 1 && (r.flags & PVIO_NETRXF_extra_info)) {
			q->cur_want_extra = true;
			continue;
		}
		if (!q->cur_more)
			return 1;
	}
}

/* A complete chain in q->cur: its length, or 0 if it must be dropped. */
static size_t chain_len(struct nf_queue *q)
{
	size_t total = 0;

	for (unsigned i = 0; i < q->cur_n && !q->cur_bad; i++)
		total += (uint16_t)q->cur[i].status;
	if (q->cur_bad || total < 14 || total > PVIO_NETFRONT_MAX_FRAME)
		return 0;
	return total;
}

static void chain_meta(struct nf_queue *q, struct pvio_netfront_meta *meta)
{
	uint16_t f = q->cur[0].flags;

	if (!meta)
		return;
	nf_memset(meta, 0, sizeof(*meta));
	if (f & PVIO_NETRXF_csum_blank)
		meta->flags |= PVIO_NETFRONT_F_CSUM_BLANK;
	if (f & PVIO_NETRXF_data_validated)
		meta->flags |= PVIO_NETFRONT_F_DATA_VALIDATED;
	if (q->cur_has_gso) {
		meta->gso_type = q->cur_gso.u.gso.type == PVIO_XEN_NETIF_GSO_TYPE_TCPV6 ? PVIO_NETFRONT_GSO_TCPV6
										       : PVIO_NETFRONT_GSO_TCPV4;
		meta->gso_size = q->cur_gso.u.gso.size;
	}
}

/* The chain's positions are done with: its buffers may go back. */
static void chain_done(struct nf_queue *q)
{
	q->rx_done = q->rx.rsp_cons;
	chain_reset(q);
	nf_rx_refill(q, false);
}

/*
 * The next complete, valid chain of @queue into q->cur: its length, or
 * -EAGAIN / -EIO / -EINVAL / -EBUSY. Bad chains are dropped and counted.
 */
static int next_chain(struct pvio_netfront *nf, unsigned queue, struct nf_queue **qp)
{
	struct nf_queue *q;

	if (nf->dead)
		return -PVIO_NETFRONT_EIO;
	if (queue >= nf->nq)
		return -PVIO_NETFRONT_EINVAL;
	q = *qp = &nf->q[queue];
	if (q->rx_held)
		return -16; /* EBUSY */
	for (;;) {
		size_t total;
		int r = take_chain(q);

		if (r < 0) {
			die(nf);
			return -PVIO_NETFRONT_EIO;
		}
		if (r == 0) {
			/* nothing more to receive: every free buffer goes back */
			nf_rx_refill(q, true);
			return -PVIO_NETFRONT_EAGAIN;
		}
		total = chain_len(q);
		if (total)
			return (int)total;
		nf->st.rx_errors++;
		chain_done(q);
	}
}

int pvio_netfront_recv_queue(struct pvio_netfront *nf, unsigned queue, void *buf, size_t cap,
			     struct pvio_netfront_meta *meta)
{
	struct nf_queue *q;
	uint8_t *dst = buf;

	for (;;) {
		int total = next_chain(nf, queue, &q);
		size_t off = 0;

		if (total < 0)
			return total;
		if ((size_t)total > cap) {
			nf->st.rx_errors++;
			chain_done(q);
			continue;
		}
		for (unsigned i = 0; i < q->cur_n; i++) {
			uint16_t n = (uint16_t)q->cur[i].status;
			nf_copy_data(nf, dst + off,
				     q->rx_pages + (size_t)(q->cur_pos[i] & MASK) * NF_PAGE + q->cur[i].offset, n);
			off += n;
		}
		chain_meta(q, meta);
		nf->st.rx_packets++;
		nf->st.rx_bytes += (size_t)total;
		chain_done(q);
		return total;
	}
}

int pvio_netfront_recv_segs(struct pvio_netfront *nf, unsigned queue, struct pvio_netfront_seg *segs,
			    struct pvio_netfront_meta *meta)
{
	struct nf_queue *q;
	int total = next_chain(nf, queue, &q);

	if (total < 0)
		return total;
	for (unsigned i = 0; i < q->cur_n; i++) {
		segs[i].base = q->rx_pages + (size_t)(q->cur_pos[i] & MASK) * NF_PAGE + q->cur[i].offset;
		segs[i].len = (uint16_t)q->cur[i].status;
	}
	chain_meta(q, meta);
	nf->st.rx_packets++;
	nf->st.rx_bytes += (size_t)total;
	q->rx_held = true;
	return (int)q->cur_n;
}

int pvio_netfront_recv_release(struct pvio_netfront *nf, unsigned queue)
{
	struct nf_queue *q;

	if (queue >= nf->nq || !nf->q[queue].rx_held)
		return -PVIO_NETFRONT_EINVAL;
	q = &nf->q[queue];
	q->rx_held = false;
	chain_done(q);
	return nf->dead ? -PVIO_NETFRONT_EIO : 0;
}

int pvio_netfront_recv(struct pvio_netfront *nf, void *buf, size_t cap, struct pvio_netfront_meta *meta)
{
	return pvio_netfront_recv_queue(nf, 0, buf, cap, meta);
}
