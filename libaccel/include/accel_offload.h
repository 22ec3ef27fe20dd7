/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the offload manager (accel_offload_*): the bookkeeping of a
 * host tier of KV blocks stored by block key, the shape of vLLM's
 * OffloadingManager. Included by accel.h; Documentation/libaccel.rst,
 * "The offload manager"; accel_offload_create(3).
 *
 * Each of the manager's host block ids is free, being stored (allocated by
 * accel_offload_prepare_store(), not yet visible), ready (stored: found by
 * lookup, loadable, evictable once no load pins it) or ready and pinned by
 * loads (accel_offload_prepare_load() until accel_offload_complete_load()).
 * Ready blocks no load pins are evicted LRU (or ARC) first when a store
 * needs room; blocks being stored or loaded are never evicted. The manager
 * moves no bytes: the caller copies into and out of the host blocks it
 * names, with the data mover (accel_mover.h) or otherwise.
 *
 * Thread safety: one mutex per manager; every call may be made from any
 * thread, and no call waits for anything but that mutex.
 */
#ifndef ACCEL_OFFLOAD_H
#define ACCEL_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "accel_bm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct accel_offload;

/** No host block: a key accel_offload_prepare_store() did not allocate. */
#define ACCEL_OFFLOAD_NO_BLOCK	UINT32_MAX

/** A manager's shape (ACCEL_OPTS()). */
struct accel_offload_opts {
	size_t sz;
	/** Host blocks (1 to 2^30 - 1). */
	uint32_t blocks;
	/** enum accel_bm_evict: ACCEL_BM_EVICT_LRU or ACCEL_BM_EVICT_ARC. */
	uint32_t evict;
	/** ARC: ghost entries (0: as many as blocks; at most that). */
	uint32_t arc_ghosts;
	/** None defined yet: 0. */
	uint32_t flags;
};

/**
 * A new manager, every block free. NULL and errno: EINVAL (a bad field,
 * or no @opts), E2BIG (unknown non-zero fields past sz), ENOMEM.
 */
struct accel_offload *accel_offload_create(const struct accel_offload_opts *opts);
/** Free the manager (NULL-safe). */
void accel_offload_destroy(struct accel_offload *o);

/**
 * How many leading keys of @keys[0..n) are stored and ready (0 to @n). No
 * side effect (recency included); -EINVAL for a bad argument.
 */
int accel_offload_lookup(struct accel_offload *o, const struct accel_bm_key *keys, uint32_t n);

/**
 * Allocate host blocks for the keys of @keys[0..n) not stored or being
 * stored yet, all or nothing. blocks[i] is the host block to copy key i's
 * KV into, or ACCEL_OFFLOAD_NO_BLOCK for a key already stored (or being
 * stored): the caller copies only the keys with a block. Ready blocks no
 * load pins are evicted to make room, least recent first; the keys of
 * @keys are never evicted. @evicted (room for @n keys) receives the
 * evicted keys and *nr_evicted their count (the caller drops them from
 * its own index). A key repeated in @keys is allocated once (room is
 * reserved for each copy). Returns how many keys were allocated (0 to
 * @n), -ENOSPC when too few blocks are free or evictable (nothing
 * changed), -EINVAL for a bad argument.
 */
int accel_offload_prepare_store(struct accel_offload *o, const struct accel_bm_key *keys,
				uint32_t n, uint32_t *blocks, struct accel_bm_key *evicted,
				uint32_t *nr_evicted);

/**
 * The copies of a prepare_store() finished: @ok non-zero, the keys'
 * blocks become ready (most recent first in the eviction order); zero,
 * their blocks are freed (the keys are not stored). Keys not being stored
 * are skipped: pass the keys prepare_store() gave a block. Returns 0, or
 * -EINVAL for a bad argument.
 */
int accel_offload_complete_store(struct accel_offload *o, const struct accel_bm_key *keys,
				 uint32_t n, int ok);

/**
 * Pin the blocks of @keys[0..n) (never evicted until
 * accel_offload_complete_load() of the same keys) and write them to
 * blocks[i]: the caller copies out of them. A load counts as an access
 * (LRU recency; ARC: the blocks move to T2). -ENOENT if any key is not
 * ready (nothing pinned), -EINVAL for a bad argument.
 */
int accel_offload_prepare_load(struct accel_offload *o, const struct accel_bm_key *keys,
			       uint32_t n, uint32_t *blocks);

/**
 * Drop the pins of a prepare_load(): each key must be ready and pinned
 * (once per pin), else -EINVAL and nothing changes. Returns 0.
 */
int accel_offload_complete_load(struct accel_offload *o, const struct accel_bm_key *keys,
				uint32_t n);

/**
 * Mark the ready keys of @keys[0..n) as used now, in order (the last the
 * most recent); keys not ready are skipped. Returns 0, or -EINVAL.
 */
int accel_offload_touch(struct accel_offload *o, const struct accel_bm_key *keys, uint32_t n);

/** A manager's counters (ACCEL_OPTS(); written up to sz). */
struct accel_offload_stats {
	size_t sz;
	uint32_t blocks;	/* host blocks */
	uint32_t free;		/* free */
	uint32_t storing;	/* allocated by a store not yet completed */
	uint32_t ready;		/* stored (pinned or not) */
	uint32_t pinned;	/* ready and pinned by loads */
	uint32_t pad;
	uint64_t evictions;	/* ready blocks evicted so far */
};

int accel_offload_stats(struct accel_offload *o, struct accel_offload_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_OFFLOAD_H */
