/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the scheduler (accel_sched_*): iteration-level scheduling of
 * an engine's requests over its block manager, with preemption by swap or
 * recompute. Pure logic: no device, no memory moved, no clock read (time
 * is the engine's now_ns argument, so a simulator can drive it). Included
 * by accel.h; Documentation/scheduler.rst; accel_sched_create(3).
 *
 * The engine creates the block manager (accel_bm_create()) and passes it
 * in. Tier 0 is the tier the engine computes on (its "device" tier); tier
 * 1, where the manager has one, is the host swap tier. The scheduler
 * allocates through the manager (admission, chunked prefill, decode
 * growth), commits what the engine computed, frees finished requests and
 * preempts: a swap is a block-manager move plan (accel_bm_seq_move())
 * whose runs the engine copies with the data mover (accel_mover_submit())
 * and reports with accel_sched_swap_done(); a recompute frees the blocks
 * and the request prefills again later, its generated tokens part of its
 * prompt.
 *
 * The loop: accel_sched_add() (any thread), then per iteration
 * accel_sched_step() -> compute the runs (accel_sched_should_yield()
 * between layers) -> accel_sched_update() for every run; swaps reported
 * with accel_sched_swap_done() whenever they complete. accel_sched_fd()
 * becomes readable on an arrival, an abort or a swap completion.
 *
 * Thread safety: one mutex per scheduler; every call may be made from any
 * thread. accel_sched_should_yield() takes no lock (one atomic read). The
 * block manager must not be changed behind the scheduler's back for the
 * sequences it owns.
 */
#ifndef ACCEL_SCHED_H
#define ACCEL_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "accel_bm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct accel_sched;

/** Policies (Documentation/scheduler.rst gives each one's source). */
enum accel_sched_policy {
	ACCEL_SCHED_FCFS = 0,		/* vLLM V1 */
	ACCEL_SCHED_PRIORITY = 1,	/* lowest priority preempted; SGLang's threshold */
	ACCEL_SCHED_SLO = 2,		/* FlowPrefill's sign(slack)/deadline; JITServe pacing */
	ACCEL_SCHED_FAIR = 3,		/* virtual token counters per client (VTC) */
	ACCEL_SCHED_HYBRID = 4,		/* offline fills what online leaves (HyGen) */
	ACCEL_SCHED_NR_POLICIES = 5,
};

/** How a victim is preempted. */
enum accel_sched_preempt {
	ACCEL_SCHED_PREEMPT_COST = 0,		/* swap or recompute, the cheaper (cost model) */
	ACCEL_SCHED_PREEMPT_RECOMPUTE = 1,	/* always recompute (vLLM V1) */
	ACCEL_SCHED_PREEMPT_SWAP = 2,		/* swap when tier 1 has room, else recompute */
};

/** Victim order within a policy's class. */
enum accel_sched_victim {
	ACCEL_SCHED_VICTIM_LAST = 0,		/* the last admitted first (vLLM) */
	ACCEL_SCHED_VICTIM_LEAST_COMPUTED = 1,	/* the fewest computed tokens first */
};

/** A scheduler's shape (ACCEL_OPTS()). Zero fields take the defaults named. */
struct accel_sched_config {
	size_t sz;
	/** The engine's block manager (tier 0 computed on, tier 1 host swap); required. */
	struct accel_bm *bm;
	/** enum accel_sched_policy. */
	uint32_t policy;
	/** Tokens per step, all runs together (default 2048; at least max_seqs). */
	uint32_t max_tokens;
	/** Requests running at once (default 256, or max_tokens when fewer). */
	uint32_t max_seqs;
	/** Longest prefill chunk (default max_tokens). */
	uint32_t chunk_tokens;
	/** Requests known at once, finished ones not removed included (default 65536). */
	uint32_t max_requests;
	/** enum accel_sched_preempt, enum accel_sched_victim. */
	uint32_t preempt;
	uint32_t victim;
	/** Priority: a waiting request preempts running ones more than this less urgent. */
	uint32_t priority_threshold;
	/** Cost model: bytes of one block's KV (default 16384). */
	uint64_t block_bytes;
	/** Swap bandwidth in bytes/s (0: measured from swap completions, 10 GB/s to start). */
	uint64_t swap_bw;
	/** Fixed cost of one swap transfer in ns (default 20000). */
	uint64_t swap_transfer_ns;
	/** Prefill latency model: base + per_token * tokens ns (defaults 2 ms, 50 us). */
	uint64_t prefill_base_ns;
	uint64_t prefill_token_ns;
	/** A step's duration before one is measured (default 20 ms): SLO pacing, HyGen's budget. */
	uint64_t step_ns;
	/** Fair: clients (ids 0..max_clients-1, default 64). */
	uint32_t max_clients;
	/** None defined yet: 0. */
	uint32_t flags;
};

/** Request flags. */
#define ACCEL_SCHED_REQ_OFFLINE	(1u << 0)	/* hybrid: best effort, preempted first */
/* A migrated request arriving decoding, with its KV (LIBACCEL_0.3: output, output_len, seq). */
#define ACCEL_SCHED_REQ_ADOPT	(1u << 1)
#define ACCEL_SCHED_REQ_FLAGS	(ACCEL_SCHED_REQ_OFFLINE | ACCEL_SCHED_REQ_ADOPT)

/** A new request (ACCEL_OPTS()). */
struct accel_sched_req_opts {
	size_t sz;
	/** The engine's own id, returned in runs, swaps and events. */
	uint64_t tag;
	/** The prompt (copied), 1 token at least. */
	const int32_t *prompt;
	uint64_t prompt_len;
	/** Finish after this many generated tokens (0: only when the engine says). */
	uint32_t max_output;
	/** Lower is more urgent (vLLM's convention). */
	int32_t priority;
	/** Fair: the client (below max_clients). */
	uint32_t client;
	/** ACCEL_SCHED_REQ_*. */
	uint32_t flags;
	/** Arrival time (the engine's clock, ns). */
	uint64_t arrival_ns;
	/** SLOs (0: none): time to first token, time per output token. */
	uint64_t ttft_slo_ns;
	uint64_t tpot_slo_ns;
	/** Extra keys for the block manager (accel_bm_seq_opts); copied. */
	const void *extra_keys;
	size_t extra_keys_len;
	/**
	 * ACCEL_SCHED_REQ_ADOPT (LIBACCEL_0.3; Documentation/scheduler.rst,
	 * "Migration"): the tokens it generated before (copied; at least 1,
	 * fewer than max_output), and a sequence of the block manager on tier
	 * 0 that holds the KV of all its tokens but the last (prompt_len +
	 * output_len - 1 tokens). The request is DECODING at once; the
	 * scheduler owns @seq from a successful call on (it commits its full
	 * blocks and frees it at the end), the caller keeps it on an error.
	 */
	const int32_t *output;
	uint64_t output_len;
	uint32_t seq;
	uint32_t pad;
};

/** Request states. */
enum accel_sched_state {
	ACCEL_SCHED_WAITING = 0,	/* arrived, no KV */
	ACCEL_SCHED_PREFILLING = 1,	/* running, prompt (chunks) still to compute */
	ACCEL_SCHED_DECODING = 2,	/* running, one token a step */
	ACCEL_SCHED_SWAPPING_OUT = 3,	/* its swap-out plan is being copied */
	ACCEL_SCHED_SWAPPED = 4,	/* KV on tier 1 */
	ACCEL_SCHED_SWAPPING_IN = 5,	/* its swap-in plan is being copied: not runnable */
	ACCEL_SCHED_RECOMPUTE = 6,	/* dropped for recompute: waits to prefill again */
	ACCEL_SCHED_FINISHED = 7,
	ACCEL_SCHED_ABORTED = 8,
	ACCEL_SCHED_NR_STATES = 9,
};

/** Run flags. */
#define ACCEL_SCHED_RUN_PREFILL	(1u << 0)	/* a prompt chunk (else one decode token) */
#define ACCEL_SCHED_RUN_SAMPLE	(1u << 1)	/* reaches the last known token: sample one */
#define ACCEL_SCHED_RUN_RESUME	(1u << 2)	/* a yielded chunk, from start_layer on */

/** One request to compute this step. */
struct accel_sched_run {
	uint32_t req;
	/** Its block-manager sequence (accel_sched_block_tables() or accel_bm_block_tables()). */
	uint32_t seq;
	uint64_t tag;
	/** Position of the first token (KV of [0, start) is in its blocks). */
	uint64_t start;
	/** Tokens [start, start + tokens): accel_sched_tokens() gives them. */
	uint32_t tokens;
	/** The layer to resume at (ACCEL_SCHED_RUN_RESUME), else 0. */
	uint32_t start_layer;
	uint32_t flags;
	uint32_t pad;
};

#define ACCEL_SCHED_SWAP_OUT	0
#define ACCEL_SCHED_SWAP_IN	1

/** A swap to execute: the plan's runs by accel_bm_plan_runs(), then accel_sched_swap_done(). */
struct accel_sched_swap {
	uint32_t req;
	/** ACCEL_SCHED_SWAP_OUT (tier 0 -> 1) or ACCEL_SCHED_SWAP_IN (1 -> 0). */
	uint32_t dir;
	uint64_t tag;
	uint64_t plan_id;
	uint32_t nr_runs;
	/** Blocks to copy, and blocks reused (a still-valid copy, no copy). */
	uint32_t blocks, reused;
	uint32_t pad;
};

/** A state change (from -> to), in the order they happened. */
struct accel_sched_event {
	uint32_t req;
	uint16_t from, to;	/* enum accel_sched_state */
	uint64_t tag;
	uint64_t time_ns;
};

/** A step's output: caller-provided arrays (ACCEL_OPTS(); counts written). */
struct accel_sched_out {
	size_t sz;
	/** In: room; at most max_runs requests run (a cap of its own). */
	struct accel_sched_run *runs;
	uint32_t max_runs;
	/** Out. */
	uint32_t nr_runs;
	/** In: room; swaps that do not fit wait for the next step. */
	struct accel_sched_swap *swaps;
	uint32_t max_swaps;
	uint32_t nr_swaps;
	/** In: room; events that do not fit wait (events_left). */
	struct accel_sched_event *events;
	uint32_t max_events;
	uint32_t nr_events;
	uint32_t events_left;
	/** Out: tokens of all runs (at most max_tokens). */
	uint32_t tokens;
};

/** What the engine computed for one run (ACCEL_OPTS()). */
#define ACCEL_SCHED_RES_TOKEN		(1u << 0)	/* token is the sampled one */
#define ACCEL_SCHED_RES_FINISHED	(1u << 1)	/* stop: end of sequence */
#define ACCEL_SCHED_RES_YIELDED		(1u << 2)	/* a prefill stopped at layers_done */
#define ACCEL_SCHED_RES_FLAGS		0x7u

struct accel_sched_result {
	size_t sz;
	/** Tokens of the run whose KV is written in every layer (0 .. run's tokens). */
	uint32_t computed;
	/** Yielded: the layers of the chunk finished (computed 0). */
	uint32_t layers_done;
	/** The sampled token (ACCEL_SCHED_RES_TOKEN; the run had ACCEL_SCHED_RUN_SAMPLE). */
	int32_t token;
	uint32_t flags;
};

/** A request's accounting (ACCEL_OPTS(); written up to sz). Times in the engine's ns. */
struct accel_sched_req_info {
	size_t sz;
	uint64_t tag;
	uint32_t state;
	uint32_t client;
	int32_t priority;
	uint32_t seq;		/* UINT32_MAX: none */
	uint64_t prompt_len;
	uint64_t nr_tokens;	/* known: prompt + generated */
	uint64_t computed;	/* with KV in its blocks */
	uint64_t output_tokens;
	uint64_t arrival_ns;
	uint64_t first_sched_ns;	/* 0: not yet */
	uint64_t first_token_ns;	/* 0: not yet */
	uint64_t last_token_ns;
	uint64_t finish_ns;
	/** first_sched - arrival. */
	uint64_t queue_ns;
	/** Inter-token times after the first: sum, max, count (TPOT = sum / count). */
	uint64_t tpot_sum_ns, tpot_max_ns;
	uint64_t tpot_count;
	/** Preemptions by kind, and time spent preempted (swapped or dropped). */
	uint32_t swaps_out, recomputes;
	uint32_t yields, pad;
	uint64_t stall_ns;
	uint64_t recomputed_tokens;
	uint64_t swapped_bytes;	/* out and in */
};

/** Totals (ACCEL_OPTS(); written up to sz). */
struct accel_sched_stats {
	size_t sz;
	uint32_t requests;			/* known */
	uint32_t in_state[ACCEL_SCHED_NR_STATES];
	uint64_t steps;
	uint64_t tokens;			/* computed, all runs */
	uint64_t swaps_out, swaps_in, swap_failures;
	uint64_t recomputes, yields;
	uint64_t recomputed_tokens;
	uint64_t swapped_bytes;
	uint64_t finished, aborted;
	uint64_t swap_bw;			/* in use, bytes/s */
	uint64_t step_ns;			/* in use (measured) */
	/** Requests taken out by accel_sched_detach() and added with ACCEL_SCHED_REQ_ADOPT. */
	uint64_t migrated_out, migrated_in;
};

/** A pressure round's outcome (ACCEL_OPTS(); written up to sz). */
struct accel_sched_release_out {
	size_t sz;
	/** Blocks of the tier freed now, and freed once the swap-outs started finish. */
	uint64_t freed;
	uint64_t pending;
	/** Cached blocks dropped; requests swapped out; requests dropped for recompute. */
	uint64_t dropped_cached;
	uint32_t swapped_out, recomputed;
};

/**
 * A new scheduler over @cfg->bm (which must outlive it). NULL and errno:
 * EINVAL (a bad field), E2BIG (unknown non-zero fields past sz), ENOMEM,
 * or eventfd's error.
 */
struct accel_sched *accel_sched_create(const struct accel_sched_config *cfg);
/** Frees every request's sequence (pending plans are undone first). */
void accel_sched_destroy(struct accel_sched *sched);
/** The eventfd: readable on an arrival, an abort or a swap completion. */
int accel_sched_fd(struct accel_sched *sched);

/** A new request, WAITING: its id into *req. -ENOSPC: max_requests known. */
int accel_sched_add(struct accel_sched *sched, const struct accel_sched_req_opts *opts,
		    uint32_t *req);
/** Abort: at once, or at its update or swap completion if one is outstanding. */
int accel_sched_abort(struct accel_sched *sched, uint32_t req, uint64_t now_ns);
/** Forget a finished or aborted request (-EBUSY otherwise). */
int accel_sched_remove(struct accel_sched *sched, uint32_t req);
/**
 * Live migration's source side (LIBACCEL_0.3): take decoding request @req
 * out of the scheduler between steps, with its KV. Its block-manager
 * sequence goes to *seq (the caller's from now on: hand it on, free it, or
 * give it back with ACCEL_SCHED_REQ_ADOPT); the request is forgotten, as
 * by accel_sched_remove(). Read its tokens (accel_sched_tokens()) and
 * accounting (accel_sched_req_info()) before. -ENOENT: no such request;
 * -EBUSY: in the last step's runs without an update yet, or an abort
 * pending; -EINVAL: not DECODING (waiting, prefilling, swapped, ended).
 */
int accel_sched_detach(struct accel_sched *sched, uint32_t req, uint64_t now_ns, uint32_t *seq);

/**
 * One iteration: which requests run with how many tokens, which to swap
 * out and in, the state changes since the last step. -EBUSY: a run of the
 * last step has no accel_sched_update() yet.
 */
int accel_sched_step(struct accel_sched *sched, uint64_t now_ns, struct accel_sched_out *out);
/** What the engine computed for @req's run of the last step. */
int accel_sched_update(struct accel_sched *sched, uint32_t req,
		       const struct accel_sched_result *res, uint64_t now_ns);
/** A swap's plan is copied (@status 0) or failed (-errno: undone). */
int accel_sched_swap_done(struct accel_sched *sched, uint32_t req, int status, uint64_t now_ns);

/**
 * Whether the prefills running should stop at the next layer boundary: a
 * request of a higher class arrived for the prefill slot. One atomic read.
 */
int accel_sched_should_yield(struct accel_sched *sched);

/** The block tables of @n runs into one array, as accel_bm_block_tables(). */
int accel_sched_block_tables(struct accel_sched *sched, const struct accel_sched_run *runs,
			     uint32_t n, uint32_t *offsets, uint32_t *ids, uint32_t max_ids);
/** @req's known tokens [first, first + n) into @tokens (-ERANGE past them). */
int accel_sched_tokens(struct accel_sched *sched, uint32_t req, uint64_t first, uint32_t n,
		       int32_t *tokens);

/**
 * A pressure round: make up to @blocks blocks of @tier free, cached
 * prefixes first, then by preempting requests (lowest first by the
 * policy's victim order; tier 0 by swap or recompute, tier 1 by dropping
 * swapped requests for recompute). Swaps started here come with the next
 * step. @out may be NULL. Returns 0.
 */
int accel_sched_release(struct accel_sched *sched, uint32_t tier, uint64_t blocks,
			uint64_t now_ns, struct accel_sched_release_out *out);

int accel_sched_req_info(struct accel_sched *sched, uint32_t req,
			 struct accel_sched_req_info *info);
int accel_sched_stats(struct accel_sched *sched, struct accel_sched_stats *st);
/** "fcfs", "priority", "slo", "fair", "hybrid"; NULL for an unknown value. */
const char *accel_sched_policy_name(uint32_t policy);

#ifdef __cplusplus
}
#endif

#endif /* ACCEL_SCHED_H */
