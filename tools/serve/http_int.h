/* SPDX-License-Identifier: MIT */
/* kvaccel-serve - the HTTP server's parts: requests, jobs, the engine thread, rendering. */
#ifndef SERVE_HTTP_INT_H
#define SERVE_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* ---- a growing string (http_json.c) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @s as a JSON string: bytes outside printable ASCII as \u00XX (code point = byte). */
void sb_jstr(struct sbuf *b, const int32_t *tok, uint32_t n);
void sb_free(struct sbuf *b);

/* ---- a completion request, parsed (http_req.c) ---- */

struct http_creq {
	int32_t *prompt;
	uint32_t n_prompt;
	bool stream, offline;
	struct serve_params p;
	char client[64];
};

/**
 * Parse a request body: 0, or the HTTP status (400, 413) with a message
 * in @msg. creq->prompt is malloc'ed (free it) on 0.
 */
int http_parse_creq(const char *body, size_t len, const struct serve_http_opts *o,
		    struct http_creq *r, char *msg, size_t msglen);

/* ---- a job: one request between an HTTP thread and the engine thread ---- */

struct http_job {
	struct http_job *next;		/* the submission queue, then the active list */
	uint64_t seq;			/* cmpl-N */
	struct http_creq req;
	uint32_t id;			/* the driver's handle */
	bool abort_sent;		/* engine thread: serve_driver_abort() called */
	/* Under h->mu: */
	pthread_cond_t cond;
	uint32_t n_out;			/* tokens delivered into tok/digest */
	int32_t *tok;
	uint64_t *digest;
	bool done, cancelled;
	int status;			/* 200, or an error status once done */
	char msg[128];
	uint32_t preemptions;
	/* The scheduler's accounting of it (accel_sched_req_info()). */
	uint32_t swaps, recomputes, yields;
	uint64_t recomputed, swapped_bytes;
	double preempted_ms;
	double t_arrive, t_sched, t_first, t_last;
	int refs;
};

#define HTTP_NR_STATUS	8

struct http_stats {
	uint64_t requests[HTTP_NR_STATUS];	/* by http_status_slot() */
	uint64_t generated, prompt_tokens, steps, swap_out_blocks, swap_in_blocks;
	uint64_t cancelled, pressure_rounds;
	uint32_t running, waiting, swapped;
	/* The scheduler's totals, as of the last step. */
	struct accel_sched_stats sched;
	/* Finished requests: queueing and preemption stall (scheduler's accounting), in ms. */
	uint64_t queue_b[16], queue_n;
	double queue_sum, stall_sum;
	uint32_t used[2], total[2];
	/* Histograms, in ms (HTTP_NR_BUCKETS bounds, then +Inf). */
	uint64_t ttft_b[16], tpot_b[16], ttft_n, tpot_n;
	double ttft_sum, tpot_sum;
};

struct serve_http {
	struct serve_http_opts o;
	struct MHD_Daemon *mhd;
	uint16_t port;
	pthread_t thread;
	bool thread_started;
	int efd;			/* wakes the engine thread */
	pthread_mutex_t mu;
	/* Under mu: */
	struct http_job *queue, **queue_tail;
	uint32_t in_flight;
	uint64_t next_seq;
	bool quiescing, stopping;
	/* Streams whose last event is not yet sent: a stop waits for them (streams_cv). */
	uint32_t streams;
	pthread_cond_t streams_cv;
	struct http_stats st;
};

extern const double http_buckets[];
#define HTTP_NR_BUCKETS	12

double http_now(void);
int http_status_slot(int status);
extern const int http_status_codes[HTTP_NR_STATUS];

/* http_engine.c */
int http_engine_start(struct serve_http *h);
void http_engine_stop(struct serve_http *h);
/**
 * Add a job's request to the scheduler and queue the job for the engine
 * thread (its refs: 2, one for that thread). -EBUSY, -ENOSPC (429),
 * -ESHUTDOWN (503), -E2BIG (413), -EINVAL (400), -ENOMEM (500).
 */
int http_submit(struct serve_http *h, struct http_job *j);
struct http_job *http_job_new(const struct http_creq *r);
/** Drop a reference (under h->mu); the last frees the job. */
void http_job_put(struct http_job *j);
/** Cancel (the client went away) and drop the HTTP side's reference. */
void http_job_abandon(struct serve_http *h, struct http_job *j);
void http_kick(struct serve_http *h);

/* http_render.c */
void http_render_completion(struct sbuf *b, const struct http_job *j, bool final_event);
void http_render_token(struct sbuf *b, const struct http_job *j, uint32_t i);
void http_render_error(struct sbuf *b, int status, const char *msg);
void http_render_metrics(struct sbuf *b, struct serve_http *h);

#endif /* SERVE_HTTP_INT_H */
