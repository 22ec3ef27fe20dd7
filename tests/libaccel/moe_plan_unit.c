// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native unit tests (cmocka, ASan/UBSan) of the MoE planner's pure logic
 * (accel_moe_plan.h): the load statistics' window and co-activation
 * epochs; EPLB against vectors computed by hand and its constraints;
 * property tests over random shapes and loads; costs by hand; move plans
 * applied to the old placement (they give the new one, sources nearest,
 * rounds within max_inflight); the planner's goals against EPLB on
 * shifted Zipf loads (balance per layer no worse than the global policy,
 * cross-node traffic no worse than the hierarchical one, fewer moves than
 * both), its options, properties over random shapes, current placements
 * and options (a valid placement, balance no worse than EPLB global, the
 * move budget kept), and errors; EPLB's packing and replication against
 * naive models (linear scans, first index among equals) on weights full of
 * ties, zeros and -0.0. The comparison with the
 * Python oracle byte for byte is tests/libaccel/moe_eplb_oracle.c.
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

#include "accel.h"
#include "accel_moe_plan.h"
#include "moe/plan.h"
#include "moe_common.h"

#define TOPO(NAME, L, E, R, D, N, G) \
	ACCEL_OPTS(accel_moe_topo, NAME, .layers = (L), .experts = (E), .slots = (R), \
		   .devices = (D), .nodes = (N), .groups = (G))

/* --- EPLB's packing and replication against naive models ----------------- */

/* A weight from a few values (ties everywhere), zeros and -0.0 among them. */
static float tie_weight(uint64_t *seed)
{
	static const float v[] = { 0.0f, -0.0f, 1.0f, 1.0f, 2.5f, 3.0f, 3.0f, 1e6f, 0.125f };

	return moe_rand(seed) % 4 ? v[moe_rand(seed) % 9] : (float)(moe_rand(seed) % 1000) / 7;
}

/*
 * plan_pack's contract by linear scans: stable descending order, lightest
 * pack with room; one item per pack is item i in pack i (EPLB's shortcut).
 */
static void pack_model(const float *w, uint32_t n, uint32_t packs, uint32_t *pack,
		       uint32_t *rank)
{
	uint32_t per = n / packs, *order = malloc(n * sizeof(*order)), *items, i, j, p;
	float *pw = calloc(packs, sizeof(*pw));

	items = calloc(packs, sizeof(*items));
	assert_non_null(order);
	assert_non_null(pw);
	assert_non_null(items);
	for (i = 0; i < n; i++) {
		order[i] = i;
		pack[i] = per == 1 ? i : UINT32_MAX;
		rank[i] = 0;
	}
	for (i = 0; i < n && per > 1; i++) {
		/* Insertion: after every item at least as heavy (stable). */
		for (j = i; j > 0 && w[order[j - 1]] < w[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (i = 0; i < n && per > 1; i++) {
		uint32_t best = UINT32_MAX, it = order[i];

		for (p = 0; p < packs; p++)
			if (items[p] < per && (best == UINT32_MAX || pw[p] < pw[best]))
				best = p;
		pack[it] = best;
		rank[it] = items[best]++;
		pw[best] += w[it];
	}
	free(order);
	free(pw);
	free(items);
}

/* plan_replicate's contract: each further replica to the first largest w / cnt. */
static void replicate_model(const float *w, uint32_t nlog, uint32_t nphy, uint32_t *phy2log,
			    uint32_t *rank, uint32_t *cnt)
{
	uint32_t i, e;

	for (e = 0; e < nlog; e++) {
		phy2log[e] = e;
		rank[e] = 0;
		cnt[e] = 1;
	}
	for (i = nlog; i < nphy; i++) {
		uint32_t best = 0;

		for (e = 1; e < nlog; e++)
			if (w[e] / (float)cnt[e] > w[best] / (float)cnt[best])
				best = e;
		phy2log[i] = best;
		rank[i] = cnt[best]++;
	}
}

static void pack_replicate_models(void **state)
{
	uint64_t seed = 42;
	int round;

	(void)state;
	for (round = 0; round < 300; round++) {
		uint32_t packs = 1 + moe_rand(&seed) % 12, per = 1 + moe_rand(&seed) % 6;
		uint32_t n = packs * per, nlog = 1 + moe_rand(&seed) % n, i;
		float *w = malloc(n * sizeof(*w)), *pw = malloc(packs * sizeof(*pw));
		float *ratio = malloc(nlog * sizeof(*ratio));
		uint32_t *pk = malloc(n * 4), *rk = malloc(n * 4), *mpk = malloc(n * 4);
		uint32_t *mrk = malloc(n * 4), *order = malloc(n * 4), *items = malloc(2 * packs * 4);
		uint32_t *p2l = malloc(n * 4), *mp2l = malloc(n * 4), *cnt = malloc(nlog * 4);
		uint32_t *mcnt = malloc(nlog * 4);

		assert_true(w && pw && ratio && pk && rk && mpk && mrk && order && items && p2l &&
			    mp2l && cnt && mcnt);
		for (i = 0; i < n; i++)
			w[i] = tie_weight(&seed);
		plan_pack(w, n, packs, pk, rk, order, pw, items);
		pack_model(w, n, packs, mpk, mrk);
		assert_memory_equal(pk, mpk, n * 4);
		assert_memory_equal(rk, mrk, n * 4);
		plan_replicate(w, nlog, n, p2l, rk, cnt, ratio);
		replicate_model(w, nlog, n, mp2l, mrk, mcnt);
		assert_memory_equal(p2l, mp2l, n * 4);
		assert_memory_equal(rk, mrk, n * 4);
		assert_memory_equal(cnt, mcnt, nlog * 4);
		free(w);
		free(pw);
		free(ratio);
		free(pk);
		free(rk);
		free(mpk);
		free(mrk);
		free(order);
		free(items);
		free(p2l);
		free(mp2l);
		free(cnt);
		free(mcnt);
	}
}

/* --- load statistics ------------------------------------------------------ */

static void stats_window(void **state)
{
	struct accel_moe_stats *st = accel_moe_stats_create(2, 4, 2, 0);
	uint32_t a[] = { 0, 0, 3 }, b[] = { 1 }, bad[] = { 1, 4 }, steps;
	uint64_t c[8];

	(void)state;
	assert_non_null(st);
	assert_int_equal(accel_moe_stats_record(st, 0, a, 3), 0);
	assert_int_equal(accel_moe_stats_record(st, 1, b, 1), 0);
	/* An id out of range: refused, and nothing of the batch counted. */
	assert_int_equal(accel_moe_stats_record(st, 1, bad, 2), -EINVAL);
	assert_int_equal(accel_moe_stats_record(st, 2, b, 1), -EINVAL);
	/* The current step is not in the window. */
	assert_int_equal(accel_moe_stats_load(st, c, NULL, &steps), 0);
	assert_int_equal(steps, 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(c[i], 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);		/* step A */
	assert_int_equal(accel_moe_stats_load(st, c, NULL, &steps), 0);
	assert_int_equal(steps, 1);
	assert_int_equal(c[0], 2);
	assert_int_equal(c[3], 1);
	assert_int_equal(c[5], 1);
	assert_int_equal(c[4 + 1], 1);
	assert_int_equal(accel_moe_stats_record(st, 0, b, 1), 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);		/* step B */
	assert_int_equal(accel_moe_stats_load(st, c, NULL, &steps), 0);
	assert_int_equal(steps, 2);
	assert_int_equal(c[0], 2);
	assert_int_equal(c[1], 1);
	assert_int_equal(accel_moe_stats_step_end(st), 0);		/* step C, empty: A leaves */
	assert_int_equal(accel_moe_stats_load(st, c, NULL, &steps), 0);
	assert_int_equal(steps, 2);
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[3], 0);
	assert_int_equal(c[5], 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);		/* step D: B leaves */
	float w[8];

	assert_int_equal(accel_moe_stats_load(st, c, w, NULL), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(c[i], 0);
		assert_true(w[i] == 0.0f);
	}
	/* No co-activation without the flag. */
	uint32_t co[16];

	assert_int_equal(accel_moe_stats_coact(st, co), -ENOENT);
	accel_moe_stats_destroy(st);
}

static void stats_create_checks(void **state)
{
	(void)state;
	errno = 0;
	assert_null(accel_moe_stats_create(0, 4, 1, 0));
	assert_int_equal(errno, EINVAL);
	assert_null(accel_moe_stats_create(1, 0, 1, 0));
	assert_null(accel_moe_stats_create(1, 4, 0, 0));
	assert_null(accel_moe_stats_create(1, 4, 1, 1u << 7));
	assert_null(accel_moe_stats_create(1, ACCEL_MOE_MAX_EXPERTS + 1, 1, 0));
	/* Co-activation over 4 GiB: refused up front. */
	errno = 0;
	assert_null(accel_moe_stats_create(64, 65536, 1, ACCEL_MOE_STATS_COACT));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(accel_moe_stats_step_end(NULL), -EINVAL);
	assert_int_equal(accel_moe_stats_load(NULL, NULL, NULL, NULL), -EINVAL);
	accel_moe_stats_destroy(NULL);
}

static void stats_route_coact(void **state)
{
	/* 3 layers, 4 experts, top-2; epochs of 2 steps. */
	struct accel_moe_stats *st = accel_moe_stats_create(3, 4, 2, ACCEL_MOE_STATS_COACT);
	/* token 0: layer 0 {0,1}, layer 1 {2,3}, layer 2 {0,3}; token 1: {1,2} {2,0} {1,1} */
	uint32_t x[] = { 0, 1, 2, 3, 0, 3, 1, 2, 2, 0, 1, 1 }, bad[] = { 0, 1, 2, 9, 0, 3 };
	uint32_t co[2 * 16];
	uint64_t c[12];

	(void)state;
	assert_non_null(st);
	assert_int_equal(accel_moe_stats_route(st, x, 2, 2), 0);
	assert_int_equal(accel_moe_stats_route(st, bad, 1, 2), -EINVAL);
	assert_int_equal(accel_moe_stats_route(st, x, 1, 0), -EINVAL);
	assert_int_equal(accel_moe_stats_route(st, x, 1, 5), -EINVAL);
	assert_int_equal(accel_moe_stats_coact(st, co), 0);
	/* Layer pair 0: (0,2) (0,3) (1,2) (1,3) from token 0, (1,2) (1,0) (2,2) (2,0) from token 1. */
	uint32_t want0[16] = { [0 * 4 + 2] = 1, [0 * 4 + 3] = 1, [1 * 4 + 2] = 2, [1 * 4 + 3] = 1,
			       [1 * 4 + 0] = 1, [2 * 4 + 2] = 1, [2 * 4 + 0] = 1 };
	/* Layer pair 1: (2,0) (2,3) (3,0) (3,3), then (2,1) twice, (0,1) twice. */
	uint32_t want1[16] = { [2 * 4 + 0] = 1, [2 * 4 + 3] = 1, [3 * 4 + 0] = 1, [3 * 4 + 3] = 1,
			       [2 * 4 + 1] = 2, [0 * 4 + 1] = 2 };
	assert_memory_equal(co, want0, sizeof(want0));
	assert_memory_equal(co + 16, want1, sizeof(want1));
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_load(st, c, NULL, NULL), 0);
	/* Layer 2 loads: token 0 {0,3}, token 1 {1,1}. */
	assert_int_equal(c[8 + 0], 1);
	assert_int_equal(c[8 + 1], 2);
	assert_int_equal(c[8 + 3], 1);
	assert_int_equal(c[4 + 2], 2);
	/* The second step ends the first epoch: it becomes the previous one, still read. */
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_coact(st, co), 0);
	assert_memory_equal(co, want0, sizeof(want0));
	assert_int_equal(accel_moe_stats_route(st, x, 1, 2), 0);
	assert_int_equal(accel_moe_stats_coact(st, co), 0);
	assert_int_equal(co[0 * 4 + 2], 2);
	/* Two more steps: the first epoch is gone, the one token of the second remains. */
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_coact(st, co), 0);
	assert_int_equal(co[0 * 4 + 2], 1);
	assert_int_equal(co[1 * 4 + 2], 1);
	assert_int_equal(co[1 * 4 + 0], 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_step_end(st), 0);
	assert_int_equal(accel_moe_stats_coact(st, co), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(co[i], 0);
	accel_moe_stats_destroy(st);
}

/* --- EPLB: vectors by hand ------------------------------------------------ */

/*
 * Global (one group, one node), 4 experts, 6 slots on 2 GPUs, weight
 * {10, 4, 6, 2}. Replication: expert 0 has the largest load (10) and gets
 * slot 4 (its load per replica 5), then expert 2 (6 > 5, 4, 2) gets slot 5.
 * Replica loads by slot: 5 4 3 2 5 3. Packing them onto 2 GPUs of 3 in
 * descending order, ties by slot: slot 0 (5) to GPU 0, slot 4 (5) to GPU 1
 * (0 < 5), slot 1 (4) to GPU 0 (5 = 5: the first), slot 2 (3) to GPU 1
 * (5 < 9), slot 5 (3) to GPU 1 (8 < 9; now full), slot 3 (2) to GPU 0.
 * GPU 0 = slots 0 1 3 in that rank order, GPU 1 = slots 4 2 5: phy2log
 * {0 1 3 | 0 2 2}, both GPUs at 11.
 */
static void eplb_hand_global(void **state)
{
	TOPO(t, 1, 4, 6, 2, 1, 1);
	const float w[] = { 10, 4, 6, 2 };
	const int32_t want_p2l[] = { 0, 1, 3, 0, 2, 2 }, want_cnt[] = { 2, 1, 2, 1 };
	const int32_t want_l2p[] = { 0, 3, 1, -1, 4, 5, 2, -1 };
	int32_t p2l[6], l2p[8], cnt[4];
	uint32_t maxcnt = 0;

	(void)state;
	assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, l2p, 2, cnt, &maxcnt), 0);
	assert_int_equal(maxcnt, 2);
	assert_memory_equal(p2l, want_p2l, sizeof(want_p2l));
	assert_memory_equal(cnt, want_cnt, sizeof(want_cnt));
	assert_memory_equal(l2p, want_l2p, sizeof(want_l2p));
	/* A log2phy narrower than the largest count: -ENOSPC, the count told. */
	maxcnt = 0;
	assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, l2p, 1, cnt, &maxcnt), -ENOSPC);
	assert_int_equal(maxcnt, 2);
}

/*
 * Hierarchical: 4 experts in 4 groups of 1, 2 nodes, 4 GPUs, 8 slots,
 * weight {1, 8, 3, 4}.
 * Step 1, groups onto nodes (2 each), descending: group 1 (8) to node 0,
 * group 3 (4) to node 1, group 2 (3) to node 1 (4 < 8), group 0 (1) to node
 * 0. Node-local order (pack * 2 + rank): node 0 = experts {1, 0}, node 1 =
 * {3, 2}.
 * Step 2, 4 slots per node: node 0 loads {8, 1}: expert 1 twice more
 * (8, then 4 > 1): replicas {1 1 1 0 } as local {m0 m1 m0 m0}, ranks
 * {0 0 1 2}; node 1 loads {4, 3}: expert 3 (4), then expert 2 (3 > 2):
 * local {m0 m1 m0 m1}, ranks {0 0 1 1}.
 * Step 3, 2 GPUs per node: node 0 replica loads {8/3, 1, 8/3, 8/3}: p0 to
 * GPU 0, p2 to GPU 1, p3 to GPU 0 (tie: the first), p1 to GPU 1: GPU 0 =
 * {p0 p3}, GPU 1 = {p2 p1} = experts {1 1 | 1 0}, ranks {0 2 | 1 0}. Node
 * 1 loads {2, 1.5, 2, 1.5}: p0 GPU 0, p2 GPU 1, p1 GPU 0, p3 GPU 1, the
 * order unchanged: experts {3 2 | 3 2}, ranks {0 0 | 1 1}.
 */
static void eplb_hand_hierarchical(void **state)
{
	TOPO(t, 1, 4, 8, 4, 2, 4);
	const float w[] = { 1, 8, 3, 4 };
	const int32_t want_p2l[] = { 1, 1, 1, 0, 3, 2, 3, 2 }, want_cnt[] = { 1, 3, 2, 2 };
	const int32_t want_l2p[] = { 3, -1, -1, 0, 2, 1, 5, 7, -1, 4, 6, -1 };
	int32_t p2l[8], l2p[12], cnt[4];
	uint32_t maxcnt = 0;

	(void)state;
	assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, l2p, 3, cnt, &maxcnt), 0);
	assert_int_equal(maxcnt, 3);
	assert_memory_equal(p2l, want_p2l, sizeof(want_p2l));
	assert_memory_equal(cnt, want_cnt, sizeof(want_cnt));
	assert_memory_equal(l2p, want_l2p, sizeof(want_l2p));
	/* AUTO picked the hierarchical policy; asking for it gives the same. */
	ACCEL_OPTS(accel_eplb_opts, o, .policy = ACCEL_EPLB_HIERARCHICAL);
	int32_t p2[8];

	assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2, NULL, 0, NULL, NULL), 0);
	assert_memory_equal(p2, want_p2l, sizeof(want_p2l));
}

/*
 * Groups that do not divide by nodes (3 groups, 2 nodes): AUTO takes the
 * global policy, ACCEL_EPLB_HIERARCHICAL is refused. Global, 6 experts
 * with loads {6 5 4 3 2 1}, 6 slots on 2 GPUs (no replica), descending
 * packing: e0 to G0 (6), e1 to G1 (5), e2 to G1 (5 < 6:
 * 9), e3 to G0 (6 < 9: 9), e4 to G0 (9 = 9: the first, 11; full), e5 to
 * G1 (10). Ranks: G0 {e0 e3 e4}, G1 {e1 e2 e5}.
 */
static void eplb_hand_auto_global(void **state)
{
	TOPO(t, 1, 6, 6, 2, 2, 3);
	const float w[] = { 6, 5, 4, 3, 2, 1 };
	const int32_t want[] = { 0, 3, 4, 1, 2, 5 };
	ACCEL_OPTS(accel_eplb_opts, o, .policy = ACCEL_EPLB_HIERARCHICAL);
	int32_t p2l[6];

	(void)state;
	assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), 0);
	assert_memory_equal(p2l, want, sizeof(want));
	assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), -EINVAL);
}

/*
 * vLLM's slot preservation: the same contents per GPU as plain EPLB, the
 * experts a GPU held before back in their old slots. Old {3 0 1 | 2 2 0}
 * against EPLB's {0 1 3 | 0 2 2} (eplb_hand_global): GPU 0 keeps 3, 0, 1
 * in its slots 0 1 2; GPU 1: old slot 3 held 2 (new position 4), slot 4
 * held 2 (new position 5), slot 5 held 0 (new position 3).
 */
static void eplb_preserve_slots(void **state)
{
	TOPO(t, 1, 4, 6, 2, 1, 1);
	const float w[] = { 10, 4, 6, 2 };
	const int32_t old[] = { 3, 0, 1, 2, 2, 0 }, want[] = { 3, 0, 1, 2, 2, 0 };
	/* log2phy by replica rank: e0 rank 0 was slot 0 (now 1), rank 1 slot 3 (now 5). */
	const int32_t want_l2p[] = { 1, 5, 2, -1, 3, 4, 0, -1 };
	const int32_t old2[] = { 2, 2, 2, 2, 1, 1 }, want2[] = { 0, 1, 3, 2, 0, 2 };
	ACCEL_OPTS(accel_eplb_opts, o, .old_phy2log = old);
	int32_t p2l[6], l2p[8];

	(void)state;
	assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, l2p, 2, NULL, NULL), 0);
	assert_memory_equal(p2l, want, sizeof(want));
	assert_memory_equal(l2p, want_l2p, sizeof(want_l2p));
	/*
	 * Old {2 2 2 | 2 1 1}: GPU 0 held none of {0 1 3} (EPLB's order kept);
	 * GPU 1's slot 3 held 2 (it keeps it), the others take 0 and 2 in order.
	 */
	o.old_phy2log = old2;
	assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), 0);
	assert_memory_equal(p2l, want2, sizeof(want2));
}

static void eplb_constraints(void **state)
{
	const float w[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	int32_t p2l[64];

	(void)state;
	{	/* slots not a multiple of GPUs */
		TOPO(t, 1, 4, 6, 4, 1, 1);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
	}
	{	/* GPUs not a multiple of nodes */
		TOPO(t, 1, 4, 6, 3, 2, 2);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
	}
	{	/* fewer slots than experts */
		TOPO(t, 1, 4, 2, 2, 1, 1);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
	}
	{	/* hierarchical: experts not a multiple of groups (groups % nodes == 0) */
		TOPO(t, 1, 6, 8, 4, 2, 4);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		/* the global policy has one group: fine */
		ACCEL_OPTS(accel_eplb_opts, o, .policy = ACCEL_EPLB_GLOBAL);
		assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), 0);
	}
	{	/* zero layers, experts, GPUs, nodes; unknown policy and flags */
		TOPO(t, 0, 4, 4, 1, 1, 1);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		t.layers = 1;
		t.devices = 0;
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		t.devices = 1;
		t.nodes = 0;
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		t.nodes = 1;
		ACCEL_OPTS(accel_eplb_opts, o, .policy = 3);
		assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), -EINVAL);
		o.policy = 0;
		o.flags = 1;
		assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), -EINVAL);
		assert_int_equal(accel_eplb_rebalance(NULL, w, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		assert_int_equal(accel_eplb_rebalance(&t, NULL, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, NULL, NULL, 0, NULL, NULL), -EINVAL);
	}
	{	/* a negative or NaN load; an old placement with an id out of range */
		TOPO(t, 1, 4, 4, 2, 1, 1);
		float bad[4] = { 1, -1, 2, 3 };
		const int32_t old[4] = { 0, 1, 2, 4 };
		ACCEL_OPTS(accel_eplb_opts, o, .old_phy2log = old);

		for (int i = 0; i < 4; i++)
			p2l[i] = -7;
		assert_int_equal(accel_eplb_rebalance(&t, bad, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		bad[1] = NAN;
		assert_int_equal(accel_eplb_rebalance(&t, bad, NULL, p2l, NULL, 0, NULL, NULL), -EINVAL);
		assert_int_equal(accel_eplb_rebalance(&t, w, &o, p2l, NULL, 0, NULL, NULL), -EINVAL);
		/* Nothing written on a refusal. */
		for (int i = 0; i < 4; i++)
			assert_int_equal(p2l[i], -7);
	}
}

/* --- EPLB: properties over random shapes ---------------------------------- */

static void eplb_properties(void **state)
{
	uint64_t seed = 0x5eed0001;

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		uint32_t nodes = 1 + moe_rand(&seed) % 4;
		uint32_t dpn = 1 + moe_rand(&seed) % 4, devices = nodes * dpn;
		uint32_t groups = 1 + moe_rand(&seed) % 8;
		uint32_t gsize = 1 + moe_rand(&seed) % 6, experts = groups * gsize;
		uint32_t spd = (experts + devices - 1) / devices + moe_rand(&seed) % 3;
		uint32_t slots = spd * devices, layers = 1 + moe_rand(&seed) % 4;
		TOPO(t, layers, experts, slots, devices, nodes, groups);
		float *w = malloc(sizeof(float) * layers * experts);
		int32_t *p2l = malloc(sizeof(int32_t) * layers * slots);
		uint32_t width = slots - experts + 1, maxcnt = 0;
		int32_t *l2p = malloc(sizeof(int32_t) * layers * experts * width);
		int32_t *cnt = malloc(sizeof(int32_t) * layers * experts);
		const char *why;

		for (uint32_t i = 0; i < layers * experts; i++)
			/* Few distinct values: many ties. */
			w[i] = (iter & 1) ? (float)(moe_rand(&seed) % 4)
					  : (float)(moe_unif(&seed) * 1000.0);
		assert_int_equal(accel_eplb_rebalance(&t, w, NULL, p2l, l2p, width, cnt, &maxcnt), 0);
		why = moe_check_placement(&t, p2l, l2p, width, cnt);
		if (why)
			fail_msg("iteration %d (%u layers %u experts %u slots %u gpus %u nodes %u groups): %s",
				 iter, layers, experts, slots, devices, nodes, groups, why);
		assert_true(maxcnt >= 1 && maxcnt <= width);
		/* Hierarchical: each node holds exactly its groups' experts. */
		if (groups % nodes == 0)
			for (uint32_t l = 0; l < layers; l++)
				for (uint32_t s = 0; s < slots; s++) {
					uint32_t node = s / (slots / nodes);
					int32_t e = p2l[l * slots + s];

					for (uint32_t s2 = 0; s2 < slots; s2++)
						if (p2l[l * slots + s2] == e)
							assert_int_equal(s2 / (slots / nodes), node);
				}
		free(w);
		free(p2l);
		free(l2p);
		free(cnt);
	}
}

/* --- costs, log2phy, moves ------------------------------------------------ */

/*
 * 2 layers, 2 experts, 4 slots on 2 nodes of 1 GPU each (2 slots a GPU).
 * Layer 0 {0 0 | 1 1}: expert 0 on GPU 0 twice, expert 1 on GPU 1; weight
 * {4, 2}: GPU 0 carries 2 + 2, GPU 1 1 + 1: max/mean 4 / 3. Layer 1
 * {0 1 | 0 0}, weight {6, 6}: expert 0 has 3 slots (2 each), expert 1 one
 * (6): GPU 0 = 2 + 6 = 8, GPU 1 = 4: 8 / 6. Co-activation (0,0) = 3,
 * (1,1) = 5: tokens of expert 0 at layer 0 sit on GPU 0 where layer 1 has
 * expert 0: local. Tokens of expert 1 (GPU 1) go to expert 1 of layer 1,
 * only on GPU 0: 5 tokens cross nodes.
 */
static void cost_hand(void **state)
{
	TOPO(t, 2, 2, 4, 2, 2, 1);
	const float w[] = { 4, 2, 6, 6 };
	const int32_t p[] = { 0, 0, 1, 1, 0, 1, 0, 0 }, old[] = { 0, 1, 1, 1, 0, 1, 0, 0 };
	const uint32_t co[] = { 3, 0, 0, 5 };
	ACCEL_OPTS(accel_moe_cost, c);
	float lm[2];
	int32_t l2p[2 * 2 * 3], cnt[4];
	const int32_t want_l2p[] = { 0, 1, -1, 2, 3, -1, 0, 2, 3, 1, -1, -1 };

	(void)state;
	assert_int_equal(accel_moe_cost(&t, w, co, old, p, &c, lm), 0);
	assert_true(fabs(lm[0] - 4.0 / 3) < 1e-6);
	assert_true(fabs(lm[1] - 8.0 / 6) < 1e-6);
	assert_true(fabs(c.imbalance - 4.0 / 3) < 1e-9);
	assert_true(fabs(c.max_load - 12) < 1e-9);
	assert_true(fabs(c.mean_load - 9) < 1e-9);
	assert_int_equal(c.moves, 1);
	assert_true(fabs(c.traffic - 8) < 1e-9);
	assert_true(fabs(c.cross_node - 5) < 1e-9);
	assert_true(fabs(c.cross_device - 5) < 1e-9);
	assert_int_equal(accel_moe_log2phy(&t, p, l2p, 3, cnt), 0);
	assert_memory_equal(l2p, want_l2p, sizeof(want_l2p));
	assert_int_equal(accel_moe_log2phy(&t, p, l2p, 2, cnt), -ENOSPC);
	/* An expert without a slot, an id out of range. */
	const int32_t bad[] = { 0, 0, 0, 0, 0, 1, 0, 0 }, bad2[] = { 0, 1, 2, 1, 0, 1, 0, 0 };

	assert_int_equal(accel_moe_cost(&t, w, co, NULL, bad, &c, NULL), -EINVAL);
	assert_int_equal(accel_moe_cost(&t, w, co, NULL, bad2, &c, NULL), -EINVAL);
	assert_int_equal(accel_moe_log2phy(&t, bad, l2p, 3, cnt), -EINVAL);
}

/* Apply @mv to @old: it must give @new, sources and rounds as documented. */
static void check_moves(const struct accel_moe_topo *t, const int32_t *old, const int32_t *new,
			const struct accel_moe_move *mv, size_t n, uint32_t k)
{
	size_t np = (size_t)t->layers * t->slots, i;
	int32_t *x = malloc(np * sizeof(*x));
	uint32_t spd = t->slots / t->devices, dpn = t->devices / t->nodes, maxr = 0;

	memcpy(x, old, np * sizeof(*x));
	for (i = 0; i < n; i++) {
		const struct accel_moe_move *m = &mv[i];
		const int32_t *o = old + (size_t)m->layer * t->slots;

		assert_true(m->layer < t->layers && m->slot < t->slots);
		assert_int_equal(m->old_expert, o[m->slot]);
		assert_int_not_equal(m->old_expert, m->new_expert);
		x[(size_t)m->layer * t->slots + m->slot] = m->new_expert;
		if (m->src_slot < 0) {
			assert_int_equal(m->kind, ACCEL_MOE_MOVE_STORE);
			for (uint32_t s = 0; s < t->slots; s++)
				assert_int_not_equal(o[s], m->new_expert);
			continue;
		}
		assert_int_equal(o[m->src_slot], m->new_expert);
		uint32_t kind = m->src_slot / spd == m->slot / spd ? ACCEL_MOE_MOVE_DEVICE :
				m->src_slot / spd / dpn == m->slot / spd / dpn ? ACCEL_MOE_MOVE_NODE :
				ACCEL_MOE_MOVE_REMOTE;
		assert_int_equal(m->kind, kind);
		/* The nearest: no old slot of the expert strictly closer. */
		for (uint32_t s = 0; s < t->slots; s++)
			if (o[s] == m->new_expert) {
				uint32_t k2 = s / spd == m->slot / spd ? 0 :
					      s / spd / dpn == m->slot / spd / dpn ? 1 : 2;

				assert_true(k2 >= m->kind);
			}
		if (m->round > maxr)
			maxr = m->round;
	}
	assert_memory_equal(x, new, np * sizeof(*x));
	/* At most k incoming copies per device in each round. */
	for (uint32_t r = 0; r <= maxr; r++)
		for (uint32_t d = 0; d < t->devices; d++) {
			uint32_t c = 0;

			for (i = 0; i < n; i++)
				if (mv[i].round == r && mv[i].kind != ACCEL_MOE_MOVE_DEVICE &&
				    mv[i].slot / spd == d)
					c++;
			assert_true(c <= k);
		}
	free(x);
}

static void moves_apply(void **state)
{
	uint64_t seed = 77;

	(void)state;
	for (int iter = 0; iter < 60; iter++) {
		uint32_t nodes = 1 + moe_rand(&seed) % 3, gpus = nodes * (1 + moe_rand(&seed) % 3);
		uint32_t experts = 2 + moe_rand(&seed) % 12, spd = (experts + gpus - 1) / gpus + 1;
		uint32_t slots = spd * gpus, layers = 1 + moe_rand(&seed) % 3, k = 1 + iter % 3;
		TOPO(t, layers, experts, slots, gpus, nodes, 1);
		size_t np = (size_t)layers * slots, n = 0, n2 = 0;
		int32_t *old = malloc(np * 4), *new = malloc(np * 4);
		struct accel_moe_move *mv = malloc(np * sizeof(*mv));

		for (size_t i = 0; i < np; i++) {
			old[i] = (int32_t)(moe_rand(&seed) % experts);
			new[i] = (iter & 1) && moe_rand(&seed) % 2 ? old[i] :
				 (int32_t)(moe_rand(&seed) % experts);
		}
		assert_int_equal(accel_moe_moves(&t, old, new, k, mv, np, &n), 0);
		check_moves(&t, old, new, mv, n, k);
		/* Count only, and too small a buffer. */
		assert_int_equal(accel_moe_moves(&t, old, new, k, NULL, 0, &n2), n ? -ENOSPC : 0);
		assert_int_equal(n2, n);
		if (n > 1) {
			assert_int_equal(accel_moe_moves(&t, old, new, k, mv, 1, &n2), -ENOSPC);
			assert_int_equal(n2, n);
		}
		free(old);
		free(new);
		free(mv);
	}
	{
		TOPO(t, 1, 2, 2, 1, 1, 1);
		const int32_t a[] = { 0, 1 }, b[] = { 0, 2 };
		size_t n;

		assert_int_equal(accel_moe_moves(&t, a, b, 1, NULL, 0, &n), -EINVAL);
		assert_int_equal(accel_moe_moves(&t, a, a, 1, NULL, 0, NULL), -EINVAL);
		assert_int_equal(accel_moe_moves(&t, a, a, 1, NULL, 0, &n), 0);
		assert_int_equal(n, 0);
	}
}

/* --- the planner ------------------------------------------------------------- */

/*
 * Co-activation with structure: expert i of layer l goes on to expert
 * perm_l(i) of layer l + 1 with 70% of its tokens (times top-k), the rest
 * spread evenly.
 */
static void gen_coact(uint32_t *co, const float *w, uint32_t layers, uint32_t experts,
		      uint64_t *seed)
{
	uint32_t *perm = malloc(experts * sizeof(*perm));

	for (uint32_t l = 0; l + 1 < layers; l++) {
		uint32_t *c = co + (size_t)l * experts * experts;

		for (uint32_t e = 0; e < experts; e++)
			perm[e] = e;
		for (uint32_t e = experts - 1; e > 0; e--) {
			uint32_t j = moe_rand(seed) % (e + 1), x = perm[e];

			perm[e] = perm[j];
			perm[j] = x;
		}
		for (uint32_t i = 0; i < experts; i++) {
			double tok = w[(size_t)l * experts + i] * 4;

			for (uint32_t j = 0; j < experts; j++)
				c[(size_t)i * experts + j] = (uint32_t)(tok * 0.3 / experts);
			c[(size_t)i * experts + perm[i]] += (uint32_t)(tok * 0.7);
		}
	}
	free(perm);
}

struct goal_case {
	uint32_t layers, experts, slots, gpus, nodes, groups;
	double skew;
};

static void plan_goals(void **state)
{
	/* The shape and smaller ones; loads shift between two rebalances. */
	const struct goal_case cases[] = {
		{ 58, 256, 320, 64, 8, 8, 1.0 },
		{ 16, 64, 80, 16, 4, 8, 1.4 },
		{ 16, 64, 80, 16, 4, 8, 0.6 },
		{ 4, 16, 24, 4, 2, 4, 1.0 },
	};
	uint64_t seed = 4242;

	(void)state;
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const struct goal_case *g = &cases[ci];
		TOPO(t, g->layers, g->experts, g->slots, g->gpus, g->nodes, g->groups);
		size_t nw = (size_t)g->layers * g->experts, np = (size_t)g->layers * g->slots;
		float *wa = malloc(nw * 4), *wb = malloc(nw * 4);
		float *lh = malloc(g->layers * 4), *lg = malloc(g->layers * 4);
		float *lo = malloc(g->layers * 4);
		uint32_t *co = malloc((size_t)(g->layers - 1) * g->experts * g->experts * 4);
		int32_t *p0 = malloc(np * 4), *ph = malloc(np * 4), *pg = malloc(np * 4);
		int32_t *po = malloc(np * 4), *cnt = malloc(nw * 4);
		ACCEL_OPTS(accel_eplb_opts, hier, .policy = ACCEL_EPLB_HIERARCHICAL);
		ACCEL_OPTS(accel_eplb_opts, glob, .policy = ACCEL_EPLB_GLOBAL);
		ACCEL_OPTS(accel_moe_cost, ch);
		ACCEL_OPTS(accel_moe_cost, cg);
		ACCEL_OPTS(accel_moe_cost, cr);
		ACCEL_OPTS(accel_moe_cost, cplan);
		uint32_t width = g->slots - g->experts + 1;
		int32_t *l2p = malloc(nw * width * 4);

		moe_zipf(wa, g->layers, g->experts, g->skew, 64 * g->experts, &seed);
		moe_zipf(wb, g->layers, g->experts, g->skew, 64 * g->experts, &seed);
		gen_coact(co, wb, g->layers, g->experts, &seed);
		assert_int_equal(accel_eplb_rebalance(&t, wa, &hier, p0, NULL, 0, NULL, NULL), 0);
		hier.old_phy2log = glob.old_phy2log = p0;
		assert_int_equal(accel_eplb_rebalance(&t, wb, &hier, ph, NULL, 0, NULL, NULL), 0);
		assert_int_equal(accel_eplb_rebalance(&t, wb, &glob, pg, NULL, 0, NULL, NULL), 0);
		assert_int_equal(accel_moe_plan(&t, wb, co, p0, NULL, po, l2p, width, cnt, &cr), 0);
		assert_null(moe_check_placement(&t, po, l2p, width, cnt));
		assert_int_equal(accel_moe_cost(&t, wb, co, p0, ph, &ch, lh), 0);
		assert_int_equal(accel_moe_cost(&t, wb, co, p0, pg, &cg, lg), 0);
		assert_int_equal(accel_moe_cost(&t, wb, co, p0, po, &cplan, lo), 0);
		/* The cost the planner reports is accel_moe_cost()'s. */
		assert_int_equal(cr.moves, cplan.moves);
		assert_true(fabs(cr.cross_node - cplan.cross_node) < 1e-6 * (1 + cplan.traffic));
		/* Balance: no layer worse than EPLB's global policy. */
		for (uint32_t l = 0; l < g->layers; l++)
			if (lo[l] > lg[l] * (1 + 1e-6))
				fail_msg("case %zu layer %u: max/mean %.6f, EPLB global %.6f", ci, l,
					 lo[l], lg[l]);
		/* Traffic: no more across nodes than the hierarchical policy. */
		if (cplan.cross_node > ch.cross_node)
			fail_msg("case %zu: cross-node %.0f, EPLB hierarchical %.0f", ci,
				 cplan.cross_node, ch.cross_node);
		/* Moves: fewer than either EPLB policy (with vLLM's slot preservation). */
		if (cplan.moves >= cg.moves || cplan.moves >= ch.moves)
			fail_msg("case %zu: %llu moves, EPLB %llu (global) %llu (hierarchical)", ci,
				 (unsigned long long)cplan.moves, (unsigned long long)cg.moves,
				 (unsigned long long)ch.moves);
		print_message("# case %zu: max/mean %.4f (global %.4f, hier %.4f) x-node %.1f%% "
			      "(hier %.1f%%) moves %llu (global %llu, hier %llu)\n", ci,
			      cplan.imbalance, cg.imbalance, ch.imbalance,
			      100 * cplan.cross_node / cplan.traffic, 100 * ch.cross_node / ch.traffic,
			      (unsigned long long)cplan.moves, (unsigned long long)cg.moves,
			      (unsigned long long)ch.moves);
		free(wa);
		free(wb);
		free(lh);
		free(lg);
		free(lo);
		free(co);
		free(p0);
		free(ph);
		free(pg);
		free(po);
		free(l2p);
		free(cnt);
	}
}

static void plan_options(void **state)
{
	TOPO(t, 8, 32, 48, 8, 2, 4);
	size_t nw = 8 * 32, np = 8 * 48;
	float *wa = malloc(nw * 4), *wb = malloc(nw * 4);
	int32_t *p0 = malloc(np * 4), *p1 = malloc(np * 4), *p2 = malloc(np * 4);
	uint32_t *co = malloc(7 * 32 * 32 * 4);
	ACCEL_OPTS(accel_moe_plan_opts, o, .flags = ACCEL_MOE_PLAN_NO_TRAFFIC);
	ACCEL_OPTS(accel_moe_cost, c);
	uint64_t seed = 99;

	(void)state;
	moe_zipf(wa, 8, 32, 1.2, 4096, &seed);
	moe_zipf(wb, 8, 32, 1.2, 4096, &seed);
	gen_coact(co, wb, 8, 32, &seed);
	/* No current placement: every slot counts as moved. */
	assert_int_equal(accel_moe_plan(&t, wa, co, NULL, NULL, p0, NULL, 0, NULL, &c), 0);
	assert_int_equal(c.moves, 0);
	assert_null(moe_check_placement(&t, p0, NULL, 0, NULL));
	/* The same loads again: nothing to change (no traffic term). */
	assert_int_equal(accel_moe_plan(&t, wa, NULL, p0, &o, p1, NULL, 0, NULL, &c), 0);
	assert_int_equal(c.moves, 0);
	assert_memory_equal(p0, p1, np * 4);
	/* A move budget per layer holds on shifted loads. */
	for (uint32_t budget = 1; budget <= 9; budget += 4) {
		o.max_moves = budget;
		o.flags = 0;
		assert_int_equal(accel_moe_plan(&t, wb, co, p0, &o, p2, NULL, 0, NULL, NULL), 0);
		assert_null(moe_check_placement(&t, p2, NULL, 0, NULL));
		for (uint32_t l = 0; l < 8; l++) {
			uint32_t m = 0;

			for (uint32_t s = 0; s < 48; s++)
				m += p2[l * 48 + s] != p0[l * 48 + s];
			assert_true(m <= budget);
		}
	}
	/* Slack lets the balance go, never past it. */
	o.max_moves = 0;
	o.balance_slack = 0.2f;
	float lm[8], lg[8];
	ACCEL_OPTS(accel_eplb_opts, glob, .policy = ACCEL_EPLB_GLOBAL);

	assert_int_equal(accel_moe_plan(&t, wb, co, p0, &o, p2, NULL, 0, NULL, NULL), 0);
	assert_int_equal(accel_moe_cost(&t, wb, NULL, NULL, p2, &c, lm), 0);
	assert_int_equal(accel_eplb_rebalance(&t, wb, &glob, p1, NULL, 0, NULL, NULL), 0);
	assert_int_equal(accel_moe_cost(&t, wb, NULL, NULL, p1, &c, lg), 0);
	for (int l = 0; l < 8; l++)
		assert_true(lm[l] <= lg[l] * 1.2f * (1 + 1e-6));
	free(wa);
	free(wb);
	free(p0);
	free(p1);
	free(p2);
	free(co);
}

/* Random shapes, loads, co-activation, current placements and options. */
static void plan_properties(void **state)
{
	uint64_t seed = 0xb1a5;

	(void)state;
	for (int iter = 0; iter < 200; iter++) {
		uint32_t nodes = 1 + moe_rand(&seed) % 4, gpus = nodes * (1 + moe_rand(&seed) % 4);
		uint32_t experts = 2 + moe_rand(&seed) % 40;
		uint32_t spd = (experts + gpus - 1) / gpus + moe_rand(&seed) % 3;
		uint32_t slots = spd * gpus, layers = 1 + moe_rand(&seed) % 5;
		uint32_t budget = iter % 3 == 2 ? 1 + moe_rand(&seed) % 4 : 0;
		TOPO(t, layers, experts, slots, gpus, nodes, 1);
		size_t nw = (size_t)layers * experts, np = (size_t)layers * slots;
		uint32_t width = slots - experts + 1;
		float *w = malloc(nw * 4), *lm = malloc(layers * 4), *lg = malloc(layers * 4);
		uint32_t *co = malloc((nw * experts + 1) * 4);
		int32_t *cur = malloc(np * 4), *p = malloc(np * 4), *g = malloc(np * 4);
		int32_t *l2p = malloc(nw * width * 4), *cnt = malloc(nw * 4);
		ACCEL_OPTS(accel_moe_plan_opts, o, .max_moves = budget,
			   .flags = iter % 4 == 1 ? ACCEL_MOE_PLAN_NO_TRAFFIC : 0);
		ACCEL_OPTS(accel_eplb_opts, glob, .policy = ACCEL_EPLB_GLOBAL);
		ACCEL_OPTS(accel_moe_cost, c);
		ACCEL_OPTS(accel_moe_cost, c2);
		const char *why;

		for (size_t k = 0; k < nw; k++)
			w[k] = (iter & 1) ? (float)(moe_rand(&seed) % 5)
					  : (float)(moe_unif(&seed) * 500.0);
		for (size_t k = 0; k < nw * experts; k++)
			co[k] = moe_rand(&seed) % 7 ? 0 : moe_rand(&seed) % 100;
		for (uint32_t l = 0; l < layers; l++) {
			int32_t *row = cur + (size_t)l * slots;

			/* Every expert once, the rest at random, then shuffled. */
			for (uint32_t s2 = 0; s2 < slots; s2++)
				row[s2] = s2 < experts ? (int32_t)s2 : (int32_t)(moe_rand(&seed) % experts);
			for (uint32_t s2 = slots - 1; s2 > 0; s2--) {
				uint32_t j = moe_rand(&seed) % (s2 + 1);
				int32_t x = row[s2];

				row[s2] = row[j];
				row[j] = x;
			}
		}
		assert_int_equal(accel_moe_plan(&t, w, co, iter % 5 ? cur : NULL, &o, p, l2p, width,
						cnt, &c), 0);
		why = moe_check_placement(&t, p, l2p, width, cnt);
		if (why)
			fail_msg("iteration %d: %s", iter, why);
		assert_int_equal(accel_moe_cost(&t, w, co, iter % 5 ? cur : NULL, p, &c2, lm), 0);
		assert_int_equal(c.moves, c2.moves);
		if (budget && iter % 5) {
			for (uint32_t l = 0; l < layers; l++) {
				uint32_t m = 0;

				for (uint32_t s2 = 0; s2 < slots; s2++)
					m += p[l * slots + s2] != cur[l * slots + s2];
				assert_true(m <= budget);
			}
		} else {
			assert_int_equal(accel_eplb_rebalance(&t, w, &glob, g, NULL, 0, NULL, NULL), 0);
			assert_int_equal(accel_moe_cost(&t, w, NULL, NULL, g, &c2, lg), 0);
			for (uint32_t l = 0; l < layers; l++)
				if (lm[l] > lg[l] * (1 + 1e-5))
					fail_msg("iteration %d layer %u: max/mean %.6f, EPLB global %.6f",
						 iter, l, lm[l], lg[l]);
		}
		free(w);
		free(lm);
		free(lg);
		free(co);
		free(cur);
		free(p);
		free(g);
		free(l2p);
		free(cnt);
	}
}

static void plan_errors(void **state)
{
	TOPO(t, 1, 4, 6, 2, 1, 1);
	const float w[] = { 10, 4, 6, 2 };
	const int32_t missing[] = { 0, 0, 1, 1, 2, 2 }, good[] = { 0, 1, 2, 3, 0, 0 };
	int32_t p[6] = { -7, -7, -7, -7, -7, -7 }, l2p[4];
	const int32_t untouched[6] = { -7, -7, -7, -7, -7, -7 };
	ACCEL_OPTS(accel_moe_plan_opts, o, .balance_slack = 2);

	(void)state;
	/* A current placement that leaves expert 3 out. */
	assert_int_equal(accel_moe_plan(&t, w, NULL, missing, NULL, p, NULL, 0, NULL, NULL), -EINVAL);
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, &o, p, NULL, 0, NULL, NULL), -EINVAL);
	o.balance_slack = 0;
	o.flags = 1u << 5;
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, &o, p, NULL, 0, NULL, NULL), -EINVAL);
	o.flags = 0;
	o.move_tokens = NAN;
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, &o, p, NULL, 0, NULL, NULL), -EINVAL);
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, NULL, NULL, NULL, 0, NULL, NULL), -EINVAL);
	/* Expert 0 has two slots: a log2phy one wide is too small. */
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, NULL, p, l2p, 1, NULL, NULL), -ENOSPC);
	assert_memory_equal(p, untouched, sizeof(p));
	assert_int_equal(accel_moe_plan(&t, w, NULL, good, NULL, p, NULL, 0, NULL, NULL), 0);
	assert_null(moe_check_placement(&t, p, NULL, 0, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pack_replicate_models),
		cmocka_unit_test(stats_window),
		cmocka_unit_test(stats_create_checks),
		cmocka_unit_test(stats_route_coact),
		cmocka_unit_test(eplb_hand_global),
		cmocka_unit_test(eplb_hand_hierarchical),
		cmocka_unit_test(eplb_hand_auto_global),
		cmocka_unit_test(eplb_preserve_slots),
		cmocka_unit_test(eplb_constraints),
		cmocka_unit_test(eplb_properties),
		cmocka_unit_test(cost_hand),
		cmocka_unit_test(moves_apply),
		cmocka_unit_test(plan_goals),
		cmocka_unit_test(plan_options),
		cmocka_unit_test(plan_properties),
		cmocka_unit_test(plan_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
