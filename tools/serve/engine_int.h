/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - the engine's internals, shared by engine.c, step.c and fcfs.c. */
#ifndef SERVE_ENGINE_INT_H
#define SERVE_ENGINE_INT_H

#include <pthread.h>

#include "engine.h"
#include "forward.h"

struct serve_req {
	bool live;
	uint32_t id, state, seq;
	struct serve_params p;
	int32_t *tok;			/* prompt, then generated */
	uint64_t *digest;		/* per generated token */
	uint32_t n_prompt, n_tokens, n_computed;
	uint32_t *table;		/* its block table (tier 0), refreshed per run */
	/* A yielded chunk: its size, where it stopped, the residual stream. */
	uint32_t chunk_n, chunk_layer, chunk_phase;
	float *chunk_x;
	uint32_t chunk_cap;		/* tokens chunk_x (and chunk_route) hold */
	/* [chunk_cap][layers][top_k] each token's experts, where the MoE store counts routes. */
	uint32_t *chunk_route;
	uint32_t flags;			/* SERVE_F_* of the step being checked */
#define SERVE_F_PASS	(1u << 0)	/* serve_engine_compute()'s check (external_kv only) */
	uint32_t swaps_out, swaps_in, drops, yields;
	uint64_t recomputed;
	uint64_t computed_ever;		/* KV positions written, recomputation included */
	/* This step: tokens to run, and what happened. */
	uint32_t run_n;
	bool yielded, sampled;
};

struct serve_job {
	struct serve_req *r;
	uint32_t n;
};

struct serve_engine {
	const struct serve_model *m;
	struct accel_bm *bm;
	const struct accel_tier *tiers[2];
	struct accel_mover *mover;
	uint32_t block_tokens, tier_blocks[2], max_ctx, max_blocks;
	uint64_t layer_bytes;
	void **blk;			/* compute-tier block addresses */
	serve_yield_fn should_yield;
	void *yield_ctx;
	bool external_kv;		/* a scheduler's sequences: serve_engine_compute() */
	struct serve_moe *moe;		/* experts in a store, or NULL */
	struct serve_req *req;		/* by id - 1 */
	uint32_t nr_req, cap_req;
	/* Workers: a step's jobs, taken in turn. */
	uint32_t nr_threads;
	pthread_t *thread;
	struct serve_scratch *scratch;	/* one per thread, [0] the caller's */
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	struct serve_job *jobs;
	uint32_t nr_jobs, next_job, jobs_done, gen;
	bool stop;
};

struct serve_req *serve_req_get(const struct serve_engine *e, uint32_t id);
static inline uint32_t serve_blocks_for(const struct serve_engine *e, uint32_t tokens)
{
	return (tokens + e->block_tokens - 1) / e->block_tokens;
}
/** Room in @r for a chunk of @n tokens (serve_req_compute()'s buffers): 0 or -ENOMEM. */
int serve_req_chunk_reserve(struct serve_engine *e, struct serve_req *r, uint32_t n);
/** Compute @n tokens of @r on scratch @s (a worker's). */
void serve_req_compute(struct serve_engine *e, struct serve_req *r, uint32_t n,
		       struct serve_scratch *s);

/** Compute every job on the worker pool; returns once all are done. */
void serve_engine_dispatch(struct serve_engine *e, struct serve_job *jobs, uint32_t n);

#endif /* SERVE_ENGINE_INT_H */
