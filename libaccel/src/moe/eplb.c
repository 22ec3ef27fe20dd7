// SPDX-License-Identifier: MIT
/*
 * libaccel - DeepSeek's expert-parallelism load balancer (EPLB,
 * rebalance_experts) exactly: the hierarchical policy (groups packed onto
 * nodes, experts replicated within each node, the replicas packed onto the
 * node's GPUs) and the global one (the same with one group and one node).
 * The tie rules that make it deterministic are in Documentation/moe.rst,
 * "EPLB"; tests/libaccel/eplb_oracle.py is an independent implementation
 * the tests compare with byte for byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "plan.h"

struct eplb_scratch {
	float *gw, *tw, *tp, *pw;
	uint32_t *gpack, *grank, *log2mlog, *mlog2log, *order;
	uint32_t *phy2mlog, *phyrank, *pk, *rk, *pphy2phy, *cnt, *items;
	float *ratio;
};

static void *scratch_alloc(struct eplb_scratch *s, uint32_t e, uint32_t r, uint32_t d)
{
	size_t n = (size_t)e * 8 + (size_t)r * 7 + 3 * (size_t)d + 8;
	uint32_t *m = calloc(n, sizeof(uint32_t));

	if (!m)
		return NULL;
	/* Every array 4-byte words: floats and ids share one allocation. */
	s->gw = (float *)m;
	m += e;
	s->tw = (float *)m;
	m += e;
	s->ratio = (float *)m;
	m += e;
	s->gpack = m;
	m += e;
	s->grank = m;
	m += e;
	s->log2mlog = m;
	m += e;
	s->mlog2log = m;
	m += e;
	s->cnt = m;
	m += e;
	s->tp = (float *)m;
	m += r;
	s->order = m;
	m += r;
	s->phy2mlog = m;
	m += r;
	s->phyrank = m;
	m += r;
	s->pk = m;
	m += r;
	s->rk = m;
	m += r;
	s->pphy2phy = m;
	m += r;
	s->pw = (float *)m;
	m += d;
	s->items = m;
	return s->gw;
}

/*
 * One layer: @w[experts] into @p2l[slots] and @rank[slots] (each slot's
 * replica rank) and @cnt[experts]. @groups and @nodes are 1 and 1 for the
 * global policy.
 */
static void eplb_layer(const struct plan_topo *t, uint32_t groups, uint32_t nodes,
		       const float *w, int32_t *p2l, uint32_t *rank, uint32_t *cnt,
		       struct eplb_scratch *s)
{
	uint32_t gs = t->experts / groups, gpn = groups / nodes;
	uint32_t epn = t->experts / nodes, ppn = t->slots / nodes;
	uint32_t gpus = t->devices / nodes, ppg = t->slots / t->devices;
	uint32_t g, k, e, n, p;

	/* Step 1: the groups' loads (float32, in expert order), packed onto nodes. */
	for (g = 0; g < groups; g++) {
		float sum = 0.0f;

		for (k = 0; k < gs; k++)
			sum += w[g * gs + k];
		s->gw[g] = sum;
	}
	plan_pack(s->gw, groups, nodes, s->gpack, s->grank, s->order, s->pw, s->items);
	for (g = 0; g < groups; g++)
		for (k = 0; k < gs; k++) {
			e = g * gs + k;
			s->log2mlog[e] = (s->gpack[g] * gpn + s->grank[g]) * gs + k;
			s->mlog2log[s->log2mlog[e]] = e;
		}

	for (n = 0; n < nodes; n++) {
		/* Step 2: replicate the node's experts over its slots. */
		for (k = 0; k < epn; k++)
			s->tw[k] = w[s->mlog2log[n * epn + k]];
		plan_replicate(s->tw, epn, ppn, s->phy2mlog, s->phyrank, s->cnt + n * epn,
			       s->ratio);
		/* Step 3: pack the replicas (load / count) onto the node's GPUs. */
		for (p = 0; p < ppn; p++) {
			uint32_t m = s->phy2mlog[p];

			s->tp[p] = s->tw[m] / (float)s->cnt[n * epn + m];
		}
		plan_pack(s->tp, ppn, gpus, s->pk, s->rk, s->order, s->pw, s->items);
		for (p = 0; p < ppn; p++)
			s->pphy2phy[s->pk[p] * ppg + s->rk[p]] = p;
		for (p = 0; p < ppn; p++) {
			uint32_t src = s->pphy2phy[p];

			p2l[n * ppn + p] = (int32_t)s->mlog2log[s->phy2mlog[src] + n * epn];
			rank[n * ppn + p] = s->phyrank[src];
		}
	}
	for (e = 0; e < t->experts; e++)
		cnt[e] = s->cnt[s->log2mlog[e]];
}

/*
 * vLLM's preserve_intragpu_slots on one layer: within each device, an
 * expert the device held before goes back to its old slot (the first
 * unused new position holding it, old slots in order), the rest fill the
 * free slots in order. Ranks travel with their experts.
 */
static void preserve_slots(const struct plan_topo *t, const int32_t *old, int32_t *p2l,
			   uint32_t *rank, uint8_t *used, uint8_t *kept, int32_t *tp2l,
			   uint32_t *trank)
{
	uint32_t d, i, j, base;

	for (d = 0; d < t->devices; d++) {
		base = d * t->spd;
		memset(used, 0, t->spd);
		memset(kept, 0, t->spd);
		for (i = 0; i < t->spd; i++) {
			tp2l[i] = p2l[base + i];
			trank[i] = rank[base + i];
		}
		for (i = 0; i < t->spd; i++)
			for (j = 0; j < t->spd; j++)
				if (!used[j] && tp2l[j] == old[base + i]) {
					p2l[base + i] = tp2l[j];
					rank[base + i] = trank[j];
					used[j] = kept[i] = 1;
					break;
				}
		for (i = 0, j = 0; i < t->spd; i++) {
			if (kept[i])
				continue;
			while (used[j])
				j++;
			p2l[base + i] = tp2l[j];
			rank[base + i] = trank[j];
			used[j] = 1;
		}
	}
}

ACCEL_EXPORT int accel_eplb_rebalance(const struct accel_moe_topo *topo, const float *weight,
				      const struct accel_eplb_opts *opts, int32_t *phy2log,
				      int32_t *log2phy, uint32_t width, int32_t *logcnt,
				      uint32_t *max_logcnt)
{
	const int32_t *old = ACCEL_OPTS_GET(opts, old_phy2log, NULL);
	uint32_t policy = ACCEL_OPTS_GET(opts, policy, ACCEL_EPLB_AUTO);
	uint32_t groups, nodes, l, s, e, maxcnt = 0;
	struct eplb_scratch sc = { 0 };
	struct plan_topo t;
	int32_t *p2l = NULL;
	uint32_t *rank = NULL, *cnt = NULL;
	void *mem = NULL;
	bool hier;
	int ret;

	ret = plan_topo(topo, &t);
	if (ret)
		return ret;
	if (accel_opts_valid(opts, sizeof(*opts)) || ACCEL_OPTS_GET(opts, flags, 0) ||
	    policy > ACCEL_EPLB_GLOBAL || !phy2log || (log2phy && !width))
		return -EINVAL;
	hier = t.groups % t.nodes == 0;
	if (policy == ACCEL_EPLB_GLOBAL)
		hier = false;
	if (policy == ACCEL_EPLB_HIERARCHICAL && !hier)
		return -EINVAL;
	/* The hierarchical policy's own constraint (the global one has one group). */
	if (hier && t.experts % t.groups)
		return -EINVAL;
	ret = plan_check_weight(&t, weight);
	if (!ret && old)
		ret = plan_check_phy2log(&t, old, false);
	if (ret)
		return ret;
	groups = hier ? t.groups : 1;
	nodes = hier ? t.nodes : 1;

	ret = -ENOMEM;
	p2l = malloc((size_t)t.layers * t.slots * sizeof(*p2l));
	rank = malloc((size_t)t.layers * t.slots * sizeof(*rank));
	cnt = malloc((size_t)t.layers * t.experts * sizeof(*cnt));
	mem = scratch_alloc(&sc, t.experts, t.slots, t.devices);
	if (!p2l || !rank || !cnt || !mem)
		goto out;
	for (l = 0; l < t.layers; l++)
		eplb_layer(&t, groups, nodes, weight + (size_t)l * t.experts,
			   p2l + (size_t)l * t.slots, rank + (size_t)l * t.slots,
			   cnt + (size_t)l * t.experts, &sc);
	for (s = 0; s < (size_t)t.layers * t.experts; s++)
		if (cnt[s] > maxcnt)
			maxcnt = cnt[s];
	if (max_logcnt)
		*max_logcnt = maxcnt;
	ret = -ENOSPC;
	if (log2phy && width < maxcnt)
		goto out;
	if (old)
		for (l = 0; l < t.layers; l++)
			/* Scratch: used/kept over gpack/grank, the device's copy over tp/order. */
			preserve_slots(&t, old + (size_t)l * t.slots, p2l + (size_t)l * t.slots,
				       rank + (size_t)l * t.slots, (uint8_t *)sc.phy2mlog,
				       (uint8_t *)sc.phyrank, (int32_t *)sc.pk, sc.rk);
	memcpy(phy2log, p2l, (size_t)t.layers * t.slots * sizeof(*p2l));
	for (l = 0; l < t.layers; l++) {
		int32_t *row = log2phy ? log2phy + (size_t)l * t.experts * width : NULL;

		if (logcnt)
			for (e = 0; e < t.experts; e++)
				logcnt[(size_t)l * t.experts + e] =
					(int32_t)cnt[(size_t)l * t.experts + e];
		if (!row)
			continue;
		for (s = 0; s < (size_t)t.experts * width; s++)
			row[s] = -1;
		for (s = 0; s < t.slots; s++) {
			size_t i = (size_t)l * t.slots + s;

			row[(size_t)p2l[i] * width + rank[i]] = (int32_t)s;
		}
	}
	ret = 0;
out:
	free(mem);
	free(cnt);
	free(rank);
	free(p2l);
	return ret;
}
