/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - pressure rounds (--pressure, --pressure-every): what kvacceld does when the
 * node's memory runs short, asking an engine to release blocks of a tier, answered the way
 * kvaccel-serve answers (tools/serve/pressure.c): accel_sched_release() between two steps (a
 * round that comes during a step waits for its end). The tier does not shrink (kvaccel has no
 * region discard yet); with :HOLD_S what the round freed is withheld from the tier that long, by
 * a block-manager sequence of the simulator's that takes the blocks (those of the swap-outs the
 * round started as they land) and is freed at the end. Documentation/sim.rst, "The model".
 */
#ifndef SIM_PRESSURE_H
#define SIM_PRESSURE_H

#include <stdint.h>

#include "engine.h"
#include "event.h"
#include "instance.h"

/*
 * Round @p (index @idx of the run's) on @in at @now: answered now if the instance is idle,
 * else queued for the end of its step (sim_pressure_drain()). -1: out of memory.
 */
int sim_pressure_ask(struct sim_inst *in, const struct sim_config *c, uint32_t idx,
		     struct sim_heap *h, uint64_t now, struct sim_totals *t);
/* The rounds queued during the step that just ended, answered at @now. */
int sim_pressure_drain(struct sim_inst *in, const struct sim_config *c, struct sim_heap *h,
		       uint64_t now, struct sim_totals *t);
/* A swap landed: the holds still owed blocks take those now free. */
void sim_pressure_top_up(struct sim_inst *in, struct sim_totals *t);
/* Hold @i of @in ends: its blocks go back to the tier. */
void sim_pressure_hold_end(struct sim_inst *in, uint32_t i);

#endif
