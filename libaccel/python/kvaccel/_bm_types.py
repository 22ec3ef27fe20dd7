# SPDX-License-Identifier: MIT
"""ctypes mirrors of accel_bm.h (struct for struct, field for field) and the
prototypes of accel_bm_*. tests/python/test_bm.py checks every size and
offset against the C compiler's."""

import ctypes
from ctypes import (POINTER, Structure, c_int, c_int32, c_size_t, c_uint8, c_uint32,
                    c_uint64, c_void_p)

TIERS_MAX = 8           # ACCEL_BM_TIERS_MAX
KEY_BYTES = 32          # ACCEL_BM_KEY_BYTES
EVICT_LRU = 0           # ACCEL_BM_EVICT_LRU
EVICT_ARC = 1           # ACCEL_BM_EVICT_ARC


class Key(Structure):
    _fields_ = [("b", c_uint8 * KEY_BYTES)]


class Config(Structure):
    _fields_ = [("sz", c_size_t),
                ("block_tokens", c_uint32),
                ("nr_tiers", c_uint32),
                ("tier_blocks", POINTER(c_uint32)),
                ("evict", c_uint32),
                ("arc_ghosts", c_uint32),
                ("max_run", c_uint32),
                ("flags", c_uint32)]


class SeqOpts(Structure):
    _fields_ = [("sz", c_size_t),
                ("tier", c_uint32),
                ("extra_keys", c_void_p),
                ("extra_keys_len", c_size_t),
                ("reserve_tokens", c_uint64)]


class Run(Structure):
    _fields_ = [("src_tier", c_uint32),
                ("src_block", c_uint32),
                ("dst_tier", c_uint32),
                ("dst_block", c_uint32),
                ("count", c_uint32)]

    def astuple(self):
        return (self.src_tier, self.src_block, self.dst_tier, self.dst_block, self.count)


class Plan(Structure):
    _fields_ = [("sz", c_size_t),
                ("id", c_uint64),
                ("runs", POINTER(Run)),
                ("max_runs", c_uint32),
                ("nr_runs", c_uint32),
                ("blocks", c_uint32),
                ("reused", c_uint32)]


class SeqInfo(Structure):
    _fields_ = [("sz", c_size_t),
                ("tier", c_uint32),
                ("nr_blocks", c_uint32),
                ("nr_tokens", c_uint64),
                ("nr_committed", c_uint32),
                ("pad", c_uint32),
                ("plan_id", c_uint64)]


class TierStats(Structure):
    _fields_ = [("sz", c_size_t),
                ("blocks", c_uint32),
                ("free", c_uint32),
                ("cached", c_uint32),
                ("used", c_uint32),
                ("reserved", c_uint32),
                ("arc_p", c_uint32),
                ("arc_t1", c_uint32),
                ("arc_t2", c_uint32),
                ("arc_b1", c_uint32),
                ("arc_b2", c_uint32),
                ("evictions", c_uint64),
                ("hits", c_uint64),
                ("misses", c_uint64)]


# The C names of the structs above, for the layout check.
STRUCTS = {
    "accel_bm_key": Key,
    "accel_bm_config": Config,
    "accel_bm_seq_opts": SeqOpts,
    "accel_bm_run": Run,
    "accel_bm_plan": Plan,
    "accel_bm_seq_info": SeqInfo,
    "accel_bm_tier_stats": TierStats,
}


def opts(cls, **kw):
    """An ACCEL_OPTS() struct: zeroed, sz its size, then the fields given."""
    s = cls(**kw)
    s.sz = ctypes.sizeof(cls)
    return s


_P = c_void_p
_u32p = POINTER(c_uint32)
_keyp = POINTER(Key)
_i32p = POINTER(c_int32)

PROTOS = {
    "accel_bm_create": (_P, [POINTER(Config)]),
    "accel_bm_destroy": (None, [_P]),
    "accel_bm_keys": (c_int, [_P, _keyp, _i32p, c_uint64, c_void_p, c_size_t, _keyp]),
    "accel_bm_lookup": (c_int, [_P, _keyp, c_uint32, _u32p]),
    "accel_bm_seq_create": (c_int, [_P, POINTER(SeqOpts), _u32p]),
    "accel_bm_seq_free": (c_int, [_P, c_uint32]),
    "accel_bm_seq_fork": (c_int, [_P, c_uint32, _u32p]),
    "accel_bm_seq_start": (c_int, [_P, c_uint32, _i32p, c_uint64, _keyp,
                                   POINTER(c_uint64)]),
    "accel_bm_append": (c_int, [_P, c_uint32, _i32p, c_uint64, _keyp, POINTER(Plan)]),
    "accel_bm_commit": (c_int, [_P, c_uint32, c_uint32]),
    "accel_bm_truncate": (c_int, [_P, c_uint32, c_uint64]),
    "accel_bm_seq_written": (c_int, [_P, c_uint32, c_uint32]),
    "accel_bm_evict": (c_int, [_P, c_uint32, c_uint32]),
    "accel_bm_seq_move": (c_int, [_P, c_uint32, c_uint32, POINTER(Plan)]),
    "accel_bm_plan_runs": (c_int, [_P, c_uint64, c_uint32, POINTER(Run), c_uint32]),
    "accel_bm_plan_done": (c_int, [_P, c_uint64, c_int]),
    "accel_bm_seq_info": (c_int, [_P, c_uint32, POINTER(SeqInfo)]),
    "accel_bm_block_tables": (c_int, [_P, _u32p, c_uint32, _u32p, _u32p, c_uint32, _u32p]),
    "accel_bm_seq_keys": (c_int, [_P, c_uint32, c_uint32, c_uint32, _keyp]),
    "accel_bm_tier_stats": (c_int, [_P, c_uint32, POINTER(TierStats)]),
}
