# SPDX-License-Identifier: MIT
"""ctypes mirrors of accel_mover.h (tiers and the data mover) and the
prototypes of accel_tier_* and accel_mover_*. The structs that carry sz
may grow in C (fields appended): a mirror is a prefix of the C struct, its
sz its own size, so the library reads the fields it lacks as zero.
tests/python checks them against the C compiler's layout."""

from ctypes import POINTER, Structure, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, \
    c_void_p

from ._bm_types import Run

TIER_HOST = 0               # ACCEL_TIER_HOST
TIER_MEMFD = 1              # ACCEL_TIER_MEMFD
TIER_CUDA = 2               # ACCEL_TIER_CUDA
TIER_CUDA_REGISTERED = 3    # ACCEL_TIER_CUDA_REGISTERED
LAYOUT_BLOCKS = 0           # ACCEL_TIER_LAYOUT_BLOCKS
LAYOUT_LAYERS = 1           # ACCEL_TIER_LAYOUT_LAYERS
MOVER_LAYERS = 1 << 0       # ACCEL_MOVER_LAYERS
MOVER_WAIT_EVENT = 1 << 1   # ACCEL_MOVER_WAIT_EVENT
MOVER_RECORD_EVENT = 1 << 2  # ACCEL_MOVER_RECORD_EVENT
TIER_ON_NODE = 1 << 0       # ACCEL_TIER_ON_NODE
TIER_WINDOW = 1 << 1        # ACCEL_TIER_WINDOW (no Python constructor yet)
TIER_BLOCK_MAX = 64 << 20   # ACCEL_TIER_BLOCK_MAX


class TierOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("block_bytes", c_uint64),
                ("blocks", c_uint32),
                ("node", c_int32),
                ("flags", c_uint32),
                ("layers", c_uint32)]


class TierInfo(Structure):
    _fields_ = [("sz", c_size_t),
                ("kind", c_uint32),
                ("blocks", c_uint32),
                ("block_bytes", c_uint64),
                ("region_block_bytes", c_uint32),
                ("pad", c_uint32),
                ("layers", c_uint32),
                ("device", c_int32),
                ("layout", c_uint32),
                ("pad2", c_uint32),
                ("block_stride", c_uint64),
                ("flags", c_uint32),
                ("pad3", c_uint32)]


class TierCudaOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("device", c_int32),
                ("layout", c_uint32),
                ("block_bytes", c_uint64),
                ("blocks", c_uint32),
                ("layers", c_uint32),
                ("block_stride", c_uint64),
                ("base", c_uint64),
                ("layer_base", POINTER(c_uint64)),
                ("nr_layer_base", c_uint32),
                ("flags", c_uint32)]


class MoverOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("flags", c_uint32),
                ("pad", c_uint32)]


class SubmitOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("user_data", c_uint64),
                ("flags", c_uint32),
                ("pad", c_uint32),
                ("layer_first", c_uint32),
                ("layer_count", c_uint32),
                ("wait_event", c_void_p),
                ("record_event", c_void_p)]


class Done(Structure):
    _fields_ = [("job_id", c_uint64),
                ("user_data", c_uint64),
                ("status", c_int32),
                ("pad", c_uint32)]


STRUCTS = {
    "accel_tier_opts": TierOpts,
    "accel_tier_info": TierInfo,
    "accel_tier_cuda_opts": TierCudaOpts,
    "accel_mover_opts": MoverOpts,
    "accel_mover_submit_opts": SubmitOpts,
    "accel_mover_done": Done,
}

_P = c_void_p

PROTOS = {
    "accel_tier_create_host": (_P, [_P, POINTER(TierOpts)]),
    "accel_tier_create_memfd": (_P, [POINTER(TierOpts)]),
    "accel_tier_create_cuda": (_P, [POINTER(TierCudaOpts)]),
    "accel_tier_register_cuda": (_P, [POINTER(TierCudaOpts)]),
    "accel_tier_destroy": (None, [_P]),
    "accel_tier_info": (c_int, [_P, POINTER(TierInfo)]),
    "accel_tier_block_addr": (_P, [_P, c_uint32]),
    "accel_tier_export": (c_int, [_P, POINTER(c_int)]),
    "accel_mover_create": (_P, [POINTER(MoverOpts)]),
    "accel_mover_destroy": (None, [_P]),
    "accel_mover_submit": (c_int, [_P, POINTER(_P), c_uint32, POINTER(Run), c_uint32,
                                   POINTER(SubmitOpts), POINTER(c_uint64)]),
    "accel_mover_poll": (c_int, [_P, POINTER(Done), c_uint32, c_int64]),
    "accel_mover_fd": (c_int, [_P]),
    "accel_mover_pending": (c_int, [_P]),
}
