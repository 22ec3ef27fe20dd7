/* SPDX-License-Identifier: MIT */
/*
 * libaccel - tiers (the memory behind a block manager's block ids) and the
 * data mover that executes transfer plans between them. Included by
 * accel.h; Documentation/libaccel.rst, "Tiers and the data mover";
 * accel_mover_create(3).
 *
 * A tier is a run of equal blocks: a host tier in a kvaccel region
 * (pinned, shareable as a dma-buf, copied by the module's copy engine;
 * a window tier reaches its blocks through a space, so that they can be
 * rebound to other engines' region pages without copying), or
 * a memfd-backed host tier that needs no kvaccel device (no quotas, no
 * isolation from other processes holding the memfd, no zero-copy remap
 * into spaces; its copies are memcpy on the mover's worker thread).
 *
 * A device tier is CUDA device memory: allocated by the library
 * (accel_tier_create_cuda()), or the engine's own, registered with its
 * layout (accel_tier_register_cuda(): one contiguous block per block id,
 * or one tensor per layer with a block stride), which the library never
 * frees. Any tier's block may be cut into equal layer pieces (layers), so
 * that a job can copy some layers of its blocks only.
 *
 * The mover takes runs (struct accel_bm_run, as accel_bm_plan_runs()
 * gives them) whose tier numbers index the caller's tier array, runs them
 * as one job, and reports each job's id and status once it finished:
 * accel_mover_poll(), and accel_mover_fd() for an event loop. A job with
 * a device tier runs on the CUDA backend's streams; it may wait for a
 * CUDA event of the engine's before it reads, and record one of the
 * engine's when its copies are done (Documentation/libaccel.rst, "Device
 * tiers"; accel_tier_create_cuda(3)).
 *
 * Thread safety: every call may be made from any thread; the mover never
 * waits while holding its lock.
 */
#ifndef ACCEL_MOVER_H
#define ACCEL_MOVER_H

#include <stddef.h>
#include <stdint.h>

#include "accel_bm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct accel_device;
struct accel_tier;
struct accel_mover;

/** What memory a tier is. */
enum accel_tier_kind {
	ACCEL_TIER_HOST = 0,	/* a kvaccel region */
	ACCEL_TIER_MEMFD = 1,	/* a memfd, no device */
	ACCEL_TIER_CUDA = 2,	/* CUDA device memory the library allocated */
	ACCEL_TIER_CUDA_REGISTERED = 3,	/* CUDA device memory of the engine's */
};

/** accel_tier_opts.flags: place the host tier's blocks on NUMA node @node. */
#define ACCEL_TIER_ON_NODE	(1u << 0)
/**
 * accel_tier_opts.flags: a window tier (host tiers only; memfd and device
 * tiers: EOPNOTSUPP). Its blocks are addressed through a kvaccel space whose
 * slots are bound to its region's blocks, so that a block can be rebound to
 * another engine's region without copying (accel_tier_rebind()). Copy-engine
 * and memcpy jobs follow the bindings; a CUDA job with a window tier is
 * -EOPNOTSUPP (a space's mapping cannot be registered for DMA).
 */
#define ACCEL_TIER_WINDOW	(1u << 1)

/** A new tier's shape (ACCEL_OPTS()). */
struct accel_tier_opts {
	size_t sz;
	/** Bytes of one block: a multiple of 4 KiB, at most ACCEL_TIER_BLOCK_MAX. */
	uint64_t block_bytes;
	/** Blocks (at least 1). */
	uint32_t blocks;
	/** With ACCEL_TIER_ON_NODE (host tiers): the NUMA node. */
	int32_t node;
	/** ACCEL_TIER_*. */
	uint32_t flags;
	/**
	 * Layer pieces per block (0 or 1: one): block_bytes a multiple of it;
	 * layer l of a block at l * block_bytes / layers inside it.
	 */
	uint32_t layers;
};

/** The largest block of a tier: 64 MiB. */
#define ACCEL_TIER_BLOCK_MAX	(64ull << 20)

/**
 * A host tier in a kvaccel region of @dev (the tier keeps no reference to
 * @dev: keep it open while the tier lives). A block spans block_bytes /
 * region block size region blocks, the region's block being the largest
 * power of two up to 2 MiB that divides block_bytes. NULL and errno:
 * EINVAL, E2BIG (unknown fields), EOVERFLOW (too big), or the region's.
 */
struct accel_tier *accel_tier_create_host(struct accel_device *dev,
					  const struct accel_tier_opts *opts);
/**
 * A host tier in a memfd, for machines without a kvaccel device. It has
 * none of a region's quotas, isolation or zero-copy remapping into spaces.
 * NULL and errno as accel_tier_create_host(), or memfd_create()'s.
 */
struct accel_tier *accel_tier_create_memfd(const struct accel_tier_opts *opts);
/** Free the tier (NULL-safe); no mover job may still use it. */
void accel_tier_destroy(struct accel_tier *tier);

/** What a tier is (ACCEL_OPTS(); written up to sz). */
struct accel_tier_info {
	size_t sz;
	uint32_t kind;		/* enum accel_tier_kind */
	uint32_t blocks;
	uint64_t block_bytes;
	/** Host tiers: the region's block size (0 for memfd). */
	uint32_t region_block_bytes;
	uint32_t pad;
	/** Layer pieces per block (at least 1). */
	uint32_t layers;
	/** Device tiers: the CUDA ordinal; -1 for host tiers. */
	int32_t device;
	/** enum accel_tier_layout (host and allocated tiers: BLOCKS). */
	uint32_t layout;
	uint32_t pad2;
	/** Bytes from a block (or, LAYERS layout, a layer piece) to the next. */
	uint64_t block_stride;
	/** ACCEL_TIER_* the tier was created with (ACCEL_TIER_WINDOW, ACCEL_TIER_ON_NODE). */
	uint32_t flags;
	uint32_t pad3;
};

int accel_tier_info(const struct accel_tier *tier, struct accel_tier_info *info);
/**
 * The tier's mapping of @block; NULL and errno EINVAL (no tier, past its
 * end, a LAYERS-layout device tier: no one range). Device tiers: the
 * block's device pointer (CUDA unified addressing), not readable by the CPU.
 */
void *accel_tier_block_addr(const struct accel_tier *tier, uint32_t block);
/**
 * An fd another process (or driver) can map the tier with, owned by the
 * caller: a host tier's region dma-buf (accel_region_import() takes it),
 * a memfd tier's memfd (a new fd of the same file: mmap() it; anyone
 * holding it reads and writes the blocks).
 */
int accel_tier_export(struct accel_tier *tier, int *fd);

/*
 * Window tiers (ACCEL_TIER_WINDOW): what backs each block, and rebinding
 * blocks to pages of other engines' regions (Documentation/libaccel.rst,
 * "Window tiers"; accel_tier_rebind(3)).
 */

/** What backs one block of a window tier: a region (by key) and its first region block. */
struct accel_tier_page {
	/** The region's identity on the node: its dma-buf's inode number. */
	uint64_t key;
	/** Its first region block (a tier block spans k region blocks, first..first + k - 1). */
	uint32_t first;
	uint32_t pad;
};

/**
 * The page behind @block of window tier @t into *@pg. -EINVAL: no tier or
 * @pg, @block past the end; -EOPNOTSUPP: not a window tier.
 */
int accel_tier_page(const struct accel_tier *t, uint32_t block, struct accel_tier_page *pg);
/** The key of window tier @t's own region; 0 for any other tier (or NULL). */
uint64_t accel_tier_key(const struct accel_tier *t);
/**
 * Hold the region of dma-buf @fd (another engine's region, received through
 * kvacceld; the caller keeps @fd) so that rebinds may name its blocks; *@key
 * receives its key. The same region twice (or the tier's own) is held once
 * (by the dma-buf's inode). -EINVAL: no tier or @key, @fd not a kvaccel
 * region's read-write dma-buf of the tier's device, or a region of another
 * block size; -EOPNOTSUPP: not a window tier; the import's -errno.
 */
int accel_tier_hold(struct accel_tier *t, int fd, uint64_t *key);
/**
 * An fd (the caller's, O_CLOEXEC) of a region window tier @t holds or owns,
 * to send to another engine. -ENOENT: not held; -EINVAL; -EOPNOTSUPP: not
 * a window tier.
 */
int accel_tier_page_export(struct accel_tier *t, uint64_t key, int *fd);

/** One rebind: make @block be backed by @to. */
struct accel_tier_rebind {
	uint32_t block;
	uint32_t pad;
	struct accel_tier_page to;
};

/**
 * Rebind @n blocks of window tier @t in one atomic kernel bind batch (all or
 * nothing; no byte copied): every @to names a held region (-ENOENT) and a
 * run of k region blocks inside it (-EINVAL); no block twice, none past the
 * end, pads 0, @n at least 1 and n * k at most 65536 slots (the module's
 * KVACCEL_BIND_MAX_OPS) (-EINVAL). On error nothing changed. A held foreign region that the batch
 * leaves no block backed by is let go (its import closed); the own region
 * never is. -EOPNOTSUPP: not a window tier; the bind's -errno.
 */
int accel_tier_rebind(struct accel_tier *t, const struct accel_tier_rebind *ops, uint32_t n);

/** How a registered device tier's memory is laid out. */
enum accel_tier_layout {
	/** Block b at base + b * block_stride, block_bytes contiguous (vLLM 0.12). */
	ACCEL_TIER_LAYOUT_BLOCKS = 0,
	/**
	 * One tensor per layer: layer l of block b at layer_base[l] + b *
	 * block_stride, block_bytes / layers bytes.
	 */
	ACCEL_TIER_LAYOUT_LAYERS = 1,
};

/** A device tier's shape (ACCEL_OPTS()). */
struct accel_tier_cuda_opts {
	size_t sz;
	/** The CUDA device ordinal. */
	int32_t device;
	/** Registered tiers: enum accel_tier_layout (allocated: BLOCKS, 0). */
	uint32_t layout;
	/** Bytes of one block, all its layers: at most ACCEL_TIER_BLOCK_MAX. */
	uint64_t block_bytes;
	/** Blocks (at least 1). */
	uint32_t blocks;
	/** Layer pieces per block (0 or 1: one); block_bytes a multiple of it. */
	uint32_t layers;
	/**
	 * Registered tiers: bytes from one block to the next (BLOCKS: at least
	 * block_bytes; LAYERS: from a layer piece to the next block's, at least
	 * block_bytes / layers); 0: packed. Allocated tiers: 0.
	 */
	uint64_t block_stride;
	/** Registered, BLOCKS: the device pointer of block 0 (CUdeviceptr). */
	uint64_t base;
	/** Registered, LAYERS: nr_layer_base (= layers) device pointers, copied. */
	const uint64_t *layer_base;
	uint32_t nr_layer_base;
	/** None defined yet: 0 (ACCEL_TIER_WINDOW: EOPNOTSUPP, a host tiers' flag). */
	uint32_t flags;
};

/**
 * A device tier the library allocates on CUDA device opts->device:
 * blocks * block_bytes (rounded up to the allocation granularity) of
 * device memory, reserved and mapped at once (block b at b * block_bytes),
 * freed by accel_tier_destroy(). Needs no kvaccel device. NULL and errno:
 * EINVAL, E2BIG, EOVERFLOW, ENODEV (no CUDA driver, no such device, no
 * virtual memory management: the log callback says which), ENOMEM.
 */
struct accel_tier *accel_tier_create_cuda(const struct accel_tier_cuda_opts *opts);
/**
 * A device tier over the engine's own device memory on opts->device, laid
 * out as opts->layout says. The library never frees, maps or unmaps it;
 * it must stay allocated while the tier lives. NULL and errno as
 * accel_tier_create_cuda() (EINVAL: a NULL base, a stride shorter than
 * a piece, a layer_base count that is not layers; EOVERFLOW: the last
 * block past the end of the address space).
 */
struct accel_tier *accel_tier_register_cuda(const struct accel_tier_cuda_opts *opts);

/** A mover's options (ACCEL_OPTS(); NULL: defaults). */
struct accel_mover_opts {
	size_t sz;
	/** None defined yet: 0. */
	uint32_t flags;
	uint32_t pad;
};

/**
 * A new mover with its worker thread. NULL and errno: EINVAL, E2BIG,
 * ENOMEM, or eventfd()'s and pthread_create()'s.
 */
struct accel_mover *accel_mover_create(const struct accel_mover_opts *opts);
/** Wait for every job still running, then free the mover (NULL-safe). */
void accel_mover_destroy(struct accel_mover *mover);

/** A submission's options (ACCEL_OPTS(); NULL: none). */
struct accel_mover_submit_opts {
	size_t sz;
	/** Handed back with the job's completion. */
	uint64_t user_data;
	/** ACCEL_MOVER_*. */
	uint32_t flags;
	uint32_t pad;
	/** With ACCEL_MOVER_LAYERS: the first layer piece copied, and how many. */
	uint32_t layer_first;
	uint32_t layer_count;
	/**
	 * With ACCEL_MOVER_WAIT_EVENT: a CUevent of the engine's; the job's
	 * copies start once its latest record (at submission) completed.
	 */
	void *wait_event;
	/**
	 * With ACCEL_MOVER_RECORD_EVENT: a CUevent of the engine's (created in
	 * the primary context of the job's first device tier's GPU), recorded
	 * once the job's copies are done: cuStreamWaitEvent() on it.
	 */
	void *record_event;
};

/** accel_mover_submit_opts.flags: copy layers layer_first.. of each block only. */
#define ACCEL_MOVER_LAYERS		(1u << 0)
/** accel_mover_submit_opts.flags: wait_event is set. */
#define ACCEL_MOVER_WAIT_EVENT		(1u << 1)
/** accel_mover_submit_opts.flags: record_event is set. */
#define ACCEL_MOVER_RECORD_EVENT	(1u << 2)
#define ACCEL_MOVER_SUBMIT_FLAGS	(ACCEL_MOVER_LAYERS | ACCEL_MOVER_WAIT_EVENT | \
					 ACCEL_MOVER_RECORD_EVENT)

/**
 * Copy @n runs as one job: run i copies runs[i].count blocks from
 * tiers[src_tier] (blocks src_block...) to tiers[dst_tier] (dst_block...).
 * Both tiers of a run have the same block_bytes, and the same layers
 * (or the one with fewer keeps its blocks contiguous: any tier but a
 * LAYERS-layout one); a run must not overlap itself; runs of one job are
 * copied in no set order (none may write what another reads). With
 * ACCEL_MOVER_LAYERS only layer pieces [layer_first, layer_first +
 * layer_count) of each block are copied (both tiers of every run with
 * the same layers). Adjacent pieces are coalesced. Between host tiers of
 * one device the copy engine does it (chained jobs); a run with a memfd
 * tier, or tiers of different devices, makes the job a memcpy on the
 * worker thread; a run with a device tier makes it a CUDA job (every run
 * on CUDA streams: Documentation/libaccel.rst, "Device tiers"), whose
 * failed copies are its status. *job_id (never 0) names the job in
 * accel_mover_poll(). @n 0: a job that finishes at once. The tiers must
 * outlive the job. -EINVAL: a bad argument or run, events for a job
 * without a device tier (nothing submitted); a copy-engine refusal's or
 * the CUDA driver's -errno before anything was queued.
 */
int accel_mover_submit(struct accel_mover *mover, const struct accel_tier *const tiers[],
		       uint32_t nr_tiers, const struct accel_bm_run *runs, uint32_t n,
		       const struct accel_mover_submit_opts *opts, uint64_t *job_id);

/** A finished job. */
struct accel_mover_done {
	uint64_t job_id;
	uint64_t user_data;
	/** 0, or the -errno that failed it (its blocks' contents unknown). */
	int32_t status;
	uint32_t pad;
};

/**
 * Up to @max finished jobs into @out, oldest first, each reported once;
 * waits up to @timeout_ns (0: not at all, -1: forever) for one when none
 * has finished yet. Returns how many (0: none within the timeout).
 */
int accel_mover_poll(struct accel_mover *mover, struct accel_mover_done *out, uint32_t max,
		     int64_t timeout_ns);
/**
 * An eventfd (the mover's; do not close it) that is readable while
 * finished jobs wait to be polled: for epoll and asyncio. Reading it is
 * not needed (accel_mover_poll() resets it once nothing is left).
 */
int accel_mover_fd(const struct accel_mover *mover);
/** Jobs submitted and not yet finished. */
int accel_mover_pending(const struct accel_mover *mover);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_MOVER_H */
