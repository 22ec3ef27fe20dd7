// SPDX-License-Identifier: MIT
/* kvaccel-serve - greedy and seeded temperature sampling. */
#include "model.h"
#include "sample.h"

double serve_sample_uniform(uint64_t seed, uint64_t index)
{
	uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

int32_t serve_sample(float *logits, uint32_t n, float temperature, uint64_t seed, uint64_t index)
{
	uint32_t i, best = 0;
	double u, acc = 0.0;

	if (temperature <= 0.0f) {
		for (i = 1; i < n; i++)
			if (logits[i] > logits[best])
				best = i;
		return (int32_t)best;
	}
	for (i = 0; i < n; i++)
		logits[i] /= temperature;
	serve_softmax(logits, n);
	u = serve_sample_uniform(seed, index);
	for (i = 0; i < n; i++) {
		acc += logits[i];
		if (u < acc)
			return (int32_t)i;
	}
	return (int32_t)(n - 1);
}
