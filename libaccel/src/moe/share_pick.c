// SPDX-License-Identifier: MIT
/*
 * libaccel - which of another instance's expert copies each copy of a new
 * store takes (store_logic.h): pure logic, tested natively.
 */
#include <errno.h>
#include <stdlib.h>

#include "store_logic.h"

int moe_share_index_build(struct moe_share_index *ix, const uint32_t *layer,
			  const uint32_t *expert, const int32_t *node, uint32_t n,
			  uint32_t layers, uint32_t experts)
{
	size_t keys = (size_t)layers * experts, k;
	uint32_t i, *at;

	*ix = (struct moe_share_index) { .experts = experts };
	for (i = 0; i < n; i++)
		if (layer[i] >= layers || expert[i] >= experts || node[i] < -1)
			return -EINVAL;
	ix->start = calloc(keys + 1, sizeof(*ix->start));
	ix->order = calloc(n ? n : 1, sizeof(*ix->order));
	ix->node = calloc(n ? n : 1, sizeof(*ix->node));
	ix->used = calloc(n ? n : 1, sizeof(*ix->used));
	at = calloc(keys ? keys : 1, sizeof(*at));
	if (!ix->start || !ix->order || !ix->node || !ix->used || !at) {
		free(at);
		moe_share_index_fini(ix);
		return -ENOMEM;
	}
	/* A counting sort by (layer, expert), stable: each bucket in the given order. */
	for (i = 0; i < n; i++)
		ix->start[(size_t)layer[i] * experts + expert[i] + 1]++;
	for (k = 0; k < keys; k++)
		ix->start[k + 1] += ix->start[k];
	for (k = 0; k < keys; k++)
		at[k] = ix->start[k];
	for (i = 0; i < n; i++)
		ix->order[at[(size_t)layer[i] * experts + expert[i]]++] = i;
	for (i = 0; i < n; i++)
		ix->node[i] = node[i];
	free(at);
	return 0;
}

void moe_share_index_fini(struct moe_share_index *ix)
{
	free(ix->start);
	free(ix->order);
	free(ix->node);
	free(ix->used);
	*ix = (struct moe_share_index) { 0 };
}

static bool node_fits(int32_t a, int32_t b)
{
	return a == -1 || b == -1 || a == b;
}

int moe_share_pick(struct moe_share_index *ix, uint32_t layer, uint32_t expert, int32_t node,
		   int *src)
{
	size_t key = (size_t)layer * ix->experts + expert;
	uint32_t j, first = ix->start[key], end = ix->start[key + 1];
	int pick = -1;

	*src = first < end ? (int)ix->order[first] : -1;
	for (j = first; j < end; j++) {
		uint32_t i = ix->order[j];

		if (!node_fits(ix->node[i], node))
			continue;
		if (*src == (int)ix->order[first] && !node_fits(ix->node[*src], node))
			*src = (int)i;
		if (!ix->used[i] && pick < 0)
			pick = (int)i;
	}
	if (pick >= 0)
		ix->used[pick] = true;
	return pick;
}
