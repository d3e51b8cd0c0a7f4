/* SPDX-License-Identifier: MIT */
/*
 * Interop, single thread, lockstep: four worlds run the same random
 * schedule on four copies of a ring —
 *   W0: Xen front  + Xen back   (the reference)
 *   W1: Xen front  + pvio back
 *   W2: pvio front + Xen back
 *   W3: pvio front + pvio back
 * After every step the worlds must agree on every decision (free slots,
 * counts taken, notify, work_to_do) and their ring memory must be
 * byte-identical.  Payloads are verified end to end.  Matrix: blkif,
 * netif tx, netif rx x page orders 0..4 x start indices (0, just below
 * 2^32, 2^31 - 1), so 32-bit index wrap is crossed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NWORLDS 4
#define STEPS 30000

struct world {
	struct h_end f, b;
	unsigned char *mem;
	uint64_t req_sent, req_seen, rsp_sent, rsp_seen;
};

static const uint32_t starts[] = { 0, 0xffffffffu - 7, 0x7fffffffu };
#define NSTARTS (sizeof(starts) / sizeof(starts[0]))

/* check's ck_assert_* talks to the parent process on every call; hot loops
 * use this instead and only call into check on failure. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);  \
	} while (0)

static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static void run_config(enum h_proto p, unsigned order, uint32_t start)
{
	const struct h_proto_info *pi = &h_protos[p];
	size_t bytes = PVIO_RING_BYTES(order);
	struct world w[NWORLDS];
	static const enum h_impl fimpl[NWORLDS] = { H_XEN, H_XEN, H_PVIO, H_PVIO };
	static const enum h_impl bimpl[NWORLDS] = { H_XEN, H_PVIO, H_XEN, H_PVIO };
	unsigned char *buf = malloc(8192 * 128);
	unsigned char msg[256];
	uint32_t nr_ents;
	unsigned notified_f = 0, notified_b = 0;

	ck_assert_ptr_nonnull(buf);
	rng_state = 0x1234u + p * 977u + order * 131u + start;
	for (int i = 0; i < NWORLDS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].mem = aligned_alloc(4096, bytes);
		ck_assert_ptr_nonnull(w[i].mem);
		memset(w[i].mem, 0xa5, bytes);
		h_sring_init(fimpl[i], p, w[i].mem, start);
		h_front_attach(&w[i].f, fimpl[i], p, w[i].mem, bytes, start);
		h_back_attach(&w[i].b, bimpl[i], p, w[i].mem, bytes, start);
	}
	nr_ents = h_nr_ents(&w[0].f);
	for (int i = 0; i < NWORLDS; i++) {
		ck_assert_uint_eq(h_nr_ents(&w[i].f), nr_ents);
		ck_assert_uint_eq(h_nr_ents(&w[i].b), nr_ents);
		ck_assert_int_eq(memcmp(w[0].mem, w[i].mem, bytes), 0);
	}

	for (unsigned step = 0; step < STEPS; step++) {
		unsigned op = rnd() % 6;
		/* Mostly small batches, sometimes up to a whole ring. */
		unsigned k = (rnd() % 4) ? rnd() % 8 + 1 : rnd() % (nr_ents + 1);
		long res[NWORLDS];
		long res2[NWORLDS];

		for (int i = 0; i < NWORLDS; i++) {
			struct world *x = &w[i];
			unsigned n;

			res2[i] = 0;
			switch (op) {
			case 0: { /* front produces up to k, pushes */
				uint32_t fr = h_front_free(&x->f);
				n = k < fr ? k : fr;
				for (unsigned j = 0; j < n; j++) {
					h_fill(msg, pi->req_size, x->req_sent++, 1);
					h_front_put_req(&x->f, msg);
				}
				res[i] = fr;
				res2[i] = h_front_push(&x->f);
				break;
			}
			case 1: /* back consumes up to k */
				n = h_back_take(&x->b, k, buf);
				for (unsigned j = 0; j < n; j++)
					REQUIRE(h_check(buf + j * pi->req_size,
							  pi->req_size,
							  x->req_seen++, 1));
				res[i] = n;
				break;
			case 2: { /* back answers up to k consumed, pushes */
				uint64_t pend = x->req_seen - x->rsp_sent;
				n = k < pend ? k : (unsigned)pend;
				for (unsigned j = 0; j < n; j++) {
					h_fill(msg, pi->rsp_size, x->rsp_sent++, 2);
					h_back_put_rsp(&x->b, msg);
				}
				res[i] = n;
				res2[i] = h_back_push(&x->b);
				break;
			}
			case 3: /* front consumes up to k responses */
				n = h_front_take(&x->f, k, buf);
				for (unsigned j = 0; j < n; j++)
					REQUIRE(h_check(buf + j * pi->rsp_size,
							  pi->rsp_size,
							  x->rsp_seen++, 2));
				res[i] = n;
				break;
			case 4:
				res[i] = h_front_final(&x->f);
				break;
			default:
				res[i] = h_back_final(&x->b);
				break;
			}
		}
		for (int i = 1; i < NWORLDS; i++) {
			if (res[i] != res[0] || res2[i] != res2[0])
				ck_abort_msg("%s order %u start %#x step %u op %u: "
					     "world %d decided %ld/%ld, Xen %ld/%ld",
					     pi->name, order, start, step, op, i,
					     res[i], res2[i], res[0], res2[0]);
			/* Whole ring every 32 steps and at the end, the
			 * 64-byte header at every step. */
			size_t cmp = (step % 32 == 0 || step == STEPS - 1)
					     ? bytes : PVIO_RING_HDR_SIZE;
			if (memcmp(w[0].mem, w[i].mem, cmp) != 0)
				ck_abort_msg("%s order %u start %#x step %u op %u: "
					     "world %d ring memory differs",
					     pi->name, order, start, step, op, i);
			REQUIRE(h_front_free(&w[i].f) == h_front_free(&w[0].f));
		}
		if (op == 0 && res2[0])
			notified_b++;
		if (op == 2 && res2[0])
			notified_f++;
	}
	/* The schedule must have done real work and exercised both answers
	 * of the notify check. */
	ck_assert_uint_gt(w[0].rsp_seen, 2 * (uint64_t)nr_ents); /* went round */
	ck_assert_uint_gt(notified_b, 0);
	ck_assert_uint_gt(notified_f, 0);
	if (start > 0xf0000000u) {
		/* the free-running indices really wrapped */
		ck_assert_uint_lt(((struct pvio_ring_sring *)w[3].mem)->rsp_prod,
				  start);
	}
	for (int i = 0; i < NWORLDS; i++)
		free(w[i].mem);
	free(buf);
}

START_TEST(lockstep)
{
	/* _i enumerates (proto, order, start). */
	unsigned i = (unsigned)_i;
	uint32_t start = starts[i % NSTARTS];
	unsigned order = (i / NSTARTS) % (PVIO_RING_MAX_ORDER + 1);
	enum h_proto p = (enum h_proto)(i / NSTARTS / (PVIO_RING_MAX_ORDER + 1));

	run_config(p, order, start);
}
END_TEST

/*
 * Typed wrappers against Xen: a pvio blkif frontend (typed API, slot
 * API) and a Xen-macro backend using RING_COPY_REQUEST, across wrap.
 */
#include "xen_rings.h"
#include <pvio/blkif_wire.h>

START_TEST(typed_blkif_vs_xen)
{
	static unsigned char mem[PVIO_RING_BYTES(1)] __attribute__((aligned(4096)));
	struct pvio_ring_front fr;
	struct blkif_back_ring xb;
	struct blkif_sring *s = (void *)mem;
	uint32_t start = 0xfffffff0u;
	uint64_t sent = 0, got = 0, rsp_got = 0;
	int notify;

	s->req_prod = s->rsp_prod = start;
	s->req_event = s->rsp_event = start + 1;
	ck_assert_int_eq(pvio_ring_blkif_front_attach(&fr, mem, sizeof(mem), start), 64);
	BACK_RING_ATTACH(&xb, s, start, sizeof(mem));

	for (int round = 0; round < 200; round++) {
		/* Front: half via put_request, half in place via the slot. */
		while (!pvio_ring_front_full(&fr) && sent < (uint64_t)round * 37) {
			struct pvio_blkif_request r;
			memset(&r, 0, sizeof(r));
			r.operation = PVIO_BLKIF_OP_WRITE;
			r.nr_segments = (uint8_t)(sent % 12);
			r.id = sent;
			r.sector_number = sent * 8;
			r.seg[sent % 11].gref = (uint32_t)sent;
			if (sent & 1) {
				ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), 0);
			} else {
				struct pvio_blkif_request *slot =
					pvio_ring_blkif_request_slot(&fr);
				ck_assert_ptr_nonnull(slot);
				*slot = r;
				ck_assert_int_eq(pvio_ring_front_produce_request(&fr), 0);
			}
			sent++;
		}
		pvio_ring_front_push_requests(&fr);
		/* Xen back: consume and answer everything. */
		RING_IDX rp = s->req_prod;
		xen_rmb();
		while (xb.req_cons != rp) {
			struct blkif_request req;
			struct blkif_response *rsp;
			RING_COPY_REQUEST(&xb, xb.req_cons, &req);
			xb.req_cons++;
			ck_assert_uint_eq(req.id, got);
			ck_assert_uint_eq(req.operation, BLKIF_OP_WRITE);
			ck_assert_uint_eq(req.nr_segments, got % 12);
			ck_assert_uint_eq(req.sector_number, got * 8);
			ck_assert_uint_eq(req.seg[got % 11].gref, (uint32_t)got);
			got++;
			rsp = RING_GET_RESPONSE(&xb, xb.rsp_prod_pvt);
			memset(rsp, 0, sizeof(*rsp));
			rsp->id = req.id;
			rsp->operation = req.operation;
			rsp->status = BLKIF_RSP_OKAY;
			xb.rsp_prod_pvt++;
		}
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&xb, notify);
		(void)notify;
		/* Front: typed copy of responses. */
		ck_assert_int_ge(pvio_ring_front_poll_responses(&fr), 0);
		for (;;) {
			struct pvio_blkif_response rsp;
			int rc = pvio_ring_blkif_copy_response(&fr, &rsp);
			ck_assert_int_ge(rc, 0);
			if (rc == 0)
				break;
			ck_assert_uint_eq(rsp.id, rsp_got);
			ck_assert_int_eq(rsp.status, PVIO_BLKIF_RSP_OKAY);
			rsp_got++;
		}
		ck_assert_int_eq(pvio_ring_front_final_check(&fr), 0);
	}
	ck_assert_uint_eq(rsp_got, sent);
	ck_assert_uint_gt(sent, 1000);
	ck_assert_uint_lt(s->req_prod, start); /* wrapped */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring-interop");
	TCase *tc = tcase_create("interop");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, lockstep, 0,
			    (int)(H_NPROTO * (PVIO_RING_MAX_ORDER + 1) * NSTARTS));
	tcase_add_test(tc, typed_blkif_vs_xen);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
