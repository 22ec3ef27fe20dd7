// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen's synthetic generator: the arrival rate and the gaps' coefficient of variation
 * (Poisson 1, Gamma its knob, bursts of equal times), the length distributions' parameters and
 * clipping, the class mix, all within tolerance over 20000 requests; the same seed gives the same
 * workload and another seed another; the streams are separate (the class mix does not move the
 * arrivals); the option parsers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workload.h"

#define N 20000

static void within(double v, double want, double rel)
{
	if (fabs(v - want) > rel * fabs(want)) {
		fprintf(stderr, "# %.5f not within %.1f%% of %.5f\n", v, rel * 100, want);
		fail();
	}
}

static struct lg_synth_opts base(void)
{
	struct lg_synth_opts o = {
		.requests = N, .rate = 50, .arrival = LG_ARR_POISSON, .cv = 1, .burst = 1,
		.input = { LG_DIST_FIXED, 100, 0 }, .output = { LG_DIST_FIXED, 10, 0 }, .seed = 42,
	};
	return o;
}

/* Mean and coefficient of variation of the gaps between distinct arrival times. */
static void gaps(const struct lg_workload *wl, double *mean, double *cv)
{
	double s = 0, s2 = 0, g;
	size_t i, n = 0;

	for (i = 1; i < wl->n; i++) {
		g = wl->req[i].arrival_s - wl->req[i - 1].arrival_s;
		assert_true(g >= 0);
		if (g == 0)
			continue;
		s += g;
		s2 += g * g;
		n++;
	}
	*mean = s / n;
	*cv = sqrt(s2 / n - *mean * *mean) / *mean;
}

static void arrivals(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload wl = { 0 };
	double mean, cv;
	size_t i;

	(void)state;
	assert_int_equal(lg_synth(&o, &wl), 0);
	assert_int_equal(wl.n, N);
	assert_true(wl.req[0].arrival_s == 0);
	within(wl.n / wl.req[wl.n - 1].arrival_s, 50, 0.03);
	gaps(&wl, &mean, &cv);
	within(cv, 1, 0.05);
	lg_workload_free(&wl);

	o.arrival = LG_ARR_GAMMA;
	o.cv = 2;
	assert_int_equal(lg_synth(&o, &wl), 0);
	within(wl.n / wl.req[wl.n - 1].arrival_s, 50, 0.08);
	gaps(&wl, &mean, &cv);
	within(cv, 2, 0.1);
	lg_workload_free(&wl);

	o.cv = 0.5;
	assert_int_equal(lg_synth(&o, &wl), 0);
	gaps(&wl, &mean, &cv);
	within(cv, 0.5, 0.05);
	lg_workload_free(&wl);

	o.arrival = LG_ARR_BURST;
	o.burst = 8;
	assert_int_equal(lg_synth(&o, &wl), 0);
	for (i = 0; i < wl.n; i++)
		assert_true(wl.req[i].arrival_s == wl.req[i - i % 8].arrival_s);
	assert_true(wl.req[8].arrival_s > wl.req[7].arrival_s);
	within(wl.n / wl.req[wl.n - 1].arrival_s, 50, 0.08);
	lg_workload_free(&wl);

	o.rate = 0;
	assert_int_equal(lg_synth(&o, &wl), -1);
	lg_workload_free(&wl);
}

static void lengths(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload wl = { 0 };
	double s = 0, s2 = 0, l, u = 0;
	size_t i, clipped = 0;

	(void)state;
	o.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 6.6, 1.0 };
	o.output = (struct lg_dist){ LG_DIST_UNIFORM, 10, 30 };
	assert_int_equal(lg_synth(&o, &wl), 0);
	for (i = 0; i < wl.n; i++) {
		l = log(wl.req[i].input_len);
		s += l;
		s2 += l * l;
		assert_in_range(wl.req[i].output_len, 10, 30);
		u += wl.req[i].output_len;
	}
	within(s / N, 6.6, 0.01);
	within(sqrt(s2 / N - (s / N) * (s / N)), 1.0, 0.03);
	within(u / N, 20, 0.01);
	lg_workload_free(&wl);

	o.max_input = 500;
	o.output = (struct lg_dist){ LG_DIST_FIXED, 7, 0 };
	assert_int_equal(lg_synth(&o, &wl), 0);
	for (i = 0; i < wl.n; i++) {
		assert_in_range(wl.req[i].input_len, 1, 500);
		clipped += wl.req[i].input_len == 500;
		assert_int_equal(wl.req[i].output_len, 7);
	}
	/* P(lognormal(6.6, 1) > 500) = P(Z > (ln 500 - 6.6) / 1) = P(Z > -0.385) = 0.65 */
	within((double)clipped / N, 0.65, 0.03);
	lg_workload_free(&wl);
}

static void classes(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload wl = { 0 }, plain = { 0 };
	size_t i, online = 0;

	(void)state;
	assert_int_equal(lg_synth(&o, &plain), 0);
	assert_string_equal(plain.req[0].cls, "online");
	assert_int_equal(lg_class_parse("online:1:5:250:50", &o.classes[0]), 0);
	assert_int_equal(lg_class_parse("offline:4:0:0:0", &o.classes[1]), 0);
	o.nr_classes = 2;
	o.clients = 3;
	assert_int_equal(lg_synth(&o, &wl), 0);
	for (i = 0; i < wl.n; i++) {
		struct lg_req *r = &wl.req[i];
		char want[8];

		if (!strcmp(r->cls, "online")) {
			online++;
			assert_int_equal(r->priority, 5);
			assert_true(r->ttft_slo_ms == 250 && r->tpot_slo_ms == 50);
		} else {
			assert_string_equal(r->cls, "offline");
			assert_int_equal(r->priority, 0);
			assert_true(r->ttft_slo_ms == 0);
		}
		snprintf(want, sizeof(want), "c%zu", i % 3);
		assert_string_equal(r->client, want);
		/* separate streams: the mix moves neither arrivals nor lengths */
		assert_true(r->arrival_s == plain.req[i].arrival_s);
		assert_int_equal(r->input_len, plain.req[i].input_len);
	}
	within((double)online / N, 0.2, 0.05);
	lg_workload_free(&wl);
	lg_workload_free(&plain);
}

static void seeds(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload a = { 0 }, b = { 0 }, c = { 0 };
	size_t i, same = 0;

	(void)state;
	o.requests = 500;
	o.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 5, 1 };
	assert_int_equal(lg_synth(&o, &a), 0);
	assert_int_equal(lg_synth(&o, &b), 0);
	o.seed = 43;
	assert_int_equal(lg_synth(&o, &c), 0);
	for (i = 0; i < a.n; i++) {
		assert_true(a.req[i].arrival_s == b.req[i].arrival_s);
		assert_int_equal(a.req[i].input_len, b.req[i].input_len);
		same += a.req[i].input_len == c.req[i].input_len;
	}
	assert_true(same < 50);
	assert_true(a.req[1].arrival_s != c.req[1].arrival_s);
	lg_workload_free(&a);
	lg_workload_free(&b);
	lg_workload_free(&c);
}

static void parsers(void **state)
{
	struct lg_dist d;
	struct lg_class c;

	(void)state;
	assert_int_equal(lg_dist_parse("fixed:64", &d), 0);
	assert_true(d.kind == LG_DIST_FIXED && d.a == 64);
	assert_int_equal(lg_dist_parse("uniform:2:9", &d), 0);
	assert_true(d.kind == LG_DIST_UNIFORM && d.b == 9);
	assert_int_equal(lg_dist_parse("lognormal:5.0:0.9", &d), 0);
	assert_int_equal(lg_dist_parse("fixed:0", &d), -1);
	assert_int_equal(lg_dist_parse("uniform:9:2", &d), -1);
	assert_int_equal(lg_dist_parse("lognormal:5", &d), -1);
	assert_int_equal(lg_dist_parse("fixed:3x", &d), -1);
	assert_int_equal(lg_dist_parse("normal:1:2", &d), -1);
	assert_int_equal(lg_class_parse("hi:0.2:3:250:100", &c), 0);
	assert_string_equal(c.name, "hi");
	assert_true(c.weight == 0.2 && c.priority == 3 && c.ttft_slo_ms == 250 &&
		    c.tpot_slo_ms == 100);
	assert_int_equal(lg_class_parse("hi:0:3:250:100", &c), -1);
	assert_int_equal(lg_class_parse(":1:3:250:100", &c), -1);
	assert_int_equal(lg_class_parse("hi:1:3:250", &c), -1);
	assert_int_equal(lg_class_parse("hi:1:3:250:-1", &c), -1);
	assert_int_equal(lg_class_parse("hi:1:3:250:1:", &c), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arrivals),
		cmocka_unit_test(lengths),
		cmocka_unit_test(classes),
		cmocka_unit_test(seeds),
		cmocka_unit_test(parsers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
