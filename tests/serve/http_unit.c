// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve's HTTP server (cmocka, ASan/UBSan): the server in this
 * process on memfd tiers and an ephemeral port, driven by a tiny HTTP
 * client over plain sockets; completions against the engine alone,
 * streams against completions, every bad input's status and JSON error,
 * preemption under concurrency, a disconnect mid-stream, /metrics, 429,
 * 503 while quiescing, and SIGTERM on kvaccel-serve --listen in a child.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cli.h"
#include "http.h"
#include "http_main.h"
#include "stack.h"

struct srv {
	struct serve_model *m;
	struct serve_stack s;
	struct serve_http *h;
	uint16_t port;
};

/* The engine's prefill stops here while gated (from a worker thread). */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gated;

static bool gate(void *ctx, uint32_t id, uint32_t layer, uint32_t phase)
{
	(void)ctx; (void)id; (void)layer; (void)phase;
	pthread_mutex_lock(&gate_mu);
	while (gated)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return false;
}

static void set_gate(bool on)
{
	pthread_mutex_lock(&gate_mu);
	gated = on;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void srv_start(struct srv *v, uint32_t blocks, const struct serve_http_opts *ho)
{
	struct serve_config cfg;
	struct serve_driver_opts sched = { .preempt = ACCEL_SCHED_PREEMPT_SWAP, .yields = true };
	struct serve_stack_opts so = { .blocks = blocks, .swap_blocks = 64, .memfd = true,
				       .should_yield = gate, .sched = &sched };
	struct serve_http_opts o = ho ? *ho : (struct serve_http_opts){ 0 };
	char err[256];
	int ret;

	serve_config_default(&cfg);
	v->m = serve_model_from_seed(&cfg, 1);
	assert_non_null(v->m);
	so.model = v->m;
	ret = serve_stack_create(&v->s, &so, err, sizeof(err));
	assert_int_equal(ret, 0);
	o.driver = v->s.driver;
	o.addr = "127.0.0.1";
	o.port = 0;
	v->h = serve_http_start(&o, &ret, err, sizeof(err));
	assert_non_null(v->h);
	v->port = serve_http_port(v->h);
	assert_true(v->port > 0);
}

static void srv_stop(struct srv *v)
{
	serve_http_stop(v->h);
	serve_stack_destroy(&v->s);
	serve_model_free(v->m);
}

/* The digests of @prompt alone on a fresh engine (the CLI's path). */
static void reference_p(const char *prompt, const struct serve_params *pp, uint64_t *dig)
{
	struct serve_config cfg;
	struct serve_model *m;
	struct serve_stack s;
	struct serve_stack_opts so = { .memfd = true };
	struct serve_params p = *pp;
	struct serve_fcfs_opts fo = { 0 };
	struct serve_req_info in;
	int32_t tok[256];
	uint32_t i, n = (uint32_t)strlen(prompt), id;
	char err[256];

	serve_config_default(&cfg);
	m = serve_model_from_seed(&cfg, 1);
	so.model = m;
	assert_int_equal(serve_stack_create(&s, &so, err, sizeof(err)), 0);
	for (i = 0; i < n; i++)
		tok[i] = (unsigned char)prompt[i];
	assert_int_equal(serve_engine_add(s.engine, tok, n, &p, &id), 0);
	assert_int_equal(serve_run_all(s.engine, &fo, NULL), 0);
	assert_int_equal(serve_engine_info(s.engine, id, &in), 0);
	memcpy(dig, in.digests, p.max_tokens * sizeof(*dig));
	serve_stack_destroy(&s);
	serve_model_free(m);
}

static void reference(const char *prompt, uint32_t max_tokens, uint64_t *dig)
{
	struct serve_params p = { .max_tokens = max_tokens };

	reference_p(prompt, &p, dig);
}

static int dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_req(int fd, const char *ver, const char *method, const char *path,
		     const char *body)
{
	char head[512];
	size_t bl = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head), "%s %s %s\r\nHost: x\r\n%sContent-Length: %zu\r\n"
			 "Content-Type: application/json\r\n\r\n", method, path, ver,
			 strcmp(ver, "HTTP/1.0") ? "" : "Connection: close\r\n", bl);

	assert_int_equal(write(fd, head, (size_t)n), n);
	if (bl)
		assert_int_equal(write(fd, body, bl), (ssize_t)bl);
}

struct resp {
	int status;
	char *head, *body;	/* body: NUL-terminated */
	size_t len;
};

/* Read to EOF (HTTP/1.0: the server closes). */
static void read_all(int fd, struct resp *r)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *sep;
	ssize_t n;

	assert_non_null(buf);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &r->status), 1);
	sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	*sep = 0;
	r->head = buf;
	r->body = sep + 4;
	r->len = len - (size_t)(r->body - buf);
}

static struct resp request(uint16_t port, const char *method, const char *path,
			   const char *body)
{
	struct resp r = { 0 };
	int fd = dial(port);

	send_req(fd, "HTTP/1.0", method, path, body);
	read_all(fd, &r);
	close(fd);
	return r;
}

/* An error answer: @status and {"error": {"message", "type", "code"}}. */
static void expect_error(struct resp *r, int status, const char *type)
{
	struct json_object *o = json_tokener_parse(r->body), *e, *v;

	if (r->status != status)
		fail_msg("status %d, not %d: %s", r->status, status, r->body);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_true(json_object_object_get_ex(e, "message", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_true(json_object_object_get_ex(e, "type", &v));
	assert_string_equal(json_object_get_string(v), type);
	assert_true(json_object_object_get_ex(e, "code", &v));
	assert_int_equal(json_object_get_int(v), status);
	assert_non_null(strstr(r->head, "application/json"));
	json_object_put(o);
	free(r->head);
}

/* The kvaccel digests of a completion object into @dig (count returned). */
static uint32_t digests(struct json_object *o, uint64_t *dig, uint32_t cap)
{
	struct json_object *k, *d;
	uint32_t i, n;

	assert_true(json_object_object_get_ex(o, "kvaccel", &k));
	assert_true(json_object_object_get_ex(k, "digests", &d));
	n = (uint32_t)json_object_array_length(d);
	assert_true(n <= cap);
	for (i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(d, i));

		assert_int_equal(strlen(s), 16);
		dig[i] = strtoull(s, NULL, 16);
	}
	return n;
}

static uint32_t complete(uint16_t port, const char *prompt, uint32_t max_tokens, uint64_t *dig,
			 uint32_t *preempt)
{
	char body[512];
	struct resp r;
	struct json_object *o, *u, *v, *k;
	uint32_t n;

	snprintf(body, sizeof(body), "{\"prompt\": \"%s\", \"max_tokens\": %u, \"x-unknown\": 1}",
		 prompt, max_tokens);
	r = request(port, "POST", "/v1/completions", body);
	if (r.status != 200)
		fail_msg("status %d: %s", r.status, r.body);
	o = json_tokener_parse(r.body);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "object", &v));
	assert_string_equal(json_object_get_string(v), "text_completion");
	assert_true(json_object_object_get_ex(o, "usage", &u));
	assert_true(json_object_object_get_ex(u, "completion_tokens", &v));
	assert_int_equal(json_object_get_int(v), max_tokens);
	assert_true(json_object_object_get_ex(u, "prompt_tokens", &v));
	assert_int_equal(json_object_get_int(v), strlen(prompt));
	n = digests(o, dig, 256);
	assert_true(json_object_object_get_ex(o, "kvaccel", &k));
	assert_true(json_object_object_get_ex(k, "preemptions", &v));
	if (preempt)
		*preempt = (uint32_t)json_object_get_int(v);
	{
		/* The scheduler's accounting: preemptions are its swaps and recomputes. */
		struct json_object *sw, *rc, *bytes, *tax;
		int32_t pre = json_object_get_int(v);

		assert_true(json_object_object_get_ex(k, "swaps", &sw));
		assert_true(json_object_object_get_ex(k, "recomputes", &rc));
		assert_true(json_object_object_get_ex(k, "swapped_bytes", &bytes));
		assert_true(json_object_object_get_ex(k, "recomputed_tokens", &tax));
		assert_int_equal(json_object_get_int(sw) + json_object_get_int(rc), pre);
		if (json_object_get_int(sw))
			assert_true(json_object_get_int64(bytes) > 0);
		if (!json_object_get_int(rc))
			assert_int_equal(json_object_get_int64(tax), 0);
	}
	json_object_put(o);
	free(r.head);
	return n;
}

static void test_completion(void **state)
{
	uint64_t ref[8], got[256];
	struct srv v;
	struct resp r;

	(void)state;
	reference("hello", 8, ref);
	srv_start(&v, 64, NULL);
	assert_int_equal(complete(v.port, "hello", 8, got, NULL), 8);
	assert_memory_equal(ref, got, sizeof(ref));
	r = request(v.port, "GET", "/health", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\": \"ok\"}");
	free(r.head);
	/* Sampled: the seed and temperature reach the engine; a list prompt is the same. */
	{
		struct serve_params p = { .max_tokens = 8, .temperature = 0.8f, .seed = 7 };
		struct json_object *o;

		reference_p("hello", &p, ref);
		r = request(v.port, "POST", "/v1/completions", "{\"prompt\": [104, 101, 108, 108, "
			    "111], \"max_tokens\": 8, \"temperature\": 0.8, \"seed\": 7, "
			    "\"priority\": 3, \"ttft_slo_ms\": 50, \"tpot_slo_ms\": 5.5, "
			    "\"client\": \"t\", \"class\": \"offline\"}");
		assert_int_equal(r.status, 200);
		o = json_tokener_parse(r.body);
		assert_non_null(o);
		assert_int_equal(digests(o, got, 256), 8);
		assert_memory_equal(ref, got, sizeof(ref));
		json_object_put(o);
		free(r.head);
	}
	srv_stop(&v);
}

/* A stream's events: one per token, then the summary, then [DONE]. */
static void test_stream(void **state)
{
	uint64_t ref[256], dig[256], sum[256];
	struct srv v;
	struct resp r;
	char *p, *e;
	uint32_t n = 0, ns = 0, i;
	bool done = false;

	(void)state;
	srv_start(&v, 64, NULL);
	assert_int_equal(complete(v.port, "stream me", 12, ref, NULL), 12);
	r = request(v.port, "POST", "/v1/completions",
		    "{\"prompt\": \"stream me\", \"max_tokens\": 12, \"stream\": true}");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/event-stream"));
	for (p = r.body; *p; p = e + 2) {
		struct json_object *o, *c, *f, *k, *d;

		assert_false(done);
		assert_memory_equal(p, "data: ", 6);
		e = strstr(p, "\n\n");
		assert_non_null(e);
		*e = 0;
		if (!strcmp(p + 6, "[DONE]")) {
			done = true;
			continue;
		}
		o = json_tokener_parse(p + 6);
		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "choices", &c));
		f = json_object_object_get(json_object_array_get_idx(c, 0), "finish_reason");
		if (!f) {
			assert_true(json_object_object_get_ex(o, "kvaccel", &k));
			assert_true(json_object_object_get_ex(k, "digest", &d));
			dig[n++] = strtoull(json_object_get_string(d), NULL, 16);
		} else {
			assert_string_equal(json_object_get_string(f), "length");
			ns = digests(o, sum, 256);
		}
		json_object_put(o);
	}
	assert_true(done);
	assert_int_equal(n, 12);
	assert_int_equal(ns, 12);
	for (i = 0; i < n; i++) {
		assert_true(dig[i] == ref[i]);
		assert_true(sum[i] == ref[i]);
	}
	free(r.head);
	srv_stop(&v);
}

static void test_bad_input(void **state)
{
	static const char *const bad[] = {
		"", "{", "[1, 2]", "{\"prompt\": 5}", "{\"prompt\": \"\"}", "{\"prompt\": []}",
		"{\"max_tokens\": 3}", "{\"prompt\": [1, 256]}", "{\"prompt\": [1, -1]}",
		"{\"prompt\": [1, \"a\"]}", "{\"prompt\": \"a\", \"max_tokens\": 0}",
		"{\"prompt\": \"a\", \"max_tokens\": 65}", "{\"prompt\": \"a\", \"max_tokens\": 1.5}",
		"{\"prompt\": \"a\", \"stream\": \"yes\"}", "{\"prompt\": \"a\", \"seed\": -1}",
		"{\"prompt\": \"a\", \"temperature\": -1}",
		"{\"prompt\": \"a\", \"temperature\": \"hot\"}",
		"{\"prompt\": \"a\", \"priority\": 1.5}", "{\"prompt\": \"a\", \"ttft_slo_ms\": \"x\"}",
		"{\"prompt\": \"a\", \"tpot_slo_ms\": -2}", "{\"prompt\": \"a\", \"client\": 3}",
		"{\"prompt\": \"a\", \"class\": \"batch\"}", "{\"prompt\": \"a\"} x",
	};
	struct serve_http_opts o = { .max_body = 4096, .max_prompt = 100, .max_tokens = 64 };
	char big[5000], longp[300];
	struct srv v;
	struct resp r;
	size_t i;

	(void)state;
	srv_start(&v, 64, &o);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		r = request(v.port, "POST", "/v1/completions", bad[i]);
		print_message("# %s -> %d %s\n", bad[i], r.status, r.body);
		expect_error(&r, 400, "invalid_request_error");
	}
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "{\"prompt\": \"a\"}", 15);
	r = request(v.port, "POST", "/v1/completions", big);
	expect_error(&r, 413, "invalid_request_error");
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "{\"prompt\": \"", 12);
	memcpy(longp + 200, "\"}", 3);
	r = request(v.port, "POST", "/v1/completions", longp);
	expect_error(&r, 413, "invalid_request_error");
	r = request(v.port, "GET", "/v2/nothing", NULL);
	expect_error(&r, 404, "invalid_request_error");
	r = request(v.port, "GET", "/v1/completions", NULL);
	expect_error(&r, 405, "invalid_request_error");
	r = request(v.port, "POST", "/health", "{}");
	expect_error(&r, 405, "invalid_request_error");
	/* Still serving. */
	r = request(v.port, "GET", "/health", NULL);
	assert_int_equal(r.status, 200);
	free(r.head);
	srv_stop(&v);
}

struct client {
	pthread_t t;
	uint16_t port;
	char prompt[64];
	uint64_t dig[256];
	uint32_t n, preempt;
};

static void *client_main(void *arg)
{
	struct client *c = arg;

	c->n = complete(c->port, c->prompt, 40, c->dig, &c->preempt);
	return NULL;
}

/* More requests than the compute tier holds: preempted, digests as alone. */
static void test_concurrent(void **state)
{
	struct client c[6];
	uint64_t ref[40];
	uint32_t i, pre = 0;
	struct srv v;

	(void)state;
	srv_start(&v, 8, NULL);
	set_gate(true);		/* the first prefill waits until all six are queued */
	for (i = 0; i < 6; i++) {
		c[i].port = v.port;
		snprintf(c[i].prompt, sizeof(c[i].prompt), "request number %u of the six", i);
		assert_int_equal(pthread_create(&c[i].t, NULL, client_main, &c[i]), 0);
	}
	usleep(300000);
	set_gate(false);
	for (i = 0; i < 6; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].n, 40);
		pre += c[i].preempt;
	}
	print_message("# 6 requests of 4 blocks on 8 blocks: %u preemptions\n", pre);
	assert_true(pre > 0);
	srv_stop(&v);
	for (i = 0; i < 6; i++) {
		reference(c[i].prompt, 40, ref);
		assert_memory_equal(ref, c[i].dig, sizeof(ref));
	}
}

static long metric(uint16_t port, const char *line)
{
	struct resp r = request(port, "GET", "/metrics", NULL);
	char *p;
	long v = -1;

	assert_int_equal(r.status, 200);
	for (p = strstr(r.body, line); p; p = strstr(p + 1, line))
		if (p == r.body || p[-1] == '\n') {
			v = strtol(p + strlen(line), NULL, 10);
			break;
		}
	free(r.head);
	return v;
}

/* A client that goes away mid-stream cancels its request: its blocks come back. */
static void test_disconnect(void **state)
{
	struct serve_http_opts o = { .max_tokens = 1000 };
	char buf[512];
	struct srv v;
	int fd, i;

	(void)state;
	srv_start(&v, 64, &o);
	fd = dial(v.port);
	send_req(fd, "HTTP/1.0", "POST", "/v1/completions",
		 "{\"prompt\": \"x\", \"max_tokens\": 1000, \"stream\": true}");
	assert_true(read(fd, buf, sizeof(buf)) > 0);
	close(fd);
	for (i = 0; i < 200 && metric(v.port, "kvaccel_serve_cancelled_total ") != 1; i++)
		usleep(10000);
	assert_int_equal(metric(v.port, "kvaccel_serve_cancelled_total "), 1);
	assert_int_equal(metric(v.port, "kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"} "),
			 0);
	assert_int_equal(metric(v.port, "kvaccel_serve_generated_tokens_total "), 0);
	assert_int_equal(metric(v.port, "kvaccel_serve_requests_running "), 0);
	srv_stop(&v);
}

/* A client gone before its (non-stream) answer: cancelled, nothing generated. */
static void test_disconnect_waiting(void **state)
{
	struct srv v;
	int fd, i;

	(void)state;
	srv_start(&v, 64, NULL);
	set_gate(true);
	fd = dial(v.port);
	send_req(fd, "HTTP/1.0", "POST", "/v1/completions", "{\"prompt\": \"gone\"}");
	usleep(100000);
	close(fd);
	usleep(400000);		/* the HTTP thread sees it within 200 ms */
	set_gate(false);
	for (i = 0; i < 200 && metric(v.port, "kvaccel_serve_cancelled_total ") != 1; i++)
		usleep(10000);
	assert_int_equal(metric(v.port, "kvaccel_serve_cancelled_total "), 1);
	assert_int_equal(metric(v.port, "kvaccel_serve_generated_tokens_total "), 0);
	assert_int_equal(metric(v.port, "kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"} "),
			 0);
	srv_stop(&v);
}

struct streamer {
	pthread_t t;
	uint16_t port;
	struct resp r;
};

static void *streamer_main(void *arg)
{
	struct streamer *s = arg;

	s->r = request(s->port, "POST", "/v1/completions",
		       "{\"prompt\": \"long\", \"max_tokens\": 1000, \"stream\": true}");
	return NULL;
}

static void *ungate_later(void *arg)
{
	(void)arg;
	usleep(200000);
	set_gate(false);
	return NULL;
}

/* Stopping under a stream: it ends with a 503 error event, then [DONE]. */
static void test_stop_under_stream(void **state)
{
	struct serve_http_opts o = { .max_tokens = 1000 };
	struct streamer s;
	pthread_t ug;
	struct srv v;

	(void)state;
	srv_start(&v, 64, &o);
	set_gate(true);
	s.port = v.port;
	assert_int_equal(pthread_create(&s.t, NULL, streamer_main, &s), 0);
	usleep(200000);
	assert_int_equal(pthread_create(&ug, NULL, ungate_later, NULL), 0);
	srv_stop(&v);
	pthread_join(ug, NULL);
	pthread_join(s.t, NULL);
	assert_int_equal(s.r.status, 200);
	assert_non_null(strstr(s.r.body, "\"code\": 503"));
	assert_non_null(strstr(s.r.body, "data: [DONE]\n\n"));
	assert_null(strstr(s.r.body, "\"finish_reason\": \"length\""));
	free(s.r.head);
}

static void *bg_complete(void *arg)
{
	struct client *c = arg;

	c->n = complete(c->port, c->prompt, 4, c->dig, NULL);
	return NULL;
}

/* More in flight than --max-concurrent: 429; quiescing: 503 on an open connection. */
static void test_limits(void **state)
{
	struct serve_http_opts o = { .max_concurrent = 2 };
	struct client c[2];
	struct srv v;
	struct resp r = { 0 };
	int i, fd;

	(void)state;
	srv_start(&v, 64, &o);
	assert_true(metric(v.port, "kvaccel_serve_steps_total ") == 0);
	set_gate(true);
	for (i = 0; i < 2; i++) {
		c[i].port = v.port;
		snprintf(c[i].prompt, sizeof(c[i].prompt), "held %d", i);
		assert_int_equal(pthread_create(&c[i].t, NULL, bg_complete, &c[i]), 0);
	}
	for (i = 0; i < 500 && metric(v.port, "kvaccel_serve_requests_running ") +
	     metric(v.port, "kvaccel_serve_requests_waiting ") < 1; i++)
		usleep(10000);
	usleep(100000);
	r = request(v.port, "POST", "/v1/completions", "{\"prompt\": \"third\"}");
	expect_error(&r, 429, "overloaded");
	set_gate(false);
	for (i = 0; i < 2; i++) {
		pthread_join(c[i].t, NULL);
		assert_int_equal(c[i].n, 4);
	}
	/* A request whose head came before quiescing, its body after: 503. */
	fd = dial(v.port);
	{
		static const char head[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
			"Content-Length: 18\r\nContent-Type: application/json\r\n\r\n";
		char buf[8192];
		ssize_t n, len = 0;

		assert_int_equal(write(fd, head, sizeof(head) - 1), sizeof(head) - 1);
		usleep(100000);
		serve_http_quiesce(v.h);
		assert_int_equal(write(fd, "{\"prompt\": \"late\"}", 18), 18);
		while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0) {
			len += n;
			if (strstr(buf, "}}"))
				break;
		}
		buf[len] = 0;
		print_message("# %s\n", buf);
		assert_non_null(strstr(buf, "HTTP/1.1 503"));
		assert_non_null(strstr(buf, "\"code\": 503"));
	}
	close(fd);
	srv_stop(&v);
}

/* /metrics: Prometheus text, every sample line "name{labels} value". */
static void test_metrics(void **state)
{
	uint64_t dig[256];
	struct srv v;
	struct resp r;
	char *line, *save = NULL;
	int samples = 0;

	(void)state;
	srv_start(&v, 64, NULL);
	complete(v.port, "metrics", 5, dig, NULL);
	r = request(v.port, "GET", "/nope", NULL);
	free(r.head);
	assert_int_equal(metric(v.port, "kvaccel_serve_requests_total{status=\"200\"} "), 1);
	assert_int_equal(metric(v.port, "kvaccel_serve_requests_total{status=\"404\"} "), 1);
	assert_int_equal(metric(v.port, "kvaccel_serve_generated_tokens_total "), 5);
	assert_int_equal(metric(v.port, "kvaccel_serve_prompt_tokens_total "), 7);
	assert_int_equal(metric(v.port, "kvaccel_serve_ttft_ms_count "), 1);
	assert_int_equal(metric(v.port, "kvaccel_serve_kv_blocks{tier=\"compute\",state=\"free\"} "),
			 64);
	assert_true(metric(v.port, "kvaccel_serve_steps_total ") >= 5);
	r = request(v.port, "GET", "/metrics", NULL);
	assert_non_null(strstr(r.head, "text/plain"));
	for (line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], *sp, *end;
		double x;

		if (line[0] == '#') {
			assert_true(!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7));
			continue;
		}
		sp = strrchr(line, ' ');
		assert_non_null(sp);
		x = strtod(sp + 1, &end);
		assert_true(end > sp + 1 && !*end && x >= 0);
		assert_int_equal(sscanf(line, "%127[a-z_]", name), 1);
		assert_int_equal(strncmp(name, "kvaccel_serve_", 14), 0);
		assert_true(line[strlen(name)] == ' ' || line[strlen(name)] == '{');
		samples++;
	}
	assert_true(samples > 30);
	free(r.head);
	srv_stop(&v);
}

/* kvaccel-serve --listen in a child: SIGTERM ends it with 0 (and no leak: LSan). */
static void test_sigterm(void **state)
{
	char *argv[] = { "kvaccel-serve", "--memfd", "--listen", "127.0.0.1:0", NULL };
	uint64_t dig[256];
	char line[128];
	int pfd[2], st;
	unsigned int port;
	FILE *f;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct serve_cli c;
		struct serve_model *m;
		int ret;

		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		if (serve_cli_parse(&c, 4, argv))
			exit(3);
		m = serve_model_from_seed(&c.cfg, c.seed);
		ret = serve_http_main(&c, m);
		serve_model_free(m);
		exit(ret);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	assert_non_null(fgets(line, sizeof(line), f));
	assert_int_equal(sscanf(line, "kvaccel-serve: listening on http://127.0.0.1:%u", &port), 1);
	assert_int_equal(complete((uint16_t)port, "hello", 8, dig, NULL), 8);
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	fclose(f);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_disconnect),
		cmocka_unit_test(test_disconnect_waiting),
		cmocka_unit_test(test_stop_under_stream),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_metrics),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
