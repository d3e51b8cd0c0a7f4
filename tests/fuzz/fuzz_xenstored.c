/* SPDX-License-Identifier: MIT */
/*
 * fuzz_xenstored: hostile clients against xensim's xenstored.
 *
 * The daemon's objects (everything in sim/xenstored/ except main.c) are
 * compiled in; this file replaces main(): it opens the real listener in a
 * private directory, introduces dom1, connects three clients (dom0 and
 * two connections of dom1) over real Unix sockets and feeds them the
 * fuzzer's bytes, either as well-formed xsd_sockmsg frames of any type,
 * transaction id and payload, or as raw stream bytes (torn headers,
 * oversized lengths, garbage).  Between writes the daemon's loop runs
 * without blocking; clients read their replies, or stop reading (the
 * watch-flood and output-backlog paths, XSA-349), or hang up mid-message.
 *
 * Invariants: no crash, leak or out-of-bounds access (ASan); every frame
 * the daemon sends has a known type and a payload within
 * XENSTORE_PAYLOAD_MAX; error replies are NUL-terminated names; each
 * input starts from a fresh daemon state (store, connections, domains).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "store.h"
#include "xenstored.h"

struct daemon xsd; /* main.c's singleton: main.c is not linked */

#define NCLIENTS 3
#define RBUF (256 * 1024)

static char sockdir[64];
static bool inited;

static struct client {
	int fd;
	uint32_t domid;
	uint8_t buf[RBUF];
	size_t have;
	bool reading; /* drains its replies */
} cl[NCLIENTS];

static void cleanup(void)
{
	if (sockdir[0])
		rmdir(sockdir);
}

static void once(void)
{
	char tmpl[] = "/tmp/pvio-fuzz-xsd.XXXXXX";

	if (inited)
		return;
	inited = true;
	FZ_CHECK(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(sockdir, sizeof(sockdir), "%s", tmpl);
	atexit(cleanup);
	/* The daemon logs every refusal; keep the fuzzer's output readable. */
	if (!getenv("FUZZ_XSD_LOG"))
		log_open("/dev/null");
	signal(SIGPIPE, SIG_IGN);
}

static void spin(void)
{
	ev_run(xsd.loop, EVRUN_NOWAIT);
}

static int dial(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read and check every frame the daemon sent this client. */
static void drain(struct client *c)
{
	const size_t hlen = sizeof(struct xsd_sockmsg);

	if (c->fd < 0)
		return;
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->have, RBUF - c->have, MSG_DONTWAIT);
		if (n <= 0)
			break;
		c->have += (size_t)n;
		size_t off = 0;
		while (c->have - off >= hlen) {
			struct xsd_sockmsg h;
			memcpy(&h, c->buf + off, hlen);
			FZ_CHECK(h.len <= XENSTORE_PAYLOAD_MAX, "reply payload %u", h.len);
			FZ_CHECK(h.type < XS_TYPE_COUNT, "reply type %u", h.type);
			if (c->have - off < hlen + h.len)
				break;
			if (h.type == XS_ERROR)
				FZ_CHECK(h.len > 0 && c->buf[off + hlen + h.len - 1] == 0,
					 "error reply not NUL-terminated");
			off += hlen + h.len;
		}
		memmove(c->buf, c->buf + off, c->have - off);
		c->have -= off;
	}
}

/* Write all of @p, letting the daemon run when the socket is full. */
static void send_all(struct client *c, const void *p, size_t len)
{
	const uint8_t *b = p;
	unsigned stalls = 0;

	while (len && c->fd >= 0) {
		ssize_t n = send(c->fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && stalls++ < 64) {
			spin();
			/* a client that stopped reading gets unstuck here: the
			 * daemon paused it, the test is that it did not die */
			drain(c);
			continue;
		}
		return; /* daemon closed us, or paused for good */
	}
}

static void connect_clients(void)
{
	char path[128];

	for (int i = 0; i < NCLIENTS; i++) {
		cl[i].domid = i == 0 ? 0 : 1;
		if (cl[i].domid == 0)
			snprintf(path, sizeof(path), "%s/socket", xsd.sockdir);
		else
			snprintf(path, sizeof(path), "%s/dom1.sock", xsd.sockdir);
		cl[i].fd = dial(path);
		cl[i].have = 0;
		cl[i].reading = true;
	}
	spin(); /* accept */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = { data, size };
	char path[128];
	int r;

	once();
	memset(&xsd, 0, sizeof(xsd));
	xsd.sockdir = sockdir;
	xsd.loop = ev_loop_new(EVFLAG_AUTO);
	xsd.store = store_new();
	FZ_CHECK(xsd.loop && xsd.store, "init");
	for (int i = 0; i < SPECIAL_COUNT; i++)
		FZ_CHECK(perms_init_owner(&xsd.special_perms[i], 0, PERM_NONE) == 0, "perms");
	snprintf(path, sizeof(path), "%s/socket", sockdir);
	r = listener_open(&xsd.dom0, path, 0);
	FZ_CHECK(r == 0, "listen: %d", r);
	FZ_CHECK(domain_introduce(1, 1234, 5) == 0, "introduce");
	connect_clients();

	for (unsigned step = 0; step < 512 && fz_left(&in); step++) {
		uint8_t cmd = fz_u8(&in);
		struct client *c = &cl[(cmd >> 2) % NCLIENTS];

		switch (cmd & 3) {
		case 0: { /* a well-formed frame of any type */
			struct {
				struct xsd_sockmsg h;
				char p[XENSTORE_PAYLOAD_MAX + 16];
			} m;
			uint8_t t = fz_u8(&in);
			m.h.type = (t & 0x80) ? fz_u32(&in) : t % (XS_TYPE_COUNT + 1);
			m.h.req_id = fz_u8(&in);
			m.h.tx_id = (t & 0x40) ? fz_u32(&in) : fz_u8(&in) % 4;
			uint16_t len = fz_u8(&in);
			if (t & 0x20)
				len = (uint16_t)(len | fz_u8(&in) << 8);
			if (len > XENSTORE_PAYLOAD_MAX)
				len = XENSTORE_PAYLOAD_MAX;
			m.h.len = len;
			fz_bytes(&in, m.p, len);
			send_all(c, &m, sizeof(m.h) + len);
			break;
		}
		case 1: { /* raw stream bytes: torn or oversized headers */
			uint8_t raw[256];
			uint8_t n = fz_u8(&in);
			fz_bytes(&in, raw, n);
			send_all(c, raw, n);
			break;
		}
		case 2: /* the daemon runs; readers read */
			spin();
			for (int i = 0; i < NCLIENTS; i++)
				if (cl[i].reading)
					drain(&cl[i]);
			break;
		case 3: /* a client stops/starts reading, or hangs up and redials */
			if (cmd & 0x80) {
				if (c->fd >= 0)
					close(c->fd);
				if (c->domid == 0)
					snprintf(path, sizeof(path), "%s/socket", sockdir);
				else
					snprintf(path, sizeof(path), "%s/dom1.sock", sockdir);
				c->fd = dial(path); /* -1 if dom1 was released */
				c->have = 0;
				spin();
			} else {
				c->reading = !c->reading;
			}
			break;
		}
	}
	spin();
	for (int i = 0; i < NCLIENTS; i++) {
		drain(&cl[i]);
		if (cl[i].fd >= 0)
			close(cl[i].fd);
		cl[i].fd = -1;
	}
	conns_free_all();
	domains_free_all();
	listener_close(&xsd.dom0);
	for (int i = 0; i < SPECIAL_COUNT; i++)
		perms_free(&xsd.special_perms[i]);
	store_free(xsd.store);
	ev_loop_destroy(xsd.loop);
	memset(&xsd, 0, sizeof(xsd));
	return 0;
}
