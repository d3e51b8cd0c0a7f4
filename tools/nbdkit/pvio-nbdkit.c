/* SPDX-License-Identifier: MIT */
/*
 * nbdkit-pvio-plugin: exposes a guest's PV disk over NBD, so real NBD
 * clients (qemu-img, qemu-io, nbdcopy, nbdinfo, fio's nbd engine, nbdfuse)
 * drive I/O through blkfront -> ring -> tapdisk -> image.
 *
 * Run it as a process of the guest:
 *   xensim run DOMID -- nbdkit --foreground --unix SOCK \
 *       /path/to/nbdkit-pvio-plugin.so vdev=xvda
 *
 * Requests run in parallel (nbdkit's parallel thread model): blkfront is
 * used by one thread at a time, so one driver thread owns it.  nbdkit's
 * request threads queue their I/O under a mutex and wake the driver
 * through an eventfd that blkfront's wait also watches; the driver
 * submits everything queued, so requests from every connection share the
 * ring, and each completion wakes its request thread.  The device is
 * opened once, after nbdkit has forked (libxenstore's reader thread would
 * not survive the fork), and shared by every connection.  Requests not
 * aligned to the disk's sector size are done by read-modify-write of the
 * edge sectors, exclusively: no other I/O runs meanwhile, so two writes
 * sharing an edge sector cannot undo each other.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "pvio/blkfront.h"
#include "pvio/blkfront_xensim.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *vdev;
static struct pvio_blkfront_xensim *dev;
static struct pvio_blkfront *bf;
static struct pvio_blkfront_info info;

/* One I/O handed to the driver thread. */
struct req {
	struct pvio_blkfront_io io;
	struct req *next;
	int status;
	bool done;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static struct req *queue_head, *queue_tail; /* waiting for the driver (mu) */
static bool quit;			    /* unload: the driver ends (mu) */
static int wake_fd = -1;		    /* eventfd: work for the driver */
static pthread_t driver;
static bool driver_live;
/* Shared by every I/O; exclusive for a read-modify-write. */
static pthread_rwlock_t rmw_lock = PTHREAD_RWLOCK_INITIALIZER;

static void req_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	struct req *r = arg;

	(void)io;
	pthread_mutex_lock(&mu);
	r->status = status;
	r->done = true;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&mu);
}

static void *driver_main(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t v;
		struct req *list, *next;
		bool ending;

		/* Drain the wake-up first: work queued after this writes it
		 * again, so the wait below cannot miss it. */
		if (read(wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			nbdkit_error("pvio: eventfd: %m");
		pthread_mutex_lock(&mu);
		list = queue_head;
		queue_head = queue_tail = NULL;
		ending = quit;
		pthread_mutex_unlock(&mu);
		for (; list; list = next) {
			next = list->next;
			int err = pvio_blkfront_submit(bf, &list->io);
			if (err < 0)
				req_cb(&list->io, err, list);
		}
		if (ending && !pvio_blkfront_inflight(bf))
			return NULL;
		int n = pvio_blkfront_poll(bf, 1000);
		if (n < 0 && !ending) {
			/* the platform failed: take no more I/O, end once what
			 * is in flight has finished */
			nbdkit_error("pvio: the PV disk failed: %s", strerror(-n));
			pthread_mutex_lock(&mu);
			quit = true;
			pthread_mutex_unlock(&mu);
		}
	}
}

/* Queue one I/O for the driver and wait for it.  0 or a negative errno. */
static int run_io(enum pvio_blkfront_op op, void *buf, uint64_t sector, size_t len)
{
	struct req r = { .io = { .op = op, .sector = sector, .buf = buf, .len = len,
				 .cb = req_cb, .arg = &r } };
	uint64_t one = 1;

	pthread_mutex_lock(&mu);
	if (quit) {
		pthread_mutex_unlock(&mu);
		return -EIO;
	}
	if (queue_tail)
		queue_tail->next = &r;
	else
		queue_head = &r;
	queue_tail = &r;
	pthread_mutex_unlock(&mu);
	if (write(wake_fd, &one, sizeof(one)) < 0)
		nbdkit_error("pvio: eventfd: %m");
	pthread_mutex_lock(&mu);
	while (!r.done)
		pthread_cond_wait(&done_cv, &mu);
	pthread_mutex_unlock(&mu);
	return r.status;
}

static int pvio_config(const char *key, const char *value)
{
	if (strcmp(key, "vdev") == 0) {
		uint32_t devid;
		if (pvio_blkfront_xensim_parse_vdev(value, &devid) < 0) {
			nbdkit_error("vdev=%s: expected xvdX or a device number", value);
			return -1;
		}
		free(vdev);
		vdev = strdup(value);
		return vdev ? 0 : -1;
	}
	nbdkit_error("unknown parameter '%s' (this plugin takes vdev=xvdX)", key);
	return -1;
}

static int pvio_after_fork(void)
{
	/* indirect requests: a 1 MiB NBD read is one ring request */
	struct pvio_blkfront_config cfg = { .max_indirect_segments = 256 };
	int err = pvio_blkfront_xensim_open(vdev, &cfg, &dev);

	if (err < 0) {
		nbdkit_error("cannot open PV disk %s: %s (run me with 'xensim run DOMID --')",
			     vdev ? vdev : "(first)", strerror(-err));
		return -1;
	}
	bf = pvio_blkfront_xensim_dev(dev);
	pvio_blkfront_get_info(bf, &info);
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0) {
		nbdkit_error("pvio: eventfd: %m");
		return -1;
	}
	pvio_blkfront_xensim_set_wake_fd(dev, wake_fd);
	err = pthread_create(&driver, NULL, driver_main, NULL);
	if (err) {
		nbdkit_error("pvio: cannot start the driver thread: %s", strerror(err));
		return -1;
	}
	driver_live = true;
	nbdkit_debug("pvio: %s: %llu sectors, sector size %u%s", pvio_blkfront_xensim_dir(dev),
		     (unsigned long long)info.sectors, info.sector_size,
		     info.readonly ? ", read-only" : "");
	return 0;
}

static void pvio_unload(void)
{
	uint64_t one = 1;

	if (driver_live) {
		pthread_mutex_lock(&mu);
		quit = true;
		pthread_mutex_unlock(&mu);
		if (write(wake_fd, &one, sizeof(one)) < 0)
			nbdkit_error("pvio: eventfd: %m");
		pthread_join(driver, NULL);
	}
	if (dev)
		pvio_blkfront_xensim_close(dev);
	if (wake_fd >= 0)
		close(wake_fd);
	free(vdev);
}

static void *pvio_open(int readonly)
{
	(void)readonly;
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t pvio_get_size(void *h)
{
	(void)h;
	return (int64_t)(info.sectors * 512);
}

static int pvio_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	(void)h;
	*minimum = 1;  /* we do read-modify-write for smaller pieces */
	*preferred = info.sector_size > 4096 ? info.sector_size : 4096;
	*maximum = 0xffffffff;
	return 0;
}

static int pvio_can_write(void *h) { (void)h; return !info.readonly; }
static int pvio_can_flush(void *h) { (void)h; return 1; }
static int pvio_can_fua(void *h) { (void)h; return NBDKIT_FUA_EMULATE; }

static int fail(const char *what, int err)
{
	nbdkit_error("pvio: %s: %s", what, strerror(-err));
	errno = -err;
	return -1;
}

/* Read or write whole sectors. */
static int io(int write, void *buf, uint64_t off, size_t len)
{
	int err = run_io(write ? PVIO_BLKFRONT_WRITE : PVIO_BLKFRONT_READ, buf, off / 512, len);
	return err < 0 ? fail(write ? "write" : "read", err) : 0;
}

static int flush_dev(void)
{
	int err = run_io(PVIO_BLKFRONT_FLUSH, NULL, 0, 0);
	return err < 0 ? fail("flush", err) : 0;
}

static int pvio_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size, start = offset / ss * ss;
	uint64_t end = (offset + count + ss - 1) / ss * ss;
	uint8_t *bounce;
	int r;

	(void)h;
	(void)flags;
	pthread_rwlock_rdlock(&rmw_lock);
	if (start == offset && end == offset + count) {
		r = io(0, buf, offset, count);
		pthread_rwlock_unlock(&rmw_lock);
		return r;
	}
	bounce = malloc(end - start);
	r = bounce ? io(0, bounce, start, end - start) : fail("read", -ENOMEM);
	pthread_rwlock_unlock(&rmw_lock);
	if (r == 0)
		memcpy(buf, bounce + (offset - start), count);
	free(bounce);
	return r;
}

static int pvio_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size, start = offset / ss * ss;
	uint64_t end = (offset + count + ss - 1) / ss * ss;
	uint8_t *bounce;
	int r = 0;

	(void)h;
	if (start == offset && end == offset + count) {
		pthread_rwlock_rdlock(&rmw_lock);
		r = io(1, (void *)buf, offset, count);
		pthread_rwlock_unlock(&rmw_lock);
	} else {
		/* read-modify-write of the partial edge sectors, alone */
		bounce = malloc(end - start);
		if (!bounce)
			return fail("write", -ENOMEM);
		pthread_rwlock_wrlock(&rmw_lock);
		if (offset != start)
			r = io(0, bounce, start, ss);
		if (r == 0 && (offset + count) % ss && (end - ss != start || offset == start))
			r = io(0, bounce + (end - ss - start), end - ss, ss);
		if (r == 0) {
			memcpy(bounce + (offset - start), buf, count);
			r = io(1, bounce, start, end - start);
		}
		pthread_rwlock_unlock(&rmw_lock);
		free(bounce);
	}
	if (r == 0 && (flags & NBDKIT_FLAG_FUA))
		r = flush_dev();
	return r;
}

static int pvio_can_trim(void *h) { (void)h; return info.discard && !info.readonly; }

/* Trim is advisory: only the whole sectors inside the range are discarded. */
static int pvio_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	uint64_t ss = info.sector_size;
	uint64_t start = (offset + ss - 1) / ss * ss, end = (offset + count) / ss * ss;
	int err;

	(void)h;
	if (end > start) {
		pthread_rwlock_rdlock(&rmw_lock);
		err = run_io(PVIO_BLKFRONT_DISCARD, NULL, start / 512, (size_t)(end - start));
		pthread_rwlock_unlock(&rmw_lock);
		if (err < 0)
			return fail("trim", err);
	}
	return flags & NBDKIT_FLAG_FUA ? flush_dev() : 0;
}

static int pvio_flush(void *h, uint32_t flags)
{
	(void)h;
	(void)flags;
	return flush_dev();
}

static struct nbdkit_plugin plugin = {
	.name = "pvio",
	.longname = "pvio Xen PV block device (blkfront on xensim)",
	.version = "0.1",
	.description = "Expose a guest's PV disk (device/vbd/N) over NBD",
	.config = pvio_config,
	.config_help = "vdev=<xvdX|N>   the guest's PV disk (default: the first one)",
	.after_fork = pvio_after_fork,
	.unload = pvio_unload,
	.open = pvio_open,
	.get_size = pvio_get_size,
	.block_size = pvio_block_size,
	.can_write = pvio_can_write,
	.can_flush = pvio_can_flush,
	.can_fua = pvio_can_fua,
	.pread = pvio_pread,
	.pwrite = pvio_pwrite,
	.flush = pvio_flush,
	.can_trim = pvio_can_trim,
	.trim = pvio_trim,
};

NBDKIT_REGISTER_PLUGIN(plugin)
