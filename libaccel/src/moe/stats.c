// SPDX-License-Identifier: MIT
/*
 * libaccel - MoE load statistics: tokens routed per layer and expert over
 * a sliding window of steps, and co-activation counts between consecutive
 * layers' experts (Documentation/moe.rst, "Load statistics").
 *
 * Loads: a ring of window_steps + 1 per-step arrays of uint32 counters
 * (the current step and the window's completed ones), plus
 * the window's running uint64 sums: a step's array is added to the sums
 * when it ends, and subtracted when it leaves the window. Co-activation
 * would need [layers - 1][experts][experts] counters per step, too much to
 * keep window_steps of, so it is kept in two epochs of window_steps steps:
 * the current one and the previous one (a read covers both); at an epoch's
 * end the previous is cleared and becomes the current. Nothing is
 * allocated after accel_moe_stats_create().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "plan.h"

struct accel_moe_stats {
	uint32_t layers, experts, window, flags;
	uint32_t head;		/* the ring index of the current step */
	uint32_t steps;		/* completed steps in the window */
	uint32_t epoch_steps;	/* steps ended in the current co-activation epoch */
	size_t cells;		/* layers * experts */
	uint32_t *ring;		/* [window + 1][layers][experts] */
	uint64_t *sum;		/* [layers][experts], the completed steps in the window */
	uint32_t *coact[2];	/* [layers - 1][experts][experts]: current, previous */
	size_t coact_cells;
};

ACCEL_EXPORT struct accel_moe_stats *accel_moe_stats_create(uint32_t layers, uint32_t experts,
							    uint32_t window_steps, uint32_t flags)
{
	struct accel_moe_stats *st;
	size_t cells = (size_t)layers * experts;

	if (!layers || layers > ACCEL_MOE_MAX_LAYERS || !experts ||
	    experts > ACCEL_MOE_MAX_EXPERTS || !window_steps ||
	    window_steps > ACCEL_MOE_MAX_WINDOW || (flags & ~ACCEL_MOE_STATS_FLAGS) ||
	    cells * (window_steps + 1ull) > (1ull << 32)) {
		errno = EINVAL;
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		goto nomem;
	st->layers = layers;
	st->experts = experts;
	st->window = window_steps;
	st->flags = flags;
	st->cells = cells;
	st->ring = calloc(cells * (window_steps + 1ull), sizeof(*st->ring));
	st->sum = calloc(cells, sizeof(*st->sum));
	if (!st->ring || !st->sum)
		goto nomem;
	if ((flags & ACCEL_MOE_STATS_COACT) && layers > 1) {
		st->coact_cells = (size_t)(layers - 1) * experts * experts;
		if (st->coact_cells * sizeof(uint32_t) > (4ull << 30)) {
			accel_moe_stats_destroy(st);
			errno = EINVAL;
			return NULL;
		}
		st->coact[0] = calloc(st->coact_cells, sizeof(uint32_t));
		st->coact[1] = calloc(st->coact_cells, sizeof(uint32_t));
		if (!st->coact[0] || !st->coact[1])
			goto nomem;
	}
	return st;
nomem:
	accel_moe_stats_destroy(st);
	errno = ENOMEM;
	return NULL;
}

ACCEL_EXPORT void accel_moe_stats_destroy(struct accel_moe_stats *st)
{
	if (!st)
		return;
	free(st->coact[0]);
	free(st->coact[1]);
	free(st->sum);
	free(st->ring);
	free(st);
}

static inline uint32_t *cur_step(struct accel_moe_stats *st)
{
	return st->ring + (size_t)st->head * st->cells;
}

/* A counter that stops at UINT32_MAX instead of wrapping. */
static inline void bump(uint32_t *c)
{
	if (*c != UINT32_MAX)
		(*c)++;
}

ACCEL_EXPORT int accel_moe_stats_record(struct accel_moe_stats *st, uint32_t layer,
					const uint32_t *experts, size_t n)
{
	uint32_t *row;
	size_t i;

	if (!st || layer >= st->layers || (n && !experts))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (experts[i] >= st->experts)
			return -EINVAL;
	row = cur_step(st) + (size_t)layer * st->experts;
	for (i = 0; i < n; i++)
		bump(&row[experts[i]]);
	return 0;
}

ACCEL_EXPORT int accel_moe_stats_route(struct accel_moe_stats *st, const uint32_t *experts,
				       uint32_t tokens, uint32_t top_k)
{
	size_t per_token, i, n;
	uint32_t *step, *co, tk, l, a, b;

	if (!st || !top_k || top_k > st->experts || (tokens && !experts))
		return -EINVAL;
	per_token = (size_t)st->layers * top_k;
	n = per_token * tokens;
	for (i = 0; i < n; i++)
		if (experts[i] >= st->experts)
			return -EINVAL;
	step = cur_step(st);
	co = st->coact[0];
	for (tk = 0; tk < tokens; tk++) {
		const uint32_t *x = experts + tk * per_token;

		for (l = 0; l < st->layers; l++) {
			const uint32_t *here = x + (size_t)l * top_k;

			for (a = 0; a < top_k; a++)
				bump(&step[(size_t)l * st->experts + here[a]]);
			if (!co || l + 1 == st->layers)
				continue;
			for (a = 0; a < top_k; a++) {
				uint32_t *crow = co + ((size_t)l * st->experts + here[a]) * st->experts;

				for (b = 0; b < top_k; b++)
					bump(&crow[here[top_k + b]]);
			}
		}
	}
	return 0;
}

ACCEL_EXPORT int accel_moe_stats_step_end(struct accel_moe_stats *st)
{
	uint32_t *step, *oldest;
	size_t i;

	if (!st)
		return -EINVAL;
	step = cur_step(st);
	for (i = 0; i < st->cells; i++)
		st->sum[i] += step[i];
	st->head = (st->head + 1) % (st->window + 1);
	/* The next step's array: the oldest completed step once the window is full. */
	oldest = cur_step(st);
	if (st->steps == st->window)
		for (i = 0; i < st->cells; i++)
			st->sum[i] -= oldest[i];
	else
		st->steps++;
	memset(oldest, 0, st->cells * sizeof(*oldest));
	if (st->coact[0] && ++st->epoch_steps == st->window) {
		uint32_t *prev = st->coact[1];

		st->coact[1] = st->coact[0];
		memset(prev, 0, st->coact_cells * sizeof(*prev));
		st->coact[0] = prev;
		st->epoch_steps = 0;
	}
	return 0;
}

ACCEL_EXPORT int accel_moe_stats_load(const struct accel_moe_stats *st, uint64_t *counts,
				      float *weight, uint32_t *steps)
{
	size_t i;

	if (!st)
		return -EINVAL;
	for (i = 0; i < st->cells; i++) {
		if (counts)
			counts[i] = st->sum[i];
		if (weight)
			weight[i] = (float)st->sum[i];
	}
	if (steps)
		*steps = st->steps;
	return 0;
}

ACCEL_EXPORT int accel_moe_stats_coact(const struct accel_moe_stats *st, uint32_t *coact)
{
	size_t i;

	if (!st || !coact)
		return -EINVAL;
	if (!st->coact[0])
		return -ENOENT;
	for (i = 0; i < st->coact_cells; i++) {
		uint64_t v = (uint64_t)st->coact[0][i] + st->coact[1][i];

		coact[i] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	}
	return 0;
}
