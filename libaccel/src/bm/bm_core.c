// SPDX-License-Identifier: MIT
/*
 * libaccel - the block manager: creation, tiers, keys, lookup, counters and
 * the consistency check (bm.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "bm.h"

_Static_assert(sizeof(struct accel_bm_key) == sizeof(struct kv_key), "key layout");

ACCEL_EXPORT struct accel_bm *accel_bm_create(const struct accel_bm_config *cfg)
{
	struct accel_bm *bm;
	uint32_t t, evict, ghosts;
	int ret = accel_opts_valid(cfg, sizeof(*cfg));

	if (!ret && (!cfg || !cfg->block_tokens || cfg->block_tokens > 65536 ||
		     !cfg->nr_tiers || cfg->nr_tiers > ACCEL_BM_TIERS_MAX ||
		     !ACCEL_OPTS_HAS(cfg, tier_blocks) || !cfg->tier_blocks ||
		     ACCEL_OPTS_GET(cfg, flags, 0)))
		ret = -EINVAL;
	if (ret) {
		errno = -ret;
		return NULL;
	}
	evict = ACCEL_OPTS_GET(cfg, evict, ACCEL_BM_EVICT_LRU);
	ghosts = ACCEL_OPTS_GET(cfg, arc_ghosts, 0);
	if (evict > ACCEL_BM_EVICT_ARC) {
		errno = EINVAL;
		return NULL;
	}
	bm = calloc(1, sizeof(*bm));
	if (!bm) {
		errno = ENOMEM;
		return NULL;
	}
	bm->block_tokens = cfg->block_tokens;
	bm->nr_tiers = cfg->nr_tiers;
	bm->max_run = ACCEL_OPTS_GET(cfg, max_run, 0);
	if (!bm->max_run)
		bm->max_run = UINT32_MAX;
	for (t = 0; t < cfg->nr_tiers && !ret; t++) {
		ret = kv_pool_init(&bm->tier[t].pool, cfg->tier_blocks[t]);
		if (!ret && evict == ACCEL_BM_EVICT_ARC)
			ret = kv_pool_use_arc(&bm->tier[t].pool,
					      ghosts < cfg->tier_blocks[t] ? ghosts : 0);
	}
	if (!ret)
		ret = -pthread_mutex_init(&bm->lock, NULL);
	if (ret) {
		while (t--)
			kv_pool_fini(&bm->tier[t].pool);
		free(bm);
		errno = -ret;
		return NULL;
	}
	return bm;
}

ACCEL_EXPORT void accel_bm_destroy(struct accel_bm *bm)
{
	uint32_t i;

	if (!bm)
		return;
	for (i = 0; i < bm->nr_plan; i++) {
		free(bm->plan[i].runs);
		free(bm->plan[i].res);
		free(bm->plan[i].old_tail_tokens);
		free(bm->plan[i].old_blocks);
		free(bm->plan[i].from);
		free(bm->plan[i].old_shadow);
	}
	free(bm->plan);
	for (i = 0; i < bm->nr_seq; i++) {
		/* The pools go as a whole: no reference needs dropping. */
		free(bm->seq[i].shadow);
		free(bm->seq[i].tok);
		bm->seq[i].s.nr_blocks = 0;
		kv_seq_fini(&bm->tier[0].pool, &bm->seq[i].s);
	}
	free(bm->seq);
	for (i = 0; i < bm->nr_tiers; i++)
		kv_pool_fini(&bm->tier[i].pool);
	pthread_mutex_destroy(&bm->lock);
	free(bm);
}

struct bm_seq *bm_seq_get(struct accel_bm *bm, uint32_t seq)
{
	return seq < bm->nr_seq && bm->seq[seq].live ? &bm->seq[seq] : NULL;
}

void bm_set_prepare(struct accel_bm *bm, uint32_t tier, const struct kv_prepare *prep)
{
	pthread_mutex_lock(&bm->lock);
	bm->prep[tier] = prep ? *prep : (struct kv_prepare) { 0 };
	pthread_mutex_unlock(&bm->lock);
}

const struct kv_prepare *bm_prep(const struct accel_bm *bm, uint32_t tier)
{
	return bm->prep[tier].fn ? &bm->prep[tier] : NULL;
}

/* ---- still-valid copies ---- */

void bm_shadow_drop(struct accel_bm *bm, struct bm_seq *q, uint32_t from)
{
	struct kv_pool *p;
	uint32_t i;

	if (q->shadow_tier == BM_NONE)
		return;
	p = &bm->tier[q->shadow_tier].pool;
	for (i = from; i < q->nr_shadow; i++) {
		if (q->shadow[i] != BM_NONE)
			kv_pool_put(p, q->shadow[i]);
		q->shadow[i] = BM_NONE;
	}
	if (from < q->nr_shadow)
		q->nr_shadow = from;
	if (!q->nr_shadow)
		q->shadow_tier = BM_NONE;
}

void bm_make_room(struct accel_bm *bm, uint32_t tier, uint32_t need)
{
	struct kv_pool *p = &bm->tier[tier].pool;
	uint32_t i;

	for (i = 0; i < bm->nr_seq && (uint64_t)p->nr_free + p->nr_cached < need; i++)
		if (bm->seq[i].live && bm->seq[i].shadow_tier == tier)
			bm_shadow_drop(bm, &bm->seq[i], 0);
}

/* ---- keys and lookup ---- */

ACCEL_EXPORT int accel_bm_keys(struct accel_bm *bm, const struct accel_bm_key *parent,
			       const int32_t *tokens, uint64_t n, const void *extra,
			       size_t extra_len, struct accel_bm_key *keys)
{
	const struct kv_key *prev = (const struct kv_key *)parent;
	uint64_t full, i;
	int ret;

	if (!bm || (n && (!tokens || !keys)) || (extra_len && !extra))
		return -EINVAL;
	full = n / bm->block_tokens;
	if (full > INT32_MAX)
		return -E2BIG;
	/* Reads only the caller's arguments: no lock. */
	for (i = 0; i < full; i++) {
		ret = kv_key_block(prev, tokens + i * bm->block_tokens, bm->block_tokens,
				   extra, extra_len, (struct kv_key *)&keys[i]);
		if (ret)
			return ret;
		prev = (const struct kv_key *)&keys[i];
	}
	return (int)full;
}

ACCEL_EXPORT int accel_bm_lookup(struct accel_bm *bm, const struct accel_bm_key *keys,
				 uint32_t n, uint32_t *hits)
{
	uint32_t t, i;

	if (!bm || !hits || (n && !keys))
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	for (t = 0; t < bm->nr_tiers; t++) {
		const struct kv_pool *p = &bm->tier[t].pool;

		for (i = 0; i < n; i++)
			if (kv_pool_lookup(p, (const struct kv_key *)&keys[i]) == KV_NO_BLOCK)
				break;
		hits[t] = i;
	}
	pthread_mutex_unlock(&bm->lock);
	return 0;
}

/* ---- counters ---- */

ACCEL_EXPORT int accel_bm_tier_stats(struct accel_bm *bm, uint32_t tier,
				     struct accel_bm_tier_stats *st)
{
	struct accel_bm_tier_stats v = { .sz = sizeof(v) };
	const struct kv_pool *p;
	int ret;

	if (!bm || !st || st->sz < sizeof(st->sz))
		return -EINVAL;
	ret = accel_opts_valid(st, sizeof(*st));
	if (ret)
		return ret;
	if (tier >= bm->nr_tiers)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	p = &bm->tier[tier].pool;
	v.blocks = p->nr_blocks;
	v.free = p->nr_free;
	v.cached = p->nr_cached;
	v.used = p->nr_blocks - p->nr_free - p->nr_cached;
	v.reserved = bm->tier[tier].reserved;
	v.arc_t1 = kv_pool_nr_t1(p);
	v.arc_t2 = p->nr_t2;
	if (p->arc) {
		v.arc_p = p->arc->p;
		v.arc_b1 = p->arc->nr[KV_GHOST_B1];
		v.arc_b2 = p->arc->nr[KV_GHOST_B2];
	}
	v.evictions = p->evictions;
	v.hits = bm->tier[tier].hits;
	v.misses = bm->tier[tier].misses;
	pthread_mutex_unlock(&bm->lock);
	/* Up to the caller's sz, which stays the caller's. */
	memcpy((char *)st + sizeof(size_t), (char *)&v + sizeof(size_t),
	       (st->sz < sizeof(v) ? st->sz : sizeof(v)) - sizeof(size_t));
	return 0;
}

/*
 * Make up to @n more blocks of @tier free (no holder, no key): evict cached
 * blocks in the tier's eviction order, then drop the still-valid copies
 * moves left on it (and evict what they leave cached). For a memory
 * pressure round (accel_sched_release()).
 */
ACCEL_EXPORT int accel_bm_evict(struct accel_bm *bm, uint32_t tier, uint32_t n)
{
	struct kv_pool *p;
	uint32_t before, want, i;

	if (!bm || tier >= bm->nr_tiers || n > INT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	p = &bm->tier[tier].pool;
	before = p->nr_free;
	want = n > p->nr_blocks - before ? p->nr_blocks : before + n;
	for (i = 0; p->nr_free < want; ) {
		if (p->nr_cached) {
			kv_pool_evict(p, NULL);
			continue;
		}
		while (i < bm->nr_seq && !(bm->seq[i].live && bm->seq[i].shadow_tier == tier))
			i++;
		if (i == bm->nr_seq)
			break;
		bm_shadow_drop(bm, &bm->seq[i], 0);
	}
	n = p->nr_free - before;
	pthread_mutex_unlock(&bm->lock);
	return (int)n;
}

/* ---- the consistency check (tests) ---- */

#define FAIL(...) do { snprintf(why, len, __VA_ARGS__); ret = -EUCLEAN; goto out; } while (0)

static int check_pool(const struct kv_pool *p, const uint32_t *want, uint32_t t,
		      char *why, size_t len)
{
	uint32_t b, nfree = 0, ncached = 0, n1 = 0, n2 = 0;
	int ret = 0;

	for (b = 0; b < p->nr_blocks; b++) {
		bool keyed = kv_pool_keyed(p, b), isfree = kv_pool_is_free(p, b);

		if (p->refs[b] != want[b])
			FAIL("tier %u block %u: %u references, %u holders", t, b, p->refs[b],
			     want[b]);
		if (isfree && (p->refs[b] || keyed))
			FAIL("tier %u block %u: free but held or keyed", t, b);
		if (!isfree && !p->refs[b] && !keyed)
			FAIL("tier %u block %u: unheld, unkeyed, not free", t, b);
		if (keyed && kv_pool_lookup(p, &p->key[b]) != b)
			FAIL("tier %u block %u: its key finds another block", t, b);
		nfree += isfree;
		ncached += !p->refs[b] && keyed;
	}
	for (b = p->lru_head; b != KV_NO_BLOCK && n1 <= p->nr_blocks; b = p->lru_next[b])
		n1++;
	for (b = p->t2_head; b != KV_NO_BLOCK && n2 <= p->nr_blocks; b = p->lru_next[b])
		n2++;
	if (nfree != p->nr_free || ncached != p->nr_cached || n1 + n2 != ncached ||
	    n2 != p->nr_t2)
		FAIL("tier %u: %u free %u cached (%u + %u listed), counted %u %u (t2 %u)", t,
		     nfree, ncached, n1, n2, p->nr_free, p->nr_cached, p->nr_t2);
	if (p->arc) {
		const struct kv_arc *a = p->arc;
		uint32_t b1 = a->nr[KV_GHOST_B1], b2 = a->nr[KV_GHOST_B2];

		if ((uint64_t)n1 + b1 > a->c || (uint64_t)b1 + b2 > a->cap || a->cap > a->c ||
		    a->p > a->c || (uint64_t)n1 + n2 + b1 + b2 > 2ULL * a->c)
			FAIL("tier %u: ARC bounds: T1 %u T2 %u B1 %u B2 %u p %u c %u cap %u", t,
			     n1, n2, b1, b2, a->p, a->c, a->cap);
		for (b = 0; b < p->nr_blocks; b++)
			if (kv_pool_keyed(p, b) && kv_arc_find(a, &p->key[b]) != KV_GHOST_NONE)
				FAIL("tier %u block %u: both cached and a ghost", t, b);
	}
out:
	return ret;
}

static void hold(uint32_t **want, uint32_t t, uint32_t b)
{
	if (b != BM_NONE)
		want[t][b]++;
}

int bm_check(struct accel_bm *bm, char *why, size_t len)
{
	uint32_t *want[ACCEL_BM_TIERS_MAX] = { 0 }, t, i, j, reserved;
	int ret = 0;

	pthread_mutex_lock(&bm->lock);
	for (t = 0; t < bm->nr_tiers; t++) {
		want[t] = calloc(bm->tier[t].pool.nr_blocks, sizeof(*want[t]));
		if (!want[t]) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < bm->nr_seq; i++) {
		const struct bm_seq *q = &bm->seq[i];

		if (!q->live)
			continue;
		if (q->s.nr_blocks != (q->s.nr_tokens + bm->block_tokens - 1) / bm->block_tokens)
			FAIL("seq %u: %u blocks for %llu tokens", i, q->s.nr_blocks,
			     (unsigned long long)q->s.nr_tokens);
		if (q->s.nr_committed > q->s.nr_tokens / bm->block_tokens)
			FAIL("seq %u: %u committed of %llu tokens", i, q->s.nr_committed,
			     (unsigned long long)q->s.nr_tokens);
		for (j = 0; j < q->s.nr_blocks; j++)
			hold(want, q->tier, q->s.blocks[j]);
		if (q->shadow_tier != BM_NONE) {
			if (q->shadow_tier == q->tier || q->nr_shadow > q->s.nr_blocks)
				FAIL("seq %u: shadow on tier %u (%u entries)", i, q->shadow_tier,
				     q->nr_shadow);
			for (j = 0; j < q->nr_shadow; j++)
				hold(want, q->shadow_tier, q->shadow[j]);
		}
		if (q->plan != BM_NONE &&
		    (q->plan >= bm->nr_plan || bm->plan[q->plan].seq != i))
			FAIL("seq %u: plan slot %u is not its own", i, q->plan);
	}
	for (i = 0; i < bm->nr_plan; i++) {
		const struct bm_plan *pl = &bm->plan[i];

		if (!pl->id)
			continue;
		for (j = 0; j < pl->nr_res; j++)
			hold(want, pl->res[j].tier, pl->res[j].block);
		if (pl->seq != BM_NONE && bm->seq[pl->seq].plan != i)
			FAIL("plan %u: its sequence %u does not name it", i, pl->seq);
		if (pl->kind != BM_PLAN_MOVE || pl->seq == BM_NONE)
			continue;
		for (j = 0; j < pl->nr_old; j++)
			hold(want, pl->old_tier, pl->old_blocks[j]);
		for (j = 0; j < pl->nr_old_shadow; j++)
			hold(want, pl->old_shadow_tier, pl->old_shadow[j]);
	}
	for (t = 0; t < bm->nr_tiers; t++) {
		for (i = 0, reserved = 0; i < bm->nr_plan; i++)
			for (j = 0; bm->plan[i].id && j < bm->plan[i].nr_res; j++)
				reserved += bm->plan[i].res[j].tier == t;
		if (reserved != bm->tier[t].reserved)
			FAIL("tier %u: %u reserved, counted %u", t, reserved, bm->tier[t].reserved);
		ret = check_pool(&bm->tier[t].pool, want[t], t, why, len);
		if (ret)
			goto out;
	}
out:
	pthread_mutex_unlock(&bm->lock);
	for (t = 0; t < bm->nr_tiers; t++)
		free(want[t]);
	return ret;
}
