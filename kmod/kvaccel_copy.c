// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - the copy engine: jobs of (source, destination, length) segments
 * between regions, spaces and CPU-mappable imports, run by the module's
 * copy workers and completed through a dma_fence (handed to a DRM syncobj).
 *
 * This file is the submission (and the per-file bookkeeping of jobs):
 * validate everything, reference every object, resolve space ranges to
 * their blocks (under the space's lock: a job sees a bind batch whole or
 * not at all), map imports and begin the CPU access to them, merge
 * adjacent segments, split the bytes into parts for the workers, lock the
 * reservation objects and collect every dependency (kvaccel_copy_sync.c);
 * only then is the fence initialised and published (reservation objects,
 * job history, out syncobj) and the job started (kvaccel_copy_run.c).
 * Nothing is allocated once the fence is published.
 */
#include <linux/dma-buf.h>
#include <linux/dma-fence.h>
#include <linux/dma-fence-chain.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_syncobj.h>

#include "kvaccel_compat.h"
#include "kvaccel_copy.h"
#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

static int kvaccel_import_vmap(struct drm_gem_object *obj, struct iosys_map *map)
{
	struct kvaccel_import *import = to_kvaccel_import(obj);
	struct dma_buf *dmabuf = import->dmabuf;

	/* A held import (GPU memory exported by CUDA) has no CPU mapping. */
	if (!import->cpu_access)
		return -EOPNOTSUPP;
#ifdef KVACCEL_HAVE_DMA_BUF_VMAP_UNLOCKED
	return dma_buf_vmap_unlocked(dmabuf, map);
#else
	return dma_buf_vmap(dmabuf, map);
#endif
}

/* Add a read or a write to the direction of the CPU's access to an import. */
static enum dma_data_direction kvaccel_dir_add(enum dma_data_direction dir, bool write)
{
	enum dma_data_direction want = write ? DMA_TO_DEVICE : DMA_FROM_DEVICE;

	if (dir == DMA_NONE || dir == want)
		return want;
	return DMA_BIDIRECTIONAL;
}

/* Reference @obj for the job; the job drops it when it completes. */
static void kvaccel_job_hold(struct kvaccel_job *job, struct drm_gem_object *obj)
{
	job->objs[job->nr_objs++] = obj;
}

static int kvaccel_resolve_space(struct kvaccel_copy_end *end,
				 struct kvaccel_space *space, u64 offset, u64 len)
{
	u32 first = offset >> space->block_shift;
	u32 last = (offset + len - 1) >> space->block_shift, i;
	int ret = 0;

	end->kind = KVACCEL_END_SPACE;
	end->shift = space->block_shift;
	end->offset = offset;
	end->first_slot = first;
	end->snap = kvcalloc(last - first + 1, sizeof(*end->snap), GFP_KERNEL_ACCOUNT);
	if (!end->snap)
		return -ENOMEM;
	end->nr_snap = last - first + 1;

	/* One generation: a bind batch is seen whole or not at all. */
	down_read(&space->lock);
	for (i = 0; i < end->nr_snap; i++) {
		const struct kvaccel_slot *slot = &space->slots[first + i];

		if (!slot->region) {
			ret = -ENOENT;
			break;
		}
		end->snap[i] = *slot;
		drm_gem_object_get(&slot->region->base);
	}
	up_read(&space->lock);
	return ret;
}

/* The vmap of an import for this job, shared by all its segments. */
static int kvaccel_resolve_import(struct kvaccel_job *job, struct kvaccel_copy_end *end,
				  struct drm_gem_object *obj, u64 offset, bool write)
{
	struct kvaccel_copy_vmap *v;
	u32 i;
	int ret;

	end->kind = KVACCEL_END_IMPORT;
	end->offset = offset;
	for (i = 0; i < job->nr_vmaps; i++) {
		if (job->vmaps[i].obj == obj) {
			end->vaddr = job->vmaps[i].map.vaddr;
			job->vmaps[i].dir = kvaccel_dir_add(job->vmaps[i].dir, write);
			return 0;
		}
	}
	v = &job->vmaps[job->nr_vmaps];
	v->obj = obj;
	v->dir = kvaccel_dir_add(DMA_NONE, write);
	v->cpu_access = false;
	ret = kvaccel_import_vmap(obj, &v->map);
	if (ret)
		return ret;
	if (v->map.is_iomem) {
		kvaccel_import_vunmap(v);
		return -EOPNOTSUPP;
	}
	job->nr_vmaps++;
	end->vaddr = v->map.vaddr;
	return 0;
}

static int kvaccel_resolve_end(struct kvaccel_job *job, struct drm_file *file,
			       struct kvaccel_copy_end *end, u32 handle, u64 offset,
			       u64 len, bool write, struct drm_gem_object **objp)
{
	struct drm_gem_object *obj;
	u64 size;

	obj = drm_gem_object_lookup(file, handle);
	if (!obj)
		return -ENOENT;
	kvaccel_job_hold(job, obj);
	*objp = obj;

	if (kvaccel_is_space(obj))
		size = kvaccel_space_window(to_kvaccel_space(obj));
	else if (kvaccel_is_region(obj) || kvaccel_is_import(obj))
		size = obj->size;
	else
		return -EINVAL;
	if (offset > size || len > size - offset)
		return -EINVAL;

	if (kvaccel_is_region(obj)) {
		end->kind = KVACCEL_END_REGION;
		end->region = to_kvaccel_region(obj);
		end->shift = end->region->block_shift;
		end->offset = offset;
		return 0;
	}
	if (kvaccel_is_space(obj))
		return kvaccel_resolve_space(end, to_kvaccel_space(obj), offset, len);
	/* An import given read-only is never written. */
	if (write && to_kvaccel_import(obj)->read_only)
		return -EACCES;
	return kvaccel_resolve_import(job, end, obj, offset, write);
}

static bool kvaccel_ends_adjacent(const struct kvaccel_copy_end *a, u64 len,
				  const struct kvaccel_copy_end *b)
{
	if (a->kind != b->kind || a->kind == KVACCEL_END_SPACE)
		return false;
	if (a->kind == KVACCEL_END_REGION && a->region != b->region)
		return false;
	if (a->kind == KVACCEL_END_IMPORT && a->vaddr != b->vaddr)
		return false;
	return a->offset + len == b->offset;
}

/* Merge each segment into the previous one when both sides continue it. */
static void kvaccel_job_merge(struct kvaccel_job *job)
{
	u32 i, n = 0;

	for (i = 0; i < job->nr_segs; i++) {
		struct kvaccel_copy_seg *prev = n ? &job->segs[n - 1] : NULL;
		struct kvaccel_copy_seg *seg = &job->segs[i];

		if (prev && kvaccel_ends_adjacent(&prev->src, prev->length, &seg->src) &&
		    kvaccel_ends_adjacent(&prev->dst, prev->length, &seg->dst)) {
			prev->length += seg->length;
			continue;
		}
		if (n != i)
			job->segs[n] = *seg;
		n++;
	}
	job->nr_segs = n;
}

static int kvaccel_job_split(struct kvaccel_job *job)
{
	u32 workers = job->kdev->copy_workers, i;
	u64 per;

	job->nr_parts = clamp_t(u64, div64_u64(job->total, KVACCEL_COPY_PART_MIN), 1, workers);
	if (job->nr_parts == 1)
		job->parts = &job->small.part;
	else
		job->parts = kvcalloc(job->nr_parts, sizeof(*job->parts), GFP_KERNEL_ACCOUNT);
	if (!job->parts)
		return -ENOMEM;
	per = round_up(div64_u64(job->total, job->nr_parts), PAGE_SIZE);
	for (i = 0; i < job->nr_parts; i++) {
		struct kvaccel_copy_part *part = &job->parts[i];

		part->job = job;
		part->start = min(job->total, (u64)i * per);
		part->len = min(job->total - part->start, per);
		kvaccel_job_part_init(part);
	}
	atomic_set(&job->parts_left, job->nr_parts);
	return 0;
}

static bool kvaccel_ranges_overlap(u64 a, u64 b, u64 len)
{
	return a < b + len && b < a + len;
}

/* Resolve and check every segment; the job holds what it references. */
static int kvaccel_job_build(struct kvaccel_job *job, struct drm_file *file,
			     const struct drm_kvaccel_copy_segment *user)
{
	u32 i;
	int ret;

	for (i = 0; i < job->nr_segs; i++) {
		const struct drm_kvaccel_copy_segment *u = &user[i];
		struct kvaccel_copy_seg *seg = &job->segs[i];
		struct drm_gem_object *src, *dst;

		if (u->flags & ~KVACCEL_COPY_SEGMENT_FLAGS || u->pad || !u->length)
			return -EINVAL;
		if (u->length > KVACCEL_COPY_MAX_BYTES - job->total)
			return -EINVAL;
		job->total += u->length;
		seg->length = u->length;
		ret = kvaccel_resolve_end(job, file, &seg->src, u->src_handle,
					  u->src_offset, u->length, false, &src);
		if (ret)
			return ret;
		ret = kvaccel_resolve_end(job, file, &seg->dst, u->dst_handle,
					  u->dst_offset, u->length, true, &dst);
		if (ret)
			return ret;
		if (src == dst && kvaccel_ranges_overlap(u->src_offset, u->dst_offset,
							 u->length))
			return -EINVAL;
	}
	return 0;
}

static int kvaccel_job_alloc_arrays(struct kvaccel_job *job, u32 count)
{
	if (count == 1) {
		job->segs = &job->small.seg;
		job->objs = job->small.objs;
		job->vmaps = job->small.vmaps;
		job->nr_segs = 1;
		return 0;
	}
	job->segs = kvcalloc(count, sizeof(*job->segs), GFP_KERNEL_ACCOUNT);
	job->objs = kvcalloc(count, 2 * sizeof(*job->objs), GFP_KERNEL_ACCOUNT);
	job->vmaps = kvcalloc(count, 2 * sizeof(*job->vmaps), GFP_KERNEL_ACCOUNT);
	if (!job->segs || !job->objs || !job->vmaps)
		return -ENOMEM;
	job->nr_segs = count;
	return 0;
}

/* Give the job its id and reserve its history entry (allocates). */
static int kvaccel_job_reserve_id(struct kvaccel_client *client, struct kvaccel_job *job)
{
	int ret;

	xa_lock(&client->jobs);
	job->id = ++client->last_job_id;
	/* Inserting NULL reserves the index: lookups still find nothing. */
	ret = __xa_insert(&client->jobs, job->id, NULL, GFP_KERNEL_ACCOUNT);
	xa_unlock(&client->jobs);
	return ret;
}

/*
 * Publish the job in the file's history, forgetting the oldest job beyond
 * the limit. Storing into the reserved index allocates nothing.
 */
static void kvaccel_job_remember(struct kvaccel_client *client, struct kvaccel_job *job)
{
	struct dma_fence *old = NULL;

	xa_lock(&client->jobs);
	if (!xa_is_err(__xa_store(&client->jobs, job->id, &job->fence, 0)))
		dma_fence_get(&job->fence);
	if (job->id > KVACCEL_COPY_HISTORY)
		old = __xa_erase(&client->jobs, job->id - KVACCEL_COPY_HISTORY);
	xa_unlock(&client->jobs);
	if (old)
		dma_fence_put(old);
}

/*
 * Begin the CPU access to every import the job maps. The exporter's
 * dma_buf_begin_cpu_access() waits for the buffer's implicit fences, and
 * it must do so before the job's fence exists (later it could wait for the
 * job itself): here, interruptibly, at most copy_timeout_ms.
 */
static int kvaccel_job_begin_cpu_access(struct kvaccel_job *job)
{
	long timeout = msecs_to_jiffies(kvaccel_copy_timeout_ms());
	u32 i;

	for (i = 0; i < job->nr_vmaps; i++) {
		struct kvaccel_copy_vmap *v = &job->vmaps[i];
		struct dma_buf *dmabuf = to_kvaccel_import(v->obj)->dmabuf;
		bool write = v->dir != DMA_FROM_DEVICE;
		long left;
		int ret;

		left = dma_resv_wait_timeout(dmabuf->resv, dma_resv_usage_rw(write),
					     true, timeout);
		if (left < 0)
			return left;
		if (!left)
			return -ETIMEDOUT;
		ret = dma_buf_begin_cpu_access(dmabuf, v->dir);
		if (ret)
			return ret;
		v->cpu_access = true;
	}
	return 0;
}

/* Charge the job to its process's in-flight bytes; -EBUSY beyond the cap. */
static int kvaccel_job_charge_bytes(struct kvaccel_job *job)
{
	atomic64_t *bytes = &job->proc->copy_bytes;

	if (atomic64_add_return(job->total, bytes) > kvaccel_copy_inflight_bytes()) {
		atomic64_sub(job->total, bytes);
		return -EBUSY;
	}
	return 0;
}

int kvaccel_ioctl_copy_submit(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct kvaccel_client *client = file->driver_priv;
	struct drm_kvaccel_copy_submit *args = data;
	struct drm_kvaccel_copy_segment one, *user = NULL;
	struct dma_fence_chain *chain = NULL;
	struct dma_fence *in_fence = NULL;
	struct drm_syncobj *out = NULL;
	struct kvaccel_copy_sync sync;
	struct kvaccel_job *job;
	bool cookie, inline_done;
	size_t bytes;
	int ret;

	if (args->flags & ~KVACCEL_COPY_SUBMIT_FLAGS || args->pad)
		return -EINVAL;
	if ((args->in_point && !args->in_syncobj) || (args->out_point && !args->out_syncobj))
		return -EINVAL;
	if (!args->count || args->count > KVACCEL_COPY_MAX_SEGMENTS)
		return -EINVAL;
	if (check_mul_overflow((size_t)args->count, sizeof(*user), &bytes))
		return -EINVAL;

	job = kzalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
	if (!job)
		return -ENOMEM;
	job->kdev = kdev;
	/* The device lives until the job is released, even past a remove. */
	drm_dev_get(&kdev->drm);
	job->client_id = client->id;
	job->stats = client->copy_stats;
	refcount_inc(&job->stats->ref);
	spin_lock_init(&job->lock);
	kvaccel_job_init_run(job);

	job->proc = kvaccel_client_caller(client);
	if (!job->proc) {
		ret = -ENOMEM;
		goto err_free_job;
	}
	if (atomic_inc_return(&job->proc->copy_inflight) > KVACCEL_COPY_MAX_INFLIGHT) {
		ret = -EBUSY;
		goto err_uncount;
	}

	user = args->count == 1 ? &one : kvmalloc(bytes, GFP_KERNEL);
	ret = user ? kvaccel_job_alloc_arrays(job, args->count) : -ENOMEM;
	if (ret)
		goto err_release;
	if (copy_from_user(user, u64_to_user_ptr(args->segments), bytes)) {
		ret = -EFAULT;
		goto err_release;
	}
	ret = kvaccel_job_build(job, file, user);
	if (ret)
		goto err_release;
	kvaccel_job_merge(job);
	ret = kvaccel_job_split(job);
	if (ret)
		goto err_release;
	ret = kvaccel_job_charge_bytes(job);
	if (ret)
		goto err_release;

	if (args->in_syncobj) {
		ret = drm_syncobj_find_fence(file, args->in_syncobj, args->in_point, 0,
					     &in_fence);
		if (ret)
			goto err_unbytes;
	}
	if (args->out_syncobj) {
		out = drm_syncobj_find(file, args->out_syncobj);
		if (!out) {
			ret = -ENOENT;
			goto err_put_in;
		}
	}
	if (args->out_point) {
		chain = dma_fence_chain_alloc();
		if (!chain) {
			ret = -ENOMEM;
			goto err_put_out;
		}
	}
	ret = kvaccel_job_begin_cpu_access(job);
	if (ret)
		goto err_put_out;
	ret = kvaccel_job_reserve_id(client, job);
	if (ret)
		goto err_put_out;
	ret = kvaccel_copy_sync_lock(job, &sync);
	if (ret)
		goto err_sync_fini;
	/* The input fence's reference passes to the job here. */
	ret = kvaccel_copy_sync_collect(job, &sync, in_fence,
					!(args->flags & KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT));
	in_fence = NULL;
	if (ret)
		goto err_sync_unlock;

	/* The fence exists from here on; it pins the module while it lives. */
	__module_get(THIS_MODULE);
	dma_fence_init(&job->fence, &kvaccel_fence_ops, &job->lock,
		       dma_fence_context_alloc(1), 1);

	/* Published: nothing below allocates until the job's fence signals. */
	cookie = dma_fence_begin_signalling();
	kvaccel_copy_sync_publish(job, &sync);
	kvaccel_copy_sync_unlock(&sync);
	kvaccel_job_remember(client, job);
	args->job_id = job->id;
	if (chain)
		drm_syncobj_add_point(out, chain, &job->fence, args->out_point);
	else if (out)
		drm_syncobj_replace_fence(out, &job->fence);
	/* The running job's reference, dropped by its release. */
	dma_fence_get(&job->fence);
	inline_done = kvaccel_job_run_inline(job);
	if (!inline_done) {
		spin_lock(&kdev->jobs_lock);
		list_add_tail(&job->pending, &client->pending);
		spin_unlock(&kdev->jobs_lock);
		kvaccel_job_start(job);
	}
	args->status = dma_fence_get_status(&job->fence);
	dma_fence_end_signalling(cookie);

	if (inline_done)
		kvaccel_job_release(job);
	kvaccel_copy_sync_fini(&sync);
	if (out)
		drm_syncobj_put(out);
	if (user != &one)
		kvfree(user);
	/* The submitter's own reference from dma_fence_init(). */
	dma_fence_put(&job->fence);
	return 0;

err_sync_unlock:
	kvaccel_copy_sync_unlock(&sync);
err_sync_fini:
	kvaccel_copy_sync_fini(&sync);
	xa_erase(&client->jobs, job->id);
err_put_out:
	dma_fence_chain_free(chain);
	if (out)
		drm_syncobj_put(out);
err_put_in:
	if (in_fence)
		dma_fence_put(in_fence);
err_unbytes:
	atomic64_sub(job->total, &job->proc->copy_bytes);
err_release:
	kvaccel_job_release_resources(job);
	if (user != &one)
		kvfree(user);
err_uncount:
	atomic_dec(&job->proc->copy_inflight);
	kvaccel_proc_put(job->proc);
err_free_job:
	kvaccel_copy_stats_put(job->stats);
	drm_dev_put(&kdev->drm);
	kfree(job);
	return ret;
}

int kvaccel_ioctl_copy_status(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct kvaccel_client *client = file->driver_priv;
	struct drm_kvaccel_copy_status *args = data;
	struct dma_fence *fence;

	if (args->flags & ~KVACCEL_COPY_STATUS_FLAGS)
		return -EINVAL;

	xa_lock(&client->jobs);
	fence = xa_load(&client->jobs, args->job_id);
	if (fence)
		dma_fence_get(fence);
	xa_unlock(&client->jobs);
	if (!fence)
		return -ENOENT;

	args->status = dma_fence_get_status(fence);
	dma_fence_put(fence);
	return 0;
}

/**
 * kvaccel_copy_client_init - set up a file's job history, pending list and
 * statistics.
 * @client: the file.
 *
 * Return: 0 or -ENOMEM.
 */
int kvaccel_copy_client_init(struct kvaccel_client *client)
{
	client->copy_stats = kvaccel_copy_stats_new();
	if (!client->copy_stats)
		return -ENOMEM;
	xa_init(&client->jobs);
	client->last_job_id = 0;
	INIT_LIST_HEAD(&client->pending);
	return 0;
}

/**
 * kvaccel_copy_client_fini - a file closes: cancel every job of it that
 * has not started (each fails with -ECANCELED at once, without waiting for
 * its dependencies), forget its history. Started jobs finish; every fence
 * signals.
 * @client: the file.
 */
void kvaccel_copy_client_fini(struct kvaccel_client *client)
{
	struct kvaccel_device *kdev = client->kdev;
	struct kvaccel_job *job, *tmp;
	struct dma_fence *fence;
	unsigned long id;

	spin_lock(&kdev->jobs_lock);
	list_for_each_entry_safe(job, tmp, &client->pending, pending) {
		list_del_init(&job->pending);
		kvaccel_job_cancel(job);
	}
	spin_unlock(&kdev->jobs_lock);

	xa_for_each(&client->jobs, id, fence) {
		xa_erase(&client->jobs, id);
		dma_fence_put(fence);
	}
	xa_destroy(&client->jobs);
	kvaccel_copy_stats_put(client->copy_stats);
}

/**
 * kvaccel_copy_init - set up a device's copy engine.
 * @kdev: the device.
 */
void kvaccel_copy_init(struct kvaccel_device *kdev)
{
	spin_lock_init(&kdev->jobs_lock);
	kvaccel_copy_queues(&kdev->copy_wq, &kdev->copy_workers);
}
