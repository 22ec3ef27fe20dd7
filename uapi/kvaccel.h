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
 *
 * Every ioctl also fails with -ENODEV once the device has been unbound
 * (hot unplug, Documentation/overview.rst), and with -EINTR or -ERESTARTSYS
 * where it waits (a lock, an import's fences) and a signal arrives.
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
#define KVACCEL_ABI_MINOR	2
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
#define DRM_KVACCEL_SPACE_CREATE	0x03
#define DRM_KVACCEL_SPACE_BIND		0x04
#define DRM_KVACCEL_SPACE_INFO		0x05
#define DRM_KVACCEL_COPY_SUBMIT		0x06
#define DRM_KVACCEL_COPY_STATUS		0x07

#define DRM_IOCTL_KVACCEL_GET_PARAM \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_GET_PARAM, struct drm_kvaccel_get_param)
#define DRM_IOCTL_KVACCEL_REGION_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_REGION_CREATE, struct drm_kvaccel_region_create)
#define DRM_IOCTL_KVACCEL_REGION_INFO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_REGION_INFO, struct drm_kvaccel_region_info)
#define DRM_IOCTL_KVACCEL_SPACE_CREATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_SPACE_CREATE, struct drm_kvaccel_space_create)
#define DRM_IOCTL_KVACCEL_SPACE_BIND \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_SPACE_BIND, struct drm_kvaccel_space_bind)
#define DRM_IOCTL_KVACCEL_SPACE_INFO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_SPACE_INFO, struct drm_kvaccel_space_info)
#define DRM_IOCTL_KVACCEL_COPY_SUBMIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_COPY_SUBMIT, struct drm_kvaccel_copy_submit)
#define DRM_IOCTL_KVACCEL_COPY_STATUS \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_KVACCEL_COPY_STATUS, struct drm_kvaccel_copy_status)

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
/** KVACCEL_CAP_SPACE - spaces: create, bind (bind, unbind, move, swap), info. */
#define KVACCEL_CAP_SPACE		_BITULL(4)
/**
 * KVACCEL_CAP_SPACE_PMD - a 2 MiB slot of a 2 MiB-aligned space mapping is
 * mapped with one PMD entry; without it each block is mapped with page
 * table entries, all of them on its first fault.
 */
#define KVACCEL_CAP_SPACE_PMD		_BITULL(5)
/** KVACCEL_CAP_COPY - the copy engine: COPY_SUBMIT, COPY_STATUS, syncobjs. */
#define KVACCEL_CAP_COPY		_BITULL(6)
/**
 * KVACCEL_CAP_NETLINK - the generic netlink family "kvaccel"
 * (kvaccel_netlink.h): dumps, admin operations, events.
 */
#define KVACCEL_CAP_NETLINK		_BITULL(7)
/**
 * KVACCEL_CAP_COPY_IMPLICIT_SYNC - copy jobs take part in implicit
 * synchronisation (ABI 1.2): a job waits for the reservation fences of
 * what it touches, fixed at submission, and its fence goes into them;
 * %KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT is known; a dependency that does
 * not signal within the module's copy_timeout_ms fails the job with
 * -ETIMEDOUT.
 */
#define KVACCEL_CAP_COPY_IMPLICIT_SYNC	_BITULL(8)
/**
 * KVACCEL_CAP_COPY_TIMELINE - timeline syncobjs (ABI 1.2): the device has
 * DRIVER_SYNCOBJ_TIMELINE and COPY_SUBMIT takes in and out points
 * (&drm_kvaccel_copy_submit.in_point, .out_point).
 */
#define KVACCEL_CAP_COPY_TIMELINE	_BITULL(9)

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
 * -EDQUOT: the calling process's quota would be exceeded, or (a process
 * under the default quota) its user's (ABI 1.2).
 * -ENOMEM: the device limit would be exceeded, the memory cgroup limit was
 * hit, or the allocator has no free block of that order (on that node); a
 * smaller block size may succeed.
 * -ENOSPC: the device's mmap offset range (DRM's, 1 TiB for all objects)
 * has no room for the region (see %DRM_IOCTL_KVACCEL_SPACE_CREATE for how
 * spaces are bounded in it).
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
	/** @KVACCEL_OBJECT_SPACE: a space of this device. */
	KVACCEL_OBJECT_SPACE	= 3,
};

/** KVACCEL_OBJECT_EXPORTED - the object has been exported as a dma-buf. */
#define KVACCEL_OBJECT_EXPORTED		_BITUL(0)
/**
 * KVACCEL_OBJECT_HELD - an import the CPU cannot map (GPU memory): kvaccel
 * holds it (keeps the buffer alive, passes it on) and copies touching it
 * fail with -EOPNOTSUPP. ABI 1.2; before, such an import failed.
 */
#define KVACCEL_OBJECT_HELD		_BITUL(1)
/**
 * KVACCEL_OBJECT_READ_ONLY - an import of a dma-buf given read-only (a
 * kvaccel region's or another driver's): copies read it, a copy into it is
 * -EACCES, it does not bind. ABI 1.2.
 */
#define KVACCEL_OBJECT_READ_ONLY	_BITUL(2)
/**
 * KVACCEL_OBJECT_MAP_ONLY - a space this client may map but not rebind
 * (SPACE_BIND gives -EPERM): it was created by another client without
 * %KVACCEL_SPACE_CREATE_SHARE_REBIND. ABI 1.2.
 */
#define KVACCEL_OBJECT_MAP_ONLY		_BITUL(3)

/** KVACCEL_REGION_INFO_FLAGS - mask of known &drm_kvaccel_region_info.flags: none. */
#define KVACCEL_REGION_INFO_FLAGS	0u

/**
 * struct drm_kvaccel_region_info - describe a region, space or import.
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
	/**
	 * @region_id: Out. Identifier of a region, unique on the device for
	 * its lifetime and the same in every client (see
	 * &drm_kvaccel_slot_binding); of an import (ABI 1.2: the netlink
	 * %KVACCEL_CMD_IMPORT_GET dump's %KVACCEL_A_IMPORT_ID; ids of regions
	 * and imports never collide); 0 for a space.
	 */
	__u64 region_id;
};

/** KVACCEL_SPACE_MAX_SLOTS - most slots a space may have. */
#define KVACCEL_SPACE_MAX_SLOTS		1048576u
/** KVACCEL_SPACE_MAX_SIZE - largest window (slots x block size) of a space. */
#define KVACCEL_SPACE_MAX_SIZE		(64ull << 30)
/** KVACCEL_BIND_MAX_OPS - most operations in one %DRM_IOCTL_KVACCEL_SPACE_BIND. */
#define KVACCEL_BIND_MAX_OPS		65536u

/**
 * KVACCEL_SPACE_CREATE_NO_OFFSET - the space reserves no mmap offset on the
 * device file: it maps only through its dma-buf (PRIME export, then mmap
 * of the dma-buf at offset 0), and its window is not charged against
 * the user's space_window_gb. &drm_kvaccel_space_info.mmap_offset is 0.
 * ABI 1.2.
 */
#define KVACCEL_SPACE_CREATE_NO_OFFSET	_BITUL(0)
/**
 * KVACCEL_SPACE_CREATE_SHARE_REBIND - every client that holds the space
 * (through its dma-buf) may rebind it; without it only the creating client
 * (its file) may, the others map it only (SPACE_BIND: -EPERM). ABI 1.2;
 * before, every holder could rebind.
 */
#define KVACCEL_SPACE_CREATE_SHARE_REBIND	_BITUL(1)
/** KVACCEL_SPACE_CREATE_FLAGS - mask of known &drm_kvaccel_space_create.flags. */
#define KVACCEL_SPACE_CREATE_FLAGS	(KVACCEL_SPACE_CREATE_NO_OFFSET | \
					 KVACCEL_SPACE_CREATE_SHARE_REBIND)

/**
 * struct drm_kvaccel_space_create - create a space: a virtual window of
 * @nr_slots slots of @block_size bytes, each empty or bound to one block
 * of a region (%DRM_IOCTL_KVACCEL_SPACE_BIND).
 *
 * The space maps (mmap of the device file at &drm_kvaccel_space_info.mmap_offset,
 * shared mappings only) as the window followed by one read-only page,
 * &struct drm_kvaccel_space_control. Touching an empty slot raises SIGBUS.
 * Only the slot table is allocated (charged to the caller's memory
 * cgroup); a space holds no memory of its own and is not counted against
 * quotas. It shares like a region: PRIME export and import.
 *
 * Errors: -EINVAL for unknown @flags, @block_size not a power of two from
 * 4 KiB to 2 MiB, @nr_slots zero or over %KVACCEL_SPACE_MAX_SLOTS, a
 * window over %KVACCEL_SPACE_MAX_SIZE; -EDQUOT when the window (plus its
 * control page) would take the mmap offsets reserved by the caller's user
 * (effective uid, all its processes) past the module's space_window_gb
 * (ABI 1.2); -ENOSPC when the device's mmap offset range (DRM's, 1 TiB for
 * all objects of the device) has no room for the window; -ENOMEM; -EFAULT.
 * With %KVACCEL_SPACE_CREATE_NO_OFFSET neither -EDQUOT nor -ENOSPC.
 */
struct drm_kvaccel_space_create {
	/** @handle: Out. GEM handle of the new space. */
	__u32 handle;
	/** @flags: In. %KVACCEL_SPACE_CREATE_FLAGS bits. */
	__u32 flags;
	/** @nr_slots: In. Number of slots. */
	__u32 nr_slots;
	/** @block_size: In. Bytes per slot; only blocks of this size bind. */
	__u32 block_size;
};

/**
 * struct drm_kvaccel_space_control - the last page of a space's mapping,
 * read-only, for readers that need a consistent view without a syscall.
 *
 * @generation is even while the space is stable and odd while a batch of
 * bindings is being applied; each applied batch adds 2. A reader that
 * needs several slots consistent reads @generation (retrying while it is
 * odd), reads the slots, then reads @generation again and retries if it
 * changed: the kernel cannot stop a reader in the middle of a memcpy from
 * seeing a block that was rebound under it.
 */
struct drm_kvaccel_space_control {
	/** @generation: Out. Seqlock-style generation of the bindings. */
	__u64 generation;
	/** @bound_slots: Out. Number of bound slots. */
	__u64 bound_slots;
};

/**
 * enum drm_kvaccel_bind_op_type - one operation of a bind batch.
 * @KVACCEL_BIND_OP_BIND: bind @slot to block @block of region @handle,
 *	replacing what @slot was bound to.
 * @KVACCEL_BIND_OP_UNBIND: empty @slot; it must be bound.
 * @KVACCEL_BIND_OP_MOVE: bind @other to what @slot is bound to (replacing
 *	what @other was bound to) and empty @slot; @slot must be bound.
 * @KVACCEL_BIND_OP_SWAP: exchange the bindings of @slot and @other
 *	(either may be empty).
 */
enum drm_kvaccel_bind_op_type {
	KVACCEL_BIND_OP_BIND	= 1,
	KVACCEL_BIND_OP_UNBIND	= 2,
	KVACCEL_BIND_OP_MOVE	= 3,
	KVACCEL_BIND_OP_SWAP	= 4,
};

/**
 * struct drm_kvaccel_bind_op - an element of &drm_kvaccel_space_bind.ops.
 *
 * Fields an operation does not use must be 0.
 */
struct drm_kvaccel_bind_op {
	/** @op: In. &enum drm_kvaccel_bind_op_type. */
	__u32 op;
	/** @flags: In. Must be 0 (%KVACCEL_BIND_OP_FLAGS). */
	__u32 flags;
	/** @slot: In. The slot operated on (the source of a move). */
	__u32 slot;
	/** @other: In. The destination of a move, the second slot of a swap. */
	__u32 other;
	/** @handle: In. BIND: handle of a region this client holds. */
	__u32 handle;
	/** @pad: In. Must be 0. */
	__u32 pad;
	/** @block: In. BIND: index of the block in the region. */
	__u64 block;
};

/** KVACCEL_BIND_OP_FLAGS - mask of known &drm_kvaccel_bind_op.flags: none. */
#define KVACCEL_BIND_OP_FLAGS		0u

/** KVACCEL_SPACE_BIND_FLAGS - mask of known &drm_kvaccel_space_bind.flags: none. */
#define KVACCEL_SPACE_BIND_FLAGS	0u

/**
 * struct drm_kvaccel_space_bind - apply a batch of binding operations.
 *
 * The batch is validated completely before anything changes; then it is
 * applied as one: page faults and %DRM_IOCTL_KVACCEL_SPACE_INFO see all of
 * it or none of it, and when the call returns no CPU can reach a replaced
 * binding through any mapping of the space (of the device file or of its
 * dma-buf, in any process). No data is copied. A slot may be the target of
 * one operation per batch (a move or swap targets both its slots). A
 * region stays alive while a slot is bound to it.
 *
 * Errors, each leaving the space unchanged: -EINVAL for unknown @flags,
 * non-zero @pad, @count 0 or over %KVACCEL_BIND_MAX_OPS, an unknown op,
 * non-zero op flags, pad or unused fields, a slot out of range, the same
 * slot targeted twice, a move or swap of a slot with itself, a handle that
 * is not a region, a block size other than the space's, a block index out
 * of range; -ENOENT for a space or region handle this client does not
 * hold, or unbinding or moving an empty slot; -EPERM for a space this
 * client may map only (another client created it without
 * %KVACCEL_SPACE_CREATE_SHARE_REBIND; ABI 1.2); -EFAULT for a bad @ops
 * pointer; -ENOMEM.
 */
struct drm_kvaccel_space_bind {
	/** @handle: In. GEM handle of the space. */
	__u32 handle;
	/** @flags: In. Must be 0 (%KVACCEL_SPACE_BIND_FLAGS). */
	__u32 flags;
	/** @count: In. Number of operations at @ops. */
	__u32 count;
	/** @pad: In. Must be 0. */
	__u32 pad;
	/** @ops: In. User pointer to @count &struct drm_kvaccel_bind_op. */
	__u64 ops;
	/** @generation: Out. The space's generation after the batch. */
	__u64 generation;
};

/** KVACCEL_SLOT_BOUND - &drm_kvaccel_slot_binding.flags: the slot is bound. */
#define KVACCEL_SLOT_BOUND		_BITUL(0)

/** struct drm_kvaccel_slot_binding - what one slot is bound to. */
struct drm_kvaccel_slot_binding {
	/** @region_id: Out. &drm_kvaccel_region_info.region_id, 0 if empty. */
	__u64 region_id;
	/** @block: Out. Block index in that region. */
	__u64 block;
	/** @flags: Out. %KVACCEL_SLOT_BOUND if bound. */
	__u32 flags;
	/** @pad: Out. 0. */
	__u32 pad;
};

/** KVACCEL_SPACE_INFO_FLAGS - mask of known &drm_kvaccel_space_info.flags: none. */
#define KVACCEL_SPACE_INFO_FLAGS	0u

/**
 * struct drm_kvaccel_space_info - describe a space and, optionally, the
 * bindings of a range of its slots, all read at one generation.
 *
 * Errors: -EINVAL for unknown @flags, non-zero @pad, @count over
 * %KVACCEL_BIND_MAX_OPS or a range past the last slot, a handle that is not
 * a space; -ENOENT for a handle this client does not hold; -EFAULT for a
 * bad @bindings pointer; -ENOMEM.
 */
struct drm_kvaccel_space_info {
	/** @handle: In. GEM handle of the space. */
	__u32 handle;
	/** @flags: In. Must be 0 (%KVACCEL_SPACE_INFO_FLAGS). */
	__u32 flags;
	/** @nr_slots: Out. Number of slots. */
	__u32 nr_slots;
	/** @block_size: Out. Bytes per slot. */
	__u32 block_size;
	/** @generation: Out. &drm_kvaccel_space_control.generation. */
	__u64 generation;
	/** @mmap_offset: Out. Offset to mmap() the space with. */
	__u64 mmap_offset;
	/**
	 * @map_size: Out. Bytes to map for the window and the control page:
	 * nr_slots * block_size + the page size. The control page is the last.
	 */
	__u64 map_size;
	/** @bound_slots: Out. Number of bound slots. */
	__u32 bound_slots;
	/** @first_slot: In. First slot to describe in @bindings. */
	__u32 first_slot;
	/** @count: In. Slots to describe; 0 for none. */
	__u32 count;
	/** @pad: In. Must be 0. */
	__u32 pad;
	/** @bindings: In. User pointer to @count &struct drm_kvaccel_slot_binding. */
	__u64 bindings;
};

/** KVACCEL_COPY_MAX_SEGMENTS - most segments in one %DRM_IOCTL_KVACCEL_COPY_SUBMIT. */
#define KVACCEL_COPY_MAX_SEGMENTS	4096u
/** KVACCEL_COPY_MAX_BYTES - most bytes one job may copy. */
#define KVACCEL_COPY_MAX_BYTES		(4ull << 30)

/**
 * struct drm_kvaccel_copy_segment - one element of &drm_kvaccel_copy_submit.segments.
 *
 * Copies @length bytes from @src_offset of object @src_handle to
 * @dst_offset of object @dst_handle. Objects are regions, spaces (their
 * window; every slot the range touches must be bound, and is resolved to
 * its block when the job is submitted) and imports the CPU can map.
 */
struct drm_kvaccel_copy_segment {
	/** @src_handle: In. GEM handle of the source. */
	__u32 src_handle;
	/** @dst_handle: In. GEM handle of the destination. */
	__u32 dst_handle;
	/** @src_offset: In. Byte offset in the source. */
	__u64 src_offset;
	/** @dst_offset: In. Byte offset in the destination. */
	__u64 dst_offset;
	/** @length: In. Bytes to copy; not 0. */
	__u64 length;
	/** @flags: In. Must be 0 (%KVACCEL_COPY_SEGMENT_FLAGS). */
	__u32 flags;
	/** @pad: In. Must be 0. */
	__u32 pad;
};

/** KVACCEL_COPY_SEGMENT_FLAGS - mask of known &drm_kvaccel_copy_segment.flags: none. */
#define KVACCEL_COPY_SEGMENT_FLAGS	0u

/**
 * KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT - the job does not wait for the
 * reservation fences of the regions and spaces it touches (the caller
 * orders its jobs itself, through syncobjs); its fence still goes into
 * them, so other drivers still wait for it. CPU access to an import still
 * waits for the import's fences (the exporter's begin_cpu_access). ABI 1.2.
 */
#define KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT	_BITUL(0)
/** KVACCEL_COPY_SUBMIT_FLAGS - mask of known &drm_kvaccel_copy_submit.flags. */
#define KVACCEL_COPY_SUBMIT_FLAGS	KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT

/**
 * struct drm_kvaccel_copy_submit - queue a copy job on the module's workers.
 *
 * Everything the job waits for is fixed before the call returns
 * (Documentation/copy-engine.rst): the fence of @in_syncobj (if any) and
 * the reservation fences of the objects it touches, for an object it
 * writes every fence, for one it only reads the writers' (unless
 * %KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT). The job's fence goes into the
 * reservation object of each (write usage where it writes, read usage
 * where it reads), so other drivers honouring implicit sync wait for it.
 * CPU access to an import begins at submission
 * (dma_buf_begin_cpu_access(), which waits for the import's fences): the
 * call sleeps, interruptibly, until they signal, at most the module's
 * copy_timeout_ms. Once its dependencies have signalled the job's segments
 * are copied (adjacent segments merged, large ones split across workers)
 * and the job's fence signals, replacing the fence of @out_syncobj (if
 * any). A dependency that has not signalled copy_timeout_ms after the
 * submission fails the job with -ETIMEDOUT; a dependency that failed
 * passes its error on. A DRM syncobj wait does not report errors: a failed
 * job is visible through the status of a sync_file exported from
 * @out_syncobj (%DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD with
 * %DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, then SYNC_IOC_FILE_INFO)
 * and through %DRM_IOCTL_KVACCEL_COPY_STATUS; the error is set before the
 * fence signals. Every job of a file that is closed before it starts is
 * cancelled at once (-ECANCELED); started jobs finish.
 *
 * Errors (nothing is queued): -EINVAL for unknown @flags, non-zero @pad, @count 0 or over
 * %KVACCEL_COPY_MAX_SEGMENTS, non-zero segment flags or pad, a zero length,
 * a range past the end of an object, source and destination overlapping
 * in the same object, more than %KVACCEL_COPY_MAX_BYTES in all, an
 * @in_syncobj without a fence;
 * -ENOENT for an object or syncobj handle this client does not hold, or
 * an empty slot in a space's range; -EACCES for a read-only import as a
 * destination (ABI 1.2); -EOPNOTSUPP for an import the CPU
 * cannot map (GPU memory: copy it on the GPU); -EBUSY when the process has
 * %KVACCEL_COPY_MAX_INFLIGHT jobs in flight or the job would take its
 * bytes in flight past the module's copy_inflight_mb (not -EAGAIN, which
 * libdrm's drmIoctl() would retry in a busy loop); -ETIMEDOUT when an
 * import's fences did not signal within copy_timeout_ms; -EINTR or
 * -ERESTARTSYS when a signal came while waiting for an import's fences or
 * a reservation lock; -EFAULT; -ENOMEM.
 */
struct drm_kvaccel_copy_submit {
	/** @job_id: Out. The job's id in this file, for %DRM_IOCTL_KVACCEL_COPY_STATUS. */
	__u64 job_id;
	/** @flags: In. %KVACCEL_COPY_SUBMIT_FLAGS bits. */
	__u32 flags;
	/** @count: In. Number of segments. */
	__u32 count;
	/** @segments: In. User pointer to @count &struct drm_kvaccel_copy_segment. */
	__u64 segments;
	/** @in_syncobj: In. Syncobj whose fence the job waits for; 0 for none. */
	__u32 in_syncobj;
	/** @out_syncobj: In. Syncobj that receives the job's fence; 0 for none. */
	__u32 out_syncobj;
	/**
	 * @status: Out (ABI 1.1). The job's state when the call returned: 1
	 * done, a negative errno failed, 0 still running. A small job with
	 * nothing to wait for is copied by the calling task before the call
	 * returns, so it reports 1 and needs no wait.
	 */
	__s32 status;
	/** @pad: In. Must be 0. */
	__u32 pad;
	/**
	 * @in_point: In (ABI 1.2). With a timeline @in_syncobj, the point
	 * whose fence the job waits for; 0 for a binary syncobj (its fence).
	 * A point without a fence yet is -EINVAL, never a wait.
	 */
	__u64 in_point;
	/**
	 * @out_point: In (ABI 1.2). With a timeline @out_syncobj, the point
	 * the job's fence is added at (after the syncobj's last point); 0
	 * replaces the syncobj's fence (binary).
	 */
	__u64 out_point;
};

/** KVACCEL_COPY_MAX_INFLIGHT - most unfinished jobs per process. */
#define KVACCEL_COPY_MAX_INFLIGHT	1024u

/** KVACCEL_COPY_STATUS_FLAGS - mask of known &drm_kvaccel_copy_status.flags: none. */
#define KVACCEL_COPY_STATUS_FLAGS	0u

/**
 * struct drm_kvaccel_copy_status - the state of a job of this file.
 *
 * The file remembers its last %KVACCEL_COPY_HISTORY jobs.
 *
 * Errors: -EINVAL for unknown @flags; -ENOENT for a job id this file does
 * not remember; -EFAULT.
 */
struct drm_kvaccel_copy_status {
	/** @job_id: In. &drm_kvaccel_copy_submit.job_id. */
	__u64 job_id;
	/** @flags: In. Must be 0 (%KVACCEL_COPY_STATUS_FLAGS). */
	__u32 flags;
	/** @status: Out. 0 pending, 1 done, or the job's -errno. */
	__s32 status;
};

/** KVACCEL_COPY_HISTORY - jobs per file that %DRM_IOCTL_KVACCEL_COPY_STATUS knows. */
#define KVACCEL_COPY_HISTORY		256u

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_KVACCEL_H_ */
