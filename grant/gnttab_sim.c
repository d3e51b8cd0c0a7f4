/* SPDX-License-Identifier: MIT */
/*
 * The libxengnttab API on xensim. Same names, signatures and error
 * conventions as Debian's libxengnttab (NULL or -1 with errno set), so a
 * backend builds unchanged against either.
 *
 * A map asks xensimd to validate and pin the refs (one round trip for the
 * whole batch, like one GNTTABOP_map_grant_ref hypercall), then maps each
 * granted page of the domain's memory with mmap — a grant map costs an mmap
 * and an unmap a munmap, as on Xen it costs page-table updates and a TLB
 * flush. The domain's memfd is kept per handle only to do those mmaps; no
 * page is mapped that xensimd did not just pin for us.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <xengnttab.h>

/* xensimd writes a grant copy's bytes into our memory from its own
 * process (process_vm_writev), as the hypervisor would: memcheck cannot
 * see that write, so it is told (a no-op when not under valgrind). */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len))
#endif

#include "client.h"

struct gmap {
	uint8_t *addr;
	uint32_t count;
	uint32_t writable;
	int64_t notify_offset;     /* -1: none */
	int64_t notify_port;       /* -1: none */
	uint32_t *domids;
	uint32_t *refs;
	struct gmap *next;
};

struct memfd_ent {
	uint32_t domid;
	int fd;
};

struct xengntdev_handle {
	struct xsim_conn conn;
	pthread_mutex_t lock;
	struct gmap *maps;
	struct memfd_ent *fds;
	size_t nfds;
};

static int fail(int err)
{
	errno = err < 0 ? -err : err;
	return -1;
}

xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger, unsigned open_flags)
{
	xengnttab_handle *h;
	int err;

	(void)logger;
	(void)open_flags;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	err = xsim_connect(xsim_self_domid(), &h->conn);
	if (err) {
		free(h);
		errno = -err;
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

static int do_unmap(xengnttab_handle *h, struct gmap *m);

int xengnttab_close(xengnttab_handle *h)
{
	if (!h)
		return 0;
	/* Unmap what is left before the pins go, so no page stays reachable
	 * after the guest may reuse it. */
	while (h->maps) {
		struct gmap *m = h->maps;
		h->maps = m->next;
		do_unmap(h, m);
	}
	for (size_t i = 0; i < h->nfds; i++)
		close(h->fds[i].fd);
	free(h->fds);
	xsim_disconnect(&h->conn);
	pthread_mutex_destroy(&h->lock);
	free(h);
	return 0;
}

int xengnttab_fd(xengnttab_handle *h)
{
	return h->conn.fd;
}

static int domain_memfd(xengnttab_handle *h, uint32_t domid)
{
	struct xsim_dom_info info;
	size_t rl;
	int fd, nfds, err;
	void *p;

	for (size_t i = 0; i < h->nfds; i++)
		if (h->fds[i].domid == domid)
			return h->fds[i].fd;
	err = xsim_call(&h->conn, XSIM_DOM_MEMFD, &domid, 4, -1, &info, sizeof(info), &rl,
			&fd, 1, &nfds);
	if (!err && nfds != 1)
		err = -EPROTO;
	if (err)
		return err;
	p = realloc(h->fds, (h->nfds + 1) * sizeof(*h->fds));
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	h->fds = p;
	h->fds[h->nfds++] = (struct memfd_ent){ domid, fd };
	return fd;
}

/* Unpin @count refs of one domain in xensimd. */
static int unpin(xengnttab_handle *h, uint32_t domid, const uint32_t *refs, uint32_t count,
		 int writable)
{
	uint32_t buf[4 + XSIM_MAX_BATCH];
	struct xsim_gnt_batch *b = (struct xsim_gnt_batch *)buf;
	int16_t st[XSIM_MAX_BATCH];
	int err = 0;

	while (count) {
		uint32_t n = count > XSIM_MAX_BATCH ? XSIM_MAX_BATCH : count;
		int e;

		b->domid = domid;
		b->writable = (uint32_t)writable;
		b->count = n;
		b->pad = 0;
		memcpy(b->refs, refs, n * 4);
		e = xsim_call(&h->conn, XSIM_GNT_UNMAP, b, sizeof(*b) + n * 4, -1, st, sizeof(st),
			      NULL, NULL, 0, NULL);
		if (e && !err)
			err = e;
		refs += n;
		count -= n;
	}
	return err;
}

/* Pin @count refs of one domain; gfns out. All or nothing. */
static int pin(xengnttab_handle *h, uint32_t domid, const uint32_t *refs, uint32_t count,
	       int writable, uint64_t *gfns)
{
	uint32_t buf[4 + XSIM_MAX_BATCH];
	struct xsim_gnt_batch *b = (struct xsim_gnt_batch *)buf;
	static __thread struct xsim_gnt_map_rep rep[XSIM_MAX_BATCH];
	uint32_t done = 0;

	while (done < count) {
		uint32_t n = count - done > XSIM_MAX_BATCH ? XSIM_MAX_BATCH : count - done;
		size_t rl;
		int err;

		b->domid = domid;
		b->writable = (uint32_t)writable;
		b->count = n;
		b->pad = 0;
		memcpy(b->refs, refs + done, n * 4);
		err = xsim_call(&h->conn, XSIM_GNT_MAP, b, sizeof(*b) + n * 4, -1, rep,
				sizeof(rep), &rl, NULL, 0, NULL);
		if (!err && rl != n * sizeof(rep[0]))
			err = -EPROTO;
		if (err) {
			if (done)
				unpin(h, domid, refs, done, writable);
			return err;
		}
		for (uint32_t i = 0; i < n; i++)
			gfns[done + i] = rep[i].gfn;
		done += n;
	}
	return 0;
}

static void *map_refs(xengnttab_handle *h, uint32_t count, const uint32_t *domids,
		      uint32_t one_domid, const uint32_t *refs, int prot)
{
	int writable = !!(prot & PROT_WRITE);
	struct gmap *m;
	uint64_t *gfns;
	uint8_t *area;
	uint32_t i, j;
	int err;

	if (count == 0 || count > (1u << 20))
		return errno = EINVAL, NULL;
	m = calloc(1, sizeof(*m));
	gfns = calloc(count, sizeof(*gfns));
	if (m) {
		m->domids = calloc(count, sizeof(uint32_t));
		m->refs = calloc(count, sizeof(uint32_t));
	}
	if (!m || !gfns || !m->domids || !m->refs) {
		err = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < count; i++) {
		m->domids[i] = domids ? domids[i] : one_domid;
		m->refs[i] = refs[i];
	}
	m->count = count;
	m->writable = (uint32_t)writable;
	m->notify_offset = m->notify_port = -1;

	pthread_mutex_lock(&h->lock);
	/* Pin runs of refs that share a domain, one batch each. */
	for (i = 0; i < count; i = j) {
		for (j = i + 1; j < count && m->domids[j] == m->domids[i]; j++)
			;
		err = pin(h, m->domids[i], m->refs + i, j - i, writable, gfns + i);
		if (err) {
			for (uint32_t k = 0, l; k < i; k = l) {
				for (l = k + 1; l < i && m->domids[l] == m->domids[k]; l++)
					;
				unpin(h, m->domids[k], m->refs + k, l - k, writable);
			}
			goto out_unlock;
		}
	}
	/* Reserve the whole area first so the pages land contiguously. */
	area = mmap(NULL, (size_t)count * XSIM_PAGE_SIZE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED) {
		err = -ENOMEM;
		goto out_unpin;
	}
	for (i = 0; i < count; i = j) {
		int fd = domain_memfd(h, m->domids[i]);
		if (fd < 0) {
			err = fd;
			goto out_unmap;
		}
		/* one mmap per run of adjacent frames of one domain */
		for (j = i + 1; j < count && m->domids[j] == m->domids[i] &&
			     gfns[j] == gfns[j - 1] + 1; j++)
			;
		if (mmap(area + (size_t)i * XSIM_PAGE_SIZE, (size_t)(j - i) * XSIM_PAGE_SIZE,
			 PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED | MAP_FIXED, fd,
			 (off_t)(gfns[i] * XSIM_PAGE_SIZE)) == MAP_FAILED) {
			err = -errno;
			goto out_unmap;
		}
	}
	m->addr = area;
	m->next = h->maps;
	h->maps = m;
	pthread_mutex_unlock(&h->lock);
	free(gfns);
	return area;

out_unmap:
	munmap(area, (size_t)count * XSIM_PAGE_SIZE);
out_unpin:
	for (uint32_t k = 0, l; k < count; k = l) {
		for (l = k + 1; l < count && m->domids[l] == m->domids[k]; l++)
			;
		unpin(h, m->domids[k], m->refs + k, l - k, writable);
	}
out_unlock:
	pthread_mutex_unlock(&h->lock);
out_free:
	free(gfns);
	if (m) {
		free(m->domids);
		free(m->refs);
		free(m);
	}
	/* Xen's libxengnttab reports a refused grant as EINVAL (mmap fails) */
	errno = err == -ENOMEM || err == -ENOSPC || err == -EPIPE ? -err : EINVAL;
	return NULL;
}

void *xengnttab_map_grant_ref(xengnttab_handle *h, uint32_t domid, uint32_t ref, int prot)
{
	return map_refs(h, 1, NULL, domid, &ref, prot);
}

void *xengnttab_map_grant_refs(xengnttab_handle *h, uint32_t count, uint32_t *domids,
			       uint32_t *refs, int prot)
{
	return map_refs(h, count, domids, 0, refs, prot);
}

void *xengnttab_map_domain_grant_refs(xengnttab_handle *h, uint32_t count, uint32_t domid,
				      uint32_t *refs, int prot)
{
	return map_refs(h, count, NULL, domid, refs, prot);
}

void *xengnttab_map_grant_ref_notify(xengnttab_handle *h, uint32_t domid, uint32_t ref,
				     int prot, uint32_t notify_offset,
				     evtchn_port_t notify_port)
{
	void *p;

	if (notify_offset != (uint32_t)-1 && notify_offset >= XSIM_PAGE_SIZE)
		return errno = EINVAL, NULL;
	p = map_refs(h, 1, NULL, domid, &ref, prot);
	if (p) {
		pthread_mutex_lock(&h->lock);
		h->maps->notify_offset = notify_offset == (uint32_t)-1 ? -1 : (int64_t)notify_offset;
		h->maps->notify_port = notify_port == (evtchn_port_t)-1 ? -1 : (int64_t)notify_port;
		pthread_mutex_unlock(&h->lock);
	}
	return p;
}

static int do_unmap(xengnttab_handle *h, struct gmap *m)
{
	int err = 0;

	/* Unmap notify (as gntdev's UNMAP_NOTIFY): clear a byte, send an event. */
	if (m->notify_offset >= 0 && m->writable)
		m->addr[m->notify_offset] = 0;
	/* The pages go before the pins: the guest may reuse them at once. */
	munmap(m->addr, (size_t)m->count * XSIM_PAGE_SIZE);
	if (m->notify_port >= 0) {
		uint32_t port = (uint32_t)m->notify_port;
		xsim_call(&h->conn, XSIM_EVT_SEND, &port, 4, -1, NULL, 0, NULL, NULL, 0, NULL);
	}
	for (uint32_t k = 0, l; k < m->count; k = l) {
		int e;
		for (l = k + 1; l < m->count && m->domids[l] == m->domids[k]; l++)
			;
		e = unpin(h, m->domids[k], m->refs + k, l - k, (int)m->writable);
		if (e && !err)
			err = e;
	}
	free(m->domids);
	free(m->refs);
	free(m);
	return err;
}

int xengnttab_unmap(xengnttab_handle *h, void *start_address, uint32_t count)
{
	struct gmap **pp, *m;
	int err;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->maps; *pp; pp = &(*pp)->next)
		if ((*pp)->addr == start_address)
			break;
	m = *pp;
	if (!m || m->count != count) {
		pthread_mutex_unlock(&h->lock);
		return fail(-EINVAL);
	}
	*pp = m->next;
	err = do_unmap(h, m);
	pthread_mutex_unlock(&h->lock);
	return err ? fail(err) : 0;
}

int xengnttab_set_max_grants(xengnttab_handle *h, uint32_t nr_grants)
{
	int err;

	pthread_mutex_lock(&h->lock);
	err = xsim_call(&h->conn, XSIM_GNT_SET_MAX, &nr_grants, 4, -1, NULL, 0, NULL, NULL, 0, NULL);
	pthread_mutex_unlock(&h->lock);
	return err ? fail(err) : 0;
}

int xengnttab_grant_copy(xengnttab_handle *h, uint32_t count, xengnttab_grant_copy_segment_t *segs)
{
	static __thread struct {
		uint32_t count, pad;
		struct xsim_gnt_copy_seg s[XSIM_MAX_BATCH];
	} req;
	static __thread int16_t st[XSIM_MAX_BATCH];
	uint32_t done = 0;

	while (done < count) {
		uint32_t n = count - done > XSIM_MAX_BATCH ? XSIM_MAX_BATCH : count - done;
		size_t rl;
		int err;

		for (uint32_t i = 0; i < n; i++) {
			const xengnttab_grant_copy_segment_t *g = &segs[done + i];
			struct xsim_gnt_copy_seg *s = &req.s[i];

			memset(s, 0, sizeof(*s));
			s->len = g->len;
			if (g->flags & GNTCOPY_source_gref) {
				s->flags |= XSIM_COPY_SRC_GREF;
				s->src_ref = g->source.foreign.ref;
				s->src_dom = g->source.foreign.domid;
				s->src_off = g->source.foreign.offset;
			} else {
				s->src_virt = (uintptr_t)g->source.virt;
			}
			if (g->flags & GNTCOPY_dest_gref) {
				s->flags |= XSIM_COPY_DST_GREF;
				s->dst_ref = g->dest.foreign.ref;
				s->dst_dom = g->dest.foreign.domid;
				s->dst_off = g->dest.foreign.offset;
			} else {
				s->dst_virt = (uintptr_t)g->dest.virt;
			}
			if (g->flags & ~(GNTCOPY_source_gref | GNTCOPY_dest_gref))
				s->flags = 0xffff;  /* unknown flags: xensimd refuses it */
		}
		req.count = n;
		pthread_mutex_lock(&h->lock);
		err = xsim_call(&h->conn, XSIM_GNT_COPY, &req, 8 + n * sizeof(req.s[0]), -1, st,
				sizeof(st), &rl, NULL, 0, NULL);
		pthread_mutex_unlock(&h->lock);
		if (!err && rl != n * sizeof(st[0]))
			err = -EPROTO;
		if (err)
			return fail(err);
		for (uint32_t i = 0; i < n; i++) {
			segs[done + i].status = st[i];
			if (st[i] == GNTST_okay && !(segs[done + i].flags & GNTCOPY_dest_gref))
				VALGRIND_MAKE_MEM_DEFINED(segs[done + i].dest.virt, segs[done + i].len);
		}
		done += n;
	}
	return 0;
}
