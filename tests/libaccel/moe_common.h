/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the MoE planner's native tests share: a seeded generator, Zipf
 * loads and a placement's invariants (every expert has a slot, logcnt sums
 * to the slot count, log2phy and phy2log agree).
 */
#ifndef MOE_COMMON_H
#define MOE_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accel_moe_plan.h"

static inline uint64_t moe_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline double moe_unif(uint64_t *s)
{
	return (moe_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * Zipf(@skew) loads of @tokens tokens per layer over @experts experts, the
 * ranks shuffled per layer: integer token counts (as the statistics give).
 */
static inline void moe_zipf(float *w, uint32_t layers, uint32_t experts, double skew,
			    uint32_t tokens, uint64_t *seed)
{
	uint32_t l, e, *perm = malloc(experts * sizeof(*perm));
	double norm = 0;

	for (e = 0; e < experts; e++)
		norm += pow(e + 1, -skew);
	for (l = 0; l < layers; l++) {
		for (e = 0; e < experts; e++)
			perm[e] = e;
		for (e = experts - 1; e > 0; e--) {
			uint32_t j = moe_rand(seed) % (e + 1), x = perm[e];

			perm[e] = perm[j];
			perm[j] = x;
		}
		for (e = 0; e < experts; e++) {
			double jitter = 0.9 + 0.2 * moe_unif(seed);

			w[(size_t)l * experts + perm[e]] =
				floorf((float)(tokens * pow(e + 1, -skew) / norm * jitter));
		}
	}
	free(perm);
}

/*
 * Check one placement of all layers: ids in range, every expert in a
 * slot, logcnt matching phy2log and summing to the slots, log2phy listing
 * exactly each expert's slots then -1. Returns NULL or what is wrong.
 */
static inline const char *moe_check_placement(const struct accel_moe_topo *t,
					      const int32_t *phy2log, const int32_t *log2phy,
					      uint32_t width, const int32_t *logcnt)
{
	uint32_t l, s, e, r;
	int32_t *cnt = calloc(t->experts, sizeof(*cnt));
	const char *why = NULL;

	for (l = 0; l < t->layers && !why; l++) {
		const int32_t *p = phy2log + (size_t)l * t->slots;
		uint64_t sum = 0;

		memset(cnt, 0, t->experts * sizeof(*cnt));
		for (s = 0; s < t->slots && !why; s++) {
			if (p[s] < 0 || (uint32_t)p[s] >= t->experts)
				why = "phy2log id out of range";
			else
				cnt[p[s]]++;
		}
		for (e = 0; e < t->experts && !why; e++) {
			const int32_t *row = log2phy ? log2phy + ((size_t)l * t->experts + e) * width
						     : NULL;

			if (cnt[e] < 1)
				why = "an expert without a slot";
			else if (logcnt && logcnt[(size_t)l * t->experts + e] != cnt[e])
				why = "logcnt differs from phy2log";
			sum += cnt[e];
			for (r = 0; row && r < width && !why; r++) {
				if ((int32_t)r < cnt[e]) {
					if (row[r] < 0 || (uint32_t)row[r] >= t->slots ||
					    p[row[r]] != (int32_t)e)
						why = "log2phy entry not a slot of its expert";
					for (uint32_t q = 0; q < r && !why; q++)
						if (row[q] == row[r])
							why = "log2phy lists a slot twice";
				} else if (row[r] != -1) {
					why = "log2phy not padded with -1";
				}
			}
		}
		if (!why && sum != t->slots)
			why = "counts do not sum to the slots";
	}
	free(cnt);
	return why;
}

#endif
