// SPDX-License-Identifier: GPL-2.0-only
/*
 * A model-based test (cmocka, ASan/UBSan) of the block manager: long
 * seeded random runs of create + start, append, fork, free, commit,
 * truncate, move between three tiers and plan completions (some failing)
 * with the tiers under pressure, LRU and ARC. After every operation:
 * - bm_check(): every block's references are exactly its holders (tables,
 *   still-valid copies, undo records, plan reservations), the free and
 *   cached counts and lists agree, ARC's lists are within their bounds;
 * - against the reference model kept here: each sequence's tier, tokens,
 *   committed blocks and pending plan; block tables (batched) of the right
 *   length with ids inside their tier; reservations = 2 x the blocks of
 *   the plans pending; free + cached + used = blocks on every tier; a
 *   lookup finds only keys committed on that tier at some time (commit
 *   gates publication), and at least each sequence's leading committed
 *   blocks whose block is keyed; truncate and failed plans restore what
 *   the model says.
 * Tier 0 has a prepare hook (the KV cache's, bm.h) that checks it is given
 * fresh blocks only and fails now and then (the operation undone); some
 * moves carry the KV cache's flags (drop the old tier's blocks, a plan
 * even with nothing to copy).
 * The seed is printed; BM_MODEL_SEED=N replays one, BM_MODEL_OPS=N sets
 * the budget (default 20000 per eviction policy).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "internal.h"
#include "bm/bm.h"

enum { BT = 4, TIERS = 3, SEQS = 24, MAXTOK = 96, KEYS = 4096 };

static const uint32_t tier_blocks[TIERS] = { 40, 56, 24 };

struct mseq {
	bool live;
	uint32_t id, tier, salt;
	int32_t tok[MAXTOK + 8];
	uint32_t n, committed;
	uint64_t plan;
};

struct mplan {
	uint64_t id;
	int seq;		/* index in ms[], -1 once freed */
	bool move;
	uint32_t old_tier, old_n, blocks;
};

static struct mseq ms[SEQS];
static struct mplan mp[SEQS];
/* Keys ever committed on each tier (a set, linear). */
static struct accel_bm_key may[TIERS][KEYS];
static uint32_t nr_may[TIERS];
static uint32_t rng;
static unsigned long op_nr;

static uint32_t rnd(uint32_t n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) % n;
}

static bool in_may(uint32_t t, const struct accel_bm_key *k)
{
	for (uint32_t i = 0; i < nr_may[t]; i++)
		if (!memcmp(&may[t][i], k, sizeof(*k)))
			return true;
	return false;
}

static void add_may(uint32_t t, const struct accel_bm_key *k)
{
	if (!in_may(t, k)) {
		assert_true(nr_may[t] < KEYS);
		may[t][nr_may[t]++] = *k;
	}
}

static int keys_of(struct accel_bm *bm, const struct mseq *m, struct accel_bm_key *k)
{
	return accel_bm_keys(bm, NULL, m->tok, m->n, m->salt ? "salt" : NULL, m->salt ? 4 : 0, k);
}

static void commit_may(struct accel_bm *bm, const struct mseq *m)
{
	struct accel_bm_key k[MAXTOK / BT + 2];
	uint32_t i;

	assert_true(keys_of(bm, m, k) >= 0);
	for (i = 0; i < m->committed; i++)
		add_may(m->tier, &k[i]);
}

static struct mplan *plan_add(uint64_t id, int seq, bool move, uint32_t old_tier,
			      uint32_t old_n, uint32_t blocks)
{
	for (int i = 0; i < SEQS; i++)
		if (!mp[i].id) {
			mp[i] = (struct mplan) { id, seq, move, old_tier, old_n, blocks };
			return &mp[i];
		}
	fail_msg("too many plans");
	return NULL;
}

static void verify(struct accel_bm *bm)
{
	uint32_t seqs[SEQS], off[SEQS + 1], ids[SEQS * (MAXTOK / BT + 4)], tiers[SEQS];
	uint32_t n = 0, i, t, res = 0, want_res = 0;
	char why[256] = "";
	int ret;

	ret = bm_check(bm, why, sizeof(why));
	if (ret)
		fail_msg("op %lu: bm_check: %s", op_nr, why);
	for (i = 0; i < SEQS; i++) {
		ACCEL_OPTS(accel_bm_seq_info, info);
		struct mseq *m = &ms[i];

		if (!m->live)
			continue;
		assert_int_equal(0, accel_bm_seq_info(bm, m->id, &info));
		if (info.tier != m->tier || info.nr_tokens != m->n ||
		    info.nr_committed != m->committed || info.plan_id != m->plan ||
		    info.nr_blocks != (m->n + BT - 1) / BT)
			fail_msg("op %lu: seq %u: tier %u/%u tokens %llu/%u committed %u/%u plan %llx/%llx",
				 op_nr, m->id, info.tier, m->tier,
				 (unsigned long long)info.nr_tokens, m->n, info.nr_committed,
				 m->committed, (unsigned long long)info.plan_id,
				 (unsigned long long)m->plan);
		seqs[n++] = m->id;
	}
	ret = accel_bm_block_tables(bm, seqs, n, off, ids, sizeof(ids) / sizeof(ids[0]), tiers);
	assert_true(ret >= 0);
	for (i = 0, n = 0; i < SEQS; i++) {
		struct mseq *m = &ms[i];
		uint32_t j;

		if (!m->live)
			continue;
		assert_int_equal((m->n + BT - 1) / BT, off[n + 1] - off[n]);
		assert_int_equal(m->tier, tiers[n]);
		for (j = off[n]; j < off[n + 1]; j++)
			assert_true(ids[j] < tier_blocks[m->tier]);
		n++;
	}
	for (i = 0; i < SEQS; i++)
		want_res += mp[i].id ? 2 * mp[i].blocks : 0;
	for (t = 0; t < TIERS; t++) {
		ACCEL_OPTS(accel_bm_tier_stats, st);

		assert_int_equal(0, accel_bm_tier_stats(bm, t, &st));
		assert_int_equal(tier_blocks[t], st.free + st.cached + st.used);
		assert_int_equal(st.cached, st.arc_t1 + st.arc_t2);
		assert_true(st.arc_t1 + st.arc_b1 <= st.blocks);
		assert_true(st.arc_b1 + st.arc_b2 <= st.blocks);
		assert_true(st.arc_p <= st.blocks);
		res += st.reserved;
	}
	if (res != want_res)
		fail_msg("op %lu: %u reserved, the plans pending reserve %u", op_nr, res, want_res);
	/* Lookup: only keys committed there at some point; at least what a table holds keyed. */
	for (i = 0; i < SEQS; i++) {
		struct accel_bm_key k[MAXTOK / BT + 2];
		struct mseq *m = &ms[i];
		uint32_t hits[TIERS], nk, j, must = 0;
		const struct kv_pool *p;
		struct bm_seq *q;

		if (!m->live)
			continue;
		nk = (uint32_t)keys_of(bm, m, k);
		assert_int_equal(0, accel_bm_lookup(bm, k, nk, hits));
		for (t = 0; t < TIERS; t++)
			for (j = 0; j < hits[t]; j++)
				if (!in_may(t, &k[j]))
					fail_msg("op %lu: seq %u block %u found on tier %u, never committed there",
						 op_nr, m->id, j, t);
		if (m->plan)
			continue;
		q = bm_seq_get(bm, m->id);
		p = &bm->tier[m->tier].pool;
		while (must < m->committed && kv_pool_keyed(p, q->s.blocks[must]))
			must++;
		if (hits[m->tier] < must)
			fail_msg("op %lu: seq %u: %u of its %u keyed committed blocks found", op_nr,
				 m->id, hits[m->tier], must);
	}
}

static struct mseq *pick(bool idle)
{
	for (int tries = 0; tries < 8; tries++) {
		struct mseq *m = &ms[rnd(SEQS)];

		if (m->live && (!idle || !m->plan))
			return m;
	}
	return NULL;
}

/*
 * Tier 0's prepare hook (the KV cache's cuda backend maps memory there):
 * every block it is given is fresh (one reference, no key); it fails one
 * call in 25, which must undo the operation.
 */
static unsigned long prep_calls, prep_fails;

static int prep_hook(void *arg, const uint32_t *blocks, uint32_t n)
{
	const struct kv_pool *p = &((struct accel_bm *)arg)->tier[0].pool;

	for (uint32_t i = 0; i < n; i++) {
		assert_true(blocks[i] < p->nr_blocks);
		assert_int_equal(1, p->refs[blocks[i]]);
		assert_false(kv_pool_keyed(p, blocks[i]));
	}
	prep_calls++;
	if (rnd(25))
		return 0;
	prep_fails++;
	return -ENOMEM;
}

static void gen_tokens(int32_t *t, uint32_t n, uint32_t from)
{
	/* Few distinct prefixes, so prompts share blocks. */
	uint32_t family = rnd(3);

	for (uint32_t i = 0; i < n; i++)
		t[i] = (int32_t)((from + i) < 12 ? family * 100 + from + i : rnd(3));
}

static void op_create(struct accel_bm *bm)
{
	ACCEL_OPTS(accel_bm_seq_opts, o);
	struct mseq *m = NULL;
	uint64_t cached;
	uint32_t n = rnd(MAXTOK / 2);
	int i, ret;

	for (i = 0; i < SEQS; i++)
		if (!ms[i].live) {
			m = &ms[i];
			break;
		}
	if (!m)
		return;
	memset(m, 0, sizeof(*m));
	m->tier = rnd(TIERS);
	m->salt = rnd(4) == 0;
	o.tier = m->tier;
	o.extra_keys = m->salt ? "salt" : NULL;
	o.extra_keys_len = m->salt ? 4 : 0;
	assert_int_equal(0, accel_bm_seq_create(bm, &o, &m->id));
	gen_tokens(m->tok, n, 0);
	ret = accel_bm_seq_start(bm, m->id, m->tok, n, NULL, &cached);
	if (ret == -ENOSPC || (ret == -ENOMEM && m->tier == 0)) {
		assert_int_equal(0, accel_bm_seq_free(bm, m->id));
		return;
	}
	assert_int_equal(0, ret);
	assert_true(cached % BT == 0 && cached <= n);
	m->live = true;
	m->n = n;
	m->committed = (uint32_t)(cached / BT);
}

static void op_append(struct accel_bm *bm)
{
	ACCEL_OPTS(accel_bm_plan, plan);
	struct mseq *m = pick(false);
	uint32_t k = 1 + rnd(rnd(4) ? 2 : 9);
	int ret;

	if (!m || m->n + k > MAXTOK)
		return;
	gen_tokens(m->tok + m->n, k, m->n);
	ret = accel_bm_append(bm, m->id, m->tok + m->n, k, NULL, &plan);
	if (m->plan) {
		assert_int_equal(-EBUSY, ret);
		return;
	}
	if (ret == -ENOSPC || (ret == -ENOMEM && m->tier == 0))
		return;
	assert_int_equal(0, ret);
	if (plan.id) {
		assert_int_equal(1, plan.blocks);
		assert_int_equal(1, plan.nr_runs);
		plan_add(plan.id, (int)(m - ms), false, m->tier, m->n, 1);
		m->plan = plan.id;
	}
	m->n += k;
}

static void op_fork(struct accel_bm *bm)
{
	struct mseq *m = pick(false), *c = NULL;
	uint32_t id;
	int i, ret;

	if (!m)
		return;
	for (i = 0; i < SEQS; i++)
		if (!ms[i].live) {
			c = &ms[i];
			break;
		}
	if (!c)
		return;
	ret = accel_bm_seq_fork(bm, m->id, &id);
	if (m->plan) {
		assert_int_equal(-EBUSY, ret);
		return;
	}
	assert_int_equal(0, ret);
	*c = *m;
	c->id = id;
	c->plan = 0;
}

static void op_free(struct accel_bm *bm)
{
	struct mseq *m = pick(false);

	if (!m)
		return;
	assert_int_equal(0, accel_bm_seq_free(bm, m->id));
	for (int i = 0; i < SEQS; i++)
		if (mp[i].id && mp[i].seq == m - ms)
			mp[i].seq = -1;
	m->live = false;
}

static void op_commit(struct accel_bm *bm)
{
	struct mseq *m = pick(false);
	uint32_t up, full;
	int ret;

	if (!m)
		return;
	full = m->n / BT;
	up = rnd(full + 2);
	ret = accel_bm_commit(bm, m->id, up);
	if (m->plan) {
		assert_int_equal(-EBUSY, ret);
		return;
	}
	if (up > full) {
		assert_int_equal(-ERANGE, ret);
		return;
	}
	assert_true(ret >= 0);
	if (up > m->committed)
		m->committed = up;
	commit_may(bm, m);
}

static void op_truncate(struct accel_bm *bm)
{
	struct mseq *m = pick(false);
	uint32_t k = rnd(rnd(8) ? 6 : MAXTOK);
	int ret;

	if (!m)
		return;
	ret = accel_bm_truncate(bm, m->id, k);
	if (m->plan) {
		assert_int_equal(-EBUSY, ret);
		return;
	}
	assert_true(ret >= 0);
	assert_int_equal((m->n + BT - 1) / BT - (m->n - (k < m->n ? k : m->n) + BT - 1) / BT,
			 ret);
	m->n -= k < m->n ? k : m->n;
	if (m->committed > m->n / BT)
		m->committed = m->n / BT;
}

static void op_move(struct accel_bm *bm)
{
	struct accel_bm_run runs[4];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = runs, .max_runs = 4);
	struct mseq *m = pick(false);
	uint32_t t = rnd(TIERS), sum = 0, i;
	/* The KV cache's flags (bm.h) on some moves. */
	uint32_t flags = rnd(2) ? 0 : rnd(4);
	struct accel_bm_run all[MAXTOK / BT + 2];
	int ret;

	if (!m)
		return;
	ret = flags ? bm_seq_move(bm, m->id, t, flags, &plan) :
	      accel_bm_seq_move(bm, m->id, t, &plan);
	if (m->plan) {
		assert_int_equal(-EBUSY, ret);
		return;
	}
	if (t == m->tier) {
		assert_int_equal(-EALREADY, ret);
		return;
	}
	if (ret == -ENOSPC || (ret == -ENOMEM && t == 0))
		return;
	assert_int_equal(0, ret);
	assert_int_equal((m->n + BT - 1) / BT, plan.blocks + plan.reused);
	if (flags & BM_MOVE_PLAN_ALWAYS)
		assert_true(plan.id != 0);
	if (!plan.id) {
		assert_int_equal(0, plan.blocks);
		m->tier = t;
		commit_may(bm, m);
		return;
	}
	assert_int_equal((int)plan.nr_runs, accel_bm_plan_runs(bm, plan.id, 0, all,
							       MAXTOK / BT + 2));
	for (i = 0; i < plan.nr_runs; i++) {
		assert_int_equal(m->tier, all[i].src_tier);
		assert_int_equal(t, all[i].dst_tier);
		assert_true(all[i].src_block + all[i].count <= tier_blocks[m->tier]);
		assert_true(all[i].dst_block + all[i].count <= tier_blocks[t]);
		sum += all[i].count;
		if (i < 4)
			assert_memory_equal(&runs[i], &all[i], sizeof(runs[i]));
	}
	assert_int_equal(plan.blocks, sum);
	plan_add(plan.id, (int)(m - ms), true, m->tier, m->n, plan.blocks);
	m->plan = plan.id;
	m->tier = t;
}

static void op_done(struct accel_bm *bm)
{
	struct mplan *pl = &mp[rnd(SEQS)];
	int status = rnd(5) ? 0 : -EIO;

	if (!pl->id)
		return;
	assert_int_equal(0, accel_bm_plan_done(bm, pl->id, status));
	assert_int_equal(-ENOENT, accel_bm_plan_done(bm, pl->id, 0));
	if (pl->seq >= 0) {
		struct mseq *m = &ms[pl->seq];

		m->plan = 0;
		if (status && pl->move) {
			m->tier = pl->old_tier;
		} else if (status) {
			m->n = pl->old_n;
			if (m->committed > m->n / BT)
				m->committed = m->n / BT;
		} else if (pl->move) {
			commit_may(bm, m);
		}
	}
	memset(pl, 0, sizeof(*pl));
}

static void run(uint32_t evict, uint32_t seed, unsigned long ops)
{
	ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = BT, .nr_tiers = TIERS,
		   .tier_blocks = tier_blocks, .evict = evict, .max_run = 3,
		   .arc_ghosts = evict ? 16 : 0);
	struct accel_bm *bm = accel_bm_create(&cfg);
	unsigned long counts[8] = { 0 };

	assert_non_null(bm);
	bm_set_prepare(bm, 0, &(struct kv_prepare) { prep_hook, bm });
	prep_calls = prep_fails = 0;
	memset(ms, 0, sizeof(ms));
	memset(mp, 0, sizeof(mp));
	memset(nr_may, 0, sizeof(nr_may));
	rng = seed;
	for (op_nr = 0; op_nr < ops; op_nr++) {
		uint32_t o = rnd(16);

		if (o < 3)
			o = 0;
		else if (o < 6)
			o = 1;
		else
			o = o < 7 ? 2 : o < 9 ? 3 : o < 11 ? 4 : o < 12 ? 5 : o < 14 ? 6 : 7;
		counts[o]++;
		switch (o) {
		case 0: op_create(bm); break;
		case 1: op_append(bm); break;
		case 2: op_fork(bm); break;
		case 3: op_free(bm); break;
		case 4: op_commit(bm); break;
		case 5: op_truncate(bm); break;
		case 6: op_move(bm); break;
		default: op_done(bm); break;
		}
		verify(bm);
	}
	for (int t = 0; t < TIERS; t++) {
		ACCEL_OPTS(accel_bm_tier_stats, st);

		accel_bm_tier_stats(bm, t, &st);
		printf("# %s tier %d: %llu evictions, %llu hits, %llu misses, p %u, B1 %u B2 %u\n",
		       evict ? "arc" : "lru", t, (unsigned long long)st.evictions,
		       (unsigned long long)st.hits, (unsigned long long)st.misses, st.arc_p,
		       st.arc_b1, st.arc_b2);
	}
	printf("# prepare hook: %lu calls, %lu failed\n", prep_calls, prep_fails);
	printf("# ops: %lu create %lu append %lu fork %lu free %lu commit %lu truncate %lu move %lu done\n",
	       counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
	       counts[7]);
	accel_bm_destroy(bm);
}

static uint32_t seed;
static unsigned long budget = 20000;

static void model_lru(void **state)
{
	(void)state;
	run(ACCEL_BM_EVICT_LRU, seed, budget);
}

static void model_arc(void **state)
{
	(void)state;
	run(ACCEL_BM_EVICT_ARC, seed + 1, budget);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_lru),
		cmocka_unit_test(model_arc),
	};
	const char *s = getenv("BM_MODEL_SEED"), *o = getenv("BM_MODEL_OPS");

	seed = s ? (uint32_t)strtoul(s, NULL, 0) : (uint32_t)time(NULL);
	if (o)
		budget = strtoul(o, NULL, 0);
	printf("# bm_model: seed %u (BM_MODEL_SEED=%u replays), %lu ops per policy\n", seed,
	       seed, budget);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
