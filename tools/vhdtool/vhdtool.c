/* SPDX-License-Identifier: MIT */
/*
 * vhdtool: create, inspect, check and transform VHD images and chains.
 * Exit status: 0 success, 1 failure (or check found errors), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pvio/vhd.h"
#include "vhdtool.h"

#define CHUNK_SECTORS 2048u	/* 1 MiB per I/O in bulk copies */

static const char *prog = "vhdtool";

static int fail(const struct pvio_vhd_err *e)
{
	fprintf(stderr, "%s: %s\n", prog, e->msg[0] ? e->msg : "failed");
	return 1;
}

static int usage_err(const char *cmd, const char *msg)
{
	fprintf(stderr, "%s %s: %s (see %s %s --help)\n", prog, cmd, msg, prog, cmd);
	return 2;
}

/* Shared option parsing: --help, --json, and per-command extras. */
struct opts {
	bool json, chain, help;
	const char *type;
	const char *size;
	const char *block_size;
};

static int parse(int argc, char **argv, struct opts *o, const char *help)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "json", no_argument, 0, 'j' },
		{ "chain", no_argument, 0, 'c' }, { "type", required_argument, 0, 't' },
		{ "size", required_argument, 0, 's' }, { "block-size", required_argument, 0, 'b' },
		{ 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hjct:s:b:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(help, stdout); o->help = true; return 0;
		case 'j': o->json = true; break;
		case 'c': o->chain = true; break;
		case 't': o->type = optarg; break;
		case 's': o->size = optarg; break;
		case 'b': o->block_size = optarg; break;
		default: return -1;
		}
	}
	progress_enable(o->json);
	return optind;
}

/* ---- create / snapshot ---------------------------------------------------- */

static const char create_help[] =
	"usage: vhdtool create (fixed|dynamic) --size SIZE [--block-size B] FILE\n"
	"Create an empty VHD.  SIZE takes K/M/G/T suffixes (binary), up to 2T.\n"
	"Dynamic disks use 2M blocks unless --block-size says otherwise.\n";

static int cmd_create(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, create_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 2)
		return usage_err("create", "expected a type and a FILE");
	struct pvio_vhd_create_opts co = { 0 };
	if (!strcmp(argv[i], "fixed"))
		co.type = PVIO_VHD_FIXED;
	else if (!strcmp(argv[i], "dynamic"))
		co.type = PVIO_VHD_DYNAMIC;
	else
		return usage_err("create", "type must be fixed or dynamic");
	if (!o.size || parse_size(o.size, &co.size) < 0 || co.size == 0)
		return usage_err("create", "--size SIZE is required (e.g. 10G)");
	if (o.block_size) {
		uint64_t b;
		if (parse_size(o.block_size, &b) < 0 || b > UINT32_MAX)
			return usage_err("create", "bad --block-size");
		co.block_size = (uint32_t)b;
	}
	struct pvio_vhd_err e = { 0, "" };
	if (pvio_vhd_create(argv[i + 1], &co, &e) < 0)
		return fail(&e);
	return 0;
}

static const char snapshot_help[] =
	"usage: vhdtool snapshot PARENT CHILD\n"
	"Create CHILD, an empty differencing disk on top of PARENT (any VHD).\n"
	"PARENT must no longer be written afterwards: its children depend on it.\n";

static int cmd_snapshot(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, snapshot_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 2)
		return usage_err("snapshot", "expected PARENT and CHILD");
	struct pvio_vhd_create_opts co = { .type = PVIO_VHD_DIFF, .parent = argv[i] };
	struct pvio_vhd_err e = { 0, "" };
	if (pvio_vhd_create(argv[i + 1], &co, &e) < 0)
		return fail(&e);
	return 0;
}

/* ---- info ------------------------------------------------------------------ */

static const char info_help[] =
	"usage: vhdtool info [--chain] [--json] FILE\n"
	"Show type, virtual and physical size, blocks, UUIDs and parent; with\n"
	"--chain, every layer from FILE down to the base.\n";

static void print_info(const struct pvio_vhd_info *in, const char *path, bool json, bool first)
{
	char u[37], pu[37];
	pvio_vhd_uuid_str(in->uuid, u);
	pvio_vhd_uuid_str(in->parent_uuid, pu);
	if (json) {
		printf("%s{\"file\":", first ? "" : ",");
		json_str(stdout, path);
		printf(",\"type\":\"%s\",\"virtual_size\":%llu,\"physical_size\":%llu,"
		       "\"current_size\":%llu,\"block_size\":%u,\"blocks\":%u,\"allocated_blocks\":%u,"
		       "\"uuid\":\"%s\",\"creator\":",
		       pvio_vhd_type_name(in->type), (unsigned long long)in->virtual_size,
		       (unsigned long long)in->physical_size, (unsigned long long)in->current_size,
		       in->block_size, in->max_bat, in->allocated_blocks, u);
		json_str(stdout, in->creator);
		printf(",\"geometry\":[%u,%u,%u],\"backup_footer_used\":%s,\"batmap\":%s",
		       in->cylinders, in->heads, in->spt, in->backup_footer_used ? "true" : "false",
		       in->has_batmap ? "true" : "false");
		if (in->type == PVIO_VHD_DIFF) {
			printf(",\"parent_uuid\":\"%s\",\"parent_name\":", pu);
			json_str(stdout, in->parent_name);
			printf(",\"parent\":");
			json_str(stdout, in->parent_path);
		}
		printf("}");
		return;
	}
	printf("%sfile:           %s\n", first ? "" : "\n", path);
	printf("type:           %s\n", pvio_vhd_type_name(in->type));
	printf("virtual size:   %llu bytes (%.2f GiB)%s\n", (unsigned long long)in->virtual_size,
	       in->virtual_size / 1073741824.0, in->size_from_chs ? " [from CHS geometry]" : "");
	printf("physical size:  %llu bytes\n", (unsigned long long)in->physical_size);
	if (in->type != PVIO_VHD_FIXED)
		printf("blocks:         %u of %u allocated, %u bytes each\n", in->allocated_blocks,
		       in->max_bat, in->block_size);
	printf("uuid:           %s\n", u);
	printf("creator:        \"%s\"\n", in->creator);
	printf("geometry:       %u/%u/%u (C/H/S)\n", in->cylinders, in->heads, in->spt);
	if (in->backup_footer_used)
		printf("note:           trailing footer missing; backup copy used\n");
	if (in->has_batmap)
		printf("batmap:         present (blktap)\n");
	if (in->type == PVIO_VHD_DIFF) {
		printf("parent uuid:    %s\n", pu);
		printf("parent name:    %s\n", in->parent_name);
		printf("parent:         %s\n", in->parent_path[0] ? in->parent_path : "(not found)");
	}
}

static int cmd_info(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, info_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 1)
		return usage_err("info", "expected FILE");
	struct pvio_vhd_err e = { 0, "" };
	struct pvio_vhd_info in;
	if (!o.chain) {
		struct pvio_vhd *v;
		if (pvio_vhd_open(argv[i], 0, &v, &e) < 0)
			return fail(&e);
		pvio_vhd_get_info(v, &in);
		print_info(&in, argv[i], o.json, true);
		if (o.json)
			printf("\n");
		pvio_vhd_close(v);
		return 0;
	}
	struct pvio_vhd_chain *c;
	if (pvio_vhd_chain_open(argv[i], 0, &c, &e) < 0)
		return fail(&e);
	if (o.json)
		printf("{\"depth\":%u,\"chain\":[", pvio_vhd_chain_depth(c));
	for (unsigned k = 0; k < pvio_vhd_chain_depth(c); k++) {
		struct pvio_vhd *v = pvio_vhd_chain_layer(c, k);
		pvio_vhd_get_info(v, &in);
		print_info(&in, pvio_vhd_path(v), o.json, k == 0);
	}
	if (o.json)
		printf("]}\n");
	pvio_vhd_chain_close(c);
	return 0;
}

/* ---- check ----------------------------------------------------------------- */

static const char check_help[] =
	"usage: vhdtool check [--json] FILE\n"
	"Check every structural rule of FILE and its whole parent chain: footer and\n"
	"backup footer, header, checksums, BAT entries within the file and clear of\n"
	"metadata and each other, bitmaps, parent locators, parent UUIDs and\n"
	"timestamps, loops.  Exit 0 when usable (notes and warnings allowed), 1 not.\n";

struct check_out {
	bool json;
	int n;
};

static void check_report(void *opaque, enum pvio_vhd_severity s, const char *msg)
{
	struct check_out *o = opaque;
	static const char *const names[] = { "note", "warning", "error" };
	if (o->json) {
		printf("%s{\"severity\":\"%s\",\"message\":", o->n ? "," : "", names[s]);
		json_str(stdout, msg);
		printf("}");
	} else {
		printf("%s: %s\n", names[s], msg);
	}
	o->n++;
}

static int cmd_check(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, check_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 1)
		return usage_err("check", "expected FILE");
	struct check_out co = { o.json, 0 };
	if (o.json) {
		printf("{\"file\":");
		json_str(stdout, argv[i]);
		printf(",\"findings\":[");
	}
	int errors = pvio_vhd_check(argv[i], true, check_report, &co);
	if (o.json)
		printf("],\"errors\":%d,\"ok\":%s}\n", errors, errors ? "false" : "true");
	else
		printf("%s: %s (%d error%s)\n", argv[i], errors ? "BAD" : "ok", errors,
		       errors == 1 ? "" : "s");
	return errors ? 1 : 0;
}

/* ---- map ------------------------------------------------------------------- */

static const char map_help[] =
	"usage: vhdtool map [--json] FILE\n"
	"Which blocks are allocated where in the chain: per block of FILE's layout,\n"
	"every layer holding some of it (layer 0 = FILE), its file offset and how\n"
	"many sectors it holds.  --json adds the resolved extents of the whole\n"
	"disk (what a read of each range returns: a layer's file or zeros).\n";

static int cmd_map(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, map_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 1)
		return usage_err("map", "expected FILE");
	struct pvio_vhd_err e = { 0, "" };
	struct pvio_vhd_chain *c;
	if (pvio_vhd_chain_open(argv[i], 0, &c, &e) < 0)
		return fail(&e);
	struct pvio_vhd *leaf = pvio_vhd_chain_layer(c, 0);
	uint32_t spb = pvio_vhd_block_sectors(leaf);
	uint64_t total = pvio_vhd_chain_sectors(c);
	unsigned depth = pvio_vhd_chain_depth(c);
	int rc = 0;
	if (o.json) {
		printf("{\"depth\":%u,\"layers\":[", depth);
		for (unsigned k = 0; k < depth; k++) {
			printf("%s", k ? "," : "");
			json_str(stdout, pvio_vhd_path(pvio_vhd_chain_layer(c, k)));
		}
		printf("],\"block_size\":%llu,\"blocks\":[", (unsigned long long)spb * 512);
	} else {
		printf("# layers: ");
		for (unsigned k = 0; k < depth; k++)
			printf("%s%u=%s", k ? " " : "", k, pvio_vhd_path(pvio_vhd_chain_layer(c, k)));
		printf("\n# block  first-byte  layer:file-offset:sectors ...\n");
	}
	bool firstb = true;
	for (uint64_t s = 0; s < total; s += spb) {
		uint32_t n = total - s < spb ? (uint32_t)(total - s) : spb;
		bool any = false;
		for (unsigned k = 0; k < depth; k++) {
			struct pvio_vhd *v = pvio_vhd_chain_layer(c, k);
			uint64_t first_off = UINT64_MAX, done = 0, held = 0;
			while (done < n && s + done < pvio_vhd_sectors(v)) {
				uint64_t off;
				int64_t r = pvio_vhd_own_run(v, s + done, (uint32_t)(n - done), &off, &e);
				if (r < 0) {
					rc = fail(&e);
					goto out;
				}
				if (off != UINT64_MAX) {
					held += (uint64_t)r;
					if (first_off == UINT64_MAX)
						first_off = off;
				}
				done += (uint64_t)r;
			}
			if (!held)
				continue;
			if (!any) {
				if (o.json)
					printf("%s{\"block\":%llu,\"layers\":[", firstb ? "" : ",",
					       (unsigned long long)(s / spb));
				else
					printf("%7llu  %10llu ", (unsigned long long)(s / spb),
					       (unsigned long long)s * 512);
				firstb = false;
			}
			if (o.json)
				printf("%s{\"layer\":%u,\"offset\":%llu,\"sectors\":%llu}", any ? "," : "", k,
				       (unsigned long long)first_off, (unsigned long long)held);
			else
				printf(" %u:%llu:%llu", k, (unsigned long long)first_off,
				       (unsigned long long)held);
			any = true;
		}
		if (any)
			printf(o.json ? "]}" : "\n");
	}
	if (o.json) {
		printf("],\"extents\":[");
		struct pvio_vhd_extent ext[64];
		bool firste = true;
		for (uint64_t s = 0; s < total;) {
			uint32_t want = total - s < (1u << 30) ? (uint32_t)(total - s) : (1u << 30);
			unsigned ne;
			int64_t got = pvio_vhd_chain_map(c, s, want, ext, 64, &ne, &e);
			if (got < 0) {
				rc = fail(&e);
				goto out;
			}
			for (unsigned k = 0; k < ne; k++, firste = false) {
				printf("%s{\"start\":%llu,\"length\":%llu,", firste ? "" : ",",
				       (unsigned long long)ext[k].sector * 512,
				       (unsigned long long)ext[k].count * 512);
				if (ext[k].layer < 0)
					printf("\"zero\":true}");
				else
					printf("\"zero\":false,\"layer\":%d,\"offset\":%llu}", ext[k].layer,
					       (unsigned long long)ext[k].offset);
			}
			s += (uint64_t)got;
		}
		printf("]}\n");
	}
out:
	pvio_vhd_chain_close(c);
	return rc;
}

/* ---- convert --------------------------------------------------------------- */

static const char convert_help[] =
	"usage: vhdtool convert [--type raw|fixed|dynamic] [--block-size B] IN OUT\n"
	"Copy the disk IN to a new file OUT.  IN is a VHD (its whole chain is read)\n"
	"or a raw image (anything without a VHD footer).  Default --type: raw for a\n"
	"VHD input, dynamic for a raw one.  Zero ranges are not written (sparse\n"
	"output, unallocated VHD blocks).  Shows progress on a terminal.\n";

static bool looks_like_vhd(int fd)
{
	char a[8] = { 0 }, b[8] = { 0 };
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < 512)
		return false;
	if (pread(fd, b, 8, st.st_size - 512) != 8)
		return false;
	if (pread(fd, a, 8, 0) != 8)
		return false;
	return !memcmp(a, "conectix", 8) || !memcmp(b, "conectix", 8);
}

static int cmd_convert(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, convert_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 2)
		return usage_err("convert", "expected IN and OUT");
	const char *in = argv[i], *out = argv[i + 1];
	struct pvio_vhd_err e = { 0, "" };
	int fd = open(in, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, in, strerror(errno));
		return 1;
	}
	bool in_vhd = looks_like_vhd(fd);
	const char *type = o.type ? o.type : in_vhd ? "raw" : "dynamic";
	enum pvio_vhd_type t = 0;
	if (!strcmp(type, "fixed"))
		t = PVIO_VHD_FIXED;
	else if (!strcmp(type, "dynamic"))
		t = PVIO_VHD_DYNAMIC;
	else if (strcmp(type, "raw")) {
		close(fd);
		return usage_err("convert", "--type must be raw, fixed or dynamic");
	}
	struct pvio_vhd_chain *c = NULL;
	uint64_t sectors;
	if (in_vhd) {
		if (pvio_vhd_chain_open(in, 0, &c, &e) < 0) {
			close(fd);
			return fail(&e);
		}
		sectors = pvio_vhd_chain_sectors(c);
	} else {
		struct stat st;
		fstat(fd, &st);
		if (st.st_size % 512) {
			close(fd);
			fprintf(stderr, "%s: %s: raw size %lld is not a multiple of 512\n", prog, in,
				(long long)st.st_size);
			return 1;
		}
		sectors = (uint64_t)st.st_size / 512;
	}

	int rc = 1, ofd = -1;
	struct pvio_vhd *ov = NULL;
	uint8_t *buf = malloc((size_t)CHUNK_SECTORS * 512);
	if (!buf)
		goto out;
	if (t) {
		struct pvio_vhd_create_opts co = { .type = t, .size = sectors * 512 };
		if (o.block_size) {
			uint64_t b;
			if (parse_size(o.block_size, &b) < 0 || b > UINT32_MAX) {
				rc = usage_err("convert", "bad --block-size");
				goto out;
			}
			co.block_size = (uint32_t)b;
		}
		if (pvio_vhd_create(out, &co, &e) < 0 ||
		    pvio_vhd_open(out, PVIO_VHD_RDWR | PVIO_VHD_NOSYNC, &ov, &e) < 0) {
			fail(&e);
			goto out;
		}
	} else {
		ofd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (ofd < 0 || ftruncate(ofd, (off_t)(sectors * 512)) < 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
			goto out;
		}
	}
	for (uint64_t s = 0; s < sectors;) {
		uint32_t n = sectors - s < CHUNK_SECTORS ? (uint32_t)(sectors - s) : CHUNK_SECTORS;
		if (c) {
			if (pvio_vhd_chain_read(c, buf, s, n, &e) < 0) {
				fail(&e);
				goto out;
			}
		} else if (pread(fd, buf, (size_t)n * 512, (off_t)(s * 512)) != (ssize_t)n * 512) {
			fprintf(stderr, "%s: %s: short read\n", prog, in);
			goto out;
		}
		/* skip zeros 4 KiB at a time (sparse raw output, no needless
		 * blocks); write each non-zero run at once */
		for (uint32_t k = 0; k < n;) {
			uint32_t m = n - k < 8 ? n - k : 8;
			if (all_zero(buf + (size_t)k * 512, (size_t)m * 512)) {
				k += m;
				continue;
			}
			uint32_t run = m;
			while (k + run < n) {
				uint32_t more = n - k - run < 8 ? n - k - run : 8;
				if (all_zero(buf + (size_t)(k + run) * 512, (size_t)more * 512))
					break;
				run += more;
			}
			uint8_t *p = buf + (size_t)k * 512;
			if (ov) {
				if (pvio_vhd_write(ov, p, s + k, run, &e) < 0) {
					fail(&e);
					goto out;
				}
			} else if (pwrite(ofd, p, (size_t)run * 512, (off_t)((s + k) * 512)) !=
				   (ssize_t)run * 512) {
				fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
				goto out;
			}
			k += run;
		}
		s += n;
		progress("convert", s, sectors);
	}
	if ((ov && pvio_vhd_flush(ov) < 0) || (ofd >= 0 && fsync(ofd) < 0)) {
		fprintf(stderr, "%s: %s: sync failed\n", prog, out);
		goto out;
	}
	rc = 0;
	if (o.json)
		printf("{\"input\":\"%s\",\"output_type\":\"%s\",\"bytes\":%llu}\n",
		       in_vhd ? "vhd" : "raw", type, (unsigned long long)sectors * 512);
out:
	free(buf);
	pvio_vhd_close(ov);
	if (ofd >= 0)
		close(ofd);
	pvio_vhd_chain_close(c);
	close(fd);
	if (rc)
		unlink(out);
	return rc;
}

/* ---- coalesce ---------------------------------------------------------------- */

static const char coalesce_help[] =
	"usage: vhdtool coalesce [--json] CHILD\n"
	"Merge differencing disk CHILD into its parent: every sector CHILD holds is\n"
	"written into the parent.  CHILD's view (and that of its children) is\n"
	"unchanged; CHILD may then be dropped and its children re-pointed with\n"
	"set-parent.  No other child of the parent may be in use.\n";

static int cmd_coalesce(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, coalesce_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 1)
		return usage_err("coalesce", "expected CHILD");
	struct pvio_vhd_err e = { 0, "" };
	struct pvio_vhd_chain *c;
	struct pvio_vhd *parent = NULL;
	int rc = 1;
	/* chain_open proves the parent is the one CHILD recorded (UUID). */
	if (pvio_vhd_chain_open(argv[i], 0, &c, &e) < 0)
		return fail(&e);
	struct pvio_vhd *child = pvio_vhd_chain_layer(c, 0);
	struct pvio_vhd_info ci;
	pvio_vhd_get_info(child, &ci);
	uint8_t *buf = malloc((size_t)CHUNK_SECTORS * 512);
	if (ci.type != PVIO_VHD_DIFF || !buf) {
		fprintf(stderr, "%s: %s: not a differencing disk\n", prog, argv[i]);
		goto out;
	}
	if (pvio_vhd_open(ci.parent_path, PVIO_VHD_RDWR, &parent, &e) < 0) {
		fail(&e);
		goto out;
	}
	uint64_t total = pvio_vhd_sectors(child), moved = 0;
	if (pvio_vhd_sectors(parent) < total) {
		fprintf(stderr, "%s: %s: parent is smaller than the child; not supported\n", prog,
			argv[i]);
		goto out;
	}
	for (uint64_t s = 0; s < total;) {
		uint64_t off;
		uint32_t want = total - s < CHUNK_SECTORS ? (uint32_t)(total - s) : CHUNK_SECTORS;
		int64_t r = pvio_vhd_own_run(child, s, want, &off, &e);
		if (r < 0) {
			fail(&e);
			goto out;
		}
		if (off != UINT64_MAX) {
			if (pread(pvio_vhd_fd(child), buf, (size_t)r * 512, (off_t)off) != r * 512) {
				fprintf(stderr, "%s: %s: short read\n", prog, argv[i]);
				goto out;
			}
			if (pvio_vhd_write(parent, buf, s, (uint32_t)r, &e) < 0) {
				fail(&e);
				goto out;
			}
			moved += (uint64_t)r;
		}
		s += (uint64_t)r;
		progress("coalesce", s, total);
	}
	if (pvio_vhd_flush(parent) < 0) {
		fprintf(stderr, "%s: %s: sync failed\n", prog, ci.parent_path);
		goto out;
	}
	rc = 0;
	if (o.json) {
		printf("{\"child\":");
		json_str(stdout, argv[i]);
		printf(",\"parent\":");
		json_str(stdout, ci.parent_path);
		printf(",\"bytes_merged\":%llu}\n", (unsigned long long)moved * 512);
	} else {
		printf("merged %llu bytes of %s into %s\n", (unsigned long long)moved * 512, argv[i],
		       ci.parent_path);
	}
out:
	free(buf);
	pvio_vhd_close(parent);
	pvio_vhd_chain_close(c);
	return rc;
}

/* ---- revert / set-parent --------------------------------------------------- */

static const char revert_help[] =
	"usage: vhdtool revert LEAF\n"
	"Drop LEAF's changes: replace it with a fresh, empty child of its parent\n"
	"(same size), as XenServer's snapshot revert does.  The swap is a rename,\n"
	"so LEAF is either the old or the new disk, never half of each.\n";

static int cmd_revert(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, revert_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 1)
		return usage_err("revert", "expected LEAF");
	const char *leaf = argv[i];
	struct pvio_vhd_err e = { 0, "" };
	struct pvio_vhd_chain *c;
	if (pvio_vhd_chain_open(leaf, 0, &c, &e) < 0)
		return fail(&e);
	struct pvio_vhd_info in;
	pvio_vhd_get_info(pvio_vhd_chain_layer(c, 0), &in);
	pvio_vhd_chain_close(c);
	if (in.type != PVIO_VHD_DIFF) {
		fprintf(stderr, "%s: %s: not a differencing disk: nothing to revert to\n", prog, leaf);
		return 1;
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.revert.%d", leaf, (int)getpid());
	struct pvio_vhd_create_opts co = { .type = PVIO_VHD_DIFF, .parent = in.parent_path,
					   .size = in.virtual_size, .block_size = in.block_size };
	if (pvio_vhd_create(tmp, &co, &e) < 0)
		return fail(&e);
	if (rename(tmp, leaf) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, leaf, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

static const char set_parent_help[] =
	"usage: vhdtool set-parent CHILD NEWPARENT\n"
	"Re-point differencing disk CHILD at NEWPARENT (after the parent moved, or\n"
	"to skip a coalesced layer): rewrites the parent locators, UUID and\n"
	"timestamp.  Says so when NEWPARENT's UUID differs from the recorded one.\n";

static int cmd_set_parent(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o, set_parent_help);
	if (o.help)
		return 0;
	if (i < 0 || argc - i != 2)
		return usage_err("set-parent", "expected CHILD and NEWPARENT");
	struct pvio_vhd_err e = { 0, "" };
	bool changed = false;
	if (pvio_vhd_set_parent(argv[i], argv[i + 1], &changed, &e) < 0)
		return fail(&e);
	if (changed)
		printf("%s: parent UUID changed to that of %s\n", argv[i], argv[i + 1]);
	/* prove the result opens as a chain */
	struct pvio_vhd_chain *c;
	if (pvio_vhd_chain_open(argv[i], 0, &c, &e) < 0)
		return fail(&e);
	pvio_vhd_chain_close(c);
	return 0;
}

/* ---- main ---------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} cmds[] = {
	{ "create", cmd_create, "create an empty fixed or dynamic VHD" },
	{ "snapshot", cmd_snapshot, "create a differencing child of a VHD" },
	{ "info", cmd_info, "show an image (or its chain)" },
	{ "check", cmd_check, "check every structural rule (exit 0/1)" },
	{ "coalesce", cmd_coalesce, "merge a child into its parent" },
	{ "convert", cmd_convert, "raw -> VHD, VHD chain -> raw" },
	{ "map", cmd_map, "show which blocks are allocated where in the chain" },
	{ "revert", cmd_revert, "replace a leaf by a fresh child of its parent" },
	{ "set-parent", cmd_set_parent, "re-point a child at a new parent" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vhdtool COMMAND [options] ARGS   (vhdtool COMMAND --help)\n\n");
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		fprintf(f, "  %-11s %s\n", cmds[k].name, cmds[k].what);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (!strcmp(argv[1], cmds[k].name)) {
			int rc = cmds[k].fn(argc - 1, argv + 1);
			return rc;
		}
	}
	fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
	usage(stderr);
	return 2;
}
