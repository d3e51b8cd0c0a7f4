/* SPDX-License-Identifier: MIT */
/*
 * Introduced domains. On real Xen, XS_INTRODUCE hands xenstored a ring page
 * and an event channel; in xensim it creates DIR/xenstored/domN.sock, and
 * every connection accepted there speaks for domain N.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch.h"
#include "xenstored.h"

static struct domain *find(uint32_t domid)
{
	for (struct domain *d = xsd.domains; d; d = d->next)
		if (d->domid == domid)
			return d;
	return NULL;
}

bool domain_is_introduced(uint32_t domid)
{
	return domid == 0 || find(domid) != NULL;
}

int domain_introduce(uint32_t domid, unsigned long mfn, unsigned int port)
{
	char path[4096];
	struct domain *d;
	int r;

	if (domid == 0)
		return -EINVAL;
	d = find(domid);
	if (d) {
		/* xenstored: re-introduction rebinds the ring; no new event. */
		d->mfn = mfn;
		d->port = port;
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/dom%u.sock", xsd.sockdir, domid);
	r = listener_open(&d->lst, path, domid);
	if (r < 0) {
		xsd_log("introduce dom%u: cannot listen on %s: %s", domid, path, strerror(-r));
		free(d);
		return r == -ENOMEM ? r : -EIO;
	}
	d->domid = domid;
	d->mfn = mfn;
	d->port = port;
	d->next = xsd.domains;
	xsd.domains = d;
	xsd_log("introduced dom%u (mfn %lu, port %u): %s", domid, mfn, port, path);
	watch_fire_special(SPECIAL_INTRODUCE);
	return 0;
}

static void domain_free(struct domain *d)
{
	listener_close(&d->lst);
	free(d);
}

int domain_release(uint32_t domid)
{
	struct domain *d = NULL;

	for (struct domain **pp = &xsd.domains; *pp; pp = &(*pp)->next) {
		if ((*pp)->domid == domid) {
			d = *pp;
			*pp = d->next;
			break;
		}
	}
	if (!d)
		return -ENOENT;
	for (struct conn *c = xsd.conns; c; c = c->next)
		if (c->domid == domid)
			conn_kill(c, "domain released");
	domain_free(d);
	xsd_log("released dom%u", domid);
	watch_fire_special(SPECIAL_RELEASE);
	return 0;
}

void domains_free_all(void)
{
	while (xsd.domains) {
		struct domain *d = xsd.domains;

		xsd.domains = d->next;
		domain_free(d);
	}
}
