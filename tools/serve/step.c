// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - serve_engine_step(): check a batch, drop requests for
 * recompute, swap out and in (block-manager move plans run by the data
 * mover), append the runs' tokens, compute them on the workers, finish
 * what is complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define SERVE_F_DROP	(1u << 0)
#define SERVE_F_OUT	(1u << 1)
#define SERVE_F_IN	(1u << 2)
#define SERVE_F_RUN	(1u << 3)

static int mark(struct serve_engine *e, const uint32_t *ids, uint32_t n, uint32_t flag,
		bool clear)
{
	uint32_t i;

	if (n && !ids)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		struct serve_req *r = serve_req_get(e, ids[i]);

		if (!r)
			return -ENOENT;
		if (clear) {
			r->flags = 0;
			continue;
		}
		if (r->flags & flag)
			return -EINVAL;		/* twice in one list */
		r->flags |= flag;
	}
	return 0;
}

static int check(struct serve_engine *e, const struct serve_batch *b, uint32_t *ids)
{
	struct {
		const uint32_t *ids;
		uint32_t n, flag;
	} l[3] = {
		{ b->drop, b->nr_drop, SERVE_F_DROP },
		{ b->swap_out, b->nr_swap_out, SERVE_F_OUT },
		{ b->swap_in, b->nr_swap_in, SERVE_F_IN },
	};
	uint32_t i, k, left;
	int ret;

	if (b->nr_runs && !b->runs)
		return -EINVAL;
	for (i = 0; i < b->nr_runs; i++)
		ids[i] = b->runs[i].id;
	for (k = 0; k < 2; k++) {
		for (i = 0; i < 3; i++) {
			ret = mark(e, l[i].ids, l[i].n, l[i].flag, !k);
			if (ret)
				return ret;
		}
		ret = mark(e, ids, b->nr_runs, SERVE_F_RUN, !k);
		if (ret)
			return ret;
	}
	for (i = 0; i < 3; i++)
		for (k = 0; k < l[i].n; k++) {
			struct serve_req *r = serve_req_get(e, l[i].ids[k]);

			if (r->state == SERVE_FINISHED)
				return -EINVAL;
			if (l[i].flag == SERVE_F_OUT &&
			    (r->state != SERVE_RUNNING || (r->flags & SERVE_F_DROP)))
				return -EINVAL;
			if (l[i].flag == SERVE_F_IN &&
			    (r->state != SERVE_SWAPPED || (r->flags & SERVE_F_DROP)))
				return -EINVAL;
		}
	for (i = 0; i < b->nr_runs; i++) {
		struct serve_req *r = serve_req_get(e, ids[i]);
		bool dropped = r->flags & SERVE_F_DROP;
		uint32_t n = b->runs[i].n_tokens;

		if (r->state == SERVE_FINISHED || (r->flags & SERVE_F_OUT))
			return -EINVAL;
		if (r->state == SERVE_SWAPPED && !(r->flags & (SERVE_F_IN | SERVE_F_DROP)))
			return -EINVAL;
		left = r->n_tokens - (dropped ? 0 : r->n_computed);
		if (!n || n > left || (!dropped && r->chunk_n && n != r->chunk_n))
			return -EINVAL;
	}
	return 0;
}

static void drop(struct serve_engine *e, struct serve_req *r)
{
	if (r->state == SERVE_WAITING && !r->chunk_n && !r->n_computed)
		return;
	/* A fresh sequence: its blocks go back, and the tokens are computed again. */
	accel_bm_seq_free(e->bm, r->seq);
	accel_bm_seq_create(e->bm, NULL, &r->seq);
	r->recomputed += r->n_computed;
	r->n_computed = 0;
	r->chunk_n = 0;
	r->drops++;
	r->state = SERVE_WAITING;
}

/* The runs of @r's move: its plan's. */
static int runs_of(struct serve_engine *e, const struct accel_bm_plan *pl,
		   struct accel_bm_run **runs, uint32_t *nr)
{
	int ret;

	*nr = 0;
	if (!pl->id)
		return 0;
	*runs = calloc(pl->nr_runs, sizeof(**runs));
	if (!*runs)
		return -ENOMEM;
	*nr = pl->nr_runs;
	if (pl->nr_runs <= pl->max_runs) {
		memcpy(*runs, pl->runs, pl->nr_runs * sizeof(**runs));
		return 0;
	}
	ret = accel_bm_plan_runs(e->bm, pl->id, 0, *runs, pl->nr_runs);
	return ret < 0 ? ret : 0;
}

/*
 * Move @n requests to @tier: each one's plan a mover job; wait for all,
 * then finish the plans. A failed copy undoes its plan (the request stays
 * where it was). Only a plan has copies, so a move without one cannot fail.
 */
static int move(struct serve_engine *e, const uint32_t *ids, uint32_t n, uint32_t tier,
		uint64_t *blocks)
{
	struct accel_bm_run buf[16], *runs = NULL;
	uint64_t *plan_id, *job;
	uint32_t i, k, nr, done = 0, waiting = 0;
	int ret = 0, *st;

	if (!n)
		return 0;
	plan_id = calloc(n, sizeof(*plan_id));
	job = calloc(n, sizeof(*job));
	st = calloc(n, sizeof(*st));
	if (!plan_id || !job || !st) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && !ret; i++) {
		struct serve_req *r = serve_req_get(e, ids[i]);
		ACCEL_OPTS(accel_bm_plan, plan, .runs = buf, .max_runs = 16);

		ret = accel_bm_seq_move(e->bm, r->seq, tier, &plan);
		if (ret)
			break;
		done++;
		plan_id[i] = plan.id;
		ret = runs_of(e, &plan, &runs, &nr);
		if (!ret && nr)
			ret = accel_mover_submit(e->mover, e->tiers, 2, runs, nr, NULL, &job[i]);
		if (ret)
			st[i] = ret;
		else if (nr)
			waiting++;
		for (k = 0; !ret && k < nr; k++)
			*blocks += runs[k].count;
		free(runs);
		runs = NULL;
	}
	while (waiting) {
		struct accel_mover_done d[8];
		int got = accel_mover_poll(e->mover, d, 8, -1), j;

		for (j = 0; j < got; j++)
			for (k = 0; k < n; k++)
				if (job[k] && job[k] == d[j].job_id) {
					job[k] = 0;
					st[k] = d[j].status;
					if (d[j].status && !ret)
						ret = d[j].status;
					waiting--;
				}
	}
	for (i = 0; i < done; i++) {
		struct serve_req *r = serve_req_get(e, ids[i]);

		if (st[i]) {
			accel_bm_plan_done(e->bm, plan_id[i], st[i]);
			continue;
		}
		if (plan_id[i])
			accel_bm_plan_done(e->bm, plan_id[i], 0);
		if (tier == SERVE_TIER_SWAP) {
			r->state = SERVE_SWAPPED;
			r->swaps_out++;
		} else {
			r->state = SERVE_RUNNING;
			r->swaps_in++;
		}
	}
out:
	free(plan_id);
	free(job);
	free(st);
	return ret;
}

/* Append a run's tokens (its blocks), and read its block table. */
static int prepare(struct serve_engine *e, struct serve_req *r, uint32_t n)
{
	uint32_t off[2];
	int ret;

	if (r->chunk_n) {
		/*
		 * A resumed chunk writes the layers it had not reached into
		 * blocks a move may have left copies of: those are stale now.
		 */
		ret = accel_bm_seq_written(e->bm, r->seq, r->n_computed / e->block_tokens);
		if (ret)
			return ret;
	} else {
		ACCEL_OPTS(accel_bm_plan, plan);

		/* No block is shared (no prefix caching yet): no copy-on-write plan. */
		ret = accel_bm_append(e->bm, r->seq, r->tok + r->n_computed, n, NULL, &plan);
		if (ret)
			return ret;
		if (plan.id) {
			accel_bm_plan_done(e->bm, plan.id, -EOPNOTSUPP);
			accel_bm_truncate(e->bm, r->seq, n);
			return -EOPNOTSUPP;
		}
		ret = serve_req_chunk_reserve(e, r, n);
		if (ret) {
			accel_bm_truncate(e->bm, r->seq, n);
			return ret;
		}
	}
	ret = accel_bm_block_tables(e->bm, &r->seq, 1, off, r->table, e->max_blocks, NULL);
	return ret < 0 ? ret : 0;
}

int serve_engine_step(struct serve_engine *e, const struct serve_batch *b,
		      struct serve_step_stats *st)
{
	struct serve_step_stats s = { 0 };
	struct serve_job *jobs = NULL;
	uint32_t *ids = NULL, i, k;
	int ret;

	if (!e || !b)
		return -EINVAL;
	if (e->external_kv)
		return -EOPNOTSUPP;
	if (b->nr_runs) {
		ids = calloc(b->nr_runs, sizeof(*ids));
		jobs = calloc(b->nr_runs, sizeof(*jobs));
		if (!ids || !jobs) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = check(e, b, ids);
	if (ret)
		goto out;
	for (i = 0; i < b->nr_drop; i++)
		drop(e, serve_req_get(e, b->drop[i]));
	ret = move(e, b->swap_out, b->nr_swap_out, SERVE_TIER_SWAP, &s.swap_out_blocks);
	if (!ret)
		ret = move(e, b->swap_in, b->nr_swap_in, SERVE_TIER_COMPUTE, &s.swap_in_blocks);
	for (i = 0; !ret && i < b->nr_runs; i++) {
		struct serve_req *r = serve_req_get(e, ids[i]);

		ret = prepare(e, r, b->runs[i].n_tokens);
		if (ret) {
			/* Undo the appends of this step's earlier runs. */
			for (k = 0; k < i; k++)
				if (!jobs[k].r->chunk_n)
					accel_bm_truncate(e->bm, jobs[k].r->seq, jobs[k].n);
			break;
		}
		jobs[i] = (struct serve_job) { r, b->runs[i].n_tokens };
	}
	if (ret)
		goto out;
	for (i = 0; i < b->nr_runs; i++)
		jobs[i].r->state = SERVE_RUNNING;
	serve_engine_dispatch(e, jobs, b->nr_runs);
	for (i = 0; i < b->nr_runs; i++) {
		struct serve_req *r = jobs[i].r;

		if (r->yielded) {
			s.yielded++;
			continue;
		}
		s.computed += jobs[i].n;
		if (!r->sampled)
			continue;	/* a prefill chunk short of the end */
		s.generated++;
		if (r->n_tokens - r->n_prompt == r->p.max_tokens) {
			accel_bm_seq_free(e->bm, r->seq);
			r->state = SERVE_FINISHED;
			s.finished++;
		}
	}
out:
	free(ids);
	free(jobs);
	if (st)
		*st = s;
	return ret;
}
