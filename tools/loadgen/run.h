/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-loadgen - the open-loop run: each request starts at its arrival time on its own
 * connection in its own thread, whatever the server does, and streams its tokens.
 */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <stdint.h>

#include "http.h"
#include "workload.h"

struct lg_run_opts {
	struct lg_url url;
	double timeout_s;	/* per wait for a byte (0: none) */
	uint64_t seed;		/* prompts; request i is sent "seed": seed + i */
	double temperature;
};

/*
 * How a request failed, one cause each, in this order of precedence: a status other than 200
 * (http_error); no response at all (transport: connecting or sending failed, or the connection
 * closed or timed out before the status line); a malformed response (protocol: a bad status
 * line, header or chunk, a 200 that is not an event stream, an event that is not JSON); a stream
 * that ended without its final event (incomplete: closed or timed out in the middle, ended by
 * an error event or [DONE] first, or its connection failed after it); a whole stream with fewer
 * tokens than max_tokens (short).
 */
enum lg_fail {
	LG_FAIL_NONE = 0,
	LG_FAIL_HTTP,
	LG_FAIL_TRANSPORT,
	LG_FAIL_PROTOCOL,
	LG_FAIL_INCOMPLETE,
	LG_FAIL_SHORT,
	LG_FAIL_NR,
};

extern const char *const lg_fail_names[LG_FAIL_NR];	/* "ok", "http_error", ... */

struct lg_result {
	enum lg_http_err err;	/* LG_HTTP_OK: a whole response came (any status) */
	int status;		/* the HTTP status (0: none) */
	char msg[160];		/* the error's message (transport, server's error.message) */
	double start_s;		/* when it was sent, from the run's start */
	double late_ms;		/* how late that was against its arrival time */
	double end_s;		/* when its response ended */
	uint32_t tokens;	/* token events received */
	double ttft_ms;		/* first token event - send */
	double tpot_ms;		/* (last - first token event) / (tokens - 1); 0 for one token */
	double e2e_ms;		/* end of the stream - send */
	int ok;			/* fail == LG_FAIL_NONE: 200, a whole stream, every token */
	enum lg_fail fail;
	int summary;		/* the final event carried the kvaccel summary */
	double srv_ttft_ms, srv_tpot_ms, srv_e2e_ms, srv_queue_ms;
	long long preemptions;	/* -1: not reported */
	long long recomputed;	/* kvaccel.recomputed_tokens, -1: not reported */
	long long prompt_tokens, completion_tokens;	/* usage, -1: not reported */
	uint64_t *digests;
	uint32_t nr_digests;
	float *gaps_ms;		/* token event k+1 - token event k, as received */
	uint32_t nr_gaps;	/* tokens - 1, fewer only if memory ran out */
};

/* Run the workload; res has wl->n entries. *duration_s: from the start to the last response. */
int lg_run(const struct lg_workload *wl, const struct lg_run_opts *o, struct lg_result *res,
	   double *duration_s);

/* The JSON body of request idx (malloc'd). */
char *lg_request_body(const struct lg_req *r, const struct lg_run_opts *o, size_t idx);

void lg_results_free(struct lg_result *res, size_t n);

#endif
