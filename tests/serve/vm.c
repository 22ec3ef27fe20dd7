// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve against the module: the engine's KV in host tiers (kvaccel
 * regions), swaps on the copy engine through the data mover. More requests
 * than the compute tier holds; every request's digests equal those of the
 * same request alone, and those of memfd tiers, with swap preemption,
 * recompute preemption and operator-level yields (dense and MoE); the
 * device's usage back to where it was afterwards.
 */
#include <string.h>
#include <unistd.h>

#include "accel.h"
#include "../libaccel/accel_test.h"
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

TEST_HARNESS_MAIN
