// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - trace readers. One reader for CSV (a header line naming the columns: the
 * Azure LLM inference 2023 trace's TIMESTAMP,ContextTokens,GeneratedTokens, or the plain
 * arrival_s/timestamp,input_length,output_length,... columns) and one for JSONL (Mooncake's
 * {"timestamp" ms, "input_length", "output_length", "hash_ids"} and the plain fields). A
 * malformed line stops the load with FILE:LINE: what; nothing is skipped but blank lines.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "workload.h"

struct ctx {
	const char *path;
	size_t line;
	char *err;
	size_t errlen;
	const struct lg_trace_opts *o;
};

static int fail(struct ctx *c, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (c->line)
		n = snprintf(c->err, c->errlen, "%s:%zu: ", c->path, c->line);
	else
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	if (n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int num(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return (end == s || *end || errno || !isfinite(*v)) ? -1 : 0;
}

/* "2023-11-16 18:15:46.6805900" (the Azure trace) as seconds since the epoch. */
static int datetime(const char *s, double *v)
{
	struct tm tm = { 0 };
	int n = 0;
	double frac = 0;

	if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	if (s[n] == '.') {
		double scale = 0.1;
		const char *p = s + n + 1;

		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			frac += (*p - '0') * scale;
		n = p - s;
	}
	if (s[n] || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*v = (double)timegm(&tm) + frac;
	return 0;
}

static int length(struct ctx *c, const char *what, double v, uint32_t *out)
{
	if (v < 1 || v > 1e9 || v != floor(v))
		return fail(c, "%s %g: not a whole number of tokens >= 1", what, v);
	*out = (uint32_t)v;
	return 0;
}

static int name(struct ctx *c, const char *what, const char *s, char *out)
{
	if (!*s || strlen(s) >= LG_NAME_MAX)
		return fail(c, "%s \"%s\": empty or longer than %d bytes", what, s,
			    LG_NAME_MAX - 1);
	strcpy(out, s);
	return 0;
}

static int slo(struct ctx *c, const char *what, double v, double *out)
{
	if (v < 0)
		return fail(c, "%s %g: negative", what, v);
	*out = v;
	return 0;
}

static int priority(struct ctx *c, double v, int *out)
{
	if (v != floor(v) || fabs(v) > 1e6)
		return fail(c, "priority %g: not an integer", v);
	*out = (int)v;
	return 0;
}

static struct lg_req *new_req(struct ctx *c, struct lg_workload *wl)
{
	struct lg_req *r = lg_workload_push(wl);

	if (!r) {
		fail(c, "out of memory");
		return NULL;
	}
	r->line = c->line;
	r->ttft_slo_ms = c->o->ttft_slo_ms;
	r->tpot_slo_ms = c->o->tpot_slo_ms;
	return r;
}

/* --- CSV ------------------------------------------------------------------------------------ */

enum col { C_ARRIVAL, C_TIMESTAMP, C_INPUT, C_OUTPUT, C_PRIO, C_CLASS, C_TTFT, C_TPOT, C_CLIENT };

static const struct {
	const char *name;
	enum col col;
} columns[] = {
	{ "arrival_s", C_ARRIVAL },	{ "timestamp", C_TIMESTAMP },
	{ "input_length", C_INPUT },	{ "ContextTokens", C_INPUT },
	{ "output_length", C_OUTPUT },	{ "GeneratedTokens", C_OUTPUT },
	{ "priority", C_PRIO },		{ "class", C_CLASS },
	{ "ttft_slo_ms", C_TTFT },	{ "tpot_slo_ms", C_TPOT },
	{ "client", C_CLIENT },
};

#define MAX_COLS 16

static const char *col_name(enum col col)
{
	size_t k;

	for (k = 0; k < sizeof(columns) / sizeof(columns[0]); k++)
		if (columns[k].col == col)
			return columns[k].name;
	return "?";
}

static int csv_split(char *line, char **f, int max)
{
	int n = 0;

	for (;;) {
		if (n == max)
			return -1;
		f[n++] = line;
		line = strchr(line, ',');
		if (!line)
			return n;
		*line++ = 0;
	}
}

static int csv_header(struct ctx *c, char *line, enum col *cols, int *nr)
{
	char *f[MAX_COLS];
	unsigned int seen = 0;
	int n = csv_split(line, f, MAX_COLS), i;
	size_t k;

	if (n < 0)
		return fail(c, "more than %d columns", MAX_COLS);
	for (i = 0; i < n; i++) {
		for (k = 0; k < sizeof(columns) / sizeof(columns[0]); k++)
			if (!strcasecmp(f[i], columns[k].name))
				break;
		if (k == sizeof(columns) / sizeof(columns[0]))
			return fail(c, "unknown column \"%s\" (a CSV trace starts with a header: "
				    "arrival_s or timestamp, input_length, output_length, ...)", f[i]);
		if (seen & (1u << columns[k].col))
			return fail(c, "column \"%s\" given twice", f[i]);
		seen |= 1u << columns[k].col;
		cols[i] = columns[k].col;
	}
	if (!(seen & ((1u << C_ARRIVAL) | (1u << C_TIMESTAMP))))
		return fail(c, "no arrival_s or timestamp column");
	if ((seen & (1u << C_ARRIVAL)) && (seen & (1u << C_TIMESTAMP)))
		return fail(c, "both arrival_s and timestamp columns");
	if (!(seen & (1u << C_INPUT)) || !(seen & (1u << C_OUTPUT)))
		return fail(c, "no input_length or output_length column");
	*nr = n;
	return 0;
}

static int csv_line(struct ctx *c, char *line, const enum col *cols, int nr,
		    struct lg_workload *wl)
{
	char *f[MAX_COLS];
	int n = csv_split(line, f, MAX_COLS), i;
	struct lg_req *r;
	double v;

	if (n != nr)
		return fail(c, "%d fields, the header has %d", n < 0 ? MAX_COLS + 1 : n, nr);
	r = new_req(c, wl);
	if (!r)
		return -1;
	for (i = 0; i < n; i++) {
		const char *s = f[i];
		int numeric = cols[i] != C_CLASS && cols[i] != C_CLIENT;

		if (cols[i] == C_TIMESTAMP && !num(s, &v)) {
			r->arrival_s = v / 1000.0;	/* a number: ms, as Mooncake's */
			continue;
		}
		if (cols[i] == C_TIMESTAMP) {
			if (datetime(s, &r->arrival_s))
				return fail(c, "timestamp \"%s\": neither milliseconds nor "
					    "YYYY-MM-DD HH:MM:SS[.frac]", s);
			continue;
		}
		if (numeric && num(s, &v))
			return fail(c, "%s \"%s\": not a number", col_name(cols[i]), s);
		switch (cols[i]) {
		case C_ARRIVAL:
			r->arrival_s = v;
			break;
		case C_INPUT:
			if (length(c, "input_length", v, &r->input_len))
				return -1;
			break;
		case C_OUTPUT:
			if (length(c, "output_length", v, &r->output_len))
				return -1;
			break;
		case C_PRIO:
			if (priority(c, v, &r->priority))
				return -1;
			break;
		case C_TTFT:
			if (slo(c, "ttft_slo_ms", v, &r->ttft_slo_ms))
				return -1;
			break;
		case C_TPOT:
			if (slo(c, "tpot_slo_ms", v, &r->tpot_slo_ms))
				return -1;
			break;
		case C_CLASS:
			if (name(c, "class", s, r->cls))
				return -1;
			break;
		case C_CLIENT:
			if (name(c, "client", s, r->client))
				return -1;
			break;
		case C_TIMESTAMP:
			break;
		}
	}
	return 0;
}

/* --- JSONL ---------------------------------------------------------------------------------- */

static int jnum(struct ctx *c, json_object *o, const char *key, int *have, double *v)
{
	json_object *x;

	*have = json_object_object_get_ex(o, key, &x);
	if (!*have)
		return 0;
	if (!json_object_is_type(x, json_type_int) && !json_object_is_type(x, json_type_double))
		return fail(c, "\"%s\": not a number", key);
	*v = json_object_get_double(x);
	if (!isfinite(*v))
		return fail(c, "\"%s\": not a finite number", key);
	return 0;
}

static int jstr(struct ctx *c, json_object *o, const char *key, char *out)
{
	json_object *x;

	if (!json_object_object_get_ex(o, key, &x))
		return 0;
	if (!json_object_is_type(x, json_type_string))
		return fail(c, "\"%s\": not a string", key);
	return name(c, key, json_object_get_string(x), out);
}

static int jhash_ids(struct ctx *c, json_object *o, struct lg_req *r)
{
	json_object *x;
	size_t i, n;

	if (!json_object_object_get_ex(o, "hash_ids", &x))
		return 0;
	if (!json_object_is_type(x, json_type_array))
		return fail(c, "\"hash_ids\": not an array");
	n = json_object_array_length(x);
	r->hash_ids = calloc(n ? n : 1, sizeof(*r->hash_ids));
	if (!r->hash_ids)
		return fail(c, "out of memory");
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(x, i);
		int64_t v;

		if (!json_object_is_type(e, json_type_int))
			return fail(c, "\"hash_ids\"[%zu]: not an integer", i);
		v = json_object_get_int64(e);
		if (v < 0 || v > UINT32_MAX)
			return fail(c, "\"hash_ids\"[%zu] %lld: out of range", i, (long long)v);
		r->hash_ids[i] = (uint32_t)v;
	}
	r->nr_hash_ids = n;
	return 0;
}

static int json_fields(struct ctx *c, json_object *o, struct lg_req *r)
{
	int ha, ht, hi, ho, hp, h;
	double a, t, in, out, p, v;
	json_object *x;

	if (jnum(c, o, "arrival_s", &ha, &a) || jnum(c, o, "timestamp", &ht, &t) ||
	    jnum(c, o, "input_length", &hi, &in) || jnum(c, o, "output_length", &ho, &out) ||
	    jnum(c, o, "priority", &hp, &p))
		return -1;
	if (ha == ht)
		return fail(c, ha ? "both \"arrival_s\" and \"timestamp\""
			    : "no \"arrival_s\" (seconds) or \"timestamp\" (milliseconds)");
	r->arrival_s = ha ? a : t / 1000.0;
	if (!ho)
		return fail(c, "no \"output_length\"");
	if (length(c, "output_length", out, &r->output_len))
		return -1;
	if (json_object_object_get_ex(o, "prompt", &x)) {
		if (!json_object_is_type(x, json_type_string))
			return fail(c, "\"prompt\": not a string");
		r->prompt = strdup(json_object_get_string(x));
		if (!r->prompt)
			return fail(c, "out of memory");
		if (!*r->prompt)
			return fail(c, "\"prompt\": empty");
		r->input_len = strlen(r->prompt);
		if (hi && in != r->input_len)
			return fail(c, "\"input_length\" %g but the prompt has %u bytes", in,
				    r->input_len);
	} else if (!hi) {
		return fail(c, "no \"prompt\" or \"input_length\"");
	} else if (length(c, "input_length", in, &r->input_len)) {
		return -1;
	}
	if (hp && priority(c, p, &r->priority))
		return -1;
	if (jnum(c, o, "ttft_slo_ms", &h, &v) || (h && slo(c, "ttft_slo_ms", v, &r->ttft_slo_ms)))
		return -1;
	if (jnum(c, o, "tpot_slo_ms", &h, &v) || (h && slo(c, "tpot_slo_ms", v, &r->tpot_slo_ms)))
		return -1;
	if (jstr(c, o, "class", r->cls) || jstr(c, o, "client", r->client))
		return -1;
	return jhash_ids(c, o, r);
}

static int json_line(struct ctx *c, const char *line, struct lg_workload *wl)
{
	enum json_tokener_error je;
	json_object *o = json_tokener_parse_verbose(line, &je);
	struct lg_req *r;
	int ret;

	if (!o)
		return fail(c, "not JSON: %s", json_tokener_error_desc(je));
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(c, "not a JSON object");
	}
	r = new_req(c, wl);
	ret = r ? json_fields(c, o, r) : -1;
	json_object_put(o);
	return ret;
}

/* --- the whole trace ------------------------------------------------------------------------ */

static int by_arrival(const void *a, const void *b)
{
	const struct lg_req *x = a, *y = b;

	if (x->arrival_s != y->arrival_s)
		return x->arrival_s < y->arrival_s ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void finish(const struct lg_trace_opts *o, struct lg_workload *wl)
{
	double t0;
	size_t i;

	qsort(wl->req, wl->n, sizeof(*wl->req), by_arrival);
	if (o->limit && wl->n > o->limit) {
		for (i = o->limit; i < wl->n; i++) {
			free(wl->req[i].prompt);
			free(wl->req[i].hash_ids);
		}
		wl->n = o->limit;
	}
	t0 = wl->n ? wl->req[0].arrival_s : 0;
	for (i = 0; i < wl->n; i++) {
		struct lg_req *r = &wl->req[i];

		r->arrival_s = (r->arrival_s - t0) / (o->time_scale > 0 ? o->time_scale : 1);
		if (o->max_output && r->output_len > o->max_output)
			r->output_len = o->max_output;
		if (o->max_input && r->input_len > o->max_input && !r->prompt)
			r->input_len = o->max_input;
		if (o->max_input && r->prompt && r->input_len > o->max_input) {
			r->prompt[o->max_input] = 0;
			r->input_len = o->max_input;
		}
	}
}

/* A reader: the file, its line buffer, the format its first line said. */
struct lg_trace_iter {
	struct ctx c;
	FILE *f;
	char *line;
	size_t cap;
	int kind, nr_cols;		/* kind 0: not known yet, 1: CSV, 2: JSONL */
	enum col cols[MAX_COLS];
	struct lg_workload one;		/* lg_trace_next(): the line's request */
	double t0, last;
	size_t made;
};

/* The next line's request pushed on @wl (a CSV header taken): 1, 0 at the end, -1 said. */
static int read_line(struct lg_trace_iter *it, struct lg_workload *wl)
{
	ssize_t len;

	while ((len = getline(&it->line, &it->cap, it->f)) >= 0) {
		char *s = it->line;

		it->c.line++;
		while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
			s[--len] = 0;
		if (strlen(s) != (size_t)len)
			return fail(&it->c, "a NUL byte in the line");
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			continue;
		if (!it->kind) {
			it->kind = *s == '{' || *s == '[' ? 2 : 1;
			if (it->kind == 1) {
				if (csv_header(&it->c, s, it->cols, &it->nr_cols))
					return -1;
				continue;
			}
		}
		if (it->kind == 1 ? csv_line(&it->c, s, it->cols, it->nr_cols, wl) :
		    json_line(&it->c, s, wl))
			return -1;
		return 1;
	}
	if (ferror(it->f)) {
		it->c.line = 0;
		return fail(&it->c, "read error");
	}
	return 0;
}

int lg_trace_load(const char *path, const struct lg_trace_opts *o, struct lg_workload *wl,
		  char *err, size_t errlen)
{
	struct lg_trace_iter it = { .c = { .path = path, .err = err, .errlen = errlen, .o = o } };
	int ret;

	it.f = fopen(path, "r");
	if (!it.f)
		return fail(&it.c, "%s", strerror(errno));
	while ((ret = read_line(&it, wl)) > 0)
		;
	if (!ret && !wl->n) {
		it.c.line = 0;
		ret = fail(&it.c, "no requests");
	}
	free(it.line);
	fclose(it.f);
	if (ret) {
		lg_workload_free(wl);
		return -1;
	}
	finish(o, wl);
	return 0;
}

struct lg_trace_iter *lg_trace_open(const char *path, const struct lg_trace_opts *o, char *err,
				    size_t errlen)
{
	struct lg_trace_iter *it = calloc(1, sizeof(*it));
	struct ctx c = { .path = path, .err = err, .errlen = errlen, .o = o };

	if (!it) {
		fail(&c, "out of memory");
		return NULL;
	}
	it->c = c;
	it->f = fopen(path, "r");
	if (!it->f) {
		fail(&c, "%s", strerror(errno));
		free(it);
		return NULL;
	}
	return it;
}

int lg_trace_next(struct lg_trace_iter *it, struct lg_req *r)
{
	const struct lg_trace_opts *o = it->c.o;
	struct lg_req *q;
	int ret;

	if (o->limit && it->made == o->limit)
		return 0;
	ret = read_line(it, &it->one);
	if (!ret && !it->made) {
		it->c.line = 0;
		ret = fail(&it->c, "no requests");
	}
	if (ret <= 0) {
		lg_workload_free(&it->one);
		return ret;
	}
	q = &it->one.req[0];
	if (it->made && q->arrival_s < it->last) {
		lg_workload_free(&it->one);
		return fail(&it->c, "arrives before the line before it (--stream reads a trace "
			    "sorted by arrival, line by line)");
	}
	if (!it->made)
		it->t0 = q->arrival_s;
	it->last = q->arrival_s;
	/* What finish() does to the whole trace. */
	q->arrival_s = (q->arrival_s - it->t0) / (o->time_scale > 0 ? o->time_scale : 1);
	if (o->max_output && q->output_len > o->max_output)
		q->output_len = o->max_output;
	if (o->max_input && q->input_len > o->max_input && !q->prompt)
		q->input_len = o->max_input;
	if (o->max_input && q->prompt && q->input_len > o->max_input) {
		q->prompt[o->max_input] = 0;
		q->input_len = o->max_input;
	}
	*r = *q;
	it->one.n = 0;		/* its prompt and hash ids are the caller's now */
	it->made++;
	return 1;
}

void lg_trace_close(struct lg_trace_iter *it)
{
	if (!it)
		return;
	lg_workload_free(&it->one);
	free(it->line);
	fclose(it->f);
	free(it);
}
