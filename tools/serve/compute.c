// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - one request's share of a step, on one worker thread:
 * its tokens go through the layers (layer-major: every token of the chunk
 * through a layer's attention, then its MLP), each token's arithmetic the
 * same as if it ran alone; operator-level yields between the two; the last
 * token's hidden state sampled.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "sample.h"

static bool yield_here(struct serve_engine *e, struct serve_req *r, uint32_t n, uint32_t l,
		       uint32_t phase)
{
	/* Prefill chunks only; after the last MLP the chunk is done anyway. */
	if (n < 2 || !e->should_yield || (phase == 1 && l + 1 == e->m->cfg.layers))
		return false;
	/* A scheduler resumes at a layer: a yield finishes one first. */
	if (e->external_kv && l == 0 && phase == 0)
		return false;
	return e->should_yield(e->yield_ctx, r->id, l, phase);
}

void serve_req_compute(struct serve_engine *e, struct serve_req *r, uint32_t n,
		       struct serve_scratch *s)
{
	const struct serve_model *m = e->m;
	uint32_t d = m->cfg.d_model, start = r->n_computed, l, j, phase = 0, l0 = 0;
	struct serve_kv kv = { (void *const *)e->blk, r->table, e->block_tokens, e->layer_bytes };
	float *x = r->chunk_x;
	uint32_t *route = r->chunk_route;
	uint64_t digest;
	int32_t tok;

	r->yielded = false;
	r->sampled = false;
	if (r->chunk_n) {
		l0 = r->chunk_layer;
		phase = r->chunk_phase;
	} else {
		for (j = 0; j < n; j++)
			serve_embed(m, r->tok[start + j], x + (size_t)j * d);
	}
	for (l = l0; l < m->cfg.layers; l++, phase = 0) {
		if (phase == 0) {
			for (j = 0; j < n; j++)
				serve_attention(m, l, x + (size_t)j * d, start + j, &kv, s);
			if (yield_here(e, r, n, l, 0)) {
				r->chunk_layer = l;
				r->chunk_phase = 1;
				goto yielded;
			}
		}
		for (j = 0; j < n; j++) {
			/* The token's experts of this layer (counted once it is through all). */
			s->route = route ? route + ((size_t)j * m->cfg.layers + l) * m->cfg.top_k :
				   NULL;
			serve_mlp(m, l, x + (size_t)j * d, s);
		}
		s->route = NULL;
		if (yield_here(e, r, n, l, 1)) {
			r->chunk_layer = l + 1;
			r->chunk_phase = 0;
			goto yielded;
		}
	}
	r->chunk_n = 0;
	/* A chunk given up and computed afresh is counted once, when through. */
	serve_moe_routes(e->moe, route, n);
	r->n_computed += n;
	r->computed_ever += n;
	if (r->n_computed < r->n_tokens)
		return;
	/* Every token has its KV: the last one's hidden state gives the next token. */
	digest = serve_final(m, x + (size_t)(n - 1) * d, s);
	tok = serve_sample(s->logits, m->cfg.vocab, r->p.temperature, r->p.seed,
			   r->n_tokens - r->n_prompt);
	r->digest[r->n_tokens - r->n_prompt] = digest;
	r->tok[r->n_tokens++] = tok;
	r->sampled = true;
	return;
yielded:
	r->chunk_n = n;
	r->yielded = true;
	r->yields++;
}
