// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler: creating and destroying one, the requests'
 * life (accel_sched_add(), _abort(), _remove() and their end), the state
 * changes and the events they make (accel_sched.h;
 * Documentation/scheduler.rst).
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

/* ---- events ---- */

void sched_wake(struct accel_sched *s)
{
	uint64_t one = 1;

	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the fd readable already. */
	}
}

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

void sched_set_state(struct accel_sched *s, struct sreq *r, unsigned int st)
{
	if (r->state == st)
		return;
	s->st.in_state[r->state]--;
	s->st.in_state[st]++;
	ev_push(s, r, r->state, st);
	r->state = (uint8_t)st;
}

/* ---- a request's sequence and stall ---- */

void sched_seq_drop(struct accel_sched *s, struct sreq *r)
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

void sched_resume_from_stall(struct accel_sched *s, struct sreq *r)
{
	if (r->preempt_ns) {
		r->stall_ns += s->now > r->preempt_ns ? s->now - r->preempt_ns : 0;
		r->preempt_ns = 0;
	}
}

/* ---- creation ---- */

/* Free what a scheduler holds (any of it may be unset: create's unwind too). */
static void sched_free(struct accel_sched *s)
{
	if (s->efd >= 0)
		close(s->efd);
	sched_q_fini(&s->waitq);
	sched_q_fini(&s->swapq);
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
	s->tpot_min = UINT64_MAX;
	/* Fixed at the manager's creation: read without its lock. */
	s->nr_tiers = c.bm->nr_tiers;
	s->bt = c.bm->block_tokens;
	s->bt_shift = (s->bt & (s->bt - 1)) ? -1 : __builtin_ctz(s->bt);
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
	if (sched_q_init(&s->waitq, 1, s->max_req, c.max_clients) ||
	    sched_q_init(&s->swapq, 2, s->max_req, c.max_clients))
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

void sched_forget(struct accel_sched *s, struct sreq *r)
{
	uint32_t id = rid(s, r);

	s->st.in_state[r->state]--;
	req_free_mem(r);
	s->free_ids[s->nr_free_ids++] = id;
	s->nr_used--;
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

/*
 * The keys of a prompt's full blocks, computed before the lock (the block
 * manager's accel_bm_keys() takes none) so that the step's admission does
 * not hash them. NULL where that fails: the admission computes them then.
 */
static struct accel_bm_key *prompt_keys(struct accel_sched *s,
					 const struct accel_sched_req_opts *o, uint32_t *nr,
					 uint32_t *cap)
{
	uint64_t n = full_blocks(s, o->prompt_len);
	struct accel_bm_key *k;

	*nr = *cap = 0;
	if (!n || n > INT32_MAX)
		return NULL;
	k = malloc((n + 8) * sizeof(*k));
	if (!k)
		return NULL;
	if (accel_bm_keys(s->bm, NULL, o->prompt, n * s->bt, o->extra_keys, o->extra_keys_len,
			  k) < 0) {
		free(k);
		return NULL;
	}
	*nr = (uint32_t)n;
	*cap = (uint32_t)n + 8;
	return k;
}

ACCEL_EXPORT int accel_sched_add(struct accel_sched *s, const struct accel_sched_req_opts *o,
				 uint32_t *req)
{
	uint64_t cap, done;
	struct accel_bm_key *keys;
	uint32_t id, nr_keys, cap_keys;
	struct sreq *r;
	bool adopt;
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
	adopt = o->flags & ACCEL_SCHED_REQ_ADOPT;
	if (adopt) {
		ret = sched_adopt_check(s, o);
		if (ret)
			return ret;
		keys = NULL;
		nr_keys = cap_keys = 0;	/* an admission after a recompute makes them */
	} else {
		keys = prompt_keys(s, o, &nr_keys, &cap_keys);
	}
	pthread_mutex_lock(&s->lock);
	if (!s->nr_free_ids) {
		ret = -ENOSPC;
		goto out;
	}
	if (adopt) {
		ret = sched_adopt_seq(s, o);
		if (ret)
			goto out;
	}
	id = s->free_ids[s->nr_free_ids - 1];
	r = R(s, id);
	memset(r, 0, sizeof(*r));
	done = adopt ? o->output_len : 0;
	cap = o->prompt_len + done + (o->max_output ? o->max_output - done : 16) + 1;
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
	r->keys = keys;
	r->nr_keys = nr_keys;
	r->cap_keys = cap_keys;
	keys = NULL;
	s->nr_free_ids--;
	memcpy(r->tok, o->prompt, o->prompt_len * sizeof(*r->tok));
	if (adopt)
		memcpy(r->tok + o->prompt_len, o->output, done * sizeof(*r->tok));
	if (o->extra_keys_len)
		memcpy(r->extra, o->extra_keys, o->extra_keys_len);
	r->extra_len = o->extra_keys_len;
	r->used = true;
	r->state = ACCEL_SCHED_WAITING;
	r->tag = o->tag;
	r->nr_tok = r->prompt_len = o->prompt_len;
	r->nr_tok += done;
	r->cap_tok = cap;
	r->max_output = o->max_output;
	r->prio = o->priority;
	r->client = o->client;
	r->flags = o->flags & ~ACCEL_SCHED_REQ_ADOPT;
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
		uint64_t m = sched_fair_min_active(s, r->client);

		if (m != UINT64_MAX && m > s->vtc[r->client])
			s->vtc[r->client] = m;
	}
	if (s->now < o->arrival_ns)
		s->now = o->arrival_ns;
	if (adopt) {
		sched_adopt_place(s, r, o);
	} else {
		sched_q_push(s, &s->waitq, r);
		check_yield(s, r);
	}
	*req = id;
	ret = 0;
	sched_wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	free(keys);
	return ret;
}

struct sreq *sched_req_get(struct accel_sched *s, uint32_t id)
{
	return id < s->max_req && s->req[id].used ? &s->req[id] : NULL;
}

void sched_finish(struct accel_sched *s, struct sreq *r, unsigned int st)
{
	if (r->inq)
		sched_q_remove(s, r->inq == 1 ? &s->waitq : &s->swapq, r);
	sched_running_del(s, r);
	sched_seq_drop(s, r);
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
	sched_set_state(s, r, st);
}

ACCEL_EXPORT int accel_sched_abort(struct accel_sched *s, uint32_t req, uint64_t now_ns)
{
	struct sreq *r;
	int ret = 0;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = sched_req_get(s, req);
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
		sched_finish(s, r, ACCEL_SCHED_ABORTED);
	sched_wake(s);
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
	r = sched_req_get(s, req);
	if (!r)
		ret = -ENOENT;
	else if (r->state != ACCEL_SCHED_FINISHED && r->state != ACCEL_SCHED_ABORTED)
		ret = -EBUSY;
	if (!ret)
		sched_forget(s, r);
	pthread_mutex_unlock(&s->lock);
	return ret;
}
