/* SPDX-License-Identifier: MIT */
/*
 * tapctl: talk to running tapdisks over their control sockets
 * (tapdisk-DOMID-DEVID.sock in the control directory).  Each command is one
 * line to one socket; the reply is one JSON line.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tapctl [--ctl-dir DIR] [--json] list|pause|unpause|stats|destroy [DOMID DEVID]\n"
		"  list      one line per tapdisk (domid devid dev state paused pid params,\n"
		"            then nbd SOCKET when it exports the disk over NBD); with --json\n"
		"            a JSON array of their info objects (\"nbd\": the socket or null)\n"
		"  stats     JSON counters of one tapdisk (or a JSON array of all)\n"
		"  pause     stop taking requests (guest ring and NBD clients); returns\n"
		"            once in-flight requests drained\n"
		"  unpause   take requests again\n"
		"  destroy   close the device down as a detach would; tapdisk then exits\n"
		"pause, unpause and destroy need DOMID DEVID.  DIR defaults to $PVIO_CTL_DIR,\n"
		"else $XENSIM_DIR/tapdisk, else /run/pvio.  Exit status 0 when every\n"
		"addressed tapdisk answered ok, 1 otherwise.\n");
}

static char ctl_dir[4096];

/* Send @cmd to @sock, read the one-line reply into @buf. */
static int ask(const char *sock, const char *cmd, char *buf, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd, err;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (dprintf(fd, "%s\n", cmd) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	while (got < len - 1) {
		/* pause and destroy answer once done; bound the wait */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 60000);
		if (r <= 0) {
			close(fd);
			return r == 0 ? -ETIMEDOUT : -errno;
		}
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	close(fd);
	buf[got] = 0;
	if (!got)
		return -ECONNRESET;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int is_sock_name(const char *n, unsigned *domid, unsigned *devid)
{
	int end = 0;

	return sscanf(n, "tapdisk-%u-%u.sock%n", domid, devid, &end) == 2 && n[end] == 0;
}

/* " nbd SOCKET" for the text listing, or nothing. */
static void nbd_suffix(const char *nbd, char *out, size_t len)
{
	if (nbd[0] && strcmp(nbd, "null"))
		snprintf(out, len, " nbd %s", nbd);
	else
		out[0] = 0;
}

/* Crude field extraction from our own flat JSON, for the text listing. */
static void field(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	out[0] = 0;
	p = strstr(json, pat);
	if (!p)
		return;
	p += strlen(pat);
	if (*p == '"')
		p++;
	while (p[n] && p[n] != '"' && p[n] != ',' && p[n] != '}' && n < len - 1)
		n++;
	memcpy(out, p, n);
	out[n] = 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ctl-dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cmd, *env;
	char sock[8192], buf[8192];
	int o, json = 0, rc = 0, err;

	while ((o = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
		switch (o) {
		case 'd': snprintf(ctl_dir, sizeof(ctl_dir), "%s", optarg); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "list") && strcmp(cmd, "pause") && strcmp(cmd, "unpause") &&
	    strcmp(cmd, "stats") && strcmp(cmd, "destroy")) {
		fprintf(stderr, "tapctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (!ctl_dir[0]) {
		if ((env = getenv("PVIO_CTL_DIR")) && env[0])
			snprintf(ctl_dir, sizeof(ctl_dir), "%s", env);
		else if ((env = getenv("XENSIM_DIR")) && env[0])
			snprintf(ctl_dir, sizeof(ctl_dir), "%s/tapdisk", env);
		else
			snprintf(ctl_dir, sizeof(ctl_dir), "/run/pvio");
	}
	if (argc - optind == 2) {
		char *e1, *e2;
		unsigned long domid = strtoul(argv[optind], &e1, 10), devid = strtoul(argv[optind + 1], &e2, 10);
		if (*e1 || *e2 || !argv[optind][0] || !argv[optind + 1][0]) {
			fprintf(stderr, "tapctl: DOMID and DEVID are numbers\n");
			return 2;
		}
		snprintf(sock, sizeof(sock), "%s/tapdisk-%lu-%lu.sock", ctl_dir, domid, devid);
		err = ask(sock, !strcmp(cmd, "list") ? "info" : cmd, buf, sizeof(buf));
		if (err) {
			fprintf(stderr, "tapctl: no tapdisk answers on %s: %s\n", sock, strerror(-err));
			return 1;
		}
		if (!strcmp(cmd, "list") && !json) {
			char a[64], b[64], d[64], s[64], p[64], pid[32], prm[256], nbd[256], ns[300];
			field(buf, "domid", a, sizeof(a));
			field(buf, "devid", b, sizeof(b));
			field(buf, "dev", d, sizeof(d));
			field(buf, "state", s, sizeof(s));
			field(buf, "paused", p, sizeof(p));
			field(buf, "pid", pid, sizeof(pid));
			field(buf, "params", prm, sizeof(prm));
			field(buf, "nbd", nbd, sizeof(nbd));
			nbd_suffix(nbd, ns, sizeof(ns));
			printf("%s %s %s %s%s pid %s %s%s\n", a, b, d, s, strcmp(p, "true") ? "" : " (paused)",
			       pid, prm, ns);
		} else {
			printf("%s\n", buf);
		}
		return strstr(buf, "\"ok\":false") ? 1 : 0;
	}
	if (argc - optind != 0) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "list") && strcmp(cmd, "stats")) {
		fprintf(stderr, "tapctl: %s needs DOMID DEVID\n", cmd);
		return 2;
	}
	DIR *d = opendir(ctl_dir);
	int n = 0;
	if (!d) {
		if (errno == ENOENT) {
			if (json || !strcmp(cmd, "stats"))
				printf("[]\n");
			return 0;
		}
		fprintf(stderr, "tapctl: %s: %s\n", ctl_dir, strerror(errno));
		return 1;
	}
	if (json || !strcmp(cmd, "stats"))
		printf("[");
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned domid, devid;
		if (!is_sock_name(de->d_name, &domid, &devid))
			continue;
		snprintf(sock, sizeof(sock), "%s/%s", ctl_dir, de->d_name);
		err = ask(sock, !strcmp(cmd, "list") ? "info" : "stats", buf, sizeof(buf));
		if (err) {
			fprintf(stderr, "tapctl: %s: %s (stale socket?)\n", sock, strerror(-err));
			rc = 1;
			continue;
		}
		if (json || !strcmp(cmd, "stats")) {
			printf("%s%s", n ? "," : "", buf);
		} else {
			char s[64], dv[64], p[64], pid[32], prm[256], nbd[256], ns[300];
			field(buf, "state", s, sizeof(s));
			field(buf, "dev", dv, sizeof(dv));
			field(buf, "paused", p, sizeof(p));
			field(buf, "pid", pid, sizeof(pid));
			field(buf, "params", prm, sizeof(prm));
			field(buf, "nbd", nbd, sizeof(nbd));
			nbd_suffix(nbd, ns, sizeof(ns));
			printf("%u %u %s %s%s pid %s %s%s\n", domid, devid, dv, s,
			       strcmp(p, "true") ? "" : " (paused)", pid, prm, ns);
		}
		n++;
	}
	closedir(d);
	if (json || !strcmp(cmd, "stats"))
		printf("]\n");
	return rc;
}
