/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the xensim CLI's files (xensim.c: lifecycle, domains,
 * run; xensim_vbd.c: virtual block devices). Not a library interface.
 */
#ifndef XENSIM_CLI_H
#define XENSIM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <xenstore.h>

/* Print "xensim: MSG" on stderr and exit 1. */
void xsim_cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A dom0 (privileged) connection to this host's xenstored; dies on failure. */
struct xs_handle *xsim_cli_xs_dom0(void);
/* Parse a decimal domain id below DOMID_FIRST_RESERVED: 0 or -EINVAL. */
int xsim_cli_parse_domid(const char *s, uint32_t *out);
/* Whether xensimd knows domain DOMID; dies when xensim is not running. */
bool xsim_cli_domain_exists(uint32_t domid);

/* `xensim vbd ...`: argv[0] is "vbd". Returns the exit status. */
int xsim_cli_cmd_vbd(int argc, char **argv);
/*
 * Force-remove every VBD of DOMID, as libxl does at domain destroy: each
 * backend gets online=0 and state=5 (so a running backend notices), then the
 * backend dirs (vbd3 and vbd), the frontend dirs and libxl's own record go,
 * without waiting for backends. Returns the number of VBDs removed.
 */
int xsim_cli_vbd_remove_domain(struct xs_handle *xs, uint32_t domid);

/* `xensim vif ...` (xensim_vif.c): argv[0] is "vif". Returns the exit status. */
int xsim_cli_cmd_vif(int argc, char **argv);
/* Force-remove every vif of DOMID at domain destroy (as for VBDs). */
int xsim_cli_vif_remove_domain(struct xs_handle *xs, uint32_t domid);

#endif
