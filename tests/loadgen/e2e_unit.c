// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen against a fake server that speaks the API contract (fake_server.c): with set
 * delays, the measured TTFT, TPOT and end-to-end latency are the delays within a tolerance;
 * requests start at their arrival times however slow the server is (open loop); HTTP errors are
 * counted per status in the report; a refused connection, a cut stream, a stalled stream (the
 * timeout), an event that is not JSON and a 200 that is not a stream are reported; the
 * server's summary gives the preemptions and the recompute tax; digests are recorded, then
 * compared (equal, then a changed one caught); failures are counted by cause per class (a 500,
 * a cut stream, a short one, one ended by an error event) and none of them counts as meeting
 * its SLO however fast it was; one token held back 300 ms shows in the pooled inter-token
 * latency's p99 and max as computed by hand, and in the TPOT of its request only; with
 * --server-metrics, the fake server's counters (a page of over 64 KiB, chunked or to the close)
 * give their exact deltas, gauges, recompute tax and swap rate in --json and the table, and a
 * /metrics that answers 404 or a server that refuses the connection gives "server": null and
 * no section, the run itself untouched.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fake_server.h"
#include "run.h"
#include "server.h"
#include "stats.h"

/* The machine is shared: a request may be scheduled late by this much. */
#define SLACK_MS 60

static void workload(struct lg_workload *wl, size_t n, double gap_s, uint32_t out,
		     const char *const *clients)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct lg_req *r = lg_workload_push(wl);

		r->arrival_s = i * gap_s;
		r->input_len = 16 + i;
		r->output_len = out;
		r->priority = i % 2;
		r->ttft_slo_ms = 1000;
		r->tpot_slo_ms = 1000;
		if (clients && clients[i])
			strcpy(r->client, clients[i]);
	}
}

static void opts_for(struct lg_run_opts *o, int port)
{
	char url[64];

	memset(o, 0, sizeof(*o));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	assert_int_equal(lg_url_parse(url, &o->url), 0);
	o->timeout_s = 10;
	o->seed = 7;
}

static struct lg_result *run(const struct lg_workload *wl, int port, double *dur)
{
	struct lg_result *res = calloc(wl->n, sizeof(*res));
	struct lg_run_opts o;

	assert_non_null(res);
	opts_for(&o, port);
	assert_int_equal(lg_run(wl, &o, res, dur), 0);
	return res;
}

static void near(double v, double want, double slack)
{
	if (v < want - 5 || v > want + slack) {
		fprintf(stderr, "# %.1f not in [%.1f, %.1f]\n", v, want - 5, want + slack);
		fail();
	}
}

static void timing(int close_delimited)
{
	struct fake_opts fo = { .ttft_ms = 120, .tpot_ms = 40, .close_delimited = close_delimited };
	struct lg_workload wl = { 0 };
	struct fake_server *s;
	struct lg_result *res;
	struct lg_summary sum;
	double dur;
	int port, good;
	size_t i;

	s = fake_start(&fo, &port);
	assert_non_null(s);
	workload(&wl, 4, 0.05, 6, NULL);
	res = run(&wl, port, &dur);
	assert_int_equal(fake_requests(s, &good), 4);
	assert_int_equal(good, 4);
	for (i = 0; i < wl.n; i++) {
		assert_int_equal(res[i].err, LG_HTTP_OK);
		assert_int_equal(res[i].status, 200);
		assert_true(res[i].ok);
		assert_int_equal(res[i].tokens, 6);
		near(res[i].ttft_ms, 120, SLACK_MS);
		near(res[i].tpot_ms, 40, SLACK_MS / 3);
		near(res[i].e2e_ms, 120 + 5 * 40, SLACK_MS * 2);
		assert_true(res[i].late_ms < SLACK_MS);
		assert_true(res[i].summary);
		assert_int_equal(res[i].preemptions, (long long)(i % 2));
		assert_int_equal(res[i].nr_digests, 6);
		assert_int_equal(res[i].completion_tokens, 6);
	}
	lg_summarize(&wl, res, NULL, dur, &sum);
	assert_int_equal(sum.completed, 4);
	assert_int_equal(sum.met, 4);
	assert_int_equal(sum.preemptions, 2);
	assert_int_equal(sum.preempted, 2);
	assert_int_equal(sum.recomputed, 4);
	assert_int_equal(sum.tax_tokens, 4 * 16);
	near(sum.ttft[0], 120, SLACK_MS);
	near(dur * 1000, 150 + 120 + 5 * 40, SLACK_MS * 3);
	/* a tighter TTFT SLO than the server's 120 ms is missed by all */
	for (i = 0; i < wl.n; i++)
		wl.req[i].ttft_slo_ms = 100;
	lg_summarize(&wl, res, NULL, dur, &sum);
	assert_int_equal(sum.met, 0);
	assert_true(sum.goodput == 0);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

static void timing_chunked(void **state)
{
	(void)state;
	timing(0);
}

static void timing_to_close(void **state)
{
	(void)state;
	timing(1);
}

/* A server that takes 400 ms per first token: the requests still start 50 ms apart. */
static void open_loop(void **state)
{
	struct fake_opts fo = { .ttft_ms = 400, .tpot_ms = 5 };
	struct lg_workload wl = { 0 };
	struct fake_server *s;
	struct lg_result *res;
	int port, good;
	double dur;
	size_t i;

	(void)state;
	s = fake_start(&fo, &port);
	workload(&wl, 6, 0.05, 2, NULL);
	res = run(&wl, port, &dur);
	for (i = 0; i < wl.n; i++) {
		assert_true(res[i].ok);
		near(res[i].start_s * 1000, i * 50, SLACK_MS);
	}
	near(dur * 1000, 250 + 405, SLACK_MS * 3);
	assert_int_equal(fake_requests(s, &good), 6);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

static json_object *report_json_srv(const struct lg_workload *wl, const struct lg_result *res,
				    double dur, const struct lg_server *srv)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_object *o;

	lg_report_json(f, wl, res, dur, NULL, srv);
	fclose(f);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	free(buf);
	return o;
}

static json_object *report_json(const struct lg_workload *wl, const struct lg_result *res,
				double dur)
{
	return report_json_srv(wl, res, dur, NULL);
}

static int64_t path_int(json_object *o, const char *a, const char *b)
{
	json_object *x, *y;

	if (!json_object_object_get_ex(o, a, &x) || !json_object_object_get_ex(x, b, &y))
		return -1;
	return json_object_get_int64(y);
}

static double path_num(json_object *o, const char *a, const char *b, const char *c)
{
	json_object *x, *y, *z;

	if (!json_object_object_get_ex(o, a, &x) || !json_object_object_get_ex(x, b, &y))
		return NAN;
	if (c && !json_object_object_get_ex(y, c, &z))
		return NAN;
	if (!c)
		z = y;
	return z ? json_object_get_double(z) : NAN;	/* null: none */
}

/* v in [lo, hi] */
static void within(double v, double lo, double hi)
{
	if (!(v >= lo && v <= hi)) {
		fprintf(stderr, "# %.3f not in [%.3f, %.3f]\n", v, lo, hi);
		fail();
	}
}

static void http_errors(void **state)
{
	static const char *const clients[] = { "e429", "ok", "e429", "e503", "e400", "cut", NULL };
	struct fake_opts fo = { .ttft_ms = 10, .tpot_ms = 10 };
	struct lg_workload wl = { 0 };
	struct fake_server *s;
	struct lg_result *res;
	json_object *o;
	double dur;
	int port;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	s = fake_start(&fo, &port);
	workload(&wl, 6, 0.01, 4, clients);
	res = run(&wl, port, &dur);
	assert_int_equal(res[0].status, 429);
	assert_string_equal(res[0].msg, "fake 429");
	assert_false(res[0].ok);
	assert_true(res[1].ok);
	assert_int_equal(res[3].status, 503);
	assert_int_equal(res[4].status, 400);
	assert_int_equal(res[5].status, 200);
	assert_int_equal(res[5].err, LG_HTTP_CLOSED);	/* no last chunk */
	assert_int_equal(res[5].tokens, 2);
	assert_false(res[5].ok);
	o = report_json(&wl, res, dur);
	assert_int_equal(path_int(o, "http_errors", "429"), 2);
	assert_int_equal(path_int(o, "http_errors", "503"), 1);
	assert_int_equal(path_int(o, "http_errors", "400"), 1);
	assert_int_equal(path_int(o, "transport_errors", "closed"), 1);
	assert_int_equal(path_int(o, "overall", "completed"), 1);
	assert_int_equal(path_int(o, "overall", "failed"), 5);
	assert_int_equal(path_int(o, "overall", "slo_met"), 1);
	json_object_put(o);
	f = open_memstream(&buf, &len);
	lg_report_table(f, &wl, res, dur, NULL, NULL);
	fclose(f);
	assert_non_null(strstr(buf, "HTTP 429: 2 requests (fake 429)"));
	assert_non_null(strstr(buf, "HTTP 503: 1 requests (fake 503)"));
	assert_non_null(strstr(buf, "closed errors: 1 requests (the connection closed in the body)"));
	free(buf);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

/*
 * Seven requests of two classes, each fast enough for its SLO (1 s): two whole streams, a 500,
 * a 429, a stream cut after two tokens, one ended properly after two of six, one ended by an
 * error event. Only the two whole ones complete and meet their SLO; the others are counted by
 * cause, in the class they belong to; their gaps between tokens still count in the ITL.
 */
static void failures(int close_delimited)
{
	static const char *const clients[] = { "ok", "e500", "cut", "short", "abort", "ok",
					       "e429", NULL };
	static const char *const cls[] = { "online", "online", "online", "offline", "offline",
					   "offline", "offline" };
	static const enum lg_fail want[] = { LG_FAIL_NONE, LG_FAIL_HTTP, LG_FAIL_INCOMPLETE,
					     LG_FAIL_SHORT, LG_FAIL_INCOMPLETE, LG_FAIL_NONE,
					     LG_FAIL_HTTP };
	struct fake_opts fo = { .ttft_ms = 10, .tpot_ms = 10, .close_delimited = close_delimited };
	struct lg_workload wl = { 0 };
	struct lg_summary sum;
	struct fake_server *s;
	struct lg_result *res;
	json_object *o, *c;
	char *buf = NULL;
	size_t len = 0, i;
	double dur;
	int port;
	FILE *f;

	s = fake_start(&fo, &port);
	assert_non_null(s);
	workload(&wl, 7, 0.01, 6, clients);
	for (i = 0; i < wl.n; i++)
		strcpy(wl.req[i].cls, cls[i]);
	res = run(&wl, port, &dur);
	for (i = 0; i < wl.n; i++) {
		if (res[i].fail != want[i])
			fprintf(stderr, "# request %zu: %s, not %s (%s)\n", i,
				lg_fail_names[res[i].fail], lg_fail_names[want[i]], res[i].msg);
		assert_int_equal(res[i].fail, want[i]);
		assert_int_equal(res[i].ok, want[i] == LG_FAIL_NONE);
		if (res[i].tokens)
			assert_true(res[i].ttft_ms < 1000 && res[i].tpot_ms < 1000);
	}
	assert_int_equal(res[1].status, 500);
	assert_int_equal(res[2].tokens, 2);
	assert_int_equal(res[3].tokens, 2);
	assert_string_equal(res[3].msg, "2 of 6 tokens");
	assert_int_equal(res[4].tokens, 2);
	assert_int_equal(res[4].status, 200);
	assert_string_equal(res[4].msg, "an error event: fake abort");
	/* fast enough, but failed: no SLO met */
	for (i = 1; i < 5; i++)
		assert_false(lg_meets_slo(&wl.req[i], &res[i]));

	o = report_json(&wl, res, dur);
	assert_int_equal(path_int(o, "overall", "requests"), 7);
	assert_int_equal(path_int(o, "overall", "completed"), 2);
	assert_int_equal(path_int(o, "overall", "failed"), 5);
	assert_int_equal(path_int(o, "overall", "slo_met"), 2);
	within(path_num(o, "overall", "slo_attainment", NULL), 2.0 / 7 - 1e-9, 2.0 / 7 + 1e-9);
	within(path_num(o, "overall", "goodput_rps", NULL) * dur, 2 - 1e-9, 2 + 1e-9);
	assert_int_equal(path_num(o, "overall", "failures", "http_error"), 2);
	assert_int_equal(path_num(o, "overall", "failures", "transport"), 0);
	assert_int_equal(path_num(o, "overall", "failures", "protocol"), 0);
	assert_int_equal(path_num(o, "overall", "failures", "incomplete"), 2);
	assert_int_equal(path_num(o, "overall", "failures", "short"), 1);
	/* 5 gaps in each whole stream, 1 in each of the three with two tokens */
	assert_int_equal(path_int(o, "overall", "itl_gaps"), 13);
	assert_true(json_object_object_get_ex(o, "classes", &c));
	assert_int_equal(path_int(c, "online", "failed"), 2);
	assert_int_equal(path_num(c, "online", "failures", "http_error"), 1);
	assert_int_equal(path_num(c, "online", "failures", "incomplete"), 1);
	assert_int_equal(path_num(c, "online", "failures", "short"), 0);
	assert_int_equal(path_int(c, "online", "slo_met"), 1);
	assert_int_equal(path_int(c, "online", "itl_gaps"), 6);
	assert_int_equal(path_int(c, "offline", "failed"), 3);
	assert_int_equal(path_num(c, "offline", "failures", "http_error"), 1);
	assert_int_equal(path_num(c, "offline", "failures", "incomplete"), 1);
	assert_int_equal(path_num(c, "offline", "failures", "short"), 1);
	assert_int_equal(path_int(c, "offline", "slo_met"), 1);
	assert_int_equal(path_int(c, "offline", "itl_gaps"), 7);
	json_object_put(o);
	lg_summarize(&wl, res, "offline", dur, &sum);
	assert_int_equal(sum.fail[LG_FAIL_SHORT], 1);
	assert_int_equal(sum.met, 1);

	f = open_memstream(&buf, &len);
	lg_report_table(f, &wl, res, dur, NULL, NULL);
	fclose(f);
	assert_non_null(strstr(buf, "\nfailures   failed http_error transport protocol incomplete"
				    "  short\n"));
	assert_non_null(strstr(buf, "\nonline          2          1         0        0          1"
				    "      0\n"));
	assert_non_null(strstr(buf, "\noffline         3          1         0        0          1"
				    "      1\n"));
	assert_non_null(strstr(buf, "\nall             5          2         0        0          2"
				    "      1\n"));
	assert_non_null(strstr(buf, " itl p50     p90     p99      max "));
	assert_non_null(strstr(buf, "HTTP 500: 1 requests (fake 500)"));
	free(buf);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

static void failures_chunked(void **state)
{
	(void)state;
	failures(0);
}

static void failures_to_close(void **state)
{
	(void)state;
	failures(1);
}

/*
 * Four streams of 11 tokens 10 ms apart but for token 5 of one, 300 ms after token 4: 40 gaps,
 * 39 of 10 ms and one of 300. Pooled, sorted, p99 is at rank 0.99 * 39 = 38.61, between the
 * largest 10 and the 300: 10 + 0.61 * 290 = 186.9 ms; the max 300. TPOT, over the requests'
 * means (10, 10, (300 + 9 * 10) / 10 = 39, 10), has p99 10 + 0.97 * 29 = 38.13 and p50 10.
 */
static void itl_pooled(void **state)
{
	static const char *const clients[] = { "ok", "ok", "slow", "ok", NULL };
	struct fake_opts fo = { .ttft_ms = 20, .tpot_ms = 10, .slow_token = 5, .slow_ms = 300 };
	struct lg_workload wl = { 0 };
	struct fake_server *s;
	struct lg_result *res;
	struct lg_summary sum;
	json_object *o;
	double dur, mean;
	size_t i;
	uint32_t k;
	int port;

	(void)state;
	s = fake_start(&fo, &port);
	assert_non_null(s);
	workload(&wl, 4, 0.01, 11, clients);
	res = run(&wl, port, &dur);
	for (i = 0; i < wl.n; i++) {
		assert_true(res[i].ok);
		assert_int_equal(res[i].nr_gaps, 10);
		/* the gaps are the stream's: their mean is its TPOT */
		for (mean = 0, k = 0; k < res[i].nr_gaps; k++)
			mean += res[i].gaps_ms[k] / res[i].nr_gaps;
		within(mean, res[i].tpot_ms - 0.01, res[i].tpot_ms + 0.01);
	}
	within(res[2].gaps_ms[4], 300 - 20, 300 + SLACK_MS);
	lg_summarize(&wl, res, NULL, dur, &sum);
	assert_int_equal(sum.nr_itl, 40);
	within(sum.itl_max, 300 - 20, 300 + SLACK_MS);
	within(sum.itl[2], 186.9 - 20, 186.9 + SLACK_MS);
	within(sum.itl[0], 10 - 5, 10 + SLACK_MS / 3);
	within(sum.itl[1], 10 - 5, 10 + SLACK_MS / 3);
	within(sum.tpot[2], 38.13 - 5, 38.13 + SLACK_MS / 3);
	within(sum.tpot[0], 10 - 5, 10 + SLACK_MS / 3);
	o = report_json(&wl, res, dur);
	assert_int_equal(path_int(o, "overall", "itl_gaps"), 40);
	within(path_num(o, "overall", "itl_ms", "max"), sum.itl_max - 1e-3, sum.itl_max + 1e-3);
	within(path_num(o, "overall", "itl_ms", "p99"), sum.itl[2] - 1e-3, sum.itl[2] + 1e-3);
	json_object_put(o);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

/* A stream that stalls past the timeout, an event that is not JSON, a 200 that is no stream. */
static void bad_streams(void **state)
{
	static const char *const clients[] = { "stall", "garbage", "plain", NULL };
	struct fake_opts fo = { .ttft_ms = 1, .tpot_ms = 1 };
	struct lg_workload wl = { 0 };
	struct fake_server *s;
	struct lg_result *res = calloc(3, sizeof(*res));
	struct lg_run_opts o;
	json_object *rep;
	double dur;
	int port;

	(void)state;
	s = fake_start(&fo, &port);
	workload(&wl, 3, 0.01, 4, clients);
	opts_for(&o, port);
	o.timeout_s = 0.3;
	assert_int_equal(lg_run(&wl, &o, res, &dur), 0);
	assert_int_equal(res[0].err, LG_HTTP_TIMEOUT);
	assert_int_equal(res[0].tokens, 1);
	assert_int_equal(res[1].err, LG_HTTP_PROTO);
	assert_non_null(strstr(res[1].msg, "bad event: {not json"));
	assert_int_equal(res[2].err, LG_HTTP_PROTO);
	assert_string_equal(res[2].msg, "status 200 but not an event stream");
	rep = report_json(&wl, res, dur);
	assert_int_equal(path_int(rep, "transport_errors", "timeout"), 1);
	assert_int_equal(path_int(rep, "transport_errors", "protocol"), 2);
	assert_int_equal(path_int(rep, "overall", "failed"), 3);
	/* the stall had its headers and a token: incomplete; the other two are malformed */
	assert_int_equal(res[0].fail, LG_FAIL_INCOMPLETE);
	assert_int_equal(res[1].fail, LG_FAIL_PROTOCOL);
	assert_int_equal(res[2].fail, LG_FAIL_PROTOCOL);
	assert_int_equal(path_num(rep, "overall", "failures", "incomplete"), 1);
	assert_int_equal(path_num(rep, "overall", "failures", "protocol"), 2);
	json_object_put(rep);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

static void refused(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_result *res;
	json_object *o;
	double dur;
	int port = fake_closed_port();

	(void)state;
	assert_true(port > 0);
	workload(&wl, 2, 0.01, 4, NULL);
	res = run(&wl, port, &dur);
	assert_int_equal(res[0].err, LG_HTTP_CONNECT);
	assert_non_null(strstr(res[0].msg, "Connection refused"));
	o = report_json(&wl, res, dur);
	assert_int_equal(path_int(o, "transport_errors", "connect"), 2);
	assert_int_equal(path_int(o, "overall", "completed"), 0);
	assert_int_equal(res[1].fail, LG_FAIL_TRANSPORT);
	assert_int_equal(path_num(o, "overall", "failures", "transport"), 2);
	assert_int_equal(path_int(o, "overall", "itl_gaps"), 0);
	assert_true(isnan(path_num(o, "overall", "itl_ms", "max")));
	json_object_put(o);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
}

static void digests(void **state)
{
	struct fake_opts fo = { .ttft_ms = 5, .tpot_ms = 2 };
	struct lg_workload wl = { 0 };
	struct lg_digest_check dc;
	struct fake_server *s;
	struct lg_result *a, *b;
	char dir[] = "/tmp/lg_digests.XXXXXX", path[64], err[256];
	double dur;
	int port;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d", dir);
	s = fake_start(&fo, &port);
	workload(&wl, 3, 0.01, 5, NULL);
	a = run(&wl, port, &dur);
	assert_int_equal(lg_digests_check(path, &wl, a, &dc, err, sizeof(err)), 0);
	assert_int_equal(dc.mode, 1);
	assert_int_equal(dc.recorded, 3);
	b = run(&wl, port, &dur);
	assert_int_equal(lg_digests_check(path, &wl, b, &dc, err, sizeof(err)), 0);
	assert_int_equal(dc.mode, 2);
	assert_int_equal(dc.compared, 3);
	assert_int_equal(dc.mismatched, 0);
	b[1].digests[3] ^= 1;
	assert_int_equal(lg_digests_check(path, &wl, b, &dc, err, sizeof(err)), 0);
	assert_int_equal(dc.mismatched, 1);
	assert_string_equal(dc.first, "request 1, token 3");
	b[1].nr_digests = 4;
	b[1].digests[3] ^= 1;
	assert_int_equal(lg_digests_check(path, &wl, b, &dc, err, sizeof(err)), 0);
	assert_int_equal(dc.mismatched, 1);
	lg_results_free(a, wl.n);
	lg_results_free(b, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
	unlink(path);
	rmdir(dir);
}

/* The report's "server" object, its member a (and a.b). */
static json_object *srv_get(json_object *rep, const char *a, const char *b)
{
	json_object *srv, *x, *y;

	assert_true(json_object_object_get_ex(rep, "server", &srv));
	if (!json_object_object_get_ex(srv, a, &x) || (b && !json_object_object_get_ex(x, b, &y)))
		fprintf(stderr, "# no server.%s%s%s\n", a, b ? "." : "", b ? b : "");
	assert_true(json_object_object_get_ex(srv, a, &x));
	if (!b)
		return x;
	assert_true(json_object_object_get_ex(x, b, &y));
	return y;
}

static void srv_int(json_object *rep, const char *a, const char *b, int64_t want)
{
	json_object *x = srv_get(rep, a, b);

	if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) != want)
		fprintf(stderr, "# server.%s.%s: %s, not %lld\n", a, b,
			json_object_to_json_string(x), (long long)want);
	assert_true(json_object_is_type(x, json_type_int));
	assert_true(json_object_get_int64(x) == want);
}

/*
 * Four requests of 6 tokens, priorities 0, 1, 0, 1, against a /metrics page of 3000 padding
 * gauges first (about 100 KiB): the counters change by 4 requests, 4 x (10 + 6) = 64 computed
 * tokens, 2 x 2 = 4 recomputed (the tax 4 / 64 = 0.0625 exactly), 2 swaps and swap-ins, 4
 * recomputes, 2 x 8192 swapped bytes; the others not at all.
 */
static void server_metrics(int close_delimited)
{
	struct fake_opts fo = { .ttft_ms = 5, .tpot_ms = 2, .metrics_pad = 3000,
				.close_delimited = close_delimited };
	struct lg_workload wl = { 0 };
	struct lg_result *res = calloc(4, sizeof(*res));
	struct lg_server srv;
	struct fake_server *s;
	struct lg_run_opts o;
	json_object *rep, *x;
	char *buf = NULL;
	double dur;
	size_t len = 0;
	int port, good;
	FILE *f;

	s = fake_start(&fo, &port);
	assert_non_null(s);
	workload(&wl, 4, 0.01, 6, NULL);
	opts_for(&o, port);
	lg_server_begin(&srv, &o.url, o.timeout_s);
	if (!srv.ok)
		fprintf(stderr, "# %s\n", srv.err);
	assert_true(srv.ok);
	assert_int_equal(lg_run(&wl, &o, res, &dur), 0);
	lg_server_end(&srv, &o.url, o.timeout_s);
	assert_true(srv.ok);
	assert_int_equal(fake_metrics_gets(s), 2);
	assert_int_equal(fake_requests(s, &good), 4);
	assert_int_equal(good, 4);
	assert_int_equal(srv.after.ignored, 1);
	assert_non_null(lg_metrics_find(&srv.after, "kvaccel_fake_pad{i=\"2999\"}"));

	rep = report_json_srv(&wl, res, dur, &srv);
	assert_int_equal(path_int(rep, "overall", "completed"), 4);
	srv_int(rep, "counters", "kvaccel_serve_requests_total{status=\"200\"}", 4);
	srv_int(rep, "counters", "kvaccel_serve_requests_total{status=\"429\"}", 0);
	srv_int(rep, "counters", "kvaccel_serve_computed_tokens_total", 64);
	srv_int(rep, "counters", "kvaccel_serve_recomputed_tokens_total", 4);
	srv_int(rep, "counters", "kvaccel_serve_swaps_total", 2);
	srv_int(rep, "counters", "kvaccel_serve_swap_ins_total", 2);
	srv_int(rep, "counters", "kvaccel_serve_recomputes_total", 4);
	srv_int(rep, "counters", "kvaccel_serve_yields_total", 0);
	srv_int(rep, "counters", "kvaccel_serve_swapped_bytes_total", 16384);
	/* past 64 bits: a double, unchanged */
	x = srv_get(rep, "counters", "kvaccel_fake_huge_total");
	assert_true(json_object_is_type(x, json_type_double) && json_object_get_double(x) == 0);
	assert_int_equal(json_object_object_length(srv_get(rep, "counters", NULL)), 10);
	srv_int(rep, "gauges", "kvaccel_serve_swap_bandwidth_bytes", 16000000000LL);
	srv_int(rep, "gauges", "kvaccel_serve_step_duration_ns", 250000);
	srv_int(rep, "gauges", "kvaccel_serve_requests_running", 0);
	srv_int(rep, "gauges", "kvaccel_fake_pad{i=\"2999\"}", 2999);
	/* the padding, the two gauges and requests_running; no histogram */
	assert_int_equal(json_object_object_length(srv_get(rep, "gauges", NULL)), 3000 + 3);
	assert_true(json_object_get_double(srv_get(rep, "recompute_tax", NULL)) == 0.0625);
	within(json_object_get_double(srv_get(rep, "swap_bytes_per_s", NULL)) * dur,
	       16384 * (1 - 1e-12), 16384 * (1 + 1e-12));
	json_object_put(rep);

	f = open_memstream(&buf, &len);
	lg_report_table(f, &wl, res, dur, NULL, &srv);
	fclose(f);
	assert_non_null(strstr(buf, "\nserver (its /metrics, changes over the run):\n"
		"  recompute tax: 4 recomputed tokens of 64 computed (6.2%)\n"
		"  preemptions: 2 swaps, 4 recomputes, 2 swapped back in\n"
		"  yields: 0\n"
		"  swapped: 16384 bytes ("));
	assert_non_null(strstr(buf, " bytes/s); swap bandwidth 16000000000 bytes/s\n"));
	free(buf);
	lg_server_free(&srv);
	lg_results_free(res, wl.n);
	lg_workload_free(&wl);
	fake_stop(s);
}

static void server_metrics_chunked(void **state)
{
	(void)state;
	server_metrics(0);
}

static void server_metrics_to_close(void **state)
{
	(void)state;
	server_metrics(1);
}

/* No /metrics (404), or no server: a warning's message, "server": null, the run as ever. */
static void server_metrics_missing(void **state)
{
	struct fake_opts fo = { .ttft_ms = 5, .tpot_ms = 2, .no_metrics = 1 };
	struct lg_workload wl = { 0 };
	struct lg_result *res = calloc(2, sizeof(*res));
	struct lg_server srv;
	struct fake_server *s;
	struct lg_run_opts o;
	json_object *rep, *x;
	char *buf = NULL;
	size_t len = 0;
	double dur;
	int port;
	FILE *f;

	(void)state;
	s = fake_start(&fo, &port);
	workload(&wl, 2, 0.01, 3, NULL);
	opts_for(&o, port);
	lg_server_begin(&srv, &o.url, o.timeout_s);
	assert_false(srv.ok);
	assert_non_null(strstr(srv.err, "/metrics: status 404"));
	assert_int_equal(lg_run(&wl, &o, res, &dur), 0);
	lg_server_end(&srv, &o.url, o.timeout_s);
	assert_false(srv.ok);
	assert_int_equal(fake_metrics_gets(s), 1);	/* no second try */
	rep = report_json_srv(&wl, res, dur, &srv);
	assert_int_equal(path_int(rep, "overall", "completed"), 2);
	assert_true(json_object_object_get_ex(rep, "server", &x));
	assert_null(x);
	json_object_put(rep);
	f = open_memstream(&buf, &len);
	lg_report_table(f, &wl, res, dur, NULL, &srv);
	fclose(f);
	assert_null(strstr(buf, "server"));
	free(buf);
	lg_server_free(&srv);
	lg_results_free(res, wl.n);
	fake_stop(s);

	port = fake_closed_port();
	opts_for(&o, port);
	lg_server_begin(&srv, &o.url, o.timeout_s);
	assert_false(srv.ok);
	assert_non_null(strstr(srv.err, "Connection refused"));
	assert_non_null(strstr(srv.err, "/metrics: connect to 127.0.0.1:"));
	lg_server_free(&srv);
	lg_workload_free(&wl);
}

static void url(void **state)
{
	struct lg_url u;

	(void)state;
	assert_int_equal(lg_url_parse("http://localhost:8080/api/", &u), 0);
	assert_string_equal(u.host, "localhost");
	assert_string_equal(u.port, "8080");
	assert_string_equal(u.base, "/api");
	assert_int_equal(lg_url_parse("http://[::1]:9", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(lg_url_parse("http://h", &u), 0);
	assert_string_equal(u.port, "80");
	assert_int_equal(lg_url_parse("https://h", &u), -1);
	assert_int_equal(lg_url_parse("http://h:0", &u), -1);
	assert_int_equal(lg_url_parse("http://h:70000", &u), -1);
	assert_int_equal(lg_url_parse("http://:80", &u), -1);
	assert_int_equal(lg_url_parse("http://h:x", &u), -1);
}

/* The body follows the contract: token ids, stream, the extension fields. */
static void body(void **state)
{
	struct lg_req r = { .input_len = 3, .output_len = 9, .priority = 2, .ttft_slo_ms = 250,
			    .tpot_slo_ms = 0, .cls = "offline", .client = "alice" };
	struct lg_run_opts o = { .seed = 5, .temperature = 0.5 };
	char *s = lg_request_body(&r, &o, 4);
	json_object *b = json_tokener_parse(s), *x;

	(void)state;
	assert_true(json_object_object_get_ex(b, "prompt", &x));
	assert_int_equal(json_object_array_length(x), 3);
	assert_true(json_object_object_get_ex(b, "stream", &x) && json_object_get_boolean(x));
	assert_true(json_object_object_get_ex(b, "max_tokens", &x));
	assert_int_equal(json_object_get_int(x), 9);
	assert_true(json_object_object_get_ex(b, "seed", &x));
	assert_int_equal(json_object_get_int(x), 9);
	assert_true(json_object_object_get_ex(b, "priority", &x));
	assert_int_equal(json_object_get_int(x), 2);
	assert_true(json_object_object_get_ex(b, "ttft_slo_ms", &x));
	assert_false(json_object_object_get_ex(b, "tpot_slo_ms", &x));
	assert_true(json_object_object_get_ex(b, "class", &x));
	assert_string_equal(json_object_get_string(x), "offline");
	assert_true(json_object_object_get_ex(b, "client", &x));
	assert_string_equal(json_object_get_string(x), "alice");
	json_object_put(b);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url),
		cmocka_unit_test(body),
		cmocka_unit_test(timing_chunked),
		cmocka_unit_test(timing_to_close),
		cmocka_unit_test(open_loop),
		cmocka_unit_test(http_errors),
		cmocka_unit_test(failures_chunked),
		cmocka_unit_test(failures_to_close),
		cmocka_unit_test(itl_pooled),
		cmocka_unit_test(bad_streams),
		cmocka_unit_test(refused),
		cmocka_unit_test(digests),
		cmocka_unit_test(server_metrics_chunked),
		cmocka_unit_test(server_metrics_to_close),
		cmocka_unit_test(server_metrics_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
