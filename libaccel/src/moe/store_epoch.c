// SPDX-License-Identifier: MIT
/*
 * libaccel - steps in flight per table version (store_logic.h): what tells
 * the store when a retired table, and the copies only it names, can go.
 */
#include <errno.h>
#include <stdlib.h>

#include "store_logic.h"

static int find(const struct moe_epochs *e, uint64_t version)
{
	uint32_t i;

	for (i = 0; i < e->n; i++)
		if (e->ver[i] == version)
			return (int)i;
	return -1;
}

int moe_epochs_begin(struct moe_epochs *e, uint64_t version)
{
	int i = find(e, version);

	if (i >= 0) {
		e->cnt[i]++;
		return 0;
	}
	if (e->n == e->cap) {
		uint32_t cap = e->cap ? 2 * e->cap : 4;
		uint64_t *v = realloc(e->ver, cap * sizeof(*v));
		uint32_t *c;

		if (!v)
			return -ENOMEM;
		e->ver = v;
		c = realloc(e->cnt, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		e->cnt = c;
		e->cap = cap;
	}
	e->ver[e->n] = version;
	e->cnt[e->n] = 1;
	e->n++;
	return 0;
}

int moe_epochs_end(struct moe_epochs *e, uint64_t version)
{
	int i = find(e, version);

	if (i < 0)
		return -EINVAL;
	if (--e->cnt[i])
		return 0;
	e->n--;
	e->ver[i] = e->ver[e->n];
	e->cnt[i] = e->cnt[e->n];
	return 0;
}

bool moe_epochs_oldest(const struct moe_epochs *e, uint64_t *version)
{
	uint32_t i;

	if (!e->n)
		return false;
	*version = e->ver[0];
	for (i = 1; i < e->n; i++)
		if (e->ver[i] < *version)
			*version = e->ver[i];
	return true;
}

bool moe_epochs_has(const struct moe_epochs *e, uint64_t version)
{
	return find(e, version) >= 0;
}

uint32_t moe_epochs_count(const struct moe_epochs *e)
{
	uint32_t i, n = 0;

	for (i = 0; i < e->n; i++)
		n += e->cnt[i];
	return n;
}

void moe_epochs_fini(struct moe_epochs *e)
{
	free(e->ver);
	free(e->cnt);
	*e = (struct moe_epochs) { 0 };
}
