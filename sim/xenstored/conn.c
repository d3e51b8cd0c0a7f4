/* SPDX-License-Identifier: MIT */
/*
 * The wire: listening sockets, accepting connections, reassembling
 * xsd_sockmsg requests from a byte stream, and per-connection output queues
 * so that a slow or stuck client never blocks the daemon. Every connection
 * is bounded: at most XSD_PAUSE_BYTES of replies before we stop reading its
 * requests, at most XSD_MAX_OUT_EVENTS / XSD_MAX_OUT_BYTES of watch events
 * before further events for it are dropped (XSA-349).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "txn.h"
#include "watch.h"
#include "xenstored.h"

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);

static const char *conn_who(const struct conn *c)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "dom%u", c->domid);
	return buf;
}

void conn_kill(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	xsd_log("conn %u (%s): closed: %s", c->id, conn_who(c), why);
	c->dead = true;
	ev_io_stop(xsd.loop, &c->rio);
	ev_io_stop(xsd.loop, &c->wio);
	/* The fd is closed in conns_reap(): callers may still hold c. */
}

static void conn_free(struct conn *c)
{
	watch_free_all(c);
	txn_free_all(c);
	while (c->out_head) {
		struct outmsg *m = c->out_head;

		c->out_head = m->next;
		free(m);
	}
	close(c->fd);
	free(c);
}

void conns_reap(void)
{
	struct conn **pp = &xsd.conns;

	while (*pp) {
		struct conn *c = *pp;

		if (c->dead) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

void conns_free_all(void)
{
	for (struct conn *c = xsd.conns; c; c = c->next)
		conn_kill(c, "daemon exiting");
	conns_reap();
}

static void update_read_state(struct conn *c)
{
	if (c->dead)
		return;
	if (!c->paused && c->out_bytes > XSD_PAUSE_BYTES) {
		c->paused = true;
		ev_io_stop(xsd.loop, &c->rio);
	} else if (c->paused && c->out_bytes <= XSD_PAUSE_BYTES / 2) {
		c->paused = false;
		ev_io_start(xsd.loop, &c->rio);
	}
}

/* Send what the socket takes now; arm the write watcher for the rest. */
static void flush(struct conn *c)
{
	while (c->out_head && !c->dead) {
		struct outmsg *m = c->out_head;
		ssize_t n = send(c->fd, m->data + c->out_off, m->len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_kill(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
		if (c->out_off < m->len)
			continue;
		c->out_head = m->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_off = 0;
		c->out_bytes -= m->len;
		if (m->is_event) {
			c->out_events--;
			c->out_event_bytes -= m->len;
		}
		free(m);
	}
	if (c->dead)
		return;
	if (c->out_head)
		ev_io_start(xsd.loop, &c->wio);
	else
		ev_io_stop(xsd.loop, &c->wio);
	if (c->dropped && c->out_events < XSD_MAX_OUT_EVENTS / 2) {
		xsd_log("conn %u (%s): queue drained, %lu watch events were dropped",
			c->id, conn_who(c), c->dropped);
		c->dropped = 0;
	}
	update_read_state(c);
}

static void enqueue(struct conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
		    const void *a, size_t alen, const void *b, size_t blen, bool is_event)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id,
				 .len = (uint32_t)(alen + blen) };
	struct outmsg *m;

	if (c->dead)
		return;
	m = malloc(sizeof(*m) + sizeof(h) + alen + blen);
	if (!m) {
		/* A lost reply would hang the client forever: better to disconnect. */
		conn_kill(c, "out of memory queueing a message");
		return;
	}
	m->next = NULL;
	m->len = sizeof(h) + alen + blen;
	m->is_event = is_event;
	memcpy(m->data, &h, sizeof(h));
	if (alen)
		memcpy(m->data + sizeof(h), a, alen);
	if (blen)
		memcpy(m->data + sizeof(h) + alen, b, blen);
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	c->out_bytes += m->len;
	if (is_event) {
		c->out_events++;
		c->out_event_bytes += m->len;
	}
	/* Only try the socket when nothing was waiting: order is kept either way. */
	if (c->out_head == m)
		flush(c);
	else
		update_read_state(c);
}

void conn_send(struct conn *c, uint32_t type, uint32_t req_id, uint32_t tx_id,
	       const void *data, size_t len)
{
	enqueue(c, type, req_id, tx_id, data, len, NULL, 0, false);
}

void conn_send_error(struct conn *c, const struct xsd_sockmsg *req, int err)
{
	const char *name = xsd_errname(err);

	enqueue(c, XS_ERROR, req->req_id, req->tx_id, name, strlen(name) + 1, NULL, 0,
		false);
}

void conn_send_event(struct conn *c, const char *path, const char *token)
{
	size_t plen = strlen(path) + 1, tlen = strlen(token) + 1;

	if (c->dead)
		return;
	if (c->out_events >= XSD_MAX_OUT_EVENTS ||
	    c->out_event_bytes + sizeof(struct xsd_sockmsg) + plen + tlen > XSD_MAX_OUT_BYTES) {
		if (c->dropped++ == 0)
			xsd_log("conn %u (%s): not reading its watch events, "
				"dropping events (%u queued)", c->id, conn_who(c), c->out_events);
		return;
	}
	enqueue(c, XS_WATCH_EVENT, 0, 0, path, plen, token, tlen, true);
}

/*
 * Read what is available into the current message. Returns 1 when a whole
 * message is there, 0 when more bytes are needed, -1 if c was closed.
 */
static int fill(struct conn *c)
{
	const size_t hlen = sizeof(struct xsd_sockmsg);

	for (;;) {
		size_t want;
		char *dst;
		ssize_t n;

		if (c->in_have < hlen) {
			dst = (char *)c->hdr_raw + c->in_have;
			want = hlen - c->in_have;
		} else {
			if (c->in_have - hlen == c->hdr.len)
				return 1;
			dst = c->payload + (c->in_have - hlen);
			want = c->hdr.len - (c->in_have - hlen);
		}
		n = recv(c->fd, dst, want, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_kill(c, strerror(errno));
			return -1;
		}
		if (n == 0) {
			conn_kill(c, c->in_have ? "peer closed mid-message" : "peer closed");
			return -1;
		}
		c->in_have += (size_t)n;
		if (c->in_have == hlen) {
			/* Copy once, validate the copy: the header is ours from here on. */
			memcpy(&c->hdr, c->hdr_raw, hlen);
			if (c->hdr.len > XENSTORE_PAYLOAD_MAX) {
				char why[96];

				snprintf(why, sizeof(why), "malformed: payload length %u > %u",
					 c->hdr.len, XENSTORE_PAYLOAD_MAX);
				conn_kill(c, why);
				return -1;
			}
		}
	}
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	for (unsigned int i = 0; i < XSD_MSGS_PER_WAKEUP && !c->dead && !c->paused; i++) {
		if (fill(c) <= 0)
			break;
		/* Guard NUL: string parsing may never run off the payload. */
		c->payload[c->hdr.len] = '\0';
		c->in_have = 0;
		proto_handle(c, &c->hdr, c->payload);
	}
	conns_reap();
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	flush(c);
	conns_reap();
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;

	(void)loop;
	(void)revents;
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned int same = 0;
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				xsd_log("accept on %s: %s", l->path, strerror(errno));
			return;
		}
		for (c = xsd.conns; c; c = c->next)
			same += !c->dead && c->domid == l->domid;
		if (l->domid != 0 && same >= XSD_MAX_CONNS_DOMU) {
			xsd_log("refused connection for dom%u: %u connections already", l->domid,
				same);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			xsd_log("refused connection on %s: out of memory", l->path);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->domid = l->domid;
		c->id = ++xsd.next_conn_id;
		ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
		c->rio.data = c->wio.data = c;
		ev_io_start(xsd.loop, &c->rio);
		c->next = xsd.conns;
		xsd.conns = c;
		xsd_log("conn %u (dom%u): connected on %s", c->id, c->domid, l->path);
	}
}

int listener_open(struct listener *l, const char *path, uint32_t domid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket from a killed daemon would make bind fail. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	l->path = strdup(path);
	if (!l->path) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	l->fd = fd;
	l->domid = domid;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->io.data = l;
	ev_io_start(xsd.loop, &l->io);
	return 0;
}

void listener_close(struct listener *l)
{
	if (!l->path)
		return;
	ev_io_stop(xsd.loop, &l->io);
	close(l->fd);
	unlink(l->path);
	free(l->path);
	l->path = NULL;
	l->fd = -1;
}
