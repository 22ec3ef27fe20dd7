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
 * A memfd of @len bytes (not 0) mapped writable at *@map, for a message
 * written in place: its fd, or -errno. serve_memfd_seal() then.
 */
int serve_memfd_map(size_t len, void **map);
/**
 * Unmap @map (@len bytes of @fd, serve_memfd_map()'s) and seal @fd as
 * serve_memfd_sealed() does: @fd, or -errno (@fd closed).
 */
int serve_memfd_seal(int fd, void *map, size_t len);
/**
 * A copy of sealed memfd @fd's bytes (at least @min, at most
 * ACCEL_HANDOFF_MEMFD_MAX) into *@buf (malloc'd), its length in *@len.
 * 0; -EPROTO (not sealed so, a size out of range), -ENOMEM.
 */
int serve_memfd_read(int fd, size_t min, void **buf, size_t *len);

#endif /* SERVE_MEMFD_H */
