/* SPDX-License-Identifier: MIT */
/* The blkfront tests' backend: see testback.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xengnttab.h>
#include <xenstore.h>

#include "pvio/blkif_wire.h"
#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "testback.h"

#define TB_LOG(...) fprintf(stderr, "testback: " __VA_ARGS__)

struct tb {
	const struct tb_cfg *cfg;
	unsigned max_indirect, sector_size; /* this instance's */
	struct xs_handle *xs;
	xengnttab_handle *xgt;
	struct pvio_evtchn *ev;
	struct pvio_ring_back br;
	void *ring;
	unsigned order;
	int lport;
	char bdir[96], fdir[96];
	unsigned answered;
	int bad; /* the frontend sent something invalid */
};

static int xs_printf(struct xs_handle *xs, const char *dir, const char *key, const char *fmt, ...)
{
	char path[160], val[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_write(xs, XBT_NULL, path, val, (unsigned)strlen(val)) ? 0 : -errno;
}

static long xs_num(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[160], *v, *end;
	unsigned len;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	v = xs_read(xs, XBT_NULL, path, &len);
	if (!v)
		return -1;
	n = strtol(v, &end, 10);
	if (*end || !len)
		n = -2;
	free(v);
	return n;
}

int tb_create_vbd(uint32_t domid, uint32_t devid)
{
	struct xs_handle *xs = xs_open(0);
	char b[96], f[96];
	struct xs_permissions bp[2] = { { 0, XS_PERM_NONE }, { domid, XS_PERM_READ } };
	struct xs_permissions fp[2] = { { domid, XS_PERM_NONE }, { 0, XS_PERM_READ } };
	int err = 0;

	if (!xs)
		return -errno;
	snprintf(b, sizeof(b), "/local/domain/0/backend/vbd3/%u/%u", domid, devid);
	snprintf(f, sizeof(f), "/local/domain/%u/device/vbd/%u", domid, devid);
	xs_mkdir(xs, XBT_NULL, b);
	xs_mkdir(xs, XBT_NULL, f);
	if (!xs_set_permissions(xs, XBT_NULL, b, bp, 2) || !xs_set_permissions(xs, XBT_NULL, f, fp, 2))
		err = -errno;
	err = err ? err : xs_printf(xs, b, "frontend", "%s", f);
	err = err ? err : xs_printf(xs, b, "frontend-id", "%u", domid);
	err = err ? err : xs_printf(xs, b, "online", "1");
	err = err ? err : xs_printf(xs, b, "state", "1");
	err = err ? err : xs_printf(xs, b, "mode", "w");
	err = err ? err : xs_printf(xs, b, "dev", "xvda");
	err = err ? err : xs_printf(xs, f, "backend", "%s", b);
	err = err ? err : xs_printf(xs, f, "backend-id", "0");
	err = err ? err : xs_printf(xs, f, "virtual-device", "%u", devid);
	err = err ? err : xs_printf(xs, f, "device-type", "disk");
	err = err ? err : xs_printf(xs, f, "state", "1");
	xs_close(xs);
	return err;
}

/* publish key, or the configured bad value in its place */
static void publish(struct tb *t, const char *key, const char *fmt, unsigned long v)
{
	char val[32];

	if (t->cfg->bad_key && !strcmp(key, t->cfg->bad_key)) {
		xs_printf(t->xs, t->bdir, key, "%s", t->cfg->bad_val);
		return;
	}
	snprintf(val, sizeof(val), fmt, v);
	xs_printf(t->xs, t->bdir, key, "%s", val);
}

/* Wait for the frontend state to be in [lo, hi] or >= 5. */
static long wait_fstate(struct tb *t, long lo, long hi)
{
	for (;;) {
		long s = xs_num(t->xs, t->fdir, "state");
		unsigned num;

		if ((s >= lo && s <= hi) || s >= 5 || s == -1)
			return s;
		struct pollfd p = { .fd = xs_fileno(t->xs), .events = POLLIN };
		if (poll(&p, 1, 30000) <= 0) {
			TB_LOG("frontend state stuck at %ld\n", s);
			return -1;
		}
		free(xs_read_watch(t->xs, &num));
	}
}

/* Reads and writes, direct or indirect (descriptors copied out of the
 * indirect pages once); anything a correct frontend would not send,
 * including I/O not aligned to the logical sector, sets t->bad. */
static int16_t do_rw(struct tb *t, const struct pvio_blkif_request *rq, uint8_t op)
{
	static struct pvio_blkif_request_segment segs[4096];
	static uint32_t refs[4096];
	const struct tb_cfg *c = t->cfg;
	const struct pvio_blkif_request_segment *seg = rq->seg;
	uint64_t sec = rq->sector_number, total = 0;
	unsigned blk = t->sector_size / 512;
	uint8_t *pages;
	unsigned n = rq->nr_segments;

	if (rq->operation == PVIO_BLKIF_OP_INDIRECT) {
		struct pvio_blkif_request_indirect in;
		memcpy(&in, rq, sizeof(in));
		n = in.nr_segments;
		if (!t->max_indirect || n == 0 || n > t->max_indirect || n <= 11) {
			TB_LOG("indirect request of %u segments (limit %u)\n", n, t->max_indirect);
			t->bad = 1;
			return PVIO_BLKIF_RSP_ERROR;
		}
		unsigned nind = (n + 511) / 512;
		void *ip = xengnttab_map_domain_grant_refs(t->xgt, nind, c->domid, in.indirect_grefs,
							   PROT_READ);
		if (!ip) {
			TB_LOG("cannot map %u indirect pages: %s\n", nind, strerror(errno));
			t->bad = 1;
			return PVIO_BLKIF_RSP_ERROR;
		}
		memcpy(segs, ip, (size_t)n * sizeof(segs[0]));
		xengnttab_unmap(t->xgt, ip, nind);
		seg = segs;
	} else if (n == 0 || n > PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST) {
		TB_LOG("bad segment count %u\n", n);
		t->bad = 1;
		return PVIO_BLKIF_RSP_ERROR;
	}
	for (unsigned i = 0; i < n; i++) {
		if (seg[i].first_sect > seg[i].last_sect || seg[i].last_sect > 7) {
			TB_LOG("bad segment %u\n", i);
			t->bad = 1;
			return PVIO_BLKIF_RSP_ERROR;
		}
		total += seg[i].last_sect - seg[i].first_sect + 1u;
		refs[i] = seg[i].gref;
	}
	if (sec % blk || total % blk) {
		TB_LOG("request at sector %llu of %llu sectors is not whole %u-byte blocks\n",
		       (unsigned long long)sec, (unsigned long long)total, t->sector_size);
		t->bad = 1;
		return PVIO_BLKIF_RSP_ERROR;
	}
	pages = xengnttab_map_domain_grant_refs(t->xgt, n, c->domid, refs,
						PROT_READ | PROT_WRITE);
	if (!pages) {
		TB_LOG("cannot map %u segments: %s\n", n, strerror(errno));
		t->bad = 1;
		return PVIO_BLKIF_RSP_ERROR;
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned ns = seg[i].last_sect - seg[i].first_sect + 1u;
		uint8_t *pg = pages + (size_t)i * 4096 + seg[i].first_sect * 512u;

		if (sec + ns > c->sectors) {
			TB_LOG("request beyond the disk: sector %llu\n", (unsigned long long)sec);
			t->bad = 1;
			xengnttab_unmap(t->xgt, pages, n);
			return PVIO_BLKIF_RSP_ERROR;
		}
		if (op == PVIO_BLKIF_OP_WRITE)
			memcpy(c->disk + sec * 512, pg, ns * 512u);
		else
			memcpy(pg, c->disk + sec * 512, ns * 512u);
		sec += ns;
	}
	xengnttab_unmap(t->xgt, pages, n);
	return PVIO_BLKIF_RSP_OKAY;
}

static void answer(struct tb *t, const struct pvio_blkif_request *rq, uint8_t op, int16_t status)
{
	struct pvio_blkif_response rs;
	bool hostile = t->answered >= t->cfg->after;

	memset(&rs, 0, sizeof(rs));
	rs.id = rq->id;
	rs.operation = op;
	rs.status = status;
	if (hostile) {
		switch (t->cfg->mode) {
		case TB_ID_RANGE: rs.id = 1000000; break;
		case TB_ID_NOT_INFLIGHT: rs.id = rq->id ^ 1; break;
		case TB_BAD_OP: rs.operation ^= 1; break;
		case TB_BAD_STATUS: rs.status = 7; break;
		default: break;
		}
	}
	pvio_ring_blkif_put_response(&t->br, &rs);
	t->answered++;
	if (hostile && t->cfg->mode == TB_PROD_AHEAD) {
		/* claim responses the frontend never asked for */
		__atomic_store_n(&t->br.sring->rsp_prod, t->br.rsp_prod_pvt + t->br.nr_ents + 3,
				 __ATOMIC_RELEASE);
		pvio_evtchn_notify(t->ev, (evtchn_port_t)t->lport);
		return;
	}
	if (pvio_ring_back_push_responses(&t->br))
		pvio_evtchn_notify(t->ev, (evtchn_port_t)t->lport);
}

static void on_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(void)arg;
}

static int connect_ring(struct tb *t)
{
	uint32_t refs[16];
	long order, port, v;
	char key[40];

	order = xs_num(t->xs, t->fdir, "ring-page-order");
	if (order == -1)
		order = 0;
	if (order < 0 || order > (long)t->cfg->max_order) {
		TB_LOG("bad ring-page-order %ld\n", order);
		return -1;
	}
	for (long i = 0; i < (1l << order); i++) {
		if (order == 0)
			snprintf(key, sizeof(key), "ring-ref");
		else
			snprintf(key, sizeof(key), "ring-ref%ld", i);
		v = xs_num(t->xs, t->fdir, key);
		if (v < 0) {
			TB_LOG("missing %s\n", key);
			return -1;
		}
		refs[i] = (uint32_t)v;
	}
	port = xs_num(t->xs, t->fdir, "event-channel");
	if (port <= 0)
		return -1;
	t->order = (unsigned)order;
	if (pvio_gnt_map_batch(t->xgt, t->cfg->domid, 1u << order, refs, 1, &t->ring, NULL)) {
		TB_LOG("cannot map the ring\n");
		t->ring = NULL;
		return -1;
	}
	t->lport = pvio_evtchn_bind_interdomain(t->ev, t->cfg->domid, (evtchn_port_t)port, on_event, t);
	if (t->lport < 0)
		return -1;
	pvio_ring_blkif_back_init(&t->br, t->ring, PVIO_RING_BYTES(order));
	return 0;
}

static void disconnect_ring(struct tb *t)
{
	if (t->ring)
		xengnttab_unmap(t->xgt, t->ring, 1u << t->order);
	t->ring = NULL;
	if (t->ev)
		pvio_evtchn_close(t->ev);
	t->ev = NULL;
	if (t->xgt)
		xengnttab_close(t->xgt);
	t->xgt = NULL;
}

/* One backend instance: 0 frontend closed, 1 died on purpose, -1 error. */
static int instance(struct tb *t, int may_die)
{
	const struct tb_cfg *c = t->cfg;
	long fs;

	t->xgt = xengnttab_open(NULL, 0);
	if (!t->xgt || pvio_evtchn_open(&t->ev))
		return -1;
	publish(t, "max-ring-page-order", "%lu", c->max_order);
	publish(t, "feature-flush-cache", "%lu", (unsigned long)c->flush);
	publish(t, "feature-barrier", "%lu", 0);
	publish(t, "feature-persistent", "%lu", 0);
	publish(t, "feature-max-indirect-segments", "%lu", t->max_indirect);
	xs_printf(t->xs, t->bdir, "state", "2");
	fs = wait_fstate(t, 3, 3);
	if (fs != 3)
		goto closed;
	if (connect_ring(t))
		goto closed;
	publish(t, "sectors", "%lu", (unsigned long)c->sectors);
	publish(t, "info", "%lu", c->readonly ? 4 : 0);
	publish(t, "sector-size", "%lu", t->sector_size);
	publish(t, "physical-sector-size", "%lu", t->sector_size > 4096 ? t->sector_size : 4096);
	xs_printf(t->xs, t->bdir, "state", "4");

	for (;;) {
		int n = pvio_ring_back_poll_requests(&t->br);
		struct pvio_blkif_request rq;

		if (n == 0)
			n = pvio_ring_back_final_check(&t->br);
		if (n < 0) {
			TB_LOG("frontend broke the ring\n");
			t->bad = 1;
			goto closed;
		}
		while (n > 0 && pvio_ring_blkif_copy_request(&t->br, &rq) == 1) {
			int16_t st;
			uint8_t op = rq.operation;

			if (may_die && t->answered >= c->after) {
				/* die with this request (and the rest) unanswered */
				disconnect_ring(t);
				return 1;
			}
			switch (rq.operation) {
			case PVIO_BLKIF_OP_READ:
			case PVIO_BLKIF_OP_WRITE:
				st = do_rw(t, &rq, op);
				break;
			case PVIO_BLKIF_OP_INDIRECT:
				/* answered with indirect_op, as Linux blkback */
				op = rq.nr_segments;
				if (op != PVIO_BLKIF_OP_READ && op != PVIO_BLKIF_OP_WRITE) {
					TB_LOG("indirect_op %u\n", op);
					t->bad = 1;
					st = PVIO_BLKIF_RSP_ERROR;
				} else {
					st = do_rw(t, &rq, op);
				}
				if (c->echo_indirect)
					op = PVIO_BLKIF_OP_INDIRECT;
				break;
			case PVIO_BLKIF_OP_FLUSH_DISKCACHE:
				st = c->flush ? PVIO_BLKIF_RSP_OKAY : PVIO_BLKIF_RSP_EOPNOTSUPP;
				if (rq.nr_segments)
					t->bad = 1;
				break;
			default:
				TB_LOG("unexpected operation %u\n", rq.operation);
				t->bad = 1;
				st = PVIO_BLKIF_RSP_EOPNOTSUPP;
			}
			answer(t, &rq, op, st);
		}
		if (n > 0)
			continue;
		struct pollfd p[2] = {
			{ .fd = pvio_evtchn_fd(t->ev), .events = POLLIN },
			{ .fd = xs_fileno(t->xs), .events = POLLIN },
		};
		if (poll(p, 2, 30000) <= 0) {
			TB_LOG("idle for 30 s\n");
			goto closed;
		}
		if (p[0].revents)
			pvio_evtchn_dispatch(t->ev);
		if (p[1].revents) {
			unsigned num;
			free(xs_read_watch(t->xs, &num));
			fs = xs_num(t->xs, t->fdir, "state");
			if (fs < 0 || fs >= 5)
				goto closed;
		}
	}
closed:
	/* Unmap before saying Closed: the frontend then ends its grants. */
	disconnect_ring(t);
	if (fs == 3 || fs == 4 || fs >= 5 || fs < 0) {
		/* wait until the frontend says Closing/Closed */
		wait_fstate(t, 5, 6);
	}
	xs_printf(t->xs, t->bdir, "state", "6");
	return 0;
}

int tb_run(const struct tb_cfg *c)
{
	struct tb t = { .cfg = c, .lport = -1 };
	int r;

	snprintf(t.bdir, sizeof(t.bdir), "/local/domain/0/backend/vbd3/%u/%u", c->domid, c->devid);
	snprintf(t.fdir, sizeof(t.fdir), "/local/domain/%u/device/vbd/%u", c->domid, c->devid);
	t.xs = xs_open(0);
	if (!t.xs) {
		TB_LOG("xs_open: %s\n", strerror(errno));
		return 1;
	}
	{
		char path[160];
		snprintf(path, sizeof(path), "%s/state", t.fdir);
		xs_watch(t.xs, path, "fe");
	}
	t.max_indirect = c->max_indirect;
	t.sector_size = c->sector_size ? c->sector_size : 512;
	r = instance(&t, c->mode == TB_DIE);
	if (r == 1) {
		/* a new backend instance takes over the device, maybe with
		 * other limits */
		t.answered = 0;
		t.cfg = c;
		t.max_indirect = c->max_indirect_restart;
		if (c->sector_size_restart)
			t.sector_size = c->sector_size_restart;
		r = instance(&t, 0);
	}
	xs_close(t.xs);
	return r == 0 && !t.bad ? 0 : 1;
}
