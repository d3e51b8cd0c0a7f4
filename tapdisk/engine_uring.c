/* SPDX-License-Identifier: MIT */
/*
 * io_uring engine: operations queue as SQEs and go to the kernel in one
 * io_uring_submit() per batch (the blkback core kicks once per ring pass);
 * completions wake the loop through a registered eventfd and are reaped
 * without a system call.  The image's descriptor is a registered file
 * (IORING_REGISTER_FILES; td_engine_uring_nofixed goes without), so the
 * kernel does not look it up and take a reference per operation.
 * Registered buffers are not used: guest pages are mapped per request or
 * held by a bounded, evicting persistent-grant cache, so no set of
 * buffers lives long enough to register.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <liburing.h>

#include "tapdisk.h"

/* Descriptors one engine registers at most (the image's). */
#define TD_URING_FIXED_MAX 8

struct op {
	void *tag;
	size_t len;
	struct op *next;
};

struct td_engine {
	struct io_uring ring;
	struct ev_loop *loop;
	ev_io io;
	int efd;
	unsigned depth, queued;
	td_io_done_fn *done;
	struct op *ops, *free_ops;
	int fixed[TD_URING_FIXED_MAX]; /* fds registered, index = their slot */
	unsigned nfixed;
};

static void reap(struct td_engine *e)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
		struct op *o = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&e->ring, cqe);
		if (!o)
			continue;
		if (res >= 0)
			res = (size_t)res == o->len ? 0 : -EIO; /* short transfer */
		void *tag = o->tag;
		o->next = e->free_ops;
		e->free_ops = o;
		/* may queue more (flush after a write) */
		e->done(tag, res);
	}
	if (e->queued)
		io_uring_submit(&e->ring);
	e->queued = 0;
}

static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_engine *e = w->data;
	uint64_t v;

	(void)loop;
	(void)revents;
	if (read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		td_log(TD_ERR, "io_uring eventfd read: %s", strerror(errno));
	reap(e);
}

static int u_open(struct ev_loop *loop, unsigned depth, td_io_done_fn *done,
		  struct td_engine **out)
{
	struct td_engine *e = calloc(1, sizeof(*e));
	int err;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->ops = calloc(depth, sizeof(*e->ops));
	if (!e->ops) {
		free(e);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < depth; i++) {
		e->ops[i].next = e->free_ops;
		e->free_ops = &e->ops[i];
	}
	e->depth = depth;
	e->done = done;
	e->loop = loop;
	err = io_uring_queue_init(depth, &e->ring, 0);
	if (err) {
		free(e->ops);
		free(e);
		return err;
	}
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0 || (err = io_uring_register_eventfd(&e->ring, e->efd)) != 0) {
		err = e->efd < 0 ? -errno : err;
		if (e->efd >= 0)
			close(e->efd);
		io_uring_queue_exit(&e->ring);
		free(e->ops);
		free(e);
		return err;
	}
	ev_io_init(&e->io, efd_cb, e->efd, EV_READ);
	e->io.data = e;
	ev_io_start(loop, &e->io);
	*out = e;
	return 0;
}

static int u_queue(struct td_engine *e, enum pvio_blkback_op op, int fd, uint64_t off,
		   const struct iovec *iov, int iovcnt, size_t len, void *tag)
{
	struct io_uring_sqe *sqe;
	struct op *o = e->free_ops;

	if (!o)
		return -EBUSY;
	sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		/* SQ full of unsubmitted entries: hand them over first. */
		io_uring_submit(&e->ring);
		e->queued = 0;
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe)
			return -EBUSY;
	}
	e->free_ops = o->next;
	o->tag = tag;
	/* a registered file: its slot instead of the descriptor */
	unsigned slot = e->nfixed;
	for (unsigned i = 0; i < e->nfixed; i++)
		if (e->fixed[i] == fd) {
			slot = i;
			break;
		}
	if (slot < e->nfixed)
		fd = (int)slot;
	o->len = len;
	switch (op) {
	case PVIO_BLKBACK_READ:
		io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off);
		break;
	case PVIO_BLKBACK_WRITE:
		io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off);
		break;
	case PVIO_BLKBACK_DISCARD:
		/* fallocate's result is 0, not a byte count */
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					off, len);
		o->len = 0;
		break;
	default:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		o->len = 0;
		break;
	}
	if (slot < e->nfixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, o);
	e->queued++;
	return 0;
}

static void u_submit(struct td_engine *e)
{
	if (!e->queued)
		return;
	int n = io_uring_submit(&e->ring);
	if (n < 0)
		td_log(TD_ERR, "io_uring_submit: %s", strerror(-n));
	e->queued = 0;
}

static int u_files(struct td_engine *e, const int *fds, unsigned n)
{
	int err;

	if (e->nfixed || n == 0 || n > TD_URING_FIXED_MAX)
		return -EINVAL;
	err = io_uring_register_files(&e->ring, fds, n);
	if (err) {
		td_log(TD_WARN, "io_uring: cannot register the image as a fixed file (%s): "
		       "going without", strerror(-err));
		return err;
	}
	memcpy(e->fixed, fds, n * sizeof(*fds));
	e->nfixed = n;
	td_log(TD_INFO, "io_uring: %u fixed file(s) registered", n);
	return 0;
}

static void u_close(struct td_engine *e)
{
	if (!e)
		return;
	if (e->nfixed)
		io_uring_unregister_files(&e->ring);
	ev_io_stop(e->loop, &e->io);
	io_uring_unregister_eventfd(&e->ring);
	close(e->efd);
	io_uring_queue_exit(&e->ring);
	free(e->ops);
	free(e);
}

const struct td_engine_ops td_engine_uring = {
	.name = "io_uring",
	.open = u_open,
	.queue = u_queue,
	.submit = u_submit,
	.close = u_close,
	.files = u_files,
};

const struct td_engine_ops td_engine_uring_nofixed = {
	.name = "io_uring:nofixed",
	.open = u_open,
	.queue = u_queue,
	.submit = u_submit,
	.close = u_close,
};
