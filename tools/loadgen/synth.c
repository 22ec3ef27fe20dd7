// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - the synthetic workload: Poisson, Gamma (a CV knob) or bursty arrivals at a
 * mean rate; fixed, uniform or lognormal prompt and output lengths; a weighted mix of classes
 * with their priority and SLOs; a diurnal swing of a Poisson rate (Lewis-Shedler thinning);
 * multi-turn sessions whose turns share their history as a prefix (hash ids, one a 512-token
 * block). Arrivals, lengths, classes and think times draw from separate streams of the seed, so
 * changing one knob does not reshuffle the others.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "workload.h"

int lg_dist_parse(const char *s, struct lg_dist *d)
{
	char tail;

	if (sscanf(s, "fixed:%lf%c", &d->a, &tail) == 1) {
		d->kind = LG_DIST_FIXED;
		return d->a >= 1 ? 0 : -1;
	}
	if (sscanf(s, "uniform:%lf:%lf%c", &d->a, &d->b, &tail) == 2) {
		d->kind = LG_DIST_UNIFORM;
		return d->a >= 1 && d->b >= d->a ? 0 : -1;
	}
	if (sscanf(s, "lognormal:%lf:%lf%c", &d->a, &d->b, &tail) == 2) {
		d->kind = LG_DIST_LOGNORMAL;
		return isfinite(d->a) && d->b >= 0 && d->b < 10 ? 0 : -1;
	}
	return -1;
}

int lg_class_parse(const char *s, struct lg_class *c)
{
	int n = 0;
	char tail;
	const char *colon = strchr(s, ':');

	if (!colon || colon == s || (size_t)(colon - s) >= LG_NAME_MAX)
		return -1;
	memset(c, 0, sizeof(*c));
	memcpy(c->name, s, colon - s);
	n = sscanf(colon + 1, "%lf:%d:%lf:%lf%c", &c->weight, &c->priority, &c->ttft_slo_ms,
		   &c->tpot_slo_ms, &tail);
	if (n != 4 || !(c->weight > 0) || c->ttft_slo_ms < 0 || c->tpot_slo_ms < 0)
		return -1;
	return 0;
}

static uint32_t draw(struct lg_rng *r, const struct lg_dist *d, uint32_t max)
{
	double v;

	switch (d->kind) {
	case LG_DIST_UNIFORM:
		v = floor(d->a + lg_rng_unit(r) * (d->b - d->a + 1));
		break;
	case LG_DIST_LOGNORMAL:
		v = round(exp(d->a + d->b * lg_rng_normal(r)));
		break;
	default:
		v = d->a;
	}
	if (v < 1)
		v = 1;
	if (v > 1e9)
		v = 1e9;
	if (max && v > max)
		v = max;
	return (uint32_t)v;
}

static double gap(struct lg_rng *r, const struct lg_synth_opts *o, double rate)
{
	double k;

	switch (o->arrival) {
	case LG_ARR_GAMMA:
		k = 1.0 / (o->cv * o->cv);
		return lg_rng_gamma(r, k) / (k * rate);
	case LG_ARR_BURST:
		return lg_rng_exp(r, (o->burst ? o->burst : 1) / rate);
	default:
		return lg_rng_exp(r, 1.0 / rate);
	}
}

static int diurnal(const struct lg_synth_opts *o)
{
	return o->diurnal_period_s > 0 && o->diurnal_amp > 0;
}

/*
 * The next arrival after @t of a Poisson process of rate x (1 + A sin(2 pi t / P)): candidates
 * at the peak rate x (1 + A), each kept with the rate at its time over the peak (Lewis and
 * Shedler's thinning).
 */
static double thinned(struct lg_rng *r, const struct lg_synth_opts *o, double rate, double t)
{
	double peak = rate * (1 + o->diurnal_amp);

	for (;;) {
		t += lg_rng_exp(r, 1.0 / peak);
		if (lg_rng_unit(r) * peak <=
		    rate * (1 + o->diurnal_amp * sin(2 * M_PI * t / o->diurnal_period_s)))
			return t;
	}
}

/* An arrival process: the first at 0, then gaps (or thinning) at @rate. */
struct arrivals {
	const struct lg_synth_opts *o;
	struct lg_rng r;
	double rate, t;
	size_t i;
};

static double next_arrival(struct arrivals *a)
{
	const struct lg_synth_opts *o = a->o;

	if (a->i && (o->arrival != LG_ARR_BURST || !o->burst || a->i % o->burst == 0)) {
		if (diurnal(o))
			a->t = thinned(&a->r, o, a->rate, a->t);
		else
			a->t += gap(&a->r, o, a->rate);
	}
	a->i++;
	return a->t;
}

/* A class from the mix into @r (nothing without classes). */
static void pick_class(const struct lg_synth_opts *o, struct lg_rng *cls, double total,
		       struct lg_req *r)
{
	double u, acc = 0;
	unsigned int k;

	if (!o->nr_classes)
		return;
	u = lg_rng_unit(cls) * total;
	for (k = 0; k + 1 < o->nr_classes; k++) {
		acc += o->classes[k].weight;
		if (u < acc)
			break;
	}
	strcpy(r->cls, o->classes[k].name);
	r->priority = o->classes[k].priority;
	r->ttft_slo_ms = o->classes[k].ttft_slo_ms;
	r->tpot_slo_ms = o->classes[k].tpot_slo_ms;
}

struct order {
	double t;
	size_t i;
};

static int by_arrival(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Sort the requests by arrival, ties in the order made. */
static int sort_arrivals(struct lg_workload *wl)
{
	struct order *ord = malloc((wl->n ? wl->n : 1) * sizeof(*ord));
	struct lg_req *req = malloc((wl->cap ? wl->cap : 1) * sizeof(*req));
	size_t i;

	if (!ord || !req) {
		free(ord);
		free(req);
		return -1;
	}
	for (i = 0; i < wl->n; i++)
		ord[i] = (struct order){ wl->req[i].arrival_s, i };
	qsort(ord, wl->n, sizeof(*ord), by_arrival);
	for (i = 0; i < wl->n; i++)
		req[i] = wl->req[ord[i].i];
	free(wl->req);
	wl->req = req;
	free(ord);
	return 0;
}

/*
 * Sessions: each a conversation of o->turns requests. Its history is one stream of tokens
 * (prompts and outputs in turn), every LG_HASH_BLOCK of it one hash id of its own, and a turn's
 * prompt the history so far plus a new message: its first ceil(L / 512) ids, so it begins with
 * the previous turn's prompt byte for byte (lg_prompt_make() fills a block from its id alone, a
 * short last block with the first bytes of the full one). The next turn arrives an exponential
 * think time after the previous one's guessed end (open loop: the real end is not known here).
 */
static int synth_sessions(const struct lg_synth_opts *o, struct lg_workload *wl,
			  struct arrivals *arr, struct lg_rng *len, struct lg_rng *cls,
			  double total)
{
	struct lg_rng think = { o->seed ^ 0x7468696e6b736573ULL };
	uint32_t *ids = NULL, nr_ids = 0, cap_ids = 0, s, k;
	uint64_t next_id = 0;
	int ret = -1;

	for (s = 0; s < o->sessions; s++) {
		double t = next_arrival(arr);
		uint64_t history = 0;
		struct lg_req proto;

		memset(&proto, 0, sizeof(proto));
		strcpy(proto.cls, "online");
		proto.ttft_slo_ms = o->ttft_slo_ms;
		proto.tpot_slo_ms = o->tpot_slo_ms;
		pick_class(o, cls, total, &proto);
		if (o->clients)
			snprintf(proto.client, sizeof(proto.client), "c%u", s % o->clients);
		nr_ids = 0;
		for (k = 0; k < o->turns; k++) {
			uint64_t L = history + draw(len, &o->input, 0);
			uint32_t out = draw(len, &o->output, o->max_output), nb;
			struct lg_req *r;

			if (o->max_input && L > o->max_input)
				L = o->max_input;
			if (L > 1000000000)
				L = 1000000000;
			nb = (uint32_t)((L + LG_HASH_BLOCK - 1) / LG_HASH_BLOCK);
			while (nr_ids < nb) {
				if (nr_ids == cap_ids) {
					uint32_t c = cap_ids ? cap_ids * 2 : 16;
					uint32_t *n = realloc(ids, c * sizeof(*ids));

					if (!n)
						goto out;
					ids = n;
					cap_ids = c;
				}
				if (next_id > UINT32_MAX)
					goto out;
				ids[nr_ids++] = (uint32_t)next_id++;
			}
			r = lg_workload_push(wl);
			if (!r)
				goto out;
			*r = proto;
			r->arrival_s = t;
			r->input_len = (uint32_t)L;
			r->output_len = out;
			r->session = s + 1;
			r->turn = k + 1;
			r->hash_ids = malloc(nb * sizeof(*ids));
			if (!r->hash_ids)
				goto out;
			memcpy(r->hash_ids, ids, nb * sizeof(*ids));
			r->nr_hash_ids = nb;
			history = L + out;
			t += out * LG_TURN_TPOT_S + lg_rng_exp(&think, o->think_s);
		}
	}
	ret = sort_arrivals(wl);
out:
	free(ids);
	return ret;
}

/* The options the generator takes: 0, or -1 (a rate, CV, diurnal swing or session it cannot). */
static int synth_check(const struct lg_synth_opts *o)
{
	if (!(o->rate > 0) || (o->arrival == LG_ARR_GAMMA && !(o->cv > 0)))
		return -1;
	if (diurnal(o) && (o->arrival != LG_ARR_POISSON || o->diurnal_amp > 1))
		return -1;
	if (o->sessions && (!o->turns || o->think_s < 0))
		return -1;
	return 0;
}

static double class_total(const struct lg_synth_opts *o)
{
	double total = 0;
	unsigned int k;

	for (k = 0; k < o->nr_classes; k++)
		total += o->classes[k].weight;
	return total;
}

int lg_synth_iter_init(struct lg_synth_iter *it, const struct lg_synth_opts *o)
{
	memset(it, 0, sizeof(*it));
	if (synth_check(o) || o->sessions)
		return -1;
	it->o = o;
	it->arr.s = o->seed ^ 0x61727269766c6731ULL;
	it->len.s = o->seed ^ 0x6c656e6774686c67ULL;
	it->cls.s = o->seed ^ 0x636c617373657367ULL;
	it->total = class_total(o);
	return 0;
}

int lg_synth_next(struct lg_synth_iter *it, struct lg_req *r)
{
	const struct lg_synth_opts *o = it->o;
	struct arrivals arr = { o, it->arr, o->rate, it->t, it->made };

	if (it->made == o->requests)
		return 0;
	memset(r, 0, sizeof(*r));
	strcpy(r->cls, "online");
	r->arrival_s = next_arrival(&arr);
	it->arr = arr.r;
	it->t = arr.t;
	r->input_len = draw(&it->len, &o->input, o->max_input);
	r->output_len = draw(&it->len, &o->output, o->max_output);
	r->ttft_slo_ms = o->ttft_slo_ms;
	r->tpot_slo_ms = o->tpot_slo_ms;
	if (o->clients)
		snprintf(r->client, sizeof(r->client), "c%zu", it->made % o->clients);
	pick_class(o, &it->cls, it->total, r);
	it->made++;
	return 1;
}

int lg_synth(const struct lg_synth_opts *o, struct lg_workload *wl)
{
	struct arrivals arr = { o, { o->seed ^ 0x61727269766c6731ULL }, o->rate, 0, 0 };
	struct lg_rng len = { o->seed ^ 0x6c656e6774686c67ULL };
	struct lg_rng cls = { o->seed ^ 0x636c617373657367ULL };
	struct lg_synth_iter it;
	struct lg_req *r;

	if (synth_check(o))
		return -1;
	if (o->sessions) {
		arr.rate = o->rate / o->turns;
		return synth_sessions(o, wl, &arr, &len, &cls, class_total(o));
	}
	lg_synth_iter_init(&it, o);
	for (;;) {
		r = lg_workload_push(wl);
		if (!r)
			return -1;
		if (!lg_synth_next(&it, r)) {
			wl->n--;
			return 0;
		}
	}
}
