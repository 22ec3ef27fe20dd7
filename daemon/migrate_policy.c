// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvacceld - the migration policy (migrate_policy.h): pure logic.
 */
#include <stddef.h>

#include "kvacceld.h"
#include "migrate_policy.h"

static bool high(const struct kvd_pol_config *cfg, int32_t priority)
{
	return priority >= cfg->high_priority;
}

static uint32_t headroom_of(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e)
{
	unsigned int i;

	if (!cfg->headroom)
		return 0;
	for (i = 0; i < e->nreqs; i++)
		if (high(cfg, e->reqs[i].priority))
			return cfg->headroom;
	return 0;
}

double kvd_pol_usage(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e)
{
	uint64_t used;

	if (!e->total)
		return 0;
	used = (uint64_t)(e->total - (e->free < e->total ? e->free : e->total)) +
	       (e->waiting ? e->hol_blocks : 0) + headroom_of(cfg, e);
	return (double)used / (double)e->total;
}

bool kvd_pol_fits(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *dst,
		  const struct kvd_pol_req *r)
{
	uint64_t need = r->blocks;

	if (!high(cfg, r->priority))
		need += cfg->headroom;
	if (dst->waiting)
		need += dst->hol_blocks;
	return need <= dst->free;
}

bool kvd_pol_dest_ok(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e)
{
	return e->feature && e->loaded && !e->draining && !e->no_inbound && e->in < cfg->max_in;
}

static bool src_ok(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e)
{
	return e->feature && e->loaded && e->out < cfg->max_out;
}

/* Usage of @e with @blocks more in use. */
static double usage_plus(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e,
			 int64_t blocks)
{
	struct kvd_pol_engine t = *e;
	int64_t f = (int64_t)e->free - blocks;

	t.free = f < 0 ? 0 : f > (int64_t)e->total ? e->total : (uint32_t)f;
	return kvd_pol_usage(cfg, &t);
}

/* The least used destination for @r from engine @from (after placing it): its index or -1. */
static int best_dest(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e,
		     unsigned int n, unsigned int from, const struct kvd_pol_req *r)
{
	double best = 0;
	int at = -1;
	unsigned int i;

	for (i = 0; i < n; i++) {
		double u;

		if (i == from || !kvd_pol_dest_ok(cfg, &e[i]) || !kvd_pol_fits(cfg, &e[i], r))
			continue;
		u = usage_plus(cfg, &e[i], r->blocks);
		if (at < 0 || u < best) {
			best = u;
			at = (int)i;
		}
	}
	return at;
}

/* Is @a before @b in migrate_order (tokens, then the request id)? */
static bool before(const struct kvd_pol_config *cfg, const struct kvd_pol_req *a,
		   const struct kvd_pol_req *b)
{
	if (a->tokens != b->tokens)
		return cfg->order == KVD_POL_LONGEST ? a->tokens > b->tokens :
						       a->tokens < b->tokens;
	return a->req < b->req;
}

/* Already picked this tick (the engine's copy of busy is the caller's). */
static bool picked(const struct kvd_pol_choice *out, unsigned int k, unsigned int from,
		   uint64_t req)
{
	unsigned int i;

	for (i = 0; i < k; i++)
		if (out[i].from == from && out[i].req == req)
			return true;
	return false;
}

static void take(struct kvd_pol_engine *e, struct kvd_pol_choice *c, unsigned int from,
		 unsigned int to, const struct kvd_pol_req *r, unsigned int reason)
{
	c->from = from;
	c->to = to;
	c->req = r->req;
	c->blocks = r->blocks;
	c->reason = reason;
	e[from].out++;
	e[to].in++;
	e[to].free -= r->blocks < e[to].free ? r->blocks : e[to].free;
}

/* Trigger 1: the candidates of a draining engine, in migrate_order. */
static unsigned int drain(const struct kvd_pol_config *cfg, struct kvd_pol_engine *e,
			  unsigned int n, struct kvd_pol_choice *out, unsigned int k,
			  unsigned int max)
{
	unsigned int s;

	for (s = 0; s < n && k < max; s++) {
		if (!e[s].draining)
			continue;
		while (k < max && src_ok(cfg, &e[s])) {
			const struct kvd_pol_req *best = NULL;
			int best_to = -1;
			unsigned int i;

			for (i = 0; i < e[s].nreqs; i++) {
				const struct kvd_pol_req *r = &e[s].reqs[i];
				int to;

				if (r->busy || picked(out, k, s, r->req))
					continue;
				if (best && !before(cfg, r, best))
					continue;
				to = best_dest(cfg, e, n, s, r);
				if (to < 0)
					continue;
				best = r;
				best_to = to;
			}
			if (!best)
				break;
			take(e, &out[k++], s, (unsigned int)best_to, best, KVD_MIGRATE_DRAIN);
		}
	}
	return k;
}

/* Trigger 2: room for a head-of-line request that does not fit. */
static unsigned int pressure(const struct kvd_pol_config *cfg, struct kvd_pol_engine *e,
			     unsigned int n, struct kvd_pol_choice *out, unsigned int k,
			     unsigned int max)
{
	unsigned int s;

	for (s = 0; s < n && k < max; s++) {
		const struct kvd_pol_req *cover = NULL, *largest = NULL;
		int cover_to = -1, largest_to = -1;
		uint32_t deficit;
		unsigned int i;

		if (e[s].draining || !e[s].waiting || e[s].free >= e[s].hol_blocks ||
		    !src_ok(cfg, &e[s]))
			continue;
		deficit = e[s].hol_blocks - e[s].free;
		for (i = 0; i < e[s].nreqs; i++) {
			const struct kvd_pol_req *r = &e[s].reqs[i];
			int to;

			if (r->busy || picked(out, k, s, r->req))
				continue;
			to = best_dest(cfg, e, n, s, r);
			if (to < 0)
				continue;
			if (r->blocks >= deficit) {
				if (!cover || r->blocks < cover->blocks ||
				    (r->blocks == cover->blocks && before(cfg, r, cover))) {
					cover = r;
					cover_to = to;
				}
			} else if (!largest || r->blocks > largest->blocks) {
				largest = r;
				largest_to = to;
			}
		}
		if (cover)
			take(e, &out[k++], s, (unsigned int)cover_to, cover, KVD_MIGRATE_PRESSURE);
		else if (largest)
			take(e, &out[k++], s, (unsigned int)largest_to, largest,
			     KVD_MIGRATE_PRESSURE);
	}
	return k;
}

/* Trigger 3: one request from the most used engine to the least used. */
static unsigned int balance(const struct kvd_pol_config *cfg, struct kvd_pol_engine *e,
			    unsigned int n, struct kvd_pol_choice *out, unsigned int k,
			    unsigned int max)
{
	int hi = -1, lo = -1;
	double uhi = 0, ulo = 0;
	const struct kvd_pol_req *best = NULL;
	unsigned int i;

	if (k >= max)
		return k;
	for (i = 0; i < n; i++) {
		double u = kvd_pol_usage(cfg, &e[i]);

		if (!e[i].draining && src_ok(cfg, &e[i]) && (hi < 0 || u > uhi)) {
			hi = (int)i;
			uhi = u;
		}
	}
	if (hi < 0)
		return k;
	for (i = 0; i < n; i++) {
		double u = kvd_pol_usage(cfg, &e[i]);

		if ((int)i != hi && kvd_pol_dest_ok(cfg, &e[i]) && (lo < 0 || u < ulo)) {
			lo = (int)i;
			ulo = u;
		}
	}
	if (lo < 0 || uhi - ulo <= cfg->balance_threshold)
		return k;
	for (i = 0; i < e[hi].nreqs; i++) {
		const struct kvd_pol_req *r = &e[hi].reqs[i];

		if (r->busy || picked(out, k, (unsigned int)hi, r->req) ||
		    !kvd_pol_fits(cfg, &e[lo], r))
			continue;
		/* Not so big that the move would be worth undoing. */
		if (usage_plus(cfg, &e[lo], r->blocks) >=
		    usage_plus(cfg, &e[hi], -(int64_t)r->blocks) + cfg->balance_threshold)
			continue;
		if (!best || before(cfg, r, best))
			best = r;
	}
	if (best)
		take(e, &out[k++], (unsigned int)hi, (unsigned int)lo, best, KVD_MIGRATE_BALANCE);
	return k;
}

unsigned int kvd_pol_pick(const struct kvd_pol_config *cfg, struct kvd_pol_engine *e,
			  unsigned int n, struct kvd_pol_choice *out, unsigned int max)
{
	unsigned int k = 0;

	k = drain(cfg, e, n, out, k, max);
	if (!cfg->enabled)
		return k;
	k = pressure(cfg, e, n, out, k, max);
	return balance(cfg, e, n, out, k, max);
}
