/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - sampling: greedy (temperature 0), or seeded temperature
 * sampling whose random number depends only on (seed, token index).
 */
#ifndef SERVE_SAMPLE_H
#define SERVE_SAMPLE_H

#include <stdint.h>

/** Uniform in [0, 1) from (seed, index) alone. */
double serve_sample_uniform(uint64_t seed, uint64_t index);
/**
 * The next token from @logits[0..n) (scratch: overwritten): argmax (lowest
 * index on ties) when @temperature is 0, else a draw from
 * softmax(logits / temperature) with serve_sample_uniform(seed, index).
 */
int32_t serve_sample(float *logits, uint32_t n, float temperature, uint64_t seed, uint64_t index);

#endif /* SERVE_SAMPLE_H */
