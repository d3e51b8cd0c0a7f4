/* SPDX-License-Identifier: MIT */
/*
 * Grant-table semantics on xensim: every refusal Xen makes is made, and the
 * allowed cases move real data between a guest process and a dom0 process.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <xengnttab.h>
#include "pvio/grant.h"
#include "guestagent.h"
#include "xsimfix.h"

static struct xsimfix fix;
static uint32_t domu;
static struct ga guest;
static xengnttab_handle *xgt;

static void setup(void)
{
	xsimfix_start(&fix);
	domu = xsimfix_domain_create("guest", 16);
	ga_start(&guest, domu);
	xgt = xengnttab_open(NULL, 0);
	ck_assert_ptr_nonnull(xgt);
}

static void teardown(void)
{
	xengnttab_close(xgt);
	ga_stop(&guest);
	xsimfix_stop(&fix);
}

static int check_pattern(const uint8_t *p, uint32_t seed)
{
	for (uint32_t i = 0; i < 4096; i++)
		if (p[i] != ga_pattern(seed, i))
			return 0;
	return 1;
}

static void fill_pattern(uint8_t *p, uint32_t seed)
{
	for (uint32_t i = 0; i < 4096; i++)
		p[i] = ga_pattern(seed, i);
}

START_TEST(test_ungranted_refused)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 1, 0);
	ck_assert_int_ge(pg, 0);
	/* refs 8..: never written by the guest */
	errno = 0;
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, 100, PROT_READ));
	ck_assert_int_eq(errno, EINVAL);
	/* beyond the table */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, 1u << 30, PROT_READ));
	/* a domain that does not exist */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, 4242, 8, PROT_READ));
}
END_TEST

START_TEST(test_other_domain_refused)
{
	uint32_t other = xsimfix_domain_create("other", 4);
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 1, 0);
	ck_assert_int_eq(ga_do(&guest, GA_FILL, (uint32_t)pg, 7, 0), 0);
	int64_t ref = ga_do(&guest, GA_GRANT, (uint32_t)pg, 0, other);
	ck_assert_int_ge(ref, 8);
	/* granted to "other", so dom0 may not map it */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, (uint32_t)ref, PROT_READ));
	/* but "other" may: a process of that domain maps and checks it */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		xsimfix_become(other);
		xengnttab_handle *h = xengnttab_open(NULL, 0);
		uint8_t *p = h ? xengnttab_map_grant_ref(h, domu, (uint32_t)ref, PROT_READ) : NULL;
		_exit(p && check_pattern(p, 7) && xengnttab_unmap(h, p, 1) == 0 ? 0 : 1);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(test_readonly_enforced)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 1, 0);
	ck_assert_int_eq(ga_do(&guest, GA_FILL, (uint32_t)pg, 3, 0), 0);
	int64_t ref = ga_do(&guest, GA_GRANT, (uint32_t)pg, 1, 0);
	ck_assert_int_ge(ref, 8);
	/* a writable map of a read-only grant is refused */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, (uint32_t)ref, PROT_READ | PROT_WRITE));
	/* a read-only map works and shows the data */
	uint8_t *p = xengnttab_map_grant_ref(xgt, domu, (uint32_t)ref, PROT_READ);
	ck_assert_ptr_nonnull(p);
	ck_assert(check_pattern(p, 3));
	/* writing through it faults */
	pid_t pid = fork();
	if (pid == 0) {
		/* the default action, not a sanitizer's report-and-exit */
		signal(SIGSEGV, SIG_DFL);
		((volatile uint8_t *)p)[0] = 1;
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	ck_assert_int_eq(xengnttab_unmap(xgt, p, 1), 0);
	/* a grant copy into it is refused, and the page is unchanged */
	uint8_t buf[64];
	memset(buf, 0xee, sizeof(buf));
	xengnttab_grant_copy_segment_t seg = {
		.source.virt = buf,
		.dest.foreign = { .ref = (uint32_t)ref, .offset = 0, .domid = (uint16_t)domu },
		.len = sizeof(buf), .flags = GNTCOPY_dest_gref,
	};
	ck_assert_int_eq(xengnttab_grant_copy(xgt, 1, &seg), 0);
	ck_assert_int_ne(seg.status, GNTST_okay);
	ck_assert_int_eq(ga_do(&guest, GA_CHECK, (uint32_t)pg, 3, 0), 0);
}
END_TEST

START_TEST(test_end_access_while_mapped)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 1, 0);
	int64_t ref = ga_do(&guest, GA_GRANT, (uint32_t)pg, 0, 0);
	ck_assert_int_ge(ref, 8);
	void *p = xengnttab_map_grant_ref(xgt, domu, (uint32_t)ref, PROT_READ | PROT_WRITE);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)ref, 0, 0), -EBUSY);
	ck_assert_int_eq(xengnttab_unmap(xgt, p, 1), 0);
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)ref, 0, 0), 0);
	/* and once ended, it cannot be mapped again */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, (uint32_t)ref, PROT_READ));
	/* unmapping what is not mapped is an error */
	ck_assert_int_eq(xengnttab_unmap(xgt, p, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_destroyed_domain_refused)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 2, 0);
	ck_assert_int_eq(ga_do(&guest, GA_FILL, (uint32_t)pg, 11, 0), 0);
	int64_t r0 = ga_do(&guest, GA_GRANT, (uint32_t)pg, 0, 0);
	int64_t r1 = ga_do(&guest, GA_GRANT, (uint32_t)pg + 1, 0, 0);
	ck_assert_int_ge(r0, 8);
	ck_assert_int_ge(r1, 8);
	uint8_t *p = xengnttab_map_grant_ref(xgt, domu, (uint32_t)r0, PROT_READ);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(xsimfix_domain_destroy(domu), 0);
	/* its processes die with it */
	int st;
	ck_assert_int_eq(waitpid(guest.pid, &st, 0), guest.pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	guest.pid = -1;
	/* new maps of its refs are refused */
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, (uint32_t)r1, PROT_READ));
	/* a page mapped before stays valid until unmapped, as on Xen */
	ck_assert(check_pattern(p, 11));
	ck_assert_int_eq(xengnttab_unmap(xgt, p, 1), 0);
}
END_TEST

START_TEST(test_data_moves_both_ways)
{
	enum { N = 16 };
	uint32_t refs[N];
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, N, 0);
	ck_assert_int_ge(pg, 0);
	for (uint32_t i = 0; i < N; i++) {
		ck_assert_int_eq(ga_do(&guest, GA_FILL, (uint32_t)pg + i, 100 + i, 0), 0);
		int64_t r = ga_do(&guest, GA_GRANT, (uint32_t)pg + i, 0, 0);
		ck_assert_int_ge(r, 8);
		refs[i] = (uint32_t)r;
	}
	/* batched map of all 16: the guest's data is there */
	uint8_t *area;
	int status[N];
	ck_assert_int_eq(pvio_gnt_map_batch(xgt, domu, N, refs, 1, (void **)&area, status), 0);
	for (uint32_t i = 0; i < N; i++) {
		ck_assert_int_eq(status[i], 0);
		ck_assert(check_pattern(area + i * 4096, 100 + i));
		fill_pattern(area + i * 4096, 200 + i);
	}
	ck_assert_int_eq(xengnttab_unmap(xgt, area, N), 0);
	/* and what dom0 wrote is in the guest's pages */
	for (uint32_t i = 0; i < N; i++)
		ck_assert_int_eq(ga_do(&guest, GA_CHECK, (uint32_t)pg + i, 200 + i, 0), 0);
	/* map_grant_refs (per-ref domids) sees the same */
	uint32_t doms[N];
	for (uint32_t i = 0; i < N; i++)
		doms[i] = domu;
	area = xengnttab_map_grant_refs(xgt, N, doms, refs, PROT_READ);
	ck_assert_ptr_nonnull(area);
	for (uint32_t i = 0; i < N; i++)
		ck_assert(check_pattern(area + i * 4096, 200 + i));
	ck_assert_int_eq(xengnttab_unmap(xgt, area, N), 0);
	for (uint32_t i = 0; i < N; i++)
		ck_assert_int_eq(ga_do(&guest, GA_END, refs[i], 0, 0), 0);
}
END_TEST

START_TEST(test_batch_reports_bad_ref)
{
	uint32_t refs[4];
	int status[4];
	void *area = (void *)1;
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 4, 0);
	for (uint32_t i = 0; i < 4; i++)
		refs[i] = (uint32_t)ga_do(&guest, GA_GRANT, (uint32_t)pg + i, 0, 0);
	refs[2] = 5000;  /* never granted */
	ck_assert_int_eq(pvio_gnt_map_batch(xgt, domu, 4, refs, 0, &area, status), -EINVAL);
	ck_assert_ptr_null(area);
	ck_assert_int_eq(status[0], 0);
	ck_assert_int_eq(status[1], 0);
	ck_assert_int_eq(status[2], -EINVAL);
	ck_assert_int_eq(status[3], 0);
	/* nothing stayed mapped: the guest can end every good grant */
	ck_assert_int_eq(ga_do(&guest, GA_END, refs[0], 0, 0), 0);
	ck_assert_int_eq(ga_do(&guest, GA_END, refs[1], 0, 0), 0);
	ck_assert_int_eq(ga_do(&guest, GA_END, refs[3], 0, 0), 0);
}
END_TEST

START_TEST(test_grant_copy)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 2, 0);
	ck_assert_int_eq(ga_do(&guest, GA_FILL, (uint32_t)pg, 21, 0), 0);
	int64_t src = ga_do(&guest, GA_GRANT, (uint32_t)pg, 1, 0);
	int64_t dst = ga_do(&guest, GA_GRANT, (uint32_t)pg + 1, 0, 0);
	uint8_t in[4096], out[4096];
	memset(in, 0, sizeof(in));
	fill_pattern(out, 22);
	xengnttab_grant_copy_segment_t seg[4] = {
		{ /* guest -> local, in two halves */
		  .source.foreign = { .ref = (uint32_t)src, .offset = 0, .domid = (uint16_t)domu },
		  .dest.virt = in, .len = 2048, .flags = GNTCOPY_source_gref },
		{ .source.foreign = { .ref = (uint32_t)src, .offset = 2048, .domid = (uint16_t)domu },
		  .dest.virt = in + 2048, .len = 2048, .flags = GNTCOPY_source_gref },
		{ /* local -> guest */
		  .source.virt = out,
		  .dest.foreign = { .ref = (uint32_t)dst, .offset = 0, .domid = (uint16_t)domu },
		  .len = 4096, .flags = GNTCOPY_dest_gref },
		{ /* crosses the page end: refused, alone */
		  .source.foreign = { .ref = (uint32_t)src, .offset = 4000, .domid = (uint16_t)domu },
		  .dest.virt = in, .len = 200, .flags = GNTCOPY_source_gref },
	};
	ck_assert_int_eq(xengnttab_grant_copy(xgt, 4, seg), 0);
	ck_assert_int_eq(seg[0].status, GNTST_okay);
	ck_assert_int_eq(seg[1].status, GNTST_okay);
	ck_assert_int_eq(seg[2].status, GNTST_okay);
	ck_assert_int_eq(seg[3].status, GNTST_bad_copy_arg);
	ck_assert(check_pattern(in, 21));
	ck_assert_int_eq(ga_do(&guest, GA_CHECK, (uint32_t)pg + 1, 22, 0), 0);
	/* copying through an ungranted ref fails */
	seg[0].source.foreign.ref = 7000;
	ck_assert_int_eq(xengnttab_grant_copy(xgt, 1, seg), 0);
	ck_assert_int_ne(seg[0].status, GNTST_okay);
	/* a copy leaves no pin behind */
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)src, 0, 0), 0);
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)dst, 0, 0), 0);
}
END_TEST

START_TEST(test_death_releases_pins)
{
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 1, 0);
	int64_t ref = ga_do(&guest, GA_GRANT, (uint32_t)pg, 0, 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		xengnttab_handle *h = xengnttab_open(NULL, 0);
		void *m = h ? xengnttab_map_grant_ref(h, domu, (uint32_t)ref, PROT_READ | PROT_WRITE) : NULL;
		char c = m ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)ref, 0, 0), -EBUSY);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	xsimfix_sync();
	/* the dead backend's pin is gone with it */
	ck_assert_int_eq(ga_do(&guest, GA_END, (uint32_t)ref, 0, 0), 0);
}
END_TEST

START_TEST(test_max_grants)
{
	uint32_t refs[3];
	int64_t pg = ga_do(&guest, GA_ALLOC, 0, 3, 0);
	for (uint32_t i = 0; i < 3; i++)
		refs[i] = (uint32_t)ga_do(&guest, GA_GRANT, (uint32_t)pg + i, 0, 0);
	ck_assert_int_eq(xengnttab_set_max_grants(xgt, 2), 0);
	ck_assert_ptr_null(xengnttab_map_domain_grant_refs(xgt, 3, domu, refs, PROT_READ));
	void *a = xengnttab_map_domain_grant_refs(xgt, 2, domu, refs, PROT_READ);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_null(xengnttab_map_grant_ref(xgt, domu, refs[2], PROT_READ));
	ck_assert_int_eq(xengnttab_unmap(xgt, a, 2), 0);
	a = xengnttab_map_grant_ref(xgt, domu, refs[2], PROT_READ);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(xengnttab_unmap(xgt, a, 1), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("semantics");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ungranted_refused);
	tcase_add_test(tc, test_other_domain_refused);
	tcase_add_test(tc, test_readonly_enforced);
	tcase_add_test(tc, test_end_access_while_mapped);
	tcase_add_test(tc, test_destroyed_domain_refused);
	tcase_add_test(tc, test_data_moves_both_ways);
	tcase_add_test(tc, test_batch_reports_bad_ref);
	tcase_add_test(tc, test_grant_copy);
	tcase_add_test(tc, test_death_releases_pins);
	tcase_add_test(tc, test_max_grants);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
