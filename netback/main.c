/* SPDX-License-Identifier: MIT */
/*
 * pvio-netback: the dom0 backend of one vif. It serves the xenstore
 * directory given with --backend, creates the TAP device vif<domid>.<devid>
 * (or --tap NAME) and moves packets between the guest's rings and it, in
 * a libev loop, until the toolstack detaches the vif. With --max-queues N
 * the TAP is multi-queue and each of the frontend's queues gets one of its
 * files; one loop serves them all.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "private.h"

static FILE *logf_;

void nb_log(struct nb_vif *v, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(logf_, "%lld.%03ld vif%u.%u: ", (long long)ts.tv_sec, ts.tv_nsec / 1000000, v->domid,
		v->devid);
	va_start(ap, fmt);
	vfprintf(logf_, fmt, ap);
	va_end(ap);
	fputc('\n', logf_);
	fflush(logf_);
}

/* The counters as one JSON object, to FILE (written to a temp file and
 * renamed, so readers never see half of it). */
void nb_stats_write(struct nb_vif *v)
{
	char tmp[300];
	FILE *f;
	const struct nb_stats *s = &v->st;
	unsigned rxq_len = 0;

	v->stats_dirty = false;
	for (unsigned i = 0; i < v->max_queues; i++)
		rxq_len += v->q[i].rxq_len;
	if (!v->statsfile[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", v->statsfile);
	f = fopen(tmp, "w");
	if (!f)
		return;
#define F(x) "\"" #x "\": %llu"
#define V(x) (unsigned long long)s->x
	fprintf(f,
		"{\"domid\": %u, \"devid\": %u, \"tap\": \"%s\", \"connected\": %s, \"state\": %d, "
		F(tx_packets) ", " F(tx_bytes) ", " F(tx_slots) ", " F(tx_drop_slots) ", " F(tx_drop_frag_size) ", "
		F(tx_drop_zero_frag) ", " F(tx_drop_hdr_split) ", " F(tx_drop_page_cross) ", " F(tx_drop_runt) ", "
		F(tx_drop_extra) ", " F(tx_drop_offload) ", " F(tx_drop_copy) ", " F(tx_drop_tap) ", "
		F(tx_fatal) ", " F(rx_packets) ", " F(rx_bytes) ", " F(rx_drop_queue_full) ", "
		F(rx_drop_too_big) ", " F(rx_drop_copy) ", " F(rx_drop_down) ", " F(rx_queue_peak) ", "
		"\"rx_queue_len\": %u, \"rx_queue_cap\": %u, " F(rate_waits) ", " F(notifies_tx) ", "
		F(notifies_rx) ", " F(copy_calls) ", " F(tx_copy_calls) ", " F(rx_copy_calls) ", " F(events) ", " F(events_spurious) ", "
		F(event_backoffs) ", \"rate_bytes\": %llu, "
		"\"rate_usec\": %llu, \"queues\": %u, \"max_queues\": %u, ",
		v->domid, v->devid, v->tapname, v->connected ? "true" : "false", v->state, V(tx_packets),
		V(tx_bytes), V(tx_slots), V(tx_drop_slots), V(tx_drop_frag_size), V(tx_drop_zero_frag),
		V(tx_drop_hdr_split), V(tx_drop_page_cross), V(tx_drop_runt), V(tx_drop_extra),
		V(tx_drop_offload), V(tx_drop_copy), V(tx_drop_tap), V(tx_fatal), V(rx_packets), V(rx_bytes),
		V(rx_drop_queue_full), V(rx_drop_too_big), V(rx_drop_copy), V(rx_drop_down),
		V(rx_queue_peak), rxq_len, v->rxq_cap, V(rate_waits), V(notifies_tx), V(notifies_rx),
		V(copy_calls), V(tx_copy_calls), V(rx_copy_calls), V(events), V(events_spurious), V(event_backoffs), (unsigned long long)v->rate_bytes,
		(unsigned long long)v->rate_usec, v->nq, v->max_queues);
#undef F
#undef V
	/* each queue's share, so a test can see traffic spread over them */
	fputs("\"queue_tx_packets\": [", f);
	for (unsigned i = 0; i < v->max_queues; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)v->q[i].tx_packets);
	fputs("], \"queue_rx_packets\": [", f);
	for (unsigned i = 0; i < v->max_queues; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)v->q[i].rx_packets);
	fputs("]}\n", f);
	if (fclose(f) == 0)
		rename(tmp, v->statsfile);
}

static void xs_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct nb_vif *v = w->data;
	char **ev;

	(void)loop;
	(void)revents;
	/* drain every queued event; re-reading the keys decides */
	while ((ev = xs_check_watch(v->xs)))
		free(ev);
	nb_xenbus_changed(v);
}

static void tap_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	nb_rx_tap_readable(w->data);
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct nb_vif *v = w->data;

	(void)revents;
	if (w->signum == SIGUSR1) {
		nb_stats_write(v);
		return;
	}
	nb_log(v, "signal %d: leaving", w->signum);
	v->quit = true;
	ev_break(loop, EVBREAK_ALL);
}

static ev_timer stats_w;
static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nb_vif *v = w->data;

	(void)loop;
	(void)revents;
	if (v->stats_dirty)
		nb_stats_write(v);
}

/* The tx batch buffer, which xensimd (the hypervisor) copies guest frames
 * into: in transparent huge pages where the kernel offers them, as the
 * page walks behind each copy (process_vm_writev pins every destination
 * page) cost about as much as the copy itself with 4 KiB pages. */
#define TXBUF_SZ ((size_t)NB_TX_BATCH * (sizeof(struct virtio_net_hdr) + NB_MAX_PKT + 1))
#define HUGE_SZ ((size_t)2 << 20)
#define TXBUF_MAP ((TXBUF_SZ + HUGE_SZ - 1) / HUGE_SZ * HUGE_SZ)
static uint8_t *txbuf_alloc(void)
{
	/* map one huge page more, to start on a 2 MiB boundary */
	uint8_t *p = mmap(NULL, TXBUF_MAP + HUGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((uint8_t *)a + TXBUF_MAP, (uintptr_t)p + HUGE_SZ - a);
	madvise((void *)a, TXBUF_MAP, MADV_HUGEPAGE); /* a hint: fine if refused */
	return (uint8_t *)a;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvio-netback --backend /local/domain/0/backend/vif/DOMID/DEVID\n"
		"                    [--tap NAME] [--log FILE] [--stats FILE] [--rx-queue N]\n"
		"                    [--max-queues N]\n"
		"The dom0 backend of one vif (run it in dom0: xensim run 0 -- pvio-netback ...).\n"
		"Writes the netif features, creates the TAP device NAME (default\n"
		"vif<domid>.<devid>, with virtio-net headers), waits for the frontend,\n"
		"maps its tx/rx rings, binds its event channel(s) and moves packets both\n"
		"ways until the toolstack detaches the vif (online=0 or the directory goes).\n"
		"  --log FILE     append the log here (default stderr)\n"
		"  --stats FILE   keep the counters there as JSON (rewritten when they\n"
		"                 change, at most 5 times a second, on SIGUSR1 and at exit)\n"
		"  --rx-queue N   packets queued (per queue) for a guest that posts no\n"
		"                 buffers before dom0 drops (default %u)\n"
		"  --max-queues N offer N queues (multi-queue-max-queues, 1..%u, default 1):\n"
		"                 a multi-queue TAP, one tx/rx ring pair and event\n"
		"                 channel(s) per queue the frontend asks for\n"
		"The toolstack's rate key (BYTES,USECS) limits guest transmit; it is\n"
		"re-read when it changes.\n",
		NB_RXQ_DEFAULT, NB_MAX_QUEUES);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "tap", required_argument, NULL, 't' },
		{ "log", required_argument, NULL, 'l' },
		{ "stats", required_argument, NULL, 's' },
		{ "rx-queue", required_argument, NULL, 'q' },
		{ "max-queues", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct nb_vif vif;
	struct nb_vif *v = &vif;
	const char *backend = NULL, *tap = NULL;
	unsigned long rxq = NB_RXQ_DEFAULT, maxq = 1;
	int fds[NB_MAX_QUEUES];
	char tapname[32], *end;
	int o, err, rc = 1;

	logf_ = stderr;
	while ((o = getopt_long(argc, argv, "b:t:l:s:q:Q:h", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			backend = optarg;
			break;
		case 't':
			tap = optarg;
			break;
		case 'l':
			logf_ = fopen(optarg, "a");
			if (!logf_) {
				fprintf(stderr, "pvio-netback: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 's':
			snprintf(v->statsfile, sizeof(v->statsfile), "%s", optarg);
			break;
		case 'q':
			rxq = strtoul(optarg, &end, 10);
			if (*end || rxq == 0 || rxq > 65536) {
				fprintf(stderr, "pvio-netback: --rx-queue takes 1..65536\n");
				return 2;
			}
			break;
		case 'Q':
			maxq = strtoul(optarg, &end, 10);
			if (*end || maxq == 0 || maxq > NB_MAX_QUEUES) {
				fprintf(stderr, "pvio-netback: --max-queues takes 1..%u\n", NB_MAX_QUEUES);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!backend || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sscanf(backend, "/local/domain/0/backend/vif/%u/%u", &v->domid, &v->devid) != 2 ||
	    strlen(backend) >= sizeof(v->backend)) {
		fprintf(stderr, "pvio-netback: --backend must be /local/domain/0/backend/vif/DOMID/DEVID\n");
		return 2;
	}
	snprintf(v->backend, sizeof(v->backend), "%s", backend);
	if (!tap) {
		snprintf(tapname, sizeof(tapname), "vif%u.%u", v->domid, v->devid);
		tap = tapname;
	}
	v->max_queues = (unsigned)maxq;
	v->rate_absent = true; /* no rate key seen yet: no limit */
	v->rxq_cap = (unsigned)rxq;
	for (unsigned i = 0; i < NB_MAX_QUEUES; i++) {
		v->q[i].v = v;
		v->q[i].id = i;
		v->q[i].tapfd = -1;
	}
	v->txbuf = txbuf_alloc();
	if (!v->txbuf) {
		nb_log(v, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < v->max_queues; i++) {
		if (nb_rx_init(&v->q[i], v->rxq_cap)) {
			nb_log(v, "out of memory");
			goto out;
		}
	}
	v->loop = ev_default_loop(EVFLAG_AUTO);
	ev_timer_init(&v->rate_w, NULL, 0., 0.);
	v->xs = xs_open(0);
	if (!v->xs) {
		nb_log(v, "cannot reach xenstore: %s", strerror(errno));
		goto out;
	}
	v->xgt = xengnttab_open(NULL, 0);
	if (!v->xgt) {
		nb_log(v, "xengnttab_open: %s", strerror(errno));
		goto out;
	}
	err = nb_tap_open(tap, v->tapname, sizeof(v->tapname), v->max_queues, fds);
	if (err < 0) {
		nb_log(v, "cannot create TAP %s: %s", tap, strerror(-err));
		goto out;
	}
	for (unsigned i = 0; i < v->max_queues; i++)
		v->q[i].tapfd = fds[i];
	err = nb_xenbus_start(v);
	if (err) {
		nb_log(v, "cannot start the handshake: %s", strerror(-err));
		goto out;
	}
	ev_io_init(&v->xs_w, xs_cb, xs_fileno(v->xs), EV_READ);
	v->xs_w.data = v;
	ev_io_start(v->loop, &v->xs_w);
	for (unsigned i = 0; i < v->max_queues; i++) {
		struct nb_queue *q = &v->q[i];
		ev_io_init(&q->tap_w, tap_cb, q->tapfd, EV_READ);
		q->tap_w.data = q;
		ev_io_start(v->loop, &q->tap_w);
	}
	ev_signal_init(&v->sigterm_w, sig_cb, SIGTERM);
	ev_signal_init(&v->sigint_w, sig_cb, SIGINT);
	ev_signal_init(&v->sigusr1_w, sig_cb, SIGUSR1);
	v->sigterm_w.data = v->sigint_w.data = v->sigusr1_w.data = v;
	ev_signal_start(v->loop, &v->sigterm_w);
	ev_signal_start(v->loop, &v->sigint_w);
	ev_signal_start(v->loop, &v->sigusr1_w);
	ev_timer_init(&stats_w, stats_cb, 0.2, 0.2);
	stats_w.data = v;
	ev_timer_start(v->loop, &stats_w);
	nb_stats_write(v);
	nb_xenbus_changed(v);
	if (!v->quit)
		ev_run(v->loop, 0);
	rc = 0;
out:
	if (v->loop) {
		nb_xenbus_stop(v);
		ev_timer_stop(v->loop, &stats_w);
	}
	nb_log(v, "exit: tx %llu packets %llu bytes, rx %llu packets %llu bytes, fatal %llu",
	       (unsigned long long)v->st.tx_packets, (unsigned long long)v->st.tx_bytes,
	       (unsigned long long)v->st.rx_packets, (unsigned long long)v->st.rx_bytes,
	       (unsigned long long)v->st.tx_fatal);
	nb_stats_write(v);
	for (unsigned i = 0; i < NB_MAX_QUEUES; i++) {
		if (v->q[i].tapfd >= 0)
			close(v->q[i].tapfd);
		nb_rx_fini(&v->q[i]);
	}
	if (v->xgt)
		xengnttab_close(v->xgt);
	if (v->xs)
		xs_close(v->xs);
	if (v->txbuf)
		munmap(v->txbuf, TXBUF_MAP);
	return rc;
}
