/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvaccel - the copy engine's job, shared by its three files:
 *   kvaccel_copy.c       COPY_SUBMIT and COPY_STATUS: validate, resolve,
 *                        publish; per-file history and cancellation.
 *   kvaccel_copy_sync.c  implicit synchronisation: the reservation objects
 *                        a job touches, its dependencies, its fence in them.
 *   kvaccel_copy_run.c   what happens once the fence is published: waiting
 *                        for dependencies through callbacks (with a timeout
 *                        and cancellation), the parts, the signal, release.
 *
 * The fence model is in Documentation/copy-engine.rst.
 */
#ifndef _KVACCEL_COPY_H_
#define _KVACCEL_COPY_H_

#include <linux/dma-direction.h>
#include <linux/dma-fence.h>
#include <linux/iosys-map.h>
#include <linux/list.h>
#include <linux/sizes.h>
#include <linux/timer.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/ww_mutex.h>

struct drm_gem_object;
struct kvaccel_client;
struct kvaccel_copy_stats;
struct kvaccel_device;
struct kvaccel_proc;
struct kvaccel_region;
struct kvaccel_slot;

/* Parts smaller than this are not worth another worker. */
#define KVACCEL_COPY_PART_MIN	SZ_1M
/*
 * A job this small with nothing to wait for is copied in the submitting
 * task: a worker's wake-up would cost more than the copy.
 */
#define KVACCEL_COPY_INLINE_MAX	SZ_64K

/* Objects a job may touch before its implicit sync allocates. */
#define KVACCEL_COPY_SYNC_SMALL	8

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

/**
 * struct kvaccel_copy_seg - one segment after resolution.
 * @src: where the bytes come from.
 * @dst: where they go.
 * @length: how many.
 */
struct kvaccel_copy_seg {
	struct kvaccel_copy_end src, dst;
	u64 length;
};

/**
 * struct kvaccel_copy_part - one worker's share of a job's bytes.
 * @work: the work item on the copy queue.
 * @job: the job.
 * @start: first byte of the share in the job's concatenated segments.
 * @len: bytes in the share.
 */
struct kvaccel_copy_part {
	struct work_struct work;
	struct kvaccel_job *job;
	u64 start, len;
};

/**
 * struct kvaccel_copy_vmap - an import the job accesses with the CPU.
 * @obj: the import (referenced through the job's objects).
 * @map: its kernel mapping.
 * @dir: the CPU access direction given to dma_buf_begin_cpu_access().
 * @cpu_access: dma_buf_begin_cpu_access() succeeded (end it at release).
 */
struct kvaccel_copy_vmap {
	struct drm_gem_object *obj;
	struct iosys_map map;
	enum dma_data_direction dir;
	bool cpu_access;
};

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

/* Bits of kvaccel_job.flags. */
enum {
	/* The file closed before the job started. */
	KVACCEL_JOB_CANCELLED,
	/* A dependency did not signal within copy_timeout_ms. */
	KVACCEL_JOB_TIMEDOUT,
	/* @dep_cb is (or was until it ran) on deps[next_dep]. */
	KVACCEL_JOB_CB_ARMED,
};

/**
 * struct kvaccel_job - a copy job; its memory is freed by its fence's release.
 * @fence: the completion fence; its refcount is the job's.
 * @lock: the fence's lock.
 * @kdev: the device.
 * @proc: the process charged for the job in flight (referenced).
 * @id: the job's id in its file.
 * @client_id: the id of the file (netlink client id).
 * @stats: the file's copy statistics (referenced until the release).
 * @pending: entry in kvaccel_client.pending until the job starts; under
 *	kvaccel_device.jobs_lock.
 * @flags: KVACCEL_JOB_* bits.
 * @error: the job's first error, set before the fence signals.
 * @deps: every fence the job waits for (referenced), fixed before the
 *	job's fence is published: the input syncobj's and the reservation
 *	fences of the objects it touches.
 * @nr_deps: entries in @deps.
 * @next_dep: the first entry of @deps not known to have signalled; only
 *	the start work reads and advances it.
 * @dep_cb: the callback on deps[next_dep] while the job waits for it.
 * @timeout: fails the job with -ETIMEDOUT when its dependencies have not
 *	all signalled within copy_timeout_ms of the submission.
 * @start_work: waits for the dependencies (one callback at a time), then
 *	queues the parts; queued by the submission, the callback, the
 *	timeout and the cancellation.
 * @release_work: drops what the job holds, after its fence signalled (on
 *	the release queue, for jobs that touched imports).
 * @segs: the segments.
 * @nr_segs: entries in @segs.
 * @total: bytes in all segments.
 * @parts: the workers' shares.
 * @nr_parts: entries in @parts.
 * @parts_left: parts not finished yet.
 * @objs: every GEM object the job references (looked up by handle).
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
	struct kvaccel_copy_stats *stats;
	struct list_head pending;
	unsigned long flags;
	int error;
	struct dma_fence **deps;
	u32 nr_deps;
	u32 next_dep;
	struct dma_fence_cb dep_cb;
	struct timer_list timeout;
	struct work_struct start_work;
	struct work_struct release_work;
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

/**
 * struct kvaccel_copy_sync - the reservation objects of one job, locked
 *	by its submission from before its dependencies are collected until
 *	its fence is in them.
 * @objs: each object the job touches, once (referenced by the job).
 * @write: bit i set when the job writes @objs[i].
 * @count: entries in @objs.
 * @ctx: the ww acquire context of the locks.
 * @small_objs: storage of @objs for a job that touches few objects (the
 *	common small copy then allocates nothing here).
 * @small_write: storage of @write for the same.
 */
struct kvaccel_copy_sync {
	struct drm_gem_object **objs;
	unsigned long *write;
	u32 count;
	struct ww_acquire_ctx ctx;
	struct drm_gem_object *small_objs[KVACCEL_COPY_SYNC_SMALL];
	unsigned long small_write;
};

/* kvaccel_copy_sync.c */
int kvaccel_copy_sync_lock(struct kvaccel_job *job, struct kvaccel_copy_sync *sync);
int kvaccel_copy_sync_collect(struct kvaccel_job *job, struct kvaccel_copy_sync *sync,
			      struct dma_fence *in_fence, bool implicit);
void kvaccel_copy_sync_publish(struct kvaccel_job *job, struct kvaccel_copy_sync *sync);
void kvaccel_copy_sync_unlock(struct kvaccel_copy_sync *sync);
void kvaccel_copy_sync_fini(struct kvaccel_copy_sync *sync);

/* kvaccel_copy_run.c */
void kvaccel_job_init_run(struct kvaccel_job *job);
void kvaccel_job_part_init(struct kvaccel_copy_part *part);
void kvaccel_job_start(struct kvaccel_job *job);
bool kvaccel_job_run_inline(struct kvaccel_job *job);
void kvaccel_job_release(struct kvaccel_job *job);
void kvaccel_job_cancel(struct kvaccel_job *job);
void kvaccel_job_release_resources(struct kvaccel_job *job);
void kvaccel_import_vunmap(struct kvaccel_copy_vmap *v);
extern const struct dma_fence_ops kvaccel_fence_ops;

#endif /* _KVACCEL_COPY_H_ */
