// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - DRM fdinfo: what /proc/PID/fdinfo/FD shows for a kvaccel file,
 * in the keys of the kernel's Documentation/gpu/drm-usage-stats.rst, so
 * that gputop- and nvtop-style tools see kvaccel like any DRM device:
 *
 *   drm-driver, drm-client-id     (written by the DRM core where it has
 *                                 drm_show_fdinfo(), 6.5 and later; by
 *                                 this file before)
 *   drm-engine-copy               time the copy workers spent on the
 *                                 file's jobs, in ns (summed over workers)
 *   drm-engine-capacity-copy      the number of copy workers
 *   drm-total-memory              bytes of the regions the file holds
 *   drm-resident-memory           the same (regions are pinned)
 *   drm-shared-memory             those also held elsewhere (another
 *                                 handle, an exported dma-buf)
 *   drm-active-memory             those a copy job (or another driver's
 *                                 fence) is using now
 *
 * Memory is counted per region handle, as drm_show_memory_stats() does;
 * spaces hold no memory of their own and imports are other drivers'.
 * drm_show_memory_stats() itself is not used: it would count a space's
 * whole window as memory.
 */
#include <linux/dma-resv.h>
#include <linux/idr.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_print.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"

/**
 * kvaccel_copy_stats_new - the copy statistics of a new file.
 *
 * Return: the statistics (one reference) or NULL.
 */
struct kvaccel_copy_stats *kvaccel_copy_stats_new(void)
{
	struct kvaccel_copy_stats *stats = kzalloc(sizeof(*stats), GFP_KERNEL_ACCOUNT);

	if (stats)
		refcount_set(&stats->ref, 1);
	return stats;
}

/**
 * kvaccel_copy_stats_put - drop a reference to a file's copy statistics.
 * @stats: the statistics, or NULL.
 */
void kvaccel_copy_stats_put(struct kvaccel_copy_stats *stats)
{
	if (stats && refcount_dec_and_test(&stats->ref))
		kfree(stats);
}

/**
 * kvaccel_show_fdinfo - &drm_driver.show_fdinfo: the keys after the core's.
 * @p: where to print.
 * @file: the DRM file.
 */
void kvaccel_show_fdinfo(struct drm_printer *p, struct drm_file *file)
{
	struct kvaccel_client *client = file->driver_priv;
	u64 total = 0, shared = 0, active = 0;
	struct drm_gem_object *obj;
	int id;

	spin_lock(&file->table_lock);
	idr_for_each_entry(&file->object_idr, obj, id) {
		if (!kvaccel_is_region(obj))
			continue;
		total += obj->size;
		if (obj->handle_count > 1 || READ_ONCE(obj->dma_buf))
			shared += obj->size;
		if (!dma_resv_test_signaled(obj->resv, DMA_RESV_USAGE_READ))
			active += obj->size;
	}
	spin_unlock(&file->table_lock);

	drm_printf(p, "drm-engine-copy:\t%llu ns\n",
		   (u64)atomic64_read(&client->copy_stats->busy_ns));
	drm_printf(p, "drm-engine-capacity-copy:\t%u\n", client->kdev->copy_workers);
	drm_printf(p, "drm-total-memory:\t%llu KiB\n", total >> 10);
	drm_printf(p, "drm-shared-memory:\t%llu KiB\n", shared >> 10);
	drm_printf(p, "drm-active-memory:\t%llu KiB\n", active >> 10);
	drm_printf(p, "drm-resident-memory:\t%llu KiB\n", total >> 10);
}

#ifndef KVACCEL_HAVE_DRM_SHOW_FDINFO
/**
 * kvaccel_show_fdinfo_fops - &file_operations.show_fdinfo where the DRM
 * core has no drm_show_fdinfo() (before 6.5): the core's keys too.
 * @m: the fdinfo file.
 * @f: the kvaccel file.
 */
void kvaccel_show_fdinfo_fops(struct seq_file *m, struct file *f)
{
	struct drm_file *file = f->private_data;
	struct kvaccel_client *client = file->driver_priv;
	struct drm_printer p = drm_seq_file_printer(m);

	drm_printf(&p, "drm-driver:\t%s\n", KVACCEL_DRIVER_NAME);
	drm_printf(&p, "drm-client-id:\t%llu\n", client->id);
	kvaccel_show_fdinfo(&p, file);
}
#endif
