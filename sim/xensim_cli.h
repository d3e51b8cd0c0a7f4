/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the xensim CLI's files (xensim.c: lifecycle, domains,
 * run; xensim_vbd.c: virtual block devices; xensim_vif.c: virtual network
 * interfaces; xensim_dev.c: what the two device kinds share). Not a library
 * interface.
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

/* ---- xensim_dev.c: the generic device steps of libxl_device.c ---- */

/* libxl's LIBXL_DESTROY_TIMEOUT: how long detach waits for the backend. */
#define XSIM_DETACH_TIMEOUT_S 10
#define XSIM_STR_(x) #x
#define XSIM_STR(x) XSIM_STR_(x)
/* Transactions that conflict are retried; a few tries is plenty for a CLI. */
#define XSIM_TX_TRIES 16

/* Where a device's three records live (libxl_device.c's path helpers). */
struct xsim_dev_paths {
	char back[128];	 /* /local/domain/0/backend/<bkind>/<domid>/<devid> */
	char front[128]; /* /local/domain/<domid>/device/<fkind>/<devid> */
	char libxl[128]; /* libxl's own record: /libxl/<domid>/device/<fkind>/<devid> */
};
struct xsim_kv {
	const char *key, *val; /* a NULL val is not written */
};

void xsim_dev_paths(struct xsim_dev_paths *p, const char *bkind, const char *fkind, uint32_t domid,
		    long devid);
/* xs_read in T (NULL when absent); whether PATH exists; DIR/KEY outside a
 * transaction. */
char *xsim_xs_get(struct xs_handle *xs, xs_transaction_t t, const char *path);
bool xsim_xs_exists(struct xs_handle *xs, xs_transaction_t t, const char *path);
char *xsim_xs_key(struct xs_handle *xs, const char *dir, const char *key);
/* In transaction T: the frontend dir (DOMID's, readable by dom0), the
 * backend dir (dom0's, readable by DOMID) and libxl's record, with their
 * keys. False with errno on a xenstore error. */
bool xsim_dev_write(struct xs_handle *xs, xs_transaction_t t, const struct xsim_dev_paths *p,
		    uint32_t domid, const struct xsim_kv *front, size_t nfront,
		    const struct xsim_kv *back, size_t nback);
/* online=0 and state=5 in one transaction, unless the backend is already
 * Closed (libxl__initiate_device_generic_remove); dies on xenstore errors. */
void xsim_dev_close(struct xs_handle *xs, const char *back);
/* Remove the three records in one transaction. */
void xsim_dev_remove(struct xs_handle *xs, const struct xsim_dev_paths *p);
/* close, wait (on a watch, at most TIMEOUT s, unless FORCE) for the
 * backend to reach Closed, warn if it did not, remove. */
void xsim_dev_detach(struct xs_handle *xs, const struct xsim_dev_paths *p, bool force, double timeout);
/* Parse detach's --timeout/--force/--help (HELP printed as is): -1 to go
 * on with optind at the positional arguments, else the exit status. */
int xsim_dev_detach_opts(int argc, char **argv, const char *help, double *timeout, bool *force);
/* S as a JSON string (null pointer: ""). */
void xsim_json_str(const char *s);

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
