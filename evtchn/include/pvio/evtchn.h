/* SPDX-License-Identifier: MIT */
/*
 * pvio/evtchn.h — event channels with handlers, for guests and daemons.
 *
 * Built on the libxenevtchn API (<xenevtchn.h>): pvio's implementation on
 * xensim, or Debian's real library with -Dxen=system. A struct pvio_evtchn
 * owns one xenevtchn handle (non-blocking) and a handler per port.
 * pvio_evtchn_dispatch() delivers every pending port: it unmasks the port
 * first and then calls its handler, so an event raised while the handler runs
 * is delivered again rather than lost; handlers therefore re-check their ring
 * (final-check-for-more) and tolerate spurious calls.  A port in late-EOI
 * mode (pvio_evtchn_set_late_eoi) is not unmasked by dispatch: its handler
 * decides when it wants the next event (pvio_evtchn_unmask), which is how a
 * backend bounds what a peer flooding it with events costs (XSA-332).
 *
 * Functions return 0 (or a count/port) or a negative errno and leave errno
 * alone. A struct pvio_evtchn is used by one thread at a time.
 */
#ifndef PVIO_EVTCHN_H
#define PVIO_EVTCHN_H

#include <stdint.h>
#include <xenevtchn.h>

struct pvio_evtchn;
struct ev_loop;

typedef void pvio_evtchn_handler(struct pvio_evtchn *e, evtchn_port_t port, void *arg);

/* Open a handle for this process's domain. */
int pvio_evtchn_open(struct pvio_evtchn **out);
/* Unbind every port (peers see them close) and free. */
void pvio_evtchn_close(struct pvio_evtchn *e);
/* The underlying handle, for code that wants the raw API. */
xenevtchn_handle *pvio_evtchn_xen(struct pvio_evtchn *e);
/* A file descriptor that polls readable when a port is pending. */
int pvio_evtchn_fd(struct pvio_evtchn *e);

/* Guest/frontend: allocate a port that domain @remote may bind. Returns the port. */
int pvio_evtchn_alloc_unbound(struct pvio_evtchn *e, uint32_t remote, pvio_evtchn_handler *fn,
			      void *arg);
/* Backend: bind to @remote_port of domain @remote. Returns the local port. */
int pvio_evtchn_bind_interdomain(struct pvio_evtchn *e, uint32_t remote, evtchn_port_t remote_port,
				 pvio_evtchn_handler *fn, void *arg);
/* Replace the handler of a bound port. -EINVAL if it is not bound here. */
int pvio_evtchn_set_handler(struct pvio_evtchn *e, evtchn_port_t port, pvio_evtchn_handler *fn,
			    void *arg);
/* Close a port. The peer's end falls back to unbound and is raised once. */
int pvio_evtchn_unbind(struct pvio_evtchn *e, evtchn_port_t port);
/* Raise the peer. A port whose peer has gone drops it silently, as on Xen. */
int pvio_evtchn_notify(struct pvio_evtchn *e, evtchn_port_t port);

/*
 * Late EOI (Linux's xen_irq_lateeoi, the XSA-332 fix): with @on, dispatch
 * leaves @port masked when it delivers it, and the handler (or a timer,
 * later) calls pvio_evtchn_unmask() once it wants further events; events
 * raised meanwhile are latched and delivered once on unmask.  -EINVAL if
 * @port is not bound here.
 */
int pvio_evtchn_set_late_eoi(struct pvio_evtchn *e, evtchn_port_t port, int on);
/* Unmask @port (the end of a late-EOI handler's work). 0 or -errno. */
int pvio_evtchn_unmask(struct pvio_evtchn *e, evtchn_port_t port);

/* Deliver all pending ports now. Returns how many were delivered. */
int pvio_evtchn_dispatch(struct pvio_evtchn *e);
/* Wait up to @timeout_ms (-1: forever) for an event, then dispatch.
 * Returns the number delivered (0 on timeout). */
int pvio_evtchn_wait(struct pvio_evtchn *e, int timeout_ms);

enum pvio_evtchn_state {
	PVIO_EVTCHN_CLOSED = 0,
	PVIO_EVTCHN_UNBOUND = 1,
	PVIO_EVTCHN_INTERDOMAIN = 2,
};
/* The port's state as the hypervisor sees it (EVTCHNOP_status): tells a
 * driver that its peer closed. -ENOSYS where the platform cannot say. */
int pvio_evtchn_state(struct pvio_evtchn *e, evtchn_port_t port);

/* libev integration for daemons: dispatch from @loop whenever the fd is
 * readable. The watcher lives inside @e; stop it before closing @e. */
int pvio_evtchn_ev_start(struct pvio_evtchn *e, struct ev_loop *loop);
void pvio_evtchn_ev_stop(struct pvio_evtchn *e);

#endif
