# SPDX-License-Identifier: MIT
"""ctypes mirrors of accel_moe_plan.h and accel_moe.h (struct for struct,
field for field) and the prototypes of accel_eplb_rebalance, accel_moe_*
(planner, costs, moves, statistics) and accel_moe_store_* (the expert
store). tests/python checks them against the C compiler's layout."""

import ctypes
from ctypes import (POINTER, Structure, c_double, c_float, c_int, c_int32, c_size_t,
                    c_uint32, c_uint64, c_void_p)

STATS_COACT = 1             # ACCEL_MOE_STATS_COACT
PLAN_NO_TRAFFIC = 1         # ACCEL_MOE_PLAN_NO_TRAFFIC
EPLB_AUTO = 0               # ACCEL_EPLB_AUTO
EPLB_HIERARCHICAL = 1       # ACCEL_EPLB_HIERARCHICAL
EPLB_GLOBAL = 2             # ACCEL_EPLB_GLOBAL
MAX_LAYERS = 4096           # ACCEL_MOE_MAX_LAYERS
MAX_EXPERTS = 65536         # ACCEL_MOE_MAX_EXPERTS
MOVE_DEVICE, MOVE_NODE, MOVE_REMOTE, MOVE_STORE = 0, 1, 2, 3   # enum accel_moe_move_kind
STORE_MAX_DEVICES = 64      # ACCEL_MOE_STORE_MAX_DEVICES
STORE_THREAD = 1            # ACCEL_MOE_STORE_THREAD
STORE_HOST = 0              # ACCEL_MOE_STORE_HOST
STORE_CUDA = 1              # ACCEL_MOE_STORE_CUDA


class Topo(Structure):
    _fields_ = [("sz", c_size_t),
                ("layers", c_uint32),
                ("experts", c_uint32),
                ("slots", c_uint32),
                ("devices", c_uint32),
                ("nodes", c_uint32),
                ("groups", c_uint32)]


class EplbOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("policy", c_uint32),
                ("flags", c_uint32),
                ("old_phy2log", POINTER(c_int32))]


class Cost(Structure):
    _fields_ = [("sz", c_size_t),
                ("imbalance", c_double),
                ("max_imbalance", c_double),
                ("max_load", c_double),
                ("mean_load", c_double),
                ("moves", c_uint64),
                ("traffic", c_double),
                ("cross_device", c_double),
                ("cross_node", c_double)]


class Move(Structure):
    _fields_ = [("layer", c_uint32),
                ("slot", c_uint32),
                ("old_expert", c_int32),
                ("new_expert", c_int32),
                ("src_slot", c_int32),
                ("kind", c_uint32),
                ("round", c_uint32)]


class PlanOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("balance_slack", c_float),
                ("move_tokens", c_float),
                ("max_moves", c_uint32),
                ("flags", c_uint32)]


class StoreOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("layers", c_uint32),
                ("experts", c_uint32),
                ("devices", c_uint32),
                ("slots_per_device", c_uint32),
                ("expert_bytes", c_uint64),
                ("block_size", c_uint32),
                ("device_node", POINTER(c_int)),
                ("max_inflight", c_uint32),
                ("flags", c_uint32),
                ("from_", c_void_p),
                ("nr_from", c_uint32),
                ("backend", c_uint32),
                ("device_gpu", POINTER(c_int)),
                ("from_store", c_void_p)]


class StoreStats(Structure):
    _fields_ = [("sz", c_size_t),
                ("layers", c_uint32),
                ("experts", c_uint32),
                ("devices", c_uint32),
                ("num_slots", c_uint32),
                ("block_size", c_uint32),
                ("blocks_per_expert", c_uint32),
                ("slot_stride", c_uint64),
                ("version", c_uint64),
                ("steps_in_flight", c_uint32),
                ("rebalancing", c_uint32),
                ("retired_pending", c_uint32),
                ("rebalances", c_uint64),
                ("waves", c_uint64),
                ("rebinds", c_uint64),
                ("copies", c_uint64),
                ("copy_bytes", c_uint64),
                ("reclaims", c_uint64),
                ("over_k", c_uint64),
                ("max_inflight_seen", c_uint32),
                ("last_error", c_int32),
                ("live_copies", c_uint32 * STORE_MAX_DEVICES),
                ("peak_copies", c_uint32 * STORE_MAX_DEVICES),
                ("adopted", c_uint64),
                ("fetched", c_uint64),
                ("exported", c_uint64),
                ("shared_copies", c_uint32)]


STRUCTS = {
    "accel_moe_topo": Topo,
    "accel_eplb_opts": EplbOpts,
    "accel_moe_cost": Cost,
    "accel_moe_move": Move,
    "accel_moe_plan_opts": PlanOpts,
    "accel_moe_store_opts": StoreOpts,
    "accel_moe_store_stats": StoreStats,
}

_P = c_void_p
_i32p = POINTER(c_int32)
_u32p = POINTER(c_uint32)
_f32p = POINTER(c_float)

PROTOS = {
    "accel_eplb_rebalance": (c_int, [POINTER(Topo), _f32p, POINTER(EplbOpts), _i32p, _i32p,
                                     c_uint32, _i32p, _u32p]),
    "accel_moe_log2phy": (c_int, [POINTER(Topo), _i32p, _i32p, c_uint32, _i32p]),
    "accel_moe_cost": (c_int, [POINTER(Topo), _f32p, _u32p, _i32p, _i32p, POINTER(Cost),
                               _f32p]),
    "accel_moe_moves": (c_int, [POINTER(Topo), _i32p, _i32p, c_uint32, POINTER(Move),
                                c_size_t, POINTER(c_size_t)]),
    "accel_moe_plan": (c_int, [POINTER(Topo), _f32p, _u32p, _i32p, POINTER(PlanOpts), _i32p,
                               _i32p, c_uint32, _i32p, POINTER(Cost)]),
    "accel_moe_stats_create": (_P, [c_uint32, c_uint32, c_uint32, c_uint32]),
    "accel_moe_stats_destroy": (None, [_P]),
    "accel_moe_stats_record": (c_int, [_P, c_uint32, _u32p, c_size_t]),
    "accel_moe_stats_route": (c_int, [_P, _u32p, c_uint32, c_uint32]),
    "accel_moe_stats_step_end": (c_int, [_P]),
    "accel_moe_stats_load": (c_int, [_P, POINTER(c_uint64), _f32p, _u32p]),
    "accel_moe_stats_coact": (c_int, [_P, _u32p]),
    "accel_moe_store_create": (_P, [_P, POINTER(StoreOpts), _i32p, c_size_t]),
    "accel_moe_store_destroy": (None, [_P]),
    "accel_moe_store_write": (c_int, [_P, c_uint32, c_uint32, c_void_p, c_size_t]),
    "accel_moe_store_step_begin": (c_int, [_P, POINTER(c_uint64)]),
    "accel_moe_store_step_end": (c_int, [_P, c_uint64]),
    "accel_moe_store_expert": (_P, [_P, c_uint64, c_uint32, c_uint32, c_uint32]),
    "accel_moe_store_replicas": (c_int, [_P, c_uint64, c_uint32, c_uint32, _u32p, c_uint32]),
    "accel_moe_store_placement": (c_int, [_P, _i32p, c_size_t]),
    "accel_moe_store_apply": (c_int, [_P, _i32p, c_size_t]),
    "accel_moe_store_progress": (c_int, [_P]),
    "accel_moe_store_settle": (c_int, [_P, ctypes.c_int64]),
    "accel_moe_store_stats": (c_int, [_P, POINTER(StoreStats)]),
}
