/* SPDX-License-Identifier: MIT */
/* kvaccel-sim - the command line: the profile, the workload (loadgen's options), the engine. */
#ifndef SIM_CLI_H
#define SIM_CLI_H

#include "engine.h"
#include "workload.h"

struct sim_cli {
	const char *profile;
	const char *trace;		/* NULL: synthetic */
	struct lg_trace_opts topt;
	struct lg_synth_opts sopt;
	struct sim_config cfg;		/* prof left NULL */
	int json;
};

/* 0: parsed; 1: --help printed; -1: bad options (the message printed on stderr). */
int sim_cli_parse(int argc, char **argv, struct sim_cli *c);

#endif
