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
	/* Optional: @fds (open until close) will carry most operations;
	 * the engine may pre-register them (io_uring fixed files).  0 or
	 * -errno (logged; the engine then works as without). */
	int (*files)(struct td_engine *e, const int *fds, unsigned n);
};

extern const struct td_engine_ops td_engine_uring;
/* The same without registered files (--engine io_uring:nofixed), so the
 * gain of IORING_REGISTER_FILES shows in a benchmark. */
extern const struct td_engine_ops td_engine_uring_nofixed;
extern const struct td_engine_ops td_engine_aio;
extern const struct td_engine_ops td_engine_null;  /* benchmarks: no I/O at all */
/* Fault injection (engine_faulty.c): --engine faulty:INNER[:SPEC]; setup
 * parses INNER:SPEC, 0 or -EINVAL (logged). */
extern const struct td_engine_ops td_engine_faulty;
int td_engine_faulty_setup(const char *arg);

/* ---- one I/O, whoever asked for it -------------------------------------- */
/*
 * What a driver serves: a guest's blkif request (main.c wraps each in a
 * td_io from a pool sized to the ring) or a piece of an NBD request
 * (nbd.c).  The submitter embeds it in its own struct and finishes its
 * request in @done, called exactly once with 0 or a negative errno, from
 * the loop (possibly from inside td_io_submit).
 */
struct td_io {
	void (*done)(struct td_io *io, int res);
};

/* NBD pieces in flight at most, over all NBD clients: drivers and engines
 * are sized for the ring's requests plus these, so NBD traffic can never
 * take a guest request's slot. */
#define TD_NBD_SLOTS 16

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
	uint32_t max_io;	/* most bytes one submit may carry (0 = no limit) */
	void *priv;		/* the driver's state */
};

/*
 * Image driver (const table).  open: open @path (read-only if @readonly),
 * fill @img; -errno with the reason logged.  close: release.
 * submit (optional): take one I/O (the io_ops.submit contract: 0 = taken,
 *   finish it exactly once through io->done; <0 = not taken).  NULL: the
 *   I/O is one engine operation on img->fd at the same offset, tagged @io.
 * io_done (required with submit): an engine completion for a tag the
 *   driver queued.
 * extent (optional): how [@off, @off+@len) starts (@len > 0, within the
 *   disk): *@run bytes (1..@len) from @off that are all allocated data
 *   (*@hole 0) or all unallocated and reading as zeros (*@hole 1).  Runs
 *   end on 512-byte boundaries except at the end of the disk.  Synchronous,
 *   cheap (in-memory maps, lseek); 0 or -errno.  NULL: all data.
 */
struct td_driver_ops {
	const char *name;
	int (*open)(const char *path, int readonly, struct td_image *img);
	void (*close)(struct td_image *img);
	int (*submit)(struct td *td, struct td_io *io, enum pvio_blkback_op op,
		      uint64_t off, const struct iovec *iov, int iovcnt);
	void (*io_done)(void *tag, int res);
	int (*extent)(struct td_image *img, uint64_t off, uint64_t len, uint64_t *run, int *hole);
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
	struct td_nbd *nbd;	/* NULL: no NBD export */
};

/* Start @io (see struct td_io) through the image driver and the engine:
 * 0 = taken, <0 = not taken (io->done is not called).  Queued work reaches
 * the kernel at the next td_kick (the guest path kicks once per ring pass). */
int td_io_submit(struct td *td, struct td_io *io, enum pvio_blkback_op op, uint64_t off,
		 const struct iovec *iov, int iovcnt);
void td_kick(void *ctx);

/* Listen on unix socket @path (stale socket replaced; a live server there
 * refuses with -EADDRINUSE; @owner_only: mode 0600).  Returns the
 * non-blocking listening fd or -errno, logged with @what. */
int td_listen(const char *path, const char *what, int owner_only, int backlog);
int td_ctl_open(struct td *td, const char *path);
void td_ctl_close(struct td_ctl *c);
/* blkback events the control socket waits for (pause drained, detached). */
void td_ctl_event(struct td_ctl *c, enum pvio_blkback_event ev);
/* The NBD export has nothing in the driver any more (while paused). */
void td_ctl_nbd_idle(struct td_ctl *c);
/* Default socket path for a device: $PVIO_CTL_DIR, else $XENSIM_DIR/tapdisk,
 * else /run/pvio; then tapdisk-<domid>-<devid>.sock. */
void td_ctl_default_path(uint32_t domid, uint32_t devid, char *buf, size_t len);

/* ---- the NBD export (nbd.c) ---------------------------------------------- */
/*
 * An NBD server (fixed newstyle, structured replies, base:allocation) on
 * the unix socket @path, serving td->img through td_io_submit on td's loop
 * to many clients at once.  0, or -errno with the reason logged (a live
 * server already on @path: -EADDRINUSE).  The socket is mode 0600.
 */
int td_nbd_open(struct td *td, const char *path);
/* Disconnect every client, wait (running the loop) for their I/O already
 * in the driver, remove the socket, free.  NULL is a no-op. */
void td_nbd_close(struct td_nbd *n);
/* For the control socket: the socket path, and counters. */
const char *td_nbd_path(const struct td_nbd *n);
/* tapctl pause: issue no more NBD I/O (requests queue; clients stay
 * connected); td_ctl_nbd_idle() is called once none is in the driver.
 * Unpause issues what queued.  NULL is a no-op; idle(NULL) is true. */
void td_nbd_pause(struct td_nbd *n);
void td_nbd_unpause(struct td_nbd *n);
int td_nbd_idle(const struct td_nbd *n);
struct td_nbd_stats {
	uint64_t connections;	/* accepted so far */
	uint32_t clients;	/* connected now */
	uint64_t reqs[PVIO_BLKBACK_NR_OPS]; /* completed OK: read, write, flush, trim */
	uint64_t block_status;
	uint64_t write_zeroes;	/* WRITE_ZEROES completed OK (punched or written) */
	uint64_t bytes_read, bytes_written;
	uint64_t refused;	/* requests answered with an error before any I/O */
	uint64_t io_errors;	/* requests the driver failed */
	uint64_t dropped;	/* clients disconnected for breaking the protocol */
};
void td_nbd_get_stats(const struct td_nbd *n, struct td_nbd_stats *st);

#endif
