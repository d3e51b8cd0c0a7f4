/* SPDX-License-Identifier: MIT */
/* Transactions: snapshot, mutation log, conflict check and replay on commit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "txn.h"
#include "watch.h"
#include "xenstored.h"

int txn_start(struct conn *c, struct txn **out)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->snap = store_snapshot(xsd.store);
	if (!t->snap) {
		free(t);
		return -ENOMEM;
	}
	/* Ids are per connection, never 0 (XBT_NULL), never reused while open. */
	do {
		if (++c->next_txid == 0)
			c->next_txid = 1;
	} while (txn_find(c, c->next_txid));
	t->id = c->next_txid;
	t->ops_tail = &t->ops;
	t->next = c->txns;
	c->txns = t;
	c->ntxns++;
	*out = t;
	return 0;
}

struct txn *txn_find(struct conn *c, uint32_t id)
{
	for (struct txn *t = c->txns; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

int txn_room(const struct txn *t)
{
	return t->nops < XSD_MAX_TXN_OPS ? 0 : -ENOSPC;
}

int txn_log(struct txn *t, enum txn_op_kind kind, const char *path,
	    const char *data, size_t len, const struct perms *perms)
{
	struct txn_op *op = calloc(1, sizeof(*op));

	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->path = strdup(path);
	op->data = malloc(len ? len : 1);
	if (!op->path || !op->data || (perms && perms_copy(&op->perms, perms) < 0)) {
		free(op->path);
		free(op->data);
		free(op);
		return -ENOMEM;
	}
	if (len)
		memcpy(op->data, data, len);
	op->len = len;
	*t->ops_tail = op;
	t->ops_tail = &op->next;
	t->nops++;
	return 0;
}

/* Every node the transaction touched must be as it was in the snapshot. */
static bool unchanged(const struct node *n, char *buf, size_t len)
{
	if (n->accessed && store_gen(xsd.store, buf) != n->orig_gen)
		return false;
	for (unsigned int i = 0; i < n->nkids; i++) {
		const char *name = n->kids[i]->name;
		size_t nlen = strlen(name), sep = (len == 1) ? 0 : 1;
		bool ok;

		if (len + sep + nlen > XENSTORE_ABS_PATH_MAX)
			continue; /* cannot happen: names were validated */
		if (sep)
			buf[len] = '/';
		memcpy(buf + len + sep, name, nlen + 1);
		ok = unchanged(n->kids[i], buf, len + sep + nlen);
		buf[len] = '\0';
		if (!ok)
			return false;
	}
	return true;
}

static bool valid(const struct txn *t)
{
	char buf[XENSTORE_ABS_PATH_MAX + 1] = "/";

	if (!unchanged(t->snap->root, buf, 1))
		return false;
	for (unsigned int i = 0; i < t->snap->nseen; i++)
		if (store_gen(xsd.store, t->snap->seen[i].path) != t->snap->seen[i].gen)
			return false;
	return true;
}

static void op_free(struct txn_op *op)
{
	free(op->path);
	free(op->data);
	perms_free(&op->perms);
	free(op);
}

static void txn_free(struct conn *c, struct txn *t)
{
	for (struct txn **pp = &c->txns; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			c->ntxns--;
			break;
		}
	}
	while (t->ops) {
		struct txn_op *op = t->ops;

		t->ops = op->next;
		op_free(op);
	}
	store_free(t->snap);
	free(t);
}

int txn_end(struct conn *c, struct txn *t, bool commit)
{
	/* Quota was enforced on the snapshot; the replay must not half-apply. */
	struct actor a = { .domid = c->domid, .enforce_quota = false, .changed = watch_fire };
	int r = 0;

	if (commit && !valid(t)) {
		r = -EAGAIN;
	} else if (commit) {
		for (struct txn_op *op = t->ops; op; op = op->next) {
			int e = 0;

			switch (op->kind) {
			case TXN_WRITE:
				e = store_write(xsd.store, &a, op->path, op->data, op->len);
				break;
			case TXN_MKDIR:
				e = store_mkdir(xsd.store, &a, op->path);
				break;
			case TXN_RM:
				e = store_rm(xsd.store, &a, op->path);
				break;
			case TXN_SET_PERMS:
				e = store_set_perms(xsd.store, &a, op->path, &op->perms);
				break;
			}
			/* Only ENOMEM can get here: everything touched was validated. */
			if (e < 0)
				xsd_log("conn %u: tx %u replay of %s failed: %s", c->id, t->id,
					op->path, xsd_errname(-e));
		}
	}
	txn_free(c, t);
	return r;
}

void txn_free_all(struct conn *c)
{
	while (c->txns)
		txn_free(c, c->txns);
}
