/* SPDX-License-Identifier: MIT */
/*
 * Two threads, one ring: the frontend thread produces 1,000,000 requests
 * with verified payloads, the backend thread answers each one.  Each side
 * sleeps only in a blocking eventfd read, and only after its final check
 * said there was no work, and it is woken only when the peer's push says
 * "notify" — so a lost wakeup in the notification-suppression logic shows
 * up as a stall (reported after 20 s), not as a slow pass.  Combinations:
 * pvio/pvio, Xen-macro front/pvio back, pvio front/Xen-macro back.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"

#define NMSG 1000000u
#define BATCH 64u
#define STALL_MS 20000

struct tctx {
	struct h_end f, b;
	int efd_front, efd_back;
	uint64_t req_sent, req_seen, rsp_sent, rsp_seen;
	uint64_t waits_front, waits_back, kicks_front, kicks_back;
	enum h_proto p;
};

static void kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one)) {
		perror("eventfd write");
		abort();
	}
}

static void wait_event(int fd, const char *who)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int rc;

	do
		rc = poll(&pfd, 1, STALL_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		fprintf(stderr, "%s: no event for %d ms: lost wakeup\n", who,
			STALL_MS);
		abort();
	}
	if (read(fd, &v, sizeof(v)) != sizeof(v)) {
		perror("eventfd read");
		abort();
	}
}

static void *front_thread(void *arg)
{
	struct tctx *c = arg;
	const struct h_proto_info *pi = &h_protos[c->p];
	unsigned char msg[256];
	unsigned char *buf = malloc(BATCH * 256);

	if (!buf)
		abort();
	while (c->rsp_seen < NMSG) {
		uint32_t fr = h_front_free(&c->f);
		unsigned produced = 0, n;

		while (produced < fr && produced < BATCH && c->req_sent < NMSG) {
			h_fill(msg, pi->req_size, c->req_sent++, 1);
			h_front_put_req(&c->f, msg);
			produced++;
		}
		if (produced && h_front_push(&c->f)) {
			c->kicks_back++;
			kick(c->efd_back);
		}
		n = h_front_take(&c->f, BATCH, buf);
		for (unsigned j = 0; j < n; j++) {
			if (!h_check(buf + j * pi->rsp_size, pi->rsp_size,
				     c->rsp_seen, 2)) {
				fprintf(stderr, "bad response %llu\n",
					(unsigned long long)c->rsp_seen);
				abort();
			}
			c->rsp_seen++;
		}
		if (n == 0 && produced == 0 && h_front_final(&c->f) == 0) {
			c->waits_front++;
			wait_event(c->efd_front, "frontend");
		}
	}
	free(buf);
	return NULL;
}

static void *back_thread(void *arg)
{
	struct tctx *c = arg;
	const struct h_proto_info *pi = &h_protos[c->p];
	unsigned char msg[256];
	unsigned char *buf = malloc(BATCH * 256);

	if (!buf)
		abort();
	while (c->req_seen < NMSG) {
		unsigned n = h_back_take(&c->b, BATCH, buf);

		for (unsigned j = 0; j < n; j++) {
			if (!h_check(buf + j * pi->req_size, pi->req_size,
				     c->req_seen, 1)) {
				fprintf(stderr, "bad request %llu\n",
					(unsigned long long)c->req_seen);
				abort();
			}
			c->req_seen++;
			h_fill(msg, pi->rsp_size, c->rsp_sent++, 2);
			h_back_put_rsp(&c->b, msg);
		}
		if (n) {
			if (h_back_push(&c->b)) {
				c->kicks_front++;
				kick(c->efd_front);
			}
		} else if (h_back_final(&c->b) == 0) {
			c->waits_back++;
			wait_event(c->efd_back, "backend");
		}
	}
	free(buf);
	return NULL;
}

static void run(enum h_impl fi, enum h_impl bi, enum h_proto p, unsigned order,
		uint32_t start)
{
	size_t bytes = PVIO_RING_BYTES(order);
	struct tctx *c = calloc(1, sizeof(*c));
	void *mem = aligned_alloc(4096, bytes);
	pthread_t tf, tb;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(mem);
	memset(mem, 0, bytes);
	c->p = p;
	c->efd_front = eventfd(0, EFD_CLOEXEC);
	c->efd_back = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(c->efd_front, 0);
	ck_assert_int_ge(c->efd_back, 0);
	h_sring_init(fi, p, mem, start);
	h_front_attach(&c->f, fi, p, mem, bytes, start);
	h_back_attach(&c->b, bi, p, mem, bytes, start);

	ck_assert_int_eq(pthread_create(&tb, NULL, back_thread, c), 0);
	ck_assert_int_eq(pthread_create(&tf, NULL, front_thread, c), 0);
	ck_assert_int_eq(pthread_join(tf, NULL), 0);
	ck_assert_int_eq(pthread_join(tb, NULL), 0);

	ck_assert_uint_eq(c->req_seen, NMSG);
	ck_assert_uint_eq(c->rsp_seen, NMSG);
	fprintf(stderr,
		"%s %s/%s order %u: %u msgs, front waited %llu kicked %llu, "
		"back waited %llu kicked %llu\n",
		h_protos[p].name, fi == H_XEN ? "xen" : "pvio",
		bi == H_XEN ? "xen" : "pvio", order, NMSG,
		(unsigned long long)c->waits_front,
		(unsigned long long)c->kicks_back,
		(unsigned long long)c->waits_back,
		(unsigned long long)c->kicks_front);
	close(c->efd_front);
	close(c->efd_back);
	free(mem);
	free(c);
}

START_TEST(pvio_pvio_blkif)
{
	run(H_PVIO, H_PVIO, H_BLKIF, 0, 0xffffffffu - 1000);
}
END_TEST

START_TEST(xen_front_pvio_back)
{
	run(H_XEN, H_PVIO, H_NETIF_TX, 1, 0xffffffffu - 100000);
}
END_TEST

START_TEST(pvio_front_xen_back)
{
	run(H_PVIO, H_XEN, H_BLKIF, 2, 0x7fffffffu - 5000);
}
END_TEST

START_TEST(pvio_pvio_netif_rx)
{
	run(H_PVIO, H_PVIO, H_NETIF_RX, 4, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring-threads");
	TCase *tc = tcase_create("threads");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, pvio_pvio_blkif);
	tcase_add_test(tc, xen_front_pvio_back);
	tcase_add_test(tc, pvio_front_xen_back);
	tcase_add_test(tc, pvio_pvio_netif_rx);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
