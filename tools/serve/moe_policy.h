/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the placement policies of the MoE expert store's
 * rebalances (serve_moe_policy_fn) over libaccel's planner
 * (accel_moe_plan.h): DeepSeek's EPLB and the cost-aware planner, fed the
 * tokens the engine routed to each expert since the last rebalance.
 * Documentation/moe.rst, "The engine's policies".
 */
#ifndef SERVE_MOE_POLICY_H
#define SERVE_MOE_POLICY_H

#include <stdint.h>
#include <stdio.h>

#include <accel.h>

#include "moe.h"

/** --moe-policy. */
enum serve_moe_policy_kind {
	SERVE_MOE_ROTATE = 0,	/* serve_moe_rotate(): every expert moves each time */
	SERVE_MOE_EPLB = 1,	/* serve_moe_eplb() */
	SERVE_MOE_PLAN = 2,	/* serve_moe_plan() */
};

/**
 * struct serve_moe_planner - the context of serve_moe_eplb() and
 * serve_moe_plan() (one engine thread calls them: no lock).
 * @kind: enum serve_moe_policy_kind.
 * @nodes: server nodes the devices are grouped in (0: 1); must divide the
 *	devices.
 * @log: where each rebalance's plan costs go, a line each (NULL: nowhere).
 * @plans: placements computed.
 * @moves: slot moves of all of them (each counted from its old placement).
 * @last: the cost of the last one.
 */
struct serve_moe_planner {
	uint32_t kind;
	uint32_t nodes;
	FILE *log;
	uint64_t plans, moves;
	struct accel_moe_cost last;
};

/** @name ("rotate", "eplb", "plan") into *@kind: 0, or -EINVAL. */
int serve_moe_policy_parse(const char *name, uint32_t *kind);
/** The name of @kind ("?" if none). */
const char *serve_moe_policy_name(uint32_t kind);

/**
 * serve_moe_policy_use() - point @o's policy at @p's kind (rotate: the
 * store's default, @p unused) after resetting @p's counters; co-activations
 * counted (@o->coact) for the planner only.
 */
void serve_moe_policy_use(struct serve_moe_planner *p, struct serve_moe_opts *o);

/**
 * serve_moe_eplb() - a serve_moe_policy_fn: accel_eplb_rebalance() on
 * @load with @devices GPUs in @ctx's nodes, one group per expert where the
 * nodes divide the experts (EPLB's hierarchical policy; else one group,
 * its global one), @old given so that an expert a device keeps stays in
 * its slot; @coact (or NULL) only scores the result. @ctx: a struct
 * serve_moe_planner.
 *
 * Return: 0; -EINVAL (a shape the planner cannot place: no device, fewer
 * slots than experts, nodes that do not divide the devices); -ENOMEM.
 */
int serve_moe_eplb(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		   const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		   uint32_t spd);

/**
 * serve_moe_plan() - a serve_moe_policy_fn: accel_moe_plan() from @old on
 * @load and the co-activations @coact (its traffic term; NULL: none), its
 * costs logged. @ctx: a struct serve_moe_planner. Errors as
 * serve_moe_eplb().
 */
int serve_moe_plan(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		   const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		   uint32_t spd);

#endif /* SERVE_MOE_POLICY_H */
