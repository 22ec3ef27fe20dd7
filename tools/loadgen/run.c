// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - the open-loop run (see run.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "run.h"

const char *const lg_fail_names[LG_FAIL_NR] = {
	[LG_FAIL_NONE] = "ok", [LG_FAIL_HTTP] = "http_error", [LG_FAIL_TRANSPORT] = "transport",
	[LG_FAIL_PROTOCOL] = "protocol", [LG_FAIL_INCOMPLETE] = "incomplete",
	[LG_FAIL_SHORT] = "short",
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *lg_request_body(const struct lg_req *r, const struct lg_run_opts *o, size_t idx)
{
	json_object *b = json_object_new_object(), *ids;
	size_t len, i;
	uint8_t *p = lg_prompt_make(r, o->seed, idx, &len);
	char *s = NULL;

	if (!b || !p)
		goto out;
	if (r->prompt) {
		json_object_object_add(b, "prompt", json_object_new_string(r->prompt));
	} else {
		ids = json_object_new_array_ext(len);
		for (i = 0; i < len; i++)
			json_object_array_add(ids, json_object_new_int(p[i]));
		json_object_object_add(b, "prompt", ids);
	}
	json_object_object_add(b, "max_tokens", json_object_new_int64(r->output_len));
	json_object_object_add(b, "stream", json_object_new_boolean(1));
	json_object_object_add(b, "seed", json_object_new_int64((int64_t)(o->seed + idx)));
	json_object_object_add(b, "temperature", json_object_new_double(o->temperature));
	json_object_object_add(b, "priority", json_object_new_int(r->priority));
	if (r->ttft_slo_ms > 0)
		json_object_object_add(b, "ttft_slo_ms", json_object_new_double(r->ttft_slo_ms));
	if (r->tpot_slo_ms > 0)
		json_object_object_add(b, "tpot_slo_ms", json_object_new_double(r->tpot_slo_ms));
	if (*r->client)
		json_object_object_add(b, "client", json_object_new_string(r->client));
	json_object_object_add(b, "class", json_object_new_string(r->cls));
	s = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(b);
	free(p);
	return s;
}

struct stream {
	struct lg_result *res;
	double t_send, t_first, t_last, t_end;
	int sse, done, final, bad, aborted;
	uint64_t *tok_digests;
	uint32_t nr_tok, cap_tok;
	float *gaps;
	uint32_t nr_gaps, cap_gaps;
};

static void head_cb(void *ctx, int status, int sse)
{
	struct stream *s = ctx;

	s->res->status = status;
	s->sse = sse;
}

static void body_cb(void *ctx, const char *data, size_t len)
{
	struct stream *s = ctx;
	json_object *o = json_tokener_parse(data), *e, *m;

	(void)len;
	if (o && json_object_object_get_ex(o, "error", &e) &&
	    json_object_object_get_ex(e, "message", &m))
		snprintf(s->res->msg, sizeof(s->res->msg), "%s", json_object_get_string(m));
	else if (s->res->status != 200)
		snprintf(s->res->msg, sizeof(s->res->msg), "%.100s", data);
	json_object_put(o);
}

static int hex64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || strlen(s) != 16)
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 16);
	return *end || errno ? -1 : 0;
}

static double num_or(json_object *o, const char *k, double dflt)
{
	json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || (!json_object_is_type(x, json_type_int) &&
						     !json_object_is_type(x, json_type_double)))
		return dflt;
	return json_object_get_double(x);
}

static void summary(struct stream *s, json_object *ev, json_object *kv)
{
	struct lg_result *r = s->res;
	json_object *u, *d;
	size_t i, n;

	if (json_object_object_get_ex(ev, "usage", &u)) {
		r->prompt_tokens = (long long)num_or(u, "prompt_tokens", -1);
		r->completion_tokens = (long long)num_or(u, "completion_tokens", -1);
	}
	if (!kv)
		return;
	r->summary = 1;
	r->srv_ttft_ms = num_or(kv, "ttft_ms", -1);
	r->srv_tpot_ms = num_or(kv, "tpot_ms", -1);
	r->srv_e2e_ms = num_or(kv, "e2e_ms", -1);
	r->srv_queue_ms = num_or(kv, "queue_ms", -1);
	r->preemptions = (long long)num_or(kv, "preemptions", -1);
	r->recomputed = (long long)num_or(kv, "recomputed_tokens", -1);
	if (!json_object_object_get_ex(kv, "digests", &d) ||
	    !json_object_is_type(d, json_type_array))
		return;
	n = json_object_array_length(d);
	free(r->digests);
	r->digests = calloc(n ? n : 1, sizeof(*r->digests));
	r->nr_digests = 0;
	for (i = 0; r->digests && i < n; i++)
		if (!hex64(json_object_get_string(json_object_array_get_idx(d, i)),
			   &r->digests[r->nr_digests]))
			r->nr_digests++;
}

/* The gap since the token before, kept as it came (one float a token: bounded by the stream). */
static void gap(struct stream *s, double ms)
{
	if (s->nr_gaps == s->cap_gaps) {
		uint32_t cap = s->cap_gaps ? s->cap_gaps * 2 : 64;
		float *n = realloc(s->gaps, cap * sizeof(*n));

		if (!n)
			return;
		s->gaps = n;
		s->cap_gaps = cap;
	}
	s->gaps[s->nr_gaps++] = (float)ms;
}

static void token(struct stream *s, json_object *kv, double t)
{
	json_object *d;
	uint64_t v;

	if (!s->res->tokens)
		s->t_first = t;
	else
		gap(s, (t - s->t_last) * 1000);
	s->t_last = t;
	s->res->tokens++;
	if (!kv || !json_object_object_get_ex(kv, "digest", &d) ||
	    hex64(json_object_get_string(d), &v))
		return;
	if (s->nr_tok == s->cap_tok) {
		uint32_t cap = s->cap_tok ? s->cap_tok * 2 : 64;
		uint64_t *n = realloc(s->tok_digests, cap * sizeof(*n));

		if (!n)
			return;
		s->tok_digests = n;
		s->cap_tok = cap;
	}
	s->tok_digests[s->nr_tok++] = v;
}

static int event_cb(void *ctx, const char *data, size_t len)
{
	struct stream *s = ctx;
	double t = now_s();
	json_object *ev, *ch, *c0, *fr, *kv = NULL, *x;

	(void)len;
	if (!strcmp(data, "[DONE]")) {
		s->done = 1;
		s->t_end = t;
		return 1;
	}
	ev = json_tokener_parse(data);
	if (ev && json_object_object_get_ex(ev, "error", &x) &&
	    !json_object_object_get_ex(ev, "choices", &ch)) {
		/* the server ended the stream with an error (it is shutting down) */
		json_object *m;

		if (!s->aborted)
			snprintf(s->res->msg, sizeof(s->res->msg), "an error event: %.100s",
				 json_object_object_get_ex(x, "message", &m) ?
				 json_object_get_string(m) : data);
		s->aborted = 1;
		json_object_put(ev);
		return 0;
	}
	if (!ev || !json_object_object_get_ex(ev, "choices", &ch) ||
	    !json_object_is_type(ch, json_type_array) || !json_object_array_length(ch)) {
		if (!s->bad)
			snprintf(s->res->msg, sizeof(s->res->msg), "bad event: %.100s", data);
		s->bad = 1;
		json_object_put(ev);
		return 0;
	}
	c0 = json_object_array_get_idx(ch, 0);
	json_object_object_get_ex(ev, "kvaccel", &kv);
	if ((kv && json_object_object_get_ex(kv, "token_id", &x)) ||
	    (!kv && json_object_object_get_ex(c0, "text", &x) && json_object_get_string_len(x)))
		token(s, kv, t);
	if (json_object_object_get_ex(c0, "finish_reason", &fr) &&
	    json_object_is_type(fr, json_type_string)) {
		s->final = 1;
		s->t_end = t;
		summary(s, ev, kv);
	}
	json_object_put(ev);
	return 0;
}

/* The requests in flight: their threads are detached (a finished one frees its stack at once). */
struct flight {
	pthread_mutex_t lock;
	pthread_cond_t idle;
	size_t live;
};

struct job {
	const struct lg_req *req;
	const struct lg_run_opts *o;
	struct lg_result *res;
	size_t idx;
	double t0;
	struct flight *fl;
};

static void *one(void *arg);

static void *one_counted(void *arg)
{
	struct flight *fl = ((struct job *)arg)->fl;

	one(arg);
	pthread_mutex_lock(&fl->lock);
	if (!--fl->live)
		pthread_cond_signal(&fl->idle);
	pthread_mutex_unlock(&fl->lock);
	return NULL;
}

/* Why the request failed (see run.h); e is what the client itself said. */
static enum lg_fail outcome(const struct lg_req *q, const struct lg_result *r,
			    const struct stream *s, enum lg_http_err e)
{
	if (r->status && r->status != 200)
		return LG_FAIL_HTTP;
	if (!r->status)
		return e == LG_HTTP_PROTO ? LG_FAIL_PROTOCOL : LG_FAIL_TRANSPORT;
	if (!s->sse || s->bad || e == LG_HTTP_PROTO)
		return LG_FAIL_PROTOCOL;
	if (e || !s->final)
		return LG_FAIL_INCOMPLETE;
	if (!r->tokens || r->tokens < q->output_len)
		return LG_FAIL_SHORT;
	return LG_FAIL_NONE;
}

static void *one(void *arg)
{
	struct job *j = arg;
	struct lg_result *r = j->res;
	struct stream s = { .res = r };
	struct lg_http_cb cb = { head_cb, event_cb, body_cb, &s };
	char *body = lg_request_body(j->req, j->o, j->idx);
	char err[160];

	s.t_send = now_s();
	r->start_s = s.t_send - j->t0;
	r->late_ms = (r->start_s - j->req->arrival_s) * 1000;
	if (!body) {
		r->err = LG_HTTP_PROTO;
		r->fail = LG_FAIL_TRANSPORT;
		snprintf(r->msg, sizeof(r->msg), "out of memory");
		return NULL;
	}
	r->err = lg_http_post(&j->o->url, "/v1/completions", body, strlen(body), j->o->timeout_s,
			      &cb, err, sizeof(err));
	free(body);
	r->fail = outcome(j->req, r, &s, r->err);
	if (!s.t_end)
		s.t_end = now_s();
	r->end_s = s.t_end - j->t0;
	if (r->err) {
		snprintf(r->msg, sizeof(r->msg), "%s", err);
	} else if (r->status == 200 && !s.sse) {
		r->err = LG_HTTP_PROTO;
		snprintf(r->msg, sizeof(r->msg), "status 200 but not an event stream");
	} else if (r->status == 200 && s.bad) {
		r->err = LG_HTTP_PROTO;
	} else if (r->status == 200 && !s.final && !s.aborted) {
		r->err = LG_HTTP_PROTO;
		snprintf(r->msg, sizeof(r->msg), "the stream ended without a final event");
	}
	r->e2e_ms = (s.t_end - s.t_send) * 1000;
	if (r->tokens) {
		r->ttft_ms = (s.t_first - s.t_send) * 1000;
		r->tpot_ms = r->tokens > 1 ? (s.t_last - s.t_first) * 1000 / (r->tokens - 1) : 0;
	}
	r->ok = r->fail == LG_FAIL_NONE;
	if (r->fail == LG_FAIL_SHORT)
		snprintf(r->msg, sizeof(r->msg), "%u of %u tokens", r->tokens, j->req->output_len);
	r->gaps_ms = s.gaps;
	r->nr_gaps = s.nr_gaps;
	if (!r->digests && s.nr_tok) {
		r->digests = s.tok_digests;
		r->nr_digests = s.nr_tok;
		s.tok_digests = NULL;
	}
	free(s.tok_digests);
	return NULL;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t, .tv_nsec = (long)((t - (time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int lg_run(const struct lg_workload *wl, const struct lg_run_opts *o, struct lg_result *res,
	   double *duration_s)
{
	struct job *jobs = calloc(wl->n ? wl->n : 1, sizeof(*jobs));
	struct flight fl = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	pthread_attr_t attr;
	double t0 = now_s(), end = 0;
	pthread_t th;
	size_t i;
	int rc;

	if (!jobs)
		return -1;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < wl->n; i++) {
		struct job *j = &jobs[i];

		memset(&res[i], 0, sizeof(res[i]));
		res[i].preemptions = res[i].recomputed = -1;
		res[i].prompt_tokens = res[i].completion_tokens = -1;
		*j = (struct job){ &wl->req[i], o, &res[i], i, t0, &fl };
		sleep_until(t0 + wl->req[i].arrival_s);
		pthread_mutex_lock(&fl.lock);
		fl.live++;
		pthread_mutex_unlock(&fl.lock);
		rc = pthread_create(&th, &attr, one_counted, j);
		if (rc) {
			pthread_mutex_lock(&fl.lock);
			fl.live--;
			pthread_mutex_unlock(&fl.lock);
			res[i].err = LG_HTTP_CONNECT;
			res[i].fail = LG_FAIL_TRANSPORT;
			snprintf(res[i].msg, sizeof(res[i].msg), "no thread: %s", strerror(rc));
			res[i].start_s = res[i].end_s = now_s() - t0;
		}
	}
	pthread_mutex_lock(&fl.lock);
	while (fl.live)
		pthread_cond_wait(&fl.idle, &fl.lock);
	pthread_mutex_unlock(&fl.lock);
	for (i = 0; i < wl->n; i++)
		if (res[i].end_s > end)
			end = res[i].end_s;
	pthread_attr_destroy(&attr);
	pthread_mutex_destroy(&fl.lock);
	pthread_cond_destroy(&fl.idle);
	free(jobs);
	*duration_s = end;
	return 0;
}

void lg_results_free(struct lg_result *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(res[i].digests);
		free(res[i].gaps_ms);
	}
	free(res);
}
