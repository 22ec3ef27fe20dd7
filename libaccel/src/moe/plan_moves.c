// SPDX-License-Identifier: MIT
/*
 * libaccel - the move plan from one placement to another
 * (accel_moe_moves()): one move per slot whose expert changes, its bytes
 * from the nearest slot that holds the expert in the old placement, copies
 * grouped in rounds of at most max_inflight per destination device.
 */
#include <errno.h>
#include <stdlib.h>

#include "../internal.h"
#include "plan.h"

/*
 * The nearest old slot of @e to @slot: same device, then node, then any;
 * at one distance a slot that keeps @e in the new placement (a copy from
 * it does not race its own change), then the lowest. -1 if none.
 */
static int32_t nearest(const struct plan_topo *t, const int32_t *old, const int32_t *new,
		       const uint32_t *first, const uint32_t *next, uint32_t e, uint32_t slot,
		       uint32_t *kind)
{
	uint32_t s, best_rank = UINT32_MAX;
	int32_t best = -1;

	for (s = first[e]; s != UINT32_MAX; s = next[s]) {
		uint32_t k = plan_dev(t, s) == plan_dev(t, slot) ? ACCEL_MOE_MOVE_DEVICE :
			     plan_node(t, s) == plan_node(t, slot) ? ACCEL_MOE_MOVE_NODE :
			     ACCEL_MOE_MOVE_REMOTE;
		uint32_t rank = k * 2 + (new[s] != old[s]);

		if (rank < best_rank) {
			best_rank = rank;
			best = (int32_t)s;
		}
	}
	*kind = best < 0 ? ACCEL_MOE_MOVE_STORE : best_rank / 2;
	return best;
}

ACCEL_EXPORT int accel_moe_moves(const struct accel_moe_topo *topo, const int32_t *old_phy2log,
				 const int32_t *new_phy2log, uint32_t max_inflight,
				 struct accel_moe_move *moves, size_t cap, size_t *n)
{
	uint32_t *first = NULL, *next = NULL, *copies = NULL, l, s;
	struct plan_topo t;
	size_t count = 0;
	int ret;

	ret = plan_topo(topo, &t);
	if (!ret && (!n || (cap && !moves)))
		ret = -EINVAL;
	if (!ret)
		ret = plan_check_phy2log(&t, old_phy2log, false);
	if (!ret)
		ret = plan_check_phy2log(&t, new_phy2log, false);
	if (ret)
		return ret;
	if (!max_inflight)
		max_inflight = 1;
	first = malloc(t.experts * sizeof(*first));
	next = malloc(t.slots * sizeof(*next));
	copies = calloc(t.devices, sizeof(*copies));
	ret = -ENOMEM;
	if (!first || !next || !copies)
		goto out;
	for (l = 0; l < t.layers; l++) {
		const int32_t *old = old_phy2log + (size_t)l * t.slots;
		const int32_t *new = new_phy2log + (size_t)l * t.slots;

		/* Each expert's old slots, ascending. */
		for (s = 0; s < t.experts; s++)
			first[s] = UINT32_MAX;
		for (s = t.slots; s-- > 0;) {
			next[s] = first[old[s]];
			first[old[s]] = s;
		}
		for (s = 0; s < t.slots; s++) {
			struct accel_moe_move m;
			uint32_t d = plan_dev(&t, s);

			if (old[s] == new[s])
				continue;
			m.layer = l;
			m.slot = s;
			m.old_expert = old[s];
			m.new_expert = new[s];
			m.src_slot = nearest(&t, old, new, first, next, (uint32_t)new[s], s, &m.kind);
			m.round = 0;
			if (m.kind != ACCEL_MOE_MOVE_DEVICE)
				m.round = copies[d]++ / max_inflight;
			if (count < cap)
				moves[count] = m;
			count++;
		}
	}
	*n = count;
	ret = count > cap ? -ENOSPC : 0;
out:
	free(copies);
	free(next);
	free(first);
	return ret;
}
