// SPDX-License-Identifier: MIT
/*
 * libaccel - ARC's ghost lists over a block pool (kv_arc.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_arc.h"

#define NONE	UINT32_MAX

int kv_arc_init(struct kv_arc *a, uint32_t c, uint32_t cap)
{
	uint32_t size = 2, i;

	memset(a, 0, sizeof(*a));
	if (!c || cap > c)
		return -EINVAL;
	if (!cap)
		cap = c;
	while (size < 2 * cap)
		size *= 2;
	a->c = c;
	a->cap = cap;
	a->key = calloc(cap, sizeof(*a->key));
	a->prev = calloc(cap, sizeof(*a->prev));
	a->next = calloc(cap, sizeof(*a->next));
	a->list = calloc(cap, sizeof(*a->list));
	a->table = malloc(size * sizeof(*a->table));
	if (!a->key || !a->prev || !a->next || !a->list || !a->table) {
		kv_arc_fini(a);
		return -ENOMEM;
	}
	memset(a->table, 0xff, size * sizeof(*a->table));
	a->table_mask = size - 1;
	for (i = 0; i < cap; i++)
		a->next[i] = i + 1 < cap ? i + 1 : NONE;
	a->free_slot = 0;
	for (i = 0; i < 3; i++)
		a->head[i] = a->tail[i] = NONE;
	return 0;
}

void kv_arc_fini(struct kv_arc *a)
{
	free(a->key);
	free(a->prev);
	free(a->next);
	free(a->list);
	free(a->table);
	memset(a, 0, sizeof(*a));
}

static uint32_t home(const struct kv_arc *a, const struct kv_key *key)
{
	uint64_t h = kv_key_bits(key);

	return (uint32_t)(h ^ (h >> 32)) & a->table_mask;
}

static uint32_t find_slot(const struct kv_arc *a, const struct kv_key *key)
{
	uint32_t i;

	for (i = home(a, key); a->table[i] != NONE; i = (i + 1) & a->table_mask)
		if (kv_key_eq(&a->key[a->table[i]], key))
			return a->table[i];
	return NONE;
}

enum kv_ghost kv_arc_find(const struct kv_arc *a, const struct kv_key *key)
{
	uint32_t g = find_slot(a, key);

	return g == NONE ? KV_GHOST_NONE : (enum kv_ghost)a->list[g];
}

/* Forget ghost @g: out of its list and the table, back on the free chain. */
static void drop(struct kv_arc *a, uint32_t g)
{
	uint32_t l = a->list[g], i = home(a, &a->key[g]), j, k;

	if (a->prev[g] != NONE)
		a->next[a->prev[g]] = a->next[g];
	else
		a->head[l] = a->next[g];
	if (a->next[g] != NONE)
		a->prev[a->next[g]] = a->prev[g];
	else
		a->tail[l] = a->prev[g];
	a->nr[l]--;
	while (a->table[i] != g)
		i = (i + 1) & a->table_mask;
	for (j = i;;) {
		j = (j + 1) & a->table_mask;
		if (a->table[j] == NONE)
			break;
		k = home(a, &a->key[a->table[j]]);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		a->table[i] = a->table[j];
		i = j;
	}
	a->table[i] = NONE;
	a->list[g] = KV_GHOST_NONE;
	a->next[g] = a->free_slot;
	a->free_slot = g;
}

enum kv_ghost kv_arc_hit(struct kv_arc *a, const struct kv_key *key)
{
	uint32_t g = find_slot(a, key), d;
	enum kv_ghost l;

	if (g == NONE)
		return KV_GHOST_NONE;
	l = (enum kv_ghost)a->list[g];
	if (l == KV_GHOST_B1) {
		/* T1 was too small: grow its target. */
		d = a->nr[KV_GHOST_B2] > a->nr[KV_GHOST_B1] ?
		    a->nr[KV_GHOST_B2] / a->nr[KV_GHOST_B1] : 1;
		a->p = a->c - a->p < d ? a->c : a->p + d;
	} else {
		d = a->nr[KV_GHOST_B1] > a->nr[KV_GHOST_B2] ?
		    a->nr[KV_GHOST_B1] / a->nr[KV_GHOST_B2] : 1;
		a->p = a->p < d ? 0 : a->p - d;
	}
	a->ghost_hits[l]++;
	drop(a, g);
	return l;
}

void kv_arc_trim(struct kv_arc *a, uint32_t t1)
{
	while (a->nr[KV_GHOST_B1] && (uint64_t)t1 + a->nr[KV_GHOST_B1] > a->c)
		drop(a, a->head[KV_GHOST_B1]);
}

void kv_arc_evicted(struct kv_arc *a, enum kv_ghost l, const struct kv_key *key, uint32_t t1)
{
	uint32_t g, i;

	if (find_slot(a, key) != NONE)
		return;
	/* Room: B2's oldest first (B1 is bounded by T1 below), else B1's. */
	if (a->free_slot == NONE)
		drop(a, a->head[a->nr[KV_GHOST_B2] ? KV_GHOST_B2 : KV_GHOST_B1]);
	g = a->free_slot;
	a->free_slot = a->next[g];
	a->key[g] = *key;
	a->list[g] = (uint8_t)l;
	a->prev[g] = a->tail[l];
	a->next[g] = NONE;
	if (a->tail[l] != NONE)
		a->next[a->tail[l]] = g;
	else
		a->head[l] = g;
	a->tail[l] = g;
	a->nr[l]++;
	for (i = home(a, key); a->table[i] != NONE; i = (i + 1) & a->table_mask)
		;
	a->table[i] = g;
	kv_arc_trim(a, t1);
}
