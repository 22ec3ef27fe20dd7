// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen's trace readers: the Azure 2023 CSV, Mooncake JSONL (hash ids: equal ids give
 * equal prompt blocks), the plain JSONL and CSV with every optional field; sorting, time scaling,
 * truncation and clipping; and each kind of bad line refused with FILE:LINE and what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "workload.h"

static char dir[] = "/tmp/lg_trace.XXXXXX";
static char path[128];
static const struct lg_trace_opts dflt = { .time_scale = 1 };

static const char *file(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/trace", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void load(const char *text, const struct lg_trace_opts *o, struct lg_workload *wl)
{
	char err[256] = "";

	if (lg_trace_load(file(text), o, wl, err, sizeof(err))) {
		fprintf(stderr, "# %s\n", err);
		fail();
	}
}

static void close_to(double a, double b)
{
	if (a < b - 1e-6 || a > b + 1e-6) {
		fprintf(stderr, "# %.9f != %.9f\n", a, b);
		fail();
	}
}

static void azure(void **state)
{
	struct lg_workload wl = { 0 };

	(void)state;
	load("TIMESTAMP,ContextTokens,GeneratedTokens\n"
	     "2023-11-16 18:15:46.6805900,374,44\n"
	     "2023-11-16 18:15:50.9951690,396,109\n"
	     "2023-11-16 18:16:01.0000000,879,20\r\n", &dflt, &wl);
	assert_int_equal(wl.n, 3);
	close_to(wl.req[0].arrival_s, 0);
	close_to(wl.req[1].arrival_s, 4.314579);
	close_to(wl.req[2].arrival_s, 14.31941);
	assert_int_equal(wl.req[1].input_len, 396);
	assert_int_equal(wl.req[1].output_len, 109);
	assert_string_equal(wl.req[0].cls, "online");
	assert_int_equal(wl.req[2].line, 4);
	lg_workload_free(&wl);
}

static void mooncake(void **state)
{
	struct lg_workload wl = { 0 };
	uint8_t *a, *b, *c;
	size_t la, lb, lc;

	(void)state;
	load("{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 12, "
	     "\"hash_ids\": [0, 1, 2]}\n"
	     "{\"timestamp\": 2500, \"input_length\": 1030, \"output_length\": 5, "
	     "\"hash_ids\": [0, 1, 7]}\n"
	     "{\"timestamp\": 1000, \"input_length\": 700, \"output_length\": 3, "
	     "\"hash_ids\": [4, 5]}\n", &dflt, &wl);
	assert_int_equal(wl.n, 3);
	/* sorted by arrival */
	close_to(wl.req[1].arrival_s, 1.0);
	close_to(wl.req[2].arrival_s, 2.5);
	assert_int_equal(wl.req[2].nr_hash_ids, 3);
	assert_int_equal(wl.req[2].hash_ids[2], 7);
	a = lg_prompt_make(&wl.req[0], 9, 0, &la);
	b = lg_prompt_make(&wl.req[2], 9, 2, &lb);
	c = lg_prompt_make(&wl.req[1], 9, 1, &lc);
	assert_int_equal(la, 1100);
	assert_int_equal(lb, 1030);
	/* a shared two-block prefix, then different blocks */
	assert_memory_equal(a, b, 1024);
	assert_memory_not_equal(a + 1024, b + 1024, 6);
	assert_memory_not_equal(a, c, 512);
	free(a);
	free(b);
	free(c);
	/* the same seed gives the same bytes, another seed others */
	a = lg_prompt_make(&wl.req[0], 9, 0, &la);
	b = lg_prompt_make(&wl.req[0], 10, 0, &lb);
	c = lg_prompt_make(&wl.req[0], 9, 0, &lc);
	assert_memory_equal(a, c, la);
	assert_memory_not_equal(a, b, 64);
	free(a);
	free(b);
	free(c);
	lg_workload_free(&wl);
}

static void plain_jsonl(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_trace_opts o = { .time_scale = 2, .ttft_slo_ms = 300, .tpot_slo_ms = 30 };
	uint8_t *p;
	size_t n;

	(void)state;
	load("{\"arrival_s\": 1.5, \"prompt\": \"hello\", \"output_length\": 4, \"priority\": 3, "
	     "\"class\": \"online\", \"ttft_slo_ms\": 250, \"tpot_slo_ms\": 50, \"client\": \"a\"}\n"
	     "\n"
	     "{\"arrival_s\": 3.5, \"input_length\": 20, \"output_length\": 8, "
	     "\"class\": \"offline\", \"extra\": true}\n", &o, &wl);
	assert_int_equal(wl.n, 2);
	close_to(wl.req[1].arrival_s, 1.0);	/* (3.5 - 1.5) / 2 */
	assert_int_equal(wl.req[0].input_len, 5);
	assert_int_equal(wl.req[0].priority, 3);
	close_to(wl.req[0].ttft_slo_ms, 250);
	close_to(wl.req[0].tpot_slo_ms, 50);
	assert_string_equal(wl.req[0].client, "a");
	assert_string_equal(wl.req[1].cls, "offline");
	close_to(wl.req[1].ttft_slo_ms, 300);	/* the default */
	close_to(wl.req[1].tpot_slo_ms, 30);
	assert_int_equal(wl.req[1].line, 3);
	p = lg_prompt_make(&wl.req[0], 1, 0, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	free(p);
	lg_workload_free(&wl);
}

static void plain_csv(void **state)
{
	struct lg_workload wl = { 0 };
	struct lg_trace_opts o = { .time_scale = 1, .limit = 2, .max_input = 100,
				   .max_output = 10 };
	size_t i;

	(void)state;
	load("arrival_s,input_length,output_length,priority,class,ttft_slo_ms,tpot_slo_ms,client\n"
	     "0.2,500,50,1,online,200,40,bob\n"
	     "0.1,50,5,0,offline,0,0,carol\n"
	     "0.3,60,6,0,offline,0,0,carol\n", &o, &wl);
	assert_int_equal(wl.n, 2);
	assert_string_equal(wl.req[0].client, "carol");
	close_to(wl.req[1].arrival_s, 0.1);
	assert_int_equal(wl.req[1].input_len, 100);
	assert_int_equal(wl.req[1].output_len, 10);
	assert_int_equal(wl.req[1].priority, 1);
	close_to(wl.req[1].ttft_slo_ms, 200);
	lg_workload_free(&wl);
	/* timestamp in ms, columns in any order */
	load("output_length,timestamp,input_length\n7,1000,3\n8,1500,4\n", &dflt, &wl);
	assert_int_equal(wl.n, 2);
	close_to(wl.req[1].arrival_s, 0.5);
	for (i = 0; i < wl.n; i++)
		assert_int_equal(wl.req[i].output_len, 7 + i);
	lg_workload_free(&wl);
}

static void refused(const char *text, const char *want)
{
	struct lg_workload wl = { 0 };
	char err[256] = "", full[256];

	assert_int_equal(lg_trace_load(file(text), &dflt, &wl, err, sizeof(err)), -1);
	snprintf(full, sizeof(full), "%s%s", path, want);
	if (strncmp(err, full, strlen(full))) {
		fprintf(stderr, "# got \"%s\", want \"%s...\"\n", err, full);
		fail();
	}
	assert_int_equal(wl.n, 0);
}

static void bad_lines(void **state)
{
	struct lg_workload wl = { 0 };
	char err[256];

	(void)state;
	refused("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1}\n{\"timestamp\": 1,",
		":2: not JSON");
	refused("[1, 2]\n", ":1: not a JSON object");
	refused("{\"timestamp\": 0, \"input_length\": 3}\n", ":1: no \"output_length\"");
	refused("{\"timestamp\": 0, \"output_length\": 3}\n", ":1: no \"prompt\" or \"input_length\"");
	refused("{\"input_length\": 3, \"output_length\": 3}\n", ":1: no \"arrival_s\"");
	refused("{\"arrival_s\": 0, \"timestamp\": 0, \"input_length\": 3, \"output_length\": 3}\n",
		":1: both");
	refused("{\"timestamp\": \"x\", \"input_length\": 3, \"output_length\": 3}\n",
		":1: \"timestamp\": not a number");
	refused("{\"timestamp\": 0, \"input_length\": -3, \"output_length\": 3}\n",
		":1: input_length -3: not a whole number");
	refused("{\"timestamp\": 0, \"input_length\": 2.5, \"output_length\": 3}\n",
		":1: input_length 2.5");
	refused("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 3, \"hash_ids\": [1, "
		"\"a\"]}\n", ":1: \"hash_ids\"[1]: not an integer");
	refused("{\"timestamp\": 0, \"prompt\": \"abc\", \"input_length\": 4, \"output_length\": 3}\n",
		":1: \"input_length\" 4 but the prompt has 3 bytes");
	refused("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 3, \"class\": 5}\n",
		":1: \"class\": not a string");
	refused("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 3, \"priority\": 1.5}\n",
		":1: priority 1.5: not an integer");
	refused("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 3, \"ttft_slo_ms\": -1}\n",
		":1: ttft_slo_ms -1: negative");
	refused("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374\n",
		":2: 2 fields, the header has 3");
	refused("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-16 18:15:46,374,4\n",
		":2: timestamp \"2023-13-16 18:15:46\": neither");
	refused("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,x,4\n",
		":2: input_length \"x\": not a number");
	refused("arrival_s,input_length,bogus\n", ":1: unknown column \"bogus\"");
	refused("arrival_s,input_length\n", ":1: no input_length or output_length column");
	refused("input_length,output_length\n1,1\n", ":1: no arrival_s or timestamp column");
	refused("arrival_s,input_length,output_length,input_length\n", ":1: column \"input_length\" "
		"given twice");
	refused("", ": no requests");
	refused("arrival_s,input_length,output_length\n\n", ": no requests");
	assert_int_equal(lg_trace_load("/nonexistent/trace.jsonl", &dflt, &wl, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "/nonexistent/trace.jsonl: No such file or directory");
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(azure),
		cmocka_unit_test(mooncake),
		cmocka_unit_test(plain_jsonl),
		cmocka_unit_test(plain_csv),
		cmocka_unit_test(bad_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
