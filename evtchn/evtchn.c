/* SPDX-License-Identifier: MIT */
/* Event-channel handlers and dispatch on top of the libxenevtchn API. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <ev.h>

#include "pvio-config.h"
#include "pvio/evtchn.h"
#if PVIO_XEN_SIM
#include "client.h"
#endif

#define MAX_PORTS 4096u   /* 2-level ABI on 64-bit guests */

struct handler {
	pvio_evtchn_handler *fn;
	void *arg;
	int bound;
	int late_eoi;	/* the handler unmasks, not dispatch */
};

struct pvio_evtchn {
	xenevtchn_handle *xce;
	ev_io io;
	struct ev_loop *loop;
	struct handler h[MAX_PORTS];
};

int pvio_evtchn_open(struct pvio_evtchn **out)
{
	struct pvio_evtchn *e = calloc(1, sizeof(*e));
	int saved = errno, err, fl;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->xce = xenevtchn_open(NULL, 0);
	if (!e->xce) {
		err = -errno;
		free(e);
		errno = saved;
		return err;
	}
	/* pending() must never block a dispatcher */
	fl = fcntl(xenevtchn_fd(e->xce), F_GETFL);
	if (fl < 0 || fcntl(xenevtchn_fd(e->xce), F_SETFL, fl | O_NONBLOCK) < 0) {
		err = -errno;
		xenevtchn_close(e->xce);
		free(e);
		errno = saved;
		return err;
	}
	*out = e;
	return 0;
}

void pvio_evtchn_close(struct pvio_evtchn *e)
{
	if (!e)
		return;
	pvio_evtchn_ev_stop(e);
	for (unsigned p = 1; p < MAX_PORTS; p++)
		if (e->h[p].bound)
			xenevtchn_unbind(e->xce, p);
	xenevtchn_close(e->xce);
	free(e);
}

xenevtchn_handle *pvio_evtchn_xen(struct pvio_evtchn *e) { return e->xce; }
int pvio_evtchn_fd(struct pvio_evtchn *e) { return xenevtchn_fd(e->xce); }

static int bound(struct pvio_evtchn *e, int port, pvio_evtchn_handler *fn, void *arg)
{
	if (port < 0)
		return -errno;
	if ((unsigned)port >= MAX_PORTS) {
		xenevtchn_unbind(e->xce, (evtchn_port_t)port);
		return -ERANGE;
	}
	e->h[port] = (struct handler){ fn, arg, 1, 0 };
	return port;
}

int pvio_evtchn_alloc_unbound(struct pvio_evtchn *e, uint32_t remote, pvio_evtchn_handler *fn,
			      void *arg)
{
	int saved = errno, r;

	r = bound(e, xenevtchn_bind_unbound_port(e->xce, remote), fn, arg);
	errno = saved;
	return r;
}

int pvio_evtchn_bind_interdomain(struct pvio_evtchn *e, uint32_t remote, evtchn_port_t remote_port,
				 pvio_evtchn_handler *fn, void *arg)
{
	int saved = errno, r;

	r = bound(e, xenevtchn_bind_interdomain(e->xce, remote, remote_port), fn, arg);
	errno = saved;
	return r;
}

int pvio_evtchn_set_handler(struct pvio_evtchn *e, evtchn_port_t port, pvio_evtchn_handler *fn,
			    void *arg)
{
	if (port >= MAX_PORTS || !e->h[port].bound)
		return -EINVAL;
	e->h[port].fn = fn;
	e->h[port].arg = arg;
	return 0;
}

int pvio_evtchn_set_late_eoi(struct pvio_evtchn *e, evtchn_port_t port, int on)
{
	if (port >= MAX_PORTS || !e->h[port].bound)
		return -EINVAL;
	e->h[port].late_eoi = on != 0;
	return 0;
}

int pvio_evtchn_unmask(struct pvio_evtchn *e, evtchn_port_t port)
{
	int saved = errno, err = 0;

	if (port >= MAX_PORTS || !e->h[port].bound)
		return -EINVAL;
	if (xenevtchn_unmask(e->xce, port) < 0)
		err = -errno;
	errno = saved;
	return err;
}

int pvio_evtchn_unbind(struct pvio_evtchn *e, evtchn_port_t port)
{
	int saved = errno, err = 0;

	if (port >= MAX_PORTS || !e->h[port].bound)
		return -EINVAL;
	e->h[port].bound = 0;
	if (xenevtchn_unbind(e->xce, port) < 0)
		err = -errno;
	errno = saved;
	return err;
}

int pvio_evtchn_notify(struct pvio_evtchn *e, evtchn_port_t port)
{
	int saved = errno, err = 0;

	if (xenevtchn_notify(e->xce, port) < 0)
		err = -errno;
	errno = saved;
	return err;
}

int pvio_evtchn_dispatch(struct pvio_evtchn *e)
{
	int saved = errno, n = 0;

	for (;;) {
		int port = xenevtchn_pending(e->xce);

		if (port < 0)
			break;
		n++;
		if ((unsigned)port >= MAX_PORTS || !e->h[port].bound)
			continue;  /* unbound meanwhile: stays masked, nothing to do */
		/* Unmask before handling: a later event is then re-raised.
		 * A late-EOI port stays masked: its handler unmasks. */
		if (!e->h[port].late_eoi)
			xenevtchn_unmask(e->xce, (evtchn_port_t)port);
		if (e->h[port].fn)
			e->h[port].fn(e, (evtchn_port_t)port, e->h[port].arg);
	}
	errno = saved;
	return n;
}

int pvio_evtchn_wait(struct pvio_evtchn *e, int timeout_ms)
{
	struct pollfd pfd = { .fd = xenevtchn_fd(e->xce), .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	return pvio_evtchn_dispatch(e);
}

#if PVIO_XEN_SIM
/* Defined in evtchn_sim.c: the state xensimd reports for a port of ours. */
int pvio_evtchn_sim_state(xenevtchn_handle *h, evtchn_port_t port);
#endif

int pvio_evtchn_state(struct pvio_evtchn *e, evtchn_port_t port)
{
#if PVIO_XEN_SIM
	return pvio_evtchn_sim_state(e->xce, port);
#else
	(void)e;
	(void)port;
	return -ENOSYS;  /* needs xc_evtchn_status from libxenctrl */
#endif
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pvio_evtchn *e = (struct pvio_evtchn *)((char *)w - offsetof(struct pvio_evtchn, io));

	(void)loop;
	(void)revents;
	pvio_evtchn_dispatch(e);
}

int pvio_evtchn_ev_start(struct pvio_evtchn *e, struct ev_loop *loop)
{
	if (e->loop)
		return -EBUSY;
	e->loop = loop;
	ev_io_init(&e->io, io_cb, xenevtchn_fd(e->xce), EV_READ);
	ev_io_start(loop, &e->io);
	return 0;
}

void pvio_evtchn_ev_stop(struct pvio_evtchn *e)
{
	if (!e->loop)
		return;
	ev_io_stop(e->loop, &e->io);
	e->loop = NULL;
}
