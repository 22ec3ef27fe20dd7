/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - the report: kvaccel-loadgen's (per class and overall TTFT, TPOT, pooled
 * inter-token gaps, e2e, SLO attainment, goodput, failures, preemptions, recompute tax) over the
 * simulated results, and the engine's own totals after it; a table, or one JSON object.
 */
#ifndef SIM_OUTPUT_H
#define SIM_OUTPUT_H

#include <stdio.h>

#include "engine.h"
#include "run.h"
#include "workload.h"

struct sim_stream;

/* @st: --stream's accumulators (wl and res NULL then), or NULL: the exact report of @res. */
void sim_report_table(FILE *f, const struct sim_config *c, const struct lg_workload *wl,
		      const struct lg_result *res, const struct sim_stream *st,
		      const struct sim_totals *t, double wall_s);
/* Deterministic: the same run gives the same bytes (no wall-clock time in it). */
int sim_report_json(FILE *f, const struct sim_config *c, const struct lg_workload *wl,
		    const struct lg_result *res, const struct sim_stream *st,
		    const struct sim_totals *t);

#endif
