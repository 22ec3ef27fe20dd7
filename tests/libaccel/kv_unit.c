// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native unit tests (cmocka, with ASan/UBSan) of the KV-cache manager's
 * core: the block pool (contiguous and scattered allocation, all-or-nothing
 * failure, references, the prefix cache's hash table, LRU eviction), block
 * tables (prefix sharing, forks, copy-on-write, release), and coalescing of
 * block copies. A randomised run checks the pool's invariants against a
 * model after every operation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kv/kv_free.h"
#include "kv/kv_key.h"
#include "kv/kv_pool.h"

/* A test key from a small non-zero integer. */
#define K(v) (&(struct kv_key){ .b = { (uint8_t)(v), (uint8_t)((v) >> 8) } })
#include "kv/kv_seq.h"

/* Every block is in exactly one state and the counters agree. */
static void check_pool(const struct kv_pool *p)
{
	uint32_t b, nfree = 0, ncached = 0, lru = 0;

	for (b = 0; b < p->nr_blocks; b++) {
		bool f = kv_pool_is_free(p, b);

		if (f) {
			assert_int_equal(0, p->refs[b]);
			assert_false(kv_pool_keyed(p, b));
			nfree++;
		} else if (!p->refs[b]) {
			assert_true(kv_pool_keyed(p, b));
			ncached++;
		}
		if (kv_pool_keyed(p, b))
			assert_int_equal(b, kv_pool_lookup(p, &p->key[b]));
	}
	assert_int_equal(nfree, p->nr_free);
	assert_int_equal(ncached, p->nr_cached);
	for (b = p->lru_head; b != KV_NO_BLOCK; b = p->lru_next[b])
		lru++;
	assert_int_equal(ncached, lru);
}

static void pool_contiguous_then_scattered(void **state)
{
	struct kv_pool p;
	uint32_t a[4], b[4], c[3];

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 10));
	assert_int_equal(0, kv_pool_alloc(&p, 4, a));
	assert_int_equal(0, a[0]);
	assert_int_equal(3, a[3]);
	assert_int_equal(0, kv_pool_alloc(&p, 4, b));
	assert_int_equal(4, b[0]);
	/* Free 1 and 5: no run of 3 is left but 8, 9 and the holes. */
	kv_pool_put(&p, a[1]);
	kv_pool_put(&p, b[1]);
	assert_int_equal(0, kv_pool_alloc(&p, 3, c));
	assert_int_equal(1, c[0]);
	assert_int_equal(5, c[1]);
	assert_int_equal(8, c[2]);
	check_pool(&p);
	kv_pool_fini(&p);
}

static void pool_all_or_nothing(void **state)
{
	struct kv_pool p;
	uint32_t a[8];

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 6));
	assert_int_equal(0, kv_pool_alloc(&p, 4, a));
	assert_int_equal(-ENOSPC, kv_pool_alloc(&p, 3, a + 4));
	assert_int_equal(2, p.nr_free);
	check_pool(&p);
	kv_pool_fini(&p);
	assert_int_equal(-EINVAL, kv_pool_init(&p, 0));
}

static void pool_cache_and_lru_eviction(void **state)
{
	struct kv_pool p;
	uint32_t a[4], b[2];

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 4));
	assert_int_equal(0, kv_pool_alloc(&p, 4, a));
	assert_int_equal(a[0], kv_pool_publish(&p, a[0], K(100)));
	assert_int_equal(a[1], kv_pool_publish(&p, a[1], K(200)));
	assert_int_equal(a[0], kv_pool_publish(&p, a[2], K(100)));	/* taken */
	/* Released in order 1, 0: cached, LRU head is a[1]. */
	kv_pool_put(&p, a[1]);
	kv_pool_put(&p, a[0]);
	assert_int_equal(2, p.nr_cached);
	assert_int_equal(0, p.nr_free);
	/* A lookup hit revives a cached block. */
	assert_int_equal(a[0], kv_pool_lookup(&p, K(100)));
	kv_pool_get(&p, a[0]);
	assert_int_equal(1, p.nr_cached);
	kv_pool_put(&p, a[0]);
	/* Allocating evicts the least recently used first: a[1]. */
	assert_int_equal(0, kv_pool_alloc(&p, 1, b));
	assert_int_equal(a[1], b[0]);
	assert_int_equal(KV_NO_BLOCK, kv_pool_lookup(&p, K(200)));
	assert_int_equal(a[0], kv_pool_lookup(&p, K(100)));
	assert_int_equal(1, p.evictions);
	check_pool(&p);
	/* Unpublishing a cached block frees it. */
	kv_pool_unpublish(&p, a[0]);
	assert_int_equal(1, p.nr_free);
	check_pool(&p);
	kv_pool_fini(&p);
}

/* Random operations; the invariants hold after each (hash deletion included). */
static void pool_randomised(void **state)
{
	enum { N = 97, REFS = 4 * N };
	struct kv_pool p;
	uint32_t used[REFS], nused = 0, out[8], i, round;	/* one entry per reference */
	uint64_t next_hash = 1;

	(void)state;
	srand(1234);
	assert_int_equal(0, kv_pool_init(&p, N));
	for (round = 0; round < 20000; round++) {
		int op = rand() % 5;

		if (op == 0) {
			uint32_t n = 1 + rand() % 8;

			if (nused + n <= REFS && !kv_pool_alloc(&p, n, out))
				for (i = 0; i < n; i++)
					used[nused++] = out[i];
		} else if (op == 1 && nused) {
			uint32_t k = rand() % nused;

			kv_pool_put(&p, used[k]);
			used[k] = used[--nused];
		} else if (op == 2 && nused) {
			uint32_t b = used[rand() % nused];

			if (!kv_pool_keyed(&p, b))
				kv_pool_publish(&p, b, K((next_hash++ % 50) + 1));
		} else if (op == 3) {
			uint32_t b = kv_pool_lookup(&p, K(1 + rand() % 50));

			if (b != KV_NO_BLOCK && nused < REFS) {
				kv_pool_get(&p, b);
				used[nused++] = b;
			}
		} else if (op == 4 && nused) {
			kv_pool_unpublish(&p, used[rand() % nused]);
		}
		check_pool(&p);
	}
	kv_pool_fini(&p);
}

static int32_t toks[64];

static int setup_tokens(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 64; i++)
		toks[i] = 1000 + i;
	return 0;
}

static void seq_prefix_sharing(void **state)
{
	struct kv_copies c = { 0 };
	struct kv_pool p;
	struct kv_seq a, b, d;
	uint64_t cached;

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 16));
	assert_int_equal(0, kv_seq_init(&a, 4));
	assert_int_equal(0, kv_seq_init(&b, 4));
	assert_int_equal(0, kv_seq_init(&d, 4));
	/* 10 tokens: 2 full blocks + 2 tokens. */
	assert_int_equal(0, kv_seq_start(&p, &a, toks, 10, &cached, &c, NULL));
	assert_int_equal(0, cached);
	assert_int_equal(3, a.nr_blocks);
	/* Same first 8 tokens: the 2 full blocks are shared. */
	assert_int_equal(0, kv_seq_start(&p, &b, toks, 9, &cached, &c, NULL));
	assert_int_equal(8, cached);
	assert_int_equal(a.blocks[0], b.blocks[0]);
	assert_int_equal(a.blocks[1], b.blocks[1]);
	assert_int_not_equal(a.blocks[2], b.blocks[2]);
	assert_int_equal(2, kv_pool_refs(&p, a.blocks[0]));
	/* A different second block shares only the first. */
	toks[5] = -1;
	assert_int_equal(0, kv_seq_start(&p, &d, toks, 8, &cached, &c, NULL));
	toks[5] = 1005;
	assert_int_equal(4, cached);
	assert_int_equal(0, c.n);
	check_pool(&p);

	/* Released sequences leave their full blocks cached for the next one. */
	kv_seq_release(&p, &a);
	kv_seq_release(&p, &b);
	kv_seq_release(&p, &d);
	assert_int_equal(3, p.nr_cached);	/* toks[0..8) blocks and d's second */
	assert_int_equal(0, kv_seq_start(&p, &a, toks, 12, &cached, &c, NULL));
	assert_int_equal(8, cached);
	check_pool(&p);
	kv_seq_fini(&p, &a);
	kv_seq_fini(&p, &b);
	kv_seq_fini(&p, &d);
	kv_copies_fini(&c);
	check_pool(&p);
	assert_int_equal(16, p.nr_free + p.nr_cached);
	kv_pool_fini(&p);
}

static void seq_fork_copy_on_write(void **state)
{
	struct kv_copies c = { 0 };
	struct kv_pool p;
	struct kv_seq a, b;
	uint32_t shared;

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 16));
	assert_int_equal(0, kv_seq_init(&a, 4));
	assert_int_equal(0, kv_seq_init(&b, 4));
	assert_int_equal(0, kv_seq_start(&p, &a, toks, 6, NULL, &c, NULL));
	assert_int_equal(0, kv_seq_fork(&p, &a, &b));
	shared = a.blocks[1];
	assert_int_equal(2, kv_pool_refs(&p, shared));
	/* b diverges: its partial block is copied first, then written. */
	assert_int_equal(0, kv_seq_append(&p, &b, toks + 40, 1, &c, NULL));
	assert_int_equal(1, c.n);
	assert_int_equal(shared, c.v[0].src);
	assert_int_equal(b.blocks[1], c.v[0].dst);
	assert_int_not_equal(shared, b.blocks[1]);
	assert_int_equal(1, kv_pool_refs(&p, shared));
	assert_int_equal(2, kv_pool_refs(&p, a.blocks[0]));
	/* a owns its partial block alone now: no copy. */
	assert_int_equal(0, kv_seq_append(&p, &a, toks + 6, 3, &c, NULL));
	assert_int_equal(1, c.n);
	assert_int_equal(9, a.nr_tokens);
	assert_int_equal(3, a.nr_blocks);
	/* Without a copy list, a copy-on-write append is refused. */
	kv_seq_release(&p, &b);
	assert_int_equal(0, kv_seq_fork(&p, &a, &b));
	assert_int_equal(-EINVAL, kv_seq_append(&p, &b, toks, 1, NULL, NULL));
	check_pool(&p);
	kv_seq_fini(&p, &a);
	kv_seq_fini(&p, &b);
	kv_copies_fini(&c);
	kv_pool_fini(&p);
}

static void seq_append_all_or_nothing(void **state)
{
	struct kv_copies c = { 0 };
	struct kv_pool p;
	struct kv_seq a;

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 3));
	assert_int_equal(0, kv_seq_init(&a, 4));
	assert_int_equal(0, kv_seq_start(&p, &a, toks, 9, NULL, &c, NULL));
	assert_int_equal(-ENOSPC, kv_seq_append(&p, &a, toks, 8, &c, NULL));
	assert_int_equal(9, a.nr_tokens);
	assert_int_equal(3, a.nr_blocks);
	assert_int_equal(0, kv_seq_append(&p, &a, toks, 3, &c, NULL));
	assert_int_equal(12, a.nr_tokens);
	check_pool(&p);
	kv_seq_fini(&p, &a);
	kv_copies_fini(&c);
	kv_pool_fini(&p);
}

/* The lowest run of @n free blocks in a plain bool array, or UINT32_MAX. */
static uint32_t model_run(const bool *f, uint32_t nr, uint32_t n)
{
	uint32_t b, run = 0;

	for (b = 0; b < nr; b++) {
		run = f[b] ? run + 1 : 0;
		if (run == n)
			return b + 1 - n;
	}
	return UINT32_MAX;
}

/*
 * The free index against a model: random runs marked used and free, runs
 * of every length found (across words and subtrees), lowest-first takes,
 * the longest run; sizes that are and are not multiples of 64.
 */
static void free_index_model(void **state)
{
	static const uint32_t sizes[] = { 1, 63, 64, 65, 200, 4096 + 7 };
	uint32_t si, round, b;

	(void)state;
	srand(4321);
	for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint32_t nr = sizes[si], longest;
		bool *m = calloc(nr, sizeof(*m));
		uint32_t *out = calloc(nr, sizeof(*out));
		struct kv_free f;

		assert_non_null(m);
		assert_non_null(out);
		assert_int_equal(0, kv_free_init(&f, nr));
		for (b = 0; b < nr; b++)
			m[b] = true;
		for (round = 0; round < 3000; round++) {
			uint32_t n = 1 + rand() % (rand() % 4 ? 8 : 200), start, i, nfree = 0;
			int op = rand() % 3;

			start = model_run(m, nr, n);
			assert_int_equal(start, kv_free_find_run(&f, n));
			if (op == 0 && start != UINT32_MAX) {
				kv_free_mark(&f, start, n, false);
				for (i = 0; i < n; i++)
					m[start + i] = false;
			} else if (op == 1) {
				/* Free a random used run (as far as it stays used). */
				uint32_t at = rand() % nr, len = 0;

				while (at + len < nr && len < n && !m[at + len])
					len++;
				kv_free_mark(&f, at, len, true);
				for (i = 0; i < len; i++)
					m[at + i] = true;
			} else {
				for (b = 0; b < nr; b++)
					nfree += m[b];
				if (nfree >= n) {
					kv_free_take_lowest(&f, n, out);
					for (i = 0, b = 0; i < n; b++) {
						if (!m[b])
							continue;
						assert_int_equal(b, out[i]);
						m[b] = false;
						i++;
					}
				}
			}
			for (b = 0, longest = 0; b < nr; b++)
				assert_int_equal(m[b], kv_free_test(&f, b));
			for (b = 1; b <= nr && model_run(m, nr, b) != UINT32_MAX; b++)
				longest = b;
			assert_int_equal(longest, kv_free_longest(&f));
		}
		kv_free_fini(&f);
		free(m);
		free(out);
	}
}

/* Keys chain: same prefix and extra keys, same key; anything else differs. */
static void key_chain(void **state)
{
	int32_t t[4] = { 1, 2, 3, 4 }, u[4] = { 1, 2, 3, 5 };
	struct kv_key a, b, c, d, e;

	(void)state;
	assert_int_equal(0, kv_key_block(NULL, t, 4, NULL, 0, &a));
	assert_int_equal(0, kv_key_block(NULL, t, 4, NULL, 0, &b));
	assert_true(kv_key_eq(&a, &b));
	assert_false(kv_key_is_zero(&a));
	assert_int_equal(0, kv_key_block(NULL, u, 4, NULL, 0, &c));
	assert_false(kv_key_eq(&a, &c));
	assert_int_equal(0, kv_key_block(&a, t, 4, NULL, 0, &d));
	assert_false(kv_key_eq(&a, &d));
	assert_int_equal(0, kv_key_block(NULL, t, 4, "lora-7", 6, &e));
	assert_false(kv_key_eq(&a, &e));
	/* A zero parent is not "no parent". */
	assert_int_equal(0, kv_key_block(&(struct kv_key){ 0 }, t, 4, NULL, 0, &b));
	assert_false(kv_key_eq(&a, &b));
}

/* Extra keys separate prefixes: another salt shares nothing. */
static void seq_extra_keys(void **state)
{
	struct kv_copies c = { 0 };
	struct kv_pool p;
	struct kv_seq a, b, d;
	uint64_t cached;

	(void)state;
	assert_int_equal(0, kv_pool_init(&p, 16));
	assert_int_equal(0, kv_seq_init(&a, 4));
	assert_int_equal(0, kv_seq_init(&b, 4));
	assert_int_equal(0, kv_seq_init(&d, 4));
	assert_int_equal(0, kv_seq_set_extra(&a, "tenant-a", 8));
	assert_int_equal(0, kv_seq_set_extra(&b, "tenant-b", 8));
	assert_int_equal(0, kv_seq_set_extra(&d, "tenant-a", 8));
	assert_int_equal(0, kv_seq_start(&p, &a, toks, 8, &cached, &c, NULL));
	assert_int_equal(0, kv_seq_start(&p, &b, toks, 8, &cached, &c, NULL));
	assert_int_equal(0, cached);
	assert_int_equal(0, kv_seq_start(&p, &d, toks, 8, &cached, &c, NULL));
	assert_int_equal(8, cached);
	assert_int_equal(-EINVAL, kv_seq_set_extra(&d, "x", 1));	/* not empty */
	kv_seq_fini(&p, &a);
	kv_seq_fini(&p, &b);
	kv_seq_fini(&p, &d);
	kv_copies_fini(&c);
	check_pool(&p);
	kv_pool_fini(&p);
}

static void coalesce_runs(void **state)
{
	struct kv_copy c[] = {
		{ 12, 2 }, { 10, 0 }, { 11, 1 }, { 13, 3 },	/* one run of 4 */
		{ 20, 9 }, { 21, 5 },				/* dst breaks: 2 runs */
		{ 30, 10 }, { 31, 11 }, { 32, 12 },		/* capped at 2 */
	};
	struct kv_run r[9];
	uint32_t n = kv_coalesce(c, 9, 2, r);

	(void)state;
	assert_int_equal(6, n);
	assert_int_equal(10, r[0].src);
	assert_int_equal(0, r[0].dst);
	assert_int_equal(2, r[0].count);
	assert_int_equal(12, r[1].src);
	assert_int_equal(2, r[1].count);
	assert_int_equal(1, r[2].count);
	assert_int_equal(1, r[3].count);
	assert_int_equal(30, r[4].src);
	assert_int_equal(2, r[4].count);
	assert_int_equal(32, r[5].src);
	n = kv_coalesce(c, 9, 64, r);
	assert_int_equal(4, n);
	assert_int_equal(4, r[0].count);
	assert_int_equal(3, r[3].count);
	assert_int_equal(0, kv_coalesce(c, 0, 64, r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_contiguous_then_scattered),
		cmocka_unit_test(pool_all_or_nothing),
		cmocka_unit_test(pool_cache_and_lru_eviction),
		cmocka_unit_test(pool_randomised),
		cmocka_unit_test_setup(seq_prefix_sharing, setup_tokens),
		cmocka_unit_test_setup(seq_fork_copy_on_write, setup_tokens),
		cmocka_unit_test_setup(seq_append_all_or_nothing, setup_tokens),
		cmocka_unit_test(coalesce_runs),
		cmocka_unit_test(free_index_model),
		cmocka_unit_test(key_chain),
		cmocka_unit_test_setup(seq_extra_keys, setup_tokens),
	};

	return cmocka_run_group_tests_name("kv_unit", tests, NULL, NULL);
}
