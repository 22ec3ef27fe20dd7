/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the expert store's pure logic (no device): placement checks,
 * the executor's next wave, and the bookkeeping of steps in flight per
 * table version. Tested natively (tests/libaccel/moe_store_unit.c).
 */
#ifndef ACCEL_MOE_STORE_LOGIC_H
#define ACCEL_MOE_STORE_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * moe_placement_check() - a layer's placement: every slot names an expert
 * in [0, @experts) and every expert has a slot. 0 or -EINVAL.
 */
int moe_placement_check(const int32_t *phy2log, uint32_t num_slots, uint32_t experts);

/** Whether @device already holds a copy of @expert (a change to it is a rebind). */
typedef bool (*moe_has_copy_fn)(void *arg, uint32_t device, uint32_t expert);

/**
 * moe_next_wave() - the executor's next step for one layer, from @cur
 * toward @target (both valid placements of @num_slots slots): @wave
 * receives an intermediate placement in which each slot holds its @cur or
 * its @target expert, every expert still has a slot, and no device needs
 * more than @k new copies (an expert @has_copy says it lacks). Slots are
 * taken in order; a change that would leave an expert with no slot is put
 * back (the highest such slot first) until every expert has one. If that
 * leaves nothing to do while @cur differs from @target, the wave is
 * @target itself and *@over_k is set (the cycle needed more than @k new
 * copies on some device).
 *
 * Return: the number of slots the wave changes (0: @cur is @target), or
 * -EINVAL / -ENOMEM.
 */
int moe_next_wave(const int32_t *cur, const int32_t *target, uint32_t num_slots,
		  uint32_t experts, uint32_t slots_per_device, uint32_t k,
		  moe_has_copy_fn has_copy, void *arg, int32_t *wave, bool *over_k);

/** Steps in flight, counted per table version. */
struct moe_epochs {
	uint64_t *ver;
	uint32_t *cnt;
	uint32_t n, cap;
};

/** A step of @version begins. 0 or -ENOMEM. */
int moe_epochs_begin(struct moe_epochs *e, uint64_t version);
/** A step of @version ends. 0 or -EINVAL (none in flight). */
int moe_epochs_end(struct moe_epochs *e, uint64_t version);
/** The oldest version in flight into *@version; false when no step is in flight. */
bool moe_epochs_oldest(const struct moe_epochs *e, uint64_t *version);
/** Whether a step of @version is in flight. */
bool moe_epochs_has(const struct moe_epochs *e, uint64_t version);
/** Steps in flight. */
uint32_t moe_epochs_count(const struct moe_epochs *e);
void moe_epochs_fini(struct moe_epochs *e);

/**
 * moe_block_size() - the region block size for experts of @bytes: the
 * largest power of two from 4 KiB to 2 MiB whose blocks hold an expert with
 * at most an eighth of it left over, else 4 KiB. *@blocks receives the
 * blocks per expert.
 */
uint32_t moe_block_size(uint64_t bytes, uint32_t *blocks);

/**
 * struct moe_share_index - another instance's expert copies
 * (accel_moe_store_opts.from) by layer and expert, and which of them a
 * device of this store took.
 * @start: [layers * experts + 1], @order: [n] the entries of (layer l,
 *	expert e) are order[start[l * experts + e] .. start[... + 1]), in
 *	their given order.
 * @node: [n] each entry's node; @used: [n] taken by a device.
 */
struct moe_share_index {
	uint32_t experts;
	uint32_t *start, *order;
	int32_t *node;
	bool *used;
};

/**
 * moe_share_index_build() - index @n entries given as (@layer[i],
 * @expert[i], @node[i]). -EINVAL: an entry out of [0, @layers) x [0,
 * @experts) or a node below -1; -ENOMEM.
 */
int moe_share_index_build(struct moe_share_index *ix, const uint32_t *layer,
			  const uint32_t *expert, const int32_t *node, uint32_t n,
			  uint32_t layers, uint32_t experts);
void moe_share_index_fini(struct moe_share_index *ix);

/**
 * moe_share_pick() - what a copy of expert @expert of layer @layer on a
 * device of node @node (-1: any) takes: returns the first entry not yet
 * used whose node is @node (either being -1 matches any), marking it used,
 * or -1. *@src receives a source to copy from instead: an entry on @node
 * first (used or not), else the expert's first; -1 when it has none.
 */
int moe_share_pick(struct moe_share_index *ix, uint32_t layer, uint32_t expert, int32_t node,
		   int *src);

#endif /* ACCEL_MOE_STORE_LOGIC_H */
