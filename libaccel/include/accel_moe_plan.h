/* SPDX-License-Identifier: MIT */
/*
 * libaccel - MoE expert placement: load statistics (accel_moe_stats_*),
 * DeepSeek's EPLB exactly (accel_eplb_rebalance()), a cost-aware planner
 * beyond it (accel_moe_plan()), the cost of any placement
 * (accel_moe_cost()) and the move plan from one placement to another
 * (accel_moe_moves()). Pure logic: no device, no memory moved, no clock.
 * Included by accel.h; Documentation/moe.rst, "Planner"; accel_moe_plan(3).
 *
 * A placement of one layer is EPLB's: phy2log[slots], the logical expert
 * each physical slot holds; log2phy[experts][width], the slots of each
 * logical expert padded with -1; logcnt[experts], how many slots each has.
 * Slots are device-major (slot s is on device s / (slots / devices)) and
 * devices node-major (device d is on node d / (devices / nodes)). All
 * layers together are row-major: phy2log[layers][slots] and so on.
 *
 * Thread safety: a statistics object has no lock: its calls must be
 * serialized by the caller (one engine thread records, reads and ends
 * steps; another thread may read only with the caller's own lock). The
 * other functions keep no state and may run on any thread at once.
 */
#ifndef ACCEL_MOE_PLAN_H
#define ACCEL_MOE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- load statistics ------------------------------------------------------ */

struct accel_moe_stats;

/** Keep co-activation counts between consecutive layers (accel_moe_stats_route()). */
#define ACCEL_MOE_STATS_COACT	(1u << 0)
#define ACCEL_MOE_STATS_FLAGS	ACCEL_MOE_STATS_COACT

/* Limits of a statistics object and of a placement. */
#define ACCEL_MOE_MAX_LAYERS	4096u
#define ACCEL_MOE_MAX_EXPERTS	65536u
#define ACCEL_MOE_MAX_WINDOW	65536u
#define ACCEL_MOE_MAX_DEVICES	1024u

/**
 * accel_moe_stats_create() - counters for @layers MoE layers of @experts
 * logical experts each, over the last @window_steps completed steps.
 * @layers: 1 to ACCEL_MOE_MAX_LAYERS.
 * @experts: 1 to ACCEL_MOE_MAX_EXPERTS.
 * @window_steps: 1 to ACCEL_MOE_MAX_WINDOW.
 * @flags: ACCEL_MOE_STATS_*.
 *
 * Everything is allocated here (a ring of @window_steps + 1 per-step counter
 * arrays, and with ACCEL_MOE_STATS_COACT two [layers - 1][experts][experts]
 * co-activation arrays): recording allocates nothing.
 *
 * Return: the object; NULL with errno EINVAL (a bad argument, unknown
 * flags, co-activation arrays over 4 GiB) or ENOMEM.
 */
struct accel_moe_stats *accel_moe_stats_create(uint32_t layers, uint32_t experts,
					       uint32_t window_steps, uint32_t flags);
/** accel_moe_stats_destroy() - free @st (NULL: nothing). */
void accel_moe_stats_destroy(struct accel_moe_stats *st);

/**
 * accel_moe_stats_record() - count @n routings of the current step to
 * experts of @layer: one token per entry of @experts (a token with top-k
 * experts appears k times). Loads only, no co-activation.
 *
 * Return: 0; -EINVAL (no @st, @layer or an expert id out of range: then
 * nothing is counted).
 */
int accel_moe_stats_record(struct accel_moe_stats *st, uint32_t layer, const uint32_t *experts,
			   size_t n);

/**
 * accel_moe_stats_route() - count @tokens tokens of the current step, each
 * with its @top_k experts in every layer: @experts is
 * [tokens][layers][top_k]. Loads of every layer and, with
 * ACCEL_MOE_STATS_COACT, a co-activation count for each pair (expert i of
 * layer l, expert j of layer l + 1) the token chose (top_k * top_k pairs
 * per layer pair).
 *
 * Return: 0; -EINVAL (no @st, @top_k 0 or over @experts, an id out of
 * range: then nothing is counted).
 */
int accel_moe_stats_route(struct accel_moe_stats *st, const uint32_t *experts, uint32_t tokens,
			  uint32_t top_k);

/**
 * accel_moe_stats_step_end() - close the current step: it enters the load
 * window (the oldest step leaves it once @window_steps are in); every
 * @window_steps steps the co-activation counts age (see
 * accel_moe_stats_coact()).
 *
 * Return: 0; -EINVAL (no @st).
 */
int accel_moe_stats_step_end(struct accel_moe_stats *st);

/**
 * accel_moe_stats_load() - the tokens routed to each expert over the load
 * window (the last window_steps completed steps; the current step is not
 * in it), as counts and/or as EPLB's float weights.
 * @counts: [layers][experts], or NULL.
 * @weight: [layers][experts], or NULL (a count over 2^24 is rounded).
 * @steps: the number of steps in the window (at most window_steps), or NULL.
 *
 * Return: 0; -EINVAL (no @st).
 */
int accel_moe_stats_load(const struct accel_moe_stats *st, uint64_t *counts, float *weight,
			 uint32_t *steps);

/**
 * accel_moe_stats_coact() - co-activation counts: @coact[l][i][j] is the
 * number of tokens that chose expert i of layer l and expert j of layer
 * l + 1 ([layers - 1][experts][experts]; saturates at UINT32_MAX). The
 * counts are kept in two epochs of window_steps steps: what is read is the
 * previous (complete) epoch and the current one, between window_steps and
 * 2 * window_steps steps, the current step included.
 *
 * Return: 0; -EINVAL (no @st or @coact); -ENOENT (created without
 * ACCEL_MOE_STATS_COACT, or a single layer).
 */
int accel_moe_stats_coact(const struct accel_moe_stats *st, uint32_t *coact);

/* --- topology and placements ---------------------------------------------- */

/**
 * struct accel_moe_topo - the shape of a placement problem (ACCEL_OPTS()).
 * @sz: sizeof, ACCEL_OPTS().
 * @layers: MoE layers.
 * @experts: logical experts per layer.
 * @slots: physical expert slots per layer, all devices together (EPLB's
 *	num_replicas); a multiple of @devices, at least @experts.
 * @devices: GPUs (EPLB's num_gpus); a multiple of @nodes.
 * @nodes: server nodes.
 * @groups: expert groups (EPLB's num_groups; 0: 1). The hierarchical EPLB
 *	policy needs @experts a multiple of @groups and @groups of @nodes.
 */
struct accel_moe_topo {
	size_t sz;
	uint32_t layers;
	uint32_t experts;
	uint32_t slots;
	uint32_t devices;
	uint32_t nodes;
	uint32_t groups;
};

/* --- EPLB ---------------------------------------------------------------- */

/** Which EPLB policy. */
enum accel_eplb_policy {
	ACCEL_EPLB_AUTO = 0,		/* hierarchical if groups % nodes == 0, else global (EPLB's rule) */
	ACCEL_EPLB_HIERARCHICAL = 1,	/* -EINVAL if the topology does not allow it */
	ACCEL_EPLB_GLOBAL = 2,		/* one node, one group (EPLB's fallback) */
};

/**
 * struct accel_eplb_opts - options of accel_eplb_rebalance() (ACCEL_OPTS(); NULL: none).
 * @sz: sizeof, ACCEL_OPTS().
 * @policy: enum accel_eplb_policy.
 * @flags: none defined: 0.
 * @old_phy2log: [layers][slots], or NULL: the current placement; when
 *	given, each device's new experts are reordered within the device so
 *	that an expert it already held keeps its old slot (vLLM's
 *	preserve_intragpu_slots; the devices' contents are EPLB's).
 */
struct accel_eplb_opts {
	size_t sz;
	uint32_t policy;
	uint32_t flags;
	const int32_t *old_phy2log;
};

/**
 * accel_eplb_rebalance() - DeepSeek's EPLB (rebalance_experts), exactly,
 * with the tie rules of Documentation/moe.rst ("EPLB"): stable sorts,
 * float32 sums in the reference's order, first index wins.
 * @topo: the topology (ACCEL_OPTS()).
 * @weight: [layers][experts] loads, finite and >= 0.
 * @opts: NULL or options.
 * @phy2log: [layers][slots], written.
 * @log2phy: [layers][experts][@width], or NULL: the slots of each expert in
 *	replica-rank order, then -1.
 * @width: log2phy's last dimension (at least the largest logcnt).
 * @logcnt: [layers][experts], or NULL.
 * @max_logcnt: the largest replica count over all layers (the reference's
 *	log2phy width), or NULL.
 *
 * Return: 0; -EINVAL (a bad argument or a divisibility constraint, listed
 * in Documentation/moe.rst; nothing written); -ENOSPC (@width below the
 * largest logcnt; only *@max_logcnt written); -ENOMEM.
 */
int accel_eplb_rebalance(const struct accel_moe_topo *topo, const float *weight,
			 const struct accel_eplb_opts *opts, int32_t *phy2log, int32_t *log2phy,
			 uint32_t width, int32_t *logcnt, uint32_t *max_logcnt);

/**
 * accel_moe_log2phy() - log2phy and logcnt of a placement from its phy2log
 * (the slots of each expert in ascending order, then -1).
 *
 * Return: 0; -EINVAL (bad topology, an id out of range or an expert with
 * no slot); -ENOSPC (@width below the largest count; nothing written).
 */
int accel_moe_log2phy(const struct accel_moe_topo *topo, const int32_t *phy2log,
		      int32_t *log2phy, uint32_t width, int32_t *logcnt);

/* --- costs --------------------------------------------------------------- */

/**
 * struct accel_moe_cost - what a placement costs (ACCEL_OPTS(): fields past
 * sz are not written).
 * @sz: sizeof, ACCEL_OPTS().
 * @imbalance: the mean over layers of max / mean device load (1: perfect).
 * @max_imbalance: the worst layer's max / mean.
 * @max_load: the sum over layers of the largest device load (tokens: a
 *	step's MoE time is set by each layer's busiest device).
 * @mean_load: the sum over layers of the mean device load.
 * @moves: slots whose expert differs from the old placement (0 without one).
 * @traffic: co-activation tokens in all (0 without co-activation).
 * @cross_device: of @traffic, the tokens whose next layer's expert is on
 *	another device.
 * @cross_node: of @traffic, those on another node.
 *
 * A device's load is the sum over its slots of weight[e] / logcnt[e] (a
 * logical expert's tokens split evenly over its replicas, EPLB's model).
 * Traffic: a token with expert i at layer l and j at layer l + 1 sits on
 * one of i's replicas (each equally likely) and goes to j's replica on the
 * same device if there is one, else on the same node, else to another
 * node.
 */
struct accel_moe_cost {
	size_t sz;
	double imbalance;
	double max_imbalance;
	double max_load;
	double mean_load;
	uint64_t moves;
	double traffic;
	double cross_device;
	double cross_node;
};

/**
 * accel_moe_cost() - score a placement.
 * @topo: the topology.
 * @weight: [layers][experts] loads.
 * @coact: [layers - 1][experts][experts] co-activation counts, or NULL.
 * @old_phy2log: [layers][slots] to count moves from, or NULL.
 * @phy2log: [layers][slots] the placement scored.
 * @cost: the result (ACCEL_OPTS()).
 * @layer_max: [layers] each layer's max / mean device load, or NULL.
 *
 * Return: 0; -EINVAL (bad topology, an id out of range, an expert without
 * a slot, a bad weight).
 */
int accel_moe_cost(const struct accel_moe_topo *topo, const float *weight, const uint32_t *coact,
		   const int32_t *old_phy2log, const int32_t *phy2log,
		   struct accel_moe_cost *cost, float *layer_max);

/* --- moves --------------------------------------------------------------- */

/** Where a move's bytes come from. */
enum accel_moe_move_kind {
	ACCEL_MOE_MOVE_DEVICE = 0,	/* a slot on the same device holds it: a rebind */
	ACCEL_MOE_MOVE_NODE = 1,	/* another device of the node: a P2P copy */
	ACCEL_MOE_MOVE_REMOTE = 2,	/* another node: a network copy */
	ACCEL_MOE_MOVE_STORE = 3,	/* no slot held it: from the store (host) */
};

/**
 * struct accel_moe_move - one slot whose expert changes.
 * @layer: the layer.
 * @slot: the slot (of the layer) that changes.
 * @old_expert: what it held.
 * @new_expert: what it holds after.
 * @src_slot: a slot of the layer that holds @new_expert in the old
 *	placement (the nearest: same device, then node, then lowest slot
 *	elsewhere; one that keeps it in the new placement first), or -1.
 * @kind: enum accel_moe_move_kind.
 * @round: copies are grouped in rounds of at most max_inflight incoming
 *	copies (kinds NODE, REMOTE and STORE) per device: the peak extra
 *	memory is max_inflight experts per device if the executor finishes
 *	and frees round r before starting round r + 1. Every source reads the
 *	old placement, which stays in place until the switch.
 */
struct accel_moe_move {
	uint32_t layer;
	uint32_t slot;
	int32_t old_expert;
	int32_t new_expert;
	int32_t src_slot;
	uint32_t kind;
	uint32_t round;
};

/**
 * accel_moe_moves() - the moves from @old_phy2log to @new_phy2log, layer by
 * layer, slot by slot (a slot whose expert does not change is not moved).
 * @topo: the topology.
 * @old_phy2log, @new_phy2log: [layers][slots].
 * @max_inflight: incoming copies per device per round (0: 1).
 * @moves: where the moves go, or NULL (count only).
 * @cap: @moves' room.
 * @n: the number of moves.
 *
 * Return: 0; -EINVAL (bad topology or ids); -ENOSPC (more than @cap moves:
 * *@n says how many, @moves holds the first @cap).
 */
int accel_moe_moves(const struct accel_moe_topo *topo, const int32_t *old_phy2log,
		    const int32_t *new_phy2log, uint32_t max_inflight,
		    struct accel_moe_move *moves, size_t cap, size_t *n);

/* --- the cost-aware planner ---------------------------------------------- */

/** Do not use co-activation (balance and moves only). */
#define ACCEL_MOE_PLAN_NO_TRAFFIC	(1u << 0)
#define ACCEL_MOE_PLAN_FLAGS		ACCEL_MOE_PLAN_NO_TRAFFIC

/**
 * struct accel_moe_plan_opts - the planner's options (ACCEL_OPTS(); NULL: defaults).
 * @sz: sizeof, ACCEL_OPTS().
 * @balance_slack: how far above the balance bound (EPLB's global packing
 *	of the same replica counts) a layer's largest device load may go, as
 *	a fraction (0: not above; at most 1).
 * @move_tokens: the traffic (tokens per window) one moved expert must save
 *	for the planner to move it for traffic alone (0: one mean expert's
 *	load; negative: never move for traffic).
 * @max_moves: moves per layer at most (0: no limit): a layer whose
 *	balanced plan needs more keeps the best plan within the limit, at
 *	worst its current placement.
 * @flags: ACCEL_MOE_PLAN_*.
 *
 * Peak extra memory is not the plan's concern: accel_moe_moves() turns any
 * plan into rounds of at most max_inflight copies per device.
 */
struct accel_moe_plan_opts {
	size_t sz;
	float balance_slack;
	float move_tokens;
	uint32_t max_moves;
	uint32_t flags;
};

/**
 * accel_moe_plan() - a new placement that balances the devices' loads as
 * well as EPLB's global policy, keeps experts in their current slots where
 * it can and puts co-activated experts of consecutive layers on the same
 * device or node (Documentation/moe.rst, "The cost-aware planner").
 * @topo: the topology.
 * @weight: [layers][experts] loads.
 * @coact: [layers - 1][experts][experts], or NULL (no traffic term).
 * @cur_phy2log: [layers][slots], the current placement (every expert in
 *	at least one slot), or NULL (none: every slot counts as moved).
 * @opts: NULL or options.
 * @phy2log: [layers][slots], the new placement.
 * @log2phy: [layers][experts][@width] (ascending slots, -1 after), or NULL.
 * @width: log2phy's last dimension.
 * @logcnt: [layers][experts], or NULL.
 * @cost: what the new placement costs (moves counted from
 *	@cur_phy2log), or NULL.
 *
 * Return: 0; -EINVAL (bad argument; nothing written); -ENOSPC (@width
 * too small; nothing written); -ENOMEM.
 */
int accel_moe_plan(const struct accel_moe_topo *topo, const float *weight, const uint32_t *coact,
		   const int32_t *cur_phy2log, const struct accel_moe_plan_opts *opts,
		   int32_t *phy2log, int32_t *log2phy, uint32_t width, int32_t *logcnt,
		   struct accel_moe_cost *cost);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_MOE_PLAN_H */
