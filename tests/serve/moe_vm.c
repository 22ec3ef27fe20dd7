// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's MoE model on libaccel's expert store, against the module:
 * its experts read through the store's windows, expert-parallel over two
 * or four "devices" (NUMA nodes in turn), rebalanced under serving every
 * few steps (every expert moved across devices each time, on the copy
 * engine, a layer switched at a step boundary). Every request's digests
 * equal those of the model's own tensors (the weights are bit-identical
 * wherever they live), under the built-in planner and under libaccel's
 * scheduler, with no failed lookup, and so under the rebalances of
 * DeepSeek's EPLB and libaccel's cost-aware planner (--moe-policy eplb,
 * plan) on the load the engine measured (the planner's co-activation
 * counts consistent: each counted token in both layer pairs); the step
 * times of the run's usual batch with and without rebalance work are
 * reported; the device's usage back where it was.
 *
 * Built a second time with -DMOE_CUDA (serve_moe_vm_cuda, dynamic): the
 * same tests with the store on the cuda backend over two fake GPUs
 * (tests/libaccel/fake_cuda.c, shipped as /tests/fakecuda/libcuda.so.1:
 * device memory is host memory, so the CPU model reads the windows; new
 * device memory garbage, every copy's device side accessible by its
 * stream's GPU); four devices put two on each GPU. The step-time
 * comparison is the host backend's only.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "accel.h"
#include "accel_moe.h"
#include "../libaccel/accel_test.h"
#include "driver.h"
#include "engine.h"
#include "moe.h"
#include "moe_policy.h"
#include "stack.h"
#include "kselftest_harness.h"

#ifdef MOE_CUDA
#include "../libaccel/fake_cuda_guest.h"

#define GPUS		2

/* Before main: run again with the fake driver (new memory garbage, strict access). */
__attribute__((constructor)) static void use_fake_driver(int argc, char **argv)
{
	static const char *const knobs[] = { "FAKE_CUDA_DIRTY", "FAKE_CUDA_STRICT_ACCESS", NULL };

	(void)argc;
	fake_cuda_guest_reexec(argv, knobs);
}
#else
#define GPUS		0
#endif

#define NREQ	4
#define MAXTOK	48

static const char *const prompts[NREQ] = {
	"Hello, world",
	"The quick brown fox jumps over the lazy dog.",
	"Experts move between devices while the engine serves.",
	"A layer's new table takes effect at a step boundary.",
};

#define MAXSTEPS	256

struct result {
	uint64_t dig[NREQ][MAXTOK];
	struct serve_moe_report rep;
	/* Each store step's time, tokens, rebalance work. */
	uint64_t ns[MAXSTEPS], begin_ns[MAXSTEPS], nsteps;
	uint32_t tokens[MAXSTEPS];
	bool busy[MAXSTEPS];
	/* The co-activations a rebalance would read at the end (3 layers of 8 experts). */
	uint32_t coact[2 * 8 * 8];
	int coact_ret;
};

/* All requests on one stack (the store's with @mo); 0 or -errno. */
static int run(const struct serve_model *m, const struct serve_moe_opts *mo, bool sched,
	       struct result *res)
{
	struct serve_driver_opts d = { .policy = ACCEL_SCHED_FCFS, .max_tokens = 64,
				       .chunk_tokens = 16 };
	struct serve_stack_opts so = {
		.model = m, .blocks = 64, .swap_blocks = 16, .threads = 2, .max_ctx = 128,
		.moe = mo, .sched = sched ? &d : NULL,
	};
	struct serve_fcfs_opts fo = { .token_budget = 64, .chunk = 16 };
	uint32_t ids[NREQ], i, j;
	struct serve_moe_opts on_gpus;
	struct serve_stack s;
	char err[256];
	int32_t tok[128];
	int ret;

	if (mo && GPUS) {
		on_gpus = *mo;
		on_gpus.gpus = GPUS;
		so.moe = &on_gpus;
	}
	ret = serve_stack_create(&s, &so, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "# %s\n", err);
		return ret;
	}
	for (i = 0; !ret && i < NREQ; i++) {
		struct serve_params p = { .max_tokens = MAXTOK };
		uint32_t n = (uint32_t)strlen(prompts[i]);

		for (j = 0; j < n; j++)
			tok[j] = (unsigned char)prompts[i][j];
		ret = sched ? serve_driver_add(s.driver, tok, n, &p, &ids[i]) :
			serve_engine_add(s.engine, tok, n, &p, &ids[i]);
	}
	if (!ret)
		ret = sched ? serve_driver_run_all(s.driver, NULL) : serve_run_all(s.engine, &fo, NULL);
	for (i = 0; !ret && i < NREQ; i++) {
		struct serve_driver_info di;
		struct serve_req_info in;

		if (sched) {
			ret = serve_driver_info(s.driver, ids[i], &di);
			in = di.req;
		} else {
			ret = serve_engine_info(s.engine, ids[i], &in);
		}
		if (!ret && in.n_generated != MAXTOK)
			ret = -EPROTO;
		if (!ret)
			memcpy(res->dig[i], in.digests, sizeof(res->dig[i]));
	}
	if (!ret && s.moe && GPUS) {
		ACCEL_OPTS(accel_moe_store_stats, st);

		/* On the GPUs indeed: the driver's 2 MiB chunks are the store's blocks. */
		ret = accel_moe_store_stats(serve_moe_store(s.moe), &st);
		if (!ret && st.block_size != (2u << 20))
			ret = -EPROTO;
	}
	if (!ret && s.moe) {
		ret = serve_moe_report(s.moe, &res->rep);
		res->nsteps = serve_moe_steps(s.moe, res->ns, res->begin_ns, res->tokens, res->busy,
					      MAXSTEPS);
		if (res->nsteps > MAXSTEPS)
			ret = -E2BIG;
		res->coact_ret = serve_moe_coact(s.moe, res->coact);
		serve_moe_print(s.moe, stderr);
	}
	serve_stack_destroy(&s);
	return ret;
}

FIXTURE(moe) {
	struct accel_device *dev;
	uint64_t usage0;
	struct serve_model *m;
	struct result plain;
};

FIXTURE_SETUP(moe)
{
	ACCEL_OPTS(accel_device_info, info);
	struct serve_config c;

	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	self->usage0 = info.process_usage;
	serve_config_default(&c);
	c.layers = 3;
	c.experts = 8;
	c.top_k = 2;
	c.shared_expert = 1;
	self->m = serve_model_from_seed(&c, 7);
	ASSERT_NE(NULL, self->m);
	/* The reference: the model's own tensors. */
	memset(&self->plain, 0, sizeof(self->plain));
	ASSERT_EQ(0, run(self->m, NULL, false, &self->plain));
}

FIXTURE_TEARDOWN(moe)
{
	serve_model_free(self->m);
	EXPECT_EQ(self->usage0, accel_test_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

static void report(struct __test_metadata *_metadata, const struct serve_moe_report *r)
{
	TH_LOG("%llu steps, %llu rebalances (%llu started), %llu waves, %llu copies, %llu rebinds",
	       (unsigned long long)r->steps, (unsigned long long)r->rebalances,
	       (unsigned long long)r->rebalances_started, (unsigned long long)r->waves,
	       (unsigned long long)r->copies, (unsigned long long)r->rebinds);
	TH_LOG("usual batch: %llu steps without rebalance work: median %.1f us, max %.1f us; "
	       "%llu with: median %.1f us, max %.1f us; max with / median without %.2f",
	       (unsigned long long)r->idle_steps, r->idle_median_us, r->idle_max_us,
	       (unsigned long long)r->busy_steps, r->busy_median_us, r->busy_max_us,
	       r->idle_median_us > 0 ? r->busy_max_us / r->idle_median_us : 0.0);
}

/* The store without rebalances: the same digests. */
TEST_F_TIMEOUT(moe, store_reads_the_same_bytes, 300)
{
	struct serve_moe_opts mo = { .devices = 2, .redundant = 2 };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->m, &mo, false, &r));
	EXPECT_EQ(0, r.rep.lookup_errors);
	EXPECT_EQ(0, r.rep.rebalances_started);
	EXPECT_EQ(0, memcmp(r.dig, self->plain.dig, sizeof(r.dig)));
}

/* A rebalance every 8 steps over 2 devices, K 1: the same digests. */
TEST_F_TIMEOUT(moe, rebalances_keep_the_digests, 300)
{
	struct serve_moe_opts mo = { .devices = 2, .redundant = 2, .rebalance_every = 8 };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->m, &mo, false, &r));
	report(_metadata, &r.rep);
	EXPECT_EQ(0, r.rep.lookup_errors);
	/* A wave takes two steps here: one rebalance done, the next under way. */
	EXPECT_LE(1, r.rep.rebalances);
	EXPECT_LE(2, r.rep.rebalances_started);
	EXPECT_LT(0, r.rep.copies);
	EXPECT_LT(0, r.rep.busy_steps);
	EXPECT_LT(0, r.rep.idle_steps);
	EXPECT_EQ(0, memcmp(r.dig, self->plain.dig, sizeof(r.dig)));
}

/* The same on the store's executor thread: the steps only take their version. */
TEST_F_TIMEOUT(moe, rebalances_on_the_executor_thread, 300)
{
	struct serve_moe_opts mo = { .devices = 2, .redundant = 2, .rebalance_every = 8,
				     .thread = true };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->m, &mo, false, &r));
	report(_metadata, &r.rep);
	EXPECT_EQ(0, r.rep.lookup_errors);
	EXPECT_LE(2, r.rep.rebalances);
	EXPECT_LT(0, r.rep.copies);
	EXPECT_LT(0, r.rep.busy_steps);
	EXPECT_LT(0, r.rep.idle_steps);
	EXPECT_EQ(0, memcmp(r.dig, self->plain.dig, sizeof(r.dig)));
}

/* Four devices, K 2, every 2 steps, under libaccel's scheduler: the same digests. */
TEST_F_TIMEOUT(moe, rebalances_under_the_scheduler, 300)
{
	struct serve_moe_opts mo = { .devices = 4, .rebalance_every = 2, .max_inflight = 2,
				     .thread = true };
	struct result r = { 0 };

	ASSERT_EQ(0, run(self->m, &mo, true, &r));
	report(_metadata, &r.rep);
	EXPECT_EQ(0, r.rep.lookup_errors);
	EXPECT_LE(2, r.rep.rebalances);
	EXPECT_LT(0, r.rep.copies);
	EXPECT_EQ(0, memcmp(r.dig, self->plain.dig, sizeof(r.dig)));
}

/*
 * Co-activation counts of 3 layers of 8 experts, top 2: the tokens counted
 * chose 2 experts in every layer, so each layer pair holds 4 per token, and
 * the tokens that chose expert i of the middle layer are both pair 0's
 * column i and pair 1's row i (twice each: 2 experts on the other side).
 */
static void coact_consistent(struct __test_metadata *_metadata, const uint32_t *c)
{
	uint64_t total[2] = { 0 }, col, row;
	uint32_t i, j;

	for (i = 0; i < 2 * 64; i++)
		total[i / 64] += c[i];
	TH_LOG("co-activations: %llu and %llu pairs", (unsigned long long)total[0],
	       (unsigned long long)total[1]);
	EXPECT_LT(0, total[0]);
	EXPECT_EQ(total[0], total[1]);
	EXPECT_EQ(0, total[0] % 4);
	for (i = 0; i < 8; i++) {
		col = row = 0;
		for (j = 0; j < 8; j++) {
			col += c[j * 8 + i];
			row += c[64 + i * 8 + j];
		}
		EXPECT_EQ(col, row);
	}
}

/* A run whose rebalances use @pl's planner (@sched: under libaccel's scheduler). */
static void planned_run(struct __test_metadata *_metadata, FIXTURE_DATA(moe) *self,
			struct serve_moe_planner *pl, struct serve_moe_opts *mo, bool sched,
			uint64_t min_rebalances)
{
	struct result r = { 0 };

	serve_moe_policy_use(pl, mo);
	ASSERT_EQ(0, run(self->m, mo, sched, &r));
	report(_metadata, &r.rep);
	TH_LOG("%s: %llu placements, %llu slot moves in all, the last max/mean %.3f",
	       serve_moe_policy_name(pl->kind), (unsigned long long)pl->plans,
	       (unsigned long long)pl->moves, pl->last.imbalance);
	EXPECT_EQ(0, r.rep.lookup_errors);
	EXPECT_EQ(0, r.rep.rebalances_refused);
	EXPECT_LE(min_rebalances, r.rep.rebalances);
	EXPECT_EQ(r.rep.rebalances_started, pl->plans);
	EXPECT_LT(0, pl->moves);
	EXPECT_LT(0, r.rep.copies + r.rep.rebinds);
	EXPECT_EQ(0, memcmp(r.dig, self->plain.dig, sizeof(r.dig)));
	/* Only the planner counts co-activations, each token's in both layer pairs. */
	EXPECT_EQ(pl->kind == SERVE_MOE_PLAN ? 0 : -ENOENT, r.coact_ret);
	if (!r.coact_ret)
		coact_consistent(_metadata, r.coact);
}

/* EPLB's placements on the measured load, every 8 steps over 2 devices: the same digests. */
TEST_F_TIMEOUT(moe, eplb_rebalances_keep_the_digests, 300)
{
	struct serve_moe_planner pl = { .kind = SERVE_MOE_EPLB, .log = stderr };
	struct serve_moe_opts mo = { .devices = 2, .redundant = 2, .rebalance_every = 8 };

	planned_run(_metadata, self, &pl, &mo, false, 1);
}

/*
 * The cost-aware planner's placements, every 2 steps over 4 devices in 2
 * nodes, on the executor thread under libaccel's scheduler: the same digests.
 */
TEST_F_TIMEOUT(moe, plan_rebalances_keep_the_digests, 300)
{
	struct serve_moe_planner pl = { .kind = SERVE_MOE_PLAN, .nodes = 2, .log = stderr };
	struct serve_moe_opts mo = { .devices = 4, .redundant = 4, .rebalance_every = 2,
				     .max_inflight = 2, .thread = true };

	planned_run(_metadata, self, &pl, &mo, true, 2);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double median_us(const uint64_t *v, uint32_t n)
{
	uint64_t s[MAXSTEPS];

	if (!n)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	return (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) / 1e3;
}

/*
 * Step times with and without rebalances on the same workload, step by
 * step: the runs make the same batches, so step i of one is step i of the
 * other (the same requests at the same positions). Each configuration runs
 * REPS times, interleaved, and each step keeps its fastest time (the
 * emulator's noise is one-sided). Only the decode steps of all four
 * requests count (the usual batch). Reported, not asserted: the emulator's
 * timings say little about a real machine's.
 */
#define REPS	3
TEST_F_TIMEOUT(moe, step_times_with_and_without_rebalances, 900)
{
	static const char *const names[3] = { "no rebalance", "step mode", "thread mode" };
	struct serve_moe_opts mo[3] = {
		{ .devices = 2, .redundant = 2, .thread = false },
		{ .devices = 2, .redundant = 2, .rebalance_every = 8 },
		{ .devices = 2, .redundant = 2, .rebalance_every = 8, .thread = true },
	};
	static struct result r[3][REPS];
	uint64_t best[3][MAXSTEPS], bbegin[3][MAXSTEPS], v[MAXSTEPS];
	uint32_t c, k, i, n, usual = NREQ;
	bool busy[MAXSTEPS] = { false };
	double med0;

	if (GPUS)
		SKIP(return, "the host backend's step times only");
	for (k = 0; k < REPS; k++)
		for (c = 0; c < 3; c++) {
			ASSERT_EQ(0, run(self->m, &mo[c], false, &r[c][k]));
			EXPECT_EQ(0, memcmp(r[c][k].dig, self->plain.dig, sizeof(self->plain.dig)));
			ASSERT_EQ(r[0][0].nsteps, r[c][k].nsteps);
			ASSERT_EQ(0, memcmp(r[0][0].tokens, r[c][k].tokens,
					    r[0][0].nsteps * sizeof(uint32_t)));
		}
	n = (uint32_t)r[0][0].nsteps;
	for (c = 0; c < 3; c++)
		for (i = 0; i < n; i++) {
			best[c][i] = UINT64_MAX;
			for (k = 0; k < REPS; k++) {
				if (r[c][k].ns[i] < best[c][i]) {
					best[c][i] = r[c][k].ns[i];
					bbegin[c][i] = r[c][k].begin_ns[i];
				}
				if (c)
					busy[i] |= r[c][k].busy[i];
			}
		}
	for (i = 0, k = 0; i < n; i++)
		if (r[0][0].tokens[i] == usual)
			v[k++] = best[0][i];
	med0 = median_us(v, k);
	for (c = 0; c < 3; c++) {
		uint64_t max = 0, bmax = 0, beg[MAXSTEPS], begmax = 0;
		double worst = 0;
		uint32_t m = 0, nb = 0;

		for (i = 0; i < n; i++) {
			if (r[0][0].tokens[i] != usual)
				continue;
			beg[m] = bbegin[c][i];
			begmax = beg[m] > begmax ? beg[m] : begmax;
			v[m++] = best[c][i];
			max = best[c][i] > max ? best[c][i] : max;
			if (busy[i]) {
				nb++;
				bmax = best[c][i] > bmax ? best[c][i] : bmax;
			}
			if ((double)best[c][i] / (double)best[0][i] > worst)
				worst = (double)best[c][i] / (double)best[0][i];
		}
		TH_LOG("%s: %u decode steps (%u with work in the rebalancing runs): median %.1f us, max %.1f us "
		       "(%.1f us among those with work); max / median without rebalances %.2f; "
		       "the worst step against the same step without rebalances %.2fx", names[c], m,
		       nb, median_us(v, m), max / 1e3, bmax / 1e3, med0 > 0 ? max / 1e3 / med0 : 0,
		       worst);
		TH_LOG("%s: of those steps, in the store's step begin: median %.1f us, max %.1f us",
		       names[c], median_us(beg, m), begmax / 1e3);
	}
}

/* A shape that does not fit is refused with a message. */
TEST_F(moe, bad_shape)
{
	struct serve_moe_opts mo = { .devices = 3 };	/* 8 experts on 3 devices */
	struct serve_stack_opts so = { .model = self->m, .moe = &mo };
	struct serve_stack s;
	char err[256] = "";

	EXPECT_EQ(-EINVAL, serve_stack_create(&s, &so, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "divide"));
	so.memfd = true;
	mo.devices = 2;
	EXPECT_EQ(-EINVAL, serve_stack_create(&s, &so, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "kvaccel device"));
}

TEST_HARNESS_MAIN
