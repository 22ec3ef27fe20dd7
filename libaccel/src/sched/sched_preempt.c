// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler's preemption: the victim order (the policy's
 * class order, then the last admitted or the least computed), the cost
 * model (swap out to tier 1 or drop for recompute), taking a victim out of
 * the step's runs, and preempting for a request short of blocks or slots.
 */
#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

int sched_victim_cmp(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	return sched_victim_order(s, a, b, s->ops->victim_cmp);
}

/* The running request to preempt first (not in flight), SREQ_NONE. */
uint32_t sched_pick_victim(struct accel_sched *s, bool in_step)
{
	return s->ops->pick_victim(s, in_step);
}

/* Whether to swap @r rather than recompute it (the cost model). */
static bool swap_cheaper(const struct accel_sched *s, const struct sreq *r)
{
	uint64_t blocks = blocks_of(s, r->computed), out, swap_ns, rec_ns;

	if (s->nr_tiers < 2 || s->cfg.preempt == ACCEL_SCHED_PREEMPT_RECOMPUTE || !blocks)
		return false;
	if (s->cfg.preempt == ACCEL_SCHED_PREEMPT_SWAP)
		return true;
	/* Out: what is not on the host already; in: everything (at worst). */
	out = blocks - (r->host_valid < blocks ? r->host_valid : blocks);
	swap_ns = 2 * s->cfg.swap_transfer_ns +
		  (uint64_t)((double)(out + blocks) * (double)s->cfg.block_bytes * 1e9 /
			     (double)s->swap_bw);
	rec_ns = predict_prefill(s, r->computed);
	return swap_ns < rec_ns;
}

void sched_pend_swap(struct accel_sched *s, struct sreq *r)
{
	s->pend_swaps[s->nr_pend_swaps++] = rid(s, r);
}

/* Take @r out of this step's runs (a victim scheduled earlier in the step). */
static void unschedule(struct accel_sched *s, struct sreq *r, struct accel_sched_out *out,
		       uint32_t *budget)
{
	struct accel_sched_run *runs = out->runs;
	uint32_t i = r->run_idx, last = out->nr_runs - 1;
	uint64_t keep = r->computed + r->yield_tokens;

	if (r->bm_tok > keep) {
		accel_bm_truncate(s->bm, r->seq, r->bm_tok - keep);
		r->bm_tok = keep;
	}
	*budget += r->sched_tokens;
	out->tokens -= r->sched_tokens;
	if (runs[i].flags & ACCEL_SCHED_RUN_PREFILL)
		s->nr_prefill_runs--;
	if (i != last) {
		runs[i] = runs[last];
		R(s, runs[i].req)->run_idx = i;
	}
	out->nr_runs--;
	r->run_idx = SREQ_NONE;
	r->sched_tokens = 0;
	r->inflight = false;
	s->nr_inflight--;
}

void sched_to_recompute(struct accel_sched *s, struct sreq *r)
{
	if (r->computed)
		r->recomputes++, s->st.recomputes++;
	sched_seq_drop(s, r);
	sched_set_state(s, r, ACCEL_SCHED_RECOMPUTE);
	sched_q_push(s, &s->waitq, r);
}

/*
 * Preempt running @r: swap it out (a plan the engine executes) or drop it
 * for recompute, by the cost model.
 */
void sched_preempt(struct accel_sched *s, struct sreq *r, struct accel_sched_out *out,
		   uint32_t *budget)
{
	if (r->run_idx != SREQ_NONE && out)
		unschedule(s, r, out, budget);
	sched_running_del(s, r);
	r->preempt_ns = s->now ? s->now : 1;
	r->preempt_step = s->st.steps + 1;
	if (r->yield_tokens) {
		/* The layers a yielded chunk finished are lost with it. */
		accel_bm_truncate(s->bm, r->seq, r->yield_tokens);
		r->bm_tok -= r->yield_tokens;
		r->yield_tokens = 0;
		r->yield_layer = 0;
	}
	if (r->bm_tok > r->computed) {
		accel_bm_truncate(s->bm, r->seq, r->bm_tok - r->computed);
		r->bm_tok = r->computed;
	}
	if (swap_cheaper(s, r) && s->nr_pend_swaps < s->max_req) {
		struct accel_bm_plan plan = { .sz = sizeof(plan) };
		uint32_t blocks0 = blocks_of(s, r->bm_tok);

		if (!accel_bm_seq_move(s->bm, r->seq, 1, &plan)) {
			r->swaps_out++;
			s->st.swaps_out++;
			if (!plan.id) {
				sched_set_state(s, r, ACCEL_SCHED_SWAPPED);
				sched_q_push(s, &s->swapq, r);
				return;
			}
			r->plan_id = plan.id;
			r->plan_blocks = plan.blocks;
			r->plan_reused = plan.reused;
			r->plan_tier0 = blocks0;
			r->swap_start = s->now;
			s->pending_free0 += blocks0;
			sched_set_state(s, r, ACCEL_SCHED_SWAPPING_OUT);
			sched_pend_swap(s, r);
			return;
		}
	}
	sched_to_recompute(s, r);
}

/*
 * Preempt one request for @r. @running: r is running and short of blocks
 * (the worst running request goes, r itself if it is the worst); else r
 * waits and only a request it outranks goes. Returns 0 none, 1 another,
 * 2 r itself.
 */
int sched_preempt_for(struct accel_sched *s, struct sreq *r, bool running,
		      struct accel_sched_out *out, uint32_t *budget)
{
	uint32_t v;

	/* A policy without outranks() never preempts for a waiting request. */
	if (!running && !s->ops->outranks)
		return 0;
	v = sched_pick_victim(s, true);
	if (v == SREQ_NONE)
		return 0;
	/* A waiting request outranks only victims its queue would put after it. */
	if (!running && (!s->ops->outranks(s, r, R(s, v)) || s->ops->before(s, R(s, v), r)))
		return 0;
	sched_preempt(s, R(s, v), out, budget);
	return R(s, v) == r ? 2 : 1;
}
