/* SPDX-License-Identifier: MIT */
/*
 * VHD driver: serves a chain of VHD files (fixed, dynamic, differencing)
 * whose leaf `params` names ("vhd:/path/leaf.vhd").  The vhd/ library keeps
 * the BATs and bitmaps in memory and says where each sector lives; the data
 * itself moves through the I/O engine, one operation per extent.
 *
 * A request is split into extents with pvio_vhd_chain_map (reads) or
 * pvio_vhd_write_prepare (writes, which allocates missing leaf blocks
 * crash-safely, synchronously on the loop thread: metadata work is rare
 * and short next to data I/O).  Each data extent becomes one engine
 * operation over the slice of the guest's iovec that covers it; extents
 * nothing in the chain holds are zero-filled in place.  When every piece
 * has completed (first error wins), a write's sectors are marked present
 * with pvio_vhd_write_commit and the request is completed.
 *
 * Parents are opened read-only by the library, so a write can only ever
 * reach the leaf.
 *
 * Discard (offered when the leaf's filesystem can punch holes) must read
 * back zeros and should give the space back.  The format cannot free a
 * block in the middle of the file (the BAT only ever grows), so the data
 * area of each discarded range is punched out of the leaf: the host gets
 * its space back and the sectors read as zeros.  Without parents that is
 * all (an unallocated block already reads as zeros).  With parents the
 * range must also hide what the parents hold: the leaf's blocks are
 * allocated as for a write, the range punched, and only then are its
 * sectors marked present — a crash before that shows the old data, never
 * anything else.  It runs synchronously on the loop, like all metadata.
 *
 * Data reads go through a second, O_DIRECT descriptor of each file (as the
 * raw driver's do), so the guest's reads cost what they cost on a raw
 * image and dom0's page cache does not fill with guest data.  Writes, data
 * and metadata alike, stay on the library's buffered descriptor: a bitmap
 * sector shares a page with the first data sectors of its block, and a
 * buffered read-modify-write of that page racing an O_DIRECT write of its
 * data could write stale data back over it.  Direct reads are coherent
 * with buffered writes (the kernel writes dirty pages back first).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "pvio/blkif_wire.h"
#include "pvio/vhd.h"
#include "tapdisk.h"

/* A request covers at most PVIO_BLKBACK_MAX_SEGMENTS pages (indirect
 * descriptors: 256, 1 MiB) of 8 sectors; one extent per sector is the
 * worst case, and a request's slices of the guest's buffers need at most
 * one entry per segment plus one per extent.  Extents are only looked at
 * inside vhd_submit, so one shared array holds the worst case; the slices
 * live until the I/O completes, so each slot has its own, sized for
 * VHD_SLOT_EXT extents: a (pathologically fragmented) request needing
 * more is moved synchronously through the shared sync_iov instead. */
#define VHD_MAX_SECT (PVIO_BLKBACK_MAX_SEGMENTS * PVIO_BLKIF_SECTORS_PER_PAGE)
#define VHD_MAX_EXT VHD_MAX_SECT
#define VHD_SLOT_EXT 64
#define VHD_SLOT_IOV (PVIO_BLKBACK_MAX_SEGMENTS + VHD_SLOT_EXT)
#define VHD_MAX_IOV (PVIO_BLKBACK_MAX_SEGMENTS + VHD_MAX_EXT)
/* Engine operations per request we size the engine for; a rare request
 * that needs more than the engine has free is served synchronously. */
#define VHD_OPS_PER_REQ 4

struct vhd_state;

/* Per-request scratch, one per ring slot and NBD slot, allocated at open. */
struct vreq {
	struct vhd_state *s;
	struct td_io *io;
	enum pvio_blkback_op op;
	uint64_t sector;
	uint32_t count;
	int pending;		/* pieces in flight, +1 while still queuing */
	int err;		/* first error */
	struct vreq *next_free;
	struct iovec iov[VHD_SLOT_IOV];
};

struct vhd_state {
	struct pvio_vhd_chain *chain;
	struct pvio_vhd *leaf;
	int *dfd;		/* per layer: O_DIRECT read descriptor, or -1 */
	unsigned depth;
	struct vreq *slots;
	unsigned nslots;
	struct vreq *free;
	struct pvio_vhd_extent ext[VHD_MAX_EXT]; /* vhd_submit's scratch */
	struct iovec sync_iov[VHD_MAX_IOV];	  /* slices of a request moved synchronously */
};

static void vreq_finish(struct vreq *r)
{
	struct vhd_state *s = r->s;
	struct td_io *io = r->io;
	struct pvio_vhd_err verr = { 0 };
	int err = r->err;

	/* The bitmap says "present" only once the data is on the file: a
	 * failed or interrupted write leaves the old contents visible. */
	if (!err && r->op == PVIO_BLKBACK_WRITE) {
		err = pvio_vhd_write_commit(s->leaf, r->sector, r->count, &verr);
		if (err)
			td_log(TD_ERR, "vhd: marking sectors %llu+%u present: %s",
			       (unsigned long long)r->sector, r->count, verr.msg);
	}
	r->io = NULL;
	r->next_free = s->free;
	s->free = r;
	io->done(io, err);
}

static void vreq_put(struct vreq *r, int res)
{
	if (res && !r->err)
		r->err = res;
	if (--r->pending == 0)
		vreq_finish(r);
}

static void vhd_io_done(void *tag, int res)
{
	vreq_put(tag, res);
}

/* The engine is full: move this piece on the loop thread instead. */
static int sync_piece(enum pvio_blkback_op op, int fd, uint64_t off, const struct iovec *iov,
		      int iovcnt, size_t len)
{
	ssize_t n = op == PVIO_BLKBACK_READ ? preadv(fd, iov, iovcnt, (off_t)off)
					    : pwritev(fd, iov, iovcnt, (off_t)off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Resolve the whole request into s->ext; returns the extent count or -errno. */
static int vreq_map(struct vreq *r)
{
	struct vhd_state *s = r->s;
	struct pvio_vhd_err verr = { 0 };
	uint32_t covered = 0;
	unsigned n = 0;

	while (covered < r->count) {
		unsigned k = 0;
		int64_t got;
		if (r->op == PVIO_BLKBACK_WRITE)
			got = pvio_vhd_write_prepare(s->leaf, r->sector + covered, r->count - covered,
						     s->ext + n, VHD_MAX_EXT - n, &k, &verr);
		else
			got = pvio_vhd_chain_map(s->chain, r->sector + covered, r->count - covered,
						 s->ext + n, VHD_MAX_EXT - n, &k, &verr);
		if (got < 0) {
			td_log(TD_ERR, "vhd: %s of sectors %llu+%u: %s",
			       r->op == PVIO_BLKBACK_WRITE ? "allocating for a write" : "mapping a read",
			       (unsigned long long)r->sector, r->count, verr.msg);
			return (int)got;
		}
		if (got == 0 || k == 0 || got > r->count - covered) {
			td_log(TD_ERR, "vhd: sectors %llu+%u: the library mapped nothing",
			       (unsigned long long)(r->sector + covered), r->count - covered);
			return -EIO;
		}
		n += k;
		covered += (uint32_t)got;
	}
	return (int)n;
}

static int punch(int fd, uint64_t off, uint64_t len)
{
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ? -errno : 0;
}

/* Discard [@sector, +@count) of the chain (see the comment at the top). */
static int vhd_discard(struct vhd_state *s, uint64_t sector, uint64_t count)
{
	struct pvio_vhd_err verr = { 0 };
	int fd = pvio_vhd_fd(s->leaf);

	while (count) {
		uint32_t want = count > VHD_MAX_SECT ? VHD_MAX_SECT : (uint32_t)count;
		int64_t got;
		int err = 0;

		if (s->depth == 1) { /* no parent: punch what the file holds */
			uint64_t data_off;
			got = pvio_vhd_own_run(s->leaf, sector, want, &data_off, &verr);
			if (got > 0 && data_off != UINT64_MAX)
				err = punch(fd, data_off, (uint64_t)got * PVIO_VHD_SECTOR);
		} else { /* hide the parents: allocate, punch, then mark present */
			unsigned k = 0;
			got = pvio_vhd_write_prepare(s->leaf, sector, want, s->ext, VHD_MAX_EXT, &k, &verr);
			for (unsigned e = 0; got > 0 && !err && e < k; e++)
				err = punch(s->ext[e].fd, s->ext[e].offset,
					    (uint64_t)s->ext[e].count * PVIO_VHD_SECTOR);
			if (got > 0 && !err) {
				err = pvio_vhd_write_commit(s->leaf, sector, (uint32_t)got, &verr);
				if (err)
					td_log(TD_ERR, "vhd: discard: marking sectors %llu+%lld present: %s",
					       (unsigned long long)sector, (long long)got, verr.msg);
			}
		}
		if (got <= 0) {
			td_log(TD_ERR, "vhd: discard of sectors %llu+%u: %s", (unsigned long long)sector,
			       want, got < 0 ? verr.msg : "the library mapped nothing");
			return got < 0 ? (int)got : -EIO;
		}
		if (err) {
			td_log(TD_ERR, "vhd: discard of sectors %llu+%lld: %s", (unsigned long long)sector,
			       (long long)got, strerror(-err));
			return err;
		}
		sector += (uint64_t)got;
		count -= (uint64_t)got;
	}
	return 0;
}

static int vhd_submit(struct td *td, struct td_io *io, enum pvio_blkback_op op,
		      uint64_t off, const struct iovec *iov, int iovcnt)
{
	struct vhd_state *s = td->img.priv;
	struct vreq *r = s->free;
	size_t len = 0;
	int n, gi = 0, err;
	size_t goff = 0; /* offset inside iov[gi] */

	if (!r) {
		td_log(TD_ERR, "vhd: more requests in flight than ring slots: refusing one");
		return -EBUSY;
	}
	if (op == PVIO_BLKBACK_DISCARD) {
		if (iovcnt != 1 || iov[0].iov_base || off % PVIO_VHD_SECTOR ||
		    iov[0].iov_len % PVIO_VHD_SECTOR || !td->img.can_discard)
			return -EINVAL;
		io->done(io, vhd_discard(s, off / PVIO_VHD_SECTOR, iov[0].iov_len / PVIO_VHD_SECTOR));
		return 0;
	}
	if (op == PVIO_BLKBACK_FLUSH) {
		/* prepare and commit write the leaf's metadata with pwrite; one
		 * fdatasync of the leaf covers them and every completed data
		 * write (parents are never written). */
		s->free = r->next_free;
		r->io = io;
		r->op = op;
		r->pending = 1;
		r->err = 0;
		err = td->eng_ops->queue(td->eng, op, pvio_vhd_fd(s->leaf), 0, NULL, 0, 0, r);
		if (err == -EBUSY)
			vreq_put(r, pvio_vhd_flush(s->leaf));
		else if (err)
			vreq_put(r, err);
		/* else it completes through vhd_io_done */
		return 0;
	}
	if (iovcnt < 0 || iovcnt > PVIO_BLKBACK_MAX_SEGMENTS)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (off % PVIO_VHD_SECTOR || len % PVIO_VHD_SECTOR || !len ||
	    len / PVIO_VHD_SECTOR > VHD_MAX_SECT)
		return -EINVAL;

	s->free = r->next_free;
	r->io = io;
	r->op = op;
	r->sector = off / PVIO_VHD_SECTOR;
	r->count = (uint32_t)(len / PVIO_VHD_SECTOR);
	r->err = 0;
	r->pending = 1;
	n = vreq_map(r);
	if (n < 0) {
		r->io = NULL;
		r->next_free = s->free;
		s->free = r;
		return n;
	}

	/* Each extent boundary splits at most one segment: iovcnt + n slices. */
	bool sync = iovcnt + n > VHD_SLOT_IOV;
	struct iovec *slice = sync ? s->sync_iov : r->iov;
	for (int e = 0; e < n; e++) {
		const struct pvio_vhd_extent *x = &s->ext[e];
		size_t want = (size_t)x->count * PVIO_VHD_SECTOR, got = 0;
		struct iovec *first = slice;

		/* The slice of the guest's buffers this extent covers. */
		while (got < want && gi < iovcnt) {
			size_t take = iov[gi].iov_len - goff;
			if (take > want - got)
				take = want - got;
			slice->iov_base = (char *)iov[gi].iov_base + goff;
			slice->iov_len = take;
			slice++;
			got += take;
			goff += take;
			if (goff == iov[gi].iov_len) {
				gi++;
				goff = 0;
			}
		}
		if (got != want) { /* the extents cover exactly the request */
			r->err = r->err ? r->err : -EIO;
			break;
		}
		int cnt = (int)(slice - first);
		if (x->layer < 0) {
			for (int i = 0; i < cnt; i++)
				memset(first[i].iov_base, 0, first[i].iov_len);
			continue;
		}
		int fd = x->fd;
		if (op == PVIO_BLKBACK_READ && (unsigned)x->layer < s->depth && s->dfd[x->layer] >= 0)
			fd = s->dfd[x->layer];
		r->pending++;
		err = sync ? -EBUSY : td->eng_ops->queue(td->eng, op, fd, x->offset, first, cnt, want, r);
		if (err == -EBUSY) /* engine full, or slices not kept: done right here */
			vreq_put(r, sync_piece(op, fd, x->offset, first, cnt, want));
		else if (err)
			vreq_put(r, err);
	}
	vreq_put(r, 0); /* drop the queuing reference: may complete now */
	return 0;
}

/* Allocation for NBD block status: what the chain holds (any layer) is
 * data; what no layer holds reads as zeros. */
static int vhd_extent(struct td_image *img, uint64_t off, uint64_t len, uint64_t *run, int *hole)
{
	struct vhd_state *s = img->priv;
	struct pvio_vhd_extent ext[16];
	struct pvio_vhd_err verr = { 0 };
	uint64_t end = off + len, done = off / PVIO_VHD_SECTOR;
	uint64_t last = (end + PVIO_VHD_SECTOR - 1) / PVIO_VHD_SECTOR;
	int kind = -1;

	/* A run of one kind may span many extents (blocks, layers): keep
	 * mapping until the kind changes or the range ends. */
	while (done < last) {
		uint64_t want = last - done;
		unsigned n = 0;
		int64_t got = pvio_vhd_chain_map(s->chain, done,
						 want > (1u << 30) ? (1u << 30) : (uint32_t)want,
						 ext, 16, &n, &verr);
		if (got <= 0 || n == 0) {
			td_log(TD_ERR, "vhd: block status of sectors %llu+%llu: %s",
			       (unsigned long long)done, (unsigned long long)want,
			       got < 0 ? verr.msg : "the library mapped nothing");
			return got < 0 ? (int)got : -EIO;
		}
		for (unsigned i = 0; i < n; i++) {
			int h = ext[i].layer < 0;
			if (kind < 0)
				kind = h;
			if (h != kind)
				goto out;
			done = ext[i].sector + ext[i].count;
		}
	}
out:
	*hole = kind;
	*run = (done * PVIO_VHD_SECTOR < end ? done * PVIO_VHD_SECTOR : end) - off;
	return 0;
}

static int vhd_open(const char *path, int readonly, struct td_image *img)
{
	struct pvio_vhd_err verr = { 0 };
	struct vhd_state *s;
	int err;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	snprintf(img->path, sizeof(img->path), "%s", path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	err = pvio_vhd_chain_open(path, readonly ? 0 : PVIO_VHD_RDWR, &s->chain, &verr);
	if (err) {
		td_log(TD_ERR, "cannot open VHD chain %s%s: %s", path, readonly ? " read-only" : "",
		       verr.msg[0] ? verr.msg : strerror(-err));
		free(s);
		return err;
	}
	s->leaf = pvio_vhd_chain_layer(s->chain, 0);
	s->nslots = pvio_ring_blkif_nr_ents(PVIO_RING_BYTES(PVIO_RING_MAX_ORDER)) + TD_NBD_SLOTS;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	if (!s->slots) {
		pvio_vhd_chain_close(s->chain);
		free(s);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->nslots; i++) {
		s->slots[i].s = s;
		s->slots[i].next_free = s->free;
		s->free = &s->slots[i];
	}
	s->depth = pvio_vhd_chain_depth(s->chain);
	s->dfd = malloc(s->depth * sizeof(*s->dfd));
	if (!s->dfd) {
		pvio_vhd_chain_close(s->chain);
		free(s->slots);
		free(s);
		return -ENOMEM;
	}
	unsigned ndirect = 0;
	for (unsigned i = 0; i < s->depth; i++) {
		const char *lp = pvio_vhd_path(pvio_vhd_chain_layer(s->chain, i));
		s->dfd[i] = open(lp, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (s->dfd[i] >= 0 && td_dio_align(s->dfd[i]) > 512) {
			close(s->dfd[i]);
			s->dfd[i] = -1;
		}
		ndirect += s->dfd[i] >= 0;
	}
	img->direct = ndirect == s->depth;
	img->fd = pvio_vhd_fd(s->leaf);
	/* Discard = punch holes in the leaf: probe past its end, where a
	 * KEEP_SIZE punch changes nothing but tells whether it works. */
	struct stat st;
	img->can_discard = !readonly && fstat(img->fd, &st) == 0 && S_ISREG(st.st_mode) &&
			   fallocate(img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size, 4096) == 0;
	img->size = pvio_vhd_chain_sectors(s->chain) * PVIO_VHD_SECTOR;
	img->phys_sector = 512;
	img->readonly = readonly;
	img->ops_per_req = VHD_OPS_PER_REQ;
	img->max_io = VHD_MAX_SECT * PVIO_VHD_SECTOR;
	img->priv = s;
	td_log(TD_INFO, "vhd chain %s: %llu bytes, %u file(s), %s, %s reads, discard %s", path,
	       (unsigned long long)img->size, pvio_vhd_chain_depth(s->chain),
	       readonly ? "read-only" : "read-write (leaf only; parents read-only)",
	       ndirect == s->depth ? "direct" : ndirect ? "partly direct" : "buffered",
	       img->can_discard ? "by punching holes" : "off");
	for (unsigned i = 1; i < pvio_vhd_chain_depth(s->chain); i++)
		td_log(TD_INFO, "  parent %u: %s", i, pvio_vhd_path(pvio_vhd_chain_layer(s->chain, i)));
	return 0;
}

static void vhd_close(struct td_image *img)
{
	struct vhd_state *s = img->priv;

	if (!s)
		return;
	for (unsigned i = 0; i < s->depth; i++)
		if (s->dfd[i] >= 0)
			close(s->dfd[i]);
	free(s->dfd);
	pvio_vhd_chain_close(s->chain);
	free(s->slots);
	free(s);
	img->priv = NULL;
	img->fd = -1;
}

const struct td_driver_ops td_driver_vhd = {
	.name = "vhd",
	.open = vhd_open,
	.close = vhd_close,
	.submit = vhd_submit,
	.io_done = vhd_io_done,
	.extent = vhd_extent,
};
