/* SPDX-License-Identifier: MIT */
/* ringping frontend: runs in a domU. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/ring.h"
#include "pvio/xensim.h"
#include "ringping.h"
#include "xs_util.h"

PVIO_RING_DEFINE(rp, struct rp_req, struct rp_rsp);

static const char *const st_connected[] = { "4", "5", "6", "" };
static const char *const st_closed[] = { "6", "" };

struct front {
	struct xs_handle *xs;
	struct xsim_domain *dom;
	struct pvio_evtchn *ev;
	void *ring_va;
	unsigned npages;
	grant_ref_t refs[1u << PVIO_RING_MAX_ORDER];
	unsigned nrefs;
	int port;
	char base[96];
	uint32_t backend;
};

static void on_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(*(unsigned long *)arg)++;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static int publish(struct front *f, unsigned order, unsigned long count)
{
	char path[160];
	xs_transaction_t t;
	int err = 0;

	/* One transaction, retried on conflict, as frontends do (EAGAIN). */
	for (;;) {
		t = xs_transaction_start(f->xs);
		if (!t)
			return -errno;
		snprintf(path, sizeof(path), "%s/ring-page-order", f->base);
		err = rp_xs_write_fmt(f->xs, t, path, "%u", order);
		for (unsigned i = 0; !err && i < f->nrefs; i++) {
			if (order == 0)
				snprintf(path, sizeof(path), "%s/ring-ref", f->base);
			else
				snprintf(path, sizeof(path), "%s/ring-ref%u", f->base, i);
			err = rp_xs_write_fmt(f->xs, t, path, "%u", f->refs[i]);
		}
		snprintf(path, sizeof(path), "%s/event-channel", f->base);
		if (!err)
			err = rp_xs_write_fmt(f->xs, t, path, "%d", f->port);
		snprintf(path, sizeof(path), "%s/count", f->base);
		if (!err)
			err = rp_xs_write_fmt(f->xs, t, path, "%lu", count);
		snprintf(path, sizeof(path), "%s/state", f->base);
		if (!err)
			err = rp_xs_write_fmt(f->xs, t, path, "3");
		if (err) {
			xs_transaction_end(f->xs, t, true);
			return err;
		}
		if (xs_transaction_end(f->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

int rp_front(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "count", required_argument, NULL, 'n' },
		{ "order", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct front f = { .port = -1 };
	struct pvio_ring_front fr;
	unsigned long count = 100000, events = 0, notifies = 0, waits = 0;
	unsigned order = 0;
	int json = 0, o, err, rc = 1;
	uint64_t gfn;
	uint8_t *inflight = NULL;
	struct timespec t0, t1;
	char path[160];
	uint32_t sent = 0, done = 0;

	while ((o = getopt_long(argc, argv, "b:n:o:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'b': f.backend = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'n': count = strtoul(optarg, NULL, 10); break;
		case 'o': order = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: pvio-ringping front [--backend DOMID] [--count N] [--order 0..4] [--json]\n");
			return 0;
		default: return 2;
		}
	}
	if (order > PVIO_RING_MAX_ORDER || count == 0 || count > UINT32_MAX) {
		fprintf(stderr, "front: --order must be 0..4 and --count 1..2^32-1\n");
		return 2;
	}
	err = xsim_domain_open(&f.dom);
	if (err) {
		fprintf(stderr, "front: cannot attach to this domain (run me with 'xensim run DOMID --'): %s\n",
			strerror(-err));
		return 1;
	}
	f.xs = xs_open(0);
	if (!f.xs) {
		fprintf(stderr, "front: cannot reach xenstore: %s\n", strerror(errno));
		goto out;
	}
	snprintf(f.base, sizeof(f.base), RP_BASE_FMT, xsim_domain_id(f.dom));

	/* 1. ring pages: allocate, initialise, grant each to the backend */
	f.npages = 1u << order;
	err = xsim_pages_alloc(f.dom, f.npages, &f.ring_va, &gfn);
	if (err) {
		fprintf(stderr, "front: no memory for a %u-page ring: %s\n", f.npages, strerror(-err));
		goto out;
	}
	pvio_ring_sring_init(f.ring_va);
	if (pvio_ring_rp_front_init(&fr, f.ring_va, PVIO_RING_BYTES(order)) <= 0) {
		fprintf(stderr, "front: ring init failed\n");
		goto out;
	}
	for (unsigned i = 0; i < f.npages; i++) {
		err = pvio_gnt_grant_page(f.dom, (domid_t)f.backend,
					  (uint8_t *)f.ring_va + i * PVIO_RING_PAGE_SIZE, 0, &f.refs[i]);
		if (err) {
			fprintf(stderr, "front: grant failed: %s\n", strerror(-err));
			goto out;
		}
		f.nrefs++;
	}
	/* 2. an event channel the backend may bind */
	err = pvio_evtchn_open(&f.ev);
	if (!err) {
		f.port = pvio_evtchn_alloc_unbound(f.ev, f.backend, on_event, &events);
		err = f.port < 0 ? f.port : 0;
	}
	if (err) {
		fprintf(stderr, "front: event channel: %s\n", strerror(-err));
		goto out;
	}
	/* 3. publish and wait for the backend to connect */
	err = publish(&f, order, count);
	if (err) {
		fprintf(stderr, "front: xenstore publish under %s: %s\n", f.base, strerror(-err));
		goto out;
	}
	if (!json)
		printf("front: domain %u: %u-page ring (%u slots), refs %u.., port %d published in %s\n",
		       xsim_domain_id(f.dom), f.npages, fr.nr_ents, f.refs[0], f.port, f.base);
	snprintf(path, sizeof(path), "%s/backend-state", f.base);
	err = rp_xs_wait(f.xs, path, st_connected, 30000);
	if (err != 0) {
		fprintf(stderr, "front: backend did not connect: %s\n",
			err < 0 ? strerror(-err) : "it closed");
		goto out;
	}

	/* 4. the exchange: fill the ring, push, consume, verify */
	inflight = calloc(fr.nr_ents, 1);
	if (!inflight)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < count) {
		while (sent < count && !pvio_ring_front_full(&fr)) {
			struct rp_req rq = { .seq = sent, .len = rp_len(sent) };
			rq.id = sent & (fr.nr_ents - 1);  /* slot tag */
			for (uint32_t i = 0; i < rq.len; i++)
				rq.data[i] = rp_pattern(sent, i);
			if (inflight[rq.id]) {
				fprintf(stderr, "front: internal: tag %llu reused\n", (unsigned long long)rq.id);
				goto out;
			}
			inflight[rq.id] = 1;
			pvio_ring_rp_put_request(&fr, &rq);
			sent++;
		}
		if (pvio_ring_front_push_requests(&fr)) {
			pvio_evtchn_notify(f.ev, (evtchn_port_t)f.port);
			notifies++;
		}
		int n = pvio_ring_front_poll_responses(&fr);
		if (n == 0)
			n = pvio_ring_front_final_check(&fr);
		if (n < 0) {
			fprintf(stderr, "front: backend broke the ring protocol (response producer ran ahead): disconnecting\n");
			goto out;
		}
		if (n == 0) {
			waits++;
			if (pvio_evtchn_wait(f.ev, 10000) <= 0) {
				fprintf(stderr, "front: backend stalled: %u of %lu answered\n", done, count);
				goto out;
			}
			continue;
		}
		struct rp_rsp rs;
		while (pvio_ring_rp_copy_response(&fr, &rs) == 1) {
			/* validate the private copy: tag in range and in flight, right seq */
			uint32_t want = done;
			if (rs.id >= fr.nr_ents || !inflight[rs.id] || rs.seq != want ||
			    rs.id != (want & (fr.nr_ents - 1))) {
				fprintf(stderr, "front: bad response: id %llu seq %u (expected seq %u)\n",
					(unsigned long long)rs.id, rs.seq, want);
				goto out;
			}
			uint8_t data[RP_DATA];
			for (uint32_t i = 0; i < rp_len(want); i++)
				data[i] = rp_pattern(want, i);
			if (rs.status != 0 || rs.sum != rp_sum(data, rp_len(want))) {
				fprintf(stderr, "front: request %u: backend saw wrong data (status %d, sum %08x)\n",
					want, rs.status, rs.sum);
				goto out;
			}
			inflight[rs.id] = 0;
			done++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* 5. close: Closing, wait for the backend to unmap (Closed) */
	snprintf(path, sizeof(path), "%s/state", f.base);
	rp_xs_write_fmt(f.xs, XBT_NULL, path, "5");
	snprintf(path, sizeof(path), "%s/backend-state", f.base);
	if (rp_xs_wait(f.xs, path, st_closed, 30000) != 0) {
		fprintf(stderr, "front: backend did not close\n");
		goto out;
	}
	rc = 0;
	if (json)
		printf("{\"role\": \"front\", \"domain\": %u, \"order\": %u, \"slots\": %u, \"requests\": %u, "
		       "\"verified\": %u, \"seconds\": %.6f, \"requests_per_sec\": %.0f, "
		       "\"notifies_sent\": %lu, \"events_received\": %lu, \"waits\": %lu}\n",
		       xsim_domain_id(f.dom), order, fr.nr_ents, sent, done, secs(&t0, &t1),
		       done / secs(&t0, &t1), notifies, events, waits);
	else
		printf("front: %u requests sent, %u responses verified in %.3f s (%.0f req/s); "
		       "%lu notifications sent, %lu events received\n",
		       sent, done, secs(&t0, &t1), done / secs(&t0, &t1), notifies, events);
out:
	/* End every grant: the backend has unmapped, so none may be busy. */
	for (unsigned i = 0; i < f.nrefs; i++) {
		int e = pvio_gnt_end_access(f.dom, f.refs[i]);
		if (e) {
			fprintf(stderr, "front: grant %u still in use (%s): leaking its page\n",
				f.refs[i], strerror(-e));
			rc = 1;
			f.ring_va = NULL;
		} else {
			pvio_gnt_free_refs(f.dom, 1, &f.refs[i]);
		}
	}
	if (f.ring_va)
		xsim_pages_free(f.dom, f.ring_va, f.npages);
	if (f.xs) {
		xs_rm(f.xs, XBT_NULL, f.base);
		xs_close(f.xs);
	}
	pvio_evtchn_close(f.ev);
	free(inflight);
	xsim_domain_close(f.dom);
	return rc;
}
