/* SPDX-License-Identifier: MIT */
/* The blkfront platform ops for a domU process on xensim (sim/front). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "pvio/blkfront_xensim.h"
#include "pvio/xsim_front.h"

_Static_assert(PVIO_BLKFRONT_EV_EVTCHN == XSIM_FRONT_EV_EVTCHN &&
	       PVIO_BLKFRONT_EV_XS == XSIM_FRONT_EV_XS, "wait() bits must agree");

struct pvio_blkfront_xensim {
	struct xsim_front *front;
	struct pvio_blkfront *bf;
	char dir[128];
};

int pvio_blkfront_xensim_parse_vdev(const char *vdev, uint32_t *devid)
{
	char *end;
	unsigned long v;

	if (!vdev || !*vdev)
		return -EINVAL;
	if (!strncmp(vdev, "xvd", 3) && vdev[3] >= 'a' && vdev[3] <= 'z' && !vdev[4]) {
		*devid = (202u << 8) | ((uint32_t)(vdev[3] - 'a') << 4);
		return 0;
	}
	if (vdev[0] < '0' || vdev[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(vdev, &end, 10);
	if (errno || *end || v > 0xffffffffu)
		return -EINVAL;
	*devid = (uint32_t)v;
	return 0;
}

/* I/O data with libc's memcpy (this platform is a Linux process). */
static void copy_data(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	memcpy(dst, src, n);
}

static void release(struct pvio_blkfront_xensim *x)
{
	xsim_front_close(x->front);
	free(x);
}

int pvio_blkfront_xensim_open(const char *vdev, const struct pvio_blkfront_config *cfg,
			      struct pvio_blkfront_xensim **out)
{
	struct pvio_blkfront_ops o = {
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
		.now_us = xsim_front_now_us,
		.copy = copy_data,
		.xs_rm = xsim_front_xs_rm,
	};
	struct pvio_blkfront_config c = { 0 };
	struct pvio_blkfront_xensim *x;
	struct xs_handle *xs;
	char *dompath = NULL, path[160];
	uint32_t devid;
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	err = xsim_front_open("pvio-blkfront", &x->front);
	if (err)
		goto fail;
	xs = xsim_front_xs(x->front);
	dompath = xs_get_domain_path(xs, xsim_front_domid(x->front));
	if (!dompath) {
		err = -ENOENT;
		goto fail;
	}
	if (vdev) {
		err = pvio_blkfront_xensim_parse_vdev(vdev, &devid);
		if (err)
			goto fail;
	} else {
		unsigned num = 0;
		char **ents;

		snprintf(path, sizeof(path), "%s/device/vbd", dompath);
		ents = xs_directory(xs, XBT_NULL, path, &num);
		err = -ENOENT;
		if (ents && num)
			err = pvio_blkfront_xensim_parse_vdev(ents[0], &devid);
		free(ents);
		if (err)
			goto fail;
	}
	snprintf(x->dir, sizeof(x->dir), "%s/device/vbd/%u", dompath, devid);
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
	err = pvio_blkfront_open(&o, &c, &x->bf);
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

struct pvio_blkfront *pvio_blkfront_xensim_dev(struct pvio_blkfront_xensim *x)
{
	return x->bf;
}

void pvio_blkfront_xensim_set_wake_fd(struct pvio_blkfront_xensim *x, int fd)
{
	xsim_front_set_user_fd(x->front, fd);
}

const char *pvio_blkfront_xensim_dir(const struct pvio_blkfront_xensim *x)
{
	return x->dir;
}

int pvio_blkfront_xensim_close(struct pvio_blkfront_xensim *x)
{
	int err;

	if (!x)
		return 0;
	err = pvio_blkfront_close(x->bf);
	release(x);
	return err;
}
