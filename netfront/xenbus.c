/* SPDX-License-Identifier: MIT */
/*
 * netfront handshake (PROTOCOL-NOTES §3 vif, frontend side): wait for the
 * backend's InitWait, read its features, grant rings and buffers, write
 * our keys and state=Connected in one transaction, wait for Connected.
 */
#include "private.h"

void nf_memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;

	while (n--)
		*dp++ = *sp++;
}

void nf_memset(void *d, int c, size_t n)
{
	uint8_t *dp = d;

	while (n--)
		*dp++ = (uint8_t)c;
}

static size_t nf_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* dir + "/" + key, truncated to NF_PATH. */
void nf_path(char *out, const char *dir, const char *key)
{
	size_t i = 0;

	for (; *dir && i < NF_PATH - 1; dir++)
		out[i++] = *dir;
	if (*key && i < NF_PATH - 1)
		out[i++] = '/';
	for (; *key && i < NF_PATH - 1; key++)
		out[i++] = *key;
	out[i] = 0;
}

void nf_utoa(char *out, uint32_t v)
{
	char tmp[12];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = tmp[--n];
	*out = 0;
}

int nf_read_uint(struct pvio_netfront *nf, const char *dir, const char *key, uint32_t max, uint32_t *out)
{
	char path[NF_PATH], buf[16];
	uint64_t v = 0;
	int err;

	nf_path(path, dir, key);
	err = nf->ops.xs_read(nf->ops.ctx, path, buf, sizeof(buf));
	if (err)
		return err == -PVIO_NETFRONT_ENOSPC ? -PVIO_NETFRONT_EPROTO : err;
	if (!buf[0])
		return -PVIO_NETFRONT_EPROTO;
	for (char *p = buf; *p; p++) {
		if (*p < '0' || *p > '9')
			return -PVIO_NETFRONT_EPROTO;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -PVIO_NETFRONT_EPROTO;
	}
	*out = (uint32_t)v;
	return 0;
}

static bool feature(struct pvio_netfront *nf, const char *key)
{
	uint32_t v;

	return nf_read_uint(nf, nf->backend, key, 1, &v) == 0 && v == 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_mac(struct pvio_netfront *nf)
{
	char path[NF_PATH], buf[24];
	int err;

	nf_path(path, nf->dir, "mac");
	err = nf->ops.xs_read(nf->ops.ctx, path, buf, sizeof(buf));
	if (err)
		return err;
	if (nf_strlen(buf) != 17)
		return -PVIO_NETFRONT_EPROTO;
	for (int i = 0; i < 6; i++) {
		int h = hexval(buf[i * 3]), l = hexval(buf[i * 3 + 1]);
		if (h < 0 || l < 0 || (i < 5 && buf[i * 3 + 2] != ':'))
			return -PVIO_NETFRONT_EPROTO;
		nf->info.mac[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

static uint64_t now(struct pvio_netfront *nf)
{
	return nf->ops.now_ms ? nf->ops.now_ms(nf->ops.ctx) : 0;
}

/* Wait until the backend's state is one of [lo, hi]; its value or an error.
 * A state past Connected while waiting for less means it closed. */
static int wait_backend(struct pvio_netfront *nf, uint32_t lo, uint32_t hi)
{
	int tmo = nf->cfg.handshake_timeout_ms ? nf->cfg.handshake_timeout_ms : 30000;
	uint64_t deadline = now(nf) + (uint64_t)tmo;

	for (;;) {
		uint32_t st;
		int err = nf_read_uint(nf, nf->backend, "state", 7, &st);

		if (err == 0 && st >= lo && st <= hi)
			return (int)st;
		if (err == 0 && st >= NF_XB_CLOSING)
			return -PVIO_NETFRONT_ENODEV;
		if (err && err != -PVIO_NETFRONT_ENOENT)
			return err;
		if (nf->ops.now_ms && now(nf) >= deadline)
			return -PVIO_NETFRONT_ETIMEDOUT;
		err = nf->ops.wait(nf->ops.ctx, nf->ops.now_ms ? (int)(deadline - now(nf)) : -1);
		if (err < 0)
			return err;
	}
}

static void teardown(struct pvio_netfront *nf)
{
	void *ctx = nf->ops.ctx;
	bool leak_tx = false, leak_rx = false;

	if (nf->watching)
		nf->ops.xs_unwatch(ctx, nf->bstate_path);
	if (nf->have_port_tx)
		nf->ops.evtchn_close(ctx, nf->port_tx);
	if (nf->have_port_rx)
		nf->ops.evtchn_close(ctx, nf->port_rx);
	for (unsigned i = 0; i < nf->tx_granted; i++)
		if (nf->ops.end_grant(ctx, nf->tx_refs[i]))
			leak_tx = true;
	for (unsigned i = 0; i < nf->rx_granted; i++)
		if (nf->ops.end_grant(ctx, nf->rx_refs[i]))
			leak_rx = true;
	if (nf->tx_ring_granted && nf->ops.end_grant(ctx, nf->tx_ring_ref))
		nf->tx_sring = NULL, nf->st.leaked_pages++;
	if (nf->rx_ring_granted && nf->ops.end_grant(ctx, nf->rx_ring_ref))
		nf->rx_sring = NULL, nf->st.leaked_pages++;
	/* a page the backend still holds is never reused: leak it */
	if (nf->tx_pages && !leak_tx)
		nf->ops.page_free(ctx, nf->tx_pages, NF_RING_SLOTS);
	if (nf->rx_pages && !leak_rx)
		nf->ops.page_free(ctx, nf->rx_pages, NF_RING_SLOTS);
	nf->st.leaked_pages += (leak_tx ? NF_RING_SLOTS : 0) + (leak_rx ? NF_RING_SLOTS : 0);
	if (nf->tx_sring)
		nf->ops.page_free(ctx, nf->tx_sring, 1);
	if (nf->rx_sring)
		nf->ops.page_free(ctx, nf->rx_sring, 1);
}

static int setup(struct pvio_netfront *nf)
{
	void *ctx = nf->ops.ctx;
	uint16_t be = nf->info.backend_id;
	uint64_t gfn;
	int err;

	err = nf->ops.page_alloc(ctx, 1, &nf->tx_sring, &gfn);
	if (err)
		return err;
	pvio_ring_sring_init(nf->tx_sring);
	pvio_ring_netif_tx_front_init(&nf->tx, nf->tx_sring, NF_PAGE);
	err = nf->ops.grant(ctx, be, gfn, false, &nf->tx_ring_ref);
	if (err)
		return err;
	nf->tx_ring_granted = true;
	err = nf->ops.page_alloc(ctx, 1, &nf->rx_sring, &gfn);
	if (err)
		return err;
	pvio_ring_sring_init(nf->rx_sring);
	pvio_ring_netif_rx_front_init(&nf->rx, nf->rx_sring, NF_PAGE);
	err = nf->ops.grant(ctx, be, gfn, false, &nf->rx_ring_ref);
	if (err)
		return err;
	nf->rx_ring_granted = true;
	if (nf->tx.nr_ents != NF_RING_SLOTS || nf->rx.nr_ents != NF_RING_SLOTS)
		return -PVIO_NETFRONT_EINVAL;

	err = nf->ops.page_alloc(ctx, NF_RING_SLOTS, (void **)&nf->tx_pages, &gfn);
	if (err)
		return err;
	for (unsigned i = 0; i < NF_RING_SLOTS; i++, nf->tx_granted++) {
		err = nf->ops.grant(ctx, be, gfn + i, true, &nf->tx_refs[i]);
		if (err)
			return err;
		nf->tx_free[i] = (uint16_t)(NF_RING_SLOTS - 1 - i);
	}
	nf->tx_nfree = NF_RING_SLOTS;
	err = nf->ops.page_alloc(ctx, NF_RING_SLOTS, (void **)&nf->rx_pages, &gfn);
	if (err)
		return err;
	for (unsigned i = 0; i < NF_RING_SLOTS; i++, nf->rx_granted++) {
		err = nf->ops.grant(ctx, be, gfn + i, false, &nf->rx_refs[i]);
		if (err)
			return err;
	}
	err = nf->ops.evtchn_alloc(ctx, be, &nf->port_tx);
	if (err)
		return err;
	nf->have_port_tx = true;
	nf->port_rx = nf->port_tx;
	if (nf->info.split) {
		err = nf->ops.evtchn_alloc(ctx, be, &nf->port_rx);
		if (err)
			return err;
		nf->have_port_rx = true;
	}
	return 0;
}

static int publish(struct pvio_netfront *nf)
{
	enum { N = 12 };
	char paths[N][NF_PATH], nums[4][12];
	const char *p[N], *v[N];
	unsigned n = 0;

#define KEY(k, val) (nf_path(paths[n], nf->dir, k), p[n] = paths[n], v[n] = (val), n++)
	nf_utoa(nums[0], nf->tx_ring_ref);
	nf_utoa(nums[1], nf->rx_ring_ref);
	nf_utoa(nums[2], nf->port_tx);
	nf_utoa(nums[3], nf->port_rx);
	KEY("tx-ring-ref", nums[0]);
	KEY("rx-ring-ref", nums[1]);
	if (nf->info.split) {
		KEY("event-channel-tx", nums[2]);
		KEY("event-channel-rx", nums[3]);
	} else {
		KEY("event-channel", nums[2]);
	}
	KEY("request-rx-copy", "1");
	KEY("feature-rx-notify", "1");
	KEY("feature-sg", nf->info.sg ? "1" : "0");
	KEY("feature-gso-tcpv4", nf->info.rx_gso4 ? "1" : "0");
	KEY("feature-gso-tcpv6", nf->info.rx_gso6 ? "1" : "0");
	KEY("feature-no-csum-offload", nf->cfg.no_csum ? "1" : "0");
	KEY("feature-ipv6-csum-offload", nf->cfg.no_csum ? "0" : "1");
	/* Linux netfront goes straight to Connected */
	KEY("state", "4");
#undef KEY
	return nf->ops.xs_write_many(nf->ops.ctx, n, p, v);
}

int pvio_netfront_open(const struct pvio_netfront_ops *ops, const struct pvio_netfront_config *cfg,
		       struct pvio_netfront **out)
{
	struct pvio_netfront *nf;
	char path[NF_PATH];
	uint32_t beid;
	int err;

	if (!ops || !cfg || !cfg->frontend_dir || nf_strlen(cfg->frontend_dir) >= NF_PATH - 32)
		return -PVIO_NETFRONT_EINVAL;
	nf = ops->zalloc(ops->ctx, sizeof(*nf));
	if (!nf)
		return -PVIO_NETFRONT_ENOMEM;
	nf->ops = *ops;
	nf->cfg = *cfg;
	nf_memcpy(nf->dir, cfg->frontend_dir, nf_strlen(cfg->frontend_dir) + 1);
	nf->cfg.frontend_dir = nf->dir;

	nf_path(path, nf->dir, "backend");
	err = ops->xs_read(ops->ctx, path, nf->backend, NF_PATH - 32);
	if (err || nf->backend[0] != '/') {
		err = err == -PVIO_NETFRONT_ENOENT ? err : -PVIO_NETFRONT_EPROTO;
		goto fail;
	}
	err = nf_read_uint(nf, nf->dir, "backend-id", 32751, &beid);
	if (err)
		goto fail;
	nf->info.backend_id = (uint16_t)beid;
	err = read_mac(nf);
	if (err)
		goto fail;
	nf_path(nf->bstate_path, nf->backend, "state");
	err = ops->xs_watch(ops->ctx, nf->bstate_path);
	if (err)
		goto fail;
	nf->watching = true;
	err = wait_backend(nf, NF_XB_INITWAIT, NF_XB_CONNECTED);
	if (err < 0)
		goto fail;
	if (!feature(nf, "feature-rx-copy")) {
		err = -PVIO_NETFRONT_EOPNOTSUPP;
		goto fail;
	}
	nf->info.sg = !cfg->no_sg && feature(nf, "feature-sg");
	nf->info.tx_csum = !cfg->no_csum; /* backends take csum_blank unless told otherwise */
	nf->info.tx_gso4 = nf->info.sg && nf->info.tx_csum && !cfg->no_gso && feature(nf, "feature-gso-tcpv4");
	nf->info.tx_gso6 = nf->info.sg && nf->info.tx_csum && !cfg->no_gso && feature(nf, "feature-gso-tcpv6");
	nf->info.rx_csum = !cfg->no_csum;
	nf->info.rx_gso4 = nf->info.sg && !cfg->no_csum && !cfg->no_gso;
	nf->info.rx_gso6 = nf->info.rx_gso4;
	nf->info.split = !cfg->no_split && feature(nf, "feature-split-event-channels");
	nf->info.tx_slots = nf->info.rx_slots = NF_RING_SLOTS;
	err = setup(nf);
	if (err)
		goto fail;
	nf_rx_refill(nf);
	err = publish(nf);
	if (err)
		goto fail;
	err = wait_backend(nf, NF_XB_CONNECTED, NF_XB_CONNECTED);
	if (err < 0)
		goto fail;
	/* buffers were posted before the backend looked: tell it */
	nf->ops.evtchn_notify(nf->ops.ctx, nf->port_rx);
	*out = nf;
	return 0;
fail:
	teardown(nf);
	ops->free(ops->ctx, nf);
	return err;
}

int pvio_netfront_close(struct pvio_netfront *nf)
{
	const char *p[1];
	const char *v[1];
	char path[NF_PATH];
	int ret = 0, st;

	if (!nf)
		return 0;
	nf_path(path, nf->dir, "state");
	p[0] = path;
	v[0] = "5";
	nf->ops.xs_write_many(nf->ops.ctx, 1, p, v);
	/* the backend unmaps and says Closing/Closed, or is gone */
	nf->cfg.handshake_timeout_ms = 10000;
	st = wait_backend(nf, NF_XB_CLOSING, NF_XB_CLOSED);
	if (st == -PVIO_NETFRONT_ETIMEDOUT)
		ret = st;
	v[0] = "6";
	nf->ops.xs_write_many(nf->ops.ctx, 1, p, v);
	teardown(nf);
	if (!ret && nf->st.leaked_pages)
		ret = -16; /* EBUSY */
	nf->ops.free(nf->ops.ctx, nf);
	return ret;
}

void pvio_netfront_get_info(const struct pvio_netfront *nf, struct pvio_netfront_info *info)
{
	*info = nf->info;
}

void pvio_netfront_get_stats(const struct pvio_netfront *nf, struct pvio_netfront_stats *st)
{
	*st = nf->st;
}

bool pvio_netfront_is_dead(const struct pvio_netfront *nf)
{
	return nf->dead;
}

int pvio_netfront_wait(struct pvio_netfront *nf, int timeout_ms)
{
	return nf->ops.wait(nf->ops.ctx, timeout_ms);
}
