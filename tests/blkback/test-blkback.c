/* SPDX-License-Identifier: MIT */
/*
 * A hostile blkif frontend against a real tapdisk.
 *
 * This one process is both the toolstack (dom0 xenstore connection: it
 * writes the backend and frontend dirs, starts tapdisk with `xensim run 0`)
 * and the guest (a domU xenstore connection, the domain's RAM and grant
 * table, an event-channel handle): it does the vbd handshake by hand and
 * puts raw pvio_blkif_requests on the ring, good and bad, checking every
 * response and the image file behind it.
 *
 * Usage: test-blkback [--engine io_uring|libaio] [--quick]
 * Needs XENSIM, TAPDISK, TAPCTL (paths of the built programs).
 * Every wait is on an event (xenstore watch, event channel, pidfd) with a
 * deadline that only turns a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <xenstore.h>

#include "xstest.h"

#include "pvio/blkif_wire.h"
#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/ring.h"
#include "pvio/xensim.h"

#define TMO 10000 /* ms: a deadline, never a synchronisation */
#define IMG_SECTORS 16384ull /* 8 MiB */
#define NDATA 24 /* data pages the guest owns */
#define NBIG 257 /* pages for indirect requests (one more than the limit) */

static int failures, checks;
static const char *xensim_bin, *tapdisk_bin, *tapctl_bin;
static char dir[64], ctl_dir[128];
static uint32_t dom;
static struct xs_handle *xs0, *xsg;
static struct xsim_domain *gd;
static struct pvio_evtchn *gev;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		checks++;                                                             \
		if (!(cond)) {                                                        \
			failures++;                                                   \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, "\n");                                        \
		}                                                                     \
	} while (0)

/* ---- xenstore helpers ---------------------------------------------------- */

static int wait_state(struct xs_handle *xs, const char *path, unsigned want)
{
	return xst_wait_state(xs, path, want, TMO);
}

/* ---- the VBD and its tapdisk ---------------------------------------------- */

struct vbd {
	uint32_t devid;
	char be[128], fe[128];
	char image[192], log[192], sock[256];
	int readonly;
	pid_t pid;
	int pidfd;
	int img_fd;
};

static void mkperm(struct xs_handle *xs, const char *path, uint32_t owner, uint32_t reader)
{
	struct xs_permissions p[2] = {
		{ .id = owner, .perms = XS_PERM_NONE },
		{ .id = reader, .perms = XS_PERM_READ },
	};
	if (!xs_set_permissions(xs, XBT_NULL, path, p, 2))
		xst_die("xs_set_permissions %s: %s", path, strerror(errno));
}

/* Write B and F as docs/block-path.md says `xensim vbd attach` does. */
static void vbd_create(struct vbd *v, uint32_t devid, int readonly, const char *vdev)
{
	char p[256];

	memset(v, 0, sizeof(*v));
	v->devid = devid;
	v->readonly = readonly;
	v->pid = -1;
	v->pidfd = -1;
	snprintf(v->be, sizeof(v->be), "/local/domain/0/backend/vbd3/%u/%u", dom, devid);
	snprintf(v->fe, sizeof(v->fe), "/local/domain/%u/device/vbd/%u", dom, devid);
	snprintf(v->image, sizeof(v->image), "%s/disk-%u.img", dir, devid);
	snprintf(v->log, sizeof(v->log), "%s/tapdisk-%u.log", dir, devid);
	snprintf(v->sock, sizeof(v->sock), "%s/tapdisk-%u-%u.sock", ctl_dir, dom, devid);
	v->img_fd = open(v->image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (v->img_fd < 0 || ftruncate(v->img_fd, (off_t)(IMG_SECTORS * 512)) < 0)
		xst_die("image %s: %s", v->image, strerror(errno));
	/* recognisable initial contents */
	static uint8_t buf[1 << 16];
	for (uint64_t off = 0; off < IMG_SECTORS * 512; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)((off + i) * 131 >> 9 ^ (off + i));
		if (pwrite(v->img_fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf))
			xst_die("pwrite image");
	}
	/* parents first, with libxl's permissions, so every key inherits them */
	if (!xs_mkdir(xs0, XBT_NULL, v->be) || !xs_mkdir(xs0, XBT_NULL, v->fe))
		xst_die("xs_mkdir");
	mkperm(xs0, v->be, 0, dom);
	mkperm(xs0, v->fe, dom, 0);
#define B(k, ...) (snprintf(p, sizeof(p), "%s/%s", v->be, k), xst_write(xs0, p, __VA_ARGS__))
#define F(k, ...) (snprintf(p, sizeof(p), "%s/%s", v->fe, k), xst_write(xs0, p, __VA_ARGS__))
	B("frontend", "%s", v->fe);
	B("frontend-id", "%u", dom);
	B("online", "1");
	B("state", "1");
	B("params", "aio:%s", v->image);
	B("mode", "%s", readonly ? "r" : "w");
	B("dev", "%s", vdev);
	B("type", "phy");
	B("device-type", "disk");
	B("removable", "0");
	B("bootable", "1");
	B("discard-enable", "0");
	F("backend", "%s", v->be);
	F("backend-id", "0");
	F("state", "1");
	F("virtual-device", "%u", devid);
	F("device-type", "disk");
	F("trusted", "1");
#undef B
#undef F
}

/* every tapdisk we started, so a failing run never leaves one behind */
static pid_t children[16];
static int nchildren;

/* Start tapdisk for @v; @extra: more options (NULL-terminated), or NULL. */
static void tapdisk_start_args(struct vbd *v, const char *engine, const char *const *extra)
{
	v->pid = fork();
	if (v->pid < 0)
		xst_die("fork");
	if (v->pid == 0) {
		const char *argv[32] = { "xensim", "run", "0", "--", tapdisk_bin, "--backend", v->be,
					 "--engine", engine, "--log", v->log };
		int n = 11;
		/* stdout/stderr must not keep the test's pipes open */
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		for (int i = 0; extra && extra[i] && n < 31; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		execv(xensim_bin, (char *const *)argv);
		_exit(127);
	}
	if (nchildren < 16)
		children[nchildren++] = v->pid;
	v->pidfd = (int)syscall(SYS_pidfd_open, v->pid, 0);
	if (v->pidfd < 0)
		xst_die("pidfd_open: %s", strerror(errno));
}

static void tapdisk_start(struct vbd *v, const char *engine)
{
	tapdisk_start_args(v, engine, NULL);
}

/* Wait for tapdisk to exit; returns its exit status, -1 at the deadline. */
static int tapdisk_wait(struct vbd *v, int timeout_ms)
{
	struct pollfd p = { .fd = v->pidfd, .events = POLLIN };
	int st;

	if (v->pid < 0)
		return -2;
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	if (waitpid(v->pid, &st, 0) != v->pid)
		return -1;
	close(v->pidfd);
	v->pid = -1;
	v->pidfd = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int tapdisk_alive(struct vbd *v)
{
	struct pollfd p = { .fd = v->pidfd, .events = POLLIN };
	return v->pid > 0 && poll(&p, 1, 0) == 0;
}

static int log_has(struct vbd *v, const char *s)
{
	static char buf[1 << 20];
	int fd = open(v->log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, s) != NULL;
}

/* ---- the guest's frontend --------------------------------------------------- */

struct page {
	void *va;
	uint64_t gfn;
	grant_ref_t ref;
};

struct fe {
	struct vbd *v;
	unsigned order;
	void *ring_va;
	uint64_t ring_gfn;
	grant_ref_t rrefs[16];
	int port;
	struct pvio_ring_front fr;
	struct page data[NDATA];
	struct page ro;			/* granted read-only */
	grant_ref_t ungranted;		/* allocated, never granted */
	struct page foreign;		/* granted to another domain */
	unsigned long events;
	/* indirect requests: data pages and descriptor pages (fe_big_pages) */
	struct page big[NBIG];
	struct page ind[2];
	int have_big;
};

static void on_evt(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(*(unsigned long *)arg)++;
}

static void page_grant(struct page *pg, domid_t to, int ro)
{
	if (xsim_pages_alloc(gd, 1, &pg->va, &pg->gfn))
		xst_die("xsim_pages_alloc");
	if (pvio_gnt_alloc_refs(gd, 1, &pg->ref) || pvio_gnt_grant_access(gd, pg->ref, to, pg->gfn, ro))
		xst_die("grant");
}

static void fe_pages(struct fe *f)
{
	for (int i = 0; i < NDATA; i++)
		page_grant(&f->data[i], 0, 0);
	page_grant(&f->ro, 0, 1);
	page_grant(&f->foreign, (domid_t)(dom + 7), 0);
	if (pvio_gnt_alloc_refs(gd, 1, &f->ungranted))
		xst_die("alloc ref");
}

static void fe_big_pages(struct fe *f)
{
	if (f->have_big)
		return;
	for (int i = 0; i < NBIG; i++)
		page_grant(&f->big[i], 0, 0);
	for (int i = 0; i < 2; i++)
		page_grant(&f->ind[i], 0, 0);
	f->have_big = 1;
}

static void fpath(struct fe *f, char *p, size_t n, const char *k)
{
	snprintf(p, n, "%s/%s", f->v->fe, k);
}

/* Publish a fresh ring; keys written as given by @bad (NULL: correct). */
static void fe_ring_new(struct fe *f, unsigned order)
{
	f->order = order;
	if (xsim_pages_alloc(gd, 1u << order, &f->ring_va, &f->ring_gfn))
		xst_die("ring pages");
	pvio_ring_sring_init(f->ring_va);
	if (pvio_gnt_alloc_refs(gd, 1u << order, f->rrefs))
		xst_die("ring refs");
	for (unsigned i = 0; i < 1u << order; i++)
		if (pvio_gnt_grant_access(gd, f->rrefs[i], 0, f->ring_gfn + i, 0))
			xst_die("grant ring");
	f->port = pvio_evtchn_alloc_unbound(gev, 0, on_evt, &f->events);
	if (f->port < 0)
		xst_die("alloc_unbound");
	if (pvio_ring_blkif_front_init(&f->fr, f->ring_va, PVIO_RING_BYTES(order)) <= 0)
		xst_die("front_init");
}

/* Tear the ring down; the backend must have unmapped it (end access
 * fails with -EBUSY while mapped). Returns 0 if every grant ended. */
static int fe_ring_free(struct fe *f)
{
	int bad = 0;

	for (unsigned i = 0; i < 1u << f->order; i++)
		if (pvio_gnt_end_access(gd, f->rrefs[i]))
			bad++;
	if (bad)
		return -EBUSY;
	pvio_gnt_free_refs(gd, 1u << f->order, f->rrefs);
	pvio_evtchn_unbind(gev, (evtchn_port_t)f->port);
	xsim_pages_free(gd, f->ring_va, 1u << f->order);
	f->ring_va = NULL;
	return 0;
}

static void fe_write_keys(struct fe *f, const char *proto)
{
	char p[256], k[32];

	fpath(f, p, sizeof(p), "ring-page-order");
	if (f->order)
		xst_write(xsg, p, "%u", f->order);
	else
		xs_rm(xsg, XBT_NULL, p);
	for (unsigned i = 0; i < 1u << f->order; i++) {
		if (f->order)
			snprintf(k, sizeof(k), "ring-ref%u", i);
		else
			snprintf(k, sizeof(k), "ring-ref");
		fpath(f, p, sizeof(p), k);
		xst_write(xsg, p, "%u", f->rrefs[i]);
	}
	fpath(f, p, sizeof(p), "event-channel");
	xst_write(xsg, p, "%d", f->port);
	fpath(f, p, sizeof(p), "protocol");
	if (proto)
		xst_write(xsg, p, "%s", proto);
	else
		xs_rm(xsg, XBT_NULL, p);
}

static void fe_state(struct fe *f, int st)
{
	char p[256];
	fpath(f, p, sizeof(p), "state");
	xst_write(xsg, p, "%d", st);
}

static int be_state_wait(struct fe *f, unsigned want)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/state", f->v->be);
	return wait_state(xsg, p, want);
}

/* Full handshake; returns the backend's final state (4 on success). */
static int fe_connect(struct fe *f, unsigned order, const char *proto)
{
	if (be_state_wait(f, 1u << 2) != 2)
		return -1;
	fe_ring_new(f, order);
	fe_write_keys(f, proto);
	fe_state(f, 3);
	int st = be_state_wait(f, 1u << 4 | 1u << 5 | 1u << 6);
	if (st == 4)
		fe_state(f, 4);
	return st;
}

/* Put @n requests, push, notify if asked. */
static void fe_send(struct fe *f, const struct pvio_blkif_request *rq, int n)
{
	for (int i = 0; i < n; i++)
		if (pvio_ring_blkif_put_request(&f->fr, &rq[i]))
			xst_die("put_request");
	if (pvio_ring_front_push_requests(&f->fr))
		pvio_evtchn_notify(gev, (evtchn_port_t)f->port);
}

/* Collect @n responses (any order) within @tmo ms; returns how many came. */
static int fe_collect(struct fe *f, struct pvio_blkif_response *rs, int n, int tmo)
{
	long long end = xst_now_ms() + tmo;
	int got = 0;

	while (got < n) {
		int r = pvio_ring_front_poll_responses(&f->fr);
		if (r == 0)
			r = pvio_ring_front_final_check(&f->fr);
		if (r < 0)
			xst_die("backend broke the response ring");
		if (r > 0) {
			while (got < n && pvio_ring_blkif_copy_response(&f->fr, &rs[got]) == 1)
				got++;
			continue;
		}
		long long left = end - xst_now_ms();
		if (left <= 0)
			break;
		pvio_evtchn_wait(gev, (int)left);
	}
	return got;
}

static struct pvio_blkif_response fe_do(struct fe *f, const struct pvio_blkif_request *rq)
{
	struct pvio_blkif_response rs;

	memset(&rs, 0xee, sizeof(rs));
	fe_send(f, rq, 1);
	if (fe_collect(f, &rs, 1, TMO) != 1) {
		CHECK(0, "no response to id %" PRIu64 " op %u", rq->id, rq->operation);
		rs.status = 99;
	}
	return rs;
}

static uint64_t next_id = 1000;
/* what the harness expects tapdisk's stats to have counted */
static unsigned long good_reads, exp_invalid, exp_unsupported;

static struct pvio_blkif_request mkreq(uint8_t op, uint64_t sector, int nseg, const struct page *pages,
				       uint8_t first, uint8_t last)
{
	struct pvio_blkif_request r;

	memset(&r, 0, sizeof(r));
	r.operation = op;
	r.nr_segments = (uint8_t)nseg;
	r.handle = 0;
	r.id = next_id++;
	r.sector_number = sector;
	for (int i = 0; i < nseg && i < PVIO_BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
		r.seg[i].gref = pages[i % NDATA].ref;
		r.seg[i].first_sect = first;
		r.seg[i].last_sect = last;
	}
	return r;
}

/*
 * An indirect request: header on the ring, @nseg descriptors (segment i:
 * pages[i], sectors first..last) written into the descriptor page @ind
 * (and the next one past 512 segments).
 */
static struct pvio_blkif_request mkind(uint8_t iop, uint64_t sector, unsigned nseg, const struct page *ind,
				       const struct page *pages, uint8_t first, uint8_t last)
{
	struct pvio_blkif_request_indirect in;
	struct pvio_blkif_request r;
	unsigned per = PVIO_BLKIF_SEGS_PER_INDIRECT_FRAME;

	memset(&in, 0, sizeof(in));
	in.operation = PVIO_BLKIF_OP_INDIRECT;
	in.indirect_op = iop;
	in.nr_segments = (uint16_t)nseg;
	in.id = next_id++;
	in.sector_number = sector;
	for (unsigned i = 0; i < nseg && i < 2 * per; i++) {
		struct pvio_blkif_request_segment *d = ind[i / per].va;
		d[i % per].gref = pages[i % NBIG].ref;
		d[i % per].first_sect = first;
		d[i % per].last_sect = last;
		d[i % per]._pad[0] = d[i % per]._pad[1] = 0;
	}
	for (unsigned k = 0; k * per < nseg && k < PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; k++)
		in.indirect_grefs[k] = ind[k < 2 ? k : 1].ref;
	memset(&r, 0, sizeof(r));
	memcpy(&r, &in, sizeof(in));
	return r;
}

static uint8_t pat(uint32_t seed, uint32_t i)
{
	uint32_t x = seed * 2654435761u + i * 40503u;
	return (uint8_t)(x ^ (x >> 13) ^ (x >> 24));
}

/* A good read of sector 0..7 into data[0]: proves the ring still serves. */
static void check_still_serving(struct fe *f, const char *after)
{
	struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_READ, 8, 1, f->data, 0, 7);
	struct pvio_blkif_response rs = fe_do(f, &rq);
	good_reads++;
	CHECK(rs.id == rq.id && rs.status == PVIO_BLKIF_RSP_OKAY,
	      "good read after %s: id %" PRIu64 "/%" PRIu64 " status %d", after, rs.id, rq.id, rs.status);
}

/* The operation a response must echo: indirect_op for an indirect
 * request (as Linux blkback does and Linux blkfront checks). */
static uint8_t rsp_op_of(const struct pvio_blkif_request *rq)
{
	return rq->operation == PVIO_BLKIF_OP_INDIRECT ? rq->nr_segments /* indirect_op */
						       : rq->operation;
}

static void expect_status(struct fe *f, struct pvio_blkif_request rq, int status, const char *what)
{
	struct pvio_blkif_response rs = fe_do(f, &rq);
	if (status == PVIO_BLKIF_RSP_EOPNOTSUPP)
		exp_unsupported++;
	else if (status == PVIO_BLKIF_RSP_ERROR)
		exp_invalid++;
	CHECK(rs.id == rq.id && rs.status == status && rs.operation == rsp_op_of(&rq) &&
	      rs._pad1 == 0 && rs._pad2 == 0,
	      "%s: id %" PRIu64 " (want %" PRIu64 ") status %d (want %d) op %u (want %u) pads %u/%u",
	      what, rs.id, rq.id, rs.status, status, rs.operation, rsp_op_of(&rq), rs._pad1, rs._pad2);
	check_still_serving(f, what);
}

/* ---- tests -------------------------------------------------------------------- */

struct counts {
	unsigned long reads, writes, flushes;
};

/* Random reads and writes, up to 8 in flight, every byte verified against
 * the image file. */
static void good_path(struct fe *f, struct counts *c, int rounds, unsigned seed)
{
	struct vbd *v = f->v;

	srand(seed);
	for (int round = 0; round < rounds; round++) {
		struct pvio_blkif_request rq[8];
		struct pvio_blkif_response rs[8];
		int n = 1 + rand() % 8, pg = 0;
		struct { uint64_t sector; int nseg, first, last, page0, write; uint32_t seed; } d[8];

		/* non-overlapping disk ranges: each request gets its own 64-sector zone */
		for (int i = 0; i < n; i++) {
			int nseg = 1 + rand() % 3;
			if (pg + nseg > NDATA)
				nseg = 1;
			int first = rand() % 8, last = first + rand() % (8 - first);
			d[i].nseg = nseg;
			d[i].first = first;
			d[i].last = last;
			d[i].page0 = pg;
			d[i].write = rand() % 2;
			d[i].seed = (uint32_t)rand();
			d[i].sector = (uint64_t)(rand() % (int)(IMG_SECTORS / 64 / 8)) * 64 * 8 + (uint64_t)i * 64;
			if (d[i].write)
				for (int s = 0; s < nseg; s++)
					for (uint32_t b = 0; b < 4096; b++)
						((uint8_t *)f->data[pg + s].va)[b] = pat(d[i].seed, (uint32_t)s * 4096 + b);
			else
				for (int s = 0; s < nseg; s++)
					memset(f->data[pg + s].va, 0x5a, 4096);
			rq[i] = mkreq(d[i].write ? PVIO_BLKIF_OP_WRITE : PVIO_BLKIF_OP_READ, d[i].sector, nseg,
				      &f->data[pg], (uint8_t)first, (uint8_t)last);
			pg += nseg;
		}
		fe_send(f, rq, n);
		int got = fe_collect(f, rs, n, TMO);
		CHECK(got == n, "round %d: %d of %d responses", round, got, n);
		for (int k = 0; k < got; k++) {
			int i = -1;
			for (int j = 0; j < n; j++)
				if (rq[j].id == rs[k].id)
					i = j;
			CHECK(i >= 0 && rs[k].status == 0, "round %d: response id %" PRIu64 " status %d", round,
			      rs[k].id, rs[k].status);
			if (i < 0 || rs[k].status)
				continue;
			int secs = d[i].last - d[i].first + 1;
			uint8_t buf[4096];
			for (int s = 0; s < d[i].nseg; s++) {
				off_t off = (off_t)((d[i].sector + (uint64_t)(s * secs)) * 512);
				size_t len = (size_t)secs * 512;
				const uint8_t *mem = (const uint8_t *)f->data[d[i].page0 + s].va + d[i].first * 512;
				if (pread(v->img_fd, buf, len, off) != (ssize_t)len)
					xst_die("pread");
				CHECK(!memcmp(buf, mem, len), "round %d req %d seg %d: %s data differs from the image",
				      round, i, s, d[i].write ? "written" : "read");
				if (d[i].write) {
					/* and the sectors outside first..last were not sent */
					CHECK(mem[0] == pat(d[i].seed, (uint32_t)s * 4096 + d[i].first * 512u),
					      "pattern");
				}
			}
			if (d[i].write)
				c->writes++;
			else
				c->reads++;
		}
	}
}

static void test_flush(struct fe *f, struct counts *c)
{
	struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_FLUSH_DISKCACHE, 0, 0, f->data, 0, 0);
	struct pvio_blkif_response rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0, "flush: status %d", rs.status);
	c->flushes++;
	/* flush carrying data (Linux blkfront's FUA/preflush writes) */
	memset(f->data[0].va, 0xa7, 4096);
	rq = mkreq(PVIO_BLKIF_OP_FLUSH_DISKCACHE, 4000, 1, f->data, 0, 7);
	rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0, "flush with data: status %d", rs.status);
	uint8_t buf[4096];
	CHECK(pread(f->v->img_fd, buf, 4096, 4000 * 512) == 4096 && buf[0] == 0xa7 && buf[4095] == 0xa7,
	      "flush with data: data not in the image");
	c->flushes++;
}

static void test_malformed(struct fe *f)
{
	struct pvio_blkif_request rq;
	struct page pg[1];

	expect_status(f, mkreq(99, 0, 1, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR, "unknown op 99");
	expect_status(f, mkreq(PVIO_BLKIF_OP_RESERVED_1, 0, 1, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "reserved op 4");
	rq = mkreq(PVIO_BLKIF_OP_WRITE_BARRIER, 0, 11, f->data, 0, 7);
	rq.nr_segments = 12; /* refused: the queue must not stay blocked behind it */
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "barrier, 12 segments");
	expect_status(f, mkreq(PVIO_BLKIF_OP_WRITE_BARRIER, 0, 1, f->data, 5, 4), PVIO_BLKIF_RSP_ERROR,
		      "barrier, first > last");
	expect_status(f, mkreq(PVIO_BLKIF_OP_DISCARD, 0, 0, f->data, 0, 0), PVIO_BLKIF_RSP_EOPNOTSUPP,
		      "discard (not advertised)");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 0, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR, "read, 0 segments");
	expect_status(f, mkreq(PVIO_BLKIF_OP_WRITE, 0, 0, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR, "write, 0 segments");
	rq = mkreq(PVIO_BLKIF_OP_READ, 0, 11, f->data, 0, 7);
	rq.nr_segments = 12; /* the 12th descriptor would lie past seg[] */
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "12 segments");
	rq.nr_segments = 255;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "255 segments");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 1, f->data, 5, 4), PVIO_BLKIF_RSP_ERROR, "first > last");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 1, f->data, 0, 8), PVIO_BLKIF_RSP_ERROR, "last_sect 8");
	expect_status(f, mkreq(PVIO_BLKIF_OP_WRITE, 0, 1, f->data, 8, 8), PVIO_BLKIF_RSP_ERROR, "first 8 last 8");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, IMG_SECTORS - 1, 1, f->data, 0, 1), PVIO_BLKIF_RSP_ERROR,
		      "range past the disk end");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, IMG_SECTORS, 1, f->data, 0, 0), PVIO_BLKIF_RSP_ERROR,
		      "start at the disk end");
	expect_status(f, mkreq(PVIO_BLKIF_OP_WRITE, UINT64_MAX - 3, 1, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "sector wrap");
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, UINT64_MAX / 512, 1, f->data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "byte offset overflow");
	pg[0].ref = f->ungranted;
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 1, pg, 0, 7), PVIO_BLKIF_RSP_ERROR, "ungranted gref");
	pg[0].ref = f->foreign.ref;
	expect_status(f, mkreq(PVIO_BLKIF_OP_WRITE, 0, 1, pg, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "gref granted to another domain");
	pg[0].ref = 0x7fffffff;
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 1, pg, 0, 7), PVIO_BLKIF_RSP_ERROR, "gref beyond the table");
	/* one bad ref among good ones: the whole request fails, nothing stays mapped */
	rq = mkreq(PVIO_BLKIF_OP_READ, 0, 4, f->data, 0, 7);
	rq.seg[2].gref = f->ungranted;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "one ungranted gref of four");
	pg[0] = f->ro;
	memset(f->ro.va, 0x11, 4096);
	expect_status(f, mkreq(PVIO_BLKIF_OP_READ, 0, 1, pg, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "read into a read-only grant");
	CHECK(((uint8_t *)f->ro.va)[0] == 0x11 && ((uint8_t *)f->ro.va)[4095] == 0x11,
	      "read-only granted page was written");
	/* A read-only grant is fine as the source of a write. */
	rq = mkreq(PVIO_BLKIF_OP_WRITE, 16, 1, pg, 0, 7);
	struct pvio_blkif_response rs = fe_do(f, &rq);
	CHECK(rs.status == 0, "write from a read-only grant: status %d", rs.status);
	/* every segment page of the bad requests is unmapped: grants end */
	for (int i = 0; i < 4; i++) {
		CHECK(pvio_gnt_end_access(gd, f->data[i].ref) == 0, "data page %d still mapped", i);
		pvio_gnt_grant_access(gd, f->data[i].ref, 0, f->data[i].gfn, 0);
	}
}

static int tapctl(struct vbd *v, const char *cmd, char *out, size_t len)
{
	char c[1024];
	FILE *p;
	size_t n;

	snprintf(c, sizeof(c), "'%s' --ctl-dir '%s' %s %u %u", tapctl_bin, ctl_dir, cmd, dom, v->devid);
	p = popen(c, "r");
	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	return pclose(p);
}

/* tapctl stats, parsed by python3's json module. */
static int stats(struct vbd *v, unsigned long *r, unsigned long *w, unsigned long *fl, unsigned long *inv,
		 unsigned long *uns, unsigned long *infl, char *paused, size_t plen)
{
	char c[1024], out[512];
	FILE *p;

	snprintf(c, sizeof(c),
		 "'%s' --ctl-dir '%s' stats %u %u | python3 -c 'import json,sys; d=json.load(sys.stdin); "
		 "print(d[\"requests\"][\"read\"], d[\"requests\"][\"write\"], d[\"requests\"][\"flush\"], "
		 "d[\"errors\"][\"invalid\"], d[\"errors\"][\"unsupported\"], d[\"in_flight\"], "
		 "str(d[\"paused\"]).lower(), sum(d[\"latency_us\"][\"counts\"]))'",
		 tapctl_bin, ctl_dir, dom, v->devid);
	p = popen(c, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	if (pclose(p) != 0)
		return -1;
	unsigned long lat;
	char ps[16];
	if (sscanf(out, "%lu %lu %lu %lu %lu %lu %15s %lu", r, w, fl, inv, uns, infl, ps, &lat) != 8)
		return -1;
	snprintf(paused, plen, "%s", ps);
	return lat == *r + *w + *fl ? 0 : -2;
}

static void test_pause(struct fe *f)
{
	char out[512];
	struct pvio_blkif_response rs;

	CHECK(tapctl(f->v, "pause", out, sizeof(out)) == 0 && strstr(out, "\"paused\":true"), "pause: %s", out);
	struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_READ, 0, 1, f->data, 0, 7);
	fe_send(f, &rq, 1);
	/* A negative check: nothing may come while paused.  The bounded wait
	 * is the claim itself, not synchronisation. */
	CHECK(fe_collect(f, &rs, 1, 300) == 0, "paused tapdisk answered");
	unsigned long r, w, fl, inv, uns, infl;
	char paused[16];
	CHECK(stats(f->v, &r, &w, &fl, &inv, &uns, &infl, paused, sizeof(paused)) == 0 &&
	      !strcmp(paused, "true"), "stats while paused: paused=%s", paused);
	CHECK(tapctl(f->v, "unpause", out, sizeof(out)) == 0 && strstr(out, "\"paused\":false"), "unpause: %s", out);
	CHECK(fe_collect(f, &rs, 1, TMO) == 1 && rs.id == rq.id && rs.status == 0,
	      "request queued while paused was not served after unpause");
}

/* Bad xenstore keys: refused (backend Closing, logged), tapdisk alive;
 * the frontend re-initialises and the next attempt is judged afresh. */
static void test_bad_keys(struct fe *f)
{
	static const struct { const char *key, *val, *logged; } bad[] = {
		{ "ring-page-order", "9", "ring-page-order '9'" },
		{ "ring-page-order", "4294967295", "ring-page-order '4294967295'" },
		{ "ring-page-order", "18446744073709551617", "ring-page-order '18446744073709551617'" },
		{ "ring-page-order", "garbage", "ring-page-order 'garbage'" },
		{ "ring-page-order", "-1", "ring-page-order '-1'" },
		{ "event-channel", NULL, "event-channel '': missing" },
		{ "event-channel", "0", "event-channel '0'" },
		{ "ring-ref", "x12", "ring-ref 'x12'" },
		{ "protocol", "armv7-abi", "protocol 'armv7-abi'" },
	};
	char p[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(be_state_wait(f, 1u << 2) == 2, "%s=%s: backend not in InitWait", bad[i].key,
		      bad[i].val ? bad[i].val : "(missing)");
		fe_write_keys(f, "x86_64-abi");
		fpath(f, p, sizeof(p), bad[i].key);
		if (bad[i].val)
			xst_write(xsg, p, "%s", bad[i].val);
		else
			xs_rm(xsg, XBT_NULL, p);
		fe_state(f, 3);
		CHECK(be_state_wait(f, 1u << 5) == 5, "%s=%s was not refused", bad[i].key,
		      bad[i].val ? bad[i].val : "(missing)");
		CHECK(log_has(f->v, bad[i].logged), "log does not say: %s", bad[i].logged);
		CHECK(tapdisk_alive(f->v), "tapdisk died on %s", bad[i].key);
		/* a frontend that gives up closes, then starts over */
		fe_state(f, 6);
		CHECK(be_state_wait(f, 1u << 6) == 6, "backend not Closed after the frontend closed");
		fe_state(f, 1);
	}
	/* the ring was never mapped: its grants end */
	CHECK(fe_ring_free(f) == 0, "ring still mapped after refusals");
}

/* Producer index far ahead of the ring: tapdisk disconnects that VBD
 * (backend Closing, ring unmapped), stays alive, and serves a fresh ring. */
static void test_overrun(struct fe *f)
{
	struct pvio_ring_sring *s = f->ring_va;
	char p[256];

	__atomic_store_n(&s->req_prod, f->fr.req_prod_pvt + f->fr.nr_ents + 5, __ATOMIC_RELEASE);
	pvio_evtchn_notify(gev, (evtchn_port_t)f->port);
	CHECK(be_state_wait(f, 1u << 5 | 1u << 6) == 5, "backend did not go Closing on a producer overrun");
	CHECK(log_has(f->v, "broke the ring"), "overrun not logged");
	CHECK(tapdisk_alive(f->v), "tapdisk died on a producer overrun");
	snprintf(p, sizeof(p), "%s/error", f->v->be);
	char *e = xst_read(xsg, p);
	CHECK(e != NULL, "no error node");
	free(e);
	fe_state(f, 6);
	CHECK(be_state_wait(f, 1u << 6) == 6, "backend not Closed");
	CHECK(fe_ring_free(f) == 0, "ring still mapped after the disconnect");
	fe_state(f, 1);
	CHECK(fe_connect(f, 1, "x86_64-abi") == 4, "no reconnect after an overrun");
	check_still_serving(f, "reconnect after overrun");
}

/* Segments i of @pages (sectors first..last each) equal the image from
 * @sector on.  Returns 1 if every byte matches. */
static int image_matches(struct vbd *v, uint64_t sector, const struct page *pages, unsigned nseg, int first,
			 int last)
{
	int secs = last - first + 1;
	uint8_t buf[4096];

	for (unsigned i = 0; i < nseg; i++) {
		size_t len = (size_t)secs * 512;
		off_t off = (off_t)((sector + (uint64_t)i * (uint64_t)secs) * 512);
		if (pread(v->img_fd, buf, len, off) != (ssize_t)len ||
		    memcmp(buf, (const uint8_t *)pages[i].va + first * 512, len))
			return 0;
	}
	return 1;
}

static void fill_pages(struct page *pages, unsigned n, uint32_t seed)
{
	for (unsigned i = 0; i < n; i++)
		for (uint32_t b = 0; b < 4096; b++)
			((uint8_t *)pages[i].va)[b] = pat(seed, i * 4096 + b);
}

static unsigned long ind_good; /* indirect requests answered OK (tapdisk counts them) */

/* One good indirect write then read of @nseg segments at @sector, each
 * verified against the image. */
static void indirect_rw(struct fe *f, struct counts *c, uint64_t sector, unsigned nseg, int first, int last,
			uint32_t seed, const char *what)
{
	struct pvio_blkif_request rq;
	struct pvio_blkif_response rs;

	fill_pages(f->big, nseg, seed);
	rq = mkind(PVIO_BLKIF_OP_WRITE, sector, nseg, f->ind, f->big, (uint8_t)first, (uint8_t)last);
	rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0 && rs.operation == PVIO_BLKIF_OP_WRITE,
	      "%s: indirect write of %u segments: status %d op %u", what, nseg, rs.status, rs.operation);
	CHECK(image_matches(f->v, sector, f->big, nseg, first, last), "%s: indirect write of %u segments: "
	      "image differs", what, nseg);
	for (unsigned i = 0; i < nseg; i++)
		memset(f->big[i].va, 0x5a, 4096);
	rq = mkind(PVIO_BLKIF_OP_READ, sector, nseg, f->ind, f->big, (uint8_t)first, (uint8_t)last);
	rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0 && rs.operation == PVIO_BLKIF_OP_READ,
	      "%s: indirect read of %u segments: status %d op %u", what, nseg, rs.status, rs.operation);
	CHECK(image_matches(f->v, sector, f->big, nseg, first, last), "%s: indirect read of %u segments: "
	      "data differs from the image", what, nseg);
	if (c) {
		c->writes++;
		c->reads++;
	}
	ind_good += 2;
}

/* Indirect descriptors (tapdisk's default, 256): good requests of 12..256
 * segments verified both ways, then every field of the header and of the
 * descriptor pages made hostile; each is refused and the ring keeps
 * serving.  Nothing stays mapped afterwards. */
static void test_indirect(struct fe *f, struct counts *c, unsigned max)
{
	struct pvio_blkif_request rq;
	struct pvio_blkif_request_indirect *in = (struct pvio_blkif_request_indirect *)&rq;
	struct pvio_blkif_request_segment *d;
	char p[256];

	fe_big_pages(f);
	snprintf(p, sizeof(p), "%s/feature-max-indirect-segments", f->v->be);
	CHECK(xst_read_int(xsg, p) == (int)max, "feature-max-indirect-segments is not %u", max);

	indirect_rw(f, c, 2048, max, 0, 7, 41, "1 MiB");
	indirect_rw(f, c, 4096 + 3, 12, 1, 6, 42, "12 partial segments");
	indirect_rw(f, c, 6000, 100, 0, 7, 43, "100 segments");
	/* the grefs past the pages nr_segments needs are never looked at */
	rq = mkind(PVIO_BLKIF_OP_READ, 0, 12, f->ind, f->big, 0, 7);
	for (int k = 1; k < PVIO_BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; k++)
		in->indirect_grefs[k] = 0xdeadbeef;
	struct pvio_blkif_response rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0, "indirect read with garbage in unused indirect_grefs: %d", rs.status);
	c->reads++;
	ind_good++;
	/* a descriptor page granted read-only is enough: the backend only reads it */
	rq = mkind(PVIO_BLKIF_OP_READ, 0, 12, &f->ro, f->big, 0, 7);
	rs = fe_do(f, &rq);
	CHECK(rs.id == rq.id && rs.status == 0, "indirect read with a read-only descriptor page: %d", rs.status);
	c->reads++;
	ind_good++;

	/* the header */
	static const struct { uint8_t op; const char *what; } bad_ops[] = {
		{ PVIO_BLKIF_OP_FLUSH_DISKCACHE, "indirect_op flush" },
		{ PVIO_BLKIF_OP_WRITE_BARRIER, "indirect_op barrier" },
		{ PVIO_BLKIF_OP_DISCARD, "indirect_op discard" },
		{ PVIO_BLKIF_OP_INDIRECT, "indirect_op indirect" },
		{ PVIO_BLKIF_OP_RESERVED_1, "indirect_op reserved 4" },
		{ 99, "indirect_op 99" },
	};
	for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++)
		expect_status(f, mkind(bad_ops[i].op, 0, 12, f->ind, f->big, 0, 7), PVIO_BLKIF_RSP_ERROR,
			      bad_ops[i].what);
	CHECK(log_has(f->v, "indirect_op 99 is not read (0) or write (1)"), "bad indirect_op not logged");
	expect_status(f, mkind(PVIO_BLKIF_OP_READ, 0, 0, f->ind, f->big, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "indirect, 0 segments");
	expect_status(f, mkind(PVIO_BLKIF_OP_READ, 0, max + 1, f->ind, f->big, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "indirect, one segment over the limit");
	rq = mkind(PVIO_BLKIF_OP_WRITE, 0, 12, f->ind, f->big, 0, 7);
	in->nr_segments = 65535;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect, 65535 segments");
	snprintf(p, sizeof(p), "indirect nr_segments %u not in 1..%u", max + 1, max);
	CHECK(log_has(f->v, p), "log does not say: %s", p);
	/* the descriptor pages' grants */
	rq = mkind(PVIO_BLKIF_OP_READ, 0, 12, f->ind, f->big, 0, 7);
	in->indirect_grefs[0] = f->ungranted;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect page: ungranted gref");
	in->indirect_grefs[0] = 0x7fffffff;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect page: gref beyond the table");
	in->indirect_grefs[0] = f->foreign.ref;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect page: granted to another domain");
	CHECK(log_has(f->v, "indirect page: grant map refused"), "indirect page map refusal not logged");
	/* the descriptors */
	rq = mkind(PVIO_BLKIF_OP_READ, 0, max, f->ind, f->big, 0, 7);
	d = f->ind[0].va;
	d[100].first_sect = 5;
	d[100].last_sect = 4;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: segment 100 first > last");
	CHECK(log_has(f->v, "segment 100 sectors 5..4 not first <= last <= 7"), "bad descriptor not logged");
	rq = mkind(PVIO_BLKIF_OP_READ, 0, max, f->ind, f->big, 0, 7);
	d[max - 1].last_sect = 8;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: last segment last_sect 8");
	rq = mkind(PVIO_BLKIF_OP_WRITE, 0, max, f->ind, f->big, 0, 7);
	d[0].first_sect = d[0].last_sect = 200;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: segment 0 sectors 200..200");
	rq = mkind(PVIO_BLKIF_OP_READ, 0, max, f->ind, f->big, 0, 7);
	d[200].gref = f->ungranted;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: segment 200 ungranted");
	rq = mkind(PVIO_BLKIF_OP_WRITE, 0, 12, f->ind, f->big, 0, 7);
	d[5].gref = f->foreign.ref;
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: segment 5 granted to another domain");
	rq = mkind(PVIO_BLKIF_OP_READ, 0, 12, f->ind, f->big, 0, 7);
	d[3].gref = f->ro.ref;
	memset(f->ro.va, 0x11, 4096);
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: read into a read-only segment");
	CHECK(((uint8_t *)f->ro.va)[0] == 0x11 && ((uint8_t *)f->ro.va)[4095] == 0x11,
	      "indirect read wrote a read-only granted page");
	rq = mkind(PVIO_BLKIF_OP_READ, 0, 12, f->ind, f->big, 0, 7);
	memset(f->ind[0].va, 0xff, 4096); /* a page of garbage */
	expect_status(f, rq, PVIO_BLKIF_RSP_ERROR, "indirect: descriptor page of 0xff");
	/* ranges */
	expect_status(f, mkind(PVIO_BLKIF_OP_READ, IMG_SECTORS - 8ull * max + 1, max, f->ind, f->big, 0, 7),
		      PVIO_BLKIF_RSP_ERROR, "indirect: range past the disk end");
	expect_status(f, mkind(PVIO_BLKIF_OP_WRITE, UINT64_MAX - 7, 12, f->ind, f->big, 0, 7),
		      PVIO_BLKIF_RSP_ERROR, "indirect: sector wrap");
	expect_status(f, mkind(PVIO_BLKIF_OP_READ, UINT64_MAX / 512, 12, f->ind, f->big, 0, 7),
		      PVIO_BLKIF_RSP_ERROR, "indirect: byte offset overflow");
	/* still good after all that, and the last sectors of the disk are reachable */
	indirect_rw(f, c, IMG_SECTORS - 8ull * max, max, 0, 7, 44, "disk end");
	/* nothing of the refused requests stays mapped: every grant ends */
	for (int i = 0; i < NBIG; i++) {
		CHECK(pvio_gnt_end_access(gd, f->big[i].ref) == 0, "indirect data page %d still mapped", i);
		pvio_gnt_grant_access(gd, f->big[i].ref, 0, f->big[i].gfn, 0);
	}
	for (int i = 0; i < 2; i++) {
		CHECK(pvio_gnt_end_access(gd, f->ind[i].ref) == 0, "descriptor page %d still mapped", i);
		pvio_gnt_grant_access(gd, f->ind[i].ref, 0, f->ind[i].gfn, 0);
	}
}

/* tapdisk --max-indirect-segments 0: nothing advertised, BLKIF_OP_INDIRECT
 * answered EOPNOTSUPP (echoing indirect_op), direct requests still served. */
static void run_indirect_off(const char *engine, uint32_t devid)
{
	static const char *const args[] = { "--max-indirect-segments", "0", NULL };
	struct vbd v;
	struct fe f;
	char p[256], out[512];

	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 0, "xvde");
	f.v = &v;
	fe_pages(&f);
	fe_big_pages(&f);
	tapdisk_start_args(&v, engine, args);
	printf("# %s: indirect descriptors switched off\n", engine);
	CHECK(fe_connect(&f, 0, "x86_64-abi") == 4, "no connection");
	snprintf(p, sizeof(p), "%s/feature-max-indirect-segments", v.be);
	CHECK(xst_read_int(xsg, p) == 0, "feature-max-indirect-segments is not 0 with --max-indirect-segments 0");
	expect_status(&f, mkind(PVIO_BLKIF_OP_READ, 0, 12, f.ind, f.big, 0, 7), PVIO_BLKIF_RSP_EOPNOTSUPP,
		      "indirect read (not advertised)");
	expect_status(&f, mkind(PVIO_BLKIF_OP_WRITE, 0, 0, f.ind, f.big, 0, 0), PVIO_BLKIF_RSP_EOPNOTSUPP,
		      "indirect write, 0 segments (not advertised)");
	CHECK(log_has(&v, "indirect descriptors not advertised"), "refusal not logged");
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);
}

/* A disk of 4096-byte logical sectors (tapdisk --sector-size 4096, and a
 * smaller indirect limit): the keys, aligned I/O verified, misaligned
 * requests of every kind refused and logged. */
static void run_sector4k(const char *engine, uint32_t devid)
{
	static const char *const args[] = { "--sector-size", "4096", "--max-indirect-segments", "32", NULL };
	struct vbd v;
	struct fe f;
	struct pvio_blkif_request rq, d;
	struct pvio_blkif_response rs;
	char p[256], out[2048];
	uint64_t n;
	unsigned long misaligned = 0;

	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 0, "xvdf");
	snprintf(p, sizeof(p), "%s/discard-enable", v.be);
	xst_write(xs0, p, "1");
	f.v = &v;
	fe_pages(&f);
	fe_big_pages(&f);
	tapdisk_start_args(&v, engine, args);
	printf("# %s: 4096-byte logical sectors\n", engine);
	CHECK(fe_connect(&f, 1, "x86_64-abi") == 4, "no connection");
	snprintf(p, sizeof(p), "%s/sector-size", v.be);
	CHECK(xst_read_int(xsg, p) == 4096, "sector-size is not 4096");
	snprintf(p, sizeof(p), "%s/physical-sector-size", v.be);
	CHECK(xst_read_int(xsg, p) == 4096, "physical-sector-size is not 4096");
	snprintf(p, sizeof(p), "%s/sectors", v.be);
	CHECK(xst_read_int(xsg, p) == (int)IMG_SECTORS, "sectors are not in 512-byte units");
	snprintf(p, sizeof(p), "%s/feature-max-indirect-segments", v.be);
	CHECK(xst_read_int(xsg, p) == 32, "feature-max-indirect-segments is not 32");

	/* aligned: direct and indirect, verified */
	fill_pages(f.data, 2, 51);
	rq = mkreq(PVIO_BLKIF_OP_WRITE, 64, 2, f.data, 0, 7);
	rs = fe_do(&f, &rq);
	CHECK(rs.status == 0 && image_matches(&v, 64, f.data, 2, 0, 7), "aligned 4 KiB write: status %d", rs.status);
	memset(f.data[0].va, 0, 4096);
	memset(f.data[1].va, 0, 4096);
	rq = mkreq(PVIO_BLKIF_OP_READ, 64, 2, f.data, 0, 7);
	rs = fe_do(&f, &rq);
	CHECK(rs.status == 0 && image_matches(&v, 64, f.data, 2, 0, 7), "aligned 4 KiB read: status %d", rs.status);
	indirect_rw(&f, NULL, 1024, 32, 0, 7, 52, "4 KiB sectors, 32 segments");
	expect_status(&f, mkind(PVIO_BLKIF_OP_READ, 1024, 33, f.ind, f.big, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "indirect, 33 segments over a limit of 32");

	/* misaligned: each refused, logged, the image untouched */
	static const struct { uint64_t sector; int nseg, first, last; const char *what; } bad[] = {
		{ 1, 1, 0, 7, "start sector 1" },
		{ 4, 2, 0, 7, "start sector 4" },
		{ 8, 1, 0, 3, "half a block" },
		{ 8, 1, 4, 7, "second half of a block" },
		{ 8, 1, 1, 7, "a segment from sector 1" },
		{ 8, 1, 0, 0, "one 512-byte sector" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fill_pages(f.data, 2, 53);
		expect_status(&f, mkreq(PVIO_BLKIF_OP_WRITE, bad[i].sector, bad[i].nseg, f.data, (uint8_t)bad[i].first,
					(uint8_t)bad[i].last), PVIO_BLKIF_RSP_ERROR, bad[i].what);
		misaligned++;
	}
	expect_status(&f, mkreq(PVIO_BLKIF_OP_READ, 3, 1, f.data, 0, 7), PVIO_BLKIF_RSP_ERROR, "read at sector 3");
	misaligned++;
	expect_status(&f, mkreq(PVIO_BLKIF_OP_FLUSH_DISKCACHE, 12, 1, f.data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "flush with misaligned data");
	misaligned++;
	rq = mkind(PVIO_BLKIF_OP_WRITE, 1024, 20, f.ind, f.big, 0, 7);
	((struct pvio_blkif_request_segment *)f.ind[0].va)[19].last_sect = 3; /* the tail: half a block */
	expect_status(&f, rq, PVIO_BLKIF_RSP_ERROR, "indirect with a half-block last segment");
	misaligned++;
	expect_status(&f, mkind(PVIO_BLKIF_OP_READ, 1028, 12, f.ind, f.big, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "indirect at sector 1028");
	misaligned++;
	static const struct { uint64_t sector, n; const char *what; } bad_discard[] = {
		{ 4, 8, "discard at sector 4" },
		{ 8, 4, "discard of 4 sectors" },
		{ 8, 9, "discard of 9 sectors" },
	};
	for (size_t i = 0; i < sizeof(bad_discard) / sizeof(bad_discard[0]); i++) {
		d = mkreq(PVIO_BLKIF_OP_DISCARD, bad_discard[i].sector, 0, f.data, 0, 0);
		n = bad_discard[i].n;
		memcpy(&d.seg[0], &n, sizeof(n));
		expect_status(&f, d, PVIO_BLKIF_RSP_ERROR, bad_discard[i].what);
		misaligned++;
	}
	CHECK(log_has(&v, "not aligned to the 4096-byte logical sector"), "misaligned refusals not logged");
	/* none of the refused writes (sectors 1..15) reached the image */
	uint8_t ib[16 * 512];
	CHECK(pread(v.img_fd, ib, sizeof(ib), 0) == (ssize_t)sizeof(ib), "pread");
	for (uint64_t i = 0; i < sizeof(ib); i++)
		if (ib[i] != (uint8_t)(i * 131 >> 9 ^ i)) {
			CHECK(0, "a refused misaligned write changed byte %" PRIu64 " of the image", i);
			break;
		}
	/* an aligned discard is fine and reads back zeros */
	d = mkreq(PVIO_BLKIF_OP_DISCARD, 64, 0, f.data, 0, 0);
	n = 16;
	memcpy(&d.seg[0], &n, sizeof(n));
	rs = fe_do(&f, &d);
	CHECK(rs.status == 0, "aligned discard: %d", rs.status);
	uint8_t zb[8192], zero[8192] = { 0 };
	CHECK(pread(v.img_fd, zb, sizeof(zb), 64 * 512) == (ssize_t)sizeof(zb) && !memcmp(zb, zero, sizeof(zb)),
	      "discarded 4 KiB blocks do not read as zeros");
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "stats");
	const char *m = strstr(out, "\"misaligned\":");
	unsigned long got = 0;
	CHECK(m && sscanf(m, "\"misaligned\":%lu", &got) == 1 && got == misaligned,
	      "stats count %lu misaligned requests, want %lu: %s", got, misaligned, out);
	CHECK(strstr(out, "\"sector_size\":4096") != NULL, "stats: no sector_size 4096: %s", out);
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);
}

/* Bad command-line values and an image that is not whole 4 KiB blocks:
 * tapdisk exits 1 (the latter with the reason in its log). */
static void run_bad_options(uint32_t devid)
{
	static const char *const bad[][3] = {
		{ "--max-indirect-segments", "257", NULL },
		{ "--max-indirect-segments", "-1", NULL },
		{ "--max-indirect-segments", "x", NULL },
		{ "--max-indirect-segments", "", NULL },
		{ "--sector-size", "1024", NULL },
		{ "--sector-size", "0", NULL },
		{ "--sector-size", "4096x", NULL },
	};
	static const char *const s4k[] = { "--sector-size", "4096", NULL };
	struct vbd v;

	printf("# bad tapdisk options, image not whole 4 KiB blocks\n");
	vbd_create(&v, devid, 0, "xvdg");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tapdisk_start_args(&v, "io_uring", bad[i]);
		CHECK(tapdisk_wait(&v, TMO) == 1, "tapdisk %s '%s' did not exit 1", bad[i][0], bad[i][1]);
	}
	if (ftruncate(v.img_fd, (off_t)(IMG_SECTORS * 512 + 512)) < 0)
		xst_die("ftruncate");
	tapdisk_start_args(&v, "io_uring", s4k);
	CHECK(tapdisk_wait(&v, TMO) == 1, "tapdisk served an image of 4 KiB blocks plus 512 bytes");
	CHECK(log_has(&v, "is not a multiple of the 4096-byte logical sector"), "refusal not logged");
	close(v.img_fd);
}

/* ---- multi-queue: hand-written keys, good and hostile ---------------------- */

static void xrm(const char *path)
{
	xs_rm(xsg, XBT_NULL, path);
}

/* Forget every multi-queue key of @f's frontend dir. */
static void mq_keys_clear(struct fe *f)
{
	char p[256];

	fpath(f, p, sizeof(p), "multi-queue-num-queues");
	xrm(p);
	for (int i = 0; i < 6; i++) {
		char k[16];
		snprintf(k, sizeof(k), "queue-%d", i);
		fpath(f, p, sizeof(p), k);
		xrm(p);
	}
}

/* The Linux blkfront layout for @nq rings q[0..nq): ring-page-order at
 * the top, multi-queue-num-queues, queue-N/ring-ref[K] and
 * queue-N/event-channel. */
static void mq_write_keys(struct fe *q, unsigned nq)
{
	char p[256], k[64];

	mq_keys_clear(&q[0]);
	fe_write_keys(&q[0], "x86_64-abi"); /* top-level ring-page-order, protocol */
	fpath(&q[0], p, sizeof(p), "multi-queue-num-queues");
	xst_write(xsg, p, "%u", nq);
	for (unsigned i = 0; i < nq; i++) {
		for (unsigned r = 0; r < 1u << q[i].order; r++) {
			if (q[i].order)
				snprintf(k, sizeof(k), "queue-%u/ring-ref%u", i, r);
			else
				snprintf(k, sizeof(k), "queue-%u/ring-ref", i);
			fpath(&q[0], p, sizeof(p), k);
			xst_write(xsg, p, "%u", q[i].rrefs[r]);
		}
		snprintf(k, sizeof(k), "queue-%u/event-channel", i);
		fpath(&q[0], p, sizeof(p), k);
		xst_write(xsg, p, "%d", q[i].port);
	}
}

/*
 * tapdisk --max-queues 3: the key published; every hostile multi-queue
 * value refused (logged, Closing, tapdisk alive); then 3 correct queues,
 * each ring serving its own requests, answers on the ring they came from,
 * and the per-queue stats.
 */
static void run_multiqueue(const char *engine, uint32_t devid)
{
	static const char *const args[] = { "--max-queues", "3", NULL };
	static const struct { const char *key, *val, *logged; } bad[] = {
		{ "multi-queue-num-queues", "0", "multi-queue-num-queues '0'" },
		{ "multi-queue-num-queues", "4", "multi-queue-num-queues '4': not a number in 1..3" },
		{ "multi-queue-num-queues", "4294967298", "multi-queue-num-queues '4294967298'" },
		{ "multi-queue-num-queues", "two", "multi-queue-num-queues 'two'" },
		{ "multi-queue-num-queues", "-2", "multi-queue-num-queues '-2'" },
		{ "queue-1/event-channel", NULL, "queue-1/event-channel '': missing" },
		{ "queue-1/event-channel", "0", "queue-1/event-channel '0'" },
		{ "queue-0/ring-ref", NULL, "queue-0/ring-ref '': missing" },
		{ "queue-1/ring-ref", "zz", "queue-1/ring-ref 'zz'" },
		{ "queue-1/ring-ref", "99999999999", "queue-1/ring-ref '99999999999'" },
		/* a single queue, but queue-0 keys as well: which ring is meant? */
		{ "multi-queue-num-queues", "1", "queue-0 keys present with one queue" },
	};
	struct vbd v;
	struct fe q[3];
	char p[256], out[2048];

	memset(q, 0, sizeof(q));
	vbd_create(&v, devid, 0, "xvdh");
	for (int i = 0; i < 3; i++)
		q[i].v = &v;
	fe_pages(&q[0]);
	tapdisk_start_args(&v, engine, args);
	printf("# %s: multi-queue, hostile keys\n", engine);
	CHECK(be_state_wait(&q[0], 1u << 2) == 2, "backend not in InitWait");
	snprintf(p, sizeof(p), "%s/multi-queue-max-queues", v.be);
	CHECK(xst_read_int(xsg, p) == 3, "multi-queue-max-queues is not 3 with --max-queues 3");
	for (int i = 0; i < 2; i++)
		fe_ring_new(&q[i], 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(be_state_wait(&q[0], 1u << 2) == 2, "%s=%s: backend not in InitWait", bad[i].key,
		      bad[i].val ? bad[i].val : "(missing)");
		mq_write_keys(q, 2);
		fpath(&q[0], p, sizeof(p), bad[i].key);
		if (bad[i].val)
			xst_write(xsg, p, "%s", bad[i].val);
		else
			xrm(p);
		fe_state(&q[0], 3);
		CHECK(be_state_wait(&q[0], 1u << 5) == 5, "%s=%s was not refused", bad[i].key,
		      bad[i].val ? bad[i].val : "(missing)");
		CHECK(log_has(&v, bad[i].logged), "log does not say: %s", bad[i].logged);
		CHECK(tapdisk_alive(&v), "tapdisk died on %s", bad[i].key);
		fe_state(&q[0], 6);
		CHECK(be_state_wait(&q[0], 1u << 6) == 6, "backend not Closed after the frontend closed");
		fe_state(&q[0], 1);
	}
	/* queue keys with num-queues absent: as ambiguous */
	CHECK(be_state_wait(&q[0], 1u << 2) == 2, "backend not in InitWait");
	mq_write_keys(q, 2);
	fpath(&q[0], p, sizeof(p), "multi-queue-num-queues");
	xrm(p);
	fe_state(&q[0], 3);
	CHECK(be_state_wait(&q[0], 1u << 5) == 5, "queue-0 keys without num-queues were not refused");
	fe_state(&q[0], 6);
	CHECK(be_state_wait(&q[0], 1u << 6) == 6, "backend not Closed");
	fe_state(&q[0], 1);
	for (int i = 0; i < 2; i++)
		CHECK(fe_ring_free(&q[i]) == 0, "ring %d still mapped after refusals", i);

	printf("# %s: multi-queue, 3 queues of 2-page rings\n", engine);
	CHECK(be_state_wait(&q[0], 1u << 2) == 2, "backend not in InitWait");
	for (int i = 0; i < 3; i++)
		fe_ring_new(&q[i], 1);
	mq_write_keys(q, 3);
	fe_state(&q[0], 3);
	CHECK(be_state_wait(&q[0], 1u << 4 | 1u << 5) == 4, "3 good queues: no connection");
	fe_state(&q[0], 4);
	CHECK(log_has(&v, "3 queue(s) of a 2-page ring"), "connect line does not say 3 queues");
	/* a write on each ring, each read back on another ring */
	for (int i = 0; i < 3; i++) {
		memset(q[0].data[i].va, 0x31 + i, 4096);
		struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_WRITE, 64 + 8 * i, 1, &q[0].data[i], 0, 7);
		struct pvio_blkif_response rs = fe_do(&q[i], &rq);
		CHECK(rs.id == rq.id && rs.status == 0, "queue %d: write status %d", i, rs.status);
	}
	for (int i = 0; i < 3; i++) {
		struct fe *o = &q[(i + 1) % 3];
		memset(q[0].data[3 + i].va, 0, 4096);
		struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_READ, 64 + 8 * i, 1, &q[0].data[3 + i], 0, 7);
		struct pvio_blkif_response rs = fe_do(o, &rq);
		const uint8_t *b = q[0].data[3 + i].va;
		CHECK(rs.id == rq.id && rs.status == 0 && b[0] == 0x31 + i && b[4095] == 0x31 + i,
		      "queue %d: read of queue %d's write: status %d byte %#x", (i + 1) % 3, i, rs.status, b[0]);
	}
	/* many on all rings at once, each ring answers its own */
	{
		struct pvio_blkif_request rq[3][8];
		struct pvio_blkif_response rs[8];
		for (int i = 0; i < 3; i++) {
			for (int k = 0; k < 8; k++)
				rq[i][k] = mkreq(PVIO_BLKIF_OP_READ, (uint64_t)(8 * (8 * i + k)), 1,
						 &q[0].data[8 * i / 3 + k % 8], 0, 7);
			fe_send(&q[i], rq[i], 8);
		}
		for (int i = 0; i < 3; i++) {
			int got = fe_collect(&q[i], rs, 8, TMO), ok = got == 8;
			for (int k = 0; k < got; k++) {
				int mine = 0;
				for (int j = 0; j < 8; j++)
					mine |= rs[k].id == rq[i][j].id;
				ok = ok && mine && rs[k].status == 0;
			}
			CHECK(ok, "queue %d: %d of 8 answers, not all its own or not OK", i, got);
		}
	}
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0 && strstr(out, "\"queues\":{\"max\":3,\"count\":3,"),
	      "stats do not show 3 queues: %s", out);
	CHECK(strstr(out, "{\"requests\":10,") != NULL && strstr(out, "in_flight\":0") != NULL,
	      "per-queue requests: %s", out);
	/* a producer overrun on one ring disconnects the whole VBD */
	{
		struct pvio_ring_sring *sr = q[2].ring_va;
		__atomic_store_n(&sr->req_prod, q[2].fr.req_prod_pvt + q[2].fr.nr_ents + 5, __ATOMIC_RELEASE);
		pvio_evtchn_notify(gev, (evtchn_port_t)q[2].port);
		CHECK(be_state_wait(&q[0], 1u << 5 | 1u << 6) == 5, "no Closing on queue 2's overrun");
		CHECK(log_has(&v, "broke the ring (queue 2"), "overrun on queue 2 not logged");
		fe_state(&q[0], 6);
		CHECK(be_state_wait(&q[0], 1u << 6) == 6, "backend not Closed");
		for (int i = 0; i < 3; i++)
			CHECK(fe_ring_free(&q[i]) == 0, "ring %d still mapped after the disconnect", i);
	}
	CHECK(tapdisk_alive(&v), "tapdisk died");
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);
}

/* ---- barriers: ordering, as Linux blkback ------------------------------------- */

/* Index of response @id in @rs[0..n), or -1. */
static int rs_pos(const struct pvio_blkif_response *rs, int n, uint64_t id)
{
	for (int i = 0; i < n; i++)
		if (rs[i].id == id)
			return i;
	return -1;
}

/*
 * tapdisk runs the faulty engine holding every read and write 300 ms
 * (flushes pass at once).  On one ring, in one push: writes W1 W2, a
 * barrier B, then a read R and a write W3.  Responses come in completion
 * order, so the order they arrive in is what the backend did:
 *  - B after W1 and W2 (issued only once they completed, although its own
 *    I/O is a flush that is not held, or a held write);
 *  - R and W3 after B (not started before B was answered);
 *  - B's data is in the image when its answer comes, and R reads it.
 * A barrier without data (drain + flush) and one with data are both run;
 * a refused barrier does not block the ring.  The wait is a deadline, the
 * assertions are on order only.
 */
static void run_barrier(const char *engine, uint32_t devid)
{
	char eng[96], out[2048];
	struct vbd v;
	struct fe f;

	snprintf(eng, sizeof(eng), "faulty:%s:count=0,delay=300", engine);
	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 0, "xvdi");
	f.v = &v;
	fe_pages(&f);
	tapdisk_start_args(&v, eng, NULL);
	printf("# %s: barrier ordering (faulty engine, reads and writes held 300 ms)\n", engine);
	CHECK(fe_connect(&f, 1, "x86_64-abi") == 4, "no connection");
	{
		char p[256];
		snprintf(p, sizeof(p), "%s/feature-barrier", v.be);
		CHECK(xst_read_int(xsg, p) == 1, "feature-barrier is not 1");
	}
	for (int withdata = 0; withdata < 2; withdata++) {
		struct pvio_blkif_request rq[5];
		struct pvio_blkif_response rs[5];
		uint64_t bsec = 512 + 64 * (uint64_t)withdata;

		memset(f.data[0].va, 0x41, 4096);
		memset(f.data[1].va, 0x42, 4096);
		memset(f.data[2].va, 0x43 + withdata, 4096);
		memset(f.data[3].va, 0, 4096);
		memset(f.data[4].va, 0x45, 4096);
		rq[0] = mkreq(PVIO_BLKIF_OP_WRITE, bsec + 8, 1, &f.data[0], 0, 7);
		rq[1] = mkreq(PVIO_BLKIF_OP_WRITE, bsec + 16, 1, &f.data[1], 0, 7);
		rq[2] = mkreq(PVIO_BLKIF_OP_WRITE_BARRIER, bsec, withdata, &f.data[2], 0, 7);
		rq[3] = mkreq(PVIO_BLKIF_OP_READ, withdata ? bsec : bsec + 8, 1, &f.data[3], 0, 7);
		rq[4] = mkreq(PVIO_BLKIF_OP_WRITE, bsec + 24, 1, &f.data[4], 0, 7);
		fe_send(&f, rq, 5);
		int got = fe_collect(&f, rs, 5, TMO);
		CHECK(got == 5, "barrier%s: %d of 5 answers", withdata ? " with data" : "", got);
		int w1 = rs_pos(rs, got, rq[0].id), w2 = rs_pos(rs, got, rq[1].id),
		    b = rs_pos(rs, got, rq[2].id), r = rs_pos(rs, got, rq[3].id),
		    w3 = rs_pos(rs, got, rq[4].id);
		CHECK(w1 >= 0 && w2 >= 0 && b >= 0 && r >= 0 && w3 >= 0, "an answer is missing");
		CHECK(w1 < b && w2 < b, "barrier%s answered (position %d) before earlier writes (%d, %d)",
		      withdata ? " with data" : "", b, w1, w2);
		CHECK(r > b && w3 > b, "later requests (positions %d, %d) answered before the barrier%s (%d)",
		      r, w3, withdata ? " with data" : "", b);
		for (int i = 0; i < got; i++)
			CHECK(rs[i].status == 0, "answer %d: status %d", i, rs[i].status);
		CHECK(b >= 0 && rs[b].operation == PVIO_BLKIF_OP_WRITE_BARRIER, "barrier answer echoes op %u",
		      b >= 0 ? rs[b].operation : 0);
		const uint8_t *rb = f.data[3].va;
		uint8_t want = withdata ? (uint8_t)(0x43 + withdata) : 0x41;
		CHECK(rb[0] == want && rb[4095] == want, "read after the barrier saw %#x, want %#x", rb[0], want);
		uint8_t img[4096];
		CHECK(pread(v.img_fd, img, 4096, (off_t)(withdata ? bsec : bsec + 8) * 512) == 4096 &&
		      img[0] == want && img[4095] == want, "barrier%s: image holds %#x, want %#x",
		      withdata ? " with data" : "", img[0], want);
	}
	/* a refused barrier (segment count) does not leave the ring blocked */
	{
		struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_WRITE_BARRIER, 0, 11, f.data, 0, 7);
		rq.nr_segments = 12;
		struct pvio_blkif_response rs = fe_do(&f, &rq);
		CHECK(rs.id == rq.id && rs.status == PVIO_BLKIF_RSP_ERROR, "bad barrier: status %d", rs.status);
		check_still_serving(&f, "a refused barrier");
	}
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0 && strstr(out, "\"barriers\":2,"),
	      "stats do not count 2 barriers: %s", out);
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);

	/* --no-barrier: feature-barrier 0, a barrier answered EOPNOTSUPP */
	static const char *const nob[] = { "--no-barrier", NULL };
	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid + 16, 0, "xvdj");
	f.v = &v;
	fe_pages(&f);
	tapdisk_start_args(&v, engine, nob);
	CHECK(fe_connect(&f, 0, "x86_64-abi") == 4, "--no-barrier: no connection");
	{
		char p[256];
		snprintf(p, sizeof(p), "%s/feature-barrier", v.be);
		CHECK(xst_read_int(xsg, p) == 0, "feature-barrier is not 0 with --no-barrier");
	}
	expect_status(&f, mkreq(PVIO_BLKIF_OP_WRITE_BARRIER, 0, 1, f.data, 0, 7), PVIO_BLKIF_RSP_EOPNOTSUPP,
		      "barrier (not advertised)");
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);
}

static void run_vbd(const char *engine, uint32_t devid, int full)
{
	struct vbd v;
	struct fe f;
	struct counts c = { 0 };
	unsigned long invalid = 0, unsupported = 0;
	char p[256], out[512];

	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 0, "xvda");
	f.v = &v;
	fe_pages(&f);
	tapdisk_start(&v, engine);
	printf("# %s: handshake (4-page ring)\n", engine);
	CHECK(fe_connect(&f, 2, "x86_64-abi") == 4, "no connection");
	snprintf(p, sizeof(p), "%s/sectors", v.be);
	CHECK(xst_read_int(xsg, p) == (int)IMG_SECTORS, "sectors");
	snprintf(p, sizeof(p), "%s/info", v.be);
	CHECK(xst_read_int(xsg, p) == 0, "info");
	snprintf(p, sizeof(p), "%s/sector-size", v.be);
	CHECK(xst_read_int(xsg, p) == 512, "sector-size");
	snprintf(p, sizeof(p), "%s/feature-flush-cache", v.be);
	CHECK(xst_read_int(xsg, p) == 1, "feature-flush-cache");
	CHECK(log_has(&v, "xvda: info: connected to domain"), "connect not logged with the device name");

	printf("# %s: random reads and writes, verified\n", engine);
	good_path(&f, &c, full ? 200 : 60, 7 + devid);
	printf("# %s: flush\n", engine);
	test_flush(&f, &c);
	if (full) {
		printf("# malformed requests\n");
		good_reads = exp_invalid = exp_unsupported = 0;
		/* first: the core logs only the first 32 refusals of a
		 * connection, and these checks read the log */
		printf("# %s: indirect descriptors, good and hostile\n", engine);
		ind_good = 0;
		test_indirect(&f, &c, 256);
		test_malformed(&f);
		c.reads += good_reads;
		c.writes += 1; /* from the read-only grant */
		invalid = exp_invalid;
		unsupported = exp_unsupported;
	}
	printf("# %s: stats\n", engine);
	unsigned long r, w, fl, inv, uns, infl;
	char paused[16] = "";
	int err = stats(&v, &r, &w, &fl, &inv, &uns, &infl, paused, sizeof(paused));
	CHECK(err == 0, "tapctl stats did not parse (or latency counts disagree): %d", err);
	CHECK(w == c.writes && fl == c.flushes && inv == invalid && uns == unsupported && infl == 0 &&
	      !strcmp(paused, "false"),
	      "stats: writes %lu/%lu flushes %lu/%lu invalid %lu/%lu unsupported %lu/%lu in flight %lu", w,
	      c.writes, fl, c.flushes, inv, invalid, uns, unsupported, infl);
	CHECK(r == c.reads, "stats: reads %lu, expected %lu", r, c.reads);
	if (full) {
		char so[2048];
		unsigned long ni = 0, mi = 0;
		const char *q;
		CHECK(tapctl(&v, "stats", so, sizeof(so)) == 0, "tapctl stats");
		q = strstr(so, "\"indirect\":{\"max_segments\":");
		CHECK(q && sscanf(q, "\"indirect\":{\"max_segments\":%lu,\"requests\":%lu", &mi, &ni) == 2 &&
		      mi == 256 && ni == ind_good, "stats: indirect %lu/%lu requests, limit %lu: %s", ni, ind_good,
		      mi, so);
	}
	CHECK(tapctl(&v, "list", out, sizeof(out)) == 0 && strstr(out, "xvda connected"), "tapctl list: %s", out);

	printf("# %s: pause/unpause\n", engine);
	test_pause(&f);

	if (full) {
		printf("# frontend close and reconnect\n");
		fe_state(&f, 5);
		CHECK(be_state_wait(&f, 1u << 5) == 5, "frontend Closing: backend not Closing");
		fe_state(&f, 6);
		CHECK(be_state_wait(&f, 1u << 6) == 6, "frontend Closed: backend not Closed");
		CHECK(fe_ring_free(&f) == 0, "ring still mapped after Closed");
		fe_state(&f, 1);
		CHECK(fe_connect(&f, 0, NULL) == 4, "reconnect with a 1-page ring and no protocol key");
		check_still_serving(&f, "reconnect");

		printf("# bad xenstore keys\n");
		fe_state(&f, 6);
		CHECK(be_state_wait(&f, 1u << 6) == 6, "not Closed");
		CHECK(fe_ring_free(&f) == 0, "ring still mapped");
		fe_state(&f, 1);
		CHECK(be_state_wait(&f, 1u << 2) == 2, "not InitWait");
		fe_ring_new(&f, 0);
		test_bad_keys(&f);
		CHECK(fe_connect(&f, 4, "x86_64-abi") == 4, "good keys after bad ones: no connection");
		check_still_serving(&f, "bad keys");

		printf("# producer index overrun\n");
		test_overrun(&f);

		printf("# tapdisk restart while the frontend is Connected\n");
		kill(v.pid, SIGKILL);
		CHECK(tapdisk_wait(&v, TMO) == 128 + SIGKILL, "tapdisk not killed");
		snprintf(p, sizeof(p), "%s/state", v.be);
		xst_write(xs0, p, "1"); /* as a supervisor would before restarting */
		tapdisk_start(&v, engine);
		CHECK(be_state_wait(&f, 1u << 2) == 2, "restarted tapdisk not in InitWait");
		CHECK(log_has(&v, "predecessor died"), "stale frontend not logged");
		/* the dead tapdisk's mappings were released by xensim */
		CHECK(fe_ring_free(&f) == 0, "old ring still mapped");
		fe_ring_new(&f, 1);
		fe_write_keys(&f, "x86_64-abi");
		fe_state(&f, 3);
		CHECK(be_state_wait(&f, 1u << 4) == 4, "no connection after restart");
		fe_state(&f, 4);
		check_still_serving(&f, "restart");
	}

	printf("# %s: toolstack detach\n", engine);
	snprintf(p, sizeof(p), "%s/online", v.be);
	xst_write(xs0, p, "0");
	snprintf(p, sizeof(p), "%s/state", v.be);
	xst_write(xs0, p, "5");
	CHECK(be_state_wait(&f, 1u << 5 | 1u << 6) >= 5, "detach: backend not closing");
	fe_state(&f, 6);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after detach");
	CHECK(xst_read_int(xs0, p) == 6, "backend state not Closed after detach");
	CHECK(log_has(&v, "detached"), "detach not logged");
	CHECK(fe_ring_free(&f) == 0, "ring still mapped after detach");
	CHECK(access(v.sock, F_OK) != 0, "control socket left behind");
	close(v.img_fd);
}

/* Read-only VBD, x86_32 protocol, destroy through tapctl. */
/* --bench: 44 KiB reads (11 mapped segments each), 8 in flight: what a
 * request costs with one batched map + unmap per request. */
static void bench(const char *engine)
{
	struct vbd v;
	struct fe f;
	struct pvio_blkif_request rq[8];
	struct pvio_blkif_response rs[8];
	const int total = 4000;
	long long t0;

	memset(&f, 0, sizeof(f));
	vbd_create(&v, 51760, 0, "xvdd");
	f.v = &v;
	fe_pages(&f);
	tapdisk_start(&v, engine);
	CHECK(fe_connect(&f, 0, NULL) == 4, "bench: no connection");
	t0 = xst_now_ms();
	for (int done = 0; done < total; done += 8) {
		for (int i = 0; i < 8; i++)
			rq[i] = mkreq(PVIO_BLKIF_OP_READ, (uint64_t)((done + i) % 180) * 88, 11,
				      &f.data[(i % 2) * 11], 0, 7);
		fe_send(&f, rq, 8);
		CHECK(fe_collect(&f, rs, 8, TMO) == 8, "bench responses");
	}
	double s = (double)(xst_now_ms() - t0) / 1000.0;
	printf("# bench %s: %d reads of 44 KiB in %.3f s: %.0f req/s, %.1f MiB/s\n", engine, total, s,
	       total / s, total * 44.0 / 1024 / s);
	fe_state(&f, 6);
	tapctl(&v, "destroy", (char[256]){0}, 256);
	tapdisk_wait(&v, TMO);
	close(v.img_fd);
}


/* Collect up to @want x86_32-layout responses from @fr (deadline TMO);
 * returns how many came. */
static int responses32(struct pvio_ring_front *fr, struct pvio_blkif_x86_32_response *rs, int want)
{
	long long end = xst_now_ms() + TMO;
	int got = 0;

	while (got < want && xst_now_ms() < end) {
		int n = pvio_ring_front_poll_responses(fr);
		if (n == 0)
			n = pvio_ring_front_final_check(fr);
		if (n > 0) {
			while (got < want && pvio_ring_blkif_x86_32_copy_response(fr, &rs[got]) == 1)
				got++;
			continue;
		}
		pvio_evtchn_wait(gev, (int)(end - xst_now_ms()));
	}
	return got;
}
static void run_readonly(const char *engine, uint32_t devid)
{
	struct vbd v;
	struct fe f;
	char p[256], out[512];

	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 1, "xvdb");
	f.v = &v;
	fe_pages(&f);
	tapdisk_start(&v, engine);
	printf("# read-only VBD\n");
	CHECK(fe_connect(&f, 0, "x86_64-abi") == 4, "no connection");
	snprintf(p, sizeof(p), "%s/info", v.be);
	CHECK(xst_read_int(xsg, p) == PVIO_VDISK_READONLY, "info is not VDISK_READONLY");
	expect_status(&f, mkreq(PVIO_BLKIF_OP_WRITE, 0, 1, f.data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "write to a read-only VBD");
	expect_status(&f, mkreq(PVIO_BLKIF_OP_FLUSH_DISKCACHE, 0, 1, f.data, 0, 7), PVIO_BLKIF_RSP_ERROR,
		      "flush with data to a read-only VBD");
	/* read-back: the image is untouched and reads work */
	struct pvio_blkif_request rq = mkreq(PVIO_BLKIF_OP_READ, 0, 1, f.data, 0, 7);
	struct pvio_blkif_response rs = fe_do(&f, &rq);
	uint8_t buf[4096];
	CHECK(rs.status == 0 && pread(v.img_fd, buf, 4096, 0) == 4096 && !memcmp(buf, f.data[0].va, 4096),
	      "read on a read-only VBD");

	printf("# x86_32-abi ring\n");
	fe_state(&f, 6);
	CHECK(be_state_wait(&f, 1u << 6) == 6, "not Closed");
	CHECK(fe_ring_free(&f) == 0, "ring still mapped");
	fe_state(&f, 1);
	CHECK(be_state_wait(&f, 1u << 2) == 2, "not InitWait");
	fe_ring_new(&f, 0);
	struct pvio_ring_front fr32;
	CHECK(pvio_ring_blkif_x86_32_front_init(&fr32, f.ring_va, PVIO_RING_BYTES(0)) > 0, "init32");
	fe_write_keys(&f, "x86_32-abi");
	fe_state(&f, 3);
	CHECK(be_state_wait(&f, 1u << 4) == 4, "x86_32-abi not connected");
	fe_state(&f, 4);
	struct pvio_blkif_x86_32_request r32;
	memset(&r32, 0, sizeof(r32));
	r32.operation = PVIO_BLKIF_OP_READ;
	r32.nr_segments = 2;
	r32.id = 0x123456789abcull;
	r32.sector_number = 64;
	for (int i = 0; i < 2; i++) {
		r32.seg[i].gref = f.data[i].ref;
		r32.seg[i].first_sect = 0;
		r32.seg[i].last_sect = 7;
	}
	pvio_ring_blkif_x86_32_put_request(&fr32, &r32);
	r32.id++;
	r32.nr_segments = 12;
	pvio_ring_blkif_x86_32_put_request(&fr32, &r32);
	if (pvio_ring_front_push_requests(&fr32))
		pvio_evtchn_notify(gev, (evtchn_port_t)f.port);
	struct pvio_blkif_x86_32_response rs32[2];
	int got = responses32(&fr32, rs32, 2);
	/* the refusal is answered at once, the read when its I/O is done */
	int ok_read = 0, ok_bad = 0;
	for (int i = 0; i < got; i++) {
		ok_read |= rs32[i].id == 0x123456789abcull && rs32[i].status == 0;
		ok_bad |= rs32[i].id == 0x123456789abdull && rs32[i].status == PVIO_BLKIF_RSP_ERROR;
	}
	CHECK(got == 2 && ok_read && ok_bad, "x86_32 responses: got %d (read ok %d, bad refused %d)", got,
	      ok_read, ok_bad);
	uint8_t img[8192];
	CHECK(pread(v.img_fd, img, 8192, 64 * 512) == 8192 && !memcmp(img, f.data[0].va, 4096) &&
	      !memcmp(img + 4096, f.data[1].va, 4096), "x86_32 read data");

	/* indirect in the x86_32 layout: a read of 40 segments is served, a
	 * write to the read-only disk refused; responses echo indirect_op */
	struct pvio_blkif_x86_32_request_indirect i32;
	struct pvio_blkif_request nat;
	fe_big_pages(&f);
	for (int i = 0; i < 40; i++)
		memset(f.big[i].va, 0x77, 4096);
	nat = mkind(PVIO_BLKIF_OP_READ, 256, 40, f.ind, f.big, 0, 7);
	memset(&i32, 0, sizeof(i32));
	i32.operation = PVIO_BLKIF_OP_INDIRECT;
	i32.indirect_op = PVIO_BLKIF_OP_READ;
	i32.nr_segments = 40;
	i32.id = 0x5555aaaa0001ull;
	i32.sector_number = 256;
	i32.indirect_grefs[0] = ((struct pvio_blkif_request_indirect *)&nat)->indirect_grefs[0];
	memset(&r32, 0, sizeof(r32));
	memcpy(&r32, &i32, sizeof(i32));
	pvio_ring_blkif_x86_32_put_request(&fr32, &r32);
	i32.indirect_op = PVIO_BLKIF_OP_WRITE;
	i32.id++;
	memset(&r32, 0, sizeof(r32));
	memcpy(&r32, &i32, sizeof(i32));
	pvio_ring_blkif_x86_32_put_request(&fr32, &r32);
	if (pvio_ring_front_push_requests(&fr32))
		pvio_evtchn_notify(gev, (evtchn_port_t)f.port);
	got = responses32(&fr32, rs32, 2);
	ok_read = ok_bad = 0;
	for (int i = 0; i < got; i++) {
		ok_read |= rs32[i].id == 0x5555aaaa0001ull && rs32[i].status == 0 &&
			   rs32[i].operation == PVIO_BLKIF_OP_READ;
		ok_bad |= rs32[i].id == 0x5555aaaa0002ull && rs32[i].status == PVIO_BLKIF_RSP_ERROR &&
			  rs32[i].operation == PVIO_BLKIF_OP_WRITE;
	}
	CHECK(got == 2 && ok_read && ok_bad, "x86_32 indirect: got %d (read ok %d, write refused %d)", got,
	      ok_read, ok_bad);
	CHECK(image_matches(&v, 256, f.big, 40, 0, 7), "x86_32 indirect read data");

	printf("# tapctl destroy\n");
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0 && strstr(out, "\"ok\":true"), "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	snprintf(p, sizeof(p), "%s/state", v.be);
	CHECK(xst_read_int(xs0, p) == 6, "state not Closed after destroy");
	CHECK(fe_ring_free(&f) == 0, "ring still mapped after destroy");
	close(v.img_fd);
}

/* Persistent grants: data pages are mapped once and then reused; a grant
 * used by a request in flight is refused to a second one; after the
 * frontend closes, the backend holds no mapping (every grant ends). */
static void run_persistent(const char *engine, uint32_t devid)
{
	struct vbd v;
	struct fe f;
	struct counts c = { 0 };
	char p[256], out[2048];
	unsigned long maps = 0, hits = 0;

	memset(&f, 0, sizeof(f));
	vbd_create(&v, devid, 0, "xvdd");
	snprintf(p, sizeof(p), "%s/discard-enable", v.be);
	xst_write(xs0, p, "1");  /* this VBD also offers discard */
	f.v = &v;
	fe_pages(&f);
	tapdisk_start(&v, engine);
	printf("# %s: persistent grants\n", engine);
	CHECK(be_state_wait(&f, 1u << 2) == 2, "no InitWait");
	snprintf(p, sizeof(p), "%s/feature-persistent", v.be);
	CHECK(xst_read_int(xsg, p) == 1, "feature-persistent not offered");
	fpath(&f, p, sizeof(p), "feature-persistent");
	xst_write(xsg, p, "1");
	CHECK(fe_connect(&f, 0, "x86_64-abi") == 4, "no connection");
	CHECK(log_has(&v, "persistent grants on"), "persistent grants not negotiated");
	good_path(&f, &c, 60, 31);

	/* two requests on the same page, pushed together: the second is refused */
	struct pvio_blkif_request rq[2] = { mkreq(PVIO_BLKIF_OP_READ, 16, 1, f.data, 0, 7),
					    mkreq(PVIO_BLKIF_OP_READ, 24, 1, f.data, 0, 7) };
	struct pvio_blkif_response rs[2];
	int st[2] = { 99, 99 };
	fe_send(&f, rq, 2);
	CHECK(fe_collect(&f, rs, 2, TMO) == 2, "no answers to two requests sharing a grant");
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 2; k++)
			if (rs[i].id == rq[k].id)
				st[k] = rs[i].status;
	CHECK(st[0] == PVIO_BLKIF_RSP_OKAY && st[1] == PVIO_BLKIF_RSP_ERROR,
	      "a grant in use by a request in flight: statuses %d/%d, want 0/-1", st[0], st[1]);
	CHECK(log_has(&v, "persistent grant already in use"), "refusal not logged");
	check_still_serving(&f, "a persistent grant already in use");

	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "tapctl stats");
	const char *pg = strstr(out, "\"persistent_grants\":{\"maps\":");
	CHECK(pg && sscanf(pg, "\"persistent_grants\":{\"maps\":%lu,\"hits\":%lu", &maps, &hits) == 2,
	      "no persistent_grants in stats: %s", out);
	CHECK(maps >= 1 && maps <= NDATA && hits > maps,
	      "persistent grants: %lu maps, %lu hits (want each data page mapped once, then hits)", maps, hits);

	/* indirect requests with persistent grants: data pages and the
	 * descriptor page go through the cache, so a second round maps nothing */
	printf("# %s: indirect descriptors with persistent grants\n", engine);
	fe_big_pages(&f);
	indirect_rw(&f, NULL, 1024, 64, 0, 7, 61, "persistent, round 1");
	unsigned long maps1 = 0, hits1 = 0, maps2 = 0, hits2 = 0;
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "tapctl stats");
	pg = strstr(out, "\"persistent_grants\":{\"maps\":");
	CHECK(pg && sscanf(pg, "\"persistent_grants\":{\"maps\":%lu,\"hits\":%lu", &maps1, &hits1) == 2 &&
	      maps1 >= maps + 64 + 1, "indirect round 1 did not map through the cache: %s", out);
	indirect_rw(&f, NULL, 2048, 64, 0, 7, 62, "persistent, round 2");
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "tapctl stats");
	pg = strstr(out, "\"persistent_grants\":{\"maps\":");
	CHECK(pg && sscanf(pg, "\"persistent_grants\":{\"maps\":%lu,\"hits\":%lu", &maps2, &hits2) == 2 &&
	      maps2 == maps1 && hits2 >= hits1 + 2 * 65,
	      "indirect round 2: maps %lu -> %lu, hits %lu -> %lu (want no new map, 2 * 65 hits)", maps1, maps2,
	      hits1, hits2);
	/* the cache is bounded: 5 rounds of 256 fresh refs (the same pages
	 * granted anew) overflow its 1056 entries; the least recently used
	 * go, at most 1056 pages stay mapped (pages of a batch whose other
	 * entries are still cached included), the data stays right, and the
	 * last round's refs are then served without a map */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 256; i++)
			if (pvio_gnt_alloc_refs(gd, 1, &f.big[i].ref) ||
			    pvio_gnt_grant_access(gd, f.big[i].ref, 0, f.big[i].gfn, 0))
				xst_die("grant anew");
		indirect_rw(&f, NULL, 4096 + (uint64_t)round * 2048, 256, 0, 7, 70 + (uint32_t)round,
			    "persistent cache overflow");
	}
	unsigned long maps3 = 0, hits3 = 0, ev3 = 0, mapped3 = 0, maps4 = 0, hits4 = 0;
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "tapctl stats");
	pg = strstr(out, "\"persistent_grants\":{\"maps\":");
	CHECK(pg && sscanf(pg, "\"persistent_grants\":{\"maps\":%lu,\"hits\":%lu,\"evictions\":%lu,\"mapped\":%lu",
			   &maps3, &hits3, &ev3, &mapped3) == 4,
	      "no persistent_grants in stats: %s", out);
	CHECK(maps3 >= maps2 + 5 * 256 && ev3 > 0 && mapped3 <= 1056,
	      "1280 fresh refs: %lu maps (from %lu), %lu evictions, %lu pages mapped (want <= 1056)", maps3, maps2,
	      ev3, mapped3);
	indirect_rw(&f, NULL, 4096, 256, 0, 7, 80, "persistent cache, the last refs again");
	CHECK(tapctl(&v, "stats", out, sizeof(out)) == 0, "tapctl stats");
	pg = strstr(out, "\"persistent_grants\":{\"maps\":");
	CHECK(pg && sscanf(pg, "\"persistent_grants\":{\"maps\":%lu,\"hits\":%lu", &maps4, &hits4) == 2 &&
	      maps4 == maps3 && hits4 >= hits3 + 2 * 256,
	      "the last refs again: maps %lu -> %lu, hits %lu -> %lu (want no map)", maps3, maps4, hits3, hits4);

	/* a descriptor page that is a data page of a request in flight: refused */
	rq[0] = mkreq(PVIO_BLKIF_OP_READ, 16, 1, f.data, 0, 7);
	rq[1] = mkind(PVIO_BLKIF_OP_READ, 24, 12, f.ind, f.big, 0, 7);
	((struct pvio_blkif_request_indirect *)&rq[1])->indirect_grefs[0] = f.data[0].ref;
	st[0] = st[1] = 99;
	fe_send(&f, rq, 2);
	CHECK(fe_collect(&f, rs, 2, TMO) == 2, "no answers to a request and an indirect page sharing a grant");
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 2; k++)
			if (rs[i].id == rq[k].id)
				st[k] = rs[i].status;
	CHECK(st[0] == PVIO_BLKIF_RSP_OKAY && st[1] == PVIO_BLKIF_RSP_ERROR,
	      "descriptor page in use by a request in flight: statuses %d/%d, want 0/-1", st[0], st[1]);
	CHECK(log_has(&v, "is a persistent grant in use"), "refusal not logged");
	/* a read-only descriptor page cannot be cached read-write: mapped per request */
	rq[0] = mkind(PVIO_BLKIF_OP_READ, 0, 12, &f.ro, f.big, 0, 7);
	rs[0] = fe_do(&f, &rq[0]);
	CHECK(rs[0].status == 0 && image_matches(&v, 0, f.big, 12, 0, 7),
	      "indirect read through a read-only descriptor page with persistent grants: %d", rs[0].status);
	check_still_serving(&f, "indirect with persistent grants");

	/* discard: advertised, validated, and the range then reads as zeros */
	printf("# %s: discard\n", engine);
	snprintf(p, sizeof(p), "%s/feature-discard", v.be);
	CHECK(xst_read_int(xsg, p) == 1, "feature-discard not offered with discard-enable 1");
	struct pvio_blkif_request d = mkreq(PVIO_BLKIF_OP_DISCARD, 64, 0, f.data, 0, 0);
	uint64_t n = 16;  /* 8 KiB at sector 64 */
	memcpy(&d.seg[0], &n, sizeof(n));
	struct pvio_blkif_response dr = fe_do(&f, &d);
	CHECK(dr.id == d.id && dr.status == PVIO_BLKIF_RSP_OKAY && dr.operation == PVIO_BLKIF_OP_DISCARD,
	      "discard: status %d op %u", dr.status, dr.operation);
	uint8_t zb[8192], zero[8192] = { 0 };
	CHECK(pread(v.img_fd, zb, sizeof(zb), 64 * 512) == (ssize_t)sizeof(zb) && !memcmp(zb, zero, sizeof(zb)),
	      "discarded range of the image is not zero");
	d = mkreq(PVIO_BLKIF_OP_DISCARD, IMG_SECTORS - 8, 0, f.data, 0, 0);
	memcpy(&d.seg[0], &n, sizeof(n));
	dr = fe_do(&f, &d);
	CHECK(dr.id == d.id && dr.status == PVIO_BLKIF_RSP_ERROR, "discard past the end: status %d", dr.status);
	d = mkreq(PVIO_BLKIF_OP_DISCARD, 0, 0, f.data, 0, 0);
	n = UINT64_MAX;  /* wraps */
	memcpy(&d.seg[0], &n, sizeof(n));
	dr = fe_do(&f, &d);
	CHECK(dr.id == d.id && dr.status == PVIO_BLKIF_RSP_ERROR, "discard with a wrapping length: status %d",
	      dr.status);
	d = mkreq(PVIO_BLKIF_OP_DISCARD, 0, 0, f.data, 0, 0);
	d.nr_segments = PVIO_BLKIF_DISCARD_SECURE;  /* the flag byte */
	n = 8;
	memcpy(&d.seg[0], &n, sizeof(n));
	dr = fe_do(&f, &d);
	CHECK(dr.id == d.id && dr.status == PVIO_BLKIF_RSP_EOPNOTSUPP, "secure discard not advertised: status %d",
	      dr.status);
	check_still_serving(&f, "discards");

	/* close: the cache is unmapped, so every data page's grant can end */
	fe_state(&f, 5);
	CHECK(be_state_wait(&f, 1u << 5 | 1u << 6) >= 5, "backend did not follow Closing");
	fe_state(&f, 6);
	CHECK(be_state_wait(&f, 1u << 6) == 6, "backend not Closed");
	for (int i = 0; i < NDATA; i++)
		CHECK(pvio_gnt_end_access(gd, f.data[i].ref) == 0,
		      "data page %d still mapped by the backend after close", i);
	for (int i = 0; i < NBIG; i++)
		CHECK(pvio_gnt_end_access(gd, f.big[i].ref) == 0,
		      "indirect data page %d still mapped by the backend after close", i);
	CHECK(pvio_gnt_end_access(gd, f.ind[0].ref) == 0, "descriptor page still mapped after close");
	CHECK(tapctl(&v, "destroy", out, sizeof(out)) == 0, "destroy: %s", out);
	CHECK(tapdisk_wait(&v, TMO) == 0, "tapdisk did not exit 0 after destroy");
	close(v.img_fd);
}

/* vhd: params naming a file that is not a VHD (the raw image) are refused
 * at start with a clear log, exit 1.  Served chains: tests/block/vhd-chain.sh. */
static void run_vhd_not_vhd(uint32_t devid)
{
	struct vbd v;
	char p[256];

	vbd_create(&v, devid, 0, "xvdc");
	snprintf(p, sizeof(p), "%s/params", v.be);
	xst_write(xs0, p, "vhd:%s", v.image);
	tapdisk_start(&v, "io_uring");
	CHECK(tapdisk_wait(&v, TMO) == 1, "tapdisk did not exit 1 on vhd params naming a raw file");
	CHECK(log_has(&v, "cannot open VHD chain"), "refusal of a non-VHD file not logged");
	close(v.img_fd);
}

static void cleanup(void)
{
	char cmd[512];

	if (!dir[0])
		return;
	for (int i = 0; i < nchildren; i++)
		if (kill(children[i], 0) == 0 && waitpid(children[i], NULL, WNOHANG) == 0) {
			fprintf(stderr, "killing leftover tapdisk %d\n", (int)children[i]);
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
		}
	snprintf(cmd, sizeof(cmd), "XENSIM_DIR='%s' '%s' stop >/dev/null 2>&1", dir, xensim_bin);
	if (system(cmd) != 0)
		fprintf(stderr, "xensim stop failed\n");
	if (failures)
		fprintf(stderr, "logs kept in %s\n", dir);
	else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

int main(int argc, char **argv)
{
	const char *engine = "io_uring";
	int quick = 0, do_bench = 0;
	char cmd[512], sock[256], id[16];
	FILE *p;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--engine") && i + 1 < argc)
			engine = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--bench"))
			do_bench = 1;
		else if (!strcmp(argv[i], "--help")) {
			printf("Usage: test-blkback [--engine io_uring|libaio] [--quick|--bench]\n"
			       "A hostile blkif frontend against tapdisk under a private xensim.\n"
			       "--quick runs the good path only. Needs XENSIM, TAPDISK, TAPCTL.\n");
			return 0;
		}
	}
	xensim_bin = getenv("XENSIM");
	tapdisk_bin = getenv("TAPDISK");
	tapctl_bin = getenv("TAPCTL");
	if (!xensim_bin || !tapdisk_bin || !tapctl_bin)
		xst_die("XENSIM, TAPDISK and TAPCTL must be set");
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/pvio-bb-XXXXXX");
	if (!mkdtemp(dir))
		xst_die("mkdtemp");
	atexit(cleanup);
	setenv("XENSIM_DIR", dir, 1);
	unsetenv("XENSIM_DOMID");
	unsetenv("PVIO_CTL_DIR");
	snprintf(ctl_dir, sizeof(ctl_dir), "%s/tapdisk", dir);
	snprintf(cmd, sizeof(cmd), "'%s' start >/dev/null", xensim_bin);
	if (system(cmd) != 0)
		xst_die("xensim start");
	snprintf(cmd, sizeof(cmd), "'%s' domain create bbguest --memory 64", xensim_bin);
	p = popen(cmd, "r");
	if (!p || !fgets(id, sizeof(id), p) || pclose(p) != 0)
		xst_die("domain create");
	dom = (uint32_t)atoi(id);

	/* dom0's xenstore connection: the toolstack */
	snprintf(sock, sizeof(sock), "%s/xenstored/socket", dir);
	setenv("XENSTORED_PATH", sock, 1);
	xs0 = xs_open(0);
	if (!xs0)
		xst_die("xs_open dom0");
	/* the guest's: its own connection, RAM, grants, event channels */
	snprintf(sock, sizeof(sock), "%s/xenstored/dom%u.sock", dir, dom);
	setenv("XENSTORED_PATH", sock, 1);
	snprintf(id, sizeof(id), "%u", dom);
	setenv("XENSIM_DOMID", id, 1);
	xsg = xs_open(0);
	if (!xsg || xsim_domain_open(&gd) || pvio_evtchn_open(&gev))
		xst_die("guest handles");
	/* children (xensim run 0 -- tapdisk) set their own */
	unsetenv("XENSIM_DOMID");

	if (do_bench) {
		bench(engine);
	} else if (quick) {
		run_vbd(engine, 51712, 0);
	} else {
		run_vbd(engine, 51712, 1);
		run_readonly(engine, 51728);
		run_persistent(engine, 51760);
		run_vhd_not_vhd(51744);
		run_indirect_off(engine, 51776);
		run_sector4k(engine, 51792);
		run_bad_options(51808);
		run_multiqueue(engine, 51824);
		run_barrier(engine, 51840);
	}

	pvio_evtchn_close(gev);
	xsim_domain_close(gd);
	xs_close(xsg);
	xs_close(xs0);
	printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "PASS", checks, failures);
	return failures ? 1 : 0;
}
