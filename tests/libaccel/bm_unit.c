// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native unit tests (cmocka, ASan/UBSan) of the block manager
 * (accel_bm_*), one operation at a time: creation and its checks, keys and
 * side-effect-free lookup, start with prefix hits, commit gating, append
 * and copy-on-write plans (done and failed), fork, truncate (publisher and
 * not), moves between tiers with still-valid copies reused and failed
 * moves undone, reservations outliving a freed sequence, batched block
 * tables, LRU and ARC eviction, a sequence's room reserved up front; the
 * KV cache's hooks (a prepare hook per tier, moves that drop the old
 * tier's blocks or always give a plan).
 * bm_check() recounts every reference after each test step.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"
#include "bm/bm.h"

enum { BT = 4 };

static void check(struct accel_bm *bm)
{
	char why[256] = "";
	int ret = bm_check(bm, why, sizeof(why));

	if (ret)
		fail_msg("bm_check: %s", why);
}

static struct accel_bm *mk(uint32_t dev, uint32_t host, uint32_t evict)
{
	uint32_t blocks[2] = { dev, host };
	ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = BT, .nr_tiers = host ? 2 : 1,
		   .tier_blocks = blocks, .evict = evict);
	struct accel_bm *bm = accel_bm_create(&cfg);

	assert_non_null(bm);
	return bm;
}

static struct accel_bm_tier_stats stats(struct accel_bm *bm, uint32_t t)
{
	ACCEL_OPTS(accel_bm_tier_stats, st);

	assert_int_equal(0, accel_bm_tier_stats(bm, t, &st));
	return st;
}

static uint32_t seq_with(struct accel_bm *bm, uint32_t tier, const int32_t *tok, uint64_t n,
			 uint64_t *cached)
{
	ACCEL_OPTS(accel_bm_seq_opts, o, .tier = tier);
	uint32_t s;

	assert_int_equal(0, accel_bm_seq_create(bm, &o, &s));
	assert_int_equal(0, accel_bm_seq_start(bm, s, tok, n, NULL, cached));
	check(bm);
	return s;
}

static const int32_t T[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
			       19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void create_checks(void **state)
{
	uint32_t blocks[2] = { 8, 8 };
	struct accel_bm_config bad = { .sz = sizeof(bad), .block_tokens = 0, .nr_tiers = 1,
				       .tier_blocks = blocks };
	struct { struct accel_bm_config c; uint64_t more; } big = { { 0 }, 1 };

	(void)state;
	errno = 0;
	assert_null(accel_bm_create(NULL));
	assert_int_equal(EINVAL, errno);
	assert_null(accel_bm_create(&bad));
	bad.block_tokens = 4;
	bad.nr_tiers = ACCEL_BM_TIERS_MAX + 1;
	assert_null(accel_bm_create(&bad));
	bad.nr_tiers = 1;
	bad.evict = 7;
	assert_null(accel_bm_create(&bad));
	bad.evict = 0;
	bad.flags = 1;
	assert_null(accel_bm_create(&bad));
	big.c = (struct accel_bm_config) { .sz = sizeof(big), .block_tokens = 4, .nr_tiers = 1,
					    .tier_blocks = blocks };
	assert_null(accel_bm_create(&big.c));
	assert_int_equal(E2BIG, errno);
	big.more = 0;
	{
		struct accel_bm *bm = accel_bm_create(&big.c);
		struct accel_bm_tier_stats st = { .sz = offsetof(struct accel_bm_tier_stats, cached) };

		assert_non_null(bm);
		st.cached = 77;
		assert_int_equal(0, accel_bm_tier_stats(bm, 0, &st));
		assert_int_equal(offsetof(struct accel_bm_tier_stats, cached), st.sz);
		assert_int_equal(8, st.blocks);
		assert_int_equal(8, st.free);
		assert_int_equal(77, st.cached);	/* past sz: not written */
		assert_int_equal(-EINVAL, accel_bm_tier_stats(bm, 1, &st));
		accel_bm_destroy(bm);
	}
	accel_bm_destroy(NULL);
}

static void lookup_commit_gating(void **state)
{
	struct accel_bm *bm = mk(16, 16, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key keys[4];
	uint32_t hits[2], a, b;
	uint64_t cached = 99;

	(void)state;
	assert_int_equal(3, accel_bm_keys(bm, NULL, T, 14, NULL, 0, keys));
	a = seq_with(bm, 0, T, 14, &cached);
	assert_int_equal(0, cached);
	/* Appended, keyed, but not committed: not found. */
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(0, hits[0]);
	assert_int_equal(0, hits[1]);
	assert_int_equal(-ERANGE, accel_bm_commit(bm, a, 4));
	assert_int_equal(2, accel_bm_commit(bm, a, 2));
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(2, hits[0]);
	assert_int_equal(0, hits[1]);
	/* Lookup takes nothing: still 2 used + 2 more blocks of a, nothing cached. */
	assert_int_equal(0, stats(bm, 0).cached);
	assert_int_equal(4, stats(bm, 0).used);
	/* A second prompt shares the committed prefix only. */
	b = seq_with(bm, 0, T, 13, &cached);
	assert_int_equal(2 * BT, cached);
	assert_int_equal(1, accel_bm_commit(bm, a, 3));
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(3, hits[0]);
	assert_int_equal(0, accel_bm_seq_free(bm, a));
	assert_int_equal(0, accel_bm_seq_free(bm, b));
	check(bm);
	assert_int_equal(3, stats(bm, 0).cached);
	assert_int_equal(13, stats(bm, 0).free);
	/* Extra keys: a different salt shares nothing. */
	{
		ACCEL_OPTS(accel_bm_seq_opts, o, .extra_keys = "salt", .extra_keys_len = 4);
		uint32_t c;

		assert_int_equal(0, accel_bm_seq_create(bm, &o, &c));
		assert_int_equal(0, accel_bm_seq_start(bm, c, T, 12, NULL, &cached));
		assert_int_equal(0, cached);
		check(bm);
	}
	assert_int_equal(-ENOENT, accel_bm_commit(bm, 77, 0));
	accel_bm_destroy(bm);
}

static void cow_plan(void **state)
{
	struct accel_bm *bm = mk(16, 0, ACCEL_BM_EVICT_LRU);
	struct accel_bm_run run[2];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = run, .max_runs = 2);
	ACCEL_OPTS(accel_bm_seq_info, info);
	uint32_t a, c, ids[8], off[3], seqs[2];
	int32_t more = 42;

	(void)state;
	a = seq_with(bm, 0, T, 6, NULL);
	assert_int_equal(0, accel_bm_seq_fork(bm, a, &c));
	check(bm);
	/* The shared partial tail: the child needs a plan. */
	assert_int_equal(-EINVAL, accel_bm_append(bm, c, &more, 1, NULL, NULL));
	assert_int_equal(0, accel_bm_append(bm, c, &more, 1, NULL, &plan));
	assert_int_not_equal(0, plan.id);
	assert_int_equal(1, plan.nr_runs);
	assert_int_equal(1, plan.blocks);
	seqs[0] = a;
	seqs[1] = c;
	assert_int_equal(4, accel_bm_block_tables(bm, seqs, 2, off, ids, 8, NULL));
	assert_int_equal(ids[1], run[0].src_block);
	assert_int_equal(ids[3], run[0].dst_block);
	assert_int_equal(ids[0], ids[2]);
	assert_int_equal(-ENOBUFS, accel_bm_block_tables(bm, seqs, 2, off, ids, 3, NULL));
	assert_int_equal(4, off[2]);
	/* Busy until the plan is done; reservations counted. */
	assert_int_equal(-EBUSY, accel_bm_append(bm, c, &more, 1, NULL, &plan));
	assert_int_equal(2, stats(bm, 0).reserved);
	assert_int_equal(0, accel_bm_seq_info(bm, c, &info));
	assert_int_not_equal(0, info.plan_id);
	check(bm);
	/* A failed copy undoes the append. */
	assert_int_equal(0, accel_bm_plan_done(bm, info.plan_id, -EIO));
	assert_int_equal(-ENOENT, accel_bm_plan_done(bm, info.plan_id, 0));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, c, &info));
	assert_int_equal(6, info.nr_tokens);
	assert_int_equal(0, stats(bm, 0).reserved);
	assert_int_equal(2, accel_bm_block_tables(bm, &c, 1, off, ids, 8, NULL));
	assert_int_equal(ids[1], run[0].src_block);
	/* Again, and this time it works. */
	assert_int_equal(0, accel_bm_append(bm, c, &more, 1, NULL, &plan));
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	assert_int_equal(0, accel_bm_append(bm, c, &more, 1, NULL, &plan));
	assert_int_equal(0, plan.id);
	assert_int_equal(3, stats(bm, 0).used);
	accel_bm_destroy(bm);
}

static void truncate_publisher(void **state)
{
	struct accel_bm *bm = mk(16, 0, ACCEL_BM_EVICT_LRU);
	ACCEL_OPTS(accel_bm_plan, plan);
	struct accel_bm_key keys[3];
	uint32_t hits, a, b;
	int32_t x = 99;

	(void)state;
	assert_int_equal(3, accel_bm_keys(bm, NULL, T, 12, NULL, 0, keys));
	a = seq_with(bm, 0, T, 12, NULL);
	assert_int_equal(3, accel_bm_commit(bm, a, 3));
	/* Drop 2 tokens: block 2 is partial again, a published it alone: out of the cache. */
	assert_int_equal(0, accel_bm_truncate(bm, a, 2));
	check(bm);
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, &hits));
	assert_int_equal(2, hits);
	assert_int_equal(0, accel_bm_append(bm, a, &x, 1, NULL, &plan));
	assert_int_equal(0, plan.id);	/* written in place */
	/* b shares a's first two blocks; a truncates into block 1, which b holds. */
	b = seq_with(bm, 0, T, 8, NULL);
	assert_int_equal(1, accel_bm_truncate(bm, a, 6));
	check(bm);
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, &hits));
	assert_int_equal(2, hits);	/* still cached: b holds it */
	assert_int_equal(0, accel_bm_append(bm, a, &x, 1, NULL, &plan));
	assert_int_not_equal(0, plan.id);	/* copied first */
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	assert_int_equal(0, accel_bm_seq_free(bm, b));
	/* Not the publisher, alone on a cached block: it stays cached, append copies. */
	b = seq_with(bm, 0, T, 8, NULL);
	assert_int_equal(0, accel_bm_truncate(bm, b, 1));
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, &hits));
	assert_int_equal(2, hits);
	assert_int_equal(0, accel_bm_append(bm, b, &x, 1, NULL, &plan));
	assert_int_not_equal(0, plan.id);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	/* Truncating everything releases every block. */
	assert_int_equal(2, accel_bm_truncate(bm, b, 100));
	check(bm);
	accel_bm_destroy(bm);
}

static void move_reuse(void **state)
{
	struct accel_bm *bm = mk(8, 8, ACCEL_BM_EVICT_LRU);
	struct accel_bm_run run[4];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = run, .max_runs = 4);
	ACCEL_OPTS(accel_bm_seq_info, info);
	uint32_t a, ids[8], off[2], hits[2];
	struct accel_bm_key keys[3];
	int32_t x = 5;

	(void)state;
	assert_int_equal(2, accel_bm_keys(bm, NULL, T, 10, NULL, 0, keys));
	a = seq_with(bm, 0, T, 10, NULL);
	assert_int_equal(2, accel_bm_commit(bm, a, 2));
	assert_int_equal(-EALREADY, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(3, plan.blocks);
	assert_int_equal(0, plan.reused);
	assert_int_equal(1, plan.nr_runs);	/* 0,1,2 -> 0,1,2 coalesced */
	assert_int_equal(3, run[0].count);
	assert_int_equal(0, run[0].src_tier);
	assert_int_equal(1, run[0].dst_tier);
	assert_int_equal(1, accel_bm_plan_runs(bm, plan.id, 0, run, 4));
	/* The count alone (no room: NULL, 0), as callers size their arrays. */
	assert_int_equal(1, accel_bm_plan_runs(bm, plan.id, 0, NULL, 0));
	check(bm);
	/* Not on the host's prefix cache before the copies are done. */
	assert_int_equal(0, accel_bm_lookup(bm, keys, 2, hits));
	assert_int_equal(2, hits[0]);
	assert_int_equal(0, hits[1]);
	assert_int_equal(6, stats(bm, 0).reserved + stats(bm, 1).reserved);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	assert_int_equal(0, accel_bm_lookup(bm, keys, 2, hits));
	assert_int_equal(2, hits[1]);
	/* Back in: every block still valid on the device, nothing copied. */
	assert_int_equal(0, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(0, plan.id);
	assert_int_equal(0, plan.blocks);
	assert_int_equal(3, plan.reused);
	check(bm);
	/* Written on the device: out again copies the tail only. */
	assert_int_equal(0, accel_bm_append(bm, a, &x, 1, NULL, &plan));
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(1, plan.blocks);
	assert_int_equal(2, plan.reused);
	/* A failed move leaves it where it was. */
	assert_int_equal(2, accel_bm_block_tables(bm, &a, 1, off, ids, 8, NULL) - 1);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, -EIO));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, a, &info));
	assert_int_equal(0, info.tier);
	assert_int_equal(0, info.plan_id);
	/* Freed while its move is pending: the blocks stay reserved until done. */
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(0, accel_bm_seq_free(bm, a));
	check(bm);
	assert_int_equal(2, stats(bm, 0).reserved + stats(bm, 1).reserved);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	assert_int_equal(0, stats(bm, 0).used + stats(bm, 1).used);
	accel_bm_destroy(bm);
}

/* KV written again without an append (a resumed chunk): its kept copies are stale. */
/* A sequence's room up front: its errors, a hint not a limit, no reallocation within it. */
static void seq_reserve(void **state)
{
	struct accel_bm *bm = mk(24, 4, ACCEL_BM_EVICT_LRU);
	ACCEL_OPTS(accel_bm_seq_opts, o, .reserve_tokens = 24 * BT + 1);
	struct accel_bm_seq_opts old = { .sz = offsetof(struct accel_bm_seq_opts, reserve_tokens),
					 .reserve_tokens = 1000 };
	const struct kv_key *keys;
	const uint32_t *blocks;
	const int32_t *tok;
	int32_t v[24 * BT];
	struct bm_seq *q;
	uint32_t a, b, i;

	(void)state;
	for (i = 0; i < 24 * BT; i++)
		v[i] = (int32_t)i + 1;
	/* More than the tier holds: tier 0 has 24 blocks, tier 1 4. */
	assert_int_equal(-E2BIG, accel_bm_seq_create(bm, &o, &a));
	o.tier = 1;
	o.reserve_tokens = 4 * BT + 1;
	assert_int_equal(-E2BIG, accel_bm_seq_create(bm, &o, &a));
	assert_int_equal(0, stats(bm, 0).used);
	/* A caller that knows no reserve_tokens (its sz ends before it): none. */
	assert_int_equal(0, accel_bm_seq_create(bm, &old, &b));
	assert_int_equal(0, accel_bm_seq_free(bm, b));
	/* Room for 20 blocks: more than a sequence's tables start with (8, 64 tokens). */
	o.tier = 0;
	o.reserve_tokens = 20 * BT;
	assert_int_equal(0, accel_bm_seq_create(bm, &o, &a));
	q = bm_seq_get(bm, a);
	assert_non_null(q);
	assert_true(q->s.cap >= 20 && q->cap_tok >= 20 * BT);
	blocks = q->s.blocks;
	keys = q->s.keys;
	tok = q->tok;
	/* Start and append up to the room: the tables stay where they are. */
	assert_int_equal(0, accel_bm_seq_start(bm, a, v, 5, NULL, NULL));
	assert_int_equal(0, accel_bm_append(bm, a, v + 5, 20 * BT - 5, NULL, NULL));
	check(bm);
	assert_ptr_equal(blocks, q->s.blocks);
	assert_ptr_equal(keys, q->s.keys);
	assert_ptr_equal(tok, q->tok);
	/* Not a limit: it grows past the room. */
	assert_int_equal(0, accel_bm_append(bm, a, v + 20 * BT, 4 * BT, NULL, NULL));
	assert_int_equal(24, stats(bm, 0).used);
	check(bm);
	assert_int_equal(0, accel_bm_seq_free(bm, a));
	check(bm);
	accel_bm_destroy(bm);
}

static void seq_written(void **state)
{
	struct accel_bm *bm = mk(8, 8, ACCEL_BM_EVICT_LRU);
	struct accel_bm_run run[4];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = run, .max_runs = 4);
	uint32_t a;

	(void)state;
	a = seq_with(bm, 0, T, 10, NULL);	/* 3 blocks, none committed */
	assert_int_equal(-EINVAL, accel_bm_seq_written(NULL, a, 0));
	assert_int_equal(-ENOENT, accel_bm_seq_written(bm, a + 1, 0));
	assert_int_equal(-ERANGE, accel_bm_seq_written(bm, a, 3));
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(3, plan.blocks);
	assert_int_equal(-EBUSY, accel_bm_seq_written(bm, a, 0));
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	/* In again: the device copies are still valid, nothing copied. */
	assert_int_equal(0, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(3, plan.reused);
	/* Blocks 1 and 2 rewritten in place: out again copies them, reuses block 0. */
	assert_int_equal(0, accel_bm_seq_written(bm, a, 1));
	check(bm);
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(2, plan.blocks);
	assert_int_equal(1, plan.reused);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	accel_bm_destroy(bm);
}

/* accel_bm_evict: cached blocks first, then kept copies; its bad arguments. */
static void evict(void **state)
{
	struct accel_bm *bm = mk(8, 8, ACCEL_BM_EVICT_LRU);
	struct accel_bm_run run[4];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = run, .max_runs = 4);
	uint32_t a, b;

	(void)state;
	assert_int_equal(-EINVAL, accel_bm_evict(NULL, 0, 1));
	assert_int_equal(-EINVAL, accel_bm_evict(bm, 2, 1));
	assert_int_equal(-EINVAL, accel_bm_evict(bm, 0, (uint32_t)INT32_MAX + 1));
	assert_int_equal(0, accel_bm_evict(bm, 0, 4));		/* nothing to evict */
	a = seq_with(bm, 0, T, 10, NULL);			/* 3 blocks */
	assert_int_equal(2, accel_bm_commit(bm, a, 2));
	assert_int_equal(0, accel_bm_seq_free(bm, a));		/* 2 stay cached */
	assert_int_equal(8, stats(bm, 0).free + 2);
	assert_int_equal(1, accel_bm_evict(bm, 0, 1));
	assert_int_equal(1, accel_bm_evict(bm, 0, 8));
	assert_int_equal(8, stats(bm, 0).free);
	check(bm);
	/* A moved sequence's copies on tier 0 go next; its own blocks never. */
	b = seq_with(bm, 0, T, 10, NULL);
	assert_int_equal(0, accel_bm_seq_move(bm, b, 1, &plan));
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	assert_int_equal(3, accel_bm_evict(bm, 0, 8));
	assert_int_equal(8, stats(bm, 0).free);
	assert_int_equal(0, accel_bm_evict(bm, 1, 8));
	check(bm);
	accel_bm_destroy(bm);
}

static void no_space(void **state)
{
	struct accel_bm *bm = mk(4, 2, ACCEL_BM_EVICT_LRU);
	ACCEL_OPTS(accel_bm_plan, plan);
	uint32_t a, b;

	(void)state;
	a = seq_with(bm, 0, T, 12, NULL);
	assert_int_equal(-ENOSPC, accel_bm_seq_move(bm, a, 1, &plan));
	check(bm);
	assert_int_equal(0, accel_bm_seq_create(bm, NULL, &b));
	assert_int_equal(-ENOSPC, accel_bm_seq_start(bm, b, T, 8, NULL, NULL));
	check(bm);
	assert_int_equal(0, accel_bm_seq_start(bm, b, T, 4, NULL, NULL));
	assert_int_equal(-ENOSPC, accel_bm_append(bm, b, T, 1, NULL, &plan));
	check(bm);
	accel_bm_destroy(bm);
}

/* The KV cache's hooks (bm.h): a prepare hook per tier, and its swaps' move flags. */
struct prep_log {
	uint32_t calls, blocks, last[8];
	int fail;
};

static int prep_fn(void *arg, const uint32_t *blocks, uint32_t n)
{
	struct prep_log *l = arg;

	l->calls++;
	l->blocks += n;
	memcpy(l->last, blocks, (n < 8 ? n : 8) * sizeof(*blocks));
	return l->fail;
}

static void prepare_hook(void **state)
{
	struct accel_bm *bm = mk(8, 8, ACCEL_BM_EVICT_LRU);
	struct prep_log log = { 0 };
	struct kv_prepare prep = { prep_fn, &log };
	ACCEL_OPTS(accel_bm_plan, plan);
	ACCEL_OPTS(accel_bm_seq_info, info);
	uint32_t a, b, ids[8], off[2];
	int32_t x = 9;

	(void)state;
	bm_set_prepare(bm, 0, &prep);
	/* Every fresh block of tier 0, before the call returns. */
	a = seq_with(bm, 0, T, 6, NULL);
	assert_int_equal(1, log.calls);
	assert_int_equal(2, log.blocks);
	assert_int_equal(2, accel_bm_block_tables(bm, &a, 1, off, ids, 8, NULL));
	assert_int_equal(ids[0], log.last[0]);
	assert_int_equal(ids[1], log.last[1]);
	/* Shared blocks are not fresh: only the partial one. */
	assert_int_equal(1, accel_bm_commit(bm, a, 1));
	b = seq_with(bm, 0, T, 5, NULL);
	assert_int_equal(2, log.calls);
	assert_int_equal(3, log.blocks);
	/* A failing hook undoes the call: start, append, move. */
	log.fail = -ENOMEM;
	assert_int_equal(0, accel_bm_seq_free(bm, b));
	assert_int_equal(0, accel_bm_seq_create(bm, NULL, &b));
	assert_int_equal(-ENOMEM, accel_bm_seq_start(bm, b, T, 8, NULL, NULL));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, b, &info));
	assert_int_equal(0, info.nr_tokens);
	assert_int_equal(-ENOMEM, accel_bm_append(bm, a, T + 6, 4, NULL, &plan));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, a, &info));
	assert_int_equal(6, info.nr_tokens);
	/* Tier 1 has no hook; back on tier 0 every block is a still-valid copy: no call. */
	log.calls = 0;
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	assert_int_equal(0, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(0, plan.id);
	assert_int_equal(2, plan.reused);
	assert_int_equal(0, log.calls);
	/* Written on tier 1, the tail needs a fresh tier-0 block: the hook fails the move. */
	assert_int_equal(0, accel_bm_seq_move(bm, a, 1, &plan));
	assert_int_equal(0, plan.id);
	assert_int_equal(0, accel_bm_append(bm, a, &x, 1, NULL, &plan));
	assert_int_equal(0, plan.id);
	log.calls = 0;
	assert_int_equal(-ENOMEM, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(1, log.calls);
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, a, &info));
	assert_int_equal(1, info.tier);
	log.fail = 0;
	assert_int_equal(0, accel_bm_seq_move(bm, a, 0, &plan));
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	accel_bm_destroy(bm);
}

static void move_flags(void **state)
{
	struct accel_bm *bm = mk(8, 8, ACCEL_BM_EVICT_LRU);
	ACCEL_OPTS(accel_bm_plan, plan);
	ACCEL_OPTS(accel_bm_seq_info, info);
	uint32_t a;

	(void)state;
	a = seq_with(bm, 0, T, 10, NULL);
	assert_int_equal(2, accel_bm_commit(bm, a, 2));
	/* Drop the old tier's blocks once done: the keyed ones stay cached. */
	assert_int_equal(0, bm_seq_move(bm, a, 1, BM_MOVE_DROP_OLD, &plan));
	assert_int_equal(3, plan.blocks);
	assert_int_equal(3, stats(bm, 0).used);		/* held until done */
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	assert_int_equal(0, stats(bm, 0).used);
	assert_int_equal(2, stats(bm, 0).cached);
	assert_int_equal(6, stats(bm, 0).free);
	/* Back in: the two cached blocks by key, the partial one copied. */
	assert_int_equal(0, bm_seq_move(bm, a, 0, BM_MOVE_PLAN_ALWAYS, &plan));
	assert_int_equal(1, plan.blocks);
	assert_int_equal(2, plan.reused);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	/* Nothing to copy (every host copy still valid), but a plan all the same. */
	assert_int_equal(0, bm_seq_move(bm, a, 1, BM_MOVE_PLAN_ALWAYS | BM_MOVE_DROP_OLD,
					&plan));
	assert_int_not_equal(0, plan.id);
	assert_int_equal(0, plan.nr_runs);
	assert_int_equal(0, plan.blocks);
	assert_int_equal(3, plan.reused);
	assert_int_equal(0, accel_bm_plan_runs(bm, plan.id, 0, NULL, 0));
	assert_int_equal(-EBUSY, accel_bm_commit(bm, a, 2));
	check(bm);
	/* Undone: still on the device, its host copies still its own. */
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, -EIO));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, a, &info));
	assert_int_equal(0, info.tier);
	assert_int_equal(3, stats(bm, 1).used);
	assert_int_equal(0, bm_seq_move(bm, a, 1, BM_MOVE_PLAN_ALWAYS | BM_MOVE_DROP_OLD,
					&plan));
	assert_int_equal(3, plan.reused);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, 0));
	check(bm);
	assert_int_equal(0, accel_bm_seq_info(bm, a, &info));
	assert_int_equal(1, info.tier);
	assert_int_equal(0, stats(bm, 0).used);
	accel_bm_destroy(bm);
}

static void lru_and_arc(void **state)
{
	struct accel_bm *bm;
	struct accel_bm_key k[8];
	uint32_t s, hits, i, e;

	(void)state;
	for (e = 0; e < 2; e++) {
		bm = mk(4, 0, e);
		/* Four one-block prompts, cached in order 0..3. */
		for (i = 0; i < 4; i++) {
			int32_t t[BT] = { (int32_t)i, 1, 2, 3 };

			assert_int_equal(1, accel_bm_keys(bm, NULL, t, BT, NULL, 0, &k[i]));
			s = seq_with(bm, 0, t, BT, NULL);
			assert_int_equal(1, accel_bm_commit(bm, s, 1));
			assert_int_equal(0, accel_bm_seq_free(bm, s));
		}
		/* Prompt 0 again: a hit (ARC: into T2). */
		{
			int32_t t[BT] = { 0, 1, 2, 3 };
			uint64_t cached;

			s = seq_with(bm, 0, t, BT, &cached);
			assert_int_equal(BT, cached);
			assert_int_equal(0, accel_bm_seq_free(bm, s));
		}
		assert_int_equal(e ? 3 : 4, stats(bm, 0).arc_t1);
		assert_int_equal(e ? 1 : 0, stats(bm, 0).arc_t2);
		/* Two new blocks: the oldest go (LRU: 1 and 2; ARC: T1's 1 and 2 too). */
		s = seq_with(bm, 0, T, 2 * BT, NULL);
		check(bm);
		assert_int_equal(0, accel_bm_lookup(bm, &k[0], 1, &hits));
		assert_int_equal(1, hits);
		assert_int_equal(0, accel_bm_lookup(bm, &k[1], 1, &hits));
		assert_int_equal(0, hits);
		assert_int_equal(0, accel_bm_lookup(bm, &k[3], 1, &hits));
		assert_int_equal(1, hits);
		assert_int_equal(2, stats(bm, 0).evictions);
		if (e) {
			/* Ghosts of 1 and 2 in B1; publishing 1 again is a ghost hit: p grows. */
			int32_t t[BT] = { 1, 1, 2, 3 };
			uint32_t s2;

			assert_int_equal(2, stats(bm, 0).arc_b1);
			assert_int_equal(0, stats(bm, 0).arc_p);
			assert_int_equal(0, accel_bm_seq_free(bm, s));
			s2 = seq_with(bm, 0, t, BT, NULL);
			assert_int_equal(1, accel_bm_commit(bm, s2, 1));
			assert_int_equal(1, stats(bm, 0).arc_p);
			assert_int_equal(1, stats(bm, 0).arc_b1);
			assert_int_equal(0, accel_bm_seq_free(bm, s2));
			assert_int_equal(2, stats(bm, 0).arc_t2);
			check(bm);
		}
		accel_bm_destroy(bm);
	}
}

/*
 * accel_bm_seq_export(): the blocks only the sequence holds leave the
 * prefix cache (own 1), the shared ones stay (own 0); a commit publishes
 * them again; freed, the own ones are free, not cached.
 */
static void seq_export(void **state)
{
	struct accel_bm *bm = mk(16, 0, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key keys[4];
	uint32_t hits[2], a, b;
	uint8_t own[8];
	uint64_t cached;

	(void)state;
	assert_int_equal(3, accel_bm_keys(bm, NULL, T, 14, NULL, 0, keys));
	a = seq_with(bm, 0, T, 14, &cached);
	assert_int_equal(3, accel_bm_commit(bm, a, 3));
	b = seq_with(bm, 0, T, 5, &cached);	/* shares a's first block */
	assert_int_equal(BT, cached);
	assert_int_equal(-ENOBUFS, accel_bm_seq_export(bm, a, own, 3));
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(3, hits[0]);		/* nothing done */
	assert_int_equal(-EINVAL, accel_bm_seq_export(bm, a, NULL, 4));
	assert_int_equal(-ENOENT, accel_bm_seq_export(bm, 99, own, 8));
	assert_int_equal(4, accel_bm_seq_export(bm, a, own, 8));
	assert_int_equal(0, own[0]);		/* b holds it too */
	assert_int_equal(1, own[1]);
	assert_int_equal(1, own[2]);
	assert_int_equal(1, own[3]);		/* the partial block */
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(1, hits[0]);		/* only the shared one is found */
	check(bm);
	/* Undone: published again. */
	assert_int_equal(2, accel_bm_commit(bm, a, 3));
	assert_int_equal(0, accel_bm_lookup(bm, keys, 3, hits));
	assert_int_equal(3, hits[0]);
	/* Given away: freed, the own blocks are free, not cached. */
	assert_int_equal(4, accel_bm_seq_export(bm, a, own, 8));
	assert_int_equal(0, accel_bm_seq_free(bm, a));
	check(bm);
	assert_int_equal(0, stats(bm, 0).cached);
	assert_int_equal(2, stats(bm, 0).used);	/* b's two */
	assert_int_equal(0, accel_bm_seq_free(bm, b));
	check(bm);
	assert_int_equal(1, stats(bm, 0).cached);	/* the shared one, still published */
	accel_bm_destroy(bm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_checks),
		cmocka_unit_test(lookup_commit_gating),
		cmocka_unit_test(cow_plan),
		cmocka_unit_test(truncate_publisher),
		cmocka_unit_test(move_reuse),
		cmocka_unit_test(seq_written),
		cmocka_unit_test(seq_reserve),
		cmocka_unit_test(evict),
		cmocka_unit_test(no_space),
		cmocka_unit_test(lru_and_arc),
		cmocka_unit_test(prepare_hook),
		cmocka_unit_test(move_flags),
		cmocka_unit_test(seq_export),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
