// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's MoE expert store and executor against the module: experts in
 * regions read through per-layer windows (spaces). Slots of one device
 * holding one expert share its blocks, devices hold distinct copies; a
 * permutation within devices is all rebinds (no copy, the same region
 * blocks behind the new window slots); a rotation across devices copies on
 * the copy engine with at most K copies per device in flight, steps
 * reading every expert's bytes through their version's table at every
 * step; a step in flight keeps the old table and its window slots until it
 * ends; bad input changes nothing; a process killed mid-rebalance leaves
 * nothing on the device. Copies exported to another process's store are
 * taken there without a byte copied (or filled from them where a device
 * needs a second copy), read the same bytes after the exporter rebalanced
 * and after it is gone, and are never written.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel.h"
#include "accel_moe.h"
#include "accel_test.h"
#include "kvtest.h"
#include "kselftest_harness.h"

#define LAYERS	2
#define EXPERTS	8
#define EBYTES	(96u << 10)	/* the serve model's default expert: 3 blocks of 32 KiB */
#define MAXSL	64

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

/* Expert-parallel: expert e on device e % devices, then redundant slots round-robin. */
static void initial(int32_t *p, uint32_t devices, uint32_t spd)
{
	uint32_t l, d, j, e;

	for (l = 0; l < LAYERS; l++)
		for (d = 0; d < devices; d++)
			for (j = 0; j < spd; j++) {
				e = d + j * devices;
				p[l * devices * spd + d * spd + j] = (int32_t)(e % EXPERTS);
			}
}

static struct accel_moe_store *store_flags(struct accel_device *dev, uint32_t devices,
					   uint32_t spd, uint32_t k, const int32_t *p, uint32_t flags)
{
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
		   .devices = devices, .slots_per_device = spd, .expert_bytes = EBYTES,
		   .max_inflight = k, .flags = flags);
	struct accel_moe_store *s = accel_moe_store_create(dev, &o, p, LAYERS * devices * spd);
	static uint32_t w[EBYTES / 4];
	uint32_t l, e;

	if (!s)
		return NULL;
	for (l = 0; l < LAYERS; l++)
		for (e = 0; e < EXPERTS; e++) {
			pattern(w, l, e);
			if (accel_moe_store_write(s, l, e, w, EBYTES)) {
				accel_moe_store_destroy(s);
				return NULL;
			}
		}
	return s;
}

static struct accel_moe_store *store(struct accel_device *dev, uint32_t devices, uint32_t spd,
				     uint32_t k, const int32_t *p)
{
	return store_flags(dev, devices, spd, k, p, 0);
}

/* Every replica of every expert at @version holds its bytes; 0 or a negative code. */
static int check_all(struct accel_moe_store *s, uint64_t version)
{
	static uint32_t w[EBYTES / 4];
	uint32_t l, e, slots[MAXSL];
	int n, r;

	for (l = 0; l < LAYERS; l++)
		for (e = 0; e < EXPERTS; e++) {
			n = accel_moe_store_replicas(s, version, l, e, slots, MAXSL);
			if (n < 1)
				return -1;
			pattern(w, l, e);
			for (r = 0; r < n; r++) {
				const void *p = accel_moe_store_expert(s, version, l, e, (uint32_t)r);

				if (!p)
					return -2;
				if (memcmp(p, w, EBYTES))
					return -3;
			}
		}
	return 0;
}

/* Steps, each checking every expert, until the rebalance is done; returns the steps or < 0. */
static int serve_until_done(struct accel_moe_store *s, int max_steps)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	uint64_t v;
	int i, ret;

	for (i = 0; i < max_steps; i++) {
		ret = accel_moe_store_step_begin(s, &v);
		if (ret)
			return ret;
		ret = check_all(s, v);
		accel_moe_store_step_end(s, v);
		if (ret)
			return -1000 + ret;
		if (accel_moe_store_stats(s, &st))
			return -EIO;
		if (!st.rebalancing && !st.retired_pending)
			return accel_moe_store_settle(s, 10ll * 1000000000) ?: i + 1;
		usleep(1000);
	}
	return -ETIME;
}

/* Distinct experts each device's slots hold in @p's layer @l. */
static uint32_t distinct(const int32_t *p, uint32_t l, uint32_t d, uint32_t devices, uint32_t spd)
{
	const int32_t *q = p + l * devices * spd + d * spd;
	uint32_t i, j, n = 0;

	for (i = 0; i < spd; i++) {
		for (j = 0; j < i && q[j] != q[i]; j++)
			;
		n += j == i;
	}
	return n;
}

FIXTURE(moe) {
	struct accel_device *dev;
	uint64_t usage0;
};

FIXTURE_SETUP(moe)
{
	self->dev = accel_device_open(NULL);
	ASSERT_NE(NULL, self->dev);
	self->usage0 = accel_test_device_usage(self->dev);
}

FIXTURE_TEARDOWN(moe)
{
	EXPECT_EQ(self->usage0, accel_test_device_usage_settled(self->dev, self->usage0));
	accel_device_close(self->dev);
}

/* The shape, the shared blocks of one device, the distinct copies of two. */
TEST_F(moe, store_shape_and_sharing)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	int32_t p[LAYERS * 10];
	struct accel_moe_store *s;
	uint32_t slots[8], l, d;
	uint64_t v;
	int n;

	initial(p, 2, 5);	/* device 0: 0 2 4 6 0, device 1: 1 3 5 7 1 */
	s = store(self->dev, 2, 5, 1, p);
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(10, st.num_slots);
	EXPECT_EQ(32768, st.block_size);
	EXPECT_EQ(3, st.blocks_per_expert);
	EXPECT_EQ(EBYTES, st.slot_stride);
	for (d = 0; d < 2; d++)
		EXPECT_EQ(LAYERS * 4, st.live_copies[d]);	/* the redundant slot shares */
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(0, check_all(s, v));
	n = accel_moe_store_replicas(s, v, 1, 0, slots, 8);
	ASSERT_EQ(2, n);
	EXPECT_EQ(0, slots[0]);
	EXPECT_EQ(4, slots[1]);
	/* Both replicas of expert 0 on device 0 read one copy: the same address's bytes. */
	for (l = 0; l < 2; l++) {
		const char *a = accel_moe_store_expert(s, v, l, 0, 0);
		const char *c = accel_moe_store_expert(s, v, l, 0, 1);

		ASSERT_NE(NULL, a);
		ASSERT_NE(NULL, c);
		EXPECT_EQ(EBYTES * 4, (size_t)(c - a));
	}
	EXPECT_EQ(0, accel_moe_store_step_end(s, v));
	EXPECT_EQ(-EINVAL, accel_moe_store_step_end(s, v));
	accel_moe_store_destroy(s);

	/* One expert on two devices: two copies (their regions differ). */
	{
		int32_t q[LAYERS * 2 * EXPERTS];
		struct accel_device *dev = self->dev;
		uint32_t i;

		for (i = 0; i < LAYERS * 2 * EXPERTS; i++)
			q[i] = (int32_t)(i % EXPERTS);
		s = store(dev, 2, EXPERTS, 1, q);
		ASSERT_NE(NULL, s);
		ASSERT_EQ(0, accel_moe_store_stats(s, &st));
		EXPECT_EQ(LAYERS * EXPERTS, st.live_copies[0]);
		EXPECT_EQ(LAYERS * EXPERTS, st.live_copies[1]);
		accel_moe_store_destroy(s);
	}
}

/* A permutation within each device: rebinds only, one wave per layer, same bytes. */
TEST_F(moe, rebinds_within_a_device)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	int32_t p[LAYERS * 8], q[LAYERS * 8], now[LAYERS * 8];
	struct accel_moe_store *s;
	const void *before, *after;
	uint64_t v;
	uint32_t i;
	int steps;

	initial(p, 2, 4);
	s = store(self->dev, 2, 4, 1, p);
	ASSERT_NE(NULL, s);
	for (i = 0; i < LAYERS * 8; i++)	/* reverse each device's four slots */
		q[i] = p[(i / 4) * 4 + 3 - i % 4];
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v));
	before = accel_moe_store_expert(s, v, 0, 0, 0);
	EXPECT_EQ(0, accel_moe_store_step_end(s, v));
	ASSERT_EQ(0, accel_moe_store_apply(s, q, LAYERS * 8));
	steps = serve_until_done(s, 100);
	ASSERT_GT(steps, 0);
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.copies);
	EXPECT_EQ(LAYERS * 8, st.rebinds);
	EXPECT_EQ(LAYERS, st.waves);
	EXPECT_EQ(1, st.rebalances);
	EXPECT_EQ(LAYERS * 4, st.live_copies[0]);
	EXPECT_EQ(LAYERS * 4, st.peak_copies[0]);	/* no byte copied, none made */
	ASSERT_EQ(0, accel_moe_store_placement(s, now, LAYERS * 8));
	EXPECT_EQ(0, memcmp(now, q, sizeof(q)));
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v));
	EXPECT_EQ(LAYERS, v);
	after = accel_moe_store_expert(s, v, 0, 0, 0);
	EXPECT_NE(before, after);	/* another window slot, the same copy */
	EXPECT_EQ(0, check_all(s, v));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v));
	accel_moe_store_destroy(s);
}

/* Every slot to the next device: copies on the copy engine, K in flight, memory bounded. */
static void rotate(struct __test_metadata *_metadata, struct accel_device *dev, uint32_t devices,
		   uint32_t spd, uint32_t k, uint32_t flags)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	uint32_t n = devices * spd, i, l, d;
	int32_t p[LAYERS * MAXSL], q[LAYERS * MAXSL], now[LAYERS * MAXSL];
	struct accel_moe_store *s;
	int steps;

	initial(p, devices, spd);
	for (i = 0; i < LAYERS * n; i++)
		q[i] = p[(i / n) * n + (i % n + spd) % n];
	s = store_flags(dev, devices, spd, k, p, flags);
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, accel_moe_store_apply(s, q, LAYERS * n));
	EXPECT_EQ(-EBUSY, accel_moe_store_apply(s, q, LAYERS * n));
	steps = serve_until_done(s, 2000);
	ASSERT_GT(steps, 0);
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.last_error);
	EXPECT_EQ(1, st.rebalances);
	EXPECT_GT(st.copies, 0);
	EXPECT_EQ(st.copy_bytes, st.copies * EBYTES);
	EXPECT_LE(st.max_inflight_seen, k);
	EXPECT_GE(st.max_inflight_seen, 1);
	EXPECT_GE(st.waves, LAYERS);
	for (d = 0; d < devices; d++) {
		uint32_t live = 0, most = 0;

		for (l = 0; l < LAYERS; l++) {
			uint32_t a = distinct(p, l, d, devices, spd), b = distinct(q, l, d, devices, spd);

			live += b;
			most = most > (a > b ? a : b) ? most : (a > b ? a : b);
		}
		EXPECT_EQ(live, st.live_copies[d]);
		/*
		 * One layer at a time, at most K new copies in a wave (over_k:
		 * more): never more than a window's worth of distinct experts
		 * per layer and K (a layer's copies made at once would be).
		 */
		if (!st.over_k)
			EXPECT_LE(st.peak_copies[d], LAYERS * spd + k);
		EXPECT_GE(st.peak_copies[d], LAYERS * most);
	}
	ASSERT_EQ(0, accel_moe_store_placement(s, now, LAYERS * n));
	EXPECT_EQ(0, memcmp(now, q, LAYERS * n * sizeof(*q)));
	TH_LOG("%u devices x %u slots, K %u%s: %d steps, %llu waves, %llu copies, %llu rebinds, "
	       "%llu over K", devices, spd, k, flags ? " (thread)" : "", steps, (unsigned long long)st.waves, (unsigned long long)st.copies,
	       (unsigned long long)st.rebinds, (unsigned long long)st.over_k);
	accel_moe_store_destroy(s);
}

TEST_F(moe, copies_across_devices_k1)
{
	rotate(_metadata, self->dev, 2, 5, 1, 0);
}

TEST_F(moe, copies_across_devices_k2)
{
	rotate(_metadata, self->dev, 4, 3, 2, 0);
}

/* The same on the store's own thread: steps only read, the thread moves. */
TEST_F(moe, copies_on_the_executor_thread)
{
	rotate(_metadata, self->dev, 2, 5, 1, ACCEL_MOE_STORE_THREAD);
	rotate(_metadata, self->dev, 4, 3, 2, ACCEL_MOE_STORE_THREAD);
}

/* A step that began on the old table keeps it, and its slots, until it ends. */
TEST_F(moe, versioned_switch)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	int32_t p[LAYERS * 8], q[LAYERS * 8];
	struct accel_moe_store *s;
	uint64_t v0, v1;
	uint32_t i;
	int tries;

	initial(p, 2, 4);
	for (i = 0; i < LAYERS * 8; i++)
		q[i] = p[(i / 8) * 8 + (i % 8 + 4) % 8];	/* the devices swap sets */
	s = store(self->dev, 2, 4, 4, p);
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v0));	/* held throughout */
	ASSERT_EQ(0, accel_moe_store_apply(s, q, LAYERS * 8));
	for (tries = 0; tries < 10000; tries++) {
		ASSERT_EQ(1, accel_moe_store_progress(s));
		ASSERT_EQ(0, accel_moe_store_stats(s, &st));
		if (st.waves)
			break;
		usleep(100);
	}
	ASSERT_EQ(1, st.waves);		/* layer 0 switched; layer 1 waits for the reclaim */
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v1));
	EXPECT_EQ(v0 + 1, v1);
	EXPECT_EQ(0, check_all(s, v0));
	EXPECT_EQ(0, check_all(s, v1));
	EXPECT_NE(accel_moe_store_expert(s, v0, 0, 0, 0), accel_moe_store_expert(s, v1, 0, 0, 0));
	EXPECT_EQ(accel_moe_store_expert(s, v0, 1, 0, 0), accel_moe_store_expert(s, v1, 1, 0, 0));
	for (i = 0; i < 50; i++)
		EXPECT_EQ(1, accel_moe_store_progress(s));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.reclaims);	/* v0 still reads the old slots */
	EXPECT_EQ(1, st.waves);
	EXPECT_EQ(2, st.steps_in_flight);
	EXPECT_EQ(0, check_all(s, v0));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v0));
	EXPECT_EQ(1, accel_moe_store_progress(s));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(1, st.reclaims);
	errno = 0;
	EXPECT_EQ(NULL, accel_moe_store_expert(s, v0, 0, 0, 0));	/* retired */
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, check_all(s, v1));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v1));
	EXPECT_EQ(0, accel_moe_store_settle(s, 10ll * 1000000000));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(LAYERS, st.waves);
	EXPECT_EQ(1, st.rebalances);
	accel_moe_store_destroy(s);
}

/* The same on the executor's thread: it waits for the held step, then goes on alone. */
TEST_F(moe, versioned_switch_thread)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	int32_t p[LAYERS * 8], q[LAYERS * 8];
	struct accel_moe_store *s;
	uint64_t v0, v1;
	uint32_t i;
	int tries;

	initial(p, 2, 4);
	for (i = 0; i < LAYERS * 8; i++)
		q[i] = p[(i / 8) * 8 + (i % 8 + 4) % 8];
	s = store_flags(self->dev, 2, 4, 4, p, ACCEL_MOE_STORE_THREAD);
	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v0));
	ASSERT_EQ(0, accel_moe_store_apply(s, q, LAYERS * 8));
	for (tries = 0; tries < 10000; tries++) {
		ASSERT_EQ(0, accel_moe_store_stats(s, &st));
		if (st.waves)
			break;
		usleep(1000);
	}
	ASSERT_EQ(1, st.waves);
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v1));
	EXPECT_EQ(v0 + 1, v1);
	EXPECT_EQ(0, check_all(s, v0));
	EXPECT_EQ(0, check_all(s, v1));
	usleep(100000);		/* the thread keeps looking; v0 holds layer 0's old table */
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.reclaims);
	EXPECT_EQ(1, st.waves);
	EXPECT_EQ(1, st.retired_pending);
	EXPECT_EQ(1, accel_moe_store_progress(s));
	EXPECT_EQ(0, check_all(s, v0));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v0));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v1));
	EXPECT_EQ(0, accel_moe_store_settle(s, 30ll * 1000000000));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(LAYERS, st.waves);
	EXPECT_EQ(LAYERS, st.reclaims);
	EXPECT_EQ(1, st.rebalances);
	EXPECT_EQ(0, st.retired_pending);
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v1));
	EXPECT_EQ(0, check_all(s, v1));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v1));
	accel_moe_store_destroy(s);
}

/* Every bad input is refused and nothing changes. */
TEST_F(moe, errors)
{
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS, .devices = 2,
		   .slots_per_device = 4, .expert_bytes = EBYTES);
	ACCEL_OPTS(accel_moe_store_stats, st);
	int32_t p[LAYERS * 8], q[LAYERS * 8], now[LAYERS * 8], r[LAYERS * 8];
	static uint32_t w[EBYTES / 4];
	struct accel_moe_store *s;
	uint64_t v;
	uint32_t i;

	initial(p, 2, 4);
	errno = 0;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8 - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_moe_store_create(NULL, &o, p, LAYERS * 8));
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, NULL, p, LAYERS * 8));
	memcpy(q, p, sizeof(q));
	q[3] = q[2];		/* expert 6 has no slot */
	errno = 0;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, q, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	o.slots_per_device = 3;	/* 6 slots, 8 experts */
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 6));
	o.slots_per_device = 4;
	o.block_size = 3000;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	o.block_size = 0;
	o.devices = ACCEL_MOE_STORE_MAX_DEVICES + 1;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	o.devices = 2;
	o.flags = 2;		/* no such flag */
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	o.flags = 0;

	s = store(self->dev, 2, 4, 1, p);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, accel_moe_store_apply(s, p, LAYERS * 8 + 1));
	EXPECT_EQ(-EINVAL, accel_moe_store_apply(s, q, LAYERS * 8));
	memcpy(q, p, sizeof(q));
	q[LAYERS * 8 - 1] = EXPERTS;	/* past the experts */
	EXPECT_EQ(-EINVAL, accel_moe_store_apply(s, q, LAYERS * 8));
	q[LAYERS * 8 - 1] = -1;
	EXPECT_EQ(-EINVAL, accel_moe_store_apply(s, q, LAYERS * 8));
	EXPECT_EQ(-EINVAL, accel_moe_store_apply(s, NULL, LAYERS * 8));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.rebalancing);
	EXPECT_EQ(0, st.version);
	ASSERT_EQ(0, accel_moe_store_placement(s, now, LAYERS * 8));
	EXPECT_EQ(0, memcmp(now, p, sizeof(p)));
	EXPECT_EQ(-EINVAL, accel_moe_store_placement(s, now, LAYERS * 8 - 1));
	EXPECT_EQ(-EINVAL, accel_moe_store_write(s, 0, 0, w, EBYTES - 4));
	EXPECT_EQ(-EINVAL, accel_moe_store_write(s, LAYERS, 0, w, EBYTES));
	EXPECT_EQ(-EINVAL, accel_moe_store_write(s, 0, EXPERTS, w, EBYTES));
	ASSERT_EQ(0, accel_moe_store_step_begin(s, &v));
	errno = 0;
	EXPECT_EQ(NULL, accel_moe_store_expert(s, v, LAYERS, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, accel_moe_store_expert(s, v, 0, EXPERTS, 0));
	EXPECT_EQ(NULL, accel_moe_store_expert(s, v + 1, 0, 0, 0));	/* no such version yet */
	EXPECT_EQ(-EINVAL, accel_moe_store_replicas(s, v, 0, 0, NULL, 1));
	EXPECT_EQ(-EINVAL, accel_moe_store_step_end(s, v + 1));
	EXPECT_EQ(0, check_all(s, v));
	EXPECT_EQ(0, accel_moe_store_step_end(s, v));
	/* A real rebalance: writes wait for it, a second one is refused. */
	for (i = 0; i < LAYERS * 8; i++)
		r[i] = p[(i / 8) * 8 + (i % 8 + 4) % 8];
	ASSERT_EQ(0, accel_moe_store_apply(s, r, LAYERS * 8));
	EXPECT_EQ(-EBUSY, accel_moe_store_apply(s, p, LAYERS * 8));
	pattern(w, 0, 0);
	EXPECT_EQ(-EBUSY, accel_moe_store_write(s, 0, 0, w, EBYTES));
	EXPECT_EQ(0, accel_moe_store_settle(s, 30ll * 1000000000));
	EXPECT_EQ(0, accel_moe_store_write(s, 0, 0, w, EBYTES));
	accel_moe_store_destroy(s);
	accel_moe_store_destroy(NULL);
	EXPECT_EQ(-EINVAL, accel_moe_store_progress(NULL));
	EXPECT_EQ(-EINVAL, accel_moe_store_stats(NULL, &st));
}

/* Killed with copies in flight: everything goes with the process. */
TEST_F(moe, killed_mid_rebalance)
{
	int status, pipefd[2];
	char c = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct accel_device *dev = accel_device_open(NULL);
		int32_t p[LAYERS * 12], q[LAYERS * 12];
		struct accel_moe_store *s;
		uint32_t i;

		initial(p, 4, 3);
		for (i = 0; i < LAYERS * 12; i++)
			q[i] = p[(i / 12) * 12 + (i % 12 + 3) % 12];
		s = dev ? store(dev, 4, 3, 2, p) : NULL;
		if (!s || accel_moe_store_apply(s, q, LAYERS * 12) ||
		    accel_moe_store_progress(s) != 1 || accel_moe_store_progress(s) != 1)
			_exit(1);
		c = 1;
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(1, c);
	EXPECT_GT(accel_test_device_usage(self->dev), self->usage0);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	close(pipefd[0]);
	/* The teardown checks the device's usage back where it was. */
}

/* A batch of shared copies over a socket: the entries as data, their fds alongside. */
static int send_shares(int sock, const struct accel_moe_store_share *e, uint32_t n)
{
	uint32_t i, k;

	for (i = 0; i < n; i += k) {
		struct accel_moe_store_share b[ACCEL_MAX_FDS];
		int fds[ACCEL_MAX_FDS];

		k = n - i < ACCEL_MAX_FDS ? n - i : ACCEL_MAX_FDS;
		for (uint32_t j = 0; j < k; j++) {
			b[j] = e[i + j];
			fds[j] = e[i + j].fd;
		}
		if (accel_send_fds(sock, fds, (int)k, b, k * sizeof(*b)))
			return -1;
	}
	return 0;
}

static int recv_shares(int sock, struct accel_moe_store_share *e, uint32_t n)
{
	uint32_t i = 0;

	while (i < n) {
		int fds[ACCEL_MAX_FDS], nfd = ACCEL_MAX_FDS;
		size_t len = ACCEL_MAX_FDS * sizeof(*e);

		if (accel_recv_fds(sock, fds, &nfd, &e[i], &len) ||
		    len != (size_t)nfd * sizeof(*e) || i + (uint32_t)nfd > n)
			return -1;
		for (int j = 0; j < nfd; j++)
			e[i + j].fd = fds[j];
		i += (uint32_t)nfd;
	}
	return 0;
}

static void close_shares(struct accel_moe_store_share *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		close(e[i].fd);
}

static int sync_byte(int sock, char want)
{
	char c = 0;

	return read(sock, &c, 1) == 1 && c == want ? 0 : -1;
}

/*
 * The child: a store of 3 devices x 4 slots from the parent's 16 copies
 * (each device holds 4 experts: experts 0 to 3 of each layer on two): 16
 * taken, the 8 second copies filled from them; its bytes
 * checked after the parent rebalanced and after it destroyed its store,
 * then a rotation of its own. Returns the exit code (0: all well).
 */
static int share_child(int sock)
{
	struct accel_moe_store_share e[2 * LAYERS * EXPERTS];
	struct accel_device *dev = accel_device_open(NULL);
	int32_t p[LAYERS * 12], q[LAYERS * 12];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct accel_moe_store *s;
	static uint32_t w[EBYTES / 4];
	uint32_t n, i;
	uint64_t v;

	if (!dev || read(sock, &n, sizeof(n)) != sizeof(n) || n != LAYERS * EXPERTS ||
	    recv_shares(sock, e, n))
		return 10;
	initial(p, 3, 4);
	{
		ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
			   .devices = 3, .slots_per_device = 4, .expert_bytes = EBYTES,
			   .from = e, .nr_from = n);

		s = accel_moe_store_create(dev, &o, p, LAYERS * 12);
	}
	close_shares(e, n);
	if (!s)
		return 11;
	if (accel_moe_store_stats(s, &st) || st.adopted != LAYERS * EXPERTS ||
	    st.fetched != LAYERS * 4 || st.shared_copies != LAYERS * EXPERTS ||
	    st.live_copies[0] + st.live_copies[1] + st.live_copies[2] != LAYERS * 12)
		return 12;
	pattern(w, 0, 1);
	if (accel_moe_store_write(s, 0, 1, w, EBYTES) != -EPERM)
		return 13;
	if (accel_moe_store_step_begin(s, &v) || check_all(s, v) || accel_moe_store_step_end(s, v))
		return 14;
	/* The parent rebalances, then destroys its store: the bytes here stay. */
	if (write(sock, "1", 1) != 1 || sync_byte(sock, '2'))
		return 15;
	if (accel_moe_store_step_begin(s, &v) || check_all(s, v) || accel_moe_store_step_end(s, v))
		return 16;
	if (write(sock, "3", 1) != 1 || sync_byte(sock, '4'))
		return 17;
	if (accel_moe_store_step_begin(s, &v) || check_all(s, v) || accel_moe_store_step_end(s, v))
		return 18;
	/* A rotation of its own: the shared copies are read as sources, never spares. */
	for (i = 0; i < LAYERS * 12; i++)
		q[i] = p[(i / 12) * 12 + (i % 12 + 4) % 12];
	if (accel_moe_store_apply(s, q, LAYERS * 12) || serve_until_done(s, 2000) <= 0)
		return 19;
	if (accel_moe_store_stats(s, &st) || st.last_error || st.rebalances != 1)
		return 20;
	accel_moe_store_destroy(s);
	accel_device_close(dev);
	return 0;
}

TEST_F(moe, shared_with_another_process)
{
	struct accel_moe_store_share e[2 * LAYERS * EXPERTS];
	int32_t p[LAYERS * 10], q[LAYERS * 10];
	ACCEL_OPTS(accel_moe_store_stats, st);
	struct accel_moe_store *s;
	int sv[2], status, n;
	uint32_t i, un;
	pid_t pid;

	initial(p, 2, 5);
	s = store(self->dev, 2, 5, 1, p);
	ASSERT_NE(NULL, s);
	/* 2 devices x 5 slots: each device holds 4 distinct experts, 16 copies in all. */
	EXPECT_EQ(LAYERS * EXPERTS, accel_moe_store_export(s, NULL, 0));
	EXPECT_EQ(-EINVAL, accel_moe_store_export(s, NULL, 1));
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.shared_copies);
	n = accel_moe_store_export(s, e, 2 * LAYERS * EXPERTS);
	ASSERT_EQ(LAYERS * EXPERTS, n);
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(LAYERS * EXPERTS, st.shared_copies);
	EXPECT_EQ(LAYERS * EXPERTS, st.exported);
	for (i = 0; i < (uint32_t)n; i++) {
		EXPECT_LT(e[i].layer, LAYERS);
		EXPECT_LT(e[i].expert, EXPERTS);
		EXPECT_GE(e[i].fd, 0);
	}
	{
		static uint32_t w[EBYTES / 4];

		pattern(w, 1, 3);
		EXPECT_EQ(-EPERM, accel_moe_store_write(s, 1, 3, w, EBYTES));
	}
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		close(sv[0]);
		_exit(share_child(sv[1]));
	}
	close(sv[1]);
	un = (uint32_t)n;
	ASSERT_EQ(sizeof(un), (size_t)write(sv[0], &un, sizeof(un)));
	ASSERT_EQ(0, send_shares(sv[0], e, un));
	close_shares(e, un);
	ASSERT_EQ(0, sync_byte(sv[0], '1'));
	/* A rotation with K 1: spare regions would be reused, never a shared one. */
	for (i = 0; i < LAYERS * 10; i++)
		q[i] = p[(i / 10) * 10 + (i % 10 + 5) % 10];
	ASSERT_EQ(0, accel_moe_store_apply(s, q, LAYERS * 10));
	ASSERT_GT(serve_until_done(s, 2000), 0);
	ASSERT_EQ(0, accel_moe_store_stats(s, &st));
	EXPECT_EQ(0, st.last_error);
	EXPECT_GT(st.copies, 0);
	EXPECT_EQ(0, st.shared_copies);	/* every shared copy moved away and was freed */
	ASSERT_EQ(1, write(sv[0], "2", 1));
	ASSERT_EQ(0, sync_byte(sv[0], '3'));
	accel_moe_store_destroy(s);
	ASSERT_EQ(1, write(sv[0], "4", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	/* The teardown checks the device's usage back where it was: no page kept. */
}

/* Entries that do not fit are refused, nothing kept. */
TEST_F(moe, shared_copies_refused)
{
	struct accel_moe_store_share e[LAYERS * EXPERTS + 1];
	ACCEL_OPTS(accel_moe_store_stats, st);
	ACCEL_OPTS(accel_moe_store_opts, o, .layers = LAYERS, .experts = EXPERTS,
		   .devices = 2, .slots_per_device = 4, .expert_bytes = EBYTES);
	struct accel_region *small;
	struct accel_space *sp;
	struct accel_moe_store *s, *b;
	int32_t p[LAYERS * 8];
	uint64_t v;
	int n, fd;

	initial(p, 2, 4);
	s = store(self->dev, 2, 4, 1, p);
	ASSERT_NE(NULL, s);
	n = accel_moe_store_export(s, e, LAYERS * EXPERTS);
	ASSERT_EQ(LAYERS * EXPERTS, n);
	o.from = e;
	o.nr_from = 0;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	o.nr_from = (uint32_t)n;
	o.from = NULL;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	o.from = e;
	/* A layer out of range. */
	e[0].layer = LAYERS;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	e[0].layer = 0;
	/* An expert of the placement with no entry: the last entry left out. */
	{
		struct accel_moe_store_share last = e[n - 1];
		o.nr_from = (uint32_t)n - 1;
		EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
		EXPECT_EQ(ENOENT, errno);
		o.nr_from = (uint32_t)n;
		EXPECT_EQ(last.fd, e[n - 1].fd);
	}
	/* A region of another size in its place. */
	small = accel_region_create(self->dev, 32u << 10, 32u << 10, ACCEL_NODE_ANY);
	ASSERT_NE(NULL, small);
	ASSERT_EQ(0, accel_region_export(small, &fd));
	e[LAYERS * EXPERTS] = e[0];
	e[0].fd = fd;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	/* A space's dma-buf. */
	sp = accel_space_create(self->dev, 4, 32u << 10);
	ASSERT_NE(NULL, sp);
	ASSERT_EQ(0, accel_space_export(sp, &fd));
	e[0].fd = fd;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	/* A closed fd. */
	e[0].fd = fd;
	EXPECT_EQ(NULL, accel_moe_store_create(self->dev, &o, p, LAYERS * 8));
	EXPECT_NE(0, errno);
	e[0] = e[LAYERS * EXPERTS];
	/* Whole again, it works: every copy taken, none filled. */
	b = accel_moe_store_create(self->dev, &o, p, LAYERS * 8);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, accel_moe_store_stats(b, &st));
	EXPECT_EQ(LAYERS * EXPERTS, st.adopted);
	EXPECT_EQ(0, st.fetched);
	ASSERT_EQ(0, accel_moe_store_step_begin(b, &v));
	EXPECT_EQ(0, check_all(b, v));
	EXPECT_EQ(0, accel_moe_store_step_end(b, v));
	accel_moe_store_destroy(b);
	accel_space_destroy(sp);
	accel_region_destroy(small);
	close_shares(e, (uint32_t)n);
	accel_moe_store_destroy(s);
}

TEST_HARNESS_MAIN
