/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim calibrate - a profile of the reference engine fitted from kvaccel-serve's step
 * logs (--step-log, Documentation/serve.rst "The step log"): the step model's coefficients
 * (step_base_us, prefill_token_us, decode_token_us, context_token_us, prefill_quad_us) by
 * non-negative least squares (Lawson-Hanson on the normal equations; relative errors by
 * default, so that the many short steps weigh as much as the few long ones), a floor when it
 * fits better, the swap link from the measured transfers, the model's shape and the pool from the
 * logs' header. Documentation/sim.rst, "Calibration".
 */
#ifndef SIM_CALIBRATE_H
#define SIM_CALIBRATE_H

#include <stddef.h>
#include <stdio.h>

#define SIM_CALIB_NR	5	/* base, prefill token, decode token, context token, quad */

/* Which measured time a step's duration is. */
enum sim_calib_time {
	SIM_CALIB_PERIOD,	/* start to the next step's start (steps back to back) */
	SIM_CALIB_STEP,		/* the whole serve_driver_step() */
	SIM_CALIB_COMPUTE,	/* block tables, the engine's compute and the updates */
};

struct sim_calib_step {
	double x[SIM_CALIB_NR];		/* 1, P, D, C, Q */
	double period_ns;		/* < 0: not known (the last line, or idle after it) */
	double step_ns, compute_ns;
};

struct sim_calib_swap {
	double blocks, ns;
};

struct sim_calib {
	/* The header: the model's shape and the pool (the first log's; the others must agree). */
	int have_header;
	double layers, kv_heads, head_dim, dtype_bytes, block_tokens, block_bytes;
	double blocks, swap_blocks, budget, chunk, max_seqs, threads;
	char policy[16], preempt[16];
	struct sim_calib_step *step;
	size_t nr_steps, cap_steps, yielded;	/* yielded: steps left out (a run yielded) */
	struct sim_calib_swap *swap;
	size_t nr_swaps, cap_swaps;
};

struct sim_calib_fit {
	double coef_us[SIM_CALIB_NR];	/* base, per prefill token, decode, context token, quad */
	double floor_us;		/* 0: none */
	double overhead_ns;		/* period: median of period - step time, where both known */
	size_t n;			/* steps in the fit */
	double r2, rel_p50, rel_p90;	/* over those steps, with the floor */
	/* The swap link: fixed cost and GB/s of the simulator's block bytes; none measured: 0. */
	size_t nr_swaps;
	double swap_transfer_us, swap_gbps;
};

/* Append @path's steps and swaps to @c; -1 with "FILE:LINE: what" in @err. */
int sim_calib_read(const char *path, struct sim_calib *c, char *err, size_t errlen);
void sim_calib_free(struct sim_calib *c);
/* sim_calib_fit()'s flags. */
#define SIM_CALIB_FLOOR		1u	/* a floor, if it lowers the squared error by 1 % */
#define SIM_CALIB_RELATIVE	2u	/* minimise relative errors (each step weighted 1 / time) */

/* Fit @c's steps (their @time) by NNLS; -1 with err when too few steps are left to fit. */
int sim_calib_fit(const struct sim_calib *c, enum sim_calib_time time, unsigned int flags,
		  struct sim_calib_fit *f, char *err, size_t errlen);
/* The fit's step time for shape x (us). */
double sim_calib_predict(const struct sim_calib_fit *f, const double *x);
/*
 * NNLS on the normal equations: minimise |A x - b|^2 for x >= 0 given G = A'A (n x n, row major)
 * and h = A'b; n at most SIM_CALIB_NR. 0, or -1 if it did not converge.
 */
int sim_nnls(int n, const double *G, const double *h, double *x);
/* The profile file (tools/sim/profile.c's keys) of the fit. */
void sim_calib_write_profile(FILE *out, const struct sim_calib *c, const struct sim_calib_fit *f,
			     const char *name, const char *gpu, const char *sources);
/* `kvaccel-sim calibrate ...` (argv[0] is "calibrate"): 0, 1 (output failed), 2 (bad input). */
int sim_calibrate_main(int argc, char **argv);

#endif
