// SPDX-License-Identifier: MIT
/*
 * libaccel - the cost-aware expert placement planner (accel_moe_plan();
 * Documentation/moe.rst, "The cost-aware planner"). Per layer, in order:
 *
 * 1. Replica counts as EPLB's replication (the counts of its global
 *    policy), and the balance bound B: the largest device load of EPLB's
 *    global packing of those replicas, times 1 + balance_slack.
 * 2. Co-activation affinity of each expert to each node: the tokens it
 *    shares with the experts of the layer before (as just planned) and of
 *    the layer after (as currently placed).
 * 3. Candidates: (a) "sticky": each replica the current placement has in a
 *    slot stays there while its device stays under B (heaviest replicas
 *    first, each on its lightest old device); the rest go heaviest first
 *    to a device under B on the node of most affinity (else the lightest
 *    device with a free slot); then swaps that lower the heaviest device
 *    repair the balance. Tried with the keep threshold at B, then at 95%
 *    of B. (b) EPLB's global packing, each pack given to the device that
 *    holds most of its experts, the experts a device held in their old
 *    slots (vLLM's rule). (c) Every current replica kept (the fewest
 *    moves). Without max_moves the first of (a), (a) at 95%, (b) under the
 *    bound is taken; with it, the lowest peak within the budget, then the
 *    fewest moves, at worst the current placement.
 * 4. Traffic: for each slot, a swap with a slot on the node its replica
 *    has most affinity to, when both devices stay under the bound and the
 *    traffic saved exceeds move_tokens per added move.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "plan.h"

/*
 * The planner's buffers share one allocation (planner_layout()). Under
 * ASan they lie apart and the gaps are poisoned: an overrun of one is
 * still reported, as if each had its own.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define CARVE_GAP	32
#else
#define CARVE_GAP	0
#define ASAN_POISON_MEMORY_REGION(p, n)		((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n)	((void)(p), (void)(n))
#endif

#define NONE	UINT32_MAX

typedef int32_t v8si __attribute__((vector_size(32)));
typedef uint32_t v8su __attribute__((vector_size(32)));
typedef float v8sf __attribute__((vector_size(32)));
/* Loads are sums of the same terms in different orders: equal within this. */
#define LOAD_EPS	1e-9
/* A traffic swap is looked for only where a replica gains this many move costs. */
#define SWAP_MIN	0.5

struct ov_ent {
	uint32_t ov, pack, dev;
};

struct planner {
	const struct plan_topo *t;
	float slack, move_tokens;
	uint32_t max_moves;
	bool traffic;

	/* this layer */
	const float *w;
	const int32_t *cur;		/* NULL: no current placement */
	uint32_t *sdev;			/* [R] each slot's device (no division per look) */
	uint32_t *cnt;			/* [E] replica counts */
	double *rw;			/* [E] load of one replica */
	uint32_t *order;		/* [E] experts by rw, descending */
	uint32_t *first, *next;		/* each expert's current slots: [E], [R] */
	double bound;

	/* co-activation affinity of each expert to each node: [N][E], and as [E][N] */
	float *aff, *affe;
	uint64_t *acc;			/* [N] scratch */
	uint32_t *jperm, *joff;		/* [E], [N + 2]: the next layer's experts by node */
	bool have_aff;

	/* scratch */
	uint32_t *rp2l, *rrank, *pk, *rk, *sorder, *items, *need, *ov, *tmp;
	float *ratio, *tp, *pw;
	double *load, *rws;
	uint32_t *nfree, *nmin;		/* [D] free slots */
	uint16_t *on_node;		/* [E][N] replicas of an expert on a node */
	struct ov_ent *ents;		/* [D * D] */
	int32_t *cand[4];		/* [R] each */
	int32_t *best;
};

static double cand_loads(const struct planner *pl, const int32_t *p, double *load)
{
	const struct plan_topo *t = pl->t;
	uint32_t s, d, spd = t->spd;
	double max = 0;

	for (d = 0; d < t->devices; d++) {
		double x = 0;

		for (s = d * spd; s < (d + 1) * spd; s++)
			x += pl->rw[p[s]];
		load[d] = x;
		if (x > max)
			max = x;
	}
	return max;
}

static uint32_t cand_moves(const struct planner *pl, const int32_t *p)
{
	uint32_t s, m = 0;

	if (!pl->cur)
		return pl->t->slots;
	for (s = 0; s < pl->t->slots; s++)
		m += p[s] != pl->cur[s];
	return m;
}

static inline float aff_of(const struct planner *pl, uint32_t e, uint32_t node)
{
	return pl->have_aff ? pl->affe[(size_t)e * pl->t->nodes + node] : 0;
}

/* --- (b) EPLB's global packing, packs to the devices that hold their experts */

/*
 * EPLB's global packing of this layer's replicas onto the devices (into
 * pk/rk); returns the largest device load, the balance bound.
 */
static double global_pack(struct planner *pl)
{
	const struct plan_topo *t = pl->t;
	uint32_t p, d;
	double max = 0;

	for (p = 0; p < t->slots; p++) {
		uint32_t e = pl->rp2l[p];

		pl->tp[p] = pl->w[e] / (float)pl->cnt[e];
	}
	plan_pack(pl->tp, t->slots, t->devices, pl->pk, pl->rk, pl->sorder, pl->pw, pl->items);
	for (d = 0; d < t->devices; d++)
		pl->load[d] = 0;
	for (p = 0; p < t->slots; p++)
		pl->load[pl->pk[p]] += pl->rw[pl->rp2l[p]];
	for (d = 0; d < t->devices; d++)
		if (pl->load[d] > max)
			max = pl->load[d];
	return max;
}

/* global_pack()'s packs given to the devices that hold most of their experts. */
static void build_global(struct planner *pl, int32_t *out, struct ov_ent *ents)
{
	const struct plan_topo *t = pl->t;
	uint32_t D = t->devices, R = t->slots, spd = t->spd;
	uint32_t *pack2dev = pl->tmp, *dev_used = pl->tmp + D, p, s, d, n = 0, k;

	for (d = 0; d < D; d++) {
		pack2dev[d] = NONE;
		dev_used[d] = 0;
	}
	if (pl->cur) {
		/* Overlap of each pack with each device's current experts. */
		memset(pl->ov, 0, (size_t)D * D * sizeof(*pl->ov));
		for (p = 0; p < R; p++)
			for (s = pl->first[pl->rp2l[p]]; s != NONE; s = pl->next[s])
				pl->ov[(size_t)pl->pk[p] * D + pl->sdev[s]]++;
		/*
		 * Pairs by overlap, the largest first, (pack, device) order among
		 * equals: a counting sort (an overlap is at most slots per device).
		 */
		{
			uint32_t *bucket = pl->need, v, total = 0;

			memset(bucket, 0, (spd + 2) * sizeof(*bucket));
			for (k = 0; k < D * D; k++)
				if (pl->ov[k])
					bucket[spd + 1 - (pl->ov[k] > spd ? spd : pl->ov[k])]++;
			for (v = 0; v <= spd + 1; v++) {
				uint32_t c = bucket[v];

				bucket[v] = total;
				total += c;
			}
			for (p = 0; p < D; p++)
				for (d = 0; d < D; d++) {
					uint32_t o = pl->ov[(size_t)p * D + d];

					if (o)
						ents[bucket[spd + 1 - (o > spd ? spd : o)]++] =
							(struct ov_ent){ o, p, d };
				}
			n = total;
		}
		for (k = 0; k < n; k++)
			if (pack2dev[ents[k].pack] == NONE && !dev_used[ents[k].dev]) {
				pack2dev[ents[k].pack] = ents[k].dev;
				dev_used[ents[k].dev] = 1;
			}
	}
	for (p = 0, d = 0; p < D; p++) {
		if (pack2dev[p] != NONE)
			continue;
		while (dev_used[d])
			d++;
		pack2dev[p] = d;
		dev_used[d] = 1;
	}
	/* Each device's experts in rank order, then back into their old slots. */
	for (p = 0; p < R; p++)
		out[pack2dev[pl->pk[p]] * spd + pl->rk[p]] = (int32_t)pl->rp2l[p];
	if (!pl->cur)
		return;
	for (d = 0; d < D; d++) {
		int32_t *loc = out + (size_t)d * spd, *tmp = (int32_t *)pl->need;
		uint8_t *used = (uint8_t *)pl->sorder, *kept = used + spd;
		uint32_t i, j;

		memset(used, 0, 2 * spd);
		for (i = 0; i < spd; i++)
			tmp[i] = loc[i];
		for (i = 0; i < spd; i++)
			for (j = 0; j < spd; j++)
				if (!used[j] && tmp[j] == pl->cur[d * spd + i]) {
					loc[i] = tmp[j];
					used[j] = kept[i] = 1;
					break;
				}
		for (i = 0, j = 0; i < spd; i++) {
			if (kept[i])
				continue;
			while (used[j])
				j++;
			loc[i] = tmp[j];
			used[j] = 1;
		}
	}
}

/* --- (a), (c) sticky placements and the balance repair --------------------- */

/* Put replica @e into a free slot of device @d (the lowest). */
static void put(struct planner *pl, int32_t *out, uint32_t d, uint32_t e)
{
	uint32_t s = d * pl->t->spd;

	while (out[s] >= 0)
		s++;
	out[s] = (int32_t)e;
	pl->load[d] += pl->rw[e];
	pl->nfree[d]--;
}

/* The lightest device of node @n with a free slot (the first among equals), or NONE. */
static uint32_t node_lightest(const struct planner *pl, uint32_t n)
{
	uint32_t d, best = NONE, dpn = pl->t->dpn;

	for (d = n * dpn; d < (n + 1) * dpn; d++)
		if (pl->nfree[d] && (best == NONE || pl->load[d] < pl->load[best]))
			best = d;
	return best;
}

static void build_sticky(struct planner *pl, int32_t *out, double keep_bound, bool use_aff)
{
	const struct plan_topo *t = pl->t;
	uint32_t i, e, s, d, k, n;

	for (s = 0; s < t->slots; s++)
		out[s] = -1;
	for (d = 0; d < t->devices; d++) {
		pl->load[d] = 0;
		pl->nfree[d] = t->spd;
	}
	for (e = 0; e < t->experts; e++)
		pl->need[e] = pl->cnt[e];
	for (i = 0; pl->cur && i < t->experts; i++) {
		e = pl->order[i];
		while (pl->need[e]) {
			uint32_t bs = NONE;

			for (s = pl->first[e]; s != NONE; s = pl->next[s])
				if (out[s] < 0 && (bs == NONE ||
				    pl->load[pl->sdev[s]] < pl->load[pl->sdev[bs]]))
					bs = s;
			if (bs == NONE || pl->load[pl->sdev[bs]] + pl->rw[e] > keep_bound)
				break;
			out[bs] = (int32_t)e;
			pl->load[pl->sdev[bs]] += pl->rw[e];
			pl->nfree[pl->sdev[bs]]--;
			pl->need[e]--;
		}
	}
	/*
	 * The rest, heaviest first: to a device under the bound if any, on the
	 * node with the most affinity, the lightest device there (the first
	 * among equals). Each node's lightest device with a free slot is kept
	 * (a device that does not fit means none of its node does).
	 */
	for (n = 0; n < t->nodes; n++)
		pl->nmin[n] = node_lightest(pl, n);
	for (i = 0; i < t->experts; i++) {
		e = pl->order[i];
		for (k = 0; k < pl->need[e]; k++) {
			uint32_t bd = NONE, bn = NONE;
			bool bfit = false;
			float baff = 0;

			for (n = 0; n < t->nodes; n++) {
				bool fit;
				float a;

				d = pl->nmin[n];
				if (d == NONE)
					continue;
				fit = pl->load[d] + pl->rw[e] <= pl->bound * (1 + LOAD_EPS);
				a = use_aff ? aff_of(pl, e, n) : 0;
				if (bd == NONE || (fit && !bfit) ||
				    (fit == bfit && (a > baff ||
				     (a == baff && pl->load[d] < pl->load[bd])))) {
					bd = d;
					bn = n;
					bfit = fit;
					baff = a;
				}
			}
			put(pl, out, bd, e);
			pl->nmin[bn] = node_lightest(pl, bn);
		}
	}
}

/* The moves a slot's change from @from to @to adds (-1, 0 or 1). */
static inline int move_delta(const struct planner *pl, uint32_t s, int32_t from, int32_t to)
{
	if (!pl->cur)
		return 0;
	return (to != pl->cur[s]) - (from != pl->cur[s]);
}

/* Repairs look at this many of the lightest devices first. */
#define REPAIR_LIGHT	8

/* The @k lightest devices into @out (fewer if there are fewer); returns how many. */
static uint32_t lightest(const struct planner *pl, uint32_t *out, uint32_t k)
{
	uint32_t d, n = 0, i;

	for (d = 0; d < pl->t->devices; d++) {
		if (n < k)
			n++;
		else if (pl->load[d] >= pl->load[out[n - 1]])
			continue;
		for (i = n - 1; i > 0 && pl->load[out[i - 1]] > pl->load[d]; i--)
			out[i] = out[i - 1];
		out[i] = d;
	}
	return n;
}

/*
 * Swaps of slot @s1 (on the heaviest device, at load @top) with the slots
 * of device @d2 that lower the pair's maximum: keep the best in @b1, @b2
 * (the lowest peak, then the fewest added moves).
 */
static inline void try_swaps(const struct planner *pl, const int32_t *out, const double *rws,
			     uint32_t s1, uint32_t d2, double top, uint32_t budget, uint32_t moves,
			     uint32_t *b1, uint32_t *b2, double *bpeak, int *bdm)
{
	double gap = top - pl->load[d2];
	uint32_t s2, spd = pl->t->spd;

	for (s2 = d2 * spd; s2 < (d2 + 1) * spd; s2++) {
		double delta = rws[s1] - rws[s2], peak;
		int dm;

		peak = top - delta > pl->load[d2] + delta ? top - delta : pl->load[d2] + delta;
		/* One branch: a swap that lowers the pair, no higher than the best. */
		if (!((delta > 0) & (delta < gap) & ((*b1 == NONE) | !(peak > *bpeak + 1e-12))))
			continue;
		dm = move_delta(pl, s1, out[s1], out[s2]) + move_delta(pl, s2, out[s2], out[s1]);
		if (budget && moves + dm > budget)
			continue;
		if (*b1 == NONE || peak < *bpeak - 1e-12 || dm < *bdm) {
			*b1 = s1;
			*b2 = s2;
			*bpeak = peak;
			*bdm = dm;
		}
	}
}

/*
 * Lower the heaviest device by swapping one of its slots with a lighter
 * replica elsewhere, until it is under the bound (or no swap helps).
 * Among helpful swaps: the lowest resulting pair maximum, then the fewest
 * added moves. Returns whether the bound holds. @rws is scratch of R.
 */
static bool repair(struct planner *pl, int32_t *out, uint32_t *moves, uint32_t budget,
		   double *rws)
{
	const struct plan_topo *t = pl->t;
	double lim = pl->bound * (1 + LOAD_EPS), max;
	uint32_t iter, d, d2, dmax, s1, spd = t->spd, light[REPAIR_LIGHT], nlight, pass, k;

	max = cand_loads(pl, out, pl->load);
	for (s1 = 0; s1 < t->slots; s1++)
		rws[s1] = pl->rw[out[s1]];
	for (iter = 0; iter < 4 * t->slots && max > lim; iter++) {
		uint32_t b1 = NONE, b2 = NONE;
		double bpeak = 0, top;
		int bdm = 0;

		for (dmax = 0, d = 1; d < t->devices; d++)
			if (pl->load[d] > pl->load[dmax])
				dmax = d;
		top = pl->load[dmax];
		/* The lightest devices first (where the best swaps are); all if none helps. */
		nlight = lightest(pl, light, REPAIR_LIGHT);
		/*
		 * A swap's peak is at least top - rws[s1] (the most s1 can shed)
		 * and (top + load[d2]) / 2: where either bound is over the best
		 * peak so far (with room for rounding), no swap there can take its
		 * place (skipped, same result).
		 */
		for (pass = 0; pass < 2 && b1 == NONE; pass++)
			for (s1 = dmax * spd; s1 < (dmax + 1) * spd; s1++) {
				if (b1 != NONE && top - rws[s1] > bpeak * (1 + 1e-12) + 1e-12)
					continue;
				for (k = 0; k < (pass ? t->devices : nlight); k++) {
					d2 = pass ? k : light[k];
					if (d2 == dmax || top - pl->load[d2] <= 0 ||
					    (b1 != NONE &&
					     (top + pl->load[d2]) / 2 > bpeak * (1 + 1e-12) + 1e-12))
						continue;
					try_swaps(pl, out, rws, s1, d2, top, budget, *moves, &b1, &b2,
						  &bpeak, &bdm);
				}
			}
		if (b1 == NONE)
			break;
		d = pl->sdev[b2];
		pl->load[dmax] -= rws[b1] - rws[b2];
		pl->load[d] += rws[b1] - rws[b2];
		{
			int32_t x = out[b1];
			double y = rws[b1];

			out[b1] = out[b2];
			out[b2] = x;
			rws[b1] = rws[b2];
			rws[b2] = y;
		}
		*moves += bdm;
		for (max = 0, d = 0; d < t->devices; d++)
			if (pl->load[d] > max)
				max = pl->load[d];
	}
	return max <= lim;
}

/* --- 4. traffic swaps ----------------------------------------------------- */

static void traffic_swaps(struct planner *pl, int32_t *out, uint32_t *moves, double move_cost)
{
	const struct plan_topo *t = pl->t;
	double lim = pl->bound * (1 + LOAD_EPS), *rws = pl->rws;
	uint32_t N = t->nodes, spn = t->spd * t->dpn, s1, s2, n;

	if (!pl->have_aff || N < 2)
		return;
	cand_loads(pl, out, pl->load);
	for (s1 = 0; s1 < t->slots; s1++)
		rws[s1] = pl->rw[out[s1]];
	memset(pl->on_node, 0, (size_t)t->experts * N * sizeof(*pl->on_node));
	for (s1 = 0; s1 < t->slots; s1++)
		pl->on_node[(size_t)out[s1] * N + s1 / spn]++;
	for (s1 = 0; s1 < t->slots; s1++) {
		uint32_t e1 = (uint32_t)out[s1], n1 = s1 / spn, d1 = pl->sdev[s1];
		uint32_t m = n1, b2 = NONE;
		double here = aff_of(pl, e1, n1), top = here, bscore = 0;
		int bdm = 0;

		for (n = 0; n < N; n++)
			if (aff_of(pl, e1, n) > top && !pl->on_node[(size_t)e1 * N + n]) {
				top = aff_of(pl, e1, n);
				m = n;
			}
		if (m == n1 || top - here <= SWAP_MIN * move_cost)
			continue;
		for (s2 = m * spn; s2 < (m + 1) * spn; s2++) {
			uint32_t e2, d2 = pl->sdev[s2];
			double diff = rws[s1] - rws[s2], gain, score;
			int dm;

			/*
			 * One branch for the four conditions (most slots fail one,
			 * unpredictably): both devices stay under the bound, e2 is
			 * another expert, and not on n1 already.
			 */
			e2 = (uint32_t)out[s2];
			if (!(!(pl->load[d1] - diff > lim) & !(pl->load[d2] + diff > lim) &
			      (e2 != e1) & !pl->on_node[(size_t)e2 * N + n1]))
				continue;
			gain = top - here + aff_of(pl, e2, n1) - aff_of(pl, e2, m);
			dm = move_delta(pl, s1, out[s1], out[s2]) +
			     move_delta(pl, s2, out[s2], out[s1]);
			if (pl->max_moves && *moves + dm > pl->max_moves)
				continue;
			score = gain - move_cost * dm;
			if (score > bscore) {
				bscore = score;
				b2 = s2;
				bdm = dm;
			}
		}
		if (b2 == NONE)
			continue;
		{
			uint32_t e2 = (uint32_t)out[b2], d2 = pl->sdev[b2];
			double diff = pl->rw[e1] - pl->rw[e2];

			pl->load[d1] -= diff;
			pl->load[d2] += diff;
			pl->on_node[(size_t)e1 * N + n1]--;
			pl->on_node[(size_t)e2 * N + m]--;
			pl->on_node[(size_t)e1 * N + m]++;
			pl->on_node[(size_t)e2 * N + n1]++;
			out[s1] = (int32_t)e2;
			out[b2] = (int32_t)e1;
			rws[s1] = pl->rw[e2];
			rws[b2] = pl->rw[e1];
			*moves += bdm;
		}
	}
}

/*
 * @a[e] += (@row[e] / 2) * @share for each e < @n: eight at a time (GCC's
 * vector extension; an AVX2 clone where the CPU has it, the same sums in
 * the same order either way, no fused multiply-add): counts halved into
 * int32, which the vector unit converts, and doubled back through the
 * share (2 / replicas); a token off at most.
 */
__attribute__((target_clones("avx2", "default")))
static void aff_add_row(float *a, const uint32_t *row, uint32_t n, float share)
{
	uint32_t e;

	for (e = 0; e + 8 <= n; e += 8) {
		v8su r;
		v8sf x;

		memcpy(&r, row + e, sizeof(r));
		memcpy(&x, a + e, sizeof(x));
		x += __builtin_convertvector((v8si)(r >> 1), v8sf) * share;
		memcpy(a + e, &x, sizeof(x));
	}
	for (; e < n; e++)
		a[e] += (float)(int32_t)(row[e] >> 1) * share;
}

/*
 * Affinity of each expert of this layer to each node: the co-activation
 * tokens it shares with the experts of the layer before (its new
 * placement @prev: each of j's replicas on a node counts 1 / cnt[j]) and
 * of the layer after (the current placement @nextp: a node with any
 * replica of j counts, shared among this expert's replicas). Rows of the
 * counts are read whole, in order.
 */
static void affinity(struct planner *pl, const uint32_t *co_prev, const int32_t *prev,
		     const int32_t *prevcnt, const uint32_t *co_next, const int32_t *nextp)
{
	const struct plan_topo *t = pl->t;
	uint32_t E = t->experts, N = t->nodes, spn = t->spd * t->dpn, j, e, s;
	uint16_t *has = pl->on_node;

	memset(pl->aff, 0, (size_t)E * N * sizeof(*pl->aff));
	pl->have_aff = false;
	if (N < 2)
		return;
	if (co_prev && prev) {
		for (s = 0; s < t->slots; s++) {
			j = (uint32_t)prev[s];
			aff_add_row(pl->aff + (size_t)(s / spn) * E, co_prev + (size_t)j * E, E,
				    2.0f / prevcnt[j]);
		}
		pl->have_aff = true;
	}
	if (co_next && nextp) {
		/*
		 * The next layer's experts on one node, grouped by node (jperm,
		 * node n's from joff[n]): a row's sum for a node is a gather into
		 * a register, no adds into memory. An expert on several nodes
		 * (the list @multi) is added to each of its nodes one by one.
		 */
		uint32_t *jnode = pl->tmp, *multi = pl->need, *perm = pl->jperm, *off = pl->joff;
		uint32_t nmulti = 0, i, k;

		for (j = 0; j < E; j++)
			jnode[j] = NONE;
		for (s = 0; s < t->slots; s++) {
			uint32_t n = s / spn;

			j = (uint32_t)nextp[s];
			if (jnode[j] == NONE) {
				jnode[j] = n;
			} else if (jnode[j] != n && jnode[j] != N) {
				jnode[j] = N;
				multi[nmulti++] = j;
			}
		}
		/* A counting sort, counts two ahead: placing leaves off[n] at n's start. */
		memset(off, 0, (N + 2) * sizeof(*off));
		for (j = 0; j < E; j++)
			if (jnode[j] < N)
				off[jnode[j] + 2]++;
		for (i = 2; i <= N + 1; i++)
			off[i] += off[i - 1];
		for (j = 0; j < E; j++)
			if (jnode[j] < N)
				perm[off[jnode[j] + 1]++] = j;
		memset(has, 0, (size_t)E * N * sizeof(*has));
		for (s = 0; s < t->slots; s++)
			has[(size_t)nextp[s] * N + s / spn] = 1;
		for (e = 0; e < E; e++) {
			const uint32_t *row = co_next + (size_t)e * E;
			float share = 1.0f / pl->cnt[e];

			/*
			 * The gather reads a row out of order, which the hardware's
			 * stream prefetch does not follow: the row after next is
			 * fetched ahead, a cache line at a time.
			 */
			if (e + 2 < E)
				for (k = 0; k < E; k += 64 / sizeof(*row))
					__builtin_prefetch(row + 2 * (size_t)E + k);
			for (i = 0; i < N; i++) {
				uint64_t a0 = 0, a1 = 0;

				for (k = off[i]; k + 2 <= off[i + 1]; k += 2) {
					a0 += row[perm[k]];
					a1 += row[perm[k + 1]];
				}
				if (k < off[i + 1])
					a0 += row[perm[k]];
				pl->acc[i] = a0 + a1;
			}
			for (i = 0; i < nmulti; i++) {
				uint32_t n;

				j = multi[i];
				for (n = 0; n < N; n++)
					if (has[(size_t)j * N + n])
						pl->acc[n] += row[j];
			}
			for (i = 0; i < N; i++)
				pl->aff[(size_t)i * E + e] += (float)pl->acc[i] * share;
		}
		pl->have_aff = true;
	}
	/* Expert-major for the lookups: an expert's nodes side by side. */
	for (e = 0; pl->have_aff && e < E; e++)
		for (j = 0; j < N; j++)
			pl->affe[(size_t)e * N + j] = pl->aff[(size_t)j * E + e];
}

/* --- the entry point ------------------------------------------------------ */

struct planner_mem {
	char *arena;		/* every buffer below and the planner's (planner_layout()) */
	size_t size;
	struct ov_ent *ents;	/* [D * D] */
	int32_t *all;		/* [5][R]: the candidates and the result */
	int32_t *cnts;		/* [L][E]: the new placement's counts */
};

/* The next @bytes of the arena at @base (NULL: only counted), 16-byte aligned. */
static void *carve(char *base, size_t *off, size_t bytes)
{
	size_t len = ((bytes + 15) & ~(size_t)15) + CARVE_GAP;
	void *p = base ? base + *off : NULL;

	if (base)
		ASAN_POISON_MEMORY_REGION(base + *off + bytes, len - bytes);
	*off += len;
	return p;
}

/*
 * The planner's buffers in one arena at @base (m->arena); with @base NULL
 * only its size. Returns the size in bytes.
 */
static size_t planner_layout(struct planner *pl, struct planner_mem *m,
			     const struct plan_topo *t, char *base)
{
	size_t E = t->experts, R = t->slots, D = t->devices, N = t->nodes, off = 0;
	size_t big = E > R ? E : R, tmp = 2 * D > E ? 2 * D : E, u = sizeof(uint32_t);

	pl->sdev = carve(base, &off, R * u);
	pl->cnt = carve(base, &off, E * u);
	pl->rw = carve(base, &off, E * sizeof(double));
	pl->order = carve(base, &off, E * u);
	pl->first = carve(base, &off, E * u);
	pl->next = carve(base, &off, R * u);
	pl->aff = carve(base, &off, E * N * sizeof(float));
	pl->affe = carve(base, &off, E * N * sizeof(float));
	pl->acc = carve(base, &off, N * sizeof(uint64_t));
	pl->jperm = carve(base, &off, E * u);
	pl->joff = carve(base, &off, (N + 2) * u);
	pl->rp2l = carve(base, &off, R * u);
	pl->rrank = carve(base, &off, R * u);
	pl->pk = carve(base, &off, R * u);
	pl->rk = carve(base, &off, R * u);
	pl->sorder = carve(base, &off, R * u);
	pl->items = carve(base, &off, 2 * D * u);
	pl->need = carve(base, &off, (big + 2) * u);
	pl->ov = carve(base, &off, D * D * u);
	pl->tmp = carve(base, &off, tmp * u);
	pl->ratio = carve(base, &off, E * sizeof(float));
	pl->tp = carve(base, &off, R * sizeof(float));
	pl->pw = carve(base, &off, D * sizeof(float));
	pl->load = carve(base, &off, D * sizeof(double));
	pl->rws = carve(base, &off, R * sizeof(double));
	pl->nfree = carve(base, &off, D * u);
	pl->nmin = carve(base, &off, N * u);
	pl->on_node = carve(base, &off, E * N * sizeof(uint16_t));
	m->ents = carve(base, &off, D * D * sizeof(struct ov_ent));
	m->all = carve(base, &off, 5 * R * sizeof(int32_t));
	m->cnts = carve(base, &off, (size_t)t->layers * E * sizeof(int32_t));
	return off;
}

static void planner_free(struct planner_mem *m)
{
	if (m->arena)
		ASAN_UNPOISON_MEMORY_REGION(m->arena, m->size);
	free(m->arena);
	m->arena = NULL;
}

static int planner_alloc(struct planner *pl, struct planner_mem *m, const struct plan_topo *t)
{
	uint32_t i;

	m->size = planner_layout(pl, m, t, NULL);
	m->arena = malloc(m->size);
	if (!m->arena)
		return -ENOMEM;
	planner_layout(pl, m, t, m->arena);
	for (i = 0; i < t->slots; i++)
		pl->sdev[i] = i / t->spd;
	for (i = 0; i < 4; i++)
		pl->cand[i] = m->all + (size_t)i * t->slots;
	pl->best = m->all + 4 * (size_t)t->slots;
	return 0;
}

/* One layer into @out (its slots). @prev/@prevcnt: the layer before, planned. */
static void plan_layer(struct planner *pl, uint32_t l, const float *weight,
		       const uint32_t *coact, const int32_t *cur, const int32_t *prev,
		       const int32_t *prevcnt, int32_t *out)
{
	const struct plan_topo *t = pl->t;
	uint32_t E = t->experts, R = t->slots, s, e, c, moves[4] = { 0 }, pick = NONE;
	double peak[4] = { 0 }, lim, move_cost, total = 0;
	uint32_t ncand;
	bool valid[4];

	pl->w = weight + (size_t)l * E;
	pl->cur = cur ? cur + (size_t)l * R : NULL;
	plan_replicate(pl->w, E, R, pl->rp2l, pl->rrank, pl->cnt, pl->ratio);
	for (e = 0; e < E; e++) {
		pl->rw[e] = (double)pl->w[e] / pl->cnt[e];
		total += pl->w[e];
	}
	plan_sort_desc(pl->ratio, pl->order, E, pl->tmp);
	for (e = 0; e < E; e++)
		pl->first[e] = NONE;
	for (s = R; pl->cur && s-- > 0;) {
		pl->next[s] = pl->first[pl->cur[s]];
		pl->first[pl->cur[s]] = s;
	}
	pl->have_aff = false;
	/* EPLB's global packing: the bound. */
	pl->bound = global_pack(pl) * (1.0 + pl->slack);
	lim = pl->bound * (1 + LOAD_EPS);
	if (pl->traffic && coact)
		affinity(pl, l ? coact + (size_t)(l - 1) * E * E : NULL, prev, prevcnt,
			 l + 1 < t->layers ? coact + (size_t)l * E * E : NULL,
			 cur && l + 1 < t->layers ? cur + (size_t)(l + 1) * R : NULL);
	/*
	 * Candidates: (a) sticky at B, repaired, and at 95% of B; (b) the
	 * global packing; (c) every current replica kept. Without max_moves
	 * the first under the bound of (a), (a) at 95%, (b) is taken (they
	 * come in the order of their moves); with it, all are weighed.
	 */
	for (c = 0; c < 4; c++)
		valid[c] = false;
	for (c = 1; c < 4 && pl->cur; c++) {
		if (!pl->max_moves && (c == 3 || (c == 2 && valid[1])))
			break;
		build_sticky(pl, pl->cand[c], c == 1 ? pl->bound : c == 2 ? 0.95 * pl->bound :
			     INFINITY, c < 3);
		moves[c] = cand_moves(pl, pl->cand[c]);
		if (c < 3)
			repair(pl, pl->cand[c], &moves[c], pl->max_moves, pl->rws);
		peak[c] = cand_loads(pl, pl->cand[c], pl->load);
		moves[c] = cand_moves(pl, pl->cand[c]);
		valid[c] = peak[c] <= lim;
	}
	for (c = 1; c < 3 && !pl->max_moves; c++)
		if (valid[c])
			break;
	if (!pl->cur || pl->max_moves || c == 3) {
		build_global(pl, pl->cand[0], pl->ents);
		peak[0] = cand_loads(pl, pl->cand[0], pl->load);
		moves[0] = cand_moves(pl, pl->cand[0]);
		valid[0] = peak[0] <= lim;
	}
	ncand = pl->cur && pl->max_moves ? 4 : 0;
	if (!ncand)
		pick = pl->cur && c < 3 ? c : 0;
	/* With max_moves: the lowest peak (under the bound all equal), the fewest moves. */
	for (c = 0; c < ncand; c++) {
		double pc, pb;

		if (moves[c] > pl->max_moves)
			continue;
		pc = valid[c] ? lim : peak[c];
		pb = pick == NONE ? 0 : valid[pick] ? lim : peak[pick];
		if (pick == NONE || pc < pb || (pc == pb && moves[c] < moves[pick]))
			pick = c;
	}
	if (pick == NONE) {
		/* Nothing within max_moves: the current placement stays. */
		memcpy(out, pl->cur, R * sizeof(*out));
		return;
	}
	memcpy(out, pl->cand[pick], R * sizeof(*out));
	move_cost = pl->move_tokens > 0 ? pl->move_tokens : total / E;
	if (pl->move_tokens >= 0 && valid[pick])
		traffic_swaps(pl, out, &moves[pick], pl->cur ? move_cost : 0);
}

ACCEL_EXPORT int accel_moe_plan(const struct accel_moe_topo *topo, const float *weight,
				const uint32_t *coact, const int32_t *cur_phy2log,
				const struct accel_moe_plan_opts *opts, int32_t *phy2log,
				int32_t *log2phy, uint32_t width, int32_t *logcnt,
				struct accel_moe_cost *cost)
{
	struct planner pl = { 0 };
	struct planner_mem m = { 0 };
	struct plan_topo t;
	int32_t *out = NULL;
	uint32_t l, flags;
	int ret;

	ret = plan_topo(topo, &t);
	if (ret)
		return ret;
	flags = ACCEL_OPTS_GET(opts, flags, 0);
	pl.t = &t;
	pl.slack = ACCEL_OPTS_GET(opts, balance_slack, 0.0f);
	pl.move_tokens = ACCEL_OPTS_GET(opts, move_tokens, 0.0f);
	pl.max_moves = ACCEL_OPTS_GET(opts, max_moves, 0);
	pl.traffic = !(flags & ACCEL_MOE_PLAN_NO_TRAFFIC);
	if (accel_opts_valid(opts, sizeof(*opts)) || (flags & ~ACCEL_MOE_PLAN_FLAGS) ||
	    !(pl.slack >= 0 && pl.slack <= 1) || !isfinite(pl.move_tokens) || !phy2log ||
	    (log2phy && !width) || (cost && accel_opts_valid(cost, sizeof(*cost))))
		return -EINVAL;
	ret = plan_check_weight(&t, weight);
	if (!ret && cur_phy2log)
		ret = plan_check_phy2log(&t, cur_phy2log, true);
	if (ret)
		return ret;
	ret = planner_alloc(&pl, &m, &t);
	out = malloc((size_t)t.layers * t.slots * sizeof(*out));
	if (ret || !out) {
		ret = -ENOMEM;
		goto done;
	}
	pl.ents = m.ents;
	for (l = 0; l < t.layers; l++) {
		int32_t *row = out + (size_t)l * t.slots;

		plan_layer(&pl, l, weight, coact, cur_phy2log,
			   l ? row - t.slots : NULL, l ? m.cnts + (size_t)(l - 1) * t.experts : NULL,
			   row);
		plan_index(&t, row, NULL, 0, m.cnts + (size_t)l * t.experts);
	}
	ret = -ENOSPC;
	if (log2phy && plan_max_count(&t, out, pl.tmp) > width)
		goto done;
	memcpy(phy2log, out, (size_t)t.layers * t.slots * sizeof(*out));
	for (l = 0; l < t.layers; l++)
		plan_index(&t, out + (size_t)l * t.slots,
			   log2phy ? log2phy + (size_t)l * t.experts * width : NULL, width,
			   logcnt ? logcnt + (size_t)l * t.experts : m.cnts + (size_t)l * t.experts);
	ret = 0;
	if (cost)
		ret = accel_moe_cost(topo, weight, coact, cur_phy2log, phy2log, cost, NULL);
done:
	free(out);
	planner_free(&m);
	return ret;
}
