// SPDX-License-Identifier: MIT
/* kvaccel-sim - seeded faults (see faults.h). */
#include "faults.h"

enum { STREAM_ABORT = 1, STREAM_ABORT_AT = 2, STREAM_SWAP = 3 };

/* SplitMix64's finaliser. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

double sim_draw(uint64_t seed, uint64_t stream, uint64_t i)
{
	uint64_t x = mix(mix(mix(seed) ^ stream) ^ i);

	return (double)(x >> 11) / (double)(1ull << 53);
}

uint32_t sim_abort_point(const struct sim_config *c, size_t idx, uint32_t output_len)
{
	if (!(c->abort_frac > 0) || output_len < 2 ||
	    sim_draw(c->seed, STREAM_ABORT, idx) >= c->abort_frac)
		return 0;
	return 1 + (uint32_t)(sim_draw(c->seed, STREAM_ABORT_AT, idx) * (output_len - 1));
}

int sim_swap_fails(const struct sim_config *c, uint32_t inst, uint64_t k)
{
	return c->swap_fail_frac > 0 &&
	       sim_draw(c->seed, STREAM_SWAP + ((uint64_t)inst << 8), k) < c->swap_fail_frac;
}
