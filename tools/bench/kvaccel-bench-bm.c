// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvaccel-bench-bm - the block manager (accel_bm_*) at the sizes engines
 * use, natively (no device): a 64-block chain (16 tokens a block) on a
 * tier of 4M blocks, each figure the median over rounds of the mean per
 * call, in ns:
 *   keys        accel_bm_keys() of the chain (64 SHA-256: once per request)
 *   alloc miss  seq_create + seq_start of the chain, nothing cached
 *   free        seq_free of it (blocks not committed: back to free)
 *   alloc hit   seq_create + seq_start, all 64 blocks in the prefix cache
 *   free hit    seq_free of it (blocks back to the LRU)
 *   commit      commit of 64 freshly appended blocks
 *   lookup hit  accel_bm_lookup() of the 64 keys, all cached
 *   lookup miss accel_bm_lookup() of 64 keys, the first not cached
 *   tables      accel_bm_block_tables() of 256 sequences of 64 blocks
 * on an empty tier and on a busy one (2M blocks held by 1024 sequences,
 * 1M cached from 1024 more).
 *
 *   kvaccel-bench-bm [blocks]    (default 4194304)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "accel.h"
#include "bench-common.h"

enum { BT = 16, CHAIN = 64, ITERS = 2000, ROUNDS = 7, TABLES = 256 };

static struct accel_bm *bm;
static int32_t chain_tok[CHAIN * BT];
static struct accel_bm_key keys[CHAIN], miss_keys[CHAIN];

static void die(const char *what, int ret)
{
	fprintf(stderr, "kvaccel-bench-bm: %s: %d\n", what, ret);
	exit(1);
}

static uint32_t start(const int32_t *tok, const struct accel_bm_key *k)
{
	uint32_t s;
	int ret = accel_bm_seq_create(bm, NULL, &s);

	if (!ret)
		ret = accel_bm_seq_start(bm, s, tok, CHAIN * BT, k, NULL);
	if (ret)
		die("start", ret);
	return s;
}

typedef void (*step_fn)(int phase);

static uint32_t cur[ITERS];

static void s_keys(int i)
{
	struct accel_bm_key k[CHAIN];

	if (accel_bm_keys(bm, NULL, chain_tok, CHAIN * BT, NULL, 0, k) != CHAIN)
		die("keys", -1);
	(void)i;
}

static void s_alloc_miss(int i)
{
	cur[i] = start(chain_tok, miss_keys);
}

static void s_alloc_hit(int i)
{
	cur[i] = start(chain_tok, keys);
}

static void s_free(int i)
{
	int ret = accel_bm_seq_free(bm, cur[i]);

	if (ret)
		die("free", ret);
}

static void s_commit(int i)
{
	int ret = accel_bm_commit(bm, cur[i], CHAIN);

	if (ret != CHAIN)
		die("commit", ret);
}

static void s_lookup_hit(int i)
{
	uint32_t hits[1];

	accel_bm_lookup(bm, keys, CHAIN, hits);
	if (hits[0] != CHAIN)
		die("lookup hit", (int)hits[0]);
	(void)i;
}

static void s_lookup_miss(int i)
{
	uint32_t hits[1];

	accel_bm_lookup(bm, miss_keys, CHAIN, hits);
	if (hits[0])
		die("lookup miss", (int)hits[0]);
	(void)i;
}

static uint32_t tab_seqs[TABLES], tab_off[TABLES + 1], *tab_ids;

static void s_tables(int i)
{
	int ret = accel_bm_block_tables(bm, tab_seqs, TABLES, tab_off, tab_ids, TABLES * CHAIN,
					NULL);

	if (ret != TABLES * CHAIN)
		die("tables", ret);
	(void)i;
}

/* The median over rounds of the mean of @fn; @undo (untimed) after each round. */
static double measure(step_fn fn, step_fn undo, int iters)
{
	double t[ROUNDS];
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		double t0 = bench_now();

		for (i = 0; i < iters; i++)
			fn(i);
		t[r] = (bench_now() - t0) / iters * 1e9;
		for (i = 0; undo && i < iters; i++)
			undo(i);
	}
	return bench_median(t, ROUNDS);
}

/* Time @fn, with @pre before each round (untimed). */
static double measure_after(step_fn pre, step_fn fn, int iters)
{
	double t[ROUNDS];
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		double t0;

		for (i = 0; i < iters; i++)
			pre(i);
		t0 = bench_now();
		for (i = 0; i < iters; i++)
			fn(i);
		t[r] = (bench_now() - t0) / iters * 1e9;
	}
	return bench_median(t, ROUNDS);
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Commit of 64 appended blocks, each chain its own keys (nothing shared). */
static struct accel_bm_key *ckeys;

static double measure_commit(void)
{
	double t[ROUNDS];
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		double t0;

		for (i = 0; i < ITERS; i++)
			cur[i] = start(chain_tok, ckeys + ((size_t)r * ITERS + i) * CHAIN);
		t0 = bench_now();
		for (i = 0; i < ITERS; i++)
			s_commit(i);
		t[r] = (bench_now() - t0) / ITERS * 1e9;
		for (i = 0; i < ITERS; i++)
			s_free(i);
	}
	return bench_median(t, ROUNDS);
}

/*
 * 2048 sequences: 1024 of blocks/2048 blocks held, 1024 of half that
 * committed and freed (cached): half the tier held, a quarter cached.
 */
static void fill(uint32_t blocks)
{
	uint32_t per = blocks / 2048, nseq = 2048, s, i, id;
	int32_t *tok = malloc((size_t)per * 3 / 2 * BT * sizeof(*tok));
	int ret;

	if (!tok)
		die("fill", -ENOMEM);
	for (s = 0; s < nseq; s++) {
		/* Held: `per` blocks; then a cached chain of per / 2 freed. */
		uint32_t n = s & 1 ? per / 2 : per;

		for (i = 0; i < n * BT; i++)
			tok[i] = (int32_t)(s * 7919 + i);
		ret = accel_bm_seq_create(bm, NULL, &id);
		if (!ret)
			ret = accel_bm_seq_start(bm, id, tok, (uint64_t)n * BT, NULL, NULL);
		if (!ret && (s & 1))
			ret = accel_bm_commit(bm, id, n) == (int)n ? accel_bm_seq_free(bm, id) : -1;
		if (ret)
			die("fill", ret);
	}
	free(tok);
}

static void row(const char *shape, const char *what, double ns)
{
	printf("%-8s %-12s %10.0f ns%s\n", shape, what, ns, ns >= 5000 ? "   (over 5 us)" : "");
}

int main(int argc, char **argv)
{
	uint32_t blocks = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 4u << 20, i;
	static const char *const shapes[] = { "empty", "busy" };

	for (i = 0; i < CHAIN * BT; i++)
		chain_tok[i] = (int32_t)(1000003 + i);
	tab_ids = malloc(TABLES * CHAIN * sizeof(*tab_ids));
	if (!tab_ids)
		die("malloc", -ENOMEM);
	ckeys = malloc((size_t)ROUNDS * ITERS * CHAIN * sizeof(*ckeys));
	if (!ckeys)
		die("malloc", -ENOMEM);
	/* Any distinct, well-spread chains will do: given keys are trusted. */
	for (size_t k = 0; k < (size_t)ROUNDS * ITERS * CHAIN; k++)
		for (int w = 0; w < 4; w++) {
			uint64_t x = splitmix(k * 4 + w);

			memcpy(ckeys[k].b + 8 * w, &x, sizeof(x));
		}
	printf("# block manager: one tier of %u blocks, %d-block chain, %d tokens a block\n",
	       blocks, CHAIN, BT);
	printf("# median of %d rounds of %d calls, ns per call\n", ROUNDS, ITERS);
	for (int sh = 0; sh < 2; sh++) {
		ACCEL_OPTS(accel_bm_config, cfg, .block_tokens = BT, .nr_tiers = 1,
			   .tier_blocks = &blocks);
		uint32_t s;

		bm = accel_bm_create(&cfg);
		if (!bm)
			die("create", -errno);
		if (sh)
			fill(blocks);
		if (accel_bm_keys(bm, NULL, chain_tok, CHAIN * BT, NULL, 0, keys) != CHAIN)
			die("keys", -1);
		{
			int32_t t[CHAIN * BT];

			for (i = 0; i < CHAIN * BT; i++)
				t[i] = -(int32_t)i - 1;
			accel_bm_keys(bm, NULL, t, CHAIN * BT, NULL, 0, miss_keys);
		}
		row(shapes[sh], "keys", measure(s_keys, NULL, ITERS / 10));
		/* miss_keys are never committed: every start allocates 64 fresh blocks. */
		row(shapes[sh], "alloc miss", measure(s_alloc_miss, s_free, ITERS));
		row(shapes[sh], "free", measure_after(s_alloc_miss, s_free, ITERS));
		row(shapes[sh], "commit", measure_commit());
		s = start(chain_tok, keys);
		if (accel_bm_commit(bm, s, CHAIN) != CHAIN || accel_bm_seq_free(bm, s))
			die("publish", -1);
		row(shapes[sh], "alloc hit", measure(s_alloc_hit, s_free, ITERS));
		row(shapes[sh], "free hit", measure_after(s_alloc_hit, s_free, ITERS));
		row(shapes[sh], "lookup hit", measure(s_lookup_hit, NULL, ITERS));
		row(shapes[sh], "lookup miss", measure(s_lookup_miss, NULL, ITERS));
		for (i = 0; i < TABLES; i++)
			tab_seqs[i] = start(chain_tok, miss_keys);
		row(shapes[sh], "tables", measure(s_tables, NULL, ITERS / 10));
		accel_bm_destroy(bm);
	}
	free(tab_ids);
	free(ckeys);
	return 0;
}
