// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - one token's forward pass over paged KV. A token's
 * arithmetic depends on its own vectors and on the K/V of the positions
 * before it, read in position order, and on nothing else.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

uint64_t serve_kv_layer_bytes(const struct serve_config *c, uint32_t block_tokens)
{
	uint64_t piece = 2ull * block_tokens * serve_kv_dim(c) * sizeof(float);

	while ((piece * c->layers) % 4096)
		piece += sizeof(float);
	return piece;
}

int serve_scratch_init(struct serve_scratch *s, const struct serve_config *c, uint32_t max_ctx)
{
	uint32_t d = c->d_model, ff = c->ff;

	memset(s, 0, sizeof(*s));
	s->max_ctx = max_ctx;
	s->h = calloc(d, sizeof(float));
	s->q = calloc(d, sizeof(float));
	s->k = calloc(serve_kv_dim(c), sizeof(float));
	s->v = calloc(serve_kv_dim(c), sizeof(float));
	s->att = calloc(d, sizeof(float));
	s->o = calloc(d, sizeof(float));
	s->tmp = calloc(2 * (size_t)ff, sizeof(float));
	s->gate = calloc(SERVE_MAX_EXPERTS + d, sizeof(float));
	s->scores = calloc(max_ctx, sizeof(float));
	s->logits = calloc(c->vocab, sizeof(float));
	if (!s->h || !s->q || !s->k || !s->v || !s->att || !s->o || !s->tmp || !s->gate ||
	    !s->scores || !s->logits) {
		serve_scratch_fini(s);
		return -ENOMEM;
	}
	return 0;
}

void serve_scratch_fini(struct serve_scratch *s)
{
	free(s->h);
	free(s->q);
	free(s->k);
	free(s->v);
	free(s->att);
	free(s->o);
	free(s->tmp);
	free(s->gate);
	free(s->scores);
	free(s->logits);
	memset(s, 0, sizeof(*s));
}

float *serve_kv_at(const struct serve_kv *kv, const struct serve_config *c, uint32_t l,
		   uint32_t pos, bool v)
{
	uint32_t kvd = serve_kv_dim(c), slot = pos % kv->block_tokens;
	char *piece = (char *)kv->blk[kv->table[pos / kv->block_tokens]] + l * kv->layer_bytes;
	float *f = (float *)piece;

	return f + (v ? (size_t)kv->block_tokens * kvd : 0) + (size_t)slot * kvd;
}

void serve_embed(const struct serve_model *m, int32_t tok, float *x)
{
	memcpy(x, m->embed + (size_t)tok * m->cfg.d_model, m->cfg.d_model * sizeof(float));
}

void serve_attention(const struct serve_model *m, uint32_t l, float *x, uint32_t pos,
		     const struct serve_kv *kv, struct serve_scratch *s)
{
	const struct serve_config *c = &m->cfg;
	const struct serve_layer *y = &m->layer[l];
	uint32_t d = c->d_model, hd = serve_head_dim(c), kvd = serve_kv_dim(c);
	uint32_t group = c->heads / c->kv_heads, h, t, i;
	float scale = 1.0f / sqrtf((float)hd);

	serve_rmsnorm(s->h, x, y->attn_norm, d, c->norm_eps);
	serve_matvec(s->q, y->wq, s->h, c->heads * hd, d);
	serve_matvec(s->k, y->wk, s->h, kvd, d);
	serve_matvec(s->v, y->wv, s->h, kvd, d);
	serve_rope(s->q, c->heads, hd, pos, c->rope_theta);
	serve_rope(s->k, c->kv_heads, hd, pos, c->rope_theta);
	memcpy(serve_kv_at(kv, c, l, pos, false), s->k, kvd * sizeof(float));
	memcpy(serve_kv_at(kv, c, l, pos, true), s->v, kvd * sizeof(float));

	for (h = 0; h < c->heads; h++) {
		const float *q = s->q + (size_t)h * hd;
		uint32_t g = h / group;
		float *out = s->att + (size_t)h * hd;

		for (t = 0; t <= pos; t++) {
			const float *k = serve_kv_at(kv, c, l, t, false) + (size_t)g * hd;
			float dot = 0.0f;

			for (i = 0; i < hd; i++)
				dot += q[i] * k[i];
			s->scores[t] = dot * scale;
		}
		serve_softmax(s->scores, pos + 1);
		for (i = 0; i < hd; i++)
			out[i] = 0.0f;
		for (t = 0; t <= pos; t++) {
			const float *v = serve_kv_at(kv, c, l, t, true) + (size_t)g * hd;

			for (i = 0; i < hd; i++)
				out[i] += s->scores[t] * v[i];
		}
	}
	serve_matvec(s->o, y->wo, s->att, d, c->heads * hd);
	for (i = 0; i < d; i++)
		x[i] += s->o[i];
}

void serve_mlp(const struct serve_model *m, uint32_t l, float *x, struct serve_scratch *s)
{
	const struct serve_config *c = &m->cfg;
	const struct serve_layer *y = &m->layer[l];
	uint32_t d = c->d_model, i, j, idx[SERVE_MAX_EXPERTS];
	float w[SERVE_MAX_EXPERTS];

	serve_rmsnorm(s->h, x, y->mlp_norm, d, c->norm_eps);
	if (!c->experts) {
		serve_swiglu(s->o, &y->mlp, s->h, d, c->ff, s->tmp);
		for (i = 0; i < d; i++)
			x[i] += s->o[i];
		return;
	}
	/* Router, top-k, then the selected experts in ascending order, then the shared one. */
	serve_matvec(s->gate, y->router, s->h, c->experts, d);
	serve_topk_gate(s->gate, c->experts, c->top_k, idx, w);
	if (s->route)
		for (j = 0; j < c->top_k; j++)
			s->route[j] = idx[j];
	for (i = 0; i < d; i++)
		s->att[i] = 0.0f;
	for (j = 0; j < c->top_k; j++) {
		const struct serve_ffn *f = &y->expert[idx[j]];
		struct serve_ffn at;

		if (s->src.get) {
			const float *p = s->src.get(s->src.arg, s->src.version, l, idx[j],
						    s->src.calls++);

			if (p) {
				at = (struct serve_ffn) { (float *)p, (float *)p + (size_t)c->ff * d,
							  (float *)p + 2 * (size_t)c->ff * d };
				f = &at;
			} else {
				s->src.errors++;
			}
		}
		serve_swiglu(s->o, f, s->h, d, c->ff, s->tmp);
		for (i = 0; i < d; i++)
			s->att[i] += w[j] * s->o[i];
	}
	if (c->shared_expert) {
		serve_swiglu(s->o, &y->shared, s->h, d, c->ff, s->tmp);
		for (i = 0; i < d; i++)
			s->att[i] += s->o[i];
	}
	for (i = 0; i < d; i++)
		x[i] += s->att[i];
}

uint64_t serve_final(const struct serve_model *m, const float *x, struct serve_scratch *s)
{
	const struct serve_config *c = &m->cfg;

	serve_rmsnorm(s->h, x, m->final_norm, c->d_model, c->norm_eps);
	serve_matvec(s->logits, m->lm_head, s->h, c->vocab, c->d_model);
	return serve_fnv1a(s->h, c->d_model * sizeof(float));
}
