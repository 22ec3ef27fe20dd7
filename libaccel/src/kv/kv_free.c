// SPDX-License-Identifier: MIT
/*
 * libaccel - the free-block index of a block pool (kv_free.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_free.h"

#define NO_RUN	UINT32_MAX

/* The longest run of set bits in @w. */
static uint32_t word_max(uint64_t w)
{
	uint32_t have = 1, s;
	uint64_t x = w, y;

	if (!w || w == ~0ULL)
		return w ? 64 : 0;
	/* x: bits starting a run of at least @have; grow @have by halving steps. */
	while (have < 32 && (y = x & (x >> have))) {
		x = y;
		have *= 2;
	}
	for (s = have / 2; s; s /= 2) {
		y = x & (x >> s);
		if (y) {
			x = y;
			have += s;
		}
	}
	return have;
}

static struct kv_free_node leaf_of(const struct kv_free *f, uint32_t w)
{
	uint64_t x = w < f->nr_words ? f->bits[w] : 0;

	if (x == ~0ULL)
		return (struct kv_free_node) { 64, 64, 64 };
	return (struct kv_free_node) {
		(uint32_t)__builtin_ctzll(~x), (uint32_t)__builtin_clzll(~x), word_max(x)
	};
}

/* A node from its children, each covering @half blocks. */
static struct kv_free_node join(const struct kv_free_node *l, const struct kv_free_node *r,
				uint32_t half)
{
	struct kv_free_node n = {
		l->pre == half ? half + r->pre : l->pre,
		r->suf == half ? half + l->suf : r->suf,
		l->max > r->max ? l->max : r->max,
	};

	if (l->suf + r->pre > n.max)
		n.max = l->suf + r->pre;
	return n;
}

static bool node_set(struct kv_free *f, uint32_t i, struct kv_free_node n)
{
	struct kv_free_node *o = &f->node[i];

	if (o->pre == n.pre && o->suf == n.suf && o->max == n.max)
		return false;
	*o = n;
	return true;
}

/*
 * Recompute the leaves of words [w0, w1] and their ancestors, stopping
 * early when a level is unchanged (nothing above it changes either).
 */
static void update(struct kv_free *f, uint32_t w0, uint32_t w1)
{
	uint32_t lo = f->leaves + w0, hi = f->leaves + w1, half = 64, i;
	bool changed = false;

	for (i = w0; i <= w1; i++)
		changed |= node_set(f, f->leaves + i, leaf_of(f, i));
	while (changed && lo > 1) {
		lo /= 2;
		hi /= 2;
		changed = false;
		for (i = lo; i <= hi; i++)
			changed |= node_set(f, i, join(&f->node[2 * i], &f->node[2 * i + 1], half));
		half *= 2;
	}
}

/* Every node from the bitmap. */
static void build(struct kv_free *f)
{
	uint32_t i, half = 64, level = f->leaves;

	for (i = 0; i < f->leaves; i++)
		f->node[f->leaves + i] = leaf_of(f, i);
	for (level = f->leaves / 2; level; level /= 2, half *= 2)
		for (i = level; i < 2 * level; i++)
			f->node[i] = join(&f->node[2 * i], &f->node[2 * i + 1], half);
}

int kv_free_init(struct kv_free *f, uint32_t nr_blocks)
{
	uint32_t leaves = 1, w;

	memset(f, 0, sizeof(*f));
	if (!nr_blocks || nr_blocks > (1u << 30))
		return -EINVAL;
	f->nr_blocks = nr_blocks;
	f->nr_words = (nr_blocks + 63) / 64;
	while (leaves < f->nr_words)
		leaves *= 2;
	f->leaves = leaves;
	f->bits = calloc(f->nr_words, sizeof(*f->bits));
	f->node = calloc(2 * (size_t)leaves, sizeof(*f->node));
	if (!f->bits || !f->node) {
		kv_free_fini(f);
		return -ENOMEM;
	}
	for (w = 0; w < f->nr_words; w++)
		f->bits[w] = ~0ULL;
	if (nr_blocks % 64)
		f->bits[f->nr_words - 1] = (1ULL << (nr_blocks % 64)) - 1;
	build(f);
	return 0;
}

void kv_free_fini(struct kv_free *f)
{
	free(f->bits);
	free(f->node);
	memset(f, 0, sizeof(*f));
}

/* Bits [from, to) of a word (0 <= from < to <= 64). */
static uint64_t span(uint32_t from, uint32_t to)
{
	uint64_t hi = to == 64 ? ~0ULL : (1ULL << to) - 1;

	return hi & ~((1ULL << from) - 1);
}

void kv_free_mark(struct kv_free *f, uint32_t b, uint32_t n, bool free)
{
	uint32_t w0 = b / 64, w1 = (b + n - 1) / 64, w;

	if (!n)
		return;
	for (w = w0; w <= w1; w++) {
		uint32_t from = w == w0 ? b % 64 : 0;
		uint32_t to = w == w1 ? (b + n - 1) % 64 + 1 : 64;

		if (free)
			f->bits[w] |= span(from, to);
		else
			f->bits[w] &= ~span(from, to);
	}
	update(f, w0, w1);
}

/* The lowest start of @n (1..64) consecutive set bits in @w (there is one). */
static uint32_t word_find(uint64_t w, uint32_t n)
{
	uint64_t x = w;
	uint32_t have = 1;

	/* x: bits starting a run of at least @have; double @have each step. */
	while (have < n) {
		uint32_t s = have * 2 <= n ? have : n - have;

		x &= x >> s;
		have += s;
	}
	return (uint32_t)__builtin_ctzll(x);
}

uint32_t kv_free_find_run(const struct kv_free *f, uint32_t n)
{
	uint32_t i = 1, base = 0, half = 32 * f->leaves;

	if (!n || f->node[1].max < n)
		return NO_RUN;
	while (i < f->leaves) {
		const struct kv_free_node *l = &f->node[2 * i], *r = l + 1;

		if (l->max >= n) {
			i = 2 * i;
		} else if (l->suf + r->pre >= n) {
			return base + half - l->suf;
		} else {
			i = 2 * i + 1;
			base += half;
		}
		half /= 2;
	}
	return base + word_find(f->bits[i - f->leaves], n);
}

void kv_free_take_lowest(struct kv_free *f, uint32_t n, uint32_t *out)
{
	uint32_t got = 0;

	while (got < n) {
		uint32_t w = kv_free_find_run(f, 1) / 64;
		uint64_t x = f->bits[w];

		while (x && got < n) {
			uint32_t bit = (uint32_t)__builtin_ctzll(x);

			out[got++] = w * 64 + bit;
			x &= x - 1;
		}
		/* The lowest blocks of the word went; the rest stay free. */
		f->bits[w] = x;
		update(f, w, w);
	}
}

void kv_free_release(struct kv_free *f, const uint32_t *v, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		f->bits[v[i] / 64] |= 1ULL << (v[i] % 64);
	/* After every bit is set: one update per run of blocks in one word. */
	for (i = 0; i < n; i++)
		if (i + 1 == n || v[i + 1] / 64 != v[i] / 64)
			update(f, v[i] / 64, v[i] / 64);
}
