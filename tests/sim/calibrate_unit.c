// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim calibrate (tools/sim/calibrate.c): the NNLS on small problems with known answers
 * (a constraint active, a column of zeros, dependent columns); on synthetic step logs made from
 * known coefficients plus 3 % noise, the fit (of relative errors and of absolute ones) recovers
 * them (base and prefill token within 3 %, decode within 6 %, context token and the quadratic
 * term within 10 %), finds a floor that is there and none that is not, the loop's own time between
 * steps, and the swap link; the profile it writes loads with the pool's block counts exactly;
 * malformed logs are refused with FILE:LINE: what.
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

#include "calibrate.h"
#include "profile.h"

#define HDR "# kvaccel-serve step log v1 layers=2 kv_heads=4 head_dim=16 dtype_bytes=4 " \
	    "block_tokens=16 block_bytes=16384 blocks=512 swap_blocks=1024 budget=256 chunk=64 " \
	    "max_seqs=256 threads=1 policy=fcfs preempt=swap yields=0\n"
#define COLS "kind,t_ns,runs,prefill_tokens,decode_runs,context_tokens,quad,yielded,computed," \
	     "compute_ns,step_ns,after_idle\n"

/* The truth the synthetic logs are made from (us). */
struct truth {
	double base, prefill, decode, context, quad, floor;
};

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static char *tmpfile_path(void)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/sim_calib_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return path;
}

/*
 * @n steps of varied shapes (prefill chunks of 0-3 runs of 1-64 tokens after 0-192 tokens,
 * 0-40 decodes of contexts 1-400), their period the truth times 1 +- @noise, back to back
 * except every 50th (idle before it); the whole step 1 us shorter, the compute 3 us shorter.
 * Swap lines: 20 us + blocks x 16384 bytes at 2 GB/s.
 */
static void make_log(const char *path, const struct truth *t, size_t n, double noise,
		     size_t swaps)
{
	FILE *f = fopen(path, "w");
	double now = 1e6;
	size_t i;

	assert_non_null(f);
	fputs(HDR COLS, f);
	for (i = 0; i < n; i++) {
		uint64_t P = 0, D, C = 0, Q = 0, runs = 0, k;
		uint64_t np = (uint64_t)(uniform() * 4), nd = (uint64_t)(uniform() * 41);
		double us, period;

		for (k = 0; k < np; k++) {
			uint64_t len = 1 + (uint64_t)(uniform() * 64);
			uint64_t start = (uint64_t)(uniform() * 193);

			P += len;
			Q += len * (2 * start + len);
			runs++;
		}
		for (D = 0; D < nd; D++) {
			C += 1 + (uint64_t)(uniform() * 400);
			runs++;
		}
		if (!runs) {
			D = 1;
			C = 10;
			runs = 1;
		}
		us = t->base + t->prefill * P + t->decode * D + t->context * C + t->quad * Q;
		if (us < t->floor)
			us = t->floor;
		period = us * 1000 * (1 + noise * (2 * uniform() - 1));
		fprintf(f, "step,%.0f,%llu,%llu,%llu,%llu,%llu,0,%llu,%.0f,%.0f,%d\n", now,
			(unsigned long long)runs, (unsigned long long)P, (unsigned long long)D,
			(unsigned long long)C, (unsigned long long)Q, (unsigned long long)(P + D),
			period - 3000, period - 1000, i % 50 == 0 && i);
		now += period + (i % 50 == 49 ? 5e6 : 0);
		if (i < swaps) {
			uint64_t blocks = 1 + i % 16;

			fprintf(f, "swap,%.0f,%s,%llu,%llu,%.0f,0\n", now, i % 2 ? "in" : "out",
				(unsigned long long)blocks, (unsigned long long)blocks * 16384,
				(20000 + blocks * 16384 / 2.0) * (1 + noise * (2 * uniform() - 1)));
		}
	}
	fclose(f);
}

static void near(double got, double want, double rel, const char *what)
{
	if (fabs(got - want) > rel * fabs(want))
		fail_msg("%s: %g, want %g within %.0f %%", what, got, want, 100 * rel);
}

static void test_nnls(void **state)
{
	/* min |x - (1, -1)|^2, x >= 0: (1, 0). */
	double G1[4] = { 1, 0, 0, 1 }, h1[2] = { 1, -1 }, x[3];
	/* A = [[1,1],[1,2],[1,3]], b = (6, 5, 4): unconstrained (7, -1); with x >= 0: (5, 0). */
	double G2[4] = { 3, 6, 6, 14 }, h2[2] = { 15, 28 };
	/* A column of zeros and two equal columns: b = 2 a, a = (1, 2). */
	double G3[9] = { 5, 0, 5, 0, 0, 0, 5, 0, 5 }, h3[3] = { 10, 0, 10 };

	(void)state;
	assert_int_equal(sim_nnls(2, G1, h1, x), 0);
	near(x[0], 1, 1e-9, "G1 x0");
	assert_true(x[1] == 0);
	assert_int_equal(sim_nnls(2, G2, h2, x), 0);
	near(x[0], 5, 1e-9, "G2 x0");
	assert_true(x[1] == 0);
	assert_int_equal(sim_nnls(3, G3, h3, x), 0);
	assert_true(x[1] == 0);
	near(x[0] + x[2], 2, 1e-9, "G3 x0 + x2");
	assert_true(x[0] >= 0 && x[2] >= 0);
}

static void fit_of(const char *path, enum sim_calib_time time, unsigned int flags,
		   struct sim_calib *c, struct sim_calib_fit *f)
{
	char err[512];

	sim_calib_free(c);	/* zeroed by the caller, or the last fit's */
	if (sim_calib_read(path, c, err, sizeof(err)))
		fail_msg("%s", err);
	if (sim_calib_fit(c, time, flags, f, err, sizeof(err)))
		fail_msg("%s", err);
	printf("# fit: %g + %g P + %g D + %g C + %g Q, floor %g, R^2 %.4f, p50 %.2f %%, p90 "
	       "%.2f %%, overhead %.0f ns\n", f->coef_us[0], f->coef_us[1], f->coef_us[2],
	       f->coef_us[3], f->coef_us[4], f->floor_us, f->r2, 100 * f->rel_p50,
	       100 * f->rel_p90, f->overhead_ns);
}

static void test_recovers(void **state)
{
	const struct truth t = { 300, 40, 25, 0.6, 0.02, 0 };
	struct sim_calib c = { 0 };
	struct sim_calib_fit f;
	char *path = tmpfile_path();

	unsigned int w;

	(void)state;
	make_log(path, &t, 2000, 0.03, 200);
	/* Relative errors (the default) and absolute ones. */
	for (w = 0; w < 2; w++) {
		fit_of(path, SIM_CALIB_PERIOD, SIM_CALIB_FLOOR | (w ? 0 : SIM_CALIB_RELATIVE), &c,
		       &f);
		assert_int_equal(c.nr_steps, 2000);
		assert_int_equal(f.n, 2000);
		near(f.coef_us[0], t.base, 0.03, "base");
		near(f.coef_us[1], t.prefill, 0.03, "prefill token");
		near(f.coef_us[2], t.decode, 0.06, "decode token");
		near(f.coef_us[3], t.context, 0.1, "context token");
		near(f.coef_us[4], t.quad, 0.1, "quad");
		assert_true(f.floor_us == 0);		/* there is none to find */
		assert_true(f.r2 > 0.99);
		assert_true(f.rel_p50 < 0.02 && f.rel_p90 < 0.04);
		near(f.overhead_ns, 1000, 0.05, "the loop's own time");
	}
	/* The swap link. */
	assert_int_equal(f.nr_swaps, 200);
	near(f.swap_gbps, 2, 0.03, "swap GB/s");
	near(f.swap_transfer_us, 20, 0.15, "swap fixed cost");
	/* The compute time is 3 us shorter than the period: the base says so. */
	fit_of(path, SIM_CALIB_COMPUTE, SIM_CALIB_RELATIVE, &c, &f);
	near(f.coef_us[0], t.base - 3, 0.04, "base (compute)");
	near(f.coef_us[1], t.prefill, 0.03, "prefill token (compute)");
	sim_calib_free(&c);
	unlink(path);
}

static void test_floor(void **state)
{
	/* Most steps are small: under the floor of 2 ms. */
	const struct truth t = { 100, 60, 40, 0.5, 0.01, 2000 };
	struct sim_calib c = { 0 };
	struct sim_calib_fit f;
	char *path = tmpfile_path();

	(void)state;
	make_log(path, &t, 2000, 0.02, 0);
	fit_of(path, SIM_CALIB_PERIOD, SIM_CALIB_FLOOR | SIM_CALIB_RELATIVE, &c, &f);
	near(f.floor_us, 2000, 0.03, "floor");
	assert_true(f.r2 > 0.95);
	assert_int_equal(f.nr_swaps, 0);
	fit_of(path, SIM_CALIB_PERIOD, SIM_CALIB_RELATIVE, &c, &f);	/* --no-floor */
	assert_true(f.floor_us == 0);
	sim_calib_free(&c);
	unlink(path);
}

/* The profile it writes loads, with the pool's blocks exactly and the fit's coefficients. */
static void test_profile(void **state)
{
	const struct truth t = { 300, 40, 25, 0.6, 0.02, 0 };
	struct sim_calib c = { 0 };
	struct sim_calib_fit f;
	struct sim_profile p;
	char *log = strdup(tmpfile_path()), *prof = tmpfile_path(), err[512];
	FILE *out;

	(void)state;
	make_log(log, &t, 300, 0.03, 20);
	fit_of(log, SIM_CALIB_PERIOD, SIM_CALIB_FLOOR | SIM_CALIB_RELATIVE, &c, &f);
	out = fopen(prof, "w");
	assert_non_null(out);
	sim_calib_write_profile(out, &c, &f, "serve-test", "a test", log);
	fclose(out);
	if (sim_profile_load(prof, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(p.name, "serve-test");
	assert_int_equal(p.gpu_blocks, 512);
	assert_int_equal(p.host_blocks, 1024);
	assert_int_equal(p.kv_bytes_per_token, 1024);
	assert_int_equal(p.block_bytes, 16384);
	near(p.step_base_us, f.coef_us[0], 1e-5, "profile base");
	near(p.prefill_token_us, f.coef_us[1], 1e-5, "profile prefill");
	near(p.decode_token_us, f.coef_us[2], 1e-5, "profile decode");
	near(p.context_token_us, f.coef_us[3], 1e-5, "profile context");
	near(p.prefill_quad_us, f.coef_us[4], 1e-5, "profile quad");
	near(p.swap_gbps, f.swap_gbps, 1e-5, "profile swap GB/s");
	sim_calib_free(&c);
	unlink(log);
	unlink(prof);
	free(log);
}

/* @body after the header and the columns (or instead, with @raw): refused with @want. */
static void refused(const char *body, int raw, const char *want)
{
	struct sim_calib c = { 0 };
	char *path = tmpfile_path(), err[512], msg[700];
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (!raw)
		fputs(HDR COLS, f);
	fputs(body, f);
	fclose(f);
	assert_int_equal(sim_calib_read(path, &c, err, sizeof(err)), -1);
	/* "FILE:LINE: what", or "FILE: what" for the file as a whole. */
	snprintf(msg, sizeof(msg), "%s:%s%s", path, *want >= '0' && *want <= '9' ? "" : " ", want);
	if (strncmp(err, msg, strlen(msg)))
		fail_msg("got \"%s\", want \"%s...\"", err, msg);
	sim_calib_free(&c);
	unlink(path);
}

static void test_malformed(void **state)
{
	(void)state;
	refused("", 1, "not a kvaccel-serve step log (empty)");
	refused("kind,t_ns\n", 1, "1: not a kvaccel-serve step log (no \"# kvaccel-serve");
	refused(HDR, 1, "1: not a kvaccel-serve step log (no column line)");
	refused(HDR "kind,t_ns\n", 1, "2: not the columns");
	refused("# kvaccel-serve step log v1 kv_heads=4 head_dim=16 dtype_bytes=4 block_tokens=16 "
		"block_bytes=16384 blocks=8 swap_blocks=8\n" COLS, 1, "1: header: no layers=");
	refused("# kvaccel-serve step log v1 layers=two\n", 1,
		"1: header: layers: \"two\" is not a number");
	refused("step,1,1,0,1,5,0,0,1,10,20,0\nstep,2,1,0,1\n", 0, "4: step: 5 fields, not 12");
	refused("step,1,1,0,1,5,0,0,1,10,20,0\nstep,2,1,0,x,5,0,0,1,10,20,0\n", 0,
		"4: step: decode_runs \"x\" is not a whole number");
	refused("step,1,1,0,1,-5,0,0,1,10,20,0\n", 0,
		"3: step: context_tokens \"-5\" is not a whole number");
	refused("step,1,1,0,1,5,0,0,1,10,20,2\n", 0, "3: step: after_idle 2 is neither 0 nor 1");
	refused("step,1,1,0,1,5,0,0,1,30,20,0\n", 0, "3: step: compute_ns over step_ns");
	refused("step,9,1,0,1,5,0,0,1,10,20,0\nstep,8,1,0,1,5,0,0,1,10,20,0\n", 0,
		"4: step: t_ns goes back");
	refused("step,1,0,0,0,0,0,0,0,10,20,0\n", 0, "3: step: no run and no token");
	refused("swap,1,sideways,1,16384,100,0\n", 0,
		"3: swap: dir \"sideways\" is neither in nor out");
	refused("swap,1,in,1,16384,100\n", 0, "3: swap: 6 fields, not 7");
	refused("swap,1,in,0,0,100,0\n", 0, "3: swap: no block");
	refused("swap,1,in,1,16384,100,bad\n", 0, "3: swap: status \"bad\" is not a number");
	refused("\nstep,1,1,0,1,5,0,0,1,10,20,0\nbogus,1\n", 0,
		"5: \"bogus\" is neither a step nor a swap line");
}

/* Two logs: the model's shape must agree; a yielded step is left out; too few steps: said. */
static void test_two_logs(void **state)
{
	struct sim_calib c = { 0 };
	struct sim_calib_fit f;
	char *a = strdup(tmpfile_path()), *b = tmpfile_path(), err[512], want[128];
	FILE *fa = fopen(a, "w"), *fb = fopen(b, "w");

	(void)state;
	assert_non_null(fa);
	assert_non_null(fb);
	fputs(HDR COLS "step,1,1,4,0,0,16,0,4,10,20,1\nstep,100,1,4,0,0,16,1,0,10,20,0\n", fa);
	fputs("# kvaccel-serve step log v1 layers=4 kv_heads=4 head_dim=16 dtype_bytes=4 "
	      "block_tokens=16 block_bytes=16384 blocks=8 swap_blocks=8\n" COLS, fb);
	fclose(fa);
	fclose(fb);
	assert_int_equal(sim_calib_read(a, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nr_steps, 1);
	assert_int_equal(c.yielded, 1);
	assert_true(c.step[0].period_ns == 99);	/* the yielded step's start ends it */
	assert_int_equal(sim_calib_read(b, &c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: header: layers=4, the first log's is 2", b);
	if (strncmp(err, want, strlen(want)))
		fail_msg("got \"%s\", want \"%s...\"", err, want);
	assert_int_equal(sim_calib_fit(&c, SIM_CALIB_PERIOD, SIM_CALIB_FLOOR, &f, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "1 steps to fit (at least 5 wanted)");
	sim_calib_free(&c);
	unlink(a);
	unlink(b);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nnls),
		cmocka_unit_test(test_recovers),
		cmocka_unit_test(test_floor),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_two_logs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
