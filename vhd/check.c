/* SPDX-License-Identifier: MIT */
/* Structural check of an image (and its chain), reporting every finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

struct ctx {
	pvio_vhd_report_fn *fn;
	void *opaque;
	int errors;
};

static void __attribute__((format(printf, 3, 4))) say(struct ctx *c, enum pvio_vhd_severity s,
						       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s == PVIO_VHD_ERROR)
		c->errors++;
	if (c->fn)
		c->fn(c->opaque, s, msg);
}

static void check_one(struct ctx *c, struct pvio_vhd *v)
{
	const struct vhd_footer *f = &v->footer;
	if (v->backup_used)
		say(c, PVIO_VHD_WARN,
		    "%s: trailing footer missing (an interrupted block allocation?): the copy at "
		    "offset 0 is valid and used; a read-write open rewrites it", v->path);
	if (!(f->features & VHD_FEATURES_RESERVED))
		say(c, PVIO_VHD_NOTE, "%s: footer's reserved feature bit is clear", v->path);
	if (f->saved_state)
		say(c, PVIO_VHD_WARN, "%s: saved-state flag set", v->path);
	if (v->size_from_chs)
		say(c, PVIO_VHD_NOTE,
		    "%s: size %llu bytes from the CHS geometry (creator \"%.4s\"), footer says %llu",
		    v->path, (unsigned long long)(v->sectors * PVIO_VHD_SECTOR), f->creator,
		    (unsigned long long)f->cur_size);
	if (f->cur_size % PVIO_VHD_SECTOR)
		say(c, PVIO_VHD_WARN, "%s: current size %llu is not a multiple of 512", v->path,
		    (unsigned long long)f->cur_size);
	if (f->type == PVIO_VHD_FIXED)
		return;

	uint8_t copy[FOOTER_SIZE];
	if (!v->backup_used && vhd_pread(v->fd, copy, FOOTER_SIZE, 0) == 0) {
		const char *why = vhd_footer_problem(copy);
		if (why)
			say(c, PVIO_VHD_ERROR, "%s: backup footer at offset 0: %s", v->path, why);
		else if (memcmp(copy, v->footer_raw, FOOTER_SIZE) != 0)
			say(c, PVIO_VHD_ERROR, "%s: backup footer differs from the trailing footer",
			    v->path);
	}
	if (v->header.table_offset % PVIO_VHD_SECTOR)
		say(c, PVIO_VHD_NOTE, "%s: BAT not sector-aligned", v->path);
	if (v->has_batmap)
		say(c, PVIO_VHD_NOTE, "%s: blktap batmap extension present (kept as is)", v->path);
	if (!v->backup_used && v->file_size - FOOTER_SIZE > v->next_free)
		say(c, PVIO_VHD_NOTE, "%s: %llu bytes of unreferenced space before the footer",
		    v->path, (unsigned long long)(v->file_size - FOOTER_SIZE - v->next_free));
	/* every allocated block's bitmap must be readable */
	uint32_t alloc = 0;
	for (uint32_t b = 0; b < v->bat_entries; b++) {
		if (v->bat[b] == BAT_UNUSED)
			continue;
		alloc++;
		struct pvio_vhd_err e;
		const uint8_t *bm;
		if (vhd_bitmap(v, b, &bm, &e) < 0)
			say(c, PVIO_VHD_ERROR, "%s", e.msg);
		if ((uint64_t)b * v->spb >= v->sectors)
			say(c, PVIO_VHD_WARN, "%s: block %u allocated past the virtual size", v->path, b);
	}
	say(c, PVIO_VHD_NOTE, "%s: %s, %llu bytes, %u of %u blocks allocated", v->path,
	    pvio_vhd_type_name((enum pvio_vhd_type)f->type),
	    (unsigned long long)(v->sectors * PVIO_VHD_SECTOR), alloc, v->bat_entries);
}

int pvio_vhd_check(const char *path, bool chain, pvio_vhd_report_fn *fn, void *opaque)
{
	struct ctx c = { fn, opaque, 0 };
	struct pvio_vhd_err e = { 0, "" };
	struct pvio_vhd *v;
	if (pvio_vhd_open(path, 0, &v, &e) < 0) {
		say(&c, PVIO_VHD_ERROR, "%s", e.msg);
		return c.errors;
	}
	check_one(&c, v);
	bool diff = v->footer.type == PVIO_VHD_DIFF;
	pvio_vhd_close(v);
	if (!diff)
		return c.errors;

	/* The parent must exist and carry the UUID we recorded, whether or
	 * not the whole chain is checked: without it the disk is unreadable. */
	struct pvio_vhd_chain *ch;
	if (pvio_vhd_chain_open(path, 0, &ch, &e) < 0) {
		say(&c, PVIO_VHD_ERROR, "%s", e.msg);
		return c.errors;
	}
	unsigned depth = pvio_vhd_chain_depth(ch);
	for (unsigned i = 0; i + 1 < depth; i++) {
		struct pvio_vhd *child = pvio_vhd_chain_layer(ch, i), *par = pvio_vhd_chain_layer(ch, i + 1);
		if (i > 0 && chain)
			check_one(&c, child);
		if (child->header.parent_ts != par->footer.timestamp)
			say(&c, PVIO_VHD_WARN,
			    "%s: parent timestamp %u differs from %s's %u (parent replaced or modified?)",
			    child->path, child->header.parent_ts, par->path, par->footer.timestamp);
		if (par->sectors < child->sectors)
			say(&c, PVIO_VHD_NOTE, "%s: parent %s is smaller; the rest reads as zeros",
			    child->path, par->path);
		if (!chain)
			break;
	}
	if (chain && depth > 1)
		check_one(&c, pvio_vhd_chain_layer(ch, depth - 1));
	pvio_vhd_chain_close(ch);
	return c.errors;
}
