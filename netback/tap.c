/* SPDX-License-Identifier: MIT */
/*
 * The dom0 end of a vif: a TAP device with virtio-net headers; with more
 * than one queue, a multi-queue TAP (IFF_MULTI_QUEUE) with one file per
 * queue, the kernel spreading flows over the attached ones by hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "private.h"

static int tap_file(const char *name, bool multi, char *actual, size_t n)
{
	struct ifreq ifr;
	int fd, hdrsz = (int)sizeof(struct virtio_net_hdr), e;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	/* no packet-info prefix; a virtio_net_hdr carries the offloads */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	if (actual)
		snprintf(actual, n, "%s", ifr.ifr_name);
	return fd;
}

/*
 * Create TAP @name with @nfds queues (1: an ordinary TAP) into fds[]. All
 * files are opened now, while the device is still in our network
 * namespace under its name: the toolstack may move it elsewhere before
 * the frontend connects, after which TUNSETIFF could not find it. Queues
 * are attached and detached later with TUNSETQUEUE on their file.
 */
int nb_tap_open(const char *name, char *actual, size_t n, unsigned nfds, int *fds)
{
	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	for (unsigned i = 0; i < nfds; i++) {
		/* the kernel may have picked the name (e.g. "vif%d"): reuse it */
		int fd = tap_file(i ? actual : name, nfds > 1, i ? NULL : actual, n);

		/* no offloads until the frontend says what it can take */
		if (fd >= 0 && i == 0 && ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
			int e = -errno;
			close(fd);
			fd = e;
		}
		if (fd < 0) {
			while (i--)
				close(fds[i]);
			return fd;
		}
		fds[i] = fd;
	}
	return 0;
}

int nb_tap_set_offload(int fd, bool csum, bool tso4, bool tso6)
{
	unsigned long f = 0;

	/* What the kernel may hand us: partial checksums and TSO only if the
	 * guest accepts csum_blank and the matching GSO type on receive. */
	if (csum) {
		f |= TUN_F_CSUM;
		if (tso4)
			f |= TUN_F_TSO4;
		if (tso6)
			f |= TUN_F_TSO6;
	}
	return ioctl(fd, TUNSETOFFLOAD, f) < 0 ? -errno : 0;
}

/* Attach (the kernel may send frames to it) or detach one queue's file. */
int nb_tap_queue_attach(int fd, bool attach)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}
