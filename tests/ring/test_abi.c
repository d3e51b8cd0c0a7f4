/* SPDX-License-Identifier: MIT */
/*
 * ABI: pvio's shared-ring header, ring geometry and blkif/netif wire
 * structs against Xen's public headers (x86_64), and the x86_32 blkif
 * layouts against a #pragma pack(4) rendition and hand-computed offsets.
 */
#include <check.h>
#include <stdlib.h>

#include "xen_rings.h"

#include <pvio/blkif_wire.h>
#include <pvio/netif_wire.h>
#include <pvio/ring.h>

#define FIELD_EQ(pt, xt, pf, xf)                                               \
	do {                                                                   \
		ck_assert_uint_eq(offsetof(pt, pf), offsetof(xt, xf));         \
		ck_assert_uint_eq(sizeof(((pt *)0)->pf), sizeof(((xt *)0)->xf)); \
	} while (0)
#define SAME(pt, xt, f) FIELD_EQ(pt, xt, f, f)

START_TEST(sring_header)
{
	ck_assert_uint_eq(sizeof(struct pvio_ring_sring), 64);
	SAME(struct pvio_ring_sring, struct blkif_sring, req_prod);
	SAME(struct pvio_ring_sring, struct blkif_sring, req_event);
	SAME(struct pvio_ring_sring, struct blkif_sring, rsp_prod);
	SAME(struct pvio_ring_sring, struct blkif_sring, rsp_event);
	SAME(struct pvio_ring_sring, struct blkif_sring, pvt);
	SAME(struct pvio_ring_sring, struct blkif_sring, pvt.pvt_pad);
	SAME(struct pvio_ring_sring, struct blkif_sring, pvt.netif.smartpoll_active);
	SAME(struct pvio_ring_sring, struct blkif_sring, pvt.tapif_user.msg);
	FIELD_EQ(struct pvio_ring_sring, struct blkif_sring, pad, __pad);
	ck_assert_uint_eq(offsetof(struct pvio_ring_sring, ring),
			  offsetof(struct blkif_sring, ring));
	ck_assert_uint_eq(offsetof(struct pvio_ring_sring, ring),
			  offsetof(struct netif_tx_sring, ring));
	ck_assert_uint_eq(offsetof(struct pvio_ring_sring, ring),
			  offsetof(struct netif_rx_sring, ring));
}
END_TEST

START_TEST(entry_sizes)
{
	ck_assert_uint_eq(pvio_ring_blkif_entry_size(), sizeof(union blkif_sring_entry));
	ck_assert_uint_eq(pvio_ring_netif_tx_entry_size(),
			  sizeof(union netif_tx_sring_entry));
	ck_assert_uint_eq(pvio_ring_netif_rx_entry_size(),
			  sizeof(union netif_rx_sring_entry));
	ck_assert_uint_eq(PVIO_RING_ENTRY_SIZE(struct pvio_blkif_request,
					       struct pvio_blkif_response),
			  sizeof(union blkif_sring_entry));
	ck_assert_uint_eq(pvio_ring_blkif_x86_32_entry_size(), 108);
}
END_TEST

/* Ring sizes for orders 0..4 equal __CONST_RING_SIZE and __RING_SIZE. */
START_TEST(ring_sizes)
{
	static unsigned char mem[PVIO_RING_BYTES(PVIO_RING_MAX_ORDER)]
		__attribute__((aligned(4096)));
	unsigned order = (unsigned)_i;
	size_t bytes = PVIO_RING_BYTES(order);
	struct blkif_sring *bs = (void *)mem;
	struct netif_tx_sring *ts = (void *)mem;
	struct netif_rx_sring *rs = (void *)mem;
	unsigned long xb, xt, xr;

	xb = __CONST_RING_SIZE(blkif, bytes);
	xt = __CONST_RING_SIZE(netif_tx, bytes);
	xr = __CONST_RING_SIZE(netif_rx, bytes);
	ck_assert_uint_eq(xb, __RING_SIZE(bs, bytes));
	ck_assert_uint_eq(xt, __RING_SIZE(ts, bytes));
	ck_assert_uint_eq(xr, __RING_SIZE(rs, bytes));

	ck_assert_uint_eq(pvio_ring_blkif_nr_ents(bytes), xb);
	ck_assert_uint_eq(pvio_ring_netif_tx_nr_ents(bytes), xt);
	ck_assert_uint_eq(pvio_ring_netif_rx_nr_ents(bytes), xr);
	ck_assert_int_eq(pvio_ring_nr_ents_order(pvio_ring_blkif_entry_size(), order),
			 (int)xb);
	ck_assert_int_eq(pvio_ring_nr_ents_order(pvio_ring_netif_tx_entry_size(), order),
			 (int)xt);
	ck_assert_int_eq(pvio_ring_nr_ents_order(pvio_ring_netif_rx_entry_size(), order),
			 (int)xr);
	/* Known values: blkif 32/64/128/256/512, netif tx/rx 256 << order. */
	ck_assert_uint_eq(xb, 32u << order);
	ck_assert_uint_eq(xt, 256u << order);
	ck_assert_uint_eq(xr, 256u << order);
	/* x86_32 blkif (108-byte entries): 4032/108 = 37 -> 32, ... */
	ck_assert_uint_eq(pvio_ring_blkif_x86_32_nr_ents(bytes), 32u << order);

	/* init returns the same count and leaves the Xen-visible state. */
	struct pvio_ring_front fr;
	struct blkif_front_ring xfr;
	ck_assert_int_eq(pvio_ring_blkif_front_init(&fr, mem, bytes), (int)xb);
	FRONT_RING_INIT(&xfr, bs, bytes);
	ck_assert_uint_eq(fr.nr_ents, xfr.nr_ents);
	ck_assert_uint_eq(fr.req_prod_pvt, xfr.req_prod_pvt);
	ck_assert_uint_eq(fr.rsp_cons, xfr.rsp_cons);
}
END_TEST

/* __RD32 behaviour for arbitrary sizes, not just whole pages. */
START_TEST(ring_size_rounding)
{
	for (size_t bytes = 0; bytes < 70000; bytes += 37) {
		for (size_t esz = 1; esz < 200; esz += 13) {
			uint32_t n = pvio_ring_nr_ents(esz, bytes);
			size_t q = bytes >= 64 ? (bytes - 64) / esz : 0;
			uint32_t x = __RD32((uint32_t)q);

			ck_assert_uint_eq(n, x);
		}
	}
	ck_assert_int_eq(pvio_ring_nr_ents_order(112, PVIO_RING_MAX_ORDER + 1),
			 -PVIO_RING_EINVAL);
	ck_assert_int_eq(pvio_ring_nr_ents_order(5000, 0), -PVIO_RING_EINVAL);
	ck_assert_uint_eq(pvio_ring_nr_ents(0, 4096), 0);
	ck_assert_uint_eq(pvio_ring_nr_ents(112, 63), 0);
}
END_TEST

START_TEST(sring_init)
{
	static unsigned char a[4096], b[4096];

	memset(a, 0xa5, sizeof(a));
	memset(b, 0xa5, sizeof(b));
	pvio_ring_sring_init((void *)a);
	SHARED_RING_INIT((struct blkif_sring *)b);
	ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
	ck_assert_uint_eq(((struct blkif_sring *)a)->req_event, 1);
	ck_assert_uint_eq(((struct blkif_sring *)a)->rsp_event, 1);

	/* init_shared == XEN_FRONT_RING_INIT */
	struct pvio_ring_front fr;
	struct blkif_front_ring xfr;
	memset(a, 0x5a, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	ck_assert_int_eq(pvio_ring_front_init_shared(&fr, a, sizeof(a),
						     pvio_ring_blkif_entry_size()),
			 32);
	XEN_FRONT_RING_INIT(&xfr, (struct blkif_sring *)b, sizeof(b));
	ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
}
END_TEST

START_TEST(blkif_structs)
{
	typedef struct pvio_blkif_request P;
	typedef struct blkif_request X;

	ck_assert_uint_eq(sizeof(P), sizeof(X));
	ck_assert_uint_eq(_Alignof(P), _Alignof(X));
	SAME(P, X, operation);
	SAME(P, X, nr_segments);
	SAME(P, X, handle);
	SAME(P, X, id);
	SAME(P, X, sector_number);
	SAME(P, X, seg);
	SAME(P, X, seg[10]);
	SAME(P, X, seg[3].gref);
	SAME(P, X, seg[3].first_sect);
	SAME(P, X, seg[3].last_sect);

	ck_assert_uint_eq(sizeof(struct pvio_blkif_request_segment),
			  sizeof(struct blkif_request_segment));
	SAME(struct pvio_blkif_request_segment, struct blkif_request_segment, gref);
	SAME(struct pvio_blkif_request_segment, struct blkif_request_segment, first_sect);
	SAME(struct pvio_blkif_request_segment, struct blkif_request_segment, last_sect);

	typedef struct pvio_blkif_request_discard PD;
	typedef struct blkif_request_discard XD;
	ck_assert_uint_eq(sizeof(PD), sizeof(XD));
	SAME(PD, XD, operation);
	SAME(PD, XD, flag);
	SAME(PD, XD, handle);
	SAME(PD, XD, id);
	SAME(PD, XD, sector_number);
	SAME(PD, XD, nr_sectors);

	typedef struct pvio_blkif_request_indirect PI;
	typedef struct blkif_request_indirect XI;
	ck_assert_uint_eq(sizeof(PI), sizeof(XI));
	SAME(PI, XI, operation);
	SAME(PI, XI, indirect_op);
	SAME(PI, XI, nr_segments);
	SAME(PI, XI, id);
	SAME(PI, XI, sector_number);
	SAME(PI, XI, handle);
	SAME(PI, XI, indirect_grefs);

	/* "other" is the common prefix of every request (Linux's u.other). */
	typedef struct pvio_blkif_request_other PO;
	FIELD_EQ(PO, X, operation, operation);
	FIELD_EQ(PO, X, id, id);
	FIELD_EQ(PO, XD, id, id);
	FIELD_EQ(PO, XI, id, id);

	typedef struct pvio_blkif_response PR;
	typedef struct blkif_response XR;
	ck_assert_uint_eq(sizeof(PR), sizeof(XR));
	SAME(PR, XR, id);
	SAME(PR, XR, operation);
	SAME(PR, XR, status);

	ck_assert_int_eq(PVIO_BLKIF_OP_READ, BLKIF_OP_READ);
	ck_assert_int_eq(PVIO_BLKIF_OP_WRITE, BLKIF_OP_WRITE);
	ck_assert_int_eq(PVIO_BLKIF_OP_WRITE_BARRIER, BLKIF_OP_WRITE_BARRIER);
	ck_assert_int_eq(PVIO_BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_FLUSH_DISKCACHE);
	ck_assert_int_eq(PVIO_BLKIF_OP_RESERVED_1, BLKIF_OP_RESERVED_1);
	ck_assert_int_eq(PVIO_BLKIF_OP_DISCARD, BLKIF_OP_DISCARD);
	ck_assert_int_eq(PVIO_BLKIF_OP_INDIRECT, BLKIF_OP_INDIRECT);
	ck_assert_int_eq(PVIO_BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_EOPNOTSUPP);
	ck_assert_int_eq(PVIO_BLKIF_RSP_ERROR, BLKIF_RSP_ERROR);
	ck_assert_int_eq(PVIO_BLKIF_RSP_OKAY, BLKIF_RSP_OKAY);
	ck_assert_int_eq(PVIO_BLKIF_DISCARD_SECURE, BLKIF_DISCARD_SECURE);
	ck_assert_int_eq(PVIO_VDISK_CDROM, VDISK_CDROM);
	ck_assert_int_eq(PVIO_VDISK_REMOVABLE, VDISK_REMOVABLE);
	ck_assert_int_eq(PVIO_VDISK_READONLY, VDISK_READONLY);
	ck_assert_int_eq(PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST,
			 BLKIF_MAX_SEGMENTS_PER_REQUEST);
	ck_assert_int_eq(PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
			 BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
	ck_assert_uint_eq(PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME, 512);
	ck_assert_uint_eq(PVIO_BLKIF_SECTORS_PER_PAGE, 8);
}
END_TEST

/* The x86_32 ABI as i386 gcc lays it out: 64-bit fields 4-byte aligned. */
#pragma pack(push, 4)
struct x32_blkif_request {
	uint8_t operation;
	uint8_t nr_segments;
	uint16_t handle;
	uint64_t id;
	uint64_t sector_number;
	struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct x32_blkif_request_discard {
	uint8_t operation;
	uint8_t flag;
	uint16_t handle;
	uint64_t id;
	uint64_t sector_number;
	uint64_t nr_sectors;
};
struct x32_blkif_request_indirect {
	uint8_t operation;
	uint8_t indirect_op;
	uint16_t nr_segments;
	uint64_t id;
	uint64_t sector_number;
	uint16_t handle;
	grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	uint64_t pad; /* Xen: "Make it 64 byte aligned on i386" */
};
struct x32_blkif_response {
	uint64_t id;
	uint8_t operation;
	int16_t status;
};
union x32_blkif_entry {
	struct x32_blkif_request req;
	struct x32_blkif_response rsp;
};
#pragma pack(pop)

START_TEST(blkif_x86_32)
{
	typedef struct pvio_blkif_x86_32_request P;
	typedef struct x32_blkif_request X;

	/* Hand-computed i386 offsets. */
	ck_assert_uint_eq(offsetof(P, operation), 0);
	ck_assert_uint_eq(offsetof(P, nr_segments), 1);
	ck_assert_uint_eq(offsetof(P, handle), 2);
	ck_assert_uint_eq(offsetof(P, id), 4);
	ck_assert_uint_eq(offsetof(P, sector_number), 12);
	ck_assert_uint_eq(offsetof(P, seg), 20);
	ck_assert_uint_eq(sizeof(P), 108);
	ck_assert_uint_eq(_Alignof(P), 4);
	/* And the pack(4) rendition. */
	ck_assert_uint_eq(sizeof(P), sizeof(X));
	SAME(P, X, operation);
	SAME(P, X, nr_segments);
	SAME(P, X, handle);
	SAME(P, X, id);
	SAME(P, X, sector_number);
	SAME(P, X, seg);

	typedef struct pvio_blkif_x86_32_request_discard PD;
	typedef struct x32_blkif_request_discard XD;
	ck_assert_uint_eq(sizeof(PD), 28);
	ck_assert_uint_eq(sizeof(PD), sizeof(XD));
	ck_assert_uint_eq(offsetof(PD, nr_sectors), 20);
	SAME(PD, XD, flag);
	SAME(PD, XD, handle);
	SAME(PD, XD, id);
	SAME(PD, XD, sector_number);
	SAME(PD, XD, nr_sectors);

	typedef struct pvio_blkif_x86_32_request_indirect PI;
	typedef struct x32_blkif_request_indirect XI;
	ck_assert_uint_eq(sizeof(PI), 64);
	ck_assert_uint_eq(sizeof(PI), sizeof(XI));
	ck_assert_uint_eq(offsetof(PI, handle), 20);
	ck_assert_uint_eq(offsetof(PI, indirect_grefs), 24);
	SAME(PI, XI, indirect_op);
	SAME(PI, XI, nr_segments);
	SAME(PI, XI, id);
	SAME(PI, XI, sector_number);
	SAME(PI, XI, handle);
	SAME(PI, XI, indirect_grefs);

	ck_assert_uint_eq(sizeof(struct pvio_blkif_x86_32_request_other), 12);
	ck_assert_uint_eq(offsetof(struct pvio_blkif_x86_32_request_other, id), 4);

	typedef struct pvio_blkif_x86_32_response PR;
	typedef struct x32_blkif_response XR;
	ck_assert_uint_eq(sizeof(PR), 12);
	ck_assert_uint_eq(sizeof(PR), sizeof(XR));
	ck_assert_uint_eq(offsetof(PR, operation), 8);
	ck_assert_uint_eq(offsetof(PR, status), 10);
	SAME(PR, XR, id);
	SAME(PR, XR, operation);
	SAME(PR, XR, status);

	ck_assert_uint_eq(pvio_ring_blkif_x86_32_entry_size(),
			  sizeof(union x32_blkif_entry));
}
END_TEST

START_TEST(netif_structs)
{
	typedef struct pvio_netif_tx_request PT;
	typedef struct netif_tx_request XT;
	ck_assert_uint_eq(sizeof(PT), sizeof(XT));
	SAME(PT, XT, gref);
	SAME(PT, XT, offset);
	SAME(PT, XT, flags);
	SAME(PT, XT, id);
	SAME(PT, XT, size);

	typedef struct pvio_netif_tx_response PTR;
	typedef struct netif_tx_response XTR;
	ck_assert_uint_eq(sizeof(PTR), sizeof(XTR));
	SAME(PTR, XTR, id);
	SAME(PTR, XTR, status);

	typedef struct pvio_netif_rx_request PR;
	typedef struct netif_rx_request XR;
	ck_assert_uint_eq(sizeof(PR), sizeof(XR));
	SAME(PR, XR, id);
	SAME(PR, XR, pad);
	SAME(PR, XR, gref);

	typedef struct pvio_netif_rx_response PRR;
	typedef struct netif_rx_response XRR;
	ck_assert_uint_eq(sizeof(PRR), sizeof(XRR));
	SAME(PRR, XRR, id);
	SAME(PRR, XRR, offset);
	SAME(PRR, XRR, flags);
	SAME(PRR, XRR, status);

	typedef struct pvio_netif_extra_info PE;
	typedef struct netif_extra_info XE;
	ck_assert_uint_eq(sizeof(PE), sizeof(XE));
	ck_assert_uint_eq(_Alignof(PE), _Alignof(XE));
	SAME(PE, XE, type);
	SAME(PE, XE, flags);
	SAME(PE, XE, u);
	SAME(PE, XE, u.gso.size);
	SAME(PE, XE, u.gso.type);
	SAME(PE, XE, u.gso.pad);
	SAME(PE, XE, u.gso.features);
	SAME(PE, XE, u.mcast.addr);
	SAME(PE, XE, u.hash.type);
	SAME(PE, XE, u.hash.algorithm);
	SAME(PE, XE, u.hash.value);
	SAME(PE, XE, u.pad);
	/* An extra-info slot must fit in a tx request slot. */
	ck_assert_uint_le(sizeof(PE), pvio_ring_netif_tx_entry_size());

	ck_assert_uint_eq(PVIO_NETTXF_csum_blank, NETTXF_csum_blank);
	ck_assert_uint_eq(PVIO_NETTXF_data_validated, NETTXF_data_validated);
	ck_assert_uint_eq(PVIO_NETTXF_more_data, NETTXF_more_data);
	ck_assert_uint_eq(PVIO_NETTXF_extra_info, NETTXF_extra_info);
	ck_assert_uint_eq(PVIO_NETRXF_data_validated, NETRXF_data_validated);
	ck_assert_uint_eq(PVIO_NETRXF_csum_blank, NETRXF_csum_blank);
	ck_assert_uint_eq(PVIO_NETRXF_more_data, NETRXF_more_data);
	ck_assert_uint_eq(PVIO_NETRXF_extra_info, NETRXF_extra_info);
	ck_assert_uint_eq(PVIO_NETRXF_gso_prefix, NETRXF_gso_prefix);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_NONE, XEN_NETIF_EXTRA_TYPE_NONE);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_TYPE_GSO);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_MCAST_DEL, XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_HASH, XEN_NETIF_EXTRA_TYPE_HASH);
	ck_assert_int_eq(PVIO_XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_MAX);
	ck_assert_uint_eq(PVIO_XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_FLAG_MORE);
	ck_assert_int_eq(PVIO_XEN_NETIF_GSO_TYPE_NONE, XEN_NETIF_GSO_TYPE_NONE);
	ck_assert_int_eq(PVIO_XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV4);
	ck_assert_int_eq(PVIO_XEN_NETIF_GSO_TYPE_TCPV6, XEN_NETIF_GSO_TYPE_TCPV6);
	ck_assert_uint_eq(PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4, XEN_NETIF_CTRL_HASH_TYPE_IPV4);
	ck_assert_uint_eq(PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP,
			  XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
	ck_assert_uint_eq(PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6, XEN_NETIF_CTRL_HASH_TYPE_IPV6);
	ck_assert_uint_eq(PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP,
			  XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP);
	ck_assert_int_eq(PVIO_XEN_NETIF_CTRL_HASH_ALGORITHM_NONE,
			 XEN_NETIF_CTRL_HASH_ALGORITHM_NONE);
	ck_assert_int_eq(PVIO_XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ,
			 XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ);
	ck_assert_int_eq(PVIO_NETIF_RSP_DROPPED, NETIF_RSP_DROPPED);
	ck_assert_int_eq(PVIO_NETIF_RSP_ERROR, NETIF_RSP_ERROR);
	ck_assert_int_eq(PVIO_NETIF_RSP_OKAY, NETIF_RSP_OKAY);
	ck_assert_int_eq(PVIO_NETIF_RSP_NULL, NETIF_RSP_NULL);
	ck_assert_int_eq(PVIO_XEN_NETIF_NR_SLOTS_MIN, XEN_NETIF_NR_SLOTS_MIN);
	ck_assert_int_eq(PVIO_XEN_NETIF_MAX_TX_SIZE, XEN_NETIF_MAX_TX_SIZE);
}
END_TEST

START_TEST(errno_values)
{
	/* Linux errno numbers, so callers can return them as -errno. */
	ck_assert_int_eq(PVIO_RING_EAGAIN, 11);
	ck_assert_int_eq(PVIO_RING_EINVAL, 22);
	ck_assert_int_eq(PVIO_RING_ENOSPC, 28);
	ck_assert_int_eq(PVIO_RING_EPROTO, 71);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring-abi");
	TCase *tc = tcase_create("abi");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, sring_header);
	tcase_add_test(tc, entry_sizes);
	tcase_add_loop_test(tc, ring_sizes, 0, PVIO_RING_MAX_ORDER + 1);
	tcase_add_test(tc, ring_size_rounding);
	tcase_add_test(tc, sring_init);
	tcase_add_test(tc, blkif_structs);
	tcase_add_test(tc, blkif_x86_32);
	tcase_add_test(tc, netif_structs);
	tcase_add_test(tc, errno_values);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
