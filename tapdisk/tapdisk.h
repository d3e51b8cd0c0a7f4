/* SPDX-License-Identifier: MIT */
/*
 * tapdisk internals: one process serves one VBD.  The blkback core takes
 * requests off the ring; an image driver (raw) says where the bytes live;
 * an I/O engine (io_uring or libaio) moves them; all on one libev loop.
 */
#ifndef PVIO_TAPDISK_H
#define PVIO_TAPDISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <ev.h>

#include "pvio/blkback.h"

/* ---- logging (log.c) ---------------------------------------------------- */
int td_log_open(const char *path);	/* NULL: stderr */
void td_log_set_device(const char *dev);
void td_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TD_ERR 3
#define TD_WARN 4
#define TD_INFO 6

/* ---- I/O engines (engine_uring.c, engine_aio.c) ------------------------- */
struct td_engine;
/* Completion: @res is 0 when all requested bytes moved (or the flush
 * succeeded), else a negative errno (a short transfer is -EIO). */
typedef void td_io_done_fn(void *tag, int res);

/*
 * An I/O engine (const table; SPDK style).  All members required.
 * open:   set up with room for @depth operations in flight; register on
 *         @loop; completions call @done from the loop.
 * queue:  add one operation on file @fd (READ/WRITE over @iov with @len
 *         bytes at @off; FLUSH = fdatasync, @iov NULL) to the next batch
 *         (one engine serves every file of an image: a VHD chain has many).
 *         It may complete the operation (call @done) before returning.  The iovec array
 *         must stay valid until completion.  -EBUSY: @depth in flight.
 * submit: hand everything queued to the kernel (one system call).
 * close:  wait for nothing: the caller has drained; frees.
 */
struct td_engine_ops {
	const char *name;
	int (*open)(struct ev_loop *loop, unsigned depth, td_io_done_fn *done,
		    struct td_engine **out);
	int (*queue)(struct td_engine *e, enum pvio_blkback_op op, int fd, uint64_t off,
		     const struct iovec *iov, int iovcnt, size_t len, void *tag);
	void (*submit)(struct td_engine *e);
	void (*close)(struct td_engine *e);
};

extern const struct td_engine_ops td_engine_uring;
extern const struct td_engine_ops td_engine_aio;
extern const struct td_engine_ops td_engine_null;  /* benchmarks: no I/O at all */
/* Fault injection (engine_faulty.c): --engine faulty:INNER[:SPEC]; setup
 * parses INNER:SPEC, 0 or -EINVAL (logged). */
extern const struct td_engine_ops td_engine_faulty;
int td_engine_faulty_setup(const char *arg);

/* ---- image drivers (driver_raw.c, driver_vhd.c) ------------------------ */
struct td;
struct td_image {
	int fd;
	uint64_t size;		/* bytes */
	uint32_t phys_sector;	/* physical sector size to advertise */
	int direct;		/* opened O_DIRECT */
	int readonly;
	int can_discard;	/* hole punching works: offer feature-discard */
	char path[4096];
	unsigned ops_per_req;	/* engine operations one request may need (0 = 1) */
	void *priv;		/* the driver's state */
};

/*
 * Image driver (const table).  open: open @path (read-only if @readonly),
 * fill @img; -errno with the reason logged.  close: release.
 * submit (optional): take one blkback request (the io_ops.submit contract:
 *   0 = taken, complete it exactly once; <0 = not taken).  NULL: the request
 *   is one engine operation on img->fd at the same offset, tagged @req.
 * io_done (required with submit): an engine completion for a tag the
 *   driver queued.
 */
struct td_driver_ops {
	const char *name;
	int (*open)(const char *path, int readonly, struct td_image *img);
	void (*close)(struct td_image *img);
	int (*submit)(struct td *td, struct pvio_blkback_req *req, enum pvio_blkback_op op,
		      uint64_t off, const struct iovec *iov, int iovcnt);
	void (*io_done)(void *tag, int res);
};
extern const struct td_driver_ops td_driver_raw;
/* Direct-I/O alignment @fd needs, 0 when the kernel cannot say (driver_raw.c). */
unsigned td_dio_align(int fd);
extern const struct td_driver_ops td_driver_vhd;

/* Pick the driver for a `params` value ("aio:/p", "raw:/p", "/p", "vhd:/p").  Returns the driver and the path
 * inside @params, or NULL with the reason logged. */
const struct td_driver_ops *td_driver_for(const char *params, const char **path);

/* ---- the daemon (main.c) and its control socket (control.c) ------------- */
struct td {
	struct ev_loop *loop;
	const char *backend;
	uint32_t domid, devid;
	char dev[32];
	char params[4200];
	const struct td_engine_ops *eng_ops;
	struct td_engine *eng;
	const struct td_driver_ops *drv;
	struct td_image img;
	struct pvio_blkback *bb;
	int exit_code;
	int detached;
	struct td_ctl *ctl;
};

int td_ctl_open(struct td *td, const char *path);
void td_ctl_close(struct td_ctl *c);
/* blkback events the control socket waits for (pause drained, detached). */
void td_ctl_event(struct td_ctl *c, enum pvio_blkback_event ev);
/* Default socket path for a device: $PVIO_CTL_DIR, else $XENSIM_DIR/tapdisk,
 * else /run/pvio; then tapdisk-<domid>-<devid>.sock. */
void td_ctl_default_path(uint32_t domid, uint32_t devid, char *buf, size_t len);

#endif
