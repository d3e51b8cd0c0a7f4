/* SPDX-License-Identifier: MIT */
/*
 * The libxenevtchn API on xensim, with Linux /dev/xen/evtchn semantics:
 * a port delivered by xenevtchn_pending() stays masked until
 * xenevtchn_unmask(); events raised meanwhile are latched, not lost.
 *
 * Each bound port has an eventfd (the "pending bit") registered with
 * EPOLLONESHOT in the handle's epoll fd (what xenevtchn_fd() returns):
 * one-shot delivery is exactly mask-on-deliver, and re-arming it is unmask.
 * A notify writes the peer's eventfd directly — one syscall, as
 * EVTCHNOP_send is one hypercall. xensimd publishes a per-port epoch in the
 * domain's ctl page; when it moves (peer bound, closed or gone) the next
 * notify asks xensimd for the new peer first.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <xenevtchn.h>

#include "client.h"

struct lport {
	int efd;                   /* our pending bit; -1: not bound here */
	int peer_fd;               /* the peer's eventfd, or -1 */
	uint32_t epoch;            /* ctl epoch peer_fd belongs to */
};

struct xenevtchn_handle {
	struct xsim_conn conn;
	int epfd;
	const struct xsim_ctl *ctl;
	pthread_mutex_t lock;
	/* O_NONBLOCK seen on epfd: pending() stops asking (an F_GETFL per
	 * empty look was a sixth of a dispatcher's system calls).  Every user
	 * sets it once and keeps it; clearing it again is not noticed. */
	bool nonblock;
	/* Ports one epoll_wait delivered and pending() has not returned yet
	 * (each already disarmed, i.e. masked); drained: that wait returned
	 * fewer than it could, so in non-blocking mode the next empty look
	 * can say EAGAIN without another epoll_wait (an event arriving since
	 * keeps the epoll fd readable: the caller's loop comes back). */
	struct epoll_event evbuf[8];
	unsigned ev_n, ev_i;
	bool drained;
	struct lport ports[XSIM_NR_PORTS];
};

static int fail(int err)
{
	errno = err < 0 ? -err : err;
	return -1;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger, unsigned open_flags)
{
	xenevtchn_handle *h;
	int err;

	(void)logger;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	for (unsigned i = 0; i < XSIM_NR_PORTS; i++)
		h->ports[i].efd = h->ports[i].peer_fd = -1;
	err = xsim_connect(xsim_self_domid(), &h->conn);
	if (err)
		goto fail_free;
	h->ctl = xsim_map_fd(h->conn.ctl_fd, h->conn.ctl_size, 0);
	if (!h->ctl) {
		err = -ENOMEM;
		goto fail_conn;
	}
	h->epfd = epoll_create1(open_flags & XENEVTCHN_NO_CLOEXEC ? 0 : EPOLL_CLOEXEC);
	if (h->epfd < 0) {
		err = -errno;
		goto fail_ctl;
	}
	pthread_mutex_init(&h->lock, NULL);
	return h;
fail_ctl:
	munmap((void *)h->ctl, h->conn.ctl_size);
fail_conn:
	xsim_disconnect(&h->conn);
fail_free:
	free(h);
	errno = -err;
	return NULL;
}

static void drop_port(xenevtchn_handle *h, evtchn_port_t port)
{
	struct lport *p = &h->ports[port];

	if (p->efd >= 0) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, p->efd, NULL);
		close(p->efd);
	}
	if (p->peer_fd >= 0)
		close(p->peer_fd);
	p->efd = p->peer_fd = -1;
}

int xenevtchn_close(xenevtchn_handle *h)
{
	if (!h)
		return 0;
	for (unsigned i = 0; i < XSIM_NR_PORTS; i++)
		if (h->ports[i].efd >= 0)
			drop_port(h, i);
	close(h->epfd);
	munmap((void *)h->ctl, h->conn.ctl_size);
	/* xensimd closes our ports when the connection goes; peers see it */
	xsim_disconnect(&h->conn);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return 0;
}

int xenevtchn_fd(xenevtchn_handle *h)
{
	return h->epfd;
}

static uint32_t ctl_epoch(xenevtchn_handle *h, evtchn_port_t port)
{
	/* Acquire: pairs with xensimd's release store of the state word. */
	return __atomic_load_n(&h->ctl->evt_state[port], __ATOMIC_ACQUIRE) >> 8;
}

static int add_port(xenevtchn_handle *h, evtchn_port_t port, int efd, int peer_fd,
		    uint32_t epoch)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = port };
	struct lport *p = &h->ports[port];

	if (port == 0 || port >= XSIM_NR_PORTS || p->efd >= 0)
		return -EPROTO;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, efd, &ev) < 0)
		return -errno;
	p->efd = efd;
	p->peer_fd = peer_fd;
	p->epoch = epoch;
	return 0;
}

static xenevtchn_port_or_error_t bind_port(xenevtchn_handle *h, uint32_t op, const uint32_t *body,
				      size_t len)
{
	uint32_t port = 0;
	size_t rl;
	int efd, peer = -1, nfds = 0, err;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -1;
	pthread_mutex_lock(&h->lock);
	err = xsim_call(&h->conn, op, body, len, efd, &port, sizeof(port), &rl, &peer, 1, &nfds);
	if (!err && rl != sizeof(port))
		err = -EPROTO;
	if (!err)
		err = add_port(h, port, efd, nfds ? peer : -1,
			       op == XSIM_EVT_BIND_INTERDOMAIN ? ctl_epoch(h, port) : (uint32_t)-1);
	pthread_mutex_unlock(&h->lock);
	if (err) {
		close(efd);
		if (nfds)
			close(peer);
		return fail(err);
	}
	return (xenevtchn_port_or_error_t)port;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *h, uint32_t domid)
{
	return bind_port(h, XSIM_EVT_ALLOC_UNBOUND, &domid, 4);
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *h, uint32_t domid,
						     evtchn_port_t remote_port)
{
	uint32_t body[2] = { domid, remote_port };

	return bind_port(h, XSIM_EVT_BIND_INTERDOMAIN, body, sizeof(body));
}

int xenevtchn_unbind(xenevtchn_handle *h, evtchn_port_t port)
{
	int err;

	if (port == 0 || port >= XSIM_NR_PORTS)
		return fail(-EINVAL);
	pthread_mutex_lock(&h->lock);
	if (h->ports[port].efd < 0) {
		pthread_mutex_unlock(&h->lock);
		return fail(-EINVAL);
	}
	err = xsim_call(&h->conn, XSIM_EVT_UNBIND, &port, 4, -1, NULL, 0, NULL, NULL, 0, NULL);
	drop_port(h, port);
	pthread_mutex_unlock(&h->lock);
	return err ? fail(err) : 0;
}

/* Ask xensimd who our peer is now. Called with the lock held. */
static int refresh_peer(xenevtchn_handle *h, evtchn_port_t port)
{
	struct lport *p = &h->ports[port];
	struct xsim_evt_peer info;
	size_t rl;
	int fd = -1, nfds = 0, err;

	err = xsim_call(&h->conn, XSIM_EVT_PEER, &port, 4, -1, &info, sizeof(info), &rl, &fd, 1,
			&nfds);
	if (!err && rl != sizeof(info))
		err = -EPROTO;
	if (err) {
		if (nfds)
			close(fd);
		return err;
	}
	if (p->peer_fd >= 0)
		close(p->peer_fd);
	p->peer_fd = nfds ? fd : -1;
	p->epoch = info.epoch;
	return 0;
}

int xenevtchn_notify(xenevtchn_handle *h, evtchn_port_t port)
{
	static const uint64_t one = 1;
	struct lport *p;
	int err = 0;

	if (port == 0 || port >= XSIM_NR_PORTS)
		return fail(-EINVAL);
	pthread_mutex_lock(&h->lock);
	p = &h->ports[port];
	if (p->efd < 0) {
		err = -EINVAL;
	} else {
		if (ctl_epoch(h, port) != p->epoch)
			err = refresh_peer(h, port);
		/* No peer (unbound, or the peer closed): dropped, as Xen does. */
		if (!err && p->peer_fd >= 0 && write(p->peer_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			err = -errno;
	}
	pthread_mutex_unlock(&h->lock);
	return err ? fail(err) : 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *h)
{
	struct epoll_event ev;
	uint64_t cnt;
	int n;

	pthread_mutex_lock(&h->lock);
	if (h->ev_i < h->ev_n) {
		ev = h->evbuf[h->ev_i++];
		goto deliver;
	}
	if (h->drained && __atomic_load_n(&h->nonblock, __ATOMIC_RELAXED)) {
		h->drained = false;
		pthread_mutex_unlock(&h->lock);
		return fail(-EAGAIN);
	}
	h->drained = false;
	n = epoll_wait(h->epfd, h->evbuf, (int)(sizeof(h->evbuf) / sizeof(h->evbuf[0])), 0);
	if (n > 0) {
		h->ev_n = (unsigned)n;
		h->ev_i = 1;
		h->drained = (unsigned)n < sizeof(h->evbuf) / sizeof(h->evbuf[0]);
		ev = h->evbuf[0];
		goto deliver;
	}
	pthread_mutex_unlock(&h->lock);
	if (n == 0) {
		/* Like a read of /dev/xen/evtchn: block unless O_NONBLOCK. */
		if (!__atomic_load_n(&h->nonblock, __ATOMIC_RELAXED)) {
			int fl = fcntl(h->epfd, F_GETFL);
			if (fl >= 0 && (fl & O_NONBLOCK))
				__atomic_store_n(&h->nonblock, true, __ATOMIC_RELAXED);
		}
		if (__atomic_load_n(&h->nonblock, __ATOMIC_RELAXED))
			return fail(-EAGAIN);
		do
			n = epoll_wait(h->epfd, &ev, 1, -1);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0)
		return -1;
	pthread_mutex_lock(&h->lock);
deliver:
	if (ev.data.u32 < XSIM_NR_PORTS && h->ports[ev.data.u32].efd >= 0 &&
	    read(h->ports[ev.data.u32].efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: the count was consumed already; still a delivery */
	}
	pthread_mutex_unlock(&h->lock);
	return (xenevtchn_port_or_error_t)ev.data.u32;
}

int xenevtchn_unmask(xenevtchn_handle *h, evtchn_port_t port)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u32 = port };
	int err = 0;

	if (port == 0 || port >= XSIM_NR_PORTS)
		return fail(-EINVAL);
	pthread_mutex_lock(&h->lock);
	if (h->ports[port].efd < 0)
		err = -EINVAL;
	else if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->ports[port].efd, &ev) < 0)
		err = -errno;
	pthread_mutex_unlock(&h->lock);
	return err ? fail(err) : 0;
}

/* pvio extension: EVTCHNOP_status for a port bound through @h. */
int pvio_evtchn_sim_state(xenevtchn_handle *h, evtchn_port_t port);
int pvio_evtchn_sim_state(xenevtchn_handle *h, evtchn_port_t port)
{
	struct xsim_evt_peer info;
	size_t rl;
	int fd = -1, nfds = 0, err;

	if (port == 0 || port >= XSIM_NR_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	err = xsim_call(&h->conn, XSIM_EVT_PEER, &port, 4, -1, &info, sizeof(info), &rl, &fd, 1,
			&nfds);
	pthread_mutex_unlock(&h->lock);
	if (nfds)
		close(fd);
	if (err)
		return err;
	return rl == sizeof(info) ? (int)info.state : -EPROTO;
}
