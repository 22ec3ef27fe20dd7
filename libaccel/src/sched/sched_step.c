// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler's step (accel_sched.h; Documentation/scheduler.rst).
 *
 * A step: (1) the running decodes in admission order (paced under slo),
 * (2) prefills in the policy's order, running chunks, swap-ins and
 * waiting requests merged, until the token budget, the cap on running
 * requests or the blocks run out. A running request short of blocks
 * preempts the policy's worst running request (itself, if that is it);
 * a waiting one preempts only where the policy's outranks() says so.
 * After a growth preemption nothing new is admitted in that step (vLLM).
 *
 * Lazy appends: a run whose tokens fit in the blocks the sequence already
 * has is not appended to the block manager until its update (its KV goes
 * into slots of its own last block, which nobody else reads); only runs
 * that need a new block append at the step.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

/* The keys of the full blocks of r's known tokens. */
static int keys_ensure(struct accel_sched *s, struct sreq *r)
{
	uint64_t need = full_blocks(s, r->nr_tok);
	int ret;

	if (need > INT32_MAX)
		return -E2BIG;
	if (need <= r->nr_keys)
		return 0;
	if (need > r->cap_keys) {
		uint32_t cap = (uint32_t)need + 8;
		struct accel_bm_key *k = realloc(r->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		r->keys = k;
		r->cap_keys = cap;
	}
	ret = accel_bm_keys(s->bm, r->nr_keys ? &r->keys[r->nr_keys - 1] : NULL,
			    r->tok + (uint64_t)r->nr_keys * s->bt, (need - r->nr_keys) * s->bt,
			    r->extra, r->extra_len, r->keys + r->nr_keys);
	if (ret < 0)
		return ret;
	r->nr_keys = (uint32_t)need;
	return 0;
}

/* ---- allocation ---- */

/* grow() where r needs a block: the append. */
static int grow_append(struct accel_sched *s, struct sreq *r, uint64_t end)
{
	struct accel_bm_plan plan = { .sz = sizeof(plan) };
	int ret;

	ret = accel_bm_append(s->bm, r->seq, r->tok + r->bm_tok, end - r->bm_tok, NULL, &plan);
	if (ret)
		return ret;
	if (plan.id) {
		/* A shared tail: never ours (the scheduler shares only full blocks). */
		accel_bm_plan_done(s->bm, plan.id, -ECANCELED);
		return -EIO;
	}
	r->bm_tok = end;
	return 0;
}

/*
 * Blocks for r's tokens [computed, computed + k): append now only if a
 * block is needed (inline: most decodes of a step need none).
 */
static inline int grow(struct accel_sched *s, struct sreq *r, uint32_t k)
{
	uint64_t end = r->computed + k;

	if (end <= (uint64_t)blocks_of(s, r->bm_tok) * s->bt)
		return 0;
	return grow_append(s, r, end);
}

/* What a sequence reserves ahead of its tokens at most (a hint: beyond, its tables grow). */
#define RESERVE_AHEAD	2048

/*
 * The tokens r's sequence will hold, as far as they are known (its output
 * limit), so that its growth allocates no memory in the steps.
 */
static uint64_t reserve_of(const struct accel_sched *s, const struct sreq *r)
{
	uint64_t want = r->max_output ? r->prompt_len + r->max_output : r->nr_tok + 1;
	uint64_t most = (uint64_t)s->bm->tier[0].pool.nr_blocks * s->bt;

	if (want > r->nr_tok + RESERVE_AHEAD)
		want = r->nr_tok + RESERVE_AHEAD;
	return want < most ? want : most;
}

/* Start r's sequence with its first chunk of up to @k tokens (prefix cache hits free). */
static int admit(struct accel_sched *s, struct sreq *r, uint32_t k, uint32_t *scheduled)
{
	struct accel_bm_seq_opts so = { .sz = sizeof(so), .tier = 0, .extra_keys = r->extra,
					.extra_keys_len = r->extra_len,
					.reserve_tokens = reserve_of(s, r) };
	struct accel_bm_plan plan = { .sz = sizeof(plan) };
	uint32_t hits[ACCEL_BM_TIERS_MAX] = { 0 };
	uint64_t h, n, cached = 0, cap;
	int ret;

	if (r->seq == SREQ_NONE) {
		ret = accel_bm_seq_create(s->bm, &so, &r->seq);
		if (ret == -ENOMEM) {
			/* The room is only a hint. */
			so.reserve_tokens = 0;
			ret = accel_bm_seq_create(s->bm, &so, &r->seq);
		}
		if (ret) {
			r->seq = SREQ_NONE;
			return ret;
		}
	}
	ret = keys_ensure(s, r);
	if (ret)
		return ret;
	if (r->nr_keys) {
		ret = accel_bm_lookup(s->bm, r->keys, r->nr_keys, hits);
		if (ret < 0)
			return ret;
	}
	/* The last token is always computed (its logits are needed). */
	cap = (r->nr_tok - 1) / s->bt;
	h = hits[0] < cap ? hits[0] : cap;
	n = h * s->bt + k;
	if (n > r->nr_tok)
		n = r->nr_tok;
	if (n % s->bt == 0) {
		/* Start one short so that the chunk's last full block is computed here. */
		ret = accel_bm_seq_start(s->bm, r->seq, r->tok, n - 1, r->keys, &cached);
		if (!ret) {
			ret = accel_bm_append(s->bm, r->seq, r->tok + n - 1, 1, NULL, &plan);
			if (!ret && plan.id) {
				accel_bm_plan_done(s->bm, plan.id, -ECANCELED);
				ret = -EIO;
			}
			if (ret) {
				accel_bm_seq_free(s->bm, r->seq);
				r->seq = SREQ_NONE;
			}
		}
	} else {
		ret = accel_bm_seq_start(s->bm, r->seq, r->tok, n, r->keys, &cached);
	}
	if (ret)
		return ret;
	r->bm_tok = n;
	r->computed = cached;
	r->committed = (uint32_t)(cached / s->bt);
	if (n - cached > k) {
		/* More than the budget (the cache held less than lookup said). */
		accel_bm_truncate(s->bm, r->seq, n - cached - k);
		r->bm_tok = cached + k;
	}
	*scheduled = (uint32_t)(r->bm_tok - cached);
	return 0;
}

static void add_run(struct accel_sched *s, struct sreq *r, uint32_t k, uint32_t layer,
		    struct accel_sched_out *out, uint32_t *budget)
{
	struct accel_sched_run *run = &out->runs[out->nr_runs];

	memset(run, 0, sizeof(*run));
	run->req = rid(s, r);
	run->seq = r->seq;
	run->tag = r->tag;
	run->start = r->computed;
	run->tokens = k;
	run->start_layer = layer;
	if (r->state == ACCEL_SCHED_PREFILLING) {
		run->flags |= ACCEL_SCHED_RUN_PREFILL;
		s->nr_prefill_runs++;
	}
	if (layer)
		run->flags |= ACCEL_SCHED_RUN_RESUME;
	if (r->computed + k == r->nr_tok)
		run->flags |= ACCEL_SCHED_RUN_SAMPLE;
	r->run_idx = out->nr_runs++;
	r->sched_tokens = k;
	r->inflight = true;
	s->nr_inflight++;
	*budget -= k;
	out->tokens += k;
	if (!r->first_sched_ns)
		r->first_sched_ns = s->now ? s->now : 1;
}

/* ---- the step ---- */

/* The decode pass reads requests far apart: fetch this many ahead. */
#define PREFETCH_AHEAD	8

static void prefetch_req(const struct sreq *r)
{
	__builtin_prefetch(r, 1);
	__builtin_prefetch((const char *)r + 64, 1);
}

static int cmp_before_ctx(const void *a, const void *b, void *ctx)
{
	struct accel_sched *s = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (q_before(s, x, y))
		return -1;
	return q_before(s, y, x) ? 1 : 0;
}

/* slo: a decode that can wait a step and still meet its next token's time. */
static bool pace_skip(const struct accel_sched *s, const struct sreq *r, bool demand)
{
	uint64_t due;

	if (s->cfg.policy != ACCEL_SCHED_SLO || !r->tpot_slo || !demand || !r->first_token_ns)
		return false;
	due = r->first_token_ns + r->output * r->tpot_slo;
	return s->now + 2 * s->step_ns < due;
}

/* hybrid: the tokens a step may hold before the tightest online TPOT is missed. */
static uint64_t hybrid_cap(struct accel_sched *s)
{
	uint64_t tpot = sched_tpot_min(s);

	if (tpot == UINT64_MAX)
		return UINT64_MAX;
	if (tpot <= s->cfg.prefill_base_ns)
		return 0;
	return (tpot - s->cfg.prefill_base_ns) / s->cfg.prefill_token_ns;
}

static void deliver(struct accel_sched *s, struct accel_sched_out *out)
{
	struct accel_bm_run dummy;
	uint32_t i, n = 0;
	int ret;

	for (i = 0; i < s->nr_pend_swaps && n < out->max_swaps; i++) {
		struct sreq *r = R(s, s->pend_swaps[i]);
		struct accel_sched_swap *w = &out->swaps[n++];

		memset(w, 0, sizeof(*w));
		w->req = s->pend_swaps[i];
		w->dir = r->state == ACCEL_SCHED_SWAPPING_IN ? ACCEL_SCHED_SWAP_IN :
			 ACCEL_SCHED_SWAP_OUT;
		w->tag = r->tag;
		w->plan_id = r->plan_id;
		ret = accel_bm_plan_runs(s->bm, r->plan_id, 0, &dummy, 0);
		w->nr_runs = ret > 0 ? (uint32_t)ret : 0;
		w->blocks = r->plan_blocks;
		w->reused = r->plan_reused;
	}
	memmove(s->pend_swaps, s->pend_swaps + n, (s->nr_pend_swaps - n) * sizeof(uint32_t));
	s->nr_pend_swaps -= n;
	out->nr_swaps = n;
	for (n = 0; n < out->max_events && s->ev_n; n++) {
		out->events[n] = s->ev[s->ev_head];
		s->ev_head = (s->ev_head + 1) % s->ev_cap;
		s->ev_n--;
	}
	out->nr_events = n;
	out->events_left = s->ev_n;
}

ACCEL_EXPORT int accel_sched_step(struct accel_sched *s, uint64_t now_ns,
				  struct accel_sched_out *out)
{
	uint32_t budget, cap_runs, nsnap, npre = 0, pi = 0, i;
	bool grown_preempt = false, blocked = false, no_new = false, decoding = true, demand;
	uint64_t off_cap, drain;
	int ret;

	if (!s || !out || out->sz < sizeof(out->sz))
		return -EINVAL;
	ret = accel_opts_valid(out, sizeof(*out));
	if (ret)
		return ret;
	if (!ACCEL_OPTS_HAS(out, tokens) || (out->max_runs && !out->runs) ||
	    (out->max_swaps && !out->swaps) || (out->max_events && !out->events))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->nr_inflight) {
		pthread_mutex_unlock(&s->lock);
		return -EBUSY;
	}
	if (s->last_now && now_ns > s->last_now)
		s->step_ns = (s->step_ns * 7 + (now_ns - s->last_now)) / 8;
	s->last_now = now_ns;
	if (now_ns > s->now)
		s->now = now_ns;
	if (read(s->efd, &drain, sizeof(drain)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
	atomic_store_explicit(&s->yield, 0, memory_order_relaxed);
	out->nr_runs = out->nr_swaps = out->nr_events = out->events_left = 0;
	out->tokens = 0;
	budget = s->cfg.max_tokens;
	cap_runs = out->max_runs < s->cfg.max_seqs ? out->max_runs : s->cfg.max_seqs;
	/*
	 * Pacing gives budget to prefills: only worth it when some can use it
	 * (a running chunk, or a waiting request and a free slot).
	 */
	demand = (s->waitq.n || s->swapq.n) && nr_active(s) < s->cfg.max_seqs &&
		 !s->admit_blocked;
	/* Every prefilling request is running (but may be short of blocks too). */
	if (s->st.in_state[ACCEL_SCHED_PREFILLING] && !s->admit_blocked)
		demand = true;

	/*
	 * (1) Decodes, in admission order, until the budget or the runs run
	 * out. The same pass finds the running chunks for (2): one a decode
	 * preempts later in it is skipped there (no longer prefilling).
	 */
	nsnap = s->nr_running;
	memcpy(s->snap, s->running, nsnap * sizeof(*s->snap));
	s->nr_prefill_runs = 0;
	for (i = 0; i < nsnap; i++) {
		struct sreq *r = R(s, s->snap[i]);

		if (decoding && (!budget || out->nr_runs >= cap_runs))
			decoding = false;
		if (i + PREFETCH_AHEAD < nsnap)
			prefetch_req(R(s, s->snap[i + PREFETCH_AHEAD]));
		if (r->state == ACCEL_SCHED_PREFILLING) {
			if (!r->inflight)
				s->pre[npre++] = s->snap[i];
			continue;
		}
		if (!decoding || r->state != ACCEL_SCHED_DECODING || r->inflight ||
		    pace_skip(s, r, demand))
			continue;
		for (;;) {
			ret = grow(s, r, 1);
			if (!ret) {
				add_run(s, r, 1, 0, out, &budget);
				break;
			}
			if (ret != -ENOSPC || s->pending_free0)
				break;	/* stalls a step (or waits for the swap-outs) */
			ret = sched_preempt_for(s, r, true, out, &budget);
			if (ret)
				grown_preempt = true;
			if (ret != 1)
				break;
		}
	}

	/* (2) Prefills: running chunks, swap-ins and waiting requests in policy order. */
	if (npre > 1)
		qsort_r(s->pre, npre, sizeof(*s->pre), cmp_before_ctx, s);
	off_cap = s->cfg.policy == ACCEL_SCHED_HYBRID ? hybrid_cap(s) : UINT64_MAX;
	for (;;) {
		uint32_t p = SREQ_NONE, w, sw, pick, k;
		struct sreq *r;
		int kind;

		while (pi < npre && (R(s, s->pre[pi])->state != ACCEL_SCHED_PREFILLING ||
				     R(s, s->pre[pi])->inflight))
			pi++;
		if (pi < npre)
			p = s->pre[pi];
		sw = s->nr_tiers > 1 && !grown_preempt && !no_new ? sched_q_peek(s, &s->swapq) :
		     SREQ_NONE;
		w = !grown_preempt && !no_new ? sched_q_peek(s, &s->waitq) : SREQ_NONE;
		pick = p;
		kind = 0;
		if (sw != SREQ_NONE && (pick == SREQ_NONE || q_before(s, sw, pick))) {
			pick = sw;
			kind = 1;
		}
		if (w != SREQ_NONE && (pick == SREQ_NONE || q_before(s, w, pick))) {
			pick = w;
			kind = 2;
		}
		if (pick == SREQ_NONE)
			break;
		r = R(s, pick);
		/*
		 * Preempted in this step: not back before the next one. A
		 * request that cannot start stops admissions only: the
		 * running prefills behind it in the order still run (else a
		 * paced decode and a blocked arrival could starve them).
		 */
		if (kind && r->preempt_step == s->st.steps + 1) {
			no_new = true;
			continue;
		}
		/* A new running request: a slot first (a preemption frees a run too). */
		if (kind && nr_active(s) >= s->cfg.max_seqs) {
			if (sched_preempt_for(s, r, false, out, &budget) == 1)
				continue;
			no_new = true;
			continue;
		}
		if (kind != 1 && (!budget || out->nr_runs >= cap_runs))
			break;
		k = budget < s->cfg.chunk_tokens ? budget : s->cfg.chunk_tokens;
		if ((r->flags & ACCEL_SCHED_REQ_OFFLINE) && off_cap != UINT64_MAX) {
			uint64_t left = off_cap > out->tokens ? off_cap - out->tokens : 0;

			if (!left)
				break;
			if (k > left)
				k = (uint32_t)left;
		}
		if (kind == 0) {
			if (r->yield_tokens) {
				/* A yielded chunk resumes whole, at its layer (too big: later). */
				if (r->yield_tokens > budget) {
					pi++;
					continue;
				}
				add_run(s, r, r->yield_tokens, r->yield_layer, out, &budget);
				r->yield_tokens = 0;
				pi++;
				continue;
			}
			if (k > r->nr_tok - r->computed)
				k = (uint32_t)(r->nr_tok - r->computed);
			ret = grow(s, r, k);
			if (!ret) {
				add_run(s, r, k, 0, out, &budget);
				pi++;
				continue;
			}
			if (ret != -ENOSPC || s->pending_free0 >= blocks_of(s, k) + 1)
				break;
			ret = sched_preempt_for(s, r, true, out, &budget);
			if (ret)
				grown_preempt = true;
			/*
			 * A running chunk short of blocks (preempted itself, or
			 * nothing to preempt): the decodes paced for it run next
			 * step, else they and it could both wait step after step.
			 */
			if (ret != 1)
				blocked = true;
			if (ret == 2)
				pi++;
			if (!ret)
				break;
			continue;
		}
		if (kind == 1) {
			struct accel_bm_plan plan = { .sz = sizeof(plan) };

			ret = accel_bm_seq_move(s->bm, r->seq, 0, &plan);
			if (ret == -ENOSPC) {
				if (s->pending_free0 < blocks_of(s, r->bm_tok) &&
				    sched_preempt_for(s, r, false, out, &budget) == 1)
					continue;
				blocked = true;
				no_new = true;
				continue;
			}
			sched_q_remove(s, &s->swapq, r);
			if (ret) {
				sched_to_recompute(s, r);
				continue;
			}
			s->st.swaps_in++;
			if (!plan.id) {
				sched_resume_from_stall(s, r);
				sched_running_add(s, r);
				sched_set_state(s, r, run_state(r));
				continue;
			}
			r->plan_id = plan.id;
			r->plan_blocks = plan.blocks;
			r->plan_reused = plan.reused;
			r->swap_start = s->now;
			s->nr_swapping_in++;
			sched_set_state(s, r, ACCEL_SCHED_SWAPPING_IN);
			sched_pend_swap(s, r);
			continue;
		}
		{
			uint32_t got = 0;

			ret = admit(s, r, k, &got);
			if (ret == -ENOSPC) {
				if (s->pending_free0 < blocks_of(s, k) + 1 &&
				    sched_preempt_for(s, r, false, out, &budget) == 1)
					continue;
				blocked = true;
				no_new = true;
				continue;
			}
			if (ret) {
				no_new = true;
				continue;
			}
			sched_q_remove(s, &s->waitq, r);
			sched_resume_from_stall(s, r);
			sched_running_add(s, r);
			sched_set_state(s, r, ACCEL_SCHED_PREFILLING);
			add_run(s, r, got, 0, out, &budget);
		}
	}

	/*
	 * The prefill an arrival would preempt first makes the prefills yield
	 * (the victim order is total: any order of the runs finds the same one).
	 * The prefills come last but where a preemption moved one.
	 */
	s->yield_ref = SREQ_NONE;
	for (i = out->nr_runs; i-- && s->nr_prefill_runs;) {
		struct sreq *r = R(s, out->runs[i].req);

		if (!(out->runs[i].flags & ACCEL_SCHED_RUN_PREFILL))
			continue;
		s->nr_prefill_runs--;
		if (s->yield_ref == SREQ_NONE || sched_victim_cmp(s, r, R(s, s->yield_ref)) < 0)
			s->yield_ref = out->runs[i].req;
	}
	/* Pacing decodes while admissions wait for blocks would only slow both. */
	s->admit_blocked = blocked;
	s->st.steps++;
	deliver(s, out);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

ACCEL_EXPORT int accel_sched_should_yield(struct accel_sched *s)
{
	return s ? atomic_load_explicit(&s->yield, memory_order_acquire) : 0;
}
