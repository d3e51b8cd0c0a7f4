/* SPDX-License-Identifier: MIT */
/* Permission lists: parsing the wire form, formatting it, evaluating access. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenstored.h"

static int letter_access(char c, unsigned int *access)
{
	switch (c) {
	case 'n': *access = PERM_NONE; return 0;
	case 'r': *access = PERM_READ; return 0;
	case 'w': *access = PERM_WRITE; return 0;
	case 'b': *access = PERM_READ | PERM_WRITE; return 0;
	default: return -EINVAL;
	}
}

static char access_letter(unsigned int access)
{
	switch (access & (PERM_READ | PERM_WRITE)) {
	case PERM_READ: return 'r';
	case PERM_WRITE: return 'w';
	case PERM_READ | PERM_WRITE: return 'b';
	default: return 'n';
	}
}

int perms_parse(const char *buf, size_t len, struct perms *out)
{
	unsigned int n = 0;
	size_t i;

	/* Count first so one allocation suffices; the list must end in NUL. */
	if (len == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (buf[i] == '\0')
			n++;

	out->p = calloc(n, sizeof(*out->p));
	if (!out->p)
		return -ENOMEM;
	out->num = n;

	const char *s = buf;
	for (i = 0; i < n; i++) {
		if (letter_access(s[0], &out->p[i].access) < 0 ||
		    parse_domid(s + 1, &out->p[i].domid) < 0) {
			perms_free(out);
			return -EINVAL;
		}
		s += strlen(s) + 1;
	}
	return 0;
}

int perms_format(const struct perms *pl, char *buf, size_t cap)
{
	size_t off = 0;

	for (unsigned int i = 0; i < pl->num; i++) {
		int n = snprintf(buf + off, cap - off, "%c%u",
				 access_letter(pl->p[i].access), pl->p[i].domid);
		/* n + 1: snprintf's NUL is part of the wire form here. */
		if (n < 0 || (size_t)n + 1 > cap - off)
			return -E2BIG;
		off += (size_t)n + 1;
	}
	return (int)off;
}

unsigned int perms_for(const struct perms *pl, uint32_t domid)
{
	/* dom0 is the only privileged domain in xensim (no dom0-less, no stubdoms). */
	if (domid == 0)
		return PERM_ALL;
	if (pl->num == 0)
		return PERM_NONE;
	if (pl->p[0].domid == domid)
		return PERM_ALL;
	for (unsigned int i = 1; i < pl->num; i++)
		if (pl->p[i].domid == domid)
			return pl->p[i].access;
	return pl->p[0].access;
}

int perms_copy(struct perms *dst, const struct perms *src)
{
	dst->p = malloc(src->num * sizeof(*dst->p) + 1);
	if (!dst->p)
		return -ENOMEM;
	memcpy(dst->p, src->p, src->num * sizeof(*dst->p));
	dst->num = src->num;
	return 0;
}

void perms_free(struct perms *pl)
{
	free(pl->p);
	pl->p = NULL;
	pl->num = 0;
}

int perms_init_owner(struct perms *pl, uint32_t owner, unsigned int access)
{
	pl->p = calloc(1, sizeof(*pl->p));
	if (!pl->p)
		return -ENOMEM;
	pl->num = 1;
	pl->p[0].domid = owner;
	pl->p[0].access = access;
	return 0;
}
