// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fake CUDA driver (fake_cuda.c), loaded through libaccel's loader
 * (cmocka, ASan/UBSan; the wrapper points LD_LIBRARY_PATH at the fake):
 * the table resolves, device memory round-trips through the VMM calls and
 * copies, and misuse gets the driver's errors. The loader loads once per
 * process, so each knob (FAKE_CUDA_*) is tried in a child: this program
 * run again as `fake_cuda_unit --child NAME=VALUE CHECK`.
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cuda/cuda_loader.h"
#include "fake_cuda.h"

#define MIB		(1ULL << 20)
#define ILLEGAL		FAKE_CU_ERROR_ILLEGAL_ADDRESS

typedef cu_result (*gpa_fn)(const char *symbol, void **pfn, int cuda_version, uint64_t flags,
			    int *symbol_status);

static const struct accel_cuda *load(void)
{
	const struct accel_cuda *c;
	char why[160];
	int err;

	c = accel_cuda_load(&err, why, sizeof(why));
	if (!c)
		fprintf(stderr, "# cuda: %s\n", why);
	return c;
}

static const struct cu_mem_allocation_prop *prop_on(int dev)
{
	static struct cu_mem_allocation_prop prop;

	memset(&prop, 0, sizeof(prop));
	prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = dev;
	return &prop;
}

static struct cu_mem_access_desc rw(int dev)
{
	struct cu_mem_access_desc d = {
		.location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev },
		.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
	};
	return d;
}

static const struct cu_memcpy_attributes stream_order = {
	.src_access_order = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM,
};

static void load_resolves(void **state)
{
	const struct accel_cuda *c = load();
	struct fake_cuda_ops fake;
	size_t off;

	(void)state;
	assert_non_null(c);
	assert_int_equal(2, c->devices);
	assert_int_equal(12080, c->driver_version);
	assert_non_null(c->cuInit);
	assert_non_null(c->cuDriverGetVersion);
	assert_non_null(c->cuDeviceGetCount);
	assert_non_null(c->cuGetErrorName);
	/* Every member, the optional ones included. */
	_Static_assert(sizeof(struct accel_cuda_api) % sizeof(void (*)(void)) == 0, "api");
	for (off = 0; off < sizeof(c->api); off += sizeof(void (*)(void))) {
		void (*fn)(void);

		memcpy(&fn, (const char *)&c->api + off, sizeof(fn));
		assert_non_null(fn);
	}
	assert_non_null(c->api.cuMemcpyBatchAsync);
	assert_non_null(c->api.cuMemGetHandleForAddressRange);
	assert_int_equal(0, fake_cuda_bind(&fake));
}

static void round_trip(void **state)
{
	const struct accel_cuda *c = load();
	const struct accel_cuda_api *a;
	struct cu_mem_access_desc desc[2];
	struct fake_cuda_ops fake;
	struct fake_cuda_stats s;
	cu_deviceptr base, dsts[2], srcs[2];
	cu_mem_handle h1, h2;
	size_t gran, sizes[2], idx = 0, fail = 0;
	unsigned char *src, *dst;
	cu_context ctx;
	cu_stream stream;
	cu_event ev;
	int fd, can;

	(void)state;
	assert_non_null(c);
	assert_int_equal(0, fake_cuda_bind(&fake));
	a = &c->api;
	fake.reset_stats();

	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&ctx, 0));
	assert_int_equal(0, a->cuCtxSetCurrent(ctx));
	assert_int_equal(0, fake.current_device());
	assert_int_equal(0, a->cuDeviceCanAccessPeer(&can, 0, 1));
	assert_int_equal(1, can);
	assert_int_equal(0, a->cuMemGetAllocationGranularity(&gran, prop_on(0),
							     CU_MEM_ALLOC_GRANULARITY_MINIMUM));
	assert_int_equal(2 * MIB, gran);

	/* 4 MiB on device 0, then 2 MiB on device 1, in an 8 MiB range. */
	assert_int_equal(0, a->cuMemAddressReserve(&base, 8 * MIB, 0, 0, 0));
	assert_int_equal(0, base % (2 * MIB));
	assert_int_equal(0, a->cuMemCreate(&h1, 4 * MIB, prop_on(0), 0));
	assert_int_equal(0, a->cuMemCreate(&h2, 2 * MIB, prop_on(1), 0));
	assert_int_equal(0, a->cuMemMap(base, 4 * MIB, 0, h1, 0));
	assert_int_equal(0, a->cuMemMap(base + 4 * MIB, 2 * MIB, 0, h2, 0));
	assert_int_equal(0, fake.access(base));
	desc[0] = rw(0);
	desc[1] = rw(1);
	assert_int_equal(0, a->cuMemSetAccess(base, 4 * MIB, desc, 1));
	assert_int_equal(0, a->cuMemSetAccess(base + 4 * MIB, 2 * MIB, desc, 2));
	assert_int_equal(1, fake.access(base + 4 * MIB - 1));
	assert_int_equal(3, fake.access(base + 4 * MIB));
	assert_int_equal(0, fake.access(base + 6 * MIB));

	/* Host to device and back, through a stream. */
	src = malloc(MIB);
	dst = calloc(1, MIB);
	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < MIB; i++)
		src[i] = (unsigned char)(i * 7 + 3);
	assert_int_equal(0, a->cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, a->cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, a->cuMemcpyAsync(base + 4096, (uintptr_t)src, MIB, stream));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, base + 4096, MIB, stream));
	assert_int_equal(0, a->cuEventRecord(ev, stream));
	assert_int_equal(0, a->cuEventQuery(ev));
	assert_int_equal(0, a->cuEventSynchronize(ev));
	assert_int_equal(0, a->cuStreamSynchronize(stream));
	assert_memory_equal(src, dst, MIB);
	/* Device memory is host memory, there to look at. */
	assert_memory_equal(src, (const void *)(uintptr_t)(base + 4096), MIB);

	/* Registered host memory is not pageable. */
	assert_int_equal(0, a->cuMemHostRegister(src, MIB, CU_MEMHOSTREGISTER_PORTABLE));
	assert_int_equal(0, a->cuMemHostRegister(dst, MIB, 0));
	memset(dst, 0, MIB);
	/* Across the two allocations, device 0 to device 1 memory. */
	assert_int_equal(0, a->cuMemcpyAsync(base + 4 * MIB - 4096, base + 4096, MIB, stream));

	/* A batch: host to device 1's memory and back. */
	dsts[0] = base + 5 * MIB;
	srcs[0] = (uintptr_t)src;
	dsts[1] = (uintptr_t)dst;
	srcs[1] = base + 5 * MIB;
	sizes[0] = sizes[1] = MIB;
	assert_int_equal(0, a->cuMemcpyBatchAsync(dsts, srcs, sizes, 2,
						  (struct cu_memcpy_attributes *)&stream_order,
						  &idx, 1, &fail, stream));
	assert_memory_equal(src, dst, MIB);

	fake.stats(&s);
	assert_int_equal(3, s.memcpy_async);
	assert_int_equal(2, s.pageable_copies);
	assert_int_equal(1, s.batches);
	assert_int_equal(2, s.batch_copies);
	assert_int_equal(5 * MIB, s.bytes_copied);
	assert_int_equal(5, s.copies_by_device[0]);
	assert_int_equal(2, s.creates);
	assert_int_equal(2, s.maps);
	assert_int_equal(2, s.set_access);
	assert_int_equal(2, s.live_allocations);
	assert_int_equal(2, s.registered_ranges);
	assert_int_equal(1, s.streams);
	assert_int_equal(1, s.events);
	assert_int_equal(1, s.reservations);

	/* A dma-buf of the first allocation: an fd of its size. */
	assert_int_equal(0, a->cuMemGetHandleForAddressRange(&fd, base, 4 * MIB,
							     CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0));
	assert_true(fd >= 0);
	assert_int_equal(4 * MIB, lseek(fd, 0, SEEK_END));
	close(fd);

	/* Released while mapped: the memory lives until unmapped. */
	assert_int_equal(0, a->cuMemRelease(h1));
	fake.stats(&s);
	assert_int_equal(2, s.live_allocations);
	assert_int_equal(src[0], *(unsigned char *)(uintptr_t)(base + 4096));
	assert_int_equal(0, a->cuMemUnmap(base, 4 * MIB));
	assert_int_equal(0, fake.access(base));
	fake.stats(&s);
	assert_int_equal(1, s.live_allocations);
	assert_int_equal(0, a->cuMemUnmap(base + 4 * MIB, 2 * MIB));
	assert_int_equal(0, a->cuMemRelease(h2));
	assert_int_equal(0, a->cuMemAddressFree(base, 8 * MIB));

	assert_int_equal(0, a->cuMemHostUnregister(src));
	assert_int_equal(0, a->cuMemHostUnregister(dst));
	assert_int_equal(0, a->cuEventDestroy(ev));
	assert_int_equal(0, a->cuStreamDestroy(stream));
	fake.stats(&s);
	assert_int_equal(0, s.live_allocations);
	assert_int_equal(2, s.unmaps);
	assert_int_equal(0, s.registered_ranges);
	assert_int_equal(0, s.streams);
	assert_int_equal(0, s.events);
	assert_int_equal(0, s.reservations);
	assert_int_equal(0, a->cuCtxSetCurrent(NULL));
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(0));
	free(src);
	free(dst);
}

static void *other_thread(void *arg)
{
	const struct accel_cuda_api *a = arg;
	cu_stream s;

	/* The current context is per thread: none here. */
	return (void *)(intptr_t)a->cuStreamCreate(&s, 0);
}

static void errors(void **state)
{
	const struct accel_cuda *c = load();
	const struct accel_cuda_api *a;
	struct cu_mem_access_desc desc;
	struct fake_cuda_ops fake;
	struct fake_cuda_stats s;
	cu_deviceptr base, other, dsts[2], srcs[2];
	cu_mem_handle h, h4;
	size_t sizes[2], idx[2] = { 0, 1 }, fail;
	unsigned char buf[64] = { 1 }, out[64] = { 0 };
	struct cu_memcpy_attributes attrs[2] = { stream_order, stream_order };
	const char *name;
	cu_context ctx;
	cu_stream stream;
	pthread_t t;
	void *ret, *fn;
	gpa_fn gpa;
	void *lib;
	int dev, status;

	(void)state;
	assert_non_null(c);
	assert_int_equal(0, fake_cuda_bind(&fake));
	a = &c->api;
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&ctx, 0));
	assert_int_equal(0, a->cuCtxSetCurrent(ctx));
	assert_int_equal(0, a->cuStreamCreate(&stream, 0));

	/* Reserving: sizes in granules. */
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemAddressReserve(&base, MIB, 0, 0, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemAddressReserve(&base, 2 * MIB, 3 * MIB, 0, 0));
	assert_int_equal(0, a->cuMemAddressReserve(&base, 4 * MIB, 0, 0, 0));
	assert_int_equal(0, a->cuMemAddressReserve(&other, 8 * MIB, 8 * MIB, 0, 0));
	assert_int_equal(0, other % (8 * MIB));

	/* Creating: granule sizes, device memory of a device that is. */
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemCreate(&h, MIB, prop_on(0), 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemCreate(&h, 2 * MIB, prop_on(2), 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemCreate(&h, 2 * MIB, NULL, 0));
	assert_int_equal(0, a->cuMemCreate(&h, 2 * MIB, prop_on(0), 0));
	assert_int_equal(0, a->cuMemCreate(&h4, 4 * MIB, prop_on(0), 0));

	/* Mapping: aligned, inside a reservation, once. */
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base + MIB, 2 * MIB, 0, h, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base, 4 * MIB, 0, h, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base, 2 * MIB, 2 * MIB, h4, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base + 2 * MIB, 4 * MIB, 0, h4, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base, 2 * MIB, 0, 12345, 0));
	assert_int_equal(0, a->cuMemMap(base, 2 * MIB, 0, h, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base, 2 * MIB, 0, h, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemMap(base, 2 * MIB, 0, h4, 0));
	assert_int_equal(0, a->cuMemMap(other, 4 * MIB, 0, h4, 0));
	/* Access: mapped ranges only; whole mappings unmap. */
	desc = rw(0);
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemSetAccess(base, 4 * MIB, &desc, 1));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemUnmap(other, 2 * MIB));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemUnmap(base + 2 * MIB, 2 * MIB));
	desc = rw(5);
	assert_int_equal(CU_ERROR_INVALID_DEVICE, a->cuMemSetAccess(base, 2 * MIB, &desc, 1));

	/* Copies: to device memory mapped without access, or not mapped. */
	fake.reset_stats();
	assert_int_equal(ILLEGAL, a->cuMemcpyAsync(base, (uintptr_t)buf, sizeof(buf), stream));
	desc = rw(0);
	assert_int_equal(0, a->cuMemSetAccess(base, 2 * MIB, &desc, 1));
	assert_int_equal(ILLEGAL, a->cuMemcpyAsync(base + 2 * MIB, (uintptr_t)buf, sizeof(buf), stream));
	assert_int_equal(ILLEGAL, a->cuMemcpyAsync(base + 2 * MIB - 16, (uintptr_t)buf, 32, stream));
	assert_int_equal(ILLEGAL, a->cuMemcpyAsync((uintptr_t)out, other, sizeof(out), stream));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemcpyAsync(0, (uintptr_t)buf, 1, stream));
	fake.stats(&s);
	assert_int_equal(0, s.bytes_copied);
	assert_int_equal(0, s.memcpy_async);
	assert_int_equal(0, a->cuMemcpyAsync(base, (uintptr_t)buf, sizeof(buf), stream));
	/* No context on the NULL stream: none on this thread, then none. */
	assert_int_equal(0, pthread_create(&t, NULL, other_thread, (void *)a));
	assert_int_equal(0, pthread_join(t, &ret));
	assert_int_equal(FAKE_CU_ERROR_INVALID_CONTEXT, (intptr_t)ret);

	/* A batch with a bad copy runs none of them and names it. */
	dsts[0] = (uintptr_t)out;
	srcs[0] = base;
	dsts[1] = (uintptr_t)out;
	srcs[1] = base + 2 * MIB;
	sizes[0] = sizes[1] = sizeof(out);
	fail = 99;
	assert_int_equal(ILLEGAL, a->cuMemcpyBatchAsync(dsts, srcs, sizes, 2, attrs, idx, 2,
							&fail, stream));
	assert_int_equal(1, fail);
	assert_int_equal(0, out[0]);
	idx[0] = 1;
	assert_int_equal(CU_ERROR_INVALID_VALUE,
			 a->cuMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idx, 1, &fail, stream));
	assert_int_equal(SIZE_MAX, fail);
	idx[0] = 0;
	attrs[0].src_access_order = 0;
	assert_int_equal(CU_ERROR_INVALID_VALUE,
			 a->cuMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idx, 1, &fail, stream));
	attrs[0] = stream_order;
	assert_int_equal(CU_ERROR_INVALID_VALUE,
			 a->cuMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idx, 1, &fail, NULL));
	assert_int_equal(0, a->cuMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idx, 1, &fail,
						  stream));
	assert_int_equal(1, out[0]);

	/* dma-buf: mapped ranges within one mapping. */
	assert_int_equal(CU_ERROR_INVALID_VALUE,
			 a->cuMemGetHandleForAddressRange(&dev, base, 4 * MIB, 1, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE,
			 a->cuMemGetHandleForAddressRange(&dev, base, 2 * MIB, 2, 0));

	/* Freeing: exact reservations with nothing mapped; handles once. */
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemAddressFree(base, 4 * MIB));
	assert_int_equal(0, a->cuMemUnmap(base, 2 * MIB));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemUnmap(base, 2 * MIB));
	assert_int_equal(0, a->cuMemUnmap(other, 4 * MIB));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemAddressFree(base, 2 * MIB));
	assert_int_equal(0, a->cuMemAddressFree(base, 4 * MIB));
	assert_int_equal(0, a->cuMemAddressFree(other, 8 * MIB));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemAddressFree(base, 4 * MIB));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemRelease(12345));
	assert_int_equal(0, a->cuMemRelease(h));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuMemRelease(h));
	assert_int_equal(0, a->cuMemRelease(h4));

	/* Host registration. */
	assert_int_equal(0, a->cuMemHostRegister(buf, sizeof(buf), 0));
	assert_int_equal(FAKE_CU_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
			 a->cuMemHostRegister(buf + 8, 8, 0));
	assert_int_equal(FAKE_CU_ERROR_HOST_MEMORY_NOT_REGISTERED, a->cuMemHostUnregister(buf + 8));
	assert_int_equal(0, a->cuMemHostUnregister(buf));
	assert_int_equal(FAKE_CU_ERROR_HOST_MEMORY_NOT_REGISTERED, a->cuMemHostUnregister(buf));

	/* Objects. */
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuStreamDestroy(NULL));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuEventDestroy(NULL));
	assert_int_equal(0, a->cuStreamDestroy(stream));
	assert_int_equal(CU_ERROR_INVALID_DEVICE, a->cuDeviceGet(&dev, 2));
	assert_int_equal(0, a->cuDeviceGet(&dev, 1));
	assert_int_equal(1, dev);
	assert_int_equal(0, a->cuCtxSetCurrent(NULL));
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(0));
	assert_int_equal(FAKE_CU_ERROR_INVALID_CONTEXT, a->cuCtxSetCurrent(ctx));
	assert_int_equal(FAKE_CU_ERROR_INVALID_CONTEXT, a->cuStreamCreate(&stream, 0));
	assert_int_equal(0, c->cuGetErrorName(ILLEGAL, &name));
	assert_string_equal("CUDA_ERROR_ILLEGAL_ADDRESS", name);
	assert_int_equal(CU_ERROR_INVALID_VALUE, c->cuGetErrorName(12345, &name));

	/* The lookup itself. */
	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(lib);
	*(void **)&gpa = dlsym(lib, "cuGetProcAddress_v2");
	assert_non_null(gpa);
	fn = &fn;
	assert_int_equal(FAKE_CU_ERROR_NOT_FOUND, gpa("cuNoSuchThing", &fn, 12080, 0, &status));
	assert_null(fn);
	assert_int_equal(1, status);
	assert_int_equal(FAKE_CU_ERROR_NOT_FOUND, gpa("cuMemcpyBatchAsync", &fn, 12000, 0, &status));
	assert_int_equal(2, status);
	assert_int_equal(CU_ERROR_INVALID_VALUE, gpa("cuMemMap", &fn, 11080, 0, &status));
	assert_null(fn);
	assert_int_equal(0, gpa("cuMemMap", &fn, 12080, 0, &status));
	assert_ptr_equal(fn, (void *)a->cuMemMap);
	dlclose(lib);

	fake.stats(&s);
	assert_int_equal(0, s.live_allocations);
	assert_int_equal(0, s.reservations);
	assert_int_equal(0, s.streams);
}

/* Per-thread context stacks: push, pop, get, set replacing the top. */
static void context_stack(void **state)
{
	const struct accel_cuda *c = load();
	const struct accel_cuda_api *a;
	struct fake_cuda_ops fake;
	cu_context c0, c1, cur = NULL;

	(void)state;
	assert_non_null(c);
	assert_int_equal(0, fake_cuda_bind(&fake));
	a = &c->api;
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&c0, 0));
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&c1, 1));
	assert_int_equal(0, fake.context_depth());
	assert_int_equal(0, a->cuCtxGetCurrent(&cur));
	assert_null(cur);
	assert_int_equal(FAKE_CU_ERROR_INVALID_CONTEXT, a->cuCtxPopCurrent(&cur));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuCtxPushCurrent(NULL));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuCtxGetCurrent(NULL));

	assert_int_equal(0, a->cuCtxPushCurrent(c1));
	assert_int_equal(0, a->cuCtxPushCurrent(c0));
	assert_int_equal(2, fake.context_depth());
	assert_int_equal(0, fake.current_device());
	assert_int_equal(0, a->cuCtxGetCurrent(&cur));
	assert_ptr_equal(c0, cur);
	assert_int_equal(0, a->cuCtxPopCurrent(&cur));
	assert_ptr_equal(c0, cur);
	assert_int_equal(1, fake.current_device());
	/* Set replaces the top; NULL pops it. */
	assert_int_equal(0, a->cuCtxSetCurrent(c0));
	assert_int_equal(1, fake.context_depth());
	assert_int_equal(0, fake.current_device());
	assert_int_equal(0, a->cuCtxSetCurrent(NULL));
	assert_int_equal(0, fake.context_depth());
	assert_int_equal(-1, fake.current_device());
	assert_int_equal(0, a->cuCtxSetCurrent(c1));
	assert_int_equal(0, a->cuCtxPopCurrent(NULL));
	assert_int_equal(0, fake.context_depth());
	/* A context released to nothing cannot be pushed. */
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(1));
	assert_int_equal(FAKE_CU_ERROR_INVALID_CONTEXT, a->cuCtxPushCurrent(c1));
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(0));
}

/*
 * Stream order: work queued behind a wait on an event of a held stream
 * stays queued until the hold goes; records say so; a record on a free
 * stream is done at once; work submitted with the wrong context current
 * is counted; a destroyed stream still runs what it has queued.
 */
static void streams_wait_for_events(void **state)
{
	const struct accel_cuda *c = load();
	const struct accel_cuda_api *a;
	struct fake_cuda_ops fake;
	struct fake_cuda_stats s;
	static unsigned char src[4096], dst[4096], dst2[4096];
	cu_context c0, c1;
	cu_stream s0, s1, s2;
	cu_event e0, e1, e2;

	(void)state;
	assert_non_null(c);
	assert_int_equal(0, fake_cuda_bind(&fake));
	a = &c->api;
	memset(src, 0x5a, sizeof(src));
	memset(dst, 0, sizeof(dst));
	memset(dst2, 0, sizeof(dst2));
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&c0, 0));
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&c1, 1));
	assert_int_equal(0, a->cuCtxPushCurrent(c1));
	assert_int_equal(0, a->cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, a->cuEventCreate(&e1, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, a->cuCtxPushCurrent(c0));
	assert_int_equal(0, a->cuStreamCreate(&s0, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, a->cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
	assert_int_equal(0, a->cuEventCreate(&e0, CU_EVENT_DISABLE_TIMING));
	assert_int_equal(0, a->cuEventCreate(&e2, CU_EVENT_DISABLE_TIMING));
	fake.reset_stats();

	/* An event never recorded: done, and a wait on it is no wait. */
	assert_int_equal(0, a->cuEventQuery(e0));
	assert_int_equal(0, a->cuStreamWaitEvent(s0, e0, 0));
	assert_int_equal(CU_ERROR_INVALID_VALUE, a->cuStreamWaitEvent(s0, e0, 1));
	assert_int_equal(FAKE_CU_ERROR_INVALID_HANDLE, a->cuStreamWaitEvent(s0, NULL, 0));
	/* Events record on streams of their own device only. */
	assert_int_equal(FAKE_CU_ERROR_INVALID_HANDLE, a->cuEventRecord(e1, s0));

	/* Device 1's stream held, its event recorded: not done. */
	assert_int_equal(0, fake.hold(s1, 1));
	assert_int_equal(0, a->cuEventRecord(e1, s1));		/* device 1 work, c0 current */
	assert_int_equal(CU_ERROR_NOT_READY, a->cuEventQuery(e1));
	/* s0 waits on it (another device's event: allowed), then copies, then records. */
	assert_int_equal(0, a->cuStreamWaitEvent(s0, e1, 0));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, (uintptr_t)src, sizeof(src), s0));
	assert_int_equal(0, a->cuEventRecord(e0, s0));
	/* s2 waits on s0's record: a chain. */
	assert_int_equal(0, a->cuStreamWaitEvent(s2, e0, 0));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst2, (uintptr_t)dst, sizeof(dst), s2));
	assert_int_equal(0, a->cuEventRecord(e2, s2));
	assert_int_equal(0, dst[0]);
	assert_int_equal(0, dst2[0]);
	assert_int_equal(CU_ERROR_NOT_READY, a->cuEventQuery(e0));
	assert_int_equal(CU_ERROR_NOT_READY, a->cuEventQuery(e2));
	assert_int_equal(3, fake.pending(s0));
	assert_int_equal(3, fake.pending(s2));
	assert_int_equal(7, fake.pending(NULL));
	/* Recorded again, done at once: s2 still waits for the record it saw. */
	assert_int_equal(0, a->cuEventRecord(e0, NULL));
	assert_int_equal(0, a->cuEventQuery(e0));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst2, (uintptr_t)src, 1, s2));
	assert_int_equal(0, dst2[0]);
	assert_int_equal(4, fake.pending(s2));
	fake.stats(&s);
	assert_int_equal(1, s.foreign_ctx_calls);		/* e1 on s1 with c0 current */
	assert_int_equal(3, s.stream_waits);

	/* The hold goes: everything runs, in order. */
	assert_int_equal(0, fake.hold(s1, 0));
	assert_int_equal(0, fake.pending(NULL));
	assert_int_equal(0x5a, dst[4095]);
	assert_int_equal(0x5a, dst2[4095]);
	assert_int_equal(0, a->cuEventQuery(e1));
	assert_int_equal(0, a->cuEventQuery(e2));
	assert_int_equal(0, a->cuStreamSynchronize(s2));

	/* A destroyed stream runs what it holds; the event named outlives its handle. */
	memset(dst, 0, sizeof(dst));
	assert_int_equal(0, fake.hold(s1, 1));
	assert_int_equal(0, a->cuEventRecord(e1, s1));
	assert_int_equal(0, a->cuStreamWaitEvent(s0, e1, 0));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, (uintptr_t)src, sizeof(src), s0));
	assert_int_equal(0, a->cuStreamDestroy(s0));
	assert_int_equal(0, a->cuEventDestroy(e1));
	assert_int_equal(0, dst[0]);
	assert_int_equal(0, fake.hold(s1, 0));
	assert_int_equal(0x5a, dst[0]);
	assert_int_equal(0, fake.pending(NULL));

	/* Injected failures: the nth next call, doing nothing. */
	assert_int_equal(0, fake.inject("cuMemcpyAsync", 2, ILLEGAL));
	memset(dst, 0, sizeof(dst));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, (uintptr_t)src, 16, s2));
	assert_int_equal(ILLEGAL, a->cuMemcpyAsync((uintptr_t)dst + 16, (uintptr_t)src, 16, s2));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst + 32, (uintptr_t)src, 16, s2));
	assert_int_equal(0x5a, dst[0]);
	assert_int_equal(0, dst[16]);
	assert_int_equal(0x5a, dst[32]);
	assert_int_equal(0, fake.inject("cuEventRecord", 1, CU_ERROR_OUT_OF_MEMORY));
	assert_int_equal(0, fake.inject("cuEventRecord", 0, 0));		/* disarmed */
	assert_int_equal(0, a->cuEventRecord(e2, s2));
	fake.stats(&s);
	assert_int_equal(1, s.injected);
	assert_int_equal(0, s.late_faults);

	assert_int_equal(0, a->cuStreamDestroy(s2));
	assert_int_equal(0, a->cuEventDestroy(e0));
	assert_int_equal(0, a->cuEventDestroy(e2));
	assert_int_equal(0, a->cuCtxPopCurrent(NULL));
	assert_int_equal(0, a->cuStreamDestroy(s1));
	assert_int_equal(0, a->cuCtxPopCurrent(NULL));
	assert_int_equal(0, fake.context_depth());
	fake.stats(&s);
	assert_int_equal(0, s.streams);
	assert_int_equal(0, s.events);
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(0));
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(1));
}

struct release_arg {
	struct fake_cuda_ops *fake;
	cu_stream s;
};

static void *release_later(void *p)
{
	struct release_arg *r = p;

	usleep(100 * 1000);
	r->fake->hold(r->s, 0);
	return NULL;
}

/* The blocking calls wait for held work, released by another thread. */
static void synchronize_waits(void **state)
{
	const struct accel_cuda *c = load();
	const struct accel_cuda_api *a;
	struct fake_cuda_ops fake;
	struct release_arg r;
	static unsigned char src[64], dst[64];
	cu_context c0;
	cu_stream s0, s1;
	cu_event e;
	pthread_t t;

	(void)state;
	assert_non_null(c);
	assert_int_equal(0, fake_cuda_bind(&fake));
	a = &c->api;
	memset(src, 7, sizeof(src));
	memset(dst, 0, sizeof(dst));
	assert_int_equal(0, a->cuDevicePrimaryCtxRetain(&c0, 0));
	assert_int_equal(0, a->cuCtxPushCurrent(c0));
	assert_int_equal(0, a->cuStreamCreate(&s0, 0));
	assert_int_equal(0, a->cuStreamCreate(&s1, 0));
	assert_int_equal(0, a->cuEventCreate(&e, 0));
	assert_int_equal(0, fake.hold(s1, 1));
	assert_int_equal(0, a->cuEventRecord(e, s1));
	assert_int_equal(0, a->cuStreamWaitEvent(s0, e, 0));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, (uintptr_t)src, sizeof(src), s0));
	r = (struct release_arg){ &fake, s1 };
	assert_int_equal(0, pthread_create(&t, NULL, release_later, &r));
	assert_int_equal(0, a->cuStreamSynchronize(s0));
	assert_int_equal(7, dst[63]);
	assert_int_equal(0, pthread_join(t, NULL));
	/* And an event's. */
	memset(dst, 0, sizeof(dst));
	assert_int_equal(0, fake.hold(s0, 1));
	assert_int_equal(0, a->cuMemcpyAsync((uintptr_t)dst, (uintptr_t)src, sizeof(src), s0));
	assert_int_equal(0, a->cuEventRecord(e, s0));
	r.s = s0;
	assert_int_equal(0, pthread_create(&t, NULL, release_later, &r));
	assert_int_equal(0, a->cuEventSynchronize(e));
	assert_int_equal(7, dst[0]);
	assert_int_equal(0, pthread_join(t, NULL));
	assert_int_equal(0, a->cuEventDestroy(e));
	assert_int_equal(0, a->cuStreamDestroy(s0));
	assert_int_equal(0, a->cuStreamDestroy(s1));
	assert_int_equal(0, a->cuCtxPopCurrent(NULL));
	assert_int_equal(0, a->cuDevicePrimaryCtxRelease(0));
}

/* --- knobs, each in a child ------------------------------------------------ */

#define CHECK(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "# child %s: %s:%d: %s\n", check, __FILE__, __LINE__, #cond); \
		return 1;							\
	}									\
} while (0)

static int child(const char *assign, const char *check)
{
	char name[64], why[160];
	const struct accel_cuda_api *a;
	const struct accel_cuda *c;
	const char *eq = strchr(assign, '=');
	cu_deviceptr base;
	cu_mem_handle h[3];
	cu_context ctx[2];
	cu_stream s[2];
	unsigned char buf[16] = { 0 };
	int err, v;

	if (!eq || (size_t)(eq - assign) >= sizeof(name))
		return 2;
	memcpy(name, assign, eq - assign);
	name[eq - assign] = '\0';
	setenv(name, eq + 1, 1);
	c = accel_cuda_load(&err, why, sizeof(why));

	if (!strcmp(check, "devices0")) {
		CHECK(!c && err == -ENODEV && strstr(why, "no GPU"));
		return 0;
	}
	if (!strcmp(check, "old_driver")) {
		CHECK(!c && err == -ENODEV && strstr(why, "CUDA driver 12.4"));
		return 0;
	}
	CHECK(c);
	a = &c->api;
	if (!strcmp(check, "no_batch")) {
		CHECK(!a->cuMemcpyBatchAsync && a->cuMemGetHandleForAddressRange);
		return 0;
	}
	if (!strcmp(check, "no_dmabuf")) {
		CHECK(a->cuMemcpyBatchAsync && !a->cuMemGetHandleForAddressRange);
		CHECK(!a->cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, 1) && !v);
		CHECK(!a->cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_VMM_SUPPORTED, 1) && v == 1);
		return 0;
	}
	if (!strcmp(check, "create_limit")) {
		CHECK(!a->cuMemCreate(&h[0], 2 * MIB, prop_on(0), 0));
		CHECK(a->cuMemCreate(&h[1], 2 * MIB, prop_on(1), 0) == CU_ERROR_OUT_OF_MEMORY);
		CHECK(!a->cuMemRelease(h[0]));
		CHECK(!a->cuMemCreate(&h[2], 2 * MIB, prop_on(1), 0));
		CHECK(!a->cuMemRelease(h[2]));
		return 0;
	}
	/* no_peer, strict: device 0's memory, device 1 given access. */
	for (v = 0; v < 2; v++) {
		CHECK(!a->cuDevicePrimaryCtxRetain(&ctx[v], v));
		CHECK(!a->cuCtxSetCurrent(ctx[v]));
		CHECK(!a->cuStreamCreate(&s[v], 0));
	}
	CHECK(!a->cuMemAddressReserve(&base, 2 * MIB, 0, 0, 0));
	CHECK(!a->cuMemCreate(&h[0], 2 * MIB, prop_on(0), 0));
	CHECK(!a->cuMemMap(base, 2 * MIB, 0, h[0], 0));
	{
		struct cu_mem_access_desc d = rw(1);

		if (!strcmp(check, "no_peer")) {
			CHECK(!a->cuDeviceCanAccessPeer(&v, 0, 1) && !v);
			CHECK(a->cuMemSetAccess(base, 2 * MIB, &d, 1) == CU_ERROR_INVALID_DEVICE);
			return 0;
		}
		CHECK(!a->cuMemSetAccess(base, 2 * MIB, &d, 1));
	}
	if (!strcmp(check, "strict")) {
		CHECK(a->cuMemcpyAsync(base, (uintptr_t)buf, sizeof(buf), s[0]) == ILLEGAL);
		CHECK(!a->cuMemcpyAsync(base, (uintptr_t)buf, sizeof(buf), s[1]));
		return 0;
	}
	return 2;
}

static void run_child(const char *assign, const char *check)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		execl("/proc/self/exe", "fake_cuda_unit", "--child", assign, check, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(pid, waitpid(pid, &status, 0));
	assert_true(WIFEXITED(status));
	assert_int_equal(0, WEXITSTATUS(status));
}

static void knob_no_batch(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_NO_BATCH=1", "no_batch");
}

static void knob_no_dmabuf(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_NO_DMABUF=1", "no_dmabuf");
}

static void knob_no_peer(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_NO_PEER=1", "no_peer");
}

static void knob_no_devices(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_DEVICES=0", "devices0");
}

static void knob_old_driver(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_DRIVER=12040", "old_driver");
}

static void knob_create_limit(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_CREATE_LIMIT=1", "create_limit");
}

static void knob_strict_access(void **state)
{
	(void)state;
	run_child("FAKE_CUDA_STRICT_ACCESS=1", "strict");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load_resolves),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(errors),
		cmocka_unit_test(context_stack),
		cmocka_unit_test(streams_wait_for_events),
		cmocka_unit_test(synchronize_waits),
		cmocka_unit_test(knob_no_batch),
		cmocka_unit_test(knob_no_dmabuf),
		cmocka_unit_test(knob_no_peer),
		cmocka_unit_test(knob_no_devices),
		cmocka_unit_test(knob_old_driver),
		cmocka_unit_test(knob_create_limit),
		cmocka_unit_test(knob_strict_access),
	};

	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child(argv[2], argv[3]);
	return cmocka_run_group_tests_name("fake_cuda_unit", tests, NULL, NULL);
}
