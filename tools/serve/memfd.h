/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - sealed memfds, the messages engines hand each other
 * through kvacceld (ACCEL_HANDOFF_MEMFD): what is sealed cannot change or
 * shrink under the reader.
 */
#ifndef SERVE_MEMFD_H
#define SERVE_MEMFD_H

#include <stddef.h>

/**
 * A memfd holding @a, then @b, then @c (each may be empty), sealed against
 * shrinking, growing and writing: its fd, or -errno.
 */
int serve_memfd_sealed(const void *a, size_t la, const void *b, size_t lb, const void *c,
		       size_t lc);
/**
 * A copy of sealed memfd @fd's bytes (at least @min, at most
 * ACCEL_HANDOFF_MEMFD_MAX) into *@buf (malloc'd), its length in *@len.
 * 0; -EPROTO (not sealed so, a size out of range), -ENOMEM.
 */
int serve_memfd_read(int fd, size_t min, void **buf, size_t *len);

#endif /* SERVE_MEMFD_H */
