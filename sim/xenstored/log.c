/* SPDX-License-Identifier: MIT */
/* One line per notable event, to stderr or --log FILE. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "xenstored.h"

static FILE *log_fp;

int log_open(const char *path)
{
	FILE *fp = fopen(path, "ae");

	if (!fp)
		return -errno;
	/* Line buffered: tests and people read the log while we run. */
	setvbuf(fp, NULL, _IOLBF, 0);
	log_fp = fp;
	return 0;
}

void log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
}

void xsd_log(const char *fmt, ...)
{
	FILE *fp = log_fp ? log_fp : stderr;
	struct timespec ts;
	va_list ap;

	/*
	 * Never true (format attribute), but without it GCC 12 with
	 * -fsanitize=undefined warns "null format string" on the vfprintf.
	 */
	if (!fmt)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(fp, "xensim-xenstored[%d] %lld.%03ld: ", (int)getpid(),
		(long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
}
