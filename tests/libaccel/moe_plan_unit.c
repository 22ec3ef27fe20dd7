// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native unit tests (cmocka, ASan/UBSan) of the MoE planner's pure logic
 * (accel_moe_plan.h): the load statistics' window and co-activation
 * epochs; EPLB against vectors computed by hand and its constraints;
 * property tests over random shapes and loads. The comparison with the
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
#include "moe_common.h"

#define TOPO(NAME, L, E, R, D, N, G) \
	ACCEL_OPTS(accel_moe_topo, NAME, .layers = (L), .experts = (E), .slots = (R), \
		   .devices = (D), .nodes = (N), .groups = (G))

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stats_window),
		cmocka_unit_test(stats_create_checks),
		cmocka_unit_test(stats_route_coact),
		cmocka_unit_test(eplb_hand_global),
		cmocka_unit_test(eplb_hand_hierarchical),
		cmocka_unit_test(eplb_hand_auto_global),
		cmocka_unit_test(eplb_preserve_slots),
		cmocka_unit_test(eplb_constraints),
		cmocka_unit_test(eplb_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
