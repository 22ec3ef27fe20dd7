/* SPDX-License-Identifier: MIT */
/* kvaccel-loadgen - the command line. */
#ifndef LG_CLI_H
#define LG_CLI_H

#include "run.h"
#include "wlopts.h"

struct lg_cli {
	struct lg_wl_cli wl;		/* the workload */
	struct lg_run_opts ropt;
	const char *check_digests;
	int json;
	int server_metrics;		/* GET /metrics before and after the run */
	int dump;			/* print the workload as JSONL, send nothing */
};

/* 0: parsed; 1: --help printed; -1: bad options (the message printed on stderr). */
int lg_cli_parse(int argc, char **argv, struct lg_cli *c);

#endif
