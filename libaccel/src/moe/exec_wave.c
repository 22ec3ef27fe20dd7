// SPDX-License-Identifier: MIT
/*
 * libaccel - the executor's move plan: placement checks and the next wave
 * of changes of one layer (store_logic.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_logic.h"

int moe_placement_check(const int32_t *p, uint32_t num_slots, uint32_t experts)
{
	uint32_t *cnt, s, e;
	int ret = 0;

	if (!p || !num_slots || !experts || num_slots < experts)
		return -EINVAL;
	cnt = calloc(experts, sizeof(*cnt));
	if (!cnt)
		return -ENOMEM;
	for (s = 0; s < num_slots && !ret; s++) {
		if (p[s] < 0 || (uint32_t)p[s] >= experts)
			ret = -EINVAL;
		else
			cnt[p[s]]++;
	}
	for (e = 0; e < experts && !ret; e++)
		if (!cnt[e])
			ret = -EINVAL;
	free(cnt);
	return ret;
}

/* Whether slot @s of @wave brings its device an expert it has no copy of. */
static bool needs_copy(const int32_t *cur, const int32_t *wave, uint32_t s, uint32_t spd,
		       moe_has_copy_fn has_copy, void *arg)
{
	return wave[s] != cur[s] && !has_copy(arg, s / spd, (uint32_t)wave[s]);
}

/* New copies of @wave on @device: distinct experts that need one. */
static uint32_t copies_on(const int32_t *cur, const int32_t *wave, uint32_t device,
			  uint32_t spd, moe_has_copy_fn has_copy, void *arg, uint32_t upto)
{
	uint32_t first = device * spd, s, t, n = 0;

	for (s = first; s < first + spd && s < upto; s++) {
		if (!needs_copy(cur, wave, s, spd, has_copy, arg))
			continue;
		for (t = first; t < s; t++)
			if (wave[t] == wave[s] && needs_copy(cur, wave, t, spd, has_copy, arg))
				break;
		if (t == s)
			n++;
	}
	return n;
}

int moe_next_wave(const int32_t *cur, const int32_t *target, uint32_t num_slots,
		  uint32_t experts, uint32_t spd, uint32_t k, moe_has_copy_fn has_copy,
		  void *arg, int32_t *wave, bool *over_k)
{
	uint32_t *cnt, s, e, changed = 0;
	bool again;

	if (!cur || !target || !wave || !has_copy || !over_k || !spd || num_slots % spd || !k)
		return -EINVAL;
	if (moe_placement_check(cur, num_slots, experts) ||
	    moe_placement_check(target, num_slots, experts))
		return -EINVAL;
	*over_k = false;
	cnt = calloc(experts, sizeof(*cnt));
	if (!cnt)
		return -ENOMEM;
	/* Greedy, in slot order: rebinds always, copies while the device has room. */
	memcpy(wave, cur, num_slots * sizeof(*wave));
	for (s = 0; s < num_slots; s++) {
		if (cur[s] == target[s])
			continue;
		wave[s] = target[s];
		if (copies_on(cur, wave, s / spd, spd, has_copy, arg, s + 1) > k)
			wave[s] = cur[s];
	}
	/* Put back changes that leave an expert with no slot, the highest first. */
	do {
		again = false;
		memset(cnt, 0, experts * sizeof(*cnt));
		for (s = 0; s < num_slots; s++)
			cnt[wave[s]]++;
		for (e = 0; e < experts && !again; e++) {
			if (cnt[e])
				continue;
			for (s = num_slots; s-- > 0;)
				if (cur[s] == (int32_t)e && wave[s] != cur[s]) {
					wave[s] = cur[s];
					again = true;
					break;
				}
		}
	} while (again);
	free(cnt);
	for (s = 0; s < num_slots; s++)
		changed += wave[s] != cur[s];
	if (!changed) {
		for (s = 0; s < num_slots; s++)
			changed += target[s] != cur[s];
		if (changed) {
			memcpy(wave, target, num_slots * sizeof(*wave));
			*over_k = true;
		}
	}
	return (int)changed;
}

uint32_t moe_block_size(uint64_t bytes, uint32_t *blocks)
{
	uint64_t b, n;

	for (b = 2u << 20; b >= 4096; b >>= 1) {
		n = (bytes + b - 1) / b;
		if (!n)
			n = 1;
		if ((n * b - bytes) * 8 <= bytes) {
			*blocks = (uint32_t)n;
			return (uint32_t)b;
		}
	}
	n = (bytes + 4095) / 4096;
	*blocks = n ? (uint32_t)n : 1;
	return 4096;
}
