/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccel - internal interfaces of the module.
 *
 * Object model (Documentation/design.rst):
 *   kvaccel_device  one DRM device; owns the accounting of all memory.
 *   kvaccel_proc    a process (thread group) that opened the device or owns
 *                   a region; quota and usage are per process, not per file.
 *   kvaccel_client  one open file (drm_file.driver_priv).
 *   kvaccel_region  pinned host memory in blocks (a GEM object).
 *   kvaccel_import  a dma-buf of another driver (a GEM object).
 */
#ifndef _KVACCEL_DRV_H_
#define _KVACCEL_DRV_H_

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <drm/drm_device.h>
#include <drm/drm_gem.h>

#define KVACCEL_DRIVER_NAME	"kvaccel"
#define KVACCEL_DRIVER_DESC	"Pinned KV-cache memory for LLM serving"

struct dentry;
struct sg_table;

/**
 * struct kvaccel_device - the kvaccel DRM device.
 * @drm: the DRM device.
 * @acct_lock: protects @procs, @usage and the accounting fields of every
 *	&struct kvaccel_proc. Never held across an allocation of region pages.
 * @procs: every &struct kvaccel_proc alive, linked by kvaccel_proc.node.
 * @usage: bytes charged by all regions alive.
 * @pages_held: pages the module holds for regions, counted as they are
 *	allocated and freed (kmemleak does not track page allocations).
 * @nr_regions: regions alive.
 * @debugfs: the module's debugfs directory.
 */
struct kvaccel_device {
	struct drm_device drm;

	/* Protects procs, usage and the accounting fields of each proc. */
	struct mutex acct_lock;
	struct list_head procs;
	u64 usage;

	atomic_long_t pages_held;
	atomic_t nr_regions;

	struct dentry *debugfs;
};

static inline struct kvaccel_device *to_kvaccel_device(struct drm_device *drm)
{
	return container_of(drm, struct kvaccel_device, drm);
}

/**
 * struct kvaccel_proc - accounting of one process (thread group).
 * @kdev: the device.
 * @node: entry in kvaccel_device.procs.
 * @ref: held by each client the process opened and each region it owns;
 *	dropped to zero only under kvaccel_device.acct_lock.
 * @tgid: the thread group; a reference is held, so the pointer identifies
 *	the process even after its pid number is reused.
 * @usage: bytes charged to the process; under kvaccel_device.acct_lock.
 * @quota: bytes the process may hold, 0 for the module's default quota;
 *	under kvaccel_device.acct_lock.
 * @nr_regions: regions the process owns; under kvaccel_device.acct_lock.
 */
struct kvaccel_proc {
	struct kvaccel_device *kdev;
	struct list_head node;
	refcount_t ref;
	struct pid *tgid;
	u64 usage;
	u64 quota;
	u32 nr_regions;
};

/**
 * struct kvaccel_client - one open file of the device.
 * @kdev: the device.
 * @proc: the process that opened the file.
 */
struct kvaccel_client {
	struct kvaccel_device *kdev;
	struct kvaccel_proc *proc;
};

/**
 * struct kvaccel_region - pinned host memory of @nr_blocks blocks.
 * @base: the GEM object; its size is @nr_blocks << @block_shift.
 * @owner: the process charged for the region, until the last page is freed.
 * @charged: bytes charged to @owner and the device.
 * @block_shift: log2 of the block size.
 * @nid: the node every block lies on, or NUMA_NO_NODE.
 * @nr_blocks: number of blocks.
 * @blocks: head page of each block (a compound page of the block's order);
 *	written only while the region is created, read-only afterwards.
 */
struct kvaccel_region {
	struct drm_gem_object base;
	struct kvaccel_proc *owner;
	u64 charged;
	unsigned int block_shift;
	int nid;
	unsigned long nr_blocks;
	struct page **blocks;
};

/**
 * struct kvaccel_import - a dma-buf of another driver.
 * @base: the GEM object; base.import_attach is the attachment.
 * @sgt: the mapped attachment.
 */
struct kvaccel_import {
	struct drm_gem_object base;
	struct sg_table *sgt;
};

/* kvaccel_drv.c: module parameters */
u64 kvaccel_device_limit(void);
u64 kvaccel_default_quota(void);

/* kvaccel_acct.c */
void kvaccel_acct_init(struct kvaccel_device *kdev);
struct kvaccel_proc *kvaccel_proc_get(struct kvaccel_device *kdev,
				      struct pid *tgid);
void kvaccel_proc_put(struct kvaccel_proc *proc);
int kvaccel_acct_charge(struct kvaccel_proc *proc, u64 bytes);
void kvaccel_acct_uncharge(struct kvaccel_proc *proc, u64 bytes);
void kvaccel_acct_read(struct kvaccel_device *kdev, struct pid *tgid,
		       u64 *usage, u64 *quota);
u64 kvaccel_acct_device_usage(struct kvaccel_device *kdev);

/* kvaccel_region.c */
struct kvaccel_region *kvaccel_region_create(struct kvaccel_device *kdev,
					     struct kvaccel_proc *owner,
					     u64 size, unsigned int block_shift,
					     int nid, bool strict_node);
bool kvaccel_is_region(const struct drm_gem_object *obj);

static inline struct kvaccel_region *to_kvaccel_region(struct drm_gem_object *obj)
{
	return container_of(obj, struct kvaccel_region, base);
}

/* kvaccel_import.c */
struct drm_gem_object *kvaccel_import_sg_table(struct drm_device *drm,
					       struct dma_buf_attachment *attach,
					       struct sg_table *sgt);
bool kvaccel_is_import(const struct drm_gem_object *obj);

/* kvaccel_ioctl.c */
int kvaccel_ioctl_get_param(struct drm_device *drm, void *data,
			    struct drm_file *file);
int kvaccel_ioctl_region_create(struct drm_device *drm, void *data,
				struct drm_file *file);
int kvaccel_ioctl_region_info(struct drm_device *drm, void *data,
			      struct drm_file *file);

/* kvaccel_debugfs.c */
void kvaccel_debugfs_init(struct kvaccel_device *kdev);
void kvaccel_debugfs_fini(struct kvaccel_device *kdev);

#endif /* _KVACCEL_DRV_H_ */
