/* SPDX-License-Identifier: MIT */
/*
 * blkfront xenbus: the frontend half of the vbd handshake (io/blkif.h,
 * docs/block-path.md), ring set-up and tear-down, and reactions to the
 * backend's state changes (reconnect after a tapdisk restart, close).
 */
#include "private.h"

int bf_wait_backend(struct pvio_blkfront *bf, unsigned mask, int *state)
{
	uint64_t deadline = 0;
	bool timed = bf->ops.now_ms && bf->handshake_timeout_ms > 0;

	if (timed)
		deadline = bf_now(bf) + (uint64_t)bf->handshake_timeout_ms;
	for (;;) {
		int s = bf_backend_state(bf), w, left = -1;

		if (s == -PVIO_BLKFRONT_ENOENT)
			s = XB_GONE;
		if (s < 0)
			return s; /* garbage in the state key: -EPROTO */
		if (mask & (1u << s)) {
			*state = s;
			return 0;
		}
		if (timed) {
			uint64_t now = bf_now(bf);

			if (now >= deadline)
				return -PVIO_BLKFRONT_ETIMEDOUT;
			left = (int)(deadline - now);
		}
		/* The watch on the backend state wakes us; event-channel
		 * wake-ups are irrelevant here (no ring is live). */
		w = bf->ops.wait(bf->ops.ctx, left);
		if (w < 0)
			return w;
	}
}

static int grant_ring(struct pvio_blkfront *bf, struct bf_queue *q)
{
	unsigned pages = 1u << bf->ring_order, i;
	uint64_t gfn;
	int err;

	err = bf->ops.page_alloc(bf->ops.ctx, pages, &q->ring_va, &gfn);
	if (err)
		return err;
	q->ring_live = true;
	q->ring_nrefs = 0;
	/* SHARED_RING_INIT before the pages are granted: the backend must
	 * never see an uninitialised header. */
	pvio_ring_sring_init(q->ring_va);
	err = pvio_ring_blkif_front_init(&q->fr, q->ring_va, PVIO_RING_BYTES(bf->ring_order));
	if (err <= 0)
		return -PVIO_BLKFRONT_EINVAL;
	for (i = 0; i < pages; i++) {
		err = bf->ops.grant(bf->ops.ctx, bf->backend_id, gfn + i, false, &q->ring_ref[i]);
		if (err)
			return err;
		q->ring_nrefs++;
	}
	err = bf->ops.evtchn_alloc(bf->ops.ctx, bf->backend_id, &q->port);
	if (err)
		return err;
	q->port_live = true;
	return 0;
}

static int grant_rings(struct pvio_blkfront *bf)
{
	for (unsigned i = 0; i < bf->nq; i++) {
		int err = grant_ring(bf, &bf->q[i]);
		if (err)
			return err;
	}
	return 0;
}

void bf_ring_teardown(struct pvio_blkfront *bf)
{
	for (unsigned k = 0; k < PVIO_BLKFRONT_MAX_QUEUES; k++) {
		struct bf_queue *q = &bf->q[k];
		bool leak = false;
		unsigned i;

		if (q->port_live) {
			bf->ops.evtchn_close(bf->ops.ctx, q->port);
			q->port_live = false;
		}
		for (i = 0; i < q->ring_nrefs; i++) {
			/* A backend that still maps the ring keeps its pages: we
			 * must not reuse them (XSA-396), so they are leaked, not
			 * freed. */
			if (bf->ops.end_grant(bf->ops.ctx, q->ring_ref[i]) != 0)
				leak = true;
		}
		q->ring_nrefs = 0;
		if (q->ring_live) {
			if (leak)
				bf->st.leaked_pages += 1u << bf->ring_order;
			else
				bf->ops.page_free(bf->ops.ctx, q->ring_va, 1u << bf->ring_order);
			q->ring_live = false;
			q->ring_va = (void *)0;
		}
	}
}

/* Keys of one ring, under @dir ("" for the flat single-queue layout). */
static int ring_keys(struct pvio_blkfront *bf, const struct bf_queue *q, const char *dir,
		     char (*paths)[BF_PATH], char (*vals)[24], unsigned *n)
{
	char key[40];
	unsigned i, dl = (unsigned)bf_strlen(dir);
	int err = 0;

	for (i = 0; i < q->ring_nrefs; i++) {
		bf_memcpy(key, dir, dl);
		bf_memcpy(key + dl, "ring-ref", 9);
		if (bf->ring_order != 0)
			bf_fmt_u64(key + dl + 8, sizeof(key) - dl - 8, i);
		err |= bf_path(paths[*n], BF_PATH, bf->fdir, key);
		bf_fmt_u64(vals[(*n)++], 24, q->ring_ref[i]);
	}
	bf_memcpy(key, dir, dl);
	bf_memcpy(key + dl, "event-channel", 14);
	err |= bf_path(paths[*n], BF_PATH, bf->fdir, key);
	bf_fmt_u64(vals[(*n)++], 24, q->port);
	return err;
}

#define BF_PUB_MAX (6 + PVIO_BLKFRONT_MAX_QUEUES * ((1u << PVIO_RING_MAX_ORDER) + 1))

/* Publish the ring(s) in one transaction and go Initialised. */
static int publish(struct pvio_blkfront *bf)
{
	/* keys: ring-page-order, [multi-queue-num-queues], per ring
	 * ring-ref(s) and event-channel, protocol, feature-persistent,
	 * state.  Up to 278 keys: in allocated memory, not on the stack a
	 * guest kernel may keep small. */
	char (*paths)[BF_PATH] = bf->ops.zalloc(bf->ops.ctx, sizeof(*paths) * BF_PUB_MAX);
	char (*vals)[24] = bf->ops.zalloc(bf->ops.ctx, sizeof(*vals) * BF_PUB_MAX);
	const char **pp = bf->ops.zalloc(bf->ops.ctx, sizeof(*pp) * BF_PUB_MAX);
	const char **vp = bf->ops.zalloc(bf->ops.ctx, sizeof(*vp) * BF_PUB_MAX);
	unsigned n = 0, i;
	int err = 0;

	if (!paths || !vals || !pp || !vp) {
		err = -PVIO_BLKFRONT_ENOMEM;
		goto out;
	}
	/* A single ring after an earlier multi-queue connection: its
	 * queue-N keys would make the layout ambiguous, drop them. */
	if (bf->nq == 1 && bf->max_queues_offered && bf->ops.xs_rm) {
		for (i = 0; i < PVIO_BLKFRONT_MAX_QUEUES; i++) {
			char key[16] = "queue-";
			bf_fmt_u64(key + 6, sizeof(key) - 6, i);
			if (bf_path(paths[0], BF_PATH, bf->fdir, key) == 0)
				bf->ops.xs_rm(bf->ops.ctx, paths[0]);
		}
	}
	/* Always written, also as 0: a ring-page-order left over from an
	 * earlier multi-page connection must not outlive it. */
	err |= bf_path(paths[n], BF_PATH, bf->fdir, "ring-page-order");
	bf_fmt_u64(vals[n++], 24, bf->ring_order);
	if (bf->nq == 1) {
		err |= ring_keys(bf, &bf->q[0], "", paths, vals, &n);
	}
	if (bf->max_queues_offered) {
		/* written whenever the backend knows the key, also as 1, so a
		 * count left from an earlier connection never outlives it */
		err |= bf_path(paths[n], BF_PATH, bf->fdir, "multi-queue-num-queues");
		bf_fmt_u64(vals[n++], 24, bf->nq);
	}
	if (bf->nq > 1) {
		for (i = 0; i < bf->nq; i++) {
			char dir[24] = "queue-";
			unsigned l;
			bf_fmt_u64(dir + 6, sizeof(dir) - 8, i);
			l = (unsigned)bf_strlen(dir);
			dir[l] = '/';
			dir[l + 1] = 0;
			err |= ring_keys(bf, &bf->q[i], dir, paths, vals, &n);
		}
	}
	err |= bf_path(paths[n], BF_PATH, bf->fdir, "protocol");
	bf_memcpy(vals[n++], "x86_64-abi", 11);
	/* Our bounce pages are granted once, read-write, for the life of the
	 * device: exactly what a persistent-grant backend can keep mapped. */
	err |= bf_path(paths[n], BF_PATH, bf->fdir, "feature-persistent");
	bf_memcpy(vals[n++], bf->no_persistent ? "0" : "1", 2);
	err |= bf_path(paths[n], BF_PATH, bf->fdir, "state");
	bf_fmt_u64(vals[n++], 24, XB_INITIALISED);
	if (err) {
		err = -PVIO_BLKFRONT_ENOSPC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		pp[i] = paths[i];
		vp[i] = vals[i];
	}
	err = bf->ops.xs_write_many(bf->ops.ctx, n, pp, vp);
out:
	if (paths)
		bf->ops.free(bf->ops.ctx, paths);
	if (vals)
		bf->ops.free(bf->ops.ctx, vals);
	if (pp)
		bf->ops.free(bf->ops.ctx, (void *)pp);
	if (vp)
		bf->ops.free(bf->ops.ctx, (void *)vp);
	return err;
}

/* Features the backend publishes before InitWait. */
static int read_features(struct pvio_blkfront *bf)
{
	uint64_t order;
	int err;

	err = bf_read_u64(bf, bf->bdir, "max-ring-page-order", 64, &order);
	if (err == -PVIO_BLKFRONT_ENOENT)
		order = 0;
	else if (err)
		return err;
	/* min(backend, ours): the value is range-checked before any shift */
	bf->ring_order = order < bf->own_max_order ? (unsigned)order : bf->own_max_order;
	/* Queues: min(backend, ours), as Linux blkfront; absent or 0 means
	 * one (an old backend), garbage is a broken backend. */
	uint64_t mq = 0;
	err = bf_read_u64(bf, bf->bdir, "multi-queue-max-queues", 0xffffffffu, &mq);
	if (err && err != -PVIO_BLKFRONT_ENOENT)
		return err;
	bf->max_queues_offered = err ? 0 : (unsigned)mq;
	bf->nq = mq < 1 ? 1 : mq < bf->own_max_queues ? (unsigned)mq : bf->own_max_queues;
	err = bf_read_bool(bf, bf->bdir, "feature-flush-cache", &bf->info.flush);
	if (!err)
		err = bf_read_bool(bf, bf->bdir, "feature-barrier", &bf->info.barrier);
	if (!err)
		err = bf_read_bool(bf, bf->bdir, "feature-persistent", &bf->info.persistent);
	if (!err)
		err = bf_read_bool(bf, bf->bdir, "feature-discard", &bf->info.discard);
	if (!err && bf->info.discard) {
		uint64_t g;
		int e = bf_read_u64(bf, bf->bdir, "discard-granularity", 1u << 30, &g);
		if (e && e != -PVIO_BLKFRONT_ENOENT)
			return e;
		bf->info.discard_granularity = e ? 0 : (uint32_t)g;
	}
	if (!err && bf->no_persistent)
		bf->info.persistent = false;
	if (!err) {
		/* Indirect descriptors: min(backend, ours), as Linux blkfront;
		 * not worth an indirect page at 11 segments or fewer.  Garbage
		 * (or a value beyond 32 bits) is a broken backend; a large but
		 * well-formed offer is simply more than we take. */
		uint64_t mi = 0;
		int e = bf_read_u64(bf, bf->bdir, "feature-max-indirect-segments", 0xffffffffu, &mi);
		if (e && e != -PVIO_BLKFRONT_ENOENT)
			return e;
		if (mi > bf->own_max_indirect)
			mi = bf->own_max_indirect;
		bf->info.max_indirect_segments = mi > BF_SEGS ? (unsigned)mi : 0;
		bf->seg_limit = mi > BF_SEGS ? (unsigned)mi : BF_SEGS;
	}
	return err;
}

/* Geometry the backend publishes before Connected. */
static int read_geometry(struct pvio_blkfront *bf)
{
	uint64_t sectors, info = 0, ss = 512, pss;
	int err;

	/* sectors: 512-byte units, > 0, and small enough that byte offsets
	 * never overflow 64 bits */
	err = bf_read_u64(bf, bf->bdir, "sectors", (1ull << 54) - 1, &sectors);
	if (err)
		return err == -PVIO_BLKFRONT_ENOENT ? -PVIO_BLKFRONT_EPROTO : err;
	if (sectors == 0)
		return -PVIO_BLKFRONT_EPROTO;
	err = bf_read_u64(bf, bf->bdir, "info", 0xffffffffu, &info);
	if (err && err != -PVIO_BLKFRONT_ENOENT)
		return err;
	/* Logical block: a power of two from 512 up to what a direct request
	 * carries whole (32 KiB); physical: a power of two, at least that.
	 * Anything else, or a logical size that changes across a reconnect
	 * (requests in flight were cut for the old one), is a broken backend. */
	err = bf_read_u64(bf, bf->bdir, "sector-size", 1u << 20, &ss);
	if (err == -PVIO_BLKFRONT_ENOENT)
		ss = 512;
	else if (err)
		return err;
	if (ss < 512 || ss > BF_MAX_SECTOR_SIZE || (ss & (ss - 1)) != 0)
		return -PVIO_BLKFRONT_EPROTO;
	if (bf->geometry_known && ss != bf->info.sector_size)
		return -PVIO_BLKFRONT_EPROTO;
	err = bf_read_u64(bf, bf->bdir, "physical-sector-size", 1u << 20, &pss);
	if (err == -PVIO_BLKFRONT_ENOENT)
		pss = ss;
	else if (err)
		return err;
	if (pss < ss || (pss & (pss - 1)) != 0)
		return -PVIO_BLKFRONT_EPROTO;
	/* a disk of 4 KiB blocks is a whole number of blocks */
	if ((sectors * 512) % ss != 0)
		return -PVIO_BLKFRONT_EPROTO;
	bf->info.sectors = sectors;
	bf->info.info = (uint32_t)info;
	bf->info.readonly = (info & PVIO_VDISK_READONLY) != 0;
	bf->info.sector_size = (uint32_t)ss;
	bf->info.physical_sector_size = (uint32_t)pss;
	bf->geometry_known = true;
	return 0;
}

int bf_connect(struct pvio_blkfront *bf, bool initial)
{
	int err, s;

	/* At open, a backend still Closing/Closed from an earlier frontend
	 * comes back to InitWait once it sees us Initialising: wait for it.
	 * On a reconnect, Closing/Closed means the device is going away. */
	err = bf_wait_backend(bf, 1u << XB_INITWAIT | 1u << XB_GONE |
					  (initial ? 0 : 1u << XB_CLOSING | 1u << XB_CLOSED),
			      &s);
	if (err)
		return err;
	if (s != XB_INITWAIT)
		return -PVIO_BLKFRONT_ENODEV;
	err = read_features(bf);
	if (!err)
		err = bf_pool_prepare(bf);
	if (err)
		return err;
	err = grant_rings(bf);
	if (err)
		return err;
	err = publish(bf);
	if (err)
		return err;
	err = bf_wait_backend(bf, 1u << XB_CONNECTED | 1u << XB_CLOSING | 1u << XB_CLOSED |
					  1u << XB_GONE,
			      &s);
	if (err)
		return err;
	if (s != XB_CONNECTED)
		return -PVIO_BLKFRONT_ENODEV;
	err = read_geometry(bf);
	if (err)
		return err;
	if (bf->info.flush) {
		bf->flush_ok = true;
		bf->flush_op = PVIO_BLKIF_OP_FLUSH_DISKCACHE;
	} else if (bf->info.barrier) {
		bf->flush_ok = true;
		bf->flush_op = PVIO_BLKIF_OP_WRITE_BARRIER;
	} else {
		bf->flush_ok = false;
	}
	bf->info.ring_order = bf->ring_order;
	bf->info.ring_slots = bf->q[0].fr.nr_ents;
	bf->info.nr_queues = bf->nq;
	bf->info.max_queues_offered = bf->max_queues_offered;
	err = bf_write_state(bf, XB_CONNECTED);
	if (err)
		return err;
	bf->phase = BF_CONNECTED;
	return 0;
}

static void close_handshake_dead(struct pvio_blkfront *bf)
{
	/* Tell the backend we are done with it; resources are released at
	 * pvio_blkfront_close(), once the backend has let go of them. */
	bf_write_state(bf, XB_CLOSING);
}

int bf_handle_backend_change(struct pvio_blkfront *bf)
{
	int s, err;

	if (bf->phase == BF_DEAD)
		return 0;
	s = bf_backend_state(bf);
	if (s == -PVIO_BLKFRONT_ENOENT)
		s = XB_GONE;
	if (s < 0) {
		bf_disconnect(bf);
		close_handshake_dead(bf);
		return 0;
	}
	switch (s) {
	case XB_CONNECTED: {
		/* Connected again: a resize.  Re-read the size; a garbage
		 * value is a broken backend. */
		uint64_t sectors;

		err = bf_read_u64(bf, bf->bdir, "sectors", (1ull << 54) - 1, &sectors);
		if (err || sectors == 0 || (sectors * 512) % bf->info.sector_size) {
			bf_disconnect(bf);
			close_handshake_dead(bf);
		} else {
			bf->info.sectors = sectors;
		}
		return 0;
	}
	case XB_INITIALISING:
	case XB_INITWAIT:
		/* The backend restarted (tapdisk died and a new one took
		 * over): a new ring, a new handshake, and everything that was
		 * in flight goes again, in order. */
		bf->phase = BF_RECONNECTING;
		bf_ring_teardown(bf);
		bf_requeue_inflight(bf);
		err = bf_connect(bf, false);
		if (err) {
			bf_ring_teardown(bf);
			bf_disconnect(bf);
			close_handshake_dead(bf);
			return 0;
		}
		bf->st.reconnects++;
		bf_kick(bf);
		return 0;
	case XB_INITIALISED:
	case XB_UNKNOWN:
		return 0; /* not a state a backend should be in; wait and see */
	default:
		/* Closing, Closed or gone: finish with -EIO, go Closing; the
		 * grants are ended in pvio_blkfront_close(). */
		bf_disconnect(bf);
		close_handshake_dead(bf);
		return 0;
	}
}
