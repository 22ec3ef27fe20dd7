// SPDX-License-Identifier: MIT
/*
 * libaccel - the scheduler under memory pressure (accel_sched_release()):
 * cached blocks go first, then running requests (tier 0) or swapped ones
 * (tier 1) in the policy's victim order, until enough blocks are free.
 */
#include "../internal.h"
#include "../bm/bm.h"
#include "sched.h"

static int tier_free(struct accel_sched *s, uint32_t tier, uint64_t *free_blocks)
{
	struct accel_bm_tier_stats st = { .sz = sizeof(st) };
	int ret = accel_bm_tier_stats(s->bm, tier, &st);

	*free_blocks = st.free;
	return ret;
}

/* The swapped request to drop first (the policy's victim order), SREQ_NONE. */
static uint32_t pick_swapped(struct accel_sched *s)
{
	uint32_t i, best = SREQ_NONE;

	for (i = 0; i < s->max_req; i++) {
		struct sreq *r = R(s, i);

		if (!r->used || r->state != ACCEL_SCHED_SWAPPED)
			continue;
		if (best == SREQ_NONE || sched_victim_cmp(s, r, R(s, best)) < 0)
			best = i;
	}
	return best;
}

ACCEL_EXPORT int accel_sched_release(struct accel_sched *s, uint32_t tier, uint64_t blocks,
				     uint64_t now_ns, struct accel_sched_release_out *out)
{
	struct accel_sched_release_out v = { .sz = sizeof(v) };
	uint64_t before, now_free, want;
	int ret;

	if (!s || (out && out->sz < sizeof(out->sz)))
		return -EINVAL;
	ret = accel_opts_valid(out, sizeof(*out));
	if (ret)
		return ret;
	if (tier >= s->nr_tiers || tier > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (now_ns > s->now)
		s->now = now_ns;
	ret = tier_free(s, tier, &before);
	if (ret)
		goto out;
	want = blocks > UINT32_MAX ? UINT32_MAX : blocks;
	ret = accel_bm_evict(s->bm, tier, (uint32_t)want);
	if (ret < 0)
		goto out;
	v.dropped_cached = (uint64_t)ret;
	for (;;) {
		uint64_t pend0 = s->pending_free0, got;
		uint32_t id;

		tier_free(s, tier, &now_free);
		got = now_free - before;
		if (got + v.pending >= want)
			break;
		id = tier == 0 ? sched_pick_victim(s, false) : pick_swapped(s);
		if (id == SREQ_NONE)
			break;
		if (tier == 0) {
			sched_preempt(s, R(s, id), NULL, NULL);
			if (R(s, id)->state == ACCEL_SCHED_SWAPPING_OUT) {
				v.swapped_out++;
				v.pending += s->pending_free0 - pend0;
			} else if (R(s, id)->state == ACCEL_SCHED_SWAPPED) {
				v.swapped_out++;
			} else {
				v.recomputed++;
			}
		} else {
			sched_q_remove(s, &s->swapq, R(s, id));
			R(s, id)->preempt_ns = R(s, id)->preempt_ns ? R(s, id)->preempt_ns : s->now;
			sched_to_recompute(s, R(s, id));
			v.recomputed++;
		}
		/* What the preemption released may be cached or a still-valid copy. */
		ret = accel_bm_evict(s->bm, tier, (uint32_t)(want - got - v.pending));
		if (ret > 0)
			v.dropped_cached += (uint64_t)ret;
	}
	tier_free(s, tier, &now_free);
	v.freed = now_free > before ? now_free - before : 0;
	ret = 0;
	if (v.swapped_out || v.recomputed)
		sched_wake(s);
out:
	pthread_mutex_unlock(&s->lock);
	if (!ret && out)
		memcpy((char *)out + sizeof(size_t), (char *)&v + sizeof(size_t),
		       (out->sz < sizeof(v) ? out->sz : sizeof(v)) - sizeof(size_t));
	return ret;
}
