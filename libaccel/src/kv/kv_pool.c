// SPDX-License-Identifier: MIT
/*
 * libaccel - the block pool of a KV-cache tier (kv_pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_pool.h"

static bool is_free(const struct kv_pool *p, uint32_t b)
{
	return p->free_bits[b / 64] & (1ULL << (b % 64));
}

static void set_free(struct kv_pool *p, uint32_t b, bool free)
{
	if (free)
		p->free_bits[b / 64] |= 1ULL << (b % 64);
	else
		p->free_bits[b / 64] &= ~(1ULL << (b % 64));
}

int kv_pool_init(struct kv_pool *p, uint32_t nr_blocks)
{
	uint32_t size = 2, b;

	memset(p, 0, sizeof(*p));
	if (!nr_blocks || nr_blocks >= KV_NO_BLOCK / 4)
		return -EINVAL;
	while (size < 2 * nr_blocks)
		size *= 2;
	p->nr_blocks = nr_blocks;
	p->refs = calloc(nr_blocks, sizeof(*p->refs));
	p->free_bits = calloc((nr_blocks + 63) / 64, sizeof(*p->free_bits));
	p->hash = calloc(nr_blocks, sizeof(*p->hash));
	p->lru_prev = calloc(nr_blocks, sizeof(*p->lru_prev));
	p->lru_next = calloc(nr_blocks, sizeof(*p->lru_next));
	p->table = malloc(size * sizeof(*p->table));
	if (!p->refs || !p->free_bits || !p->hash || !p->lru_prev || !p->lru_next || !p->table) {
		kv_pool_fini(p);
		return -ENOMEM;
	}
	p->table_mask = size - 1;
	memset(p->table, 0xff, size * sizeof(*p->table));
	for (b = 0; b < nr_blocks; b++)
		set_free(p, b, true);
	p->nr_free = nr_blocks;
	p->lru_head = p->lru_tail = KV_NO_BLOCK;
	return 0;
}

void kv_pool_fini(struct kv_pool *p)
{
	free(p->refs);
	free(p->free_bits);
	free(p->hash);
	free(p->lru_prev);
	free(p->lru_next);
	free(p->table);
	memset(p, 0, sizeof(*p));
}

/* ---- the hash table: linear probing, deletion by backward shift ---- */

static uint32_t slot_of(const struct kv_pool *p, uint64_t hash)
{
	return (uint32_t)(hash ^ (hash >> 32)) & p->table_mask;
}

uint32_t kv_pool_lookup(const struct kv_pool *p, uint64_t hash)
{
	uint32_t i;

	if (!hash)
		return KV_NO_BLOCK;
	for (i = slot_of(p, hash); p->table[i] != KV_NO_BLOCK; i = (i + 1) & p->table_mask)
		if (p->hash[p->table[i]] == hash)
			return p->table[i];
	return KV_NO_BLOCK;
}

static void table_remove(struct kv_pool *p, uint32_t b)
{
	uint32_t i = slot_of(p, p->hash[b]), j, k;

	while (p->table[i] != b)
		i = (i + 1) & p->table_mask;
	/* Shift later members of the cluster back over the hole. */
	for (j = i;;) {
		j = (j + 1) & p->table_mask;
		if (p->table[j] == KV_NO_BLOCK)
			break;
		k = slot_of(p, p->hash[p->table[j]]);
		/* Move table[j] to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		p->table[i] = p->table[j];
		i = j;
	}
	p->table[i] = KV_NO_BLOCK;
}

uint32_t kv_pool_publish(struct kv_pool *p, uint32_t b, uint64_t hash)
{
	uint32_t other = kv_pool_lookup(p, hash), i;

	if (other != KV_NO_BLOCK)
		return other;
	p->hash[b] = hash;
	for (i = slot_of(p, hash); p->table[i] != KV_NO_BLOCK; i = (i + 1) & p->table_mask)
		;
	p->table[i] = b;
	return b;
}

/* ---- LRU of cached blocks ---- */

static void lru_remove(struct kv_pool *p, uint32_t b)
{
	uint32_t prev = p->lru_prev[b], next = p->lru_next[b];

	if (prev != KV_NO_BLOCK)
		p->lru_next[prev] = next;
	else
		p->lru_head = next;
	if (next != KV_NO_BLOCK)
		p->lru_prev[next] = prev;
	else
		p->lru_tail = prev;
	p->nr_cached--;
}

static void lru_add_tail(struct kv_pool *p, uint32_t b)
{
	p->lru_prev[b] = p->lru_tail;
	p->lru_next[b] = KV_NO_BLOCK;
	if (p->lru_tail != KV_NO_BLOCK)
		p->lru_next[p->lru_tail] = b;
	else
		p->lru_head = b;
	p->lru_tail = b;
	p->nr_cached++;
}

void kv_pool_unpublish(struct kv_pool *p, uint32_t b)
{
	if (!p->hash[b])
		return;
	table_remove(p, b);
	p->hash[b] = 0;
	if (!p->refs[b]) {
		lru_remove(p, b);
		set_free(p, b, true);
		p->nr_free++;
	}
}

static void evict_one(struct kv_pool *p)
{
	uint32_t b = p->lru_head;

	kv_pool_unpublish(p, b);
	p->evictions++;
}

/* ---- references and allocation ---- */

uint32_t kv_pool_refs(const struct kv_pool *p, uint32_t b)
{
	return p->refs[b];
}

void kv_pool_get(struct kv_pool *p, uint32_t b)
{
	if (!p->refs[b]++ && p->hash[b])
		lru_remove(p, b);
}

void kv_pool_put(struct kv_pool *p, uint32_t b)
{
	if (--p->refs[b])
		return;
	if (p->hash[b]) {
		lru_add_tail(p, b);
	} else {
		set_free(p, b, true);
		p->nr_free++;
	}
}

static void take(struct kv_pool *p, uint32_t b)
{
	set_free(p, b, false);
	p->refs[b] = 1;
	p->nr_free--;
}

/* The first run of @n free blocks, or KV_NO_BLOCK. */
static uint32_t find_run(const struct kv_pool *p, uint32_t n)
{
	uint32_t b, run = 0;

	for (b = 0; b < p->nr_blocks; b++) {
		if (!(b % 64) && !p->free_bits[b / 64] && b + 64 <= p->nr_blocks) {
			run = 0;
			b += 63;
			continue;
		}
		run = is_free(p, b) ? run + 1 : 0;
		if (run == n)
			return b + 1 - n;
	}
	return KV_NO_BLOCK;
}

int kv_pool_alloc(struct kv_pool *p, uint32_t n, uint32_t *out)
{
	uint32_t b, got = 0, start;

	if (!n)
		return 0;
	if ((uint64_t)n > (uint64_t)p->nr_free + p->nr_cached)
		return -ENOSPC;
	while (p->nr_free < n)
		evict_one(p);
	start = n > 1 ? find_run(p, n) : KV_NO_BLOCK;
	if (start != KV_NO_BLOCK) {
		for (b = 0; b < n; b++) {
			take(p, start + b);
			out[b] = start + b;
		}
		return 0;
	}
	for (b = 0; got < n; b++) {
		if (!is_free(p, b))
			continue;
		take(p, b);
		out[got++] = b;
	}
	return 0;
}

uint64_t kv_hash_block(uint64_t parent, const int32_t *tokens, uint32_t n)
{
	/* FNV-1a over the parent hash and the tokens, never 0. */
	uint64_t h = 0xcbf29ce484222325ULL;
	uint32_t i, k;

	for (k = 0; k < 8; k++)
		h = (h ^ ((parent >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
	for (i = 0; i < n; i++)
		for (k = 0; k < 4; k++)
			h = (h ^ (((uint32_t)tokens[i] >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
	return h ? h : 1;
}
