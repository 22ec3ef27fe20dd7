/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the block pool of one KV-cache tier: fixed-size blocks with
 * reference counts, a prefix cache (content hash -> block) and LRU
 * eviction of cached blocks no sequence references.
 *
 * A block is in exactly one state:
 *   free      refs 0, no hash: in the free bitmap
 *   used      refs > 0 (hash or not)
 *   cached    refs 0 with a hash: on the LRU list, reusable by a lookup,
 *             evicted (oldest first) when an allocation finds too few free
 * Not thread-safe: the KV manager serialises calls.
 */
#ifndef ACCEL_KV_POOL_H
#define ACCEL_KV_POOL_H

#include <stdbool.h>
#include <stdint.h>

#define KV_NO_BLOCK	UINT32_MAX

struct kv_pool {
	uint32_t nr_blocks;
	uint32_t nr_free;
	uint32_t nr_cached;
	uint32_t *refs;
	uint64_t *free_bits;	/* bit set: free */
	uint64_t *hash;		/* 0: none */
	uint32_t *lru_prev, *lru_next;
	uint32_t lru_head, lru_tail;	/* head: least recently used */
	uint32_t *table;	/* open addressing, linear probing: block ids */
	uint32_t table_mask;
	uint64_t evictions;
};

int kv_pool_init(struct kv_pool *p, uint32_t nr_blocks);
void kv_pool_fini(struct kv_pool *p);

/*
 * Allocate @n blocks (refs 1) into @out, all or nothing: a contiguous run
 * if one exists, else the lowest free blocks; evicts cached blocks (least
 * recently used first) when too few are free. -ENOSPC if even that is not
 * enough.
 */
int kv_pool_alloc(struct kv_pool *p, uint32_t n, uint32_t *out);
/* Take a reference (a cached block leaves the LRU list). */
void kv_pool_get(struct kv_pool *p, uint32_t b);
/* Drop one: at 0 a block with a hash becomes cached, else free. */
void kv_pool_put(struct kv_pool *p, uint32_t b);
uint32_t kv_pool_refs(const struct kv_pool *p, uint32_t b);

/* The block cached or used with content @hash, or KV_NO_BLOCK. */
uint32_t kv_pool_lookup(const struct kv_pool *p, uint64_t hash);
/*
 * Give used block @b (no hash yet) the content hash @hash (non-zero). If
 * another block already has it, @b is left alone and that block returned
 * (the caller may share it instead); else @b.
 */
uint32_t kv_pool_publish(struct kv_pool *p, uint32_t b, uint64_t hash);
/* Forget @b's hash (its content is about to change). */
void kv_pool_unpublish(struct kv_pool *p, uint32_t b);

/* The content hash of a full block: its tokens chained on its parent's hash. */
uint64_t kv_hash_block(uint64_t parent, const int32_t *tokens, uint32_t n);

#endif
