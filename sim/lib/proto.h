/* SPDX-License-Identifier: MIT */
/*
 * The xensim "hypercall" protocol: what a process of a simulated domain says
 * to xensimd, the simulated hypervisor. Private to sim/, grant/ and evtchn/.
 *
 * Transport: one SOCK_SEQPACKET unix socket per library handle, at
 * $XENSIM_DIR/xensimd.sock. Each request is one packet: struct xsim_req then
 * an op-specific body; each reply one packet: struct xsim_rep then a body,
 * with file descriptors (memfds, eventfds) passed as SCM_RIGHTS. The first
 * request on a connection must be XSIM_HELLO, which fixes the caller's domain
 * for the life of the connection. Closing the connection releases everything
 * it holds (grant pins, event-channel ports), as closing /dev/xen/gntdev or
 * /dev/xen/evtchn does on Linux.
 */
#ifndef PVIO_SIM_PROTO_H
#define PVIO_SIM_PROTO_H

#include <stdint.h>

#define XSIM_PROTO_VERSION 1
#define XSIM_SOCK_NAME "xensimd.sock"
#define XSIM_PAGE_SIZE 4096u
#define XSIM_PAGE_SHIFT 12

/* Per-domain limits, as a default Xen 4.17 host has them. */
#define XSIM_NR_PORTS 4096u            /* 2-level event-channel ABI, 64-bit */
#define XSIM_GRANT_FRAMES 64u          /* max_grant_frames */
#define XSIM_NR_GRANTS (XSIM_GRANT_FRAMES * (XSIM_PAGE_SIZE / 8u))
#define XSIM_GNT_RESERVED 8u           /* refs 0..7 are the toolstack's */
#define XSIM_MAX_BATCH 1024u           /* refs or segments in one message */
#define XSIM_MAX_DOMAINS 1024u
#define XSIM_MAX_MEMORY_MB 65536u

enum xsim_op {
	XSIM_HELLO = 1,            /* body: xsim_hello; reply: xsim_hello_rep + fd ctl */
	XSIM_DOM_CREATE,           /* body: xsim_dom_create; reply: u32 domid (dom0 only) */
	XSIM_DOM_DESTROY,          /* body: u32 domid (dom0 only) */
	XSIM_DOM_LIST,             /* reply: xsim_dom_info[] */
	XSIM_DOM_ATTACH,           /* own domain: reply fds mem, gnttab (domU processes) */
	XSIM_DOM_MEMFD,            /* body: u32 domid; reply: xsim_dom_info + fd mem */
	XSIM_GNT_MAP,              /* body: xsim_gnt_batch; reply: xsim_gnt_map_rep[] */
	XSIM_GNT_UNMAP,            /* body: xsim_gnt_batch; reply: i16 status[] */
	XSIM_GNT_COPY,             /* body: u32 count, u32 pad, xsim_gnt_copy_seg[]; reply: i16 status[] */
	XSIM_GNT_SET_MAX,          /* body: u32 max */
	XSIM_EVT_ALLOC_UNBOUND,    /* body: u32 remote domid; fd: eventfd; reply: u32 port */
	XSIM_EVT_BIND_INTERDOMAIN, /* body: u32 rdom, u32 rport; fd: eventfd; reply: u32 port + fd peer */
	XSIM_EVT_PEER,             /* body: u32 port; reply: xsim_evt_peer [+ fd peer] */
	XSIM_EVT_UNBIND,           /* body: u32 port */
	XSIM_EVT_SEND,             /* body: u32 port: notify from the daemon side (unmap notify) */
	XSIM_OP_MAX
};

struct xsim_req {
	uint32_t op;
	uint32_t len;              /* bytes of body after this header */
};

struct xsim_rep {
	int32_t err;               /* 0 or a negative errno */
	uint32_t len;              /* bytes of body after this header */
};

struct xsim_hello {
	uint32_t version;
	uint32_t domid;
};

struct xsim_hello_rep {
	uint32_t version;
	uint32_t domid;
	int32_t daemon_pid;
	uint32_t ctl_size;         /* bytes of the ctl memfd */
};

struct xsim_dom_create {
	uint32_t memory_mb;
	char name[64];
};

struct xsim_dom_info {
	uint32_t domid;
	uint32_t alive;
	uint64_t nr_pages;
	uint32_t nr_grants;
	uint32_t ctl_size;
	char name[64];
	uint64_t grant_pins;       /* pins others hold on this domain's grants */
	uint64_t maps_held;        /* pins this domain's processes hold on others' */
	uint32_t ports_bound;      /* event-channel ports not closed */
	uint32_t pad;
};

struct xsim_gnt_batch {
	uint32_t domid;
	uint32_t writable;
	uint32_t count;
	uint32_t pad;
	uint32_t refs[];           /* count entries */
};

struct xsim_gnt_map_rep {
	int16_t status;            /* GNTST_* */
	uint16_t pad[3];
	uint64_t gfn;              /* page of the granting domain's memory */
};

/* One grant-copy segment: either side is local memory of the caller
 * (XSIM_COPY_LOCAL, an address in the caller's address space) or a grant. */
#define XSIM_COPY_SRC_GREF 1u
#define XSIM_COPY_DST_GREF 2u
struct xsim_gnt_copy_seg {
	uint64_t src_virt, dst_virt;
	uint32_t src_ref, dst_ref;
	uint16_t src_dom, dst_dom;
	uint16_t src_off, dst_off;
	uint16_t len;
	uint16_t flags;
	uint32_t pad;
};

/* Event-channel port state, as EVTCHNOP_status reports it. */
enum xsim_evt_state {
	XSIM_EVT_CLOSED = 0,
	XSIM_EVT_UNBOUND = 1,
	XSIM_EVT_INTERDOMAIN = 2,
};

struct xsim_evt_peer {
	uint32_t state;            /* enum xsim_evt_state */
	uint32_t epoch;
	uint32_t remote_dom;
	uint32_t remote_port;
};

/*
 * The ctl memfd of a domain: shared between xensimd and every process of the
 * domain (read-write for the domain's own processes, which allocate pages and
 * grant refs from the bitmaps with atomic operations as a kernel would from
 * its own free lists).
 */
#define XSIM_CTL_MAGIC 0x4c54434d49534558ull /* "XESIMCTL" */
struct xsim_ctl {
	uint64_t magic;
	uint32_t domid;
	uint32_t alive;            /* cleared by xensimd when the domain dies */
	uint64_t nr_pages;
	uint32_t nr_grants;
	uint32_t pad;
	uint64_t page_bitmap_off;  /* byte offset of the page-allocation bitmap */
	uint64_t gref_bitmap_off;  /* byte offset of the grant-ref bitmap */
	/*
	 * Per port: (epoch << 8) | enum xsim_evt_state. Written only by xensimd;
	 * the epoch changes whenever the port is bound, rebound or closed, so a
	 * process caching the peer's eventfd knows when to ask again.
	 */
	uint32_t evt_state[XSIM_NR_PORTS];
};

static inline uint64_t xsim_ctl_size(uint64_t nr_pages, uint32_t nr_grants)
{
	uint64_t sz = sizeof(struct xsim_ctl);
	sz += ((nr_pages + 63) / 64) * 8;
	sz += ((nr_grants + 63) / 64) * 8;
	return (sz + XSIM_PAGE_SIZE - 1) & ~(uint64_t)(XSIM_PAGE_SIZE - 1);
}

#endif
