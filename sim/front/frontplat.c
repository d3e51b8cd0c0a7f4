/* SPDX-License-Identifier: MIT */
/*
 * The services every frontend driver needs from its platform, for a domU
 * process on xensim: pages of the domain's RAM, grants, event channels and
 * xenbus through libxenstore. blkfront and netfront build their platform
 * ops tables from these functions (their signatures match the ops members).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xenstore.h>

#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/xensim.h"
#include "pvio/xsim_front.h"

struct xsim_front {
	struct xsim_domain *dom;
	struct xs_handle *xs;
	struct pvio_evtchn *ev;
	int fired;   /* our port's handler ran since the last wait */
	int user_fd; /* polled too when >= 0: XSIM_FRONT_EV_USER */
	char token[32];
};

int xsim_front_open(const char *token, struct xsim_front **out)
{
	struct xsim_front *x = calloc(1, sizeof(*x));
	int err;

	*out = NULL;
	if (!x)
		return -ENOMEM;
	x->user_fd = -1;
	snprintf(x->token, sizeof(x->token), "%s", token);
	err = xsim_domain_open(&x->dom);
	if (err)
		goto fail;
	x->xs = xs_open(0);
	if (!x->xs) {
		err = -errno;
		goto fail;
	}
	err = pvio_evtchn_open(&x->ev);
	if (err)
		goto fail;
	*out = x;
	return 0;
fail:
	xsim_front_close(x);
	return err;
}

void xsim_front_close(struct xsim_front *x)
{
	if (!x)
		return;
	if (x->xs)
		xs_close(x->xs);
	pvio_evtchn_close(x->ev);
	if (x->dom)
		xsim_domain_close(x->dom);
	free(x);
}

struct xs_handle *xsim_front_xs(struct xsim_front *x) { return x->xs; }
uint32_t xsim_front_domid(const struct xsim_front *x) { return xsim_domain_id(x->dom); }
void xsim_front_set_user_fd(struct xsim_front *x, int fd) { x->user_fd = fd; }

void *xsim_front_zalloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}

void xsim_front_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

int xsim_front_page_alloc(void *ctx, unsigned n, void **va, uint64_t *gfn)
{
	struct xsim_front *x = ctx;

	return xsim_pages_alloc(x->dom, n, va, gfn);
}

void xsim_front_page_free(void *ctx, void *va, unsigned n)
{
	struct xsim_front *x = ctx;

	xsim_pages_free(x->dom, va, n);
}

int xsim_front_grant(void *ctx, uint16_t to, uint64_t gfn, bool ro, uint32_t *ref)
{
	struct xsim_front *x = ctx;
	grant_ref_t r;
	int err = pvio_gnt_alloc_refs(x->dom, 1, &r);

	if (err)
		return err;
	err = pvio_gnt_grant_access(x->dom, r, to, gfn, ro);
	if (err) {
		pvio_gnt_free_refs(x->dom, 1, &r);
		return err;
	}
	*ref = r;
	return 0;
}

int xsim_front_end_grant(void *ctx, uint32_t ref)
{
	struct xsim_front *x = ctx;
	grant_ref_t r = ref;
	int err = pvio_gnt_end_access(x->dom, r);

	if (err)
		return err; /* -EBUSY: mapped; ref and page stay out of use */
	pvio_gnt_free_refs(x->dom, 1, &r);
	return 0;
}

static void on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	struct xsim_front *x = arg;

	(void)e;
	(void)port;
	x->fired = 1;
}

int xsim_front_evtchn_alloc(void *ctx, uint16_t remote, uint32_t *port)
{
	struct xsim_front *x = ctx;
	int p = pvio_evtchn_alloc_unbound(x->ev, remote, on_event, x);

	if (p < 0)
		return p;
	*port = (uint32_t)p;
	return 0;
}

int xsim_front_evtchn_notify(void *ctx, uint32_t port)
{
	struct xsim_front *x = ctx;

	return pvio_evtchn_notify(x->ev, port);
}

void xsim_front_evtchn_close(void *ctx, uint32_t port)
{
	struct xsim_front *x = ctx;

	pvio_evtchn_unbind(x->ev, port);
}

int xsim_front_xs_read(void *ctx, const char *path, char *buf, size_t size)
{
	struct xsim_front *x = ctx;
	unsigned int len;
	char *v = xs_read(x->xs, XBT_NULL, path, &len);

	if (!v)
		return errno == ENOENT ? -ENOENT : -(errno ? errno : EIO);
	if (len + 1 > size) {
		free(v);
		return -ENOSPC;
	}
	memcpy(buf, v, len);
	buf[len] = 0;
	/* an embedded NUL would make the value look shorter than it is */
	if (strlen(buf) != len) {
		free(v);
		return -ENOSPC;
	}
	free(v);
	return 0;
}

int xsim_front_xs_write_many(void *ctx, unsigned n, const char *const *paths,
			   const char *const *vals)
{
	struct xsim_front *x = ctx;

	/* One transaction, retried on conflict (EAGAIN), as frontends do. */
	for (;;) {
		xs_transaction_t t = xs_transaction_start(x->xs);

		if (!t)
			return -errno;
		for (unsigned i = 0; i < n; i++)
			if (!xs_write(x->xs, t, paths[i], vals[i], (unsigned)strlen(vals[i]))) {
				int err = -errno;
				xs_transaction_end(x->xs, t, true);
				return err;
			}
		if (xs_transaction_end(x->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

int xsim_front_xs_watch(void *ctx, const char *path)
{
	struct xsim_front *x = ctx;

	return xs_watch(x->xs, path, x->token) ? 0 : -errno;
}

void xsim_front_xs_unwatch(void *ctx, const char *path)
{
	struct xsim_front *x = ctx;

	xs_unwatch(x->xs, path, x->token);
}

int xsim_front_xs_rm(void *ctx, const char *path)
{
	struct xsim_front *x = ctx;

	if (xs_rm(x->xs, XBT_NULL, path) || errno == ENOENT)
		return 0;
	return -errno;
}

int xsim_front_wait(void *ctx, int timeout_ms)
{
	struct xsim_front *x = ctx;
	struct pollfd p[3] = {
		{ .fd = pvio_evtchn_fd(x->ev), .events = POLLIN },
		{ .fd = xs_fileno(x->xs), .events = POLLIN },
		{ .fd = x->user_fd, .events = POLLIN },
	};
	int r, mask = 0;
	char **w;

	if (p[1].fd < 0)
		return -EIO;
	r = poll(p, x->user_fd >= 0 ? 3 : 2, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (p[0].revents) {
		pvio_evtchn_dispatch(x->ev);
		if (x->fired)
			mask |= XSIM_FRONT_EV_EVTCHN;
		x->fired = 0;
	}
	if (p[1].revents) {
		/* drain: several watch firings mean one re-read */
		while ((w = xs_check_watch(x->xs))) {
			free(w);
			mask |= XSIM_FRONT_EV_XS;
		}
	}
	if (x->user_fd >= 0 && p[2].revents)
		mask |= XSIM_FRONT_EV_USER;
	return mask;
}

uint64_t xsim_front_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t xsim_front_now_us(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
