/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - the simulated engines: one, several behind a dispatcher (--instances), or prefill
 * and decode instances apart (--pd). libaccel's own scheduler (accel_sched_*) and block manager
 * (accel_bm_*) make every decision of each instance (instance.h); the clock is the profile's
 * latency model. Per instance: accel_sched_step(now) -> the step's duration from the profile ->
 * accel_sched_update() of every run at now + duration; swaps reported with
 * accel_sched_swap_done() at their simulated end (bytes over the host link plus a fixed cost,
 * one transfer at a time per direction). Events of the same instant are all handled before the
 * idle instances step; a step that runs nothing while requests are alive is polled again one
 * empty step's time later. Operator-level yields: an arrival during a step after which
 * accel_sched_should_yield() says so cuts the step's prefill chunks at a layer boundary
 * (ACCEL_SCHED_RES_YIELDED). Documentation/sim.rst, "The model".
 */
#ifndef SIM_ENGINE_H
#define SIM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "run.h"
#include "workload.h"

/* Most instances a run has (--instances, --pd P:D). */
#define SIM_MAX_INSTANCES	64

/* What an instance does. */
enum sim_role {
	SIM_ROLE_BOTH = 0,	/* prefill and decode (no disaggregation) */
	SIM_ROLE_PREFILL = 1,	/* --pd: prompts, up to their first token */
	SIM_ROLE_DECODE = 2,	/* --pd: the rest, after the hand-off */
};

struct sim_config {
	const struct sim_profile *prof;
	uint32_t policy;		/* enum accel_sched_policy */
	uint32_t preempt;		/* enum accel_sched_preempt */
	uint32_t max_tokens;		/* token budget per step (0: 2048) */
	uint32_t max_seqs;		/* running requests at once (0: 256) */
	uint32_t chunk_tokens;		/* longest prefill chunk (0: max_tokens) */
	uint32_t priority_threshold;
	uint32_t gpu_blocks, host_blocks;	/* 0: the profile's */
	int no_host;			/* no host tier: every preemption recomputes */
	int no_yield;			/* no operator-level yields: every step runs whole */
	uint64_t seed;			/* the prompts' tokens (lg_prompt_make()) */
	uint32_t instances;		/* engines behind the dispatcher (0: 1) */
	uint32_t dispatch;		/* enum sim_dispatch (dispatch.h) */
	uint32_t pd_prefill, pd_decode;	/* --pd P:D (0:0: no disaggregation) */
};

/* One instance's share of the run. */
struct sim_inst_totals {
	uint32_t role;			/* enum sim_role */
	uint64_t requests;		/* dispatched to it (hand-offs included) */
	uint64_t steps, busy_ns;
	uint64_t prefill_tokens, decode_tokens;
	uint64_t yields;
};

/* What the run did as a whole. */
struct sim_totals {
	double duration_s;		/* simulated: first arrival to the last event */
	uint64_t steps, busy_ns;	/* steps that ran something; their time */
	uint64_t idle_ticks;		/* empty steps with requests alive, polled again */
	uint64_t tokens;		/* computed, prefill and decode */
	uint64_t prefill_tokens, decode_tokens;
	uint64_t swaps_out, swaps_in, swap_failures, recomputes, recomputed_tokens;
	uint64_t yields;		/* prefill chunks cut at a layer (operator-level) */
	uint64_t swapped_bytes, swap_ns;	/* link busy time, both directions */
	uint64_t prefix_hit_blocks;	/* tier 0 prefix-cache hits */
	uint32_t gpu_blocks, host_blocks, block_tokens;	/* each instance's */
	/* Prefill/decode hand-offs over the link between instances. */
	uint64_t transfers, transfer_blocks, transfer_bytes, transfer_ns;
	uint32_t nr_instances;
	struct sim_inst_totals inst[SIM_MAX_INSTANCES];
	size_t unfinished;		/* requests that never finished (failed in the results) */
};

/*
 * Simulate @wl (sorted by arrival) on the engines @c names; res has wl->n entries, zeroed by
 * the caller, each request's result as kvaccel-loadgen would have measured it (gaps_ms
 * allocated: free with lg_results_free()). -1 with err on a setup error (the scheduler's
 * configuration refused, no memory, --pd with a profile naming no link between instances).
 */
int sim_run(const struct sim_config *c, const struct lg_workload *wl, struct lg_result *res,
	    struct sim_totals *t, char *err, size_t errlen);

#endif
