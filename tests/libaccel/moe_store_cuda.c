// SPDX-License-Identifier: GPL-2.0-only
/*
 * The MoE expert store on the cuda backend (ACCEL_MOE_STORE_CUDA), cmocka,
 * against the fake CUDA driver (tests/libaccel/fake_cuda.c: device memory
 * is host memory, so the test reads the windows directly; every copy's
 * device side must be accessible by its stream's GPU, FAKE_CUDA_STRICT_ACCESS).
 * No kvaccel device: the store needs none on this backend.
 *
 * What is checked: every replica of every expert reads its bytes through
 * its layer's window (one range over four GPUs' memory), slots of one
 * device holding one expert alias one copy, a new store's copies zero but
 * for what was written (the fake's new memory is garbage, FAKE_CUDA_DIRTY); a permutation within devices rebinds without a
 * byte copied (no copy on any stream); a rotation across GPUs copies on the
 * destination's stream with at most K copies per device in flight, every
 * step of it reading every expert right through its version's table; the
 * executor on its thread with a reader at every step; devices sharing a
 * GPU; a copy failing in the driver mid-rebalance abandons it with every
 * layer whole and readable, and a second rebalance then completes; a store
 * over four GPUs made from a running one over two (rebalancing meanwhile),
 * its bytes all fetched from the old store's memory, none from the host; bad
 * options refused (EINVAL, ENODEV, EOPNOTSUPP); destroy gives every
 * allocation, mapping, reservation, stream and event back.
 * build/native/moe_store_cuda_plain runs it against a driver without peer
 * access or cuMemcpyBatchAsync (every GPU-to-GPU copy staged through host
 * memory).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "accel.h"
#include "accel_moe.h"
#include "cuda/cuda_loader.h"
#include "fake_cuda.h"

#define LAYERS	2
#define EXPERTS	8
#define GPUS	4
#define SPD	3
#define SLOTS	(GPUS * SPD)
#define EBYTES	(3u << 20)	/* two 2 MiB chunks, the second in part */

static struct fake_cuda_ops fake;
static uint32_t pat[EBYTES / 4];

/* Expert @e of layer @l's bytes. */
static void pattern(uint32_t *w, uint32_t l, uint32_t e)
{
	uint32_t i, x = 0x9e3779b9u * (l * 131 + e + 1);

	for (i = 0; i < EBYTES / 4; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		w[i] = x;
	}
}

/* Expert-parallel: slot j of device d holds (d + j * GPUS) % EXPERTS, each layer. */
static void initial(int32_t *p)
{
	uint32_t l, d, j;

	for (l = 0; l < LAYERS; l++)
		for (d = 0; d < GPUS; d++)
			for (j = 0; j < SPD; j++)
				p[l * SLOTS + d * SPD + j] = (int32_t)((d + j * GPUS) % EXPERTS);
}

static struct accel_moe_store *make(const int *gpus, uint32_t k, uint32_t flags,
				    const int32_t *p, bool fill)
{
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
		   .devices = GPUS, .slots_per_device = SPD, .expert_bytes = EBYTES,
		   .max_inflight = k, .flags = flags, .backend = ACCEL_MOE_STORE_CUDA,
		   .device_gpu = gpus);
	struct accel_moe_store *s = accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS);
	uint32_t l, e;

	assert_non_null(s);
	for (l = 0; fill && l < LAYERS; l++)
		for (e = 0; e < EXPERTS; e++) {
			pattern(pat, l, e);
			assert_int_equal(0, accel_moe_store_write(s, l, e, pat, EBYTES));
		}
	return s;
}

/* Every replica of every expert at @version holds its bytes, zeros after: 0, or where not. */
static int check_all(struct accel_moe_store *s, uint64_t version, uint32_t *w)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	uint32_t l, e, slots[SLOTS];
	int n, r;

	if (accel_moe_store_stats(s, &st))
		return -1;
	for (l = 0; l < LAYERS; l++)
		for (e = 0; e < EXPERTS; e++) {
			n = accel_moe_store_replicas(s, version, l, e, slots, SLOTS);
			if (n < 1)
				return -2;
			pattern(w, l, e);
			for (r = 0; r < n; r++) {
				const char *p = accel_moe_store_expert(s, version, l, e, (uint32_t)r);
				uint64_t i;

				if (!p)
					return -3;
				if (memcmp(p, w, EBYTES))
					return -4;
				for (i = EBYTES; i < st.slot_stride; i += 4096)
					if (p[i])
						return -5;
			}
		}
	return 0;
}

/* Steps (each reading everything) until the store is idle; the steps, or < 0. */
static int serve_until_idle(struct accel_moe_store *s, int max)
{
	static uint32_t w[EBYTES / 4];
	uint64_t v;
	int i, ret;

	for (i = 0; i < max; i++) {
		if (accel_moe_store_step_begin(s, &v))
			return -100;
		ret = check_all(s, v, w);
		if (accel_moe_store_step_end(s, v))
			return -101;
		if (ret)
			return ret * 1000 - i;
		ret = accel_moe_store_progress(s);
		if (ret < 0)
			return ret;
		if (!ret)
			return i + 1;
	}
	return -102;
}

/* Every slot of device d moves to device d + 1. */
static void rotated(const int32_t *p, int32_t *q)
{
	uint32_t l, i;

	for (l = 0; l < LAYERS; l++)
		for (i = 0; i < SLOTS; i++)
			q[l * SLOTS + (i + SPD) % SLOTS] = p[l * SLOTS + i];
}

static void snapshot(struct fake_cuda_stats *st)
{
	fake.stats(st);
}

static unsigned long long copies_run(void)
{
	struct fake_cuda_stats st;

	snapshot(&st);
	return st.memcpy_async + st.batch_copies;
}

static const int four[GPUS] = { 0, 1, 2, 3 };

static int setup(void **state)
{
	char why[160];
	int err;

	(void)state;
	if (!accel_cuda_load(&err, why, sizeof(why))) {
		printf("# no CUDA driver: %s\n", why);
		return -1;
	}
	if (fake_cuda_bind(&fake)) {
		printf("# not the fake driver\n");
		return -1;
	}
	return 0;
}

static void windows_and_rebinds(void **state)
{
	int32_t p[LAYERS * SLOTS], q[LAYERS * SLOTS];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct fake_cuda_stats before, after;
	struct accel_moe_store *s;
	unsigned long long c0;
	uint32_t l, i, d;
	uint64_t v;

	(void)state;
	snapshot(&before);
	initial(p);
	s = make(four, 1, 0, p, true);
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.block_size, FAKE_CUDA_GRANULARITY);
	assert_int_equal(st.blocks_per_expert, 2);
	assert_int_equal(st.slot_stride, 2 * FAKE_CUDA_GRANULARITY);
	/* Device d holds (d, d + 4, d + 8 = d): two copies, its first and third slot share one. */
	for (d = 0; d < GPUS; d++)
		assert_int_equal(st.live_copies[d], LAYERS * 2);
	assert_int_equal(1, serve_until_idle(s, 1));
	assert_int_equal(0, accel_moe_store_step_begin(s, &v));
	for (l = 0; l < LAYERS; l++)
		for (d = 0; d < GPUS; d++) {
			uint32_t e = d, slots[SLOTS];
			const char *a, *b;
			int n = accel_moe_store_replicas(s, v, l, e, slots, SLOTS);

			/* Expert d's replicas: slots d * SPD and d * SPD + 2, both on device d. */
			assert_int_equal(n, 2);
			assert_int_equal(slots[0], d * SPD);
			assert_int_equal(slots[1], d * SPD + 2);
			a = accel_moe_store_expert(s, v, l, e, 0);
			b = accel_moe_store_expert(s, v, l, e, 1);
			assert_ptr_not_equal(a, b);
			/* Two window slots, one copy: one physical page behind both. */
			((char *)a)[EBYTES + 1] = 1;
			assert_int_equal(b[EBYTES + 1], 1);
			((char *)a)[EBYTES + 1] = 0;
			assert_true(fake.access((uintptr_t)a) & (1u << d));
		}
	assert_int_equal(0, accel_moe_store_step_end(s, v));

	/* A permutation within each device: rebinds only, no copy runs. */
	for (l = 0; l < LAYERS; l++)
		for (d = 0; d < GPUS; d++)
			for (i = 0; i < SPD; i++)
				q[l * SLOTS + d * SPD + i] = p[l * SLOTS + d * SPD + (i + 1) % SPD];
	c0 = copies_run();
	assert_int_equal(0, accel_moe_store_apply(s, q, LAYERS * SLOTS));
	assert_true(serve_until_idle(s, 50) > 0);
	assert_int_equal(copies_run(), c0);
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.copies, 0);
	assert_int_equal(st.rebalances, 1);
	assert_true(st.rebinds >= LAYERS * GPUS * 2);
	accel_moe_store_placement(s, p, LAYERS * SLOTS);
	assert_memory_equal(p, q, sizeof(p));
	accel_moe_store_destroy(s);

	snapshot(&after);
	assert_int_equal(after.live_allocations, before.live_allocations);
	assert_int_equal(after.reservations, before.reservations);
	assert_int_equal(after.streams, before.streams);
	assert_int_equal(after.events, before.events);
	assert_int_equal(after.pending_ops, 0);
	assert_int_equal(after.late_faults, before.late_faults);
}

static void zero_filled(void **state)
{
	int32_t p[LAYERS * SLOTS];
	struct accel_moe_store *s;
	const uint64_t *q;
	uint64_t v, i;

	(void)state;
	initial(p);
	/* New device memory holds garbage here (FAKE_CUDA_DIRTY): the store zeroes its copies. */
	s = make(four, 1, 0, p, false);
	assert_int_equal(0, accel_moe_store_step_begin(s, &v));
	q = accel_moe_store_expert(s, v, 1, 5, 0);
	assert_non_null(q);
	for (i = 0; i < 2 * FAKE_CUDA_GRANULARITY / 8; i++)
		if (q[i])
			fail_msg("byte %llu of a new copy is not zero", (unsigned long long)i * 8);
	accel_moe_store_step_end(s, v);
	accel_moe_store_destroy(s);
}

static void rebalance_across_gpus(const int *gpus, uint32_t k)
{
	int32_t p[LAYERS * SLOTS], q[LAYERS * SLOTS];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct fake_cuda_stats before, after;
	struct accel_moe_store *s;
	uint32_t d;
	int steps;

	snapshot(&before);
	initial(p);
	s = make(gpus, k, 0, p, true);
	rotated(p, q);
	assert_int_equal(0, accel_moe_store_apply(s, q, LAYERS * SLOTS));
	steps = serve_until_idle(s, 500);
	assert_true(steps > 1);
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.last_error, 0);
	assert_int_equal(st.rebalances, 1);
	/* Device d + 1 gets device d's two experts of each layer, all new to it. */
	assert_true(st.copies >= LAYERS * GPUS * 2);
	assert_int_equal(st.copy_bytes, st.copies * st.slot_stride);
	assert_true(st.max_inflight_seen <= k);
	for (d = 0; d < GPUS; d++) {
		assert_int_equal(st.live_copies[d], LAYERS * 2);
		assert_true(st.peak_copies[d] <= LAYERS * SPD + k);
	}
	accel_moe_store_placement(s, p, LAYERS * SLOTS);
	assert_memory_equal(p, q, sizeof(p));
	/* And back: the rotation the other way round. */
	rotated(q, p);
	rotated(p, q);
	rotated(q, p);
	assert_int_equal(0, accel_moe_store_apply(s, p, LAYERS * SLOTS));
	assert_true(serve_until_idle(s, 500) > 1);
	accel_moe_store_destroy(s);
	snapshot(&after);
	assert_int_equal(after.live_allocations, before.live_allocations);
	assert_int_equal(after.reservations, before.reservations);
	assert_int_equal(after.late_faults, before.late_faults);
	for (d = 0; d < GPUS; d++)
		if (gpus[d] != gpus[(d + 1) % GPUS])
			assert_true(after.copies_by_device[gpus[(d + 1) % GPUS]] >
				    before.copies_by_device[gpus[(d + 1) % GPUS]]);
}

static void rotation_four_gpus(void **state)
{
	(void)state;
	rebalance_across_gpus(four, 1);
	rebalance_across_gpus(four, 2);
}

static void devices_share_gpus(void **state)
{
	static const int two[GPUS] = { 0, 0, 1, 1 };

	(void)state;
	rebalance_across_gpus(two, 1);
}

/* Thread mode: a reader steps (and reads everything) while the executor's thread works. */
static void thread_mode(void **state)
{
	int32_t p[LAYERS * SLOTS], q[LAYERS * SLOTS];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct accel_moe_store *s;

	(void)state;
	initial(p);
	s = make(four, 2, ACCEL_MOE_STORE_THREAD, p, true);
	rotated(p, q);
	assert_int_equal(0, accel_moe_store_apply(s, q, LAYERS * SLOTS));
	assert_true(serve_until_idle(s, 100000) > 0);
	assert_int_equal(0, accel_moe_store_settle(s, 10000000000LL));
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.rebalances, 1);
	assert_true(st.copies >= LAYERS * GPUS * 2);
	accel_moe_store_destroy(s);
}

/*
 * The second cross-GPU copy fails in the driver: the rebalance abandoned
 * (its error kept), every layer whole and read right, then a second one done.
 */
static void copy_fails(void **state)
{
	int32_t p[LAYERS * SLOTS], q[LAYERS * SLOTS], now[LAYERS * SLOTS];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct accel_moe_store *s;
	int ret;

	(void)state;
	initial(p);
	s = make(four, 1, 0, p, true);
	rotated(p, q);
	assert_int_equal(0, accel_moe_store_apply(s, q, LAYERS * SLOTS));
	assert_int_equal(0, fake.inject("cuMemcpyAsync", 2, 999));
	assert_int_equal(0, fake.inject("cuMemcpyBatchAsync", 2, 999));
	ret = serve_until_idle(s, 500);
	fake.inject("cuMemcpyAsync", 0, 0);
	fake.inject("cuMemcpyBatchAsync", 0, 0);
	/* Failed in a step's share of the work (the step goes on) or in progress(). */
	assert_true(ret > 0 || ret == -EIO);
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.last_error, -EIO);
	assert_int_equal(st.rebalancing, 0);
	/* Each layer on a placement of its own (old, or a wave's), each readable. */
	assert_true(serve_until_idle(s, 50) > 0);
	assert_int_equal(0, accel_moe_store_placement(s, now, LAYERS * SLOTS));
	assert_memory_not_equal(now, q, sizeof(now));
	assert_int_equal(0, accel_moe_store_apply(s, q, LAYERS * SLOTS));
	assert_true(serve_until_idle(s, 500) > 1);
	assert_int_equal(0, accel_moe_store_placement(s, now, LAYERS * SLOTS));
	assert_memory_equal(now, q, sizeof(now));
	accel_moe_store_destroy(s);
}

/*
 * Scale-up from a running store: a store over four GPUs made from one over
 * two (which rebalances meanwhile on its thread) reads every expert's bytes
 * without one written, its copies fetched from the old one's memory.
 */
static void scale_up_from_a_store(void **state)
{
	static const int two[2] = { 0, 1 };
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
		   .devices = 2, .slots_per_device = EXPERTS / 2, .expert_bytes = EBYTES,
		   .flags = ACCEL_MOE_STORE_THREAD, .backend = ACCEL_MOE_STORE_CUDA,
		   .device_gpu = two);
	int32_t a[LAYERS * EXPERTS], ar[LAYERS * EXPERTS], p[LAYERS * SLOTS];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct fake_cuda_stats before, after;
	struct accel_moe_store *old, *s;
	uint32_t l, i, e;

	(void)state;
	for (l = 0; l < LAYERS; l++)
		for (i = 0; i < EXPERTS; i++) {
			a[l * EXPERTS + i] = (int32_t)i;
			ar[l * EXPERTS + (i + EXPERTS / 2) % EXPERTS] = (int32_t)i;
		}
	old = accel_moe_store_create(NULL, &o, a, LAYERS * EXPERTS);
	assert_non_null(old);
	for (l = 0; l < LAYERS; l++)
		for (e = 0; e < EXPERTS; e++) {
			pattern(pat, l, e);
			assert_int_equal(0, accel_moe_store_write(old, l, e, pat, EBYTES));
		}
	assert_int_equal(0, accel_moe_store_apply(old, ar, LAYERS * EXPERTS));
	initial(p);
	snapshot(&before);
	{
		ACCEL_OPTS(accel_moe_store_opts, n, .layers = LAYERS, .experts = EXPERTS,
			   .devices = GPUS, .slots_per_device = SPD, .expert_bytes = EBYTES,
			   .backend = ACCEL_MOE_STORE_CUDA, .device_gpu = four,
			   .from_store = old);

		s = accel_moe_store_create(NULL, &n, p, LAYERS * SLOTS);
	}
	assert_non_null(s);
	snapshot(&after);
	/* Nothing from the host: every byte came from the old store's GPUs. */
	assert_int_equal(after.pageable_copies, before.pageable_copies);
	assert_int_equal(0, accel_moe_store_stats(s, &st));
	assert_int_equal(st.fetched, LAYERS * GPUS * 2);
	assert_int_equal(1, serve_until_idle(s, 1));
	assert_int_equal(0, accel_moe_store_settle(old, 10000000000LL));
	/* The new store is its own: the old one can go. */
	accel_moe_store_destroy(old);
	assert_int_equal(1, serve_until_idle(s, 1));
	accel_moe_store_destroy(s);
}

static void bad_options(void **state)
{
	static const int seven[GPUS] = { 0, 1, 7, 3 }, neg[GPUS] = { 0, -1, 2, 3 };
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
		   .devices = GPUS, .slots_per_device = SPD, .expert_bytes = EBYTES,
		   .backend = ACCEL_MOE_STORE_CUDA);
	struct accel_moe_store_share sh = { .layer = 0, .expert = 0, .node = -1, .fd = 0 };
	struct fake_cuda_stats before, after;
	int32_t p[LAYERS * SLOTS];
	struct accel_moe_store *s;

	(void)state;
	initial(p);
	snapshot(&before);
	errno = 0;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));	/* no device_gpu */
	assert_int_equal(errno, EINVAL);
	o.device_gpu = neg;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	o.device_gpu = seven;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, ENODEV);
	o.device_gpu = four;
	o.block_size = 4096;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	o.block_size = 0;
	o.from = &sh;
	o.nr_from = 1;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EOPNOTSUPP);
	o.from = NULL;
	o.nr_from = 0;
	o.backend = 2;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	o.backend = ACCEL_MOE_STORE_HOST;	/* needs a kvaccel device */
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	o.backend = ACCEL_MOE_STORE_CUDA;
	s = accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS);
	assert_non_null(s);
	o.from_store = s;
	o.expert_bytes = EBYTES / 2;	/* not the same experts */
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	o.expert_bytes = EBYTES;
	o.layers = 1;
	assert_null(accel_moe_store_create(NULL, &o, p, SLOTS));
	assert_int_equal(errno, EINVAL);
	o.layers = LAYERS;
	o.from_store = NULL;
	accel_moe_store_destroy(s);
	p[3] = EXPERTS;
	assert_null(accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS));
	assert_int_equal(errno, EINVAL);
	initial(p);
	snapshot(&after);
	assert_int_equal(after.live_allocations, before.live_allocations);
	assert_int_equal(after.reservations, before.reservations);
	assert_int_equal(after.streams, before.streams);

	s = accel_moe_store_create(NULL, &o, p, LAYERS * SLOTS);
	assert_non_null(s);
	assert_int_equal(-EOPNOTSUPP, accel_moe_store_export(s, NULL, 0));
	assert_int_equal(-EINVAL, accel_moe_store_write(s, 0, 0, pat, EBYTES - 1));
	accel_moe_store_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(windows_and_rebinds),
		cmocka_unit_test(zero_filled),
		cmocka_unit_test(rotation_four_gpus),
		cmocka_unit_test(devices_share_gpus),
		cmocka_unit_test(thread_mode),
		cmocka_unit_test(copy_fails),
		cmocka_unit_test(scale_up_from_a_store),
		cmocka_unit_test(bad_options),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
