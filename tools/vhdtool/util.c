/* SPDX-License-Identifier: MIT */
/* vhdtool helpers: sizes, JSON strings, the progress bar. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end && end[1] && !(toupper((unsigned char)end[1]) == 'I' && toupper((unsigned char)end[2]) == 'B' && !end[3]) &&
	    !(toupper((unsigned char)end[1]) == 'B' && !end[2]))
		return -EINVAL;
	if (shift && v > (~0ull >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int progress_on = -1;

void progress_enable(bool json)
{
	progress_on = !json && isatty(STDERR_FILENO);
}

void progress(const char *what, uint64_t done, uint64_t total)
{
	static int last = -1;
	if (progress_on != 1 || total == 0)
		return;
	int pct = (int)(done * 100 / total);
	if (pct == last && done != total)
		return;
	last = pct;
	int w = 40, fill = pct * w / 100;
	fprintf(stderr, "\r%-10s [", what);
	for (int i = 0; i < w; i++)
		fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %3d%%", pct);
	if (done >= total) {
		fputc('\n', stderr);
		last = -1;
	}
	fflush(stderr);
}

bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (len == 0)
		return true;
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}
