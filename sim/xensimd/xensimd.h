/* SPDX-License-Identifier: MIT */
/*
 * xensimd: the simulated hypervisor. It owns every domain's memory (a memfd),
 * grant table (a memfd of grant_entry_v1_t frames the guest writes itself)
 * and event-channel table, and answers the "hypercalls" of lib/proto.h.
 * Single-threaded: one libev loop, one handler per request, so every
 * operation is atomic with respect to every other; only the guest's own
 * writes to its grant entries race with us, and those go through cmpxchg
 * exactly as in Xen.
 */
#ifndef XENSIMD_H
#define XENSIMD_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <ev.h>
#include <xen/grant_table.h>

#include "proto.h"

struct xsd_conn;

struct xsd_active {            /* Xen's active grant entry: pins we hold */
	uint32_t rd, wr;           /* read-only and writable pins */
	uint64_t gfn;              /* frame fixed at first pin */
};

struct xsd_port {
	uint8_t state;             /* enum xsim_evt_state */
	uint32_t epoch;
	uint32_t rdom, rport;
	int efd;                   /* eventfd of the process that bound it */
	struct xsd_conn *owner;
};

struct xsd_dom {
	uint32_t id;
	char name[64];
	int alive;
	uint64_t nr_pages;
	int mem_fd, gnt_fd, ctl_fd;
	uint8_t *mem;
	grant_entry_v1_t *gnt;
	struct xsim_ctl *ctl;
	size_t ctl_size;
	uint32_t nr_grants;
	struct xsd_active *act;
	uint64_t pins;             /* total pins held, across all refs */
	struct xsd_port ports[XSIM_NR_PORTS];
	struct xsd_dom *next;
};

struct xsd_maptrack {
	uint32_t domid, ref;
	uint32_t writable;
	uint32_t count;
};

struct xsd_conn {
	ev_io io;
	int fd;
	pid_t pid;
	uint32_t domid;
	int said_hello;
	struct xsd_maptrack *mt;
	size_t nmt, capmt;
	uint64_t grants_held;      /* pins held through this connection */
	uint64_t max_grants;
	struct xsd_conn *next;
};

struct xsd {
	struct ev_loop *loop;
	const char *dir;
	int listen_fd;
	ev_io listen_io;
	struct xsd_dom *doms;
	struct xsd_conn *conns;
	uint32_t next_domid;
};

extern FILE *xsd_logf;
void xsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* domain.c */
struct xsd_dom *xsd_dom_find(struct xsd *x, uint32_t domid);  /* alive only */
struct xsd_dom *xsd_dom_find_any(struct xsd *x, uint32_t domid);
int xsd_dom_create(struct xsd *x, const char *name, uint32_t mem_mb, uint32_t *domid);
int xsd_dom_destroy(struct xsd *x, uint32_t domid);
void xsd_dom_reap(struct xsd *x);  /* free dead domains nothing refers to */
void xsd_dom_free_all(struct xsd *x);  /* at exit */

/* grant.c: status values are GNTST_* */
int16_t xsd_gnt_pin(struct xsd_dom *d, uint32_t caller, uint32_t ref, int writable, uint64_t *gfn);
void xsd_gnt_unpin(struct xsd_dom *d, uint32_t ref, int writable);
int xsd_gnt_map(struct xsd *x, struct xsd_conn *c, const struct xsim_gnt_batch *b,
		struct xsim_gnt_map_rep *rep);
int xsd_gnt_unmap(struct xsd *x, struct xsd_conn *c, const struct xsim_gnt_batch *b,
		  int16_t *status);
int xsd_gnt_copy(struct xsd *x, struct xsd_conn *c, uint32_t count,
		 const struct xsim_gnt_copy_seg *segs, int16_t *status);
void xsd_gnt_release_conn(struct xsd *x, struct xsd_conn *c);

/* evtchn.c */
int xsd_evt_alloc_unbound(struct xsd *x, struct xsd_conn *c, uint32_t rdom, int efd, uint32_t *port);
int xsd_evt_bind_interdomain(struct xsd *x, struct xsd_conn *c, uint32_t rdom, uint32_t rport,
			     int efd, uint32_t *port, int *peer_efd);
int xsd_evt_peer(struct xsd *x, struct xsd_conn *c, uint32_t port, struct xsim_evt_peer *p,
		 int *peer_efd);
int xsd_evt_send(struct xsd *x, struct xsd_conn *c, uint32_t port);
int xsd_evt_unbind(struct xsd *x, struct xsd_conn *c, uint32_t port);
void xsd_evt_close_port(struct xsd *x, struct xsd_dom *d, uint32_t port);
void xsd_evt_release_conn(struct xsd *x, struct xsd_conn *c);

#endif
