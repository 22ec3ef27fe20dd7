// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native tests (cmocka, ASan/UBSan) of the memfd tier and the data mover:
 * tier shapes and argument checks, scattered runs between two tiers and
 * within one checked byte for byte, a block manager's move plan executed,
 * many jobs from several threads, poll ordering, timeouts and the eventfd
 * (readable exactly while finished jobs wait to be polled), bad runs;
 * layer pieces of memfd tiers (info, a layer-wise copy); device tiers
 * without a CUDA driver (ENODEV).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel.h"

enum { BB = 16384, NB = 64 };

static struct accel_tier *mk(uint64_t bb, uint32_t n)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb, .blocks = n);
	struct accel_tier *t = accel_tier_create_memfd(&o);

	assert_non_null(t);
	return t;
}

static unsigned char pat(uint32_t tier, uint32_t block, size_t off)
{
	return (unsigned char)(tier * 131 + block * 31 + off * 7 + (off >> 8));
}

static void fill(struct accel_tier *t, uint32_t tier, uint32_t n, size_t bb)
{
	uint32_t b;
	size_t i;

	for (b = 0; b < n; b++) {
		unsigned char *p = accel_tier_block_addr(t, b);

		assert_non_null(p);
		for (i = 0; i < bb; i++)
			p[i] = pat(tier, b, i);
	}
}

static void check_block(const struct accel_tier *t, uint32_t b, uint32_t src_tier, uint32_t src_b,
			size_t bb)
{
	unsigned char *p = accel_tier_block_addr(t, b);
	size_t i;

	for (i = 0; i < bb; i++)
		if (p[i] != pat(src_tier, src_b, i))
			fail_msg("block %u byte %zu: %u, want %u (from %u/%u)", b, i, p[i],
				 pat(src_tier, src_b, i), src_tier, src_b);
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_tier_shapes(void **state)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = 5 << 20, .blocks = 3);
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_tier *t;
	char *p;
	int fd;

	(void)state;
	t = accel_tier_create_memfd(&o);
	assert_non_null(t);
	assert_int_equal(0, accel_tier_info(t, &info));
	assert_int_equal(ACCEL_TIER_MEMFD, info.kind);
	assert_int_equal(3, info.blocks);
	assert_int_equal(5 << 20, info.block_bytes);
	assert_int_equal(0, info.region_block_bytes);
	p = accel_tier_block_addr(t, 2);
	assert_ptr_equal(p, (char *)accel_tier_block_addr(t, 0) + 2 * (5 << 20));
	memset(p, 0x5a, 5 << 20);
	assert_null(accel_tier_block_addr(t, 3));
	assert_int_equal(EINVAL, errno);
	/* Its memfd, shared: another mapping sees the same bytes. */
	assert_int_equal(0, accel_tier_export(t, &fd));
	{
		unsigned char *q = mmap(NULL, 15 << 20, PROT_READ, MAP_SHARED, fd, 0);

		assert_true(q != MAP_FAILED);
		assert_int_equal(0x5a, q[(10 << 20) + 12345]);
		munmap(q, 15 << 20);
	}
	close(fd);
	accel_tier_destroy(t);
	accel_tier_destroy(NULL);

	/* The largest block. */
	o.block_bytes = ACCEL_TIER_BLOCK_MAX;
	o.blocks = 1;
	t = accel_tier_create_memfd(&o);
	assert_non_null(t);
	accel_tier_destroy(t);
}

static void test_tier_bad(void **state)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = BB, .blocks = 4);
	struct {
		struct accel_tier_opts o;
		uint64_t extra;
	} big = { .o = o, .extra = 1 };
	ACCEL_OPTS(accel_tier_info, info);
	int fd;

	(void)state;
	errno = 0;
	assert_null(accel_tier_create_memfd(NULL));
	assert_int_equal(EINVAL, errno);
	o.block_bytes = 4096 + 512;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.block_bytes = ACCEL_TIER_BLOCK_MAX + 4096;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.block_bytes = 0;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.block_bytes = BB;
	o.blocks = 0;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.blocks = 4;
	o.flags = ACCEL_TIER_ON_NODE;	/* no placement without a region */
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.flags = 1u << 7;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	o.flags = 0;
	big.o.sz = sizeof(big);
	assert_null(accel_tier_create_memfd(&big.o));
	assert_int_equal(E2BIG, errno);
	o.sz = 2;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	/* A host tier needs a device. */
	o.sz = sizeof(o);
	assert_null(accel_tier_create_host(NULL, &o));
	assert_int_equal(EINVAL, errno);

	assert_null(accel_tier_block_addr(NULL, 0));
	assert_int_equal(-EINVAL, accel_tier_info(NULL, &info));
	assert_int_equal(-EINVAL, accel_tier_export(NULL, &fd));
}

static struct accel_mover *mover(void)
{
	struct accel_mover *m = accel_mover_create(NULL);

	assert_non_null(m);
	return m;
}

static struct accel_mover_done wait_one(struct accel_mover *m)
{
	struct accel_mover_done d[2];

	assert_int_equal(1, accel_mover_poll(m, d, 1, 10 * 1000000000ll));
	return d[0];
}

/* Scattered runs both ways between two tiers, and within one. */
static void test_scattered(void **state)
{
	struct accel_tier *a = mk(BB, NB), *b = mk(BB, NB);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run runs[] = {
		{ 0, 3, 1, 60, 1 }, { 0, 10, 1, 0, 4 }, { 0, 40, 1, 20, 7 },
		{ 1, 50, 0, 0, 2 }, { 0, 30, 0, 61, 3 },
	};
	ACCEL_OPTS(accel_mover_submit_opts, so, .user_data = 0xfeedull);
	struct accel_mover *m = mover();
	struct accel_mover_done d;
	uint64_t id = 0;
	uint32_t i, k;

	(void)state;
	fill(a, 0, NB, BB);
	fill(b, 1, NB, BB);
	assert_int_equal(0, accel_mover_submit(m, tiers, 2, runs, 5, &so, &id));
	assert_true(id != 0);
	d = wait_one(m);
	assert_int_equal(id, d.job_id);
	assert_int_equal(0xfeed, d.user_data);
	assert_int_equal(0, d.status);
	assert_int_equal(0, accel_mover_pending(m));
	for (i = 0; i < 5; i++)
		for (k = 0; k < runs[i].count; k++)
			check_block(tiers[runs[i].dst_tier], runs[i].dst_block + k,
				    runs[i].src_tier, runs[i].src_block + k, BB);
	/* Untouched blocks stay as they were. */
	check_block(b, 59, 1, 59, BB);
	check_block(b, 4, 1, 4, BB);
	check_block(a, 2, 0, 2, BB);
	accel_mover_destroy(m);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/* A block manager's move plan, executed and completed. */
static void test_bm_plan(void **state)
{
	enum { BT = 4, NT = 37 * BT + 1 };
	uint32_t blocks[2] = { 48, 48 };
	ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = BT, .nr_tiers = 2, .tier_blocks = blocks);
	ACCEL_OPTS(accel_bm_seq_opts, sopts);
	struct accel_bm_run runs[64];
	ACCEL_OPTS(accel_bm_plan, plan, .runs = runs, .max_runs = 64);
	struct accel_tier *t0 = mk(BB, 48), *t1 = mk(BB, 48);
	const struct accel_tier *tiers[2] = { t0, t1 };
	struct accel_mover *m = mover();
	struct accel_bm *bm = accel_bm_create(&cfg);
	uint32_t seq, s2, ids0[48], ids1[48], off[2], i;
	int32_t tok[NT];
	uint64_t id;
	struct accel_mover_done d;
	int nb;

	(void)state;
	assert_non_null(bm);
	for (i = 0; i < NT; i++)
		tok[i] = (int32_t)i;
	/* Scatter the tier-0 blocks: another sequence takes some first. */
	assert_int_equal(0, accel_bm_seq_create(bm, &sopts, &s2));
	assert_int_equal(0, accel_bm_seq_start(bm, s2, tok, 5 * BT, NULL, NULL));
	assert_int_equal(0, accel_bm_seq_create(bm, &sopts, &seq));
	assert_int_equal(0, accel_bm_seq_start(bm, seq, tok, NT, NULL, NULL));
	nb = accel_bm_block_tables(bm, &seq, 1, off, ids0, 48, NULL);
	assert_int_equal(38, nb);
	fill(t0, 0, 48, BB);
	assert_int_equal(0, accel_bm_seq_move(bm, seq, 1, &plan));
	assert_true(plan.id != 0);
	assert_true(plan.nr_runs <= 64);
	assert_int_equal(0, accel_mover_submit(m, tiers, 2, runs, plan.nr_runs, NULL, &id));
	d = wait_one(m);
	assert_int_equal(id, d.job_id);
	assert_int_equal(0, d.status);
	assert_int_equal(0, accel_bm_plan_done(bm, plan.id, d.status));
	assert_int_equal(38, accel_bm_block_tables(bm, &seq, 1, off, ids1, 48, NULL));
	for (i = 0; i < 38; i++)
		check_block(t1, ids1[i], 0, ids0[i], BB);
	accel_bm_destroy(bm);
	accel_mover_destroy(m);
	accel_tier_destroy(t0);
	accel_tier_destroy(t1);
}

/* The eventfd is readable exactly while finished jobs wait to be polled. */
static void test_poll_fd(void **state)
{
	struct accel_tier *a = mk(4096, 8), *b = mk(4096, 8);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_bm_run r = { 0, 0, 1, 0, 8 };
	struct accel_mover *m = mover();
	struct accel_mover_done d[8];
	uint64_t ids[5];
	int fd = accel_mover_fd(m), i, got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	(void)state;
	assert_true(fd >= 0);
	assert_false(fd_readable(fd));
	/* Nothing finished: poll returns 0, at once or after its timeout. */
	assert_int_equal(0, accel_mover_poll(m, d, 8, 0));
	assert_int_equal(0, accel_mover_poll(m, d, 8, 2000000));
	for (i = 0; i < 5; i++)
		assert_int_equal(0, accel_mover_submit(m, tiers, 2, &r, 1, NULL, &ids[i]));
	for (i = 1; i < 5; i++)
		assert_true(ids[i] > ids[i - 1]);
	assert_int_equal(1, poll(&p, 1, 10000));
	/* Wait for all five, then take them two at a time, oldest first. */
	while (accel_mover_pending(m))
		usleep(1000);
	assert_true(fd_readable(fd));
	while (got < 5) {
		int n = accel_mover_poll(m, d, 2, 0);

		assert_true(n >= 1 && n <= 2);
		for (i = 0; i < n; i++) {
			assert_int_equal(ids[got + i], d[i].job_id);
			assert_int_equal(0, d[i].status);
		}
		got += n;
		assert_int_equal(got < 5, fd_readable(fd));
	}
	assert_int_equal(0, accel_mover_poll(m, d, 8, 0));
	/* An empty job finishes at once. */
	assert_int_equal(0, accel_mover_submit(m, tiers, 2, NULL, 0, NULL, &ids[0]));
	assert_true(ids[0] > ids[4]);
	assert_int_equal(1, accel_mover_poll(m, d, 8, -1));
	assert_int_equal(ids[0], d[0].job_id);
	assert_false(fd_readable(fd));
	/* Destroying with jobs not yet polled frees them. */
	assert_int_equal(0, accel_mover_submit(m, tiers, 2, &r, 1, NULL, &ids[0]));
	accel_mover_destroy(m);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

struct thr {
	struct accel_mover *m;
	const struct accel_tier **tiers;
	uint32_t base;
	uint64_t ids[32];
};

static void *submitter(void *arg)
{
	struct thr *t = arg;
	uint32_t i;

	for (i = 0; i < 32; i++) {
		struct accel_bm_run r = { 0, t->base + i, 1, t->base + i, 1 };

		if (accel_mover_submit(t->m, t->tiers, 2, &r, 1, NULL, &t->ids[i]))
			return (void *)1;
	}
	return NULL;
}

/* Four threads submitting, the main thread polling: every id once. */
static void test_threads(void **state)
{
	struct accel_tier *a = mk(4096, 128), *b = mk(4096, 128);
	const struct accel_tier *tiers[2] = { a, b };
	struct accel_mover *m = mover();
	struct accel_mover_done d[16];
	pthread_t th[4];
	struct thr t[4];
	uint64_t seen = 0, sum = 0, want = 0;
	uint32_t i, k;
	void *rv;

	(void)state;
	fill(a, 0, 128, 4096);
	for (i = 0; i < 4; i++) {
		t[i] = (struct thr) { .m = m, .tiers = tiers, .base = i * 32 };
		assert_int_equal(0, pthread_create(&th[i], NULL, submitter, &t[i]));
	}
	while (seen < 128) {
		int n = accel_mover_poll(m, d, 16, 10 * 1000000000ll);

		assert_true(n > 0);
		for (k = 0; k < (uint32_t)n; k++) {
			assert_int_equal(0, d[k].status);
			sum += d[k].job_id;
		}
		seen += n;
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(0, pthread_join(th[i], &rv));
		assert_null(rv);
		for (k = 0; k < 32; k++)
			want += t[i].ids[k];
	}
	assert_int_equal(want, sum);
	assert_int_equal(128 * 129 / 2, sum);
	for (i = 0; i < 128; i++)
		check_block(b, i, 0, i, 4096);
	accel_mover_destroy(m);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

static void test_bad_submit(void **state)
{
	struct accel_tier *a = mk(BB, 8), *b = mk(BB, 8), *c = mk(2 * BB, 8);
	const struct accel_tier *tiers[4] = { a, b, c, NULL };
	struct accel_mover *m = mover();
	struct accel_bm_run bad[] = {
		{ 0, 0, 1, 0, 0 },	/* no blocks */
		{ 0, 7, 1, 0, 2 },	/* past the source */
		{ 0, 0, 1, 7, 2 },	/* past the destination */
		{ 0, 8, 1, 0, 1 },
		{ 0, 0, 2, 0, 1 },	/* block sizes differ */
		{ 0, 0, 3, 0, 1 },	/* no such tier */
		{ 0, 0, 4, 0, 1 },	/* past nr_tiers */
		{ 5, 0, 1, 0, 1 },
		{ 0, 0, 0, 2, 3 },	/* overlaps itself */
		{ 0, 2, 0, 2, 1 },	/* onto itself */
		{ 0, 0xffffffffu, 1, 0, 2 },
		{ 0, 1, 1, 0, 0xffffffffu },
	};
	struct accel_bm_run ok = { 0, 0, 1, 0, 1 };
	ACCEL_OPTS(accel_mover_submit_opts, so, .flags = 1);
	ACCEL_OPTS(accel_mover_opts, mo, .flags = 1);
	struct accel_mover_done d;
	uint64_t id = 0;
	uint32_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct accel_bm_run two[2] = { ok, bad[i] };

		assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 4, &bad[i], 1, NULL, &id));
		/* All or nothing: a bad run anywhere refuses the job. */
		assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 4, two, 2, NULL, &id));
	}
	assert_int_equal(-EINVAL, accel_mover_submit(NULL, tiers, 2, &ok, 1, NULL, &id));
	assert_int_equal(-EINVAL, accel_mover_submit(m, NULL, 2, &ok, 1, NULL, &id));
	assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 0, &ok, 1, NULL, &id));
	assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 2, NULL, 1, NULL, &id));
	assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 2, &ok, 1, NULL, NULL));
	assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 2, &ok, 1, &so, &id));
	so.flags = 0;
	so.sz = 3;
	assert_int_equal(-EINVAL, accel_mover_submit(m, tiers, 2, &ok, 1, &so, &id));
	assert_int_equal(0, id);
	assert_int_equal(0, accel_mover_pending(m));
	assert_int_equal(0, accel_mover_poll(m, &d, 1, 0));

	assert_int_equal(-EINVAL, accel_mover_poll(NULL, &d, 1, 0));
	assert_int_equal(-EINVAL, accel_mover_poll(m, NULL, 1, 0));
	assert_int_equal(-EINVAL, accel_mover_poll(m, &d, 0, 0));
	assert_int_equal(-EINVAL, accel_mover_poll(m, &d, 1, -2));
	assert_int_equal(-EINVAL, accel_mover_fd(NULL));
	assert_int_equal(-EINVAL, accel_mover_pending(NULL));
	errno = 0;
	assert_null(accel_mover_create(&mo));
	assert_int_equal(EINVAL, errno);
	accel_mover_destroy(NULL);

	/* Still works after all that. */
	assert_int_equal(0, accel_mover_submit(m, tiers, 2, &ok, 1, NULL, &id));
	assert_int_equal(1, id);
	d = wait_one(m);
	assert_int_equal(0, d.status);
	accel_mover_destroy(m);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
	accel_tier_destroy(c);
}

/* Layer pieces of memfd tiers: info, and a layer-wise copy touching only those layers. */
static void test_layers(void **state)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = 3 * 4096, .blocks = 4, .layers = 3);
	ACCEL_OPTS(accel_tier_info, info);
	ACCEL_OPTS(accel_mover_submit_opts, so, .flags = ACCEL_MOVER_LAYERS, .layer_first = 1,
		   .layer_count = 1);
	struct accel_bm_run r = { .src_tier = 0, .src_block = 0, .dst_tier = 1, .dst_block = 1,
				  .count = 3 };
	struct accel_tier *a, *b;
	struct accel_mover *m;
	struct accel_mover_done d;
	uint64_t id;
	uint32_t i;

	(void)state;
	a = accel_tier_create_memfd(&o);
	b = accel_tier_create_memfd(&o);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(0, accel_tier_info(a, &info));
	assert_int_equal(3, info.layers);
	assert_int_equal(-1, info.device);
	assert_int_equal(3 * 4096, info.block_stride);
	o.layers = 5;	/* 12 KiB is no multiple of 5 */
	errno = 0;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EINVAL, errno);
	memset(accel_tier_block_addr(a, 0), 0x5a, 4 * 3 * 4096);
	m = accel_mover_create(NULL);
	assert_non_null(m);
	{
		const struct accel_tier *t[] = { a, b };

		assert_int_equal(0, accel_mover_submit(m, t, 2, &r, 1, &so, &id));
		assert_int_equal(1, accel_mover_poll(m, &d, 1, -1));
		assert_int_equal(0, d.status);
		/* Events are CUDA's: no device tier, no events. */
		so.flags |= ACCEL_MOVER_RECORD_EVENT;
		so.record_event = &r;
		assert_int_equal(-EINVAL, accel_mover_submit(m, t, 2, &r, 1, &so, &id));
	}
	for (i = 0; i < 4; i++) {
		unsigned char *p = accel_tier_block_addr(b, i);

		for (uint32_t k = 0; k < 3 * 4096; k++)
			assert_int_equal(i >= 1 && k / 4096 == 1 ? 0x5a : 0, p[k]);
	}
	accel_mover_destroy(m);
	accel_tier_destroy(a);
	accel_tier_destroy(b);
}

/* No CUDA driver here (natively: none is loadable): device tiers say ENODEV. */
static void test_cuda_without_driver(void **state)
{
	ACCEL_OPTS(accel_tier_cuda_opts, o, .device = 0, .block_bytes = 65536, .blocks = 2);
	struct accel_tier *t;

	(void)state;
	t = accel_tier_create_cuda(&o);
	if (t) {
		accel_tier_destroy(t);
		skip();		/* a driver and a GPU: nothing to test here */
	}
	assert_int_equal(ENODEV, errno);
	o.base = 1ull << 40;
	assert_null(accel_tier_register_cuda(&o));
	assert_int_equal(ENODEV, errno);
}

/*
 * Window tiers need a kvaccel device: a memfd or device tier with the flag
 * is EOPNOTSUPP (the device tier's before any driver is looked for), and
 * the window calls on any other tier say EOPNOTSUPP, NULL-safe.
 */
static void test_window_not_here(void **state)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = BB, .blocks = 4, .flags = ACCEL_TIER_WINDOW);
	ACCEL_OPTS(accel_tier_cuda_opts, co, .device = 0, .block_bytes = 65536, .blocks = 2,
		   .flags = ACCEL_TIER_WINDOW);
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_tier_rebind op = { .block = 0 };
	struct accel_tier_page pg;
	struct accel_tier *t;
	uint64_t key;
	int fd;

	(void)state;
	errno = 0;
	assert_null(accel_tier_create_memfd(&o));
	assert_int_equal(EOPNOTSUPP, errno);
	errno = 0;
	assert_null(accel_tier_create_cuda(&co));
	assert_int_equal(EOPNOTSUPP, errno);
	co.base = 1ull << 40;
	errno = 0;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EOPNOTSUPP, errno);
	/* Without a device the host constructor is EINVAL, as before. */
	errno = 0;
	assert_null(accel_tier_create_host(NULL, &o));
	assert_int_equal(EINVAL, errno);

	o.flags = 0;
	t = accel_tier_create_memfd(&o);
	assert_non_null(t);
	assert_int_equal(0, accel_tier_info(t, &info));
	assert_int_equal(0, info.flags);
	assert_int_equal(0, accel_tier_key(t));
	assert_int_equal(-EOPNOTSUPP, accel_tier_page(t, 0, &pg));
	assert_int_equal(-EOPNOTSUPP, accel_tier_hold(t, 0, &key));
	assert_int_equal(-EOPNOTSUPP, accel_tier_page_export(t, 1, &fd));
	assert_int_equal(-EOPNOTSUPP, accel_tier_rebind(t, &op, 1));
	accel_tier_destroy(t);
	assert_int_equal(0, accel_tier_key(NULL));
	assert_int_equal(-EINVAL, accel_tier_page(NULL, 0, &pg));
	assert_int_equal(-EINVAL, accel_tier_hold(NULL, 0, &key));
	assert_int_equal(-EINVAL, accel_tier_page_export(NULL, 1, &fd));
	assert_int_equal(-EINVAL, accel_tier_rebind(NULL, &op, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tier_shapes),
		cmocka_unit_test(test_tier_bad),
		cmocka_unit_test(test_scattered),
		cmocka_unit_test(test_bm_plan),
		cmocka_unit_test(test_poll_fd),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_bad_submit),
		cmocka_unit_test(test_layers),
		cmocka_unit_test(test_cuda_without_driver),
		cmocka_unit_test(test_window_not_here),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
