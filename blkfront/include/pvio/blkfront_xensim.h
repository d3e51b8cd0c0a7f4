/* SPDX-License-Identifier: MIT */
/*
 * pvio/blkfront_xensim.h — the blkfront platform for a domU process on
 * xensim (`xensim run DOMID -- CMD`): guest pages and grants from
 * pvio/xensim.h + pvio/grant.h, event channels from pvio/evtchn.h,
 * xenstore through libxenstore ($XENSTORED_PATH, the domain's own
 * connection).  Not freestanding; sim builds only.
 */
#ifndef PVIO_BLKFRONT_XENSIM_H
#define PVIO_BLKFRONT_XENSIM_H

#include <stdint.h>

#include <pvio/blkfront.h>

struct pvio_blkfront_xensim;

/*
 * pvio_blkfront_xensim_parse_vdev - "xvdX" (X in a..z) -> (202 << 8) |
 * ((X - 'a') << 4); a plain decimal number is taken as the devid.
 * -EINVAL otherwise.
 */
int pvio_blkfront_xensim_parse_vdev(const char *vdev, uint32_t *devid);

/*
 * pvio_blkfront_xensim_open - attach to this process's domain and open
 * device/vbd/<devid> of it (@vdev as for parse_vdev; NULL: the first vbd
 * listed).  @cfg may be NULL (defaults); its frontend_dir is ignored.
 * The handshake timeouts use CLOCK_MONOTONIC.  Returns 0 with *out set,
 * or a negative errno (-ENOENT: no such device; others from
 * pvio_blkfront_open).
 */
int pvio_blkfront_xensim_open(const char *vdev, const struct pvio_blkfront_config *cfg,
			      struct pvio_blkfront_xensim **out);

/* The device, for the pvio_blkfront_* calls. */
struct pvio_blkfront *pvio_blkfront_xensim_dev(struct pvio_blkfront_xensim *x);

/* Also wake the device's wait (pvio_blkfront_poll returns) when @fd is
 * readable, e.g. an eventfd other threads write to hand it work; -1: none. */
void pvio_blkfront_xensim_set_wake_fd(struct pvio_blkfront_xensim *x, int fd);

/* The frontend directory in use (absolute). */
const char *pvio_blkfront_xensim_dir(const struct pvio_blkfront_xensim *x);

/*
 * pvio_blkfront_xensim_close - pvio_blkfront_close() then release the
 * platform (xenstore, event channels, domain).  Returns what
 * pvio_blkfront_close returned.
 */
int pvio_blkfront_xensim_close(struct pvio_blkfront_xensim *x);

#endif
