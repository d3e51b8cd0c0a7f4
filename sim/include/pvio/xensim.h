/* SPDX-License-Identifier: MIT */
/*
 * pvio/xensim.h — a guest's view of its own simulated domain.
 *
 * A process started with `xensim run DOMID -- CMD` is a process of that
 * domain: xsim_domain_open() maps the domain's RAM and its grant table, as a
 * guest kernel has them. Pages are handed out from a bitmap shared by every
 * process of the domain (atomic, so concurrent processes never share a page)
 * and are zeroed before they are returned.
 *
 * All functions return 0 or a negative errno unless stated otherwise, and
 * leave errno alone. A handle may be used by one thread at a time; the page
 * allocator itself is safe across threads and processes.
 */
#ifndef PVIO_XENSIM_H
#define PVIO_XENSIM_H

#include <stddef.h>
#include <stdint.h>
#include <xen/grant_table.h>

struct xsim_domain;

/* Attach to this process's domain ($XENSIM_DOMID; must be a domU).
 * -ESRCH: no such domain; -ECONNREFUSED/-ENOENT: xensim is not running. */
int xsim_domain_open(struct xsim_domain **out);
/* Detach. Pages and grants this process still holds stay allocated. */
void xsim_domain_close(struct xsim_domain *d);

uint32_t xsim_domain_id(const struct xsim_domain *d);
uint64_t xsim_domain_nr_pages(const struct xsim_domain *d);
/* Nonzero while the domain exists (the toolstack may destroy it under us). */
int xsim_domain_alive(const struct xsim_domain *d);

/* Allocate @n physically contiguous zeroed pages; *@va gets their address in
 * this process, *@gfn the first frame number. -ENOMEM when none are free. */
int xsim_pages_alloc(struct xsim_domain *d, unsigned n, void **va, uint64_t *gfn);
/* Free pages from xsim_pages_alloc. -EINVAL if @va is not a page of the
 * domain's RAM. The caller must have ended every grant of them first. */
int xsim_pages_free(struct xsim_domain *d, void *va, unsigned n);

/* Translate between this process's addresses and frame numbers.
 * xsim_va_to_gfn returns UINT64_MAX for an address outside the domain's RAM. */
void *xsim_gfn_to_va(const struct xsim_domain *d, uint64_t gfn);
uint64_t xsim_va_to_gfn(const struct xsim_domain *d, const void *va);

/* The domain's v1 grant table (shared with the hypervisor) and its size. */
grant_entry_v1_t *xsim_grant_table(const struct xsim_domain *d, uint32_t *nr_entries);

/* The shared bitmap of grant refs in use, for the grant/ ref allocator. */
uint64_t *xsim_gref_bitmap(const struct xsim_domain *d);

#endif
