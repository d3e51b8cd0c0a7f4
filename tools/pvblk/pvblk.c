/* SPDX-License-Identifier: MIT */
/*
 * pvblk: a block-device tool for a domU process on xensim, built on
 * blkfront (`xensim run DOMID -- pvblk [--vdev xvda] CMD ...`).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "pvio/blkfront.h"
#include "pvio/blkfront_xensim.h"
#include "pvblk.h"

/* Switches of the connection (so benchmarks can turn features off). */
static struct pvio_blkfront_config open_cfg;
static const char *vdev;
static bool bounce; /* --bounce: the async engine's buffers are plain memory */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvblk [--vdev xvdX|DEVID] [--no-persistent] [--ring-order 0..4]\n"
		"             [--max-indirect N | --no-indirect] [--queues N] [--bounce]\n"
		"             [--poll-us N]\n"
		"             COMMAND [OPTIONS]\n"
		"Run inside a guest: xensim run DOMID -- pvblk ...\n"
		"  --max-indirect N  use indirect descriptors of up to N segments (12..4096,\n"
		"                    default 256: a 1 MiB I/O in one request) when the backend\n"
		"                    offers them; --no-indirect (or 0): 11 segments per request\n"
		"  --queues N        use up to N rings (1..16, default 1) when the backend offers\n"
		"                    multi-queue-max-queues; I/Os are spread round-robin\n"
		"  --bounce          verify --random and bench take their buffers from plain\n"
		"                    memory, so blkfront copies through its bounce pool;\n"
		"                    default: zero-copy buffers granted by blkfront\n"
		"  --poll-us N       hybrid polling: with I/O in flight, watch the rings for up\n"
		"                    to N us (0..1000000, default 0: off) before blocking; a\n"
		"                    response that comes in time costs no notification and\n"
		"                    no wake-up, at the price of a spinning CPU\n"
		"Commands (each takes --help):\n"
		"  info    [--json]                          disk geometry and features\n"
		"  read    --offset B --length B [--out F]   read bytes (to stdout by default)\n"
		"  write   --offset B --length B [--in F | --pattern SEED]\n"
		"  discard --offset B --length B           trim a range (reads back zeros)\n"
		"  verify  [--offset B] [--length B] [--seed S] [--random N] [--json]\n"
		"  bench   [--rw randread|randwrite|read|write] [--bs 4k] [--qd 32]\n"
		"          [--time S | --count N] [--offset B] [--length B] [--json]\n"
		"  journal [--seed S] [--count N] [--qd Q] [--flush-every K] [--offset B] [--length B]\n"
		"          writes that report each ack and flush on stdout (crash tests)\n"
		"Sizes take k, m, g suffixes (powers of 1024). Offsets and lengths must be\n"
		"multiples of the disk's sector size. --vdev defaults to the first vbd.\n");
}

int pvblk_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: return -1;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t pattern(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ull + seed * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (off & 7)));
}

struct dev {
	struct pvio_blkfront_xensim *x;
	struct pvio_blkfront *bf;
	struct pvio_blkfront_info info;
};

static int dev_open(struct dev *d)
{
	int err = pvio_blkfront_xensim_open(vdev, &open_cfg, &d->x);

	if (err) {
		fprintf(stderr, "pvblk: cannot open %s: %s\n", vdev ? vdev : "the first vbd",
			strerror(-err));
		return -1;
	}
	d->bf = pvio_blkfront_xensim_dev(d->x);
	pvio_blkfront_get_info(d->bf, &d->info);
	return 0;
}

static int dev_close(struct dev *d)
{
	int err = pvio_blkfront_xensim_close(d->x);

	if (err) {
		fprintf(stderr, "pvblk: close: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}

/* Range checks shared by read/write/verify/bench. */
static int check_range(const struct dev *d, uint64_t off, uint64_t len)
{
	uint64_t size = d->info.sectors * 512;

	if (off % d->info.sector_size || len % d->info.sector_size) {
		fprintf(stderr, "pvblk: offset and length must be multiples of %u\n",
			d->info.sector_size);
		return -1;
	}
	if (off > size || len > size - off) {
		fprintf(stderr, "pvblk: range %" PRIu64 "+%" PRIu64 " is beyond the disk (%" PRIu64
				" bytes)\n", off, len, size);
		return -1;
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option o[] = { { "json", 0, 0, 'j' }, { "help", 0, 0, 'h' }, { 0 } };
	int json = 0, c;
	struct dev d;

	while ((c = getopt_long(argc, argv, "jh", o, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h') {
			printf("Usage: pvblk info [--json]\nPrint the disk's size, sector sizes, features and ring.\n");
			return 0;
		} else
			return 2;
	}
	if (dev_open(&d))
		return 1;
	const struct pvio_blkfront_info *i = &d.info;
	if (json)
		printf("{\"devid\": %u, \"frontend\": \"%s\", \"sectors\": %" PRIu64 ", \"bytes\": %" PRIu64
		       ", \"sector_size\": %u, \"physical_sector_size\": %u, \"readonly\": %s"
		       ", \"flush\": %s, \"barrier\": %s, \"persistent\": %s, \"discard\": %s, \"ring_order\": %u, \"ring_slots\": %u"
		       ", \"max_inflight\": %u, \"max_indirect_segments\": %u, \"queues\": %u"
		       ", \"max_queues_offered\": %u, \"backend_id\": %u}\n",
		       i->devid, pvio_blkfront_xensim_dir(d.x), i->sectors, i->sectors * 512,
		       i->sector_size, i->physical_sector_size, i->readonly ? "true" : "false",
		       i->flush ? "true" : "false", i->barrier ? "true" : "false",
		       i->persistent ? "true" : "false", i->discard ? "true" : "false", i->ring_order,
		       i->ring_slots, i->max_inflight, i->max_indirect_segments, i->nr_queues,
		       i->max_queues_offered, i->backend_id);
	else
		printf("device %u (%s)\n  size: %" PRIu64 " bytes (%" PRIu64 " sectors of 512)\n"
		       "  sector size: %u, physical: %u\n  read-only: %s, flush: %s, barrier: %s, persistent grants: %s, discard: %s\n"
		       "  ring: order %u, %u slots; up to %u requests in flight; backend domain %u\n"
		       "  indirect descriptors: %s%u segments per request\n"
		       "  queues: %u (backend offers %u)\n",
		       i->devid, pvio_blkfront_xensim_dir(d.x), i->sectors * 512, i->sectors,
		       i->sector_size, i->physical_sector_size, i->readonly ? "yes" : "no",
		       i->flush ? "yes" : "no", i->barrier ? "yes" : "no", i->persistent ? "yes" : "no",
		       i->discard ? "yes" : "no", i->ring_order,
		       i->ring_slots, i->max_inflight, i->backend_id,
		       i->max_indirect_segments ? "" : "off, ",
		       i->max_indirect_segments ? i->max_indirect_segments : 11u, i->nr_queues,
		       i->max_queues_offered);
	return dev_close(&d);
}

#define CHUNK (1u << 20)

static int cmd_discard(int argc, char **argv)
{
	static const struct option o[] = {
		{ "offset", 1, 0, 'o' }, { "length", 1, 0, 'l' }, { "help", 0, 0, 'h' }, { 0 },
	};
	uint64_t off = 0, len = 0;
	int have_len = 0, c, err;
	struct dev d;

	while ((c = getopt_long(argc, argv, "o:l:h", o, NULL)) != -1) {
		switch (c) {
		case 'o': if (pvblk_parse_size(optarg, &off)) goto bad; break;
		case 'l': if (pvblk_parse_size(optarg, &len)) goto bad; have_len = 1; break;
		case 'h':
			printf("Usage: pvblk discard --offset B --length B\n"
			       "Discard (trim) LENGTH bytes at OFFSET: the backend drops the data\n"
			       "(tapdisk punches a hole) and reads of the range return zeros.\n");
			return 0;
		default: goto bad;
		}
	}
	if (!have_len) {
	bad:
		fprintf(stderr, "pvblk discard: bad arguments (see --help)\n");
		return 2;
	}
	if (dev_open(&d))
		return 1;
	if (check_range(&d, off, len)) {
		dev_close(&d);
		return 1;
	}
	err = pvio_blkfront_discard(d.bf, off / 512, (size_t)len);
	if (err)
		fprintf(stderr, "pvblk discard: %s\n", strerror(-err));
	if (dev_close(&d))
		return 1;
	return err ? 1 : 0;
}

static int cmd_rw(int argc, char **argv, int is_write)
{
	static const struct option o[] = {
		{ "offset", 1, 0, 'o' }, { "length", 1, 0, 'l' }, { "out", 1, 0, 'O' },
		{ "in", 1, 0, 'i' },	 { "pattern", 1, 0, 'p' }, { "help", 0, 0, 'h' },
		{ 0 },
	};
	uint64_t off = 0, len = 0, seed = 0;
	const char *file = NULL;
	int have_len = 0, have_pat = 0, c, fd = -1, rc = 1, err;
	struct dev d;
	uint8_t *buf;

	while ((c = getopt_long(argc, argv, "o:l:O:i:p:h", o, NULL)) != -1) {
		switch (c) {
		case 'o': if (pvblk_parse_size(optarg, &off)) goto bad; break;
		case 'l': if (pvblk_parse_size(optarg, &len)) goto bad; have_len = 1; break;
		case 'O': if (is_write) goto bad; file = optarg; break;
		case 'i': if (!is_write) goto bad; file = optarg; break;
		case 'p': if (!is_write || pvblk_parse_size(optarg, &seed)) goto bad; have_pat = 1; break;
		case 'h':
			if (is_write)
				printf("Usage: pvblk write --offset B --length B [--in FILE | --pattern SEED]\n"
				       "Write LENGTH bytes at OFFSET from FILE (default stdin) or a\n"
				       "deterministic pattern of SEED (what 'verify --seed' checks).\n");
			else
				printf("Usage: pvblk read --offset B --length B [--out FILE]\n"
				       "Read LENGTH bytes at OFFSET to FILE (default stdout).\n");
			return 0;
		default: goto bad;
		}
	}
	if (!have_len || (is_write && file && have_pat)) {
	bad:
		fprintf(stderr, "pvblk %s: bad arguments (see --help)\n", is_write ? "write" : "read");
		return 2;
	}
	if (dev_open(&d))
		return 1;
	if (check_range(&d, off, len))
		goto out_close;
	if (file) {
		fd = is_write ? open(file, O_RDONLY) : open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			fprintf(stderr, "pvblk: %s: %s\n", file, strerror(errno));
			goto out_close;
		}
	} else if (!have_pat) {
		fd = is_write ? 0 : 1;
	}
	buf = malloc(CHUNK);
	if (!buf)
		goto out_close;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);

		if (is_write) {
			if (have_pat) {
				for (size_t k = 0; k < n; k++)
					buf[k] = pattern(seed, off + done + k);
			} else {
				size_t got = 0;
				while (got < n) {
					ssize_t r = read(fd, buf + got, n - got);
					if (r <= 0) {
						fprintf(stderr, "pvblk: input ended after %" PRIu64 " bytes\n",
							done + got);
						goto out_free;
					}
					got += (size_t)r;
				}
			}
			err = pvio_blkfront_write(d.bf, (off + done) / 512, buf, n);
		} else {
			err = pvio_blkfront_read(d.bf, (off + done) / 512, buf, n);
		}
		if (err) {
			fprintf(stderr, "pvblk: %s at %" PRIu64 ": %s\n", is_write ? "write" : "read",
				off + done, strerror(-err));
			goto out_free;
		}
		if (!is_write) {
			for (size_t put = 0; put < n;) {
				ssize_t r = write(fd, buf + put, n - put);
				if (r <= 0) {
					fprintf(stderr, "pvblk: output: %s\n", strerror(errno));
					goto out_free;
				}
				put += (size_t)r;
			}
		}
		done += n;
	}
	if (is_write && (err = pvio_blkfront_flush(d.bf))) {
		fprintf(stderr, "pvblk: flush: %s\n", strerror(-err));
		goto out_free;
	}
	rc = 0;
out_free:
	free(buf);
out_close:
	if (fd > 2)
		close(fd);
	if (dev_close(&d))
		rc = 1;
	return rc;
}

/* Async engine shared by verify --random and bench. */
struct job {
	struct pvio_blkfront_io io;
	uint8_t *buf;
	double t0;
	int busy;
	int status;
	uint64_t model_off; /* verify: where a read should match the model */
	int is_read;
};

/* The async engine's @n buffers of @size bytes: by default one zero-copy
 * area from blkfront (each buffer page-aligned in it, so its I/Os go
 * without a copy), else (--bounce, or blkfront cannot) plain memory. */
static uint8_t *zc_area;

static int jobs_bufs(struct dev *d, struct job *jobs, unsigned n, size_t size)
{
	size_t stride = (size + 4095) & ~(size_t)4095;
	void *p;

	if (!bounce) {
		int err = pvio_blkfront_buf_alloc(d->bf, stride * n, &p);
		if (!err) {
			zc_area = p;
			for (unsigned i = 0; i < n; i++)
				jobs[i].buf = zc_area + i * stride;
			return 0;
		}
		fprintf(stderr, "pvblk: no zero-copy buffers (%s): bouncing\n", strerror(-err));
	}
	for (unsigned i = 0; i < n; i++)
		if (!(jobs[i].buf = malloc(size)))
			return -ENOMEM;
	return 0;
}

static void jobs_bufs_free(struct dev *d, struct job *jobs, unsigned n)
{
	if (zc_area) {
		pvio_blkfront_buf_free(d->bf, zc_area);
		zc_area = NULL;
	} else {
		for (unsigned i = 0; i < n; i++)
			free(jobs[i].buf);
	}
	for (unsigned i = 0; i < n; i++)
		jobs[i].buf = NULL;
}

static double *lat;	/* bench latencies, seconds */
static size_t nlat, caplat;

static void job_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	struct job *j = arg;

	(void)io;
	j->busy = 0;
	j->status = status;
	if (lat && nlat < caplat)
		lat[nlat++] = now_s() - j->t0;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option o[] = {
		{ "offset", 1, 0, 'o' }, { "length", 1, 0, 'l' }, { "seed", 1, 0, 's' },
		{ "random", 1, 0, 'r' }, { "fresh", 0, 0, 'F' }, { "json", 0, 0, 'j' },	  { "help", 0, 0, 'h' },
		{ 0 },
	};
	uint64_t off = 0, len = 0, seed = 1, nrand = 0, bad = 0, ios = 0, bytes = 0;
	int fresh = 0, tty = isatty(2);
	double t_start = 0, t_last = 0, t_end = 0;
	int c, json = 0, rc = 1, err;
	struct dev d;
	uint8_t *model = NULL, *buf = NULL;

	while ((c = getopt_long(argc, argv, "o:l:s:r:jh", o, NULL)) != -1) {
		switch (c) {
		case 'o': if (pvblk_parse_size(optarg, &off)) goto bad; break;
		case 'l': if (pvblk_parse_size(optarg, &len)) goto bad; break;
		case 's': if (pvblk_parse_size(optarg, &seed)) goto bad; break;
		case 'r': if (pvblk_parse_size(optarg, &nrand)) goto bad; break;
		case 'F': fresh = 1; break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: pvblk verify [--offset B] [--length B] [--seed S] [--random N] [--json]\n"
			       "Without --random: write the pattern of SEED over the range, flush, read it\n"
			       "back and compare. With --random N: N random reads and writes (512 B to 1 MiB,\n"
			       "up to 16 at once, odd buffer addresses; in zero-copy buffers unless\n"
			       "--bounce, where the page-aligned ones go without a copy) checked against\n"
			       "an in-memory model of the range, then a flush and a read-back of the whole\n"
			       "range. The model\n"
			       "starts as what the range holds now, or as zeros with --fresh (a never-\n"
			       "written disk: unwritten areas must read as zeros).\n"
			       "The range defaults to the first 64 MiB of the disk (at most the disk).\n"
			       "Exits 1 on the first mismatch or error.\n");
			return 0;
		default:
		bad:
			fprintf(stderr, "pvblk verify: bad arguments (see --help)\n");
			return 2;
		}
	}
	if (dev_open(&d))
		return 1;
	if (!len) {
		uint64_t size = d.info.sectors * 512;
		len = size - (off < size ? off : size);
		if (len > (64u << 20))
			len = 64u << 20;
	}
	if (check_range(&d, off, len) || len == 0)
		goto out;
	buf = malloc(CHUNK);
	model = malloc(len);
	if (!buf || !model)
		goto out;
	if (!nrand) {
		for (uint64_t k = 0; k < len; k++)
			model[k] = pattern(seed, off + k);
		for (uint64_t done = 0; done < len; done += CHUNK) {
			size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
			if ((err = pvio_blkfront_write(d.bf, (off + done) / 512, model + done, n))) {
				fprintf(stderr, "pvblk verify: write at %" PRIu64 ": %s\n", off + done, strerror(-err));
				goto out;
			}
			ios++;
		}
		if ((err = pvio_blkfront_flush(d.bf))) {
			fprintf(stderr, "pvblk verify: flush: %s\n", strerror(-err));
			goto out;
		}
		for (uint64_t done = 0; done < len; done += CHUNK) {
			size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
			if ((err = pvio_blkfront_read(d.bf, (off + done) / 512, buf, n))) {
				fprintf(stderr, "pvblk verify: read at %" PRIu64 ": %s\n", off + done, strerror(-err));
				goto out;
			}
			ios++;
			for (size_t k = 0; k < n; k++)
				if (buf[k] != model[done + k]) {
					fprintf(stderr, "pvblk verify: mismatch at byte %" PRIu64 "\n", off + done + k);
					bad++;
					break;
				}
			if (bad)
				break;
		}
	} else {
		/* Model: the range as it is now; then random I/O, up to 16 in
		 * flight on non-overlapping ranges so the model stays exact. */
		enum { QD = 16, MAXB = 1024 * 1024 };
		struct job jobs[QD];
		uint64_t ss = d.info.sector_size, units = len / ss, issued = 0;

		for (uint64_t done = 0; !fresh && done < len; done += CHUNK) {
			size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
			if ((err = pvio_blkfront_read(d.bf, (off + done) / 512, model + done, n))) {
				fprintf(stderr, "pvblk verify: read: %s\n", strerror(-err));
				goto out;
			}
		}
		if (fresh)
			memset(model, 0, len);
		rng = seed * 2654435761u + 1;
		memset(jobs, 0, sizeof(jobs));
		for (int i = 0; i < QD; i++)
			jobs[i].status = 2; /* nothing to account */
		if (jobs_bufs(&d, jobs, QD, MAXB + 8))
			goto out;
		t_start = t_last = now_s();
		while (issued < nrand || pvio_blkfront_inflight(d.bf)) {
			if (tty && now_s() - t_last >= 0.25) {
				t_last = now_s();
				fprintf(stderr, "\rverify: %" PRIu64 "/%" PRIu64 " I/Os, %.0f IOPS, %" PRIu64 " mismatches   ",
					ios, nrand, ios / (t_last - t_start), bad);
			}
			for (int i = 0; i < QD && issued < nrand; i++) {
				struct job *j = &jobs[i];
				if (j->busy)
					continue;
				/* sizes spread over 512 B .. 1 MiB, small ones as likely as big */
				uint64_t nb = 1 + rnd() % (((uint64_t)512 << (rnd() % 12)) / ss + 1), start;
				if (nb * ss > MAXB)
					nb = MAXB / ss;
				if (nb > units)
					nb = units;
				/* pick a range that overlaps nothing in flight */
				int tries = 0, clash;
				do {
					start = rnd() % (units - nb + 1);
					clash = 0;
					for (int k = 0; k < QD; k++) {
						struct job *o2 = &jobs[k];
						if (!o2->busy)
							continue;
						uint64_t os = (o2->io.sector * 512 - off) / ss, on = o2->io.len / ss;
						if (start < os + on && os < start + nb)
							clash = 1;
					}
				} while (clash && ++tries < 8);
				if (clash)
					break;
				j->is_read = rnd() & 1;
				j->model_off = start * ss;
				uint8_t *p = j->buf + (rnd() % 8); /* odd addresses too */
				j->io = (struct pvio_blkfront_io){
					.op = j->is_read ? PVIO_BLKFRONT_READ : PVIO_BLKFRONT_WRITE,
					.sector = (off + start * ss) / 512, .buf = p, .len = nb * ss,
					.cb = job_cb, .arg = j };
				if (!j->is_read) {
					for (uint64_t k = 0; k < nb * ss; k++)
						p[k] = (uint8_t)rnd();
					memcpy(model + j->model_off, p, nb * ss);
				}
				if ((err = pvio_blkfront_submit(d.bf, &j->io))) {
					fprintf(stderr, "pvblk verify: submit: %s\n", strerror(-err));
					goto out;
				}
				j->busy = 1;
				j->status = 1;
				issued++;
			}
			int n = pvio_blkfront_poll(d.bf, 10000);
			if (n < 0) {
				fprintf(stderr, "pvblk verify: %s\n", strerror(-n));
				goto out;
			}
			for (int i = 0; i < QD; i++) {
				struct job *j = &jobs[i];
				if (j->busy || j->status == 2 || j->status == 1)
					continue;
				if (j->status) {
					fprintf(stderr, "pvblk verify: I/O error: %s\n", strerror(-j->status));
					bad++;
				} else if (j->is_read &&
					   memcmp(j->io.buf, model + j->model_off, j->io.len)) {
					fprintf(stderr, "pvblk verify: read at %" PRIu64 " differs from the model\n",
						off + j->model_off);
					bad++;
				}
				j->status = 2; /* accounted */
				ios++;
				bytes += j->io.len;
			}
			if (bad)
				break;
		}
		t_end = now_s();
		if (tty)
			fputc('\n', stderr);
		jobs_bufs_free(&d, jobs, QD);
		/* Flush, then the whole range must equal the model. */
		if (!bad && (err = pvio_blkfront_flush(d.bf))) {
			fprintf(stderr, "pvblk verify: flush: %s\n", strerror(-err));
			goto out;
		}
		for (uint64_t done = 0; !bad && done < len; done += CHUNK) {
			size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
			if ((err = pvio_blkfront_read(d.bf, (off + done) / 512, buf, n))) {
				fprintf(stderr, "pvblk verify: read-back: %s\n", strerror(-err));
				goto out;
			}
			if (memcmp(buf, model + done, n)) {
				fprintf(stderr, "pvblk verify: read-back at %" PRIu64 " differs from the model\n",
					off + done);
				bad++;
			}
		}
	}
	double el = t_end > t_start ? t_end - t_start : 0;
	struct pvio_blkfront_stats st;
	pvio_blkfront_get_stats(d.bf, &st);
	uint64_t zc_reqs = st.zero_copy_requests;
	if (json)
		printf("{\"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"ios\": %" PRIu64
		       ", \"mismatches\": %" PRIu64 ", \"ok\": %s, \"seconds\": %.3f, \"iops\": %.0f"
		       ", \"zero_copy_requests\": %" PRIu64 "}\n",
		       off, len, ios, bad, bad ? "false" : "true", el, el ? ios / el : 0, zc_reqs);
	else if (el)
		printf("verify: %" PRIu64 " I/Os over %" PRIu64 " bytes at %" PRIu64 ": %s "
		       "(%.0f IOPS, %.1f MB/s of mixed 512 B..1 MiB reads and writes)\n", ios, len, off,
		       bad ? "MISMATCH" : "all data verified", ios / el, bytes / el / 1e6);
	else
		printf("verify: %" PRIu64 " I/Os over %" PRIu64 " bytes at %" PRIu64 ": %s\n", ios, len,
		       off, bad ? "MISMATCH" : "all data verified");
	rc = bad ? 1 : 0;
out:
	free(buf);
	free(model);
	if (dev_close(&d))
		rc = 1;
	return rc;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!nlat)
		return 0;
	size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
	return lat[i] * 1e6;
}

/* CPU seconds (user + system) this process has used so far. */
static double cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option o[] = {
		{ "rw", 1, 0, 'r' },	 { "bs", 1, 0, 'b' },	  { "qd", 1, 0, 'q' },
		{ "time", 1, 0, 't' },	 { "count", 1, 0, 'c' },  { "offset", 1, 0, 'o' },
		{ "length", 1, 0, 'l' }, { "json", 0, 0, 'j' },	  { "help", 0, 0, 'h' },
		{ 0 },
	};
	const char *rw = "randread";
	uint64_t bs = 4096, qd = 32, secs = 0, count = 0, off = 0, len = 0, issued = 0, done = 0,
		 errors = 0, seq = 0;
	int c, json = 0, rc = 1, tty = isatty(2);
	struct dev d;
	struct job *jobs = NULL;

	while ((c = getopt_long(argc, argv, "r:b:q:t:c:o:l:jh", o, NULL)) != -1) {
		switch (c) {
		case 'r': rw = optarg; break;
		case 'b': if (pvblk_parse_size(optarg, &bs)) goto bad; break;
		case 'q': if (pvblk_parse_size(optarg, &qd)) goto bad; break;
		case 't': if (pvblk_parse_size(optarg, &secs)) goto bad; break;
		case 'c': if (pvblk_parse_size(optarg, &count)) goto bad; break;
		case 'o': if (pvblk_parse_size(optarg, &off)) goto bad; break;
		case 'l': if (pvblk_parse_size(optarg, &len)) goto bad; break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: pvblk bench [--rw randread|randwrite|read|write] [--bs 4k] [--qd 32]\n"
			       "                   [--time S | --count N] [--offset B] [--length B] [--json]\n"
			       "Run I/O with QD requests in flight for S seconds (default 5) or N I/Os and\n"
			       "print IOPS, MB/s, latency percentiles, this process's CPU time per I/O\n"
			       "and the notifications blkfront sent per ring request (--json: cpu_s,\n"
			       "cpu_us_per_io, ring_requests, notifies), then per queue (text: with\n"
			       "several; --json: per_queue) its ring requests, responses, notifications\n"
			       "sent and the events its responses came on (event_rounds).\n"
			       "Writes overwrite the disk.\n");
			return 0;
		default:
		bad:
			fprintf(stderr, "pvblk bench: bad arguments (see --help)\n");
			return 2;
		}
	}
	int is_write = !strcmp(rw, "randwrite") || !strcmp(rw, "write");
	int is_rand = !strcmp(rw, "randread") || !strcmp(rw, "randwrite");
	if (!is_write && !is_rand && strcmp(rw, "read")) {
		fprintf(stderr, "pvblk bench: --rw must be randread, randwrite, read or write\n");
		return 2;
	}
	if (qd == 0 || qd > 1024 || bs == 0 || bs > (64u << 20)) {
		fprintf(stderr, "pvblk bench: --qd must be 1..1024 and --bs 1..64M\n");
		return 2;
	}
	if (!secs && !count)
		secs = 5;
	if (dev_open(&d))
		return 1;
	if (!len)
		len = d.info.sectors * 512 - (off < d.info.sectors * 512 ? off : 0);
	if (check_range(&d, off, len) || check_range(&d, 0, bs) || len < bs)
		goto out;
	caplat = count ? count : 4u << 20;
	lat = malloc(caplat * sizeof(*lat));
	jobs = calloc(qd, sizeof(*jobs));
	if (!lat || !jobs)
		goto out;
	rng = 0x1234567;
	if (jobs_bufs(&d, jobs, (unsigned)qd, bs))
		goto out;
	for (uint64_t i = 0; i < qd; i++)
		memset(jobs[i].buf, (int)i, bs);
	uint64_t blocks = len / bs;
	struct pvio_blkfront_stats st0, st1;
	struct pvio_blkfront_queue_stats qs0[PVIO_BLKFRONT_MAX_QUEUES], qs1;
	pvio_blkfront_get_stats(d.bf, &st0);
	for (unsigned i = 0; i < PVIO_BLKFRONT_MAX_QUEUES; i++)
		pvio_blkfront_get_queue_stats(d.bf, i, &qs0[i]);
	double cpu0 = cpu_s();
	double t0 = now_s(), last = t0, end = t0 + (double)secs;
	for (;;) {
		double t = now_s();
		int more = count ? issued < count : t < end;

		for (uint64_t i = 0; i < qd && more; i++) {
			struct job *j = &jobs[i];
			if (j->busy)
				continue;
			uint64_t blk = is_rand ? rnd() % blocks : seq++ % blocks;
			j->io = (struct pvio_blkfront_io){
				.op = is_write ? PVIO_BLKFRONT_WRITE : PVIO_BLKFRONT_READ,
				.sector = (off + blk * bs) / 512, .buf = j->buf, .len = bs,
				.cb = job_cb, .arg = j };
			j->t0 = t;
			int err = pvio_blkfront_submit(d.bf, &j->io);
			if (err) {
				fprintf(stderr, "pvblk bench: submit: %s\n", strerror(-err));
				goto out;
			}
			j->busy = 1;
			issued++;
			more = count ? issued < count : 1;
		}
		if (!more && !pvio_blkfront_inflight(d.bf))
			break;
		int n = pvio_blkfront_poll(d.bf, 1000);
		if (n < 0) {
			fprintf(stderr, "pvblk bench: %s\n", strerror(-n));
			goto out;
		}
		done += (uint64_t)n;
		for (uint64_t i = 0; i < qd; i++)
			if (!jobs[i].busy && jobs[i].status) {
				errors++;
				jobs[i].status = 0;
			}
		if (errors) {
			fprintf(stderr, "pvblk bench: I/O errors: the device failed\n");
			goto out;
		}
		if (tty && !json && now_s() - last >= 1) {
			last = now_s();
			fprintf(stderr, "\r%s bs=%" PRIu64 " qd=%" PRIu64 ": %" PRIu64 " I/Os, %.0f IOPS   ",
				rw, bs, qd, done, (double)done / (last - t0));
		}
	}
	double el = now_s() - t0, cpu = cpu_s() - cpu0;
	pvio_blkfront_get_stats(d.bf, &st1);
	/* Ring requests and the notifications we sent for them: the
	 * backend's side (responses) is in its own stats (tapctl stats). */
	uint64_t rreq = st1.ring_requests - st0.ring_requests, ntf = st1.notifies - st0.notifies;
	if (tty && !json)
		fprintf(stderr, "\r%60s\r", "");
	qsort(lat, nlat, sizeof(*lat), cmp_d);
	double iops = (double)done / el, mbs = iops * (double)bs / 1e6;
	if (json)
		printf("{\"rw\": \"%s\", \"bs\": %" PRIu64 ", \"qd\": %" PRIu64 ", \"ios\": %" PRIu64
		       ", \"seconds\": %.3f, \"iops\": %.0f, \"mb_per_s\": %.2f, \"lat_us\": {\"mean\": %.1f"
		       ", \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}"
		       ", \"cpu_s\": %.3f, \"cpu_us_per_io\": %.2f, \"ring_requests\": %" PRIu64
		       ", \"notifies\": %" PRIu64 ", \"zero_copy_requests\": %" PRIu64
		       ", \"polls\": %" PRIu64 ", \"poll_hits\": %" PRIu64,
		       rw, bs, qd, done, el, iops, mbs, el * 1e6 * (double)qd / (double)(done ? done : 1),
		       pct(0.5), pct(0.9), pct(0.99), pct(0.999), pct(1.0), cpu,
		       cpu * 1e6 / (double)(done ? done : 1), rreq, ntf,
		       st1.zero_copy_requests - st0.zero_copy_requests, st1.polls - st0.polls,
		       st1.poll_hits - st0.poll_hits);
	else
		printf("%s bs=%" PRIu64 " qd=%" PRIu64 ": %" PRIu64 " I/Os in %.2f s: %.0f IOPS, %.2f MB/s\n"
		       "latency (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n"
		       "this process: %.2f us CPU per I/O; %" PRIu64 " ring requests, %.3f notifications per request\n",
		       rw, bs, qd, done, el, iops, mbs, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
		       pct(1.0), cpu * 1e6 / (double)(done ? done : 1), rreq,
		       (double)ntf / (double)(rreq ? rreq : 1));
	/* Per queue (the queues of this connection), over the run: how the
	 * I/O spread and what each ring cost in notifications and events. */
	pvio_blkfront_get_info(d.bf, &d.info);
	if (json)
		printf(", \"per_queue\": [");
	for (unsigned i = 0; i < d.info.nr_queues; i++) {
		pvio_blkfront_get_queue_stats(d.bf, i, &qs1);
		uint64_t q_req = qs1.ring_requests - qs0[i].ring_requests,
			 q_rsp = qs1.ring_responses - qs0[i].ring_responses,
			 q_ntf = qs1.notifies - qs0[i].notifies,
			 q_ev = qs1.event_rounds - qs0[i].event_rounds;
		if (json)
			printf("%s{\"queue\": %u, \"ring_requests\": %" PRIu64 ", \"ring_responses\": %" PRIu64
			       ", \"notifies\": %" PRIu64 ", \"event_rounds\": %" PRIu64 "}",
			       i ? ", " : "", i, q_req, q_rsp, q_ntf, q_ev);
		else if (d.info.nr_queues > 1)
			printf("queue %u: %" PRIu64 " ring requests, %" PRIu64 " responses, %" PRIu64
			       " notifications sent, responses found on %" PRIu64 " events\n",
			       i, q_req, q_rsp, q_ntf, q_ev);
	}
	if (json)
		printf("]}\n"); /* ends the object begun above */
	rc = 0;
out:
	if (jobs)
		jobs_bufs_free(&d, jobs, (unsigned)qd);
	free(jobs);
	free(lat);
	lat = NULL;
	if (dev_close(&d))
		rc = 1;
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option o[] = { { "vdev", 1, 0, 'v' }, { "no-persistent", 0, 0, 'P' },
					   { "ring-order", 1, 0, 'O' }, { "max-indirect", 1, 0, 'I' },
					   { "no-indirect", 0, 0, 'N' }, { "queues", 1, 0, 'Q' },
					   { "bounce", 0, 0, 'B' }, { "poll-us", 1, 0, 'U' },
					   { "help", 0, 0, 'h' }, { 0 } };
	uint64_t mi;
	int c;

	open_cfg.max_indirect_segments = 256;

	while ((c = getopt_long(argc, argv, "+v:h", o, NULL)) != -1) {
		switch (c) {
		case 'v': vdev = optarg; break;
		case 'P': open_cfg.no_persistent = true; break;
		case 'O':
			if (optarg[0] < '0' || optarg[0] > '4' || optarg[1]) {
				fprintf(stderr, "pvblk: --ring-order takes 0..4\n");
				return 2;
			}
			open_cfg.max_ring_order = (unsigned)(optarg[0] - '0');
			open_cfg.ring_order_zero = open_cfg.max_ring_order == 0;
			break;
		case 'I':
			if (pvblk_parse_size(optarg, &mi) || (mi && mi < 12) || mi > 4096) {
				fprintf(stderr, "pvblk: --max-indirect takes 0 or 12..4096\n");
				return 2;
			}
			open_cfg.max_indirect_segments = (unsigned)mi;
			break;
		case 'N': open_cfg.max_indirect_segments = 0; break;
		case 'B': bounce = true; break;
		case 'U':
			if (pvblk_parse_size(optarg, &mi) || mi > 1000000) {
				fprintf(stderr, "pvblk: --poll-us takes 0..1000000\n");
				return 2;
			}
			open_cfg.poll_us = (unsigned)mi;
			break;
		case 'Q':
			if (pvblk_parse_size(optarg, &mi) || mi < 1 || mi > PVIO_BLKFRONT_MAX_QUEUES) {
				fprintf(stderr, "pvblk: --queues takes 1..%d\n", PVIO_BLKFRONT_MAX_QUEUES);
				return 2;
			}
			open_cfg.max_queues = (unsigned)mi;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 1;
	if (!strcmp(cmd, "info"))
		return cmd_info(argc, argv);
	if (!strcmp(cmd, "read"))
		return cmd_rw(argc, argv, 0);
	if (!strcmp(cmd, "write"))
		return cmd_rw(argc, argv, 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc, argv);
	if (!strcmp(cmd, "discard"))
		return cmd_discard(argc, argv);
	if (!strcmp(cmd, "bench"))
		return cmd_bench(argc, argv);
	if (!strcmp(cmd, "journal"))
		return pvblk_cmd_journal(argc, argv, vdev, &open_cfg);
	fprintf(stderr, "pvblk: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
