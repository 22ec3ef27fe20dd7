// SPDX-License-Identifier: MIT
/* kvaccel-sim --stream - the report folded as requests end (see stream.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define SUB	(1u << SIM_HIST_SUB_BITS)

/* Bucket 0: below 2^EMIN (0 included); then SUB an octave; the last: 2^EMAX and above. */
static size_t bucket(double v)
{
	uint64_t bits;
	int e;

	if (!(v > 0))
		return 0;
	memcpy(&bits, &v, sizeof(bits));
	e = (int)((bits >> 52) & 0x7ff) - 1023;
	if (e < SIM_HIST_EMIN)
		return 0;
	if (e >= SIM_HIST_EMAX)
		return SIM_HIST_NR - 1;
	return 1 + ((size_t)(e - SIM_HIST_EMIN) << SIM_HIST_SUB_BITS) +
	       (size_t)((bits >> (52 - SIM_HIST_SUB_BITS)) & (SUB - 1));
}

/* A bucket's middle, within the values seen. */
static double middle(const struct sim_hist *h, size_t b)
{
	double v;

	if (b == 0)
		return h->min;
	if (b == SIM_HIST_NR - 1)
		return h->max;
	b--;
	v = ldexp(1 + ((b & (SUB - 1)) + 0.5) / SUB,
		  (int)(b >> SIM_HIST_SUB_BITS) + SIM_HIST_EMIN);
	return v < h->min ? h->min : v > h->max ? h->max : v;
}

int sim_hist_add(struct sim_hist *h, double v)
{
	if (!h->b) {
		h->b = calloc(SIM_HIST_NR, sizeof(*h->b));
		if (!h->b)
			return -1;
	}
	if (!h->n || v < h->min)
		h->min = v;
	if (!h->n || v > h->max)
		h->max = v;
	h->n++;
	h->b[bucket(v)]++;
	return 0;
}

/* The value of rank @k (0-based) of the sorted values: its bucket's middle. */
static double rank_value(const struct sim_hist *h, uint64_t k)
{
	uint64_t seen = 0;
	size_t b;

	for (b = 0; b < SIM_HIST_NR; b++) {
		seen += h->b[b];
		if (seen > k)
			return middle(h, b);
	}
	return h->max;
}

double sim_hist_pct(const struct sim_hist *h, double p)
{
	double rank, a, b;
	uint64_t lo;

	if (!h->n)
		return NAN;
	rank = p / 100.0 * (double)(h->n - 1);
	lo = (uint64_t)floor(rank);
	if (lo + 1 >= h->n)
		return h->max;
	a = rank_value(h, lo);
	b = rank_value(h, lo + 1);
	return a + (rank - (double)lo) * (b - a);
}

void sim_hist_free(struct sim_hist *h)
{
	free(h->b);
	memset(h, 0, sizeof(*h));
}

static void acc_init(struct sim_acc *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->s.recompute_tax = -1;
}

static void acc_free(struct sim_acc *a)
{
	sim_hist_free(&a->ttft);
	sim_hist_free(&a->tpot);
	sim_hist_free(&a->e2e);
	sim_hist_free(&a->itl);
}

void sim_stream_init(struct sim_stream *st)
{
	memset(st, 0, sizeof(*st));
	acc_init(&st->all, "all");
}

void sim_stream_free(struct sim_stream *st)
{
	size_t i;

	acc_free(&st->all);
	for (i = 0; i < st->nr_cls; i++)
		acc_free(&st->cls[i]);
	for (i = 0; i < 1000; i++)
		free((char *)st->err.msg[i]);
	memset(st, 0, sizeof(*st));
}

/* @q's class's accumulator (made if new; NULL past SIM_STREAM_MAX_CLS, as the report's). */
static struct sim_acc *class_of(struct sim_stream *st, const char *cls)
{
	size_t i;

	for (i = 0; i < st->nr_cls; i++)
		if (!strcmp(st->cls[i].name, cls))
			return &st->cls[i];
	if (st->nr_cls == SIM_STREAM_MAX_CLS)
		return NULL;
	acc_init(&st->cls[st->nr_cls], cls);
	return &st->cls[st->nr_cls++];
}

void sim_stream_class(struct sim_stream *st, const struct lg_req *q)
{
	class_of(st, q->cls);
}

/* lg_summarize()'s counting of one request, its values into the histograms. */
static void acc_fold(struct sim_stream *st, struct sim_acc *a, const struct lg_req *q,
		     const struct lg_result *r)
{
	struct lg_summary *s = &a->s;
	uint32_t k;
	int bad = 0;

	for (k = 0; r->gaps_ms && k < r->nr_gaps; k++)
		bad |= sim_hist_add(&a->itl, r->gaps_ms[k]);
	if (lg_summary_count(s, q, r)) {
		bad |= sim_hist_add(&a->ttft, r->ttft_ms);
		bad |= sim_hist_add(&a->e2e, r->e2e_ms);
		if (r->tokens > 1)
			bad |= sim_hist_add(&a->tpot, r->tpot_ms);
	}
	st->nomem |= bad;
}

void sim_stream_fold(struct sim_stream *st, const struct lg_req *q, const struct lg_result *r)
{
	struct sim_acc *a = class_of(st, q->cls);
	struct lg_errors *e = &st->err;

	acc_fold(st, &st->all, q, r);
	if (a)
		acc_fold(st, a, q, r);
	if (r->err) {
		e->kind[r->err]++;
	} else if (r->status != 200 && r->status > 0 && r->status < 1000) {
		e->status[r->status]++;
		if (!e->msg[r->status]) {
			e->msg[r->status] = strdup(r->msg);
			st->nomem |= !e->msg[r->status];
		}
	}
}

/* The summary of @a over @duration_s, as lg_summarize() gives it. */
static void acc_summary(const struct sim_acc *a, double duration_s, struct lg_summary *s)
{
	int k;

	*s = a->s;
	for (k = 0; k < LG_NR_PCT; k++) {
		s->ttft[k] = sim_hist_pct(&a->ttft, lg_pcts[k]);
		s->tpot[k] = sim_hist_pct(&a->tpot, lg_pcts[k]);
		s->e2e[k] = sim_hist_pct(&a->e2e, lg_pcts[k]);
		s->itl[k] = sim_hist_pct(&a->itl, lg_pcts[k]);
	}
	s->nr_itl = a->itl.n;
	s->itl_max = a->itl.n ? a->itl.max : NAN;
	s->attainment = s->requests ? (double)s->met / s->requests : NAN;
	s->goodput = duration_s > 0 ? s->met / duration_s : NAN;
	s->throughput = duration_s > 0 ? s->completed / duration_s : NAN;
	s->recompute_tax = s->recompute_reported && s->tax_tokens ?
			   (double)s->recomputed / s->tax_tokens : -1;
}

int sim_stream_summary(const struct sim_stream *st, const char *cls, double duration_s,
		       struct lg_summary *s)
{
	size_t i;

	if (!cls) {
		acc_summary(&st->all, duration_s, s);
		return 0;
	}
	for (i = 0; i < st->nr_cls; i++)
		if (!strcmp(st->cls[i].name, cls)) {
			acc_summary(&st->cls[i], duration_s, s);
			return 0;
		}
	return -1;
}

struct sums {
	struct lg_report_sums r;
	const char *names[SIM_STREAM_MAX_CLS];
	struct lg_summary cls[SIM_STREAM_MAX_CLS], all;
};

static void sums(const struct sim_stream *st, double duration_s, struct sums *m)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < st->nr_cls; i++) {
		m->names[i] = st->cls[i].name;
		acc_summary(&st->cls[i], duration_s, &m->cls[i]);
	}
	acc_summary(&st->all, duration_s, &m->all);
	m->r = (struct lg_report_sums){ .names = m->names, .cls = m->cls, .nr_cls = st->nr_cls,
					.all = &m->all, .duration_s = duration_s,
					.errors = &st->err, .estimated = 1 };
}

void sim_stream_table(FILE *f, const struct sim_stream *st, double duration_s)
{
	struct sums *m = malloc(sizeof(*m));

	if (!m)
		return;
	sums(st, duration_s, m);
	lg_report_table_sums(f, &m->r, NULL, NULL);
	fprintf(f, "(--stream: the percentiles are estimates from log-bucketed histograms, within "
		"0.4%% of the exact ones; the counts and the largest gap are exact)\n");
	free(m);
}

void sim_stream_json(FILE *f, const struct sim_stream *st, double duration_s)
{
	struct sums *m = malloc(sizeof(*m));

	if (!m)
		return;
	sums(st, duration_s, m);
	lg_report_json_sums(f, &m->r, NULL, NULL);
	free(m);
}
