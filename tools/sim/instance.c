// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim - one engine instance (see instance.h): its scheduler over its block manager, the
 * timing of its steps (whole, or cut by an operator-level yield) and of its swaps, and what the
 * dispatcher sees of it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance.h"

#define MAX_RUNS	8192
#define MAX_SWAPS	8192
#define MAX_EVENTS	16384
#define MAX_CLIENTS	64

int sim_inst_setup(struct sim_inst *in, uint32_t id, uint32_t role, const struct sim_config *c,
		   size_t n, struct sim_inst_totals *t, char *err, size_t errlen)
{
	const struct sim_profile *p = c->prof;
	uint32_t blocks[2] = { c->gpu_blocks ? c->gpu_blocks : p->gpu_blocks,
			       c->host_blocks ? c->host_blocks : p->host_blocks };
	uint32_t tiers = c->no_host || !blocks[1] ? 1 : 2;
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = (uint32_t)p->block_tokens,
		   .nr_tiers = tiers, .tier_blocks = blocks);
	uint64_t prefill_ns = (uint64_t)llround(p->prefill_token_us * 1000);
	struct sim_batch empty = { 0 };

	memset(in, 0, sizeof(*in));
	in->id = id;
	in->role = role;
	in->p = p;
	in->t = t;
	t->role = role;
	in->layers = (uint32_t)p->layers;
	in->bm = accel_bm_create(&bc);
	if (!in->bm) {
		snprintf(err, errlen, "the block manager: %s", strerror(errno));
		return -1;
	}
	ACCEL_OPTS(accel_sched_config, sc, .bm = in->bm, .policy = c->policy,
		   .max_tokens = c->max_tokens, .max_seqs = c->max_seqs,
		   .chunk_tokens = c->chunk_tokens, .preempt = c->preempt,
		   .priority_threshold = c->priority_threshold,
		   .max_requests = n < (1u << 20) ? (n ? (uint32_t)n : 1) : (1u << 20),
		   .block_bytes = p->block_bytes,
		   .swap_bw = (uint64_t)llround(p->swap_gbps * 1e9),
		   .swap_transfer_ns = (uint64_t)llround(p->swap_transfer_us * 1000),
		   .prefill_base_ns = (uint64_t)llround(p->step_base_us * 1000),
		   .prefill_token_ns = prefill_ns ? prefill_ns : 1,
		   .step_ns = sim_step_ns(p, &empty), .max_clients = MAX_CLIENTS);

	in->tick_ns = sc.step_ns;
	if (!sc.swap_transfer_ns)
		sc.swap_transfer_ns = 1;
	if (!sc.prefill_base_ns)
		sc.prefill_base_ns = 1;
	in->max_req = sc.max_requests;
	in->s = accel_sched_create(&sc);
	if (!in->s) {
		snprintf(err, errlen, "the scheduler refused the configuration: %s",
			 strerror(errno));
		return -1;
	}
	in->runs = calloc(MAX_RUNS, sizeof(*in->runs));
	in->swaps = calloc(MAX_SWAPS, sizeof(*in->swaps));
	in->events = calloc(MAX_EVENTS, sizeof(*in->events));
	in->layers_run = calloc(MAX_RUNS, sizeof(*in->layers_run));
	in->wait_blocks = calloc(in->max_req, sizeof(*in->wait_blocks));
	in->wait_serial = calloc(in->max_req, sizeof(*in->wait_serial));
	if (!in->runs || !in->swaps || !in->events || !in->layers_run || !in->wait_blocks ||
	    !in->wait_serial) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void sim_inst_teardown(struct sim_inst *in)
{
	if (in->s)
		accel_sched_destroy(in->s);
	if (in->bm)
		accel_bm_destroy(in->bm);
	free(in->runs);
	free(in->swaps);
	free(in->events);
	free(in->layers_run);
	free(in->wait_blocks);
	free(in->wait_serial);
	free(in->wq_req);
	free(in->wq_serial);
	memset(in, 0, sizeof(*in));
}

/* The oldest still waiting comes first; entries that left (or whose id was reused) go. */
static void queue_trim(struct sim_inst *in)
{
	while (in->wq_head < in->wq_tail) {
		uint32_t r = in->wq_req[in->wq_head];

		if (in->wait_blocks[r] && in->wait_serial[r] == in->wq_serial[in->wq_head])
			break;
		in->wq_head++;
	}
	if (in->wq_head == in->wq_tail)
		in->wq_head = in->wq_tail = 0;
}

static int queue_push(struct sim_inst *in, uint32_t req, uint32_t serial)
{
	if (in->wq_tail == in->wq_cap && in->wq_head) {
		memmove(in->wq_req, in->wq_req + in->wq_head,
			(in->wq_tail - in->wq_head) * sizeof(*in->wq_req));
		memmove(in->wq_serial, in->wq_serial + in->wq_head,
			(in->wq_tail - in->wq_head) * sizeof(*in->wq_serial));
		in->wq_tail -= in->wq_head;
		in->wq_head = 0;
	}
	if (in->wq_tail == in->wq_cap) {
		size_t cap = in->wq_cap ? in->wq_cap * 2 : 64;
		uint32_t *a = realloc(in->wq_req, cap * sizeof(*a)), *b;

		if (!a)
			return -ENOMEM;
		in->wq_req = a;
		b = realloc(in->wq_serial, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		in->wq_serial = b;
		in->wq_cap = cap;
	}
	in->wq_req[in->wq_tail] = req;
	in->wq_serial[in->wq_tail++] = serial;
	return 0;
}

int sim_inst_add(struct sim_inst *in, const struct accel_sched_req_opts *o, uint32_t blocks,
		 uint32_t *req)
{
	int ret = accel_sched_add(in->s, o, req);

	if (ret)
		return ret;
	in->alive++;
	in->t->requests++;
	if (!blocks)
		blocks = 1;
	in->wait_blocks[*req] = blocks;
	in->wait_serial[*req] = ++in->serial;
	in->demand += blocks;
	if (queue_push(in, *req, in->serial))
		in->nomem = 1;
	return 0;
}

void sim_inst_left_queue(struct sim_inst *in, uint32_t req)
{
	if (req >= in->max_req || !in->wait_blocks[req])
		return;
	in->demand -= in->wait_blocks[req];
	in->wait_blocks[req] = 0;
	queue_trim(in);
}

void sim_inst_load(struct sim_inst *in, struct sim_load *l)
{
	ACCEL_OPTS(accel_bm_tier_stats, ts);
	ACCEL_OPTS(accel_sched_stats, st);

	accel_bm_tier_stats(in->bm, 0, &ts);
	accel_sched_stats(in->s, &st);
	l->blocks = ts.blocks;
	l->used = ts.used;
	l->demand = in->demand;
	queue_trim(in);
	l->hol = in->wq_head < in->wq_tail ? in->wait_blocks[in->wq_req[in->wq_head]] : 0;
	l->running = st.in_state[ACCEL_SCHED_PREFILLING] + st.in_state[ACCEL_SCHED_DECODING];
}

int sim_inst_sched(struct sim_inst *in, uint64_t now)
{
	in->out = (struct accel_sched_out){ .sz = sizeof(in->out), .runs = in->runs,
					    .max_runs = MAX_RUNS, .swaps = in->swaps,
					    .max_swaps = MAX_SWAPS, .events = in->events,
					    .max_events = MAX_EVENTS };
	return accel_sched_step(in->s, now, &in->out);
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

int sim_inst_begin(struct sim_inst *in, struct sim_heap *h, uint64_t now)
{
	struct sim_batch b = { 0 };
	uint32_t i;

	for (i = 0; i < in->out.nr_runs; i++) {
		const struct accel_sched_run *r = &in->runs[i];

		in->layers_run[i] = r->flags & ACCEL_SCHED_RUN_PREFILL ?
				    in->layers - r->start_layer : in->layers;
		batch_add(&b, r, in->layers_run[i], in->layers);
	}
	in->t->steps++;
	in->step_start = now;
	in->step_end_ns = now + sim_step_ns(in->p, &b);
	in->busy = 1;
	in->cut = 0;
	return sim_heap_push(h, in->step_end_ns, SIM_EV(SIM_EV_STEP_END, in->id), ++in->step_gen);
}

/*
 * Each prefill run stops at the first of its layer boundaries at or after @now (the step's time
 * spread evenly over the layers it runs, one layer at least), the decodes run whole; the step
 * ends when the decodes' share and the layers the prefills did are done (the profile's step time
 * of that batch).
 */
int sim_inst_cut(struct sim_inst *in, struct sim_heap *h, uint64_t now)
{
	struct sim_batch b = { 0 };
	double f = (double)(now - in->step_start) / (double)(in->step_end_ns - in->step_start);
	uint64_t end;
	uint32_t i, cut = 0;

	if (!in->busy || in->cut)
		return 0;
	for (i = 0; i < in->out.nr_runs; i++) {
		const struct accel_sched_run *r = &in->runs[i];
		uint32_t left = in->layers - r->start_layer, done;

		if (r->flags & ACCEL_SCHED_RUN_PREFILL) {
			done = (uint32_t)ceil(f * left - 1e-9);
			if (done < 1)
				done = 1;
			if (done < left) {
				in->layers_run[i] = done;
				cut++;
			}
		}
		batch_add(&b, r, in->layers_run[i], in->layers);
	}
	if (!cut)
		return 0;
	end = in->step_start + sim_step_ns(in->p, &b);
	if (end < now)
		end = now;
	in->cut = 1;
	in->step_end_ns = end;
	return sim_heap_push(h, end, SIM_EV(SIM_EV_STEP_END, in->id), ++in->step_gen);
}

int sim_inst_run_cut(const struct sim_inst *in, uint32_t i, uint32_t *layers_done)
{
	const struct accel_sched_run *r = &in->runs[i];

	if (!(r->flags & ACCEL_SCHED_RUN_PREFILL) ||
	    r->start_layer + in->layers_run[i] >= in->layers)
		return 0;
	*layers_done = r->start_layer + in->layers_run[i];
	return 1;
}

int sim_inst_start_swaps(struct sim_inst *in, struct sim_heap *h, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < in->out.nr_swaps; i++) {
		const struct accel_sched_swap *w = &in->swaps[i];
		uint32_t dir = w->dir == ACCEL_SCHED_SWAP_IN;
		uint64_t start = in->link_free[dir] > now ? in->link_free[dir] : now;
		uint64_t d = sim_swap_ns(in->p, w->blocks);

		in->link_free[dir] = start + d;
		in->swap_ns += d;
		if (sim_heap_push(h, start + d, SIM_EV(SIM_EV_SWAP_DONE, in->id), w->req))
			return -1;
	}
	return 0;
}

uint32_t sim_inst_import(struct sim_inst *in, const int32_t *prompt, uint64_t n)
{
	uint64_t bt = (uint64_t)in->p->block_tokens, full = n / bt * bt, cached = 0;
	uint32_t seq;
	int ret;

	if (!full || accel_bm_seq_create(in->bm, NULL, &seq))
		return 0;
	ret = accel_bm_seq_start(in->bm, seq, prompt, full, NULL, &cached);
	if (!ret)
		ret = accel_bm_commit(in->bm, seq, (uint32_t)(full / bt));
	accel_bm_seq_free(in->bm, seq);
	return ret < 0 ? 0 : (uint32_t)(full / bt);
}
