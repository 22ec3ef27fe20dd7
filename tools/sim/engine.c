// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - the simulated engine (see engine.h): the event loop over the scheduler and the
 * block manager, and each request's result measured the way kvaccel-loadgen measures a real
 * server's (first token, every gap between tokens, end of the stream).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "engine.h"
#include "event.h"

/* Every time is offset by this: 0 means "not yet" in the scheduler's accounting. */
#define T0_NS		1000000000ull
#define MAX_RUNS	8192
#define MAX_SWAPS	8192
#define MAX_EVENTS	16384
#define MAX_CLIENTS	64
/* Empty polls in a row after which requests left are given up as stuck. */
#define MAX_IDLE_TICKS	1000

struct sim {
	const struct sim_config *c;
	const struct sim_profile *p;
	const struct lg_workload *wl;
	struct lg_result *res;
	struct sim_totals *t;
	struct accel_bm *bm;
	struct accel_sched *s;
	struct sim_heap h;
	struct accel_sched_run *runs;
	struct accel_sched_swap *swaps;
	struct accel_sched_event *events;
	struct accel_sched_out out;
	uint64_t *last_tok;		/* per request: its last token's time (0: none yet) */
	uint32_t *gap_cap;
	uint64_t link_free[2];		/* per direction: when the link is free again */
	uint64_t step_start, step_end_ns, first_arrival, last_finish;
	uint32_t *layers_run;		/* per run of the step in flight: its layers this step */
	uint32_t step_gen;		/* the step in flight's generation (a cut moves its end) */
	uint32_t layers;		/* the profile's */
	int cut;			/* the step in flight's prefills yielded */
	uint64_t tick_ns;		/* an idle engine's poll interval */
	size_t arrived, done;
	uint32_t idle_ticks;
	int tick_pending;
	char clients[MAX_CLIENTS][LG_NAME_MAX];
	uint32_t nr_clients, max_req;
	int busy, nomem;
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

static void arrive(struct sim *m, size_t idx, uint64_t now)
{
	const struct lg_req *q = &m->wl->req[idx];
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
	ret = accel_sched_add(m->s, &o, &req);
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

/* A request ended: its result from the scheduler's accounting, then forget it. */
static void collect(struct sim *m, uint32_t req)
{
	ACCEL_OPTS(accel_sched_req_info, info);
	struct lg_result *r;
	const struct lg_req *q;

	if (accel_sched_req_info(m->s, req, &info))
		return;
	r = &m->res[info.tag];
	q = &m->wl->req[info.tag];
	r->status = 200;
	r->end_s = (double)(info.finish_ns - T0_NS) / 1e9;
	r->tokens = (uint32_t)info.output_tokens;
	r->ttft_ms = info.first_token_ns ?
		     (double)(info.first_token_ns - info.arrival_ns) / 1e6 : 0;
	r->tpot_ms = info.tpot_count ? (double)info.tpot_sum_ns / info.tpot_count / 1e6 : 0;
	r->e2e_ms = (double)(info.finish_ns - info.arrival_ns) / 1e6;
	r->ok = info.state == ACCEL_SCHED_FINISHED && r->tokens >= q->output_len;
	r->fail = r->ok ? LG_FAIL_NONE : info.state == ACCEL_SCHED_FINISHED ? LG_FAIL_SHORT :
		  LG_FAIL_INCOMPLETE;
	r->summary = 1;
	r->srv_ttft_ms = r->ttft_ms;
	r->srv_tpot_ms = r->tpot_ms;
	r->srv_e2e_ms = r->e2e_ms;
	r->srv_queue_ms = (double)info.queue_ns / 1e6;
	r->preemptions = info.swaps_out + info.recomputes;
	r->recomputed = info.recomputed_tokens;
	r->prompt_tokens = info.prompt_len;
	r->completion_tokens = info.output_tokens;
	if (info.finish_ns > m->last_finish)
		m->last_finish = info.finish_ns;
	accel_sched_remove(m->s, req);
	m->done++;
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

/* A run's share of a step of which it computes @layers_run of the model's layers. */
static void batch_add(struct sim_batch *b, const struct accel_sched_run *r, uint32_t layers_run,
		      uint32_t layers)
{
	double q = (double)r->tokens * (2.0 * r->start + r->tokens), w;

	if (!(r->flags & ACCEL_SCHED_RUN_PREFILL)) {
		b->decode_tokens += r->tokens;
		b->context_tokens += r->start + r->tokens;
	} else if (layers_run >= layers) {
		b->prefill_tokens += r->tokens;
		b->quad += q;
	} else {
		/* Part of the chunk's layers: its share, in whole tokens. */
		w = (double)layers_run / layers;
		b->prefill_tokens += (uint64_t)llround(r->tokens * w);
		b->quad += q * w;
	}
}

static void step_end(struct sim *m, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < m->out.nr_runs; i++) {
		const struct accel_sched_run *r = &m->runs[i];
		ACCEL_OPTS(accel_sched_result, res, .computed = r->tokens);

		if ((r->flags & ACCEL_SCHED_RUN_PREFILL) &&
		    r->start_layer + m->layers_run[i] < m->layers) {
			/* Cut: the chunk stops at a layer, to resume from there. */
			res.computed = 0;
			res.layers_done = r->start_layer + m->layers_run[i];
			res.flags = ACCEL_SCHED_RES_YIELDED;
			accel_sched_update(m->s, r->req, &res, now);
			continue;
		}
		if (r->flags & ACCEL_SCHED_RUN_PREFILL)
			m->t->prefill_tokens += r->tokens;
		else
			m->t->decode_tokens += r->tokens;
		if (r->flags & ACCEL_SCHED_RUN_SAMPLE) {
			res.flags = ACCEL_SCHED_RES_TOKEN;
			res.token = (int32_t)((r->tag * 2654435761u + r->start + r->tokens) %
					      50000);
			token(m, r->tag, now);
		}
		accel_sched_update(m->s, r->req, &res, now);
	}
	m->t->busy_ns += now - m->step_start;
	m->busy = 0;
}

/*
 * A request arrived while a step is in flight and the scheduler says its prefills should yield
 * (accel_sched_should_yield()): each prefill run stops at the first of its layer boundaries at
 * or after @now (the step's time spread evenly over the layers it runs, one layer at least),
 * the decodes run whole; the step ends when the decodes' share and the layers the prefills did
 * are done (the profile's step time of that batch).
 */
static void cut_step(struct sim *m, uint64_t now)
{
	struct sim_batch b = { 0 };
	double f = (double)(now - m->step_start) / (double)(m->step_end_ns - m->step_start);
	uint64_t end;
	uint32_t i, cut = 0;

	for (i = 0; i < m->out.nr_runs; i++) {
		const struct accel_sched_run *r = &m->runs[i];
		uint32_t left = m->layers - r->start_layer, done;

		if (r->flags & ACCEL_SCHED_RUN_PREFILL) {
			done = (uint32_t)ceil(f * left - 1e-9);
			if (done < 1)
				done = 1;
			if (done < left) {
				m->layers_run[i] = done;
				cut++;
			}
		}
		batch_add(&b, r, m->layers_run[i], m->layers);
	}
	if (!cut)
		return;
	end = m->step_start + sim_step_ns(m->p, &b);
	if (end < now)
		end = now;
	m->cut = 1;
	m->step_end_ns = end;
	if (sim_heap_push(&m->h, end, SIM_EV_STEP_END, ++m->step_gen))
		m->nomem = 1;
}

/* The swaps a step started: each on its direction's link, one after another. */
static void start_swaps(struct sim *m, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < m->out.nr_swaps; i++) {
		const struct accel_sched_swap *w = &m->swaps[i];
		uint32_t dir = w->dir == ACCEL_SCHED_SWAP_IN;
		uint64_t start = m->link_free[dir] > now ? m->link_free[dir] : now;
		uint64_t d = sim_swap_ns(m->p, w->blocks);

		m->link_free[dir] = start + d;
		m->t->swap_ns += d;
		if (sim_heap_push(&m->h, start + d, SIM_EV_SWAP_DONE, w->req))
			m->nomem = 1;
	}
}

/* One step at @now if anything runs; the events it delivers collected. */
static void step(struct sim *m, uint64_t now)
{
	struct sim_batch b = { 0 };
	uint32_t i;

	do {
		m->out = (struct accel_sched_out){ .sz = sizeof(m->out), .runs = m->runs,
						   .max_runs = MAX_RUNS, .swaps = m->swaps,
						   .max_swaps = MAX_SWAPS, .events = m->events,
						   .max_events = MAX_EVENTS };
		if (accel_sched_step(m->s, now, &m->out))
			return;
		for (i = 0; i < m->out.nr_events; i++)
			if (m->events[i].to == ACCEL_SCHED_FINISHED ||
			    m->events[i].to == ACCEL_SCHED_ABORTED)
				collect(m, m->events[i].req);
		start_swaps(m, now);
	} while (!m->out.nr_runs && m->out.events_left);
	if (!m->out.nr_runs) {
		/*
		 * Nothing ran, yet requests are alive: a real engine's loop polls again (time-based
		 * decisions, slo's pacing, change with the clock); give up after MAX_IDLE_TICKS
		 * empty polls in a row.
		 */
		if (m->arrived > m->done && !m->tick_pending && m->idle_ticks < MAX_IDLE_TICKS) {
			m->tick_pending = 1;
			m->idle_ticks++;
			m->t->idle_ticks++;
			if (sim_heap_push(&m->h, now + m->tick_ns, SIM_EV_TICK, 0))
				m->nomem = 1;
		}
		return;
	}
	m->idle_ticks = 0;
	for (i = 0; i < m->out.nr_runs; i++) {
		const struct accel_sched_run *r = &m->runs[i];

		m->layers_run[i] = r->flags & ACCEL_SCHED_RUN_PREFILL ?
				   m->layers - r->start_layer : m->layers;
		batch_add(&b, r, m->layers_run[i], m->layers);
	}
	m->t->steps++;
	m->step_start = now;
	m->step_end_ns = now + sim_step_ns(m->p, &b);
	m->busy = 1;
	m->cut = 0;
	if (sim_heap_push(&m->h, m->step_end_ns, SIM_EV_STEP_END, ++m->step_gen))
		m->nomem = 1;
}

static void handle(struct sim *m, const struct sim_event *ev)
{
	size_t idx;

	switch (ev->type) {
	case SIM_EV_ARRIVAL:
		idx = ev->arg;
		arrive(m, idx, ev->t_ns);
		if (m->busy && !m->cut && !m->c->no_yield && accel_sched_should_yield(m->s) > 0)
			cut_step(m, ev->t_ns);
		if (++idx < m->wl->n &&
		    sim_heap_push(&m->h, arrival_ns(&m->wl->req[idx]), SIM_EV_ARRIVAL, idx))
			m->nomem = 1;
		break;
	case SIM_EV_STEP_END:
		if (ev->arg == m->step_gen)	/* else: a cut step's first end */
			step_end(m, ev->t_ns);
		break;
	case SIM_EV_SWAP_DONE:
		accel_sched_swap_done(m->s, ev->arg, 0, ev->t_ns);
		break;
	case SIM_EV_TICK:
		m->tick_pending = 0;
		break;
	}
}

static int setup(struct sim *m, char *err, size_t errlen)
{
	const struct sim_config *c = m->c;
	uint32_t blocks[2] = { c->gpu_blocks ? c->gpu_blocks : m->p->gpu_blocks,
			       c->host_blocks ? c->host_blocks : m->p->host_blocks };
	uint32_t tiers = c->no_host || !blocks[1] ? 1 : 2;
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = (uint32_t)m->p->block_tokens,
		   .nr_tiers = tiers, .tier_blocks = blocks);
	size_t n = m->wl->n;
	uint64_t prefill_ns = (uint64_t)llround(m->p->prefill_token_us * 1000);
	struct sim_batch empty = { 0 };

	m->t->gpu_blocks = blocks[0];
	m->t->host_blocks = tiers > 1 ? blocks[1] : 0;
	m->t->block_tokens = bc.block_tokens;
	m->bm = accel_bm_create(&bc);
	if (!m->bm) {
		snprintf(err, errlen, "the block manager: %s", strerror(errno));
		return -1;
	}
	ACCEL_OPTS(accel_sched_config, sc, .bm = m->bm, .policy = c->policy,
		   .max_tokens = c->max_tokens, .max_seqs = c->max_seqs,
		   .chunk_tokens = c->chunk_tokens, .preempt = c->preempt,
		   .priority_threshold = c->priority_threshold,
		   .max_requests = n < (1u << 20) ? (n ? (uint32_t)n : 1) : (1u << 20),
		   .block_bytes = m->p->block_bytes,
		   .swap_bw = (uint64_t)llround(m->p->swap_gbps * 1e9),
		   .swap_transfer_ns = (uint64_t)llround(m->p->swap_transfer_us * 1000),
		   .prefill_base_ns = (uint64_t)llround(m->p->step_base_us * 1000),
		   .prefill_token_ns = prefill_ns ? prefill_ns : 1,
		   .step_ns = sim_step_ns(m->p, &empty), .max_clients = MAX_CLIENTS);

	m->tick_ns = sc.step_ns;
	if (!sc.swap_transfer_ns)
		sc.swap_transfer_ns = 1;
	if (!sc.prefill_base_ns)
		sc.prefill_base_ns = 1;
	m->max_req = sc.max_requests;
	m->s = accel_sched_create(&sc);
	if (!m->s) {
		snprintf(err, errlen, "the scheduler refused the configuration: %s",
			 strerror(errno));
		return -1;
	}
	m->runs = calloc(MAX_RUNS, sizeof(*m->runs));
	m->swaps = calloc(MAX_SWAPS, sizeof(*m->swaps));
	m->events = calloc(MAX_EVENTS, sizeof(*m->events));
	m->last_tok = calloc(n + 1, sizeof(*m->last_tok));
	m->gap_cap = calloc(n + 1, sizeof(*m->gap_cap));
	m->layers_run = calloc(MAX_RUNS, sizeof(*m->layers_run));
	m->layers = (uint32_t)m->p->layers;
	if (!m->layers_run || !m->runs || !m->swaps || !m->events || !m->last_tok || !m->gap_cap) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void teardown(struct sim *m)
{
	if (m->s)
		accel_sched_destroy(m->s);
	if (m->bm)
		accel_bm_destroy(m->bm);
	sim_heap_free(&m->h);
	free(m->runs);
	free(m->swaps);
	free(m->events);
	free(m->last_tok);
	free(m->gap_cap);
	free(m->layers_run);
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

	if (m->done == m->wl->n)
		return;
	for (id = 0; id < m->max_req; id++) {
		if (accel_sched_req_info(m->s, id, &info) || info.tag >= m->wl->n ||
		    m->res[info.tag].status || info.state >= ACCEL_SCHED_NR_STATES)
			continue;
		snprintf(msg, sizeof(msg), "never finished: left %s with %llu of %u tokens",
			 state_names[info.state], (unsigned long long)info.output_tokens,
			 m->wl->req[info.tag].output_len);
		fail_req(m, info.tag, LG_FAIL_INCOMPLETE, msg);
		m->t->unfinished++;
	}
	for (id = 0; id < m->wl->n; id++)
		if (!m->res[id].status) {
			fail_req(m, id, LG_FAIL_INCOMPLETE, "never finished");
			m->t->unfinished++;
		}
}

int sim_run(const struct sim_config *c, const struct lg_workload *wl, struct lg_result *res,
	    struct sim_totals *t, char *err, size_t errlen)
{
	struct sim m = { .c = c, .p = c->prof, .wl = wl, .res = res, .t = t };
	ACCEL_OPTS(accel_sched_stats, st);
	ACCEL_OPTS(accel_bm_tier_stats, ts);
	struct sim_event ev = { 0 };
	int ret = -1;

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
		if (!m.busy)
			step(&m, ev.t_ns);
	}
	if (m.nomem) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	accel_sched_stats(m.s, &st);
	unfinished(&m);
	accel_bm_tier_stats(m.bm, 0, &ts);
	t->tokens = st.tokens;
	t->swaps_out = st.swaps_out;
	t->swaps_in = st.swaps_in;
	t->swap_failures = st.swap_failures;
	t->recomputes = st.recomputes;
	t->yields = st.yields;
	t->recomputed_tokens = st.recomputed_tokens;
	t->swapped_bytes = st.swapped_bytes;
	t->prefix_hit_blocks = ts.hits;
	if (ev.t_ns > m.last_finish)
		m.last_finish = ev.t_ns;
	t->duration_s = m.last_finish > m.first_arrival ?
			(double)(m.last_finish - m.first_arrival) / 1e9 : 0;
	ret = 0;
out:
	teardown(&m);
	return ret;
}
