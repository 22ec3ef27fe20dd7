/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the engine core: requests, and a step function that runs
 * one batch over KV held in libaccel's tiers (tier 0: the compute tier,
 * tier 1: the swap tier) and named by its block manager. Documentation/serve.rst.
 *
 * A batch is plain data, the shape of a scheduler's step output: the
 * requests that run with how many tokens each (a prefill chunk, or 1 for a
 * decode), and the ones to drop for recompute, swap out, swap in (applied
 * in that order, before anything runs). serve_fcfs_plan() is a built-in
 * policy that makes such batches.
 *
 * Thread safety: one thread drives an engine; the step computes the
 * batch's requests on the engine's worker threads, each request on one.
 */
#ifndef SERVE_ENGINE_H
#define SERVE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <accel.h>

#include "model.h"
#include "moe.h"

struct serve_engine;

/** Tiers of the block manager an engine uses. */
#define SERVE_TIER_COMPUTE	0
#define SERVE_TIER_SWAP		1

/**
 * Operator-level yield: asked after the attention and after the MLP of
 * every layer of a prefill chunk (@phase 0: attention done, 1: MLP done),
 * from the worker computing request @id. True: the chunk stops there, keeps
 * the KV of what it finished, and resumes from that point the next time the
 * request runs (with the same n_tokens).
 */
typedef bool (*serve_yield_fn)(void *ctx, uint32_t id, uint32_t layer, uint32_t phase);

struct serve_engine_opts {
	const struct serve_model *model;
	/** Two tiers (SERVE_TIER_*), of serve_kv_block_bytes() blocks and model layers pieces. */
	struct accel_bm *bm;
	struct accel_tier *tiers[2];
	struct accel_mover *mover;
	/** Tokens per block: the manager's. */
	uint32_t block_tokens;
	/** Worker threads (0: 1). */
	uint32_t threads;
	/** Longest request, prompt and output (0: 2048). */
	uint32_t max_ctx;
	serve_yield_fn should_yield;
	void *yield_ctx;
	/**
	 * The KV's sequences belong to a scheduler (driver.h): requests get
	 * no sequence of their own, serve_engine_compute() runs them on the
	 * block tables it is given, serve_engine_step() is refused.
	 */
	bool external_kv;
	/**
	 * The MoE experts in an expert store (moe.h; NULL: the model's own
	 * tensors): every dispatch of a step's jobs is one of the store's
	 * steps, its experts read at that step's table version.
	 */
	struct serve_moe *moe;
};

/** A new engine; NULL and errno (EINVAL: a tier or manager of the wrong shape). */
struct serve_engine *serve_engine_create(const struct serve_engine_opts *opts);
void serve_engine_destroy(struct serve_engine *e);

/** What a request asks for; priority and SLO fields are passed through. */
struct serve_params {
	uint32_t max_tokens;
	/** 0: greedy. */
	float temperature;
	uint64_t seed;
	int32_t priority;
	/** Fair share: the client's id (the scheduler's, below its max_clients). */
	uint32_t client;
	uint64_t ttft_slo_us, tpot_slo_us;
	/** Best effort (hybrid: fills what online requests leave, preempted first). */
	bool offline;
};

/**
 * A new waiting request; *id (never 0) names it: the lowest id not in
 * use, so ids of released requests are given again. -EINVAL (no prompt, a
 * token past the vocabulary, max_tokens 0), -E2BIG (longer than max_ctx, or
 * more blocks than the compute tier has).
 */
int serve_engine_add(struct serve_engine *e, const int32_t *prompt, uint32_t n,
		     const struct serve_params *p, uint32_t *id);
/**
 * A migrated request (external_kv engines): its prompt, the @ngen tokens it
 * generated elsewhere and their digests; RUNNING, with the KV of every
 * token but the last (the scheduler's sequence holds it). -EINVAL as
 * serve_engine_add(), or no token generated, or none left to generate.
 */
int serve_engine_adopt(struct serve_engine *e, const int32_t *prompt, uint32_t n,
		       const int32_t *gen, const uint64_t *digests, uint32_t ngen,
		       const struct serve_params *p, uint32_t *id);
/**
 * An adopted request made before its migration's stop (its destination
 * prepared it) decoded on at its source: its generated tokens and their
 * digests are @gen and @digests[0..ngen) now, the first ones as adopted
 * (only those after them are copied). -ENOENT; -EINVAL: fewer than it
 * has, none left to generate, a token out of the vocabulary.
 */
int serve_engine_adopt_more(struct serve_engine *e, uint32_t id, const int32_t *gen,
			    const uint64_t *digests, uint32_t ngen);
/** What serve_engine_add() would say of these arguments, short of memory (any thread). */
int serve_engine_check(const struct serve_engine *e, const int32_t *prompt, uint32_t n,
		       const struct serve_params *p);
/** Set the operator-level yield hook (not while a step runs). */
void serve_engine_set_yield(struct serve_engine *e, serve_yield_fn fn, void *ctx);

enum serve_state {
	SERVE_WAITING = 0,	/* no KV: prefill (again, after a drop) */
	SERVE_RUNNING = 1,	/* KV on the compute tier */
	SERVE_SWAPPED = 2,	/* KV on the swap tier */
	SERVE_FINISHED = 3,	/* output complete, blocks released */
	SERVE_MIGRATED = 4,	/* moved to another engine (driver_migrate.c), which finishes it */
};

struct serve_req_info {
	uint32_t state;		/* enum serve_state */
	uint32_t n_prompt;
	uint32_t n_tokens;	/* prompt and generated */
	uint32_t n_computed;	/* tokens whose KV is written */
	uint32_t n_generated, max_tokens;
	/** A yielded chunk's size (resume with it), 0: none. */
	uint32_t pending_chunk;
	/** Blocks its KV takes (on its tier). */
	uint32_t blocks;
	uint32_t swaps_out, swaps_in, drops, yields;
	uint64_t recomputed_tokens;
	int32_t priority;
	uint32_t pad;
	/** Generated tokens and their digests (n_generated each; the engine's). */
	const int32_t *tokens;
	const uint64_t *digests;
};

/** -ENOENT: no such request. */
int serve_engine_info(const struct serve_engine *e, uint32_t id, struct serve_req_info *info);
/** The next request id after @id (0: the first) that is not released, 0 at the end. */
uint32_t serve_engine_next(const struct serve_engine *e, uint32_t id);
/** The engine's model, and tokens per KV block. */
const struct serve_model *serve_engine_model(const struct serve_engine *e);
/** The engine's expert store (engine opts' moe), or NULL. */
struct serve_moe *serve_engine_moe(const struct serve_engine *e);
uint32_t serve_engine_block_tokens(const struct serve_engine *e);
/** Forget a request (releasing its blocks if it holds any). */
int serve_engine_release(struct serve_engine *e, uint32_t id);

struct serve_run {
	uint32_t id;
	uint32_t n_tokens;
};

struct serve_batch {
	const struct serve_run *runs;
	uint32_t nr_runs;
	const uint32_t *drop;
	uint32_t nr_drop;
	const uint32_t *swap_out;
	uint32_t nr_swap_out;
	const uint32_t *swap_in;
	uint32_t nr_swap_in;
};

struct serve_step_stats {
	uint32_t computed;	/* tokens whose KV was written */
	uint32_t generated;	/* tokens sampled */
	uint32_t finished, yielded;
	uint64_t swap_out_blocks, swap_in_blocks;
};

/**
 * Run one batch. Every id and count is checked first (-EINVAL, -ENOENT,
 * nothing done): a run names a waiting or running request (not one swapped
 * out after this batch's swaps) at most once, with 1 to the tokens it has
 * left (its pending chunk exactly, if it yielded one); drops name waiting,
 * running or swapped requests, swap-outs running ones, swap-ins swapped
 * ones. -ENOSPC: a tier ran short (the swaps and drops are done, no run
 * is). A mover failure is returned after undoing the plan it failed.
 * @st may be NULL.
 */
int serve_engine_step(struct serve_engine *e, const struct serve_batch *b,
		      struct serve_step_stats *st);

/* ---- driven by a scheduler that owns the sequences (external_kv) ---- */

/** One request's run: tokens [start, start + n_tokens) over @table. */
struct serve_compute {
	uint32_t id;
	uint32_t n_tokens;
	/** KV of [0, start) is in the table's blocks (a prefix cache hit, or computed). */
	uint64_t start;
	/** Its blocks, covering [0, start + n_tokens) (nr_blocks of them). */
	const uint32_t *table;
	uint32_t nr_blocks;
	/** 0: a new chunk; else resume the yielded one (same start and n_tokens) at this layer. */
	uint32_t resume_layer;
	/** Out: yielded after layers_done layers (at least 1); or the run sampled @token. */
	bool yielded, sampled;
	uint32_t layers_done;
	int32_t token;
};

/**
 * Compute @n runs on the workers (an external_kv engine). Each is checked
 * first (-EINVAL, -ENOENT, nothing done): a request not finished, at most
 * once, tokens within what it knows, a table long enough, a resume that
 * matches its yielded chunk. A request whose run starts below what it had
 * computed recomputes from there. A run that reaches the last known token
 * samples the next one.
 */
int serve_engine_compute(struct serve_engine *e, struct serve_compute *c, uint32_t n);
/** An external_kv request is over (the scheduler finished or aborted it). */
int serve_engine_finish(struct serve_engine *e, uint32_t id);

/** Blocks of the compute tier held by requests, and in all. */
void serve_engine_usage(const struct serve_engine *e, uint32_t tier, uint32_t *used,
			uint32_t *total);

/* ---- the built-in policy (fcfs.c) ---- */

enum serve_preempt {
	SERVE_PREEMPT_SWAP = 0,		/* swap out, recompute if the swap tier is full */
	SERVE_PREEMPT_RECOMPUTE = 1,
};

struct serve_fcfs_opts {
	/** Tokens per step (0: 256). */
	uint32_t token_budget;
	/** Longest prefill chunk (0: the budget). */
	uint32_t chunk;
	/** Most running requests (0: no limit). */
	uint32_t max_running;
	uint32_t preempt;	/* enum serve_preempt */
};

/** Room for a batch of up to @cap entries per list. */
struct serve_batch_buf {
	struct serve_batch b;
	struct serve_run *runs;
	uint32_t *drop, *swap_out, *swap_in;
	uint32_t cap;
};

int serve_batch_buf_init(struct serve_batch_buf *bb, uint32_t cap);
void serve_batch_buf_fini(struct serve_batch_buf *bb);

/**
 * FCFS (vLLM V1's shape): decodes first, then prefill chunks, within the
 * token budget; swapped requests come back before new ones are admitted;
 * when the compute tier runs short, the last admitted running request is
 * preempted (swap or recompute). Fills bb->b; returns the entries in it
 * (0: nothing to do).
 */
int serve_fcfs_plan(struct serve_engine *e, const struct serve_fcfs_opts *o,
		    struct serve_batch_buf *bb);
/** Plan and step until every request finished; *steps (may be NULL) counts the steps. */
int serve_run_all(struct serve_engine *e, const struct serve_fcfs_opts *o, uint64_t *steps);

#endif /* SERVE_ENGINE_H */
