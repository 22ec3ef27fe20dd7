/* SPDX-License-Identifier: MIT */
/*
 * libaccel - the scheduler's internals (accel_sched.h): requests, the
 * queues (waiting and swapped: a heap in the policy's order, or per-client
 * FIFOs for fair), the running list in admission order, the policies' ops,
 * and the functions the scheduler's files share (sched_*, hidden: never
 * exported). Everything under sched->lock but the yield flag (an atomic).
 *
 * The files: sched_req.c (creation, requests, their end, events),
 * sched_queue.c (the queues and the running list), sched_preempt.c
 * (victims, swap or recompute, preemption), sched_step.c (the step),
 * sched_report.c (what the engine reports), sched_info.c (reading),
 * sched_pressure.c (memory pressure), sched_policy.c (the policies),
 * sched_migrate.c (live migration: detach and adopt).
 */
#ifndef ACCEL_SCHED_INTERNAL_H
#define ACCEL_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../internal.h"

#define SREQ_NONE	UINT32_MAX

/* The fields a decode's step and update read first: its first two cache lines. */
struct sreq {
	bool used;
	bool inflight;		/* in the last step's runs, no update yet */
	bool abort_pending;
	uint8_t state;		/* enum accel_sched_state */
	uint64_t tag;
	int32_t *tok;		/* prompt + generated */
	uint64_t nr_tok;
	uint64_t admit_seq;	/* the victim order's last tie-break */
	uint64_t first_sched_ns;
	uint64_t computed;	/* tokens with KV in the blocks */
	uint64_t bm_tok;	/* tokens the block manager holds (>= computed while scheduled) */
	uint64_t max_computed;	/* highest computed ever: below it, a prefill recomputes */
	uint64_t output;
	uint32_t max_output;
	int32_t prio;
	uint32_t client;
	uint32_t flags;
	uint64_t deadline;	/* arrival + ttft_slo, 0: none */
	uint64_t tpot_slo;
	uint32_t seq;		/* block-manager sequence, SREQ_NONE */
	uint32_t ridx;		/* in sched->running, SREQ_NONE */
	uint32_t sched_tokens;	/* this step's run */
	uint32_t run_idx;	/* in the caller's runs while scheduled this step */
	uint64_t prompt_len;
	void *extra;
	size_t extra_len;
	struct accel_bm_key *keys;	/* of tok's full blocks */
	uint32_t nr_keys, cap_keys;
	uint32_t committed;	/* blocks committed */
	uint32_t host_valid;	/* leading full blocks with a valid copy on tier 1 */
	uint64_t cap_tok;
	uint64_t arrive_seq;
	/* Queue position: heap index, or fair FIFO links. */
	uint32_t hidx;
	uint32_t qprev, qnext;
	uint8_t hclass;		/* slo: 0 feasible, 1 no SLO, 2 late */
	uint8_t inq;		/* 0 none, 1 waiting, 2 swapped */
	uint32_t yield_tokens, yield_layer;
	uint64_t plan_id;
	uint32_t plan_blocks, plan_reused, plan_tier0;
	uint64_t swap_start;
	uint64_t preempt_ns;	/* 0: not preempted */
	uint64_t preempt_step;	/* the step (steps + 1) it was last preempted in */
	/* accounting */
	uint64_t arrival_ns, first_token_ns, last_token_ns, finish_ns;
	uint64_t tpot_sum, tpot_max, tpot_count;
	uint32_t swaps_out, recomputes, yields;
	uint64_t stall_ns, recomputed_tokens, swapped_bytes;
};

struct squeue {
	uint8_t id;		/* 1 waiting, 2 swapped */
	uint32_t *heap;
	uint32_t n;
	/* fair: per client */
	uint32_t *head, *tail, *count;
};

struct accel_sched;

struct sched_ops {
	const char *name;
	/* @a goes before @b in the waiting and swapped queues. */
	bool (*before)(const struct accel_sched *s, const struct sreq *a, const struct sreq *b);
	/* The policy's class order of victims: <0 @a is preempted before @b, >0 after, 0 tie. */
	int (*victim_cmp)(const struct accel_sched *s, const struct sreq *a, const struct sreq *b);
	/* @a (waiting or arriving) may preempt running @b (NULL: never). */
	bool (*outranks)(const struct accel_sched *s, const struct sreq *a, const struct sreq *b);
	/* sched_pick_victim() with victim_cmp inlined (sched_victim_scan()). */
	uint32_t (*pick_victim)(struct accel_sched *s, bool in_step);
};

extern const struct sched_ops sched_ops[ACCEL_SCHED_NR_POLICIES];

struct accel_sched {
	pthread_mutex_t lock;
	struct accel_bm *bm;
	uint32_t bt;		/* tokens per block */
	int bt_shift;		/* log2(bt) where bt is a power of two, else -1 */
	uint32_t nr_tiers;
	struct accel_sched_config cfg;
	const struct sched_ops *ops;
	int efd;
	atomic_int yield;
	uint64_t now;

	struct sreq *req;
	uint32_t max_req, nr_used;
	uint32_t *free_ids;
	uint32_t nr_free_ids;

	uint32_t *running;	/* admission order */
	uint32_t nr_running;
	/*
	 * hybrid: the tightest TPOT of the running online requests that have
	 * one (UINT64_MAX: none), and how many have it; recounted from the
	 * running list where the last of them left (tpot_stale).
	 */
	uint64_t tpot_min;
	uint32_t tpot_min_n;
	bool tpot_stale;
	uint32_t nr_swapping_in;
	uint32_t *snap;		/* a copy of running for a pass */
	uint32_t *pre;		/* the step's prefill candidates */
	struct squeue waitq, swapq;
	uint32_t nr_inflight;
	uint32_t nr_prefill_runs;	/* the step's, while it runs */
	uint32_t yield_ref;	/* the most preemptable prefill in flight */
	bool admit_blocked;	/* the last step's admissions or a running chunk were short of blocks */

	/* Swaps to hand out with the next step, in order. */
	uint32_t *pend_swaps;
	uint32_t nr_pend_swaps;
	uint64_t pending_free0;	/* tier-0 blocks swap-outs in flight free at their end */

	struct accel_sched_event *ev;
	uint32_t ev_head, ev_n, ev_cap;

	uint64_t *vtc;		/* fair: per client */
	uint32_t *client_active;	/* fair: requests waiting or running */

	uint64_t seqno;
	uint64_t last_now;
	uint64_t step_ns, swap_bw;
	struct accel_sched_stats st;
};

/* ---- small helpers ---- */

static inline struct sreq *R(struct accel_sched *s, uint32_t id)
{
	return &s->req[id];
}

static inline uint32_t rid(const struct accel_sched *s, const struct sreq *r)
{
	return (uint32_t)(r - s->req);
}

static inline bool is_fair(const struct accel_sched *s)
{
	return s->cfg.policy == ACCEL_SCHED_FAIR;
}

static inline bool q_before(struct accel_sched *s, uint32_t a, uint32_t b)
{
	return s->ops->before(s, R(s, a), R(s, b));
}

static inline uint64_t predict_prefill(const struct accel_sched *s, uint64_t tokens)
{
	return s->cfg.prefill_base_ns + s->cfg.prefill_token_ns * tokens;
}

static inline uint32_t nr_active(const struct accel_sched *s)
{
	return s->nr_running + s->nr_swapping_in;
}

/* Blocks of @tokens (a shift where a block is a power of two tokens: no division). */
static inline uint32_t blocks_of(const struct accel_sched *s, uint64_t tokens)
{
	if (s->bt_shift >= 0)
		return (uint32_t)((tokens + s->bt - 1) >> s->bt_shift);
	return (uint32_t)((tokens + s->bt - 1) / s->bt);
}

/* Full blocks of @tokens. */
static inline uint64_t full_blocks(const struct accel_sched *s, uint64_t tokens)
{
	return s->bt_shift >= 0 ? tokens >> s->bt_shift : tokens / s->bt;
}

static inline unsigned int run_state(const struct sreq *r)
{
	return r->output && r->computed + 1 == r->nr_tok ? ACCEL_SCHED_DECODING :
	       ACCEL_SCHED_PREFILLING;
}

/*
 * The victim order: the policy's class order @cls, then the configured one
 * (the last admitted, or the least computed, first). A total order: two
 * running requests were never admitted at once. Inlined where @cls is
 * known (sched_victim_scan()); sched_victim_cmp() is it over the ops.
 */
static inline __attribute__((always_inline)) int
sched_victim_order(const struct accel_sched *s, const struct sreq *a, const struct sreq *b,
		   int (*cls)(const struct accel_sched *, const struct sreq *, const struct sreq *))
{
	int c = cls(s, a, b);

	if (c)
		return c;
	if (s->cfg.victim == ACCEL_SCHED_VICTIM_LEAST_COMPUTED && a->computed != b->computed)
		return a->computed < b->computed ? -1 : 1;
	return a->admit_seq > b->admit_seq ? -1 : a->admit_seq < b->admit_seq ? 1 : 0;
}

/* The running request to preempt first (@in_step: in flight too), SREQ_NONE. */
static inline __attribute__((always_inline)) uint32_t
sched_victim_scan(struct accel_sched *s, bool in_step,
		  int (*cls)(const struct accel_sched *, const struct sreq *, const struct sreq *))
{
	const struct sreq *best = NULL;
	uint32_t i, id = SREQ_NONE;

	for (i = 0; i < s->nr_running; i++) {
		const struct sreq *r = R(s, s->running[i]);

		if (r->inflight && !in_step)
			continue;	/* computing now (pressure between step and update) */
		if (!best || sched_victim_order(s, r, best, cls) < 0) {
			best = r;
			id = s->running[i];
		}
	}
	return id;
}

/* ---- sched_req.c: requests, their end, events ---- */

/* Make the scheduler's fd readable (work for a step). */
void sched_wake(struct accel_sched *s);
/* Move @r to state @st (counted, and an event). */
void sched_set_state(struct accel_sched *s, struct sreq *r, unsigned int st);
/* Free @r's block-manager sequence: nothing computed from here. */
void sched_seq_drop(struct accel_sched *s, struct sreq *r);
/* Account the stall of a preempted @r that runs again. */
void sched_resume_from_stall(struct accel_sched *s, struct sreq *r);
/* The request @id in use, NULL. */
struct sreq *sched_req_get(struct accel_sched *s, uint32_t id);
/* End @r: finished or aborted (@st). */
void sched_finish(struct accel_sched *s, struct sreq *r, unsigned int st);
/* Forget @r (its sequence already freed or handed on): its id is free again. */
void sched_forget(struct accel_sched *s, struct sreq *r);

/* ---- sched_migrate.c: requests that leave with their KV, and arrive with it ---- */

/* ACCEL_SCHED_REQ_ADOPT's checks of @o's fields, before the lock: 0 or -errno. */
int sched_adopt_check(struct accel_sched *s, const struct accel_sched_req_opts *o);
/* Under the lock: o->seq holds what @o says, and there is room to run it. */
int sched_adopt_seq(struct accel_sched *s, const struct accel_sched_req_opts *o);
/* A new request @r made from @o (tokens copied) starts decoding on o->seq. */
void sched_adopt_place(struct accel_sched *s, struct sreq *r, const struct accel_sched_req_opts *o);

/* ---- sched_queue.c: the queues and the running list ---- */

int sched_q_init(struct squeue *q, uint8_t id, uint32_t max_req, uint32_t clients);
void sched_q_fini(struct squeue *q);
void sched_q_push(struct accel_sched *s, struct squeue *q, struct sreq *r);
void sched_q_remove(struct accel_sched *s, struct squeue *q, struct sreq *r);
uint32_t sched_q_peek(struct accel_sched *s, struct squeue *q);
/* fair: the smallest virtual counter of the active clients but @except, UINT64_MAX. */
uint64_t sched_fair_min_active(const struct accel_sched *s, uint32_t except);
void sched_running_add(struct accel_sched *s, struct sreq *r);
void sched_running_del(struct accel_sched *s, struct sreq *r);
/* hybrid: the tightest TPOT of the running online requests, UINT64_MAX: none. */
uint64_t sched_tpot_min(struct accel_sched *s);

/* ---- sched_preempt.c: victims, swap or recompute, preemption ---- */

int sched_victim_cmp(const struct accel_sched *s, const struct sreq *a, const struct sreq *b);
uint32_t sched_pick_victim(struct accel_sched *s, bool in_step);
/* Queue @r's swap plan for the next step's output. */
void sched_pend_swap(struct accel_sched *s, struct sreq *r);
void sched_to_recompute(struct accel_sched *s, struct sreq *r);
void sched_preempt(struct accel_sched *s, struct sreq *r, struct accel_sched_out *out,
		   uint32_t *budget);
int sched_preempt_for(struct accel_sched *s, struct sreq *r, bool running,
		      struct accel_sched_out *out, uint32_t *budget);

#endif
