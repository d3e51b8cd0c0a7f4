/* SPDX-License-Identifier: MIT */
/* Test fixture: a private xensimd in a fresh directory, domains, and sync. */
#ifndef PVIO_TEST_XSIMFIX_H
#define PVIO_TEST_XSIMFIX_H

#include <stdint.h>
#include <sys/types.h>

struct xsimfix {
	char dir[64];
	pid_t xensimd;
};

/* Start xensimd ($XENSIMD_BIN) in a new mkdtemp directory and point
 * XENSIM_DIR at it. Aborts the test program on failure. */
void xsimfix_start(struct xsimfix *f);
void xsimfix_stop(struct xsimfix *f);
/* Create / destroy a domU through the hypervisor socket (as dom0). */
uint32_t xsimfix_domain_create(const char *name, unsigned memory_mb);
int xsimfix_domain_destroy(uint32_t domid);
/*
 * Wait until xensimd has handled everything that happened before this call
 * (such as the close of a dead process's connections): two round trips, the
 * second of which starts after a full event-loop pass that saw the first.
 */
void xsimfix_sync(void);
/* Become a process of @domid (in a forked child): sets XENSIM_DOMID. */
void xsimfix_become(uint32_t domid);

#endif
