/* SPDX-License-Identifier: MIT */
/*
 * hostile-blkfront: a misbehaving blkif frontend for the isolation test
 * (tests/faults/isolation.sh).  Run inside a guest:
 *
 *   xensim run DOMID -- hostile-blkfront --mode stuck|storm [--vdev DEVID]
 *                                         [--ring-order N] [--seconds S]
 *
 * It connects to its VBD by hand (the vbd handshake of io/blkif.h, a ring
 * of 2^N pages, default 0, native protocol), fills the whole ring with
 * valid 4 KiB reads, pushes them all with one notification (more than one
 * round of the backend's work), and then never consumes a response.  Then, by mode:
 *   stuck  nothing more: a frontend that stopped consuming responses;
 *   storm  notifies the backend's event channel as fast as it can (every
 *          event is spurious: there is never a new request), an event
 *          storm (XSA-332/XSA-391).
 * It prints "ready" once the ring is full and pushed, and at the end
 * (after S seconds, default 10, or on SIGTERM/SIGINT) "notifies N".
 * Exit 0, or 1 with the reason on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#include "pvio/blkif_wire.h"
#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/ring.h"
#include "pvio/xensim.h"

#define TMO_MS 10000 /* handshake deadline: turns a hang into a failure */

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "hostile-blkfront: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct xs_handle *xs;
static char fe[128], be[128];

static void xw(const char *dir, const char *key, const char *fmt, ...)
{
	char p[256], v[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	if (!xs_write(xs, XBT_NULL, p, v, (unsigned)strlen(v)))
		die("xenstore write %s: %s", p, strerror(errno));
}

static long xr(const char *dir, const char *key)
{
	char p[256], *v;
	unsigned len;
	long n;

	snprintf(p, sizeof(p), "%s/%s", dir, key);
	v = xs_read(xs, XBT_NULL, p, &len);
	n = v ? strtol(v, NULL, 10) : -1;
	free(v);
	return n;
}

/* Wait (on a watch) until the backend's state is @want. */
static void be_wait(long want)
{
	char p[256];
	double end = now_s() + TMO_MS / 1000.;

	snprintf(p, sizeof(p), "%s/state", be);
	if (!xs_watch(xs, p, "hbf"))
		die("watch %s: %s", p, strerror(errno));
	for (;;) {
		long st = xr(be, "state");
		if (st == want)
			break;
		double left = end - now_s();
		if (left <= 0)
			die("backend state %ld, waited for %ld", st, want);
		struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };
		if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0) {
			char **ev;
			while ((ev = xs_check_watch(xs)))
				free(ev);
		}
	}
	xs_unwatch(xs, p, "hbf");
}

static void on_evt(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(void)arg; /* responses arrive; we never look at them */
}

int main(int argc, char **argv)
{
	static const struct option o[] = {
		{ "mode", 1, 0, 'm' }, { "vdev", 1, 0, 'v' }, { "seconds", 1, 0, 's' },
		{ "ring-order", 1, 0, 'o' }, { "help", 0, 0, 'h' }, { 0 },
	};
	unsigned order = 0;
	const char *mode = NULL, *vdev = "51712";
	double seconds = 10;
	struct xsim_domain *d;
	struct pvio_evtchn *ev;
	struct pvio_ring_front fr;
	unsigned long long notifies = 0;
	int c, err;

	while ((c = getopt_long(argc, argv, "m:v:s:o:h", o, NULL)) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'v': vdev = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 'o': order = (unsigned)atoi(optarg); break;
		case 'h':
			printf("Usage: hostile-blkfront --mode stuck|storm [--vdev DEVID] [--ring-order N] [--seconds S]\n"
			       "A blkif frontend that fills its ring and never consumes a response\n"
			       "(stuck), or also floods the backend with event-channel notifications\n"
			       "(storm), for S seconds (default 10).  Prints \"ready\", then \"notifies N\".\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!mode || (strcmp(mode, "stuck") && strcmp(mode, "storm")) || seconds <= 0 || order > 4) {
		fprintf(stderr, "hostile-blkfront: --mode stuck|storm required (see --help)\n");
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if ((err = xsim_domain_open(&d)))
		die("xsim_domain_open: %s", strerror(-err));
	xs = xs_open(0);
	if (!xs)
		die("xs_open: %s", strerror(errno));
	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vbd/%s", xsim_domain_id(d), vdev);
	{
		char p[160], *v;
		unsigned len;
		snprintf(p, sizeof(p), "%s/backend", fe);
		v = xs_read(xs, XBT_NULL, p, &len);
		if (!v || len >= sizeof(be))
			die("no backend for %s", fe);
		snprintf(be, sizeof(be), "%s", v);
		free(v);
	}
	long bdom = xr(fe, "backend-id");
	if (bdom < 0)
		die("no backend-id");

	/* start over (a predecessor may have left the VBD Connected) */
	xw(fe, "state", "1");
	be_wait(2);

	/* the ring pages, one event channel, 4 KiB data pages for every slot */
	void *ring_va;
	uint64_t gfn;
	grant_ref_t rref[16];
	if ((err = xsim_pages_alloc(d, 1u << order, &ring_va, &gfn)))
		die("ring pages: %s", strerror(-err));
	pvio_ring_sring_init(ring_va);
	if (pvio_gnt_alloc_refs(d, 1u << order, rref))
		die("ring grant refs");
	for (unsigned i = 0; i < 1u << order; i++)
		if (pvio_gnt_grant_access(d, rref[i], (domid_t)bdom, gfn + i, 0))
			die("grant the ring");
	int n = pvio_ring_blkif_front_init(&fr, ring_va, PVIO_RING_BYTES(order));
	if (n <= 0)
		die("front_init");
	if ((err = pvio_evtchn_open(&ev)))
		die("evtchn: %s", strerror(-err));
	int port = pvio_evtchn_alloc_unbound(ev, (uint32_t)bdom, on_evt, NULL);
	if (port < 0)
		die("alloc_unbound: %s", strerror(-port));
	if (order) {
		xw(fe, "ring-page-order", "%u", order);
		for (unsigned i = 0; i < 1u << order; i++) {
			char k[32];
			snprintf(k, sizeof(k), "ring-ref%u", i);
			xw(fe, k, "%u", rref[i]);
		}
	} else {
		/* one page: no ring-page-order (a predecessor may have left one) */
		char p[256];
		snprintf(p, sizeof(p), "%s/ring-page-order", fe);
		xs_rm(xs, XBT_NULL, p);
		xw(fe, "ring-ref", "%u", rref[0]);
	}
	xw(fe, "event-channel", "%d", port);
	xw(fe, "protocol", "x86_64-abi");
	xw(fe, "state", "3");
	be_wait(4);
	xw(fe, "state", "4");

	for (int i = 0; i < n; i++) {
		struct pvio_blkif_request rq;
		void *va;
		grant_ref_t ref = 0;
		if (xsim_pages_alloc(d, 1, &va, &gfn) || pvio_gnt_alloc_refs(d, 1, &ref) ||
		    pvio_gnt_grant_access(d, ref, (domid_t)bdom, gfn, 0))
			die("data page %d", i);
		memset(&rq, 0, sizeof(rq));
		rq.operation = PVIO_BLKIF_OP_READ;
		rq.nr_segments = 1;
		rq.id = (uint64_t)i;
		rq.sector_number = (uint64_t)i * 8;
		rq.seg[0].gref = ref;
		rq.seg[0].first_sect = 0;
		rq.seg[0].last_sect = 7;
		if (pvio_ring_blkif_put_request(&fr, &rq))
			die("put_request");
	}
	pvio_ring_front_push_requests(&fr);
	pvio_evtchn_notify(ev, (evtchn_port_t)port);
	/* rsp_event stays where it is: we never ask to hear about responses */
	printf("ready\n");
	fflush(stdout);

	double end = now_s() + seconds;
	if (!strcmp(mode, "storm")) {
		while (!stop && now_s() < end) {
			for (int i = 0; i < 1000; i++)
				pvio_evtchn_notify(ev, (evtchn_port_t)port);
			notifies += 1000;
		}
	} else {
		while (!stop && now_s() < end)
			pvio_evtchn_wait(ev, 100); /* responses come; nothing reads them */
	}
	printf("notifies %llu\n", notifies);
	fflush(stdout);
	/* The pages and grants stay as they are (a dying guest's would), the
	 * handles go: unbinding is what a backend sees of a vanished frontend. */
	pvio_evtchn_close(ev);
	xs_close(xs);
	xsim_domain_close(d);
	return 0;
}
