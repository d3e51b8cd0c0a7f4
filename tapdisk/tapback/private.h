/* SPDX-License-Identifier: MIT */
/*
 * pvio-tapback internals: the supervisor that runs one tapdisk per VBD.
 * main.c owns the options, the libev loop, signals and the xenstore watch;
 * device.c owns the device table and the start / reap / restart policy.
 */
#ifndef PVIO_TAPBACK_PRIVATE_H
#define PVIO_TAPBACK_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <ev.h>
#include <xenstore.h>

/* Restart policy: at most this many restarts of one device's tapdisk within
 * the window, then give up on that device (and say so in its backend dir). */
#define TB_MAX_RESTARTS 5
#define TB_RESTART_WINDOW_S 60.0
/* How long a stopping tapdisk gets after SIGTERM before SIGKILL. */
#define TB_STOP_GRACE_S 10.0

struct tb_config {
	const char *tapdisk;  /* tapdisk binary */
	const char *engine;   /* --engine passed through, or NULL */
	const char *ctl_dir;  /* --ctl DIR/tapdisk-D-N.sock passed, or NULL */
	bool no_nbd;          /* else every tapdisk gets --nbd auto */
	int log_fd;           /* where our log (and tapdisks' stderr) go */
};

/* One backend dir we know about. */
struct tb_device {
	struct tb_device *next;
	char path[128];        /* /local/domain/0/backend/<kind>/<domid>/<devid> */
	uint32_t domid;
	uint32_t devid;
	pid_t pid;             /* running tapdisk, or 0 */
	ev_child child;        /* reaps pid */
	double restarts[TB_MAX_RESTARTS]; /* times of the last restarts, ring */
	unsigned nr_restarts;  /* total restarts (index into restarts) */
	bool present;          /* seen in the last scan of its dir */
	bool done;             /* tapdisk exited 0 (detached): never restart */
	bool gave_up;          /* too many crashes: never restart */
};

struct tb_state {
	struct ev_loop *loop;
	struct xs_handle *xs;
	struct tb_config cfg;
	struct tb_device *devices;
	bool stopping;
	ev_timer stop_timer;
};

/* Log one line, timestamped, to cfg.log_fd. */
void tb_log(struct tb_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Look at one device dir PATH (…/backend/<kind>/<domid>/<devid>): note it
 * present or gone, and start its tapdisk if online=1 and none runs.
 */
void tb_device_check(struct tb_state *s, const char *path);
/* Rescan every device under BASE (…/backend/<kind>), or only <domid> if
 * DOMID is not NULL; devices not found are marked gone. */
void tb_scan(struct tb_state *s, const char *base, const char *domid);
/* SIGTERM every running tapdisk; returns how many there were. */
unsigned tb_stop_all(struct tb_state *s, int sig);
/* Number of tapdisks still running. */
unsigned tb_running(struct tb_state *s);
/* Free the device table (children must be gone). */
void tb_devices_free(struct tb_state *s);
/* Called by device.c when the last child went while stopping. */
void tb_maybe_finish(struct tb_state *s);

#endif
