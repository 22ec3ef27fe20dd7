// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the engine's requests and worker threads: create,
 * add, look up, release; a pool of threads that computes a step's jobs,
 * each request's on one thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"

struct serve_req *serve_req_get(const struct serve_engine *e, uint32_t id)
{
	if (!id || id > e->nr_req || !e->req[id - 1].live)
		return NULL;
	return &e->req[id - 1];
}

static void *worker(void *arg);

struct worker_arg {
	struct serve_engine *e;
	uint32_t idx;
};

static int check_tier(const struct serve_engine_opts *o, uint32_t t, uint64_t block_bytes,
		      uint32_t *blocks)
{
	ACCEL_OPTS(accel_tier_info, ti);
	ACCEL_OPTS(accel_bm_tier_stats, st);

	if (!o->tiers[t] || accel_tier_info(o->tiers[t], &ti) || accel_bm_tier_stats(o->bm, t, &st))
		return -EINVAL;
	if (ti.block_bytes != block_bytes || ti.blocks != st.blocks)
		return -EINVAL;
	if (ti.layers != 1 && ti.layers != o->model->cfg.layers)
		return -EINVAL;
	*blocks = ti.blocks;
	return 0;
}

struct serve_engine *serve_engine_create(const struct serve_engine_opts *o)
{
	struct serve_engine *e;
	uint64_t bb;
	uint32_t i;
	int ret;

	if (!o || !o->model || !o->bm || !o->mover || !o->block_tokens ||
	    (o->moe && !o->model->cfg.experts)) {
		errno = EINVAL;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	e->m = o->model;
	e->bm = o->bm;
	e->mover = o->mover;
	e->block_tokens = o->block_tokens;
	e->max_ctx = o->max_ctx ? o->max_ctx : 2048;
	e->max_blocks = serve_blocks_for(e, e->max_ctx);
	e->layer_bytes = serve_kv_layer_bytes(&o->model->cfg, o->block_tokens);
	e->should_yield = o->should_yield;
	e->yield_ctx = o->yield_ctx;
	e->external_kv = o->external_kv;
	e->moe = o->moe;
	bb = serve_kv_block_bytes(&o->model->cfg, o->block_tokens);
	for (i = 0; i < 2; i++) {
		e->tiers[i] = o->tiers[i];
		if (check_tier(o, i, bb, &e->tier_blocks[i])) {
			free(e);
			errno = EINVAL;
			return NULL;
		}
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->go, NULL);
	pthread_cond_init(&e->done, NULL);
	e->blk = calloc(e->tier_blocks[0], sizeof(*e->blk));
	e->nr_threads = o->threads ? o->threads : 1;
	e->scratch = calloc(e->nr_threads, sizeof(*e->scratch));
	e->thread = calloc(e->nr_threads, sizeof(*e->thread));
	ret = e->blk && e->scratch && e->thread ? 0 : -ENOMEM;
	for (i = 0; !ret && i < e->tier_blocks[0]; i++) {
		e->blk[i] = accel_tier_block_addr(o->tiers[0], i);
		if (!e->blk[i])
			ret = -EINVAL;
	}
	for (i = 0; !ret && i < e->nr_threads; i++)
		ret = serve_scratch_init(&e->scratch[i], &e->m->cfg, e->max_ctx);
	/* Thread 0 is the caller's. */
	for (i = 1; !ret && i < e->nr_threads; i++) {
		struct worker_arg *a = malloc(sizeof(*a));

		if (!a) {
			ret = -ENOMEM;
			break;
		}
		*a = (struct worker_arg) { e, i };
		ret = -pthread_create(&e->thread[i], NULL, worker, a);
		if (ret) {
			free(a);
			break;
		}
	}
	if (ret) {
		e->nr_threads = i ? i : 1;
		serve_engine_destroy(e);
		errno = -ret;
		return NULL;
	}
	return e;
}

static void req_free(struct serve_engine *e, struct serve_req *r)
{
	if (r->state != SERVE_FINISHED && !e->external_kv)
		accel_bm_seq_free(e->bm, r->seq);
	free(r->tok);
	free(r->digest);
	free(r->table);
	free(r->chunk_x);
	free(r->chunk_route);
	memset(r, 0, sizeof(*r));
}

int serve_req_chunk_reserve(struct serve_engine *e, struct serve_req *r, uint32_t n)
{
	const struct serve_config *c = &e->m->cfg;
	float *x;

	if (r->chunk_cap >= n)
		return 0;
	x = realloc(r->chunk_x, (size_t)n * c->d_model * sizeof(*x));
	if (!x)
		return -ENOMEM;
	r->chunk_x = x;
	if (serve_moe_counts_routes(e->moe)) {
		uint32_t *rt = realloc(r->chunk_route,
				       (size_t)n * c->layers * c->top_k * sizeof(*rt));

		if (!rt)
			return -ENOMEM;
		r->chunk_route = rt;
	}
	r->chunk_cap = n;
	return 0;
}

void serve_engine_destroy(struct serve_engine *e)
{
	uint32_t i;

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->go);
	pthread_mutex_unlock(&e->lock);
	for (i = 1; e->thread && i < e->nr_threads; i++)
		pthread_join(e->thread[i], NULL);
	for (i = 0; i < e->nr_req; i++)
		if (e->req[i].live)
			req_free(e, &e->req[i]);
	for (i = 0; e->scratch && i < e->nr_threads; i++)
		serve_scratch_fini(&e->scratch[i]);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->go);
	pthread_cond_destroy(&e->done);
	free(e->scratch);
	free(e->thread);
	free(e->blk);
	free(e->req);
	free(e);
}

/* The first slot not in use (released ones are taken again), growing the table. */
static struct serve_req *slot_get(struct serve_engine *e)
{
	uint32_t i;

	for (i = 0; i < e->nr_req; i++)
		if (!e->req[i].live)
			return &e->req[i];
	if (e->nr_req == e->cap_req) {
		uint32_t cap = e->cap_req ? 2 * e->cap_req : 16;
		struct serve_req *nr = realloc(e->req, cap * sizeof(*nr));

		if (!nr)
			return NULL;
		memset(nr + e->cap_req, 0, (cap - e->cap_req) * sizeof(*nr));
		e->req = nr;
		e->cap_req = cap;
	}
	return &e->req[e->nr_req];
}

int serve_engine_check(const struct serve_engine *e, const int32_t *prompt, uint32_t n,
		       const struct serve_params *p)
{
	uint32_t i;

	if (!e || !prompt || !n || !p || !p->max_tokens || p->temperature < 0.0f)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (prompt[i] < 0 || (uint32_t)prompt[i] >= e->m->cfg.vocab)
			return -EINVAL;
	if ((uint64_t)n + p->max_tokens > e->max_ctx)
		return -E2BIG;
	if (serve_blocks_for(e, n + p->max_tokens) > e->tier_blocks[0])
		return -E2BIG;
	return 0;
}

void serve_engine_set_yield(struct serve_engine *e, serve_yield_fn fn, void *ctx)
{
	e->should_yield = fn;
	e->yield_ctx = ctx;
}

int serve_engine_add(struct serve_engine *e, const int32_t *prompt, uint32_t n,
		     const struct serve_params *p, uint32_t *id)
{
	struct serve_req *r;
	uint32_t total;
	int ret;

	ret = serve_engine_check(e, prompt, n, p);
	if (ret)
		return ret;
	if (!id)
		return -EINVAL;
	total = n + p->max_tokens;
	r = slot_get(e);
	if (!r)
		return -ENOMEM;
	r->tok = malloc(total * sizeof(*r->tok));
	r->digest = calloc(p->max_tokens, sizeof(*r->digest));
	r->table = calloc(e->max_blocks, sizeof(*r->table));
	if (!r->tok || !r->digest || !r->table) {
		ret = -ENOMEM;
		goto fail;
	}
	r->seq = UINT32_MAX;
	if (!e->external_kv) {
		ret = accel_bm_seq_create(e->bm, NULL, &r->seq);
		if (ret)
			goto fail;
	}
	memcpy(r->tok, prompt, n * sizeof(*prompt));
	r->p = *p;
	r->n_prompt = r->n_tokens = n;
	r->state = SERVE_WAITING;
	r->live = true;
	r->id = (uint32_t)(r - e->req) + 1;
	if (r->id > e->nr_req)
		e->nr_req = r->id;
	*id = r->id;
	return 0;
fail:
	free(r->tok);
	free(r->digest);
	free(r->table);
	memset(r, 0, sizeof(*r));
	return ret;
}

int serve_engine_adopt(struct serve_engine *e, const int32_t *prompt, uint32_t n,
		       const int32_t *gen, const uint64_t *digests, uint32_t ngen,
		       const struct serve_params *p, uint32_t *id)
{
	struct serve_req *r;
	uint32_t i;
	int ret;

	if (!e || !e->external_kv || !gen || !digests || !ngen || !p || ngen >= p->max_tokens)
		return -EINVAL;
	for (i = 0; i < ngen; i++)
		if (gen[i] < 0 || (uint32_t)gen[i] >= e->m->cfg.vocab)
			return -EINVAL;
	ret = serve_engine_add(e, prompt, n, p, id);
	if (ret)
		return ret;
	r = serve_req_get(e, *id);
	memcpy(r->tok + n, gen, ngen * sizeof(*gen));
	memcpy(r->digest, digests, ngen * sizeof(*digests));
	r->n_tokens = n + ngen;
	r->n_computed = r->n_tokens - 1;
	r->state = SERVE_RUNNING;
	return 0;
}

int serve_engine_adopt_more(struct serve_engine *e, uint32_t id, const int32_t *gen,
			    const uint64_t *digests, uint32_t ngen)
{
	struct serve_req *r = e ? serve_req_get(e, id) : NULL;
	uint32_t have, i;

	if (!r)
		return -ENOENT;
	have = r->n_tokens - r->n_prompt;
	if (!e->external_kv || r->state != SERVE_RUNNING || !gen || !digests || ngen < have ||
	    ngen >= r->p.max_tokens)
		return -EINVAL;
	for (i = have; i < ngen; i++)
		if (gen[i] < 0 || (uint32_t)gen[i] >= e->m->cfg.vocab)
			return -EINVAL;
	memcpy(r->tok + r->n_prompt + have, gen + have, (ngen - have) * sizeof(*gen));
	memcpy(r->digest + have, digests + have, (ngen - have) * sizeof(*digests));
	r->n_tokens = r->n_prompt + ngen;
	r->n_computed = r->n_tokens - 1;
	return 0;
}

int serve_engine_info(const struct serve_engine *e, uint32_t id, struct serve_req_info *info)
{
	const struct serve_req *r = e ? serve_req_get(e, id) : NULL;

	if (!r || !info)
		return -ENOENT;
	*info = (struct serve_req_info) {
		.state = r->state, .n_prompt = r->n_prompt, .n_tokens = r->n_tokens,
		.n_computed = r->n_computed, .n_generated = r->n_tokens - r->n_prompt,
		.max_tokens = r->p.max_tokens, .pending_chunk = r->chunk_n,
		.swaps_out = r->swaps_out, .swaps_in = r->swaps_in, .drops = r->drops,
		.yields = r->yields, .recomputed_tokens = r->recomputed,
		.priority = r->p.priority, .tokens = r->tok + r->n_prompt, .digests = r->digest,
	};
	if (r->state == SERVE_RUNNING || r->state == SERVE_SWAPPED)
		info->blocks = serve_blocks_for(e, r->n_computed + r->chunk_n);
	return 0;
}

const struct serve_model *serve_engine_model(const struct serve_engine *e)
{
	return e->m;
}

struct serve_moe *serve_engine_moe(const struct serve_engine *e)
{
	return e->moe;
}

uint32_t serve_engine_block_tokens(const struct serve_engine *e)
{
	return e->block_tokens;
}

uint32_t serve_engine_next(const struct serve_engine *e, uint32_t id)
{
	for (id++; id <= e->nr_req; id++)
		if (e->req[id - 1].live)
			return id;
	return 0;
}

int serve_engine_release(struct serve_engine *e, uint32_t id)
{
	struct serve_req *r = e ? serve_req_get(e, id) : NULL;

	if (!r)
		return -ENOENT;
	req_free(e, r);
	while (e->nr_req && !e->req[e->nr_req - 1].live)
		e->nr_req--;
	return 0;
}

void serve_engine_usage(const struct serve_engine *e, uint32_t tier, uint32_t *used,
			uint32_t *total)
{
	uint32_t i, u = 0, want = tier == SERVE_TIER_COMPUTE ? SERVE_RUNNING : SERVE_SWAPPED;

	for (i = 0; i < e->nr_req; i++) {
		const struct serve_req *r = &e->req[i];

		if (r->live && r->state == want)
			u += serve_blocks_for(e, r->n_computed + r->chunk_n);
	}
	*used = u;
	*total = e->tier_blocks[tier < 2 ? tier : 0];
}

/* ---- workers ---- */

static void run_jobs(struct serve_engine *e, struct serve_scratch *s)
{
	for (;;) {
		struct serve_job *j;

		pthread_mutex_lock(&e->lock);
		if (e->next_job >= e->nr_jobs) {
			pthread_mutex_unlock(&e->lock);
			return;
		}
		j = &e->jobs[e->next_job++];
		pthread_mutex_unlock(&e->lock);
		serve_req_compute(e, j->r, j->n, s);
		pthread_mutex_lock(&e->lock);
		if (++e->jobs_done == e->nr_jobs)
			pthread_cond_broadcast(&e->done);
		pthread_mutex_unlock(&e->lock);
	}
}

static void *worker(void *arg)
{
	struct worker_arg a = *(struct worker_arg *)arg;
	struct serve_engine *e = a.e;
	uint32_t seen = 0;

	free(arg);
	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!e->stop && e->gen == seen)
			pthread_cond_wait(&e->go, &e->lock);
		if (e->stop) {
			pthread_mutex_unlock(&e->lock);
			return NULL;
		}
		seen = e->gen;
		pthread_mutex_unlock(&e->lock);
		run_jobs(e, &e->scratch[a.idx]);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Compute every job on the pool (the caller's thread too); back once all are done. */
void serve_engine_dispatch(struct serve_engine *e, struct serve_job *jobs, uint32_t n)
{
	uint64_t version = 0, t0 = e->moe ? mono_ns() : 0;
	uint32_t i, tokens = 0;
	bool moe = e->moe && !serve_moe_step_begin(e->moe, &version);

	/* An expert store step: every worker reads the experts at its version. */
	for (i = 0; i < e->nr_threads; i++)
		e->scratch[i].src = moe ? (struct serve_expert_src) {
			.get = serve_moe_expert, .arg = e->moe, .version = version,
		} : (struct serve_expert_src) { 0 };
	for (i = 0; i < n; i++)
		tokens += jobs[i].n;
	pthread_mutex_lock(&e->lock);
	e->jobs = jobs;
	e->nr_jobs = n;
	e->next_job = 0;
	e->jobs_done = 0;
	e->gen++;
	pthread_cond_broadcast(&e->go);
	pthread_mutex_unlock(&e->lock);
	run_jobs(e, &e->scratch[0]);
	pthread_mutex_lock(&e->lock);
	while (e->jobs_done < e->nr_jobs)
		pthread_cond_wait(&e->done, &e->lock);
	e->jobs = NULL;
	e->nr_jobs = 0;
	pthread_mutex_unlock(&e->lock);
	if (moe)
		serve_moe_step_end(e->moe, version, mono_ns() - t0, tokens);
}
