/* SPDX-License-Identifier: MIT */
/*
 * Other tools' images and the format's edges: Virtual PC / old qemu sizing
 * by CHS geometry, blktap's batmap extension (tolerated and kept across
 * writes), a vhd-util-style relative MacX locator after the chain moved,
 * 2 TiB disks (fixed and dynamic) written at their last sector, sizes past
 * 2 TiB refused, write_prepare/commit, and vhdtool revert / set-parent.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "pvio/vhd.h"
#include "util.h"

static char dir[] = "/tmp/vhd-quirks-XXXXXX";

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static void reseal(uint8_t *p, size_t len, size_t off)
{
	uint32_t s = 0;
	for (size_t i = 0; i < len; i++)
		if (i < off || i >= off + 4)
			s += p[i];
	put32(p + off, ~s);
}
static int rd(const char *path, void *b, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);
	ssize_t r = pread(fd, b, len, off);
	close(fd);
	return r == (ssize_t)len ? 0 : -1;
}
static int wr(const char *path, const void *b, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY);
	ssize_t r = pwrite(fd, b, len, off);
	close(fd);
	return r == (ssize_t)len ? 0 : -1;
}
static off_t fsize(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}
static int check_ok(const char *path)
{
	char out[8192];
	char *a[] = { (char *)vhdtool_path(), "check", (char *)path, NULL };
	int r = run_cmd(out, sizeof(out), a);
	if (r != 0)
		fprintf(stderr, "%s", out);
	return r;
}

static void chs_quirk(void)
{
	char p[256];
	struct pvio_vhd_err e = { 0, "" };
	snprintf(p, sizeof(p), "%s/vpc.vhd", dir);
	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = 8u << 20 };
	CHECK(pvio_vhd_create(p, &o, &e) == 0, "%s", e.msg);
	uint8_t f[512];
	off_t end = fsize(p) - 512;
	CHECK(rd(p, f, 512, 0) == 0, "read footer");
	memcpy(f + 28, "vpc ", 4);
	f[56] = 0; f[57] = 100; f[58] = 4; f[59] = 17;	/* 6800 sectors < 16384 */
	reseal(f, 512, 64);
	CHECK(wr(p, f, 512, 0) == 0 && wr(p, f, 512, end) == 0, "patch footer");
	struct pvio_vhd *v;
	CHECK(pvio_vhd_open(p, 0, &v, &e) == 0, "%s", e.msg);
	struct pvio_vhd_info in;
	pvio_vhd_get_info(v, &in);
	CHECK(in.virtual_size == 6800ull * 512 && in.size_from_chs,
	      "Virtual PC image sized by CHS: got %llu", (unsigned long long)in.virtual_size);
	pvio_vhd_close(v);
	/* "qem2" (force_size) means current_size */
	memcpy(f + 28, "qem2", 4);
	reseal(f, 512, 64);
	CHECK(wr(p, f, 512, 0) == 0 && wr(p, f, 512, end) == 0, "patch footer");
	CHECK(pvio_vhd_open(p, 0, &v, &e) == 0, "%s", e.msg);
	pvio_vhd_get_info(v, &in);
	CHECK(in.virtual_size == 8u << 20 && !in.size_from_chs, "qem2 image: %llu",
	      (unsigned long long)in.virtual_size);
	pvio_vhd_close(v);
}

static void batmap_quirk(void)
{
	char p[256];
	struct pvio_vhd_err e = { 0, "" };
	snprintf(p, sizeof(p), "%s/batmap.vhd", dir);
	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = 8u << 20 };
	CHECK(pvio_vhd_create(p, &o, &e) == 0, "%s", e.msg);
	/* layout: footer copy, header, BAT [1536, 2048), footer at 2048;
	 * insert a batmap header at 2048 and the batmap at 2560 as blktap does */
	CHECK(fsize(p) == 2560, "unexpected layout (%lld)", (long long)fsize(p));
	uint8_t f[512], h[512] = { 0 }, m[512] = { 0 };
	CHECK(rd(p, f, 512, 2048) == 0, "read footer");
	memcpy(h, "tdbatmap", 8);
	put64(h + 8, 2560);
	put32(h + 16, 1);
	put32(h + 20, 0x00010002);
	m[0] = 0x80;	/* "block 0 fully allocated" once it is */
	CHECK(wr(p, h, 512, 2048) == 0 && wr(p, m, 512, 2560) == 0 && wr(p, f, 512, 3072) == 0,
	      "write batmap");
	CHECK(check_ok(p) == 0, "batmap image fails check");
	struct pvio_vhd *v;
	CHECK(pvio_vhd_open(p, PVIO_VHD_RDWR, &v, &e) == 0, "%s", e.msg);
	uint8_t buf[4096];
	memset(buf, 0x3c, sizeof(buf));
	CHECK(pvio_vhd_write(v, buf, 0, 8, &e) == 0, "%s", e.msg);
	struct pvio_vhd_info in;
	pvio_vhd_get_info(v, &in);
	CHECK(in.has_batmap, "batmap not seen");
	pvio_vhd_close(v);
	uint8_t h2[512];
	CHECK(rd(p, h2, 512, 2048) == 0 && memcmp(h, h2, 512) == 0, "batmap header not kept");
	CHECK(check_ok(p) == 0, "batmap image fails check after a write");
	struct pvio_vhd_chain *c;
	CHECK(pvio_vhd_chain_open(p, 0, &c, &e) == 0, "%s", e.msg);
	uint8_t back[4096];
	CHECK(pvio_vhd_chain_read(c, back, 0, 8, &e) == 0 && !memcmp(back, buf, 4096), "readback");
	pvio_vhd_chain_close(c);
}

static void macx_relative(void)
{
	char base[256], child[256], sub[256], nb[300], nc[300];
	struct pvio_vhd_err e = { 0, "" };
	snprintf(base, sizeof(base), "%s/base.vhd", dir);
	snprintf(child, sizeof(child), "%s/child.vhd", dir);
	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = 4u << 20 };
	CHECK(pvio_vhd_create(base, &o, &e) == 0, "%s", e.msg);
	struct pvio_vhd_create_opts oc = { .type = PVIO_VHD_DIFF, .parent = base };
	CHECK(pvio_vhd_create(child, &oc, &e) == 0, "%s", e.msg);
	/* keep only MacX, as "file://./base.vhd" (vhd-util's relative form) */
	uint8_t h[1024];
	CHECK(rd(child, h, 1024, 512) == 0, "read header");
	uint64_t macx_off = 0;
	for (int i = 0; i < 8; i++) {
		uint8_t *l = h + 576 + 24 * i;
		if (!memcmp(l, "MacX", 4)) {
			macx_off = get64(l + 16);
			put32(l + 8, 17);
		} else {
			memset(l, 0, 24);
		}
	}
	memset(h + 64, 0, 512);	/* and no parent name to fall back on */
	reseal(h, 1024, 36);
	char url[512] = "file://./base.vhd";
	CHECK(macx_off && wr(child, url, 512, (off_t)macx_off) == 0 && wr(child, h, 1024, 512) == 0,
	      "patch locators");
	snprintf(sub, sizeof(sub), "%s/moved", dir);
	mkdir(sub, 0755);
	snprintf(nb, sizeof(nb), "%s/base.vhd", sub);
	snprintf(nc, sizeof(nc), "%s/child.vhd", sub);
	CHECK(rename(base, nb) == 0 && rename(child, nc) == 0, "move chain");
	struct pvio_vhd_chain *c;
	int r = pvio_vhd_chain_open(nc, 0, &c, &e);
	CHECK(r == 0, "relative MacX after move: %s", e.msg);
	if (r == 0) {
		CHECK(pvio_vhd_chain_depth(c) == 2, "depth");
		pvio_vhd_chain_close(c);
	}

	/* revert: a fresh child of the same parent; set-parent after a move */
	uint8_t buf[512];
	memset(buf, 9, 512);
	struct pvio_vhd *v;
	CHECK(pvio_vhd_open(nc, PVIO_VHD_RDWR, &v, &e) == 0, "%s", e.msg);
	CHECK(pvio_vhd_write(v, buf, 5, 1, &e) == 0, "%s", e.msg);
	pvio_vhd_close(v);
	char out[4096];
	char *rv[] = { (char *)vhdtool_path(), "revert", nc, NULL };
	CHECK(run_cmd(out, sizeof(out), rv) == 0, "revert: %s", out);
	CHECK(pvio_vhd_chain_open(nc, 0, &c, &e) == 0, "%s", e.msg);
	uint8_t back[512];
	CHECK(pvio_vhd_chain_read(c, back, 5, 1, &e) == 0 && back[0] == 0, "revert kept data");
	pvio_vhd_chain_close(c);
	CHECK(rename(nb, base) == 0, "move parent");
	CHECK(check_ok(nc) != 0, "check passes with the parent gone");
	char *sp[] = { (char *)vhdtool_path(), "set-parent", nc, base, NULL };
	CHECK(run_cmd(out, sizeof(out), sp) == 0, "set-parent: %s", out);
	CHECK(check_ok(nc) == 0, "check after set-parent");
}

static void big(enum pvio_vhd_type t)
{
	char p[256];
	struct pvio_vhd_err e = { 0, "" };
	snprintf(p, sizeof(p), "%s/big.vhd", dir);
	unlink(p);
	struct pvio_vhd_create_opts o = { .type = t, .size = PVIO_VHD_MAX_SIZE + 512 };
	CHECK(pvio_vhd_create(p, &o, &e) < 0, "2 TiB + 512 accepted");
	o.size = PVIO_VHD_MAX_SIZE;
	CHECK(pvio_vhd_create(p, &o, &e) == 0, "2 TiB %s: %s", pvio_vhd_type_name(t), e.msg);
	struct pvio_vhd *v;
	CHECK(pvio_vhd_open(p, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &v, &e) == 0, "%s", e.msg);
	uint64_t last = PVIO_VHD_MAX_SIZE / 512 - 1;
	uint8_t buf[512], back[512];
	memset(buf, 0xee, 512);
	CHECK(pvio_vhd_write(v, buf, last, 1, &e) == 0, "%s", e.msg);
	CHECK(pvio_vhd_write(v, buf, last + 1, 1, &e) == -ERANGE, "write past the end");
	pvio_vhd_close(v);
	struct pvio_vhd_chain *c;
	CHECK(pvio_vhd_chain_open(p, 0, &c, &e) == 0, "%s", e.msg);
	CHECK(pvio_vhd_chain_read(c, back, last, 1, &e) == 0 && !memcmp(back, buf, 512), "last sector");
	pvio_vhd_chain_close(c);
	CHECK(check_ok(p) == 0, "2 TiB check");
	unlink(p);
}

static void prepare_commit(void)
{
	char p[256], base[256];
	struct pvio_vhd_err e = { 0, "" };
	snprintf(base, sizeof(base), "%s/pc-base.vhd", dir);
	snprintf(p, sizeof(p), "%s/pc.vhd", dir);
	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = 8u << 20 };
	CHECK(pvio_vhd_create(base, &o, &e) == 0, "%s", e.msg);
	struct pvio_vhd_create_opts oc = { .type = PVIO_VHD_DIFF, .parent = base };
	CHECK(pvio_vhd_create(p, &oc, &e) == 0, "%s", e.msg);
	struct pvio_vhd_chain *c;
	CHECK(pvio_vhd_chain_open(p, PVIO_VHD_RDWR, &c, &e) == 0, "%s", e.msg);
	struct pvio_vhd *leaf = pvio_vhd_chain_layer(c, 0);
	struct pvio_vhd_extent ext[4];
	unsigned n;
	/* 16 sectors straddling the first block boundary: two extents */
	int64_t got = pvio_vhd_write_prepare(leaf, 4088, 16, ext, 4, &n, &e);
	CHECK(got == 16 && n == 2, "prepare: %lld, %u extents", (long long)got, n);
	uint8_t buf[16 * 512], back[16 * 512];
	memset(buf, 0x42, sizeof(buf));
	size_t done = 0;
	for (unsigned i = 0; i < n; i++) {
		CHECK(pwrite(ext[i].fd, buf + done, ext[i].count * 512, (off_t)ext[i].offset) ==
			      (ssize_t)ext[i].count * 512, "pwrite");
		done += ext[i].count * 512;
	}
	/* before commit the data is invisible (the parent's zeros show) */
	CHECK(pvio_vhd_chain_read(c, back, 4088, 16, &e) == 0 && back[0] == 0, "visible before commit");
	CHECK(pvio_vhd_write_commit(leaf, 4088, 16, &e) == 0, "%s", e.msg);
	CHECK(pvio_vhd_chain_read(c, back, 4088, 16, &e) == 0 && !memcmp(back, buf, sizeof(buf)),
	      "data after commit");
	pvio_vhd_chain_close(c);
	CHECK(check_ok(p) == 0, "check after prepare/commit");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	chs_quirk();
	batmap_quirk();
	macx_relative();
	big(PVIO_VHD_DYNAMIC);
	big(PVIO_VHD_FIXED);
	prepare_commit();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	if (!test_failures)
		printf("quirks and edges: ok\n");
	return test_failures ? 1 : 0;
}
