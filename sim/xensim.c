/* SPDX-License-Identifier: MIT */
/*
 * xensim — the toolstack of the simulated Xen host: starts and stops the
 * hypervisor daemon (xensimd) and xenstored, creates and destroys domains
 * (writing xenstore as libxl does), and runs processes as a domain.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <xenstore.h>

#include "pvio-config.h"
#include "client.h"
#include "xensim_cli.h"

static const char *prog = "xensim";

#define die xsim_cli_die

void xsim_cli_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xensim COMMAND [ARGS]\n"
		"A simulated Xen host: hypervisor (domains, memory, grant tables, event\n"
		"channels) and xenstored, with state under $XENSIM_DIR (default %s).\n"
		"\n"
		"Commands:\n"
		"  start                       start xensimd and xenstored; prints XENSIM_DIR=\n"
		"                              and XENSTORED_PATH= (dom0's xenstore socket)\n"
		"  stop                        stop them and remove their sockets\n"
		"  status [--json]             say whether it runs, with XENSTORED_PATH=\n"
		"  domain create NAME [--memory MiB]   create a domU (default 64 MiB); prints its id\n"
		"  domain destroy ID           destroy a domU: its processes are killed, its\n"
		"                              event channels close, its xenstore tree goes\n"
		"  domain list [--json]        list domains\n"
		"  run DOMID -- CMD [ARGS...]  run CMD as a process of domain DOMID\n"
		"                              (sets XENSIM_DOMID and XENSTORED_PATH)\n"
		"  vbd attach DOMID IMAGE [--vdev xvda] [--mode r|w] [--format aio|vhd]\n"
		"                              give a domU a virtual block device backed by\n"
		"                              IMAGE (xenstore as libxl writes it for a\n"
		"                              backendtype=tap disk); prints its devid\n"
		"  vbd detach DOMID VDEV [--timeout SEC] [--force]\n"
		"                              close the device, wait for its backend, remove it\n"
		"  vbd list [DOMID] [--json]   list virtual block devices\n"
		"  vif attach|detach|list ...  virtual network interfaces (libxl's keys)\n"
		"\n"
		"Every command takes --help.\n", xsim_dir());
}

static void path_in_dir(char *buf, size_t n, const char *name)
{
	if ((size_t)snprintf(buf, n, "%s/%s", xsim_dir(), name) >= n)
		die("state directory path too long: %s", xsim_dir());
}

static void xenstored_sock(char *buf, size_t n, uint32_t domid)
{
	char name[64];

	if (domid == 0)
		snprintf(name, sizeof(name), "xenstored/socket");
	else
		snprintf(name, sizeof(name), "xenstored/dom%u.sock", domid);
	path_in_dir(buf, n, name);
}

static pid_t read_pid(const char *name)
{
	char path[PATH_MAX];
	FILE *f;
	long v = 0;

	path_in_dir(path, sizeof(path), name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &v) != 1)
		v = 0;
	fclose(f);
	if (v <= 0 || kill((pid_t)v, 0) < 0)
		return 0;
	return (pid_t)v;
}

static bool running(void)
{
	return read_pid("xensimd.pid") > 0 && read_pid("xenstored.pid") > 0;
}

/* Where our daemons live: beside this binary in a build tree, else libexec. */
static void find_helper(char *out, size_t n, const char *name, const char *build_rel)
{
	char self[PATH_MAX], *slash;
	ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *env = getenv("XENSIM_LIBEXEC");

	if (env && *env) {
		snprintf(out, n, "%s/%s", env, name);
		return;
	}
	if (l > 0) {
		self[l] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(out, n, "%s/%s", self, build_rel) < n &&
			    access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, n, "%s/%s", PVIO_LIBEXECDIR, name);
}

static pid_t spawn(const char *bin, const char *logname, const char *pidname)
{
	char log[PATH_MAX], pidpath[PATH_MAX], fdstr[16];
	int p[2];
	pid_t pid;
	char c;
	ssize_t r;
	FILE *f;

	path_in_dir(log, sizeof(log), logname);
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		setsid();
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		/* the ready pipe must survive exec */
		fcntl(p[1], F_SETFD, 0);
		snprintf(fdstr, sizeof(fdstr), "%d", p[1]);
		execl(bin, bin, "--dir", xsim_dir(), "--ready-fd", fdstr, "--log", log, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* Ready means the daemon wrote its byte; EOF means it died first. */
	do
		r = read(p[0], &c, 1);
	while (r < 0 && errno == EINTR);
	close(p[0]);
	if (r != 1) {
		waitpid(pid, NULL, WNOHANG);
		die("%s failed to start; see %s", bin, log);
	}
	path_in_dir(pidpath, sizeof(pidpath), pidname);
	f = fopen(pidpath, "w");
	if (!f)
		die("cannot write %s: %s", pidpath, strerror(errno));
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	return pid;
}

struct xs_handle *xsim_cli_xs_dom0(void)
{
	char path[PATH_MAX];
	struct xs_handle *xs;

	xenstored_sock(path, sizeof(path), 0);
	setenv("XENSTORED_PATH", path, 1);
	xs = xs_open(XS_OPEN_SOCKETONLY);
	if (!xs)
		die("cannot connect to xenstored at %s: %s", path, strerror(errno));
	return xs;
}

static void xs_put(struct xs_handle *xs, const char *path, const char *val)
{
	if (!xs_write(xs, XBT_NULL, path, val, strlen(val)))
		die("xenstore write %s: %s", path, strerror(errno));
}

static void xs_perms(struct xs_handle *xs, const char *path, unsigned owner, unsigned other_perm,
		     int reader)
{
	struct xs_permissions p[2] = {
		{ .id = owner, .perms = other_perm },
		{ .id = (unsigned)reader, .perms = XS_PERM_READ },
	};

	if (!xs_set_permissions(xs, XBT_NULL, path, p, reader >= 0 ? 2 : 1))
		die("xenstore set_perms %s: %s", path, strerror(errno));
}

static void print_env(void)
{
	char path[PATH_MAX];

	xenstored_sock(path, sizeof(path), 0);
	printf("XENSIM_DIR=%s\nXENSTORED_PATH=%s\n", xsim_dir(), path);
}

static int cmd_start(int argc, char **argv)
{
	char bin[PATH_MAX];
	struct xs_handle *xs;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim start\nStart xensimd and xenstored under $XENSIM_DIR; print XENSIM_DIR= and\nXENSTORED_PATH=. Logs: $XENSIM_DIR/xensimd.log, xenstored.log.\n");
		return 0;
	}
	if (argc != 1)
		die("start takes no arguments (see --help)");
	if (mkdir(xsim_dir(), 0700) < 0 && errno != EEXIST)
		die("cannot create %s: %s", xsim_dir(), strerror(errno));
	if (running()) {
		fprintf(stderr, "%s: already running in %s\n", prog, xsim_dir());
		print_env();
		return 0;
	}
	find_helper(bin, sizeof(bin), "xensimd", "xensimd");
	spawn(bin, "xensimd.log", "xensimd.pid");
	find_helper(bin, sizeof(bin), "xensim-xenstored", "xenstored/xensim-xenstored");
	spawn(bin, "xenstored.log", "xenstored.pid");
	/* dom0's own entries, as the toolstack writes them at boot */
	xs = xsim_cli_xs_dom0();
	xs_put(xs, "/local/domain/0/name", "Domain-0");
	xs_put(xs, "/local/domain/0/domid", "0");
	xs_close(xs);
	print_env();
	return 0;
}

static void wait_gone(pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { .fd = pfd, .events = POLLIN };

	if (pfd < 0)
		return;  /* already gone */
	/* A pidfd polls readable when the process exits: no sleeping loop. */
	if (poll(&p, 1, 10000) == 0) {
		kill(pid, SIGKILL);
		poll(&p, 1, 10000);
	}
	close(pfd);
}

static int cmd_stop(int argc, char **argv)
{
	static const char *const names[] = { "xenstored.pid", "xensimd.pid" };
	char path[PATH_MAX];
	int stopped = 0;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim stop\nStop xenstored and xensimd; every domain goes with them.\n");
		return 0;
	}
	for (size_t i = 0; i < 2; i++) {
		pid_t pid = read_pid(names[i]);
		if (pid > 0 && kill(pid, SIGTERM) == 0) {
			wait_gone(pid);
			stopped++;
		}
		path_in_dir(path, sizeof(path), names[i]);
		unlink(path);
	}
	printf(stopped ? "xensim stopped\n" : "xensim was not running\n");
	return 0;
}

static int list_domains(struct xsim_dom_info *info, size_t max, size_t *n)
{
	struct xsim_conn c;
	size_t rl;
	int err = xsim_connect(0, &c);

	if (err)
		return err;
	err = xsim_call(&c, XSIM_DOM_LIST, NULL, 0, -1, info, max * sizeof(*info), &rl, NULL, 0, NULL);
	xsim_disconnect(&c);
	*n = rl / sizeof(*info);
	return err;
}

bool xsim_cli_domain_exists(uint32_t domid)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	size_t n = 0;
	int err = list_domains(info, XSIM_MAX_DOMAINS, &n);

	if (err)
		die("xensim is not running (%s)", strerror(-err));
	for (size_t k = 0; k < n; k++)
		if (info[k].domid == domid)
			return true;
	return false;
}

static int cmd_status(int argc, char **argv)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	size_t n = 0;
	bool json = argc > 1 && !strcmp(argv[1], "--json");

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim status [--json]\nExit 0 and print XENSTORED_PATH= when running, exit 1 when not.\n");
		return 0;
	}
	if (!running() || list_domains(info, XSIM_MAX_DOMAINS, &n)) {
		if (json)
			printf("{\"running\": false, \"dir\": \"%s\"}\n", xsim_dir());
		else
			printf("xensim is not running (XENSIM_DIR=%s)\n", xsim_dir());
		return 1;
	}
	if (json) {
		char path[PATH_MAX];
		xenstored_sock(path, sizeof(path), 0);
		printf("{\"running\": true, \"dir\": \"%s\", \"xenstored_path\": \"%s\", \"domains\": %zu}\n",
		       xsim_dir(), path, n);
		return 0;
	}
	printf("xensim is running: xensimd pid %d, xenstored pid %d, %zu domain(s)\n",
	       (int)read_pid("xensimd.pid"), (int)read_pid("xenstored.pid"), n);
	print_env();
	return 0;
}

int xsim_cli_parse_domid(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v >= 0x7ff0)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int dom_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const rw_dirs[] = { "device", "data", "control", "memory", "attr",
					       "error", "drivers", "feature" };
	struct xsim_dom_create dc = { .memory_mb = 64 };
	struct xsim_conn c;
	struct xs_handle *xs;
	char path[256], val[64];
	uint32_t domid;
	size_t rl;
	int o, err;

	optind = 1;
	while ((o = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
		switch (o) {
		case 'm': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > XSIM_MAX_MEMORY_MB)
				die("--memory takes MiB from 1 to %u, not '%s'", XSIM_MAX_MEMORY_MB, optarg);
			dc.memory_mb = (uint32_t)v;
			break;
		}
		case 'h':
			printf("Usage: xensim domain create NAME [--memory MiB]\n"
			       "Create a domU with MiB of RAM (default 64) and its xenstore home\n"
			       "/local/domain/ID, introduce it to xenstored, print its id.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1)
		die("domain create needs exactly one NAME (see --help)");
	if (strlen(argv[optind]) >= sizeof(dc.name) || strchr(argv[optind], '/'))
		die("bad domain name '%s'", argv[optind]);
	strncpy(dc.name, argv[optind], sizeof(dc.name) - 1);
	err = xsim_connect(0, &c);
	if (err)
		die("xensim is not running (%s); run 'xensim start'", strerror(-err));
	err = xsim_call(&c, XSIM_DOM_CREATE, &dc, sizeof(dc), -1, &domid, sizeof(domid), &rl,
			NULL, 0, NULL);
	xsim_disconnect(&c);
	if (err)
		die("cannot create domain '%s': %s", dc.name, strerror(-err));

	/* The domain's xenstore home, with libxl's permissions: the base is
	 * dom0's and readable by the guest, the working dirs are the guest's. */
	xs = xsim_cli_xs_dom0();
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	if (!xs_mkdir(xs, XBT_NULL, path))
		die("xenstore mkdir %s: %s", path, strerror(errno));
	xs_perms(xs, path, 0, XS_PERM_NONE, (int)domid);
	snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
	xs_put(xs, path, dc.name);
	snprintf(path, sizeof(path), "/local/domain/%u/domid", domid);
	snprintf(val, sizeof(val), "%u", domid);
	xs_put(xs, path, val);
	for (size_t i = 0; i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++) {
		snprintf(path, sizeof(path), "/local/domain/%u/%s", domid, rw_dirs[i]);
		if (!xs_mkdir(xs, XBT_NULL, path))
			die("xenstore mkdir %s: %s", path, strerror(errno));
		xs_perms(xs, path, domid, XS_PERM_NONE, -1);
	}
	snprintf(path, sizeof(path), "/local/domain/%u/memory/target", domid);
	snprintf(val, sizeof(val), "%u", dc.memory_mb * 1024);
	xs_put(xs, path, val);
	xs_perms(xs, path, domid, XS_PERM_NONE, -1);
	if (!xs_introduce_domain(xs, domid, 0, 0))
		die("xenstored refused to introduce domain %u: %s", domid, strerror(errno));
	xs_close(xs);
	printf("%u\n", domid);
	return 0;
}

static int dom_destroy(int argc, char **argv)
{
	struct xsim_conn c;
	struct xs_handle *xs;
	char path[64];
	uint32_t domid;
	int err;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim domain destroy ID\nDestroy a domU: its processes are killed, its event channels close\n(peers see it), grant maps of its pages are refused from now on, its\nVBDs are force-removed (backends see online=0, state=5, then their\ndirs go), xenstored fires @releaseDomain and its /local/domain/ID tree goes.\n");
		return 0;
	}
	if (argc != 2 || xsim_cli_parse_domid(argv[1], &domid))
		die("domain destroy needs one domain ID (see --help)");
	if (domid == 0)
		die("dom0 cannot be destroyed");
	err = xsim_connect(0, &c);
	if (err)
		die("xensim is not running (%s)", strerror(-err));
	err = xsim_call(&c, XSIM_DOM_DESTROY, &domid, 4, -1, NULL, 0, NULL, NULL, 0, NULL);
	xsim_disconnect(&c);
	if (err)
		die("cannot destroy domain %u: %s", domid, strerror(-err));
	xs = xsim_cli_xs_dom0();
	/* libxl removes the domain's devices before it forgets the domain */
	xsim_cli_vbd_remove_domain(xs, domid);
	xsim_cli_vif_remove_domain(xs, domid);
	if (!xs_release_domain(xs, domid))
		fprintf(stderr, "%s: xenstored release of %u: %s\n", prog, domid, strerror(errno));
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	xs_rm(xs, XBT_NULL, path);
	xs_close(xs);
	printf("domain %u destroyed\n", domid);
	return 0;
}

static int dom_list(int argc, char **argv)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	bool json = argc > 1 && !strcmp(argv[1], "--json");
	size_t n;
	int err;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim domain list [--json]\n");
		return 0;
	}
	err = list_domains(info, XSIM_MAX_DOMAINS, &n);
	if (err)
		die("xensim is not running (%s)", strerror(-err));
	/* newest first from the daemon; show by id */
	if (json)
		printf("[");
	else
		printf("%-6s %-24s %10s %8s\n", "ID", "NAME", "MEM(MiB)", "GRANTS");
	for (size_t k = n; k-- > 0;) {
		struct xsim_dom_info *d = &info[k];
		char name[sizeof(d->name) + 1];
		memcpy(name, d->name, sizeof(d->name));
		name[sizeof(d->name)] = 0;
		if (json)
			printf("%s{\"id\": %u, \"name\": \"%s\", \"memory_mib\": %llu, \"grant_entries\": %u, "
			       "\"grant_pins\": %llu, \"maps_held\": %llu, \"ports_bound\": %u}",
			       k == n - 1 ? "" : ", ", d->domid, name,
			       (unsigned long long)(d->nr_pages >> 8), d->nr_grants,
			       (unsigned long long)d->grant_pins, (unsigned long long)d->maps_held,
			       d->ports_bound);
		else
			printf("%-6u %-24s %10llu %8u\n", d->domid, name,
			       (unsigned long long)(d->nr_pages >> 8), d->nr_grants);
	}
	if (json)
		printf("]\n");
	return 0;
}

static int cmd_domain(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		printf("Usage: xensim domain create|destroy|list ...\n");
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "create"))
		return dom_create(argc - 1, argv + 1);
	if (!strcmp(argv[1], "destroy"))
		return dom_destroy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return dom_list(argc - 1, argv + 1);
	die("unknown domain command '%s' (see --help)", argv[1]);
}

static int cmd_run(int argc, char **argv)
{
	static struct xsim_dom_info info[XSIM_MAX_DOMAINS];
	char sock[PATH_MAX], id[16];
	uint32_t domid;
	size_t n;
	bool found = false;
	int i = 1, err;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("Usage: xensim run DOMID -- CMD [ARGS...]\n"
		       "Run CMD as a process of domain DOMID: XENSIM_DOMID, XENSIM_DIR and\n"
		       "XENSTORED_PATH (that domain's own xenstore connection) are set.\n");
		return 0;
	}
	if (argc < 2 || xsim_cli_parse_domid(argv[1], &domid))
		die("run needs a domain ID (see --help)");
	i = 2;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc)
		die("run needs a command after the domain ID");
	err = list_domains(info, XSIM_MAX_DOMAINS, &n);
	if (err)
		die("xensim is not running (%s)", strerror(-err));
	for (size_t k = 0; k < n; k++)
		found |= info[k].domid == domid;
	if (!found)
		die("no domain %u", domid);
	snprintf(id, sizeof(id), "%u", domid);
	xenstored_sock(sock, sizeof(sock), domid);
	setenv("XENSIM_DOMID", id, 1);
	setenv("XENSIM_DIR", xsim_dir(), 1);
	setenv("XENSTORED_PATH", sock, 1);
	execvp(argv[i], argv + i);
	die("cannot run %s: %s", argv[i], strerror(errno));
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "start"))
		return cmd_start(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stop"))
		return cmd_stop(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "domain"))
		return cmd_domain(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "vbd"))
		return xsim_cli_cmd_vbd(argc - 1, argv + 1);
	if (!strcmp(argv[1], "vif"))
		return xsim_cli_cmd_vif(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	usage(stderr);
	return 2;
}
