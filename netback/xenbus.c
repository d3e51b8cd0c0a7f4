/* SPDX-License-Identifier: MIT */
/*
 * The vif handshake of io/netif.h, backend side (PROTOCOL-NOTES §3 vif):
 * write our features, go InitWait once the frontend is Initialising,
 * connect when it is Connected (or Initialised), follow Closing/Closed and
 * a frontend that comes back (Initialising again, online still 1), and
 * leave when the toolstack sets online=0 or removes our directory.
 * Every frontend value is parsed and range-checked before use.
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

static void on_tx_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	struct nb_vif *v = arg;

	(void)e;
	(void)p;
	nb_tx_kick(v);
	if (!v->f_split)
		nb_rx_kick(v);
}

static void on_rx_event(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	nb_rx_kick(arg);
}

static void disconnect(struct nb_vif *v)
{
	if (v->ev) {
		pvio_evtchn_ev_stop(v->ev);
		pvio_evtchn_close(v->ev); /* unbinds: the frontend sees the ports close */
		v->ev = NULL;
	}
	if (v->tx_sring)
		xengnttab_unmap(v->xgt, v->tx_sring, 1);
	if (v->rx_sring)
		xengnttab_unmap(v->xgt, v->rx_sring, 1);
	v->tx_sring = v->rx_sring = NULL;
	if (v->connected)
		nb_log(v, "disconnected (tx %llu packets, rx %llu packets so far)",
		       (unsigned long long)v->st.tx_packets, (unsigned long long)v->st.rx_packets);
	v->connected = false;
	v->disabled = false;
	nb_tx_reset(v);
	nb_rx_flush(v);
	ev_timer_stop(v->loop, &v->rate_w);
	nb_stats_write(v);
}

static int connect_rings(struct nb_vif *v)
{
	unsigned long txref, rxref, port = 0, ptx = 0, prx = 0, n;
	const char *fe = v->frontend;
	int err, lp;

	if (read_uint(v, fe, "multi-queue-num-queues", 1, &n) == -EINVAL) {
		nb_log(v, "refusing: multi-queue-num-queues is not 1 (we offer 1 queue)");
		return -EINVAL;
	}
	if (read_uint(v, fe, "tx-ring-ref", UINT32_MAX, &txref) ||
	    read_uint(v, fe, "rx-ring-ref", UINT32_MAX, &rxref)) {
		nb_log(v, "refusing: tx-ring-ref/rx-ring-ref missing or not grant refs");
		return -EINVAL;
	}
	v->f_split = false;
	if (read_uint(v, fe, "event-channel", 65535, &port) == 0 && port) {
		ptx = prx = port;
	} else if (read_uint(v, fe, "event-channel-tx", 65535, &ptx) == 0 &&
		   read_uint(v, fe, "event-channel-rx", 65535, &prx) == 0 && ptx && prx && ptx != prx) {
		v->f_split = true;
	} else {
		nb_log(v, "refusing: no valid event-channel or event-channel-tx/-rx pair");
		return -EINVAL;
	}
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

	uint32_t r = (uint32_t)txref;
	err = pvio_gnt_map_batch(v->xgt, v->domid, 1, &r, 1, &v->tx_sring, NULL);
	if (err) {
		v->tx_sring = NULL;
		nb_log(v, "refusing: cannot map tx ring grant %lu: %s", txref, strerror(-err));
		return err;
	}
	r = (uint32_t)rxref;
	err = pvio_gnt_map_batch(v->xgt, v->domid, 1, &r, 1, &v->rx_sring, NULL);
	if (err) {
		v->rx_sring = NULL;
		nb_log(v, "refusing: cannot map rx ring grant %lu: %s", rxref, strerror(-err));
		return err;
	}
	if (pvio_ring_netif_tx_back_init(&v->tx, v->tx_sring, NB_PAGE) <= 0 ||
	    pvio_ring_netif_rx_back_init(&v->rx, v->rx_sring, NB_PAGE) <= 0)
		return -EINVAL;
	/* a ring that starts out overrun is garbage (LNB checks at attach) */
	if (pvio_ring_back_poll_requests(&v->tx) < 0 || pvio_ring_back_poll_requests(&v->rx) < 0) {
		nb_log(v, "refusing: the frontend's rings start with producers past their size");
		return -EPROTO;
	}
	err = pvio_evtchn_open(&v->ev);
	if (err) {
		nb_log(v, "cannot open event channels: %s", strerror(-err));
		return err;
	}
	lp = pvio_evtchn_bind_interdomain(v->ev, v->domid, (evtchn_port_t)ptx, on_tx_event, v);
	if (lp < 0) {
		nb_log(v, "refusing: cannot bind event channel %lu: %s", ptx, strerror(-lp));
		return lp;
	}
	v->port_tx = v->port_rx = (evtchn_port_t)lp;
	if (v->f_split) {
		lp = pvio_evtchn_bind_interdomain(v->ev, v->domid, (evtchn_port_t)prx, on_rx_event, v);
		if (lp < 0) {
			nb_log(v, "refusing: cannot bind event channel %lu: %s", prx, strerror(-lp));
			return lp;
		}
		v->port_rx = (evtchn_port_t)lp;
	}
	err = nb_tap_set_offload(v->tapfd, v->f_csum, v->f_gso4, v->f_gso6);
	if (err) {
		nb_log(v, "cannot set TAP offloads: %s", strerror(-err));
		return err;
	}
	pvio_evtchn_ev_start(v->ev, v->loop);
	v->connected = true;
	v->disabled = false;
	nb_log(v, "connected: tx ref %lu rx ref %lu, %s event channel%s %lu/%lu; sg %d csum %d ipv6-csum %d "
	       "gso-tcpv4 %d gso-tcpv6 %d rx-notify %d; rate %llu bytes per %llu us",
	       txref, rxref, v->f_split ? "split" : "one", v->f_split ? "s" : "", ptx, prx, v->f_sg,
	       v->f_csum, v->f_ipv6_csum, v->f_gso4, v->f_gso6, v->f_rx_notify,
	       (unsigned long long)v->rate_bytes, (unsigned long long)v->rate_usec);
	return 0;
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
		nb_tx_kick(v);
		nb_rx_kick(v);
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
	char *fe, *rate, path[256];
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
	rate = xs_get(v, v->backend, "rate");
	if (rate) {
		unsigned long long b, us;
		char c;
		if (sscanf(rate, "%llu,%llu%c", &b, &us, &c) == 2 && b > 0 && us > 0 && us <= 10000000) {
			v->rate_bytes = b;
			v->rate_usec = us;
		} else {
			nb_log(v, "ignoring unparsable rate '%s' (want BYTES,USEC)", rate);
		}
		free(rate);
	}
	/* Features (io/netif.h), one transaction, retried on conflict. */
	for (int tries = 0; tries < 16; tries++) {
		static const char *const keys[][2] = {
			{ "feature-sg", "1" },
			{ "feature-gso-tcpv4", "1" },
			{ "feature-gso-tcpv6", "1" },
			{ "feature-ipv6-csum-offload", "1" },
			{ "feature-rx-copy", "1" },
			{ "feature-rx-flip", "0" },
			{ "feature-multicast-control", "0" },
			{ "feature-split-event-channels", "1" },
			{ "multi-queue-max-queues", "1" },
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
