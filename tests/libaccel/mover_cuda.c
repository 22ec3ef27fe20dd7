// SPDX-License-Identifier: GPL-2.0-only
/*
 * Device tiers in the data mover (accel_tier_create_cuda(),
 * accel_tier_register_cuda(), CUDA jobs of accel_mover_submit()), cmocka,
 * against the fake CUDA driver (tests/libaccel/fake_cuda.c: device memory
 * is host memory, so the test reads it back directly; FAKE_CUDA_STRICT_ACCESS
 * makes every copy's device side accessible by its stream's GPU). Host
 * tiers are memfd tiers (no kvaccel device needed).
 *
 * What is checked: an allocated tier and registered engine memory in both
 * layouts (the engine's memory comes from the backend's own device tier,
 * cuda/cuda_tier.h, as an engine's VMM allocation would), byte for byte
 * after host -> device -> host round trips and at the layout's addresses
 * (strides with gaps left untouched); host memory registered for DMA
 * (no pageable copies) and unregistered on destroy; registered memory
 * not freed, unmapped or touched by accel_tier_destroy(); layer-wise jobs
 * (only the chosen layers change, on device, host-host memcpy and
 * device-device paths); a job waiting for an engine event (nothing copied
 * before it completes) and recording one (complete only after the copy);
 * two GPUs, straight through the peer path and staged (four threads at once
 * into one tier: one bounce buffer); bad arguments
 * (-EINVAL, nothing queued); failures injected into the driver reaching
 * accel_mover_done.status, or the submission where nothing was queued;
 * the KV cache's lazily mapped device tier (accel_tier_create_cuda_lazy():
 * chunks mapped as blocks are prepared, an export mapping the rest).
 * build/native/mover_cuda_plain runs it against a driver without
 * cuMemcpyBatchAsync, dma-buf export or peer access (every GPU-to-GPU copy
 * staged).
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "accel.h"
#include "cuda/cuda_loader.h"
#include "cuda/cuda_tier.h"
#include "fake_cuda.h"
#include "mover/mover.h"

#define KIB	1024ull
#define MIB	(1024ull * 1024)

static struct fake_cuda_ops fake;
static cu_context ctx0;

static const struct accel_cuda_api *api(void)
{
	char why[160];
	int err;

	return &accel_cuda_load(&err, why, sizeof(why))->api;
}

static int setup(void **state)
{
	char why[160];
	cu_device dev;
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
	if (api()->cuDeviceGet(&dev, 0) || api()->cuDevicePrimaryCtxRetain(&ctx0, dev))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	api()->cuDevicePrimaryCtxRelease(0);
	return 0;
}

static struct accel_tier *memfd_tier(uint64_t bb, uint32_t blocks, uint32_t layers)
{
	ACCEL_OPTS(accel_tier_opts, o, .block_bytes = bb,
					      .blocks = blocks, .layers = layers);
	struct accel_tier *t = accel_tier_create_memfd(&o);

	assert_non_null(t);
	return t;
}

static struct accel_tier *cuda_tier(int dev, uint64_t bb, uint32_t blocks, uint32_t layers)
{
	ACCEL_OPTS(accel_tier_cuda_opts, o, .device = dev,
						   .block_bytes = bb, .blocks = blocks,
						   .layers = layers);
	struct accel_tier *t = accel_tier_create_cuda(&o);

	assert_non_null(t);
	return t;
}

/* The engine's own device memory on @dev: @len bytes, mapped, accessible by @dev. */
static struct accel_cuda_tier *engine_mem(int dev, uint64_t len, unsigned char **p)
{
	struct accel_cuda_tier_opts o = { .device = dev, .reserve = len };
	struct accel_cuda_tier *t = NULL;
	char why[160];

	assert_int_equal(0, accel_cuda_tier_create(&o, &t, why, sizeof(why)));
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_size(t)));
	*p = (unsigned char *)(uintptr_t)accel_cuda_tier_base(t);
	return t;
}

static void fill(struct accel_tier *t, uint32_t seed)
{
	uint32_t b;
	uint64_t i;

	for (b = 0; b < t->blocks; b++) {
		unsigned char *p = accel_tier_block_addr(t, b);

		for (i = 0; i < t->block_bytes; i++)
			p[i] = (unsigned char)(seed * 131 + b * 31 + i * 7 + i / 4096);
	}
}

/* Submit, wait, and return the job's status. */
static int move(struct accel_mover *m, const struct accel_tier *const *tiers, uint32_t nt,
		const struct accel_bm_run *runs, uint32_t n,
		const struct accel_mover_submit_opts *o)
{
	struct accel_mover_done d;
	uint64_t id;

	assert_int_equal(0, accel_mover_submit(m, tiers, nt, runs, n, o, &id));
	assert_int_equal(1, accel_mover_poll(m, &d, 1, -1));
	assert_int_equal(id, d.job_id);
	return d.status;
}

#define RUN(st, sb, dt, db, c) \
	((struct accel_bm_run){ .src_tier = (st), .src_block = (sb), .dst_tier = (dt), \
				.dst_block = (db), .count = (c) })

static void allocated_round_trip(void **state)
{
	const uint64_t bb = 64 * KIB;
	struct accel_tier *h = memfd_tier(bb, 8, 0), *back = memfd_tier(bb, 8, 0), *d;
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_mover *m = accel_mover_create(NULL);
	struct fake_cuda_stats s0, s;
	struct accel_bm_run r[2];
	uint32_t b;

	(void)state;
	assert_non_null(m);
	fake.stats(&s0);
	d = cuda_tier(0, bb, 8, 4);
	assert_int_equal(0, accel_tier_info(d, &info));
	assert_int_equal(ACCEL_TIER_CUDA, info.kind);
	assert_int_equal(8, info.blocks);
	assert_int_equal(bb, info.block_bytes);
	assert_int_equal(4, info.layers);
	assert_int_equal(0, info.device);
	assert_int_equal(ACCEL_TIER_LAYOUT_BLOCKS, info.layout);
	assert_int_equal(bb, info.block_stride);
	assert_int_equal(0, accel_tier_info(h, &info));
	assert_int_equal(-1, info.device);
	assert_int_equal(1, info.layers);
	fill(h, 1);
	{
		const struct accel_tier *t[] = { h, d, back };

		/* Two runs, one job: host blocks 0-3 to device 2-5, 6 to 0. */
		r[0] = RUN(0, 0, 1, 2, 4);
		r[1] = RUN(0, 6, 1, 0, 1);
		assert_int_equal(0, move(m, t, 3, r, 2, NULL));
		/* Device memory is host memory with the fake: check it in place. */
		for (b = 0; b < 4; b++)
			assert_memory_equal(accel_tier_block_addr(h, b),
					    accel_tier_block_addr(d, 2 + b), bb);
		assert_memory_equal(accel_tier_block_addr(h, 6), accel_tier_block_addr(d, 0), bb);
		r[0] = RUN(1, 2, 2, 0, 4);
		r[1] = RUN(1, 0, 2, 6, 1);
		assert_int_equal(0, move(m, t, 3, r, 2, NULL));
	}
	for (b = 0; b < 4; b++)
		assert_memory_equal(accel_tier_block_addr(h, b), accel_tier_block_addr(back, b), bb);
	assert_memory_equal(accel_tier_block_addr(h, 6), accel_tier_block_addr(back, 6), bb);
	fake.stats(&s);
	/* Both host tiers registered for DMA: no pageable copy. */
	assert_int_equal(s0.registered_ranges + 2, s.registered_ranges);
	assert_int_equal(s0.pageable_copies, s.pageable_copies);
	assert_int_equal(0, accel_mover_pending(m));
	accel_mover_destroy(m);
	accel_tier_destroy(h);
	accel_tier_destroy(back);
	fake.stats(&s);
	assert_int_equal(s0.registered_ranges, s.registered_ranges);
	accel_tier_destroy(d);
	fake.stats(&s);
	/* The allocated tier's memory went with it. */
	assert_int_equal(s0.live_allocations, s.live_allocations);
	assert_int_equal(s0.reservations, s.reservations);
	assert_int_equal(s0.streams, s.streams);
}

/*
 * The KV cache's device tier (accel_tier_create_cuda_lazy()): every chunk
 * created at once, none mapped until a block in it is prepared (holes
 * skipped, a chunk mapped once, a failure leaving it unmapped for the next
 * try); copies through accel_mover_cuda_queue() as for any device tier;
 * an export maps the rest first.
 */
static void lazy_mapping(void **state)
{
	const uint64_t bb = 64 * KIB, per_chunk = FAKE_CUDA_GRANULARITY / bb;
	const uint32_t blocks = (uint32_t)(3 * per_chunk);
	struct accel_tier *h = memfd_tier(bb, 4, 0), *d = NULL;
	const uint32_t prep[] = { 1, UINT32_MAX, (uint32_t)per_chunk + 8 }, again[] = { 0, 2 };
	struct accel_cuda_tier_stats cs;
	struct fake_cuda_stats s0, s;
	struct accel_cuda_wait *w = NULL;
	struct accel_bm_run r;
	uint32_t nr = 0;
	char why[160] = "";
	int st = -1, fd = -1, ret;

	(void)state;
	assert_non_null(h);
	fake.stats(&s0);
	assert_int_equal(-ENODEV, accel_tier_create_cuda_lazy(7, bb, blocks, &d, why,
							       sizeof(why)));
	assert_non_null(strstr(why, "7"));
	assert_int_equal(0, accel_tier_create_cuda_lazy(0, bb, blocks, &d, why, sizeof(why)));
	assert_int_equal(ACCEL_TIER_CUDA, d->kind);
	accel_cuda_tier_stats(accel_tier_cuda(d), &cs);
	assert_int_equal(3, cs.chunks_alive);
	assert_int_equal(0, cs.chunks_mapped);
	/* Block addresses are device pointers, mapped or not. */
	assert_int_equal(accel_cuda_tier_base(accel_tier_cuda(d)) + 5 * bb,
			 (uint64_t)(uintptr_t)accel_tier_block_addr(d, 5));
	/* A failure before anything is mapped: nothing is, and the next try maps. */
	assert_int_equal(0, fake.inject("cuCtxPushCurrent", 1, FAKE_CU_ERROR_UNKNOWN));
	assert_int_not_equal(0, accel_tier_cuda_prepare(d, prep, 3));
	accel_cuda_tier_stats(accel_tier_cuda(d), &cs);
	assert_int_equal(0, cs.chunks_mapped);
	assert_int_equal(0, accel_tier_cuda_prepare(d, prep, 3));
	accel_cuda_tier_stats(accel_tier_cuda(d), &cs);
	assert_int_equal(2, cs.chunks_mapped);
	fake.stats(&s);
	assert_int_equal(s0.maps + 2, s.maps);
	/* Mapped chunks are not mapped again. */
	assert_int_equal(0, accel_tier_cuda_prepare(d, again, 2));
	fake.stats(&s);
	assert_int_equal(s0.maps + 2, s.maps);
	/* A copy into a prepared block of the second chunk, through the mover's CUDA path. */
	fill(h, 3);
	{
		const struct accel_tier *t[] = { h, d };
		static const struct accel_piece_sel whole;

		r = RUN(0, 2, 1, prep[2], 1);
		assert_int_equal(0, accel_mover_cuda_queue(t, &r, 1, &whole, NULL, NULL, &w, &nr,
							   &st));
		assert_int_equal(0, st);
		assert_int_equal(1, nr);
		assert_ptr_equal(accel_tier_cuda(d), w[0].ct);
		assert_int_equal(0, accel_cuda_tier_wait(w[0].ct, w[0].ticket, -1));
		free(w);
	}
	assert_memory_equal(accel_tier_block_addr(h, 2), accel_tier_block_addr(d, prep[2]), bb);
	/*
	 * An export is of the whole tier: mapped first (the fake exports a
	 * range within one chunk's mapping only: -EINVAL for three).
	 */
	ret = accel_tier_export(d, &fd);
	assert_true(ret == -EINVAL || ret == -EOPNOTSUPP);
	accel_cuda_tier_stats(accel_tier_cuda(d), &cs);
	assert_int_equal(3, cs.chunks_mapped);
	accel_tier_destroy(d);
	/* A one-chunk tier, nothing prepared: exported whole (no dma-bufs: -EOPNOTSUPP). */
	assert_int_equal(0, accel_tier_create_cuda_lazy(0, bb, (uint32_t)per_chunk, &d, why,
							 sizeof(why)));
	ret = accel_tier_export(d, &fd);
	assert_true(ret == 0 || ret == -EOPNOTSUPP);
	if (!ret) {
		assert_true(fd >= 0);
		close(fd);
	}
	accel_cuda_tier_stats(accel_tier_cuda(d), &cs);
	assert_int_equal(1, cs.chunks_mapped);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
	fake.stats(&s);
	assert_int_equal(s0.live_allocations, s.live_allocations);
	assert_int_equal(s0.reservations, s.reservations);
	assert_int_equal(s0.streams, s.streams);
	assert_int_equal(s0.registered_ranges, s.registered_ranges);
}

static void registered_blocks(void **state)
{
	const uint64_t bb = 48 * KIB, stride = bb + 16 * KIB;
	struct accel_tier *h = memfd_tier(bb, 6, 0), *back = memfd_tier(bb, 6, 0), *d;
	ACCEL_OPTS(accel_tier_cuda_opts, o, .device = 0,
						   .layout = ACCEL_TIER_LAYOUT_BLOCKS,
						   .block_bytes = bb, .blocks = 6,
						   .block_stride = stride);
	ACCEL_OPTS(accel_tier_info, info);
	struct accel_mover *m = accel_mover_create(NULL);
	struct fake_cuda_stats s0, s;
	struct accel_cuda_tier *en;
	unsigned char *mem, *copy;
	struct accel_bm_run r;
	uint32_t b;

	(void)state;
	en = engine_mem(0, 2 * MIB, &mem);
	memset(mem, 0xee, 6 * stride);
	o.base = (uint64_t)(uintptr_t)mem;
	d = accel_tier_register_cuda(&o);
	assert_non_null(d);
	assert_int_equal(0, accel_tier_info(d, &info));
	assert_int_equal(ACCEL_TIER_CUDA_REGISTERED, info.kind);
	assert_int_equal(stride, info.block_stride);
	assert_ptr_equal(mem + 3 * stride, accel_tier_block_addr(d, 3));
	{
		int fd;

		/* The engine's memory: its own to export. */
		assert_int_equal(-EOPNOTSUPP, accel_tier_export(d, &fd));
	}
	fill(h, 2);
	{
		const struct accel_tier *t[] = { h, d, back };

		r = RUN(0, 0, 1, 0, 6);
		assert_int_equal(0, move(m, t, 3, &r, 1, NULL));
		for (b = 0; b < 6; b++) {
			unsigned char *gap = mem + b * stride + bb;
			uint64_t i;

			assert_memory_equal(accel_tier_block_addr(h, b), mem + b * stride, bb);
			for (i = 0; i < stride - bb; i++)
				assert_int_equal(0xee, gap[i]);
		}
		r = RUN(1, 0, 2, 0, 6);
		assert_int_equal(0, move(m, t, 3, &r, 1, NULL));
	}
	for (b = 0; b < 6; b++)
		assert_memory_equal(accel_tier_block_addr(h, b), accel_tier_block_addr(back, b), bb);
	/* Destroying the registered tier leaves the engine's memory as it is. */
	copy = malloc(6 * stride);
	assert_non_null(copy);
	memcpy(copy, mem, 6 * stride);
	fake.stats(&s0);
	accel_tier_destroy(d);
	fake.stats(&s);
	assert_int_equal(s0.live_allocations, s.live_allocations);
	assert_int_equal(s0.unmaps, s.unmaps);
	assert_int_equal(s0.reservations, s.reservations);
	assert_int_equal(s0.streams - 1, s.streams);	/* its own stream only */
	assert_memory_equal(copy, mem, 6 * stride);
	free(copy);
	accel_mover_destroy(m);
	accel_tier_destroy(h);
	accel_tier_destroy(back);
	accel_cuda_tier_destroy(en);
}

/* Engine memory with one tensor per layer: layer l at mem + l * 512 KiB, stride @stride. */
static struct accel_tier *layers_tier(unsigned char *mem, uint64_t bb, uint32_t blocks,
				      uint32_t layers, uint64_t stride, uint64_t *lb)
{
	ACCEL_OPTS(accel_tier_cuda_opts, o, .device = 0,
						   .layout = ACCEL_TIER_LAYOUT_LAYERS,
						   .block_bytes = bb, .blocks = blocks,
						   .layers = layers, .block_stride = stride,
						   .layer_base = lb, .nr_layer_base = layers);
	struct accel_tier *t;
	uint32_t l;

	for (l = 0; l < layers; l++)
		lb[l] = (uint64_t)(uintptr_t)(mem + l * 512 * KIB);
	t = accel_tier_register_cuda(&o);
	assert_non_null(t);
	return t;
}

static void registered_layers(void **state)
{
	const uint64_t bb = 64 * KIB, piece = bb / 4, stride = piece + 4 * KIB;
	struct accel_tier *h = memfd_tier(bb, 8, 4), *back = memfd_tier(bb, 8, 0), *d;
	struct accel_mover *m = accel_mover_create(NULL);
	struct accel_cuda_tier *en;
	struct accel_bm_run r[2];
	unsigned char *mem;
	uint64_t lb[4];
	uint32_t b, l;

	(void)state;
	en = engine_mem(0, 2 * MIB, &mem);
	d = layers_tier(mem, bb, 8, 4, stride, lb);
	errno = 0;
	assert_null(accel_tier_block_addr(d, 0));
	assert_int_equal(EINVAL, errno);
	fill(h, 3);
	{
		/* back has one layer, kept contiguous: whole blocks may go either way. */
		const struct accel_tier *t[] = { h, d, back };

		r[0] = RUN(0, 0, 1, 1, 3);
		r[1] = RUN(0, 5, 1, 7, 1);
		assert_int_equal(0, move(m, t, 3, r, 2, NULL));
		for (b = 0; b < 3; b++)
			for (l = 0; l < 4; l++)
				assert_memory_equal((unsigned char *)accel_tier_block_addr(h, b) +
						    l * piece,
						    mem + l * 512 * KIB + (1 + b) * stride, piece);
		r[0] = RUN(1, 1, 2, 0, 3);
		r[1] = RUN(1, 7, 2, 5, 1);
		assert_int_equal(0, move(m, t, 3, r, 2, NULL));
	}
	for (b = 0; b < 3; b++)
		assert_memory_equal(accel_tier_block_addr(h, b), accel_tier_block_addr(back, b), bb);
	assert_memory_equal(accel_tier_block_addr(h, 5), accel_tier_block_addr(back, 5), bb);
	accel_mover_destroy(m);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
	accel_tier_destroy(back);
	accel_cuda_tier_destroy(en);
}

/* Layers [first, first + count) of @n blocks of @a and @b equal, the others of @b as @old. */
static void check_layers(struct accel_tier *a, struct accel_tier *bt, const unsigned char *old,
			 uint32_t n, uint32_t layers, uint32_t first, uint32_t count)
{
	uint64_t piece = a->block_bytes / layers;
	uint32_t b, l;

	for (b = 0; b < n; b++) {
		for (l = 0; l < layers; l++) {
			unsigned char *pa = (unsigned char *)accel_tier_block_addr(a, b) + l * piece;
			unsigned char *pb = (unsigned char *)accel_tier_block_addr(bt, b) + l * piece;

			if (l >= first && l < first + count)
				assert_memory_equal(pa, pb, piece);
			else
				assert_memory_equal(old + b * a->block_bytes + l * piece, pb, piece);
		}
	}
}

static void layer_wise(void **state)
{
	const uint64_t bb = 32 * KIB;
	const uint32_t L = 8, n = 4;
	struct accel_tier *h = memfd_tier(bb, n, L), *h2 = memfd_tier(bb, n, L);
	struct accel_tier *d = cuda_tier(0, bb, n, L), *d1 = cuda_tier(0, bb, n, L), *dl;
	ACCEL_OPTS(accel_mover_submit_opts, o,
						      .flags = ACCEL_MOVER_LAYERS,
						      .layer_first = 2, .layer_count = 3);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, h2, d, d1, NULL };
	struct accel_cuda_tier *en;
	unsigned char *old, *mem;
	struct accel_bm_run r;
	uint64_t lb[8];

	(void)state;
	en = engine_mem(0, 8 * MIB, &mem);
	dl = layers_tier(mem, bb, n, L, 0, lb);
	t[4] = dl;
	old = malloc(n * bb);
	assert_non_null(old);
	fill(h, 4);
	fill(h2, 5);
	/* Host -> host (memcpy on the worker): layers 2-4 only. */
	memcpy(old, accel_tier_block_addr(h2, 0), n * bb);
	r = RUN(0, 0, 1, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, &o));
	check_layers(h, h2, old, n, L, 2, 3);
	/* Host -> device: all of it first, then layers 2-4 of new data. */
	fill(h2, 6);
	r = RUN(1, 0, 2, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
	memcpy(old, accel_tier_block_addr(d, 0), n * bb);
	r = RUN(0, 0, 2, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, &o));
	check_layers(h, d, old, n, L, 2, 3);
	/* Device -> device, one GPU: layer 7 only. */
	o.layer_first = 7;
	o.layer_count = 1;
	r = RUN(1, 0, 3, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
	memcpy(old, accel_tier_block_addr(d1, 0), n * bb);
	r = RUN(2, 0, 3, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, &o));
	check_layers(d, d1, old, n, L, 7, 1);
	/* Host -> per-layer engine tensors, layer 0 alone, then everything back. */
	memset(mem, 0, 8 * MIB);
	o.layer_first = 0;
	r = RUN(0, 0, 4, 0, n);
	assert_int_equal(0, move(m, t, 5, &r, 1, &o));
	for (uint32_t b = 0; b < n; b++) {
		assert_memory_equal(accel_tier_block_addr(h, b), mem + b * (bb / L), bb / L);
		/* Layer 1 untouched. */
		for (uint64_t i = 0; i < bb / L; i++)
			assert_int_equal(0, mem[512 * KIB + b * (bb / L) + i]);
	}
	free(old);
	accel_mover_destroy(m);
	accel_tier_destroy(dl);
	accel_tier_destroy(d);
	accel_tier_destroy(d1);
	accel_tier_destroy(h);
	accel_tier_destroy(h2);
	accel_cuda_tier_destroy(en);
}

struct engine {
	cu_stream s;
	cu_event e;
};

static void engine_open(struct engine *en)
{
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuStreamCreate(&en->s, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, api()->cuEventCreate(&en->e, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
}

static void engine_close(struct engine *en)
{
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuStreamSynchronize(en->s));
	assert_int_equal(0, api()->cuEventDestroy(en->e));
	assert_int_equal(0, api()->cuStreamDestroy(en->s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
}

/*
 * The engine's stream is held (its kernels still "writing" the blocks),
 * its event recorded behind that: a job told to wait for it copies
 * nothing, and the event it records stays unfinished, until the engine's
 * stream goes on; then the data is there and the recorded event complete.
 */
static void events_in_and_out(void **state)
{
	const uint64_t bb = 64 * KIB;
	struct accel_tier *h = memfd_tier(bb, 4, 0), *back = memfd_tier(bb, 4, 0);
	struct accel_tier *d = cuda_tier(0, bb, 4, 0);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, d, back };
	ACCEL_OPTS(accel_mover_submit_opts, o,
						      .user_data = 77);
	struct accel_mover_done done;
	struct engine en, out;
	struct accel_bm_run r;
	uint64_t id, i;
	unsigned char *dp;

	(void)state;
	engine_open(&en);
	engine_open(&out);
	fill(h, 7);
	dp = accel_tier_block_addr(d, 0);
	assert_int_equal(0, fake.hold(en.s, 1));
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuEventRecord(en.e, en.s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	o.flags = ACCEL_MOVER_WAIT_EVENT | ACCEL_MOVER_RECORD_EVENT;
	o.wait_event = en.e;
	o.record_event = out.e;
	r = RUN(0, 0, 1, 0, 4);
	assert_int_equal(0, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	usleep(50 * 1000);
	/* Nothing copied, nothing finished, the out event not complete. */
	assert_int_equal(1, accel_mover_pending(m));
	assert_int_equal(0, accel_mover_poll(m, &done, 1, 0));
	for (i = 0; i < 4 * bb; i++)
		assert_int_equal(0, dp[i]);
	assert_int_equal(CU_ERROR_NOT_READY, api()->cuEventQuery(out.e));
	/* The engine's stream waits for the out event, then copies the device back. */
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuStreamWaitEvent(out.s, out.e, 0));
	assert_int_equal(0, api()->cuMemcpyAsync((cu_deviceptr)(uintptr_t)
						 accel_tier_block_addr(back, 0),
						 (cu_deviceptr)(uintptr_t)dp, 4 * bb, out.s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	assert_int_equal(1, fake.pending(out.s) >= 1);
	assert_int_equal(0, fake.hold(en.s, 0));
	assert_int_equal(1, accel_mover_poll(m, &done, 1, -1));
	assert_int_equal(id, done.job_id);
	assert_int_equal(77, done.user_data);
	assert_int_equal(0, done.status);
	assert_int_equal(0, api()->cuEventSynchronize(out.e));
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuStreamSynchronize(out.s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	assert_memory_equal(accel_tier_block_addr(h, 0), dp, 4 * bb);
	assert_memory_equal(accel_tier_block_addr(h, 0), accel_tier_block_addr(back, 0), 4 * bb);

	/* Record only: complete once the job is. */
	memset(accel_tier_block_addr(back, 0), 0, 4 * bb);
	o.flags = ACCEL_MOVER_RECORD_EVENT;
	o.wait_event = NULL;
	r = RUN(1, 0, 2, 0, 4);
	assert_int_equal(0, move(m, t, 3, &r, 1, &o));
	assert_int_equal(0, api()->cuEventQuery(out.e));
	assert_memory_equal(accel_tier_block_addr(h, 0), accel_tier_block_addr(back, 0), 4 * bb);
	accel_mover_destroy(m);
	engine_close(&en);
	engine_close(&out);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
	accel_tier_destroy(back);
}

/* Destroy waits for a CUDA job held back by an engine event. */
static void *release_later(void *p)
{
	usleep(100 * 1000);
	fake.hold(p, 0);
	return NULL;
}

static void destroy_waits(void **state)
{
	const uint64_t bb = 64 * KIB;
	struct accel_tier *h = memfd_tier(bb, 2, 0), *d = cuda_tier(0, bb, 2, 0);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, d };
	ACCEL_OPTS(accel_mover_submit_opts, o,
						      .flags = ACCEL_MOVER_WAIT_EVENT);
	struct accel_bm_run r = RUN(0, 0, 1, 0, 2);
	struct engine en;
	pthread_t th;
	uint64_t id;

	(void)state;
	engine_open(&en);
	fill(h, 8);
	assert_int_equal(0, fake.hold(en.s, 1));
	assert_int_equal(0, api()->cuCtxPushCurrent(ctx0));
	assert_int_equal(0, api()->cuEventRecord(en.e, en.s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	o.wait_event = en.e;
	assert_int_equal(0, accel_mover_submit(m, t, 2, &r, 1, &o, &id));
	assert_int_equal(0, pthread_create(&th, NULL, release_later, en.s));
	accel_mover_destroy(m);
	/* Done by the time destroy returned. */
	assert_memory_equal(accel_tier_block_addr(h, 0), accel_tier_block_addr(d, 0), 2 * bb);
	pthread_join(th, NULL);
	engine_close(&en);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
}

static void two_gpus(void **state)
{
	const uint64_t bb = 128 * KIB;
	struct accel_tier *h = memfd_tier(bb, 4, 0), *back = memfd_tier(bb, 4, 0);
	struct accel_tier *d0 = cuda_tier(0, bb, 4, 0), *d1 = cuda_tier(1, bb, 4, 0), *r1;
	ACCEL_OPTS(accel_tier_cuda_opts, ro, .device = 1,
						    .block_bytes = bb, .blocks = 4);
	struct accel_mover *m = accel_mover_create(NULL);
	bool no_peer = getenv("FAKE_CUDA_NO_PEER") != NULL;
	struct accel_cuda_tier_stats st;
	struct accel_cuda_tier *en;
	struct accel_bm_run r;
	unsigned char *mem;

	(void)state;
	en = engine_mem(1, 2 * MIB, &mem);
	ro.base = (uint64_t)(uintptr_t)mem;
	r1 = accel_tier_register_cuda(&ro);
	assert_non_null(r1);
	fill(h, 9);
	{
		const struct accel_tier *t[] = { h, d0, d1, r1, back };

		r = RUN(0, 0, 1, 0, 4);
		assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
		/* GPU 0 -> GPU 1, the allocated tier granting GPU 1 access: the peer path. */
		r = RUN(1, 0, 2, 0, 4);
		assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
		accel_cuda_tier_stats(accel_tier_cuda(d1), &st);
		/* FAKE_CUDA_NO_PEER (mover_cuda_plain): no peer path, staged. */
		assert_int_equal(!no_peer, st.peer_direct);
		assert_int_equal(no_peer, st.peer_staged);
		assert_int_equal(!no_peer, accel_cuda_tier_peer_granted(accel_tier_cuda(d0), 1));
		assert_memory_equal(accel_tier_block_addr(h, 0), accel_tier_block_addr(d1, 0),
				    4 * bb);
		/* The engine's memory on GPU 1 -> GPU 0: never granted, staged. */
		r = RUN(1, 0, 3, 0, 4);
		assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
		r = RUN(3, 0, 1, 0, 4);
		memset(accel_tier_block_addr(d0, 0), 0, 4 * bb);
		assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
		accel_cuda_tier_stats(accel_tier_cuda(d0), &st);
		assert_int_equal(1, st.peer_staged);
		r = RUN(1, 0, 4, 0, 4);
		assert_int_equal(0, move(m, t, 5, &r, 1, NULL));
	}
	assert_memory_equal(accel_tier_block_addr(h, 0), accel_tier_block_addr(back, 0), 4 * bb);
	accel_mover_destroy(m);
	accel_tier_destroy(r1);
	accel_tier_destroy(d0);
	accel_tier_destroy(d1);
	accel_tier_destroy(h);
	accel_tier_destroy(back);
	accel_cuda_tier_destroy(en);
}

/* Threads submitting staged GPU-to-GPU jobs into one tier at once (one bounce buffer). */
struct stager {
	struct accel_mover *m;
	const struct accel_tier **t;
	uint32_t first;
};

static void *stage_jobs(void *p)
{
	struct stager *sg = p;
	struct accel_bm_run r = RUN(0, sg->first, 1, sg->first, 2);
	uint32_t i;
	uint64_t id;

	for (i = 0; i < 16; i++)
		if (accel_mover_submit(sg->m, sg->t, 2, &r, 1, NULL, &id))
			return (void *)1;
	return NULL;
}

static void staged_concurrently(void **state)
{
	const uint64_t bb = 256 * KIB;
	struct accel_tier *d0 = cuda_tier(0, bb, 8, 0), *r1;
	ACCEL_OPTS(accel_tier_cuda_opts, ro, .device = 1, .block_bytes = bb, .blocks = 8);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[2];
	struct accel_mover_done done[64];
	struct accel_cuda_tier *en;
	struct stager sg[4];
	pthread_t th[4];
	unsigned char *mem;
	int got = 0, k, i;

	(void)state;
	en = engine_mem(1, 2 * MIB, &mem);
	for (i = 0; i < (int)(8 * bb); i++)
		mem[i] = (unsigned char)(i * 13 + i / 65536);
	ro.base = (uint64_t)(uintptr_t)mem;
	r1 = accel_tier_register_cuda(&ro);
	assert_non_null(r1);
	t[0] = r1;
	t[1] = d0;
	for (i = 0; i < 4; i++) {
		sg[i] = (struct stager){ .m = m, .t = t, .first = 2 * i };
		assert_int_equal(0, pthread_create(&th[i], NULL, stage_jobs, &sg[i]));
	}
	for (i = 0; i < 4; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	while (got < 64) {
		k = accel_mover_poll(m, done + got, 64 - got, -1);
		assert_true(k > 0);
		got += k;
	}
	for (i = 0; i < 64; i++)
		assert_int_equal(0, done[i].status);
	assert_memory_equal(mem, accel_tier_block_addr(d0, 0), 8 * bb);
	accel_mover_destroy(m);
	accel_tier_destroy(r1);
	accel_tier_destroy(d0);
	accel_cuda_tier_destroy(en);
}

static void bad_arguments(void **state)
{
	const uint64_t bb = 64 * KIB;
	struct accel_tier *h = memfd_tier(bb, 4, 4), *h2 = memfd_tier(bb, 4, 2);
	struct accel_tier *d = cuda_tier(0, bb, 4, 4);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, h2, d };
	ACCEL_OPTS(accel_mover_submit_opts, o);
	ACCEL_OPTS(accel_tier_cuda_opts, co, .device = 0,
						    .block_bytes = bb, .blocks = 4);
	struct fake_cuda_stats s0, s;
	struct accel_bm_run r = RUN(0, 0, 2, 0, 4);
	struct engine en;
	uint64_t lb[4] = { 1 << 20, 2 << 20, 0, 4 << 20 }, id;

	(void)state;
	engine_open(&en);
	fake.stats(&s0);
	/* Events without a device tier, flags and events that disagree, unknown flags. */
	o.flags = ACCEL_MOVER_WAIT_EVENT;
	o.wait_event = en.e;
	r = RUN(0, 0, 1, 0, 1);
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, NULL, 0, &o, &id));
	r = RUN(0, 0, 2, 0, 4);
	o.flags = 0;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.flags = ACCEL_MOVER_WAIT_EVENT;
	o.wait_event = NULL;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.flags = ACCEL_MOVER_RECORD_EVENT;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.flags = 1u << 7;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	/* Layers: none, past the end, the tiers cut differently, fields without the flag. */
	o.flags = ACCEL_MOVER_LAYERS;
	o.layer_count = 0;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.layer_first = 3;
	o.layer_count = 2;
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.layer_first = 0;
	o.layer_count = 1;
	r = RUN(1, 0, 2, 0, 4);
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	o.flags = 0;
	r = RUN(0, 0, 2, 0, 4);
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, &o, &id));
	/* A run past the device tier's end. */
	r = RUN(0, 0, 2, 1, 4);
	assert_int_equal(-EINVAL, accel_mover_submit(m, t, 3, &r, 1, NULL, &id));
	assert_int_equal(0, accel_mover_pending(m));
	fake.stats(&s);
	assert_int_equal(s0.memcpy_async + s0.batches, s.memcpy_async + s.batches);
	assert_int_equal(s0.stream_waits, s.stream_waits);

	/* Tier constructors. */
	assert_null(accel_tier_create_cuda(NULL));
	assert_int_equal(EINVAL, errno);
	co.device = -1;
	assert_null(accel_tier_create_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.device = FAKE_CUDA_MAX_DEVICES;
	assert_null(accel_tier_create_cuda(&co));
	assert_int_equal(ENODEV, errno);
	co.device = 0;
	co.layers = 3;	/* 64 KiB is no multiple of 3 */
	assert_null(accel_tier_create_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.layers = 0;
	co.base = 1 << 20;	/* an allocated tier takes no base */
	assert_null(accel_tier_create_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.base = 0;
	assert_null(accel_tier_register_cuda(&co));	/* BLOCKS without base */
	assert_int_equal(EINVAL, errno);
	co.base = 1 << 20;
	co.block_stride = bb - 1;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.block_stride = 1ull << 63;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EOVERFLOW, errno);
	co.block_stride = 0;
	co.base = UINT64_MAX - bb;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EOVERFLOW, errno);
	co.base = 0;
	co.layout = ACCEL_TIER_LAYOUT_LAYERS;
	co.layers = 4;
	co.layer_base = lb;
	co.nr_layer_base = 3;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.nr_layer_base = 4;	/* lb[2] is NULL */
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	lb[2] = 3 << 20;
	co.block_stride = bb / 4 - 1;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.block_stride = 0;
	co.layout = 2;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.layout = ACCEL_TIER_LAYOUT_LAYERS;
	co.flags = 1;
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	co.flags = 0;
	co.base = 1 << 20;	/* LAYERS takes no base */
	assert_null(accel_tier_register_cuda(&co));
	assert_int_equal(EINVAL, errno);
	fake.stats(&s);
	assert_int_equal(s0.streams, s.streams);
	/* An allocated tier exports its memory as a dma-buf, where the GPU can. */
	{
		int fd;

		if (getenv("FAKE_CUDA_NO_DMABUF")) {
			assert_int_equal(-EOPNOTSUPP, accel_tier_export(d, &fd));
		} else {
			assert_int_equal(0, accel_tier_export(d, &fd));
			close(fd);
		}
	}
	accel_mover_destroy(m);
	engine_close(&en);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
	accel_tier_destroy(h2);
}

/*
 * Driver failures: the first copy call failing (nothing queued) fails the
 * submission; a later one fails the job (its status in poll); so does the
 * wait for its copies.
 */
static void failures(void **state)
{
	const uint64_t bb = 64 * KIB;
	struct accel_tier *h = memfd_tier(bb, 4, 0), *d0 = cuda_tier(0, bb, 4, 0);
	struct accel_tier *d1 = cuda_tier(1, bb, 4, 0);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, d0, d1 };
	struct accel_bm_run r[2] = { RUN(0, 0, 1, 0, 1), RUN(0, 1, 2, 0, 1) };
	struct accel_mover_done done;
	uint64_t id;

	(void)state;
	/* One run of one block: one cuMemcpyAsync. */
	assert_int_equal(0, fake.inject("cuMemcpyAsync", 1, FAKE_CU_ERROR_UNKNOWN));
	assert_int_equal(-EIO, accel_mover_submit(m, t, 3, r, 1, NULL, &id));
	assert_int_equal(0, accel_mover_pending(m));
	/* Two streams (GPU 0's and GPU 1's): the second one's copy fails. */
	assert_int_equal(0, fake.inject("cuMemcpyAsync", 2, FAKE_CU_ERROR_UNKNOWN));
	assert_int_equal(0, accel_mover_submit(m, t, 3, r, 2, NULL, &id));
	assert_int_equal(1, accel_mover_poll(m, &done, 1, -1));
	assert_int_equal(id, done.job_id);
	assert_int_equal(-EIO, done.status);
	/* The wait for the copies fails. */
	assert_int_equal(0, fake.inject("cuEventSynchronize", 1, FAKE_CU_ERROR_UNKNOWN));
	assert_int_equal(0, accel_mover_submit(m, t, 3, r, 1, NULL, &id));
	assert_int_equal(1, accel_mover_poll(m, &done, 1, -1));
	assert_int_equal(-EIO, done.status);
	/* And the next job is fine. */
	assert_int_equal(0, move(m, t, 3, r, 2, NULL));
	accel_mover_destroy(m);
	accel_tier_destroy(d0);
	accel_tier_destroy(d1);
	accel_tier_destroy(h);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * A figure, not a check: a store/load round of 64 scattered 64 KiB blocks
 * (submit + poll, host -> device -> host) through the mover, against the
 * same copies made straight on the backend tier (accel_cuda_tier_copy +
 * wait) and against memcpy of the same bytes (the fake's copies are
 * memcpy), all under ASan here.
 */
static void bench_round(void **state)
{
	const uint64_t bb = 64 * KIB;
	const int rounds = 200;
	struct accel_tier *h = memfd_tier(bb, 128, 0), *d = cuda_tier(0, bb, 128, 0);
	struct accel_mover *m = accel_mover_create(NULL);
	const struct accel_tier *t[] = { h, d };
	struct accel_bm_run st[64], ld[64];
	struct accel_cuda_copy c[64];
	double t0, mover, direct, mc;
	uint64_t tk;
	int i, k;

	(void)state;
	for (i = 0; i < 64; i++) {
		st[i] = RUN(0, 2 * i, 1, 127 - 2 * i, 1);
		ld[i] = RUN(1, 127 - 2 * i, 0, 2 * i + 1, 1);
	}
	assert_int_equal(0, move(m, t, 2, st, 64, NULL));	/* registers h, warms up */
	t0 = now_us();
	for (k = 0; k < rounds; k++) {
		assert_int_equal(0, move(m, t, 2, st, 64, NULL));
		assert_int_equal(0, move(m, t, 2, ld, 64, NULL));
	}
	mover = (now_us() - t0) / rounds;
	t0 = now_us();
	for (k = 0; k < rounds; k++) {
		for (i = 0; i < 64; i++)
			c[i] = (struct accel_cuda_copy){
				.dst = accel_tier_layer_addr(d, st[i].dst_block, 0),
				.src = accel_tier_layer_addr(h, st[i].src_block, 0), .len = bb };
		assert_int_equal(0, accel_cuda_tier_copy(accel_tier_cuda(d), c, 64, &tk));
		assert_int_equal(0, accel_cuda_tier_wait(accel_tier_cuda(d), tk, -1));
		for (i = 0; i < 64; i++)
			c[i] = (struct accel_cuda_copy){
				.dst = accel_tier_layer_addr(h, ld[i].dst_block, 0),
				.src = accel_tier_layer_addr(d, ld[i].src_block, 0), .len = bb };
		assert_int_equal(0, accel_cuda_tier_copy(accel_tier_cuda(d), c, 64, &tk));
		assert_int_equal(0, accel_cuda_tier_wait(accel_tier_cuda(d), tk, -1));
	}
	direct = (now_us() - t0) / rounds;
	t0 = now_us();
	for (k = 0; k < rounds; k++) {
		for (i = 0; i < 64; i++)
			memcpy(accel_tier_block_addr(d, st[i].dst_block),
			       accel_tier_block_addr(h, st[i].src_block), bb);
		for (i = 0; i < 64; i++)
			memcpy(accel_tier_block_addr(h, ld[i].dst_block),
			       accel_tier_block_addr(d, ld[i].src_block), bb);
	}
	mc = (now_us() - t0) / rounds;
	printf("# bench round of 64 x 64 KiB store+load (fake driver, ASan): mover %.1f us, "
	       "backend tier direct %.1f us, memcpy %.1f us; mover overhead %.1f us per job\n",
	       mover, direct, mc, (mover - direct) / 2);
	accel_mover_destroy(m);
	accel_tier_destroy(d);
	accel_tier_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allocated_round_trip),
		cmocka_unit_test(lazy_mapping),
		cmocka_unit_test(registered_blocks),
		cmocka_unit_test(registered_layers),
		cmocka_unit_test(layer_wise),
		cmocka_unit_test(events_in_and_out),
		cmocka_unit_test(destroy_waits),
		cmocka_unit_test(two_gpus),
		cmocka_unit_test(staged_concurrently),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(failures),
		cmocka_unit_test(bench_round),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
