// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the reference engine's batch mode: generate from each
 * --prompt with the built-in FCFS policy, print every request's text and
 * its tokens' digests. Documentation/serve.rst.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "http_main.h"
#include "safetensors.h"

static void print_text(const int32_t *t, uint32_t n)
{
	uint32_t i;

	putchar('"');
	for (i = 0; i < n; i++) {
		int c = t[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(const struct serve_cli *c, const struct serve_model *m)
{
	struct serve_stack_opts so = {
		.model = m, .block_tokens = c->block_tokens, .blocks = c->blocks,
		.swap_blocks = c->swap_blocks, .memfd = c->memfd, .device = c->device,
		.threads = c->threads, .max_ctx = c->max_ctx,
	};
	uint64_t steps = 0, tokens = 0, gen = 0, swaps = 0, drops = 0;
	struct serve_stack s;
	struct serve_req_info in;
	int32_t *tok = NULL;
	uint32_t i, j, id;
	char err[256];
	double t0;
	int ret;

	ret = serve_stack_create(&s, &so, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kvaccel-serve: %s\n", err);
		return 1;
	}
	for (i = 0; i < c->nr_prompts; i++) {
		uint32_t n = (uint32_t)strlen(c->prompt[i]);
		struct serve_params p = { .max_tokens = c->max_tokens,
					  .temperature = c->temperature, .seed = c->seed + i };

		tok = realloc(tok, n * sizeof(*tok));
		if (!tok) {
			ret = -1;
			fprintf(stderr, "kvaccel-serve: out of memory\n");
			goto out;
		}
		for (j = 0; j < n; j++)
			tok[j] = (unsigned char)c->prompt[i][j];
		ret = serve_engine_add(s.engine, tok, n, &p, &id);
		if (ret) {
			fprintf(stderr, "kvaccel-serve: prompt %u: %s%s\n", i + 1, strerror(-ret),
				ret == -E2BIG ? " (prompt and --max-tokens exceed the context or "
				"the compute tier's --blocks)" : "");
			goto out;
		}
	}
	t0 = now();
	ret = serve_run_all(s.engine, &c->fcfs, &steps);
	t0 = now() - t0;
	if (ret) {
		fprintf(stderr, "kvaccel-serve: the engine failed: %s\n", strerror(-ret));
		goto out;
	}
	for (id = serve_engine_next(s.engine, 0); id; id = serve_engine_next(s.engine, id)) {
		serve_engine_info(s.engine, id, &in);
		printf("request %u: %u prompt tokens, %u generated, swapped out %u, dropped %u\n",
		       id, in.n_prompt, in.n_generated, in.swaps_out, in.drops);
		printf("  text: ");
		print_text(in.tokens, in.n_generated);
		putchar('\n');
		if (!c->quiet) {
			printf("  digests:");
			for (j = 0; j < in.n_generated; j++)
				printf(" %016llx", (unsigned long long)in.digests[j]);
			putchar('\n');
		}
		tokens += in.n_tokens;
		gen += in.n_generated;
		swaps += in.swaps_out;
		drops += in.drops;
	}
	fprintf(stderr, "kvaccel-serve: %llu tokens (%llu generated) in %.3f s: %.0f tokens/s, "
		"%llu steps, %llu swap-outs, %llu drops\n", (unsigned long long)tokens,
		(unsigned long long)gen, t0, t0 > 0 ? tokens / t0 : 0.0, (unsigned long long)steps,
		(unsigned long long)swaps, (unsigned long long)drops);
out:
	free(tok);
	serve_stack_destroy(&s);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct serve_model *m;
	struct serve_cli c;
	char err[256];
	int ret;

	ret = serve_cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	m = c.weights ? serve_st_load(c.weights, &c.cfg, err, sizeof(err)) :
		serve_model_from_seed(&c.cfg, c.seed);
	if (!m) {
		fprintf(stderr, "kvaccel-serve: %s\n", c.weights ? err : "out of memory");
		return 1;
	}
	if (c.save_weights && serve_st_save(m, c.save_weights, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-serve: --save-weights: %s\n", err);
		serve_model_free(m);
		return 1;
	}
	ret = c.listen ? serve_http_main(&c, m) : c.nr_prompts ? run(&c, m) : 0;
	serve_model_free(m);
	return ret;
}
