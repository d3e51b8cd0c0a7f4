/* SPDX-License-Identifier: MIT */
/*
 * Hostile input on a raw socket. What xensim-xenstored does (asserted here):
 *  - header len > XENSTORE_PAYLOAD_MAX: the connection is closed, no reply;
 *  - everything else malformed gets an XS_ERROR reply and the connection
 *    stays usable.
 * After each case a separate libxenstore client must still get correct answers.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenstore.h>

#include "xs_harness.h"

static struct xsd_inst d;
static struct xs_handle *h;
static int fd;
static char buf[XENSTORE_PAYLOAD_MAX + 64];

static void setup(void)
{
	ck_assert_int_eq(xsd_start(&d), 0);
	setenv("XENSTORED_PATH", d.sock, 1);
	h = xs_open(0);
	ck_assert_ptr_nonnull(h);
	ck_assert(xs_write(h, XBT_NULL, "/ok", "fine", 4));
	fd = raw_connect(d.sock);
	ck_assert_int_ge(fd, 0);
}

static void teardown(void)
{
	close(fd);
	xs_close(h);
	ck_assert_int_eq(xsd_stop(&d), 0);
}

/* The innocent client still works. */
static void check_healthy(void)
{
	unsigned int len;
	char *v = xs_read(h, XBT_NULL, "/ok", &len);

	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "fine");
	free(v);
	ck_assert(xs_write(h, XBT_NULL, "/ok2", "x", 1));
}

static void expect_error(uint32_t req_id, uint32_t tx_id, const char *err)
{
	struct xsd_sockmsg r;

	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_ERROR);
	ck_assert_uint_eq(r.req_id, req_id);
	ck_assert_uint_eq(r.tx_id, tx_id);
	ck_assert_uint_eq(r.len, strlen(err) + 1);
	ck_assert_str_eq(buf, err);
}

/* The raw connection itself still answers a well-formed read. */
static void check_raw_alive(void)
{
	struct xsd_sockmsg r;

	ck_assert_int_eq(raw_send(fd, XS_READ, 99, 0, "/ok", 4), 0);
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_READ);
	ck_assert_uint_eq(r.req_id, 99);
	ck_assert_uint_eq(r.len, 4);
	ck_assert_mem_eq(buf, "fine", 4);
}

START_TEST(test_oversized_len)
{
	struct xsd_sockmsg m = { .type = XS_READ, .req_id = 1, .len = XENSTORE_PAYLOAD_MAX + 1 };

	ck_assert_int_eq(write(fd, &m, sizeof(m)), (ssize_t)sizeof(m));
	ck_assert_int_eq(raw_wait_closed(fd), 0);
	check_healthy();
	m.len = 0xffffffffu;
	close(fd);
	fd = raw_connect(d.sock);
	ck_assert_int_eq(write(fd, &m, sizeof(m)), (ssize_t)sizeof(m));
	ck_assert_int_eq(raw_wait_closed(fd), 0);
	check_healthy();
	ck_assert(xsd_log_contains(&d, "payload length"));
}
END_TEST

START_TEST(test_max_len_ok)
{
	/* Exactly XENSTORE_PAYLOAD_MAX is legal: a write of a 4092-byte value. */
	static char p[XENSTORE_PAYLOAD_MAX];
	struct xsd_sockmsg r;

	memcpy(p, "/big", 5);
	memset(p + 5, 'v', sizeof(p) - 5);
	ck_assert_int_eq(raw_send(fd, XS_WRITE, 3, 0, p, sizeof(p)), 0);
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_WRITE);
	ck_assert_str_eq(buf, "OK");
	check_healthy();
}
END_TEST

START_TEST(test_unknown_type)
{
	ck_assert_int_eq(raw_send(fd, 1234, 7, 0, "x", 1), 0);
	expect_error(7, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_INVALID, 8, 0, NULL, 0), 0);
	expect_error(8, 0, "EINVAL");
	/* Types only the daemon sends. */
	ck_assert_int_eq(raw_send(fd, XS_WATCH_EVENT, 9, 0, "/a\0t", 5), 0);
	expect_error(9, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_ERROR, 10, 0, "EINVAL", 7), 0);
	expect_error(10, 0, "EINVAL");
	check_raw_alive();
	check_healthy();
}
END_TEST

START_TEST(test_path_without_nul)
{
	ck_assert_int_eq(raw_send(fd, XS_READ, 11, 0, "/ok", 3), 0);
	expect_error(11, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_WRITE, 12, 0, "/ok", 3), 0);
	expect_error(12, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_MKDIR, 13, 0, "/x", 2), 0);
	expect_error(13, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_WATCH, 14, 0, "/x\0tok", 6), 0);
	expect_error(14, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_READ, 15, 0, NULL, 0), 0);
	expect_error(15, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_SET_PERMS, 16, 0, "/ok\0n0", 6), 0);
	expect_error(16, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_SET_PERMS, 17, 0, "/ok\0x0\0", 7), 0);
	expect_error(17, 0, "EINVAL");
	/* Bytes after the path's NUL in a one-argument op. */
	ck_assert_int_eq(raw_send(fd, XS_READ, 18, 0, "/ok\0junk", 8), 0);
	expect_error(18, 0, "EINVAL");
	/* Invalid characters and an overlong relative path. */
	ck_assert_int_eq(raw_send(fd, XS_READ, 19, 0, "/o\nk", 5), 0);
	expect_error(19, 0, "EINVAL");
	{
		static char p[XENSTORE_REL_PATH_MAX + 2];

		memset(p, 'a', XENSTORE_REL_PATH_MAX + 1);
		ck_assert_int_eq(raw_send(fd, XS_READ, 20, 0, p, sizeof(p)), 0);
		expect_error(20, 0, "EINVAL");
	}
	check_raw_alive();
	check_healthy();
	ck_assert(xsd_log_contains(&d, "READ"));
}
END_TEST

START_TEST(test_tx_end_invalid)
{
	struct xsd_sockmsg r;
	uint32_t tx;

	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_START, 20, 0, "", 1), 0);
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_TRANSACTION_START);
	tx = (uint32_t)strtoul(buf, NULL, 10);
	ck_assert_uint_ne(tx, 0);

	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 21, tx, "T", 1), 0);
	expect_error(21, tx, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 22, tx, "X\0", 2), 0);
	expect_error(22, tx, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 23, tx, "TT\0", 3), 0);
	expect_error(23, tx, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 24, tx, NULL, 0), 0);
	expect_error(24, tx, "EINVAL");
	/* Unknown / absent transaction ids. */
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 25, 0, "T\0", 2), 0);
	expect_error(25, 0, "ENOENT");
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 26, tx + 1000, "T\0", 2), 0);
	expect_error(26, tx + 1000, "ENOENT");
	/* The transaction survived all that and commits. */
	ck_assert_int_eq(raw_send(fd, XS_WRITE, 27, tx, "/fromtx\0v", 9), 0);
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_WRITE);
	ck_assert_uint_eq(r.tx_id, tx);
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_END, 28, tx, "T\0", 2), 0);
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_TRANSACTION_END);
	ck_assert_str_eq(buf, "OK");
	/* Nested start. */
	ck_assert_int_eq(raw_send(fd, XS_TRANSACTION_START, 29, 5, "", 1), 0);
	expect_error(29, 5, "EBUSY");
	check_healthy();
	{
		unsigned int len;
		char *v = xs_read(h, XBT_NULL, "/fromtx", &len);

		ck_assert_ptr_nonnull(v);
		ck_assert_str_eq(v, "v");
		free(v);
	}
}
END_TEST

START_TEST(test_garbage_tx_id)
{
	ck_assert_int_eq(raw_send(fd, XS_READ, 30, 0xdeadbeef, "/ok", 4), 0);
	expect_error(30, 0xdeadbeef, "ENOENT");
	ck_assert_int_eq(raw_send(fd, XS_WRITE, 31, 0xdeadbeef, "/ok\0evil", 8), 0);
	expect_error(31, 0xdeadbeef, "ENOENT");
	ck_assert_int_eq(raw_send(fd, XS_RM, 32, 1, "/ok", 4), 0);
	expect_error(32, 1, "ENOENT");
	check_raw_alive();
	check_healthy();
}
END_TEST

START_TEST(test_split_header)
{
	struct xsd_sockmsg m = { .type = XS_READ, .req_id = 40, .len = 4 };
	char msg[sizeof(m) + 4];
	struct xsd_sockmsg r;

	memcpy(msg, &m, sizeof(m));
	memcpy(msg + sizeof(m), "/ok", 4);
	/* One byte per write; the daemon must reassemble (and not block others). */
	for (size_t i = 0; i < sizeof(msg); i++) {
		ck_assert_int_eq(write(fd, msg + i, 1), 1);
		if (i == sizeof(m) / 2)
			check_healthy();
	}
	ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(r.type, XS_READ);
	ck_assert_uint_eq(r.req_id, 40);
	ck_assert_mem_eq(buf, "fine", 4);
	/* Two messages in one write. */
	{
		char two[2 * sizeof(msg)];

		memcpy(two, msg, sizeof(msg));
		memcpy(two + sizeof(msg), msg, sizeof(msg));
		((struct xsd_sockmsg *)(two + sizeof(msg)))->req_id = 41;
		ck_assert_int_eq(write(fd, two, sizeof(two)), (ssize_t)sizeof(two));
		ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
		ck_assert_uint_eq(r.req_id, 40);
		ck_assert_int_eq(raw_recv(fd, &r, buf, sizeof(buf)), 0);
		ck_assert_uint_eq(r.req_id, 41);
	}
	/* A half message then hang-up: the daemon just drops the connection. */
	ck_assert_int_eq(write(fd, msg, 5), 5);
	close(fd);
	fd = raw_connect(d.sock);
	check_healthy();
}
END_TEST

START_TEST(test_bad_domains)
{
	char sock[512];
	int g;

	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 50, 0, "5\0" "1\0", 4), 0);
	expect_error(50, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 51, 0, "-5\0" "1\0" "2\0", 7), 0);
	expect_error(51, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 52, 0, "99999\0" "1\0" "2\0", 10), 0);
	expect_error(52, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 53, 0, "5\0" "x\0" "2\0", 6), 0);
	expect_error(53, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 54, 0, "0\0" "1\0" "2\0", 6), 0);
	expect_error(54, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_RELEASE, 55, 0, "abc", 4), 0);
	expect_error(55, 0, "EINVAL");
	ck_assert_int_eq(raw_send(fd, XS_RELEASE, 56, 0, "5", 2), 0);
	expect_error(56, 0, "ENOENT");
	ck_assert_int_eq(raw_send(fd, XS_GET_DOMAIN_PATH, 57, 0, "5x", 3), 0);
	expect_error(57, 0, "EINVAL");

	/* A domU may not introduce or release anyone. */
	ck_assert(xs_introduce_domain(h, 5, 1, 2));
	xsd_dom_sock(&d, 5, sock, sizeof(sock));
	g = raw_connect(sock);
	ck_assert_int_ge(g, 0);
	close(fd);
	fd = g;
	ck_assert_int_eq(raw_send(fd, XS_INTRODUCE, 58, 0, "6\0" "1\0" "2\0", 6), 0);
	expect_error(58, 0, "EACCES");
	ck_assert_int_eq(raw_send(fd, XS_RELEASE, 59, 0, "5", 2), 0);
	expect_error(59, 0, "EACCES");
	ck_assert_int_eq(raw_send(fd, XS_CONTROL, 60, 0, "print\0", 6), 0);
	expect_error(60, 0, "EACCES");
	ck_assert_int_eq(raw_send(fd, XS_SET_PERMS, 61, 0, "@releaseDomain\0b5\0", 18), 0);
	expect_error(61, 0, "EACCES");
	check_healthy();
	ck_assert(xs_is_domain_introduced(h, 5));
	ck_assert(xsd_log_contains(&d, "INTRODUCE"));

	/* A domain cannot open connections (and snapshots) without bound. */
	{
		int many[40], refused = -1;
		struct xsd_sockmsg r;

		for (int i = 0; i < 40; i++) {
			many[i] = raw_connect(sock);
			ck_assert_int_ge(many[i], 0);
			int e = raw_send(many[i], XS_GET_DOMAIN_PATH, 70, 0, "5", 2);

			/* Refused = closed at once: the send or the receive sees it. */
			ck_assert(e == 0 || e == -EPIPE || e == -ECONNRESET);
			if (e < 0 || raw_recv(many[i], &r, buf, sizeof(buf)) == -EPIPE) {
				refused = i;
				break;
			}
			ck_assert_str_eq(buf, "/local/domain/5");
		}
		/* 32 per domain, and fd (above) is one of them. */
		ck_assert_int_eq(refused, 31);
		for (int i = 0; i <= refused; i++)
			close(many[i]);
		ck_assert(xsd_log_contains(&d, "refused connection for dom5"));
	}
	check_healthy();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("xenstore-hostile");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "oversized_len", test_oversized_len },
		{ "max_len_ok", test_max_len_ok },
		{ "unknown_type", test_unknown_type },
		{ "path_without_nul", test_path_without_nul },
		{ "tx_end_invalid", test_tx_end_invalid },
		{ "garbage_tx_id", test_garbage_tx_id },
		{ "split_header", test_split_header },
		{ "bad_domains", test_bad_domains },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	if (!getenv("XENSTORED_BIN")) {
		fprintf(stderr, "XENSTORED_BIN not set\n");
		return 77;
	}
	if (xsd_scratch_begin() < 0) {
		perror("scratch directory");
		return 1;
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	xsd_scratch_end();
	return failed ? 1 : 0;
}
