/* SPDX-License-Identifier: MIT */
/* tapdisk's one logging module: timestamped lines naming the device. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tapdisk.h"

static FILE *log_f;
static char log_dev[32] = "-";

int td_log_open(const char *path)
{
	if (!path) {
		log_f = stderr;
		return 0;
	}
	log_f = fopen(path, "ae");
	if (!log_f) {
		int err = -errno;
		log_f = stderr;
		return err;
	}
	setvbuf(log_f, NULL, _IOLBF, 0);
	return 0;
}

void td_log_set_device(const char *dev)
{
	snprintf(log_dev, sizeof(log_dev), "%s", dev && dev[0] ? dev : "-");
}

void td_log(int level, const char *fmt, ...)
{
	static const char *const names[8] = { "emerg", "alert", "crit", "error", "warning",
					      "notice", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char msg[1024];
	va_list ap;
	FILE *f = log_f ? log_f : stderr;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(f, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ tapdisk[%d] %s: %s: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, (int)getpid(), log_dev,
		names[level & 7], msg);
	fflush(f);
}
