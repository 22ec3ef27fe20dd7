// SPDX-License-Identifier: MIT
/*
 * The expert store's pure logic, natively (cmocka, ASan/UBSan): placement
 * checks, the executor's waves (each an intermediate placement that keeps
 * every expert served, only slots that change touched, at most K new copies
 * per device, the target reached), the bookkeeping of steps in flight per
 * version, the block size chosen for an expert's bytes, and which of
 * another instance's copies a new store's copies take.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_logic.h"

#define MAXS	256

/* Copies alive: what the current placement holds, per device (the store's rule). */
struct sim {
	const int32_t *cur;
	uint32_t spd, num_slots;
};

static bool sim_has(void *arg, uint32_t device, uint32_t expert)
{
	const struct sim *m = arg;
	uint32_t s;

	for (s = device * m->spd; s < (device + 1) * m->spd; s++)
		if ((uint32_t)m->cur[s] == expert)
			return true;
	return false;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A valid placement: every expert once, the rest random. */
static void random_placement(int32_t *p, uint32_t n, uint32_t experts, uint64_t *x)
{
	uint32_t i, j;

	for (i = 0; i < n; i++)
		p[i] = i < experts ? (int32_t)i : (int32_t)(rnd(x) % experts);
	for (i = n - 1; i > 0; i--) {
		int32_t t;

		j = (uint32_t)(rnd(x) % (i + 1));
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
}

static void test_placement_check(void **state)
{
	int32_t p[6] = { 0, 1, 2, 3, 0, 1 };

	(void)state;
	assert_int_equal(moe_placement_check(p, 6, 4), 0);
	p[5] = 4;
	assert_int_equal(moe_placement_check(p, 6, 4), -EINVAL);	/* past the experts */
	p[5] = -1;
	assert_int_equal(moe_placement_check(p, 6, 4), -EINVAL);
	p[5] = 1;
	p[3] = 2;
	assert_int_equal(moe_placement_check(p, 6, 4), -EINVAL);	/* 3 has no slot */
	assert_int_equal(moe_placement_check(p, 3, 4), -EINVAL);	/* fewer slots than experts */
	assert_int_equal(moe_placement_check(NULL, 6, 4), -EINVAL);
}

/* Apply waves until the target; check each one. Returns the waves taken. */
static uint32_t drive(int32_t *cur, const int32_t *target, uint32_t n, uint32_t experts,
		      uint32_t spd, uint32_t k, uint32_t *over)
{
	struct sim m = { cur, spd, n };
	int32_t wave[MAXS];
	uint32_t waves = 0, s, d;
	bool ok;
	int ret;

	for (;;) {
		ret = moe_next_wave(cur, target, n, experts, spd, k, sim_has, &m, wave, &ok);
		assert_true(ret >= 0);
		if (!ret)
			break;
		waves++;
		assert_true(waves <= n + 1);
		assert_int_equal(moe_placement_check(wave, n, experts), 0);
		for (s = 0; s < n; s++) {
			assert_true(wave[s] == cur[s] || wave[s] == target[s]);
			if (cur[s] == target[s])
				assert_int_equal(wave[s], cur[s]);	/* untouched */
		}
		if (ok) {
			(*over)++;
		} else {
			for (d = 0; d < n / spd; d++) {
				uint32_t copies = 0, t;

				for (s = d * spd; s < (d + 1) * spd; s++) {
					if (wave[s] == cur[s] || sim_has(&m, d, (uint32_t)wave[s]))
						continue;
					for (t = d * spd; t < s; t++)
						if (wave[t] == wave[s] && wave[t] != cur[t])
							break;
					copies += t == s;
				}
				assert_true(copies <= k);
			}
		}
		memcpy(cur, wave, n * sizeof(*cur));
	}
	assert_memory_equal(cur, target, n * sizeof(*cur));
	return waves;
}

static void test_waves_random(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint32_t it, over = 0, waves = 0;

	(void)state;
	for (it = 0; it < 400; it++) {
		uint32_t dev = 1 + (uint32_t)(rnd(&x) % 6), spd = 1 + (uint32_t)(rnd(&x) % 5);
		uint32_t n = dev * spd, experts = 1 + (uint32_t)(rnd(&x) % n);
		uint32_t k = 1 + (uint32_t)(rnd(&x) % 3);
		int32_t cur[MAXS], target[MAXS];

		random_placement(cur, n, experts, &x);
		random_placement(target, n, experts, &x);
		waves += drive(cur, target, n, experts, spd, k, &over);
	}
	/* Most waves keep to K; the cycles that cannot are rare. */
	assert_true(waves > 400);
	assert_true(over * 10 < waves);
}

static void test_swap_across_devices(void **state)
{
	/* Two devices of one slot: a <-> b needs one copy on each, in one wave. */
	int32_t cur[2] = { 0, 1 }, target[2] = { 1, 0 }, wave[2];
	struct sim m = { cur, 1, 2 };
	bool over;

	(void)state;
	assert_int_equal(moe_next_wave(cur, target, 2, 2, 1, 1, sim_has, &m, wave, &over), 2);
	assert_false(over);
	assert_memory_equal(wave, target, sizeof(wave));
}

static void test_rebind_within_device(void **state)
{
	/* One device of four slots: a permutation is all rebinds, one wave with any K. */
	int32_t cur[4] = { 0, 1, 2, 3 }, target[4] = { 3, 2, 1, 0 }, wave[4];
	struct sim m = { cur, 4, 4 };
	bool over;

	(void)state;
	assert_int_equal(moe_next_wave(cur, target, 4, 4, 4, 1, sim_has, &m, wave, &over), 4);
	assert_false(over);
	assert_memory_equal(wave, target, sizeof(wave));
}

static void test_k_limits_a_wave(void **state)
{
	/* Device 1 gets experts 0, 1, 2 (all on device 0): with K 1, three waves. */
	int32_t cur[6] = { 0, 1, 2, 3, 4, 5 }, target[6] = { 0, 1, 2, 0, 1, 2 };
	int32_t c2[6], wave[6];
	struct sim m = { cur, 3, 6 };
	uint32_t over = 0;
	bool o;

	(void)state;
	/* 3, 4, 5 lose their only slot: not a valid target for 6 experts. */
	assert_int_equal(moe_next_wave(cur, target, 6, 6, 3, 1, sim_has, &m, wave, &o), -EINVAL);
	memcpy(c2, cur, sizeof(c2));
	target[0] = 3, target[1] = 4, target[2] = 5;	/* a swap of the two devices' sets */
	assert_int_equal(drive(c2, target, 6, 6, 3, 1, &over), 3);
	assert_int_equal(over, 0);
	memcpy(c2, cur, sizeof(c2));
	assert_int_equal(drive(c2, target, 6, 6, 3, 3, &over), 1);
}

static void test_wave_bad_input(void **state)
{
	int32_t cur[4] = { 0, 1, 2, 3 }, target[4] = { 0, 1, 2, 3 }, wave[4];
	struct sim m = { cur, 2, 4 };
	bool over;

	(void)state;
	assert_int_equal(moe_next_wave(cur, target, 4, 4, 2, 1, sim_has, &m, wave, &over), 0);
	assert_int_equal(moe_next_wave(cur, target, 4, 4, 2, 0, sim_has, &m, wave, &over), -EINVAL);
	assert_int_equal(moe_next_wave(cur, target, 4, 4, 3, 1, sim_has, &m, wave, &over), -EINVAL);
	target[2] = 7;
	assert_int_equal(moe_next_wave(cur, target, 4, 4, 2, 1, sim_has, &m, wave, &over), -EINVAL);
	assert_int_equal(moe_next_wave(cur, NULL, 4, 4, 2, 1, sim_has, &m, wave, &over), -EINVAL);
}

static void test_epochs(void **state)
{
	struct moe_epochs e = { 0 };
	uint64_t v;
	uint32_t i;

	(void)state;
	assert_false(moe_epochs_oldest(&e, &v));
	assert_int_equal(moe_epochs_end(&e, 3), -EINVAL);
	assert_int_equal(moe_epochs_begin(&e, 5), 0);
	assert_int_equal(moe_epochs_begin(&e, 3), 0);
	assert_int_equal(moe_epochs_begin(&e, 3), 0);
	assert_int_equal(moe_epochs_count(&e), 3);
	assert_true(moe_epochs_oldest(&e, &v));
	assert_int_equal(v, 3);
	assert_int_equal(moe_epochs_end(&e, 3), 0);
	assert_true(moe_epochs_oldest(&e, &v));
	assert_int_equal(v, 3);
	assert_int_equal(moe_epochs_end(&e, 3), 0);
	assert_true(moe_epochs_oldest(&e, &v));
	assert_int_equal(v, 5);
	assert_false(moe_epochs_has(&e, 3));
	assert_int_equal(moe_epochs_end(&e, 7), -EINVAL);
	for (i = 0; i < 100; i++)
		assert_int_equal(moe_epochs_begin(&e, 10 + i), 0);
	assert_int_equal(moe_epochs_count(&e), 101);
	assert_int_equal(moe_epochs_end(&e, 5), 0);
	assert_true(moe_epochs_oldest(&e, &v));
	assert_int_equal(v, 10);
	moe_epochs_fini(&e);
}

static void test_block_size(void **state)
{
	uint32_t n;

	(void)state;
	assert_int_equal(moe_block_size(96 << 10, &n), 32 << 10);	/* the default expert */
	assert_int_equal(n, 3);
	assert_int_equal(moe_block_size(2 << 20, &n), 2 << 20);
	assert_int_equal(n, 1);
	assert_int_equal(moe_block_size(3 << 20, &n), 1 << 20);
	assert_int_equal(n, 3);
	assert_int_equal(moe_block_size(100, &n), 4096);
	assert_int_equal(n, 1);
	assert_int_equal(moe_block_size(33u << 20, &n), 2 << 20);	/* 17 blocks: 1/33 left over */
	assert_int_equal(n, 17);
}

/* By hand: entries of (layer, expert) on nodes, taken once each, node-matched. */
static void test_share_pick(void **state)
{
	/*  i:            0  1  2  3  4   5 */
	uint32_t layer[] = { 0, 0, 1, 0, 0, 1 };
	uint32_t expert[] = { 1, 1, 0, 1, 2, 0 };
	int32_t node[] = { 0, 1, -1, 1, 0, 1 };
	struct moe_share_index ix;
	int src;

	(void)state;
	assert_int_equal(moe_share_index_build(&ix, layer, expert, node, 6, 2, 3), 0);
	/* Layer 0 expert 1 on node 1: entries 1 and 3 fit, in order; then none left. */
	assert_int_equal(moe_share_pick(&ix, 0, 1, 1, &src), 1);
	assert_int_equal(src, 1);
	assert_int_equal(moe_share_pick(&ix, 0, 1, 1, &src), 3);
	assert_int_equal(moe_share_pick(&ix, 0, 1, 1, &src), -1);
	assert_int_equal(src, 1);	/* a node-1 entry to copy from, used or not */
	/* Node 0: entry 0; a device of any node takes what is left (none). */
	assert_int_equal(moe_share_pick(&ix, 0, 1, 0, &src), 0);
	assert_int_equal(moe_share_pick(&ix, 0, 1, -1, &src), -1);
	assert_int_equal(src, 0);
	/* Layer 0 expert 2 is on node 0 only: a node-1 device copies it from entry 4. */
	assert_int_equal(moe_share_pick(&ix, 0, 2, 1, &src), -1);
	assert_int_equal(src, 4);
	/* Layer 1 expert 0: entry 2 (any node) fits node 0; entry 5 is node 1's. */
	assert_int_equal(moe_share_pick(&ix, 1, 0, 0, &src), 2);
	assert_int_equal(moe_share_pick(&ix, 1, 0, 0, &src), -1);
	assert_int_equal(src, 2);
	assert_int_equal(moe_share_pick(&ix, 1, 0, 1, &src), 5);
	/* No entry at all. */
	assert_int_equal(moe_share_pick(&ix, 0, 0, 0, &src), -1);
	assert_int_equal(src, -1);
	moe_share_index_fini(&ix);
	/* Out of range. */
	layer[2] = 2;
	assert_int_equal(moe_share_index_build(&ix, layer, expert, node, 6, 2, 3), -EINVAL);
	layer[2] = 1;
	node[0] = -2;
	assert_int_equal(moe_share_index_build(&ix, layer, expert, node, 6, 2, 3), -EINVAL);
}

/* Random entries: each taken at most once, only by a fitting node, every fitting one taken. */
static void test_share_pick_random(void **state)
{
	uint32_t layer[64], expert[64], round;
	int32_t node[64];

	(void)state;
	srand(7);
	for (round = 0; round < 200; round++) {
		uint32_t n = 1 + (uint32_t)rand() % 64, L = 1 + (uint32_t)rand() % 3;
		uint32_t E = 1 + (uint32_t)rand() % 5, i, taken = 0, tries;
		bool seen[64] = { false };
		struct moe_share_index ix;

		for (i = 0; i < n; i++) {
			layer[i] = (uint32_t)rand() % L;
			expert[i] = (uint32_t)rand() % E;
			node[i] = (int32_t)(rand() % 3) - 1;
		}
		assert_int_equal(moe_share_index_build(&ix, layer, expert, node, n, L, E), 0);
		for (tries = 0; tries < 4 * n; tries++) {
			uint32_t l = (uint32_t)rand() % L, e = (uint32_t)rand() % E;
			int32_t nd = (int32_t)(rand() % 3) - 1;
			int src, got = moe_share_pick(&ix, l, e, nd, &src);
			bool any = false, fit_left = false;

			for (i = 0; i < n; i++) {
				if (layer[i] != l || expert[i] != e)
					continue;
				any = true;
				if (!seen[i] && (node[i] == -1 || nd == -1 || node[i] == nd))
					fit_left = true;
			}
			assert_true(any ? src >= 0 : src == -1);
			if (src >= 0) {
				assert_int_equal(layer[src], l);
				assert_int_equal(expert[src], e);
			}
			assert_int_equal(got >= 0, fit_left);
			if (got < 0)
				continue;
			assert_false(seen[got]);
			assert_int_equal(layer[got], l);
			assert_int_equal(expert[got], e);
			assert_true(node[got] == -1 || nd == -1 || node[got] == nd);
			seen[got] = true;
			taken++;
		}
		assert_true(taken <= n);
		moe_share_index_fini(&ix);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placement_check),
		cmocka_unit_test(test_waves_random),
		cmocka_unit_test(test_swap_across_devices),
		cmocka_unit_test(test_rebind_within_device),
		cmocka_unit_test(test_k_limits_a_wave),
		cmocka_unit_test(test_wave_bad_input),
		cmocka_unit_test(test_epochs),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_share_pick),
		cmocka_unit_test(test_share_pick_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
