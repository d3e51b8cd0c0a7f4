/* SPDX-License-Identifier: MIT */
/*
 * netfront handshake (PROTOCOL-NOTES §3 vif, frontend side): wait for the
 * backend's InitWait, read its features, grant rings and buffers, write
 * our keys and state=Connected in one transaction, wait for Connected.
 * With more than one queue (the least of config max_queues and the
 * backend's multi-queue-max-queues) we write multi-queue-num-queues and
 * each queue's ring refs and event channel(s) under queue-N/, as Linux
 * netfront does; with one, the keys are at the top (no num-queues key),
 * which every backend understands.
 */
#include "private.h"

/* An unaligned 64-bit word (GCC/clang): lets the copy below move 8 bytes
 * at a time at any alignment without calling memcpy. */
typedef uint64_t __attribute__((may_alias, aligned(1))) nf_u64u;

void nf_memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;

	/* frame data: a byte loop cost more than the rest of the data path */
	for (; n >= 32; n -= 32, dp += 32, sp += 32) {
		uint64_t a = ((const nf_u64u *)sp)[0], b = ((const nf_u64u *)sp)[1];
		uint64_t c = ((const nf_u64u *)sp)[2], e = ((const nf_u64u *)sp)[3];

		((nf_u64u *)dp)[0] = a;
		((nf_u64u *)dp)[1] = b;
		((nf_u64u *)dp)[2] = c;
		((nf_u64u *)dp)[3] = e;
	}
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

static void teardown_queue(struct nf_queue *q)
{
	struct pvio_netfront *nf = q->nf;
	void *ctx = nf->ops.ctx;
	bool leak_tx = false, leak_rx = false;

	if (q->have_port_tx)
		nf->ops.evtchn_close(ctx, q->port_tx);
	if (q->have_port_rx)
		nf->ops.evtchn_close(ctx, q->port_rx);
	for (unsigned i = 0; i < q->tx_granted; i++)
		if (nf->ops.end_grant(ctx, q->tx_refs[i]))
			leak_tx = true;
	for (unsigned i = 0; i < q->rx_granted; i++)
		if (nf->ops.end_grant(ctx, q->rx_refs[i]))
			leak_rx = true;
	if (q->tx_ring_granted && nf->ops.end_grant(ctx, q->tx_ring_ref))
		q->tx_sring = NULL, nf->st.leaked_pages++;
	if (q->rx_ring_granted && nf->ops.end_grant(ctx, q->rx_ring_ref))
		q->rx_sring = NULL, nf->st.leaked_pages++;
	/* a page the backend still holds is never reused: leak it */
	if (q->tx_pages && !leak_tx)
		nf->ops.page_free(ctx, q->tx_pages, NF_RING_SLOTS);
	if (q->rx_pages && !leak_rx)
		nf->ops.page_free(ctx, q->rx_pages, NF_RING_SLOTS);
	nf->st.leaked_pages += (leak_tx ? NF_RING_SLOTS : 0) + (leak_rx ? NF_RING_SLOTS : 0);
	if (q->tx_sring)
		nf->ops.page_free(ctx, q->tx_sring, 1);
	if (q->rx_sring)
		nf->ops.page_free(ctx, q->rx_sring, 1);
}

static void teardown(struct pvio_netfront *nf)
{
	if (nf->watching)
		nf->ops.xs_unwatch(nf->ops.ctx, nf->bstate_path);
	for (unsigned i = 0; i < nf->nq; i++)
		teardown_queue(&nf->q[i]);
}

static int setup_queue(struct nf_queue *q)
{
	struct pvio_netfront *nf = q->nf;
	void *ctx = nf->ops.ctx;
	uint16_t be = nf->info.backend_id;
	uint64_t gfn;
	int err;

	err = nf->ops.page_alloc(ctx, 1, &q->tx_sring, &gfn);
	if (err)
		return err;
	pvio_ring_sring_init(q->tx_sring);
	pvio_ring_netif_tx_front_init(&q->tx, q->tx_sring, NF_PAGE);
	err = nf->ops.grant(ctx, be, gfn, false, &q->tx_ring_ref);
	if (err)
		return err;
	q->tx_ring_granted = true;
	err = nf->ops.page_alloc(ctx, 1, &q->rx_sring, &gfn);
	if (err)
		return err;
	pvio_ring_sring_init(q->rx_sring);
	pvio_ring_netif_rx_front_init(&q->rx, q->rx_sring, NF_PAGE);
	err = nf->ops.grant(ctx, be, gfn, false, &q->rx_ring_ref);
	if (err)
		return err;
	q->rx_ring_granted = true;
	if (q->tx.nr_ents != NF_RING_SLOTS || q->rx.nr_ents != NF_RING_SLOTS)
		return -PVIO_NETFRONT_EINVAL;

	err = nf->ops.page_alloc(ctx, NF_RING_SLOTS, (void **)&q->tx_pages, &gfn);
	if (err)
		return err;
	for (unsigned i = 0; i < NF_RING_SLOTS; i++, q->tx_granted++) {
		err = nf->ops.grant(ctx, be, gfn + i, true, &q->tx_refs[i]);
		if (err)
			return err;
		q->tx_free[i] = (uint16_t)(NF_RING_SLOTS - 1 - i);
	}
	q->tx_nfree = NF_RING_SLOTS;
	err = nf->ops.page_alloc(ctx, NF_RING_SLOTS, (void **)&q->rx_pages, &gfn);
	if (err)
		return err;
	for (unsigned i = 0; i < NF_RING_SLOTS; i++, q->rx_granted++) {
		err = nf->ops.grant(ctx, be, gfn + i, false, &q->rx_refs[i]);
		if (err)
			return err;
	}
	err = nf->ops.evtchn_alloc(ctx, be, &q->port_tx);
	if (err)
		return err;
	q->have_port_tx = true;
	q->port_rx = q->port_tx;
	if (nf->info.split) {
		err = nf->ops.evtchn_alloc(ctx, be, &q->port_rx);
		if (err)
			return err;
		q->have_port_rx = true;
	}
	return 0;
}

/* Keys of one queue: 2 ring refs and 1 or 2 event channels. */
#define NF_QUEUE_KEYS 4u
/* Everything else: num-queues, 9 features, state. */
#define NF_OTHER_KEYS 11u
#define NF_MAX_KEYS (NF_OTHER_KEYS + NF_QUEUE_KEYS * PVIO_NETFRONT_MAX_QUEUES)

/* Paths and values for one transaction; allocated (too big for a guest
 * kernel's stack). */
struct nf_keys {
	char paths[NF_MAX_KEYS][NF_PATH];
	char nums[NF_MAX_KEYS][12];
	const char *p[NF_MAX_KEYS], *v[NF_MAX_KEYS];
	unsigned n;
};

static void key(struct nf_keys *k, const char *dir, const char *name, const char *val)
{
	nf_path(k->paths[k->n], dir, name);
	k->p[k->n] = k->paths[k->n];
	k->v[k->n] = val;
	k->n++;
}

static void key_num(struct nf_keys *k, const char *dir, const char *name, uint32_t val)
{
	nf_utoa(k->nums[k->n], val);
	key(k, dir, name, k->nums[k->n]);
}

static int publish(struct pvio_netfront *nf)
{
	struct nf_keys *k = nf->ops.zalloc(nf->ops.ctx, sizeof(*k));
	int err;

	if (!k)
		return -PVIO_NETFRONT_ENOMEM;
	if (nf->nq > 1)
		key_num(k, nf->dir, "multi-queue-num-queues", nf->nq);
	for (unsigned i = 0; i < nf->nq; i++) {
		struct nf_queue *q = &nf->q[i];
		char qdir[NF_PATH], name[16] = "queue-";

		if (nf->nq > 1) {
			nf_utoa(name + 6, i);
			nf_path(qdir, nf->dir, name);
		} else {
			nf_path(qdir, nf->dir, "");
		}
		key_num(k, qdir, "tx-ring-ref", q->tx_ring_ref);
		key_num(k, qdir, "rx-ring-ref", q->rx_ring_ref);
		if (nf->info.split) {
			key_num(k, qdir, "event-channel-tx", q->port_tx);
			key_num(k, qdir, "event-channel-rx", q->port_rx);
		} else {
			key_num(k, qdir, "event-channel", q->port_tx);
		}
	}
	key(k, nf->dir, "request-rx-copy", "1");
	key(k, nf->dir, "feature-rx-notify", "1");
	key(k, nf->dir, "feature-sg", nf->info.sg ? "1" : "0");
	key(k, nf->dir, "feature-gso-tcpv4", nf->info.rx_gso4 ? "1" : "0");
	key(k, nf->dir, "feature-gso-tcpv6", nf->info.rx_gso6 ? "1" : "0");
	key(k, nf->dir, "feature-no-csum-offload", nf->cfg.no_csum ? "1" : "0");
	key(k, nf->dir, "feature-ipv6-csum-offload", nf->cfg.no_csum ? "0" : "1");
	/* Linux netfront goes straight to Connected */
	key(k, nf->dir, "state", "4");
	err = nf->ops.xs_write_many(nf->ops.ctx, k->n, k->p, k->v);
	nf->ops.free(nf->ops.ctx, k);
	return err;
}

int pvio_netfront_open(const struct pvio_netfront_ops *ops, const struct pvio_netfront_config *cfg,
		       struct pvio_netfront **out)
{
	struct pvio_netfront *nf;
	char path[NF_PATH];
	uint32_t beid, maxq, nq;
	int err;

	if (!ops || !cfg || !cfg->frontend_dir || nf_strlen(cfg->frontend_dir) >= NF_PATH - 32)
		return -PVIO_NETFRONT_EINVAL;
	nf = ops->zalloc(ops->ctx, sizeof(*nf));
	if (!nf)
		return -PVIO_NETFRONT_ENOMEM;
	/* no aggregate copies: clang would call memcpy, which a freestanding
	 * core does not have */
	nf_memcpy(&nf->ops, ops, sizeof(*ops));
	nf_memcpy(&nf->cfg, cfg, sizeof(*cfg));
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
	/* absent or garbage: a backend without multi-queue */
	if (nf_read_uint(nf, nf->backend, "multi-queue-max-queues", 65535, &maxq) || maxq == 0)
		maxq = 1;
	nq = cfg->max_queues ? cfg->max_queues : 1;
	if (nq > maxq)
		nq = maxq;
	if (nq > PVIO_NETFRONT_MAX_QUEUES)
		nq = PVIO_NETFRONT_MAX_QUEUES;
	for (unsigned i = 0; i < nq; i++) {
		nf->q[i].nf = nf;
		nf->q[i].id = i;
		nf->nq = i + 1; /* teardown covers what was set up */
		err = setup_queue(&nf->q[i]);
		if (err)
			goto fail;
		nf_rx_refill(&nf->q[i], true);
	}
	nf->info.num_queues = nf->nq;
	err = publish(nf);
	if (err)
		goto fail;
	err = wait_backend(nf, NF_XB_CONNECTED, NF_XB_CONNECTED);
	if (err < 0)
		goto fail;
	/* buffers were posted before the backend looked: tell it */
	for (unsigned i = 0; i < nf->nq; i++)
		nf->ops.evtchn_notify(nf->ops.ctx, nf->q[i].port_rx);
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

bool pvio_netfront_backend_closed(const struct pvio_netfront *nf)
{
	return nf->dead && nf->backend_closed;
}

int pvio_netfront_wait(struct pvio_netfront *nf, int timeout_ms)
{
	return nf->ops.wait(nf->ops.ctx, timeout_ms);
}
