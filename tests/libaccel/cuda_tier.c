// SPDX-License-Identifier: GPL-2.0-only
/*
 * The cuda backend's device tier (libaccel/src/cuda/cuda_tier.c), cmocka.
 * Natively it runs against tests/libaccel/fake_cuda.c (a libcuda.so.1 over
 * host memory: device pointers are host addresses, copies are memcpy); on
 * the GPU machine, with the real driver, the same tests run on GPU 0 (and
 * GPU 1 for peers, skipped with one GPU), and the checks only the fake can
 * answer are skipped. Without any driver every test is a SKIP.
 *
 * What is checked: the pool created ahead of time and used by map (no
 * cuMemCreate on the map path while it lasts), all-or-nothing maps at the
 * chunk limit, unmap returning chunks to the pool, scattered 16 KiB pieces
 * host -> device -> host with their data, adjacent pieces coalesced into
 * runs and the runs sent in one batch call, tickets and waits, peer access
 * granted per range (now and for later maps), two GPUs' chunks aliased
 * into one range of the caller's, GPU-to-GPU copies (the peer
 * path, or staged through the host without peers), dma-buf export,
 * every call's refusal of bad arguments, the caller's current context
 * left as it was by every call, copies ordered against an engine's events
 * both ways, and failed copy calls leaving nothing of theirs in flight
 * (the last with the fake only: it holds streams back and injects
 * failures).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "cuda/cuda_loader.h"
#include "cuda/cuda_tier.h"
#include "fake_cuda.h"

#define MIB	(1024ull * 1024)
#define KIB	1024ull

static bool have_driver(void)
{
	char why[160];
	int err;

	if (accel_cuda_load(&err, why, sizeof(why)))
		return true;
	printf("# SKIP no CUDA driver: %s\n", why);
	return false;
}

/* The fake's per-granule access mask, or NULL with the real driver. */
static unsigned int (*fake_access)(unsigned long long ptr);
/* The fake's test entry points (have_fake), for the checks only it can answer. */
static struct fake_cuda_ops fake;
static bool have_fake;
/* GPU 0's primary context (the tier's), retained for the tests' own streams. */
static cu_context tier_ctx;

static int devices(void)
{
	char why[160];
	int err;

	return accel_cuda_load(&err, why, sizeof(why))->devices;
}

static bool have_fake_or_skip(void)
{
	if (!have_fake)
		printf("# SKIP needs the fake driver (held streams, injected failures)\n");
	return have_fake;
}

static int setup(void **state)
{
	const struct accel_cuda *cu;
	char why[160];
	cu_device dev;
	void *lib;
	int err;

	(void)state;
	/* The loader opened the driver RTLD_LOCAL: look in that object. */
	cu = accel_cuda_load(&err, why, sizeof(why));
	if (!cu)
		return 0;
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (lib)
		fake_access = (unsigned int (*)(unsigned long long))dlsym(lib, "fake_cuda_access");
	have_fake = !fake_cuda_bind(&fake);
	printf("# driver: %s\n", fake_access ? "the fake (tests/libaccel/fake_cuda.c)" :
	       "the real CUDA driver");
	if (cu->api.cuDeviceGet(&dev, 0) || cu->api.cuDevicePrimaryCtxRetain(&tier_ctx, dev))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	const struct accel_cuda *cu;
	char why[160];
	int err;

	(void)state;
	cu = accel_cuda_load(&err, why, sizeof(why));
	if (cu && tier_ctx)
		cu->api.cuDevicePrimaryCtxRelease(0);
	return 0;
}

static struct accel_cuda_tier *tier(uint64_t reserve, unsigned int prealloc,
				    unsigned int max)
{
	struct accel_cuda_tier_opts o = { .device = 0, .reserve = reserve,
					  .prealloc = prealloc, .max_chunks = max };
	struct accel_cuda_tier *t = NULL;
	char why[160];

	assert_int_equal(0, accel_cuda_tier_create(&o, &t, why, sizeof(why)));
	assert_non_null(t);
	return t;
}

static void pool_and_maps(void **state)
{
	struct accel_cuda_tier_stats s;
	struct accel_cuda_tier *t;
	uint64_t c;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(64 * MIB, 4, 0);
	c = accel_cuda_tier_chunk_size(t);
	assert_true(c >= 2 * MIB);
	assert_true(accel_cuda_tier_size(t) >= 64 * MIB);
	assert_int_equal(0, accel_cuda_tier_base(t) % c);
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(4, s.chunks_alive);
	assert_int_equal(4, s.chunks_free);
	assert_int_equal(0, s.chunks_mapped);

	/* Three chunks from the pool: nothing created on the way. */
	assert_int_equal(0, accel_cuda_tier_map(t, c, 3 * c));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(4, s.chunks_alive);
	assert_int_equal(1, s.chunks_free);
	assert_int_equal(3, s.chunks_mapped);
	/* Mapping what is mapped takes nothing. */
	assert_int_equal(0, accel_cuda_tier_map(t, 2 * c, c));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(1, s.chunks_free);
	/* Beyond the pool: it grows. */
	assert_int_equal(0, accel_cuda_tier_map(t, 8 * c, 2 * c));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(5, s.chunks_alive);
	assert_int_equal(0, s.chunks_free);
	assert_int_equal(5, s.chunks_mapped);
	/* Unmapped chunks go back to the pool, kept. */
	assert_int_equal(0, accel_cuda_tier_unmap(t, 0, 4 * c));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(5, s.chunks_alive);
	assert_int_equal(3, s.chunks_free);
	assert_int_equal(2, s.chunks_mapped);
	assert_int_equal(0, accel_cuda_tier_prealloc(t, 6));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(6, s.chunks_free);
	accel_cuda_tier_destroy(t);
}

static void map_is_all_or_nothing_at_the_limit(void **state)
{
	struct accel_cuda_tier_stats s;
	struct accel_cuda_tier *t;
	uint64_t c;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(32 * MIB, 2, 4);
	c = accel_cuda_tier_chunk_size(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, 3 * c));
	/* Two more would make five chunks: refused, and nothing of it stays. */
	assert_int_equal(-ENOMEM, accel_cuda_tier_map(t, 4 * c, 2 * c));
	accel_cuda_tier_stats(t, &s);
	assert_int_equal(3, s.chunks_mapped);
	assert_int_equal(4, s.chunks_alive);
	assert_int_equal(1, s.chunks_free);
	assert_int_equal(0, accel_cuda_tier_map(t, 4 * c, c));
	accel_cuda_tier_destroy(t);
}

/* Two host buffers registered with @t, the first filled with a pattern. */
static void host_buffers(struct accel_cuda_tier *t, size_t total, size_t blk,
			 unsigned char **src, unsigned char **back)
{
	size_t i;

	*src = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*back = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(*src != MAP_FAILED && *back != MAP_FAILED);
	for (i = 0; i < total; i++)
		(*src)[i] = (unsigned char)(i * 7 + i / blk);
	assert_int_equal(0, accel_cuda_tier_host_register(t, *src, total));
	assert_int_equal(0, accel_cuda_tier_host_register(t, *back, total));
}

static void host_buffers_free(struct accel_cuda_tier *t, size_t total, unsigned char *src,
			      unsigned char *back)
{
	assert_int_equal(0, accel_cuda_tier_host_unregister(t, src));
	assert_int_equal(0, accel_cuda_tier_host_unregister(t, back));
	munmap(src, total);
	munmap(back, total);
}

/* Host -> device -> host, 16 KiB pieces in a scattered order, data checked. */
static void scattered_copies_round_trip(void **state)
{
	const size_t blk = 16 * KIB, total = 8 * MIB, nblk = total / blk;
	struct accel_cuda_copy *cp = calloc(nblk, sizeof(*cp));
	unsigned int *perm = calloc(nblk, sizeof(*perm));
	struct accel_cuda_tier_stats s0, s1;
	struct accel_cuda_tier *t;
	unsigned char *src, *back;
	uint64_t tk1, tk2;
	cu_deviceptr base;
	size_t i;

	(void)state;
	if (!have_driver()) {
		free(cp);
		free(perm);
		skip();
	}
	assert_non_null(cp);
	assert_non_null(perm);
	t = tier(16 * MIB, 8, 0);
	base = accel_cuda_tier_base(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, 16 * MIB));
	host_buffers(t, total, blk, &src, &back);

	/* Device block perm[i] <- host block i: pairs of neighbours stay adjacent. */
	for (i = 0; i < nblk; i++)
		perm[i] = (unsigned int)(((i / 2) * 37 % (nblk / 2)) * 2 + i % 2);
	for (i = 0; i < nblk; i++) {
		cp[i].dst = base + (cu_deviceptr)perm[i] * blk;
		cp[i].src = (cu_deviceptr)(uintptr_t)(src + i * blk);
		cp[i].len = blk;
	}
	accel_cuda_tier_stats(t, &s0);
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, (unsigned int)nblk, &tk1));
	accel_cuda_tier_stats(t, &s1);
	assert_int_equal(nblk, s1.pieces - s0.pieces);
	assert_int_equal(nblk / 2, s1.runs - s0.runs);	/* neighbours merged */
	if (s1.batched)
		assert_int_equal(1, s1.batch_calls - s0.batch_calls);
	else
		assert_int_equal(nblk / 2, s1.copy_calls - s0.copy_calls);

	/* And back: device block perm[i] -> host block i of another buffer. */
	for (i = 0; i < nblk; i++) {
		cp[i].dst = (cu_deviceptr)(uintptr_t)(back + i * blk);
		cp[i].src = base + (cu_deviceptr)perm[i] * blk;
	}
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, (unsigned int)nblk, &tk2));
	assert_true(tk2 > tk1);
	assert_int_equal(0, accel_cuda_tier_wait(t, tk2, -1));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk1, 0));	/* older: done too */
	assert_memory_equal(src, back, total);

	/* One contiguous piece is one run and no batch. */
	cp[0].dst = base;
	cp[0].src = (cu_deviceptr)(uintptr_t)src;
	cp[0].len = 4 * MIB;
	accel_cuda_tier_stats(t, &s0);
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, 1, &tk1));
	accel_cuda_tier_stats(t, &s1);
	assert_int_equal(1, s1.runs - s0.runs);
	assert_int_equal(0, s1.batch_calls - s0.batch_calls);
	assert_int_equal(0, accel_cuda_tier_wait(t, tk1, 5000000000ll));

	host_buffers_free(t, total, src, back);
	accel_cuda_tier_destroy(t);
	free(cp);
	free(perm);
}

/*
 * 9000 pieces that do not touch (4 KiB, a gap after each on the device):
 * 9000 runs, sent in batches of at most 4096 (three calls), or one copy
 * each without the batch call; a driver refusing the batch call
 * (FAKE_CUDA_BATCH_UNSUPPORTED) makes the tier fall back for good. Data
 * checked both ways.
 */
static void large_batches_split(void **state)
{
	const size_t blk = 4 * KIB, nblk = 9000, total = nblk * blk;
	struct accel_cuda_copy *cp = calloc(nblk, sizeof(*cp));
	const char *refused = getenv("FAKE_CUDA_BATCH_UNSUPPORTED");
	struct accel_cuda_tier_stats s0, s1;
	struct accel_cuda_tier *t;
	unsigned char *src, *back;
	cu_deviceptr base;
	uint64_t tk;
	size_t i;

	(void)state;
	if (!have_driver()) {
		free(cp);
		skip();
	}
	assert_non_null(cp);
	t = tier(2 * total, 0, 0);
	base = accel_cuda_tier_base(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_size(t)));
	host_buffers(t, total, blk, &src, &back);
	for (i = 0; i < nblk; i++) {
		cp[i].dst = base + (cu_deviceptr)(2 * i) * blk;
		cp[i].src = (cu_deviceptr)(uintptr_t)(src + i * blk);
		cp[i].len = blk;
	}
	accel_cuda_tier_stats(t, &s0);
	if (fake_access && refused && !strcmp(refused, "1"))
		assert_true(s0.batched);	/* there, refused at the first call */
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, (unsigned int)nblk, &tk));
	accel_cuda_tier_stats(t, &s1);
	assert_int_equal(nblk, s1.runs - s0.runs);
	if (s1.batched) {
		assert_int_equal(3, s1.batch_calls - s0.batch_calls);
		assert_int_equal(0, s1.copy_calls - s0.copy_calls);
	} else {
		assert_int_equal(0, s1.batch_calls - s0.batch_calls);
		assert_int_equal(nblk, s1.copy_calls - s0.copy_calls);
	}
	if (fake_access && refused && !strcmp(refused, "1"))
		assert_false(s1.batched);
	for (i = 0; i < nblk; i++) {
		cp[i].dst = (cu_deviceptr)(uintptr_t)(back + i * blk);
		cp[i].src = base + (cu_deviceptr)(2 * i) * blk;
	}
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, (unsigned int)nblk, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	assert_memory_equal(src, back, total);

	host_buffers_free(t, total, src, back);
	accel_cuda_tier_destroy(t);
	free(cp);
}

/* A window over chunks 3, 0, 2, in that order: the same memory, no copy. */
static void window_over_chunks(void **state)
{
	static const uint32_t order[3] = { 3, 0, 2 };
	struct accel_cuda_tier *t;
	struct accel_cuda_copy cp;
	static unsigned char buf[4 * 64], out[3 * 64];
	cu_deviceptr w = 0;
	uint64_t c, tk;
	int i;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(16 * MIB, 4, 0);
	c = accel_cuda_tier_chunk_size(t);
	assert_int_equal(-EINVAL, accel_cuda_tier_window(t, order, 3, &w));	/* unmapped */
	assert_int_equal(0, accel_cuda_tier_map(t, 0, 4 * c));
	/* 64 bytes of tag i at the start of chunk i. */
	for (i = 0; i < 4; i++) {
		memset(buf + i * 64, 'a' + i, 64);
		cp = (struct accel_cuda_copy){ accel_cuda_tier_base(t) + (cu_deviceptr)i * c,
					       (cu_deviceptr)(uintptr_t)(buf + i * 64), 64 };
		assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	}
	assert_int_equal(0, accel_cuda_tier_window(t, order, 3, &w));
	assert_true(w != 0);
	for (i = 0; i < 3; i++) {
		cp = (struct accel_cuda_copy){ (cu_deviceptr)(uintptr_t)(out + i * 64),
					       w + (cu_deviceptr)i * c, 64 };
		assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	}
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	assert_int_equal('d', out[0]);
	assert_int_equal('a', out[64]);
	assert_int_equal('c', out[128]);
	/* A write through the window lands in the tier's chunk 0. */
	memset(buf, 'z', 64);
	cp = (struct accel_cuda_copy){ w + c, (cu_deviceptr)(uintptr_t)buf, 64 };
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	cp = (struct accel_cuda_copy){ (cu_deviceptr)(uintptr_t)out, accel_cuda_tier_base(t), 64 };
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	assert_int_equal('z', out[0]);
	assert_int_equal(0, accel_cuda_tier_window_free(t, w, 3));
	assert_int_equal(-EINVAL, accel_cuda_tier_window(t, order, 0, &w));
	assert_int_equal(-EINVAL, accel_cuda_tier_window(t, (uint32_t[]){ 99 }, 1, &w));
	assert_int_equal(-EINVAL, accel_cuda_tier_window_free(t, 0, 1));
	accel_cuda_tier_destroy(t);
}

/* Read @len bytes at device address @src into @out through @t's stream. */
static void read_back(struct accel_cuda_tier *t, cu_deviceptr src, void *out, size_t len)
{
	struct accel_cuda_copy cp = { (cu_deviceptr)(uintptr_t)out, src, len };
	uint64_t tk;

	assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
}

/*
 * Two GPUs' chunks aliased into one reserved range (the MoE store's
 * windows): each alias shows its tier's bytes, a write through it lands in
 * the tier, unalias and release give everything back; bad arguments refused.
 */
static void aliases_of_two_tiers(void **state)
{
	struct accel_cuda_tier_opts o = { .device = 1, .reserve = 8 * MIB };
	struct accel_cuda_tier *a, *b = NULL;
	static unsigned char buf[64], out[64];
	struct accel_cuda_copy cp;
	cu_deviceptr r = 0;
	char why[160];
	uint64_t c, tk;

	(void)state;
	if (!have_driver() || devices() < 2)
		skip();
	a = tier(8 * MIB, 0, 0);
	assert_int_equal(0, accel_cuda_tier_create(&o, &b, why, sizeof(why)));
	c = accel_cuda_tier_chunk_size(a);
	assert_int_equal(0, accel_cuda_tier_map(a, c, c));
	assert_int_equal(0, accel_cuda_tier_map(b, 0, c));
	assert_int_equal(0, accel_cuda_tier_reserve(a, 2 * c, &r));
	assert_true(r && !(r % c));
	assert_int_equal(-EINVAL, accel_cuda_tier_alias(a, 0, c, r));	/* unmapped */
	assert_int_equal(-EINVAL, accel_cuda_tier_alias(a, c, c, r + 1));
	assert_int_equal(-EINVAL, accel_cuda_tier_alias(a, c, c / 2, r));
	assert_int_equal(-EINVAL, accel_cuda_tier_alias(a, c, c, 0));
	memset(buf, 'a', sizeof(buf));
	cp = (struct accel_cuda_copy){ accel_cuda_tier_base(a) + c, (cu_deviceptr)(uintptr_t)buf, 64 };
	assert_int_equal(0, accel_cuda_tier_copy(a, &cp, 1, &tk));
	memset(buf, 'b', sizeof(buf));
	cp = (struct accel_cuda_copy){ accel_cuda_tier_base(b), (cu_deviceptr)(uintptr_t)buf, 64 };
	assert_int_equal(0, accel_cuda_tier_copy(b, &cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(b, tk, -1));
	assert_int_equal(0, accel_cuda_tier_alias(a, c, c, r));
	assert_int_equal(0, accel_cuda_tier_alias(b, 0, c, r + c));
	assert_int_not_equal(0, accel_cuda_tier_alias(b, 0, c, r + c));	/* mapped there already */
	read_back(a, r, out, 64);
	assert_int_equal('a', out[0]);
	read_back(b, r + c, out, 64);
	assert_int_equal('b', out[63]);
	/* Written through the alias, read from the tier. */
	memset(buf, 'z', sizeof(buf));
	cp = (struct accel_cuda_copy){ r + c, (cu_deviceptr)(uintptr_t)buf, 64 };
	assert_int_equal(0, accel_cuda_tier_copy(b, &cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(b, tk, -1));
	read_back(b, accel_cuda_tier_base(b), out, 64);
	assert_int_equal('z', out[0]);
	assert_int_not_equal(0, accel_cuda_tier_release(a, r, 2 * c));	/* still mapped */
	assert_int_equal(-EINVAL, accel_cuda_tier_unalias(a, r, 0));
	assert_int_equal(0, accel_cuda_tier_unalias(a, r, c));
	assert_int_equal(0, accel_cuda_tier_unalias(b, r + c, c));
	assert_int_equal(0, accel_cuda_tier_release(a, r, 2 * c));
	assert_int_equal(-EINVAL, accel_cuda_tier_reserve(a, c / 2, &r));
	/* The tiers' chunks are as they were. */
	read_back(a, accel_cuda_tier_base(a) + c, out, 64);
	assert_int_equal('a', out[0]);
	accel_cuda_tier_destroy(b);
	accel_cuda_tier_destroy(a);
}

/* More tickets than the event ring holds: every one completes in order. */
static void many_tickets(void **state)
{
	struct accel_cuda_tier *t;
	struct accel_cuda_copy cp;
	static unsigned char buf[64 * KIB];
	uint64_t tk, first = 0;
	int i;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(4 * MIB, 1, 0);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_chunk_size(t)));
	cp.dst = accel_cuda_tier_base(t);
	cp.src = (cu_deviceptr)(uintptr_t)buf;
	cp.len = sizeof(buf);
	for (i = 0; i < 300; i++) {
		assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
		if (!first)
			first = tk;
	}
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	assert_int_equal(0, accel_cuda_tier_wait(t, first, 0));
	assert_int_equal(-EINVAL, accel_cuda_tier_wait(t, tk + 1, 0));
	accel_cuda_tier_destroy(t);
}

static void peers_get_access_per_range(void **state)
{
	const struct accel_cuda *cu;
	struct accel_cuda_tier *t;
	char why[160];
	uint64_t c;
	int err, ret;

	(void)state;
	if (!have_driver())
		skip();
	cu = accel_cuda_load(&err, why, sizeof(why));
	if (cu->devices < 2) {
		printf("# SKIP one GPU: no peer to grant\n");
		skip();
	}
	t = tier(16 * MIB, 2, 0);
	c = accel_cuda_tier_chunk_size(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, c));
	ret = accel_cuda_tier_grant_peer(t, 1);
	if (ret == -EOPNOTSUPP) {
		/* Said clearly, nothing granted: copies stage through the host then. */
		printf("# GPU 1 cannot reach GPU 0's memory: -EOPNOTSUPP\n");
		assert_int_equal(-EOPNOTSUPP, accel_cuda_tier_grant_peer(t, 1));
		accel_cuda_tier_destroy(t);
		return;
	}
	assert_int_equal(0, ret);
	assert_int_equal(0, accel_cuda_tier_grant_peer(t, 1));	/* again: nothing to do */
	assert_int_equal(0, accel_cuda_tier_map(t, 4 * c, c));
	if (fake_access) {
		/* The chunk mapped before and the one mapped after: both devices. */
		assert_int_equal(3, fake_access(accel_cuda_tier_base(t)));
		assert_int_equal(3, fake_access(accel_cuda_tier_base(t) + 4 * c));
	}
	assert_int_equal(-EINVAL, accel_cuda_tier_grant_peer(t, 0));	/* itself */
	assert_int_equal(-EINVAL, accel_cuda_tier_grant_peer(t, cu->devices));
	accel_cuda_tier_destroy(t);
}

/* GPU to GPU: the peer path where granted, staged through the host where not. */
static void gpu_to_gpu(void **state)
{
	struct accel_cuda_tier_opts o = { .device = 1, .reserve = 8 * MIB, .prealloc = 2 };
	struct accel_cuda_tier *a, *b = NULL;
	struct accel_cuda_tier_stats s;
	const struct accel_cuda *cu;
	struct accel_cuda_copy cp[2];
	static unsigned char buf[3 * MIB], back[3 * MIB];
	char why[160];
	uint64_t c, tk;
	int err, ret;
	size_t i;

	(void)state;
	if (!have_driver())
		skip();
	cu = accel_cuda_load(&err, why, sizeof(why));
	if (cu->devices < 2) {
		printf("# SKIP one GPU: no GPU-to-GPU copy\n");
		skip();
	}
	a = tier(8 * MIB, 2, 0);
	assert_int_equal(0, accel_cuda_tier_create(&o, &b, why, sizeof(why)));
	assert_int_equal(1, accel_cuda_tier_device(b));
	c = accel_cuda_tier_chunk_size(a);
	assert_int_equal(0, accel_cuda_tier_map(a, 0, 2 * c));
	assert_int_equal(0, accel_cuda_tier_map(b, 0, 2 * c));
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 13 + 1);
	/* 3 MiB into GPU 0, then (in two pieces) to GPU 1, then back to the host. */
	cp[0] = (struct accel_cuda_copy){ accel_cuda_tier_base(a), (cu_deviceptr)(uintptr_t)buf,
					  sizeof(buf) };
	assert_int_equal(0, accel_cuda_tier_copy(a, cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(a, tk, -1));
	cp[0] = (struct accel_cuda_copy){ accel_cuda_tier_base(b) + c,
					  accel_cuda_tier_base(a), MIB };
	cp[1] = (struct accel_cuda_copy){ accel_cuda_tier_base(b),
					  accel_cuda_tier_base(a) + MIB, 2 * MIB };
	ret = accel_cuda_tier_grant_peer(a, 1);
	assert_true(ret == 0 || ret == -EOPNOTSUPP);
	assert_int_equal(0, accel_cuda_tier_copy_peer(b, a, cp, 2, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(b, tk, -1));
	accel_cuda_tier_stats(b, &s);
	assert_int_equal(ret ? 0 : 1, s.peer_direct);
	assert_int_equal(ret ? 1 : 0, s.peer_staged);
	cp[0] = (struct accel_cuda_copy){ (cu_deviceptr)(uintptr_t)back,
					  accel_cuda_tier_base(b) + c, MIB };
	cp[1] = (struct accel_cuda_copy){ (cu_deviceptr)(uintptr_t)(back + MIB),
					  accel_cuda_tier_base(b), 2 * MIB };
	assert_int_equal(0, accel_cuda_tier_copy(b, cp, 2, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(b, tk, -1));
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(-EINVAL, accel_cuda_tier_copy_peer(b, b, cp, 1, &tk));
	assert_int_equal(-EINVAL, accel_cuda_tier_copy_peer(b, a, NULL, 1, &tk));
	accel_cuda_tier_destroy(b);
	accel_cuda_tier_destroy(a);
}

static void dmabuf_export(void **state)
{
	struct accel_cuda_tier_stats s;
	struct accel_cuda_tier *t;
	uint64_t c;
	int fd = -1;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(8 * MIB, 1, 0);
	c = accel_cuda_tier_chunk_size(t);
	accel_cuda_tier_stats(t, &s);
	if (!s.dmabuf) {
		assert_int_equal(0, accel_cuda_tier_map(t, 0, c));
		assert_int_equal(-EOPNOTSUPP, accel_cuda_tier_export_dmabuf(t, 0, c, &fd));
		printf("# the device exports no dma-buf: -EOPNOTSUPP\n");
		accel_cuda_tier_destroy(t);
		return;
	}
	assert_int_equal(-EINVAL, accel_cuda_tier_export_dmabuf(t, 0, c, &fd));	/* unmapped */
	assert_int_equal(0, accel_cuda_tier_map(t, 0, c));
	assert_int_equal(0, accel_cuda_tier_export_dmabuf(t, 0, c, &fd));
	assert_true(fd >= 0);
	assert_int_equal((off_t)c, lseek(fd, 0, SEEK_END));
	close(fd);
	accel_cuda_tier_destroy(t);
}

static void bad_arguments(void **state)
{
	struct accel_cuda_tier_opts o = { .device = 0, .reserve = 8 * MIB };
	struct accel_cuda_copy cp = { 0 };
	struct accel_cuda_tier *t = NULL;
	const struct accel_cuda *cu;
	char why[160];
	uint64_t c, tk;
	int err, fd;

	(void)state;
	if (!have_driver())
		skip();
	cu = accel_cuda_load(&err, why, sizeof(why));
	assert_int_equal(-EINVAL, accel_cuda_tier_create(NULL, &t, why, sizeof(why)));
	assert_int_equal(-EINVAL, accel_cuda_tier_create(&o, NULL, why, sizeof(why)));
	o.reserve = 0;
	assert_int_equal(-EINVAL, accel_cuda_tier_create(&o, &t, why, sizeof(why)));
	o.reserve = 8 * MIB;
	o.device = cu->devices;
	assert_int_equal(-ENODEV, accel_cuda_tier_create(&o, &t, why, sizeof(why)));
	assert_non_null(strstr(why, "no CUDA device"));
	o.device = -1;
	assert_int_equal(-EINVAL, accel_cuda_tier_create(&o, &t, why, sizeof(why)));

	t = tier(8 * MIB, 1, 0);
	c = accel_cuda_tier_chunk_size(t);
	assert_int_equal(-EINVAL, accel_cuda_tier_map(NULL, 0, c));
	assert_int_equal(-EINVAL, accel_cuda_tier_map(t, 1, c));		/* unaligned */
	assert_int_equal(-EINVAL, accel_cuda_tier_map(t, 0, c + 1));
	assert_int_equal(-EINVAL, accel_cuda_tier_map(t, 0, 0));
	assert_int_equal(-EINVAL, accel_cuda_tier_map(t, accel_cuda_tier_size(t), c));
	assert_int_equal(-EINVAL, accel_cuda_tier_map(t, c, accel_cuda_tier_size(t)));
	assert_int_equal(-EINVAL, accel_cuda_tier_unmap(t, 1, c));
	assert_int_equal(-EINVAL, accel_cuda_tier_copy(t, NULL, 1, &tk));
	assert_int_equal(-EINVAL, accel_cuda_tier_copy(t, &cp, 0, &tk));
	assert_int_equal(-EINVAL, accel_cuda_tier_copy(t, &cp, 1, &tk));	/* zero length */
	assert_int_equal(-EINVAL, accel_cuda_tier_copy(t, &cp, 1, NULL));
	assert_int_equal(-EINVAL, accel_cuda_tier_wait(t, 0, 0));
	assert_int_equal(-EINVAL, accel_cuda_tier_wait(t, 99, 0));		/* never issued */
	assert_int_equal(-EINVAL, accel_cuda_tier_wait(NULL, 1, 0));
	assert_int_equal(-EINVAL, accel_cuda_tier_host_register(t, NULL, 4096));
	assert_int_equal(-EINVAL, accel_cuda_tier_host_register(t, &fd, 0));
	assert_int_equal(-EINVAL, accel_cuda_tier_host_unregister(t, NULL));
	assert_int_equal(-EINVAL, accel_cuda_tier_export_dmabuf(t, 0, c, NULL));
	assert_int_equal(-EINVAL, accel_cuda_tier_prealloc(NULL, 1));
	assert_int_equal(-EINVAL, accel_cuda_tier_grant_peer(NULL, 1));
	assert_int_equal(0, accel_cuda_tier_base(NULL));
	accel_cuda_tier_destroy(t);
	accel_cuda_tier_destroy(NULL);
}

/* --- the caller's context, engine events, failed copies -------------------- */

static const struct accel_cuda_api *api(void)
{
	char why[160];
	int err;

	return &accel_cuda_load(&err, why, sizeof(why))->api;
}

static cu_context current(void)
{
	cu_context c = (cu_context)&c;

	assert_int_equal(0, api()->cuCtxGetCurrent(&c));
	return c;
}

/*
 * Every entry point that talks to the driver leaves the calling thread's
 * current context as it found it: none, or another device's (the engine's
 * own), and the fake's context stack as deep. With the fake, no stream
 * work of the tier is submitted with another context current.
 */
static void tier_calls_with(cu_context mine, int depth)
{
	const size_t len = 64 * KIB;
	static const uint32_t order[2] = { 1, 0 };
	struct fake_cuda_stats s;
	struct accel_cuda_tier *t;
	struct accel_cuda_copy cp;
	unsigned char *buf;
	cu_deviceptr w = 0;
	cu_event ev;
	uint64_t c, tk;
	int fd = -1, ret;

#define SAME() do {								\
	assert_ptr_equal(mine, current());					\
	if (have_fake)								\
		assert_int_equal(depth, fake.context_depth());			\
} while (0)
	if (have_fake)
		fake.reset_stats();
	t = tier(16 * MIB, 1, 0);
	SAME();
	c = accel_cuda_tier_chunk_size(t);
	assert_int_equal(0, accel_cuda_tier_prealloc(t, 2));
	SAME();
	assert_int_equal(0, accel_cuda_tier_map(t, 0, 2 * c));
	SAME();
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(buf != MAP_FAILED);
	memset(buf, 0x3c, len);
	assert_int_equal(0, accel_cuda_tier_host_register(t, buf, len));
	SAME();
	cp = (struct accel_cuda_copy){ accel_cuda_tier_base(t), (cu_deviceptr)(uintptr_t)buf, len };
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	SAME();
	ret = accel_cuda_tier_wait(t, tk, 0);
	assert_true(ret == 0 || ret == -ETIMEDOUT);
	SAME();
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	SAME();
	/* A caller's event: made in the tier's device's primary context. */
	assert_int_equal(0, api()->cuCtxPushCurrent(tier_ctx));
	assert_int_equal(0, api()->cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	SAME();
	assert_int_equal(0, accel_cuda_tier_record(t, ev));
	SAME();
	assert_int_equal(0, accel_cuda_tier_wait_event(t, ev));
	SAME();
	assert_int_equal(0, accel_cuda_tier_window(t, order, 2, &w));
	SAME();
	assert_int_equal(0, accel_cuda_tier_window_free(t, w, 2));
	SAME();
	ret = accel_cuda_tier_grant_peer(t, 1);
	assert_true(ret == 0 || ret == -EOPNOTSUPP || ret == -EINVAL);
	SAME();
	ret = accel_cuda_tier_export_dmabuf(t, 0, c, &fd);
	assert_true(ret == 0 || ret == -EOPNOTSUPP);
	if (!ret)
		close(fd);
	SAME();
	assert_int_equal(0, accel_cuda_tier_unmap(t, c, c));
	SAME();
	assert_int_equal(0, accel_cuda_tier_host_unregister(t, buf));
	SAME();
	accel_cuda_tier_destroy(t);
	SAME();
	assert_int_equal(0, api()->cuEventDestroy(ev));
	munmap(buf, len);
	if (have_fake) {
		fake.stats(&s);
		assert_int_equal(0, s.foreign_ctx_calls);
	}
#undef SAME
}

static void caller_context_kept(void **state)
{
	cu_context other;

	(void)state;
	if (!have_driver())
		skip();
	/* No context current. */
	assert_null(current());
	tier_calls_with(NULL, 0);
	/* The engine's own context current: another device's where there is one. */
	assert_int_equal(0, api()->cuDevicePrimaryCtxRetain(&other, devices() > 1 ? 1 : 0));
	assert_int_equal(0, api()->cuCtxPushCurrent(other));
	tier_calls_with(other, 1);
	/* And the tier's own device's context, pushed twice: still two deep. */
	assert_int_equal(0, api()->cuCtxPushCurrent(tier_ctx));
	tier_calls_with(tier_ctx, 2);
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
	assert_null(current());
	assert_int_equal(0, api()->cuDevicePrimaryCtxRelease(devices() > 1 ? 1 : 0));
}

/* The engine's own driver calls: GPU 0's context current around them. */
static void engine_push(void)
{
	assert_int_equal(0, api()->cuCtxPushCurrent(tier_ctx));
}

static void engine_pop(void)
{
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
}

static void engine_record(cu_event e, cu_stream s)
{
	engine_push();
	assert_int_equal(0, api()->cuEventRecord(e, s));
	engine_pop();
}

/* An engine's stream and event on GPU 0 (its primary context). */
struct engine {
	cu_stream s;
	cu_event e;
};

static void engine_open(struct engine *en)
{
	assert_int_equal(0, api()->cuCtxPushCurrent(tier_ctx));
	assert_int_equal(0, api()->cuStreamCreate(&en->s, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, api()->cuEventCreate(&en->e, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
}

static void engine_close(struct engine *en)
{
	assert_int_equal(0, api()->cuCtxPushCurrent(tier_ctx));
	assert_int_equal(0, api()->cuStreamSynchronize(en->s));
	assert_int_equal(0, api()->cuEventDestroy(en->e));
	assert_int_equal(0, api()->cuStreamDestroy(en->s));
	assert_int_equal(0, api()->cuCtxPopCurrent(NULL));
}

/*
 * The engine's stream is busy (held, with the fake): its event recorded
 * there. The tier's copies queued after accel_cuda_tier_wait_event() wait
 * for it; an event the tier records (accel_cuda_tier_record()) completes
 * after them, and the engine's stream, told to wait for it, reads what
 * they wrote.
 */
static void copies_order_against_engine_events(void **state)
{
	const size_t len = 256 * KIB;
	struct engine en, reader;
	struct accel_cuda_tier *t;
	struct accel_cuda_copy cp[2];
	unsigned char *src, *back, *out;
	cu_deviceptr dev;
	uint64_t tk;
	size_t i;

	(void)state;
	if (!have_driver())
		skip();
	t = tier(8 * MIB, 1, 0);
	dev = accel_cuda_tier_base(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_chunk_size(t)));
	host_buffers(t, len, 4096, &src, &back);
	out = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(out != MAP_FAILED);
	assert_int_equal(0, accel_cuda_tier_host_register(t, out, len));
	engine_open(&en);
	engine_open(&reader);
	assert_int_equal(-EINVAL, accel_cuda_tier_wait_event(NULL, en.e));
	assert_int_equal(-EINVAL, accel_cuda_tier_wait_event(t, NULL));
	assert_int_equal(-EINVAL, accel_cuda_tier_record(NULL, en.e));
	assert_int_equal(-EINVAL, accel_cuda_tier_record(t, NULL));
	/* Never recorded: no wait (as cuStreamWaitEvent). */
	assert_int_equal(0, accel_cuda_tier_wait_event(t, en.e));

	/* The engine's stream busy, its event recorded behind that. */
	if (have_fake)
		assert_int_equal(0, fake.hold(en.s, 1));
	engine_record(en.e, en.s);
	assert_int_equal(0, accel_cuda_tier_wait_event(t, en.e));
	/* Host -> device -> host, in one call (two runs, in order on the stream). */
	cp[0] = (struct accel_cuda_copy){ dev, (cu_deviceptr)(uintptr_t)src, len };
	cp[1] = (struct accel_cuda_copy){ (cu_deviceptr)(uintptr_t)back, dev, len };
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp[0], 1, &tk));
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp[1], 1, &tk));
	assert_int_equal(0, accel_cuda_tier_record(t, reader.e));
	/* The reader's stream waits for the tier, then reads the device. */
	engine_push();
	assert_int_equal(0, api()->cuStreamWaitEvent(reader.s, reader.e, 0));
	assert_int_equal(0, api()->cuMemcpyAsync((cu_deviceptr)(uintptr_t)out, dev, len, reader.s));
	engine_pop();
	if (have_fake) {
		/* Nothing ran: the engine's event is not done. */
		assert_int_equal(-ETIMEDOUT, accel_cuda_tier_wait(t, tk, 0));
		assert_int_equal(CU_ERROR_NOT_READY, api()->cuEventQuery(reader.e));
		for (i = 0; i < len; i++)
			assert_true(!back[i] && !out[i]);
		assert_int_equal(0, fake.hold(en.s, 0));
	}
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	assert_memory_equal(src, back, len);
	engine_push();
	assert_int_equal(0, api()->cuStreamSynchronize(reader.s));
	engine_pop();
	assert_memory_equal(src, out, len);

	engine_close(&reader);
	engine_close(&en);
	assert_int_equal(0, accel_cuda_tier_host_unregister(t, out));
	munmap(out, len);
	host_buffers_free(t, len, src, back);
	accel_cuda_tier_destroy(t);
}

struct release_arg {
	cu_stream s;
	bool released;
};

static void *release_later(void *p)
{
	struct release_arg *r = p;

	usleep(150 * 1000);
	__atomic_store_n(&r->released, true, __ATOMIC_SEQ_CST);
	fake.hold(r->s, 0);
	return NULL;
}

/*
 * A copy call that fails after queueing part of its copies (the second
 * cuMemcpyAsync or cuMemcpyBatchAsync fails; or the ticket's event record
 * does) returns only once what it queued has run, though the stream is
 * busy behind an engine event for a while (released by another thread):
 * what it queued is done, nothing of the tier is queued any more.
 */
static void failed_copy_waits_for_what_it_queued(int how)
{
	const size_t blk = 4 * KIB, nblk = 4100, total = nblk * blk;
	struct accel_cuda_copy *cp = calloc(nblk, sizeof(*cp));
	struct accel_cuda_tier_stats s;
	struct release_arg rel = { 0 };
	struct accel_cuda_tier *t;
	unsigned char *src, *back;
	struct engine en;
	cu_deviceptr base;
	unsigned int n, first;
	pthread_t th;
	uint64_t tk;
	size_t i;

	assert_non_null(cp);
	t = tier(2 * total, 0, 0);
	base = accel_cuda_tier_base(t);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_size(t)));
	host_buffers(t, total, blk, &src, &back);
	/* Runs that do not touch: a gap after each on the device. */
	for (i = 0; i < nblk; i++)
		cp[i] = (struct accel_cuda_copy){ base + (cu_deviceptr)(2 * i) * blk,
						  (cu_deviceptr)(uintptr_t)(src + i * blk), blk };
	/* Once, so that the tier knows whether the batch call is refused. */
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, 2, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	memset((void *)(uintptr_t)base, 0, 2 * total);
	accel_cuda_tier_stats(t, &s);

	engine_open(&en);
	assert_int_equal(0, fake.hold(en.s, 1));
	engine_record(en.e, en.s);
	assert_int_equal(0, accel_cuda_tier_wait_event(t, en.e));
	if (how == 0 && s.batched) {
		/* Two batch calls (4096 + 4 runs): the second fails. */
		n = nblk;
		first = 4096;
		assert_int_equal(0, fake.inject("cuMemcpyBatchAsync", 2, CU_ERROR_OUT_OF_MEMORY));
	} else if (how == 0) {
		n = 2;
		first = 1;
		assert_int_equal(0, fake.inject("cuMemcpyAsync", 2, CU_ERROR_OUT_OF_MEMORY));
	} else {
		/* Every copy queued, then the ticket's record fails. */
		n = 2;
		first = 2;
		assert_int_equal(0, fake.inject("cuEventRecord", 1, CU_ERROR_OUT_OF_MEMORY));
	}
	rel.s = en.s;
	assert_int_equal(0, pthread_create(&th, NULL, release_later, &rel));
	assert_int_equal(-ENOMEM, accel_cuda_tier_copy(t, cp, n, &tk));
	/* Not before the engine's stream let go, and nothing left queued. */
	assert_true(__atomic_load_n(&rel.released, __ATOMIC_SEQ_CST));
	assert_int_equal(0, fake.pending(NULL));
	for (i = 0; i < first; i++)
		assert_memory_equal((void *)(uintptr_t)cp[i].dst, src + i * blk, blk);
	for (i = first; i < n; i++)
		assert_int_equal(0, *(unsigned char *)(uintptr_t)cp[i].dst);
	assert_int_equal(0, pthread_join(th, NULL));
	fake.inject("cuMemcpyBatchAsync", 0, 0);
	fake.inject("cuMemcpyAsync", 0, 0);
	fake.inject("cuEventRecord", 0, 0);
	/* The tier goes on. */
	assert_int_equal(0, accel_cuda_tier_copy(t, cp, n, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	engine_close(&en);
	host_buffers_free(t, total, src, back);
	accel_cuda_tier_destroy(t);
	free(cp);
}

static void failed_enqueue_waits(void **state)
{
	(void)state;
	if (!have_driver() || !have_fake_or_skip())
		skip();
	failed_copy_waits_for_what_it_queued(0);
}

static void failed_record_waits(void **state)
{
	(void)state;
	if (!have_driver() || !have_fake_or_skip())
		skip();
	failed_copy_waits_for_what_it_queued(1);
}

/*
 * The ticket ring full of copies that wait for a busy engine stream, and
 * the wait for the oldest ticket fails: the call queued nothing (the ring
 * slot is waited for before anything is queued).
 */
static void ring_wait_failure_queues_nothing(void **state)
{
	static unsigned char buf[4096];
	struct accel_cuda_tier *t;
	struct accel_cuda_copy cp;
	struct engine en;
	long before;
	uint64_t tk;
	int i;

	(void)state;
	if (!have_driver() || !have_fake_or_skip())
		skip();
	t = tier(4 * MIB, 1, 0);
	assert_int_equal(0, accel_cuda_tier_map(t, 0, accel_cuda_tier_chunk_size(t)));
	cp = (struct accel_cuda_copy){ accel_cuda_tier_base(t), (cu_deviceptr)(uintptr_t)buf,
				       sizeof(buf) };
	engine_open(&en);
	assert_int_equal(0, fake.hold(en.s, 1));
	engine_record(en.e, en.s);
	assert_int_equal(0, accel_cuda_tier_wait_event(t, en.e));
	for (i = 0; i < 64; i++)
		assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	before = fake.pending(NULL);
	assert_int_equal(0, fake.inject("cuEventSynchronize", 1, CU_ERROR_OUT_OF_MEMORY));
	assert_int_equal(-ENOMEM, accel_cuda_tier_copy(t, &cp, 1, &tk));
	assert_int_equal(before, fake.pending(NULL));
	assert_int_equal(0, fake.hold(en.s, 0));
	assert_int_equal(0, fake.pending(NULL));
	assert_int_equal(0, accel_cuda_tier_copy(t, &cp, 1, &tk));
	assert_int_equal(0, accel_cuda_tier_wait(t, tk, -1));
	engine_close(&en);
	accel_cuda_tier_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_and_maps),
		cmocka_unit_test(map_is_all_or_nothing_at_the_limit),
		cmocka_unit_test(scattered_copies_round_trip),
		cmocka_unit_test(large_batches_split),
		cmocka_unit_test(many_tickets),
		cmocka_unit_test(window_over_chunks),
		cmocka_unit_test(aliases_of_two_tiers),
		cmocka_unit_test(peers_get_access_per_range),
		cmocka_unit_test(gpu_to_gpu),
		cmocka_unit_test(dmabuf_export),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(caller_context_kept),
		cmocka_unit_test(copies_order_against_engine_events),
		cmocka_unit_test(failed_enqueue_waits),
		cmocka_unit_test(failed_record_waits),
		cmocka_unit_test(ring_wait_failure_queues_nothing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
