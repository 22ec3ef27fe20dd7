/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvacceld - the migration policy: which running requests to move between
 * the node's engines, from their last load reports. Pure logic (no I/O, no
 * clock, no allocation): tests/daemon/migrate_policy_unit.c runs it
 * natively. migrations.c feeds it and carries out what it picks.
 *
 * Virtual usage (Llumnix's): an engine's
 *
 *   (blocks_total - blocks_free + hol_blocks + headroom) / blocks_total
 *
 * where hol_blocks is what its head-of-line waiting request needs and
 * headroom is high_priority_headroom_blocks when the engine runs a
 * high-priority request (a candidate whose priority is at least
 * high_priority), else 0: room kept free for high-priority work counts as
 * used, so the policy moves load away from engines serving it.
 *
 * Fit: a request fits a destination when its blocks are at most the
 * destination's free blocks, less high_priority_headroom_blocks for a
 * request below high_priority (a high-priority request may use the
 * headroom), and a waiting request of the destination's own still fits
 * after it (free - blocks >= hol_blocks when it has one waiting). Every
 * migration picked fits its destination.
 *
 * Triggers, in this order, each tick:
 *  1. drain: every candidate of a draining engine, each to the destination
 *     with the lowest virtual usage after it that it fits;
 *  2. pressure (policy enabled): an engine whose head-of-line request does
 *     not fit (free < hol_blocks) moves a running request so that it does:
 *     the candidate with the fewest blocks that covers the deficit (ties:
 *     the shortest), or, when none covers it alone, the largest that fits
 *     somewhere; to the least used destination that it fits;
 *  3. balance (policy enabled): when the highest virtual usage exceeds the
 *     lowest by more than balance_threshold, one request from the highest
 *     to the lowest, chosen by migrate_order (shortest or longest in
 *     tokens first) among those that fit and leave the destination's usage
 *     below the source's plus the threshold (no move that would be moved
 *     straight back).
 *
 * Limits: an engine is the source of at most max_out and the destination
 * of at most max_in migrations at a time (those in flight count); a
 * request in flight is not picked again; no destination that is draining,
 * refuses migrations in (KVD_LOAD_NO_INBOUND), has not announced
 * KVD_FEAT_MIGRATION or has sent no load; never the source itself.
 */
#ifndef KVD_MIGRATE_POLICY_H
#define KVD_MIGRATE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum kvd_pol_order {
	KVD_POL_SHORTEST = 0,
	KVD_POL_LONGEST = 1,
};

struct kvd_pol_config {
	bool enabled;			/* triggers 2 and 3; drain always */
	unsigned int max_out, max_in;
	double balance_threshold;	/* 0 to 1 */
	enum kvd_pol_order order;
	uint32_t headroom;		/* high_priority_headroom_blocks */
	int32_t high_priority;		/* a request at or above it is high priority */
};

struct kvd_pol_req {
	uint64_t req;
	uint32_t tokens, blocks;
	int32_t priority;
	bool busy;			/* in a migration already, or backing off after failed ones */
};

/* One engine as the policy sees it. The policy updates @free, @out, @in as it picks. */
struct kvd_pol_engine {
	bool feature;			/* KVD_FEAT_MIGRATION */
	bool loaded;			/* a load was reported */
	bool draining, no_inbound;
	uint32_t total, free, hol_blocks, running, waiting;
	unsigned int out, in;		/* migrations in flight from it, to it */
	const struct kvd_pol_req *reqs;
	unsigned int nreqs;
};

struct kvd_pol_choice {
	unsigned int from, to;		/* indexes in the engines' array */
	uint64_t req;
	uint32_t blocks;
	unsigned int reason;		/* enum kvd_migrate_reason */
};

/* Virtual usage of @e (0 for an engine with no blocks). */
double kvd_pol_usage(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e);

/* Does @r fit @dst (the blocks rule above; not the limits)? */
bool kvd_pol_fits(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *dst,
		  const struct kvd_pol_req *r);

/* May @e be a destination at all (feature, load, not draining, inbound, under max_in)? */
bool kvd_pol_dest_ok(const struct kvd_pol_config *cfg, const struct kvd_pol_engine *e);

/*
 * One tick: up to @max migrations into @out, in trigger order; their count.
 * @e (of @n) is updated as if each started: the source's out, the
 * destination's in and free blocks.
 */
unsigned int kvd_pol_pick(const struct kvd_pol_config *cfg, struct kvd_pol_engine *e,
			  unsigned int n, struct kvd_pol_choice *out, unsigned int max);

#endif
