/* SPDX-License-Identifier: MIT */
/* Domains: memory, grant table and ctl memfds; creation and destruction. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "xensimd.h"

struct xsd_dom *xsd_dom_find_any(struct xsd *x, uint32_t domid)
{
	for (struct xsd_dom *d = x->doms; d; d = d->next)
		if (d->id == domid)
			return d;
	return NULL;
}

struct xsd_dom *xsd_dom_find(struct xsd *x, uint32_t domid)
{
	struct xsd_dom *d = xsd_dom_find_any(x, domid);

	return d && d->alive ? d : NULL;
}

static int make_memfd(const char *what, uint32_t domid, uint64_t size, int *fd, void **map)
{
	char name[64];

	snprintf(name, sizeof(name), "xensim-d%u-%s", domid, what);
	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)size) < 0)
		goto fail;
	*map = NULL;
	if (size) {
		*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
		if (*map == MAP_FAILED)
			goto fail;
	}
	return 0;
fail:
	{
		int err = -errno;
		close(*fd);
		*fd = -1;
		return err;
	}
}

static void dom_free(struct xsd_dom *d)
{
	if (d->mem)
		munmap(d->mem, d->nr_pages * XSIM_PAGE_SIZE);
	if (d->gnt)
		munmap(d->gnt, (size_t)d->nr_grants * sizeof(grant_entry_v1_t));
	if (d->ctl)
		munmap(d->ctl, d->ctl_size);
	if (d->mem_fd >= 0)
		close(d->mem_fd);
	if (d->gnt_fd >= 0)
		close(d->gnt_fd);
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	free(d->act);
	free(d);
}

int xsd_dom_create(struct xsd *x, const char *name, uint32_t mem_mb, uint32_t *domid)
{
	struct xsd_dom *d;
	void *p;
	int err;

	if (!name[0] || strlen(name) >= sizeof(d->name))
		return -EINVAL;
	for (struct xsd_dom *o = x->doms; o; o = o->next)
		if (o->alive && !strcmp(o->name, name))
			return -EEXIST;
	if (mem_mb > XSIM_MAX_MEMORY_MB)
		return -E2BIG;
	if (x->next_domid >= 0x7ff0)  /* DOMID_FIRST_RESERVED */
		return -ENOSPC;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->mem_fd = d->gnt_fd = d->ctl_fd = -1;
	d->id = x->next_domid;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->nr_pages = (uint64_t)mem_mb << (20 - XSIM_PAGE_SHIFT);
	/* dom0 grants nothing here, so it gets no grant table */
	d->nr_grants = d->id ? XSIM_NR_GRANTS : 0;
	for (uint32_t i = 0; i < XSIM_NR_PORTS; i++)
		d->ports[i].efd = -1;

	err = make_memfd("mem", d->id, d->nr_pages * XSIM_PAGE_SIZE, &d->mem_fd, &p);
	if (err)
		goto fail;
	d->mem = p;
	err = make_memfd("gnttab", d->id, (uint64_t)d->nr_grants * sizeof(grant_entry_v1_t),
			 &d->gnt_fd, &p);
	if (err)
		goto fail;
	d->gnt = p;
	d->ctl_size = xsim_ctl_size(d->nr_pages, d->nr_grants);
	err = make_memfd("ctl", d->id, d->ctl_size, &d->ctl_fd, &p);
	if (err)
		goto fail;
	d->ctl = p;
	if (d->nr_grants) {
		d->act = calloc(d->nr_grants, sizeof(*d->act));
		if (!d->act) {
			err = -ENOMEM;
			goto fail;
		}
	}
	d->ctl->magic = XSIM_CTL_MAGIC;
	d->ctl->domid = d->id;
	d->ctl->nr_pages = d->nr_pages;
	d->ctl->nr_grants = d->nr_grants;
	d->ctl->page_bitmap_off = sizeof(struct xsim_ctl);
	d->ctl->gref_bitmap_off = d->ctl->page_bitmap_off + ((d->nr_pages + 63) / 64) * 8;
	if (d->nr_grants) {
		/* the reserved refs are the toolstack's: never handed out */
		uint64_t *gb = (uint64_t *)((char *)d->ctl + d->ctl->gref_bitmap_off);
		gb[0] |= (1ull << XSIM_GNT_RESERVED) - 1;
	}
	d->alive = 1;
	__atomic_store_n(&d->ctl->alive, 1, __ATOMIC_RELEASE);
	d->next = x->doms;
	x->doms = d;
	x->next_domid++;
	*domid = d->id;
	xsd_log("domain %u (%s) created: %u MiB, %u grant entries", d->id, d->name,
		mem_mb, d->nr_grants);
	return 0;
fail:
	dom_free(d);
	return err;
}

int xsd_dom_destroy(struct xsd *x, uint32_t domid)
{
	struct xsd_dom *d = xsd_dom_find(x, domid);

	if (!d)
		return -ESRCH;
	if (domid == 0)
		return -EPERM;
	/*
	 * The domain's vcpus stop: its processes die, its ports close (peers
	 * see the close), and new grant maps of its refs fail. Pages already
	 * mapped by backends stay valid until unmapped, as in Xen, because the
	 * memfd lives on in their mappings.
	 */
	d->alive = 0;
	__atomic_store_n(&d->ctl->alive, 0, __ATOMIC_RELEASE);
	for (struct xsd_conn *c = x->conns; c; c = c->next)
		if (c->domid == domid && c->pid > 0) {
			xsd_log("domain %u destroyed: killing its process %d", domid, (int)c->pid);
			kill(c->pid, SIGKILL);
		}
	for (uint32_t p = 1; p < XSIM_NR_PORTS; p++)
		if (d->ports[p].state != XSIM_EVT_CLOSED)
			xsd_evt_close_port(x, d, p);
	xsd_log("domain %u (%s) destroyed (%llu grant pins still held by backends)",
		d->id, d->name, (unsigned long long)d->pins);
	xsd_dom_reap(x);
	return 0;
}

void xsd_dom_reap(struct xsd *x)
{
	struct xsd_dom **pp = &x->doms;

	while (*pp) {
		struct xsd_dom *d = *pp;
		if (!d->alive && d->pins == 0) {
			*pp = d->next;
			dom_free(d);
		} else {
			pp = &d->next;
		}
	}
}

void xsd_dom_free_all(struct xsd *x)
{
	while (x->doms) {
		struct xsd_dom *d = x->doms;
		x->doms = d->next;
		dom_free(d);
	}
}
