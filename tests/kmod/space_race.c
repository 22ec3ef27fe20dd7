// SPDX-License-Identifier: GPL-2.0-only
/*
 * Races between binding and reading:
 *  - a process rebinds slots in a loop (batches of moves, swaps, binds and
 *    unbinds that keep every block bound at most once) while another reads
 *    through its own mapping with the generation protocol and checks each
 *    block's tag: no inconsistent view may ever be accepted;
 *  - faults racing unbinds of blocks whose region dies with the unbind: a
 *    read that starts after an unbind returned must never see that block
 *    (on the debug kernel, a use-after-free here would also show in KASAN
 *    or the page allocator's checks).
 */
#include <sched.h>

#include "kvtest.h"
#include "kselftest_harness.h"

#define BS	(64 * 1024)
#define SLOTS	8
#define POOL	16

struct race_shared {
	volatile uint32_t stop;
	volatile uint32_t accepted, retried, bad;
	volatile uint64_t unbound_upto;	/* tags <= this are unbound for good */
	volatile uint32_t stale;
};

static uint32_t pool_tag(uint32_t b)
{
	return 0x51000000u + b;
}

static void reader(volatile unsigned char *win, struct race_shared *sh)
{
	volatile struct drm_kvaccel_space_control *ctl = (void *)(win + SLOTS * BS);

	while (!sh->stop) {
		uint64_t g1 = __atomic_load_n(&ctl->generation, __ATOMIC_ACQUIRE), g2;
		uint32_t tags[SLOTS], i, j;
		int empty = 0, torn = 0;

		if (g1 & 1) {
			sh->retried++;
			continue;
		}
		for (i = 0; i < SLOTS; i++) {
			long long t = kvt_tag_or_bus(win + i * BS, BS);

			tags[i] = t < 0 ? 0 : t;
			if (t < 0)
				empty++;
			else if (!t)
				torn++;
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(&ctl->generation, __ATOMIC_RELAXED);
		if (g1 != g2) {
			sh->retried++;
			continue;
		}
		/* A stable view: whole blocks, each bound once. */
		if (torn)
			sh->bad++;
		for (i = 0; i < SLOTS; i++)
			for (j = i + 1; j < SLOTS; j++)
				if (tags[i] && tags[i] == tags[j])
					sh->bad++;
		(void)empty;
		sh->accepted++;
	}
}

TEST(rebind_loop_vs_generation_reader)
{
	struct race_shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = kvt_open(), status, owner[POOL], i, iter;
	uint32_t pool, space, where[POOL];
	unsigned char *win;
	size_t map_size;
	void *p;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kvt_region_create(fd, POOL * BS, BS, &pool));
	p = kvt_region_map(fd, pool, POOL * BS);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < POOL; i++)
		kvt_tag_fill((char *)p + i * BS, BS, pool_tag(i));
	munmap(p, POOL * BS);
	ASSERT_EQ(0, kvt_space_create(fd, SLOTS, BS, &space));
	win = kvt_space_map(fd, space, &map_size);
	ASSERT_NE(MAP_FAILED, win);

	/* slot -> block (or -1) and block -> slot (or -1) */
	for (i = 0; i < POOL; i++)
		where[i] = ~0u;
	for (i = 0; i < SLOTS; i++) {
		ASSERT_EQ(0, kvt_bind1(fd, space, kvt_op_bind(i, pool, i)));
		owner[i] = i;
		where[i] = i;
	}

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		reader(win, sh);
		_exit(0);
	}
	srand(1234);
	for (iter = 0; iter < 1500; iter++) {
		struct drm_kvaccel_bind_op ops[2];
		uint32_t a = rand() % SLOTS, b = rand() % SLOTS, blk = rand() % POOL;
		int n = 0;

		switch (rand() % 4) {
		case 0:	/* swap two slots */
			if (a == b)
				continue;
			ops[n++] = kvt_op(KVACCEL_BIND_OP_SWAP, a, b);
			i = owner[a]; owner[a] = owner[b]; owner[b] = i;
			break;
		case 1:	/* move a bound slot onto another, freeing the target's block */
			if (a == b || owner[a] < 0)
				continue;
			ops[n++] = kvt_op(KVACCEL_BIND_OP_MOVE, a, b);
			owner[b] = owner[a];
			owner[a] = -1;
			break;
		case 2:	/* bind a free block */
			if (where[blk] != ~0u)
				continue;
			ops[n++] = kvt_op_bind(a, pool, blk);
			owner[a] = blk;
			break;
		default: /* unbind */
			if (owner[a] < 0)
				continue;
			ops[n++] = kvt_op(KVACCEL_BIND_OP_UNBIND, a, 0);
			owner[a] = -1;
			break;
		}
		ASSERT_EQ(0, kvt_space_bind(fd, space, ops, n, NULL));
		for (i = 0; i < POOL; i++)
			where[i] = ~0u;
		for (i = 0; i < SLOTS; i++)
			if (owner[i] >= 0)
				where[owner[i]] = i;
	}
	/*
	 * The reader must also get views of the final, stable state. A view
	 * reads 8 blocks, faulting each in again and taking SIGBUS on the
	 * empty ones: on the debug kernel under emulation that can take
	 * seconds, so allow a minute (the loop ends at the 10th view).
	 */
	for (iter = 0; iter < 6000 && sh->accepted < 10; iter++)
		usleep(10000);
	sh->stop = 1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("reader: %u views accepted, %u retried, %u inconsistent",
	       sh->accepted, sh->retried, sh->bad);
	EXPECT_LT(0, sh->accepted);
	EXPECT_EQ(0, sh->bad);
	munmap(win, map_size);
	close(fd);
}

/*
 * Each round: create a region tagged with the round number, bind it to
 * slot 0, close its handle (the binding alone keeps it alive), unbind it
 * (which frees it), publish the round as unbound. The reader notes the
 * published round, then reads slot 0: it may see SIGBUS or a newer round,
 * never a round published as unbound before the read began. At least 400
 * rounds, and more (up to RACE_ROUNDS_MAX) until the reader has read a
 * bound block at least once: on a loaded machine it may not run at all
 * while the first 400 are bound.
 */
#define RACE_ROUNDS_MIN	400
#define RACE_ROUNDS_MAX	40000
TEST(fault_races_unbind_of_dying_region)
{
	struct race_shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = kvt_open(), status;
	uint64_t u0, p0;
	uint32_t space, round;
	unsigned char *win;
	size_t map_size;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, sh);
	ASSERT_LE(0, fd);
	u0 = kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE);
	p0 = kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD);
	ASSERT_EQ(0, kvt_space_create(fd, SLOTS, BS, &space));
	win = kvt_space_map(fd, space, &map_size);
	ASSERT_NE(MAP_FAILED, win);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		while (!sh->stop) {
			uint64_t done = __atomic_load_n(&sh->unbound_upto, __ATOMIC_SEQ_CST);
			long long v = kvt_read_or_bus((const volatile uint32_t *)(win + 512));

			if (v < 0) {
				sh->retried++;
				continue;
			}
			sh->accepted++;
			/*
			 * Every bound block was filled before it was bound: a
			 * zero or foreign word is a mapping of a freed page.
			 */
			if (v < 0x10001 || v > 0x10000 + RACE_ROUNDS_MAX ||
			    (uint64_t)(v - 0x10000) <= done)
				sh->stale++;
		}
		_exit(0);
	}
	for (round = 1; round <= RACE_ROUNDS_MIN ||
	     (!__atomic_load_n(&sh->accepted, __ATOMIC_SEQ_CST) && round <= RACE_ROUNDS_MAX);
	     round++) {
		uint32_t r;
		void *m;

		ASSERT_EQ(0, kvt_region_create(fd, BS, BS, &r));
		m = kvt_region_map(fd, r, BS);
		ASSERT_NE(MAP_FAILED, m);
		kvt_tag_fill(m, BS, 0x10000 + round);
		munmap(m, BS);
		ASSERT_EQ(0, kvt_bind1(fd, space, kvt_op_bind(0, r, 0)));
		ASSERT_EQ(0, kvt_close_handle(fd, r));
		sched_yield();	/* let the reader see it bound */
		ASSERT_EQ(0, kvt_bind1(fd, space, kvt_op(KVACCEL_BIND_OP_UNBIND, 0, 0)));
		__atomic_store_n(&sh->unbound_upto, round, __ATOMIC_SEQ_CST);
	}
	sh->stop = 1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("reader: %u reads of a bound block, %u SIGBUS, %u stale",
	       sh->accepted, sh->retried, sh->stale);
	EXPECT_EQ(0, sh->stale);
	EXPECT_LT(0, sh->accepted);
	munmap(win, map_size);
	EXPECT_EQ(u0, kvt_param_or_die(fd, KVACCEL_PARAM_DEVICE_USAGE));
	EXPECT_EQ(p0, kvt_param_or_die(fd, KVACCEL_PARAM_PAGES_HELD));
	close(fd);
}

TEST_HARNESS_MAIN
