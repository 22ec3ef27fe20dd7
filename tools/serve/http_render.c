// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the HTTP server's bodies: completions (whole, or the
 * stream's events), errors, and the Prometheus text of /metrics.
 */
#include <time.h>

#include "http_int.h"

const double http_buckets[HTTP_NR_BUCKETS] = {
	1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000,
};

const int http_status_codes[HTTP_NR_STATUS] = { 200, 400, 404, 405, 413, 429, 500, 503 };

int http_status_slot(int status)
{
	int i;

	for (i = 0; i < HTTP_NR_STATUS; i++)
		if (http_status_codes[i] == status)
			return i;
	return 6;	/* 500 */
}

static void summary(struct sbuf *b, const struct http_job *j)
{
	double e2e = (j->t_last ? j->t_last : http_now()) - j->t_arrive;
	uint32_t i;

	sb_printf(b, "\"usage\": {\"prompt_tokens\": %u, \"completion_tokens\": %u, "
		  "\"total_tokens\": %u}, \"kvaccel\": {\"token_ids\": [", j->req.n_prompt,
		  j->n_out, j->req.n_prompt + j->n_out);
	for (i = 0; i < j->n_out; i++)
		sb_printf(b, "%s%d", i ? ", " : "", j->tok[i]);
	sb_printf(b, "], \"digests\": [");
	for (i = 0; i < j->n_out; i++)
		sb_printf(b, "%s\"%016llx\"", i ? ", " : "", (unsigned long long)j->digest[i]);
	sb_printf(b, "], \"ttft_ms\": %.3f, \"tpot_ms\": %.3f, \"e2e_ms\": %.3f, "
		  "\"queue_ms\": %.3f, \"preemptions\": %u, \"swaps\": %u, \"recomputes\": %u, "
		  "\"yields\": %u, \"recomputed_tokens\": %llu, \"swapped_bytes\": %llu, "
		  "\"preempted_ms\": %.3f}",
		  j->n_out ? (j->t_first - j->t_arrive) * 1e3 : 0.0,
		  j->n_out > 1 ? (j->t_last - j->t_first) * 1e3 / (j->n_out - 1) : 0.0,
		  e2e * 1e3, j->t_sched ? (j->t_sched - j->t_arrive) * 1e3 : 0.0, j->preemptions,
		  j->swaps, j->recomputes, j->yields, (unsigned long long)j->recomputed,
		  (unsigned long long)j->swapped_bytes, j->preempted_ms);
}

void http_render_completion(struct sbuf *b, const struct http_job *j, bool final_event)
{
	sb_printf(b, "{\"id\": \"cmpl-%llu\", \"object\": \"text_completion\", \"created\": %lld, "
		  "\"model\": \"kvaccel-serve\", \"choices\": [{\"index\": 0, \"text\": ",
		  (unsigned long long)j->seq, (long long)time(NULL));
	if (final_event)
		sb_printf(b, "\"\"");
	else
		sb_jstr(b, j->tok, j->n_out);
	sb_printf(b, ", \"finish_reason\": \"length\"}], ");
	summary(b, j);
	sb_printf(b, "}");
}

void http_render_token(struct sbuf *b, const struct http_job *j, uint32_t i)
{
	sb_printf(b, "{\"id\": \"cmpl-%llu\", \"object\": \"text_completion\", \"created\": %lld, "
		  "\"model\": \"kvaccel-serve\", \"choices\": [{\"index\": 0, \"text\": ",
		  (unsigned long long)j->seq, (long long)time(NULL));
	sb_jstr(b, &j->tok[i], 1);
	sb_printf(b, ", \"finish_reason\": null}], \"kvaccel\": {\"token_id\": %d, "
		  "\"digest\": \"%016llx\"}}", j->tok[i], (unsigned long long)j->digest[i]);
}

void http_render_error(struct sbuf *b, int status, const char *msg)
{
	const char *type = status == 429 ? "overloaded" : status >= 500 ? "server_error" :
			   "invalid_request_error";
	int32_t t[200];
	uint32_t n;

	for (n = 0; msg[n] && n < 200; n++)
		t[n] = (unsigned char)msg[n];
	sb_printf(b, "{\"error\": {\"message\": ");
	sb_jstr(b, t, n);
	sb_printf(b, ", \"type\": \"%s\", \"code\": %d}}", type, status);
}

static void histogram(struct sbuf *b, const char *name, const char *help, const uint64_t *bk,
		      uint64_t n, double sum)
{
	int i;

	sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i < HTTP_NR_BUCKETS; i++)
		sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, http_buckets[i],
			  (unsigned long long)bk[i]);
	sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
		  (unsigned long long)n, name, sum, name, (unsigned long long)n);
}

#define COUNTER(name, help, v) \
	sb_printf(b, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n", \
		  (unsigned long long)(v))
#define GAUGE(name, help, v) \
	sb_printf(b, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %llu\n", \
		  (unsigned long long)(v))

static const char *const state_names[ACCEL_SCHED_NR_STATES] = {
	"waiting", "prefilling", "decoding", "swapping_out", "swapped", "swapping_in",
	"recompute", "finished", "aborted",
};

void http_render_metrics(struct sbuf *b, struct serve_http *h)
{
	struct http_stats s;
	int i;

	pthread_mutex_lock(&h->mu);
	s = h->st;
	pthread_mutex_unlock(&h->mu);
	sb_printf(b, "# HELP kvaccel_serve_requests_total HTTP requests answered, by status.\n"
		  "# TYPE kvaccel_serve_requests_total counter\n");
	for (i = 0; i < HTTP_NR_STATUS; i++)
		sb_printf(b, "kvaccel_serve_requests_total{status=\"%d\"} %llu\n",
			  http_status_codes[i], (unsigned long long)s.requests[i]);
	COUNTER("kvaccel_serve_generated_tokens_total", "Tokens generated (completed requests).",
		s.generated);
	COUNTER("kvaccel_serve_prompt_tokens_total", "Prompt tokens (completed requests).",
		s.prompt_tokens);
	GAUGE("kvaccel_serve_requests_running", "Requests with KV on the compute tier.",
	      s.running);
	GAUGE("kvaccel_serve_requests_waiting", "Requests waiting for (re)prefill.", s.waiting);
	GAUGE("kvaccel_serve_requests_swapped", "Requests with KV on the swap tier.", s.swapped);
	sb_printf(b, "# HELP kvaccel_serve_kv_blocks KV blocks per tier, used or free.\n"
		  "# TYPE kvaccel_serve_kv_blocks gauge\n");
	for (i = 0; i < 2; i++)
		sb_printf(b, "kvaccel_serve_kv_blocks{tier=\"%s\",state=\"used\"} %u\n"
			  "kvaccel_serve_kv_blocks{tier=\"%s\",state=\"free\"} %u\n",
			  i ? "swap" : "compute", s.used[i], i ? "swap" : "compute",
			  s.total[i] - s.used[i]);
	COUNTER("kvaccel_serve_swaps_total", "Swap-outs (preemptions by swap).",
		s.sched.swaps_out);
	COUNTER("kvaccel_serve_swap_ins_total", "Swap-ins.", s.sched.swaps_in);
	COUNTER("kvaccel_serve_swap_failures_total", "Swaps whose copy failed (undone).",
		s.sched.swap_failures);
	COUNTER("kvaccel_serve_recomputes_total", "Preemptions by drop for recompute.",
		s.sched.recomputes);
	COUNTER("kvaccel_serve_recomputed_tokens_total",
		"Tokens computed again after a drop (the recompute tax).",
		s.sched.recomputed_tokens);
	COUNTER("kvaccel_serve_yields_total", "Operator-level yields of running prefills.",
		s.sched.yields);
	COUNTER("kvaccel_serve_swapped_bytes_total", "KV bytes swapped out and in.",
		s.sched.swapped_bytes);
	GAUGE("kvaccel_serve_swap_bandwidth_bytes", "Swap bandwidth the cost model uses (B/s).",
	      s.sched.swap_bw);
	GAUGE("kvaccel_serve_step_duration_ns", "A step's duration as the scheduler measures it.",
	      s.sched.step_ns);
	COUNTER("kvaccel_serve_computed_tokens_total", "Tokens computed, all runs.",
		s.sched.tokens);
	COUNTER("kvaccel_serve_pressure_rounds_total", "kvacceld release requests answered.",
		s.pressure_rounds);
	sb_printf(b, "# HELP kvaccel_serve_sched_requests Requests the scheduler knows, by state.\n"
		  "# TYPE kvaccel_serve_sched_requests gauge\n");
	for (i = 0; i < ACCEL_SCHED_NR_STATES; i++)
		sb_printf(b, "kvaccel_serve_sched_requests{state=\"%s\"} %u\n", state_names[i],
			  s.sched.in_state[i]);
	COUNTER("kvaccel_serve_swap_out_blocks_total", "KV blocks swapped out.",
		s.swap_out_blocks);
	COUNTER("kvaccel_serve_swap_in_blocks_total", "KV blocks swapped in.", s.swap_in_blocks);
	COUNTER("kvaccel_serve_cancelled_total", "Requests cancelled by a client disconnect.",
		s.cancelled);
	COUNTER("kvaccel_serve_steps_total", "Engine steps.", s.steps);
	histogram(b, "kvaccel_serve_ttft_ms", "Time to first token (ms).", s.ttft_b, s.ttft_n,
		  s.ttft_sum);
	histogram(b, "kvaccel_serve_tpot_ms", "Time per output token after the first (ms).",
		  s.tpot_b, s.tpot_n, s.tpot_sum);
	histogram(b, "kvaccel_serve_queue_ms", "Arrival to first scheduled (ms, completed ones).",
		  s.queue_b, s.queue_n, s.queue_sum);
	sb_printf(b, "# HELP kvaccel_serve_preempted_ms_total Time completed requests spent "
		  "preempted (ms).\n# TYPE kvaccel_serve_preempted_ms_total counter\n"
		  "kvaccel_serve_preempted_ms_total %.3f\n", s.stall_sum);
}
