/* SPDX-License-Identifier: MIT */
/*
 * The device table and the per-device policy: start a tapdisk for each
 * backend dir with online=1, reap it, restart it if it died abnormally while
 * its device is still attached (bounded), never restart one that detached
 * cleanly (exit 0), and leave a removed device's tapdisk to finish its own
 * detach.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "private.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* PATH must be exactly <base>/<domid>/<devid> with decimal ids. */
static bool parse_dev_path(const char *path, uint32_t *domid, uint32_t *devid)
{
	const char *p = strstr(path, "/backend/");
	const char *d, *v;

	if (!p || strncmp(path, "/local/domain/0/backend/", 24) || p != path + 15)
		return false;
	p += 9;
	d = strchr(p, '/');
	if (!d)
		return false;
	d++;
	v = strchr(d, '/');
	if (!v)
		return false;
	return parse_u32(d, (size_t)(v - d), domid) && parse_u32(v + 1, strlen(v + 1), devid);
}

static struct tb_device *dev_find(struct tb_state *s, const char *path)
{
	for (struct tb_device *d = s->devices; d; d = d->next)
		if (!strcmp(d->path, path))
			return d;
	return NULL;
}

static void dev_free(struct tb_state *s, struct tb_device *dev)
{
	for (struct tb_device **pp = &s->devices; *pp; pp = &(*pp)->next) {
		if (*pp == dev) {
			*pp = dev->next;
			free(dev);
			return;
		}
	}
}

/* Read PATH/KEY; NULL (errno set) if absent. */
static char *read_key(struct tb_state *s, const char *dir, const char *key)
{
	char path[192];
	unsigned len;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_read(s->xs, XBT_NULL, path, &len);
}

/* Whether the device dir exists (1), is gone (0), or we cannot tell (-1). */
static int dir_exists(struct tb_state *s, const char *path)
{
	unsigned len;
	char *v = xs_read(s->xs, XBT_NULL, path, &len);

	if (v) {
		free(v);
		return 1;
	}
	return errno == ENOENT ? 0 : -1;
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents);

/*
 * A device whose tapdisk finished its detach (exit 0) keeps its dir until
 * the toolstack removes it, with state 6 (Closed).  If instead the dir
 * reads state 1 (Initialising) and online=1, the toolstack removed it and
 * attached the same vdev again before we saw the removal (a detach
 * immediately followed by an attach): a new device that needs a tapdisk.
 * Only dom0 writes the backend dir, so a guest cannot fake this.
 */
static bool dir_reattached(struct tb_state *s, const char *path)
{
	char *st = read_key(s, path, "state"), *online = read_key(s, path, "online");
	char *err = read_key(s, path, "hotplug-error"); /* we gave up on the old dir */
	bool fresh = st && online && !err && !strcmp(st, "1") && !strcmp(online, "1");

	free(st);
	free(online);
	free(err);
	return fresh;
}

static void dev_start(struct tb_state *s, struct tb_device *dev);

/* Serve a re-attached device as a new one: fresh restart budget. */
static void dev_restart_new(struct tb_state *s, struct tb_device *dev)
{
	tb_log(s, "%s: attached again after its detach; starting a tapdisk for the new device", dev->path);
	dev->done = false;
	dev->gave_up = false;
	dev->nr_restarts = 0;
	dev_start(s, dev);
}

static void dev_start(struct tb_state *s, struct tb_device *dev)
{
	char sock[256];
	const char *argv[12];
	int argc = 0, nul;
	pid_t pid;

	argv[argc++] = s->cfg.tapdisk;
	argv[argc++] = "--backend";
	argv[argc++] = dev->path;
	if (s->cfg.engine) {
		argv[argc++] = "--engine";
		argv[argc++] = s->cfg.engine;
	}
	if (s->cfg.ctl_dir) {
		snprintf(sock, sizeof(sock), "%s/tapdisk-%u-%u.sock", s->cfg.ctl_dir, dev->domid,
			 dev->devid);
		argv[argc++] = "--ctl";
		argv[argc++] = sock;
	}
	if (!s->cfg.no_nbd) {
		/* dom0 access to the disk: beside the control socket */
		argv[argc++] = "--nbd";
		argv[argc++] = "auto";
	}
	argv[argc] = NULL;

	/* opened before fork: the child may only make async-signal-safe calls
	 * (libxenstore runs a reader thread in this process) */
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		tb_log(s, "%s: cannot fork a tapdisk: %s", dev->path, strerror(errno));
		if (nul >= 0)
			close(nul);
		return;
	}
	if (pid == 0) {
		static const char msg[] = "pvio-tapback: exec of tapdisk failed\n";
		/* its own process group: a terminal's ^C reaches us, and we stop
		 * the tapdisks in order */
		setpgid(0, 0);
		if (nul >= 0)
			dup2(nul, 0);
		if (s->cfg.log_fd != 2)
			dup2(s->cfg.log_fd, 2);
		dup2(2, 1);
		close_range(3, ~0u, 0);
		execv(argv[0], (char *const *)argv);
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing else to do */
		}
		_exit(127);
	}
	if (nul >= 0)
		close(nul);
	dev->pid = pid;
	ev_child_init(&dev->child, on_child, pid, 0);
	ev_child_start(s->loop, &dev->child);
	tb_log(s, "%s: started tapdisk pid %d (domain %u, devid %u)", dev->path, (int)pid,
	       dev->domid, dev->devid);
}

/* Write B/hotplug-error only if B still exists: a plain write would
 * re-create a dir the toolstack just removed. */
static void note_error(struct tb_state *s, const char *path, const char *msg)
{
	char key[192];

	snprintf(key, sizeof(key), "%s/hotplug-error", path);
	for (int tries = 0; tries < 8; tries++) {
		xs_transaction_t t = xs_transaction_start(s->xs);
		unsigned len;
		char *v;

		if (t == XBT_NULL)
			return;
		v = xs_read(s->xs, t, path, &len);
		if (!v) {
			xs_transaction_end(s->xs, t, true);
			return;
		}
		free(v);
		if (!xs_write(s->xs, t, key, msg, (unsigned)strlen(msg))) {
			xs_transaction_end(s->xs, t, true);
			return;
		}
		if (xs_transaction_end(s->xs, t, false) || errno != EAGAIN)
			return;
	}
}

/* True if another restart is allowed now (and records it). */
static bool restart_allowed(struct tb_state *s, struct tb_device *dev)
{
	double now = ev_now(s->loop);
	/* the slot holding the oldest of the last TB_MAX_RESTARTS restarts */
	unsigned slot = dev->nr_restarts % TB_MAX_RESTARTS;

	if (dev->nr_restarts >= TB_MAX_RESTARTS && now - dev->restarts[slot] < TB_RESTART_WINDOW_S)
		return false;
	dev->restarts[slot] = now;
	dev->nr_restarts++;
	return true;
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	struct tb_device *dev = container_of(w, struct tb_device, child);
	struct tb_state *s = ev_userdata(loop);
	int st = w->rstatus, exists;
	char how[64];
	char *online;
	bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;

	(void)revents;
	ev_child_stop(loop, w);
	if (WIFSIGNALED(st))
		snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
	dev->pid = 0;

	if (s->stopping) {
		tb_log(s, "%s: tapdisk pid %d %s (shutting down)", dev->path, (int)w->rpid, how);
		tb_maybe_finish(s);
		return;
	}
	exists = dir_exists(s, dev->path);
	if (clean) {
		/* exit 0 is a finished detach; a new attach makes a new dir */
		dev->done = true;
		tb_log(s, "%s: tapdisk pid %d %s (detached); not restarting", dev->path,
		       (int)w->rpid, how);
		if (exists == 0)
			dev_free(s, dev);
		else if (exists == 1 && dir_reattached(s, dev->path))
			dev_restart_new(s, dev);
		return;
	}
	if (exists != 1) {
		tb_log(s, "%s: tapdisk pid %d %s; device %s, not restarting", dev->path,
		       (int)w->rpid, how, exists == 0 ? "removed" : "unreadable");
		if (exists == 0)
			dev_free(s, dev);
		return;
	}
	online = read_key(s, dev->path, "online");
	if (!online || strcmp(online, "1")) {
		tb_log(s, "%s: tapdisk pid %d %s; device is offline, not restarting", dev->path,
		       (int)w->rpid, how);
		free(online);
		return;
	}
	free(online);
	if (!restart_allowed(s, dev)) {
		char msg[160];

		dev->gave_up = true;
		snprintf(msg, sizeof(msg),
			 "tapdisk died %u times within %.0f s (last: %s); pvio-tapback gave up",
			 TB_MAX_RESTARTS + 1, TB_RESTART_WINDOW_S, how);
		tb_log(s, "%s: %s", dev->path, msg);
		note_error(s, dev->path, msg);
		return;
	}
	tb_log(s, "%s: tapdisk pid %d %s while attached; restarting (restart %u)", dev->path,
	       (int)w->rpid, how, dev->nr_restarts);
	dev_start(s, dev);
}

void tb_device_check(struct tb_state *s, const char *path)
{
	struct tb_device *dev = dev_find(s, path);
	uint32_t domid, devid;
	char *online;
	int exists;

	if (!parse_dev_path(path, &domid, &devid) || strlen(path) >= sizeof(dev->path))
		return;
	exists = dir_exists(s, path);
	if (exists < 0)
		return;
	if (exists == 0) {
		if (dev && dev->present) {
			dev->present = false;
			if (dev->pid)
				tb_log(s, "%s: device removed; tapdisk pid %d finishes its own detach",
				       path, (int)dev->pid);
		}
		if (dev && !dev->pid)
			dev_free(s, dev);
		return;
	}
	if (!dev) {
		dev = calloc(1, sizeof(*dev));
		if (!dev) {
			tb_log(s, "%s: out of memory", path);
			return;
		}
		snprintf(dev->path, sizeof(dev->path), "%s", path);
		dev->domid = domid;
		dev->devid = devid;
		dev->next = s->devices;
		s->devices = dev;
		tb_log(s, "%s: new device (domain %u, devid %u)", path, domid, devid);
	}
	dev->present = true;
	if ((dev->done || dev->gave_up) && !dev->pid && !s->stopping && dir_reattached(s, path)) {
		dev_restart_new(s, dev);
		return;
	}
	if (dev->pid || dev->done || dev->gave_up || s->stopping)
		return;
	online = read_key(s, path, "online");
	if (online && !strcmp(online, "1"))
		dev_start(s, dev);
	free(online);
}

void tb_scan(struct tb_state *s, const char *base, const char *domid)
{
	size_t blen = strlen(base);
	char path[192];
	char **doms, *one[1];
	unsigned nd;

	/* devices we know of under this base (and domid): are they still there? */
	for (struct tb_device *d = s->devices, *next; d; d = next) {
		next = d->next;
		if (strncmp(d->path, base, blen) || d->path[blen] != '/')
			continue;
		if (domid) {
			size_t l = strlen(domid);
			if (strncmp(d->path + blen + 1, domid, l) || d->path[blen + 1 + l] != '/')
				continue;
		}
		tb_device_check(s, d->path);
	}
	if (domid) {
		one[0] = (char *)domid;
		doms = one;
		nd = 1;
	} else {
		doms = xs_directory(s->xs, XBT_NULL, base, &nd);
		if (!doms)
			return;
	}
	for (unsigned i = 0; i < nd; i++) {
		char **devs;
		unsigned nv;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", base, doms[i]) >= sizeof(path))
			continue;
		devs = xs_directory(s->xs, XBT_NULL, path, &nv);
		for (unsigned j = 0; devs && j < nv; j++) {
			char dp[192];

			if ((size_t)snprintf(dp, sizeof(dp), "%s/%s/%s", base, doms[i], devs[j]) <
			    sizeof(dp))
				tb_device_check(s, dp);
		}
		free(devs);
	}
	if (doms != one)
		free(doms);
}

unsigned tb_stop_all(struct tb_state *s, int sig)
{
	unsigned n = 0;

	for (struct tb_device *d = s->devices; d; d = d->next) {
		if (!d->pid)
			continue;
		tb_log(s, "%s: sending signal %d to tapdisk pid %d", d->path, sig, (int)d->pid);
		kill(d->pid, sig);
		n++;
	}
	return n;
}

unsigned tb_running(struct tb_state *s)
{
	unsigned n = 0;

	for (struct tb_device *d = s->devices; d; d = d->next)
		n += d->pid != 0;
	return n;
}

void tb_devices_free(struct tb_state *s)
{
	while (s->devices) {
		struct tb_device *d = s->devices;
		s->devices = d->next;
		free(d);
	}
}
