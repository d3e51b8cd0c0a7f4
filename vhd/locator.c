/* SPDX-License-Identifier: MIT */
/* Parent locators (W2ru, W2ku, MacX) and the header's parent name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"

int vhd_utf16_to_utf8(const uint8_t *in, size_t len, bool be, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		uint32_t c = be ? (uint32_t)(in[i] << 8 | in[i + 1]) : (uint32_t)(in[i + 1] << 8 | in[i]);
		if (c == 0)
			break;
		if (c >= 0xd800 && c < 0xdc00) {
			if (i + 3 >= len)
				return -EINVAL;
			uint32_t lo = be ? (uint32_t)(in[i + 2] << 8 | in[i + 3])
					 : (uint32_t)(in[i + 3] << 8 | in[i + 2]);
			if (lo < 0xdc00 || lo >= 0xe000)
				return -EINVAL;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		} else if (c >= 0xdc00 && c < 0xe000) {
			return -EINVAL;
		}
		uint8_t b[4];
		size_t n;
		if (c < 0x80) {
			b[0] = (uint8_t)c; n = 1;
		} else if (c < 0x800) {
			b[0] = (uint8_t)(0xc0 | c >> 6); b[1] = (uint8_t)(0x80 | (c & 0x3f)); n = 2;
		} else if (c < 0x10000) {
			b[0] = (uint8_t)(0xe0 | c >> 12); b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			b[2] = (uint8_t)(0x80 | (c & 0x3f)); n = 3;
		} else {
			b[0] = (uint8_t)(0xf0 | c >> 18); b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
			b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)); b[3] = (uint8_t)(0x80 | (c & 0x3f)); n = 4;
		}
		if (o + n + 1 > outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, b, n);
		o += n;
	}
	if (o + 1 > outlen)
		return -ENAMETOOLONG;
	out[o] = 0;
	return (int)o;
}

int vhd_utf8_to_utf16(const char *in, bool be, uint8_t *out, size_t outlen)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t o = 0;
	while (*s) {
		uint32_t c;
		unsigned extra;
		if (*s < 0x80) { c = *s; extra = 0; }
		else if ((*s & 0xe0) == 0xc0) { c = *s & 0x1f; extra = 1; }
		else if ((*s & 0xf0) == 0xe0) { c = *s & 0x0f; extra = 2; }
		else if ((*s & 0xf8) == 0xf0) { c = *s & 0x07; extra = 3; }
		else return -EINVAL;
		s++;
		for (unsigned k = 0; k < extra; k++, s++) {
			if ((*s & 0xc0) != 0x80)
				return -EINVAL;
			c = c << 6 | (*s & 0x3f);
		}
		uint16_t u[2];
		unsigned nu = 1;
		if (c >= 0x10000) {
			c -= 0x10000;
			u[0] = (uint16_t)(0xd800 + (c >> 10));
			u[1] = (uint16_t)(0xdc00 + (c & 0x3ff));
			nu = 2;
		} else {
			u[0] = (uint16_t)c;
		}
		for (unsigned k = 0; k < nu; k++) {
			if (o + 2 > outlen)
				return -ENAMETOOLONG;
			out[o + (be ? 0 : 1)] = (uint8_t)(u[k] >> 8);
			out[o + (be ? 1 : 0)] = (uint8_t)u[k];
			o += 2;
		}
	}
	return (int)o;
}

int vhd_locator_decode(uint32_t code, const uint8_t *data, size_t len, char *out, size_t outlen)
{
	int r;
	if (code == PLAT_W2RU || code == PLAT_W2KU) {
		r = vhd_utf16_to_utf8(data, len, false, out, outlen);
	} else if (code == PLAT_MACX) {
		size_t n = strnlen((const char *)data, len);
		const char *s = (const char *)data;
		/* blktap writes "file://./name" (relative) or "file:///abs". */
		if (n >= 7 && strncmp(s, "file://", 7) == 0) {
			s += 7;
			n -= 7;
		}
		if (n + 1 > outlen)
			return -ENAMETOOLONG;
		memcpy(out, s, n);
		out[n] = 0;
		r = (int)n;
	} else {
		return -ENOTSUP;
	}
	if (r < 0)
		return r;
	if (r == 0 || memchr(out, 0, (size_t)r))
		return -EINVAL;
	/* Windows separators; a drive letter path cannot exist here anyway. */
	for (char *p = out; *p; p++)
		if (*p == '\\')
			*p = '/';
	return 0;
}

static bool try_candidate(struct pvio_vhd *v, const char *path)
{
	char full[PATH_MAX];
	struct stat st;
	if (path[0] == '/') {
		if (snprintf(full, sizeof(full), "%s", path) >= (int)sizeof(full))
			return false;
	} else {
		const char *p = path;
		while (p[0] == '.' && p[1] == '/')
			p += 2;
		if (snprintf(full, sizeof(full), "%s/%s", v->dir, p) >= (int)sizeof(full))
			return false;
	}
	size_t used = strlen(v->parent_tried);
	size_t flen = strlen(full);
	if (used + flen + 3 < sizeof(v->parent_tried)) {
		if (used)
			memcpy(v->parent_tried + used, ", ", 2), used += 2;
		memcpy(v->parent_tried + used, full, flen + 1);
	}
	if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	snprintf(v->parent_path, sizeof(v->parent_path), "%s", full);
	return true;
}

/*
 * Find the parent file: relative locators first (resolved against the
 * child's directory, so a chain moved as a whole still opens), then the
 * absolute ones, then the header's parent name next to the child.
 */
int vhd_resolve_parent(struct pvio_vhd *v, struct pvio_vhd_err *err)
{
	static const uint32_t order[] = { PLAT_W2RU, PLAT_MACX, PLAT_W2KU };
	char path[PATH_MAX];
	v->parent_tried[0] = 0;
	v->parent_path[0] = 0;
	for (unsigned o = 0; o < 3; o++) {
		for (unsigned i = 0; i < NLOCATORS; i++) {
			const struct vhd_locator *l = &v->header.loc[i];
			if (l->code != order[o] || l->len == 0)
				continue;
			uint8_t *buf = malloc(l->len);	/* len was bounded at open */
			if (!buf)
				return vhd_err(err, -ENOMEM, "out of memory");
			int r = vhd_pread(v->fd, buf, l->len, l->offset);
			if (r == 0)
				r = vhd_locator_decode(l->code, buf, l->len, path, sizeof(path));
			free(buf);
			if (r == 0 && try_candidate(v, path))
				return 0;
		}
	}
	if (v->parent_name[0]) {
		const char *base = strrchr(v->parent_name, '/');
		if (try_candidate(v, v->parent_name))
			return 0;
		if (base && try_candidate(v, base + 1))
			return 0;
	}
	return vhd_err(err, -ENOENT, "%s: parent not found (tried: %s)", v->path,
		       v->parent_tried[0] ? v->parent_tried : "no usable locator");
}

int vhd_relpath(const char *from_dir, const char *to, char *out, size_t outlen)
{
	size_t i = 0, common = 0;
	/* longest common prefix ending at a component boundary */
	while (from_dir[i] && to[i] && from_dir[i] == to[i]) {
		if (to[i] == '/')
			common = i;
		i++;
	}
	if (from_dir[i] == 0 && to[i] == '/')
		common = i;
	size_t o = 0;
	out[0] = 0;
	for (const char *p = from_dir + common; *p; p++) {
		if (*p == '/' && p[1]) {
			int n = snprintf(out + o, outlen - o, "../");
			if (n < 0 || (size_t)n >= outlen - o)
				return -ENAMETOOLONG;
			o += (size_t)n;
		}
	}
	int n = snprintf(out + o, outlen - o, "%s", to + common + 1);
	if (n < 0 || (size_t)n >= outlen - o)
		return -ENAMETOOLONG;
	return 0;
}

int vhd_locator_payloads(const char *child_dir, const char *parent_abs, uint8_t *w2ru,
			 size_t *w2ru_len, uint8_t *w2ku, size_t *w2ku_len, uint8_t *macx,
			 size_t *macx_len, size_t cap)
{
	char rel[PATH_MAX], tmp[PATH_MAX + 8];
	int r = vhd_relpath(child_dir, parent_abs, rel, sizeof(rel));
	if (r < 0)
		return r;
	/* W2ru as Windows writes it: ".\dir\name" */
	if (snprintf(tmp, sizeof(tmp), "./%s", rel) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp; *p; p++)
		if (*p == '/')
			*p = '\\';
	r = vhd_utf8_to_utf16(tmp, false, w2ru, cap);
	if (r < 0)
		return r;
	*w2ru_len = (size_t)r;
	r = vhd_utf8_to_utf16(parent_abs, false, w2ku, cap);
	if (r < 0)
		return r;
	*w2ku_len = (size_t)r;
	r = snprintf((char *)macx, cap, "file://%s", parent_abs);
	if (r < 0 || (size_t)r >= cap)
		return -ENAMETOOLONG;
	*macx_len = (size_t)r;
	return 0;
}
