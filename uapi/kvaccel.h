/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * kvaccel - pinned KV-cache memory for LLM serving: the ioctl ABI.
 *
 * This header is the single source of the ABI: the module and every
 * userspace component build against it. Rules (Documentation/uapi.rst):
 * fixed-size naturally aligned types, every struct a multiple of 8 bytes,
 * user pointers as __u64, a flags field with a mask of known flags in every
 * struct, unknown flags and non-zero pad rejected with -EINVAL before any
 * side effect, structs grow only at their end and a zero in a new field
 * keeps the old behaviour.
 */
#ifndef _UAPI_KVACCEL_H_
#define _UAPI_KVACCEL_H_

#include <linux/const.h>

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

/**
 * DOC: ABI version
 *
 * The major number changes only if an existing ioctl changes meaning (never
 * planned); the minor number grows with every addition. Userspace checks
 * the major number with %KVACCEL_PARAM_ABI_VERSION and features with
 * %KVACCEL_PARAM_CAPABILITIES.
 */
#define KVACCEL_ABI_MAJOR	1
#define KVACCEL_ABI_MINOR	0
/** KVACCEL_ABI_VERSION - value of %KVACCEL_PARAM_ABI_VERSION: major << 16 | minor. */
#define KVACCEL_ABI_VERSION	((KVACCEL_ABI_MAJOR << 16) | KVACCEL_ABI_MINOR)

/** KVACCEL_BLOCK_SHIFT_MIN - smallest region block: 4 KiB. */
#define KVACCEL_BLOCK_SHIFT_MIN	12
/** KVACCEL_BLOCK_SHIFT_MAX - largest region block: 2 MiB. */
#define KVACCEL_BLOCK_SHIFT_MAX	21
/** KVACCEL_REGION_MAX_BLOCKS - most blocks one region may hold. */
#define KVACCEL_REGION_MAX_BLOCKS	(4u << 20)

#define DRM_KVACCEL_GET_PARAM		0x00
#define DRM_KVACCEL_REGION_CREATE	0x01
#define DRM_KVACCEL_REGION_INFO		0x02

#define DRM_IOCTL_KVACCEL_GET_PARAM \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_GET_PARAM, struct drm_kvaccel_get_param)
#define DRM_IOCTL_KVACCEL_REGION_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_REGION_CREATE, struct drm_kvaccel_region_create)
#define DRM_IOCTL_KVACCEL_REGION_INFO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_REGION_INFO, struct drm_kvaccel_region_info)

/**
 * enum drm_kvaccel_param - what %DRM_IOCTL_KVACCEL_GET_PARAM reads.
 *
 * Numbers are never reused; an unknown number gives -EINVAL.
 *
 * @KVACCEL_PARAM_ABI_VERSION: %KVACCEL_ABI_VERSION of the module.
 * @KVACCEL_PARAM_CAPABILITIES: mask of %KVACCEL_CAP_* bits.
 * @KVACCEL_PARAM_BLOCK_SIZES: supported region block sizes: bit n set means
 *	a block of 2^n bytes is supported.
 * @KVACCEL_PARAM_DEVICE_LIMIT: bytes all regions of the device may hold.
 * @KVACCEL_PARAM_DEVICE_USAGE: bytes all regions of the device hold now.
 * @KVACCEL_PARAM_CLIENT_USAGE: bytes charged to the calling process (thread
 *	group), over all its open files.
 * @KVACCEL_PARAM_CLIENT_QUOTA: quota of the calling process in bytes, 0 if
 *	it has none (only the device limit applies).
 * @KVACCEL_PARAM_PAGES_HELD: pages (PAGE_SIZE) the module holds for regions,
 *	counted by the module itself; equals DEVICE_USAGE / PAGE_SIZE whenever
 *	no region is being created or freed.
 * @KVACCEL_PARAM_REGIONS: regions alive on the device.
 */
enum drm_kvaccel_param {
	KVACCEL_PARAM_ABI_VERSION	= 0,
	KVACCEL_PARAM_CAPABILITIES	= 1,
	KVACCEL_PARAM_BLOCK_SIZES	= 2,
	KVACCEL_PARAM_DEVICE_LIMIT	= 3,
	KVACCEL_PARAM_DEVICE_USAGE	= 4,
	KVACCEL_PARAM_CLIENT_USAGE	= 5,
	KVACCEL_PARAM_CLIENT_QUOTA	= 6,
	KVACCEL_PARAM_PAGES_HELD	= 7,
	KVACCEL_PARAM_REGIONS		= 8,
};

/** KVACCEL_CAP_REGION - regions: create, info, mmap, GEM close. */
#define KVACCEL_CAP_REGION		_BITULL(0)
/** KVACCEL_CAP_PRIME_EXPORT - regions export as dma-bufs (PRIME). */
#define KVACCEL_CAP_PRIME_EXPORT	_BITULL(1)
/** KVACCEL_CAP_PRIME_IMPORT - dma-bufs of other drivers import (PRIME). */
#define KVACCEL_CAP_PRIME_IMPORT	_BITULL(2)
/** KVACCEL_CAP_NUMA - %KVACCEL_REGION_CREATE_NUMA_NODE is honoured. */
#define KVACCEL_CAP_NUMA		_BITULL(3)

/**
 * struct drm_kvaccel_get_param - read one device or client parameter.
 *
 * Errors: -EINVAL for an unknown @param, non-zero @flags; -EFAULT for a
 * bad argument pointer.
 */
struct drm_kvaccel_get_param {
	/** @param: In. One of &enum drm_kvaccel_param. */
	__u32 param;
	/** @flags: In. Must be 0 (%KVACCEL_GET_PARAM_FLAGS). */
	__u32 flags;
	/** @value: Out. The parameter's value. */
	__u64 value;
};

/** KVACCEL_GET_PARAM_FLAGS - mask of known &drm_kvaccel_get_param.flags: none. */
#define KVACCEL_GET_PARAM_FLAGS		0u

/**
 * KVACCEL_REGION_CREATE_NUMA_NODE - allocate every block on
 * &drm_kvaccel_region_create.numa_node and nowhere else; without this flag
 * the blocks come from any node (the calling task's memory policy).
 */
#define KVACCEL_REGION_CREATE_NUMA_NODE	_BITUL(0)
/** KVACCEL_REGION_CREATE_FLAGS - mask of known &drm_kvaccel_region_create.flags. */
#define KVACCEL_REGION_CREATE_FLAGS	(KVACCEL_REGION_CREATE_NUMA_NODE)

/**
 * struct drm_kvaccel_region_create - create a region of pinned host memory.
 *
 * The region is @size bytes in blocks of @block_size bytes; each block is
 * one physically contiguous allocation of the block's order, zero-filled,
 * never swapped or migrated while the region lives. The pages are charged
 * to the calling task's memory cgroup, and the region to the calling
 * process's quota and the device limit until its last page is freed.
 * Closing the returned handle (%DRM_IOCTL_GEM_CLOSE) drops this client's
 * reference; mmaps and exported dma-bufs keep the region alive.
 *
 * Errors:
 * -EINVAL: unknown @flags; @block_size not a power of two from 4 KiB to
 * 2 MiB; @size zero or not a multiple of @block_size; more than
 * %KVACCEL_REGION_MAX_BLOCKS blocks; @numa_node not an online node (with
 * %KVACCEL_REGION_CREATE_NUMA_NODE) or not 0 (without it).
 * -EDQUOT: the calling process's quota would be exceeded.
 * -ENOMEM: the device limit would be exceeded, the memory cgroup limit was
 * hit, or the allocator has no free block of that order (on that node); a
 * smaller block size may succeed.
 * -EINTR: a fatal signal arrived while the blocks were being allocated.
 * -EFAULT: bad argument pointer.
 * Usage and quota are exactly as before on any error.
 */
struct drm_kvaccel_region_create {
	/**
	 * @handle: Out. GEM handle of the new region. It comes first so that
	 * a short argument (DRM zero-extends it) either fails validation or
	 * still receives the handle.
	 */
	__u32 handle;
	/** @flags: In. %KVACCEL_REGION_CREATE_* bits. */
	__u32 flags;
	/** @size: In. Bytes; a non-zero multiple of @block_size. */
	__u64 size;
	/** @block_size: In. Bytes per block: 2^12 to 2^21. */
	__u32 block_size;
	/** @numa_node: In. NUMA node, used with %KVACCEL_REGION_CREATE_NUMA_NODE; else 0. */
	__u32 numa_node;
};

/** enum drm_kvaccel_object_type - kind of object a handle refers to. */
enum drm_kvaccel_object_type {
	/** @KVACCEL_OBJECT_REGION: a region of this device. */
	KVACCEL_OBJECT_REGION	= 1,
	/** @KVACCEL_OBJECT_IMPORT: a dma-buf of another driver. */
	KVACCEL_OBJECT_IMPORT	= 2,
};

/** KVACCEL_OBJECT_EXPORTED - the object has been exported as a dma-buf. */
#define KVACCEL_OBJECT_EXPORTED		_BITUL(0)

/** KVACCEL_REGION_INFO_FLAGS - mask of known &drm_kvaccel_region_info.flags: none. */
#define KVACCEL_REGION_INFO_FLAGS	0u

/**
 * struct drm_kvaccel_region_info - describe a region or an imported dma-buf.
 *
 * Errors: -EINVAL for non-zero @flags; -ENOENT for a handle this client
 * does not hold; -EFAULT for a bad argument pointer. Out fields are not
 * read.
 */
struct drm_kvaccel_region_info {
	/** @handle: In. GEM handle of a region or import. */
	__u32 handle;
	/** @flags: In. Must be 0 (%KVACCEL_REGION_INFO_FLAGS). */
	__u32 flags;
	/** @size: Out. Size in bytes. */
	__u64 size;
	/**
	 * @mmap_offset: Out. Offset to pass to mmap() on the device file to
	 * map the region (shared mappings only); 0 for an import.
	 */
	__u64 mmap_offset;
	/** @block_size: Out. Bytes per block; 0 for an import. */
	__u32 block_size;
	/**
	 * @numa_node: Out. The node every block lies on, or -1 if the blocks
	 * span nodes or the object is an import.
	 */
	__s32 numa_node;
	/** @type: Out. &enum drm_kvaccel_object_type. */
	__u32 type;
	/** @object_flags: Out. %KVACCEL_OBJECT_* bits. */
	__u32 object_flags;
};

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_KVACCEL_H_ */
