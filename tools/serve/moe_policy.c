// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the MoE store's placement policies over libaccel's
 * planner: the engine's routed-token counts as the planner's weights, its
 * devices as EPLB's GPUs, the store's placement (device-major slots) as
 * the planner's phy2log, and one line of costs per rebalance.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "moe_policy.h"

static const char *const names[] = {
	[SERVE_MOE_ROTATE] = "rotate",
	[SERVE_MOE_EPLB] = "eplb",
	[SERVE_MOE_PLAN] = "plan",
};

int serve_moe_policy_parse(const char *name, uint32_t *kind)
{
	uint32_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*kind = i;
			return 0;
		}
	return -EINVAL;
}

const char *serve_moe_policy_name(uint32_t kind)
{
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

void serve_moe_policy_use(struct serve_moe_planner *p, struct serve_moe_opts *o)
{
	p->plans = p->moves = 0;
	memset(&p->last, 0, sizeof(p->last));
	o->policy = p->kind == SERVE_MOE_EPLB ? serve_moe_eplb :
		    p->kind == SERVE_MOE_PLAN ? serve_moe_plan : NULL;
	o->policy_ctx = o->policy ? p : NULL;
	/* Only the planner weighs the traffic between consecutive layers' experts. */
	o->coact = p->kind == SERVE_MOE_PLAN;
}

/* The planner's topology of the store's shape, and the loads as its weights. */
static int prepare(const struct serve_moe_planner *p, const uint64_t *load, uint32_t layers,
		   uint32_t experts, uint32_t devices, uint32_t spd, struct accel_moe_topo *t,
		   float **weight)
{
	uint32_t nodes = p->nodes ? p->nodes : 1;
	size_t i, n = (size_t)layers * experts;

	if (!layers || !experts || !devices || !spd || (uint64_t)devices * spd < experts ||
	    (uint64_t)devices * spd > INT32_MAX || devices % nodes)
		return -EINVAL;
	*t = (struct accel_moe_topo) {
		.sz = sizeof(*t), .layers = layers, .experts = experts, .slots = devices * spd,
		.devices = devices, .nodes = nodes,
		/* One expert per group: the hierarchical policy's constraints hold. */
		.groups = experts % nodes ? 1 : experts,
	};
	*weight = malloc(n * sizeof(**weight));
	if (!*weight)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		(*weight)[i] = (float)load[i];	/* over 2^24: rounded, as EPLB's float weights */
	return 0;
}

static void log_cost(struct serve_moe_planner *p, const struct accel_moe_cost *c,
		     const uint64_t *load, const uint32_t *coact, size_t n)
{
	uint64_t tokens = 0;
	size_t i;

	p->plans++;
	p->moves += c->moves;
	p->last = *c;
	if (!p->log)
		return;
	for (i = 0; i < n; i++)
		tokens += load[i];
	fprintf(p->log, "kvaccel-serve: moe %s rebalance %llu: %llu slot moves, device load "
		"max/mean %.3f (worst layer %.3f) over %llu routed tokens",
		serve_moe_policy_name(p->kind), (unsigned long long)p->plans,
		(unsigned long long)c->moves, c->imbalance, c->max_imbalance,
		(unsigned long long)tokens);
	if (coact)
		fprintf(p->log, "; traffic %.0f co-activated tokens (%.0f cross-device, %.0f "
			"cross-node)", c->traffic, c->cross_device, c->cross_node);
	fputc('\n', p->log);
}

/* EPLB's placement (@plan false) or the planner's, with its cost, logged. */
static int place(struct serve_moe_planner *p, bool plan, const int32_t *old, int32_t *new,
		 const uint64_t *load, const uint32_t *coact, uint32_t layers, uint32_t experts,
		 uint32_t devices, uint32_t spd)
{
	ACCEL_OPTS(accel_eplb_opts, eo, .old_phy2log = old);
	ACCEL_OPTS(accel_moe_cost, cost);
	struct accel_moe_topo t;
	float *w = NULL;
	int ret;

	ret = prepare(p, load, layers, experts, devices, spd, &t, &w);
	if (!ret && plan)
		ret = accel_moe_plan(&t, w, coact, old, NULL, new, NULL, 0, NULL, &cost);
	else if (!ret)
		ret = accel_eplb_rebalance(&t, w, &eo, new, NULL, 0, NULL, NULL);
	if (!ret && !plan)
		ret = accel_moe_cost(&t, w, coact, old, new, &cost, NULL);
	if (!ret)
		log_cost(p, &cost, load, coact, (size_t)layers * experts);
	free(w);
	return ret;
}

int serve_moe_eplb(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		   const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		   uint32_t spd)
{
	return place(ctx, false, old, new, load, coact, layers, experts, devices, spd);
}

int serve_moe_plan(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		   const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		   uint32_t spd)
{
	return place(ctx, true, old, new, load, coact, layers, experts, devices, spd);
}
