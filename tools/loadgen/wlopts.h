/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen and kvaccel-sim - the workload options both take (a trace or the synthetic
 * generator, its lengths, classes, SLOs and seed): their getopt_long entries, usage lines,
 * defaults and checks, so that the two tools read one workload the same way.
 */
#ifndef LG_WLOPTS_H
#define LG_WLOPTS_H

#include <getopt.h>

#include "workload.h"

/*
 * getopt_long values of the workload options: LG_WL_OPT + their index in lg_wl_options (no
 * terminator: a tool copies them after its own and ends the array).
 */
#define LG_WL_OPT	512
#define LG_WL_NR_OPTS	21

extern const struct option lg_wl_options[LG_WL_NR_OPTS];
/* Their usage lines, for a tool's --help. */
extern const char lg_wl_usage[];

struct lg_wl_cli {
	const char *trace;		/* NULL: synthetic */
	int synthetic;
	struct lg_trace_opts topt;
	struct lg_synth_opts sopt;	/* sopt.seed is --seed for the whole tool */
};

void lg_wl_defaults(struct lg_wl_cli *w);
/*
 * Option @opt (getopt_long's value) with its argument: 0 taken, 1 not a workload option,
 * -1 a bad value (said on stderr as "PROG: --NAME VALUE: why").
 */
int lg_wl_parse(const char *prog, int opt, const char *arg, struct lg_wl_cli *w);
/* After the options: exactly one of a trace and --synthetic, else -1 (said with @usage). */
int lg_wl_check(const char *prog, const struct lg_wl_cli *w, const char *usage);

/* Checked numbers ("PROG: --NAME VALUE: why" on stderr and -1 when bad), for the tools' own. */
int lg_opt_real(const char *prog, const char *opt, const char *v, double min, double *out);
int lg_opt_whole(const char *prog, const char *opt, const char *v, unsigned long long min,
		 unsigned long long max, unsigned long long *out);
int lg_opt_bad(const char *prog, const char *opt, const char *v, const char *why);

#endif
