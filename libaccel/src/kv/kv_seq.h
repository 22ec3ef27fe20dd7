/* SPDX-License-Identifier: MIT */
/*
 * libaccel - a sequence's block table on one pool: appending tokens,
 * prefix sharing through the pool's block keys (as vLLM's prefix cache
 * does: a full block's key chains its tokens, and the sequence's extra
 * keys, on its parent's; kv_key.h), forks
 * that share every block, and copy-on-write when a shared block changes.
 * The block copies a change needs are returned to the caller, who moves
 * the bytes (kv_copy); the table already names the new blocks.
 * Not thread-safe.
 */
#ifndef ACCEL_KV_SEQ_H
#define ACCEL_KV_SEQ_H

#include "kv_pool.h"

/* One block copy the caller must perform (same pool). */
struct kv_copy {
	uint32_t src, dst;
};

struct kv_copies {
	struct kv_copy *v;
	uint32_t n, cap;
};

/*
 * Called with newly allocated blocks before an append uses them (the cuda
 * backend maps their memory); an error undoes the append.
 */
struct kv_prepare {
	int (*fn)(void *arg, const uint32_t *blocks, uint32_t n);
	void *arg;
};

struct kv_seq {
	uint32_t block_tokens;
	uint64_t nr_tokens;
	uint32_t *blocks;	/* block table */
	struct kv_key *keys;	/* key of each full block (zero: none yet) */
	uint32_t nr_blocks, cap;
	int32_t *tail;		/* tokens of the last, partial block */
	void *extra;		/* extra keys hashed into every block's key */
	size_t extra_len;
	/*
	 * Commit gating (the block manager): a block that fills keeps its
	 * key in keys[] but is published only by kv_seq_commit(), once the
	 * engine has written its KV (the KV cache commits every full block
	 * after each change). Without it a block is published as it fills.
	 */
	bool defer_publish;
	uint32_t nr_committed;	/* leading blocks commit has gone through */
	uint8_t *pub;		/* per block: 1 if this sequence published it */
};

int kv_seq_init(struct kv_seq *s, uint32_t block_tokens);
/* Room for @tokens tokens' blocks, so that appends up to them allocate nothing. */
int kv_seq_reserve(struct kv_seq *s, uint64_t tokens);
/* Extra keys (an adapter id, a cache salt) for an empty sequence: copied. */
int kv_seq_set_extra(struct kv_seq *s, const void *extra, size_t len);
/* Drop every block (the sequence is empty after). */
void kv_seq_release(struct kv_pool *p, struct kv_seq *s);
void kv_seq_fini(struct kv_pool *p, struct kv_seq *s);

/*
 * Start an empty sequence with a prompt: full blocks already cached (same
 * prefix) are shared; the rest is allocated. *cached receives how many
 * tokens were found. All or nothing (-ENOSPC, -ENOMEM).
 */
int kv_seq_start(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		 uint64_t *cached, struct kv_copies *copies, const struct kv_prepare *prep);
/*
 * Append tokens (decode steps). Writing into a partial last block that is
 * shared first copies it (one kv_copy). A block that fills is published;
 * if an identical block exists, the sequence shares it instead and frees
 * its own. All or nothing.
 */
int kv_seq_append(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		  struct kv_copies *copies, const struct kv_prepare *prep);
/*
 * kv_seq_start() and kv_seq_append() with the keys of the blocks the call
 * fills given (@keys: one per block that fills, chained as kv_key_block()
 * chains them; NULL: computed here).
 */
int kv_seq_start_keys(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		      const struct kv_key *keys, uint64_t *cached, struct kv_copies *copies,
		      const struct kv_prepare *prep);
int kv_seq_append_keys(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		       const struct kv_key *keys, struct kv_copies *copies,
		       const struct kv_prepare *prep);
/*
 * Publish full blocks [nr_committed, @up_to) (their KV is written); a key
 * another block already has leaves ours private. -ERANGE past the full
 * blocks. Returns the blocks that entered the prefix cache.
 */
int kv_seq_commit(struct kv_pool *p, struct kv_seq *s, uint32_t up_to);
/*
 * Drop the last @n tokens (at most all): blocks past the end are released
 * (a full, published one stays cached: its KV is still right); a full
 * block that becomes partial loses its key, and leaves the prefix cache if
 * this sequence published it and nobody else holds it; otherwise it stays
 * cached and the next append copies it first (kv_seq_tail_shared()).
 * @tail: the tokens of the new last block (the caller's record of the
 * sequence). Returns the blocks released.
 */
uint32_t kv_seq_truncate(struct kv_pool *p, struct kv_seq *s, uint64_t n, const int32_t *tail);
/* @dst (initialised, empty) shares every block of @src (and its extra keys). */
int kv_seq_fork(struct kv_pool *p, const struct kv_seq *src, struct kv_seq *dst);
/*
 * Would the next append write into a shared block (a partial last block
 * other sequences reference, or one in the prefix cache)? Then the caller copies it into a block of
 * its own and calls kv_seq_replace_tail() before appending.
 */
bool kv_seq_tail_shared(const struct kv_pool *p, const struct kv_seq *s);
/* Make @b (a used block holding a copy of the last block) the last block. */
void kv_seq_replace_tail(struct kv_pool *p, struct kv_seq *s, uint32_t b);

int kv_copies_add(struct kv_copies *c, uint32_t src, uint32_t dst);
void kv_copies_fini(struct kv_copies *c);

/* ---- coalescing ---- */

/* A run of @count blocks copied from @src to @dst, both contiguous. */
struct kv_run {
	uint32_t src, dst, count;
};

/*
 * Sort @copies by source and merge neighbours whose sources and
 * destinations both continue, into runs of at most @max_blocks blocks.
 * @runs has room for @n entries; returns the number of runs.
 */
uint32_t kv_coalesce(struct kv_copy *copies, uint32_t n, uint32_t max_blocks,
		     struct kv_run *runs);

#endif
