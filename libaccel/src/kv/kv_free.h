/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the free-block index of a block pool: a bitmap (bit set: the
 * block is free) under a segment tree that keeps, for every node, the
 * longest free run it holds and the free runs touching its two ends. Finding
 * the lowest run of n free blocks, taking and freeing blocks all cost
 * O(log(blocks / 64)) whatever the fragmentation; a run that crosses words
 * or subtrees is found like any other.
 *
 * Leaves are the bitmap's 64-bit words; node i has children 2i and 2i + 1
 * (the root is 1), leaves start at index @leaves (a power of two). Padding
 * beyond the last block counts as used. Not thread-safe.
 */
#ifndef ACCEL_KV_FREE_H
#define ACCEL_KV_FREE_H

#include <stdbool.h>
#include <stdint.h>

struct kv_free {
	uint32_t nr_blocks;
	uint32_t nr_words;
	uint32_t leaves;	/* power of two >= nr_words */
	uint64_t *bits;		/* nr_words words */
	struct kv_free_node *node;	/* 2 * leaves */
};

/* Free runs of a subtree: from its low end, to its high end, longest. */
struct kv_free_node {
	uint32_t pre, suf, max;
};

/* All @nr_blocks free: 0, -EINVAL (0 or too many), -ENOMEM. */
int kv_free_init(struct kv_free *f, uint32_t nr_blocks);
void kv_free_fini(struct kv_free *f);

static inline bool kv_free_test(const struct kv_free *f, uint32_t b)
{
	return f->bits[b / 64] & (1ULL << (b % 64));
}

/* How many blocks the longest free run holds. */
static inline uint32_t kv_free_longest(const struct kv_free *f)
{
	return f->node[1].max;
}

/* Mark blocks [b, b + n) free or used (each must be in the other state). */
void kv_free_mark(struct kv_free *f, uint32_t b, uint32_t n, bool free);
/* Mark the @n blocks @v[] free (any order; one tree update per word). */
void kv_free_release(struct kv_free *f, const uint32_t *v, uint32_t n);
/* The lowest block starting a run of @n free blocks, or UINT32_MAX. */
uint32_t kv_free_find_run(const struct kv_free *f, uint32_t n);
/*
 * Take the @n lowest free blocks (there must be that many) into @out,
 * lowest first, and mark them used.
 */
void kv_free_take_lowest(struct kv_free *f, uint32_t n, uint32_t *out);

#endif
