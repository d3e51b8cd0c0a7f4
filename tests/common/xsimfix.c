/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "client.h"
#include "xsimfix.h"

static void bail(const char *what, int err)
{
	fprintf(stderr, "xsimfix: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

void xsimfix_start(struct xsimfix *f)
{
	const char *bin = getenv("XENSIMD_BIN");
	char fdstr[16], log[128];
	int p[2];
	char c;

	if (!bin)
		bail("XENSIMD_BIN is not set", EINVAL);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pvio-test-XXXXXX");
	if (!mkdtemp(f->dir))
		bail("mkdtemp", errno);
	snprintf(log, sizeof(log), "%s/xensimd.log", f->dir);
	if (pipe(p) < 0)
		bail("pipe", errno);
	f->xensimd = fork();
	if (f->xensimd < 0)
		bail("fork", errno);
	if (f->xensimd == 0) {
		close(p[0]);
		snprintf(fdstr, sizeof(fdstr), "%d", p[1]);
		execl(bin, bin, "--dir", f->dir, "--ready-fd", fdstr, "--log", log, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		bail("xensimd did not start", EIO);
	close(p[0]);
	setenv("XENSIM_DIR", f->dir, 1);
	unsetenv("XENSIM_DOMID");
}

void xsimfix_stop(struct xsimfix *f)
{
	char cmd[128];

	if (f->xensimd > 0) {
		int st = 0;
		kill(f->xensimd, SIGTERM);
		waitpid(f->xensimd, &st, 0);
		f->xensimd = 0;
		/* a clean exit, also under LeakSanitizer, is part of every test */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			snprintf(cmd, sizeof(cmd), "cat '%s/xensimd.log' >&2", f->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "xsimfix: no xensimd log\n");
			fprintf(stderr, "xsimfix: xensimd exited badly (status %#x)\n", st);
			exit(1);
		}
	}
	/* keep the log when a test failed? the dir is small; remove it */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "xsimfix: could not remove %s\n", f->dir);
}

static int call0(uint32_t op, const void *body, size_t len, void *rep, size_t cap)
{
	struct xsim_conn c;
	size_t rl;
	int err = xsim_connect(0, &c);

	if (err)
		return err;
	err = xsim_call(&c, op, body, len, -1, rep, cap, &rl, NULL, 0, NULL);
	xsim_disconnect(&c);
	return err;
}

uint32_t xsimfix_domain_create(const char *name, unsigned memory_mb)
{
	struct xsim_dom_create dc = { .memory_mb = memory_mb };
	uint32_t domid = 0;
	int err;

	snprintf(dc.name, sizeof(dc.name), "%s", name);
	err = call0(XSIM_DOM_CREATE, &dc, sizeof(dc), &domid, sizeof(domid));
	if (err)
		bail("domain create", err);
	return domid;
}

int xsimfix_domain_destroy(uint32_t domid)
{
	return call0(XSIM_DOM_DESTROY, &domid, 4, NULL, 0);
}

void xsimfix_sync(void)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	struct xsim_conn c;
	int err = xsim_connect(0, &c);

	if (err)
		bail("sync connect", err);
	for (int i = 0; i < 2; i++) {
		err = xsim_call(&c, XSIM_DOM_LIST, NULL, 0, -1, info, sizeof(info), NULL, NULL, 0,
				NULL);
		if (err)
			bail("sync", err);
	}
	xsim_disconnect(&c);
}

void xsimfix_become(uint32_t domid)
{
	char s[16];

	snprintf(s, sizeof(s), "%u", domid);
	setenv("XENSIM_DOMID", s, 1);
}
