/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - the events' command-line options (--pressure, --pressure-every,
 * --client-timeout-ms, --abort-frac, --swap-fail-frac), kept apart from cli.c's like loadgen's
 * workload options: cli.c copies them after its own.
 */
#ifndef SIM_EVOPTS_H
#define SIM_EVOPTS_H

#include <getopt.h>

#include "engine.h"

/* getopt_long values: SIM_EV_OPT + their index in sim_ev_options (no terminator). */
#define SIM_EV_OPT	768
#define SIM_EV_NR_OPTS	5

extern const struct option sim_ev_options[SIM_EV_NR_OPTS];
extern const char sim_ev_usage[];

/* Option @opt: 0, -1 (the message printed), 1 (not one of these). */
int sim_ev_parse(const char *prog, int opt, const char *arg, struct sim_config *c);

#endif
