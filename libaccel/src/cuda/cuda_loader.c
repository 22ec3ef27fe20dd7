// SPDX-License-Identifier: MIT
/*
 * libaccel - loading the CUDA driver (cuda_loader.h).
 *
 * cuGetProcAddress is, in cuda.h, a macro for cuGetProcAddress_v2, which
 * takes five arguments (symbol, pfn, cudaVersion, flags, symbolStatus):
 * the looked-up name and the local typedef below must match it. Every
 * other entry point is resolved through it, by its base name, at the
 * CUDA version the backend is written against: the driver hands out the
 * version current at that ABI (cuCtxPushCurrent gives cuCtxPushCurrent_v2,
 * cuMemcpyAsync the non-per-thread-stream one), so no _v2 name is spelled
 * here.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cuda_loader.h"

#define CU_API_VERSION			12080

typedef cu_result (*get_proc_address_v2)(const char *symbol, void **pfn, int cuda_version,
					 uint64_t flags, int *symbol_status);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct accel_cuda cuda;
static int load_err;
static char load_why[160];

static int resolve(get_proc_address_v2 gpa, const char *name, void **fn)
{
	int status = 0;

	if (gpa(name, fn, CU_API_VERSION, 0, &status) != CU_SUCCESS || !*fn) {
		snprintf(load_why, sizeof(load_why), "libcuda.so.1 has no %s", name);
		return -EPROTO;
	}
	return 0;
}

/* The backend's entry points: the required ones, then the optional ones. */
static int resolve_api(get_proc_address_v2 gpa)
{
	static const struct { const char *name; size_t off; bool optional; } fns[] = {
#define FN(n, opt) { #n, offsetof(struct accel_cuda_api, n), opt }
		FN(cuDeviceGet, false), FN(cuDeviceGetAttribute, false),
		FN(cuDeviceCanAccessPeer, false), FN(cuDevicePrimaryCtxRetain, false),
		FN(cuDevicePrimaryCtxRelease, false), FN(cuCtxSetCurrent, false),
		FN(cuCtxPushCurrent, false), FN(cuCtxPopCurrent, false),
		FN(cuCtxGetCurrent, false),
		FN(cuMemGetAllocationGranularity, false), FN(cuMemAddressReserve, false),
		FN(cuMemAddressFree, false), FN(cuMemCreate, false), FN(cuMemRelease, false),
		FN(cuMemMap, false), FN(cuMemUnmap, false), FN(cuMemSetAccess, false),
		FN(cuMemHostRegister, false), FN(cuMemHostUnregister, false),
		FN(cuStreamCreate, false), FN(cuStreamDestroy, false),
		FN(cuStreamSynchronize, false), FN(cuStreamWaitEvent, false),
		FN(cuEventCreate, false),
		FN(cuEventDestroy, false), FN(cuEventRecord, false), FN(cuEventQuery, false),
		FN(cuEventSynchronize, false), FN(cuMemcpyAsync, false),
		FN(cuMemcpyBatchAsync, true), FN(cuMemGetHandleForAddressRange, true),
#undef FN
	};
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		void **fn = (void **)((char *)&cuda.api + fns[i].off);
		int status = 0;

		if (gpa(fns[i].name, fn, CU_API_VERSION, 0, &status) != CU_SUCCESS || !*fn) {
			*fn = NULL;
			if (fns[i].optional)
				continue;
			snprintf(load_why, sizeof(load_why), "libcuda.so.1 has no %s", fns[i].name);
			return -EPROTO;
		}
	}
	return 0;
}

static void load(void)
{
	get_proc_address_v2 gpa;
	void *lib;
	cu_result r;

	lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_why, sizeof(load_why), "no CUDA driver: %s", dlerror());
		load_err = -ENODEV;
		return;
	}
	gpa = (get_proc_address_v2)dlsym(lib, "cuGetProcAddress_v2");
	if (!gpa) {
		snprintf(load_why, sizeof(load_why), "libcuda.so.1 has no cuGetProcAddress_v2 "
			 "(a driver older than CUDA 12)");
		load_err = -ENODEV;
		return;
	}
	load_err = resolve(gpa, "cuInit", (void **)&cuda.cuInit);
	if (!load_err)
		load_err = resolve(gpa, "cuDriverGetVersion", (void **)&cuda.cuDriverGetVersion);
	if (!load_err)
		load_err = resolve(gpa, "cuDeviceGetCount", (void **)&cuda.cuDeviceGetCount);
	if (!load_err)
		load_err = resolve(gpa, "cuGetErrorName", (void **)&cuda.cuGetErrorName);
	if (!load_err)
		load_err = resolve_api(gpa);
	if (load_err)
		return;
	if (cuda.cuDriverGetVersion(&cuda.driver_version) != CU_SUCCESS ||
	    cuda.driver_version < ACCEL_CUDA_MIN_DRIVER) {
		snprintf(load_why, sizeof(load_why), "CUDA driver %d.%d, libaccel needs %d.%d or later",
			 cuda.driver_version / 1000, cuda.driver_version % 1000 / 10,
			 ACCEL_CUDA_MIN_DRIVER / 1000, ACCEL_CUDA_MIN_DRIVER % 1000 / 10);
		load_err = -ENODEV;
		return;
	}
	r = cuda.cuInit(0);
	if (r == CU_SUCCESS)
		r = cuda.cuDeviceGetCount(&cuda.devices);
	if (r != CU_SUCCESS || !cuda.devices) {
		const char *name = "no device";

		if (r != CU_SUCCESS)
			cuda.cuGetErrorName(r, &name);
		snprintf(load_why, sizeof(load_why), "CUDA driver loaded, but no GPU: %s", name);
		load_err = -ENODEV;
	}
}

const struct accel_cuda *accel_cuda_load(int *err, char *why, size_t len)
{
	pthread_once(&once, load);
	*err = load_err;
	if (why && len)
		snprintf(why, len, "%s", load_err ? load_why : "ok");
	return load_err ? NULL : &cuda;
}

int accel_cuda_errno(cu_result r)
{
	switch (r) {
	case CU_SUCCESS: return 0;
	case CU_ERROR_INVALID_VALUE: return -EINVAL;
	case CU_ERROR_OUT_OF_MEMORY: return -ENOMEM;
	case CU_ERROR_NOT_INITIALIZED: return -ENXIO;
	case CU_ERROR_NO_DEVICE:
	case CU_ERROR_INVALID_DEVICE: return -ENODEV;
	case CU_ERROR_NOT_PERMITTED: return -EPERM;
	case CU_ERROR_NOT_SUPPORTED:
	case CU_ERROR_PEER_ACCESS_UNSUPPORTED: return -EOPNOTSUPP;
	case CU_ERROR_NOT_READY: return -EBUSY;
	default: return -EIO;
	}
}
