// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - the synthetic workload: Poisson, Gamma (a CV knob) or bursty arrivals at a
 * mean rate; fixed, uniform or lognormal prompt and output lengths; a weighted mix of classes
 * with their priority and SLOs. Arrivals, lengths and classes draw from separate streams of the
 * seed, so changing one knob does not reshuffle the others.
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

static double gap(struct lg_rng *r, const struct lg_synth_opts *o)
{
	double k;

	switch (o->arrival) {
	case LG_ARR_GAMMA:
		k = 1.0 / (o->cv * o->cv);
		return lg_rng_gamma(r, k) / (k * o->rate);
	case LG_ARR_BURST:
		return lg_rng_exp(r, (o->burst ? o->burst : 1) / o->rate);
	default:
		return lg_rng_exp(r, 1.0 / o->rate);
	}
}

int lg_synth(const struct lg_synth_opts *o, struct lg_workload *wl)
{
	struct lg_rng arr = { o->seed ^ 0x61727269766c6731ULL };
	struct lg_rng len = { o->seed ^ 0x6c656e6774686c67ULL };
	struct lg_rng cls = { o->seed ^ 0x636c617373657367ULL };
	double t = 0, total = 0;
	unsigned int k;
	size_t i;

	if (!(o->rate > 0) || (o->arrival == LG_ARR_GAMMA && !(o->cv > 0)))
		return -1;
	for (k = 0; k < o->nr_classes; k++)
		total += o->classes[k].weight;
	for (i = 0; i < o->requests; i++) {
		struct lg_req *r = lg_workload_push(wl);

		if (!r)
			return -1;
		if (i && (o->arrival != LG_ARR_BURST || !o->burst || i % o->burst == 0))
			t += gap(&arr, o);
		r->arrival_s = t;
		r->input_len = draw(&len, &o->input, o->max_input);
		r->output_len = draw(&len, &o->output, o->max_output);
		r->ttft_slo_ms = o->ttft_slo_ms;
		r->tpot_slo_ms = o->tpot_slo_ms;
		if (o->clients)
			snprintf(r->client, sizeof(r->client), "c%zu", i % o->clients);
		if (o->nr_classes) {
			double u = lg_rng_unit(&cls) * total, acc = 0;

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
	}
	return 0;
}
