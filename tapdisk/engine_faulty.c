/* SPDX-License-Identifier: MIT */
/*
 * The fault-injecting engine (`--engine faulty:INNER:SPEC`): wraps a real
 * engine (io_uring or libaio) and makes chosen operations fail without
 * touching the image, to test that errors reach the guest as error
 * responses and that nothing hangs or leaks (issue 6).  For tests only.
 *
 * SPEC is a comma-separated list (all optional):
 *   every=N    fail every Nth eligible operation (default 1: all of them)
 *   after=K    let the first K eligible operations through first (default 0)
 *   count=M    stop failing after M failures (default: never stop)
 *   op=read|write|flush|data|all   which operations are eligible (default data:
 *              reads and writes)
 *   err=EIO|ENOSPC|ENOMEM   the error reported (default EIO)
 *   delay=MS   hold the completion of every eligible operation that is not
 *              failed for MS milliseconds after the inner engine finished it:
 *              a slow disk, so that requests stay in flight (with the guest's
 *              pages mapped) long enough for a test to act meanwhile, e.g.
 *              destroy the domain (default 0)
 * e.g. faulty:io_uring:every=3,count=10 fails operations 3, 6, ... 30 with
 * EIO, then passes everything through; faulty:io_uring:count=0,delay=2000
 * fails nothing and answers every read and write 2 s late.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapdisk.h"

struct fault_cfg {
	const struct td_engine_ops *inner;
	unsigned long every, after, count;
	unsigned ops;	/* bit per enum pvio_blkback_op */
	int err;
	unsigned long delay_ms;
};

static struct fault_cfg cfg;

/* An operation whose completion is held (delay=): the inner engine
 * completes this, a timer then completes the caller's tag. */
struct held {
	struct td_engine *e;
	void *tag;
	int res;
	bool hold;	/* eligible: completed delay= ms late; else at once */
	ev_timer t;
	struct held *next_free;
};

struct td_engine {
	struct td_engine *inner;
	td_io_done_fn *done;
	struct ev_loop *loop;
	unsigned long seen, failed;
	struct held *pool, *free;	/* depth entries when delay= is set */
	unsigned long held_now;
};



int td_engine_faulty_setup(const char *arg)
{
	char buf[256], *save = NULL, *tok, *spec;

	memset(&cfg, 0, sizeof(cfg));
	cfg.every = 1;
	cfg.count = (unsigned long)-1;
	cfg.ops = 1u << PVIO_BLKBACK_READ | 1u << PVIO_BLKBACK_WRITE;
	cfg.err = -EIO;
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	spec = strchr(buf, ':');
	if (spec)
		*spec++ = '\0';
	if (!strcmp(buf, "io_uring"))
		cfg.inner = &td_engine_uring;
	else if (!strcmp(buf, "libaio"))
		cfg.inner = &td_engine_aio;
	else {
		td_log(TD_ERR, "faulty engine: inner engine '%s' is not io_uring or libaio", buf);
		return -EINVAL;
	}
	for (tok = spec ? strtok_r(spec, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = 0;
		char *eq = strchr(tok, '=');
		if (!eq)
			goto bad;
		*eq++ = '\0';
		if (!strcmp(tok, "every") || !strcmp(tok, "after") || !strcmp(tok, "count") ||
		    !strcmp(tok, "delay")) {
			v = strtoul(eq, &end, 10);
			if (*eq == '\0' || *end != '\0')
				goto bad;
		}
		if (!strcmp(tok, "every") && v > 0)
			cfg.every = v;
		else if (!strcmp(tok, "after"))
			cfg.after = v;
		else if (!strcmp(tok, "count"))
			cfg.count = v;
		else if (!strcmp(tok, "delay") && v <= 600000)
			cfg.delay_ms = v;
		else if (!strcmp(tok, "op") && !strcmp(eq, "read"))
			cfg.ops = 1u << PVIO_BLKBACK_READ;
		else if (!strcmp(tok, "op") && !strcmp(eq, "write"))
			cfg.ops = 1u << PVIO_BLKBACK_WRITE;
		else if (!strcmp(tok, "op") && !strcmp(eq, "flush"))
			cfg.ops = 1u << PVIO_BLKBACK_FLUSH;
		else if (!strcmp(tok, "op") && !strcmp(eq, "data"))
			cfg.ops = 1u << PVIO_BLKBACK_READ | 1u << PVIO_BLKBACK_WRITE;
		else if (!strcmp(tok, "op") && !strcmp(eq, "all"))
			cfg.ops = 1u << PVIO_BLKBACK_READ | 1u << PVIO_BLKBACK_WRITE | 1u << PVIO_BLKBACK_FLUSH;
		else if (!strcmp(tok, "err") && !strcmp(eq, "EIO"))
			cfg.err = -EIO;
		else if (!strcmp(tok, "err") && !strcmp(eq, "ENOSPC"))
			cfg.err = -ENOSPC;
		else if (!strcmp(tok, "err") && !strcmp(eq, "ENOMEM"))
			cfg.err = -ENOMEM;
		else
			goto bad;
		continue;
bad:
		td_log(TD_ERR, "faulty engine: bad spec item '%s%s%s'", tok, eq ? "=" : "", eq ? eq : "");
		return -EINVAL;
	}
	return 0;
}

/* Give the caller its completion and the entry back to the pool. */
static void release(struct held *h)
{
	struct td_engine *e = h->e;
	void *tag = h->tag;
	int res = h->res;

	h->next_free = e->free;
	e->free = h;
	e->held_now--;
	e->done(tag, res);
}

static void held_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct held *h = (struct held *)((char *)w - offsetof(struct held, t));

	(void)revents;
	ev_timer_stop(loop, w);
	release(h);
}

/* The inner engine finished an operation queued with delay= set: answer
 * it MS later if it is eligible, else now. */
static void inner_done(void *tag, int res)
{
	struct held *h = tag;

	h->res = res;
	if (!h->hold) {
		release(h);
		return;
	}
	ev_timer_init(&h->t, held_cb, (double)cfg.delay_ms / 1000., 0.);
	ev_timer_start(h->e->loop, &h->t);
}

static int f_open(struct ev_loop *loop, unsigned depth, td_io_done_fn *done,
		  struct td_engine **out)
{
	struct td_engine *e;
	int err;

	if (!cfg.inner)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = loop;
	e->done = done;
	if (cfg.delay_ms) {
		/* every operation in flight may be held: depth entries */
		e->pool = calloc(depth, sizeof(*e->pool));
		if (!e->pool) {
			free(e);
			return -ENOMEM;
		}
		for (unsigned i = 0; i < depth; i++) {
			e->pool[i].e = e;
			e->pool[i].next_free = e->free;
			e->free = &e->pool[i];
		}
	}
	err = cfg.inner->open(loop, depth, cfg.delay_ms ? inner_done : done, &e->inner);
	if (err) {
		free(e->pool);
		free(e);
		return err;
	}
	*out = e;
	td_log(TD_WARN, "faulty engine over %s: every %lu, after %lu, at most %lu failures, error %s, "
	       "completions held %lu ms (fault-injection tests only)", cfg.inner->name, cfg.every,
	       cfg.after, cfg.count, strerror(-cfg.err), cfg.delay_ms);
	return 0;
}

static int f_queue(struct td_engine *e, enum pvio_blkback_op op, int fd, uint64_t off,
		   const struct iovec *iov, int iovcnt, size_t len, void *tag)
{
	if ((cfg.ops & (1u << op)) && e->failed < cfg.count) {
		unsigned long n = ++e->seen;
		if (n > cfg.after && (n - cfg.after) % cfg.every == 0) {
			e->failed++;
			td_log(TD_INFO, "faulty engine: failing op %d at %llu (+%zu bytes) with %s (%lu so far)",
			       op, (unsigned long long)off, len, strerror(-cfg.err), e->failed);
			/* completing inside queue is allowed (engine contract) */
			e->done(tag, cfg.err);
			return 0;
		}
	}
	if (cfg.delay_ms) {
		/* everything goes through the pool (the inner engine's done is
		 * inner_done); only eligible operations are held long */
		struct held *h = e->free;
		int err;
		if (!h)
			return -EBUSY;
		/* set up before queueing: the inner engine may complete inside */
		e->free = h->next_free;
		h->tag = tag;
		h->hold = (cfg.ops & (1u << op)) != 0;
		e->held_now++;
		err = cfg.inner->queue(e->inner, op, fd, off, iov, iovcnt, len, h);
		if (err) {
			e->held_now--;
			h->next_free = e->free;
			e->free = h;
		}
		return err;
	}
	return cfg.inner->queue(e->inner, op, fd, off, iov, iovcnt, len, tag);
}

static void f_submit(struct td_engine *e)
{
	cfg.inner->submit(e->inner);
}

static void f_close(struct td_engine *e)
{
	cfg.inner->close(e->inner);
	/* the caller drained: nothing is held any more */
	if (e->held_now)
		td_log(TD_ERR, "faulty engine closed with %lu completions still held", e->held_now);
	free(e->pool);
	free(e);
}

const struct td_engine_ops td_engine_faulty = {
	.name = "faulty",
	.open = f_open,
	.queue = f_queue,
	.submit = f_submit,
	.close = f_close,
};
