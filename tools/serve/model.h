/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - the model: a decoder-only fp32 transformer (RMSNorm, RoPE,
 * grouped-query attention, SwiGLU MLP or a top-k mixture of experts with an
 * optional shared expert), its weights, and the per-token operators.
 * Documentation/serve.rst.
 *
 * Every operator is a fixed sequence of floating-point operations on one
 * token's vectors: reductions run in index order, nothing depends on what
 * else is being computed (the determinism rule).
 */
#ifndef SERVE_MODEL_H
#define SERVE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Bytes in, bytes out. */
#define SERVE_VOCAB		256
#define SERVE_MAX_EXPERTS	64

/** A model's shape. */
struct serve_config {
	uint32_t layers;
	uint32_t d_model;
	uint32_t heads;
	/** Key/value heads (grouped-query when fewer than heads; divides heads). */
	uint32_t kv_heads;
	/** Hidden size of one MLP (dense) or of one expert. */
	uint32_t ff;
	uint32_t vocab;
	/** Experts per layer (0: dense MLP), experts used per token, a shared expert. */
	uint32_t experts;
	uint32_t top_k;
	uint32_t shared_expert;
	float rope_theta;
	float norm_eps;
};

/** One SwiGLU MLP: down(silu(gate x) * up x); gate, up [ff][d], down [d][ff]. */
struct serve_ffn {
	float *gate, *up, *down;
};

struct serve_layer {
	float *attn_norm;		/* [d] */
	float *wq;			/* [heads * hd][d] */
	float *wk, *wv;			/* [kv_heads * hd][d] */
	float *wo;			/* [d][heads * hd] */
	float *mlp_norm;		/* [d] */
	struct serve_ffn mlp;		/* dense only */
	float *router;			/* [experts][d] */
	struct serve_ffn *expert;	/* [experts], each one addressable */
	struct serve_ffn shared;	/* with shared_expert */
};

struct serve_model {
	struct serve_config cfg;
	struct serve_layer *layer;
	float *embed;			/* [vocab][d] */
	float *final_norm;		/* [d] */
	float *lm_head;			/* [vocab][d] */
};

/** One named tensor of a model (a weights file's entry). */
struct serve_tensor {
	char name[96];
	float **data;
	/** Shape: rows x cols, or a vector of rows (cols 0). */
	uint32_t rows, cols;
};

/** The default shape: 2 layers, d_model 64, 4 heads, ff 128, dense. */
void serve_config_default(struct serve_config *cfg);
/** 0, or -EINVAL with a message in @err (@errlen bytes). */
int serve_config_check(const struct serve_config *cfg, char *err, size_t errlen);
static inline uint32_t serve_head_dim(const struct serve_config *c)
{
	return c->d_model / c->heads;
}
static inline uint32_t serve_kv_dim(const struct serve_config *c)
{
	return c->kv_heads * serve_head_dim(c);
}

/** Every tensor's name and shape, in file order; returns the count (@out may be NULL). */
uint32_t serve_model_tensors(struct serve_model *m, struct serve_tensor *out, uint32_t max);
/** A model with zeroed tensors of @cfg's shape (NULL and errno: EINVAL, ENOMEM). */
struct serve_model *serve_model_alloc(const struct serve_config *cfg);
/** A model whose weights are a function of @seed only. */
struct serve_model *serve_model_from_seed(const struct serve_config *cfg, uint64_t seed);
/**
 * Loading flags: SERVE_MODEL_NO_EXPERTS leaves the MoE experts' tensors
 * zero, their pages never touched (an engine whose experts come from a
 * peer's expert store: Documentation/moe.rst, "Scaling from peers").
 */
#define SERVE_MODEL_NO_EXPERTS	(1u << 0)
struct serve_model *serve_model_from_seed_flags(const struct serve_config *cfg, uint64_t seed,
						uint32_t flags);
/** Whether tensor @name is one of an MoE expert's (model.layers.L.mlp.experts.E.*). */
bool serve_tensor_is_expert(const char *name);
void serve_model_free(struct serve_model *m);

/* ---- operators (ops.c) ---- */

/** y = x / sqrt(mean(x^2) + eps) * w. */
void serve_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps);
/** y[r] = sum_c W[r][c] x[c], c in order. */
void serve_matvec(float *y, const float *W, const float *x, uint32_t rows, uint32_t cols);
/** Rotate pairs (2i, 2i+1) of each of @nh heads of @hd by pos * theta^(-2i/hd). */
void serve_rope(float *v, uint32_t nh, uint32_t hd, uint32_t pos, float theta);
/** out = down(silu(gate x) * up x); @tmp: 2 * ff floats. */
void serve_swiglu(float *out, const struct serve_ffn *f, const float *x, uint32_t d, uint32_t ff,
		  float *tmp);
/** In-place softmax over @n values (max subtracted, sum in order). */
void serve_softmax(float *v, uint32_t n);
/**
 * Top-k gating: the @k largest of @logits[0..n) (ties: the lower index),
 * returned in ascending expert order in @idx with their softmax weights
 * (over the k selected) in @w.
 */
void serve_topk_gate(const float *logits, uint32_t n, uint32_t k, uint32_t *idx, float *w);
/** 64-bit FNV-1a over @n bytes. */
uint64_t serve_fnv1a(const void *p, size_t n);

#endif /* SERVE_MODEL_H */
