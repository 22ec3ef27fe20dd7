// SPDX-License-Identifier: GPL-2.0-only
/*
 * The scheduler (accel_sched_*), directed tests: bad arguments change
 * nothing, fcfs's budget, chunks and recompute, the cost model's swap or
 * recompute, each policy's order, should_yield, the eventfd, pressure.
 * cmocka, ASan/UBSan (make build/native/sched_unit).
 */
#include "sched_common.h"

static struct accel_sched_config cfg_of(uint32_t policy, uint32_t max_tokens, uint32_t max_seqs)
{
	struct accel_sched_config c = { .sz = sizeof(c), .policy = policy,
					 .max_tokens = max_tokens, .max_seqs = max_seqs };
	return c;
}

static void test_create_bad(void **state)
{
	uint32_t blocks[1] = { 16 };
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = 4, .nr_tiers = 1, .tier_blocks = blocks);
	struct accel_bm *bm = accel_bm_create(&bc);
	struct accel_sched_config c;
	struct {
		struct accel_sched_config c;
		uint64_t extra;
	} big;

	(void)state;
	assert_null(accel_sched_create(NULL));
	assert_int_equal(errno, EINVAL);
	c = cfg_of(0, 0, 0);
	assert_null(accel_sched_create(&c));	/* no bm */
	assert_int_equal(errno, EINVAL);
	c.bm = bm;
	c.policy = ACCEL_SCHED_NR_POLICIES;
	assert_null(accel_sched_create(&c));
	c = cfg_of(0, 16, 32);
	c.bm = bm;
	assert_null(accel_sched_create(&c));	/* more sequences than tokens */
	c = cfg_of(0, 0, 0);
	c.bm = bm;
	c.flags = 1;
	assert_null(accel_sched_create(&c));
	memset(&big, 0, sizeof(big));
	big.c = cfg_of(0, 0, 0);
	big.c.sz = sizeof(big);
	big.c.bm = bm;
	big.extra = 1;
	assert_null(accel_sched_create(&big.c));
	assert_int_equal(errno, E2BIG);
	big.extra = 0;
	accel_sched_destroy(accel_sched_create(&big.c));
	assert_string_equal(accel_sched_policy_name(ACCEL_SCHED_SLO), "slo");
	assert_null(accel_sched_policy_name(99));
	accel_bm_destroy(bm);
}

static void test_add_bad(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FAIR, 64, 8);
	ACCEL_OPTS(accel_sched_stats, st);
	int32_t p[4] = { 1, 2, 3, 4 };
	struct eng e;
	uint32_t req;

	(void)state;
	c.max_clients = 4;
	eng_init(&e, 4, 16, 0, &c);
	ACCEL_OPTS(accel_sched_req_opts, o, .prompt = p, .prompt_len = 4);
	assert_int_equal(accel_sched_add(e.s, NULL, &req), -EINVAL);
	assert_int_equal(accel_sched_add(e.s, &o, NULL), -EINVAL);
	o.prompt_len = 0;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	o.prompt_len = 4;
	o.prompt = NULL;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	o.prompt = p;
	o.flags = 2;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	o.flags = 0;
	o.client = 4;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	o.client = 0;
	o.extra_keys_len = 3;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	o.extra_keys_len = 0;
	o.sz = 4;
	assert_int_equal(accel_sched_add(e.s, &o, &req), -EINVAL);
	assert_int_equal(accel_sched_stats(e.s, &st), 0);
	assert_int_equal(st.requests, 0);
	assert_int_equal(accel_sched_abort(e.s, 7, 0), -ENOENT);
	assert_int_equal(accel_sched_remove(e.s, 7), -ENOENT);
	assert_int_equal(accel_sched_swap_done(e.s, 7, 0, 0), -EINVAL);
	assert_int_equal(accel_sched_step(e.s, 0, NULL), -EINVAL);
	assert_int_equal(accel_sched_release(e.s, 5, 1, 0, NULL), -EINVAL);
	assert_int_equal(accel_sched_should_yield(NULL), 0);
	eng_fini(&e);
}

/* fcfs: chunked prefill under the budget, decodes first, finish at max_output. */
static void test_fcfs_chunks(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 40, 4);
	ACCEL_OPTS(accel_sched_req_info, info);
	uint32_t a, b, step;
	struct eng e;

	(void)state;
	c.chunk_tokens = 32;
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 100, 3, 0, 0, 0, 0, 0, &a), 0);
	assert_int_equal(eng_add(&e, 2, 10, 3, 0, 0, 0, 0, 0, &b), 0);
	/* Step 1: a's first chunk (32), b's 8 of 10 (budget 40). */
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(e.out.nr_runs, 2);
	assert_int_equal(e.out.tokens, 40);
	assert_int_equal(eng_run(&e, a)->tokens, 32);
	assert_int_equal(eng_run(&e, a)->flags, ACCEL_SCHED_RUN_PREFILL);
	assert_int_equal(eng_run(&e, b)->tokens, 8);
	/* Not updated yet: no next step. */
	{
		struct accel_sched_out o2 = { .sz = sizeof(o2) };

		assert_int_equal(accel_sched_step(e.s, e.now, &o2), -EBUSY);
	}
	eng_compute(&e);
	for (step = 0; step < 20 && eng_state(&e, a) != ACCEL_SCHED_FINISHED; step++) {
		assert_int_equal(eng_step(&e), 0);
		assert_true(e.out.tokens <= 40);
		e.now += 1000;
		eng_compute(&e);
	}
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_FINISHED);
	assert_int_equal(accel_sched_req_info(e.s, a, &info), 0);
	assert_int_equal(info.output_tokens, 3);
	assert_int_equal(info.nr_tokens, 103);
	assert_true(info.first_token_ns > info.arrival_ns);
	assert_int_equal(info.tpot_count, 2);
	assert_int_equal(info.recomputed_tokens, 0);
	{
		int32_t t[3];

		assert_int_equal(accel_sched_tokens(e.s, a, 100, 3, t), 0);
		assert_int_equal(t[0], eng_token(1, 100));
		assert_int_equal(accel_sched_tokens(e.s, a, 101, 3, t), -ERANGE);
	}
	assert_int_equal(accel_sched_remove(e.s, a), 0);
	eng_fini(&e);
}

/* fcfs, recompute: when blocks run out, the last admitted is dropped and finishes later. */
static void test_fcfs_recompute(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	ACCEL_OPTS(accel_sched_req_info, info);
	uint32_t a, b, i;
	bool seen = false;
	struct eng e;

	(void)state;
	c.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
	eng_init(&e, 4, 8, 0, &c);	/* 32 tokens in all */
	assert_int_equal(eng_add(&e, 1, 12, 10, 0, 0, 0, 0, 0, &a), 0);
	assert_int_equal(eng_add(&e, 2, 12, 10, 0, 0, 0, 0, 0, &b), 0);
	for (i = 0; i < 80 && eng_state(&e, b) != ACCEL_SCHED_FINISHED; i++) {
		uint32_t k;

		assert_int_equal(eng_step(&e), 0);
		for (k = 0; k < e.out.nr_events; k++)
			if (e.events[k].to == ACCEL_SCHED_RECOMPUTE) {
				assert_int_equal(e.events[k].req, b);	/* the last admitted */
				seen = true;
			}
		e.now += 1000;
		eng_compute(&e);
	}
	assert_true(seen);
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_FINISHED);
	assert_int_equal(accel_sched_req_info(e.s, b, &info), 0);
	assert_true(info.recomputes >= 1);
	assert_true(info.recomputed_tokens >= 12);
	assert_int_equal(info.output_tokens, 10);
	{
		int32_t t[10];

		/* The tokens a recompute produced are the same ones. */
		assert_int_equal(accel_sched_tokens(e.s, b, 12, 10, t), 0);
		for (i = 0; i < 10; i++)
			assert_int_equal(t[i], eng_token(2, 12 + i));
	}
	eng_fini(&e);
}

/* Fill the device tier with a (admitted first) and b, so that b's growth preempts. */
static uint32_t preempt_one(struct eng *e, uint32_t *a, uint32_t *b)
{
	uint32_t i, k;

	assert_int_equal(eng_add(e, 1, 12, 12, 0, 0, 0, 0, 0, a), 0);
	assert_int_equal(eng_add(e, 2, 12, 12, 0, 0, 0, 0, 0, b), 0);
	for (i = 0; i < 40; i++) {
		assert_int_equal(eng_step(e), 0);
		e->now += 1000;
		for (k = 0; k < e->out.nr_events; k++) {
			if (e->events[k].to == ACCEL_SCHED_SWAPPING_OUT ||
			    e->events[k].to == ACCEL_SCHED_SWAPPED ||
			    e->events[k].to == ACCEL_SCHED_RECOMPUTE) {
				eng_compute(e);
				return e->events[k].to;
			}
		}
		eng_compute(e);
	}
	fail_msg("no preemption");
	return 0;
}

/* The cost model: a fast link swaps, a slow one recomputes. */
static void test_cost_model(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	ACCEL_OPTS(accel_sched_req_info, info);
	ACCEL_OPTS(accel_sched_stats, st);
	struct accel_bm_run runs[16];
	uint32_t a, b, i;
	struct eng e;

	(void)state;
	c.swap_bw = 100ull << 30;	/* 100 GiB/s: 2 x 4 blocks x 16 KiB take 1.3 us */
	eng_init(&e, 4, 8, 64, &c);
	assert_int_equal(preempt_one(&e, &a, &b), ACCEL_SCHED_SWAPPING_OUT);
	assert_int_equal(e.out.nr_swaps, 1);
	assert_int_equal(e.swaps[0].req, b);
	assert_int_equal(e.swaps[0].dir, ACCEL_SCHED_SWAP_OUT);
	assert_true(e.swaps[0].blocks > 0);
	assert_true(accel_bm_plan_runs(e.bm, e.swaps[0].plan_id, 0, runs, 16) >= 1);
	assert_int_equal(runs[0].src_tier, 0);
	assert_int_equal(runs[0].dst_tier, 1);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_SWAPPING_OUT);
	eng_swaps(&e, 0);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_SWAPPED);
	/* Swapped in once a finishes; not runnable until the swap-in is done. */
	for (i = 0; i < 100 && eng_state(&e, b) != ACCEL_SCHED_SWAPPING_IN; i++) {
		assert_int_equal(eng_step(&e), 0);
		e.now += 1000;
		eng_compute(&e);
	}
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_SWAPPING_IN);
	assert_int_equal(e.swaps[0].dir, ACCEL_SCHED_SWAP_IN);
	assert_int_equal(eng_step(&e), 0);
	assert_null(eng_run(&e, b));
	eng_compute(&e);
	assert_int_equal(accel_sched_swap_done(e.s, b, 0, e.now), 0);
	eng_run_steps(&e, 60);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_FINISHED);
	assert_int_equal(accel_sched_req_info(e.s, b, &info), 0);
	assert_int_equal(info.swaps_out, 1);
	assert_int_equal(info.recomputed_tokens, 0);
	assert_true(info.swapped_bytes > 0);
	assert_int_equal(accel_sched_stats(e.s, &st), 0);
	assert_int_equal(st.swaps_in, 1);
	eng_fini(&e);

	/* 1 MB/s: the swap costs seconds, the prefill of 12 tokens 2.6 ms. */
	c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	c.swap_bw = 1000000;
	eng_init(&e, 4, 8, 64, &c);
	assert_int_equal(preempt_one(&e, &a, &b), ACCEL_SCHED_RECOMPUTE);
	eng_fini(&e);

	/* A failed swap-out falls back to recompute. */
	c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	c.preempt = ACCEL_SCHED_PREEMPT_SWAP;
	eng_init(&e, 4, 8, 64, &c);
	assert_int_equal(preempt_one(&e, &a, &b), ACCEL_SCHED_SWAPPING_OUT);
	assert_int_equal(accel_sched_swap_done(e.s, b, -EIO, e.now), 0);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_RECOMPUTE);
	assert_int_equal(accel_sched_swap_done(e.s, b, 0, e.now), -EINVAL);
	eng_run_steps(&e, 80);
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_FINISHED);
	eng_fini(&e);
}

/* priority: a waiting request preempts running ones past the threshold, not within it. */
static void test_priority(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_PRIORITY, 64, 2);
	uint32_t lo, mid, hi;
	struct eng e;

	(void)state;
	c.priority_threshold = 5;
	c.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
	eng_init(&e, 4, 64, 0, &c);
	assert_int_equal(eng_add(&e, 1, 8, 50, 10, 0, 0, 0, 0, &lo), 0);
	assert_int_equal(eng_add(&e, 2, 8, 50, 8, 0, 0, 0, 0, &mid), 0);
	eng_run_steps(&e, 2);
	/* Slots full (max_seqs 2). Priority 6: within the threshold of 10, waits. */
	assert_int_equal(eng_add(&e, 3, 8, 5, 6, 0, 0, 0, 0, &hi), 0);
	eng_run_steps(&e, 1);
	assert_int_equal(eng_state(&e, hi), ACCEL_SCHED_WAITING);
	assert_int_equal(accel_sched_abort(e.s, hi, e.now), 0);
	assert_int_equal(eng_state(&e, hi), ACCEL_SCHED_ABORTED);
	assert_int_equal(accel_sched_abort(e.s, hi, e.now), -EALREADY);
	/* Priority 1: preempts the lowest (10), not 8. */
	assert_int_equal(eng_add(&e, 4, 8, 5, 1, 0, 0, 0, 0, &hi), 0);
	assert_int_equal(eng_step(&e), 0);
	assert_non_null(eng_run(&e, hi));
	assert_int_equal(eng_state(&e, lo), ACCEL_SCHED_RECOMPUTE);
	assert_int_not_equal(eng_state(&e, mid), ACCEL_SCHED_RECOMPUTE);
	eng_compute(&e);
	eng_run_steps(&e, 120);
	assert_int_equal(eng_state(&e, lo), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, mid), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, hi), ACCEL_SCHED_FINISHED);
	eng_fini(&e);
}

/* The order of admission of the waiting requests added, one a step (max_seqs 1). */
static void order_of(struct eng *e, const uint32_t *reqs, uint32_t n, uint32_t *order)
{
	uint32_t got = 0, i, k;

	for (i = 0; i < 400 && got < n; i++) {
		assert_int_equal(eng_step(e), 0);
		for (k = 0; k < e->out.nr_events; k++)
			if (e->events[k].to == ACCEL_SCHED_PREFILLING &&
			    (e->events[k].from == ACCEL_SCHED_WAITING))
				order[got++] = e->events[k].req;
		e->now += 1000;
		eng_compute(e);
	}
	assert_int_equal(got, n);
	(void)reqs;
}

/* slo: feasible by deadline, then no SLO, then late ones by latest deadline. */
static void test_slo_order(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_SLO, 64, 1);
	uint32_t r[5], order[5];
	struct eng e;

	(void)state;
	c.prefill_base_ns = 1000;
	c.prefill_token_ns = 1000;	/* 8 tokens: 9 us */
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 8, 1, 0, 0, 0, 0, 0, &r[0]), 0);		/* none */
	assert_int_equal(eng_add(&e, 2, 8, 1, 0, 0, 0, 5000, 0, &r[1]), 0);	/* late */
	assert_int_equal(eng_add(&e, 3, 8, 1, 0, 0, 0, 900000000, 0, &r[2]), 0);
	assert_int_equal(eng_add(&e, 4, 8, 1, 0, 0, 0, 300000000, 0, &r[3]), 0);
	assert_int_equal(eng_add(&e, 5, 8, 1, 0, 0, 0, 7000, 0, &r[4]), 0);	/* late */
	order_of(&e, r, 5, order);
	assert_int_equal(order[0], r[3]);
	assert_int_equal(order[1], r[2]);
	assert_int_equal(order[2], r[0]);
	assert_int_equal(order[3], r[4]);	/* the later deadline of the late ones */
	assert_int_equal(order[4], r[1]);
	eng_fini(&e);
}

/* slo: a decode well ahead of its TPOT skips steps while prefills wait. */
static void test_slo_pacing(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_SLO, 64, 4);
	uint32_t d, p, i, ran = 0;
	struct eng e;

	(void)state;
	c.step_ns = 1000000;
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 4, 100, 0, 0, 0, 0, 50000000, &d), 0);	/* 50 ms TPOT */
	eng_run_steps(&e, 1);
	assert_int_equal(eng_state(&e, d), ACCEL_SCHED_DECODING);
	/* Prefill demand. */
	assert_int_equal(eng_add(&e, 2, 1000, 1, 0, 0, 0, 0, 0, &p), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(eng_step(&e), 0);
		ran += eng_run(&e, d) != NULL;
		e.now += 1000000;
		eng_compute(&e);
	}
	assert_true(ran < 5);
	eng_fini(&e);
}

/*
 * A waiting request that cannot start (no slot, and nothing it may
 * preempt) stops admissions only: the running prefill behind it in the
 * policy's order still runs, even while pacing holds the decodes back.
 */
static void test_blocked_arrival_no_stall(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_SLO, 64, 2);
	uint32_t d, p, w, i, ran = 0;
	struct eng e;

	(void)state;
	c.step_ns = 1000000;
	eng_init(&e, 4, 1024, 0, &c);
	/* 50 ms TPOT, and a TTFT SLO (met): no arrival outranks it. */
	assert_int_equal(eng_add(&e, 1, 4, 100, 0, 0, 0, 10000000000ull, 50000000, &d), 0);
	eng_run_steps(&e, 1);
	assert_int_equal(eng_state(&e, d), ACCEL_SCHED_DECODING);
	/* A long prefill already late (so nothing outranks it), in the second slot. */
	assert_int_equal(eng_add(&e, 2, 1000, 1, 0, 0, 0, 1, 0, &p), 0);
	eng_run_steps(&e, 1);
	assert_int_equal(eng_state(&e, p), ACCEL_SCHED_PREFILLING);
	/* A feasible arrival goes first in the order, but has no slot. */
	assert_int_equal(eng_add(&e, 3, 8, 1, 0, 0, 0, 10000000000ull, 0, &w), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(eng_step(&e), 0);
		ran += eng_run(&e, p) != NULL;
		assert_null(eng_run(&e, w));
		e.now += 1000000;
		eng_compute(&e);
	}
	assert_int_equal(ran, 10);
	assert_int_equal(eng_state(&e, w), ACCEL_SCHED_WAITING);
	eng_fini(&e);
}

/*
 * slo under a bursty two-class load on a small tier: a step that runs
 * nothing while requests are alive and nothing is in flight (every swap is
 * done at once here) is followed by one that runs something. Before, a
 * running prefill kept the decodes paced while admissions were short of
 * blocks: kvaccel-sim saw 83 empty steps in a row, which an engine that
 * waits for an event without a timeout would never leave.
 */
static void test_slo_no_empty_steps(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_SLO, 512, 64);
	uint32_t i, k, req, empty = 0, worst = 0, tag = 0, live;
	ACCEL_OPTS(accel_sched_stats, st);
	uint64_t rng = 7;
	struct eng e;

	(void)state;
	c.step_ns = 10000000;
	eng_init(&e, 16, 200, 2000, &c);
	for (i = 0; i < 12000; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if (i < 2500 && (rng >> 33) % 100 < 3) {
			for (k = 0; k < 1 + (rng >> 40) % 12; k++) {
				bool hi = (tag + k) % 5 == 0;

				rng = rng * 6364136223846793005ull + 1442695040888963407ull;
				assert_int_equal(eng_add(&e, tag++, 50 + (rng >> 33) % 1200,
							 20 + (rng >> 45) % 200, 0, 0, 0,
							 hi ? 1000000000ull : 10000000000ull,
							 hi ? 100000000ull : 200000000ull, &req), 0);
			}
		}
		assert_int_equal(eng_step(&e), 0);
		assert_int_equal(accel_sched_stats(e.s, &st), 0);
		live = st.requests - st.in_state[ACCEL_SCHED_FINISHED];
		if (e.out.nr_runs || !live || e.out.nr_swaps)
			empty = 0;
		else if (++empty > worst)
			worst = empty;
		e.now += 10000000;
		eng_compute(&e);
		eng_swaps(&e, 0);
	}
	assert_int_equal(accel_sched_stats(e.s, &st), 0);
	print_message("slo: %u requests, %u finished, worst run of empty steps %u, swaps %llu, recomputes %llu\n", tag, st.in_state[ACCEL_SCHED_FINISHED], worst, (unsigned long long)st.swaps_out, (unsigned long long)st.recomputes);
	assert_int_equal(st.in_state[ACCEL_SCHED_FINISHED], tag);
	assert_true(st.swaps_out + st.recomputes > 0);
	assert_true(worst <= 1);
	eng_fini(&e);
}

/* fair: VTC serves the client with the smallest counter. */
static void test_fair(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FAIR, 64, 1);
	uint32_t r[6], order[6], i;
	struct eng e;

	(void)state;
	eng_init(&e, 4, 256, 0, &c);
	/* Client 0 sends four, client 1 two, all at once. */
	for (i = 0; i < 4; i++)
		assert_int_equal(eng_add(&e, 10 + i, 8, 1, 0, 0, 0, 0, 0, &r[i]), 0);
	for (i = 4; i < 6; i++)
		assert_int_equal(eng_add(&e, 10 + i, 8, 1, 0, 1, 0, 0, 0, &r[i]), 0);
	order_of(&e, r, 6, order);
	/* Alternating while both are backlogged: 0 1 0 1 0 0. */
	assert_int_equal(order[0], r[0]);
	assert_int_equal(order[1], r[4]);
	assert_int_equal(order[2], r[1]);
	assert_int_equal(order[3], r[5]);
	assert_int_equal(order[4], r[2]);
	assert_int_equal(order[5], r[3]);
	eng_fini(&e);
}

/* hybrid: online before offline; an online arrival preempts offline first. */
static void test_hybrid(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_HYBRID, 64, 2);
	uint32_t off1, off2, on1, on2;
	struct eng e;

	(void)state;
	c.preempt = ACCEL_SCHED_PREEMPT_RECOMPUTE;
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 8, 30, 0, 0, ACCEL_SCHED_REQ_OFFLINE, 0, 0, &off1), 0);
	assert_int_equal(eng_add(&e, 2, 8, 30, 0, 0, 0, 0, 0, &on1), 0);
	assert_int_equal(eng_step(&e), 0);
	/* Online first: both fit, but on1 is admitted before off1. */
	assert_int_equal(e.out.nr_runs, 2);
	assert_int_equal(e.runs[0].req, on1);
	eng_compute(&e);
	assert_int_equal(eng_add(&e, 3, 8, 30, 0, 0, ACCEL_SCHED_REQ_OFFLINE, 0, 0, &off2), 0);
	assert_int_equal(eng_add(&e, 4, 8, 30, 0, 0, 0, 0, 0, &on2), 0);
	assert_int_equal(eng_step(&e), 0);
	assert_non_null(eng_run(&e, on2));
	assert_int_equal(eng_state(&e, off1), ACCEL_SCHED_RECOMPUTE);
	assert_int_equal(eng_state(&e, off2), ACCEL_SCHED_WAITING);
	eng_compute(&e);
	eng_run_steps(&e, 200);
	assert_int_equal(eng_state(&e, off1), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, off2), ACCEL_SCHED_FINISHED);
	eng_fini(&e);
}

/* should_yield: a higher class arrives during a prefill; it resumes at its layer. */
static void test_yield(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_PRIORITY, 64, 4);
	const struct accel_sched_run *run;
	ACCEL_OPTS(accel_sched_req_info, info);
	uint32_t lo, hi;
	uint64_t start;
	struct eng e;

	(void)state;
	c.chunk_tokens = 32;
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 100, 2, 5, 0, 0, 0, 0, &lo), 0);
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(accel_sched_should_yield(e.s), 0);
	/* Same class: no yield. */
	assert_int_equal(eng_add(&e, 2, 8, 2, 5, 0, 0, 0, 0, &hi), 0);
	assert_int_equal(accel_sched_should_yield(e.s), 0);
	assert_int_equal(eng_add(&e, 3, 8, 2, 0, 0, 0, 0, 0, &hi), 0);
	assert_int_equal(accel_sched_should_yield(e.s), 1);
	run = eng_run(&e, lo);
	start = run->start;
	{
		ACCEL_OPTS(accel_sched_result, res, .computed = 0, .layers_done = 1,
			   .flags = ACCEL_SCHED_RES_YIELDED);
		ACCEL_OPTS(accel_sched_result, bad, .computed = 1, .layers_done = 1,
			   .flags = ACCEL_SCHED_RES_YIELDED);

		assert_int_equal(accel_sched_update(e.s, lo, &bad, e.now), -EINVAL);
		assert_int_equal(accel_sched_update(e.s, lo, &res, e.now), 0);
	}
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(accel_sched_should_yield(e.s), 0);
	assert_non_null(eng_run(&e, hi));
	assert_int_equal(e.runs[0].req, hi);	/* the urgent one first */
	run = eng_run(&e, lo);
	assert_non_null(run);
	assert_int_equal(run->start, start);
	assert_int_equal(run->tokens, 32);
	assert_int_equal(run->start_layer, 1);
	assert_true(run->flags & ACCEL_SCHED_RUN_RESUME);
	eng_compute(&e);
	eng_run_steps(&e, 20);
	assert_int_equal(eng_state(&e, lo), ACCEL_SCHED_FINISHED);
	assert_int_equal(accel_sched_req_info(e.s, lo, &info), 0);
	assert_int_equal(info.yields, 1);
	assert_int_equal(info.recomputed_tokens, 0);
	eng_fini(&e);
}

/* update's bad arguments change nothing. */
static void test_update_bad(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	ACCEL_OPTS(accel_sched_req_info, info);
	uint32_t a;
	struct eng e;

	(void)state;
	eng_init(&e, 4, 256, 0, &c);
	assert_int_equal(eng_add(&e, 1, 8, 2, 0, 0, 0, 0, 0, &a), 0);
	{
		ACCEL_OPTS(accel_sched_result, res, .computed = 8, .flags = ACCEL_SCHED_RES_TOKEN);

		/* Not run yet. */
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		assert_int_equal(eng_step(&e), 0);
		res.computed = 9;
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		res.computed = 4;	/* a token before the end */
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		res.computed = 8;
		res.flags = 0;		/* the end without a token */
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		res.flags = 1u << 7;
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		res.flags = ACCEL_SCHED_RES_YIELDED;	/* with computed tokens */
		res.layers_done = 1;
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), -EINVAL);
		assert_int_equal(accel_sched_req_info(e.s, a, &info), 0);
		assert_int_equal(info.computed, 0);
		assert_int_equal(info.state, ACCEL_SCHED_PREFILLING);
		/* Part of it: the rest is scheduled again. */
		res.flags = 0;
		res.layers_done = 0;
		res.computed = 5;
		assert_int_equal(accel_sched_update(e.s, a, &res, e.now), 0);
	}
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(eng_run(&e, a)->start, 5);
	assert_int_equal(eng_run(&e, a)->tokens, 3);
	/* Abort in flight: at its update. */
	assert_int_equal(accel_sched_abort(e.s, a, e.now), 0);
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_PREFILLING);
	eng_compute(&e);
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_ABORTED);
	eng_fini(&e);
}

/* The eventfd: readable on an arrival and a swap completion, drained by the step. */
static void test_eventfd(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	struct pollfd pfd;
	uint32_t a, b;
	struct eng e;

	(void)state;
	c.preempt = ACCEL_SCHED_PREEMPT_SWAP;
	eng_init(&e, 4, 8, 64, &c);
	pfd.fd = accel_sched_fd(e.s);
	pfd.events = POLLIN;
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(preempt_one(&e, &a, &b), ACCEL_SCHED_SWAPPING_OUT);
	assert_int_equal(poll(&pfd, 1, 0), 0);	/* the steps drained the arrivals */
	assert_int_equal(accel_sched_swap_done(e.s, b, 0, e.now), 0);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
	eng_compute(&e);
	assert_int_equal(eng_add(&e, 9, 4, 1, 0, 0, 0, 0, 0, &a), 0);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	eng_fini(&e);
}

/* Pressure: cached prefixes go first, then the lowest priority by swap. */
static void test_release(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_PRIORITY, 64, 4);
	ACCEL_OPTS(accel_sched_release_out, ro);
	ACCEL_OPTS(accel_bm_tier_stats, ts);
	uint32_t a, b, d;
	struct eng e;

	(void)state;
	c.preempt = ACCEL_SCHED_PREEMPT_SWAP;
	eng_init(&e, 4, 32, 64, &c);
	assert_int_equal(eng_add(&e, 1, 16, 1, 0, 0, 0, 0, 0, &d), 0);
	eng_run_steps(&e, 2);
	assert_int_equal(eng_state(&e, d), ACCEL_SCHED_FINISHED);
	assert_int_equal(accel_bm_tier_stats(e.bm, 0, &ts), 0);
	assert_int_equal(ts.cached, 4);	/* its prompt, committed */
	assert_int_equal(eng_add(&e, 2, 16, 50, 1, 0, 0, 0, 0, &a), 0);
	assert_int_equal(eng_add(&e, 3, 16, 50, 9, 0, 0, 0, 0, &b), 0);
	eng_run_steps(&e, 2);
	assert_int_equal(accel_sched_release(e.s, 0, 2, e.now, &ro), 0);
	assert_int_equal(ro.dropped_cached, 2);
	assert_int_equal(ro.swapped_out + ro.recomputed, 0);
	assert_int_equal(accel_sched_release(e.s, 0, 6, e.now, &ro), 0);
	assert_true(ro.dropped_cached >= 2);
	assert_int_equal(ro.swapped_out, 1);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_SWAPPING_OUT);	/* the lowest */
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_DECODING);
	assert_true(ro.freed + ro.pending >= 6);
	/* Its swap comes with the next step. */
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(e.out.nr_swaps, 1);
	assert_int_equal(e.swaps[0].req, b);
	eng_compute(&e);
	eng_swaps(&e, 0);
	/* Host pressure: the swapped request is dropped for recompute. */
	assert_int_equal(accel_sched_release(e.s, 1, 64, e.now, &ro), 0);
	assert_int_equal(ro.recomputed, 1);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_RECOMPUTE);
	eng_run_steps(&e, 150);
	assert_int_equal(eng_state(&e, a), ACCEL_SCHED_FINISHED);
	assert_int_equal(eng_state(&e, b), ACCEL_SCHED_FINISHED);
	eng_fini(&e);
}

/* A prefix the cache holds is not computed again. */
static void test_prefix_hit(void **state)
{
	struct accel_sched_config c = cfg_of(ACCEL_SCHED_FCFS, 64, 4);
	uint32_t a, b;
	struct eng e;

	(void)state;
	eng_init(&e, 4, 64, 0, &c);
	assert_int_equal(eng_add(&e, 1, 16, 1, 0, 0, 0, 0, 0, &a), 0);
	eng_run_steps(&e, 1);
	assert_int_equal(eng_add(&e, 1, 16, 1, 0, 0, 0, 0, 0, &b), 0);	/* same tokens */
	assert_int_equal(eng_step(&e), 0);
	assert_int_equal(eng_run(&e, b)->start, 12);	/* 3 blocks shared, the last computed */
	assert_int_equal(eng_run(&e, b)->tokens, 4);
	eng_compute(&e);
	eng_fini(&e);
}

/* Run @req until it has generated @n tokens (it decodes from then on). */
static void run_until_output(struct eng *e, uint32_t req, uint64_t n)
{
	ACCEL_OPTS(accel_sched_req_info, info);
	int guard = 1000;

	do {
		eng_run_steps(e, 1);
		assert_int_equal(accel_sched_req_info(e->s, req, &info), 0);
	} while (info.output_tokens < n && --guard);
	assert_true(guard > 0);
}

/*
 * Live migration: a decoding request detached from one scheduler with its
 * sequence, its KV rebuilt in another's block manager, adopted there: it
 * goes on decoding to the same tokens, and both managers balance.
 */
static void test_migrate(void **state)
{
	struct accel_sched_config ca = cfg_of(ACCEL_SCHED_FCFS, 64, 8), cb = ca;
	ACCEL_OPTS(accel_sched_req_info, info);
	ACCEL_OPTS(accel_sched_stats, st);
	struct eng *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	uint32_t ra, rw, rb, sa, sb, other;
	int32_t tok[128];
	uint64_t n;
	int i;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	eng_init(a, 16, 32, 0, &ca);
	eng_init(b, 16, 32, 0, &cb);
	assert_int_equal(eng_add(a, 7, 40, 20, 0, 0, 0, 0, 0, &ra), 0);
	assert_int_equal(eng_add(b, 9, 20, 10, 0, 0, 0, 0, 0, &other), 0);
	run_until_output(a, ra, 5);
	eng_run_steps(b, 2);
	assert_int_equal(eng_state(a, ra), ACCEL_SCHED_DECODING);

	/* Refusals change nothing: unknown, waiting, in flight. */
	assert_int_equal(accel_sched_detach(a->s, 999, a->now, &sa), -ENOENT);
	assert_int_equal(accel_sched_detach(a->s, ra, a->now, NULL), -EINVAL);
	assert_int_equal(eng_add(a, 8, 500, 4, 0, 0, 0, 0, 0, &rw), 0);	/* cannot fit: waits */
	assert_int_equal(accel_sched_detach(a->s, rw, a->now, &sa), -EINVAL);
	assert_int_equal(eng_step(a), 0);
	assert_non_null(eng_run(a, ra));
	assert_int_equal(accel_sched_detach(a->s, ra, a->now, &sa), -EBUSY);
	eng_compute(a);

	assert_int_equal(accel_sched_req_info(a->s, ra, &info), 0);
	n = info.nr_tokens;
	assert_true(n <= 128);
	assert_int_equal(accel_sched_tokens(a->s, ra, 0, (uint32_t)n, tok), 0);
	assert_int_equal(accel_sched_detach(a->s, ra, a->now, &sa), 0);
	assert_int_equal(accel_sched_req_info(a->s, ra, &info), -ENOENT);

	/* The destination: a sequence holding every token but the last. */
	assert_int_equal(accel_bm_seq_create(b->bm, NULL, &sb), 0);
	assert_int_equal(accel_bm_append(b->bm, sb, tok, n - 1, NULL, NULL), 0);
	{
		ACCEL_OPTS(accel_sched_req_opts, o, .tag = 7, .prompt = tok, .prompt_len = 40,
			   .max_output = 20, .flags = ACCEL_SCHED_REQ_ADOPT, .output = tok + 40,
			   .output_len = n - 40, .seq = sb, .arrival_ns = b->now);

		o.output_len = n - 41;	/* the sequence holds one token too many */
		assert_int_equal(accel_sched_add(b->s, &o, &rb), -EINVAL);
		o.output_len = 20;	/* nothing left to generate */
		assert_int_equal(accel_sched_add(b->s, &o, &rb), -EINVAL);
		o.output_len = n - 40;
		o.pad = 1;
		assert_int_equal(accel_sched_add(b->s, &o, &rb), -EINVAL);
		o.pad = 0;
		o.seq = 12345;
		assert_int_equal(accel_sched_add(b->s, &o, &rb), -EINVAL);
		o.seq = sb;
		assert_int_equal(accel_sched_add(b->s, &o, &rb), 0);
	}
	assert_int_equal(eng_state(b, rb), ACCEL_SCHED_DECODING);
	assert_int_equal(accel_bm_seq_free(a->bm, sa), 0);	/* the source lets go */

	for (i = 0; i < 100 && eng_state(b, rb) != ACCEL_SCHED_FINISHED; i++)
		eng_run_steps(b, 1);
	assert_int_equal(accel_sched_req_info(b->s, rb, &info), 0);
	assert_int_equal(info.output_tokens, 20);
	assert_int_equal(info.nr_tokens, 60);
	assert_int_equal(info.recomputed_tokens, 0);
	assert_int_equal(accel_sched_tokens(b->s, rb, 0, 60, tok), 0);
	for (i = 41; i < 60; i++)	/* the toy engine's token of (tag, position) */
		assert_int_equal(tok[i], eng_token(7, (uint64_t)i));
	assert_int_equal(accel_sched_stats(a->s, &st), 0);
	assert_int_equal(st.migrated_out, 1);
	assert_int_equal(accel_sched_stats(b->s, &st), 0);
	assert_int_equal(st.migrated_in, 1);
	assert_int_equal(st.in_state[ACCEL_SCHED_FINISHED], 2);
	eng_fini(a);
	eng_fini(b);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_bad),
		cmocka_unit_test(test_add_bad),
		cmocka_unit_test(test_fcfs_chunks),
		cmocka_unit_test(test_fcfs_recompute),
		cmocka_unit_test(test_cost_model),
		cmocka_unit_test(test_priority),
		cmocka_unit_test(test_slo_order),
		cmocka_unit_test(test_slo_pacing),
		cmocka_unit_test(test_blocked_arrival_no_stall),
		cmocka_unit_test(test_slo_no_empty_steps),
		cmocka_unit_test(test_fair),
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_yield),
		cmocka_unit_test(test_update_bad),
		cmocka_unit_test(test_eventfd),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_prefix_hit),
		cmocka_unit_test(test_migrate),
	};

	return cmocka_run_group_tests_name("sched_unit", tests, NULL, NULL);
}
