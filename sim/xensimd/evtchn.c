/* SPDX-License-Identifier: MIT */
/*
 * Event channels. A port belongs to one domain and to the connection (the
 * xenevtchn handle) that bound it; its eventfd is that process's. Notifying
 * is done by the sender writing the peer's eventfd directly (one syscall, as
 * EVTCHNOP_send is one hypercall), so we only broker binding and closing.
 * The per-port state word in the domain's ctl page lets a sender see that its
 * peer changed without asking us.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "xensimd.h"

static void publish(struct xsd_dom *d, uint32_t port)
{
	struct xsd_port *p = &d->ports[port];

	p->epoch++;
	/* Release: a reader that sees the new epoch also sees the new state. */
	__atomic_store_n(&d->ctl->evt_state[port], (p->epoch << 8) | p->state,
			 __ATOMIC_RELEASE);
}

static void kick(int efd)
{
	uint64_t one = 1;

	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only on counter overflow: already pending */
	}
}

static int alloc_port(struct xsd_dom *d, uint32_t *port)
{
	/* port 0 is never valid, as in Xen */
	for (uint32_t p = 1; p < XSIM_NR_PORTS; p++)
		if (d->ports[p].state == XSIM_EVT_CLOSED) {
			*port = p;
			return 0;
		}
	return -ENOSPC;
}

int xsd_evt_alloc_unbound(struct xsd *x, struct xsd_conn *c, uint32_t rdom, int efd,
			  uint32_t *port)
{
	struct xsd_dom *d = xsd_dom_find(x, c->domid);
	struct xsd_port *p;
	int err;

	if (!d)
		return -ESRCH;
	if (rdom == DOMID_SELF)
		rdom = c->domid;
	if (!xsd_dom_find(x, rdom))
		return -ESRCH;
	err = alloc_port(d, port);
	if (err)
		return err;
	p = &d->ports[*port];
	p->state = XSIM_EVT_UNBOUND;
	p->rdom = rdom;
	p->rport = 0;
	p->efd = efd;
	p->owner = c;
	publish(d, *port);
	return 0;
}

int xsd_evt_bind_interdomain(struct xsd *x, struct xsd_conn *c, uint32_t rdom, uint32_t rport,
			     int efd, uint32_t *port, int *peer_efd)
{
	struct xsd_dom *ld = xsd_dom_find(x, c->domid), *rd;
	struct xsd_port *lp, *rp;
	int err;

	if (!ld)
		return -ESRCH;
	if (rdom == DOMID_SELF)
		rdom = c->domid;
	rd = xsd_dom_find(x, rdom);
	if (!rd)
		return -ESRCH;
	if (rport == 0 || rport >= XSIM_NR_PORTS)
		return -EINVAL;
	rp = &rd->ports[rport];
	/* The remote port must be unbound and offered to us. */
	if (rp->state != XSIM_EVT_UNBOUND || rp->rdom != c->domid)
		return -EINVAL;
	err = alloc_port(ld, port);
	if (err)
		return err;
	lp = &ld->ports[*port];
	lp->state = XSIM_EVT_INTERDOMAIN;
	lp->rdom = rdom;
	lp->rport = rport;
	lp->efd = efd;
	lp->owner = c;
	rp->state = XSIM_EVT_INTERDOMAIN;
	rp->rport = *port;
	publish(ld, *port);
	publish(rd, rport);
	*peer_efd = rp->efd;
	/* Events sent to the unbound port were lost; like Xen, set the new
	 * local port pending so the binder looks at the ring once. */
	kick(efd);
	return 0;
}

int xsd_evt_peer(struct xsd *x, struct xsd_conn *c, uint32_t port, struct xsim_evt_peer *out,
		 int *peer_efd)
{
	struct xsd_dom *d = xsd_dom_find(x, c->domid);
	struct xsd_port *p;

	*peer_efd = -1;
	if (!d)
		return -ESRCH;
	if (port == 0 || port >= XSIM_NR_PORTS)
		return -EINVAL;
	p = &d->ports[port];
	if (p->state == XSIM_EVT_CLOSED || p->owner != c)
		return -EINVAL;
	out->state = p->state;
	out->epoch = p->epoch;
	out->remote_dom = p->rdom;
	out->remote_port = p->rport;
	if (p->state == XSIM_EVT_INTERDOMAIN) {
		struct xsd_dom *rd = xsd_dom_find(x, p->rdom);
		if (rd)
			*peer_efd = rd->ports[p->rport].efd;
	}
	return 0;
}

void xsd_evt_close_port(struct xsd *x, struct xsd_dom *d, uint32_t port)
{
	struct xsd_port *p = &d->ports[port];

	if (p->state == XSIM_EVT_INTERDOMAIN) {
		struct xsd_dom *rd = xsd_dom_find_any(x, p->rdom);
		if (rd && rd->ports[p->rport].state == XSIM_EVT_INTERDOMAIN &&
		    rd->ports[p->rport].rport == port && rd->ports[p->rport].rdom == d->id) {
			/* As in Xen the peer's port falls back to unbound (still
			 * offered to us); we also raise it, so the peer wakes up
			 * and sees the close instead of waiting forever. */
			struct xsd_port *q = &rd->ports[p->rport];
			q->state = XSIM_EVT_UNBOUND;
			q->rport = 0;
			publish(rd, p->rport);
			kick(q->efd);
		}
	}
	if (p->efd >= 0)
		close(p->efd);
	p->efd = -1;
	p->state = XSIM_EVT_CLOSED;
	p->rdom = p->rport = 0;
	p->owner = NULL;
	publish(d, port);
}

int xsd_evt_send(struct xsd *x, struct xsd_conn *c, uint32_t port)
{
	struct xsd_dom *d = xsd_dom_find(x, c->domid), *rd;
	struct xsd_port *p;

	if (!d || port == 0 || port >= XSIM_NR_PORTS)
		return -EINVAL;
	p = &d->ports[port];
	if (p->state == XSIM_EVT_CLOSED)
		return -EINVAL;
	/* Xen drops a send on an unbound port silently. */
	if (p->state == XSIM_EVT_INTERDOMAIN && (rd = xsd_dom_find(x, p->rdom)))
		kick(rd->ports[p->rport].efd);
	return 0;
}

int xsd_evt_unbind(struct xsd *x, struct xsd_conn *c, uint32_t port)
{
	struct xsd_dom *d = xsd_dom_find_any(x, c->domid);

	if (!d || port == 0 || port >= XSIM_NR_PORTS)
		return -EINVAL;
	if (d->ports[port].state == XSIM_EVT_CLOSED || d->ports[port].owner != c)
		return -EINVAL;
	xsd_evt_close_port(x, d, port);
	return 0;
}

void xsd_evt_release_conn(struct xsd *x, struct xsd_conn *c)
{
	struct xsd_dom *d = xsd_dom_find_any(x, c->domid);

	if (!d)
		return;
	for (uint32_t p = 1; p < XSIM_NR_PORTS; p++)
		if (d->ports[p].state != XSIM_EVT_CLOSED && d->ports[p].owner == c)
			xsd_evt_close_port(x, d, p);
}
