// SPDX-License-Identifier: MIT
/*
 * libaccel - the tiered, paged KV cache (accel_kv_*) as a composition of
 * the engine-facing parts: the block manager (accel_bm_*, bm/) keeps the
 * bookkeeping of its two tiers (tier 0 the device tier, tier 1 the host
 * tier: sequences, block tables, the prefix cache, copy-on-write, swaps
 * that move only what changed since the last one), and a backend
 * (kv/kv_backend.h: host on the mover's tiers, cuda) holds the bytes and
 * executes the block manager's plans. This file adds what the cache
 * promises on top: every full block published as it fills (a commit after
 * each change), fences, waits, and its counters.
 *
 * A change that moves data (a swap, an append that copies a shared
 * partial block first) gets a plan from the block manager, whose runs go
 * to the backend as one transfer; the plan is finished with
 * accel_bm_plan_done() when the transfer is over, which undoes the change
 * if the transfer failed (an append adds no token, a swap leaves the
 * sequence where it was). Until then the blocks the plan reads and writes
 * stay reserved, and the sequence is ACCEL_KV_MOVING (other calls on it
 * get -EBUSY). Swaps out release the device blocks once done (keyed ones
 * stay in the device's prefix cache, so a swap in takes them back without
 * a copy); swaps in keep the host blocks as the sequence's still-valid
 * copies (FastSwitch's reuse), which the block manager drops for others
 * first when the host tier runs short.
 *
 * Locking: kv->lock protects everything in struct accel_kv and its
 * entries, and serialises every call into the cache's block manager (so
 * reading the manager's sequences here needs no more). Nothing waits with
 * it held: a wait (progress, freeing a moving sequence, a copy-on-write
 * append) takes a reference to the move, drops the lock, waits, retakes it
 * and completes the move only if its entry is still the one it was (same
 * generation, same move).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "bm/bm.h"
#include "kv/kv_backend.h"

_Static_assert(KV_TIER_DEV == 0 && KV_TIER_HOST == 1, "the block manager's tier numbers");

enum move_kind { MOVE_OUT, MOVE_IN, MOVE_COW };

/* A transfer in flight for an entry; refcounted (the entry's and waiters'). */
struct kv_move {
	unsigned int refs;
	enum move_kind kind;
	struct kv_xfer *x;
	uint64_t plan;		/* the block manager's plan it executes */
};

/* The cache's part of a sequence; the block manager's sequence of the same id has the rest. */
struct kv_entry {
	bool live;
	uint64_t gen;		/* tells a reused slot from the entry a waiter left */
	struct kv_move *move;	/* while ACCEL_KV_MOVING */
	struct accel_fence *legacy;	/* LIBACCEL_0.1 swaps: the cache's fence */
	void *win;		/* the backend's window, if mapped */
};

struct accel_kv {
	struct kv_backend *be;
	struct accel_bm *bm;
	uint32_t block_tokens;
	uint32_t nr_blocks[KV_TIER_NR];
	pthread_mutex_t lock;
	struct kv_entry *e;	/* indexed by the block manager's sequence id */
	uint32_t nr_e;
	uint64_t next_gen;
	struct accel_kv_stats st;
};

static int prepare_blocks(void *arg, const uint32_t *blocks, uint32_t n)
{
	struct accel_kv *kv = arg;

	return kv->be->ops->prepare(kv->be, blocks, n);
}

struct accel_kv *kv_cache_create(const struct kv_backend_config *cfg, uint32_t block_tokens,
				 struct kv_backend *b)
{
	uint32_t blocks[KV_TIER_NR] = { cfg->device_blocks, cfg->host_blocks };
	uint32_t unit = cfg->transfer_unit / cfg->block_bytes;
	ACCEL_OPTS(accel_bm_config, bc, .block_tokens = block_tokens, .nr_tiers = KV_TIER_NR,
		   .tier_blocks = blocks, .max_run = unit ? unit : 1);
	struct accel_kv *kv = calloc(1, sizeof(*kv));
	int ret = -ENOMEM;

	if (!kv)
		goto err;
	kv->be = b;
	kv->block_tokens = block_tokens;
	kv->nr_blocks[KV_TIER_DEV] = cfg->device_blocks;
	kv->nr_blocks[KV_TIER_HOST] = cfg->host_blocks;
	pthread_mutex_init(&kv->lock, NULL);
	kv->bm = accel_bm_create(&bc);
	if (!kv->bm) {
		ret = -errno;
		goto err;
	}
	if (b->ops->prepare) {
		struct kv_prepare prep = { prepare_blocks, kv };

		bm_set_prepare(kv->bm, KV_TIER_DEV, &prep);
	}
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

/* The block manager's sequence of a live entry (kv->lock serialises the manager). */
static struct bm_seq *bseq(struct accel_kv *kv, uint32_t seq)
{
	return bm_seq_get(kv->bm, seq);
}

static int place_of(struct accel_kv *kv, const struct kv_entry *e, uint32_t seq)
{
	if (e->move)
		return ACCEL_KV_MOVING;
	return bseq(kv, seq)->tier == KV_TIER_DEV ? ACCEL_KV_DEVICE : ACCEL_KV_HOST;
}

/* The sequence, if it is at @place: 0, -ENOENT (no such sequence) or -EBUSY. */
static int entry_at(struct accel_kv *kv, uint32_t seq, int place, struct kv_entry **e)
{
	*e = entry(kv, seq);
	if (!*e)
		return -ENOENT;
	return place_of(kv, *e, seq) == place ? 0 : -EBUSY;
}

/* A new entry for the block manager's new sequence @seq. */
static int entry_new(struct accel_kv *kv, uint32_t seq)
{
	struct kv_entry *e;
	uint32_t n;

	if (seq >= kv->nr_e) {
		if (seq >= KV_NO_BLOCK - 16)
			return -ENOSPC;
		n = seq + 16;
		e = realloc(kv->e, n * sizeof(*e));
		if (!e)
			return -ENOMEM;
		memset(e + kv->nr_e, 0, (n - kv->nr_e) * sizeof(*e));
		kv->e = e;
		kv->nr_e = n;
	}
	kv->e[seq] = (struct kv_entry) { .live = true, .gen = ++kv->next_gen };
	return 0;
}

static void drop_window(struct accel_kv *kv, struct kv_entry *e)
{
	if (e->win)
		kv->be->ops->window_free(kv->be, e->win);
	e->win = NULL;
}

/* Forget an entry (not moving) and its sequence. */
static void entry_fini(struct accel_kv *kv, uint32_t seq)
{
	drop_window(kv, &kv->e[seq]);
	accel_bm_seq_free(kv->bm, seq);
	memset(&kv->e[seq], 0, sizeof(kv->e[seq]));
}

/* Every full block enters the prefix cache as it fills: commit them (if a block filled). */
static void commit_full(struct accel_kv *kv, uint32_t seq)
{
	const struct bm_seq *q = bseq(kv, seq);
	uint32_t full = (uint32_t)(q->s.nr_tokens / kv->block_tokens);

	if (full > q->s.nr_committed)
		accel_bm_commit(kv->bm, seq, full);
}

/* ---- moves ---- */

static struct kv_move *move_new(enum move_kind kind, struct kv_xfer *x, uint64_t plan)
{
	struct kv_move *m = calloc(1, sizeof(*m));

	if (m)
		*m = (struct kv_move) { .refs = 1, .kind = kind, .x = x, .plan = plan };
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

/* The plan of a change is over with @status: done, or undone by the block manager. */
static void plan_finish(struct accel_kv *kv, uint32_t seq, enum move_kind kind, uint64_t plan,
			int status)
{
	accel_bm_plan_done(kv->bm, plan, status);
	if (kind == MOVE_COW && !status)
		commit_full(kv, seq);
}

/* Complete @seq's move with @status (its transfer is over). */
static void finish_move(struct accel_kv *kv, uint32_t seq, int status)
{
	struct kv_entry *e = &kv->e[seq];
	struct kv_move *m = e->move;

	if (status && m->kind != MOVE_COW)
		accel_log(ACCEL_LOG_ERR, "kv: swap of a sequence failed: %s", strerror(-status));
	/* A copy-on-write its append did not come back for is finished here too. */
	plan_finish(kv, seq, m->kind, m->plan, status);
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

	while ((*e)->move) {
		struct kv_move *m = (*e)->move;
		int st;

		m->refs++;
		pthread_mutex_unlock(&kv->lock);
		st = move_wait(kv, m, -1);
		pthread_mutex_lock(&kv->lock);
		*e = entry(kv, seq);
		if (*e && (*e)->gen == gen && (*e)->move == m && st != -ETIME)
			finish_move(kv, seq, st);
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
	const void *extra = ACCEL_OPTS_GET(opts, extra_keys, NULL);
	size_t extra_len = ACCEL_OPTS_GET(opts, extra_keys_len, 0);
	ACCEL_OPTS(accel_bm_seq_opts, so, .tier = KV_TIER_DEV, .extra_keys = extra,
		   .extra_keys_len = extra_len);
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
	ret = accel_bm_seq_create(kv->bm, &so, &id);
	if (ret)
		goto out;
	ret = entry_new(kv, id);
	if (!ret)
		ret = accel_bm_seq_start(kv->bm, id, prompt, n, NULL, &cached);
	if (ret) {
		accel_bm_seq_free(kv->bm, id);
		if (id < kv->nr_e)
			memset(&kv->e[id], 0, sizeof(kv->e[id]));
		goto out;
	}
	commit_full(kv, id);
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
 * The append's copy of the shared partial block it writes into (plan
 * @plan): copy, wait with the lock dropped, finish the plan (a failure
 * undoes the append). Called and returns with the lock held; -ENOENT when
 * the entry went while the copy ran (the freeing thread finished the plan).
 */
static int cow_copy(struct accel_kv *kv, uint32_t seq, struct kv_entry **e, uint64_t plan)
{
	struct accel_bm_run run;
	struct kv_xfer *x = NULL;
	struct kv_move *m;
	uint64_t gen = (*e)->gen;
	int ret, st;

	ret = accel_bm_plan_runs(kv->bm, plan, 0, &run, 1);
	ret = ret == 1 ? kv->be->ops->copy(kv->be, &run, 1, NULL, &x) : ret < 0 ? ret : -EIO;
	if (ret) {
		accel_bm_plan_done(kv->bm, plan, ret);
		return ret;
	}
	kv->st.cow_copies++;
	if (!x) {
		plan_finish(kv, seq, MOVE_COW, plan, 0);
		return 0;
	}
	m = move_new(MOVE_COW, x, plan);
	if (!m) {
		/* Nothing may still write into a block that goes back. */
		kv->be->ops->wait(kv->be, x, -1);
		kv->be->ops->xfer_free(kv->be, x);
		accel_bm_plan_done(kv->bm, plan, -ENOMEM);
		return -ENOMEM;
	}
	m->refs++;	/* ours */
	(*e)->move = m;
	pthread_mutex_unlock(&kv->lock);
	st = move_wait(kv, m, -1);
	pthread_mutex_lock(&kv->lock);
	*e = entry(kv, seq);
	if (!*e || (*e)->gen != gen || (*e)->move != m) {
		move_put(kv, m);
		return -ENOENT;
	}
	(*e)->move = NULL;
	m->refs--;		/* the entry's: ours is still held */
	move_put(kv, m);
	plan_finish(kv, seq, MOVE_COW, plan, st);
	return st;
}

ACCEL_EXPORT int accel_kv_seq_append(struct accel_kv *kv, uint32_t seq, const int32_t *tokens,
				     uint64_t n)
{
	ACCEL_OPTS(accel_bm_plan, plan);
	struct kv_entry *e;
	int ret;

	if (!kv || (n && !tokens))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (ret || !n)
		goto out;
	if (!tokens_fit(kv, bseq(kv, seq)->s.nr_tokens, n)) {
		ret = -E2BIG;
		goto out;
	}
	/* All or nothing: a copy-on-write that fails undoes the append. */
	ret = accel_bm_append(kv->bm, seq, tokens, n, NULL, &plan);
	if (!ret && plan.id)
		ret = cow_copy(kv, seq, &e, plan.id);
	else if (!ret)
		commit_full(kv, seq);
	if (!ret)
		drop_window(kv, e);
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

ACCEL_EXPORT int accel_kv_seq_fork(struct accel_kv *kv, uint32_t seq, uint32_t *child)
{
	struct kv_entry *e;
	uint32_t id;
	int ret;

	if (!kv || !child)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, ACCEL_KV_DEVICE, &e);
	if (!ret)
		ret = accel_bm_seq_fork(kv->bm, seq, &id);
	if (ret)
		goto out;
	ret = entry_new(kv, id);
	if (ret) {
		accel_bm_seq_free(kv->bm, id);
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
		entry_fini(kv, seq);
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* A sequence's table on tier @place (up to @max ids); returns its block count. */
static int table_of(struct accel_kv *kv, uint32_t seq, int place, uint32_t *blocks,
		    uint32_t max)
{
	const struct bm_seq *q;
	struct kv_entry *e;
	int ret;

	if (!kv || (max && !blocks))
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	ret = entry_at(kv, seq, place, &e);
	if (!ret) {
		q = bseq(kv, seq);
		ret = (int)q->s.nr_blocks;
		if (ret)
			memcpy(blocks, q->s.blocks,
			       (ret < (int)max ? (uint32_t)ret : max) * sizeof(*blocks));
	}
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
	if (e && e->move && e->move->kind == MOVE_COW) {
		/* The append is not done until its copy is. */
		const struct bm_seq *q = bseq(kv, seq);

		*tokens = kv->bm->plan[q->plan].old_tokens;
	} else if (e) {
		*tokens = bseq(kv, seq)->s.nr_tokens;
	}
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
	ret = e ? place_of(kv, e, seq) : -ENOENT;
	pthread_mutex_unlock(&kv->lock);
	return ret;
}

/* ---- swapping ---- */

/* A started transfer of plan @plan: the entry moves until it is done; *fence the caller's. */
static int start_move(struct accel_kv *kv, uint32_t seq, enum move_kind kind, struct kv_xfer *x,
		      uint64_t plan, struct accel_fence **fence)
{
	struct kv_move *m;

	if (!x) {
		plan_finish(kv, seq, kind, plan, 0);
		return 0;
	}
	m = move_new(kind, x, plan);
	if (!m) {
		int st = kv->be->ops->wait(kv->be, x, -1);

		kv->be->ops->xfer_free(kv->be, x);
		plan_finish(kv, seq, kind, plan, st);
		return st;
	}
	kv->e[seq].move = m;
	if (fence)
		*fence = kv->be->ops->xfer_fence(kv->be, x);
	return 0;
}

/*
 * Move @seq to the host tier (@in false) or back (@in true): the block
 * manager's plan copies only blocks without a valid copy there (host
 * copies kept since the last swap in, device blocks still cached under
 * their key), its runs one transfer of the backend.
 */
static int swap_move(struct accel_kv *kv, uint32_t seq, bool in,
		     const struct accel_kv_swap_opts *opts, struct accel_fence **fence)
{
	struct kv_order order = {
		ACCEL_OPTS_GET(opts, cuda_wait_event, NULL),
		ACCEL_OPTS_GET(opts, cuda_done_event, NULL),
	};
	ACCEL_OPTS(accel_bm_plan, plan);
	struct accel_bm_run *runs = NULL;
	struct kv_xfer *x = NULL;
	struct kv_entry *e;
	int ret;

	ret = entry_at(kv, seq, in ? ACCEL_KV_HOST : ACCEL_KV_DEVICE, &e);
	if (ret)
		return ret;
	/* Always a plan, so that a refused copy (or CUDA event) can still undo the move. */
	ret = bm_seq_move(kv->bm, seq, in ? KV_TIER_DEV : KV_TIER_HOST,
			  BM_MOVE_PLAN_ALWAYS | (in ? 0 : BM_MOVE_DROP_OLD), &plan);
	if (ret)
		return ret;
	kv->st.blocks_reused += plan.reused;
	runs = calloc(plan.nr_runs + 1, sizeof(*runs));
	if (!runs) {
		accel_bm_plan_done(kv->bm, plan.id, -ENOMEM);
		return -ENOMEM;
	}
	ret = accel_bm_plan_runs(kv->bm, plan.id, 0, runs, plan.nr_runs);
	drop_window(kv, e);
	if (ret >= 0)
		ret = kv->be->ops->copy(kv->be, runs, plan.nr_runs, &order, &x);
	free(runs);
	if (ret) {
		accel_bm_plan_done(kv->bm, plan.id, ret);
		return ret;
	}
	if (in) {
		kv->st.swaps_in++;
		kv->st.blocks_in += plan.blocks;
	} else {
		kv->st.swaps_out++;
		kv->st.blocks_out += plan.blocks;
	}
	return start_move(kv, seq, in ? MOVE_IN : MOVE_OUT, x, plan.id, fence);
}

/* A swap's entry point: checks, then swap_move() under the lock. */
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
	ret = swap_move(kv, seq, in, opts, fence);
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
	ret = swap_move(kv, seq, in, NULL, &f);
	e = entry(kv, seq);
	if (!ret && f && e && e->move)
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

static bool swapping(const struct kv_entry *e)
{
	return e->live && e->move && e->move->kind != MOVE_COW;
}

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
		n += swapping(&kv->e[i]);
	snap = calloc(n + 1, sizeof(*snap));
	if (!snap) {
		pthread_mutex_unlock(&kv->lock);
		return -ENOMEM;
	}
	for (i = 0, n = 0; i < kv->nr_e; i++) {
		struct kv_entry *e = &kv->e[i];

		if (!swapping(e))
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
			finish_move(kv, snap[i].seq, snap[i].status);
		move_put(kv, snap[i].m);
	}
	for (i = 0; i < kv->nr_e; i++)
		left += swapping(&kv->e[i]);
	pthread_mutex_unlock(&kv->lock);
	free(snap);
	return left;
}

/* ---- memory ---- */

ACCEL_EXPORT void *accel_kv_block_addr(struct accel_kv *kv, enum accel_kv_place tier,
				       uint32_t block)
{
	int t = tier == ACCEL_KV_DEVICE ? KV_TIER_DEV : tier == ACCEL_KV_HOST ? KV_TIER_HOST : -1;

	if (!kv || t < 0 || block >= kv->nr_blocks[t]) {
		errno = EINVAL;
		return NULL;
	}
	return kv->be->ops->block_addr(kv->be, t, block);
}

ACCEL_EXPORT int accel_kv_seq_window(struct accel_kv *kv, uint32_t seq, void **addr, size_t *len)
{
	const struct bm_seq *q;
	struct kv_entry *e;
	int ret;

	if (!kv || !addr)
		return -EINVAL;
	pthread_mutex_lock(&kv->lock);
	e = entry(kv, seq);
	q = e ? bseq(kv, seq) : NULL;
	ret = !e ? -ENOENT : e->move ? -EBUSY : !q->s.nr_blocks ? -ENODATA : 0;
	if (ret)
		goto out;
	drop_window(kv, e);
	ret = kv->be->ops->window(kv->be, q->tier, q->s.blocks, q->s.nr_blocks, &e->win, addr,
				  len);
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

/* Blocks of tier @t in no one's hands (free, or cached and evictable). */
static uint32_t tier_free(struct accel_kv *kv, uint32_t t)
{
	const struct kv_pool *p = &kv->bm->tier[t].pool;

	return p->nr_free + p->nr_cached;
}

/* The counters, as LIBACCEL_0.2's struct (sz not set). */
static void stats_fill(struct accel_kv *kv, struct accel_kv_stats *s)
{
	pthread_mutex_lock(&kv->lock);
	*s = kv->st;
	s->transfers = kv->be->transfers;
	s->bytes_moved = kv->be->bytes_moved;
	s->device_free = tier_free(kv, KV_TIER_DEV);
	s->host_free = tier_free(kv, KV_TIER_HOST);
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
		if (e->move)
			finish_move(kv, i, move_wait(kv, e->move, -1));
		drop_window(kv, e);
	}
	free(kv->e);
	accel_bm_destroy(kv->bm);
	if (kv->be)
		kv->be->ops->destroy(kv->be);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}

/* ---- self-check (tests) ---- */

#define FAIL(...) do { snprintf(why, len, __VA_ARGS__); ret = -EUCLEAN; goto out; } while (0)

/*
 * Every invariant of the cache: the block manager's (each block's
 * reference count is the number of tables, still-valid copies and plans
 * holding it; free and cached counts; the lists), and the cache's own:
 * an entry for each of the manager's sequences and no other, a move
 * exactly while the sequence's plan is pending (and that plan), every
 * full block keyed and, outside a move, committed. 0, or -EUCLEAN with
 * @why saying what broke.
 */
int kv_cache_check(struct accel_kv *kv, char *why, size_t len)
{
	uint32_t i, b, n;
	int ret;

	pthread_mutex_lock(&kv->lock);
	ret = bm_check(kv->bm, why, len);
	if (ret)
		goto out;
	n = kv->nr_e > kv->bm->nr_seq ? kv->nr_e : kv->bm->nr_seq;
	for (i = 0; i < n; i++) {
		const struct kv_entry *e = entry(kv, i);
		const struct bm_seq *q = bm_seq_get(kv->bm, i);
		uint32_t full;

		if (!e != !q)
			FAIL("seq %u: %s in the cache, %s in the block manager", i,
			     e ? "live" : "absent", q ? "live" : "absent");
		if (!e)
			continue;
		if (!e->move != (q->plan == BM_NONE))
			FAIL("seq %u: a move %s, a plan %s", i, e->move ? "in flight" : "none",
			     q->plan == BM_NONE ? "none" : "pending");
		if (e->move && kv->bm->plan[q->plan].id != e->move->plan)
			FAIL("seq %u: its move is not its pending plan", i);
		if (q->tier >= KV_TIER_NR)
			FAIL("seq %u: on tier %u", i, q->tier);
		full = (uint32_t)(q->s.nr_tokens / kv->block_tokens);
		if (!e->move && q->s.nr_committed != full)
			FAIL("seq %u: %u of %u full blocks committed", i, q->s.nr_committed, full);
		for (b = 0; b < full; b++)
			if (kv_key_is_zero(&q->s.keys[b]))
				FAIL("seq %u block %u: full without a key", i, b);
	}
out:
	pthread_mutex_unlock(&kv->lock);
	return ret;
}
