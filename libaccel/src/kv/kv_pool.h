/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the block pool of one KV-cache tier: fixed-size blocks with
 * reference counts, a prefix cache (block key -> block) and LRU eviction
 * of cached blocks no sequence references.
 *
 * A block is in exactly one state:
 *   free      refs 0, no key: in the free index (kv_free.h)
 *   used      refs > 0 (key or not)
 *   cached    refs 0 with a key: on the LRU list, reusable by a lookup,
 *             evicted (oldest first) when an allocation finds too few free
 * Keys are SHA-256 digests (kv_key.h) compared in full.
 *
 * With ARC (kv_pool_use_arc()) cached blocks are on one of two lists: T1
 * (the LRU list above: blocks used by one run of accesses) and T2 (blocks
 * hit again, kv_pool_hit(), or published again soon after their eviction,
 * kv_arc.h); eviction takes T1's oldest while |T1| exceeds the adaptive
 * target p, else T2's, and remembers the key in a ghost list.
 * Not thread-safe: the KV manager serialises calls.
 */
#ifndef ACCEL_KV_POOL_H
#define ACCEL_KV_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "kv_arc.h"
#include "kv_free.h"
#include "kv_key.h"

#define KV_NO_BLOCK	UINT32_MAX

struct kv_pool {
	uint32_t nr_blocks;
	uint32_t nr_free;
	uint32_t nr_cached;
	uint32_t *refs;
	struct kv_free free;
	struct kv_key *key;	/* all zero: none */
	uint32_t *lru_prev, *lru_next;
	uint32_t lru_head, lru_tail;	/* head: least recently used (ARC: T1) */
	uint32_t t2_head, t2_tail, nr_t2;	/* ARC: T2 (nr_cached counts both) */
	uint8_t *freq;		/* ARC: per block, 1 if it belongs in T2 */
	struct kv_arc *arc;	/* NULL: LRU */
	/*
	 * Open addressing, linear probing: (the key's 32-bit hash << 32) |
	 * block id, its low bits the home slot: a probe rarely reads a key
	 * that is not the one, a removal shifts entries back without reading
	 * theirs; empty slots are all ones.
	 */
	uint64_t *table;
	uint32_t table_mask;
	uint64_t evictions;
};

int kv_pool_init(struct kv_pool *p, uint32_t nr_blocks);
/* Evict by ARC instead of LRU (an empty pool): @ghosts as kv_arc_init(). */
int kv_pool_use_arc(struct kv_pool *p, uint32_t ghosts);
void kv_pool_fini(struct kv_pool *p);

/*
 * Allocate @n blocks (refs 1) into @out, all or nothing: the lowest
 * contiguous run if one exists, else the lowest free blocks; evicts cached
 * blocks (least recently used first) when too few are free. -ENOSPC if
 * even that is not enough.
 */
int kv_pool_alloc(struct kv_pool *p, uint32_t n, uint32_t *out);
/*
 * Evict one cached block as an allocation short of free blocks would (LRU:
 * the oldest; ARC: REPLACE), its key into @key (may be NULL): 0, or -ENOENT
 * when no block is cached.
 */
int kv_pool_evict(struct kv_pool *p, struct kv_key *key);
/* Take a reference (a cached block leaves the LRU list). */
void kv_pool_get(struct kv_pool *p, uint32_t b);
/*
 * @b (keyed) was found again by a prefix lookup: ARC keeps it in T2 from
 * now on (nothing under LRU, where the release order is the recency).
 */
static inline void kv_pool_hit(struct kv_pool *p, uint32_t b)
{
	if (p->freq)
		p->freq[b] = 1;
}
/* |T1| (all cached blocks under LRU). */
static inline uint32_t kv_pool_nr_t1(const struct kv_pool *p)
{
	return p->nr_cached - p->nr_t2;
}
/* Drop one: at 0 a block with a key becomes cached, else free. */
void kv_pool_put(struct kv_pool *p, uint32_t b);
/* kv_pool_put() of each of @v[0..n) (blocks freed together cost less). */
void kv_pool_put_many(struct kv_pool *p, const uint32_t *v, uint32_t n);
uint32_t kv_pool_refs(const struct kv_pool *p, uint32_t b);
bool kv_pool_is_free(const struct kv_pool *p, uint32_t b);

/* Start loading the table slot of @key (a batch of lookups to come). */
void kv_pool_prefetch(const struct kv_pool *p, const struct kv_key *key);
/* The block cached or used under @key, or KV_NO_BLOCK. */
uint32_t kv_pool_lookup(const struct kv_pool *p, const struct kv_key *key);
/*
 * Give used block @b (no key yet) the key @key (non-zero). If another
 * block already has it, @b is left alone and that block returned (the
 * caller may share it instead); else @b.
 */
uint32_t kv_pool_publish(struct kv_pool *p, uint32_t b, const struct kv_key *key);
/* Forget @b's key (its content is about to change). */
void kv_pool_unpublish(struct kv_pool *p, uint32_t b);
static inline bool kv_pool_keyed(const struct kv_pool *p, uint32_t b)
{
	return !kv_key_is_zero(&p->key[b]);
}

#endif
