/* SPDX-License-Identifier: MIT */
/* kvaccel-sim - the command line: the profile, the workload (loadgen's options), the engine. */
#ifndef SIM_CLI_H
#define SIM_CLI_H

#include "engine.h"
#include "wlopts.h"

struct sim_cli {
	const char *profile;
	struct lg_wl_cli wl;		/* the workload: kvaccel-loadgen's options */
	struct sim_config cfg;		/* prof left NULL */
	int json;
	int stream;			/* --stream: made and folded request by request */
	struct sim_cli_rep {		/* goodput and the time series (cli.c's rep_opt()) */
		int goodput;		/* --goodput: the goodput search instead of one run */
		double target, tol;	/* --goodput-target (0.9), --goodput-tol (0.01) */
		int per_class;		/* --goodput-per-class: every class at the target */
		const char *csv;	/* --csv FILE */
		double csv_ms;		/* --csv-interval MS (1000) */
		const char *requests_csv;	/* --requests-csv FILE */
	} rep;
};

/* 0: parsed; 1: --help printed; -1: bad options (the message printed on stderr). */
int sim_cli_parse(int argc, char **argv, struct sim_cli *c);

#endif
