/* SPDX-License-Identifier: MIT */
/*
 * libaccel - what the KV cache (kv_cache.c) needs from the memory behind
 * its two tiers: a backend operations table. The cache's block manager
 * does the bookkeeping (pools, block tables, which block is where) and
 * plans the copies; a backend holds the bytes and executes the plans'
 * runs.
 *
 *   host  both tiers host tiers of the data mover (kvaccel regions),
 *         copies on the module's copy engine (kv_backend_host.c)
 *   cuda  a device tier of the data mover in GPU memory (mapped lazily)
 *         and a host tier, copies on the device tier's stream through
 *         the mover's CUDA path (kv_backend_cuda.c)
 *   tests a stub over plain memory (tests/libaccel/kv_model.c)
 *
 * Locking: the cache calls every operation with its lock held except
 * ->wait(), which it calls without (several threads may wait for the same
 * transfer at once) on a transfer it holds a reference to; ->xfer_free()
 * comes only after every wait on that transfer has returned.
 */
#ifndef ACCEL_KV_BACKEND_H
#define ACCEL_KV_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "accel.h"
#include "kv_seq.h"

enum kv_tier_id { KV_TIER_DEV, KV_TIER_HOST, KV_TIER_NR };

/* A transfer in flight: the backend's, opaque to the cache. */
struct kv_xfer;
struct kv_backend;

/* What a caller asks of a transfer's ordering (cuda: CUevents, else NULL). */
struct kv_order {
	void *wait_event;	/* the copies start after it */
	void *done_event;	/* recorded after the copies */
};

struct kv_backend_ops {
	/*
	 * Make device-tier blocks @blocks[0..n) usable (cuda: map their
	 * chunks); NULL when blocks always are. Called before a block is
	 * handed out, so an error leaves nothing changed.
	 */
	int (*prepare)(struct kv_backend *b, const uint32_t *blocks, uint32_t n);
	/*
	 * Queue @n runs of a block manager's plan (accel_bm_plan_runs(): the
	 * tier numbers are enum kv_tier_id, each run at most transfer_unit
	 * bytes, already coalesced) as one transfer; count them in
	 * transfers and bytes_moved. *x receives the transfer, or NULL when
	 * the copies are already complete (or @n is 0, the order's events
	 * still waited for and recorded). On error none is still in flight.
	 */
	int (*copy)(struct kv_backend *b, const struct accel_bm_run *runs, uint32_t n,
		    const struct kv_order *order, struct kv_xfer **x);
	/* 0 done, -ETIME not done within @timeout_ns (0: a poll, -1: forever), -errno failed. */
	int (*wait)(struct kv_backend *b, struct kv_xfer *x, int64_t timeout_ns);
	void (*xfer_free)(struct kv_backend *b, struct kv_xfer *x);
	/* A fence the caller will own for @x, or NULL (no fences on this backend). */
	struct accel_fence *(*xfer_fence)(struct kv_backend *b, struct kv_xfer *x);
	/* A block's address: a CPU address, or a device pointer (cuda device tier). */
	void *(*block_addr)(struct kv_backend *b, enum kv_tier_id t, uint32_t block);
	/*
	 * Map blocks @blocks[0..n) of tier @t as one contiguous window:
	 * *win is the backend's handle (window_free()), *addr and *len the
	 * window.
	 */
	int (*window)(struct kv_backend *b, enum kv_tier_id t, const uint32_t *blocks, uint32_t n,
		      void **win, void **addr, size_t *len);
	void (*window_free)(struct kv_backend *b, void *win);
	/* A dma-buf of a tier's memory (close-on-exec). */
	int (*tier_export)(struct kv_backend *b, enum kv_tier_id t, int *fd);
	/* Everything released (no transfer is in flight any more). */
	void (*destroy)(struct kv_backend *b);
};

/**
 * struct kv_backend - the part every backend starts with.
 * @ops: its operations.
 * @name: "host", "cuda", ...
 * @block_bytes: bytes per block, both tiers.
 * @transfer_unit: the largest coalesced copy, in bytes (the cache's block
 *	manager caps its runs at it).
 * @flags: the cache's ACCEL_KV_* flags.
 * @transfers: coalesced copies submitted (under the cache lock).
 * @bytes_moved: bytes those moved.
 */
struct kv_backend {
	const struct kv_backend_ops *ops;
	const char *name;
	uint32_t block_bytes;
	uint32_t transfer_unit;
	uint32_t flags;
	uint64_t transfers;
	uint64_t bytes_moved;
};

/* What a backend is created from (validated by the cache). */
struct kv_backend_config {
	uint32_t block_bytes;
	uint32_t device_blocks, host_blocks;
	uint32_t transfer_unit;
	int host_node;		/* ACCEL_NODE_ANY or a node */
	uint32_t flags;
	int gpu;		/* cuda: the CUDA ordinal */
};

/* Each returns 0 with *out set, or -errno (the log says why). */
int kv_backend_host_create(struct accel_device *dev, const struct kv_backend_config *cfg,
			   struct kv_backend **out);
int kv_backend_cuda_create(struct accel_device *dev, const struct kv_backend_config *cfg,
			   struct kv_backend **out);

/*
 * The cache over a backend it takes over (destroyed with the cache, or
 * here on failure): what accel_kv_create() ends in, and what native tests
 * call with a stub. @cfg is validated already.
 */
struct accel_kv *kv_cache_create(const struct kv_backend_config *cfg, uint32_t block_tokens,
				 struct kv_backend *b);

/* Every invariant of @kv holds: 0, or -EUCLEAN with @why (kv_cache.c). */
int kv_cache_check(struct accel_kv *kv, char *why, size_t len);

#endif
