/* SPDX-License-Identifier: MIT */
/* The dom0 end of a vif: a TAP device with virtio-net headers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "private.h"

int nb_tap_open(const char *name, char *actual, size_t n)
{
	struct ifreq ifr;
	int fd, hdrsz = (int)sizeof(struct virtio_net_hdr), e;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	/* no packet-info prefix; a virtio_net_hdr carries the offloads */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	snprintf(actual, n, "%s", ifr.ifr_name);
	/* no offloads until the frontend says what it can take */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	return fd;
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
