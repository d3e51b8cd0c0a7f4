/* SPDX-License-Identifier: MIT */
/*
 * xensim-xenstored internals: the daemon singleton, connections and the
 * limits every part agrees on. Nothing here is exported outside sim/xenstored.
 *
 * Threading: none. Everything runs on one libev loop; handlers never block
 * (non-blocking sockets, per-connection output queues).
 */
#ifndef XSD_XENSTORED_H
#define XSD_XENSTORED_H

#include <errno.h> /* before xs_wire.h: it only defines xsd_errors if EINVAL is known */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <xen/io/xs_wire.h>

#include "perms.h"

/* Limits (C xenstored's defaults where it has one; XSA-349 for the queues). */
#define XSD_MAX_WATCHES_DOMU 128u    /* quota-nb-watch-per-domain */
#define XSD_MAX_WATCHES_DOM0 8192u   /* dom0 is trusted, but still not unbounded */
#define XSD_MAX_TXNS 10u             /* quota-max-transaction */
#define XSD_MAX_NODES_DOMU 1000u     /* quota-nb-entry-per-domain */
#define XSD_MAX_CONNS_DOMU 32u       /* a real domU has one ring; each conn may hold 10 snapshots */
#define XSD_MAX_TXN_OPS 2048u        /* mutations recorded by one transaction */
#define XSD_MAX_OUT_EVENTS 1024u     /* queued watch events per connection */
#define XSD_MAX_OUT_BYTES (1024u * 1024u) /* queued output per connection (events) */
#define XSD_PAUSE_BYTES (64u * 1024u)     /* stop reading requests above this */
#define XSD_MSGS_PER_WAKEUP 32u      /* fairness between connections */
#define XSD_DOMID_MAX 0x7fefu        /* DOMID_FIRST_RESERVED - 1 */

struct store;
struct watch;
struct txn;

/* One queued outgoing message (header + payload, already in wire order). */
struct outmsg {
	struct outmsg *next;
	size_t len;
	bool is_event;
	char data[];
};

struct conn {
	struct conn *next;
	unsigned int id;          /* serial, for log lines only */
	int fd;
	uint32_t domid;           /* fixed by the socket it was accepted on */
	ev_io rio, wio;
	bool dead;                /* closed; freed by conns_reap() at a safe point */
	bool paused;              /* rio stopped: output backlog above XSD_PAUSE_BYTES */

	/* Input reassembly: header first, then exactly hdr.len payload bytes. */
	size_t in_have;
	unsigned char hdr_raw[sizeof(struct xsd_sockmsg)];
	struct xsd_sockmsg hdr;
	char payload[XENSTORE_PAYLOAD_MAX + 1]; /* +1: room for a guard NUL */

	/* Output queue; head is partially sent up to out_off. */
	struct outmsg *out_head, *out_tail;
	size_t out_off, out_bytes, out_event_bytes;
	unsigned int out_events;
	unsigned long dropped;     /* watch events dropped in the current overflow */

	struct watch *watches;
	unsigned int nwatches;
	struct txn *txns;
	unsigned int ntxns;
	uint32_t next_txid;
};

struct listener {
	int fd;
	uint32_t domid;
	char *path;
	ev_io io;
};

struct domain {
	struct domain *next;
	uint32_t domid;
	unsigned long mfn;
	unsigned int port;
	struct listener lst;
};

/* Special (non-tree) watch paths; they carry permissions like nodes do. */
enum { SPECIAL_INTRODUCE, SPECIAL_RELEASE, SPECIAL_COUNT };

struct daemon {
	struct ev_loop *loop;
	char *sockdir;               /* DIR/xenstored */
	struct listener dom0;
	struct store *store;         /* the committed tree */
	struct conn *conns;
	struct domain *domains;
	struct perms special_perms[SPECIAL_COUNT];
	unsigned int next_conn_id;
};

extern struct daemon xsd;
extern const char *const xsd_special_names[SPECIAL_COUNT];

/* log.c */
int log_open(const char *path);
void log_close(void);
void xsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* conn.c */
int listener_open(struct listener *l, const char *path, uint32_t domid);
void listener_close(struct listener *l);
void conn_send(struct conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
	       const void *data, size_t len);
void conn_send_error(struct conn *c, const struct xsd_sockmsg *req, int err);
/* Queue a watch event; drops (and logs) it if the connection is over quota. */
void conn_send_event(struct conn *c, const char *path, const char *token);
void conn_kill(struct conn *c, const char *why);
void conns_reap(void);
void conns_free_all(void);

/* proto.c */
void proto_handle(struct conn *c, const struct xsd_sockmsg *hdr, char *payload);
const char *xsd_errname(int err);

/* domain.c */
int domain_introduce(uint32_t domid, unsigned long mfn, unsigned int port);
int domain_release(uint32_t domid);
bool domain_is_introduced(uint32_t domid);
void domains_free_all(void);

/* path.c */
/* Parse a decimal domid (no sign, no spaces, <= XSD_DOMID_MAX). */
int parse_domid(const char *s, uint32_t *out);
/*
 * Turn a client path into an absolute node path in out (XENSTORE_ABS_PATH_MAX
 * + 1 bytes). Relative paths are under /local/domain/<domid>. With
 * allow_special, "@..." names are accepted verbatim. Returns 0 or -EINVAL.
 */
int path_canonical(uint32_t domid, const char *in, char *out, bool allow_special,
		   bool *relative);
/* True if name is path or below it. */
bool path_is_child(const char *name, const char *path);
int special_index(const char *name);

#endif
