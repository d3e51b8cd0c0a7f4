/* SPDX-License-Identifier: MIT */
/*
 * What the xensim CLI's device commands (xensim_vbd.c, xensim_vif.c) share:
 * the toolstack's generic device steps from libxl_device.c — the three
 * records a device has (backend, frontend, libxl's own), written in one
 * transaction with libxl__device_generic_add's permissions; the detach
 * sequence of libxl__initiate_device_generic_remove (online=0, state=5,
 * wait for Closed on a watch, remove); and small xenstore/JSON helpers.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xensim_cli.h"

#define die xsim_cli_die

enum { XB_CLOSED = 6 };

void xsim_dev_paths(struct xsim_dev_paths *p, const char *bkind, const char *fkind, uint32_t domid,
		    long devid)
{
	snprintf(p->back, sizeof(p->back), "/local/domain/0/backend/%s/%u/%ld", bkind, domid, devid);
	snprintf(p->front, sizeof(p->front), "/local/domain/%u/device/%s/%ld", domid, fkind, devid);
	snprintf(p->libxl, sizeof(p->libxl), "/libxl/%u/device/%s/%ld", domid, fkind, devid);
}

char *xsim_xs_get(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
	unsigned int len;

	return xs_read(xs, t, path, &len);
}

bool xsim_xs_exists(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
	char *v = xsim_xs_get(xs, t, path);

	free(v);
	return v != NULL;
}

char *xsim_xs_key(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xsim_xs_get(xs, XBT_NULL, path);
}

static bool tx_write(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
		     const char *val)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_write(xs, t, path, val, (unsigned int)strlen(val));
}

/* mkdir DIR with PERMS and write KVS under it (NULL values skipped); new
 * keys inherit DIR's perms from xenstored, which is how libxl__xs_writev
 * leaves them. */
static bool tx_dir(struct xs_handle *xs, xs_transaction_t t, const char *dir,
		   struct xs_permissions *perms, unsigned nperms, const struct xsim_kv *kvs, size_t n)
{
	if (!xs_mkdir(xs, t, dir) || !xs_set_permissions(xs, t, dir, perms, nperms))
		return false;
	for (size_t i = 0; i < n; i++)
		if (kvs[i].val && !tx_write(xs, t, dir, kvs[i].key, kvs[i].val))
			return false;
	return true;
}

bool xsim_dev_write(struct xs_handle *xs, xs_transaction_t t, const struct xsim_dev_paths *p,
		    uint32_t domid, const struct xsim_kv *front, size_t nfront,
		    const struct xsim_kv *back, size_t nback)
{
	const struct xsim_kv lib[] = {
		{ "frontend", p->front },
		{ "backend", p->back },
	};
	/* libxl__device_generic_add's permissions */
	struct xs_permissions fperm[2] = { { domid, XS_PERM_NONE }, { 0, XS_PERM_READ } };
	struct xs_permissions bperm[2] = { { 0, XS_PERM_NONE }, { domid, XS_PERM_READ } };
	struct xs_permissions lperm[1] = { { 0, XS_PERM_NONE } };

	return tx_dir(xs, t, p->front, fperm, 2, front, nfront) &&
	       tx_dir(xs, t, p->back, bperm, 2, back, nback) &&
	       tx_dir(xs, t, p->libxl, lperm, 1, lib, sizeof(lib) / sizeof(lib[0]));
}

void xsim_dev_close(struct xs_handle *xs, const char *back)
{
	char path[192];

	for (int tries = 0; tries < XSIM_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		char *st;

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		if (!xsim_xs_exists(xs, t, back)) {
			xs_transaction_end(xs, t, true);
			return;
		}
		snprintf(path, sizeof(path), "%s/state", back);
		st = xsim_xs_get(xs, t, path);
		if (!st || atoi(st) != XB_CLOSED) {
			if (!tx_write(xs, t, back, "online", "0") || !tx_write(xs, t, back, "state", "5")) {
				int e = errno;
				free(st);
				xs_transaction_end(xs, t, true);
				die("xenstore write under %s: %s", back, strerror(e));
			}
		}
		free(st);
		if (xs_transaction_end(xs, t, false) || errno != EAGAIN)
			return;
	}
}

void xsim_dev_remove(struct xs_handle *xs, const struct xsim_dev_paths *p)
{
	for (int tries = 0; tries < XSIM_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		xs_rm(xs, t, p->back);
		xs_rm(xs, t, p->front);
		xs_rm(xs, t, p->libxl);
		if (xs_transaction_end(xs, t, false) || errno != EAGAIN)
			return;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Wait until BACK/state reads Closed (6) or the backend dir is gone, on a
 * xenstore watch (no polling loop), at most TIMEOUT seconds. Returns true if
 * the backend answered.
 */
static bool wait_closed(struct xs_handle *xs, const char *back, double timeout)
{
	char path[192];
	double deadline = now_s() + timeout;
	bool done = false;

	snprintf(path, sizeof(path), "%s/state", back);
	if (!xs_watch(xs, path, "dev-detach"))
		die("xenstore watch %s: %s", path, strerror(errno));
	for (;;) {
		char *st = xsim_xs_get(xs, XBT_NULL, path);
		struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };
		double left;
		char **ev;

		/* state gone with its dir counts: the backend cleaned up */
		done = (!st && errno == ENOENT) || (st && atoi(st) == XB_CLOSED);
		free(st);
		if (done)
			break;
		left = deadline - now_s();
		if (left <= 0 || pfd.fd < 0)
			break;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		/* drain what arrived; re-reading the key decides */
		while ((ev = xs_check_watch(xs)))
			free(ev);
	}
	xs_unwatch(xs, path, "dev-detach");
	return done;
}

void xsim_dev_detach(struct xs_handle *xs, const struct xsim_dev_paths *p, bool force, double timeout)
{
	xsim_dev_close(xs, p->back);
	if (!force && xsim_xs_exists(xs, XBT_NULL, p->back) && !wait_closed(xs, p->back, timeout))
		fprintf(stderr, "xensim: no backend closed %s within %g s; removing it anyway\n",
			p->back, timeout);
	xsim_dev_remove(xs, p);
}

int xsim_dev_detach_opts(int argc, char **argv, const char *help, double *timeout, bool *force)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;

	*timeout = XSIM_DETACH_TIMEOUT_S;
	*force = false;
	optind = 1;
	while ((o = getopt_long(argc, argv, "t:fh", opts, NULL)) != -1) {
		switch (o) {
		case 't': {
			char *end;
			*timeout = strtod(optarg, &end);
			if (*end || !(*timeout > 0) || *timeout > 3600)
				die("--timeout takes seconds (0 < SEC <= 3600), not '%s'", optarg);
			break;
		}
		case 'f':
			*force = true;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		default:
			return 2;
		}
	}
	return -1;
}

void xsim_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}
