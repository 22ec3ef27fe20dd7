// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - the report: a table per class and overall, or one JSON object. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "server.h"
#include "stats.h"

/* The classes, in the order they first appear. */
static size_t classes(const struct lg_workload *wl, const char **out, size_t max)
{
	size_t n = 0, i, k;

	for (i = 0; i < wl->n; i++) {
		for (k = 0; k < n; k++)
			if (!strcmp(out[k], wl->req[i].cls))
				break;
		if (k == n && n < max)
			out[n++] = wl->req[i].cls;
	}
	return n;
}

static void count_errors(const struct lg_workload *wl, const struct lg_result *res,
			 struct lg_errors *e)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; i < wl->n; i++) {
		const struct lg_result *r = &res[i];

		if (r->err) {
			e->kind[r->err]++;
			if (!e->kmsg[r->err])
				e->kmsg[r->err] = r->msg;
		} else if (r->status != 200 && r->status > 0 && r->status < 1000) {
			e->status[r->status]++;
			if (!e->msg[r->status])
				e->msg[r->status] = r->msg;
		}
	}
}

#define MAX_CLS 64

/* How late the latest request was sent against its arrival time (the open loop's fidelity). */
static double max_late_ms(const struct lg_workload *wl, const struct lg_result *res)
{
	double m = 0;
	size_t i;

	for (i = 0; i < wl->n; i++)
		if (res[i].late_ms > m)
			m = res[i].late_ms;
	return m;
}

/* A value, or "-" where there is none (no completed request). */
static void cell(FILE *f, int width, int prec, double v)
{
	if (isfinite(v))
		fprintf(f, " %*.*f", width, prec, v);
	else
		fprintf(f, " %*s", width, "-");
}

static void table_row(FILE *f, const char *name, const struct lg_summary *s)
{
	int k;

	fprintf(f, "%-10s %6zu %6zu %6zu", name, s->requests, s->completed, s->failed);
	for (k = 0; k < LG_NR_PCT; k++)
		cell(f, 8, 1, s->ttft[k]);
	for (k = 0; k < LG_NR_PCT; k++)
		cell(f, k ? 7 : 8, 2, s->tpot[k]);
	for (k = 0; k < LG_NR_PCT; k++)
		cell(f, k ? 7 : 8, 2, s->itl[k]);
	cell(f, 8, 2, s->itl_max);
	for (k = 0; k < LG_NR_PCT; k++)
		cell(f, 8, 1, s->e2e[k]);
	cell(f, 6, 1, 100 * s->attainment);
	fputc('%', f);
	cell(f, 8, 3, s->goodput);
	fputc('\n', f);
}

static int fail_width(int k)
{
	int w = strlen(lg_fail_names[k]);

	return w < 6 ? 6 : w;
}

/* The failed requests of a class by cause (see run.h). */
static void fail_row(FILE *f, const char *name, const struct lg_summary *s)
{
	int k;

	fprintf(f, "%-10s %6zu", name, s->failed);
	for (k = 1; k < LG_FAIL_NR; k++)
		fprintf(f, " %*zu", fail_width(k), s->fail[k]);
	fputc('\n', f);
}

static void fail_table(FILE *f, const struct lg_report_sums *r)
{
	size_t i;
	int k;

	fprintf(f, "%-10s %6s", "failures", "failed");
	for (k = 1; k < LG_FAIL_NR; k++)
		fprintf(f, " %*s", fail_width(k), lg_fail_names[k]);
	fputc('\n', f);
	for (i = 0; i < r->nr_cls; i++)
		fail_row(f, r->names[i], &r->cls[i]);
	fail_row(f, "all", r->all);
}

void lg_report_table_sums(FILE *f, const struct lg_report_sums *r,
			  const struct lg_digest_check *dc, const struct lg_server *srv)
{
	const struct lg_summary *all = r->all;
	const struct lg_errors *e = r->errors;
	double duration_s = r->duration_s;
	size_t i;

	fprintf(f, "%zu requests in %.3f s: %zu completed (%.3f/s), %zu met their SLO "
		"(%.1f%%), goodput %.3f requests/s\n", all->requests, duration_s, all->completed,
		all->throughput, all->met, 100 * all->attainment, all->goodput);
	fprintf(f, "%-10s %6s %6s %6s %8s %8s %8s %8s %7s %7s %8s %7s %7s %8s %8s %8s %8s %7s "
		"%8s\n", "class", "reqs", "done", "failed", "ttft p50", "p90", "p99", "tpot p50",
		"p90", "p99", "itl p50", "p90", "p99", "max", "e2e p50", "p90", "p99", "slo",
		"goodput");
	for (i = 0; i < r->nr_cls; i++)
		table_row(f, r->names[i], &r->cls[i]);
	table_row(f, "all", all);
	fprintf(f, "(latencies in ms: tpot over each completed request's mean, itl over every gap "
		"between tokens, pooled; goodput in requests/s meeting their SLO; requests sent at "
		"most %.1f ms after their arrival times)\n", r->max_late_ms);
	if (all->failed)
		fail_table(f, r);
	if (all->reported)
		fprintf(f, "preemptions: %lld over %zu of %zu requests reporting them\n",
			all->preemptions, all->preempted, all->reported);
	if (all->recompute_tax >= 0)
		fprintf(f, "recompute tax: %lld recomputed tokens over %lld (%.1f%%)\n",
			all->recomputed, all->tax_tokens, 100 * all->recompute_tax);
	if (e) {
		for (i = 0; i < 1000; i++)
			if (e->status[i])
				fprintf(f, "HTTP %zu: %zu requests (%s)\n", i, e->status[i],
					e->msg[i] && *e->msg[i] ? e->msg[i] : "no message");
		for (i = 1; i < LG_HTTP_NR; i++)
			if (e->kind[i])
				fprintf(f, "%s errors: %zu requests (%s)\n", lg_http_err_names[i],
					e->kind[i], e->kmsg[i]);
	}
	if (dc && dc->mode == 1)
		fprintf(f, "digests: recorded for %zu requests\n", dc->recorded);
	if (dc && dc->mode == 2)
		fprintf(f, "digests: %zu compared, %zu mismatched, %zu not in the file%s%s\n",
			dc->compared, dc->mismatched, dc->missing, *dc->first ? "; first: " : "",
			dc->first);
	if (srv)
		lg_server_table(f, srv, duration_s);
}

/* The summaries of every class and of all, the errors counted: what both reports print. */
static int sums_make(const struct lg_workload *wl, const struct lg_result *res,
		     double duration_s, struct lg_report_sums *r, const char **names,
		     struct lg_summary *all)
{
	struct lg_summary *cls;
	struct lg_errors *e = calloc(1, sizeof(*e));
	size_t i;

	memset(r, 0, sizeof(*r));
	r->nr_cls = classes(wl, names, MAX_CLS);
	cls = calloc(r->nr_cls + 1, sizeof(*cls));
	if (!cls) {
		free(e);
		return -1;
	}
	lg_summarize(wl, res, NULL, duration_s, all);
	for (i = 0; i < r->nr_cls; i++)
		lg_summarize(wl, res, names[i], duration_s, &cls[i]);
	if (e)
		count_errors(wl, res, e);
	r->names = names;
	r->cls = cls;
	r->all = all;
	r->duration_s = duration_s;
	r->max_late_ms = max_late_ms(wl, res);
	r->errors = e;
	return 0;
}

static void sums_free(struct lg_report_sums *r)
{
	free((void *)r->cls);
	free((void *)r->errors);
}

void lg_report_table(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		     double duration_s, const struct lg_digest_check *dc,
		     const struct lg_server *srv)
{
	const char *names[MAX_CLS];
	struct lg_report_sums r;
	struct lg_summary all;

	if (sums_make(wl, res, duration_s, &r, names, &all))
		return;
	lg_report_table_sums(f, &r, dc, srv);
	sums_free(&r);
}

static json_object *num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : json_object_new_null();
}

static json_object *pct_obj(const double *v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "p50", num(v[0]));
	json_object_object_add(o, "p90", num(v[1]));
	json_object_object_add(o, "p99", num(v[2]));
	return o;
}

static json_object *fail_obj(const struct lg_summary *s)
{
	json_object *o = json_object_new_object();
	int k;

	for (k = 1; k < LG_FAIL_NR; k++)
		json_object_object_add(o, lg_fail_names[k], json_object_new_int64(s->fail[k]));
	return o;
}

static json_object *summary_obj(const struct lg_summary *s)
{
	json_object *o = json_object_new_object(), *itl;

	json_object_object_add(o, "requests", json_object_new_int64(s->requests));
	json_object_object_add(o, "completed", json_object_new_int64(s->completed));
	json_object_object_add(o, "failed", json_object_new_int64(s->failed));
	json_object_object_add(o, "failures", fail_obj(s));
	json_object_object_add(o, "slo_met", json_object_new_int64(s->met));
	json_object_object_add(o, "slo_attainment", num(s->attainment));
	json_object_object_add(o, "goodput_rps", num(s->goodput));
	json_object_object_add(o, "throughput_rps", num(s->throughput));
	json_object_object_add(o, "ttft_ms", pct_obj(s->ttft));
	json_object_object_add(o, "tpot_ms", pct_obj(s->tpot));
	itl = pct_obj(s->itl);
	json_object_object_add(itl, "max", num(s->itl_max));
	json_object_object_add(o, "itl_ms", itl);
	json_object_object_add(o, "itl_gaps", json_object_new_int64(s->nr_itl));
	json_object_object_add(o, "e2e_ms", pct_obj(s->e2e));
	if (s->reported) {
		json_object_object_add(o, "preemptions", json_object_new_int64(s->preemptions));
		json_object_object_add(o, "preempted_requests", json_object_new_int64(s->preempted));
	}
	if (s->recompute_tax >= 0) {
		json_object_object_add(o, "recomputed_tokens", json_object_new_int64(s->recomputed));
		json_object_object_add(o, "recompute_tax", num(s->recompute_tax));
	}
	return o;
}

void lg_report_json_sums(FILE *f, const struct lg_report_sums *r,
			 const struct lg_digest_check *dc, const struct lg_server *srv)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();
	json_object *h = json_object_new_object(), *t = json_object_new_object();
	const struct lg_errors *e = r->errors;
	char key[16];
	size_t i;

	json_object_object_add(o, "duration_s", num(r->duration_s));
	json_object_object_add(o, "max_send_lateness_ms", num(r->max_late_ms));
	json_object_object_add(o, "overall", summary_obj(r->all));
	for (i = 0; i < r->nr_cls; i++)
		json_object_object_add(c, r->names[i], summary_obj(&r->cls[i]));
	json_object_object_add(o, "classes", c);
	if (e) {
		for (i = 0; i < 1000; i++) {
			if (!e->status[i])
				continue;
			snprintf(key, sizeof(key), "%zu", i);
			json_object_object_add(h, key, json_object_new_int64(e->status[i]));
		}
		for (i = 1; i < LG_HTTP_NR; i++)
			if (e->kind[i])
				json_object_object_add(t, lg_http_err_names[i],
						       json_object_new_int64(e->kind[i]));
	}
	json_object_object_add(o, "http_errors", h);
	json_object_object_add(o, "transport_errors", t);
	if (dc && dc->mode) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "mode", json_object_new_string(dc->mode == 1 ?
									  "recorded" : "compared"));
		json_object_object_add(d, "recorded", json_object_new_int64(dc->recorded));
		json_object_object_add(d, "compared", json_object_new_int64(dc->compared));
		json_object_object_add(d, "mismatched", json_object_new_int64(dc->mismatched));
		json_object_object_add(d, "missing", json_object_new_int64(dc->missing));
		json_object_object_add(o, "digests", d);
	}
	if (srv)
		json_object_object_add(o, "server", lg_server_json(srv, r->duration_s));
	if (r->estimated)
		json_object_object_add(o, "estimated", json_object_new_boolean(1));
	fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

void lg_report_json(FILE *f, const struct lg_workload *wl, const struct lg_result *res,
		    double duration_s, const struct lg_digest_check *dc,
		    const struct lg_server *srv)
{
	const char *names[MAX_CLS];
	struct lg_report_sums r;
	struct lg_summary all;

	if (sums_make(wl, res, duration_s, &r, names, &all))
		return;
	lg_report_json_sums(f, &r, dc, srv);
	sums_free(&r);
}
