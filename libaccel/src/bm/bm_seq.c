// SPDX-License-Identifier: MIT
/*
 * libaccel - the block manager's sequences: create, free, fork, start,
 * append, commit, truncate, and reading their tables (bm.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "bm.h"

static uint64_t blocks_for(const struct accel_bm *bm, uint64_t tokens)
{
	return (tokens + bm->block_tokens - 1) / bm->block_tokens;
}

/* A sequence that may change: 0, -ENOENT or -EBUSY (a plan pending). */
static int seq_mut(struct accel_bm *bm, uint32_t seq, struct bm_seq **q)
{
	*q = bm_seq_get(bm, seq);
	if (!*q)
		return -ENOENT;
	return (*q)->plan != BM_NONE ? -EBUSY : 0;
}

static int tok_reserve(struct bm_seq *q, uint64_t n)
{
	uint64_t cap = q->cap_tok ? q->cap_tok : 64;
	int32_t *t;

	if (n <= q->cap_tok)
		return 0;
	while (cap < n)
		cap *= 2;
	t = realloc(q->tok, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	q->tok = t;
	q->cap_tok = cap;
	return 0;
}

/* A free slot (grown if none): its index, or BM_NONE. */
static uint32_t seq_slot(struct accel_bm *bm)
{
	uint32_t i, cap;
	struct bm_seq *v;

	for (i = bm->free_seq; i < bm->nr_seq; i++)
		if (!bm->seq[i].live)
			return i;
	if (bm->nr_seq == bm->cap_seq) {
		if (bm->cap_seq >= BM_NONE / 2)
			return BM_NONE;
		cap = bm->cap_seq ? 2 * bm->cap_seq : 16;
		v = realloc(bm->seq, cap * sizeof(*v));
		if (!v)
			return BM_NONE;
		bm->seq = v;
		bm->cap_seq = cap;
	}
	memset(&bm->seq[bm->nr_seq], 0, sizeof(bm->seq[0]));
	return bm->nr_seq++;
}

static int seq_new(struct accel_bm *bm, uint32_t tier, uint32_t *seq, struct bm_seq **out)
{
	uint32_t i = seq_slot(bm);
	struct bm_seq *q;
	int ret;

	if (i == BM_NONE)
		return -ENOMEM;
	q = &bm->seq[i];
	free(q->tok);
	free(q->shadow);
	memset(q, 0, sizeof(*q));
	ret = kv_seq_init(&q->s, bm->block_tokens);
	if (ret)
		return ret;
	q->s.defer_publish = true;
	q->tier = tier;
	q->shadow_tier = BM_NONE;
	q->plan = BM_NONE;
	q->live = true;
	bm->free_seq = i + 1;
	*seq = i;
	*out = q;
	return 0;
}

static void seq_del(struct accel_bm *bm, uint32_t seq)
{
	struct bm_seq *q = &bm->seq[seq];

	if (q->plan != BM_NONE)
		bm_plan_orphan(bm, &bm->plan[q->plan]);
	q->plan = BM_NONE;
	bm_shadow_drop(bm, q, 0);
	kv_seq_fini(&bm->tier[q->tier].pool, &q->s);
	free(q->tok);
	free(q->shadow);
	memset(q, 0, sizeof(*q));
	if (seq < bm->free_seq)
		bm->free_seq = seq;
}

ACCEL_EXPORT int accel_bm_seq_create(struct accel_bm *bm, const struct accel_bm_seq_opts *opts,
				     uint32_t *seq)
{
	uint32_t tier = ACCEL_OPTS_GET(opts, tier, 0), id;
	const void *extra = ACCEL_OPTS_GET(opts, extra_keys, NULL);
	size_t extra_len = ACCEL_OPTS_GET(opts, extra_keys_len, 0);
	uint64_t reserve = ACCEL_OPTS_GET(opts, reserve_tokens, 0);
	struct bm_seq *q = NULL;
	int ret;

	if (!bm || !seq)
		return -EINVAL;
	ret = accel_opts_valid(opts, sizeof(*opts));
	if (ret)
		return ret;
	if (tier >= bm->nr_tiers || (extra_len && !extra))
		return -EINVAL;
	/* Fixed at creation: read without the lock. */
	if (reserve > (uint64_t)bm->tier[tier].pool.nr_blocks * bm->block_tokens)
		return -E2BIG;
	pthread_mutex_lock(&bm->lock);
	ret = seq_new(bm, tier, &id, &q);
	if (!ret)
		ret = kv_seq_set_extra(&q->s, extra, extra_len);
	if (!ret && reserve)
		ret = kv_seq_reserve(&q->s, reserve);
	if (!ret && reserve)
		ret = tok_reserve(q, reserve);
	if (ret && q)
		seq_del(bm, id);
	else if (!ret)
		*seq = id;
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_free(struct accel_bm *bm, uint32_t seq)
{
	int ret = -ENOENT;

	if (!bm)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	if (bm_seq_get(bm, seq)) {
		seq_del(bm, seq);
		ret = 0;
	}
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_fork(struct accel_bm *bm, uint32_t seq, uint32_t *child)
{
	struct bm_seq *q, *c = NULL;
	uint32_t id = BM_NONE;
	int ret;

	if (!bm || !child)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (!ret)
		ret = seq_new(bm, q->tier, &id, &c);
	if (!ret) {
		q = &bm->seq[seq];	/* seq_new() may have moved the array */
		ret = tok_reserve(c, q->s.nr_tokens);
	}
	if (!ret)
		ret = kv_seq_fork(&bm->tier[q->tier].pool, &q->s, &c->s);
	if (!ret) {
		if (q->s.nr_tokens)
			memcpy(c->tok, q->tok, q->s.nr_tokens * sizeof(*c->tok));
		*child = id;
	} else if (id != BM_NONE) {
		seq_del(bm, id);
	}
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

/* Shared checks of start and append: 0 or -errno. */
static int tokens_ok(const struct accel_bm *bm, const struct bm_seq *q, const int32_t *tokens,
		     uint64_t n)
{
	if (n && !tokens)
		return -EINVAL;
	if (n > UINT64_MAX - q->s.nr_tokens ||
	    (q->s.nr_tokens + n) / bm->block_tokens >= KV_NO_BLOCK / 4)
		return -E2BIG;
	return 0;
}

ACCEL_EXPORT int accel_bm_seq_start(struct accel_bm *bm, uint32_t seq, const int32_t *tokens,
				    uint64_t n, const struct accel_bm_key *keys,
				    uint64_t *cached_tokens)
{
	struct bm_tier *t;
	struct bm_seq *q;
	uint64_t cached = 0;
	int ret;

	if (!bm)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (!ret)
		ret = q->s.nr_tokens ? -EINVAL : tokens_ok(bm, q, tokens, n);
	if (!ret)
		ret = tok_reserve(q, n);
	if (ret)
		goto out;
	t = &bm->tier[q->tier];
	bm_make_room(bm, q->tier, (uint32_t)blocks_for(bm, n));
	ret = kv_seq_start_keys(&t->pool, &q->s, tokens, n, (const struct kv_key *)keys,
				&cached, NULL, bm_prep(bm, q->tier));
	if (ret)
		goto out;
	if (n)
		memcpy(q->tok, tokens, n * sizeof(*tokens));
	t->hits += cached / bm->block_tokens;
	t->misses += q->s.nr_blocks - cached / bm->block_tokens;
	if (cached_tokens)
		*cached_tokens = cached;
out:
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_append(struct accel_bm *bm, uint32_t seq, const int32_t *tokens,
				 uint64_t n, const struct accel_bm_key *keys,
				 struct accel_bm_plan *plan)
{
	struct kv_copies copies = { 0 };
	uint32_t slot = BM_NONE, need;
	struct bm_plan *pl = NULL;
	struct kv_pool *p;
	uint64_t old_tokens;
	struct bm_seq *q;
	bool cow;
	int ret;

	if (!bm)
		return -EINVAL;
	ret = accel_opts_valid(plan, sizeof(*plan));
	if (ret)
		return ret;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (!ret)
		ret = tokens_ok(bm, q, tokens, n);
	if (ret || !n)
		goto report;
	p = &bm->tier[q->tier].pool;
	cow = kv_seq_tail_shared(p, &q->s);
	if (cow && !plan) {
		ret = -EINVAL;
		goto out;
	}
	old_tokens = q->s.nr_tokens;
	ret = tok_reserve(q, old_tokens + n);
	if (!ret && cow) {
		/* Everything the plan needs, before the append changes anything. */
		slot = bm_plan_new(bm, BM_PLAN_COW, seq, 2, 1);
		pl = slot != BM_NONE ? &bm->plan[slot] : NULL;
		if (pl)
			pl->old_tail_tokens = malloc(bm->block_tokens * sizeof(int32_t));
		if (!pl || !pl->old_tail_tokens)
			ret = -ENOMEM;
	}
	if (ret)
		goto fail;
	if (cow) {
		pl->old_tokens = old_tokens;
		pl->old_tail = q->s.blocks[q->s.nr_blocks - 1];
		memcpy(pl->old_tail_tokens, q->s.tail, bm->block_tokens * sizeof(int32_t));
		/* The block copied from stays alive (and unevicted) for the copy. */
		bm_plan_reserve(bm, pl, q->tier, pl->old_tail);
	}
	need = (uint32_t)(blocks_for(bm, old_tokens + n) - q->s.nr_blocks) + cow;
	bm_make_room(bm, q->tier, need);
	ret = kv_seq_append_keys(p, &q->s, tokens, n, (const struct kv_key *)keys, &copies,
				 bm_prep(bm, q->tier));
	if (ret)
		goto fail;
	memcpy(q->tok + old_tokens, tokens, n * sizeof(*tokens));
	/* The blocks written from here on differ from any copy kept elsewhere. */
	bm_shadow_drop(bm, q, (uint32_t)(old_tokens / bm->block_tokens));
	if (pl) {
		bm_plan_reserve(bm, pl, q->tier, copies.v[0].dst);
		pl->runs[0] = (struct accel_bm_run) { q->tier, copies.v[0].src, q->tier,
						      copies.v[0].dst, 1 };
		pl->nr_runs = 1;
		q->plan = slot;
	}
report:
	if (plan && !ret)
		bm_plan_report(bm, slot, plan, slot != BM_NONE, 0);
	goto out;
fail:
	if (slot != BM_NONE)
		bm_plan_free(bm, slot);
out:
	pthread_mutex_unlock(&bm->lock);
	kv_copies_fini(&copies);
	return ret;
}

ACCEL_EXPORT int accel_bm_commit(struct accel_bm *bm, uint32_t seq, uint32_t up_to_block)
{
	struct bm_seq *q;
	int ret;

	if (!bm)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (!ret)
		ret = kv_seq_commit(&bm->tier[q->tier].pool, &q->s, up_to_block);
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_written(struct accel_bm *bm, uint32_t seq, uint32_t first_block)
{
	struct bm_seq *q;
	int ret;

	if (!bm)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (!ret && first_block >= q->s.nr_blocks)
		ret = -ERANGE;
	if (!ret)
		bm_shadow_drop(bm, q, first_block);
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_truncate(struct accel_bm *bm, uint32_t seq, uint64_t n)
{
	struct bm_seq *q;
	uint64_t left;
	int ret;

	if (!bm)
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (ret)
		goto out;
	left = n < q->s.nr_tokens ? q->s.nr_tokens - n : 0;
	ret = (int)kv_seq_truncate(&bm->tier[q->tier].pool, &q->s, n,
				   q->tok + left / bm->block_tokens * bm->block_tokens);
	bm_shadow_drop(bm, q, q->s.nr_blocks);
out:
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_export(struct accel_bm *bm, uint32_t seq, uint8_t *own,
				     uint32_t max)
{
	struct kv_pool *p;
	struct bm_seq *q;
	uint32_t i;
	int ret;

	if (!bm || (max && !own))
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	ret = seq_mut(bm, seq, &q);
	if (ret)
		goto out;
	if (q->s.nr_blocks > max) {
		ret = -ENOBUFS;
		goto out;
	}
	p = &bm->tier[q->tier].pool;
	for (i = 0; i < q->s.nr_blocks; i++) {
		uint32_t b = q->s.blocks[i];

		own[i] = kv_pool_refs(p, b) == 1;
		if (!own[i])
			continue;
		kv_pool_unpublish(p, b);
		q->s.pub[i] = 0;
	}
	q->s.nr_committed = 0;	/* a commit publishes them again */
	ret = (int)q->s.nr_blocks;
out:
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

/* ---- reading ---- */

ACCEL_EXPORT int accel_bm_seq_info(struct accel_bm *bm, uint32_t seq,
				   struct accel_bm_seq_info *info)
{
	struct accel_bm_seq_info v = { .sz = sizeof(v) };
	struct bm_seq *q;
	int ret;

	if (!bm || !info)
		return -EINVAL;
	ret = accel_opts_valid(info, sizeof(*info));
	if (ret)
		return ret;
	pthread_mutex_lock(&bm->lock);
	q = bm_seq_get(bm, seq);
	if (q) {
		v.tier = q->tier;
		v.nr_blocks = q->s.nr_blocks;
		v.nr_tokens = q->s.nr_tokens;
		v.nr_committed = q->s.nr_committed;
		v.plan_id = q->plan != BM_NONE ? bm->plan[q->plan].id : 0;
	}
	pthread_mutex_unlock(&bm->lock);
	if (!q)
		return -ENOENT;
	memcpy((char *)info + sizeof(size_t), (char *)&v + sizeof(size_t),
	       (info->sz < sizeof(v) ? info->sz : sizeof(v)) - sizeof(size_t));
	return 0;
}

ACCEL_EXPORT int accel_bm_block_tables(struct accel_bm *bm, const uint32_t *seqs, uint32_t n,
				       uint32_t *offsets, uint32_t *ids, uint32_t max_ids,
				       uint32_t *tiers)
{
	uint64_t total = 0;
	uint32_t i;
	int ret = 0;

	if (!bm || (n && (!seqs || !offsets)) || (max_ids && !ids))
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	for (i = 0; i < n; i++) {
		const struct bm_seq *q = bm_seq_get(bm, seqs[i]);

		if (!q) {
			ret = -ENOENT;
			goto out;
		}
		total += q->s.nr_blocks;
		if (total > INT32_MAX) {
			ret = -E2BIG;
			goto out;
		}
	}
	for (i = 0, total = 0; i < n; i++) {
		offsets[i] = (uint32_t)total;
		total += bm->seq[seqs[i]].s.nr_blocks;
	}
	if (n)
		offsets[n] = (uint32_t)total;
	if (total > max_ids) {
		ret = -ENOBUFS;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct bm_seq *q = &bm->seq[seqs[i]];

		if (q->s.nr_blocks)
			memcpy(ids + offsets[i], q->s.blocks, q->s.nr_blocks * sizeof(*ids));
		if (tiers)
			tiers[i] = q->tier;
	}
	ret = (int)total;
out:
	pthread_mutex_unlock(&bm->lock);
	return ret;
}

ACCEL_EXPORT int accel_bm_seq_keys(struct accel_bm *bm, uint32_t seq, uint32_t first,
				   uint32_t n, struct accel_bm_key *keys)
{
	struct bm_seq *q;
	int ret = 0;

	if (!bm || (n && !keys))
		return -EINVAL;
	pthread_mutex_lock(&bm->lock);
	q = bm_seq_get(bm, seq);
	if (!q)
		ret = -ENOENT;
	else if ((uint64_t)first + n > q->s.nr_blocks)
		ret = -ERANGE;
	else if (n)
		memcpy(keys, q->s.keys + first, n * sizeof(*keys));
	pthread_mutex_unlock(&bm->lock);
	return ret;
}
