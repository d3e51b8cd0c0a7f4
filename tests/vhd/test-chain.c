/* SPDX-License-Identifier: MIT */
/*
 * Chains of depth 1, 2, 3, 30 and 64 with random writes at every level:
 * what the library reads through the chain and what `vhdtool convert`
 * writes to raw must both equal an in-memory overlay model.  Then
 * coalescing keeps the leaf's view, and `vhdtool check` accepts every leaf.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "pvio/vhd.h"
#include "util.h"

#define DISK (8u << 20)
#define SECTORS (DISK / 512)

static char dir[] = "/tmp/vhd-chain-XXXXXX";

static void layer_path(char *out, size_t n, unsigned depth, unsigned i)
{
	snprintf(out, n, "%s/d%u-l%u.vhd", dir, depth, i);
}

static void write_random(const char *path, uint8_t *model, uint64_t *seed, unsigned nwrites)
{
	struct pvio_vhd *v;
	struct pvio_vhd_err e = { 0, "" };
	int r = pvio_vhd_open(path, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &v, &e);
	CHECK(r == 0, "open %s: %s", path, e.msg);
	if (r)
		return;
	uint8_t *buf = malloc(128 * 512);
	for (unsigned w = 0; w < nwrites; w++) {
		uint32_t n = 1 + (uint32_t)(rnd(seed) % 128);
		uint64_t s = rnd(seed) % (SECTORS - n);
		for (uint32_t k = 0; k < n * 512; k++)
			buf[k] = (uint8_t)rnd(seed);
		r = pvio_vhd_write(v, buf, s, n, &e);
		CHECK(r == 0, "write %s: %s", path, e.msg);
		memcpy(model + s * 512, buf, (size_t)n * 512);
	}
	free(buf);
	pvio_vhd_close(v);
}

/* Compare the chain at @leaf with @model: library read, then vhdtool convert. */
static void verify(const char *leaf, const uint8_t *model, const char *what)
{
	struct pvio_vhd_chain *c;
	struct pvio_vhd_err e = { 0, "" };
	int r = pvio_vhd_chain_open(leaf, 0, &c, &e);
	CHECK(r == 0, "%s: chain open: %s", what, e.msg);
	if (r)
		return;
	uint8_t *buf = malloc(DISK);
	/* odd-sized reads so runs cross block and bitmap boundaries */
	for (uint64_t s = 0; s < SECTORS;) {
		uint32_t n = SECTORS - s < 777 ? (uint32_t)(SECTORS - s) : 777;
		r = pvio_vhd_chain_read(c, buf + s * 512, s, n, &e);
		CHECK(r == 0, "%s: read: %s", what, e.msg);
		s += n;
	}
	CHECK(memcmp(buf, model, DISK) == 0, "%s: library read differs from the model", what);
	pvio_vhd_chain_close(c);

	char raw[256], out[4096];
	snprintf(raw, sizeof(raw), "%s/out.raw", dir);
	unlink(raw);
	char *conv[] = { (char *)vhdtool_path(), "convert", (char *)leaf, raw, NULL };
	r = run_cmd(out, sizeof(out), conv);
	CHECK(r == 0, "%s: vhdtool convert exit %d: %s", what, r, out);
	int fd = open(raw, O_RDONLY);
	memset(buf, 0xee, DISK);
	CHECK(fd >= 0 && read(fd, buf, DISK) == (ssize_t)DISK, "%s: reading raw output", what);
	struct stat st;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == DISK, "%s: raw size", what);
	CHECK(memcmp(buf, model, DISK) == 0, "%s: vhdtool convert differs from the model", what);
	if (fd >= 0)
		close(fd);
	unlink(raw);
	free(buf);

	char *chk[] = { (char *)vhdtool_path(), "check", (char *)leaf, NULL };
	r = run_cmd(out, sizeof(out), chk);
	CHECK(r == 0, "%s: vhdtool check exit %d: %s", what, r, out);
}

static void chain_case(unsigned depth, enum pvio_vhd_type base_type, uint64_t seed)
{
	char p[256], parent[256], what[64], out[4096];
	struct pvio_vhd_err e = { 0, "" };
	uint8_t *model = calloc(1, DISK);
	snprintf(what, sizeof(what), "depth %u (%s base)", depth, pvio_vhd_type_name(base_type));
	unsigned writes = depth > 10 ? 6 : 24;

	for (unsigned i = 0; i < depth; i++) {
		layer_path(p, sizeof(p), depth, i);
		struct pvio_vhd_create_opts o = { .type = i ? PVIO_VHD_DIFF : base_type,
						  .size = i ? 0 : DISK, .parent = i ? parent : NULL };
		int r = pvio_vhd_create(p, &o, &e);
		CHECK(r == 0, "%s: create layer %u: %s", what, i, e.msg);
		write_random(p, model, &seed, writes);
		snprintf(parent, sizeof(parent), "%s", p);
	}
	verify(p, model, what);

	if (depth >= 3) {
		/* coalesce the middle of the chain, then the leaf: view unchanged */
		char mid[256];
		layer_path(mid, sizeof(mid), depth, depth / 2);
		char *co[] = { (char *)vhdtool_path(), "coalesce", mid, NULL };
		int r = run_cmd(out, sizeof(out), co);
		CHECK(r == 0, "%s: coalesce middle exit %d: %s", what, r, out);
		verify(p, model, what);
		char *co2[] = { (char *)vhdtool_path(), "coalesce", p, NULL };
		r = run_cmd(out, sizeof(out), co2);
		CHECK(r == 0, "%s: coalesce leaf exit %d: %s", what, r, out);
		verify(p, model, what);
		/* the leaf's parent alone now holds the same view */
		layer_path(mid, sizeof(mid), depth, depth - 2);
		verify(mid, model, what);
	}
	for (unsigned i = 0; i < depth; i++) {
		layer_path(p, sizeof(p), depth, i);
		unlink(p);
	}
	free(model);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	static const unsigned depths[] = { 1, 2, 3, 30, 64 };
	for (unsigned k = 0; k < 5; k++)
		chain_case(depths[k], PVIO_VHD_DYNAMIC, 0x9e3779b97f4a7c15ull + k);
	chain_case(3, PVIO_VHD_FIXED, 42);
	rmdir(dir);
	if (test_failures)
		fprintf(stderr, "%d failure(s)\n", test_failures);
	else
		printf("chains 1/2/3/30/64 + fixed base: ok\n");
	return test_failures ? 1 : 0;
}
