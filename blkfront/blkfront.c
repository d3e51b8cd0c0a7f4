/* SPDX-License-Identifier: MIT */
/* blkfront: open/close, the public submit/poll entry points, sync I/O. */
#include "private.h"

static bool ops_complete(const struct pvio_blkfront_ops *o)
{
	return o && o->zalloc && o->free && o->page_alloc && o->page_free && o->grant &&
	       o->end_grant && o->evtchn_alloc && o->evtchn_notify && o->evtchn_close &&
	       o->xs_read && o->xs_write_many && o->xs_watch && o->xs_unwatch && o->wait;
}

/* A backend path from the frontend's own directory: still checked, the
 * toolstack is trusted but the key is in a guest-writable directory. */
static bool path_ok(const char *p)
{
	size_t n = bf_strlen(p), i;

	if (n < 2 || p[0] != '/' || n > BF_PATH - 32)
		return false;
	for (i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/*
 * The close handshake, then release everything.  Closing, wait for the
 * backend to close (it unmaps first), Closed, then end the grants.
 */
static int shutdown_dev(struct pvio_blkfront *bf, bool handshake)
{
	int ret = 0, s = XB_GONE, err;

	if (handshake) {
		bf_write_state(bf, XB_CLOSING);
		err = bf_wait_backend(bf, 1u << XB_CLOSING | 1u << XB_CLOSED | 1u << XB_GONE, &s);
		if (!err && s == XB_CLOSING) {
			bf_write_state(bf, XB_CLOSED);
			err = bf_wait_backend(bf, 1u << XB_CLOSED | 1u << XB_GONE, &s);
		}
		if (err)
			ret = err;
		bf_write_state(bf, XB_CLOSED);
	}
	bf->ops.xs_unwatch(bf->ops.ctx, bf->bstate_path);
	bf_ring_teardown(bf);
	bf_slots_fini(bf);
	if (!ret && bf->st.leaked_pages)
		ret = -PVIO_BLKFRONT_EBUSY;
	bf->ops.free(bf->ops.ctx, bf);
	return ret;
}

int pvio_blkfront_open(const struct pvio_blkfront_ops *ops,
		       const struct pvio_blkfront_config *cfg,
		       struct pvio_blkfront **out)
{
	struct pvio_blkfront *bf;
	char val[BF_PATH];
	uint64_t v;
	size_t n;
	int err;

	if (!ops_complete(ops) || !cfg || !cfg->frontend_dir || !out)
		return -PVIO_BLKFRONT_EINVAL;
	n = bf_strlen(cfg->frontend_dir);
	if (n == 0 || n > BF_PATH - 32 || cfg->max_ring_order > PVIO_RING_MAX_ORDER ||
	    cfg->max_slots > BF_MAX_SLOTS || cfg->max_indirect_segments > BF_MAX_INDIRECT_SEGS ||
	    cfg->max_queues > PVIO_BLKFRONT_MAX_QUEUES || cfg->poll_us > 1000000)
		return -PVIO_BLKFRONT_EINVAL;
	bf = ops->zalloc(ops->ctx, sizeof(*bf));
	if (!bf)
		return -PVIO_BLKFRONT_ENOMEM;
	bf_memcpy(&bf->ops, ops, sizeof(*ops)); /* no aggregate copy: clang would call memcpy, which a freestanding core has not */
	bf_memcpy(bf->fdir, cfg->frontend_dir, n + 1);
	bf->own_max_order = cfg->ring_order_zero ? 0 : cfg->max_ring_order ? cfg->max_ring_order : 4;
	bf->no_persistent = cfg->no_persistent;
	bf->own_max_indirect = cfg->max_indirect_segments;
	bf->seg_limit = BF_SEGS;
	bf->own_max_queues = cfg->max_queues ? cfg->max_queues : 1;
	bf->poll_us = ops->now_us ? cfg->poll_us : 0;
	bf->nq = 1;
	bf->nslots = cfg->max_slots ? cfg->max_slots : 32;
	bf->handshake_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 30000;
	bf->phase = BF_RECONNECTING;

	/* Where the backend is: written by the toolstack, checked anyway. */
	err = bf_path(val, sizeof(val), bf->fdir, "backend");
	if (!err)
		err = bf->ops.xs_read(bf->ops.ctx, val, bf->bdir, sizeof(bf->bdir));
	if (err) {
		bf->ops.free(bf->ops.ctx, bf);
		return err == -PVIO_BLKFRONT_ENOSPC ? -PVIO_BLKFRONT_EPROTO : err;
	}
	if (!path_ok(bf->bdir)) {
		bf->ops.free(bf->ops.ctx, bf);
		return -PVIO_BLKFRONT_EPROTO;
	}
	err = bf_read_u64(bf, bf->fdir, "backend-id", 0x7fef, &v);
	if (err) {
		bf->ops.free(bf->ops.ctx, bf);
		return err == -PVIO_BLKFRONT_ENOENT ? -PVIO_BLKFRONT_EPROTO : err;
	}
	bf->backend_id = (uint16_t)v;
	if (bf_read_u64(bf, bf->fdir, "virtual-device", 0xffffffffu, &v) == 0)
		bf->devid = (uint32_t)v;
	bf->info.backend_id = bf->backend_id;
	bf->info.devid = bf->devid;
	bf->info.max_inflight = bf->nslots;

	bf_path(bf->bstate_path, sizeof(bf->bstate_path), bf->bdir, "state");
	err = bf->ops.xs_watch(bf->ops.ctx, bf->bstate_path);
	if (err) {
		bf->ops.free(bf->ops.ctx, bf);
		return err;
	}
	err = bf_slots_init(bf);
	if (err) {
		shutdown_dev(bf, false);
		return err;
	}
	/* Initialising: also brings a backend left Closed by an earlier
	 * frontend back to InitWait. */
	err = bf_write_state(bf, XB_INITIALISING);
	if (!err)
		err = bf_connect(bf, true);
	if (err) {
		/* The backend may have mapped our ring, or be waiting for
		 * us: close properly so it lets go before the grants end. */
		bf->phase = BF_DEAD;
		shutdown_dev(bf, true);
		return err;
	}
	*out = bf;
	return 0;
}

int pvio_blkfront_close(struct pvio_blkfront *bf)
{
	uint64_t deadline;

	if (!bf)
		return 0;
	deadline = bf_now(bf) + (uint64_t)bf->handshake_timeout_ms;
	/* Let what is in flight finish; a backend that stops answering
	 * gets the device disconnected instead. */
	while (bf->inflight_ios && bf->phase != BF_DEAD) {
		if (pvio_blkfront_poll(bf, 1000) < 0 ||
		    (bf->ops.now_ms && bf_now(bf) >= deadline))
			bf_disconnect(bf);
	}
	bf_disconnect(bf);
	bf_run_callbacks(bf);
	return shutdown_dev(bf, true);
}

void pvio_blkfront_get_info(const struct pvio_blkfront *bf, struct pvio_blkfront_info *info)
{
	*info = bf->info;
}

void pvio_blkfront_get_stats(const struct pvio_blkfront *bf, struct pvio_blkfront_stats *st)
{
	*st = bf->st;
}

int pvio_blkfront_get_queue_stats(const struct pvio_blkfront *bf, unsigned queue,
				  struct pvio_blkfront_queue_stats *st)
{
	if (!bf || !st || queue >= PVIO_BLKFRONT_MAX_QUEUES)
		return -PVIO_BLKFRONT_EINVAL;
	*st = bf->qst[queue];
	return 0;
}

bool pvio_blkfront_is_dead(const struct pvio_blkfront *bf)
{
	return bf->phase == BF_DEAD;
}

unsigned pvio_blkfront_inflight(const struct pvio_blkfront *bf)
{
	return bf->inflight_ios;
}

int pvio_blkfront_submit(struct pvio_blkfront *bf, struct pvio_blkfront_io *io)
{
	int err;

	if (!bf)
		return -PVIO_BLKFRONT_EINVAL;
	/* spread over the queues, one user I/O each */
	err = pvio_blkfront_submit_on(bf, io, bf->next_q);
	if (err == 0 && ++bf->next_q >= bf->nq)
		bf->next_q = 0;
	return err;
}

int pvio_blkfront_submit_on(struct pvio_blkfront *bf, struct pvio_blkfront_io *io,
			    unsigned queue)
{
	uint64_t ss_sectors;

	if (!bf || !io)
		return -PVIO_BLKFRONT_EINVAL;
	if (bf->phase == BF_DEAD)
		return -PVIO_BLKFRONT_EIO;
	ss_sectors = bf->info.sector_size / 512;
	switch (io->op) {
	case PVIO_BLKFRONT_WRITE:
		if (bf->info.readonly)
			return -PVIO_BLKFRONT_EROFS;
		/* fall through */
	case PVIO_BLKFRONT_READ:
		if (!io->buf || io->len == 0 || io->len % bf->info.sector_size ||
		    io->sector % ss_sectors)
			return -PVIO_BLKFRONT_EINVAL;
		if (io->sector > bf->info.sectors || io->len / 512 > bf->info.sectors - io->sector)
			return -PVIO_BLKFRONT_ERANGE;
		break;
	case PVIO_BLKFRONT_FLUSH:
		break;
	case PVIO_BLKFRONT_DISCARD:
		if (bf->info.readonly)
			return -PVIO_BLKFRONT_EROFS;
		if (!bf->info.discard)
			return -PVIO_BLKFRONT_EOPNOTSUPP;
		if (io->len == 0 || io->len % bf->info.sector_size || io->sector % ss_sectors)
			return -PVIO_BLKFRONT_EINVAL;
		if (io->sector > bf->info.sectors || io->len / 512 > bf->info.sectors - io->sector)
			return -PVIO_BLKFRONT_ERANGE;
		break;
	default:
		return -PVIO_BLKFRONT_EINVAL;
	}
	io->next_ = (void *)0;
	io->issued_ = 0;
	io->done_ = 0;
	io->chunks_ = 0;
	io->status_ = 0;
	io->inq_ = false;
	io->queue_ = queue;
	bf->inflight_ios++;
	bf->st.ios_submitted++;
	if (io->op == PVIO_BLKFRONT_FLUSH && !bf->flush_ok) {
		/* No volatile cache to flush (or the backend refused flushes
		 * before): done, reported from the next poll. */
		if (bf->done_tail)
			bf->done_tail->next_ = io;
		else
			bf->done_head = io;
		bf->done_tail = io;
		return 0;
	}
	if (io->op == PVIO_BLKFRONT_FLUSH)
		io->len = 0;
	io->inq_ = true;
	if (bf->q_tail)
		bf->q_tail->next_ = io;
	else
		bf->q_head = io;
	bf->q_tail = io;
	bf_kick(bf);
	return 0;
}

int pvio_blkfront_process(struct pvio_blkfront *bf, unsigned events)
{
	if (events & PVIO_BLKFRONT_EV_XS)
		bf_handle_backend_change(bf);
	uint64_t before[PVIO_BLKFRONT_MAX_QUEUES];
	unsigned nq = bf->nq;

	for (unsigned i = 0; i < nq; i++)
		before[i] = bf->qst[i].ring_responses;
	/* Always look at the ring: spurious calls are cheap, a missed
	 * response is a hang. */
	bf_consume(bf);
	/* which rings this event brought responses on (per-queue stats) */
	for (unsigned i = 0; (events & PVIO_BLKFRONT_EV_EVTCHN) && i < nq; i++)
		if (bf->qst[i].ring_responses != before[i])
			bf->qst[i].event_rounds++;
	bf_kick(bf);
	return bf_run_callbacks(bf);
}

/* Hybrid polling: watch the rings for up to poll_us.  While spinning,
 * bf_consume leaves rsp_event where it was, so the backend does not
 * notify; true if completions came (the port may still hold an older
 * event: harmless, the next wait returns at once and finds nothing). */
static bool spin(struct pvio_blkfront *bf)
{
	uint64_t end = bf->ops.now_us(bf->ops.ctx) + bf->poll_us;

	bf->st.polls++;
	bf->spinning = true;
	do {
		bf_consume(bf);
	} while (!bf->done_head && bf->phase == BF_CONNECTED && bf->ops.now_us(bf->ops.ctx) < end);
	bf->spinning = false;
	if (!bf->done_head)
		return false;
	bf->st.poll_hits++;
	return true;
}

int pvio_blkfront_poll(struct pvio_blkfront *bf, int timeout_ms)
{
	int w = 0;

	if (!bf->done_head && bf->poll_us && timeout_ms != 0 && bf->inflight_ios &&
	    bf->phase == BF_CONNECTED) {
		if (spin(bf))
			return bf_run_callbacks(bf);
		/* nothing in time: arm rsp_event (and look once more) before
		 * blocking, or the backend would not wake us */
		bf_consume(bf);
	}
	/* Completions already waiting: report them without blocking. */
	if (!bf->done_head) {
		w = bf->ops.wait(bf->ops.ctx, timeout_ms);
		if (w < 0)
			return w;
	}
	return pvio_blkfront_process(bf, (unsigned)w);
}

struct sync_wait {
	bool done;
	int status;
};

static void sync_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	struct sync_wait *w = arg;

	(void)io;
	w->status = status;
	w->done = true;
}

static int sync_io(struct pvio_blkfront *bf, enum pvio_blkfront_op op, uint64_t sector,
		   void *buf, size_t len)
{
	struct sync_wait w;
	struct pvio_blkfront_io io;
	int err;

	w.done = false;
	w.status = 0;
	io.op = op;
	io.sector = sector;
	io.buf = buf;
	io.len = len;
	io.cb = sync_cb;
	io.arg = &w;
	err = pvio_blkfront_submit(bf, &io);
	if (err)
		return err;
	while (!w.done) {
		if (pvio_blkfront_poll(bf, -1) < 0)
			bf_disconnect(bf); /* the platform failed: give up */
	}
	return w.status;
}

int pvio_blkfront_read(struct pvio_blkfront *bf, uint64_t sector, void *buf, size_t len)
{
	return sync_io(bf, PVIO_BLKFRONT_READ, sector, buf, len);
}

int pvio_blkfront_write(struct pvio_blkfront *bf, uint64_t sector, const void *buf, size_t len)
{
	/* The buffer is only read (copied into bounce pages). */
	return sync_io(bf, PVIO_BLKFRONT_WRITE, sector, (void *)(uintptr_t)buf, len);
}

int pvio_blkfront_flush(struct pvio_blkfront *bf)
{
	return sync_io(bf, PVIO_BLKFRONT_FLUSH, 0, (void *)0, 0);
}

int pvio_blkfront_discard(struct pvio_blkfront *bf, uint64_t sector, size_t len)
{
	return sync_io(bf, PVIO_BLKFRONT_DISCARD, sector, (void *)0, len);
}
