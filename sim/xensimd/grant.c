/* SPDX-License-Identifier: MIT */
/*
 * Grant operations, validated as Xen validates them: the granting guest owns
 * its grant entries and changes them with cmpxchg; we pin an entry by setting
 * GTF_reading (and GTF_writing for a writable pin) with cmpxchg after checking
 * GTF_permit_access, the granted domain and GTF_readonly, and unpin by
 * clearing them when the last pin of that kind goes. A guest that tries to
 * end access while a pin is held sees the flags and fails, as in Xen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "xensimd.h"

/* The 32-bit (flags, domid) word of a v1 entry, Xen's "scombo". */
static uint32_t *entry_combo(struct xsd_dom *d, uint32_t ref)
{
	return (uint32_t *)(void *)&d->gnt[ref];
}

int16_t xsd_gnt_pin(struct xsd_dom *d, uint32_t caller, uint32_t ref, int writable, uint64_t *gfn)
{
	struct xsd_active *act;
	uint32_t *combo, old, nw;

	if (!d || !d->alive)
		return GNTST_bad_domain;
	if (ref >= d->nr_grants)
		return GNTST_bad_gntref;
	act = &d->act[ref];
	combo = entry_combo(d, ref);
	old = __atomic_load_n(combo, __ATOMIC_ACQUIRE);
	for (;;) {
		uint16_t flags = (uint16_t)(old & 0xffff);
		uint16_t dom = (uint16_t)(old >> 16);

		if ((flags & GTF_type_mask) != GTF_permit_access || dom != caller)
			return GNTST_general_error;
		if (writable && (flags & GTF_readonly))
			return GNTST_general_error;
		nw = old | GTF_reading | (writable ? GTF_writing : 0);
		if (nw == old)
			break;
		/* Races only with the guest rewriting its own entry. */
		if (__atomic_compare_exchange_n(combo, &old, nw, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
	}
	if (act->rd + act->wr == 0) {
		/* The frame is read after the flags are set: from now on the
		 * guest cannot retarget the entry without ending access. */
		uint64_t f = __atomic_load_n(&d->gnt[ref].frame, __ATOMIC_ACQUIRE);
		if (f >= d->nr_pages) {
			/* undo only what this pin added */
			uint32_t clr = GTF_reading | GTF_writing;
			__atomic_fetch_and(combo, ~clr, __ATOMIC_ACQ_REL);
			return GNTST_bad_page;
		}
		act->gfn = f;
	}
	if (writable)
		act->wr++;
	else
		act->rd++;
	d->pins++;
	*gfn = act->gfn;
	return GNTST_okay;
}

void xsd_gnt_unpin(struct xsd_dom *d, uint32_t ref, int writable)
{
	struct xsd_active *act = &d->act[ref];
	uint32_t clr = 0;

	if (writable) {
		if (!act->wr)
			return;
		act->wr--;
	} else {
		if (!act->rd)
			return;
		act->rd--;
	}
	d->pins--;
	if (!act->wr)
		clr |= GTF_writing;
	if (!act->rd && !act->wr)
		clr |= GTF_reading;
	/* Release: our accesses to the page happen-before the guest seeing
	 * the entry free again. */
	if (clr)
		__atomic_fetch_and(entry_combo(d, ref), ~clr, __ATOMIC_RELEASE);
}

static struct xsd_maptrack *mt_find(struct xsd_conn *c, uint32_t domid, uint32_t ref, int wr)
{
	for (size_t i = 0; i < c->nmt; i++) {
		struct xsd_maptrack *m = &c->mt[i];
		if (m->domid == domid && m->ref == ref && m->writable == (uint32_t)wr)
			return m;
	}
	return NULL;
}

static int mt_add(struct xsd_conn *c, uint32_t domid, uint32_t ref, int wr)
{
	struct xsd_maptrack *m = mt_find(c, domid, ref, wr);

	if (m) {
		m->count++;
		return 0;
	}
	if (c->nmt == c->capmt) {
		size_t nc = c->capmt ? c->capmt * 2 : 64;
		void *p = realloc(c->mt, nc * sizeof(*c->mt));
		if (!p)
			return -ENOMEM;
		c->mt = p;
		c->capmt = nc;
	}
	c->mt[c->nmt++] = (struct xsd_maptrack){ domid, ref, (uint32_t)wr, 1 };
	return 0;
}

static int mt_del(struct xsd_conn *c, uint32_t domid, uint32_t ref, int wr)
{
	struct xsd_maptrack *m = mt_find(c, domid, ref, wr);

	if (!m)
		return -ENOENT;
	if (--m->count == 0)
		*m = c->mt[--c->nmt];
	return 0;
}

int xsd_gnt_map(struct xsd *x, struct xsd_conn *c, const struct xsim_gnt_batch *b,
		struct xsim_gnt_map_rep *rep)
{
	struct xsd_dom *d = xsd_dom_find(x, b->domid);
	int wr = !!b->writable;
	uint32_t i, done = 0;
	int err = 0;

	if (c->grants_held + b->count > c->max_grants) {
		xsd_log("d%u pid %d: map of %u grants refused: limit %llu reached",
			c->domid, (int)c->pid, b->count, (unsigned long long)c->max_grants);
		return -ENOSPC;
	}
	for (i = 0; i < b->count; i++) {
		memset(&rep[i], 0, sizeof(rep[i]));
		rep[i].status = xsd_gnt_pin(d, c->domid, b->refs[i], wr, &rep[i].gfn);
		if (rep[i].status != GNTST_okay) {
			err = -EINVAL;
			break;
		}
		if (mt_add(c, b->domid, b->refs[i], wr)) {
			xsd_gnt_unpin(d, b->refs[i], wr);
			rep[i].status = GNTST_no_space;
			err = -ENOMEM;
			break;
		}
		done++;
	}
	if (err) {
		/* All or nothing, as a gntdev mmap is: drop what we pinned. */
		xsd_log("d%u pid %d: grant map of d%u ref %u refused (GNTST %d)", c->domid,
			(int)c->pid, b->domid, b->refs[i], rep[i].status);
		for (uint32_t k = i + 1; k < b->count; k++) {
			memset(&rep[k], 0, sizeof(rep[k]));
			rep[k].status = GNTST_general_error;
		}
		for (uint32_t k = 0; k < done; k++) {
			mt_del(c, b->domid, b->refs[k], wr);
			xsd_gnt_unpin(d, b->refs[k], wr);
		}
		return err;
	}
	c->grants_held += done;
	return 0;
}

int xsd_gnt_unmap(struct xsd *x, struct xsd_conn *c, const struct xsim_gnt_batch *b,
		  int16_t *status)
{
	struct xsd_dom *d = xsd_dom_find_any(x, b->domid);
	int wr = !!b->writable, err = 0;

	for (uint32_t i = 0; i < b->count; i++) {
		if (!d || b->refs[i] >= d->nr_grants || mt_del(c, b->domid, b->refs[i], wr)) {
			status[i] = GNTST_bad_handle;
			err = -EINVAL;
			continue;
		}
		xsd_gnt_unpin(d, b->refs[i], wr);
		c->grants_held--;
		status[i] = GNTST_okay;
	}
	xsd_dom_reap(x);
	return err;
}

/*
 * Grant copy. Segments that move bytes between a domain page and the
 * caller's memory are validated and pinned one by one, then moved with one
 * process_vm_readv/writev per run of same-direction segments (up to
 * COPY_IOV) rather than one system call per segment: one GNTTABOP_copy
 * hypercall on Xen copies its whole batch inside the hypervisor, and a
 * syscall per 4 KiB page made xensimd the bottleneck of the network path.
 * Each segment still succeeds or fails on its own: process_vm_* never
 * splits an iovec element, so the byte count it returns says exactly which
 * segments were done; the one it stopped at failed, the rest are retried.
 */
#define COPY_IOV 1024u

struct copy_run {
	struct xsd_conn *c;
	int to_local;	   /* direction of the pending run */
	uint32_t n;
	struct iovec mine[COPY_IOV], caller[COPY_IOV];
	uint32_t seg[COPY_IOV]; /* index into status[] */
	/* pins to drop once the run is done */
	struct xsd_dom *dom[COPY_IOV];
	uint32_t ref[COPY_IOV];
};

static void run_flush(struct copy_run *r, int16_t *status)
{
	uint32_t i = 0;

	while (i < r->n) {
		ssize_t n;
		size_t done = 0;

		/* process_vm_* call the caller's buffer "remote" and ours "local" */
		if (r->to_local)
			n = process_vm_writev(r->c->pid, &r->mine[i], r->n - i, &r->caller[i], r->n - i, 0);
		else
			n = process_vm_readv(r->c->pid, &r->mine[i], r->n - i, &r->caller[i], r->n - i, 0);
		if (n < 0 && errno != EFAULT) {
			/* the caller is gone or out of reach: nothing more moves */
			for (; i < r->n; i++)
				status[r->seg[i]] = GNTST_bad_virt_addr;
			break;
		}
		/* whole elements only: every segment below n bytes is done */
		for (; i < r->n && n > 0 && done + r->caller[i].iov_len <= (size_t)n; i++) {
			done += r->caller[i].iov_len;
			status[r->seg[i]] = GNTST_okay;
		}
		if (i < r->n)
			status[r->seg[i++]] = GNTST_bad_virt_addr; /* where it stopped */
	}
	for (i = 0; i < r->n; i++)
		xsd_gnt_unpin(r->dom[i], r->ref[i], r->to_local ? 0 : 1);
	r->n = 0;
}

/* Validate and pin segment @s; either copy it now (gref to gref) or queue
 * it on @r. Returns its status if decided now, or 1 if it was queued. */
static int16_t copy_one(struct xsd *x, struct copy_run *r, const struct xsim_gnt_copy_seg *s,
			uint32_t idx, int16_t *status)
{
	struct xsd_conn *c = r->c;
	struct xsd_dom *sd = NULL, *dd = NULL;
	uint64_t sgfn = 0, dgfn = 0;
	int16_t st;
	int src_g = !!(s->flags & XSIM_COPY_SRC_GREF);
	int dst_g = !!(s->flags & XSIM_COPY_DST_GREF);

	if (s->flags & ~(XSIM_COPY_SRC_GREF | XSIM_COPY_DST_GREF))
		return GNTST_general_error;
	if (!src_g && !dst_g)
		return GNTST_general_error;  /* Xen needs at least one gref side */
	if ((src_g && (uint32_t)s->src_off + s->len > XSIM_PAGE_SIZE) ||
	    (dst_g && (uint32_t)s->dst_off + s->len > XSIM_PAGE_SIZE))
		return GNTST_bad_copy_arg;
	if (src_g) {
		sd = xsd_dom_find(x, s->src_dom);
		st = xsd_gnt_pin(sd, c->domid, s->src_ref, 0, &sgfn);
		if (st != GNTST_okay)
			return st;
	}
	if (dst_g) {
		dd = xsd_dom_find(x, s->dst_dom);
		st = xsd_gnt_pin(dd, c->domid, s->dst_ref, 1, &dgfn);
		if (st != GNTST_okay) {
			if (src_g)
				xsd_gnt_unpin(sd, s->src_ref, 0);
			return st;
		}
	}
	if (src_g && dst_g) {
		/* copies land in segment order: finish what is queued first */
		if (r->n)
			run_flush(r, status);
		memmove(dd->mem + dgfn * XSIM_PAGE_SIZE + s->dst_off,
			sd->mem + sgfn * XSIM_PAGE_SIZE + s->src_off, s->len);
		xsd_gnt_unpin(sd, s->src_ref, 0);
		xsd_gnt_unpin(dd, s->dst_ref, 1);
		return GNTST_okay;
	}
	if (r->n && (r->n == COPY_IOV || r->to_local != src_g))
		run_flush(r, status);
	r->to_local = src_g;
	r->seg[r->n] = idx;
	r->caller[r->n].iov_base = (void *)(uintptr_t)(src_g ? s->dst_virt : s->src_virt);
	r->caller[r->n].iov_len = s->len;
	r->mine[r->n].iov_base = src_g ? sd->mem + sgfn * XSIM_PAGE_SIZE + s->src_off
				       : dd->mem + dgfn * XSIM_PAGE_SIZE + s->dst_off;
	r->mine[r->n].iov_len = s->len;
	r->dom[r->n] = src_g ? sd : dd;
	r->ref[r->n] = src_g ? s->src_ref : s->dst_ref;
	r->n++;
	return 1;
}

int xsd_gnt_copy(struct xsd *x, struct xsd_conn *c, uint32_t count,
		 const struct xsim_gnt_copy_seg *segs, int16_t *status)
{
	static struct copy_run run;

	/* Each segment succeeds or fails on its own, as GNTTABOP_copy does. */
	run.c = c;
	run.n = 0;
	for (uint32_t i = 0; i < count; i++) {
		int16_t st = copy_one(x, &run, &segs[i], i, status);
		if (st != 1)
			status[i] = st;
	}
	if (run.n)
		run_flush(&run, status);
	return 0;
}

void xsd_gnt_release_conn(struct xsd *x, struct xsd_conn *c)
{
	/* The process closed its handle or died: its mappings are gone with
	 * it (the library unmaps before closing), so drop its pins. */
	for (size_t i = 0; i < c->nmt; i++) {
		struct xsd_maptrack *m = &c->mt[i];
		struct xsd_dom *d = xsd_dom_find_any(x, m->domid);
		for (uint32_t k = 0; d && k < m->count; k++)
			xsd_gnt_unpin(d, m->ref, (int)m->writable);
	}
	if (c->nmt)
		xsd_log("d%u pid %d: released %zu grant mappings left at close", c->domid,
			(int)c->pid, c->nmt);
	free(c->mt);
	c->mt = NULL;
	c->nmt = c->capmt = 0;
	c->grants_held = 0;
	xsd_dom_reap(x);
}
