// SPDX-License-Identifier: GPL-2.0-only
/*
 * libaccel's CUDA typedefs (libaccel/src/cuda/cuda_api.h, cuda_loader.h)
 * against the toolkit's cuda.h and cudaTypedefs.h, where installed (the
 * Makefile's CUDA_INC; a TAP SKIP without): the checks are compile-time
 * (_Static_assert), the tests at run time only check that every constant
 * and entry point was checked.
 *
 *  - sizes and every member's offset and size of the structs;
 *  - each constant against cuda.h's enumerator or macro;
 *  - each entry point's prototype against the PFN_<name>_v<version>
 *    typedef cuGetProcAddress hands out at CUDA 12.8 (the version the
 *    loader asks for). Our prototypes use int for CUresult and the enums,
 *    and our own struct tags, so the types are not "compatible" in C's
 *    sense: both sides are written out here (each checked exactly against
 *    its own header with __builtin_types_compatible_p), then compared
 *    parameter by parameter: same size, same class (integer or pointer),
 *    same signedness for plain integers, same pointee size for pointers
 *    to complete types. Enums (unsigned int in GCC) pass for int.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#ifdef ACCEL_HAVE_CUDA_H
#include <cuda.h>
#include <cudaTypedefs.h>

/*
 * cuda_api.h #defines some of cuda.h's enumerators: their values, taken
 * before it does (so cuda.h must come first wherever both are included).
 */
enum {
	REAL_CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED,
	REAL_CU_MEM_ALLOCATION_TYPE_PINNED = CU_MEM_ALLOCATION_TYPE_PINNED,
	REAL_CU_MEM_HANDLE_TYPE_NONE = CU_MEM_HANDLE_TYPE_NONE,
	REAL_CU_MEM_LOCATION_TYPE_DEVICE = CU_MEM_LOCATION_TYPE_DEVICE,
	REAL_CU_MEM_ACCESS_FLAGS_PROT_READWRITE = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
	REAL_CU_MEM_ALLOC_GRANULARITY_MINIMUM = CU_MEM_ALLOC_GRANULARITY_MINIMUM,
	REAL_CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD = CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD,
	REAL_CU_MEMHOSTREGISTER_PORTABLE = CU_MEMHOSTREGISTER_PORTABLE,
	REAL_CU_STREAM_NON_BLOCKING = CU_STREAM_NON_BLOCKING,
	REAL_CU_EVENT_BLOCKING_SYNC = CU_EVENT_BLOCKING_SYNC,
	REAL_CU_EVENT_DISABLE_TIMING = CU_EVENT_DISABLE_TIMING,
	REAL_CU_EVENT_WAIT_DEFAULT = CU_EVENT_WAIT_DEFAULT,
	REAL_CU_MEMCPY_SRC_ACCESS_ORDER_STREAM = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM,
};
#undef CU_MEMHOSTREGISTER_PORTABLE	/* a macro in cuda.h too */

/* cuda.h maps some entry points to versioned names: not our members'. */
#undef cuDeviceGet
#undef cuDeviceGetAttribute
#undef cuDeviceCanAccessPeer
#undef cuDevicePrimaryCtxRetain
#undef cuDevicePrimaryCtxRelease
#undef cuCtxSetCurrent
#undef cuCtxPushCurrent
#undef cuCtxPopCurrent
#undef cuCtxGetCurrent
#undef cuStreamWaitEvent
#undef cuMemGetAllocationGranularity
#undef cuMemAddressReserve
#undef cuMemAddressFree
#undef cuMemCreate
#undef cuMemRelease
#undef cuMemMap
#undef cuMemUnmap
#undef cuMemSetAccess
#undef cuMemHostRegister
#undef cuMemHostUnregister
#undef cuStreamCreate
#undef cuStreamDestroy
#undef cuStreamSynchronize
#undef cuEventCreate
#undef cuEventDestroy
#undef cuEventRecord
#undef cuEventQuery
#undef cuEventSynchronize
#undef cuMemcpyAsync
#undef cuMemcpyBatchAsync
#undef cuMemGetHandleForAddressRange
#undef cuInit
#undef cuDriverGetVersion
#undef cuDeviceGetCount
#undef cuGetErrorName
#undef cuGetProcAddress
#endif

#include "cuda/cuda_loader.h"
#include "fake_cuda.h"

#ifdef ACCEL_HAVE_CUDA_H

/* --- types and structs ------------------------------------------------------ */

#define CLASS(t)	__builtin_classify_type((t)0)
#define SIGNED(t)	((t)-1 < (t)1)
#define INT_CLASS	1
#define PTR_CLASS	5

#define SAME_SCALAR(o, r)						\
	_Static_assert(sizeof(o) == sizeof(r) && CLASS(o) == CLASS(r) &&	\
		       (CLASS(o) != INT_CLASS || SIGNED(o) == SIGNED(r)),	\
		       #o " is " #r)

SAME_SCALAR(cu_device, CUdevice);
SAME_SCALAR(cu_deviceptr, CUdeviceptr);
SAME_SCALAR(cu_mem_handle, CUmemGenericAllocationHandle);
SAME_SCALAR(cu_context, CUcontext);
SAME_SCALAR(cu_stream, CUstream);
SAME_SCALAR(cu_event, CUevent);
/* CUresult is an enum (unsigned int here): the size and class only. */
_Static_assert(sizeof(cu_result) == sizeof(CUresult) && CLASS(cu_result) == CLASS(CUresult),
	       "cu_result is CUresult");

/* Offset, size and class (integer, pointer, array, struct). */
#define SAME_MEMBER(os, om, rs, rm)					\
	_Static_assert(offsetof(os, om) == offsetof(rs, rm) &&		\
		       sizeof(((os *)0)->om) == sizeof(((rs *)0)->rm) &&	\
		       __builtin_classify_type(((os *)0)->om) ==		\
		       __builtin_classify_type(((rs *)0)->rm),		\
		       #os "." #om " is " #rs "." #rm)
#define SAME_SIZE(os, rs)						\
	_Static_assert(sizeof(os) == sizeof(rs) && _Alignof(os) == _Alignof(rs), \
		       #os " is " #rs)

SAME_SIZE(struct cu_mem_location, CUmemLocation);
SAME_MEMBER(struct cu_mem_location, type, CUmemLocation, type);
SAME_MEMBER(struct cu_mem_location, id, CUmemLocation, id);

SAME_SIZE(struct cu_mem_allocation_prop, CUmemAllocationProp);
SAME_MEMBER(struct cu_mem_allocation_prop, type, CUmemAllocationProp, type);
SAME_MEMBER(struct cu_mem_allocation_prop, requested_handle_types,
	    CUmemAllocationProp, requestedHandleTypes);
SAME_MEMBER(struct cu_mem_allocation_prop, location, CUmemAllocationProp, location);
SAME_MEMBER(struct cu_mem_allocation_prop, location.type, CUmemAllocationProp, location.type);
SAME_MEMBER(struct cu_mem_allocation_prop, location.id, CUmemAllocationProp, location.id);
SAME_MEMBER(struct cu_mem_allocation_prop, win32_handle_meta_data,
	    CUmemAllocationProp, win32HandleMetaData);
SAME_MEMBER(struct cu_mem_allocation_prop, alloc_flags, CUmemAllocationProp, allocFlags);
SAME_MEMBER(struct cu_mem_allocation_prop, alloc_flags.compression_type,
	    CUmemAllocationProp, allocFlags.compressionType);
SAME_MEMBER(struct cu_mem_allocation_prop, alloc_flags.gpu_direct_rdma_capable,
	    CUmemAllocationProp, allocFlags.gpuDirectRDMACapable);
SAME_MEMBER(struct cu_mem_allocation_prop, alloc_flags.usage, CUmemAllocationProp, allocFlags.usage);
SAME_MEMBER(struct cu_mem_allocation_prop, alloc_flags.reserved,
	    CUmemAllocationProp, allocFlags.reserved);

SAME_SIZE(struct cu_mem_access_desc, CUmemAccessDesc);
SAME_MEMBER(struct cu_mem_access_desc, location, CUmemAccessDesc, location);
SAME_MEMBER(struct cu_mem_access_desc, location.type, CUmemAccessDesc, location.type);
SAME_MEMBER(struct cu_mem_access_desc, location.id, CUmemAccessDesc, location.id);
SAME_MEMBER(struct cu_mem_access_desc, flags, CUmemAccessDesc, flags);

SAME_SIZE(struct cu_memcpy_attributes, CUmemcpyAttributes);
SAME_MEMBER(struct cu_memcpy_attributes, src_access_order, CUmemcpyAttributes, srcAccessOrder);
SAME_MEMBER(struct cu_memcpy_attributes, src_loc_hint, CUmemcpyAttributes, srcLocHint);
SAME_MEMBER(struct cu_memcpy_attributes, dst_loc_hint, CUmemcpyAttributes, dstLocHint);
SAME_MEMBER(struct cu_memcpy_attributes, flags, CUmemcpyAttributes, flags);

/* --- constants -------------------------------------------------------------- */

/* (ours, cuda.h's): every CU_ #define of cuda_api.h (the test checks). */
#define CONSTANTS(X)								\
	X(CU_SUCCESS, CUDA_SUCCESS)						\
	X(CU_ERROR_INVALID_VALUE, CUDA_ERROR_INVALID_VALUE)			\
	X(CU_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY)			\
	X(CU_ERROR_NOT_INITIALIZED, CUDA_ERROR_NOT_INITIALIZED)		\
	X(CU_ERROR_NO_DEVICE, CUDA_ERROR_NO_DEVICE)				\
	X(CU_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_DEVICE)			\
	X(CU_ERROR_NOT_READY, CUDA_ERROR_NOT_READY)				\
	X(CU_ERROR_PEER_ACCESS_UNSUPPORTED, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED)	\
	X(CU_ERROR_NOT_PERMITTED, CUDA_ERROR_NOT_PERMITTED)			\
	X(CU_ERROR_NOT_SUPPORTED, CUDA_ERROR_NOT_SUPPORTED)			\
	X(CU_DEVICE_ATTRIBUTE_VMM_SUPPORTED,					\
	  CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)		\
	X(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, REAL_CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED) \
	X(CU_MEM_ALLOCATION_TYPE_PINNED, REAL_CU_MEM_ALLOCATION_TYPE_PINNED)	\
	X(CU_MEM_HANDLE_TYPE_NONE, REAL_CU_MEM_HANDLE_TYPE_NONE)		\
	X(CU_MEM_LOCATION_TYPE_DEVICE, REAL_CU_MEM_LOCATION_TYPE_DEVICE)	\
	X(CU_MEM_ACCESS_FLAGS_PROT_READWRITE, REAL_CU_MEM_ACCESS_FLAGS_PROT_READWRITE) \
	X(CU_MEM_ALLOC_GRANULARITY_MINIMUM, REAL_CU_MEM_ALLOC_GRANULARITY_MINIMUM) \
	X(CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, REAL_CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD) \
	X(CU_MEMHOSTREGISTER_PORTABLE, REAL_CU_MEMHOSTREGISTER_PORTABLE)	\
	X(CU_STREAM_NON_BLOCKING, REAL_CU_STREAM_NON_BLOCKING)			\
	X(CU_EVENT_BLOCKING_SYNC, REAL_CU_EVENT_BLOCKING_SYNC)			\
	X(CU_EVENT_DISABLE_TIMING, REAL_CU_EVENT_DISABLE_TIMING)		\
	X(CU_EVENT_WAIT_DEFAULT, REAL_CU_EVENT_WAIT_DEFAULT)			\
	X(CU_MEMCPY_SRC_ACCESS_ORDER_STREAM, REAL_CU_MEMCPY_SRC_ACCESS_ORDER_STREAM) \
	/* The fake driver's (tests/libaccel/fake_cuda.h). */			\
	X(FAKE_CU_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_CONTEXT)		\
	X(FAKE_CU_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_HANDLE)		\
	X(FAKE_CU_ERROR_NOT_FOUND, CUDA_ERROR_NOT_FOUND)			\
	X(FAKE_CU_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_ILLEGAL_ADDRESS)		\
	X(FAKE_CU_ERROR_HOST_MEMORY_ALREADY_REGISTERED,				\
	  CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED)				\
	X(FAKE_CU_ERROR_HOST_MEMORY_NOT_REGISTERED, CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED) \
	X(FAKE_CU_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN)

#define CHECK_CONSTANT(o, r) _Static_assert((long long)(o) == (long long)(r), #o " is " #r);
CONSTANTS(CHECK_CONSTANT)

/* --- entry points ----------------------------------------------------------- */

/*
 * A parameter: K(kind, ours, cuda.h's). Kinds: I integer (signedness too),
 * E ours int, theirs an enum, V a pointer to an opaque type or void, P a
 * pointer to a complete type (the pointees' sizes and classes too).
 */
#define ARG_I(o, r)	SAME_SCALAR(o, r);
#define ARG_E(o, r)	_Static_assert(sizeof(o) == sizeof(r) && CLASS(o) == INT_CLASS &&	\
				       CLASS(r) == INT_CLASS, #o " is " #r);
#define ARG_V(o, r)	_Static_assert(CLASS(o) == PTR_CLASS && CLASS(r) == PTR_CLASS,	\
				       #o " is " #r);
#define ARG_P(o, r)	_Static_assert(CLASS(o) == PTR_CLASS && CLASS(r) == PTR_CLASS &&	\
				       sizeof(*(o)0) == sizeof(*(r)0) &&			\
				       __builtin_classify_type(*(o)0) ==			\
				       __builtin_classify_type(*(r)0), #o " is " #r);
#define ARG(k, o, r)	ARG_##k(o, r)
#define OURS(k, o, r)	, o
#define REAL(k, o, r)	, r
#define TAIL(...)	TAIL_(__VA_ARGS__)
#define TAIL_(x, ...)	__VA_ARGS__

/*
 * (struct, member, cuda.h's PFN typedef at 12.8, parameters): the
 * prototype written both ways, each exactly its header's, then compared.
 */
#define CHECK_FN(s, m, pfn, params)						\
	_Static_assert(__builtin_types_compatible_p(__typeof__(((s *)0)->m),	\
						    cu_result (*)(TAIL(params(OURS)))), \
		       #s "." #m " is as written here");			\
	_Static_assert(__builtin_types_compatible_p(pfn, CUresult (CUDAAPI *)(TAIL(params(REAL)))), \
		       #pfn " is as written here");				\
	params(ARG)

#define API(m, pfn, params)	CHECK_FN(struct accel_cuda_api, m, pfn, params)
#define LOADER(m, pfn, params)	CHECK_FN(struct accel_cuda, m, pfn, params)

#define P_cuInit(K)			K(I, unsigned int, unsigned int)
#define P_cuDriverGetVersion(K)		K(P, int *, int *)
#define P_cuDeviceGetCount(K)		K(P, int *, int *)
#define P_cuGetErrorName(K)		K(E, cu_result, CUresult) K(P, const char **, const char **)
#define P_cuDeviceGet(K)		K(P, cu_device *, CUdevice_v1 *) K(I, int, int)
#define P_cuDeviceGetAttribute(K)	K(P, int *, int *) K(E, int, CUdevice_attribute)	\
					K(I, cu_device, CUdevice_v1)
#define P_cuDeviceCanAccessPeer(K)	K(P, int *, int *) K(I, cu_device, CUdevice_v1)		\
					K(I, cu_device, CUdevice_v1)
#define P_cuDevicePrimaryCtxRetain(K)	K(P, cu_context *, CUcontext *) K(I, cu_device, CUdevice_v1)
#define P_cuDevicePrimaryCtxRelease(K)	K(I, cu_device, CUdevice_v1)
#define P_cuCtxSetCurrent(K)		K(V, cu_context, CUcontext)
#define P_cuCtxPushCurrent(K)		K(V, cu_context, CUcontext)
#define P_cuCtxPopCurrent(K)		K(P, cu_context *, CUcontext *)
#define P_cuCtxGetCurrent(K)		K(P, cu_context *, CUcontext *)
#define P_cuMemGetAllocationGranularity(K) K(P, size_t *, size_t *)				\
					K(P, const struct cu_mem_allocation_prop *,		\
					  const CUmemAllocationProp_v1 *)			\
					K(E, int, CUmemAllocationGranularity_flags)
#define P_cuMemAddressReserve(K)	K(P, cu_deviceptr *, CUdeviceptr_v2 *) K(I, size_t, size_t) \
					K(I, size_t, size_t) K(I, cu_deviceptr, CUdeviceptr_v2)	\
					K(I, unsigned long long, unsigned long long)
#define P_cuMemAddressFree(K)		K(I, cu_deviceptr, CUdeviceptr_v2) K(I, size_t, size_t)
#define P_cuMemCreate(K)		K(P, cu_mem_handle *, CUmemGenericAllocationHandle_v1 *) \
					K(I, size_t, size_t)					\
					K(P, const struct cu_mem_allocation_prop *,		\
					  const CUmemAllocationProp_v1 *)			\
					K(I, unsigned long long, unsigned long long)
#define P_cuMemRelease(K)		K(I, cu_mem_handle, CUmemGenericAllocationHandle_v1)
#define P_cuMemMap(K)			K(I, cu_deviceptr, CUdeviceptr_v2) K(I, size_t, size_t)	\
					K(I, size_t, size_t)					\
					K(I, cu_mem_handle, CUmemGenericAllocationHandle_v1)	\
					K(I, unsigned long long, unsigned long long)
#define P_cuMemUnmap(K)			K(I, cu_deviceptr, CUdeviceptr_v2) K(I, size_t, size_t)
#define P_cuMemSetAccess(K)		K(I, cu_deviceptr, CUdeviceptr_v2) K(I, size_t, size_t)	\
					K(P, const struct cu_mem_access_desc *,			\
					  const CUmemAccessDesc_v1 *)				\
					K(I, size_t, size_t)
#define P_cuMemHostRegister(K)		K(V, void *, void *) K(I, size_t, size_t)		\
					K(I, unsigned int, unsigned int)
#define P_cuMemHostUnregister(K)	K(V, void *, void *)
#define P_cuStreamCreate(K)		K(P, cu_stream *, CUstream *) K(I, unsigned int, unsigned int)
#define P_cuStreamDestroy(K)		K(V, cu_stream, CUstream)
#define P_cuStreamSynchronize(K)	K(V, cu_stream, CUstream)
#define P_cuStreamWaitEvent(K)		K(V, cu_stream, CUstream) K(V, cu_event, CUevent)	\
					K(I, unsigned int, unsigned int)
#define P_cuEventCreate(K)		K(P, cu_event *, CUevent *) K(I, unsigned int, unsigned int)
#define P_cuEventDestroy(K)		K(V, cu_event, CUevent)
#define P_cuEventRecord(K)		K(V, cu_event, CUevent) K(V, cu_stream, CUstream)
#define P_cuEventQuery(K)		K(V, cu_event, CUevent)
#define P_cuEventSynchronize(K)		K(V, cu_event, CUevent)
#define P_cuMemcpyAsync(K)		K(I, cu_deviceptr, CUdeviceptr_v2)			\
					K(I, cu_deviceptr, CUdeviceptr_v2) K(I, size_t, size_t)	\
					K(V, cu_stream, CUstream)
#define P_cuMemcpyBatchAsync(K)		K(P, cu_deviceptr *, CUdeviceptr_v2 *)			\
					K(P, cu_deviceptr *, CUdeviceptr_v2 *)			\
					K(P, size_t *, size_t *) K(I, size_t, size_t)		\
					K(P, struct cu_memcpy_attributes *, CUmemcpyAttributes_v1 *) \
					K(P, size_t *, size_t *) K(I, size_t, size_t)		\
					K(P, size_t *, size_t *) K(V, cu_stream, CUstream)
#define P_cuMemGetHandleForAddressRange(K) K(V, void *, void *) K(I, cu_deviceptr, CUdeviceptr) \
					K(I, size_t, size_t) K(E, int, CUmemRangeHandleType)	\
					K(I, unsigned long long, unsigned long long)

/* X(member, cuda.h's PFN typedef): every member of struct accel_cuda_api. */
#define API_FUNCTIONS(X)							\
	X(cuDeviceGet, PFN_cuDeviceGet_v2000)					\
	X(cuDeviceGetAttribute, PFN_cuDeviceGetAttribute_v2000)			\
	X(cuDeviceCanAccessPeer, PFN_cuDeviceCanAccessPeer_v4000)		\
	X(cuDevicePrimaryCtxRetain, PFN_cuDevicePrimaryCtxRetain_v7000)		\
	X(cuDevicePrimaryCtxRelease, PFN_cuDevicePrimaryCtxRelease_v11000)	\
	X(cuCtxSetCurrent, PFN_cuCtxSetCurrent_v4000)				\
	X(cuCtxPushCurrent, PFN_cuCtxPushCurrent_v4000)				\
	X(cuCtxPopCurrent, PFN_cuCtxPopCurrent_v4000)				\
	X(cuCtxGetCurrent, PFN_cuCtxGetCurrent_v4000)				\
	X(cuMemGetAllocationGranularity, PFN_cuMemGetAllocationGranularity_v10020) \
	X(cuMemAddressReserve, PFN_cuMemAddressReserve_v10020)			\
	X(cuMemAddressFree, PFN_cuMemAddressFree_v10020)			\
	X(cuMemCreate, PFN_cuMemCreate_v10020)					\
	X(cuMemRelease, PFN_cuMemRelease_v10020)				\
	X(cuMemMap, PFN_cuMemMap_v10020)					\
	X(cuMemUnmap, PFN_cuMemUnmap_v10020)					\
	X(cuMemSetAccess, PFN_cuMemSetAccess_v10020)				\
	X(cuMemHostRegister, PFN_cuMemHostRegister_v6050)			\
	X(cuMemHostUnregister, PFN_cuMemHostUnregister_v4000)			\
	X(cuStreamCreate, PFN_cuStreamCreate_v2000)				\
	X(cuStreamDestroy, PFN_cuStreamDestroy_v4000)				\
	X(cuStreamSynchronize, PFN_cuStreamSynchronize_v2000)			\
	X(cuStreamWaitEvent, PFN_cuStreamWaitEvent_v3020)			\
	X(cuEventCreate, PFN_cuEventCreate_v2000)				\
	X(cuEventDestroy, PFN_cuEventDestroy_v4000)				\
	X(cuEventRecord, PFN_cuEventRecord_v2000)				\
	X(cuEventQuery, PFN_cuEventQuery_v2000)					\
	X(cuEventSynchronize, PFN_cuEventSynchronize_v2000)			\
	X(cuMemcpyAsync, PFN_cuMemcpyAsync_v4000)				\
	X(cuMemcpyBatchAsync, PFN_cuMemcpyBatchAsync_v12080)			\
	X(cuMemGetHandleForAddressRange, PFN_cuMemGetHandleForAddressRange_v11070)

#define LOADER_FUNCTIONS(X)							\
	X(cuInit, PFN_cuInit_v2000)						\
	X(cuDriverGetVersion, PFN_cuDriverGetVersion_v2020)			\
	X(cuDeviceGetCount, PFN_cuDeviceGetCount_v2000)				\
	X(cuGetErrorName, PFN_cuGetErrorName_v6000)

#define CHECK_API(m, pfn)	API(m, pfn, P_##m)
#define CHECK_LOADER(m, pfn)	LOADER(m, pfn, P_##m)
API_FUNCTIONS(CHECK_API)
LOADER_FUNCTIONS(CHECK_LOADER)

/* The 12.8 batch copy has failIdx; 13.0's (cuda.h's default now) has not. */
_Static_assert(!__builtin_types_compatible_p(PFN_cuMemcpyBatchAsync_v12080,
					     PFN_cuMemcpyBatchAsync_v13000), "batch ABIs");

/*
 * cuda_loader.c's own typedef of cuGetProcAddress_v2 (a copy: it is local
 * to that file): five arguments, the last CUdriverProcAddressQueryResult *.
 */
typedef cu_result (*loader_get_proc_address_v2)(const char *symbol, void **pfn, int cuda_version,
						uint64_t flags, int *symbol_status);
struct loader_gpa {
	loader_get_proc_address_v2 cuGetProcAddress;
};
#define P_cuGetProcAddress(K)	K(P, const char *, const char *) K(P, void **, void **)	\
				K(I, int, int) K(I, uint64_t, cuuint64_t)			\
				K(P, int *, CUdriverProcAddressQueryResult *)
CHECK_FN(struct loader_gpa, cuGetProcAddress, PFN_cuGetProcAddress_v12000, P_cuGetProcAddress)

/* --- run time: that the lists above cover the headers ------------------------ */

static void constants_all_checked(void **state)
{
#define NAME(o, r) #o,
	static const char *const checked[] = { CONSTANTS(NAME) };
#undef NAME
	char line[256], name[128];
	FILE *f = fopen(CUDA_API_H_PATH, "r");
	int n = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t i;
		bool found = false;

		if (sscanf(line, "#define %127s", name) != 1 || strncmp(name, "CU_", 3))
			continue;
		for (i = 0; i < sizeof(checked) / sizeof(checked[0]); i++)
			found |= !strcmp(checked[i], name);
		if (!found)
			fail_msg("%s in cuda_api.h is not checked against cuda.h", name);
		n++;
	}
	fclose(f);
	printf("# %d constants of cuda_api.h checked\n", n);
	assert_true(n > 0);
}

static void functions_all_checked(void **state)
{
#define OFFSET(m, pfn) offsetof(struct accel_cuda_api, m),
	static const size_t offsets[] = { API_FUNCTIONS(OFFSET) };
#undef OFFSET
	const size_t slots = sizeof(struct accel_cuda_api) / sizeof(void (*)(void));
	size_t i, j;

	(void)state;
	assert_int_equal(0, sizeof(struct accel_cuda_api) % sizeof(void (*)(void)));
	assert_int_equal(slots, sizeof(offsets) / sizeof(offsets[0]));
	for (i = 0; i < slots; i++)
		for (j = 0; j < i; j++)
			assert_int_not_equal(offsets[i], offsets[j]);
	printf("# %zu entry points of struct accel_cuda_api checked (CUDA %d.%d headers)\n",
	       slots, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(constants_all_checked),
		cmocka_unit_test(functions_all_checked),
	};

	return cmocka_run_group_tests_name("cuda_abi", tests, NULL, NULL);
}

#else /* !ACCEL_HAVE_CUDA_H */

/* Plain TAP: cmocka reports a skip() as "not ok ... # SKIP". */
int main(void)
{
	printf("1..1\n# no cuda.h in CUDA_INC: libaccel's CUDA typedefs not checked\n");
	printf("ok 1 - cuda_abi # SKIP no cuda.h\n");
	return 0;
}

#endif
