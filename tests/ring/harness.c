/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xen_rings.h"
#include "harness.h"

#include <pvio/blkif_wire.h>
#include <pvio/netif_wire.h>

const struct h_proto_info h_protos[H_NPROTO] = {
	[H_BLKIF] = { "blkif", sizeof(struct blkif_request),
		      sizeof(struct blkif_response),
		      sizeof(union blkif_sring_entry) },
	[H_NETIF_TX] = { "netif_tx", sizeof(struct netif_tx_request),
			 sizeof(struct netif_tx_response),
			 sizeof(union netif_tx_sring_entry) },
	[H_NETIF_RX] = { "netif_rx", sizeof(struct netif_rx_request),
			 sizeof(struct netif_rx_response),
			 sizeof(union netif_rx_sring_entry) },
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "harness: %s failed: %d\n", what, rc);
	abort();
}

/*
 * The Xen side, instantiated per protocol with Xen's macros.  Entries are
 * moved with memcpy through RING_GET_* so that padding bytes travel too
 * (struct assignment need not copy padding) and ring memory can be
 * compared byte for byte between implementations.
 */
#define XEN_SIDE(nm, req_t, rsp_t)                                             \
	static void xen_##nm##_sinit(void *s, uint32_t idx)                    \
	{                                                                      \
		struct nm##_sring *sr = s;                                     \
		SHARED_RING_INIT(sr);                                          \
		if (idx) {                                                     \
			sr->req_prod = sr->rsp_prod = idx;                     \
			sr->req_event = sr->rsp_event = idx + 1;               \
		}                                                              \
	}                                                                      \
	static void xen_##nm##_fattach(struct h_end *e, void *s, size_t bytes, \
				       uint32_t idx)                           \
	{                                                                      \
		struct nm##_front_ring *f = (void *)&e->u.xen;                 \
		FRONT_RING_ATTACH(f, (struct nm##_sring *)s, idx, bytes);      \
	}                                                                      \
	static void xen_##nm##_battach(struct h_end *e, void *s, size_t bytes, \
				       uint32_t idx)                           \
	{                                                                      \
		struct nm##_back_ring *b = (void *)&e->u.xen;                  \
		BACK_RING_ATTACH(b, (struct nm##_sring *)s, idx, bytes);       \
	}                                                                      \
	static uint32_t xen_##nm##_ffree(const struct h_end *e)                \
	{                                                                      \
		const struct nm##_front_ring *f = (const void *)&e->u.xen;     \
		return RING_FREE_REQUESTS(f);                                  \
	}                                                                      \
	static void xen_##nm##_put_req(struct h_end *e, const void *req)       \
	{                                                                      \
		struct nm##_front_ring *f = (void *)&e->u.xen;                 \
		if (RING_FULL(f))                                              \
			die("xen put_req (full)", 0);                          \
		memcpy(RING_GET_REQUEST(f, f->req_prod_pvt), req,              \
		       sizeof(req_t));                                         \
		f->req_prod_pvt++;                                             \
	}                                                                      \
	static int xen_##nm##_fpush(struct h_end *e)                           \
	{                                                                      \
		struct nm##_front_ring *f = (void *)&e->u.xen;                 \
		int notify;                                                    \
		RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(f, notify);                \
		return notify;                                                 \
	}                                                                      \
	static unsigned xen_##nm##_ftake(struct h_end *e, unsigned max,        \
					 void *buf)                            \
	{                                                                      \
		struct nm##_front_ring *f = (void *)&e->u.xen;                 \
		RING_IDX rp = f->sring->rsp_prod;                              \
		unsigned n = 0;                                                \
		xen_rmb();                                                     \
		while (f->rsp_cons != rp && n < max) {                         \
			memcpy((char *)buf + n * sizeof(rsp_t),                \
			       RING_GET_RESPONSE(f, f->rsp_cons),              \
			       sizeof(rsp_t));                                 \
			f->rsp_cons++;                                         \
			n++;                                                   \
		}                                                              \
		return n;                                                      \
	}                                                                      \
	static int xen_##nm##_ffinal(struct h_end *e)                          \
	{                                                                      \
		struct nm##_front_ring *f = (void *)&e->u.xen;                 \
		int work;                                                      \
		RING_FINAL_CHECK_FOR_RESPONSES(f, work);                       \
		return work;                                                   \
	}                                                                      \
	static unsigned xen_##nm##_btake(struct h_end *e, unsigned max,        \
					 void *buf)                            \
	{                                                                      \
		struct nm##_back_ring *b = (void *)&e->u.xen;                  \
		RING_IDX rp = b->sring->req_prod;                              \
		unsigned n = 0;                                                \
		xen_rmb();                                                     \
		while (b->req_cons != rp && n < max &&                         \
		       !RING_REQUEST_CONS_OVERFLOW(b, b->req_cons)) {          \
			memcpy((char *)buf + n * sizeof(req_t),                \
			       RING_GET_REQUEST(b, b->req_cons),               \
			       sizeof(req_t));                                 \
			b->req_cons++;                                         \
			n++;                                                   \
		}                                                              \
		return n;                                                      \
	}                                                                      \
	static void xen_##nm##_put_rsp(struct h_end *e, const void *rsp)       \
	{                                                                      \
		struct nm##_back_ring *b = (void *)&e->u.xen;                  \
		if (b->rsp_prod_pvt == b->req_cons)                            \
			die("xen put_rsp (nothing consumed)", 0);              \
		memcpy(RING_GET_RESPONSE(b, b->rsp_prod_pvt), rsp,             \
		       sizeof(rsp_t));                                         \
		b->rsp_prod_pvt++;                                             \
	}                                                                      \
	static int xen_##nm##_bpush(struct h_end *e)                           \
	{                                                                      \
		struct nm##_back_ring *b = (void *)&e->u.xen;                  \
		int notify;                                                    \
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(b, notify);               \
		return notify;                                                 \
	}                                                                      \
	static int xen_##nm##_bfinal(struct h_end *e)                          \
	{                                                                      \
		struct nm##_back_ring *b = (void *)&e->u.xen;                  \
		int work;                                                      \
		RING_FINAL_CHECK_FOR_REQUESTS(b, work);                        \
		return work;                                                   \
	}

XEN_SIDE(blkif, struct blkif_request, struct blkif_response)
XEN_SIDE(netif_tx, struct netif_tx_request, struct netif_tx_response)
XEN_SIDE(netif_rx, struct netif_rx_request, struct netif_rx_response)

struct xen_ops {
	void (*sinit)(void *, uint32_t);
	void (*fattach)(struct h_end *, void *, size_t, uint32_t);
	void (*battach)(struct h_end *, void *, size_t, uint32_t);
	uint32_t (*ffree)(const struct h_end *);
	void (*put_req)(struct h_end *, const void *);
	int (*fpush)(struct h_end *);
	unsigned (*ftake)(struct h_end *, unsigned, void *);
	int (*ffinal)(struct h_end *);
	unsigned (*btake)(struct h_end *, unsigned, void *);
	void (*put_rsp)(struct h_end *, const void *);
	int (*bpush)(struct h_end *);
	int (*bfinal)(struct h_end *);
};

#define XEN_OPS(nm)                                                            \
	{ xen_##nm##_sinit, xen_##nm##_fattach, xen_##nm##_battach,            \
	  xen_##nm##_ffree, xen_##nm##_put_req, xen_##nm##_fpush,              \
	  xen_##nm##_ftake, xen_##nm##_ffinal, xen_##nm##_btake,               \
	  xen_##nm##_put_rsp, xen_##nm##_bpush, xen_##nm##_bfinal }

static const struct xen_ops xen_ops[H_NPROTO] = {
	[H_BLKIF] = XEN_OPS(blkif),
	[H_NETIF_TX] = XEN_OPS(netif_tx),
	[H_NETIF_RX] = XEN_OPS(netif_rx),
};

void h_sring_init(enum h_impl impl, enum h_proto p, void *sring, uint32_t idx)
{
	struct pvio_ring_sring *s = sring;

	if (impl == H_XEN) {
		xen_ops[p].sinit(sring, idx);
		return;
	}
	pvio_ring_sring_init(s);
	if (idx) {
		s->req_prod = s->rsp_prod = idx;
		s->req_event = s->rsp_event = idx + 1;
	}
}

void h_front_attach(struct h_end *e, enum h_impl impl, enum h_proto p,
		    void *sring, size_t bytes, uint32_t idx)
{
	int rc;

	memset(e, 0, sizeof(*e));
	e->proto = p;
	e->impl = impl;
	e->sring = sring;
	if (impl == H_XEN) {
		xen_ops[p].fattach(e, sring, bytes, idx);
		e->nr_ents = e->u.xen.n;
		return;
	}
	rc = pvio_ring_front_attach(&e->u.pf, sring, bytes,
				    h_protos[p].entry_size, idx);
	if (rc <= 0)
		die("pvio_ring_front_attach", rc);
	e->nr_ents = (uint32_t)rc;
}

void h_back_attach(struct h_end *e, enum h_impl impl, enum h_proto p,
		   void *sring, size_t bytes, uint32_t idx)
{
	int rc;

	memset(e, 0, sizeof(*e));
	e->proto = p;
	e->impl = impl;
	e->sring = sring;
	if (impl == H_XEN) {
		xen_ops[p].battach(e, sring, bytes, idx);
		e->nr_ents = e->u.xen.n;
		return;
	}
	rc = pvio_ring_back_attach(&e->u.pb, sring, bytes,
				   h_protos[p].entry_size, idx);
	if (rc <= 0)
		die("pvio_ring_back_attach", rc);
	e->nr_ents = (uint32_t)rc;
}

uint32_t h_nr_ents(const struct h_end *e)
{
	return e->nr_ents;
}

uint32_t h_front_free(const struct h_end *e)
{
	if (e->impl == H_XEN)
		return xen_ops[e->proto].ffree(e);
	return pvio_ring_front_free_requests(&e->u.pf);
}

void h_front_put_req(struct h_end *e, const void *req)
{
	int rc;

	if (e->impl == H_XEN) {
		xen_ops[e->proto].put_req(e, req);
		return;
	}
	rc = pvio_ring_front_put_request(&e->u.pf, req,
					 h_protos[e->proto].req_size);
	if (rc)
		die("pvio_ring_front_put_request", rc);
}

int h_front_push(struct h_end *e)
{
	if (e->impl == H_XEN)
		return xen_ops[e->proto].fpush(e);
	return pvio_ring_front_push_requests(&e->u.pf);
}

unsigned h_front_take(struct h_end *e, unsigned max, void *buf)
{
	size_t sz = h_protos[e->proto].rsp_size;
	unsigned n = 0;
	int rc;

	if (e->impl == H_XEN)
		return xen_ops[e->proto].ftake(e, max, buf);
	rc = pvio_ring_front_poll_responses(&e->u.pf);
	if (rc < 0)
		die("pvio_ring_front_poll_responses", rc);
	while (n < max) {
		rc = pvio_ring_front_copy_response(&e->u.pf,
						   (char *)buf + n * sz, sz);
		if (rc < 0)
			die("pvio_ring_front_copy_response", rc);
		if (rc == 0)
			break;
		n++;
	}
	return n;
}

int h_front_final(struct h_end *e)
{
	int rc;

	if (e->impl == H_XEN)
		return xen_ops[e->proto].ffinal(e);
	rc = pvio_ring_front_final_check(&e->u.pf);
	if (rc < 0)
		die("pvio_ring_front_final_check", rc);
	return rc;
}

unsigned h_back_take(struct h_end *e, unsigned max, void *buf)
{
	size_t sz = h_protos[e->proto].req_size;
	unsigned n = 0;
	int rc;

	if (e->impl == H_XEN)
		return xen_ops[e->proto].btake(e, max, buf);
	rc = pvio_ring_back_poll_requests(&e->u.pb);
	if (rc < 0)
		die("pvio_ring_back_poll_requests", rc);
	while (n < max) {
		rc = pvio_ring_back_copy_request(&e->u.pb,
						 (char *)buf + n * sz, sz);
		if (rc < 0)
			die("pvio_ring_back_copy_request", rc);
		if (rc == 0)
			break;
		n++;
	}
	return n;
}

void h_back_put_rsp(struct h_end *e, const void *rsp)
{
	int rc;

	if (e->impl == H_XEN) {
		xen_ops[e->proto].put_rsp(e, rsp);
		return;
	}
	rc = pvio_ring_back_put_response(&e->u.pb, rsp,
					 h_protos[e->proto].rsp_size);
	if (rc)
		die("pvio_ring_back_put_response", rc);
}

int h_back_push(struct h_end *e)
{
	if (e->impl == H_XEN)
		return xen_ops[e->proto].bpush(e);
	return pvio_ring_back_push_responses(&e->u.pb);
}

int h_back_final(struct h_end *e)
{
	int rc;

	if (e->impl == H_XEN)
		return xen_ops[e->proto].bfinal(e);
	rc = pvio_ring_back_final_check(&e->u.pb);
	if (rc < 0)
		die("pvio_ring_back_final_check", rc);
	return rc;
}

static uint8_t h_byte(uint64_t seq, size_t i, unsigned kind)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull +
		     kind * 0x94d049bb133111ebull;

	x ^= x >> 31;
	x *= 0xd6e9f8cda9c1ccabull;
	return (uint8_t)(x >> 56);
}

void h_fill(void *buf, size_t len, uint64_t seq, unsigned kind)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = h_byte(seq, i, kind);
}

bool h_check(const void *buf, size_t len, uint64_t seq, unsigned kind)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i] != h_byte(seq, i, kind))
			return false;
	return true;
}
