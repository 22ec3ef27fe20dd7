// SPDX-License-Identifier: MIT
/*
 * libaccel - regions: pinned host memory in blocks, mapped and shared as
 * dma-bufs; and the mapping code regions and spaces share.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

struct accel_region {
	struct accel_obj obj;	/* first: accel_obj * converts back */
	uint32_t block_size;
	int node;
	uint64_t id;
	bool foreign;
};

void *accel_obj_map(struct accel_obj *obj, int prot)
{
	void *map;

	pthread_mutex_lock(&obj->map_lock);
	map = obj->map;
	if (!map) {
		map = mmap(NULL, obj->map_size, prot, MAP_SHARED, obj->dev->fd,
			   (off_t)obj->mmap_offset);
		if (map == MAP_FAILED) {
			map = NULL;
			accel_log(ACCEL_LOG_ERR, "mmap of %zu bytes: %s", obj->map_size,
				  strerror(errno));
		} else {
			obj->map = map;
		}
	}
	pthread_mutex_unlock(&obj->map_lock);
	return map;
}

int accel_obj_export(struct accel_obj *obj, int *fd)
{
	if (!obj || !fd)
		return -EINVAL;
	return accel_prime_export(obj->dev, obj->handle, fd);
}

int accel_obj_import(struct accel_device *dev, int fd, uint32_t *handle)
{
	if (!dev || fd < 0)
		return -EINVAL;
	return accel_handle_import(dev, fd, handle);
}

void accel_obj_fini(struct accel_obj *obj)
{
	if (obj->map)
		munmap(obj->map, obj->map_size);
	accel_handle_unref(obj->dev, obj->handle);
	pthread_mutex_destroy(&obj->map_lock);
}

/*
 * Wrap a handle of this device's file, described by REGION_INFO: the new
 * object takes over the caller's reference on the handle. On error the
 * reference is dropped (the handle closed unless another object owns it).
 */
static struct accel_region *region_wrap(struct accel_device *dev, uint32_t handle)
{
	struct drm_kvaccel_region_info ri = { .handle = handle };
	struct accel_region *r = NULL;
	int ret;

	ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_REGION_INFO, &ri);
	if (!ret && ri.type == KVACCEL_OBJECT_SPACE)
		ret = -EINVAL;	/* a space's dma-buf: accel_space_import() */
	if (!ret) {
		r = calloc(1, sizeof(*r));
		ret = r ? 0 : -ENOMEM;
	}
	if (ret) {
		accel_handle_unref(dev, handle);
		errno = -ret;
		return NULL;
	}
	r->obj.kind = ACCEL_OBJ_REGION;
	r->obj.dev = dev;
	r->obj.handle = handle;
	r->obj.size = ri.size;
	r->obj.mmap_offset = ri.mmap_offset;
	r->obj.map_size = ri.size;
	pthread_mutex_init(&r->obj.map_lock, NULL);
	r->block_size = ri.block_size;
	r->node = ri.numa_node;
	r->id = ri.region_id;
	r->foreign = ri.type == KVACCEL_OBJECT_IMPORT;
	return r;
}

ACCEL_EXPORT struct accel_region *accel_region_create(struct accel_device *dev, uint64_t size,
						      uint32_t block_size, int node)
{
	struct drm_kvaccel_region_create rc = { .size = size, .block_size = block_size };
	int ret;

	if (!dev || node < ACCEL_NODE_ANY) {
		errno = EINVAL;
		return NULL;
	}
	if (node != ACCEL_NODE_ANY) {
		rc.flags = KVACCEL_REGION_CREATE_NUMA_NODE;
		rc.numa_node = (uint32_t)node;
	}
	ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_REGION_CREATE, &rc);
	if (ret) {
		accel_log(ACCEL_LOG_DEBUG, "region of %llu bytes in %u-byte blocks: %s",
			  (unsigned long long)size, block_size, strerror(-ret));
		errno = -ret;
		return NULL;
	}
	ret = accel_handle_adopt(dev, rc.handle);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return region_wrap(dev, rc.handle);
}

ACCEL_EXPORT void accel_region_destroy(struct accel_region *region)
{
	if (!region)
		return;
	accel_obj_fini(&region->obj);
	free(region);
}

ACCEL_EXPORT uint64_t accel_region_size(const struct accel_region *region)
{
	return region ? region->obj.size : 0;
}

ACCEL_EXPORT uint32_t accel_region_block_size(const struct accel_region *region)
{
	return region ? region->block_size : 0;
}

ACCEL_EXPORT uint64_t accel_region_id(const struct accel_region *region)
{
	return region ? region->id : 0;
}

ACCEL_EXPORT int accel_region_node(const struct accel_region *region)
{
	return region ? region->node : -1;
}

ACCEL_EXPORT int accel_region_is_foreign(const struct accel_region *region)
{
	return region ? region->foreign : -EINVAL;
}

ACCEL_EXPORT void *accel_region_map(struct accel_region *region)
{
	if (!region) {
		errno = EINVAL;
		return NULL;
	}
	if (region->foreign) {
		/* Map the dma-buf itself, not through kvaccel. */
		errno = EOPNOTSUPP;
		return NULL;
	}
	return accel_obj_map(&region->obj, PROT_READ | PROT_WRITE);
}

ACCEL_EXPORT int accel_region_export(struct accel_region *region, int *fd)
{
	return accel_obj_export(accel_region_obj(region), fd);
}

ACCEL_EXPORT struct accel_region *accel_region_import(struct accel_device *dev, int fd)
{
	uint32_t handle;
	int ret = accel_obj_import(dev, fd, &handle);

	if (ret) {
		errno = -ret;
		return NULL;
	}
	/* A dma-buf this file already holds gives the same handle: shared. */
	return region_wrap(dev, handle);
}

ACCEL_EXPORT struct accel_obj *accel_region_obj(struct accel_region *region)
{
	return region ? &region->obj : NULL;
}
