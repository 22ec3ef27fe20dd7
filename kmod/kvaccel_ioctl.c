// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - ioctl handlers. Each validates its whole argument before it has
 * any side effect (design.md, "ABI rules"); DRM's ioctl layer has already
 * copied the argument in, zero-extended to the kernel's struct size.
 */
#include <linux/log2.h>
#include <linux/nodemask.h>
#include <linux/numa.h>
#include <linux/sched.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>

#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

#define KVACCEL_BLOCK_SIZES \
	GENMASK_ULL(KVACCEL_BLOCK_SHIFT_MAX, KVACCEL_BLOCK_SHIFT_MIN)

#define KVACCEL_CAPABILITIES \
	(KVACCEL_CAP_REGION | KVACCEL_CAP_PRIME_EXPORT | \
	 KVACCEL_CAP_PRIME_IMPORT | KVACCEL_CAP_NUMA)

int kvaccel_ioctl_get_param(struct drm_device *drm, void *data,
			    struct drm_file *file)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct drm_kvaccel_get_param *args = data;
	u64 usage, quota;

	if (args->flags & ~KVACCEL_GET_PARAM_FLAGS)
		return -EINVAL;

	switch (args->param) {
	case KVACCEL_PARAM_ABI_VERSION:
		args->value = KVACCEL_ABI_VERSION;
		break;
	case KVACCEL_PARAM_CAPABILITIES:
		args->value = KVACCEL_CAPABILITIES;
		break;
	case KVACCEL_PARAM_BLOCK_SIZES:
		args->value = KVACCEL_BLOCK_SIZES;
		break;
	case KVACCEL_PARAM_DEVICE_LIMIT:
		args->value = kvaccel_device_limit();
		break;
	case KVACCEL_PARAM_DEVICE_USAGE:
		args->value = kvaccel_acct_device_usage(kdev);
		break;
	case KVACCEL_PARAM_CLIENT_USAGE:
		kvaccel_acct_read(kdev, task_tgid(current), &usage, &quota);
		args->value = usage;
		break;
	case KVACCEL_PARAM_CLIENT_QUOTA:
		kvaccel_acct_read(kdev, task_tgid(current), &usage, &quota);
		args->value = quota;
		break;
	case KVACCEL_PARAM_PAGES_HELD:
		args->value = atomic_long_read(&kdev->pages_held);
		break;
	case KVACCEL_PARAM_REGIONS:
		args->value = atomic_read(&kdev->nr_regions);
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static int kvaccel_region_create_check(const struct drm_kvaccel_region_create *args)
{
	if (args->flags & ~KVACCEL_REGION_CREATE_FLAGS)
		return -EINVAL;
	if (!is_power_of_2(args->block_size) ||
	    args->block_size < (1U << KVACCEL_BLOCK_SHIFT_MIN) ||
	    args->block_size > (1U << KVACCEL_BLOCK_SHIFT_MAX) ||
	    args->block_size < PAGE_SIZE)
		return -EINVAL;
	if (!args->size || args->size & (args->block_size - 1))
		return -EINVAL;
	if (args->size / args->block_size > KVACCEL_REGION_MAX_BLOCKS)
		return -EINVAL;
	if (args->flags & KVACCEL_REGION_CREATE_NUMA_NODE) {
		if (args->numa_node >= MAX_NUMNODES ||
		    !node_online(args->numa_node))
			return -EINVAL;
	} else if (args->numa_node) {
		return -EINVAL;
	}
	return 0;
}

int kvaccel_ioctl_region_create(struct drm_device *drm, void *data,
				struct drm_file *file)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct kvaccel_client *client = file->driver_priv;
	struct drm_kvaccel_region_create *args = data;
	struct kvaccel_region *region;
	struct kvaccel_proc *owner;
	u32 handle;
	int ret;

	ret = kvaccel_region_create_check(args);
	if (ret)
		return ret;

	/*
	 * Charge the calling process; the file may have been inherited or
	 * passed from the process that opened it.
	 */
	if (client->proc->tgid == task_tgid(current)) {
		owner = client->proc;
		refcount_inc(&owner->ref);
	} else {
		owner = kvaccel_proc_get(kdev, task_tgid(current));
		if (!owner)
			return -ENOMEM;
	}

	region = kvaccel_region_create(kdev, owner, args->size,
				       ilog2(args->block_size),
				       args->numa_node,
				       args->flags & KVACCEL_REGION_CREATE_NUMA_NODE);
	kvaccel_proc_put(owner);
	if (IS_ERR(region))
		return PTR_ERR(region);

	ret = drm_gem_handle_create(file, &region->base, &handle);
	/* The handle holds the reference now, or the region dies here. */
	drm_gem_object_put(&region->base);
	if (ret)
		return ret;

	args->handle = handle;
	return 0;
}

int kvaccel_ioctl_region_info(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct drm_kvaccel_region_info *args = data;
	struct drm_gem_object *obj;
	int ret = 0;

	if (args->flags & ~KVACCEL_REGION_INFO_FLAGS)
		return -EINVAL;

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;

	args->size = obj->size;
	args->object_flags = READ_ONCE(obj->dma_buf) ? KVACCEL_OBJECT_EXPORTED : 0;
	if (kvaccel_is_region(obj)) {
		struct kvaccel_region *region = to_kvaccel_region(obj);

		args->type = KVACCEL_OBJECT_REGION;
		args->block_size = 1U << region->block_shift;
		args->numa_node = region->nid;
		args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
	} else if (kvaccel_is_import(obj)) {
		args->type = KVACCEL_OBJECT_IMPORT;
		args->block_size = 0;
		args->numa_node = NUMA_NO_NODE;
		args->mmap_offset = 0;
	} else {
		ret = -ENOENT;
	}

	drm_gem_object_put(obj);
	return ret;
}
