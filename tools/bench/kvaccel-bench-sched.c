// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-sched - the scheduler's cost per step (accel_sched_step())
 * with 1024 running and 4096 waiting requests, for each policy, natively
 * (no device). A block manager of 16-token blocks (tier 0: 32768 blocks,
 * tier 1: 65536), max_seqs 1024, max_tokens 2048, chunks of 512; prompts
 * of 32 to 96 tokens, 32 to 256 output tokens; the waiting queue topped up
 * to 4096 before each step. Per policy, over STEPS measured steps (after
 * the running set filled): the median and p99 of one step, and the median
 * of the engine's accel_sched_update() of every run of a step; as a
 * baseline in the same run, accel_bm_block_tables() of the step's runs
 * (the engine's own per-step fetch). Times in us.
 *
 *   kvaccel-bench-sched [steps]    (default 2000)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "accel.h"
#include "bench-common.h"

enum { BT = 16, RUNNING = 1024, WAITING = 4096, MAXRUNS = 2048 };

static struct accel_sched_run runs[MAXRUNS];
static struct accel_sched_swap swaps[MAXRUNS];
static struct accel_sched_event events[65536];
static uint32_t offsets[MAXRUNS + 1], ids[MAXRUNS * 32];
static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "kvaccel-bench-sched: %s: %d\n", what, ret);
	exit(1);
}

static double pct(double *v, int n, double p)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return v[(int)((n - 1) * p)];
}

static uint64_t tag;

static void add(struct accel_sched *s, uint32_t policy, uint64_t now)
{
	int32_t prompt[96];
	uint32_t len = 32 + rnd(65), i, req;
	int ret;

	for (i = 0; i < len; i++)
		prompt[i] = (int32_t)rnd(50000);
	ACCEL_OPTS(accel_sched_req_opts, o, .tag = ++tag, .prompt = prompt, .prompt_len = len,
		   .max_output = 32 + rnd(225), .arrival_ns = now, .client = rnd(64));
	if (policy == ACCEL_SCHED_PRIORITY)
		o.priority = (int32_t)rnd(16);
	if (policy == ACCEL_SCHED_SLO && rnd(2)) {
		o.ttft_slo_ns = 200000000ull + rnd(800) * 1000000ull;
		o.tpot_slo_ns = 20000000ull + rnd(80) * 1000000ull;
	}
	if (policy == ACCEL_SCHED_HYBRID) {
		if (rnd(4) == 0)
			o.flags = ACCEL_SCHED_REQ_OFFLINE;
		else
			o.tpot_slo_ns = 100000000ull;
	}
	ret = accel_sched_add(s, &o, &req);
	if (ret)
		die("accel_sched_add", ret);
}

static void bench(uint32_t policy, int steps)
{
	uint32_t blocks[2] = { 32768, 65536 };
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = BT, .nr_tiers = 2, .tier_blocks = blocks);
	ACCEL_OPTS(accel_sched_stats, st);
	double *t_step = malloc(steps * sizeof(double)), *t_upd = malloc(steps * sizeof(double));
	double *t_tab = malloc(steps * sizeof(double)), nruns = 0;
	struct accel_sched *s;
	struct accel_bm *bm;
	uint64_t now = 1000000;
	int measured = 0, warm;
	uint32_t k;
	int ret;

	bm = accel_bm_create(&bc);
	if (!bm || !t_step || !t_upd || !t_tab)
		die("accel_bm_create", -errno);
	ACCEL_OPTS(accel_sched_config, cfg, .bm = bm, .policy = policy, .max_tokens = 2048,
		   .max_seqs = RUNNING, .chunk_tokens = 512, .max_requests = 16384,
		   .step_ns = 20000000);
	s = accel_sched_create(&cfg);
	if (!s)
		die("accel_sched_create", -errno);
	for (warm = 0; measured < steps; warm++) {
		struct accel_sched_out out = { .sz = sizeof(out), .runs = runs, .max_runs = MAXRUNS,
					       .swaps = swaps, .max_swaps = MAXRUNS,
					       .events = events, .max_events = 65536 };
		double t0, t1, t2, t3;
		bool running_full;

		ret = accel_sched_stats(s, &st);
		if (ret)
			die("accel_sched_stats", ret);
		while (st.in_state[ACCEL_SCHED_WAITING] + st.in_state[ACCEL_SCHED_RECOMPUTE] <
		       WAITING) {
			add(s, policy, now);
			st.in_state[ACCEL_SCHED_WAITING]++;
		}
		t0 = bench_now();
		ret = accel_sched_step(s, now, &out);
		t1 = bench_now();
		if (ret)
			die("accel_sched_step", ret);
		/* Measured: steps that leave 1024 running (the ones that finished refilled). */
		ret = accel_sched_stats(s, &st);
		running_full = st.in_state[ACCEL_SCHED_PREFILLING] +
			       st.in_state[ACCEL_SCHED_DECODING] >= RUNNING;
		ret = accel_sched_block_tables(s, runs, out.nr_runs, offsets, ids,
					       sizeof(ids) / sizeof(ids[0]));
		t2 = bench_now();
		if (ret < 0)
			die("accel_sched_block_tables", ret);
		now += 20000000;
		for (k = 0; k < out.nr_runs; k++) {
			ACCEL_OPTS(accel_sched_result, res, .computed = runs[k].tokens);

			if (runs[k].flags & ACCEL_SCHED_RUN_SAMPLE) {
				res.flags = ACCEL_SCHED_RES_TOKEN;
				res.token = (int32_t)(runs[k].tag + runs[k].start);
			}
			ret = accel_sched_update(s, runs[k].req, &res, now);
			if (ret)
				die("accel_sched_update", ret);
		}
		t3 = bench_now();
		for (k = 0; k < out.nr_swaps; k++)
			accel_sched_swap_done(s, swaps[k].req, 0, now);
		for (k = 0; k < out.nr_events; k++)
			if (events[k].to == ACCEL_SCHED_FINISHED)
				accel_sched_remove(s, events[k].req);
		if (!running_full || warm < 300)
			continue;
		t_step[measured] = (t1 - t0) * 1e6;
		t_tab[measured] = (t2 - t1) * 1e6;
		t_upd[measured] = (t3 - t2) * 1e6;
		nruns += out.nr_runs;
		measured++;
	}
	ret = accel_sched_stats(s, &st);
	printf("%-9s %8.1f %8.1f %10.1f %10.1f %8.0f %9u %7llu %6d\n",
	       accel_sched_policy_name(policy),
	       pct(t_step, steps, 0.5), pct(t_step, steps, 0.99), pct(t_upd, steps, 0.5),
	       pct(t_tab, steps, 0.5), nruns / steps,
	       st.in_state[ACCEL_SCHED_WAITING] + st.in_state[ACCEL_SCHED_RECOMPUTE],
	       (unsigned long long)st.finished, warm);
	accel_sched_destroy(s);
	accel_bm_destroy(bm);
	free(t_step);
	free(t_upd);
	free(t_tab);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int steps = argc > 1 ? atoi(argv[1]) : 2000;
	uint32_t p;

	if (steps < 10)
		steps = 10;
	printf("kvaccel-bench-sched: %d running, %d waiting, %d steps a policy, us\n", RUNNING,
	       WAITING, steps);
	printf("%-9s %8s %8s %10s %10s %8s %9s %7s %6s\n", "policy", "step p50", "step p99",
	       "updates", "tables", "runs", "waiting", "done", "steps");
	for (p = 0; p < ACCEL_SCHED_NR_POLICIES; p++)
		bench(p, steps);
	return 0;
}
