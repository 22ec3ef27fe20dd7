// SPDX-License-Identifier: MIT
/*
 * libaccel - the offload manager (accel_offload.h) over one block pool
 * (kv/kv_pool.h): a stored key is a keyed block of the pool. A block being
 * stored holds one reference (the store's) and is not ready; a ready block
 * holds one reference per load pinning it, and with none it is cached in
 * the pool, on its LRU (or ARC) lists, evictable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "../kv/kv_pool.h"

_Static_assert(sizeof(struct accel_bm_key) == sizeof(struct kv_key), "key layout");

struct accel_offload {
	pthread_mutex_t lock;
	struct kv_pool pool;
	uint8_t *ready;		/* per block: 1 once its store completed */
	uint32_t nr_storing, nr_ready, nr_pinned;
};

static const struct kv_key *K(const struct accel_bm_key *k)
{
	return (const struct kv_key *)k;
}

ACCEL_EXPORT struct accel_offload *accel_offload_create(const struct accel_offload_opts *opts)
{
	struct accel_offload *o;
	uint32_t evict, ghosts, blocks;
	int ret = accel_opts_valid(opts, sizeof(*opts));

	if (!ret && !opts)
		ret = -EINVAL;
	if (ret) {
		errno = -ret;
		return NULL;
	}
	blocks = ACCEL_OPTS_GET(opts, blocks, 0);
	evict = ACCEL_OPTS_GET(opts, evict, ACCEL_BM_EVICT_LRU);
	ghosts = ACCEL_OPTS_GET(opts, arc_ghosts, 0);
	if (!blocks || blocks >= (1u << 30) || evict > ACCEL_BM_EVICT_ARC ||
	    ghosts > blocks || ACCEL_OPTS_GET(opts, flags, 0)) {
		errno = EINVAL;
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	ret = kv_pool_init(&o->pool, blocks);
	if (!ret && evict == ACCEL_BM_EVICT_ARC)
		ret = kv_pool_use_arc(&o->pool, ghosts);
	if (!ret) {
		o->ready = calloc(blocks, 1);
		if (!o->ready)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = -pthread_mutex_init(&o->lock, NULL);
	if (ret) {
		free(o->ready);
		kv_pool_fini(&o->pool);
		free(o);
		errno = -ret;
		return NULL;
	}
	return o;
}

ACCEL_EXPORT void accel_offload_destroy(struct accel_offload *o)
{
	if (!o)
		return;
	pthread_mutex_destroy(&o->lock);
	kv_pool_fini(&o->pool);
	free(o->ready);
	free(o);
}

static bool bad_keys(const struct accel_offload *o, const struct accel_bm_key *keys, uint32_t n)
{
	return !o || (n && !keys);
}

/* The ready block of @key, or KV_NO_BLOCK. */
static uint32_t ready_block(const struct accel_offload *o, const struct accel_bm_key *key)
{
	uint32_t b = kv_pool_lookup(&o->pool, K(key));

	return b != KV_NO_BLOCK && o->ready[b] ? b : KV_NO_BLOCK;
}

ACCEL_EXPORT int accel_offload_lookup(struct accel_offload *o, const struct accel_bm_key *keys,
				      uint32_t n)
{
	uint32_t i;

	if (bad_keys(o, keys, n) || n > INT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	for (i = 0; i < n && ready_block(o, &keys[i]) != KV_NO_BLOCK; i++)
		;
	pthread_mutex_unlock(&o->lock);
	return (int)i;
}

/* Take a pin on ready block @b (it leaves the eviction lists at the first). */
static void pin(struct accel_offload *o, uint32_t b)
{
	if (!kv_pool_refs(&o->pool, b))
		o->nr_pinned++;
	kv_pool_get(&o->pool, b);
}

static void unpin(struct accel_offload *o, uint32_t b)
{
	kv_pool_put(&o->pool, b);
	if (!kv_pool_refs(&o->pool, b))
		o->nr_pinned--;
}

ACCEL_EXPORT int accel_offload_prepare_store(struct accel_offload *o,
					     const struct accel_bm_key *keys, uint32_t n,
					     uint32_t *blocks, struct accel_bm_key *evicted,
					     uint32_t *nr_evicted)
{
	struct kv_pool *p;
	uint32_t i, b, want = 0, got = 0, ne = 0, *fresh = NULL;
	int ret = 0;

	if (bad_keys(o, keys, n) || n > INT32_MAX || (n && (!blocks || !evicted)) ||
	    !nr_evicted)
		return -EINVAL;
	*nr_evicted = 0;
	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (kv_key_is_zero(K(&keys[i])))
			return -EINVAL;
	p = &o->pool;
	pthread_mutex_lock(&o->lock);
	/*
	 * Keys stored or being stored keep their block; the ready ones no load
	 * pins are pinned for the call so that making room cannot evict them.
	 * blocks[i] holds the block pinned (or NO_BLOCK) until the end.
	 */
	for (i = 0; i < n; i++) {
		b = kv_pool_lookup(p, K(&keys[i]));
		blocks[i] = ACCEL_OFFLOAD_NO_BLOCK;
		if (b == KV_NO_BLOCK) {
			want++;
		} else if (o->ready[b] && !kv_pool_refs(p, b)) {
			kv_pool_get(p, b);
			blocks[i] = b;
		}
	}
	if ((uint64_t)want > (uint64_t)p->nr_free + p->nr_cached) {
		ret = -ENOSPC;
		goto unprotect;
	}
	fresh = want ? malloc(want * sizeof(*fresh)) : NULL;
	if (want && !fresh) {
		ret = -ENOMEM;
		goto unprotect;
	}
	while (p->nr_free < want) {
		ret = kv_pool_evict(p, (struct kv_key *)&evicted[ne]);
		if (ret)
			goto unprotect;	/* not reached: counted above */
		ne++;
	}
	o->nr_ready -= ne;
	ret = kv_pool_alloc(p, want, fresh);
	if (ret)
		goto unprotect;	/* not reached: room made above */
unprotect:
	/*
	 * Unpin in reverse order of the keys so that the earliest (the chain's
	 * head, the most likely to be hit) ends up the most recent.
	 */
	for (i = n; i-- > 0;) {
		if (blocks[i] != ACCEL_OFFLOAD_NO_BLOCK) {
			kv_pool_put(p, blocks[i]);
			blocks[i] = ACCEL_OFFLOAD_NO_BLOCK;
		}
	}
	if (ret) {
		pthread_mutex_unlock(&o->lock);
		free(fresh);
		*nr_evicted = ne;
		return ret;
	}
	for (i = 0; i < n && got < want; i++) {
		if (kv_pool_lookup(p, K(&keys[i])) != KV_NO_BLOCK)
			continue;	/* stored, or a copy of an earlier key */
		b = fresh[got++];
		kv_pool_publish(p, b, K(&keys[i]));
		o->ready[b] = 0;
		blocks[i] = b;
		o->nr_storing++;
		ret++;
	}
	/* Room reserved for repeated keys goes back. */
	if (got < want)
		kv_pool_put_many(p, fresh + got, want - got);
	pthread_mutex_unlock(&o->lock);
	free(fresh);
	*nr_evicted = ne;
	return ret;
}

ACCEL_EXPORT int accel_offload_complete_store(struct accel_offload *o,
					      const struct accel_bm_key *keys, uint32_t n, int ok)
{
	uint32_t i, b;

	if (bad_keys(o, keys, n))
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	/* Last key first: the chain's head ends up the most recent. */
	for (i = n; i-- > 0;) {
		b = kv_pool_lookup(&o->pool, K(&keys[i]));
		if (b == KV_NO_BLOCK || o->ready[b])
			continue;	/* not being stored (or a repeated key) */
		o->nr_storing--;
		if (ok) {
			o->ready[b] = 1;
			o->nr_ready++;
		} else {
			kv_pool_unpublish(&o->pool, b);
		}
		kv_pool_put(&o->pool, b);
	}
	pthread_mutex_unlock(&o->lock);
	return 0;
}

ACCEL_EXPORT int accel_offload_prepare_load(struct accel_offload *o,
					    const struct accel_bm_key *keys, uint32_t n,
					    uint32_t *blocks)
{
	uint32_t i, b;

	if (bad_keys(o, keys, n) || (n && !blocks))
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	for (i = 0; i < n; i++) {
		blocks[i] = ready_block(o, &keys[i]);
		if (blocks[i] == KV_NO_BLOCK) {
			pthread_mutex_unlock(&o->lock);
			for (i = 0; i < n; i++)
				blocks[i] = ACCEL_OFFLOAD_NO_BLOCK;
			return -ENOENT;
		}
	}
	for (i = n; i-- > 0;) {
		b = blocks[i];
		pin(o, b);
		/* Off the lists now: ARC may move it to T2 safely. */
		kv_pool_hit(&o->pool, b);
	}
	pthread_mutex_unlock(&o->lock);
	return 0;
}

ACCEL_EXPORT int accel_offload_complete_load(struct accel_offload *o,
					     const struct accel_bm_key *keys, uint32_t n)
{
	uint32_t i, b;

	if (bad_keys(o, keys, n))
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	/* Last key first (the head most recent); undone if a pin is missing. */
	for (i = n; i-- > 0;) {
		b = ready_block(o, &keys[i]);
		if (b == KV_NO_BLOCK || !kv_pool_refs(&o->pool, b))
			break;
		unpin(o, b);
	}
	if (i != UINT32_MAX) {
		uint32_t j;

		for (j = n; --j > i;)
			pin(o, ready_block(o, &keys[j]));
		pthread_mutex_unlock(&o->lock);
		return -EINVAL;
	}
	pthread_mutex_unlock(&o->lock);
	return 0;
}

ACCEL_EXPORT int accel_offload_touch(struct accel_offload *o, const struct accel_bm_key *keys,
				     uint32_t n)
{
	uint32_t i, b;

	if (bad_keys(o, keys, n))
		return -EINVAL;
	pthread_mutex_lock(&o->lock);
	for (i = n; i-- > 0;) {
		b = ready_block(o, &keys[i]);
		if (b == KV_NO_BLOCK)
			continue;
		if (kv_pool_refs(&o->pool, b)) {
			kv_pool_hit(&o->pool, b);	/* pinned: on no list */
			continue;
		}
		/* Off its list, marked (ARC: T2), back at the most recent end. */
		kv_pool_get(&o->pool, b);
		kv_pool_hit(&o->pool, b);
		kv_pool_put(&o->pool, b);
	}
	pthread_mutex_unlock(&o->lock);
	return 0;
}

ACCEL_EXPORT int accel_offload_stats(struct accel_offload *o, struct accel_offload_stats *st)
{
	struct accel_offload_stats v = { .sz = sizeof(v) };
	size_t sz;
	int ret;

	if (!o || !st || st->sz < sizeof(st->sz))
		return -EINVAL;
	ret = accel_opts_valid(st, sizeof(*st));
	if (ret)
		return ret;
	pthread_mutex_lock(&o->lock);
	v.blocks = o->pool.nr_blocks;
	v.free = o->pool.nr_free;
	v.storing = o->nr_storing;
	v.ready = o->nr_ready;
	v.pinned = o->nr_pinned;
	v.evictions = o->pool.evictions;
	pthread_mutex_unlock(&o->lock);
	sz = st->sz < sizeof(v) ? st->sz : sizeof(v);
	memcpy((char *)st + sizeof(v.sz), (char *)&v + sizeof(v.sz), sz - sizeof(v.sz));
	return 0;
}
