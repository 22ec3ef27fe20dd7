/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve --step-log FILE: one CSV line per step that ran something, with the batch's
 * shape as kvaccel-sim's latency model sees it and the step's measured times, and one per swap
 * transfer; a header line first names the model's shape and the pool, so that
 * `kvaccel-sim calibrate` can fit a profile of this engine from it. Documentation/serve.rst,
 * "The step log".
 *
 *   # kvaccel-serve step log v1 layers=L kv_heads=H head_dim=D dtype_bytes=4 block_tokens=T ...
 *   kind,t_ns,runs,prefill_tokens,decode_runs,context_tokens,quad,yielded,computed,compute_ns,
 *       step_ns,after_idle
 *   step,...                       (the columns above)
 *   swap,t_ns,dir,blocks,bytes,ns,status
 *
 * The driver calls these only when its opts.step_log is set; the swap lines come from the
 * reaper thread (each line is one fprintf: stdio locks the stream per call).
 */
#ifndef SERVE_STEPLOG_H
#define SERVE_STEPLOG_H

#include <stdint.h>
#include <stdio.h>

#include <accel.h>

#include "stack.h"

/* The shape of one step, in kvaccel-sim's terms (tools/sim/profile.h). */
struct serve_steplog_step {
	uint64_t t_ns;			/* the step's start, since the log's t0 */
	uint32_t runs, yielded;
	uint64_t prefill_tokens;	/* P: every prefill run's tokens */
	uint64_t decode_runs;		/* D */
	uint64_t context_tokens;	/* C: sum of start + 1 over decode runs */
	uint64_t quad;			/* Q: sum of n * (2 * start + n) over prefill runs */
	uint64_t computed;		/* tokens computed (yielded runs computed none) */
	uint64_t compute_ns;		/* block tables, the engine's compute, the updates */
	uint64_t step_ns;		/* the whole serve_driver_step() */
	int after_idle;			/* a step that returned 0 came since the last line */
};

/*
 * Create @path and write the header (the model's shape, the pool and the scheduler's settings
 * of @so, whose sched is set); NULL with "--step-log PATH: why" in @err.
 */
FILE *serve_steplog_open(const char *path, const struct serve_model *m,
			 const struct serve_stack_opts *so, char *err, size_t errlen);
/* Add run @r to the shape @s. */
void serve_steplog_add_run(struct serve_steplog_step *s, const struct accel_sched_run *r);
void serve_steplog_write_step(FILE *f, const struct serve_steplog_step *s);
/* A swap transfer: direction (0 out, 1 in), blocks, bytes, start and end (CLOCK_MONOTONIC). */
void serve_steplog_write_swap(FILE *f, uint64_t t0, int in, uint64_t blocks, uint64_t bytes,
			      uint64_t start_ns, uint64_t end_ns, int status);

#endif /* SERVE_STEPLOG_H */
