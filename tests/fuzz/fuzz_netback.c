/* SPDX-License-Identifier: MIT */
/*
 * fuzz_netback: a hostile netfront against netback's guest-transmit path.
 *
 * netback's own tx code (netback/tx.c, with the offload parser
 * netback/offload.c) is compiled into this program; only its edges are
 * fakes: grant copy (a fake guest of NPAGES pages whose grefs below a
 * fuzzed limit are granted, whose contents the fuzzer may write), the
 * event channel, nb_xenbus_fatal (the same effect as xenbus.c's: the vif
 * is disabled) and the log.  The TAP is caught at write(2): the harness is
 * linked with -Wl,--wrap=write, so netback's write() of a frame to its TAP
 * fd lands in __wrap_write below and every other write() goes through.
 *
 * The fuzzer plays the frontend of one queue: it writes raw bytes or
 * structured data and extra-info slots into any tx ring slot (gref, offset,
 * flags, id, size all free), moves req_prod anywhere (past the ring too),
 * sends events (nb_tx_kick), makes grants fail, changes the guest's page
 * contents (so real IPv4/IPv6 TCP/UDP headers reach the offload parser) and
 * reconnects; the toolstack side may set a rate limit, and time passes
 * only when the input says so (the interval is moved back, the rate timer
 * fired), so runs are deterministic.
 *
 * Invariants checked (docs/hardening.md, netback rows):
 *  - every grant-copy segment reads inside one page of the frontend's own
 *    domain (offset + len <= 4096: XSA-270 class) and writes inside the
 *    txbuf slot of its packet; a packet's segments fill its slot
 *    contiguously from the start, and a packet never has more than 18 data
 *    slots (XSA-39 / XSA-423 / XSA-432: the segs[] array is sized for 18);
 *  - every frame written to the TAP is exactly the bytes grant-copied for
 *    one packet whose copies all succeeded (no stale or uninitialised
 *    bytes), 14..65535 bytes long, in ring order; the virtio_net_hdr is
 *    consistent (checksum start/offset and GSO header inside the frame);
 *  - responses: never more than slots taken; each data response (status
 *    OKAY/ERROR/DROPPED) answers a taken, still unanswered slot with its
 *    id (any order: frontends match by id), an extra-info slot's is NULL
 *    with id 0 (built whole, no stale bytes);
 *  - a broken ring (producer past the ring, 20+ slots, bad extra-info type)
 *    disables the vif through nb_xenbus_fatal, after which netback takes
 *    nothing off the ring until the frontend reconnects;
 *  - tx_packets moves by exactly the frames the TAP got;
 *  - with a rate limit of B bytes per interval, the frames sent never
 *    carry more than B * (1 + intervals passed) bytes.
 * Input: one header byte (grant limit), then commands of one byte plus
 * arguments (see the switch below).  Reads past the end yield zeros.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "../../netback/private.h"
#include "fuzz.h"

#define PAGE 4096u
#define NPAGES 32		/* the fake guest's granted pages: grefs 0..NPAGES-1 */
#define MAX_STEPS 3000
#define VH sizeof(struct virtio_net_hdr)
/* tx.c's per-packet buffer (NB_TXBUF_SZ there): header, biggest packet, 1. */
#define SLOT_SZ (VH + NB_MAX_PKT + 1)
#define TAPFD 1000000		/* never a real descriptor: only write() sees it */

/* ---- the fake guest -------------------------------------------------------- */

static uint8_t pages[NPAGES][PAGE];
static uint32_t ngranted;	/* grefs below this are granted to dom0 */
static bool copy_call_fails;	/* the grant-copy call itself fails */

static struct nb_vif V;
static struct nb_queue *Q = &V.q[0];	/* the queue the fuzzer drives */
static uint64_t rate_sent, rate_windows;	/* frame bytes and intervals since the limit was set */
static uint8_t ring[PAGE] __attribute__((aligned(4096)));
static uint8_t snap[PAGE];	/* the ring as it was when a kick started */
static uint8_t *txbuf;

/* What the last grant copy made of each txbuf slot of its batch: the frame
 * bytes a packet will carry if netback sends it. */
struct expect {
	bool used, ok;
	uint32_t len;
	uint8_t *bytes;		/* SLOT_SZ */
};
static struct expect exp_[NB_TX_BATCH];
static unsigned exp_next;	/* next slot a frame must match (frames come in order) */
static uint64_t frames;		/* frames the TAP received in this kick */

/* Fresh guest pages for each input: a pattern that differs per page and
 * per offset, so a byte copied from the wrong place shows. */
static void pattern_pages(void)
{
	static uint8_t pristine[NPAGES][PAGE];
	static bool made;

	if (!made) {
		for (unsigned g = 0; g < NPAGES; g++)
			for (unsigned o = 0; o < PAGE; o++)
				pristine[g][o] = (uint8_t)(g * 157u + o * 59u + (o >> 8) + 3u);
		made = true;
	}
	memcpy(pages, pristine, sizeof(pages));
}

int xengnttab_grant_copy(xengnttab_handle *xgt, uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
	int slot_of[NB_TX_BATCH * NB_SLOTS_DROP];

	(void)xgt;
	FZ_CHECK(count >= 1 && count <= NB_TX_BATCH * NB_SLOTS_DROP, "grant copy of %u segments", count);
	for (unsigned s = 0; s < NB_TX_BATCH; s++) {
		exp_[s].used = false;
		exp_[s].ok = true;
		exp_[s].len = 0;
	}
	exp_next = 0;
	for (uint32_t i = 0; i < count; i++) {
		xengnttab_grant_copy_segment_t *g = &segs[i];
		uint8_t *d = g->dest.virt;

		FZ_CHECK(g->flags == GNTCOPY_source_gref, "segment %u flags %#x", i, g->flags);
		FZ_CHECK(g->source.foreign.domid == V.domid, "copy from domain %u, the vif is of %u",
			 g->source.foreign.domid, V.domid);
		/* netback validated the slot: a copy never crosses the page */
		FZ_CHECK(g->len >= 1 && (uint32_t)g->source.foreign.offset + g->len <= PAGE,
			 "segment %u: offset %u + len %u crosses the page", i, g->source.foreign.offset,
			 g->len);
		FZ_CHECK(d >= txbuf && d < txbuf + (size_t)NB_TX_BATCH * SLOT_SZ, "segment %u writes outside txbuf",
			 i);
		size_t s = (size_t)(d - txbuf) / SLOT_SZ;
		struct expect *e = &exp_[s];
		/* a packet's segments are adjacent in segs[] and fill its slot
		 * from just after the virtio_net_hdr, with no gap */
		FZ_CHECK(!e->used || slot_of[i - 1] == (int)s, "packet in slot %zu has scattered segments", s);
		FZ_CHECK(d == txbuf + s * SLOT_SZ + VH + e->len, "segment %u leaves a gap in slot %zu", i, s);
		FZ_CHECK(e->len + g->len <= NB_MAX_PKT, "packet in slot %zu outgrows 64 KiB", s);
		slot_of[i] = (int)s;
		if (!e->used)
			FZ_CHECK(s == 0 || exp_[s - 1].used, "batch slots not used in order");
		e->used = true;
		if (copy_call_fails || g->source.foreign.ref >= ngranted) {
			g->status = GNTST_general_error;
			e->ok = false;
		} else {
			memcpy(d, &pages[g->source.foreign.ref][g->source.foreign.offset], g->len);
			memcpy(e->bytes + e->len, d, g->len);
			g->status = GNTST_okay;
		}
		e->len += g->len;
	}
	for (unsigned s = 0; s < NB_TX_BATCH; s++) {
		unsigned nseg = 0;
		for (uint32_t i = 0; i < count; i++)
			nseg += slot_of[i] == (int)s;
		FZ_CHECK(nseg <= NB_SLOTS_DROP, "a packet of %u data slots was copied", nseg);
	}
	if (copy_call_fails) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* ---- the TAP: netback's write() of a frame ---------------------------------- */

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	const uint8_t *b = buf;
	struct virtio_net_hdr vh;

	if (fd != TAPFD)
		return __real_write(fd, buf, n);
	FZ_CHECK(n >= VH + NB_ETH_HLEN && n <= VH + NB_MAX_PKT, "a %zu-byte frame to the TAP", n);
	FZ_CHECK(b >= txbuf && b < txbuf + (size_t)NB_TX_BATCH * SLOT_SZ && (size_t)(b - txbuf) % SLOT_SZ == 0,
		 "frame not at a txbuf slot");
	size_t s = (size_t)(b - txbuf) / SLOT_SZ;
	FZ_CHECK(s >= exp_next, "frames out of ring order (slot %zu after %u)", s, exp_next);
	exp_next = (unsigned)s + 1;
	struct expect *e = &exp_[s];
	FZ_CHECK(e->used && e->ok, "frame from slot %zu, whose grant copy %s", s,
		 e->used ? "failed" : "never happened");
	FZ_CHECK(n - VH == e->len, "frame of %zu bytes, %u were copied", n - VH, e->len);
	FZ_CHECK(!memcmp(b + VH, e->bytes, e->len), "frame bytes differ from what was copied");
	memcpy(&vh, b, VH);
	if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		FZ_CHECK((uint32_t)vh.csum_start + vh.csum_offset + 2 <= e->len,
			 "checksum field at %u+%u outside a %u-byte frame", vh.csum_start, vh.csum_offset, e->len);
	if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		FZ_CHECK((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && vh.gso_size > 0 && vh.hdr_len <= e->len,
			 "GSO type %u size %u hdr_len %u on a %u-byte frame", vh.gso_type, vh.gso_size, vh.hdr_len,
			 e->len);
	frames++;
	rate_sent += e->len;
	return (ssize_t)n;
}

/* ---- fakes of the rest of pvio-netback --------------------------------------- */

static unsigned fatals;
static unsigned notifies;
static int evtchn_dummy;

void nb_log(struct nb_vif *v, const char *fmt, ...)
{
	(void)v;
	(void)fmt;
}

void nb_xenbus_fatal(struct nb_vif *v, const char *why)
{
	(void)why;
	v->st.tx_fatal++;
	v->disabled = true;
	fatals++;
}

/* netback's round budget ran out: event.c would run the rest on the next
 * loop pass, which kick() does at once */
static bool round_more;
void nb_event_more(struct nb_queue *q)
{
	FZ_CHECK(q == Q, "round continuation for another queue");
	round_more = true;
}

/* guest receive is not linked in: no rx frame ever rides on a tx copy */
int nb_rx_gather(struct nb_queue *q, bool read_tap)
{
	(void)q;
	(void)read_tap;
	return 0;
}

void nb_rx_finish(struct nb_queue *q, unsigned nw)
{
	(void)q;
	FZ_CHECK(nw == 0, "rx work finished in a tx-only harness");
}

int pvio_evtchn_notify(struct pvio_evtchn *e, evtchn_port_t port)
{
	FZ_CHECK(e == (struct pvio_evtchn *)&evtchn_dummy && port == 5, "notify of port %u", port);
	notifies++;
	return 0;
}

/* ---- the frontend --------------------------------------------------------------- */

static struct pvio_ring_sring *sring(void)
{
	return (struct pvio_ring_sring *)ring;
}

static uint32_t nr_ents, req_prod_pvt, rsp_cons;
/* The slots netback took that no response has answered yet, by ring
 * index: responses may come in any order (frontends match them by id; a
 * dropped packet is answered before the batch ahead of it), but each
 * answers one taken slot, once. */
static struct {
	uint16_t id;
	bool open;
} taken[PAGE];

static uint8_t *slot(uint8_t *base, uint32_t idx)
{
	return base + 64 + (size_t)(idx & (nr_ents - 1)) * sizeof(union pvio_ring_netif_tx_entry);
}

static void publish(void)
{
	__atomic_store_n(&sring()->req_prod, req_prod_pvt, __ATOMIC_RELEASE);
}

static void put_slot(const void *req)
{
	memcpy(slot(ring, req_prod_pvt), req, sizeof(struct pvio_netif_tx_request));
	req_prod_pvt++;
}

static void connect(void)
{
	memset(ring, 0, sizeof(ring));
	pvio_ring_sring_init(sring());
	int n = pvio_ring_netif_tx_back_init(&Q->tx, ring, PAGE);
	FZ_CHECK(n > 0, "back_init %d", n);
	nr_ents = (uint32_t)n;
	FZ_CHECK(nr_ents <= PAGE, "ring of %u", nr_ents);
	req_prod_pvt = rsp_cons = 0;
	memset(taken, 0, sizeof(taken));
	nb_tx_reset(Q);
	V.connected = true;
	V.disabled = false;
}

/* An event (or, with @timer, the rate limit's timer firing: its callback
 * kicks every queue): netback runs its tx path; then check everything it
 * produced. */
static void kick(bool timer)
{
	uint32_t cons0 = Q->tx.req_cons, rsp0 = Q->tx.rsp_prod_pvt;
	uint64_t pk0 = V.st.tx_packets;
	bool was_disabled = V.disabled;

	memcpy(snap, ring, sizeof(ring));
	frames = 0;
	if (timer) {
		ev_timer_stop(V.loop, &V.rate_w);
		ev_invoke(V.loop, &V.rate_w, EV_TIMER);
	} else {
		nb_tx_kick(Q);
	}
	while (round_more) {
		round_more = false;
		nb_tx_kick(Q);
	}
	uint32_t cons1 = Q->tx.req_cons, rsp1 = Q->tx.rsp_prod_pvt;
	if (was_disabled)
		FZ_CHECK(cons1 == cons0 && rsp1 == rsp0, "a disabled vif took %u slots", cons1 - cons0);
	FZ_CHECK(V.st.tx_packets - pk0 == frames, "tx_packets moved by %llu, the TAP got %llu frames",
		 (unsigned long long)(V.st.tx_packets - pk0), (unsigned long long)frames);
	if (V.rate_bytes)
		FZ_CHECK(rate_sent <= V.rate_bytes * (1 + rate_windows),
			 "%llu bytes sent in %llu intervals of a %llu-byte limit", (unsigned long long)rate_sent,
			 (unsigned long long)rate_windows, (unsigned long long)V.rate_bytes);
	/* Slots taken in this kick were copied from the ring as it was when
	 * the kick started (the ring holds at most nr_ents unanswered slots,
	 * so no slot taken now was overwritten by a response of this kick). */
	for (uint32_t k = cons0; k != cons1; k++) {
		struct pvio_netif_tx_request rq;
		memcpy(&rq, slot(snap, k), sizeof(rq));
		taken[k & (nr_ents - 1)].id = rq.id;
		taken[k & (nr_ents - 1)].open = true;
	}
	FZ_CHECK((uint32_t)(cons1 - rsp1) <= nr_ents, "%u slots taken and unanswered", cons1 - rsp1);
	for (uint32_t k = rsp0; k != rsp1; k++) {
		struct pvio_netif_tx_response r;
		memcpy(&r, slot(ring, k), sizeof(r));
		if (r.status == PVIO_NETIF_RSP_NULL) {
			/* an extra-info slot's answer: built whole, id 0 */
			FZ_CHECK(r.id == 0, "extra-info response with id %u", r.id);
			continue;
		}
		FZ_CHECK(r.status == PVIO_NETIF_RSP_OKAY || r.status == PVIO_NETIF_RSP_ERROR ||
				 r.status == PVIO_NETIF_RSP_DROPPED,
			 "response %u: status %d", k, r.status);
		uint32_t i;
		for (i = 0; i < nr_ents; i++)
			if (taken[i].open && taken[i].id == r.id)
				break;
		FZ_CHECK(i < nr_ents, "response %u (status %d) answers id %u: no open slot has it", k, r.status,
			 r.id);
		taken[i].open = false;
	}
}

static void consume_responses(void)
{
	uint32_t prod = __atomic_load_n(&sring()->rsp_prod, __ATOMIC_ACQUIRE);

	/* responses are checked as they are produced (kick); here the
	 * frontend only moves on and asks to be notified of the next */
	rsp_cons = prod;
	sring()->rsp_event = rsp_cons + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	uint8_t h = fz_u8(&in);

	if (!txbuf) {
		txbuf = malloc((size_t)NB_TX_BATCH * SLOT_SZ);
		FZ_CHECK(txbuf != NULL, "oom");
		for (unsigned s = 0; s < NB_TX_BATCH; s++) {
			exp_[s].bytes = malloc(SLOT_SZ);
			FZ_CHECK(exp_[s].bytes != NULL, "oom");
		}
	}
	pattern_pages();
	ngranted = (h & 0x80) ? h & 0x1f : NPAGES;
	copy_call_fails = false;
	fatals = notifies = 0;
	memset(&V, 0, sizeof(V));
	V.domid = 3;
	V.devid = 0;
	V.nq = V.max_queues = 1;
	V.txbuf = txbuf;
	V.ev = (struct pvio_evtchn *)&evtchn_dummy;
	/* the loop never runs: ev_now stays put, time passes only on command */
	V.loop = EV_DEFAULT;
	ev_timer_init(&V.rate_w, NULL, 0., 0.);
	Q->v = &V;
	Q->tapfd = TAPFD;
	Q->port_tx = Q->port_rx = 5;
	rate_sent = rate_windows = 0;
	if (h & 0x40) /* the toolstack's rate key: bytes per interval */
		nb_rate_set(&V, 1 + fz_u16(&in) * 4u, 1 + fz_u16(&in));
	connect();

	for (unsigned step = 0; step < MAX_STEPS && fz_left(&in); step++) {
		uint8_t op = fz_u8(&in);
		/* low nibble: the command; high bits: its variants */
		switch ((op & 0x0f) % 11) {
		case 0: { /* raw bytes into any slot */
			uint8_t b[sizeof(struct pvio_netif_tx_request)];
			uint8_t i = fz_u8(&in);
			fz_bytes(&in, b, sizeof(b));
			memcpy(slot(ring, i), b, sizeof(b));
			break;
		}
		case 1: { /* a data slot; published unless bit 7 */
			struct pvio_netif_tx_request rq;
			memset(&rq, 0, sizeof(rq));
			rq.gref = (op & 0x10) ? fz_u32(&in) : fz_u8(&in) % (NPAGES + 2);
			rq.offset = (op & 0x20) ? fz_u16(&in) : (uint16_t)(fz_u8(&in) * 16u);
			rq.flags = fz_u8(&in) & 0xf;
			rq.id = fz_u16(&in);
			rq.size = fz_u16(&in);
			put_slot(&rq);
			if (!(op & 0x80))
				publish();
			break;
		}
		case 2: { /* an extra-info slot */
			struct pvio_netif_extra_info ex;
			uint8_t b[sizeof(struct pvio_netif_tx_request)];
			memset(&ex, 0, sizeof(ex));
			ex.type = fz_u8(&in) % (PVIO_XEN_NETIF_EXTRA_TYPE_MAX + 1);
			ex.flags = fz_u8(&in) & 1;
			ex.u.gso.size = fz_u16(&in);
			ex.u.gso.type = fz_u8(&in) % 4;
			memset(b, 0, sizeof(b));
			memcpy(b, &ex, sizeof(ex));
			put_slot(b);
			if (!(op & 0x80))
				publish();
			break;
		}
		case 3: /* req_prod moved: relative, or anywhere */
			if (op & 0x80)
				sring()->req_prod = fz_u32(&in);
			else
				__atomic_store_n(&sring()->req_prod, req_prod_pvt + (uint32_t)(int32_t)(int8_t)fz_u8(&in),
						 __ATOMIC_RELEASE);
			break;
		case 4: /* event */
			kick(false);
			break;
		case 5:
			consume_responses();
			break;
		case 6: /* the guest writes a page (headers for the offload parser) */ {
			uint8_t g = fz_u8(&in) % NPAGES, n = fz_u8(&in);
			uint16_t o = fz_u16(&in) % PAGE;
			if (n > PAGE - o)
				n = (uint8_t)(PAGE - o);
			fz_bytes(&in, &pages[g][o], n);
			break;
		}
		case 7: /* grants: revoke/restore, or the copy call fails */
			if (op & 0x80)
				copy_call_fails = !copy_call_fails;
			else
				ngranted = fz_u8(&in) % (NPAGES + 1);
			break;
		case 8: /* the frontend reconnects (a fresh ring) */
			connect();
			break;
		case 9: { /* a whole packet: first slot, optional GSO extra, fragments */
			struct pvio_netif_tx_request rq;
			uint8_t nfrag = fz_u8(&in) % 20, fl = fz_u8(&in);
			uint16_t total = fz_u16(&in), id = fz_u16(&in);
			memset(&rq, 0, sizeof(rq));
			rq.gref = fz_u8(&in) % NPAGES;
			rq.offset = (uint16_t)(fz_u8(&in) * 8u);
			rq.flags = (uint16_t)((fl & 3) | (nfrag ? PVIO_NETTXF_more_data : 0) |
					      ((fl & 4) ? PVIO_NETTXF_extra_info : 0));
			rq.id = id++;
			rq.size = total;
			put_slot(&rq);
			if (fl & 4) {
				struct pvio_netif_extra_info ex;
				uint8_t b[sizeof(struct pvio_netif_tx_request)];
				memset(&ex, 0, sizeof(ex));
				memset(b, 0, sizeof(b));
				ex.type = PVIO_XEN_NETIF_EXTRA_TYPE_GSO;
				ex.u.gso.size = fz_u16(&in);
				ex.u.gso.type = (fl & 8) ? PVIO_XEN_NETIF_GSO_TYPE_TCPV6 : PVIO_XEN_NETIF_GSO_TYPE_TCPV4;
				memcpy(b, &ex, sizeof(ex));
				put_slot(b);
			}
			for (unsigned i = 0; i < nfrag; i++) {
				memset(&rq, 0, sizeof(rq));
				rq.gref = fz_u8(&in) % NPAGES;
				rq.offset = (uint16_t)(fz_u8(&in) * 8u);
				rq.size = fz_u16(&in) % (PAGE + 1);
				rq.id = id++;
				rq.flags = i + 1 < nfrag ? PVIO_NETTXF_more_data : 0;
				put_slot(&rq);
			}
			publish();
			break;
		}
		case 10: /* time passes: 1..4 rate intervals, and the rate timer fires */
			if (V.rate_bytes) {
				unsigned k = 1 + fz_u8(&in) % 4;
				V.rate_window -= (double)V.rate_usec / 1e6 * k;
				rate_windows += k;
			}
			if (ev_is_active(&V.rate_w))
				kick(true);
			break;
		}
	}
	/* Wind down: a last event, then everything it answered is consumed. */
	kick(false);
	consume_responses();
	FZ_CHECK(V.st.tx_fatal == fatals, "tx_fatal %llu, %u fatal calls", (unsigned long long)V.st.tx_fatal,
		 fatals);
	/* FUZZ_VERBOSE=1: what an input did (for writing seeds) */
	if (getenv("FUZZ_VERBOSE")) {
		const struct nb_stats *t = &V.st;
		fprintf(stderr,
			"tx %llu packets %llu bytes %llu slots; drops: slots %llu frag %llu zero %llu split %llu "
			"page %llu runt %llu extra %llu offload %llu copy %llu tap %llu; fatal %llu; notifies %u\n",
			(unsigned long long)t->tx_packets, (unsigned long long)t->tx_bytes,
			(unsigned long long)t->tx_slots, (unsigned long long)t->tx_drop_slots,
			(unsigned long long)t->tx_drop_frag_size, (unsigned long long)t->tx_drop_zero_frag,
			(unsigned long long)t->tx_drop_hdr_split, (unsigned long long)t->tx_drop_page_cross,
			(unsigned long long)t->tx_drop_runt, (unsigned long long)t->tx_drop_extra,
			(unsigned long long)t->tx_drop_offload, (unsigned long long)t->tx_drop_copy,
			(unsigned long long)t->tx_drop_tap, (unsigned long long)t->tx_fatal, notifies);
	}
	ev_timer_stop(V.loop, &V.rate_w);
	return 0;
}
