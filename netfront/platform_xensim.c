/* SPDX-License-Identifier: MIT */
/* The netfront platform ops for a domU process on xensim (sim/front). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "pvio/netfront_xensim.h"
#include "pvio/xsim_front.h"

_Static_assert(PVIO_NETFRONT_EV_EVTCHN == XSIM_FRONT_EV_EVTCHN &&
	       PVIO_NETFRONT_EV_XS == XSIM_FRONT_EV_XS &&
	       PVIO_NETFRONT_EV_USER == XSIM_FRONT_EV_USER, "wait() bits must agree");

struct pvio_netfront_xensim {
	struct xsim_front *front;
	struct pvio_netfront *nf;
	char dir[128];
};

/* Frame data with libc's memcpy (this platform is a Linux process). */
static void copy_data(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	memcpy(dst, src, n);
}

static void release(struct pvio_netfront_xensim *x)
{
	xsim_front_close(x->front);
	free(x);
}

int pvio_netfront_xensim_open(unsigned vif, const struct pvio_netfront_config *cfg,
			      struct pvio_netfront_xensim **out)
{
	struct pvio_netfront_ops o = {
		.zalloc = xsim_front_zalloc,
		.free = xsim_front_free,
		.page_alloc = xsim_front_page_alloc,
		.page_free = xsim_front_page_free,
		.grant = xsim_front_grant,
		.end_grant = xsim_front_end_grant,
		.evtchn_alloc = xsim_front_evtchn_alloc,
		.evtchn_notify = xsim_front_evtchn_notify,
		.evtchn_close = xsim_front_evtchn_close,
		.xs_read = xsim_front_xs_read,
		.xs_write_many = xsim_front_xs_write_many,
		.xs_watch = xsim_front_xs_watch,
		.xs_unwatch = xsim_front_xs_unwatch,
		.wait = xsim_front_wait,
		.now_ms = xsim_front_now_ms,
		.copy = copy_data,
	};
	struct pvio_netfront_config c = { 0 };
	struct pvio_netfront_xensim *x;
	struct xs_handle *xs;
	char *dompath = NULL, path[160];
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	err = xsim_front_open("pvio-netfront", &x->front);
	if (err)
		goto fail;
	xs = xsim_front_xs(x->front);
	dompath = xs_get_domain_path(xs, xsim_front_domid(x->front));
	if (!dompath) {
		err = -ENOENT;
		goto fail;
	}
	snprintf(x->dir, sizeof(x->dir), "%s/device/vif/%u", dompath, vif);
	snprintf(path, sizeof(path), "%s/backend", x->dir);
	{
		unsigned int len;
		char *b = xs_read(xs, XBT_NULL, path, &len);
		if (!b) {
			err = -ENOENT; /* no such device in this domain */
			goto fail;
		}
		free(b);
	}
	if (cfg)
		c = *cfg;
	c.frontend_dir = x->dir;
	o.ctx = x->front;
	err = pvio_netfront_open(&o, &c, &x->nf);
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
	return x->nf;
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
	err = pvio_netfront_close(x->nf);
	release(x);
	return err;
}

void pvio_netfront_xensim_set_user_fd(struct pvio_netfront_xensim *x, int fd)
{
	xsim_front_set_user_fd(x->front, fd);
}
