/* SPDX-License-Identifier: MIT */
/* vhdtool internals. */
#ifndef VHDTOOL_H
#define VHDTOOL_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int parse_size(const char *s, uint64_t *out);
void json_str(FILE *f, const char *s);
void progress_enable(bool json);
void progress(const char *what, uint64_t done, uint64_t total);
bool all_zero(const void *buf, size_t len);
#endif
