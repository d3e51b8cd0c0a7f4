/* SPDX-License-Identifier: MIT */
/*
 * The node tree. One struct store is the committed tree; each transaction
 * works on a private deep copy (a "snapshot") that records which nodes it
 * touched, so that commit can detect conflicts by generation (see txn.c).
 *
 * All functions take absolute, already validated paths and return 0 or a
 * negative errno with xenstored's meaning (ENOENT, EACCES, ENOSPC, ...).
 */
#ifndef XSD_STORE_H
#define XSD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perms.h"

struct node {
	char *name;              /* last component; "" for the root */
	struct node *parent;
	struct node **kids;      /* in creation order, as xenstored lists them */
	unsigned int nkids, capkids;
	char *value;
	size_t vlen;
	struct perms perms;
	uint64_t gen;            /* generation of the last change to value, perms or kids */
	uint64_t orig_gen;       /* snapshot only: gen in the committed tree when copied, 0 if new */
	bool accessed;           /* snapshot only: the transaction depends on this node */
};

/* A path the transaction depended on that is no longer (or never was) in its snapshot. */
struct seen {
	char *path;
	uint64_t gen;            /* 0: was absent */
};

struct owner_count {
	uint32_t domid;
	unsigned int count;
};

struct store {
	struct node *root;
	bool tracking;           /* a transaction snapshot: record accesses */
	struct seen *seen;
	unsigned int nseen, capseen;
	struct owner_count *owners;
	unsigned int nowners, capowners;
};

/*
 * Who acts on the store, and where changes are reported. changed (may be
 * NULL) is called once per change with the node's permissions (and, for
 * XS_SET_PERMS, its old ones) so that watch delivery can check access.
 * exact: fire only watches on exactly this path (children of a removed node).
 */
typedef void (*store_change_fn)(const char *path, const struct perms *perms,
				const struct perms *old_perms, bool exact);

struct actor {
	uint32_t domid;
	bool enforce_quota;
	store_change_fn changed;
};

struct store *store_new(void);        /* the initial tree, all "n0" */
struct store *store_snapshot(const struct store *st);
void store_free(struct store *st);

/* Generation of the node at path (0 if absent), without recording access. */
uint64_t store_gen(const struct store *st, const char *path);
/* Node at path or NULL, without permission checks or access recording. */
struct node *store_peek(const struct store *st, const char *path);

int store_read(struct store *st, const struct actor *a, const char *path,
	       const char **val, size_t *len);
int store_write(struct store *st, const struct actor *a, const char *path,
		const char *val, size_t len);
int store_mkdir(struct store *st, const struct actor *a, const char *path);
int store_rm(struct store *st, const struct actor *a, const char *path);
/* The node, for XS_DIRECTORY / XS_GET_PERMS (read access checked). */
int store_get(struct store *st, const struct actor *a, const char *path,
	      struct node **out);
int store_set_perms(struct store *st, const struct actor *a, const char *path,
		    const struct perms *perms);
unsigned int store_owner_count(const struct store *st, uint32_t domid);

#endif
