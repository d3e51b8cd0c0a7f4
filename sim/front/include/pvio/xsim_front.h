/* SPDX-License-Identifier: MIT */
/*
 * pvio/xsim_front.h — platform services for frontend drivers (blkfront,
 * netfront) running in a domU process on xensim. Each function matches the
 * member of the same name in struct pvio_blkfront_ops / pvio_netfront_ops;
 * @ctx is the struct xsim_front. All return 0 or a negative errno unless
 * said otherwise. One thread at a time.
 */
#ifndef PVIO_XSIM_FRONT_H
#define PVIO_XSIM_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xs_handle;
struct xsim_front;

/* Bits of xsim_front_wait(); blkfront's and netfront's EV_* have these values. */
#define XSIM_FRONT_EV_EVTCHN 1u /* our event channel(s) fired */
#define XSIM_FRONT_EV_XS 2u	/* a xenstore watch fired */
#define XSIM_FRONT_EV_USER 4u	/* the fd set with xsim_front_set_user_fd is readable */

/* Attach to this process's domain, its xenstore connection and an event
 * channel handle; @token names our xenstore watches. */
int xsim_front_open(const char *token, struct xsim_front **out);
void xsim_front_close(struct xsim_front *x);
struct xs_handle *xsim_front_xs(struct xsim_front *x);
uint32_t xsim_front_domid(const struct xsim_front *x);
/* Also wake xsim_front_wait() when @fd is readable (-1: none). */
void xsim_front_set_user_fd(struct xsim_front *x, int fd);

void *xsim_front_zalloc(void *ctx, size_t size);
void xsim_front_free(void *ctx, void *p);
int xsim_front_page_alloc(void *ctx, unsigned n, void **va, uint64_t *gfn);
void xsim_front_page_free(void *ctx, void *va, unsigned n);
int xsim_front_grant(void *ctx, uint16_t to, uint64_t gfn, bool ro, uint32_t *ref);
int xsim_front_end_grant(void *ctx, uint32_t ref);
int xsim_front_evtchn_alloc(void *ctx, uint16_t remote, uint32_t *port);
int xsim_front_evtchn_notify(void *ctx, uint32_t port);
void xsim_front_evtchn_close(void *ctx, uint32_t port);
int xsim_front_xs_read(void *ctx, const char *path, char *buf, size_t size);
int xsim_front_xs_write_many(void *ctx, unsigned n, const char *const *paths, const char *const *vals);
int xsim_front_xs_watch(void *ctx, const char *path);
void xsim_front_xs_unwatch(void *ctx, const char *path);
/* Remove @path and its children; 0 also when it was absent. */
int xsim_front_xs_rm(void *ctx, const char *path);
int xsim_front_wait(void *ctx, int timeout_ms);
uint64_t xsim_front_now_ms(void *ctx);
uint64_t xsim_front_now_us(void *ctx);

#endif
