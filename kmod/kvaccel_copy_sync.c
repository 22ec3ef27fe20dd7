// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - implicit synchronisation of copy jobs.
 *
 * A job reads the objects its segments copy from and writes those they
 * copy to: regions, spaces (the space itself and every region bound in the
 * range, as resolved at submit) and imports. Before its fence is published
 * the submission locks the reservation object of each (once, however many
 * segments name it), reserves a fence slot in it and collects the fences
 * the job must wait for: of an object it writes, every fence (readers and
 * writers, DMA_RESV_USAGE_READ); of one it only reads, the writers'
 * (DMA_RESV_USAGE_WRITE). After the fence is initialised it is added to
 * each object with the usage of the job's access, then the locks are
 * dropped. Another driver that honours implicit sync thus waits for the
 * copy, and the copy for it; no fence is ever looked up later, so a job
 * cannot come to wait for itself.
 */
#include <linux/bitmap.h>
#include <linux/dma-resv.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <drm/drm_gem.h>

#include "kvaccel_copy.h"
#include "kvaccel_drv.h"

struct kvaccel_sync_entry {
	struct drm_gem_object *obj;
	bool write;
};

static int kvaccel_sync_entry_cmp(const void *a, const void *b)
{
	const struct kvaccel_sync_entry *x = a, *y = b;

	if (x->obj == y->obj)
		return 0;
	return x->obj < y->obj ? -1 : 1;
}

/* The regions bound in a space end's snapshot, each run of one region once. */
static u32 kvaccel_sync_add_snap(struct kvaccel_sync_entry *e, u32 n,
				 const struct kvaccel_copy_end *end, bool write)
{
	struct kvaccel_region *last = NULL;
	u32 i;

	for (i = 0; i < end->nr_snap; i++) {
		if (end->snap[i].region == last)
			continue;
		last = end->snap[i].region;
		e[n].obj = &last->base;
		e[n].write = write;
		n++;
	}
	return n;
}

/* Every object the job touches, sorted, each once (written if any segment writes it). */
static int kvaccel_sync_gather(struct kvaccel_job *job, struct kvaccel_copy_sync *sync)
{
	struct kvaccel_sync_entry small[KVACCEL_COPY_SYNC_SMALL], *e = small;
	u64 max = job->nr_objs;
	u32 i, n = 0, u;

	for (i = 0; i < job->nr_segs; i++)
		max += job->segs[i].src.nr_snap + job->segs[i].dst.nr_snap;
	if (max > U32_MAX)
		return -EINVAL;
	if (max > ARRAY_SIZE(small))
		e = kvmalloc_array(max, sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	/* kvaccel_job_build() looked up each segment's source, then its destination. */
	for (i = 0; i < job->nr_objs; i++) {
		e[n].obj = job->objs[i];
		e[n].write = i & 1;
		n++;
	}
	for (i = 0; i < job->nr_segs; i++) {
		n = kvaccel_sync_add_snap(e, n, &job->segs[i].src, false);
		n = kvaccel_sync_add_snap(e, n, &job->segs[i].dst, true);
	}
	sort(e, n, sizeof(*e), kvaccel_sync_entry_cmp, NULL);

	for (i = 0, u = 0; i < n; i++) {
		if (u && e[u - 1].obj == e[i].obj)
			e[u - 1].write |= e[i].write;
		else
			e[u++] = e[i];
	}
	if (u <= KVACCEL_COPY_SYNC_SMALL) {
		sync->objs = sync->small_objs;
		sync->write = &sync->small_write;
	} else {
		sync->objs = kvmalloc_array(u, sizeof(*sync->objs), GFP_KERNEL);
		sync->write = bitmap_zalloc(u, GFP_KERNEL);
	}
	if (!sync->objs || !sync->write) {
		if (e != small)
			kvfree(e);
		return -ENOMEM;
	}
	for (i = 0; i < u; i++) {
		sync->objs[i] = e[i].obj;
		if (e[i].write)
			__set_bit(i, sync->write);
	}
	sync->count = u;
	if (e != small)
		kvfree(e);
	return 0;
}

/**
 * kvaccel_copy_sync_lock - find the objects a built job touches and lock
 * their reservation objects.
 * @job: the job, its segments resolved.
 * @sync: filled in; kvaccel_copy_sync_fini() frees it in every case.
 *
 * Return: 0 with every reservation object locked, or -ENOMEM, -EINTR
 * (a signal while waiting for a lock); nothing is locked on error.
 */
int kvaccel_copy_sync_lock(struct kvaccel_job *job, struct kvaccel_copy_sync *sync)
{
	int ret;

	memset(sync, 0, sizeof(*sync));
	ret = kvaccel_sync_gather(job, sync);
	if (ret)
		return ret;
	ret = drm_gem_lock_reservations(sync->objs, sync->count, &sync->ctx);
	if (ret)
		sync->count = 0;
	return ret;
}

static enum dma_resv_usage kvaccel_sync_wait_usage(struct kvaccel_copy_sync *sync, u32 i)
{
	return dma_resv_usage_rw(test_bit(i, sync->write));
}

/**
 * kvaccel_copy_sync_collect - reserve the job's fence slots and collect
 * its dependencies, under the locks.
 * @job: the job; its deps are filled in (and dropped by its release).
 * @sync: the locked objects.
 * @in_fence: the input syncobj's fence or NULL; its reference passes to
 *	the job in every case.
 * @implicit: wait for the reservation fences (not
 *	%KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT).
 *
 * Every reservation fence that has not signalled yet becomes a dependency
 * (if @implicit), and the input fence always does (its error, if any, is
 * the job's).
 *
 * Return: 0 or -ENOMEM.
 */
int kvaccel_copy_sync_collect(struct kvaccel_job *job, struct kvaccel_copy_sync *sync,
			      struct dma_fence *in_fence, bool implicit)
{
	struct dma_resv_iter cursor;
	struct dma_fence *fence;
	u32 i, n = in_fence ? 1 : 0;
	int ret;

	for (i = 0; i < sync->count; i++) {
		struct dma_resv *resv = sync->objs[i]->resv;

		dma_resv_assert_held(resv);
		ret = dma_resv_reserve_fences(resv, 1);
		if (ret)
			goto err;
		if (!implicit)
			continue;
		dma_resv_for_each_fence(&cursor, resv, kvaccel_sync_wait_usage(sync, i), fence)
			if (!dma_fence_is_signaled(fence))
				n++;
	}
	if (!n)
		return 0;
	job->deps = kvmalloc_array(n, sizeof(*job->deps), GFP_KERNEL_ACCOUNT);
	if (!job->deps) {
		ret = -ENOMEM;
		goto err;
	}
	if (in_fence)
		job->deps[job->nr_deps++] = in_fence;
	/* Under the locks no fence is added: the count can only have shrunk. */
	for (i = 0; implicit && i < sync->count; i++) {
		dma_resv_for_each_fence(&cursor, sync->objs[i]->resv,
					kvaccel_sync_wait_usage(sync, i), fence) {
			if (job->nr_deps < n && !dma_fence_is_signaled(fence))
				job->deps[job->nr_deps++] = dma_fence_get(fence);
		}
	}
	return 0;

err:
	if (in_fence)
		dma_fence_put(in_fence);
	return ret;
}

/**
 * kvaccel_copy_sync_publish - add the job's (initialised) fence to every
 * object it touches: write usage where it writes, read usage where it only
 * reads. Allocates nothing: the slots were reserved.
 * @job: the job.
 * @sync: the locked objects.
 */
void kvaccel_copy_sync_publish(struct kvaccel_job *job, struct kvaccel_copy_sync *sync)
{
	u32 i;

	for (i = 0; i < sync->count; i++)
		dma_resv_add_fence(sync->objs[i]->resv, &job->fence,
				   test_bit(i, sync->write) ? DMA_RESV_USAGE_WRITE :
							      DMA_RESV_USAGE_READ);
}

/**
 * kvaccel_copy_sync_unlock - unlock the reservation objects.
 * @sync: the locked objects.
 */
void kvaccel_copy_sync_unlock(struct kvaccel_copy_sync *sync)
{
	if (sync->count)
		drm_gem_unlock_reservations(sync->objs, sync->count, &sync->ctx);
	sync->count = 0;
}

/**
 * kvaccel_copy_sync_fini - free what kvaccel_copy_sync_lock() allocated.
 * @sync: unlocked.
 */
void kvaccel_copy_sync_fini(struct kvaccel_copy_sync *sync)
{
	if (sync->objs != sync->small_objs)
		kvfree(sync->objs);
	if (sync->write != &sync->small_write)
		bitmap_free(sync->write);
	sync->objs = NULL;
	sync->write = NULL;
}
