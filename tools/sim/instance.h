/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - one engine instance: its own block manager, scheduler and host link, its step in
 * flight (the batch's duration from the profile, an operator-level cut of its prefills), its
 * swaps timed over its link, the load the dispatcher sees, and the import of a handed-off
 * request's KV blocks (prefill/decode disaggregation). The cluster's loop, the requests' results
 * and the shared event heap are the engine's (engine.c).
 */
#ifndef SIM_INSTANCE_H
#define SIM_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "accel.h"
#include "engine.h"
#include "event.h"

/* An event's type names its instance: the kind in the low byte, the instance above. */
#define SIM_EV(kind, inst)	((uint32_t)(kind) | ((uint32_t)(inst) << 8))
#define SIM_EV_KIND(type)	((type) & 0xffu)
#define SIM_EV_INST(type)	((type) >> 8)

struct sim_inst {
	uint32_t id, role;		/* enum sim_role */
	const struct sim_profile *p;
	struct accel_bm *bm;
	struct accel_sched *s;
	struct accel_sched_run *runs;
	struct accel_sched_swap *swaps;
	struct accel_sched_event *events;
	struct accel_sched_out out;
	uint32_t *layers_run;		/* per run of the step in flight: its layers this step */
	uint64_t link_free[2];		/* host link, per direction: when it is free again */
	uint64_t net_free;		/* its link to the other instances (hand-offs it sends) */
	uint64_t swap_ns;		/* host link busy, both directions */
	uint64_t step_start, step_end_ns;
	uint64_t tick_ns;		/* an idle instance's poll interval */
	uint32_t step_gen;		/* the step in flight's generation (a cut moves its end) */
	uint32_t layers;		/* the profile's */
	uint32_t max_req, idle_ticks;
	int busy, cut, tick_pending, nomem;
	int touched;			/* an event of this instant concerned it: it steps if idle */
	size_t alive;			/* requests added and not collected */
	/* The dispatcher's view: prompts waiting, in the order they came (by request id). */
	uint64_t demand;		/* blocks the waiting prompts need */
	uint32_t *wait_blocks, *wait_serial;	/* per request id (0 blocks: not waiting) */
	uint32_t *wq_req, *wq_serial;	/* the queue, oldest at wq_head */
	size_t wq_head, wq_tail, wq_cap;
	uint32_t serial;
	struct sim_inst_totals *t;
};

/* The load the dispatcher compares (Documentation/sim.rst, "Several instances"). */
struct sim_load {
	uint64_t blocks;		/* tier 0's */
	uint64_t used;			/* referenced by sequences */
	uint64_t demand;		/* blocks of the prompts waiting */
	uint64_t hol;			/* the oldest waiting prompt's blocks */
	uint32_t running;		/* prefilling or decoding */
};

/* -1 with err when the block manager or the scheduler refuses, or memory runs out. */
int sim_inst_setup(struct sim_inst *in, uint32_t id, uint32_t role, const struct sim_config *c,
		   size_t nr_requests, struct sim_inst_totals *t, char *err, size_t errlen);
void sim_inst_teardown(struct sim_inst *in);

/* accel_sched_add() on @in; a waiting prompt of @blocks blocks for the dispatcher. */
int sim_inst_add(struct sim_inst *in, const struct accel_sched_req_opts *o, uint32_t blocks,
		 uint32_t *req);
/* A request left WAITING (its event): no longer the dispatcher's demand. */
void sim_inst_left_queue(struct sim_inst *in, uint32_t req);
void sim_inst_load(struct sim_inst *in, struct sim_load *l);

/* accel_sched_step() at @now into in->out (its runs, swaps, events). */
int sim_inst_sched(struct sim_inst *in, uint64_t now);
/* The step accel_sched_step() gave (runs in in->out) starts at @now: its end pushed. */
int sim_inst_begin(struct sim_inst *in, struct sim_heap *h, uint64_t now);
/* A request arrived during the step and the scheduler says yield: cut its prefills. */
int sim_inst_cut(struct sim_inst *in, struct sim_heap *h, uint64_t now);
/* Whether run @i of the step ending was cut (it reports YIELDED with *layers_done). */
int sim_inst_run_cut(const struct sim_inst *in, uint32_t i, uint32_t *layers_done);
/* The swaps accel_sched_step() gave, each on its direction's link: their ends pushed. */
int sim_inst_start_swaps(struct sim_inst *in, struct sim_heap *h, uint64_t now);

/*
 * A handed-off request's KV: the full blocks of its @n prompt tokens put in @in's block manager
 * as committed, cached blocks (a sequence started, committed, freed), so that its admission
 * finds them in the prefix cache. Returns the blocks imported (0 when the tier is short).
 */
uint32_t sim_inst_import(struct sim_inst *in, const int32_t *prompt, uint64_t n);

#endif
