/* SPDX-License-Identifier: MIT */
/*
 * blkfront against a test backend on a private xensim: the handshake,
 * reads/writes/flushes of many sizes and offsets checked against a model
 * and against the backend's RAM disk, splitting over 11 segments, hostile
 * backends (each must disconnect the device with -EIO, no crash), garbage
 * xenstore values, and a backend restart in the middle of a workload.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "pvio/blkfront.h"
#include "pvio/blkfront_xensim.h"
#include "testback.h"

#define DEVID 51712u
#define DISK_SECTORS 16384u /* 8 MiB */

struct env {
	char dir[64];
	uint32_t domid;
	pid_t back;
	uint8_t *disk;
	uint64_t sectors;
};

static const char *xensim_bin(void)
{
	const char *x = getenv("XENSIM");

	ck_assert_msg(x && *x, "XENSIM not set");
	return x;
}

static void as_dom0(const struct env *e)
{
	char p[128];

	unsetenv("XENSIM_DOMID");
	snprintf(p, sizeof(p), "%s/xenstored/socket", e->dir);
	setenv("XENSTORED_PATH", p, 1);
}

static void as_guest(const struct env *e)
{
	char p[128], id[16];

	snprintf(id, sizeof(id), "%u", e->domid);
	setenv("XENSIM_DOMID", id, 1);
	snprintf(p, sizeof(p), "%s/xenstored/dom%u.sock", e->dir, e->domid);
	setenv("XENSTORED_PATH", p, 1);
}

static void env_up(struct env *e)
{
	char cmd[512];
	FILE *f;

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/pvio-bf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	setenv("XENSIM_DIR", e->dir, 1);
	unsetenv("XENSIM_DOMID");
	snprintf(cmd, sizeof(cmd), "'%s' start >/dev/null", xensim_bin());
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "'%s' domain create bf-guest --memory 64", xensim_bin());
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%u", &e->domid), 1);
	ck_assert_int_eq(pclose(f), 0);
	as_dom0(e);
	ck_assert_int_eq(tb_create_vbd(e->domid, DEVID), 0);
	e->sectors = DISK_SECTORS;
	e->disk = mmap(NULL, e->sectors * 512, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	ck_assert_ptr_ne(e->disk, MAP_FAILED);
}

static void back_start(struct env *e, struct tb_cfg *c)
{
	c->domid = e->domid;
	c->devid = DEVID;
	c->disk = e->disk;
	c->sectors = e->sectors;
	as_dom0(e);
	fflush(NULL);
	e->back = fork();
	ck_assert_int_ge(e->back, 0);
	if (e->back == 0)
		_exit(tb_run(c));
	as_guest(e);
}

static int back_wait(struct env *e)
{
	int st;

	ck_assert_int_eq(waitpid(e->back, &st, 0), e->back);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void env_down(struct env *e)
{
	char cmd[512];

	as_dom0(e);
	snprintf(cmd, sizeof(cmd), "'%s' stop >/dev/null", xensim_bin());
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	ck_assert_int_eq(system(cmd), 0);
	munmap(e->disk, e->sectors * 512);
}

static uint32_t rng_state;
static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((seed * 2654435761u + i * 40503u) >> 7 ^ i);
}

static struct pvio_blkfront_xensim *open_dev(const struct pvio_blkfront_config *cfg)
{
	struct pvio_blkfront_xensim *x = NULL;
	int err = pvio_blkfront_xensim_open("xvda", cfg, &x);

	ck_assert_msg(err == 0, "open: %s", strerror(-err));
	return x;
}

/* ---- handshake ---------------------------------------------------------- */

static void handshake_case(unsigned back_order, unsigned own_order, unsigned want)
{
	struct env e;
	struct tb_cfg c = { .max_order = back_order, .flush = 1 };
	struct pvio_blkfront_config cfg = { .max_ring_order = own_order, .ring_order_zero = own_order == 0 };
	struct pvio_blkfront_info info;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	pvio_blkfront_get_info(pvio_blkfront_xensim_dev(x), &info);
	ck_assert_uint_eq(info.sectors, DISK_SECTORS);
	ck_assert_uint_eq(info.sector_size, 512);
	ck_assert_uint_eq(info.physical_sector_size, 4096);
	ck_assert_uint_eq(info.ring_order, want);
	ck_assert(info.flush);
	ck_assert(!info.readonly);
	ck_assert_uint_eq(info.devid, DEVID);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}

START_TEST(test_handshake_orders)
{
	handshake_case(0, 4, 0);
	handshake_case(3, 4, 3);
	handshake_case(4, 2, 2);
	handshake_case(4, 0, 0);
}
END_TEST

/* ---- data ------------------------------------------------------------- */

START_TEST(test_rw_model)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .flush = 1 };
	struct pvio_blkfront_config cfg = { 0 };
	size_t bytes = (size_t)DISK_SECTORS * 512;
	uint8_t *model = calloc(1, bytes), *buf = malloc(300 * 1024 + 8), *rb = malloc(300 * 1024 + 8);

	rng_state = 12345;
	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	/* sizes around page and 11-segment boundaries, odd buffer addresses */
	static const size_t sizes[] = { 512, 1024, 3584, 4096, 4608, 8192, 45056 - 512, 45056,
					45056 + 512, 90112, 100 * 1024, 300 * 1024 };
	for (int round = 0; round < 60; round++) {
		size_t len = sizes[round % (sizeof(sizes) / sizeof(sizes[0]))];
		uint64_t sec = rnd() % (DISK_SECTORS - len / 512 + 1);
		unsigned mis = rnd() % 8;

		fill(buf + mis, len, (uint32_t)round);
		ck_assert_int_eq(pvio_blkfront_write(bf, sec, buf + mis, len), 0);
		memcpy(model + sec * 512, buf + mis, len);
		if (round % 7 == 0)
			ck_assert_int_eq(pvio_blkfront_flush(bf), 0);
		/* read back something overlapping, at another misalignment */
		uint64_t rs = sec > 8 ? sec - 8 : 0;
		size_t rl = len + 16 * 512;
		if (rs + rl / 512 > DISK_SECTORS)
			rl = (DISK_SECTORS - rs) * 512;
		if (rl > 300 * 1024)
			rl = 300 * 1024;
		unsigned rmis = rnd() % 8;
		ck_assert_int_eq(pvio_blkfront_read(bf, rs, rb + rmis, rl), 0);
		ck_assert_msg(memcmp(rb + rmis, model + rs * 512, rl) == 0,
			      "round %d: read back differs", round);
	}
	/* what the backend holds is what we wrote */
	ck_assert(memcmp(e.disk, model, bytes) == 0);

	/* refusals, with no callback and no I/O */
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, rb, 100), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_read(bf, DISK_SECTORS, rb, 512), -ERANGE);
	ck_assert_int_eq(pvio_blkfront_read(bf, DISK_SECTORS - 1, rb, 1024), -ERANGE);
	ck_assert_int_eq(pvio_blkfront_read(bf, UINT64_MAX, rb, 512), -ERANGE);

	struct pvio_blkfront_stats st;
	pvio_blkfront_get_stats(bf, &st);
	ck_assert_uint_eq(st.ios_failed, 0);
	ck_assert_uint_eq(pvio_blkfront_inflight(bf), 0);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(model);
	free(buf);
	free(rb);
}
END_TEST

/* A 1 MiB write becomes ceil(1 MiB / 44 KiB) = 24 ring requests. */
START_TEST(test_split_segments)
{
	struct env e;
	struct tb_cfg c = { .max_order = 0 };
	struct pvio_blkfront_config cfg = { 0 };
	size_t len = 1u << 20;
	uint8_t *buf = malloc(len), *rb = malloc(len);
	struct pvio_blkfront_stats st;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	fill(buf, len, 99);
	ck_assert_int_eq(pvio_blkfront_write(bf, 8, buf, len), 0);
	pvio_blkfront_get_stats(bf, &st);
	ck_assert_uint_eq(st.ring_requests, (len + 45055) / 45056);
	ck_assert(memcmp(e.disk + 8 * 512, buf, len) == 0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 8, rb, len), 0);
	ck_assert(memcmp(rb, buf, len) == 0);
	/* no flush feature: flush is a no-op that succeeds, nothing sent */
	ck_assert_int_eq(pvio_blkfront_flush(bf), 0);
	pvio_blkfront_get_stats(bf, &st);
	ck_assert_uint_eq(st.ring_requests, 2 * ((len + 45055) / 45056));
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
	free(rb);
}
END_TEST

/* Async: many I/Os at once, completions counted and data verified. */
struct acb {
	int done, status;
};
static void a_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	struct acb *a = arg;

	(void)io;
	a->done++;
	a->status = status;
}

START_TEST(test_async_queue_depth)
{
	struct env e;
	struct tb_cfg c = { .max_order = 4, .flush = 1 };
	struct pvio_blkfront_config cfg = { .max_slots = 64 };
	enum { N = 200, SZ = 16384 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];
	uint8_t *buf = malloc((size_t)N * SZ);

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	for (int i = 0; i < N; i++) {
		fill(buf + (size_t)i * SZ, SZ, (uint32_t)i + 1000);
		io[i] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE, .sector = (uint64_t)i * SZ / 512,
						   .buf = buf + (size_t)i * SZ, .len = SZ, .cb = a_cb, .arg = &a[i] };
		ck_assert_int_eq(pvio_blkfront_submit(bf, &io[i]), 0);
	}
	ck_assert_uint_eq(a[0].done, 0); /* never from inside submit */
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(a[i].done, 1);
		ck_assert_int_eq(a[i].status, 0);
	}
	ck_assert(memcmp(e.disk, buf, (size_t)N * SZ) == 0);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
}
END_TEST

/* ---- hostile backends --------------------------------------------------- */

static void hostile_case(enum tb_mode mode)
{
	struct env e;
	struct tb_cfg c = { .max_order = 1, .mode = mode, .after = 3 };
	struct pvio_blkfront_config cfg = { 0 };
	uint8_t buf[8192];
	int err = 0, i;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	fill(buf, sizeof(buf), 5);
	/* three good answers, then the backend misbehaves */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pvio_blkfront_write(bf, (uint64_t)i * 16, buf, sizeof(buf)), 0);
	ck_assert(!pvio_blkfront_is_dead(bf));
	err = pvio_blkfront_write(bf, 100, buf, sizeof(buf));
	ck_assert_int_eq(err, -EIO);
	ck_assert(pvio_blkfront_is_dead(bf));
	/* the device stays dead: later I/O fails at once */
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, buf, 512), -EIO);
	ck_assert_uint_eq(pvio_blkfront_inflight(bf), 0);
	/* and closes cleanly: the backend let go, so no page leaks */
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}

START_TEST(test_hostile_id_range) { hostile_case(TB_ID_RANGE); }
END_TEST
START_TEST(test_hostile_id_not_inflight) { hostile_case(TB_ID_NOT_INFLIGHT); }
END_TEST
START_TEST(test_hostile_bad_op) { hostile_case(TB_BAD_OP); }
END_TEST
START_TEST(test_hostile_bad_status) { hostile_case(TB_BAD_STATUS); }
END_TEST
START_TEST(test_hostile_prod_ahead) { hostile_case(TB_PROD_AHEAD); }
END_TEST

/* Many in flight when the backend turns hostile: all fail with -EIO. */
START_TEST(test_hostile_many_inflight)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .mode = TB_BAD_OP, .after = 10 };
	struct pvio_blkfront_config cfg = { 0 };
	enum { N = 100 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];
	static uint8_t buf[N][4096];
	int failed = 0;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	for (int i = 0; i < N; i++) {
		io[i] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_READ, .sector = (uint64_t)i * 8,
						   .buf = buf[i], .len = 4096, .cb = a_cb, .arg = &a[i] };
		ck_assert_int_eq(pvio_blkfront_submit(bf, &io[i]), 0);
	}
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(a[i].done, 1);
		if (a[i].status) {
			ck_assert_int_eq(a[i].status, -EIO);
			failed++;
		}
	}
	ck_assert_int_ge(failed, N - 10);
	ck_assert(pvio_blkfront_is_dead(bf));
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}
END_TEST

/* ---- garbage in xenstore ----------------------------------------------- */

static const struct {
	const char *key, *val;
	unsigned sector_size; /* the backend's logical sector size (0: 512) */
} garbage[] = {
	{ "max-ring-page-order", "4x", 0 },
	{ "max-ring-page-order", "-1", 0 },
	{ "max-ring-page-order", "99999999999999999999999", 0 },
	{ "feature-flush-cache", "2", 0 },
	{ "feature-barrier", "yes", 0 },
	{ "sectors", "0", 0 },
	{ "sectors", "", 0 },
	{ "sectors", "18446744073709551616", 0 },
	{ "sector-size", "1000", 0 },
	{ "sector-size", "256", 0 },
	{ "sector-size", "0", 0 },
	{ "sector-size", "65536", 0 },
	{ "sector-size", "4096 ", 0 },
	{ "physical-sector-size", "3000", 0 },
	{ "physical-sector-size", "256", 0 },
	{ "physical-sector-size", "2048", 4096 }, /* smaller than the logical size */
	{ "info", "0x4", 0 },
	{ "feature-max-indirect-segments", "x", 0 },
	{ "feature-max-indirect-segments", "-1", 0 },
	{ "feature-max-indirect-segments", "", 0 },
	{ "feature-max-indirect-segments", "4294967296", 0 },
	{ "feature-max-indirect-segments", "256k", 0 },
};

START_TEST(test_garbage_xenstore)
{
	const char *key = garbage[_i].key, *val = garbage[_i].val;
	struct env e;
	struct tb_cfg c = { .max_order = 2, .bad_key = key, .bad_val = val, .max_indirect = 256,
			    .sector_size = garbage[_i].sector_size };
	struct pvio_blkfront_config cfg = { .handshake_timeout_ms = 10000, .max_indirect_segments = 256 };
	struct pvio_blkfront_xensim *x = NULL;

	env_up(&e);
	back_start(&e, &c);
	int err = pvio_blkfront_xensim_open("xvda", &cfg, &x);
	ck_assert_msg(err == -EPROTO, "%s=\"%s\": open returned %d", key, val, err);
	ck_assert_ptr_null(x);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}
END_TEST

/* ---- backend restart -------------------------------------------------- */

START_TEST(test_reconnect)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .flush = 1, .mode = TB_DIE, .after = 40 };
	struct pvio_blkfront_config cfg = { 0 };
	enum { N = 160, SZ = 8192 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];
	uint8_t *buf = malloc((size_t)N * SZ), *rb = malloc((size_t)N * SZ);
	struct pvio_blkfront_stats st;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	for (int i = 0; i < N; i++) {
		fill(buf + (size_t)i * SZ, SZ, (uint32_t)i * 7 + 1);
		io[i] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE, .sector = (uint64_t)i * SZ / 512,
						   .buf = buf + (size_t)i * SZ, .len = SZ, .cb = a_cb, .arg = &a[i] };
		ck_assert_int_eq(pvio_blkfront_submit(bf, &io[i]), 0);
	}
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(a[i].done, 1);
		ck_assert_msg(a[i].status == 0, "io %d: %d", i, a[i].status);
	}
	pvio_blkfront_get_stats(bf, &st);
	ck_assert_uint_eq(st.reconnects, 1);
	ck_assert_uint_ge(st.resubmitted, 1);
	ck_assert(!pvio_blkfront_is_dead(bf));
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, rb, (size_t)N * SZ), 0);
	ck_assert(memcmp(rb, buf, (size_t)N * SZ) == 0);
	ck_assert(memcmp(e.disk, buf, (size_t)N * SZ) == 0);
	ck_assert_int_eq(pvio_blkfront_flush(bf), 0);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
	free(rb);
}
END_TEST

/* ---- indirect descriptors and sector sizes ------------------------------ */

/* Random I/O of 512 B .. 2 MiB (multiples of @ss) at odd buffer addresses,
 * written and read back against a model and against the backend's disk;
 * then the whole disk as 8 writes of 1 MiB in flight at once (more than
 * the bounce pool holds: they must wait for pages, not fail). */
static void big_io_model(struct env *e, struct pvio_blkfront *bf, unsigned ss, uint32_t seed)
{
	size_t bytes = (size_t)e->sectors * 512, maxl = 2u << 20;
	uint8_t *model = malloc(bytes), *buf = malloc(maxl + 8), *rb = malloc(maxl + 8);
	enum { N = 8, SZ = 1 << 20 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];

	ck_assert_ptr_nonnull(model);
	memcpy(model, e->disk, bytes);
	rng_state = seed;
	for (int round = 0; round < 16; round++) {
		size_t units = 1 + rnd() % (maxl / ss);
		size_t len = units * ss;
		uint64_t sec = (rnd() % ((bytes - len) / ss + 1)) * (ss / 512);
		unsigned mis = rnd() % 8;

		fill(buf + mis, len, (uint32_t)round + seed);
		ck_assert_int_eq(pvio_blkfront_write(bf, sec, buf + mis, len), 0);
		memcpy(model + sec * 512, buf + mis, len);
		unsigned rmis = rnd() % 8;
		ck_assert_int_eq(pvio_blkfront_read(bf, sec, rb + rmis, len), 0);
		ck_assert_msg(memcmp(rb + rmis, model + sec * 512, len) == 0, "round %d: read back differs", round);
	}
	ck_assert(memcmp(e->disk, model, bytes) == 0);
	ck_assert_uint_eq(bytes, (size_t)N * SZ);
	fill(model, bytes, seed ^ 0x5a5a);
	for (int i = 0; i < N; i++) {
		io[i] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE, .sector = (uint64_t)i * (SZ / 512),
						   .buf = model + (size_t)i * SZ, .len = SZ, .cb = a_cb, .arg = &a[i] };
		a[i].done = 0;
		ck_assert_int_eq(pvio_blkfront_submit(bf, &io[i]), 0);
	}
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	for (int i = 0; i < N; i++)
		ck_assert_msg(a[i].done == 1 && a[i].status == 0, "1 MiB write %d: %d", i, a[i].status);
	ck_assert(memcmp(e->disk, model, bytes) == 0);
	free(model);
	free(buf);
	free(rb);
}

static void indirect_case(unsigned back_max, unsigned own_max, unsigned want, int echo_indirect)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .flush = 1, .max_indirect = back_max,
			    .echo_indirect = echo_indirect };
	struct pvio_blkfront_config cfg = { .max_indirect_segments = own_max };
	struct pvio_blkfront_info info;
	struct pvio_blkfront_stats s0, s1;
	size_t len = 1u << 20;
	unsigned per = want ? want : 11, reqs = (unsigned)((len / 4096 + per - 1) / per);
	uint8_t *buf = malloc(len), *rb = malloc(len);

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	pvio_blkfront_get_info(bf, &info);
	ck_assert_msg(info.max_indirect_segments == want, "backend %u, frontend %u: negotiated %u, want %u",
		      back_max, own_max, info.max_indirect_segments, want);
	/* a 1 MiB write and read: ceil(256 / segments per request) requests each */
	fill(buf, len, back_max * 7 + own_max);
	pvio_blkfront_get_stats(bf, &s0);
	ck_assert_int_eq(pvio_blkfront_write(bf, 16, buf, len), 0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 16, rb, len), 0);
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert(memcmp(rb, buf, len) == 0 && memcmp(e.disk + 16 * 512, buf, len) == 0);
	ck_assert_msg(s1.ring_requests - s0.ring_requests == 2 * reqs, "1 MiB write+read took %llu requests, want %u",
		      (unsigned long long)(s1.ring_requests - s0.ring_requests), 2 * reqs);
	ck_assert_uint_eq(s1.indirect_requests - s0.indirect_requests, want ? 2 * reqs : 0);
	big_io_model(&e, bf, 512, back_max + own_max);
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert_uint_eq(s1.ios_failed, 0);
	if (!want)
		ck_assert_uint_eq(s1.indirect_requests, 0);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	/* 0: the backend saw only valid, aligned requests within its limit */
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
	free(rb);
}

/* Every combination: both on (equal and different limits), backend
 * without, frontend without, a limit too small to be worth it (<= 11), an
 * offer far above anything (clamped), a backend that echoes op 6. */
START_TEST(test_indirect_both) { indirect_case(256, 256, 256, 0); }
END_TEST
START_TEST(test_indirect_front_lower) { indirect_case(256, 32, 32, 0); }
END_TEST
START_TEST(test_indirect_back_lower) { indirect_case(16, 256, 16, 0); }
END_TEST
START_TEST(test_indirect_back_without) { indirect_case(0, 256, 0, 0); }
END_TEST
START_TEST(test_indirect_front_without) { indirect_case(256, 0, 0, 0); }
END_TEST
START_TEST(test_indirect_back_eleven) { indirect_case(11, 256, 0, 0); }
END_TEST
START_TEST(test_indirect_huge_offer) { indirect_case(4000, 256, 256, 0); }
END_TEST
START_TEST(test_indirect_echo_op6) { indirect_case(256, 256, 256, 1); }
END_TEST

/* A restarted backend with another segment limit (or none): requests in
 * flight that were cut for 256 segments go out again in pieces the new
 * backend takes, one after the other, and every byte lands. */
static void indirect_restart_case(unsigned first, unsigned then, unsigned ss)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .flush = 1, .mode = TB_DIE, .after = 5,
			    .max_indirect = first, .max_indirect_restart = then, .sector_size = ss };
	struct pvio_blkfront_config cfg = { .max_indirect_segments = 256 };
	enum { N = 24 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];
	size_t sz = 256 * 1024;
	uint8_t *buf = malloc((size_t)N * sz), *rb = malloc((size_t)N * sz);
	struct pvio_blkfront_stats st;
	struct pvio_blkfront_info info;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	for (int i = 0; i < N; i++) {
		fill(buf + (size_t)i * sz, sz, (uint32_t)i * 13 + first);
		io[i] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE, .sector = (uint64_t)i * sz / 512,
						   .buf = buf + (size_t)i * sz, .len = sz, .cb = a_cb, .arg = &a[i] };
		a[i].done = 0;
		ck_assert_int_eq(pvio_blkfront_submit(bf, &io[i]), 0);
	}
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	for (int i = 0; i < N; i++)
		ck_assert_msg(a[i].done == 1 && a[i].status == 0, "io %d: %d", i, a[i].status);
	pvio_blkfront_get_stats(bf, &st);
	pvio_blkfront_get_info(bf, &info);
	ck_assert_uint_eq(st.reconnects, 1);
	ck_assert_uint_ge(st.resubmitted, 1);
	ck_assert_uint_eq(info.max_indirect_segments, then > 11 ? (then < 256 ? then : 256) : 0);
	ck_assert(memcmp(e.disk, buf, (size_t)N * sz) == 0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, rb, (size_t)N * sz), 0);
	ck_assert(memcmp(rb, buf, (size_t)N * sz) == 0);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
	free(rb);
}

START_TEST(test_indirect_restart_lower) { indirect_restart_case(256, 0, 512); }
END_TEST
START_TEST(test_indirect_restart_smaller) { indirect_restart_case(256, 24, 512); }
END_TEST
START_TEST(test_indirect_restart_raise) { indirect_restart_case(0, 256, 512); }
END_TEST
/* 8 KiB logical blocks: pieces after the restart stay whole blocks (10 pages, not 11) */
START_TEST(test_indirect_restart_8k) { indirect_restart_case(256, 0, 8192); }
END_TEST

/* Disks of 4 KiB and 8 KiB logical sectors, with and without indirect:
 * geometry reported, misaligned I/O refused before anything is sent,
 * aligned I/O verified; the test backend fails the run if any request it
 * sees is not whole blocks (so the 8 KiB case proves the realignment of
 * 11-segment requests to 10 pages). */
static void sector_case(unsigned ss, unsigned own_max)
{
	struct env e;
	struct tb_cfg c = { .max_order = 1, .flush = 1, .max_indirect = 256, .sector_size = ss };
	struct pvio_blkfront_config cfg = { .max_indirect_segments = own_max };
	struct pvio_blkfront_info info;
	struct pvio_blkfront_stats s0, s1;
	uint8_t buf[16384];

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	pvio_blkfront_get_info(bf, &info);
	ck_assert_uint_eq(info.sector_size, ss);
	ck_assert_uint_eq(info.physical_sector_size, ss > 4096 ? ss : 4096);
	ck_assert_uint_eq(info.sectors, DISK_SECTORS);
	pvio_blkfront_get_stats(bf, &s0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 1, buf, ss), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_read(bf, ss / 512 / 2, buf, ss), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, buf, 512), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_write(bf, 0, buf, ss + 512), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_discard(bf, 0, ss), -EOPNOTSUPP); /* not offered */
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert_uint_eq(s1.ring_requests, s0.ring_requests);
	big_io_model(&e, bf, ss, ss + own_max);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}

START_TEST(test_sector_4k) { sector_case(4096, 256); }
END_TEST
START_TEST(test_sector_4k_direct) { sector_case(4096, 0); }
END_TEST
START_TEST(test_sector_8k_direct) { sector_case(8192, 0); }
END_TEST
START_TEST(test_sector_32k) { sector_case(32768, 256); }
END_TEST

/* A restarted backend with another logical sector size: requests were cut
 * for the old one, so the device fails (-EIO) rather than send them. */
START_TEST(test_sector_size_changes)
{
	struct env e;
	struct tb_cfg c = { .max_order = 1, .flush = 1, .mode = TB_DIE, .after = 2, .sector_size = 512,
			    .sector_size_restart = 4096 };
	struct pvio_blkfront_config cfg = { 0 };
	uint8_t buf[4096];
	int err = 0;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	fill(buf, sizeof(buf), 3);
	for (int i = 0; i < 8 && !err; i++)
		err = pvio_blkfront_write(bf, (uint64_t)i * 8, buf, sizeof(buf));
	ck_assert_int_eq(err, -EIO);
	ck_assert(pvio_blkfront_is_dead(bf));
	pvio_blkfront_xensim_close(x);
	back_wait(&e);
	env_down(&e);
}
END_TEST

/* Backend goes Closing under us: pending I/O fails with -EIO. */
START_TEST(test_backend_closing)
{
	struct env e;
	struct tb_cfg c = { .max_order = 0 };
	struct pvio_blkfront_config cfg = { 0 };
	uint8_t buf[4096];
	char cmd[256];

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, buf, sizeof(buf)), 0);
	/* the toolstack detaches: backend state Closing */
	snprintf(cmd, sizeof(cmd), "XENSTORED_PATH=%s/xenstored/socket xenstore-write "
		 "/local/domain/0/backend/vbd3/%u/%u/state 5", e.dir, e.domid, DEVID);
	ck_assert_int_eq(system(cmd), 0);
	while (!pvio_blkfront_is_dead(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, buf, sizeof(buf)), -EIO);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
}
END_TEST


/* ---- zero-copy buffers --------------------------------------------------- */

/* I/O in buffers from pvio_blkfront_buf_alloc names their pages in the
 * ring requests (no bounce); anything not starting on one of their pages,
 * or running past the buffer, is bounced; data is right either way; a
 * buffer cannot be freed under an I/O; the table is bounded. */
START_TEST(test_zero_copy)
{
	struct env e;
	struct tb_cfg c = { .max_order = 2, .flush = 1, .max_indirect = 256 };
	struct pvio_blkfront_config cfg = { .max_indirect_segments = 256 };
	const size_t len = 1u << 20, size = len + 8192;
	struct pvio_blkfront_stats s0, s1;
	uint8_t *src = malloc(len);
	void *zv, *more[64];
	uint8_t *z;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	ck_assert_int_eq(pvio_blkfront_buf_alloc(bf, 0, &zv), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(bf, size, &zv), 0);
	z = zv;
	ck_assert_uint_eq((uintptr_t)z % 4096, 0);
	/* 1 MiB write from the buffer: one indirect request, no bounce */
	fill(src, len, 4242);
	memcpy(z, src, len);
	pvio_blkfront_get_stats(bf, &s0);
	ck_assert_int_eq(pvio_blkfront_write(bf, 8, z, len), 0);
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert_uint_eq(s1.ring_requests - s0.ring_requests, 1);
	ck_assert_uint_eq(s1.zero_copy_requests - s0.zero_copy_requests, 1);
	ck_assert(memcmp(e.disk + 8 * 512, src, len) == 0);
	/* read it back into the buffer, from its second page on */
	memset(z, 0, size);
	ck_assert_int_eq(pvio_blkfront_read(bf, 8, z + 4096, len), 0);
	ck_assert(memcmp(z + 4096, src, len) == 0);
	pvio_blkfront_get_stats(bf, &s0);
	ck_assert_uint_eq(s0.zero_copy_requests - s1.zero_copy_requests, 1);
	/* not on a page boundary: bounced, and right */
	memset(z, 0, size);
	ck_assert_int_eq(pvio_blkfront_read(bf, 8, z + 512, 64 * 1024), 0);
	ck_assert(memcmp(z + 512, src, 64 * 1024) == 0);
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert_uint_eq(s1.zero_copy_requests, s0.zero_copy_requests);
	/* the buffer's last page: zero-copy */
	ck_assert_int_eq(pvio_blkfront_read(bf, 8, z + size - 4096, 4096), 0);
	ck_assert(memcmp(z + size - 4096, src, 4096) == 0);
	pvio_blkfront_get_stats(bf, &s1);
	ck_assert_uint_eq(s1.zero_copy_requests - s0.zero_copy_requests, 1);
	ck_assert_uint_eq(s1.ios_failed, 0);

	/* not freed under an I/O in flight */
	struct acb a = { 0 };
	struct pvio_blkfront_io io = { .op = PVIO_BLKFRONT_READ, .sector = 8, .buf = z,
				       .len = 65536, .cb = a_cb, .arg = &a };
	ck_assert_int_eq(pvio_blkfront_submit(bf, &io), 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(bf, z), -EBUSY);
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	ck_assert_int_eq(a.done, 1);
	ck_assert_int_eq(a.status, 0);
	ck_assert(memcmp(z, src, 65536) == 0);
	/* nor under a bounced one whose data will be copied into it */
	memset(z, 0, size);
	a.done = 0;
	io = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_READ, .sector = 8, .buf = z + 512,
					.len = 65536, .cb = a_cb, .arg = &a };
	ck_assert_int_eq(pvio_blkfront_submit(bf, &io), 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(bf, z), -EBUSY);
	while (pvio_blkfront_inflight(bf))
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	ck_assert_int_eq(a.done, 1);
	ck_assert(memcmp(z + 512, src, 65536) == 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(bf, z), 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(bf, z), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_buf_free(bf, src), -EINVAL);

	/* a bounded table: 64 buffers, then -ENOSPC */
	unsigned n = 0;
	while (n < 64 && pvio_blkfront_buf_alloc(bf, 4096, &more[n]) == 0)
		n++;
	ck_assert_uint_eq(n, 64);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(bf, 4096, &zv), -ENOSPC);
	/* each still works for I/O */
	memcpy(more[63], src, 4096);
	ck_assert_int_eq(pvio_blkfront_write(bf, 4000, more[63], 4096), 0);
	ck_assert(memcmp(e.disk + 4000 * 512, src, 4096) == 0);
	for (unsigned i = 0; i < n; i += 2)
		ck_assert_int_eq(pvio_blkfront_buf_free(bf, more[i]), 0);
	/* the rest are released at close: nothing leaks */
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(src);
}
END_TEST

/* ---- hybrid polling ------------------------------------------------------ */

/* cfg.poll_us: a long window catches every answer while spinning (no
 * wait); a 1 µs window mostly misses and goes on to the blocking wait
 * (arming rsp_event first).  Data is verified either way, at queue depth 1
 * and 16; a window above a second is refused. */
static void polling_case(unsigned poll_us)
{
	struct env e;
	struct tb_cfg c = { .max_order = 1, .flush = 1 };
	struct pvio_blkfront_config cfg = { .poll_us = poll_us };
	enum { N = 400, SZ = 4096 };
	static struct pvio_blkfront_io io[N];
	static struct acb a[N];
	uint8_t *buf = malloc((size_t)N * SZ), *rb = malloc((size_t)N * SZ);
	struct pvio_blkfront_stats st;

	env_up(&e);
	back_start(&e, &c);
	struct pvio_blkfront_xensim *x = open_dev(&cfg);
	struct pvio_blkfront *bf = pvio_blkfront_xensim_dev(x);

	fill(buf, (size_t)N * SZ, poll_us);
	/* queue depth 1: the sync calls */
	for (int i = 0; i < N / 4; i++)
		ck_assert_int_eq(pvio_blkfront_write(bf, (uint64_t)i * 8, buf + (size_t)i * SZ, SZ), 0);
	/* queue depth 16 */
	int next = N / 4;
	while (next < N || pvio_blkfront_inflight(bf)) {
		while (next < N && pvio_blkfront_inflight(bf) < 16) {
			io[next] = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE,
							      .sector = (uint64_t)next * 8,
							      .buf = buf + (size_t)next * SZ, .len = SZ,
							      .cb = a_cb, .arg = &a[next] };
			ck_assert_int_eq(pvio_blkfront_submit(bf, &io[next]), 0);
			next++;
		}
		ck_assert_int_ge(pvio_blkfront_poll(bf, 5000), 0);
	}
	for (int i = N / 4; i < N; i++)
		ck_assert_int_eq(a[i].status, 0);
	ck_assert_int_eq(pvio_blkfront_read(bf, 0, rb, (size_t)N * SZ), 0);
	ck_assert(memcmp(rb, buf, (size_t)N * SZ) == 0);
	ck_assert(memcmp(e.disk, buf, (size_t)N * SZ) == 0);
	pvio_blkfront_get_stats(bf, &st);
	ck_assert_uint_eq(st.ios_failed, 0);
	ck_assert_uint_gt(st.polls, 0);
	if (poll_us >= 1000000) /* a second is plenty: every wait ended in the spin */
		ck_assert_uint_eq(st.poll_hits, st.polls);
	ck_assert_int_eq(pvio_blkfront_xensim_close(x), 0);
	ck_assert_int_eq(back_wait(&e), 0);
	env_down(&e);
	free(buf);
	free(rb);
}

START_TEST(test_polling_long) { polling_case(1000000); }
END_TEST
START_TEST(test_polling_short) { polling_case(1); }
END_TEST
START_TEST(test_polling_bad)
{
	struct env e;
	struct pvio_blkfront_config cfg = { .poll_us = 1000001 };
	struct pvio_blkfront_xensim *x = NULL;

	/* refused before anything is read or granted: no backend needed */
	env_up(&e);
	as_guest(&e);
	ck_assert_int_eq(pvio_blkfront_xensim_open("xvda", &cfg, &x), -EINVAL);
	env_down(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blkfront");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_handshake_orders);
	tcase_add_test(tc, test_rw_model);
	tcase_add_test(tc, test_split_segments);
	tcase_add_test(tc, test_async_queue_depth);
	tcase_add_test(tc, test_hostile_id_range);
	tcase_add_test(tc, test_hostile_id_not_inflight);
	tcase_add_test(tc, test_hostile_bad_op);
	tcase_add_test(tc, test_hostile_bad_status);
	tcase_add_test(tc, test_hostile_prod_ahead);
	tcase_add_test(tc, test_hostile_many_inflight);
	tcase_add_loop_test(tc, test_garbage_xenstore, 0, (int)(sizeof(garbage) / sizeof(garbage[0])));
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_backend_closing);
	tcase_add_test(tc, test_zero_copy);
	tcase_add_test(tc, test_polling_long);
	tcase_add_test(tc, test_polling_short);
	tcase_add_test(tc, test_polling_bad);
	suite_add_tcase(s, tc);
	/* indirect descriptors and sector sizes: their own case, so meson can
	 * run it as a test of its own (CK_RUN_CASE=indirect) */
	tc = tcase_create("indirect");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_indirect_both);
	tcase_add_test(tc, test_indirect_front_lower);
	tcase_add_test(tc, test_indirect_back_lower);
	tcase_add_test(tc, test_indirect_back_without);
	tcase_add_test(tc, test_indirect_front_without);
	tcase_add_test(tc, test_indirect_back_eleven);
	tcase_add_test(tc, test_indirect_huge_offer);
	tcase_add_test(tc, test_indirect_echo_op6);
	tcase_add_test(tc, test_indirect_restart_lower);
	tcase_add_test(tc, test_indirect_restart_smaller);
	tcase_add_test(tc, test_indirect_restart_raise);
	tcase_add_test(tc, test_indirect_restart_8k);
	tcase_add_test(tc, test_sector_4k);
	tcase_add_test(tc, test_sector_4k_direct);
	tcase_add_test(tc, test_sector_8k_direct);
	tcase_add_test(tc, test_sector_32k);
	tcase_add_test(tc, test_sector_size_changes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
