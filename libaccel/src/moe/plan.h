/* SPDX-License-Identifier: MIT */
/*
 * libaccel - what the MoE planner's files share (stats.c, eplb.c,
 * plan_cost.c, plan_moves.c, plan.c): topology checks and the two EPLB
 * pieces the cost-aware planner reuses.
 */
#ifndef ACCEL_MOE_PLAN_INTERNAL_H
#define ACCEL_MOE_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel_moe_plan.h"

/* The topology's numbers, checked (plan_topo()). */
struct plan_topo {
	uint32_t layers, experts, slots, devices, nodes, groups;
	uint32_t spd;		/* slots per device */
	uint32_t dpn;		/* devices per node */
};

/*
 * Check @topo (ACCEL_OPTS(), the limits, slots a multiple of devices,
 * devices of nodes, slots >= experts) into @t. Return 0 or -EINVAL.
 */
int plan_topo(const struct accel_moe_topo *topo, struct plan_topo *t);
/* Every weight finite and >= 0: 0 or -EINVAL. */
int plan_check_weight(const struct plan_topo *t, const float *weight);
/*
 * Every id of @phy2log in range and, with @need_all, every expert in at
 * least one slot of its layer: 0 or -EINVAL.
 */
int plan_check_phy2log(const struct plan_topo *t, const int32_t *phy2log, bool need_all);

static inline uint32_t plan_dev(const struct plan_topo *t, uint32_t slot)
{
	return slot / t->spd;
}

static inline uint32_t plan_node(const struct plan_topo *t, uint32_t slot)
{
	return slot / t->spd / t->dpn;
}

/*
 * EPLB's balanced_packing for one row: @n items of weight @w into @packs
 * packs of n / packs items each (n a multiple of packs). Items in
 * descending weight (stable: the lower index first among equals), each to
 * the lightest pack with room (float32 sums in that order; the first such
 * pack among equals). Writes @pack[n] and @rank[n]; @order (n), @pw
 * (packs) and @items (2 * packs) are scratch.
 */
void plan_pack(const float *w, uint32_t n, uint32_t packs, uint32_t *pack, uint32_t *rank,
	       uint32_t *order, float *pw, uint32_t *items);
/*
 * EPLB's replicate_experts for one row: @nlog experts of weight @w over
 * @nphy >= nlog replicas. phy2log[i] = i for i < nlog; then each further
 * replica goes to the expert with the largest w / cnt (float32 division;
 * the first among equals). Writes @phy2log[nphy], @rank[nphy] (the
 * replica's rank within its expert) and @cnt[nlog]; @ratio is scratch of nlog.
 */
void plan_replicate(const float *w, uint32_t nlog, uint32_t nphy, uint32_t *phy2log,
		    uint32_t *rank, uint32_t *cnt, float *ratio);
/*
 * log2phy (ascending slots, -1 after; may be NULL) and logcnt (may be
 * NULL) of one layer from its phy2log (checked).
 */
void plan_index(const struct plan_topo *t, const int32_t *p2l, int32_t *l2p, uint32_t width,
		int32_t *cnt);
/* The largest replica count of any layer of @phy2log (checked). */
uint32_t plan_max_count(const struct plan_topo *t, const int32_t *phy2log, uint32_t *scratch);
/*
 * Sort @idx[n] (filled with 0..n-1) by @key (finite, >= 0) descending, the
 * lower index first among equals; @scratch holds n.
 */
void plan_sort_desc(const float *key, uint32_t *idx, uint32_t n, uint32_t *scratch);

#endif
