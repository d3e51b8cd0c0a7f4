/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xs_util.h"

int rp_xs_read_uint(struct xs_handle *xs, const char *path, unsigned long max,
		    unsigned long *out)
{
	unsigned int len;
	char *v = xs_read(xs, XBT_NULL, path, &len), *end;
	unsigned long n;

	if (!v)
		return -ENOENT;
	errno = 0;
	n = strtoul(v, &end, 10);
	/* a peer's value: digits only, no sign, no junk, in range */
	if (!len || errno || *end || v[0] < '0' || v[0] > '9' || n > max) {
		free(v);
		return -EINVAL;
	}
	free(v);
	*out = n;
	return 0;
}

int rp_xs_write_fmt(struct xs_handle *xs, xs_transaction_t t, const char *path,
		    const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	return xs_write(xs, t, path, buf, (unsigned)n) ? 0 : -errno;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

int rp_xs_wait(struct xs_handle *xs, const char *path, const char *const *want,
	       int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char token[32];
	int ret = -ETIMEDOUT;

	snprintf(token, sizeof(token), "rpwait-%p", (void *)path);
	if (!xs_watch(xs, path, token))
		return -errno;
	for (;;) {
		unsigned int len, num;
		char *v = xs_read(xs, XBT_NULL, path, &len);
		char **ev;
		long long left;

		if (v) {
			for (int i = 0; want[i][0]; i++)
				if (!strcmp(v, want[i])) {
					ret = i;
					break;
				}
			free(v);
			if (ret >= 0)
				break;
		}
		left = deadline - now_ms();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		/* A watch event (or the first one xs_watch queues) wakes us. */
		struct pollfd p = { .fd = xs_fileno(xs), .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (r > 0) {
			ev = xs_read_watch(xs, &num);
			free(ev);
		}
	}
	xs_unwatch(xs, path, token);
	return ret;
}
