/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "pvio/grant.h"
#include "guestagent.h"
#include "xsimfix.h"

struct msg {
	int32_t cmd;
	uint32_t page, arg, to;
	int64_t ret;
};

#define MAX_PAGES 64

static void agent(int fd, uint32_t domid)
{
	struct xsim_domain *d;
	uint8_t *pages[MAX_PAGES];
	uint32_t npages = 0;
	struct msg m;
	int err;

	xsimfix_become(domid);
	err = xsim_domain_open(&d);
	if (err) {
		fprintf(stderr, "guest agent: xsim_domain_open: %s\n", strerror(-err));
		_exit(2);
	}
	while (read(fd, &m, sizeof(m)) == sizeof(m)) {
		m.ret = -EINVAL;
		switch (m.cmd) {
		case GA_ALLOC: {
			void *va;
			uint64_t gfn;
			if (npages + m.arg > MAX_PAGES)
				break;
			m.ret = xsim_pages_alloc(d, m.arg, &va, &gfn);
			if (m.ret == 0) {
				m.ret = npages;
				for (uint32_t i = 0; i < m.arg; i++)
					pages[npages++] = (uint8_t *)va + i * 4096;
			}
			break;
		}
		case GA_GRANT: {
			grant_ref_t ref;
			if (m.page >= npages)
				break;
			m.ret = pvio_gnt_grant_page(d, (domid_t)m.to, pages[m.page], (int)m.arg, &ref);
			if (m.ret == 0)
				m.ret = ref;
			break;
		}
		case GA_END:
			m.ret = pvio_gnt_end_access(d, m.page);
			if (m.ret == 0)
				pvio_gnt_free_refs(d, 1, &m.page);
			break;
		case GA_FILL:
			if (m.page >= npages)
				break;
			for (uint32_t i = 0; i < 4096; i++)
				pages[m.page][i] = ga_pattern(m.arg, i);
			m.ret = 0;
			break;
		case GA_CHECK:
			if (m.page >= npages)
				break;
			m.ret = 0;
			for (uint32_t i = 0; i < 4096; i++)
				if (pages[m.page][i] != ga_pattern(m.arg, i)) {
					m.ret = -EILSEQ;
					break;
				}
			break;
		case GA_EXIT:
			m.ret = 0;
			if (write(fd, &m, sizeof(m)) < 0)
				_exit(3);
			xsim_domain_close(d);
			_exit(0);
		}
		if (write(fd, &m, sizeof(m)) != sizeof(m))
			_exit(3);
	}
	_exit(0);
}

void ga_start(struct ga *g, uint32_t domid)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	g->pid = fork();
	if (g->pid < 0)
		abort();
	if (g->pid == 0) {
		close(sv[0]);
		agent(sv[1], domid);
	}
	close(sv[1]);
	g->fd = sv[0];
}

int64_t ga_do(struct ga *g, int cmd, uint32_t page, uint32_t arg, uint32_t to)
{
	struct msg m = { .cmd = cmd, .page = page, .arg = arg, .to = to };

	if (send(g->fd, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m) ||
	    read(g->fd, &m, sizeof(m)) != sizeof(m))
		return -EPIPE;
	return m.ret;
}

int ga_stop(struct ga *g)
{
	int st = 0;

	if (g->pid > 0)
		ga_do(g, GA_EXIT, 0, 0, 0);
	close(g->fd);
	if (g->pid > 0)
		waitpid(g->pid, &st, 0);
	return st;
}
