/* SPDX-License-Identifier: MIT */
/*
 * The vif handshake of io/netif.h, backend side (PROTOCOL-NOTES §3 vif):
 * write our features, go InitWait once the frontend is Initialising,
 * connect when it is Connected (or Initialised), follow Closing/Closed and
 * a frontend that comes back (Initialising again, online still 1), and
 * leave when the toolstack sets online=0 or removes our directory.
 * Every frontend value is parsed and range-checked before use.
 *
 * Multi-queue (io/netif.h): we offer multi-queue-max-queues = --max-queues;
 * a frontend that writes multi-queue-num-queues = N (1..max) puts each
 * queue's tx-ring-ref, rx-ring-ref and event-channel(-tx/-rx) under
 * queue-0/ .. queue-(N-1)/ of its directory; without the key (or with 1)
 * they are at the top, as before multi-queue. The "rate" key is read at
 * start and again whenever our directory changes (Linux netback watches
 * it too); a value we cannot parse is logged and ignored, and the limit in
 * force stays.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xengnttab.h>

#include "pvio/grant.h"
#include "private.h"

enum { XB_UNKNOWN = 0, XB_INITIALISING, XB_INITWAIT, XB_INITIALISED, XB_CONNECTED, XB_CLOSING, XB_CLOSED };

static char *xs_get(struct nb_vif *v, const char *dir, const char *key)
{
	char path[256];
	unsigned int len;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_read(v->xs, XBT_NULL, path, &len);
}

/* A peer's number: digits only, in range. -ENOENT if absent. */
static int read_uint(struct nb_vif *v, const char *dir, const char *key, unsigned long max,
		     unsigned long *out)
{
	char *s = xs_get(v, dir, key), *end;
	unsigned long n;

	if (!s)
		return -ENOENT;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (!*s || *s < '0' || *s > '9' || errno || *end || n > max) {
		free(s);
		return -EINVAL;
	}
	free(s);
	*out = n;
	return 0;
}

/* A 0/1 feature flag; absent or garbage reads as @dflt / 0. */
static bool read_flag(struct nb_vif *v, const char *key, bool dflt)
{
	unsigned long n;
	int err = read_uint(v, v->frontend, key, 1, &n);

	if (err == -ENOENT)
		return dflt;
	return err == 0 && n == 1;
}

static int write_key(struct nb_vif *v, xs_transaction_t t, const char *key, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", v->backend, key);
	return xs_write(v->xs, t, path, val, (unsigned)strlen(val)) ? 0 : -errno;
}

static void set_state(struct nb_vif *v, int st)
{
	char s[4];

	if (v->state == st)
		return;
	snprintf(s, sizeof(s), "%d", st);
	if (write_key(v, XBT_NULL, "state", s))
		nb_log(v, "cannot write state %d: %s", st, strerror(errno));
	else
		nb_log(v, "state %d -> %d", v->state, st);
	v->state = st;
}

static void disconnect(struct nb_vif *v)
{
	if (v->ev) {
		for (unsigned i = 0; i < v->max_queues; i++)
			nb_event_stop(&v->q[i]);
		pvio_evtchn_ev_stop(v->ev);
		pvio_evtchn_close(v->ev); /* unbinds: the frontend sees the ports close */
		v->ev = NULL;
	}
	for (unsigned i = 0; i < v->max_queues; i++) {
		struct nb_queue *q = &v->q[i];
		if (q->tx_sring)
			xengnttab_unmap(v->xgt, q->tx_sring, 1);
		if (q->rx_sring)
			xengnttab_unmap(v->xgt, q->rx_sring, 1);
		q->tx_sring = q->rx_sring = NULL;
		nb_tx_reset(q);
		nb_rx_flush(q);
	}
	if (v->connected)
		nb_log(v, "disconnected (tx %llu packets, rx %llu packets so far)",
		       (unsigned long long)v->st.tx_packets, (unsigned long long)v->st.rx_packets);
	v->connected = false;
	v->disabled = false;
	v->nq = 0;
	nb_rate_stop(v);
	nb_stats_write(v);
}

/* Map one queue's rings and bind its event channel(s); keys under @dir. */
static int connect_queue(struct nb_vif *v, struct nb_queue *q, const char *dir)
{
	unsigned long txref, rxref, port = 0, ptx = 0, prx = 0;
	uint32_t r;
	int err;

	if (read_uint(v, dir, "tx-ring-ref", UINT32_MAX, &txref) ||
	    read_uint(v, dir, "rx-ring-ref", UINT32_MAX, &rxref)) {
		nb_log(v, "refusing: %s: tx-ring-ref/rx-ring-ref missing or not grant refs", dir);
		return -EINVAL;
	}
	q->split = false;
	if (read_uint(v, dir, "event-channel", 65535, &port) == 0 && port) {
		ptx = prx = port;
	} else if (read_uint(v, dir, "event-channel-tx", 65535, &ptx) == 0 &&
		   read_uint(v, dir, "event-channel-rx", 65535, &prx) == 0 && ptx && prx && ptx != prx) {
		q->split = true;
	} else {
		nb_log(v, "refusing: %s: no valid event-channel or event-channel-tx/-rx pair", dir);
		return -EINVAL;
	}
	r = (uint32_t)txref;
	err = pvio_gnt_map_batch(v->xgt, v->domid, 1, &r, 1, &q->tx_sring, NULL);
	if (err) {
		q->tx_sring = NULL;
		nb_log(v, "refusing: cannot map tx ring grant %lu: %s", txref, strerror(-err));
		return err;
	}
	r = (uint32_t)rxref;
	err = pvio_gnt_map_batch(v->xgt, v->domid, 1, &r, 1, &q->rx_sring, NULL);
	if (err) {
		q->rx_sring = NULL;
		nb_log(v, "refusing: cannot map rx ring grant %lu: %s", rxref, strerror(-err));
		return err;
	}
	if (pvio_ring_netif_tx_back_init(&q->tx, q->tx_sring, NB_PAGE) <= 0 ||
	    pvio_ring_netif_rx_back_init(&q->rx, q->rx_sring, NB_PAGE) <= 0)
		return -EINVAL;
	/* a ring that starts out overrun is garbage (LNB checks at attach) */
	if (pvio_ring_back_poll_requests(&q->tx) < 0 || pvio_ring_back_poll_requests(&q->rx) < 0) {
		nb_log(v, "refusing: %s: the rings start with producers past their size", dir);
		return -EPROTO;
	}
	/* late-EOI ports (event.c): an event storm costs bounded work */
	err = nb_event_bind(q, &q->ptx, (evtchn_port_t)ptx, false);
	if (err < 0) {
		nb_log(v, "refusing: cannot bind event channel %lu: %s", ptx, strerror(-err));
		return err;
	}
	q->port_tx = q->port_rx = q->ptx.port;
	if (q->split) {
		err = nb_event_bind(q, &q->prx, (evtchn_port_t)prx, true);
		if (err < 0) {
			nb_log(v, "refusing: cannot bind event channel %lu: %s", prx, strerror(-err));
			return err;
		}
		q->port_rx = q->prx.port;
	}
	nb_log(v, "queue %u: tx ref %lu rx ref %lu, %s event channel%s %lu/%lu", q->id, txref, rxref,
	       q->split ? "split" : "one", q->split ? "s" : "", ptx, prx);
	return 0;
}

static int connect_rings(struct nb_vif *v)
{
	unsigned long n = 1;
	const char *fe = v->frontend;
	int err;

	err = read_uint(v, fe, "multi-queue-num-queues", NB_MAX_QUEUES, &n);
	if (err == -EINVAL || (err == 0 && (n == 0 || n > v->max_queues))) {
		char *s = xs_get(v, fe, "multi-queue-num-queues");
		nb_log(v, "refusing: multi-queue-num-queues '%.32s' is not 1..%u (multi-queue-max-queues)",
		       s ? s : "?", v->max_queues);
		free(s);
		return -EINVAL;
	}
	if (err)
		n = 1;
	if (!read_flag(v, "request-rx-copy", false)) {
		nb_log(v, "refusing: frontend did not write request-rx-copy=1 (rx-flip is unsupported)");
		return -EOPNOTSUPP;
	}
	if (!read_flag(v, "feature-rx-notify", false)) {
		nb_log(v, "refusing: feature-rx-notify is mandatory");
		return -EOPNOTSUPP;
	}
	v->f_rx_notify = true;
	v->f_sg = read_flag(v, "feature-sg", false);
	v->f_csum = !read_flag(v, "feature-no-csum-offload", false);
	v->f_ipv6_csum = read_flag(v, "feature-ipv6-csum-offload", false);
	/* GSO needs sg (a 64 KiB packet spans pages) and checksum offload */
	v->f_gso4 = v->f_sg && v->f_csum && read_flag(v, "feature-gso-tcpv4", false);
	v->f_gso6 = v->f_sg && v->f_ipv6_csum && read_flag(v, "feature-gso-tcpv6", false);

	err = pvio_evtchn_open(&v->ev);
	if (err) {
		nb_log(v, "cannot open event channels: %s", strerror(-err));
		return err;
	}
	for (unsigned i = 0; i < n; i++) {
		char dir[160];

		if (n == 1)
			snprintf(dir, sizeof(dir), "%s", fe);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", fe, i);
		err = connect_queue(v, &v->q[i], dir);
		if (err)
			return err;
	}
	err = nb_tap_set_offload(v->q[0].tapfd, v->f_csum, v->f_gso4, v->f_gso6);
	if (err) {
		nb_log(v, "cannot set TAP offloads: %s", strerror(-err));
		return err;
	}
	/* the kernel spreads flows over the attached TAP queues only */
	for (unsigned i = 1; i < v->max_queues; i++) {
		struct nb_queue *q = &v->q[i];
		bool want = i < n;
		if (q->tap_detached == !want)
			continue;
		err = nb_tap_queue_attach(q->tapfd, want);
		if (err) {
			nb_log(v, "cannot %s TAP queue %u: %s", want ? "attach" : "detach", i, strerror(-err));
			return err;
		}
		q->tap_detached = !want;
	}
	v->nq = (unsigned)n;
	pvio_evtchn_ev_start(v->ev, v->loop);
	v->connected = true;
	v->disabled = false;
	nb_log(v, "connected: %u queue%s; sg %d csum %d ipv6-csum %d gso-tcpv4 %d gso-tcpv6 %d rx-notify %d; "
	       "rate %llu bytes per %llu us", v->nq, v->nq > 1 ? "s" : "", v->f_sg, v->f_csum, v->f_ipv6_csum,
	       v->f_gso4, v->f_gso6, v->f_rx_notify, (unsigned long long)v->rate_bytes,
	       (unsigned long long)v->rate_usec);
	nb_stats_write(v); /* before we say Connected: the queue count is there */
	return 0;
}

/*
 * The toolstack's "rate" key ("BYTES,USECS", libxl's form): applied when it
 * changes; absent means no limit. A value we cannot parse is refused with
 * a log line, once per value, and the limit in force stays (a typo must
 * not lift a limit).
 */
static void read_rate(struct nb_vif *v)
{
	char *s = xs_get(v, v->backend, "rate");
	uint64_t b = 0, us = 0;

	/* act on changes only: our directory's watch fires for every key */
	if (!s ? v->rate_absent : !v->rate_absent && !strncmp(s, v->rate_str, sizeof(v->rate_str) - 1)) {
		free(s);
		return;
	}
	v->rate_absent = !s;
	snprintf(v->rate_str, sizeof(v->rate_str), "%s", s ? s : "");
	v->stats_dirty = true;
	if (s && (strlen(s) >= sizeof(v->rate_str) || nb_rate_parse(s, &b, &us))) {
		nb_log(v, "ignoring rate '%.40s%s': not BYTES,USECS with 1 <= BYTES <= 2^40 and 1 <= USECS <= "
		       "10000000; the limit stays %llu bytes per %llu us", s, strlen(s) > 40 ? "..." : "",
		       (unsigned long long)v->rate_bytes, (unsigned long long)v->rate_usec);
		free(s);
		return;
	}
	free(s);
	if (b == v->rate_bytes && us == v->rate_usec)
		return;
	if (b)
		nb_log(v, "rate limit: %llu bytes per %llu us (%.0f bytes/s) on guest transmit",
		       (unsigned long long)b, (unsigned long long)us, (double)b * 1e6 / (double)us);
	else
		nb_log(v, "rate limit: none (rate key removed)");
	nb_rate_set(v, b, us);
}

static int frontend_state(struct nb_vif *v)
{
	unsigned long st;

	if (read_uint(v, v->frontend, "state", 7, &st))
		return -1; /* gone or garbage */
	return (int)st;
}

void nb_xenbus_fatal(struct nb_vif *v, const char *why)
{
	v->st.tx_fatal++;
	v->stats_dirty = true;
	nb_log(v, "fatal: %s: vif disabled until the frontend reconnects (fatal errors %llu)", why,
	       (unsigned long long)v->st.tx_fatal);
	v->disabled = true;
	set_state(v, XB_CLOSING);
	nb_stats_write(v);
}

void nb_xenbus_changed(struct nb_vif *v)
{
	unsigned long online;
	char *s;
	int fs;

	if (v->quit)
		return;
	s = xs_get(v, v->backend, "state");
	if (!s) {
		nb_log(v, "backend directory removed: leaving");
		disconnect(v);
		v->quit = true;
		ev_break(v->loop, EVBREAK_ALL);
		return;
	}
	free(s);
	read_rate(v);
	if (read_uint(v, v->backend, "online", 1, &online) == 0 && online == 0) {
		nb_log(v, "toolstack set online=0: closing");
		disconnect(v);
		set_state(v, XB_CLOSED);
		v->quit = true;
		ev_break(v->loop, EVBREAK_ALL);
		return;
	}
	fs = frontend_state(v);
	switch (fs) {
	case XB_INITIALISING:
		if (v->connected)
			disconnect(v); /* the frontend restarted */
		set_state(v, XB_INITWAIT);
		break;
	case XB_INITWAIT:
		break;
	case XB_INITIALISED:
	case XB_CONNECTED:
		if (v->connected || v->disabled)
			break;
		if (v->state != XB_INITWAIT)
			set_state(v, XB_INITWAIT);
		if (connect_rings(v)) {
			disconnect(v);
			set_state(v, XB_CLOSING);
			break;
		}
		set_state(v, XB_CONNECTED);
		for (unsigned i = 0; i < v->nq; i++) {
			nb_tx_kick(&v->q[i]);
			nb_rx_kick(&v->q[i]);
		}
		break;
	case XB_CLOSING:
		disconnect(v);
		set_state(v, XB_CLOSING);
		break;
	case XB_CLOSED:
	case XB_UNKNOWN:
		disconnect(v);
		if (v->state != XB_INITIALISING)
			set_state(v, XB_CLOSED);
		break;
	default:
		if (v->connected || v->state > XB_INITIALISING) {
			nb_log(v, "frontend state unreadable: disconnecting");
			disconnect(v);
			set_state(v, XB_CLOSED);
		}
		break;
	}
}

int nb_xenbus_start(struct nb_vif *v)
{
	unsigned long fid;
	char *fe, path[256];
	char maxq[12];
	xs_transaction_t t;
	int err;

	fe = xs_get(v, v->backend, "frontend");
	if (!fe || strlen(fe) >= sizeof(v->frontend) || fe[0] != '/') {
		free(fe);
		nb_log(v, "no usable frontend key under %s", v->backend);
		return -ENOENT;
	}
	snprintf(v->frontend, sizeof(v->frontend), "%s", fe);
	free(fe);
	if (read_uint(v, v->backend, "frontend-id", 32751, &fid) || fid != v->domid) {
		nb_log(v, "frontend-id does not match the backend path's domain %u", v->domid);
		return -EINVAL;
	}
	read_rate(v);
	/* Features (io/netif.h), one transaction, retried on conflict. */
	snprintf(maxq, sizeof(maxq), "%u", v->max_queues);
	for (int tries = 0; tries < 16; tries++) {
		const char *const keys[][2] = {
			{ "feature-sg", "1" },
			{ "feature-gso-tcpv4", "1" },
			{ "feature-gso-tcpv6", "1" },
			{ "feature-ipv6-csum-offload", "1" },
			{ "feature-rx-copy", "1" },
			{ "feature-rx-flip", "0" },
			{ "feature-multicast-control", "0" },
			{ "feature-split-event-channels", "1" },
			{ "multi-queue-max-queues", maxq },
			{ "feature-ctrl-ring", "0" },
		};
		t = xs_transaction_start(v->xs);
		if (t == XBT_NULL)
			return -errno;
		err = 0;
		for (size_t i = 0; !err && i < sizeof(keys) / sizeof(keys[0]); i++)
			err = write_key(v, t, keys[i][0], keys[i][1]);
		if (err) {
			xs_transaction_end(v->xs, t, true);
			return err;
		}
		if (xs_transaction_end(v->xs, t, false))
			break;
		if (errno != EAGAIN)
			return -errno;
	}
	/* The hotplug script's job: the TAP exists, tell the toolstack. */
	write_key(v, XBT_NULL, "vifname", v->tapname);
	write_key(v, XBT_NULL, "hotplug-status", "connected");
	v->state = XB_INITIALISING;
	if (!xs_watch(v->xs, v->backend, "backend"))
		return -errno;
	snprintf(path, sizeof(path), "%s/state", v->frontend);
	if (!xs_watch(v->xs, path, "frontend"))
		return -errno;
	nb_log(v, "serving %s for %s (TAP %s)", v->backend, v->frontend, v->tapname);
	return 0;
}

void nb_xenbus_stop(struct nb_vif *v)
{
	disconnect(v);
}
