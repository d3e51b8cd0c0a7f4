/* SPDX-License-Identifier: MIT */
/*
 * pvio/netfront_xensim.h — the netfront platform for a domU process on
 * xensim (`xensim run DOMID -- CMD`): guest pages and grants from
 * pvio/xensim.h + pvio/grant.h, event channels from pvio/evtchn.h,
 * xenstore through libxenstore. Not freestanding; sim builds only.
 */
#ifndef PVIO_NETFRONT_XENSIM_H
#define PVIO_NETFRONT_XENSIM_H

#include <pvio/netfront.h>

struct pvio_netfront_xensim;

/*
 * pvio_netfront_xensim_open - attach to this process's domain and open
 * device/vif/@vif of it. @cfg may be NULL; its frontend_dir is ignored.
 * 0 with *out set, or a negative errno (-ENOENT: no such vif).
 */
int pvio_netfront_xensim_open(unsigned vif, const struct pvio_netfront_config *cfg,
			      struct pvio_netfront_xensim **out);
struct pvio_netfront *pvio_netfront_xensim_dev(struct pvio_netfront_xensim *x);
const char *pvio_netfront_xensim_dir(const struct pvio_netfront_xensim *x);
/*
 * pvio_netfront_xensim_set_user_fd - also poll @fd (-1: none) in
 * pvio_netfront_wait; readable reports PVIO_NETFRONT_EV_USER.
 */
void pvio_netfront_xensim_set_user_fd(struct pvio_netfront_xensim *x, int fd);
/* pvio_netfront_close() then release the platform; its return value. */
int pvio_netfront_xensim_close(struct pvio_netfront_xensim *x);

#endif
