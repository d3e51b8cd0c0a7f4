/* SPDX-License-Identifier: MIT */
/*
 * Event channels on xensim across processes: binding, notification both
 * ways, mask-on-delivery with latching, late EOI, closes and deaths seen by
 * the peer, refused binds, the libev watcher, and the late-EOI storm
 * backoff that blkback and netback share (pvio/evtchn_eoi.h).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <ev.h>

#include "pvio/evtchn.h"
#include "pvio/evtchn_eoi.h"
#include "xsimfix.h"

static struct xsimfix fix;
static uint32_t domu;

static void setup(void)
{
	xsimfix_start(&fix);
	domu = xsimfix_domain_create("guest", 4);
}

static void teardown(void)
{
	xsimfix_stop(&fix);
}

/* A guest process with one port offered to @remote; obeys 1-byte commands:
 * 'n' notify, 'w' wait for one event then answer 'k', 'u' unbind, 'q' quit. */
struct peer {
	pid_t pid;
	int fd;
	evtchn_port_t port;
};

static void on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	(void)e;
	(void)port;
	(*(int *)arg)++;
}

static void peer_main(int fd, uint32_t remote)
{
	struct pvio_evtchn *e;
	int hits = 0, port;
	char c;

	xsimfix_become(domu);
	if (pvio_evtchn_open(&e))
		_exit(2);
	port = pvio_evtchn_alloc_unbound(e, remote, on_event, &hits);
	if (port <= 0 || write(fd, &port, sizeof(port)) != sizeof(port))
		_exit(3);
	while (read(fd, &c, 1) == 1) {
		switch (c) {
		case 'n':
			c = pvio_evtchn_notify(e, (evtchn_port_t)port) ? 'e' : 'k';
			break;
		case 'w': {
			int target = hits + 1;
			while (hits < target)
				if (pvio_evtchn_wait(e, 10000) <= 0)
					_exit(4);
			c = 'k';
			break;
		}
		case 'u':
			c = pvio_evtchn_unbind(e, (evtchn_port_t)port) ? 'e' : 'k';
			break;
		case 'q':
			pvio_evtchn_close(e);
			_exit(0);
		}
		if (write(fd, &c, 1) != 1)
			_exit(5);
	}
	_exit(0);
}

static void peer_start(struct peer *p, uint32_t remote)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		close(sv[0]);
		peer_main(sv[1], remote);
	}
	close(sv[1]);
	p->fd = sv[0];
	int port;
	ck_assert_int_eq(read(p->fd, &port, sizeof(port)), sizeof(port));
	p->port = (evtchn_port_t)port;
}

static char peer_cmd(struct peer *p, char c)
{
	if (send(p->fd, &c, 1, MSG_NOSIGNAL) != 1 || read(p->fd, &c, 1) != 1)
		return 'x';
	return c;
}

static void peer_stop(struct peer *p)
{
	int st;

	peer_cmd(p, 'q');
	close(p->fd);
	ck_assert_int_eq(waitpid(p->pid, &st, 0), p->pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

START_TEST(test_ping_pong)
{
	struct pvio_evtchn *e;
	struct peer p;
	int hits = 0, lport;

	peer_start(&p, 0);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	lport = pvio_evtchn_bind_interdomain(e, domu, p.port, on_event, &hits);
	ck_assert_int_gt(lport, 0);
	/* binding raises the new port once (events to the unbound port were lost) */
	ck_assert_int_eq(pvio_evtchn_wait(e, 10000), 1);
	ck_assert_int_eq(hits, 1);
	for (int i = 0; i < 2000; i++) {
		/* dom0 -> guest */
		int target = hits + 1;
		ck_assert_int_eq(pvio_evtchn_notify(e, (evtchn_port_t)lport), 0);
		ck_assert_int_eq(peer_cmd(&p, 'w'), 'k');
		/* guest -> dom0 */
		ck_assert_int_eq(peer_cmd(&p, 'n'), 'k');
		while (hits < target)
			ck_assert_int_gt(pvio_evtchn_wait(e, 10000), 0);
		ck_assert_int_eq(hits, target);
	}
	ck_assert_int_eq(pvio_evtchn_state(e, (evtchn_port_t)lport), PVIO_EVTCHN_INTERDOMAIN);
	peer_stop(&p);
	pvio_evtchn_close(e);
}
END_TEST

START_TEST(test_mask_latches)
{
	/* two handles of dom0, bound to each other (loopback is allowed) */
	xenevtchn_handle *a = xenevtchn_open(NULL, 0), *b = xenevtchn_open(NULL, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	int pa = xenevtchn_bind_unbound_port(a, 0);
	ck_assert_int_gt(pa, 0);
	int pb = xenevtchn_bind_interdomain(b, 0, (evtchn_port_t)pa);
	ck_assert_int_gt(pb, 0);
	ck_assert_int_ne(pa, pb);
	int fl = fcntl(xenevtchn_fd(a), F_GETFL);
	ck_assert_int_eq(fcntl(xenevtchn_fd(a), F_SETFL, fl | O_NONBLOCK), 0);
	/* nothing yet */
	ck_assert_int_eq(xenevtchn_pending(a), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(xenevtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(xenevtchn_pending(a), pa);
	/* delivered => masked: more events are latched, not delivered */
	ck_assert_int_eq(xenevtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(xenevtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(xenevtchn_pending(a), -1);
	ck_assert_int_eq(errno, EAGAIN);
	struct pollfd pfd = { .fd = xenevtchn_fd(a), .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	/* unmask: the latched event arrives, once */
	ck_assert_int_eq(xenevtchn_unmask(a, (evtchn_port_t)pa), 0);
	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	ck_assert_int_eq(xenevtchn_pending(a), pa);
	ck_assert_int_eq(xenevtchn_unmask(a, (evtchn_port_t)pa), 0);
	ck_assert_int_eq(xenevtchn_pending(a), -1);
	/* bad ports */
	ck_assert_int_eq(xenevtchn_notify(a, 4000), -1);
	ck_assert_int_eq(xenevtchn_unmask(a, 0), -1);
	ck_assert_int_eq(xenevtchn_unbind(a, 4000), -1);
	xenevtchn_close(a);
	xenevtchn_close(b);
}
END_TEST

/* Late EOI (pvio_evtchn_set_late_eoi, what blkback uses against event
 * storms): dispatch leaves the port masked, events latch until the handler's
 * owner unmasks, then arrive once; without it dispatch unmasks itself. */
START_TEST(test_late_eoi)
{
	struct pvio_evtchn *a, *b;
	struct pollfd pfd;
	int hits = 0, other = 0;

	ck_assert_int_eq(pvio_evtchn_open(&a), 0);
	ck_assert_int_eq(pvio_evtchn_open(&b), 0);
	int pa = pvio_evtchn_alloc_unbound(a, 0, on_event, &hits);
	ck_assert_int_gt(pa, 0);
	int pb = pvio_evtchn_bind_interdomain(b, 0, (evtchn_port_t)pa, on_event, &other);
	ck_assert_int_gt(pb, 0);
	ck_assert_int_eq(pvio_evtchn_set_late_eoi(a, (evtchn_port_t)pa, 1), 0);
	pvio_evtchn_dispatch(a);
	hits = 0;
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(pvio_evtchn_wait(a, 10000), 1);
	ck_assert_int_eq(hits, 1);
	/* delivered and not ended: more events latch, nothing is delivered */
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	pfd = (struct pollfd){ .fd = pvio_evtchn_fd(a), .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	ck_assert_int_eq(pvio_evtchn_dispatch(a), 0);
	ck_assert_int_eq(hits, 1);
	/* the end of interrupt: what latched arrives, once, and masks again */
	ck_assert_int_eq(pvio_evtchn_unmask(a, (evtchn_port_t)pa), 0);
	ck_assert_int_eq(pvio_evtchn_wait(a, 10000), 1);
	ck_assert_int_eq(hits, 2);
	ck_assert_int_eq(pvio_evtchn_dispatch(a), 0);
	/* off again: dispatch unmasks before the handler, as before */
	ck_assert_int_eq(pvio_evtchn_set_late_eoi(a, (evtchn_port_t)pa, 0), 0);
	ck_assert_int_eq(pvio_evtchn_unmask(a, (evtchn_port_t)pa), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
		ck_assert_int_eq(pvio_evtchn_wait(a, 10000), 1);
	}
	ck_assert_int_eq(hits, 5);
	/* ports not bound here */
	ck_assert_int_eq(pvio_evtchn_set_late_eoi(a, 4000, 1), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_unmask(a, 4000), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_unmask(a, (evtchn_port_t)pa + 100), -EINVAL);
	pvio_evtchn_close(b);
	pvio_evtchn_close(a);
}
END_TEST

static void expect_close_seen(struct pvio_evtchn *e, int lport, int *hits)
{
	int before = *hits;

	/* the peer's close raises our port */
	while (*hits == before)
		ck_assert_int_gt(pvio_evtchn_wait(e, 10000), 0);
	ck_assert_int_eq(pvio_evtchn_state(e, (evtchn_port_t)lport), PVIO_EVTCHN_UNBOUND);
	/* notifying a port whose peer has gone is dropped silently, as in Xen */
	ck_assert_int_eq(pvio_evtchn_notify(e, (evtchn_port_t)lport), 0);
}

START_TEST(test_close_seen_by_peer)
{
	struct pvio_evtchn *e;
	struct peer p;
	int hits = 0, lport;

	peer_start(&p, 0);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	lport = pvio_evtchn_bind_interdomain(e, domu, p.port, on_event, &hits);
	ck_assert_int_gt(lport, 0);
	ck_assert_int_eq(pvio_evtchn_wait(e, 10000), 1);
	ck_assert_int_eq(peer_cmd(&p, 'u'), 'k');
	expect_close_seen(e, lport, &hits);
	peer_stop(&p);
	pvio_evtchn_close(e);
}
END_TEST

START_TEST(test_death_seen_by_peer)
{
	struct pvio_evtchn *e;
	struct peer p;
	int hits = 0, lport;

	peer_start(&p, 0);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	lport = pvio_evtchn_bind_interdomain(e, domu, p.port, on_event, &hits);
	ck_assert_int_eq(pvio_evtchn_wait(e, 10000), 1);
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	close(p.fd);
	expect_close_seen(e, lport, &hits);
	pvio_evtchn_close(e);
}
END_TEST

START_TEST(test_backend_close_seen_by_guest)
{
	struct pvio_evtchn *e;
	struct peer p;
	int hits = 0, lport;

	peer_start(&p, 0);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	lport = pvio_evtchn_bind_interdomain(e, domu, p.port, on_event, &hits);
	ck_assert_int_gt(lport, 0);
	/* the backend goes away; the guest sees an event (its 'w' returns) */
	pvio_evtchn_close(e);
	ck_assert_int_eq(peer_cmd(&p, 'w'), 'k');
	peer_stop(&p);
}
END_TEST

START_TEST(test_bind_refused)
{
	struct pvio_evtchn *e;
	struct peer p;
	uint32_t other = xsimfix_domain_create("other", 4);

	/* the guest offers its port to "other", not to dom0 */
	peer_start(&p, other);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	ck_assert_int_eq(pvio_evtchn_bind_interdomain(e, domu, p.port, NULL, NULL), -EINVAL);
	/* a port that does not exist, port 0, a domain that does not exist */
	ck_assert_int_eq(pvio_evtchn_bind_interdomain(e, domu, 3000, NULL, NULL), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_bind_interdomain(e, domu, 0, NULL, NULL), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_bind_interdomain(e, 999, 1, NULL, NULL), -ESRCH);
	ck_assert_int_eq(pvio_evtchn_alloc_unbound(e, 999, NULL, NULL), -ESRCH);
	/* a port bound once cannot be bound again */
	peer_stop(&p);
	peer_start(&p, 0);
	ck_assert_int_gt(pvio_evtchn_bind_interdomain(e, domu, p.port, NULL, NULL), 0);
	ck_assert_int_eq(pvio_evtchn_bind_interdomain(e, domu, p.port, NULL, NULL), -EINVAL);
	peer_stop(&p);
	pvio_evtchn_close(e);
}
END_TEST

struct evctx {
	int hits, want;
	struct ev_loop *loop;
};

static void ev_handler(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	struct evctx *c = arg;

	(void)e;
	(void)port;
	if (++c->hits >= c->want)
		ev_break(c->loop, EVBREAK_ALL);
}

static void ev_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

START_TEST(test_libev_watcher)
{
	struct pvio_evtchn *e;
	struct peer p;
	struct evctx ctx = { .want = 1 + 50 };
	ev_timer guard;

	ctx.loop = ev_loop_new(EVFLAG_AUTO);
	peer_start(&p, 0);
	ck_assert_int_eq(pvio_evtchn_open(&e), 0);
	ck_assert_int_gt(pvio_evtchn_bind_interdomain(e, domu, p.port, ev_handler, &ctx), 0);
	ck_assert_int_eq(pvio_evtchn_ev_start(e, ctx.loop), 0);
	/* the bind event plus one per guest notify, each handled in the loop */
	for (int i = 0; i < 50; i++) {
		int target = ctx.hits + 1;
		ck_assert_int_eq(peer_cmd(&p, 'n'), 'k');
		ev_timer_init(&guard, ev_timeout, 10.0, 0);
		ev_timer_start(ctx.loop, &guard);
		while (ctx.hits < target && ev_run(ctx.loop, EVRUN_ONCE))
			;
		ev_timer_stop(ctx.loop, &guard);
		ck_assert_int_ge(ctx.hits, target);
	}
	ck_assert_int_ge(ctx.hits, 50);
	pvio_evtchn_ev_stop(e);
	peer_stop(&p);
	pvio_evtchn_close(e);
	ev_loop_destroy(ctx.loop);
}
END_TEST

/* The shared late-EOI backoff (pvio/evtchn_eoi.h, what blkback and
 * netback use): events that bring nothing are counted; the 8th in a row
 * starts a 1 ms backoff (storm reported once), the port stays masked and
 * what is raised meanwhile latches; the backoff's end reaches the owner,
 * whose EOI delivers what latched, once; a further spurious event doubles
 * the backoff; an event that finds work ends the run. */
struct eoi_ctx {
	struct pvio_evtchn_eoi l;
	struct ev_loop *loop;
	int hits, ends, storms;
	unsigned storm_run, storm_ms, storm_max;
	int found; /* the next event finds work */
	uint64_t events, spurious, backoffs;
};

static void eoi_on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	struct eoi_ctx *c = arg;

	(void)e;
	(void)port;
	c->hits++;
	pvio_evtchn_eoi_delivered(&c->l);
	if (c->found)
		pvio_evtchn_eoi_found(&c->l);
	else
		pvio_evtchn_eoi_spurious(&c->l);
	ck_assert_int_eq(pvio_evtchn_eoi_end(&c->l), 0);
	ev_break(c->loop, EVBREAK_ALL);
}

static void eoi_backoff_end(void *arg)
{
	struct eoi_ctx *c = arg;

	c->ends++;
	ck_assert_int_eq(pvio_evtchn_eoi_end(&c->l), 0);
	ev_break(c->loop, EVBREAK_ALL);
}

static void eoi_storm(void *arg, unsigned run, unsigned ms, unsigned max_ms)
{
	struct eoi_ctx *c = arg;

	c->storms++;
	c->storm_run = run;
	c->storm_ms = ms;
	c->storm_max = max_ms;
}

/* Run @c's loop until @field moves, with a 10 s deadline. */
static void eoi_run_until(struct eoi_ctx *c, const int *field)
{
	int was = *field;
	ev_timer guard;

	ev_timer_init(&guard, ev_timeout, 10.0, 0);
	ev_timer_start(c->loop, &guard);
	while (*field == was && ev_is_active(&guard))
		ev_run(c->loop, EVRUN_ONCE);
	ev_timer_stop(c->loop, &guard);
	ck_assert_int_ne(*field, was);
}

START_TEST(test_eoi_backoff)
{
	static const struct pvio_evtchn_eoi_ops ops = {
		.backoff_end = eoi_backoff_end, .storm = eoi_storm,
	};
	struct eoi_ctx c = { 0 };
	struct pvio_evtchn_eoi_counters cnt = { &c.events, &c.spurious, &c.backoffs };
	struct pvio_evtchn *a, *b;
	struct pollfd pfd;
	int pa, pb;

	c.loop = ev_loop_new(EVFLAG_AUTO);
	pvio_evtchn_eoi_init(&c.l, c.loop, &ops, &c, &cnt);
	pvio_evtchn_eoi_reset(&c.l); /* safe before any bind */
	ck_assert_int_eq(pvio_evtchn_open(&a), 0);
	ck_assert_int_eq(pvio_evtchn_open(&b), 0);
	pa = pvio_evtchn_alloc_unbound(a, 0, eoi_on_event, &c);
	ck_assert_int_gt(pa, 0);
	pb = pvio_evtchn_bind_interdomain(b, 0, (evtchn_port_t)pa, on_event, &c.storms);
	ck_assert_int_gt(pb, 0);
	ck_assert_int_eq(pvio_evtchn_eoi_bind(&c.l, a, 4000), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_eoi_bind(&c.l, a, (evtchn_port_t)pa), 0);
	ck_assert_int_eq(pvio_evtchn_ev_start(a, c.loop), 0);
	while (pvio_evtchn_dispatch(a) > 0) /* the bind's own event, if any */
		;
	c.hits = 0;
	c.events = c.spurious = 0;
	pvio_evtchn_eoi_found(&c.l);

	/* 7 spurious events in a row: each ended at once, no backoff */
	for (int i = 1; i < (int)PVIO_EVTCHN_EOI_GRACE; i++) {
		ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
		eoi_run_until(&c, &c.hits);
		ck_assert_int_eq(c.hits, i);
	}
	ck_assert_int_eq(c.backoffs, 0);
	ck_assert_int_eq(c.storms, 0);
	/* the 8th: a 1 ms backoff, reported once; the port stays masked */
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	eoi_run_until(&c, &c.hits);
	ck_assert_int_eq(c.spurious, PVIO_EVTCHN_EOI_GRACE);
	ck_assert_int_eq(c.backoffs, 1);
	ck_assert_int_eq(c.storms, 1);
	ck_assert_uint_eq(c.storm_run, PVIO_EVTCHN_EOI_GRACE);
	ck_assert_uint_eq(c.storm_ms, 1);
	ck_assert_uint_eq(c.storm_max, 256);
	/* raised during the backoff: latched, not delivered */
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	pfd = (struct pollfd){ .fd = pvio_evtchn_fd(a), .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	ck_assert_int_eq(pvio_evtchn_dispatch(a), 0);
	/* the backoff ends; the owner's EOI lets the latched event in, once:
	 * the 9th spurious event in a row, a backoff twice as long */
	eoi_run_until(&c, &c.ends);
	eoi_run_until(&c, &c.hits);
	ck_assert_int_eq(c.hits, (int)PVIO_EVTCHN_EOI_GRACE + 1);
	ck_assert_int_eq(c.backoffs, 2);
	ck_assert_int_eq(c.storms, 1); /* reported once per run */
	eoi_run_until(&c, &c.ends);
	ck_assert_int_eq(pvio_evtchn_dispatch(a), 0);
	/* an event that finds work ends the run: 7 more spurious ones are
	 * then within the grace */
	c.found = 1;
	ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
	eoi_run_until(&c, &c.hits);
	c.found = 0;
	for (int i = 1; i < (int)PVIO_EVTCHN_EOI_GRACE; i++) {
		ck_assert_int_eq(pvio_evtchn_notify(b, (evtchn_port_t)pb), 0);
		eoi_run_until(&c, &c.hits);
	}
	ck_assert_int_eq(c.backoffs, 2);
	ck_assert_int_eq(c.events, (uint64_t)c.hits);
	ck_assert_int_eq(c.spurious, (uint64_t)c.hits - 1);
	/* reset (before the handle goes): no backoff left running, and an
	 * EOI of a reset port does nothing */
	pvio_evtchn_eoi_reset(&c.l);
	ck_assert_int_eq(pvio_evtchn_eoi_end(&c.l), 0);
	pvio_evtchn_ev_stop(a);
	pvio_evtchn_close(b);
	pvio_evtchn_close(a);
	ev_loop_destroy(c.loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("evtchn");
	TCase *tc = tcase_create("two-process");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ping_pong);
	tcase_add_test(tc, test_mask_latches);
	tcase_add_test(tc, test_late_eoi);
	tcase_add_test(tc, test_close_seen_by_peer);
	tcase_add_test(tc, test_death_seen_by_peer);
	tcase_add_test(tc, test_backend_close_seen_by_guest);
	tcase_add_test(tc, test_bind_refused);
	tcase_add_test(tc, test_libev_watcher);
	tcase_add_test(tc, test_eoi_backoff);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
