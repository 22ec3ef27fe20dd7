// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim's engine (tools/sim/engine.c) against closed forms and its own promises: a single
 * request's latency is the profile's prefill step then its decode steps (whole and chunked); an
 * M/D/1 queue (Poisson arrivals of one-step requests, one at a time) waits what the
 * Pollaczek-Khinchine formula says; the same seed gives the same JSON report; no request is
 * dropped under any policy and preemption kind; Mooncake hash ids become prefix-cache hits; the
 * profile loader refuses bad files with FILE:LINE and reads the shipped profiles.
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

#include "accel.h"
#include "dispatch.h"
#include "engine.h"
#include "output.h"
#include "profile.h"

/* A profile of round numbers: no floor unless asked, every term visible. */
static void toy_profile(struct sim_profile *p)
{
	char err[128];

	memset(p, 0, sizeof(*p));
	strcpy(p->name, "toy");
	strcpy(p->model, "toy");
	strcpy(p->gpu, "toy");
	p->layers = 4;
	p->kv_heads = 4;
	p->head_dim = 64;
	p->dtype_bytes = 2;
	p->tp = 1;
	p->block_tokens = 16;
	p->gpu_mem_gib = 1;
	p->mem_util = 1;
	p->host_mem_gib = 1;
	p->swap_gbps = 10;
	p->swap_transfer_us = 20;
	p->step_base_us = 1000;
	p->prefill_token_us = 10;
	p->decode_token_us = 30;
	p->context_token_us = 0.5;
	p->prefill_quad_us = 0.002;
	assert_int_equal(sim_profile_derive(p, err, sizeof(err)), 0);
}

static struct lg_req *add_req(struct lg_workload *wl, double t, uint32_t in, uint32_t out)
{
	struct lg_req *r = lg_workload_push(wl);

	assert_non_null(r);
	r->arrival_s = t;
	r->input_len = in;
	r->output_len = out;
	return r;
}

static struct lg_result *run(const struct sim_config *c, const struct lg_workload *wl,
			     struct sim_totals *t)
{
	struct lg_result *res = calloc(wl->n + 1, sizeof(*res));
	char err[256];

	assert_non_null(res);
	if (sim_run(c, wl, res, t, err, sizeof(err)))
		fail_msg("sim_run: %s", err);
	return res;
}

/* The closed form of one request of L tokens and O outputs, chunks of @chunk. */
static void closed_form(const struct sim_profile *p, uint32_t L, uint32_t O, uint32_t chunk,
			double *ttft_ms, double *e2e_ms, double *decode_ms)
{
	double t = 0, us;
	uint32_t s, k;

	for (s = 0; s < L; s += chunk) {
		uint32_t n = L - s < chunk ? L - s : chunk;

		us = p->step_base_us + p->prefill_token_us * n +
		     p->prefill_quad_us * n * (2.0 * s + n);
		t += fmax(us, p->step_floor_us);
	}
	*ttft_ms = t / 1000;
	for (k = 1; k < O; k++) {
		us = p->step_base_us + p->decode_token_us + p->context_token_us * (L + k);
		decode_ms[k - 1] = fmax(us, p->step_floor_us) / 1000;
		t += fmax(us, p->step_floor_us);
	}
	*e2e_ms = t / 1000;
}

static void check_single(uint32_t L, uint32_t O, uint32_t chunk, double floor_us)
{
	struct sim_profile p;
	struct lg_workload wl = { 0 };
	struct sim_totals t;
	struct sim_config c = { .prof = &p, .max_tokens = 2048, .chunk_tokens = chunk };
	struct lg_result *res;
	double ttft, e2e, dec[64];
	uint32_t k;

	assert_true(O <= 64);
	toy_profile(&p);
	p.step_floor_us = floor_us;
	add_req(&wl, 0.5, L, O);
	res = run(&c, &wl, &t);
	closed_form(&p, L, O, chunk, &ttft, &e2e, dec);
	assert_true(res[0].ok);
	assert_int_equal(res[0].tokens, O);
	/* Each step rounds to a whole ns. */
	assert_true(fabs(res[0].ttft_ms - ttft) < 1e-5);
	assert_true(fabs(res[0].e2e_ms - e2e) < 1e-4);
	assert_int_equal(res[0].nr_gaps, O - 1);
	for (k = 0; k + 1 < O; k++)
		assert_true(fabs(res[0].gaps_ms[k] - dec[k]) < 1e-3);
	assert_int_equal(t.steps, (L + chunk - 1) / chunk + O - 1);
	assert_true(fabs(t.duration_s - e2e / 1000) < 1e-7);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

static void test_single_request(void **state)
{
	(void)state;
	check_single(300, 20, 2048, 0);
	check_single(1, 1, 2048, 0);
	check_single(37, 5, 2048, 1500);	/* the floor: decode steps are 1.5 ms */
}

/* Chunks of 64: the quadratic term adds up to L^2 over the chunks, the steps are four. */
static void test_single_request_chunked(void **state)
{
	(void)state;
	check_single(200, 10, 64, 0);
}

/*
 * M/D/1: one request at a time (max_seqs 1), each a single 16-token prefill step of D = 10 ms
 * giving its only token; Poisson arrivals at rho = lambda D. The mean wait (TTFT - D) against
 * Pollaczek-Khinchine's rho D / (2 (1 - rho)), within 2 % over 300000 requests a load.
 */
static void test_md1(void **state)
{
	static const double rhos[] = { 0.3, 0.5, 0.7 };
	struct sim_profile p;
	size_t i, k;

	(void)state;
	toy_profile(&p);
	p.step_base_us = 10000;
	p.prefill_token_us = p.decode_token_us = p.context_token_us = p.prefill_quad_us = 0;
	for (k = 0; k < sizeof(rhos) / sizeof(rhos[0]); k++) {
		struct lg_synth_opts so = { .requests = 300000, .rate = rhos[k] / 0.010,
					    .input = { LG_DIST_FIXED, 16, 0 },
					    .output = { LG_DIST_FIXED, 1, 0 }, .seed = 7 + k };
		struct sim_config c = { .prof = &p, .max_seqs = 1, .max_tokens = 64 };
		struct lg_workload wl = { 0 };
		struct lg_result *res;
		struct sim_totals t;
		double sum = 0, want, got;

		assert_int_equal(lg_synth(&so, &wl), 0);
		res = run(&c, &wl, &t);
		for (i = 0; i < wl.n; i++) {
			assert_true(res[i].ok);
			sum += res[i].ttft_ms - 10.0;
		}
		got = sum / wl.n;
		want = rhos[k] * 10.0 / (2 * (1 - rhos[k]));
		print_message("# M/D/1 rho %.1f: mean wait %.3f ms, Pollaczek-Khinchine %.3f ms "
			      "(%+.2f %%)\n", rhos[k], got, want, 100 * (got - want) / want);
		assert_true(fabs(got - want) / want < 0.02);
		lg_results_free(res, wl.n);
		lg_workload_free(&wl);
	}
}

/* A two-class, two-client synthetic mix on a small GPU: preemptions are sure to happen. */
static void busy_workload(struct lg_workload *wl, uint64_t seed, size_t n)
{
	struct lg_synth_opts so = { .requests = n, .rate = 40, .arrival = LG_ARR_GAMMA, .cv = 3,
				    .input = { LG_DIST_LOGNORMAL, 5.5, 0.8 },
				    .output = { LG_DIST_LOGNORMAL, 4.0, 0.8 }, .max_input = 2000,
				    .max_output = 400, .clients = 2, .seed = seed,
				    .nr_classes = 2 };

	assert_int_equal(lg_class_parse("online:1:0:500:60", &so.classes[0]), 0);
	assert_int_equal(lg_class_parse("offline:1:3:0:0", &so.classes[1]), 0);
	assert_int_equal(lg_synth(&so, wl), 0);
}

static char *json_of(const struct sim_config *c, uint64_t seed)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res;
	struct sim_totals t;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	busy_workload(&wl, seed, 300);
	res = run(c, &wl, &t);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(sim_report_json(f, c, &wl, res, &t), 0);
	fclose(f);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	return buf;
}

static void test_determinism(void **state)
{
	struct sim_profile p;
	struct sim_config c = { .prof = &p, .policy = ACCEL_SCHED_SLO, .gpu_blocks = 300,
				.host_blocks = 2000, .seed = 5 };
	char *a, *b, *d;

	(void)state;
	toy_profile(&p);
	a = json_of(&c, 11);
	b = json_of(&c, 11);
	d = json_of(&c, 12);
	assert_string_equal(a, b);
	assert_string_not_equal(a, d);
	assert_non_null(strstr(a, "\"engine\":{"));
	free(a);
	free(b);
	free(d);
}

/* Every policy and preemption kind: every request finishes, with all its tokens. */
static void test_no_drops(void **state)
{
	static const uint32_t kinds[] = { ACCEL_SCHED_PREEMPT_COST, ACCEL_SCHED_PREEMPT_SWAP,
					  ACCEL_SCHED_PREEMPT_RECOMPUTE };
	struct lg_workload wl = { 0 };
	struct sim_profile p;
	uint32_t pol, k;
	size_t i;

	(void)state;
	toy_profile(&p);
	busy_workload(&wl, 3, 400);
	for (pol = 0; pol < ACCEL_SCHED_NR_POLICIES; pol++) {
		for (k = 0; k < 3; k++) {
			struct sim_config c = { .prof = &p, .policy = pol, .preempt = kinds[k],
						.gpu_blocks = 200, .host_blocks = 1000,
						.max_tokens = 512, .max_seqs = 64,
						.chunk_tokens = 256, .priority_threshold = 1 };
			const char *name = accel_sched_policy_name(pol);
			struct sim_totals t;
			struct lg_result *res = run(&c, &wl, &t);

			for (i = 0; i < wl.n; i++) {
				if (!res[i].ok)
					fail_msg("%s/%u: request %zu: %s", name, kinds[k], i,
						 res[i].msg);
				assert_int_equal(res[i].tokens, wl.req[i].output_len);
			}
			assert_int_equal(t.unfinished, 0);
			assert_true(t.swaps_out + t.recomputes > 0);
			if (kinds[k] == ACCEL_SCHED_PREEMPT_RECOMPUTE)
				assert_int_equal(t.swaps_out, 0);
			if (pol == ACCEL_SCHED_PRIORITY)	/* yielded chunks preempted too */
				assert_true(t.yields > 0);
			print_message("# %-8s %-9s %llu swaps out, %llu recomputes, %llu "
				      "yields\n", name,
				      k == 0 ? "cost" : k == 1 ? "swap" : "recompute",
				      (unsigned long long)t.swaps_out,
				      (unsigned long long)t.recomputes,
				      (unsigned long long)t.yields);
			lg_results_free(res, wl.n);
		}
	}
	lg_workload_free(&wl);
}

/* Two Mooncake-style requests with the same leading hash ids share those blocks. */
static void test_prefix_hits(void **state)
{
	static uint32_t ids_a[] = { 7, 8, 9 }, ids_b[] = { 7, 8, 42 };
	struct lg_workload wl = { 0 };
	struct sim_profile p;
	struct sim_config c = { .prof = &p };
	struct lg_result *res;
	struct sim_totals t;
	struct lg_req *r;

	(void)state;
	toy_profile(&p);
	r = add_req(&wl, 0, 1536, 4);
	r->hash_ids = malloc(sizeof(ids_a));
	memcpy(r->hash_ids, ids_a, sizeof(ids_a));
	r->nr_hash_ids = 3;
	r = add_req(&wl, 1, 1536, 4);
	r->hash_ids = malloc(sizeof(ids_b));
	memcpy(r->hash_ids, ids_b, sizeof(ids_b));
	r->nr_hash_ids = 3;
	res = run(&c, &wl, &t);
	assert_true(res[0].ok && res[1].ok);
	/* Two 512-token blocks of 16-token blocks: 64 hits. */
	assert_int_equal(t.prefix_hit_blocks, 64);
	assert_true(res[1].ttft_ms < res[0].ttft_ms);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

/*
 * Operator-level yields: a long low-priority prefill A (2000 tokens, priority 5) is in flight
 * when an urgent B (100 tokens, priority 0) arrives 10 ms into it. With yields A's chunk stops
 * at its first layer boundary after the arrival (8 layers: f = 10 / 29 of the step, 3 layers),
 * the step ends when those 3/8 of its work are done, B prefills alone (A's chunk, resuming
 * whole, does not fit the budget beside it), then A's last 5/8 with B's decode. Without, B
 * waits for A's whole step. Both against the closed form; A still gets all its tokens.
 */
static void yield_case(int no_yield, double *ttft_a, double *ttft_b, struct sim_totals *t)
{
	struct sim_profile p;
	struct lg_workload wl = { 0 };
	struct sim_config c = { .prof = &p, .policy = ACCEL_SCHED_PRIORITY, .no_yield = no_yield };
	struct lg_result *res;
	char err[128];

	toy_profile(&p);
	p.layers = 8;
	assert_int_equal(sim_profile_derive(&p, err, sizeof(err)), 0);
	add_req(&wl, 0.5, 2000, 3)->priority = 5;
	add_req(&wl, 0.51, 100, 2)->priority = 0;
	res = run(&c, &wl, t);
	assert_true(res[0].ok && res[1].ok);
	assert_int_equal(res[0].tokens, 3);
	assert_int_equal(res[1].tokens, 2);
	assert_int_equal(t->unfinished, 0);
	*ttft_a = res[0].ttft_ms;
	*ttft_b = res[1].ttft_ms;
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

static void test_yield(void **state)
{
	struct sim_profile p;
	struct sim_totals ty, tn;
	double a_y, b_y, a_n, b_n, work_a, step_a, cut, step_b, want_b_y, want_b_n, want_a_y;

	(void)state;
	toy_profile(&p);
	yield_case(0, &a_y, &b_y, &ty);
	yield_case(1, &a_n, &b_n, &tn);
	/* A's prefill work (us) and its whole step; B arrives at 10 ms: 3 of its 8 layers. */
	work_a = p.prefill_token_us * 2000 + p.prefill_quad_us * 2000.0 * 2000;
	step_a = p.step_base_us + work_a;
	assert_int_equal((int)ceil(10000 / step_a * 8), 3);
	cut = p.step_base_us + work_a * 3 / 8;
	step_b = p.step_base_us + p.prefill_token_us * 100 + p.prefill_quad_us * 100.0 * 100;
	want_b_y = (cut - 10000 + step_b) / 1000;
	/* A resumes for its last 5 layers beside B's decode (context 101). */
	want_a_y = (cut + step_b + p.step_base_us + p.decode_token_us +
		    p.context_token_us * 101 + work_a * 5 / 8) / 1000;
	/* No yield: B prefills beside A's first decode (context 2001). */
	want_b_n = (step_a - 10000 + p.step_base_us + p.prefill_token_us * 100 +
		    p.prefill_quad_us * 100.0 * 100 + p.decode_token_us +
		    p.context_token_us * 2001) / 1000;
	print_message("# yield: B's TTFT %.4f ms (closed form %.4f), without %.4f ms (%.4f); "
		      "A's %.4f ms (%.4f), without %.4f ms\n", b_y, want_b_y, b_n, want_b_n, a_y,
		      want_a_y, a_n);
	assert_true(fabs(b_y - want_b_y) < 1e-5);
	assert_true(fabs(b_n - want_b_n) < 1e-5);
	assert_true(fabs(a_y - want_a_y) < 1e-5);
	assert_true(fabs(a_n - step_a / 1000) < 1e-5);
	assert_true(b_n - b_y > 18);
	assert_int_equal(ty.yields, 1);
	assert_int_equal(tn.yields, 0);
	/* A's prompt counted once however it was cut. */
	assert_int_equal(ty.prefill_tokens, 2100);
	assert_int_equal(tn.prefill_tokens, 2100);
}

/* TTFT p99 (nearest rank) of a run's results. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double ttft_p99(const struct lg_result *res, size_t n)
{
	double *v = calloc(n, sizeof(*v)), p;
	size_t i;

	assert_non_null(v);
	for (i = 0; i < n; i++) {
		assert_true(res[i].ok);
		v[i] = res[i].ttft_ms;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	p = v[(size_t)ceil(0.99 * n) - 1];
	free(v);
	return p;
}

/*
 * Skewed: every other request is heavy (1500 prompt tokens, 300 outputs), the rest light (50,
 * 10), one every 40 ms on two instances. Round robin sends every heavy one to instance 0 and
 * every light one to instance 1 (100 requests each); least-loaded and Llumnix look at the blocks
 * and spread the heavy ones, so the tail of TTFT is shorter. Three instances under round robin
 * get 100 requests each of 300.
 */
static struct lg_result *cluster_run(uint32_t n_inst, uint32_t dispatch, size_t n,
				     struct sim_totals *t, struct lg_workload *wl)
{
	static struct sim_profile p;
	struct sim_config c = { .prof = &p, .instances = n_inst, .dispatch = dispatch };
	size_t i;

	toy_profile(&p);
	memset(wl, 0, sizeof(*wl));
	for (i = 0; i < n; i++)
		add_req(wl, 0.04 * i, i % 2 ? 50 : 1500, i % 2 ? 10 : 300);
	return run(&c, wl, t);
}

static void test_dispatch(void **state)
{
	static const char *const names[] = { "rr", "least", "llumnix" };
	struct lg_workload wl;
	struct sim_totals t;
	struct lg_result *res;
	double p99[3];
	uint32_t d, i;

	(void)state;
	for (d = 0; d < 3; d++) {
		res = cluster_run(2, d, 200, &t, &wl);
		p99[d] = ttft_p99(res, wl.n);
		assert_int_equal(t.nr_instances, 2);
		assert_int_equal(t.inst[0].requests + t.inst[1].requests, 200);
		assert_int_equal(t.steps, t.inst[0].steps + t.inst[1].steps);
		assert_int_equal(t.unfinished, 0);
		print_message("# skewed, 2 instances, %-7s: TTFT p99 %.2f ms; %llu and %llu "
			      "requests, %llu and %llu prefill tokens\n", names[d], p99[d],
			      (unsigned long long)t.inst[0].requests,
			      (unsigned long long)t.inst[1].requests,
			      (unsigned long long)t.inst[0].prefill_tokens,
			      (unsigned long long)t.inst[1].prefill_tokens);
		if (d == SIM_DISPATCH_RR) {
			/* Every heavy prompt on instance 0. */
			assert_int_equal(t.inst[0].requests, 100);
			assert_int_equal(t.inst[0].prefill_tokens, 100 * 1500);
			assert_int_equal(t.inst[1].prefill_tokens, 100 * 50);
		}
		lg_results_free(res, wl.n);
		lg_workload_free(&wl);
	}
	assert_true(p99[SIM_DISPATCH_LEAST] < p99[SIM_DISPATCH_RR]);
	assert_true(p99[SIM_DISPATCH_LLUMNIX] < p99[SIM_DISPATCH_RR]);
	res = cluster_run(3, SIM_DISPATCH_RR, 300, &t, &wl);
	for (i = 0; i < 3; i++)
		assert_int_equal(t.inst[i].requests, 100);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

/* Several instances: the same JSON for the same seed, and the instances array in it. */
static void test_cluster_determinism(void **state)
{
	struct sim_profile p;
	struct sim_config c = { .prof = &p, .policy = ACCEL_SCHED_PRIORITY, .gpu_blocks = 300,
				.host_blocks = 2000, .seed = 5, .instances = 3,
				.dispatch = SIM_DISPATCH_LLUMNIX };
	char *a, *b;

	(void)state;
	toy_profile(&p);
	a = json_of(&c, 11);
	b = json_of(&c, 11);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "\"dispatch\":\"llumnix\""));
	assert_non_null(strstr(a, "\"instances\":[{\"role\":\"both\""));
	free(a);
	free(b);
}

/*
 * --pd 1:1, one request of L = 300 tokens (18 full blocks and 12 tokens) and O = 5 outputs: the
 * prefill instance's step gives the first token (TTFT), the 19 blocks cross the link
 * (net_transfer_us + 19 block bytes / net_gbps), the decode instance finds the 18 full blocks
 * cached and prefills the 13 tokens left (the partial block and the first token) for the second
 * token, then decodes the other three as one engine would.
 */
static void test_pd_single(void **state)
{
	struct sim_profile p;
	struct lg_workload wl = { 0 };
	struct sim_config c = { .prof = &p, .pd_prefill = 1, .pd_decode = 1 };
	struct lg_result *res;
	struct sim_totals t;
	double ttft, xfer, second, dec[3], e2e;
	uint32_t k;

	(void)state;
	toy_profile(&p);
	p.net_gbps = 25;
	p.net_transfer_us = 40;
	add_req(&wl, 0.5, 300, 5);
	res = run(&c, &wl, &t);
	assert_true(res[0].ok);
	assert_int_equal(res[0].tokens, 5);
	ttft = (p.step_base_us + p.prefill_token_us * 300 + p.prefill_quad_us * 300.0 * 300) / 1000;
	xfer = (p.net_transfer_us * 1000 + 19.0 * p.block_bytes / p.net_gbps) / 1e6;
	second = (p.step_base_us + p.prefill_token_us * 13 +
		  p.prefill_quad_us * 13.0 * (2 * 288 + 13)) / 1000;
	e2e = ttft + xfer + second;
	for (k = 2; k < 5; k++) {
		dec[k - 2] = (p.step_base_us + p.decode_token_us + p.context_token_us * (300 + k)) /
			     1000;
		e2e += dec[k - 2];
	}
	print_message("# pd 1:1: TTFT %.4f ms (%.4f), e2e %.4f ms (%.4f), first gap %.4f ms "
		      "(transfer %.4f + admission %.4f)\n", res[0].ttft_ms, ttft, res[0].e2e_ms,
		      e2e, res[0].gaps_ms[0], xfer, second);
	assert_true(fabs(res[0].ttft_ms - ttft) < 1e-5);
	assert_true(fabs(res[0].e2e_ms - e2e) < 1e-4);
	assert_int_equal(res[0].nr_gaps, 4);
	assert_true(fabs(res[0].gaps_ms[0] - (xfer + second)) < 1e-3);
	for (k = 0; k < 3; k++)
		assert_true(fabs(res[0].gaps_ms[k + 1] - dec[k]) < 1e-3);
	assert_true(fabs(res[0].tpot_ms - (e2e - ttft) / 4) < 1e-5);
	assert_int_equal(res[0].prompt_tokens, 300);
	assert_int_equal(res[0].completion_tokens, 5);
	assert_int_equal(t.transfers, 1);
	assert_int_equal(t.transfer_blocks, 19);
	assert_int_equal(t.transfer_bytes, 19 * p.block_bytes);
	assert_int_equal(t.prefix_hit_blocks, 18);
	assert_int_equal(t.inst[0].role, SIM_ROLE_PREFILL);
	assert_int_equal(t.inst[1].role, SIM_ROLE_DECODE);
	assert_int_equal(t.inst[0].prefill_tokens, 300);
	assert_int_equal(t.inst[1].prefill_tokens, 13);
	assert_int_equal(t.inst[1].decode_tokens, 3);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

/*
 * Two requests prefilled in one step on the one prefill instance: their transfers queue on its
 * link (one at a time per sending instance), so the second's first gap is one transfer longer;
 * round robin lands them on the two decode instances, each admitted alone.
 */
static void test_pd_link_queue(void **state)
{
	struct sim_profile p;
	struct lg_workload wl = { 0 };
	struct sim_config c = { .prof = &p, .pd_prefill = 1, .pd_decode = 2 };
	struct lg_result *res;
	struct sim_totals t;
	double xfer;

	(void)state;
	toy_profile(&p);
	p.net_gbps = 25;
	p.net_transfer_us = 40;
	add_req(&wl, 0.5, 300, 3);
	add_req(&wl, 0.5, 300, 3);
	res = run(&c, &wl, &t);
	assert_true(res[0].ok && res[1].ok);
	xfer = (p.net_transfer_us * 1000 + 19.0 * p.block_bytes / p.net_gbps) / 1e6;
	assert_true(fabs(res[0].ttft_ms - res[1].ttft_ms) < 1e-9);
	assert_true(fabs(res[1].gaps_ms[0] - res[0].gaps_ms[0] - xfer) < 1e-3);
	assert_int_equal(t.inst[1].requests, 1);
	assert_int_equal(t.inst[2].requests, 1);
	assert_true(fabs(t.transfer_ns / 1e6 - 2 * xfer) < 1e-5);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

/* --pd 2:2 under a bursty two-class workload on small GPUs: no drops, every hand-off counted. */
static void test_pd_bursty(void **state)
{
	static const uint32_t pols[] = { ACCEL_SCHED_FCFS, ACCEL_SCHED_PRIORITY, ACCEL_SCHED_SLO };
	struct lg_workload wl = { 0 };
	struct sim_profile p;
	uint64_t want = 0, blocks = 0;
	uint32_t k, d;
	size_t i;

	(void)state;
	toy_profile(&p);
	p.net_gbps = 25;
	busy_workload(&wl, 3, 400);
	for (i = 0; i < wl.n; i++)
		if (wl.req[i].output_len > 1) {
			want++;
			blocks += (wl.req[i].input_len + 15) / 16;
		}
	for (k = 0; k < 3; k++)
		for (d = 0; d < SIM_NR_DISPATCH; d++) {
			struct sim_config c = { .prof = &p, .policy = pols[k], .gpu_blocks = 300,
						.host_blocks = 1000, .max_tokens = 512,
						.max_seqs = 64, .chunk_tokens = 256,
						.priority_threshold = 1, .pd_prefill = 2,
						.pd_decode = 2, .dispatch = d };
			struct sim_totals t;
			struct lg_result *res = run(&c, &wl, &t);

			for (i = 0; i < wl.n; i++) {
				if (!res[i].ok)
					fail_msg("pd %u/%u: request %zu: %s", k, d, i, res[i].msg);
				assert_int_equal(res[i].tokens, wl.req[i].output_len);
				assert_int_equal(res[i].nr_gaps, wl.req[i].output_len - 1);
			}
			assert_int_equal(t.unfinished, 0);
			assert_int_equal(t.transfers, want);
			assert_int_equal(t.transfer_blocks, blocks);
			assert_int_equal(t.transfer_bytes, blocks * p.block_bytes);
			assert_int_equal(t.inst[0].requests + t.inst[1].requests, wl.n);
			assert_int_equal(t.inst[2].requests + t.inst[3].requests, want);
			print_message("# pd 2:2 %-8s %-7s: %llu hand-offs, %llu swaps out, %llu "
				      "recomputes, %llu yields\n", accel_sched_policy_name(pols[k]),
				      sim_dispatch_name(d), (unsigned long long)t.transfers,
				      (unsigned long long)t.swaps_out,
				      (unsigned long long)t.recomputes,
				      (unsigned long long)t.yields);
			lg_results_free(res, wl.n);
		}
	lg_workload_free(&wl);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char good[] =
	"name = t\nmodel = m\ngpu = g\nlayers = 2\nkv_heads = 2\nhead_dim = 8\n"
	"dtype_bytes = 2\ngpu_mem_gib = 1\nweights_gib = 0\nswap_gbps = 1\n"
	"step_base_us = 1\nprefill_token_us = 1\ndecode_token_us = 1\n";

static void expect_error(const char *text, const char *want)
{
	char path[] = "/tmp/sim_profile_XXXXXX", err[512], msg[600];
	struct sim_profile p;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_file(path, text);
	assert_int_equal(sim_profile_load(path, &p, err, sizeof(err)), -1);
	snprintf(msg, sizeof(msg), "%s%s", path, want);
	if (strncmp(err, msg, strlen(msg)))
		fail_msg("got \"%s\", want \"%s...\"", err, msg);
	unlink(path);
}

static void test_profile_errors(void **state)
{
	char buf[1024];

	(void)state;
	snprintf(buf, sizeof(buf), "%sbogus = 1\n", good);
	expect_error(buf, ":14: unknown key \"bogus\"");
	snprintf(buf, sizeof(buf), "# a comment\n\nlayers = many\n%s", good);
	expect_error(buf, ":3: layers: \"many\" is not a number");
	snprintf(buf, sizeof(buf), "%slayers = 3\n", good);
	expect_error(buf, ":14: layers given twice");
	snprintf(buf, sizeof(buf), "%sjust words\n", good);
	expect_error(buf, ":14: not \"key = value\"");
	snprintf(buf, sizeof(buf), "%smem_util = 2\n", good);
	expect_error(buf, ":14: mem_util: 2 not in 0.01..1");
	expect_error(good + strlen("name = t\n"), ": no \"name\"");
	snprintf(buf, sizeof(buf), "%sweights_gib = 2\n", good);
	expect_error(strstr(buf, "name"), ":14: weights_gib given twice");
	snprintf(buf, sizeof(buf), "%s", good);
	*strstr(buf, "weights_gib = 0") = 0;
	strcat(buf, "weights_gib = 5\nswap_gbps = 1\nstep_base_us = 1\nprefill_token_us = 1\n"
		    "decode_token_us = 1\n");
	expect_error(buf, ": no GPU memory left for the KV cache");
	expect_error("", ": no \"name\"");
}

static void test_profiles_shipped(void **state)
{
	struct sim_profile p;
	char err[512];

	(void)state;
	if (sim_profile_load("tools/sim/profiles/llama2-7b-a100.profile", &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.kv_bytes_per_token, 524288);	/* 512 KiB: MHA */
	assert_int_equal(p.block_bytes, 16 * 524288);
	/* (80 x 0.9 - 12.55 - 4) GiB of 8 MiB blocks. */
	assert_int_equal(p.gpu_blocks, (uint32_t)floor((80 * 0.9 - 12.55 - 4) * 128));
	assert_int_equal(p.host_blocks, 128 * 128);
	if (sim_profile_load("tools/sim/profiles/llama3-8b-h100.profile", &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.kv_bytes_per_token, 131072);	/* 128 KiB: GQA, 8 KV heads */
	assert_int_equal(p.gpu_blocks, (uint32_t)floor((80 * 0.9 - 14.96 - 4) * 512));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_request),
		cmocka_unit_test(test_single_request_chunked),
		cmocka_unit_test(test_md1),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_no_drops),
		cmocka_unit_test(test_prefix_hits),
		cmocka_unit_test(test_yield),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_cluster_determinism),
		cmocka_unit_test(test_pd_single),
		cmocka_unit_test(test_pd_link_queue),
		cmocka_unit_test(test_pd_bursty),
		cmocka_unit_test(test_profile_errors),
		cmocka_unit_test(test_profiles_shipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
