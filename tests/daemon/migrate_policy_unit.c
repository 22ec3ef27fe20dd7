// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld's migration policy (daemon/migrate_policy.c; cmocka,
 * ASan/UBSan): virtual usage and fit, each trigger (drain, pressure
 * relief, load balance), the limits, draining and featureless engines,
 * shortest or longest first, nothing that fits, and random loads checked
 * against the rules (never past a limit, never to itself or to an engine
 * that may not take it, every request fits where it goes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kvacceld.h"
#include "migrate_policy.h"

static struct kvd_pol_config cfg(void)
{
	struct kvd_pol_config c = {
		.enabled = true, .max_out = 1, .max_in = 1, .balance_threshold = 0.25,
		.order = KVD_POL_SHORTEST, .headroom = 0, .high_priority = 1,
	};
	return c;
}

static struct kvd_pol_engine eng(uint32_t total, uint32_t free, const struct kvd_pol_req *reqs,
				 unsigned int n)
{
	struct kvd_pol_engine e = {
		.feature = true, .loaded = true, .total = total, .free = free,
		.running = n, .reqs = reqs, .nreqs = n,
	};
	return e;
}

static void usage_and_fit(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req hi = { .req = 1, .blocks = 10, .priority = 5 };
	struct kvd_pol_req lo = { .req = 2, .blocks = 10, .priority = 0 };
	struct kvd_pol_engine e = eng(100, 40, &hi, 1);

	(void)state;
	assert_true(kvd_pol_usage(&c, &e) > 0.59 && kvd_pol_usage(&c, &e) < 0.61);
	e.waiting = 1;
	e.hol_blocks = 20;
	assert_true(kvd_pol_usage(&c, &e) > 0.79 && kvd_pol_usage(&c, &e) < 0.81);
	/* The waiting request must still fit after a migration in. */
	assert_true(kvd_pol_fits(&c, &e, &lo));		/* 10 + 20 <= 40 */
	lo.blocks = 21;
	assert_false(kvd_pol_fits(&c, &e, &lo));
	/* Headroom: counted as used where a high-priority request runs; low ones may not use it. */
	c.headroom = 10;
	assert_true(kvd_pol_usage(&c, &e) > 0.89 && kvd_pol_usage(&c, &e) < 0.91);
	lo.blocks = 10;
	assert_true(kvd_pol_fits(&c, &e, &lo));		/* 10 + 10 + 20 <= 40 */
	lo.blocks = 11;
	assert_false(kvd_pol_fits(&c, &e, &lo));
	hi.blocks = 20;
	assert_true(kvd_pol_fits(&c, &e, &hi));		/* high priority: 20 + 20 <= 40 */
	e.total = 0;
	assert_true(kvd_pol_usage(&c, &e) == 0);
}

static void balance_moves_shortest_to_least_used(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req a[] = {
		{ .req = 11, .tokens = 900, .blocks = 8 },
		{ .req = 12, .tokens = 100, .blocks = 4 },
		{ .req = 13, .tokens = 500, .blocks = 6 },
	};
	struct kvd_pol_engine e[3] = { eng(100, 10, a, 3), eng(100, 90, NULL, 0),
				       eng(100, 60, NULL, 0) };
	struct kvd_pol_choice out[8];

	(void)state;
	assert_int_equal(1, kvd_pol_pick(&c, e, 3, out, 8));
	assert_int_equal(0, out[0].from);
	assert_int_equal(1, out[0].to);
	assert_int_equal(12, out[0].req);
	assert_int_equal(KVD_MIGRATE_BALANCE, out[0].reason);
	assert_int_equal(1, e[0].out);
	assert_int_equal(1, e[1].in);
	assert_int_equal(86, e[1].free);
	/* Longest first. */
	e[0].out = e[1].in = 0;
	e[1].free = 90;
	c.order = KVD_POL_LONGEST;
	assert_int_equal(1, kvd_pol_pick(&c, e, 3, out, 8));
	assert_int_equal(11, out[0].req);
	/* Under the threshold: nothing. */
	e[0].out = e[1].in = 0;
	e[1].free = 90;
	c.balance_threshold = 0.9;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 8));
	/* Policy off: nothing either. */
	c.balance_threshold = 0.25;
	c.enabled = false;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 8));
}

static void balance_does_not_overshoot(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req a[] = { { .req = 1, .tokens = 10, .blocks = 30 } };
	struct kvd_pol_engine e[2] = { eng(100, 40, a, 1), eng(100, 100, NULL, 0) };
	struct kvd_pol_choice out[4];

	(void)state;
	/* usage 0.6 vs 0.0: after, 0.3 vs 0.3: fine. */
	assert_int_equal(1, kvd_pol_pick(&c, e, 2, out, 4));
	e[0].out = e[1].in = 0;
	e[1].free = 100;
	/* 50 blocks: after, 0.1 vs 0.5, which the next tick would move back: no. */
	a[0].blocks = 50;
	assert_int_equal(0, kvd_pol_pick(&c, e, 2, out, 4));
	e[0].out = e[1].in = 0;
	e[1].free = 100;
	/* usage 0.9 vs 0.0 with an 80-block request: after, 0.1 vs 0.8 (> 0.1 + 0.25). */
	e[0].free = 10;
	a[0].blocks = 80;
	assert_int_equal(0, kvd_pol_pick(&c, e, 2, out, 4));
}

static void pressure_relief_prefers_smallest_covering(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req a[] = {
		{ .req = 1, .tokens = 50, .blocks = 3 },	/* short but does not cover */
		{ .req = 2, .tokens = 400, .blocks = 12 },
		{ .req = 3, .tokens = 300, .blocks = 7 },	/* covers the deficit of 6 */
	};
	struct kvd_pol_engine e[2] = { eng(100, 4, a, 3), eng(100, 50, NULL, 0) };
	struct kvd_pol_choice out[4];

	(void)state;
	c.balance_threshold = 1;	/* balance out of the way */
	e[0].waiting = 2;
	e[0].hol_blocks = 10;
	assert_int_equal(1, kvd_pol_pick(&c, e, 2, out, 4));
	assert_int_equal(3, out[0].req);
	assert_int_equal(KVD_MIGRATE_PRESSURE, out[0].reason);
	/* None covers it: the largest that fits somewhere. */
	e[0].out = e[1].in = 0;
	e[1].free = 50;
	e[0].hol_blocks = 40;
	assert_int_equal(1, kvd_pol_pick(&c, e, 2, out, 4));
	assert_int_equal(2, out[0].req);
	/* The head-of-line request fits: no pressure. */
	e[0].out = e[1].in = 0;
	e[1].free = 50;
	e[0].hol_blocks = 4;
	assert_int_equal(0, kvd_pol_pick(&c, e, 2, out, 4));
}

static void drain_moves_everything_within_limits(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req a[] = {
		{ .req = 1, .tokens = 30, .blocks = 5 },
		{ .req = 2, .tokens = 10, .blocks = 5 },
		{ .req = 3, .tokens = 20, .blocks = 5 },
	};
	struct kvd_pol_engine e[3] = { eng(100, 85, a, 3), eng(100, 50, NULL, 0),
				       eng(100, 70, NULL, 0) };
	struct kvd_pol_choice out[8];
	unsigned int n;

	(void)state;
	e[0].draining = true;
	c.enabled = false;	/* drain works without the policy's own triggers */
	/* One at a time (max_out 1): the shortest first, to the least used. */
	assert_int_equal(1, kvd_pol_pick(&c, e, 3, out, 8));
	assert_int_equal(2, out[0].req);
	assert_int_equal(2, out[0].to);
	assert_int_equal(KVD_MIGRATE_DRAIN, out[0].reason);
	/* More at a time: each destination takes max_in. */
	e[0].out = 0;
	e[2].in = 0;
	e[2].free = 70;
	c.max_out = 8;
	n = kvd_pol_pick(&c, e, 3, out, 8);
	assert_int_equal(2, n);
	assert_int_not_equal(out[0].to, out[1].to);
	/* Never into a draining engine. */
	e[0].out = e[1].in = e[2].in = 0;
	e[1].draining = e[2].draining = true;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 8));
}

static void busy_featureless_and_nothing_fits(void **state)
{
	struct kvd_pol_config c = cfg();
	struct kvd_pol_req a[] = {
		{ .req = 1, .tokens = 10, .blocks = 30, .busy = true },
		{ .req = 2, .tokens = 20, .blocks = 40 },
	};
	struct kvd_pol_engine e[3] = { eng(100, 5, a, 2), eng(100, 30, NULL, 0),
				       eng(100, 100, NULL, 0) };
	struct kvd_pol_choice out[4];

	(void)state;
	/* The best destination has not announced the feature; the other has no room. */
	e[2].feature = false;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 4));
	/* Not loaded either: same. */
	e[2].feature = true;
	e[2].loaded = false;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 4));
	/* Refusing migrations in. */
	e[2].loaded = true;
	e[2].no_inbound = true;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 4));
	/* Open again: the request not busy goes, the busy one never. */
	e[2].no_inbound = false;
	assert_int_equal(1, kvd_pol_pick(&c, e, 3, out, 4));
	assert_int_equal(2, out[0].req);
	assert_int_equal(2, out[0].to);
	/* A source already at max_out: nothing. */
	e[2].in = 0;
	e[2].free = 100;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 4));
	/* A source without the feature: nothing. */
	e[0].out = 0;
	e[0].feature = false;
	assert_int_equal(0, kvd_pol_pick(&c, e, 3, out, 4));
}

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static void random_loads_keep_the_rules(void **state)
{
	enum { N = 8, R = 16 };
	static struct kvd_pol_req reqs[N][R];
	struct kvd_pol_engine e[N], before[N];
	struct kvd_pol_choice out[64];
	unsigned int round, i, k, seen[KVD_MIGRATE_BALANCE + 1] = { 0 };

	(void)state;
	for (round = 0; round < 20000; round++) {
		struct kvd_pol_config c = cfg();
		unsigned int n = 2 + rnd(N - 1), got;
		unsigned int outs[N] = { 0 }, ins[N] = { 0 };

		c.enabled = rnd(4) != 0;
		c.max_out = 1 + rnd(3);
		c.max_in = 1 + rnd(3);
		c.balance_threshold = rnd(50) / 100.0;
		c.order = rnd(2) ? KVD_POL_LONGEST : KVD_POL_SHORTEST;
		c.headroom = rnd(3) ? 0 : rnd(20);
		c.high_priority = (int32_t)rnd(4);
		for (i = 0; i < n; i++) {
			uint32_t total = 1 + rnd(200), used = 0;
			unsigned int nr = rnd(R + 1);

			memset(&e[i], 0, sizeof(e[i]));
			e[i].feature = rnd(6) != 0;
			e[i].loaded = rnd(8) != 0;
			e[i].draining = rnd(6) == 0;
			e[i].no_inbound = rnd(10) == 0;
			e[i].total = total;
			for (k = 0; k < nr; k++) {
				reqs[i][k].req = 1000 * i + k;
				reqs[i][k].tokens = rnd(4000);
				reqs[i][k].blocks = rnd(total / 2 + 1);
				reqs[i][k].priority = (int32_t)rnd(5) - 1;
				reqs[i][k].busy = rnd(8) == 0;
				used += reqs[i][k].blocks;
			}
			e[i].free = used < total ? rnd(total - used + 1) : rnd(total + 1);
			e[i].waiting = rnd(3) ? 0 : 1 + rnd(5);
			e[i].hol_blocks = e[i].waiting ? rnd(total + 1) : 0;
			e[i].running = nr;
			e[i].out = rnd(c.max_out + 1);
			e[i].in = rnd(c.max_in + 1);
			e[i].reqs = reqs[i];
			e[i].nreqs = nr;
		}
		memcpy(before, e, sizeof(e));
		got = kvd_pol_pick(&c, e, n, out, 64);
		for (k = 0; k < got; k++) {
			const struct kvd_pol_choice *ch = &out[k];
			const struct kvd_pol_engine *s = &before[ch->from], *t = &before[ch->to];
			const struct kvd_pol_req *r = NULL;
			struct kvd_pol_engine at;
			unsigned int j;

			assert_true(ch->from < n && ch->to < n);
			assert_int_not_equal(ch->from, ch->to);
			assert_true(s->feature && s->loaded);
			assert_true(t->feature && t->loaded && !t->draining && !t->no_inbound);
			if (!c.enabled)
				assert_int_equal(KVD_MIGRATE_DRAIN, ch->reason);
			if (ch->reason == KVD_MIGRATE_DRAIN)
				assert_true(s->draining);
			for (j = 0; j < s->nreqs; j++)
				if (s->reqs[j].req == ch->req)
					r = &s->reqs[j];
			assert_non_null(r);
			assert_false(r->busy);
			assert_int_equal(r->blocks, ch->blocks);
			/* It fits the destination as the earlier picks of this tick left it. */
			at = *t;
			for (j = 0; j < k; j++)
				if (out[j].to == ch->to)
					at.free -= out[j].blocks;
			assert_true(kvd_pol_fits(&c, &at, r));
			for (j = 0; j < k; j++)
				assert_false(out[j].from == ch->from && out[j].req == ch->req);
			outs[ch->from]++;
			ins[ch->to]++;
			assert_true(ch->reason >= KVD_MIGRATE_DRAIN && ch->reason <= KVD_MIGRATE_BALANCE);
			seen[ch->reason]++;
		}
		for (i = 0; i < n; i++) {
			assert_true(before[i].out + outs[i] <= c.max_out || !outs[i]);
			assert_true(before[i].in + ins[i] <= c.max_in || !ins[i]);
			assert_int_equal(before[i].out + outs[i], e[i].out);
			assert_int_equal(before[i].in + ins[i], e[i].in);
		}
	}
	/* Every trigger had its turn. */
	assert_true(seen[KVD_MIGRATE_DRAIN] > 100);
	assert_true(seen[KVD_MIGRATE_PRESSURE] > 100);
	assert_true(seen[KVD_MIGRATE_BALANCE] > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(usage_and_fit),
		cmocka_unit_test(balance_moves_shortest_to_least_used),
		cmocka_unit_test(balance_does_not_overshoot),
		cmocka_unit_test(pressure_relief_prefers_smallest_covering),
		cmocka_unit_test(drain_moves_everything_within_limits),
		cmocka_unit_test(busy_featureless_and_nothing_fits),
		cmocka_unit_test(random_loads_keep_the_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
