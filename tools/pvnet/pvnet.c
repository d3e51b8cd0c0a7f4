/* SPDX-License-Identifier: MIT */
/*
 * pvnet: the guest's PV network interface as a TAP device. Runs in a domU
 * (xensim run DOMID -- [ip netns exec NS] pvnet --tap NAME): connects
 * device/vif/N with netfront and passes frames between it and TAP NAME
 * (created in the caller's network namespace, with the vif's MAC), so
 * ordinary programs there use the PV interface.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "pvio/netfront_xensim.h"
#include "pvio/net_offload.h"

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

static int tap_open(const char *name, const uint8_t mac[6], unsigned offl)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), s, hdr = sizeof(struct virtio_net_hdr);

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, (unsigned long)offl) < 0)
		goto fail;
	/* the interface carries the vif's MAC, as a guest kernel's eth0 would */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		goto fail;
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) {
		close(s);
		goto fail;
	}
	close(s);
	return fd;
fail:
	s = -errno;
	close(fd);
	return s;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pvnet [--vif N] --tap NAME [--no-sg] [--no-csum] [--no-gso] [--no-split] [--json]\n"
		"Run in a domU (xensim run DOMID -- ip netns exec NS pvnet --tap eth0): connect\n"
		"the domain's vif N (default 0) and bridge it to TAP NAME in this network\n"
		"namespace. Prints one line once connected (with --json: an object with\n"
		"the negotiated features), runs until SIGTERM/SIGINT or the backend closes,\n"
		"then prints its counters.\n"
		"  --no-sg --no-csum --no-gso   do not negotiate scatter-gather,\n"
		"                               checksum offload or GSO\n"
		"  --no-split                   one event channel for tx and rx\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pvio_netfront_config cfg = { 0 };
	struct pvio_netfront_xensim *x;
	struct pvio_netfront *nf;
	struct pvio_netfront_info in;
	struct pvio_netfront_stats st;
	const char *tap = NULL;
	unsigned vif = 0, offl = 0;
	uint64_t dropped = 0;
	int o, err, fd, json = 0, rc = 0;
	static uint8_t buf[sizeof(struct virtio_net_hdr) + PVIO_NETFRONT_MAX_FRAME + 1];
	struct sigaction sa;

	while ((o = getopt_long(argc, argv, "v:t:SCGEjh", opts, NULL)) != -1) {
		switch (o) {
		case 'v': vif = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': tap = optarg; break;
		case 'S': cfg.no_sg = true; break;
		case 'C': cfg.no_csum = true; break;
		case 'G': cfg.no_gso = true; break;
		case 'E': cfg.no_split = true; break;
		case 'j': json = 1; break;
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
	fd = tap_open(tap, in.mac, offl);
	if (fd < 0) {
		fprintf(stderr, "pvnet: cannot create TAP %s: %s\n", tap, strerror(-fd));
		pvio_netfront_xensim_close(x);
		return 1;
	}
	if (json)
		printf("{\"connected\": true, \"dir\": \"%s\", \"tap\": \"%s\", \"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\", "
		       "\"sg\": %d, \"tx_csum\": %d, \"tx_gso4\": %d, \"tx_gso6\": %d, \"rx_gso4\": %d, \"split\": %d}\n",
		       pvio_netfront_xensim_dir(x), tap, in.mac[0], in.mac[1], in.mac[2], in.mac[3], in.mac[4], in.mac[5],
		       in.sg, in.tx_csum, in.tx_gso4, in.tx_gso6, in.rx_gso4, in.split);
	else
		printf("pvnet: connected %s to TAP %s (mac %02x:%02x:%02x:%02x:%02x:%02x, sg %d csum %d gso %d/%d, "
		       "split %d)\n", pvio_netfront_xensim_dir(x), tap, in.mac[0], in.mac[1], in.mac[2], in.mac[3],
		       in.mac[4], in.mac[5], in.sg, in.tx_csum, in.tx_gso4, in.tx_gso6, in.split);
	fflush(stdout);

	while (!stop) {
		struct pvio_netfront_meta m;
		int n, ev;

		/* backend -> TAP */
		while ((n = pvio_netfront_recv(nf, buf + sizeof(struct virtio_net_hdr),
					       PVIO_NETFRONT_MAX_FRAME, &m)) > 0) {
			struct virtio_net_hdr *vh = (struct virtio_net_hdr *)buf;
			uint8_t *f = buf + sizeof(*vh);
			uint16_t start, off, hend;
			uint8_t proto;
			bool v6;

			memset(vh, 0, sizeof(*vh));
			if (m.flags & PVIO_NETFRONT_F_CSUM_BLANK || m.gso_type) {
				if (pvio_net_l4_locate(f, (size_t)n, &start, &off, &proto, &hend, &v6)) {
					dropped++;
					continue;
				}
				vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
				vh->csum_start = start;
				vh->csum_offset = off;
				if (m.gso_type) {
					if (proto != 6) {
						dropped++;
						continue;
					}
					vh->gso_type = m.gso_type == PVIO_NETFRONT_GSO_TCPV6 ? VIRTIO_NET_HDR_GSO_TCPV6
											     : VIRTIO_NET_HDR_GSO_TCPV4;
					vh->gso_size = m.gso_size;
					vh->hdr_len = hend;
				}
			} else if (m.flags & PVIO_NETFRONT_F_DATA_VALIDATED) {
				vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
			}
			if (write(fd, buf, sizeof(*vh) + (size_t)n) < 0)
				dropped++;
		}
		if (n != -PVIO_NETFRONT_EAGAIN)
			break;
		/* TAP -> backend, while a largest frame fits */
		while (pvio_netfront_can_send(nf, PVIO_NETFRONT_MAX_FRAME)) {
			struct virtio_net_hdr *vh = (struct virtio_net_hdr *)buf;
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0)
				break;
			if ((size_t)r <= sizeof(*vh))
				continue;
			memset(&m, 0, sizeof(m));
			if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
				m.flags |= PVIO_NETFRONT_F_CSUM_BLANK;
			else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID)
				m.flags |= PVIO_NETFRONT_F_DATA_VALIDATED;
			switch (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
			case VIRTIO_NET_HDR_GSO_TCPV4: m.gso_type = PVIO_NETFRONT_GSO_TCPV4; break;
			case VIRTIO_NET_HDR_GSO_TCPV6: m.gso_type = PVIO_NETFRONT_GSO_TCPV6; break;
			default: break;
			}
			m.gso_size = m.gso_type ? vh->gso_size : 0;
			if (pvio_netfront_send(nf, buf + sizeof(*vh), (size_t)r - sizeof(*vh), &m))
				dropped++;
		}
		pvio_netfront_xensim_set_user_fd(x, pvio_netfront_can_send(nf, PVIO_NETFRONT_MAX_FRAME) ? fd : -1);
		ev = pvio_netfront_wait(nf, 1000);
		if (ev < 0 || pvio_netfront_process(nf, (unsigned)ev) < 0) {
			fprintf(stderr, "pvnet: the backend closed or broke the protocol\n");
			rc = 1;
			break;
		}
	}
	pvio_netfront_get_stats(nf, &st);
	if (json)
		printf("{\"tx_packets\": %llu, \"tx_bytes\": %llu, \"tx_errors\": %llu, \"rx_packets\": %llu, "
		       "\"rx_bytes\": %llu, \"rx_errors\": %llu, \"dropped\": %llu}\n",
		       (unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes,
		       (unsigned long long)st.tx_errors, (unsigned long long)st.rx_packets,
		       (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_errors, (unsigned long long)dropped);
	else
		printf("pvnet: tx %llu packets (%llu errors), rx %llu packets (%llu bad), %llu dropped locally\n",
		       (unsigned long long)st.tx_packets, (unsigned long long)st.tx_errors,
		       (unsigned long long)st.rx_packets, (unsigned long long)st.rx_errors, (unsigned long long)dropped);
	close(fd);
	err = pvio_netfront_xensim_close(x);
	if (err && err != -EBUSY)
		fprintf(stderr, "pvnet: close: %s\n", strerror(-err));
	return rc;
}
