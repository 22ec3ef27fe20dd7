// SPDX-License-Identifier: MIT
/*
 * kvaccel-serve - the MoE experts in libaccel's expert store: the initial
 * expert-parallel placement, the weights copied in, rebalances started
 * every N steps from a policy, the routed-token counts the policy reads
 * (and, for a policy that weighs traffic, the tokens' co-activations
 * between consecutive layers), and the step times with and without
 * rebalance work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <accel_moe.h>
#include <accel_moe_plan.h>

#include "moe.h"

struct step_rec {
	uint64_t ns, begin_ns;
	uint32_t tokens;
	bool busy;
};

struct serve_moe {
	struct accel_moe_store *store;
	uint32_t layers, experts, devices, spd, d, ff, top_k;
	uint32_t every, shift;
	serve_moe_policy_fn policy;
	void *policy_ctx;
	uint64_t *load;			/* [layers][experts], atomics */
	/*
	 * Co-activations (serve_moe_opts.coact): the workers' routes go in
	 * under stats_lock; coact is the policy's copy, read at a rebalance.
	 */
	struct accel_moe_stats *stats;
	pthread_mutex_t stats_lock;
	uint32_t *coact;		/* [layers - 1][experts][experts] */
	int32_t *cur, *next;		/* placements */
	uint64_t steps, started, refused, lookup_errors;
	bool busy;			/* this step began with rebalance work pending */
	uint64_t begin_ns;		/* this step's accel_moe_store_step_begin() */
	struct step_rec *rec;
	uint64_t nr_rec, cap_rec;
	uint64_t setup_ns;		/* serve_moe_create(): the store made and filled */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* NUMA nodes online (/sys/devices/system/node/online: "0", "0-1", "0,2-3"), at least 1. */
static uint32_t online_nodes(int *node, uint32_t max)
{
	FILE *f = fopen("/sys/devices/system/node/online", "r");
	char buf[256], *p, *end;
	uint32_t n = 0;

	if (f && fgets(buf, sizeof(buf), f)) {
		for (p = buf; *p && *p != '\n' && n < max;) {
			long a = strtol(p, &end, 10), b = a;

			if (end == p)
				break;
			p = end;
			if (*p == '-') {
				b = strtol(p + 1, &end, 10);
				p = end;
			}
			for (; a <= b && n < max; a++)
				node[n++] = (int)a;
			if (*p == ',')
				p++;
		}
	}
	if (f)
		fclose(f);
	if (!n)
		node[n++] = 0;
	return n;
}

/* Experts sorted by load, most first, ties the lower index. */
static void by_load(const uint64_t *load, uint32_t experts, uint32_t *order)
{
	uint32_t i, j, t;

	for (i = 0; i < experts; i++)
		order[i] = i;
	for (i = 1; i < experts; i++)
		for (j = i; j > 0 && load[order[j]] > load[order[j - 1]]; j--) {
			t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
}

int serve_moe_rotate(void *ctx, const int32_t *old, int32_t *new, const uint64_t *load,
		     const uint32_t *coact, uint32_t layers, uint32_t experts, uint32_t devices,
		     uint32_t spd)
{
	uint32_t *shift = ctx, n = devices * spd, l, e, r, d, fill[64];
	uint32_t order[SERVE_MAX_EXPERTS];

	(void)old;
	(void)coact;
	if (devices > 64 || experts > SERVE_MAX_EXPERTS || n < experts)
		return -EINVAL;
	for (l = 0; l < layers; l++) {
		int32_t *p = new + (size_t)l * n;

		memset(fill, 0, sizeof(fill));
		for (e = 0; e < experts; e++) {
			d = (e + *shift) % devices;
			p[d * spd + fill[d]++] = (int32_t)e;
		}
		by_load(load + (size_t)l * experts, experts, order);
		for (r = 0; r < n - experts; r++) {
			uint32_t x = order[r % experts], home = (x + *shift) % devices, k;

			d = home;
			/* Another device than the first replica's, the next with room. */
			for (k = 1; k <= devices; k++) {
				d = (home + k) % devices;
				if (fill[d] < spd)
					break;
			}
			p[d * spd + fill[d]++] = (int32_t)x;
		}
	}
	(*shift)++;
	return 0;
}

struct serve_moe *serve_moe_create(struct accel_device *dev, const struct serve_model *m,
				   const struct serve_moe_opts *o, char *err, size_t errlen)
{
	const struct serve_config *c = &m->cfg;
	uint32_t n, l, e, nodes, i;
	int node[ACCEL_MOE_STORE_MAX_DEVICES], dn[ACCEL_MOE_STORE_MAX_DEVICES];
	int gpu[ACCEL_MOE_STORE_MAX_DEVICES];
	struct serve_moe *x;
	float *buf = NULL;
	uint64_t bytes, t0;
	int ret;

	if (!c->experts || !o->devices || o->devices > ACCEL_MOE_STORE_MAX_DEVICES ||
	    (c->experts + o->redundant) % o->devices) {
		snprintf(err, errlen, "--moe-store needs an MoE model (--experts) and 1 to %u devices "
			 "that divide experts + --moe-redundant (%u + %u)", ACCEL_MOE_STORE_MAX_DEVICES,
			 c->experts, o->redundant);
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		goto nomem;
	x->layers = c->layers;
	x->experts = c->experts;
	x->devices = o->devices;
	x->spd = (c->experts + o->redundant) / o->devices;
	x->d = c->d_model;
	x->ff = c->ff;
	x->top_k = c->top_k;
	x->every = o->rebalance_every;
	pthread_mutex_init(&x->stats_lock, NULL);
	x->policy = o->policy ? o->policy : serve_moe_rotate;
	x->policy_ctx = o->policy ? o->policy_ctx : &x->shift;
	n = x->devices * x->spd;
	x->load = calloc((size_t)x->layers * x->experts, sizeof(*x->load));
	x->cur = calloc((size_t)x->layers * n, sizeof(*x->cur));
	x->next = calloc((size_t)x->layers * n, sizeof(*x->next));
	bytes = 3ull * c->ff * c->d_model * sizeof(float);
	buf = malloc(bytes);
	if (!x->load || !x->cur || !x->next || !buf)
		goto nomem;
	if (o->coact && x->every && x->layers > 1) {
		/* The window: the steps since the last rebalance (the counts age every window). */
		x->stats = accel_moe_stats_create(x->layers, x->experts, x->every,
						  ACCEL_MOE_STATS_COACT);
		x->coact = calloc((size_t)(x->layers - 1) * x->experts * x->experts,
				  sizeof(*x->coact));
		if (!x->stats || !x->coact)
			goto nomem;
	}
	/* Expert e on device e % D, the redundant slots after (zero load: experts 0, 1, ...). */
	ret = serve_moe_rotate(&x->shift, NULL, x->cur, x->load, NULL, x->layers, x->experts,
			       x->devices, x->spd);
	t0 = now_ns();
	if (!ret) {
		ACCEL_OPTS(accel_moe_store_opts, so, .layers = x->layers, .experts = x->experts,
			   .devices = x->devices, .slots_per_device = x->spd,
			   .expert_bytes = bytes, .device_node = dn,
			   .max_inflight = o->max_inflight,
			   .flags = o->thread ? ACCEL_MOE_STORE_THREAD : 0,
			   .from = o->from, .nr_from = o->nr_from,
			   .backend = o->gpus ? ACCEL_MOE_STORE_CUDA : ACCEL_MOE_STORE_HOST,
			   .device_gpu = gpu);

		nodes = online_nodes(node, ACCEL_MOE_STORE_MAX_DEVICES);
		for (i = 0; i < x->devices; i++) {
			dn[i] = node[i % nodes];
			gpu[i] = o->gpus ? (int)(i % o->gpus) : 0;
		}
		x->store = accel_moe_store_create(dev, &so, x->cur, (size_t)x->layers * n);
		ret = x->store ? 0 : -errno;
	}
	/* From a peer, the copies hold the weights already (the model's are not loaded). */
	for (l = 0; !ret && !o->nr_from && l < x->layers; l++)
		for (e = 0; !ret && e < x->experts; e++) {
			const struct serve_ffn *f = &m->layer[l].expert[e];
			size_t t = (size_t)c->ff * c->d_model;

			memcpy(buf, f->gate, t * sizeof(float));
			memcpy(buf + t, f->up, t * sizeof(float));
			memcpy(buf + 2 * t, f->down, t * sizeof(float));
			ret = accel_moe_store_write(x->store, l, e, buf, bytes);
		}
	free(buf);
	x->setup_ns = now_ns() - t0;
	if (ret) {
		snprintf(err, errlen, "the expert store (%u devices of %u slots%s%s): %s",
			 x->devices, x->spd, o->nr_from ? ", from the peer's copies" : "",
			 o->gpus ? ", in GPU memory" : "", strerror(-ret));
		serve_moe_destroy(x);
		errno = -ret;
		return NULL;
	}
	return x;
nomem:
	free(buf);
	serve_moe_destroy(x);
	snprintf(err, errlen, "the expert store: out of memory");
	errno = ENOMEM;
	return NULL;
}

struct accel_moe_store *serve_moe_store(struct serve_moe *x)
{
	return x ? x->store : NULL;
}

uint64_t serve_moe_setup_ns(const struct serve_moe *x)
{
	return x ? x->setup_ns : 0;
}

void serve_moe_destroy(struct serve_moe *x)
{
	if (!x)
		return;
	accel_moe_store_destroy(x->store);
	free(x->load);
	free(x->cur);
	free(x->next);
	free(x->rec);
	accel_moe_stats_destroy(x->stats);
	free(x->coact);
	pthread_mutex_destroy(&x->stats_lock);
	free(x);
}

/* Start a rebalance: the policy's placement from the current one. */
static int rebalance(struct serve_moe *x)
{
	size_t n = (size_t)x->layers * x->devices * x->spd, i;
	const uint32_t *coact = NULL;
	int ret;

	const char *what = "reading the current placement";

	ret = accel_moe_store_placement(x->store, x->cur, n);
	if (!ret && serve_moe_counts_routes(x)) {
		what = "reading the co-activation counts";
		ret = serve_moe_coact(x, x->coact);
		coact = x->coact;
	}
	if (!ret) {
		what = "the policy";
		ret = x->policy(x->policy_ctx, x->cur, x->next, x->load, coact, x->layers,
				x->experts, x->devices, x->spd);
	}
	if (!ret) {
		what = "the store refused the policy's placement";
		ret = accel_moe_store_apply(x->store, x->next, n);
	}
	if (ret) {
		/* The old placement stays; the load keeps counting until the next try. */
		x->refused++;
		fprintf(stderr, "kvaccel-serve: moe rebalance at step %llu not started: %s: %s "
			"(serving on the old placement)\n", (unsigned long long)x->steps, what,
			strerror(-ret));
	} else {
		x->started++;
		for (i = 0; i < (size_t)x->layers * x->experts; i++)
			__atomic_store_n(&x->load[i], 0, __ATOMIC_RELAXED);
	}
	return ret;
}

int serve_moe_step_begin(struct serve_moe *x, uint64_t *version)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	ACCEL_OPTS(accel_moe_store_stats, after);
	uint64_t t0;
	int ret;

	x->steps++;
	ret = accel_moe_store_stats(x->store, &st);
	if (ret)
		return ret;
	if (x->every && x->steps % x->every == 0 && !st.rebalancing && !rebalance(x))
		st.rebalancing = 1;	/* an error skips this one (said on stderr), serving goes on */
	t0 = now_ns();
	ret = accel_moe_store_step_begin(x->store, version);
	x->begin_ns = now_ns() - t0;
	if (!ret)
		ret = accel_moe_store_stats(x->store, &after);
	/* Rebalance work during this step: copies, a switch, or freeing a retired table. */
	x->busy = !ret && (st.rebalancing || st.retired_pending || after.reclaims != st.reclaims);
	return ret;
}

void serve_moe_step_end(struct serve_moe *x, uint64_t version, uint64_t ns, uint32_t tokens)
{
	accel_moe_store_step_end(x->store, version);
	if (x->stats) {
		pthread_mutex_lock(&x->stats_lock);
		accel_moe_stats_step_end(x->stats);
		pthread_mutex_unlock(&x->stats_lock);
	}
	if (x->nr_rec == x->cap_rec) {
		uint64_t cap = x->cap_rec ? 2 * x->cap_rec : 256;
		struct step_rec *r = realloc(x->rec, cap * sizeof(*r));

		if (!r)
			return;
		x->rec = r;
		x->cap_rec = cap;
	}
	x->rec[x->nr_rec++] = (struct step_rec) { ns, x->begin_ns, tokens, x->busy };
}

const void *serve_moe_expert(void *arg, uint64_t version, uint32_t l, uint32_t e, uint32_t hint)
{
	struct serve_moe *x = arg;
	const void *p = accel_moe_store_expert(x->store, version, l, e, hint);

	if (p)
		__atomic_add_fetch(&x->load[(size_t)l * x->experts + e], 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&x->lookup_errors, 1, __ATOMIC_RELAXED);
	return p;
}

bool serve_moe_counts_routes(const struct serve_moe *x)
{
	return x && x->stats;
}

int serve_moe_routes(struct serve_moe *x, const uint32_t *routes, uint32_t tokens)
{
	int ret;

	if (!serve_moe_counts_routes(x) || !tokens)
		return 0;
	pthread_mutex_lock(&x->stats_lock);
	ret = accel_moe_stats_route(x->stats, routes, tokens, x->top_k);
	pthread_mutex_unlock(&x->stats_lock);
	return ret;
}

int serve_moe_coact(struct serve_moe *x, uint32_t *coact)
{
	int ret;

	if (!serve_moe_counts_routes(x))
		return -ENOENT;
	pthread_mutex_lock(&x->stats_lock);
	ret = accel_moe_stats_coact(x->stats, coact);
	pthread_mutex_unlock(&x->stats_lock);
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median and max (us) of the steps of @tokens tokens whose busy flag is @busy. */
static uint64_t step_stats(const struct serve_moe *x, uint32_t tokens, bool busy, double *median,
			   double *max)
{
	uint64_t *v = malloc((x->nr_rec ? x->nr_rec : 1) * sizeof(*v)), n = 0, i;

	*median = *max = 0;
	if (!v)
		return 0;
	for (i = 0; i < x->nr_rec; i++)
		if (x->rec[i].tokens == tokens && x->rec[i].busy == busy)
			v[n++] = x->rec[i].ns;
	if (n) {
		qsort(v, n, sizeof(*v), cmp_u64);
		*median = (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) / 1e3;
		*max = v[n - 1] / 1e3;
	}
	free(v);
	return n;
}

int serve_moe_report(struct serve_moe *x, struct serve_moe_report *r)
{
	ACCEL_OPTS(accel_moe_store_stats, st);
	uint64_t mode = 0, best = 0, i, j, *tok;
	int ret = accel_moe_store_stats(x->store, &st);

	if (ret)
		return ret;
	memset(r, 0, sizeof(*r));
	r->steps = x->steps;
	r->rebalances_started = x->started;
	r->rebalances_refused = x->refused;
	r->rebalances = st.rebalances;
	r->waves = st.waves;
	r->copies = st.copies;
	r->rebinds = st.rebinds;
	r->lookup_errors = __atomic_load_n(&x->lookup_errors, __ATOMIC_RELAXED);
	/* The most common batch size (ties: the larger). */
	tok = malloc((x->nr_rec ? x->nr_rec : 1) * sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	for (i = 0; i < x->nr_rec; i++)
		tok[i] = x->rec[i].tokens;
	qsort(tok, x->nr_rec, sizeof(*tok), cmp_u64);
	for (i = 0; i < x->nr_rec; i = j) {
		for (j = i; j < x->nr_rec && tok[j] == tok[i]; j++)
			;
		if (j - i >= best) {
			best = j - i;
			mode = (uint32_t)tok[i];
		}
	}
	free(tok);
	r->idle_steps = step_stats(x, (uint32_t)mode, false, &r->idle_median_us, &r->idle_max_us);
	r->busy_steps = step_stats(x, (uint32_t)mode, true, &r->busy_median_us, &r->busy_max_us);
	return 0;
}

uint64_t serve_moe_steps(const struct serve_moe *x, uint64_t *ns, uint64_t *begin_ns,
			 uint32_t *tokens, bool *busy, uint64_t max)
{
	uint64_t i;

	for (i = 0; i < x->nr_rec && i < max; i++) {
		if (ns)
			ns[i] = x->rec[i].ns;
		if (begin_ns)
			begin_ns[i] = x->rec[i].begin_ns;
		if (tokens)
			tokens[i] = x->rec[i].tokens;
		if (busy)
			busy[i] = x->rec[i].busy;
	}
	return x->nr_rec;
}

void serve_moe_print(struct serve_moe *x, FILE *f)
{
	struct serve_moe_report r;

	if (serve_moe_report(x, &r))
		return;
	fprintf(f, "moe store: %llu steps, %llu rebalances (%llu started, %llu refused), %llu waves, "
		"%llu copies, %llu rebinds, %llu lookup errors; steps of the usual batch: %llu "
		"without rebalance work (median %.1f us, max %.1f us), %llu with (median %.1f us, "
		"max %.1f us)\n", (unsigned long long)r.steps, (unsigned long long)r.rebalances,
		(unsigned long long)r.rebalances_started, (unsigned long long)r.rebalances_refused,
		(unsigned long long)r.waves, (unsigned long long)r.copies,
		(unsigned long long)r.rebinds, (unsigned long long)r.lookup_errors,
		(unsigned long long)r.idle_steps, r.idle_median_us, r.idle_max_us,
		(unsigned long long)r.busy_steps, r.busy_median_us, r.busy_max_us);
}
