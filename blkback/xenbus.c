/* SPDX-License-Identifier: MIT */
/*
 * The backend half of the vbd xenbus handshake (docs/block-path.md).
 *
 * Everything is driven by one idempotent function, bb_xenbus_eval(): it
 * re-reads the toolstack's keys (online, state, the backend dir's
 * existence) and the frontend's state, and moves us towards where both say
 * we should be.  Watch events only schedule it, so a flood of them costs
 * one evaluation per wake-up (XSA-349), and two watches firing in quick
 * succession cannot make us miss an intermediate state.
 *
 * Frontend state -> what we do
 *   Initialising (1)        InitWait (2) (again, if we had connected: reconnect)
 *   Initialised/Connected   validate keys, map, Connected (4); bad keys: log,
 *     (3/4)                 write B/error, Closing (5) until the frontend moves
 *   Closing (5)             Closing (5)
 *   Closed (6) / gone       drain, unmap, unbind, Closed (6)
 * Toolstack: online = 0, B/state = 5 written by someone else, or B removed
 *   -> Closing, wait (bounded) for the frontend to close, drain, unmap,
 *      Closed (6) unless B is gone, report EV_DETACHED.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

/* How long a toolstack detach waits for the frontend to close before it
 * disconnects anyway: a hostile or hung guest must not pin the VBD. */
#define BB_DETACH_WAIT_S 10.0

enum { XB_UNKNOWN = 0, XB_INITIALISING, XB_INITWAIT, XB_INITIALISED, XB_CONNECTED,
       XB_CLOSING, XB_CLOSED };

static char *xs_get(struct pvio_blkback *bb, const char *path)
{
	unsigned int len;
	return xs_read(bb->xs, XBT_NULL, path, &len);
}

/* A peer's number: decimal digits only, no sign or junk, at most @max.
 * -ENOENT if absent, -EINVAL if not such a number (value in *@raw for logs). */
static int xs_get_uint(struct pvio_blkback *bb, const char *path, unsigned long long max,
		       unsigned long long *out, char *raw, size_t rawlen)
{
	char *v = xs_get(bb, path), *end;
	unsigned long long n;
	int saved = errno;

	if (raw && rawlen)
		raw[0] = 0;
	if (!v)
		return -ENOENT;
	if (raw && rawlen)
		snprintf(raw, rawlen, "%s", v);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || errno || n > max) {
		free(v);
		errno = saved;
		return -EINVAL;
	}
	free(v);
	errno = saved;
	*out = n;
	return 0;
}

static int be_write(struct pvio_blkback *bb, xs_transaction_t t, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int be_write(struct pvio_blkback *bb, xs_transaction_t t, const char *key,
		    const char *fmt, ...)
{
	char path[BB_PATH_MAX + 64], val[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(val))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s", bb->backend, key);
	return xs_write(bb->xs, t, path, val, (unsigned)n) ? 0 : -errno;
}

static void write_state(struct pvio_blkback *bb, enum pvio_blkback_state s)
{
	int err;

	if (bb->gone)
		return; /* never recreate a removed backend dir */
	err = be_write(bb, XBT_NULL, "state", "%d", (int)s);
	if (err)
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot write state %d: %s", s, strerror(-err));
	bb->state = s;
}

/* Write a set of keys in one transaction, retried on conflict. */
static int publish(struct pvio_blkback *bb, bool connect)
{
	for (int tries = 0; tries < 16; tries++) {
		xs_transaction_t t = xs_transaction_start(bb->xs);
		int err = 0;

		if (!t)
			return -errno;
		if (connect) {
			err = be_write(bb, t, "sectors", "%llu", (unsigned long long)bb->cfg.sectors);
			if (!err)
				err = be_write(bb, t, "info", "%u", bb->cfg.readonly ? PVIO_VDISK_READONLY : 0u);
			if (!err)
				err = be_write(bb, t, "sector-size", "%u", bb->cfg.sector_size);
			if (!err)
				err = be_write(bb, t, "physical-sector-size", "%u",
					       bb->cfg.physical_sector_size);
		} else {
			err = be_write(bb, t, "max-ring-page-order", "%u", bb->cfg.max_ring_page_order);
			if (!err)
				err = be_write(bb, t, "feature-persistent", "%u",
					       bb->cfg.no_persistent ? 0u : 1u);
			if (!err)
				err = be_write(bb, t, "feature-max-indirect-segments", "%u",
					       bb->cfg.max_indirect_segments);
			/* discard: what the image can do, unless the toolstack said
			 * no (libxl's discard-enable; absent means allowed) */
			bb->discard = bb->cfg.discard && !bb->cfg.readonly;
			if (bb->discard) {
				char dpath[BB_PATH_MAX + 32], *de;
				snprintf(dpath, sizeof(dpath), "%s/discard-enable", bb->backend);
				de = xs_get(bb, dpath);
				if (de && !strcmp(de, "0"))
					bb->discard = false;
				free(de);
			}
			if (!err)
				err = be_write(bb, t, "feature-discard", "%u", bb->discard ? 1u : 0u);
			if (!err && bb->discard)
				err = be_write(bb, t, "discard-granularity", "%u", 4096u);
			if (!err && bb->discard)
				err = be_write(bb, t, "discard-alignment", "0");
			if (!err && bb->discard)
				err = be_write(bb, t, "discard-secure", "0");
		}
		if (!err)
			err = be_write(bb, t, "feature-flush-cache", "%u", bb->cfg.no_flush_cache ? 0u : 1u);
		if (!err)
			err = be_write(bb, t, "feature-barrier", "%u", bb->cfg.no_barrier ? 0u : 1u);
		if (!err && !connect && bb->cfg.max_queues)
			err = be_write(bb, t, "multi-queue-max-queues", "%u", bb->cfg.max_queues);
		if (err) {
			xs_transaction_end(bb->xs, t, true);
			return err;
		}
		if (xs_transaction_end(bb->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

static void refuse(struct pvio_blkback *bb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void refuse(struct pvio_blkback *bb, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bb_log(bb, PVIO_BLKBACK_LOG_ERR, "refused the frontend's connection: %s", msg);
	if (!bb->gone)
		be_write(bb, XBT_NULL, "error", "%s", msg);
	bb->refused = true;
	write_state(bb, PVIO_BLKBACK_CLOSING);
}

/*
 * How many queues the frontend asks for (multi-queue-num-queues), refusing
 * what Linux blkback refuses (0, more than offered, garbage) and one more
 * thing: per-queue keys next to a single queue, where it is not clear which
 * ring is meant.  Only looked at when we offer multi-queue; a backend with
 * max_queues 0 reads the flat keys only, as one that never heard of it.
 * Returns the count, or 0 after refusing.
 */
static unsigned read_num_queues(struct pvio_blkback *bb)
{
	char path[BB_PATH_MAX + 64], raw[64], *p;
	unsigned long long nq;
	int err;

	if (!bb->cfg.max_queues)
		return 1;
	snprintf(path, sizeof(path), "%s/multi-queue-num-queues", bb->frontend);
	err = xs_get_uint(bb, path, UINT32_MAX, &nq, raw, sizeof(raw));
	if (err == -ENOENT)
		nq = 1;
	else if (err || nq == 0 || nq > bb->cfg.max_queues) {
		refuse(bb, "key multi-queue-num-queues '%.40s': not a number in 1..%u", raw,
		       bb->cfg.max_queues);
		return 0;
	}
	if (nq == 1) {
		/* xenstored makes the queue-0 node when any key under it is written */
		snprintf(path, sizeof(path), "%s/queue-0", bb->frontend);
		p = xs_get(bb, path);
		if (p) {
			free(p);
			refuse(bb, "queue-0 keys present with one queue: which ring is meant?");
			return 0;
		}
	}
	return (unsigned)nq;
}

static void connect_frontend(struct pvio_blkback *bb)
{
	char path[BB_PATH_MAX + 96], raw[64], qdir[BB_PATH_MAX + 32];
	uint32_t refs[PVIO_BLKBACK_MAX_QUEUES][1u << PVIO_RING_MAX_ORDER];
	uint32_t ports[PVIO_BLKBACK_MAX_QUEUES];
	unsigned long long v, order = 0;
	enum bb_proto proto = BB_PROTO_NATIVE;
	unsigned nq;
	char *p;
	int err;

	snprintf(path, sizeof(path), "%s/ring-page-order", bb->frontend);
	/* Bounded before any shift (FreeBSD and tapback shift first). */
	err = xs_get_uint(bb, path, bb->cfg.max_ring_page_order, &order, raw, sizeof(raw));
	if (err == -ENOENT)
		order = 0;
	else if (err)
		return refuse(bb, "key ring-page-order '%.40s': not a number in 0..%u",
			      raw, bb->cfg.max_ring_page_order);
	nq = read_num_queues(bb);
	if (!nq)
		return;
	for (unsigned q = 0; q < nq; q++) {
		/* one queue: the flat keys; more: queue-N/..., as Linux blkfront */
		if (nq == 1)
			snprintf(qdir, sizeof(qdir), "%s", bb->frontend);
		else
			snprintf(qdir, sizeof(qdir), "%s/queue-%u", bb->frontend, q);
		for (unsigned i = 0; i < 1u << order; i++) {
			if (order == 0)
				snprintf(path, sizeof(path), "%s/ring-ref", qdir);
			else
				snprintf(path, sizeof(path), "%s/ring-ref%u", qdir, i);
			err = xs_get_uint(bb, path, UINT32_MAX, &v, raw, sizeof(raw));
			if (err)
				return refuse(bb, "key %s '%.40s': %s", path + strlen(bb->frontend) + 1, raw,
					      err == -ENOENT ? "missing" : "not a grant reference");
			refs[q][i] = (uint32_t)v;
		}
		snprintf(path, sizeof(path), "%s/event-channel", qdir);
		err = xs_get_uint(bb, path, UINT32_MAX, &v, raw, sizeof(raw));
		if (err || v == 0)
			return refuse(bb, "key %s '%.40s': %s", path + strlen(bb->frontend) + 1, raw,
				      err == -ENOENT ? "missing" : "not an event-channel port");
		ports[q] = (uint32_t)v;
	}
	snprintf(path, sizeof(path), "%s/protocol", bb->frontend);
	p = xs_get(bb, path);
	if (p && !strcmp(p, "x86_32-abi"))
		proto = BB_PROTO_X86_32;
	else if (p && strcmp(p, "x86_64-abi")) {
		snprintf(raw, sizeof(raw), "%s", p);
		free(p);
		return refuse(bb, "key protocol '%.40s': unsupported ABI", raw);
	}
	free(p); /* absent: native x86_64 (see pvio/blkback.h) */

	/* Persistent grants only when both ends offer them; anything but "1"
	 * from the frontend means no. */
	snprintf(path, sizeof(path), "%s/feature-persistent", bb->frontend);
	p = xs_get(bb, path);
	bb->persistent = !bb->cfg.no_persistent && p && !strcmp(p, "1");
	free(p);

	err = bb_ring_connect(bb, (unsigned)order, nq, &refs[0][0], ports, proto);
	if (err)
		return refuse(bb, "cannot map the ring(s) or bind event channel %u: %s", ports[0],
			      strerror(-err));
	err = publish(bb, true);
	if (err) {
		bb_ring_disconnect(bb);
		return refuse(bb, "cannot write the disk keys: %s", strerror(-err));
	}
	bb->st.connects++;
	/* logged before the state write, so whoever sees Connected finds the line */
	bb_log(bb, PVIO_BLKBACK_LOG_INFO,
	       "connected to domain %u: %u queue(s) of a %u-page ring (%u slots), event channel %u%s, "
	       "protocol %s, %llu sectors%s, sector size %u (physical %u), persistent grants %s, "
	       "indirect segments %u, barrier %s", bb->domid, nq, 1u << order, bb->q[0].nr_reqs,
	       ports[0], nq > 1 ? ".." : "",
	       proto == BB_PROTO_X86_32 ? "x86_32-abi" : "x86_64-abi",
	       (unsigned long long)bb->cfg.sectors, bb->cfg.readonly ? ", read-only" : "",
	       bb->cfg.sector_size, bb->cfg.physical_sector_size, bb->persistent ? "on" : "off",
	       bb->max_indirect, bb->cfg.no_barrier ? "off" : "on");
	write_state(bb, PVIO_BLKBACK_CONNECTED);
	bb_event(bb, PVIO_BLKBACK_EV_CONNECTED);
	/* Requests may already be waiting. */
	for (unsigned q = 0; bb->connected && q < bb->nr_queues; q++)
		bb_ring_work(&bb->q[q]);
}

static void finish_detach(struct pvio_blkback *bb)
{
	if (bb->detached)
		return;
	write_state(bb, PVIO_BLKBACK_CLOSED);
	bb->detached = true;
	ev_timer_stop(bb->loop, &bb->close_timer);
	bb_log(bb, PVIO_BLKBACK_LOG_INFO, "detached");
	bb_event(bb, PVIO_BLKBACK_EV_DETACHED);
}

static void do_disconnect(struct pvio_blkback *bb)
{
	bool was = bb->connected;

	bb->pending_disconnect = false;
	bb_ring_disconnect(bb);
	if (was) {
		bb_log(bb, PVIO_BLKBACK_LOG_INFO, "disconnected from domain %u", bb->domid);
		bb_event(bb, PVIO_BLKBACK_EV_DISCONNECTED);
	}
	if (bb->detaching) {
		finish_detach(bb);
		return;
	}
	write_state(bb, (enum pvio_blkback_state)bb->pending_next);
	if (bb->pending_next == PVIO_BLKBACK_INITWAIT)
		bb_log(bb, PVIO_BLKBACK_LOG_INFO, "frontend re-initialising: InitWait again");
}

/* Disconnect once nothing is in flight (the engine still owns mapped
 * segments until it completes), then write @next. */
static void disconnect(struct pvio_blkback *bb, enum pvio_blkback_state next)
{
	bb->pending_next = (int)next;
	bb->pending_disconnect = true;
	if (bb->st.in_flight == 0)
		do_disconnect(bb);
	else
		bb_log(bb, PVIO_BLKBACK_LOG_INFO, "disconnecting after %u requests in flight complete",
		       bb->st.in_flight);
}

void bb_xenbus_idle(struct pvio_blkback *bb)
{
	if (bb->pending_disconnect)
		do_disconnect(bb);
}

void bb_xenbus_ring_broken(struct pvio_blkback *bb)
{
	if (!bb->gone)
		be_write(bb, XBT_NULL, "error", "frontend broke the ring protocol");
	bb->refused = true; /* no reconnect until the frontend starts over */
	disconnect(bb, PVIO_BLKBACK_CLOSING);
}

static int frontend_state(struct pvio_blkback *bb)
{
	char path[BB_PATH_MAX + 16];
	unsigned long long v;

	snprintf(path, sizeof(path), "%s/state", bb->frontend);
	/* Absent or garbage: the frontend is gone, as good as Closed. */
	if (xs_get_uint(bb, path, 7, &v, NULL, 0))
		return -1;
	return (int)v;
}

void bb_xenbus_eval(struct pvio_blkback *bb)
{
	char path[BB_PATH_MAX + 16], raw[32];
	unsigned long long online = 0, bstate = 0;
	int fe, err;

	if (bb->detached || !bb->xs)
		return;
	snprintf(path, sizeof(path), "%s/online", bb->backend);
	err = xs_get_uint(bb, path, 1, &online, raw, sizeof(raw));
	if (err == -ENOENT) {
		/* online is removed only with the whole backend dir. */
		snprintf(path, sizeof(path), "%s/frontend", bb->backend);
		char *f = xs_get(bb, path);
		if (!f)
			bb->gone = true;
		free(f);
		online = 0;
	} else if (err) {
		online = 0; /* only the toolstack writes it; garbage means detach */
	}
	snprintf(path, sizeof(path), "%s/state", bb->backend);
	if (xs_get_uint(bb, path, 7, &bstate, NULL, 0))
		bstate = 0;

	if (!bb->detaching &&
	    (bb->gone || online != 1 || (bstate == XB_CLOSING && bb->state != PVIO_BLKBACK_CLOSING))) {
		bb->detaching = true;
		if (bb->gone)
			bb->force_close = true;
		bb_log(bb, PVIO_BLKBACK_LOG_INFO, "toolstack detach (%s): closing down",
		       bb->gone ? "backend dir removed" : online != 1 ? "online is 0" : "state 5 written");
		ev_timer_set(&bb->close_timer, BB_DETACH_WAIT_S, 0.);
		ev_timer_start(bb->loop, &bb->close_timer);
	}

	fe = frontend_state(bb);
	if (bb->detaching) {
		if (bb->pending_disconnect)
			return;
		if (bb->force_close || !bb->connected || fe < 0 || fe == XB_CLOSING ||
		    fe == XB_CLOSED || fe == XB_UNKNOWN || fe == XB_INITIALISING) {
			if (bb->connected)
				disconnect(bb, PVIO_BLKBACK_CLOSED);
			else
				finish_detach(bb);
		} else if (bb->state != PVIO_BLKBACK_CLOSING) {
			write_state(bb, PVIO_BLKBACK_CLOSING); /* ask the frontend to close */
		}
		return;
	}
	if (bb->pending_disconnect)
		return; /* re-evaluated when the drain finishes */

	switch (fe) {
	case XB_INITIALISING:
	case XB_INITWAIT:
		bb->stale_frontend = false;
		bb->refused = false;
		if (bb->connected)
			disconnect(bb, PVIO_BLKBACK_INITWAIT);
		else if (bb->state != PVIO_BLKBACK_INITWAIT) {
			write_state(bb, PVIO_BLKBACK_INITWAIT);
			bb_log(bb, PVIO_BLKBACK_LOG_INFO, "frontend re-initialising: InitWait again");
		}
		break;
	case XB_INITIALISED:
	case XB_CONNECTED:
		/* Connected is treated like Initialised (frontends that write
		 * their keys and Connected in one transaction), except for the
		 * dead ring of a predecessor, which we must not map. */
		if (bb->stale_frontend && fe == XB_CONNECTED)
			break;
		bb->stale_frontend = false;
		if (bb->connected || bb->refused)
			break;
		connect_frontend(bb);
		break;
	case XB_CLOSING:
		bb->stale_frontend = false;
		if (bb->state != PVIO_BLKBACK_CLOSING) {
			bb_log(bb, PVIO_BLKBACK_LOG_INFO, "frontend closing");
			write_state(bb, PVIO_BLKBACK_CLOSING);
		}
		break;
	default: /* Closed, Unknown, gone */
		bb->stale_frontend = false;
		if (bb->connected)
			disconnect(bb, PVIO_BLKBACK_CLOSED);
		else if (bb->state != PVIO_BLKBACK_CLOSED) {
			bb_log(bb, PVIO_BLKBACK_LOG_INFO, "frontend %s: Closed", fe < 0 ? "gone" : "closed");
			write_state(bb, PVIO_BLKBACK_CLOSED);
		}
		break;
	}
}

static void xs_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pvio_blkback *bb = w->data;
	char **ev;
	int n = 0;

	(void)loop;
	(void)revents;
	/* Drain every queued event, evaluate once. */
	while ((ev = xs_check_watch(bb->xs)) != NULL) {
		free(ev);
		n++;
	}
	if (n)
		bb_xenbus_eval(bb);
}

static void close_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pvio_blkback *bb = w->data;

	(void)loop;
	(void)revents;
	bb_log(bb, PVIO_BLKBACK_LOG_WARN, "frontend did not close within %.0f s: disconnecting anyway",
	       BB_DETACH_WAIT_S);
	bb->force_close = true;
	bb_xenbus_eval(bb);
}

int bb_xenbus_start(struct pvio_blkback *bb)
{
	char path[BB_PATH_MAX + 16], raw[64], *fe;
	unsigned long long domid;
	int err, fst;

	ev_timer_init(&bb->close_timer, close_timer_cb, BB_DETACH_WAIT_S, 0.);
	bb->close_timer.data = bb;
	bb->xs = xs_open(0);
	if (!bb->xs) {
		err = -errno;
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot reach xenstore: %s", strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "%s/frontend-id", bb->backend);
	err = xs_get_uint(bb, path, 0x7fef, &domid, raw, sizeof(raw)); /* DOMID_FIRST_RESERVED - 1 */
	if (err) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "%s: %s", path,
		       err == -ENOENT ? "missing (no such backend)" : "not a domain id");
		return err;
	}
	bb->domid = (uint32_t)domid;
	snprintf(path, sizeof(path), "%s/frontend", bb->backend);
	fe = xs_get(bb, path);
	if (!fe) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "%s: missing", path);
		return -ENOENT;
	}
	/* The frontend dir must be the frontend domain's own. */
	snprintf(raw, sizeof(raw), "/local/domain/%u/", bb->domid);
	if (strncmp(fe, raw, strlen(raw)) || strlen(fe) >= sizeof(bb->frontend) - 64 ||
	    strstr(fe, "..")) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "%s '%.80s': not under %s", path, fe, raw);
		free(fe);
		return -EINVAL;
	}
	snprintf(bb->frontend, sizeof(bb->frontend), "%s", fe);
	free(fe);

	bb->xgt = xengnttab_open(NULL, 0);
	if (!bb->xgt) {
		err = -errno;
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "xengnttab_open: %s", strerror(-err));
		return err;
	}
	fst = frontend_state(bb);
	if (fst == XB_CONNECTED) {
		bb->stale_frontend = true;
		bb_log(bb, PVIO_BLKBACK_LOG_INFO,
		       "frontend already Connected (predecessor died): InitWait so it reconnects");
	}
	err = publish(bb, false);
	if (err) {
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot publish features: %s", strerror(-err));
		return err;
	}
	write_state(bb, PVIO_BLKBACK_INITWAIT);
	bb_log(bb, PVIO_BLKBACK_LOG_INFO,
	       "InitWait: frontend domain %u at %s, max-ring-page-order %u, feature-flush-cache 1, "
	       "feature-barrier %u, feature-max-indirect-segments %u, multi-queue-max-queues %u%s",
	       bb->domid, bb->frontend, bb->cfg.max_ring_page_order, bb->cfg.no_barrier ? 0u : 1u,
	       bb->cfg.max_indirect_segments, bb->cfg.max_queues,
	       bb->cfg.max_queues ? "" : " (not published)");

	snprintf(bb->watch_be, sizeof(bb->watch_be), "bb-be-%p", (void *)bb);
	snprintf(bb->watch_fe, sizeof(bb->watch_fe), "bb-fe-%p", (void *)bb);
	snprintf(path, sizeof(path), "%s/state", bb->frontend);
	if (!xs_watch(bb->xs, bb->backend, bb->watch_be) || !xs_watch(bb->xs, path, bb->watch_fe)) {
		err = -errno;
		bb_log(bb, PVIO_BLKBACK_LOG_ERR, "cannot watch xenstore: %s", strerror(-err));
		return err;
	}
	ev_io_init(&bb->xs_io, xs_cb, xs_fileno(bb->xs), EV_READ);
	bb->xs_io.data = bb;
	ev_io_start(bb->loop, &bb->xs_io);
	bb_xenbus_eval(bb);
	return 0;
}

void bb_xenbus_stop(struct pvio_blkback *bb)
{
	ev_timer_stop(bb->loop, &bb->close_timer);
	if (bb->xs) {
		ev_io_stop(bb->loop, &bb->xs_io);
		xs_close(bb->xs); /* drops the watches */
		bb->xs = NULL;
	}
	if (bb->xgt) {
		xengnttab_close(bb->xgt);
		bb->xgt = NULL;
	}
}

void pvio_blkback_shutdown(struct pvio_blkback *bb, const char *why)
{
	if (bb->detached)
		return;
	bb_log(bb, PVIO_BLKBACK_LOG_INFO, "shutting down: %s", why ? why : "requested");
	bb->detaching = true;
	bb->force_close = true;
	if (bb->pending_disconnect)
		return; /* the drain in progress ends in finish_detach */
	bb_xenbus_eval(bb);
}
