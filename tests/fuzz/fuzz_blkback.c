/* SPDX-License-Identifier: MIT */
/*
 * fuzz_blkback: a hostile frontend against blkback's request intake.
 *
 * The real blkback core (blkback/blkback.c, ring.c, map.c) is compiled
 * into this program; only its edges are fakes: grant mapping (an
 * in-memory ring and heap "guest pages"), event channels, and the xenbus
 * half (replaced by the same disconnect rules: disconnect at once when
 * idle, else once in-flight requests complete).  The fuzzer plays the
 * frontend: it writes raw or structured requests into any ring slot, sets
 * req_prod to anything (including past the ring), sends events, completes
 * requests, makes grant maps fail, and reads the responses.
 *
 * Indirect requests (BLKIF_OP_INDIRECT): the fake guest owns 8 descriptor
 * pages, grefs IND_BASE..IND_BASE+7, whose contents the fuzzer writes
 * (structured descriptors or raw bytes); mapping one of those refs yields
 * a fresh page kept in step with the guest's (every guest write is copied
 * into every live mapping, as shared memory would be), freed on unmap (so
 * a backend that re-read descriptors after releasing the page is a
 * use-after-free under ASan).
 *
 * Invariants checked (each a hostile-input check of docs/hardening.md):
 *  - every submitted I/O lies inside the disk, is 512-aligned (4096 with
 *    4 KiB logical sectors, each iovec too), has 1..max(11, indirect limit)
 *    iovecs inside that request's own mapping, and no write reaches a
 *    read-only disk (segment and sector bounds);
 *  - what was validated is what is used: the harness scribbles over the
 *    ring slot and over every mapped descriptor page during submit, and
 *    the request's iovecs at completion are still those submitted (XSA-155);
 *  - the private copy is what is used: the harness scribbles over the
 *    ring slot during submit, the response still echoes the id that was
 *    validated (XSA-155);
 *  - every response has zero padding and a known status (XSA-216), and
 *    there are never more responses than requests taken;
 *  - a producer index beyond the ring disconnects, never loops or reads
 *    out of bounds;
 *  - failed grant maps leave nothing mapped, and at the end every
 *    mapping is released (XSA-362/365-style failure paths).
 * Input layout: a flags byte h (x86_32, ring order, readonly, sync,
 * sync status, 64-bit size, persistent), a second byte h2 (indirect limit:
 * 256, none, fuzzed 1..256, 12; bit 2: 4 KiB logical sectors), the disk
 * size; then commands, one byte each plus arguments.  Reads past the end
 * yield zeros.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "../../blkback/private.h"
#include "fuzz.h"
#include "pvio/grant.h"

#define PAGE 4096u
#define MAX_MAPS 2048
#define MAX_PENDING 512 /* > the 256 slots of an order-3 ring */
#define MAX_STEPS 2000
#define MAX_SEGS PVIO_BLKBACK_MAX_SEGMENTS
#define IND_BASE 0x80000u /* grefs of the fake guest's descriptor pages */
#define NIND 8

/* ---- fake grant table ------------------------------------------------ */

static uint8_t ring_mem[PAGE << PVIO_RING_MAX_ORDER] __attribute__((aligned(4096)));
static bool ring_mapped;
static unsigned ring_pages;
static bool expect_ring;
static bool map_fail_all;
static unsigned map_fail_countdown; /* fail the Nth next map (0: off) */

#define MAP_IND 16 /* descriptor pages tracked per mapping */
static struct {
	void *va;
	uint32_t count;
	uint8_t nind;		/* pages of it that are descriptor pages: */
	uint16_t ipos[MAP_IND];	/* where in the mapping */
	uint8_t ik[MAP_IND];	/* which of the guest's */
} maps[MAX_MAPS];
static unsigned nmaps;

/* The guest's descriptor pages (what IND_BASE + k map to). */
static uint8_t gind[NIND][PAGE] __attribute__((aligned(8)));

/* The guest changed its descriptor page @k: every mapping sees it. */
static void gind_sync(unsigned k)
{
	for (unsigned m = 0; m < nmaps; m++)
		for (unsigned j = 0; j < maps[m].nind; j++)
			if (maps[m].ik[j] == k)
				memcpy((uint8_t *)maps[m].va + (size_t)maps[m].ipos[j] * PAGE, gind[k], PAGE);
}

int pvio_gnt_map_batch(xengnttab_handle *h, uint32_t domid, uint32_t count, const uint32_t *refs,
		       int writable, void **addr, int *status)
{
	(void)h;
	(void)domid;
	(void)writable;
	if (expect_ring) {
		FZ_CHECK(!ring_mapped, "ring mapped twice");
		FZ_CHECK(count >= 1 && count <= (1u << PVIO_RING_MAX_ORDER), "ring of %u pages", count);
		expect_ring = false;
		ring_mapped = true;
		ring_pages = count;
		*addr = ring_mem;
		return 0;
	}
	FZ_CHECK(count >= 1 && count <= MAX_SEGS, "map of %u refs", count);
	bool fail = map_fail_all;
	if (map_fail_countdown && --map_fail_countdown == 0)
		fail = true;
	for (uint32_t i = 0; i < count; i++) {
		/* refs above 2^20 play "not a grant of this domain" */
		bool bad = fail || refs[i] >= (1u << 20);
		if (status)
			status[i] = bad ? -EINVAL : 0;
		fail |= bad;
	}
	if (fail) {
		*addr = NULL;
		return -EINVAL;
	}
	FZ_CHECK(nmaps < MAX_MAPS, "more live mappings than slots");
	void *va = aligned_alloc(PAGE, (size_t)count * PAGE);
	FZ_CHECK(va != NULL, "oom");
	memset(va, 0xa5, (size_t)count * PAGE);
	maps[nmaps].nind = 0;
	for (uint32_t i = 0; i < count; i++)
		if (refs[i] - IND_BASE < NIND) {
			memcpy((uint8_t *)va + (size_t)i * PAGE, gind[refs[i] - IND_BASE], PAGE);
			if (maps[nmaps].nind < MAP_IND) {
				maps[nmaps].ipos[maps[nmaps].nind] = (uint16_t)i;
				maps[nmaps].ik[maps[nmaps].nind++] = (uint8_t)(refs[i] - IND_BASE);
			}
		}
	maps[nmaps].va = va;
	maps[nmaps].count = count;
	nmaps++;
	*addr = va;
	return 0;
}

/* Persistent grants map one ref at a time and keep it. */
void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
	void *va = NULL;
	uint32_t refs[1] = { ref };

	(void)prot;
	if (pvio_gnt_map_batch(xgt, domid, 1, refs, 1, &va, NULL) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return va;
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
	(void)xgt;
	if (start_address == ring_mem) {
		FZ_CHECK(ring_mapped && count == ring_pages, "ring unmap of %u pages", count);
		ring_mapped = false;
		return 0;
	}
	for (unsigned i = 0; i < nmaps; i++) {
		if (maps[i].va == start_address) {
			FZ_CHECK(maps[i].count == count, "unmap of %u pages, mapped %u", count,
				 maps[i].count);
			free(maps[i].va);
			maps[i] = maps[--nmaps];
			return 0;
		}
	}
	FZ_CHECK(0, "unmap of an address never mapped (%p)", start_address);
	return -1;
}

/* The mapping an iovec must lie in. */
static bool in_some_map(const void *p, size_t len, void **base)
{
	for (unsigned i = 0; i < nmaps; i++) {
		const uint8_t *b = maps[i].va;
		if ((const uint8_t *)p >= b && (const uint8_t *)p + len <= b + (size_t)maps[i].count * PAGE) {
			*base = maps[i].va;
			return true;
		}
	}
	return false;
}

/* ---- fake event channels --------------------------------------------- */

static int evtchn_dummy;
static unsigned notifies;

int pvio_evtchn_open(struct pvio_evtchn **out)
{
	*out = (struct pvio_evtchn *)&evtchn_dummy;
	return 0;
}
void pvio_evtchn_close(struct pvio_evtchn *e)
{
	FZ_CHECK(e == (struct pvio_evtchn *)&evtchn_dummy, "close of a foreign handle");
}
int pvio_evtchn_bind_interdomain(struct pvio_evtchn *e, uint32_t remote, evtchn_port_t remote_port,
				 pvio_evtchn_handler *fn, void *arg)
{
	(void)e;
	(void)remote;
	(void)remote_port;
	(void)fn;
	(void)arg;
	return 7;
}
int pvio_evtchn_notify(struct pvio_evtchn *e, evtchn_port_t port)
{
	(void)e;
	FZ_CHECK(port == 7, "notify on port %u", port);
	notifies++;
	return 0;
}
int pvio_evtchn_ev_start(struct pvio_evtchn *e, struct ev_loop *loop)
{
	(void)e;
	(void)loop;
	return 0;
}
void pvio_evtchn_ev_stop(struct pvio_evtchn *e)
{
	(void)e;
}
/* late EOI (blkback/event.c): the port is masked from delivery to unmask */
static bool evt_late_eoi, evt_masked;
int pvio_evtchn_set_late_eoi(struct pvio_evtchn *e, evtchn_port_t port, int on)
{
	(void)e;
	FZ_CHECK(port == 7, "late EOI on port %u", port);
	evt_late_eoi = on != 0;
	evt_masked = false;
	return 0;
}
int pvio_evtchn_unmask(struct pvio_evtchn *e, evtchn_port_t port)
{
	(void)e;
	FZ_CHECK(port == 7 && evt_late_eoi, "unmask of port %u", port);
	FZ_CHECK(evt_masked, "unmask of a port not delivered");
	evt_masked = false;
	return 0;
}

/* ---- fake xenbus half (same disconnect rules as xenbus.c) ------------- */

static unsigned broken_seen;
static uint32_t taken_seen; /* the ring's req_cons, kept across a disconnect */

int bb_xenbus_start(struct pvio_blkback *bb)
{
	(void)bb;
	return 0;
}
void bb_xenbus_stop(struct pvio_blkback *bb)
{
	(void)bb;
}
void bb_xenbus_eval(struct pvio_blkback *bb)
{
	(void)bb;
}
void bb_xenbus_idle(struct pvio_blkback *bb)
{
	if (bb->q)
		taken_seen = bb->q[0].br.req_cons;
	if (bb->pending_disconnect) {
		bb->pending_disconnect = false;
		bb_ring_disconnect(bb);
	}
}
void bb_xenbus_ring_broken(struct pvio_blkback *bb)
{
	broken_seen++;
	bb->refused = true;
	bb->pending_disconnect = true;
	if (bb->st.in_flight == 0)
		bb_xenbus_idle(bb);
}

/* ---- the daemon side: I/O ops ------------------------------------------ */

struct pending {
	struct pvio_blkback_req *r;
	uint64_t id;
	unsigned npages;
	uintptr_t pages[MAX_SEGS];
	struct iovec iov[MAX_SEGS]; /* as submitted */
	int iovcnt;
};

static struct {
	bool readonly;
	bool sync;		/* complete inside submit */
	int sync_status;
	uint64_t sectors;
	struct pending pend[MAX_PENDING];
	unsigned npend;
	uint64_t taken;		/* requests submitted or refused */
	uint64_t ids_ok;	/* ids validated at submit, echoed later */
	struct fz *in;
	bool x86_32;
	bool persistent;
	unsigned max_indirect;	/* offered (0: none) */
	unsigned ss;		/* logical sector size */
	uint32_t nr_ents;
	uint32_t entry_size;
} S;


static uint8_t *slot(uint32_t idx);
static void fe_wrote(uint32_t idx);

static int submit(void *ctx, struct pvio_blkback_req *r, enum pvio_blkback_op op, uint64_t offset,
		  const struct iovec *iov, int iovcnt)
{
	uint64_t bytes = 0;
	void *base = NULL;

	(void)ctx;
	FZ_CHECK(op < PVIO_BLKBACK_NR_OPS, "op %d", op);
	if (op == PVIO_BLKBACK_FLUSH) {
		FZ_CHECK(iovcnt == 0, "flush with %d iovecs", iovcnt);
	} else {
		unsigned maxseg = S.max_indirect > PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST
					  ? S.max_indirect : PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST;
		if (!r->indirect)
			maxseg = PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST;
		FZ_CHECK(iovcnt >= 1 && (unsigned)iovcnt <= (op == PVIO_BLKBACK_DISCARD ? 1u : maxseg),
			 "iovcnt %d (%s request)", iovcnt, r->indirect ? "indirect" : "direct");
		FZ_CHECK(offset % S.ss == 0, "offset %llu not whole %u-byte sectors",
			 (unsigned long long)offset, S.ss);
		if (op == PVIO_BLKBACK_DISCARD) {
			FZ_CHECK(iov[0].iov_base == NULL && iov[0].iov_len % S.ss == 0,
				 "discard of %zu bytes", iov[0].iov_len);
			FZ_CHECK(offset / 512 <= S.sectors && iov[0].iov_len / 512 <= S.sectors - offset / 512,
				 "discard beyond the disk");
			FZ_CHECK(!S.readonly, "discard on a read-only disk");
			iovcnt = 0; /* no pages */
			goto pages;
		}
		for (int i = 0; i < iovcnt; i++) {
			void *b;
			/* an entry is one segment, or several that continue
			 * each other in memory (merged): whole pages between */
			FZ_CHECK(iov[i].iov_len >= 512 && iov[i].iov_len <= (size_t)maxseg * PAGE &&
				 iov[i].iov_len % 512 == 0 && iov[i].iov_len % S.ss == 0,
				 "iov_len %zu", iov[i].iov_len);
			FZ_CHECK(in_some_map(iov[i].iov_base, iov[i].iov_len, &b),
				 "iovec %d outside every mapping", i);
			FZ_CHECK(i == 0 || b == base || S.persistent,
				 "iovecs of one request in different mappings");
			base = b;
			/* the I/O itself: touch every byte (ASan sees overruns) */
			if (op == PVIO_BLKBACK_READ)
				memset(iov[i].iov_base, 0x5a, iov[i].iov_len);
			else
				bytes += (uint64_t)((const uint8_t *)iov[i].iov_base)[iov[i].iov_len - 1] * 0;
			bytes += iov[i].iov_len;
		}
		FZ_CHECK(offset / 512 <= S.sectors && bytes / 512 <= S.sectors - offset / 512,
			 "I/O [%llu, +%llu) beyond a disk of %llu sectors",
			 (unsigned long long)(offset / 512), (unsigned long long)(bytes / 512),
			 (unsigned long long)S.sectors);
		FZ_CHECK(!(op == PVIO_BLKBACK_WRITE && S.readonly), "write to a read-only disk");
	}
pages:;
	/* Two requests in flight never share a guest page (a frontend that
	 * reuses a gref while it is in flight is refused): otherwise one
	 * request's I/O lands in another's buffer. */
	static uintptr_t pages[MAX_SEGS];
	unsigned npages = 0;
	memset(pages, 0, sizeof(pages));
	for (int i = 0; i < iovcnt; i++) {
		uintptr_t p = (uintptr_t)iov[i].iov_base & ~(uintptr_t)(PAGE - 1);
		for (; p < (uintptr_t)iov[i].iov_base + iov[i].iov_len; p += PAGE) {
			FZ_CHECK(npages < MAX_SEGS, "more pages than segments");
			pages[npages] = p;
			for (unsigned k = 0; k < S.npend; k++)
				for (unsigned j = 0; j < S.pend[k].npages; j++)
					FZ_CHECK(S.pend[k].pages[j] != p,
						 "request id %llu shares a page with in-flight id %llu",
						 (unsigned long long)r->wire.id, (unsigned long long)S.pend[k].id);
			for (unsigned j = 0; j < npages; j++)
				FZ_CHECK(pages[j] != p, "one request uses a page twice");
			npages++;
		}
	}
	/* XSA-155: the frontend rewrites the request slot while the backend
	 * works on it; everything must come from the private copy. */
	if (op != PVIO_BLKBACK_FLUSH && r->bb->connected) {
		uint32_t idx = r->q->br.req_cons - 1;
		memset(slot(idx), 0xee, S.entry_size);
		fe_wrote(idx);
	}
	/* ... and so does an indirect request's descriptor pages (the backend
	 * sees that through its persistent mappings). */
	if (r->indirect) {
		struct pvio_blkif_request_indirect in;
		memcpy(&in, &r->wire, sizeof(in));
		for (unsigned k = 0; k * PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME < in.nr_segments &&
				     k < PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; k++)
			if (in.indirect_grefs[k] - IND_BASE < NIND) {
				memset(gind[in.indirect_grefs[k] - IND_BASE], 0xee, PAGE);
				gind_sync(in.indirect_grefs[k] - IND_BASE);
			}
	}
	if (S.sync) {
		if (S.sync_status)
			return S.sync_status; /* "not taken": the core answers */
		pvio_blkback_complete(r, 0); /* allowed from inside submit */
		return 0;
	}
	FZ_CHECK(S.npend < MAX_PENDING, "more requests in flight than ever taken");
	S.pend[S.npend].r = r;
	S.pend[S.npend].id = r->wire.id;
	S.pend[S.npend].npages = op == PVIO_BLKBACK_FLUSH ? 0 : npages;
	memcpy(S.pend[S.npend].pages, pages, sizeof(pages));
	S.pend[S.npend].iovcnt = op == PVIO_BLKBACK_FLUSH ? 0 : (op == PVIO_BLKBACK_DISCARD ? 1 : iovcnt);
	if (S.pend[S.npend].iovcnt)
		memcpy(S.pend[S.npend].iov, iov, (size_t)S.pend[S.npend].iovcnt * sizeof(*iov));
	S.npend++;
	return 0;
}

static void complete_one(unsigned k, int status)
{
	struct pvio_blkback_req *r = S.pend[k].r;
	uint64_t id = S.pend[k].id;

	FZ_CHECK(r->wire.id == id, "private copy changed under an in-flight request");
	/* the iovecs the daemon was given are still the request's: nothing
	 * was re-derived from guest memory since (descriptor pages were
	 * scribbled over at submit) */
	for (int i = 0; i < S.pend[k].iovcnt; i++)
		FZ_CHECK(r->iov[i].iov_base == S.pend[k].iov[i].iov_base &&
			 r->iov[i].iov_len == S.pend[k].iov[i].iov_len,
			 "iovec %d of in-flight id %llu changed", i, (unsigned long long)id);
	S.pend[k] = S.pend[--S.npend];
	pvio_blkback_complete(r, status);
	/* flush-with-data resubmits a flush: it lands in pend again */
}

static const struct pvio_blkback_io_ops io_ops = { .submit = submit, .kick = NULL };

/* ---- the frontend side ------------------------------------------------- */

static struct pvio_ring_sring *sring(void)
{
	return (struct pvio_ring_sring *)ring_mem;
}

static uint8_t *slot(uint32_t idx)
{
	return ring_mem + 64 + (size_t)(idx & (S.nr_ents - 1)) * S.entry_size;
}

static uint32_t req_prod_pvt, rsp_cons;

/* The first 16 bytes of each slot as the frontend last wrote them: a
 * response slot still equal to that was never written by the backend
 * since (the frontend scribbled over an unread response), so its padding
 * says nothing about the backend. */
static uint8_t shadow[1u << 12][16];
static bool shadow_ok[1u << 12];

static void fe_wrote(uint32_t idx)
{
	uint32_t i = idx & (S.nr_ents - 1);
	memcpy(shadow[i], ring_mem + 64 + (size_t)i * S.entry_size, 16);
	shadow_ok[i] = true;
}
static uint64_t responses_seen;


/* Requests the backend copied off the ring (kept across a disconnect,
 * which frees the queue). */
static unsigned barrier_waiting(const struct pvio_blkback *bb)
{
	return bb->q && bb->q[0].barrier && !bb->q[0].barrier_issued;
}
static uint64_t requests_taken(struct pvio_blkback *bb)
{
	if (bb->q)
		taken_seen = bb->q[0].br.req_cons;
	return taken_seen;
}

static void consume_responses(struct pvio_blkback *bb)
{
	uint32_t prod = __atomic_load_n(&sring()->rsp_prod, __ATOMIC_ACQUIRE);

	(void)bb;
	/* A frontend that produced more requests than it consumed responses
	 * broke its own ring: responses it never read were overwritten.
	 * Only the newest nr_ents are there to check. */
	if (prod - rsp_cons > S.nr_ents) {
		responses_seen += prod - rsp_cons - S.nr_ents;
		rsp_cons = prod - S.nr_ents;
	}
	for (; rsp_cons != prod; rsp_cons++) {
		const uint8_t *e = slot(rsp_cons);
		uint32_t si = rsp_cons & (S.nr_ents - 1);
		int16_t status;
		if (shadow_ok[si] && !memcmp(shadow[si], e, 16)) {
			responses_seen++;
			continue; /* the frontend's own bytes, see shadow[] */
		}
		if (S.x86_32) {
			FZ_CHECK(e[9] == 0, "x86_32 response padding not zero");
			memcpy(&status, e + 10, 2);
		} else {
			FZ_CHECK(e[9] == 0 && !e[12] && !e[13] && !e[14] && !e[15],
				 "response padding not zero (XSA-216)");
			memcpy(&status, e + 10, 2);
		}
		FZ_CHECK(status == PVIO_BLKIF_RSP_OKAY || status == PVIO_BLKIF_RSP_ERROR ||
				 status == PVIO_BLKIF_RSP_EOPNOTSUPP,
			 "response status %d", status);
		responses_seen++;
	}
	FZ_CHECK(responses_seen <= requests_taken(bb), "%llu responses for %llu requests",
		 (unsigned long long)responses_seen, (unsigned long long)requests_taken(bb));
	sring()->rsp_event = rsp_cons + 1;
}

/* A structured indirect request: header, and descriptors written into the
 * guest's descriptor pages (sel bits: 1 64-bit sector, 2 32-bit grefs,
 * 8 raw 16-bit nr_segments, 16 descriptor page grefs fuzzed). */
static void put_indirect(struct fz *f, uint8_t sel, uint8_t *e)
{
	struct pvio_blkif_request_indirect in;
	uint8_t iop = fz_u8(f);
	unsigned cap = NIND * PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME;

	memset(&in, 0, sizeof(in));
	in.operation = PVIO_BLKIF_OP_INDIRECT;
	in.indirect_op = iop < 200 ? (uint8_t)(iop & 1) : iop; /* mostly read/write */
	in.nr_segments = (sel & 8) ? fz_u16(f) : (uint16_t)(fz_u16(f) % (S.max_indirect + 3));
	in.id = fz_u64(f);
	in.sector_number = (sel & 1) ? fz_u64(f) : fz_u16(f);
	for (unsigned k = 0; k < PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; k++)
		in.indirect_grefs[k] = (sel & 16) ? fz_u32(f) : IND_BASE + k;
	/* descriptors: as many as asked (and the page holds), then a byte
	 * that repeats the last one for the rest (cheap big requests) */
	unsigned n = in.nr_segments < cap ? in.nr_segments : cap, given = fz_u8(f);
	struct pvio_blkif_request_segment d;
	memset(&d, 0, sizeof(d));
	for (unsigned i = 0; i < n; i++) {
		if (i < given || i == 0) {
			d.gref = (sel & 2) ? fz_u32(f) : fz_u8(f);
			uint8_t sb = fz_u8(f);
			d.first_sect = (uint8_t)((sb & 0xf) % 9);
			d.last_sect = (uint8_t)((sb >> 4) % 9);
		} else {
			d.gref++; /* distinct pages, as a real frontend's */
		}
		memcpy(gind[i / PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME] +
			       (i % PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME) * sizeof(d), &d, sizeof(d));
	}
	for (unsigned k = 0; k * PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME < n; k++)
		gind_sync(k);
	if (S.x86_32) {
		struct pvio_blkif_x86_32_request_indirect i32;
		memset(&i32, 0, sizeof(i32));
		i32.operation = in.operation;
		i32.indirect_op = in.indirect_op;
		i32.nr_segments = in.nr_segments;
		i32.id = in.id;
		i32.sector_number = in.sector_number;
		memcpy(i32.indirect_grefs, in.indirect_grefs, sizeof(i32.indirect_grefs));
		memset(e, 0, S.entry_size);
		memcpy(e, &i32, sizeof(i32));
	} else {
		memset(e, 0, S.entry_size);
		memcpy(e, &in, sizeof(in));
	}
}

static void put_structured(struct fz *f)
{
	uint8_t *e = slot(req_prod_pvt);
	struct pvio_blkif_request w;
	uint8_t sel = fz_u8(f);

	if (sel & 4) {
		put_indirect(f, sel, e);
		fe_wrote(req_prod_pvt);
		req_prod_pvt++;
		__atomic_store_n(&sring()->req_prod, req_prod_pvt, __ATOMIC_RELEASE);
		return;
	}
	memset(&w, 0, sizeof(w));
	w.operation = (uint8_t)(fz_u8(f) % 8);
	w.nr_segments = (uint8_t)(fz_u8(f) % 13);
	w.id = fz_u64(f);
	w.sector_number = (sel & 1) ? fz_u64(f) : fz_u16(f);
	for (unsigned i = 0; i < PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST && i < w.nr_segments; i++) {
		w.seg[i].gref = (sel & 2) ? fz_u32(f) : fz_u8(f);
		uint8_t s = fz_u8(f);
		w.seg[i].first_sect = (uint8_t)((s & 0xf) % 9);
		w.seg[i].last_sect = (uint8_t)((s >> 4) % 9);
	}
	if (S.x86_32) {
		struct pvio_blkif_x86_32_request r32;
		memset(&r32, 0, sizeof(r32));
		r32.operation = w.operation;
		r32.nr_segments = w.nr_segments;
		r32.id = w.id;
		r32.sector_number = w.sector_number;
		memcpy(r32.seg, w.seg, sizeof(r32.seg));
		memcpy(e, &r32, sizeof(r32));
	} else {
		memcpy(e, &w, sizeof(w));
	}
	fe_wrote(req_prod_pvt);
	req_prod_pvt++;
	__atomic_store_n(&sring()->req_prod, req_prod_pvt, __ATOMIC_RELEASE);
}

static void run_loop(struct ev_loop *loop)
{
	/* idle and prepare watchers only: NOWAIT never blocks */
	ev_run(loop, EVRUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct pvio_blkback_config cfg;
	struct pvio_blkback *bb;
	struct ev_loop *loop;
	uint8_t h = fz_u8(&in);
	unsigned order = (h >> 1) & 3;
	uint32_t refs[16] = { 0 }, port = 3;
	int err;

	uint8_t h2 = fz_u8(&in);

	memset(&S, 0, sizeof(S));
	S.in = &in;
	S.x86_32 = h & 1;
	S.readonly = (h & 8) != 0;
	S.sync = (h & 16) != 0;
	S.sync_status = (h & 32) ? -EIO : 0;
	switch (h2 & 3) {
	case 0: S.max_indirect = PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS; break;
	case 1: S.max_indirect = 0; break;
	case 2: S.max_indirect = 1 + fz_u8(&in); break;
	default: S.max_indirect = 12; break;
	}
	S.ss = (h2 & 4) ? 4096 : 512;
	S.sectors = (h & 64) ? fz_u64(&in) : (uint64_t)fz_u16(&in) + 1;
	if (S.ss == 4096) /* a disk of whole 4 KiB blocks (create refuses others) */
		S.sectors = S.sectors / 8 ? S.sectors / 8 * 8 : 8;
	memset(gind, 0, sizeof(gind));
	req_prod_pvt = rsp_cons = 0;
	responses_seen = 0;
	memset(shadow_ok, 0, sizeof(shadow_ok));
	broken_seen = 0;
	map_fail_all = false;
	map_fail_countdown = 0;

	memset(ring_mem, 0, sizeof(ring_mem));
	pvio_ring_sring_init(sring());

	loop = ev_loop_new(EVFLAG_AUTO);
	FZ_CHECK(loop != NULL, "ev_loop_new");
	memset(&cfg, 0, sizeof(cfg));
	cfg.backend = "/local/domain/0/backend/vbd/1/51712";
	cfg.ops = &io_ops;
	cfg.sectors = S.sectors;
	cfg.readonly = S.readonly;
	cfg.max_indirect_segments = S.max_indirect;
	cfg.sector_size = S.ss;
	cfg.discard = (h2 & 8) != 0;
	err = pvio_blkback_create(loop, &cfg, &bb);
	FZ_CHECK(err == 0, "create: %d", err);
	bb->domid = 1;
	bb->discard = cfg.discard && !cfg.readonly; /* what publish() decides in xenbus.c */
	bb->persistent = S.persistent = (h & 128) != 0;
	bb->xgt = (xengnttab_handle *)&evtchn_dummy;
	expect_ring = true;
	taken_seen = 0;
	err = bb_ring_connect(bb, order, 1, refs, &port, S.x86_32 ? BB_PROTO_X86_32 : BB_PROTO_NATIVE);
	FZ_CHECK(err == 0, "connect: %d", err);
	S.nr_ents = bb->q[0].br.nr_ents;
	S.entry_size = bb->q[0].br.entry_size;

	for (unsigned step = 0; step < MAX_STEPS && fz_left(&in); step++) {
		uint8_t op = fz_u8(&in);
		switch (op % 12) {
		case 11: { /* raw bytes into a descriptor page */
			uint8_t k = fz_u8(&in) % NIND;
			uint16_t off = fz_u16(&in) % PAGE, len = fz_u8(&in);
			fz_bytes(&in, gind[k] + off, len < PAGE - off ? len : PAGE - off);
			gind_sync(k);
			break;
		}
		case 0: { /* raw bytes into any slot */
			uint8_t i = fz_u8(&in);
			fz_bytes(&in, slot(i), S.entry_size);
			fe_wrote(i);
			break;
		}
		case 1: /* one structured request, published */
			put_structured(&in);
			break;
		case 2: { /* req_prod moved relative to what we produced */
			int8_t d = (int8_t)fz_u8(&in);
			__atomic_store_n(&sring()->req_prod, req_prod_pvt + (uint32_t)(int32_t)d,
					 __ATOMIC_RELEASE);
			break;
		}
		case 3: /* req_prod anything, req_event anything */
			sring()->req_prod = fz_u32(&in);
			if (op & 0x80)
				sring()->req_event = fz_u32(&in);
			break;
		case 4: /* event: delivered only while unmasked, as the evtchn layer does */
			if (!evt_masked && bb->q) {
				evt_masked = evt_late_eoi;
				bb_event_notified(&bb->q[0]);
			}
			break;
		case 5: /* complete one in-flight request */
			if (S.npend)
				complete_one(fz_u8(&in) % S.npend, (op & 0x80) ? -EIO : 0);
			break;
		case 6: /* complete everything */
			while (S.npend)
				complete_one(0, (op & 0x80) ? -ENOSPC : 0);
			break;
		case 7:
			run_loop(loop);
			break;
		case 8: /* grant maps start or stop failing */
			map_fail_all = (op & 0x80) != 0;
			map_fail_countdown = fz_u8(&in) % 4;
			break;
		case 9:
			consume_responses(bb);
			break;
		case 10: /* pause / unpause (the toolstack, interleaved) */
			if (op & 0x80)
				pvio_blkback_pause(bb);
			else
				pvio_blkback_unpause(bb);
			break;
		}
		/* a barrier waiting for earlier requests is the core's, not the daemon's */
		FZ_CHECK(bb->st.in_flight == S.npend + barrier_waiting(bb) || S.sync,
			 "core counts %u in flight, daemon holds %u", bb->st.in_flight, S.npend);
	}
	/* Wind down like a daemon: finish all I/O, let the loop push. */
	/* (the loop may take more requests: a starved ring is re-run from an
	 * idle watcher; bounded, as the ring holds at most nr_ents) */
	for (unsigned round = 0; round < 64; round++) {
		while (S.npend)
			complete_one(0, 0);
		run_loop(loop);
		consume_responses(bb);
		if (!S.npend)
			break;
	}
	FZ_CHECK(bb->st.in_flight == 0, "%u requests in flight after all completed", bb->st.in_flight);
	/* late EOI (XSA-332): a delivered event is always ended, by the round
	 * or by a storm backoff's timer; a port masked for good would stall
	 * the frontend */
	FZ_CHECK(!bb->connected || !evt_masked || bb->q[0].round_pending ||
			 ev_is_active(&bb->q[0].eoi.backoff),
		 "event channel left masked with no round pending and no backoff running");
	/* what stays mapped is the cache's: its batches (one map call each),
	 * whose live entries are the cached ones, within the bound */
	uint32_t pg_n = bb->q ? bb->q[0].pg_n : 0, batches = 0, live = 0, pages = 0;
	for (uint32_t i = 0; bb->q && bb->q[0].pg_batch && i < BB_PGNT_MAX; i++)
		if (bb->q[0].pg_batch[i].count) {
			batches++;
			live += bb->q[0].pg_batch[i].live;
			pages += bb->q[0].pg_batch[i].count;
		}
	FZ_CHECK(nmaps == batches && live == pg_n, "%u mappings left after all requests completed, "
		 "%u cache batches holding %u live entries, %u cached", nmaps, batches, live, pg_n);
	FZ_CHECK(!bb->q || (pages == bb->q[0].pg_mapped && pages <= BB_PGNT_MAX),
		 "cache batches hold %u pages, counted %u (bound %u)", pages, bb->q ? bb->q[0].pg_mapped : 0,
		 BB_PGNT_MAX);
	for (uint32_t i = 0; i < pg_n; i++)
		FZ_CHECK(bb->q[0].pg[i].users == 0, "persistent grant %u busy with nothing in flight",
			 bb->q[0].pg[i].gref);
	pvio_blkback_destroy(bb);
	FZ_CHECK(!ring_mapped, "ring still mapped after destroy");
	FZ_CHECK(nmaps == 0, "mappings leaked");
	ev_loop_destroy(loop);
	return 0;
}
