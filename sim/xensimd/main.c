/* SPDX-License-Identifier: MIT */
/* xensimd: socket handling and request dispatch. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "xensimd.h"

FILE *xsd_logf;

void xsd_log(const char *fmt, ...)
{
	va_list ap;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(xsd_logf, "%lld.%03ld xensimd: ", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(xsd_logf, fmt, ap);
	va_end(ap);
	fputc('\n', xsd_logf);
	fflush(xsd_logf);
}

/* Big enough for a full batch of grant-copy segments. */
#define RXBUF (sizeof(struct xsim_req) + 4 + XSIM_MAX_BATCH * sizeof(struct xsim_gnt_copy_seg))
#define TXBUF (sizeof(struct xsim_rep) + XSIM_MAX_BATCH * sizeof(struct xsim_gnt_map_rep) + \
	       XSIM_MAX_DOMAINS * sizeof(struct xsim_dom_info))
static uint64_t rxbuf[RXBUF / 8 + 1];
static uint64_t txbuf[TXBUF / 8 + 1];

static void conn_close(struct xsd *x, struct xsd_conn *c)
{
	struct xsd_conn **pp;

	ev_io_stop(x->loop, &c->io);
	xsd_evt_release_conn(x, c);
	xsd_gnt_release_conn(x, c);
	close(c->fd);
	for (pp = &x->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c);
}

static int reply(struct xsd_conn *c, int err, const void *body, size_t len,
		 const int *fds, int nfds)
{
	struct xsim_rep *h = (struct xsim_rep *)txbuf;
	struct iovec iov = { txbuf, sizeof(*h) + len };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	h->err = err;
	h->len = (uint32_t)len;
	if (len && body != (const void *)(h + 1))
		memmove(h + 1, body, len);
	if (nfds > 0) {
		struct cmsghdr *cm;
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	/* A client that does not read its replies is dropped, never waited on. */
	if (sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

static void *rep_body(void)
{
	return (struct xsim_rep *)txbuf + 1;
}

/* What a domain holds and is held by: lets tests prove nothing leaked. */
static void dom_usage(struct xsd *x, struct xsd_dom *d, struct xsim_dom_info *info)
{
	info->grant_pins = d->pins;
	for (struct xsd_conn *c = x->conns; c; c = c->next)
		if (c->domid == d->id)
			info->maps_held += c->grants_held;
	for (uint32_t p = 1; p < XSIM_NR_PORTS; p++)
		info->ports_bound += d->ports[p].state != XSIM_EVT_CLOSED;
}

static int handle(struct xsd *x, struct xsd_conn *c, const struct xsim_req *rq,
		  const void *body, size_t len, int *rxfd)
{
	const uint32_t *u32 = body;
	struct xsd_dom *d;
	uint32_t v;
	int err, fds[3], peer;

	if (!c->said_hello && rq->op != XSIM_HELLO)
		return reply(c, -EPROTO, NULL, 0, NULL, 0);
	switch (rq->op) {
	case XSIM_HELLO: {
		const struct xsim_hello *h = body;
		struct xsim_hello_rep *r = rep_body();

		if (len != sizeof(*h) || c->said_hello || h->version != XSIM_PROTO_VERSION)
			return reply(c, -EPROTO, NULL, 0, NULL, 0);
		d = xsd_dom_find(x, h->domid);
		if (!d)
			return reply(c, -ESRCH, NULL, 0, NULL, 0);
		c->domid = h->domid;
		c->said_hello = 1;
		r->version = XSIM_PROTO_VERSION;
		r->domid = d->id;
		r->daemon_pid = (int32_t)getpid();
		r->ctl_size = (uint32_t)d->ctl_size;
		return reply(c, 0, r, sizeof(*r), &d->ctl_fd, 1);
	}
	case XSIM_DOM_CREATE: {
		const struct xsim_dom_create *dc = body;
		char name[sizeof(dc->name) + 1];

		if (len != sizeof(*dc))
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		if (c->domid != 0)
			return reply(c, -EPERM, NULL, 0, NULL, 0);
		memcpy(name, dc->name, sizeof(dc->name));
		name[sizeof(dc->name)] = 0;
		err = xsd_dom_create(x, name, dc->memory_mb, &v);
		return reply(c, err, &v, err ? 0 : sizeof(v), NULL, 0);
	}
	case XSIM_DOM_DESTROY:
		if (len != 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		if (c->domid != 0)
			return reply(c, -EPERM, NULL, 0, NULL, 0);
		err = xsd_dom_destroy(x, u32[0]);
		return reply(c, err, NULL, 0, NULL, 0);
	case XSIM_DOM_LIST: {
		struct xsim_dom_info *info = rep_body();
		size_t n = 0;

		for (d = x->doms; d && n < XSIM_MAX_DOMAINS; d = d->next) {
			if (!d->alive)
				continue;
			memset(&info[n], 0, sizeof(info[n]));
			info[n].domid = d->id;
			info[n].alive = 1;
			info[n].nr_pages = d->nr_pages;
			info[n].nr_grants = d->nr_grants;
			info[n].ctl_size = (uint32_t)d->ctl_size;
			memcpy(info[n].name, d->name, sizeof(info[n].name));
			dom_usage(x, d, &info[n]);
			n++;
		}
		return reply(c, 0, info, n * sizeof(*info), NULL, 0);
	}
	case XSIM_DOM_ATTACH:
		d = xsd_dom_find(x, c->domid);
		if (!d || !d->nr_pages)
			return reply(c, d ? -EINVAL : -ESRCH, NULL, 0, NULL, 0);
		fds[0] = d->mem_fd;
		fds[1] = d->gnt_fd;
		return reply(c, 0, NULL, 0, fds, 2);
	case XSIM_DOM_MEMFD: {
		struct xsim_dom_info *info = rep_body();

		if (len != 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		d = xsd_dom_find(x, u32[0]);
		if (!d)
			return reply(c, -ESRCH, NULL, 0, NULL, 0);
		memset(info, 0, sizeof(*info));
		info->domid = d->id;
		info->alive = 1;
		info->nr_pages = d->nr_pages;
		info->nr_grants = d->nr_grants;
		memcpy(info->name, d->name, sizeof(info->name));
		return reply(c, 0, info, sizeof(*info), &d->mem_fd, 1);
	}
	case XSIM_GNT_MAP:
	case XSIM_GNT_UNMAP: {
		const struct xsim_gnt_batch *b = body;

		if (len < sizeof(*b) || b->count == 0 || b->count > XSIM_MAX_BATCH ||
		    len != sizeof(*b) + (size_t)b->count * 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		if (rq->op == XSIM_GNT_MAP) {
			struct xsim_gnt_map_rep *r = rep_body();
			err = xsd_gnt_map(x, c, b, r);
			return reply(c, err, r, b->count * sizeof(*r), NULL, 0);
		} else {
			int16_t *st = rep_body();
			err = xsd_gnt_unmap(x, c, b, st);
			return reply(c, err, st, b->count * sizeof(*st), NULL, 0);
		}
	}
	case XSIM_GNT_COPY: {
		uint32_t n = len >= 4 ? u32[0] : 0;
		int16_t *st = rep_body();

		/* the segments follow the count at an 8-byte aligned offset */
		if (n == 0 || n > XSIM_MAX_BATCH || len != 8 + (size_t)n * sizeof(struct xsim_gnt_copy_seg))
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		err = xsd_gnt_copy(x, c, n, (const struct xsim_gnt_copy_seg *)((const char *)body + 8), st);
		return reply(c, err, st, n * sizeof(*st), NULL, 0);
	}
	case XSIM_GNT_SET_MAX:
		if (len != 4 || u32[0] == 0)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		if (c->grants_held > u32[0])
			return reply(c, -EBUSY, NULL, 0, NULL, 0);
		c->max_grants = u32[0];
		return reply(c, 0, NULL, 0, NULL, 0);
	case XSIM_EVT_ALLOC_UNBOUND:
		if (len != 4 || *rxfd < 0)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		err = xsd_evt_alloc_unbound(x, c, u32[0], *rxfd, &v);
		if (!err)
			*rxfd = -1;  /* the port owns it now */
		return reply(c, err, &v, err ? 0 : 4, NULL, 0);
	case XSIM_EVT_BIND_INTERDOMAIN:
		if (len != 8 || *rxfd < 0)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		err = xsd_evt_bind_interdomain(x, c, u32[0], u32[1], *rxfd, &v, &peer);
		if (err)
			return reply(c, err, NULL, 0, NULL, 0);
		*rxfd = -1;
		return reply(c, 0, &v, 4, &peer, peer >= 0);
	case XSIM_EVT_PEER: {
		struct xsim_evt_peer p;

		if (len != 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		err = xsd_evt_peer(x, c, u32[0], &p, &peer);
		return reply(c, err, &p, err ? 0 : sizeof(p), &peer, !err && peer >= 0);
	}
	case XSIM_EVT_SEND:
		if (len != 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		return reply(c, xsd_evt_send(x, c, u32[0]), NULL, 0, NULL, 0);
	case XSIM_EVT_UNBIND:
		if (len != 4)
			return reply(c, -EINVAL, NULL, 0, NULL, 0);
		return reply(c, xsd_evt_unbind(x, c, u32[0]), NULL, 0, NULL, 0);
	default:
		return reply(c, -ENOSYS, NULL, 0, NULL, 0);
	}
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct xsd *x = ev_userdata(loop);
	struct xsd_conn *c = (struct xsd_conn *)w;
	struct iovec iov = { rxbuf, sizeof(rxbuf) };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int rxfd = -1, extra = 0, err;
	ssize_t n;

	(void)revents;
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(x, c);
		return;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (rxfd < 0) {
				rxfd = f;
			} else {
				close(f);
				extra = 1;
			}
		}
	}
	if ((size_t)n < sizeof(struct xsim_req) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || extra ||
	    ((struct xsim_req *)rxbuf)->len != (size_t)n - sizeof(struct xsim_req)) {
		xsd_log("d%u pid %d: malformed request (%zd bytes): closing", c->domid, (int)c->pid, n);
		if (rxfd >= 0)
			close(rxfd);
		conn_close(x, c);
		return;
	}
	err = handle(x, c, (struct xsim_req *)rxbuf, (struct xsim_req *)rxbuf + 1,
		     (size_t)n - sizeof(struct xsim_req), &rxfd);
	if (rxfd >= 0)
		close(rxfd);
	if (err) {
		xsd_log("d%u pid %d: cannot reply (%s): closing", c->domid, (int)c->pid, strerror(-err));
		conn_close(x, c);
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct xsd *x = ev_userdata(loop);
	struct xsd_conn *c;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd;

	(void)w;
	(void)revents;
	fd = accept4(x->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->pid = cred.pid;
	/* Linux gntdev's historic default limit; xengnttab_set_max_grants changes it */
	c->max_grants = 1u << 20;
	c->next = x->conns;
	x->conns = c;
	ev_io_init(&c->io, conn_cb, fd, EV_READ);
	ev_io_start(loop, &c->io);
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	xsd_log("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xensimd --dir DIR [--ready-fd N] [--log FILE]\n"
		"The simulated hypervisor of xensim: domains, memory, grant tables and\n"
		"event channels, served on DIR/" XSIM_SOCK_NAME ". Normally started by\n"
		"'xensim start', not by hand.\n"
		"  --dir DIR      state directory (XENSIM_DIR)\n"
		"  --ready-fd N   write one byte to fd N once serving, then close it\n"
		"  --log FILE     append log lines to FILE instead of stderr\n"
		"  --help         this text\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct xsd x = { 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	ev_signal sterm, sint;
	int ready = -1, o;
	uint32_t dom0;

	xsd_logf = stderr;
	while ((o = getopt_long(argc, argv, "d:r:l:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd': x.dir = optarg; break;
		case 'r': ready = atoi(optarg); break;
		case 'l':
			xsd_logf = fopen(optarg, "a");
			if (!xsd_logf) {
				fprintf(stderr, "xensimd: cannot open log %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!x.dir || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", x.dir, XSIM_SOCK_NAME) >=
	    sizeof(sa.sun_path)) {
		fprintf(stderr, "xensimd: state directory path too long: %s\n", x.dir);
		return 1;
	}
	x.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(sa.sun_path);
	if (x.listen_fd < 0 || bind(x.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(x.listen_fd, 128) < 0) {
		fprintf(stderr, "xensimd: cannot listen on %s: %s\n", sa.sun_path, strerror(errno));
		return 1;
	}
	if (xsd_dom_create(&x, "Domain-0", 0, &dom0) || dom0 != 0) {
		fprintf(stderr, "xensimd: cannot create dom0\n");
		return 1;
	}
	x.loop = ev_default_loop(0);
	ev_set_userdata(x.loop, &x);
	ev_io_init(&x.listen_io, accept_cb, x.listen_fd, EV_READ);
	ev_io_start(x.loop, &x.listen_io);
	ev_signal_init(&sterm, sig_cb, SIGTERM);
	ev_signal_start(x.loop, &sterm);
	ev_signal_init(&sint, sig_cb, SIGINT);
	ev_signal_start(x.loop, &sint);
	xsd_log("serving on %s", sa.sun_path);
	if (ready >= 0) {
		if (write(ready, "1", 1) < 0) {
			/* the launcher went away; keep serving */
		}
		close(ready);
	}
	ev_run(x.loop, 0);
	unlink(sa.sun_path);
	while (x.conns)
		conn_close(&x, x.conns);
	xsd_dom_free_all(&x);
	ev_loop_destroy(x.loop);
	close(x.listen_fd);
	if (xsd_logf != stderr)
		fclose(xsd_logf);
	return 0;
}
