/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - metrics over the per-request results, after the run (no engine hooks): Jain's
 * fairness index across clients, token throughput, and the CSV time series (--csv).
 */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "run.h"
#include "workload.h"

/*
 * Jain's index (sum x)^2 / (n sum x^2) over the clients (by name; requests without one are one
 * client "") of x = the client's service as VTC weighs it (Sheng et al., "Fairness in Serving
 * Large Language Models", OSDI '24: 1 per prompt token, 2 per output token received) over the
 * time its requests spent in the system (arrival to their last token, summed): the weighted
 * service rate each client got while it had requests waiting or running. 1: every client served
 * at the same rate; 1/n: one client served, the others not. Clients whose requests spent no time
 * in the system (refused at once) are left out; *nr_clients: those counted. 1 when none.
 */
double sim_jain(const struct lg_workload *wl, const struct lg_result *res, size_t *nr_clients);

/* Output tokens received, and prompt plus output tokens of the requests that got any. */
void sim_tokens(const struct lg_workload *wl, const struct lg_result *res,
		unsigned long long *output, unsigned long long *all);

/*
 * The CSV time series: a header, then a row per @interval_s of simulated time from 0 to the last
 * event: t_s (the interval's start), arrivals, first_tokens, completions (whole, ok), in_flight
 * (arrived, not ended at the interval's end), output_tokens_per_s (tokens received in it), then
 * of the requests arriving in it: ttft_p50_ms, ttft_p99_ms (of those that got a first token;
 * empty if none) and slo_attainment (met / arrived; empty if none). 0, or -1 (no memory, a write
 * failed).
 */
int sim_csv_write(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		  double interval_s);

/*
 * --requests-csv: a row per request, in the workload's order: index, class, client, arrival_s,
 * ok (1: completed whole), ttft_ms, tpot_ms, e2e_ms (empty when it got no token), slo_met.
 */
int sim_requests_csv(FILE *f, const struct lg_workload *wl, const struct lg_result *res);

/* --csv: the time series into @path; 0, or 1 with "kvaccel-sim: --csv FILE: why" said. */
int sim_csv_file(const char *path, double interval_s, const struct lg_workload *wl,
		 const struct lg_result *res);
/* --requests-csv: as sim_csv_file(). */
int sim_requests_csv_file(const char *path, const struct lg_workload *wl,
			  const struct lg_result *res);

#endif
