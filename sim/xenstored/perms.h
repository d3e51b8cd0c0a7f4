/* SPDX-License-Identifier: MIT */
/*
 * Node permissions as xenstored has them: a list of (domid, access) where the
 * first entry names the owner and gives the access of everyone not listed.
 */
#ifndef XSD_PERMS_H
#define XSD_PERMS_H

#include <stddef.h>
#include <stdint.h>

#define PERM_NONE 0u
#define PERM_READ 1u
#define PERM_WRITE 2u
#define PERM_OWNER 4u /* internal: may change permissions */
#define PERM_ALL (PERM_READ | PERM_WRITE | PERM_OWNER)

struct perm_entry {
	uint32_t domid;
	unsigned int access;
};

struct perms {
	unsigned int num;
	struct perm_entry *p;
};

/*
 * Parse len bytes of NUL-terminated "<n|r|w|b><domid>" strings (the wire form
 * of XS_SET_PERMS). Every string must be terminated and valid, at least one.
 * Returns 0 or -EINVAL/-ENOMEM; out owns new memory on success.
 */
int perms_parse(const char *buf, size_t len, struct perms *out);
/* Wire form into buf; returns its length or -E2BIG if cap is too small. */
int perms_format(const struct perms *pl, char *buf, size_t cap);
/* Access of domid to a node with these permissions (PERM_* bits). */
unsigned int perms_for(const struct perms *pl, uint32_t domid);
int perms_copy(struct perms *dst, const struct perms *src);
void perms_free(struct perms *pl);
/* perms = a single entry "n<owner>". */
int perms_init_owner(struct perms *pl, uint32_t owner, unsigned int access);

#endif
