/* SPDX-License-Identifier: MIT */
/*
 * pvnet: the guest's PV network interface as a TAP device. Runs in a domU
 * (xensim run DOMID -- [ip netns exec NS] pvnet --tap NAME): connects
 * device/vif/N with netfront and passes frames between it and TAP NAME
 * (created in the caller's network namespace, with the vif's MAC), so
 * ordinary programs there use the PV interface. With --queues N (and a
 * backend that offers multi-queue) the TAP is multi-queue: the kernel
 * hashes each flow to one of its queues, and queue i of the TAP is queue i
 * of the vif, both ways.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "pvio/netfront_xensim.h"
#include "pvio/net_offload.h"

/* frames read from the TAP before they are published to the backend */
#define TX_BURST 8u

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

static int tap_file(const char *name, bool multi)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), hdr = sizeof(struct virtio_net_hdr), e;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* TAP @name with @n queues into fds[], the vif's MAC, offloads @offl. */
static int tap_open(const char *name, const uint8_t mac[6], unsigned offl, unsigned n, int *fds)
{
	struct ifreq ifr;
	unsigned i;
	int s, e;

	for (i = 0; i < n; i++) {
		fds[i] = tap_file(name, n > 1);
		if (fds[i] < 0) {
			e = fds[i];
			goto fail;
		}
	}
	if (ioctl(fds[0], TUNSETOFFLOAD, (unsigned long)offl) < 0) {
		e = -errno;
		goto fail;
	}
	/* the interface carries the vif's MAC, as a guest kernel's eth0 would */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		e = -errno;
		goto fail;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) {
		e = -errno;
		close(s);
		goto fail;
	}
	close(s);
	return 0;
fail:
	while (i--)
		close(fds[i]);
	return e;
}

/* Headers are parsed from a private copy of a received frame's first bytes
 * (the backend can still write the rx pages) and the kernel gets exactly
 * that copy; 512 bytes cover Ethernet, VLAN, IPv6 extension headers and TCP
 * options of any sane frame; longer headers take the copying path. */
#define HDR_COPY 512u

/* The virtio_net_hdr for a frame of @n bytes (@f: at least its headers,
 * @have bytes of it) with offloads @m; false if it must be dropped. */
static bool vnet_hdr(struct virtio_net_hdr *vh, const uint8_t *f, size_t have, const struct pvio_netfront_meta *m)
{
	uint16_t start, off, hend;
	uint8_t proto;
	bool v6;

	memset(vh, 0, sizeof(*vh));
	if (m->flags & PVIO_NETFRONT_F_CSUM_BLANK || m->gso_type) {
		if (pvio_net_l4_locate(f, have, &start, &off, &proto, &hend, &v6))
			return false;
		vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh->csum_start = start;
		vh->csum_offset = off;
		if (m->gso_type) {
			if (proto != 6)
				return false;
			vh->gso_type = m->gso_type == PVIO_NETFRONT_GSO_TCPV6 ? VIRTIO_NET_HDR_GSO_TCPV6
									     : VIRTIO_NET_HDR_GSO_TCPV4;
			vh->gso_size = m->gso_size;
			vh->hdr_len = hend;
		}
	} else if (m->flags & PVIO_NETFRONT_F_DATA_VALIDATED) {
		vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	return true;
}

/*
 * One received frame, in place in the rx pages (@segs), to the TAP with
 * one writev: [virtio_net_hdr][private copy of the first bytes][the rest
 * straight from the pages]. No copy of the payload in this process.
 * Returns false if it was dropped.
 */
static bool to_tap(int fd, const struct pvio_netfront_seg *segs, int nseg, const struct pvio_netfront_meta *m,
		   uint8_t *scratch)
{
	struct virtio_net_hdr vh;
	struct iovec iov[2 + PVIO_NETFRONT_MAX_SEGS];
	uint8_t hdr[HDR_COPY];
	size_t total = 0, have = 0;
	int n = 2;

	for (int i = 0; i < nseg; i++)
		total += segs[i].len;
	/* the private copy of the headers; iov gets what follows them */
	for (int i = 0; i < nseg; i++) {
		size_t take = segs[i].len;
		if (have < sizeof(hdr)) {
			size_t c = take < sizeof(hdr) - have ? take : sizeof(hdr) - have;
			memcpy(hdr + have, segs[i].base, c);
			have += c;
			if (c < take)
				iov[n++] = (struct iovec){ (uint8_t *)segs[i].base + c, take - c };
		} else {
			iov[n++] = (struct iovec){ segs[i].base, take };
		}
	}
	if (!vnet_hdr(&vh, hdr, have, m)) {
		if (have == total)
			return false;
		/* headers longer than the copy: parse and send a whole copy */
		for (int i = 0, off = 0; i < nseg; off += (int)segs[i].len, i++)
			memcpy(scratch + off, segs[i].base, segs[i].len);
		if (!vnet_hdr(&vh, scratch, total, m))
			return false;
		iov[0] = (struct iovec){ &vh, sizeof(vh) };
		iov[1] = (struct iovec){ scratch, total };
		return writev(fd, iov, 2) >= 0;
	}
	iov[0] = (struct iovec){ &vh, sizeof(vh) };
	iov[1] = (struct iovec){ hdr, have };
	return writev(fd, iov, n) >= 0;
}

/*
 * One frame from the TAP straight into reserved tx pages (readv:
 * [virtio_net_hdr][page 0][page 1]...) and onto queue @q, not published
 * yet (the caller pushes the burst). Returns 1 sent, 0 dropped, -1 the TAP
 * is drained (or no room: the caller checked there was).
 */
static int from_tap(struct pvio_netfront *nf, unsigned q, int fd)
{
	struct pvio_netfront_seg segs[PVIO_NETFRONT_MAX_SEGS];
	struct iovec iov[1 + PVIO_NETFRONT_MAX_SEGS];
	struct virtio_net_hdr vh;
	struct pvio_netfront_meta m;
	int nseg = pvio_netfront_tx_reserve(nf, q, segs);
	ssize_t r;

	if (nseg <= 0)
		return -1;
	iov[0] = (struct iovec){ &vh, sizeof(vh) };
	for (int i = 0; i < nseg; i++)
		iov[1 + i] = (struct iovec){ segs[i].base, segs[i].len };
	r = readv(fd, iov, 1 + nseg);
	if (r < 0 || (size_t)r <= sizeof(vh)) {
		pvio_netfront_tx_commit(nf, q, 0, NULL); /* cancel */
		return r < 0 ? -1 : 0;
	}
	memset(&m, 0, sizeof(m));
	m.flags = PVIO_NETFRONT_F_MORE;
	if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		m.flags |= PVIO_NETFRONT_F_CSUM_BLANK;
	else if (vh.flags & VIRTIO_NET_HDR_F_DATA_VALID)
		m.flags |= PVIO_NETFRONT_F_DATA_VALIDATED;
	switch (vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4: m.gso_type = PVIO_NETFRONT_GSO_TCPV4; break;
	case VIRTIO_NET_HDR_GSO_TCPV6: m.gso_type = PVIO_NETFRONT_GSO_TCPV6; break;
	default: break;
	}
	m.gso_size = m.gso_type ? vh.gso_size : 0;
	/* a frame longer than the pages was cut short by the TAP (it
	 * returns the whole length): the commit refuses the length */
	return pvio_netfront_tx_commit(nf, q, (size_t)r - sizeof(vh), &m) == 0;
}

static bool all_polling(const bool *polling, unsigned nq)
{
	for (unsigned q = 0; q < nq; q++)
		if (!polling[q])
			return false;
	return true;
}

/* A queue that was full and has room now (after a reap)? */
static bool any_can_send(struct pvio_netfront *nf, const bool *polling, unsigned nq)
{
	for (unsigned q = 0; q < nq; q++)
		if (!polling[q] && pvio_netfront_can_send_queue(nf, q, PVIO_NETFRONT_MAX_FRAME))
			return true;
	return false;
}

/* The device died: an orderly close by the backend (it went Closing or
 * Closed, e.g. netback stopped or the vif detached) is the end of the
 * service, exit 0; a protocol breach is an error. The exit status. */
static int backend_gone(const struct pvio_netfront *nf)
{
	if (pvio_netfront_backend_closed(nf)) {
		fprintf(stderr, "pvnet: the backend closed the device: leaving\n");
		return 0;
	}
	fprintf(stderr, "pvnet: the backend broke the protocol: leaving\n");
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvnet [--vif N] --tap NAME [--queues N] [--no-sg] [--no-csum] [--no-gso]\n"
		"             [--no-split] [--json]\n"
		"Run in a domU (xensim run DOMID -- ip netns exec NS pvnet --tap eth0): connect\n"
		"the domain's vif N (default 0) and bridge it to TAP NAME in this network\n"
		"namespace. Prints one line once connected (with --json: an object with\n"
		"the negotiated features), runs until SIGTERM/SIGINT or the backend closes,\n"
		"then prints its counters.\n"
		"  --no-sg --no-csum --no-gso   do not negotiate scatter-gather,\n"
		"                               checksum offload or GSO\n"
		"  --no-split                   one event channel for tx and rx (per queue)\n"
		"  --queues N                   ask for up to N queues (1..%u, default 1); the\n"
		"                               vif gets as many as the backend also offers\n"
		"                               (multi-queue-max-queues) and the TAP as many\n",
		PVIO_NETFRONT_MAX_QUEUES);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vif", required_argument, NULL, 'v' },
		{ "tap", required_argument, NULL, 't' },
		{ "no-sg", no_argument, NULL, 'S' },
		{ "no-csum", no_argument, NULL, 'C' },
		{ "no-gso", no_argument, NULL, 'G' },
		{ "no-split", no_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'j' },
		{ "queues", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pvio_netfront_config cfg = { 0 };
	struct pvio_netfront_xensim *x;
	struct pvio_netfront *nf;
	struct pvio_netfront_info in;
	struct pvio_netfront_stats st;
	const char *tap = NULL;
	unsigned vif = 0, offl = 0, nq;
	uint64_t dropped = 0;
	int o, err, json = 0, rc = 0, efd;
	int fds[PVIO_NETFRONT_MAX_QUEUES];
	bool polling[PVIO_NETFRONT_MAX_QUEUES];
	char *end;
	/* for frames whose headers do not fit HDR_COPY */
	static uint8_t buf[PVIO_NETFRONT_MAX_FRAME];
	struct sigaction sa;

	while ((o = getopt_long(argc, argv, "v:t:SCGEjq:h", opts, NULL)) != -1) {
		switch (o) {
		case 'v': vif = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': tap = optarg; break;
		case 'S': cfg.no_sg = true; break;
		case 'C': cfg.no_csum = true; break;
		case 'G': cfg.no_gso = true; break;
		case 'E': cfg.no_split = true; break;
		case 'j': json = 1; break;
		case 'q':
			cfg.max_queues = (unsigned)strtoul(optarg, &end, 10);
			if (*end || cfg.max_queues == 0 || cfg.max_queues > PVIO_NETFRONT_MAX_QUEUES) {
				fprintf(stderr, "pvnet: --queues takes 1..%u\n", PVIO_NETFRONT_MAX_QUEUES);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!tap || optind != argc || strlen(tap) >= IFNAMSIZ) {
		usage(stderr);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	err = pvio_netfront_xensim_open(vif, &cfg, &x);
	if (err) {
		fprintf(stderr, "pvnet: cannot connect vif %u: %s\n", vif, strerror(-err));
		return 1;
	}
	nf = pvio_netfront_xensim_dev(x);
	pvio_netfront_get_info(nf, &in);
	/* what the kernel may hand us: only what the backend accepts */
	if (in.tx_csum) {
		offl |= TUN_F_CSUM;
		if (in.tx_gso4)
			offl |= TUN_F_TSO4;
		if (in.tx_gso6)
			offl |= TUN_F_TSO6;
	}
	nq = in.num_queues;
	err = tap_open(tap, in.mac, offl, nq, fds);
	if (err < 0) {
		fprintf(stderr, "pvnet: cannot create TAP %s: %s\n", tap, strerror(-err));
		pvio_netfront_xensim_close(x);
		return 1;
	}
	/* one fd for the platform's wait: an epoll set of the TAP queues, each
	 * in it only while its ring can take a largest frame */
	efd = epoll_create1(EPOLL_CLOEXEC);
	for (unsigned i = 0; efd >= 0 && i < nq; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(efd, EPOLL_CTL_ADD, fds[i], &e) < 0) {
			close(efd);
			efd = -1;
		}
		polling[i] = true;
	}
	if (efd < 0) {
		fprintf(stderr, "pvnet: epoll: %s\n", strerror(errno));
		for (unsigned i = 0; i < nq; i++)
			close(fds[i]);
		pvio_netfront_xensim_close(x);
		return 1;
	}
	pvio_netfront_xensim_set_user_fd(x, efd);
	if (json)
		printf("{\"connected\": true, \"dir\": \"%s\", \"tap\": \"%s\", \"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\", "
		       "\"sg\": %d, \"tx_csum\": %d, \"tx_gso4\": %d, \"tx_gso6\": %d, \"rx_gso4\": %d, \"split\": %d, "
		       "\"queues\": %u}\n",
		       pvio_netfront_xensim_dir(x), tap, in.mac[0], in.mac[1], in.mac[2], in.mac[3], in.mac[4], in.mac[5],
		       in.sg, in.tx_csum, in.tx_gso4, in.tx_gso6, in.rx_gso4, in.split, nq);
	else
		printf("pvnet: connected %s to TAP %s (mac %02x:%02x:%02x:%02x:%02x:%02x, sg %d csum %d gso %d/%d, "
		       "split %d, queues %u)\n", pvio_netfront_xensim_dir(x), tap, in.mac[0], in.mac[1], in.mac[2],
		       in.mac[3], in.mac[4], in.mac[5], in.sg, in.tx_csum, in.tx_gso4, in.tx_gso6, in.split, nq);
	fflush(stdout);

	while (!stop) {
		struct pvio_netfront_meta m;
		int n = -PVIO_NETFRONT_EAGAIN, ev;

		/* backend -> TAP */
		for (unsigned q = 0; q < nq; q++) {
			struct pvio_netfront_seg segs[PVIO_NETFRONT_MAX_SEGS];

			while ((n = pvio_netfront_recv_segs(nf, q, segs, &m)) > 0) {
				if (!to_tap(fds[q], segs, n, &m, buf))
					dropped++;
				pvio_netfront_recv_release(nf, q);
			}
			if (n != -PVIO_NETFRONT_EAGAIN)
				break;
		}
		if (n != -PVIO_NETFRONT_EAGAIN)
			break;
		/* TAP -> backend, while a largest frame fits */
		for (unsigned q = 0; q < nq; q++) {
			unsigned burst = 0;
			bool want;

			while (pvio_netfront_can_send_queue(nf, q, PVIO_NETFRONT_MAX_FRAME)) {
				int r = from_tap(nf, q, fds[q]);

				if (r < 0)
					break;
				if (r == 0)
					dropped++;
				/* a bounded burst: the backend starts on it meanwhile */
				if (++burst == TX_BURST) {
					pvio_netfront_push_queue(nf, q);
					burst = 0;
				}
			}
			/* what the TAP had at once goes to the backend as one burst */
			pvio_netfront_push_queue(nf, q);
			want = pvio_netfront_can_send_queue(nf, q, PVIO_NETFRONT_MAX_FRAME);
			if (want != polling[q]) {
				struct epoll_event e = { .events = want ? EPOLLIN : 0, .data.u32 = q };
				epoll_ctl(efd, EPOLL_CTL_MOD, fds[q], &e);
				polling[q] = want;
			}
		}
		/* a full queue: reap now, which also asks for the tx-completion
		 * event we would wait for; with room again, go round at once */
		if (!all_polling(polling, nq)) {
			if (pvio_netfront_process(nf, 0) < 0) {
				rc = backend_gone(nf);
				break;
			}
			if (any_can_send(nf, polling, nq))
				continue;
		}
		ev = pvio_netfront_wait(nf, 1000);
		if (ev < 0 && stop)
			break; /* SIGTERM/SIGINT interrupted the wait */
		if (ev < 0 || pvio_netfront_process(nf, (unsigned)ev) < 0) {
			rc = ev < 0 ? 1 : backend_gone(nf);
			if (ev < 0)
				fprintf(stderr, "pvnet: waiting for events: %s\n", strerror(-ev));
			break;
		}
	}
	pvio_netfront_get_stats(nf, &st);
	if (json)
		printf("{\"tx_packets\": %llu, \"tx_bytes\": %llu, \"tx_errors\": %llu, \"rx_packets\": %llu, "
		       "\"rx_bytes\": %llu, \"rx_errors\": %llu, \"dropped\": %llu, \"notifies\": %llu}\n",
		       (unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes,
		       (unsigned long long)st.tx_errors, (unsigned long long)st.rx_packets,
		       (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_errors, (unsigned long long)dropped,
		       (unsigned long long)st.notifies);
	else
		printf("pvnet: tx %llu packets (%llu errors), rx %llu packets (%llu bad), %llu dropped locally, "
		       "%llu events sent\n", (unsigned long long)st.tx_packets, (unsigned long long)st.tx_errors,
		       (unsigned long long)st.rx_packets, (unsigned long long)st.rx_errors, (unsigned long long)dropped,
		       (unsigned long long)st.notifies);
	pvio_netfront_xensim_set_user_fd(x, -1);
	close(efd);
	for (unsigned i = 0; i < nq; i++)
		close(fds[i]);
	err = pvio_netfront_xensim_close(x);
	if (err && err != -EBUSY)
		fprintf(stderr, "pvnet: close: %s\n", strerror(-err));
	return rc;
}
