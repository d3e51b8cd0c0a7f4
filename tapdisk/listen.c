/* SPDX-License-Identifier: MIT */
/*
 * The listening unix sockets tapdisk serves (control, NBD export).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tapdisk.h"

int td_listen(const char *path, const char *what, int owner_only, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old = 0;
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		td_log(TD_ERR, "%s socket path %s is too long", what, path);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A live server on the path means another tapdisk serves it: refuse.
	 * A dead one's socket is stale: replace it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		td_log(TD_ERR, "%s socket %s is served by another process: refusing to start", what, path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (owner_only)
		old = umask(0177); /* srw------- */
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (owner_only)
		umask(old);
	if (err < 0 || listen(fd, backlog) < 0) {
		err = errno;
		close(fd);
		errno = err;
		goto fail;
	}
	return fd;
fail:
	err = -errno;
	td_log(TD_ERR, "%s socket %s: %s", what, path, strerror(errno));
	return err;
}
