/* SPDX-License-Identifier: MIT */
/*
 * Test harness for xensim-xenstored: start a private daemon in a fresh
 * mkdtemp directory (path from $XENSTORED_BIN), wait for its --ready-fd
 * byte, stop and reap it. Raw wire helpers for tests that must send what
 * libxenstore never would.
 */
#ifndef XS_HARNESS_H
#define XS_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

#include <xen/io/xs_wire.h>

struct xsd_inst {
	pid_t pid;
	char dir[256];
	char sock[320];   /* DIR/xenstored/socket (dom0) */
	char log[320];
};

/*
 * One scratch directory per test program, made in the unforked parent: a
 * check test that fails leaves via _exit() without its teardown, so the
 * parent removes everything at the end. Sets TMPDIR for xsd_start().
 */
int xsd_scratch_begin(void);
void xsd_scratch_end(void);

/* Start a daemon; returns 0 or -errno. */
int xsd_start(struct xsd_inst *d);
/* SIGTERM, reap; returns the exit status (0 expected) or -1. Removes DIR. */
int xsd_stop(struct xsd_inst *d);
/* DIR/xenstored/domN.sock into buf. */
void xsd_dom_sock(const struct xsd_inst *d, unsigned int domid, char *buf, size_t cap);
/* VmRSS of the daemon in KiB, or -1. */
long xsd_rss_kib(const struct xsd_inst *d);
/* Does the daemon's log contain needle? */
int xsd_log_contains(const struct xsd_inst *d, const char *needle);

/* Raw client: connect, send, receive one message (5 s timeout). */
int raw_connect(const char *path);
int raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *payload,
	     uint32_t len);
/* Receive one message; payload gets a NUL appended. Returns 0, -ETIMEDOUT, -EPIPE on EOF. */
int raw_recv(int fd, struct xsd_sockmsg *hdr, char *payload, size_t cap);
/* Wait for EOF (peer closed) within 5 s: 0 if closed, -ETIMEDOUT, -EPROTO if data came. */
int raw_wait_closed(int fd);

#endif
