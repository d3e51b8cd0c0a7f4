/* SPDX-License-Identifier: MIT */
/*
 * pvio/netif_wire.h — the netif tx/rx ring protocol on the wire
 * (io/netif.h).  Layouts equal Xen's on every ABI (no 64-bit fields, so
 * x86_32 and x86_64 agree).  Freestanding.
 */
#ifndef PVIO_NETIF_WIRE_H
#define PVIO_NETIF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <pvio/ring.h>

/* A packet may need this many tx slots before a backend may drop it. */
#define PVIO_XEN_NETIF_NR_SLOTS_MIN 18
#define PVIO_XEN_NETIF_MAX_TX_SIZE 0xFFFF

/* pvio_netif_tx_request.flags */
#define _PVIO_NETTXF_csum_blank 0
#define PVIO_NETTXF_csum_blank (1U << _PVIO_NETTXF_csum_blank)
#define _PVIO_NETTXF_data_validated 1
#define PVIO_NETTXF_data_validated (1U << _PVIO_NETTXF_data_validated)
#define _PVIO_NETTXF_more_data 2
#define PVIO_NETTXF_more_data (1U << _PVIO_NETTXF_more_data)
#define _PVIO_NETTXF_extra_info 3
#define PVIO_NETTXF_extra_info (1U << _PVIO_NETTXF_extra_info)

/* pvio_netif_rx_response.flags */
#define _PVIO_NETRXF_data_validated 0
#define PVIO_NETRXF_data_validated (1U << _PVIO_NETRXF_data_validated)
#define _PVIO_NETRXF_csum_blank 1
#define PVIO_NETRXF_csum_blank (1U << _PVIO_NETRXF_csum_blank)
#define _PVIO_NETRXF_more_data 2
#define PVIO_NETRXF_more_data (1U << _PVIO_NETRXF_more_data)
#define _PVIO_NETRXF_extra_info 3
#define PVIO_NETRXF_extra_info (1U << _PVIO_NETRXF_extra_info)
#define _PVIO_NETRXF_gso_prefix 4
#define PVIO_NETRXF_gso_prefix (1U << _PVIO_NETRXF_gso_prefix)

/* pvio_netif_extra_info.type */
#define PVIO_XEN_NETIF_EXTRA_TYPE_NONE 0 /* never used: invalid */
#define PVIO_XEN_NETIF_EXTRA_TYPE_GSO 1
#define PVIO_XEN_NETIF_EXTRA_TYPE_MCAST_ADD 2
#define PVIO_XEN_NETIF_EXTRA_TYPE_MCAST_DEL 3
#define PVIO_XEN_NETIF_EXTRA_TYPE_HASH 4
#define PVIO_XEN_NETIF_EXTRA_TYPE_MAX 5

/* pvio_netif_extra_info.flags */
#define _PVIO_XEN_NETIF_EXTRA_FLAG_MORE 0
#define PVIO_XEN_NETIF_EXTRA_FLAG_MORE (1U << _PVIO_XEN_NETIF_EXTRA_FLAG_MORE)

/* u.gso.type */
#define PVIO_XEN_NETIF_GSO_TYPE_NONE 0
#define PVIO_XEN_NETIF_GSO_TYPE_TCPV4 1
#define PVIO_XEN_NETIF_GSO_TYPE_TCPV6 2

/* u.hash.type: bit numbers of XEN_NETIF_CTRL_HASH_TYPE_* */
#define _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4 0
#define PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4 (1U << _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4)
#define _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP 1
#define PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP (1U << _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP)
#define _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6 2
#define PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6 (1U << _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6)
#define _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP 3
#define PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP (1U << _PVIO_XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP)
/* u.hash.algorithm */
#define PVIO_XEN_NETIF_CTRL_HASH_ALGORITHM_NONE 0
#define PVIO_XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ 1

/* Response status (NETIF_RSP_*). */
#define PVIO_NETIF_RSP_DROPPED (-2)
#define PVIO_NETIF_RSP_ERROR (-1)
#define PVIO_NETIF_RSP_OKAY 0
#define PVIO_NETIF_RSP_NULL 1 /* answer to an extra-info slot */

/* Guest transmit: one slot of a packet.  12 bytes. */
struct pvio_netif_tx_request {
	uint32_t gref;	 /* grant_ref_t of the data page */
	uint16_t offset; /* of the data in that page */
	uint16_t flags;	 /* PVIO_NETTXF_* */
	uint16_t id;	 /* echoed in the response */
	uint16_t size;	 /* first slot: whole packet; others: this slot */
};

/* Extra-info slot (follows a slot flagged extra_info).  8 bytes. */
struct pvio_netif_extra_info {
	uint8_t type;  /* PVIO_XEN_NETIF_EXTRA_TYPE_* */
	uint8_t flags; /* PVIO_XEN_NETIF_EXTRA_FLAG_* */
	union {
		struct {
			uint16_t size;	   /* GSO MSS */
			uint8_t type;	   /* PVIO_XEN_NETIF_GSO_TYPE_* */
			uint8_t pad;
			uint16_t features; /* none defined: must be 0 */
		} gso;
		struct {
			uint8_t addr[6];
		} mcast;
		struct {
			uint8_t type;	   /* PVIO_XEN_NETIF_CTRL_HASH_TYPE_* bit */
			uint8_t algorithm; /* PVIO_XEN_NETIF_CTRL_HASH_ALGORITHM_* */
			uint8_t value[4];  /* LSB first */
		} hash;
		uint16_t pad[3];
	} u;
};

/* 4 bytes. */
struct pvio_netif_tx_response {
	uint16_t id;
	int16_t status; /* PVIO_NETIF_RSP_* */
};

/* Guest receive buffer.  8 bytes. */
struct pvio_netif_rx_request {
	uint16_t id;
	uint16_t pad;
	uint32_t gref;
};

/* 8 bytes.  status >= 0 is the byte count, < 0 a PVIO_NETIF_RSP_*. */
struct pvio_netif_rx_response {
	uint16_t id;
	uint16_t offset;
	uint16_t flags; /* PVIO_NETRXF_* */
	int16_t status;
};

_Static_assert(sizeof(struct pvio_netif_tx_request) == 12, "tx req");
_Static_assert(sizeof(struct pvio_netif_extra_info) == 8, "extra");
_Static_assert(sizeof(struct pvio_netif_tx_response) == 4, "tx rsp");
_Static_assert(sizeof(struct pvio_netif_rx_request) == 8, "rx req");
_Static_assert(sizeof(struct pvio_netif_rx_response) == 8, "rx rsp");

/* Typed rings: pvio_ring_netif_tx_* and pvio_ring_netif_rx_*. */
PVIO_RING_DEFINE(netif_tx, struct pvio_netif_tx_request,
		 struct pvio_netif_tx_response);
PVIO_RING_DEFINE(netif_rx, struct pvio_netif_rx_request,
		 struct pvio_netif_rx_response);

#endif /* PVIO_NETIF_WIRE_H */
