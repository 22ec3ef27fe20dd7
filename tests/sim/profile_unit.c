// SPDX-License-Identifier: MIT
/*
 * kvaccel-sim's shipped profiles and link presets (tools/sim/profile.c, tools/sim/profiles/):
 * every file there loads and derives, names its links and its own file; each model shape's KV
 * bytes per token exact and divided by tp, the block counts from the memory left; the presets'
 * figures, an explicit number overriding a preset's, unknown preset names refused with their
 * line; relations that must hold between profiles (an H100 faster than an A100 on the same
 * model, a 70B slower than an 8B per token); a 512-token prefill and a 64-decode step within
 * 15 % of the published figures of ../shared/latency-anchors.md (Vidur's operator fits, the
 * roofline attention, Vidur's all-reduce), and a 512-token prefill within 30 % of BLIS's fits.
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "profile.h"

#define DIR_PROFILES "tools/sim/profiles"
#define GIB (1024.0 * 1024 * 1024)

static void load(const char *name, struct sim_profile *p)
{
	char path[256], err[512];

	snprintf(path, sizeof(path), DIR_PROFILES "/%s.profile", name);
	if (sim_profile_load(path, p, err, sizeof(err)))
		fail_msg("%s", err);
}

/* A step of one whole @n-token prompt. */
static double prefill_ms(const struct sim_profile *p, uint64_t n)
{
	struct sim_batch b = { .prefill_tokens = n, .quad = (double)n * n };

	return sim_step_ns(p, &b) / 1e6;
}

/* A step of @d decodes, each reading @ctx tokens of context. */
static double decode_ms(const struct sim_profile *p, uint64_t d, uint64_t ctx)
{
	struct sim_batch b = { .decode_tokens = d, .context_tokens = d * ctx };

	return sim_step_ns(p, &b) / 1e6;
}

/*
 * The shipped profiles and what the anchors say of each: the model's KV bytes a token before
 * tp, Vidur's floor F and linear part at 512 tokens (ms), the roofline attention as
 * latency-anchors.md states it (us a context token, ms per (1k tokens)^2), and BLIS's fit where
 * it has the pair (ms fixed, us a prefill token; 0 where none). Figures marked (d) are not in
 * the anchors but derived as the profile's comments say (Llama-3-8B and Llama-3-70B on H100 by
 * the A100 ratio of the two models; the roofline of a model the anchors do not list).
 */
static const struct shipped {
	const char *name;
	uint64_t kv;		/* bytes a token, all GPUs */
	int tp;
	double floor_ms, lin512_ms, ctx_us, quad_ms, blis_base_ms, blis_prefill_us;
} shipped[] = {
	{ "llama2-7b-a100", 512 * 1024, 1, 9.2, 33, 0.367, 1.68, 0, 0 },
	{ "llama2-7b-h100", 512 * 1024, 1, 5.6, 12, 0.224, 0.53, 0, 0 },
	{ "llama3-8b-a100", 128 * 1024, 1, 10.0, 35, 0.092, 1.68, 16.442, 47.8 },
	/* (d): 5.6 x 10.0 / 9.2, 12 x 35 / 33; 128 KiB at 70 % of 3.35 TB/s. */
	{ "llama3-8b-h100", 128 * 1024, 1, 6.09, 12.73, 0.0559, 0.53, 5.753, 17.25 },
	{ "llama2-70b-a100", 320 * 1024, 4, 25.6, 89, 0.057, 2.10, 0, 0 },
	{ "llama2-70b-h100", 320 * 1024, 4, 14.7, 30, 0.035, 0.66, 0, 0 },
	/* (d): the Llama-2-70B shape's roofline. */
	{ "llama3-70b-a100", 320 * 1024, 4, 25.8, 90, 0.057, 2.10, 0, 0 },
	/* (d): 14.7 x 25.8 / 25.6, 30 x 90 / 89. BLIS: Llama-3.3-70B, H100, TP 4. */
	{ "llama3-70b-h100", 320 * 1024, 4, 14.81, 30.34, 0.035, 0.66, 12.601, 76.4 },
};

#define NR_SHIPPED (sizeof(shipped) / sizeof(shipped[0]))

static const struct shipped *find_shipped(const char *name)
{
	size_t i;

	for (i = 0; i < NR_SHIPPED; i++)
		if (!strcmp(shipped[i].name, name))
			return &shipped[i];
	return NULL;
}

/* Every file in tools/sim/profiles/ loads, derives, names itself and its links. */
static void test_every_file_loads(void **state)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	(void)state;
	d = opendir(DIR_PROFILES);
	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char stem[256], path[512], err[512];
		struct sim_profile p;

		if (de->d_name[0] == '.')
			continue;
		if (len < 9 || strcmp(de->d_name + len - 8, ".profile"))
			fail_msg("%s/%s: not a .profile file", DIR_PROFILES, de->d_name);
		snprintf(stem, sizeof(stem), "%.*s", (int)(len - 8), de->d_name);
		snprintf(path, sizeof(path), DIR_PROFILES "/%s", de->d_name);
		if (sim_profile_load(path, &p, err, sizeof(err)))
			fail_msg("%s", err);
		if (strcmp(p.name, stem))
			fail_msg("%s: name = %s", path, p.name);
		if (!find_shipped(stem))
			fail_msg("%s: not in this test's table of shipped profiles", path);
		if (!sim_link_find(p.swap_link) || !sim_link_find(p.net_link))
			fail_msg("%s: swap_link \"%s\", net_link \"%s\"", path, p.swap_link,
				 p.net_link);
		assert_true(p.swap_gbps > 0 && p.net_gbps > 0);
		assert_true(p.gpu_blocks > 1000 && p.host_blocks > 1000);
		assert_true(p.step_floor_us > 0 && p.prefill_quad_us > 0 && p.context_token_us > 0);
		n++;
	}
	closedir(d);
	assert_int_equal(n, NR_SHIPPED);
}

/* KV bytes a token exact for each shape, divided by tp; blocks from the memory left. */
static void test_kv_and_blocks(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NR_SHIPPED; i++) {
		const struct shipped *s = &shipped[i];
		struct sim_profile p;
		double left;

		load(s->name, &p);
		assert_int_equal(p.tp, s->tp);
		assert_int_equal(p.kv_bytes_per_token, s->kv / s->tp);
		assert_int_equal(p.block_bytes, 16 * s->kv / s->tp);
		/* Weights a GPU: parameters x 2 bytes / tp, to the 0.01 GiB. */
		left = 80 * 0.9 - p.weights_gib - 4;
		assert_int_equal(p.gpu_blocks, (uint32_t)floor(left * GIB / p.block_bytes));
		assert_int_equal(p.host_blocks, (uint32_t)floor(p.host_mem_gib * GIB /
								 p.block_bytes));
	}
	/* The shapes themselves: 2 x layers x KV heads x 128 x 2 bytes. */
	assert_int_equal(2 * 32 * 32 * 128 * 2, 512 * 1024);	/* Llama-2-7B, MHA */
	assert_int_equal(2 * 32 * 8 * 128 * 2, 128 * 1024);	/* Llama-3-8B, GQA 8 */
	assert_int_equal(2 * 80 * 8 * 128 * 2, 320 * 1024);	/* 70B, GQA 8 */
}

static void expect_weights(const char *name, double params)
{
	struct sim_profile p;

	load(name, &p);
	if (fabs(p.weights_gib - params * 2 / p.tp / GIB) > 0.01)
		fail_msg("%s: weights_gib %g, want %g", name, p.weights_gib,
			 params * 2 / p.tp / GIB);
}

static void test_weights(void **state)
{
	(void)state;
	expect_weights("llama2-7b-a100", 6.74e9);
	expect_weights("llama2-7b-h100", 6.74e9);
	expect_weights("llama3-8b-a100", 8.03e9);
	expect_weights("llama3-8b-h100", 8.03e9);
	expect_weights("llama2-70b-a100", 68.98e9);
	expect_weights("llama2-70b-h100", 68.98e9);
	expect_weights("llama3-70b-a100", 70.55e9);
	expect_weights("llama3-70b-h100", 70.55e9);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Load @text (after the common keys) into @p; the return of sim_profile_load(). */
static int load_text(const char *text, struct sim_profile *p, char *err, size_t errlen,
		     char *path_out)
{
	char path[] = "/tmp/sim_profile_unit_XXXXXX", buf[2048];
	int fd = mkstemp(path), ret;

	assert_true(fd >= 0);
	close(fd);
	snprintf(buf, sizeof(buf),
		 "name = t\nmodel = m\ngpu = g\nlayers = 2\nkv_heads = 2\nhead_dim = 8\n"
		 "dtype_bytes = 2\ngpu_mem_gib = 1\nweights_gib = 0\nstep_base_us = 1\n"
		 "prefill_token_us = 1\ndecode_token_us = 1\n%s", text);
	write_file(path, buf);
	ret = sim_profile_load(path, p, err, errlen);
	if (path_out)
		strcpy(path_out, path);
	unlink(path);
	return ret;
}

static void expect_link(const char *text, double swap_gbps, double swap_us, double net_gbps,
			double net_us)
{
	struct sim_profile p;
	char err[512];

	if (load_text(text, &p, err, sizeof(err), NULL))
		fail_msg("%s", err);
	assert_float_equal(p.swap_gbps, swap_gbps, 1e-12);
	assert_float_equal(p.swap_transfer_us, swap_us, 1e-12);
	assert_float_equal(p.net_gbps, net_gbps, 1e-12);
	assert_float_equal(p.net_transfer_us, net_us, 1e-12);
}

/* The presets' figures; a number given with a preset overrides it, in either order. */
static void test_presets(void **state)
{
	static const struct {
		const char *name;
		double gbps, us;
	} want[] = {
		{ "pcie4", 25, 20 }, { "pcie5", 55, 20 }, { "nvlink3", 270, 10 },
		{ "nvlink4", 405, 10 }, { "100gbe", 11, 30 }, { "400gbe", 45, 30 },
	};
	char text[256];
	size_t i;

	(void)state;
	assert_int_equal(sim_nr_links, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct sim_link *l = sim_link_find(want[i].name);

		assert_non_null(l);
		assert_float_equal(l->gbps, want[i].gbps, 0);
		assert_float_equal(l->transfer_us, want[i].us, 0);
		snprintf(text, sizeof(text), "swap_link = %s\nnet_link = %s\n", want[i].name,
			 want[i].name);
		expect_link(text, want[i].gbps, want[i].us, want[i].gbps, want[i].us);
	}
	assert_null(sim_link_find("nvlink"));
	assert_null(sim_link_find("PCIE4"));
	/* Overrides, before or after the preset; the other figure stays the preset's. */
	expect_link("swap_link = pcie4\nswap_gbps = 20\n", 20, 20, 0, 0);
	expect_link("swap_gbps = 20\nswap_link = pcie4\n", 20, 20, 0, 0);
	expect_link("swap_transfer_us = 5\nswap_link = pcie5\n", 55, 5, 0, 0);
	expect_link("swap_link = pcie4\nnet_link = 100gbe\nnet_gbps = 12.5\n", 25, 20, 12.5, 30);
	expect_link("swap_gbps = 7\nnet_link = 400gbe\nnet_transfer_us = 0\n", 7, 0, 45, 0);
	/* No preset: the numbers alone, as before the presets. */
	expect_link("swap_gbps = 7\nswap_transfer_us = 3\n", 7, 3, 0, 0);
}

/* The transfer times use the preset's figures. */
static void test_preset_times(void **state)
{
	struct sim_profile p;

	(void)state;
	load("llama2-70b-h100", &p);	/* pcie5, 400gbe; 1.25 MiB blocks */
	assert_int_equal(p.block_bytes, 1310720);
	/* 20 us + 10 x 1310720 B / 55 GB/s = 20 + 238.31 us. */
	assert_int_equal(sim_swap_ns(&p, 10), 20000 + llround(13107200 / 55.0));
	/* 30 us + 10 x 1310720 B / 45 GB/s. */
	assert_int_equal(sim_net_ns(&p, 10), 30000 + llround(13107200 / 45.0));
	load("llama2-7b-a100", &p);	/* pcie4, nvlink3; 8 MiB blocks */
	assert_int_equal(sim_swap_ns(&p, 1), 20000 + llround(8388608 / 25.0));
	assert_int_equal(sim_net_ns(&p, 1), 10000 + llround(8388608 / 270.0));
}

static void expect_error(const char *text, const char *want)
{
	char err[512], msg[700], path[64];
	struct sim_profile p;

	assert_int_equal(load_text(text, &p, err, sizeof(err), path), -1);
	snprintf(msg, sizeof(msg), "%s%s", path, want);
	if (strcmp(err, msg))
		fail_msg("got \"%s\", want \"%s\"", err, msg);
}

/* Unknown presets with their line; swap_gbps required only without swap_link. */
static void test_preset_errors(void **state)
{
	(void)state;
	/* The common keys are 12 lines. */
	expect_error("swap_link = x\n",
		     ":13: swap_link: unknown link \"x\" (pcie4, pcie5, nvlink3, nvlink4, 100gbe, "
		     "400gbe)");
	expect_error("swap_link = pcie4\n# a comment\n\nnet_link = nvlink\n",
		     ":16: net_link: unknown link \"nvlink\" (pcie4, pcie5, nvlink3, nvlink4, "
		     "100gbe, 400gbe)");
	expect_error("swap_link = pcie4\nswap_link = pcie5\n", ":14: swap_link given twice");
	expect_error("swap_link =\n",
		     ":13: swap_link: unknown link \"\" (pcie4, pcie5, nvlink3, nvlink4, 100gbe, "
		     "400gbe)");
	expect_error("net_link = 100gbe\n", ": no \"swap_gbps\" (nor swap_link)");
	expect_error("swap_link = pcie4\nswap_gbps = 0\n",
		     ":14: swap_gbps: 0 not in 0.001..100000");
	expect_error("swap_link = pcie4\nfloor_linear = 2\n", ":14: floor_linear: 2 not in 0..1");
	expect_error("swap_link = pcie4\nfloor_linear = 0.5\n", ": floor_linear: not 0 or 1");
}

/* floor_linear: the floor bounds the linear part, the attention terms add to it. */
static void test_floor_linear(void **state)
{
	struct sim_batch dec = { .decode_tokens = 1, .context_tokens = 10 };
	struct sim_batch pre = { .prefill_tokens = 4, .quad = 16 };
	struct sim_profile p;
	char err[512];

	(void)state;
	/* base 1, 1 a token, floor 100, 1 a context token, 0.5 a unit of Q. */
	if (load_text("swap_link = pcie4\nstep_floor_us = 100\ncontext_token_us = 1\n"
		      "prefill_quad_us = 0.5\n", &p, err, sizeof(err), NULL))
		fail_msg("%s", err);
	assert_int_equal(sim_step_ns(&p, &dec), 100000);	/* max(1 + 1 + 10, 100) */
	assert_int_equal(sim_step_ns(&p, &pre), 100000);	/* max(1 + 4 + 8, 100) */
	p.floor_linear = 1;
	assert_int_equal(sim_step_ns(&p, &dec), 110000);	/* max(1 + 1, 100) + 10 */
	assert_int_equal(sim_step_ns(&p, &pre), 108000);	/* max(1 + 4, 100) + 8 */
	p.step_floor_us = 0;
	assert_int_equal(sim_step_ns(&p, &dec), 12000);		/* no floor: the same sum */
	p.floor_linear = 0;
	assert_int_equal(sim_step_ns(&p, &dec), 12000);
}

/* H100 faster than A100 on the same model; a 70B slower than an 8B per token. */
static void test_relations(void **state)
{
	static const char *const models[] = { "llama2-7b", "llama3-8b", "llama2-70b",
					      "llama3-70b" };
	struct sim_profile a, h, small, big;
	char name[64];
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s-a100", models[i]);
		load(name, &a);
		snprintf(name, sizeof(name), "%s-h100", models[i]);
		load(name, &h);
		assert_string_equal(a.model, h.model);
		assert_int_equal(a.kv_bytes_per_token, h.kv_bytes_per_token);
		assert_true(h.step_floor_us < a.step_floor_us);
		assert_true(h.prefill_token_us < a.prefill_token_us);
		assert_true(h.decode_token_us < a.decode_token_us);
		assert_true(h.context_token_us < a.context_token_us);
		assert_true(h.prefill_quad_us < a.prefill_quad_us);
		assert_true(prefill_ms(&h, 512) < prefill_ms(&a, 512));
		assert_true(prefill_ms(&h, 4096) < prefill_ms(&a, 4096));
		assert_true(decode_ms(&h, 64, 1024) < decode_ms(&a, 64, 1024));
		assert_true(decode_ms(&h, 1, 16) < decode_ms(&a, 1, 16));
		assert_true(h.swap_gbps > a.swap_gbps);
	}
	for (i = 0; i < 2; i++) {
		const char *gpu = i ? "h100" : "a100";

		snprintf(name, sizeof(name), "llama3-8b-%s", gpu);
		load(name, &small);
		snprintf(name, sizeof(name), "llama3-70b-%s", gpu);
		load(name, &big);
		/* Slower per token even on 4 GPUs, and per GPU-token by far. */
		assert_true(big.prefill_token_us > small.prefill_token_us);
		assert_true(big.prefill_token_us * big.tp > 5 * small.prefill_token_us);
		assert_true(big.step_floor_us > small.step_floor_us);
		assert_true(prefill_ms(&big, 512) > prefill_ms(&small, 512));
		assert_true(decode_ms(&big, 64, 1024) > decode_ms(&small, 64, 1024));
		assert_true(decode_ms(&big, 64, 16) > decode_ms(&small, 64, 16));
		/* Its quadratic term at tp 4: 80 layers x 8192 / 4 against 32 x 4096. */
		assert_float_equal(big.prefill_quad_us / small.prefill_quad_us, 1.25, 0.01);
	}
}

static void within(const char *what, const char *name, double got, double want, double tol)
{
	double rel = got / want - 1;

	print_message("%-16s %-24s %8.2f ms, anchors %8.2f ms (%+.1f %%)\n", name, what, got,
		      want, rel * 100);
	if (fabs(rel) > tol)
		fail_msg("%s: %s %.2f ms, want %.2f ms within %.0f %%", name, what, got, want,
			 tol * 100);
}

/*
 * A 512-token prefill and a 64-decode step (1024 tokens of context each) against the anchors:
 * Vidur's linear part (T_lin at 512 tokens; its floor at 64), the anchors' roofline attention,
 * and at TP 4 Vidur's all-reduce, 2 a layer: 0.1 ms a call for the 8 MB of 512 tokens, 0.03 ms
 * below 1 MB (the low ends of its ranges). Within 15 %. BLIS's fits, where it has the pair, for
 * the prefill within 30 % (its 64-decode step is not checked: its A100 fit's 16.4 ms fixed
 * part is 1.6 times Vidur's operators' floor).
 */
static void test_anchor_ranges(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NR_SHIPPED; i++) {
		const struct shipped *s = &shipped[i];
		double ar512 = s->tp > 1 ? 160 * 0.1 : 0, ar64 = s->tp > 1 ? 160 * 0.03 : 0;
		struct sim_profile p;

		load(s->name, &p);
		within("prefill 512", s->name, prefill_ms(&p, 512),
		       s->lin512_ms + s->quad_ms * 0.512 * 0.512 + ar512, 0.15);
		within("decode 64 x 1024", s->name, decode_ms(&p, 64, 1024),
		       s->floor_ms + 64 * 1024 * s->ctx_us / 1000 + ar64, 0.15);
		if (s->blis_base_ms)
			within("prefill 512 (BLIS)", s->name, prefill_ms(&p, 512),
			       s->blis_base_ms + 512 * s->blis_prefill_us / 1000, 0.30);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_file_loads),
		cmocka_unit_test(test_kv_and_blocks),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_preset_times),
		cmocka_unit_test(test_preset_errors),
		cmocka_unit_test(test_floor_linear),
		cmocka_unit_test(test_relations),
		cmocka_unit_test(test_anchor_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
