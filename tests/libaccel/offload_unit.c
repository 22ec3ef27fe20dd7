// SPDX-License-Identifier: GPL-2.0-only
/*
 * Native tests (cmocka, ASan/UBSan) of the offload manager: each call and
 * its argument checks, eviction order and protection (blocks being stored
 * or loaded, and the keys of the store itself, are never evicted), ARC, a
 * seeded model-based run checking invariants after every step (seed in
 * OFFLOAD_SEED, printed), and a store and load of real bytes between two
 * memfd tiers through the data mover.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "accel.h"

static struct accel_bm_key key(uint32_t i)
{
	struct accel_bm_key k;

	memset(&k, 0, sizeof(k));
	k.b[0] = 0xa5;
	memcpy(k.b + 4, &i, sizeof(i));
	k.b[31] = (uint8_t)(i * 7 + 1);
	return k;
}

static void keys(struct accel_bm_key *v, uint32_t first, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		v[i] = key(first + i);
}

static struct accel_offload *mk(uint32_t blocks, uint32_t evict)
{
	ACCEL_OPTS(accel_offload_opts, o, .blocks = blocks, .evict = evict);
	struct accel_offload *m = accel_offload_create(&o);

	assert_non_null(m);
	return m;
}

static struct accel_offload_stats stats(struct accel_offload *m)
{
	ACCEL_OPTS(accel_offload_stats, st);

	assert_int_equal(accel_offload_stats(m, &st), 0);
	return st;
}

/* Store keys [first, first + n) in full (all new). */
static void store(struct accel_offload *m, uint32_t first, uint32_t n)
{
	struct accel_bm_key k[64], ev[64];
	uint32_t b[64], ne;

	keys(k, first, n);
	assert_int_equal(accel_offload_prepare_store(m, k, n, b, ev, &ne), (int)n);
	assert_int_equal(accel_offload_complete_store(m, k, n, 1), 0);
}

static void test_create(void **state)
{
	ACCEL_OPTS(accel_offload_opts, o, .blocks = 8);
	struct accel_offload *m;
	struct accel_offload_stats st;

	(void)state;
	errno = 0;
	assert_null(accel_offload_create(NULL));
	assert_int_equal(errno, EINVAL);
	o.blocks = 0;
	assert_null(accel_offload_create(&o));
	assert_int_equal(errno, EINVAL);
	o.blocks = 8;
	o.evict = 2;
	assert_null(accel_offload_create(&o));
	assert_int_equal(errno, EINVAL);
	o.evict = 0;
	o.flags = 1;
	assert_null(accel_offload_create(&o));
	assert_int_equal(errno, EINVAL);
	o.flags = 0;
	o.arc_ghosts = 9;
	assert_null(accel_offload_create(&o));
	assert_int_equal(errno, EINVAL);
	o.arc_ghosts = 0;
	o.sz = 1;
	assert_null(accel_offload_create(&o));
	assert_int_equal(errno, EINVAL);
	{
		struct { struct accel_offload_opts o; uint64_t more; } big = { .o = o };

		big.o.sz = sizeof(big);
		big.more = 1;
		assert_null(accel_offload_create(&big.o));
		assert_int_equal(errno, E2BIG);
		big.more = 0;
		m = accel_offload_create(&big.o);
		assert_non_null(m);
		accel_offload_destroy(m);
	}
	o.sz = sizeof(o);
	m = accel_offload_create(&o);
	assert_non_null(m);
	st = stats(m);
	assert_int_equal(st.blocks, 8);
	assert_int_equal(st.free, 8);
	assert_int_equal(st.storing + st.ready + st.pinned, 0);
	assert_int_equal(accel_offload_stats(m, NULL), -EINVAL);
	accel_offload_destroy(m);
	accel_offload_destroy(NULL);
}

static void test_args(void **state)
{
	struct accel_offload *m = mk(4, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key k[2], ev[2], zero;
	uint32_t b[2], ne = 7;

	(void)state;
	keys(k, 0, 2);
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(accel_offload_lookup(NULL, k, 2), -EINVAL);
	assert_int_equal(accel_offload_lookup(m, NULL, 2), -EINVAL);
	assert_int_equal(accel_offload_lookup(m, NULL, 0), 0);
	assert_int_equal(accel_offload_prepare_store(m, k, 2, NULL, ev, &ne), -EINVAL);
	assert_int_equal(accel_offload_prepare_store(m, k, 2, b, NULL, &ne), -EINVAL);
	assert_int_equal(accel_offload_prepare_store(m, k, 2, b, ev, NULL), -EINVAL);
	assert_int_equal(accel_offload_prepare_store(m, &zero, 1, b, ev, &ne), -EINVAL);
	assert_int_equal(accel_offload_prepare_store(m, k, 0, NULL, NULL, &ne), 0);
	assert_int_equal(ne, 0);
	assert_int_equal(accel_offload_complete_store(NULL, k, 1, 1), -EINVAL);
	assert_int_equal(accel_offload_prepare_load(m, k, 1, NULL), -EINVAL);
	assert_int_equal(accel_offload_complete_load(m, NULL, 1), -EINVAL);
	assert_int_equal(accel_offload_touch(NULL, k, 1), -EINVAL);
	assert_int_equal(stats(m).free, 4);
	accel_offload_destroy(m);
}

static void test_store_lookup(void **state)
{
	struct accel_offload *m = mk(8, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key k[6], ev[6];
	uint32_t b[6], ne, i;
	struct accel_offload_stats st;

	(void)state;
	keys(k, 0, 6);
	assert_int_equal(accel_offload_lookup(m, k, 6), 0);
	assert_int_equal(accel_offload_prepare_store(m, k, 4, b, ev, &ne), 4);
	assert_int_equal(ne, 0);
	for (i = 0; i < 4; i++) {
		assert_true(b[i] < 8);
		if (i)
			assert_int_not_equal(b[i], b[i - 1]);
	}
	/* Being stored: not visible, not loadable, not allocated again. */
	assert_int_equal(accel_offload_lookup(m, k, 4), 0);
	assert_int_equal(accel_offload_prepare_load(m, k, 1, b), -ENOENT);
	assert_int_equal(accel_offload_prepare_store(m, k, 6, b, ev, &ne), 2);
	for (i = 0; i < 4; i++)
		assert_int_equal(b[i], ACCEL_OFFLOAD_NO_BLOCK);
	assert_true(b[4] < 8 && b[5] < 8);
	st = stats(m);
	assert_int_equal(st.storing, 6);
	assert_int_equal(st.free, 2);
	assert_int_equal(accel_offload_complete_store(m, k, 4, 1), 0);
	assert_int_equal(accel_offload_lookup(m, k, 6), 4);
	/* Failed: freed, not stored. */
	assert_int_equal(accel_offload_complete_store(m, k + 4, 2, 0), 0);
	assert_int_equal(accel_offload_lookup(m, k, 6), 4);
	assert_int_equal(accel_offload_lookup(m, k + 4, 1), 0);
	st = stats(m);
	assert_int_equal(st.storing, 0);
	assert_int_equal(st.ready, 4);
	assert_int_equal(st.free, 4);
	/* Completing again, or keys never prepared: skipped. */
	assert_int_equal(accel_offload_complete_store(m, k, 6, 0), 0);
	assert_int_equal(accel_offload_lookup(m, k, 6), 4);
	/* Lookup stops at the first miss. */
	assert_int_equal(accel_offload_lookup(m, k + 1, 5), 3);
	/* A repeated key is allocated once: 5, 2, 3, 4, 5 allocates 5 and 4. */
	k[1] = k[5];
	assert_int_equal(accel_offload_prepare_store(m, k + 1, 5, b, ev, &ne), 2);
	assert_true(b[0] < 8 && b[3] < 8);
	assert_int_equal(b[1], ACCEL_OFFLOAD_NO_BLOCK);
	assert_int_equal(b[4], ACCEL_OFFLOAD_NO_BLOCK);
	assert_int_equal(stats(m).free, 2);
	accel_offload_destroy(m);
}

static void test_evict_lru(void **state)
{
	struct accel_offload *m = mk(4, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key k[8], ev[8], want;
	uint32_t b[8], ne;

	(void)state;
	store(m, 0, 4);	/* 0 is the most recent (a chain's head), 3 the oldest */
	keys(k, 4, 1);
	assert_int_equal(accel_offload_prepare_store(m, k, 1, b, ev, &ne), 1);
	assert_int_equal(ne, 1);
	want = key(3);
	assert_memory_equal(&ev[0], &want, sizeof(want));
	assert_int_equal(stats(m).evictions, 1);
	assert_int_equal(accel_offload_complete_store(m, k, 1, 1), 0);
	/* Touch 2: then 1 is the oldest. */
	keys(k, 2, 1);
	assert_int_equal(accel_offload_touch(m, k, 1), 0);
	keys(k, 5, 1);
	assert_int_equal(accel_offload_prepare_store(m, k, 1, b, ev, &ne), 1);
	want = key(1);
	assert_int_equal(ne, 1);
	assert_memory_equal(&ev[0], &want, sizeof(want));
	/*
	 * Store 0, 2, 4 (stored) with 6, 7: room for 2 is needed but the
	 * only evictable blocks are keys of the store itself, and 5 is being
	 * stored: -ENOSPC, nothing changed.
	 */
	k[0] = key(0);
	k[1] = key(2);
	k[2] = key(4);
	k[3] = key(6);
	k[4] = key(7);
	assert_int_equal(accel_offload_prepare_store(m, k, 5, b, ev, &ne), -ENOSPC);
	assert_int_equal(ne, 0);
	assert_int_equal(accel_offload_lookup(m, k, 3), 3);
	assert_int_equal(stats(m).storing, 1);
	/* With one new key it fits: 5 done, then an outsider is evicted. */
	assert_int_equal(accel_offload_complete_store(m, (struct accel_bm_key[]){ key(5) }, 1, 1), 0);
	assert_int_equal(accel_offload_prepare_store(m, k, 4, b, ev, &ne), 1);
	want = key(5);
	assert_int_equal(ne, 1);
	assert_memory_equal(&ev[0], &want, sizeof(want));
	accel_offload_destroy(m);
}

static void test_load_pins(void **state)
{
	struct accel_offload *m = mk(3, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key k[3], ev[3];
	uint32_t b[3], b2[3], ne;
	struct accel_offload_stats st;

	(void)state;
	store(m, 0, 3);
	keys(k, 0, 3);
	assert_int_equal(accel_offload_prepare_load(m, k, 3, b), 0);
	assert_int_equal(accel_offload_prepare_load(m, k, 2, b2), 0);
	assert_int_equal(b2[0], b[0]);
	assert_int_equal(b2[1], b[1]);
	st = stats(m);
	assert_int_equal(st.pinned, 3);
	/* Everything pinned: no room. */
	keys(k, 10, 1);
	assert_int_equal(accel_offload_prepare_store(m, k, 1, b2, ev, &ne), -ENOSPC);
	keys(k, 0, 3);
	assert_int_equal(accel_offload_complete_load(m, k + 2, 1), 0);
	/* 2 is unpinned once, a second time is an error (nothing changes). */
	assert_int_equal(accel_offload_complete_load(m, k, 3), -EINVAL);
	assert_int_equal(stats(m).pinned, 2);
	keys(k, 10, 1);
	assert_int_equal(accel_offload_prepare_store(m, k, 1, b2, ev, &ne), 1);
	assert_int_equal(ne, 1);
	assert_int_equal(b2[0], b[2]);
	keys(k, 0, 3);
	assert_int_equal(accel_offload_lookup(m, k, 3), 2);
	assert_int_equal(accel_offload_prepare_load(m, k, 3, b2), -ENOENT);
	assert_int_equal(accel_offload_complete_load(m, k, 2), 0);
	assert_int_equal(stats(m).pinned, 2);	/* 0 and 1 were pinned twice */
	assert_int_equal(accel_offload_complete_load(m, k, 2), 0);
	st = stats(m);
	assert_int_equal(st.pinned, 0);
	assert_int_equal(st.ready, 2);
	assert_int_equal(st.storing, 1);
	assert_int_equal(accel_offload_complete_load(m, k, 1), -EINVAL);
	accel_offload_destroy(m);
}

static void test_arc(void **state)
{
	struct accel_offload *m = mk(4, ACCEL_BM_EVICT_ARC);
	struct accel_bm_key k[4], ev[4], want;
	uint32_t b[4], ne;

	(void)state;
	store(m, 0, 4);
	/* 3 is the oldest but was hit again (T2): a T1 block goes first. */
	keys(k, 3, 1);
	assert_int_equal(accel_offload_touch(m, k, 1), 0);
	keys(k, 4, 1);
	assert_int_equal(accel_offload_prepare_store(m, k, 1, b, ev, &ne), 1);
	assert_int_equal(ne, 1);
	want = key(2);
	assert_memory_equal(&ev[0], &want, sizeof(want));
	assert_int_equal(accel_offload_complete_store(m, k, 1, 1), 0);
	keys(k, 3, 1);
	assert_int_equal(accel_offload_lookup(m, k, 1), 1);
	assert_int_equal(accel_offload_prepare_load(m, k, 1, b), 0);
	assert_int_equal(accel_offload_complete_load(m, k, 1), 0);
	accel_offload_destroy(m);
}

/* ---- the model ---- */

enum { MK = 48, MB = 12, MN = 8 };
enum mstate { M_NONE, M_STORING, M_READY };

struct model {
	enum mstate st[MK];
	uint32_t pins[MK];
	uint32_t block[MK];
	uint64_t evictions;
};

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static int key_index(const struct accel_bm_key *k)
{
	uint32_t i;

	memcpy(&i, k->b + 4, sizeof(i));
	return i < MK ? (int)i : -1;
}

static void check_model(struct accel_offload *m, const struct model *md)
{
	struct accel_offload_stats st = stats(m);
	uint32_t i, j, storing = 0, ready = 0, pinned = 0;
	struct accel_bm_key k;

	for (i = 0; i < MK; i++) {
		k = key(i);
		assert_int_equal(accel_offload_lookup(m, &k, 1), md->st[i] == M_READY);
		storing += md->st[i] == M_STORING;
		ready += md->st[i] == M_READY;
		pinned += md->pins[i] > 0;
		if (md->st[i] == M_NONE)
			continue;
		assert_true(md->block[i] < MB);
		for (j = 0; j < i; j++)
			if (md->st[j] != M_NONE)
				assert_int_not_equal(md->block[i], md->block[j]);
	}
	assert_int_equal(st.storing, storing);
	assert_int_equal(st.ready, ready);
	assert_int_equal(st.pinned, pinned);
	assert_int_equal(st.free, MB - storing - ready);
	assert_int_equal(st.evictions, md->evictions);
}

/* Distinct random keys. */
static uint32_t pick(struct accel_bm_key *k, uint32_t *idx)
{
	uint32_t n = 1 + rnd(MN), i, j;

	for (i = 0; i < n; i++) {
again:
		idx[i] = rnd(MK);
		for (j = 0; j < i; j++)
			if (idx[j] == idx[i])
				goto again;
		k[i] = key(idx[i]);
	}
	return n;
}

static void model_run(uint32_t evict)
{
	struct accel_offload *m = mk(MB, evict);
	struct model md;
	struct accel_bm_key k[MN], ev[MN];
	uint32_t idx[MN], b[MN], n, i, ne, step, want, room;
	bool in[MK];
	int ret, e;

	memset(&md, 0, sizeof(md));
	for (step = 0; step < 3000; step++) {
		n = pick(k, idx);
		switch (rnd(6)) {
		case 0:
		case 1:	/* store */
			memset(in, 0, sizeof(in));
			want = 0;
			room = 0;
			for (i = 0; i < n; i++) {
				in[idx[i]] = true;
				want += md.st[idx[i]] == M_NONE;
			}
			for (i = 0; i < MK; i++) {
				if (md.st[i] == M_READY && !md.pins[i] && !in[i])
					room++;
			}
			{
				uint32_t used = 0;

				for (i = 0; i < MK; i++)
					used += md.st[i] != M_NONE;
				room += MB - used;
			}
			ret = accel_offload_prepare_store(m, k, n, b, ev, &ne);
			if (want > room) {
				assert_int_equal(ret, -ENOSPC);
				assert_int_equal(ne, 0);
				break;
			}
			assert_int_equal(ret, (int)want);
			for (i = 0; i < ne; i++) {
				e = key_index(&ev[i]);
				assert_true(e >= 0);
				assert_int_equal(md.st[e], M_READY);	/* never storing */
				assert_int_equal(md.pins[e], 0);	/* never pinned */
				assert_false(in[e]);			/* never the store's */
				md.st[e] = M_NONE;
				md.evictions++;
			}
			for (i = 0; i < n; i++) {
				if (md.st[idx[i]] != M_NONE) {
					assert_int_equal(b[i], ACCEL_OFFLOAD_NO_BLOCK);
					continue;
				}
				md.st[idx[i]] = M_STORING;
				md.block[idx[i]] = b[i];
			}
			break;
		case 2:	/* complete a store: all storing keys of the pick */
			ret = rnd(4) != 0;
			assert_int_equal(accel_offload_complete_store(m, k, n, ret), 0);
			for (i = 0; i < n; i++)
				if (md.st[idx[i]] == M_STORING)
					md.st[idx[i]] = ret ? M_READY : M_NONE;
			break;
		case 3:	/* load */
			ret = accel_offload_prepare_load(m, k, n, b);
			want = 1;
			for (i = 0; i < n; i++)
				want &= md.st[idx[i]] == M_READY;
			if (!want) {
				assert_int_equal(ret, -ENOENT);
				break;
			}
			assert_int_equal(ret, 0);
			for (i = 0; i < n; i++) {
				assert_int_equal(b[i], md.block[idx[i]]);
				md.pins[idx[i]]++;
			}
			break;
		case 4:	/* complete a load: the pinned keys of the pick */
			for (i = 0, ne = 0; i < n; i++)
				if (md.pins[idx[i]])
					k[ne++] = key(idx[i]);
			assert_int_equal(accel_offload_complete_load(m, k, ne), 0);
			for (i = 0; i < ne; i++)
				md.pins[key_index(&k[i])]--;
			if (rnd(2)) {
				k[0] = key(idx[0]);
				ret = accel_offload_complete_load(m, k, 1);
				if (md.pins[idx[0]]) {
					assert_int_equal(ret, 0);
					md.pins[idx[0]]--;
				} else {
					assert_int_equal(ret, -EINVAL);
				}
			}
			break;
		default:
			assert_int_equal(accel_offload_touch(m, k, n), 0);
			ret = accel_offload_lookup(m, k, n);
			for (i = 0; i < n && md.st[idx[i]] == M_READY; i++)
				;
			assert_int_equal(ret, (int)i);
			break;
		}
		check_model(m, &md);
	}
	assert_true(md.evictions > 0);
	accel_offload_destroy(m);
}

static uint64_t seed;

static void test_model_lru(void **state)
{
	(void)state;
	rng = seed;
	model_run(ACCEL_BM_EVICT_LRU);
}

static void test_model_arc(void **state)
{
	(void)state;
	rng = seed ^ 0x9e3779b97f4a7c15ull;
	model_run(ACCEL_BM_EVICT_ARC);
}

/* ---- end to end: device tier <-> host tier through the mover ---- */

enum { BB = 8192, DEV = 16, HOST = 6 };

static void fill(struct accel_tier *t, uint32_t b, uint32_t tag)
{
	unsigned char *p = accel_tier_block_addr(t, b);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < BB; i++)
		p[i] = (unsigned char)(tag * 37 + i * 11 + (i >> 9));
}

static bool holds(const struct accel_tier *t, uint32_t b, uint32_t tag)
{
	const unsigned char *p = accel_tier_block_addr(t, b);
	size_t i;

	for (i = 0; i < BB; i++)
		if (p[i] != (unsigned char)(tag * 37 + i * 11 + (i >> 9)))
			return false;
	return true;
}

/* Copy src[i] -> dst[i] of tiers (from, to) as one job; wait for it. */
static void move(struct accel_mover *mv, const struct accel_tier *const tiers[2], uint32_t from,
		 const uint32_t *src, const uint32_t *dst, uint32_t n)
{
	struct accel_bm_run runs[16];
	struct accel_mover_done done;
	uint64_t id;
	uint32_t i, nr = 0;

	for (i = 0; i < n; i++) {
		if (src[i] == ACCEL_OFFLOAD_NO_BLOCK || dst[i] == ACCEL_OFFLOAD_NO_BLOCK)
			continue;
		memset(&runs[nr], 0, sizeof(runs[nr]));
		runs[nr].src_tier = from;
		runs[nr].dst_tier = !from;
		runs[nr].src_block = src[i];
		runs[nr].dst_block = dst[i];
		runs[nr].count = 1;
		nr++;
	}
	assert_int_equal(accel_mover_submit(mv, tiers, 2, runs, nr, NULL, &id), 0);
	assert_int_equal(accel_mover_poll(mv, &done, 1, -1), 1);
	assert_true(done.job_id == id);
	assert_int_equal(done.status, 0);
}

static void test_end_to_end(void **state)
{
	ACCEL_OPTS(accel_tier_opts, to, .block_bytes = BB, .blocks = DEV);
	struct accel_tier *dev = accel_tier_create_memfd(&to), *host;
	const struct accel_tier *tiers[2];
	struct accel_mover *mv = accel_mover_create(NULL);
	struct accel_offload *m = mk(HOST, ACCEL_BM_EVICT_LRU);
	struct accel_bm_key k[8], ev[8];
	uint32_t devb[8], hostb[8], ne, i;
	int ret;

	(void)state;
	to.blocks = HOST;
	host = accel_tier_create_memfd(&to);
	assert_non_null(dev);
	assert_non_null(host);
	assert_non_null(mv);
	tiers[0] = dev;
	tiers[1] = host;
	/* Request A: 4 blocks computed in device blocks 0..3, stored. */
	keys(k, 100, 4);
	for (i = 0; i < 4; i++) {
		devb[i] = i;
		fill(dev, i, 100 + i);
	}
	assert_int_equal(accel_offload_lookup(m, k, 4), 0);
	assert_int_equal(accel_offload_prepare_store(m, k, 4, hostb, ev, &ne), 4);
	move(mv, tiers, 0, devb, hostb, 4);
	assert_int_equal(accel_offload_complete_store(m, k, 4, 1), 0);
	for (i = 0; i < 4; i++)
		assert_true(holds(host, hostb[i], 100 + i));
	/* The device blocks are reused: garbage. */
	for (i = 0; i < DEV; i++)
		fill(dev, i, 999);
	/* Request B shares A's 3-block prefix, then 2 new blocks. */
	keys(k, 100, 3);
	k[3] = key(200);
	k[4] = key(201);
	ret = accel_offload_lookup(m, k, 5);
	assert_int_equal(ret, 3);
	assert_int_equal(accel_offload_prepare_load(m, k, 3, hostb), 0);
	for (i = 0; i < 3; i++)
		devb[i] = 8 + i;
	move(mv, tiers, 1, hostb, devb, 3);
	assert_int_equal(accel_offload_complete_load(m, k, 3), 0);
	for (i = 0; i < 3; i++)
		assert_true(holds(dev, 8 + i, 100 + i));
	/* The new blocks are computed into 11, 12, then stored: one eviction. */
	devb[3] = 11;
	devb[4] = 12;
	fill(dev, 11, 200);
	fill(dev, 12, 201);
	assert_int_equal(accel_offload_prepare_store(m, k, 5, hostb, ev, &ne), 2);
	assert_int_equal(ne, 0);
	assert_int_equal(hostb[0], ACCEL_OFFLOAD_NO_BLOCK);
	move(mv, tiers, 0, devb, hostb, 5);
	assert_int_equal(accel_offload_complete_store(m, k + 3, 2, 1), 0);
	/* A third request evicts A's tail block (103) for one of its own. */
	k[0] = key(300);
	fill(dev, 13, 300);
	devb[0] = 13;
	assert_int_equal(accel_offload_prepare_store(m, k, 1, hostb, ev, &ne), 1);
	assert_int_equal(ne, 1);
	{
		struct accel_bm_key want = key(103);

		assert_memory_equal(&ev[0], &want, sizeof(want));
	}
	move(mv, tiers, 0, devb, hostb, 1);
	assert_int_equal(accel_offload_complete_store(m, k, 1, 1), 0);
	/* Everything still stored reads back. */
	for (i = 0; i < DEV; i++)
		fill(dev, i, 999);
	keys(k, 100, 3);
	k[3] = key(200);
	k[4] = key(201);
	k[5] = key(300);
	assert_int_equal(accel_offload_prepare_load(m, k, 6, hostb), 0);
	for (i = 0; i < 6; i++)
		devb[i] = i;
	move(mv, tiers, 1, hostb, devb, 6);
	assert_int_equal(accel_offload_complete_load(m, k, 6), 0);
	for (i = 0; i < 3; i++)
		assert_true(holds(dev, i, 100 + i));
	assert_true(holds(dev, 3, 200));
	assert_true(holds(dev, 4, 201));
	assert_true(holds(dev, 5, 300));
	k[0] = key(103);
	assert_int_equal(accel_offload_lookup(m, k, 1), 0);
	accel_offload_destroy(m);
	accel_mover_destroy(mv);
	accel_tier_destroy(host);
	accel_tier_destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_store_lookup),
		cmocka_unit_test(test_evict_lru),
		cmocka_unit_test(test_load_pins),
		cmocka_unit_test(test_arc),
		cmocka_unit_test(test_model_lru),
		cmocka_unit_test(test_model_arc),
		cmocka_unit_test(test_end_to_end),
	};
	const char *s = getenv("OFFLOAD_SEED");

	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	if (!seed)
		seed = 1;
	printf("# OFFLOAD_SEED=%llu\n", (unsigned long long)seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
