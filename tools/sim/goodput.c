// SPDX-License-Identifier: MIT
/* kvaccel-sim - goodput by bisection on the rate (see goodput.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accel.h"
#include "cli.h"
#include "goodput.h"
#include "stats.h"

/* Halvings or doublings of the rate before giving up on a bracket. */
#define MAX_STEPS	30

double sim_workload_rate(const struct lg_workload *wl)
{
	double span;

	if (wl->n < 2)
		return 0;
	span = wl->req[wl->n - 1].arrival_s - wl->req[0].arrival_s;
	return span > 0 ? (wl->n - 1) / span : 0;
}

#define MAX_CLASSES	64

/* The attainment of the class that meets fewest of its requests, its name into t->worst. */
static int worst_class(const struct lg_workload *wl, const struct lg_result *res,
		       struct sim_goodput_try *t, char *err, size_t errlen)
{
	size_t n[MAX_CLASSES] = { 0 }, met[MAX_CLASSES] = { 0 }, i;
	const char *names[MAX_CLASSES];
	unsigned int nr = 0, k, w = 0;

	/* Classes in the order they first appear (a few: a linear search). */
	for (i = 0; i < wl->n; i++) {
		for (k = 0; k < nr && strcmp(names[k], wl->req[i].cls); k++)
			;
		if (k == nr) {
			if (nr == MAX_CLASSES) {
				snprintf(err, errlen, "goodput per class: more than %d classes",
					 MAX_CLASSES);
				return -1;
			}
			names[nr++] = wl->req[i].cls;
		}
		n[k]++;
		met[k] += lg_meets_slo(&wl->req[i], &res[i]);
	}
	for (k = 1; k < nr; k++)
		if ((double)met[k] / n[k] < (double)met[w] / n[w])
			w = k;
	t->attainment = nr ? (double)met[w] / n[w] : 1;
	snprintf(t->worst, sizeof(t->worst), "%s", nr ? names[w] : "");
	return 0;
}

/* One run at @scale times the rate: its attainment into a new try. */
static int try_at(const struct sim_config *c, const struct lg_workload *wl, double scale,
		  struct sim_goodput *g, FILE *progress, char *err, size_t errlen)
{
	struct lg_workload w = { .n = wl->n, .cap = wl->n };
	struct sim_goodput_try *t;
	struct lg_result *res;
	struct sim_totals tot;
	size_t i;
	int ret;

	if (g->nr_tries == SIM_GOODPUT_MAX_TRIES) {
		snprintf(err, errlen, "goodput: more than %d rates tried", SIM_GOODPUT_MAX_TRIES);
		return -1;
	}
	w.req = malloc((wl->n ? wl->n : 1) * sizeof(*w.req));
	res = calloc(wl->n + 1, sizeof(*res));
	if (!w.req || !res) {
		free(w.req);
		free(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The same requests (their prompts and hash ids shared, not copied), sooner or later. */
	for (i = 0; i < wl->n; i++) {
		w.req[i] = wl->req[i];
		w.req[i].arrival_s = wl->req[i].arrival_s / scale;
	}
	ret = sim_run(c, &w, res, &tot, err, errlen);
	t = &g->tries[g->nr_tries];
	memset(t, 0, sizeof(*t));
	t->scale = scale;
	t->rate = g->base_rate * scale;
	t->requests = wl->n;
	for (i = 0; !ret && i < wl->n; i++)
		t->met += lg_meets_slo(&wl->req[i], &res[i]);
	t->attainment = wl->n ? (double)t->met / wl->n : 1;
	if (!ret && g->per_class)
		ret = worst_class(wl, res, t, err, errlen);
	lg_results_free(res, wl->n);
	free(w.req);
	if (ret)
		return -1;
	g->nr_tries++;
	if (progress)
		fprintf(progress, "goodput: %.4g req/s (x%.4g): attainment %.4f%s%s (%zu of %zu)\n",
			t->rate, t->scale, t->attainment, g->per_class ? " in class " : "",
			g->per_class ? t->worst : "", t->met, t->requests);
	return 0;
}

/* A try at @scale: it becomes the bracket's lower end if it met the target, else the upper. */
static int probe(const struct sim_config *c, const struct lg_workload *wl, double scale,
		 struct sim_goodput *g, FILE *progress, double *lo, double *hi, char *err,
		 size_t errlen)
{
	if (try_at(c, wl, scale, g, progress, err, errlen))
		return -1;
	if (g->tries[g->nr_tries - 1].attainment >= g->target)
		*lo = scale;
	else
		*hi = scale;
	return 0;
}

int sim_goodput_find(const struct sim_config *c, const struct lg_workload *wl, double base_rate,
		     double target, double tol, int per_class, FILE *progress,
		     struct sim_goodput *g, char *err, size_t errlen)
{
	double lo = 0, hi = 0, s = 1, f;
	int k;

	memset(g, 0, sizeof(*g));
	g->target = target;
	g->tol = tol;
	g->per_class = per_class;
	g->base_rate = base_rate;
	if (probe(c, wl, s, g, progress, &lo, &hi, err, errlen))
		return -1;
	/* Doubled while met, halved while missed, until both ends are found. */
	f = lo ? 2 : 0.5;
	for (k = 0; k < MAX_STEPS && !(lo && hi); k++) {
		s *= f;
		if (probe(c, wl, s, g, progress, &lo, &hi, err, errlen))
			return -1;
	}
	g->bracketed = lo > 0 && hi > 0;
	while (g->bracketed && hi / lo > 1 + tol)
		if (probe(c, wl, sqrt(lo * hi), g, progress, &lo, &hi, err, errlen))
			return -1;
	g->scale = lo;
	g->goodput = lo * base_rate;
	g->upper = hi * base_rate;
	return 0;
}

void sim_goodput_table(FILE *f, const struct sim_goodput *g)
{
	size_t i;

	fprintf(f, "goodput: %.4g requests/s (x%.4g of the workload's %.4g/s), the highest rate "
		"with at least %.1f%% of requests%s meeting their SLO", g->goodput, g->scale,
		g->base_rate, 100 * g->target, g->per_class ? " of every class" : "");
	if (g->bracketed)
		fprintf(f, "; %.4g/s missed (tolerance %.2g%%)\n", g->upper, 100 * g->tol);
	else if (g->goodput > 0)
		fprintf(f, "; no rate tried missed it (a lower bound)\n");
	else
		fprintf(f, "; met at no rate tried (down to %.4g/s)\n", g->upper);
	fprintf(f, "%4s %12s %10s %10s %8s%s\n", "try", "rate/s", "scale", "attainment", "met",
		g->per_class ? "  worst class" : "");
	for (i = 0; i < g->nr_tries; i++)
		fprintf(f, "%4zu %12.4f %10.4f %10.4f %8zu%s%s\n", i + 1, g->tries[i].rate,
			g->tries[i].scale, g->tries[i].attainment, g->tries[i].met,
			g->per_class ? "  " : "", g->per_class ? g->tries[i].worst : "");
}

int sim_goodput_json(FILE *f, const struct sim_config *c, const struct sim_goodput *g)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	if (!o || !a)
		return -1;
	json_object_object_add(o, "profile", json_object_new_string(c->prof->name));
	json_object_object_add(o, "policy",
			       json_object_new_string(accel_sched_policy_name(c->policy)));
	json_object_object_add(o, "target", json_object_new_double(g->target));
	json_object_object_add(o, "tolerance", json_object_new_double(g->tol));
	if (g->per_class)
		json_object_object_add(o, "per_class", json_object_new_boolean(1));
	json_object_object_add(o, "base_rate", json_object_new_double(g->base_rate));
	json_object_object_add(o, "goodput_rps", json_object_new_double(g->goodput));
	json_object_object_add(o, "scale", json_object_new_double(g->scale));
	json_object_object_add(o, "upper_rps", json_object_new_double(g->upper));
	json_object_object_add(o, "bracketed", json_object_new_boolean(g->bracketed));
	for (i = 0; i < g->nr_tries; i++) {
		json_object *t = json_object_new_object();

		json_object_object_add(t, "rate", json_object_new_double(g->tries[i].rate));
		json_object_object_add(t, "scale", json_object_new_double(g->tries[i].scale));
		json_object_object_add(t, "attainment",
				       json_object_new_double(g->tries[i].attainment));
		json_object_object_add(t, "met", json_object_new_int64(g->tries[i].met));
		if (g->per_class)
			json_object_object_add(t, "worst_class",
					       json_object_new_string(g->tries[i].worst));
		json_object_object_add(t, "requests",
				       json_object_new_int64(g->tries[i].requests));
		json_object_array_add(a, t);
	}
	json_object_object_add(o, "tries", a);
	fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

int sim_goodput_cmd(const struct sim_cli *c, const struct lg_workload *wl)
{
	double base = c->wl.trace ? sim_workload_rate(wl) : c->wl.sopt.rate;
	struct sim_goodput *g = calloc(1, sizeof(*g));
	char err[512];
	int ret = 0;

	if (!g) {
		fprintf(stderr, "kvaccel-sim: out of memory\n");
		return 1;
	}
	if (!(base > 0)) {
		fprintf(stderr, "kvaccel-sim: --goodput: the trace has no rate (fewer than two "
			"arrival times)\n");
		free(g);
		return 2;
	}
	if (sim_goodput_find(&c->cfg, wl, base, c->rep.target, c->rep.tol, c->rep.per_class,
			     stderr, g, err, sizeof(err))) {
		fprintf(stderr, "kvaccel-sim: %s\n", err);
		free(g);
		return 2;
	}
	if (c->json)
		ret = sim_goodput_json(stdout, &c->cfg, g) ? 1 : 0;
	else
		sim_goodput_table(stdout, g);
	free(g);
	return ret;
}
