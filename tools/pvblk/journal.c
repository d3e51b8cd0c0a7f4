/* SPDX-License-Identifier: MIT */
/*
 * pvblk journal: a write workload whose every step is reported as it
 * completes, for crash tests (tests/faults/vhd-crash.sh).
 *
 * COUNT writes, each to its own range (the range is cut into 64 KiB
 * chunks, taken in a shuffled order; a write lands inside one chunk), so
 * after a crash every sector has exactly one candidate new value.  Each
 * 512-byte sector written holds 16 copies of the 32-byte record
 * { "PVIOJRNL", seed, write number, sector } (little-endian): a sector read
 * back says which write put it there, and a torn or misplaced sector
 * shows.  A flush is issued after every FLUSH_EVERY acknowledged writes
 * (one in flight at a time).  stdout gets one line per event, each with a
 * single write(2), before (sub, fsub) or as soon as (ack, err, fack, ferr)
 * it happens, so a reader that kills us still holds a true account:
 *   sub N OFFSET LENGTH   write N submitted
 *   ack N | err N ERRNO   write N completed
 *   fsub F | fack F | ferr F ERRNO   flush F submitted / completed
 *   done
 * A write acknowledged before "fsub F" is durable once "fack F" appears.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvio/blkfront.h"
#include "pvio/blkfront_xensim.h"
#include "pvblk.h"

#define JCHUNK (64u * 1024)
#define JMAXQD 64

/* One write (or the flush) and what became of it since the last look. */
struct jwrite {
	struct pvio_blkfront_io io;
	uint8_t *buf;
	uint64_t seq;
	int busy;
	int done, status;
};

static uint64_t jrng;
static uint64_t jrnd(void)
{
	/* splitmix64: a seed of 0 is as good as any other */
	uint64_t z = (jrng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The contents of write @seq at byte @off (a sector boundary), @len bytes. */
static void journal_fill(uint8_t *p, uint64_t seed, uint64_t seq, uint64_t off, size_t len)
{
	for (size_t s = 0; s < len; s += 512) {
		uint8_t rec[32];
		memcpy(rec, "PVIOJRNL", 8);
		put_le64(rec + 8, seed);
		put_le64(rec + 16, seq);
		put_le64(rec + 24, (off + s) / 512);
		for (unsigned k = 0; k < 512; k += 32)
			memcpy(p + s + k, rec, 32);
	}
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line: a reader never sees half of one */
	if (n > 0 && write(1, line, (size_t)n) != n)
		(void)0;
}

static void w_cb(struct pvio_blkfront_io *io, int status, void *arg)
{
	struct jwrite *w = arg;

	(void)io;
	w->busy = 0;
	w->done = 1;
	w->status = status;
}

int pvblk_cmd_journal(int argc, char **argv, const char *vdev, const struct pvio_blkfront_config *cfg)
{
	static const struct option o[] = {
		{ "offset", 1, 0, 'o' }, { "length", 1, 0, 'l' }, { "seed", 1, 0, 's' },
		{ "count", 1, 0, 'c' },	 { "qd", 1, 0, 'q' },	  { "flush-every", 1, 0, 'f' },
		{ "help", 0, 0, 'h' },	 { 0 },
	};
	uint64_t off = 0, len = 16u << 20, seed = 1, count = 100, qd = 8, every = 8;
	struct pvio_blkfront_xensim *x = NULL;
	struct pvio_blkfront *bf;
	struct pvio_blkfront_info info;
	struct jwrite w[JMAXQD], fl;
	uint32_t *order = NULL;
	uint64_t issued = 0, completed = 0, acked = 0, acked_at_flush = 0, flushes = 0, errors = 0;
	int c, rc = 1, err;

	while ((c = getopt_long(argc, argv, "o:l:s:c:q:f:h", o, NULL)) != -1) {
		switch (c) {
		case 'o': if (pvblk_parse_size(optarg, &off)) goto bad; break;
		case 'l': if (pvblk_parse_size(optarg, &len)) goto bad; break;
		case 's': if (pvblk_parse_size(optarg, &seed)) goto bad; break;
		case 'c': if (pvblk_parse_size(optarg, &count)) goto bad; break;
		case 'q': if (pvblk_parse_size(optarg, &qd)) goto bad; break;
		case 'f': if (pvblk_parse_size(optarg, &every)) goto bad; break;
		case 'h':
			printf("Usage: pvblk journal [--offset B] [--length B] [--seed S] [--count N] [--qd Q]\n"
			       "                     [--flush-every K]\n"
			       "COUNT writes (default 100) of 512 B..32 KiB, each to its own part of the\n"
			       "range (default the first 16 MiB; at most one write per 64 KiB chunk), QD\n"
			       "at once (default 8, at most 64), a flush after every K acknowledged writes\n"
			       "(default 8).  Every sector written holds 16 copies of { \"PVIOJRNL\", seed,\n"
			       "write number, sector } (little-endian u64s).  stdout reports each step\n"
			       "as it happens, one line per write(2), for a reader that may kill us:\n"
			       "  sub N OFFSET LENGTH | ack N | err N ERRNO   (write N)\n"
			       "  fsub F | fack F | ferr F ERRNO              (flush F)\n"
			       "  done\n"
			       "A write acknowledged before \"fsub F\" is durable once \"fack F\" is printed.\n"
			       "Exits 1 if any I/O failed (after reporting it).\n");
			return 0;
		default:
		bad:
			fprintf(stderr, "pvblk journal: bad arguments (see --help)\n");
			return 2;
		}
	}
	if (off % JCHUNK || len % JCHUNK || len == 0 || qd == 0 || qd > JMAXQD || every == 0 ||
	    count > len / JCHUNK) {
		fprintf(stderr, "pvblk journal: --offset and --length must be multiples of 64 KiB, --qd 1..%u,\n"
				"--flush-every >= 1, --count at most one write per 64 KiB of the range\n", JMAXQD);
		return 2;
	}
	err = pvio_blkfront_xensim_open(vdev, cfg, &x);
	if (err) {
		fprintf(stderr, "pvblk: cannot open %s: %s\n", vdev ? vdev : "the first vbd", strerror(-err));
		return 1;
	}
	bf = pvio_blkfront_xensim_dev(x);
	pvio_blkfront_get_info(bf, &info);
	if (info.sector_size != 512 || off > info.sectors * 512 || len > info.sectors * 512 - off) {
		fprintf(stderr, "pvblk journal: the range must lie in a disk of 512-byte sectors\n");
		goto out;
	}
	/* the chunks in a shuffled order: write n gets chunk order[n] */
	uint32_t nchunks = (uint32_t)(len / JCHUNK);
	order = malloc(nchunks * sizeof(*order));
	if (!order)
		goto out;
	jrng = seed;
	for (uint32_t i = 0; i < nchunks; i++)
		order[i] = i;
	for (uint32_t i = nchunks - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(jrnd() % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	memset(w, 0, sizeof(w));
	for (uint64_t i = 0; i < qd; i++)
		if (!(w[i].buf = malloc(JCHUNK)))
			goto out;
	memset(&fl, 0, sizeof(fl));
	for (;;) {
		for (uint64_t i = 0; i < qd; i++) {
			struct jwrite *j = &w[i];
			if (j->done) {
				j->done = 0;
				completed++;
				if (j->status) {
					errors++;
					say("err %" PRIu64 " %d\n", j->seq, -j->status);
				} else {
					acked++;
					say("ack %" PRIu64 "\n", j->seq);
				}
			}
			if (j->busy || issued >= count)
				continue;
			/* 512 B .. 32 KiB, small ones as likely as big, inside the chunk */
			uint64_t sz = 512ull << (jrnd() % 7);
			uint64_t at = off + (uint64_t)order[issued] * JCHUNK + (jrnd() % ((JCHUNK - sz) / 512 + 1)) * 512;
			j->seq = issued++;
			journal_fill(j->buf, seed, j->seq, at, (size_t)sz);
			j->io = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_WRITE, .sector = at / 512,
							   .buf = j->buf, .len = (size_t)sz, .cb = w_cb, .arg = j };
			say("sub %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", j->seq, at, sz);
			if ((err = pvio_blkfront_submit(bf, &j->io))) {
				fprintf(stderr, "pvblk journal: submit: %s\n", strerror(-err));
				goto out;
			}
			j->busy = 1;
		}
		if (fl.done) {
			fl.done = 0;
			if (fl.status) {
				errors++;
				say("ferr %" PRIu64 " %d\n", flushes, -fl.status);
			} else {
				say("fack %" PRIu64 "\n", flushes);
			}
		}
		/* a flush once K more writes are acknowledged, and a last one
		 * for the rest */
		if (!fl.busy && (acked - acked_at_flush >= every || (completed == count && acked > acked_at_flush))) {
			acked_at_flush = acked;
			flushes++;
			say("fsub %" PRIu64 "\n", flushes);
			fl.io = (struct pvio_blkfront_io){ .op = PVIO_BLKFRONT_FLUSH, .cb = w_cb, .arg = &fl };
			if ((err = pvio_blkfront_submit(bf, &fl.io))) {
				fprintf(stderr, "pvblk journal: flush: %s\n", strerror(-err));
				goto out;
			}
			fl.busy = 1;
		}
		if (completed == count && !fl.busy && !fl.done && acked == acked_at_flush)
			break;
		int n = pvio_blkfront_poll(bf, 10000);
		if (n < 0) {
			fprintf(stderr, "pvblk journal: %s\n", strerror(-n));
			goto out;
		}
	}
	say("done\n");
	rc = errors ? 1 : 0;
out:
	for (uint64_t i = 0; i < qd && i < JMAXQD; i++)
		free(w[i].buf);
	free(order);
	if (x && pvio_blkfront_xensim_close(x))
		rc = 1;
	return rc;
}
