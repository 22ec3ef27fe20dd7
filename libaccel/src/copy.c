// SPDX-License-Identifier: MIT
/*
 * libaccel - copies on the module's copy engine and their fences.
 *
 * A fence is a DRM syncobj (from a per-device pool, reused) that receives
 * the job's dma_fence, plus the job's id for COPY_STATUS. A small copy the
 * kernel completed before COPY_SUBMIT returned (status 1) needs no wait at
 * all. Errors: a syncobj wait does not report them, so a finished fence's
 * state comes from COPY_STATUS or, once the file has forgotten the job,
 * from the status of a sync_file exported from the syncobj.
 */
#include <linux/sync_file.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct accel_fence {
	struct accel_device *dev;
	uint32_t syncobj;
	uint64_t job_id;
	atomic_int status;	/* 1 done, < 0 failed, 0 not known to be final */
	atomic_uint refs;	/* accel_fence_get() and the creator's */
};

struct accel_fence *accel_fence_get(struct accel_fence *fence)
{
	if (fence)
		atomic_fetch_add(&fence->refs, 1);
	return fence;
}

static int syncobj_get(struct accel_device *dev, uint32_t *handle)
{
	struct drm_syncobj_create c = { 0 };
	int ret;

	pthread_mutex_lock(&dev->lock);
	if (dev->nr_free) {
		*handle = dev->free_syncobjs[--dev->nr_free];
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	pthread_mutex_unlock(&dev->lock);
	ret = accel_ioctl(dev, DRM_IOCTL_SYNCOBJ_CREATE, &c);
	if (!ret)
		*handle = c.handle;
	return ret;
}

static void syncobj_put(struct accel_device *dev, uint32_t handle)
{
	struct drm_syncobj_destroy d = { .handle = handle };

	pthread_mutex_lock(&dev->lock);
	if (dev->nr_free < (int)(sizeof(dev->free_syncobjs) / sizeof(dev->free_syncobjs[0]))) {
		dev->free_syncobjs[dev->nr_free++] = handle;
		handle = 0;
	}
	pthread_mutex_unlock(&dev->lock);
	if (handle)
		accel_ioctl(dev, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
}

void accel_fence_pool_fini(struct accel_device *dev)
{
	/* Closing the device file destroys the syncobjs. */
	dev->nr_free = 0;
}

static struct accel_fence *copy_submit(struct accel_device *dev, const struct accel_copy_seg *segs,
				       uint32_t count, struct accel_fence *after, uint32_t flags)
{
	struct drm_kvaccel_copy_segment small[8], *k = small;
	struct drm_kvaccel_copy_submit cs = { 0 };
	struct accel_fence *f;
	uint32_t i;
	int ret;

	if (!dev || !segs || !count || count > KVACCEL_COPY_MAX_SEGMENTS ||
	    (after && after->dev != dev)) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->dev = dev;
	atomic_init(&f->refs, 1);
	if (count > 8) {
		k = calloc(count, sizeof(*k));
		if (!k) {
			free(f);
			return NULL;
		}
	}
	for (i = 0; i < count; i++) {
		const struct accel_copy_seg *s = &segs[i];

		if (!accel_obj_ok(s->src) || !accel_obj_ok(s->dst) ||
		    s->src->dev != dev || s->dst->dev != dev) {
			ret = -EINVAL;
			goto err;
		}
		k[i] = (struct drm_kvaccel_copy_segment) {
			.src_handle = s->src->handle, .dst_handle = s->dst->handle,
			.src_offset = s->src_offset, .dst_offset = s->dst_offset,
			.length = s->length,
		};
	}
	ret = syncobj_get(dev, &f->syncobj);
	if (ret)
		goto err;
	cs.flags = flags;
	cs.count = count;
	cs.segments = (uintptr_t)k;
	cs.out_syncobj = f->syncobj;
	/* A dependency known to have succeeded needs no waiting. */
	if (after && atomic_load(&after->status) != 1)
		cs.in_syncobj = after->syncobj;
	ret = accel_ioctl(dev, DRM_IOCTL_KVACCEL_COPY_SUBMIT, &cs);
	if (ret) {
		syncobj_put(dev, f->syncobj);
		goto err;
	}
	f->job_id = cs.job_id;
	atomic_store(&f->status, cs.status);
	if (k != small)
		free(k);
	return f;

err:
	if (k != small)
		free(k);
	free(f);
	errno = -ret;
	return NULL;
}

ACCEL_EXPORT struct accel_fence *accel_copy(struct accel_device *dev,
					    const struct accel_copy_seg *segs,
					    uint32_t count, struct accel_fence *after)
{
	return copy_submit(dev, segs, count, after, 0);
}

struct accel_fence *accel_copy_ordered(struct accel_device *dev, const struct accel_copy_seg *segs,
				       uint32_t count, struct accel_fence *after)
{
	uint32_t flags = dev && dev->info.caps & KVACCEL_CAP_COPY_IMPLICIT_SYNC ?
			 KVACCEL_COPY_SUBMIT_NO_IMPLICIT_WAIT : 0;

	return copy_submit(dev, segs, count, after, flags);
}

int accel_copy_chain(struct accel_device *dev, const struct accel_copy_seg *segs, size_t nr,
		     struct accel_fence **fence)
{
	struct accel_fence *f = NULL;
	size_t first = 0;
	int ret = 0;

	*fence = NULL;
	while (first < nr) {
		struct accel_fence *prev = f;
		uint64_t bytes = 0;
		uint32_t count = 0;

		/* A segment is at most a job's bytes: every job takes one at least. */
		while (first + count < nr && count < KVACCEL_COPY_MAX_SEGMENTS &&
		       bytes + segs[first + count].length <= KVACCEL_COPY_MAX_BYTES)
			bytes += segs[first + count++].length;
		f = count ? accel_copy_ordered(dev, segs + first, count, prev) : NULL;
		if (!f) {
			ret = count ? -errno : -EINVAL;
			/* Nothing may still write into what the caller frees. */
			if (prev)
				accel_fence_wait(prev, -1);
		}
		/* The kernel took the previous job's fence: its handle may go. */
		accel_fence_destroy(prev);
		if (ret)
			return ret;
		first += count;
	}
	*fence = f;
	return 0;
}

/* The state of a job the file may have forgotten: from a sync_file. */
static int sync_file_status(struct accel_fence *f)
{
	struct drm_syncobj_handle h = {
		.handle = f->syncobj, .flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
		.fd = -1,
	};
	struct sync_file_info info = { 0 };
	int ret;

	ret = accel_ioctl(f->dev, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);
	if (ret)
		return ret;
	ret = ioctl(h.fd, SYNC_IOC_FILE_INFO, &info) ? -errno : info.status;
	close(h.fd);
	return ret;
}

ACCEL_EXPORT int accel_fence_status(struct accel_fence *fence)
{
	struct drm_kvaccel_copy_status st = { 0 };
	int ret;

	if (!fence)
		return -EINVAL;
	ret = atomic_load(&fence->status);
	if (ret)
		return ret;
	st.job_id = fence->job_id;
	ret = accel_ioctl(fence->dev, DRM_IOCTL_KVACCEL_COPY_STATUS, &st);
	if (!ret)
		ret = st.status;
	else if (ret == -ENOENT)
		ret = sync_file_status(fence);
	else
		return ret;
	if (ret)
		atomic_store(&fence->status, ret);
	return ret;
}

/*
 * The absolute CLOCK_MONOTONIC deadline @timeout_ns from now (-1: none),
 * saturated at INT64_MAX: a huge timeout means forever, not a deadline
 * in the past.
 */
static int64_t deadline_ns(int64_t timeout_ns)
{
	struct timespec ts;
	int64_t now;

	if (timeout_ns < 0 || clock_gettime(CLOCK_MONOTONIC, &ts))
		return INT64_MAX;
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

ACCEL_EXPORT int accel_fence_wait(struct accel_fence *fence, int64_t timeout_ns)
{
	struct drm_syncobj_wait w = { 0 };
	int ret;

	if (!fence || timeout_ns < -1)
		return -EINVAL;
	ret = atomic_load(&fence->status);
	if (!ret) {
		w.handles = (uintptr_t)&fence->syncobj;
		w.count_handles = 1;
		w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
		w.timeout_nsec = deadline_ns(timeout_ns);
		ret = accel_ioctl(fence->dev, DRM_IOCTL_SYNCOBJ_WAIT, &w);
		if (ret)
			return ret;	/* -ETIME on timeout */
		ret = accel_fence_status(fence);
	}
	if (ret == 0)
		return -EIO;	/* signalled yet pending: cannot happen */
	return ret == 1 ? 0 : ret;
}

ACCEL_EXPORT int accel_fence_fd(struct accel_fence *fence)
{
	struct drm_syncobj_handle h = {
		.flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, .fd = -1,
	};
	int ret;

	if (!fence)
		return -EINVAL;
	h.handle = fence->syncobj;
	ret = accel_ioctl(fence->dev, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h);
	return ret ? ret : h.fd;
}

ACCEL_EXPORT void accel_fence_destroy(struct accel_fence *fence)
{
	if (!fence || atomic_fetch_sub(&fence->refs, 1) != 1)
		return;
	syncobj_put(fence->dev, fence->syncobj);
	free(fence);
}
