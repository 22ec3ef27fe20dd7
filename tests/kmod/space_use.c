// SPDX-License-Identifier: GPL-2.0-only
/*
 * The three ways serving engines use spaces, end to end:
 *  1. a request's KV window that is virtually contiguous and grows one
 *     block at a time as tokens arrive (vAttention, on host memory);
 *  2. handing a request's KV blocks to another engine process without
 *     copying a byte (prefill -> decode, live migration on one node);
 *  3. swapping two MoE experts' weight slots while readers keep running
 *     (ElasticMoE), readers using the generation number.
 */
#include "kvtest.h"
#include "kselftest_harness.h"

#define KV_BLOCK	(64 * 1024)
#define KV_BLOCKS	32
#define TOKEN_BYTES	96	/* not a divisor of the block: tokens straddle blocks */

static void token(unsigned char *out, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < TOKEN_BYTES; i++)
		out[i] = (unsigned char)(n * 31 + i);
}

/* 1. The window grows one block at a time; tokens cross block borders. */
TEST(kv_window_grows)
{
	uint32_t pool, space, next_block = 0, bound = 0, n;
	size_t map_size, cap = (size_t)KV_BLOCKS * KV_BLOCK;
	unsigned char *win, t[TOKEN_BYTES];
	uint32_t ntokens = cap / TOKEN_BYTES;
	int fd = kvt_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, cap, KV_BLOCK, &pool));
	ASSERT_EQ(0, kvt_space_create(fd, KV_BLOCKS, KV_BLOCK, &space));
	win = kvt_space_map(fd, space, &map_size);
	ASSERT_NE(MAP_FAILED, win);

	for (n = 0; n < ntokens; n++) {
		size_t end = (size_t)(n + 1) * TOKEN_BYTES;

		/* Grow on demand: bind the next free pool block (scattered order). */
		while (end > (size_t)bound * KV_BLOCK) {
			uint32_t blk = (next_block * 7) % KV_BLOCKS;

			ASSERT_EQ(0, kvt_bind1(fd, space, kvt_op_bind(bound, pool, blk)));
			next_block++;
			bound++;
		}
		token(t, n);
		memcpy(win + (size_t)n * TOKEN_BYTES, t, TOKEN_BYTES);
	}
	EXPECT_EQ(KV_BLOCKS, bound);
	/* One contiguous read of the whole window sees every token in order. */
	for (n = 0; n < ntokens; n++) {
		token(t, n);
		ASSERT_EQ(0, memcmp(win + (size_t)n * TOKEN_BYTES, t, TOKEN_BYTES))
			TH_LOG("token %u", n);
	}
	munmap(win, map_size);
	close(fd);
}

/*
 * 2. Prefill builds a request's KV in its space and hands the blocks to
 * decode: decode imports the region, binds the same blocks into its own
 * space, acknowledges, and only then does prefill close its handles.
 * Nothing is copied: decode's writes appear in prefill's mapping.
 */
TEST(kv_handoff_between_processes)
{
	uint32_t order[8] = { 9, 3, 14, 0, 7, 1, 12, 5 };
	int sv[2], fd = kvt_open(), dmabuf, status;
	struct drm_kvaccel_bind_op ops[8];
	uint32_t region, space, i;
	uint64_t u0, p0;
	unsigned char *win;
	size_t map_size;
	char ack;
	pid_t pid;

	ASSERT_LE(0, fd);
	u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	p0 = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* decode engine */
		int dfd = kvt_open(), buf = kvt_recv_fd(sv[1]);
		uint32_t r, s, order[8];
		unsigned char *w;

		if (dfd < 0 || buf < 0 || kvt_import(dfd, buf, &r))
			_exit(1);
		close(buf);
		if (read(sv[1], order, sizeof(order)) != sizeof(order))
			_exit(2);
		if (kvt_space_create(dfd, 16, KV_BLOCK, &s))
			_exit(3);
		for (i = 0; i < 8; i++)
			if (kvt_bind1(dfd, s, kvt_op_bind(i, r, order[i])))
				_exit(4);
		/* Took the blocks: tell prefill it may let go. */
		if (write(sv[1], "k", 1) != 1)
			_exit(5);
		w = kvt_space_map(dfd, s, NULL);
		if (w == MAP_FAILED)
			_exit(6);
		for (i = 0; i < 8 * KV_BLOCK; i += 4096)
			if (w[i] != (unsigned char)(i / KV_BLOCK + 1))
				_exit(7);
		/* Decode appends to the request's KV. */
		memset(w + 8 * KV_BLOCK - 100, 0xdd, 100);
		if (write(sv[1], "d", 1) != 1 || read(sv[1], &ack, 1) != 1)
			_exit(8);
		_exit(0);
	}
	/* prefill engine */
	ASSERT_EQ(0, kvt_region_create(fd, 16 * KV_BLOCK, KV_BLOCK, &region));
	ASSERT_EQ(0, kvt_space_create(fd, 8, KV_BLOCK, &space));
	for (i = 0; i < 8; i++)
		ops[i] = kvt_op_bind(i, region, order[i]);
	ASSERT_EQ(0, kvt_space_bind(fd, space, ops, 8, NULL));
	win = kvt_space_map(fd, space, &map_size);
	ASSERT_NE(MAP_FAILED, win);
	for (i = 0; i < 8; i++)
		memset(win + i * KV_BLOCK, i + 1, KV_BLOCK);
	ASSERT_EQ(0, kvt_export(fd, region, &dmabuf));
	ASSERT_EQ(0, kvt_send_fd(sv[0], dmabuf));
	close(dmabuf);
	ASSERT_EQ(sizeof(order), write(sv[0], order, sizeof(order)));
	ASSERT_EQ(1, read(sv[0], &ack, 1));
	/* The receiver holds the blocks: the sender lets go of its handles. */
	ASSERT_EQ(0, kvt_close_handle(fd, region));
	ASSERT_EQ(0, kvt_close_handle(fd, space));
	ASSERT_EQ(1, read(sv[0], &ack, 1));
	/* Prefill's (still mapped) window shows decode's write: same pages. */
	EXPECT_EQ(0xdd, win[8 * KV_BLOCK - 1]);
	munmap(win, map_size);
	/* Still charged to prefill, which created it, while decode holds it. */
	EXPECT_EQ(u0 + 16 * KV_BLOCK, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	ASSERT_EQ(1, write(sv[0], "q", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

/*
 * 3. Two experts' weights swap slots while a reader keeps reading them.
 * The reader takes a view only when the generation was even and unchanged
 * across its reads; every such view must show both experts whole and
 * distinct. Views that raced a swap are retried, never accepted.
 */
struct expert_stats {
	volatile uint32_t stop;
	volatile uint32_t accepted, retried, bad;
};

#define EXPERT	(2u << 20)

TEST(expert_swap_with_readers)
{
	struct expert_stats *st = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = kvt_open(), status, i;
	struct drm_kvaccel_bind_op ops[2];
	uint32_t experts, space;
	unsigned char *win;
	size_t map_size;
	void *e;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, st);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, 2 * EXPERT, EXPERT, &experts));
	e = kvt_region_map(fd, experts, 2 * EXPERT);
	ASSERT_NE(MAP_FAILED, e);
	kvt_tag_fill(e, EXPERT, 0xe0e0e0e0);
	kvt_tag_fill((char *)e + EXPERT, EXPERT, 0xe1e1e1e1);
	munmap(e, 2 * EXPERT);
	ASSERT_EQ(0, kvt_space_create(fd, 2, EXPERT, &space));
	ops[0] = kvt_op_bind(0, experts, 0);
	ops[1] = kvt_op_bind(1, experts, 1);
	ASSERT_EQ(0, kvt_space_bind(fd, space, ops, 2, NULL));
	win = kvt_space_map(fd, space, &map_size);
	ASSERT_NE(MAP_FAILED, win);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		volatile struct drm_kvaccel_space_control *ctl =
			(void *)(win + 2 * EXPERT);

		while (!st->stop) {
			uint64_t g1 = __atomic_load_n(&ctl->generation, __ATOMIC_ACQUIRE), g2;
			uint32_t a, b;

			if (g1 & 1) {
				st->retried++;
				continue;
			}
			a = kvt_tag_of(win, EXPERT);
			b = kvt_tag_of(win + EXPERT, EXPERT);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			g2 = __atomic_load_n(&ctl->generation, __ATOMIC_RELAXED);
			if (g1 != g2) {
				st->retried++;
				continue;
			}
			if (!a || !b || a == b)
				st->bad++;
			st->accepted++;
		}
		_exit(0);
	}
	for (i = 0; i < 300; i++) {
		ASSERT_EQ(0, kvt_bind1(fd, space, kvt_op(KVACCEL_BIND_OP_SWAP, 0, 1)));
		/* Pauses give the reader stable windows (emulation is slow). */
		if (i % 8 == 0)
			usleep(20000);
	}
	/* Let the reader see the final, stable state too. */
	for (i = 0; i < 500 && !st->accepted; i++)
		usleep(10000);
	st->stop = 1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("reader: %u views accepted, %u retried, %u inconsistent",
	       st->accepted, st->retried, st->bad);
	EXPECT_LT(0, st->accepted);
	EXPECT_EQ(0, st->bad);
	munmap(win, map_size);
	close(fd);
}

TEST_HARNESS_MAIN
