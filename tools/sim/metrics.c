// SPDX-License-Identifier: MIT
/* kvaccel-sim - fairness, throughput and the CSV time series (see metrics.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"

struct client {
	const char *name;
	double service, time_s;
};

/* Prompt tokens count once the request got a token (its prompt was computed). */
static double weighted(const struct lg_req *q, const struct lg_result *r)
{
	return r->tokens ? q->input_len + 2.0 * r->tokens : 0;
}

/* When a request left the system: its last token, at once if refused, never (INFINITY). */
static double end_of(const struct lg_result *r)
{
	if (r->end_s > 0)
		return r->end_s;
	if (r->fail == LG_FAIL_HTTP || (r->ok && !r->fail))
		return r->start_s;
	return INFINITY;
}

double sim_jain(const struct lg_workload *wl, const struct lg_result *res, size_t *nr_clients)
{
	struct client *c = calloc(wl->n + 1, sizeof(*c));
	double sum = 0, sq = 0;
	size_t n = 0, i, k, used = 0;

	if (nr_clients)
		*nr_clients = 0;
	if (!c)
		return NAN;
	for (i = 0; i < wl->n; i++) {
		const struct lg_req *q = &wl->req[i];
		double end = res[i].end_s > 0 ? res[i].end_s : res[i].start_s;

		for (k = 0; k < n && strcmp(c[k].name, q->client); k++)
			;
		if (k == n)
			c[n++].name = q->client;
		c[k].service += weighted(q, &res[i]);
		if (end > res[i].start_s)
			c[k].time_s += end - res[i].start_s;
	}
	for (k = 0; k < n; k++) {
		double x;

		if (!(c[k].time_s > 0))
			continue;
		x = c[k].service / c[k].time_s;
		sum += x;
		sq += x * x;
		used++;
	}
	free(c);
	if (nr_clients)
		*nr_clients = used;
	return used && sq > 0 ? sum * sum / (used * sq) : 1;
}

void sim_tokens(const struct lg_workload *wl, const struct lg_result *res,
		unsigned long long *output, unsigned long long *all)
{
	size_t i;

	*output = *all = 0;
	for (i = 0; i < wl->n; i++) {
		*output += res[i].tokens;
		if (res[i].tokens)
			*all += wl->req[i].input_len + res[i].tokens;
	}
}

struct row {
	size_t arrivals, first, done, in_flight, tokens, met, nr_ttft, ttft_cap;
	double *ttft;
};

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static size_t slot(double t, double interval_s, size_t nr)
{
	double k = floor(t / interval_s);

	if (!(k >= 0))
		return 0;
	return k >= nr ? nr - 1 : (size_t)k;
}

static int add_ttft(struct row *w, double ms)
{
	if (w->nr_ttft == w->ttft_cap) {
		size_t cap = w->ttft_cap ? 2 * w->ttft_cap : 16;
		double *p = realloc(w->ttft, cap * sizeof(*p));

		if (!p)
			return -1;
		w->ttft = p;
		w->ttft_cap = cap;
	}
	w->ttft[w->nr_ttft++] = ms;
	return 0;
}

/* The last instant anything happened: a request's end or last token, or its arrival. */
static double last_event(const struct lg_workload *wl, const struct lg_result *res)
{
	double last = 0, t;
	size_t i;

	for (i = 0; i < wl->n; i++) {
		t = isfinite(end_of(&res[i])) ? end_of(&res[i]) : res[i].start_s;
		if (res[i].tokens) {
			double tok = res[i].start_s + res[i].ttft_ms / 1e3;
			uint32_t k;

			for (k = 0; k < res[i].nr_gaps; k++)
				tok += res[i].gaps_ms[k] / 1e3;
			if (tok > t)
				t = tok;
		}
		if (t > last)
			last = t;
	}
	return last;
}

int sim_csv_write(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		  double interval_s)
{
	double last = last_event(wl, res);
	size_t nr = (size_t)floor(last / interval_s) + 1, i, k;
	struct row *w;
	int ret = 0;

	if (nr > (1u << 24))
		return -1;
	w = calloc(nr, sizeof(*w));
	if (!w)
		return -1;
	for (i = 0; i < wl->n && !ret; i++) {
		const struct lg_result *r = &res[i];
		struct row *a = &w[slot(r->start_s, interval_s, nr)];
		double end = end_of(r), tok;
		size_t from, to;

		a->arrivals++;
		a->met += lg_meets_slo(&wl->req[i], r);
		if (r->ok && !r->fail)
			w[slot(end, interval_s, nr)].done++;
		/* In flight at the end of each interval from its arrival's to its end's. */
		from = slot(r->start_s, interval_s, nr);
		to = isfinite(end) ? slot(end, interval_s, nr) : nr;
		for (k = from; k < to; k++)
			if ((k + 1) * interval_s > r->start_s)
				w[k].in_flight++;
		if (!r->tokens)
			continue;
		if (add_ttft(a, r->ttft_ms))
			ret = -1;
		tok = r->start_s + r->ttft_ms / 1e3;
		w[slot(tok, interval_s, nr)].first++;
		w[slot(tok, interval_s, nr)].tokens++;
		for (k = 0; k < r->nr_gaps; k++) {
			tok += r->gaps_ms[k] / 1e3;
			w[slot(tok, interval_s, nr)].tokens++;
		}
	}
	if (!ret)
		fprintf(f, "t_s,arrivals,first_tokens,completions,in_flight,output_tokens_per_s,"
			"ttft_p50_ms,ttft_p99_ms,slo_attainment\n");
	for (k = 0; k < nr && !ret; k++) {
		fprintf(f, "%.3f,%zu,%zu,%zu,%zu,%.1f,", k * interval_s, w[k].arrivals, w[k].first,
			w[k].done, w[k].in_flight, w[k].tokens / interval_s);
		if (w[k].nr_ttft) {
			qsort(w[k].ttft, w[k].nr_ttft, sizeof(double), cmp);
			fprintf(f, "%.3f,%.3f,", lg_percentile(w[k].ttft, w[k].nr_ttft, 50),
				lg_percentile(w[k].ttft, w[k].nr_ttft, 99));
		} else {
			fprintf(f, ",,");
		}
		if (w[k].arrivals)
			fprintf(f, "%.4f\n", (double)w[k].met / w[k].arrivals);
		else
			fprintf(f, "\n");
	}
	for (k = 0; k < nr; k++)
		free(w[k].ttft);
	free(w);
	if (!ret && ferror(f))
		ret = -1;
	return ret;
}

int sim_requests_csv(FILE *f, const struct lg_workload *wl, const struct lg_result *res)
{
	size_t i;

	fprintf(f, "index,class,client,arrival_s,ok,ttft_ms,tpot_ms,e2e_ms,slo_met\n");
	for (i = 0; i < wl->n; i++) {
		const struct lg_result *r = &res[i];
		int ok = r->ok && !r->fail;

		fprintf(f, "%zu,%s,%s,%.6f,%d,", i, wl->req[i].cls, wl->req[i].client,
			wl->req[i].arrival_s, ok);
		if (r->tokens)
			fprintf(f, "%.3f,%.3f,%.3f,", r->ttft_ms, r->tpot_ms, r->e2e_ms);
		else
			fprintf(f, ",,,");
		fprintf(f, "%d\n", lg_meets_slo(&wl->req[i], r));
	}
	return ferror(f) ? -1 : 0;
}

/* @path written by @write (0: the time series, 1: the requests), said as @opt when it fails. */
static int to_file(const char *opt, const char *path, int what, double interval_s,
		   const struct lg_workload *wl, const struct lg_result *res)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f) {
		fprintf(stderr, "kvaccel-sim: %s %s: %s\n", opt, path, strerror(errno));
		return 1;
	}
	ret = what ? sim_requests_csv(f, wl, res) : sim_csv_write(f, wl, res, interval_s);
	if (fclose(f) || ret) {
		fprintf(stderr, "kvaccel-sim: %s %s: could not be written\n", opt, path);
		return 1;
	}
	return 0;
}

int sim_csv_file(const char *path, double interval_s, const struct lg_workload *wl,
		 const struct lg_result *res)
{
	return to_file("--csv", path, 0, interval_s, wl, res);
}

int sim_requests_csv_file(const char *path, const struct lg_workload *wl,
			  const struct lg_result *res)
{
	return to_file("--requests-csv", path, 1, 0, wl, res);
}
