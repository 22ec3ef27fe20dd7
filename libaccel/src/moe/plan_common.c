// SPDX-License-Identifier: MIT
/*
 * libaccel - the MoE planner's shared pieces: topology checks, and EPLB's
 * balanced packing and replication of one row (exact: the tie rules of
 * Documentation/moe.rst, "EPLB").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "../internal.h"
#include "plan.h"

int plan_topo(const struct accel_moe_topo *topo, struct plan_topo *t)
{
	if (!topo || accel_opts_valid(topo, sizeof(*topo)) ||
	    !ACCEL_OPTS_HAS(topo, groups))
		return -EINVAL;
	t->layers = topo->layers;
	t->experts = topo->experts;
	t->slots = topo->slots;
	t->devices = topo->devices;
	t->nodes = topo->nodes;
	t->groups = topo->groups ? topo->groups : 1;
	if (!t->layers || t->layers > ACCEL_MOE_MAX_LAYERS || !t->experts ||
	    t->experts > ACCEL_MOE_MAX_EXPERTS || !t->devices || !t->nodes ||
	    t->slots < t->experts || t->slots > 4 * ACCEL_MOE_MAX_EXPERTS ||
	    t->devices > ACCEL_MOE_MAX_DEVICES ||
	    t->devices % t->nodes || t->slots % t->devices)
		return -EINVAL;
	t->spd = t->slots / t->devices;
	t->dpn = t->devices / t->nodes;
	return 0;
}

int plan_check_weight(const struct plan_topo *t, const float *weight)
{
	size_t i, n = (size_t)t->layers * t->experts;

	if (!weight)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isfinite(weight[i]) || weight[i] < 0)
			return -EINVAL;
	return 0;
}

int plan_check_phy2log(const struct plan_topo *t, const int32_t *phy2log, bool need_all)
{
	uint8_t *seen;
	uint32_t l, s, e;
	int ret = 0;

	if (!phy2log)
		return -EINVAL;
	seen = malloc(t->experts);
	if (!seen)
		return -ENOMEM;
	for (l = 0; l < t->layers && !ret; l++) {
		const int32_t *row = phy2log + (size_t)l * t->slots;

		for (e = 0; e < t->experts; e++)
			seen[e] = 0;
		for (s = 0; s < t->slots; s++) {
			if (row[s] < 0 || (uint32_t)row[s] >= t->experts) {
				ret = -EINVAL;
				break;
			}
			seen[row[s]] = 1;
		}
		for (e = 0; need_all && !ret && e < t->experts; e++)
			if (!seen[e])
				ret = -EINVAL;
	}
	free(seen);
	return ret;
}

/*
 * The sort key of a weight: loads are finite and >= 0, so the bits of a
 * float order like the float (-0.0 taken as 0); inverted, an ascending
 * sort of the key is descending in weight.
 */
static inline uint32_t desc_key(float f)
{
	union { float f; uint32_t u; } v = { .f = f };

	return f == 0.0f ? UINT32_MAX : ~v.u;
}

void plan_sort_desc(const float *key, uint32_t *idx, uint32_t n, uint32_t *scratch)
{
	uint32_t *src = idx, *dst = scratch, *x, i, pass;
	uint32_t count[256];

	/* LSD radix sort, 8 bits a pass: stable, so equal weights keep index order. */
	for (i = 0; i < n; i++)
		idx[i] = i;
	for (pass = 0; pass < 4; pass++) {
		uint32_t shift = pass * 8, sum = 0, c;

		memset(count, 0, sizeof(count));
		for (i = 0; i < n; i++)
			count[desc_key(key[src[i]]) >> shift & 0xff]++;
		for (i = 0; i < 256; i++) {
			c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[desc_key(key[src[i]]) >> shift & 0xff]++] = src[i];
		x = src;
		src = dst;
		dst = x;
	}
	/* Four passes: the result is back in idx. */
}

/*
 * A binary heap of indices by @key: with @max the largest key on top,
 * else the smallest; among equal keys the lower index (EPLB's "first
 * index wins" either way). Keys are finite and >= 0, so (key, index)
 * orders as one integer: the float's bits (-0.0 taken as 0) above the
 * index, inverted for @max; a comparison is one integer compare, which
 * the compiler does without a branch.
 */
static inline uint64_t heap_rank(const float *key, bool max, uint32_t i)
{
	union { float f; uint32_t u; } v = { .f = key[i] };
	uint64_t r = (uint64_t)(key[i] == 0.0f ? 0 : v.u) << 32;

	return max ? ~r & ~(uint64_t)UINT32_MAX : r;
}

static inline uint64_t heap_key(const float *key, bool max, uint32_t i)
{
	return heap_rank(key, max, i) | i;
}

static inline void heap_down(uint32_t *h, uint32_t n, uint32_t i, const float *key, bool max)
{
	uint32_t x = h[i];
	uint64_t kx = heap_key(key, max, x);

	for (;;) {
		uint32_t l = 2 * i + 1, c;
		uint64_t kc;

		if (l >= n)
			break;
		c = l;
		kc = heap_key(key, max, h[l]);
		if (l + 1 < n) {
			uint64_t kr = heap_key(key, max, h[l + 1]);

			c = kr < kc ? l + 1 : l;
			kc = kr < kc ? kr : kc;
		}
		if (kc >= kx)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

void plan_pack(const float *w, uint32_t n, uint32_t packs, uint32_t *pack, uint32_t *rank,
	       uint32_t *order, float *pw, uint32_t *items)
{
	uint32_t per = n / packs, i, p, *heap = items + packs, hn = packs;

	if (per == 1) {
		for (i = 0; i < n; i++) {
			pack[i] = i;
			rank[i] = 0;
		}
		return;
	}
	/* rank doubles as the sort's scratch: it is written after. */
	plan_sort_desc(w, order, n, rank);
	for (p = 0; p < packs; p++) {
		pw[p] = 0.0f;
		items[p] = 0;
		heap[p] = p;	/* all zero: index order is a heap */
	}
	/*
	 * Each item to the lightest pack with room, the first among equals:
	 * the heap's top, as it orders by (load, index).
	 */
	for (i = 0; i < n; i++) {
		uint32_t it = order[i], best = heap[0];

		pack[it] = best;
		rank[it] = items[best]++;
		pw[best] += w[it];
		if (items[best] == per)
			heap[0] = heap[--hn];
		heap_down(heap, hn, 0, pw, false);
	}
}

void plan_replicate(const float *w, uint32_t nlog, uint32_t nphy, uint32_t *phy2log,
		    uint32_t *rank, uint32_t *cnt, float *ratio)
{
	/* rank[0..nlog) is 0 in the result: the heap lives there until the end. */
	uint32_t *heap = rank, i, e;

	for (e = 0; e < nlog; e++) {
		phy2log[e] = e;
		cnt[e] = 1;
		ratio[e] = w[e];
		heap[e] = e;
	}
	for (i = nlog / 2; i-- > 0;)
		heap_down(heap, nlog, i, ratio, true);
	/*
	 * Each further replica to the expert with the largest w / cnt, the
	 * first among equals: the heap's top, as it orders by (ratio, index).
	 */
	for (i = nlog; i < nphy; i++) {
		uint32_t best = heap[0];

		phy2log[i] = best;
		rank[i] = cnt[best]++;
		ratio[best] = w[best] / (float)cnt[best];
		heap_down(heap, nlog, 0, ratio, true);
	}
	for (e = 0; e < nlog; e++)
		rank[e] = 0;
}
