// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve against the module: the engine's KV in host tiers (kvaccel
 * regions), swaps on the copy engine through the data mover. More requests
 * than the compute tier holds; every request's digests equal those of the
 * same request alone, and those of memfd tiers, with swap preemption,
 * recompute preemption and operator-level yields (dense and MoE), under
 * the built-in planner and under libaccel's scheduler (priority with swaps
 * and yields to arrivals made mid-prefill, fcfs with recompute, slo with
 * the cost model); the device's usage back to where it was afterwards.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "accel.h"
#include "../libaccel/accel_test.h"
#include "driver.h"
#include "engine.h"
#include "stack.h"
#include "kselftest_harness.h"

#define NREQ	4
#define MAXTOK	12

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog.",
	"kvaccel: pinned host memory for KV caches, remapped without copying.",
	"Paged attention reads K and V through block tables.",
};

struct result {
	uint64_t dig[NREQ][MAXTOK];
	uint32_t swaps, drops, yields;
};

static bool yield_some(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	unsigned int *calls = ctx;
	unsigned int h = __atomic_add_fetch(calls, 1, __ATOMIC_RELAXED) * 2654435761u;

	return ((h ^ (id * 40503u + layer * 977u + phase)) >> 7) % 3 == 0;
}

/* Run requests @first..@last on fresh tiers; 0 or -errno. */
static int run(const struct serve_model *m, bool memfd, uint32_t blocks, uint32_t first,
	       uint32_t last, const struct serve_fcfs_opts *fo, bool yields, struct result *res)
{
	unsigned int calls = 0;
	struct serve_stack_opts so = {
		.model = m, .blocks = blocks, .swap_blocks = 64, .memfd = memfd, .threads = 2,
		.max_ctx = 128, .should_yield = yields ? yield_some : NULL, .yield_ctx = &calls,
	};
	uint32_t ids[NREQ], i, j;
	struct serve_stack s;
	char err[256];
	int32_t tok[128];
	int ret;

	ret = serve_stack_create(&s, &so, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "# %s\n", err);
		return ret;
	}
	for (i = first; !ret && i <= last; i++) {
		struct serve_params p = { .max_tokens = MAXTOK };
		uint32_t n = (uint32_t)strlen(prompts[i]);

		for (j = 0; j < n; j++)
			tok[j] = (unsigned char)prompts[i][j];
		ret = serve_engine_add(s.engine, tok, n, &p, &ids[i]);
	}
	if (!ret)
		ret = serve_run_all(s.engine, fo, NULL);
	for (i = first; !ret && i <= last; i++) {
		struct serve_req_info in;

		serve_engine_info(s.engine, ids[i], &in);
		if (in.n_generated != MAXTOK)
			ret = -EPROTO;
		memcpy(res->dig[i], in.digests, sizeof(res->dig[i]));
		res->swaps += in.swaps_out;
		res->drops += in.drops;
		res->yields += in.yields;
	}
	serve_stack_destroy(&s);
	return ret;
}

/* Arrivals made from a worker in the middle of a prefill (the driver's yield hook first). */
struct late {
	struct serve_driver *d;
	uint32_t next, last, added, h[NREQ];
	int ret;
};

static bool arrive_late(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	struct late *l = ctx;
	int32_t tok[128];
	uint32_t n, j, k;

	(void)id, (void)layer, (void)phase;
	/* The workers ask at once: each arrival taken by one of them. */
	k = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	if (k > l->last)
		return false;
	{
		struct serve_params p = { .max_tokens = MAXTOK, .priority = -(int32_t)k };
		int ret;

		n = (uint32_t)strlen(prompts[k]);
		for (j = 0; j < n; j++)
			tok[j] = (unsigned char)prompts[k][j];
		ret = serve_driver_add(l->d, tok, n, &p, &l->h[k]);
		if (ret)
			__atomic_store_n(&l->ret, ret, __ATOMIC_RELAXED);
		__atomic_fetch_add(&l->added, 1, __ATOMIC_RELEASE);
	}
	return false;
}

/*
 * Requests under libaccel's scheduler (kvaccel-serve's driver) on region
 * tiers: request 0 first, the others arriving from inside its prefill (more
 * urgent each), so prefills yield; 0 or -errno.
 */
static int run_sched(const struct serve_model *m, uint32_t blocks, uint32_t policy,
		     uint32_t preempt, struct result *res, struct accel_sched_stats *st)
{
	struct late l = { .next = 1, .last = NREQ - 1 };
	struct serve_driver_opts d = { .policy = policy, .preempt = preempt, .max_tokens = 64,
				       .chunk_tokens = 64, .yields = true,
				       .also_yield = arrive_late, .also_ctx = &l };
	struct serve_stack_opts so = { .model = m, .blocks = blocks, .swap_blocks = 64,
				       .threads = 2, .max_ctx = 128, .sched = &d };
	struct serve_params p = { .max_tokens = MAXTOK };
	struct serve_stack s;
	uint32_t i, j, n = (uint32_t)strlen(prompts[0]);
	int32_t tok[128];
	char err[256];
	int ret;

	ret = serve_stack_create(&s, &so, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "# %s\n", err);
		return ret;
	}
	for (j = 0; j < n; j++)
		tok[j] = (unsigned char)prompts[0][j];
	l.d = s.driver;		/* before the first step: the hook may run from then on */
	ret = serve_driver_add(s.driver, tok, n, &p, &l.h[0]);
	if (!ret)
		ret = serve_driver_run_all(s.driver, NULL);
	if (!ret)
		ret = l.ret;
	if (!ret && __atomic_load_n(&l.added, __ATOMIC_ACQUIRE) != l.last)
		ret = -ENODATA;		/* not every arrival came */
	for (i = 0; !ret && i < NREQ; i++) {
		struct serve_driver_info in;

		ret = serve_driver_info(s.driver, l.h[i], &in);
		if (!ret && in.req.n_generated != MAXTOK)
			ret = -EPROTO;
		if (!ret)
			memcpy(res->dig[i], in.req.digests, sizeof(res->dig[i]));
	}
	st->sz = sizeof(*st);
	if (!ret)
		ret = serve_driver_stats(s.driver, st);
	res->swaps = (uint32_t)st->swaps_out;
	res->drops = (uint32_t)st->recomputes;
	res->yields = (uint32_t)st->yields;
	serve_stack_destroy(&s);
	return ret;
}

static struct serve_model *model_of(uint32_t experts)
{
	struct serve_config c;

	serve_config_default(&c);
	c.experts = experts;
	c.shared_expert = experts ? 1 : 0;
	return serve_model_from_seed(&c, 5);
}

FIXTURE(serve) {
	struct accel_device *dev;
	uint64_t usage0;
	struct serve_model *dense, *moe;
	struct result alone_dense, alone_moe;
};

FIXTURE_SETUP(serve)
{
	ACCEL_OPTS(accel_device_info, info);
	struct serve_fcfs_opts fo = { .token_budget = 256 };
	uint32_t i;

	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	self->usage0 = info.process_usage;
	self->dense = model_of(0);
	self->moe = model_of(4);
	ASSERT_NE(NULL, self->dense);
	ASSERT_NE(NULL, self->moe);
	memset(&self->alone_dense, 0, sizeof(self->alone_dense));
	memset(&self->alone_moe, 0, sizeof(self->alone_moe));
	/* The references: each request alone, on memfd tiers, one chunk. */
	for (i = 0; i < NREQ; i++) {
		ASSERT_EQ(0, run(self->dense, true, 64, i, i, &fo, false, &self->alone_dense));
		ASSERT_EQ(0, run(self->moe, true, 64, i, i, &fo, false, &self->alone_moe));
	}
}

FIXTURE_TEARDOWN(serve)
{
	serve_model_free(self->dense);
	serve_model_free(self->moe);
	EXPECT_EQ(self->usage0, accel_test_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

/* 4 requests of up to 5 blocks each on a compute tier of 8. */
TEST_F(serve, swap_preemption_on_the_copy_engine)
{
	struct serve_fcfs_opts fo = { .token_budget = 64, .chunk = 8 };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->dense, false, 8, 0, NREQ - 1, &fo, false, &r));
	EXPECT_LT(0, r.swaps);
	EXPECT_EQ(0, r.drops);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_dense.dig, sizeof(r.dig)));
}

TEST_F(serve, recompute_preemption)
{
	struct serve_fcfs_opts fo = { .token_budget = 64, .chunk = 8,
				      .preempt = SERVE_PREEMPT_RECOMPUTE };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->dense, false, 8, 0, NREQ - 1, &fo, false, &r));
	EXPECT_LT(0, r.drops);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_dense.dig, sizeof(r.dig)));
}

TEST_F(serve, yields_and_swaps_moe)
{
	struct serve_fcfs_opts fo = { .token_budget = 64, .chunk = 16 };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->moe, false, 8, 0, NREQ - 1, &fo, true, &r));
	EXPECT_LT(0, r.swaps);
	EXPECT_LT(0, r.yields);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_moe.dig, sizeof(r.dig)));
}

/*
 * libaccel's scheduler on the same pool: swaps on the copy engine, yields to
 * the arrivals; the digests those of each request alone under the built-in
 * planner (the two drivers agree).
 */
TEST_F(serve, scheduler_priority_swap_and_yields)
{
	struct accel_sched_stats st;
	struct result r = { 0 };

	ASSERT_EQ(0, run_sched(self->dense, 8, ACCEL_SCHED_PRIORITY, ACCEL_SCHED_PREEMPT_SWAP,
			       &r, &st));
	TH_LOG("%u swap-outs, %u yields, %llu bytes swapped, swap bandwidth %llu B/s", r.swaps,
	       r.yields, (unsigned long long)st.swapped_bytes, (unsigned long long)st.swap_bw);
	EXPECT_LT(0, r.swaps);
	EXPECT_LT(0, r.yields);
	EXPECT_EQ(0, r.drops);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_dense.dig, sizeof(r.dig)));
}

TEST_F(serve, scheduler_fcfs_recompute_moe)
{
	struct accel_sched_stats st;
	struct result r = { 0 };

	ASSERT_EQ(0, run_sched(self->moe, 8, ACCEL_SCHED_FCFS, ACCEL_SCHED_PREEMPT_RECOMPUTE,
			       &r, &st));
	EXPECT_LT(0, r.drops);
	EXPECT_LT(0, st.recomputed_tokens);
	EXPECT_EQ(0, r.swaps);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_moe.dig, sizeof(r.dig)));
}

TEST_F(serve, scheduler_cost_model)
{
	struct accel_sched_stats st;
	struct result r = { 0 };

	ASSERT_EQ(0, run_sched(self->dense, 8, ACCEL_SCHED_SLO, ACCEL_SCHED_PREEMPT_COST, &r,
			       &st));
	EXPECT_LT(0, r.swaps + r.drops);
	EXPECT_EQ(0, memcmp(r.dig, self->alone_dense.dig, sizeof(r.dig)));
}

TEST_HARNESS_MAIN
