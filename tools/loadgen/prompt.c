// SPDX-License-Identifier: MIT
/*
 * kvaccel-loadgen - deterministic prompts: the bytes of a request come from the seed and its
 * index (or, for Mooncake traces, each 512-token block from the seed and the block's hash id, so
 * equal ids share a prefix), printable ASCII so that they are valid as text or as token ids.
 */
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "workload.h"

#define HASH_BLOCK LG_HASH_BLOCK

static void fill(uint8_t *p, size_t n, uint64_t key)
{
	struct lg_rng r = { key };
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = 32 + lg_rng_next(&r) % 95;
}

uint8_t *lg_prompt_make(const struct lg_req *r, uint64_t seed, size_t idx, size_t *len)
{
	size_t n = r->prompt ? strlen(r->prompt) : r->input_len, b;
	uint8_t *p = malloc(n ? n : 1);

	if (!p)
		return NULL;
	*len = n;
	if (r->prompt) {
		memcpy(p, r->prompt, n);
		return p;
	}
	for (b = 0; b * HASH_BLOCK < n; b++) {
		size_t off = b * HASH_BLOCK, m = n - off < HASH_BLOCK ? n - off : HASH_BLOCK;
		uint64_t key;

		if (b < r->nr_hash_ids)
			key = seed * 0x100000001b3ULL ^ (0x68617368ULL << 32 | r->hash_ids[b]);
		else
			key = (seed * 0x100000001b3ULL ^ 0x7265710000000000ULL) + idx * 0x10001 + b;
		fill(p + off, m, key);
	}
	return p;
}
