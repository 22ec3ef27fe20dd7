/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the driver side of a device tier (the data mover's,
 * mover/tier_cuda.c, the KV cache's among them): one GPU's memory as a
 * reserved virtual range (cuMemAddressReserve) backed on demand by
 * physical chunks (the allocation granularity, 2 MiB on current GPUs) from
 * a pool created ahead of time (cuMemCreate costs ~200 us: never on the
 * swap path), mapped and unmapped with cuMemMap/cuMemUnmap and made
 * accessible with cuMemSetAccess, to the owning device and to every peer
 * granted access (peer access to virtual-memory allocations is per range,
 * not cuCtxEnablePeerAccess). Host memory (kvaccel regions, through their
 * mapping) is registered for DMA with cuMemHostRegister. Copies run on a
 * dedicated non-blocking stream: adjacent pieces are coalesced into runs,
 * and the runs go down in one cuMemcpyBatchAsync (CUDA 12.8+) or, without
 * it, one cuMemcpyAsync each; a ticket (an event) says when they are done.
 * Ticket events are blocking-sync (CU_EVENT_BLOCKING_SYNC): a thread
 * waiting for one sleeps in the driver instead of spinning on a core.
 * A range exports as a dma-buf (cuMemGetHandleForAddressRange) so kvaccel
 * can import it.
 *
 * A tier is thread-safe (one mutex).
 *
 * Contexts: every call that reaches the driver pushes the device's primary
 * context on the calling thread's context stack (cuCtxPushCurrent) and
 * pops it (cuCtxPopCurrent) before returning, on every path, success or
 * failure: the caller's current context (none, its own, another GPU's) is
 * the same after any call as before. Callers need not make any context
 * current.
 *
 * Ordering against the caller's streams: the tier's stream is its own
 * (non-blocking: no implicit order with any other stream). To make the
 * tier's next copies wait for work on an engine stream, record a CUDA
 * event there and pass it to accel_cuda_tier_wait_event(); to make an
 * engine stream wait for the tier's copies, pass an event of the
 * engine's to accel_cuda_tier_record() and cuStreamWaitEvent() on it.
 * Events stay the caller's (created, destroyed, re-recorded by it).
 */
#ifndef ACCEL_CUDA_TIER_H
#define ACCEL_CUDA_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_api.h"

struct accel_cuda_tier;

struct accel_cuda_tier_opts {
	int device;		/* CUDA ordinal */
	uint64_t reserve;	/* bytes of virtual range (rounded up to chunks) */
	unsigned int prealloc;	/* chunks created at once (0: none) */
	unsigned int max_chunks;	/* most chunks alive (0: reserve / chunk) */
	/*
	 * No memory of its own (reserve 0, no virtual memory management
	 * needed): the stream, the tickets and the bounce buffer only, for
	 * copies between memory the tier does not own (the mover's registered
	 * device tiers, host registration).
	 */
	bool stream_only;
};

struct accel_cuda_copy {
	cu_deviceptr dst, src;	/* device pointers or host addresses (UVA) */
	size_t len;
};

struct accel_cuda_tier_stats {
	uint64_t chunk_size;
	unsigned int chunks_alive, chunks_free, chunks_mapped;
	uint64_t pieces, runs, batch_calls, copy_calls;
	uint64_t peer_direct, peer_staged;	/* copy_peer() calls by path */
	bool batched;		/* cuMemcpyBatchAsync is there and not refused */
	bool dmabuf;		/* the device exports dma-bufs */
};

/*
 * 0, or -ENODEV (no driver, no such device, no virtual memory management:
 * @why says which), -EINVAL, -ENOMEM.
 */
int accel_cuda_tier_create(const struct accel_cuda_tier_opts *opts,
			   struct accel_cuda_tier **out, char *why, size_t len);
/* Waits for copies in flight; unmaps, releases and frees everything. */
void accel_cuda_tier_destroy(struct accel_cuda_tier *t);

cu_deviceptr accel_cuda_tier_base(const struct accel_cuda_tier *t);
uint64_t accel_cuda_tier_size(const struct accel_cuda_tier *t);
uint64_t accel_cuda_tier_chunk_size(const struct accel_cuda_tier *t);

/* Back [off, off + len) (chunk-aligned) with pool chunks; mapped ones stay. */
int accel_cuda_tier_map(struct accel_cuda_tier *t, uint64_t off, uint64_t len);
/* Give the chunks of [off, off + len) back to the pool (kept, not released). */
int accel_cuda_tier_unmap(struct accel_cuda_tier *t, uint64_t off, uint64_t len);
/* Create chunks ahead of time until @n are free (bounded by max_chunks). */
int accel_cuda_tier_prealloc(struct accel_cuda_tier *t, unsigned int n);

/*
 * A contiguous window over chunks of the tier, zero-copy: the physical
 * chunks at chunk indices @chunks[0..n) (mapped) mapped again, in that
 * order, into a new reserved range (*ptr). The caller keeps those chunks
 * mapped in the tier while the window lives. Free with
 * accel_cuda_tier_window_free(t, *ptr, n).
 */
int accel_cuda_tier_window(struct accel_cuda_tier *t, const uint32_t *chunks, unsigned int n,
			   cu_deviceptr *ptr);
int accel_cuda_tier_window_free(struct accel_cuda_tier *t, cu_deviceptr ptr, unsigned int n);

/*
 * Virtual range of the caller's, for aliases (below): @len bytes
 * (chunk-aligned) reserved at *ptr, chunk-aligned; accel_cuda_tier_release()
 * gives it back (nothing may be mapped in it then). A range may hold
 * aliases of several tiers (several GPUs' memory behind one range).
 */
int accel_cuda_tier_reserve(struct accel_cuda_tier *t, uint64_t len, cu_deviceptr *ptr);
int accel_cuda_tier_release(struct accel_cuda_tier *t, cu_deviceptr ptr, uint64_t len);
/*
 * Zero-copy: the physical chunks behind the tier's mapped [off, off + len)
 * (chunk-aligned) mapped again at @at (chunk-aligned, unmapped, in a range
 * from accel_cuda_tier_reserve()), with the tier's access (its device and
 * the peers granted now). The caller keeps those chunks mapped in the tier
 * while the alias lives, and undoes it with accel_cuda_tier_unalias(t, @at,
 * @len) (the same tier and length). 0, -EINVAL, or the driver's error (the
 * call's mappings undone).
 */
int accel_cuda_tier_alias(struct accel_cuda_tier *t, uint64_t off, uint64_t len, cu_deviceptr at);
int accel_cuda_tier_unalias(struct accel_cuda_tier *t, cu_deviceptr at, uint64_t len);

/*
 * Let GPU @peer read and write the tier (what is mapped now and later):
 * -EOPNOTSUPP when the topology does not allow it (copy through the host
 * then).
 */
int accel_cuda_tier_grant_peer(struct accel_cuda_tier *t, int peer);
/* Has @t granted GPU @peer access? */
bool accel_cuda_tier_peer_granted(struct accel_cuda_tier *t, int peer);
/* The CUDA ordinal of the tier's GPU. */
int accel_cuda_tier_device(const struct accel_cuda_tier *t);

int accel_cuda_tier_host_register(struct accel_cuda_tier *t, void *addr, size_t len);
int accel_cuda_tier_host_unregister(struct accel_cuda_tier *t, void *addr);

/*
 * Queue @n copies on the tier's stream; adjacent pieces (both ends
 * contiguous) are merged first. They run after everything queued on the
 * stream before them, waits for events (accel_cuda_tier_wait_event)
 * included. *ticket names the batch for _wait(). On failure none of them
 * is still in flight (some may have run): a call that fails after queueing
 * part of them waits for that part before it returns, however long the
 * stream is held up by an event it waits for.
 */
int accel_cuda_tier_copy(struct accel_cuda_tier *t, const struct accel_cuda_copy *copies,
			 unsigned int n, uint64_t *ticket);
/*
 * Make everything queued on the tier after this call (copies, records)
 * wait until @ev completes (cuStreamWaitEvent on the tier's stream): e.g.
 * an event the engine recorded on its stream after the kernels that write
 * the blocks to be copied out. As CUDA: the wait is for @ev's latest
 * record at the time of the call (recording it again later changes
 * nothing), an event never recorded is no wait, and @ev may belong to any
 * device's context. The call does not block. 0, -EINVAL (NULL), or the
 * driver's error as an errno.
 */
int accel_cuda_tier_wait_event(struct accel_cuda_tier *t, cu_event ev);
/*
 * Record @ev, the caller's, on the tier's stream (cuEventRecord): it
 * completes once everything queued on the tier before this call has, so
 * the caller can cuStreamWaitEvent(its_stream, ev, 0) before reading the
 * blocks those copies write, or cuEventQuery/cuEventSynchronize it. @ev
 * must have been created in the tier's device's primary context (the one
 * the CUDA runtime uses; the driver refuses an event of another context).
 * 0, -EINVAL (NULL), or the driver's error as an errno.
 */
int accel_cuda_tier_record(struct accel_cuda_tier *t, cu_event ev);
/*
 * GPU to GPU: copies from @src's memory into @dst's (event waits: those
 * of the tier whose stream runs each leg, as below). Straight through the
 * peer path, on @dst's stream, when @src granted @dst's device access
 * (accel_cuda_tier_grant_peer(src, dst's device)); else staged through a
 * registered host bounce buffer (src -> host on @src's stream, host -> dst
 * on @dst's), which this call waits for. *ticket is @dst's.
 */
int accel_cuda_tier_copy_peer(struct accel_cuda_tier *dst, struct accel_cuda_tier *src,
			      const struct accel_cuda_copy *copies, unsigned int n,
			      uint64_t *ticket);
/*
 * Make everything queued on @t after this call wait until @other's
 * @ticket is done (cuStreamWaitEvent on its event; the tiers may be on
 * different devices). A ticket done already, or so old that its event was
 * reused, is no wait. 0, -EINVAL, or the driver's error as an errno.
 */
int accel_cuda_tier_wait_ticket(struct accel_cuda_tier *t, struct accel_cuda_tier *other,
				uint64_t ticket);
/* 0 once @ticket's copies are done, -ETIMEDOUT (timeout_ns 0: a poll), -EIO. */
int accel_cuda_tier_wait(struct accel_cuda_tier *t, uint64_t ticket, int64_t timeout_ns);

/* Export [off, off + len) (mapped, chunk-aligned) as a dma-buf: -EOPNOTSUPP without support. */
int accel_cuda_tier_export_dmabuf(struct accel_cuda_tier *t, uint64_t off, uint64_t len,
				  int *fd);

void accel_cuda_tier_stats(struct accel_cuda_tier *t, struct accel_cuda_tier_stats *s);

#endif
