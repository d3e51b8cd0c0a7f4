/* SPDX-License-Identifier: MIT */
/*
 * Hostile images: each corruption must make `vhdtool check`, `info` and
 * `convert` exit non-zero (not die by a signal) with a message naming the
 * problem, and the library return a negative errno with that message.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "pvio/vhd.h"
#include "util.h"

static char dir[] = "/tmp/vhd-bad-XXXXXX";
static char good[256];

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static void reseal(uint8_t *p, size_t len, size_t off)
{
	uint32_t s = 0;
	for (size_t i = 0; i < len; i++)
		if (i < off || i >= off + 4)
			s += p[i];
	put32(p + off, ~s);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	fstat(fd, &st);
	uint8_t *b = malloc((size_t)st.st_size + 1);
	if (read(fd, b, (size_t)st.st_size) != st.st_size)
		abort();
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, b, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Expect every tool entry point to refuse @path mentioning @needle.
 * (convert takes a file without any VHD cookie as a raw image, rightly:
 * only files that claim to be VHDs are run through it.) */
static void expect_bad_(const char *path, const char *needle, const char *what, int ncmds)
{
	char out[8192], raw[300];
	snprintf(raw, sizeof(raw), "%s/out.raw", dir);
	char *cmds[3][6] = {
		{ (char *)vhdtool_path(), "check", (char *)path, NULL },
		{ (char *)vhdtool_path(), "info", "--chain", (char *)path, NULL },
		{ (char *)vhdtool_path(), "convert", (char *)path, raw, NULL },
	};
	for (int k = 0; k < ncmds; k++) {
		unlink(raw);
		int r = run_cmd(out, sizeof(out), cmds[k]);
		CHECK(r > 0, "%s: vhdtool %s exit %d (want non-zero, no signal): %s", what, cmds[k][1],
		      r, out);
		CHECK(strstr(out, needle), "%s: vhdtool %s says \"%s\", want \"%s\"", what, cmds[k][1],
		      out, needle);
	}
	struct pvio_vhd_chain *c;
	struct pvio_vhd_err e = { 0, "" };
	int r = pvio_vhd_chain_open(path, 0, &c, &e);
	CHECK(r < 0 && e.code == r && strstr(e.msg, needle), "%s: library: %d %s", what, r, e.msg);
	if (r == 0)
		pvio_vhd_chain_close(c);
}

static void expect_bad(const char *path, const char *needle, const char *what)
{
	expect_bad_(path, needle, what, 3);
}

static void expect_bad_not_vhd(const char *path, const char *needle, const char *what)
{
	expect_bad_(path, needle, what, 2);
}

int main(void)
{
	struct pvio_vhd_err e = { 0, "" };
	char p[256], q[256], x[256];
	size_t len;
	if (!mkdtemp(dir))
		return 1;

	/* a valid dynamic disk with three allocated blocks */
	snprintf(good, sizeof(good), "%s/good.vhd", dir);
	struct pvio_vhd_create_opts o = { .type = PVIO_VHD_DYNAMIC, .size = 8u << 20 };
	CHECK(pvio_vhd_create(good, &o, &e) == 0, "%s", e.msg);
	struct pvio_vhd *v;
	CHECK(pvio_vhd_open(good, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &v, &e) == 0, "%s", e.msg);
	uint8_t sec[512];
	memset(sec, 0x77, sizeof(sec));
	for (uint64_t s = 0; s < 3 * 4096; s += 4096)
		CHECK(pvio_vhd_write(v, sec, s + 1, 1, &e) == 0, "%s", e.msg);
	pvio_vhd_close(v);
	uint8_t *img = slurp(good, &len);
	uint8_t *hdr = img + 512, *bat = img + 1536, *foot = img + len - 512;
	snprintf(p, sizeof(p), "%s/bad.vhd", dir);
	uint8_t *t = malloc(len);

	spit(p, img, 0);
	expect_bad_not_vhd(p, "truncated", "empty file");
	spit(p, img, 300);
	expect_bad_not_vhd(p, "truncated", "300-byte file");
	spit(p, img, len - 4096);	/* last block cut: BAT points past the end */
	expect_bad(p, "past the end of the file", "truncated block");

	memcpy(t, img, len);
	t[len - 512 + 100] ^= 1;
	t[100] ^= 1;
	spit(p, t, len);
	expect_bad(p, "checksum mismatch", "bad footer checksums");

	memcpy(t, img, len);
	t[512 + 700] ^= 1;
	spit(p, t, len);
	expect_bad(p, "header checksum mismatch", "bad header checksum");

	memcpy(t, img, len);
	put32(t + 1536, 0x00ffff00);
	spit(p, t, len);
	expect_bad(p, "past the end of the file", "BAT entry past EOF");

	memcpy(t, img, len);
	put32(t + 1536, 1);	/* sector 1: the dynamic header */
	spit(p, t, len);
	expect_bad(p, "overlaps", "BAT entry over metadata");

	memcpy(t, img, len);
	memcpy(t + 1536 + 4, t + 1536, 4);
	spit(p, t, len);
	expect_bad(p, "overlap", "two BAT entries, one block");

	memcpy(t, img, len);
	put64(t + 48, 1ull << 50);
	reseal(t, 512, 64);
	put64(t + len - 512 + 48, 1ull << 50);
	reseal(t + len - 512, 512, 64);
	spit(p, t, len);
	expect_bad(p, "absurd", "absurd size");

	memcpy(t, img, len);
	put32(t + 512 + 28, 0xffffffffu);
	reseal(t + 512, 1024, 36);
	spit(p, t, len);
	expect_bad(p, "BAT", "absurd BAT entry count");

	memcpy(t, img, len);
	put32(t + 512 + 32, 3u << 20);
	reseal(t + 512, 1024, 36);
	spit(p, t, len);
	expect_bad(p, "block size", "odd block size");

	for (size_t i = 0; i < len; i++)
		t[i] = (uint8_t)(i * 131 + 7);
	spit(p, t, 4096);
	expect_bad_not_vhd(p, "no valid footer", "garbage");
	(void)hdr; (void)bat; (void)foot; (void)be32;

	/* chains: missing parent, UUID mismatch, locator out of the file, loop */
	snprintf(q, sizeof(q), "%s/child.vhd", dir);
	struct pvio_vhd_create_opts oc = { .type = PVIO_VHD_DIFF, .parent = good };
	CHECK(pvio_vhd_create(q, &oc, &e) == 0, "%s", e.msg);
	snprintf(x, sizeof(x), "%s/good.moved", dir);
	rename(good, x);
	expect_bad(q, "parent not found", "missing parent");
	o.overwrite = true;
	CHECK(pvio_vhd_create(good, &o, &e) == 0, "%s", e.msg);	/* same name, new UUID */
	expect_bad(q, "parent UUID mismatch", "parent UUID mismatch");
	rename(x, good);

	size_t clen;
	uint8_t *child = slurp(q, &clen);
	memcpy(t, child, clen < len ? clen : len);
	put64(t + 512 + 576 + 16, 1ull << 40);	/* locator 0 far outside */
	reseal(t + 512, 1024, 36);
	spit(p, t, clen);
	expect_bad(p, "outside the file", "locator past EOF");
	free(child);

	char a[256], b[256];
	snprintf(a, sizeof(a), "%s/a.vhd", dir);
	snprintf(b, sizeof(b), "%s/b.vhd", dir);
	oc.parent = good;
	CHECK(pvio_vhd_create(a, &oc, &e) == 0, "%s", e.msg);
	oc.parent = a;
	CHECK(pvio_vhd_create(b, &oc, &e) == 0, "%s", e.msg);
	CHECK(pvio_vhd_set_parent(a, b, NULL, &e) == 0, "%s", e.msg);
	expect_bad(b, "loops", "chain loop");

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	free(t);
	free(img);
	if (!test_failures)
		printf("hostile images refused: ok\n");
	return test_failures ? 1 : 0;
}
