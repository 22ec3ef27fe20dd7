/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the part of the CUDA Driver API the cuda backend uses: local
 * typedefs and constants that mirror cuda.h (CUDA 12.8 ABI, the version the
 * entry points are looked up at), so libaccel builds without the toolkit.
 * tests/libaccel/cuda_abi.c checks them against the toolkit's cuda.h where
 * it is installed.
 */
#ifndef ACCEL_CUDA_API_H
#define ACCEL_CUDA_API_H

#include <stddef.h>
#include <stdint.h>

typedef int cu_result;				/* CUresult */
typedef int cu_device;				/* CUdevice */
typedef unsigned long long cu_deviceptr;	/* CUdeviceptr (64-bit) */
typedef unsigned long long cu_mem_handle;	/* CUmemGenericAllocationHandle */
typedef struct cu_ctx_st *cu_context;		/* CUcontext */
typedef struct cu_stream_st *cu_stream;		/* CUstream */
typedef struct cu_event_st *cu_event;		/* CUevent */

#define CU_SUCCESS				0
#define CU_ERROR_INVALID_VALUE			1
#define CU_ERROR_OUT_OF_MEMORY			2
#define CU_ERROR_NOT_INITIALIZED		3
#define CU_ERROR_NO_DEVICE			100
#define CU_ERROR_INVALID_DEVICE			101
#define CU_ERROR_NOT_READY			600
#define CU_ERROR_PEER_ACCESS_UNSUPPORTED	217
#define CU_ERROR_NOT_PERMITTED			800
#define CU_ERROR_NOT_SUPPORTED			801

#define CU_DEVICE_ATTRIBUTE_VMM_SUPPORTED	102
#define CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED	124

#define CU_MEM_ALLOCATION_TYPE_PINNED		1
#define CU_MEM_HANDLE_TYPE_NONE			0
#define CU_MEM_LOCATION_TYPE_DEVICE		1
#define CU_MEM_ACCESS_FLAGS_PROT_READWRITE	3
#define CU_MEM_ALLOC_GRANULARITY_MINIMUM	0
#define CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD	1
#define CU_MEMHOSTREGISTER_PORTABLE		0x01
#define CU_STREAM_NON_BLOCKING			0x1
#define CU_EVENT_BLOCKING_SYNC			0x1
#define CU_EVENT_DISABLE_TIMING			0x2
#define CU_EVENT_WAIT_DEFAULT			0x0
#define CU_MEMCPY_SRC_ACCESS_ORDER_STREAM	0x1

struct cu_mem_location {			/* CUmemLocation */
	int type;
	int id;
};

struct cu_mem_allocation_prop {			/* CUmemAllocationProp */
	int type;
	int requested_handle_types;
	struct cu_mem_location location;
	void *win32_handle_meta_data;
	struct {
		unsigned char compression_type;
		unsigned char gpu_direct_rdma_capable;
		unsigned short usage;
		unsigned char reserved[4];
	} alloc_flags;
};

struct cu_mem_access_desc {			/* CUmemAccessDesc */
	struct cu_mem_location location;
	int flags;
};

struct cu_memcpy_attributes {			/* CUmemcpyAttributes */
	int src_access_order;
	struct cu_mem_location src_loc_hint;
	struct cu_mem_location dst_loc_hint;
	unsigned int flags;
};

/** The entry points, resolved by cuda_loader.c; NULL where marked optional. */
struct accel_cuda_api {
	cu_result (*cuDeviceGet)(cu_device *dev, int ordinal);
	cu_result (*cuDeviceGetAttribute)(int *value, int attribute, cu_device dev);
	cu_result (*cuDeviceCanAccessPeer)(int *can, cu_device dev, cu_device peer);
	cu_result (*cuDevicePrimaryCtxRetain)(cu_context *ctx, cu_device dev);
	cu_result (*cuDevicePrimaryCtxRelease)(cu_device dev);
	cu_result (*cuCtxSetCurrent)(cu_context ctx);
	/* cuCtxPushCurrent_v2 and cuCtxPopCurrent_v2 in libcuda's symbol table. */
	cu_result (*cuCtxPushCurrent)(cu_context ctx);
	cu_result (*cuCtxPopCurrent)(cu_context *ctx);
	cu_result (*cuCtxGetCurrent)(cu_context *ctx);
	cu_result (*cuMemGetAllocationGranularity)(size_t *granularity,
						   const struct cu_mem_allocation_prop *prop,
						   int option);
	cu_result (*cuMemAddressReserve)(cu_deviceptr *ptr, size_t size, size_t alignment,
					 cu_deviceptr addr, unsigned long long flags);
	cu_result (*cuMemAddressFree)(cu_deviceptr ptr, size_t size);
	cu_result (*cuMemCreate)(cu_mem_handle *handle, size_t size,
				 const struct cu_mem_allocation_prop *prop, unsigned long long flags);
	cu_result (*cuMemRelease)(cu_mem_handle handle);
	cu_result (*cuMemMap)(cu_deviceptr ptr, size_t size, size_t offset, cu_mem_handle handle,
			      unsigned long long flags);
	cu_result (*cuMemUnmap)(cu_deviceptr ptr, size_t size);
	cu_result (*cuMemSetAccess)(cu_deviceptr ptr, size_t size,
				    const struct cu_mem_access_desc *desc, size_t count);
	cu_result (*cuMemHostRegister)(void *p, size_t size, unsigned int flags);
	cu_result (*cuMemHostUnregister)(void *p);
	cu_result (*cuStreamCreate)(cu_stream *stream, unsigned int flags);
	cu_result (*cuStreamDestroy)(cu_stream stream);
	cu_result (*cuStreamSynchronize)(cu_stream stream);
	cu_result (*cuStreamWaitEvent)(cu_stream stream, cu_event event, unsigned int flags);
	cu_result (*cuEventCreate)(cu_event *event, unsigned int flags);
	cu_result (*cuEventDestroy)(cu_event event);
	cu_result (*cuEventRecord)(cu_event event, cu_stream stream);
	cu_result (*cuEventQuery)(cu_event event);
	cu_result (*cuEventSynchronize)(cu_event event);
	cu_result (*cuMemcpyAsync)(cu_deviceptr dst, cu_deviceptr src, size_t size,
				   cu_stream stream);
	/* Optional (CUDA 12.8 ABI: with failIdx). */
	cu_result (*cuMemcpyBatchAsync)(cu_deviceptr *dsts, cu_deviceptr *srcs, size_t *sizes,
					size_t count, struct cu_memcpy_attributes *attrs,
					size_t *attrs_idxs, size_t num_attrs, size_t *fail_idx,
					cu_stream stream);
	/* Optional. */
	cu_result (*cuMemGetHandleForAddressRange)(void *handle, cu_deviceptr ptr, size_t size,
						   int handle_type, unsigned long long flags);
};

#endif
