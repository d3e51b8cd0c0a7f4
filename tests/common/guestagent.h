/* SPDX-License-Identifier: MIT */
/*
 * A guest process for tests: forked as a process of a domU, it owns pages
 * and grants and obeys commands from the test (dom0) over a socketpair.
 */
#ifndef PVIO_TEST_GUESTAGENT_H
#define PVIO_TEST_GUESTAGENT_H

#include <stdint.h>
#include <sys/types.h>

enum ga_cmd {
	GA_ALLOC = 1,    /* arg: nr pages -> page index base */
	GA_GRANT,        /* page, arg: readonly, to -> ref */
	GA_END,          /* ref -> 0 or -errno */
	GA_FILL,         /* page, arg: seed -> 0 */
	GA_CHECK,        /* page, arg: seed -> 0 if the page holds the seed's pattern */
	GA_EXIT,
};

struct ga {
	pid_t pid;
	int fd;
};

/* Fork a guest of @domid. */
void ga_start(struct ga *g, uint32_t domid);
/* Run one command; returns its result. */
int64_t ga_do(struct ga *g, int cmd, uint32_t page, uint32_t arg, uint32_t to);
/* Ask it to exit and reap it; returns its exit status. */
int ga_stop(struct ga *g);

/* The test pattern of @seed at byte @i. */
static inline uint8_t ga_pattern(uint32_t seed, uint32_t i)
{
	uint32_t x = seed * 2654435761u + i * 40503u;
	return (uint8_t)(x ^ (x >> 13) ^ (x >> 24));
}

#endif
