/* SPDX-License-Identifier: MIT */
/*
 * Requests: parse one xsd_sockmsg payload, run the operation against the
 * committed tree or a transaction's snapshot, and queue the reply. Replies
 * echo type, req_id and tx_id; errors are XS_ERROR with the errno's name.
 * The payload has a guard NUL at payload[hdr->len] (conn.c), so string
 * functions stop inside the buffer; "terminated" below still means a NUL
 * within the len bytes the client sent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "txn.h"
#include "watch.h"
#include "xenstored.h"

static const char *const op_names[XS_TYPE_COUNT] = {
	[XS_CONTROL] = "CONTROL", [XS_DIRECTORY] = "DIRECTORY", [XS_READ] = "READ",
	[XS_GET_PERMS] = "GET_PERMS", [XS_WATCH] = "WATCH", [XS_UNWATCH] = "UNWATCH",
	[XS_TRANSACTION_START] = "TRANSACTION_START",
	[XS_TRANSACTION_END] = "TRANSACTION_END", [XS_INTRODUCE] = "INTRODUCE",
	[XS_RELEASE] = "RELEASE", [XS_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
	[XS_WRITE] = "WRITE", [XS_MKDIR] = "MKDIR", [XS_RM] = "RM",
	[XS_SET_PERMS] = "SET_PERMS", [XS_WATCH_EVENT] = "WATCH_EVENT",
	[XS_ERROR] = "ERROR", [XS_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
	[XS_RESUME] = "RESUME", [XS_SET_TARGET] = "SET_TARGET",
	[XS_RESET_WATCHES] = "RESET_WATCHES", [XS_DIRECTORY_PART] = "DIRECTORY_PART",
};

static const char *op_name(uint32_t type)
{
	if (type < XS_TYPE_COUNT && op_names[type])
		return op_names[type];
	return "unknown";
}

const char *xsd_errname(int err)
{
	for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	/* As xenstored: what the protocol cannot name becomes EINVAL. */
	return "EINVAL";
}

/* The request being handled: who asks, and against which tree. */
struct req {
	struct conn *c;
	const struct xsd_sockmsg *hdr;
	char *payload;
	uint32_t len;
	struct txn *t;          /* NULL: the committed tree */
	struct store *st;
	struct actor a;
	char path[XENSTORE_ABS_PATH_MAX + 1]; /* canonical path, for ops and logs */
};

static char reply_buf[XENSTORE_PAYLOAD_MAX + 64];

static void reply(struct req *r, const void *data, size_t len)
{
	conn_send(r->c, r->hdr->type, r->hdr->req_id, r->hdr->tx_id, data, len);
}

static void ack(struct req *r)
{
	reply(r, "OK", 3);
}

/* The payload as exactly one NUL-terminated string, or NULL. */
static const char *one_arg(const struct req *r)
{
	if (r->len == 0 || r->payload[r->len - 1] != '\0' ||
	    strlen(r->payload) != r->len - 1)
		return NULL;
	return r->payload;
}

/* Up to max NUL-terminated strings from the start of the payload; returns how many. */
static unsigned int get_strings(const struct req *r, const char **vec, unsigned int max)
{
	unsigned int n = 0;
	uint32_t off = 0;

	while (n < max && off < r->len) {
		const char *s = r->payload + off;
		const char *nul = memchr(s, '\0', r->len - off);

		if (!nul)
			break;
		vec[n++] = s;
		off += (uint32_t)(nul - s) + 1;
	}
	return n;
}

/* Exactly count strings filling the whole payload. */
static bool exact_strings(const struct req *r, const char **vec, unsigned int count)
{
	unsigned int n = get_strings(r, vec, count);

	if (n != count)
		return false;
	return vec[n - 1] + strlen(vec[n - 1]) + 1 == r->payload + r->len;
}

static int canonical(struct req *r, const char *path)
{
	return path_canonical(r->c->domid, path, r->path, false, NULL);
}

static int one_path(struct req *r)
{
	const char *p = one_arg(r);

	return p ? canonical(r, p) : -EINVAL;
}

/* Before mutating a snapshot: make sure the mutation can be logged. */
static int tx_room(struct req *r)
{
	return r->t ? txn_room(r->t) : 0;
}

static int tx_log(struct req *r, enum txn_op_kind kind, const char *data, size_t len,
		  const struct perms *perms)
{
	int e;

	if (!r->t)
		return 0;
	e = txn_log(r->t, kind, r->path, data, len, perms);
	if (e < 0)
		xsd_log("conn %u: tx %u: cannot log %s: %s; commit will miss it", r->c->id,
			r->t->id, r->path, xsd_errname(-e));
	return e;
}

static int do_read(struct req *r)
{
	const char *val;
	size_t len;
	int e = one_path(r);

	if (e == 0)
		e = store_read(r->st, &r->a, r->path, &val, &len);
	if (e == 0)
		reply(r, val, len);
	return e;
}

static int do_write(struct req *r)
{
	const char *nul = memchr(r->payload, '\0', r->len);
	const char *val;
	size_t vlen;
	int e;

	if (!nul)
		return -EINVAL;
	val = nul + 1;
	vlen = r->len - (size_t)(val - r->payload);
	e = canonical(r, r->payload);
	if (e == 0)
		e = tx_room(r);
	if (e == 0)
		e = store_write(r->st, &r->a, r->path, val, vlen);
	if (e == 0)
		e = tx_log(r, TXN_WRITE, val, vlen, NULL);
	if (e == 0)
		ack(r);
	return e;
}

static int do_mkdir(struct req *r)
{
	int e = one_path(r);

	if (e == 0)
		e = tx_room(r);
	if (e == 0)
		e = store_mkdir(r->st, &r->a, r->path);
	if (e == 0)
		e = tx_log(r, TXN_MKDIR, NULL, 0, NULL);
	if (e == 0)
		ack(r);
	return e;
}

static int do_rm(struct req *r)
{
	int e = one_path(r);

	if (e == 0)
		e = tx_room(r);
	if (e == 0)
		e = store_rm(r->st, &r->a, r->path);
	if (e == 0)
		e = tx_log(r, TXN_RM, NULL, 0, NULL);
	if (e == 0)
		ack(r);
	return e;
}

/* Children as "a\0b\0..." into a new buffer. */
static int child_list(const struct node *n, char **out, size_t *outlen)
{
	size_t len = 0, off = 0;
	char *buf;

	for (unsigned int i = 0; i < n->nkids; i++)
		len += strlen(n->kids[i]->name) + 1;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < n->nkids; i++) {
		size_t l = strlen(n->kids[i]->name) + 1;

		memcpy(buf + off, n->kids[i]->name, l);
		off += l;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static int do_directory(struct req *r)
{
	struct node *n;
	char *list;
	size_t len;
	int e = one_path(r);

	if (e == 0)
		e = store_get(r->st, &r->a, r->path, &n);
	if (e == 0)
		e = child_list(n, &list, &len);
	if (e < 0)
		return e;
	/* libxenstore falls back to XS_DIRECTORY_PART on E2BIG. */
	if (len > XENSTORE_PAYLOAD_MAX)
		e = -E2BIG;
	else
		reply(r, list, len);
	free(list);
	return e;
}

/*
 * "path\0offset\0" -> "generation\0" then whole child names from byte offset
 * of the list, and an extra "\0" once the end of the list is included.
 */
static int do_directory_part(struct req *r)
{
	const char *vec[2];
	char *end, *list;
	size_t len, genlen, off, take = 0;
	unsigned long offset;
	struct node *n;
	int e;

	if (!exact_strings(r, vec, 2))
		return -EINVAL;
	errno = 0;
	offset = strtoul(vec[1], &end, 10);
	if (errno || end == vec[1] || *end || vec[1][0] == '-')
		return -EINVAL;
	e = canonical(r, vec[0]);
	if (e == 0)
		e = store_get(r->st, &r->a, r->path, &n);
	if (e == 0)
		e = child_list(n, &list, &len);
	if (e < 0)
		return e;
	genlen = (size_t)snprintf(reply_buf, sizeof(reply_buf), "%" PRIu64, n->gen) + 1;
	off = offset < len ? offset : len;
	while (off + take < len) {
		size_t l = strlen(list + off + take) + 1;

		/* Leave room for the terminating extra "\0". */
		if (genlen + take + l + 1 > XENSTORE_PAYLOAD_MAX)
			break;
		take += l;
	}
	memcpy(reply_buf + genlen, list + off, take);
	if (off + take == len)
		reply_buf[genlen + take++] = '\0';
	free(list);
	reply(r, reply_buf, genlen + take);
	return 0;
}

static int do_get_perms(struct req *r)
{
	const struct perms *pl;
	const char *p = one_arg(r);
	struct node *n;
	int e, s;

	if (!p || path_canonical(r->c->domid, p, r->path, true, NULL) < 0)
		return -EINVAL;
	if (r->path[0] == '@') {
		s = special_index(r->path);
		if (s < 0)
			return -ENOENT;
		pl = &xsd.special_perms[s];
		if (!(perms_for(pl, r->c->domid) & PERM_READ))
			return -EACCES;
	} else {
		e = store_get(r->st, &r->a, r->path, &n);
		if (e < 0)
			return e;
		pl = &n->perms;
	}
	e = perms_format(pl, reply_buf, XENSTORE_PAYLOAD_MAX);
	if (e < 0)
		return e;
	reply(r, reply_buf, (size_t)e);
	return 0;
}

static int do_set_perms(struct req *r)
{
	const char *nul = memchr(r->payload, '\0', r->len);
	const char *list;
	struct perms pl;
	int e, s;

	if (!nul)
		return -EINVAL;
	list = nul + 1;
	if (path_canonical(r->c->domid, r->payload, r->path, true, NULL) < 0)
		return -EINVAL;
	e = perms_parse(list, r->len - (size_t)(list - r->payload), &pl);
	if (e < 0)
		return e;
	if (r->path[0] == '@') {
		s = special_index(r->path);
		if (s < 0)
			e = -ENOENT;
		else if (r->c->domid != 0)
			e = -EACCES;
		else {
			perms_free(&xsd.special_perms[s]);
			xsd.special_perms[s] = pl;
			ack(r);
			return 0;
		}
	} else {
		e = tx_room(r);
		if (e == 0)
			e = store_set_perms(r->st, &r->a, r->path, &pl);
		if (e == 0)
			e = tx_log(r, TXN_SET_PERMS, NULL, 0, &pl);
		if (e == 0)
			ack(r);
	}
	perms_free(&pl);
	return e;
}

static int do_watch(struct req *r)
{
	const char *vec[2];
	int e;

	/* Newer clients may append arguments (a depth); they are ignored. */
	if (get_strings(r, vec, 2) != 2)
		return -EINVAL;
	snprintf(r->path, sizeof(r->path), "%s", vec[0]);
	e = watch_add(r->c, vec[0], vec[1]);
	if (e < 0)
		return e;
	ack(r);
	watch_initial_event(r->c, vec[0], vec[1]);
	return 0;
}

static int do_unwatch(struct req *r)
{
	const char *vec[2];
	int e;

	if (get_strings(r, vec, 2) != 2)
		return -EINVAL;
	snprintf(r->path, sizeof(r->path), "%s", vec[0]);
	e = watch_remove(r->c, vec[0], vec[1]);
	if (e == 0)
		ack(r);
	return e;
}

static int do_transaction_start(struct req *r)
{
	struct txn *t;
	int e, n;

	/* Nested transactions do not exist in xenstore. */
	if (r->hdr->tx_id != 0)
		return -EBUSY;
	if (r->c->ntxns >= XSD_MAX_TXNS)
		return -ENOSPC;
	e = txn_start(r->c, &t);
	if (e < 0)
		return e;
	n = snprintf(reply_buf, sizeof(reply_buf), "%u", t->id);
	reply(r, reply_buf, (size_t)n + 1);
	return 0;
}

static int do_transaction_end(struct req *r)
{
	int e;

	if (r->len != 2 || r->payload[1] != '\0' ||
	    (r->payload[0] != 'T' && r->payload[0] != 'F'))
		return -EINVAL;
	if (!r->t)
		return -ENOENT;
	e = txn_end(r->c, r->t, r->payload[0] == 'T');
	r->t = NULL;
	if (e == 0)
		ack(r);
	return e;
}

/* Strict decimal for mfn/port: xenstored rejects what it cannot parse. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end || *out > max)
		return -EINVAL;
	return 0;
}

static int do_introduce(struct req *r)
{
	const char *vec[3];
	unsigned long mfn, port;
	uint32_t domid;

	if (r->c->domid != 0)
		return -EACCES;
	if (!exact_strings(r, vec, 3) || parse_domid(vec[0], &domid) < 0 ||
	    parse_ulong(vec[1], ~0UL, &mfn) < 0 || parse_ulong(vec[2], UINT32_MAX, &port) < 0)
		return -EINVAL;
	snprintf(r->path, sizeof(r->path), "dom%u", domid);
	int e = domain_introduce(domid, mfn, (unsigned int)port);

	if (e == 0)
		ack(r);
	return e;
}

static int domid_arg(struct req *r, uint32_t *domid)
{
	const char *p = one_arg(r);

	if (!p || parse_domid(p, domid) < 0)
		return -EINVAL;
	snprintf(r->path, sizeof(r->path), "dom%u", *domid);
	return 0;
}

static int do_release(struct req *r)
{
	uint32_t domid;
	int e;

	if (r->c->domid != 0)
		return -EACCES;
	e = domid_arg(r, &domid);
	if (e == 0 && domid == 0)
		e = -EINVAL;
	if (e == 0)
		e = domain_release(domid);
	if (e == 0)
		ack(r);
	return e;
}

static int do_get_domain_path(struct req *r)
{
	uint32_t domid;
	int n, e = domid_arg(r, &domid);

	if (e < 0)
		return e;
	n = snprintf(reply_buf, sizeof(reply_buf), "/local/domain/%u", domid);
	reply(r, reply_buf, (size_t)n + 1);
	return 0;
}

static int do_is_domain_introduced(struct req *r)
{
	uint32_t domid;
	int e;

	if (r->c->domid != 0)
		return -EACCES;
	e = domid_arg(r, &domid);
	if (e == 0)
		reply(r, domain_is_introduced(domid) ? "T" : "F", 2);
	return e;
}

static int do_reset_watches(struct req *r)
{
	/* What a guest kernel sends after kexec: forget its old session. */
	watch_free_all(r->c);
	txn_free_all(r->c);
	r->t = NULL;
	ack(r);
	return 0;
}

static int do_privileged_unsupported(struct req *r)
{
	return r->c->domid != 0 ? -EACCES : -ENOSYS;
}

/* Operations that honour tx_id; the others ignore it, as xenstored. */
static bool uses_tx(uint32_t type)
{
	switch (type) {
	case XS_READ: case XS_WRITE: case XS_MKDIR: case XS_RM: case XS_DIRECTORY:
	case XS_DIRECTORY_PART: case XS_GET_PERMS: case XS_SET_PERMS:
	case XS_TRANSACTION_END:
		return true;
	default:
		return false;
	}
}

static bool worth_logging(int err)
{
	return err == EINVAL || err == EACCES || err == EPERM || err == ENOSPC ||
	       err == E2BIG || err == ENOMEM || err == EIO;
}

void proto_handle(struct conn *c, const struct xsd_sockmsg *hdr, char *payload)
{
	struct req r = {
		.c = c, .hdr = hdr, .payload = payload, .len = hdr->len,
		.st = xsd.store,
		.a = { .domid = c->domid, .enforce_quota = true, .changed = watch_fire },
	};
	int e;

	if (uses_tx(hdr->type) && hdr->tx_id != 0) {
		r.t = txn_find(c, hdr->tx_id);
		if (!r.t) {
			conn_send_error(c, hdr, ENOENT);
			return;
		}
		/* Inside a transaction nothing fires until commit. */
		r.st = r.t->snap;
		r.a.changed = NULL;
	}

	switch (hdr->type) {
	case XS_READ: e = do_read(&r); break;
	case XS_WRITE: e = do_write(&r); break;
	case XS_MKDIR: e = do_mkdir(&r); break;
	case XS_RM: e = do_rm(&r); break;
	case XS_DIRECTORY: e = do_directory(&r); break;
	case XS_DIRECTORY_PART: e = do_directory_part(&r); break;
	case XS_GET_PERMS: e = do_get_perms(&r); break;
	case XS_SET_PERMS: e = do_set_perms(&r); break;
	case XS_WATCH: e = do_watch(&r); break;
	case XS_UNWATCH: e = do_unwatch(&r); break;
	case XS_TRANSACTION_START: e = do_transaction_start(&r); break;
	case XS_TRANSACTION_END: e = do_transaction_end(&r); break;
	case XS_INTRODUCE: e = do_introduce(&r); break;
	case XS_RELEASE: e = do_release(&r); break;
	case XS_GET_DOMAIN_PATH: e = do_get_domain_path(&r); break;
	case XS_IS_DOMAIN_INTRODUCED: e = do_is_domain_introduced(&r); break;
	case XS_RESET_WATCHES: e = do_reset_watches(&r); break;
	case XS_CONTROL:
	case XS_RESUME:
	case XS_SET_TARGET:
		e = do_privileged_unsupported(&r);
		break;
	default:
		xsd_log("conn %u (dom%u): malformed: unknown message type %u (len %u)",
			c->id, c->domid, hdr->type, hdr->len);
		e = -EINVAL;
		conn_send_error(c, hdr, -e);
		return;
	}
	if (e < 0) {
		/* Client bytes go into the log: keep them printable and on one line. */
		for (char *q = r.path; *q; q++)
			if (*q < 0x20 || *q > 0x7e)
				*q = '?';
		if (worth_logging(-e))
			xsd_log("conn %u (dom%u): %s %s%srefused: %s", c->id, c->domid,
				op_name(hdr->type), r.path, r.path[0] ? " " : "",
				xsd_errname(-e));
		conn_send_error(c, hdr, -e);
	}
}
