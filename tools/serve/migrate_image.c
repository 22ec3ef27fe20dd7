// SPDX-License-Identifier: MIT
/* kvaccel-serve - a migrating request's image: its size, its checks, the model's fingerprint. */
#include <errno.h>
#include <string.h>

#include "migrate.h"
#include "model.h"

uint64_t serve_migr_model_id(const struct serve_model *m)
{
	const struct serve_config *c = &m->cfg;
	size_t n = (size_t)c->vocab * c->d_model;
	uint64_t h[3];

	/* The shape, and the embedding and head (a different seed or file changes both). */
	h[0] = serve_fnv1a(c, sizeof(*c));
	h[1] = serve_fnv1a(m->embed, (n < 4096 ? n : 4096) * sizeof(float));
	h[2] = serve_fnv1a(m->lm_head, (n < 4096 ? n : 4096) * sizeof(float));
	return serve_fnv1a(h, sizeof(h));
}

size_t serve_migr_image_size(uint32_t n, uint32_t ngen)
{
	return sizeof(struct serve_migr_hdr) + ((((size_t)n * 4) + 7) & ~(size_t)7) +
	       (size_t)ngen * 8;
}

int serve_migr_image_check(const void *image, size_t len, uint64_t model,
			   uint32_t block_tokens, uint64_t block_bytes)
{
	const struct serve_migr_hdr *h = image;

	if (!image || len < sizeof(*h) || h->magic != SERVE_MIGR_MAGIC ||
	    h->version != SERVE_MIGR_VERSION || h->size != len)
		return -EPROTO;
	if (!h->n_prompt || !h->n_gen || h->n_prompt > (1u << 24) || h->n_gen > (1u << 24) ||
	    serve_migr_image_size(h->n_prompt + h->n_gen, h->n_gen) != len)
		return -EPROTO;
	if (h->model != model || h->block_tokens != block_tokens || h->block_bytes != block_bytes)
		return -EINVAL;
	if (h->n_gen >= h->max_tokens || h->offline > 1 || !(h->temperature >= 0.0f))
		return -EINVAL;
	return 0;
}
