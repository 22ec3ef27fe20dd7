// SPDX-License-Identifier: MIT
/* kvaccel-sim - pressure rounds and their holds (see pressure.h). */
#include <errno.h>
#include <stdlib.h>

#include "pressure.h"

/* A hold's tokens: never a prompt's (those are bytes), never committed, so never shared. */
#define HOLD_TOKEN	(-1)

static uint32_t tier_free(struct sim_inst *in, uint32_t tier)
{
	ACCEL_OPTS(accel_bm_tier_stats, ts);

	if (accel_bm_tier_stats(in->bm, tier, &ts))
		return 0;
	return ts.free;
}

/* Up to @n free blocks of its tier into hold @k's sequence, one block at a time. */
static uint64_t hold_take(struct sim_inst *in, struct sim_hold *k, uint64_t n)
{
	uint32_t bt = (uint32_t)in->p->block_tokens, i, got = 0, avail = tier_free(in, k->tier);
	int32_t tok[1024];

	if (bt > 1024)
		return 0;
	for (i = 0; i < bt; i++)
		tok[i] = HOLD_TOKEN;
	if (n > avail) {
		/* What the round released may sit as cached blocks or copies a move left. */
		int ret = accel_bm_evict(in->bm, k->tier, (uint32_t)(n - avail));

		avail += ret > 0 ? (uint32_t)ret : 0;
		if (n > avail)
			n = avail;
	}
	for (; got < n; got++) {
		ACCEL_OPTS(accel_bm_plan, plan);
		int ret = k->held || got ? accel_bm_append(in->bm, k->seq, tok, bt, NULL, &plan) :
			  accel_bm_seq_start(in->bm, k->seq, tok, bt, NULL, NULL);

		if (ret < 0)
			break;
	}
	k->held += got;
	return got;
}

static int round_now(struct sim_inst *in, const struct sim_pressure *p, struct sim_heap *h,
		     uint64_t now, struct sim_totals *t)
{
	ACCEL_OPTS(accel_sched_release_out, ro);
	struct sim_hold *k;
	uint64_t want;

	in->touched = 1;		/* the swaps it started come with the next step */
	if (accel_sched_release(in->s, p->tier, p->blocks, now, &ro))
		return 0;
	t->pressure_rounds++;
	t->pressure_freed += ro.freed;
	t->pressure_pending += ro.pending;
	t->pressure_dropped_cached += ro.dropped_cached;
	t->pressure_swapped_out += ro.swapped_out;
	t->pressure_recomputed += ro.recomputed;
	want = ro.freed + ro.pending;
	if (!(p->hold_s > 0) || !want)
		return 0;
	if (in->nr_holds == in->holds_cap) {
		size_t cap = in->holds_cap ? in->holds_cap * 2 : 8;
		struct sim_hold *v = realloc(in->holds, cap * sizeof(*v));

		if (!v)
			return -1;
		in->holds = v;
		in->holds_cap = cap;
	}
	k = &in->holds[in->nr_holds];
	*k = (struct sim_hold){ .tier = p->tier, .active = 1 };
	ACCEL_OPTS(accel_bm_seq_opts, so, .tier = p->tier);
	if (accel_bm_seq_create(in->bm, &so, &k->seq))
		return -1;
	t->pressure_held += hold_take(in, k, ro.freed);
	k->owed = want - k->held;
	return sim_heap_push(h, now + (uint64_t)(p->hold_s * 1e9),
			     SIM_EV(SIM_EV_HOLD_END, in->id), (uint32_t)in->nr_holds++);
}

int sim_pressure_ask(struct sim_inst *in, const struct sim_config *c, uint32_t idx,
		     struct sim_heap *h, uint64_t now, struct sim_totals *t)
{
	if (!in->busy)
		return round_now(in, &c->pressure[idx], h, now, t);
	if (in->pq_n == in->pq_cap) {
		size_t cap = in->pq_cap ? in->pq_cap * 2 : 8;
		uint32_t *v = realloc(in->pq, cap * sizeof(*v));

		if (!v)
			return -1;
		in->pq = v;
		in->pq_cap = cap;
	}
	in->pq[in->pq_n++] = idx;
	return 0;
}

int sim_pressure_drain(struct sim_inst *in, const struct sim_config *c, struct sim_heap *h,
		       uint64_t now, struct sim_totals *t)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < in->pq_n; i++)
		if (round_now(in, &c->pressure[in->pq[i]], h, now, t))
			ret = -1;
	in->pq_n = 0;
	return ret;
}

void sim_pressure_top_up(struct sim_inst *in, struct sim_totals *t)
{
	size_t i;

	for (i = 0; i < in->nr_holds; i++) {
		struct sim_hold *k = &in->holds[i];
		uint64_t got;

		if (!k->active || !k->owed)
			continue;
		got = hold_take(in, k, k->owed);
		k->owed -= got;
		t->pressure_held += got;
	}
}

void sim_pressure_hold_end(struct sim_inst *in, uint32_t i)
{
	struct sim_hold *k;

	if (i >= in->nr_holds || !in->holds[i].active)
		return;
	k = &in->holds[i];
	accel_bm_seq_free(in->bm, k->seq);
	k->active = 0;
	k->owed = 0;
	in->touched = 1;
}
