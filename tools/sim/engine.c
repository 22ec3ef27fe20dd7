// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - the simulated engines (see engine.h): the cluster's event loop over its
 * instances (instance.c) and the dispatcher (dispatch.c), the prefill/decode hand-off, and each
 * request's result measured the way kvaccel-loadgen measures a real server's (first token, every
 * gap between tokens, end of the stream).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "engine.h"
#include "dispatch.h"
#include "event.h"
#include "faults.h"
#include "instance.h"
#include "pressure.h"
#include "stream.h"

/* Every time is offset by this: 0 means "not yet" in the scheduler's accounting. */
#define T0_NS		1000000000ull
#define MAX_CLIENTS	64
/*
 * Periodic pressure rounds in a row (every instance's) with no request ending between them after
 * which they stop: rounds that take more than requests can make between them would never end.
 */
#define MAX_STALE_ROUNDS	1000
/* Empty polls in a row after which requests left are given up as stuck. */
#define MAX_IDLE_TICKS	1000
/* --stream: the slots first made (doubled as more requests are alive at once). */
#define STREAM_SLOTS	1024

/* --pd: a request's prefill side, kept for its result after the hand-off. */
struct sim_handoff {
	uint64_t arrival_ns, first_ns, queue_ns, recomputed;
	uint32_t preemptions;
	int32_t token;			/* its first token, the decode side's last prompt token */
	uint32_t phase;			/* HO_* */
};

enum { HO_NONE = 0, HO_PREFILL = 1, HO_DECODE = 2 };

struct sim {
	const struct sim_config *c;
	const struct sim_profile *p;
	const struct lg_workload *wl;	/* NULL with --stream */
	size_t n;			/* requests in the run */
	size_t cap;			/* entries of the per-request arrays below (their tags) */
	const struct lg_req *rq;	/* per tag: the request (wl->req, or the slots') */
	struct lg_result *res;
	struct sim_totals *t;
	struct sim_heap h;
	struct sim_inst *inst;
	uint32_t nr_inst;
	uint32_t first_decode;		/* --pd: [0, P) prefill, [P, P + D) decode instances */
	uint32_t rr[2];			/* round robin: arrivals, hand-offs */
	struct sim_load *loads;
	struct sim_handoff *ho;		/* --pd: per request */
	uint64_t *last_tok;		/* per request: its last token's time (0: none yet) */
	uint32_t *gap_cap;
	uint64_t first_arrival, last_finish;
	size_t arrived, done;
	char clients[MAX_CLIENTS][LG_NAME_MAX];
	uint32_t nr_clients;
	int nomem;
	/* Events (--pressure, --client-timeout-ms, --abort-frac): see pressure.h, faults.h. */
	uint64_t last_ev;		/* the last engine event's time (not the events below) */
	size_t nr_side;			/* pressure, hold-end and timeout events in the heap */
	size_t nr_periodic;		/* --pressure-every rounds in the heap */
	size_t periodic_done;		/* requests done at the last periodic round */
	uint32_t periodic_stale;	/* periodic rounds in a row with no request ending */
	uint8_t *at_inst;		/* per request: the instance it is on, its id there */
	uint32_t *at_req;
	uint8_t *why;			/* per request: ABORT_* */
	/*
	 * --stream: a request's tag is a slot, taken when it is made (one arrival ahead) and given
	 * back once its result is folded into st (and its client's timeout, if any, has passed).
	 */
	struct sim_stream *st;
	struct lg_synth_iter *it;	/* the requests' source: the generator, or */
	struct lg_trace_iter *tr;	/* a trace read line by line */
	int src_err;			/* the trace's reader failed (its err said why) */
	struct lg_req *sreq;		/* per slot: its request */
	size_t *gidx;			/* per slot: its index in the workload (prompts, seeds) */
	uint8_t *slot;			/* per slot: SLOT_* */
	uint8_t *pin;			/* per slot: a timeout event still names it */
	uint32_t *free_slots;
	size_t nr_free, made;
};

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DONE = 2 };

enum { ABORT_NONE = 0, ABORT_TIMEOUT = 1, ABORT_FRAC = 2 };

int sim_events_on(const struct sim_config *c)
{
	return c->nr_pressure || c->client_timeout_ms > 0 || c->abort_frac > 0 ||
	       c->swap_fail_frac > 0;
}

static uint64_t arrival_ns(const struct lg_req *q)
{
	return T0_NS + (uint64_t)llround(q->arrival_s * 1e9);
}

/* The workload index of the request of tag @tag (its prompt, its token values, its draws). */
static size_t gid(const struct sim *m, uint64_t tag)
{
	return m->gidx ? m->gidx[tag] : (size_t)tag;
}

#define GROW(p, old, cap) ({							\
	void *__g = realloc((p), ((cap) + 1) * sizeof(*(p)));			\
	if (__g) {								\
		(p) = __g;							\
		memset((p) + (old), 0, ((cap) + 1 - (old)) * sizeof(*(p)));	\
	}									\
	__g; })

/* --stream: every per-slot array @cap long (+1); -1 when memory ran out. */
static int slots_grow(struct sim *m, size_t cap)
{
	size_t old = m->cap ? m->cap + 1 : 0, i;
	uint32_t *fs;

	if (!GROW(m->res, old, cap) || !GROW(m->sreq, old, cap) || !GROW(m->gidx, old, cap) ||
	    !GROW(m->slot, old, cap) || !GROW(m->pin, old, cap) ||
	    !GROW(m->last_tok, old, cap) || !GROW(m->gap_cap, old, cap))
		return -1;
	if (m->ho && !GROW(m->ho, old, cap))
		return -1;
	if (m->at_inst && (!GROW(m->at_inst, old, cap) || !GROW(m->at_req, old, cap) ||
			   !GROW(m->why, old, cap)))
		return -1;
	fs = realloc(m->free_slots, cap * sizeof(*fs));
	if (!fs)
		return -1;
	m->free_slots = fs;
	for (i = cap; i > m->cap; i--)		/* the lowest first */
		m->free_slots[m->nr_free++] = (uint32_t)(i - 1);
	m->cap = cap;
	m->rq = m->sreq;
	return 0;
}

/* --stream: the next request made into a slot (its arrival pushed): 0, or 1 when none is left. */
static int stream_next(struct sim *m)
{
	struct lg_req q;
	uint32_t s;
	int ret = m->tr ? lg_trace_next(m->tr, &q) : lg_synth_next(m->it, &q);

	if (ret <= 0) {
		m->n = m->made;		/* every request is made: their number is known */
		m->src_err |= ret < 0;
		return 1;
	}
	if (!m->nr_free && slots_grow(m, m->cap * 2)) {
		free(q.prompt);
		free(q.hash_ids);
		m->nomem = 1;
		return 1;
	}
	s = m->free_slots[--m->nr_free];
	m->sreq[s] = q;
	m->gidx[s] = m->made++;
	m->slot[s] = SLOT_LIVE;
	memset(&m->res[s], 0, sizeof(m->res[s]));
	m->last_tok[s] = 0;
	m->gap_cap[s] = 0;
	if (m->ho)
		memset(&m->ho[s], 0, sizeof(m->ho[s]));
	if (m->at_inst)
		m->at_inst[s] = m->at_req[s] = m->why[s] = 0;
	if (sim_heap_push(&m->h, arrival_ns(&q), SIM_EV_ARRIVAL, s))
		m->nomem = 1;
	return 0;
}

/* --stream: slot @s given back (its result folded). */
static void slot_free(struct sim *m, uint64_t s)
{
	free(m->sreq[s].prompt);
	free(m->sreq[s].hash_ids);
	m->sreq[s].prompt = NULL;
	m->sreq[s].hash_ids = NULL;
	free(m->res[s].gaps_ms);
	m->res[s].gaps_ms = NULL;
	m->res[s].nr_gaps = 0;
	m->gap_cap[s] = 0;
	m->slot[s] = SLOT_FREE;
	m->free_slots[m->nr_free++] = (uint32_t)s;
}

/* Request @tag's result is final: --stream folds it and frees its slot (once unpinned). */
static void finish(struct sim *m, uint64_t tag)
{
	if (!m->st)
		return;
	sim_stream_fold(m->st, &m->rq[tag], &m->res[tag]);
	if (m->pin[tag])
		m->slot[tag] = SLOT_DONE;
	else
		slot_free(m, tag);
}

/* The fair policy's client id: the names in the order they come, wrapped at MAX_CLIENTS. */
static uint32_t client_id(struct sim *m, const char *name)
{
	uint32_t i;

	if (!*name)
		return 0;
	for (i = 0; i < m->nr_clients; i++)
		if (!strcmp(m->clients[i], name))
			return i;
	if (m->nr_clients < MAX_CLIENTS) {
		strcpy(m->clients[m->nr_clients], name);
		return m->nr_clients++;
	}
	return (uint32_t)(strlen(name) * 2654435761u % MAX_CLIENTS);
}

static void fail_req(struct sim *m, size_t idx, enum lg_fail why, const char *msg)
{
	struct lg_result *r = &m->res[idx];

	r->ok = 0;
	r->fail = why;
	r->status = why == LG_FAIL_HTTP ? 503 : 200;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	r->preemptions = r->recomputed = -1;
	r->prompt_tokens = r->completion_tokens = -1;
	m->done++;
	finish(m, idx);
}

/*
 * The pool a request goes to: arrivals to the prefill (or mixed) instances, hand-offs to the
 * decode instances.
 */
static struct sim_inst *pick(struct sim *m, int decode)
{
	uint32_t first = decode ? m->first_decode : 0;
	uint32_t n = decode ? m->nr_inst - m->first_decode : m->first_decode, i;

	if (m->c->dispatch != SIM_DISPATCH_RR)
		for (i = 0; i < n; i++)
			sim_inst_load(&m->inst[first + i], &m->loads[i]);
	return &m->inst[first + sim_dispatch_pick(m->c->dispatch, m->loads, n, &m->rr[decode])];
}

/* accel_sched_add() on @in; an arrival during its step may cut the step's prefills. */
static int add_to(struct sim *m, struct sim_inst *in, const struct accel_sched_req_opts *o,
		  uint64_t now, uint32_t *req)
{
	uint32_t bt = (uint32_t)m->p->block_tokens;
	int ret = sim_inst_add(in, o, (uint32_t)((o->prompt_len + bt - 1) / bt), req);

	in->touched = 1;
	if (!ret && m->at_inst) {
		m->at_inst[o->tag] = (uint8_t)in->id;
		m->at_req[o->tag] = *req;
	}
	if (!ret && in->busy && !m->c->no_yield && accel_sched_should_yield(in->s) > 0 &&
	    sim_inst_cut(in, &m->h, now))
		m->nomem = 1;
	return ret;
}

/*
 * Request @idx's prompt as tokens (its bytes, lg_prompt_make(); one token 0 for an empty prompt)
 * with room for @extra more, *len its length; NULL when memory ran out (the request failed).
 */
static int32_t *prompt_tokens(struct sim *m, size_t idx, size_t extra, size_t *len)
{
	uint8_t *bytes = lg_prompt_make(&m->rq[idx], m->c->seed, gid(m, idx), len);
	int32_t *prompt = bytes ? malloc((*len + 1 + extra) * sizeof(*prompt)) : NULL;
	size_t i;

	if (!prompt) {
		free(bytes);
		m->nomem = 1;
		fail_req(m, idx, LG_FAIL_HTTP, "out of memory");
		return NULL;
	}
	for (i = 0; i < *len; i++)
		prompt[i] = bytes[i];
	if (!*len)
		prompt[(*len)++] = 0;
	free(bytes);
	return prompt;
}

static void arrive(struct sim *m, size_t idx, uint64_t now)
{
	const struct lg_req *q = &m->rq[idx];
	struct sim_inst *in;
	int32_t *prompt;
	size_t len;
	uint32_t req;
	int ret;

	m->arrived++;
	m->res[idx].start_s = (double)(now - T0_NS) / 1e9;
	prompt = prompt_tokens(m, idx, 0, &len);
	if (!prompt)
		return;
	ACCEL_OPTS(accel_sched_req_opts, o, .tag = idx, .prompt = prompt, .prompt_len = len,
		   .max_output = q->output_len, .priority = q->priority,
		   .client = client_id(m, q->client), .arrival_ns = now,
		   .ttft_slo_ns = (uint64_t)llround(q->ttft_slo_ms * 1e6),
		   .tpot_slo_ns = (uint64_t)llround(q->tpot_slo_ms * 1e6));
	if (!strcmp(q->cls, "offline"))
		o.flags = ACCEL_SCHED_REQ_OFFLINE;
	if (m->ho && q->output_len > 1) {
		/* Disaggregated: the prefill instance stops at the first token. */
		o.max_output = 1;
		m->ho[idx].phase = HO_PREFILL;
	}
	in = pick(m, 0);
	ret = add_to(m, in, &o, now, &req);
	free(prompt);
	if (ret) {
		char msg[128];

		if (ret == -E2BIG)
			snprintf(msg, sizeof(msg), "refused: %zu prompt + %u output tokens are "
				 "more than the GPU's KV cache holds", len, q->output_len);
		else if (ret == -ENOSPC && m->st)
			snprintf(msg, sizeof(msg), "refused: %u requests alive on the instance "
				 "(--stream's bound)", SIM_STREAM_LIVE);
		else
			snprintf(msg, sizeof(msg), "refused by the scheduler: %s",
				 strerror(-ret));
		fail_req(m, idx, LG_FAIL_HTTP, msg);
	}
}

/*
 * --pd: a request's prefill side finished with its first token: its KV (every block of its
 * prompt) goes over the sending instance's link, one transfer at a time, to the decode instance
 * the dispatcher picks now.
 */
static void hand_off(struct sim *m, struct sim_inst *in, const struct accel_sched_req_info *info)
{
	struct sim_handoff *h = &m->ho[info->tag];
	uint64_t bt = (uint64_t)m->p->block_tokens, blocks = (info->prompt_len + bt - 1) / bt;
	uint64_t start = in->net_free > info->finish_ns ? in->net_free : info->finish_ns, d;
	struct sim_inst *to = pick(m, 1);

	h->arrival_ns = info->arrival_ns;
	h->first_ns = info->first_token_ns;
	h->queue_ns = info->queue_ns;
	h->preemptions = info->swaps_out + info->recomputes;
	h->recomputed = info->recomputed_tokens;
	h->phase = HO_DECODE;
	d = sim_net_ns(m->p, blocks);
	in->net_free = start + d;
	to->demand += blocks;		/* on its way: the dispatcher counts it */
	m->t->transfers++;
	m->t->transfer_blocks += blocks;
	m->t->transfer_bytes += blocks * m->p->block_bytes;
	m->t->transfer_ns += d;
	if (sim_heap_push(&m->h, start + d, SIM_EV(SIM_EV_HANDOFF, to->id), (uint32_t)info->tag))
		m->nomem = 1;
}

/* An aborted request's message: why its client gave up. */
static void aborted(struct sim *m, uint64_t tag, uint32_t tokens)
{
	struct lg_result *r = &m->res[tag];
	uint32_t out = m->rq[tag].output_len;

	if (m->why && m->why[tag] == ABORT_TIMEOUT) {
		/* A token of a step in flight when the client gave up never reached it. */
		r->tokens = 0;
		r->ttft_ms = r->tpot_ms = 0;
		m->t->timeouts++;
		snprintf(r->msg, sizeof(r->msg), "aborted by its client: no first token %g ms "
			 "after its arrival (--client-timeout-ms)", m->c->client_timeout_ms);
	} else if (m->why && m->why[tag] == ABORT_FRAC) {
		m->t->client_aborts++;
		snprintf(r->msg, sizeof(r->msg), "aborted by its client after %u of %u tokens "
			 "(--abort-frac)", tokens, out);
	} else {
		snprintf(r->msg, sizeof(r->msg), "aborted after %u of %u tokens", tokens, out);
	}
}

/* A request ended: its result from the scheduler's accounting, then forget it. */
static void collect(struct sim *m, struct sim_inst *in, uint32_t req)
{
	ACCEL_OPTS(accel_sched_req_info, info);
	const struct sim_handoff *h;
	struct lg_result *r;
	const struct lg_req *q;

	if (accel_sched_req_info(in->s, req, &info))
		return;
	h = m->ho ? &m->ho[info.tag] : NULL;
	if (h && h->phase == HO_PREFILL && info.state == ACCEL_SCHED_FINISHED &&
	    info.output_tokens) {
		hand_off(m, in, &info);
		accel_sched_remove(in->s, req);
		in->alive--;
		return;
	}
	r = &m->res[info.tag];
	q = &m->rq[info.tag];
	r->status = 200;
	r->end_s = (double)(info.finish_ns - T0_NS) / 1e9;
	r->tokens = (uint32_t)info.output_tokens;
	r->ttft_ms = info.first_token_ns ?
		     (double)(info.first_token_ns - info.arrival_ns) / 1e6 : 0;
	r->tpot_ms = info.tpot_count ? (double)info.tpot_sum_ns / info.tpot_count / 1e6 : 0;
	r->e2e_ms = (double)(info.finish_ns - info.arrival_ns) / 1e6;
	r->srv_queue_ms = (double)info.queue_ns / 1e6;
	r->preemptions = info.swaps_out + info.recomputes;
	r->recomputed = info.recomputed_tokens;
	r->prompt_tokens = info.prompt_len;
	if (h && h->phase == HO_DECODE) {
		/* The prefill side's first token, then the decode side's (its prompt's last). */
		uint64_t last = info.last_token_ns ? info.last_token_ns : info.finish_ns;

		r->tokens++;
		r->ttft_ms = (double)(h->first_ns - h->arrival_ns) / 1e6;
		r->tpot_ms = r->tokens > 1 ? (double)(last - h->first_ns) / (r->tokens - 1) / 1e6 :
			     0;
		r->e2e_ms = (double)(info.finish_ns - h->arrival_ns) / 1e6;
		r->srv_queue_ms = (double)h->queue_ns / 1e6;
		r->preemptions += h->preemptions;
		r->recomputed += h->recomputed;
		r->prompt_tokens = info.prompt_len - 1;
	}
	r->ok = info.state == ACCEL_SCHED_FINISHED && r->tokens >= q->output_len;
	r->fail = r->ok ? LG_FAIL_NONE : info.state == ACCEL_SCHED_FINISHED ? LG_FAIL_SHORT :
		  LG_FAIL_INCOMPLETE;
	if (info.state == ACCEL_SCHED_ABORTED)
		aborted(m, info.tag, r->tokens);
	r->summary = 1;
	r->srv_ttft_ms = r->ttft_ms;
	r->srv_tpot_ms = r->tpot_ms;
	r->srv_e2e_ms = r->e2e_ms;
	r->completion_tokens = r->tokens;
	if (info.finish_ns > m->last_finish)
		m->last_finish = info.finish_ns;
	accel_sched_remove(in->s, req);
	in->alive--;
	m->done++;
	finish(m, info.tag);
}

/*
 * --pd: a hand-off lands on decode instance @in: the prompt's full blocks go into its block
 * manager as cached blocks, and the request is added with its first token as the prompt's last
 * (admission finds the blocks and computes the partial last block and that token) and one output
 * fewer to go.
 */
static void land(struct sim *m, struct sim_inst *in, size_t idx, uint64_t now)
{
	const struct lg_req *q = &m->rq[idx];
	uint64_t bt = (uint64_t)m->p->block_tokens;
	int32_t *prompt;
	size_t len;
	uint32_t req;
	int ret;

	prompt = prompt_tokens(m, idx, 1, &len);
	if (!prompt)
		return;
	in->demand -= (len + bt - 1) / bt;
	sim_inst_import(in, prompt, len);
	prompt[len] = m->ho[idx].token;
	ACCEL_OPTS(accel_sched_req_opts, o, .tag = idx, .prompt = prompt, .prompt_len = len + 1,
		   .max_output = q->output_len - 1, .priority = q->priority,
		   .client = client_id(m, q->client), .arrival_ns = now,
		   .ttft_slo_ns = (uint64_t)llround(q->tpot_slo_ms * 1e6),
		   .tpot_slo_ns = (uint64_t)llround(q->tpot_slo_ms * 1e6));
	if (!strcmp(q->cls, "offline"))
		o.flags = ACCEL_SCHED_REQ_OFFLINE;
	ret = add_to(m, in, &o, now, &req);
	free(prompt);
	if (ret) {
		char msg[128];

		snprintf(msg, sizeof(msg), "refused by the decode instance: %s",
			 ret == -E2BIG ? "more than its KV cache holds" : strerror(-ret));
		fail_req(m, idx, LG_FAIL_HTTP, msg);
	}
}

/* A token of request @tag at @now: the gap since its last one. */
static void token(struct sim *m, uint64_t tag, uint64_t now)
{
	struct lg_result *r = &m->res[tag];

	if (m->last_tok[tag]) {
		if (r->nr_gaps == m->gap_cap[tag]) {
			uint32_t cap = m->gap_cap[tag] ? m->gap_cap[tag] * 2 : 16;
			float *g = realloc(r->gaps_ms, cap * sizeof(*g));

			if (!g) {
				m->nomem = 1;
				return;
			}
			r->gaps_ms = g;
			m->gap_cap[tag] = cap;
		}
		r->gaps_ms[r->nr_gaps++] = (float)((double)(now - m->last_tok[tag]) / 1e6);
	}
	m->last_tok[tag] = now;
}

/* --abort-frac: the client of run @r's request closes its stream after its drawn token. */
static void abort_frac(struct sim *m, struct sim_inst *in, const struct accel_sched_run *r,
		       uint64_t now)
{
	uint32_t at = sim_abort_point(m->c, gid(m, r->tag), m->rq[r->tag].output_len);

	if (!at || m->why[r->tag] || m->res[r->tag].nr_gaps + 1 < at)
		return;
	if (!accel_sched_abort(in->s, r->req, now))
		m->why[r->tag] = ABORT_FRAC;
}

/* --client-timeout-ms: request @idx's first token has not come: its client gives up. */
static void timeout(struct sim *m, size_t idx, uint64_t now)
{
	struct sim_inst *in = &m->inst[m->at_inst[idx]];

	if (m->pin) {
		/* --stream: the slot's timeout has passed; given back if its request ended. */
		m->pin[idx] = 0;
		if (m->slot[idx] == SLOT_DONE) {
			slot_free(m, idx);
			return;
		}
	}
	if (m->res[idx].status || m->last_tok[idx] || m->why[idx] || !m->at_req)
		return;
	if (!accel_sched_abort(in->s, m->at_req[idx], now)) {
		m->why[idx] = ABORT_TIMEOUT;
		in->touched = 1;
	}
}

/* A pressure round on instance @in (and the next one of a --pressure-every). */
static void pressure(struct sim *m, struct sim_inst *in, uint32_t idx, uint64_t now)
{
	const struct sim_pressure *p = &m->c->pressure[idx];
	size_t holds = in->nr_holds;

	m->nr_side--;
	if (p->every_s > 0) {
		m->nr_periodic--;
		m->periodic_stale = m->done == m->periodic_done ? m->periodic_stale + 1 : 0;
		m->periodic_done = m->done;
		if (m->periodic_stale >= MAX_STALE_ROUNDS)
			m->t->pressure_stopped = 1;
		else if (m->done < m->n) {
			if (sim_heap_push(&m->h, now + (uint64_t)llround(p->every_s * 1e9),
					  SIM_EV(SIM_EV_PRESSURE, in->id), idx))
				m->nomem = 1;
			m->nr_side++;
			m->nr_periodic++;
		}
	}
	if (sim_pressure_ask(in, m->c, idx, &m->h, now, m->t))
		m->nomem = 1;
	m->nr_side += in->nr_holds - holds;
}

static void step_end(struct sim *m, struct sim_inst *in, uint64_t now)
{
	uint32_t i, layers;

	for (i = 0; i < in->out.nr_runs; i++) {
		const struct accel_sched_run *r = &in->runs[i];
		ACCEL_OPTS(accel_sched_result, res, .computed = r->tokens);

		if (sim_inst_run_cut(in, i, &layers)) {
			/* Cut: the chunk stops at a layer, to resume from there. */
			res.computed = 0;
			res.layers_done = layers;
			res.flags = ACCEL_SCHED_RES_YIELDED;
			accel_sched_update(in->s, r->req, &res, now);
			continue;
		}
		if (r->flags & ACCEL_SCHED_RUN_PREFILL)
			in->t->prefill_tokens += r->tokens;
		else
			in->t->decode_tokens += r->tokens;
		if (r->flags & ACCEL_SCHED_RUN_SAMPLE) {
			res.flags = ACCEL_SCHED_RES_TOKEN;
			res.token = (int32_t)((gid(m, r->tag) * 2654435761u + r->start +
					       r->tokens) % 50000);
			token(m, r->tag, now);
			if (m->ho)
				m->ho[r->tag].token = res.token;
		}
		accel_sched_update(in->s, r->req, &res, now);
		if ((r->flags & ACCEL_SCHED_RUN_SAMPLE) && m->why)
			abort_frac(m, in, r, now);
	}
	in->t->busy_ns += now - in->step_start;
	in->busy = 0;
}

/* One step of @in at @now if anything runs; the events it delivers handled. */
static void step(struct sim *m, struct sim_inst *in, uint64_t now)
{
	uint32_t i;

	do {
		if (sim_inst_sched(in, now))
			return;
		for (i = 0; i < in->out.nr_events; i++) {
			const struct accel_sched_event *e = &in->events[i];

			if (e->from == ACCEL_SCHED_WAITING)
				sim_inst_left_queue(in, e->req);
			if (e->to == ACCEL_SCHED_FINISHED || e->to == ACCEL_SCHED_ABORTED)
				collect(m, in, e->req);
		}
		if (sim_inst_start_swaps(in, &m->h, now))
			m->nomem = 1;
	} while (!in->out.nr_runs && in->out.events_left);
	if (!in->out.nr_runs) {
		/*
		 * Nothing ran, yet requests are alive: a real engine's loop polls again (time-based
		 * decisions, slo's pacing, change with the clock); give up after MAX_IDLE_TICKS
		 * empty polls in a row.
		 */
		if (in->alive && !in->tick_pending && in->idle_ticks < MAX_IDLE_TICKS) {
			in->tick_pending = 1;
			in->idle_ticks++;
			m->t->idle_ticks++;
			if (sim_heap_push(&m->h, now + in->tick_ns, SIM_EV(SIM_EV_TICK, in->id), 0))
				m->nomem = 1;
		}
		return;
	}
	in->idle_ticks = 0;
	if (sim_inst_begin(in, &m->h, now))
		m->nomem = 1;
}

static void handle(struct sim *m, const struct sim_event *ev)
{
	struct sim_inst *in = &m->inst[SIM_EV_INST(ev->type)];
	size_t idx;

	switch (SIM_EV_KIND(ev->type)) {
	case SIM_EV_ARRIVAL:
		idx = ev->arg;
		if (m->st)
			sim_stream_class(m->st, &m->rq[idx]);
		arrive(m, idx, ev->t_ns);
		if (m->c->client_timeout_ms > 0 && !m->res[idx].status) {
			uint64_t at = ev->t_ns + (uint64_t)llround(m->c->client_timeout_ms * 1e6);

			if (sim_heap_push(&m->h, at, SIM_EV_TIMEOUT, idx))
				m->nomem = 1;
			m->nr_side++;
			if (m->pin)
				m->pin[idx] = 1;
		}
		if (m->st)
			stream_next(m);
		else if (++idx < m->n &&
		    sim_heap_push(&m->h, arrival_ns(&m->wl->req[idx]), SIM_EV_ARRIVAL, idx))
			m->nomem = 1;
		break;
	case SIM_EV_STEP_END:
		if (ev->arg != in->step_gen)	/* a cut step's first end: nothing */
			break;
		step_end(m, in, ev->t_ns);
		in->touched = 1;
		if (in->pq_n) {
			size_t holds = in->nr_holds;

			if (sim_pressure_drain(in, m->c, &m->h, ev->t_ns, m->t))
				m->nomem = 1;
			m->nr_side += in->nr_holds - holds;
		}
		break;
	case SIM_EV_SWAP_DONE: {
		int fail = sim_swap_fails(m->c, in->id, in->swaps_done++);

		m->t->swap_fails_injected += fail;
		accel_sched_swap_done(in->s, ev->arg, fail ? -EIO : 0, ev->t_ns);
		if (in->nr_holds)
			sim_pressure_top_up(in, m->t);
		in->touched = 1;
		break;
	}
	case SIM_EV_TICK:
		in->tick_pending = 0;
		in->touched = 1;
		break;
	case SIM_EV_HANDOFF:
		land(m, in, ev->arg, ev->t_ns);
		break;
	case SIM_EV_PRESSURE:
		pressure(m, in, ev->arg, ev->t_ns);
		return;
	case SIM_EV_HOLD_END:
		m->nr_side--;
		sim_pressure_hold_end(in, ev->arg);
		return;
	case SIM_EV_TIMEOUT:
		m->nr_side--;
		timeout(m, ev->arg, ev->t_ns);
		return;
	}
	m->last_ev = ev->t_ns;
}

/* The events' checks and their per-request state (only when asked for). */
static int events_setup(struct sim *m, char *err, size_t errlen)
{
	const struct sim_config *c = m->c;
	int host = !c->no_host && (c->host_blocks || m->p->host_blocks);
	uint32_t i;

	for (i = 0; i < c->nr_pressure; i++) {
		const struct sim_pressure *p = &c->pressure[i];

		if (p->tier > 1 || (p->tier == 1 && !host)) {
			snprintf(err, errlen, "a pressure round on tier %u: no such tier%s",
				 p->tier, p->tier == 1 ? " (no host tier)" : "");
			return -1;
		}
		if (p->inst >= 0 && (uint32_t)p->inst >= m->nr_inst) {
			snprintf(err, errlen, "a pressure round on instance %d: the run has %u",
				 p->inst, m->nr_inst);
			return -1;
		}
	}
	if (!(c->client_timeout_ms > 0) && !(c->abort_frac > 0))
		return 0;
	m->at_inst = calloc(m->cap + 1, sizeof(*m->at_inst));
	m->at_req = calloc(m->cap + 1, sizeof(*m->at_req));
	m->why = calloc(m->cap + 1, sizeof(*m->why));
	if (!m->at_inst || !m->at_req || !m->why) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* The pressure rounds' first events, one per instance asked. */
static void events_start(struct sim *m)
{
	const struct sim_config *c = m->c;
	uint32_t i, k;

	for (i = 0; i < c->nr_pressure; i++) {
		const struct sim_pressure *p = &c->pressure[i];

		for (k = 0; k < m->nr_inst; k++) {
			if (p->inst >= 0 && (uint32_t)p->inst != k)
				continue;
			if (sim_heap_push(&m->h, T0_NS + (uint64_t)llround(p->at_s * 1e9),
					  SIM_EV(SIM_EV_PRESSURE, k), i))
				m->nomem = 1;
			m->nr_side++;
			m->nr_periodic += p->every_s > 0;
		}
	}
}

static int setup(struct sim *m, char *err, size_t errlen)
{
	const struct sim_config *c = m->c;
	size_t n = m->cap;
	uint32_t i;

	m->nr_inst = c->pd_prefill ? c->pd_prefill + c->pd_decode :
		     c->instances ? c->instances : 1;
	m->first_decode = c->pd_prefill ? c->pd_prefill : m->nr_inst;
	if (m->nr_inst > SIM_MAX_INSTANCES) {
		snprintf(err, errlen, "more than %u instances", SIM_MAX_INSTANCES);
		return -1;
	}
	if (c->pd_prefill && !(m->p->net_gbps > 0)) {
		snprintf(err, errlen, "the profile names no link between instances (net_gbps)");
		return -1;
	}
	m->t->nr_instances = m->nr_inst;
	m->inst = calloc(m->nr_inst, sizeof(*m->inst));
	m->loads = calloc(m->nr_inst, sizeof(*m->loads));
	m->last_tok = calloc(n + 1, sizeof(*m->last_tok));
	m->gap_cap = calloc(n + 1, sizeof(*m->gap_cap));
	if (c->pd_prefill)
		m->ho = calloc(n + 1, sizeof(*m->ho));
	if (!m->inst || !m->loads || !m->last_tok || !m->gap_cap || (c->pd_prefill && !m->ho)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (events_setup(m, err, errlen))
		return -1;
	for (i = 0; i < m->nr_inst; i++) {
		uint32_t role = !c->pd_prefill ? SIM_ROLE_BOTH :
				i < m->first_decode ? SIM_ROLE_PREFILL : SIM_ROLE_DECODE;

		if (sim_inst_setup(&m->inst[i], i, role, c, m->st ? SIM_STREAM_LIVE : n,
				   &m->t->inst[i], err, errlen))
			return -1;
	}
	if (m->st && slots_grow(m, STREAM_SLOTS)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->t->gpu_blocks = c->gpu_blocks ? c->gpu_blocks : m->p->gpu_blocks;
	m->t->host_blocks = c->no_host ? 0 : c->host_blocks ? c->host_blocks : m->p->host_blocks;
	m->t->block_tokens = (uint32_t)m->p->block_tokens;
	return 0;
}

static void teardown(struct sim *m)
{
	uint32_t i;

	for (i = 0; m->inst && i < m->nr_inst; i++)
		sim_inst_teardown(&m->inst[i]);
	sim_heap_free(&m->h);
	free(m->inst);
	free(m->loads);
	free(m->ho);
	free(m->last_tok);
	free(m->gap_cap);
	free(m->at_inst);
	free(m->at_req);
	free(m->why);
	if (m->st) {
		for (i = 0; i < m->cap; i++) {
			free(m->res[i].gaps_ms);
			if (m->slot[i] != SLOT_FREE) {
				free(m->sreq[i].prompt);
				free(m->sreq[i].hash_ids);
			}
		}
		free(m->res);
	}
	free(m->sreq);
	free(m->gidx);
	free(m->slot);
	free(m->pin);
	free(m->free_slots);
}

static const char *const state_names[ACCEL_SCHED_NR_STATES] = {
	"waiting", "prefilling", "decoding", "swapping out", "swapped", "swapping in",
	"dropped for recompute", "finished", "aborted",
};

/* Whether the request of tag @tag is alive (made, no result yet). */
static int alive(const struct sim *m, uint64_t tag)
{
	if (tag >= m->cap || (m->slot && m->slot[tag] != SLOT_LIVE))
		return 0;
	return !m->res[tag].status;
}

/* Requests the run left unfinished: failed, with the state they were left in. */
static void unfinished(struct sim *m)
{
	ACCEL_OPTS(accel_sched_req_info, info);
	char msg[128];
	size_t id;
	uint32_t i;

	if (m->done == m->n)
		return;
	for (i = 0; i < m->nr_inst; i++) {
		struct sim_inst *in = &m->inst[i];

		for (id = 0; id < in->max_req; id++) {
			if (accel_sched_req_info(in->s, id, &info) || !alive(m, info.tag) ||
			    info.state >= ACCEL_SCHED_NR_STATES)
				continue;
			/* A decode side's count leaves out the prefill side's first token. */
			if (m->ho && m->ho[info.tag].phase == HO_DECODE &&
			    in->role == SIM_ROLE_DECODE)
				info.output_tokens++;
			snprintf(msg, sizeof(msg), "never finished: left %s with %llu of %u tokens",
				 state_names[info.state], (unsigned long long)info.output_tokens,
				 m->rq[info.tag].output_len);
			fail_req(m, info.tag, LG_FAIL_INCOMPLETE, msg);
			m->t->unfinished++;
		}
	}
	for (id = 0; id < m->cap; id++)
		if (alive(m, id)) {
			fail_req(m, id, LG_FAIL_INCOMPLETE, "never finished");
			m->t->unfinished++;
		}
	/* --stream: requests not made yet (none, unless the loop stopped early). */
	while (m->st && !m->nomem && !m->src_err && !stream_next(m)) {
		id = m->free_slots[m->nr_free];		/* the slot stream_next() took */
		sim_stream_class(m->st, &m->rq[id]);
		fail_req(m, id, LG_FAIL_INCOMPLETE, "never finished");
		m->t->unfinished++;
	}
}

/* The instances' counters summed into the run's. */
static void totals(struct sim *m)
{
	struct sim_totals *t = m->t;
	uint32_t i, k;

	for (i = 0; i < m->nr_inst; i++) {
		struct sim_inst *in = &m->inst[i];
		ACCEL_OPTS(accel_sched_stats, st);
		ACCEL_OPTS(accel_bm_tier_stats, ts);

		accel_sched_stats(in->s, &st);
		accel_bm_tier_stats(in->bm, 0, &ts);
		in->t->yields = st.yields;
		t->steps += in->t->steps;
		t->busy_ns += in->t->busy_ns;
		t->prefill_tokens += in->t->prefill_tokens;
		t->decode_tokens += in->t->decode_tokens;
		t->swap_ns += in->swap_ns;
		t->tokens += st.tokens;
		t->swaps_out += st.swaps_out;
		t->swaps_in += st.swaps_in;
		t->swap_failures += st.swap_failures;
		t->recomputes += st.recomputes;
		t->recomputed_tokens += st.recomputed_tokens;
		t->swapped_bytes += st.swapped_bytes;
		t->yields += st.yields;
		t->prefix_hit_blocks += ts.hits;
		for (k = 0; k < in->nr_holds; k++)
			sim_pressure_hold_end(in, k);
		for (k = 0; k < 2; k++)
			if (!accel_bm_tier_stats(in->bm, k, &ts))
				t->end_used_blocks += ts.used;
	}
}

/* The run: the events until none is left but pressure rounds; its totals into m->t. */
static int run(struct sim *m, char *err, size_t errlen)
{
	struct sim_event ev = { 0 };
	struct sim_totals *t = m->t;
	int ret = -1;
	uint32_t i;

	memset(t, 0, sizeof(*t));
	sim_heap_init(&m->h);
	if (setup(m, err, errlen))
		goto out;
	if (m->st) {
		if (!stream_next(m))
			m->first_arrival = m->h.v[0].t_ns;
	} else if (m->n) {
		m->first_arrival = arrival_ns(&m->wl->req[0]);
		if (sim_heap_push(&m->h, m->first_arrival, SIM_EV_ARRIVAL, 0))
			m->nomem = 1;
	}
	events_start(m);
	while (!m->nomem && !m->src_err && sim_heap_pop(&m->h, &ev)) {
		const struct sim_event *next;

		handle(m, &ev);
		while ((next = sim_heap_peek(&m->h)) && next->t_ns == ev.t_ns) {
			sim_heap_pop(&m->h, &ev);
			handle(m, &ev);
		}
		for (i = 0; i < m->nr_inst; i++) {
			if (m->inst[i].touched && !m->inst[i].busy)
				step(m, &m->inst[i], ev.t_ns);
			m->inst[i].touched = 0;
			if (m->inst[i].nomem)
				m->nomem = 1;
		}
		/* Pressure rounds left once every request is done, or only periodic ones: over. */
		if (m->h.n && m->h.n == m->nr_side &&
		    (m->done == m->n || m->h.n == m->nr_periodic))
			break;
	}
	if (m->src_err)
		goto out;		/* the reader's message is in err */
	if (!m->nomem)
		unfinished(m);
	if (m->nomem || (m->st && m->st->nomem)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	totals(m);
	if (m->last_ev > m->last_finish)
		m->last_finish = m->last_ev;
	t->duration_s = m->last_finish > m->first_arrival ?
			(double)(m->last_finish - m->first_arrival) / 1e9 : 0;
	ret = 0;
out:
	teardown(m);
	return ret;
}

int sim_run(const struct sim_config *c, const struct lg_workload *wl, struct lg_result *res,
	    struct sim_totals *t, char *err, size_t errlen)
{
	struct sim m = { .c = c, .p = c->prof, .wl = wl, .n = wl->n, .cap = wl->n,
			 .rq = wl->req, .res = res, .t = t };

	return run(&m, err, errlen);
}

int sim_run_stream(const struct sim_config *c, const struct lg_synth_opts *o,
		   struct lg_trace_iter *tr, struct sim_stream *st, struct sim_totals *t, char *err,
		   size_t errlen)
{
	struct lg_synth_iter it;
	struct sim m = { .c = c, .p = c->prof, .n = SIZE_MAX, .st = st, .it = &it, .tr = tr,
			 .t = t };

	if (tr)
		return run(&m, err, errlen);
	if (lg_synth_iter_init(&it, o)) {
		memset(t, 0, sizeof(*t));
		snprintf(err, errlen, "the synthetic workload cannot be streamed (sessions, or "
			 "options the generator refuses)");
		return -1;
	}
	return run(&m, err, errlen);
}
