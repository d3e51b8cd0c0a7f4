/* SPDX-License-Identifier: MIT */
/* Test helpers for harnesses that drive xenstore themselves (the hostile
 * frontends of test-blkback and test-netback-hostile). */
#ifndef PVIO_TEST_XSTEST_H
#define PVIO_TEST_XSTEST_H

#include <xenstore.h>

/* Print "FATAL: ..." and exit 1. */
void xst_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* CLOCK_MONOTONIC in milliseconds. */
long long xst_now_ms(void);
/* Write a formatted value to @path (outside a transaction); dies on error. */
void xst_write(struct xs_handle *xs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Read @path (NULL when absent); as a decimal int (-1 when absent). */
char *xst_read(struct xs_handle *xs, const char *path);
int xst_read_int(struct xs_handle *xs, const char *path);
/* Wait on a watch until @path reads as one of the states in @want (a
 * bitmask of 1 << state).  Returns the state, or -1 after @timeout_ms (a
 * deadline that turns a hang into a failure, never a synchronisation). */
int xst_wait_state(struct xs_handle *xs, const char *path, unsigned want, int timeout_ms);

#endif
