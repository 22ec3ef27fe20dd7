/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - the metrics: percentiles of TTFT, TPOT, inter-token and end-to-end latency,
 * failures by cause, SLO attainment, goodput, preemptions and the recompute tax, per class and
 * overall; the report.
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stdbool.h>
#include <stdio.h>

#include "run.h"
#include "workload.h"

/* The p-th percentile (0..100) of n sorted values, linear between the closest ranks. */
double lg_percentile(const double *sorted, size_t n, double p);

/*
 * A request meets its SLO: it completed (ok, no failure), TTFT <= ttft_slo_ms and TPOT <=
 * tpot_slo_ms (0: none).
 */
int lg_meets_slo(const struct lg_req *q, const struct lg_result *r);

#define LG_NR_PCT 3
extern const double lg_pcts[LG_NR_PCT];	/* 50, 90, 99 */

struct lg_summary {
	size_t requests, completed, failed, met;
	size_t fail[LG_FAIL_NR];		/* failed by cause (fail[0]: none given) */
	size_t nr_tpot;				/* completed with two tokens or more */
	double ttft[LG_NR_PCT], tpot[LG_NR_PCT], e2e[LG_NR_PCT];
	size_t nr_itl;				/* gaps between tokens, every request's */
	double itl[LG_NR_PCT], itl_max;		/* over those gaps, pooled */
	double attainment;			/* met / requests */
	double goodput;				/* met / duration, requests per second */
	double throughput;			/* completed / duration */
	size_t reported;			/* completed requests whose summary had preemptions */
	long long preemptions;			/* their sum */
	size_t preempted;			/* requests preempted at least once */
	size_t recompute_reported;		/* ... whose summary had recomputed_tokens */
	long long recomputed, tax_tokens;	/* recomputed; prompt + completion tokens */
	double recompute_tax;			/* recomputed / tax_tokens (-1: not reported) */
};

/*
 * Count request @q's result @r into @s (requests, failures by cause, completed, TPOT samples, SLO
 * met, preemptions, the recompute tax): true when it completed (its latencies are then the
 * caller's to keep: @s->completed and @s->nr_tpot already count them).
 */
bool lg_summary_count(struct lg_summary *s, const struct lg_req *q, const struct lg_result *r);
/* Summarise the requests of class cls (NULL: all). */
void lg_summarize(const struct lg_workload *wl, const struct lg_result *res, const char *cls,
		  double duration_s, struct lg_summary *s);

struct lg_digest_check {
	int mode;		/* 0: none, 1: recorded, 2: compared */
	size_t recorded, compared, mismatched, missing;
	char first[128];	/* the first mismatch, in words */
};

struct lg_server;

/* Responses that were no 200 by status, transport failures by kind; the first message of each. */
struct lg_errors {
	size_t status[1000];		/* responses by status, 200 left out */
	size_t kind[LG_HTTP_NR];	/* transport failures by kind */
	const char *msg[1000];		/* the first message for a status */
	const char *kmsg[LG_HTTP_NR];
};

/*
 * What a report prints, its summaries made: by lg_summarize() from every result (the reports
 * below), or folded as each request ended (kvaccel-sim --stream: estimated, its percentiles from
 * histograms, said by "estimated": true in the JSON).
 */
struct lg_report_sums {
	const char *const *names;		/* the classes, in the order they first came */
	const struct lg_summary *cls;		/* nr_cls of them */
	size_t nr_cls;
	const struct lg_summary *all;
	double duration_s, max_late_ms;
	const struct lg_errors *errors;		/* NULL: none counted */
	int estimated;
};

void lg_report_table_sums(FILE *f, const struct lg_report_sums *r,
			  const struct lg_digest_check *dc, const struct lg_server *srv);
void lg_report_json_sums(FILE *f, const struct lg_report_sums *r,
			 const struct lg_digest_check *dc, const struct lg_server *srv);

/* The report: a table, or one JSON object; dc and srv (--server-metrics) may be NULL. */
void lg_report_table(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		     double duration_s, const struct lg_digest_check *dc,
		     const struct lg_server *srv);
void lg_report_json(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		    double duration_s, const struct lg_digest_check *dc,
		    const struct lg_server *srv);

/*
 * --check-digests FILE: record every completed request's digests if FILE does not exist, else
 * compare them with it. Returns -1 with err set if the file cannot be read or written.
 */
int lg_digests_check(const char *path, const struct lg_workload *wl, const struct lg_result *res,
		     struct lg_digest_check *dc, char *err, size_t errlen);

#endif
