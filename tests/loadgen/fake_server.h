/* SPDX-License-Identifier: MIT */
/*
 * A fake kvaccel-serve for kvaccel-loadgen's tests: POST /v1/completions to the API contract,
 * with a set delay before the first token and between tokens. The request's "client" picks a
 * behaviour: "e400", "e429", "e500", "e503" answer that status with an error body; "cut" closes
 * the stream after two tokens; "short" ends it properly after two tokens (the final event and
 * [DONE]); "abort" sends two tokens, an error event (503, "fake abort") and [DONE]; "slow"
 * streams as usual but token slow_token comes slow_ms after the one before instead of tpot_ms;
 * anything else streams max_tokens tokens and the final summary (preemptions = the request's
 * priority, recomputed_tokens = 2 x its priority).
 *
 * GET /metrics answers kvaccel-serve's counters in the Prometheus text format, after metrics_pad
 * gauges kvaccel_fake_pad{i="N"} N (to make the page long), chunked unless close_delimited.
 * Every well-formed completion request, when it arrives, adds to them: 1 to
 * kvaccel_serve_requests_total{status="200"} and kvaccel_serve_recomputes_total, 10 + max_tokens
 * to kvaccel_serve_computed_tokens_total, 2 x priority to kvaccel_serve_recomputed_tokens_total,
 * priority to kvaccel_serve_swaps_total and kvaccel_serve_swap_ins_total, 8192 x priority to
 * kvaccel_serve_swapped_bytes_total; kvaccel_serve_yields_total, kvaccel_fake_huge_total
 * (2^64 - 1) and the gauges never change (fake_server.c says where each starts).
 */
#ifndef FAKE_SERVER_H
#define FAKE_SERVER_H

struct fake_opts {
	int ttft_ms;		/* before the first token */
	int tpot_ms;		/* between tokens */
	int close_delimited;	/* no chunked encoding: the body ends at the close */
	int slow_token;		/* client "slow": this token (1..) comes late, */
	int slow_ms;		/* this long after the one before */
	int no_metrics;		/* GET /metrics answers 404 */
	int metrics_pad;	/* gauges before the counters on /metrics */
};

struct fake_server;

/* Listens on 127.0.0.1 at an ephemeral port; NULL on failure. */
struct fake_server *fake_start(const struct fake_opts *o, int *port);
/* Requests accepted so far (GET /metrics not counted), and how many had a well-formed body. */
int fake_requests(struct fake_server *s, int *well_formed);
/* GET /metrics answered so far (404s included). */
int fake_metrics_gets(struct fake_server *s);
/* Waits for the connections in flight, then stops. */
void fake_stop(struct fake_server *s);
/* A port nothing listens on (bound, then closed). */
int fake_closed_port(void);

#endif
