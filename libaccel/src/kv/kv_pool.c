// SPDX-License-Identifier: MIT
/*
 * libaccel - the block pool of a KV-cache tier (kv_pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_pool.h"

int kv_pool_init(struct kv_pool *p, uint32_t nr_blocks)
{
	uint32_t size = 2;
	int ret;

	memset(p, 0, sizeof(*p));
	if (!nr_blocks || nr_blocks >= KV_NO_BLOCK / 4)
		return -EINVAL;
	while (size < 2 * nr_blocks)
		size *= 2;
	ret = kv_free_init(&p->free, nr_blocks);
	if (ret)
		return ret;
	p->nr_blocks = nr_blocks;
	p->refs = calloc(nr_blocks, sizeof(*p->refs));
	p->key = calloc(nr_blocks, sizeof(*p->key));
	p->lru_prev = calloc(nr_blocks, sizeof(*p->lru_prev));
	p->lru_next = calloc(nr_blocks, sizeof(*p->lru_next));
	p->table = malloc(size * sizeof(*p->table));
	if (!p->refs || !p->key || !p->lru_prev || !p->lru_next || !p->table) {
		kv_pool_fini(p);
		return -ENOMEM;
	}
	p->table_mask = size - 1;
	memset(p->table, 0xff, size * sizeof(*p->table));
	p->nr_free = nr_blocks;
	p->lru_head = p->lru_tail = KV_NO_BLOCK;
	p->t2_head = p->t2_tail = KV_NO_BLOCK;
	return 0;
}

int kv_pool_use_arc(struct kv_pool *p, uint32_t ghosts)
{
	int ret;

	if (p->arc || p->nr_free != p->nr_blocks)
		return -EINVAL;
	p->arc = calloc(1, sizeof(*p->arc));
	p->freq = calloc(p->nr_blocks, sizeof(*p->freq));
	if (!p->arc || !p->freq) {
		free(p->arc);
		free(p->freq);
		p->arc = NULL;
		p->freq = NULL;
		return -ENOMEM;
	}
	ret = kv_arc_init(p->arc, p->nr_blocks, ghosts);
	if (ret) {
		free(p->arc);
		free(p->freq);
		p->arc = NULL;
		p->freq = NULL;
	}
	return ret;
}

void kv_pool_fini(struct kv_pool *p)
{
	kv_free_fini(&p->free);
	free(p->refs);
	free(p->key);
	free(p->lru_prev);
	free(p->lru_next);
	free(p->table);
	if (p->arc)
		kv_arc_fini(p->arc);
	free(p->arc);
	free(p->freq);
	memset(p, 0, sizeof(*p));
}

bool kv_pool_is_free(const struct kv_pool *p, uint32_t b)
{
	return kv_free_test(&p->free, b);
}

/* ---- the key table: linear probing, deletion by backward shift ---- */

#define EMPTY	UINT64_MAX

/* A key's 32-bit hash: its home slot is the low bits. */
static uint32_t hash_of(const struct kv_key *key)
{
	uint64_t h = kv_key_bits(key);

	return (uint32_t)(h ^ (h >> 32));
}

static uint32_t slot_of(const struct kv_pool *p, const struct kv_key *key)
{
	return hash_of(key) & p->table_mask;
}

/*
 * An entry: the key's hash over the block. The hash filters the keys
 * compared in a lookup, and gives an entry's home slot without reading
 * its key (a cache miss in a table of many blocks) when a removal shifts
 * the entries after it back.
 */
static uint64_t tag_of(const struct kv_key *key)
{
	return (uint64_t)hash_of(key) << 32;
}

static uint32_t entry_block(uint64_t e)
{
	return (uint32_t)e;
}

static uint32_t entry_home(const struct kv_pool *p, uint64_t e)
{
	return (uint32_t)(e >> 32) & p->table_mask;
}

uint32_t kv_pool_lookup(const struct kv_pool *p, const struct kv_key *key)
{
	uint64_t tag = tag_of(key);
	uint32_t i;

	if (kv_key_is_zero(key))
		return KV_NO_BLOCK;
	for (i = slot_of(p, key); p->table[i] != EMPTY; i = (i + 1) & p->table_mask)
		if ((p->table[i] & ~0xffffffffULL) == tag &&
		    kv_key_eq(&p->key[entry_block(p->table[i])], key))
			return entry_block(p->table[i]);
	return KV_NO_BLOCK;
}

void kv_pool_prefetch(const struct kv_pool *p, const struct kv_key *key)
{
	__builtin_prefetch(&p->table[slot_of(p, key)]);
}

static void table_remove(struct kv_pool *p, uint32_t b)
{
	uint32_t i = slot_of(p, &p->key[b]), j, k;

	while (p->table[i] == EMPTY || entry_block(p->table[i]) != b)
		i = (i + 1) & p->table_mask;
	/* Shift later members of the cluster back over the hole. */
	for (j = i;;) {
		j = (j + 1) & p->table_mask;
		if (p->table[j] == EMPTY)
			break;
		k = entry_home(p, p->table[j]);
		/* Move table[j] to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		p->table[i] = p->table[j];
		i = j;
	}
	p->table[i] = EMPTY;
}

uint32_t kv_pool_publish(struct kv_pool *p, uint32_t b, const struct kv_key *key)
{
	uint32_t other = kv_pool_lookup(p, key), i;

	if (other != KV_NO_BLOCK || kv_key_is_zero(key))
		return other;
	p->key[b] = *key;
	if (p->arc)
		p->freq[b] = kv_arc_hit(p->arc, key) != KV_GHOST_NONE;
	for (i = slot_of(p, key); p->table[i] != EMPTY; i = (i + 1) & p->table_mask)
		;
	p->table[i] = tag_of(key) | b;
	return b;
}

/* ---- the lists of cached blocks: LRU (ARC: T1) and ARC's T2 ---- */

static bool on_t2(const struct kv_pool *p, uint32_t b)
{
	return p->freq && p->freq[b];
}

static void lru_remove(struct kv_pool *p, uint32_t b)
{
	uint32_t prev = p->lru_prev[b], next = p->lru_next[b];
	bool t2 = on_t2(p, b);
	uint32_t *head = t2 ? &p->t2_head : &p->lru_head;
	uint32_t *tail = t2 ? &p->t2_tail : &p->lru_tail;

	if (prev != KV_NO_BLOCK)
		p->lru_next[prev] = next;
	else
		*head = next;
	if (next != KV_NO_BLOCK)
		p->lru_prev[next] = prev;
	else
		*tail = prev;
	p->nr_cached--;
	p->nr_t2 -= t2;
}

static void lru_add_tail(struct kv_pool *p, uint32_t b)
{
	bool t2 = on_t2(p, b);
	uint32_t *head = t2 ? &p->t2_head : &p->lru_head;
	uint32_t *tail = t2 ? &p->t2_tail : &p->lru_tail;

	p->lru_prev[b] = *tail;
	p->lru_next[b] = KV_NO_BLOCK;
	if (*tail != KV_NO_BLOCK)
		p->lru_next[*tail] = b;
	else
		*head = b;
	*tail = b;
	p->nr_cached++;
	p->nr_t2 += t2;
	if (p->arc && !t2)
		kv_arc_trim(p->arc, kv_pool_nr_t1(p));
}

static void make_free(struct kv_pool *p, uint32_t b)
{
	kv_free_mark(&p->free, b, 1, true);
	p->nr_free++;
}

/* Unpublish keyed @b; unreferenced, it leaves the LRU and is free unless @take. */
static void unpublish(struct kv_pool *p, uint32_t b, bool take)
{
	table_remove(p, b);
	if (!p->refs[b]) {
		lru_remove(p, b);
		if (!take)
			make_free(p, b);
	}
	memset(&p->key[b], 0, sizeof(p->key[b]));
	if (p->freq)
		p->freq[b] = 0;
}

void kv_pool_unpublish(struct kv_pool *p, uint32_t b)
{
	if (kv_pool_keyed(p, b))
		unpublish(p, b, false);
}

/*
 * ARC's REPLACE: T1's oldest while |T1| exceeds the target p (or T2 is
 * empty), else T2's; the key is remembered in B1 or B2. Returns the block,
 * free, or still marked in use where @take (the caller's from here on).
 */
static uint32_t evict_one(struct kv_pool *p, struct kv_key *out, bool take)
{
	uint32_t b = p->lru_head;

	if (p->arc) {
		uint32_t t1 = kv_pool_nr_t1(p);
		bool from_t1 = t1 && (t1 > p->arc->p || !p->nr_t2);
		struct kv_key key;

		b = from_t1 ? p->lru_head : p->t2_head;
		key = p->key[b];
		if (out)
			*out = key;
		unpublish(p, b, take);
		kv_arc_evicted(p->arc, from_t1 ? KV_GHOST_B1 : KV_GHOST_B2, &key,
			       kv_pool_nr_t1(p));
	} else {
		if (out)
			*out = p->key[b];
		unpublish(p, b, take);
		/* The next one's key: its table slot is read when it goes. */
		if (p->lru_head != KV_NO_BLOCK)
			__builtin_prefetch(&p->key[p->lru_head]);
	}
	p->evictions++;
	return b;
}

int kv_pool_evict(struct kv_pool *p, struct kv_key *key)
{
	if (!p->nr_cached)
		return -ENOENT;
	evict_one(p, key, false);
	return 0;
}

/* ---- references and allocation ---- */

uint32_t kv_pool_refs(const struct kv_pool *p, uint32_t b)
{
	return p->refs[b];
}

void kv_pool_get(struct kv_pool *p, uint32_t b)
{
	if (!p->refs[b]++ && kv_pool_keyed(p, b))
		lru_remove(p, b);
}

void kv_pool_put(struct kv_pool *p, uint32_t b)
{
	if (--p->refs[b])
		return;
	if (kv_pool_keyed(p, b))
		lru_add_tail(p, b);
	else
		make_free(p, b);
}

void kv_pool_put_many(struct kv_pool *p, const uint32_t *v, uint32_t n)
{
	uint32_t batch[64], nb = 0, i;

	for (i = 0; i < n; i++) {
		uint32_t b = v[i];

		if (--p->refs[b])
			continue;
		if (kv_pool_keyed(p, b)) {
			lru_add_tail(p, b);
			continue;
		}
		batch[nb++] = b;
		if (nb == 64 || i + 1 == n) {
			kv_free_release(&p->free, batch, nb);
			p->nr_free += nb;
			nb = 0;
		}
	}
	if (nb) {
		kv_free_release(&p->free, batch, nb);
		p->nr_free += nb;
	}
}

/*
 * What evicting the @n oldest cached blocks (LRU) reads, far apart in a
 * pool of many blocks: their keys, then the table slots the keys name,
 * all in flight at once rather than one eviction's misses after another's.
 */
static void prefetch_lru(const struct kv_pool *p, uint32_t n)
{
	uint32_t b, i;

	if (n > 64)
		n = 64;
	for (b = p->lru_head, i = 0; i < n && b != KV_NO_BLOCK; i++, b = p->lru_next[b]) {
		__builtin_prefetch(&p->key[b]);
		__builtin_prefetch(&p->refs[b]);
	}
	for (b = p->lru_head, i = 0; i < n && b != KV_NO_BLOCK; i++, b = p->lru_next[b])
		__builtin_prefetch(&p->table[slot_of(p, &p->key[b])]);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int kv_pool_alloc(struct kv_pool *p, uint32_t n, uint32_t *out)
{
	uint32_t b, start;

	if (!n)
		return 0;
	if ((uint64_t)n > (uint64_t)p->nr_free + p->nr_cached)
		return -ENOSPC;
	if (!p->nr_free) {
		/*
		 * Nothing free: the blocks are the @n evicted, lowest first (what
		 * a run or the lowest free blocks would be), never marked free in
		 * the index in between.
		 */
		if (n > 1 && !p->arc)
			prefetch_lru(p, n);
		for (b = 0; b < n; b++)
			out[b] = evict_one(p, NULL, true);
		if (n > 1)
			qsort(out, n, sizeof(*out), cmp_u32);
		for (b = 0; b < n; b++)
			p->refs[out[b]] = 1;
		return 0;
	}
	while (p->nr_free < n)
		evict_one(p, NULL, false);
	start = n > 1 ? kv_free_find_run(&p->free, n) : UINT32_MAX;
	if (start != UINT32_MAX) {
		kv_free_mark(&p->free, start, n, false);
		for (b = 0; b < n; b++)
			out[b] = start + b;
	} else {
		kv_free_take_lowest(&p->free, n, out);
	}
	for (b = 0; b < n; b++)
		p->refs[out[b]] = 1;
	p->nr_free -= n;
	return 0;
}
