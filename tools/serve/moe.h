/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the MoE model's experts in libaccel's expert store
 * (accel_moe.h): expert-parallel over "devices" (NUMA nodes on the host
 * backend), read through each layer's window at the table version of the
 * step, rebalanced under serving every N steps to a placement a policy
 * computes from the old one. Documentation/serve.rst, "MoE expert store".
 */
#ifndef SERVE_MOE_H
#define SERVE_MOE_H

#include <stdio.h>

#include <accel.h>

#include "model.h"

struct serve_moe;

/**
 * A placement policy: @new (layers x num_slots, phy2log) from @old, the
 * tokens routed to each expert since the last rebalance (@load, layers x
 * experts; not windowed otherwise: the counts restart at each rebalance
 * started), with serve_moe_opts.coact the tokens' co-activations between
 * consecutive layers (@coact, [layers - 1][experts][experts], over the last
 * one to two rebalance periods: accel_moe_stats_coact(); else NULL), and
 * the shape. 0 or -errno (the rebalance is not started, the old placement
 * stays). moe_policy.h plugs libaccel's planner in here.
 */
typedef int (*serve_moe_policy_fn)(void *ctx, const int32_t *old, int32_t *new,
				   const uint64_t *load, const uint32_t *coact, uint32_t layers,
				   uint32_t experts, uint32_t devices, uint32_t slots_per_device);

struct serve_moe_opts {
	/** Devices (at least 1; 2 or more for expert parallelism). */
	uint32_t devices;
	/** Redundant slots in all: experts + redundant must divide by devices. */
	uint32_t redundant;
	/** Start a rebalance every this many steps (0: never). */
	uint32_t rebalance_every;
	/** Cross-device copies in flight per device (0: 1). */
	uint32_t max_inflight;
	/** The executor on the store's own thread (else in bounded shares at each step's start). */
	bool thread;
	/** NULL: serve_moe_rotate(). */
	serve_moe_policy_fn policy;
	void *policy_ctx;
	/**
	 * Count each token's experts in consecutive layers (a route per token
	 * and layer, counted once its chunk is through every layer) for the
	 * policy's @coact. Needs rebalance_every and two layers or more.
	 */
	bool coact;
	/**
	 * Another instance's expert copies to start from (moe_peer.h: the
	 * experts are taken from its memory, not the model's tensors, which
	 * are then never read): accel_moe_store_opts.from. The caller closes
	 * the fds after serve_moe_create().
	 */
	const struct accel_moe_store_share *from;
	uint32_t nr_from;
	/**
	 * The experts in GPUs' memory (ACCEL_MOE_STORE_CUDA), device d on GPU
	 * d % gpus; 0: kvaccel regions. The model computes on the CPU through
	 * the windows, so this needs device memory the CPU can address (the
	 * tests' fake driver). Not with @from.
	 */
	uint32_t gpus;
};

/**
 * The store for model @m's experts on @dev, each device on a NUMA node in
 * turn (node d % online nodes), every expert's weights copied in; NULL
 * with a message in @err (and errno) if the shape does not fit.
 */
struct serve_moe *serve_moe_create(struct accel_device *dev, const struct serve_model *m,
				   const struct serve_moe_opts *o, char *err, size_t errlen);
void serve_moe_destroy(struct serve_moe *x);
/** The expert store (to export its copies to another instance); NULL for NULL. */
struct accel_moe_store *serve_moe_store(struct serve_moe *x);
/** Nanoseconds serve_moe_create() took to make the store and fill it (from the model or a peer). */
uint64_t serve_moe_setup_ns(const struct serve_moe *x);

/** A step begins (a rebalance may start); *version for serve_moe_expert(). 0 or -errno. */
int serve_moe_step_begin(struct serve_moe *x, uint64_t *version);
/** The step of @version ended after @ns nanoseconds computing @tokens tokens. */
void serve_moe_step_end(struct serve_moe *x, uint64_t version, uint64_t ns, uint32_t tokens);
/** Expert @e of layer @l at @version (a serve_expert_src getter; @arg the serve_moe). */
const void *serve_moe_expert(void *arg, uint64_t version, uint32_t l, uint32_t e, uint32_t hint);

/** Does @x count routes (serve_moe_opts.coact; false for NULL)? */
bool serve_moe_counts_routes(const struct serve_moe *x);
/**
 * serve_moe_routes() - count @tokens tokens' routes: @routes is
 * [tokens][layers][top_k], the experts each token chose in each layer (any
 * worker thread). 0 (nothing to count: also 0), or -EINVAL (an id out of
 * range: nothing counted).
 */
int serve_moe_routes(struct serve_moe *x, const uint32_t *routes, uint32_t tokens);
/** The co-activation counts a rebalance would read now into @coact; -ENOENT without. */
int serve_moe_coact(struct serve_moe *x, uint32_t *coact);

/**
 * The default policy: every device takes the next device's experts
 * (expert e on device (e + shift) % devices, shift one more each time: each
 * rebalance moves every expert across devices), and the redundant slots go
 * to the experts with the most routed tokens (ties: the lower index), each
 * on another device than its first replica where one has room.
 */
int serve_moe_rotate(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		     const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		     uint32_t spd);

/** What a run did, for the report. */
struct serve_moe_report {
	uint64_t steps, rebalances_started, rebalances, waves, copies, rebinds, lookup_errors;
	/** Rebalances not started: the policy failed or the store refused its placement. */
	uint64_t rebalances_refused;
	/** Steps of the run's most common batch size, without and with rebalance work. */
	uint64_t idle_steps, busy_steps;
	double idle_median_us, idle_max_us, busy_median_us, busy_max_us;
};

int serve_moe_report(struct serve_moe *x, struct serve_moe_report *r);
/**
 * Each step's time (ns; of it, @begin_ns in the store's step begin: the
 * executor's share in the step mode), tokens and whether it had rebalance
 * work, in step order, up to @max of them (any array may be NULL); returns
 * the steps recorded.
 */
uint64_t serve_moe_steps(const struct serve_moe *x, uint64_t *ns, uint64_t *begin_ns,
			 uint32_t *tokens, bool *busy, uint64_t max);
/** One line of the report on @f. */
void serve_moe_print(struct serve_moe *x, FILE *f);

#endif /* SERVE_MOE_H */
