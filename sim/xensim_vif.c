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

/* devids a CLI user may pick; libxl allocates the lowest free one */
#define VIF_MAX_DEVID 255
#define VIF_SCRIPT "/etc/xen/scripts/vif-bridge"

static void vif_paths(struct xsim_dev_paths *p, uint32_t domid, long devid)
{
	xsim_dev_paths(p, "vif", "vif", domid, devid);
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
	struct xsim_dev_paths p;
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

	xs = xsim_cli_xs_dom0();
	for (tries = 0; tries < XSIM_TX_TRIES; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);
		long id = devid;
		bool ok;

		if (t == XBT_NULL)
			die("xenstore transaction: %s", strerror(errno));
		if (!xsim_xs_exists(xs, t, dompath)) {
			xs_transaction_end(xs, t, true);
			die("domain %u has no xenstore home %s", domid, dompath);
		}
		/* libxl__device_nextid: the lowest devid with no frontend */
		for (long i = 0; id < 0 && i <= VIF_MAX_DEVID; i++) {
			vif_paths(&p, domid, i);
			if (!xsim_xs_exists(xs, t, p.front) && !xsim_xs_exists(xs, t, p.back))
				id = i;
		}
		if (id < 0) {
			xs_transaction_end(xs, t, true);
			die("domain %u has no free vif devid", domid);
		}
		vif_paths(&p, domid, id);
		if (xsim_xs_exists(xs, t, p.front) || xsim_xs_exists(xs, t, p.back) || xsim_xs_exists(xs, t, p.libxl)) {
			xs_transaction_end(xs, t, true);
			die("domain %u already has vif %ld at %s", domid, id, p.back);
		}
		snprintf(devstr, sizeof(devstr), "%ld", id);
		const struct xsim_kv back[] = {
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
		const struct xsim_kv front[] = {
			{ "backend", p.back },
			{ "backend-id", "0" },
			{ "state", "1" },
			{ "handle", devstr },
			{ "mac", mac },
		};
		ok = xsim_dev_write(xs, t, &p, domid, front, sizeof(front) / sizeof(front[0]), back,
				    sizeof(back) / sizeof(back[0]));
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
	if (tries == XSIM_TX_TRIES)
		die("xenstore kept conflicting; nothing written");
	xs_close(xs);
	printf("%ld\n", devid);
	return 0;
}

static int vif_detach(int argc, char **argv)
{
	struct xsim_dev_paths p;
	struct xs_handle *xs;
	double timeout;
	bool force;
	uint32_t domid;
	long devid;
	char *end;
	int rc;

	rc = xsim_dev_detach_opts(argc, argv,
		"Usage: xensim vif detach DOMID DEVID [--timeout SEC] [--force]\n"
		"Detach a vif as libxl does: backend online=0 and state=5 (Closing),\n"
		"wait on a watch for the backend to reach 6 (Closed) — at most SEC\n"
		"seconds, default " XSIM_STR(XSIM_DETACH_TIMEOUT_S) " — then remove the backend, frontend and /libxl\n"
		"dirs (anyway, with a warning, if no backend answered).\n"
		"  --force   do not wait for the backend\n", &timeout, &force);
	if (rc >= 0)
		return rc;
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
	if (!xsim_xs_exists(xs, XBT_NULL, p.back) && !xsim_xs_exists(xs, XBT_NULL, p.front) &&
	    !xsim_xs_exists(xs, XBT_NULL, p.libxl))
		die("domain %u has no vif %ld", domid, devid);
	xsim_dev_detach(xs, &p, force, timeout);
	xs_close(xs);
	printf("detached vif %ld of domain %u\n", devid, domid);
	return 0;
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
			mac = xsim_xs_key(xs, b, "mac");
			br = xsim_xs_key(xs, b, "bridge");
			bst = xsim_xs_key(xs, b, "state");
			online = xsim_xs_key(xs, b, "online");
			hp = xsim_xs_key(xs, b, "hotplug-status");
			fpath = xsim_xs_key(xs, b, "frontend");
			if (fpath)
				fst = xsim_xs_key(xs, fpath, "state");
			if (json) {
				printf("%s{\"domid\": %u, \"devid\": ", count ? ", " : "", d);
				xsim_json_str(devs[j]);
				printf(", \"mac\": ");
				xsim_json_str(mac);
				printf(", \"bridge\": ");
				xsim_json_str(br);
				printf(", \"backend_state\": %d, \"frontend_state\": %d, \"online\": %d, "
				       "\"hotplug_status\": ",
				       bst ? atoi(bst) : -1, fst ? atoi(fst) : -1, online ? atoi(online) : -1);
				xsim_json_str(hp);
				printf(", \"backend\": ");
				xsim_json_str(b);
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
		struct xsim_dev_paths p;
		char *end;
		long devid = strtol(devs[i], &end, 10);

		if (*end || devid < 0)
			continue;
		vif_paths(&p, domid, devid);
		xsim_dev_close(xs, p.back);
		xsim_dev_remove(xs, &p);
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
