/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the vhd tests (header-only: each test is one file). */
#ifndef VHD_TEST_UTIL_H
#define VHD_TEST_UTIL_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_failures;
#define CHECK(cond, ...)                                                             \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                \
			fputc('\n', stderr);                                         \
			test_failures++;                                             \
		}                                                                    \
	} while (0)

/* xorshift: reproducible data from a seed */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Run a command; capture its stdout+stderr (up to @cap) and return its exit
 * status (or -1). */
static inline int run_cmd(char *out, size_t cap, char *const argv[])
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t used = 0;
	ssize_t r;
	char sink[4096];
	while ((r = read(p[0], used + 1 < cap ? out + used : sink,
			 used + 1 < cap ? cap - used - 1 : sizeof(sink))) > 0)
		if (used + 1 < cap)
			used += (size_t)r;
	out[used] = 0;
	close(p[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static inline const char *vhdtool_path(void)
{
	const char *t = getenv("VHDTOOL");
	if (!t) {
		fprintf(stderr, "VHDTOOL not set\n");
		exit(2);
	}
	return t;
}
#endif
