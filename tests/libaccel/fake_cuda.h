/* SPDX-License-Identifier: MIT */
/*
 * A fake CUDA driver (tests/libaccel/fake_cuda.c, built as
 * build/native-bin/fakecuda/libcuda.so.1) for testing libaccel's CUDA tier
 * natively: device memory is host memory, so "device pointers" are real
 * addresses and copies are memcpy; the VMM calls (reserve, create, map,
 * set access) are checked the way the driver checks them.
 *
 * Knobs, environment variables read once, at the first call into the fake
 * (cuGetProcAddress_v2 is the first the loader makes):
 *   FAKE_CUDA_DEVICES=N       devices (default 2, at most 32; 0: cuInit
 *                             succeeds, cuDeviceGetCount gives 0)
 *   FAKE_CUDA_DRIVER=V        cuDriverGetVersion (default 12080)
 *   FAKE_CUDA_NO_BATCH=1      no cuMemcpyBatchAsync
 *   FAKE_CUDA_BATCH_UNSUPPORTED=1  cuMemcpyBatchAsync there, but every
 *                             call fails CUDA_ERROR_NOT_SUPPORTED
 *   FAKE_CUDA_NO_DMABUF=1     no cuMemGetHandleForAddressRange, and
 *                             CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0
 *   FAKE_CUDA_NO_PEER=1       cuDeviceCanAccessPeer gives 0
 *   FAKE_CUDA_CREATE_LIMIT=N  cuMemCreate fails (out of memory) while N
 *                             allocations are live
 *   FAKE_CUDA_STRICT_ACCESS=1 a copy's device ranges must be accessible by
 *                             the device of the stream it runs on (by
 *                             default, by any device)
 *   FAKE_CUDA_DIRTY=1         cuMemCreate's memory is filled with 0xa5 (by
 *                             default, zeros: a memfd's)
 *
 * Contexts: each thread has a stack of current contexts (cuCtxPushCurrent,
 * cuCtxPopCurrent; cuCtxSetCurrent replaces the top), as the driver.
 * Stream work submitted while the stream's device's context is not the
 * current one is allowed, and counted (foreign_ctx_calls).
 *
 * Streams run their work in order as soon as it can run: a copy queued on
 * a free stream has run when the call returns. Work queued behind
 * cuStreamWaitEvent on an event whose latest record has not run stays
 * queued until it has; fake_cuda_hold() holds a stream back (nothing on it
 * runs), so a test can keep an event unfinished as long as it likes. The
 * blocking calls (cuStreamSynchronize, cuEventSynchronize) wait for that
 * (another thread releases the hold), for at most 10 s, then fail
 * CUDA_ERROR_UNKNOWN. A copy is checked when queued and again when it
 * runs; one whose memory went in between is skipped and counted
 * (late_faults).
 *
 * The test-only entry points below are exported by the fake, not by a real
 * driver: look them up with fake_cuda_bind() once libcuda.so.1 is loaded.
 */
#ifndef FAKE_CUDA_H
#define FAKE_CUDA_H

#include <dlfcn.h>

/* CUresults the fake returns beyond those in cuda_api.h (cuda_abi checks). */
#define FAKE_CU_ERROR_INVALID_CONTEXT			201
#define FAKE_CU_ERROR_INVALID_HANDLE			400
#define FAKE_CU_ERROR_NOT_FOUND				500
#define FAKE_CU_ERROR_ILLEGAL_ADDRESS			700
#define FAKE_CU_ERROR_HOST_MEMORY_ALREADY_REGISTERED	712
#define FAKE_CU_ERROR_HOST_MEMORY_NOT_REGISTERED	713
#define FAKE_CU_ERROR_UNKNOWN				999

#define FAKE_CUDA_MAX_DEVICES		32
#define FAKE_CUDA_GRANULARITY		(2ULL << 20)

/*
 * Counters. The gauges (live_*, registered_ranges, streams, events,
 * reservations) are the state now; fake_cuda_reset_stats() zeroes the
 * others.
 */
struct fake_cuda_stats {
	unsigned long long live_allocations;	/* cuMemCreate'd, not yet freed (released and unmapped) */
	unsigned long long creates;		/* successful cuMemCreate */
	unsigned long long maps;		/* successful cuMemMap */
	unsigned long long unmaps;		/* successful cuMemUnmap */
	unsigned long long set_access;		/* successful cuMemSetAccess */
	unsigned long long memcpy_async;	/* successful cuMemcpyAsync */
	unsigned long long batches;		/* successful cuMemcpyBatchAsync */
	unsigned long long batch_copies;	/* the copies in those */
	unsigned long long bytes_copied;	/* by both */
	unsigned long long pageable_copies;	/* copies with an unregistered host side */
	unsigned long long registered_ranges;	/* cuMemHostRegister'ed ranges live */
	unsigned long long streams;		/* streams live */
	unsigned long long events;		/* events live */
	unsigned long long reservations;	/* cuMemAddressReserve'd ranges live */
	unsigned long long pending_ops;		/* stream operations queued, not yet run */
	unsigned long long foreign_ctx_calls;	/* stream work with another context current */
	unsigned long long late_faults;		/* queued copies whose memory went before they ran */
	unsigned long long stream_waits;	/* successful cuStreamWaitEvent */
	unsigned long long injected;		/* failures injected (fake_cuda_fail) */
	/* Copies (both kinds) by the device of the stream they ran on. */
	unsigned long long copies_by_device[FAKE_CUDA_MAX_DEVICES];
};

void fake_cuda_stats(struct fake_cuda_stats *s);
void fake_cuda_reset_stats(void);
/* The devices with access to the granule holding @ptr (bit n: device n). */
unsigned int fake_cuda_access(unsigned long long ptr);
/* The device of the calling thread's current context, or -1. */
int fake_cuda_current_device(void);
/* How many contexts the calling thread's stack holds. */
int fake_cuda_context_depth(void);
/* Hold @stream back (nothing on it runs) or let it go: 0, or -1 (no such stream). */
int fake_cuda_hold(void *stream, int hold);
/* Operations queued on @stream and not run yet (NULL: on every stream), or -1. */
long fake_cuda_pending(void *stream);
/*
 * Make the @nth next call (1: the next) of entry point @name return
 * @result, doing nothing; @nth 0 disarms @name. Entry points that take
 * part: cuCtxPushCurrent, cuCtxPopCurrent, cuStreamSynchronize,
 * cuStreamWaitEvent, cuEventRecord, cuEventQuery, cuEventSynchronize,
 * cuMemcpyAsync, cuMemcpyBatchAsync (failIdx SIZE_MAX). At most 8 armed.
 * 0, or -1.
 */
int fake_cuda_fail(const char *name, unsigned int nth, int result);

struct fake_cuda_ops {
	void (*stats)(struct fake_cuda_stats *s);
	void (*reset_stats)(void);
	unsigned int (*access)(unsigned long long ptr);
	int (*current_device)(void);
	int (*context_depth)(void);
	int (*hold)(void *stream, int hold);
	long (*pending)(void *stream);
	int (*inject)(const char *name, unsigned int nth, int result);
};

/*
 * The fake's test entry points, from the libcuda.so.1 already loaded (by
 * accel_cuda_load): 0, or -1 where none is loaded or it is not the fake.
 */
static inline int fake_cuda_bind(struct fake_cuda_ops *ops)
{
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	int ret = -1;

	if (!lib)
		return -1;
	*(void **)&ops->stats = dlsym(lib, "fake_cuda_stats");
	*(void **)&ops->reset_stats = dlsym(lib, "fake_cuda_reset_stats");
	*(void **)&ops->access = dlsym(lib, "fake_cuda_access");
	*(void **)&ops->current_device = dlsym(lib, "fake_cuda_current_device");
	*(void **)&ops->context_depth = dlsym(lib, "fake_cuda_context_depth");
	*(void **)&ops->hold = dlsym(lib, "fake_cuda_hold");
	*(void **)&ops->pending = dlsym(lib, "fake_cuda_pending");
	*(void **)&ops->inject = dlsym(lib, "fake_cuda_fail");
	if (ops->stats && ops->reset_stats && ops->access && ops->current_device &&
	    ops->context_depth && ops->hold && ops->pending && ops->inject)
		ret = 0;
	dlclose(lib);		/* the loader's reference keeps it loaded */
	return ret;
}

#endif
