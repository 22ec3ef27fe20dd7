// SPDX-License-Identifier: MIT
/* kvaccel-loadgen - the metrics (see stats.h). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

const double lg_pcts[LG_NR_PCT] = { 50, 90, 99 };

double lg_percentile(const double *sorted, size_t n, double p)
{
	double rank, frac;
	size_t lo;

	if (!n)
		return NAN;
	rank = p / 100.0 * (n - 1);
	lo = (size_t)floor(rank);
	if (lo + 1 >= n)
		return sorted[n - 1];
	frac = rank - lo;
	return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

int lg_meets_slo(const struct lg_req *q, const struct lg_result *r)
{
	if (!r->ok || r->fail)
		return 0;
	if (q->ttft_slo_ms > 0 && r->ttft_ms > q->ttft_slo_ms)
		return 0;
	if (q->tpot_slo_ms > 0 && r->tokens > 1 && r->tpot_ms > q->tpot_slo_ms)
		return 0;
	return 1;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void pcts(double *v, size_t n, double *out)
{
	int k;

	qsort(v, n, sizeof(*v), cmp);
	for (k = 0; k < LG_NR_PCT; k++)
		out[k] = lg_percentile(v, n, lg_pcts[k]);
}

static void swap(double *a, double *b)
{
	double t = *a;

	*a = *b;
	*b = t;
}

/*
 * The k-th smallest of v[0..n) (quickselect, three-way partitions: equal values, common among
 * gaps, cost nothing): v reordered so that nothing before k is larger and nothing after smaller.
 */
static double kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi - 1], piv;
		size_t lt = lo, i = lo, gt = hi;

		piv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
		while (i < gt) {
			if (v[i] < piv)
				swap(&v[lt++], &v[i++]);
			else if (v[i] > piv)
				swap(&v[i], &v[--gt]);
			else
				i++;
		}
		if (k < lt)
			hi = lt;
		else if (k >= gt)
			lo = gt;
		else
			return piv;
	}
	return v[k];
}

/*
 * pcts() without the sort, for millions of values: each percentile from the order statistics
 * at its ranks (the same values lg_percentile() reads from a sorted array), in O(n).
 */
static void select_pcts(double *v, size_t n, double *out)
{
	size_t base = 0, lo, i;
	double rank, a, b;
	int k;

	for (k = 0; k < LG_NR_PCT; k++) {
		if (!n) {
			out[k] = NAN;
			continue;
		}
		rank = lg_pcts[k] / 100.0 * (n - 1);
		lo = (size_t)floor(rank);
		if (lo + 1 >= n) {
			for (a = v[base], i = base; i < n; i++)
				a = v[i] > a ? v[i] : a;
			out[k] = a;
			continue;
		}
		/* The ranks grow: everything before base is at most v[base - 1]. */
		a = kth(v + base, n - base, lo - base);
		for (b = v[lo + 1], i = lo + 1; i < n; i++)
			b = v[i] < b ? v[i] : b;
		out[k] = a + (rank - lo) * (b - a);
		base = lo;
	}
}

/*
 * Every gap between tokens of every request of class cls (NULL: all), failed ones included: a
 * stream cut after a stall shows its stall. The percentiles and the largest into s.
 */
static void pooled_itl(const struct lg_workload *wl, const struct lg_result *res, const char *cls,
		       struct lg_summary *s)
{
	size_t i, n = 0;
	uint32_t k;
	double *v;

	for (i = 0; i < wl->n; i++)
		if (!cls || !strcmp(wl->req[i].cls, cls))
			n += res[i].gaps_ms ? res[i].nr_gaps : 0;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return;
	for (n = 0, i = 0; i < wl->n; i++)
		if ((!cls || !strcmp(wl->req[i].cls, cls)) && res[i].gaps_ms)
			for (k = 0; k < res[i].nr_gaps; k++)
				v[n++] = res[i].gaps_ms[k];
	s->nr_itl = n;
	select_pcts(v, n, s->itl);
	s->itl_max = NAN;
	for (i = 0; i < n; i++)
		if (!(v[i] <= s->itl_max))
			s->itl_max = v[i];
	free(v);
}

bool lg_summary_count(struct lg_summary *s, const struct lg_req *q, const struct lg_result *r)
{
	s->requests++;
	if (!r->ok || r->fail) {
		s->failed++;
		s->fail[r->fail]++;
		return false;
	}
	s->completed++;
	if (r->tokens > 1)
		s->nr_tpot++;
	s->met += lg_meets_slo(q, r);
	if (r->preemptions >= 0) {
		s->reported++;
		s->preemptions += r->preemptions;
		s->preempted += r->preemptions > 0;
	}
	if (r->recomputed >= 0 && r->prompt_tokens >= 0 && r->completion_tokens >= 0) {
		s->recompute_reported++;
		s->recomputed += r->recomputed;
		s->tax_tokens += r->prompt_tokens + r->completion_tokens;
	}
	return true;
}

void lg_summarize(const struct lg_workload *wl, const struct lg_result *res, const char *cls,
		  double duration_s, struct lg_summary *s)
{
	double *ttft = calloc(wl->n + 1, sizeof(double)), *tpot = calloc(wl->n + 1, sizeof(double));
	double *e2e = calloc(wl->n + 1, sizeof(double));
	size_t i;

	memset(s, 0, sizeof(*s));
	s->recompute_tax = -1;
	s->itl_max = NAN;
	for (i = 0; i < LG_NR_PCT; i++)
		s->itl[i] = NAN;
	if (!ttft || !tpot || !e2e)
		goto out;
	for (i = 0; i < wl->n; i++) {
		const struct lg_result *r = &res[i];

		if (cls && strcmp(wl->req[i].cls, cls))
			continue;
		if (!lg_summary_count(s, &wl->req[i], r))
			continue;
		ttft[s->completed - 1] = r->ttft_ms;
		e2e[s->completed - 1] = r->e2e_ms;
		if (r->tokens > 1)
			tpot[s->nr_tpot - 1] = r->tpot_ms;
	}
	pcts(ttft, s->completed, s->ttft);
	pcts(tpot, s->nr_tpot, s->tpot);
	pcts(e2e, s->completed, s->e2e);
	pooled_itl(wl, res, cls, s);
	s->attainment = s->requests ? (double)s->met / s->requests : NAN;
	s->goodput = duration_s > 0 ? s->met / duration_s : NAN;
	s->throughput = duration_s > 0 ? s->completed / duration_s : NAN;
	if (s->recompute_reported && s->tax_tokens)
		s->recompute_tax = (double)s->recomputed / s->tax_tokens;
out:
	free(ttft);
	free(tpot);
	free(e2e);
}
