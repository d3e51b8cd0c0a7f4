/* SPDX-License-Identifier: MIT */
/* Node names: validation and turning relative names into absolute ones. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xenstored.h"

const char *const xsd_special_names[SPECIAL_COUNT] = {
	[SPECIAL_INTRODUCE] = "@introduceDomain",
	[SPECIAL_RELEASE] = "@releaseDomain",
};

int special_index(const char *name)
{
	for (int i = 0; i < SPECIAL_COUNT; i++)
		if (strcmp(name, xsd_special_names[i]) == 0)
			return i;
	return -ENOENT;
}

int parse_domid(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	/* By hand rather than strtoul: no sign, no blanks, no overflow games. */
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (i == 0 || v > XSD_DOMID_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool valid_char(char c)
{
	/* Explicit ranges: isalnum() would depend on the locale. */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '/' || c == '_' || c == '@';
}

static bool valid_abs(const char *p)
{
	size_t len = strlen(p);

	if (p[0] != '/' || len > XENSTORE_ABS_PATH_MAX)
		return false;
	if (len > 1 && p[len - 1] == '/')
		return false;
	if (strstr(p, "//"))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!valid_char(p[i]))
			return false;
	return true;
}

int path_canonical(uint32_t domid, const char *in, char *out, bool allow_special,
		   bool *relative)
{
	size_t len = strlen(in);

	if (relative)
		*relative = false;
	if (in[0] == '@') {
		if (!allow_special || len > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		for (size_t i = 0; i < len; i++)
			if (!valid_char(in[i]))
				return -EINVAL;
		memcpy(out, in, len + 1);
		return 0;
	}
	if (in[0] == '/') {
		if (len > XENSTORE_ABS_PATH_MAX)
			return -EINVAL;
		memcpy(out, in, len + 1);
	} else {
		if (len > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		/* "" becomes ".../N/", which valid_abs rejects, as xenstored does. */
		int n = snprintf(out, XENSTORE_ABS_PATH_MAX + 1, "/local/domain/%u/%s",
				 domid, in);
		if (n < 0 || n > XENSTORE_ABS_PATH_MAX)
			return -EINVAL;
		if (relative)
			*relative = true;
	}
	return valid_abs(out) ? 0 : -EINVAL;
}

bool path_is_child(const char *name, const char *path)
{
	size_t len = strlen(path);

	if (strcmp(path, "/") == 0)
		return name[0] == '/';
	return strncmp(name, path, len) == 0 && (name[len] == '\0' || name[len] == '/');
}
