// SPDX-License-Identifier: GPL-2.0-only
/*
 * The layout of the structs of accel.h (devices, engines), accel_mover.h,
 * accel_offload.h, accel_moe_plan.h and accel_moe.h as the C compiler sees it, one line per struct
 * ("STRUCT size SIZE align ALIGN") and per member ("STRUCT MEMBER OFFSET
 * SIZE"), then constants ("NAME VALUE"), for tests/python/test_layout.py
 * to compare with the ctypes mirrors in libaccel/python/kvaccel/_*_types.py.
 */
#include <stddef.h>
#include <stdio.h>

#include <accel.h>
#include <accel_moe.h>

#define S(T) printf("%s size %zu align %zu\n", #T, sizeof(struct T), _Alignof(struct T))
#define M(T, F) printf("%s %s %zu %zu\n", #T, #F, offsetof(struct T, F), \
		       sizeof(((struct T *)0)->F))
#define C(N) printf("%s %lld\n", #N, (long long)(N))

int main(void)
{
	S(accel_device_info); M(accel_device_info, sz); M(accel_device_info, path);
	M(accel_device_info, abi_major); M(accel_device_info, abi_minor);
	M(accel_device_info, caps); M(accel_device_info, block_sizes);
	M(accel_device_info, limit); M(accel_device_info, usage);
	M(accel_device_info, process_usage); M(accel_device_info, process_quota);
	S(accel_handoff); M(accel_handoff, from); M(accel_handoff, tag); M(accel_handoff, count);
	M(accel_handoff, fds); M(accel_handoff, kinds); M(accel_handoff, sizes);
	S(accel_handoff_sender); M(accel_handoff_sender, sz); M(accel_handoff_sender, incarnation);
	M(accel_handoff_sender, uid); M(accel_handoff_sender, pid);
	S(accel_engine_ops); M(accel_engine_ops, release); M(accel_engine_ops, receive);
	M(accel_engine_ops, handoff_done);

	S(accel_tier_opts); M(accel_tier_opts, sz); M(accel_tier_opts, block_bytes);
	M(accel_tier_opts, blocks); M(accel_tier_opts, node); M(accel_tier_opts, flags);
	M(accel_tier_opts, layers);
	S(accel_tier_info); M(accel_tier_info, sz); M(accel_tier_info, kind);
	M(accel_tier_info, blocks); M(accel_tier_info, block_bytes);
	M(accel_tier_info, region_block_bytes); M(accel_tier_info, pad);
	M(accel_tier_info, layers); M(accel_tier_info, device); M(accel_tier_info, layout);
	M(accel_tier_info, pad2); M(accel_tier_info, block_stride); M(accel_tier_info, flags);
	M(accel_tier_info, pad3);
	S(accel_tier_cuda_opts); M(accel_tier_cuda_opts, sz); M(accel_tier_cuda_opts, device);
	M(accel_tier_cuda_opts, layout); M(accel_tier_cuda_opts, block_bytes);
	M(accel_tier_cuda_opts, blocks); M(accel_tier_cuda_opts, layers);
	M(accel_tier_cuda_opts, block_stride); M(accel_tier_cuda_opts, base);
	M(accel_tier_cuda_opts, layer_base); M(accel_tier_cuda_opts, nr_layer_base);
	M(accel_tier_cuda_opts, flags);
	S(accel_mover_opts); M(accel_mover_opts, sz); M(accel_mover_opts, flags);
	M(accel_mover_opts, pad);
	S(accel_mover_submit_opts); M(accel_mover_submit_opts, sz);
	M(accel_mover_submit_opts, user_data); M(accel_mover_submit_opts, flags);
	M(accel_mover_submit_opts, pad); M(accel_mover_submit_opts, layer_first);
	M(accel_mover_submit_opts, layer_count); M(accel_mover_submit_opts, wait_event);
	M(accel_mover_submit_opts, record_event);
	S(accel_mover_done); M(accel_mover_done, job_id); M(accel_mover_done, user_data);
	M(accel_mover_done, status); M(accel_mover_done, pad);

	S(accel_offload_opts); M(accel_offload_opts, sz); M(accel_offload_opts, blocks);
	M(accel_offload_opts, evict); M(accel_offload_opts, arc_ghosts);
	M(accel_offload_opts, flags);
	S(accel_offload_stats); M(accel_offload_stats, sz); M(accel_offload_stats, blocks);
	M(accel_offload_stats, free); M(accel_offload_stats, storing);
	M(accel_offload_stats, ready); M(accel_offload_stats, pinned);
	M(accel_offload_stats, pad); M(accel_offload_stats, evictions);

	C(ACCEL_PATH_MAX); C(ACCEL_NODE_ANY); C(ACCEL_ENGINE_PRIORITY_MAX); C(ACCEL_HANDOFF_MAX);
	C(ACCEL_HANDOFF_REGION); C(ACCEL_HANDOFF_SPACE); C(ACCEL_HANDOFF_MEMFD);
	C(ACCEL_TIER_HOST); C(ACCEL_TIER_MEMFD); C(ACCEL_TIER_ON_NODE); C(ACCEL_TIER_WINDOW);
	C(ACCEL_TIER_BLOCK_MAX);
	C(ACCEL_TIER_CUDA); C(ACCEL_TIER_CUDA_REGISTERED); C(ACCEL_TIER_LAYOUT_BLOCKS);
	C(ACCEL_TIER_LAYOUT_LAYERS); C(ACCEL_MOVER_LAYERS); C(ACCEL_MOVER_WAIT_EVENT);
	C(ACCEL_MOVER_RECORD_EVENT);
	C(ACCEL_OFFLOAD_NO_BLOCK);

	S(accel_moe_topo); M(accel_moe_topo, sz); M(accel_moe_topo, layers);
	M(accel_moe_topo, experts); M(accel_moe_topo, slots); M(accel_moe_topo, devices);
	M(accel_moe_topo, nodes); M(accel_moe_topo, groups);
	S(accel_eplb_opts); M(accel_eplb_opts, sz); M(accel_eplb_opts, policy);
	M(accel_eplb_opts, flags); M(accel_eplb_opts, old_phy2log);
	S(accel_moe_cost); M(accel_moe_cost, sz); M(accel_moe_cost, imbalance);
	M(accel_moe_cost, max_imbalance); M(accel_moe_cost, max_load);
	M(accel_moe_cost, mean_load); M(accel_moe_cost, moves); M(accel_moe_cost, traffic);
	M(accel_moe_cost, cross_device); M(accel_moe_cost, cross_node);
	S(accel_moe_move); M(accel_moe_move, layer); M(accel_moe_move, slot);
	M(accel_moe_move, old_expert); M(accel_moe_move, new_expert);
	M(accel_moe_move, src_slot); M(accel_moe_move, kind); M(accel_moe_move, round);
	S(accel_moe_plan_opts); M(accel_moe_plan_opts, sz); M(accel_moe_plan_opts, balance_slack);
	M(accel_moe_plan_opts, move_tokens); M(accel_moe_plan_opts, max_moves);
	M(accel_moe_plan_opts, flags);
	C(ACCEL_MOE_STATS_COACT); C(ACCEL_MOE_PLAN_NO_TRAFFIC); C(ACCEL_EPLB_AUTO);
	C(ACCEL_EPLB_HIERARCHICAL); C(ACCEL_EPLB_GLOBAL); C(ACCEL_MOE_MAX_LAYERS);
	C(ACCEL_MOE_MAX_EXPERTS); C(ACCEL_MOE_MOVE_DEVICE); C(ACCEL_MOE_MOVE_NODE);
	C(ACCEL_MOE_MOVE_REMOTE); C(ACCEL_MOE_MOVE_STORE);

	S(accel_moe_store_opts); M(accel_moe_store_opts, sz); M(accel_moe_store_opts, layers);
	M(accel_moe_store_opts, experts); M(accel_moe_store_opts, devices);
	M(accel_moe_store_opts, slots_per_device); M(accel_moe_store_opts, expert_bytes);
	M(accel_moe_store_opts, block_size); M(accel_moe_store_opts, device_node);
	M(accel_moe_store_opts, max_inflight); M(accel_moe_store_opts, flags);
	printf("accel_moe_store_opts from_ %zu %zu\n", offsetof(struct accel_moe_store_opts, from),
	       sizeof(((struct accel_moe_store_opts *)0)->from));
	M(accel_moe_store_opts, nr_from); M(accel_moe_store_opts, backend);
	M(accel_moe_store_opts, device_gpu); M(accel_moe_store_opts, from_store);
	S(accel_moe_store_stats); M(accel_moe_store_stats, sz); M(accel_moe_store_stats, layers);
	M(accel_moe_store_stats, experts); M(accel_moe_store_stats, devices);
	M(accel_moe_store_stats, num_slots); M(accel_moe_store_stats, block_size);
	M(accel_moe_store_stats, blocks_per_expert); M(accel_moe_store_stats, slot_stride);
	M(accel_moe_store_stats, version); M(accel_moe_store_stats, steps_in_flight);
	M(accel_moe_store_stats, rebalancing); M(accel_moe_store_stats, retired_pending);
	M(accel_moe_store_stats, rebalances); M(accel_moe_store_stats, waves);
	M(accel_moe_store_stats, rebinds); M(accel_moe_store_stats, copies);
	M(accel_moe_store_stats, copy_bytes); M(accel_moe_store_stats, reclaims);
	M(accel_moe_store_stats, over_k); M(accel_moe_store_stats, max_inflight_seen);
	M(accel_moe_store_stats, last_error); M(accel_moe_store_stats, live_copies);
	M(accel_moe_store_stats, peak_copies); M(accel_moe_store_stats, adopted);
	M(accel_moe_store_stats, fetched); M(accel_moe_store_stats, exported);
	M(accel_moe_store_stats, shared_copies);
	C(ACCEL_MOE_STORE_MAX_DEVICES); C(ACCEL_MOE_STORE_THREAD); C(ACCEL_MOE_STORE_HOST);
	C(ACCEL_MOE_STORE_CUDA);
	return 0;
}
