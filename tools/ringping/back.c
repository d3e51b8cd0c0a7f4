/* SPDX-License-Identifier: MIT */
/* ringping backend: runs in dom0 (or a driver domain). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include <xengnttab.h>
#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/ring.h"
#include "ringping.h"
#include "xs_util.h"

PVIO_RING_DEFINE(rp, struct rp_req, struct rp_rsp);

static const char *const st_init[] = { "3", "4", "" };

static void on_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(*(unsigned long *)arg)++;
}

/* Everything the frontend says is checked before use. */
static int read_frontend(struct xs_handle *xs, const char *base, unsigned *order,
			 uint32_t *refs, unsigned long *port)
{
	char path[160];
	unsigned long v;
	int err;

	snprintf(path, sizeof(path), "%s/ring-page-order", base);
	err = rp_xs_read_uint(xs, path, PVIO_RING_MAX_ORDER, &v);
	if (err == -ENOENT)
		v = 0;
	else if (err) {
		fprintf(stderr, "back: %s: not a ring order in 0..%d: refusing\n", path, PVIO_RING_MAX_ORDER);
		return err;
	}
	*order = (unsigned)v;  /* validated before any shift */
	for (unsigned i = 0; i < 1u << *order; i++) {
		if (*order == 0)
			snprintf(path, sizeof(path), "%s/ring-ref", base);
		else
			snprintf(path, sizeof(path), "%s/ring-ref%u", base, i);
		err = rp_xs_read_uint(xs, path, UINT32_MAX, &v);
		if (err) {
			fprintf(stderr, "back: %s: missing or not a grant ref: refusing\n", path);
			return err;
		}
		refs[i] = (uint32_t)v;
	}
	snprintf(path, sizeof(path), "%s/event-channel", base);
	err = rp_xs_read_uint(xs, path, 4095, port);
	if (err || *port == 0) {
		fprintf(stderr, "back: %s: not an event-channel port: refusing\n", path);
		return err ? err : -EINVAL;
	}
	return 0;
}

int rp_back(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint32_t domid = 0, refs[1u << PVIO_RING_MAX_ORDER];
	unsigned long port, events = 0, notifies = 0, handled = 0, bad = 0;
	unsigned order = 0;
	int json = 0, o, err, rc = 1, lport = -1, have_dom = 0;
	struct xs_handle *xs = NULL;
	xengnttab_handle *xgt = NULL;
	struct pvio_evtchn *ev = NULL;
	struct pvio_ring_back br;
	void *ring = NULL;
	char base[96], path[160];
	uint32_t expect = 0;
	struct timespec t0, t1;

	while ((o = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'd': domid = (uint32_t)strtoul(optarg, NULL, 10); have_dom = 1; break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: pvio-ringping back --domain DOMID [--json]\n");
			return 0;
		default: return 2;
		}
	}
	if (!have_dom) {
		fprintf(stderr, "back: --domain DOMID is required\n");
		return 2;
	}
	snprintf(base, sizeof(base), RP_BASE_FMT, domid);
	xs = xs_open(0);
	if (!xs) {
		fprintf(stderr, "back: cannot reach xenstore: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/state", base);
	if (rp_xs_wait(xs, path, st_init, 30000) < 0) {
		fprintf(stderr, "back: frontend of domain %u never became Initialised\n", domid);
		goto out;
	}
	if (read_frontend(xs, base, &order, refs, &port))
		goto out;
	xgt = xengnttab_open(NULL, 0);
	if (!xgt) {
		fprintf(stderr, "back: xengnttab_open: %s\n", strerror(errno));
		goto out;
	}
	err = pvio_gnt_map_batch(xgt, domid, 1u << order, refs, 1, &ring, NULL);
	if (err) {
		fprintf(stderr, "back: cannot map the ring grants of domain %u: %s\n", domid, strerror(-err));
		ring = NULL;
		goto out;
	}
	err = pvio_evtchn_open(&ev);
	if (!err) {
		lport = pvio_evtchn_bind_interdomain(ev, domid, (evtchn_port_t)port, on_event, &events);
		err = lport < 0 ? lport : 0;
	}
	if (err) {
		fprintf(stderr, "back: cannot bind event channel %lu of domain %u: %s\n", port, domid,
			strerror(-err));
		goto out;
	}
	if (pvio_ring_rp_back_init(&br, ring, PVIO_RING_BYTES(order)) <= 0)
		goto out;
	snprintf(path, sizeof(path), "%s/backend-state", base);
	rp_xs_write_fmt(xs, XBT_NULL, path, "4");
	if (!json)
		printf("back: connected to domain %u: %u-page ring (%u slots), port %lu -> local %d\n",
		       domid, 1u << order, br.nr_ents, port, lport);

	/* Serve until the frontend says Closing and the ring is drained. */
	snprintf(path, sizeof(path), "%s/state", base);
	if (!xs_watch(xs, path, "fe-state")) {
		fprintf(stderr, "back: cannot watch %s\n", path);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int n = pvio_ring_back_poll_requests(&br);
		if (n == 0)
			n = pvio_ring_back_final_check(&br);
		if (n < 0) {
			fprintf(stderr, "back: domain %u broke the ring protocol (request producer ran ahead): disconnecting\n",
				domid);
			goto out;
		}
		if (n > 0) {
			struct rp_req rq;
			while (pvio_ring_rp_copy_request(&br, &rq) == 1) {
				/* validate the private copy only */
				struct rp_rsp rs = { .id = rq.id, .seq = rq.seq };
				if (rq.len > RP_DATA || rq.len == 0 || rq.seq != expect) {
					rs.status = -EINVAL;
					bad++;
				} else {
					for (uint32_t i = 0; i < rq.len; i++)
						if (rq.data[i] != rp_pattern(rq.seq, i)) {
							rs.status = -EILSEQ;
							bad++;
							break;
						}
					rs.sum = rp_sum(rq.data, rq.len);
				}
				expect++;
				handled++;
				pvio_ring_rp_put_response(&br, &rs);
			}
			if (pvio_ring_back_push_responses(&br)) {
				pvio_evtchn_notify(ev, (evtchn_port_t)lport);
				notifies++;
			}
			continue;
		}
		/* idle: wait for an event or a frontend state change */
		struct pollfd p[2] = {
			{ .fd = pvio_evtchn_fd(ev), .events = POLLIN },
			{ .fd = xs_fileno(xs), .events = POLLIN },
		};
		if (poll(p, 2, 30000) <= 0) {
			fprintf(stderr, "back: domain %u idle for 30 s: giving up\n", domid);
			goto out;
		}
		if (p[0].revents)
			pvio_evtchn_dispatch(ev);
		if (p[1].revents) {
			unsigned num;
			free(xs_read_watch(xs, &num));
			unsigned long st;
			/* gone, garbage or Closing: stop serving */
			if (rp_xs_read_uint(xs, path, 9, &st) != 0 || st >= 5)
				break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = bad ? 1 : 0;
	if (json)
		printf("{\"role\": \"back\", \"domain\": %u, \"handled\": %lu, \"bad\": %lu, \"notifies_sent\": %lu, "
		       "\"events_received\": %lu}\n", domid, handled, bad, notifies, events);
	else
		printf("back: served %lu requests from domain %u (%lu with bad payloads); "
		       "%lu notifications sent, %lu events received in %.3f s\n",
		       handled, domid, bad, notifies, events,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
out:
	/* Unmap before saying Closed: the frontend then ends its grants. */
	if (ring)
		xengnttab_unmap(xgt, ring, 1u << order);
	if (ev)
		pvio_evtchn_close(ev);
	if (xgt)
		xengnttab_close(xgt);
	if (xs) {
		snprintf(path, sizeof(path), "%s/backend-state", base);
		rp_xs_write_fmt(xs, XBT_NULL, path, "6");
		xs_close(xs);
	}
	return rc;
}
