/* SPDX-License-Identifier: MIT */
/*
 * pvio/ring.h — Xen shared I/O rings, freestanding.
 *
 * The shared page(s) have exactly the layout that Xen's DEFINE_RING_TYPES
 * (<xen/io/ring.h>) gives: a 64-byte header (four 32-bit indices, a 4-byte
 * private union, 44 bytes of padding) followed by nr_ents entries, each entry
 * being a union of the request and response type.  A frontend or backend
 * written with Xen's macros can drive the other end of a ring driven by
 * these functions, byte for byte.
 *
 * Differences from Xen's macros, all on the side of a hostile peer:
 *  - Consumers read the peer's producer index once per poll (an atomic
 *    acquire load), validate it against what the protocol allows, and
 *    return -PVIO_RING_EPROTO instead of consuming garbage.  The error is
 *    sticky: every later call on that ring state fails the same way, so the
 *    caller's only option is to disconnect.
 *  - Entries are copied out of shared memory exactly once, with volatile
 *    word loops (no memcpy: guest kernels may link this, and a memcpy the
 *    compiler is free to split could re-read shared memory).
 *  - "Did the peer see my old producer index" uses our private record of
 *    the last value we published, not a re-read of the shared index, which
 *    the peer could overwrite.
 *
 * Threading: a ring state (front or back) belongs to one thread at a time;
 * the two ends may run concurrently on different CPUs, in different
 * domains.  Nothing here allocates, sleeps, or calls libc.
 *
 * Only <stdint.h>, <stddef.h> and <stdbool.h> are included; this header
 * compiles with -ffreestanding -nostdlib -fno-builtin.
 */
#ifndef PVIO_RING_H
#define PVIO_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error values: Linux errno numbers (errno.h is not freestanding). */
#define PVIO_RING_EAGAIN 11 /* nothing to consume right now */
#define PVIO_RING_EINVAL 22 /* bad argument from our own caller */
#define PVIO_RING_ENOSPC 28 /* no free slot to produce into */
#define PVIO_RING_EPROTO 71 /* the peer broke the ring protocol */

/* Xen's RING_IDX: free-running, wraps at 2^32, masked by nr_ents - 1. */
typedef uint32_t pvio_ring_idx_t;

/* Ring pages are always 4 KiB (XEN_PAGE_SIZE), whatever the CPU's page. */
#define PVIO_RING_PAGE_SHIFT 12
#define PVIO_RING_PAGE_SIZE (1u << PVIO_RING_PAGE_SHIFT)
/* Largest ring-page-order pvio supports (16 pages), as Linux blkback. */
#define PVIO_RING_MAX_ORDER 4
/* Bytes of shared memory for a ring of 2^order pages. */
#define PVIO_RING_BYTES(order) ((size_t)PVIO_RING_PAGE_SIZE << (order))
/* Offset of the first entry: the size of the shared header. */
#define PVIO_RING_HDR_SIZE 64u

/*
 * The shared header, identical to Xen's struct X_sring minus the typed
 * ring[] member.  The indices are only ever accessed with __atomic
 * builtins by this library.
 */
struct pvio_ring_sring {
	pvio_ring_idx_t req_prod;  /* written by the frontend */
	pvio_ring_idx_t req_event; /* written by the backend */
	pvio_ring_idx_t rsp_prod;  /* written by the backend */
	pvio_ring_idx_t rsp_event; /* written by the frontend */
	union {
		struct {
			uint8_t smartpoll_active;
		} netif;
		struct {
			uint8_t msg;
		} tapif_user;
		uint8_t pvt_pad[4];
	} pvt;
	uint8_t pad[44];
	/* nr_ents entries of entry_size bytes follow (offset 64) */
	unsigned char ring[];
};

_Static_assert(sizeof(struct pvio_ring_sring) == PVIO_RING_HDR_SIZE,
	       "shared ring header must be 64 bytes");
_Static_assert(offsetof(struct pvio_ring_sring, ring) == PVIO_RING_HDR_SIZE,
	       "first entry must be at offset 64");

/*
 * Size of one shared entry for a (request, response) pair: sizeof the
 * union, i.e. max(sizeof req, sizeof rsp) rounded up to the stricter
 * alignment — exactly Xen's union X_sring_entry.
 */
#define PVIO_RING_ENTRY_SIZE(req_t, rsp_t) \
	sizeof(union { req_t pvio_req_; rsp_t pvio_rsp_; })

/*
 * Frontend private state (Xen's X_front_ring plus hostile-peer
 * bookkeeping).  Owned by the frontend; never placed in shared memory.
 */
struct pvio_ring_front {
	pvio_ring_idx_t req_prod_pvt;	 /* next request slot we fill */
	pvio_ring_idx_t req_prod_pushed; /* last req_prod we published */
	pvio_ring_idx_t rsp_cons;	 /* next response we consume */
	pvio_ring_idx_t rsp_prod_snap;	 /* validated copy of rsp_prod */
	uint32_t nr_ents;		 /* power of two */
	uint32_t entry_size;		 /* bytes per shared entry */
	uint32_t broken;		 /* peer broke protocol: sticky */
	struct pvio_ring_sring *sring;
};

/* Backend private state (Xen's X_back_ring plus bookkeeping). */
struct pvio_ring_back {
	pvio_ring_idx_t rsp_prod_pvt;	 /* next response slot we fill */
	pvio_ring_idx_t rsp_prod_pushed; /* last rsp_prod we published */
	pvio_ring_idx_t req_cons;	 /* next request we consume */
	pvio_ring_idx_t req_prod_snap;	 /* validated copy of req_prod */
	uint32_t nr_ents;
	uint32_t entry_size;
	uint32_t broken;
	struct pvio_ring_sring *sring;
};

/* ---------------------------------------------------------------------- */
/* Internals (no stable API): shared-memory copies.                        */

typedef uint64_t __attribute__((may_alias)) pvio_ring__u64;
typedef uint32_t __attribute__((may_alias)) pvio_ring__u32;
typedef uint16_t __attribute__((may_alias)) pvio_ring__u16;

/*
 * Copy len bytes out of shared memory.  Every shared byte is read exactly
 * once through a volatile lvalue, so the compiler can neither re-read the
 * source later (double fetch) nor turn the loop into a memcpy call.  The
 * widest access that the alignment of both pointers and len allows is used.
 */
static inline void pvio_ring__copy_from_shared(void *dst,
					       const volatile void *src,
					       size_t len)
{
	uintptr_t a = (uintptr_t)dst | (uintptr_t)src | (uintptr_t)len;
	size_t i;

	if ((a & 7) == 0) {
		const volatile pvio_ring__u64 *s = src;
		pvio_ring__u64 *d = dst;
		for (i = 0; i < len / 8; i++)
			d[i] = s[i];
	} else if ((a & 3) == 0) {
		const volatile pvio_ring__u32 *s = src;
		pvio_ring__u32 *d = dst;
		for (i = 0; i < len / 4; i++)
			d[i] = s[i];
	} else if ((a & 1) == 0) {
		const volatile pvio_ring__u16 *s = src;
		pvio_ring__u16 *d = dst;
		for (i = 0; i < len / 2; i++)
			d[i] = s[i];
	} else {
		const volatile unsigned char *s = src;
		unsigned char *d = dst;
		for (i = 0; i < len; i++)
			d[i] = s[i];
	}
}

/*
 * Copy len bytes into shared memory, each shared byte written once through
 * a volatile lvalue (no memcpy call; no speculative or repeated stores the
 * peer could observe half-done twice).
 */
static inline void pvio_ring__copy_to_shared(volatile void *dst,
					     const void *src, size_t len)
{
	uintptr_t a = (uintptr_t)dst | (uintptr_t)src | (uintptr_t)len;
	size_t i;

	if ((a & 7) == 0) {
		volatile pvio_ring__u64 *d = dst;
		const pvio_ring__u64 *s = src;
		for (i = 0; i < len / 8; i++)
			d[i] = s[i];
	} else if ((a & 3) == 0) {
		volatile pvio_ring__u32 *d = dst;
		const pvio_ring__u32 *s = src;
		for (i = 0; i < len / 4; i++)
			d[i] = s[i];
	} else if ((a & 1) == 0) {
		volatile pvio_ring__u16 *d = dst;
		const pvio_ring__u16 *s = src;
		for (i = 0; i < len / 2; i++)
			d[i] = s[i];
	} else {
		volatile unsigned char *d = dst;
		const unsigned char *s = src;
		for (i = 0; i < len; i++)
			d[i] = s[i];
	}
}

/* Address of the entry for free-running index idx. */
static inline volatile void *pvio_ring__entry(struct pvio_ring_sring *s,
					      uint32_t nr_ents,
					      uint32_t entry_size,
					      pvio_ring_idx_t idx)
{
	return (volatile void *)(s->ring +
				 (size_t)(idx & (nr_ents - 1)) * entry_size);
}

/* ---------------------------------------------------------------------- */
/* Geometry                                                               */

/*
 * pvio_ring_nr_ents - number of entries in a ring of ring_bytes bytes.
 * Returns the largest power of two n with 64 + n * entry_size <= ring_bytes
 * (Xen's __RING_SIZE / __CONST_RING_SIZE; at most 2^30), or 0 if not even
 * one entry fits or entry_size is 0.  Pure function.
 */
static inline uint32_t pvio_ring_nr_ents(size_t entry_size, size_t ring_bytes)
{
	size_t n;
	uint32_t p = 1;

	if (entry_size == 0 || ring_bytes < PVIO_RING_HDR_SIZE)
		return 0;
	n = (ring_bytes - PVIO_RING_HDR_SIZE) / entry_size;
	if (n == 0)
		return 0;
	/* Round down to a power of two (Xen's __RD32).  Capped at 2^30 so
	 * that counts fit the int returns below; Xen rings are far smaller. */
	while (p <= n / 2 && p < 0x40000000u)
		p <<= 1;
	return p;
}

/*
 * pvio_ring_nr_ents_order - pvio_ring_nr_ents() for 2^order 4 KiB pages.
 * Returns the entry count (> 0), or -PVIO_RING_EINVAL if order is above
 * PVIO_RING_MAX_ORDER or not one entry fits.  Check the order BEFORE
 * shifting: a hostile xenstore value must not reach 1 << order.
 */
static inline int pvio_ring_nr_ents_order(size_t entry_size, unsigned int order)
{
	uint32_t n;

	if (order > PVIO_RING_MAX_ORDER)
		return -PVIO_RING_EINVAL;
	n = pvio_ring_nr_ents(entry_size, PVIO_RING_BYTES(order));
	return n ? (int)n : -PVIO_RING_EINVAL;
}

/* ---------------------------------------------------------------------- */
/* Initialisation                                                         */

/*
 * pvio_ring_sring_init - SHARED_RING_INIT: req_prod = rsp_prod = 0,
 * req_event = rsp_event = 1, private union and padding zeroed.  Entries
 * are left alone.  Call from the end that allocates the ring (the
 * frontend) before granting it; no concurrent access allowed.
 */
static inline void pvio_ring_sring_init(struct pvio_ring_sring *s)
{
	volatile uint8_t *b;
	size_t i;

	/* Relaxed stores: the page is not shared yet; the grant/xenstore
	 * publication that follows orders these for the peer. */
	__atomic_store_n(&s->req_prod, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->rsp_prod, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->req_event, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->rsp_event, 1, __ATOMIC_RELAXED);
	b = s->pvt.pvt_pad;
	for (i = 0; i < sizeof(s->pvt.pvt_pad); i++)
		b[i] = 0;
	b = s->pad;
	for (i = 0; i < sizeof(s->pad); i++)
		b[i] = 0;
}

/*
 * pvio_ring_front_attach - FRONT_RING_ATTACH: set up frontend state over
 * sring (ring_bytes of shared memory, entries of entry_size bytes) with
 * both private indices at idx (for reattaching to a live ring; use 0 on a
 * fresh ring).  Does not touch shared memory.  sring must stay mapped while
 * fr is used; the caller owns both.  Returns nr_ents (> 0) or
 * -PVIO_RING_EINVAL if no entry fits.
 */
static inline int pvio_ring_front_attach(struct pvio_ring_front *fr,
					 void *sring, size_t ring_bytes,
					 size_t entry_size, pvio_ring_idx_t idx)
{
	uint32_t n = pvio_ring_nr_ents(entry_size, ring_bytes);

	if (!fr || !sring || n == 0 || entry_size > UINT32_MAX)
		return -PVIO_RING_EINVAL;
	fr->req_prod_pvt = idx;
	fr->req_prod_pushed = idx;
	fr->rsp_cons = idx;
	fr->rsp_prod_snap = idx;
	fr->nr_ents = n;
	fr->entry_size = (uint32_t)entry_size;
	fr->broken = 0;
	fr->sring = sring;
	return (int)n;
}

/* pvio_ring_front_init - FRONT_RING_INIT: pvio_ring_front_attach at 0. */
static inline int pvio_ring_front_init(struct pvio_ring_front *fr, void *sring,
				       size_t ring_bytes, size_t entry_size)
{
	return pvio_ring_front_attach(fr, sring, ring_bytes, entry_size, 0);
}

/*
 * pvio_ring_front_init_shared - XEN_FRONT_RING_INIT: pvio_ring_sring_init
 * then pvio_ring_front_init.  Same returns.
 */
static inline int pvio_ring_front_init_shared(struct pvio_ring_front *fr,
					      void *sring, size_t ring_bytes,
					      size_t entry_size)
{
	if (!sring || pvio_ring_nr_ents(entry_size, ring_bytes) == 0)
		return -PVIO_RING_EINVAL;
	pvio_ring_sring_init(sring);
	return pvio_ring_front_init(fr, sring, ring_bytes, entry_size);
}

/*
 * pvio_ring_back_attach - BACK_RING_ATTACH: backend state over a mapped
 * ring, private indices at idx.  Does not touch shared memory (the peer
 * owns its initialisation).  Returns nr_ents or -PVIO_RING_EINVAL.
 */
static inline int pvio_ring_back_attach(struct pvio_ring_back *br, void *sring,
					size_t ring_bytes, size_t entry_size,
					pvio_ring_idx_t idx)
{
	uint32_t n = pvio_ring_nr_ents(entry_size, ring_bytes);

	if (!br || !sring || n == 0 || entry_size > UINT32_MAX)
		return -PVIO_RING_EINVAL;
	br->rsp_prod_pvt = idx;
	br->rsp_prod_pushed = idx;
	br->req_cons = idx;
	br->req_prod_snap = idx;
	br->nr_ents = n;
	br->entry_size = (uint32_t)entry_size;
	br->broken = 0;
	br->sring = sring;
	return (int)n;
}

/* pvio_ring_back_init - BACK_RING_INIT: pvio_ring_back_attach at 0. */
static inline int pvio_ring_back_init(struct pvio_ring_back *br, void *sring,
				      size_t ring_bytes, size_t entry_size)
{
	return pvio_ring_back_attach(br, sring, ring_bytes, entry_size, 0);
}

/* ---------------------------------------------------------------------- */
/* Frontend: producing requests                                           */

/*
 * pvio_ring_front_free_requests - RING_FREE_REQUESTS: slots the frontend
 * may still fill before it must consume responses.  Uses only private
 * indices, so a hostile backend cannot influence it.
 */
static inline uint32_t pvio_ring_front_free_requests(const struct pvio_ring_front *fr)
{
	return fr->nr_ents - (fr->req_prod_pvt - fr->rsp_cons);
}

/* pvio_ring_front_full - RING_FULL: true when no request slot is free. */
static inline bool pvio_ring_front_full(const struct pvio_ring_front *fr)
{
	return pvio_ring_front_free_requests(fr) == 0;
}

/*
 * pvio_ring_front_request_slot - the shared slot for the next request
 * (index req_prod_pvt), for filling in place; NULL if the ring is full or
 * broken.  The slot is shared memory: write it, never read it back.  It is
 * not produced until pvio_ring_front_produce_request().
 */
static inline volatile void *pvio_ring_front_request_slot(struct pvio_ring_front *fr)
{
	if (fr->broken || pvio_ring_front_full(fr))
		return NULL;
	return pvio_ring__entry(fr->sring, fr->nr_ents, fr->entry_size,
				fr->req_prod_pvt);
}

/*
 * pvio_ring_front_produce_request - account the slot filled through
 * pvio_ring_front_request_slot() (req_prod_pvt++).  Invisible to the peer
 * until pvio_ring_front_push_requests().  Returns 0, or -PVIO_RING_ENOSPC
 * if the ring is full, -PVIO_RING_EPROTO if it is broken.
 */
static inline int pvio_ring_front_produce_request(struct pvio_ring_front *fr)
{
	if (fr->broken)
		return -PVIO_RING_EPROTO;
	if (pvio_ring_front_full(fr))
		return -PVIO_RING_ENOSPC;
	/* Private index only: the peer learns of it at push time. */
	fr->req_prod_pvt++;
	return 0;
}

/*
 * pvio_ring_front_put_request - copy len bytes of a private request into
 * the next slot and produce it.  len must not exceed entry_size.  Returns
 * 0, -PVIO_RING_ENOSPC (full), -PVIO_RING_EINVAL (len) or -PVIO_RING_EPROTO.
 */
static inline int pvio_ring_front_put_request(struct pvio_ring_front *fr,
					      const void *req, size_t len)
{
	volatile void *slot;

	if (len > fr->entry_size)
		return -PVIO_RING_EINVAL;
	if (fr->broken)
		return -PVIO_RING_EPROTO;
	slot = pvio_ring_front_request_slot(fr);
	if (!slot)
		return -PVIO_RING_ENOSPC;
	pvio_ring__copy_to_shared(slot, req, len);
	/* Private index only: the push publishes it after a release. */
	fr->req_prod_pvt++;
	return 0;
}

/*
 * pvio_ring_front_push_requests - RING_PUSH_REQUESTS_AND_CHECK_NOTIFY:
 * publish req_prod_pvt as req_prod and return true if the backend must be
 * notified (it asked, through req_event, to hear about an index in
 * (old, new], mod 2^32); false when nothing new was produced since the
 * last push, exactly as Xen's macro decides.  The caller sends the event.
 */
static inline bool pvio_ring_front_push_requests(struct pvio_ring_front *fr)
{
	struct pvio_ring_sring *s = fr->sring;
	pvio_ring_idx_t old = fr->req_prod_pushed;
	pvio_ring_idx_t new_ = fr->req_prod_pvt;
	pvio_ring_idx_t ev;

	/* Release store: the backend must see the request bodies before it
	 * sees the producer index that covers them (Xen's wmb). */
	__atomic_store_n(&s->req_prod, new_, __ATOMIC_RELEASE);
	fr->req_prod_pushed = new_;
	/* Full barrier: our req_prod store must be visible before we load
	 * req_event, pairing with the backend's req_event store + barrier +
	 * req_prod load in its final check; otherwise both sides could miss
	 * each other and the backend sleeps on queued requests (Xen's mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ev = __atomic_load_n(&s->req_event, __ATOMIC_RELAXED);
	/* Notify iff req_event lies in (old, new], computed mod 2^32. */
	return (pvio_ring_idx_t)(new_ - ev) < (pvio_ring_idx_t)(new_ - old);
}

/* ---------------------------------------------------------------------- */
/* Frontend: consuming responses                                          */

/*
 * Validate a freshly loaded rsp_prod: a correct backend can only have
 * answered requests we pushed, so rsp_cons <= rsp_prod <= req_prod_pushed
 * (mod 2^32).  This covers Linux's RING_RESPONSE_PROD_OVERFLOW
 * (rsp_prod - rsp_cons > nr_ents) since req_prod_pushed - rsp_cons never
 * exceeds nr_ents, and also catches rsp_prod moving backwards.
 */
static inline int pvio_ring__front_take_snapshot(struct pvio_ring_front *fr,
						 pvio_ring_idx_t prod)
{
	if ((pvio_ring_idx_t)(prod - fr->rsp_cons) >
	    (pvio_ring_idx_t)(fr->req_prod_pushed - fr->rsp_cons)) {
		fr->broken = 1;
		return -PVIO_RING_EPROTO;
	}
	fr->rsp_prod_snap = prod;
	return (int)(pvio_ring_idx_t)(prod - fr->rsp_cons);
}

/*
 * pvio_ring_front_poll_responses - read the backend's rsp_prod once
 * (acquire), validate it and remember it as the consumption limit.
 * Returns the number of responses ready (>= 0), or -PVIO_RING_EPROTO if
 * the backend produced more than it could have (nothing is consumed; the
 * ring is marked broken; disconnect).  Does not arm rsp_event.
 */
static inline int pvio_ring_front_poll_responses(struct pvio_ring_front *fr)
{
	pvio_ring_idx_t prod;

	if (fr->broken)
		return -PVIO_RING_EPROTO;
	/* Single acquire load of the peer's index: pairs with the backend's
	 * release (wmb) so the response bodies below it are visible, and
	 * we validate and use exactly this one value (Xen's rmb). */
	prod = __atomic_load_n(&fr->sring->rsp_prod, __ATOMIC_ACQUIRE);
	return pvio_ring__front_take_snapshot(fr, prod);
}

/*
 * pvio_ring_front_copy_response - copy the next polled response (len
 * bytes, <= entry_size) into private memory dst and consume it
 * (rsp_cons++).  Only responses covered by the last poll/final check are
 * returned.  Returns 1 if one was copied, 0 if none is pending, or
 * -PVIO_RING_EINVAL / -PVIO_RING_EPROTO.  Validate the copy, never the
 * shared slot.
 */
static inline int pvio_ring_front_copy_response(struct pvio_ring_front *fr,
						void *dst, size_t len)
{
	if (fr->broken)
		return -PVIO_RING_EPROTO;
	if (len > fr->entry_size)
		return -PVIO_RING_EINVAL;
	if (fr->rsp_cons == fr->rsp_prod_snap)
		return 0;
	pvio_ring__copy_from_shared(dst,
				    pvio_ring__entry(fr->sring, fr->nr_ents,
						     fr->entry_size, fr->rsp_cons),
				    len);
	/* Private index: the slot becomes free for a new request; the copy
	 * above is complete (program order, and the slot is only rewritten by
	 * us when we produce a request into it). */
	fr->rsp_cons++;
	return 1;
}

/*
 * pvio_ring_front_final_check - RING_FINAL_CHECK_FOR_RESPONSES: if no
 * response is pending, set rsp_event = rsp_cons + 1 (ask for an event on
 * the next one) and look again, so that a response pushed concurrently is
 * never missed.  Returns the number of responses ready (> 0: keep
 * consuming, the snapshot is refreshed; 0: safe to wait for an event),
 * or -PVIO_RING_EPROTO.
 */
static inline int pvio_ring_front_final_check(struct pvio_ring_front *fr)
{
	int n = pvio_ring_front_poll_responses(fr);

	if (n != 0)
		return n;
	/* Arm the event: the backend notifies when it pushes rsp_cons + 1. */
	__atomic_store_n(&fr->sring->rsp_event, fr->rsp_cons + 1,
			 __ATOMIC_RELAXED);
	/* Full barrier: rsp_event must be visible before we re-read
	 * rsp_prod; pairs with the backend's rsp_prod store + barrier +
	 * rsp_event load in its push (Xen's mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return pvio_ring_front_poll_responses(fr);
}

/* ---------------------------------------------------------------------- */
/* Backend: consuming requests                                            */

/*
 * Validate a freshly loaded req_prod: rsp_prod_pvt <= req_cons <= req_prod
 * <= rsp_prod_pvt + nr_ents (mod 2^32).  The upper bound is Linux's
 * RING_REQUEST_PROD_OVERFLOW; the lower one catches req_prod moving back.
 */
static inline int pvio_ring__back_take_snapshot(struct pvio_ring_back *br,
						pvio_ring_idx_t prod)
{
	pvio_ring_idx_t ahead = prod - br->rsp_prod_pvt;

	if (ahead > br->nr_ents ||
	    ahead < (pvio_ring_idx_t)(br->req_cons - br->rsp_prod_pvt)) {
		br->broken = 1;
		return -PVIO_RING_EPROTO;
	}
	br->req_prod_snap = prod;
	return (int)(pvio_ring_idx_t)(prod - br->req_cons);
}

/*
 * pvio_ring_back_poll_requests - read the frontend's req_prod once
 * (acquire), validate it, remember it as the consumption limit.  Returns
 * the number of requests ready (>= 0) or -PVIO_RING_EPROTO if the
 * frontend ran ahead of the ring (nothing consumed, req_cons unchanged,
 * ring marked broken: disconnect).  Does not arm req_event.
 */
static inline int pvio_ring_back_poll_requests(struct pvio_ring_back *br)
{
	pvio_ring_idx_t prod;

	if (br->broken)
		return -PVIO_RING_EPROTO;
	/* Single acquire load: pairs with the frontend's release (wmb) so
	 * the request bodies below it are visible; only this one value is
	 * validated and used, never a re-read (Xen's rmb). */
	prod = __atomic_load_n(&br->sring->req_prod, __ATOMIC_ACQUIRE);
	return pvio_ring__back_take_snapshot(br, prod);
}

/*
 * pvio_ring_back_copy_request - copy the next polled request (len <=
 * entry_size bytes) into private memory dst and consume it (req_cons++).
 * Returns 1 if copied, 0 if none pending in the last poll, or
 * -PVIO_RING_EINVAL / -PVIO_RING_EPROTO.  The shared slot is read exactly
 * once; validate dst, never the slot (XSA-155).
 */
static inline int pvio_ring_back_copy_request(struct pvio_ring_back *br,
					      void *dst, size_t len)
{
	if (br->broken)
		return -PVIO_RING_EPROTO;
	if (len > br->entry_size)
		return -PVIO_RING_EINVAL;
	if (br->req_cons == br->req_prod_snap)
		return 0;
	pvio_ring__copy_from_shared(dst,
				    pvio_ring__entry(br->sring, br->nr_ents,
						     br->entry_size, br->req_cons),
				    len);
	/* Private index: once consumed, this slot may receive a response
	 * from us; the request is already in dst. */
	br->req_cons++;
	return 1;
}

/*
 * pvio_ring_back_final_check - RING_FINAL_CHECK_FOR_REQUESTS: if no
 * request is pending, set req_event = req_cons + 1 and look again.
 * Returns the number of requests ready (> 0: keep going; 0: safe to wait
 * for an event) or -PVIO_RING_EPROTO.
 */
static inline int pvio_ring_back_final_check(struct pvio_ring_back *br)
{
	int n = pvio_ring_back_poll_requests(br);

	if (n != 0)
		return n;
	/* Arm the event: the frontend notifies when it pushes req_cons+1. */
	__atomic_store_n(&br->sring->req_event, br->req_cons + 1,
			 __ATOMIC_RELAXED);
	/* Full barrier: req_event must be visible before we re-read
	 * req_prod; pairs with the frontend's push (Xen's mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return pvio_ring_back_poll_requests(br);
}

/* ---------------------------------------------------------------------- */
/* Backend: producing responses                                           */

/*
 * pvio_ring_back_free_responses - responses the backend may produce now:
 * one per consumed, unanswered request (req_cons - rsp_prod_pvt).  A
 * response slot is always the slot of an already-copied request.
 */
static inline uint32_t pvio_ring_back_free_responses(const struct pvio_ring_back *br)
{
	return br->req_cons - br->rsp_prod_pvt;
}

/*
 * pvio_ring_back_response_slot - the shared slot for the next response,
 * to fill in place; NULL if no consumed request is unanswered (writing
 * would overwrite a request not yet copied) or the ring is broken.
 */
static inline volatile void *pvio_ring_back_response_slot(struct pvio_ring_back *br)
{
	if (br->broken || pvio_ring_back_free_responses(br) == 0)
		return NULL;
	return pvio_ring__entry(br->sring, br->nr_ents, br->entry_size,
				br->rsp_prod_pvt);
}

/*
 * pvio_ring_back_produce_response - account the slot filled through
 * pvio_ring_back_response_slot() (rsp_prod_pvt++).  Returns 0,
 * -PVIO_RING_ENOSPC or -PVIO_RING_EPROTO.
 */
static inline int pvio_ring_back_produce_response(struct pvio_ring_back *br)
{
	if (br->broken)
		return -PVIO_RING_EPROTO;
	if (pvio_ring_back_free_responses(br) == 0)
		return -PVIO_RING_ENOSPC;
	/* Private index: published by the push after a release. */
	br->rsp_prod_pvt++;
	return 0;
}

/*
 * pvio_ring_back_put_response - copy len (<= entry_size) bytes of a
 * private response into the next slot and produce it.  Build the response
 * fully initialised (no padding leaks, XSA-216).  Returns 0,
 * -PVIO_RING_ENOSPC, -PVIO_RING_EINVAL or -PVIO_RING_EPROTO.
 */
static inline int pvio_ring_back_put_response(struct pvio_ring_back *br,
					      const void *rsp, size_t len)
{
	volatile void *slot;

	if (len > br->entry_size)
		return -PVIO_RING_EINVAL;
	if (br->broken)
		return -PVIO_RING_EPROTO;
	slot = pvio_ring_back_response_slot(br);
	if (!slot)
		return -PVIO_RING_ENOSPC;
	pvio_ring__copy_to_shared(slot, rsp, len);
	/* Private index: published by the push after a release. */
	br->rsp_prod_pvt++;
	return 0;
}

/*
 * pvio_ring_back_push_responses - RING_PUSH_RESPONSES_AND_CHECK_NOTIFY:
 * publish rsp_prod_pvt as rsp_prod; returns true if the frontend must be
 * notified (rsp_event in (old, new]).
 */
static inline bool pvio_ring_back_push_responses(struct pvio_ring_back *br)
{
	struct pvio_ring_sring *s = br->sring;
	pvio_ring_idx_t old = br->rsp_prod_pushed;
	pvio_ring_idx_t new_ = br->rsp_prod_pvt;
	pvio_ring_idx_t ev;

	/* Release store: response bodies before the index (Xen's wmb). */
	__atomic_store_n(&s->rsp_prod, new_, __ATOMIC_RELEASE);
	br->rsp_prod_pushed = new_;
	/* Full barrier: rsp_prod visible before we load rsp_event; pairs
	 * with the frontend's final check (Xen's mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ev = __atomic_load_n(&s->rsp_event, __ATOMIC_RELAXED);
	/* Notify iff rsp_event lies in (old, new], computed mod 2^32. */
	return (pvio_ring_idx_t)(new_ - ev) < (pvio_ring_idx_t)(new_ - old);
}

/* ---------------------------------------------------------------------- */
/* Typed wrappers                                                          */

/*
 * PVIO_RING_DEFINE(name, req_t, rsp_t) defines, for one protocol:
 *   union pvio_ring_<name>_entry               (Xen's union X_sring_entry)
 *   pvio_ring_<name>_entry_size()              sizeof that union
 *   pvio_ring_<name>_nr_ents(ring_bytes)       entries that fit
 *   pvio_ring_<name>_front_init/_attach(fr, sring, ring_bytes[, idx])
 *   pvio_ring_<name>_back_init/_attach(br, sring, ring_bytes[, idx])
 *   pvio_ring_<name>_request_slot(fr) / _response_slot(br)   (write-only;
 *       fill, then pvio_ring_front_produce_request / back_produce_response)
 *   pvio_ring_<name>_put_request(fr, const req_t *)
 *   pvio_ring_<name>_copy_request(br, req_t *)
 *   pvio_ring_<name>_put_response(br, const rsp_t *)
 *   pvio_ring_<name>_copy_response(fr, rsp_t *)
 * with the same contracts as the generic functions they call.  The typed
 * put/copy functions return -PVIO_RING_EINVAL if the ring state was set up
 * for a different entry size.
 */
#define PVIO_RING_DEFINE(name, req_t, rsp_t)                                   \
	union pvio_ring_##name##_entry {                                       \
		req_t req;                                                     \
		rsp_t rsp;                                                     \
	};                                                                     \
	static inline __attribute__((unused)) size_t pvio_ring_##name##_entry_size(void)               \
	{                                                                      \
		return sizeof(union pvio_ring_##name##_entry);                 \
	}                                                                      \
	static inline __attribute__((unused)) uint32_t pvio_ring_##name##_nr_ents(size_t ring_bytes)   \
	{                                                                      \
		return pvio_ring_nr_ents(pvio_ring_##name##_entry_size(),      \
					 ring_bytes);                          \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_front_attach(                     \
		struct pvio_ring_front *fr, void *sring, size_t ring_bytes,    \
		pvio_ring_idx_t idx)                                           \
	{                                                                      \
		return pvio_ring_front_attach(fr, sring, ring_bytes,           \
					      pvio_ring_##name##_entry_size(), \
					      idx);                            \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_front_init(                       \
		struct pvio_ring_front *fr, void *sring, size_t ring_bytes)    \
	{                                                                      \
		return pvio_ring_##name##_front_attach(fr, sring, ring_bytes,  \
						       0);                     \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_back_attach(                      \
		struct pvio_ring_back *br, void *sring, size_t ring_bytes,     \
		pvio_ring_idx_t idx)                                           \
	{                                                                      \
		return pvio_ring_back_attach(br, sring, ring_bytes,            \
					     pvio_ring_##name##_entry_size(),  \
					     idx);                             \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_back_init(                        \
		struct pvio_ring_back *br, void *sring, size_t ring_bytes)     \
	{                                                                      \
		return pvio_ring_##name##_back_attach(br, sring, ring_bytes,   \
						      0);                      \
	}                                                                      \
	/* Write-only views of the next shared slot (NULL if none free). */  \
	static inline __attribute__((unused)) req_t *pvio_ring_##name##_request_slot(                  \
		struct pvio_ring_front *fr)                                    \
	{                                                                      \
		if (fr->entry_size != pvio_ring_##name##_entry_size())         \
			return NULL;                                           \
		return (req_t *)(uintptr_t)pvio_ring_front_request_slot(fr);   \
	}                                                                      \
	static inline __attribute__((unused)) rsp_t *pvio_ring_##name##_response_slot(                 \
		struct pvio_ring_back *br)                                     \
	{                                                                      \
		if (br->entry_size != pvio_ring_##name##_entry_size())         \
			return NULL;                                           \
		return (rsp_t *)(uintptr_t)pvio_ring_back_response_slot(br);   \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_put_request(                      \
		struct pvio_ring_front *fr, const req_t *req)                  \
	{                                                                      \
		if (fr->entry_size != pvio_ring_##name##_entry_size())         \
			return -PVIO_RING_EINVAL;                              \
		return pvio_ring_front_put_request(fr, req, sizeof(*req));     \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_copy_request(                     \
		struct pvio_ring_back *br, req_t *req)                         \
	{                                                                      \
		if (br->entry_size != pvio_ring_##name##_entry_size())         \
			return -PVIO_RING_EINVAL;                              \
		return pvio_ring_back_copy_request(br, req, sizeof(*req));     \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_put_response(                     \
		struct pvio_ring_back *br, const rsp_t *rsp)                   \
	{                                                                      \
		if (br->entry_size != pvio_ring_##name##_entry_size())         \
			return -PVIO_RING_EINVAL;                              \
		return pvio_ring_back_put_response(br, rsp, sizeof(*rsp));     \
	}                                                                      \
	static inline __attribute__((unused)) int pvio_ring_##name##_copy_response(                    \
		struct pvio_ring_front *fr, rsp_t *rsp)                        \
	{                                                                      \
		if (fr->entry_size != pvio_ring_##name##_entry_size())         \
			return -PVIO_RING_EINVAL;                              \
		return pvio_ring_front_copy_response(fr, rsp, sizeof(*rsp));   \
	}                                                                      \
	struct pvio_ring_##name##_define_end_ /* swallow the semicolon */

#endif /* PVIO_RING_H */
