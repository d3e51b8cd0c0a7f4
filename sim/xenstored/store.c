/* SPDX-License-Identifier: MIT */
/*
 * The node tree: lookup, creation with implicit parents, removal of
 * subtrees, permissions checks, per-owner node counts (quota) and the
 * generation numbers transactions use to detect conflicts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "xenstored.h"

#define SEEN_MAX 4096u /* paths one transaction may depend on outside its snapshot */

/*
 * One counter for every tree, so that a generation never repeats: a node
 * deleted and re-created by someone else can never look unchanged.
 */
static uint64_t gen_counter;

static uint64_t next_gen(void)
{
	return ++gen_counter;
}

static void touch(const struct store *st, struct node *n)
{
	if (st->tracking)
		n->accessed = true;
}

static int note_seen(struct store *st, const char *path, uint64_t gen)
{
	if (!st->tracking)
		return 0;
	if (st->nseen == st->capseen) {
		unsigned int cap = st->capseen ? st->capseen * 2 : 16;
		struct seen *s;

		/* A transaction that depends on this much is refused, not grown. */
		if (st->nseen >= SEEN_MAX)
			return -ENOSPC;
		s = realloc(st->seen, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		st->seen = s;
		st->capseen = cap;
	}
	st->seen[st->nseen].path = strdup(path);
	if (!st->seen[st->nseen].path)
		return -ENOMEM;
	st->seen[st->nseen].gen = gen;
	st->nseen++;
	return 0;
}

static struct owner_count *owner_slot(struct store *st, uint32_t domid, bool create)
{
	for (unsigned int i = 0; i < st->nowners; i++)
		if (st->owners[i].domid == domid)
			return &st->owners[i];
	if (!create)
		return NULL;
	if (st->nowners == st->capowners) {
		unsigned int cap = st->capowners ? st->capowners * 2 : 8;
		struct owner_count *o = realloc(st->owners, cap * sizeof(*o));

		if (!o)
			return NULL;
		st->owners = o;
		st->capowners = cap;
	}
	st->owners[st->nowners].domid = domid;
	st->owners[st->nowners].count = 0;
	return &st->owners[st->nowners++];
}

/*
 * Counting is best effort on ENOMEM: a lost count only loosens a quota,
 * and must not fail an operation that already changed the tree.
 */
static void owner_add(struct store *st, uint32_t domid, int delta)
{
	struct owner_count *o = owner_slot(st, domid, delta > 0);

	if (!o)
		return;
	if (delta < 0 && o->count < (unsigned int)-delta)
		o->count = 0;
	else
		o->count += (unsigned int)delta;
}

unsigned int store_owner_count(const struct store *st, uint32_t domid)
{
	for (unsigned int i = 0; i < st->nowners; i++)
		if (st->owners[i].domid == domid)
			return st->owners[i].count;
	return 0;
}

static void node_free(struct node *n)
{
	for (unsigned int i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->name);
	free(n->value);
	perms_free(&n->perms);
	free(n);
}

static struct node *node_new(const char *name, size_t namelen, const struct perms *perms)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strndup(name, namelen);
	if (!n->name || perms_copy(&n->perms, perms) < 0) {
		free(n->name);
		free(n);
		return NULL;
	}
	n->gen = next_gen();
	return n;
}

static int add_kid(struct node *parent, struct node *kid)
{
	if (parent->nkids == parent->capkids) {
		unsigned int cap = parent->capkids ? parent->capkids * 2 : 4;
		struct node **k = realloc(parent->kids, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->capkids = cap;
	}
	parent->kids[parent->nkids++] = kid;
	kid->parent = parent;
	return 0;
}

static struct node *find_kid(const struct node *n, const char *name, size_t len)
{
	for (unsigned int i = 0; i < n->nkids; i++)
		if (strncmp(n->kids[i]->name, name, len) == 0 && n->kids[i]->name[len] == '\0')
			return n->kids[i];
	return NULL;
}

/*
 * Walk path. Returns the node or NULL; *nearest is the deepest existing node
 * on the way and *rest the part of path below it that does not exist.
 */
static struct node *lookup(const struct store *st, const char *path,
			   struct node **nearest, const char **rest)
{
	struct node *n = st->root;
	const char *p = path + 1;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct node *k = find_kid(n, p, len);

		if (!k) {
			if (nearest)
				*nearest = n;
			if (rest)
				*rest = p;
			return NULL;
		}
		n = k;
		p += len;
		if (*p == '/')
			p++;
	}
	return n;
}

struct node *store_peek(const struct store *st, const char *path)
{
	return lookup(st, path, NULL, NULL);
}

uint64_t store_gen(const struct store *st, const char *path)
{
	struct node *n = lookup(st, path, NULL, NULL);

	return n ? n->gen : 0;
}

/*
 * The node with the requested access, or why not. For a missing node the
 * answer depends on the nearest existing ancestor: ENOENT if the caller may
 * read it, EACCES otherwise, so that a domain cannot probe for the existence
 * of nodes it may not see (as xenstored's errno_from_parents()).
 */
static int get_node(struct store *st, const struct actor *a, const char *path,
		    unsigned int access, struct node **out)
{
	struct node *nearest = NULL;
	struct node *n = lookup(st, path, &nearest, NULL);
	int r;

	if (n) {
		touch(st, n);
		if ((perms_for(&n->perms, a->domid) & access) != access)
			return -EACCES;
		*out = n;
		return 0;
	}
	r = note_seen(st, path, 0);
	if (r < 0)
		return r;
	touch(st, nearest);
	return (perms_for(&nearest->perms, a->domid) & PERM_READ) ? -ENOENT : -EACCES;
}

static int set_value(struct node *n, const char *val, size_t len)
{
	char *v = malloc(len ? len : 1);

	if (!v)
		return -ENOMEM;
	memcpy(v, val, len);
	free(n->value);
	n->value = v;
	n->vlen = len;
	return 0;
}

/* Create path and any missing parents; the last node gets val. */
static int create(struct store *st, const struct actor *a, const char *path,
		  const char *val, size_t len)
{
	struct node *nearest = NULL, *top = NULL, *last = NULL, *parent;
	const char *rest = NULL, *p;
	unsigned int count = 0;

	if (lookup(st, path, &nearest, &rest))
		return -EEXIST;
	touch(st, nearest);
	if (!(perms_for(&nearest->perms, a->domid) & PERM_WRITE))
		return -EACCES;

	for (p = rest; p; p = strchr(p, '/'), p = p ? p + 1 : NULL)
		count++;
	if (a->enforce_quota && a->domid != 0 &&
	    store_owner_count(st, a->domid) + count > XSD_MAX_NODES_DOMU)
		return -ENOSPC;

	/* Build the new chain detached, so that ENOMEM leaves the tree untouched. */
	parent = nearest;
	for (p = rest; p;) {
		const char *slash = strchr(p, '/');
		size_t clen = slash ? (size_t)(slash - p) : strlen(p);
		struct node *n = node_new(p, clen, &parent->perms);

		if (!n)
			goto nomem;
		/* Unprivileged creators own what they create (xenstored semantics). */
		if (a->domid != 0)
			n->perms.p[0].domid = a->domid;
		if (last) {
			if (add_kid(last, n) < 0) {
				node_free(n);
				goto nomem;
			}
		} else {
			top = n;
		}
		last = n;
		parent = n;
		p = slash ? slash + 1 : NULL;
	}
	if (set_value(last, val, len) < 0 || add_kid(nearest, top) < 0)
		goto nomem;

	nearest->gen = next_gen();
	for (struct node *n = last; n != nearest; n = n->parent) {
		touch(st, n);
		owner_add(st, n->perms.p[0].domid, 1);
	}
	/*
	 * One event for the deepest node reaches every watcher of the implicit
	 * parents too, since their watches are its ancestors (as xenstored).
	 */
	if (a->changed)
		a->changed(path, &last->perms, NULL, false);
	return 0;

nomem:
	if (top)
		node_free(top);
	return -ENOMEM;
}

int store_read(struct store *st, const struct actor *a, const char *path,
	       const char **val, size_t *len)
{
	struct node *n;
	int r = get_node(st, a, path, PERM_READ, &n);

	if (r < 0)
		return r;
	*val = n->value ? n->value : "";
	*len = n->vlen;
	return 0;
}

int store_get(struct store *st, const struct actor *a, const char *path,
	      struct node **out)
{
	return get_node(st, a, path, PERM_READ, out);
}

int store_write(struct store *st, const struct actor *a, const char *path,
		const char *val, size_t len)
{
	struct node *n;
	int r = get_node(st, a, path, PERM_WRITE, &n);

	if (r == -ENOENT)
		return create(st, a, path, val, len);
	if (r < 0)
		return r;
	r = set_value(n, val, len);
	if (r < 0)
		return r;
	n->gen = next_gen();
	if (a->changed)
		a->changed(path, &n->perms, NULL, false);
	return 0;
}

int store_mkdir(struct store *st, const struct actor *a, const char *path)
{
	struct node *n;
	int r = get_node(st, a, path, PERM_WRITE, &n);

	/* Existing node: success and no event, as xenstored. */
	if (r == -ENOENT)
		return create(st, a, path, "", 0);
	return r;
}

/* Append "/name" to buf (holding a path of length len); false if too long. */
static bool path_push(char *buf, size_t len, const char *name, size_t *newlen)
{
	size_t nlen = strlen(name);
	size_t sep = (len == 1) ? 0 : 1; /* buf == "/" */

	if (len + sep + nlen > XENSTORE_ABS_PATH_MAX)
		return false;
	if (sep)
		buf[len] = '/';
	memcpy(buf + len + sep, name, nlen + 1);
	*newlen = len + sep + nlen;
	return true;
}

/* Record every removed node the transaction saw in the committed tree. */
static int note_removed(struct store *st, struct node *n, char *buf, size_t len)
{
	int r;

	if (n->orig_gen) {
		r = note_seen(st, buf, n->orig_gen);
		if (r < 0)
			return r;
	}
	for (unsigned int i = 0; i < n->nkids; i++) {
		size_t klen;

		if (!path_push(buf, len, n->kids[i]->name, &klen))
			continue; /* cannot happen: names were validated */
		r = note_removed(st, n->kids[i], buf, klen);
		buf[len] = '\0';
		if (r < 0)
			return r;
	}
	return 0;
}

/* Exact events for every descendant (xenstored tells watchers of children). */
static void fire_removed(struct store *st, const struct actor *a, struct node *n,
			 char *buf, size_t len)
{
	for (unsigned int i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];
		size_t klen;

		if (!path_push(buf, len, k->name, &klen))
			continue;
		fire_removed(st, a, k, buf, klen);
		a->changed(buf, &k->perms, NULL, true);
		buf[len] = '\0';
	}
}

static void uncount(struct store *st, const struct node *n)
{
	owner_add(st, n->perms.p[0].domid, -1);
	for (unsigned int i = 0; i < n->nkids; i++)
		uncount(st, n->kids[i]);
}

int store_rm(struct store *st, const struct actor *a, const char *path)
{
	char buf[XENSTORE_ABS_PATH_MAX + 1];
	struct node *n, *parent;
	size_t len = strlen(path);
	int r = get_node(st, a, path, PERM_WRITE, &n);

	if (r == -ENOENT) {
		/* Already gone is fine if the parent exists. */
		const char *slash = strrchr(path, '/');
		size_t plen = slash == path ? 1 : (size_t)(slash - path);

		memcpy(buf, path, plen);
		buf[plen] = '\0';
		parent = lookup(st, buf, NULL, NULL);
		if (!parent)
			return -ENOENT;
		touch(st, parent);
		return 0;
	}
	if (r < 0)
		return r;
	if (n == st->root)
		return -EINVAL;

	memcpy(buf, path, len + 1);
	if (st->tracking) {
		r = note_removed(st, n, buf, len);
		if (r < 0)
			return r;
	}
	if (a->changed) {
		fire_removed(st, a, n, buf, len);
		a->changed(path, &n->perms, NULL, false);
	}

	parent = n->parent;
	for (unsigned int i = 0; i < parent->nkids; i++) {
		if (parent->kids[i] != n)
			continue;
		memmove(&parent->kids[i], &parent->kids[i + 1],
			(parent->nkids - i - 1) * sizeof(*parent->kids));
		parent->nkids--;
		break;
	}
	parent->gen = next_gen();
	touch(st, parent);
	uncount(st, n);
	node_free(n);
	return 0;
}

int store_set_perms(struct store *st, const struct actor *a, const char *path,
		    const struct perms *perms)
{
	struct perms old;
	struct node *n;
	int r = get_node(st, a, path, PERM_WRITE | PERM_OWNER, &n);

	if (r < 0)
		return r;
	/* Only dom0 may give a node away. */
	if (a->domid != 0 && perms->p[0].domid != n->perms.p[0].domid)
		return -EPERM;
	old = n->perms;
	r = perms_copy(&n->perms, perms);
	if (r < 0) {
		n->perms = old;
		return r;
	}
	owner_add(st, old.p[0].domid, -1);
	owner_add(st, n->perms.p[0].domid, 1);
	n->gen = next_gen();
	if (a->changed)
		a->changed(path, &n->perms, &old, false);
	perms_free(&old);
	return 0;
}

struct store *store_new(void)
{
	static const char *const initial[] = { "/local", "/local/domain", "/tool",
					       "/tool/xenstored" };
	struct actor dom0 = { .domid = 0 };
	struct store *st = calloc(1, sizeof(*st));
	struct perms p;

	if (!st)
		return NULL;
	if (perms_init_owner(&p, 0, PERM_NONE) < 0)
		goto fail;
	st->root = node_new("", 0, &p);
	perms_free(&p);
	if (!st->root)
		goto fail;
	owner_add(st, 0, 1);
	for (size_t i = 0; i < sizeof(initial) / sizeof(initial[0]); i++)
		if (store_mkdir(st, &dom0, initial[i]) < 0)
			goto fail;
	return st;
fail:
	store_free(st);
	return NULL;
}

static struct node *copy_tree(const struct node *src)
{
	struct node *n = node_new(src->name, strlen(src->name), &src->perms);

	if (!n)
		return NULL;
	if (src->vlen && set_value(n, src->value, src->vlen) < 0)
		goto fail;
	n->gen = n->orig_gen = src->gen;
	n->kids = calloc(src->nkids ? src->nkids : 1, sizeof(*n->kids));
	if (!n->kids)
		goto fail;
	n->capkids = src->nkids ? src->nkids : 1;
	for (unsigned int i = 0; i < src->nkids; i++) {
		struct node *k = copy_tree(src->kids[i]);

		if (!k)
			goto fail;
		k->parent = n;
		n->kids[n->nkids++] = k;
	}
	return n;
fail:
	node_free(n);
	return NULL;
}

struct store *store_snapshot(const struct store *src)
{
	struct store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->tracking = true;
	st->root = copy_tree(src->root);
	st->owners = malloc((src->nowners + 1) * sizeof(*st->owners));
	if (!st->root || !st->owners) {
		store_free(st);
		return NULL;
	}
	memcpy(st->owners, src->owners, src->nowners * sizeof(*st->owners));
	st->nowners = st->capowners = src->nowners;
	return st;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	if (st->root)
		node_free(st->root);
	for (unsigned int i = 0; i < st->nseen; i++)
		free(st->seen[i].path);
	free(st->seen);
	free(st->owners);
	free(st);
}
