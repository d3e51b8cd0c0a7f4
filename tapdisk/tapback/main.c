/* SPDX-License-Identifier: MIT */
/*
 * pvio-tapback — the VBD supervisor (blktap3's tapback role, without its
 * xenstore proxying: each tapdisk does its own xenstore handshake). It
 * watches dom0's backend/vbd3 and backend/vbd, runs one tapdisk per device
 * with online=1, restarts a tapdisk that dies while its device is attached
 * (bounded), and on SIGTERM stops its tapdisks and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pvio-config.h"
#include "private.h"

static const char *const bases[] = {
	"/local/domain/0/backend/vbd3",
	"/local/domain/0/backend/vbd",
};

void tb_log(struct tb_state *s, const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ld pvio-tapback[%d]: ",
		      ts.tv_nsec / 1000000, (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	/* one write per line, so lines from us and our tapdisks do not mix */
	if (write(s->cfg.log_fd, buf, (size_t)n) < 0) {
		/* nowhere left to say it */
	}
}

void tb_maybe_finish(struct tb_state *s)
{
	if (s->stopping && tb_running(s) == 0) {
		ev_timer_stop(s->loop, &s->stop_timer);
		ev_break(s->loop, EVBREAK_ALL);
	}
}

/* A watch fired on PATH: look only at what it can have changed. */
static void on_path(struct tb_state *s, const char *path)
{
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		size_t l = strlen(bases[i]);
		const char *rest, *slash, *slash2;
		char dev[192], dom[16];

		if (strncmp(path, bases[i], l) || (path[l] && path[l] != '/'))
			continue;
		rest = path[l] ? path + l + 1 : "";
		if (!*rest) {
			tb_scan(s, bases[i], NULL);
			return;
		}
		slash = strchr(rest, '/');
		if (!slash) {
			if (strlen(rest) >= sizeof(dom))
				return;
			snprintf(dom, sizeof(dom), "%s", rest);
			tb_scan(s, bases[i], dom);
			return;
		}
		slash2 = strchr(slash + 1, '/');
		l = slash2 ? (size_t)(slash2 - path) : strlen(path);
		if (l >= sizeof(dev))
			return;
		memcpy(dev, path, l);
		dev[l] = 0;
		tb_device_check(s, dev);
		return;
	}
}

static void begin_stop(struct tb_state *s, const char *why);

static void on_xs(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tb_state *s = ev_userdata(loop);
	char **vec;

	(void)w;
	(void)revents;
	while ((vec = xs_check_watch(s->xs))) {
		if (!s->stopping)
			on_path(s, vec[XS_WATCH_PATH]);
		free(vec);
	}
	if (errno != EAGAIN) {
		tb_log(s, "xenstore connection lost: %s", strerror(errno));
		ev_io_stop(loop, w);
		begin_stop(s, "xenstore went away");
	}
}

static void on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tb_state *s = ev_userdata(loop);

	(void)w;
	(void)revents;
	tb_log(s, "tapdisks still running %.0f s after SIGTERM; killing them", TB_STOP_GRACE_S);
	tb_stop_all(s, SIGKILL);
}

static ev_io xs_watcher;

static void begin_stop(struct tb_state *s, const char *why)
{
	unsigned n;

	if (s->stopping)
		return;
	s->stopping = true;
	ev_io_stop(s->loop, &xs_watcher);
	n = tb_stop_all(s, SIGTERM);
	tb_log(s, "%s: stopping %u tapdisk(s)", why, n);
	ev_timer_init(&s->stop_timer, on_stop_timer, TB_STOP_GRACE_S, 0);
	ev_timer_start(s->loop, &s->stop_timer);
	tb_maybe_finish(s);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	begin_stop(ev_userdata(loop), w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvio-tapback [--engine E] [--tapdisk PATH] [--ctl-dir DIR] [--no-nbd] [--log FILE]\n"
		"Supervise pvio's block backends in dom0: watch /local/domain/0/backend/vbd3\n"
		"and /local/domain/0/backend/vbd; for each device with online=1 start one\n"
		"`tapdisk --backend DIR`; restart a tapdisk that dies abnormally while its\n"
		"device is still attached (at most %d restarts in %.0f s, then give up and\n"
		"write DIR/hotplug-error); never restart one that exited 0 (detached). On\n"
		"SIGTERM or SIGINT, stop every tapdisk, wait for them and exit 0.\n"
		"\n"
		"  --engine E      passed to each tapdisk (io_uring, io_uring:nofixed, libaio,\n"
		"                  null, faulty:...)\n"
		"  --tapdisk PATH  the tapdisk binary (default: beside pvio-tapback in a build\n"
		"                  tree, else %s/tapdisk)\n"
		"  --ctl-dir DIR   give tapdisk --ctl DIR/tapdisk-DOMID-DEVID.sock (default:\n"
		"                  tapdisk's own, $PVIO_CTL_DIR or $XENSIM_DIR/tapdisk or /run/pvio)\n"
		"  --no-nbd        do not export the disks over NBD (default: each tapdisk gets\n"
		"                  --nbd auto, an NBD socket tapdisk-DOMID-DEVID.nbd beside its\n"
		"                  control socket, for qemu-img, nbdinfo and nbdcopy in dom0)\n"
		"  --log FILE      append our log and the tapdisks' stderr to FILE (default\n"
		"                  stderr, which systemd sends to the journal)\n"
		"  --help          this text\n"
		"Connects to xenstored as libxenstore does ($XENSTORED_PATH under xensim).\n",
		TB_MAX_RESTARTS, TB_RESTART_WINDOW_S, PVIO_LIBEXECDIR);
}

/* The default tapdisk: in a build tree it sits in tapdisk/ next to our own
 * tapdisk/tapback/; installed, in pvio's libexec dir, or sbin. */
static bool find_tapdisk(char *out, size_t n)
{
	char self[PATH_MAX], *slash;
	ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *rel[] = { "tapdisk", "../tapdisk" };

	if (l > 0) {
		self[l] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			for (size_t i = 0; i < 2; i++)
				if ((size_t)snprintf(out, n, "%s/%s", self, rel[i]) < n &&
				    access(out, X_OK) == 0)
					return true;
		}
	}
	snprintf(out, n, "%s/tapdisk", PVIO_LIBEXECDIR);
	if (access(out, X_OK) == 0)
		return true;
	snprintf(out, n, "%s/tapdisk", PVIO_TAPBACK_SBINDIR);
	return access(out, X_OK) == 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "engine", required_argument, NULL, 'e' },
		{ "tapdisk", required_argument, NULL, 't' },
		{ "ctl-dir", required_argument, NULL, 'c' },
		{ "log", required_argument, NULL, 'l' },
		{ "no-nbd", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct tb_state st;
	struct tb_state *s = &st;
	char tapdisk[PATH_MAX];
	const char *log = NULL;
	ev_signal sigterm, sigint;
	int o;

	s->cfg.log_fd = 2;
	tapdisk[0] = 0;
	while ((o = getopt_long(argc, argv, "e:t:c:l:h", opts, NULL)) != -1) {
		switch (o) {
		case 'e':
			/* tapdisk checks the details (and logs them); catch typos here */
			if (strcmp(optarg, "io_uring") && strcmp(optarg, "io_uring:nofixed") &&
			    strcmp(optarg, "libaio") && strcmp(optarg, "null") && strncmp(optarg, "faulty:", 7)) {
				fprintf(stderr, "pvio-tapback: --engine takes io_uring, io_uring:nofixed, libaio, null "
					"or faulty:..., not '%s'\n",
					optarg);
				return 2;
			}
			s->cfg.engine = optarg;
			break;
		case 't':
			if (!realpath(optarg, tapdisk) || access(tapdisk, X_OK)) {
				fprintf(stderr, "pvio-tapback: --tapdisk %s is not an executable: %s\n",
					optarg, strerror(errno));
				return 2;
			}
			break;
		case 'c':
			s->cfg.ctl_dir = optarg;
			break;
		case 'l':
			log = optarg;
			break;
		case 'N':
			s->cfg.no_nbd = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "pvio-tapback: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (!tapdisk[0] && !find_tapdisk(tapdisk, sizeof(tapdisk))) {
		fprintf(stderr, "pvio-tapback: no tapdisk found (looked beside this binary, in %s and %s); pass --tapdisk\n",
			PVIO_LIBEXECDIR, PVIO_TAPBACK_SBINDIR);
		return 1;
	}
	s->cfg.tapdisk = tapdisk;
	if (log) {
		s->cfg.log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (s->cfg.log_fd < 0) {
			fprintf(stderr, "pvio-tapback: cannot open log %s: %s\n", log, strerror(errno));
			return 1;
		}
	}
	signal(SIGPIPE, SIG_IGN);

	s->xs = xs_open(0);
	if (!s->xs) {
		tb_log(s, "cannot connect to xenstored: %s", strerror(errno));
		return 1;
	}
	s->loop = ev_default_loop(0);
	if (!s->loop) {
		tb_log(s, "cannot create the event loop");
		xs_close(s->xs);
		return 1;
	}
	ev_set_userdata(s->loop, s);
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		/* watches are recursive: one on each base sees every device */
		if (!xs_watch(s->xs, bases[i], bases[i])) {
			tb_log(s, "cannot watch %s: %s", bases[i], strerror(errno));
			xs_close(s->xs);
			return 1;
		}
	}
	ev_io_init(&xs_watcher, on_xs, xs_fileno(s->xs), EV_READ);
	ev_io_start(s->loop, &xs_watcher);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(s->loop, &sigterm);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_start(s->loop, &sigint);
	tb_log(s, "started: tapdisk %s%s%s%s%s%s", tapdisk, s->cfg.engine ? ", engine " : "",
	       s->cfg.engine ? s->cfg.engine : "", s->cfg.ctl_dir ? ", ctl dir " : "",
	       s->cfg.ctl_dir ? s->cfg.ctl_dir : "", s->cfg.no_nbd ? ", no NBD export" : "");
	/* devices attached before we started; the watches' first events would
	 * also find them, and a second look changes nothing */
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
		tb_scan(s, bases[i], NULL);

	ev_run(s->loop, 0);

	tb_log(s, "all tapdisks stopped; exiting");
	tb_devices_free(s);
	xs_close(s->xs);
	if (s->cfg.log_fd != 2)
		close(s->cfg.log_fd);
	return 0;
}
