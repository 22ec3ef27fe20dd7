// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - imports: dma-bufs of other drivers held as GEM objects.
 *
 * drm_gem_prime_import() attaches our device to the dma-buf, maps the
 * attachment and hands the table here; a dma-buf exported by kvaccel itself
 * comes back as the region it was exported from and never reaches this file.
 * The import keeps the dma-buf (and so the exporter's memory) alive until
 * its last handle is closed. What can be done with an import beyond holding
 * it (copies) is the copy engine's business.
 */
#include <linux/dma-buf.h>
#include <linux/slab.h>
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
	struct kvaccel_import *import = container_of(obj, struct kvaccel_import, base);

	drm_prime_gem_destroy(obj, import->sgt);
	drm_gem_object_release(obj);
	kfree(import);
}

static const struct drm_gem_object_funcs kvaccel_import_funcs = {
	.free = kvaccel_import_free,
	.open = kvaccel_gem_handle_open,
	.close = kvaccel_gem_handle_close,
};

/**
 * kvaccel_import_sg_table - &drm_driver.gem_prime_import_sg_table.
 * @drm: the device.
 * @attach: our attachment to the foreign dma-buf.
 * @sgt: the mapped attachment; the import owns it from here on.
 *
 * Return: the new object or an ERR_PTR.
 */
struct drm_gem_object *kvaccel_import_sg_table(struct drm_device *drm,
					       struct dma_buf_attachment *attach,
					       struct sg_table *sgt)
{
	struct kvaccel_import *import;

	if (!PAGE_ALIGNED(attach->dmabuf->size))
		return ERR_PTR(-EINVAL);

	import = kzalloc(sizeof(*import), GFP_KERNEL_ACCOUNT);
	if (!import)
		return ERR_PTR(-ENOMEM);

	import->base.funcs = &kvaccel_import_funcs;
	drm_gem_private_object_init(drm, &import->base, attach->dmabuf->size);
	import->sgt = sgt;
	return &import->base;
}
