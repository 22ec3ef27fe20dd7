// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the per-token operators. Each is one fixed sequence of
 * fp32 operations (reductions in index order), built with
 * -ffp-contract=off so that no multiply-add is fused in one call site and
 * not another.
 */
#include <math.h>

#include "model.h"

void serve_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps)
{
	float ss = 0.0f, r;
	uint32_t i;

	for (i = 0; i < n; i++)
		ss += x[i] * x[i];
	r = 1.0f / sqrtf(ss / (float)n + eps);
	for (i = 0; i < n; i++)
		y[i] = x[i] * r * w[i];
}

void serve_matvec(float *y, const float *W, const float *x, uint32_t rows, uint32_t cols)
{
	uint32_t r, c;

	for (r = 0; r < rows; r++) {
		const float *row = W + (size_t)r * cols;
		float s = 0.0f;

		for (c = 0; c < cols; c++)
			s += row[c] * x[c];
		y[r] = s;
	}
}

void serve_rope(float *v, uint32_t nh, uint32_t hd, uint32_t pos, float theta)
{
	uint32_t h, i;

	for (i = 0; i < hd / 2; i++) {
		float freq = powf(theta, -(float)(2 * i) / (float)hd);
		float a = (float)pos * freq, c = cosf(a), s = sinf(a);

		for (h = 0; h < nh; h++) {
			float *p = v + (size_t)h * hd + 2 * i;
			float x0 = p[0], x1 = p[1];

			p[0] = x0 * c - x1 * s;
			p[1] = x0 * s + x1 * c;
		}
	}
}

void serve_swiglu(float *out, const struct serve_ffn *f, const float *x, uint32_t d, uint32_t ff,
		  float *tmp)
{
	float *g = tmp, *u = tmp + ff;
	uint32_t i;

	serve_matvec(g, f->gate, x, ff, d);
	serve_matvec(u, f->up, x, ff, d);
	for (i = 0; i < ff; i++)
		g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
	serve_matvec(out, f->down, g, d, ff);
}

void serve_softmax(float *v, uint32_t n)
{
	float m = v[0], s = 0.0f;
	uint32_t i;

	for (i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	for (i = 0; i < n; i++) {
		v[i] = expf(v[i] - m);
		s += v[i];
	}
	for (i = 0; i < n; i++)
		v[i] /= s;
}

void serve_topk_gate(const float *logits, uint32_t n, uint32_t k, uint32_t *idx, float *w)
{
	bool taken[SERVE_MAX_EXPERTS] = { false };
	uint32_t j, e, best;

	for (j = 0; j < k; j++) {
		best = n;
		for (e = 0; e < n; e++)
			if (!taken[e] && (best == n || logits[e] > logits[best]))
				best = e;
		taken[best] = true;
	}
	for (e = 0, j = 0; e < n; e++)
		if (taken[e]) {
			idx[j] = e;
			w[j++] = logits[e];
		}
	serve_softmax(w, k);
}

uint64_t serve_fnv1a(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}
