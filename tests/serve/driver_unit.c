// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve driven by libaccel's scheduler (driver.c), on memfd tiers:
 * every request's digests equal those of the same request run alone under
 * every policy and preemption mode, with random arrivals on a pool too
 * small for them, with operator-level yields to an arrival made from a
 * worker thread, and through a pressure round; nothing held once all
 * finished; the checks of serve_engine_compute() and of the driver's calls; the step log's
 * lines add up to the tokens computed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver.h"
#include "engine.h"
#include "stack.h"

#define NREQ	8
#define MAXTOK	20

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog, twice, and then some more.",
	"a",
	"kvaccel: pinned host memory for KV caches and weights, remapped without copying.",
	"0123456789abcdefghij",
	"Paged attention reads K and V through block tables.",
	"Swap out, swap in: the same bytes come back.",
	"zz",
};

struct result {
	uint32_t n;
	uint64_t dig[MAXTOK];
};

static uint32_t maxtok_of(uint32_t i)
{
	return 6 + (i * 7) % (MAXTOK - 6 + 1);
}

static struct serve_model *model_of(uint32_t experts)
{
	struct serve_config c;
	struct serve_model *m;

	serve_config_default(&c);
	c.experts = experts;
	c.top_k = 2;
	c.shared_expert = experts ? 1 : 0;
	m = serve_model_from_seed(&c, 11);
	assert_non_null(m);
	return m;
}

static uint32_t tokens_of(uint32_t i, int32_t *tok)
{
	uint32_t n = (uint32_t)strlen(prompts[i]), j;

	for (j = 0; j < n; j++)
		tok[j] = (unsigned char)prompts[i][j];
	return n;
}

static struct serve_params params_of(uint32_t i)
{
	return (struct serve_params) { .max_tokens = maxtok_of(i), .seed = 50 + i,
				       .priority = (int32_t)(i % 3), .client = i % 4,
				       .ttft_slo_us = i % 2 ? 200000 : 0,
				       .tpot_slo_us = i % 2 ? 50000 : 0, .offline = i % 4 == 3 };
}

static void stack_up(struct serve_stack *s, const struct serve_model *m, uint32_t blocks,
		     uint32_t swap_blocks, struct serve_driver_opts *d)
{
	struct serve_stack_opts so = { .model = m, .blocks = blocks, .swap_blocks = swap_blocks,
				       .memfd = true, .threads = 2, .max_ctx = 256, .sched = d };
	char err[256];

	assert_int_equal(serve_stack_create(s, &so, err, sizeof(err)), 0);
	assert_non_null(s->driver);
}

static void collect(struct serve_driver *d, uint32_t h, uint32_t i, struct result *out)
{
	struct serve_driver_info in;

	assert_int_equal(serve_driver_info(d, h, &in), 0);
	assert_int_equal(in.sched.state, ACCEL_SCHED_FINISHED);
	assert_int_equal(in.req.state, SERVE_FINISHED);
	assert_int_equal(in.req.n_generated, maxtok_of(i));
	out->n = in.req.n_generated;
	memcpy(out->dig, in.req.digests, out->n * sizeof(uint64_t));
}

/* Each request alone on a roomy pool: the reference. */
static void alone(const struct serve_model *m, struct result *ref)
{
	uint32_t i, h, n;
	int32_t tok[128];

	for (i = 0; i < NREQ; i++) {
		struct serve_driver_opts d = { .max_tokens = 512 };
		struct serve_params p = params_of(i);
		struct serve_stack s;

		stack_up(&s, m, 64, 64, &d);
		n = tokens_of(i, tok);
		assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h), 0);
		assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
		collect(s.driver, h, i, &ref[i]);
		serve_stack_destroy(&s);
	}
}

static void assert_nothing_held(const struct serve_stack *s)
{
	uint32_t t;

	for (t = 0; t < 2; t++) {
		ACCEL_OPTS(accel_bm_tier_stats, st);

		assert_int_equal(accel_bm_tier_stats(s->bm, t, &st), 0);
		assert_int_equal(st.used, 0);
		assert_int_equal(st.reserved, 0);
	}
}

/* Every request finished; else say where each is, for the failure message. */
static bool all_finished(const struct serve_stack *s)
{
	struct accel_sched_stats q = { .sz = sizeof(q) };
	uint32_t i;

	assert_int_equal(serve_driver_stats(s->driver, &q), 0);
	if (q.finished == NREQ)
		return true;
	for (i = 0; i < ACCEL_SCHED_NR_STATES; i++)
		print_message("# %u in state %u\n", q.in_state[i], i);
	return false;
}

static uint64_t rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * Requests arrive at random steps onto a pool that holds about two of
 * them; every policy, every preemption mode, with and without yields.
 */
static void random_arrivals(const struct serve_model *m, const struct result *ref,
			    uint64_t seed)
{
	static const uint32_t preempts[] = { ACCEL_SCHED_PREEMPT_SWAP,
					     ACCEL_SCHED_PREEMPT_RECOMPUTE,
					     ACCEL_SCHED_PREEMPT_COST };
	uint64_t x = seed, swaps = 0, recomputes = 0;
	uint32_t pol, k;

	for (pol = 0; pol < ACCEL_SCHED_NR_POLICIES; pol++) {
		for (k = 0; k < 3; k++) {
			struct serve_driver_opts d = {
				.policy = pol, .preempt = preempts[k],
				.victim = (uint32_t)(rng(&x) % 2),
				.max_tokens = 16 + (uint32_t)(rng(&x) % 48),
				.chunk_tokens = 0, .max_seqs = 2 + (uint32_t)(rng(&x) % 6),
				.yields = rng(&x) % 2,
			};
			uint32_t at[NREQ], h[NREQ], added = 0, i, steps = 0, n;
			struct accel_sched_stats st = { .sz = sizeof(st) };
			struct serve_stack s;
			int32_t tok[128];
			int ret;

			d.chunk_tokens = 1 + (uint32_t)(rng(&x) % d.max_tokens);
			for (i = 0; i < NREQ; i++)
				at[i] = (uint32_t)(rng(&x) % 40);
			stack_up(&s, m, 14, 64, &d);
			for (;;) {
				for (i = 0; i < NREQ; i++) {
					struct serve_params p = params_of(i);

					if (at[i] != steps)
						continue;
					n = tokens_of(i, tok);
					assert_int_equal(serve_driver_add(s.driver, tok, n, &p,
									  &h[i]), 0);
					added++;
				}
				ret = serve_driver_step(s.driver, NULL);
				assert_true(ret >= 0);
				steps++;
				assert_true(steps < 20000);
				if (!ret && added == NREQ)
					break;
			}
			if (!all_finished(&s))
				fail_msg("policy %s preempt %u: stuck after %u steps",
					 accel_sched_policy_name(pol), preempts[k], steps);
			for (i = 0; i < NREQ; i++) {
				struct result r;

				collect(s.driver, h[i], i, &r);
				if (memcmp(r.dig, ref[i].dig, r.n * sizeof(uint64_t)))
					fail_msg("policy %s preempt %u: request %u's digests "
						 "differ",
						 accel_sched_policy_name(pol), preempts[k], i);
			}
			assert_int_equal(serve_driver_stats(s.driver, &st), 0);
			assert_int_equal(st.finished, NREQ);
			swaps += st.swaps_out;
			recomputes += st.recomputes;
			for (i = 0; i < NREQ; i++)
				assert_int_equal(serve_driver_release(s.driver, h[i]), 0);
			assert_nothing_held(&s);
			serve_stack_destroy(&s);
		}
	}
	/* The pool was short: both kinds of preemption happened. */
	print_message("# %llu swap-outs, %llu recomputes over the matrix\n",
		      (unsigned long long)swaps, (unsigned long long)recomputes);
	assert_true(swaps > 0);
	assert_true(recomputes > 0);
}

/*
 * The step log (opts.step_log): a line per step that ran, its prefill tokens and decode runs
 * adding up to every token computed (each request's prompt and output less its last token,
 * plus the recomputed ones), and the swaps' lines from the reaper thread, on a pool that swaps.
 */
static void test_step_log(void **state)
{
	struct serve_model *m = model_of(0);
	struct serve_driver_opts d = { .policy = ACCEL_SCHED_FCFS,
				       .preempt = ACCEL_SCHED_PREEMPT_SWAP, .max_tokens = 32,
				       .chunk_tokens = 16 };
	struct accel_sched_stats st = { .sz = sizeof(st) };
	uint64_t want = 0, got = 0, steps = 0, swaps = 0;
	uint32_t i, h[NREQ], n;
	struct serve_stack s;
	int32_t tok[128];
	char line[256];
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(f);
	d.step_log = f;
	stack_up(&s, m, 14, 64, &d);
	for (i = 0; i < NREQ; i++) {
		struct serve_params p = params_of(i);

		n = tokens_of(i, tok);
		assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h[i]), 0);
		want += n + maxtok_of(i) - 1;
	}
	assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
	assert_int_equal(serve_driver_stats(s.driver, &st), 0);
	want += st.recomputed_tokens;
	serve_stack_destroy(&s);	/* the reaper's lines are all in */
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long t, runs, pt, dr, ctx, q, y, c, cns, sns, blocks, bytes, ns;
		int idle, status;
		char dir[8];

		if (sscanf(line, "step,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%d", &t,
			   &runs, &pt, &dr, &ctx, &q, &y, &c, &cns, &sns, &idle) == 11) {
			assert_true(runs >= 1 && runs <= pt + dr);
			assert_true(y == 0 && c == pt + dr && cns <= sns);
			assert_true(ctx >= dr && (pt ? q >= pt * pt / runs : q == 0));
			got += pt + dr;
			steps++;
		} else if (sscanf(line, "swap,%llu,%7[a-z],%llu,%llu,%llu,%d", &t, dir, &blocks,
				  &bytes, &ns, &status) == 6) {
			assert_true(!strcmp(dir, "in") || !strcmp(dir, "out"));
			assert_true(blocks >= 1 && bytes == blocks * 16384 && status == 0);
			swaps++;
		} else {
			fail_msg("not a step log line: %s", line);
		}
	}
	fclose(f);
	print_message("# %llu steps, %llu swap lines, %llu tokens computed\n",
		      (unsigned long long)steps, (unsigned long long)swaps,
		      (unsigned long long)got);
	assert_true(st.swaps_out > 0 && swaps > 0);
	assert_int_equal(got, want);
	serve_model_free(m);
}

static void test_random_arrivals(void **state)
{
	struct serve_model *m = model_of(0);
	struct result ref[NREQ];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	const char *env = getenv("SERVE_DRIVER_SEED");

	(void)state;
	if (env)
		seed = strtoull(env, NULL, 0);
	print_message("# SERVE_DRIVER_SEED=%#llx\n", (unsigned long long)seed);
	alone(m, ref);
	random_arrivals(m, ref, seed);
	serve_model_free(m);
}

static void test_random_arrivals_moe(void **state)
{
	struct serve_model *m = model_of(4);
	struct result ref[NREQ];

	(void)state;
	alone(m, ref);
	random_arrivals(m, ref, 12345);
	serve_model_free(m);
}

/* ---- yields: an urgent arrival made from inside a running prefill ---- */

struct arrive_ctx {
	struct serve_driver *d;
	const int32_t *tok;
	uint32_t n, h;
	int ret;
	bool done;
};

static bool arrive_once(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	struct arrive_ctx *a = ctx;
	struct serve_params p = params_of(2);

	(void)id, (void)layer, (void)phase;
	if (!a->done) {
		a->done = true;
		p.priority = -100;
		a->ret = serve_driver_add(a->d, a->tok, a->n, &p, &a->h);
	}
	return false;
}

static void test_yield_to_arrival(void **state)
{
	struct serve_model *m = model_of(0);
	struct result ref[NREQ], r;
	struct arrive_ctx a = { 0 };
	struct serve_driver_opts d = { .policy = ACCEL_SCHED_PRIORITY, .max_tokens = 512,
				       .yields = true, .also_yield = arrive_once,
				       .also_ctx = &a };
	struct accel_sched_stats st = { .sz = sizeof(st) };
	struct serve_driver_info in, urgent;
	struct serve_params p = params_of(3);
	struct serve_stack s;
	int32_t tok[128], tok2[128];
	uint32_t h, n;

	(void)state;
	alone(m, ref);
	stack_up(&s, m, 64, 64, &d);
	a.d = s.driver;
	a.n = tokens_of(2, tok2);
	a.tok = tok2;
	/* One long prompt, one chunk: the arrival lands in the middle of its layers. */
	n = tokens_of(3, tok);
	assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h), 0);
	assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
	assert_true(a.done);
	assert_int_equal(a.ret, 0);
	assert_int_equal(serve_driver_stats(s.driver, &st), 0);
	assert_true(st.yields >= 1);
	assert_int_equal(serve_driver_info(s.driver, h, &in), 0);
	assert_true(in.sched.yields >= 1);
	assert_int_equal(serve_driver_info(s.driver, a.h, &urgent), 0);
	/* The urgent request's first token came before the long one's. */
	assert_true(urgent.sched.first_token_ns < in.sched.first_token_ns);
	collect(s.driver, h, 3, &r);
	assert_memory_equal(r.dig, ref[3].dig, r.n * sizeof(uint64_t));
	collect(s.driver, a.h, 2, &r);
	assert_memory_equal(r.dig, ref[2].dig, r.n * sizeof(uint64_t));
	serve_stack_destroy(&s);
	serve_model_free(m);
}

/* ---- a pressure round: swap-outs, then every request finishes the same ---- */

static void test_pressure(void **state)
{
	struct serve_model *m = model_of(0);
	struct result ref[NREQ], r;
	struct serve_driver_opts d = { .policy = ACCEL_SCHED_PRIORITY,
				       .preempt = ACCEL_SCHED_PREEMPT_SWAP, .max_tokens = 64 };
	struct accel_sched_stats st = { .sz = sizeof(st) };
	uint32_t h[NREQ], i, n, steps = 0;
	uint64_t released = 0;
	struct serve_stack s;
	int32_t tok[128];

	(void)state;
	alone(m, ref);
	stack_up(&s, m, 48, 64, &d);
	for (i = 0; i < NREQ; i++) {
		struct serve_params p = params_of(i);

		n = tokens_of(i, tok);
		assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h[i]), 0);
	}
	/* Until some requests decode, then ask for most of the tier back. */
	while (steps < 12 && serve_driver_step(s.driver, NULL) > 0)
		steps++;
	assert_int_equal(serve_driver_pressure(s.driver, 40ull * 16384, &released), 0);
	assert_true(released > 0);
	assert_int_equal(serve_driver_stats(s.driver, &st), 0);
	assert_true(st.swaps_out > 0);
	assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
	for (i = 0; i < NREQ; i++) {
		collect(s.driver, h[i], i, &r);
		assert_memory_equal(r.dig, ref[i].dig, r.n * sizeof(uint64_t));
	}
	serve_stack_destroy(&s);
	serve_model_free(m);
}

/* ---- the calls' checks ---- */

static void test_driver_errors(void **state)
{
	struct serve_model *m = model_of(0);
	struct serve_driver_opts d = { .max_requests = 2 };
	struct serve_params p = { .max_tokens = 4 }, big = { .max_tokens = 4000 };
	struct serve_driver_info in;
	int32_t tok[4] = { 1, 2, 3, 300 };
	struct serve_stack s;
	uint32_t h1, h2, h3;

	(void)state;
	stack_up(&s, m, 8, 8, &d);
	assert_int_equal(serve_driver_add(s.driver, tok, 4, &p, &h1), -EINVAL);	/* 300 */
	assert_int_equal(serve_driver_add(s.driver, tok, 0, &p, &h1), -EINVAL);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &big, &h1), -E2BIG);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &p, NULL), -EINVAL);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &p, &h1), 0);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &p, &h2), 0);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &p, &h3), -ENOSPC);
	assert_int_equal(serve_driver_release(s.driver, h1), -EBUSY);
	assert_int_equal(serve_driver_info(s.driver, 77, &in), -ENOENT);
	assert_int_equal(serve_driver_abort(s.driver, 77), -ENOENT);
	/* An abort of a waiting request ends it at once; the other still runs. */
	assert_int_equal(serve_driver_abort(s.driver, h1), 0);
	assert_int_equal(serve_driver_info(s.driver, h1, &in), 0);
	assert_int_equal(in.sched.state, ACCEL_SCHED_ABORTED);
	assert_int_equal(in.req.state, SERVE_FINISHED);
	assert_int_equal(serve_driver_release(s.driver, h1), 0);
	assert_int_equal(serve_driver_release(s.driver, h1), -ENOENT);
	assert_int_equal(serve_driver_add(s.driver, tok, 3, &p, &h3), 0);
	assert_int_equal(serve_driver_run_all(s.driver, NULL), 0);
	assert_int_equal(serve_driver_info(s.driver, h2, &in), 0);
	assert_int_equal(in.req.n_generated, 4);
	assert_int_equal(serve_driver_info(s.driver, h3, &in), 0);
	assert_int_equal(in.req.n_generated, 4);
	assert_int_equal(serve_driver_next(s.driver, 0), h2 < h3 ? h2 : h3);
	serve_stack_destroy(&s);
	serve_model_free(m);
}

static void test_compute_checks(void **state)
{
	struct serve_model *m = model_of(0);
	struct serve_driver_opts d = { 0 };
	struct serve_params p = { .max_tokens = 2 };
	int32_t tok[20];
	uint32_t table[4] = { 0, 1, 2, 3 }, bad_table[2] = { 0, 9999 }, id, id2, i;
	struct serve_stack s, plain;
	struct serve_stack_opts so = { .model = m, .blocks = 8, .swap_blocks = 8, .memfd = true };
	struct serve_batch b = { 0 };
	char err[256];

	(void)state;
	for (i = 0; i < 20; i++)
		tok[i] = (int32_t)i + 1;
	stack_up(&s, m, 8, 8, &d);
	assert_int_equal(serve_engine_add(s.engine, tok, 20, &p, &id), 0);
	{
		struct serve_compute c = { .id = id, .n_tokens = 20, .table = table,
					   .nr_blocks = 2 };

		/* An external_kv engine refuses a batch of its own. */
		assert_int_equal(serve_engine_step(s.engine, &b, NULL), -EOPNOTSUPP);
		c.id = 99;
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -ENOENT);
		c.id = id;
		c.n_tokens = 0;
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -EINVAL);
		c.n_tokens = 21;	/* past what it knows */
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -EINVAL);
		c.n_tokens = 20;
		c.nr_blocks = 1;	/* 20 tokens need 2 blocks of 16 */
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -EINVAL);
		c.nr_blocks = 2;
		c.table = bad_table;
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -EINVAL);
		c.table = table;
		c.resume_layer = 1;	/* nothing yielded */
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), -EINVAL);
		c.resume_layer = 0;
		{
			struct serve_compute two[2] = { c, c };

			assert_int_equal(serve_engine_compute(s.engine, two, 2), -EINVAL);
		}
		/* Then the good run samples the first token. */
		assert_int_equal(serve_engine_compute(s.engine, &c, 1), 0);
		assert_true(c.sampled);
		assert_false(c.yielded);
		/* Ids of released requests are given again. */
		assert_int_equal(serve_engine_add(s.engine, tok, 3, &p, &id2), 0);
		assert_int_equal(serve_engine_release(s.engine, id), 0);
		assert_int_equal(serve_engine_add(s.engine, tok, 3, &p, &i), 0);
		assert_int_equal(i, id);
	}
	serve_stack_destroy(&s);
	/* An engine with sequences of its own refuses a scheduler's runs. */
	assert_int_equal(serve_stack_create(&plain, &so, err, sizeof(err)), 0);
	assert_int_equal(serve_engine_add(plain.engine, tok, 3, &p, &id), 0);
	{
		struct serve_compute c = { .id = id, .n_tokens = 3, .table = table,
					   .nr_blocks = 1 };

		assert_int_equal(serve_engine_compute(plain.engine, &c, 1), -EOPNOTSUPP);
		assert_int_equal(serve_engine_finish(plain.engine, id), -EOPNOTSUPP);
	}
	serve_stack_destroy(&plain);
	serve_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_driver_errors),
		cmocka_unit_test(test_compute_checks),
		cmocka_unit_test(test_yield_to_arrival),
		cmocka_unit_test(test_pressure),
		cmocka_unit_test(test_step_log),
		cmocka_unit_test(test_random_arrivals),
		cmocka_unit_test(test_random_arrivals_moe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
