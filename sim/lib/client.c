/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client.h"

const char *xsim_dir(void)
{
	static char buf[108];
	const char *d = getenv("XENSIM_DIR");

	if (d && *d)
		return d;
	if (!buf[0])
		snprintf(buf, sizeof(buf), "/tmp/xensim-%u", (unsigned)getuid());
	return buf;
}

uint32_t xsim_self_domid(void)
{
	const char *s = getenv("XENSIM_DOMID");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= 0x7ff0)
		return 0xffffffffu;
	return (uint32_t)v;
}

void *xsim_map_fd(int fd, size_t size, int writable)
{
	void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
		       MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int send_msg(int fd, const struct iovec *iov, int iovcnt, int send_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };

	if (send_fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &send_fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int xsim_call(struct xsim_conn *c, uint32_t op, const void *body, size_t len,
	      int send_fd, void *rep, size_t rep_cap, size_t *rep_len,
	      int *fds, int max_fds, int *nfds)
{
	struct xsim_req req = { .op = op, .len = (uint32_t)len };
	struct iovec iov[2] = {
		{ &req, sizeof(req) },
		{ (void *)body, len },
	};
	struct xsim_rep hdr;
	struct iovec riov[2] = { { &hdr, sizeof(hdr) }, { rep, rep_cap } };
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = riov, .msg_iovlen = 2,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	int got = 0, err;

	if (nfds)
		*nfds = 0;
	if (rep_len)
		*rep_len = 0;
	err = send_msg(c->fd, iov, len ? 2 : 1, send_fd);
	if (err)
		return err == -ECONNRESET ? -EPIPE : err;
	do
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	if (n == 0)
		return -EPIPE;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fds && got < max_fds)
				fds[got++] = f;
			else
				close(f);
		}
	}
	if (nfds)
		*nfds = got;
	if ((size_t)n < sizeof(hdr) || (mh.msg_flags & MSG_TRUNC)) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		if (nfds)
			*nfds = 0;
		return -EPROTO;
	}
	if (rep_len)
		*rep_len = (size_t)n - sizeof(hdr);
	return hdr.err;
}

int xsim_connect(uint32_t domid, struct xsim_conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct xsim_hello h = { .version = XSIM_PROTO_VERSION, .domid = domid };
	struct xsim_hello_rep r;
	size_t rl;
	int fd, err, nfds, ctl = -1;

	memset(c, 0, sizeof(*c));
	c->fd = c->ctl_fd = -1;
	if (domid == 0xffffffffu)
		return -EINVAL;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", xsim_dir(),
			     XSIM_SOCK_NAME) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	c->fd = fd;
	err = xsim_call(c, XSIM_HELLO, &h, sizeof(h), -1, &r, sizeof(r), &rl,
			&ctl, 1, &nfds);
	if (!err && (rl != sizeof(r) || nfds != 1))
		err = -EPROTO;
	if (err) {
		if (nfds == 1)
			close(ctl);
		close(fd);
		c->fd = -1;
		return err;
	}
	c->domid = r.domid;
	c->daemon_pid = r.daemon_pid;
	c->ctl_fd = ctl;
	c->ctl_size = r.ctl_size;
	return 0;
}

void xsim_disconnect(struct xsim_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->ctl_fd >= 0)
		close(c->ctl_fd);
	c->fd = c->ctl_fd = -1;
}
