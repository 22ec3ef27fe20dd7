// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel - a copy job from the moment its fence is published to its
 * release.
 *
 *  start    the start work walks the job's dependencies (fixed at submit)
 *           in order: a signalled one is passed (its error becomes the
 *           job's), an unsignalled one gets the job's callback and the work
 *           returns; the callback queues the work again. Nothing sleeps.
 *           The timeout (copy_timeout_ms after submission) and the file's
 *           close (cancellation) also queue it, with a flag that makes it
 *           take the callback back and fail the job. Once it decides, the
 *           start work stops every waker (timer, cancellation list, queued
 *           rerun) and queues the parts, or signals the error.
 *  parts    copy their share; the last one to finish signals the fence.
 *  release  after the signal, outside any signalling section: drop the
 *           objects, dependencies, process and device; for a job that
 *           touched no import in the worker that signalled it, else on the
 *           release queue (ending CPU access to an import and unmapping it
 *           take the exporter's reservation lock, which a fence waiter may
 *           hold, so never on the copy queue).
 *
 * Everything between publication and the signal runs inside
 * dma_fence_begin_signalling() sections, allocates nothing and takes only
 * spinlocks and the workqueue's own locks. The fence is the job's
 * refcount; each live fence holds a reference on the module (an exported
 * sync_file can outlive everything else, and the fence's ops are module
 * code), dropped by its release.
 */
#include <linux/dma-buf.h>
#include <linux/dma-fence.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <drm/drm_drv.h>
#include <drm/drm_gem.h>

#include "kvaccel_compat.h"
#include "kvaccel_copy.h"
#include "kvaccel_drv.h"

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

const struct dma_fence_ops kvaccel_fence_ops = {
	.get_driver_name = kvaccel_fence_driver_name,
	.get_timeline_name = kvaccel_fence_timeline_name,
	.release = kvaccel_fence_release,
};

/**
 * kvaccel_import_vunmap - end the job's CPU access to an import and unmap it.
 * @v: the mapping.
 */
void kvaccel_import_vunmap(struct kvaccel_copy_vmap *v)
{
	struct dma_buf *dmabuf = to_kvaccel_import(v->obj)->dmabuf;

	if (v->cpu_access)
		dma_buf_end_cpu_access(dmabuf, v->dir);
	v->cpu_access = false;
#ifdef KVACCEL_HAVE_DMA_BUF_VMAP_UNLOCKED
	dma_buf_vunmap_unlocked(dmabuf, &v->map);
#else
	dma_buf_vunmap(dmabuf, &v->map);
#endif
}

/* kvfree() an array unless it is the job's own small storage. */
static void kvaccel_job_free_array(struct kvaccel_job *job, void *array)
{
	void *small = &job->small;

	if (array < small || array >= small + sizeof(job->small))
		kvfree(array);
}

/**
 * kvaccel_job_release_resources - drop everything the job holds but its
 * memory and its process. Process context; may sleep.
 * @job: the job, signalled or never published.
 */
void kvaccel_job_release_resources(struct kvaccel_job *job)
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
	for (i = 0; i < job->nr_deps; i++)
		dma_fence_put(job->deps[i]);
	kvfree(job->deps);
	kvaccel_job_free_array(job, job->vmaps);
	kvaccel_job_free_array(job, job->objs);
	kvaccel_job_free_array(job, job->parts);
	kvaccel_job_free_array(job, job->segs);
	job->deps = NULL;
	job->vmaps = NULL;
	job->objs = NULL;
	job->parts = NULL;
	job->segs = NULL;
	job->nr_deps = 0;
	job->nr_vmaps = 0;
	job->nr_objs = 0;
	job->nr_segs = 0;
}

/**
 * kvaccel_job_release - the job's fence has signalled: drop what it holds,
 * tell the events group of an error. Process context, outside any
 * signalling section; may sleep and allocate.
 * @job: the job; its running reference is dropped.
 */
void kvaccel_job_release(struct kvaccel_job *job)
{
	struct kvaccel_device *kdev = job->kdev;
	struct kvaccel_proc *proc = job->proc;

	if (job->error)
		kvaccel_notify_copy_error(job->kdev, job->client_id, proc,
					  job->id, job->error);
	kvaccel_job_release_resources(job);
	kvaccel_proc_put(proc);
	job->proc = NULL;
	kvaccel_copy_stats_put(job->stats);
	job->stats = NULL;
	/* The reference the running job held. */
	dma_fence_put(&job->fence);
	drm_dev_put(&kdev->drm);
}

static void kvaccel_job_release_work(struct work_struct *work)
{
	kvaccel_job_release(container_of(work, struct kvaccel_job, release_work));
}

/*
 * Signal the job's fence with its error; inside a signalling section. The
 * process's in-flight counts drop first, so a waiter woken by the signal
 * can submit again at once.
 */
static void kvaccel_job_signal(struct kvaccel_job *job)
{
	struct kvaccel_device *kdev = job->kdev;

	atomic_dec(&job->proc->copy_inflight);
	atomic64_sub(job->total, &job->proc->copy_bytes);
	if (job->error) {
		atomic64_inc(&kdev->copy_errors);
		dma_fence_set_error(&job->fence, job->error);
	}
	atomic64_inc(&kdev->copy_jobs);
	dma_fence_signal(&job->fence);
}

/*
 * The module's queues, shared by the devices it serves (one at a time; a
 * device can be unbound and bound again): the copy queue runs every step
 * of a job between the publication of its fence and its signal, so it may
 * be needed to make progress under memory pressure (WQ_MEM_RECLAIM) and
 * none of its items waits for another; the release queue takes the
 * releases that may sleep on locks fence waiters hold (those of jobs that
 * touch imports). Both belong to the module, so its unload waits for the
 * last item to return (a release may drop the module's last reference)
 * and a device's release may happen inside one.
 */
static struct workqueue_struct *kvaccel_copy_wq;
static struct workqueue_struct *kvaccel_release_wq;
static unsigned int kvaccel_copy_nr_workers;

/**
 * kvaccel_copy_module_init - create the queues (module load).
 * @workers: copy workers (0: one per CPU, at most 8; at most 64).
 *
 * Return: 0 or -ENOMEM.
 */
int kvaccel_copy_module_init(unsigned int workers)
{
	if (!workers)
		workers = min(num_online_cpus(), 8U);
	kvaccel_copy_nr_workers = min(workers, 64U);
	kvaccel_copy_wq = alloc_workqueue("kvaccel-copy", WQ_UNBOUND | WQ_MEM_RECLAIM,
					  kvaccel_copy_nr_workers);
	if (!kvaccel_copy_wq)
		return -ENOMEM;
	kvaccel_release_wq = alloc_workqueue("kvaccel-release", WQ_UNBOUND, 0);
	if (!kvaccel_release_wq) {
		destroy_workqueue(kvaccel_copy_wq);
		return -ENOMEM;
	}
	return 0;
}

/** kvaccel_copy_module_fini - destroy the queues (module unload). */
void kvaccel_copy_module_fini(void)
{
	destroy_workqueue(kvaccel_release_wq);
	destroy_workqueue(kvaccel_copy_wq);
}

/**
 * kvaccel_copy_queues - the copy queue and its number of workers.
 * @wq: Out: the queue.
 * @workers: Out: its workers.
 */
void kvaccel_copy_queues(struct workqueue_struct **wq, unsigned int *workers)
{
	*wq = kvaccel_copy_wq;
	*workers = kvaccel_copy_nr_workers;
}

/*
 * After the signal, outside the signalling section. A job that touched no
 * import holds only kvaccel objects, whose release takes no lock a fence
 * waiter can hold: release it here. Imports' end of CPU access and unmap
 * take the exporter's reservation lock: on the release queue.
 */
static void kvaccel_job_done(struct kvaccel_job *job)
{
	if (job->nr_vmaps)
		queue_work(kvaccel_release_wq, &job->release_work);
	else
		kvaccel_job_release(job);
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

/* Copy one part; true when it was the job's last (the fence has signalled). */
static bool kvaccel_part_run(struct kvaccel_copy_part *part)
{
	struct kvaccel_job *job = part->job;
	u64 start = part->start, len = part->len, base = 0, t0 = ktime_get_ns();
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
	atomic64_add(ktime_get_ns() - t0, &job->stats->busy_ns);

	if (!atomic_dec_and_test(&job->parts_left))
		return false;
	kvaccel_job_signal(job);
	return true;
}

static void kvaccel_copy_part_work(struct work_struct *work)
{
	struct kvaccel_copy_part *part = container_of(work, struct kvaccel_copy_part, work);
	struct kvaccel_job *job = part->job;
	bool cookie, last;

	cookie = dma_fence_begin_signalling();
	last = kvaccel_part_run(part);
	dma_fence_end_signalling(cookie);
	if (last)
		kvaccel_job_done(job);
}

static void kvaccel_job_dep_cb(struct dma_fence *fence, struct dma_fence_cb *cb)
{
	struct kvaccel_job *job = container_of(cb, struct kvaccel_job, dep_cb);

	/* Any context, under the signalling fence's lock: hand over. */
	queue_work(job->kdev->copy_wq, &job->start_work);
}

static void kvaccel_job_timeout(struct timer_list *t)
{
	struct kvaccel_job *job = from_timer(job, t, timeout);

	set_bit(KVACCEL_JOB_TIMEDOUT, &job->flags);
	queue_work(job->kdev->copy_wq, &job->start_work);
}

static int kvaccel_job_stop_reason(struct kvaccel_job *job)
{
	if (test_bit(KVACCEL_JOB_CANCELLED, &job->flags))
		return -ECANCELED;
	if (test_bit(KVACCEL_JOB_TIMEDOUT, &job->flags))
		return -ETIMEDOUT;
	return 0;
}

/*
 * Walk the dependencies from next_dep. Returns false when it armed the
 * callback on one that has not signalled (the start work runs again when
 * it does, or on timeout or cancellation), true when the wait is over:
 * every dependency signalled, or job->error says why not.
 */
static bool kvaccel_job_deps_done(struct kvaccel_job *job)
{
	int stop = kvaccel_job_stop_reason(job);

	if (test_and_clear_bit(KVACCEL_JOB_CB_ARMED, &job->flags) && stop) {
		/*
		 * Woken by the timeout or the close: take the callback back.
		 * If it is gone, it has run to its end (callbacks run under
		 * the fence's lock, which the removal takes), and the rerun it
		 * queued is dropped by kvaccel_job_stop_waiting().
		 */
		dma_fence_remove_callback(job->deps[job->next_dep], &job->dep_cb);
	}
	while (job->next_dep < job->nr_deps) {
		struct dma_fence *dep = job->deps[job->next_dep];
		int status;

		stop = kvaccel_job_stop_reason(job);
		if (stop) {
			job->error = stop;
			return true;
		}
		set_bit(KVACCEL_JOB_CB_ARMED, &job->flags);
		if (!dma_fence_add_callback(dep, &job->dep_cb, kvaccel_job_dep_cb))
			return false;
		clear_bit(KVACCEL_JOB_CB_ARMED, &job->flags);
		status = dma_fence_get_status(dep);
		if (status < 0) {
			job->error = status;
			return true;
		}
		job->next_dep++;
	}
	job->error = kvaccel_job_stop_reason(job);
	return true;
}

/*
 * The wait is over: nothing may queue the start work again. The timer is
 * stopped (and its run, if any, finished), the job leaves the file's list
 * under the lock the close takes, and a rerun already queued by any of
 * them or by the callback is dropped.
 */
static void kvaccel_job_stop_waiting(struct kvaccel_job *job)
{
	struct kvaccel_device *kdev = job->kdev;

	timer_delete_sync(&job->timeout);
	spin_lock(&kdev->jobs_lock);
	list_del_init(&job->pending);
	spin_unlock(&kdev->jobs_lock);
	cancel_work(&job->start_work);
}

static void kvaccel_job_start_work(struct work_struct *work)
{
	struct kvaccel_job *job = container_of(work, struct kvaccel_job, start_work);
	struct kvaccel_copy_part *parts;
	struct workqueue_struct *wq;
	bool cookie;
	u32 i, n;

	cookie = dma_fence_begin_signalling();
	if (!kvaccel_job_deps_done(job)) {
		dma_fence_end_signalling(cookie);
		return;
	}
	kvaccel_job_stop_waiting(job);
	if (!job->error && kvaccel_copy_should_fail(job->kdev))
		job->error = -EIO;
	if (job->error) {
		kvaccel_job_signal(job);
		dma_fence_end_signalling(cookie);
		kvaccel_job_done(job);
		return;
	}
	/*
	 * Once the last part is queued the job may finish and be released at
	 * any moment: read nothing of it after that.
	 */
	parts = job->parts;
	n = job->nr_parts;
	wq = job->kdev->copy_wq;
	for (i = 0; i < n; i++)
		queue_work(wq, &parts[i].work);
	dma_fence_end_signalling(cookie);
}

/**
 * kvaccel_job_init_run - set up the job's work items and timer.
 * @job: a new job.
 */
void kvaccel_job_init_run(struct kvaccel_job *job)
{
	INIT_LIST_HEAD(&job->pending);
	INIT_WORK(&job->start_work, kvaccel_job_start_work);
	INIT_WORK(&job->release_work, kvaccel_job_release_work);
	timer_setup(&job->timeout, kvaccel_job_timeout, 0);
}

/**
 * kvaccel_job_part_init - set up one part's work item.
 * @part: the part.
 */
void kvaccel_job_part_init(struct kvaccel_copy_part *part)
{
	INIT_WORK(&part->work, kvaccel_copy_part_work);
}

/**
 * kvaccel_job_start - a published job begins to wait for its dependencies.
 * Inside the submission's signalling section; allocates nothing.
 * @job: the job, on its file's pending list, holding the running reference.
 */
void kvaccel_job_start(struct kvaccel_job *job)
{
	if (job->nr_deps)
		mod_timer(&job->timeout,
			  jiffies + msecs_to_jiffies(kvaccel_copy_timeout_ms()));
	queue_work(job->kdev->copy_wq, &job->start_work);
}

/**
 * kvaccel_job_run_inline - copy a small job with nothing to wait for in the
 * submitting task, inside the submission's signalling section.
 * @job: the job, published, not on any list.
 *
 * Return: true if it ran (its fence has signalled; the caller releases it
 * with kvaccel_job_release() once out of the section), false if it must
 * be started.
 */
bool kvaccel_job_run_inline(struct kvaccel_job *job)
{
	if (job->nr_deps || job->nr_vmaps || job->total > KVACCEL_COPY_INLINE_MAX)
		return false;
	kvaccel_part_run(&job->parts[0]);
	return true;
}

/**
 * kvaccel_job_cancel - the job's file closes before the job started.
 * @job: the job, just taken off its file's list under
 *	kvaccel_device.jobs_lock, which the caller still holds.
 */
void kvaccel_job_cancel(struct kvaccel_job *job)
{
	lockdep_assert_held(&job->kdev->jobs_lock);
	set_bit(KVACCEL_JOB_CANCELLED, &job->flags);
	queue_work(job->kdev->copy_wq, &job->start_work);
}
