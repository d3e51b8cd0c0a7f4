/* SPDX-License-Identifier: MIT */
/*
 * ringping: a frontend (domU) and a backend (dom0) exchanging verified
 * requests over a Xen shared ring, with the ring pages granted, an event
 * channel, and a xenstore handshake in the style of io/xenbus.h. It is the
 * foundation's end-to-end check and the demo's main act.
 *
 * Xenstore layout, under the frontend's /local/domain/<id>/data/ringping:
 *   ring-page-order, ring-ref<i> (ring-ref for order 0), event-channel,
 *   count, state                 written by the frontend
 *   backend-state                written by the backend
 * States are XenbusState values: 3 Initialised, 4 Connected, 5 Closing, 6 Closed.
 */
#ifndef PVIO_RINGPING_H
#define PVIO_RINGPING_H

#include <stdint.h>

#define RP_DATA 48

struct rp_req {
	uint64_t id;               /* frontend's slot tag */
	uint32_t seq;              /* request number, from 0 */
	uint32_t len;              /* bytes of data used, <= RP_DATA */
	uint8_t data[RP_DATA];     /* rp_pattern(seq, i) */
};

struct rp_rsp {
	uint64_t id;
	uint32_t seq;
	uint32_t sum;              /* rp_sum of the data the backend saw */
	int32_t status;            /* 0, or -EILSEQ when the payload was wrong */
	uint32_t pad;
};

static inline uint8_t rp_pattern(uint32_t seq, uint32_t i)
{
	uint32_t x = seq * 2654435761u ^ (i * 0x9e3779b9u);
	return (uint8_t)(x >> 24 ^ x >> 7 ^ i);
}

static inline uint32_t rp_len(uint32_t seq)
{
	return 1 + seq % RP_DATA;
}

/* FNV-1a */
static inline uint32_t rp_sum(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

#define RP_BASE_FMT "/local/domain/%u/data/ringping"

int rp_front(int argc, char **argv);
int rp_back(int argc, char **argv);

#endif
