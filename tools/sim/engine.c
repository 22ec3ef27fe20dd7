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
#include "instance.h"

/* Every time is offset by this: 0 means "not yet" in the scheduler's accounting. */
#define T0_NS		1000000000ull
#define MAX_CLIENTS	64
/* Empty polls in a row after which requests left are given up as stuck. */
#define MAX_IDLE_TICKS	1000

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
	const struct lg_workload *wl;
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
};

static uint64_t arrival_ns(const struct lg_req *q)
{
	return T0_NS + (uint64_t)llround(q->arrival_s * 1e9);
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
	if (!ret && in->busy && !m->c->no_yield && accel_sched_should_yield(in->s) > 0 &&
	    sim_inst_cut(in, &m->h, now))
		m->nomem = 1;
	return ret;
}

static void arrive(struct sim *m, size_t idx, uint64_t now)
{
	const struct lg_req *q = &m->wl->req[idx];
	struct sim_inst *in;
	uint8_t *bytes;
	int32_t *prompt;
	size_t len, i;
	uint32_t req;
	int ret;

	m->arrived++;
	m->res[idx].start_s = (double)(now - T0_NS) / 1e9;
	bytes = lg_prompt_make(q, m->c->seed, idx, &len);
	prompt = malloc((len ? len : 1) * sizeof(*prompt));
	if (!bytes || !prompt) {
		free(bytes);
		free(prompt);
		m->nomem = 1;
		fail_req(m, idx, LG_FAIL_HTTP, "out of memory");
		return;
	}
	for (i = 0; i < len; i++)
		prompt[i] = bytes[i];
	if (!len)
		prompt[len++] = 0;
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
	free(bytes);
	free(prompt);
	if (ret) {
		char msg[128];

		if (ret == -E2BIG)
			snprintf(msg, sizeof(msg), "refused: %zu prompt + %u output tokens are "
				 "more than the GPU's KV cache holds", len, q->output_len);
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
	q = &m->wl->req[info.tag];
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
}

/*
 * --pd: a hand-off lands on decode instance @in: the prompt's full blocks go into its block
 * manager as cached blocks, and the request is added with its first token as the prompt's last
 * (admission finds the blocks and computes the partial last block and that token) and one output
 * fewer to go.
 */
static void land(struct sim *m, struct sim_inst *in, size_t idx, uint64_t now)
{
	const struct lg_req *q = &m->wl->req[idx];
	uint64_t bt = (uint64_t)m->p->block_tokens;
	uint8_t *bytes;
	int32_t *prompt;
	size_t len, i;
	uint32_t req;
	int ret;

	bytes = lg_prompt_make(q, m->c->seed, idx, &len);
	prompt = malloc((len + 2) * sizeof(*prompt));
	if (!bytes || !prompt) {
		free(bytes);
		free(prompt);
		m->nomem = 1;
		fail_req(m, idx, LG_FAIL_HTTP, "out of memory");
		return;
	}
	for (i = 0; i < len; i++)
		prompt[i] = bytes[i];
	if (!len)
		prompt[len++] = 0;
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
	free(bytes);
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
			res.token = (int32_t)((r->tag * 2654435761u + r->start + r->tokens) %
					      50000);
			token(m, r->tag, now);
			if (m->ho)
				m->ho[r->tag].token = res.token;
		}
		accel_sched_update(in->s, r->req, &res, now);
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
		arrive(m, idx, ev->t_ns);
		if (++idx < m->wl->n &&
		    sim_heap_push(&m->h, arrival_ns(&m->wl->req[idx]), SIM_EV_ARRIVAL, idx))
			m->nomem = 1;
		break;
	case SIM_EV_STEP_END:
		if (ev->arg != in->step_gen)	/* a cut step's first end: nothing */
			break;
		step_end(m, in, ev->t_ns);
		in->touched = 1;
		break;
	case SIM_EV_SWAP_DONE:
		accel_sched_swap_done(in->s, ev->arg, 0, ev->t_ns);
		in->touched = 1;
		break;
	case SIM_EV_TICK:
		in->tick_pending = 0;
		in->touched = 1;
		break;
	case SIM_EV_HANDOFF:
		land(m, in, ev->arg, ev->t_ns);
		break;
	}
}

static int setup(struct sim *m, char *err, size_t errlen)
{
	const struct sim_config *c = m->c;
	size_t n = m->wl->n;
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
	for (i = 0; i < m->nr_inst; i++) {
		uint32_t role = !c->pd_prefill ? SIM_ROLE_BOTH :
				i < m->first_decode ? SIM_ROLE_PREFILL : SIM_ROLE_DECODE;

		if (sim_inst_setup(&m->inst[i], i, role, c, n, &m->t->inst[i], err, errlen))
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
}

static const char *const state_names[ACCEL_SCHED_NR_STATES] = {
	"waiting", "prefilling", "decoding", "swapping out", "swapped", "swapping in",
	"dropped for recompute", "finished", "aborted",
};

/* Requests the run left unfinished: failed, with the state they were left in. */
static void unfinished(struct sim *m)
{
	ACCEL_OPTS(accel_sched_req_info, info);
	char msg[128];
	size_t id;
	uint32_t i;

	if (m->done == m->wl->n)
		return;
	for (i = 0; i < m->nr_inst; i++) {
		struct sim_inst *in = &m->inst[i];

		for (id = 0; id < in->max_req; id++) {
			if (accel_sched_req_info(in->s, id, &info) || info.tag >= m->wl->n ||
			    m->res[info.tag].status || info.state >= ACCEL_SCHED_NR_STATES)
				continue;
			/* A decode side's count leaves out the prefill side's first token. */
			if (m->ho && m->ho[info.tag].phase == HO_DECODE &&
			    in->role == SIM_ROLE_DECODE)
				info.output_tokens++;
			snprintf(msg, sizeof(msg), "never finished: left %s with %llu of %u tokens",
				 state_names[info.state], (unsigned long long)info.output_tokens,
				 m->wl->req[info.tag].output_len);
			fail_req(m, info.tag, LG_FAIL_INCOMPLETE, msg);
			m->t->unfinished++;
		}
	}
	for (id = 0; id < m->wl->n; id++)
		if (!m->res[id].status) {
			fail_req(m, id, LG_FAIL_INCOMPLETE, "never finished");
			m->t->unfinished++;
		}
}

/* The instances' counters summed into the run's. */
static void totals(struct sim *m)
{
	struct sim_totals *t = m->t;
	uint32_t i;

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
	}
}

int sim_run(const struct sim_config *c, const struct lg_workload *wl, struct lg_result *res,
	    struct sim_totals *t, char *err, size_t errlen)
{
	struct sim m = { .c = c, .p = c->prof, .wl = wl, .res = res, .t = t };
	struct sim_event ev = { 0 };
	int ret = -1;
	uint32_t i;

	memset(t, 0, sizeof(*t));
	sim_heap_init(&m.h);
	if (setup(&m, err, errlen))
		goto out;
	if (wl->n) {
		m.first_arrival = arrival_ns(&wl->req[0]);
		if (sim_heap_push(&m.h, m.first_arrival, SIM_EV_ARRIVAL, 0))
			m.nomem = 1;
	}
	while (!m.nomem && sim_heap_pop(&m.h, &ev)) {
		const struct sim_event *next;

		handle(&m, &ev);
		while ((next = sim_heap_peek(&m.h)) && next->t_ns == ev.t_ns) {
			sim_heap_pop(&m.h, &ev);
			handle(&m, &ev);
		}
		for (i = 0; i < m.nr_inst; i++) {
			if (m.inst[i].touched && !m.inst[i].busy)
				step(&m, &m.inst[i], ev.t_ns);
			m.inst[i].touched = 0;
			if (m.inst[i].nomem)
				m.nomem = 1;
		}
	}
	if (m.nomem) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	unfinished(&m);
	totals(&m);
	if (ev.t_ns > m.last_finish)
		m.last_finish = ev.t_ns;
	t->duration_s = m.last_finish > m.first_arrival ?
			(double)(m.last_finish - m.first_arrival) / 1e9 : 0;
	ret = 0;
out:
	teardown(&m);
	return ret;
}
