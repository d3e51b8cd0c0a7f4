/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers: producer indices that run ahead or move backwards are
 * detected on both ends, nothing is consumed, the consumer index does not
 * move and the error is sticky; copies are taken once; our own misuse is
 * refused with -EINVAL/-ENOSPC.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <pvio/blkif_wire.h>
#include <pvio/netif_wire.h>
#include <pvio/ring.h>

#define ORDER_BYTES PVIO_RING_BYTES(0)

static unsigned char mem[PVIO_RING_BYTES(PVIO_RING_MAX_ORDER)]
	__attribute__((aligned(4096)));

static const uint32_t starts[] = { 0, 0xfffffff0u, 0x7ffffff8u, 0xffffffffu };
#define NSTARTS (int)(sizeof(starts) / sizeof(starts[0]))

static struct pvio_ring_sring *setup(struct pvio_ring_front *fr,
				     struct pvio_ring_back *br, uint32_t start,
				     size_t bytes)
{
	struct pvio_ring_sring *s = (void *)mem;

	memset(mem, 0, bytes);
	pvio_ring_sring_init(s);
	s->req_prod = s->rsp_prod = start;
	s->req_event = s->rsp_event = start + 1;
	ck_assert_int_gt(pvio_ring_blkif_front_attach(fr, mem, bytes, start), 0);
	ck_assert_int_gt(pvio_ring_blkif_back_attach(br, mem, bytes, start), 0);
	return s;
}

static void put_reqs(struct pvio_ring_front *fr, unsigned n, uint64_t first)
{
	for (unsigned i = 0; i < n; i++) {
		struct pvio_blkif_request r = { .operation = 0, .id = first + i };
		ck_assert_int_eq(pvio_ring_blkif_put_request(fr, &r), 0);
	}
	pvio_ring_front_push_requests(fr);
}

/* Backend: req_prod beyond rsp_prod_pvt + nr_ents. */
START_TEST(back_req_prod_overflow)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	uint32_t start = starts[_i];
	struct pvio_ring_sring *s = setup(&fr, &br, start, ORDER_BYTES);
	uint32_t n = br.nr_ents;
	struct pvio_blkif_request r;

	/* Exactly full is legal... */
	put_reqs(&fr, n, 0);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), (int)n);
	/* consume 3 and answer 2 */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 1);
	for (int i = 0; i < 2; i++) {
		struct pvio_blkif_response rsp = { .id = (uint64_t)i };
		ck_assert_int_eq(pvio_ring_blkif_put_response(&br, &rsp), 0);
	}
	pvio_ring_back_push_responses(&br);
	/* ...legal up to rsp_prod_pvt + nr_ents ... */
	__atomic_store_n(&s->req_prod, start + 2 + n, __ATOMIC_RELEASE);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), (int)(n - 1));
	/* ...one more is a hostile frontend. */
	__atomic_store_n(&s->req_prod, start + 3 + n, __ATOMIC_RELEASE);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), -PVIO_RING_EPROTO);
	ck_assert_uint_eq(br.req_cons, start + 3); /* nothing consumed */
	/* Sticky: even after the index is "repaired". */
	__atomic_store_n(&s->req_prod, start + 4, __ATOMIC_RELEASE);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), -PVIO_RING_EPROTO);
	ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), -PVIO_RING_EPROTO);
	ck_assert_int_eq(pvio_ring_back_final_check(&br), -PVIO_RING_EPROTO);
	struct pvio_blkif_response rsp = { 0 };
	ck_assert_int_eq(pvio_ring_blkif_put_response(&br, &rsp), -PVIO_RING_EPROTO);
	ck_assert(pvio_ring_back_response_slot(&br) == NULL);
	ck_assert_uint_eq(br.req_cons, start + 3);
	ck_assert_uint_eq(br.rsp_prod_pvt, start + 2);
}
END_TEST

/* Backend: a wildly wrong req_prod (e.g. 2^31 ahead). */
START_TEST(back_req_prod_far)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	uint32_t start = starts[_i];
	struct pvio_ring_sring *s = setup(&fr, &br, start, ORDER_BYTES);
	const uint32_t bad[] = { 0x80000000u, 0xffffffffu, 33, 0x7fffffffu, 1000 };

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pvio_ring_back b2 = br;
		__atomic_store_n(&s->req_prod, start + bad[i], __ATOMIC_RELEASE);
		ck_assert_int_eq(pvio_ring_back_final_check(&b2), -PVIO_RING_EPROTO);
		ck_assert_uint_eq(b2.req_cons, start);
		/* final check must not arm req_event on a broken ring */
		ck_assert_uint_eq(s->req_event, start + 1);
	}
}
END_TEST

/* Backend: req_prod moving backwards below req_cons. */
START_TEST(back_req_prod_backwards)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	uint32_t start = starts[_i];
	struct pvio_ring_sring *s = setup(&fr, &br, start, ORDER_BYTES);
	struct pvio_blkif_request r;

	put_reqs(&fr, 10, 0);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), 10);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 1);
	__atomic_store_n(&s->req_prod, start + 4, __ATOMIC_RELEASE);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), -PVIO_RING_EPROTO);
	ck_assert_uint_eq(br.req_cons, start + 6);
}
END_TEST

/* Frontend: rsp_prod beyond what we pushed, beyond the ring, backwards. */
START_TEST(front_rsp_prod_overflow)
{
	uint32_t start = starts[_i];
	/* relative to rsp_cons = start + 5, pushed = start + 10,
	 * req_prod_pvt = start + 11: 6 answers an unpushed request, 11 and
	 * more exceed the ring or the requests, negatives move back. */
	const int32_t bad_ahead[] = { 6, 11, 12, 33, 100000, -1, -5 };

	for (unsigned i = 0; i < sizeof(bad_ahead) / sizeof(bad_ahead[0]); i++) {
		struct pvio_ring_front fr;
		struct pvio_ring_back br;
		struct pvio_ring_sring *s = setup(&fr, &br, start, ORDER_BYTES);
		struct pvio_blkif_request r;
		struct pvio_blkif_response rsp = { 0 };

		put_reqs(&fr, 10, 0);
		/* one more request produced but not pushed */
		ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), 0);
		ck_assert_int_eq(pvio_ring_back_poll_requests(&br), 10);
		for (int j = 0; j < 10; j++) {
			ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 1);
			ck_assert_int_eq(pvio_ring_blkif_put_response(&br, &rsp), 0);
		}
		pvio_ring_back_push_responses(&br);
		/* take 5 honestly */
		ck_assert_int_eq(pvio_ring_front_poll_responses(&fr), 10);
		for (int j = 0; j < 5; j++)
			ck_assert_int_eq(pvio_ring_blkif_copy_response(&fr, &rsp), 1);
		/* all 10 pushed answered: legal */
		ck_assert_int_eq(pvio_ring_front_poll_responses(&fr), 5);
		/* now the hostile backend moves rsp_prod relative to start+5 */
		__atomic_store_n(&s->rsp_prod, start + 5 + (uint32_t)bad_ahead[i],
				 __ATOMIC_RELEASE);
		ck_assert_int_eq(pvio_ring_front_poll_responses(&fr), -PVIO_RING_EPROTO);
		ck_assert_uint_eq(fr.rsp_cons, start + 5);
		ck_assert_int_eq(pvio_ring_blkif_copy_response(&fr, &rsp),
				 -PVIO_RING_EPROTO);
		ck_assert_int_eq(pvio_ring_front_final_check(&fr), -PVIO_RING_EPROTO);
		ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), -PVIO_RING_EPROTO);
		ck_assert(pvio_ring_front_request_slot(&fr) == NULL);
		ck_assert_uint_eq(fr.rsp_cons, start + 5);
	}
}
END_TEST

/* A snapshot bounds consumption: requests pushed after the poll wait. */
START_TEST(snapshot_bounds)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	struct pvio_blkif_request r;

	setup(&fr, &br, starts[_i], ORDER_BYTES);
	put_reqs(&fr, 3, 0);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), 3);
	put_reqs(&fr, 4, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 1);
		ck_assert_uint_eq(r.id, (uint64_t)i);
	}
	ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 0);
	ck_assert_int_eq(pvio_ring_back_final_check(&br), 4);
	for (int i = 3; i < 7; i++) {
		ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &r), 1);
		ck_assert_uint_eq(r.id, (uint64_t)i);
	}
	ck_assert_int_eq(pvio_ring_back_final_check(&br), 0);
	ck_assert_uint_eq(((struct pvio_ring_sring *)mem)->req_event,
			  starts[_i] + 8);
}
END_TEST

/* Copy once: changing the shared slot after the copy changes nothing. */
START_TEST(copy_once)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	struct pvio_ring_sring *s = setup(&fr, &br, starts[_i], ORDER_BYTES);
	struct pvio_blkif_request r = { .operation = PVIO_BLKIF_OP_READ,
					.nr_segments = 3,
					.id = 42,
					.sector_number = 7 };
	struct pvio_blkif_request copy;
	struct pvio_blkif_request *shared;

	ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), 0);
	pvio_ring_front_push_requests(&fr);
	shared = (struct pvio_blkif_request *)(s->ring +
					       (br.req_cons & (br.nr_ents - 1)) *
						       br.entry_size);
	ck_assert_int_eq(pvio_ring_back_poll_requests(&br), 1);
	ck_assert_int_eq(pvio_ring_blkif_copy_request(&br, &copy), 1);
	/* the hostile frontend rewrites the slot after we copied it */
	shared->nr_segments = 200;
	shared->id = 666;
	shared->seg[0].last_sect = 255;
	ck_assert_int_eq(memcmp(&copy, &r, sizeof(r)), 0);
	ck_assert_uint_eq(copy.nr_segments, 3);

	/* Same for responses on the front. */
	struct pvio_blkif_response rsp = { .id = 42, .operation = 0, .status = 0 };
	struct pvio_blkif_response rcopy;
	struct pvio_blkif_response *rshared;
	ck_assert_int_eq(pvio_ring_blkif_put_response(&br, &rsp), 0);
	pvio_ring_back_push_responses(&br);
	rshared = (struct pvio_blkif_response *)(s->ring +
						 (fr.rsp_cons & (fr.nr_ents - 1)) *
							 fr.entry_size);
	ck_assert_int_eq(pvio_ring_front_poll_responses(&fr), 1);
	ck_assert_int_eq(pvio_ring_blkif_copy_response(&fr, &rcopy), 1);
	rshared->id = 1;
	rshared->status = -1;
	ck_assert_int_eq(memcmp(&rcopy, &rsp, sizeof(rsp)), 0);
}
END_TEST

/* Random garbage producer indices never crash, never over-consume. */
START_TEST(garbage_indices)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	uint64_t x = 88172645463325252ull;

	for (int it = 0; it < 20000; it++) {
		uint32_t start = (uint32_t)(x >> 32);
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		struct pvio_ring_sring *s = setup(&fr, &br, start, ORDER_BYTES);
		uint32_t n = (uint32_t)x % (fr.nr_ents + 1);
		put_reqs(&fr, n, 0);
		uint32_t bad = (it & 1) ? (uint32_t)(x >> 16) : start + (uint32_t)(x % 80);
		__atomic_store_n(&s->req_prod, bad, __ATOMIC_RELEASE);
		int rc = pvio_ring_back_poll_requests(&br);
		if ((uint32_t)(bad - start) <= br.nr_ents) {
			ck_assert_int_eq(rc, (int)(bad - start));
		} else {
			ck_assert_int_eq(rc, -PVIO_RING_EPROTO);
		}
		struct pvio_blkif_request r;
		int got = 0;
		while (pvio_ring_blkif_copy_request(&br, &r) == 1)
			got++;
		ck_assert_int_eq(got, rc < 0 ? 0 : rc);
		ck_assert_int_le(got, (int)br.nr_ents);
	}
}
END_TEST

/* Our own misuse: full rings, nothing to answer, sizes, wrong types. */
START_TEST(caller_errors)
{
	struct pvio_ring_front fr;
	struct pvio_ring_back br;
	struct pvio_ring_front nfr;
	struct pvio_blkif_request r = { 0 };
	struct pvio_blkif_response rsp = { 0 };
	unsigned char big[256] = { 0 };

	setup(&fr, &br, 0, ORDER_BYTES);
	/* backend cannot answer before consuming */
	ck_assert_int_eq(pvio_ring_blkif_put_response(&br, &rsp), -PVIO_RING_ENOSPC);
	ck_assert_int_eq(pvio_ring_back_produce_response(&br), -PVIO_RING_ENOSPC);
	ck_assert(pvio_ring_back_response_slot(&br) == NULL);
	/* fill the ring */
	for (uint32_t i = 0; i < fr.nr_ents; i++)
		ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), 0);
	ck_assert(pvio_ring_front_full(&fr));
	ck_assert_uint_eq(pvio_ring_front_free_requests(&fr), 0);
	ck_assert_int_eq(pvio_ring_blkif_put_request(&fr, &r), -PVIO_RING_ENOSPC);
	ck_assert_int_eq(pvio_ring_front_produce_request(&fr), -PVIO_RING_ENOSPC);
	ck_assert(pvio_ring_front_request_slot(&fr) == NULL);
	/* len > entry size */
	ck_assert_int_eq(pvio_ring_front_put_request(&fr, big, sizeof(big)),
			 -PVIO_RING_EINVAL);
	ck_assert_int_eq(pvio_ring_back_copy_request(&br, big, sizeof(big)),
			 -PVIO_RING_EINVAL);
	/* typed wrapper on a ring of another entry size */
	ck_assert_int_gt(pvio_ring_netif_tx_front_init(&nfr, mem, ORDER_BYTES), 0);
	ck_assert_int_eq(pvio_ring_blkif_put_request(&nfr, &r), -PVIO_RING_EINVAL);
	ck_assert_ptr_null(pvio_ring_blkif_request_slot(&nfr));
	/* bad geometry */
	ck_assert_int_eq(pvio_ring_front_init(&nfr, mem, 100, 112), -PVIO_RING_EINVAL);
	ck_assert_int_eq(pvio_ring_back_init(&br, mem, 4096, 0), -PVIO_RING_EINVAL);
	ck_assert_int_eq(pvio_ring_front_init(&nfr, NULL, 4096, 112), -PVIO_RING_EINVAL);
	ck_assert_int_eq(pvio_ring_front_init_shared(&nfr, mem, 10, 112),
			 -PVIO_RING_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring-hostile");
	TCase *tc = tcase_create("hostile");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, back_req_prod_overflow, 0, NSTARTS);
	tcase_add_loop_test(tc, back_req_prod_far, 0, NSTARTS);
	tcase_add_loop_test(tc, back_req_prod_backwards, 0, NSTARTS);
	tcase_add_loop_test(tc, front_rsp_prod_overflow, 0, NSTARTS);
	tcase_add_loop_test(tc, snapshot_bounds, 0, NSTARTS);
	tcase_add_loop_test(tc, copy_once, 0, NSTARTS);
	tcase_add_test(tc, garbage_indices);
	tcase_add_test(tc, caller_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
