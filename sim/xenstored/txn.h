/* SPDX-License-Identifier: MIT */
/*
 * Transactions. START takes a private snapshot of the committed tree; every
 * operation under the transaction id runs against the snapshot (so it sees
 * its own writes and nobody else sees them) and successful mutations are
 * logged. END "T" checks that nothing the transaction depended on changed in
 * the committed tree since the snapshot (generation compare) and then
 * replays the log there, firing watches; any change means EAGAIN and nothing
 * is applied. This is the semantics of xenstored's transactions; the copy is
 * what pre-4.9 xenstored did with its tdb and is cheap at xensim's sizes.
 */
#ifndef XSD_TXN_H
#define XSD_TXN_H

#include <stdint.h>

#include "perms.h"
#include "store.h"

enum txn_op_kind { TXN_WRITE, TXN_MKDIR, TXN_RM, TXN_SET_PERMS };

struct txn_op {
	struct txn_op *next;
	enum txn_op_kind kind;
	char *path;
	char *data;           /* TXN_WRITE value */
	size_t len;
	struct perms perms;   /* TXN_SET_PERMS */
};

struct txn {
	struct txn *next;
	uint32_t id;
	struct store *snap;
	struct txn_op *ops, **ops_tail;
	unsigned int nops;
};

struct conn;

/* New transaction on c (caller checked the per-connection cap). */
int txn_start(struct conn *c, struct txn **out);
struct txn *txn_find(struct conn *c, uint32_t id);
/* Record a mutation that succeeded on the snapshot. -ENOSPC past the cap. */
int txn_log(struct txn *t, enum txn_op_kind kind, const char *path,
	    const char *data, size_t len, const struct perms *perms);
/* Would the log still fit? Checked before mutating the snapshot. */
int txn_room(const struct txn *t);
/* Commit (-EAGAIN on conflict) or abort; t is freed either way. */
int txn_end(struct conn *c, struct txn *t, bool commit);
void txn_free_all(struct conn *c);

#endif
