/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - seeded faults: which requests their client aborts during the decode
 * (--abort-frac), which swap transfers fail (--swap-fail-frac). Each draw is a hash of the seed
 * and what it is about (the request's index; the instance and its swap's ordinal), so that a run
 * is the same whatever else changes. Documentation/sim.rst, "The model".
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* A draw in [0, 1) of stream @stream, item @i. */
double sim_draw(uint64_t seed, uint64_t stream, uint64_t i);
/*
 * The tokens after which request @idx (of @output_len) is aborted by its client (--abort-frac):
 * 1 to output_len - 1, or 0 (never).
 */
uint32_t sim_abort_point(const struct sim_config *c, size_t idx, uint32_t output_len);
/* Whether swap transfer @k of instance @inst fails (--swap-fail-frac). */
int sim_swap_fails(const struct sim_config *c, uint32_t inst, uint64_t k);

#endif
