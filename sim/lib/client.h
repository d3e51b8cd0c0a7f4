/* SPDX-License-Identifier: MIT */
/* Client side of the xensim hypercall socket. Private to sim/, grant/, evtchn/. */
#ifndef PVIO_SIM_CLIENT_H
#define PVIO_SIM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "proto.h"

struct xsim_conn {
	int fd;
	uint32_t domid;
	int daemon_pid;
	int ctl_fd;                /* this domain's ctl memfd */
	uint32_t ctl_size;
};

/* $XENSIM_DIR, or the default state directory. Never NULL. */
const char *xsim_dir(void);
/* The domain this process belongs to: $XENSIM_DOMID, default 0 (dom0). */
uint32_t xsim_self_domid(void);

/* Connect to xensimd as @domid and say HELLO. 0 or -errno; -ENOENT/-ECONNREFUSED
 * when xensim is not running, -ESRCH when the domain does not exist. */
int xsim_connect(uint32_t domid, struct xsim_conn *c);
void xsim_disconnect(struct xsim_conn *c);

/*
 * One request/reply exchange. @send_fd (or -1) travels with the request.
 * The reply body is copied into @rep (at most @rep_cap bytes; *@rep_len gets
 * its size); received descriptors go to @fds (at most @max_fds, the rest are
 * closed), their number to *@nfds. Returns the daemon's status (0 or -errno)
 * or a transport error (-EPIPE when the daemon has gone).
 */
int xsim_call(struct xsim_conn *c, uint32_t op, const void *body, size_t len,
	      int send_fd, void *rep, size_t rep_cap, size_t *rep_len,
	      int *fds, int max_fds, int *nfds);

/* Map @size bytes of a memfd shared read-write (or read-only). NULL on error. */
void *xsim_map_fd(int fd, size_t size, int writable);

#endif
