// SPDX-License-Identifier: MIT
/*
 * libaccel - the block manager's transfer plans: reservations, runs,
 * completion and undo; moving a sequence between tiers (bm.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "bm.h"

uint32_t bm_plan_new(struct accel_bm *bm, enum bm_plan_kind kind, uint32_t seq, uint32_t nres,
		     uint32_t nruns)
{
	struct bm_plan *pl, *v;
	uint32_t i;

	for (i = 0; i < bm->nr_plan && bm->plan[i].id; i++)
		;
	if (i == bm->nr_plan) {
		if (bm->nr_plan >= BM_NONE / 2)
			return BM_NONE;
		v = realloc(bm->plan, (bm->nr_plan + 1) * sizeof(*v));
		if (!v)
			return BM_NONE;
		bm->plan = v;
		memset(&bm->plan[bm->nr_plan++], 0, sizeof(*v));
	}
	pl = &bm->plan[i];
	memset(pl, 0, sizeof(*pl));
	pl->res = malloc((nres ? nres : 1) * sizeof(*pl->res));
	pl->runs = malloc((nruns ? nruns : 1) * sizeof(*pl->runs));
	if (!pl->res || !pl->runs) {
		free(pl->res);
		free(pl->runs);
		memset(pl, 0, sizeof(*pl));
		return BM_NONE;
	}
	if (!++bm->gen)
		bm->gen = 1;
	pl->id = (uint64_t)bm->gen << 32 | (i + 1);
	pl->kind = kind;
	pl->seq = seq;
	return i;
}

void bm_plan_reserve(struct accel_bm *bm, struct bm_plan *pl, uint32_t tier, uint32_t block)
{
	kv_pool_get(&bm->tier[tier].pool, block);
	bm->tier[tier].reserved++;
	pl->res[pl->nr_res++] = (struct bm_res) { tier, block };
}

void bm_plan_free(struct accel_bm *bm, uint32_t slot)
{
	struct bm_plan *pl = &bm->plan[slot];
	uint32_t i;

	for (i = 0; i < pl->nr_res; i++) {
		kv_pool_put(&bm->tier[pl->res[i].tier].pool, pl->res[i].block);
		bm->tier[pl->res[i].tier].reserved--;
	}
	if (pl->seq != BM_NONE && bm->seq[pl->seq].plan == slot)
		bm->seq[pl->seq].plan = BM_NONE;
	free(pl->runs);
	free(pl->res);
	free(pl->old_tail_tokens);
	free(pl->old_blocks);
	free(pl->from);
	free(pl->old_shadow);
	memset(pl, 0, sizeof(*pl));
}

static void put_all(struct accel_bm *bm, uint32_t tier, const uint32_t *v, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (v[i] != BM_NONE)
			kv_pool_put(&bm->tier[tier].pool, v[i]);
}

void bm_plan_orphan(struct accel_bm *bm, struct bm_plan *pl)
{
	if (pl->kind == BM_PLAN_MOVE) {
		put_all(bm, pl->old_tier, pl->old_blocks, pl->nr_old);
		put_all(bm, pl->old_shadow_tier, pl->old_shadow, pl->nr_old_shadow);
		pl->nr_old = pl->nr_old_shadow = 0;
	}
	pl->seq = BM_NONE;
}

void bm_plan_report(struct accel_bm *bm, uint32_t slot, struct accel_bm_plan *out,
		    uint32_t blocks, uint32_t reused)
{
	const struct bm_plan *pl = slot != BM_NONE ? &bm->plan[slot] : NULL;
	uint32_t n = pl ? pl->nr_runs : 0;

	ACCEL_OPTS_SET(out, id, pl ? pl->id : 0);
	ACCEL_OPTS_SET(out, nr_runs, n);
	ACCEL_OPTS_SET(out, blocks, blocks);
	ACCEL_OPTS_SET(out, reused, reused);
	if (n && ACCEL_OPTS_HAS(out, max_runs) && out->runs)
		memcpy(out->runs, pl->runs, (n < out->max_runs ? n : out->max_runs) *
		       sizeof(*pl->runs));
}

static struct bm_plan *plan_of(struct accel_bm *bm, uint64_t id, uint32_t *slot)
{
	uint32_t i = (uint32_t)id - 1;

	if (!id || i >= bm->nr_plan || bm->plan[i].id != id)
		return NULL;
	*slot = i;
	return &bm->plan[i];
}

ACCEL_EXPORT int accel_bm_plan_runs(struct accel_bm *bm, uint64_t plan_id, uint32_t first,
				    struct accel_bm_run *runs, uint32_t max)
{
	struct bm_plan *pl;
	uint32_t slot;
	int ret;

	if (!bm || (max && !runs))
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	pl = plan_of(bm, plan_id, &slot);
	if (!pl) {
		ret = -ENOENT;
	} else {
		ret = (int)pl->nr_runs;
		if (first < pl->nr_runs && max) {	/* max 0: the count only */
			uint32_t n = pl->nr_runs - first < max ? pl->nr_runs - first : max;

			memcpy(runs, pl->runs + first, n * sizeof(*runs));
		}
	}
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

/* ---- moves ---- */

/*
 * Give back the new tier's blocks @newt of a move that does not happen:
 * still-valid copies return to the sequence's shadow, the rest is
 * released; the third tier's shadow comes back.
 */
static void move_unwind(struct accel_bm *bm, struct bm_seq *q, struct bm_plan *pl,
			uint32_t new_tier, const uint32_t *newt, uint32_t n)
{
	struct kv_pool *p = &bm->tier[new_tier].pool;
	uint32_t i, end = 0;

	/* They came from q->shadow, which had room for them. */
	for (i = 0; i < n; i++)
		if (pl->from[i] == BM_FROM_SHADOW)
			end = i + 1;
	if (end) {
		for (i = 0; i < end; i++)
			q->shadow[i] = pl->from[i] == BM_FROM_SHADOW ? newt[i] : BM_NONE;
		q->nr_shadow = end;
		q->shadow_tier = new_tier;
	}
	for (i = 0; i < n; i++)
		if (pl->from[i] != BM_FROM_SHADOW && newt[i] != BM_NONE)
			kv_pool_put(p, newt[i]);
	if (pl->old_shadow) {
		free(q->shadow);
		q->shadow = pl->old_shadow;
		q->nr_shadow = pl->nr_old_shadow;
		q->shadow_tier = pl->old_shadow_tier;
		pl->old_shadow = NULL;
		pl->nr_old_shadow = 0;
	}
}

/* The move of plan @pl is over: @status 0 (the copies are made) or not. */
static void move_done(struct accel_bm *bm, struct bm_plan *pl, int status)
{
	struct bm_seq *q = &bm->seq[pl->seq];
	struct kv_pool *p = &bm->tier[q->tier].pool;
	uint32_t i, n = pl->nr_old;

	if (status) {
		uint32_t new_tier = q->tier;

		for (i = 0; i < n; i++) {
			uint32_t b = q->s.blocks[i];

			q->s.blocks[i] = pl->old_blocks[i];
			pl->old_blocks[i] = b;
		}
		q->tier = pl->old_tier;
		move_unwind(bm, q, pl, new_tier, pl->old_blocks, n);
		pl->nr_old = 0;
		return;
	}
	/* The copies on the new tier hold committed KV now: into its prefix cache. */
	for (i = 0; i < q->s.nr_committed && i < n; i++)
		if (pl->from[i] == BM_FROM_FRESH && !kv_pool_keyed(p, q->s.blocks[i]))
			q->s.pub[i] = kv_pool_publish(p, q->s.blocks[i], &q->s.keys[i]) ==
				      q->s.blocks[i];
	put_all(bm, pl->old_shadow_tier, pl->old_shadow, pl->nr_old_shadow);
	pl->nr_old_shadow = 0;
	if (pl->move_flags & BM_MOVE_DROP_OLD) {
		/* Released at once (keyed ones stay cached). */
		put_all(bm, pl->old_tier, pl->old_blocks, n);
		n = 0;
	}
	/* The old tier's blocks stay valid copies until written or needed. */
	free(q->shadow);
	q->shadow = pl->old_blocks;
	q->nr_shadow = n;
	q->shadow_tier = n ? pl->old_tier : BM_NONE;
	pl->old_blocks = NULL;
	pl->nr_old = 0;
}

ACCEL_EXPORT int accel_bm_plan_done(struct accel_bm *bm, uint64_t plan_id, int status)
{
	struct bm_plan *pl;
	uint32_t slot;
	int ret = 0;

	if (!bm || status > 0)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	pl = plan_of(bm, plan_id, &slot);
	if (!pl) {
		ret = -ENOENT;
		goto out;
	}
	if (pl->seq != BM_NONE && pl->kind == BM_PLAN_MOVE) {
		move_done(bm, pl, status);
	} else if (pl->seq != BM_NONE && status) {
		struct bm_seq *q = &bm->seq[pl->seq];
		struct kv_pool *p = &bm->tier[q->tier].pool;

		/* The copy-on-write failed: the append is undone. */
		kv_seq_truncate(p, &q->s, q->s.nr_tokens - pl->old_tokens, pl->old_tail_tokens);
		kv_pool_get(p, pl->old_tail);
		kv_seq_replace_tail(p, &q->s, pl->old_tail);
		bm_shadow_drop(bm, q, q->s.nr_blocks ? q->s.nr_blocks - 1 : 0);
	}
	bm_plan_free(bm, slot);
out:
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_move(struct accel_bm *bm, uint32_t seq, uint32_t tier,
				   struct accel_bm_plan *plan)
{
	return bm_seq_move(bm, seq, tier, 0, plan);
}

int bm_seq_move(struct accel_bm *bm, uint32_t seq, uint32_t tier, uint32_t flags,
		struct accel_bm_plan *plan)
{
	uint32_t n, i, k, need = 0, nc = 0, reused = 0, slot = BM_NONE, old;
	uint32_t *newt = NULL, *fresh = NULL;
	struct kv_copy *c = NULL;
	struct kv_run *runs = NULL;
	struct kv_pool *pb;
	struct bm_plan *pl;
	struct bm_seq *q;
	int ret;

	if (!bm)
		return -EINVAL;
	ret = accel_opts_valid(plan, sizeof(*plan));
	if (ret)
		return ret;
	if (tier >= bm->nr_tiers)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	q = bm_seq_get(bm, seq);
	ret = !q ? -ENOENT : q->plan != BM_NONE ? -EBUSY : q->tier == tier ? -EALREADY : 0;
	if (ret)
		goto out;
	old = q->tier;
	n = q->s.nr_blocks;
	pb = &bm->tier[tier].pool;
	slot = bm_plan_new(bm, BM_PLAN_MOVE, seq, 2 * n, n);
	pl = slot != BM_NONE ? &bm->plan[slot] : NULL;
	newt = malloc((n ? n : 1) * sizeof(*newt));
	fresh = malloc((n ? n : 1) * sizeof(*fresh));
	c = malloc((n ? n : 1) * sizeof(*c));
	runs = malloc((n ? n : 1) * sizeof(*runs));
	if (pl) {
		pl->old_blocks = malloc((n ? n : 1) * sizeof(*pl->old_blocks));
		pl->from = calloc(n ? n : 1, sizeof(*pl->from));
	}
	if (!pl || !newt || !fresh || !c || !runs || !pl->old_blocks || !pl->from) {
		ret = -ENOMEM;
		goto fail;
	}
	pl->move_flags = flags;
	/* A third tier's copies would not be the sequence's last: kept only for undo. */
	if (q->shadow_tier != BM_NONE && q->shadow_tier != tier) {
		pl->old_shadow = q->shadow;
		pl->nr_old_shadow = q->nr_shadow;
		pl->old_shadow_tier = q->shadow_tier;
		q->shadow = NULL;
		q->nr_shadow = 0;
		q->shadow_tier = BM_NONE;
	}
	/* Reuse first (references taken, so making room below cannot drop them). */
	for (i = 0; i < n; i++) {
		uint32_t b = BM_NONE;

		if (q->shadow_tier == tier && i < q->nr_shadow && q->shadow[i] != BM_NONE) {
			b = q->shadow[i];
			pl->from[i] = BM_FROM_SHADOW;
		} else if ((uint64_t)(i + 1) * bm->block_tokens <= q->s.nr_tokens &&
			   (b = kv_pool_lookup(pb, &q->s.keys[i])) != KV_NO_BLOCK) {
			kv_pool_get(pb, b);
			pl->from[i] = BM_FROM_KEY;
		} else {
			b = BM_NONE;
			need++;
		}
		newt[i] = b;
	}
	if (q->shadow_tier == tier) {
		q->nr_shadow = 0;
		q->shadow_tier = BM_NONE;
	}
	bm_make_room(bm, tier, need);
	ret = kv_pool_alloc(pb, need, fresh);
	if (!ret && need && bm_prep(bm, tier)) {
		ret = bm_prep(bm, tier)->fn(bm_prep(bm, tier)->arg, fresh, need);
		if (ret)
			kv_pool_put_many(pb, fresh, need);
	}
	if (ret) {
		move_unwind(bm, q, pl, tier, newt, n);
		goto fail;
	}
	/* Nothing fails from here on. */
	for (i = 0, k = 0; i < n; i++) {
		if (newt[i] != BM_NONE) {
			reused++;
			if (pl->from[i] == BM_FROM_KEY)
				kv_pool_hit(pb, newt[i]);
			continue;
		}
		newt[i] = fresh[k++];
		c[nc++] = (struct kv_copy) { q->s.blocks[i], newt[i] };
		bm_plan_reserve(bm, pl, old, q->s.blocks[i]);
		bm_plan_reserve(bm, pl, tier, newt[i]);
	}
	if (n) {
		memcpy(pl->old_blocks, q->s.blocks, n * sizeof(*newt));
		memcpy(q->s.blocks, newt, n * sizeof(*newt));
		memset(q->s.pub, 0, n);
	}
	pl->nr_old = n;
	pl->old_tier = old;
	q->tier = tier;
	pl->nr_runs = kv_coalesce(c, nc, bm->max_run, runs);
	for (i = 0; i < pl->nr_runs; i++)
		pl->runs[i] = (struct accel_bm_run) { old, runs[i].src, tier, runs[i].dst,
						      runs[i].count };
	if (!nc && !(flags & BM_MOVE_PLAN_ALWAYS)) {
		/* Every block had a valid copy there: done at once. */
		move_done(bm, pl, 0);
		bm_plan_free(bm, slot);
		slot = BM_NONE;
	} else {
		q->plan = slot;
	}
	if (plan)
		bm_plan_report(bm, slot, plan, nc, reused);
	goto out;
fail:
	if (slot != BM_NONE) {
		pl->seq = BM_NONE;
		bm_plan_free(bm, slot);
	}
out:
	pthread_mutex_unlock(&bm->lock);
	free(newt);
	free(fresh);
	free(c);
	free(runs);
	return ret;
}
