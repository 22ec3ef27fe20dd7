// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's determinism rule, on memfd tiers through libaccel's
 * block manager and data mover: every request's tokens and digests equal
 * those of the same request run alone, whatever the batch composition,
 * chunk size, request order, preemption (swap, recompute) or
 * operator-level yields, dense and MoE; serve_engine_step()'s checks; and
 * the driver's handle of a released request given to a new one before
 * the old one's FINISHED event came (the new one not taken for finished).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "stack.h"

#define NREQ	6
#define MAXTOK	24

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog, twice, and then some more.",
	"a",
	"kvaccel: pinned host memory for KV caches and weights, remapped without copying.",
	"0123456789abcdefghij",
	"Paged attention reads K and V through block tables.",
};

struct result {
	uint32_t n;
	int32_t tok[MAXTOK];
	uint64_t dig[MAXTOK];
};

struct variant {
	uint32_t blocks, swap_blocks, threads;
	struct serve_fcfs_opts fcfs;
	bool reverse, yields;
	float temperature;
};

struct totals {
	uint32_t swaps, drops, yields;
};

static struct serve_model *model_of(uint32_t experts, uint32_t shared, uint32_t kv_heads)
{
	struct serve_config c;
	struct serve_model *m;

	serve_config_default(&c);
	c.experts = experts;
	c.top_k = 2;
	c.shared_expert = shared;
	c.kv_heads = kv_heads;
	m = serve_model_from_seed(&c, 7);
	assert_non_null(m);
	return m;
}

/* Yield about one time in three, from a hash of where it is asked. */
static bool yield_some(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	unsigned int *calls = ctx;
	unsigned int h = __atomic_add_fetch(calls, 1, __ATOMIC_RELAXED) * 2654435761u;

	h ^= id * 40503u + layer * 977u + phase;
	return (h >> 7) % 3 == 0;
}

static uint32_t maxtok_of(uint32_t i)
{
	return 8 + (i * 5) % (MAXTOK - 8 + 1);
}

static void run(const struct serve_model *m, const struct variant *v, const uint32_t *which,
		uint32_t n, struct result *out, struct totals *tot)
{
	unsigned int calls = 0;
	struct serve_stack_opts so = {
		.model = m, .blocks = v->blocks, .swap_blocks = v->swap_blocks, .memfd = true,
		.threads = v->threads, .max_ctx = 256,
		.should_yield = v->yields ? yield_some : NULL, .yield_ctx = &calls,
	};
	struct serve_stack s;
	uint32_t ids[NREQ], k, j;
	char err[256];
	int32_t tok[128];

	assert_int_equal(serve_stack_create(&s, &so, err, sizeof(err)), 0);
	for (k = 0; k < n; k++) {
		uint32_t i = which[v->reverse ? n - 1 - k : k], len = (uint32_t)strlen(prompts[i]);
		struct serve_params p = { .max_tokens = maxtok_of(i), .temperature = v->temperature,
					  .seed = 100 + i };

		for (j = 0; j < len; j++)
			tok[j] = (unsigned char)prompts[i][j];
		assert_int_equal(serve_engine_add(s.engine, tok, len, &p, &ids[i]), 0);
	}
	assert_int_equal(serve_run_all(s.engine, &v->fcfs, NULL), 0);
	for (k = 0; k < n; k++) {
		uint32_t i = which[k];
		struct serve_req_info in;

		assert_int_equal(serve_engine_info(s.engine, ids[i], &in), 0);
		assert_int_equal(in.state, SERVE_FINISHED);
		assert_int_equal(in.n_generated, maxtok_of(i));
		out[i].n = in.n_generated;
		memcpy(out[i].tok, in.tokens, in.n_generated * sizeof(int32_t));
		memcpy(out[i].dig, in.digests, in.n_generated * sizeof(uint64_t));
		if (tot) {
			tot->swaps += in.swaps_out;
			tot->drops += in.drops;
			tot->yields += in.yields;
		}
	}
	/* Nothing held on either tier once every request finished. */
	for (k = 0; k < 2; k++) {
		ACCEL_OPTS(accel_bm_tier_stats, st);

		assert_int_equal(accel_bm_tier_stats(s.bm, k, &st), 0);
		assert_int_equal(st.used, 0);
		assert_int_equal(st.reserved, 0);
	}
	serve_stack_destroy(&s);
}

/* Each request alone, in one prefill chunk: the reference. */
static void alone(const struct serve_model *m, float temperature, struct result *ref)
{
	struct variant v = { .blocks = 64, .swap_blocks = 8, .temperature = temperature,
			     .fcfs = { .token_budget = 512 } };
	uint32_t i;

	for (i = 0; i < NREQ; i++)
		run(m, &v, &i, 1, ref, NULL);
}

static void same(const struct result *a, const struct result *b, const char *what)
{
	uint32_t i;

	for (i = 0; i < NREQ; i++) {
		if (a[i].n != b[i].n || memcmp(a[i].tok, b[i].tok, a[i].n * 4) ||
		    memcmp(a[i].dig, b[i].dig, a[i].n * 8))
			fail_msg("%s: request %u differs from the same request alone", what, i);
	}
}

static const uint32_t all[NREQ] = { 0, 1, 2, 3, 4, 5 };

static void check_variants(const struct serve_model *m, float temperature)
{
	struct result ref[NREQ], got[NREQ];
	struct totals t;
	uint32_t chunks[] = { 1, 3, 7, 16, 64 }, i;
	struct variant v;

	alone(m, temperature, ref);

	/* Batches of every size the budget allows, two threads, either order. */
	v = (struct variant) { .blocks = 64, .swap_blocks = 8, .threads = 2,
			       .temperature = temperature, .fcfs = { .token_budget = 256 } };
	run(m, &v, all, NREQ, got, NULL);
	same(ref, got, "one batch");
	v.reverse = true;
	v.fcfs.max_running = 2;
	run(m, &v, all, NREQ, got, NULL);
	same(ref, got, "reversed, two at a time");

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		char what[32];

		v = (struct variant) { .blocks = 64, .swap_blocks = 8, .threads = 1 + i % 2,
				       .temperature = temperature,
				       .fcfs = { .token_budget = 40, .chunk = chunks[i] } };
		run(m, &v, all, NREQ, got, NULL);
		snprintf(what, sizeof(what), "chunk %u", chunks[i]);
		same(ref, got, what);
	}

	/* A compute tier smaller than the requests need: swap preemption. */
	memset(&t, 0, sizeof(t));
	v = (struct variant) { .blocks = 10, .swap_blocks = 64, .threads = 2,
			       .temperature = temperature,
			       .fcfs = { .token_budget = 64, .chunk = 8 } };
	run(m, &v, all, NREQ, got, &t);
	same(ref, got, "swap preemption");
	assert_true(t.swaps > 0);
	assert_int_equal(t.drops, 0);

	/* Recompute preemption. */
	memset(&t, 0, sizeof(t));
	v.fcfs.preempt = SERVE_PREEMPT_RECOMPUTE;
	run(m, &v, all, NREQ, got, &t);
	same(ref, got, "recompute preemption");
	assert_true(t.drops > 0);
	assert_int_equal(t.swaps, 0);

	/* A swap tier too small for everything: swap, then recompute. */
	memset(&t, 0, sizeof(t));
	v.swap_blocks = 3;
	v.fcfs.preempt = SERVE_PREEMPT_SWAP;
	run(m, &v, all, NREQ, got, &t);
	same(ref, got, "swap and recompute");
	assert_true(t.swaps > 0 && t.drops > 0);

	/* Operator-level yields, alone and with swaps. */
	memset(&t, 0, sizeof(t));
	v = (struct variant) { .blocks = 64, .swap_blocks = 8, .threads = 2, .yields = true,
			       .temperature = temperature,
			       .fcfs = { .token_budget = 64, .chunk = 16 } };
	run(m, &v, all, NREQ, got, &t);
	same(ref, got, "yields");
	assert_true(t.yields > 0);
	memset(&t, 0, sizeof(t));
	v.blocks = 10;
	v.swap_blocks = 64;
	v.fcfs.chunk = 8;
	run(m, &v, all, NREQ, got, &t);
	same(ref, got, "yields and swaps");
	assert_true(t.yields > 0 && t.swaps > 0);
}

static void test_dense(void **state)
{
	struct serve_model *m = model_of(0, 0, 4);

	(void)state;
	check_variants(m, 0.0f);
	serve_model_free(m);
}

static void test_gqa_sampled(void **state)
{
	struct serve_model *m = model_of(0, 0, 2);

	(void)state;
	check_variants(m, 0.8f);
	serve_model_free(m);
}

static void test_moe(void **state)
{
	struct serve_model *m = model_of(4, 1, 4);

	(void)state;
	check_variants(m, 0.0f);
	serve_model_free(m);
}

/* The digests tell models apart: a different seed changes them. */
static void test_digest_sensitive(void **state)
{
	struct serve_model *a = model_of(0, 0, 4), *b;
	struct serve_config c = a->cfg;
	struct result ra[NREQ], rb[NREQ];
	struct variant v = { .blocks = 64, .swap_blocks = 8, .fcfs = { .token_budget = 512 } };

	(void)state;
	b = serve_model_from_seed(&c, 8);
	run(a, &v, all, 1, ra, NULL);
	run(b, &v, all, 1, rb, NULL);
	assert_memory_not_equal(ra[0].dig, rb[0].dig, ra[0].n * 8);
	/* One weight's lowest bit. */
	serve_model_free(b);
	b = serve_model_from_seed(&c, 7);
	((uint32_t *)b->layer[1].wv)[5] ^= 1;
	run(b, &v, all, 1, rb, NULL);
	assert_memory_not_equal(ra[0].dig, rb[0].dig, ra[0].n * 8);
	serve_model_free(a);
	serve_model_free(b);
}


/*
 * Random schedules straight through serve_engine_step(): each step runs,
 * swaps out, swaps in or drops requests at random (any chunk size, yields
 * at random too); a step refused for space (-ENOSPC) is fine. Every
 * request still ends with the tokens and digests it has alone.
 */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void random_schedule(const struct serve_model *m, uint64_t seed, const struct result *ref)
{
	unsigned int calls = 0;
	struct serve_stack_opts so = { .model = m, .blocks = 12, .swap_blocks = 40, .memfd = true,
				       .threads = 2, .max_ctx = 256, .should_yield = yield_some,
				       .yield_ctx = &calls };
	struct serve_run runs[NREQ];
	uint32_t ids[NREQ], out[NREQ], in[NREQ], drop[NREQ], i, j, left, steps = 0;
	uint32_t swaps = 0, drops = 0, yields = 0;
	struct serve_stack s;
	char err[256];
	int32_t tok[128];
	int ret;

	assert_int_equal(serve_stack_create(&s, &so, err, sizeof(err)), 0);
	for (i = 0; i < NREQ; i++) {
		uint32_t len = (uint32_t)strlen(prompts[i]);
		struct serve_params p = { .max_tokens = maxtok_of(i), .seed = 100 + i };

		for (j = 0; j < len; j++)
			tok[j] = (unsigned char)prompts[i][j];
		assert_int_equal(serve_engine_add(s.engine, tok, len, &p, &ids[i]), 0);
	}
	for (;;) {
		struct serve_batch b = { runs, 0, drop, 0, out, 0, in, 0 };
		uint32_t done = 0;

		for (i = 0; i < NREQ; i++) {
			struct serve_req_info inf;
			uint64_t r = rnd(&seed);

			serve_engine_info(s.engine, ids[i], &inf);
			if (inf.state == SERVE_FINISHED) {
				done++;
				continue;
			}
			if (r % 31 == 0 && inf.state != SERVE_WAITING) {
				drop[b.nr_drop++] = ids[i];
				continue;
			}
			if (inf.state == SERVE_RUNNING && r % 7 == 0) {
				out[b.nr_swap_out++] = ids[i];
				continue;
			}
			if (inf.state == SERVE_SWAPPED) {
				if (r % 3)
					continue;
				in[b.nr_swap_in++] = ids[i];
			}
			if ((r >> 8) % 4 == 0)
				continue;
			left = inf.n_tokens - inf.n_computed;
			runs[b.nr_runs++] = (struct serve_run) {
				ids[i], inf.pending_chunk ? inf.pending_chunk :
					1 + (uint32_t)((r >> 16) % left) };
		}
		if (done == NREQ)
			break;
		ret = serve_engine_step(s.engine, &b, NULL);
		if (ret && ret != -ENOSPC)
			fail_msg("seed %llu, step %u: %d", (unsigned long long)seed, steps, ret);
		assert_true(++steps < 20000);
	}
	for (i = 0; i < NREQ; i++) {
		struct serve_req_info inf;

		serve_engine_info(s.engine, ids[i], &inf);
		if (inf.n_generated != ref[i].n ||
		    memcmp(inf.tokens, ref[i].tok, ref[i].n * 4) ||
		    memcmp(inf.digests, ref[i].dig, ref[i].n * 8))
			fail_msg("random schedule: request %u differs from the same request alone",
				 i);
		swaps += inf.swaps_out;
		drops += inf.drops;
		yields += inf.yields;
	}
	assert_true(swaps > 0 && drops > 0 && yields > 0);
	serve_stack_destroy(&s);
}

static void test_random_schedules(void **state)
{
	struct serve_model *m = model_of(4, 0, 2);
	struct result ref[NREQ];
	uint64_t seed;

	(void)state;
	alone(m, 0.0f, ref);
	for (seed = 1; seed <= 4; seed++)
		random_schedule(m, seed * 0x9e3779b97f4a7c15ull, ref);
	serve_model_free(m);
}

/* ---- serve_engine_step() by hand ---- */

struct fix {
	struct serve_model *m;
	struct serve_stack s;
	uint32_t id[2];
	unsigned int yields_left, calls;
};

static bool yield_once(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	struct fix *f = ctx;

	(void)id;
	f->calls++;
	if (layer == 1 && phase == 0 && f->yields_left) {
		f->yields_left--;
		return true;
	}
	return false;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct serve_stack_opts so = { .blocks = 8, .swap_blocks = 8, .memfd = true,
				       .max_ctx = 128, .should_yield = yield_once };
	struct serve_params p = { .max_tokens = 4 };
	int32_t tok[40];
	char err[256];
	uint32_t i;

	f->m = model_of(0, 0, 4);
	so.model = f->m;
	so.yield_ctx = f;
	assert_int_equal(serve_stack_create(&f->s, &so, err, sizeof(err)), 0);
	for (i = 0; i < 40; i++)
		tok[i] = (int32_t)('a' + i % 26);
	assert_int_equal(serve_engine_add(f->s.engine, tok, 40, &p, &f->id[0]), 0);
	assert_int_equal(serve_engine_add(f->s.engine, tok, 5, &p, &f->id[1]), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	serve_stack_destroy(&f->s);
	serve_model_free(f->m);
	free(f);
	return 0;
}

static int step(struct fix *f, const struct serve_run *runs, uint32_t nr, const uint32_t *out,
		uint32_t nr_out, const uint32_t *in, uint32_t nr_in, const uint32_t *drop,
		uint32_t nr_drop)
{
	struct serve_batch b = { runs, nr, drop, nr_drop, out, nr_out, in, nr_in };

	return serve_engine_step(f->s.engine, &b, NULL);
}

static void test_step_checks(void **state)
{
	struct fix *f = *state;
	uint32_t a = f->id[0], b = f->id[1], bogus = 99;
	struct serve_run r;
	struct serve_req_info in;

	r = (struct serve_run) { bogus, 1 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), -ENOENT);
	r = (struct serve_run) { a, 0 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	r = (struct serve_run) { a, 41 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	/* Waiting: nothing to swap. */
	assert_int_equal(step(f, NULL, 0, &a, 1, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(step(f, NULL, 0, NULL, 0, &a, 1, NULL, 0), -EINVAL);
	{
		struct serve_run two[2] = { { a, 1 }, { a, 1 } };

		assert_int_equal(step(f, two, 2, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	}
	/* Nothing happened. */
	assert_int_equal(serve_engine_info(f->s.engine, a, &in), 0);
	assert_int_equal(in.state, SERVE_WAITING);
	assert_int_equal(in.n_computed, 0);

	/* A chunk of 16 that yields after layer 1's attention. */
	f->yields_left = 1;
	r = (struct serve_run) { a, 16 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(serve_engine_info(f->s.engine, a, &in), 0);
	assert_int_equal(in.pending_chunk, 16);
	assert_int_equal(in.n_computed, 0);
	assert_int_equal(in.yields, 1);
	assert_int_equal(f->calls, 3);	/* after (0, attn), (0, mlp), (1, attn) */
	/* It resumes with the same size only. */
	r = (struct serve_run) { a, 8 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	/* Swapped out with its chunk half done; a swapped request cannot run. */
	assert_int_equal(step(f, NULL, 0, &a, 1, NULL, 0, NULL, 0), 0);
	assert_int_equal(serve_engine_info(f->s.engine, a, &in), 0);
	assert_int_equal(in.state, SERVE_SWAPPED);
	r = (struct serve_run) { a, 16 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(step(f, &r, 1, &a, 1, NULL, 0, NULL, 0), -EINVAL);
	/* Back in, and on in the same step. */
	assert_int_equal(step(f, &r, 1, NULL, 0, &a, 1, NULL, 0), 0);
	assert_int_equal(serve_engine_info(f->s.engine, a, &in), 0);
	assert_int_equal(in.state, SERVE_RUNNING);
	assert_int_equal(in.n_computed, 16);
	assert_int_equal(in.pending_chunk, 0);
	/* Resumed at layer 1's MLP (the last: no yield point), nothing recomputed. */
	assert_int_equal(f->calls, 3);
	assert_int_equal(in.swaps_out, 1);
	assert_int_equal(in.swaps_in, 1);
	/* Dropped: everything computed again. */
	r = (struct serve_run) { a, 40 };
	assert_int_equal(step(f, &r, 1, NULL, 0, NULL, 0, &a, 1), 0);
	assert_int_equal(serve_engine_info(f->s.engine, a, &in), 0);
	assert_int_equal(in.recomputed_tokens, 16);
	assert_int_equal(in.n_generated, 1);
	/* Too many blocks for the compute tier (8 of 16 tokens). */
	{
		struct serve_params p = { .max_tokens = 100 };
		int32_t t[40] = { 0 };
		uint32_t id;

		assert_int_equal(serve_engine_add(f->s.engine, t, 40, &p, &id), -E2BIG);
		t[3] = 256;
		p.max_tokens = 1;
		assert_int_equal(serve_engine_add(f->s.engine, t, 40, &p, &id), -EINVAL);
	}
	(void)b;
	/* Tiers of another shape than the model's blocks. */
	{
		struct serve_engine_opts eo = {
			.model = f->m, .bm = f->s.bm,
			.tiers = { f->s.tiers[0], f->s.tiers[1] }, .mover = f->s.mover,
			.block_tokens = 8,
		};

		errno = 0;
		assert_null(serve_engine_create(&eo));
		assert_int_equal(errno, EINVAL);
		eo.block_tokens = 16;
		eo.tiers[1] = NULL;
		assert_null(serve_engine_create(&eo));
		assert_int_equal(errno, EINVAL);
	}
}

/* Both requests alone and side by side, swapped around by hand: the same digests. */
static void test_step_by_hand(void **state)
{
	struct fix *f = *state;
	uint32_t a = f->id[0], b = f->id[1];
	struct serve_fcfs_opts o = { .token_budget = 512 };
	struct serve_req_info ia, ib;
	uint64_t ref_a[4], ref_b[4];
	struct serve_run r[2];

	assert_int_equal(serve_run_all(f->s.engine, &o, NULL), 0);
	assert_int_equal(serve_engine_info(f->s.engine, a, &ia), 0);
	assert_int_equal(serve_engine_info(f->s.engine, b, &ib), 0);
	memcpy(ref_a, ia.digests, sizeof(ref_a));
	memcpy(ref_b, ib.digests, sizeof(ref_b));
	assert_int_equal(serve_engine_release(f->s.engine, a), 0);
	assert_int_equal(serve_engine_release(f->s.engine, b), 0);
	assert_int_equal(serve_engine_release(f->s.engine, b), -ENOENT);
	{
		struct serve_params p = { .max_tokens = 4 };
		int32_t tok[40];
		uint32_t i;

		for (i = 0; i < 40; i++)
			tok[i] = (int32_t)('a' + i % 26);
		assert_int_equal(serve_engine_add(f->s.engine, tok, 40, &p, &a), 0);
		assert_int_equal(serve_engine_add(f->s.engine, tok, 5, &p, &b), 0);
	}
	r[0] = (struct serve_run) { a, 20 };
	r[1] = (struct serve_run) { b, 3 };
	assert_int_equal(step(f, r, 2, NULL, 0, NULL, 0, NULL, 0), 0);
	assert_int_equal(step(f, NULL, 0, &a, 1, NULL, 0, NULL, 0), 0);
	r[0] = (struct serve_run) { b, 2 };
	assert_int_equal(step(f, r, 1, NULL, 0, NULL, 0, NULL, 0), 0);	/* b's first token */
	assert_int_equal(step(f, r, 1, &b, 1, &a, 1, NULL, 0), -EINVAL);	/* b has 1 left */
	r[0] = (struct serve_run) { a, 20 };
	r[1] = (struct serve_run) { b, 1 };
	assert_int_equal(step(f, r, 2, NULL, 0, &a, 1, NULL, 0), 0);
	while (serve_engine_info(f->s.engine, a, &ia), ia.state != SERVE_FINISHED) {
		r[0] = (struct serve_run) { a, 1 };
		assert_int_equal(step(f, r, 1, &b, ib.state == SERVE_RUNNING, NULL, 0, NULL, 0),
				 0);
		serve_engine_info(f->s.engine, b, &ib);
	}
	r[0] = (struct serve_run) { b, 1 };
	while (serve_engine_info(f->s.engine, b, &ib), ib.state != SERVE_FINISHED)
		assert_int_equal(step(f, r, 1, NULL, 0, &b, ib.state == SERVE_SWAPPED, NULL, 0),
				 0);
	assert_memory_equal(ia.digests, ref_a, sizeof(ref_a));
	assert_memory_equal(ib.digests, ref_b, sizeof(ref_b));
	assert_true(ib.swaps_out >= 1);
}

/*
 * The scheduler driving the engine (serve_driver_*): a request released as
 * soon as its state says finished, before the step that delivers its
 * FINISHED event, and a new request taking its handle meanwhile: the new
 * one is not taken for finished; it runs to the digests of its prompt
 * alone.
 */
static int driver_run(const struct serve_model *m, const char *first, const char *second,
		      uint64_t *dig)
{
	static const struct serve_driver_opts so = { .preempt = ACCEL_SCHED_PREEMPT_SWAP };
	struct serve_stack_opts o = { .model = m, .blocks = 16, .swap_blocks = 16, .memfd = true,
				      .threads = 1, .max_ctx = 128, .sched = &so };
	struct accel_sched_stats st = { .sz = sizeof(st) };
	struct serve_params p = { .max_tokens = 4 };
	struct serve_driver_info in;
	uint32_t h, h2, i, n;
	struct serve_stack s;
	int32_t tok[128];
	char err[256];
	int ret;

	assert_int_equal(serve_stack_create(&s, &o, err, sizeof(err)), 0);
	if (first) {
		n = (uint32_t)strlen(first);
		for (i = 0; i < n; i++)
			tok[i] = (unsigned char)first[i];
		assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h), 0);
		do {
			assert_true(serve_driver_step(s.driver, NULL) >= 0);
			assert_int_equal(serve_driver_stats(s.driver, &st), 0);
		} while (st.in_state[ACCEL_SCHED_FINISHED] != 1);
		assert_int_equal(serve_driver_release(s.driver, h), 0);
	}
	n = (uint32_t)strlen(second);
	for (i = 0; i < n; i++)
		tok[i] = (unsigned char)second[i];
	assert_int_equal(serve_driver_add(s.driver, tok, n, &p, &h2), 0);
	if (first)
		assert_int_equal(h2, h);	/* the handle given again */
	ret = serve_driver_run_all(s.driver, NULL);
	if (!ret)
		ret = serve_driver_info(s.driver, h2, &in);
	if (!ret && in.req.n_generated != 4)
		ret = -EPROTO;
	if (!ret)
		memcpy(dig, in.req.digests, 4 * sizeof(*dig));
	serve_stack_destroy(&s);
	return ret;
}

static void test_driver_handle_reused(void **state)
{
	struct serve_model *m = model_of(0, 0, 4);
	uint64_t alone[4], after[4];

	(void)state;
	assert_non_null(m);
	assert_int_equal(driver_run(m, NULL, prompts[1], alone), 0);
	assert_int_equal(driver_run(m, prompts[0], prompts[1], after), 0);
	assert_memory_equal(after, alone, sizeof(alone));
	serve_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dense),
		cmocka_unit_test(test_gqa_sampled),
		cmocka_unit_test(test_moe),
		cmocka_unit_test(test_digest_sensitive),
		cmocka_unit_test(test_random_schedules),
		cmocka_unit_test_setup_teardown(test_step_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_by_hand, setup, teardown),
		cmocka_unit_test(test_driver_handle_reused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
