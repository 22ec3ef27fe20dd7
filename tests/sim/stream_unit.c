// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim --stream (tools/sim/stream.c, engine.c's slots, synth.c's and trace.c's
 * iterators): the generator's iterator makes lg_synth()'s requests, in order, for every arrival
 * process, length, class and client option, and refuses sessions; the trace's reads the sample
 * traces as lg_trace_load() does (with --limit, --time-scale, clips and SLO defaults) and
 * refuses a line out of arrival order, a malformed line (FILE:LINE) and an empty trace; the
 * histogram's percentiles are within 1 % of the exact ones on random data (lognormal, uniform,
 * heavy ties, tiny and empty sets); a streamed run is the same run as the exact one (the
 * engine's totals byte for byte, every count equal, every percentile within 1 %), with classes,
 * client timeouts and aborts, and prefill/decode hand-offs; slots are recycled (a run of many
 * more requests than are ever alive).
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
#include "engine.h"
#include "profile.h"
#include "rng.h"
#include "stats.h"
#include "stream.h"

static void opts(struct lg_synth_opts *o, size_t n, double rate, uint64_t seed)
{
	memset(o, 0, sizeof(*o));
	o->requests = n;
	o->rate = rate;
	o->seed = seed;
	o->input = (struct lg_dist){ LG_DIST_LOGNORMAL, 5.0, 0.8 };
	o->output = (struct lg_dist){ LG_DIST_LOGNORMAL, 3.5, 0.7 };
	o->max_input = 4000;
	o->max_output = 300;
}

static void same_requests(const struct lg_synth_opts *o)
{
	struct lg_workload wl = { 0 };
	struct lg_synth_iter it;
	struct lg_req r;
	size_t i;

	assert_int_equal(lg_synth(o, &wl), 0);
	assert_int_equal(wl.n, o->requests);
	assert_int_equal(lg_synth_iter_init(&it, o), 0);
	for (i = 0; i < wl.n; i++) {
		assert_int_equal(lg_synth_next(&it, &r), 1);
		if (memcmp(&r, &wl.req[i], sizeof(r)))
			fail_msg("request %zu differs (arrival %g vs %g)", i, r.arrival_s,
				 wl.req[i].arrival_s);
	}
	assert_int_equal(lg_synth_next(&it, &r), 0);
	lg_workload_free(&wl);
}

static void test_iter_same(void **state)
{
	struct lg_synth_opts o;

	(void)state;
	opts(&o, 3000, 4, 1);
	same_requests(&o);
	o.arrival = LG_ARR_GAMMA;
	o.cv = 3;
	o.seed = 7;
	same_requests(&o);
	o.arrival = LG_ARR_BURST;
	o.burst = 5;
	o.clients = 3;
	same_requests(&o);
	opts(&o, 2000, 9, 3);
	o.diurnal_period_s = 60;
	o.diurnal_amp = 0.8;
	o.nr_classes = 2;
	o.classes[0] = (struct lg_class){ "hi", 1, 2, 200, 40 };
	o.classes[1] = (struct lg_class){ "lo", 3, 0, 0, 0 };
	same_requests(&o);
	o.input = (struct lg_dist){ LG_DIST_UNIFORM, 10, 90 };
	o.output = (struct lg_dist){ LG_DIST_FIXED, 17, 0 };
	same_requests(&o);
}

static void test_iter_refuses(void **state)
{
	struct lg_synth_opts o;
	struct lg_synth_iter it;

	(void)state;
	opts(&o, 10, 1, 1);
	o.sessions = 2;
	o.turns = 3;
	assert_int_equal(lg_synth_iter_init(&it, &o), -1);
	opts(&o, 10, 0, 1);
	assert_int_equal(lg_synth_iter_init(&it, &o), -1);
}

/* A trace read line by line: lg_trace_load()'s requests, byte for byte but for the pointers. */
static void same_trace(const char *path, const struct lg_trace_opts *o)
{
	struct lg_workload wl = { 0 };
	struct lg_trace_iter *it;
	struct lg_req r;
	char err[256];
	size_t i;

	if (lg_trace_load(path, o, &wl, err, sizeof(err)))
		fail_msg("%s", err);
	it = lg_trace_open(path, o, err, sizeof(err));
	assert_non_null(it);
	for (i = 0; i < wl.n; i++) {
		const struct lg_req *q = &wl.req[i];

		assert_int_equal(lg_trace_next(it, &r), 1);
		assert_true(r.arrival_s == q->arrival_s && r.input_len == q->input_len &&
			    r.output_len == q->output_len && r.priority == q->priority &&
			    r.ttft_slo_ms == q->ttft_slo_ms && r.tpot_slo_ms == q->tpot_slo_ms &&
			    r.line == q->line && r.nr_hash_ids == q->nr_hash_ids);
		assert_string_equal(r.cls, q->cls);
		assert_string_equal(r.client, q->client);
		if (q->nr_hash_ids)
			assert_memory_equal(r.hash_ids, q->hash_ids,
					    q->nr_hash_ids * sizeof(*q->hash_ids));
		free(r.prompt);
		free(r.hash_ids);
	}
	assert_int_equal(lg_trace_next(it, &r), 0);
	lg_trace_close(it);
	lg_workload_free(&wl);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* lg_trace_next() on @text: @good requests, then -1 with @want in the message. */
static void trace_refused(const char *text, int good, const char *want)
{
	char path[] = "/tmp/sim_stream_XXXXXX", err[256] = "";
	struct lg_trace_opts o = { 0 };
	struct lg_trace_iter *it;
	struct lg_req r;
	int fd = mkstemp(path), i;

	assert_true(fd >= 0);
	close(fd);
	write_file(path, text);
	it = lg_trace_open(path, &o, err, sizeof(err));
	assert_non_null(it);
	for (i = 0; i < good; i++) {
		assert_int_equal(lg_trace_next(it, &r), 1);
		free(r.prompt);
		free(r.hash_ids);
	}
	assert_int_equal(lg_trace_next(it, &r), -1);
	if (!strstr(err, want))
		fail_msg("\"%s\" does not say \"%s\"", err, want);
	lg_trace_close(it);
	unlink(path);
}

static void test_trace_iter(void **state)
{
	struct lg_trace_opts o = { 0 };
	char err[256];

	(void)state;
	same_trace("tests/sim/traces/azure-conv-sample.csv", &o);
	same_trace("tests/sim/traces/mooncake-sample.jsonl", &o);
	same_trace("tests/sim/traces/plain-sample.csv", &o);
	o.limit = 25;
	o.time_scale = 3;
	o.max_input = 700;
	o.max_output = 50;
	o.ttft_slo_ms = 400;
	same_trace("tests/sim/traces/azure-conv-sample.csv", &o);
	same_trace("tests/sim/traces/mooncake-sample.jsonl", &o);
	trace_refused("arrival_s,input_length,output_length\n1,10,5\n2,10,5\n1.5,10,5\n", 2,
		      ":4: arrives before the line before it");
	trace_refused("arrival_s,input_length,output_length\n1,10,5\n2,x,5\n", 1, ":3: ");
	trace_refused("arrival_s,input_length,output_length\n", 0, "no requests");
	assert_null(lg_trace_open("/nonexistent/trace.csv", &o, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The histogram of @v against lg_percentile() of the sorted values, within @tol relative (or
 * 1e-6 ms, below the simulator's nanosecond clock: the values under 2^-24 ms share a bucket).
 */
static void hist_vs_exact(double *v, size_t n, double tol)
{
	static const double ps[] = { 0, 1, 10, 25, 50, 75, 90, 99, 99.9, 100 };
	struct sim_hist h = { 0 };
	size_t i, k;

	for (i = 0; i < n; i++)
		assert_int_equal(sim_hist_add(&h, v[i]), 0);
	qsort(v, n, sizeof(*v), cmp);
	assert_int_equal(h.n, n);
	for (k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		double want = lg_percentile(v, n, ps[k]), got = sim_hist_pct(&h, ps[k]);

		if (!(fabs(got - want) <= tol * fabs(want) + 1e-6))
			fail_msg("n %zu p%g: %.9g, exact %.9g", n, ps[k], got, want);
	}
	assert_true(h.max == v[n - 1] && h.min == v[0]);
	sim_hist_free(&h);
}

static void test_hist(void **state)
{
	struct lg_rng r = { 42 };
	size_t n = 200000, i, trial;
	double *v = malloc(n * sizeof(*v));
	struct sim_hist h = { 0 };

	(void)state;
	assert_non_null(v);
	for (trial = 0; trial < 4; trial++) {
		for (i = 0; i < n; i++) {
			switch (trial) {
			case 0:		/* latencies: lognormal over decades */
				v[i] = exp(3 + 2 * lg_rng_normal(&r));
				break;
			case 1:		/* uniform */
				v[i] = 5 + 1000 * lg_rng_unit(&r);
				break;
			case 2:		/* gaps: a few values, heavily tied, and stalls */
				v[i] = (i % 97) ? 7.25 + (i % 3) : 400 + (double)(i % 11);
				break;
			default:	/* floats, as the gaps are kept */
				v[i] = (float)(0.001 + lg_rng_exp(&r, 30));
			}
		}
		hist_vs_exact(v, n, 0.01);
		hist_vs_exact(v, 1, 0.01);
		hist_vs_exact(v + 10, 2, 0.01);
		hist_vs_exact(v + 20, 7, 0.01);
	}
	/* Out of range and zero: the exact min and max stand for them. */
	v[0] = 0;
	v[1] = 1e-12;
	v[2] = 1e15;
	hist_vs_exact(v, 3, 0.01);
	assert_true(isnan(sim_hist_pct(&h, 50)));
	free(v);
}

static void profile(struct sim_profile *p)
{
	char err[256];

	if (sim_profile_load("tools/sim/profiles/llama3-8b-h100.profile", p, err, sizeof(err)))
		fail_msg("%s", err);
}

static void close_to(const char *what, const double *got, const double *want)
{
	int k;

	for (k = 0; k < LG_NR_PCT; k++) {
		if (isnan(want[k]) && isnan(got[k]))
			continue;
		if (!(fabs(got[k] - want[k]) <= 0.01 * fabs(want[k])))
			fail_msg("%s p%g: stream %.6g, exact %.6g", what, lg_pcts[k], got[k],
				 want[k]);
	}
}

/* The summaries of class @cls (NULL: all) of both runs: counts equal, percentiles close. */
static void same_summary(const struct lg_workload *wl, const struct lg_result *res,
			 const struct sim_stream *st, const char *cls, double dur)
{
	struct lg_summary e, s;

	lg_summarize(wl, res, cls, dur, &e);
	assert_int_equal(sim_stream_summary(st, cls, dur, &s), 0);
	assert_int_equal(s.requests, e.requests);
	assert_int_equal(s.completed, e.completed);
	assert_int_equal(s.failed, e.failed);
	assert_memory_equal(s.fail, e.fail, sizeof(e.fail));
	assert_int_equal(s.met, e.met);
	assert_int_equal(s.nr_tpot, e.nr_tpot);
	assert_int_equal(s.nr_itl, e.nr_itl);
	assert_int_equal(s.reported, e.reported);
	assert_int_equal(s.preemptions, e.preemptions);
	assert_int_equal(s.preempted, e.preempted);
	assert_int_equal(s.recomputed, e.recomputed);
	assert_int_equal(s.tax_tokens, e.tax_tokens);
	assert_true(s.attainment == e.attainment || (isnan(s.attainment) && isnan(e.attainment)));
	assert_true(s.itl_max == e.itl_max || (isnan(s.itl_max) && isnan(e.itl_max)));
	close_to("ttft", s.ttft, e.ttft);
	close_to("tpot", s.tpot, e.tpot);
	close_to("e2e", s.e2e, e.e2e);
	close_to("itl", s.itl, e.itl);
}

/* The same workload exact and streamed: the same run. */
static void same_run(const struct sim_config *c, const struct lg_synth_opts *o)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res;
	struct sim_stream *st = malloc(sizeof(*st));
	struct sim_totals te, ts;
	char err[256];
	size_t k, n503;

	assert_non_null(st);
	assert_int_equal(lg_synth(o, &wl), 0);
	res = calloc(wl.n + 1, sizeof(*res));
	assert_non_null(res);
	if (sim_run(c, &wl, res, &te, err, sizeof(err)))
		fail_msg("sim_run: %s", err);
	sim_stream_init(st);
	if (sim_run_stream(c, o, NULL, st, &ts, err, sizeof(err)))
		fail_msg("sim_run_stream: %s", err);
	assert_memory_equal(&ts, &te, sizeof(te));
	same_summary(&wl, res, st, NULL, te.duration_s);
	for (k = 0; k < o->nr_classes; k++)
		same_summary(&wl, res, st, o->classes[k].name, te.duration_s);
	for (k = 0, n503 = 0; k < wl.n; k++)
		n503 += res[k].status == 503;
	assert_int_equal(st->err.status[503], n503);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	sim_stream_free(st);
	free(st);
}

static void test_same_run(void **state)
{
	struct sim_profile p;
	struct sim_config c;
	struct lg_synth_opts o;

	(void)state;
	profile(&p);
	memset(&c, 0, sizeof(c));
	c.prof = &p;
	c.seed = 1;
	opts(&o, 3000, 20, 1);
	same_run(&c, &o);
	/* Two classes under the priority policy, overloaded: preemptions, timeouts, aborts. */
	o.rate = 60;
	o.nr_classes = 2;
	o.classes[0] = (struct lg_class){ "hi", 1, 2, 150, 30 };
	o.classes[1] = (struct lg_class){ "lo", 4, 0, 3000, 80 };
	c.policy = ACCEL_SCHED_PRIORITY;
	c.gpu_blocks = 3000;
	c.client_timeout_ms = 2500;
	c.abort_frac = 0.1;
	same_run(&c, &o);
	/* Prefill/decode hand-offs. */
	memset(&c, 0, sizeof(c));
	c.prof = &p;
	c.seed = 1;
	c.pd_prefill = 1;
	c.pd_decode = 2;
	opts(&o, 2000, 25, 5);
	same_run(&c, &o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iter_same),
		cmocka_unit_test(test_iter_refuses),
		cmocka_unit_test(test_trace_iter),
		cmocka_unit_test(test_hist),
		cmocka_unit_test(test_same_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
