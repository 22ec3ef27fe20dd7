/* SPDX-License-Identifier: MIT */
/*
 * libaccel - a sequence's block table on one pool: appending tokens,
 * prefix sharing through the pool's content hashes (as vLLM's prefix
 * cache does: a full block's hash chains its tokens on its parent's), forks
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

struct kv_seq {
	uint32_t block_tokens;
	uint64_t nr_tokens;
	uint32_t *blocks;	/* block table */
	uint64_t *hashes;	/* content hash of each full block */
	uint32_t nr_blocks, cap;
	int32_t *tail;		/* tokens of the last, partial block */
};

int kv_seq_init(struct kv_seq *s, uint32_t block_tokens);
/* Drop every block (the sequence is empty after). */
void kv_seq_release(struct kv_pool *p, struct kv_seq *s);
void kv_seq_fini(struct kv_pool *p, struct kv_seq *s);

/*
 * Start an empty sequence with a prompt: full blocks already cached (same
 * prefix) are shared; the rest is allocated. *cached receives how many
 * tokens were found. All or nothing (-ENOSPC, -ENOMEM).
 */
int kv_seq_start(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		 uint64_t *cached, struct kv_copies *copies);
/*
 * Append tokens (decode steps). Writing into a partial last block that is
 * shared first copies it (one kv_copy). A block that fills is published;
 * if an identical block exists, the sequence shares it instead and frees
 * its own. All or nothing.
 */
int kv_seq_append(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		  struct kv_copies *copies);
/* @dst (initialised, empty) shares every block of @src. */
int kv_seq_fork(struct kv_pool *p, const struct kv_seq *src, struct kv_seq *dst);

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
