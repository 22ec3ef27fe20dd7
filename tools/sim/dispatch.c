// SPDX-License-Identifier: MIT
/* kvaccel-sim - the dispatcher (see dispatch.h). */
#include <string.h>

#include "dispatch.h"

static const char *const names[SIM_NR_DISPATCH] = { "rr", "least", "llumnix" };

const char *sim_dispatch_name(uint32_t d)
{
	return d < SIM_NR_DISPATCH ? names[d] : NULL;
}

int sim_dispatch_parse(const char *name, uint32_t *d)
{
	uint32_t i;

	for (i = 0; i < SIM_NR_DISPATCH; i++)
		if (!strcmp(name, names[i])) {
			*d = i;
			return 0;
		}
	return -1;
}

/*
 * Llumnix (Sun et al., OSDI'24, section 4.4): an instance's virtual usage is the blocks its
 * running requests hold plus, for the head-of-line queuing request, the blocks it needs (the
 * queue behind it adds nothing); freeness = (M - virtual usage) / B, M the instance's blocks
 * and B its batch size (running requests, 1 at least). Its priority headroom and the
 * terminating instance's infinite usage are not modelled (no priorities of instances here, no
 * scaling).
 */
double sim_dispatch_freeness(const struct sim_load *l)
{
	double v = (double)l->used + (double)l->hol;

	return ((double)l->blocks - v) / (l->running ? l->running : 1);
}

uint32_t sim_dispatch_pick(uint32_t policy, const struct sim_load *l, uint32_t n, uint32_t *rr)
{
	uint32_t i, best = 0;

	if (n <= 1)
		return 0;
	switch (policy) {
	case SIM_DISPATCH_LEAST:
		for (i = 1; i < n; i++)
			if (l[i].used + l[i].demand < l[best].used + l[best].demand)
				best = i;
		return best;
	case SIM_DISPATCH_LLUMNIX:
		for (i = 1; i < n; i++)
			if (sim_dispatch_freeness(&l[i]) > sim_dispatch_freeness(&l[best]))
				best = i;
		return best;
	default:
		best = *rr % n;
		*rr = best + 1;
		return best;
	}
}
