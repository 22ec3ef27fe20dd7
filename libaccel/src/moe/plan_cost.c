// SPDX-License-Identifier: MIT
/*
 * libaccel - what a placement costs (accel_moe_cost()): device loads per
 * layer, moves from an old placement, and the traffic between consecutive
 * layers estimated from co-activation counts; log2phy from phy2log
 * (accel_moe_log2phy()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "plan.h"

void plan_index(const struct plan_topo *t, const int32_t *p2l, int32_t *l2p, uint32_t width,
		int32_t *cnt)
{
	uint32_t s, e;
	int32_t *c = cnt;

	if (!c)
		return;
	for (e = 0; e < t->experts; e++)
		c[e] = 0;
	if (l2p)
		for (s = 0; s < t->experts * width; s++)
			l2p[s] = -1;
	for (s = 0; s < t->slots; s++) {
		e = (uint32_t)p2l[s];
		if (l2p)
			l2p[(size_t)e * width + c[e]] = (int32_t)s;
		c[e]++;
	}
}

uint32_t plan_max_count(const struct plan_topo *t, const int32_t *phy2log, uint32_t *scratch)
{
	uint32_t l, s, e, max = 0;

	for (l = 0; l < t->layers; l++) {
		for (e = 0; e < t->experts; e++)
			scratch[e] = 0;
		for (s = 0; s < t->slots; s++) {
			e = (uint32_t)phy2log[(size_t)l * t->slots + s];
			if (++scratch[e] > max)
				max = scratch[e];
		}
	}
	return max;
}

ACCEL_EXPORT int accel_moe_log2phy(const struct accel_moe_topo *topo, const int32_t *phy2log,
				   int32_t *log2phy, uint32_t width, int32_t *logcnt)
{
	struct plan_topo t;
	uint32_t *scratch, l;
	int32_t *cnt;
	int ret;

	ret = plan_topo(topo, &t);
	if (!ret && (log2phy ? !width : !logcnt))
		ret = -EINVAL;
	if (!ret)
		ret = plan_check_phy2log(&t, phy2log, true);
	if (ret)
		return ret;
	scratch = malloc(t.experts * sizeof(*scratch));
	if (!scratch)
		return -ENOMEM;
	if (log2phy && plan_max_count(&t, phy2log, scratch) > width) {
		free(scratch);
		return -ENOSPC;
	}
	cnt = (int32_t *)scratch;
	for (l = 0; l < t.layers; l++)
		plan_index(&t, phy2log + (size_t)l * t.slots,
			   log2phy ? log2phy + (size_t)l * t.experts * width : NULL, width,
			   logcnt ? logcnt + (size_t)l * t.experts : cnt);
	free(scratch);
	return 0;
}

/* Bitmaps of the devices and nodes that hold each expert of one layer. */
struct where {
	uint32_t dwords, nwords;
	uint64_t *dev;		/* [experts][dwords] */
	uint64_t *node;		/* [experts][nwords] */
};

static void where_fill(const struct plan_topo *t, const int32_t *p2l, struct where *w)
{
	uint32_t s;

	memset(w->dev, 0, (size_t)t->experts * w->dwords * sizeof(uint64_t));
	memset(w->node, 0, (size_t)t->experts * w->nwords * sizeof(uint64_t));
	for (s = 0; s < t->slots; s++) {
		uint32_t e = (uint32_t)p2l[s], d = plan_dev(t, s), n = plan_node(t, s);

		w->dev[(size_t)e * w->dwords + d / 64] |= 1ull << (d % 64);
		w->node[(size_t)e * w->nwords + n / 64] |= 1ull << (n % 64);
	}
}

static inline bool has(const uint64_t *map, uint32_t words, uint32_t e, uint32_t bit)
{
	return map[(size_t)e * words + bit / 64] >> (bit % 64) & 1;
}

/*
 * The traffic from layer @a (placement @pa, counts @ca) to layer @b
 * (bitmaps @wb): a token of (i, j) sits on each replica of i with
 * probability 1 / ca[i] and crosses a device (a node) where j has no
 * replica on that device (node).
 */
static void pair_traffic(const struct plan_topo *t, const int32_t *pa, const int32_t *ca,
			 const struct where *wb, const uint32_t *co, double *total, double *xdev,
			 double *xnode)
{
	uint32_t s, j;

	for (s = 0; s < t->slots; s++) {
		uint32_t i = (uint32_t)pa[s], d = plan_dev(t, s), n = plan_node(t, s);
		const uint32_t *row = co + (size_t)i * t->experts;
		double share = 1.0 / ca[i], sum = 0, sd = 0, sn = 0;

		for (j = 0; j < t->experts; j++) {
			if (!row[j])
				continue;
			sum += row[j];
			if (!has(wb->dev, wb->dwords, j, d))
				sd += row[j];
			if (!has(wb->node, wb->nwords, j, n))
				sn += row[j];
		}
		*total += sum * share;
		*xdev += sd * share;
		*xnode += sn * share;
	}
}

ACCEL_EXPORT int accel_moe_cost(const struct accel_moe_topo *topo, const float *weight,
				const uint32_t *coact, const int32_t *old_phy2log,
				const int32_t *phy2log, struct accel_moe_cost *cost,
				float *layer_max)
{
	double sum_ratio = 0, worst = 0, max_sum = 0, mean_sum = 0, tr = 0, xd = 0, xn = 0;
	struct where wb = { 0 };
	struct plan_topo t;
	uint64_t moves = 0;
	int32_t *cnt = NULL;
	double *load = NULL;
	uint32_t l, s, d;
	int ret;

	ret = plan_topo(topo, &t);
	if (!ret && (!cost || accel_opts_valid(cost, sizeof(*cost))))
		ret = -EINVAL;
	if (!ret)
		ret = plan_check_weight(&t, weight);
	if (!ret)
		ret = plan_check_phy2log(&t, phy2log, true);
	if (!ret && old_phy2log)
		ret = plan_check_phy2log(&t, old_phy2log, false);
	if (ret)
		return ret;
	ret = -ENOMEM;
	cnt = malloc((size_t)t.layers * t.experts * sizeof(*cnt));
	load = malloc(t.devices * sizeof(*load));
	wb.dwords = (t.devices + 63) / 64;
	wb.nwords = (t.nodes + 63) / 64;
	wb.dev = malloc((size_t)t.experts * wb.dwords * sizeof(uint64_t));
	wb.node = malloc((size_t)t.experts * wb.nwords * sizeof(uint64_t));
	if (!cnt || !load || !wb.dev || !wb.node)
		goto out;
	for (l = 0; l < t.layers; l++) {
		const int32_t *p = phy2log + (size_t)l * t.slots;
		const float *w = weight + (size_t)l * t.experts;
		int32_t *c = cnt + (size_t)l * t.experts;
		double max = 0, mean = 0, ratio;

		plan_index(&t, p, NULL, 0, c);
		for (d = 0; d < t.devices; d++)
			load[d] = 0;
		for (s = 0; s < t.slots; s++)
			load[plan_dev(&t, s)] += (double)w[p[s]] / c[p[s]];
		for (d = 0; d < t.devices; d++) {
			mean += load[d];
			if (load[d] > max)
				max = load[d];
		}
		mean /= t.devices;
		ratio = mean > 0 ? max / mean : 1.0;
		if (layer_max)
			layer_max[l] = (float)ratio;
		sum_ratio += ratio;
		if (ratio > worst)
			worst = ratio;
		max_sum += max;
		mean_sum += mean;
		for (s = 0; old_phy2log && s < t.slots; s++)
			moves += p[s] != old_phy2log[(size_t)l * t.slots + s];
	}
	for (l = 0; coact && l + 1 < t.layers; l++) {
		where_fill(&t, phy2log + (size_t)(l + 1) * t.slots, &wb);
		pair_traffic(&t, phy2log + (size_t)l * t.slots, cnt + (size_t)l * t.experts, &wb,
			     coact + (size_t)l * t.experts * t.experts, &tr, &xd, &xn);
	}
	ACCEL_OPTS_SET(cost, imbalance, sum_ratio / t.layers);
	ACCEL_OPTS_SET(cost, max_imbalance, worst);
	ACCEL_OPTS_SET(cost, max_load, max_sum);
	ACCEL_OPTS_SET(cost, mean_load, mean_sum);
	ACCEL_OPTS_SET(cost, moves, moves);
	ACCEL_OPTS_SET(cost, traffic, tr);
	ACCEL_OPTS_SET(cost, cross_device, xd);
	ACCEL_OPTS_SET(cost, cross_node, xn);
	ret = 0;
out:
	free(wb.node);
	free(wb.dev);
	free(load);
	free(cnt);
	return ret;
}
