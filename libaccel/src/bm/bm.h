/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the block manager's internals (accel_bm.h): one kv_pool per
 * tier, sequences (a kv_seq on their tier's pool, with the still-valid
 * copies a move left on another tier), and pending transfer plans.
 *
 * Who holds a reference on a block of tier t (bm_check() recounts them):
 *   - each live sequence on t whose table names it;
 *   - each sequence whose still-valid copies (shadow) are on t;
 *   - a pending move's undo record: the old table, the old shadow;
 *   - each reservation of a pending plan (every run's source and
 *     destination block, once per block).
 * All under bm->lock.
 */
#ifndef ACCEL_BM_INTERNAL_H
#define ACCEL_BM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel.h"
#include "../kv/kv_seq.h"

#define BM_NONE		UINT32_MAX

enum bm_plan_kind { BM_PLAN_COW = 1, BM_PLAN_MOVE = 2 };

/* Where a moved block's new home came from (undo). */
enum bm_from { BM_FROM_FRESH = 0, BM_FROM_KEY = 1, BM_FROM_SHADOW = 2 };

struct bm_res {
	uint32_t tier, block;
};

struct bm_plan {
	uint64_t id;		/* 0: slot free */
	enum bm_plan_kind kind;
	uint32_t seq;		/* BM_NONE once the sequence is freed */
	struct accel_bm_run *runs;
	uint32_t nr_runs;
	struct bm_res *res;	/* reservations: one reference each */
	uint32_t nr_res;
	/* BM_PLAN_COW: the sequence before the append. */
	uint64_t old_tokens;
	uint32_t old_tail;	/* the block copied from */
	int32_t *old_tail_tokens;
	/* BM_PLAN_MOVE: where it was (references held until done). */
	uint32_t old_tier;
	uint32_t *old_blocks;	/* the old table */
	uint32_t nr_old;
	uint8_t *from;		/* enum bm_from, per block of the new table */
	uint32_t old_shadow_tier;
	uint32_t *old_shadow;	/* shadow left on a third tier (or NULL) */
	uint32_t nr_old_shadow;
	uint32_t move_flags;	/* BM_MOVE_* */
};

struct bm_seq {
	bool live;
	uint32_t tier;
	struct kv_seq s;
	int32_t *tok;		/* every token (truncate needs the new tail's) */
	uint64_t cap_tok;
	/* Still-valid copies of the blocks on shadow_tier (BM_NONE: none). */
	uint32_t shadow_tier;
	uint32_t *shadow;
	uint32_t nr_shadow;	/* entries (some BM_NONE) */
	uint32_t plan;		/* slot of the pending plan, BM_NONE */
};

struct bm_tier {
	struct kv_pool pool;
	uint32_t reserved;	/* reservation references */
	uint64_t hits, misses;
};

struct accel_bm {
	pthread_mutex_t lock;
	uint32_t block_tokens;
	uint32_t nr_tiers;
	uint32_t max_run;
	struct bm_tier tier[ACCEL_BM_TIERS_MAX];
	struct bm_seq *seq;
	uint32_t nr_seq, cap_seq;
	uint32_t free_seq;	/* a free slot hint */
	struct bm_plan *plan;
	uint32_t nr_plan;
	uint32_t gen;
	/* Called with a tier's fresh blocks before they are handed out (bm_set_prepare()). */
	struct kv_prepare prep[ACCEL_BM_TIERS_MAX];
};

/* bm_core.c */
struct bm_seq *bm_seq_get(struct accel_bm *bm, uint32_t seq);
/* Drop still-valid copies others hold on @tier until @need blocks are free or cached. */
void bm_make_room(struct accel_bm *bm, uint32_t tier, uint32_t need);
void bm_shadow_drop(struct accel_bm *bm, struct bm_seq *q, uint32_t from);
/* Recount every block's references and check each pool: 0, or -EUCLEAN and @why. */
int bm_check(struct accel_bm *bm, char *why, size_t len);

/*
 * @prep (NULL: none) is called, with the manager's lock held, with every
 * block of tier @tier that seq_start, append or a move allocates before
 * the call returns; an error undoes the call (-errno). For a cache whose
 * device memory must be mapped first (the KV cache's cuda backend).
 */
void bm_set_prepare(struct accel_bm *bm, uint32_t tier, const struct kv_prepare *prep);
/* The tier's prepare hook for kv_seq's calls, or NULL. */
const struct kv_prepare *bm_prep(const struct accel_bm *bm, uint32_t tier);

/* bm_plan.c */
/*
 * accel_bm_seq_move() with flags (the KV cache's swaps):
 * BM_MOVE_DROP_OLD: once the plan is done, the old tier's blocks are
 *	released instead of kept as still-valid copies (a swap out: device
 *	blocks go back at once; keyed ones stay in the prefix cache);
 * BM_MOVE_PLAN_ALWAYS: a plan even when nothing is copied (no runs), so
 *	the caller's own completion (a CUDA event recorded, an error) can
 *	still undo the move with accel_bm_plan_done().
 */
#define BM_MOVE_DROP_OLD	(1u << 0)
#define BM_MOVE_PLAN_ALWAYS	(1u << 1)
int bm_seq_move(struct accel_bm *bm, uint32_t seq, uint32_t tier, uint32_t flags,
		struct accel_bm_plan *plan);
/*
 * A new plan for @seq with room for @nres reservations and @nruns runs:
 * its slot, or BM_NONE (no memory).
 */
uint32_t bm_plan_new(struct accel_bm *bm, enum bm_plan_kind kind, uint32_t seq, uint32_t nres,
		     uint32_t nruns);
/* Reserve (tier, block): one reference until the plan is done (room made by bm_plan_new()). */
void bm_plan_reserve(struct accel_bm *bm, struct bm_plan *pl, uint32_t tier, uint32_t block);
/* Release the plan's reservations and its slot. */
void bm_plan_free(struct accel_bm *bm, uint32_t slot);
/* The sequence of a pending plan is freed: drop what undo would have used. */
void bm_plan_orphan(struct accel_bm *bm, struct bm_plan *pl);
/* Fill the caller's struct accel_bm_plan (@slot BM_NONE: nothing to move). */
void bm_plan_report(struct accel_bm *bm, uint32_t slot, struct accel_bm_plan *out,
		    uint32_t blocks, uint32_t reused);

#endif
