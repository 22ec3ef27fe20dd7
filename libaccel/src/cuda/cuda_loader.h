/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the CUDA Driver API, loaded at run time (dlopen of
 * libcuda.so.1, entry points through cuGetProcAddress), so libaccel builds
 * and runs without the CUDA toolkit or a GPU. Local typedefs mirror cuda.h.
 */
#ifndef ACCEL_CUDA_LOADER_H
#define ACCEL_CUDA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "cuda_api.h"

/* CUDA 12.8: cuMemcpyBatchAsync, the oldest driver the backend uses. */
#define ACCEL_CUDA_MIN_DRIVER	12080

struct accel_cuda {
	int driver_version;
	int devices;
	cu_result (*cuInit)(unsigned int flags);
	cu_result (*cuDriverGetVersion)(int *version);
	cu_result (*cuDeviceGetCount)(int *count);
	cu_result (*cuGetErrorName)(cu_result error, const char **name);
	struct accel_cuda_api api;
};

/*
 * Load the driver once (thread-safe). Returns the table, or NULL with
 * *err set (-ENODEV: no driver, no device or too old a driver; -EPROTO: a
 * driver without an entry point) and @why naming the reason.
 */
const struct accel_cuda *accel_cuda_load(int *err, char *why, size_t len);

/* A CUresult as a negative errno. */
int accel_cuda_errno(cu_result r);

#endif
