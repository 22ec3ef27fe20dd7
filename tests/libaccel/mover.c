// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's tiers and data mover against the module: host tiers in
 * kvaccel regions of several block sizes (a KV block spanning region
 * blocks), their dma-buf, scattered runs on the copy engine checked byte
 * for byte, more runs than one copy job takes (chained jobs), jobs
 * between a region tier and a memfd tier (memcpy on the worker), a block
 * manager's plan executed, the eventfd, a copy error (copy_fail_nth)
 * reaching a job's status, destroy with jobs in flight, a layer-wise job
 * on the copy engine (only the chosen layer pieces change), and
 * a benchmark: scattered 64 KiB block store/load against memcpy of the
 * same blocks in the same run.
 */
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "accel_test.h"
#include "kvtest.h"
#include "kselftest_harness.h"

static struct accel_tier *host_tier(struct accel_device *dev, uint64_t bb, uint32_t n)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb, .blocks = n);

	return accel_tier_create_host(dev, &o);
}

static struct accel_tier *memfd_tier(uint64_t bb, uint32_t n)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb, .blocks = n);

	return accel_tier_create_memfd(&o);
}

static void fill(struct accel_tier *t, uint32_t tag, uint32_t n, size_t bb)
{
	uint32_t b;

	for (b = 0; b < n; b++)
		kvt_fill(accel_tier_block_addr(t, b), bb, tag * 100000 + b);
}

static int done_one(struct accel_mover *m, uint64_t id)
{
	struct accel_mover_done d;
	int n = accel_mover_poll(m, &d, 1, 30ll * 1000000000);

	if (n != 1)
		return n < 0 ? n : -ETIME;
	if (d.job_id != id)
		return -ESRCH;
	return d.status;
}

FIXTURE(mover) {
	struct accel_device *dev;
	struct accel_mover *m;
	uint64_t usage0;
};

FIXTURE_SETUP(mover)
{
	ACCEL_OPTS(accel_device_info, info);

	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	self->usage0 = info.process_usage;
	self->m = accel_mover_create(NULL);
	ASSERT_NE(NULL, self->m);
}

FIXTURE_TEARDOWN(mover)
{
	accel_mover_destroy(self->m);
	EXPECT_EQ(self->usage0, accel_test_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

/* Region block: the largest power of two up to 2 MiB dividing block_bytes. */
TEST_F(mover, host_tier_shapes)
{
	static const struct { uint64_t bb; uint32_t region; } c[] = {
		{ 4096, 4096 }, { 3 * 4096, 4096 }, { 64 << 10, 64 << 10 },
		{ 5 << 20, 1 << 20 }, { 8 << 20, 2 << 20 }, { 2 << 20, 2 << 20 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct accel_tier *t = host_tier(self->dev, c[i].bb, 3);
		ACCEL_OPTS(accel_tier_info, info);
		struct accel_region *r;
		int fd;

		ASSERT_NE(NULL, t) TH_LOG("block %llu: %s", (unsigned long long)c[i].bb,
					  strerror(errno));
		ASSERT_EQ(0, accel_tier_info(t, &info));
		EXPECT_EQ(ACCEL_TIER_HOST, info.kind);
		EXPECT_EQ(c[i].region, info.region_block_bytes);
		EXPECT_EQ(c[i].bb, info.block_bytes);
		kvt_fill(accel_tier_block_addr(t, 2), c[i].bb, 77 + i);
		/* Its dma-buf is the region: the same bytes through an import. */
		ASSERT_EQ(0, accel_tier_export(t, &fd));
		r = accel_region_import(self->dev, fd);
		ASSERT_NE(NULL, r);
		EXPECT_EQ(3 * c[i].bb, accel_region_size(r));
		EXPECT_TRUE(kvt_check((char *)accel_region_map(r) + 2 * c[i].bb, c[i].bb, 77 + i));
		accel_region_destroy(r);
		close(fd);
		accel_tier_destroy(t);
	}
	errno = 0;
	EXPECT_EQ(NULL, host_tier(self->dev, 4096 + 100, 2));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, host_tier(self->dev, ACCEL_TIER_BLOCK_MAX * 2, 1));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * Scattered runs both ways, and within one tier, on the copy engine (no
 * run writes what another reads).
 */
TEST_F(mover, scattered_runs_on_the_copy_engine)
{
	enum { BB = 5 << 20, NB = 12 };
	struct accel_tier *a = host_tier(self->dev, BB, NB), *b = host_tier(self->dev, BB, NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run runs[] = {
		{ 0, 3, 1, 11, 1 }, { 0, 5, 1, 0, 3 }, { 1, 8, 0, 0, 2 }, { 0, 3, 0, 10, 2 },
	};
	uint64_t id;
	uint32_t i, k;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(a, 0, NB, BB);
	fill(b, 1, NB, BB);
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, runs, 4, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	for (i = 0; i < 4; i++)
		for (k = 0; k < runs[i].count; k++)
			EXPECT_TRUE(kvt_check(accel_tier_block_addr(tiers[runs[i].dst_tier],
								    runs[i].dst_block + k), BB,
					      runs[i].src_tier * 100000 + runs[i].src_block + k))
				TH_LOG("run %u block %u", i, k);
	EXPECT_TRUE(kvt_check(accel_tier_block_addr(b, 10), BB, 100000 + 10));
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/* More segments than one copy job takes: chained jobs, one job id. */
TEST_F(mover, chained_copy_jobs)
{
	enum { NB = 2 * 4096 + 600 };
	struct accel_tier *a = host_tier(self->dev, 4096, 2 * NB);
	struct accel_tier *b = host_tier(self->dev, 4096, 2 * NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run *runs = calloc(NB, sizeof(*runs));
	struct pollfd p = { .fd = accel_mover_fd(self->m), .events = POLLIN };
	uint64_t id;
	uint32_t i;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, runs);
	fill(a, 0, 2 * NB, 4096);
	/* Every other block, reversed: nothing coalesces. */
	for (i = 0; i < NB; i++)
		runs[i] = (struct accel_bm_run) { 0, 2 * i, 1, 2 * (NB - 1 - i), 1 };
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, runs, NB, NULL, &id));
	ASSERT_EQ(1, poll(&p, 1, 30000));
	ASSERT_EQ(0, done_one(self->m, id));
	EXPECT_EQ(0, poll(&p, 1, 0));
	for (i = 0; i < NB; i++)
		ASSERT_TRUE(kvt_check(accel_tier_block_addr(b, 2 * (NB - 1 - i)), 4096, 2 * i))
			TH_LOG("run %u", i);
	free(runs);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/* A region tier and a memfd tier: memcpy on the worker, both ways. */
TEST_F(mover, region_and_memfd_tiers)
{
	enum { BB = 64 << 10, NB = 32 };
	struct accel_tier *h = host_tier(self->dev, BB, NB), *f = memfd_tier(BB, NB);
	const struct accel_tier *tiers[2] = { h, f };
	struct accel_bm_run out[] = { { 0, 1, 1, 30, 2 }, { 0, 7, 1, 3, 5 } };
	struct accel_bm_run in[] = { { 1, 20, 0, 0, 1 } };
	uint64_t id1, id2;
	uint32_t k;

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, f);
	fill(h, 0, NB, BB);
	fill(f, 1, NB, BB);
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, out, 2, NULL, &id1));
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, in, 1, NULL, &id2));
	ASSERT_EQ(0, done_one(self->m, id1));
	ASSERT_EQ(0, done_one(self->m, id2));
	for (k = 0; k < 2; k++)
		EXPECT_TRUE(kvt_check(accel_tier_block_addr(f, 30 + k), BB, 1 + k));
	for (k = 0; k < 5; k++)
		EXPECT_TRUE(kvt_check(accel_tier_block_addr(f, 3 + k), BB, 7 + k));
	EXPECT_TRUE(kvt_check(accel_tier_block_addr(h, 0), BB, 100000 + 20));
	accel_tier_destroy(h);
	accel_tier_destroy(f);
}

/* A block manager's move plan, both tiers regions. */
TEST_F(mover, block_manager_plan)
{
	enum { BT = 16, BB = 64 << 10, NT = 40 * BT };
	uint32_t blocks[2] = { 64, 64 }, seq, s2, ids0[64], ids1[64], off[2], i;
	ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = BT, .nr_tiers = 2, .tier_blocks = blocks);
	struct accel_bm_run runs[64];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = runs, .max_runs = 64);
	struct accel_tier *t0 = host_tier(self->dev, BB, 64), *t1 = host_tier(self->dev, BB, 64);
	const struct accel_tier *tiers[2] = { t0, t1 };
	struct accel_bm *bm = accel_bm_create(&cfg);
	static int32_t tok[NT];
	uint64_t id;

	ASSERT_NE(NULL, bm);
	ASSERT_NE(NULL, t0);
	ASSERT_NE(NULL, t1);
	for (i = 0; i < NT; i++)
		tok[i] = (int32_t)(i * 5 + 1);
	ASSERT_EQ(0, accel_bm_seq_create(bm, NULL, &s2));
	ASSERT_EQ(0, accel_bm_seq_start(bm, s2, tok, 3 * BT, NULL, NULL));
	ASSERT_EQ(0, accel_bm_seq_create(bm, NULL, &seq));
	ASSERT_EQ(0, accel_bm_seq_start(bm, seq, tok + BT, NT - BT, NULL, NULL));
	ASSERT_EQ(39, accel_bm_block_tables(bm, &seq, 1, off, ids0, 64, NULL));
	fill(t0, 0, 64, BB);
	ASSERT_EQ(0, accel_bm_seq_move(bm, seq, 1, &plan));
	ASSERT_LE(plan.nr_runs, 64);
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, runs, plan.nr_runs, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	ASSERT_EQ(0, accel_bm_plan_done(bm, plan.id, 0));
	ASSERT_EQ(39, accel_bm_block_tables(bm, &seq, 1, off, ids1, 64, NULL));
	for (i = 0; i < 39; i++)
		EXPECT_TRUE(kvt_check(accel_tier_block_addr(t1, ids1[i]), BB, ids0[i]));
	accel_bm_destroy(bm);
	accel_tier_destroy(t0);
	accel_tier_destroy(t1);
}

/* A copy-engine failure reaches the job's status, through a chain too. */
TEST_F(mover, copy_error_reaches_poll)
{
	enum { NB = 4096 + 8 };
	struct accel_tier *a = host_tier(self->dev, 4096, 2 * NB);
	struct accel_tier *b = host_tier(self->dev, 4096, 2 * NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run *runs = calloc(NB, sizeof(*runs));
	struct accel_bm_run big = { 0, 0, 1, 0, 1024 };
	char knob[256];
	uint64_t id;
	uint32_t i;

	snprintf(knob, sizeof(knob), "%s", kvt_debugfs("copy_fail_nth"));
	if (access(knob, W_OK))
		SKIP(return, "no %s", knob);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, runs);
	ASSERT_EQ(0, kvt_write_file(knob, "1"));
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, &big, 1, NULL, &id));
	EXPECT_EQ(-EIO, done_one(self->m, id));
	/* The first of two chained jobs fails: the mover job does. */
	for (i = 0; i < NB; i++)
		runs[i] = (struct accel_bm_run) { 0, 2 * i, 1, 2 * i, 1 };
	ASSERT_EQ(0, kvt_write_file(knob, "1"));
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, runs, NB, NULL, &id));
	EXPECT_EQ(-EIO, done_one(self->m, id));
	kvt_write_file(knob, "0");
	/* And the next one works. */
	ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, &big, 1, NULL, &id));
	EXPECT_EQ(0, done_one(self->m, id));
	free(runs);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/* Destroying the mover waits for copy-engine jobs still running. */
TEST_F(mover, destroy_with_jobs_in_flight)
{
	enum { BB = 2 << 20, NB = 32 };
	struct accel_tier *a = host_tier(self->dev, BB, NB), *b = host_tier(self->dev, BB, NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run r = { 0, 0, 1, 0, NB };
	uint64_t id;
	int i;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(a, 3, NB, BB);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, &r, 1, NULL, &id));
	accel_mover_destroy(self->m);
	self->m = accel_mover_create(NULL);
	ASSERT_NE(NULL, self->m);
	for (i = 0; i < NB; i++)
		EXPECT_TRUE(kvt_check(accel_tier_block_addr(b, i), BB, 300000 + i));
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Layer pieces on the copy engine: 64 KiB blocks of 8 layers; layers 2-4
 * of scattered blocks copied, the other layers and blocks unchanged; then
 * whole blocks between tiers of 8 and 1 layers.
 */
TEST_F(mover, layer_wise_on_the_copy_engine)
{
	const uint64_t bb = 64 << 10, piece = bb / 8;
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb, .blocks = 16, .layers = 8);
	ACCEL_OPTS(accel_mover_submit_opts, so, .flags = ACCEL_MOVER_LAYERS, .layer_first = 2,
		   .layer_count = 3);
	struct accel_bm_run r[2] = {
		{ .src_tier = 0, .src_block = 0, .dst_tier = 1, .dst_block = 8, .count = 4 },
		{ .src_tier = 0, .src_block = 9, .dst_tier = 1, .dst_block = 1, .count = 3 },
	};
	struct accel_tier *a = accel_tier_create_host(self->dev, &o), *b;
	const struct accel_tier *t[2];
	unsigned char *old;
	uint32_t i, blk, l;
	uint64_t id;

	ASSERT_NE(NULL, a);
	b = accel_tier_create_host(self->dev, &o);
	ASSERT_NE(NULL, b);
	t[0] = a;
	t[1] = b;
	fill(a, 1, 16, bb);
	fill(b, 2, 16, bb);
	old = malloc(16 * bb);
	ASSERT_NE(NULL, old);
	memcpy(old, accel_tier_block_addr(b, 0), 16 * bb);
	ASSERT_EQ(0, accel_mover_submit(self->m, t, 2, r, 2, &so, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	for (blk = 0; blk < 16; blk++) {
		for (l = 0; l < 8; l++) {
			unsigned char *got = (unsigned char *)accel_tier_block_addr(b, blk) + l * piece;
			int64_t src = -1;

			for (i = 0; i < 2; i++)
				if (blk >= r[i].dst_block && blk < r[i].dst_block + r[i].count)
					src = r[i].src_block + blk - r[i].dst_block;
			const unsigned char *want = src >= 0 && l >= 2 && l < 5 ?
				(unsigned char *)accel_tier_block_addr(a, src) + l * piece :
				old + blk * bb + l * piece;

			EXPECT_EQ(0, memcmp(want, got, piece)) TH_LOG("block %u layer %u", blk, l);
		}
	}
	/* Whole blocks from 8 layers to 1 (both contiguous). */
	accel_tier_destroy(b);
	o.layers = 0;
	b = accel_tier_create_host(self->dev, &o);
	ASSERT_NE(NULL, b);
	t[1] = b;
	ASSERT_EQ(0, accel_mover_submit(self->m, t, 2, r, 2, NULL, &id));
	ASSERT_EQ(0, done_one(self->m, id));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, memcmp(accel_tier_block_addr(a, i), accel_tier_block_addr(b, 8 + i), bb));
	/* Events are CUDA's: refused on a job of host tiers. */
	so.flags = ACCEL_MOVER_WAIT_EVENT;
	so.layer_first = so.layer_count = 0;
	so.wait_event = &id;
	EXPECT_EQ(-EINVAL, accel_mover_submit(self->m, t, 2, r, 2, &so, &id));
	free(old);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/*
 * Store (tier 0 -> 1) and load (1 -> 0) of scattered 64 KiB blocks with
 * the mover, against memcpy of the same blocks, in the same run.
 */
/*
 * A figure, not a gate: TCG's userspace memcpy runs at ~0.1 GB/s, so the
 * baselines alone take tens of seconds on a loaded machine.
 */
TEST_F_TIMEOUT(mover, bench_scattered_64k, 300)
{
	enum { BB = 64 << 10, NB = 1024, N = 512, ROUNDS = 4 };
	struct accel_tier *a = host_tier(self->dev, BB, NB), *b = host_tier(self->dev, BB, NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run st[N], ld[N];
	struct accel_tier *fa = memfd_tier(BB, NB), *fb = memfd_tier(BB, NB);
	double t, mover_s = 0, memcpy_s = 0, plain_s = 0, gb;
	uint32_t i, j, perm[NB];
	uint64_t id;
	int r;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	for (i = 0; i < NB; i++)
		perm[i] = i;
	srand(7);
	for (i = NB - 1; i > 0; i--) {
		j = (uint32_t)rand() % (i + 1);
		uint32_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	/* Every other block of the source to random blocks: no run longer than one. */
	for (i = 0; i < N; i++) {
		st[i] = (struct accel_bm_run) { 0, 2 * i, 1, perm[i], 1 };
		ld[i] = (struct accel_bm_run) { 1, perm[i], 0, 2 * i + 1, 1 };
	}
	ASSERT_NE(NULL, fa);
	ASSERT_NE(NULL, fb);
	fill(a, 0, NB, BB);
	memset(accel_tier_block_addr(b, 0), 1, (size_t)NB * BB);
	fill(fa, 0, NB, BB);
	memset(accel_tier_block_addr(fb, 0), 1, (size_t)NB * BB);
	for (r = 0; r < ROUNDS + 1; r++) {
		t = now_s();
		ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, st, N, NULL, &id));
		ASSERT_EQ(0, done_one(self->m, id));
		ASSERT_EQ(0, accel_mover_submit(self->m, tiers, 2, ld, N, NULL, &id));
		ASSERT_EQ(0, done_one(self->m, id));
		if (r)
			mover_s += now_s() - t;
		t = now_s();
		for (i = 0; i < N; i++)
			memcpy(accel_tier_block_addr(b, perm[i]), accel_tier_block_addr(a, 2 * i), BB);
		for (i = 0; i < N; i++)
			memcpy(accel_tier_block_addr(a, 2 * i + 1), accel_tier_block_addr(b, perm[i]),
			       BB);
		if (r)
			memcpy_s += now_s() - t;
		/* The same memcpy between plain memory (memfd tiers), for reference. */
		t = now_s();
		for (i = 0; i < N; i++)
			memcpy(accel_tier_block_addr(fb, perm[i]), accel_tier_block_addr(fa, 2 * i), BB);
		for (i = 0; i < N; i++)
			memcpy(accel_tier_block_addr(fa, 2 * i + 1), accel_tier_block_addr(fb, perm[i]),
			       BB);
		if (r)
			plain_s += now_s() - t;
	}
	for (i = 0; i < N; i++)
		ASSERT_TRUE(kvt_check(accel_tier_block_addr(a, 2 * i + 1), BB, 2 * i));
	gb = 2.0 * N * BB * ROUNDS / 1e9;
	printf("# bench scattered 64 KiB blocks, %d store+load rounds of %d blocks: "
	       "mover %.2f GB/s, memcpy %.2f GB/s (%.0f %% of it), memcpy memfd-memfd %.2f GB/s "
	       "(%.0f %% of it)\n", ROUNDS, N, gb / mover_s, gb / memcpy_s,
	       100.0 * memcpy_s / mover_s, gb / plain_s, 100.0 * plain_s / mover_s);
	accel_tier_destroy(fa);
	accel_tier_destroy(fb);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

TEST_HARNESS_MAIN
