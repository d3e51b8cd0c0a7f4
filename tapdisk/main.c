/* SPDX-License-Identifier: MIT */
/*
 * tapdisk: serves one VBD (blktap3 style: straight from the frontend's ring,
 * no kernel blkback).  Reads its backend dir, opens the image, starts an
 * I/O engine, a control socket and the blkback core on one libev loop, and
 * exits 0 once the device is detached (1 on a fatal error, logged).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenstore.h>

#include "pvio/blkif_wire.h"
#include "tapdisk.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tapdisk --backend B [--engine io_uring|libaio] [--ctl SOCKET] [--nbd SOCKET|auto]\n"
		"               [--log FILE]\n"
		"Serve the virtual block device whose xenstore backend dir is B\n"
		"(/local/domain/0/backend/vbd3/DOMID/DEVID or .../backend/vbd/...): run the\n"
		"blkif handshake with the guest's frontend, and answer its requests from the\n"
		"image named by B/params (aio:/path, raw:/path or /path; vhd:/leaf.vhd serves\n"
		"the VHD chain that ends in leaf.vhd; read-only if B/mode is r).\n"
		"  --engine E   I/O engine: io_uring (default; the image as a registered\n"
		"               file), io_uring:nofixed (without), libaio, or null (no I/O:\n"
		"               requests complete at once; transport benchmarks only)\n"
		"               or faulty:io_uring|libaio[:SPEC] (fault injection for tests;\n"
		"               SPEC every=N,after=K,count=M,op=read|write|flush|data|all,\n"
		"               err=EIO|ENOSPC|ENOMEM,delay=MS, see tapdisk/engine_faulty.c)\n"
		"  --ctl PATH   control socket (default $PVIO_CTL_DIR, else $XENSIM_DIR/tapdisk,\n"
		"               else /run/pvio; then tapdisk-DOMID-DEVID.sock); see tapctl\n"
		"  --nbd PATH   also export the disk over NBD (fixed newstyle, structured\n"
		"               replies, base:allocation) on the unix socket PATH, mode 0600,\n"
		"               so dom0 tools read and write it while the guest runs:\n"
		"               qemu-img convert -f raw 'nbd+unix:///?socket=PATH' out.raw;\n"
		"               'auto': beside the control socket, tapdisk-DOMID-DEVID.nbd\n"
		"               (pvio-tapback's default; if that fails, tapdisk serves the\n"
		"               guest without it).  Default: no NBD export\n"
		"  --log FILE   append the log to FILE instead of stderr\n"
		"  --no-persistent      do not offer persistent grants (map per request)\n"
		"  --max-ring-order N   largest ring-page-order offered, 0..4 (default 4)\n"
		"  --max-indirect-segments N  feature-max-indirect-segments offered, 0..256\n"
		"               (default 256: a 1 MiB request in one ring slot; 0: no indirect\n"
		"               descriptors, BLKIF_OP_INDIRECT is refused)\n"
		"  --max-queues N       multi-queue-max-queues offered, 0..%d (default: the\n"
		"               number of online CPUs, as Linux blkback; 0: the key is not\n"
		"               published and only the single-ring keys are read).  All\n"
		"               queues are served by this one thread, without locks\n"
		"  --no-barrier         do not offer feature-barrier (WRITE_BARRIER refused)\n"
		"  --poll-us N          adaptive ring polling: after a round that took requests,\n"
		"               keep the event channel masked and poll the ring until it has\n"
		"               been empty for N microseconds, 0..%d (default 0: off; costs\n"
		"               CPU while the ring is busy, saves notifications and wake-ups)\n"
		"  --no-flush-cache     do not offer feature-flush-cache (frontends then flush\n"
		"               with barriers; for tests)\n"
		"  --sector-size 512|4096  logical sector size offered (default 512); with\n"
		"               4096, requests not aligned to 4096 bytes are refused and an\n"
		"               image whose size is not a multiple of 4096 is not served\n"
		"Exits 0 after a clean detach (toolstack or `tapctl destroy`), 1 on a fatal error.\n",
		PVIO_BLKBACK_MAX_QUEUES, PVIO_BLKBACK_MAX_POLL_US);
}

static char *xs_get(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[512];
	unsigned int len;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_read(xs, XBT_NULL, path, &len);
}

/* B must end in /DOMID/DEVID. */
static int parse_backend(const char *b, uint32_t *domid, uint32_t *devid)
{
	const char *p = strrchr(b, '/'), *q;
	char *end;
	unsigned long v;

	if (b[0] != '/' || !p || p == b || strlen(b) > 200)
		return -EINVAL;
	errno = 0;
	v = strtoul(p + 1, &end, 10);
	if (errno || *end || p[1] < '0' || p[1] > '9' || v > UINT32_MAX)
		return -EINVAL;
	*devid = (uint32_t)v;
	for (q = p - 1; q > b && *q != '/'; q--)
		;
	if (*q != '/' || q[1] < '0' || q[1] > '9')
		return -EINVAL;
	v = strtoul(q + 1, &end, 10);
	if (end != p || v > 0x7fef)
		return -EINVAL;
	*domid = (uint32_t)v;
	return 0;
}

/* A numeric option's value: decimal digits only (no sign, no spaces, not
 * empty), at most @max.  On a bad value says which option and what it
 * takes.  0 or -EINVAL. */
static int parse_uint(const char *opt, const char *s, unsigned long max, unsigned *out)
{
	unsigned long v;
	char *end;
	int saved = errno;

	errno = 0;
	v = strtoul(s, &end, 10);
	/* strtoul takes leading spaces and a sign ("-1" wraps around): only
	 * a leading digit rules them out */
	if (s[0] < '0' || s[0] > '9' || *end || errno || v > max || v > UINT_MAX) {
		errno = saved;
		fprintf(stderr, "tapdisk: --%s: '%s' is not a number in 0..%lu\n", opt, s, max);
		return -EINVAL;
	}
	errno = saved;
	*out = (unsigned)v;
	return 0;
}

int td_io_submit(struct td *td, struct td_io *io, enum pvio_blkback_op op, uint64_t off,
		 const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	if (td->drv->submit)
		return td->drv->submit(td, io, op, off, iov, iovcnt);
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return td->eng_ops->queue(td->eng, op, td->img.fd, off, iov, iovcnt, len, io);
}

/* A guest request on its way through the driver: one per ring slot,
 * allocated at start, so the guest's fast path allocates nothing. */
struct td_blkio {
	struct td_io io;
	struct pvio_blkback_req *req;
	struct td_blkio *next_free;
};
static struct td_blkio *blkio_pool, *blkio_free;

static void blkio_done(struct td_io *io, int res)
{
	struct td_blkio *b = (struct td_blkio *)((char *)io - offsetof(struct td_blkio, io));
	struct pvio_blkback_req *req = b->req;

	b->req = NULL;
	b->next_free = blkio_free;
	blkio_free = b;
	pvio_blkback_complete(req, res);
}

static int td_submit(void *ctx, struct pvio_blkback_req *req, enum pvio_blkback_op op,
		     uint64_t off, const struct iovec *iov, int iovcnt)
{
	struct td_blkio *b = blkio_free;
	int err;

	if (!b) { /* cannot happen: one per ring slot */
		td_log(TD_ERR, "more guest requests in flight than ring slots: refusing one");
		return -EBUSY;
	}
	blkio_free = b->next_free;
	b->req = req;
	err = td_io_submit(ctx, &b->io, op, off, iov, iovcnt);
	if (err) {
		b->req = NULL;
		b->next_free = blkio_free;
		blkio_free = b;
	}
	return err;
}

void td_kick(void *ctx)
{
	struct td *td = ctx;

	td->eng_ops->submit(td->eng);
}

static const struct pvio_blkback_io_ops td_io_ops = {
	.submit = td_submit,
	.kick = td_kick,
};

/* The engine's completions carry no context: the one driver of this
 * process decides what a tag is. */
static const struct td_driver_ops *io_drv;

static void io_done(void *tag, int res)
{
	if (io_drv->io_done) {
		io_drv->io_done(tag, res);
	} else {
		struct td_io *io = tag;
		io->done(io, res);
	}
}

static void bb_log_cb(void *arg, enum pvio_blkback_log_level lvl, const char *msg)
{
	(void)arg;
	td_log((int)lvl, "%s", msg);
}

static void bb_event_cb(void *arg, enum pvio_blkback_event ev)
{
	struct td *td = arg;

	td_ctl_event(td->ctl, ev);
	if (ev == PVIO_BLKBACK_EV_DETACHED) {
		td->detached = 1;
		ev_break(td->loop, EVBREAK_ALL);
	}
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct td *td = w->data;

	(void)revents;
	td_log(TD_INFO, "signal %d: closing down", w->signum);
	if (td->bb)
		pvio_blkback_shutdown(td->bb, "signal");
	else
		ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "engine", required_argument, NULL, 'e' },
		{ "ctl", required_argument, NULL, 'c' },
		{ "nbd", required_argument, NULL, 'n' },
		{ "log", required_argument, NULL, 'l' },
		{ "no-persistent", no_argument, NULL, 'P' },
		{ "max-ring-order", required_argument, NULL, 'O' },
		{ "max-indirect-segments", required_argument, NULL, 'I' },
		{ "sector-size", required_argument, NULL, 'S' },
		{ "max-queues", required_argument, NULL, 'Q' },
		{ "no-barrier", no_argument, NULL, 'B' },
		{ "poll-us", required_argument, NULL, 'U' },
		{ "no-flush-cache", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *engine = "io_uring", *ctl = NULL, *logf = NULL, *path, *nbd = NULL;
	struct td td = { .exit_code = 1 };
	struct xs_handle *xs;
	char *params, *mode, *dev, ctlpath[4200], nbdpath[4200];
	ev_signal sterm, sint;
	int o, err, readonly, no_persistent = 0, no_barrier = 0, no_flush = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned max_queues = ncpu < 1 ? 1u : ncpu > PVIO_BLKBACK_MAX_QUEUES ? PVIO_BLKBACK_MAX_QUEUES
									 : (unsigned)ncpu;
	unsigned max_order = PVIO_RING_MAX_ORDER;
	unsigned max_indirect = PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS, sector_size = 512, poll_us = 0;

	td.img.fd = -1;
	while ((o = getopt_long(argc, argv, "b:e:c:l:h", opts, NULL)) != -1) {
		switch (o) {
		case 'b': td.backend = optarg; break;
		case 'e': engine = optarg; break;
		case 'c': ctl = optarg; break;
		case 'n': nbd = optarg; break;
		case 'l': logf = optarg; break;
		case 'P': no_persistent = 1; break;
		case 'O':
			if (parse_uint("max-ring-order", optarg, PVIO_RING_MAX_ORDER, &max_order))
				return 1;
			break;
		case 'I':
			if (parse_uint("max-indirect-segments", optarg,
				       PVIO_BLKBACK_MAX_INDIRECT_SEGMENTS, &max_indirect))
				return 1;
			break;
		case 'Q':
			if (parse_uint("max-queues", optarg, PVIO_BLKBACK_MAX_QUEUES, &max_queues))
				return 1;
			break;
		case 'B': no_barrier = 1; break;
		case 'U':
			if (parse_uint("poll-us", optarg, PVIO_BLKBACK_MAX_POLL_US, &poll_us))
				return 1;
			break;
		case 'F': no_flush = 1; break;
		case 'S':
			if (strcmp(optarg, "512") && strcmp(optarg, "4096")) {
				fprintf(stderr, "tapdisk: --sector-size takes 512 or 4096\n");
				return 1;
			}
			sector_size = (unsigned)atoi(optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc || !td.backend) {
		usage(stderr);
		return 1;
	}
	err = td_log_open(logf);
	if (err)
		td_log(TD_WARN, "cannot open log %s: %s: logging to stderr", logf, strerror(-err));
	if (!strcmp(engine, "io_uring"))
		td.eng_ops = &td_engine_uring;
	else if (!strcmp(engine, "io_uring:nofixed"))
		td.eng_ops = &td_engine_uring_nofixed;
	else if (!strcmp(engine, "libaio"))
		td.eng_ops = &td_engine_aio;
	else if (!strcmp(engine, "null"))
		td.eng_ops = &td_engine_null;
	else if (!strncmp(engine, "faulty:", 7) && td_engine_faulty_setup(engine + 7) == 0)
		td.eng_ops = &td_engine_faulty;
	else {
		td_log(TD_ERR, "unknown engine '%s' (io_uring or libaio)", engine);
		return 1;
	}
	if (parse_backend(td.backend, &td.domid, &td.devid)) {
		td_log(TD_ERR, "backend '%s' does not end in /DOMID/DEVID", td.backend);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	xs = xs_open(0);
	if (!xs) {
		td_log(TD_ERR, "cannot reach xenstore: %s", strerror(errno));
		return 1;
	}
	params = xs_get(xs, td.backend, "params");
	mode = xs_get(xs, td.backend, "mode");
	dev = xs_get(xs, td.backend, "dev");
	xs_close(xs);
	snprintf(td.dev, sizeof(td.dev), "%s", dev ? dev : "");
	if (!td.dev[0])
		snprintf(td.dev, sizeof(td.dev), "vbd-%u-%u", td.domid, td.devid);
	td_log_set_device(td.dev);
	free(dev);
	if (!params) {
		td_log(TD_ERR, "%s/params is missing: no such device", td.backend);
		free(mode);
		return 1;
	}
	snprintf(td.params, sizeof(td.params), "%s", params);
	free(params);
	readonly = mode && mode[0] == 'r';
	if (mode && strcmp(mode, "r") && strcmp(mode, "w"))
		td_log(TD_WARN, "%s/mode '%.20s' is neither r nor w: serving %s", td.backend, mode,
		       readonly ? "read-only" : "read-write");
	free(mode);

	td.drv = td_driver_for(td.params, &path);
	if (!td.drv)
		return 1;
	if (td.drv->open(path, readonly, &td.img))
		return 1;
	if (sector_size > 512 && td.img.size % sector_size) {
		/* its last block could not be addressed by an aligned request */
		td_log(TD_ERR, "image %s: size %llu is not a multiple of the %u-byte logical sector "
		       "(--sector-size): refusing to serve it", path, (unsigned long long)td.img.size,
		       sector_size);
		td.drv->close(&td.img);
		return 1;
	}

	td.loop = ev_default_loop(EVFLAG_AUTO);
	if (!td.loop) {
		td_log(TD_ERR, "cannot start the event loop");
		goto out_img;
	}
	/* Engine slots for every ring entry of the largest ring we offer and
	 * every NBD piece, times the operations a request may split into (VHD
	 * extents). */
	io_drv = td.drv;
	unsigned nslots = pvio_ring_blkif_nr_ents(PVIO_RING_BYTES(PVIO_RING_MAX_ORDER));
	blkio_pool = calloc(nslots, sizeof(*blkio_pool));
	if (!blkio_pool) {
		td_log(TD_ERR, "out of memory");
		goto out_img;
	}
	for (unsigned i = 0; i < nslots; i++) {
		blkio_pool[i].io.done = blkio_done;
		blkio_pool[i].next_free = blkio_free;
		blkio_free = &blkio_pool[i];
	}
	unsigned depth = (nslots + TD_NBD_SLOTS) * (td.img.ops_per_req ? td.img.ops_per_req : 1);
	err = td.eng_ops->open(td.loop, depth, io_done, &td.eng);
	if (err) {
		td_log(TD_ERR, "cannot start the %s engine: %s", td.eng_ops->name, strerror(-err));
		goto out_img;
	}
	td_log(TD_INFO, "engine %s", td.eng_ops->name);
	if (td.eng_ops->files && td.img.fd >= 0)
		td.eng_ops->files(td.eng, &td.img.fd, 1);
	if (!ctl) {
		td_ctl_default_path(td.domid, td.devid, ctlpath, sizeof(ctlpath));
		ctl = ctlpath;
	}
	if (td_ctl_open(&td, ctl))
		goto out_eng;
	if (nbd && !strcmp(nbd, "auto")) {
		/* beside the control socket: .sock becomes .nbd; the supervisor's
		 * default, so a failure costs the export, not the disk */
		size_t l = strlen(ctl);
		if (l > 5 && !strcmp(ctl + l - 5, ".sock"))
			l -= 5;
		snprintf(nbdpath, sizeof(nbdpath), "%.*s.nbd", (int)l, ctl);
		if (td_nbd_open(&td, nbdpath))
			td_log(TD_WARN, "serving the disk without an NBD export");
	} else if (nbd && td_nbd_open(&td, nbd)) {
		goto out_ctl;
	}

	struct pvio_blkback_config cfg = {
		.backend = td.backend,
		.sectors = td.img.size / PVIO_BLKIF_SECTOR_SIZE,
		.sector_size = sector_size,
		.physical_sector_size = td.img.phys_sector,
		.max_indirect_segments = max_indirect,
		.readonly = readonly,
		.max_ring_page_order = max_order,
		.no_persistent = no_persistent,
		.max_queues = max_queues,
		.poll_us = poll_us,
		.no_barrier = no_barrier,
		.no_flush_cache = no_flush,
		.discard = td.img.can_discard,
		.ops = &td_io_ops,
		.ops_ctx = &td,
		.on_event = bb_event_cb,
		.log = bb_log_cb,
		.arg = &td,
	};
	err = pvio_blkback_create(td.loop, &cfg, &td.bb);
	if (err) {
		td_log(TD_ERR, "cannot start the backend for %s: %s", td.backend, strerror(-err));
		goto out_nbd;
	}
	ev_signal_init(&sterm, sig_cb, SIGTERM);
	sterm.data = &td;
	ev_signal_start(td.loop, &sterm);
	ev_signal_init(&sint, sig_cb, SIGINT);
	sint.data = &td;
	ev_signal_start(td.loop, &sint);

	ev_run(td.loop, 0);

	ev_signal_stop(td.loop, &sterm);
	ev_signal_stop(td.loop, &sint);
	if (td.detached) {
		td.exit_code = 0;
		td_log(TD_INFO, "exiting after detach");
	}
	pvio_blkback_destroy(td.bb);
	td.bb = NULL;
out_nbd:
	td_nbd_close(td.nbd); /* runs the loop until its I/O is back */
	td.nbd = NULL;
out_ctl:
	td_ctl_close(td.ctl);
	td.ctl = NULL;
out_eng:
	td.eng_ops->close(td.eng);
out_img:
	td.drv->close(&td.img);
	free(blkio_pool);
	if (td.loop)
		ev_loop_destroy(td.loop);
	return td.exit_code;
}
