// SPDX-License-Identifier: MIT
/*
 * libaccel - spaces: windows of slots bound to region blocks, remapped in
 * atomic batches.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

/* The kernel's operation for a library bind kind, 0 for none. */
static uint32_t bind_op(enum accel_bind_kind kind)
{
	switch (kind) {
	case ACCEL_BIND: return KVACCEL_BIND_OP_BIND;
	case ACCEL_UNBIND: return KVACCEL_BIND_OP_UNBIND;
	case ACCEL_MOVE: return KVACCEL_BIND_OP_MOVE;
	case ACCEL_SWAP: return KVACCEL_BIND_OP_SWAP;
	}
	return 0;
}

struct accel_space {
	struct accel_obj obj;	/* first: accel_obj * converts back */
	uint32_t nr_slots;
	uint32_t block_size;
	size_t window;
};

/* Wrap a handle (the object takes over the caller's reference; dropped on error). */
static struct accel_space *space_wrap(struct accel_device *dev, uint32_t handle)
{
	struct drm_kvaccel_space_info si = { .handle = handle };
	struct accel_space *s = NULL;
	int ret;

	ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_SPACE_INFO, &si);
	if (!ret) {
		s = calloc(1, sizeof(*s));
		ret = s ? 0 : -ENOMEM;
	}
	if (ret) {
		accel_handle_unref(dev, handle);
		errno = ret == -ENOENT ? EINVAL : -ret;	/* a region's dma-buf */
		return NULL;
	}
	s->obj.kind = ACCEL_OBJ_SPACE;
	s->obj.dev = dev;
	s->obj.handle = handle;
	s->nr_slots = si.nr_slots;
	s->block_size = si.block_size;
	s->window = (size_t)si.nr_slots * si.block_size;
	s->obj.size = s->window;
	s->obj.mmap_offset = si.mmap_offset;
	s->obj.map_size = si.map_size;
	pthread_mutex_init(&s->obj.map_lock, NULL);
	return s;
}

ACCEL_EXPORT struct accel_space *accel_space_create(struct accel_device *dev, uint32_t nr_slots,
						    uint32_t block_size)
{
	struct drm_kvaccel_space_create sc = { .nr_slots = nr_slots, .block_size = block_size };
	int ret;

	if (!dev) {
		errno = EINVAL;
		return NULL;
	}
	ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_SPACE_CREATE, &sc);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	ret = accel_handle_adopt(dev, sc.handle);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return space_wrap(dev, sc.handle);
}

ACCEL_EXPORT void accel_space_destroy(struct accel_space *space)
{
	if (!space)
		return;
	accel_obj_fini(&space->obj);
	free(space);
}

ACCEL_EXPORT uint32_t accel_space_slots(const struct accel_space *space)
{
	return space ? space->nr_slots : 0;
}

ACCEL_EXPORT uint32_t accel_space_block_size(const struct accel_space *space)
{
	return space ? space->block_size : 0;
}

ACCEL_EXPORT int accel_space_bind(struct accel_space *space, const struct accel_bind_op *ops,
				  uint32_t count, uint64_t *generation)
{
	struct drm_kvaccel_bind_op small[64], *k = small;
	struct drm_kvaccel_space_bind sb = { 0 };
	uint32_t i;
	int ret;

	if (!space || !ops || !count || count > KVACCEL_BIND_MAX_OPS)
		return -EINVAL;
	if (count > 64) {
		k = calloc(count, sizeof(*k));
		if (!k)
			return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		const struct accel_bind_op *o = &ops[i];

		memset(&k[i], 0, sizeof(k[i]));
		k[i].op = bind_op(o->kind);
		if (!k[i].op) {
			ret = -EINVAL;
			goto out;
		}
		k[i].slot = o->slot;
		k[i].other = o->other;
		k[i].block = o->block;
		if (o->kind == ACCEL_BIND) {
			if (!o->region || accel_region_obj(o->region)->dev != space->obj.dev) {
				ret = -EINVAL;
				goto out;
			}
			k[i].handle = accel_region_obj(o->region)->handle;
		}
	}
	sb.handle = space->obj.handle;
	sb.count = count;
	sb.ops = (uintptr_t)k;
	ret = accel_ioctl(space->obj.dev, DRM_IOCTL_KVACCEL_SPACE_BIND, &sb);
	if (!ret && generation)
		*generation = sb.generation;
out:
	if (k != small)
		free(k);
	return ret;
}

ACCEL_EXPORT int accel_space_query(struct accel_space *space, uint32_t first, uint32_t count,
				   struct accel_slot_binding *out, uint64_t *generation)
{
	struct drm_kvaccel_space_info si = { 0 };
	struct drm_kvaccel_slot_binding *k;
	uint32_t i;
	int ret;

	if (!space || !out || !count)
		return -EINVAL;
	k = calloc(count, sizeof(*k));
	if (!k)
		return -ENOMEM;
	si.handle = space->obj.handle;
	si.first_slot = first;
	si.count = count;
	si.bindings = (uintptr_t)k;
	ret = accel_ioctl(space->obj.dev, DRM_IOCTL_KVACCEL_SPACE_INFO, &si);
	if (!ret) {
		for (i = 0; i < count; i++) {
			out[i].region_id = k[i].region_id;
			out[i].block = k[i].block;
		}
		if (generation)
			*generation = si.generation;
	}
	free(k);
	return ret;
}

ACCEL_EXPORT void *accel_space_map(struct accel_space *space, size_t *size)
{
	void *map;

	if (!space) {
		errno = EINVAL;
		return NULL;
	}
	/* The window is writable; the control page after it is read-only to us. */
	map = accel_obj_map(&space->obj, PROT_READ | PROT_WRITE);
	if (map && size)
		*size = space->window;
	return map;
}

ACCEL_EXPORT int64_t accel_space_generation(struct accel_space *space)
{
	const volatile struct drm_kvaccel_space_control *ctl;
	char *map;

	if (!space)
		return -EINVAL;
	map = accel_obj_map(&space->obj, PROT_READ | PROT_WRITE);
	if (!map)
		return -errno;
	ctl = (const volatile struct drm_kvaccel_space_control *)(map + space->window);
	return (int64_t)ctl->generation;
}

ACCEL_EXPORT int accel_space_export(struct accel_space *space, int *fd)
{
	return accel_obj_export(accel_space_obj(space), fd);
}

ACCEL_EXPORT struct accel_space *accel_space_import(struct accel_device *dev, int fd)
{
	uint32_t handle;
	int ret = accel_obj_import(dev, fd, &handle);

	if (ret) {
		errno = -ret;
		return NULL;
	}
	return space_wrap(dev, handle);
}

ACCEL_EXPORT struct accel_obj *accel_space_obj(struct accel_space *space)
{
	return space ? &space->obj : NULL;
}
