/* SPDX-License-Identifier: MIT */
/*
 * tapback-standin — a stand-in for tapdisk, and the waiting helpers the
 * tapback / xensim-vbd shell tests need (each waits on a xenstore watch or
 * inotify, never by sleeping).
 *
 *   tapback-standin --backend B [--engine E] [--ctl S]
 *       Act as a tapdisk: append "pid=P args=..." to $STANDIN_RECORD, write
 *       B/standin-pid=P and B/state=4, then on B/online=0 write B/state=6 and
 *       exit 0; exit 0 if B disappears; obey B/standin-cmd = "P crash" (abort),
 *       "P exit N" (exit N).
 *   tapback-standin wait PATH VALUE [TIMEOUT]      until PATH reads VALUE
 *   tapback-standin wait-change PATH OLD [TIMEOUT] until PATH exists, != OLD
 *   tapback-standin wait-gone PATH [TIMEOUT]       until PATH does not exist
 *   tapback-standin wait-log FILE STRING N [TIMEOUT]
 *       until FILE holds STRING at least N times (inotify)
 * The wait commands print the final value (wait-change) and exit 1 on timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <xenstore.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *rd(struct xs_handle *xs, const char *path)
{
	unsigned len;

	return xs_read(xs, XBT_NULL, path, &len);
}

static void wr(struct xs_handle *xs, const char *dir, const char *key, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (!xs_write(xs, XBT_NULL, path, val, (unsigned)strlen(val))) {
		fprintf(stderr, "standin: write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Block until a watch event arrives or DEADLINE passes; false on timeout. */
static bool wait_event(struct xs_handle *xs, double deadline)
{
	struct pollfd p = { .fd = xs_fileno(xs), .events = POLLIN };
	double left = deadline - now_s();
	char **v;

	if (left <= 0)
		return false;
	if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
		return false;
	while ((v = xs_check_watch(xs)))
		free(v);
	return true;
}

static int act_as_tapdisk(int argc, char **argv)
{
	const char *backend = NULL, *rec = getenv("STANDIN_RECORD");
	char line[2048], pidstr[16], path[256];
	struct xs_handle *xs;
	bool linger = false;
	size_t n;
	int fd;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			backend = argv[i + 1];
	if (!backend) {
		fprintf(stderr, "standin: no --backend\n");
		return 1;
	}
	snprintf(pidstr, sizeof(pidstr), "%d", (int)getpid());
	n = (size_t)snprintf(line, sizeof(line), "pid=%s args=", pidstr);
	for (int i = 1; i < argc && n < sizeof(line) - 2; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i > 1 ? " " : "", argv[i]);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (rec) {
		fd = open(rec, O_WRONLY | O_APPEND | O_CREAT, 0600);
		if (fd < 0 || write(fd, line, n) != (ssize_t)n) {
			fprintf(stderr, "standin: cannot record to %s\n", rec);
			return 1;
		}
		close(fd);
	}
	xs = xs_open(0);
	if (!xs) {
		fprintf(stderr, "standin: xs_open: %s\n", strerror(errno));
		return 1;
	}
	if (!xs_watch(xs, backend, "standin")) {
		fprintf(stderr, "standin: watch: %s\n", strerror(errno));
		return 1;
	}
	wr(xs, backend, "standin-pid", pidstr);
	wr(xs, backend, "state", "4");
	for (;;) {
		char *online, *cmd, *dir;

		dir = rd(xs, backend);
		if (!dir && !linger) {
			xs_close(xs);
			return 0;  /* our device was removed: nothing left to close */
		}
		free(dir);
		snprintf(path, sizeof(path), "%s/online", backend);
		online = rd(xs, path);
		if (online && !strcmp(online, "0")) {
			free(online);
			wr(xs, backend, "state", "6");
			xs_close(xs);
			return 0;
		}
		free(online);
		snprintf(path, sizeof(path), "%s/standin-cmd", backend);
		cmd = rd(xs, path);
		if (cmd && !strncmp(cmd, pidstr, strlen(pidstr)) && cmd[strlen(pidstr)] == ' ') {
			const char *c = cmd + strlen(pidstr) + 1;
			if (!strcmp(c, "crash"))
				abort();
			if (!strcmp(c, "linger") && !linger) {
				linger = true;
				/* the test waits for this before removing B */
				wr(xs, backend, "standin-lingering", "1");
			}
			if (!strncmp(c, "exit ", 5)) {
				int code = atoi(c + 5);
				free(cmd);
				xs_close(xs);
				exit(code);
			}
		}
		free(cmd);
		wait_event(xs, now_s() + 3600);
	}
}

static int wait_xs(int mode, const char *path, const char *val, double timeout)
{
	struct xs_handle *xs = xs_open(0);
	double deadline = now_s() + timeout;

	if (!xs || !xs_watch(xs, path, "wait")) {
		fprintf(stderr, "standin: xenstore: %s\n", strerror(errno));
		return 2;
	}
	for (;;) {
		char *v = rd(xs, path);
		bool ok = mode == 0 ? (v && !strcmp(v, val))
			: mode == 1 ? (v && strcmp(v, val))
				    : !v;
		if (ok) {
			if (v)
				printf("%s\n", v);
			free(v);
			xs_close(xs);
			return 0;
		}
		free(v);
		if (!wait_event(xs, deadline)) {
			fprintf(stderr, "standin: timed out after %g s waiting on %s\n", timeout, path);
			xs_close(xs);
			return 1;
		}
	}
}

static int count_in(const char *file, const char *needle)
{
	FILE *f = fopen(file, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		for (const char *p = line; (p = strstr(p, needle)); p++)
			n++;
	fclose(f);
	return n;
}

static int wait_log(const char *file, const char *needle, int want, double timeout)
{
	double deadline = now_s() + timeout;
	int in = inotify_init1(IN_CLOEXEC);
	char buf[4096];

	/* watch before the first count, so no write falls between the two */
	if (in < 0 || inotify_add_watch(in, file, IN_MODIFY) < 0) {
		fprintf(stderr, "standin: inotify %s: %s\n", file, strerror(errno));
		return 2;
	}
	for (;;) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		double left;

		if (count_in(file, needle) >= want)
			return 0;
		left = deadline - now_s();
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
			fprintf(stderr, "standin: timed out waiting for %d x '%s' in %s\n", want, needle,
				file);
			return 1;
		}
		if (read(in, buf, sizeof(buf)) < 0 && errno != EAGAIN)
			return 2;
	}
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "wait"))
		return wait_xs(0, argv[2], argv[3], argc > 4 ? atof(argv[4]) : 20);
	if (argc >= 4 && !strcmp(argv[1], "wait-change"))
		return wait_xs(1, argv[2], argv[3], argc > 4 ? atof(argv[4]) : 20);
	if (argc >= 3 && !strcmp(argv[1], "wait-gone"))
		return wait_xs(2, argv[2], NULL, argc > 3 ? atof(argv[3]) : 20);
	if (argc >= 5 && !strcmp(argv[1], "wait-log"))
		return wait_log(argv[2], argv[3], atoi(argv[4]), argc > 5 ? atof(argv[5]) : 20);
	return act_as_tapdisk(argc, argv);
}
