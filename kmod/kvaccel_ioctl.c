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
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>

#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

#define KVACCEL_BLOCK_SIZES \
	GENMASK_ULL(KVACCEL_BLOCK_SHIFT_MAX, KVACCEL_BLOCK_SHIFT_MIN)

#define KVACCEL_CAPABILITIES \
	(KVACCEL_CAP_REGION | KVACCEL_CAP_PRIME_EXPORT | \
	 KVACCEL_CAP_PRIME_IMPORT | KVACCEL_CAP_NUMA | KVACCEL_CAP_SPACE | \
	 KVACCEL_CAP_COPY | KVACCEL_CAP_NETLINK | KVACCEL_CAP_COPY_IMPLICIT_SYNC | \
	 KVACCEL_CAP_COPY_TIMELINE)

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
		if (kvaccel_space_pmd_capable())
			args->value |= KVACCEL_CAP_SPACE_PMD;
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

static bool kvaccel_block_size_valid(u32 block_size)
{
	return is_power_of_2(block_size) &&
	       block_size >= (1U << KVACCEL_BLOCK_SHIFT_MIN) &&
	       block_size <= (1U << KVACCEL_BLOCK_SHIFT_MAX) &&
	       block_size >= PAGE_SIZE;
}

static int kvaccel_region_create_check(const struct drm_kvaccel_region_create *args)
{
	if (args->flags & ~KVACCEL_REGION_CREATE_FLAGS)
		return -EINVAL;
	if (!kvaccel_block_size_valid(args->block_size))
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

	owner = kvaccel_client_caller(client);
	if (!owner)
		return -ENOMEM;

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
	args->region_id = 0;
	if (kvaccel_is_region(obj)) {
		struct kvaccel_region *region = to_kvaccel_region(obj);

		args->type = KVACCEL_OBJECT_REGION;
		args->block_size = 1U << region->block_shift;
		args->numa_node = region->nid;
		args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
		args->region_id = region->id;
	} else if (kvaccel_is_space(obj)) {
		if (!kvaccel_space_may_rebind(to_kvaccel_space(obj), file->driver_priv))
			args->object_flags |= KVACCEL_OBJECT_MAP_ONLY;
		args->type = KVACCEL_OBJECT_SPACE;
		args->block_size = 1U << to_kvaccel_space(obj)->block_shift;
		args->numa_node = NUMA_NO_NODE;
		args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
	} else if (kvaccel_is_import(obj)) {
		struct kvaccel_import *import = to_kvaccel_import(obj);

		args->type = KVACCEL_OBJECT_IMPORT;
		args->block_size = 0;
		args->numa_node = NUMA_NO_NODE;
		args->mmap_offset = 0;
		args->region_id = import->id;
		if (!import->cpu_access)
			args->object_flags |= KVACCEL_OBJECT_HELD;
		if (import->read_only)
			args->object_flags |= KVACCEL_OBJECT_READ_ONLY;
	} else {
		ret = -ENOENT;
	}

	drm_gem_object_put(obj);
	return ret;
}

int kvaccel_ioctl_space_create(struct drm_device *drm, void *data,
			       struct drm_file *file)
{
	struct drm_kvaccel_space_create *args = data;
	struct kvaccel_client *client = file->driver_priv;
	struct kvaccel_space *space;
	u32 handle;
	int ret;

	if (args->flags & ~KVACCEL_SPACE_CREATE_FLAGS)
		return -EINVAL;
	if (!kvaccel_block_size_valid(args->block_size))
		return -EINVAL;
	if (!args->nr_slots || args->nr_slots > KVACCEL_SPACE_MAX_SLOTS ||
	    (u64)args->nr_slots * args->block_size > KVACCEL_SPACE_MAX_SIZE)
		return -EINVAL;

	space = kvaccel_space_create(to_kvaccel_device(drm), args->nr_slots,
				     ilog2(args->block_size),
				     !(args->flags & KVACCEL_SPACE_CREATE_NO_OFFSET),
				     client->id,
				     args->flags & KVACCEL_SPACE_CREATE_SHARE_REBIND);
	if (IS_ERR(space))
		return PTR_ERR(space);

	ret = drm_gem_handle_create(file, &space->base, &handle);
	/* The handle holds the reference now, or the space dies here. */
	drm_gem_object_put(&space->base);
	if (ret)
		return ret;

	args->handle = handle;
	return 0;
}

/* Describe slots [first, first + count) into @out; under the space's lock. */
static void kvaccel_space_describe_locked(struct kvaccel_space *space, u32 first,
					  u32 count,
					  struct drm_kvaccel_slot_binding *out)
{
	u32 i;

	lockdep_assert_held(&space->lock);

	for (i = 0; i < count; i++) {
		const struct kvaccel_slot *slot = &space->slots[first + i];

		out[i] = (struct drm_kvaccel_slot_binding) { };
		if (!slot->region)
			continue;
		out[i].region_id = slot->region->id;
		out[i].block = slot->block;
		out[i].flags = KVACCEL_SLOT_BOUND;
	}
}

int kvaccel_ioctl_space_info(struct drm_device *drm, void *data,
			     struct drm_file *file)
{
	struct drm_kvaccel_space_info *args = data;
	struct drm_kvaccel_slot_binding *bindings = NULL;
	struct kvaccel_space *space;
	struct drm_gem_object *obj;
	int ret = 0;

	if (args->flags & ~KVACCEL_SPACE_INFO_FLAGS || args->pad)
		return -EINVAL;
	if (args->count > KVACCEL_BIND_MAX_OPS)
		return -EINVAL;

	space = kvaccel_space_lookup(file, args->handle);
	if (IS_ERR(space))
		return PTR_ERR(space);
	obj = &space->base;
	if (args->count && ((u64)args->first_slot + args->count > space->nr_slots)) {
		ret = -EINVAL;
		goto out_put;
	}
	if (args->count) {
		bindings = kvmalloc_array(args->count, sizeof(*bindings), GFP_KERNEL);
		if (!bindings) {
			ret = -ENOMEM;
			goto out_put;
		}
	}

	down_read(&space->lock);
	args->nr_slots = space->nr_slots;
	args->block_size = 1U << space->block_shift;
	args->generation = kvaccel_space_generation(space);
	args->bound_slots = space->bound;
	if (bindings)
		kvaccel_space_describe_locked(space, args->first_slot, args->count,
					      bindings);
	up_read(&space->lock);

	args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
	args->map_size = obj->size;
	if (bindings &&
	    copy_to_user(u64_to_user_ptr(args->bindings), bindings,
			 array_size(args->count, sizeof(*bindings))))
		ret = -EFAULT;

	kvfree(bindings);
out_put:
	drm_gem_object_put(obj);
	return ret;
}
