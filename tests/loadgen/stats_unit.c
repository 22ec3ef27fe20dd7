// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen's metrics against hand-computed cases: percentiles (linear between the
 * closest ranks), the SLO rule at its boundaries, attainment and goodput per class and overall
 * with failed requests counted as missing their SLO, preemptions and the recompute tax; failures
 * by cause, none of them meeting an SLO however fast; the inter-token latency pooled over every
 * gap of every request, failed ones included, against TPOT over the completed requests' means.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static void eq(double a, double b)
{
	if (fabs(a - b) > 1e-9) {
		fprintf(stderr, "# %.12f != %.12f\n", a, b);
		fail();
	}
}

static void percentiles(void **state)
{
	const double four[] = { 1, 2, 3, 4 }, one[] = { 7 };
	double hundred[100];
	int i;

	(void)state;
	eq(lg_percentile(four, 4, 50), 2.5);	/* rank 1.5 */
	eq(lg_percentile(four, 4, 90), 3.7);	/* rank 2.7 */
	eq(lg_percentile(four, 4, 99), 3.97);	/* rank 2.97 */
	eq(lg_percentile(four, 4, 0), 1);
	eq(lg_percentile(four, 4, 100), 4);
	eq(lg_percentile(one, 1, 99), 7);
	assert_true(isnan(lg_percentile(one, 0, 50)));
	for (i = 0; i < 100; i++)
		hundred[i] = i + 1;
	eq(lg_percentile(hundred, 100, 50), 50.5);
	eq(lg_percentile(hundred, 100, 90), 90.1);
	eq(lg_percentile(hundred, 100, 99), 99.01);
}

static void slo_rule(void **state)
{
	struct lg_req q = { .ttft_slo_ms = 200, .tpot_slo_ms = 50 };
	struct lg_result r = { .ok = 1, .tokens = 10, .ttft_ms = 200, .tpot_ms = 50 };

	(void)state;
	assert_true(lg_meets_slo(&q, &r));		/* equal meets */
	r.ttft_ms = 200.001;
	assert_false(lg_meets_slo(&q, &r));
	r.ttft_ms = 10;
	r.tpot_ms = 50.001;
	assert_false(lg_meets_slo(&q, &r));
	r.tokens = 1;					/* no TPOT with one token */
	assert_true(lg_meets_slo(&q, &r));
	r.tokens = 10;
	q.tpot_slo_ms = 0;				/* no TPOT SLO */
	assert_true(lg_meets_slo(&q, &r));
	q.ttft_slo_ms = 0;
	r.ttft_ms = 1e9;
	assert_true(lg_meets_slo(&q, &r));
	r.ok = 0;					/* a failed request never meets it */
	assert_false(lg_meets_slo(&q, &r));
	r.ok = 1;					/* nor one with a cause */
	r.fail = LG_FAIL_SHORT;
	assert_false(lg_meets_slo(&q, &r));
}

/*
 * Five requests over 10 s:
 *   0 online  ttft 100 tpot 20 (SLO 150/30: met)     preemptions 0
 *   1 online  ttft 200 tpot 20 (SLO 150/30: missed)  preemptions 2, recomputed 30 of 100+10
 *   2 online  failed (429)
 *   3 offline ttft 300 tpot 40 (no SLO: met)         preemptions 1, recomputed 10 of 40+10
 *   4 offline ttft 500 tpot 60, one token only: no TPOT sample; met
 */
static void summary(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_result res[5] = { 0 };
	struct lg_summary s;
	const double ttft[] = { 100, 200, 0, 300, 500 }, tpot[] = { 20, 20, 0, 40, 60 };
	const double e2e[] = { 280, 380, 0, 660, 500 };
	const uint32_t tokens[] = { 10, 10, 0, 10, 1 };
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		struct lg_req *q = lg_workload_push(&wl);

		strcpy(q->cls, i < 3 ? "online" : "offline");
		if (i < 3) {
			q->ttft_slo_ms = 150;
			q->tpot_slo_ms = 30;
		}
		res[i] = (struct lg_result){ .ok = i != 2, .status = i == 2 ? 429 : 200,
					     .fail = i == 2 ? LG_FAIL_HTTP : LG_FAIL_NONE,
					     .tokens = tokens[i], .ttft_ms = ttft[i],
					     .tpot_ms = tpot[i], .e2e_ms = e2e[i],
					     .preemptions = -1, .recomputed = -1,
					     .prompt_tokens = -1, .completion_tokens = -1 };
	}
	res[0].preemptions = 0;
	res[1].preemptions = 2;
	res[1].recomputed = 30;
	res[1].prompt_tokens = 100;
	res[1].completion_tokens = 10;
	res[3].preemptions = 1;
	res[3].recomputed = 10;
	res[3].prompt_tokens = 40;
	res[3].completion_tokens = 10;

	lg_summarize(&wl, res, NULL, 10, &s);
	assert_int_equal(s.requests, 5);
	assert_int_equal(s.completed, 4);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.fail[LG_FAIL_HTTP], 1);
	assert_int_equal(s.met, 3);
	eq(s.attainment, 0.6);
	eq(s.goodput, 0.3);
	eq(s.throughput, 0.4);
	/* TTFT over 100 200 300 500: p50 rank 1.5 -> 250, p90 rank 2.7 -> 440, p99 2.97 -> 494 */
	eq(s.ttft[0], 250);
	eq(s.ttft[1], 440);
	eq(s.ttft[2], 494);
	/* TPOT over 20 20 40 (request 4 has one token): p50 20, p90 rank 1.8 -> 36 */
	assert_int_equal(s.nr_tpot, 3);
	eq(s.tpot[0], 20);
	eq(s.tpot[1], 36);
	/* e2e over 280 380 500 660: p50 440 */
	eq(s.e2e[0], 440);
	assert_int_equal(s.reported, 3);
	assert_int_equal(s.preemptions, 3);
	assert_int_equal(s.preempted, 2);
	assert_int_equal(s.recomputed, 40);
	assert_int_equal(s.tax_tokens, 160);
	eq(s.recompute_tax, 0.25);

	lg_summarize(&wl, res, "online", 10, &s);
	assert_int_equal(s.requests, 3);
	assert_int_equal(s.met, 1);
	eq(s.attainment, 1.0 / 3);
	eq(s.goodput, 0.1);
	eq(s.ttft[0], 150);
	eq(s.recompute_tax, 30.0 / 110);

	lg_summarize(&wl, res, "offline", 10, &s);
	assert_int_equal(s.met, 2);
	eq(s.goodput, 0.2);
	eq(s.ttft[0], 400);

	lg_summarize(&wl, res, "none", 10, &s);
	assert_int_equal(s.requests, 0);
	assert_true(isnan(s.attainment) && isnan(s.ttft[0]));
	assert_true(s.recompute_tax < 0);
	lg_workload_free(&wl);
}

/*
 * Seven requests over 10 s, SLO 150/30, all fast enough (TTFT 10, TPOT 5): one whole; one
 * failed by each cause; one ok but with a cause (as run.c never makes it; still failed).
 * Only the whole one meets its SLO.
 */
static void failures(void **state)
{
	const enum lg_fail fail[] = { LG_FAIL_NONE, LG_FAIL_HTTP, LG_FAIL_TRANSPORT,
				      LG_FAIL_PROTOCOL, LG_FAIL_INCOMPLETE, LG_FAIL_SHORT,
				      LG_FAIL_SHORT };
	struct lg_workload wl = { 0 };
	struct lg_result res[7] = { 0 };
	struct lg_summary s;
	size_t i;

	(void)state;
	for (i = 0; i < 7; i++) {
		struct lg_req *q = lg_workload_push(&wl);

		strcpy(q->cls, i % 2 ? "odd" : "even");
		q->ttft_slo_ms = 150;
		q->tpot_slo_ms = 30;
		q->output_len = 10;
		res[i] = (struct lg_result){ .ok = !fail[i] || i == 6, .fail = fail[i],
					     .status = 200, .tokens = 10, .ttft_ms = 10,
					     .tpot_ms = 5, .e2e_ms = 55, .preemptions = -1,
					     .recomputed = -1, .prompt_tokens = -1,
					     .completion_tokens = -1 };
	}
	lg_summarize(&wl, res, NULL, 10, &s);
	assert_int_equal(s.requests, 7);
	assert_int_equal(s.completed, 1);
	assert_int_equal(s.failed, 6);
	assert_int_equal(s.fail[LG_FAIL_NONE], 0);
	assert_int_equal(s.fail[LG_FAIL_HTTP], 1);
	assert_int_equal(s.fail[LG_FAIL_TRANSPORT], 1);
	assert_int_equal(s.fail[LG_FAIL_PROTOCOL], 1);
	assert_int_equal(s.fail[LG_FAIL_INCOMPLETE], 1);
	assert_int_equal(s.fail[LG_FAIL_SHORT], 2);
	assert_int_equal(s.met, 1);
	eq(s.attainment, 1.0 / 7);
	eq(s.goodput, 0.1);
	eq(s.throughput, 0.1);
	lg_summarize(&wl, res, "odd", 10, &s);	/* 1, 3, 5 */
	assert_int_equal(s.failed, 3);
	assert_int_equal(s.fail[LG_FAIL_HTTP], 1);
	assert_int_equal(s.fail[LG_FAIL_PROTOCOL], 1);
	assert_int_equal(s.fail[LG_FAIL_SHORT], 1);
	assert_int_equal(s.fail[LG_FAIL_TRANSPORT], 0);
	assert_int_equal(s.met, 0);
	eq(s.goodput, 0);
	lg_summarize(&wl, res, "even", 10, &s);	/* 0, 2, 4, 6 */
	assert_int_equal(s.failed, 3);
	assert_int_equal(s.fail[LG_FAIL_TRANSPORT], 1);
	assert_int_equal(s.fail[LG_FAIL_INCOMPLETE], 1);
	assert_int_equal(s.fail[LG_FAIL_SHORT], 1);
	assert_int_equal(s.met, 1);
	eq(s.attainment, 0.25);
	lg_workload_free(&wl);
}

/*
 * The gaps between tokens:
 *   0 online  completed  10 20 30 40   (TPOT 25)
 *   1 online  completed  50 60 70      (TPOT 60)
 *   2 online  incomplete 80 1000       (a stall, then cut: no TPOT, its gaps pooled)
 *   3 offline completed  5 15          (TPOT 10)
 *   4 offline completed  one token, no gap
 * Online, 9 gaps 10..80, 1000: p50 rank 4 -> 50, p90 rank 7.2 -> 80 + 0.2 * 920 = 264, p99 rank
 * 7.92 -> 926.4, max 1000, while TPOT over 25 and 60 has p99 59.65. Overall, 11 gaps 5 10 15
 * 20 30 40 50 60 70 80 1000: p50 rank 5 -> 40, p90 rank 9 -> 80, p99 rank 9.9 -> 908.
 */
static void itl(void **state)
{
	float g0[] = { 10, 20, 30, 40 }, g1[] = { 50, 60, 70 }, g2[] = { 80, 1000 };
	float g3[] = { 5, 15 };
	float *gaps[] = { g0, g1, g2, g3, NULL };
	const uint32_t tokens[] = { 5, 4, 3, 3, 1 };
	const double tpot[] = { 25, 60, 540, 10, 0 };
	struct lg_workload wl = { 0 };
	struct lg_result res[5] = { 0 };
	struct lg_summary s;
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		struct lg_req *q = lg_workload_push(&wl);

		strcpy(q->cls, i < 3 ? "online" : "offline");
		q->output_len = tokens[i];
		res[i] = (struct lg_result){ .ok = i != 2, .status = 200,
					     .fail = i == 2 ? LG_FAIL_INCOMPLETE : LG_FAIL_NONE,
					     .tokens = tokens[i], .ttft_ms = 1, .tpot_ms = tpot[i],
					     .gaps_ms = gaps[i], .nr_gaps = tokens[i] - 1,
					     .preemptions = -1, .recomputed = -1,
					     .prompt_tokens = -1, .completion_tokens = -1 };
	}
	lg_summarize(&wl, res, "online", 10, &s);
	assert_int_equal(s.nr_itl, 9);
	eq(s.itl[0], 50);
	eq(s.itl[1], 264);
	eq(s.itl[2], 926.4);
	eq(s.itl_max, 1000);
	assert_int_equal(s.nr_tpot, 2);
	eq(s.tpot[0], 42.5);
	eq(s.tpot[2], 59.65);

	lg_summarize(&wl, res, NULL, 10, &s);
	assert_int_equal(s.nr_itl, 11);
	eq(s.itl[0], 40);
	eq(s.itl[1], 80);
	eq(s.itl[2], 908);
	eq(s.itl_max, 1000);

	lg_summarize(&wl, res, "offline", 10, &s);
	assert_int_equal(s.nr_itl, 2);
	eq(s.itl[0], 10);
	eq(s.itl[1], 14);
	eq(s.itl[2], 14.9);
	eq(s.itl_max, 15);

	lg_summarize(&wl, res, "none", 10, &s);
	assert_int_equal(s.nr_itl, 0);
	assert_true(isnan(s.itl[0]) && isnan(s.itl_max));
	lg_workload_free(&wl);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Pooled gaps are selected, not sorted (kvaccel-sim pools millions): over 200001 gaps, mostly a
 * few repeated values (a simulator's equal steps) and some spread, in 7 requests, the pooled
 * percentiles and maximum are exactly those of the sorted values.
 */
static void itl_many(void **state)
{
	enum { N = 200001, REQS = 7 };
	struct lg_workload wl = { 0 };
	struct lg_result res[REQS] = { 0 };
	double *all = malloc(N * sizeof(*all));
	uint64_t x = 12345;
	struct lg_summary s;
	size_t i, at = 0;
	int k;

	(void)state;
	assert_non_null(all);
	for (i = 0; i < REQS; i++) {
		struct lg_req *q = lg_workload_push(&wl);
		uint32_t n = N / REQS + (i < N % REQS), j;

		q->output_len = n + 1;
		res[i] = (struct lg_result){ .ok = 1, .status = 200, .tokens = n + 1, .ttft_ms = 1,
					     .tpot_ms = 1, .nr_gaps = n, .preemptions = -1,
					     .recomputed = -1, .prompt_tokens = -1,
					     .completion_tokens = -1 };
		res[i].gaps_ms = malloc(n * sizeof(float));
		assert_non_null(res[i].gaps_ms);
		for (j = 0; j < n; j++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			res[i].gaps_ms[j] = (x >> 60) < 12 ? (float)(6 + (x >> 62)) :
					    (float)((x >> 40) % 100000) / 100;
			all[at++] = res[i].gaps_ms[j];
		}
	}
	assert_int_equal(at, N);
	qsort(all, N, sizeof(*all), dcmp);
	lg_summarize(&wl, res, NULL, 10, &s);
	assert_int_equal(s.nr_itl, N);
	for (k = 0; k < LG_NR_PCT; k++)
		eq(s.itl[k], lg_percentile(all, N, lg_pcts[k]));
	eq(s.itl_max, all[N - 1]);
	for (i = 0; i < REQS; i++)
		free(res[i].gaps_ms);
	lg_workload_free(&wl);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(percentiles),
		cmocka_unit_test(slo_rule),
		cmocka_unit_test(summary),
		cmocka_unit_test(failures),
		cmocka_unit_test(itl),
		cmocka_unit_test(itl_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
