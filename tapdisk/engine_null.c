/* SPDX-License-Identifier: MIT */
/*
 * The null engine (`--engine null`): every operation completes at once with
 * success and moves no data — reads leave the guest's pages as they were.
 * It exists to measure the transport alone (ring, grants, event channels,
 * blkfront and blkback), which is what issue 5's "transport" figure is.
 * Never use it for a disk anyone cares about.
 */
#include <errno.h>
#include <stdlib.h>

#include "tapdisk.h"

struct td_engine {
	td_io_done_fn *done;
};

static int n_open(struct ev_loop *loop, unsigned depth, td_io_done_fn *done,
		  struct td_engine **out)
{
	struct td_engine *e = calloc(1, sizeof(*e));

	(void)loop;
	(void)depth;
	if (!e)
		return -ENOMEM;
	e->done = done;
	*out = e;
	td_log(TD_WARN, "null engine: requests complete at once and move no data (transport benchmarks only)");
	return 0;
}

static int n_queue(struct td_engine *e, enum pvio_blkback_op op, int fd, uint64_t off,
		   const struct iovec *iov, int iovcnt, size_t len, void *tag)
{
	(void)op;
	(void)fd;
	(void)off;
	(void)iov;
	(void)iovcnt;
	(void)len;
	/* completing inside queue is allowed: blkback holds nothing of ours */
	e->done(tag, 0);
	return 0;
}

static void n_submit(struct td_engine *e)
{
	(void)e;
}

static void n_close(struct td_engine *e)
{
	free(e);
}

const struct td_engine_ops td_engine_null = {
	.name = "null",
	.open = n_open,
	.queue = n_queue,
	.submit = n_submit,
	.close = n_close,
};
