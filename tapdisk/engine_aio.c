/* SPDX-License-Identifier: MIT */
/*
 * libaio engine (Linux native AIO): iocbs are preallocated, queued into a
 * batch and handed over with one io_submit(); completions are signalled
 * through an eventfd (io_set_eventfd) and reaped with a zero-timeout
 * io_getevents().  Flush is IOCB_CMD_FDSYNC; a kernel or filesystem that
 * refuses it (EINVAL) gets a synchronous fdatasync instead, logged once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <libaio.h>

#include "tapdisk.h"

struct op {
	struct iocb cb;
	void *tag;
	size_t len;
	struct op *next;
};

struct td_engine {
	io_context_t ctx;
	struct ev_loop *loop;
	ev_io io;
	int efd;
	unsigned depth, nq;
	int sync_flush; /* the kernel refused IOCB_CMD_FDSYNC */
	td_io_done_fn *done;
	struct op *ops, *free_ops;
	struct iocb **q;
	struct io_event *evs;
};

static void put_op(struct td_engine *e, struct op *o)
{
	o->next = e->free_ops;
	e->free_ops = o;
}

static void finish(struct td_engine *e, struct op *o, long res)
{
	void *tag = o->tag;
	int r;

	if (res >= 0)
		r = (size_t)res == o->len ? 0 : -EIO; /* short transfer */
	else
		r = (int)res;
	put_op(e, o);
	e->done(tag, r);
}

static void a_submit(struct td_engine *e)
{
	unsigned done = 0;

	while (done < e->nq) {
		int n = io_submit(e->ctx, (long)(e->nq - done), e->q + done);
		if (n > 0) {
			done += (unsigned)n;
			continue;
		}
		struct op *o = (struct op *)e->q[done];
		if (n == -EINVAL && o->cb.aio_lio_opcode == IO_CMD_FDSYNC) {
			if (!e->sync_flush)
				td_log(TD_WARN, "libaio: the kernel refuses IOCB_CMD_FDSYNC here: flushing with fdatasync()");
			e->sync_flush = 1;
			done++;
			finish(e, o, fdatasync(o->cb.aio_fildes) ? -errno : 0);
			continue;
		}
		/* Cannot be submitted: fail this one, try the rest. */
		td_log(TD_ERR, "io_submit: %s", strerror(n < 0 ? -n : EIO));
		done++;
		finish(e, o, n < 0 ? n : -EIO);
	}
	e->nq = 0;
}

static void reap(struct td_engine *e)
{
	struct timespec zero = { 0, 0 };
	int n;

	while ((n = io_getevents(e->ctx, 0, (long)e->depth, e->evs, &zero)) > 0) {
		for (int i = 0; i < n; i++) {
			struct op *o = (struct op *)e->evs[i].obj;
			long res = (long)e->evs[i].res;
			finish(e, o, res);
		}
	}
	if (n < 0 && n != -EINTR)
		td_log(TD_ERR, "io_getevents: %s", strerror(-n));
	a_submit(e); /* operations queued by the completions (flush after write) */
}

static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_engine *e = w->data;
	uint64_t v;

	(void)loop;
	(void)revents;
	if (read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		td_log(TD_ERR, "libaio eventfd read: %s", strerror(errno));
	reap(e);
}

static void a_close(struct td_engine *e)
{
	if (!e)
		return;
	if (e->loop)
		ev_io_stop(e->loop, &e->io);
	if (e->efd >= 0)
		close(e->efd);
	if (e->ctx)
		io_destroy(e->ctx);
	free(e->ops);
	free(e->q);
	free(e->evs);
	free(e);
}

static int a_open(struct ev_loop *loop, unsigned depth, td_io_done_fn *done,
		  struct td_engine **out)
{
	struct td_engine *e = calloc(1, sizeof(*e));
	int err;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->efd = -1;
	e->depth = depth;
	e->done = done;
	e->ops = calloc(depth, sizeof(*e->ops));
	e->q = calloc(depth, sizeof(*e->q));
	e->evs = calloc(depth, sizeof(*e->evs));
	if (!e->ops || !e->q || !e->evs) {
		a_close(e);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < depth; i++)
		put_op(e, &e->ops[i]);
	err = io_setup((int)depth, &e->ctx);
	if (err) {
		e->ctx = 0;
		a_close(e);
		return err;
	}
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		err = -errno;
		a_close(e);
		return err;
	}
	e->loop = loop;
	ev_io_init(&e->io, efd_cb, e->efd, EV_READ);
	e->io.data = e;
	ev_io_start(loop, &e->io);
	*out = e;
	return 0;
}

static int a_queue(struct td_engine *e, enum pvio_blkback_op op, int fd, uint64_t off,
		   const struct iovec *iov, int iovcnt, size_t len, void *tag)
{
	struct op *o = e->free_ops;

	if (!o || e->nq >= e->depth)
		return -EBUSY;
	e->free_ops = o->next;
	o->tag = tag;
	o->len = len;
	switch (op) {
	case PVIO_BLKBACK_READ:
		io_prep_preadv(&o->cb, fd, iov, iovcnt, (long long)off);
		break;
	case PVIO_BLKBACK_WRITE:
		io_prep_pwritev(&o->cb, fd, iov, iovcnt, (long long)off);
		break;
	case PVIO_BLKBACK_DISCARD:
		/* Linux AIO has no fallocate: punch the hole right here
		 * (metadata only, quick); finish() calls back into blkback. */
		o->len = 0;
		finish(e, o, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				       (off_t)len) ? -errno : 0);
		return 0;
	default:
		o->len = 0;
		if (e->sync_flush) {
			/* finish() calls back into blkback: fine, nothing of ours is held */
			finish(e, o, fdatasync(fd) ? -errno : 0);
			return 0;
		}
		io_prep_fdsync(&o->cb, fd);
		break;
	}
	io_set_eventfd(&o->cb, e->efd);
	e->q[e->nq++] = &o->cb;
	return 0;
}

const struct td_engine_ops td_engine_aio = {
	.name = "libaio",
	.open = a_open,
	.queue = a_queue,
	.submit = a_submit,
	.close = a_close,
};
