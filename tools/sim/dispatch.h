/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - the dispatcher: which instance a request goes to (an arrival to a prefill or
 * mixed instance, a prefill/decode hand-off to a decode instance), from the loads the instances
 * report (instance.h, struct sim_load). Documentation/sim.rst, "Several instances".
 */
#ifndef SIM_DISPATCH_H
#define SIM_DISPATCH_H

#include <stdint.h>

#include "instance.h"

enum sim_dispatch {
	SIM_DISPATCH_RR = 0,		/* round robin */
	SIM_DISPATCH_LEAST = 1,		/* fewest blocks in use plus blocks the queue needs */
	SIM_DISPATCH_LLUMNIX = 2,	/* Llumnix's freeness over virtual usage */
	SIM_NR_DISPATCH = 3,
};

/* "rr", "least", "llumnix"; NULL for an unknown value. */
const char *sim_dispatch_name(uint32_t d);
/* 0 and *d, or -1 for an unknown name. */
int sim_dispatch_parse(const char *name, uint32_t *d);
/*
 * The index (0 .. n - 1) of the instance to take the request among @n with loads @l; @rr the
 * pool's round-robin position (advanced by rr). Ties go to the lowest index.
 */
uint32_t sim_dispatch_pick(uint32_t policy, const struct sim_load *l, uint32_t n, uint32_t *rr);
/* Llumnix's freeness of one instance: (blocks - virtual usage) / batch size. */
double sim_dispatch_freeness(const struct sim_load *l);

#endif
