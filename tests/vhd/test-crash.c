/* SPDX-License-Identifier: MIT */
/*
 * Crash safety: a block allocation interrupted at each of its steps (data,
 * bitmap, BAT entry, footer; the library's fault-injection hook makes the
 * process stop there, as if it died) leaves an image that `vhdtool check`
 * accepts and that holds every write acknowledged before the interruption.
 * The interrupted write itself may show old or new data, sector by sector.
 * Then a read-write open repairs the footer and writing goes on.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "pvio/vhd.h"
#include "util.h"

#define DISK (16u << 20)
#define SECTORS (DISK / 512)
#define NWRITES 12

struct wr {
	uint64_t s;
	uint32_t n;
	uint8_t fill;
};

static char dir[] = "/tmp/vhd-crash-XXXXXX";

/* Deterministic writes: each lands in a fresh 2 MiB block or an old one. */
static void gen(uint64_t seed, struct wr *w)
{
	for (int i = 0; i < NWRITES; i++) {
		w[i].n = 1 + (uint32_t)(rnd(&seed) % 64);
		w[i].s = rnd(&seed) % (SECTORS - w[i].n);
		w[i].fill = (uint8_t)(1 + i + (rnd(&seed) % 200));
	}
}

static void apply(uint8_t *m, const struct wr *w)
{
	memset(m + w->s * 512, w->fill, (size_t)w->n * 512);
}

static int do_write(struct pvio_vhd *v, const struct wr *w, struct pvio_vhd_err *e)
{
	uint8_t *buf = malloc((size_t)w->n * 512);
	memset(buf, w->fill, (size_t)w->n * 512);
	int r = pvio_vhd_write(v, buf, w->s, w->n, e);
	free(buf);
	return r;
}

static void read_all(const char *leaf, uint8_t *out, const char *what)
{
	struct pvio_vhd_chain *c;
	struct pvio_vhd_err e = { 0, "" };
	int r = pvio_vhd_chain_open(leaf, 0, &c, &e);
	CHECK(r == 0, "%s: open after crash: %s", what, e.msg);
	if (r)
		return;
	r = pvio_vhd_chain_read(c, out, 0, SECTORS, &e);
	CHECK(r == 0, "%s: read: %s", what, e.msg);
	pvio_vhd_chain_close(c);
}

static void crash_case(bool diff, unsigned step)
{
	char base[256], leaf[256], what[96], out[8192];
	struct pvio_vhd_err e = { 0, "" };
	uint8_t *model = calloc(1, DISK), *got = malloc(DISK);
	struct wr w[NWRITES];
	snprintf(what, sizeof(what), "%s, fault at step %u", diff ? "differencing" : "dynamic", step);
	snprintf(base, sizeof(base), "%s/base.vhd", dir);
	snprintf(leaf, sizeof(leaf), "%s/leaf.vhd", dir);
	unlink(base);
	unlink(leaf);

	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = DISK };
	CHECK(pvio_vhd_create(base, &o, &e) == 0, "%s: %s", what, e.msg);
	if (diff) {
		/* the parent holds data so "old" is not just zeros */
		struct pvio_vhd *b;
		CHECK(pvio_vhd_open(base, PVIO_VHD_RDWR, &b, &e) == 0, "%s", e.msg);
		struct wr pw = { 0, SECTORS, 0x5a };
		for (uint64_t s = 0; s < SECTORS; s += 4096) {
			pw.s = s;
			pw.n = 4096;
			CHECK(do_write(b, &pw, &e) == 0, "%s", e.msg);
			apply(model, &pw);
		}
		pvio_vhd_close(b);
		struct pvio_vhd_create_opts oc = { .type = PVIO_VHD_DIFF, .parent = base };
		CHECK(pvio_vhd_create(leaf, &oc, &e) == 0, "%s: %s", what, e.msg);
	} else {
		rename(base, leaf);
	}
	gen(0x1234567ull * (step + 1) + diff, w);

	int p[2];
	if (pipe(p) < 0)
		abort();
	pid_t pid = fork();
	if (pid == 0) {
		/* the "crashing" process: acks each completed write, stops dead
		 * (no close, no cleanup) at the injected fault */
		close(p[0]);
		struct pvio_vhd *v;
		if (pvio_vhd_open(leaf, PVIO_VHD_RDWR, &v, &e) < 0)
			_exit(3);
		pvio_vhd_fault_inject(3, step);	/* the third allocation fails */
		for (int i = 0; i < NWRITES; i++) {
			if (do_write(v, &w[i], &e) < 0)
				_exit(0);
			uint8_t idx = (uint8_t)i;
			if (write(p[1], &idx, 1) != 1)
				_exit(4);
		}
		_exit(5);	/* the fault never fired */
	}
	close(p[1]);
	int acked = 0;
	uint8_t idx;
	while (read(p[0], &idx, 1) == 1)
		acked = idx + 1;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: writer exit status 0x%x", what, st);
	CHECK(acked < NWRITES, "%s: all writes acked", what);

	char *chk[] = { (char *)vhdtool_path(), "check", leaf, NULL };
	int r = run_cmd(out, sizeof(out), chk);
	CHECK(r == 0, "%s: vhdtool check after the crash: exit %d:\n%s", what, r, out);

	for (int i = 0; i < acked; i++)
		apply(model, &w[i]);
	read_all(leaf, got, what);
	/* acked writes must be there; the interrupted one is all-or-nothing
	 * per sector; nothing else may change */
	for (uint64_t s = 0; s < SECTORS; s++) {
		const uint8_t *g = got + s * 512, *m = model + s * 512;
		if (memcmp(g, m, 512) == 0)
			continue;
		const struct wr *f = &w[acked];
		bool in_failed = s >= f->s && s < f->s + f->n;
		bool is_new = in_failed && g[0] == f->fill && memcmp(g, g + 1, 511) == 0;
		CHECK(is_new, "%s: sector %llu holds neither acked nor interrupted data (0x%02x)",
		      what, (unsigned long long)s, g[0]);
		if (!is_new)
			break;
		memcpy(model + s * 512, g, 512);
	}

	/* a read-write open repairs the footer; more writes work and stick */
	struct pvio_vhd *v;
	r = pvio_vhd_open(leaf, PVIO_VHD_RDWR, &v, &e);
	CHECK(r == 0, "%s: reopen: %s", what, e.msg);
	if (r == 0) {
		for (int i = acked; i < NWRITES; i++) {
			CHECK(do_write(v, &w[i], &e) == 0, "%s: write after repair: %s", what, e.msg);
			apply(model, &w[i]);
		}
		pvio_vhd_close(v);
	}
	r = run_cmd(out, sizeof(out), chk);
	CHECK(r == 0 && !strstr(out, "warning"), "%s: check after repair: exit %d:\n%s", what, r, out);
	read_all(leaf, got, what);
	CHECK(memcmp(got, model, DISK) == 0, "%s: data after repair differs", what);
	unlink(leaf);
	unlink(base);
	free(model);
	free(got);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (unsigned step = 1; step <= 4; step++) {
		crash_case(false, step);
		crash_case(true, step);
	}
	rmdir(dir);
	if (!test_failures)
		printf("crash at each allocation step (dynamic, differencing): ok\n");
	return test_failures ? 1 : 0;
}
