/* SPDX-License-Identifier: MIT */
/* kvaccel-loadgen - a seeded random stream (splitmix64) and the distributions it draws. */
#ifndef LG_RNG_H
#define LG_RNG_H

#include <math.h>
#include <stdint.h>

struct lg_rng {
	uint64_t s;
};

static inline uint64_t lg_rng_next(struct lg_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so logs are finite. */
static inline double lg_rng_unit(struct lg_rng *r)
{
	return ((lg_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double lg_rng_exp(struct lg_rng *r, double mean)
{
	return -mean * log(lg_rng_unit(r));
}

static inline double lg_rng_normal(struct lg_rng *r)
{
	double u = lg_rng_unit(r), v = lg_rng_unit(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Gamma(shape k, scale 1), Marsaglia and Tsang; k < 1 by the boost U^(1/k). */
static inline double lg_rng_gamma(struct lg_rng *r, double k)
{
	double d, c, x, v, u;

	if (k < 1.0)
		return lg_rng_gamma(r, k + 1.0) * pow(lg_rng_unit(r), 1.0 / k);
	d = k - 1.0 / 3.0;
	c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		do {
			x = lg_rng_normal(r);
			v = 1.0 + c * x;
		} while (v <= 0);
		v = v * v * v;
		u = lg_rng_unit(r);
		if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

#endif
