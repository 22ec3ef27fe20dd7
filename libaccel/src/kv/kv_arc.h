/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the ghost lists of ARC (Megiddo and Modha, "ARC: A
 * Self-Tuning, Low Overhead Replacement Cache", FAST '03) over a block
 * pool's cached blocks: B1 holds the keys of blocks evicted from T1 (seen
 * once), B2 those evicted from T2 (seen again), most recent at the tail,
 * and p is the adaptive target size of T1. T1 and T2 themselves are the
 * pool's two lists of cached blocks (kv_pool.h). A ghost hit (a key
 * published again after its block was evicted) moves p towards the list
 * the key was evicted from. Not thread-safe.
 *
 * Bounds kept after every change (c is the pool's block count):
 *   |T1| + |B1| <= c, |B1| + |B2| <= cap <= c (so the directory
 *   |T1| + |T2| + |B1| + |B2| <= 2c), 0 <= p <= c.
 */
#ifndef ACCEL_KV_ARC_H
#define ACCEL_KV_ARC_H

#include <stdint.h>

#include "kv_key.h"

enum kv_ghost { KV_GHOST_NONE = 0, KV_GHOST_B1 = 1, KV_GHOST_B2 = 2 };

struct kv_arc {
	uint32_t c;		/* the pool's blocks */
	uint32_t p;		/* target size of T1 */
	uint32_t cap;		/* ghost entries, B1 and B2 together */
	struct kv_key *key;	/* per ghost slot */
	uint32_t *prev, *next;	/* list links; a free slot chains on next */
	uint8_t *list;		/* enum kv_ghost */
	uint32_t head[3], tail[3], nr[3];	/* indexed by enum kv_ghost (0 unused) */
	uint32_t free_slot;
	uint32_t *table;	/* open addressing: ghost slots */
	uint32_t table_mask;
	uint64_t ghost_hits[3];
};

/* @c: the pool's blocks; @cap: ghost entries (0: c; at most c). */
int kv_arc_init(struct kv_arc *a, uint32_t c, uint32_t cap);
void kv_arc_fini(struct kv_arc *a);

/* Which ghost list holds @key (no change). */
enum kv_ghost kv_arc_find(const struct kv_arc *a, const struct kv_key *key);
/*
 * @key (not in the pool) is being published again: if it is a ghost, adapt
 * p, forget the ghost and return its list (the block then belongs in T2);
 * KV_GHOST_NONE otherwise.
 */
enum kv_ghost kv_arc_hit(struct kv_arc *a, const struct kv_key *key);
/* Remember @key, evicted from T1 (KV_GHOST_B1) or T2 (KV_GHOST_B2); @t1: |T1| after. */
void kv_arc_evicted(struct kv_arc *a, enum kv_ghost list, const struct kv_key *key,
		    uint32_t t1);
/* Drop B1's oldest ghosts until |T1| + |B1| <= c. */
void kv_arc_trim(struct kv_arc *a, uint32_t t1);

#endif
