// SPDX-License-Identifier: MIT
/*
 * libaccel - the MoE planner's shared pieces: topology checks, and EPLB's
 * balanced packing and replication of one row (exact: the tie rules of
 * Documentation/moe.rst, "EPLB").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "../internal.h"
#include "plan.h"

int plan_topo(const struct accel_moe_topo *topo, struct plan_topo *t)
{
	if (!topo || accel_opts_valid(topo, sizeof(*topo)) ||
	    !ACCEL_OPTS_HAS(topo, groups))
		return -EINVAL;
	t->layers = topo->layers;
	t->experts = topo->experts;
	t->slots = topo->slots;
	t->devices = topo->devices;
	t->nodes = topo->nodes;
	t->groups = topo->groups ? topo->groups : 1;
	if (!t->layers || t->layers > ACCEL_MOE_MAX_LAYERS || !t->experts ||
	    t->experts > ACCEL_MOE_MAX_EXPERTS || !t->devices || !t->nodes ||
	    t->slots < t->experts || t->slots > 4 * ACCEL_MOE_MAX_EXPERTS ||
	    t->devices > ACCEL_MOE_MAX_DEVICES ||
	    t->devices % t->nodes || t->slots % t->devices)
		return -EINVAL;
	t->spd = t->slots / t->devices;
	t->dpn = t->devices / t->nodes;
	return 0;
}

int plan_check_weight(const struct plan_topo *t, const float *weight)
{
	size_t i, n = (size_t)t->layers * t->experts;

	if (!weight)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!isfinite(weight[i]) || weight[i] < 0)
			return -EINVAL;
	return 0;
}

int plan_check_phy2log(const struct plan_topo *t, const int32_t *phy2log, bool need_all)
{
	uint8_t *seen;
	uint32_t l, s, e;
	int ret = 0;

	if (!phy2log)
		return -EINVAL;
	seen = malloc(t->experts);
	if (!seen)
		return -ENOMEM;
	for (l = 0; l < t->layers && !ret; l++) {
		const int32_t *row = phy2log + (size_t)l * t->slots;

		for (e = 0; e < t->experts; e++)
			seen[e] = 0;
		for (s = 0; s < t->slots; s++) {
			if (row[s] < 0 || (uint32_t)row[s] >= t->experts) {
				ret = -EINVAL;
				break;
			}
			seen[row[s]] = 1;
		}
		for (e = 0; need_all && !ret && e < t->experts; e++)
			if (!seen[e])
				ret = -EINVAL;
	}
	free(seen);
	return ret;
}

static int desc_cmp(const void *a, const void *b, void *arg)
{
	const float *key = arg;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;

	if (key[i] > key[j])
		return -1;
	if (key[i] < key[j])
		return 1;
	return i < j ? -1 : i > j;
}

void plan_sort_desc(const float *key, uint32_t *idx, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), desc_cmp, (void *)key);
}

void plan_pack(const float *w, uint32_t n, uint32_t packs, uint32_t *pack, uint32_t *rank,
	       uint32_t *order, float *pw, uint32_t *items)
{
	uint32_t per = n / packs, i, p;

	if (per == 1) {
		for (i = 0; i < n; i++) {
			pack[i] = i;
			rank[i] = 0;
		}
		return;
	}
	plan_sort_desc(w, order, n);
	for (p = 0; p < packs; p++) {
		pw[p] = 0.0f;
		items[p] = 0;
	}
	for (i = 0; i < n; i++) {
		uint32_t it = order[i], best = UINT32_MAX;

		for (p = 0; p < packs; p++)
			if (items[p] < per && (best == UINT32_MAX || pw[p] < pw[best]))
				best = p;
		pack[it] = best;
		rank[it] = items[best]++;
		pw[best] += w[it];
	}
}

void plan_replicate(const float *w, uint32_t nlog, uint32_t nphy, uint32_t *phy2log,
		    uint32_t *rank, uint32_t *cnt, float *ratio)
{
	uint32_t i, e;

	for (e = 0; e < nlog; e++) {
		phy2log[e] = e;
		rank[e] = 0;
		cnt[e] = 1;
		ratio[e] = w[e];
	}
	for (i = nlog; i < nphy; i++) {
		uint32_t best = 0;

		for (e = 1; e < nlog; e++)
			if (ratio[e] > ratio[best])
				best = e;
		phy2log[i] = best;
		rank[i] = cnt[best]++;
		ratio[best] = w[best] / (float)cnt[best];
	}
}
