// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the reference engine's batch mode: generate from each
 * --prompt (libaccel's scheduler driving the engine; --at-step and
 * --priority shape the arrivals), print every request's text and its
 * tokens' digests, a per-request table, the digests checked against each
 * request run alone. Documentation/serve.rst.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>
#include <signal.h>

#include "cli.h"
#include "http_main.h"
#include "moe_peer.h"
#include "pressure.h"
#include "safetensors.h"
#include "steplog.h"

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

static void stack_opts(const struct serve_cli *c, const struct serve_model *m,
		       struct serve_stack_opts *so)
{
	*so = (struct serve_stack_opts) {
		.model = m, .block_tokens = c->block_tokens, .blocks = c->blocks,
		.swap_blocks = c->swap_blocks, .memfd = c->memfd, .device = c->device,
		.threads = c->threads, .max_ctx = c->max_ctx, .sched = &c->sched,
		.moe = c->moe_on ? &c->moe : NULL,
	};
}

static void prompt_tokens(const char *s, int32_t *tok, uint32_t *n)
{
	uint32_t j;

	*n = (uint32_t)strlen(s);
	for (j = 0; j < *n; j++)
		tok[j] = (unsigned char)s[j];
}

static struct serve_params params_of(const struct serve_cli *c, uint32_t i)
{
	return (struct serve_params) { .max_tokens = c->max_tokens,
				       .temperature = c->temperature, .seed = c->seed + i,
				       .priority = c->prio[i] };
}

/*
 * With --moe-from the model has no experts of its own: a stack alone takes
 * its experts from the serving stack's store (the peer's pages, shared).
 */
static struct serve_moe *alone_experts;

static int alone_stack(const struct serve_cli *c, const struct serve_stack_opts *so0,
		       struct serve_stack *s)
{
	struct accel_moe_store *store = serve_moe_store(alone_experts);
	struct accel_moe_store_share *e = NULL;
	struct serve_stack_opts so = *so0;
	struct serve_moe_opts moe;
	char err[256];
	int n = 0, ret;

	if (c->moe_from) {
		n = store ? accel_moe_store_export(store, NULL, 0) : -ENOENT;
		e = n > 0 ? calloc((size_t)n, sizeof(*e)) : NULL;
		if (!e)
			return n < 0 ? n : -ENOMEM;
		ret = accel_moe_store_export(store, e, (uint32_t)n);
		if (ret < 0) {
			free(e);
			return ret;
		}
		n = ret < n ? ret : n;
		moe = c->moe;
		moe.from = e;
		moe.nr_from = (uint32_t)n;
		so.moe = &moe;
	}
	ret = serve_stack_create(s, &so, err, sizeof(err));
	serve_moe_peer_free(e, (uint32_t)n);
	return ret;
}

/* @n tokens of prompt @tok with @p alone on a stack of its own: its digests, to compare. */
static int run_alone_tokens(const struct serve_cli *c, const struct serve_model *m,
			    const int32_t *tok, uint32_t n, const struct serve_params *p,
			    uint64_t *digests)
{
	struct serve_stack_opts so;
	struct serve_driver_info in;
	struct serve_stack s;
	uint32_t h;
	int ret;

	stack_opts(c, m, &so);
	ret = alone_stack(c, &so, &s);
	if (ret)
		return ret;
	ret = serve_driver_add(s.driver, tok, n, p, &h);
	if (!ret)
		ret = serve_driver_run_all(s.driver, NULL);
	if (!ret)
		ret = serve_driver_info(s.driver, h, &in);
	if (!ret)
		memcpy(digests, in.req.digests, in.req.n_generated * sizeof(*digests));
	serve_stack_destroy(&s);
	return ret;
}

/* Prompt @i alone on a stack of its own: its digests, to compare. */
static int run_alone(const struct serve_cli *c, const struct serve_model *m, uint32_t i,
		     int32_t *tok, uint64_t *digests)
{
	struct serve_params p = params_of(c, i);
	uint32_t n;

	prompt_tokens(c->prompt[i], tok, &n);
	return run_alone_tokens(c, m, tok, n, &p, digests);
}

static volatile sig_atomic_t terminated;

static void on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

static void print_digests(const struct serve_req_info *r)
{
	printf("  digests:");
	for (uint32_t j = 0; j < r->n_generated; j++)
		printf(" %016llx", (unsigned long long)r->digests[j]);
	putchar('\n');
}

/*
 * The requests that arrived by migration (--kvacceld): their text and
 * digests, checked (--check-alone) against the same request run alone
 * here from its start. Returns how many differ, -errno on a failure.
 */
static int print_arrivals(const struct serve_cli *c, const struct serve_model *m,
			  struct serve_driver *d, const struct serve_kvd *kvd)
{
	const struct serve_migr_hdr *hd;
	const struct serve_nmig_stats *st;
	int mismatched = 0, ret;
	const char *from;
	uint32_t h;

	for (uint32_t i = 0; (h = serve_kvd_arrival(kvd, i, &from, &hd, &st)); i++) {
		struct serve_params p = { .max_tokens = hd->max_tokens, .seed = hd->seed,
					  .temperature = hd->temperature,
					  .priority = hd->priority };
		struct serve_driver_info in;
		uint64_t *alone;

		if (serve_driver_info(d, h, &in))
			continue;
		printf("request %llu of %s, migrated here after %u tokens: %u prompt tokens, "
		       "%u generated, downtime %.2f ms\n", (unsigned long long)hd->source, from,
		       hd->n_gen, in.req.n_prompt, in.req.n_generated, st->downtime_us / 1e3);
		printf("  text: ");
		print_text(in.req.tokens, in.req.n_generated);
		putchar('\n');
		if (!c->quiet)
			print_digests(&in.req);
		if (!c->check_alone)
			continue;
		alone = calloc(hd->max_tokens, sizeof(*alone));
		if (!alone)
			return -ENOMEM;
		ret = run_alone_tokens(c, m, serve_migr_tokens(hd), hd->n_prompt, &p, alone);
		if (!ret && memcmp(alone, in.req.digests, in.req.n_generated * sizeof(*alone)))
			mismatched++;
		free(alone);
		if (ret)
			return ret;
	}
	if (c->check_alone && serve_kvd_arrival(kvd, 0, &from, &hd, &st))
		printf("migrated digests: %s (%d differ from the same request run alone)\n",
		       mismatched ? "MISMATCH" : "identical to each request run alone", mismatched);
	return mismatched;
}

static void print_table(struct serve_driver *d, const uint32_t *handle, uint32_t nr,
			const struct serve_cli *c)
{
	struct serve_driver_info in;
	uint32_t i;

	printf("%-4s %5s %6s %6s %9s %9s %6s %6s %6s %10s %9s\n", "req", "prio", "prompt", "out",
	       "ttft_ms", "tpot_ms", "swaps", "drops", "yields", "swapped_B", "stall_ms");
	for (i = 0; i < nr; i++) {
		const struct accel_sched_req_info *q = &in.sched;

		if (serve_driver_info(d, handle[i], &in))
			continue;
		printf("%-4u %5d %6u %6u %9.2f %9.2f %6u %6u %6u %10llu %9.2f\n", i + 1, c->prio[i],
		       in.req.n_prompt, in.req.n_generated,
		       q->first_token_ns > q->arrival_ns ?
		       (double)(q->first_token_ns - q->arrival_ns) / 1e6 : 0.0,
		       q->tpot_count ? (double)q->tpot_sum_ns / (double)q->tpot_count / 1e6 : 0.0,
		       q->swaps_out, q->recomputes, q->yields,
		       (unsigned long long)q->swapped_bytes, (double)q->stall_ns / 1e6);
	}
}

/* When main() began, and how long the weights took to load. */
static double t_start, t_weights;

/*
 * --moe-from: the peer's expert copies into *@shares and @moe (a copy of
 * the command line's MoE options pointing at them). 0 or -1 (said).
 */
static int fetch_experts(const struct serve_cli *c, const struct serve_model *m,
			 struct serve_kvd *kvd, struct serve_moe_opts *moe,
			 struct accel_moe_store_share **shares, uint32_t *n)
{
	const struct serve_config *cfg = &m->cfg;
	char err[256];
	double t = now();
	int ret;

	ret = serve_kvd_moe_fetch(kvd, c->moe_from, cfg->layers, cfg->experts,
				  3ull * cfg->ff * cfg->d_model * sizeof(float), shares, n, err,
				  sizeof(err));
	if (ret) {
		fprintf(stderr, "kvaccel-serve: --moe-from %s: %s\n", c->moe_from, err);
		return -1;
	}
	fprintf(stderr, "kvaccel-serve: experts from %s: %u copies handed over in %.1f ms\n",
		c->moe_from, *n, (now() - t) * 1e3);
	*moe = c->moe;
	moe->from = *shares;
	moe->nr_from = *n;
	return 0;
}

/* How long the engine took to be ready to serve, and where its experts came from. */
static void report_ready(const struct serve_cli *c, struct serve_moe *x, uint32_t shared)
{
	ACCEL_OPTS(accel_moe_store_stats, st);

	if (!x || accel_moe_store_stats(serve_moe_store(x), &st))
		return;
	fprintf(stderr, "kvaccel-serve: ready to serve %.1f ms after start (weights %.1f ms, "
		"expert store %.1f ms: ", (now() - t_start) * 1e3, t_weights * 1e3,
		(double)serve_moe_setup_ns(x) / 1e6);
	if (shared)
		fprintf(stderr, "%llu copies taken from %s without a copy, %llu filled from them)\n",
			(unsigned long long)st.adopted, c->moe_from, (unsigned long long)st.fetched);
	else
		fprintf(stderr, "%u experts written from the model's weights)\n",
			st.layers * st.experts);
}

static int run(const struct serve_cli *c, const struct serve_model *m)
{
	struct serve_stack_opts so;
	struct serve_driver_opts sched = c->sched;
	uint64_t steps = 0, tokens = 0, gen = 0, swaps = 0, drops = 0, *alone = NULL;
	struct accel_sched_stats ss = { .sz = sizeof(ss) };
	uint32_t i, n, handle[SERVE_CLI_PROMPTS] = { 0 }, added = 0, mismatched = 0, idle = 0;
	uint32_t checked = 0, failed = 0;
	struct accel_moe_store_share *shares = NULL;
	struct serve_kvd *kvd = NULL;
	struct serve_driver_info in;
	struct serve_moe_opts moe;
	struct serve_stack s = { 0 };
	uint32_t nr_shares = 0;
	int32_t *tok = NULL;
	char err[256];
	double t0;
	int ret, kfd, wfd[2];

	stack_opts(c, m, &so);
	so.sched = &sched;
	so.window = c->kvacceld && !c->memfd;	/* a node's migrations change pages */
	if (c->step_log) {
		sched.step_log = serve_steplog_open(c->step_log, m, &so, err, sizeof(err));
		if (!sched.step_log) {
			fprintf(stderr, "kvaccel-serve: %s\n", err);
			return 1;
		}
	}
	if (c->kvacceld) {
		/* Before the stack: its expert store may come from a peer through the daemon. */
		kvd = serve_kvd_connect(c->kvacceld, c->kvacceld_prio, NULL, err, sizeof(err));
		/* Every engine answers a peer's request for experts (without a store: no). */
		ret = kvd ? serve_kvd_moe(kvd, serve_migr_model_id(m)) : 0;
		if (!kvd || ret) {
			fprintf(stderr, "kvaccel-serve: %s\n", kvd ? strerror(-ret) : err);
			ret = -1;
			goto out;
		}
	}
	if (c->moe_from) {
		ret = fetch_experts(c, m, kvd, &moe, &shares, &nr_shares);
		if (ret)
			goto out;
		so.moe = &moe;
	}
	ret = serve_stack_create(&s, &so, err, sizeof(err));
	serve_moe_peer_free(shares, nr_shares);
	shares = NULL;
	if (ret) {
		fprintf(stderr, "kvaccel-serve: %s\n", err);
		goto out;
	}
	report_ready(c, s.moe, nr_shares);
	alone_experts = s.moe;
	if (c->kvacceld) {
		serve_kvd_set_driver(kvd, s.driver);
		if (c->xfer && serve_kvd_xfer(kvd, s.bm, s.tiers[0], c->xfer, err, sizeof(err))) {
			fprintf(stderr, "kvaccel-serve: %s\n", err);
			ret = -1;
			goto out;
		}
		ret = so.window ? serve_kvd_migrations(kvd, s.tiers[0]) : -EOPNOTSUPP;
		if (ret)
			fprintf(stderr, "kvaccel-serve: no live migrations: %s\n", strerror(-ret));
		ret = 0;
		if (c->until_exit) {
			signal(SIGTERM, on_term);
			signal(SIGINT, on_term);
		}
	}
	for (i = 0, n = 1; i < c->nr_prompts; i++)
		if (strlen(c->prompt[i]) > n)
			n = (uint32_t)strlen(c->prompt[i]);
	tok = malloc((size_t)n * sizeof(*tok));
	alone = c->check_alone ? malloc((size_t)c->max_tokens * sizeof(*alone)) : NULL;
	if (!tok || (c->check_alone && !alone)) {
		ret = -ENOMEM;
		fprintf(stderr, "kvaccel-serve: out of memory\n");
		goto out;
	}
	t0 = now();
	for (;;) {
		/* The prompts whose step has come arrive (in command-line order). */
		for (; added < c->nr_prompts && c->at_step[added] <= steps; added++) {
			struct serve_params p = params_of(c, added);

			prompt_tokens(c->prompt[added], tok, &n);
			ret = serve_driver_add(s.driver, tok, n, &p, &handle[added]);
			if (ret) {
				fprintf(stderr, "kvaccel-serve: prompt %u: %s%s\n", added + 1,
					strerror(-ret), ret == -E2BIG ? " (prompt and --max-tokens "
					"exceed the context or the compute tier's --blocks)" : "");
				goto out;
			}
		}
		ret = serve_driver_step(s.driver, NULL);
		if (ret < 0)
			break;
		steps++;
		kfd = serve_kvd_fd(kvd);
		if (kfd >= 0) {
			struct pollfd pf = { .fd = kfd, .events = POLLIN };

			if (poll(&pf, 1, 0) > 0)
				serve_kvd_dispatch(kvd);
		}
		serve_kvd_step(kvd);
		if (ret) {
			idle = 0;
			continue;
		}
		if (added < c->nr_prompts)
			continue;	/* idle until the next arrival's step */
		serve_driver_stats(s.driver, &ss);
		if (ss.requests == ss.in_state[ACCEL_SCHED_FINISHED]) {
			/* Done here; with --until-exit, migrations may still come. */
			if (!serve_kvd_pending(kvd) && (!c->until_exit || terminated ||
							serve_kvd_exit_asked(kvd)))
				break;
			idle = 0;
			wfd[0] = kfd;
			wfd[1] = serve_kvd_xfer_fd(kvd);
			serve_driver_wait(s.driver, wfd, wfd[1] >= 0 ? 2 : 1, 100);
			continue;
		}
		/* Alive but nothing to do now: the clock may change that (slo's pacing). */
		if (++idle > 1000) {
			ret = -EDEADLK;
			break;
		}
		wfd[0] = kfd;
		wfd[1] = serve_kvd_xfer_fd(kvd);
		serve_driver_wait(s.driver, wfd, wfd[1] >= 0 ? 2 : 1, serve_driver_idle_ms(s.driver));
	}
	t0 = now() - t0;
	if (ret) {
		fprintf(stderr, "kvaccel-serve: the engine failed: %s\n", strerror(-ret));
		goto out;
	}
	for (i = 0; i < c->nr_prompts; i++) {
		const struct serve_nmig_stats *mst;
		const char *to;
		int mstatus;

		serve_driver_info(s.driver, handle[i], &in);
		to = in.req.state == SERVE_MIGRATED ?
			serve_kvd_departure(kvd, handle[i], &mstatus, &mst) : NULL;
		if (to) {
			printf("request %u: migrated to %s after %u generated tokens (its request %u "
			       "here; downtime %.2f ms)\n", i + 1, to, in.req.n_generated, handle[i],
			       mst->downtime_us / 1e3);
			continue;
		}
		to = in.sched.state == ACCEL_SCHED_ABORTED ?
		     serve_kvd_departure(kvd, handle[i], &mstatus, &mst) : NULL;
		if (to) {
			/* Lost after the point of no return: its destination may have it. */
			printf("request %u: failed after %u generated tokens: its migration to %s "
			       "was never confirmed (%s)\n", i + 1, in.req.n_generated, to,
			       strerror(-mstatus));
			failed++;
			continue;
		}
		printf("request %u: %u prompt tokens, %u generated, swapped out %u, dropped %u\n",
		       i + 1, in.req.n_prompt, in.req.n_generated, in.req.swaps_out, in.req.drops);
		printf("  text: ");
		print_text(in.req.tokens, in.req.n_generated);
		putchar('\n');
		if (!c->quiet)
			print_digests(&in.req);
		if (c->check_alone) {
			ret = run_alone(c, m, i, tok, alone);
			if (ret) {
				fprintf(stderr, "kvaccel-serve: prompt %u alone: %s\n", i + 1,
					strerror(-ret));
				goto out;
			}
			if (memcmp(alone, in.req.digests, in.req.n_generated * sizeof(*alone)))
				mismatched++;
			checked++;
		}
		tokens += in.req.n_tokens;
		gen += in.req.n_generated;
		swaps += in.req.swaps_out;
		drops += in.req.drops;
	}
	ret = print_arrivals(c, m, s.driver, kvd);
	if (ret) {
		if (ret < 0)
			fprintf(stderr, "kvaccel-serve: a migrated request alone: %s\n",
				strerror(-ret));
		ret = -1;
	}
	if (c->table)
		print_table(s.driver, handle, c->nr_prompts, c);
	serve_driver_stats(s.driver, &ss);
	fprintf(stderr, "kvaccel-serve: %llu tokens (%llu generated) in %.3f s: %.0f tokens/s, "
		"%llu steps, %llu swap-outs, %llu drops, %llu yields, %llu recomputed tokens, "
		"%llu bytes swapped\n", (unsigned long long)tokens,
		(unsigned long long)gen, t0, t0 > 0 ? tokens / t0 : 0.0, (unsigned long long)steps,
		(unsigned long long)swaps, (unsigned long long)drops,
		(unsigned long long)ss.yields, (unsigned long long)ss.recomputed_tokens,
		(unsigned long long)ss.swapped_bytes);
	if (s.moe)
		serve_moe_print(s.moe, stderr);
	if (failed)
		ret = -1;	/* a request failed to its client */
	if (c->check_alone && checked) {
		printf("digests: %s (%u of %u requests differ from the same request run alone)\n",
		       mismatched ? "MISMATCH" : "identical to each request run alone",
		       mismatched, checked);
		if (mismatched)
			ret = -1;
	}
out:
	free(tok);
	free(alone);
	serve_kvd_close(kvd);
	serve_stack_destroy(&s);
	if (sched.step_log && fclose(sched.step_log)) {
		fprintf(stderr, "kvaccel-serve: --step-log %s: %s\n", c->step_log, strerror(errno));
		ret = -1;
	}
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct serve_model *m;
	struct serve_cli c;
	uint32_t flags;
	char err[256];
	int ret;

	t_start = now();
	ret = serve_cli_parse(&c, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	/* Experts from a peer: the model's own are never read. */
	flags = c.moe_from ? SERVE_MODEL_NO_EXPERTS : 0;
	m = c.weights ? serve_st_load_flags(c.weights, &c.cfg, flags, err, sizeof(err)) :
		serve_model_from_seed_flags(&c.cfg, c.seed, flags);
	t_weights = now() - t_start;
	if (!m) {
		fprintf(stderr, "kvaccel-serve: %s\n", c.weights ? err : "out of memory");
		return 1;
	}
	if (c.save_weights && serve_st_save(m, c.save_weights, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-serve: --save-weights: %s\n", err);
		serve_model_free(m);
		return 1;
	}
	ret = c.listen ? serve_http_main(&c, m) : c.nr_prompts || c.until_exit ? run(&c, m) : 0;
	serve_model_free(m);
	return ret;
}
