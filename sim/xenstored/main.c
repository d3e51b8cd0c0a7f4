/* SPDX-License-Identifier: MIT */
/*
 * xensim-xenstored: the xenstore daemon of xensim. Speaks the xs_wire.h
 * protocol on unix stream sockets under DIR/xenstored/: "socket" is dom0,
 * "domN.sock" (created by XS_INTRODUCE) is domain N.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "xenstored.h"

struct daemon xsd;

static void usage(FILE *fp)
{
	fprintf(fp,
		"Usage: xensim-xenstored --dir DIR [--ready-fd N] [--log FILE]\n"
		"\n"
		"The xenstore daemon of xensim, speaking the xs_wire.h protocol.\n"
		"\n"
		"  --dir DIR      create DIR/xenstored/ and listen on DIR/xenstored/socket\n"
		"                 (dom0, privileged); XS_INTRODUCE of domain N creates\n"
		"                 DIR/xenstored/domN.sock for that domain's connections\n"
		"  --ready-fd N   write one byte to fd N and close it once listening\n"
		"  --log FILE     append log lines to FILE instead of stderr\n"
		"  --help         show this help\n"
		"\n"
		"Clients: XENSTORED_PATH=DIR/xenstored/socket xenstore-ls\n"
		"SIGTERM or SIGINT removes the sockets and exits 0.\n");
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	xsd_log("signal %d: exiting", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static int parse_fd(const char *s, int *fd)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 65535)
		return -EINVAL;
	*fd = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *logpath = NULL;
	char path[4096];
	ev_signal sigterm, sigint;
	int ready_fd = -1, opt, r, rc = 1;

	while ((opt = getopt_long(argc, argv, "d:r:l:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'l': logpath = optarg; break;
		case 'r':
			if (parse_fd(optarg, &ready_fd) < 0) {
				fprintf(stderr, "xensim-xenstored: bad --ready-fd '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!dir || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (logpath && (r = log_open(logpath)) < 0) {
		fprintf(stderr, "xensim-xenstored: cannot open log %s: %s\n", logpath,
			strerror(-r));
		return 1;
	}
	/* Sockets report EPIPE; a signal would kill the daemon over one client. */
	signal(SIGPIPE, SIG_IGN);

	snprintf(path, sizeof(path), "%s/xenstored", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		xsd_log("cannot create %s: %s", path, strerror(errno));
		goto out_log;
	}
	xsd.sockdir = strdup(path);
	xsd.loop = ev_default_loop(EVFLAG_AUTO);
	xsd.store = store_new();
	if (!xsd.sockdir || !xsd.loop || !xsd.store) {
		xsd_log("cannot initialise: out of memory");
		goto out;
	}
	for (int i = 0; i < SPECIAL_COUNT; i++)
		if (perms_init_owner(&xsd.special_perms[i], 0, PERM_NONE) < 0)
			goto out;

	snprintf(path, sizeof(path), "%s/socket", xsd.sockdir);
	r = listener_open(&xsd.dom0, path, 0);
	if (r < 0) {
		xsd_log("cannot listen on %s: %s", path, strerror(-r));
		goto out;
	}
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_start(xsd.loop, &sigterm);
	ev_signal_start(xsd.loop, &sigint);
	xsd_log("listening on %s", path);

	if (ready_fd >= 0) {
		/* The launcher waits for this byte instead of sleeping. */
		if (write(ready_fd, "r", 1) != 1)
			xsd_log("--ready-fd %d: %s", ready_fd, strerror(errno));
		close(ready_fd);
	}
	ev_run(xsd.loop, 0);
	rc = 0;

	ev_signal_stop(xsd.loop, &sigterm);
	ev_signal_stop(xsd.loop, &sigint);
out:
	conns_free_all();
	domains_free_all();
	listener_close(&xsd.dom0);
	if (xsd.sockdir)
		rmdir(xsd.sockdir); /* only if empty: the log may live there */
	for (int i = 0; i < SPECIAL_COUNT; i++)
		perms_free(&xsd.special_perms[i]);
	store_free(xsd.store);
	free(xsd.sockdir);
	if (xsd.loop)
		ev_loop_destroy(xsd.loop);
out_log:
	log_close();
	return rc;
}
