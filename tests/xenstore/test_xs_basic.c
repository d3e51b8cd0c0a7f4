/* SPDX-License-Identifier: MIT */
/*
 * xensim-xenstored through Debian's libxenstore: tree operations,
 * permissions, domU connections, watches, transactions, relative paths.
 * Each test gets its own daemon (checked fixture, forked test).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenstore.h>

#include "xs_harness.h"

static struct xsd_inst d;
static struct xs_handle *h; /* dom0 */

static struct xs_handle *open_at(const char *sock)
{
	/* libxenstore reads XENSTORED_PATH when the handle is opened. */
	setenv("XENSTORED_PATH", sock, 1);
	return xs_open(0);
}

static void setup(void)
{
	ck_assert_int_eq(xsd_start(&d), 0);
	h = open_at(d.sock);
	ck_assert_ptr_nonnull(h);
}

static void teardown(void)
{
	xs_close(h);
	ck_assert_int_eq(xsd_stop(&d), 0);
}

static char *rd(struct xs_handle *x, xs_transaction_t t, const char *path)
{
	unsigned int len;

	return xs_read(x, t, path, &len);
}

static void assert_read(struct xs_handle *x, xs_transaction_t t, const char *path,
			const char *want)
{
	char *v = rd(x, t, path);

	ck_assert_msg(v != NULL, "read %s: %s", path, strerror(errno));
	ck_assert_str_eq(v, want);
	free(v);
}

static void assert_read_err(struct xs_handle *x, xs_transaction_t t, const char *path,
			    int err)
{
	char *v = rd(x, t, path);

	ck_assert_msg(v == NULL, "read %s unexpectedly gave '%s'", path, v);
	ck_assert_int_eq(errno, err);
}

static bool wr(struct xs_handle *x, xs_transaction_t t, const char *path, const char *val)
{
	return xs_write(x, t, path, val, strlen(val));
}

static char *perms_str(struct xs_handle *x, const char *path)
{
	static char buf[256];
	unsigned int n;
	struct xs_permissions *p = xs_get_permissions(x, XBT_NULL, path, &n);

	ck_assert_msg(p != NULL, "get perms %s: %s", path, strerror(errno));
	buf[0] = '\0';
	for (unsigned int i = 0; i < n; i++) {
		static const char letters[] = "nrwb"; /* indexed by XS_PERM_READ|WRITE */
		char one[32];

		snprintf(one, sizeof(one), "%c%u",
			 letters[p[i].perms & (XS_PERM_READ | XS_PERM_WRITE)], p[i].id);
		strcat(buf, i ? "," : "");
		strcat(buf, one);
	}
	free(p);
	return buf;
}

static void set_perms(struct xs_handle *x, const char *path, const char *spec)
{
	struct xs_permissions p[8];
	char buf[128], *save = NULL;
	unsigned int n = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		ck_assert(xs_strings_to_perms(&p[n], 1, tok));
		n++;
	}
	ck_assert_msg(xs_set_permissions(x, XBT_NULL, path, p, n), "set perms %s: %s", path,
		      strerror(errno));
}

/* Wait (bounded) for the next watch event; returns path and token. */
static void next_event(struct xs_handle *x, char *path, char *token)
{
	struct pollfd pfd = { .fd = xs_fileno(x), .events = POLLIN };
	unsigned int num;
	char **v;

	ck_assert_msg(poll(&pfd, 1, 5000) == 1, "no watch event within 5 s");
	v = xs_read_watch(x, &num);
	ck_assert_ptr_nonnull(v);
	strcpy(path, v[XS_WATCH_PATH]);
	strcpy(token, v[XS_WATCH_TOKEN]);
	free(v);
}

static void expect_event(struct xs_handle *x, const char *path, const char *token)
{
	char p[4096], t[4096];

	next_event(x, p, t);
	ck_assert_str_eq(p, path);
	ck_assert_str_eq(t, token);
}

/*
 * Prove that no other event is pending: events are delivered in order, so
 * the initial event of a fresh watch must be the next one we see.
 */
static void expect_no_event(struct xs_handle *x)
{
	static int n;
	char tok[32];

	snprintf(tok, sizeof(tok), "sync%d", n++);
	ck_assert(xs_watch(x, "/tool", tok));
	expect_event(x, "/tool", tok);
	ck_assert(xs_unwatch(x, "/tool", tok));
}

static struct xs_handle *domu(unsigned int domid)
{
	char sock[512];
	struct xs_handle *x;

	xsd_dom_sock(&d, domid, sock, sizeof(sock));
	x = open_at(sock);
	ck_assert_msg(x != NULL, "xs_open %s: %s", sock, strerror(errno));
	return x;
}

/* What a toolstack does for a new guest: introduce it and give it its home. */
static void make_domain(unsigned int domid)
{
	char home[64], spec[16];

	ck_assert(xs_introduce_domain(h, domid, 1000 + domid, 10 + domid));
	snprintf(home, sizeof(home), "/local/domain/%u", domid);
	ck_assert(xs_mkdir(h, XBT_NULL, home));
	snprintf(spec, sizeof(spec), "n%u", domid);
	set_perms(h, home, spec);
}

START_TEST(test_tree_ops)
{
	unsigned int n;
	char **dir;

	ck_assert(wr(h, XBT_NULL, "/a/b/c", "hello"));
	assert_read(h, XBT_NULL, "/a/b/c", "hello");
	/* Implicit parents exist, with empty values. */
	assert_read(h, XBT_NULL, "/a/b", "");
	ck_assert(wr(h, XBT_NULL, "/a/b/c", "again"));
	assert_read(h, XBT_NULL, "/a/b/c", "again");
	ck_assert(xs_write(h, XBT_NULL, "/a/bin", "x\0y", 3));
	{
		unsigned int len;
		char *v = xs_read(h, XBT_NULL, "/a/bin", &len);

		ck_assert_uint_eq(len, 3);
		ck_assert_mem_eq(v, "x\0y", 3);
		free(v);
	}
	ck_assert(xs_mkdir(h, XBT_NULL, "/a/dir"));
	ck_assert(xs_mkdir(h, XBT_NULL, "/a/dir")); /* existing: fine */
	assert_read(h, XBT_NULL, "/a/dir", "");

	dir = xs_directory(h, XBT_NULL, "/a", &n);
	ck_assert_ptr_nonnull(dir);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(dir[0], "b");
	ck_assert_str_eq(dir[1], "bin");
	ck_assert_str_eq(dir[2], "dir");
	free(dir);
	dir = xs_directory(h, XBT_NULL, "/a/dir", &n);
	ck_assert_ptr_nonnull(dir);
	ck_assert_uint_eq(n, 0);
	free(dir);

	ck_assert(xs_rm(h, XBT_NULL, "/a/b"));
	assert_read_err(h, XBT_NULL, "/a/b/c", ENOENT);
	assert_read_err(h, XBT_NULL, "/a/b", ENOENT);
	ck_assert(xs_rm(h, XBT_NULL, "/a/b"));          /* missing, parent exists */
	ck_assert(!xs_rm(h, XBT_NULL, "/nope/x"));      /* missing parent */
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(!xs_rm(h, XBT_NULL, "/"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(xs_directory(h, XBT_NULL, "/nope", &n) == NULL);
	ck_assert_int_eq(errno, ENOENT);

	/* Invalid names. */
	ck_assert(!wr(h, XBT_NULL, "/a//b", "x"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!wr(h, XBT_NULL, "/a/b/", "x"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!wr(h, XBT_NULL, "/a/b c", "x"));
	ck_assert_int_eq(errno, EINVAL);

	/* Initial tree. */
	assert_read(h, XBT_NULL, "/local/domain", "");
	assert_read(h, XBT_NULL, "/tool/xenstored", "");
	ck_assert_str_eq(perms_str(h, "/"), "n0");
	ck_assert_str_eq(perms_str(h, "/tool"), "n0");

	{
		char *p = xs_get_domain_path(h, 7);

		ck_assert_str_eq(p, "/local/domain/7");
		free(p);
	}
}
END_TEST

START_TEST(test_directory_part)
{
	char name[128];
	unsigned int n;
	char **dir;

	/* 120 children of 60 bytes: more than one XENSTORE_PAYLOAD_MAX reply. */
	for (int i = 0; i < 120; i++) {
		snprintf(name, sizeof(name), "/big/child-%03d-%s", i,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		ck_assert(wr(h, XBT_NULL, name, "v"));
	}
	dir = xs_directory(h, XBT_NULL, "/big", &n);
	ck_assert_msg(dir != NULL, "directory: %s", strerror(errno));
	ck_assert_uint_eq(n, 120);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "child-%03u-", i);
		ck_assert(strncmp(dir[i], name, strlen(name)) == 0);
	}
	free(dir);
}
END_TEST

START_TEST(test_perms)
{
	ck_assert(wr(h, XBT_NULL, "/p/node", "v"));
	ck_assert_str_eq(perms_str(h, "/p/node"), "n0");
	set_perms(h, "/p/node", "r5,w6,b7");
	ck_assert_str_eq(perms_str(h, "/p/node"), "r5,w6,b7");
	/* Children inherit from their parent. */
	set_perms(h, "/p", "n0,r9");
	ck_assert(wr(h, XBT_NULL, "/p/kid", "v"));
	ck_assert_str_eq(perms_str(h, "/p/kid"), "n0,r9");
	ck_assert(!xs_set_permissions(h, XBT_NULL, "/p/missing",
				      &(struct xs_permissions){ .id = 0, .perms = XS_PERM_NONE }, 1));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_domu_access)
{
	struct xs_handle *g;
	unsigned int n;
	char **dir;
	char *p;

	make_domain(5);
	ck_assert(wr(h, XBT_NULL, "/local/domain/6/secret", "s"));
	ck_assert(xs_is_domain_introduced(h, 5));
	ck_assert(!xs_is_domain_introduced(h, 6));

	g = domu(5);
	/* Own tree: read/write. */
	ck_assert_msg(wr(g, XBT_NULL, "/local/domain/5/data/x", "1"), "%s", strerror(errno));
	assert_read(g, XBT_NULL, "/local/domain/5/data/x", "1");
	assert_read(h, XBT_NULL, "/local/domain/5/data/x", "1");
	ck_assert_str_eq(perms_str(h, "/local/domain/5/data/x"), "n5");
	/* Relative paths are under /local/domain/5. */
	ck_assert(wr(g, XBT_NULL, "rel/y", "2"));
	assert_read(h, XBT_NULL, "/local/domain/5/rel/y", "2");
	assert_read(g, XBT_NULL, "rel/y", "2");
	dir = xs_directory(g, XBT_NULL, "rel", &n);
	ck_assert_ptr_nonnull(dir);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(dir[0], "y");
	free(dir);
	p = xs_get_domain_path(g, 5);
	ck_assert_str_eq(p, "/local/domain/5");
	free(p);

	/* Another domain's tree, and the toolstack's. */
	assert_read_err(g, XBT_NULL, "/local/domain/6/secret", EACCES);
	assert_read_err(g, XBT_NULL, "/local/domain/6/missing", EACCES);
	ck_assert(!wr(g, XBT_NULL, "/local/domain/6/secret", "x"));
	ck_assert_int_eq(errno, EACCES);
	ck_assert(!wr(g, XBT_NULL, "/local/domain/6/new", "x"));
	ck_assert_int_eq(errno, EACCES);
	ck_assert(!xs_rm(g, XBT_NULL, "/local/domain/6/secret"));
	ck_assert_int_eq(errno, EACCES);
	assert_read_err(g, XBT_NULL, "/tool", EACCES);
	ck_assert(!wr(g, XBT_NULL, "/tool/x", "x"));
	ck_assert_int_eq(errno, EACCES);
	ck_assert(xs_directory(g, XBT_NULL, "/local/domain", &n) == NULL);
	ck_assert_int_eq(errno, EACCES);
	assert_read(h, XBT_NULL, "/local/domain/6/secret", "s");

	/* Granting read to dom5 works; the owner may not give nodes away. */
	set_perms(h, "/local/domain/6/secret", "n0,r5");
	assert_read(g, XBT_NULL, "/local/domain/6/secret", "s");
	ck_assert(!wr(g, XBT_NULL, "/local/domain/6/secret", "x"));
	ck_assert_int_eq(errno, EACCES);
	ck_assert(!xs_set_permissions(g, XBT_NULL, "/local/domain/5/data/x",
				      &(struct xs_permissions){ .id = 6, .perms = XS_PERM_NONE }, 1));
	ck_assert_int_eq(errno, EPERM);
	set_perms(g, "/local/domain/5/data/x", "n5,r6");
	ck_assert(!xs_set_permissions(g, XBT_NULL, "/local/domain/6/secret",
				      &(struct xs_permissions){ .id = 5, .perms = XS_PERM_NONE }, 1));
	ck_assert_int_eq(errno, EACCES);

	/* Privileged operations. */
	ck_assert(!xs_introduce_domain(g, 9, 1, 1));
	ck_assert_int_eq(errno, EACCES);
	ck_assert(!xs_release_domain(g, 5));
	ck_assert_int_eq(errno, EACCES);
	xs_close(g);
}
END_TEST

START_TEST(test_domu_quota)
{
	struct xs_handle *g;
	char path[64];
	int i;

	make_domain(5);
	g = domu(5);
	/* dom5 owns its home (1 node); 1000 is the quota. */
	for (i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "q/%d", i);
		if (!wr(g, XBT_NULL, path, "v"))
			break;
	}
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_ge(i, 990);
	ck_assert_int_le(i, 1000);
	/* dom0 is not limited, and the daemon still answers dom5. */
	ck_assert(wr(h, XBT_NULL, "/local/domain/5/q/by-dom0", "v"));
	assert_read(g, XBT_NULL, "q/0", "v");
	xs_close(g);
}
END_TEST

START_TEST(test_domu_release)
{
	struct xs_handle *g;
	char sock[512];

	make_domain(5);
	g = domu(5);
	assert_read(g, XBT_NULL, "/local/domain/5", "");
	ck_assert(xs_release_domain(h, 5));
	ck_assert(!xs_is_domain_introduced(h, 5));
	/* Its connections are closed and its socket is gone. */
	ck_assert(rd(g, XBT_NULL, "/local/domain/5") == NULL);
	xs_close(g);
	xsd_dom_sock(&d, 5, sock, sizeof(sock));
	ck_assert_int_ne(access(sock, F_OK), 0);
	ck_assert(!xs_release_domain(h, 5));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_watch_basic)
{
	ck_assert(wr(h, XBT_NULL, "/w", ""));
	ck_assert(xs_watch(h, "/w", "tok"));
	expect_event(h, "/w", "tok");          /* initial event */
	ck_assert(wr(h, XBT_NULL, "/w", "1"));
	expect_event(h, "/w", "tok");
	ck_assert(wr(h, XBT_NULL, "/w/a/b", "2"));
	expect_event(h, "/w/a/b", "tok");
	ck_assert(xs_mkdir(h, XBT_NULL, "/w/m"));
	expect_event(h, "/w/m", "tok");
	set_perms(h, "/w/m", "r3");
	expect_event(h, "/w/m", "tok");
	ck_assert(wr(h, XBT_NULL, "/other", "x"));   /* not below /w */
	ck_assert(xs_rm(h, XBT_NULL, "/w/a"));
	expect_event(h, "/w/a", "tok");
	ck_assert(!xs_watch(h, "/w", "tok"));        /* duplicate */
	ck_assert_int_eq(errno, EEXIST);

	ck_assert(xs_unwatch(h, "/w", "tok"));
	ck_assert(wr(h, XBT_NULL, "/w/after", "x"));
	expect_no_event(h);
	ck_assert(!xs_unwatch(h, "/w", "tok"));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_watch_rm_children)
{
	struct xs_handle *w = open_at(d.sock);

	ck_assert(wr(h, XBT_NULL, "/t/a/b", "x"));
	ck_assert(xs_watch(w, "/t/a/b", "child"));
	expect_event(w, "/t/a/b", "child");
	/* Removing an ancestor tells watchers of the removed descendants. */
	ck_assert(xs_rm(h, XBT_NULL, "/t"));
	expect_event(w, "/t/a/b", "child");
	xs_close(w);
}
END_TEST

START_TEST(test_watch_special)
{
	ck_assert(xs_watch(h, "@introduceDomain", "intro"));
	expect_event(h, "@introduceDomain", "intro");
	ck_assert(xs_watch(h, "@releaseDomain", "rel"));
	expect_event(h, "@releaseDomain", "rel");
	ck_assert(xs_introduce_domain(h, 7, 1, 2));
	expect_event(h, "@introduceDomain", "intro");
	ck_assert(xs_introduce_domain(h, 7, 1, 2)); /* again: no event */
	ck_assert(xs_release_domain(h, 7));
	expect_event(h, "@releaseDomain", "rel");
	expect_no_event(h);
}
END_TEST

START_TEST(test_watch_domu)
{
	struct xs_handle *g;

	make_domain(5);
	ck_assert(wr(h, XBT_NULL, "/local/domain/6/x", "s"));
	g = domu(5);
	ck_assert(xs_watch(g, "dev", "rel"));
	expect_event(g, "dev", "rel");
	ck_assert(xs_watch(g, "/local/domain/6", "spy"));
	expect_event(g, "/local/domain/6", "spy");
	ck_assert(xs_watch(g, "@releaseDomain", "rel-spy"));
	expect_event(g, "@releaseDomain", "rel-spy");

	ck_assert(wr(h, XBT_NULL, "/local/domain/5/dev/vbd/state", "1"));
	expect_event(g, "dev/vbd/state", "rel");    /* relative watch, relative path */
	ck_assert(wr(h, XBT_NULL, "/local/domain/6/x", "secret"));  /* not readable by 5 */
	ck_assert(xs_introduce_domain(h, 8, 1, 2));
	ck_assert(xs_release_domain(h, 8));            /* @releaseDomain is n0 */
	expect_no_event(g);

	/* Watch quota: 128 per domain connection. */
	{
		char tok[16];
		int i;

		for (i = 0; i < 200; i++) {
			snprintf(tok, sizeof(tok), "q%d", i);
			if (!xs_watch(g, "quota", tok))
				break;
			expect_event(g, "quota", tok);
		}
		ck_assert_int_eq(errno, E2BIG);
		ck_assert_int_eq(i, 128 - 3 - 0); /* three watches were already there */
	}
	xs_close(g);
}
END_TEST

START_TEST(test_tx_commit_abort)
{
	xs_transaction_t t;

	ck_assert(wr(h, XBT_NULL, "/tx/base", "0"));
	t = xs_transaction_start(h);
	ck_assert(t != XBT_NULL);
	ck_assert(wr(h, t, "/tx/a", "1"));
	ck_assert(wr(h, t, "/tx/base", "changed"));
	ck_assert(xs_rm(h, t, "/tx/base"));
	ck_assert(wr(h, t, "/tx/base2", "2"));
	assert_read(h, t, "/tx/a", "1");               /* own view */
	assert_read_err(h, XBT_NULL, "/tx/a", ENOENT); /* invisible outside */
	assert_read(h, XBT_NULL, "/tx/base", "0");
	ck_assert(xs_watch(h, "/tx", "txw"));
	expect_event(h, "/tx", "txw");
	ck_assert(xs_transaction_end(h, t, false));
	assert_read(h, XBT_NULL, "/tx/a", "1");
	assert_read_err(h, XBT_NULL, "/tx/base", ENOENT);
	assert_read(h, XBT_NULL, "/tx/base2", "2");
	/* Watches fire on commit, in order. */
	expect_event(h, "/tx/a", "txw");
	expect_event(h, "/tx/base", "txw");
	expect_event(h, "/tx/base", "txw");
	expect_event(h, "/tx/base2", "txw");

	t = xs_transaction_start(h);
	ck_assert(wr(h, t, "/tx/aborted", "x"));
	ck_assert(xs_transaction_end(h, t, true));
	assert_read_err(h, XBT_NULL, "/tx/aborted", ENOENT);
	expect_no_event(h);
	/* The id is gone after END. */
	ck_assert(!wr(h, t, "/tx/late", "x"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(!xs_transaction_end(h, t, false));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_tx_conflict)
{
	struct xs_handle *h2 = open_at(d.sock);
	xs_transaction_t t1, t2;
	char *v;

	ck_assert(wr(h, XBT_NULL, "/c/x", "0"));
	t1 = xs_transaction_start(h);
	t2 = xs_transaction_start(h2);
	v = rd(h, t1, "/c/x");
	free(v);
	v = rd(h2, t2, "/c/x");
	free(v);
	ck_assert(wr(h, t1, "/c/x", "1"));
	ck_assert(wr(h2, t2, "/c/x", "2"));
	ck_assert(wr(h2, t2, "/c/y", "2"));
	ck_assert(xs_transaction_end(h, t1, false));
	ck_assert(!xs_transaction_end(h2, t2, false));
	ck_assert_int_eq(errno, EAGAIN);
	assert_read(h, XBT_NULL, "/c/x", "1");
	assert_read_err(h, XBT_NULL, "/c/y", ENOENT);

	/* A non-transactional write also conflicts; disjoint work does not. */
	t1 = xs_transaction_start(h);
	t2 = xs_transaction_start(h2);
	v = rd(h, t1, "/c/x");
	free(v);
	ck_assert(wr(h, t1, "/c/x", "t1"));
	ck_assert(wr(h2, t2, "/d/z", "t2"));
	ck_assert(wr(h, XBT_NULL, "/c/x", "outside"));
	ck_assert(!xs_transaction_end(h, t1, false));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(xs_transaction_end(h2, t2, false));
	assert_read(h, XBT_NULL, "/c/x", "outside");
	assert_read(h, XBT_NULL, "/d/z", "t2");

	/* A node created by someone else after a failed read also conflicts. */
	t1 = xs_transaction_start(h);
	assert_read_err(h, t1, "/c/new", ENOENT);
	ck_assert(wr(h, t1, "/c/x", "t1"));
	ck_assert(wr(h2, XBT_NULL, "/c/new", "n"));
	ck_assert(!xs_transaction_end(h, t1, false));
	ck_assert_int_eq(errno, EAGAIN);
	xs_close(h2);
}
END_TEST

START_TEST(test_tx_limits)
{
	xs_transaction_t t[12];
	int i;

	for (i = 0; i < 12; i++) {
		t[i] = xs_transaction_start(h);
		if (t[i] == XBT_NULL)
			break;
	}
	ck_assert_int_eq(i, 10);
	ck_assert_int_eq(errno, ENOSPC);
	for (i = 0; i < 10; i++)
		ck_assert(xs_transaction_end(h, t[i], true));
	t[0] = xs_transaction_start(h);
	ck_assert(t[0] != XBT_NULL);
	ck_assert(xs_transaction_end(h, t[0], true));
}
END_TEST

START_TEST(test_tx_domu)
{
	struct xs_handle *g;
	xs_transaction_t t;

	make_domain(5);
	g = domu(5);
	t = xs_transaction_start(g);
	ck_assert(t != XBT_NULL);
	ck_assert(wr(g, t, "device/vif/0/state", "1"));
	ck_assert(!wr(g, t, "/local/domain/6/x", "1"));
	ck_assert_int_eq(errno, EACCES);
	assert_read(g, t, "device/vif/0/state", "1");
	ck_assert(xs_transaction_end(g, t, false));
	assert_read(h, XBT_NULL, "/local/domain/5/device/vif/0/state", "1");
	ck_assert_str_eq(perms_str(h, "/local/domain/5/device/vif/0/state"), "n5");
	xs_close(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("xenstore");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "tree", test_tree_ops },
		{ "directory_part", test_directory_part },
		{ "perms", test_perms },
		{ "domu_access", test_domu_access },
		{ "domu_quota", test_domu_quota },
		{ "domu_release", test_domu_release },
		{ "watch_basic", test_watch_basic },
		{ "watch_rm_children", test_watch_rm_children },
		{ "watch_special", test_watch_special },
		{ "watch_domu", test_watch_domu },
		{ "tx_commit_abort", test_tx_commit_abort },
		{ "tx_conflict", test_tx_conflict },
		{ "tx_limits", test_tx_limits },
		{ "tx_domu", test_tx_domu },
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
