/* SPDX-License-Identifier: MIT */
/* pvblk's commands that live in files of their own. */
#ifndef PVIO_PVBLK_H
#define PVIO_PVBLK_H

#include "pvio/blkfront.h"

/* `pvblk journal` (journal.c): a reported write workload for crash tests.
 * @vdev and @cfg as pvblk's global options give them.  Exit status. */
int pvblk_cmd_journal(int argc, char **argv, const char *vdev, const struct pvio_blkfront_config *cfg);

#endif
