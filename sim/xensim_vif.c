/* SPDX-License-Identifier: MIT */
/*
 * xensim vif — the toolstack's half of a virtual network interface: what
 * libxl (libxl_nic.c, libxl__device_nic_add) writes to xenstore to give a
 * domain a vif, how it detaches one, and the force-removal at domain
 * destroy. The backend (pvio-netback) reads these keys; docs/net-path.md
 * is the contract.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <xenstore.h>

#include "xensim_cli.h"

#define die xsim_cli_die

/* libxl's LIBXL_DESTROY_TIMEOUT */
#define VIF_DETACH_TIMEOUT_S 10
#define VIF_TX_TRIES 16
/* devids a CLI user may pick; libxl allocates the lowest free one */
#define VIF_MAX_DEVID 255
#define VIF_SCRIPT "/etc/xen/scripts/vif-bridge"

enum { XB_CLOSED = 6 };

struct vif_paths {
	char back[128];	 /* /local/domain/0/backend/vif/<domid>/<devid> */
	char front[128]; /* /local/domain/<domid>/device/vif/<devid> */
	char libxl[128]; /* /libxl/<domid>/device/vif/<devid> */
};

static void vif_paths(struct vif_paths *p, uint32_t domid, long devid)
{
	snprintf(p->back, sizeof(p->back), "/local/domain/0/backend/vif/%u/%ld", domid, devid);
	snprintf(p->front, sizeof(p->front), "/local/domain/%u/device/vif/%ld", domid, devid);
	snprintf(p->libxl, sizeof(p->libxl), "/libxl/%u/device/vif/%ld", domid, devid);
}

static char *xs_get(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
	unsigned int len;

	return xs_read(xs, t, path, &len);
}

static bool xs_exists(struct xs_handle *xs, xs_transaction_t t, const char *path)
{
	char *v = xs_get(xs, t, path);

	free(v);
	return v != NULL;
}

struct kv {
	const char *key, *val;
};

static bool tx_write(struct xs_handle *xs, xs_transaction_t t, const char *dir, const char *key,
		     const char *val)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_write(xs, t, path, val, (unsigned int)strlen(val));
}

static bool tx_dir(struct xs_handle *xs, xs_transaction_t t, const char *dir,
		   struct xs_permissions *perms, unsigned nperms, const struct kv *kvs, size_t n)
{
	if (!xs_mkdir(xs, t, dir) || !xs_set_permissions(xs, t, dir, perms, nperms))
		return false;
	for (size_t i = 0; i < n; i++)
		if (kvs[i].val && !tx_write(xs, t, dir, kvs[i].key, kvs[i].val))
			return false;
	return true;
}

/* "xx:xx:xx:xx:xx:xx", hex, unicast; normalised to lower case in @out. */
static int parse_mac(const char *s, char out[24])
{
	unsigned b[6];
	int n = 0;

	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &n) != 6 ||
	    n != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
			return -EINVAL;
	if (b[0] & 1)
		return -EINVAL; /* multicast bit: not an interface address */
	snprintf(out, 24, "%02x:%02x:%02x:%02x:%02x:%02x", b[0] & 0xff, b[1] & 0xff, b[2] & 0xff, b[3] & 0xff, b[4] & 0xff, b[5] & 0xff);
	return 0;
}

/* libxl's default: Xen's OUI 00:16:3e and three random bytes. */
static void random_mac(char out[24])
{
	uint8_t r[3] = { 0 };

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r[0] = (uint8_t)time(NULL), r[1] = (uint8_t)getpid(), r[2] = 0x5a;
	snprintf(out, 24, "00:16:3e:%02x:%02x:%02x", r[0] & 0x7f, r[1], r[2]);
}

/* "BYTES/s" libxl-style rate -> the backend's "bytes,usec" with libxl's 50 ms
 * interval. Accepts a plain number of bytes per second. */
static int parse_rate(const char *s, char *out, size_t n)
{
	char *end;
	unsigned long long bps;

	errno = 0;
	bps = strtoull(s, &end, 10);
	if (errno || end == s || (*end && strcmp(end, "B/s")) || bps == 0 || bps > (1ull << 40))
		return -EINVAL;
	/* bytes per 50000 us, at least one */
	snprintf(out, n, "%llu,50000", bps / 20 ? bps / 20 : 1);
	return 0;
}

static int vif_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mac", required_argument, NULL, 'm' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "devid", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *bridge = "xenbr0";
	char mac[24] = "", domstr[16], devstr[16], rate[48] = "", dompath[64];
	struct vif_paths p;
	struct xs_handle *xs;
	uint32_t domid;
	long devid = -1;
	int o, tries;

	optind = 1;
	while ((o = getopt_long(argc, argv, "m:b:d:r:h", opts, NULL)) != -1) {
		switch (o) {
		case 'm':
			if (parse_mac(optarg, mac))
				die("--mac takes a unicast xx:xx:xx:xx:xx:xx, not '%s'", optarg);
			break;
		case 'b':
			bridge = optarg;
			if (!*bridge || strlen(bridge) > 15 || strchr(bridge, '/'))
				die("--bridge takes an interface name (1..15 chars), not '%s'", optarg);
			break;
		case 'd': {
			char *end;
			errno = 0;
			devid = strtol(optarg, &end, 10);
			if (errno || *end || devid < 0 || devid > VIF_MAX_DEVID)
				die("--devid takes 0..%d, not '%s'", VIF_MAX_DEVID, optarg);
			break;
		}
		case 'r':
			if (parse_rate(optarg, rate, sizeof(rate)))
				die("--rate takes bytes per second, not '%s'", optarg);
			break;
		case 'h':
			printf("Usage: xensim vif attach DOMID [--mac M] [--bridge BR] [--devid N] [--rate BYTES/s]\n"
			       "Give domain DOMID a virtual network interface as libxl does: one\n"
			       "xenstore transaction writes the backend dir\n"
			       "/local/domain/0/backend/vif/DOMID/DEVID (dom0's, readable by DOMID:\n"
			       "frontend, frontend-id, online, state=1, script, mac, bridge, handle,\n"
			       "type=vif[, rate]), the frontend dir /local/domain/DOMID/device/vif/DEVID\n"
			       "(DOMID's, readable by dom0: backend, backend-id, state=1, handle, mac)\n"
			       "and /libxl/DOMID/device/vif/DEVID. A backend (pvio-netback) then\n"
			       "connects it. Prints the devid.\n"
			       "  --mac M        the guest's MAC (default 00:16:3e and 3 random bytes)\n"
			       "  --bridge BR    the dom0 bridge for the vif (default xenbr0)\n"
			       "  --devid N      0..%d (default: the lowest free one)\n"
			       "  --rate R       limit guest transmit to R bytes per second\n",
			       VIF_MAX_DEVID);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1)
		die("vif attach needs DOMID (see --help)");
	if (xsim_cli_parse_domid(argv[optind], &domid))
		die("bad domain id '%s'", argv[optind]);
	if (domid == 0)
		die("dom0 cannot have a vif here: it has no guest RAM in xensim");
	if (!xsim_cli_domain_exists(domid))
		die("no domain %u", domid);
	if (!mac[0])
		random_mac(mac);
	snprintf(domstr, sizeof(domstr), "%u", domid);
	snprintf(dompath, sizeof(dompath), "/local/domain/%u", domid);

	/* libxl__device_generic_add's permissions */
	struct xs_permissions fperm[2] = { { domid, XS_PERM_NONE }, { 0, XS_PERM_READ } };
	struct xs_permissions bperm[2] = { { 0, XS_PERM_NONE }, { domid, XS_PERM_READ } };
	struct xs_permissions lperm[1] = { { 0, XS_PERM_NONE } };

	xs = xsim_cli_xs_dom0();
	for (tries = 0; tries < VIF_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		long id = devid;
		bool ok;

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		if (!xs_exists(xs, t, dompath)) {
			xs_transaction_end(xs, t, true);
			die("domain %u has no xenstore home %s", domid, dompath);
		}
		/* libxl__device_nextid: the lowest devid with no frontend */
		for (long i = 0; id < 0 && i <= VIF_MAX_DEVID; i++) {
			vif_paths(&p, domid, i);
			if (!xs_exists(xs, t, p.front) && !xs_exists(xs, t, p.back))
				id = i;
		}
		if (id < 0) {
			xs_transaction_end(xs, t, true);
			die("domain %u has no free vif devid", domid);
		}
		vif_paths(&p, domid, id);
		if (xs_exists(xs, t, p.front) || xs_exists(xs, t, p.back) || xs_exists(xs, t, p.libxl)) {
			xs_transaction_end(xs, t, true);
			die("domain %u already has vif %ld at %s", domid, id, p.back);
		}
		snprintf(devstr, sizeof(devstr), "%ld", id);
		const struct kv back[] = {
			{ "frontend", p.front },
			{ "frontend-id", domstr },
			{ "online", "1" },
			{ "state", "1" },
			{ "script", VIF_SCRIPT },
			{ "mac", mac },
			{ "bridge", bridge },
			{ "handle", devstr },
			{ "type", "vif" },
			{ "rate", rate[0] ? rate : NULL },
		};
		const struct kv front[] = {
			{ "backend", p.back },
			{ "backend-id", "0" },
			{ "state", "1" },
			{ "handle", devstr },
			{ "mac", mac },
		};
		const struct kv lib[] = {
			{ "frontend", p.front },
			{ "backend", p.back },
		};
		ok = tx_dir(xs, t, p.front, fperm, 2, front, sizeof(front) / sizeof(front[0])) &&
		     tx_dir(xs, t, p.back, bperm, 2, back, sizeof(back) / sizeof(back[0])) &&
		     tx_dir(xs, t, p.libxl, lperm, 1, lib, sizeof(lib) / sizeof(lib[0]));
		if (!ok) {
			int e = errno;
			xs_transaction_end(xs, t, true);
			die("xenstore write under %s: %s", p.back, strerror(e));
		}
		if (xs_transaction_end(xs, t, false)) {
			devid = id;
			break;
		}
		if (errno != EAGAIN)
			die("xenstore transaction commit: %s", strerror(errno));
	}
	if (tries == VIF_TX_TRIES)
		die("xenstore kept conflicting; nothing written");
	xs_close(xs);
	printf("%ld\n", devid);
	return 0;
}

/* online=0 and state=5 in one transaction unless already Closed
 * (libxl__initiate_device_generic_remove). */
static void vif_close(struct xs_handle *xs, const char *back)
{
	char path[192];

	for (int tries = 0; tries < VIF_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		char *st;

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		if (!xs_exists(xs, t, back)) {
			xs_transaction_end(xs, t, true);
			return;
		}
		snprintf(path, sizeof(path), "%s/state", back);
		st = xs_get(xs, t, path);
		if (!st || atoi(st) != XB_CLOSED) {
			if (!tx_write(xs, t, back, "online", "0") || !tx_write(xs, t, back, "state", "5")) {
				int e = errno;
				free(st);
				xs_transaction_end(xs, t, true);
				die("xenstore write under %s: %s", back, strerror(e));
			}
		}
		free(st);
		if (xs_transaction_end(xs, t, false) || errno != EAGAIN)
			return;
	}
}

static void vif_remove(struct xs_handle *xs, const struct vif_paths *p)
{
	for (int tries = 0; tries < VIF_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		xs_rm(xs, t, p->back);
		xs_rm(xs, t, p->front);
		xs_rm(xs, t, p->libxl);
		if (xs_transaction_end(xs, t, false) || errno != EAGAIN)
			return;
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait on a watch until BACK/state is Closed or gone, at most TIMEOUT s. */
static bool vif_wait_closed(struct xs_handle *xs, const char *back, double timeout)
{
	char path[192];
	double deadline = now_s() + timeout;
	bool done = false;

	snprintf(path, sizeof(path), "%s/state", back);
	if (!xs_watch(xs, path, "vif-detach"))
		die("xenstore watch %s: %s", path, strerror(errno));
	for (;;) {
		char *st = xs_get(xs, XBT_NULL, path);
		struct pollfd pfd = { .fd = xs_fileno(xs), .events = POLLIN };
		double left;
		char **ev;

		done = (!st && errno == ENOENT) || (st && atoi(st) == XB_CLOSED);
		free(st);
		if (done)
			break;
		left = deadline - now_s();
		if (left <= 0 || pfd.fd < 0)
			break;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		while ((ev = xs_check_watch(xs)))
			free(ev);
	}
	xs_unwatch(xs, path, "vif-detach");
	return done;
}

static int vif_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	double timeout = VIF_DETACH_TIMEOUT_S;
	bool force = false;
	struct vif_paths p;
	struct xs_handle *xs;
	uint32_t domid;
	long devid;
	char *end;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "t:fh", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			timeout = strtod(optarg, &end);
			if (*end || !(timeout > 0) || timeout > 3600)
				die("--timeout takes seconds (0 < SEC <= 3600), not '%s'", optarg);
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			printf("Usage: xensim vif detach DOMID DEVID [--timeout SEC] [--force]\n"
			       "Detach a vif as libxl does: backend online=0 and state=5 (Closing),\n"
			       "wait on a watch for the backend to reach 6 (Closed) — at most SEC\n"
			       "seconds, default %d — then remove the backend, frontend and /libxl\n"
			       "dirs (anyway, with a warning, if no backend answered).\n"
			       "  --force   do not wait for the backend\n",
			       VIF_DETACH_TIMEOUT_S);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 2)
		die("vif detach needs DOMID and DEVID (see --help)");
	if (xsim_cli_parse_domid(argv[optind], &domid))
		die("bad domain id '%s'", argv[optind]);
	errno = 0;
	devid = strtol(argv[optind + 1], &end, 10);
	if (errno || *end || devid < 0 || devid > VIF_MAX_DEVID)
		die("bad vif devid '%s'", argv[optind + 1]);
	xs = xsim_cli_xs_dom0();
	vif_paths(&p, domid, devid);
	if (!xs_exists(xs, XBT_NULL, p.back) && !xs_exists(xs, XBT_NULL, p.front) &&
	    !xs_exists(xs, XBT_NULL, p.libxl))
		die("domain %u has no vif %ld", domid, devid);
	vif_close(xs, p.back);
	if (!force && xs_exists(xs, XBT_NULL, p.back) && !vif_wait_closed(xs, p.back, timeout))
		fprintf(stderr, "xensim: no backend closed %s within %g s; removing it anyway\n",
			p.back, timeout);
	vif_remove(xs, &p);
	xs_close(xs);
	printf("detached vif %ld of domain %u\n", devid, domid);
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static char *key_of(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xs_get(xs, XBT_NULL, path);
}

static int vif_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *base = "/local/domain/0/backend/vif";
	bool json = false, have_dom = false;
	uint32_t only = 0;
	struct xs_handle *xs;
	char **doms;
	unsigned nd;
	int o, count = 0;

	optind = 1;
	while ((o = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: xensim vif list [DOMID] [--json]\n"
			       "List the vifs under dom0's backend/vif (of DOMID only, if given):\n"
			       "domain, devid, mac, bridge, backend and frontend state, online,\n"
			       "hotplug-status.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		if (optind != argc - 1 || xsim_cli_parse_domid(argv[optind], &only))
			die("vif list takes at most one DOMID (see --help)");
		have_dom = true;
	}
	xs = xsim_cli_xs_dom0();
	if (json)
		printf("[");
	else
		printf("%-6s %-6s %-17s %-10s %-6s %-6s %-6s %s\n", "DOMID", "DEVID", "MAC", "BRIDGE",
		       "BSTATE", "FSTATE", "ONLINE", "HOTPLUG");
	doms = xs_directory(xs, XBT_NULL, base, &nd);
	for (unsigned i = 0; doms && i < nd; i++) {
		char ddir[160];
		char **devs;
		unsigned nv;
		uint32_t d;

		if (xsim_cli_parse_domid(doms[i], &d) || (have_dom && d != only))
			continue;
		snprintf(ddir, sizeof(ddir), "%s/%s", base, doms[i]);
		devs = xs_directory(xs, XBT_NULL, ddir, &nv);
		for (unsigned j = 0; devs && j < nv; j++) {
			char b[256];
			char *mac, *br, *bst, *online, *hp, *fpath, *fst = NULL;

			snprintf(b, sizeof(b), "%s/%s", ddir, devs[j]);
			mac = key_of(xs, b, "mac");
			br = key_of(xs, b, "bridge");
			bst = key_of(xs, b, "state");
			online = key_of(xs, b, "online");
			hp = key_of(xs, b, "hotplug-status");
			fpath = key_of(xs, b, "frontend");
			if (fpath)
				fst = key_of(xs, fpath, "state");
			if (json) {
				printf("%s{\"domid\": %u, \"devid\": ", count ? ", " : "", d);
				json_str(devs[j]);
				printf(", \"mac\": ");
				json_str(mac);
				printf(", \"bridge\": ");
				json_str(br);
				printf(", \"backend_state\": %d, \"frontend_state\": %d, \"online\": %d, "
				       "\"hotplug_status\": ",
				       bst ? atoi(bst) : -1, fst ? atoi(fst) : -1, online ? atoi(online) : -1);
				json_str(hp);
				printf(", \"backend\": ");
				json_str(b);
				printf("}");
			} else {
				printf("%-6u %-6s %-17s %-10s %-6s %-6s %-6s %s\n", d, devs[j],
				       mac ? mac : "-", br ? br : "-", bst ? bst : "-", fst ? fst : "-",
				       online ? online : "-", hp ? hp : "-");
			}
			count++;
			free(mac);
			free(br);
			free(bst);
			free(online);
			free(hp);
			free(fpath);
			free(fst);
		}
		free(devs);
	}
	free(doms);
	if (json)
		printf("]\n");
	xs_close(xs);
	return 0;
}

int xsim_cli_vif_remove_domain(struct xs_handle *xs, uint32_t domid)
{
	char path[160];
	char **devs;
	unsigned n;
	int removed = 0;

	snprintf(path, sizeof(path), "/local/domain/0/backend/vif/%u", domid);
	devs = xs_directory(xs, XBT_NULL, path, &n);
	for (unsigned i = 0; devs && i < n; i++) {
		struct vif_paths p;
		char *end;
		long devid = strtol(devs[i], &end, 10);

		if (*end || devid < 0)
			continue;
		vif_paths(&p, domid, devid);
		vif_close(xs, p.back);
		vif_remove(xs, &p);
		fprintf(stderr, "xensim: removed vif %s\n", p.back);
		removed++;
	}
	free(devs);
	xs_rm(xs, XBT_NULL, path);
	return removed;
}

int xsim_cli_cmd_vif(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		printf("Usage: xensim vif attach|detach|list ...\n"
		       "Virtual network interfaces; each subcommand takes --help.\n");
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "attach"))
		return vif_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "detach"))
		return vif_detach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return vif_list(argc - 1, argv + 1);
	die("unknown vif command '%s' (see --help)", argv[1]);
}
