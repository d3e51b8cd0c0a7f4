/* SPDX-License-Identifier: MIT */
/* pvblk's commands that live in files of their own. */
#ifndef PVIO_PVBLK_H
#define PVIO_PVBLK_H

#include <stdint.h>

#include "pvio/blkfront.h"

/* A size or number as pvblk's options take them: digits, then an optional
 * k, m or g (powers of 1024).  0, or -1 for anything else. */
int pvblk_parse_size(const char *s, uint64_t *out);

/* `pvblk journal` (journal.c): a reported write workload for crash tests.
 * @vdev and @cfg as pvblk's global options give them.  Exit status. */
int pvblk_cmd_journal(int argc, char **argv, const char *vdev, const struct pvio_blkfront_config *cfg);

#endif
