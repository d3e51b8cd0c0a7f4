/* SPDX-License-Identifier: MIT */
/*
 * Freestanding proof: this TU includes every pvio ring header and
 * instantiates every function out of line, and is built with
 * -ffreestanding -nostdinc (only the compiler's own stdint/stddef/stdbool)
 * -fno-builtin, and linked -nostdlib -shared -Wl,--no-undefined: if the
 * ring code needed memcpy, memset or any other libc symbol, the link fails
 * (and the nm -u test fails).
 *
 * Compiled with -m32 as well: then the _Static_asserts below check that
 * pvio's x86_32 blkif structs are exactly what an i386 compiler lays out
 * natively, and the ones in blkif_wire.h that the x86_64-ABI structs keep
 * their layout on i386.
 */
#include <pvio/blkif_wire.h>
#include <pvio/netif_wire.h>
#include <pvio/ring.h>

#define EXPORT __attribute__((visibility("default")))

#ifdef __i386__
struct native_i386_blkif_request {
	uint8_t operation;
	uint8_t nr_segments;
	uint16_t handle;
	uint64_t id;
	uint64_t sector_number;
	struct pvio_blkif_request_segment seg[11];
};
struct native_i386_blkif_response {
	uint64_t id;
	uint8_t operation;
	int16_t status;
};
struct native_i386_blkif_request_indirect {
	uint8_t operation;
	uint8_t indirect_op;
	uint16_t nr_segments;
	uint64_t id;
	uint64_t sector_number;
	uint16_t handle;
	uint32_t indirect_grefs[8];
	uint64_t pad;
};
struct native_i386_blkif_request_discard {
	uint8_t operation;
	uint8_t flag;
	uint16_t handle;
	uint64_t id;
	uint64_t sector_number;
	uint64_t nr_sectors;
};
#define SAMEOFF(a, b, f) _Static_assert(offsetof(a, f) == offsetof(b, f), #f)
_Static_assert(sizeof(struct native_i386_blkif_request) ==
	       sizeof(struct pvio_blkif_x86_32_request), "i386 req");
SAMEOFF(struct native_i386_blkif_request, struct pvio_blkif_x86_32_request, id);
SAMEOFF(struct native_i386_blkif_request, struct pvio_blkif_x86_32_request, sector_number);
SAMEOFF(struct native_i386_blkif_request, struct pvio_blkif_x86_32_request, seg);
_Static_assert(sizeof(struct native_i386_blkif_response) ==
	       sizeof(struct pvio_blkif_x86_32_response), "i386 rsp");
SAMEOFF(struct native_i386_blkif_response, struct pvio_blkif_x86_32_response, status);
_Static_assert(sizeof(struct native_i386_blkif_request_indirect) ==
	       sizeof(struct pvio_blkif_x86_32_request_indirect), "i386 ind");
SAMEOFF(struct native_i386_blkif_request_indirect,
	struct pvio_blkif_x86_32_request_indirect, indirect_grefs);
SAMEOFF(struct native_i386_blkif_request_indirect,
	struct pvio_blkif_x86_32_request_indirect, handle);
_Static_assert(sizeof(struct native_i386_blkif_request_discard) ==
	       sizeof(struct pvio_blkif_x86_32_request_discard), "i386 disc");
SAMEOFF(struct native_i386_blkif_request_discard,
	struct pvio_blkif_x86_32_request_discard, nr_sectors);
#endif

EXPORT uint32_t fs_nr_ents(size_t e, size_t b) { return pvio_ring_nr_ents(e, b); }
EXPORT int fs_nr_ents_order(size_t e, unsigned o) { return pvio_ring_nr_ents_order(e, o); }
EXPORT void fs_sring_init(struct pvio_ring_sring *s) { pvio_ring_sring_init(s); }

EXPORT int fs_front_init_shared(struct pvio_ring_front *f, void *s, size_t b, size_t e)
{
	return pvio_ring_front_init_shared(f, s, b, e);
}
EXPORT int fs_front_init(struct pvio_ring_front *f, void *s, size_t b, size_t e)
{
	return pvio_ring_front_init(f, s, b, e);
}
EXPORT int fs_back_init(struct pvio_ring_back *r, void *s, size_t b, size_t e)
{
	return pvio_ring_back_init(r, s, b, e);
}
EXPORT uint32_t fs_free(const struct pvio_ring_front *f) { return pvio_ring_front_free_requests(f); }
EXPORT bool fs_full(const struct pvio_ring_front *f) { return pvio_ring_front_full(f); }
EXPORT volatile void *fs_req_slot(struct pvio_ring_front *f) { return pvio_ring_front_request_slot(f); }
EXPORT int fs_produce_req(struct pvio_ring_front *f) { return pvio_ring_front_produce_request(f); }
EXPORT int fs_put_req(struct pvio_ring_front *f, const void *r, size_t l)
{
	return pvio_ring_front_put_request(f, r, l);
}
EXPORT bool fs_push_req(struct pvio_ring_front *f) { return pvio_ring_front_push_requests(f); }
EXPORT int fs_poll_rsp(struct pvio_ring_front *f) { return pvio_ring_front_poll_responses(f); }
EXPORT int fs_copy_rsp(struct pvio_ring_front *f, void *d, size_t l)
{
	return pvio_ring_front_copy_response(f, d, l);
}
EXPORT int fs_final_rsp(struct pvio_ring_front *f) { return pvio_ring_front_final_check(f); }
EXPORT int fs_poll_req(struct pvio_ring_back *b) { return pvio_ring_back_poll_requests(b); }
EXPORT int fs_copy_req(struct pvio_ring_back *b, void *d, size_t l)
{
	return pvio_ring_back_copy_request(b, d, l);
}
EXPORT int fs_final_req(struct pvio_ring_back *b) { return pvio_ring_back_final_check(b); }
EXPORT uint32_t fs_free_rsp(const struct pvio_ring_back *b) { return pvio_ring_back_free_responses(b); }
EXPORT volatile void *fs_rsp_slot(struct pvio_ring_back *b) { return pvio_ring_back_response_slot(b); }
EXPORT int fs_produce_rsp(struct pvio_ring_back *b) { return pvio_ring_back_produce_response(b); }
EXPORT int fs_put_rsp(struct pvio_ring_back *b, const void *r, size_t l)
{
	return pvio_ring_back_put_response(b, r, l);
}
EXPORT bool fs_push_rsp(struct pvio_ring_back *b) { return pvio_ring_back_push_responses(b); }

/* Typed wrappers: whole-struct copies are where a compiler likes to emit
 * memcpy calls, so instantiate every one. */
#define TYPED(nm, req_t, rsp_t)                                                \
	EXPORT int fs_##nm##_fi(struct pvio_ring_front *f, void *s, size_t b)  \
	{                                                                      \
		return pvio_ring_##nm##_front_init(f, s, b);                   \
	}                                                                      \
	EXPORT int fs_##nm##_bi(struct pvio_ring_back *r, void *s, size_t b)   \
	{                                                                      \
		return pvio_ring_##nm##_back_init(r, s, b);                    \
	}                                                                      \
	EXPORT uint32_t fs_##nm##_n(size_t b) { return pvio_ring_##nm##_nr_ents(b); } \
	EXPORT req_t *fs_##nm##_rqs(struct pvio_ring_front *f)                 \
	{                                                                      \
		return pvio_ring_##nm##_request_slot(f);                       \
	}                                                                      \
	EXPORT rsp_t *fs_##nm##_rss(struct pvio_ring_back *b)                  \
	{                                                                      \
		return pvio_ring_##nm##_response_slot(b);                      \
	}                                                                      \
	EXPORT int fs_##nm##_pq(struct pvio_ring_front *f, const req_t *r)     \
	{                                                                      \
		return pvio_ring_##nm##_put_request(f, r);                     \
	}                                                                      \
	EXPORT int fs_##nm##_cq(struct pvio_ring_back *b, req_t *r)            \
	{                                                                      \
		return pvio_ring_##nm##_copy_request(b, r);                    \
	}                                                                      \
	EXPORT int fs_##nm##_ps(struct pvio_ring_back *b, const rsp_t *r)      \
	{                                                                      \
		return pvio_ring_##nm##_put_response(b, r);                    \
	}                                                                      \
	EXPORT int fs_##nm##_cs(struct pvio_ring_front *f, rsp_t *r)           \
	{                                                                      \
		return pvio_ring_##nm##_copy_response(f, r);                   \
	}

TYPED(blkif, struct pvio_blkif_request, struct pvio_blkif_response)
TYPED(blkif_x86_32, struct pvio_blkif_x86_32_request, struct pvio_blkif_x86_32_response)
TYPED(netif_tx, struct pvio_netif_tx_request, struct pvio_netif_tx_response)
TYPED(netif_rx, struct pvio_netif_rx_request, struct pvio_netif_rx_response)

/* A whole request round trip on the stack: private structs of 112 bytes
 * copied in and out, the classic spot for an implicit memcpy. */
EXPORT int fs_roundtrip(void *ring_mem)
{
	struct pvio_ring_front f;
	struct pvio_ring_back b;
	struct pvio_blkif_request rq = { .operation = PVIO_BLKIF_OP_READ, .id = 1 };
	struct pvio_blkif_request got;
	struct pvio_blkif_response rs = { .id = 1 };
	struct pvio_blkif_response rgot;

	if (pvio_ring_front_init_shared(&f, ring_mem, PVIO_RING_BYTES(0),
					pvio_ring_blkif_entry_size()) < 0)
		return -1;
	pvio_ring_blkif_back_init(&b, ring_mem, PVIO_RING_BYTES(0));
	pvio_ring_blkif_put_request(&f, &rq);
	pvio_ring_front_push_requests(&f);
	pvio_ring_back_poll_requests(&b);
	pvio_ring_blkif_copy_request(&b, &got);
	pvio_ring_blkif_put_response(&b, &rs);
	pvio_ring_back_push_responses(&b);
	pvio_ring_front_final_check(&f);
	pvio_ring_blkif_copy_response(&f, &rgot);
	return (int)(got.id + rgot.id);
}
