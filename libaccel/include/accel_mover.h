/* SPDX-License-Identifier: MIT */
/*
 * libaccel - tiers (the memory behind a block manager's block ids) and the
 * data mover that executes transfer plans between them. Included by
 * accel.h; Documentation/libaccel.rst, "Tiers and the data mover";
 * accel_mover_create(3).
 *
 * A tier is a run of equal blocks: a host tier in a kvaccel region
 * (pinned, shareable as a dma-buf, copied by the module's copy engine), or
 * a memfd-backed host tier that needs no kvaccel device (no quotas, no
 * isolation from other processes holding the memfd, no zero-copy remap
 * into spaces; its copies are memcpy on the mover's worker thread).
 *
 * The mover takes runs (struct accel_bm_run, as accel_bm_plan_runs()
 * gives them) whose tier numbers index the caller's tier array, runs them
 * as one job, and reports each job's id and status once it finished:
 * accel_mover_poll(), and accel_mover_fd() for an event loop.
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
};

/** accel_tier_opts.flags: place the host tier's blocks on NUMA node @node. */
#define ACCEL_TIER_ON_NODE	(1u << 0)

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
};

int accel_tier_info(const struct accel_tier *tier, struct accel_tier_info *info);
/** The tier's mapping of @block; NULL and errno EINVAL (no tier, past its end). */
void *accel_tier_block_addr(const struct accel_tier *tier, uint32_t block);
/**
 * An fd another process (or driver) can map the tier with, owned by the
 * caller: a host tier's region dma-buf (accel_region_import() takes it),
 * a memfd tier's memfd (a new fd of the same file: mmap() it; anyone
 * holding it reads and writes the blocks).
 */
int accel_tier_export(struct accel_tier *tier, int *fd);

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
	/** None defined yet: 0. */
	uint32_t flags;
	uint32_t pad;
};

/**
 * Copy @n runs as one job: run i copies runs[i].count blocks from
 * tiers[src_tier] (blocks src_block...) to tiers[dst_tier] (dst_block...).
 * Both tiers of a run have the same block_bytes; a run must not overlap
 * itself; runs of one job are copied in no set order (none may write what
 * another reads). Between host tiers of one device the copy engine does it
 * (coalesced segments, chained jobs); any run with a memfd tier, or tiers
 * of different devices, makes the job a memcpy on the worker thread.
 * *job_id (never 0) names the job in accel_mover_poll(). @n 0: a job that
 * finishes at once. The tiers must outlive the job. -EINVAL: a bad
 * argument or run (nothing submitted); a copy-engine refusal's -errno.
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
