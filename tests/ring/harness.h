/* SPDX-License-Identifier: MIT */
/*
 * Ring test harness: one "end" interface with two implementations, Xen's
 * own io/ring.h macros and pvio's ring.h, for three protocols (blkif,
 * netif tx, netif rx).  Tests drive any front against any back on the
 * same shared memory and compare what each implementation decides.
 */
#ifndef PVIO_TEST_RING_HARNESS_H
#define PVIO_TEST_RING_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pvio/ring.h>

enum h_proto { H_BLKIF, H_NETIF_TX, H_NETIF_RX, H_NPROTO };
enum h_impl { H_XEN, H_PVIO };

struct h_proto_info {
	const char *name;
	size_t req_size;
	size_t rsp_size;
	size_t entry_size;
};

extern const struct h_proto_info h_protos[H_NPROTO];

/* Opaque per-end state; big enough for either implementation. */
struct h_end {
	enum h_proto proto;
	enum h_impl impl;
	void *sring;
	uint32_t nr_ents;
	union {
		struct pvio_ring_front pf;
		struct pvio_ring_back pb;
		struct {
			uint32_t a, b, n;
			void *s;
		} xen; /* layout of every Xen X_front_ring / X_back_ring */
	} u;
};

/* Shared-ring initialisation as the frontend does it.  idx == 0 uses the
 * implementation's SHARED_RING_INIT; otherwise the indices are set to idx
 * and the events to idx + 1 (a ring "already used" up to idx). */
void h_sring_init(enum h_impl impl, enum h_proto p, void *sring, uint32_t idx);

void h_front_attach(struct h_end *e, enum h_impl impl, enum h_proto p,
		    void *sring, size_t bytes, uint32_t idx);
void h_back_attach(struct h_end *e, enum h_impl impl, enum h_proto p,
		   void *sring, size_t bytes, uint32_t idx);

uint32_t h_nr_ents(const struct h_end *e);
uint32_t h_front_free(const struct h_end *e);
/* Precondition: h_front_free() > 0.  req is req_size bytes. */
void h_front_put_req(struct h_end *e, const void *req);
/* Push with notification check; returns the notify decision. */
int h_front_push(struct h_end *e);
/* Take up to max responses (one read of rsp_prod); returns the count. */
unsigned h_front_take(struct h_end *e, unsigned max, void *buf);
/* RING_FINAL_CHECK_FOR_RESPONSES: returns work_to_do (count). */
int h_front_final(struct h_end *e);

unsigned h_back_take(struct h_end *e, unsigned max, void *buf);
/* Precondition: a consumed request is unanswered. */
void h_back_put_rsp(struct h_end *e, const void *rsp);
int h_back_push(struct h_end *e);
int h_back_final(struct h_end *e);

/* Deterministic payload for message seq of the given kind (1 req, 2 rsp). */
void h_fill(void *buf, size_t len, uint64_t seq, unsigned kind);
bool h_check(const void *buf, size_t len, uint64_t seq, unsigned kind);

#endif
