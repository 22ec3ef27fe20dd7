/* SPDX-License-Identifier: MIT */
/*
 * kvsize - sizes as people write them: bytes with an optional binary
 * suffix K, M, G, T, P (KiB and KB read the same). Shared by kvaccelctl and
 * kvacceld.
 */
#ifndef KVSIZE_H
#define KVSIZE_H

#include <stdint.h>

/* 0, -EINVAL (not a size) or -ERANGE (over 2^64 - 1). */
int kvsize_parse(const char *s, uint64_t *out);

#endif
