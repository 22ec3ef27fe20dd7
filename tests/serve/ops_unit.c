// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's operators against straightforward double-precision
 * references (RMSNorm, RoPE, SwiGLU, top-k gating, the MoE MLP, attention
 * over a contiguous KV against the paged one), sampling and the digest.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "forward.h"
#include "model.h"
#include "sample.h"

static void fill(float *v, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		v[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
	}
}

static void near(double want, float got, double tol)
{
	if (fabs(want - got) > tol * (1.0 + fabs(want)))
		fail_msg("want %.9g, got %.9g", want, (double)got);
}

static void test_rmsnorm(void **state)
{
	float x[64], w[64], y[64];
	double ss = 0;
	int i;

	(void)state;
	fill(x, 64, 1);
	fill(w, 64, 2);
	serve_rmsnorm(y, x, w, 64, 1e-5f);
	for (i = 0; i < 64; i++)
		ss += (double)x[i] * x[i];
	for (i = 0; i < 64; i++)
		near(x[i] / sqrt(ss / 64 + 1e-5) * w[i], y[i], 1e-6);
}

static void test_rope(void **state)
{
	float v[2 * 16], r[2 * 16];
	uint32_t pos = 37, h, i;

	(void)state;
	fill(v, 32, 3);
	memcpy(r, v, sizeof(v));
	serve_rope(r, 2, 16, pos, 10000.0f);
	for (h = 0; h < 2; h++)
		for (i = 0; i < 8; i++) {
			double a = pos * pow(10000.0, -(2.0 * i) / 16);
			double x0 = v[h * 16 + 2 * i], x1 = v[h * 16 + 2 * i + 1];

			near(x0 * cos(a) - x1 * sin(a), r[h * 16 + 2 * i], 1e-5);
			near(x0 * sin(a) + x1 * cos(a), r[h * 16 + 2 * i + 1], 1e-5);
		}
	/* Position 0 leaves the vector as it was. */
	memcpy(r, v, sizeof(v));
	serve_rope(r, 2, 16, 0, 10000.0f);
	assert_memory_equal(r, v, sizeof(v));
}

static double ref_swiglu(const struct serve_ffn *f, const float *x, uint32_t d, uint32_t ff,
			 uint32_t row)
{
	double out = 0;
	uint32_t i, j;

	for (i = 0; i < ff; i++) {
		double g = 0, u = 0;

		for (j = 0; j < d; j++) {
			g += (double)f->gate[i * d + j] * x[j];
			u += (double)f->up[i * d + j] * x[j];
		}
		out += f->down[row * ff + i] * (g / (1 + exp(-g)) * u);
	}
	return out;
}

static void test_swiglu(void **state)
{
	enum { D = 16, FF = 24 };
	float gate[FF * D], up[FF * D], down[D * FF], x[D], out[D], tmp[2 * FF];
	struct serve_ffn f = { gate, up, down };
	uint32_t i;

	(void)state;
	fill(gate, FF * D, 4);
	fill(up, FF * D, 5);
	fill(down, D * FF, 6);
	fill(x, D, 7);
	serve_swiglu(out, &f, x, D, FF, tmp);
	for (i = 0; i < D; i++)
		near(ref_swiglu(&f, x, D, FF, i), out[i], 1e-5);
}

static void test_topk(void **state)
{
	float logits[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f }, w[3];
	uint32_t idx[3];
	double s;

	(void)state;
	serve_topk_gate(logits, 6, 3, idx, w);
	/* 2.0 at 1 and 3 (a tie: both), then 1.5 at 4; ascending order. */
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 3);
	assert_int_equal(idx[2], 4);
	s = exp(2.0) * 2 + exp(1.5);
	near(exp(2.0) / s, w[0], 1e-6);
	near(exp(2.0) / s, w[1], 1e-6);
	near(exp(1.5) / s, w[2], 1e-6);
	/* A tie at the cut: the lower index wins. */
	serve_topk_gate(logits, 6, 1, idx, w);
	assert_int_equal(idx[0], 1);
	near(1.0, w[0], 1e-7);
}

static struct serve_model *model(uint32_t experts, uint32_t shared, uint32_t kv_heads)
{
	struct serve_config c;
	struct serve_model *m;

	serve_config_default(&c);
	c.experts = experts;
	c.top_k = 2;
	c.shared_expert = shared;
	c.kv_heads = kv_heads;
	m = serve_model_from_seed(&c, 42);
	assert_non_null(m);
	return m;
}

static void test_moe(void **state)
{
	struct serve_model *m = model(4, 1, 4);
	const struct serve_config *c = &m->cfg;
	struct serve_scratch s;
	float x[64], h[64], logits[4], w[2];
	double want[64] = { 0 };
	uint32_t idx[2], i, j;

	(void)state;
	assert_int_equal(serve_scratch_init(&s, c, 64), 0);
	fill(x, 64, 8);
	serve_rmsnorm(h, x, m->layer[1].mlp_norm, 64, c->norm_eps);
	serve_matvec(logits, m->layer[1].router, h, 4, 64);
	serve_topk_gate(logits, 4, 2, idx, w);
	for (i = 0; i < 64; i++) {
		want[i] = x[i] + ref_swiglu(&m->layer[1].shared, h, 64, c->ff, i);
		for (j = 0; j < 2; j++)
			want[i] += w[j] * ref_swiglu(&m->layer[1].expert[idx[j]], h, 64, c->ff, i);
	}
	serve_mlp(m, 1, x, &s);
	for (i = 0; i < 64; i++)
		near(want[i], x[i], 1e-5);
	serve_scratch_fini(&s);
	serve_model_free(m);
}

/* Attention of positions 0..P-1 (layer 0) in double over contiguous K/V. */
static void ref_attention(const struct serve_model *m, float (*xs)[64], uint32_t P,
			  double (*out)[64])
{
	const struct serve_config *c = &m->cfg;
	const struct serve_layer *y = &m->layer[0];
	uint32_t hd = serve_head_dim(c), kvd = serve_kv_dim(c), group = c->heads / c->kv_heads;
	float *K = calloc((size_t)P * kvd, sizeof(float)), *V = calloc((size_t)P * kvd, 4);
	float h[64], q[64];
	uint32_t p, t, hh, i;

	for (p = 0; p < P; p++) {
		serve_rmsnorm(h, xs[p], y->attn_norm, 64, c->norm_eps);
		serve_matvec(K + p * kvd, y->wk, h, kvd, 64);
		serve_matvec(V + p * kvd, y->wv, h, kvd, 64);
		serve_rope(K + p * kvd, c->kv_heads, hd, p, c->rope_theta);
	}
	for (p = 0; p < P; p++) {
		double att[64] = { 0 };

		serve_rmsnorm(h, xs[p], y->attn_norm, 64, c->norm_eps);
		serve_matvec(q, y->wq, h, 64, 64);
		serve_rope(q, c->heads, hd, p, c->rope_theta);
		for (hh = 0; hh < c->heads; hh++) {
			double sc[64], mx = -1e300, sum = 0;
			uint32_t g = hh / group;

			for (t = 0; t <= p; t++) {
				sc[t] = 0;
				for (i = 0; i < hd; i++)
					sc[t] += (double)q[hh * hd + i] * K[t * kvd + g * hd + i];
				sc[t] /= sqrt(hd);
				mx = sc[t] > mx ? sc[t] : mx;
			}
			for (t = 0; t <= p; t++)
				sum += (sc[t] = exp(sc[t] - mx));
			for (t = 0; t <= p; t++)
				for (i = 0; i < hd; i++)
					att[hh * hd + i] += sc[t] / sum * V[t * kvd + g * hd + i];
		}
		for (i = 0; i < 64; i++) {
			out[p][i] = xs[p][i];
			for (t = 0; t < 64; t++)
				out[p][i] += (double)y->wo[i * 64 + t] * att[t];
		}
	}
	free(K);
	free(V);
}

/* Paged attention through @table over blocks of 4 tokens. */
static void paged(const struct serve_model *m, float (*xs)[64], uint32_t P, const uint32_t *table,
		  float (*out)[64])
{
	enum { BT = 4, NB = 16 };
	uint64_t lb = serve_kv_layer_bytes(&m->cfg, BT);
	char *mem = calloc(NB, lb * m->cfg.layers);
	void *blk[NB];
	struct serve_kv kv = { blk, table, BT, lb };
	struct serve_scratch s;
	uint32_t i, p;

	for (i = 0; i < NB; i++)
		blk[i] = mem + i * lb * m->cfg.layers;
	assert_int_equal(serve_scratch_init(&s, &m->cfg, 64), 0);
	for (p = 0; p < P; p++) {
		memcpy(out[p], xs[p], sizeof(out[p]));
		serve_attention(m, 0, out[p], p, &kv, &s);
	}
	serve_scratch_fini(&s);
	free(mem);
}

static void test_attention(uint32_t kv_heads)
{
	enum { P = 23 };
	static const uint32_t ident[16] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	static const uint32_t shuffled[16] = { 13, 2, 7, 0, 11, 5, 9, 15 };
	struct serve_model *m = model(0, 0, kv_heads);
	float xs[P][64], a[P][64], b[P][64];
	double want[P][64];
	uint32_t p, i;

	fill(&xs[0][0], P * 64, 9);
	ref_attention(m, xs, P, want);
	paged(m, xs, P, ident, a);
	paged(m, xs, P, shuffled, b);
	for (p = 0; p < P; p++)
		for (i = 0; i < 64; i++)
			near(want[p][i], a[p][i], 1e-5);
	/* Where the blocks are changes no bit. */
	assert_memory_equal(a, b, sizeof(a));
	serve_model_free(m);
}

static void test_attention_mha(void **state)
{
	(void)state;
	test_attention(4);
}

static void test_attention_gqa(void **state)
{
	(void)state;
	test_attention(2);
	test_attention(1);
}

static void test_sample(void **state)
{
	float l[5] = { 1.0f, 3.0f, 3.0f, -2.0f, 0.0f }, c[5];
	uint32_t hits[5] = { 0 }, i;

	(void)state;
	memcpy(c, l, sizeof(l));
	assert_int_equal(serve_sample(c, 5, 0.0f, 7, 0), 1);	/* a tie: the lower index */
	assert_true(serve_sample_uniform(7, 3) == serve_sample_uniform(7, 3));
	assert_true(serve_sample_uniform(7, 3) != serve_sample_uniform(7, 4));
	assert_true(serve_sample_uniform(7, 3) != serve_sample_uniform(8, 3));
	for (i = 0; i < 2000; i++) {
		double u = serve_sample_uniform(11, i);

		assert_true(u >= 0.0 && u < 1.0);
		memcpy(c, l, sizeof(l));
		hits[serve_sample(c, 5, 1.0f, 11, i)]++;
	}
	/* exp(3) / (2 exp(3) + exp(1) + 1 + exp(-2)) = 0.43 each for 1 and 2. */
	assert_true(hits[1] > 750 && hits[1] < 970);
	assert_true(hits[2] > 750 && hits[2] < 970);
	assert_true(hits[3] < 20);
	/* Same (seed, index), same token. */
	memcpy(c, l, sizeof(l));
	i = (uint32_t)serve_sample(c, 5, 0.7f, 5, 9);
	memcpy(c, l, sizeof(l));
	assert_int_equal(serve_sample(c, 5, 0.7f, 5, 9), i);
}

static void test_fnv(void **state)
{
	(void)state;
	assert_true(serve_fnv1a("", 0) == 0xcbf29ce484222325ull);
	assert_true(serve_fnv1a("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(serve_fnv1a("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_config(void **state)
{
	struct serve_config c;
	char err[128];

	(void)state;
	serve_config_default(&c);
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), 0);
	c.heads = 3;
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "heads"));
	serve_config_default(&c);
	c.kv_heads = 3;
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), -EINVAL);
	serve_config_default(&c);
	c.experts = 4;
	c.top_k = 5;
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "top_k"));
	serve_config_default(&c);
	c.shared_expert = 1;
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), -EINVAL);
	serve_config_default(&c);
	c.vocab = 512;
	assert_int_equal(serve_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_null(serve_model_alloc(&c));
}

static void test_seed(void **state)
{
	struct serve_model *a = model(2, 1, 2), *b = model(2, 1, 2);
	struct serve_config c = a->cfg;
	struct serve_model *d;
	uint32_t n = serve_model_tensors(a, NULL, 0), i;
	struct serve_tensor *ta = calloc(n, sizeof(*ta)), *tb = calloc(n, sizeof(*tb));

	(void)state;
	serve_model_tensors(a, ta, n);
	serve_model_tensors(b, tb, n);
	for (i = 0; i < n; i++)
		assert_memory_equal(*ta[i].data, *tb[i].data,
				    (size_t)ta[i].rows * (ta[i].cols ? ta[i].cols : 1) * 4);
	/* Per-(layer, expert) tensors, each its own. */
	assert_ptr_not_equal(a->layer[0].expert[0].gate, a->layer[0].expert[1].gate);
	assert_string_equal(ta[8].name, "model.layers.0.mlp.experts.0.gate_proj.weight");
	d = serve_model_from_seed(&c, 43);
	assert_memory_not_equal(d->embed, a->embed, 64 * 4);
	serve_model_free(d);
	free(ta);
	free(tb);
	serve_model_free(a);
	serve_model_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmsnorm),
		cmocka_unit_test(test_rope),
		cmocka_unit_test(test_swiglu),
		cmocka_unit_test(test_topk),
		cmocka_unit_test(test_moe),
		cmocka_unit_test(test_attention_mha),
		cmocka_unit_test(test_attention_gqa),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_fnv),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_seed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
