// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the built-in FCFS policy (vLLM V1's shape, until
 * libaccel's scheduler drives the engine): decodes first, then running
 * prefill chunks, then swapped requests, then new ones, within a token
 * budget; when the compute tier is short, the last admitted running
 * request is preempted, by swap or by recompute; a step that preempted
 * admits nothing and swaps nothing back. "Arrival order" is id order:
 * the engine gives a released request's id again, so a caller that
 * releases requests while others run gets that order only approximately
 * (kvaccel-serve itself runs libaccel's scheduler: driver.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

int serve_batch_buf_init(struct serve_batch_buf *bb, uint32_t cap)
{
	memset(bb, 0, sizeof(*bb));
	cap = cap ? cap : 16;
	bb->runs = calloc(cap, sizeof(*bb->runs));
	bb->drop = calloc(cap, sizeof(uint32_t));
	bb->swap_out = calloc(cap, sizeof(uint32_t));
	bb->swap_in = calloc(cap, sizeof(uint32_t));
	if (!bb->runs || !bb->drop || !bb->swap_out || !bb->swap_in) {
		serve_batch_buf_fini(bb);
		return -ENOMEM;
	}
	bb->cap = cap;
	return 0;
}

void serve_batch_buf_fini(struct serve_batch_buf *bb)
{
	free(bb->runs);
	free(bb->drop);
	free(bb->swap_out);
	free(bb->swap_in);
	memset(bb, 0, sizeof(*bb));
}

struct plan {
	struct serve_engine *e;
	struct serve_batch_buf *bb;
	uint32_t *nr_runs, *nr_drop, *nr_out, *nr_in;
	uint8_t *taken;			/* by id: scheduled or preempted this step */
	uint32_t avail, swap_avail, budget, chunk;
	bool preempted, swap;
};

static uint32_t blocks_of(const struct serve_engine *e, const struct serve_req *r)
{
	return serve_blocks_for(e, r->n_computed + r->chunk_n);
}

/* Blocks running @n more tokens of @r takes. */
static uint32_t need_of(const struct serve_engine *e, const struct serve_req *r, uint32_t n)
{
	if (r->chunk_n)
		return 0;
	return serve_blocks_for(e, r->n_computed + n) - serve_blocks_for(e, r->n_computed);
}

/* Preempt the last admitted running request not taken (may be @self); false: none. */
static bool preempt(struct plan *p, uint32_t self)
{
	struct serve_engine *e = p->e;
	uint32_t id, b;

	for (id = e->nr_req; id; id--) {
		struct serve_req *r = &e->req[id - 1];

		if (!r->live || r->state != SERVE_RUNNING || (p->taken[id] && id != self))
			continue;
		if (p->taken[id])
			return false;
		b = blocks_of(e, r);
		if (p->swap && b <= p->swap_avail) {
			p->bb->swap_out[(*p->nr_out)++] = id;
			p->swap_avail -= b;
		} else {
			p->bb->drop[(*p->nr_drop)++] = id;
		}
		p->taken[id] = 1;
		p->avail += b;
		p->preempted = true;
		return true;
	}
	return false;
}

static void add_run(struct plan *p, struct serve_req *r, uint32_t n, uint32_t need)
{
	p->bb->runs[(*p->nr_runs)++] = (struct serve_run) { r->id, n };
	p->taken[r->id] = 1;
	p->budget -= n;
	p->avail -= need;
}

/* The tokens @r runs this step (0: none fit the budget). */
static uint32_t tokens_for(const struct plan *p, const struct serve_req *r, uint32_t n_computed)
{
	uint32_t left = r->n_tokens - n_computed, n;

	if (r->chunk_n)
		return r->chunk_n <= p->budget ? r->chunk_n : 0;
	n = left < p->chunk ? left : p->chunk;
	return n < p->budget ? n : p->budget;
}

static int grow(struct serve_batch_buf *bb, uint32_t cap)
{
	struct serve_batch_buf nb;

	if (cap <= bb->cap)
		return 0;
	if (serve_batch_buf_init(&nb, cap))
		return -ENOMEM;
	serve_batch_buf_fini(bb);
	*bb = nb;
	return 0;
}

int serve_fcfs_plan(struct serve_engine *e, const struct serve_fcfs_opts *o,
		    struct serve_batch_buf *bb)
{
	struct plan p = { .e = e, .bb = bb };
	uint32_t used, total, sused, stotal, id, n, need, running = 0;
	bool swapped_left = false;

	if (!e || !o || !bb || grow(bb, e->nr_req))
		return -EINVAL;
	memset(&bb->b, 0, sizeof(bb->b));
	bb->b.runs = bb->runs;
	bb->b.drop = bb->drop;
	bb->b.swap_out = bb->swap_out;
	bb->b.swap_in = bb->swap_in;
	p.nr_runs = &bb->b.nr_runs;
	p.nr_drop = &bb->b.nr_drop;
	p.nr_out = &bb->b.nr_swap_out;
	p.nr_in = &bb->b.nr_swap_in;
	p.taken = calloc(e->nr_req + 1, 1);
	if (!p.taken)
		return -ENOMEM;
	serve_engine_usage(e, SERVE_TIER_COMPUTE, &used, &total);
	serve_engine_usage(e, SERVE_TIER_SWAP, &sused, &stotal);
	p.avail = total - used;
	p.swap_avail = stotal - sused;
	p.budget = o->token_budget ? o->token_budget : 256;
	p.chunk = o->chunk ? o->chunk : p.budget;
	p.swap = o->preempt == SERVE_PREEMPT_SWAP;

	/* Decodes first, in arrival order; preempt from the back for their blocks. */
	for (id = 1; id <= e->nr_req && p.budget; id++) {
		struct serve_req *r = &e->req[id - 1];

		if (!r->live || r->state != SERVE_RUNNING || p.taken[id] || r->chunk_n ||
		    r->n_tokens - r->n_computed != 1)
			continue;
		need = need_of(e, r, 1);
		while (need > p.avail && preempt(&p, id))
			;
		if (p.taken[id] || need > p.avail)
			continue;
		add_run(&p, r, 1, need);
	}
	/* Running prefills (a yielded chunk resumes as it was). */
	for (id = 1; id <= e->nr_req && p.budget; id++) {
		struct serve_req *r = &e->req[id - 1];

		if (!r->live || r->state != SERVE_RUNNING || p.taken[id])
			continue;
		n = tokens_for(&p, r, r->n_computed);
		if (!n)
			continue;
		need = need_of(e, r, n);
		while (need > p.avail && preempt(&p, id))
			;
		if (p.taken[id] || need > p.avail)
			continue;
		add_run(&p, r, n, need);
	}
	for (id = 1; id <= e->nr_req; id++) {
		struct serve_req *r = &e->req[id - 1];

		if (r->live && r->state == SERVE_RUNNING)
			running++;
	}
	/* Swapped requests come back, in arrival order, when nothing was preempted. */
	for (id = 1; id <= e->nr_req; id++) {
		struct serve_req *r = &e->req[id - 1];
		uint32_t b;

		if (!r->live || r->state != SERVE_SWAPPED || p.taken[id])
			continue;
		b = blocks_of(e, r);
		n = tokens_for(&p, r, r->n_computed);
		need = n ? need_of(e, r, n) : 0;
		if (p.preempted || b + need > p.avail ||
		    (o->max_running && running >= o->max_running)) {
			swapped_left = true;
			break;
		}
		bb->swap_in[(*p.nr_in)++] = id;
		p.avail -= b;
		p.swap_avail += b;
		running++;
		p.taken[id] = 1;
		if (n)
			add_run(&p, r, n, need);
	}
	/* New requests (and dropped ones, to recompute), in arrival order. */
	for (id = 1; id <= e->nr_req && p.budget && !p.preempted && !swapped_left; id++) {
		struct serve_req *r = &e->req[id - 1];

		if (!r->live || r->state != SERVE_WAITING || p.taken[id])
			continue;
		if (o->max_running && running >= o->max_running)
			break;
		n = tokens_for(&p, r, 0);
		need = serve_blocks_for(e, n);
		if (!n || need > p.avail)
			break;
		add_run(&p, r, n, need);
		running++;
	}
	free(p.taken);
	return (int)(bb->b.nr_runs + bb->b.nr_drop + bb->b.nr_swap_out + bb->b.nr_swap_in);
}

int serve_run_all(struct serve_engine *e, const struct serve_fcfs_opts *o, uint64_t *steps)
{
	struct serve_batch_buf bb;
	uint64_t n = 0;
	uint32_t id;
	int ret;

	ret = serve_batch_buf_init(&bb, e->nr_req);
	if (ret)
		return ret;
	for (;;) {
		ret = serve_fcfs_plan(e, o, &bb);
		if (ret < 0)
			break;
		if (!ret) {
			/* Nothing to do: done, or stuck. */
			for (id = serve_engine_next(e, 0); id; id = serve_engine_next(e, id))
				if (serve_req_get(e, id)->state != SERVE_FINISHED)
					break;
			ret = id ? -EDEADLK : 0;
			break;
		}
		ret = serve_engine_step(e, &bb.b, NULL);
		if (ret)
			break;
		n++;
	}
	serve_batch_buf_fini(&bb);
	if (steps)
		*steps = n;
	return ret;
}
