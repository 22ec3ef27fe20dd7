// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - a model's shape and tensors: the default configuration,
 * its checks, the table of named tensors (llama/Qwen2-MoE checkpoint
 * names), allocation, and weights drawn from a seed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

void serve_config_default(struct serve_config *cfg)
{
	*cfg = (struct serve_config) {
		.layers = 2, .d_model = 64, .heads = 4, .kv_heads = 4, .ff = 128,
		.vocab = SERVE_VOCAB, .experts = 0, .top_k = 2, .shared_expert = 0,
		.rope_theta = 10000.0f, .norm_eps = 1e-5f,
	};
}

#define CHECK(cond, ...)					\
	do {							\
		if (!(cond)) {					\
			snprintf(err, errlen, __VA_ARGS__);	\
			return -EINVAL;				\
		}						\
	} while (0)

int serve_config_check(const struct serve_config *c, char *err, size_t errlen)
{
	CHECK(c->layers >= 1 && c->layers <= 64, "layers must be 1 to 64 (got %u)", c->layers);
	CHECK(c->d_model >= 2 && c->d_model <= 4096, "d_model must be 2 to 4096 (got %u)",
	      c->d_model);
	CHECK(c->heads >= 1 && c->d_model % c->heads == 0,
	      "heads (%u) must divide d_model (%u)", c->heads, c->d_model);
	CHECK(serve_head_dim(c) % 2 == 0, "the head dimension (d_model / heads = %u) must be even",
	      serve_head_dim(c));
	CHECK(c->kv_heads >= 1 && c->heads % c->kv_heads == 0,
	      "kv_heads (%u) must divide heads (%u)", c->kv_heads, c->heads);
	CHECK(c->ff >= 1 && c->ff <= 65536, "ff must be 1 to 65536 (got %u)", c->ff);
	CHECK(c->vocab == SERVE_VOCAB, "vocab must be %u (bytes; got %u)", SERVE_VOCAB, c->vocab);
	CHECK(c->experts <= SERVE_MAX_EXPERTS, "experts must be 0 to %u (got %u)",
	      SERVE_MAX_EXPERTS, c->experts);
	CHECK(!c->experts || (c->top_k >= 1 && c->top_k <= c->experts),
	      "top_k must be 1 to experts (%u; got %u)", c->experts, c->top_k);
	CHECK(c->experts || !c->shared_expert, "a shared expert needs experts");
	CHECK(c->shared_expert <= 1, "shared_expert is 0 or 1 (got %u)", c->shared_expert);
	CHECK(c->rope_theta > 1.0f && isfinite(c->rope_theta), "rope_theta must be over 1");
	CHECK(c->norm_eps > 0.0f && c->norm_eps < 1.0f, "norm_eps must be in (0, 1)");
	return 0;
}

struct table {
	struct serve_tensor *out;
	uint32_t max, n;
};

static void add(struct table *t, float **data, uint32_t rows, uint32_t cols, const char *fmt,
		uint32_t a, uint32_t b)
{
	if (t->out && t->n < t->max) {
		struct serve_tensor *s = &t->out[t->n];

		snprintf(s->name, sizeof(s->name), fmt, a, b);
		s->data = data;
		s->rows = rows;
		s->cols = cols;
	}
	t->n++;
}

static void add_ffn(struct table *t, struct serve_ffn *f, const struct serve_config *c,
		    const char *pfx, uint32_t l, uint32_t e)
{
	char fmt[80];

	snprintf(fmt, sizeof(fmt), "%s.gate_proj.weight", pfx);
	add(t, &f->gate, c->ff, c->d_model, fmt, l, e);
	snprintf(fmt, sizeof(fmt), "%s.up_proj.weight", pfx);
	add(t, &f->up, c->ff, c->d_model, fmt, l, e);
	snprintf(fmt, sizeof(fmt), "%s.down_proj.weight", pfx);
	add(t, &f->down, c->d_model, c->ff, fmt, l, e);
}

uint32_t serve_model_tensors(struct serve_model *m, struct serve_tensor *out, uint32_t max)
{
	const struct serve_config *c = &m->cfg;
	uint32_t d = c->d_model, qd = c->heads * serve_head_dim(c), kvd = serve_kv_dim(c);
	struct table t = { out, max, 0 };
	uint32_t l, e;

	add(&t, &m->embed, c->vocab, d, "model.embed_tokens.weight", 0, 0);
	for (l = 0; l < c->layers; l++) {
		struct serve_layer *y = &m->layer[l];

		add(&t, &y->attn_norm, d, 0, "model.layers.%u.input_layernorm.weight", l, 0);
		add(&t, &y->wq, qd, d, "model.layers.%u.self_attn.q_proj.weight", l, 0);
		add(&t, &y->wk, kvd, d, "model.layers.%u.self_attn.k_proj.weight", l, 0);
		add(&t, &y->wv, kvd, d, "model.layers.%u.self_attn.v_proj.weight", l, 0);
		add(&t, &y->wo, d, qd, "model.layers.%u.self_attn.o_proj.weight", l, 0);
		add(&t, &y->mlp_norm, d, 0, "model.layers.%u.post_attention_layernorm.weight", l,
		    0);
		if (!c->experts) {
			add_ffn(&t, &y->mlp, c, "model.layers.%u.mlp", l, 0);
			continue;
		}
		add(&t, &y->router, c->experts, d, "model.layers.%u.mlp.gate.weight", l, 0);
		for (e = 0; e < c->experts; e++)
			add_ffn(&t, &y->expert[e], c, "model.layers.%u.mlp.experts.%u", l, e);
		if (c->shared_expert)
			add_ffn(&t, &y->shared, c, "model.layers.%u.mlp.shared_expert", l, 0);
	}
	add(&t, &m->final_norm, d, 0, "model.norm.weight", 0, 0);
	add(&t, &m->lm_head, c->vocab, d, "lm_head.weight", 0, 0);
	return t.n;
}

void serve_model_free(struct serve_model *m)
{
	struct serve_tensor *t;
	uint32_t n, i;

	if (!m)
		return;
	if (m->layer) {
		n = serve_model_tensors(m, NULL, 0);
		t = calloc(n, sizeof(*t));
		if (t) {
			serve_model_tensors(m, t, n);
			for (i = 0; i < n; i++)
				free(*t[i].data);
			free(t);
		}
		for (i = 0; i < m->cfg.layers; i++)
			free(m->layer[i].expert);
	}
	free(m->layer);
	free(m);
}

struct serve_model *serve_model_alloc(const struct serve_config *cfg)
{
	struct serve_tensor *t = NULL;
	struct serve_model *m;
	char err[128];
	uint32_t n, i;

	if (serve_config_check(cfg, err, sizeof(err))) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->cfg = *cfg;
	m->layer = calloc(cfg->layers, sizeof(*m->layer));
	if (!m->layer)
		goto nomem;
	for (i = 0; cfg->experts && i < cfg->layers; i++) {
		m->layer[i].expert = calloc(cfg->experts, sizeof(struct serve_ffn));
		if (!m->layer[i].expert)
			goto nomem;
	}
	n = serve_model_tensors(m, NULL, 0);
	t = calloc(n, sizeof(*t));
	if (!t)
		goto nomem;
	serve_model_tensors(m, t, n);
	/* Each tensor its own allocation: an expert can move on its own later. */
	for (i = 0; i < n; i++) {
		*t[i].data = calloc((size_t)t[i].rows * (t[i].cols ? t[i].cols : 1), sizeof(float));
		if (!*t[i].data)
			goto nomem;
	}
	free(t);
	return m;
nomem:
	free(t);
	serve_model_free(m);
	errno = ENOMEM;
	return NULL;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool serve_tensor_is_expert(const char *name)
{
	return strstr(name, ".mlp.experts.") != NULL;
}

struct serve_model *serve_model_from_seed(const struct serve_config *cfg, uint64_t seed)
{
	return serve_model_from_seed_flags(cfg, seed, 0);
}

struct serve_model *serve_model_from_seed_flags(const struct serve_config *cfg, uint64_t seed,
						uint32_t flags)
{
	struct serve_model *m = serve_model_alloc(cfg);
	struct serve_tensor *t;
	uint32_t n, i;
	size_t j, len;

	if (!m)
		return NULL;
	n = serve_model_tensors(m, NULL, 0);
	t = calloc(n, sizeof(*t));
	if (!t) {
		serve_model_free(m);
		errno = ENOMEM;
		return NULL;
	}
	serve_model_tensors(m, t, n);
	for (i = 0; i < n; i++) {
		/* A stream per tensor, keyed by the seed and the tensor's name. */
		uint64_t s = seed ^ serve_fnv1a(t[i].name, strlen(t[i].name));
		float *p = *t[i].data;
		float scale = t[i].cols ? 1.0f / sqrtf((float)t[i].cols) : 0.1f;

		if ((flags & SERVE_MODEL_NO_EXPERTS) && serve_tensor_is_expert(t[i].name))
			continue;
		len = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1);
		for (j = 0; j < len; j++) {
			/* Uniform in [-1, 1) from the top 24 bits. */
			float u = (float)(splitmix64(&s) >> 40) / 8388608.0f - 1.0f;

			p[j] = t[i].cols ? u * scale : 1.0f + u * scale;
		}
		/* Embeddings of unit size, so that bytes are told apart. */
		if (*t[i].data == m->embed)
			for (j = 0; j < len; j++)
				p[j] *= sqrtf((float)t[i].cols);
	}
	free(t);
	return m;
}
