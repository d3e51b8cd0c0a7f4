/* SPDX-License-Identifier: MIT */
/*
 * xensimd against hostile clients: every malformed hypercall gets an error
 * reply or a closed connection, and the daemon keeps serving everyone else.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "client.h"
#include "xsimfix.h"

static struct xsimfix fix;
static uint32_t domu;

static void setup(void)
{
	xsimfix_start(&fix);
	domu = xsimfix_domain_create("guest", 4);
}

static void teardown(void)
{
	xsimfix_stop(&fix);
}

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", fix.dir, XSIM_SOCK_NAME);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Send raw bytes; return the reply's err, or 1 if the daemon closed on us. */
static int raw_call(int fd, const void *buf, size_t len, int with_fds)
{
	struct iovec iov = { (void *)buf, len };
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	char rep[65536];
	ssize_t n;

	if (with_fds) {
		int fds[4];
		struct cmsghdr *cm;
		for (int i = 0; i < with_fds; i++)
			fds[i] = eventfd(0, 0);
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE((size_t)with_fds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)with_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)with_fds * sizeof(int));
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		for (int i = 0; i < with_fds; i++)
			close(fds[i]);
	} else {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	}
	if (n < 0)
		return 1;
	n = recv(fd, rep, sizeof(rep), 0);
	if (n <= 0)
		return 1;
	ck_assert_int_ge(n, (ssize_t)sizeof(struct xsim_rep));
	return ((struct xsim_rep *)rep)->err;
}

static void still_serving(void)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	struct xsim_conn c;
	size_t rl;

	ck_assert_int_eq(xsim_connect(0, &c), 0);
	ck_assert_int_eq(xsim_call(&c, XSIM_DOM_LIST, NULL, 0, -1, info, sizeof(info), &rl,
				   NULL, 0, NULL), 0);
	ck_assert_uint_eq(rl, 2 * sizeof(info[0]));
	xsim_disconnect(&c);
}

static void hello(int fd, uint32_t domid)
{
	struct {
		struct xsim_req h;
		struct xsim_hello b;
	} m = { { XSIM_HELLO, sizeof(struct xsim_hello) }, { XSIM_PROTO_VERSION, domid } };
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m), 0), 0);
}

START_TEST(test_garbage)
{
	int fd;
	char junk[3] = { 1, 2, 3 };
	struct xsim_req r;

	/* shorter than a header: connection closed */
	fd = raw_connect();
	ck_assert_int_eq(raw_call(fd, junk, sizeof(junk), 0), 1);
	close(fd);
	still_serving();

	/* header length disagrees with the packet: closed */
	fd = raw_connect();
	r = (struct xsim_req){ XSIM_HELLO, 4000 };
	ck_assert_int_eq(raw_call(fd, &r, sizeof(r), 0), 1);
	close(fd);
	still_serving();

	/* anything before HELLO: refused */
	fd = raw_connect();
	r = (struct xsim_req){ XSIM_DOM_LIST, 0 };
	ck_assert_int_eq(raw_call(fd, &r, sizeof(r), 0), -EPROTO);
	/* HELLO for a domain that does not exist */
	struct {
		struct xsim_req h;
		struct xsim_hello b;
	} m = { { XSIM_HELLO, sizeof(struct xsim_hello) }, { XSIM_PROTO_VERSION, 999 } };
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m), 0), -ESRCH);
	m.b.version = 77;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m), 0), -EPROTO);
	close(fd);
	still_serving();

	/* too many fds with one request: closed */
	fd = raw_connect();
	hello(fd, 0);
	r = (struct xsim_req){ XSIM_DOM_LIST, 0 };
	ck_assert_int_eq(raw_call(fd, &r, sizeof(r), 3), 1);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(test_bad_bodies)
{
	int fd = raw_connect();
	struct {
		struct xsim_req h;
		uint32_t body[8];
	} m;

	hello(fd, domu);
	/* unknown op */
	m.h = (struct xsim_req){ 999, 0 };
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h), 0), -ENOSYS);
	/* a domU may not create or destroy domains */
	struct {
		struct xsim_req h;
		struct xsim_dom_create b;
	} dc = { { XSIM_DOM_CREATE, sizeof(struct xsim_dom_create) }, { 4, "evil" } };
	ck_assert_int_eq(raw_call(fd, &dc, sizeof(dc), 0), -EPERM);
	m.h = (struct xsim_req){ XSIM_DOM_DESTROY, 4 };
	m.body[0] = domu;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EPERM);
	/* grant batch: zero count, huge count, count disagreeing with length */
	m.h = (struct xsim_req){ XSIM_GNT_MAP, 16 };
	m.body[0] = domu; m.body[1] = 0; m.body[2] = 0; m.body[3] = 0;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 16, 0), -EINVAL);
	m.body[2] = 0xffffffffu;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 16, 0), -EINVAL);
	m.h.len = 20;
	m.body[2] = 3;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 20, 0), -EINVAL);
	/* grant copy with a count that overruns the message */
	m.h = (struct xsim_req){ XSIM_GNT_COPY, 8 };
	m.body[0] = 1000; m.body[1] = 0;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 8, 0), -EINVAL);
	/* event channel ops without their eventfd, or on ports not ours */
	m.h = (struct xsim_req){ XSIM_EVT_ALLOC_UNBOUND, 4 };
	m.body[0] = 0;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EINVAL);
	m.h = (struct xsim_req){ XSIM_EVT_UNBIND, 4 };
	m.body[0] = 4095;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EINVAL);
	m.body[0] = 0x7fffffff;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EINVAL);
	m.h = (struct xsim_req){ XSIM_EVT_PEER, 4 };
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EINVAL);
	/* set_max_grants of zero */
	m.h = (struct xsim_req){ XSIM_GNT_SET_MAX, 4 };
	m.body[0] = 0;
	ck_assert_int_eq(raw_call(fd, &m, sizeof(m.h) + 4, 0), -EINVAL);
	close(fd);
	still_serving();
}
END_TEST

START_TEST(test_silent_reader_dropped)
{
	/* A client that floods requests and never reads replies is dropped
	 * when its socket fills; the daemon is not blocked by it. */
	int fd = raw_connect();
	struct xsim_req r = { XSIM_DOM_LIST, 0 };
	int dropped = 0;

	hello(fd, 0);
	for (int i = 0; i < 100000 && !dropped; i++)
		if (send(fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			dropped = errno == EPIPE || errno == ECONNRESET || errno == EAGAIN;
	still_serving();
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xensimd-hostile");
	TCase *tc = tcase_create("hostile");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_bad_bodies);
	tcase_add_test(tc, test_silent_reader_dropped);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
