// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's KV-cache manager on the host backend against the module:
 * swap out and back in with data verification, a second swap-out moving
 * only the blocks written since, prefix sharing, copy-on-write after a
 * fork, swap-in reusing blocks still cached on the device, windows on both
 * tiers, the naive per-block mover (ACCEL_KV_PER_BLOCK_COPIES), every
 * "not now" (-EBUSY) and "no room" (-ENOSPC) case leaving
 * the state as it was, and nothing leaked when the cache is destroyed with
 * sequences alive.
 *
 * Built a second time with -DKV_CUDA (libaccel_kv_cuda, dynamic): the same
 * tests on the cuda backend against the fake driver (tests/libaccel/
 * fake_cuda.c, shipped as /tests/fakecuda/libcuda.so.1), whose device
 * pointers are host addresses, so the tests can fill and check device
 * blocks by hand. Windows on the device tier are -EOPNOTSUPP there, and
 * the device tier exports the driver's dma-buf (the fake's is a memfd).
 */
#include <unistd.h>

#include "accel.h"
#include "accel_test.h"
#include "kvtest.h"
#include "kselftest_harness.h"

#define BT	16		/* tokens per block */
#define BB	(16 * 1024)	/* bytes per block */

#ifdef KV_CUDA
#include <dlfcn.h>

#include "cuda/cuda_loader.h"
#include "fake_cuda_guest.h"

#define BACKEND		"cuda"

/* Before main: run again with the fake driver on the library path. */
__attribute__((constructor)) static void use_fake_driver(int argc, char **argv)
{
	(void)argc;
	fake_cuda_guest_reexec(argv, NULL);
}
#else
#define BACKEND		"host"
#endif

static int32_t prompt[4096];
static char last_log[256];

static void log_cb(void *arg, enum accel_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

/* Fill a sequence's device blocks with a pattern of (tag, block index). */
static int fill_seq(struct accel_kv *kv, uint32_t seq, uint32_t tag)
{
	uint32_t blocks[256];
	int n = accel_kv_seq_blocks(kv, seq, blocks, 256), i;

	for (i = 0; i < n; i++)
		kvt_fill(accel_kv_block_addr(kv, ACCEL_KV_DEVICE, blocks[i]), BB, tag * 1000 + i);
	return n;
}

static int check_seq(struct accel_kv *kv, uint32_t seq, uint32_t tag, int from)
{
	uint32_t blocks[256];
	int n = accel_kv_seq_blocks(kv, seq, blocks, 256), i;

	if (n < 0)
		return n;
	for (i = from; i < n; i++)
		if (!kvt_check(accel_kv_block_addr(kv, ACCEL_KV_DEVICE, blocks[i]), BB, tag * 1000 + i))
			return -1000 - i;
	return 0;
}

FIXTURE(kv) {
	struct accel_device *dev;
	struct accel_kv *kv;
	uint64_t usage0;
};

FIXTURE_SETUP(kv)
{
	struct accel_kv_config cfg = {
		.sz = sizeof(cfg),
		.block_tokens = BT, .block_bytes = BB, .device_blocks = 64,
		.host_blocks = 128, .backend = BACKEND,
	};
	ACCEL_OPTS(accel_device_info, info);
	int i;

	for (i = 0; i < 4096; i++)
		prompt[i] = 7 * i + 3;
	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	ASSERT_EQ(0, accel_device_info(self->dev, &info));
	self->usage0 = info.process_usage;
	self->kv = accel_kv_create(self->dev, &cfg);
#ifdef KV_CUDA
	if (!self->kv && errno == ENODEV)
		SKIP(return, "no CUDA driver (the fake belongs in " FAKE_CUDA_GUEST ")");
#endif
	ASSERT_NE(NULL, self->kv) TH_LOG("accel_kv_create: %s", strerror(errno));
}

FIXTURE_TEARDOWN(kv)
{
	accel_kv_destroy(self->kv);
	EXPECT_EQ(self->usage0, accel_test_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

TEST_F(kv, swap_out_and_in_keeps_the_data)
{
	struct accel_kv_stats st = { .sz = sizeof(st) };
	struct accel_fence *f;
	uint32_t seq;
	uint64_t cached, tokens;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 100, &seq, &cached));
	EXPECT_EQ(0, cached);
	ASSERT_EQ(7, fill_seq(self->kv, seq, 1));
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, seq, &f));
#ifdef KV_CUDA
	EXPECT_EQ(NULL, f);	/* a ticket on the tier's stream, no kvaccel fence */
#else
	EXPECT_NE(NULL, f);
#endif
	EXPECT_EQ(-EBUSY, accel_kv_swap_out(self->kv, seq, NULL));
	EXPECT_EQ(-EBUSY, accel_kv_seq_append(self->kv, seq, prompt, 1));
	EXPECT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(self->kv, seq));
	/* The fence is the caller's: valid after the cache is done with the swap. */
	if (f) {
		EXPECT_EQ(1, accel_fence_status(f));
		EXPECT_EQ(0, accel_fence_wait(f, 0));
		accel_fence_destroy(f);
	}
	EXPECT_EQ(-EBUSY, accel_kv_seq_blocks(self->kv, seq, NULL, 0));
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	EXPECT_EQ(64, st.device_free);
	EXPECT_EQ(7, st.blocks_out);
	/* 7 blocks, allocated as one run on each tier: one transfer. */
	EXPECT_EQ(1, st.transfers);

	ASSERT_EQ(0, accel_kv_swap_in(self->kv, seq, NULL));
	EXPECT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(ACCEL_KV_DEVICE, accel_kv_seq_place(self->kv, seq));
	EXPECT_EQ(0, check_seq(self->kv, seq, 1, 0));
	ASSERT_EQ(0, accel_kv_seq_tokens(self->kv, seq, &tokens));
	EXPECT_EQ(100, tokens);
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, seq));
	EXPECT_EQ(-ENOENT, accel_kv_seq_free(self->kv, seq));
}

/*
 * ACCEL_KV_PER_BLOCK_COPIES (the benchmarks' naive mover): one copy per
 * block, waited for in the call, so a swap is done on return; the data
 * survives the round trip and every block counts as a transfer.
 */
TEST_F(kv, per_block_copies_keep_the_data)
{
	struct accel_kv_config cfg = {
		.sz = sizeof(cfg),
		.block_tokens = BT, .block_bytes = BB, .device_blocks = 64,
		.host_blocks = 128, .backend = BACKEND, .flags = ACCEL_KV_PER_BLOCK_COPIES,
	};
	struct accel_kv_stats st = { .sz = sizeof(st) };
	struct accel_kv *kv = accel_kv_create(self->dev, &cfg);
	uint32_t seq;

	ASSERT_NE(NULL, kv) TH_LOG("accel_kv_create: %s", strerror(errno));
	ASSERT_EQ(0, accel_kv_seq_create(kv, prompt, 100, &seq, NULL));
	ASSERT_EQ(7, fill_seq(kv, seq, 4));
	ASSERT_EQ(0, accel_kv_swap_out(kv, seq, NULL));
	EXPECT_EQ(0, accel_kv_progress(kv, -1));
	EXPECT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(kv, seq));
	ASSERT_EQ(0, accel_kv_stats(kv, &st));
	EXPECT_EQ(7, st.blocks_out);
	EXPECT_EQ(7, st.transfers);
	ASSERT_EQ(0, accel_kv_swap_in(kv, seq, NULL));
	EXPECT_EQ(0, accel_kv_progress(kv, -1));
	EXPECT_EQ(ACCEL_KV_DEVICE, accel_kv_seq_place(kv, seq));
	EXPECT_EQ(0, check_seq(kv, seq, 4, 0));
	ASSERT_EQ(0, accel_kv_stats(kv, &st));
	/* The full blocks still cached on the device are reused: the partial one moves. */
	EXPECT_EQ(1, st.blocks_in);
	EXPECT_EQ(8, st.transfers);
	accel_kv_destroy(kv);
}

/*
 * A swapped-in prefix is shared again: its device copies were evicted
 * while it was out, so the swap in copies them back and publishes their
 * keys; a new sequence with the same prompt finds them.
 */
TEST_F(kv, swapped_in_prefix_is_shared_again)
{
	uint32_t a, b, fill[8];
	uint64_t cached;
	int i;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 64, &a, NULL));	/* 4 blocks */
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	/* Other prompts take the whole device tier: a's cached blocks are evicted. */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt + 1000 + 8 * i, 128, &fill[i],
						 NULL));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, accel_kv_seq_free(self->kv, fill[i]));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 64, &b, &cached));
	EXPECT_EQ(64, cached);
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, b));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, a));
}

/*
 * The ordinary preemption path under pressure: swapped out and in, grown,
 * swapped out again with the host tier nearly full of clean copies. The
 * data comes back whole (0.1 wrote host block 0 and heap garbage here).
 */
TEST_F(kv, swap_out_with_host_tier_short)
{
	static const struct { int off, tokens; } host_seqs[] = {
		{ 1000, 640 }, { 2000, 640 }, { 3000, 448 },	/* 40 + 40 + 28 blocks */
	};
	uint32_t a, b, o[3];
	int i;

	/* a (10 blocks) and b (8) on the device, each with clean host copies. */
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 160, &a, NULL));
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt + 500, 128, &b, NULL));
	fill_seq(self->kv, a, 3);
	fill_seq(self->kv, b, 4);
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, b, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, b, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	/* Sequences living on the host take the tier to 126 of 128 blocks. */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt + host_seqs[i].off,
						 host_seqs[i].tokens, &o[i], NULL));
		ASSERT_EQ(0, accel_kv_swap_out(self->kv, o[i], NULL));
		ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	}
	/* a grows by 4 blocks without host copies: 4 needed, 2 free. */
	ASSERT_EQ(0, accel_kv_seq_append(self->kv, a, prompt + 160, 64));
	fill_seq(self->kv, a, 3);
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(self->kv, a));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(0, check_seq(self->kv, a, 3, 0));
	EXPECT_EQ(0, check_seq(self->kv, b, 4, 0));	/* its host copies went, not its data */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, accel_kv_seq_free(self->kv, o[i]));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, b));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, a));
}

/* FastSwitch's reuse: after a swap-in, only blocks written since move out. */
TEST_F(kv, second_swap_out_moves_only_written_blocks)
{
	struct accel_kv_stats st = { .sz = sizeof(st) };
	uint32_t seq, blocks[16];
	int n;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 100, &seq, NULL));
	fill_seq(self->kv, seq, 2);
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, seq, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, seq, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	/* Decode 20 tokens: block 6 (partial) and a new block 7 change. */
	ASSERT_EQ(0, accel_kv_seq_append(self->kv, seq, prompt + 100, 20));
	n = accel_kv_seq_blocks(self->kv, seq, blocks, 16);
	ASSERT_EQ(8, n);
	kvt_fill(accel_kv_block_addr(self->kv, ACCEL_KV_DEVICE, blocks[6]), BB, 2006);
	kvt_fill(accel_kv_block_addr(self->kv, ACCEL_KV_DEVICE, blocks[7]), BB, 2007);
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	ASSERT_EQ(7, st.blocks_out);
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, seq, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	EXPECT_EQ(9, st.blocks_out);
	EXPECT_LE(6, st.blocks_reused);
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, seq, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(0, check_seq(self->kv, seq, 2, 0));
}

TEST_F(kv, prefix_sharing_and_copy_on_write)
{
	uint32_t a, b, c, ba[16], bb[16], bc[16];
	uint64_t cached;
	struct accel_kv_stats st = { .sz = sizeof(st) };

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 40, &a, NULL));
	fill_seq(self->kv, a, 3);
	/* Same 32-token prefix: two full blocks shared. */
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 36, &b, &cached));
	EXPECT_EQ(32, cached);
	ASSERT_EQ(3, accel_kv_seq_blocks(self->kv, a, ba, 16));
	ASSERT_EQ(3, accel_kv_seq_blocks(self->kv, b, bb, 16));
	EXPECT_EQ(ba[0], bb[0]);
	EXPECT_EQ(ba[1], bb[1]);
	EXPECT_NE(ba[2], bb[2]);

	/* A fork shares the partial block too; appending copies it first. */
	ASSERT_EQ(0, accel_kv_seq_fork(self->kv, a, &c));
	ASSERT_EQ(3, accel_kv_seq_blocks(self->kv, c, bc, 16));
	EXPECT_EQ(ba[2], bc[2]);
	ASSERT_EQ(0, accel_kv_seq_append(self->kv, c, prompt + 200, 1));
	ASSERT_EQ(3, accel_kv_seq_blocks(self->kv, c, bc, 16));
	EXPECT_NE(ba[2], bc[2]);
	EXPECT_TRUE(kvt_check(accel_kv_block_addr(self->kv, ACCEL_KV_DEVICE, bc[2]), BB, 3002));
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	EXPECT_EQ(1, st.cow_copies);
	EXPECT_EQ(32, st.prefix_hit_tokens);
}

/* A swap-in takes full blocks still cached on the device instead of copying. */
TEST_F(kv, swap_in_reuses_cached_device_blocks)
{
	struct accel_kv_stats st = { .sz = sizeof(st) };
	uint32_t a, b;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 64, &a, NULL));
	fill_seq(self->kv, a, 4);
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 64, &b, NULL));	/* shares all 4 */
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	EXPECT_EQ(0, st.blocks_in);
	EXPECT_EQ(4, st.blocks_reused);
	EXPECT_EQ(0, check_seq(self->kv, a, 4, 0));
}

TEST_F(kv, windows_on_both_tiers)
{
	uint32_t seq;
	size_t len;
	void *w;
	int i;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 80, &seq, NULL));
	fill_seq(self->kv, seq, 5);
#ifdef KV_CUDA
	EXPECT_EQ(-EOPNOTSUPP, accel_kv_seq_window(self->kv, seq, &w, &len));
#else
	ASSERT_EQ(0, accel_kv_seq_window(self->kv, seq, &w, &len));
	EXPECT_EQ(5 * BB, len);
	for (i = 0; i < 5; i++)
		EXPECT_TRUE(kvt_check((char *)w + i * BB, BB, 5000 + i));
#endif
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, seq, NULL));
	EXPECT_EQ(-EBUSY, accel_kv_seq_window(self->kv, seq, &w, &len));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_seq_window(self->kv, seq, &w, &len));
	for (i = 0; i < 5; i++)
		EXPECT_TRUE(kvt_check((char *)w + i * BB, BB, 5000 + i));
}

/*
 * Blocks of 2 MiB (the GPU's chunk): a device window on either backend,
 * its blocks in sequence order, and a write through it seen in the block.
 */
TEST_F(kv, window_of_large_blocks)
{
	struct accel_kv_config cfg = {
		.sz = sizeof(cfg),
		.block_tokens = BT, .block_bytes = 2u << 20, .device_blocks = 8,
		.host_blocks = 8, .backend = BACKEND,
	};
	struct accel_kv *big = accel_kv_create(self->dev, &cfg);
	uint32_t seq, blocks[4], other;
	unsigned char *w, *b;
	size_t len;
	int i;

	ASSERT_NE(NULL, big);
	/* Another sequence first, so that seq's blocks are not the first ones. */
	ASSERT_EQ(0, accel_kv_seq_create(big, prompt + 9, 2 * BT, &other, NULL));
	ASSERT_EQ(0, accel_kv_seq_create(big, prompt, 3 * BT, &seq, NULL));
	ASSERT_EQ(3, accel_kv_seq_blocks(big, seq, blocks, 4));
	for (i = 0; i < 3; i++)
		memset(accel_kv_block_addr(big, ACCEL_KV_DEVICE, blocks[i]), 'p' + i, 2u << 20);
	ASSERT_EQ(0, accel_kv_seq_window(big, seq, (void **)&w, &len));
	EXPECT_EQ(3 * (2u << 20), len);
	for (i = 0; i < 3; i++)
		EXPECT_EQ('p' + i, w[(size_t)i * (2u << 20) + 12345]);
	w[(2u << 20) + 7] = 'Z';
	b = accel_kv_block_addr(big, ACCEL_KV_DEVICE, blocks[1]);
	EXPECT_EQ('Z', b[7]);
	accel_kv_destroy(big);
}

/* Another process binds a sequence's blocks, from the exported tier, into its own window. */
static int child_reads(int fd, const uint32_t *blocks, int n, uint32_t tag)
{
	struct accel_device *d = accel_device_open(NULL);
	struct accel_region *r = d ? accel_region_import(d, fd) : NULL;
	struct accel_space *s = r ? accel_space_create(d, (uint32_t)n, BB) : NULL;
	struct accel_bind_op ops[16];
	unsigned char *w;
	int i;

	if (!s || n > 16)
		return 1;
	for (i = 0; i < n; i++)
		ops[i] = (struct accel_bind_op) {
			.kind = ACCEL_BIND, .slot = (uint32_t)i, .region = r, .block = blocks[i],
		};
	if (accel_space_bind(s, ops, (uint32_t)n, NULL))
		return 2;
	w = accel_space_map(s, NULL);
	for (i = 0; w && i < n; i++)
		if (!kvt_check(w + (size_t)i * BB, BB, tag * 1000 + (uint32_t)i))
			return 3;
	return w ? 0 : 4;
}

TEST_F(kv, sequence_shared_with_another_process)
{
	uint32_t seq, blocks[16];
	int n, fd, status, tier;
	pid_t pid;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 70, &seq, NULL));
	fill_seq(self->kv, seq, 6);
	for (tier = 0; tier < 2; tier++) {
		if (tier) {
			ASSERT_EQ(0, accel_kv_swap_out(self->kv, seq, NULL));
			ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
			EXPECT_EQ(-EBUSY, accel_kv_seq_blocks(self->kv, seq, blocks, 16));
			n = accel_kv_seq_host_blocks(self->kv, seq, blocks, 16);
		} else {
			EXPECT_EQ(-EBUSY, accel_kv_seq_host_blocks(self->kv, seq, blocks, 16));
			n = accel_kv_seq_blocks(self->kv, seq, blocks, 16);
		}
		ASSERT_EQ(5, n);
		ASSERT_EQ(0, accel_kv_tier_export(self->kv, tier ? ACCEL_KV_HOST : ACCEL_KV_DEVICE,
						  &fd));
#ifdef KV_CUDA
		if (!tier) {
			/* The driver's dma-buf (the fake's stand-in is a memfd): no import here. */
			EXPECT_LT(0, lseek(fd, 0, SEEK_END));
			close(fd);
			continue;
		}
#endif
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(child_reads(fd, blocks, n, 6));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("tier %d: step %d", tier, WEXITSTATUS(status));
		close(fd);
	}
	EXPECT_EQ(-EINVAL, accel_kv_tier_export(self->kv, ACCEL_KV_MOVING, &fd));
}

TEST_F(kv, no_room_changes_nothing)
{
	struct accel_kv_stats st = { .sz = sizeof(st) };
	uint32_t big, other;

	/* 60 of 64 device blocks. */
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 60 * BT, &big, NULL));
	EXPECT_EQ(-ENOSPC, accel_kv_seq_create(self->kv, prompt + 1, 5 * BT, &other, NULL));
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, big, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt + 1, 10 * BT, &other, NULL));
	/* The 60 blocks cannot come back while 10 are taken (and uncached). */
	EXPECT_EQ(-ENOSPC, accel_kv_swap_in(self->kv, big, NULL));
	EXPECT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(self->kv, big));
	ASSERT_EQ(0, accel_kv_seq_free(self->kv, other));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, big, NULL));
	ASSERT_EQ(0, accel_kv_progress(self->kv, -1));
	ASSERT_EQ(0, accel_kv_stats(self->kv, &st));
	EXPECT_EQ(ACCEL_KV_DEVICE, accel_kv_seq_place(self->kv, big));
}

TEST_F(kv, free_and_destroy_while_moving)
{
	uint32_t a, b;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 500, &a, NULL));
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt + 7, 500, &b, NULL));
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, a, NULL));
	ASSERT_EQ(0, accel_kv_swap_out(self->kv, b, NULL));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, a));
	/* b is still moving or done: the teardown waits for it. */
}

#ifdef KV_CUDA
/*
 * The cuda backend orders swaps against the engine's streams: the copies
 * wait for the engine's event (recorded on a stream the fake driver holds
 * back), and the cache records the engine's done event after them.
 */
TEST_F(kv, swap_orders_against_engine_events)
{
	ACCEL_OPTS(accel_kv_swap_opts, o);
	const struct accel_cuda *cu;
	int (*hold)(void *stream, int hold);
	cu_event wait_ev = NULL, done_ev = NULL;
	cu_context ctx = NULL;
	cu_stream engine = NULL;
	cu_device d;
	uint32_t seq;
	char why[160];
	void *lib;
	int err;

	cu = accel_cuda_load(&err, why, sizeof(why));
	ASSERT_NE(NULL, cu) TH_LOG("%s", why);
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	hold = lib ? (int (*)(void *, int))dlsym(lib, "fake_cuda_hold") : NULL;
	if (!hold)
		SKIP(return, "not the fake driver: cannot hold a stream back");
	ASSERT_EQ(0, cu->api.cuDeviceGet(&d, 0));
	ASSERT_EQ(0, cu->api.cuDevicePrimaryCtxRetain(&ctx, d));
	ASSERT_EQ(0, cu->api.cuCtxPushCurrent(ctx));
	ASSERT_EQ(0, cu->api.cuStreamCreate(&engine, CU_STREAM_NON_BLOCKING));
	ASSERT_EQ(0, cu->api.cuEventCreate(&wait_ev, CU_EVENT_DISABLE_TIMING));
	ASSERT_EQ(0, cu->api.cuEventCreate(&done_ev, CU_EVENT_DISABLE_TIMING));

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 64, &seq, NULL));
	ASSERT_EQ(4, fill_seq(self->kv, seq, 5));
	/* The engine's last writes: an event on a stream that does not run yet. */
	ASSERT_EQ(0, hold(engine, 1));
	ASSERT_EQ(0, cu->api.cuEventRecord(wait_ev, engine));
	o.cuda_wait_event = wait_ev;
	o.cuda_done_event = done_ev;
	ASSERT_EQ(0, accel_kv_swap_out_opts(self->kv, seq, &o, NULL));
	EXPECT_EQ(1, accel_kv_progress(self->kv, 20 * 1000000LL));
	EXPECT_NE(0, cu->api.cuEventQuery(done_ev));	/* not before the copies */
	ASSERT_EQ(0, hold(engine, 0));
	EXPECT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(0, cu->api.cuEventQuery(done_ev));
	EXPECT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(self->kv, seq));
	ASSERT_EQ(0, accel_kv_swap_in(self->kv, seq, NULL));
	EXPECT_EQ(0, accel_kv_progress(self->kv, -1));
	EXPECT_EQ(0, check_seq(self->kv, seq, 5, 0));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, seq));

	cu->api.cuEventDestroy(wait_ev);
	cu->api.cuEventDestroy(done_ev);
	cu->api.cuStreamDestroy(engine);
	cu->api.cuCtxPopCurrent(NULL);
	cu->api.cuDevicePrimaryCtxRelease(d);
	dlclose(lib);
}
#else
/* Other backends have no CUDA events to order against. */
TEST_F(kv, swap_refuses_cuda_events)
{
	ACCEL_OPTS(accel_kv_swap_opts, o, .cuda_done_event = (void *)1);
	uint32_t seq;

	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 32, &seq, NULL));
	EXPECT_EQ(-EOPNOTSUPP, accel_kv_swap_out_opts(self->kv, seq, &o, NULL));
	EXPECT_EQ(ACCEL_KV_DEVICE, accel_kv_seq_place(self->kv, seq));
	EXPECT_EQ(0, accel_kv_seq_free(self->kv, seq));
}
#endif

TEST(kv_bad_arguments)
{
	struct accel_device *dev = accel_device_open(NULL);
	struct accel_kv_config cfg = {
		.sz = sizeof(cfg),
		.block_tokens = 16, .block_bytes = 16384, .device_blocks = 4, .host_blocks = 4,
	};
	uint32_t seq;

	ASSERT_NE(NULL, dev);
	cfg.block_bytes = 3000;
	EXPECT_EQ(NULL, accel_kv_create(dev, &cfg));
	EXPECT_EQ(EINVAL, errno);
	cfg.block_bytes = 16384;
#ifndef KV_CUDA
	/* No CUDA driver in the VM: the cuda backend says so. */
	cfg.backend = "cuda";
	accel_set_log(log_cb, NULL, ACCEL_LOG_ERR);
	EXPECT_EQ(NULL, accel_kv_create(dev, &cfg));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_NE(NULL, strstr(last_log, "no CUDA driver")) TH_LOG("%s", last_log);
	cfg.backend = "cuda:1";
	EXPECT_EQ(NULL, accel_kv_create(dev, &cfg));
	EXPECT_EQ(ENODEV, errno);
	accel_set_log(NULL, NULL, ACCEL_LOG_ERR);
#else
	/* The fake has two GPUs: the second one, and one it does not have. */
	cfg.backend = "cuda:1";
	{
		struct accel_kv *kv1 = accel_kv_create(dev, &cfg);

		ASSERT_NE(NULL, kv1);
		EXPECT_EQ(0, accel_kv_seq_create(kv1, prompt, 40, &seq, NULL));
		EXPECT_EQ(0, accel_kv_swap_out(kv1, seq, NULL));
		EXPECT_EQ(0, accel_kv_progress(kv1, -1));
		EXPECT_EQ(ACCEL_KV_HOST, accel_kv_seq_place(kv1, seq));
		accel_kv_destroy(kv1);
	}
	cfg.backend = "cuda:7";
	accel_set_log(log_cb, NULL, ACCEL_LOG_ERR);
	EXPECT_EQ(NULL, accel_kv_create(dev, &cfg));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_NE(NULL, strstr(last_log, "no CUDA device 7")) TH_LOG("%s", last_log);
	accel_set_log(NULL, NULL, ACCEL_LOG_ERR);
#endif
	{
		static const char *const bad[] = { "tpu", "cuda:", "cuda:x", "cuda:1x",
						   "cuda:-1", "cuda:+1", "cuda:99999999999",
						   "cuda1", "CUDA", "" };
		unsigned int i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cfg.backend = bad[i];
			EXPECT_EQ(NULL, accel_kv_create(dev, &cfg)) TH_LOG("%s", bad[i]);
			EXPECT_EQ(EINVAL, errno) TH_LOG("%s", bad[i]);
		}
	}
	cfg.backend = NULL;
	cfg.device_blocks = 0;
	EXPECT_EQ(NULL, accel_kv_create(dev, &cfg));
	EXPECT_EQ(NULL, accel_kv_create(NULL, &cfg));
	EXPECT_EQ(-EINVAL, accel_kv_seq_create(NULL, prompt, 1, &seq, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_progress(NULL, 0));
	EXPECT_EQ(-EINVAL, accel_kv_stats(NULL, NULL));
	EXPECT_EQ(NULL, accel_kv_block_addr(NULL, ACCEL_KV_DEVICE, 0));
	EXPECT_EQ(-EINVAL, accel_kv_seq_append(NULL, 0, prompt, 1));
	EXPECT_EQ(-EINVAL, accel_kv_seq_fork(NULL, 0, &seq));
	EXPECT_EQ(-EINVAL, accel_kv_seq_free(NULL, 0));
	EXPECT_EQ(-EINVAL, accel_kv_seq_blocks(NULL, 0, NULL, 0));
	EXPECT_EQ(-EINVAL, accel_kv_seq_place(NULL, 0));
	EXPECT_EQ(-EINVAL, accel_kv_swap_out(NULL, 0, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_swap_in(NULL, 0, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_tier_export(NULL, ACCEL_KV_DEVICE, NULL));
	accel_kv_destroy(NULL);
	accel_device_close(dev);
}

/* Unknown sequence ids, bad tiers and blocks, NULL outputs: errors, no crash. */
TEST_F(kv, bad_ids_and_outputs)
{
	uint64_t t;
	uint32_t seq, child;
	void *w;

	EXPECT_EQ(-ENOENT, accel_kv_seq_append(self->kv, 5, prompt, 1));
	EXPECT_EQ(-ENOENT, accel_kv_seq_fork(self->kv, 5, &child));
	EXPECT_EQ(-ENOENT, accel_kv_swap_out(self->kv, 5, NULL));
	EXPECT_EQ(-ENOENT, accel_kv_swap_in(self->kv, 5, NULL));
	EXPECT_EQ(-ENOENT, accel_kv_seq_tokens(self->kv, 5, &t));
	EXPECT_EQ(-ENOENT, accel_kv_seq_place(self->kv, 5));
	EXPECT_EQ(-ENOENT, accel_kv_seq_window(self->kv, 5, &w, NULL));
	EXPECT_EQ(-ENOENT, accel_kv_seq_free(self->kv, 0xffffffffu));
	EXPECT_EQ(-EINVAL, accel_kv_seq_create(self->kv, NULL, 3, &seq, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_seq_create(self->kv, prompt, 3, NULL, NULL));
	ASSERT_EQ(0, accel_kv_seq_create(self->kv, prompt, 3, &seq, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_seq_append(self->kv, seq, NULL, 2));
	EXPECT_EQ(-EINVAL, accel_kv_seq_fork(self->kv, seq, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_seq_tokens(self->kv, seq, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_seq_window(self->kv, seq, NULL, NULL));
	EXPECT_EQ(-EINVAL, accel_kv_seq_blocks(self->kv, seq, NULL, 4));
	EXPECT_EQ(-EBUSY, accel_kv_swap_in(self->kv, seq, NULL));	/* on the device */
	errno = 0;
	EXPECT_EQ(NULL, accel_kv_block_addr(self->kv, ACCEL_KV_DEVICE, 64));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_kv_block_addr(self->kv, ACCEL_KV_MOVING, 0));
	EXPECT_EQ(-EINVAL, accel_kv_progress(self->kv, -2));
	EXPECT_EQ(0, accel_kv_progress(self->kv, 0));
}

TEST_HARNESS_MAIN
