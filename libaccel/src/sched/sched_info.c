// SPDX-License-Identifier: MIT
/*
 * libaccel - reading the scheduler: the block tables of a step's runs, a
 * request's tokens and accounting, the scheduler's counters.
 */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

ACCEL_EXPORT int accel_sched_block_tables(struct accel_sched *s,
					  const struct accel_sched_run *runs, uint32_t n,
					  uint32_t *offsets, uint32_t *ids, uint32_t max_ids)
{
	uint32_t stackv[256] = { 0 }, *seqs = stackv, i;
	int ret;

	if (!s || (n && (!runs || !offsets)))
		return -EINVAL;
	if (n > 256) {
		seqs = malloc(n * sizeof(*seqs));
		if (!seqs)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		seqs[i] = runs[i].seq;
	ret = accel_bm_block_tables(s->bm, seqs, n, offsets, ids, max_ids, NULL);
	if (seqs != stackv)
		free(seqs);
	return ret;
}

ACCEL_EXPORT int accel_sched_tokens(struct accel_sched *s, uint32_t req, uint64_t first,
				    uint32_t n, int32_t *tokens)
{
	struct sreq *r;
	int ret = 0;

	if (!s || (n && !tokens))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
	if (!r)
		ret = -ENOENT;
	else if (first > r->nr_tok || n > r->nr_tok - first)
		ret = -ERANGE;
	else if (n)
		memcpy(tokens, r->tok + first, n * sizeof(*tokens));
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ACCEL_EXPORT int accel_sched_req_info(struct accel_sched *s, uint32_t req,
				      struct accel_sched_req_info *info)
{
	struct accel_sched_req_info v = { .sz = sizeof(v) };
	struct sreq *r;
	int ret;

	if (!s || !info || info->sz < sizeof(info->sz))
		return -EINVAL;
	ret = accel_opts_valid(info, sizeof(*info));
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
	if (!r) {
		pthread_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	v.tag = r->tag;
	v.state = r->state;
	v.client = r->client;
	v.priority = r->prio;
	v.seq = r->seq;
	v.prompt_len = r->prompt_len;
	v.nr_tokens = r->nr_tok;
	v.computed = r->computed;
	v.output_tokens = r->output;
	v.arrival_ns = r->arrival_ns;
	v.first_sched_ns = r->first_sched_ns;
	v.first_token_ns = r->first_token_ns;
	v.last_token_ns = r->last_token_ns;
	v.finish_ns = r->finish_ns;
	v.queue_ns = r->first_sched_ns > r->arrival_ns ? r->first_sched_ns - r->arrival_ns : 0;
	v.tpot_sum_ns = r->tpot_sum;
	v.tpot_max_ns = r->tpot_max;
	v.tpot_count = r->tpot_count;
	v.swaps_out = r->swaps_out;
	v.recomputes = r->recomputes;
	v.yields = r->yields;
	v.stall_ns = r->stall_ns + (r->preempt_ns && s->now > r->preempt_ns ?
				    s->now - r->preempt_ns : 0);
	v.recomputed_tokens = r->recomputed_tokens;
	v.swapped_bytes = r->swapped_bytes;
	pthread_mutex_unlock(&s->lock);
	memcpy((char *)info + sizeof(size_t), (char *)&v + sizeof(size_t),
	       (info->sz < sizeof(v) ? info->sz : sizeof(v)) - sizeof(size_t));
	return 0;
}

ACCEL_EXPORT int accel_sched_stats(struct accel_sched *s, struct accel_sched_stats *st)
{
	struct accel_sched_stats v;
	int ret;

	if (!s || !st || st->sz < sizeof(st->sz))
		return -EINVAL;
	ret = accel_opts_valid(st, sizeof(*st));
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	v = s->st;
	v.sz = sizeof(v);
	v.requests = s->nr_used;
	v.swap_bw = s->swap_bw;
	v.step_ns = s->step_ns;
	pthread_mutex_unlock(&s->lock);
	memcpy((char *)st + sizeof(size_t), (char *)&v + sizeof(size_t),
	       (st->sz < sizeof(v) ? st->sz : sizeof(v)) - sizeof(size_t));
	return 0;
}
