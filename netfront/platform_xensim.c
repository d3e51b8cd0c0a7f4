/* SPDX-License-Identifier: MIT */
/* The netfront platform ops for a domU process on xensim (from blkfront's). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xenstore.h>

#include "pvio/netfront_xensim.h"
#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/xensim.h"

struct pvio_netfront_xensim {
	struct xsim_domain *dom;
	struct xs_handle *xs;
	struct pvio_evtchn *ev;
	struct pvio_netfront *bf;
	int fired; /* our port's handler ran since the last wait */
	int user_fd; /* polled too when >= 0: PVIO_NETFRONT_EV_USER */
	char dir[128];
};

static void *x_zalloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}

static void x_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static int x_page_alloc(void *ctx, unsigned n, void **va, uint64_t *gfn)
{
	struct pvio_netfront_xensim *x = ctx;

	return xsim_pages_alloc(x->dom, n, va, gfn);
}

static void x_page_free(void *ctx, void *va, unsigned n)
{
	struct pvio_netfront_xensim *x = ctx;

	xsim_pages_free(x->dom, va, n);
}

static int x_grant(void *ctx, uint16_t to, uint64_t gfn, bool ro, uint32_t *ref)
{
	struct pvio_netfront_xensim *x = ctx;
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

static int x_end_grant(void *ctx, uint32_t ref)
{
	struct pvio_netfront_xensim *x = ctx;
	grant_ref_t r = ref;
	int err = pvio_gnt_end_access(x->dom, r);

	if (err)
		return err; /* -EBUSY: mapped; ref and page stay out of use */
	pvio_gnt_free_refs(x->dom, 1, &r);
	return 0;
}

static void on_event(struct pvio_evtchn *e, evtchn_port_t port, void *arg)
{
	struct pvio_netfront_xensim *x = arg;

	(void)e;
	(void)port;
	x->fired = 1;
}

static int x_evtchn_alloc(void *ctx, uint16_t remote, uint32_t *port)
{
	struct pvio_netfront_xensim *x = ctx;
	int p = pvio_evtchn_alloc_unbound(x->ev, remote, on_event, x);

	if (p < 0)
		return p;
	*port = (uint32_t)p;
	return 0;
}

static int x_evtchn_notify(void *ctx, uint32_t port)
{
	struct pvio_netfront_xensim *x = ctx;

	return pvio_evtchn_notify(x->ev, port);
}

static void x_evtchn_close(void *ctx, uint32_t port)
{
	struct pvio_netfront_xensim *x = ctx;

	pvio_evtchn_unbind(x->ev, port);
}

static int x_xs_read(void *ctx, const char *path, char *buf, size_t size)
{
	struct pvio_netfront_xensim *x = ctx;
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

static int x_xs_write_many(void *ctx, unsigned n, const char *const *paths,
			   const char *const *vals)
{
	struct pvio_netfront_xensim *x = ctx;

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

static int x_xs_watch(void *ctx, const char *path)
{
	struct pvio_netfront_xensim *x = ctx;

	return xs_watch(x->xs, path, "pvio-netfront") ? 0 : -errno;
}

static void x_xs_unwatch(void *ctx, const char *path)
{
	struct pvio_netfront_xensim *x = ctx;

	xs_unwatch(x->xs, path, "pvio-netfront");
}

static int x_wait(void *ctx, int timeout_ms)
{
	struct pvio_netfront_xensim *x = ctx;
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
			mask |= PVIO_NETFRONT_EV_EVTCHN;
		x->fired = 0;
	}
	if (x->user_fd >= 0 && p[2].revents)
		mask |= PVIO_NETFRONT_EV_USER;
	if (p[1].revents) {
		/* drain: several watch firings mean one re-read */
		while ((w = xs_check_watch(x->xs))) {
			free(w);
			mask |= PVIO_NETFRONT_EV_XS;
		}
	}
	return mask;
}

static uint64_t x_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void release(struct pvio_netfront_xensim *x)
{
	if (x->xs)
		xs_close(x->xs);
	pvio_evtchn_close(x->ev);
	if (x->dom)
		xsim_domain_close(x->dom);
	free(x);
}

int pvio_netfront_xensim_open(unsigned vif, const struct pvio_netfront_config *cfg,
			      struct pvio_netfront_xensim **out)
{
	const struct pvio_netfront_ops ops = {
		.zalloc = x_zalloc,
		.free = x_free,
		.page_alloc = x_page_alloc,
		.page_free = x_page_free,
		.grant = x_grant,
		.end_grant = x_end_grant,
		.evtchn_alloc = x_evtchn_alloc,
		.evtchn_notify = x_evtchn_notify,
		.evtchn_close = x_evtchn_close,
		.xs_read = x_xs_read,
		.xs_write_many = x_xs_write_many,
		.xs_watch = x_xs_watch,
		.xs_unwatch = x_xs_unwatch,
		.wait = x_wait,
		.now_ms = x_now_ms,
	};
	struct pvio_netfront_ops o = ops;
	struct pvio_netfront_config c = { 0 };
	struct pvio_netfront_xensim *x;
	char *dompath = NULL, path[160];
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->user_fd = -1;
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
	dompath = xs_get_domain_path(x->xs, xsim_domain_id(x->dom));
	if (!dompath) {
		err = -ENOENT;
		goto fail;
	}
	snprintf(x->dir, sizeof(x->dir), "%s/device/vif/%u", dompath, vif);
	snprintf(path, sizeof(path), "%s/backend", x->dir);
	{
		unsigned int len;
		char *b = xs_read(x->xs, XBT_NULL, path, &len);
		if (!b) {
			err = -ENOENT; /* no such device in this domain */
			goto fail;
		}
		free(b);
	}
	if (cfg)
		c = *cfg;
	c.frontend_dir = x->dir;
	o.ctx = x;
	err = pvio_netfront_open(&o, &c, &x->bf);
	if (err)
		goto fail;
	free(dompath);
	*out = x;
	return 0;
fail:
	free(dompath);
	release(x);
	return err;
}

struct pvio_netfront *pvio_netfront_xensim_dev(struct pvio_netfront_xensim *x)
{
	return x->bf;
}

const char *pvio_netfront_xensim_dir(const struct pvio_netfront_xensim *x)
{
	return x->dir;
}

int pvio_netfront_xensim_close(struct pvio_netfront_xensim *x)
{
	int err;

	if (!x)
		return 0;
	err = pvio_netfront_close(x->bf);
	release(x);
	return err;
}

void pvio_netfront_xensim_set_user_fd(struct pvio_netfront_xensim *x, int fd)
{
	x->user_fd = fd;
}
