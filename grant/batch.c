/* SPDX-License-Identifier: MIT */
/* Batched grant mapping on top of the libxengnttab API. */
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

#include "pvio/grant.h"

int pvio_gnt_map_batch(xengnttab_handle *h, uint32_t domid, uint32_t count,
		       const uint32_t *refs, int writable, void **addr, int *status)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	int first = 0, saved = errno;

	*addr = NULL;
	if (count == 0)
		return -EINVAL;
	*addr = xengnttab_map_domain_grant_refs(h, count, domid, (uint32_t *)refs, prot);
	if (*addr) {
		if (status)
			for (uint32_t i = 0; i < count; i++)
				status[i] = 0;
		return 0;
	}
	if (count == 1 || !status) {
		first = errno == ENOMEM || errno == ENOSPC ? -errno : -EINVAL;
		if (status)
			status[0] = first;
		errno = saved;
		return first;
	}
	/* Find out which refs are bad, so the caller can fail just those. */
	for (uint32_t i = 0; i < count; i++) {
		void *p = xengnttab_map_grant_ref(h, domid, refs[i], prot);
		if (p) {
			xengnttab_unmap(h, p, 1);
			status[i] = 0;
		} else {
			status[i] = errno == ENOMEM || errno == ENOSPC ? -errno : -EINVAL;
			if (!first)
				first = status[i];
		}
	}
	errno = saved;
	return first ? first : -EAGAIN;  /* all fine alone: a transient refusal */
}
