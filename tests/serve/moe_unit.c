// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's default MoE placement policy (serve_moe_rotate()),
 * natively (cmocka, ASan/UBSan): the initial expert-parallel placement by
 * hand, the rotation by one device per call, the redundant slots to the
 * most-routed experts on another device, every placement valid with each
 * device's slots filled, and a shape it cannot place refused. The
 * adapters to libaccel's planner (serve_moe_eplb(), serve_moe_plan()):
 * valid placements for generated loads over every small shape, the
 * planner moving fewer slots than EPLB on a shifted load, the planner
 * given co-activation counts cutting cross-node traffic that it keeps
 * without them (and logging it), and bad shapes refused with nothing
 * written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "moe.h"
#include "moe_policy.h"

static void test_initial_by_hand(void **state)
{
	/* 8 experts, 2 devices of 5 slots: 0 2 4 6 | 1 3 5 7, then the two redundant. */
	static const int32_t want[10] = { 0, 2, 4, 6, 1, 1, 3, 5, 7, 0 };
	uint64_t load[8] = { 0 };
	int32_t p[10];
	uint32_t shift = 0;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, NULL, 1, 8, 2, 5), 0);
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(shift, 1);
}

static void test_rotates_and_follows_load(void **state)
{
	/* Second call: expert e on device (e + 1) % 2; experts 5 and 2 most routed. */
	static const int32_t want[10] = { 1, 3, 5, 7, 2, 0, 2, 4, 6, 5 };
	uint64_t load[8] = { 1, 1, 7, 1, 1, 9, 1, 1 };
	int32_t p[10];
	uint32_t shift = 1;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, NULL, 1, 8, 2, 5), 0);
	assert_memory_equal(p, want, sizeof(want));
}

static void test_every_shape_valid(void **state)
{
	uint32_t devices, experts, red, l, d, s, e, shift;

	(void)state;
	for (devices = 1; devices <= 8; devices++)
		for (experts = 1; experts <= 16; experts++)
			for (red = 0; red <= 6; red++) {
				uint32_t spd, n, cnt[16];
				uint64_t load[3 * 16];
				int32_t p[3 * 64];

				if ((experts + red) % devices)
					continue;
				spd = (experts + red) / devices;
				n = devices * spd;
				for (e = 0; e < 3 * experts; e++)
					load[e] = (e * 2654435761u) % 97;
				shift = red;
				assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, NULL, 3, experts,
								  devices, spd), 0);
				for (l = 0; l < 3; l++) {
					memset(cnt, 0, sizeof(cnt));
					for (s = 0; s < n; s++) {
						assert_true(p[l * n + s] >= 0 &&
							    (uint32_t)p[l * n + s] < experts);
						cnt[p[l * n + s]]++;
					}
					for (e = 0; e < experts; e++)
						assert_true(cnt[e] >= 1);
					/* The first replica of e is on (e + shift) % devices. */
					for (e = 0; e < experts; e++) {
						d = (e + red) % devices;
						for (s = d * spd; s < (d + 1) * spd; s++)
							if ((uint32_t)p[l * n + s] == e)
								break;
						assert_true(s < (d + 1) * spd);
					}
				}
			}
}

static void test_refused(void **state)
{
	uint64_t load[8] = { 0 };
	int32_t p[80];
	uint32_t shift = 0;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, NULL, 1, 8, 65, 1), -EINVAL);
	assert_int_equal(serve_moe_rotate(&shift, NULL, p, load, NULL, 1, 8, 2, 3), -EINVAL);
	assert_int_equal(shift, 0);
}

/* Every slot holds an expert of the layer and every expert has a slot. */
static void assert_valid(const int32_t *p, uint32_t layers, uint32_t experts, uint32_t n)
{
	uint32_t l, s, e, cnt[64];

	assert_true(experts <= 64);
	for (l = 0; l < layers; l++) {
		memset(cnt, 0, sizeof(cnt));
		for (s = 0; s < n; s++) {
			int32_t x = p[(size_t)l * n + s];

			assert_true(x >= 0 && (uint32_t)x < experts);
			cnt[x]++;
		}
		for (e = 0; e < experts; e++)
			assert_true(cnt[e] >= 1);
	}
}

static void test_parse(void **state)
{
	struct serve_moe_planner p = { .plans = 3, .moves = 4 };
	struct serve_moe_opts o = { 0 };
	uint32_t k = 7;

	(void)state;
	assert_int_equal(serve_moe_policy_parse("rotate", &k), 0);
	assert_int_equal(k, SERVE_MOE_ROTATE);
	assert_int_equal(serve_moe_policy_parse("eplb", &k), 0);
	assert_int_equal(k, SERVE_MOE_EPLB);
	assert_int_equal(serve_moe_policy_parse("plan", &k), 0);
	assert_int_equal(k, SERVE_MOE_PLAN);
	assert_int_equal(serve_moe_policy_parse("EPLB", &k), -EINVAL);
	assert_int_equal(serve_moe_policy_parse("", &k), -EINVAL);
	assert_int_equal(k, SERVE_MOE_PLAN);
	assert_string_equal(serve_moe_policy_name(SERVE_MOE_EPLB), "eplb");
	assert_string_equal(serve_moe_policy_name(9), "?");
	p.kind = SERVE_MOE_ROTATE;
	serve_moe_policy_use(&p, &o);
	assert_null(o.policy);
	assert_null(o.policy_ctx);
	assert_int_equal(p.plans, 0);
	assert_int_equal(p.moves, 0);
	p.kind = SERVE_MOE_EPLB;
	serve_moe_policy_use(&p, &o);
	assert_ptr_equal(o.policy, serve_moe_eplb);
	assert_ptr_equal(o.policy_ctx, &p);
	p.kind = SERVE_MOE_PLAN;
	serve_moe_policy_use(&p, &o);
	assert_ptr_equal(o.policy, serve_moe_plan);
}

/* Both adapters on every small shape, one and two nodes, from the store's first placement. */
static void test_planners_valid(void **state)
{
	static const serve_moe_policy_fn fn[2] = { serve_moe_eplb, serve_moe_plan };
	uint32_t devices, experts, red, nodes, e, k, round;

	(void)state;
	for (devices = 1; devices <= 8; devices++)
		for (experts = 1; experts <= 16; experts++)
			for (red = 0; red <= 6; red++)
				for (nodes = 1; nodes <= 2; nodes++) {
					uint32_t spd, n, shift = 0;
					uint64_t load[3 * 16];
					int32_t old[3 * 64], p[3 * 64];

					if ((experts + red) % devices || devices % nodes)
						continue;
					spd = (experts + red) / devices;
					n = devices * spd;
					assert_int_equal(serve_moe_rotate(&shift, NULL, old, load, NULL, 3,
									  experts, devices, spd), 0);
					for (k = 0; k < 2; k++) {
						struct serve_moe_planner pl = { .kind = k + 1,
										.nodes = nodes };

						for (round = 0; round < 3; round++) {
							/* Zero, skewed, then uniform loads. */
							for (e = 0; e < 3 * experts; e++)
								load[e] = round == 0 ? 0 : round == 2 ? 5 :
									  (e * 2654435761u) % 997;
							memset(p, 0xff, sizeof(p));
							assert_int_equal(fn[k](&pl, old, p, load, NULL, 3,
									       experts, devices,
									       spd), 0);
							assert_valid(p, 3, experts, n);
							memcpy(old, p, sizeof(p));
						}
						assert_int_equal(pl.plans, 3);
					}
				}
}

/* Slots whose expert differs between two placements. */
static uint32_t moved(const int32_t *a, const int32_t *b, size_t n)
{
	uint32_t m = 0;
	size_t i;

	for (i = 0; i < n; i++)
		m += a[i] != b[i];
	return m;
}

/*
 * 3 layers of 16 experts on 4 devices of 5 slots, balanced by EPLB for one
 * load, then the hot experts shift by one: the planner keeps more experts
 * where they are than EPLB does, with the device loads still balanced.
 */
static void test_plan_moves_fewer(void **state)
{
	enum { L = 3, E = 16, D = 4, SPD = 5, N = D * SPD };
	struct serve_moe_planner ep = { .kind = SERVE_MOE_EPLB }, pl = { .kind = SERVE_MOE_PLAN };
	uint64_t a[L * E], b[L * E];
	int32_t start[L * N], old[L * N], pe[L * N], pp[L * N];
	uint32_t shift = 0, l, e, me, mp;

	(void)state;
	for (l = 0; l < L; l++)
		for (e = 0; e < E; e++) {
			a[l * E + e] = 100 + ((e * 7 + l * 3) % E) * ((e * 7 + l * 3) % E) * 10;
			b[l * E + e] = 100 + (((e + 1) * 7 + l * 3) % E) * (((e + 1) * 7 + l * 3) % E) * 10;
		}
	assert_int_equal(serve_moe_rotate(&shift, NULL, start, a, NULL, L, E, D, SPD), 0);
	assert_int_equal(serve_moe_eplb(&ep, start, old, a, NULL, L, E, D, SPD), 0);
	assert_int_equal(serve_moe_eplb(&ep, old, pe, b, NULL, L, E, D, SPD), 0);
	assert_int_equal(serve_moe_plan(&pl, old, pp, b, NULL, L, E, D, SPD), 0);
	assert_valid(pe, L, E, N);
	assert_valid(pp, L, E, N);
	me = moved(old, pe, L * N);
	mp = moved(old, pp, L * N);
	print_message("# shifted load: eplb moves %u slots (max/mean %.3f), plan %u (max/mean %.3f)\n",
		      me, ep.last.imbalance, mp, pl.last.imbalance);
	/* The adapters' costs count the same moves. */
	assert_int_equal(ep.last.moves, me);
	assert_int_equal(pl.last.moves, mp);
	assert_int_equal(pl.moves, mp);
	assert_true(mp < me);
	assert_true(pl.last.imbalance >= 1.0 && pl.last.imbalance <= 1.25);
}

/*
 * 2 layers of 8 experts on 2 nodes of a device of 4 slots, even load, the tokens
 * that chose expert e in layer 0 choosing e + 1 in layer 1 (3000 pairs
 * each: more than one expert's load, so worth a move): from a
 * placement where every such pair is split across the devices, the
 * planner given the co-activations puts pairs on one node (less
 * cross-node traffic than without them, scored on the same counts), and the
 * adapters log the traffic only when they have it.
 */
static void test_plan_uses_coact(void **state)
{
	enum { L = 2, E = 8, D = 2, SPD = 4, N = D * SPD };
	struct serve_moe_planner with = { .kind = SERVE_MOE_PLAN, .nodes = 2 },
				 without = { .kind = SERVE_MOE_PLAN, .nodes = 2 };
	uint32_t coact[(L - 1) * E * E] = { 0 }, shift = 0, e;
	int32_t old[L * N], pw[L * N], pn[L * N];
	uint64_t load[L * E];
	char *buf = NULL;
	size_t len = 0;
	FILE *log;

	(void)state;
	for (e = 0; e < L * E; e++)
		load[e] = 1000;
	for (e = 0; e < E; e++)
		coact[e * E + (e + 1) % E] = 3000;
	/* Expert e on device e % 2 in both layers: e and e + 1 always apart. */
	assert_int_equal(serve_moe_rotate(&shift, NULL, old, load, NULL, L, E, D, SPD), 0);
	log = open_memstream(&buf, &len);
	assert_non_null(log);
	with.log = log;
	assert_int_equal(serve_moe_plan(&with, old, pw, load, coact, L, E, D, SPD), 0);
	fflush(log);
	/* The traffic the new placement leaves, of all 24000 co-activated tokens. */
	assert_non_null(strstr(buf, "; traffic 24000 co-activated tokens ("));
	without.log = log;
	assert_int_equal(serve_moe_plan(&without, old, pn, load, NULL, L, E, D, SPD), 0);
	fclose(log);
	print_message("%s", buf);
	assert_valid(pw, L, E, N);
	assert_valid(pn, L, E, N);
	{
		ACCEL_OPTS(accel_moe_cost, cw);
		ACCEL_OPTS(accel_moe_cost, cn);
		ACCEL_OPTS(accel_moe_topo, t, .layers = L, .experts = E, .slots = N,
			   .devices = D, .nodes = 2, .groups = E);
		float w[L * E];

		for (e = 0; e < L * E; e++)
			w[e] = 1000.0f;
		assert_int_equal(accel_moe_cost(&t, w, coact, old, pw, &cw, NULL), 0);
		assert_int_equal(accel_moe_cost(&t, w, coact, old, pn, &cn, NULL), 0);
		print_message("# cross-node: %.0f of %.0f with the counts, %.0f without\n",
			      cw.cross_node, cw.traffic, cn.cross_node);
		assert_true(cw.traffic == 24000.0 && cn.traffic == 24000.0);
		assert_true(cw.cross_node < cn.cross_node);
		assert_true(cw.imbalance <= 1.25);
	}
	free(buf);
}

/* Shapes the planner cannot place: -EINVAL, nothing written, nothing counted. */
static void test_planners_refuse(void **state)
{
	static const serve_moe_policy_fn fn[2] = { serve_moe_eplb, serve_moe_plan };
	uint64_t load[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	int32_t old[16], p[16], want[16];
	uint32_t k, shift = 0;

	(void)state;
	assert_int_equal(serve_moe_rotate(&shift, NULL, old, load, NULL, 1, 8, 2, 4), 0);
	memset(want, 0x5a, sizeof(want));
	for (k = 0; k < 2; k++) {
		struct serve_moe_planner pl = { .kind = k + 1 };

		memcpy(p, want, sizeof(p));
		assert_int_equal(fn[k](&pl, old, p, load, NULL, 1, 8, 0, 4), -EINVAL);	/* no device */
		assert_int_equal(fn[k](&pl, old, p, load, NULL, 1, 8, 2, 3), -EINVAL);	/* 6 slots < 8 */
		assert_int_equal(fn[k](&pl, old, p, load, NULL, 0, 8, 2, 4), -EINVAL);	/* no layer */
		assert_int_equal(fn[k](&pl, old, p, load, NULL, 1, 0, 2, 4), -EINVAL);	/* no expert */
		pl.nodes = 3;								/* 3 nodes, 2 devices */
		assert_int_equal(fn[k](&pl, old, p, load, NULL, 1, 8, 2, 4), -EINVAL);
		assert_memory_equal(p, want, sizeof(p));
		assert_int_equal(pl.plans, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_by_hand),
		cmocka_unit_test(test_rotates_and_follows_load),
		cmocka_unit_test(test_every_shape_valid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_planners_valid),
		cmocka_unit_test(test_plan_moves_fewer),
		cmocka_unit_test(test_plan_uses_coact),
		cmocka_unit_test(test_planners_refuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
