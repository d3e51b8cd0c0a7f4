/* SPDX-License-Identifier: MIT */
/*
 * A hostile netfront against a real pvio-netback.
 *
 * This one process is the toolstack (`xensim vif attach`, dom0 xenstore,
 * `xensim run 0 -- pvio-netback`), dom0's network (a packet socket on
 * netback's TAP, in a private network namespace) and the guest (a domU
 * xenstore connection, the domain's RAM and grant table, an event
 * channel): it does the vif handshake by hand and puts raw
 * pvio_netif_tx_requests on the tx ring, good and bad. After each bad
 * packet a good one must reach the TAP byte for byte, the bad one must
 * not, its slots must be answered DROPPED (or ERROR for a refused grant
 * copy) and its own counter in netback's --stats JSON must move, and only
 * that one. Protocol breaches (20 slots, a bad extra-info type, a producer
 * past the ring) must disable the vif (backend Closing) without killing
 * netback, and a fresh handshake must serve again. Then the guest posts
 * no rx buffers while dom0 floods it: netback's queue stays at its bound,
 * the rest is counted as dropped, its RSS does not grow; once buffers are
 * posted the queued frames and new ones arrive intact. A frontend asking
 * for more queues than offered (or 0, or garbage) is refused at the
 * handshake with a log line, and a proper handshake serves afterwards.
 * A guest that notifies in a tight loop without posting anything makes
 * netback back off (event_backoffs) and is served once it sends again.
 *
 * Needs root (a network namespace of its own, a TAP): exits 77 otherwise.
 * Needs XENSIM and NETBACK (paths of the built programs). Every wait is on
 * an event (xenstore watch, event channel, packet socket, inotify, pidfd)
 * with a deadline that only turns a hang into a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <xenstore.h>

#include "xstest.h"

#include "pvio/evtchn.h"
#include "pvio/grant.h"
#include "pvio/netif_wire.h"
#include "pvio/ring.h"
#include "pvio/xensim.h"

#define TMO 10000      /* ms: a deadline, never a synchronisation */
#define NDATA 24       /* tx data pages */
#define NRXB 255       /* rx buffers (the rx ring has 256 slots) */
#define ETYPE 0x88b5   /* IEEE local experimental: nothing in dom0 answers it */
#define RXQ_CAP 128    /* --rx-queue given to netback */
#define FLOOD 4000     /* frames dom0 sends a guest that posts no buffers */
#define FLOOD_LEN 9000 /* bytes per flood frame (3 rx slots each) */

static int failures, checks;
static const char *xensim_bin, *netback_bin;
static char dir[64], tapname[IFNAMSIZ], be[128], fe_dir[128];
static uint32_t dom, devid;
static struct xs_handle *xs0, *xsg;
static struct xsim_domain *gd;
static struct pvio_evtchn *gev;
static const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x5a, 0x0b, 0x0c };

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		checks++;                                                               \
		if (!(cond)) {                                                          \
			failures++;                                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fprintf(stderr, "\n");                                          \
		}                                                                       \
	} while (0)

static void skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(77);
}

/* ---- xenstore -------------------------------------------------------------- */

static int wait_state(struct xs_handle *xs, const char *path, unsigned want)
{
	return xst_wait_state(xs, path, want, TMO);
}

static int be_state_wait(unsigned want)
{
	char p[192];

	snprintf(p, sizeof(p), "%s/state", be);
	return wait_state(xsg, p, want);
}

static void fe_key(const char *key, const char *fmt, ...)
{
	char p[192], v[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(p), "%s/%s", fe_dir, key);
	xst_write(xsg, p, "%s", v);
}

/* ---- netback, its log and its stats ------------------------------------------ */

static pid_t nb_pid = -1;
static int nb_pidfd = -1, ino_fd = -1;
static char nb_log[128], nb_stats[128], nb_err[128];

static void netback_start(void)
{
	nb_pid = fork();
	if (nb_pid < 0)
		xst_die("fork");
	if (nb_pid == 0) {
		/* stdout/stderr must not keep the test's pipes open; stderr is
		 * kept (sanitizer reports) and must stay empty */
		int nul = open("/dev/null", O_RDWR);
		int err = open(nb_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		char q[16];

		if (nul >= 0)
			dup2(nul, 1);
		if (err >= 0)
			dup2(err, 2);
		snprintf(q, sizeof(q), "%u", RXQ_CAP);
		execl(xensim_bin, "xensim", "run", "0", "--", netback_bin, "--backend", be, "--tap", tapname,
		      "--log", nb_log, "--stats", nb_stats, "--rx-queue", q, (char *)NULL);
		_exit(127);
	}
	nb_pidfd = (int)syscall(SYS_pidfd_open, nb_pid, 0);
	if (nb_pidfd < 0)
		xst_die("pidfd_open: %s", strerror(errno));
}

static int netback_alive(void)
{
	struct pollfd p = { .fd = nb_pidfd, .events = POLLIN };

	return nb_pid > 0 && poll(&p, 1, 0) == 0;
}

/* Exit status of netback, -1 if it did not exit by the deadline. */
static int netback_wait(void)
{
	struct pollfd p = { .fd = nb_pidfd, .events = POLLIN };
	int st;

	if (poll(&p, 1, TMO) != 1 || waitpid(nb_pid, &st, 0) != nb_pid)
		return -1;
	nb_pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int log_has(const char *s)
{
	static char buf[1 << 20];
	int fd = open(nb_log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, s) != NULL;
}

static const char *const counters[] = {
	"tx_packets",	     "tx_drop_slots", "tx_drop_frag_size", "tx_drop_zero_frag",
	"tx_drop_hdr_split", "tx_drop_page_cross", "tx_drop_runt", "tx_drop_extra",
	"tx_drop_offload",   "tx_drop_copy",  "tx_drop_tap",	   "tx_fatal",
	"rx_packets",	     "rx_drop_queue_full", "rx_drop_too_big", "rx_drop_copy",
	"rx_drop_down",	     "rx_queue_peak", "rx_queue_len",	   "rx_queue_cap",
	"events",	     "events_spurious", "event_backoffs",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))
enum {
	C_TX_PACKETS, C_SLOTS, C_FRAG_SIZE, C_ZERO_FRAG, C_HDR_SPLIT, C_PAGE_CROSS, C_RUNT, C_EXTRA,
	C_OFFLOAD, C_COPY, C_TAP, C_FATAL, C_RX_PACKETS, C_RX_FULL, C_RX_BIG, C_RX_COPY, C_RX_DOWN,
	C_RX_PEAK, C_RX_LEN, C_RX_CAP, C_EVENTS, C_EV_SPURIOUS, C_EV_BACKOFFS, C_TX_LAST = C_FATAL,
};
static unsigned long long want[NCOUNTERS]; /* what the tx counters must read */

/* Ask netback for its counters (SIGUSR1) and read them once the file has
 * been renamed into place after the request (inotify). 0 or -1. */
static int stats_read(unsigned long long *c)
{
	char buf[4096], ev[4096];
	long long end = xst_now_ms() + TMO;
	int fd, seen = 0;
	ssize_t n;

	while (read(ino_fd, ev, sizeof(ev)) > 0) /* events from before the request */
		;
	if (kill(nb_pid, SIGUSR1))
		return -1;
	while (!seen) {
		struct pollfd p = { .fd = ino_fd, .events = POLLIN };
		long long left = end - xst_now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		while ((n = read(ino_fd, ev, sizeof(ev))) > 0)
			for (char *q = ev; q < ev + n;) {
				struct inotify_event *ie = (struct inotify_event *)q;
				if (ie->len && !strcmp(ie->name, "nb.json"))
					seen = 1;
				q += sizeof(*ie) + ie->len;
			}
	}
	fd = open(nb_stats, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (size_t i = 0; i < NCOUNTERS; i++) {
		char key[64];
		const char *at;

		snprintf(key, sizeof(key), "\"%s\": ", counters[i]);
		at = strstr(buf, key);
		if (!at)
			return -1;
		c[i] = strtoull(at + strlen(key), NULL, 10);
	}
	return 0;
}

/* Every tx counter equals what the harness expects. */
static void check_tx_counters(const char *after)
{
	unsigned long long c[NCOUNTERS];

	if (stats_read(c)) {
		CHECK(0, "after %s: no stats from netback", after);
		return;
	}
	for (int i = 0; i <= C_TX_LAST; i++)
		CHECK(c[i] == want[i], "after %s: %s is %llu, want %llu", after, counters[i], c[i], want[i]);
}

/* ---- dom0's side of the TAP ------------------------------------------------------- */

static int rx_sock = -1, tx_sock = -1, ifindex;

static void tap_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tapname);
	ifr.ifr_mtu = 9000;
	if (s < 0 || ioctl(s, SIOCSIFMTU, &ifr))
		xst_die("MTU of %s: %s", tapname, strerror(errno));
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		xst_die("flags of %s: %s", tapname, strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		xst_die("%s up: %s", tapname, strerror(errno));
	close(s);
	ifindex = (int)if_nametoindex(tapname);
	if (!ifindex)
		xst_die("no %s", tapname);

	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	int one = 1;
	rx_sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (rx_sock < 0 || bind(rx_sock, (struct sockaddr *)&sll, sizeof(sll)))
		xst_die("packet socket: %s", strerror(errno));
	/* only what netback delivers, not what we send ourselves */
	setsockopt(rx_sock, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	sll.sll_protocol = 0;
	tx_sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (tx_sock < 0 || bind(tx_sock, (struct sockaddr *)&sll, sizeof(sll)))
		xst_die("packet socket: %s", strerror(errno));
	/* straight to the TAP's queue: a frame sendto() accepted is one netback
	 * will read (no qdisc that could drop it silently) */
	if (setsockopt(tx_sock, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		xst_die("PACKET_QDISC_BYPASS: %s", strerror(errno));
}

/* Byte @k of test frame @seq of @len bytes: broadcast, the guest's MAC,
 * ETYPE, "PVHT", seq, then a pattern that depends on both. */
static uint8_t fbyte(uint32_t seq, uint32_t k, int from_guest)
{
	static const uint8_t dom0_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

	if (k < 6)
		return from_guest ? 0xff : guest_mac[k];
	if (k < 12)
		return from_guest ? guest_mac[k - 6] : dom0_mac[k - 6];
	if (k == 12)
		return ETYPE >> 8;
	if (k == 13)
		return ETYPE & 0xff;
	if (k < 18)
		return (uint8_t)"PVHT"[k - 14];
	if (k < 22)
		return (uint8_t)(seq >> (8 * (k - 18)));
	uint32_t x = seq * 2654435761u + k * 40503u;
	return (uint8_t)(x ^ (x >> 13) ^ (x >> 24));
}

static uint32_t frame_seq(const uint8_t *f, size_t n)
{
	if (n < 22 || f[12] != (ETYPE >> 8) || f[13] != (ETYPE & 0xff) || memcmp(f + 14, "PVHT", 4))
		return UINT32_MAX;
	return (uint32_t)f[18] | (uint32_t)f[19] << 8 | (uint32_t)f[20] << 16 | (uint32_t)f[21] << 24;
}

/* The next test frame on the TAP must be guest frame @seq of @len bytes,
 * intact. 0 if so. */
static int tap_expect(uint32_t seq, uint32_t len, const char *what)
{
	static uint8_t f[65536];
	long long end = xst_now_ms() + TMO;

	for (;;) {
		struct pollfd p = { .fd = rx_sock, .events = POLLIN };
		long long left = end - xst_now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) != 1) {
			CHECK(0, "%s: frame %u never reached the TAP", what, seq);
			return -1;
		}
		ssize_t n = recv(rx_sock, f, sizeof(f), MSG_DONTWAIT);
		if (n < 0)
			continue;
		uint32_t s = frame_seq(f, (size_t)n);
		if (s == UINT32_MAX)
			continue; /* not ours */
		if (s > seq) {
			CHECK(0, "%s: frame %u never reached the TAP (%u did)", what, seq, s);
			return -1;
		}
		if (s != seq) {
			/* an earlier frame: a packet that should have been dropped got
			 * out; say so and look further for the one expected */
			CHECK(0, "%s: the TAP got frame %u before %u (a dropped packet got out?)", what, s, seq);
			continue;
		}
		CHECK((uint32_t)n == len, "%s: frame %u is %zd bytes, sent %u", what, s, n, len);
		if ((uint32_t)n != len)
			return -1;
		for (uint32_t k = 0; k < len; k++)
			if (f[k] != fbyte(seq, k, 1)) {
				CHECK(0, "%s: frame %u differs at byte %u", what, seq, k);
				return -1;
			}
		return 0;
	}
}

/* ---- the guest's netfront, by hand ------------------------------------------------ */

struct page {
	void *va;
	uint64_t gfn;
	grant_ref_t ref;
};

static struct page data[NDATA], rxb[NRXB], foreign;
static grant_ref_t ungranted;
static void *tx_va, *rx_va;
static uint64_t tx_gfn, rx_gfn;
static grant_ref_t tx_ref, rx_ref;
static int port = -1;
static struct pvio_ring_front txr, rxr;
static unsigned long events;
static uint16_t next_id = 1;
static uint32_t next_seq = 1;

static void on_evt(struct pvio_evtchn *e, evtchn_port_t p, void *arg)
{
	(void)e;
	(void)p;
	(*(unsigned long *)arg)++;
}

static void page_grant(struct page *pg, domid_t to, int ro)
{
	if (xsim_pages_alloc(gd, 1, &pg->va, &pg->gfn))
		xst_die("xsim_pages_alloc");
	if (pvio_gnt_alloc_refs(gd, 1, &pg->ref) || pvio_gnt_grant_access(gd, pg->ref, to, pg->gfn, ro))
		xst_die("grant");
}

static void rings_new(void)
{
	if (xsim_pages_alloc(gd, 1, &tx_va, &tx_gfn) || xsim_pages_alloc(gd, 1, &rx_va, &rx_gfn))
		xst_die("ring pages");
	pvio_ring_sring_init(tx_va);
	pvio_ring_sring_init(rx_va);
	if (pvio_gnt_alloc_refs(gd, 1, &tx_ref) || pvio_gnt_alloc_refs(gd, 1, &rx_ref) ||
	    pvio_gnt_grant_access(gd, tx_ref, 0, tx_gfn, 0) || pvio_gnt_grant_access(gd, rx_ref, 0, rx_gfn, 0))
		xst_die("grant rings");
	if (pvio_ring_netif_tx_front_init(&txr, tx_va, 4096) != 256 ||
	    pvio_ring_netif_rx_front_init(&rxr, rx_va, 4096) != 256)
		xst_die("ring init");
	port = pvio_evtchn_alloc_unbound(gev, 0, on_evt, &events);
	if (port < 0)
		xst_die("alloc_unbound");
}

/* End the rings' grants: fails (-EBUSY) while netback still maps them. */
static int rings_free(void)
{
	if (pvio_gnt_end_access(gd, tx_ref) || pvio_gnt_end_access(gd, rx_ref))
		return -EBUSY;
	pvio_gnt_free_refs(gd, 1, &tx_ref);
	pvio_gnt_free_refs(gd, 1, &rx_ref);
	pvio_evtchn_unbind(gev, (evtchn_port_t)port);
	xsim_pages_free(gd, tx_va, 1);
	xsim_pages_free(gd, rx_va, 1);
	return 0;
}

/* The frontend half of the io/netif.h handshake (one event channel, sg,
 * checksum offload, rx-copy, rx-notify); the backend's final state. */
static int fe_connect(void)
{
	if (be_state_wait(1u << 2) != 2)
		return -1;
	rings_new();
	fe_key("tx-ring-ref", "%u", tx_ref);
	fe_key("rx-ring-ref", "%u", rx_ref);
	fe_key("event-channel", "%d", port);
	fe_key("request-rx-copy", "1");
	fe_key("feature-rx-notify", "1");
	fe_key("feature-sg", "1");
	fe_key("feature-no-csum-offload", "0");
	fe_key("state", "4");
	return be_state_wait(1u << 4 | 1u << 5 | 1u << 6);
}

/* Close (the backend must unmap: the ring grants then end) and connect again. */
static void fe_reconnect(const char *after)
{
	fe_key("state", "6");
	CHECK(be_state_wait(1u << 6) == 6, "after %s: backend not Closed once the frontend closed", after);
	CHECK(rings_free() == 0, "after %s: rings still mapped by netback", after);
	fe_key("state", "1");
	CHECK(fe_connect() == 4, "after %s: no reconnection", after);
}

static void kick(struct pvio_ring_front *r)
{
	if (pvio_ring_front_push_requests(r))
		pvio_evtchn_notify(gev, (evtchn_port_t)port);
}

static void tx_put(const struct pvio_netif_tx_request *rq, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pvio_ring_netif_tx_put_request(&txr, &rq[i]))
			xst_die("tx put_request");
}

/* Collect @n tx responses within the deadline; how many came. */
static int tx_collect(struct pvio_netif_tx_response *rs, int n)
{
	long long end = xst_now_ms() + TMO;
	int got = 0;

	while (got < n) {
		int r = pvio_ring_front_poll_responses(&txr);
		if (r == 0)
			r = pvio_ring_front_final_check(&txr);
		if (r < 0)
			xst_die("netback broke the tx response ring");
		if (r > 0) {
			while (got < n && pvio_ring_netif_tx_copy_response(&txr, &rs[got]) == 1)
				got++;
			continue;
		}
		long long left = end - xst_now_ms();
		if (left <= 0)
			break;
		pvio_evtchn_wait(gev, (int)left);
	}
	return got;
}

/*
 * A guest frame @seq of @total bytes in @n slots: slot i lives in data[i] at
 * offs[i] (0 if NULL), fragment i (i >= 1) has lens[i] bytes, the first
 * slot the rest. The frame's bytes are written where the slots say, as far
 * as they fit in the page (bad packets may say more).
 */
static void mkpkt(struct pvio_netif_tx_request *rq, unsigned n, uint16_t total, const uint16_t *lens,
		  const uint16_t *offs, uint32_t seq)
{
	uint32_t k = 0, own = total;

	for (unsigned i = 1; i < n; i++)
		own -= lens[i];
	for (unsigned i = 0; i < n; i++) {
		uint16_t off = offs ? offs[i] : 0;
		uint32_t len = i == 0 ? own : lens[i];
		uint8_t *p = (uint8_t *)data[i].va;

		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].gref = data[i].ref;
		rq[i].offset = off;
		rq[i].id = next_id++;
		rq[i].size = i == 0 ? total : lens[i];
		rq[i].flags = i + 1 < n ? PVIO_NETTXF_more_data : 0;
		for (uint32_t b = 0; b < len && off + b < 4096; b++)
			p[off + b] = fbyte(seq, k + b, 1);
		k += len;
	}
}

/* Send @n slots (already in @rq, @extras of them extra-info) and check
 * the answers: data slots @status, extras NULL, in ring order. */
static void send_expect(const struct pvio_netif_tx_request *rq, unsigned n, int16_t status,
			const char *what)
{
	struct pvio_netif_tx_response rs[32];
	int got;

	tx_put(rq, n);
	kick(&txr);
	got = tx_collect(rs, (int)n);
	CHECK(got == (int)n, "%s: %d of %u tx responses", what, got, n);
	for (int i = 0; i < got; i++) {
		int extra = i > 0 && (rq[0].flags & PVIO_NETTXF_extra_info) && i == 1;
		if (extra)
			CHECK(rs[i].status == PVIO_NETIF_RSP_NULL, "%s: extra slot answered %d, want NULL", what,
			      rs[i].status);
		else
			CHECK(rs[i].id == rq[i].id && rs[i].status == status,
			      "%s: slot %d answered id %u status %d, want id %u status %d", what, i, rs[i].id,
			      rs[i].status, rq[i].id, status);
	}
}

/* A good @n-slot frame: answered OKAY, on the TAP intact, counted. */
static void good(unsigned n, uint16_t total, const char *after)
{
	struct pvio_netif_tx_request rq[NDATA];
	uint16_t lens[NDATA];
	char what[160];
	uint32_t seq = next_seq++;

	for (unsigned i = 1; i < n; i++)
		lens[i] = (uint16_t)(total / n);
	mkpkt(rq, n, total, lens, NULL, seq);
	snprintf(what, sizeof(what), "good %u-slot frame after %s", n, after);
	send_expect(rq, n, PVIO_NETIF_RSP_OKAY, what);
	tap_expect(seq, total, what);
	want[C_TX_PACKETS]++;
}

/* A bad packet: every data slot answered @status, @counter + 1, nothing on
 * the TAP (the good frame after it is the next one there), ring serving. */
static void bad(const struct pvio_netif_tx_request *rq, unsigned n, int16_t status, int counter,
		const char *what)
{
	next_seq++; /* the bad frame's seq: must never show up */
	send_expect(rq, n, status, what);
	want[counter]++;
	good(1, 60, what);
	check_tx_counters(what);
	CHECK(netback_alive(), "netback died on %s", what);
}

/* A protocol breach: backend Closing, the breach logged and counted,
 * netback alive; reconnect and serve. */
static void fatal_then_reconnect(const char *what, const char *logged)
{
	CHECK(be_state_wait(1u << 5) == 5, "%s: backend did not go Closing", what);
	CHECK(netback_alive(), "netback died on %s", what);
	CHECK(log_has(logged), "%s: log does not say '%s'", what, logged);
	want[C_FATAL]++;
	check_tx_counters(what);
	fe_reconnect(what);
	good(1, 60, what);
	check_tx_counters(what);
}

static void test_tx(void)
{
	struct pvio_netif_tx_request rq[32];
	uint16_t lens[32], offs[32];

	printf("# tx: good frames of 1, 2 and 18 slots (the limit)\n");
	good(1, 60, "connect");
	good(2, 3000, "a 1-slot frame");
	good(18, 18 * 200, "a 2-slot frame");
	/* a chain produced in two pushes: netback keeps the first part */
	{
		uint32_t seq = next_seq++;
		struct pvio_netif_tx_response rs[5];
		for (int i = 1; i < 5; i++)
			lens[i] = 100;
		mkpkt(rq, 5, 600, lens, NULL, seq);
		tx_put(rq, 3);
		kick(&txr);
		tx_put(rq + 3, 2);
		kick(&txr);
		int got = tx_collect(rs, 5);
		CHECK(got == 5 && rs[0].status == 0 && rs[4].status == 0, "split push: %d responses", got);
		tap_expect(seq, 600, "a chain pushed in two parts");
		want[C_TX_PACKETS]++;
	}
	check_tx_counters("good frames");

	printf("# tx: 19 slots (dropped)\n");
	for (int i = 1; i < 19; i++)
		lens[i] = 60;
	mkpkt(rq, 19, 19 * 60, lens, NULL, next_seq);
	bad(rq, 19, PVIO_NETIF_RSP_DROPPED, C_SLOTS, "19 slots");

	printf("# tx: fragment past the packet size\n");
	lens[1] = 100;
	mkpkt(rq, 2, 200, lens, NULL, next_seq);
	rq[1].size = 300; /* 300 > the 200 the first slot announced */
	bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_FRAG_SIZE, "a fragment past the packet size");
	lens[1] = 50;
	lens[2] = 50;
	mkpkt(rq, 3, 120, lens, NULL, next_seq);
	rq[2].size = 80; /* together past the total */
	bad(rq, 3, PVIO_NETIF_RSP_DROPPED, C_FRAG_SIZE, "fragments summing past the packet size");

	printf("# tx: zero-length fragment (XSA-448)\n");
	lens[1] = 0;
	lens[2] = 40;
	mkpkt(rq, 3, 100, lens, NULL, next_seq);
	bad(rq, 3, PVIO_NETIF_RSP_DROPPED, C_ZERO_FRAG, "a zero-length fragment");
	lens[1] = 60;
	mkpkt(rq, 2, 100, lens, NULL, next_seq);
	rq[1].size = 0;
	rq[0].size = 40; /* the last slot empty, sizes consistent */
	bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_ZERO_FRAG, "a zero-length last fragment");

	printf("# tx: Ethernet header split across slots (XSA-423)\n");
	lens[1] = 50;
	mkpkt(rq, 2, 60, lens, NULL, next_seq); /* first slot holds 10 bytes */
	bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_HDR_SPLIT, "a header split across slots");
	lens[1] = 60;
	mkpkt(rq, 2, 60, lens, NULL, next_seq); /* first slot holds nothing */
	bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_HDR_SPLIT, "an empty first slot");

	printf("# tx: offset+size past the page\n");
	offs[0] = 4090;
	mkpkt(rq, 1, 60, lens, offs, next_seq);
	bad(rq, 1, PVIO_NETIF_RSP_DROPPED, C_PAGE_CROSS, "a first slot past the page");
	offs[0] = 0;
	offs[1] = 4000;
	lens[1] = 200;
	mkpkt(rq, 2, 300, lens, offs, next_seq);
	bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_PAGE_CROSS, "a fragment past the page");
	mkpkt(rq, 1, 60, lens, NULL, next_seq);
	rq[0].size = 4097;
	bad(rq, 1, PVIO_NETIF_RSP_DROPPED, C_PAGE_CROSS, "one slot of 4097 bytes");

	printf("# tx: runt (shorter than an Ethernet header)\n");
	mkpkt(rq, 1, 13, lens, NULL, next_seq);
	bad(rq, 1, PVIO_NETIF_RSP_DROPPED, C_RUNT, "a 13-byte packet");
	mkpkt(rq, 1, 0, lens, NULL, next_seq);
	bad(rq, 1, PVIO_NETIF_RSP_DROPPED, C_RUNT, "a 0-byte packet");

	printf("# tx: grants netback must not copy from\n");
	mkpkt(rq, 1, 60, lens, NULL, next_seq);
	rq[0].gref = ungranted;
	bad(rq, 1, PVIO_NETIF_RSP_ERROR, C_COPY, "an ungranted gref");
	mkpkt(rq, 1, 60, lens, NULL, next_seq);
	rq[0].gref = foreign.ref;
	bad(rq, 1, PVIO_NETIF_RSP_ERROR, C_COPY, "a gref granted to another domain");
	mkpkt(rq, 1, 60, lens, NULL, next_seq);
	rq[0].gref = 0x7fffffff;
	bad(rq, 1, PVIO_NETIF_RSP_ERROR, C_COPY, "a gref beyond the grant table");
	for (int i = 1; i < 3; i++)
		lens[i] = 100;
	mkpkt(rq, 3, 300, lens, NULL, next_seq);
	rq[2].gref = ungranted;
	bad(rq, 3, PVIO_NETIF_RSP_ERROR, C_COPY, "one ungranted gref of three");

	printf("# tx: extra-info and offload requests\n");
	{
		struct pvio_netif_extra_info ex;
		mkpkt(rq, 1, 60, lens, NULL, next_seq);
		rq[0].flags |= PVIO_NETTXF_extra_info;
		memset(&ex, 0, sizeof(ex));
		ex.type = PVIO_XEN_NETIF_EXTRA_TYPE_GSO;
		ex.u.gso.type = 7; /* no such GSO type */
		ex.u.gso.size = 1400;
		memcpy(&rq[1], &ex, sizeof(ex));
		memset((char *)&rq[1] + sizeof(ex), 0, sizeof(rq[1]) - sizeof(ex));
		bad(rq, 2, PVIO_NETIF_RSP_DROPPED, C_EXTRA, "a GSO extra of unknown type");
		mkpkt(rq, 1, 60, lens, NULL, next_seq);
		rq[0].flags |= PVIO_NETTXF_csum_blank; /* but the frame is no TCP/UDP */
		bad(rq, 1, PVIO_NETIF_RSP_DROPPED, C_OFFLOAD, "csum_blank on a non-IP frame");
	}

	printf("# tx: 20 slots (fatal)\n");
	for (int i = 1; i < 20; i++)
		lens[i] = 60;
	mkpkt(rq, 20, 20 * 60, lens, NULL, next_seq++);
	tx_put(rq, 20);
	kick(&txr);
	fatal_then_reconnect("20 slots", "a packet of 20 or more slots");

	printf("# tx: extra-info of type NONE (fatal)\n");
	{
		struct pvio_netif_extra_info ex;
		mkpkt(rq, 1, 60, lens, NULL, next_seq++);
		rq[0].flags |= PVIO_NETTXF_extra_info;
		memset(&ex, 0, sizeof(ex));
		memset(&rq[1], 0, sizeof(rq[1]));
		memcpy(&rq[1], &ex, sizeof(ex));
		tx_put(rq, 2);
		kick(&txr);
		fatal_then_reconnect("an extra-info of type NONE", "invalid extra-info slot");
	}

	printf("# tx: producer index past the ring (fatal)\n");
	{
		struct pvio_ring_sring *s = tx_va;
		__atomic_store_n(&s->req_prod, txr.req_prod_pvt + txr.nr_ents + 5, __ATOMIC_RELEASE);
		pvio_evtchn_notify(gev, (evtchn_port_t)port);
		fatal_then_reconnect("a tx producer past the ring", "tx request producer ran past the ring");
	}
}

/* ---- multi-queue ------------------------------------------------------------------- */

/* netback offers one queue here (no --max-queues): multi-queue-num-queues
 * of 2, 0, 9 or not a number is refused at the handshake (backend Closing,
 * a log line, nothing mapped, no counter moves); without the key the next
 * handshake connects and serves. */
static void test_mq_refused(void)
{
	static const char *const bad[] = { "2", "0", "9", "x1", "-1", "" };
	char p[192], want_log[96];

	printf("# multi-queue-num-queues beyond the offer of 1, 0, garbage: refused\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fe_key("state", "6");
		CHECK(be_state_wait(1u << 6) == 6, "backend not Closed before num-queues '%s'", bad[i]);
		CHECK(rings_free() == 0, "rings still mapped before num-queues '%s'", bad[i]);
		fe_key("multi-queue-num-queues", "%s", bad[i]);
		fe_key("state", "1");
		CHECK(fe_connect() == 5, "multi-queue-num-queues '%s': backend did not refuse (Closing)", bad[i]);
		snprintf(want_log, sizeof(want_log), "refusing: multi-queue-num-queues '%s'", bad[i]);
		CHECK(log_has(want_log), "no '%s' in netback's log", want_log);
		CHECK(netback_alive(), "netback died on multi-queue-num-queues '%s'", bad[i]);
	}
	snprintf(p, sizeof(p), "%s/multi-queue-num-queues", fe_dir);
	if (!xs_rm(xsg, XBT_NULL, p))
		xst_die("xs_rm %s", p);
	fe_reconnect("refused multi-queue handshakes");
	good(1, 60, "refused multi-queue handshakes");
	check_tx_counters("refused multi-queue handshakes");
}

/* ---- event storm ------------------------------------------------------------------- */

/* The guest notifies in a tight loop and posts nothing: netback must see
 * the events bring no work, back off (counted, logged), move no tx
 * counter, stay alive, and serve the next real request. No timing is
 * asserted: the storm lasts until the backoff counter moves (or the
 * deadline, which fails). */
static void test_event_storm(void)
{
	unsigned long long c0[NCOUNTERS], c[NCOUNTERS];
	unsigned long sent = 0;
	long long end;

	printf("# event storm: notifications that bring no request\n");
	if (stats_read(c0)) {
		CHECK(0, "no stats before the storm");
		return;
	}
	end = xst_now_ms() + TMO;
	for (;;) {
		for (int i = 0; i < 2000; i++, sent++)
			pvio_evtchn_notify(gev, (evtchn_port_t)port);
		if (stats_read(c)) {
			CHECK(0, "no stats during the storm");
			return;
		}
		if (c[C_EV_BACKOFFS] >= c0[C_EV_BACKOFFS] + 3 || xst_now_ms() > end)
			break;
	}
	printf("# event storm: %lu notifications sent, netback took %llu events, %llu spurious, %llu backoffs\n",
	       sent, c[C_EVENTS] - c0[C_EVENTS], c[C_EV_SPURIOUS] - c0[C_EV_SPURIOUS],
	       c[C_EV_BACKOFFS] - c0[C_EV_BACKOFFS]);
	CHECK(c[C_EV_BACKOFFS] >= c0[C_EV_BACKOFFS] + 3, "event_backoffs went from %llu to %llu during a storm",
	      c0[C_EV_BACKOFFS], c[C_EV_BACKOFFS]);
	CHECK(c[C_EV_SPURIOUS] >= c0[C_EV_SPURIOUS] + 8 + 2, "events_spurious went from %llu to %llu",
	      c0[C_EV_SPURIOUS], c[C_EV_SPURIOUS]);
	CHECK(c[C_EVENTS] > c0[C_EVENTS], "no events counted during the storm");
	CHECK(log_has("(an event storm?)"), "the backoff was not logged");
	CHECK(netback_alive(), "netback died in an event storm");
	check_tx_counters("an event storm");
	/* a well-behaved request after it is served (its event may wait for
	 * the backoff's end: events latch while the port is masked) */
	good(1, 60, "an event storm");
	good(3, 3000, "an event storm");
	check_tx_counters("an event storm");
}

/* ---- rx ---------------------------------------------------------------------------- */

/* Post rx buffer @id (rxb[id]). */
static void rx_post(uint16_t id)
{
	struct pvio_netif_rx_request r = { .id = id, .gref = rxb[id].ref };

	memset(rxb[id].va, 0xcc, 4096);
	if (pvio_ring_netif_rx_put_request(&rxr, &r))
		xst_die("rx put_request");
}

/* Collect one whole received frame (its slots' buffers reposted after);
 * its length, or -1 at the deadline / on a malformed answer. */
static long rx_frame(uint8_t *out, size_t cap)
{
	long long end = xst_now_ms() + TMO;
	size_t len = 0;

	for (;;) {
		struct pvio_netif_rx_response r;
		int n = pvio_ring_front_poll_responses(&rxr);

		if (n == 0)
			n = pvio_ring_front_final_check(&rxr);
		if (n < 0)
			xst_die("netback broke the rx response ring");
		if (n == 0) {
			long long left = end - xst_now_ms();
			if (left <= 0)
				return -1;
			pvio_evtchn_wait(gev, (int)left);
			continue;
		}
		if (pvio_ring_netif_rx_copy_response(&rxr, &r) != 1)
			continue;
		if (r.id >= NRXB || r.status < 0 || r.offset + r.status > 4096 || len + (size_t)r.status > cap ||
		    (r.flags & PVIO_NETRXF_extra_info)) {
			CHECK(0, "rx response id %u offset %u status %d flags %#x", r.id, r.offset, r.status, r.flags);
			return -1;
		}
		memcpy(out + len, (uint8_t *)rxb[r.id].va + r.offset, (size_t)r.status);
		len += (size_t)r.status;
		rx_post(r.id);
		kick(&rxr);
		if (!(r.flags & PVIO_NETRXF_more_data))
			return (long)len;
	}
}

static long vmrss_kb(pid_t pid)
{
	char p[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* dom0 -> guest frame @seq of @len bytes into the TAP; 0 if the TAP took it. */
static int dom0_send(uint32_t seq, uint32_t len)
{
	static uint8_t f[FLOOD_LEN];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };

	for (uint32_t k = 0; k < len; k++)
		f[k] = fbyte(seq, k, 0);
	memcpy(sll.sll_addr, guest_mac, 6);
	return sendto(tx_sock, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)) == (ssize_t)len ? 0 : -errno;
}

static int frame_ok(const uint8_t *f, long n, uint32_t seq, uint32_t len)
{
	if (n != (long)len || frame_seq(f, (size_t)n) != seq)
		return 0;
	for (uint32_t k = 0; k < len; k++)
		if (f[k] != fbyte(seq, k, 0))
			return 0;
	return 1;
}

static void test_rx_no_buffers(void)
{
	static uint32_t delivered[FLOOD];
	static uint8_t f[65536];
	unsigned long long c[NCOUNTERS];
	unsigned nd = 0;
	long rss0, rss1;
	long long end;

	printf("# rx: %u frames of %u bytes at a guest that posts no buffers\n", FLOOD, FLOOD_LEN);
	CHECK(stats_read(c) == 0 && c[C_RX_LEN] == 0 && c[C_RX_CAP] == RXQ_CAP, "rx queue before the flood");
	rss0 = vmrss_kb(nb_pid);
	end = xst_now_ms() + 4 * TMO;
	for (uint32_t seq = 1000000; nd < FLOOD && xst_now_ms() < end; seq++) {
		int err = dom0_send(seq, FLOOD_LEN);
		if (err == 0)
			delivered[nd++] = seq;
		else if (err == -ENOBUFS || err == -EAGAIN)
			sched_yield(); /* the TAP's queue is full: netback is reading */
		else
			xst_die("sendto: %s", strerror(-err));
	}
	CHECK(nd == FLOOD, "only %u of %u flood frames went into the TAP", nd, FLOOD);
	/* netback has read every frame the TAP took once queued + dropped add up */
	end = xst_now_ms() + TMO;
	for (;;) {
		if (stats_read(c)) {
			CHECK(0, "no stats during the flood");
			break;
		}
		if (c[C_RX_FULL] + c[C_RX_LEN] >= nd || xst_now_ms() > end)
			break;
	}
	rss1 = vmrss_kb(nb_pid);
	printf("# rx: queue %llu (peak %llu, cap %llu), dropped %llu; netback RSS %ld -> %ld kB\n", c[C_RX_LEN],
	       c[C_RX_PEAK], c[C_RX_CAP], c[C_RX_FULL], rss0, rss1);
	CHECK(c[C_RX_FULL] + c[C_RX_LEN] == nd, "netback read %llu + %llu frames, the TAP took %u", c[C_RX_FULL],
	      c[C_RX_LEN], nd);
	CHECK(c[C_RX_PEAK] <= RXQ_CAP && c[C_RX_LEN] == RXQ_CAP, "rx queue peak %llu len %llu, cap %u",
	      c[C_RX_PEAK], c[C_RX_LEN], RXQ_CAP);
	CHECK(c[C_RX_FULL] == nd - RXQ_CAP, "rx_drop_queue_full %llu, want %u", c[C_RX_FULL], nd - RXQ_CAP);
	CHECK(c[C_RX_PACKETS] == 0 && c[C_RX_BIG] == 0 && c[C_RX_COPY] == 0 && c[C_RX_DOWN] == 0,
	      "rx counters moved without buffers: packets %llu too_big %llu copy %llu down %llu",
	      c[C_RX_PACKETS], c[C_RX_BIG], c[C_RX_COPY], c[C_RX_DOWN]);
	/* unbounded, the flood alone would be ~35 MiB */
	CHECK(rss0 > 0 && rss1 > 0 && rss1 - rss0 < 8 * 1024, "netback RSS grew from %ld to %ld kB", rss0, rss1);
	CHECK(log_has("guest posts no buffers"), "queue-full drops not logged");

	printf("# rx: the guest posts buffers: the %u queued frames arrive, in order, intact\n", RXQ_CAP);
	for (uint16_t i = 0; i < NRXB; i++)
		rx_post(i);
	kick(&rxr);
	for (unsigned i = 0; i < RXQ_CAP; i++) {
		long n = rx_frame(f, sizeof(f));
		if (!frame_ok(f, n, delivered[i], FLOOD_LEN)) {
			CHECK(0, "queued frame %u: %ld bytes, seq %u, want %u bytes of seq %u intact", i, n,
			      n > 0 ? frame_seq(f, (size_t)n) : 0, FLOOD_LEN, delivered[i]);
			return;
		}
	}
	printf("# rx: new frames flow again\n");
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t seq = 2000000 + i, len = 60 + i * 500;
		CHECK(dom0_send(seq, len) == 0, "send after the flood");
		long n = rx_frame(f, sizeof(f));
		CHECK(frame_ok(f, n, seq, len), "frame %u after the flood: %ld bytes, want %u intact", seq, n, len);
	}
	CHECK(stats_read(c) == 0 && c[C_RX_PACKETS] == RXQ_CAP + 16 && c[C_RX_LEN] == 0 &&
	      c[C_RX_FULL] == nd - RXQ_CAP, "rx after the flood: packets %llu queue %llu dropped %llu",
	      c[C_RX_PACKETS], c[C_RX_LEN], c[C_RX_FULL]);
}

/* ---- setup ------------------------------------------------------------------------- */

static void cleanup(void)
{
	char cmd[512];

	if (!dir[0])
		return;
	if (nb_pid > 0) {
		kill(nb_pid, SIGKILL);
		waitpid(nb_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "XENSIM_DIR='%s' '%s' stop >/dev/null 2>&1", dir, xensim_bin);
	if (system(cmd) != 0)
		fprintf(stderr, "xensim stop failed\n");
	if (failures) {
		fprintf(stderr, "logs kept in %s; netback's log:\n", dir);
		snprintf(cmd, sizeof(cmd), "tail -40 '%s' >&2", nb_log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

static void sysctl_w(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, val, strlen(val)) < 0)
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
		close(fd);
	}
}

static uint32_t popen_uint(const char *cmd)
{
	char out[64];
	FILE *p = popen(cmd, "r");

	if (!p || !fgets(out, sizeof(out), p) || pclose(p) != 0)
		xst_die("%s failed", cmd);
	return (uint32_t)strtoul(out, NULL, 10);
}

int main(int argc, char **argv)
{
	char cmd[512], sock[256], id[16];

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: test-netback-hostile\n"
		       "A hostile netfront against pvio-netback under a private xensim, in a\n"
		       "private network namespace. Needs root, XENSIM and NETBACK.\n");
		return 0;
	}
	xensim_bin = getenv("XENSIM");
	netback_bin = getenv("NETBACK");
	if (!xensim_bin || !netback_bin)
		xst_die("XENSIM and NETBACK must be set");
	if (geteuid() != 0)
		skip("needs root (a network namespace, a TAP device)");
	if (unshare(CLONE_NEWNET))
		skip("cannot create a network namespace here");
	if (access("/dev/net/tun", R_OK | W_OK))
		skip("no /dev/net/tun");
	/* a quiet dom0: no IPv6 autoconfiguration chatter towards the guest */
	sysctl_w("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	sysctl_w("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/pvio-nbh-XXXXXX");
	if (!mkdtemp(dir))
		xst_die("mkdtemp");
	atexit(cleanup);
	setenv("XENSIM_DIR", dir, 1);
	unsetenv("XENSIM_DOMID");
	snprintf(nb_log, sizeof(nb_log), "%s/nb.log", dir);
	snprintf(nb_stats, sizeof(nb_stats), "%s/nb.json", dir);
	snprintf(nb_err, sizeof(nb_err), "%s/nb.stderr", dir);
	snprintf(tapname, sizeof(tapname), "nbh%d", (int)(getpid() % 100000));
	snprintf(cmd, sizeof(cmd), "'%s' start >/dev/null", xensim_bin);
	if (system(cmd) != 0)
		xst_die("xensim start");
	snprintf(cmd, sizeof(cmd), "'%s' domain create nbguest --memory 64", xensim_bin);
	dom = popen_uint(cmd);
	snprintf(cmd, sizeof(cmd), "'%s' vif attach %u --mac %02x:%02x:%02x:%02x:%02x:%02x", xensim_bin, dom,
		 guest_mac[0], guest_mac[1], guest_mac[2], guest_mac[3], guest_mac[4], guest_mac[5]);
	devid = popen_uint(cmd);
	snprintf(be, sizeof(be), "/local/domain/0/backend/vif/%u/%u", dom, devid);
	snprintf(fe_dir, sizeof(fe_dir), "/local/domain/%u/device/vif/%u", dom, devid);

	snprintf(sock, sizeof(sock), "%s/xenstored/socket", dir);
	setenv("XENSTORED_PATH", sock, 1);
	xs0 = xs_open(0);
	if (!xs0)
		xst_die("xs_open dom0");
	snprintf(sock, sizeof(sock), "%s/xenstored/dom%u.sock", dir, dom);
	setenv("XENSTORED_PATH", sock, 1);
	snprintf(id, sizeof(id), "%u", dom);
	setenv("XENSIM_DOMID", id, 1);
	xsg = xs_open(0);
	if (!xsg || xsim_domain_open(&gd) || pvio_evtchn_open(&gev))
		xst_die("guest handles");
	unsetenv("XENSIM_DOMID");

	for (int i = 0; i < NDATA; i++)
		page_grant(&data[i], 0, 1); /* netback only reads what the guest sends */
	for (int i = 0; i < NRXB; i++)
		page_grant(&rxb[i], 0, 0);
	page_grant(&foreign, (domid_t)(dom + 7), 1);
	if (pvio_gnt_alloc_refs(gd, 1, &ungranted))
		xst_die("alloc ref");

	ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino_fd < 0 || inotify_add_watch(ino_fd, dir, IN_MOVED_TO) < 0)
		xst_die("inotify: %s", strerror(errno));
	netback_start();
	/* InitWait comes after the TAP exists and the signal handlers are set */
	CHECK(be_state_wait(1u << 2) == 2, "netback not in InitWait");
	if (!netback_alive())
		xst_die("netback exited at start");
	tap_up();
	printf("# handshake (vif %u/%u, TAP %s)\n", dom, devid, tapname);
	if (fe_connect() != 4)
		xst_die("no connection");
	CHECK(log_has("connected:"), "connect not logged");

	test_tx();
	test_mq_refused();
	test_event_storm();
	test_rx_no_buffers();

	printf("# toolstack detach\n");
	snprintf(cmd, sizeof(cmd), "'%s' vif detach %u %u >/dev/null", xensim_bin, dom, devid);
	CHECK(system(cmd) == 0, "xensim vif detach");
	CHECK(netback_wait() == 0, "netback did not exit 0 after detach");
	struct stat sb;
	CHECK(stat(nb_err, &sb) == 0 && sb.st_size == 0, "netback wrote to stderr (see %s)", nb_err);
	CHECK(rings_free() == 0, "rings still mapped after detach");
	for (int i = 0; i < NDATA; i++)
		CHECK(pvio_gnt_end_access(gd, data[i].ref) == 0, "tx page %d still mapped", i);
	for (int i = 0; i < NRXB; i++)
		CHECK(pvio_gnt_end_access(gd, rxb[i].ref) == 0, "rx page %d still mapped", i);

	pvio_evtchn_close(gev);
	xsim_domain_close(gd);
	xs_close(xsg);
	xs_close(xs0);
	printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "PASS", checks, failures);
	return failures ? 1 : 0;
}
