/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - goodput as DistServe (Zhong et al., OSDI '24) defines it: the highest request
 * rate at which the SLO attainment (TTFT and TPOT both met; a failure is a miss) is at least a
 * target (0.9). Found by simulating the same requests with their arrival times compressed or
 * stretched (x times the rate: arrival / x): for a synthetic workload that is the generator at
 * x times --rate (its gaps are a unit draw over the rate, from a stream of their own), for a
 * trace x times --time-scale. A bracket first (the rate doubled while the target is met, halved
 * while it is not), then bisection in log space until the two ends are within a relative
 * tolerance; the goodput is the bracket's lower end. Per class (--goodput-per-class), the
 * attainment is that of the class that meets fewest (every class at least the target), so a
 * system cannot pass by serving a large class well and a small urgent one badly.
 */
#ifndef SIM_GOODPUT_H
#define SIM_GOODPUT_H

#include <stddef.h>
#include <stdio.h>

#include "engine.h"
#include "workload.h"

#define SIM_GOODPUT_MAX_TRIES	64

struct sim_goodput_try {
	double scale;			/* of the workload's arrival rate */
	double rate;			/* requests per second: base_rate x scale */
	double attainment;		/* met / requests; per class: the worst class's */
	size_t met, requests;		/* all classes */
	char worst[LG_NAME_MAX];	/* per class: the class of the attainment */
};

struct sim_goodput {
	double target, tol;		/* the attainment wanted; relative tolerance of the rate */
	int per_class;			/* every class's attainment at least target */
	double base_rate;		/* the workload's own rate (scale 1) */
	double goodput;			/* requests per second (0: the target is never met) */
	double scale;			/* goodput / base_rate */
	double upper;			/* the lowest rate tried that missed (0: none) */
	int bracketed;			/* both ends found within the tries */
	struct sim_goodput_try tries[SIM_GOODPUT_MAX_TRIES];
	size_t nr_tries;		/* in the order they were run */
};

/*
 * The goodput of @c on @wl (sorted by arrival) whose rate at scale 1 is @base_rate (requests per
 * second), @per_class as struct sim_goodput's. @progress, if not NULL, gets a line per rate tried. 0, or -1 with err (a run's setup
 * failed, no memory).
 */
int sim_goodput_find(const struct sim_config *c, const struct lg_workload *wl, double base_rate,
		     double target, double tol, int per_class, FILE *progress,
		     struct sim_goodput *g, char *err, size_t errlen);

/* A trace's own rate: requests over the span of their arrivals, (n - 1) / (last - first). */
double sim_workload_rate(const struct lg_workload *wl);

void sim_goodput_table(FILE *f, const struct sim_goodput *g);
int sim_goodput_json(FILE *f, const struct sim_config *c, const struct sim_goodput *g);

struct sim_cli;
/* --goodput: the search on @wl with the command line's options, its report; an exit status. */
int sim_goodput_cmd(const struct sim_cli *c, const struct lg_workload *wl);

#endif
