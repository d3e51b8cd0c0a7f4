/* SPDX-License-Identifier: MIT */
/* Watches: registration, quota, matching and permission-checked delivery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "watch.h"
#include "xenstored.h"

int watch_add(struct conn *c, const char *path, const char *token)
{
	char node[XENSTORE_ABS_PATH_MAX + 1];
	unsigned int cap = c->domid ? XSD_MAX_WATCHES_DOMU : XSD_MAX_WATCHES_DOM0;
	struct watch *w;
	bool relative;
	int r;

	r = path_canonical(c->domid, path, node, true, &relative);
	if (r < 0)
		return r;
	/* The first event must fit in one message (later ones are checked again). */
	if (strlen(path) + strlen(token) + 2 > XENSTORE_PAYLOAD_MAX)
		return -EINVAL;
	for (w = c->watches; w; w = w->next)
		if (strcmp(w->node, node) == 0 && strcmp(w->token, token) == 0)
			return -EEXIST;
	if (c->nwatches >= cap)
		return -E2BIG;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->node = strdup(node);
	w->token = strdup(token);
	if (!w->node || !w->token) {
		free(w->node);
		free(w->token);
		free(w);
		return -ENOMEM;
	}
	w->relative = relative;
	w->next = c->watches;
	c->watches = w;
	c->nwatches++;
	return 0;
}

void watch_initial_event(struct conn *c, const char *path, const char *token)
{
	/* xenstored fires once up front, unconditionally: clients rely on it. */
	conn_send_event(c, path, token);
}

int watch_remove(struct conn *c, const char *path, const char *token)
{
	char node[XENSTORE_ABS_PATH_MAX + 1];
	int r = path_canonical(c->domid, path, node, true, NULL);

	if (r < 0)
		return r;
	for (struct watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
		struct watch *w = *pp;

		if (strcmp(w->node, node) == 0 && strcmp(w->token, token) == 0) {
			*pp = w->next;
			c->nwatches--;
			free(w->node);
			free(w->token);
			free(w);
			return 0;
		}
	}
	return -ENOENT;
}

void watch_free_all(struct conn *c)
{
	while (c->watches) {
		struct watch *w = c->watches;

		c->watches = w->next;
		free(w->node);
		free(w->token);
		free(w);
	}
	c->nwatches = 0;
}

/*
 * May c learn that path changed? As xenstored: if it can read the node (now
 * or, for a permission change, before), or failing that its parent, which
 * covers watchers of nodes that were just removed.
 */
static bool permitted(const struct conn *c, const char *path, const struct perms *perms,
		      const struct perms *old_perms)
{
	char parent[XENSTORE_ABS_PATH_MAX + 1];
	const char *slash;
	struct node *p;

	if (perms_for(perms, c->domid) & PERM_READ)
		return true;
	if (old_perms && (perms_for(old_perms, c->domid) & PERM_READ))
		return true;
	slash = strrchr(path, '/');
	if (!slash || slash == path)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	p = store_peek(xsd.store, parent);
	return p && (perms_for(&p->perms, c->domid) & PERM_READ);
}

static void deliver(struct conn *c, const struct watch *w, const char *path)
{
	if (w->relative) {
		char home[32];
		size_t hlen = (size_t)snprintf(home, sizeof(home), "/local/domain/%u", c->domid);

		/* A relative watch only ever matches paths below home. */
		if (strncmp(path, home, hlen) == 0 && path[hlen] == '/')
			path += hlen + 1;
	}
	if (strlen(path) + strlen(w->token) + 2 > XENSTORE_PAYLOAD_MAX) {
		xsd_log("conn %u: watch event for %s too large, not sent", c->id, path);
		return;
	}
	conn_send_event(c, path, w->token);
}

void watch_fire(const char *path, const struct perms *perms,
		const struct perms *old_perms, bool exact)
{
	for (struct conn *c = xsd.conns; c; c = c->next) {
		int allowed = -1; /* unknown until a watch matches: it costs a lookup */

		if (c->dead)
			continue;
		for (struct watch *w = c->watches; w; w = w->next) {
			bool match = exact ? strcmp(path, w->node) == 0
					   : path_is_child(path, w->node);
			if (!match)
				continue;
			if (allowed < 0)
				allowed = permitted(c, path, perms, old_perms);
			if (allowed)
				deliver(c, w, path);
		}
	}
}

void watch_fire_special(int special)
{
	const char *name = xsd_special_names[special];

	for (struct conn *c = xsd.conns; c; c = c->next) {
		if (c->dead || !(perms_for(&xsd.special_perms[special], c->domid) & PERM_READ))
			continue;
		for (struct watch *w = c->watches; w; w = w->next)
			if (strcmp(w->node, name) == 0)
				deliver(c, w, name);
	}
}
