/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim --stream - the report's numbers folded as each request ends, so that a run keeps
 * only the requests alive: per class and overall, the counts kvaccel-loadgen's summary has
 * (requests, completed, failures by cause, SLO met, preemptions, recomputed tokens) and
 * log-bucketed histograms of TTFT, TPOT, end-to-end latency and the pooled inter-token gaps, whose
 * percentiles are within 0.4 % of the exact ones (128 buckets an octave: a bucket's middle is
 * that close to any value in it); the largest gap is exact. Documentation/sim.rst, "--stream".
 */
#ifndef SIM_STREAM_H
#define SIM_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "run.h"
#include "stats.h"
#include "workload.h"

/* Sub-buckets an octave (2^7: a bucket is 1/128 of its octave wide), the octaves kept. */
#define SIM_HIST_SUB_BITS	7
#define SIM_HIST_EMIN		(-24)		/* 2^-24 ms and below: one bucket */
#define SIM_HIST_EMAX		40		/* 2^40 ms and above: one bucket */
#define SIM_HIST_NR		((((SIM_HIST_EMAX) - (SIM_HIST_EMIN)) << SIM_HIST_SUB_BITS) + 2)

struct sim_hist {
	uint64_t n;
	double min, max;		/* exact */
	uint64_t *b;			/* SIM_HIST_NR counts, allocated at the first value */
};

/* 0, or -1 when memory ran out (the value not counted). */
int sim_hist_add(struct sim_hist *h, double v);
/*
 * The p-th percentile (0..100) as lg_percentile() reads it from the sorted values (linear
 * between the closest ranks), each rank's value its bucket's middle within [min, max]; NAN
 * when empty.
 */
double sim_hist_pct(const struct sim_hist *h, double p);
void sim_hist_free(struct sim_hist *h);

/* One class's (or all requests') accumulators: what lg_summarize() counts. */
struct sim_acc {
	char name[LG_NAME_MAX];
	struct lg_summary s;		/* the counts (the percentiles filled by sim_stream_sums) */
	struct sim_hist ttft, tpot, e2e, itl;
};

#define SIM_STREAM_MAX_CLS	64

struct sim_stream {
	struct sim_acc all;
	struct sim_acc cls[SIM_STREAM_MAX_CLS];	/* in the order they first ended */
	size_t nr_cls;
	struct lg_errors err;			/* messages: copies, owned */
	int nomem;
};

void sim_stream_init(struct sim_stream *st);
void sim_stream_free(struct sim_stream *st);
/*
 * Request @q's class is seen: its accumulator made now (the report lists the classes in the
 * order they are first seen; call at each arrival for the workload's order).
 */
void sim_stream_class(struct sim_stream *st, const struct lg_req *q);
/* Request @q ended with result @r (its gaps included): folded in. */
void sim_stream_fold(struct sim_stream *st, const struct lg_req *q, const struct lg_result *r);

/* The summary of class @cls (NULL: all), as lg_summarize() gives it; -1 if no such class. */
int sim_stream_summary(const struct sim_stream *st, const char *cls, double duration_s,
		       struct lg_summary *s);

/* kvaccel-loadgen's report (table or JSON) from the accumulators, marked as estimated. */
void sim_stream_table(FILE *f, const struct sim_stream *st, double duration_s);
void sim_stream_json(FILE *f, const struct sim_stream *st, double duration_s);

#endif
