// SPDX-License-Identifier: MIT
/*
 * libaccel - the tiered, paged KV cache (accel_kv_*): sequences' block
 * tables on a device tier and a host tier, prefix sharing and
 * copy-on-write (kv/kv_seq.c), and swapping sequences between the tiers in
 * coalesced transfers, moving only what changed since the last swap. The
 * memory and the copies are a backend's (kv/kv_backend.h: host, cuda);
 * this file is the bookkeeping, the same for every backend.
 *
 * Per sequence: the kv_seq's block table names device blocks (KV_NO_BLOCK
 * while the sequence is on the host); host[] names each block's host copy
 * (KV_NO_BLOCK if none) and dirty[] whether the device block has changed
 * since that copy was made. A swap out copies only blocks without a valid
 * host copy; a swap in reuses a device block still cached under the same
 * key instead of copying it, and publishes the keys of the blocks it
 * copied again (a swapped-in prefix is shared like any other).
 *
 * Locking: kv->lock protects everything in struct accel_kv and its
 * entries. Nothing waits with it held: a wait (progress, freeing a moving
 * sequence, a copy-on-write append) takes a reference to the move, drops
 * the lock, waits, retakes it and completes the move only if its entry is
 * still the one it was (same generation, same move). While a move is in
 * flight its sequence is ACCEL_KV_MOVING and other calls on it get -EBUSY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kv/kv_backend.h"

enum move_kind { MOVE_OUT, MOVE_IN, MOVE_COW };

/* A transfer in flight for an entry; refcounted (the entry's and waiters'). */
struct kv_move {
	unsigned int refs;
	enum move_kind kind;
	struct kv_xfer *x;
	uint32_t cow_block;	/* MOVE_COW: the private copy being made */
};

struct kv_entry {
	bool live;
	int place;		/* enum accel_kv_place */
	uint64_t gen;		/* tells a reused slot from the entry a waiter left */
	struct kv_seq s;
	uint32_t *host;
	uint8_t *dirty;
	uint32_t aux_cap;
	struct kv_move *move;	/* while ACCEL_KV_MOVING */
	struct accel_fence *legacy;	/* LIBACCEL_0.1 swaps: the cache's fence */
	void *win;		/* the backend's window, if mapped */
};

struct accel_kv {
	struct kv_backend *be;
	uint32_t block_tokens;
	pthread_mutex_t lock;
	struct kv_pool pool[KV_TIER_NR];
	struct kv_entry *e;
	uint32_t nr_e;
	uint64_t next_gen;
	struct accel_kv_stats st;
};

static struct kv_pool *dev_pool(struct accel_kv *kv)
{
	return &kv->pool[KV_TIER_DEV];
}

static int prepare_blocks(void *arg, const uint32_t *blocks, uint32_t n)
{
	struct accel_kv *kv = arg;

	return kv->be->ops->prepare ? kv->be->ops->prepare(kv->be, blocks, n) : 0;
}

struct accel_kv *kv_cache_create(const struct kv_backend_config *cfg, uint32_t block_tokens,
				 struct kv_backend *b)
{
	struct accel_kv *kv = calloc(1, sizeof(*kv));
	int ret = -ENOMEM;

	if (!kv)
		goto err;
	kv->be = b;
	kv->block_tokens = block_tokens;
	pthread_mutex_init(&kv->lock, NULL);
	ret = kv_pool_init(&kv->pool[KV_TIER_DEV], cfg->device_blocks);
	if (!ret)
		ret = kv_pool_init(&kv->pool[KV_TIER_HOST], cfg->host_blocks);
	if (ret)
		goto err;
	return kv;
err:
	if (kv) {
		kv->be = NULL;
		accel_kv_destroy(kv);
	}
	b->ops->destroy(b);
	errno = -ret;
	return NULL;
}

/* ---- entries ---- */

static struct kv_entry *entry(struct accel_kv *kv, uint32_t seq)
{
	return seq < kv->nr_e && kv->e[seq].live ? &kv->e[seq] : NULL;
}

/* The sequence, if it is at @place: 0, -ENOENT (no such sequence) or -EBUSY. */
static int entry_at(struct accel_kv *kv, uint32_t seq, int place, struct kv_entry **e)
{
	*e = entry(kv, seq);
	if (!*e)
		return -ENOENT;
	return (*e)->place == place ? 0 : -EBUSY;
}

/* Room for @blocks in an entry's host[] and dirty[]. */
static int aux_reserve(struct kv_entry *e, uint64_t blocks)
{
	uint32_t cap = e->aux_cap ? e->aux_cap : 8, i;
	uint32_t *h;
	uint8_t *d;

	if (blocks <= e->aux_cap)
		return 0;
	if (blocks >= KV_NO_BLOCK / 2)
		return -EINVAL;
	while (cap < blocks)
		cap *= 2;
	h = realloc(e->host, cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	e->host = h;
	d = realloc(e->dirty, cap);
	if (!d)
		return -ENOMEM;
	e->dirty = d;
	for (i = e->aux_cap; i < cap; i++) {
		e->host[i] = KV_NO_BLOCK;
		e->dirty[i] = 1;
	}
	e->aux_cap = cap;
	return 0;
}

static void drop_window(struct accel_kv *kv, struct kv_entry *e)
{
	if (e->win)
		kv->be->ops->window_free(kv->be, e->win);
	e->win = NULL;
}

/* Release every block of an entry (not moving) on both tiers and forget it. */
static void entry_fini(struct accel_kv *kv, struct kv_entry *e)
{
	uint32_t i;

	drop_window(kv, e);
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->s.blocks[i] != KV_NO_BLOCK)
			kv_pool_put(dev_pool(kv), e->s.blocks[i]);
		if (e->host[i] != KV_NO_BLOCK)
			kv_pool_put(&kv->pool[KV_TIER_HOST], e->host[i]);
	}
	e->s.nr_blocks = 0;
	kv_seq_fini(dev_pool(kv), &e->s);
	free(e->host);
	free(e->dirty);
	memset(e, 0, sizeof(*e));
}

static int entry_new(struct accel_kv *kv, uint32_t *seq)
{
	struct kv_entry *e;
	uint32_t i;
	int ret;

	for (i = 0; i < kv->nr_e && kv->e[i].live; i++)
		;
	if (i == kv->nr_e) {
		if (kv->nr_e >= KV_NO_BLOCK - 16)
			return -ENOSPC;
		e = realloc(kv->e, (kv->nr_e + 16) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		memset(e + kv->nr_e, 0, 16 * sizeof(*e));
		kv->e = e;
		kv->nr_e += 16;
	}
	e = &kv->e[i];
	ret = kv_seq_init(&e->s, kv->block_tokens);
	if (ret)
		return ret;
	e->live = true;
	e->place = ACCEL_KV_DEVICE;
	e->gen = ++kv->next_gen;
	*seq = i;
	return 0;
}

/* ---- moves ---- */

static struct kv_move *move_new(enum move_kind kind, struct kv_xfer *x)
{
	struct kv_move *m = calloc(1, sizeof(*m));

	if (m)
		*m = (struct kv_move) { .refs = 1, .kind = kind, .x = x, .cow_block = KV_NO_BLOCK };
	return m;
}

static void move_put(struct accel_kv *kv, struct kv_move *m)
{
	if (--m->refs)
		return;
	kv->be->ops->xfer_free(kv->be, m->x);
	free(m);
}

/* Wait for @m without the lock (the caller holds a reference). */
static int move_wait(struct accel_kv *kv, struct kv_move *m, int64_t timeout_ns)
{
	return kv->be->ops->wait(kv->be, m->x, timeout_ns);
}

/* The copy to the host is done (or failed): release or keep the device blocks. */
static void complete_out(struct accel_kv *kv, struct kv_entry *e, int status)
{
	uint32_t i;

	for (i = 0; i < e->s.nr_blocks; i++) {
		if (status) {
			e->dirty[i] = 1;	/* the host copy is not trustworthy */
			continue;
		}
		kv_pool_put(dev_pool(kv), e->s.blocks[i]);
		e->s.blocks[i] = KV_NO_BLOCK;
		e->dirty[i] = 0;
	}
	e->place = status ? ACCEL_KV_DEVICE : ACCEL_KV_HOST;
}

static void complete_in(struct accel_kv *kv, struct kv_entry *e, int status)
{
	uint32_t i;

	for (i = 0; i < e->s.nr_blocks; i++) {
		if (status) {
			kv_pool_put(dev_pool(kv), e->s.blocks[i]);
			e->s.blocks[i] = KV_NO_BLOCK;
		} else {
			e->dirty[i] = 0;	/* the host copy stays valid */
			kv_seq_republish(dev_pool(kv), &e->s, i);
		}
	}
	e->place = status ? ACCEL_KV_HOST : ACCEL_KV_DEVICE;
}

/* Complete @e's move with @status (its transfer is over). */
static void finish_move(struct accel_kv *kv, struct kv_entry *e, int status)
{
	struct kv_move *m = e->move;

	if (status && m->kind != MOVE_COW)
		accel_log(ACCEL_LOG_ERR, "kv: swap of a sequence failed: %s", strerror(-status));
	if (m->kind == MOVE_OUT) {
		complete_out(kv, e, status);
	} else if (m->kind == MOVE_IN) {
		complete_in(kv, e, status);
	} else {
		/* A copy-on-write its append did not come back for. */
		kv_pool_put(dev_pool(kv), m->cow_block);
		e->place = ACCEL_KV_DEVICE;
	}
	accel_fence_destroy(e->legacy);
	e->legacy = NULL;
	e->move = NULL;
	move_put(kv, m);
}

/*
 * Wait (lock dropped) until @seq's move is over and complete it. Returns
 * 0 with the lock held and *e the entry again, or -ENOENT when the entry
 * went meanwhile (another thread freed it).
 */
static int settle(struct accel_kv *kv, uint32_t seq, struct kv_entry **e)
{
	uint64_t gen = (*e)->gen;

	while ((*e)->place == ACCEL_KV_MOVING) {
		struct kv_move *m = (*e)->move;
		int st;

		m->refs++;
		pthread_mutex_unlock(&kv->lock);
		st = move_wait(kv, m, -1);
		pthread_mutex_lock(&kv->lock);
		*e = entry(kv, seq);
		if (*e && (*e)->gen == gen && (*e)->move == m && st != -ETIME)
			finish_move(kv, *e, st);
		move_put(kv, m);
		if (!*e || (*e)->gen != gen)
			return -ENOENT;
	}
	return 0;
}

/* ---- sequences ---- */

/* @n more tokens fit a sequence of @have (checked before any arithmetic). */
static bool tokens_fit(const struct accel_kv *kv, uint64_t have, uint64_t n)
{
	uint64_t max = (uint64_t)(KV_NO_BLOCK / 2 - 1) * kv->block_tokens;

	return have <= max && n <= max - have;
}

ACCEL_EXPORT int accel_kv_seq_create_opts(struct accel_kv *kv, const int32_t *prompt, uint64_t n,
					  const struct accel_kv_seq_opts *opts, uint32_t *seq,
					  uint64_t *cached_tokens)
{
	struct kv_prepare prep = { prepare_blocks, kv };
	const void *extra = ACCEL_OPTS_GET(opts, extra_keys, NULL);
	size_t extra_len = ACCEL_OPTS_GET(opts, extra_keys_len, 0);
	struct kv_entry *e;
	uint64_t cached = 0;
	uint32_t id;
	int ret;

	if (!kv || !seq || (n && !prompt) || (extra_len && !extra))
		return -EINVAL;
	ret = accel_opts_valid(opts, sizeof(*opts));
	if (ret)
		return ret;
	if (!tokens_fit(kv, 0, n))
		return -E2BIG;
	pthread_mutex_lock(&kv->lock);
	ret = entry_new(kv, &id);
	if (ret)
		goto out;
	e = &kv->e[id];
	ret = kv_seq_set_extra(&e->s, extra, extra_len);
	if (!ret)
		ret = aux_reserve(e, (n + kv->block_tokens - 1) / kv->block_tokens);
	if (!ret)
		ret = kv_seq_start(dev_pool(kv), &e->s, prompt, n, &cached, NULL, &prep);
	if (ret) {
		entry_fini(kv, e);
		goto out;
	}
	kv->st.prefix_hit_tokens += cached;
	if (cached_tokens)
		*cached_tokens = cached;
	*seq = id;
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_create(struct accel_kv *kv, const int32_t *prompt, uint64_t n,
				     uint32_t *seq, uint64_t *cached_tokens)
{
	return accel_kv_seq_create_opts(kv, prompt, n, NULL, seq, cached_tokens);
}

/*
 * Give @e's shared partial last block a private copy (the append writes
 * into it next): allocate, copy (waiting with the lock dropped), replace.
 * All or nothing. Called and returns with the lock held; -ENOENT when the
 * entry went while the copy ran.
 */
static int cow_tail(struct accel_kv *kv, uint32_t seq, struct kv_entry **e)
{
	struct kv_copy c;
	struct kv_xfer *x = NULL;
	struct kv_move *m;
	uint32_t nb;
	uint64_t gen = (*e)->gen;
	int ret, st;

	ret = kv_pool_alloc(dev_pool(kv), 1, &nb);
	if (ret)
		return ret;
	ret = prepare_blocks(kv, &nb, 1);
	if (ret)
		goto err_put;
	c = (struct kv_copy) { (*e)->s.blocks[(*e)->s.nr_blocks - 1], nb };
	ret = kv->be->ops->copy(kv->be, KV_TIER_DEV, KV_TIER_DEV, &c, 1, NULL, &x);
	if (ret)
		goto err_put;
	kv->st.cow_copies++;
	if (x) {
		m = move_new(MOVE_COW, x);
		if (!m) {
			/* Nothing may still write into a block that goes back. */
			kv->be->ops->wait(kv->be, x, -1);
			kv->be->ops->xfer_free(kv->be, x);
			ret = -ENOMEM;
			goto err_put;
		}
		m->cow_block = nb;
		m->refs++;	/* ours */
		(*e)->move = m;
		(*e)->place = ACCEL_KV_MOVING;
		pthread_mutex_unlock(&kv->lock);
		st = move_wait(kv, m, -1);
		pthread_mutex_lock(&kv->lock);
		*e = entry(kv, seq);
		if (!*e || (*e)->gen != gen || (*e)->move != m) {
			/* Freed meanwhile: the freeing thread released @nb. */
			move_put(kv, m);
			return -ENOENT;
		}
		(*e)->move = NULL;
		(*e)->place = ACCEL_KV_DEVICE;
		m->refs--;		/* the entry's: ours is still held */
		move_put(kv, m);
		if (st) {
			ret = st;
			goto err_put;
		}
	}
	kv_seq_replace_tail(dev_pool(kv), &(*e)->s, nb);
	return 0;
err_put:
	kv_pool_put(dev_pool(kv), nb);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_append(struct accel_kv *kv, uint32_t seq, const int32_t *tokens,
				     uint64_t n)
{
	struct kv_prepare prep = { prepare_blocks, kv };
	struct kv_entry *e;
	uint32_t first, i;
	int ret;

	if (!kv || (n && !tokens))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (ret || !n)
		goto out;
	if (!tokens_fit(kv, e->s.nr_tokens, n)) {
		ret = -E2BIG;
		goto out;
	}
	ret = aux_reserve(e, (e->s.nr_tokens + n + kv->block_tokens - 1) / kv->block_tokens);
	if (!ret && kv_seq_tail_shared(dev_pool(kv), &e->s))
		ret = cow_tail(kv, seq, &e);
	if (ret)
		goto out;
	/* The partial last block (if any) and every new one change. */
	first = (uint32_t)(e->s.nr_tokens / kv->block_tokens);
	ret = kv_seq_append(dev_pool(kv), &e->s, tokens, n, NULL, &prep);
	if (ret)
		goto out;
	for (i = first; i < e->s.nr_blocks; i++)
		e->dirty[i] = 1;
	drop_window(kv, e);
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_fork(struct accel_kv *kv, uint32_t seq, uint32_t *child)
{
	struct kv_entry *e, *c;
	uint32_t id;
	int ret;

	if (!kv || !child)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (!ret)
		ret = entry_new(kv, &id);
	if (ret)
		goto out;
	e = &kv->e[seq];	/* entry_new() may have moved the array */
	c = &kv->e[id];
	ret = aux_reserve(c, e->s.nr_blocks);
	if (!ret)
		ret = kv_seq_fork(dev_pool(kv), &e->s, &c->s);
	if (ret) {
		entry_fini(kv, c);
		goto out;
	}
	*child = id;
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_free(struct accel_kv *kv, uint32_t seq)
{
	struct kv_entry *e;
	int ret;

	if (!kv)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	ret = e ? settle(kv, seq, &e) : -ENOENT;
	if (!ret)
		entry_fini(kv, e);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* A sequence's table on tier @place (up to @max ids); returns its block count. */
static int table_of(struct accel_kv *kv, uint32_t seq, int place, uint32_t *blocks,
		    uint32_t max)
{
	struct kv_entry *e;
	int ret;

	if (!kv || (max && !blocks))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, place, &e);
	if (!ret)
		ret = (int)e->s.nr_blocks;
	if (ret > 0)
		memcpy(blocks, place == ACCEL_KV_DEVICE ? e->s.blocks : e->host,
		       (ret < (int)max ? (uint32_t)ret : max) * sizeof(*blocks));
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks,
				     uint32_t max)
{
	return table_of(kv, seq, ACCEL_KV_DEVICE, blocks, max);
}

ACCEL_EXPORT int accel_kv_seq_host_blocks(struct accel_kv *kv, uint32_t seq, uint32_t *blocks,
					  uint32_t max)
{
	return table_of(kv, seq, ACCEL_KV_HOST, blocks, max);
}

ACCEL_EXPORT int accel_kv_seq_tokens(struct accel_kv *kv, uint32_t seq, uint64_t *tokens)
{
	struct kv_entry *e;

	if (!kv || !tokens)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	if (e)
		*tokens = e->s.nr_tokens;
	pthread_mutex_unlock(&kv->lock);
	return e ? 0 : -ENOENT;
}

ACCEL_EXPORT int accel_kv_seq_place(struct accel_kv *kv, uint32_t seq)
{
	struct kv_entry *e;
	int ret;

	if (!kv)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	ret = e ? e->place : -ENOENT;
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* ---- swapping ---- */

/*
 * Drop host copies of other sequences on the device until @need host
 * blocks are free or cached; @self (the sequence being swapped out) keeps
 * its own: they are what spares it copying.
 */
static void reclaim_host(struct accel_kv *kv, uint32_t need, const struct kv_entry *self)
{
	struct kv_pool *hp = &kv->pool[KV_TIER_HOST];
	uint32_t i, b;

	for (i = 0; i < kv->nr_e && hp->nr_free + hp->nr_cached < need; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!e->live || e == self || e->place != ACCEL_KV_DEVICE)
			continue;
		for (b = 0; b < e->s.nr_blocks; b++) {
			if (e->host[b] == KV_NO_BLOCK)
				continue;
			kv_pool_put(hp, e->host[b]);
			e->host[b] = KV_NO_BLOCK;
			e->dirty[b] = 1;
		}
	}
}

/* A started transfer: the entry moves until it is done; *fence the caller's. */
static int start_move(struct accel_kv *kv, struct kv_entry *e, enum move_kind kind,
		      struct kv_xfer *x, struct accel_fence **fence)
{
	struct kv_move *m;

	if (!x) {
		if (kind == MOVE_OUT)
			complete_out(kv, e, 0);
		else
			complete_in(kv, e, 0);
		return 0;
	}
	m = move_new(kind, x);
	if (!m) {
		int st = kv->be->ops->wait(kv->be, x, -1);

		kv->be->ops->xfer_free(kv->be, x);
		if (kind == MOVE_OUT)
			complete_out(kv, e, st);
		else
			complete_in(kv, e, st);
		return st;
	}
	e->move = m;
	e->place = ACCEL_KV_MOVING;
	if (fence)
		*fence = kv->be->ops->xfer_fence(kv->be, x);
	return 0;
}

static int swap_out(struct accel_kv *kv, uint32_t seq, const struct accel_kv_swap_opts *opts,
		    struct accel_fence **fence)
{
	struct kv_order order = {
		ACCEL_OPTS_GET(opts, cuda_wait_event, NULL),
		ACCEL_OPTS_GET(opts, cuda_done_event, NULL),
	};
	struct kv_pool *hp = &kv->pool[KV_TIER_HOST];
	uint32_t *fresh = NULL, need = 0, n = 0, k = 0, i;
	struct kv_copy *c = NULL;
	struct kv_xfer *x = NULL;
	struct kv_entry *e;
	int ret;

	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (ret)
		return ret;
	for (i = 0; i < e->s.nr_blocks; i++)
		need += e->host[i] == KV_NO_BLOCK;
	if (hp->nr_free + hp->nr_cached < need)
		reclaim_host(kv, need, e);
	c = calloc(e->s.nr_blocks + 1, sizeof(*c));
	fresh = calloc(need + 1, sizeof(*fresh));
	if (!c || !fresh) {
		ret = -ENOMEM;
		goto out;
	}
	ret = kv_pool_alloc(hp, need, fresh);
	if (ret)
		goto out;
	drop_window(kv, e);
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->host[i] == KV_NO_BLOCK) {
			e->host[i] = fresh[k++];
		} else if (!e->dirty[i]) {
			kv->st.blocks_reused++;
			continue;
		}
		c[n++] = (struct kv_copy) { e->s.blocks[i], e->host[i] };
	}
	ret = kv->be->ops->copy(kv->be, KV_TIER_DEV, KV_TIER_HOST, c, n, &order, &x);
	if (ret) {
		/* Give back what this call took (the blocks fresh[] names). */
		for (i = 0, k = 0; i < e->s.nr_blocks && k < need; i++)
			if (e->host[i] == fresh[k]) {
				e->host[i] = KV_NO_BLOCK;
				k++;
			}
		kv_pool_put_many(hp, fresh, need);
		goto out;
	}
	kv->st.swaps_out++;
	kv->st.blocks_out += n;
	ret = start_move(kv, e, MOVE_OUT, x, fence);
out:
	free(c);
	free(fresh);
	return ret;
}

static int swap_in(struct accel_kv *kv, uint32_t seq, const struct accel_kv_swap_opts *opts,
		   struct accel_fence **fence)
{
	struct kv_order order = {
		ACCEL_OPTS_GET(opts, cuda_wait_event, NULL),
		ACCEL_OPTS_GET(opts, cuda_done_event, NULL),
	};
	struct kv_pool *dp = dev_pool(kv);
	uint32_t *fresh = NULL, need = 0, n = 0, k = 0, i;
	struct kv_copy *c = NULL;
	struct kv_xfer *x = NULL;
	struct kv_entry *e;
	int ret;

	ret = entry_at(kv, seq, ACCEL_KV_HOST, &e);
	if (ret)
		return ret;
	c = calloc(e->s.nr_blocks + 1, sizeof(*c));
	fresh = calloc(e->s.nr_blocks + 1, sizeof(*fresh));
	if (!c || !fresh) {
		ret = -ENOMEM;
		goto out;
	}
	/* Full blocks still cached on the device under their key come back for free. */
	for (i = 0; i < e->s.nr_blocks; i++) {
		uint32_t b = (uint64_t)(i + 1) * kv->block_tokens <= e->s.nr_tokens ?
			     kv_pool_lookup(dp, &e->s.keys[i]) : KV_NO_BLOCK;

		if (b != KV_NO_BLOCK) {
			kv_pool_get(dp, b);
			e->s.blocks[i] = b;
		} else {
			need++;
		}
	}
	ret = kv_pool_alloc(dp, need, fresh);
	if (!ret) {
		ret = prepare_blocks(kv, fresh, need);
		if (ret)
			kv_pool_put_many(dp, fresh, need);
	}
	if (ret) {
		for (i = 0; i < e->s.nr_blocks; i++)
			if (e->s.blocks[i] != KV_NO_BLOCK) {
				kv_pool_put(dp, e->s.blocks[i]);
				e->s.blocks[i] = KV_NO_BLOCK;
			}
		goto out;
	}
	for (i = 0; i < e->s.nr_blocks; i++) {
		if (e->s.blocks[i] != KV_NO_BLOCK) {
			kv->st.blocks_reused++;
			continue;
		}
		e->s.blocks[i] = fresh[k++];
		c[n++] = (struct kv_copy) { e->host[i], e->s.blocks[i] };
	}
	drop_window(kv, e);
	ret = kv->be->ops->copy(kv->be, KV_TIER_HOST, KV_TIER_DEV, c, n, &order, &x);
	if (ret) {
		complete_in(kv, e, ret);
		goto out;
	}
	kv->st.swaps_in++;
	kv->st.blocks_in += n;
	ret = start_move(kv, e, MOVE_IN, x, fence);
out:
	free(c);
	free(fresh);
	return ret;
}

/* A swap's entry point: checks, then swap_out() or swap_in() under the lock. */
static int swap(struct accel_kv *kv, uint32_t seq, bool in, const struct accel_kv_swap_opts *opts,
		struct accel_fence **fence)
{
	int ret;

	if (fence)
		*fence = NULL;
	if (!kv)
		return -EINVAL;
	ret = accel_opts_valid(opts, sizeof(*opts));
	if (ret)
		return ret;
	pthread_mutex_lock(&kv->lock);
	ret = in ? swap_in(kv, seq, opts, fence) : swap_out(kv, seq, opts, fence);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_swap_out_opts(struct accel_kv *kv, uint32_t seq,
					const struct accel_kv_swap_opts *opts,
					struct accel_fence **fence)
{
	return swap(kv, seq, false, opts, fence);
}

ACCEL_EXPORT int accel_kv_swap_in_opts(struct accel_kv *kv, uint32_t seq,
				       const struct accel_kv_swap_opts *opts,
				       struct accel_fence **fence)
{
	return swap(kv, seq, true, opts, fence);
}

ACCEL_EXPORT int accel_kv_swap_out(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	return accel_kv_swap_out_opts(kv, seq, NULL, fence);
}
__asm__(".symver accel_kv_swap_out, accel_kv_swap_out@@LIBACCEL_0.2, remove");

ACCEL_EXPORT int accel_kv_swap_in(struct accel_kv *kv, uint32_t seq, struct accel_fence **fence)
{
	return accel_kv_swap_in_opts(kv, seq, NULL, fence);
}
__asm__(".symver accel_kv_swap_in, accel_kv_swap_in@@LIBACCEL_0.2, remove");

/*
 * LIBACCEL_0.1's swaps (compat.c): the fence stays the cache's, valid
 * until the move completes, as 0.1 documented.
 */
int kv_swap_legacy(struct accel_kv *kv, uint32_t seq, int in, struct accel_fence **fence)
{
	struct accel_fence *f = NULL;
	struct kv_entry *e;
	int ret;

	if (fence)
		*fence = NULL;
	if (!kv)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = in ? swap_in(kv, seq, NULL, &f) : swap_out(kv, seq, NULL, &f);
	e = entry(kv, seq);
	if (!ret && f && e && e->place == ACCEL_KV_MOVING)
		e->legacy = f;
	else
		accel_fence_destroy(f);
	if (!ret && fence && e)
		*fence = e->legacy;
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* The CLOCK_MONOTONIC time in ns. */
static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct kv_snap {
	uint32_t seq;
	uint64_t gen;
	struct kv_move *m;
	int status;
};

ACCEL_EXPORT int accel_kv_progress(struct accel_kv *kv, int64_t timeout_ns)
{
	int64_t deadline = 0;
	struct kv_snap *snap;
	uint32_t i, n = 0;
	int left = 0;

	if (!kv || timeout_ns < -1)
		return -EINVAL;
	if (timeout_ns > 0)
		deadline = timeout_ns > INT64_MAX - now_ns() ? INT64_MAX : now_ns() + timeout_ns;
	pthread_mutex_lock(&kv->lock);
	for (i = 0; i < kv->nr_e; i++)
		n += kv->e[i].live && kv->e[i].place == ACCEL_KV_MOVING &&
		     kv->e[i].move->kind != MOVE_COW;
	snap = calloc(n + 1, sizeof(*snap));
	if (!snap) {
		pthread_mutex_unlock(&kv->lock);
		return -ENOMEM;
	}
	for (i = 0, n = 0; i < kv->nr_e; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!e->live || e->place != ACCEL_KV_MOVING || e->move->kind == MOVE_COW)
			continue;
		snap[n++] = (struct kv_snap) { i, e->gen, e->move, 0 };
		e->move->refs++;
	}
	pthread_mutex_unlock(&kv->lock);

	/* One deadline for all of them. */
	for (i = 0; i < n; i++) {
		int64_t t = timeout_ns;

		if (timeout_ns > 0) {
			t = deadline - now_ns();
			t = t > 0 ? t : 0;
		}
		snap[i].status = move_wait(kv, snap[i].m, t);
	}

	pthread_mutex_lock(&kv->lock);
	for (i = 0; i < n; i++) {
		struct kv_entry *e = entry(kv, snap[i].seq);

		if (e && e->gen == snap[i].gen && e->move == snap[i].m &&
		    snap[i].status != -ETIME)
			finish_move(kv, e, snap[i].status);
		move_put(kv, snap[i].m);
	}
	for (i = 0; i < kv->nr_e; i++)
		left += kv->e[i].live && kv->e[i].place == ACCEL_KV_MOVING &&
			kv->e[i].move->kind != MOVE_COW;
	pthread_mutex_unlock(&kv->lock);
	free(snap);
	return left;
}

/* ---- memory ---- */

ACCEL_EXPORT void *accel_kv_block_addr(struct accel_kv *kv, enum accel_kv_place tier,
				       uint32_t block)
{
	int t = tier == ACCEL_KV_DEVICE ? KV_TIER_DEV : tier == ACCEL_KV_HOST ? KV_TIER_HOST : -1;

	if (!kv || t < 0 || block >= kv->pool[t].nr_blocks) {
		errno = EINVAL;
		return NULL;
	}
	return kv->be->ops->block_addr(kv->be, t, block);
}

ACCEL_EXPORT int accel_kv_seq_window(struct accel_kv *kv, uint32_t seq, void **addr, size_t *len)
{
	struct kv_entry *e;
	int ret, t;

	if (!kv || !addr)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	ret = !e ? -ENOENT : e->place == ACCEL_KV_MOVING ? -EBUSY : !e->s.nr_blocks ? -ENODATA : 0;
	if (ret)
		goto out;
	t = e->place == ACCEL_KV_DEVICE ? KV_TIER_DEV : KV_TIER_HOST;
	drop_window(kv, e);
	ret = kv->be->ops->window(kv->be, t, t == KV_TIER_DEV ? e->s.blocks : e->host,
				  e->s.nr_blocks, &e->win, addr, len);
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_tier_export(struct accel_kv *kv, enum accel_kv_place tier, int *fd)
{
	int t = tier == ACCEL_KV_DEVICE ? KV_TIER_DEV : tier == ACCEL_KV_HOST ? KV_TIER_HOST : -1;
	int ret;

	if (!kv || t < 0 || !fd)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = kv->be->ops->tier_export(kv->be, t, fd);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* The counters, as LIBACCEL_0.2's struct (sz not set). */
static void stats_fill(struct accel_kv *kv, struct accel_kv_stats *s)
{
	pthread_mutex_lock(&kv->lock);
	*s = kv->st;
	s->transfers = kv->be->transfers;
	s->bytes_moved = kv->be->bytes_moved;
	s->device_free = dev_pool(kv)->nr_free + dev_pool(kv)->nr_cached;
	s->host_free = kv->pool[KV_TIER_HOST].nr_free + kv->pool[KV_TIER_HOST].nr_cached;
	pthread_mutex_unlock(&kv->lock);
}

ACCEL_EXPORT int accel_kv_stats(struct accel_kv *kv, struct accel_kv_stats *stats)
{
	struct accel_kv_stats s;
	size_t sz;
	int ret;

	if (!kv || !stats)
		return -EINVAL;
	ret = accel_opts_valid(stats, sizeof(*stats));
	if (ret)
		return ret;
	stats_fill(kv, &s);
	sz = stats->sz < sizeof(s) ? stats->sz : sizeof(s);
	memcpy((char *)stats + sizeof(s.sz), (char *)&s + sizeof(s.sz), sz - sizeof(s.sz));
	return 0;
}
__asm__(".symver accel_kv_stats, accel_kv_stats@@LIBACCEL_0.2, remove");

/* LIBACCEL_0.1's accel_kv_stats (compat.c): the same fields without sz. */
int kv_stats_legacy(struct accel_kv *kv, void *dst, size_t len)
{
	struct accel_kv_stats s;

	if (!kv || !dst || len > sizeof(s) - sizeof(s.sz))
		return -EINVAL;
	stats_fill(kv, &s);
	memcpy(dst, (char *)&s + sizeof(s.sz), len);
	return 0;
}

ACCEL_EXPORT void accel_kv_destroy(struct accel_kv *kv)
{
	uint32_t i;

	if (!kv)
		return;
	for (i = 0; i < kv->nr_e; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!e->live)
			continue;
		/* No other thread may use a cache being destroyed. */
		if (e->place == ACCEL_KV_MOVING)
			finish_move(kv, e, move_wait(kv, e->move, -1));
		entry_fini(kv, e);
	}
	free(kv->e);
	kv_pool_fini(&kv->pool[KV_TIER_DEV]);
	kv_pool_fini(&kv->pool[KV_TIER_HOST]);
	if (kv->be)
		kv->be->ops->destroy(kv->be);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}

/* ---- self-check (tests) ---- */

static int check_pool(const struct kv_pool *p, const uint32_t *want, const char *tier,
		      char *why, size_t len)
{
	uint32_t b, nfree = 0, ncached = 0;

	for (b = 0; b < p->nr_blocks; b++) {
		bool f = kv_pool_is_free(p, b), keyed = kv_pool_keyed(p, b);

		if (p->refs[b] != want[b]) {
			snprintf(why, len, "%s block %u: %u references, %u held", tier, b,
				 p->refs[b], want[b]);
			return -EUCLEAN;
		}
		if (f && (p->refs[b] || keyed)) {
			snprintf(why, len, "%s block %u: free but used or keyed", tier, b);
			return -EUCLEAN;
		}
		if (f != (!p->refs[b] && !keyed)) {
			snprintf(why, len, "%s block %u: unreferenced, unkeyed, not free", tier, b);
			return -EUCLEAN;
		}
		if (keyed && kv_pool_lookup(p, &p->key[b]) != b) {
			snprintf(why, len, "%s block %u: its key finds another block", tier, b);
			return -EUCLEAN;
		}
		nfree += f;
		ncached += !p->refs[b] && keyed;
	}
	if (nfree != p->nr_free || ncached != p->nr_cached) {
		snprintf(why, len, "%s: %u free, %u cached counted as %u, %u", tier, nfree, ncached,
			 p->nr_free, p->nr_cached);
		return -EUCLEAN;
	}
	return 0;
}

/*
 * Every invariant of the cache: each block's reference count is the
 * number of block tables (and copies in flight) naming it, the free and
 * cached counts agree with the blocks, every full block has a key, and a
 * sequence's tables match where it is. 0, or -EUCLEAN with @why saying
 * what broke.
 */
int kv_cache_check(struct accel_kv *kv, char *why, size_t len)
{
	uint32_t *want[KV_TIER_NR], i, b;
	int ret = 0;

	pthread_mutex_lock(&kv->lock);
	want[KV_TIER_DEV] = calloc(dev_pool(kv)->nr_blocks, sizeof(uint32_t));
	want[KV_TIER_HOST] = calloc(kv->pool[KV_TIER_HOST].nr_blocks, sizeof(uint32_t));
	if (!want[KV_TIER_DEV] || !want[KV_TIER_HOST]) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < kv->nr_e && !ret; i++) {
		struct kv_entry *e = &kv->e[i];
		uint32_t full = (uint32_t)(e->s.nr_tokens / kv->block_tokens);

		if (!e->live)
			continue;
		if (e->s.nr_blocks != (e->s.nr_tokens + kv->block_tokens - 1) / kv->block_tokens) {
			snprintf(why, len, "seq %u: %u blocks for %llu tokens", i, e->s.nr_blocks,
				 (unsigned long long)e->s.nr_tokens);
			ret = -EUCLEAN;
		}
		if ((e->place == ACCEL_KV_MOVING) != !!e->move) {
			snprintf(why, len, "seq %u: place %d with%s a move", i, e->place,
				 e->move ? "" : "out");
			ret = -EUCLEAN;
		}
		for (b = 0; b < e->s.nr_blocks && !ret; b++) {
			uint32_t d = e->s.blocks[b], h = e->host[b];

			if ((d == KV_NO_BLOCK) != (e->place == ACCEL_KV_HOST) ||
			    (e->place == ACCEL_KV_HOST && h == KV_NO_BLOCK)) {
				snprintf(why, len, "seq %u block %u: device %u host %u at place %d",
					 i, b, d, h, e->place);
				ret = -EUCLEAN;
				break;
			}
			if (b < full && kv_key_is_zero(&e->s.keys[b])) {
				snprintf(why, len, "seq %u block %u: full without a key", i, b);
				ret = -EUCLEAN;
			}
			if (d != KV_NO_BLOCK)
				want[KV_TIER_DEV][d]++;
			if (h != KV_NO_BLOCK)
				want[KV_TIER_HOST][h]++;
		}
		if (e->move && e->move->kind == MOVE_COW)
			want[KV_TIER_DEV][e->move->cow_block]++;
	}
	if (!ret)
		ret = check_pool(dev_pool(kv), want[KV_TIER_DEV], "device", why, len);
	if (!ret)
		ret = check_pool(&kv->pool[KV_TIER_HOST], want[KV_TIER_HOST], "host", why, len);
out:
	free(want[KV_TIER_DEV]);
	free(want[KV_TIER_HOST]);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}
