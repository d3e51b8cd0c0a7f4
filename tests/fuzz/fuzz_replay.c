/* SPDX-License-Identifier: MIT */
/*
 * Standalone driver for the harnesses when not built with libFuzzer
 * (gcc builds, CI's fuzz-smoke suite, replaying a crash file):
 *
 *   fuzz_X [--mutations N] [--seed S] FILE|DIR...
 *
 * Runs LLVMFuzzerTestOneInput on every file (directories: every regular
 * file in them), then on N deterministic pseudo-random mutations of each
 * (bit flips, byte sets, interesting values, inserts, deletes, splices
 * with another input).  Same seed, same inputs: a failure reproduces.
 * AFL++ builds (afl-clang-fast) use this main too: with no mutations and
 * one file argument it is a plain "run this input" program; see README.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define FZ_MAX_INPUT (64 * 1024)

struct input {
	uint8_t *data;
	size_t len;
};

static struct input *inputs;
static size_t ninputs;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: small, deterministic, good enough for mutation */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static int load(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct input in;
	long n;

	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 0 || n > FZ_MAX_INPUT)
		n = n < 0 ? 0 : FZ_MAX_INPUT;
	in.data = malloc((size_t)n + 1);
	in.len = n ? fread(in.data, 1, (size_t)n, f) : 0;
	fclose(f);
	inputs = realloc(inputs, (ninputs + 1) * sizeof(*inputs));
	inputs[ninputs++] = in;
	return 0;
}

static int load_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "cannot stat %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **names;
		int n = scandir(path, &names, NULL, alphasort); /* sorted: deterministic */
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			char p[4096];
			if (names[i]->d_name[0] != '.') {
				snprintf(p, sizeof(p), "%s/%s", path, names[i]->d_name);
				if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
					load(p);
			}
			free(names[i]);
		}
		free(names);
		return 0;
	}
	return load(path);
}

/* The input being run, written out if the harness aborts (a broken
 * invariant, or a sanitizer with abort_on_error): replay it alone. */
static const uint8_t *cur_data;
static size_t cur_len;

static void on_abort(int sig)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "crash-replay-%d", (int)getpid());
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, cur_data, cur_len) < 0)
			(void)0;
		close(fd);
		(void)!write(2, "input saved as ", 15);
		(void)!write(2, name, strlen(name));
		(void)!write(2, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void run(const uint8_t *d, size_t n)
{
	cur_data = d;
	cur_len = n;
	LLVMFuzzerTestOneInput(d, n);
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	static const uint32_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000,
						0xffff, 0x10000, 0x7fffffff, 0x80000000u,
						0xffffffffu, 11, 12, 7, 8, 32, 33 };
	unsigned rounds = 1 + (unsigned)(rnd() % 8);

	for (unsigned r = 0; r < rounds; r++) {
		size_t pos = len ? (size_t)(rnd() % len) : 0;
		switch (rnd() % 7) {
		case 0: /* bit flip */
			if (len)
				buf[pos] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1: /* random byte */
			if (len)
				buf[pos] = (uint8_t)rnd();
			break;
		case 2: { /* interesting 32-bit value */
			uint32_t v = interesting[rnd() % (sizeof(interesting) / sizeof(interesting[0]))];
			for (unsigned i = 0; i < 4 && pos + i < len; i++)
				buf[pos + i] = (uint8_t)(v >> (8 * i));
			break;
		}
		case 3: { /* insert random bytes */
			size_t k = 1 + (size_t)(rnd() % 16);
			if (len + k > cap)
				break;
			memmove(buf + pos + k, buf + pos, len - pos);
			for (size_t i = 0; i < k; i++)
				buf[pos + i] = (uint8_t)rnd();
			len += k;
			break;
		}
		case 4: { /* delete */
			size_t k = 1 + (size_t)(rnd() % 16);
			if (pos + k > len)
				k = len - pos;
			memmove(buf + pos, buf + pos + k, len - pos - k);
			len -= k;
			break;
		}
		case 5: { /* splice a piece of another input */
			const struct input *o = &inputs[rnd() % ninputs];
			if (!o->len)
				break;
			size_t from = (size_t)(rnd() % o->len);
			size_t k = 1 + (size_t)(rnd() % 64);
			if (from + k > o->len)
				k = o->len - from;
			if (pos + k > cap)
				k = cap - pos;
			memcpy(buf + pos, o->data + from, k);
			if (pos + k > len)
				len = pos + k;
			break;
		}
		default: /* duplicate a chunk (repeats a command sequence) */
			if (len) {
				size_t k = 1 + (size_t)(rnd() % 32);
				if (pos + k > len)
					k = len - pos;
				if (len + k > cap)
					break;
				memmove(buf + pos + k, buf + pos, len - pos);
				len += k;
			}
			break;
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	unsigned long mutations = 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf("usage: %s [--mutations N] [--seed S] FILE|DIR...\n"
			       "Run the harness on each input, then on N deterministic mutations of each.\n",
			       argv[0]);
			return 0;
		} else if (!strcmp(argv[i], "--mutations") && i + 1 < argc) {
			mutations = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			rng_state = strtoull(argv[++i], NULL, 0) | 1;
		} else if (load_path(argv[i]) != 0) {
			return 2;
		}
	}
	if (!ninputs) {
		fprintf(stderr, "no inputs (try --help)\n");
		return 2;
	}
	signal(SIGABRT, on_abort);
	for (size_t k = 0; k < ninputs; k++)
		run(inputs[k].data, inputs[k].len);
	if (mutations) {
		uint8_t *buf = malloc(FZ_MAX_INPUT);
		for (unsigned long m = 0; m < mutations; m++) {
			const struct input *src = &inputs[m % ninputs];
			size_t len = src->len;
			memcpy(buf, src->data, len);
			len = mutate(buf, len, FZ_MAX_INPUT);
			/* an exact-size heap copy, so ASan sees reads past the end */
			uint8_t *exact = malloc(len ? len : 1);
			memcpy(exact, buf, len);
			run(exact, len);
			free(exact);
		}
		free(buf);
	}
	printf("%zu inputs, %lu mutations: no invariant broken\n", ninputs, mutations);
	for (size_t k = 0; k < ninputs; k++)
		free(inputs[k].data);
	free(inputs);
	return 0;
}
