// SPDX-License-Identifier: MIT
/*
 * libaccel - sequences on a block pool, and coalescing of block copies
 * (kv_seq.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_seq.h"

int kv_seq_init(struct kv_seq *s, uint32_t block_tokens)
{
	memset(s, 0, sizeof(*s));
	if (!block_tokens)
		return -EINVAL;
	s->block_tokens = block_tokens;
	s->tail = calloc(block_tokens, sizeof(*s->tail));
	return s->tail ? 0 : -ENOMEM;
}

int kv_seq_set_extra(struct kv_seq *s, const void *extra, size_t len)
{
	void *copy;

	if (s->nr_tokens || (len && !extra))
		return -EINVAL;
	copy = len ? malloc(len) : NULL;
	if (len && !copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, extra, len);
	free(s->extra);
	s->extra = copy;
	s->extra_len = len;
	return 0;
}

/* The key of full block @idx whose tokens are @tokens. */
static int block_key(const struct kv_seq *s, uint32_t idx, const struct kv_key *prev,
		     const int32_t *tokens, struct kv_key *out)
{
	return kv_key_block(idx ? prev : NULL, tokens, s->block_tokens, s->extra, s->extra_len,
			    out);
}

void kv_seq_release(struct kv_pool *p, struct kv_seq *s)
{
	kv_pool_put_many(p, s->blocks, s->nr_blocks);
	s->nr_blocks = 0;
	s->nr_tokens = 0;
	s->nr_committed = 0;
}

void kv_seq_fini(struct kv_pool *p, struct kv_seq *s)
{
	kv_seq_release(p, s);
	free(s->blocks);
	free(s->keys);
	free(s->tail);
	free(s->extra);
	free(s->pub);
	memset(s, 0, sizeof(*s));
}

/* Room for @n blocks in the table (nothing else changes). */
static int reserve(struct kv_seq *s, uint64_t n)
{
	uint32_t *b;
	struct kv_key *k;
	uint8_t *pub;
	uint64_t cap = s->cap ? s->cap : 8;

	if (n <= s->cap)
		return 0;
	if (n >= KV_NO_BLOCK)
		return -EINVAL;
	while (cap < n)
		cap *= 2;
	b = realloc(s->blocks, cap * sizeof(*b));
	if (!b)
		return -ENOMEM;
	s->blocks = b;
	k = realloc(s->keys, cap * sizeof(*k));
	if (!k)
		return -ENOMEM;
	s->keys = k;
	pub = realloc(s->pub, cap * sizeof(*pub));
	if (!pub)
		return -ENOMEM;
	s->pub = pub;
	s->cap = (uint32_t)cap;
	return 0;
}

int kv_seq_reserve(struct kv_seq *s, uint64_t tokens)
{
	return reserve(s, (tokens + s->block_tokens - 1) / s->block_tokens);
}

static int copies_reserve(struct kv_copies *c, uint32_t more)
{
	struct kv_copy *v;
	uint32_t cap;

	if (c->n + more <= c->cap)
		return 0;
	cap = c->cap ? c->cap : 8;
	while (cap < c->n + more)
		cap *= 2;
	v = realloc(c->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->v = v;
	c->cap = cap;
	return 0;
}

int kv_copies_add(struct kv_copies *c, uint32_t src, uint32_t dst)
{
	int ret = copies_reserve(c, 1);

	if (!ret)
		c->v[c->n++] = (struct kv_copy) { src, dst };
	return ret;
}

void kv_copies_fini(struct kv_copies *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/*
 * What kv_seq_append_keys() holds on its stack (about 3 KB): the blocks and
 * keys of an append of up to 64 blocks (a decode's, a prefill chunk's), and
 * a block's tokens.
 */
#define APPEND_STACK		64
#define APPEND_STACK_TOKENS	256

static uint32_t blocks_for(const struct kv_seq *s, uint64_t tokens)
{
	return (uint32_t)((tokens + s->block_tokens - 1) / s->block_tokens);
}

/* A partial last block that must be copied before it is written. */
static bool tail_needs_copy(const struct kv_pool *p, const struct kv_seq *s)
{
	uint32_t b;

	if (!(s->nr_tokens % s->block_tokens))
		return false;
	b = s->blocks[s->nr_blocks - 1];
	return kv_pool_refs(p, b) > 1 || kv_pool_keyed(p, b);
}

int kv_seq_append(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		  struct kv_copies *copies, const struct kv_prepare *prep)
{
	return kv_seq_append_keys(p, s, tokens, n, NULL, copies, prep);
}

int kv_seq_append_keys(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		       const struct kv_key *given, struct kv_copies *copies,
		       const struct kv_prepare *prep)
{
	uint32_t in_tail = (uint32_t)(s->nr_tokens % s->block_tokens);
	uint64_t after = s->nr_tokens + n, i;
	uint32_t need, cow, *fresh, k = 0, nr_keys, idx;
	/* An append of up to APPEND_STACK blocks allocates nothing. */
	uint32_t fresh_v[APPEND_STACK];
	struct kv_key keys_v[APPEND_STACK], *keys;
	int32_t buf_v[APPEND_STACK_TOKENS], *buf;
	int ret;

	if (!n)
		return 0;
	if (after / s->block_tokens >= KV_NO_BLOCK)
		return -EINVAL;
	cow = tail_needs_copy(p, s);
	if (cow && !copies)
		return -EINVAL;
	need = blocks_for(s, after) - s->nr_blocks + cow;
	ret = reserve(s, blocks_for(s, after));
	if (!ret && cow)
		ret = copies_reserve(copies, 1);
	if (ret)
		return ret;
	/* The keys of the blocks that fill, computed before anything changes. */
	nr_keys = (uint32_t)(after / s->block_tokens - s->nr_tokens / s->block_tokens);
	fresh = need <= APPEND_STACK ? fresh_v : calloc(need, sizeof(*fresh));
	keys = nr_keys <= APPEND_STACK ? keys_v : calloc(nr_keys, sizeof(*keys));
	buf = s->block_tokens <= APPEND_STACK_TOKENS ? buf_v :
	      calloc(s->block_tokens, sizeof(*buf));
	if (!fresh || !keys || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(buf, s->tail, in_tail * sizeof(*buf));
	idx = (uint32_t)(s->nr_tokens / s->block_tokens);
	if (given && nr_keys)
		memcpy(keys, given, nr_keys * sizeof(*keys));
	for (i = 0, k = 0; !given && i < n; i++) {
		uint32_t pos = (uint32_t)((s->nr_tokens + i) % s->block_tokens);

		buf[pos] = tokens[i];
		if (pos + 1 < s->block_tokens)
			continue;
		ret = block_key(s, idx, k ? &keys[k - 1] : idx ? &s->keys[idx - 1] : NULL, buf,
				&keys[k]);
		if (ret)
			goto out;
		k++;
		idx++;
	}
	ret = kv_pool_alloc(p, need, fresh);
	if (ret)
		goto out;
	if (need && prep) {
		ret = prep->fn(prep->arg, fresh, need);
		if (ret) {
			kv_pool_put_many(p, fresh, need);
			goto out;
		}
	}

	/* Nothing fails from here on. */
	k = 0;
	if (cow) {
		uint32_t old = s->blocks[s->nr_blocks - 1];

		kv_copies_add(copies, old, fresh[k]);
		s->blocks[s->nr_blocks - 1] = fresh[k++];
		kv_pool_put(p, old);
	}
	for (i = 0, idx = 0; i < n; i++) {
		uint32_t pos = (uint32_t)(s->nr_tokens % s->block_tokens);

		if (!pos) {
			memset(&s->keys[s->nr_blocks], 0, sizeof(s->keys[0]));
			s->pub[s->nr_blocks] = 0;
			s->blocks[s->nr_blocks++] = fresh[k++];
		}
		s->tail[pos] = tokens[i];
		s->nr_tokens++;
		if (pos + 1 == s->block_tokens) {
			uint32_t b = s->nr_blocks - 1;

			s->keys[b] = keys[idx++];
			if (s->defer_publish)
				continue;
			/* An identical cached block stays the other's: ours is not shared. */
			s->pub[b] = kv_pool_publish(p, s->blocks[b], &s->keys[b]) == s->blocks[b];
			s->nr_committed = b + 1;
		}
	}
out:
	if (fresh != fresh_v)
		free(fresh);
	if (keys != keys_v)
		free(keys);
	if (buf != buf_v)
		free(buf);
	return ret;
}

bool kv_seq_tail_shared(const struct kv_pool *p, const struct kv_seq *s)
{
	return tail_needs_copy(p, s);
}

int kv_seq_commit(struct kv_pool *p, struct kv_seq *s, uint32_t up_to)
{
	uint32_t full = (uint32_t)(s->nr_tokens / s->block_tokens), n = 0, i;

	if (up_to > full)
		return -ERANGE;
	/* The table slots are far apart: load them all before probing. */
	for (i = s->nr_committed; i < up_to; i++)
		kv_pool_prefetch(p, &s->keys[i]);
	for (i = s->nr_committed; i < up_to; i++) {
		if (kv_pool_keyed(p, s->blocks[i]))
			continue;	/* shared from the cache, or published before */
		s->pub[i] = kv_pool_publish(p, s->blocks[i], &s->keys[i]) == s->blocks[i];
		n += s->pub[i];
	}
	if (up_to > s->nr_committed)
		s->nr_committed = up_to;
	return (int)n;
}

uint32_t kv_seq_truncate(struct kv_pool *p, struct kv_seq *s, uint64_t n, const int32_t *tail)
{
	uint64_t left = n < s->nr_tokens ? s->nr_tokens - n : 0;
	uint32_t keep = blocks_for(s, left), drop = s->nr_blocks - keep, full;
	uint32_t in_tail = (uint32_t)(left % s->block_tokens);

	if (drop)
		kv_pool_put_many(p, s->blocks + keep, drop);
	s->nr_blocks = keep;
	s->nr_tokens = left;
	full = (uint32_t)(left / s->block_tokens);
	if (s->nr_committed > full)
		s->nr_committed = full;
	if (in_tail) {
		uint32_t b = s->blocks[keep - 1];

		/* Partial again: its content is about to change. */
		if (s->pub[keep - 1] && kv_pool_refs(p, b) == 1)
			kv_pool_unpublish(p, b);
		s->pub[keep - 1] = 0;
		memset(&s->keys[keep - 1], 0, sizeof(s->keys[0]));
		memcpy(s->tail, tail, in_tail * sizeof(*s->tail));
	}
	return drop;
}

void kv_seq_replace_tail(struct kv_pool *p, struct kv_seq *s, uint32_t b)
{
	uint32_t old = s->blocks[s->nr_blocks - 1];

	s->blocks[s->nr_blocks - 1] = b;
	kv_pool_put(p, old);
}

int kv_seq_start(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		 uint64_t *cached, struct kv_copies *copies, const struct kv_prepare *prep)
{
	return kv_seq_start_keys(p, s, tokens, n, NULL, cached, copies, prep);
}

int kv_seq_start_keys(struct kv_pool *p, struct kv_seq *s, const int32_t *tokens, uint64_t n,
		      const struct kv_key *keys, uint64_t *cached, struct kv_copies *copies,
		      const struct kv_prepare *prep)
{
	uint64_t full = n / s->block_tokens, i;
	struct kv_key key;
	int ret;

	if (s->nr_tokens || (n && !tokens))
		return -EINVAL;
	ret = reserve(s, blocks_for(s, n));
	if (ret)
		return ret;
	for (i = 0; i < full; i++) {
		uint32_t b;

		if (keys)
			key = keys[i];
		else
			ret = block_key(s, (uint32_t)i, i ? &s->keys[i - 1] : NULL,
					tokens + i * s->block_tokens, &key);
		if (ret) {
			kv_seq_release(p, s);
			return ret;
		}
		b = kv_pool_lookup(p, &key);
		if (b == KV_NO_BLOCK)
			break;
		kv_pool_get(p, b);
		kv_pool_hit(p, b);
		s->pub[s->nr_blocks] = 0;
		s->blocks[s->nr_blocks] = b;
		s->keys[s->nr_blocks++] = key;
		s->nr_tokens += s->block_tokens;
		s->nr_committed = s->nr_blocks;
	}
	if (cached)
		*cached = s->nr_tokens;
	ret = kv_seq_append_keys(p, s, tokens + s->nr_tokens, n - s->nr_tokens,
				 keys ? keys + s->nr_blocks : NULL, copies, prep);
	if (ret) {
		kv_seq_release(p, s);
		if (cached)
			*cached = 0;
	}
	return ret;
}

int kv_seq_fork(struct kv_pool *p, const struct kv_seq *src, struct kv_seq *dst)
{
	uint32_t i;
	int ret;

	if (dst->nr_tokens || dst->block_tokens != src->block_tokens)
		return -EINVAL;
	ret = kv_seq_set_extra(dst, src->extra, src->extra_len);
	if (!ret)
		ret = reserve(dst, src->nr_blocks);
	if (ret)
		return ret;
	for (i = 0; i < src->nr_blocks; i++) {
		kv_pool_get(p, src->blocks[i]);
		dst->blocks[i] = src->blocks[i];
		dst->keys[i] = src->keys[i];
		dst->pub[i] = 0;
	}
	dst->nr_blocks = src->nr_blocks;
	dst->nr_committed = src->nr_committed;
	dst->defer_publish = src->defer_publish;
	dst->nr_tokens = src->nr_tokens;
	memcpy(dst->tail, src->tail, src->block_tokens * sizeof(*src->tail));
	return 0;
}

static int by_src(const void *a, const void *b)
{
	const struct kv_copy *x = a, *y = b;

	return x->src < y->src ? -1 : x->src > y->src;
}

uint32_t kv_coalesce(struct kv_copy *copies, uint32_t n, uint32_t max_blocks,
		     struct kv_run *runs)
{
	uint32_t i, nr = 0;

	if (!n)
		return 0;
	if (!max_blocks)
		max_blocks = 1;
	qsort(copies, n, sizeof(*copies), by_src);
	for (i = 0; i < n; i++) {
		struct kv_run *r = nr ? &runs[nr - 1] : NULL;

		if (r && r->count < max_blocks && copies[i].src == r->src + r->count &&
		    copies[i].dst == r->dst + r->count) {
			r->count++;
			continue;
		}
		runs[nr++] = (struct kv_run) { copies[i].src, copies[i].dst, 1 };
	}
	return nr;
}
