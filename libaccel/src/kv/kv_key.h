/* SPDX-License-Identifier: MIT */
/*
 * libaccel - prefix-cache block keys: SHA-256 over (the parent block's key,
 * the block's tokens, the sequence's extra keys), so two blocks share a key
 * only if their whole prefix and extra keys (an adapter id, a cache salt)
 * are the same. Keys are compared in full: a 64-bit hash lets a crafted
 * prompt collide with another tenant's prefix (vLLM moved to SHA-256 after
 * its own advisory, GHSA-rm76-4mrf-v9r8). All zero means "no key".
 */
#ifndef ACCEL_KV_KEY_H
#define ACCEL_KV_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KV_KEY_BYTES	32

struct kv_key {
	uint8_t b[KV_KEY_BYTES];
};

static inline bool kv_key_is_zero(const struct kv_key *k)
{
	static const struct kv_key zero;

	return !memcmp(k, &zero, sizeof(*k));
}

static inline bool kv_key_eq(const struct kv_key *a, const struct kv_key *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* The first 64 bits, for hash tables. */
static inline uint64_t kv_key_bits(const struct kv_key *k)
{
	uint64_t v;

	memcpy(&v, k->b, sizeof(v));
	return v;
}

/*
 * The key of a full block of @n tokens after @parent (NULL for the first
 * block), with @extra_len bytes of extra keys: 0 or -ENOMEM / -EIO (the
 * digest could not be computed).
 */
int kv_key_block(const struct kv_key *parent, const int32_t *tokens, uint32_t n,
		 const void *extra, size_t extra_len, struct kv_key *out);

#endif
