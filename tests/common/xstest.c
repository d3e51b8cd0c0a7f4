/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xstest.h"

void xst_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FATAL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

long long xst_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

void xst_write(struct xs_handle *xs, const char *path, const char *fmt, ...)
{
	char v[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	if (!xs_write(xs, XBT_NULL, path, v, (unsigned)strlen(v)))
		xst_die("xs_write %s: %s", path, strerror(errno));
}

char *xst_read(struct xs_handle *xs, const char *path)
{
	unsigned len;

	return xs_read(xs, XBT_NULL, path, &len);
}

int xst_read_int(struct xs_handle *xs, const char *path)
{
	char *v = xst_read(xs, path);
	int n = v ? atoi(v) : -1;

	free(v);
	return n;
}

int xst_wait_state(struct xs_handle *xs, const char *path, unsigned want, int timeout_ms)
{
	long long end = xst_now_ms() + timeout_ms;
	char tok[32];
	int st;

	snprintf(tok, sizeof(tok), "w%lld", xst_now_ms());
	if (!xs_watch(xs, path, tok))
		xst_die("xs_watch %s", path);
	for (;;) {
		st = xst_read_int(xs, path);
		if (st >= 0 && st < 32 && (want & (1u << st)))
			break;
		long long left = end - xst_now_ms();
		if (left <= 0) {
			st = -1;
			break;
		}
		struct pollfd p = { .fd = xs_fileno(xs), .events = POLLIN };
		if (poll(&p, 1, (int)left) > 0) {
			char **ev;
			while ((ev = xs_check_watch(xs)))
				free(ev);
		}
	}
	xs_unwatch(xs, path, tok);
	return st;
}
