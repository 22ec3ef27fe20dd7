// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen's synthetic generator: the arrival rate and the gaps' coefficient of variation
 * (Poisson 1, Gamma its knob, bursts of equal times), the length distributions' parameters and
 * clipping, the class mix, all within tolerance over 20000 requests; the same seed gives the same
 * workload and another seed another; the streams are separate (the class mix does not move the
 * arrivals); the option parsers. A diurnal swing: the arrivals per phase of the period follow
 * 1 + A sin within 5 sigma, the mean rate kept; sessions: turn k's prompt begins with turn k-1's
 * whole prompt, byte for byte, its length the previous prompt and output and a new message,
 * the think time's mean, one client and class a session.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wlopts.h"
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

/*
 * Diurnal: Poisson at 100/s swinging by A = 0.8 over a 100 s period, 100000 requests (about ten
 * periods). Over the whole periods, the arrivals in each eighth of the period against
 * 1/8 + A / (2 pi) (cos(2 pi j / 8) - cos(2 pi (j + 1) / 8)) of them, within 5 sigma of the
 * binomial; the rate over whole periods within 1 % of 100, over the run within 3 %.
 */
static void diurnal(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload wl = { 0 }, plain = { 0 };
	const double P = 100, A = 0.8;
	size_t i, n = 0, bins[8] = { 0 };
	double end;
	int j;

	(void)state;
	o.requests = 100000;
	o.rate = 100;
	o.diurnal_period_s = P;
	o.diurnal_amp = A;
	assert_int_equal(lg_synth(&o, &wl), 0);
	assert_int_equal(wl.n, 100000);
	assert_true(wl.req[0].arrival_s == 0);
	end = floor(wl.req[wl.n - 1].arrival_s / P) * P;
	assert_true(end >= 9 * P);
	for (i = 0; i < wl.n; i++) {
		double t = wl.req[i].arrival_s;

		if (i)
			assert_true(t >= wl.req[i - 1].arrival_s);
		if (t >= end)
			break;
		bins[(int)(fmod(t, P) / P * 8)]++;
		n++;
	}
	for (j = 0; j < 8; j++) {
		double p = 0.125 + A / (2 * M_PI) * (cos(2 * M_PI * j / 8) -
						     cos(2 * M_PI * (j + 1) / 8));
		double sd = sqrt(n * p * (1 - p));

		fprintf(stderr, "# diurnal eighth %d: %zu arrivals, %.0f expected (%.1f sigma)\n",
			j, bins[j], n * p, (bins[j] - n * p) / sd);
		assert_true(fabs(bins[j] - n * p) < 5 * sd);
	}
	/* The swing is there: the peak eighth has about 3.6 times the trough's. */
	assert_true(bins[1] > 3 * bins[5]);
	within(n / end, 100, 0.01);
	within(wl.n / wl.req[wl.n - 1].arrival_s, 100, 0.03);
	lg_workload_free(&wl);

	/* Amplitude 0 is plain Poisson, draw for draw. */
	o.diurnal_amp = 0;
	o.requests = 1000;
	assert_int_equal(lg_synth(&o, &wl), 0);
	o.diurnal_period_s = 0;
	assert_int_equal(lg_synth(&o, &plain), 0);
	for (i = 0; i < wl.n; i++)
		assert_true(wl.req[i].arrival_s == plain.req[i].arrival_s);
	lg_workload_free(&wl);
	lg_workload_free(&plain);

	/* Poisson only; an amplitude above 1 would be a negative rate. */
	o.diurnal_period_s = P;
	o.diurnal_amp = 0.5;
	o.arrival = LG_ARR_GAMMA;
	assert_int_equal(lg_synth(&o, &wl), -1);
	lg_workload_free(&wl);
	o.arrival = LG_ARR_POISSON;
	o.diurnal_amp = 1.5;
	assert_int_equal(lg_synth(&o, &wl), -1);
	lg_workload_free(&wl);
}

/* The request of @session's turn @turn, or NULL. */
static const struct lg_req *turn_of(const struct lg_req **by, uint32_t turns, uint32_t session,
				    uint32_t turn)
{
	return by[(size_t)(session - 1) * turns + turn - 1];
}

static void check_sessions(const struct lg_synth_opts *o, const struct lg_workload *wl,
			   double *think_mean)
{
	const struct lg_req **by = calloc(wl->n, sizeof(*by));
	double think = 0;
	size_t i, nthink = 0;
	uint32_t s, k;

	assert_non_null(by);
	assert_int_equal(wl->n, (size_t)o->sessions * o->turns);
	for (i = 0; i < wl->n; i++) {
		const struct lg_req *r = &wl->req[i];

		if (i)
			assert_true(r->arrival_s >= wl->req[i - 1].arrival_s);
		assert_in_range(r->session, 1, o->sessions);
		assert_in_range(r->turn, 1, o->turns);
		assert_null(by[(size_t)(r->session - 1) * o->turns + r->turn - 1]);
		by[(size_t)(r->session - 1) * o->turns + r->turn - 1] = r;
		/* One hash id a 512-token block of the prompt. */
		assert_int_equal(r->nr_hash_ids, (r->input_len + 511) / 512);
		if (o->max_input)
			assert_true(r->input_len <= o->max_input);
	}
	for (s = 1; s <= o->sessions; s++) {
		for (k = 2; k <= o->turns; k++) {
			const struct lg_req *a = turn_of(by, o->turns, s, k - 1);
			const struct lg_req *b = turn_of(by, o->turns, s, k);
			double guess = a->output_len * LG_TURN_TPOT_S;
			size_t la, lb;
			uint8_t *pa = lg_prompt_make(a, o->seed, a - wl->req, &la);
			uint8_t *pb = lg_prompt_make(b, o->seed, b - wl->req, &lb);

			assert_non_null(pa);
			assert_non_null(pb);
			/* The whole previous turn and a new message (unless clipped). */
			if (!o->max_input || b->input_len < o->max_input)
				assert_true(b->input_len > a->input_len + a->output_len);
			assert_true(b->input_len >= a->input_len);
			assert_int_equal(la, a->input_len);
			assert_true(lb >= la);
			if (memcmp(pa, pb, la))
				fail_msg("session %u turn %u: its prompt does not begin with turn "
					 "%u's", s, k, k - 1);
			free(pa);
			free(pb);
			assert_string_equal(a->client, b->client);
			assert_string_equal(a->cls, b->cls);
			assert_true(b->arrival_s - a->arrival_s >= guess);
			think += b->arrival_s - a->arrival_s - guess;
			nthink++;
		}
		/* Sessions share nothing: their first ids differ. */
		if (s > 1)
			assert_true(turn_of(by, o->turns, s, 1)->hash_ids[0] !=
				    turn_of(by, o->turns, s - 1, 1)->hash_ids[0]);
	}
	*think_mean = nthink ? think / nthink : 0;
	free(by);
}

/*
 * Sessions: 500 conversations of 5 turns, new messages lognormal(5, 1), outputs 10..100, think
 * 4 s, 10 requests/s (sessions start at 2/s), three clients and two classes.
 */
static void sessions(void **state)
{
	struct lg_synth_opts o = base();
	struct lg_workload wl = { 0 }, again = { 0 };
	size_t i, firsts = 0, same = 0;
	double think, last_first = 0;
	uint8_t *p0, *p1;
	size_t l0, l1;

	(void)state;
	o.rate = 10;
	o.sessions = 500;
	o.turns = 5;
	o.think_s = 4;
	o.clients = 3;
	o.input = (struct lg_dist){ LG_DIST_LOGNORMAL, 5, 1 };
	o.output = (struct lg_dist){ LG_DIST_UNIFORM, 10, 100 };
	assert_int_equal(lg_class_parse("hi:1:0:250:50", &o.classes[0]), 0);
	assert_int_equal(lg_class_parse("lo:1:2:0:0", &o.classes[1]), 0);
	o.nr_classes = 2;
	assert_int_equal(lg_synth(&o, &wl), 0);
	check_sessions(&o, &wl, &think);
	/* 2000 exponential think times of mean 4 s: the mean's sd is 2.2 %. */
	within(think, 4, 0.1);
	for (i = 0; i < wl.n; i++) {
		if (wl.req[i].turn != 1)
			continue;
		firsts++;
		last_first = wl.req[i].arrival_s;
		same += !strcmp(wl.req[i].cls, "hi");
	}
	assert_int_equal(firsts, 500);
	/* Sessions start at rate / turns. */
	within(firsts / last_first, 2, 0.15);
	within((double)same / firsts, 0.5, 0.15);
	/* Two sessions' first prompts differ. */
	p0 = lg_prompt_make(&wl.req[0], o.seed, 0, &l0);
	for (i = 1; wl.req[i].session == wl.req[0].session; i++)
		;
	p1 = lg_prompt_make(&wl.req[i], o.seed, i, &l1);
	assert_true(memcmp(p0, p1, l0 < l1 ? l0 : l1));
	free(p0);
	free(p1);
	/* The same seed, the same sessions. */
	assert_int_equal(lg_synth(&o, &again), 0);
	for (i = 0; i < wl.n; i++) {
		assert_true(wl.req[i].arrival_s == again.req[i].arrival_s);
		assert_int_equal(wl.req[i].input_len, again.req[i].input_len);
		assert_int_equal(wl.req[i].session, again.req[i].session);
	}
	lg_workload_free(&wl);
	lg_workload_free(&again);

	/* Clipped at 600 tokens: still each turn's prefix; a diurnal swing on the starts. */
	o.max_input = 600;
	o.diurnal_period_s = 60;
	o.diurnal_amp = 0.5;
	assert_int_equal(lg_synth(&o, &wl), 0);
	check_sessions(&o, &wl, &think);
	lg_workload_free(&wl);

	o.turns = 0;
	assert_int_equal(lg_synth(&o, &wl), -1);
	lg_workload_free(&wl);
}

/* The options: --diurnal, --sessions, --think, and --diurnal only with Poisson. */
static void session_options(void **state)
{
	struct option o[LG_WL_NR_OPTS];
	struct lg_wl_cli w;
	int diu = 0, ses = 0, thi = 0, arr = 0, syn = 0, i;

	(void)state;
	memcpy(o, lg_wl_options, sizeof(o));
	for (i = 0; i < LG_WL_NR_OPTS; i++) {
		if (!strcmp(o[i].name, "diurnal"))
			diu = o[i].val;
		if (!strcmp(o[i].name, "sessions"))
			ses = o[i].val;
		if (!strcmp(o[i].name, "think"))
			thi = o[i].val;
		if (!strcmp(o[i].name, "arrival"))
			arr = o[i].val;
		if (!strcmp(o[i].name, "synthetic"))
			syn = o[i].val;
	}
	assert_true(diu && ses && thi && arr && syn);
	lg_wl_defaults(&w);
	assert_true(w.sopt.think_s == 10 && !w.sopt.sessions && !w.sopt.diurnal_amp);
	assert_int_equal(lg_wl_parse("t", diu, "86400:0.5", &w), 0);
	assert_true(w.sopt.diurnal_period_s == 86400 && w.sopt.diurnal_amp == 0.5);
	assert_int_equal(lg_wl_parse("t", diu, "0:0.5", &w), -1);
	assert_int_equal(lg_wl_parse("t", diu, "60:1.5", &w), -1);
	assert_int_equal(lg_wl_parse("t", diu, "60", &w), -1);
	assert_int_equal(lg_wl_parse("t", diu, "60:0.5x", &w), -1);
	assert_int_equal(lg_wl_parse("t", ses, "100:8", &w), 0);
	assert_true(w.sopt.sessions == 100 && w.sopt.turns == 8);
	assert_int_equal(lg_wl_parse("t", ses, "100", &w), -1);
	assert_int_equal(lg_wl_parse("t", ses, "0:8", &w), -1);
	assert_int_equal(lg_wl_parse("t", ses, "100:0", &w), -1);
	assert_int_equal(lg_wl_parse("t", ses, "-1:8", &w), -1);
	assert_int_equal(lg_wl_parse("t", ses, "100:8:", &w), -1);
	assert_int_equal(lg_wl_parse("t", thi, "2.5", &w), 0);
	assert_true(w.sopt.think_s == 2.5);
	assert_int_equal(lg_wl_parse("t", thi, "-1", &w), -1);
	assert_int_equal(lg_wl_parse("t", syn, NULL, &w), 0);
	assert_int_equal(lg_wl_check("t", &w, ""), 0);
	assert_int_equal(lg_wl_parse("t", arr, "gamma", &w), 0);
	assert_int_equal(lg_wl_check("t", &w, ""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arrivals),
		cmocka_unit_test(lengths),
		cmocka_unit_test(classes),
		cmocka_unit_test(seeds),
		cmocka_unit_test(parsers),
		cmocka_unit_test(diurnal),
		cmocka_unit_test(sessions),
		cmocka_unit_test(session_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
