/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix stream socket; a client sends one command line
 * and gets one JSON line back, then the connection closes.
 *
 *   info | list   {"pid":..,"domid":..,"devid":..,"dev":..,"state":..,...,
 *                 "nbd":"/path/of/the/nbd.socket" or null}
 *   stats         counters and a latency histogram (see stats_json), and
 *                 the NBD export's counters ("nbd":{...} or null)
 *   pause         stop taking requests (guest ring and NBD clients); the
 *                 reply waits until in-flight
 *                 requests (and NBD pieces) have drained:
 *                 {"ok":true,"paused":true}
 *   unpause       {"ok":true,"paused":false}
 *   destroy       close down as for a toolstack detach; the reply comes once
 *                 the backend is Closed, then tapdisk exits 0
 * Anything else: {"ok":false,"error":"..."}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tapdisk.h"

#define CTL_MAX_CLIENTS 8
#define CTL_LINE 256

enum { WAIT_NONE = 0, WAIT_DRAIN, WAIT_DETACH };

struct ctl_client {
	struct td_ctl *ctl;
	int fd;
	ev_io io;
	char buf[CTL_LINE];
	size_t len;
	int wait;
};

struct td_ctl {
	struct td *td;
	int lfd;
	ev_io lio;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_client cl[CTL_MAX_CLIENTS];
	int bb_drained;	/* blkback reported EV_DRAINED since the last pause */
};

/* A growable-enough output line. */
struct out {
	char b[4096];
	size_t n;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->n >= sizeof(o->b))
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->b + o->n, sizeof(o->b) - o->n, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->n += (size_t)n < sizeof(o->b) - o->n ? (size_t)n : sizeof(o->b) - o->n - 1;
}

static void put_str(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static void common_json(struct td *td, struct out *o)
{
	put(o, "\"pid\":%d,\"domid\":%u,\"devid\":%u,\"dev\":", (int)getpid(), td->domid, td->devid);
	put_str(o, td->dev);
	put(o, ",\"backend\":");
	put_str(o, td->backend);
	put(o, ",\"state\":\"%s\",\"paused\":%s",
	    td->bb ? pvio_blkback_state_name(pvio_blkback_state(td->bb)) : "none",
	    td->bb && pvio_blkback_paused(td->bb) ? "true" : "false");
}

static void info_json(struct td *td, struct out *o)
{
	put(o, "{");
	common_json(td, o);
	put(o, ",\"params\":");
	put_str(o, td->params);
	put(o, ",\"engine\":\"%s\",\"readonly\":%s,\"sectors\":%llu,\"direct_io\":%s",
	    td->eng_ops->name, td->img.readonly ? "true" : "false",
	    (unsigned long long)(td->img.size / 512), td->img.direct ? "true" : "false");
	put(o, ",\"nbd\":");
	if (td->nbd)
		put_str(o, td_nbd_path(td->nbd));
	else
		put(o, "null");
	put(o, "}\n");
}

static void nbd_json(struct td *td, struct out *o)
{
	struct td_nbd_stats n;

	if (!td->nbd) {
		put(o, ",\"nbd\":null");
		return;
	}
	td_nbd_get_stats(td->nbd, &n);
	put(o, ",\"nbd\":{\"path\":");
	put_str(o, td_nbd_path(td->nbd));
	put(o, ",\"clients\":%u,\"connections\":%llu", n.clients,
	    (unsigned long long)n.connections);
	put(o, ",\"requests\":{\"read\":%llu,\"write\":%llu,\"flush\":%llu,\"trim\":%llu,"
	    "\"write_zeroes\":%llu,\"block_status\":%llu}",
	    (unsigned long long)n.reqs[PVIO_BLKBACK_READ], (unsigned long long)n.reqs[PVIO_BLKBACK_WRITE],
	    (unsigned long long)n.reqs[PVIO_BLKBACK_FLUSH], (unsigned long long)n.reqs[PVIO_BLKBACK_DISCARD],
	    (unsigned long long)n.write_zeroes, (unsigned long long)n.block_status);
	put(o, ",\"bytes\":{\"read\":%llu,\"write\":%llu},\"refused\":%llu,\"io_errors\":%llu,"
	    "\"dropped\":%llu}",
	    (unsigned long long)n.bytes_read, (unsigned long long)n.bytes_written,
	    (unsigned long long)n.refused, (unsigned long long)n.io_errors,
	    (unsigned long long)n.dropped);
}

static void stats_json(struct td *td, struct out *o)
{
	struct pvio_blkback_stats st;

	memset(&st, 0, sizeof(st));
	if (td->bb)
		pvio_blkback_get_stats(td->bb, &st);
	put(o, "{");
	common_json(td, o);
	put(o, ",\"requests\":{\"read\":%llu,\"write\":%llu,\"flush\":%llu,\"discard\":%llu}",
	    (unsigned long long)st.reqs[PVIO_BLKBACK_READ], (unsigned long long)st.reqs[PVIO_BLKBACK_WRITE],
	    (unsigned long long)st.reqs[PVIO_BLKBACK_FLUSH], (unsigned long long)st.reqs[PVIO_BLKBACK_DISCARD]);
	put(o, ",\"bytes\":{\"read\":%llu,\"write\":%llu}",
	    (unsigned long long)st.bytes[PVIO_BLKBACK_READ], (unsigned long long)st.bytes[PVIO_BLKBACK_WRITE]);
	put(o, ",\"errors\":{\"io\":%llu,\"invalid\":%llu,\"unsupported\":%llu,\"grant_map\":%llu}",
	    (unsigned long long)st.io_errors, (unsigned long long)st.invalid,
	    (unsigned long long)st.unsupported, (unsigned long long)st.map_errors);
	put(o, ",\"persistent_grants\":{\"maps\":%llu,\"hits\":%llu,\"evictions\":%llu,\"mapped\":%llu}",
	    (unsigned long long)st.pgnt_maps, (unsigned long long)st.pgnt_hits,
	    (unsigned long long)st.pgnt_evictions, (unsigned long long)st.pgnt_mapped);
	put(o, ",\"iovecs\":{\"segments\":%llu,\"entries\":%llu}", (unsigned long long)st.segments,
	    (unsigned long long)st.iovecs);
	put(o, ",\"indirect\":{\"max_segments\":%u,\"requests\":%llu},\"sector_size\":%u"
	    ",\"misaligned\":%llu", st.max_indirect_segments, (unsigned long long)st.indirect,
	    st.sector_size, (unsigned long long)st.misaligned);
	put(o, ",\"in_flight\":%u,\"ring\":{\"order\":%u,\"slots\":%u},\"connects\":%u,\"notifies_sent\":%llu",
	    st.in_flight, st.ring_order, st.ring_slots, st.connects,
	    (unsigned long long)st.notifies_sent);
	put(o, ",\"events\":{\"spurious\":%llu,\"backoffs\":%llu}", (unsigned long long)st.events_spurious,
	    (unsigned long long)st.event_backoffs);
	put(o, ",\"barriers\":%llu", (unsigned long long)st.barriers);
	put(o, ",\"polling\":{\"us\":%u,\"periods\":%llu,\"requests\":%llu}", st.poll_us,
	    (unsigned long long)st.polls, (unsigned long long)st.poll_requests);
	/* per queue (multi-queue-num-queues): how the guest spreads its I/O */
	put(o, ",\"queues\":{\"max\":%u,\"count\":%u,\"per_queue\":[", st.max_queues, st.nr_queues);
	for (unsigned i = 0; td->bb && i < st.nr_queues; i++) {
		struct pvio_blkback_queue_stats qs;

		if (pvio_blkback_get_queue_stats(td->bb, i, &qs))
			break;
		put(o, "%s{\"requests\":%llu,\"in_flight\":%u,\"events\":%llu,\"notifies\":%llu,"
		    "\"barriers\":%llu}", i ? "," : "", (unsigned long long)qs.requests, qs.in_flight,
		    (unsigned long long)qs.events, (unsigned long long)qs.notifies_sent,
		    (unsigned long long)qs.barriers);
	}
	put(o, "]}");
	put(o, ",\"latency_us\":{\"bounds\":[");
	for (int i = 0; i < PVIO_BLKBACK_LAT_BUCKETS - 1; i++)
		put(o, "%s%u", i ? "," : "", pvio_blkback_lat_bounds_us[i]);
	put(o, "],\"counts\":[");
	for (int i = 0; i < PVIO_BLKBACK_LAT_BUCKETS; i++)
		put(o, "%s%llu", i ? "," : "", (unsigned long long)st.lat_hist[i]);
	put(o, "]}");
	nbd_json(td, o);
	put(o, "}\n");
}

static void client_close(struct ctl_client *c)
{
	ev_io_stop(c->ctl->td->loop, &c->io);
	close(c->fd);
	c->fd = -1;
	c->wait = WAIT_NONE;
	c->len = 0;
}

static void reply(struct ctl_client *c, const char *s, size_t n)
{
	/* One short line into a fresh socket buffer: a blocking-free send
	 * either takes it whole or the client is misbehaving; drop it then. */
	if (send(c->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
		td_log(TD_WARN, "control: client went away before its reply");
	client_close(c);
}

static void reply_str(struct ctl_client *c, const char *s)
{
	reply(c, s, strlen(s));
}

static void command(struct ctl_client *c, char *line)
{
	struct td *td = c->ctl->td;
	struct out o = { .n = 0 };

	line[strcspn(line, "\r\n")] = 0;
	if (!strcmp(line, "info") || !strcmp(line, "list")) {
		info_json(td, &o);
		reply(c, o.b, o.n);
	} else if (!strcmp(line, "stats")) {
		stats_json(td, &o);
		reply(c, o.b, o.n);
	} else if (!strcmp(line, "pause")) {
		if (!td->bb) {
			reply_str(c, "{\"ok\":false,\"error\":\"no device\"}\n");
			return;
		}
		td_log(TD_INFO, "control: pause");
		c->wait = WAIT_DRAIN;
		ev_io_stop(td->loop, &c->io);
		/* the guest's ring and the NBD clients both: the answer comes
		 * once blkback has drained (EV_DRAINED, maybe at once) and no
		 * NBD piece is in the driver */
		c->ctl->bb_drained = 0;
		td_nbd_pause(td->nbd);
		pvio_blkback_pause(td->bb);
	} else if (!strcmp(line, "unpause")) {
		td_log(TD_INFO, "control: unpause");
		if (td->bb)
			pvio_blkback_unpause(td->bb);
		td_nbd_unpause(td->nbd);
		reply_str(c, "{\"ok\":true,\"paused\":false}\n");
	} else if (!strcmp(line, "destroy")) {
		td_log(TD_INFO, "control: destroy");
		c->wait = WAIT_DETACH;
		ev_io_stop(td->loop, &c->io);
		if (td->bb)
			pvio_blkback_shutdown(td->bb, "destroy requested on the control socket");
		else
			td_ctl_event(c->ctl, PVIO_BLKBACK_EV_DETACHED);
	} else {
		reply_str(c, "{\"ok\":false,\"error\":\"unknown command (info, list, stats, pause, unpause, destroy)\"}\n");
	}
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = 0;
	if (strchr(c->buf, '\n')) {
		command(c, c->buf);
		return;
	}
	if (c->len >= sizeof(c->buf) - 1)
		reply_str(c, "{\"ok\":false,\"error\":\"line too long\"}\n");
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_ctl *ctl = w->data;
	int fd;

	(void)revents;
	fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->cl[i];
		if (c->fd >= 0)
			continue;
		c->fd = fd;
		c->len = 0;
		c->wait = WAIT_NONE;
		ev_io_init(&c->io, client_cb, fd, EV_READ);
		c->io.data = c;
		ev_io_start(loop, &c->io);
		return;
	}
	/* bounded: a flood of clients cannot grow our memory */
	(void)!write(fd, "{\"ok\":false,\"error\":\"busy\"}\n", 28);
	close(fd);
}

void td_ctl_event(struct td_ctl *ctl, enum pvio_blkback_event ev)
{
	if (!ctl)
		return;
	if (ev == PVIO_BLKBACK_EV_DRAINED)
		ctl->bb_drained = 1;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->cl[i];
		if (c->fd < 0)
			continue;
		if (ev == PVIO_BLKBACK_EV_DRAINED && c->wait == WAIT_DRAIN) {
			if (td_nbd_idle(ctl->td->nbd))
				reply_str(c, "{\"ok\":true,\"paused\":true}\n");
			/* else td_ctl_nbd_idle answers */
		} else if (ev == PVIO_BLKBACK_EV_DETACHED && c->wait == WAIT_DETACH)
			reply_str(c, "{\"ok\":true,\"state\":\"closed\"}\n");
		else if (ev == PVIO_BLKBACK_EV_DETACHED && c->wait == WAIT_DRAIN)
			reply_str(c, "{\"ok\":false,\"error\":\"detached\"}\n");
	}
}

void td_ctl_nbd_idle(struct td_ctl *ctl)
{
	if (!ctl || !ctl->bb_drained)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->cl[i].fd >= 0 && ctl->cl[i].wait == WAIT_DRAIN)
			reply_str(&ctl->cl[i], "{\"ok\":true,\"paused\":true}\n");
}

void td_ctl_default_path(uint32_t domid, uint32_t devid, char *buf, size_t len)
{
	const char *dir = getenv("PVIO_CTL_DIR"), *xd = getenv("XENSIM_DIR");
	char tmp[4096];

	if (!dir || !dir[0]) {
		if (xd && xd[0]) {
			snprintf(tmp, sizeof(tmp), "%s/tapdisk", xd);
			dir = tmp;
		} else {
			dir = "/run/pvio";
		}
	}
	snprintf(buf, len, "%s/tapdisk-%u-%u.sock", dir, domid, devid);
}

static void mkdirs(const char *path)
{
	char d[4096], *p;

	snprintf(d, sizeof(d), "%s", path);
	p = strrchr(d, '/');
	if (!p || p == d)
		return;
	*p = 0;
	for (p = d + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(d, 0755);
			*p = '/';
		}
	mkdir(d, 0755);
}

int td_ctl_open(struct td *td, const char *path)
{
	struct td_ctl *ctl;
	int fd;

	if (strlen(path) >= sizeof(ctl->path)) {
		td_log(TD_ERR, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	mkdirs(path);
	fd = td_listen(path, "control", 0, 8);
	if (fd < 0)
		return fd;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	ctl->td = td;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->cl[i].fd = -1, ctl->cl[i].ctl = ctl;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ctl->lfd = fd;
	ev_io_init(&ctl->lio, accept_cb, fd, EV_READ);
	ctl->lio.data = ctl;
	ev_io_start(td->loop, &ctl->lio);
	td->ctl = ctl;
	td_log(TD_INFO, "control socket %s", path);
	return 0;
}

void td_ctl_close(struct td_ctl *ctl)
{
	if (!ctl)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->cl[i].fd >= 0)
			client_close(&ctl->cl[i]);
	ev_io_stop(ctl->td->loop, &ctl->lio);
	close(ctl->lfd);
	unlink(ctl->path);
	free(ctl);
}
