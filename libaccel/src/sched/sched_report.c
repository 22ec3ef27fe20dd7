// SPDX-License-Identifier: MIT
/*
 * libaccel - what the engine reports to the scheduler: a run's result
 * (accel_sched_update(): the lazy append, commits, the token, the
 * accounting, the request's end) and a swap's end (accel_sched_swap_done()).
 */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

/* VTC's weights: input tokens 1, output tokens 2. */
#define VTC_IN			1
#define VTC_OUT			2

static int tok_push(struct sreq *r, int32_t t)
{
	if (r->nr_tok == r->cap_tok) {
		uint64_t cap = r->cap_tok * 2;
		int32_t *v = realloc(r->tok, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->tok = v;
		r->cap_tok = cap;
	}
	r->tok[r->nr_tok++] = t;
	return 0;
}

ACCEL_EXPORT int accel_sched_update(struct accel_sched *s, uint32_t req,
				    const struct accel_sched_result *res, uint64_t now_ns)
{
	uint64_t end, start;
	bool prefill, sample;
	struct sreq *r;
	int ret;

	if (!s || !res || res->sz < sizeof(res->sz))
		return -EINVAL;
	ret = accel_opts_valid(res, sizeof(*res));
	if (ret)
		return ret;
	if (!ACCEL_OPTS_HAS(res, flags) || (res->flags & ~ACCEL_SCHED_RES_FLAGS))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
	ret = -EINVAL;
	if (!r || !r->inflight || res->computed > r->sched_tokens)
		goto out;
	prefill = r->state == ACCEL_SCHED_PREFILLING;
	start = r->computed;
	end = start + res->computed;
	sample = end == r->nr_tok;
	if (res->flags & ACCEL_SCHED_RES_YIELDED) {
		if (!prefill || res->computed || !res->layers_done ||
		    (res->flags & ~ACCEL_SCHED_RES_YIELDED))
			goto out;
	} else {
		if (res->layers_done)
			goto out;
		if ((res->flags & ACCEL_SCHED_RES_TOKEN) && !sample)
			goto out;
		if (sample && !(res->flags & (ACCEL_SCHED_RES_TOKEN | ACCEL_SCHED_RES_FINISHED)))
			goto out;
	}
	if (now_ns > s->now)
		s->now = now_ns;
	r->inflight = false;
	r->run_idx = SREQ_NONE;
	s->nr_inflight--;
	if (res->flags & ACCEL_SCHED_RES_YIELDED) {
		/* Its chunk's tokens stay in the table, KV written up to layers_done. */
		if (r->bm_tok < r->computed + r->sched_tokens) {
			accel_bm_append(s->bm, r->seq, r->tok + r->bm_tok,
					r->computed + r->sched_tokens - r->bm_tok, NULL, NULL);
			r->bm_tok = r->computed + r->sched_tokens;
		}
		r->yield_tokens = r->sched_tokens;
		r->yield_layer = res->layers_done;
		r->yields++;
		s->st.yields++;
		r->sched_tokens = 0;
		ret = 0;
		goto done;
	}
	if (r->bm_tok < end) {
		/* The lazy append: these tokens fit in the last block. */
		ret = accel_bm_append(s->bm, r->seq, r->tok + r->bm_tok, end - r->bm_tok, NULL,
				      NULL);
		if (ret)
			goto out_restore;
		r->bm_tok = end;
	} else if (r->bm_tok > end) {
		accel_bm_truncate(s->bm, r->seq, r->bm_tok - end);
		r->bm_tok = end;
	}
	r->computed = end;
	if (start < r->max_computed) {
		uint64_t re = (r->max_computed < end ? r->max_computed : end) - start;

		r->recomputed_tokens += re;
		s->st.recomputed_tokens += re;
	}
	if (end > r->max_computed)
		r->max_computed = end;
	s->st.tokens += res->computed;
	if (is_fair(s))
		s->vtc[r->client] += (uint64_t)res->computed * (prefill ? VTC_IN : VTC_OUT);
	if (full_blocks(s, end) > r->committed) {
		if (accel_bm_commit(s->bm, r->seq, (uint32_t)full_blocks(s, end)) >= 0)
			r->committed = (uint32_t)full_blocks(s, end);
	}
	r->sched_tokens = 0;
	if (res->flags & ACCEL_SCHED_RES_TOKEN) {
		ret = tok_push(r, res->token);
		if (ret)
			goto finish_it;	/* no memory for the token: it ends here */
		r->output++;
		if (!r->first_token_ns) {
			r->first_token_ns = s->now ? s->now : 1;
		} else {
			uint64_t gap = s->now > r->last_token_ns ? s->now - r->last_token_ns : 0;

			r->tpot_sum += gap;
			r->tpot_count++;
			if (gap > r->tpot_max)
				r->tpot_max = gap;
		}
		r->last_token_ns = s->now;
	}
	ret = 0;
	if ((res->flags & ACCEL_SCHED_RES_FINISHED) || (r->max_output && r->output >= r->max_output)
	    || (sample && !(res->flags & ACCEL_SCHED_RES_TOKEN)))
		goto finish_it;
	sched_set_state(s, r, run_state(r));
done:
	if (r->abort_pending)
		sched_finish(s, r, ACCEL_SCHED_ABORTED);
	goto out;
finish_it:
	sched_finish(s, r, r->abort_pending ? ACCEL_SCHED_ABORTED : ACCEL_SCHED_FINISHED);
	goto out;
out_restore:
	r->inflight = true;
	s->nr_inflight++;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ACCEL_EXPORT int accel_sched_swap_done(struct accel_sched *s, uint32_t req, int status,
				       uint64_t now_ns)
{
	struct sreq *r;
	uint32_t i;
	int ret = 0;

	if (!s || status > 0)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
	if (!r || (r->state != ACCEL_SCHED_SWAPPING_OUT && r->state != ACCEL_SCHED_SWAPPING_IN)) {
		ret = -EINVAL;
		goto out;
	}
	if (now_ns > s->now)
		s->now = now_ns;
	accel_bm_plan_done(s->bm, r->plan_id, status);
	for (i = 0; i < s->nr_pend_swaps; i++) {
		if (s->pend_swaps[i] == req) {
			memmove(s->pend_swaps + i, s->pend_swaps + i + 1,
				(s->nr_pend_swaps - i - 1) * sizeof(uint32_t));
			s->nr_pend_swaps--;
			break;
		}
	}
	if (!status) {
		uint64_t bytes = (uint64_t)r->plan_blocks * s->cfg.block_bytes;

		r->swapped_bytes += bytes;
		s->st.swapped_bytes += bytes;
		if (!s->cfg.swap_bw && now_ns > r->swap_start && bytes) {
			double bw = (double)bytes * 1e9 / (double)(now_ns - r->swap_start);

			s->swap_bw = (uint64_t)(((double)s->swap_bw * 7 + bw) / 8);
			if (!s->swap_bw)
				s->swap_bw = 1;
		}
	} else {
		s->st.swap_failures++;
	}
	r->plan_id = 0;
	if (r->state == ACCEL_SCHED_SWAPPING_OUT) {
		s->pending_free0 -= r->plan_tier0;
		if (status) {
			sched_to_recompute(s, r);	/* still on tier 0: its blocks go now */
		} else {
			r->host_valid = (uint32_t)(r->computed / s->bt);
			sched_set_state(s, r, ACCEL_SCHED_SWAPPED);
			sched_q_push(s, &s->swapq, r);
		}
	} else {
		s->nr_swapping_in--;
		if (status) {
			sched_set_state(s, r, ACCEL_SCHED_SWAPPED);
			sched_q_push(s, &s->swapq, r);
		} else {
			r->host_valid = (uint32_t)(r->computed / s->bt);
			sched_resume_from_stall(s, r);
			sched_running_add(s, r);
			sched_set_state(s, r, run_state(r));
		}
	}
	if (r->abort_pending)
		sched_finish(s, r, ACCEL_SCHED_ABORTED);
	sched_wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
