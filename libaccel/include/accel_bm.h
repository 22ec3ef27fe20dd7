/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the block manager (accel_bm_*): the bookkeeping of a paged KV
 * cache, with no device and no memory, for an engine's scheduler process.
 * Included by accel.h; Documentation/libaccel.rst, "The block manager";
 * accel_bm_create(3).
 *
 * Tiers (a device tier, a host tier, ...) are pools of block ids. A
 * sequence lives on one tier: its block table names blocks of that tier.
 * Blocks carry reference counts; full blocks have SHA-256 keys chained on
 * their parent's (parent key, tokens, the sequence's extra keys) and enter
 * the tier's prefix cache once the engine commits them; cached blocks no
 * one references are evicted LRU (or ARC) first when a tier runs short.
 *
 * The manager never moves bytes: a call that needs data moved (a
 * copy-on-write, moving a sequence to another tier) returns a transfer
 * plan, runs of blocks to copy. Every block a plan reads or writes stays
 * reserved (never handed out again) until accel_bm_plan_done(); a plan that
 * failed is undone. A sequence with a plan pending refuses changes (-EBUSY)
 * until then.
 *
 * Thread safety: one mutex per manager; every call may be made from any
 * thread, and no call waits for anything but that mutex.
 */
#ifndef ACCEL_BM_H
#define ACCEL_BM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct accel_bm;

/** Most tiers a manager has. */
#define ACCEL_BM_TIERS_MAX	8
/** A block key: SHA-256 over (parent key, tokens, extra keys). */
#define ACCEL_BM_KEY_BYTES	32

struct accel_bm_key {
	uint8_t b[ACCEL_BM_KEY_BYTES];
};

/** How cached blocks no one references are evicted. */
enum accel_bm_evict {
	ACCEL_BM_EVICT_LRU = 0,	/* least recently released first */
	ACCEL_BM_EVICT_ARC = 1,	/* adaptive replacement (T1/T2, ghosts B1/B2) */
};

/** A manager's shape (ACCEL_OPTS()). */
struct accel_bm_config {
	size_t sz;
	/** Tokens per block (1 to 65536). */
	uint32_t block_tokens;
	/** Tiers: 1 to ACCEL_BM_TIERS_MAX; tier_blocks[i] the blocks of tier i. */
	uint32_t nr_tiers;
	const uint32_t *tier_blocks;
	/** enum accel_bm_evict. */
	uint32_t evict;
	/** ARC: ghost entries per tier (0: the tier's blocks; at most that). */
	uint32_t arc_ghosts;
	/** Longest run of a plan, in blocks (0: no limit). */
	uint32_t max_run;
	/** None defined yet: 0. */
	uint32_t flags;
};

/**
 * A new manager, every block free. NULL and errno: EINVAL (a bad field),
 * E2BIG (unknown non-zero fields past sz), ENOMEM.
 */
struct accel_bm *accel_bm_create(const struct accel_bm_config *cfg);
void accel_bm_destroy(struct accel_bm *bm);

/* ---- keys and lookup ---- */

/**
 * The keys of the full blocks of @n tokens that follow a block whose key
 * is @parent (NULL: the start of a sequence), with @extra_len bytes of
 * extra keys: into @keys (room for n / block_tokens). Returns the count.
 */
int accel_bm_keys(struct accel_bm *bm, const struct accel_bm_key *parent,
		  const int32_t *tokens, uint64_t n, const void *extra, size_t extra_len,
		  struct accel_bm_key *keys);
/**
 * How many leading keys of the chain @keys[0..n) each tier's prefix cache
 * holds (committed blocks, referenced or not): hits[t] for every tier.
 * Side-effect free: no recency change, no reference taken.
 */
int accel_bm_lookup(struct accel_bm *bm, const struct accel_bm_key *keys, uint32_t n,
		    uint32_t *hits);

/* ---- sequences ---- */

/** A new sequence's options (ACCEL_OPTS(); NULL: none). */
struct accel_bm_seq_opts {
	size_t sz;
	/** The tier its blocks are on (default 0). */
	uint32_t tier;
	/** Extra keys hashed into every block's key (an adapter id, a salt); copied. */
	const void *extra_keys;
	size_t extra_keys_len;
	/**
	 * Room for this many tokens allocated up front (LIBACCEL_0.3): the
	 * sequence's tables (block ids, keys, tokens), which otherwise grow by
	 * doubling, are not reallocated while it grows up to them. A hint, not
	 * a limit; 0: none. More than the tier's blocks hold: -E2BIG.
	 */
	uint64_t reserve_tokens;
};

int accel_bm_seq_create(struct accel_bm *bm, const struct accel_bm_seq_opts *opts,
			uint32_t *seq);
/** Release its blocks (reserved ones stay so until their plan is done). */
int accel_bm_seq_free(struct accel_bm *bm, uint32_t seq);
/** A new sequence sharing every block of @seq (copy-on-write later). */
int accel_bm_seq_fork(struct accel_bm *bm, uint32_t seq, uint32_t *child);

/** What a transfer plan names (ACCEL_OPTS(); written up to sz). */
struct accel_bm_plan {
	size_t sz;
	/** Out: the plan's id for accel_bm_plan_done(); 0: nothing to move. */
	uint64_t id;
	/** In: room for max_runs runs (may be NULL with max_runs 0). */
	struct accel_bm_run *runs;
	uint32_t max_runs;
	/** Out: the plan's runs (more than max_runs: accel_bm_plan_runs()). */
	uint32_t nr_runs;
	/** Out: blocks to copy, and blocks not copied (a still-valid copy reused). */
	uint32_t blocks, reused;
};

/** Copy @count blocks from (src_tier, src_block...) to (dst_tier, dst_block...). */
struct accel_bm_run {
	uint32_t src_tier, src_block;
	uint32_t dst_tier, dst_block;
	uint32_t count;
};

/**
 * Start an empty sequence with a prompt: leading full blocks found in its
 * tier's prefix cache are shared (*cached_tokens, may be NULL), the rest
 * allocated. @keys: NULL, or the keys of the prompt's full blocks as
 * accel_bm_keys() gives them (spares computing them again). All or
 * nothing: -ENOSPC (the tier is short), -EINVAL (not empty).
 */
int accel_bm_seq_start(struct accel_bm *bm, uint32_t seq, const int32_t *tokens, uint64_t n,
		       const struct accel_bm_key *keys, uint64_t *cached_tokens);
/**
 * Append tokens (their KV is to be written into the blocks the table
 * names). Blocks that fill get their keys but enter the prefix cache only
 * at accel_bm_commit(). Writing into a shared or cached partial last block
 * first copies it: @plan (may be NULL only where that cannot happen:
 * -EINVAL) receives a one-block copy-on-write plan, the table already
 * naming the copy. @keys as accel_bm_seq_start()'s, for the blocks this
 * call fills. All or nothing.
 */
int accel_bm_append(struct accel_bm *bm, uint32_t seq, const int32_t *tokens, uint64_t n,
		    const struct accel_bm_key *keys, struct accel_bm_plan *plan);
/**
 * The KV of the sequence's first @up_to_block blocks (full ones) is
 * written: they enter the prefix cache (a key another block already has
 * leaves this one private). -ERANGE: past the full blocks. Returns the
 * blocks published.
 */
int accel_bm_commit(struct accel_bm *bm, uint32_t seq, uint32_t up_to_block);
/**
 * The KV of blocks @first_block.. of the sequence was written again without
 * an append (LIBACCEL_0.3): e.g. a prefill chunk resumed after an
 * operator-level yield writes the layers it had not reached. The copies of
 * those blocks a move left on another tier are stale: they are released,
 * so the next move copies the blocks. -ERANGE: past the sequence's blocks;
 * -EBUSY: a plan of the sequence is pending.
 */
int accel_bm_seq_written(struct accel_bm *bm, uint32_t seq, uint32_t first_block);
/**
 * Drop the last @n tokens (speculative decoding's rejected ones; at most
 * all). A full block that becomes partial loses its key, and leaves the
 * prefix cache if this sequence published it and nobody else holds it;
 * otherwise the next append copies it. Returns the blocks released.
 */
int accel_bm_truncate(struct accel_bm *bm, uint32_t seq, uint64_t n);
/**
 * Live migration's source on a node (LIBACCEL_0.3): the sequence's memory
 * is about to change hands. Each block only it holds leaves the prefix
 * cache at once (no lookup finds it from now on, so none becomes shared)
 * and gets own[i] = 1: once the sequence is freed its memory may be given
 * away (rebound to another engine's). own[i] = 0: another sequence, a
 * cached entry or a pending plan holds it too: its content must stay
 * (copy it). A later accel_bm_commit() publishes the blocks again (the
 * migration undone). Returns the blocks; -ENOBUFS (nothing done) when
 * they are more than @max; -EBUSY: a plan of the sequence is pending.
 */
int accel_bm_seq_export(struct accel_bm *bm, uint32_t seq, uint8_t *own, uint32_t max);
/**
 * Move the sequence to tier @tier (swap out, swap in): the plan copies the
 * blocks that have no valid copy there yet. Reused without a copy: full
 * blocks that tier caches under the same key, and the blocks of the
 * sequence's previous tier not written since it left (the copies a move
 * leaves behind stay valid, and held, until written or needed for space).
 * The table names the new tier's blocks at once; the old ones are kept
 * until accel_bm_plan_done(). -ENOSPC: the tier is short; -EALREADY: on
 * it already.
 */
int accel_bm_seq_move(struct accel_bm *bm, uint32_t seq, uint32_t tier,
		      struct accel_bm_plan *plan);

/* ---- plans ---- */

/** A plan's runs from @first on, up to @max of them: returns how many it has in all. */
int accel_bm_plan_runs(struct accel_bm *bm, uint64_t plan_id, uint32_t first,
		       struct accel_bm_run *runs, uint32_t max);
/**
 * The caller finished plan @plan_id: @status 0 (every run copied) or
 * -errno (the operation is undone: a copy-on-write gives the sequence its
 * old block and tokens back, a move leaves it where it was). Its blocks
 * stop being reserved. -ENOENT: no such plan pending.
 */
int accel_bm_plan_done(struct accel_bm *bm, uint64_t plan_id, int status);

/* ---- reading ---- */

/** A sequence (ACCEL_OPTS(); written up to sz). */
struct accel_bm_seq_info {
	size_t sz;
	uint32_t tier;
	uint32_t nr_blocks;
	uint64_t nr_tokens;
	/** Leading full blocks committed. */
	uint32_t nr_committed;
	uint32_t pad;
	/** The plan pending on it (0: none). */
	uint64_t plan_id;
};

int accel_bm_seq_info(struct accel_bm *bm, uint32_t seq, struct accel_bm_seq_info *info);
/**
 * The block tables of @n sequences into one array: offsets[i] (room for
 * n + 1) is where seqs[i]'s ids start in @ids, offsets[n] the total;
 * tiers (may be NULL) receives each one's tier. Returns the total;
 * -ENOBUFS (offsets filled, ids not) when it is over @max_ids.
 */
int accel_bm_block_tables(struct accel_bm *bm, const uint32_t *seqs, uint32_t n,
			  uint32_t *offsets, uint32_t *ids, uint32_t max_ids, uint32_t *tiers);
/** Keys of the sequence's full blocks [first, first + n) (zero: not full). */
int accel_bm_seq_keys(struct accel_bm *bm, uint32_t seq, uint32_t first, uint32_t n,
		      struct accel_bm_key *keys);

/** A tier's counters (ACCEL_OPTS(); written up to sz). */
struct accel_bm_tier_stats {
	size_t sz;
	uint32_t blocks;
	uint32_t free;		/* in no one's hands, no key */
	uint32_t cached;	/* no reference, keyed: evictable */
	uint32_t used;		/* referenced */
	uint32_t reserved;	/* read or written by a pending plan */
	uint32_t arc_p;		/* ARC: target size of T1 */
	uint32_t arc_t1, arc_t2, arc_b1, arc_b2;	/* ARC: list sizes (LRU: t1 = cached) */
	uint64_t evictions;
	uint64_t hits, misses;	/* prefix blocks shared / allocated by seq_start */
};

int accel_bm_tier_stats(struct accel_bm *bm, uint32_t tier, struct accel_bm_tier_stats *st);
/**
 * Make up to @n more blocks of @tier free (LIBACCEL_0.3): evict cached
 * blocks no one references (the tier's eviction order), then drop the
 * still-valid copies moves left on the tier. Returns how many became free.
 */
int accel_bm_evict(struct accel_bm *bm, uint32_t tier, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_BM_H */
