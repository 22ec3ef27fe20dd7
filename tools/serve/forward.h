/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-serve - one token's forward pass over paged KV: the block layout
 * (per block, layer-major pieces, each K[block_tokens][kv_dim] then V), the
 * attention that reads K/V through a block table, the MLP or mixture of
 * experts, and the final norm with its digest.
 */
#ifndef SERVE_FORWARD_H
#define SERVE_FORWARD_H

#include "model.h"

/** Where one request's KV is: a block table over a tier's block addresses. */
struct serve_kv {
	void *const *blk;		/* every block of the compute tier */
	const uint32_t *table;		/* the request's blocks, in order */
	uint32_t block_tokens;
	uint64_t layer_bytes;		/* from one layer piece to the next */
};

/**
 * Where the MoE experts are read from: with @get (an expert store), expert
 * @e of layer @l is gate, up, down ([ff][d], [ff][d], [d][ff]) at the
 * address get(@arg, @version, l, e, hint) returns; else the model's own
 * tensors. A lookup that fails is counted in @errors (and the model's
 * tensors used: the same bytes).
 */
struct serve_expert_src {
	const void *(*get)(void *arg, uint64_t version, uint32_t l, uint32_t e, uint32_t hint);
	void *arg;
	uint64_t version;
	uint32_t calls, errors;
};

/** One thread's working vectors (for contexts up to max_ctx tokens). */
struct serve_scratch {
	float *h, *q, *k, *v, *att, *o, *tmp, *gate, *scores, *logits;
	uint32_t max_ctx;
	struct serve_expert_src src;
	/* MoE: where serve_mlp() writes the top_k experts it chose (NULL: nowhere). */
	uint32_t *route;
};

/** Bytes of one layer piece of a block (K and V, padded so blocks are 4 KiB multiples). */
uint64_t serve_kv_layer_bytes(const struct serve_config *c, uint32_t block_tokens);
static inline uint64_t serve_kv_block_bytes(const struct serve_config *c, uint32_t block_tokens)
{
	return serve_kv_layer_bytes(c, block_tokens) * c->layers;
}

int serve_scratch_init(struct serve_scratch *s, const struct serve_config *c, uint32_t max_ctx);
void serve_scratch_fini(struct serve_scratch *s);

/** K (v false) or V (v true) of position @pos, layer @l. */
float *serve_kv_at(const struct serve_kv *kv, const struct serve_config *c, uint32_t l,
		   uint32_t pos, bool v);

void serve_embed(const struct serve_model *m, int32_t tok, float *x);
/** x += attention(x) at @pos of layer @l; writes the token's K/V first. */
void serve_attention(const struct serve_model *m, uint32_t l, float *x, uint32_t pos,
		     const struct serve_kv *kv, struct serve_scratch *s);
/** x += mlp(x) (dense, or the experts) of layer @l; the experts chosen into s->route. */
void serve_mlp(const struct serve_model *m, uint32_t l, float *x, struct serve_scratch *s);
/** The final norm into s->h, the logits into s->logits; returns the digest of s->h. */
uint64_t serve_final(const struct serve_model *m, const float *x, struct serve_scratch *s);

#endif /* SERVE_FORWARD_H */
