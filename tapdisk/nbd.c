/* SPDX-License-Identifier: MIT */
/*
 * tapdisk's NBD export: the disk this tapdisk serves, on a unix socket,
 * for dom0 tools (qemu-img, nbdinfo, nbdcopy) while the guest runs — as
 * blktap's tapdisk does.  Protocol: the NBD spec's fixed newstyle
 * handshake (NBD_OPT_GO/INFO/EXPORT_NAME/LIST/ABORT/STRUCTURED_REPLY/
 * {LIST,SET}_META_CONTEXT with base:allocation) and transmission (READ,
 * WRITE, FLUSH, TRIM where the image discards, WRITE_ZEROES, CACHE,
 * BLOCK_STATUS, DISC).
 *
 * WRITE_ZEROES punches a hole where the image discards (both drivers'
 * discard reads back zeros) unless the client said NO_HOLE, and otherwise
 * writes zeros from one shared zero buffer, piece by piece; FAST_ZERO is
 * honoured by refusing (NBD_ENOTSUP) whenever zeros would have to be
 * written.  CACHE is advisory and answered at once: reads go to the image
 * with O_DIRECT, so there is no dom0 cache to fill.
 *
 * Data moves through td_io_submit: the same image driver and I/O engine as
 * the guest's requests, so a VHD chain's allocation and bitmaps are shared
 * (one open of the image; writes reach the leaf only).  An NBD request is
 * cut into pieces of at most NBD_PIECE bytes (and the driver's max_io);
 * at most TD_NBD_SLOTS pieces are in the driver at once over all clients,
 * and drivers and engines are sized for the ring plus those, so NBD work
 * never takes a guest request's slot.  Requests waiting for a piece slot
 * are served round robin, one piece each.
 *
 * Everything runs on tapdisk's loop; sockets are non-blocking.  Every
 * client is hostile:
 *  - bad magic, unknown client flags, a truncated message: that client is
 *    disconnected (logged), nobody else notices;
 *  - an option longer than NBD_MAX_OPTLEN is skipped and refused
 *    (NBD_REP_ERR_TOO_BIG); unknown options get NBD_REP_ERR_UNSUP;
 *  - a request that is too long (EOVERFLOW), out of range (EINVAL, ENOSPC
 *    for writes), unaligned, has unknown flags or an unknown command
 *    (EINVAL), or writes a read-only disk (EPERM) is refused and the
 *    connection kept (a refused write's payload is read and dropped);
 *  - memory is bounded: a client reads no new request while it holds
 *    NBD_CLIENT_BUDGET bytes of buffers or NBD_CLIENT_MAX_REQS requests,
 *    nobody does while all clients together hold NBD_GLOBAL_BUDGET, and a
 *    client that takes none of its replies for NBD_STALL_S (or does not
 *    finish the handshake within NBD_HANDSHAKE_S) is disconnected;
 *  - refusals are logged (the first NBD_LOG_REFUSALS per client) and
 *    counted (tapctl stats).
 *
 * Lifetimes: a client is freed once it is dead and none of its requests
 * has a piece in the driver; a request once its reply is sent (or its
 * client died) and no piece of it is in the driver.  Clients die only in
 * socket and timer callbacks, never inside an I/O completion, so the
 * issue loop (pump) never sees a freed request.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tapdisk.h"

/* ---- protocol constants (the NBD spec, doc/proto.md) -------------------- */
#define NBD_MAGIC 0x4e42444d41474943ULL		/* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454f5054ULL	/* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

#define NBD_OPT_EXPORT_NAME 1
#define NBD_OPT_ABORT 2
#define NBD_OPT_LIST 3
#define NBD_OPT_INFO 6
#define NBD_OPT_GO 7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10

#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR(n) ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP NBD_REP_ERR(1)
#define NBD_REP_ERR_INVALID NBD_REP_ERR(3)
#define NBD_REP_ERR_UNKNOWN NBD_REP_ERR(6)
#define NBD_REP_ERR_TOO_BIG NBD_REP_ERR(9)

#define NBD_INFO_EXPORT 0
#define NBD_INFO_NAME 1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE 3

#define NBD_CMD_READ 0
#define NBD_CMD_WRITE 1
#define NBD_CMD_DISC 2
#define NBD_CMD_FLUSH 3
#define NBD_CMD_TRIM 4
#define NBD_CMD_CACHE 5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR ((1u << 15) | 1)

#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Error values on the wire (the spec fixes them; they are Linux's). */
#define NBD_EPERM 1
#define NBD_EIO 5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP 95

#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ID 1		/* our one context's id */

/* ---- limits -------------------------------------------------------------- */
#define NBD_MAX_CLIENTS 16
#define NBD_MAX_PAYLOAD (32u << 20)	/* READ/WRITE length; advertised maximum */
#define NBD_PREF_BLOCK 4096u
#define NBD_MIN_BLOCK 512u		/* blkif sectors: requests must be aligned */
#define NBD_PIECE (1u << 20)		/* bytes per driver I/O, at most */
#define NBD_CLIENT_BUDGET (32u << 20)	/* buffered request bytes per client */
#define NBD_GLOBAL_BUDGET (128u << 20)	/* ... over all clients */
#define NBD_CLIENT_MAX_REQS 64
#define NBD_CLIENT_MAX_MSGS 256		/* queued replies before we stop reading */
#define NBD_MAX_OPTLEN 8192
#define NBD_MAX_STRING 4096
#define NBD_MAX_DESC 512		/* block status descriptors per reply */
#define NBD_MAX_CHUNKS 64		/* content chunks per structured read reply */
#define NBD_HANDSHAKE_S 30.0
#define NBD_STALL_S 60.0
#define NBD_LOG_REFUSALS 20
#define NBD_RX_BURST 64			/* reads per readiness, then let others in */

/* ---- state --------------------------------------------------------------- */
struct nbd_client;

/* One message to send: a header and, optionally, data it does not own. */
struct nbd_msg {
	struct nbd_msg *next;
	struct nbd_req *owner;	/* freed when this, its reply's last message, is sent */
	int heap;		/* free(this) once sent */
	uint32_t hlen;
	size_t dlen, sent;
	const uint8_t *data;
	uint8_t hdr[40];
};

struct nbd_req {
	struct nbd_client *c;
	struct nbd_req *qnext;	/* server's issue queue */
	uint64_t cookie, off;
	uint32_t len;
	uint16_t type, flags;
	uint8_t *buf;		/* READ/WRITE data (aligned for O_DIRECT) */
	uint32_t issued;	/* bytes handed to the driver */
	unsigned pending;	/* pieces in the driver */
	int err;		/* first error (-errno) */
	int flush;		/* 1: a flush is still to issue (FLUSH, FUA); 2: issued */
	int queued;		/* on the issue queue */
	struct nbd_msg *chunks;	/* extra messages of a split read reply */
	struct nbd_msg msg;	/* the reply, or its last message */
};

/* One driver I/O of an NBD request. */
struct nbd_piece {
	struct td_io io;
	struct td_nbd *n;
	struct nbd_req *r;
	struct iovec iov;
	struct nbd_piece *next;
};

enum rx_state {
	RX_CFLAGS,	/* client flags (4 bytes) */
	RX_OPTHDR,	/* option header (16) */
	RX_OPTDATA,	/* option data */
	RX_REQHDR,	/* request header (28) */
	RX_PAYLOAD,	/* a write's data */
	RX_SKIP,	/* dropping bytes (a refused write's data, an oversized option) */
	RX_NONE,	/* reading nothing more (ABORT, DISC) */
};

struct nbd_client {
	struct td_nbd *n;
	struct nbd_client *next, *prev;
	unsigned id;
	int fd;
	ev_io rio, wio;
	ev_timer timer;
	int dead;
	int transmission;	/* handshake done */
	int no_zeroes, structured, meta;
	int closing;		/* ABORT/DISC: close once everything is answered */
	enum rx_state rx, after_skip;
	uint8_t hdr[28];
	size_t got, want;
	uint64_t skip;
	uint32_t opt, optlen;
	struct nbd_req *cur;	/* the write whose payload is arriving */
	unsigned nreqs;		/* live requests (incl. waiting for their reply to go) */
	size_t buffered;	/* bytes of request buffers */
	struct nbd_msg *out, *out_tail;
	unsigned out_msgs;
	unsigned refusals;
	uint8_t optbuf[NBD_MAX_OPTLEN];
};

struct td_nbd {
	struct td *td;
	int lfd;
	ev_io lio;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct nbd_client *clients;
	unsigned nclients, next_id;
	size_t buffered;
	struct nbd_req *qhead, *qtail;
	struct nbd_piece pieces[TD_NBD_SLOTS], *free_pieces;
	unsigned inflight;
	int pumping;
	int paused;		/* tapctl pause: no new I/O */
	uint32_t piece_max;
	uint8_t *zeros;		/* piece_max bytes of zeros: WRITE_ZEROES' source */
	struct td_nbd_stats st;
};

/* ---- small helpers -------------------------------------------------------- */
static void be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v) { be16(p, (uint16_t)(v >> 16)); be16(p + 2, (uint16_t)v); }
static void be64(uint8_t *p, uint64_t v) { be32(p, (uint32_t)(v >> 32)); be32(p + 4, (uint32_t)v); }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) << 16 | rd16(p + 2); }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

static int all_zero(const uint8_t *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

static uint32_t nbd_errno(int err)
{
	switch (err) {
	case -EPERM: case -EROFS: return NBD_EPERM;
	case -ENOMEM: return NBD_ENOMEM;
	case -EINVAL: case -ERANGE: return NBD_EINVAL;
	case -EOPNOTSUPP: return NBD_ENOTSUP;
	case -ENOSPC: case -EDQUOT: case -EFBIG: return NBD_ENOSPC;
	case -EOVERFLOW: return NBD_EOVERFLOW;
	default: return NBD_EIO;
	}
}

static const char *cmd_name(unsigned t)
{
	switch (t) {
	case NBD_CMD_READ: return "read";
	case NBD_CMD_WRITE: return "write";
	case NBD_CMD_DISC: return "disc";
	case NBD_CMD_FLUSH: return "flush";
	case NBD_CMD_TRIM: return "trim";
	case NBD_CMD_CACHE: return "cache";
	case NBD_CMD_WRITE_ZEROES: return "write-zeroes";
	case NBD_CMD_BLOCK_STATUS: return "block-status";
	default: return "unknown";
	}
}

/* ---- output --------------------------------------------------------------- */
static void client_kill(struct nbd_client *c, const char *why);
static void req_free(struct nbd_req *r);

static void out_push(struct nbd_client *c, struct nbd_msg *m)
{
	m->next = NULL;
	m->sent = 0;
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out = m;
	c->out_tail = m;
	c->out_msgs++;
	/* sent from the write watcher: completions never write (or die) */
	ev_io_start(c->n->td->loop, &c->wio);
}

/* A heap message: @hlen header bytes to fill, @dlen data bytes after it. */
static struct nbd_msg *msg_new(uint32_t hlen, size_t dlen)
{
	struct nbd_msg *m = calloc(1, sizeof(*m) + dlen);

	if (!m)
		return NULL;
	m->heap = 1;
	m->hlen = hlen;
	m->dlen = dlen;
	m->data = (const uint8_t *)(m + 1);
	return m;
}

/* An option reply; nonzero if out of memory (the client is then dropped). */
static int opt_reply(struct nbd_client *c, uint32_t type, const void *data, uint32_t len)
{
	struct nbd_msg *m = msg_new(20, len);

	if (!m)
		return -ENOMEM;
	be64(m->hdr, NBD_REP_MAGIC);
	be32(m->hdr + 8, c->opt);
	be32(m->hdr + 12, type);
	be32(m->hdr + 16, len);
	if (len)
		memcpy((uint8_t *)(m + 1), data, len);
	out_push(c, m);
	return 0;
}

static int opt_error(struct nbd_client *c, uint32_t type, const char *msg)
{
	c->n->st.refused++;
	if (++c->refusals <= NBD_LOG_REFUSALS)
		td_log(TD_WARN, "nbd client %u: option %u refused: %s%s", c->id, c->opt, msg,
		       c->refusals == NBD_LOG_REFUSALS ? " (further refusals are only counted)" : "");
	return opt_reply(c, type, msg, (uint32_t)strlen(msg));
}

/* Fill @m as a structured chunk header (20 bytes) for @cookie. */
static void chunk_hdr(struct nbd_msg *m, uint16_t flags, uint16_t type, uint64_t cookie,
		      uint32_t len)
{
	be32(m->hdr, NBD_STRUCTURED_REPLY_MAGIC);
	be16(m->hdr + 4, flags);
	be16(m->hdr + 6, type);
	be64(m->hdr + 8, cookie);
	be32(m->hdr + 16, len);
	m->hlen = 20;
}

static void simple_hdr(struct nbd_msg *m, uint32_t err, uint64_t cookie)
{
	be32(m->hdr, NBD_SIMPLE_REPLY_MAGIC);
	be32(m->hdr + 4, err);
	be64(m->hdr + 8, cookie);
	m->hlen = 16;
}

/* An error answer to @cookie: a structured error chunk with @why for the
 * user when structured replies are on, else a simple reply. */
static int error_reply(struct nbd_client *c, struct nbd_msg *m, uint64_t cookie, int err,
		       const char *why)
{
	size_t wl = strlen(why);

	if (!c->structured) {
		if (!m && !(m = msg_new(0, 0)))
			return -ENOMEM;
		simple_hdr(m, nbd_errno(err), cookie);
		m->dlen = 0;
		out_push(c, m);
		return 0;
	}
	if (!m) {
		if (!(m = msg_new(0, 6 + wl)))
			return -ENOMEM;
		be32((uint8_t *)(m + 1), nbd_errno(err));
		be16((uint8_t *)(m + 1) + 4, (uint16_t)wl);
		memcpy((uint8_t *)(m + 1) + 6, why, wl);
		chunk_hdr(m, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, (uint32_t)(6 + wl));
	} else {
		/* a request's own message: the payload fits in its header room */
		if (wl > sizeof(m->hdr) - 26)
			wl = sizeof(m->hdr) - 26;
		chunk_hdr(m, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, (uint32_t)(6 + wl));
		be32(m->hdr + 20, nbd_errno(err));
		be16(m->hdr + 24, (uint16_t)wl);
		memcpy(m->hdr + 26, why, wl);
		m->hlen = (uint32_t)(26 + wl);
		m->dlen = 0;
	}
	out_push(c, m);
	return 0;
}

static void msg_sent(struct nbd_client *c, struct nbd_msg *m)
{
	struct nbd_req *owner = m->owner;

	c->out_msgs--;
	if (m->heap)
		free(m);
	if (owner)
		req_free(owner);
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct nbd_client *c = w->data;
	int progress = 0;

	(void)revents;
	while (c->out) {
		struct iovec iov[32];
		struct msghdr mh = { .msg_iov = iov };
		size_t skip;
		int k = 0;

		for (struct nbd_msg *m = c->out; m && k < 31; m = m->next) {
			skip = m == c->out ? m->sent : 0;
			if (skip < m->hlen)
				iov[k++] = (struct iovec){ m->hdr + skip, m->hlen - skip };
			if (m->dlen) {
				size_t ds = skip > m->hlen ? skip - m->hlen : 0;
				iov[k++] = (struct iovec){ (void *)(m->data + ds), m->dlen - ds };
			}
		}
		mh.msg_iovlen = (size_t)k;
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			client_kill(c, errno == EPIPE || errno == ECONNRESET ? NULL : "send failed");
			return;
		}
		progress = 1;
		size_t left = (size_t)n;
		while (left && c->out) {
			struct nbd_msg *m = c->out;
			size_t rest = m->hlen + m->dlen - m->sent;
			if (left < rest) {
				m->sent += left;
				break;
			}
			left -= rest;
			c->out = m->next;
			if (!c->out)
				c->out_tail = NULL;
			msg_sent(c, m);
		}
	}
	if (!c->out) {
		ev_io_stop(loop, &c->wio);
		if (c->transmission)
			ev_timer_stop(loop, &c->timer);
		if (c->closing && c->nreqs == 0) {
			client_kill(c, NULL);
			return;
		}
	} else if (progress && c->transmission) {
		/* the client takes its replies: restart its stall clock */
		c->timer.repeat = NBD_STALL_S;
		ev_timer_again(loop, &c->timer);
	} else if (c->transmission && !ev_is_active(&c->timer)) {
		c->timer.repeat = NBD_STALL_S;
		ev_timer_again(loop, &c->timer);
	}
}

/* ---- receive flow control --------------------------------------------- */
static int rx_allowed(struct nbd_client *c)
{
	if (c->dead || c->rx == RX_NONE)
		return 0;
	if (c->out_msgs >= NBD_CLIENT_MAX_MSGS)
		return 0;
	if (c->rx == RX_REQHDR)
		return c->nreqs < NBD_CLIENT_MAX_REQS && c->buffered < NBD_CLIENT_BUDGET &&
		       c->n->buffered < NBD_GLOBAL_BUDGET;
	return 1;
}

static void rx_update(struct nbd_client *c)
{
	if (rx_allowed(c))
		ev_io_start(c->n->td->loop, &c->rio);
	else
		ev_io_stop(c->n->td->loop, &c->rio);
}

static void rx_update_all(struct td_nbd *n)
{
	for (struct nbd_client *c = n->clients; c; c = c->next)
		rx_update(c);
}

/* ---- requests and pieces ---------------------------------------------------- */
static void client_free(struct nbd_client *c)
{
	struct td_nbd *n = c->n;

	if (c->prev)
		c->prev->next = c->next;
	else
		n->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void req_free(struct nbd_req *r)
{
	struct nbd_client *c = r->c;
	struct td_nbd *n = c->n;

	if (r->buf) {
		c->buffered -= r->len;
		n->buffered -= r->len;
		free(r->buf);
	}
	free(r->chunks);
	free(r);
	if (--c->nreqs == 0 && c->dead)
		client_free(c);
	rx_update_all(n); /* budgets freed: readers may go on */
}

static void enqueue(struct td_nbd *n, struct nbd_req *r)
{
	r->qnext = NULL;
	r->queued = 1;
	if (n->qtail)
		n->qtail->qnext = r;
	else
		n->qhead = r;
	n->qtail = r;
}

static void pump(struct td_nbd *n);
static void req_reply(struct nbd_req *r);

/* A request's pieces all came back, or one more did. */
static void req_progress(struct nbd_req *r)
{
	if (r->pending || r->queued)
		return;
	if (r->c->dead) {
		req_free(r);
		return;
	}
	if (!r->err && r->flush == 1) {
		enqueue(r->c->n, r); /* FUA: the data is written, now the flush */
		return;
	}
	req_reply(r);
}

static void piece_finish(struct nbd_piece *p, int res)
{
	struct td_nbd *n = p->n;
	struct nbd_req *r = p->r;

	p->r = NULL;
	p->next = n->free_pieces;
	n->free_pieces = p;
	n->inflight--;
	r->pending--;
	if (res && !r->err)
		r->err = res;
	req_progress(r);
}

static void piece_done(struct td_io *io, int res)
{
	struct nbd_piece *p = (struct nbd_piece *)((char *)io - offsetof(struct nbd_piece, io));
	struct td_nbd *n = p->n;

	piece_finish(p, res);
	pump(n); /* a slot is free (no-op while pump itself is running) */
	if (n->paused && !n->inflight)
		td_ctl_nbd_idle(n->td->ctl);
}

/* Hand queued work to the driver, one piece per request in turn, while
 * piece slots are free. */
static void pump(struct td_nbd *n)
{
	int submitted = 0;

	if (n->pumping || n->paused)
		return;
	n->pumping = 1;
	while (n->free_pieces && n->qhead) {
		struct nbd_req *r = n->qhead;
		struct nbd_piece *p = n->free_pieces;
		enum pvio_blkback_op op;
		uint64_t off = 0;
		int iovcnt = 1, last, err;

		p->iov.iov_base = NULL;
		p->iov.iov_len = 0;
		/* data first, one piece per turn; a flush (FLUSH, or FUA once
		 * the data is written: req_progress queues it again) last */
		if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) && r->issued < r->len) {
			uint32_t len = r->len - r->issued < n->piece_max ? r->len - r->issued : n->piece_max;
			op = r->type == NBD_CMD_READ ? PVIO_BLKBACK_READ : PVIO_BLKBACK_WRITE;
			off = r->off + r->issued;
			p->iov.iov_base = r->buf + r->issued;
			p->iov.iov_len = len;
			r->issued += len;
			last = r->issued == r->len;
		} else if (r->type == NBD_CMD_WRITE_ZEROES && r->issued < r->len &&
			   !(r->flags & NBD_CMD_FLAG_NO_HOLE) && n->td->img.can_discard) {
			op = PVIO_BLKBACK_DISCARD; /* a hole reads back zeros */
			off = r->off;
			p->iov.iov_len = r->len;
			r->issued = r->len;
			last = 1;
		} else if (r->type == NBD_CMD_WRITE_ZEROES && r->issued < r->len) {
			uint32_t len = r->len - r->issued < n->piece_max ? r->len - r->issued : n->piece_max;
			op = PVIO_BLKBACK_WRITE;
			off = r->off + r->issued;
			p->iov.iov_base = n->zeros; /* only ever read from */
			p->iov.iov_len = len;
			r->issued += len;
			last = r->issued == r->len;
		} else if (r->type == NBD_CMD_TRIM && r->issued < r->len) {
			op = PVIO_BLKBACK_DISCARD; /* one iovec: NULL, the byte count */
			off = r->off;
			p->iov.iov_len = r->len;
			r->issued = r->len;
			last = 1;
		} else {
			op = PVIO_BLKBACK_FLUSH;
			iovcnt = 0;
			r->flush = 2;
			last = 1;
		}
		n->qhead = r->qnext;
		if (!n->qhead)
			n->qtail = NULL;
		if (last)
			r->queued = 0;
		else
			enqueue(n, r); /* round robin: to the back */
		n->free_pieces = p->next;
		p->r = r;
		r->pending++;
		n->inflight++;
		err = td_io_submit(n->td, &p->io, op, off, iovcnt ? &p->iov : NULL, iovcnt);
		if (err) {
			td_log(TD_ERR, "nbd client %u: %s at %llu: the driver refused: %s", r->c->id,
			       cmd_name(r->type), (unsigned long long)off, strerror(-err));
			piece_finish(p, err);
		}
		submitted = 1;
	}
	n->pumping = 0;
	if (submitted)
		td_kick(n->td);
}

/* Split a successful structured read into data and hole chunks: a hole
 * chunk only where the driver says nothing is allocated AND the bytes we
 * read are zeros (a concurrent guest write may have landed since). */
static unsigned read_chunks(struct nbd_req *r, uint64_t *start, uint32_t *len, int *hole)
{
	struct td *td = r->c->n->td;
	uint64_t pos = r->off, end = r->off + r->len;
	unsigned k = 0;

	while (pos < end) {
		uint64_t run = end - pos;
		int h = 0;
		/* with the last chunk slot left, the rest goes as data */
		if (k + 1 < NBD_MAX_CHUNKS && td->drv->extent &&
		    (td->drv->extent(&td->img, pos, end - pos, &run, &h) < 0 || run == 0 ||
		     run > end - pos)) {
			run = end - pos;
			h = 0;
		}
		if (h && !all_zero(r->buf + (pos - r->off), run))
			h = 0;
		if (k && !h && !hole[k - 1]) {
			len[k - 1] += (uint32_t)run; /* adjacent data: one chunk */
		} else {
			start[k] = pos;
			len[k] = (uint32_t)run;
			hole[k] = h;
			k++;
		}
		pos += run;
	}
	return k;
}

static void chunk_fill(struct nbd_req *r, struct nbd_msg *m, uint64_t start, uint32_t len,
		       int hole, int last)
{
	uint16_t fl = last ? NBD_REPLY_FLAG_DONE : 0;

	if (hole) {
		chunk_hdr(m, fl, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie, 12);
		be64(m->hdr + 20, start);
		be32(m->hdr + 28, len);
		m->hlen = 32;
		m->dlen = 0;
	} else {
		chunk_hdr(m, fl, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie, 8 + len);
		be64(m->hdr + 20, start);
		m->hlen = 28;
		m->data = r->buf + (start - r->off);
		m->dlen = len;
	}
}

static void req_reply(struct nbd_req *r)
{
	struct nbd_client *c = r->c;
	struct td_nbd *n = c->n;
	struct nbd_msg *m = &r->msg;

	m->owner = r;
	m->heap = 0;
	if (r->err) {
		char why[64];
		n->st.io_errors++;
		td_log(TD_ERR, "nbd client %u: %s of %u bytes at %llu failed: %s", c->id,
		       cmd_name(r->type), r->len, (unsigned long long)r->off, strerror(-r->err));
		snprintf(why, sizeof(why), "%s failed: %s", cmd_name(r->type), strerror(-r->err));
		if (error_reply(c, NULL, r->cookie, r->err, why) == 0)
			req_free(r); /* the answer is a message of its own */
		else
			error_reply(c, m, r->cookie, r->err, why); /* (cut short) */
		return;
	}
	switch (r->type) {
	case NBD_CMD_READ:
		n->st.reqs[PVIO_BLKBACK_READ]++;
		n->st.bytes_read += r->len;
		break;
	case NBD_CMD_WRITE:
		n->st.reqs[PVIO_BLKBACK_WRITE]++;
		n->st.bytes_written += r->len;
		break;
	case NBD_CMD_TRIM:
		n->st.reqs[PVIO_BLKBACK_DISCARD]++;
		break;
	case NBD_CMD_WRITE_ZEROES:
		n->st.write_zeroes++;
		break;
	case NBD_CMD_CACHE:
		break;
	default:
		n->st.reqs[PVIO_BLKBACK_FLUSH]++;
		break;
	}
	if (r->type != NBD_CMD_READ) {
		simple_hdr(m, 0, r->cookie);
		m->dlen = 0;
		out_push(c, m);
		return;
	}
	if (!c->structured) {
		simple_hdr(m, 0, r->cookie);
		m->data = r->buf;
		m->dlen = r->len;
		out_push(c, m);
		return;
	}
	uint64_t start[NBD_MAX_CHUNKS];
	uint32_t len[NBD_MAX_CHUNKS];
	int hole[NBD_MAX_CHUNKS];
	unsigned k = 1;

	start[0] = r->off;
	len[0] = r->len;
	hole[0] = 0;
	if (!(r->flags & NBD_CMD_FLAG_DF))
		k = read_chunks(r, start, len, hole);
	if (k > 1 && !(r->chunks = calloc(k - 1, sizeof(*r->chunks)))) {
		k = 1; /* no memory for the split: all of it as data */
		len[0] = r->len;
		hole[0] = 0;
	}
	for (unsigned i = 0; i + 1 < k; i++) {
		chunk_fill(r, &r->chunks[i], start[i], len[i], hole[i], 0);
		out_push(c, &r->chunks[i]);
	}
	chunk_fill(r, m, start[k - 1], len[k - 1], hole[k - 1], 1);
	out_push(c, m);
}

/* ---- block status (synchronous: in-memory maps and lseek) ----------------- */
static int block_status(struct nbd_client *c, uint64_t cookie, uint64_t off, uint32_t len,
			int one)
{
	struct td *td = c->n->td;
	uint8_t *p;
	unsigned k = 0;
	uint64_t pos = off, end = off + len;
	uint32_t dl[NBD_MAX_DESC];
	uint32_t df[NBD_MAX_DESC];

	while (pos < end && k < (one ? 1u : NBD_MAX_DESC)) {
		uint64_t run = end - pos;
		int hole = 0;
		if (td->drv->extent) {
			int err = td->drv->extent(&td->img, pos, end - pos, &run, &hole);
			if (err)
				return err;
			if (run == 0 || run > end - pos)
				run = end - pos;
		}
		uint32_t fl = hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
		if (k && df[k - 1] == fl) {
			dl[k - 1] += (uint32_t)run;
		} else {
			dl[k] = (uint32_t)run;
			df[k] = fl;
			k++;
		}
		pos += run;
	}
	struct nbd_msg *m = msg_new(0, 4 + 8 * (size_t)k);
	if (!m)
		return -ENOMEM;
	p = (uint8_t *)(m + 1);
	be32(p, NBD_META_ID);
	for (unsigned i = 0; i < k; i++) {
		be32(p + 4 + 8 * i, dl[i]);
		be32(p + 8 + 8 * i, df[i]);
	}
	chunk_hdr(m, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, 4 + 8 * k);
	out_push(c, m);
	c->n->st.block_status++;
	return 0;
}

/* ---- the transmission phase ---------------------------------------------- */
/* Refuse a request (kept connection): log, count, answer. */
static int refuse(struct nbd_client *c, uint64_t cookie, unsigned type, uint64_t off,
		  uint32_t len, int err, const char *why)
{
	c->n->st.refused++;
	if (++c->refusals <= NBD_LOG_REFUSALS)
		td_log(TD_WARN, "nbd client %u: refusing %s (type %u) of %u bytes at %llu: %s%s",
		       c->id, cmd_name(type), type, len, (unsigned long long)off, why,
		       c->refusals == NBD_LOG_REFUSALS ? " (further refusals are only counted)" : "");
	if (error_reply(c, NULL, cookie, err, why)) {
		client_kill(c, "out of memory");
		return -1;
	}
	return 0;
}

static int rx_request(struct nbd_client *c)
{
	struct td_nbd *n = c->n;
	struct td *td = n->td;
	uint64_t size = td->img.size - td->img.size % 512;
	uint32_t magic = rd32(c->hdr);
	uint16_t flags = rd16(c->hdr + 4), type = rd16(c->hdr + 6);
	uint64_t cookie = rd64(c->hdr + 8), off = rd64(c->hdr + 16);
	uint32_t len = rd32(c->hdr + 24), allowed = NBD_CMD_FLAG_FUA;
	const char *why = NULL;
	int err = -EINVAL;

	if (magic != NBD_REQUEST_MAGIC) {
		client_kill(c, "bad request magic");
		return -1;
	}
	c->rx = RX_REQHDR;
	c->got = 0;
	c->want = 28;
	if (type == NBD_CMD_DISC) {
		td_log(TD_INFO, "nbd client %u: disconnect requested", c->id);
		c->rx = RX_NONE;
		c->closing = 1;
		if (!c->out && c->nreqs == 0) {
			client_kill(c, NULL);
			return -1;
		}
		return 0;
	}
	if (type == NBD_CMD_READ && c->structured)
		allowed |= NBD_CMD_FLAG_DF;
	if (type == NBD_CMD_BLOCK_STATUS)
		allowed |= NBD_CMD_FLAG_REQ_ONE;
	if (type == NBD_CMD_WRITE_ZEROES)
		allowed |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	if (type == NBD_CMD_CACHE)
		allowed = 0;
	int writes = type == NBD_CMD_WRITE || type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES;

	if (type != NBD_CMD_READ && type != NBD_CMD_WRITE && type != NBD_CMD_FLUSH &&
	    type != NBD_CMD_TRIM && type != NBD_CMD_BLOCK_STATUS && type != NBD_CMD_WRITE_ZEROES &&
	    type != NBD_CMD_CACHE)
		why = "unknown command";
	else if (flags & ~allowed)
		why = "unknown or inapplicable command flags";
	else if (writes && td->img.readonly)
		why = "the disk is read-only", err = -EPERM;
	else if (type == NBD_CMD_WRITE_ZEROES && (flags & NBD_CMD_FLAG_FAST_ZERO) &&
		 ((flags & NBD_CMD_FLAG_NO_HOLE) || !td->img.can_discard))
		why = "fast zero asked for, but zeros would have to be written", err = -EOPNOTSUPP;
	else if (type == NBD_CMD_TRIM && !td->img.can_discard)
		why = "trim is not offered on this disk";
	else if (type == NBD_CMD_BLOCK_STATUS && !c->meta)
		why = "no metadata context negotiated";
	else if (type == NBD_CMD_FLUSH && (off || len))
		why = "flush with an offset or length";
	else if (type != NBD_CMD_FLUSH && len == 0)
		why = "zero length";
	else if ((type == NBD_CMD_READ || type == NBD_CMD_WRITE) && len > NBD_MAX_PAYLOAD)
		why = "longer than the 32 MiB maximum", err = -EOVERFLOW;
	else if (type != NBD_CMD_FLUSH && (off > size || len > size - off))
		why = "past the end of the disk", err = writes ? -ENOSPC : -EINVAL;
	else if (type != NBD_CMD_BLOCK_STATUS && type != NBD_CMD_FLUSH && (off % 512 || len % 512))
		why = "not aligned to 512-byte sectors (the advertised minimum block size)";

	if (!why && type == NBD_CMD_BLOCK_STATUS) {
		err = block_status(c, cookie, off, len, flags & NBD_CMD_FLAG_REQ_ONE);
		if (err)
			why = "block status failed";
		else
			return 0;
	}
	if (why) {
		if (refuse(c, cookie, type, off, len, err, why))
			return -1;
		if (type == NBD_CMD_WRITE && len) { /* its payload follows: drop it */
			c->rx = RX_SKIP;
			c->skip = len;
			c->after_skip = RX_REQHDR;
		}
		return 0;
	}

	struct nbd_req *r = calloc(1, sizeof(*r));
	if (r && (type == NBD_CMD_READ || type == NBD_CMD_WRITE) &&
	    posix_memalign((void **)&r->buf, 4096, len)) {
		free(r);
		r = NULL;
	}
	if (!r) {
		if (refuse(c, cookie, type, off, len, -ENOMEM, "out of memory"))
			return -1;
		if (type == NBD_CMD_WRITE) {
			c->rx = RX_SKIP;
			c->skip = len;
			c->after_skip = RX_REQHDR;
		}
		return 0;
	}
	r->c = c;
	r->cookie = cookie;
	r->off = off;
	r->len = type == NBD_CMD_FLUSH ? 0 : len;
	r->type = type;
	r->flags = flags;
	r->flush = type == NBD_CMD_FLUSH || (flags & NBD_CMD_FLAG_FUA && type != NBD_CMD_READ);
	c->nreqs++;
	if (r->buf) {
		c->buffered += len;
		n->buffered += len;
	}
	if (type == NBD_CMD_WRITE) {
		c->cur = r;
		c->rx = RX_PAYLOAD;
		c->want = len;
		return 0;
	}
	if (type == NBD_CMD_CACHE) {
		req_reply(r); /* advisory: nothing to prefetch (see the top) */
		return 0;
	}
	enqueue(n, r);
	return 0;
}

/* ---- the handshake --------------------------------------------------------- */
static uint16_t tx_flags(struct nbd_client *c)
{
	struct td_image *img = &c->n->td->img;
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_CAN_MULTI_CONN; /* one driver for all: a flush covers everyone */

	f |= NBD_FLAG_SEND_CACHE;
	if (img->readonly)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_WRITE_ZEROES;
	if (!img->readonly && img->can_discard)
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_FAST_ZERO;
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

static int export_known(struct nbd_client *c, const uint8_t *name, uint32_t len)
{
	const char *dev = c->n->td->dev;

	return len == 0 || (len == strlen(dev) && !memcmp(name, dev, len));
}

static void enter_transmission(struct nbd_client *c)
{
	c->transmission = 1;
	c->rx = RX_REQHDR;
	c->got = 0;
	c->want = 28;
	ev_timer_stop(c->n->td->loop, &c->timer);
	td_log(TD_INFO, "nbd client %u: transmission (%s replies%s)", c->id,
	       c->structured ? "structured" : "simple", c->meta ? ", base:allocation" : "");
}

static int opt_info_go(struct nbd_client *c)
{
	const uint8_t *d = c->optbuf;
	struct td *td = c->n->td;
	uint32_t nl, nr, want_name = 0, want_desc = 0;
	uint8_t b[32 + NBD_MAX_STRING];
	char desc[512];

	if (c->optlen < 6 || (nl = rd32(d)) > c->optlen - 6 || nl > NBD_MAX_STRING)
		return opt_error(c, NBD_REP_ERR_INVALID, "malformed INFO/GO option");
	nr = rd16(d + 4 + nl);
	if (c->optlen != 6 + nl + 2 * nr)
		return opt_error(c, NBD_REP_ERR_INVALID, "INFO/GO length does not match its requests");
	if (!export_known(c, d + 4, nl))
		return opt_error(c, NBD_REP_ERR_UNKNOWN, "no such export (use \"\" or the device name)");
	for (uint32_t i = 0; i < nr; i++) {
		uint16_t t = rd16(d + 6 + nl + 2 * i);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	be16(b, NBD_INFO_EXPORT);
	be64(b + 2, td->img.size - td->img.size % 512);
	be16(b + 10, tx_flags(c));
	if (opt_reply(c, NBD_REP_INFO, b, 12))
		return -ENOMEM;
	/* always (the spec allows it unasked): we take whole sectors only */
	be16(b, NBD_INFO_BLOCK_SIZE);
	be32(b + 2, NBD_MIN_BLOCK);
	be32(b + 6, NBD_PREF_BLOCK);
	be32(b + 10, NBD_MAX_PAYLOAD);
	if (opt_reply(c, NBD_REP_INFO, b, 14))
		return -ENOMEM;
	if (want_name) {
		size_t l = strlen(td->dev);
		be16(b, NBD_INFO_NAME);
		memcpy(b + 2, td->dev, l);
		if (opt_reply(c, NBD_REP_INFO, b, (uint32_t)(2 + l)))
			return -ENOMEM;
	}
	if (want_desc) {
		int l = snprintf(desc, sizeof(desc), "pvio tapdisk: domain %u device %u (%s)",
				 td->domid, td->devid, td->dev);
		be16(b, NBD_INFO_DESCRIPTION);
		memcpy(b + 2, desc, (size_t)l < sizeof(desc) ? (size_t)l : sizeof(desc) - 1);
		if (opt_reply(c, NBD_REP_INFO, b, (uint32_t)(2 + ((size_t)l < sizeof(desc) ? (size_t)l : sizeof(desc) - 1))))
			return -ENOMEM;
	}
	if (opt_reply(c, NBD_REP_ACK, NULL, 0))
		return -ENOMEM;
	if (c->opt == NBD_OPT_GO)
		enter_transmission(c);
	return 0;
}

static int opt_meta(struct nbd_client *c)
{
	const uint8_t *d = c->optbuf, *end = c->optbuf + c->optlen;
	int list = c->opt == NBD_OPT_LIST_META_CONTEXT, found = 0;
	uint32_t nl, nq;
	uint8_t b[4 + sizeof(NBD_META_BASE_ALLOCATION)];

	if (!c->structured)
		return opt_error(c, NBD_REP_ERR_INVALID, "negotiate structured replies first");
	if (c->optlen < 8 || (nl = rd32(d)) > c->optlen - 8 || nl > NBD_MAX_STRING)
		return opt_error(c, NBD_REP_ERR_INVALID, "malformed meta context option");
	nq = rd32(d + 4 + nl);
	const uint8_t *q = d + 8 + nl;
	/* validate every query before answering any */
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql;
		if (end - q < 4 || (ql = rd32(q)) > (uint32_t)(end - q - 4) || ql > NBD_MAX_STRING)
			return opt_error(c, NBD_REP_ERR_INVALID, "malformed meta context query");
		q += 4 + ql;
	}
	if (q != end)
		return opt_error(c, NBD_REP_ERR_INVALID, "meta context option has trailing bytes");
	if (!export_known(c, d + 4, nl))
		return opt_error(c, NBD_REP_ERR_UNKNOWN, "no such export");
	q = d + 8 + nl;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql = rd32(q);
		const uint8_t *s = q + 4;
		if ((ql == 15 && !memcmp(s, NBD_META_BASE_ALLOCATION, 15)) ||
		    (list && ql == 5 && !memcmp(s, "base:", 5)))
			found = 1;
		q += 4 + ql;
	}
	if (list && nq == 0)
		found = 1;
	if (!list)
		c->meta = found; /* SET replaces the previous choice */
	if (found) {
		be32(b, list ? 0 : NBD_META_ID);
		memcpy(b + 4, NBD_META_BASE_ALLOCATION, 15);
		if (opt_reply(c, NBD_REP_META_CONTEXT, b, 19))
			return -ENOMEM;
	}
	return opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* 0, -ENOMEM (the caller drops the client), or 1: the client is gone. */
static int rx_option(struct nbd_client *c)
{
	struct td *td = c->n->td;
	uint8_t b[8 + 2 + 124];

	switch (c->opt) {
	case NBD_OPT_EXPORT_NAME:
		if (!export_known(c, c->optbuf, c->optlen)) {
			/* no way to say no but hanging up (the spec's rule) */
			client_kill(c, "asked for an unknown export name");
			return 1;
		}
		memset(b, 0, sizeof(b));
		be64(b, td->img.size - td->img.size % 512);
		be16(b + 8, tx_flags(c));
		{
			struct nbd_msg *m = msg_new(0, c->no_zeroes ? 10 : sizeof(b));
			if (!m)
				return -ENOMEM;
			memcpy((uint8_t *)(m + 1), b, m->dlen);
			out_push(c, m);
		}
		enter_transmission(c);
		return 0;
	case NBD_OPT_ABORT:
		td_log(TD_INFO, "nbd client %u: aborts the handshake", c->id);
		c->rx = RX_NONE;
		c->closing = 1;
		return opt_reply(c, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST: {
		size_t l = strlen(td->dev);
		if (c->optlen)
			return opt_error(c, NBD_REP_ERR_INVALID, "LIST takes no data");
		be32(b, (uint32_t)l);
		memcpy(b + 4, td->dev, l < sizeof(b) - 4 ? l : sizeof(b) - 4);
		if (opt_reply(c, NBD_REP_SERVER, b, (uint32_t)(4 + l)))
			return -ENOMEM;
		return opt_reply(c, NBD_REP_ACK, NULL, 0);
	}
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(c);
	case NBD_OPT_STRUCTURED_REPLY:
		if (c->optlen)
			return opt_error(c, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
		c->structured = 1;
		return opt_reply(c, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return opt_meta(c);
	default:
		return opt_error(c, NBD_REP_ERR_UNSUP, "unsupported option");
	}
}

/* ---- receive ---------------------------------------------------------------- */
/* A whole item arrived in the current rx state: act on it.  -1: the client
 * is gone (do not touch it). */
static int rx_item(struct nbd_client *c)
{
	int err;

	switch (c->rx) {
	case RX_CFLAGS: {
		uint32_t f = rd32(c->hdr);
		if (f & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
			client_kill(c, "unknown client flags");
			return -1;
		}
		c->no_zeroes = !!(f & NBD_FLAG_C_NO_ZEROES);
		c->rx = RX_OPTHDR;
		c->got = 0;
		c->want = 16;
		return 0;
	}
	case RX_OPTHDR:
		if (rd64(c->hdr) != NBD_IHAVEOPT) {
			client_kill(c, "bad option magic");
			return -1;
		}
		c->opt = rd32(c->hdr + 8);
		c->optlen = rd32(c->hdr + 12);
		c->got = 0;
		if (c->optlen > NBD_MAX_OPTLEN) {
			c->rx = RX_SKIP;
			c->skip = c->optlen;
			c->after_skip = RX_OPTHDR;
			return 0;
		}
		if (c->optlen) {
			c->rx = RX_OPTDATA;
			c->want = c->optlen;
			return 0;
		}
		/* an option without data */
		__attribute__((fallthrough));
	case RX_OPTDATA:
		c->rx = RX_OPTHDR;
		c->got = 0;
		c->want = 16;
		err = rx_option(c);
		if (err < 0)
			client_kill(c, "out of memory");
		return err ? -1 : 0;
	case RX_REQHDR:
		return rx_request(c);
	case RX_PAYLOAD: {
		struct nbd_req *r = c->cur;
		c->cur = NULL;
		c->rx = RX_REQHDR;
		c->got = 0;
		c->want = 28;
		enqueue(c->n, r);
		return 0;
	}
	case RX_SKIP:
		c->rx = c->after_skip;
		c->got = 0;
		if (c->rx == RX_OPTHDR) {
			c->want = 16;
			if (opt_error(c, NBD_REP_ERR_TOO_BIG, "option data too long")) {
				client_kill(c, "out of memory");
				return -1;
			}
		} else {
			c->want = 28;
		}
		return 0;
	case RX_NONE:
		break;
	}
	return 0;
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct nbd_client *c = w->data;
	struct td_nbd *n = c->n;
	uint8_t scratch[65536];

	(void)loop;
	(void)revents;
	for (int i = 0; i < NBD_RX_BURST && rx_allowed(c); i++) {
		uint8_t *dst;
		size_t want;
		ssize_t got;

		if (c->rx == RX_SKIP) {
			dst = scratch;
			want = c->skip < sizeof(scratch) ? (size_t)c->skip : sizeof(scratch);
		} else if (c->rx == RX_OPTDATA) {
			dst = c->optbuf + c->got;
			want = c->want - c->got;
		} else if (c->rx == RX_PAYLOAD) {
			dst = c->cur->buf + c->got;
			want = c->want - c->got;
		} else {
			dst = c->hdr + c->got;
			want = c->want - c->got;
		}
		got = read(c->fd, dst, want);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got <= 0) {
			int mid = c->got || c->rx == RX_PAYLOAD || c->rx == RX_SKIP || c->rx == RX_OPTDATA;
			client_kill(c, got < 0 ? "receive failed"
					       : mid ? "hung up in the middle of a message"
					       : c->transmission ? NULL : "hung up during the handshake");
			pump(n);
			return;
		}
		if (c->rx == RX_SKIP) {
			c->skip -= (uint64_t)got;
			if (c->skip)
				continue;
		} else {
			c->got += (size_t)got;
			if (c->got < c->want)
				continue;
		}
		if (rx_item(c) < 0) {
			pump(n);
			return;
		}
	}
	rx_update(c);
	pump(n);
}

/* ---- clients ------------------------------------------------------------------ */
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nbd_client *c = w->data;

	(void)loop;
	(void)revents;
	client_kill(c, c->transmission ? "took none of its replies for 60 s"
				       : "did not finish the handshake within 30 s");
}

/* Disconnect @c (@why: logged as a protocol violation; NULL: a normal
 * goodbye).  Frees it at once if none of its I/O is in the driver, else
 * when the last piece comes back. */
static void client_kill(struct nbd_client *c, const char *why)
{
	struct td_nbd *n = c->n;
	struct ev_loop *loop = n->td->loop;

	if (c->dead)
		return;
	if (why) {
		n->st.dropped++;
		td_log(TD_WARN, "nbd client %u: disconnecting: %s", c->id, why);
	} else {
		td_log(TD_INFO, "nbd client %u: disconnected", c->id);
	}
	c->dead = 1;
	n->nclients--;
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	c->fd = -1;
	c->nreqs++; /* hold: req_free must not free the client in this loop */
	/* waiting requests leave the queue */
	for (struct nbd_req **pp = &n->qhead, *prev = NULL; *pp;) {
		struct nbd_req *r = *pp;
		if (r->c != c) {
			prev = r;
			pp = &r->qnext;
			continue;
		}
		*pp = r->qnext;
		if (n->qtail == r)
			n->qtail = prev;
		r->queued = 0;
		if (!r->pending)
			req_free(r);
	}
	if (c->cur) {
		req_free(c->cur);
		c->cur = NULL;
	}
	while (c->out) {
		struct nbd_msg *m = c->out;
		c->out = m->next;
		msg_sent(c, m);
	}
	c->out_tail = NULL;
	/* what is left has pieces in the driver: the last req_free ends it */
	if (--c->nreqs == 0)
		client_free(c);
	rx_update_all(n);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_nbd *n = w->data;
	struct nbd_client *c;
	uint8_t hello[18];
	int fd;

	(void)revents;
	fd = accept4(n->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (n->nclients >= NBD_MAX_CLIENTS) {
		td_log(TD_WARN, "nbd: %u clients connected already: refusing another", n->nclients);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		td_log(TD_ERR, "nbd: out of memory for a client");
		close(fd);
		return;
	}
	c->n = n;
	c->fd = fd;
	c->id = ++n->next_id;
	c->rx = RX_CFLAGS;
	c->want = 4;
	c->next = n->clients;
	if (n->clients)
		n->clients->prev = c;
	n->clients = c;
	n->nclients++;
	n->st.connections++;
	ev_io_init(&c->rio, rio_cb, fd, EV_READ);
	c->rio.data = c;
	ev_io_init(&c->wio, wio_cb, fd, EV_WRITE);
	c->wio.data = c;
	ev_timer_init(&c->timer, timer_cb, NBD_HANDSHAKE_S, 0.);
	c->timer.data = c;
	ev_timer_start(loop, &c->timer);
	td_log(TD_INFO, "nbd client %u: connected (%u now)", c->id, n->nclients);

	struct nbd_msg *m = msg_new(0, sizeof(hello));
	if (!m) {
		client_kill(c, "out of memory");
		return;
	}
	be64(hello, NBD_MAGIC);
	be64(hello + 8, NBD_IHAVEOPT);
	be16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	memcpy((uint8_t *)(m + 1), hello, sizeof(hello));
	out_push(c, m);
	rx_update(c);
}

/* ---- the server ----------------------------------------------------------------- */
int td_nbd_open(struct td *td, const char *path)
{
	struct td_nbd *n;
	int fd;

	if (strlen(path) >= sizeof(n->path)) {
		td_log(TD_ERR, "nbd socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	/* the socket reads and writes the guest's disk: owner only */
	fd = td_listen(path, "nbd", 1, 16);
	if (fd < 0)
		return fd;
	n = calloc(1, sizeof(*n));
	if (!n) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	n->td = td;
	snprintf(n->path, sizeof(n->path), "%s", path);
	for (unsigned i = 0; i < TD_NBD_SLOTS; i++) {
		n->pieces[i].io.done = piece_done;
		n->pieces[i].n = n;
		n->pieces[i].next = n->free_pieces;
		n->free_pieces = &n->pieces[i];
	}
	n->piece_max = NBD_PIECE;
	if (td->img.max_io && td->img.max_io < n->piece_max)
		n->piece_max = td->img.max_io - td->img.max_io % 512;
	if (!td->img.readonly && posix_memalign((void **)&n->zeros, 4096, n->piece_max)) {
		close(fd);
		unlink(path);
		free(n);
		return -ENOMEM;
	}
	if (n->zeros)
		memset(n->zeros, 0, n->piece_max);
	n->lfd = fd;
	ev_io_init(&n->lio, accept_cb, fd, EV_READ);
	n->lio.data = n;
	ev_io_start(td->loop, &n->lio);
	td->nbd = n;
	td_log(TD_INFO, "nbd export on %s (%s%s, %llu bytes)", path,
	       td->img.readonly ? "read-only" : "read-write",
	       !td->img.readonly && td->img.can_discard ? ", trim" : "",
	       (unsigned long long)td->img.size);
	return 0;
}

void td_nbd_close(struct td_nbd *n)
{
	struct ev_loop *loop;

	if (!n)
		return;
	loop = n->td->loop;
	ev_io_stop(loop, &n->lio);
	close(n->lfd);
	unlink(n->path);
	for (struct nbd_client *c = n->clients, *next; c; c = next) {
		next = c->next;
		if (!c->dead)
			client_kill(c, NULL);
	}
	/* pieces in the driver point at our requests: let them come back */
	while (n->inflight)
		ev_run(loop, EVRUN_ONCE);
	while (n->clients) { /* none should be left; be sure */
		struct nbd_client *c = n->clients;
		n->clients = c->next;
		free(c);
	}
	free(n->zeros);
	free(n);
}

void td_nbd_pause(struct td_nbd *n)
{
	if (!n || n->paused)
		return;
	n->paused = 1;
	td_log(TD_INFO, "nbd: paused (%u piece(s) still in the driver)", n->inflight);
}

void td_nbd_unpause(struct td_nbd *n)
{
	if (!n || !n->paused)
		return;
	n->paused = 0;
	td_log(TD_INFO, "nbd: unpaused");
	pump(n);
}

int td_nbd_idle(const struct td_nbd *n)
{
	return !n || n->inflight == 0;
}

const char *td_nbd_path(const struct td_nbd *n)
{
	return n ? n->path : NULL;
}

void td_nbd_get_stats(const struct td_nbd *n, struct td_nbd_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!n)
		return;
	*st = n->st;
	st->clients = n->nclients;
}
