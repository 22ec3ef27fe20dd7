// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - serve_engine_compute(): the runs of a scheduler that
 * owns the sequences (external_kv). Each run names where its tokens start
 * and the blocks its KV is in; the engine checks them against what the
 * request knows, computes them on the workers, and says per run whether
 * it yielded or sampled a token. serve_engine_finish() ends a request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static int check_run(struct serve_engine *e, const struct serve_compute *c)
{
	struct serve_req *r = serve_req_get(e, c->id);
	uint64_t end = c->start + c->n_tokens;

	if (!r)
		return -ENOENT;
	if (r->state == SERVE_FINISHED || (r->flags & SERVE_F_PASS) || !c->n_tokens ||
	    !c->table || end > r->n_tokens || c->nr_blocks < serve_blocks_for(e, (uint32_t)end) ||
	    c->nr_blocks > e->max_blocks)
		return -EINVAL;
	/* Reaching the end samples a token: none past max_tokens. */
	if (end == r->n_tokens && r->n_tokens - r->n_prompt >= r->p.max_tokens)
		return -EINVAL;
	if (c->resume_layer &&
	    (!r->chunk_n || r->chunk_n != c->n_tokens || r->n_computed != c->start ||
	     r->chunk_layer != c->resume_layer))
		return -EINVAL;
	for (uint32_t i = 0; i < c->nr_blocks; i++)
		if (c->table[i] >= e->tier_blocks[SERVE_TIER_COMPUTE])
			return -EINVAL;
	return 0;
}

/* The request takes the run's place: its start, its blocks, room for the chunk. */
static int take_run(struct serve_engine *e, struct serve_req *r, const struct serve_compute *c)
{
	memcpy(r->table, c->table, c->nr_blocks * sizeof(*r->table));
	if (c->resume_layer)
		return 0;
	if (r->chunk_n)
		r->chunk_n = 0;		/* the yielded chunk was given up: computed afresh */
	if (c->start < r->n_computed) {
		r->recomputed += r->n_computed - c->start;
		r->drops++;
	}
	r->n_computed = (uint32_t)c->start;
	return serve_req_chunk_reserve(e, r, c->n_tokens);
}

int serve_engine_compute(struct serve_engine *e, struct serve_compute *c, uint32_t n)
{
	struct serve_job *jobs;
	uint32_t i;
	int ret = 0;

	if (!e || (n && !c))
		return -EINVAL;
	if (!e->external_kv)
		return -EOPNOTSUPP;
	if (!n)
		return 0;
	/* Checked, each request at most once (SERVE_F_PASS marks it for the pass). */
	for (i = 0; i < n && !ret; i++) {
		ret = check_run(e, &c[i]);
		if (!ret)
			serve_req_get(e, c[i].id)->flags |= SERVE_F_PASS;
	}
	for (uint32_t k = 0; k < i; k++) {
		struct serve_req *r = serve_req_get(e, c[k].id);

		if (r)
			r->flags &= ~SERVE_F_PASS;
	}
	if (ret)
		return ret;
	jobs = calloc(n, sizeof(*jobs));
	if (!jobs)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		struct serve_req *r = serve_req_get(e, c[i].id);

		ret = take_run(e, r, &c[i]);
		jobs[i] = (struct serve_job) { r, c[i].n_tokens };
	}
	if (!ret) {
		for (i = 0; i < n; i++)
			jobs[i].r->state = SERVE_RUNNING;
		serve_engine_dispatch(e, jobs, n);
		for (i = 0; i < n; i++) {
			struct serve_req *r = jobs[i].r;

			c[i].yielded = r->yielded;
			c[i].layers_done = r->yielded ? r->chunk_layer : 0;
			c[i].sampled = r->sampled;
			c[i].token = r->sampled ? r->tok[r->n_tokens - 1] : -1;
		}
	}
	free(jobs);
	return ret;
}

int serve_engine_finish(struct serve_engine *e, uint32_t id)
{
	struct serve_req *r = e ? serve_req_get(e, id) : NULL;

	if (!r)
		return -ENOENT;
	if (!e->external_kv)
		return -EOPNOTSUPP;
	r->state = SERVE_FINISHED;
	r->chunk_n = 0;
	return 0;
}
