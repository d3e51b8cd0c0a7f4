/* SPDX-License-Identifier: MIT */
#ifndef PVIO_RINGPING_XS_UTIL_H
#define PVIO_RINGPING_XS_UTIL_H

#include <stdbool.h>
#include <xenstore.h>

/* Read @path as an unsigned number. -ENOENT if absent, -EINVAL if not a
 * number or above @max. */
int rp_xs_read_uint(struct xs_handle *xs, const char *path, unsigned long max,
		    unsigned long *out);
int rp_xs_write_fmt(struct xs_handle *xs, xs_transaction_t t, const char *path,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Wait (watching @path) until it reads as one of the values in @want
 * (a NUL-separated list ending with an empty string) or @timeout_ms passes.
 * Returns the index of the value seen, -ETIMEDOUT, or -errno. */
int rp_xs_wait(struct xs_handle *xs, const char *path, const char *const *want,
	       int timeout_ms);

#endif
