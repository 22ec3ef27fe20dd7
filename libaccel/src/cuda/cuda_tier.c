// SPDX-License-Identifier: MIT
/*
 * libaccel - the driver side of a device tier (cuda_tier.h).
 *
 * Lock: t->lock protects the pool, the chunk table, the peers, the copy
 * scratch arrays and the event ring. Driver calls are made with it held:
 * none of them blocks for long except the event waits and the stream
 * synchronisation of a failed copy, which drop it (the stream
 * synchronisations of unmap and window_free keep it: they must exclude
 * new copies).
 *
 * Context: every entry point that calls the driver pushes the tier's
 * primary context on the calling thread's stack first (ctx_push) and pops
 * it before it returns, on every path (ctx_pop), so the caller's current
 * context is the same after the call as before. Nothing calls
 * cuCtxSetCurrent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_loader.h"
#include "cuda_tier.h"

#define TIER_EVENTS	64
#define TIER_MAX_PEERS	16
/*
 * Runs per cuMemcpyBatchAsync call: the driver documents no limit; this
 * bounds what one call builds and keeps a failure's blast radius small.
 */
#define TIER_BATCH_MAX	4096

struct accel_cuda_tier {
	const struct accel_cuda *cu;
	const struct accel_cuda_api *api;
	pthread_mutex_t lock;
	cu_device dev;
	int ordinal;
	cu_context ctx;
	cu_stream stream;
	cu_deviceptr base;
	uint64_t size, chunk;
	unsigned int nr_slots;		/* chunks the range holds */
	cu_mem_handle *slots;		/* chunk mapped at each slot, or 0 */
	cu_mem_handle *pool;		/* free chunks */
	unsigned int nr_free, nr_alive, max_chunks;
	int peers[TIER_MAX_PEERS];
	unsigned int nr_peers;
	bool dmabuf;
	bool batch;	/* cuMemcpyBatchAsync there and not refused yet */
	/* Tickets: ticket n's event is events[n % TIER_EVENTS]. */
	cu_event events[TIER_EVENTS];
	uint64_t next_ticket, done_below;	/* tickets < done_below are done */
	/* The host bounce buffer for staged GPU-to-GPU copies (chunk-sized). */
	void *bounce;
	/* Scratch for one batch. */
	cu_deviceptr *dsts, *srcs;
	size_t *sizes, room;
	struct accel_cuda_tier_stats stats;
};

/* Make the tier's context current on this thread, on top of the caller's. */
static int ctx_push(struct accel_cuda_tier *t)
{
	return accel_cuda_errno(t->api->cuCtxPushCurrent(t->ctx));
}

/* Undo ctx_push(): returns @ret, or the pop's error where @ret is 0. */
static int ctx_pop(struct accel_cuda_tier *t, int ret)
{
	cu_context c;
	int err = accel_cuda_errno(t->api->cuCtxPopCurrent(&c));

	return ret ? ret : err;
}

static void prop_init(const struct accel_cuda_tier *t, struct cu_mem_allocation_prop *p)
{
	memset(p, 0, sizeof(*p));
	p->type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p->requested_handle_types = CU_MEM_HANDLE_TYPE_NONE;
	p->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p->location.id = t->ordinal;
	p->alloc_flags.gpu_direct_rdma_capable = t->dmabuf;
}

/* Make [ptr, ptr + len) readable and writable by the device and its peers. */
static int set_access(struct accel_cuda_tier *t, cu_deviceptr ptr, size_t len)
{
	struct cu_mem_access_desc desc[1 + TIER_MAX_PEERS];
	unsigned int i, n = 0;

	desc[n].location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	desc[n].location.id = t->ordinal;
	desc[n++].flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	for (i = 0; i < t->nr_peers; i++) {
		desc[n].location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		desc[n].location.id = t->peers[i];
		desc[n++].flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	}
	return accel_cuda_errno(t->api->cuMemSetAccess(ptr, len, desc, n));
}

/* One more chunk into the pool. Called with t->lock held. */
static int pool_grow(struct accel_cuda_tier *t)
{
	struct cu_mem_allocation_prop prop;
	cu_mem_handle h;
	int ret;

	if (t->nr_alive >= t->max_chunks)
		return -ENOMEM;
	prop_init(t, &prop);
	ret = accel_cuda_errno(t->api->cuMemCreate(&h, t->chunk, &prop, 0));
	if (ret)
		return ret;
	t->pool[t->nr_free++] = h;
	t->nr_alive++;
	return 0;
}

int accel_cuda_tier_prealloc(struct accel_cuda_tier *t, unsigned int n)
{
	int ret = 0;

	if (!t)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret) {
		while (!ret && t->nr_free < n)
			ret = pool_grow(t);
		ret = ctx_pop(t, ret);
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

static void tier_free(struct accel_cuda_tier *t)
{
	unsigned int i;

	if (t->ctx) {
		/* Tear down even where the push fails: most calls need no context. */
		bool pushed = !ctx_push(t);

		if (t->stream)
			t->api->cuStreamSynchronize(t->stream);
		for (i = 0; t->slots && i < t->nr_slots; i++) {
			if (!t->slots[i])
				continue;
			t->api->cuMemUnmap(t->base + i * t->chunk, t->chunk);
			t->api->cuMemRelease(t->slots[i]);
		}
		for (i = 0; t->pool && i < t->nr_free; i++)
			t->api->cuMemRelease(t->pool[i]);
		if (t->base)
			t->api->cuMemAddressFree(t->base, t->size);
		for (i = 0; i < TIER_EVENTS; i++)
			if (t->events[i])
				t->api->cuEventDestroy(t->events[i]);
		if (t->stream)
			t->api->cuStreamDestroy(t->stream);
		if (t->bounce)
			t->api->cuMemHostUnregister(t->bounce);
		if (pushed)
			ctx_pop(t, 0);
		t->api->cuDevicePrimaryCtxRelease(t->dev);
	}
	free(t->bounce);
	free(t->slots);
	free(t->pool);
	free(t->dsts);
	free(t->srcs);
	free(t->sizes);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int accel_cuda_tier_create(const struct accel_cuda_tier_opts *o, struct accel_cuda_tier **out,
			   char *why, size_t len)
{
	struct cu_mem_allocation_prop prop;
	struct accel_cuda_tier *t;
	size_t gran = 0;
	int err, vmm = 0, dmabuf = 0, i;
	bool pushed = false;

	if (!o || !out || (!o->reserve && !o->stream_only) || (o->reserve && o->stream_only) ||
	    o->device < 0)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->cu = accel_cuda_load(&err, why, len);
	if (!t->cu) {
		free(t);
		return err;
	}
	t->api = &t->cu->api;
	if (o->device >= t->cu->devices) {
		snprintf(why, len, "no CUDA device %d (%d present)", o->device, t->cu->devices);
		free(t);
		return -ENODEV;
	}
	t->ordinal = o->device;
	err = accel_cuda_errno(t->api->cuDeviceGet(&t->dev, o->device));
	if (!err)
		err = accel_cuda_errno(t->api->cuDeviceGetAttribute(&vmm,
					CU_DEVICE_ATTRIBUTE_VMM_SUPPORTED, t->dev));
	if (!err && !vmm && !o->stream_only) {
		snprintf(why, len, "CUDA device %d has no virtual memory management", o->device);
		free(t);
		return -ENODEV;
	}
	if (!err)
		err = accel_cuda_errno(t->api->cuDevicePrimaryCtxRetain(&t->ctx, t->dev));
	if (err) {
		snprintf(why, len, "CUDA device %d: %s", o->device, strerror(-err));
		free(t);
		return err;
	}
	if (t->api->cuMemGetHandleForAddressRange &&
	    !t->api->cuDeviceGetAttribute(&dmabuf, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, t->dev))
		t->dmabuf = dmabuf;
	err = ctx_push(t);
	pushed = !err;
	prop_init(t, &prop);
	if (!err)
		err = accel_cuda_errno(t->api->cuMemGetAllocationGranularity(&gran, &prop,
						CU_MEM_ALLOC_GRANULARITY_MINIMUM));
	if (!err && !gran)
		err = -EIO;
	if (err)
		goto fail;
	t->chunk = gran;
	t->size = (o->reserve + gran - 1) / gran * gran;
	t->nr_slots = (unsigned int)(t->size / gran);
	t->max_chunks = o->max_chunks && o->max_chunks < t->nr_slots ? o->max_chunks :
			t->nr_slots;
	t->slots = calloc(t->nr_slots ? t->nr_slots : 1, sizeof(*t->slots));
	t->pool = calloc(t->nr_slots ? t->nr_slots : 1, sizeof(*t->pool));
	if (!t->slots || !t->pool) {
		err = -ENOMEM;
		goto fail;
	}
	if (t->size)
		err = accel_cuda_errno(t->api->cuMemAddressReserve(&t->base, t->size, gran, 0,
								   0));
	if (!err)
		err = accel_cuda_errno(t->api->cuStreamCreate(&t->stream, CU_STREAM_NON_BLOCKING));
	for (i = 0; !err && i < TIER_EVENTS; i++)
		err = accel_cuda_errno(t->api->cuEventCreate(&t->events[i],
							     CU_EVENT_BLOCKING_SYNC |
							     CU_EVENT_DISABLE_TIMING));
	while (!err && t->nr_free < o->prealloc && t->nr_free < t->max_chunks)
		err = pool_grow(t);
	if (err)
		goto fail;
	t->next_ticket = 1;
	t->done_below = 1;
	t->stats.chunk_size = t->chunk;
	t->batch = t->api->cuMemcpyBatchAsync != NULL;
	t->stats.dmabuf = t->dmabuf;
	err = ctx_pop(t, 0);
	pushed = false;
	if (err)
		goto fail;
	*out = t;
	return 0;

fail:
	snprintf(why, len, "CUDA device %d: setting up the tier: %s", o->device, strerror(-err));
	if (pushed)
		ctx_pop(t, 0);
	tier_free(t);
	return err;
}

void accel_cuda_tier_destroy(struct accel_cuda_tier *t)
{
	if (t)
		tier_free(t);
}

cu_deviceptr accel_cuda_tier_base(const struct accel_cuda_tier *t)
{
	return t ? t->base : 0;
}

uint64_t accel_cuda_tier_size(const struct accel_cuda_tier *t)
{
	return t ? t->size : 0;
}

uint64_t accel_cuda_tier_chunk_size(const struct accel_cuda_tier *t)
{
	return t ? t->chunk : 0;
}

static bool range_ok(const struct accel_cuda_tier *t, uint64_t off, uint64_t len)
{
	return len && !(off % t->chunk) && !(len % t->chunk) && off <= t->size &&
	       len <= t->size - off;
}

int accel_cuda_tier_map(struct accel_cuda_tier *t, uint64_t off, uint64_t len)
{
	unsigned int first, n, i, need = 0;
	bool *filled;
	int ret;

	if (!t || !range_ok(t, off, len))
		return -EINVAL;
	first = (unsigned int)(off / t->chunk);
	n = (unsigned int)(len / t->chunk);
	filled = calloc(n, sizeof(*filled));
	if (!filled)
		return -ENOMEM;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		free(filled);
		return ret;
	}
	for (i = first; i < first + n; i++)
		need += !t->slots[i];
	/* The pool ran short: grow it here (slow, but not wrong), all or nothing. */
	while (!ret && t->nr_free < need)
		ret = pool_grow(t);
	for (i = first; !ret && i < first + n; i++) {
		cu_deviceptr p = t->base + (cu_deviceptr)i * t->chunk;
		cu_mem_handle h;

		if (t->slots[i])
			continue;
		h = t->pool[--t->nr_free];
		ret = accel_cuda_errno(t->api->cuMemMap(p, t->chunk, 0, h, 0));
		if (!ret) {
			ret = set_access(t, p, t->chunk);
			if (ret)
				t->api->cuMemUnmap(p, t->chunk);
		}
		if (ret) {
			t->pool[t->nr_free++] = h;
			break;
		}
		t->slots[i] = h;
		filled[i - first] = true;
	}
	/* A failure part way: undo what this call mapped. */
	for (i = first; ret && i < first + n; i++) {
		if (!filled[i - first])
			continue;
		t->api->cuMemUnmap(t->base + (cu_deviceptr)i * t->chunk, t->chunk);
		t->pool[t->nr_free++] = t->slots[i];
		t->slots[i] = 0;
	}
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	free(filled);
	return ret;
}

int accel_cuda_tier_unmap(struct accel_cuda_tier *t, uint64_t off, uint64_t len)
{
	unsigned int first, n, i;
	int ret;

	if (!t || !range_ok(t, off, len))
		return -EINVAL;
	first = (unsigned int)(off / t->chunk);
	n = (unsigned int)(len / t->chunk);
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	/* Copies in flight may still read or write the range. */
	ret = accel_cuda_errno(t->api->cuStreamSynchronize(t->stream));
	for (i = first; !ret && i < first + n; i++) {
		if (!t->slots[i])
			continue;
		ret = accel_cuda_errno(t->api->cuMemUnmap(t->base + (cu_deviceptr)i * t->chunk,
							  t->chunk));
		if (ret)
			break;
		t->pool[t->nr_free++] = t->slots[i];
		t->slots[i] = 0;
	}
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Chunk @i of a run: @chunks[i], or @first + i without a list. */
static unsigned int run_chunk(const uint32_t *chunks, unsigned int first, unsigned int i)
{
	return chunks ? chunks[i] : first + i;
}

/*
 * Map the tier's mapped chunks of a run (run_chunk()) at [@at, @at + n
 * chunks) with the tier's access; undone on failure. Lock held, context
 * pushed, every chunk checked mapped.
 */
static int alias_locked(struct accel_cuda_tier *t, const uint32_t *chunks, unsigned int first,
			unsigned int n, cu_deviceptr at)
{
	unsigned int i, done = 0;
	int ret = 0;

	for (i = 0; !ret && i < n; i++) {
		ret = accel_cuda_errno(t->api->cuMemMap(at + (cu_deviceptr)i * t->chunk, t->chunk, 0,
							t->slots[run_chunk(chunks, first, i)],
							0));
		if (!ret)
			done++;
	}
	if (!ret)
		ret = set_access(t, at, (size_t)n * t->chunk);
	for (i = 0; ret && i < done; i++)
		t->api->cuMemUnmap(at + (cu_deviceptr)i * t->chunk, t->chunk);
	return ret;
}

/* Lock @t and check a run's chunks are in range and mapped: 0 (locked) or -EINVAL. */
static int lock_run(struct accel_cuda_tier *t, const uint32_t *chunks, unsigned int first,
		    unsigned int n)
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < n; i++) {
		unsigned int c = run_chunk(chunks, first, i);

		if (c >= t->nr_slots || !t->slots[c]) {
			pthread_mutex_unlock(&t->lock);
			return -EINVAL;
		}
	}
	return 0;
}

int accel_cuda_tier_window(struct accel_cuda_tier *t, const uint32_t *chunks, unsigned int n,
			   cu_deviceptr *ptr)
{
	cu_deviceptr w = 0;
	int ret;

	if (!t || !chunks || !n || !ptr || n > t->nr_slots)
		return -EINVAL;
	ret = lock_run(t, chunks, 0, n);
	if (ret)
		return ret;
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	ret = accel_cuda_errno(t->api->cuMemAddressReserve(&w, (size_t)n * t->chunk, t->chunk, 0,
							   0));
	if (!ret) {
		ret = alias_locked(t, chunks, 0, n, w);
		if (ret)
			t->api->cuMemAddressFree(w, (size_t)n * t->chunk);
		else
			*ptr = w;
	}
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_window_free(struct accel_cuda_tier *t, cu_deviceptr ptr, unsigned int n)
{
	unsigned int i;
	int ret;

	if (!t || !ptr || !n)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	/* Copies in flight may still use the window. */
	ret = accel_cuda_errno(t->api->cuStreamSynchronize(t->stream));
	for (i = 0; !ret && i < n; i++)
		ret = accel_cuda_errno(t->api->cuMemUnmap(ptr + (cu_deviceptr)i * t->chunk,
							  t->chunk));
	if (!ret)
		ret = accel_cuda_errno(t->api->cuMemAddressFree(ptr, (size_t)n * t->chunk));
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_reserve(struct accel_cuda_tier *t, uint64_t len, cu_deviceptr *ptr)
{
	int ret;

	if (!t || !len || len % t->chunk || !ptr)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemAddressReserve(ptr, len, t->chunk,
									       0, 0)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_release(struct accel_cuda_tier *t, cu_deviceptr ptr, uint64_t len)
{
	int ret;

	if (!t || !ptr || !len)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemAddressFree(ptr, len)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_alias(struct accel_cuda_tier *t, uint64_t off, uint64_t len, cu_deviceptr at)
{
	int ret;

	if (!t || !range_ok(t, off, len) || !at || at % t->chunk)
		return -EINVAL;
	ret = lock_run(t, NULL, (unsigned int)(off / t->chunk), (unsigned int)(len / t->chunk));
	if (ret)
		return ret;
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, alias_locked(t, NULL, (unsigned int)(off / t->chunk),
					      (unsigned int)(len / t->chunk), at));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_unalias(struct accel_cuda_tier *t, cu_deviceptr at, uint64_t len)
{
	uint64_t o;
	int ret;

	if (!t || !at || !len || at % t->chunk || len % t->chunk)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	for (o = 0; !ret && o < len; o += t->chunk)
		ret = accel_cuda_errno(t->api->cuMemUnmap(at + o, t->chunk));
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_grant_peer(struct accel_cuda_tier *t, int peer)
{
	cu_device pdev;
	unsigned int i;
	int can = 0, ret;

	if (!t || peer < 0 || peer >= t->cu->devices || peer == t->ordinal)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->nr_peers; i++) {
		if (t->peers[i] == peer) {
			pthread_mutex_unlock(&t->lock);
			return 0;
		}
	}
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	ret = accel_cuda_errno(t->api->cuDeviceGet(&pdev, peer));
	if (!ret)
		ret = accel_cuda_errno(t->api->cuDeviceCanAccessPeer(&can, pdev, t->dev));
	if (!ret && !can)
		ret = -EOPNOTSUPP;
	if (!ret && t->nr_peers == TIER_MAX_PEERS)
		ret = -ENOSPC;
	if (!ret) {
		t->peers[t->nr_peers++] = peer;
		/* What is mapped already, one run of mapped chunks at a time. */
		for (i = 0; !ret && i < t->nr_slots; i++) {
			unsigned int j = i;

			if (!t->slots[i])
				continue;
			while (j < t->nr_slots && t->slots[j])
				j++;
			ret = set_access(t, t->base + (cu_deviceptr)i * t->chunk,
					 (size_t)(j - i) * t->chunk);
			i = j;
		}
		if (ret)
			t->nr_peers--;
	}
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

bool accel_cuda_tier_peer_granted(struct accel_cuda_tier *t, int peer)
{
	bool granted = false;
	unsigned int i;

	if (!t)
		return false;
	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->nr_peers; i++)
		granted |= t->peers[i] == peer;
	pthread_mutex_unlock(&t->lock);
	return granted;
}

int accel_cuda_tier_device(const struct accel_cuda_tier *t)
{
	return t ? t->ordinal : -EINVAL;
}

int accel_cuda_tier_host_register(struct accel_cuda_tier *t, void *addr, size_t len)
{
	int ret;

	if (!t || !addr || !len)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemHostRegister(addr, len,
							CU_MEMHOSTREGISTER_PORTABLE)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_host_unregister(struct accel_cuda_tier *t, void *addr)
{
	int ret;

	if (!t || !addr)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemHostUnregister(addr)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* Room for @n runs in the scratch arrays. Called with t->lock held. */
static int scratch(struct accel_cuda_tier *t, size_t n)
{
	cu_deviceptr *d, *s;
	size_t *z;

	if (n <= t->room)
		return 0;
	d = realloc(t->dsts, n * sizeof(*d));
	if (d)
		t->dsts = d;
	s = realloc(t->srcs, n * sizeof(*s));
	if (s)
		t->srcs = s;
	z = realloc(t->sizes, n * sizeof(*z));
	if (z)
		t->sizes = z;
	if (!d || !s || !z)
		return -ENOMEM;
	t->room = n;
	return 0;
}

/* Wait for ticket @tk's event. Called with t->lock held; drops it while waiting. */
static int event_sync_locked(struct accel_cuda_tier *t, uint64_t tk)
{
	cu_event ev = t->events[tk % TIER_EVENTS];
	int ret;

	pthread_mutex_unlock(&t->lock);
	ret = accel_cuda_errno(t->api->cuEventSynchronize(ev));
	pthread_mutex_lock(&t->lock);
	if (!ret && t->done_below <= tk)
		t->done_below = tk + 1;
	return ret;
}

/*
 * Wait for everything queued on the tier's stream, after a failed copy
 * call. Called with t->lock held; drops it while waiting (the stream may
 * be waiting for an engine's event).
 */
static void stream_drain_locked(struct accel_cuda_tier *t)
{
	pthread_mutex_unlock(&t->lock);
	t->api->cuStreamSynchronize(t->stream);
	pthread_mutex_lock(&t->lock);
}

/*
 * Queue runs [0, runs) of the scratch arrays: in batches of at most
 * TIER_BATCH_MAX, or one cuMemcpyAsync each without the batch call. A
 * driver that refuses the batch call (not supported) gets single copies
 * from then on. On failure nothing this call queued is still in flight:
 * the runs before the failed call, and any part of it the driver queued
 * (a batch call may queue the copies before its failIdx), even when the
 * failed call is the first. Called with t->lock held; on failure drops
 * it while waiting.
 */
static int queue_runs(struct accel_cuda_tier *t, size_t runs)
{
	struct cu_memcpy_attributes attr = {
		.src_access_order = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM,
	};
	size_t i = 0, k, idx = 0, fail = 0;
	int ret = 0;

	while (i < runs) {
		k = runs - i < TIER_BATCH_MAX ? runs - i : TIER_BATCH_MAX;
		if (t->batch && k > 1) {
			ret = accel_cuda_errno(t->api->cuMemcpyBatchAsync(t->dsts + i, t->srcs + i,
									  t->sizes + i, k, &attr,
									  &idx, 1, &fail,
									  t->stream));
			if (ret == -EOPNOTSUPP) {
				t->batch = false;
				ret = 0;
				continue;
			}
			t->stats.batch_calls += !ret;
		} else {
			k = 1;
			ret = accel_cuda_errno(t->api->cuMemcpyAsync(t->dsts[i], t->srcs[i],
								     t->sizes[i], t->stream));
			t->stats.copy_calls += !ret;
		}
		if (ret)
			break;
		i += k;
	}
	if (ret)
		stream_drain_locked(t);
	return ret;
}

int accel_cuda_tier_copy(struct accel_cuda_tier *t, const struct accel_cuda_copy *c,
			 unsigned int n, uint64_t *ticket)
{
	size_t runs = 0, i;
	uint64_t tk;
	int ret;

	if (!t || !c || !n || !ticket)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!c[i].len || !c[i].dst || !c[i].src)
			return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	/*
	 * The ring slot's last ticket must be done before its event is reused:
	 * waited for first, so that a failure here leaves nothing queued. The
	 * wait drops the lock; from the loop's end to the record it is held.
	 */
	tk = t->next_ticket;
	while (tk >= TIER_EVENTS && t->done_below <= tk - TIER_EVENTS) {
		ret = event_sync_locked(t, tk - TIER_EVENTS);
		if (ret)
			goto out;
		tk = t->next_ticket;	/* another thread may have queued meanwhile */
	}
	ret = scratch(t, n);
	if (ret)
		goto out;
	/* Coalesce: a piece that continues the last run on both ends joins it. */
	for (i = 0; i < n; i++) {
		if (runs && t->dsts[runs - 1] + t->sizes[runs - 1] == c[i].dst &&
		    t->srcs[runs - 1] + t->sizes[runs - 1] == c[i].src) {
			t->sizes[runs - 1] += c[i].len;
			continue;
		}
		t->dsts[runs] = c[i].dst;
		t->srcs[runs] = c[i].src;
		t->sizes[runs] = c[i].len;
		runs++;
	}
	ret = queue_runs(t, runs);
	if (ret)
		goto out;
	t->stats.pieces += n;
	t->stats.runs += runs;
	ret = accel_cuda_errno(t->api->cuEventRecord(t->events[tk % TIER_EVENTS], t->stream));
	if (ret) {
		/* All of it queued, and no ticket to wait for it with: wait here. */
		stream_drain_locked(t);
		goto out;
	}
	t->next_ticket = tk + 1;
	*ticket = tk;
out:
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_wait_event(struct accel_cuda_tier *t, cu_event ev)
{
	int ret;

	if (!t || !ev)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuStreamWaitEvent(t->stream, ev,
							CU_EVENT_WAIT_DEFAULT)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_record(struct accel_cuda_tier *t, cu_event ev)
{
	int ret;

	if (!t || !ev)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuEventRecord(ev, t->stream)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* The bounce buffer of @dst, made on first use (registered: portable). */
static int bounce_buffer(struct accel_cuda_tier *t, void **out)
{
	void *b = NULL;
	int ret;

	pthread_mutex_lock(&t->lock);
	if (!t->bounce) {
		ret = posix_memalign(&b, 4096, t->chunk) ? -ENOMEM : ctx_push(t);
		if (!ret)
			ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemHostRegister(b, t->chunk,
							CU_MEMHOSTREGISTER_PORTABLE)));
		if (ret) {
			free(b);
			pthread_mutex_unlock(&t->lock);
			return ret;
		}
		t->bounce = b;
	}
	*out = t->bounce;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int accel_cuda_tier_copy_peer(struct accel_cuda_tier *dst, struct accel_cuda_tier *src,
			      const struct accel_cuda_copy *c, unsigned int n, uint64_t *ticket)
{
	uint64_t tk = 0;
	unsigned int i;
	void *bounce;
	int ret;

	if (!dst || !src || dst == src || !c || !n || !ticket)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!c[i].len || !c[i].dst || !c[i].src)
			return -EINVAL;
	if (accel_cuda_tier_peer_granted(src, dst->ordinal)) {
		/* dst's copy engine reads src's memory directly. */
		ret = accel_cuda_tier_copy(dst, c, n, ticket);
		if (!ret) {
			pthread_mutex_lock(&dst->lock);
			dst->stats.peer_direct++;
			pthread_mutex_unlock(&dst->lock);
		}
		return ret;
	}
	/*
	 * Staged, one bounce buffer's worth at a time: dst's buffer serves
	 * both legs (it is registered portable), and dst's lock is not held
	 * across the legs, so concurrent staged copies into one tier are
	 * serialised by the caller (the KV cache holds its own lock).
	 */
	ret = bounce_buffer(dst, &bounce);
	for (i = 0; !ret && i < n; i++) {
		size_t done;

		for (done = 0; !ret && done < c[i].len; ) {
			size_t len = c[i].len - done < dst->chunk ? c[i].len - done : dst->chunk;
			struct accel_cuda_copy out = { (cu_deviceptr)(uintptr_t)bounce,
						       c[i].src + done, len };
			struct accel_cuda_copy in = { c[i].dst + done,
						      (cu_deviceptr)(uintptr_t)bounce, len };
			uint64_t stk;

			ret = accel_cuda_tier_copy(src, &out, 1, &stk);
			if (!ret)
				ret = accel_cuda_tier_wait(src, stk, -1);
			if (!ret)
				ret = accel_cuda_tier_copy(dst, &in, 1, &tk);
			if (!ret)
				ret = accel_cuda_tier_wait(dst, tk, -1);
			done += len;
		}
	}
	if (!ret) {
		pthread_mutex_lock(&dst->lock);
		dst->stats.peer_staged++;
		pthread_mutex_unlock(&dst->lock);
		*ticket = tk;
	}
	return ret;
}

int accel_cuda_tier_wait_ticket(struct accel_cuda_tier *t, struct accel_cuda_tier *other,
				uint64_t ticket)
{
	cu_event ev;
	int ret;

	if (!t || !other || !ticket)
		return -EINVAL;
	if (t == other)
		return 0;	/* stream order */
	pthread_mutex_lock(&other->lock);
	if (ticket >= other->next_ticket) {
		pthread_mutex_unlock(&other->lock);
		return -EINVAL;
	}
	if (ticket < other->done_below || ticket + TIER_EVENTS < other->next_ticket) {
		pthread_mutex_unlock(&other->lock);
		return 0;
	}
	/* Re-recorded for a later ticket before the wait below: a longer wait, still right. */
	ev = other->events[ticket % TIER_EVENTS];
	pthread_mutex_unlock(&other->lock);
	pthread_mutex_lock(&t->lock);
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuStreamWaitEvent(t->stream, ev,
							CU_EVENT_WAIT_DEFAULT)));
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_wait(struct accel_cuda_tier *t, uint64_t ticket, int64_t timeout_ns)
{
	struct timespec start, now;
	int ret;

	if (!t || !ticket)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&t->lock);
	if (ticket >= t->next_ticket) {
		pthread_mutex_unlock(&t->lock);
		return -EINVAL;
	}
	ret = ctx_push(t);
	if (ret) {
		pthread_mutex_unlock(&t->lock);
		return ret;
	}
	for (;;) {
		cu_result r;

		/* Done, or so old that its event was reused (it was waited for then). */
		if (ticket < t->done_below || ticket + TIER_EVENTS < t->next_ticket) {
			ret = 0;
			break;
		}
		if (timeout_ns < 0) {
			ret = event_sync_locked(t, ticket);
			break;
		}
		r = t->api->cuEventQuery(t->events[ticket % TIER_EVENTS]);
		if (r == CU_SUCCESS) {
			if (t->done_below <= ticket)
				t->done_below = ticket + 1;
			ret = 0;
			break;
		}
		if (r != CU_ERROR_NOT_READY) {
			ret = accel_cuda_errno(r);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000000000LL + now.tv_nsec - start.tv_nsec >=
		    timeout_ns) {
			ret = -ETIMEDOUT;
			break;
		}
		pthread_mutex_unlock(&t->lock);
		nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
		pthread_mutex_lock(&t->lock);
	}
	ret = ctx_pop(t, ret);
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int accel_cuda_tier_export_dmabuf(struct accel_cuda_tier *t, uint64_t off, uint64_t len, int *fd)
{
	unsigned int i;
	int ret, out = -1;

	if (!t || !fd || !range_ok(t, off, len))
		return -EINVAL;
	if (!t->dmabuf)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->lock);
	for (i = (unsigned int)(off / t->chunk); i < (off + len) / t->chunk; i++) {
		if (!t->slots[i]) {
			pthread_mutex_unlock(&t->lock);
			return -EINVAL;
		}
	}
	ret = ctx_push(t);
	if (!ret)
		ret = ctx_pop(t, accel_cuda_errno(t->api->cuMemGetHandleForAddressRange(&out,
						t->base + off, len,
						CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0)));
	pthread_mutex_unlock(&t->lock);
	if (!ret)
		*fd = out;
	return ret;
}

void accel_cuda_tier_stats(struct accel_cuda_tier *t, struct accel_cuda_tier_stats *s)
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	*s = t->stats;
	s->batched = t->batch;
	s->chunks_alive = t->nr_alive;
	s->chunks_free = t->nr_free;
	s->chunks_mapped = 0;
	for (i = 0; i < t->nr_slots; i++)
		s->chunks_mapped += t->slots[i] != 0;
	pthread_mutex_unlock(&t->lock);
}
