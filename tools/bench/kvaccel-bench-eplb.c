// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-eplb - MoE expert placement natively: DeepSeek's EPLB
 * (hierarchical and global policies) against libaccel's cost-aware
 * planner (accel_moe_plan()) on the same generated loads.
 *
 * Tokens are routed through the layers by a seeded generator: each of a
 * token's top-k experts of layer 0 is drawn from a Zipf distribution over
 * a shuffled ranking; at each next layer an expert continues along a fixed
 * "path" (a permutation of the experts per layer pair) with probability
 * 0.7, else a fresh Zipf draw. The routings go through accel_moe_stats_route(),
 * whose windowed loads and co-activation counts are the inputs. Phase A
 * gives the placement in service (EPLB's hierarchical policy, as a system
 * running EPLB would have); then the load shifts (30% of each layer's Zipf
 * ranks reshuffled, the paths kept) and phase B is planned by each method
 * from that placement (the planner also without its traffic term,
 * ACCEL_MOE_PLAN_NO_TRAFFIC). Every method is scored by accel_moe_cost() on phase
 * B's loads: max/mean device load (mean over layers, and the worst layer),
 * the share of co-activated tokens crossing nodes, slots moved from the
 * placement in service (EPLB with vLLM's slot preservation, which is
 * never worse than without), and planning time for all layers (CPU time
 * of the planning thread, median of 9 runs).
 *
 * kvaccel-bench-eplb [-s SEED] [-t TOKENS]
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "bench-common.h"

#define RUNS	9
#define TOP_K	8

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double unif(void)
{
	return (rnd() >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * The planning thread's CPU time: the machines the benchmark runs on are
 * shared, and wall time there measures the neighbours as well.
 */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct shape {
	const char *name;
	uint32_t layers, experts, slots, gpus, nodes, groups, tokens;
};

struct model {
	uint32_t L, E;
	double *cdf;		/* [E] Zipf over ranks */
	uint32_t *rank2e;	/* [L][E] */
	uint32_t *path;		/* [L - 1][E] */
};

static uint32_t draw(const struct model *m, uint32_t l)
{
	double u = unif();
	uint32_t lo = 0, hi = m->E - 1;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (m->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return m->rank2e[(size_t)l * m->E + lo];
}

static void shuffle(uint32_t *a, uint32_t n, double frac)
{
	uint32_t i, k = (uint32_t)(n * frac);

	/* frac of the positions swapped with random ones (1: a full shuffle). */
	for (i = 0; i < k; i++) {
		uint32_t x = frac >= 1 ? n - 1 - i : rnd() % n, y = rnd() % (frac >= 1 ? x + 1 : n);
		uint32_t t = a[x];

		a[x] = a[y];
		a[y] = t;
	}
}

static void model_init(struct model *m, uint32_t L, uint32_t E, double skew)
{
	double norm = 0, acc = 0;
	uint32_t e, l;

	m->L = L;
	m->E = E;
	m->cdf = malloc(E * sizeof(double));
	m->rank2e = malloc((size_t)L * E * sizeof(uint32_t));
	m->path = malloc((size_t)L * E * sizeof(uint32_t));
	for (e = 0; e < E; e++)
		norm += pow(e + 1, -skew);
	for (e = 0; e < E; e++) {
		acc += pow(e + 1, -skew) / norm;
		m->cdf[e] = acc;
	}
	m->cdf[E - 1] = 1.0;
	for (l = 0; l < L; l++) {
		for (e = 0; e < E; e++) {
			m->rank2e[(size_t)l * E + e] = e;
			m->path[(size_t)l * E + e] = e;
		}
		shuffle(m->rank2e + (size_t)l * E, E, 1);
		shuffle(m->path + (size_t)l * E, E, 1);
	}
}

static void model_free(struct model *m)
{
	free(m->cdf);
	free(m->rank2e);
	free(m->path);
}

/* Route @tokens tokens into @st (one step), then end the step. */
static int route(const struct model *m, struct accel_moe_stats *st, uint32_t tokens)
{
	uint32_t *x = malloc((size_t)m->L * TOP_K * sizeof(uint32_t)), t, l, k, j;
	int ret = 0;

	for (t = 0; t < tokens && !ret; t++) {
		for (l = 0; l < m->L; l++)
			for (k = 0; k < TOP_K; k++) {
				uint32_t *here = x + (size_t)l * TOP_K, e;

				do {
					if (l && unif() < 0.7)
						e = m->path[(size_t)(l - 1) * m->E +
							    x[(size_t)(l - 1) * TOP_K + k]];
					else
						e = draw(m, l);
					for (j = 0; j < k && here[j] != e; j++)
						;
					/* A repeat: a fresh draw. */
					if (j < k)
						e = draw(m, l);
					for (j = 0; j < k && here[j] != e; j++)
						;
				} while (j < k);
				here[k] = e;
			}
		ret = accel_moe_stats_route(st, x, 1, TOP_K);
	}
	free(x);
	return ret ? ret : accel_moe_stats_step_end(st);
}

/* Loads and co-activation of one phase (a fresh window). */
static int phase(const struct model *m, const struct shape *sh, float *w, uint32_t *co)
{
	struct accel_moe_stats *st = accel_moe_stats_create(sh->layers, sh->experts, 4,
							    ACCEL_MOE_STATS_COACT);
	int ret, i;

	if (!st)
		return -errno;
	for (i = 0, ret = 0; i < 4 && !ret; i++)
		ret = route(m, st, sh->tokens / 4);
	if (!ret)
		ret = accel_moe_stats_load(st, NULL, w, NULL);
	if (!ret)
		ret = accel_moe_stats_coact(st, co);
	accel_moe_stats_destroy(st);
	return ret;
}

enum { M_HIER, M_GLOBAL, M_OURS, M_OURS_NT, M_NR };
static const char *const method_name[M_NR] = { "EPLB hierarchical", "EPLB global",
					       "accel_moe_plan", "  no traffic term" };

static int plan(int method, const struct accel_moe_topo *t, const float *w, const uint32_t *co,
		const int32_t *cur, int32_t *out)
{
	ACCEL_OPTS(accel_moe_plan_opts, po, .flags = ACCEL_MOE_PLAN_NO_TRAFFIC);

	if (method == M_OURS || method == M_OURS_NT)
		return accel_moe_plan(t, w, co, cur, method == M_OURS ? NULL : &po, out, NULL, 0,
				      NULL, NULL);
	ACCEL_OPTS(accel_eplb_opts, o, .old_phy2log = cur,
		   .policy = method == M_HIER ? ACCEL_EPLB_HIERARCHICAL : ACCEL_EPLB_GLOBAL);
	return accel_eplb_rebalance(t, w, &o, out, NULL, 0, NULL, NULL);
}

static int run_shape(const struct shape *sh, double skew)
{
	ACCEL_OPTS(accel_moe_topo, t, .layers = sh->layers, .experts = sh->experts,
		   .slots = sh->slots, .devices = sh->gpus, .nodes = sh->nodes,
		   .groups = sh->groups);
	size_t nw = (size_t)sh->layers * sh->experts, np = (size_t)sh->layers * sh->slots;
	size_t nc = (size_t)(sh->layers - 1) * sh->experts * sh->experts;
	float *wa = malloc(nw * sizeof(float)), *wb = malloc(nw * sizeof(float));
	uint32_t *ca = malloc(nc * 4), *cb = malloc(nc * 4), l;
	int32_t *p0 = malloc(np * 4), *p = malloc(np * 4);
	struct model m;
	int ret, k, r;

	model_init(&m, sh->layers, sh->experts, skew);
	ret = phase(&m, sh, wa, ca);
	if (!ret)
		ret = plan(M_HIER, &t, wa, ca, NULL, p0);
	for (l = 0; l < sh->layers; l++)
		shuffle(m.rank2e + (size_t)l * sh->experts, sh->experts, 0.3);
	if (!ret)
		ret = phase(&m, sh, wb, cb);
	for (k = 0; k < M_NR && !ret; k++) {
		ACCEL_OPTS(accel_moe_cost, c);
		double ms[RUNS];

		for (r = 0; r < RUNS && !ret; r++) {
			double t0 = cpu_now();

			ret = plan(k, &t, wb, cb, p0, p);
			ms[r] = (cpu_now() - t0) * 1e3;
		}
		if (!ret)
			ret = accel_moe_cost(&t, wb, cb, p0, p, &c, NULL);
		if (ret)
			break;
		printf("  %-10s %4.1f  %-18s %7.4f %7.4f %7.2f%% %7.2f%% %6llu %6.1f%% %8.2f\n",
		       sh->name, skew, method_name[k], c.imbalance, c.max_imbalance,
		       100.0 * c.cross_node / c.traffic, 100.0 * c.cross_device / c.traffic,
		       (unsigned long long)c.moves, 100.0 * c.moves / np, bench_median(ms, RUNS));
	}
	model_free(&m);
	free(wa);
	free(wb);
	free(ca);
	free(cb);
	free(p0);
	free(p);
	return ret;
}

int main(int argc, char **argv)
{
	struct shape shapes[] = {
		{ "4x16", 4, 16, 24, 4, 2, 4, 8192 },
		{ "16x64", 16, 64, 80, 16, 4, 8, 16384 },
		{ "58x256", 58, 256, 320, 64, 8, 8, 16384 },
	};
	const double skews[] = { 0.6, 1.0, 1.4 };
	uint64_t seed = 1;
	uint32_t tokens = 0;
	int opt, i, j, ret;

	while ((opt = getopt(argc, argv, "s:t:")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			tokens = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-s SEED] [-t TOKENS]\n", argv[0]);
			return 2;
		}
	}
	printf("# kvaccel-bench-eplb: seed %llu, top-%d routing, paths followed with p 0.7,\n"
	       "# the load shifted between two phases (30%% of the Zipf ranks per layer);\n"
	       "# moves from phase A's EPLB-hierarchical placement, planning median of %d\n",
	       (unsigned long long)seed, TOP_K, RUNS);
	printf("  %-10s %4s  %-18s %7s %7s %8s %8s %6s %7s %8s\n", "shape", "skew", "method",
	       "max/mean", "worst", "x-node", "x-dev", "moves", "moved", "cpu ms");
	for (i = 0; i < (int)(sizeof(shapes) / sizeof(shapes[0])); i++)
		for (j = 0; j < 3; j++) {
			rng = seed * 1000 + i * 10 + j;
			if (tokens)
				shapes[i].tokens = tokens;
			ret = run_shape(&shapes[i], skews[j]);
			if (ret) {
				fprintf(stderr, "kvaccel-bench-eplb: %s: %s\n", shapes[i].name,
					strerror(-ret));
				return 1;
			}
		}
	return 0;
}
