// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - imports: dma-bufs of other drivers held as GEM objects.
 *
 * An import holds a reference to the dma-buf and nothing else: kvaccel's
 * platform device never attaches to the exporter. Attaching would be
 * wrong twice over: nothing here does DMA through an attachment, and
 * exporters act on every attachment (NVIDIA's exporter treats the
 * attaching device as a PCI device; amdgpu and xe pin and migrate the
 * buffer for as long as it is attached). The CPU reaches an import only
 * through dma_buf_vmap(), when a copy needs its bytes (the copy engine).
 *
 * An import the CPU cannot map (GPU memory: its exporter has no vmap) is a
 * "held" import: it keeps the buffer alive so that the node daemon and the
 * KV cache can hand GPU memory around through kvaccel; copies touching it
 * fail with -EOPNOTSUPP. Imports are not charged to a quota: the memory is
 * the exporter's, allocated and accounted there (a memory cgroup for
 * shmem-backed buffers, the GPU driver for VRAM); holding a reference
 * allocates nothing but the object, which counts against the file's
 * import handles.
 *
 * A read-write dma-buf exported by kvaccel itself comes back as the object
 * it was exported from. A read-only one (of kvaccel or of another driver)
 * gives a read-only import: a copy source, never a destination, not
 * bindable (Documentation/rights.rst).
 */
#include <linux/cred.h>
#include <linux/dma-buf.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <drm/drm_file.h>
#include <drm/drm_prime.h>

#include "kvaccel_drv.h"

static const struct drm_gem_object_funcs kvaccel_import_funcs;

/**
 * kvaccel_is_import - whether a GEM object is an import of this module.
 * @obj: the object.
 *
 * Return: true for an import.
 */
bool kvaccel_is_import(const struct drm_gem_object *obj)
{
	return obj->funcs == &kvaccel_import_funcs;
}

static void kvaccel_import_free(struct drm_gem_object *obj)
{
	struct kvaccel_import *import = to_kvaccel_import(obj);
	struct kvaccel_device *kdev = to_kvaccel_device(obj->dev);

	mutex_lock(&kdev->regions_lock);
	list_del(&import->node);
	mutex_unlock(&kdev->regions_lock);
	drm_gem_object_release(obj);
	dma_buf_put(import->dmabuf);
	put_pid(import->tgid);
	kfree(import);
}

static const struct drm_gem_object_funcs kvaccel_import_funcs = {
	.free = kvaccel_import_free,
	.open = kvaccel_gem_handle_open,
	.close = kvaccel_gem_handle_close,
};

/* A dma-buf exported by this device: the object it came from. */
static struct drm_gem_object *kvaccel_own_object(struct drm_device *drm,
						 struct dma_buf *dmabuf)
{
	struct drm_gem_object *obj;

	if (dmabuf->ops->release != drm_gem_dmabuf_release)
		return NULL;
	obj = dmabuf->priv;
	return obj->dev == drm ? obj : NULL;
}

/**
 * kvaccel_gem_prime_import - &drm_driver.gem_prime_import.
 * @drm: the device.
 * @dmabuf: the dma-buf (the caller holds a reference).
 *
 * Return: the object exported as @dmabuf if it is this device's and
 * @dmabuf is writable (with a new reference), else a new import holding
 * its own reference to @dmabuf (read-only if @dmabuf is); or
 * ERR_PTR(-EINVAL) for a size that is not a multiple of the page size,
 * ERR_PTR(-ENOMEM).
 */
struct drm_gem_object *kvaccel_gem_prime_import(struct drm_device *drm,
						struct dma_buf *dmabuf)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct drm_gem_object *obj = kvaccel_own_object(drm, dmabuf);
	bool read_only = !(dmabuf->file->f_mode & FMODE_WRITE);
	struct kvaccel_import *import;

	/*
	 * A read-write dma-buf of ours gives the object back with all its
	 * rights; a read-only one only ever gives a read-only import.
	 */
	if (obj && read_only)
		obj = NULL;
	if (obj) {
		drm_gem_object_get(obj);
		return obj;
	}
	if (!dmabuf->size || !PAGE_ALIGNED(dmabuf->size))
		return ERR_PTR(-EINVAL);

	import = kzalloc(sizeof(*import), GFP_KERNEL_ACCOUNT);
	if (!import)
		return ERR_PTR(-ENOMEM);
	import->base.funcs = &kvaccel_import_funcs;
	drm_gem_private_object_init(drm, &import->base, dmabuf->size);
	/* Implicit sync goes through the exporter's reservation object. */
	import->base.resv = dmabuf->resv;
	get_dma_buf(dmabuf);
	import->dmabuf = dmabuf;
	import->cpu_access = !!dmabuf->ops->vmap;
	import->read_only = read_only;
	import->uid = current_euid();
	import->tgid = get_pid(task_tgid(current));
	get_task_comm(import->comm, current);

	mutex_lock(&kdev->regions_lock);
	import->id = atomic64_inc_return(&kdev->next_region_id);
	list_add_tail(&import->node, &kdev->imports);
	mutex_unlock(&kdev->regions_lock);
	return &import->base;
}
