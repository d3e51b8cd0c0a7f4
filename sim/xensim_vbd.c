/* SPDX-License-Identifier: MIT */
/*
 * xensim vbd — the toolstack's half of a virtual block device: what libxl
 * (≥ 4.19, `backendtype=tap`) writes to xenstore to attach a disk, how it
 * detaches one, and the force-removal done at domain destroy. The contract
 * (keys, values, permissions) is docs/block-path.md; keep the two in sync.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <xenstore.h>

#include "xensim_cli.h"

#define die xsim_cli_die

/* Backend kinds a VBD of ours can live under: vbd3 (tap) first. */
static const char *const vbd_kinds[] = { "vbd3", "vbd" };

/*
 * Parse a virtual-device name the way libxl's libxl__device_disk_dev_number
 * does for the xvd family: xvdX[N] with X = a..z, aa.. (bijective base 26)
 * and an optional partition N; disks 0–15 with partitions 0–15 get the
 * classic (202 << 8) | (disk << 4) | part encoding, others the extended
 * (1 << 28) | (disk << 8) | part one. A plain number is taken as the devid.
 * Returns the devid or -EINVAL.
 */
static long vdev_to_devid(const char *s)
{
	unsigned long disk = 0, part = 0;
	const char *p;
	char *end;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		unsigned long v = strtoul(s, &end, 10);
		if (errno || *end || v == 0 || v > INT_MAX)
			return -EINVAL;
		return (long)v;
	}
	if (strncmp(s, "xvd", 3))
		return -EINVAL;
	p = s + 3;
	if (*p < 'a' || *p > 'z')
		return -EINVAL;
	for (; *p >= 'a' && *p <= 'z'; p++) {
		disk = disk * 26 + (unsigned long)(*p - 'a' + 1);
		if (disk > (1ul << 20))
			return -EINVAL;
	}
	disk--;
	if (*p) {
		if (*p == '0' && p[1])
			return -EINVAL;
		errno = 0;
		part = strtoul(p, &end, 10);
		if (errno || *end || *p < '0' || *p > '9' || part > 255)
			return -EINVAL;
	}
	if (disk >= (1ul << 20))
		return -EINVAL;
	if (disk < 16 && part < 16)
		return (long)((202ul << 8) | (disk << 4) | part);
	return (long)((1ul << 28) | (disk << 8) | part);
}

static void vbd_paths(struct xsim_dev_paths *p, const char *kind, uint32_t domid, long devid)
{
	xsim_dev_paths(p, kind, "vbd", domid, devid);
}

/* ---- attach ---- */

/* The default format comes from the image's name (".vhd": the VHD chain
 * that ends in it), never from its content: a guest owns the content of
 * a raw disk and could write a VHD footer naming any dom0 file as its
 * "parent" (the image-format probing hole qemu closed in CVE-2008-2004). */
static bool named_vhd(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && !strcasecmp(path + n - 4, ".vhd");
}

static int vbd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vdev", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *vdev = "xvda", *mode = "w", *format = NULL;
	char image[PATH_MAX], params[PATH_MAX + 8], domstr[16], devstr[24], dompath[64];
	struct xsim_dev_paths p;
	struct xs_handle *xs;
	struct stat st;
	uint32_t domid;
	long devid;
	int o, tries;

	optind = 1;
	while ((o = getopt_long(argc, argv, "v:m:f:h", opts, NULL)) != -1) {
		switch (o) {
		case 'v':
			vdev = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'h':
			printf("Usage: xensim vbd attach DOMID IMAGE [--vdev xvda] [--mode r|w] [--format aio|vhd]\n"
			       "Give domain DOMID a virtual block device backed by IMAGE (a regular\n"
			       "file or block device), as libxl does for a `backendtype=tap` disk:\n"
			       "one xenstore transaction writes the backend dir\n"
			       "/local/domain/0/backend/vbd3/DOMID/DEVID (dom0's, readable by DOMID),\n"
			       "the frontend dir /local/domain/DOMID/device/vbd/DEVID (DOMID's,\n"
			       "readable by dom0) and /libxl/DOMID/device/vbd/DEVID. A backend\n"
			       "(pvio-tapback's tapdisk) then connects it. Prints the devid.\n"
			       "  --vdev NAME    xvda..xvdz, xvdaa.. or a devid number (default xvda)\n"
			       "  --mode r|w     read-only or read-write (default w)\n"
			       "  --format F     aio (raw image; `raw` is accepted too) or vhd: the VHD\n"
			       "                 chain that ends in IMAGE (default: vhd when IMAGE's name\n"
			       "                 ends in .vhd, else aio; never guessed from the content,\n"
			       "                 which a guest controls)\n"
			       "See docs/block-path.md for every key.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 2)
		die("vbd attach needs DOMID and IMAGE (see --help)");
	if (xsim_cli_parse_domid(argv[optind], &domid))
		die("bad domain id '%s'", argv[optind]);
	if (domid == 0)
		die("dom0 cannot have a VBD here: it has no guest RAM in xensim");
	devid = vdev_to_devid(vdev);
	if (devid < 0)
		die("bad virtual device '%s' (want xvda..xvdz, xvdaa.. or a number)", vdev);
	if (strcmp(mode, "r") && strcmp(mode, "w"))
		die("--mode takes r or w, not '%s'", mode);
	if (!format)
		format = named_vhd(argv[optind + 1]) ? "vhd" : "aio";
	/* libxl names the raw format's tapdisk driver "aio" */
	if (!strcmp(format, "raw"))
		format = "aio";
	if (strcmp(format, "aio") && strcmp(format, "vhd"))
		die("--format takes aio (raw) or vhd, not '%s'", format);
	if (!realpath(argv[optind + 1], image))
		die("image %s: %s", argv[optind + 1], strerror(errno));
	if (stat(image, &st) < 0)
		die("image %s: %s", image, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		die("image %s is neither a regular file nor a block device", image);
	if (!xsim_cli_domain_exists(domid))
		die("no domain %u", domid);

	vbd_paths(&p, "vbd3", domid, devid);
	snprintf(params, sizeof(params), "%s:%s", format, image);
	snprintf(domstr, sizeof(domstr), "%u", domid);
	snprintf(devstr, sizeof(devstr), "%ld", devid);
	snprintf(dompath, sizeof(dompath), "/local/domain/%u", domid);
	{
		const struct xsim_kv back[] = {
			{ "frontend", p.front },
			{ "params", params },
			{ "frontend-id", domstr },
			{ "online", "1" },
			{ "removable", "0" },
			{ "bootable", "1" },
			{ "state", "1" },
			{ "dev", vdev },
			{ "type", "vbd3" },
			{ "mode", mode },
			{ "device-type", "disk" },
			/* libxl's default: discard on for a writable disk */
			{ "discard-enable", strcmp(mode, "w") ? "0" : "1" },
			{ "specification", "xen" },
		};
		const struct xsim_kv front[] = {
			{ "backend", p.back },
			{ "backend-id", "0" },
			{ "state", "1" },
			{ "virtual-device", devstr },
			{ "device-type", "disk" },
			{ "trusted", "1" },
		};

		xs = xsim_cli_xs_dom0();
		for (tries = 0; tries < XSIM_TX_TRIES; tries++) {
			xs_transaction_t t = xs_transaction_start(xs);
			struct xsim_dev_paths old;
			bool ok;

			if (t == XBT_NULL)
				die("xenstore transaction: %s", strerror(errno));
			/* libxl__device_exists: any backend kind, or a frontend, counts */
			for (size_t k = 0; k < sizeof(vbd_kinds) / sizeof(vbd_kinds[0]); k++) {
				char **d;
				unsigned n;

				vbd_paths(&old, vbd_kinds[k], domid, devid);
				d = xs_directory(xs, t, old.back, &n);
				if (d) {
					free(d);
					xs_transaction_end(xs, t, true);
					die("domain %u already has a device %ld (%s) at %s", domid, devid,
					    vdev, old.back);
				}
			}
			/* reading a dir node gives "" when it exists */
			if (xsim_xs_exists(xs, t, p.front) || xsim_xs_exists(xs, t, p.libxl)) {
				xs_transaction_end(xs, t, true);
				die("domain %u already has a device %ld (%s) at %s", domid, devid, vdev,
				    p.front);
			}
			if (!xsim_xs_exists(xs, t, dompath)) {
				xs_transaction_end(xs, t, true);
				die("domain %u has no xenstore home %s", domid, dompath);
			}
			ok = xsim_dev_write(xs, t, &p, domid, front, sizeof(front) / sizeof(front[0]), back,
					    sizeof(back) / sizeof(back[0]));
			if (!ok) {
				int e = errno;
				xs_transaction_end(xs, t, true);
				die("xenstore write under %s: %s", p.back, strerror(e));
			}
			if (xs_transaction_end(xs, t, false))
				break;
			if (errno != EAGAIN)
				die("xenstore transaction commit: %s", strerror(errno));
		}
		if (tries == XSIM_TX_TRIES)
			die("xenstore kept conflicting; nothing written");
		xs_close(xs);
	}
	printf("%ld\n", devid);
	return 0;
}

/* ---- detach ---- */

/* Find DOMID's device DEVID under dom0's backend/vbd3 or backend/vbd. The
 * frontend's `backend` key is not consulted: the frontend dir is the guest's
 * to write. True if any of its records exist. */
static bool vbd_find(struct xs_handle *xs, uint32_t domid, long devid, struct xsim_dev_paths *out)
{
	bool front;

	vbd_paths(out, "vbd3", domid, devid);
	front = xsim_xs_exists(xs, XBT_NULL, out->front);
	for (size_t k = 0; k < sizeof(vbd_kinds) / sizeof(vbd_kinds[0]); k++) {
		struct xsim_dev_paths p;
		vbd_paths(&p, vbd_kinds[k], domid, devid);
		if (xsim_xs_exists(xs, XBT_NULL, p.back)) {
			*out = p;
			return true;
		}
	}
	/* a frontend or libxl record without a backend is still ours to remove */
	return front || xsim_xs_exists(xs, XBT_NULL, out->libxl);
}

static int vbd_detach(int argc, char **argv)
{
	struct xsim_dev_paths p;
	struct xs_handle *xs;
	double timeout;
	bool force;
	uint32_t domid;
	long devid;
	int rc;

	rc = xsim_dev_detach_opts(argc, argv,
		"Usage: xensim vbd detach DOMID VDEV [--timeout SEC] [--force]\n"
		"Detach a VBD as libxl does: write the backend's online=0 and state=5\n"
		"(Closing), wait on a xenstore watch for the backend to reach state 6\n"
		"(Closed) — at most SEC seconds, default " XSIM_STR(XSIM_DETACH_TIMEOUT_S) " — then remove the\n"
		"backend, frontend and /libxl dirs. If no backend answers in time, say so\n"
		"and remove them anyway (the backend then finds its dir gone).\n"
		"  --force   do not wait for the backend\n", &timeout, &force);
	if (rc >= 0)
		return rc;
	if (optind != argc - 2)
		die("vbd detach needs DOMID and VDEV (see --help)");
	if (xsim_cli_parse_domid(argv[optind], &domid))
		die("bad domain id '%s'", argv[optind]);
	devid = vdev_to_devid(argv[optind + 1]);
	if (devid < 0)
		die("bad virtual device '%s'", argv[optind + 1]);
	xs = xsim_cli_xs_dom0();
	if (!vbd_find(xs, domid, devid, &p))
		die("domain %u has no device %s", domid, argv[optind + 1]);
	xsim_dev_detach(xs, &p, force, timeout);
	xs_close(xs);
	printf("detached device %ld of domain %u\n", devid, domid);
	return 0;
}

/* ---- list ---- */

static int vbd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false, have_dom = false;
	uint32_t only = 0;
	struct xs_handle *xs;
	int o, count = 0;

	optind = 1;
	while ((o = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("Usage: xensim vbd list [DOMID] [--json]\n"
			       "List the VBDs under dom0's backend/vbd3 and backend/vbd (of DOMID\n"
			       "only, if given): domain, devid, vdev, kind, backend and frontend\n"
			       "state, online, mode, params.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		if (optind != argc - 1 || xsim_cli_parse_domid(argv[optind], &only))
			die("vbd list takes at most one DOMID (see --help)");
		have_dom = true;
	}
	xs = xsim_cli_xs_dom0();
	if (json)
		printf("[");
	else
		printf("%-6s %-10s %-6s %-5s %-6s %-6s %-6s %-4s %s\n", "DOMID", "DEVID", "VDEV", "KIND",
		       "BSTATE", "FSTATE", "ONLINE", "MODE", "PARAMS");
	for (size_t k = 0; k < sizeof(vbd_kinds) / sizeof(vbd_kinds[0]); k++) {
		char base[96];
		char **doms;
		unsigned nd;

		snprintf(base, sizeof(base), "/local/domain/0/backend/%s", vbd_kinds[k]);
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
				char *dev, *params, *mode, *bst, *online, *fpath, *fst = NULL;

				snprintf(b, sizeof(b), "%s/%s", ddir, devs[j]);
				dev = xsim_xs_key(xs, b, "dev");
				params = xsim_xs_key(xs, b, "params");
				mode = xsim_xs_key(xs, b, "mode");
				bst = xsim_xs_key(xs, b, "state");
				online = xsim_xs_key(xs, b, "online");
				fpath = xsim_xs_key(xs, b, "frontend");
				if (fpath)
					fst = xsim_xs_key(xs, fpath, "state");
				if (json) {
					printf("%s{\"domid\": %u, \"devid\": %s, \"vdev\": ", count ? ", " : "",
					       d, devs[j]);
					xsim_json_str(dev);
					printf(", \"kind\": \"%s\", \"backend_state\": %d, \"frontend_state\": %d, "
					       "\"online\": %d, \"mode\": ", vbd_kinds[k], bst ? atoi(bst) : -1,
					       fst ? atoi(fst) : -1, online ? atoi(online) : -1);
					xsim_json_str(mode);
					printf(", \"params\": ");
					xsim_json_str(params);
					printf(", \"backend\": ");
					xsim_json_str(b);
					printf("}");
				} else {
					printf("%-6u %-10s %-6s %-5s %-6s %-6s %-6s %-4s %s\n", d, devs[j],
					       dev ? dev : "-", vbd_kinds[k], bst ? bst : "-",
					       fst ? fst : "-", online ? online : "-", mode ? mode : "-",
					       params ? params : "-");
				}
				count++;
				free(dev);
				free(params);
				free(mode);
				free(bst);
				free(online);
				free(fpath);
				free(fst);
			}
			free(devs);
		}
		free(doms);
	}
	if (json)
		printf("]\n");
	xs_close(xs);
	return 0;
}

int xsim_cli_vbd_remove_domain(struct xs_handle *xs, uint32_t domid)
{
	char path[160];
	int removed = 0;

	for (size_t k = 0; k < sizeof(vbd_kinds) / sizeof(vbd_kinds[0]); k++) {
		char **devs;
		unsigned n;

		snprintf(path, sizeof(path), "/local/domain/0/backend/%s/%u", vbd_kinds[k], domid);
		devs = xs_directory(xs, XBT_NULL, path, &n);
		for (unsigned i = 0; devs && i < n; i++) {
			struct xsim_dev_paths p;
			char *end;
			long devid = strtol(devs[i], &end, 10);

			if (*end || devid <= 0)
				continue;
			vbd_paths(&p, vbd_kinds[k], domid, devid);
			/* tell a running backend first: it sees Closing, then its dir go */
			xsim_dev_close(xs, p.back);
			xsim_dev_remove(xs, &p);
			fprintf(stderr, "xensim: removed VBD %s\n", p.back);
			removed++;
		}
		free(devs);
		/* the per-domain dir itself, and anything left in it */
		xs_rm(xs, XBT_NULL, path);
	}
	snprintf(path, sizeof(path), "/libxl/%u", domid);
	xs_rm(xs, XBT_NULL, path);
	return removed;
}

int xsim_cli_cmd_vbd(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		printf("Usage: xensim vbd attach|detach|list ...\n"
		       "Virtual block devices; each subcommand takes --help.\n");
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "attach"))
		return vbd_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "detach"))
		return vbd_detach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return vbd_list(argc - 1, argv + 1);
	die("unknown vbd command '%s' (see --help)", argv[1]);
}
