/* SPDX-License-Identifier: MIT */
/* pvnet internals: header parsing for the virtio_net_hdr <-> netif mapping. */
#ifndef PVIO_PVNET_H
#define PVIO_PVNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* As netback's: L4 offset, checksum field offset, protocol, TCP header end. */
int pn_l4_locate(const uint8_t *f, size_t len, uint16_t *start, uint16_t *off, uint8_t *l4proto,
		 uint16_t *hdr_end, bool *ipv6);
void pn_csum_finish(uint8_t *f, size_t len, uint16_t start, uint16_t off);

#endif
