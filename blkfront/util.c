/* SPDX-License-Identifier: MIT */
/* blkfront helpers: memory, strings, numbers and xenstore values, no libc. */
#include "private.h"

/*
 * Copy with word stores through a volatile destination, so that the
 * compiler can neither turn it into a call to memcpy (we have no libc)
 * nor split it into re-reads.  Bounce copies are at most 44 KiB.
 */
void bf_memcpy(void *dst, const void *src, size_t n)
{
	uintptr_t a = (uintptr_t)dst | (uintptr_t)src;
	size_t i = 0;

	if ((a & 7) == 0) {
		volatile pvio_ring__u64 *d = dst;
		const pvio_ring__u64 *s = src;
		for (; i < n / 8; i++)
			d[i] = s[i];
		i *= 8;
	}
	{
		volatile unsigned char *d = dst;
		const unsigned char *s = src;
		for (; i < n; i++)
			d[i] = s[i];
	}
}

size_t bf_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int bf_path(char *out, size_t size, const char *a, const char *b)
{
	size_t la = bf_strlen(a), lb = bf_strlen(b), i;

	if (la + 1 + lb + 1 > size)
		return -PVIO_BLKFRONT_ENOSPC;
	for (i = 0; i < la; i++)
		out[i] = a[i];
	out[la] = '/';
	for (i = 0; i < lb; i++)
		out[la + 1 + i] = b[i];
	out[la + 1 + lb] = 0;
	return 0;
}

int bf_fmt_u64(char *out, size_t size, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (n + 1 > size)
		return -PVIO_BLKFRONT_ENOSPC;
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = 0;
	return 0;
}

int bf_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s[0])
		return -PVIO_BLKFRONT_EPROTO;
	for (; *s; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -PVIO_BLKFRONT_EPROTO;
		d = (unsigned)(*s - '0');
		/* overflow check before the multiply: a peer's 30-digit value
		 * must not wrap into range */
		if (d > max || v > (max - d) / 10)
			return -PVIO_BLKFRONT_EPROTO;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int bf_read_u64(struct pvio_blkfront *bf, const char *dir, const char *key, uint64_t max,
		uint64_t *out)
{
	char path[BF_PATH], val[32];
	int err = bf_path(path, sizeof(path), dir, key);

	if (err)
		return err;
	err = bf->ops.xs_read(bf->ops.ctx, path, val, sizeof(val));
	if (err == -PVIO_BLKFRONT_ENOSPC)
		return -PVIO_BLKFRONT_EPROTO; /* too long to be a number we accept */
	if (err)
		return err;
	return bf_parse_u64(val, max, out);
}

int bf_read_bool(struct pvio_blkfront *bf, const char *dir, const char *key, bool *out)
{
	uint64_t v;
	int err = bf_read_u64(bf, dir, key, 1, &v);

	if (err == -PVIO_BLKFRONT_ENOENT) {
		*out = false;
		return 0;
	}
	if (err)
		return err;
	*out = v != 0;
	return 0;
}

int bf_backend_state(struct pvio_blkfront *bf)
{
	uint64_t v;
	int err = bf_read_u64(bf, bf->bdir, "state", XB_CLOSED, &v);

	return err ? err : (int)v;
}

int bf_write_state(struct pvio_blkfront *bf, int state)
{
	char path[BF_PATH], val[4];
	const char *p = path, *v = val;
	int err = bf_path(path, sizeof(path), bf->fdir, "state");

	if (err)
		return err;
	bf_fmt_u64(val, sizeof(val), (uint64_t)state);
	return bf->ops.xs_write_many(bf->ops.ctx, 1, &p, &v);
}

uint64_t bf_now(struct pvio_blkfront *bf)
{
	return bf->ops.now_ms ? bf->ops.now_ms(bf->ops.ctx) : 0;
}

const char *pvio_blkfront_state_name(int state)
{
	static const char *const names[] = {
		"Unknown", "Initialising", "InitWait", "Initialised",
		"Connected", "Closing", "Closed",
	};

	if (state < 0 || state > XB_CLOSED)
		return "Invalid";
	return names[state];
}
