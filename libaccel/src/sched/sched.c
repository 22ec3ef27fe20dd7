// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler (accel_sched.h; Documentation/scheduler.rst).
 *
 * A step: (1) the running decodes in admission order (paced under slo),
 * (2) prefills in the policy's order, running chunks, swap-ins and
 * waiting requests merged, until the token budget, the cap on running
 * requests or the blocks run out. A running request short of blocks
 * preempts the policy's worst running request (itself, if that is it);
 * a waiting one preempts only where the policy's outranks() says so.
 * After a growth preemption nothing new is admitted in that step (vLLM).
 *
 * Lazy appends: a run whose tokens fit in the blocks the sequence already
 * has is not appended to the block manager until its update (its KV goes
 * into slots of its own last block, which nobody else reads); only runs
 * that need a new block append at the step.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

#define DEF_MAX_TOKENS		2048
#define DEF_MAX_SEQS		256
#define DEF_MAX_REQUESTS	65536
#define MAX_REQUESTS		(1u << 24)
#define DEF_BLOCK_BYTES		16384
#define DEF_SWAP_BW		10000000000ull
#define DEF_TRANSFER_NS		20000
#define DEF_PREFILL_BASE_NS	2000000
#define DEF_PREFILL_TOKEN_NS	50000
#define DEF_STEP_NS		20000000
#define DEF_MAX_CLIENTS		64
#define MAX_CLIENTS		65536
/* VTC's weights: input tokens 1, output tokens 2. */
#define VTC_IN			1
#define VTC_OUT			2

static inline struct sreq *R(struct accel_sched *s, uint32_t id)
{
	return &s->req[id];
}

static uint32_t rid(const struct accel_sched *s, const struct sreq *r)
{
	return (uint32_t)(r - s->req);
}

static void wake(struct accel_sched *s)
{
	uint64_t one = 1;

	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the fd readable already. */
	}
}

/* ---- events ---- */

static void ev_push(struct accel_sched *s, struct sreq *r, unsigned int from, unsigned int to)
{
	struct accel_sched_event *e;

	if (s->ev_n == s->ev_cap) {
		uint32_t cap = s->ev_cap ? s->ev_cap * 2 : 256, i;
		struct accel_sched_event *v = malloc(cap * sizeof(*v));

		if (!v) {
			/* Lose the oldest rather than the state change itself. */
			s->ev_head = (s->ev_head + 1) % s->ev_cap;
			s->ev_n--;
		} else {
			for (i = 0; i < s->ev_n; i++)
				v[i] = s->ev[(s->ev_head + i) % s->ev_cap];
			free(s->ev);
			s->ev = v;
			s->ev_cap = cap;
			s->ev_head = 0;
		}
	}
	e = &s->ev[(s->ev_head + s->ev_n) % s->ev_cap];
	e->req = rid(s, r);
	e->from = (uint16_t)from;
	e->to = (uint16_t)to;
	e->tag = r->tag;
	e->time_ns = s->now;
	s->ev_n++;
}

static void set_state(struct accel_sched *s, struct sreq *r, unsigned int st)
{
	if (r->state == st)
		return;
	s->st.in_state[r->state]--;
	s->st.in_state[st]++;
	ev_push(s, r, r->state, st);
	r->state = (uint8_t)st;
}

/* ---- queues: a heap in the policy's order, or per-client FIFOs (fair) ---- */

static bool is_fair(const struct accel_sched *s)
{
	return s->cfg.policy == ACCEL_SCHED_FAIR;
}

static bool q_before(struct accel_sched *s, uint32_t a, uint32_t b)
{
	return s->ops->before(s, R(s, a), R(s, b));
}

static void heap_set(struct accel_sched *s, struct squeue *q, uint32_t i, uint32_t id)
{
	q->heap[i] = id;
	R(s, id)->hidx = i;
}

static void heap_up(struct accel_sched *s, struct squeue *q, uint32_t i)
{
	uint32_t id = q->heap[i];

	while (i) {
		uint32_t p = (i - 1) / 2;

		if (!q_before(s, id, q->heap[p]))
			break;
		heap_set(s, q, i, q->heap[p]);
		i = p;
	}
	heap_set(s, q, i, id);
}

static void heap_down(struct accel_sched *s, struct squeue *q, uint32_t i)
{
	uint32_t id = q->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= q->n)
			break;
		if (c + 1 < q->n && q_before(s, q->heap[c + 1], q->heap[c]))
			c++;
		if (!q_before(s, q->heap[c], id))
			break;
		heap_set(s, q, i, q->heap[c]);
		i = c;
	}
	heap_set(s, q, i, id);
}

static uint64_t predict_prefill(const struct accel_sched *s, uint64_t tokens)
{
	return s->cfg.prefill_base_ns + s->cfg.prefill_token_ns * tokens;
}

static uint8_t slo_class(const struct accel_sched *s, const struct sreq *r)
{
	uint64_t need;

	if (!r->deadline)
		return 1;
	need = s->now + predict_prefill(s, r->nr_tok - r->computed);
	return need <= r->deadline ? 0 : 2;
}

static uint64_t fair_min_active(const struct accel_sched *s, uint32_t except)
{
	uint64_t m = UINT64_MAX;
	uint32_t c;

	for (c = 0; c < s->cfg.max_clients; c++)
		if (c != except && s->client_active[c] && s->vtc[c] < m)
			m = s->vtc[c];
	return m;
}

static void q_push(struct accel_sched *s, struct squeue *q, struct sreq *r)
{
	uint32_t id = rid(s, r);

	r->inq = q->id;
	if (is_fair(s)) {
		uint32_t c = r->client;

		r->qnext = SREQ_NONE;
		r->qprev = q->tail[c];
		if (q->tail[c] != SREQ_NONE)
			R(s, q->tail[c])->qnext = id;
		else
			q->head[c] = id;
		q->tail[c] = id;
		q->count[c]++;
		q->n++;
		return;
	}
	if (s->cfg.policy == ACCEL_SCHED_SLO)
		r->hclass = slo_class(s, r);
	q->heap[q->n++] = id;
	heap_up(s, q, q->n - 1);
}

static void q_remove(struct accel_sched *s, struct squeue *q, struct sreq *r)
{
	uint32_t i, last;

	r->inq = 0;
	if (is_fair(s)) {
		uint32_t c = r->client;

		if (r->qprev != SREQ_NONE)
			R(s, r->qprev)->qnext = r->qnext;
		else
			q->head[c] = r->qnext;
		if (r->qnext != SREQ_NONE)
			R(s, r->qnext)->qprev = r->qprev;
		else
			q->tail[c] = r->qprev;
		q->count[c]--;
		q->n--;
		return;
	}
	i = r->hidx;
	last = q->heap[--q->n];
	if (i == q->n)
		return;
	heap_set(s, q, i, last);
	heap_down(s, q, i);
	heap_up(s, q, R(s, last)->hidx);
}

/* The queue's first request, or SREQ_NONE. */
static uint32_t q_peek(struct accel_sched *s, struct squeue *q)
{
	if (!q->n)
		return SREQ_NONE;
	if (is_fair(s)) {
		uint32_t c, best = SREQ_NONE;

		for (c = 0; c < s->cfg.max_clients; c++) {
			if (!q->count[c])
				continue;
			if (best == SREQ_NONE || s->vtc[c] < s->vtc[best])
				best = c;
		}
		return q->head[best];
	}
	if (s->cfg.policy == ACCEL_SCHED_SLO) {
		/* A feasible request whose slack ran out is late from now on. */
		while (R(s, q->heap[0])->hclass == 0 && slo_class(s, R(s, q->heap[0])) == 2) {
			R(s, q->heap[0])->hclass = 2;
			heap_down(s, q, 0);
		}
	}
	return q->heap[0];
}

/* ---- the running list ---- */

static void running_add(struct accel_sched *s, struct sreq *r)
{
	r->ridx = s->nr_running;
	r->admit_seq = ++s->seqno;
	s->running[s->nr_running++] = rid(s, r);
}

static void running_del(struct accel_sched *s, struct sreq *r)
{
	uint32_t i;

	if (r->ridx == SREQ_NONE)
		return;
	for (i = r->ridx; i + 1 < s->nr_running; i++) {
		s->running[i] = s->running[i + 1];
		R(s, s->running[i])->ridx = i;
	}
	s->nr_running--;
	r->ridx = SREQ_NONE;
}

static uint32_t nr_active(const struct accel_sched *s)
{
	return s->nr_running + s->nr_swapping_in;
}

/* ---- requests ---- */

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

/* The keys of the full blocks of r's known tokens. */
static int keys_ensure(struct accel_sched *s, struct sreq *r)
{
	uint64_t need = r->nr_tok / s->bt;
	int ret;

	if (need > INT32_MAX)
		return -E2BIG;
	if (need <= r->nr_keys)
		return 0;
	if (need > r->cap_keys) {
		uint32_t cap = (uint32_t)need + 8;
		struct accel_bm_key *k = realloc(r->keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		r->keys = k;
		r->cap_keys = cap;
	}
	ret = accel_bm_keys(s->bm, r->nr_keys ? &r->keys[r->nr_keys - 1] : NULL,
			    r->tok + (uint64_t)r->nr_keys * s->bt, (need - r->nr_keys) * s->bt,
			    r->extra, r->extra_len, r->keys + r->nr_keys);
	if (ret < 0)
		return ret;
	r->nr_keys = (uint32_t)need;
	return 0;
}

static void seq_drop(struct accel_sched *s, struct sreq *r)
{
	if (r->seq != SREQ_NONE)
		accel_bm_seq_free(s->bm, r->seq);
	r->seq = SREQ_NONE;
	r->bm_tok = 0;
	r->computed = 0;
	r->committed = 0;
	r->host_valid = 0;
	r->yield_tokens = 0;
	r->yield_layer = 0;
}

static uint32_t blocks_of(const struct accel_sched *s, uint64_t tokens)
{
	return (uint32_t)((tokens + s->bt - 1) / s->bt);
}

/* ---- preemption ---- */

static int victim_cmp(const struct accel_sched *s, const struct sreq *a, const struct sreq *b)
{
	int c = s->ops->victim_cmp(s, a, b);

	if (c)
		return c;
	if (s->cfg.victim == ACCEL_SCHED_VICTIM_LEAST_COMPUTED && a->computed != b->computed)
		return a->computed < b->computed ? -1 : 1;
	return a->admit_seq > b->admit_seq ? -1 : a->admit_seq < b->admit_seq ? 1 : 0;
}

/* The running request to preempt first (not in flight), SREQ_NONE. */
static uint32_t pick_victim(struct accel_sched *s, bool in_step)
{
	uint32_t i, best = SREQ_NONE;

	for (i = 0; i < s->nr_running; i++) {
		struct sreq *r = R(s, s->running[i]);

		if (r->inflight && !in_step)
			continue;	/* computing now (pressure between step and update) */
		if (best == SREQ_NONE || victim_cmp(s, r, R(s, best)) < 0)
			best = s->running[i];
	}
	return best;
}

/* Whether to swap @r rather than recompute it (the cost model). */
static bool swap_cheaper(const struct accel_sched *s, const struct sreq *r)
{
	uint64_t blocks = blocks_of(s, r->computed), out, swap_ns, rec_ns;

	if (s->nr_tiers < 2 || s->cfg.preempt == ACCEL_SCHED_PREEMPT_RECOMPUTE || !blocks)
		return false;
	if (s->cfg.preempt == ACCEL_SCHED_PREEMPT_SWAP)
		return true;
	/* Out: what is not on the host already; in: everything (at worst). */
	out = blocks - (r->host_valid < blocks ? r->host_valid : blocks);
	swap_ns = 2 * s->cfg.swap_transfer_ns +
		  (uint64_t)((double)(out + blocks) * (double)s->cfg.block_bytes * 1e9 /
			     (double)s->swap_bw);
	rec_ns = predict_prefill(s, r->computed);
	return swap_ns < rec_ns;
}

static void pend_swap(struct accel_sched *s, struct sreq *r)
{
	s->pend_swaps[s->nr_pend_swaps++] = rid(s, r);
}

/* Take @r out of this step's runs (a victim scheduled earlier in the step). */
static void unschedule(struct accel_sched *s, struct sreq *r, struct accel_sched_out *out,
		       uint32_t *budget)
{
	struct accel_sched_run *runs = out->runs;
	uint32_t i = r->run_idx, last = out->nr_runs - 1;
	uint64_t keep = r->computed + r->yield_tokens;

	if (r->bm_tok > keep) {
		accel_bm_truncate(s->bm, r->seq, r->bm_tok - keep);
		r->bm_tok = keep;
	}
	*budget += r->sched_tokens;
	out->tokens -= r->sched_tokens;
	if (i != last) {
		runs[i] = runs[last];
		R(s, runs[i].req)->run_idx = i;
	}
	out->nr_runs--;
	r->run_idx = SREQ_NONE;
	r->sched_tokens = 0;
	r->inflight = false;
	s->nr_inflight--;
}

static void to_recompute(struct accel_sched *s, struct sreq *r)
{
	if (r->computed)
		r->recomputes++, s->st.recomputes++;
	seq_drop(s, r);
	set_state(s, r, ACCEL_SCHED_RECOMPUTE);
	q_push(s, &s->waitq, r);
}

/*
 * Preempt running @r: swap it out (a plan the engine executes) or drop it
 * for recompute, by the cost model.
 */
static void preempt(struct accel_sched *s, struct sreq *r, struct accel_sched_out *out,
		    uint32_t *budget)
{
	if (r->run_idx != SREQ_NONE && out)
		unschedule(s, r, out, budget);
	running_del(s, r);
	r->preempt_ns = s->now ? s->now : 1;
	r->preempt_step = s->st.steps + 1;
	if (r->yield_tokens) {
		/* The layers a yielded chunk finished are lost with it. */
		accel_bm_truncate(s->bm, r->seq, r->yield_tokens);
		r->bm_tok -= r->yield_tokens;
		r->yield_tokens = 0;
		r->yield_layer = 0;
	}
	if (r->bm_tok > r->computed) {
		accel_bm_truncate(s->bm, r->seq, r->bm_tok - r->computed);
		r->bm_tok = r->computed;
	}
	if (swap_cheaper(s, r) && s->nr_pend_swaps < s->max_req) {
		struct accel_bm_plan plan = { .sz = sizeof(plan) };
		uint32_t blocks0 = blocks_of(s, r->bm_tok);

		if (!accel_bm_seq_move(s->bm, r->seq, 1, &plan)) {
			r->swaps_out++;
			s->st.swaps_out++;
			if (!plan.id) {
				set_state(s, r, ACCEL_SCHED_SWAPPED);
				q_push(s, &s->swapq, r);
				return;
			}
			r->plan_id = plan.id;
			r->plan_blocks = plan.blocks;
			r->plan_reused = plan.reused;
			r->plan_tier0 = blocks0;
			r->swap_start = s->now;
			s->pending_free0 += blocks0;
			set_state(s, r, ACCEL_SCHED_SWAPPING_OUT);
			pend_swap(s, r);
			return;
		}
	}
	to_recompute(s, r);
}

/*
 * Preempt one request for @r. @running: r is running and short of blocks
 * (the worst running request goes, r itself if it is the worst); else r
 * waits and only a request it outranks goes. Returns 0 none, 1 another,
 * 2 r itself.
 */
static int preempt_for(struct accel_sched *s, struct sreq *r, bool running,
		       struct accel_sched_out *out, uint32_t *budget)
{
	uint32_t v = pick_victim(s, true);

	if (v == SREQ_NONE)
		return 0;
	/* A waiting request outranks only victims its queue would put after it. */
	if (!running && (!s->ops->outranks || !s->ops->outranks(s, r, R(s, v)) ||
			 s->ops->before(s, R(s, v), r)))
		return 0;
	preempt(s, R(s, v), out, budget);
	return R(s, v) == r ? 2 : 1;
}

/* ---- allocation ---- */

/* Blocks for r's tokens [computed, computed + k): append now only if a block is needed. */
static int grow(struct accel_sched *s, struct sreq *r, uint32_t k)
{
	uint64_t end = r->computed + k, room = (uint64_t)blocks_of(s, r->bm_tok) * s->bt;
	struct accel_bm_plan plan = { .sz = sizeof(plan) };
	int ret;

	if (end <= room)
		return 0;
	ret = accel_bm_append(s->bm, r->seq, r->tok + r->bm_tok, end - r->bm_tok, NULL, &plan);
	if (ret)
		return ret;
	if (plan.id) {
		/* A shared tail: never ours (the scheduler shares only full blocks). */
		accel_bm_plan_done(s->bm, plan.id, -ECANCELED);
		return -EIO;
	}
	r->bm_tok = end;
	return 0;
}

/* Start r's sequence with its first chunk of up to @k tokens (prefix cache hits free). */
static int admit(struct accel_sched *s, struct sreq *r, uint32_t k, uint32_t *scheduled)
{
	struct accel_bm_seq_opts so = { .sz = sizeof(so), .tier = 0, .extra_keys = r->extra,
					.extra_keys_len = r->extra_len };
	struct accel_bm_plan plan = { .sz = sizeof(plan) };
	uint32_t hits[ACCEL_BM_TIERS_MAX] = { 0 };
	uint64_t h, n, cached = 0, cap;
	int ret;

	if (r->seq == SREQ_NONE) {
		ret = accel_bm_seq_create(s->bm, &so, &r->seq);
		if (ret) {
			r->seq = SREQ_NONE;
			return ret;
		}
	}
	ret = keys_ensure(s, r);
	if (ret)
		return ret;
	if (r->nr_keys) {
		ret = accel_bm_lookup(s->bm, r->keys, r->nr_keys, hits);
		if (ret < 0)
			return ret;
	}
	/* The last token is always computed (its logits are needed). */
	cap = (r->nr_tok - 1) / s->bt;
	h = hits[0] < cap ? hits[0] : cap;
	n = h * s->bt + k;
	if (n > r->nr_tok)
		n = r->nr_tok;
	if (n % s->bt == 0) {
		/* Start one short so that the chunk's last full block is computed here. */
		ret = accel_bm_seq_start(s->bm, r->seq, r->tok, n - 1, r->keys, &cached);
		if (!ret) {
			ret = accel_bm_append(s->bm, r->seq, r->tok + n - 1, 1, NULL, &plan);
			if (!ret && plan.id) {
				accel_bm_plan_done(s->bm, plan.id, -ECANCELED);
				ret = -EIO;
			}
			if (ret) {
				accel_bm_seq_free(s->bm, r->seq);
				r->seq = SREQ_NONE;
			}
		}
	} else {
		ret = accel_bm_seq_start(s->bm, r->seq, r->tok, n, r->keys, &cached);
	}
	if (ret)
		return ret;
	r->bm_tok = n;
	r->computed = cached;
	r->committed = (uint32_t)(cached / s->bt);
	if (n - cached > k) {
		/* More than the budget (the cache held less than lookup said). */
		accel_bm_truncate(s->bm, r->seq, n - cached - k);
		r->bm_tok = cached + k;
	}
	*scheduled = (uint32_t)(r->bm_tok - cached);
	return 0;
}

static void add_run(struct accel_sched *s, struct sreq *r, uint32_t k, uint32_t layer,
		    struct accel_sched_out *out, uint32_t *budget)
{
	struct accel_sched_run *run = &out->runs[out->nr_runs];

	memset(run, 0, sizeof(*run));
	run->req = rid(s, r);
	run->seq = r->seq;
	run->tag = r->tag;
	run->start = r->computed;
	run->tokens = k;
	run->start_layer = layer;
	if (r->state == ACCEL_SCHED_PREFILLING)
		run->flags |= ACCEL_SCHED_RUN_PREFILL;
	if (layer)
		run->flags |= ACCEL_SCHED_RUN_RESUME;
	if (r->computed + k == r->nr_tok)
		run->flags |= ACCEL_SCHED_RUN_SAMPLE;
	r->run_idx = out->nr_runs++;
	r->sched_tokens = k;
	r->inflight = true;
	s->nr_inflight++;
	*budget -= k;
	out->tokens += k;
	if (!r->first_sched_ns)
		r->first_sched_ns = s->now ? s->now : 1;
}

/* ---- creation ---- */

static int sq_init(struct squeue *q, uint8_t id, uint32_t max_req, uint32_t clients)
{
	uint32_t c;

	q->id = id;
	q->heap = calloc(max_req, sizeof(*q->heap));
	q->head = calloc(clients, sizeof(*q->head));
	q->tail = calloc(clients, sizeof(*q->tail));
	q->count = calloc(clients, sizeof(*q->count));
	if (!q->heap || !q->head || !q->tail || !q->count)
		return -ENOMEM;
	for (c = 0; c < clients; c++)
		q->head[c] = q->tail[c] = SREQ_NONE;
	return 0;
}

static void sq_fini(struct squeue *q)
{
	free(q->heap);
	free(q->head);
	free(q->tail);
	free(q->count);
}

/* Free what a scheduler holds (any of it may be unset: create's unwind too). */
static void sched_free(struct accel_sched *s)
{
	if (s->efd >= 0)
		close(s->efd);
	sq_fini(&s->waitq);
	sq_fini(&s->swapq);
	free(s->req);
	free(s->free_ids);
	free(s->running);
	free(s->snap);
	free(s->pre);
	free(s->pend_swaps);
	free(s->vtc);
	free(s->client_active);
	free(s->ev);
	free(s);
}

ACCEL_EXPORT struct accel_sched *accel_sched_create(const struct accel_sched_config *cfg)
{
	struct accel_sched_config c = { .sz = sizeof(c) };
	struct accel_sched *s;
	uint32_t i;
	int ret;

	if (!cfg || cfg->sz < sizeof(cfg->sz)) {
		errno = EINVAL;
		return NULL;
	}
	ret = accel_opts_valid(cfg, sizeof(*cfg));
	if (ret) {
		errno = -ret;
		return NULL;
	}
	memcpy(&c, cfg, cfg->sz < sizeof(c) ? cfg->sz : sizeof(c));
	c.sz = sizeof(c);
	if (!c.max_tokens)
		c.max_tokens = DEF_MAX_TOKENS;
	if (!c.max_seqs)
		c.max_seqs = c.max_tokens < DEF_MAX_SEQS ? c.max_tokens : DEF_MAX_SEQS;
	if (!c.chunk_tokens)
		c.chunk_tokens = c.max_tokens;
	if (!c.max_requests)
		c.max_requests = DEF_MAX_REQUESTS;
	if (!c.block_bytes)
		c.block_bytes = DEF_BLOCK_BYTES;
	if (!c.swap_transfer_ns)
		c.swap_transfer_ns = DEF_TRANSFER_NS;
	if (!c.prefill_base_ns)
		c.prefill_base_ns = DEF_PREFILL_BASE_NS;
	if (!c.prefill_token_ns)
		c.prefill_token_ns = DEF_PREFILL_TOKEN_NS;
	if (!c.step_ns)
		c.step_ns = DEF_STEP_NS;
	if (!c.max_clients)
		c.max_clients = DEF_MAX_CLIENTS;
	if (!c.bm || c.policy >= ACCEL_SCHED_NR_POLICIES || c.max_seqs > c.max_tokens ||
	    c.chunk_tokens > c.max_tokens || c.max_requests > MAX_REQUESTS ||
	    c.preempt > ACCEL_SCHED_PREEMPT_SWAP || c.victim > ACCEL_SCHED_VICTIM_LEAST_COMPUTED ||
	    c.max_clients > MAX_CLIENTS || c.priority_threshold > INT32_MAX || c.flags) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->efd = -1;
	s->cfg = c;
	s->bm = c.bm;
	s->ops = &sched_ops[c.policy];
	s->max_req = c.max_requests;
	s->step_ns = c.step_ns;
	s->swap_bw = c.swap_bw ? c.swap_bw : DEF_SWAP_BW;
	s->yield_ref = SREQ_NONE;
	/* Fixed at the manager's creation: read without its lock. */
	s->nr_tiers = c.bm->nr_tiers;
	s->bt = c.bm->block_tokens;
	ret = -ENOMEM;
	s->req = calloc(s->max_req, sizeof(*s->req));
	s->free_ids = malloc(s->max_req * sizeof(*s->free_ids));
	s->running = malloc(c.max_seqs * sizeof(*s->running));
	s->snap = malloc(c.max_seqs * sizeof(*s->snap));
	s->pre = malloc(c.max_seqs * sizeof(*s->pre));
	s->pend_swaps = malloc(s->max_req * sizeof(*s->pend_swaps));
	s->vtc = calloc(c.max_clients, sizeof(*s->vtc));
	s->client_active = calloc(c.max_clients, sizeof(*s->client_active));
	if (!s->req || !s->free_ids || !s->running || !s->snap || !s->pre || !s->pend_swaps ||
	    !s->vtc || !s->client_active)
		goto err;
	if (sq_init(&s->waitq, 1, s->max_req, c.max_clients) ||
	    sq_init(&s->swapq, 2, s->max_req, c.max_clients))
		goto err;
	for (i = 0; i < s->max_req; i++)
		s->free_ids[i] = s->max_req - 1 - i;
	s->nr_free_ids = s->max_req;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0) {
		ret = -errno;
		goto err;
	}
	if (pthread_mutex_init(&s->lock, NULL)) {
		ret = -ENOMEM;
		goto err;
	}
	atomic_init(&s->yield, 0);
	return s;
err:
	sched_free(s);
	errno = -ret;
	return NULL;
}

static void req_free_mem(struct sreq *r)
{
	free(r->tok);
	free(r->extra);
	free(r->keys);
	memset(r, 0, sizeof(*r));
}

ACCEL_EXPORT void accel_sched_destroy(struct accel_sched *s)
{
	uint32_t i;

	if (!s)
		return;
	for (i = 0; i < s->max_req; i++) {
		struct sreq *r = R(s, i);

		if (!r->used)
			continue;
		if (r->state == ACCEL_SCHED_SWAPPING_OUT || r->state == ACCEL_SCHED_SWAPPING_IN)
			accel_bm_plan_done(s->bm, r->plan_id, -ECANCELED);
		if (r->seq != SREQ_NONE)
			accel_bm_seq_free(s->bm, r->seq);
		req_free_mem(r);
	}
	pthread_mutex_destroy(&s->lock);
	sched_free(s);
}

ACCEL_EXPORT int accel_sched_fd(struct accel_sched *s)
{
	return s ? s->efd : -EINVAL;
}

ACCEL_EXPORT const char *accel_sched_policy_name(uint32_t policy)
{
	return policy < ACCEL_SCHED_NR_POLICIES ? sched_ops[policy].name : NULL;
}

/* ---- requests ---- */

/* Whether @r arriving makes the prefills in flight yield. */
static void check_yield(struct accel_sched *s, const struct sreq *r)
{
	if (s->yield_ref == SREQ_NONE || !s->ops->outranks || !R(s, s->yield_ref)->inflight)
		return;
	if (s->ops->outranks(s, r, R(s, s->yield_ref)))
		atomic_store_explicit(&s->yield, 1, memory_order_release);
}

ACCEL_EXPORT int accel_sched_add(struct accel_sched *s, const struct accel_sched_req_opts *o,
				 uint32_t *req)
{
	struct sreq *r;
	uint64_t cap;
	uint32_t id;
	int ret;

	if (!s || !o || !req || o->sz < sizeof(o->sz))
		return -EINVAL;
	ret = accel_opts_valid(o, sizeof(*o));
	if (ret)
		return ret;
	if (!ACCEL_OPTS_HAS(o, extra_keys_len) || !o->prompt || !o->prompt_len ||
	    o->prompt_len > (1ull << 40) || (o->flags & ~ACCEL_SCHED_REQ_FLAGS) ||
	    (o->extra_keys_len && !o->extra_keys))
		return -EINVAL;
	if (o->client >= s->cfg.max_clients)
		return -EINVAL;
	if (o->max_output &&
	    blocks_of(s, o->prompt_len + o->max_output) > s->bm->tier[0].pool.nr_blocks)
		return -E2BIG;	/* it could never run to its end on tier 0 */
	pthread_mutex_lock(&s->lock);
	if (!s->nr_free_ids) {
		ret = -ENOSPC;
		goto out;
	}
	id = s->free_ids[s->nr_free_ids - 1];
	r = R(s, id);
	memset(r, 0, sizeof(*r));
	cap = o->prompt_len + (o->max_output ? o->max_output : 16) + 1;
	r->tok = malloc(cap * sizeof(*r->tok));
	if (o->extra_keys_len)
		r->extra = malloc(o->extra_keys_len);
	if (!r->tok || (o->extra_keys_len && !r->extra)) {
		free(r->tok);
		free(r->extra);
		memset(r, 0, sizeof(*r));
		ret = -ENOMEM;
		goto out;
	}
	s->nr_free_ids--;
	memcpy(r->tok, o->prompt, o->prompt_len * sizeof(*r->tok));
	if (o->extra_keys_len)
		memcpy(r->extra, o->extra_keys, o->extra_keys_len);
	r->extra_len = o->extra_keys_len;
	r->used = true;
	r->state = ACCEL_SCHED_WAITING;
	r->tag = o->tag;
	r->nr_tok = r->prompt_len = o->prompt_len;
	r->cap_tok = cap;
	r->max_output = o->max_output;
	r->prio = o->priority;
	r->client = o->client;
	r->flags = o->flags;
	r->arrival_ns = o->arrival_ns;
	r->deadline = o->ttft_slo_ns ? o->arrival_ns + o->ttft_slo_ns : 0;
	r->tpot_slo = o->tpot_slo_ns;
	r->seq = SREQ_NONE;
	r->ridx = SREQ_NONE;
	r->run_idx = SREQ_NONE;
	r->arrive_seq = ++s->seqno;
	s->nr_used++;
	s->st.in_state[ACCEL_SCHED_WAITING]++;
	if (!s->client_active[r->client]++ && is_fair(s)) {
		/* VTC: a client back from idle starts at the least served active one. */
		uint64_t m = fair_min_active(s, r->client);

		if (m != UINT64_MAX && m > s->vtc[r->client])
			s->vtc[r->client] = m;
	}
	if (s->now < o->arrival_ns)
		s->now = o->arrival_ns;
	q_push(s, &s->waitq, r);
	check_yield(s, r);
	*req = id;
	ret = 0;
	wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static struct sreq *req_get(struct accel_sched *s, uint32_t id)
{
	return id < s->max_req && s->req[id].used ? &s->req[id] : NULL;
}

static void finish(struct accel_sched *s, struct sreq *r, unsigned int st)
{
	if (r->inq)
		q_remove(s, r->inq == 1 ? &s->waitq : &s->swapq, r);
	running_del(s, r);
	seq_drop(s, r);
	if (r->preempt_ns) {
		r->stall_ns += s->now > r->preempt_ns ? s->now - r->preempt_ns : 0;
		r->preempt_ns = 0;
	}
	r->finish_ns = s->now;
	r->abort_pending = false;
	s->client_active[r->client]--;
	if (st == ACCEL_SCHED_FINISHED)
		s->st.finished++;
	else
		s->st.aborted++;
	set_state(s, r, st);
}

ACCEL_EXPORT int accel_sched_abort(struct accel_sched *s, uint32_t req, uint64_t now_ns)
{
	struct sreq *r;
	int ret = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = req_get(s, req);
	if (!r) {
		ret = -ENOENT;
		goto out;
	}
	if (r->state == ACCEL_SCHED_FINISHED || r->state == ACCEL_SCHED_ABORTED) {
		ret = -EALREADY;
		goto out;
	}
	if (now_ns > s->now)
		s->now = now_ns;
	if (r->inflight || r->state == ACCEL_SCHED_SWAPPING_OUT ||
	    r->state == ACCEL_SCHED_SWAPPING_IN)
		r->abort_pending = true;
	else
		finish(s, r, ACCEL_SCHED_ABORTED);
	wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ACCEL_EXPORT int accel_sched_remove(struct accel_sched *s, uint32_t req)
{
	struct sreq *r;
	int ret = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = req_get(s, req);
	if (!r)
		ret = -ENOENT;
	else if (r->state != ACCEL_SCHED_FINISHED && r->state != ACCEL_SCHED_ABORTED)
		ret = -EBUSY;
	if (!ret) {
		s->st.in_state[r->state]--;
		req_free_mem(r);
		s->free_ids[s->nr_free_ids++] = req;
		s->nr_used--;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- the step ---- */

static int cmp_before_ctx(const void *a, const void *b, void *ctx)
{
	struct accel_sched *s = ctx;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (q_before(s, x, y))
		return -1;
	return q_before(s, y, x) ? 1 : 0;
}

/* slo: a decode that can wait a step and still meet its next token's time. */
static bool pace_skip(const struct accel_sched *s, const struct sreq *r, bool demand)
{
	uint64_t due;

	if (s->cfg.policy != ACCEL_SCHED_SLO || !r->tpot_slo || !demand || !r->first_token_ns)
		return false;
	due = r->first_token_ns + r->output * r->tpot_slo;
	return s->now + 2 * s->step_ns < due;
}

/* hybrid: the tokens a step may hold before the tightest online TPOT is missed. */
static uint64_t hybrid_cap(const struct accel_sched *s)
{
	uint64_t tpot = UINT64_MAX;
	uint32_t i;

	for (i = 0; i < s->nr_running; i++) {
		const struct sreq *r = &s->req[s->running[i]];

		if (!(r->flags & ACCEL_SCHED_REQ_OFFLINE) && r->tpot_slo && r->tpot_slo < tpot)
			tpot = r->tpot_slo;
	}
	if (tpot == UINT64_MAX)
		return UINT64_MAX;
	if (tpot <= s->cfg.prefill_base_ns)
		return 0;
	return (tpot - s->cfg.prefill_base_ns) / s->cfg.prefill_token_ns;
}

static void deliver(struct accel_sched *s, struct accel_sched_out *out)
{
	struct accel_bm_run dummy;
	uint32_t i, n = 0;
	int ret;

	for (i = 0; i < s->nr_pend_swaps && n < out->max_swaps; i++) {
		struct sreq *r = R(s, s->pend_swaps[i]);
		struct accel_sched_swap *w = &out->swaps[n++];

		memset(w, 0, sizeof(*w));
		w->req = s->pend_swaps[i];
		w->dir = r->state == ACCEL_SCHED_SWAPPING_IN ? ACCEL_SCHED_SWAP_IN :
			 ACCEL_SCHED_SWAP_OUT;
		w->tag = r->tag;
		w->plan_id = r->plan_id;
		ret = accel_bm_plan_runs(s->bm, r->plan_id, 0, &dummy, 0);
		w->nr_runs = ret > 0 ? (uint32_t)ret : 0;
		w->blocks = r->plan_blocks;
		w->reused = r->plan_reused;
	}
	memmove(s->pend_swaps, s->pend_swaps + n, (s->nr_pend_swaps - n) * sizeof(uint32_t));
	s->nr_pend_swaps -= n;
	out->nr_swaps = n;
	for (n = 0; n < out->max_events && s->ev_n; n++) {
		out->events[n] = s->ev[s->ev_head];
		s->ev_head = (s->ev_head + 1) % s->ev_cap;
		s->ev_n--;
	}
	out->nr_events = n;
	out->events_left = s->ev_n;
}

static void resume_from_stall(struct accel_sched *s, struct sreq *r)
{
	if (r->preempt_ns) {
		r->stall_ns += s->now > r->preempt_ns ? s->now - r->preempt_ns : 0;
		r->preempt_ns = 0;
	}
}

static unsigned int run_state(const struct sreq *r)
{
	return r->output && r->computed + 1 == r->nr_tok ? ACCEL_SCHED_DECODING :
	       ACCEL_SCHED_PREFILLING;
}

ACCEL_EXPORT int accel_sched_step(struct accel_sched *s, uint64_t now_ns,
				  struct accel_sched_out *out)
{
	uint32_t budget, cap_runs, nsnap, npre = 0, pi = 0, i;
	bool grown_preempt = false, blocked = false, demand;
	uint64_t off_cap, drain;
	int ret;

	if (!s || !out || out->sz < sizeof(out->sz))
		return -EINVAL;
	ret = accel_opts_valid(out, sizeof(*out));
	if (ret)
		return ret;
	if (!ACCEL_OPTS_HAS(out, tokens) || (out->max_runs && !out->runs) ||
	    (out->max_swaps && !out->swaps) || (out->max_events && !out->events))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->nr_inflight) {
		pthread_mutex_unlock(&s->lock);
		return -EBUSY;
	}
	if (s->last_now && now_ns > s->last_now)
		s->step_ns = (s->step_ns * 7 + (now_ns - s->last_now)) / 8;
	s->last_now = now_ns;
	if (now_ns > s->now)
		s->now = now_ns;
	if (read(s->efd, &drain, sizeof(drain)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
	atomic_store_explicit(&s->yield, 0, memory_order_relaxed);
	out->nr_runs = out->nr_swaps = out->nr_events = out->events_left = 0;
	out->tokens = 0;
	budget = s->cfg.max_tokens;
	cap_runs = out->max_runs < s->cfg.max_seqs ? out->max_runs : s->cfg.max_seqs;
	/*
	 * Pacing gives budget to prefills: only worth it when some can use it
	 * (a running chunk, or a waiting request and a free slot).
	 */
	demand = (s->waitq.n || s->swapq.n) && nr_active(s) < s->cfg.max_seqs &&
		 !s->admit_blocked;
	for (i = 0; i < s->nr_running && !demand; i++)
		demand = R(s, s->running[i])->state == ACCEL_SCHED_PREFILLING;

	/* (1) Decodes, in admission order. */
	nsnap = s->nr_running;
	memcpy(s->snap, s->running, nsnap * sizeof(*s->snap));
	for (i = 0; i < nsnap && budget && out->nr_runs < cap_runs; i++) {
		struct sreq *r = R(s, s->snap[i]);

		if (r->state != ACCEL_SCHED_DECODING || r->inflight || pace_skip(s, r, demand))
			continue;
		for (;;) {
			ret = grow(s, r, 1);
			if (!ret) {
				add_run(s, r, 1, 0, out, &budget);
				break;
			}
			if (ret != -ENOSPC || s->pending_free0)
				break;	/* stalls a step (or waits for the swap-outs) */
			ret = preempt_for(s, r, true, out, &budget);
			if (ret)
				grown_preempt = true;
			if (ret != 1)
				break;
		}
	}

	/* (2) Prefills: running chunks, swap-ins and waiting requests in policy order. */
	for (i = 0; i < nsnap; i++) {
		struct sreq *r = R(s, s->snap[i]);

		if (r->state == ACCEL_SCHED_PREFILLING && !r->inflight && r->ridx != SREQ_NONE)
			s->pre[npre++] = s->snap[i];
	}
	if (npre > 1)
		qsort_r(s->pre, npre, sizeof(*s->pre), cmp_before_ctx, s);
	off_cap = s->cfg.policy == ACCEL_SCHED_HYBRID ? hybrid_cap(s) : UINT64_MAX;
	for (;;) {
		uint32_t p = SREQ_NONE, w, sw, pick, k;
		struct sreq *r;
		int kind;

		while (pi < npre && (R(s, s->pre[pi])->state != ACCEL_SCHED_PREFILLING ||
				     R(s, s->pre[pi])->inflight))
			pi++;
		if (pi < npre)
			p = s->pre[pi];
		sw = s->nr_tiers > 1 && !grown_preempt ? q_peek(s, &s->swapq) : SREQ_NONE;
		w = !grown_preempt ? q_peek(s, &s->waitq) : SREQ_NONE;
		pick = p;
		kind = 0;
		if (sw != SREQ_NONE && (pick == SREQ_NONE || q_before(s, sw, pick))) {
			pick = sw;
			kind = 1;
		}
		if (w != SREQ_NONE && (pick == SREQ_NONE || q_before(s, w, pick))) {
			pick = w;
			kind = 2;
		}
		if (pick == SREQ_NONE)
			break;
		r = R(s, pick);
		/* Preempted in this step: not back before the next one. */
		if (kind && r->preempt_step == s->st.steps + 1)
			break;
		/* A new running request: a slot first (a preemption frees a run too). */
		if (kind && nr_active(s) >= s->cfg.max_seqs) {
			if (preempt_for(s, r, false, out, &budget) == 1)
				continue;
			break;
		}
		if (kind != 1 && (!budget || out->nr_runs >= cap_runs))
			break;
		k = budget < s->cfg.chunk_tokens ? budget : s->cfg.chunk_tokens;
		if ((r->flags & ACCEL_SCHED_REQ_OFFLINE) && off_cap != UINT64_MAX) {
			uint64_t left = off_cap > out->tokens ? off_cap - out->tokens : 0;

			if (!left)
				break;
			if (k > left)
				k = (uint32_t)left;
		}
		if (kind == 0) {
			if (r->yield_tokens) {
				/* A yielded chunk resumes whole, at its layer (too big: later). */
				if (r->yield_tokens > budget) {
					pi++;
					continue;
				}
				add_run(s, r, r->yield_tokens, r->yield_layer, out, &budget);
				r->yield_tokens = 0;
				pi++;
				continue;
			}
			if (k > r->nr_tok - r->computed)
				k = (uint32_t)(r->nr_tok - r->computed);
			ret = grow(s, r, k);
			if (!ret) {
				add_run(s, r, k, 0, out, &budget);
				pi++;
				continue;
			}
			if (ret != -ENOSPC || s->pending_free0 >= blocks_of(s, k) + 1)
				break;
			ret = preempt_for(s, r, true, out, &budget);
			if (ret)
				grown_preempt = true;
			if (ret == 2)
				pi++;
			if (!ret)
				break;
			continue;
		}
		if (kind == 1) {
			struct accel_bm_plan plan = { .sz = sizeof(plan) };

			ret = accel_bm_seq_move(s->bm, r->seq, 0, &plan);
			if (ret == -ENOSPC) {
				if (s->pending_free0 < blocks_of(s, r->bm_tok) &&
				    preempt_for(s, r, false, out, &budget) == 1)
					continue;
				blocked = true;
				break;
			}
			q_remove(s, &s->swapq, r);
			if (ret) {
				to_recompute(s, r);
				continue;
			}
			s->st.swaps_in++;
			if (!plan.id) {
				resume_from_stall(s, r);
				running_add(s, r);
				set_state(s, r, run_state(r));
				continue;
			}
			r->plan_id = plan.id;
			r->plan_blocks = plan.blocks;
			r->plan_reused = plan.reused;
			r->swap_start = s->now;
			s->nr_swapping_in++;
			set_state(s, r, ACCEL_SCHED_SWAPPING_IN);
			pend_swap(s, r);
			continue;
		}
		{
			uint32_t got = 0;

			ret = admit(s, r, k, &got);
			if (ret == -ENOSPC) {
				if (s->pending_free0 < blocks_of(s, k) + 1 &&
				    preempt_for(s, r, false, out, &budget) == 1)
					continue;
				blocked = true;
				break;
			}
			if (ret)
				break;
			q_remove(s, &s->waitq, r);
			resume_from_stall(s, r);
			running_add(s, r);
			set_state(s, r, ACCEL_SCHED_PREFILLING);
			add_run(s, r, got, 0, out, &budget);
		}
	}

	/* The prefill an arrival would preempt first makes the prefills yield. */
	s->yield_ref = SREQ_NONE;
	for (i = 0; i < out->nr_runs; i++) {
		struct sreq *r = R(s, out->runs[i].req);

		if (!(out->runs[i].flags & ACCEL_SCHED_RUN_PREFILL))
			continue;
		if (s->yield_ref == SREQ_NONE || victim_cmp(s, r, R(s, s->yield_ref)) < 0)
			s->yield_ref = out->runs[i].req;
	}
	/* Pacing decodes while admissions wait for blocks would only slow both. */
	s->admit_blocked = blocked;
	s->st.steps++;
	deliver(s, out);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

ACCEL_EXPORT int accel_sched_should_yield(struct accel_sched *s)
{
	return s ? atomic_load_explicit(&s->yield, memory_order_acquire) : 0;
}

/* ---- what the engine reports ---- */

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
	r = req_get(s, req);
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
	if (end / s->bt > r->committed) {
		if (accel_bm_commit(s->bm, r->seq, (uint32_t)(end / s->bt)) >= 0)
			r->committed = (uint32_t)(end / s->bt);
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
	set_state(s, r, run_state(r));
done:
	if (r->abort_pending)
		finish(s, r, ACCEL_SCHED_ABORTED);
	goto out;
finish_it:
	finish(s, r, r->abort_pending ? ACCEL_SCHED_ABORTED : ACCEL_SCHED_FINISHED);
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
	r = req_get(s, req);
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
			to_recompute(s, r);	/* still on tier 0: its blocks go now */
		} else {
			r->host_valid = (uint32_t)(r->computed / s->bt);
			set_state(s, r, ACCEL_SCHED_SWAPPED);
			q_push(s, &s->swapq, r);
		}
	} else {
		s->nr_swapping_in--;
		if (status) {
			set_state(s, r, ACCEL_SCHED_SWAPPED);
			q_push(s, &s->swapq, r);
		} else {
			r->host_valid = (uint32_t)(r->computed / s->bt);
			resume_from_stall(s, r);
			running_add(s, r);
			set_state(s, r, run_state(r));
		}
	}
	if (r->abort_pending)
		finish(s, r, ACCEL_SCHED_ABORTED);
	wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- reading ---- */

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
	r = req_get(s, req);
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
	r = req_get(s, req);
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

/* ---- memory pressure ---- */

static int tier_free(struct accel_sched *s, uint32_t tier, uint64_t *free_blocks)
{
	struct accel_bm_tier_stats st = { .sz = sizeof(st) };
	int ret = accel_bm_tier_stats(s->bm, tier, &st);

	*free_blocks = st.free;
	return ret;
}

/* The swapped request to drop first (the policy's victim order), SREQ_NONE. */
static uint32_t pick_swapped(struct accel_sched *s)
{
	uint32_t i, best = SREQ_NONE;

	for (i = 0; i < s->max_req; i++) {
		struct sreq *r = R(s, i);

		if (!r->used || r->state != ACCEL_SCHED_SWAPPED)
			continue;
		if (best == SREQ_NONE || victim_cmp(s, r, R(s, best)) < 0)
			best = i;
	}
	return best;
}

ACCEL_EXPORT int accel_sched_release(struct accel_sched *s, uint32_t tier, uint64_t blocks,
				     uint64_t now_ns, struct accel_sched_release_out *out)
{
	struct accel_sched_release_out v = { .sz = sizeof(v) };
	uint64_t before, now_free, want;
	int ret;

	if (!s || (out && out->sz < sizeof(out->sz)))
		return -EINVAL;
	ret = accel_opts_valid(out, sizeof(*out));
	if (ret)
		return ret;
	if (tier >= s->nr_tiers || tier > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (now_ns > s->now)
		s->now = now_ns;
	ret = tier_free(s, tier, &before);
	if (ret)
		goto out;
	want = blocks > UINT32_MAX ? UINT32_MAX : blocks;
	ret = accel_bm_evict(s->bm, tier, (uint32_t)want);
	if (ret < 0)
		goto out;
	v.dropped_cached = (uint64_t)ret;
	for (;;) {
		uint64_t pend0 = s->pending_free0, got;
		uint32_t id;

		tier_free(s, tier, &now_free);
		got = now_free - before;
		if (got + v.pending >= want)
			break;
		id = tier == 0 ? pick_victim(s, false) : pick_swapped(s);
		if (id == SREQ_NONE)
			break;
		if (tier == 0) {
			preempt(s, R(s, id), NULL, NULL);
			if (R(s, id)->state == ACCEL_SCHED_SWAPPING_OUT) {
				v.swapped_out++;
				v.pending += s->pending_free0 - pend0;
			} else if (R(s, id)->state == ACCEL_SCHED_SWAPPED) {
				v.swapped_out++;
			} else {
				v.recomputed++;
			}
		} else {
			q_remove(s, &s->swapq, R(s, id));
			R(s, id)->preempt_ns = R(s, id)->preempt_ns ? R(s, id)->preempt_ns : s->now;
			to_recompute(s, R(s, id));
			v.recomputed++;
		}
		/* What the preemption released may be cached or a still-valid copy. */
		ret = accel_bm_evict(s->bm, tier, (uint32_t)(want - got - v.pending));
		if (ret > 0)
			v.dropped_cached += (uint64_t)ret;
	}
	tier_free(s, tier, &now_free);
	v.freed = now_free > before ? now_free - before : 0;
	ret = 0;
	if (v.swapped_out || v.recomputed)
		wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	if (!ret && out)
		memcpy((char *)out + sizeof(size_t), (char *)&v + sizeof(size_t),
		       (out->sz < sizeof(v) ? out->sz : sizeof(v)) - sizeof(size_t));
	return ret;
}
