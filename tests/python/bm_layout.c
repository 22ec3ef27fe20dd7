// SPDX-License-Identifier: GPL-2.0-only
/*
 * The layout of accel_bm.h's structs as the C compiler sees it, one line
 * per struct ("STRUCT size SIZE align ALIGN") and per member ("STRUCT
 * MEMBER OFFSET SIZE"), for tests/python/test_bm.py to compare with the
 * ctypes mirrors in libaccel/python/kvaccel/_bm_types.py.
 */
#include <stddef.h>
#include <stdio.h>

#include <accel.h>

#define S(T) printf("accel_bm_%s size %zu align %zu\n", #T, sizeof(struct accel_bm_##T), \
		    _Alignof(struct accel_bm_##T))
#define M(T, F) printf("accel_bm_%s %s %zu %zu\n", #T, #F, offsetof(struct accel_bm_##T, F), \
		       sizeof(((struct accel_bm_##T *)0)->F))

int main(void)
{
	S(key); M(key, b);
	S(config); M(config, sz); M(config, block_tokens); M(config, nr_tiers);
	M(config, tier_blocks); M(config, evict); M(config, arc_ghosts); M(config, max_run);
	M(config, flags);
	S(seq_opts); M(seq_opts, sz); M(seq_opts, tier); M(seq_opts, extra_keys);
	M(seq_opts, extra_keys_len);
	M(seq_opts, reserve_tokens);
	S(run); M(run, src_tier); M(run, src_block); M(run, dst_tier); M(run, dst_block);
	M(run, count);
	S(plan); M(plan, sz); M(plan, id); M(plan, runs); M(plan, max_runs); M(plan, nr_runs);
	M(plan, blocks); M(plan, reused);
	S(seq_info); M(seq_info, sz); M(seq_info, tier); M(seq_info, nr_blocks);
	M(seq_info, nr_tokens); M(seq_info, nr_committed); M(seq_info, pad); M(seq_info, plan_id);
	S(tier_stats); M(tier_stats, sz); M(tier_stats, blocks); M(tier_stats, free);
	M(tier_stats, cached); M(tier_stats, used); M(tier_stats, reserved); M(tier_stats, arc_p);
	M(tier_stats, arc_t1); M(tier_stats, arc_t2); M(tier_stats, arc_b1); M(tier_stats, arc_b2);
	M(tier_stats, evictions); M(tier_stats, hits); M(tier_stats, misses);
	printf("ACCEL_BM_TIERS_MAX %d\nACCEL_BM_KEY_BYTES %d\nACCEL_BM_EVICT_LRU %d\n"
	       "ACCEL_BM_EVICT_ARC %d\n", ACCEL_BM_TIERS_MAX, ACCEL_BM_KEY_BYTES,
	       ACCEL_BM_EVICT_LRU, ACCEL_BM_EVICT_ARC);
	return 0;
}
