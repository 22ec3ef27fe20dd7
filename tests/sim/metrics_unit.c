// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim's goodput search, fairness, CSV time series and systems (tools/sim/goodput.c,
 * metrics.c, system.c): goodput against a closed form (a trace of requests at fixed intervals,
 * each one prefill step of fixed length, one at a time: request k waits k (D - 1/lambda)), its
 * monotonicity in the SLO and the target; the synthetic generator's arrivals scale with the rate
 * (so compressing them is running it at another rate); Jain's index of known shares; the CSV rows
 * of hand-made results; a system file's options inserted before the command line's.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine.h"
#include "goodput.h"
#include "metrics.h"
#include "profile.h"
#include "system.h"

#define D_S	0.010		/* the one step's duration */
#define N_REQ	100

/* One prefill step of 10 ms for any batch: only step_base. */
static void step_profile(struct sim_profile *p)
{
	char err[128];

	memset(p, 0, sizeof(*p));
	strcpy(p->name, "step");
	strcpy(p->model, "step");
	strcpy(p->gpu, "step");
	p->layers = 4;
	p->kv_heads = 4;
	p->head_dim = 64;
	p->dtype_bytes = 2;
	p->tp = 1;
	p->block_tokens = 16;
	p->gpu_mem_gib = 1;
	p->mem_util = 1;
	p->swap_gbps = 10;
	p->step_base_us = D_S * 1e6;
	assert_int_equal(sim_profile_derive(p, err, sizeof(err)), 0);
}

/* N_REQ requests of 16 tokens and one output at 1/@rate apart, TTFT SLO @slo_ms: a plain CSV. */
static void fixed_trace(struct lg_workload *wl, double rate, double slo_ms)
{
	char path[] = "/tmp/sim-goodput-XXXXXX", err[256];
	struct lg_trace_opts o = { .time_scale = 1 };
	int fd = mkstemp(path);
	FILE *f;
	size_t k;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "arrival_s,input_length,output_length,ttft_slo_ms\n");
	for (k = 0; k < N_REQ; k++)
		fprintf(f, "%.9f,16,1,%g\n", k / rate, slo_ms);
	fclose(f);
	memset(wl, 0, sizeof(*wl));
	if (lg_trace_load(path, &o, wl, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	assert_int_equal(wl->n, N_REQ);
}

/*
 * The rate at which @target of N_REQ meet a TTFT SLO of @s: request k's TTFT is D + k (D - 1/l)
 * above l = 1/D, so ceil(target N) of them (k = 0..m-1) meet it while D - 1/l <= (S - D)/(m - 1).
 */
static double closed_goodput(double s, double target)
{
	double m = ceil(target * N_REQ - 1e-9);

	return 1 / (D_S - (s - D_S) / (m - 1));
}

static void goodput_of(double slo_ms, double target, struct sim_goodput *g)
{
	struct sim_profile p;
	struct sim_config c = { .prof = &p, .max_seqs = 1, .max_tokens = 64 };
	struct lg_workload wl;
	char err[256];

	step_profile(&p);
	fixed_trace(&wl, 50, slo_ms);
	assert_true(fabs(sim_workload_rate(&wl) - 50) < 1e-6);
	if (sim_goodput_find(&c, &wl, sim_workload_rate(&wl), target, 0.01, 0, NULL, g, err,
			     sizeof(err)))
		fail_msg("%s", err);
	lg_workload_free(&wl);
}

static void test_goodput_closed_form(void **state)
{
	static const double slos[] = { 50, 100, 200 }, targets[] = { 0.5, 0.9, 0.99 };
	struct sim_goodput g;
	size_t i, j, k;

	(void)state;
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++) {
			double want = closed_goodput(slos[i] / 1e3, targets[j]);

			goodput_of(slos[i], targets[j], &g);
			print_message("# SLO %g ms, target %g: goodput %.3f/s, closed form "
				      "%.3f/s (%+.2f %%), %zu runs\n", slos[i], targets[j],
				      g.goodput, want, 100 * (g.goodput - want) / want,
				      g.nr_tries);
			assert_true(g.bracketed);
			assert_true(g.goodput <= want * (1 + 1e-9));
			assert_true(g.upper >= want * (1 - 1e-9));
			assert_true(g.upper / g.goodput <= 1.01 + 1e-12);
			assert_true((want - g.goodput) / want <= 0.01);
			/* Each try's attainment is the closed form's count at its rate. */
			for (k = 0; k < g.nr_tries; k++) {
				double l = g.tries[k].rate, slope = D_S - 1 / l, met;

				met = slope <= 0 ? N_REQ : floor((slos[i] / 1e3 - D_S) / slope
								 + 1e-9) + 1;
				if (met > N_REQ)
					met = N_REQ;
				assert_int_equal(g.tries[k].met, (size_t)met);
			}
		}
}

/*
 * Per class: the odd requests' SLO is always met, the even ones' is @s; every class at the
 * target is the even class at the target: its request 2j waits 2j (D - 1/l), so m = ceil(target
 * N/2) of the N/2 meet it while D - 1/l <= (S - D) / (2 (m - 1)). Overall, the same rate gives
 * more than the target (the odd half all met), so the goodput of all requests is higher.
 */
static void test_goodput_per_class(void **state)
{
	char path[] = "/tmp/sim-goodput-XXXXXX", err[256];
	struct lg_trace_opts o = { .time_scale = 1 };
	double s = 0.1, m = ceil(0.9 * N_REQ / 2 - 1e-9), want;
	struct sim_profile p;
	struct sim_config c = { .prof = &p, .max_seqs = 1, .max_tokens = 64 };
	struct sim_goodput *g = calloc(2, sizeof(*g));
	struct lg_workload wl = { 0 };
	int fd = mkstemp(path);
	FILE *f;
	size_t k;

	(void)state;
	assert_non_null(g);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "arrival_s,input_length,output_length,ttft_slo_ms,class\n");
	for (k = 0; k < N_REQ; k++)
		fprintf(f, "%.9f,16,1,%g,%s\n", k / 50.0, k % 2 ? 1e7 : s * 1e3,
			k % 2 ? "loose" : "tight");
	fclose(f);
	if (lg_trace_load(path, &o, &wl, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	step_profile(&p);
	want = 1 / (D_S - (s - D_S) / (2 * (m - 1)));
	if (sim_goodput_find(&c, &wl, sim_workload_rate(&wl), 0.9, 0.01, 1, NULL, &g[0], err,
			     sizeof(err)) ||
	    sim_goodput_find(&c, &wl, sim_workload_rate(&wl), 0.9, 0.01, 0, NULL, &g[1], err,
			     sizeof(err)))
		fail_msg("%s", err);
	print_message("# per class: goodput %.3f/s, closed form %.3f/s (%+.2f %%); all requests "
		      "%.3f/s\n", g[0].goodput, want, 100 * (g[0].goodput - want) / want,
		      g[1].goodput);
	assert_true(g[0].bracketed);
	assert_true(g[0].goodput <= want * (1 + 1e-9));
	assert_true(g[0].upper >= want * (1 - 1e-9));
	assert_true((want - g[0].goodput) / want <= 0.01);
	assert_string_equal(g[0].tries[g[0].nr_tries - 1].worst, "tight");
	assert_true(g[1].goodput > g[0].goodput * 1.01);
	lg_workload_free(&wl);
	free(g);
}

/* Tighter SLOs and higher targets never raise the goodput; attainment falls with the rate. */
static void test_goodput_monotone(void **state)
{
	struct sim_goodput g, prev;
	double slo;
	size_t a, b;

	(void)state;
	memset(&prev, 0, sizeof(prev));
	for (slo = 20; slo <= 400; slo *= 1.5) {
		goodput_of(slo, 0.9, &g);
		assert_true(g.goodput >= prev.goodput);
		for (a = 0; a < g.nr_tries; a++)
			for (b = 0; b < g.nr_tries; b++)
				if (g.tries[a].rate < g.tries[b].rate)
					assert_true(g.tries[a].attainment >=
						    g.tries[b].attainment);
		prev = g;
	}
	goodput_of(100, 0.5, &prev);
	goodput_of(100, 0.95, &g);
	assert_true(g.goodput < prev.goodput);
	/* An SLO below the step itself is met at no rate. */
	goodput_of(5, 0.9, &g);
	assert_false(g.bracketed);
	assert_true(g.goodput == 0);
}

/* The generator's arrivals at twice the rate are its arrivals at the rate, halved. */
static void test_synth_scales(void **state)
{
	struct lg_synth_opts so = { .requests = 2000, .rate = 3, .arrival = LG_ARR_GAMMA, .cv = 3,
				    .input = { LG_DIST_LOGNORMAL, 6.6, 1 },
				    .output = { LG_DIST_LOGNORMAL, 5, 0.9 }, .clients = 4,
				    .seed = 9 };
	struct lg_workload a = { 0 }, b = { 0 };
	size_t i;

	(void)state;
	assert_int_equal(lg_synth(&so, &a), 0);
	so.rate = 6;
	assert_int_equal(lg_synth(&so, &b), 0);
	assert_int_equal(a.n, b.n);
	for (i = 0; i < a.n; i++) {
		assert_true(fabs(a.req[i].arrival_s / 2 - b.req[i].arrival_s) <=
			    1e-9 * (1 + a.req[i].arrival_s));
		assert_int_equal(a.req[i].input_len, b.req[i].input_len);
		assert_int_equal(a.req[i].output_len, b.req[i].output_len);
		assert_string_equal(a.req[i].client, b.req[i].client);
	}
	lg_workload_free(&a);
	lg_workload_free(&b);
}

/* A hand-made result: arrived at @t, first token @ttft_ms later, then @n gaps of @gap_ms. */
static void result(struct lg_result *r, double t, double ttft_ms, uint32_t n, float gap_ms)
{
	uint32_t k;

	memset(r, 0, sizeof(*r));
	r->start_s = t;
	r->ok = 1;
	r->status = 200;
	r->tokens = n + 1;
	r->ttft_ms = ttft_ms;
	r->nr_gaps = n;
	r->gaps_ms = n ? calloc(n, sizeof(float)) : NULL;
	for (k = 0; k < n; k++)
		r->gaps_ms[k] = gap_ms;
	r->e2e_ms = ttft_ms + n * gap_ms;
	r->end_s = t + r->e2e_ms / 1e3;
	r->tpot_ms = n ? gap_ms : 0;
}

static void req(struct lg_workload *wl, const char *client, uint32_t in, uint32_t out, double slo)
{
	struct lg_req *q = lg_workload_push(wl);

	assert_non_null(q);
	q->input_len = in;
	q->output_len = out;
	q->ttft_slo_ms = slo;
	snprintf(q->client, sizeof(q->client), "%s", client);
	snprintf(q->cls, sizeof(q->cls), "online");
}

static void test_jain(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res = calloc(4, sizeof(*res));
	size_t n;

	(void)state;
	assert_non_null(res);
	/* Two clients, the same service a second: 1. */
	req(&wl, "a", 100, 10, 0);
	req(&wl, "b", 200, 20, 0);
	result(&res[0], 0, 100, 9, 10);		/* 120 weighted tokens in 0.19 s */
	result(&res[1], 0, 280, 19, 10);	/* 240 in 0.47 s: not the same rate */
	res[1].end_s = 0.38;			/* 240 in 0.38 s: the same rate as a's */
	assert_true(fabs(sim_jain(&wl, res, &n) - 1) < 1e-12);
	assert_int_equal(n, 2);
	/* b served at a third of a's rate: (1 + 1/3)^2 / (2 (1 + 1/9)) = 0.8. */
	res[1].end_s = 1.14;
	assert_true(fabs(sim_jain(&wl, res, &n) - 0.8) < 1e-12);
	/* A third client that got nothing in its 1 s in the system: (4/3)^2 / (3 10/9) = 0.533. */
	req(&wl, "c", 50, 5, 0);
	memset(&res[2], 0, sizeof(res[2]));
	res[2].start_s = 0;
	res[2].end_s = 1;
	res[2].fail = LG_FAIL_INCOMPLETE;
	assert_true(fabs(sim_jain(&wl, res, &n) - (16.0 / 9) / (3 * 10.0 / 9)) < 1e-12);
	assert_int_equal(n, 3);
	/* Refused at once (no time in the system): left out. */
	memset(&res[2], 0, sizeof(res[2]));
	res[2].fail = LG_FAIL_HTTP;
	assert_true(fabs(sim_jain(&wl, res, &n) - 0.8) < 1e-12);
	assert_int_equal(n, 2);
	lg_results_free(res, 3);
	lg_workload_free(&wl);
}

static void test_csv(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res = calloc(3, sizeof(*res));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(res);
	req(&wl, "", 10, 3, 500);
	req(&wl, "", 10, 2, 500);
	req(&wl, "", 10, 1, 100);
	result(&res[0], 0.2, 300, 2, 400);	/* first token 0.5, then 0.9, 1.3; ends 1.3 */
	result(&res[1], 0.7, 900, 1, 100);	/* first 1.6 (misses 500 ms), then 1.7 */
	memset(&res[2], 0, sizeof(res[2]));	/* arrives 1.1, refused */
	res[2].start_s = 1.1;
	res[2].fail = LG_FAIL_HTTP;
	res[2].status = 503;
	assert_non_null(f);
	assert_int_equal(sim_csv_write(f, &wl, res, 0.5), 0);
	fclose(f);
	assert_string_equal(buf,
		"t_s,arrivals,first_tokens,completions,in_flight,output_tokens_per_s,"
		"ttft_p50_ms,ttft_p99_ms,slo_attainment\n"
		"0.000,1,0,0,1,0.0,300.000,300.000,1.0000\n"
		"0.500,1,1,0,2,4.0,900.000,900.000,0.0000\n"
		"1.000,1,0,1,1,2.0,,,0.0000\n"
		"1.500,0,1,1,0,4.0,,,\n");
	free(buf);
	lg_results_free(res, 3);
	lg_workload_free(&wl);
}

static void test_system_expand(void **state)
{
	char path[] = "/tmp/sim-system-XXXXXX", *argv[] = { "kvaccel-sim", "--budget", "64",
		"--system", path, "--json", NULL };
	struct sim_argv a;
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "# a comment\n--policy slo --preempt=swap  # and another\n\n\t--budget 512\n");
	fclose(f);
	assert_int_equal(sim_system_expand(6, argv, &a), 0);
	assert_int_equal(a.argc, 9);
	assert_string_equal(a.argv[0], "kvaccel-sim");
	assert_string_equal(a.argv[1], "--policy");
	assert_string_equal(a.argv[2], "slo");
	assert_string_equal(a.argv[3], "--preempt=swap");
	assert_string_equal(a.argv[4], "--budget");
	assert_string_equal(a.argv[5], "512");
	/* The command line's own after: its --budget 64 wins. */
	assert_string_equal(a.argv[6], "--budget");
	assert_string_equal(a.argv[7], "64");
	assert_string_equal(a.argv[8], "--json");
	assert_null(a.argv[9]);
	sim_system_free(&a);
	/* Refused: a value with no option, a nested --system, an unknown name. */
	f = fopen(path, "w");
	fprintf(f, "--policy slo\n--budget 512 1024\n");
	fclose(f);
	assert_int_equal(sim_system_expand(6, argv, &a), -1);
	f = fopen(path, "w");
	fprintf(f, "--system vllm-v1\n");
	fclose(f);
	assert_int_equal(sim_system_expand(6, argv, &a), -1);
	unlink(path);
	argv[4] = "no-such-system";
	assert_int_equal(sim_system_expand(6, argv, &a), -1);
	/* Every shipped system reads. */
	argv[4] = "vllm-v1";
	argv[5] = "--systems-dir";
	argv[6] = "tools/sim/systems";
	assert_int_equal(sim_system_expand(7, argv, &a), 0);
	assert_string_equal(a.argv[1], "--policy");
	assert_string_equal(a.argv[2], "fcfs");
	sim_system_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goodput_closed_form),
		cmocka_unit_test(test_goodput_per_class),
		cmocka_unit_test(test_goodput_monotone),
		cmocka_unit_test(test_synth_scales),
		cmocka_unit_test(test_jain),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_system_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
