/* SPDX-License-Identifier: MIT */
/* Watches: registration per connection and event delivery on changes. */
#ifndef XSD_WATCH_H
#define XSD_WATCH_H

#include <stdbool.h>

#include "perms.h"

struct conn;

struct watch {
	struct watch *next;
	char *node;      /* absolute path or "@special" */
	char *token;
	bool relative;   /* events report paths relative to the domain's home */
};

/*
 * Add a watch (raw client path, token). Returns 0 (caller sends the ack and
 * then watch_initial_event), -EEXIST for a duplicate, -E2BIG over quota,
 * -EINVAL for a bad path.
 */
int watch_add(struct conn *c, const char *path, const char *token);
void watch_initial_event(struct conn *c, const char *path, const char *token);
int watch_remove(struct conn *c, const char *path, const char *token);
void watch_free_all(struct conn *c);
/* store_change_fn: a node changed; tell every watcher who may know. */
void watch_fire(const char *path, const struct perms *perms,
		const struct perms *old_perms, bool exact);
void watch_fire_special(int special);

#endif
