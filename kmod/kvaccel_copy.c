// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - the copy engine: jobs of (source, destination, length) segments
 * between regions, spaces and CPU-mappable imports, run by the module's
 * copy workers and completed through a dma_fence (handed to a DRM syncobj).
 *
 * A job's life:
 *  submit   validate everything, reference every object, resolve space
 *           ranges to their blocks (under the space's lock: a job sees a
 *           bind batch whole or not at all), vmap imports, merge adjacent
 *           segments, split the bytes into parts for the workers; then
 *           publish the fence (job history, out syncobj). Nothing is
 *           allocated once the fence is published.
 *  start    (a work item, queued at once or by the input fence's callback;
 *           a small job with no input fence and no import is instead
 *           copied at once by the submitting task)
 *           takes the input fence's error, or waits for the imports'
 *           reservation fences, or finds the job cancelled; then queues
 *           the parts, or completes the job with the error.
 *  parts    copy their share; the last one to finish completes the job.
 *  complete sets the error, signals the fence (annotated as a signalling
 *           critical section), then drops the objects, vmaps and the
 *           process's in-flight count.
 * The fence is the job's refcount; each live fence holds a reference on the
 * module (an exported sync_file can outlive everything else, and the
 * fence's ops are module code), dropped by its release.
 */
#include <linux/dma-buf.h>
#include <linux/dma-fence.h>
#include <linux/dma-resv.h>
#include <linux/iosys-map.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_syncobj.h>

#include "kvaccel_compat.h"
#include "kvaccel_drv.h"
#include "../uapi/kvaccel.h"

/* Parts smaller than this are not worth another worker. */
#define KVACCEL_COPY_PART_MIN	SZ_1M
/*
 * A job this small with nothing to wait for is copied in the submitting
 * task: a worker's wake-up would cost more than the copy.
 */
#define KVACCEL_COPY_INLINE_MAX	SZ_64K

enum kvaccel_end_kind {
	KVACCEL_END_REGION,
	KVACCEL_END_SPACE,
	KVACCEL_END_IMPORT,
};

/**
 * struct kvaccel_copy_end - one side of a segment, resolved at submit.
 * @kind: what the object is.
 * @shift: block shift (region, space).
 * @offset: byte offset in the object (for a space: in its window).
 * @region: the region (referenced through the job's objects).
 * @snap: for a space: the slots covering the range, at submit time, each
 *	region referenced by the snapshot.
 * @first_slot: the slot @snap starts at.
 * @nr_snap: entries in @snap.
 * @vaddr: for an import: its kernel mapping (the job's vmaps).
 */
struct kvaccel_copy_end {
	enum kvaccel_end_kind kind;
	unsigned int shift;
	u64 offset;
	struct kvaccel_region *region;
	struct kvaccel_slot *snap;
	u32 first_slot;
	u32 nr_snap;
	void *vaddr;
};

struct kvaccel_copy_seg {
	struct kvaccel_copy_end src, dst;
	u64 length;
};

struct kvaccel_copy_part {
	struct work_struct work;
	struct kvaccel_job *job;
	u64 start, len;
};

struct kvaccel_copy_vmap {
	struct drm_gem_object *obj;
	struct iosys_map map;
};

#define KVACCEL_JOB_CANCELLED	0

/**
 * struct kvaccel_job_small - the arrays of a one-segment, one-part job,
 *	inside the job: the common small copy then allocates only the job.
 * @seg: the segment.
 * @objs: its two objects.
 * @vmaps: its two possible import mappings.
 * @part: the one part.
 */
struct kvaccel_job_small {
	struct kvaccel_copy_seg seg;
	struct drm_gem_object *objs[2];
	struct kvaccel_copy_vmap vmaps[2];
	struct kvaccel_copy_part part;
};

/**
 * struct kvaccel_job - a copy job; its memory is freed by its fence's release.
 * @fence: the completion fence; its refcount is the job's.
 * @lock: the fence's lock.
 * @kdev: the device.
 * @proc: the process charged for the job in flight (referenced).
 * @id: the job's id in its file.
 * @client_id: the id of the file (netlink client id).
 * @flags: %KVACCEL_JOB_CANCELLED.
 * @error: the job's first error, set before the fence signals.
 * @in_fence: the input fence (referenced), or NULL.
 * @in_cb: callback on @in_fence.
 * @start_work: the start step.
 * @segs: the segments.
 * @nr_segs: entries in @segs.
 * @total: bytes in all segments.
 * @parts: the workers' shares.
 * @nr_parts: entries in @parts.
 * @parts_left: parts not finished yet.
 * @objs: every GEM object the job references.
 * @nr_objs: entries in @objs.
 * @vmaps: imports mapped for the job.
 * @nr_vmaps: entries in @vmaps.
 * @small: storage of the arrays above when one entry (part) is enough.
 */
struct kvaccel_job {
	struct dma_fence fence;
	/* Protects the fence's state (dma_fence_init()). */
	spinlock_t lock;
	struct kvaccel_device *kdev;
	struct kvaccel_proc *proc;
	u64 id;
	u64 client_id;
	unsigned long flags;
	int error;
	struct dma_fence *in_fence;
	struct dma_fence_cb in_cb;
	struct work_struct start_work;
	struct kvaccel_copy_seg *segs;
	u32 nr_segs;
	u64 total;
	struct kvaccel_copy_part *parts;
	u32 nr_parts;
	atomic_t parts_left;
	struct drm_gem_object **objs;
	u32 nr_objs;
	struct kvaccel_copy_vmap *vmaps;
	u32 nr_vmaps;
	struct kvaccel_job_small small;
};

/* kvfree() an array unless it is the job's own small storage. */
static void kvaccel_job_free_array(struct kvaccel_job *job, void *array)
{
	void *small = &job->small;

	if (array < small || array >= small + sizeof(job->small))
		kvfree(array);
}

static const char *kvaccel_fence_driver_name(struct dma_fence *fence)
{
	return KVACCEL_DRIVER_NAME;
}

static const char *kvaccel_fence_timeline_name(struct dma_fence *fence)
{
	return "copy";
}

static void kvaccel_fence_release(struct dma_fence *fence)
{
	struct kvaccel_job *job = container_of(fence, struct kvaccel_job, fence);

	kfree_rcu(job, fence.rcu);
	module_put(THIS_MODULE);
}

static const struct dma_fence_ops kvaccel_fence_ops = {
	.get_driver_name = kvaccel_fence_driver_name,
	.get_timeline_name = kvaccel_fence_timeline_name,
	.release = kvaccel_fence_release,
};

static void kvaccel_import_vunmap(struct kvaccel_copy_vmap *v)
{
#ifdef KVACCEL_HAVE_DMA_BUF_VMAP_UNLOCKED
	dma_buf_vunmap_unlocked(v->obj->import_attach->dmabuf, &v->map);
#else
	dma_buf_vunmap(v->obj->import_attach->dmabuf, &v->map);
#endif
}

static int kvaccel_import_vmap(struct drm_gem_object *obj, struct iosys_map *map)
{
	struct dma_buf *dmabuf = obj->import_attach->dmabuf;

	/* GPU memory exported by CUDA has no CPU mapping. */
	if (!dmabuf->ops->vmap)
		return -EOPNOTSUPP;
#ifdef KVACCEL_HAVE_DMA_BUF_VMAP_UNLOCKED
	return dma_buf_vmap_unlocked(dmabuf, map);
#else
	return dma_buf_vmap(dmabuf, map);
#endif
}

/* Drop everything the job holds but its memory; process context. */
static void kvaccel_job_release_resources(struct kvaccel_job *job)
{
	u32 i, j;

	for (i = 0; job->segs && i < job->nr_segs; i++) {
		struct kvaccel_copy_end *ends[2] = { &job->segs[i].src, &job->segs[i].dst };

		for (j = 0; j < 2; j++) {
			u32 k;

			if (!ends[j]->snap)
				continue;
			for (k = 0; k < ends[j]->nr_snap; k++)
				if (ends[j]->snap[k].region)
					drm_gem_object_put(&ends[j]->snap[k].region->base);
			kvfree(ends[j]->snap);
		}
	}
	for (i = 0; i < job->nr_vmaps; i++)
		kvaccel_import_vunmap(&job->vmaps[i]);
	for (i = 0; i < job->nr_objs; i++)
		drm_gem_object_put(job->objs[i]);
	if (job->in_fence)
		dma_fence_put(job->in_fence);
	kvaccel_job_free_array(job, job->vmaps);
	kvaccel_job_free_array(job, job->objs);
	kvaccel_job_free_array(job, job->parts);
	kvaccel_job_free_array(job, job->segs);
	job->vmaps = NULL;
	job->objs = NULL;
	job->parts = NULL;
	job->segs = NULL;
	job->in_fence = NULL;
	job->nr_vmaps = 0;
	job->nr_objs = 0;
	job->nr_segs = 0;
}

/* Signal the job's fence with its error, then let go of what it held. */
static void kvaccel_job_complete(struct kvaccel_job *job)
{
	struct kvaccel_proc *proc = job->proc;
	bool cookie;

	cookie = dma_fence_begin_signalling();
	if (job->error)
		dma_fence_set_error(&job->fence, job->error);
	dma_fence_signal(&job->fence);
	dma_fence_end_signalling(cookie);

	if (job->error) {
		atomic64_inc(&job->kdev->copy_errors);
		kvaccel_notify_copy_error(job->kdev, job->client_id, proc,
					  job->id, job->error);
	}
	atomic64_inc(&job->kdev->copy_jobs);
	kvaccel_job_release_resources(job);
	atomic_dec(&proc->copy_inflight);
	kvaccel_proc_put(proc);
	job->proc = NULL;
	/* The reference the running job held. */
	dma_fence_put(&job->fence);
}

/* The address of byte @pos of a segment end, and how many bytes follow it contiguously. */
static void *kvaccel_end_addr(const struct kvaccel_copy_end *end, u64 pos, u64 *contig)
{
	u64 off = end->offset + pos, in, bs = 1ull << end->shift;
	const struct kvaccel_slot *slot;

	switch (end->kind) {
	case KVACCEL_END_REGION:
		in = off & (bs - 1);
		*contig = bs - in;
		return page_address(end->region->blocks[off >> end->shift]) + in;
	case KVACCEL_END_SPACE:
		in = off & (bs - 1);
		*contig = bs - in;
		slot = &end->snap[(off >> end->shift) - end->first_slot];
		return page_address(slot->region->blocks[slot->block]) + in;
	default:
		*contig = U64_MAX;
		return end->vaddr + off;
	}
}

/*
 * A failure point of the workers: fails when the debugfs countdown reaches
 * zero here (the calling task's fail-nth cannot reach a worker).
 */
static bool kvaccel_copy_should_fail(struct kvaccel_device *kdev)
{
	int n = atomic_read(&kdev->copy_fail_nth);

	while (n > 0) {
		int old = atomic_cmpxchg(&kdev->copy_fail_nth, n, n - 1);

		if (old == n)
			return n == 1;
		n = old;
	}
	return false;
}

/* Record the job's first error; parts may fail concurrently. */
static void kvaccel_job_fail(struct kvaccel_job *job, int error)
{
	cmpxchg(&job->error, 0, error);
}

static void kvaccel_copy_range(const struct kvaccel_copy_seg *seg, u64 pos, u64 len)
{
	u64 done_since_resched = 0;

	while (len) {
		u64 cs, cd, n;
		void *s = kvaccel_end_addr(&seg->src, pos, &cs);
		void *d = kvaccel_end_addr(&seg->dst, pos, &cd);

		n = min3(len, cs, cd);
		memcpy(d, s, n);
		pos += n;
		len -= n;
		done_since_resched += n;
		if (done_since_resched >= (2u << 20)) {
			cond_resched();
			done_since_resched = 0;
		}
	}
}

static void kvaccel_copy_part_work(struct work_struct *work)
{
	struct kvaccel_copy_part *part = container_of(work, struct kvaccel_copy_part, work);
	struct kvaccel_job *job = part->job;
	u64 start = part->start, len = part->len, base = 0;
	u32 i;

	if (kvaccel_copy_should_fail(job->kdev)) {
		kvaccel_job_fail(job, -EIO);
		len = 0;
	}
	/* Find the segments this part covers in the concatenated byte stream. */
	for (i = 0; i < job->nr_segs && len; i++) {
		const struct kvaccel_copy_seg *seg = &job->segs[i];
		u64 from, n;

		if (start >= base + seg->length) {
			base += seg->length;
			continue;
		}
		from = start - base;
		n = min(len, seg->length - from);
		kvaccel_copy_range(seg, from, n);
		start += n;
		len -= n;
		base += seg->length;
	}

	if (atomic_dec_and_test(&job->parts_left))
		kvaccel_job_complete(job);
}

static int kvaccel_job_wait_imports(struct kvaccel_job *job)
{
	u32 i;

	for (i = 0; i < job->nr_vmaps; i++) {
		long ret = dma_resv_wait_timeout(job->vmaps[i].obj->resv,
						 DMA_RESV_USAGE_READ, false,
						 MAX_SCHEDULE_TIMEOUT);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static void kvaccel_job_start(struct work_struct *work)
{
	struct kvaccel_job *job = container_of(work, struct kvaccel_job, start_work);
	u32 i;

	if (test_bit(KVACCEL_JOB_CANCELLED, &job->flags))
		job->error = -ECANCELED;
	else if (job->in_fence && dma_fence_get_status(job->in_fence) < 0)
		job->error = dma_fence_get_status(job->in_fence);
	else if (kvaccel_copy_should_fail(job->kdev))
		job->error = -EIO;
	else
		job->error = kvaccel_job_wait_imports(job);

	if (job->error) {
		kvaccel_job_complete(job);
		return;
	}
	for (i = 0; i < job->nr_parts; i++)
		queue_work(job->kdev->copy_wq, &job->parts[i].work);
}

static void kvaccel_job_in_fence_cb(struct dma_fence *fence, struct dma_fence_cb *cb)
{
	struct kvaccel_job *job = container_of(cb, struct kvaccel_job, in_cb);

	/* Any context: just hand over to the workers. */
	queue_work(job->kdev->copy_wq, &job->start_work);
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
				  struct drm_gem_object *obj, u64 offset)
{
	struct kvaccel_copy_vmap *v;
	u32 i;
	int ret;

	end->kind = KVACCEL_END_IMPORT;
	end->offset = offset;
	for (i = 0; i < job->nr_vmaps; i++) {
		if (job->vmaps[i].obj == obj) {
			end->vaddr = job->vmaps[i].map.vaddr;
			return 0;
		}
	}
	v = &job->vmaps[job->nr_vmaps];
	v->obj = obj;
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
			       u64 len, struct drm_gem_object **objp)
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
	return kvaccel_resolve_import(job, end, obj, offset);
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
		INIT_WORK(&part->work, kvaccel_copy_part_work);
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
					  u->src_offset, u->length, &src);
		if (ret)
			return ret;
		ret = kvaccel_resolve_end(job, file, &seg->dst, u->dst_handle,
					  u->dst_offset, u->length, &dst);
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

int kvaccel_ioctl_copy_submit(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct kvaccel_device *kdev = to_kvaccel_device(drm);
	struct kvaccel_client *client = file->driver_priv;
	struct drm_kvaccel_copy_submit *args = data;
	struct drm_kvaccel_copy_segment one, *user = NULL;
	struct drm_syncobj *out = NULL;
	struct kvaccel_job *job;
	size_t bytes;
	int ret;

	if (args->flags & ~KVACCEL_COPY_SUBMIT_FLAGS || args->pad)
		return -EINVAL;
	if (!args->count || args->count > KVACCEL_COPY_MAX_SEGMENTS)
		return -EINVAL;
	if (check_mul_overflow((size_t)args->count, sizeof(*user), &bytes))
		return -EINVAL;

	job = kzalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
	if (!job)
		return -ENOMEM;
	job->kdev = kdev;
	job->client_id = client->id;
	spin_lock_init(&job->lock);
	INIT_WORK(&job->start_work, kvaccel_job_start);

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

	if (args->in_syncobj) {
		ret = drm_syncobj_find_fence(file, args->in_syncobj, 0, 0, &job->in_fence);
		if (ret)
			goto err_release;
	}
	if (args->out_syncobj) {
		out = drm_syncobj_find(file, args->out_syncobj);
		if (!out) {
			ret = -ENOENT;
			goto err_release;
		}
	}
	ret = kvaccel_job_reserve_id(client, job);
	if (ret)
		goto err_put_out;

	/* The fence exists from here on; it pins the module while it lives. */
	__module_get(THIS_MODULE);
	dma_fence_init(&job->fence, &kvaccel_fence_ops, &job->lock,
		       dma_fence_context_alloc(1), 1);

	/* Published: nothing below allocates. */
	kvaccel_job_remember(client, job);
	args->job_id = job->id;
	if (out) {
		drm_syncobj_replace_fence(out, &job->fence);
		drm_syncobj_put(out);
	}
	if (user != &one)
		kvfree(user);
	/* The running job's reference, dropped by kvaccel_job_complete(). */
	dma_fence_get(&job->fence);
	if (!job->in_fence && !job->nr_vmaps && job->total <= KVACCEL_COPY_INLINE_MAX)
		kvaccel_copy_part_work(&job->parts[0].work);
	else if (!job->in_fence ||
		 dma_fence_add_callback(job->in_fence, &job->in_cb, kvaccel_job_in_fence_cb))
		queue_work(kdev->copy_wq, &job->start_work);
	args->status = dma_fence_get_status(&job->fence);
	/* The submitter's own reference from dma_fence_init(). */
	dma_fence_put(&job->fence);
	return 0;

err_put_out:
	if (out)
		drm_syncobj_put(out);
err_release:
	kvaccel_job_release_resources(job);
	if (user != &one)
		kvfree(user);
err_uncount:
	atomic_dec(&job->proc->copy_inflight);
	kvaccel_proc_put(job->proc);
err_free_job:
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
 * kvaccel_copy_client_init - set up a file's job history.
 * @client: the file.
 */
void kvaccel_copy_client_init(struct kvaccel_client *client)
{
	xa_init(&client->jobs);
	client->last_job_id = 0;
}

/**
 * kvaccel_copy_client_fini - a file closes: cancel its jobs that have not
 * started, forget its history. Started jobs finish; every fence signals.
 * @client: the file.
 */
void kvaccel_copy_client_fini(struct kvaccel_client *client)
{
	struct dma_fence *fence;
	unsigned long id;

	xa_for_each(&client->jobs, id, fence) {
		struct kvaccel_job *job = container_of(fence, struct kvaccel_job, fence);

		set_bit(KVACCEL_JOB_CANCELLED, &job->flags);
		xa_erase(&client->jobs, id);
		dma_fence_put(fence);
	}
	xa_destroy(&client->jobs);
}

/**
 * kvaccel_copy_init - create the copy workers.
 * @kdev: the device.
 * @workers: how many (0: one per CPU, at most 8).
 *
 * Return: 0 or -ENOMEM.
 */
int kvaccel_copy_init(struct kvaccel_device *kdev, unsigned int workers)
{
	if (!workers)
		workers = min(num_online_cpus(), 8U);
	kdev->copy_workers = min(workers, 64U);
	kdev->copy_wq = alloc_workqueue("kvaccel-copy", WQ_UNBOUND, kdev->copy_workers);
	return kdev->copy_wq ? 0 : -ENOMEM;
}

/**
 * kvaccel_copy_fini - destroy the copy workers (no job can be left: each
 * pins the module through its fence).
 * @kdev: the device.
 */
void kvaccel_copy_fini(struct kvaccel_device *kdev)
{
	destroy_workqueue(kdev->copy_wq);
}
