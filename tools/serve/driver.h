/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - libaccel's scheduler (accel_sched_*) driving the engine.
 * The scheduler owns the requests' sequences in the block manager: each
 * step it says which requests run with how many tokens (the engine
 * computes them over the block tables, serve_engine_compute()), which to
 * swap out and in (move plans the driver hands to the data mover, whose
 * completions it reports back) and how requests changed state.
 * Documentation/serve.rst, "Scheduling".
 *
 * Thread safety: serve_driver_add() and serve_driver_abort() may be called
 * from any thread (an arrival makes a running prefill yield at once); every
 * other call from the one thread that drives the engine.
 */
#ifndef SERVE_DRIVER_H
#define SERVE_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <accel.h>

#include "engine.h"

struct serve_driver;

struct serve_driver_opts {
	/** An external_kv engine over @bm (tier 0 computed on, tier 1 the swap tier). */
	struct serve_engine *engine;
	struct accel_bm *bm;
	const struct accel_tier *tiers[2];
	struct accel_mover *mover;
	/** enum accel_sched_policy, enum accel_sched_preempt, enum accel_sched_victim. */
	uint32_t policy, preempt, victim;
	/**
	 * Tokens per step (0: 256), running requests (0: 256, or the tokens per
	 * step when fewer), longest chunk (0: the budget).
	 */
	uint32_t max_tokens, max_seqs, chunk_tokens;
	/** Requests known at once (0: 1024); more: -ENOSPC from serve_driver_add(). */
	uint32_t max_requests;
	/** Priority: how much more urgent a waiting request must be to preempt. */
	uint32_t priority_threshold;
	/** Fair: clients (0: 64). */
	uint32_t max_clients;
	/** Bytes of one KV block (the cost model's). */
	uint64_t block_bytes;
	/** Operator-level preemption: running prefills yield to an urgent arrival. */
	bool yields;
	/** With yields: a hook of the caller's asked first at every yield point (may be NULL). */
	serve_yield_fn also_yield;
	void *also_ctx;
	/**
	 * Non-NULL: a line per step that ran something and per swap transfer (steplog.h), after
	 * the header serve_steplog_open() wrote; the caller closes it after the driver.
	 */
	FILE *step_log;
};

/** NULL and errno (EINVAL, ENOMEM, or the scheduler's). */
struct serve_driver *serve_driver_create(const struct serve_driver_opts *o);
/** Waits for the swaps in flight, then frees every request. */
void serve_driver_destroy(struct serve_driver *d);

/**
 * A new request, waiting; *h (never 0) names it until serve_driver_release().
 * -EINVAL, -E2BIG as serve_engine_add(); -ENOSPC: max_requests known.
 */
int serve_driver_add(struct serve_driver *d, const int32_t *prompt, uint32_t n,
		     const struct serve_params *p, uint32_t *h);
/** Abort @h (at once, or when its run or swap in flight ends). */
int serve_driver_abort(struct serve_driver *d, uint32_t h);
/** Forget a finished or aborted request (-EBUSY otherwise). */
int serve_driver_release(struct serve_driver *d, uint32_t h);

/** What one serve_driver_step() did. */
struct serve_driver_step {
	uint32_t runs, tokens, sampled, yielded;
	uint32_t swaps_out, swaps_in;		/* started this step */
	uint64_t swap_out_blocks, swap_in_blocks;
	uint32_t finished;
};

/**
 * One iteration: swap completions reported, the scheduler's step, its
 * swaps handed to the mover, its runs computed and reported. Returns 1
 * when something ran or a swap is in flight, 0 when nothing can happen
 * until an arrival (idle, or every request waits on something that only
 * an arrival or a release can change), -errno on a failure.
 */
int serve_driver_step(struct serve_driver *d, struct serve_driver_step *st);
/**
 * Wait up to @timeout_ms (-1: forever) for an arrival, an abort, a swap
 * completion or one of @n @fds (-1 entries ignored) to become readable.
 */
void serve_driver_wait(struct serve_driver *d, const int *fds, uint32_t n, int timeout_ms);
/**
 * How long an engine whose step returned 0 may wait for an event, in ms:
 * -1 (forever) when no request is alive, else about a step's time, since
 * time-based decisions (slo's pacing) may let a request run without any
 * event once the clock has moved.
 */
int serve_driver_idle_ms(struct serve_driver *d);
/**
 * Step until every request finished (polling serve_driver_idle_ms() apart
 * while nothing runs); *steps (may be NULL) counts them; -EDEADLK: stuck
 * (1000 polls in a row with nothing run).
 */
int serve_driver_run_all(struct serve_driver *d, uint64_t *steps);

/** A request as the engine and the scheduler see it. */
struct serve_driver_info {
	struct serve_req_info req;	/* tokens and digests; state as enum serve_state */
	struct accel_sched_req_info sched;	/* the scheduler's accounting */
};

/** -ENOENT: no such request. The token pointers hold until the next step. */
int serve_driver_info(struct serve_driver *d, uint32_t h, struct serve_driver_info *info);
/** The next request after @h (0: the first), 0 at the end. */
uint32_t serve_driver_next(struct serve_driver *d, uint32_t h);
int serve_driver_stats(struct serve_driver *d, struct accel_sched_stats *st);
/** Blocks of a tier in use by requests (cached prefixes not counted), and in all. */
void serve_driver_usage(struct serve_driver *d, uint32_t tier, uint32_t *used, uint32_t *total);
struct accel_sched *serve_driver_sched(struct serve_driver *d);
/** The engine the driver drives. */
struct serve_engine *serve_driver_engine(struct serve_driver *d);

/**
 * A memory-pressure round (kvacceld's release request): free about @bytes
 * of the compute tier through the scheduler (cached prefixes, then
 * preemption, lowest first). *released: the bytes of the blocks freed now
 * and those the swap-outs started will free.
 */
int serve_driver_pressure(struct serve_driver *d, uint64_t bytes, uint64_t *released);

#endif /* SERVE_DRIVER_H */
