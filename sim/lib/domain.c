/* SPDX-License-Identifier: MIT */
/* Guest side: this process's domain RAM, grant table and page allocator. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "client.h"
#include "pvio/xensim.h"

struct xsim_domain {
	struct xsim_conn conn;
	struct xsim_ctl *ctl;
	uint8_t *mem;
	uint64_t nr_pages;
	grant_entry_v1_t *gnt;
	uint32_t nr_grants;
	uint64_t *page_bm;
	uint64_t *gref_bm;
};

int xsim_domain_open(struct xsim_domain **out)
{
	struct xsim_domain *d;
	int fds[2], nfds, err;
	uint32_t self = xsim_self_domid();

	*out = NULL;
	if (self == 0)
		return -EINVAL;  /* dom0 has no guest RAM here; set XENSIM_DOMID */
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	err = xsim_connect(self, &d->conn);
	if (err)
		goto fail_free;
	d->ctl = xsim_map_fd(d->conn.ctl_fd, d->conn.ctl_size, 1);
	if (!d->ctl || d->ctl->magic != XSIM_CTL_MAGIC) {
		err = d->ctl ? -EPROTO : -ENOMEM;
		goto fail_conn;
	}
	d->nr_pages = d->ctl->nr_pages;
	d->nr_grants = d->ctl->nr_grants;
	if (xsim_ctl_size(d->nr_pages, d->nr_grants) > d->conn.ctl_size) {
		err = -EPROTO;
		goto fail_ctl;
	}
	d->page_bm = (uint64_t *)((char *)d->ctl + d->ctl->page_bitmap_off);
	d->gref_bm = (uint64_t *)((char *)d->ctl + d->ctl->gref_bitmap_off);
	err = xsim_call(&d->conn, XSIM_DOM_ATTACH, NULL, 0, -1, NULL, 0, NULL, fds, 2, &nfds);
	if (!err && nfds != 2)
		err = -EPROTO;
	if (err) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		goto fail_ctl;
	}
	d->mem = xsim_map_fd(fds[0], d->nr_pages * XSIM_PAGE_SIZE, 1);
	d->gnt = xsim_map_fd(fds[1], (size_t)d->nr_grants * sizeof(grant_entry_v1_t), 1);
	close(fds[0]);
	close(fds[1]);
	if (!d->mem || !d->gnt) {
		err = -ENOMEM;
		goto fail_maps;
	}
	*out = d;
	return 0;
fail_maps:
	if (d->mem)
		munmap(d->mem, d->nr_pages * XSIM_PAGE_SIZE);
	if (d->gnt)
		munmap(d->gnt, (size_t)d->nr_grants * sizeof(grant_entry_v1_t));
fail_ctl:
	munmap(d->ctl, d->conn.ctl_size);
fail_conn:
	xsim_disconnect(&d->conn);
fail_free:
	free(d);
	return err;
}

void xsim_domain_close(struct xsim_domain *d)
{
	if (!d)
		return;
	munmap(d->mem, d->nr_pages * XSIM_PAGE_SIZE);
	munmap(d->gnt, (size_t)d->nr_grants * sizeof(grant_entry_v1_t));
	munmap(d->ctl, d->conn.ctl_size);
	xsim_disconnect(&d->conn);
	free(d);
}

uint32_t xsim_domain_id(const struct xsim_domain *d) { return d->conn.domid; }
uint64_t xsim_domain_nr_pages(const struct xsim_domain *d) { return d->nr_pages; }

int xsim_domain_alive(const struct xsim_domain *d)
{
	return (int)__atomic_load_n(&d->ctl->alive, __ATOMIC_ACQUIRE);
}

static int bit_try_set(uint64_t *bm, uint64_t i)
{
	uint64_t m = 1ull << (i & 63);

	return !(__atomic_fetch_or(&bm[i / 64], m, __ATOMIC_ACQ_REL) & m);
}

static void bit_clear(uint64_t *bm, uint64_t i)
{
	__atomic_fetch_and(&bm[i / 64], ~(1ull << (i & 63)), __ATOMIC_RELEASE);
}

int xsim_pages_alloc(struct xsim_domain *d, unsigned n, void **va, uint64_t *gfn)
{
	uint64_t start = 0;

	if (n == 0 || n > d->nr_pages)
		return -EINVAL;
	/*
	 * First fit over the shared bitmap. Bits are claimed one at a time
	 * with atomic OR; losing a race to another process just means we give
	 * back what we took and look further on.
	 */
	while (start + n <= d->nr_pages) {
		uint64_t w = __atomic_load_n(&d->page_bm[start / 64], __ATOMIC_RELAXED);
		unsigned got = 0;

		if (w == ~0ull && (start & 63) == 0) {
			start += 64;
			continue;
		}
		while (got < n && bit_try_set(d->page_bm, start + got))
			got++;
		if (got == n) {
			*gfn = start;
			*va = d->mem + start * XSIM_PAGE_SIZE;
			memset(*va, 0, (size_t)n * XSIM_PAGE_SIZE);
			return 0;
		}
		while (got--)
			bit_clear(d->page_bm, start + got);
		start += 1;
		/* skip over the run we collided with */
		while (start < d->nr_pages &&
		       (__atomic_load_n(&d->page_bm[start / 64], __ATOMIC_RELAXED) >> (start & 63)) & 1)
			start++;
	}
	return -ENOMEM;
}

int xsim_pages_free(struct xsim_domain *d, void *va, unsigned n)
{
	uint64_t g = xsim_va_to_gfn(d, va);

	if (g == UINT64_MAX || ((uintptr_t)va & (XSIM_PAGE_SIZE - 1)) || g + n > d->nr_pages)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		bit_clear(d->page_bm, g + i);
	return 0;
}

void *xsim_gfn_to_va(const struct xsim_domain *d, uint64_t gfn)
{
	return gfn < d->nr_pages ? d->mem + gfn * XSIM_PAGE_SIZE : NULL;
}

uint64_t xsim_va_to_gfn(const struct xsim_domain *d, const void *va)
{
	const uint8_t *p = va;

	if (p < d->mem || p >= d->mem + d->nr_pages * XSIM_PAGE_SIZE)
		return UINT64_MAX;
	return (uint64_t)(p - d->mem) / XSIM_PAGE_SIZE;
}

grant_entry_v1_t *xsim_grant_table(const struct xsim_domain *d, uint32_t *nr_entries)
{
	*nr_entries = d->nr_grants;
	return d->gnt;
}

uint64_t *xsim_gref_bitmap(const struct xsim_domain *d)
{
	return d->gref_bm;
}
