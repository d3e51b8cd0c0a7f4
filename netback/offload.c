/* SPDX-License-Identifier: MIT */
/*
 * Checksum and GSO header work (pvio/net_offload.h), the one copy that
 * pvio-netback and pvnet both link. Xen's csum_blank says only "the L4
 * checksum is not filled in"; a TAP's virtio_net_hdr needs where it is
 * (csum_start/csum_offset), so the frame's headers are parsed here, with
 * every length checked against the frame (the frame is peer data).
 */
#include <errno.h>
#include <string.h>

#include "pvio/net_offload.h"

#define ETH_HLEN_ 14u

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int pvio_net_l4_locate(const uint8_t *f, size_t len, uint16_t *start, uint16_t *off, uint8_t *l4proto,
		       uint16_t *hdr_end, bool *ipv6)
{
	size_t l3 = ETH_HLEN_, l4;
	uint16_t et;
	uint8_t proto;

	if (len < ETH_HLEN_)
		return -EINVAL;
	et = be16(f + 12);
	if (et == 0x8100) { /* one VLAN tag */
		if (len < ETH_HLEN_ + 4)
			return -EINVAL;
		et = be16(f + 16);
		l3 += 4;
	}
	if (et == 0x0800) {
		size_t ihl;
		if (len < l3 + 20 || (f[l3] >> 4) != 4)
			return -EINVAL;
		ihl = (size_t)(f[l3] & 15) * 4;
		/* fragments carry no L4 header to checksum */
		if (ihl < 20 || len < l3 + ihl || (be16(f + l3 + 6) & 0x3fff))
			return -EINVAL;
		proto = f[l3 + 9];
		l4 = l3 + ihl;
		*ipv6 = false;
	} else if (et == 0x86dd) {
		if (len < l3 + 40 || (f[l3] >> 4) != 6)
			return -EINVAL;
		proto = f[l3 + 6];
		l4 = l3 + 40;
		/* walk the common extension headers */
		for (int i = 0; i < 8 && (proto == 0 || proto == 43 || proto == 60); i++) {
			if (len < l4 + 8)
				return -EINVAL;
			proto = f[l4];
			l4 += ((size_t)f[l4 + 1] + 1) * 8;
		}
		*ipv6 = true;
	} else {
		return -EINVAL;
	}
	if (proto == 6) {
		size_t doff;
		if (len < l4 + 20)
			return -EINVAL;
		doff = (size_t)(f[l4 + 12] >> 4) * 4;
		if (doff < 20 || len < l4 + doff)
			return -EINVAL;
		*off = 16;
		*hdr_end = (uint16_t)(l4 + doff);
	} else if (proto == 17) {
		if (len < l4 + 8)
			return -EINVAL;
		*off = 6;
		*hdr_end = 0;
	} else {
		return -EINVAL;
	}
	if (l4 > 0xffff)
		return -EINVAL;
	*start = (uint16_t)l4;
	*l4proto = proto;
	return 0;
}

void pvio_net_csum_finish(uint8_t *f, size_t len, uint16_t start, uint16_t off)
{
	uint32_t sum = 0;
	size_t i;
	uint16_t c;

	if ((size_t)start + off + 2 > len)
		return;
	/* the field holds the pseudo-header sum; add the L4 bytes over it */
	for (i = start; i + 1 < len; i += 2)
		sum += be16(f + i);
	if (i < len)
		sum += (uint32_t)f[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	if (c == 0 && off == 6)
		c = 0xffff; /* UDP: 0 means "no checksum" */
	f[start + off] = (uint8_t)(c >> 8);
	f[start + off + 1] = (uint8_t)c;
}
