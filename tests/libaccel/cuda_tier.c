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
 * granted per range (now and for later maps), GPU-to-GPU copies (the peer
 * path, or staged through the host without peers), dma-buf export, and
 * every call's refusal of bad arguments.
 */
#include <dlfcn.h>
#include <errno.h>
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

static int setup(void **state)
{
	char why[160];
	void *lib;
	int err;

	(void)state;
	/* The loader opened the driver RTLD_LOCAL: look in that object. */
	if (!accel_cuda_load(&err, why, sizeof(why)))
		return 0;
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (lib)
		fake_access = (unsigned int (*)(unsigned long long))dlsym(lib, "fake_cuda_access");
	printf("# driver: %s\n", fake_access ? "the fake (tests/libaccel/fake_cuda.c)" :
	       "the real CUDA driver");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_and_maps),
		cmocka_unit_test(map_is_all_or_nothing_at_the_limit),
		cmocka_unit_test(scattered_copies_round_trip),
		cmocka_unit_test(large_batches_split),
		cmocka_unit_test(many_tickets),
		cmocka_unit_test(window_over_chunks),
		cmocka_unit_test(peers_get_access_per_range),
		cmocka_unit_test(gpu_to_gpu),
		cmocka_unit_test(dmabuf_export),
		cmocka_unit_test(bad_arguments),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
