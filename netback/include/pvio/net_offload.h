/* SPDX-License-Identifier: MIT */
/*
 * pvio/net_offload.h — checksum and GSO header work shared by the two ends
 * of the network path that meet a virtio_net_hdr: pvio-netback (dom0 TAP)
 * and pvnet (the guest's TAP). Xen's csum_blank says only "the L4 checksum
 * is not filled in"; a virtio_net_hdr needs where it is, so frames are
 * parsed here. One copy, built as the static library pvio-net-offload
 * (meson: net_offload_dep). Pure functions on caller memory: no state,
 * thread-safe, no allocation.
 */
#ifndef PVIO_NET_OFFLOAD_H
#define PVIO_NET_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * pvio_net_l4_locate - find the L4 checksum of the Ethernet frame @f of
 * @len bytes (untrusted: every length is checked against @len). Handles one
 * VLAN tag, IPv4 (with options, not fragmented) and IPv6 (through up to 8 hop-by-hop,
 * routing and destination-options headers), TCP and UDP. On success returns 0 and sets *start (L4 offset
 * from the frame start), *off (checksum field offset within L4: 16 TCP,
 * 6 UDP), *l4proto (6/17), *hdr_end (end of the TCP header, 0 for UDP) and
 * *ipv6. Returns -EINVAL for anything else or a truncated frame; the
 * outputs are then unspecified.
 */
int pvio_net_l4_locate(const uint8_t *f, size_t len, uint16_t *start, uint16_t *off, uint8_t *l4proto,
		       uint16_t *hdr_end, bool *ipv6);

/*
 * pvio_net_csum_finish - fill in the full L4 checksum of a frame in the
 * CHECKSUM_PARTIAL layout (the field at @start + @off holds the
 * pseudo-header sum), as a NIC would. Does nothing if the field lies past
 * @len. A UDP result of 0 is sent as 0xffff (0 means "no checksum").
 */
void pvio_net_csum_finish(uint8_t *f, size_t len, uint16_t start, uint16_t off);

#endif /* PVIO_NET_OFFLOAD_H */
