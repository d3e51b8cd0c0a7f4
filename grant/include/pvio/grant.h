/* SPDX-License-Identifier: MIT */
/*
 * pvio/grant.h — grant-table helpers.
 *
 * Backend (dom0) side: code maps and copies grants through the standard
 * libxengnttab API (<xengnttab.h>); with -Dxen=sim that API is pvio's own
 * implementation on xensim, with -Dxen=system it is Debian's libxengnttab.
 * pvio_gnt_map_batch() adds the batched map the backends use.
 *
 * Guest side (xensim builds only, PVIO_XEN_SIM): a guest writes its own v1
 * grant entries, as a kernel does, and allocates refs from its domain's pool.
 *
 * All pvio_ functions return 0 (or a count) or a negative errno and leave
 * errno alone.
 */
#ifndef PVIO_GRANT_H
#define PVIO_GRANT_H

#include <stdint.h>
#include <xengnttab.h>

/*
 * Map @count refs of domain @domid into one contiguous area with a single
 * map call (one hypercall batch on Xen, one round trip on xensim).
 * On success *@addr is the area (unmap it with xengnttab_unmap(h, addr,
 * count)) and every @status[i] is 0. If the batch is refused, the refs are
 * retried one by one so that @status tells which ones are bad (-EINVAL for a
 * ref that cannot be mapped, -ENOMEM/-ENOSPC for a resource shortage);
 * nothing stays mapped and the first such error is returned.
 * @status may be NULL when the caller does not care which ref failed.
 */
int pvio_gnt_map_batch(xengnttab_handle *h, uint32_t domid, uint32_t count,
		       const uint32_t *refs, int writable, void **addr, int *status);

#if defined(PVIO_XEN_SIM) && PVIO_XEN_SIM
#include <pvio/xensim.h>

/*
 * Guest-side grant references. The pool is the domain's shared bitmap of
 * grant entries (refs 0..7 stay reserved for the toolstack), so processes of
 * one domain never hand out the same ref.
 */
/* Allocate @n refs into @refs. -ENOSPC when the table is full (nothing kept). */
int pvio_gnt_alloc_refs(struct xsim_domain *d, unsigned n, grant_ref_t *refs);
/* Return refs to the pool. Each must have had its access ended. */
void pvio_gnt_free_refs(struct xsim_domain *d, unsigned n, const grant_ref_t *refs);

/*
 * Grant domain @to access to frame @gfn through @ref: writes frame and domid,
 * then (after a write barrier) the flags, so the hypervisor never sees a
 * valid entry with a stale frame. -EINVAL for a bad ref or frame, -EBUSY if
 * the entry is still in use.
 */
int pvio_gnt_grant_access(struct xsim_domain *d, grant_ref_t ref, domid_t to,
			  uint64_t gfn, int readonly);
/*
 * End access through @ref. Fails with -EBUSY while a backend has it mapped or
 * is copying through it (GTF_reading/GTF_writing set), exactly as
 * gnttab_end_foreign_access_ref does on Xen; the entry is then unchanged and
 * the caller must not reuse the page.
 */
int pvio_gnt_end_access(struct xsim_domain *d, grant_ref_t ref);
/* Convenience: allocate a ref and grant @va (a page of this domain's RAM). */
int pvio_gnt_grant_page(struct xsim_domain *d, domid_t to, const void *va, int readonly,
			grant_ref_t *ref);
#endif

#endif
