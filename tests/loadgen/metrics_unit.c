// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen's Prometheus text parser (metrics.c): samples with and without labels (keyed
 * with their labels, spaces and a trailing comma dropped, escapes kept), timestamps, HELP, TYPE
 * and other comments and blank lines skipped, CRLF, a last line without its newline, malformed
 * lines counted and skipped, the first of a repeated key kept, huge, tiny and special values
 * (exact 64-bit integers, doubles past them, overflow refused), kvaccel-serve's page as it
 * renders it, and the server section's deltas, recompute tax and swap rate (server.c) on
 * hand-made scrapes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "metrics.h"
#include "server.h"

static void parse(const char *text, struct lg_metrics *m)
{
	assert_int_equal(lg_metrics_parse(text, strlen(text), m), 0);
}

static const struct lg_sample *get(const struct lg_metrics *m, const char *key)
{
	const struct lg_sample *s = lg_metrics_find(m, key);

	if (!s)
		fprintf(stderr, "# no sample \"%s\"\n", key);
	assert_non_null(s);
	return s;
}

static void good_lines(void **state)
{
	struct lg_metrics m;
	const struct lg_sample *s;

	(void)state;
	parse("# HELP a_total Things.\n"
	      "# TYPE a_total counter\n"
	      "a_total 42\n"
	      "\n"
	      "   \t\n"
	      "b_gauge 3.25\n"
	      "c:with_colon -7\n"
	      "d 1.5e3 1700000000000\n"
	      "e\t\t9\t\n"
	      "# a comment with a_total 1000 in it\n"
	      "  # an indented comment\n"
	      "_f 0\n", &m);
	assert_int_equal(m.n, 6);
	assert_int_equal(m.ignored, 0);
	s = get(&m, "a_total");
	assert_true(s->is_int);
	assert_int_equal(s->ival, 42);
	assert_true(s->value == 42);
	assert_int_equal(s->name_len, 7);
	assert_int_equal(s->line, 3);
	s = get(&m, "b_gauge");
	assert_false(s->is_int);
	assert_true(s->value == 3.25);
	assert_int_equal(get(&m, "c:with_colon")->ival, -7);
	s = get(&m, "d");
	assert_false(s->is_int);	/* 1.5e3 is a double, however whole */
	assert_true(s->value == 1500);
	assert_int_equal(get(&m, "e")->ival, 9);
	assert_int_equal(get(&m, "_f")->ival, 0);
	assert_null(lg_metrics_find(&m, "nothing"));
	assert_null(lg_metrics_find(&m, "a"));
	/* sorted by key */
	assert_string_equal(m.s[0].key, "_f");
	assert_string_equal(m.s[5].key, "e");
	lg_metrics_free(&m);
	assert_int_equal(m.n, 0);
	assert_null(m.s);
}

static void labels(void **state)
{
	struct lg_metrics m;
	const struct lg_sample *s;

	(void)state;
	parse("req_total{status=\"200\"} 10\n"
	      "req_total{status=\"429\"} 2\n"
	      "kv{tier=\"swap\",state=\"used\"} 5\n"
	      "kv{ tier = \"compute\" , state=\"free\", } 6\n"
	      "empty{} 1\n"
	      "esc{path=\"a\\\"b\\\\c\\n\",x=\"} {\"} 3\n"
	      "h_bucket{le=\"+Inf\"} 4\n"
	      "sp{a=\"two words\"}\t8 123\n", &m);
	assert_int_equal(m.ignored, 0);
	assert_int_equal(m.n, 8);
	s = get(&m, "req_total{status=\"200\"}");
	assert_int_equal(s->ival, 10);
	assert_int_equal(s->name_len, 9);
	assert_int_equal(get(&m, "req_total{status=\"429\"}")->ival, 2);
	assert_null(lg_metrics_find(&m, "req_total"));
	assert_int_equal(get(&m, "kv{tier=\"swap\",state=\"used\"}")->ival, 5);
	/* spaces and the trailing comma go; the order stays as written */
	assert_int_equal(get(&m, "kv{tier=\"compute\",state=\"free\"}")->ival, 6);
	/* {} is the name alone */
	s = get(&m, "empty");
	assert_int_equal(s->name_len, 5);
	/* escapes kept as written; a } or { inside quotes is the value's */
	assert_int_equal(get(&m, "esc{path=\"a\\\"b\\\\c\\n\",x=\"} {\"}")->ival, 3);
	assert_int_equal(get(&m, "h_bucket{le=\"+Inf\"}")->ival, 4);
	assert_int_equal(get(&m, "sp{a=\"two words\"}")->ival, 8);
	lg_metrics_free(&m);
}

static void malformed(void **state)
{
	static const char *const bad[] = {
		"novalue",
		"novalue   ",
		"1starts_with_digit 3",
		"bad-name 3",
		"x{a=\"1\" 3",			/* unclosed */
		"x{a=1} 3",			/* unquoted */
		"x{a=\"1} 3",			/* unterminated string */
		"x{=\"1\"} 3",			/* no label name */
		"x{a:b=\"1\"} 3",		/* a colon in a label name */
		"x{a=\"1\"b=\"2\"} 3",		/* no comma */
		"x{a=\"1\"}3",			/* no space before the value */
		"x 12abc",
		"x three",
		"x 3 4 5",			/* text after the timestamp */
		"x 3 1.5",			/* a timestamp is whole */
		"x 1e400",			/* overflows a double */
		"x -1e400",
		"x{a=\"\\",			/* an escape at the end */
		"x{a=\"1\"}",
		"{a=\"1\"} 3",
	};
	struct lg_metrics m;
	char text[2048];
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n += snprintf(text + n, sizeof(text) - n, "%s\n", bad[i]);
		assert_int_equal(lg_metrics_parse(bad[i], strlen(bad[i]), &m), 0);
		if (m.n || m.ignored != 1)
			fprintf(stderr, "# \"%s\": %zu samples, %zu ignored\n", bad[i], m.n,
				m.ignored);
		assert_int_equal(m.n, 0);
		assert_int_equal(m.ignored, 1);
		lg_metrics_free(&m);
	}
	/* among good ones, each skipped alone */
	n += snprintf(text + n, sizeof(text) - n, "good 1\n");
	parse(text, &m);
	assert_int_equal(m.ignored, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(m.n, 1);
	assert_int_equal(get(&m, "good")->line, sizeof(bad) / sizeof(bad[0]) + 1);
	lg_metrics_free(&m);
}

/* CRLF, no newline at the end, a repeated key (the first wins), an empty text, NUL-free bytes. */
static void edges(void **state)
{
	static const char part[] = "a 1\nb 2\nc 3";
	struct lg_metrics m;

	(void)state;
	parse("x 1\r\ny{a=\"b\"} 2\r\n# c\r\n\r\nlast 7", &m);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.ignored, 0);
	assert_int_equal(get(&m, "x")->ival, 1);
	assert_int_equal(get(&m, "y{a=\"b\"}")->ival, 2);
	assert_int_equal(get(&m, "last")->ival, 7);
	lg_metrics_free(&m);
	parse("dup 1\nother 5\ndup 2\ndup{} 3\n", &m);
	assert_int_equal(m.n, 2);
	assert_int_equal(get(&m, "dup")->ival, 1);
	assert_int_equal(get(&m, "dup")->line, 1);
	lg_metrics_free(&m);
	parse("", &m);
	assert_int_equal(m.n, 0);
	assert_null(lg_metrics_find(&m, "x"));
	lg_metrics_free(&m);
	/* only len bytes count: "c 3" is cut to "c" here, and malformed */
	assert_int_equal(lg_metrics_parse(part, sizeof(part) - 3, &m), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.ignored, 1);
	lg_metrics_free(&m);
}

static void huge_values(void **state)
{
	struct lg_metrics m;
	const struct lg_sample *s;

	(void)state;
	parse("max 9223372036854775807\n"
	      "min -9223372036854775808\n"
	      "u64 18446744073709551615\n"
	      "over 123456789012345678901234567890\n"
	      "big 1.7976931348623157e308\n"
	      "tiny 4.9e-324\n"
	      "under 1e-400\n"
	      "pinf +Inf\n"
	      "ninf -Inf\n"
	      "nan NaN\n"
	      "plus +12\n"
	      "long 00000000000000000000000000000000000042\n", &m);
	assert_int_equal(m.ignored, 0);
	assert_int_equal(m.n, 12);
	s = get(&m, "max");
	assert_true(s->is_int);
	assert_true(s->ival == INT64_MAX);
	s = get(&m, "min");
	assert_true(s->is_int);
	assert_true(s->ival == INT64_MIN);
	/* past 64 bits signed: a double, not exact */
	s = get(&m, "u64");
	assert_false(s->is_int);
	assert_true(s->value == 18446744073709551615.0);
	s = get(&m, "over");
	assert_false(s->is_int);
	assert_true(s->value > 1.2e29 && s->value < 1.3e29);
	assert_true(get(&m, "big")->value == 1.7976931348623157e308);
	assert_true(get(&m, "tiny")->value > 0);
	assert_true(get(&m, "under")->value >= 0 && get(&m, "under")->value < 1e-300);
	assert_true(isinf(get(&m, "pinf")->value) && get(&m, "pinf")->value > 0);
	assert_true(isinf(get(&m, "ninf")->value) && get(&m, "ninf")->value < 0);
	assert_true(isnan(get(&m, "nan")->value));
	assert_int_equal(get(&m, "plus")->ival, 12);
	assert_int_equal(get(&m, "long")->ival, 42);
	lg_metrics_free(&m);
}

/* A long line (a label value of 100 KiB) and many samples. */
static void big_text(void **state)
{
	size_t n = 200000, i, len = 0;
	char *text = malloc(n * 40 + 200000);
	struct lg_metrics m;
	char key[64];

	(void)state;
	assert_non_null(text);
	len += sprintf(text, "long{v=\"");
	memset(text + len, 'x', 100000);
	len += 100000;
	len += sprintf(text + len, "\"} 5\n");
	for (i = 0; i < n; i++)
		len += sprintf(text + len, "s{i=\"%zu\"} %zu\n", i, i);
	assert_int_equal(lg_metrics_parse(text, len, &m), 0);
	assert_int_equal(m.n, n + 1);
	snprintf(key, sizeof(key), "s{i=\"%zu\"}", n - 1);
	assert_int_equal(get(&m, key)->ival, (long long)(n - 1));
	assert_int_equal(strlen(m.s[0].key), strlen("long{v=\"\"}") + 100000);
	lg_metrics_free(&m);
	free(text);
}

/* kvaccel-serve's page, as tools/serve/http_render.c writes it (a part). */
static const char serve_page[] =
	"# HELP kvaccel_serve_requests_total HTTP requests answered, by status.\n"
	"# TYPE kvaccel_serve_requests_total counter\n"
	"kvaccel_serve_requests_total{status=\"200\"} %d\n"
	"kvaccel_serve_requests_total{status=\"429\"} 0\n"
	"# HELP kvaccel_serve_kv_blocks KV blocks per tier, used or free.\n"
	"# TYPE kvaccel_serve_kv_blocks gauge\n"
	"kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"} %d\n"
	"# HELP kvaccel_serve_swaps_total Swap-outs (preemptions by swap).\n"
	"# TYPE kvaccel_serve_swaps_total counter\n"
	"kvaccel_serve_swaps_total %d\n"
	"kvaccel_serve_swap_ins_total %d\n"
	"kvaccel_serve_recomputes_total %d\n"
	"kvaccel_serve_recomputed_tokens_total %d\n"
	"kvaccel_serve_yields_total %d\n"
	"kvaccel_serve_swapped_bytes_total %d\n"
	"# TYPE kvaccel_serve_swap_bandwidth_bytes gauge\n"
	"kvaccel_serve_swap_bandwidth_bytes %d\n"
	"kvaccel_serve_step_duration_ns %d\n"
	"kvaccel_serve_computed_tokens_total %d\n"
	"kvaccel_serve_ttft_ms_bucket{le=\"10\"} %d\n"
	"kvaccel_serve_ttft_ms_bucket{le=\"+Inf\"} %d\n"
	"kvaccel_serve_ttft_ms_sum %d\n"
	"kvaccel_serve_ttft_ms_count %d\n"
	"kvaccel_serve_preempted_ms_total %d.250\n";

static void page(struct lg_metrics *m, int k)
{
	char text[4096];

	/*
	 * after the run (k = 1): 7 more 200s, 3 swaps, 2 swapped in, 1 recompute, 30 tokens
	 * recomputed of 1200 computed, 2 yields, 6000 bytes swapped, 250 ms more preempted
	 */
	snprintf(text, sizeof(text), serve_page, 5 + 7 * k, 10 + 4 * k, 1 + 3 * k, 2 * k, 4 + k,
		 100 + 30 * k, 9 + 2 * k, 1000 + 6000 * k, 16000000, 500 + k, 800 + 1200 * k,
		 3 * k, 5 * k, 77 * k, 5 * k, 250 * k);
	parse(text, m);
	assert_int_equal(m->ignored, 0);
}

static json_object *member(json_object *o, const char *a, const char *b)
{
	json_object *x = NULL, *y = NULL;

	/* JSON null is NULL */
	if (!json_object_object_get_ex(o, a, &x))
		fprintf(stderr, "# no \"%s\"\n", a);
	assert_true(json_object_object_get_ex(o, a, &x));
	if (!b)
		return x;
	if (!json_object_object_get_ex(x, b, &y))
		fprintf(stderr, "# no \"%s\".\"%s\"\n", a, b);
	assert_true(json_object_object_get_ex(x, b, &y));
	return y;
}

static void server_deltas(void **state)
{
	struct lg_server s = { .ok = 1 };
	json_object *o, *x;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	page(&s.before, 0);
	page(&s.after, 1);
	o = lg_server_json(&s, 2.0);
	assert_int_equal(json_object_get_int64(member(o, "counters",
		"kvaccel_serve_requests_total{status=\"200\"}")), 7);
	assert_int_equal(json_object_get_int64(member(o, "counters",
		"kvaccel_serve_requests_total{status=\"429\"}")), 0);
	assert_int_equal(json_object_get_int64(member(o, "counters",
						      "kvaccel_serve_swaps_total")), 3);
	assert_int_equal(json_object_get_int64(member(o, "counters",
		"kvaccel_serve_computed_tokens_total")), 1200);
	x = member(o, "counters", "kvaccel_serve_preempted_ms_total");
	assert_true(json_object_is_type(x, json_type_double));
	assert_true(json_object_get_double(x) == 250);
	assert_int_equal(json_object_object_length(member(o, "counters", NULL)), 10);
	/* gauges: after the run; no _bucket, _sum, _count */
	assert_int_equal(json_object_get_int64(member(o, "gauges",
		"kvaccel_serve_kv_blocks{tier=\"compute\",state=\"used\"}")), 14);
	assert_int_equal(json_object_get_int64(member(o, "gauges",
		"kvaccel_serve_swap_bandwidth_bytes")), 16000000);
	assert_int_equal(json_object_get_int64(member(o, "gauges",
		"kvaccel_serve_step_duration_ns")), 501);
	assert_int_equal(json_object_object_length(member(o, "gauges", NULL)), 3);
	/* 30 / 1200 */
	assert_true(json_object_get_double(member(o, "recompute_tax", NULL)) == 0.025);
	assert_true(json_object_get_double(member(o, "swap_bytes_per_s", NULL)) == 3000);
	json_object_put(o);

	f = open_memstream(&buf, &len);
	lg_server_table(f, &s, 2.0);
	fclose(f);
	assert_string_equal(buf, "server (its /metrics, changes over the run):\n"
		"  recompute tax: 30 recomputed tokens of 1200 computed (2.5%)\n"
		"  preemptions: 3 swaps, 1 recomputes, 2 swapped back in\n"
		"  yields: 2\n"
		"  swapped: 6000 bytes (3000 bytes/s); swap bandwidth 16000000 bytes/s\n");
	free(buf);
	lg_server_free(&s);
}

/*
 * A counter new after the run counts from 0, one that went down restarted; NaN and non-finite
 * deltas are null; no tax with none computed; no swap rate without the counter; a section only
 * for kvaccel-serve's metrics, none for a failed scrape.
 */
static void server_edges(void **state)
{
	struct lg_server s = { .ok = 1 };
	json_object *o;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	parse("reset_total 100\nkvaccel_serve_computed_tokens_total 50\nbig_total 1e300\n"
	      "nan_total 1\n", &s.before);
	parse("new_total{x=\"1\"} 4\nreset_total 30\nkvaccel_serve_computed_tokens_total 50\n"
	      "kvaccel_serve_recomputed_tokens_total 9\nbig_total 2.5e300\nnan_total NaN\n"
	      "g NaN\n", &s.after);
	o = lg_server_json(&s, 0);
	assert_int_equal(json_object_get_int64(member(o, "counters", "new_total{x=\"1\"}")), 4);
	assert_int_equal(json_object_get_int64(member(o, "counters", "reset_total")), 30);
	assert_true(json_object_get_double(member(o, "counters", "big_total")) == 1.5e300);
	assert_true(json_object_is_type(member(o, "counters", "nan_total"), json_type_null));
	assert_true(json_object_is_type(member(o, "gauges", "g"), json_type_null));
	assert_true(json_object_is_type(member(o, "recompute_tax", NULL), json_type_null));
	assert_true(json_object_is_type(member(o, "swap_bytes_per_s", NULL), json_type_null));
	json_object_put(o);
	f = open_memstream(&buf, &len);
	lg_server_table(f, &s, 1.0);
	fclose(f);
	assert_string_equal(buf, "server (its /metrics, changes over the run):\n"
		"  recompute tax: 9 recomputed tokens of 0 computed (-)\n");
	free(buf);
	lg_server_free(&s);

	/* none of kvaccel-serve's metrics: no section at all */
	s.ok = 1;
	parse("a_total 1\n", &s.before);
	parse("a_total 2\n", &s.after);
	buf = NULL;
	f = open_memstream(&buf, &len);
	lg_server_table(f, &s, 1.0);
	fclose(f);
	assert_string_equal(buf, "");
	free(buf);
	/* a failed scrape: null, and no section */
	s.ok = 0;
	o = lg_server_json(&s, 1.0);
	assert_true(json_object_is_type(o, json_type_null));
	lg_server_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_lines),
		cmocka_unit_test(labels),
		cmocka_unit_test(malformed),
		cmocka_unit_test(edges),
		cmocka_unit_test(huge_values),
		cmocka_unit_test(big_text),
		cmocka_unit_test(server_deltas),
		cmocka_unit_test(server_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
