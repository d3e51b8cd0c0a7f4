/* SPDX-License-Identifier: MIT */
/* Guest side of grant tables on xensim: the guest owns its entries. */
#include <errno.h>

#include "pvio-config.h"
#include "pvio/grant.h"

int pvio_gnt_alloc_refs(struct xsim_domain *d, unsigned n, grant_ref_t *refs)
{
	uint64_t *bm = xsim_gref_bitmap(d);
	uint32_t nr;
	unsigned got = 0;

	xsim_grant_table(d, &nr);
	for (uint32_t w = 0; w < (nr + 63) / 64 && got < n; w++) {
		uint64_t v = __atomic_load_n(&bm[w], __ATOMIC_RELAXED);
		while (v != ~0ull && got < n) {
			unsigned b = (unsigned)__builtin_ctzll(~v);
			uint64_t m = 1ull << b;
			uint32_t ref = w * 64 + b;
			if (ref >= nr)
				break;
			/* atomic claim: another process may take the same bit */
			if (!(__atomic_fetch_or(&bm[w], m, __ATOMIC_ACQ_REL) & m))
				refs[got++] = ref;
			v = __atomic_load_n(&bm[w], __ATOMIC_RELAXED);
		}
	}
	if (got < n) {
		pvio_gnt_free_refs(d, got, refs);
		return -ENOSPC;
	}
	return 0;
}

void pvio_gnt_free_refs(struct xsim_domain *d, unsigned n, const grant_ref_t *refs)
{
	uint64_t *bm = xsim_gref_bitmap(d);
	uint32_t nr;

	xsim_grant_table(d, &nr);
	for (unsigned i = 0; i < n; i++)
		if (refs[i] >= 8 && refs[i] < nr)
			__atomic_fetch_and(&bm[refs[i] / 64], ~(1ull << (refs[i] % 64)),
					   __ATOMIC_RELEASE);
}

int pvio_gnt_grant_access(struct xsim_domain *d, grant_ref_t ref, domid_t to,
			  uint64_t gfn, int readonly)
{
	uint32_t nr;
	grant_entry_v1_t *e = xsim_grant_table(d, &nr);

	if (ref >= nr || gfn >= xsim_domain_nr_pages(d) || gfn > UINT32_MAX)
		return -EINVAL;
	e += ref;
	if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & (GTF_reading | GTF_writing))
		return -EBUSY;
	__atomic_store_n(&e->frame, (uint32_t)gfn, __ATOMIC_RELAXED);
	__atomic_store_n(&e->domid, to, __ATOMIC_RELAXED);
	/* Release: frame and domid are visible before the entry becomes valid. */
	__atomic_store_n(&e->flags, (uint16_t)(GTF_permit_access | (readonly ? GTF_readonly : 0)),
			 __ATOMIC_RELEASE);
	return 0;
}

int pvio_gnt_end_access(struct xsim_domain *d, grant_ref_t ref)
{
	uint32_t nr;
	grant_entry_v1_t *e = xsim_grant_table(d, &nr);
	uint16_t flags;

	if (ref >= nr)
		return -EINVAL;
	e += ref;
	flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
	do {
		if (flags & (GTF_reading | GTF_writing))
			return -EBUSY;
		/* cmpxchg against the hypervisor setting GTF_reading/writing */
	} while (!__atomic_compare_exchange_n(&e->flags, &flags, 0, 0, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	return 0;
}

int pvio_gnt_grant_page(struct xsim_domain *d, domid_t to, const void *va, int readonly,
			grant_ref_t *ref)
{
	uint64_t gfn = xsim_va_to_gfn(d, va);
	int err;

	if (gfn == UINT64_MAX)
		return -EINVAL;
	err = pvio_gnt_alloc_refs(d, 1, ref);
	if (err)
		return err;
	err = pvio_gnt_grant_access(d, *ref, to, gfn, readonly);
	if (err)
		pvio_gnt_free_refs(d, 1, ref);
	return err;
}
