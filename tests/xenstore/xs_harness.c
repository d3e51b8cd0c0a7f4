/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xs_harness.h"

#define TIMEOUT_MS 5000

static void rm_tree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static char scratch_root[256];

int xsd_scratch_begin(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(scratch_root, sizeof(scratch_root), "%s/pvio-xs-test-XXXXXX",
		 tmp ? tmp : "/tmp");
	if (!mkdtemp(scratch_root))
		return -errno;
	/* Forked test cases inherit this and put their daemon directories inside. */
	setenv("TMPDIR", scratch_root, 1);
	return 0;
}

void xsd_scratch_end(void)
{
	if (scratch_root[0])
		rm_tree(scratch_root);
	scratch_root[0] = '\0';
}

static struct xsd_inst *running;

/*
 * A failed check assertion exits the forked test without its teardown;
 * stop the daemon and remove its directory anyway.
 */
static void cleanup_at_exit(void)
{
	if (running && running->pid > 0)
		xsd_stop(running);
}

int xsd_start(struct xsd_inst *d)
{
	static bool registered;

	const char *bin = getenv("XENSTORED_BIN");
	const char *tmp = getenv("TMPDIR");
	int pfd[2], r;
	char c;
	ssize_t n;

	if (!bin)
		return -ENOENT;
	snprintf(d->dir, sizeof(d->dir), "%s/pvio-xs-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->sock, sizeof(d->sock), "%s/xenstored/socket", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/xenstored.log", d->dir);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;

	d->pid = fork();
	if (d->pid < 0) {
		r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (d->pid == 0) {
		char fdbuf[16];

		/* If the test dies on a failed assertion, take the daemon with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* The write end must survive exec; dup2 clears CLOEXEC. */
		dup2(pfd[1], 3);
		snprintf(fdbuf, sizeof(fdbuf), "3");
		execl(bin, bin, "--dir", d->dir, "--ready-fd", fdbuf, "--log", d->log,
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n != 1) {
		/* EOF: the daemon died before it was ready. */
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
		rm_tree(d->dir);
		return -ECHILD;
	}
	running = d;
	if (!registered) {
		atexit(cleanup_at_exit);
		registered = true;
	}
	return 0;
}

int xsd_stop(struct xsd_inst *d)
{
	int status;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	if (waitpid(d->pid, &status, 0) < 0)
		return -1;
	d->pid = 0;
	if (running == d)
		running = NULL;
	if (getenv("XS_TEST_KEEP_LOG")) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", d->log);
		if (system(cmd) != 0)
			fprintf(stderr, "no log\n");
	}
	rm_tree(d->dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void xsd_dom_sock(const struct xsd_inst *d, unsigned int domid, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/xenstored/dom%u.sock", d->dir, domid);
}

long xsd_rss_kib(const struct xsd_inst *d)
{
	char path[64], line[256];
	long kib = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(fp);
	return kib;
}

int xsd_log_contains(const struct xsd_inst *d, const char *needle)
{
	char line[8192];
	int found = 0;
	FILE *fp = fopen(d->log, "re");

	if (!fp)
		return 0;
	while (!found && fgets(line, sizeof(line), fp))
		found = strstr(line, needle) != NULL;
	fclose(fp);
	return found;
}

int raw_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *payload,
	     uint32_t len)
{
	struct xsd_sockmsg h = { .type = type, .req_id = req_id, .tx_id = tx_id, .len = len };
	int r = write_all(fd, &h, sizeof(h));

	if (r == 0 && len)
		r = write_all(fd, payload, len);
	return r;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int pr = poll(&pfd, 1, TIMEOUT_MS);

		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = recv(fd, p, len, 0);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? -EPIPE : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int raw_recv(int fd, struct xsd_sockmsg *hdr, char *payload, size_t cap)
{
	int r = read_all(fd, hdr, sizeof(*hdr));

	if (r < 0)
		return r;
	if (hdr->len + 1 > cap)
		return -EMSGSIZE;
	r = read_all(fd, payload, hdr->len);
	if (r < 0)
		return r;
	payload[hdr->len] = '\0';
	return 0;
}

int raw_wait_closed(int fd)
{
	char c;
	int r = read_all(fd, &c, 1);

	if (r == -EPIPE)
		return 0;
	return r < 0 ? r : -EPROTO;
}
