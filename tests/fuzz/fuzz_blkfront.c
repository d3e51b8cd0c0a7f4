/* SPDX-License-Identifier: MIT */
/*
 * fuzz_blkfront: a hostile backend against the freestanding blkfront core.
 *
 * The core (blkfront/{blkfront,xenbus,io,util}.c) runs on a fake platform:
 * heap "guest pages", a grant table that maps refs to those pages, a
 * 64-entry in-memory xenstore, and a fake clock that advances on every
 * wait so that handshake deadlines end any stall.  The backend is a
 * script that does the handshake honestly unless told otherwise, then
 * each time the frontend waits, plays fuzzer-chosen moves: answer the
 * oldest request with any status, write raw response bytes, move rsp_prod
 * anywhere, answer with a stale or random id, change its state (restart,
 * close, garbage) or the disk size.  Meanwhile the fuzzer submits reads,
 * writes and flushes (some big enough to go as indirect requests when the
 * third header byte has bit 7: ours 64 segments, the backend offers 32 or
 * 4096).  Multi-queue: the frontend may use 4 queues; eight command bytes
 * (mq_restart_cmd) restart the backend with another multi-queue-max-queues
 * (absent, 0, 1, 2, 3, 4, 16, garbage), and the backend then maps every
 * queue-N ring the frontend publishes and plays its moves on the rings in
 * turn.
 *
 * Invariants: the frontend asks for at most the queues offered, each
 * ring's refs are live grants and its event channel one of its ports;
 * every I/O's callback runs exactly once with 0, -EIO or
 * -EOPNOTSUPP; a read that succeeds copied exactly its length; nothing
 * hangs (bounded by the step limit and the clock); at close every page
 * is freed and every grant ended, except pages whose grant the backend
 * still holds (counted as leaked, never reused).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pvio/blkfront.h"
#include "pvio/blkif_wire.h"
#include "pvio/ring.h"

#define PAGE 4096u
#define FDIR "/local/domain/1/device/vbd/51712"
#define BDIR "/local/domain/0/backend/vbd/1/51712"
#define NKEYS 512 /* 16 queues of 16-page rings: 16 * 17 keys */
#define NALLOC 512
#define NGRANTS 8192
#define NIOS 16
#define MAX_WAITS 3000

static struct fz *IN;

/* ---- xenstore ---------------------------------------------------------- */

static struct {
	char key[128];
	char val[128];
} store[NKEYS];

static char *xs_get(const char *k)
{
	for (int i = 0; i < NKEYS; i++)
		if (store[i].key[0] && !strcmp(store[i].key, k))
			return store[i].val;
	return NULL;
}

static void xs_set(const char *k, const char *v)
{
	char *p = xs_get(k);
	int i;

	if (!p) {
		for (i = 0; i < NKEYS && store[i].key[0]; i++)
			;
		FZ_CHECK(i < NKEYS, "fake xenstore full");
		snprintf(store[i].key, sizeof(store[i].key), "%s", k);
		p = store[i].val;
	}
	snprintf(p, sizeof(store[0].val), "%s", v);
}

static void xs_del(const char *k)
{
	for (int i = 0; i < NKEYS; i++)
		if (store[i].key[0] && !strcmp(store[i].key, k))
			store[i].key[0] = 0;
}

static void be_set(const char *k, const char *v)
{
	char path[160];
	snprintf(path, sizeof(path), BDIR "/%s", k);
	xs_set(path, v);
}

static void be_set_u(const char *k, unsigned long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%llu", v);
	be_set(k, b);
}

static long fe_get_num(const char *k)
{
	char path[160];
	snprintf(path, sizeof(path), FDIR "/%s", k);
	const char *v = xs_get(path);
	return v ? strtol(v, NULL, 10) : -1;
}

/* ---- memory and grants -------------------------------------------------- */

static struct {
	uint8_t *va;
	unsigned n;
	uint64_t gfn;
} allocs[NALLOC];
static uint64_t next_gfn = 0x1000;

static struct {
	bool live;
	uint64_t gfn;
	bool mapped; /* the backend holds it: end_grant says -EBUSY */
	bool refused; /* end_grant said -EBUSY once: blkfront leaks it for good */
} grants[NGRANTS];
static uint32_t next_ref;
static unsigned leaked;

static void *p_zalloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}
static void p_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}
static int p_page_alloc(void *ctx, unsigned n, void **va, uint64_t *gfn)
{
	(void)ctx;
	for (int i = 0; i < NALLOC; i++) {
		if (!allocs[i].va) {
			allocs[i].va = aligned_alloc(PAGE, (size_t)n * PAGE);
			if (!allocs[i].va)
				return -12;
			memset(allocs[i].va, 0, (size_t)n * PAGE);
			allocs[i].n = n;
			allocs[i].gfn = next_gfn;
			next_gfn += n;
			*va = allocs[i].va;
			*gfn = allocs[i].gfn;
			return 0;
		}
	}
	return -12;
}
static void p_page_free(void *ctx, void *va, unsigned n)
{
	(void)ctx;
	for (int i = 0; i < NALLOC; i++) {
		if (allocs[i].va == va) {
			FZ_CHECK(allocs[i].n == n, "page_free of %u pages, allocated %u", n, allocs[i].n);
			for (uint32_t r = 0; r < next_ref; r++)
				FZ_CHECK(!(grants[r].live && grants[r].gfn >= allocs[i].gfn &&
					   grants[r].gfn < allocs[i].gfn + n),
					 "page freed while its grant %u is live", r);
			free(va);
			allocs[i].va = NULL;
			return;
		}
	}
	FZ_CHECK(0, "page_free of unknown pages");
}
static int p_grant(void *ctx, uint16_t to, uint64_t gfn, bool ro, uint32_t *ref)
{
	(void)ctx;
	(void)ro;
	FZ_CHECK(to == 0, "grant to domain %u, backend is 0", to);
	if (next_ref >= NGRANTS)
		return -28;
	grants[next_ref].live = true;
	grants[next_ref].gfn = gfn;
	grants[next_ref].mapped = false;
	grants[next_ref].refused = false;
	*ref = next_ref++;
	return 0;
}
static int p_end_grant(void *ctx, uint32_t ref)
{
	(void)ctx;
	FZ_CHECK(ref < next_ref && grants[ref].live, "end of a grant not live (%u)", ref);
	if (grants[ref].mapped) {
		grants[ref].refused = true;
		return -16;
	}
	grants[ref].live = false;
	return 0;
}
static uint8_t *gfn_va(uint64_t gfn)
{
	for (int i = 0; i < NALLOC; i++)
		if (allocs[i].va && gfn >= allocs[i].gfn && gfn < allocs[i].gfn + allocs[i].n)
			return allocs[i].va + (gfn - allocs[i].gfn) * PAGE;
	return NULL;
}

/* ---- event channels, clock ---------------------------------------------- */

static uint64_t clock_ms;
static unsigned waits;

/* Ports 9..9+NPORTS-1: one per queue, new ones at each connection. */
#define NPORTS 64
static bool port_live[NPORTS];

static int p_evtchn_alloc(void *ctx, uint16_t remote, uint32_t *port)
{
	(void)ctx;
	(void)remote;
	for (uint32_t i = 0; i < NPORTS; i++) {
		if (!port_live[i]) {
			port_live[i] = true;
			*port = 9 + i;
			return 0;
		}
	}
	return -28;
}
static bool port_ok(uint32_t port)
{
	return port >= 9 && port < 9 + NPORTS && port_live[port - 9];
}
static int p_evtchn_notify(void *ctx, uint32_t port)
{
	(void)ctx;
	FZ_CHECK(port_ok(port), "notify on port %u, not ours", port);
	return 0;
}
static void p_evtchn_close(void *ctx, uint32_t port)
{
	(void)ctx;
	FZ_CHECK(port_ok(port), "close of port %u, not ours", port);
	port_live[port - 9] = false;
}
static int p_xs_read(void *ctx, const char *path, char *buf, size_t size)
{
	(void)ctx;
	const char *v = xs_get(path);
	if (!v)
		return -2;
	if (strlen(v) >= size)
		return -28;
	memcpy(buf, v, strlen(v) + 1);
	return 0;
}
static int p_xs_write_many(void *ctx, unsigned n, const char *const *paths, const char *const *vals)
{
	(void)ctx;
	for (unsigned i = 0; i < n; i++) {
		FZ_CHECK(!strncmp(paths[i], FDIR "/", strlen(FDIR) + 1),
			 "frontend wrote outside its directory: %s", paths[i]);
		xs_set(paths[i], vals[i]);
	}
	return 0;
}
static int p_xs_rm(void *ctx, const char *path)
{
	size_t l = strlen(path);

	(void)ctx;
	FZ_CHECK(!strncmp(path, FDIR "/", strlen(FDIR) + 1), "frontend removed outside its directory: %s",
		 path);
	for (int i = 0; i < NKEYS; i++)
		if (store[i].key[0] && !strncmp(store[i].key, path, l) &&
		    (store[i].key[l] == 0 || store[i].key[l] == '/'))
			store[i].key[0] = 0;
	return 0;
}
static int p_xs_watch(void *ctx, const char *path)
{
	(void)ctx;
	(void)path;
	return 0;
}
static void p_xs_unwatch(void *ctx, const char *path)
{
	(void)ctx;
	(void)path;
}
static uint64_t p_now(void *ctx)
{
	(void)ctx;
	return clock_ms;
}

/* ---- the hostile backend ------------------------------------------------- */

/* One ring of the backend (one per queue with multi-queue). */
struct be_queue {
	uint8_t *ring;
	unsigned ring_pages;
	uint32_t ring_refs[16];
	struct pvio_ring_back br;
	uint32_t rsp_prod;	   /* our own producer (may lie) */
	struct { uint64_t id; uint8_t op; } q[1024];
	unsigned qh, qt;	   /* requests read, not answered */
};

static struct {
	bool connected;
	unsigned nq;		   /* rings mapped */
	struct be_queue bq[PVIO_BLKFRONT_MAX_QUEUES];
	unsigned turn;		   /* the ring the next move plays on */
	uint64_t last_id;
	uint64_t sectors;
	uint8_t hdr;
	bool indirect;		   /* offers indirect descriptors (restarts may change the limit) */
	long mq_offer;		   /* multi-queue-max-queues as a number (0: absent or garbage) */
} B;

static void be_unmap_all(void)
{
	for (unsigned k = 0; k < B.nq; k++) {
		struct be_queue *Q = &B.bq[k];
		for (unsigned i = 0; i < Q->ring_pages; i++)
			if (Q->ring_refs[i] < NGRANTS)
				grants[Q->ring_refs[i]].mapped = false;
		Q->ring = NULL;
		Q->ring_pages = 0;
	}
	B.nq = 0;
	B.connected = false;
}

/* Map ring @k of @order from the frontend's keys under @dir ("" or
 * "queue-K/"), checked: every ref a live grant of contiguous pages, the
 * queue's event channel one of the frontend's ports. */
static void be_map_queue(unsigned k, const char *dir, long order)
{
	struct be_queue *Q = &B.bq[k];
	char path[160];

	Q->ring_pages = 1u << order;
	for (unsigned i = 0; i < Q->ring_pages; i++) {
		if (order == 0)
			snprintf(path, sizeof(path), FDIR "/%sring-ref", dir);
		else
			snprintf(path, sizeof(path), FDIR "/%sring-ref%u", dir, i);
		const char *v = xs_get(path);
		uint32_t ref = v ? (uint32_t)strtoul(v, NULL, 10) : ~0u;
		FZ_CHECK(ref < next_ref && grants[ref].live, "%s not a live grant (%u)", path, ref);
		Q->ring_refs[i] = ref;
		grants[ref].mapped = true;
		uint8_t *va = gfn_va(grants[ref].gfn);
		FZ_CHECK(va != NULL, "ring-ref %u not backed by a page", ref);
		if (i == 0)
			Q->ring = va;
		else
			FZ_CHECK(va == Q->ring + (size_t)i * PAGE, "ring pages not contiguous");
	}
	snprintf(path, sizeof(path), FDIR "/%sevent-channel", dir);
	const char *ev = xs_get(path);
	FZ_CHECK(ev && port_ok((uint32_t)strtoul(ev, NULL, 10)), "%s is not one of our ports", path);
	pvio_ring_blkif_back_init(&Q->br, Q->ring, (size_t)Q->ring_pages * PAGE);
	Q->rsp_prod = 0;
	Q->qh = Q->qt = 0;
}

/* Frontend said Initialised: map its ring(s) (refs from xenstore, checked). */
static void be_connect(void)
{
	long order = fe_get_num("ring-page-order");
	long nq = fe_get_num("multi-queue-num-queues");

	if (order < 0)
		order = 0;
	if (order > 4)
		return;
	/* Offered (a number >= 1): the frontend says how many it uses, at
	 * most that; not offered (absent, 0, garbage): a backend does not
	 * look at the key (a count from an earlier connection may linger). */
	if (B.mq_offer >= 1)
		FZ_CHECK(nq >= 1 && nq <= B.mq_offer, "frontend asked for %ld queues, %ld offered", nq,
			 B.mq_offer);
	else
		nq = 1;
	if (nq > 1) {
		char dir[32];
		FZ_CHECK(nq <= PVIO_BLKFRONT_MAX_QUEUES, "%ld queues", nq);
		for (unsigned k = 0; k < (unsigned)nq; k++) {
			snprintf(dir, sizeof(dir), "queue-%u/", k);
			be_map_queue(k, dir, order);
			B.nq = k + 1; /* mapped so far: be_unmap_all releases them */
		}
	} else {
		be_map_queue(0, "", order);
		B.nq = 1;
	}
	B.turn = 0;
	B.connected = true;
	be_set_u("sectors", B.sectors);
	be_set("info", (B.hdr & 0x40) ? "4" : "0");
	be_set("sector-size", (B.hdr & 0x80) ? "4096" : "512");
	be_set("state", "4");
}

static void be_read_requests(struct be_queue *Q)
{
	struct pvio_blkif_request r;
	int n = pvio_ring_back_poll_requests(&Q->br);

	if (n < 0)
		return;
	while (Q->qt - Q->qh < 1024 && pvio_ring_blkif_copy_request(&Q->br, &r) == 1) {
		Q->q[Q->qt % 1024].id = r.id;
		Q->q[Q->qt % 1024].op = r.operation;
		Q->qt++;
	}
}

static void be_put_rsp(struct be_queue *Q, uint64_t id, uint8_t op, int16_t st)
{
	struct pvio_blkif_response rsp;
	memset(&rsp, 0, sizeof(rsp));
	rsp.id = id;
	rsp.operation = op;
	rsp.status = st;
	uint8_t *e = Q->ring + 64 + (size_t)(Q->rsp_prod & (Q->br.nr_ents - 1)) * Q->br.entry_size;
	memcpy(e, &rsp, sizeof(rsp));
	Q->rsp_prod++;
	__atomic_store_n(&((struct pvio_ring_sring *)Q->ring)->rsp_prod, Q->rsp_prod, __ATOMIC_RELEASE);
}

/* One fuzzer-chosen move of the backend, on the rings in turn (an answer:
 * on the first ring from there with a request waiting). */
static void be_move(void)
{
	uint8_t m = fz_u8(IN);

	if (!B.connected)
		return;
	for (unsigned k = 0; k < B.nq; k++)
		be_read_requests(&B.bq[k]);
	struct be_queue *Q = &B.bq[B.turn++ % B.nq];
	switch (m % 10) {
	case 0: case 1: case 2: { /* answer the oldest request, mostly OK */
		for (unsigned k = 0; Q->qh == Q->qt && k < B.nq; k++)
			Q = &B.bq[(B.turn + k) % B.nq];
		if (Q->qh == Q->qt)
			break;
		int16_t st = (m & 0x80) ? (int16_t)(-(int)(fz_u8(IN) % 4)) : 0;
		be_put_rsp(Q, Q->q[Q->qh % 1024].id, Q->q[Q->qh % 1024].op, st);
		B.last_id = Q->q[Q->qh % 1024].id;
		Q->qh++;
		break;
	}
	case 3: { /* raw response bytes */
		uint8_t *e = Q->ring + 64 + (size_t)(Q->rsp_prod & (Q->br.nr_ents - 1)) * Q->br.entry_size;
		fz_bytes(IN, e, 16);
		Q->rsp_prod++;
		__atomic_store_n(&((struct pvio_ring_sring *)Q->ring)->rsp_prod, Q->rsp_prod,
				 __ATOMIC_RELEASE);
		break;
	}
	case 4: /* rsp_prod somewhere else */
		if (m & 0x80)
			Q->rsp_prod = fz_u32(IN);
		else
			Q->rsp_prod += (uint32_t)(int32_t)(int8_t)fz_u8(IN);
		((struct pvio_ring_sring *)Q->ring)->rsp_prod = Q->rsp_prod;
		break;
	case 5: /* stale id (answered already, maybe on another ring), or a random one */
		be_put_rsp(Q, (m & 0x80) ? fz_u64(IN) : B.last_id, (uint8_t)(fz_u8(IN) % 8), 0);
		break;
	case 6: { /* a new state: restart (InitWait), close, garbage */
		static const char *const st[] = { "2", "5", "6", "1", "3", "4", "x", "" };
		const char *s = st[fz_u8(IN) % 8];
		if (!strcmp(s, "2") || !strcmp(s, "1")) {
			be_unmap_all(); /* a new backend: it maps the new ring again */
			if (B.indirect) { /* ... maybe with another segment limit */
				static const char *const lim[] = { "0", "12", "32", "4096" };
				be_set("feature-max-indirect-segments", lim[fz_u8(IN) % 4]);
			}
		}
		be_set("state", s);
		break;
	}
	case 7: { /* resize to anything */
		char v[24];
		fz_bytes(IN, v, sizeof(v) - 1);
		v[sizeof(v) - 1] = 0;
		if (m & 0x80)
			be_set_u("sectors", fz_u64(IN));
		else
			be_set("sectors", v);
		be_set("state", "4");
		break;
	}
	default:
		break; /* nothing this time */
	}
}

/*
 * Command bytes that restart the backend with another multi-queue offer
 * (index: none, 1, 2, 4, 16, 0, garbage, 3).  Each is a no-op as a backend
 * move (m % 10 is 8 or 9) and was a poll as a command (c % 3 != 0), so a
 * seed can say a restart twice and have it happen whether the stream is
 * at a command or at a move.
 */
static const uint8_t mq_restart_cmd[8] = { 248, 238, 239, 229, 218, 208, 209, 188 };

/* A command that does nothing (and, as a move, nothing either): said
 * twice it brings a seed's stream to a command, whatever came before. */
#define CMD_SYNC 178

static int mq_restart_index(uint8_t c)
{
	for (int i = 0; i < 8; i++)
		if (mq_restart_cmd[i] == c)
			return i;
	return -1;
}

/* The backend restarts (InitWait) offering multi-queue as @idx says. */
static void be_restart_mq(int idx)
{
	static const char *const mq[] = { NULL, "1", "2", "4", "16", "0", "x", "3" };
	const char *o = mq[idx];

	be_unmap_all();
	if (o)
		be_set("multi-queue-max-queues", o);
	else
		xs_del(BDIR "/multi-queue-max-queues");
	B.mq_offer = o ? strtol(o, NULL, 10) : 0;
	be_set("state", "2");
}

/* The frontend waits: the honest handshake part, then a hostile move. */
static int p_wait(void *ctx, int timeout_ms)
{
	const char *bs = xs_get(BDIR "/state");
	long fs = fe_get_num("state");

	(void)ctx;
	(void)timeout_ms;
	clock_ms += 1000;
	FZ_CHECK(++waits < 100000, "frontend waits forever");
	if (fs == 1 && bs && strcmp(bs, "2") && !B.connected)
		be_set("state", "2");
	else if (fs == 3 && !B.connected && bs && !strcmp(bs, "2"))
		be_connect();
	else if (fs == 5 || fs == 6) {
		be_unmap_all();
		be_set("state", "6");
	}
	if (waits < MAX_WAITS)
		be_move();
	return PVIO_BLKFRONT_EV_EVTCHN | PVIO_BLKFRONT_EV_XS;
}

/* ---- the guest's I/O ------------------------------------------------------ */

static struct {
	struct pvio_blkfront_io io;
	uint8_t *buf;
	bool busy;
	unsigned done;
} ios[NIOS];

static void io_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;

	FZ_CHECK(&ios[k].io == io, "callback for a foreign io");
	FZ_CHECK(ios[k].busy, "callback twice for io %u", k);
	FZ_CHECK(status == 0 || status == -PVIO_BLKFRONT_EIO || status == -PVIO_BLKFRONT_EOPNOTSUPP,
		 "status %d", status);
	ios[k].busy = false;
	ios[k].done++;
}

static void submit_one(struct pvio_blkfront *bf)
{
	unsigned k = fz_u8(IN) % NIOS;
	uint8_t opb = fz_u8(IN);
	struct pvio_blkfront_info info;

	if (ios[k].busy)
		return;
	pvio_blkfront_get_info(bf, &info);
	struct pvio_blkfront_io *io = &ios[k].io;
	memset(io, 0, sizeof(*io));
	io->op = (enum pvio_blkfront_op)(opb % 3);
	io->sector = (opb & 0x80) ? fz_u64(IN) : fz_u16(IN) % (info.sectors + 16);
	/* 0x20: a big one (up to 4096 sectors), so that indirect requests,
	 * pool waits and sub-requests after a restart happen */
	size_t units = (opb & 0x20) ? 1 + fz_u16(IN) % 4096 : 1 + fz_u8(IN) % 64;
	io->len = io->op == PVIO_BLKFRONT_FLUSH ? 0 : units * info.sector_size;
	if (opb & 0x40)
		io->len += 3; /* misaligned: must be refused */
	free(ios[k].buf);
	ios[k].buf = malloc(io->len ? io->len : 1);
	memset(ios[k].buf, 0x3c, io->len ? io->len : 1);
	io->buf = ios[k].buf + 0;
	io->cb = io_cb;
	io->arg = (void *)(uintptr_t)k;
	ios[k].busy = true;
	if (pvio_blkfront_submit(bf, io) != 0)
		ios[k].busy = false; /* refused: no callback */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	struct pvio_blkfront_ops ops = {
		.zalloc = p_zalloc, .free = p_free, .page_alloc = p_page_alloc,
		.page_free = p_page_free, .grant = p_grant, .end_grant = p_end_grant,
		.evtchn_alloc = p_evtchn_alloc, .evtchn_notify = p_evtchn_notify,
		.evtchn_close = p_evtchn_close, .xs_read = p_xs_read,
		.xs_write_many = p_xs_write_many, .xs_watch = p_xs_watch,
		.xs_unwatch = p_xs_unwatch, .wait = p_wait, .now_ms = p_now, .xs_rm = p_xs_rm,
	};
	/* up to 4 queues: used once a restart offers multi-queue (be_move) */
	struct pvio_blkfront_config cfg = { .frontend_dir = FDIR, .handshake_timeout_ms = 20000,
					    .max_queues = 4 };
	struct pvio_blkfront *bf = NULL;
	int err;

	IN = &in;
	memset(store, 0, sizeof(store));
	memset(allocs, 0, sizeof(allocs));
	memset(grants, 0, sizeof(grants));
	memset(&B, 0, sizeof(B));
	memset(port_live, 0, sizeof(port_live));
	memset(ios, 0, sizeof(ios));
	next_ref = 8;
	leaked = 0;
	clock_ms = 0;
	waits = 0;

	B.hdr = fz_u8(&in);
	B.sectors = (B.hdr & 0x20) ? fz_u64(&in) : (uint64_t)fz_u16(&in) + 8;
	uint8_t sb = fz_u8(&in);
	cfg.max_slots = 1 + sb % 40;
	if (sb & 0x80) {
		/* indirect descriptors: ours 64, the backend offers 32 or 4096 */
		cfg.max_indirect_segments = 64;
		B.indirect = true;
		be_set("feature-max-indirect-segments", (sb & 0x40) ? "4096" : "32");
	}
	xs_set(FDIR "/backend", BDIR);
	xs_set(FDIR "/backend-id", "0");
	xs_set(FDIR "/virtual-device", "51712");
	static const char *const orders[] = { "0", "1", "2", "3", "4", "64", "-1", "x" };
	be_set("max-ring-page-order", orders[B.hdr & 7]);
	be_set("feature-flush-cache", (B.hdr & 8) ? "1" : "0");
	be_set("feature-barrier", (B.hdr & 16) ? "1" : "0");
	be_set("state", "2");

	err = pvio_blkfront_open(&ops, &cfg, &bf);
	if (err == 0) {
		for (unsigned step = 0; step < 4000 && fz_left(&in); step++) {
			uint8_t c = fz_u8(&in);
			int mq = mq_restart_index(c);
			if (c == CMD_SYNC)
				continue;
			if (mq >= 0)
				be_restart_mq(mq);
			else if (c % 3 == 0)
				submit_one(bf);
			else
				pvio_blkfront_poll(bf, 0);
		}
		err = pvio_blkfront_close(bf);
		/* -EPROTO/-ENODEV: the backend's state key was garbage or gone
		 * during the close handshake; resources are checked below. */
		FZ_CHECK(err == 0 || err == -PVIO_BLKFRONT_EBUSY || err == -PVIO_BLKFRONT_ETIMEDOUT ||
				 err == -PVIO_BLKFRONT_EPROTO || err == -PVIO_BLKFRONT_ENODEV,
			 "close: %d", err);
	}
	for (unsigned k = 0; k < NIOS; k++) {
		FZ_CHECK(!ios[k].busy, "io %u never completed", k);
		free(ios[k].buf);
	}
	/* What is left must be exactly what the backend still maps. */
	for (uint32_t r = 8; r < next_ref; r++)
		FZ_CHECK(!grants[r].live || grants[r].mapped || grants[r].refused,
			 "grant %u never ended", r);
	for (int i = 0; i < NALLOC; i++) {
		if (!allocs[i].va)
			continue;
		bool held = false;
		for (uint32_t r = 8; r < next_ref; r++)
			held |= grants[r].live && grants[r].gfn >= allocs[i].gfn &&
				grants[r].gfn < allocs[i].gfn + allocs[i].n;
		FZ_CHECK(held, "pages leaked without a held grant");
		free(allocs[i].va); /* the harness owns the leak */
	}
	return 0;
}
