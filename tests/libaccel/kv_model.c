// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native tests (cmocka, ASan/UBSan) of the KV cache's logic (kv_cache.c,
 * on the block manager bm/ whose plans it executes, linked in as it is)
 * over a stub backend of plain memory whose transfers complete when the
 * test lets them, fail when told to (a failed copy leaves garbage in its
 * destination), and can hold every waiter back:
 *
 * - a model-based run: long random sequences of create, append, fork,
 *   free, swap out, swap in and progress with both tiers under pressure
 *   and failures injected at submit, at completion and in prepare; after
 *   every operation the cache's invariants (kv_cache_check()) hold and
 *   every sequence's KV, on whichever tier it is, is byte for byte what
 *   the engine wrote (each token's slot is a digest of its sequence's
 *   extra keys and token prefix, so a block shared or moved wrongly shows);
 * - directed tests of defects: a swap out with the host tier short after
 *   a swap in and growth; an append whose copy-on-write fails; nothing
 *   waits with the cache's lock held; one deadline for a whole progress
 *   call; token counts that would overflow; a swap out that takes host
 *   copies another sequence's swap left under the same keys.
 *
 * The seed is printed; KV_MODEL_SEED=N replays one, KV_MODEL_OPS=N sets
 * the budget (default 20000).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "kv/kv_backend.h"

/* The stub has no fences: the cache never hands one out here. */
void accel_fence_destroy(struct accel_fence *f)
{
	assert_null(f);
}

/* ---- the stub backend ---- */

enum { BB = 64, BT = 4, SLOT = BB / BT };

struct kv_xfer {
	struct stub *s;
	enum kv_tier_id from, to;
	struct kv_copy *c;
	uint32_t n;
	bool done;
	int status;
};

struct stub {
	struct kv_backend b;
	uint8_t *mem[KV_TIER_NR];
	uint32_t nr[KV_TIER_NR];
	uint32_t *busy[KV_TIER_NR];	/* transfers in flight touching each block */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;			/* waits sleep until released */
	unsigned int sync_pct, fail_submit_pct, fail_done_pct, fail_prepare_pct;
	unsigned int waiting;		/* threads inside ->wait() */
	unsigned int inflight;
	uint32_t rng;
	bool overlap;			/* a block written by two transfers at once */
};

static uint32_t stub_rand(struct stub *s)
{
	s->rng = s->rng * 1103515245u + 12345u;
	return s->rng >> 8;
}

static bool chance(struct stub *s, unsigned int pct)
{
	return pct && stub_rand(s) % 100 < pct;
}

static void apply(struct kv_xfer *x)
{
	struct stub *s = x->s;
	uint32_t i;

	for (i = 0; i < x->n; i++) {
		uint8_t *dst = s->mem[x->to] + (size_t)x->c[i].dst * BB;

		if (x->status)
			memset(dst, 0xee, BB);	/* a torn copy */
		else
			memcpy(dst, s->mem[x->from] + (size_t)x->c[i].src * BB, BB);
		s->busy[x->to][x->c[i].dst]--;
		s->busy[x->from][x->c[i].src]--;
	}
	x->done = true;
	s->inflight--;
}

static int stub_prepare(struct kv_backend *b, const uint32_t *blocks, uint32_t n)
{
	struct stub *s = (struct stub *)b;

	(void)blocks;
	(void)n;
	return chance(s, s->fail_prepare_pct) ? -ENOMEM : 0;
}

static int stub_copy(struct kv_backend *b, const struct accel_bm_run *runs, uint32_t nr,
		     const struct kv_order *order, struct kv_xfer **out)
{
	struct stub *s = (struct stub *)b;
	struct kv_xfer *x;
	uint32_t i, k, n = 0;

	*out = NULL;
	if (order && (order->wait_event || order->done_event))
		return -EOPNOTSUPP;
	if (!nr)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (chance(s, s->fail_submit_pct)) {
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	for (i = 0; i < nr; i++) {
		/* One transfer: one pair of tiers; runs within the transfer unit. */
		assert_true(runs[i].src_tier == runs[0].src_tier &&
			    runs[i].dst_tier == runs[0].dst_tier);
		assert_true(runs[i].count >= 1 && runs[i].count * BB <= b->transfer_unit);
		n += runs[i].count;
	}
	x = calloc(1, sizeof(*x));
	assert_non_null(x);
	*x = (struct kv_xfer) { s, runs[0].src_tier, runs[0].dst_tier, NULL, n, false, 0 };
	x->c = calloc(n, sizeof(*x->c));
	assert_non_null(x->c);
	for (i = 0, n = 0; i < nr; i++)
		for (k = 0; k < runs[i].count; k++, n++)
			x->c[n] = (struct kv_copy) { runs[i].src_block + k, runs[i].dst_block + k };
	for (i = 0; i < n; i++) {
		struct kv_copy *c = &x->c[i];

		assert_true(c->src < s->nr[x->from] && c->dst < s->nr[x->to]);
		if (s->busy[x->to][c->dst])
			s->overlap = true;
		s->busy[x->to][c->dst]++;
		s->busy[x->from][c->src]++;
	}
	s->inflight++;
	b->transfers += nr;
	b->bytes_moved += (uint64_t)n * BB;
	if (chance(s, s->fail_done_pct))
		x->status = -EIO;
	if (chance(s, s->sync_pct) && !x->status && !s->hold) {
		apply(x);
		free(x->c);
		free(x);
		x = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	*out = x;
	return 0;
}

static int stub_wait(struct kv_backend *b, struct kv_xfer *x, int64_t timeout_ns)
{
	struct stub *s = (struct stub *)b;
	int ret;

	pthread_mutex_lock(&s->lock);
	s->waiting++;
	pthread_cond_broadcast(&s->cond);
	if (!x->done && s->hold && timeout_ns > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ns / 1000000000;
		ts.tv_nsec += timeout_ns % 1000000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (s->hold && !x->done &&
		       pthread_cond_timedwait(&s->cond, &s->lock, &ts) != ETIMEDOUT)
			;
	}
	while (!x->done && s->hold && timeout_ns < 0)
		pthread_cond_wait(&s->cond, &s->lock);
	if (!x->done && !s->hold && (timeout_ns || chance(s, 50)))
		apply(x);
	ret = x->done ? x->status : -ETIME;
	s->waiting--;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void stub_xfer_free(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	/* The cache frees a transfer only once it is over. */
	assert_true(x->done);
	free(x->c);
	free(x);
}

static struct accel_fence *stub_xfer_fence(struct kv_backend *b, struct kv_xfer *x)
{
	(void)b;
	(void)x;
	return NULL;
}

static void *stub_block_addr(struct kv_backend *b, enum kv_tier_id t, uint32_t block)
{
	return ((struct stub *)b)->mem[t] + (size_t)block * BB;
}

static int stub_window(struct kv_backend *b, enum kv_tier_id t, const uint32_t *blocks,
		       uint32_t n, void **win, void **addr, size_t *len)
{
	(void)b; (void)t; (void)blocks; (void)n; (void)win; (void)addr; (void)len;
	return -EOPNOTSUPP;
}

static void stub_window_free(struct kv_backend *b, void *win)
{
	(void)b;
	(void)win;
}

static int stub_export(struct kv_backend *b, enum kv_tier_id t, int *fd)
{
	(void)b; (void)t; (void)fd;
	return -EOPNOTSUPP;
}

static void stub_destroy(struct kv_backend *b)
{
	struct stub *s = (struct stub *)b;
	int t;

	/* Every transfer was waited for before the cache let go of it. */
	assert_int_equal(0, s->inflight);
	assert_false(s->overlap);
	for (t = 0; t < KV_TIER_NR; t++) {
		free(s->mem[t]);
		free(s->busy[t]);
	}
	free(s);
}

static const struct kv_backend_ops stub_ops = {
	.prepare = stub_prepare, .copy = stub_copy, .wait = stub_wait,
	.xfer_free = stub_xfer_free, .xfer_fence = stub_xfer_fence,
	.block_addr = stub_block_addr, .window = stub_window, .window_free = stub_window_free,
	.tier_export = stub_export, .destroy = stub_destroy,
};

static struct stub *stub;

static struct accel_kv *cache_new(uint32_t dev_blocks, uint32_t host_blocks, uint32_t seed)
{
	struct kv_backend_config cfg = {
		.block_bytes = BB, .device_blocks = dev_blocks, .host_blocks = host_blocks,
		.transfer_unit = 4 * BB, .host_node = -1,
	};
	struct accel_kv *kv;

	stub = calloc(1, sizeof(*stub));
	assert_non_null(stub);
	stub->b = (struct kv_backend) { .ops = &stub_ops, .name = "stub", .block_bytes = BB,
					.transfer_unit = 4 * BB };
	stub->nr[KV_TIER_DEV] = dev_blocks;
	stub->nr[KV_TIER_HOST] = host_blocks;
	for (int t = 0; t < KV_TIER_NR; t++) {
		stub->mem[t] = calloc(stub->nr[t], BB);
		stub->busy[t] = calloc(stub->nr[t], sizeof(uint32_t));
		assert_non_null(stub->mem[t]);
		assert_non_null(stub->busy[t]);
	}
	pthread_mutex_init(&stub->lock, NULL);
	pthread_cond_init(&stub->cond, NULL);
	stub->rng = seed;
	kv = kv_cache_create(&cfg, BT, &stub->b);
	assert_non_null(kv);
	return kv;
}

static void check(struct accel_kv *kv)
{
	char why[200] = "";
	int ret = kv_cache_check(kv, why, sizeof(why));

	if (ret)
		fail_msg("invariant: %s", why);
}

static void release_hold(void)
{
	pthread_mutex_lock(&stub->lock);
	stub->hold = false;
	pthread_cond_broadcast(&stub->cond);
	pthread_mutex_unlock(&stub->lock);
}

/* Wait until @n threads sit in the stub's wait. */
static void await_waiters(unsigned int n)
{
	pthread_mutex_lock(&stub->lock);
	while (stub->waiting < n)
		pthread_cond_wait(&stub->cond, &stub->lock);
	pthread_mutex_unlock(&stub->lock);
}

/* ---- the engine's side of the model ---- */

enum { MAXSEQ = 48, MAXTOK = 160 };

struct mseq {
	bool live;
	uint32_t id;
	int salt;		/* 0 none, 1 "a", 2 "b" */
	uint32_t n;
	int32_t tok[MAXTOK];
};

static struct mseq ms[MAXSEQ];

/* The KV bytes of token @p of @m: a digest of its salt and tokens [0, p]. */
static void slot_of(const struct mseq *m, uint32_t p, uint8_t *out)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)m->salt;
	uint32_t i;

	for (i = 0; i <= p; i++)
		h = (h ^ (uint32_t)m->tok[i]) * 0x100000001b3ULL;
	for (i = 0; i < SLOT; i += 8)
		memcpy(out + i, &h, 8);
}

/* The engine writes the KV of tokens [from, m->n) into the device blocks. */
static void write_kv(struct accel_kv *kv, const struct mseq *m, uint32_t from)
{
	uint32_t blocks[MAXTOK / BT + 1], p;
	int n = accel_kv_seq_blocks(kv, m->id, blocks, MAXTOK / BT + 1);

	assert_int_equal((m->n + BT - 1) / BT, n);
	for (p = from; p < m->n; p++) {
		uint32_t b = blocks[p / BT];

		/* Never into a block a transfer still reads or writes. */
		assert_int_equal(0, stub->busy[KV_TIER_DEV][b]);
		slot_of(m, p, stub->mem[KV_TIER_DEV] + (size_t)b * BB + (p % BT) * SLOT);
	}
}

/* Every token's KV is where the sequence is, byte for byte. */
static void verify(struct accel_kv *kv, const struct mseq *m)
{
	uint32_t blocks[MAXTOK / BT + 1], p;
	int place = accel_kv_seq_place(kv, m->id), n, t;
	uint64_t tokens;
	uint8_t want[SLOT];

	assert_int_equal(0, accel_kv_seq_tokens(kv, m->id, &tokens));
	assert_int_equal(m->n, tokens);
	if (place == ACCEL_KV_MOVING)
		return;
	t = place == ACCEL_KV_DEVICE ? KV_TIER_DEV : KV_TIER_HOST;
	n = t == KV_TIER_DEV ? accel_kv_seq_blocks(kv, m->id, blocks, MAXTOK / BT + 1) :
	    accel_kv_seq_host_blocks(kv, m->id, blocks, MAXTOK / BT + 1);
	assert_int_equal((m->n + BT - 1) / BT, n);
	for (p = 0; p < m->n; p++) {
		const uint8_t *got = stub->mem[t] + (size_t)blocks[p / BT] * BB + (p % BT) * SLOT;

		slot_of(m, p, want);
		if (memcmp(got, want, SLOT))
			fail_msg("seq %u token %u on the %s tier: wrong KV", m->id, p,
				 t == KV_TIER_DEV ? "device" : "host");
	}
}

static const char *const salts[] = { NULL, "a", "b" };

static int m_create(struct accel_kv *kv, struct mseq *m, uint32_t n, int salt)
{
	ACCEL_OPTS(accel_kv_seq_opts, o, .extra_keys = salts[salt],
		   .extra_keys_len = salt ? 1 : 0);
	uint64_t cached = 0;
	int ret;

	m->salt = salt;
	m->n = n;
	ret = accel_kv_seq_create_opts(kv, m->tok, n, &o, &m->id, &cached);
	if (ret)
		return ret;
	assert_true(cached <= n && cached % BT == 0);
	m->live = true;
	/* Cached blocks already hold this prefix's KV; the engine writes the rest. */
	write_kv(kv, m, (uint32_t)cached);
	return 0;
}

static int m_append(struct accel_kv *kv, struct mseq *m, uint32_t k)
{
	uint32_t from = m->n, i;
	uint64_t tokens;
	int ret;

	for (i = 0; i < k; i++)
		m->tok[m->n + i] = rand() % 3;
	ret = accel_kv_seq_append(kv, m->id, m->tok + from, k);
	if (ret) {
		/* All or nothing. */
		assert_int_equal(0, accel_kv_seq_tokens(kv, m->id, &tokens));
		assert_int_equal(from, tokens);
		return ret;
	}
	m->n += k;
	write_kv(kv, m, from);
	return 0;
}

static void m_free_all(struct accel_kv *kv)
{
	for (int i = 0; i < MAXSEQ; i++)
		if (ms[i].live) {
			assert_int_equal(0, accel_kv_seq_free(kv, ms[i].id));
			ms[i].live = false;
		}
}

static unsigned long env_or(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : dflt;
}

static void model_random(void **state)
{
	uint32_t seed = (uint32_t)env_or("KV_MODEL_SEED", (unsigned long)time(NULL));
	unsigned long ops = env_or("KV_MODEL_OPS", 20000), op;
	struct accel_kv *kv;
	unsigned long counts[8] = { 0 };

	(void)state;
	printf("# kv_model: seed %u, %lu operations (KV_MODEL_SEED=%u replays)\n", seed, ops,
	       seed);
	srand(seed);
	memset(ms, 0, sizeof(ms));
	kv = cache_new(40, 28, seed);
	stub->sync_pct = 20;
	stub->fail_submit_pct = 3;
	stub->fail_done_pct = 3;
	stub->fail_prepare_pct = 2;
	for (op = 0; op < ops; op++) {
		int i = rand() % MAXSEQ, what = rand() % 100, ret, j;
		struct mseq *m = &ms[i];

		if (!m->live && what < 60) {
			uint32_t n = rand() % 24;

			/* Common prefixes: tokens from a tiny alphabet. */
			for (j = 0; j < (int)n; j++)
				m->tok[j] = j < 8 ? j % 2 : rand() % 3;
			ret = m_create(kv, m, n, rand() % 3);
			counts[0] += !ret;
		} else if (!m->live) {
			continue;
		} else if (what < 35) {
			if (m->n + 6 < MAXTOK && accel_kv_seq_place(kv, m->id) == ACCEL_KV_DEVICE)
				counts[1] += !m_append(kv, m, 1 + rand() % 6);
		} else if (what < 42) {
			for (j = 0; j < MAXSEQ && ms[j].live; j++)
				;
			if (j < MAXSEQ && accel_kv_seq_place(kv, m->id) == ACCEL_KV_DEVICE &&
			    !accel_kv_seq_fork(kv, m->id, &ms[j].id)) {
				memcpy(ms[j].tok, m->tok, sizeof(m->tok));
				ms[j].n = m->n;
				ms[j].salt = m->salt;
				ms[j].live = true;
				counts[2]++;
			}
		} else if (what < 52) {
			assert_int_equal(0, accel_kv_seq_free(kv, m->id));
			m->live = false;
			counts[3]++;
		} else if (what < 70) {
			ret = accel_kv_swap_out(kv, m->id, NULL);
			assert_true(ret == 0 || ret == -EBUSY || ret == -ENOSPC || ret == -EIO);
			counts[4] += !ret;
		} else if (what < 88) {
			ret = accel_kv_swap_in(kv, m->id, NULL);
			assert_true(ret == 0 || ret == -EBUSY || ret == -ENOSPC || ret == -EIO ||
				    ret == -ENOMEM);
			counts[5] += !ret;
		} else {
			ret = accel_kv_progress(kv, rand() % 4 ? 0 : -1);
			assert_true(ret >= 0);
			counts[6]++;
		}
		check(kv);
		for (j = 0; j < MAXSEQ; j++)
			if (ms[j].live)
				verify(kv, &ms[j]);
	}
	assert_int_equal(0, accel_kv_progress(kv, -1));
	for (int j = 0; j < MAXSEQ; j++)
		if (ms[j].live)
			verify(kv, &ms[j]);
	printf("# kv_model: %lu created, %lu appends, %lu forks, %lu freed, %lu swaps out, "
	       "%lu swaps in, %lu progress\n", counts[0], counts[1], counts[2], counts[3],
	       counts[4], counts[5], counts[6]);
	m_free_all(kv);
	check(kv);
	accel_kv_destroy(kv);
}

/*
 * A sequence swapped out and in, grown, and swapped out again while the
 * host tier is nearly full: its clean host copies stay its own, others'
 * are reclaimed, and exactly the blocks without a copy get new ones.
 */
static void swap_out_host_short(void **state)
{
	struct accel_kv *kv;
	struct mseq *a = &ms[0], *b = &ms[1];
	struct accel_kv_stats st = { .sz = sizeof(st) };

	(void)state;
	memset(ms, 0, sizeof(ms));
	kv = cache_new(16, 8, 1);
	for (int i = 0; i < MAXTOK; i++)
		a->tok[i] = 100 + i, b->tok[i] = 200 + i;
	assert_int_equal(0, m_create(kv, a, 16, 0));	/* 4 blocks */
	assert_int_equal(0, accel_kv_swap_out(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	assert_int_equal(0, accel_kv_swap_in(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	/* a keeps its 4 host copies; b takes the other 4 host blocks. */
	assert_int_equal(0, m_create(kv, b, 16, 0));
	assert_int_equal(0, accel_kv_swap_out(kv, b->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	assert_int_equal(0, accel_kv_swap_in(kv, b->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	/* a grows by 2 blocks; the host tier is full with clean copies. */
	assert_int_equal(0, m_append(kv, a, 8));
	assert_int_equal(0, accel_kv_swap_out(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	assert_int_equal(ACCEL_KV_HOST, accel_kv_seq_place(kv, a->id));
	check(kv);
	verify(kv, a);
	verify(kv, b);
	assert_int_equal(0, accel_kv_stats(kv, &st));
	assert_true(st.blocks_reused >= 3);	/* a's first blocks were not copied again */
	assert_int_equal(0, accel_kv_swap_in(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	verify(kv, a);
	m_free_all(kv);
	accel_kv_destroy(kv);
}

/*
 * Host blocks are keyed too (the block manager's host prefix cache): a
 * sequence swapped out after another with the same prefix takes the host
 * copies the first one left instead of copying its full blocks again, and
 * both come back without a copy (their device blocks are still cached).
 */
static void swap_out_shares_host_prefix(void **state)
{
	struct accel_kv *kv;
	struct mseq *a = &ms[0], *b = &ms[1];
	struct accel_kv_stats st = { .sz = sizeof(st) };
	uint32_t ha[4], hb[4];

	(void)state;
	memset(ms, 0, sizeof(ms));
	kv = cache_new(16, 8, 5);
	for (int i = 0; i < MAXTOK; i++)
		a->tok[i] = b->tok[i] = 300 + i;
	assert_int_equal(0, m_create(kv, a, 8, 0));	/* 2 full blocks */
	assert_int_equal(0, m_create(kv, b, 8, 0));	/* shares both */
	assert_int_equal(0, accel_kv_swap_out(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	assert_int_equal(0, accel_kv_swap_out(kv, b->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	check(kv);
	assert_int_equal(0, accel_kv_stats(kv, &st));
	assert_int_equal(2, st.blocks_out);
	assert_int_equal(2, st.blocks_reused);
	assert_int_equal(6, st.host_free);
	assert_int_equal(2, accel_kv_seq_host_blocks(kv, a->id, ha, 4));
	assert_int_equal(2, accel_kv_seq_host_blocks(kv, b->id, hb, 4));
	assert_memory_equal(ha, hb, sizeof(uint32_t) * 2);
	verify(kv, a);
	verify(kv, b);
	assert_int_equal(0, accel_kv_swap_in(kv, a->id, NULL));
	assert_int_equal(0, accel_kv_swap_in(kv, b->id, NULL));
	assert_int_equal(0, accel_kv_progress(kv, -1));
	check(kv);
	assert_int_equal(0, accel_kv_stats(kv, &st));
	assert_int_equal(0, st.blocks_in);
	assert_int_equal(6, st.blocks_reused);
	verify(kv, a);
	verify(kv, b);
	m_free_all(kv);
	check(kv);
	accel_kv_destroy(kv);
}

/* A failed copy-on-write adds no token and leaves the shared block alone. */
static void append_cow_failure(void **state)
{
	struct accel_kv *kv;
	struct mseq *a = &ms[0], *c = &ms[1];
	struct accel_kv_stats st = { .sz = sizeof(st) };

	(void)state;
	memset(ms, 0, sizeof(ms));
	kv = cache_new(16, 8, 2);
	for (int i = 0; i < MAXTOK; i++)
		a->tok[i] = 7 + i;
	assert_int_equal(0, m_create(kv, a, 6, 0));	/* a partial second block */
	uint32_t child;

	assert_int_equal(0, accel_kv_seq_fork(kv, a->id, &child));
	*c = *a;
	c->id = child;
	stub->fail_done_pct = 100;
	assert_int_equal(-EIO, m_append(kv, c, 1));
	stub->fail_submit_pct = 100;
	stub->fail_done_pct = 0;
	assert_int_equal(-EIO, m_append(kv, c, 1));
	stub->fail_submit_pct = 0;
	check(kv);
	verify(kv, a);
	verify(kv, c);
	assert_int_equal(0, m_append(kv, c, 1));
	assert_int_equal(0, accel_kv_stats(kv, &st));
	assert_int_equal(2, st.cow_copies);	/* the refused submit counts none */
	verify(kv, a);
	verify(kv, c);
	m_free_all(kv);
	check(kv);
	accel_kv_destroy(kv);
}

struct waiter {
	struct accel_kv *kv;
	uint32_t seq;
	int op;		/* 0 progress(-1), 1 seq_free */
	int ret;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->ret = w->op ? accel_kv_seq_free(w->kv, w->seq) : accel_kv_progress(w->kv, -1);
	return NULL;
}

/*
 * Threads waiting for copies (progress(-1), freeing a moving sequence)
 * hold no lock: another thread creates, appends, swaps and reads stats
 * meanwhile; and one progress call waits one deadline for all its swaps.
 */
static void no_wait_under_lock(void **state)
{
	struct waiter w1, w2;
	pthread_t t1, t2;
	struct accel_kv *kv;
	struct timespec t0, t;
	uint64_t tokens;
	double ms_taken;
	int i;

	(void)state;
	memset(ms, 0, sizeof(ms));
	kv = cache_new(32, 32, 3);
	for (i = 0; i < 4; i++) {
		for (int k = 0; k < 8; k++)
			ms[i].tok[k] = 50 * i + k;
		assert_int_equal(0, m_create(kv, &ms[i], 8, 0));
	}
	stub->hold = true;
	assert_int_equal(0, accel_kv_swap_out(kv, ms[0].id, NULL));
	assert_int_equal(0, accel_kv_swap_out(kv, ms[1].id, NULL));
	assert_int_equal(ACCEL_KV_MOVING, accel_kv_seq_place(kv, ms[0].id));

	/* One deadline: two held swaps, 150 ms in all, not per swap. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(2, accel_kv_progress(kv, 150 * 1000000LL));
	clock_gettime(CLOCK_MONOTONIC, &t);
	ms_taken = (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms_taken >= 140 && ms_taken < 280);

	w1 = (struct waiter) { kv, 0, 0, -1 };
	w2 = (struct waiter) { kv, ms[1].id, 1, -1 };
	assert_int_equal(0, pthread_create(&t1, NULL, wait_thread, &w1));
	assert_int_equal(0, pthread_create(&t2, NULL, wait_thread, &w2));
	await_waiters(2);
	/* Both sit in a wait; the cache is free for everyone else. */
	ms[4].tok[0] = 1;
	assert_int_equal(0, m_create(kv, &ms[4], 3, 0));
	assert_int_equal(0, m_append(kv, &ms[2], 2));
	assert_int_equal(0, accel_kv_seq_tokens(kv, ms[3].id, &tokens));
	assert_int_equal(-EBUSY, accel_kv_seq_append(kv, ms[0].id, ms[0].tok, 1));
	release_hold();
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(0, w1.ret);	/* nothing left in flight */
	assert_int_equal(0, w2.ret);
	ms[1].live = false;
	assert_int_equal(-ENOENT, accel_kv_seq_place(kv, ms[1].id));
	assert_int_equal(ACCEL_KV_HOST, accel_kv_seq_place(kv, ms[0].id));
	check(kv);
	verify(kv, &ms[0]);
	verify(kv, &ms[2]);
	m_free_all(kv);
	accel_kv_destroy(kv);
}

/* Counts that would overflow the block arithmetic are refused first. */
static void token_bounds(void **state)
{
	struct accel_kv *kv;
	int32_t t[4] = { 1, 2, 3, 4 };
	uint32_t id;

	(void)state;
	kv = cache_new(8, 8, 4);
	assert_int_equal(-E2BIG, accel_kv_seq_create(kv, t, UINT64_MAX, &id, NULL));
	assert_int_equal(-E2BIG, accel_kv_seq_create(kv, t, UINT64_MAX - 2, &id, NULL));
	assert_int_equal(0, accel_kv_seq_create(kv, t, 4, &id, NULL));
	assert_int_equal(-E2BIG, accel_kv_seq_append(kv, id, t, UINT64_MAX - 3));
	assert_int_equal(-E2BIG, accel_kv_seq_append(kv, id, t, (uint64_t)UINT32_MAX * BT));
	/* Unknown non-zero fields past sz: refused. */
	{
		struct { struct accel_kv_seq_opts o; uint64_t more; } big = {
			.o.sz = sizeof(big), .more = 1,
		};
		assert_int_equal(-E2BIG, accel_kv_seq_create_opts(kv, t, 4, &big.o, &id, NULL));
		big.more = 0;
		assert_int_equal(0, accel_kv_seq_create_opts(kv, t, 4, &big.o, &id, NULL));
	}
	check(kv);
	accel_kv_destroy(kv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(swap_out_host_short),
		cmocka_unit_test(swap_out_shares_host_prefix),
		cmocka_unit_test(append_cow_failure),
		cmocka_unit_test(no_wait_under_lock),
		cmocka_unit_test(token_bounds),
		cmocka_unit_test(model_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
